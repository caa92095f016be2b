"""Fuzzing the runner: random instruction words in a minimal guest, and random byte
mutations of a built guest ELF.  Every case must end in a guest-visible outcome (an exit
status from semihosting or PSCI) or a documented runner error (101 image, 102 fault loop,
103 instruction limit, 104 WFI deadlock) with a one-line message: never an internal
error (106), never a Python exception, never a crash of the process, never a hang.

Cases run through ``vpmu.run`` in a separate worker process (started once, restarted
after a crash or a hang), so a hang is a per-case timeout and a crash is a dead worker.
Fixed seeds; the counts keep the file well under 90 s on one core.
"""
from __future__ import annotations

import json
import os
import random
import select
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

BASE = 0x4020_0000
VECTORS = BASE + 0x800            # VBAR_EL1 (2 KiB aligned)
CODE = BASE + 0x1000              # the random words
SCRATCH = BASE + 0x8000           # 32 KiB of RAM the random code's registers point into
HANDLER_DATA = BASE + 0x10000     # the vector code's exception counter and exit block
IMAGE_SIZE = 0x11000
MAX_INSNS = 200_000
CASE_TIMEOUT = 30.0               # seconds; a case normally takes well under one
RUNNER_ERRORS = {101, 102, 103, 104}
N_WORD_CASES = 300
N_ELF_CASES = 200
N_HOSTILE_CASES = 200
MAX_CASE_KB = 1_000_000           # what one case may add to the worker's memory at its peak (1 GB)

# Failures known and pinned elsewhere, which the fuzz tests count instead of failing on
# (none at present: the fetch-from-MMIO and ELF-overflow cases found here are fixed).
# Empty now: the two classes found so far
# (a fetch from a device stopped the run with status 106; ELF offsets overflowing
# pyelftools were internal errors) are fixed and have regression tests,
# test_branch_to_mmio_is_a_prefetch_abort below and
# test_cli_errors.py::test_elf_offsets_too_large_for_python.
KNOWN_BUGS: dict = {}

# ------------------------------------------------------------------------------ A64 encodings


def movz(rd, imm16, hw=0): return 0xD2800000 | hw << 21 | (imm16 & 0xFFFF) << 5 | rd
def movk(rd, imm16, hw): return 0xF2800000 | hw << 21 | (imm16 & 0xFFFF) << 5 | rd
def add_imm(rd, rn, imm): return 0x91000000 | imm << 10 | rn << 5 | rd
def ldr_x(rt, rn, off=0): return 0xF9400000 | (off // 8) << 10 | rn << 5 | rt
def str_x(rt, rn, off=0): return 0xF9000000 | (off // 8) << 10 | rn << 5 | rt
def cmp_imm(rn, imm): return 0xF100001F | imm << 10 | rn << 5
def b_cond(cond, words): return 0x54000000 | (words & 0x7FFFF) << 5 | cond
def b(words): return 0x14000000 | (words & 0x3FFFFFF)
def mrs(rt, enc): return 0xD5300000 | enc << 5 | rt
def msr(enc, rt): return 0xD5100000 | enc << 5 | rt


ESR_EL1, ELR_EL1, VBAR_EL1 = 0x4290, 0x4201, 0x4600       # o0:op1:CRn:CRm:op2, bits [19:5] of MRS/MSR
ISB, ERET, HLT_SEMI, WFI, WFE, NOP = 0xD5033FDF, 0xD69F03E0, 0xD45E0000, 0xD503207F, 0xD503205F, 0xD503201F
LSR_X1_26 = 0xD35AFC21                                      # lsr x1, x1, #26
GE = 0xA


def mov64(rd, value):
    return [movz(rd, value & 0xFFFF)] + [movk(rd, (value >> (16 * i)) & 0xFFFF, i) for i in (1, 2, 3)]


def semihost_exit(status_reg=1):
    """SYS_EXIT_EXTENDED {ApplicationExit, x<status_reg>} with its own registers."""
    return [*mov64(2, HANDLER_DATA + 16), *mov64(3, 0x20026), str_x(3, 2, 0), str_x(status_reg, 2, 8),
            add_imm(1, 2, 0), movz(0, 0x20), HLT_SEMI, b(0)]


def vector_exit_with_ec():
    """Every exception ends the run with exit status = ESR_EL1.EC."""
    return [mrs(1, ESR_EL1), LSR_X1_26, *semihost_exit()]


def vector_skip(limit):
    """Count the exception; skip the instruction (ELR += 4) and return, or after `limit`
    exceptions end the run with status 0x7e."""
    body = [*mov64(2, HANDLER_DATA), ldr_x(3, 2), add_imm(3, 3, 1), str_x(3, 2), cmp_imm(3, limit)]
    rest = [mrs(4, ELR_EL1), add_imm(4, 4, 4), msr(ELR_EL1, 4), ERET]
    tail = [movz(1, 0x7E), *semihost_exit()]
    return body + [b_cond(GE, len(rest) + 1)] + rest + tail


# ------------------------------------------------------------------------------ ELF builder


def build_elf(image: bytes, base: int = BASE, entry: int | None = None) -> bytes:
    """A minimal ELF64 little-endian AArch64 executable: one RWX PT_LOAD at `base`."""
    ehsize, phentsize, data_off = 64, 56, 0x1000
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)            # ELFCLASS64, LSB, version 1
    eh = ident + struct.pack("<HHIQQQIHHHHHH", 2, 183, 1, base if entry is None else entry,
                             ehsize, 0, 0, ehsize, phentsize, 1, 64, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 7, data_off, base, base, len(image), len(image), 0x1000)
    head = eh + ph
    return head + bytes(data_off - len(head)) + image


def words(ws) -> bytes:
    return b"".join(struct.pack("<I", w & 0xFFFFFFFF) for w in ws)


def interesting_word(rng: random.Random) -> int:
    """Random words biased towards the encodings the board handles itself."""
    k = rng.randrange(12)
    rn, rt = rng.randrange(31), rng.randrange(31)
    if k == 0:
        return 0xD5000000 | rng.getrandbits(22)                  # system: MSR/MRS/SYS/hints/barriers
    if k == 1:
        return 0xD4000000 | rng.getrandbits(24)                  # SVC/HVC/SMC/BRK/HLT/DCPS
    if k == 2:
        return rng.choice([WFI, WFE, ERET, HLT_SEMI, 0xD4000002, 0xD4000003, 0xD4200000, 0xD503309F,
                           0xD50342FF, 0xD50342DF, 0xD50040BF, 0xD50041BF])   # hvc, smc, brk, ssbb, daifclr/set #2,
                                                                              # msr spsel, #0 / #1
    if k == 3:
        return rng.choice([0xF9400000, 0xF9000000, 0xB9400000, 0xB9000000, 0x39400000, 0x39000000]) \
            | rng.randrange(4096) << 10 | rn << 5 | rt           # LDR/STR immediate, random base
    if k == 4:
        return rng.choice([0xA9400000, 0xA9000000, 0xA9C00000, 0xA9800000]) | rng.getrandbits(7) << 15 \
            | rng.randrange(31) << 10 | rn << 5 | rt             # LDP/STP (pre/post-index too)
    if k == 5:
        return rng.choice([0xC85F7C00 | rn << 5 | rt, 0xC8007C00 | rng.randrange(31) << 16 | rn << 5 | rt,
                           0xC8DFFC00 | rn << 5 | rt, 0xF8208000 | rng.randrange(31) << 16 | rn << 5 | rt])
    if k == 6:
        return rng.choice([b(rng.randrange(-16, 17)), 0x94000000 | (rng.randrange(-16, 17) & 0x3FFFFFF),
                           0xB4000000 | (rng.randrange(-8, 9) & 0x7FFFF) << 5 | rt,
                           0xD61F0000 | rn << 5, 0xD63F0000 | rn << 5, 0xD65F03C0])   # B, BL, CBZ, BR, BLR, RET
    if k == 7:
        return 0xD5180000 | rng.getrandbits(16) << 5 | rt          # MSR to a random EL1 system register
    if k == 8:
        return 0xD5380000 | rng.getrandbits(16) << 5 | rt          # MRS from one
    return rng.getrandbits(32)


def random_guest(rng: random.Random, mode: str, n: int, body: list[int] | None = None) -> bytes:
    """Registers set at random (mostly pointers into SCRATCH), SP in SCRATCH, VBAR_EL1 per
    `mode` ("exit": every vector exits with ESR.EC, "skip": skip and count, "none": VBAR = 0),
    then n random words (or `body`) and an exit with status 0x55 after them."""
    img = bytearray(IMAGE_SIZE)
    prologue = []
    for r in range(29):                                            # x0..x28: scratch pointers or noise
        if rng.random() < 0.6:
            v = SCRATCH + rng.randrange(0, 0x7000, 8)
        else:
            v = rng.choice([0, 1, 0xFFFF_FFFF_FFFF_FFFF, rng.getrandbits(64), rng.getrandbits(32),
                            0x0900_0000, 0x0800_0000, 0x080A_0000])
        prologue += mov64(r, v)
    prologue += [*mov64(9, SCRATCH + 0x7F00), add_imm(31, 9, 0)]   # SP inside the scratch area
    prologue += mov64(9, SCRATCH + rng.randrange(0, 0x7000, 8))
    if mode != "none":
        prologue += [*mov64(30, VECTORS), msr(VBAR_EL1, 30), ISB]
    prologue += mov64(30, SCRATCH + 0x100)
    prologue.append(b((CODE - (BASE + 4 * len(prologue))) // 4))
    img[0:4 * len(prologue)] = words(prologue)
    if mode != "none":
        entry = vector_exit_with_ec() if mode == "exit" else vector_skip(64)
        for v in range(16):
            img[0x800 + 0x80 * v:0x800 + 0x80 * v + 4 * len(entry)] = words(entry)
    if body is None:
        body = [interesting_word(rng) if rng.random() < 0.5 else rng.getrandbits(32) for _ in range(n)]
    body = body + [movz(1, 0x55), *semihost_exit()]                      # ran off the end: status 0x55
    img[CODE - BASE:CODE - BASE + 4 * len(body)] = words(body)
    return build_elf(bytes(img))


# ------------------------------------------------------------------------------ worker

WORKER = r"""
import json, re, sys, traceback
import vpmu
from vpmu.errors import VpmuError
out = sys.stdout
sys.stdout = sys.stderr                      # nothing but results on the result stream

def kb(key):
    return int(re.search(key + r":\s+(\d+) kB", open("/proc/self/status").read()).group(1))

for line in sys.stdin:
    req = json.loads(line)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                         # VmHWM := VmRSS: the peak of this case alone
    rss0 = kb("VmRSS")
    try:
        r = vpmu.run(req["path"], max_insns=req["max_insns"], **req.get("options", {}))
        res = {"status": r.exit_status, "error": r.error, "reason": r.reason, "icount": r.icount}
    except VpmuError as e:           # vpmu.run raises (rather than returns) errors found while loading
        res = {"status": e.status, "error": str(e), "reason": "raised"}
    except BaseException as e:
        res = {"exception": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    res["case_peak_kb"] = kb("VmHWM") - rss0  # what the case added to the worker at its peak
    out.write("@@" + json.dumps(res) + "\n")
    out.flush()
"""


@dataclass
class Worker:
    proc: subprocess.Popen | None = None
    restarts: int = 0
    log: list = field(default_factory=list)

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=0)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def run(self, path: str, max_insns: int = MAX_INSNS, timeout: float = CASE_TIMEOUT,
            options: dict | None = None) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        req = {"path": path, "max_insns": max_insns, "options": options or {}}
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._dead("crash: worker gone before the case started")
        deadline = time.monotonic() + timeout
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                self.restarts += 1
                return {"hang": f"no result within {timeout:.0f} s"}
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return self._dead(f"crash: worker exited with {self.proc.wait()}")
            buf += chunk
            for line in buf.split(b"\n"):
                if line.startswith(b"@@"):
                    return json.loads(line[2:])

    def _dead(self, why: str) -> dict:
        self.stop()
        self.restarts += 1
        return {"crash": why}


@pytest.fixture(scope="module")
def worker(vpmu_guest_dir):
    w = Worker()
    w.start()
    # the first run may compile the numba kernels (cold cache): not a hang
    warm = w.run(str(vpmu_guest_dir / "hello.elf"), timeout=600)
    assert warm.get("status") == 0 and warm.get("error") is None, warm
    yield w
    w.stop()


def known_bug(res: dict) -> str | None:
    return next((name for name, match in KNOWN_BUGS.items() if match(res)), None)


def check_outcome(res: dict, what: str) -> str:
    """The outcome class, or an assertion error describing the case."""
    assert "hang" not in res and "crash" not in res, f"{what}: {res}"
    assert "exception" not in res, f"{what}: Python exception {res.get('exception')}\n{res.get('traceback')}"
    assert res.get("case_peak_kb", 0) < MAX_CASE_KB, f"{what}: the case took {res['case_peak_kb']} KB at its peak"
    if res["error"] is None:
        assert 0 <= res["status"] <= 255, f"{what}: {res}"
        assert res["reason"] in ("exit", "system_off", "reset", "cpu_off") or res["reason"].startswith("xen_"), \
            f"{what}: {res}"
        return "exit"
    assert res["status"] in RUNNER_ERRORS, f"{what}: runner error {res['status']} ({res['error']})"
    assert res["error"] and "\n" not in res["error"] and "internal error" not in res["error"], f"{what}: {res}"
    if res["status"] in (102, 103, 104):                               # a guest problem names where it is
        assert "0x" in res["error"], f"{what}: {res['error']}"
    return str(res["status"])


# ------------------------------------------------------------------------------ the tests


def test_elf_builder_and_vectors(tmp_path, worker):
    """The fuzz harness itself: a body that exits with 0x55, one that traps with an SVC
    (EC 0x15 in "exit" mode), one that faults with no vector table (102), one that loops
    (103), one that waits (104)."""
    cases = {
        "runs_off_the_end": ([NOP, NOP], "exit", 0x55, None),
        "svc_exit_mode": ([0xD4000001], "exit", 0x15, None),
        "brk_skip_mode": ([0xD4200000] * 3, "skip", 0x55, None),
        "udf_none_mode": ([0x00000000], "none", 102, "recursive"),
        "loop": ([b(0)], "exit", 103, "instruction limit"),
        "wfi": ([WFI], "exit", 104, "WFI at PC"),
    }
    for name, (body, mode, status, err) in cases.items():
        path = tmp_path / f"{name}.elf"
        path.write_bytes(random_guest(random.Random(0), mode, 0, body=body))
        res = worker.run(str(path))
        assert res.get("status") == status, (name, res)
        assert (res["error"] is None) if err is None else (err in res["error"]), (name, res)


def test_random_instruction_words(tmp_path, worker):
    rng = random.Random(0x5EED_0002)
    seen: dict[str, int] = {}
    for i in range(N_WORD_CASES):
        mode = ("exit", "skip", "none")[i % 3]
        n = rng.choice([1, 4, 16, 64, 256])
        path = tmp_path / f"w{i:03d}.elf"
        path.write_bytes(random_guest(rng, mode, n))
        res = worker.run(str(path))
        known = known_bug(res)
        outcome = f"known bug: {known}" if known else check_outcome(res, f"case {i} (mode {mode}, {n} words, {path})")
        seen[f"{mode}:{outcome}"] = seen.get(f"{mode}:{outcome}", 0) + 1
        path.unlink()
    # the harness reaches the outcomes it is meant to reach
    assert seen.get("none:102", 0) > 0, seen
    assert sum(v for k, v in seen.items() if k.endswith(":exit")) > N_WORD_CASES // 3, seen
    print("instruction-word outcomes:", dict(sorted(seen.items())))


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 3, 4, 8, 16])):
        r = rng.random()
        if r < 0.5:
            off = rng.randrange(min(len(b), 0x100))                  # ELF and program headers
        else:
            off = rng.randrange(len(b))
        k = rng.random()
        if k < 0.4:
            b[off] = rng.randrange(256)
        elif k < 0.6:
            b[off] ^= 1 << rng.randrange(8)
        elif k < 0.8:                                                # an interesting 64-bit value
            v = rng.choice([0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x4000_0000, 0x4800_0000, 0x8000_0000_0000_0000,
                            0xFFFF_FFFF_FFFF_FFFF, len(b), len(b) * 2])
            b[off:off + 8] = struct.pack("<Q", v)[:max(0, min(8, len(b) - off))]
        else:
            b[off] = 0
    if rng.random() < 0.1:
        b = b[:rng.randrange(1, len(b))]                             # truncation
    return bytes(b)


def test_random_elf_mutations(tmp_path, worker, vpmu_guest_dir):
    rng = random.Random(0x5EED_0003)
    originals = [(vpmu_guest_dir / g).read_bytes() for g in ("hello.elf", "board_exc.elf")]
    seen: dict[str, int] = {}
    for i in range(N_ELF_CASES):
        data = mutate(rng, originals[i % 2])
        path = tmp_path / f"m{i:03d}.elf"
        path.write_bytes(data)
        res = worker.run(str(path))
        known = known_bug(res)
        outcome = f"known bug: {known}" if known else check_outcome(res, f"mutation {i} ({path})")
        seen[outcome] = seen.get(outcome, 0) + 1
        path.unlink()
    assert seen.get("101", 0) > 0 and seen.get("exit", 0) > 0, seen
    print("ELF mutation outcomes:", dict(sorted(seen.items())))


@pytest.mark.parametrize("target", [0x0900_0000, 0x0800_0000, 0x080A_0000], ids=["uart", "gicd", "gicr"])
def test_branch_to_mmio_is_a_prefetch_abort(tmp_path, worker, target):
    """A branch to a device (found by test_random_instruction_words: BLR to a register
    holding a device address) is an instruction abort to the guest, EC 0x21: the "exit"
    vectors end the run with the EC.  It used to stop the run with 'emulation failed ...
    (UC_ERR_FETCH_PROT)', status 106."""
    body = [*mov64(1, target), 0xD63F0020]                          # blr x1
    path = tmp_path / "mmio.elf"
    path.write_bytes(random_guest(random.Random(1), "exit", 0, body=body))
    res = worker.run(str(path))
    assert check_outcome(res, f"blr {target:#x}") == "exit" and res["status"] == 0x21, res


# ------------------------------------------------------------------------------ hostile guests
# Guests that do what the board's services and timers make expensive: generic-timer compare
# values up to 2^64 - 1 (the end of guest time is 2^63 ns), WFI, semihosting SYS_WRITE /
# SYS_WRITE0 / SYS_ELAPSED with wild lengths and pointers, and Xen vCPU timers, SCHEDOP
# block/poll/watchdog and console_io with wild arguments -- under --xen, half of them with PV
# stolen time.  Every case must end with a documented status within the case timeout (no
# hang: the --max-insns and WFI rules) and the worker stay under 1 GB.

ARGS = SCRATCH + 0x7800                              # the argument blocks the actions build
TIMER_REGS = {"cntv_cval": 0x5F1A, "cntv_tval": 0x5F18, "cntv_ctl": 0x5F19,    # o0:op1:CRn:CRm:op2
              "cntp_cval": 0x5F12, "cntp_tval": 0x5F10, "cntp_ctl": 0x5F11}
ICC_PMR, ICC_IGRPEN1 = 0x4230, 0x4667
HVC_XEN, HLT = 0xD401D422, HLT_SEMI                  # hvc #0xea1, hlt #0xf000
XEN_CONSOLE_IO, XEN_VCPU_OP, XEN_SCHED_OP = 18, 24, 29


def wild(rng: random.Random) -> int:
    return rng.choice([0, 1, 16, 1000, 10**6, 10**9, (1 << 32) - 1, (1 << 59) - 1, 1 << 59, 1 << 60,
                       (1 << 63) - 1, 1 << 63, (1 << 64) - 1, rng.getrandbits(64), rng.getrandbits(40)])


def wild_ptr(rng: random.Random) -> int:
    return rng.choice([ARGS + 0x100, SCRATCH, 0, 0x0900_0000, (1 << 64) - 8, rng.getrandbits(64), BASE])


def store64(at: int, value: int) -> list[int]:
    return [*mov64(2, at), *mov64(3, value), str_x(3, 2)]


def hostile_action(rng: random.Random) -> list[int]:
    k = rng.randrange(9)
    if k == 0:                                                   # a generic-timer register
        reg = rng.choice(list(TIMER_REGS))
        value = rng.randrange(4) if reg.endswith("ctl") else wild(rng)
        return [*mov64(1, value), msr(TIMER_REGS[reg], 1), ISB]
    if k == 1:                                                   # the GIC on: timer and upcall PPIs
        return [*store64(0x080A_0014, 0), *store64(0x080B_0080, 0xFFFF_FFFF),
                *store64(0x080B_0100, 1 << 27 | 1 << 30 | 1 << 31), *mov64(1, 0xFF), msr(ICC_PMR, 1),
                *mov64(1, 1), msr(ICC_IGRPEN1, 1), ISB]
    if k == 2:
        return [WFI]
    if k == 3:                                                   # SYS_WRITE {handle, buf, len}
        return [*store64(ARGS, rng.choice([1, 2, 3])), *store64(ARGS + 8, wild_ptr(rng)),
                *store64(ARGS + 16, wild(rng)), *mov64(1, ARGS), movz(0, 0x05), HLT]
    if k == 4:                                                   # SYS_WRITE0 / SYS_ELAPSED
        return [*mov64(1, rng.choice([wild_ptr(rng), ARGS])), movz(0, rng.choice([0x04, 0x30])), HLT]
    if k == 5:                                                   # vcpu_op: periodic / single-shot / stop
        cmd = rng.choice([6, 7, 8, 9])
        return [*store64(ARGS, wild(rng)), *mov64(0, cmd), *mov64(1, rng.choice([0, 0, 1, wild(rng)])),
                *mov64(2, rng.choice([ARGS, wild_ptr(rng)])), *mov64(16, XEN_VCPU_OP), HVC_XEN]
    if k == 6:                                                   # sched_op: block / poll / watchdog
        cmd = rng.choice([1, 1, 3, 6])
        block = {3: [*store64(ARGS, ARGS + 0x40), *store64(ARGS + 8, 1), *store64(ARGS + 16, wild(rng)),
                     *store64(ARGS + 0x40, rng.randrange(8))],
                 6: [*store64(ARGS, rng.randrange(3) | rng.getrandbits(32) << 32)]}.get(cmd, [])
        return [*block, *mov64(0, cmd), *mov64(1, ARGS), *mov64(16, XEN_SCHED_OP), HVC_XEN]
    if k == 7:                                                   # console_io write
        return [*mov64(0, 0), *mov64(1, wild(rng)), *mov64(2, wild_ptr(rng)), *mov64(16, XEN_CONSOLE_IO),
                HVC_XEN]
    return [*mov64(0, 0xC5000021), 0xD4000002]                  # PV_TIME_ST (stolen time starts)


def test_hostile_guests(tmp_path, worker):
    rng = random.Random(0x5EED_0013)
    vm = tmp_path / "pv.toml"
    vm.write_text("[pvtime]\nipa = 0x47000000\nstolen_ns_per_ms = 100000\n")
    seen: dict[str, int] = {}
    for i in range(N_HOSTILE_CASES):
        body = [w for _ in range(rng.choice([2, 4, 8, 16])) for w in hostile_action(rng)]
        if rng.random() < 0.5:
            body.append(WFI)                                     # most cases end up waiting
        path = tmp_path / f"h{i:03d}.elf"
        path.write_bytes(random_guest(rng, ("exit", "skip")[i % 2], 0, body=body))
        options = {"xen": True, "max_output": "1M", **({"vm": str(vm)} if i % 4 < 2 else {})}
        res = worker.run(str(path), options=options)
        known = known_bug(res)
        outcome = f"known bug: {known}" if known else check_outcome(res, f"hostile case {i} ({path})")
        seen[outcome] = seen.get(outcome, 0) + 1
        path.unlink()
    # the cases reach the outcomes they are meant to: waits nothing can end, and guests that go on
    assert seen.get("104", 0) > 0 and seen.get("exit", 0) + seen.get("103", 0) > 0, seen
    print("hostile-guest outcomes:", dict(sorted(seen.items())))

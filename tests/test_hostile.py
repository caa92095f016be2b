"""Hostile input (issue 13): guests and files that try to hang the runner, wrap guest time or
exhaust host memory.  Every case ends with its documented status in bounded time and memory:
each runs as ``vpmu run`` in a child process that reports its own peak RSS and run time, and
the test checks the status, the one-line reason, a wall time of seconds and a peak under 1 GB.

Guests: guests/src/hostile.c (cases by ``--append case=...``); files are made in tmp_path.
Before these fixes: a Xen periodic timer with a waiting vCPU spun at 100% CPU for ever; a
timer compare beyond 2^64 cycles made time go backwards and SYS_ELAPSED an internal error
(106); a 16 GiB SYS_WRITE was read into host memory (MemoryError, 106); ``/dev/zero`` as the
image, ``--dtb`` or ``--vm`` ran out of memory (106), a FIFO blocked for ever, a 2 GB sparse
file cost 2.2 GB before its 101; 2,000 zero-filled ELF segments took minutes to load.
"""
from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest

from vpmu.board import timers as T

MAX_RSS_KB = 1_000_000            # 1 GB
MAX_SECONDS = 30.0                # a run takes 1-7 s on the 2-core development VM
OUTPUT_LIMIT_RE = r"output limit reached \({} bytes of guest output, --max-output\) at PC 0x[0-9a-f]+"

# runs the command line in this process and reports its peak RSS (VmHWM: this process's own,
# where ru_maxrss would include the parent's at fork) and the run time on stderr
WRAPPER = r"""
import re, sys, time
from vpmu.cli import main
t = time.monotonic()
rc = main(sys.argv[1:])
hwm = re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read()).group(1)
sys.stderr.write(f"@@{hwm} {time.monotonic() - t:.3f}\n")
sys.exit(rc)
"""


@dataclass
class Outcome:
    status: int
    stdout: bytes
    error: str                    # the one stderr line vpmu printed ('' if none)
    rss_kb: int
    seconds: float


def vpmu_cli(*args: str, stdout=subprocess.PIPE, timeout: float = 300) -> Outcome:
    p = subprocess.run([sys.executable, "-c", WRAPPER, *args], stdout=stdout, stderr=subprocess.PIPE,
                       timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    m = re.search(r"@@(\d+) ([0-9.]+)\n", err)
    assert m, err
    rest = err[:m.start()] + err[m.end():]
    assert "Traceback" not in rest and "internal error" not in rest, rest
    assert rest.count("\n") <= 1, f"more than one line: {rest!r}"
    out = Outcome(p.returncode, p.stdout or b"", rest.strip(), int(m.group(1)), float(m.group(2)))
    assert out.rss_kb < MAX_RSS_KB, f"peak RSS {out.rss_kb} KB"
    assert out.seconds < MAX_SECONDS, f"took {out.seconds} s"
    return out


@pytest.fixture(scope="module")
def hostile(vpmu_guest_dir) -> str:
    return str(vpmu_guest_dir / "hostile.elf")


# ---------------------------------------------------------------- 1. the Xen periodic timer
@pytest.mark.parametrize("then", ["wfi", "block", "bound"])
def test_periodic_timer_cannot_wake_a_blocked_vcpu(hostile, then):
    """VCPUOP_set_periodic_timer, then a wait: Xen stops the periodic timer of a blocked vCPU,
    so nothing can end the wait -- 104 at once, bound VIRQ_TIMER or not (it used to re-arm for
    ever in the wait loop, ignoring --max-insns)."""
    r = vpmu_cli("run", "--xen", "--max-insns", "1000000", "--append", f"case=periodic then={then}", hostile)
    assert r.status == 104, r
    what = "SCHEDOP_block/poll" if then == "block" else "WFI"
    assert re.fullmatch(rf"vpmu: {what} at PC 0x[0-9a-f]+ with no interrupt that could ever arrive: the Xen "
                        r"periodic timer of vCPU 0 does not run while the vCPU is blocked .*", r.error), r.error
    assert r.stdout.endswith(b"periodic=0\nperiodic: waiting\n")


def test_periodic_timer_and_a_far_watchdog(hostile):
    """The same with a watchdog 2^32-1 s ahead: time skips there in one step (no periodic
    ticks on the way) and the watchdog shuts the domain down: status 1."""
    r = vpmu_cli("run", "--xen", "--append", "case=periodic then=watchdog", hostile)
    assert r.status == 1 and r.error == "", r
    assert b"watchdog=1\n" in r.stdout and b"woke" not in r.stdout


# ---------------------------------------------------------------- 2. the end of guest time
@pytest.mark.parametrize("append", ["case=far_timer", "case=far_timer timer=p cval=0xffffffffffffffff",
                                    "case=far_timer pv=1"])
def test_timer_beyond_the_end_of_time(hostile, append, tmp_path):
    """A compare value at or beyond 2^59 ticks (2^63 ns, Xen's s_time_t and vpmu's end of
    guest time) never fires: a WFI that only it could end is a deadlock, 104, naming it --
    also with PV stolen time, whose tick does not run while the vCPU waits."""
    vm = tmp_path / "pv.toml"
    vm.write_text("[pvtime]\nipa = 0x47000000\nstolen_ns_per_ms = 100000\n")
    r = vpmu_cli("run", "--vm", str(vm), "--append", append, hostile)
    assert r.status == 104, r
    reg = "CNTP_CVAL_EL0" if "timer=p" in append else "CNTV_CVAL_EL0"
    assert re.search(rf"WFI at PC 0x[0-9a-f]+ with no interrupt that could ever arrive: the (virtual|physical) "
                     rf"timer's {reg} = 0x[0-9a-f]+ lies beyond the end of guest time", r.error), r.error


@pytest.mark.parametrize("append", ["case=far_timer cval=0x7ffffffffffffff",
                                    "case=far_timer cval=0x7ffffffffffffff timer=p pv=1"])
def test_time_just_before_the_end_goes_forwards(hostile, append, tmp_path):
    """The last reachable compare value (2^59 - 1 ticks): the WFI skips 292 years, the timer
    interrupts, CNTVCT and SYS_ELAPSED read later than the deadline (it used to wrap)."""
    vm = tmp_path / "pv.toml"
    vm.write_text("[pvtime]\nipa = 0x47000000\nstolen_ns_per_ms = 100000\n")
    r = vpmu_cli("run", "--vm", str(vm), "--append", append, hostile)
    assert r.status == 0, r
    kv = dict(line.split("=", 1) for line in r.stdout.decode().splitlines() if "=" in line)
    assert kv["woke"] == "1" and kv["forwards"] == "1" and kv["irqs"] == "1", kv
    assert int(kv["cntvct"], 16) >= (1 << 59) - 1 and int(kv["elapsed"], 16) < 1 << 64


def test_timers_never_take_a_deadline_past_the_end():
    """Timers.update: a compare value whose deadline is at or beyond TIME_END is not a
    deadline (it used to overflow the arena word: OverflowError, 106)."""
    from vpmu.config import MachineConfig
    from vpmu.pmu import layout as L
    A = np.zeros(L.ARENA_WORDS, dtype=np.uint64)
    t = T.Timers(MachineConfig(), A, _Gic(), _Trace(), on_expiry=lambda name: None)
    for cval in ((1 << 59), (1 << 62), (1 << 64) - 1):
        A[L.CNTV_CTL], A[L.CNTV_CVAL] = T.CTL_ENABLE, cval
        t.update()
        assert int(A[L.NEXT_DEADLINE]) == L.NONE64
    A[L.CNTV_CVAL] = (1 << 59) - 1
    t.update()
    assert int(A[L.NEXT_DEADLINE]) == T.TIME_END - T.MM.TICK_DIV
    t.set_timer("far", 1 << 63)
    assert int(A[L.NEXT_DEADLINE]) == T.TIME_END - T.MM.TICK_DIV


# ---------------------------------------------------------------- 3. one call of unbounded size
def test_huge_semihosting_write_is_streamed_and_bounded(hostile):
    """SYS_WRITE of 16 GiB (the MMU maps one 2 MiB block 8,192 times): streamed, and the run
    stops at --max-output with 103 and exactly that many bytes written."""
    r = vpmu_cli("run", "--max-output", "64M", "--append", "case=big_write", hostile)
    assert r.status == 103 and re.fullmatch("vpmu: " + OUTPUT_LIMIT_RE.format(64 << 20), r.error), r
    assert len(r.stdout) == 64 << 20 and r.stdout.startswith(b"abcdefghijklmnopqrstuvwxyz")


def test_the_default_output_limit(hostile):
    """Without --max-output the budget is 1 GiB: the 16 GiB write stops there."""
    r = vpmu_cli("run", "--append", "case=big_write", hostile, stdout=subprocess.DEVNULL)
    assert r.status == 103 and re.fullmatch("vpmu: " + OUTPUT_LIMIT_RE.format(1 << 30), r.error), r


def test_huge_xen_console_write_is_bounded(hostile):
    """console_io of 4 GiB - 1 bytes (the same aliasing), as dom0: 103 at --max-output."""
    r = vpmu_cli("run", "--xen", "--max-output", "32M", "--append", "case=console_big", hostile)
    assert r.status == 103 and re.fullmatch("vpmu: " + OUTPUT_LIMIT_RE.format(32 << 20), r.error), r
    assert len(r.stdout) == 32 << 20


def test_semihosting_write_stops_at_the_first_unreadable_byte(hostile):
    """SYS_WRITE of 2 MiB + 100 bytes whose last 100 are unmapped: the 2 MiB are written and
    the call returns 100, the number of bytes not written."""
    r = vpmu_cli("run", "--append", "case=write_fault", hostile)
    assert r.status == 0, r
    assert r.stdout.endswith(b"\nwrite_fault_not_written=100\n") and len(r.stdout) == (2 << 20) + 29


def test_the_api_keeps_a_bounded_copy_of_the_output(vpmu_run):
    """RunResult.output holds the first 16 MiB and a note; output_dropped counts the rest."""
    from vpmu.api import CAPTURE_MAX
    r = vpmu_run("hostile", expect_error=True, append="case=big_write", max_output="40M")
    assert r.exit_status == 103 and "output limit reached" in r.error
    assert r.output_dropped == (40 << 20) - CAPTURE_MAX
    assert r.output.endswith(f"\n[vpmu: output truncated after {CAPTURE_MAX} bytes; {r.output_dropped} "
                             f"more not captured]\n")
    head, _sep, note = r.output.rpartition("\n[vpmu:")
    assert len(head) == CAPTURE_MAX and "=" not in note and r.kv() == {}


@pytest.mark.parametrize("value, message", [("0", "at least 1 byte"), ("lots", "not a size")])
def test_max_output_values(value, message, hostile):
    p = subprocess.run([sys.executable, "-m", "vpmu", "run", "--max-output", value, hostile], capture_output=True,
                       timeout=120)
    assert p.returncode == 2 and message in p.stderr.decode(), p.stderr


# ---------------------------------------------------------------- 7. files that are not what they seem
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


@pytest.fixture
def sparse(tmp_path):
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(2 << 30)
    return str(path)


def test_the_image_must_be_a_regular_file_that_fits(hostile, fifo, sparse):
    """/dev/zero used to run out of memory (106), a FIFO to block for ever, a 2 GB sparse file
    to cost 2.2 GB before its 101: now one line each, before a byte is read."""
    for path, status, reason in (
            ("/dev/zero", 101, "the guest image is a character device, not a regular file"),
            (fifo, 101, "the guest image is a FIFO, not a regular file"),
            (sparse, 101, "the guest image is 2 GiB, more than the 128 MiB of RAM (--memory) it must fit in")):
        r = vpmu_cli("run", path)
        assert (r.status, r.error) == (status, f"vpmu: {path}: {reason}"), r
        assert r.rss_kb < 400_000                          # nothing read


def test_dtb_and_vm_files(hostile, fifo, sparse, tmp_path):
    """--dtb and --vm: a regular file, no larger than the RAM (--vm: 1 MiB), checked first."""
    small = tmp_path / "big.toml"
    with open(small, "wb") as f:
        f.truncate(2 << 20)
    for opt, path, status, reason in (
            ("--dtb", "/dev/zero", 101, "the device tree is a character device, not a regular file"),
            ("--dtb", fifo, 101, "the device tree is a FIFO, not a regular file"),
            ("--dtb", sparse, 101, "the device tree is 2 GiB, more than the 128 MiB of RAM (--memory) it must fit in"),
            ("--vm", "/dev/zero", 2, "the VM description is a character device, not a regular file"),
            ("--vm", fifo, 2, "the VM description is a FIFO, not a regular file"),
            ("--vm", str(small), 2, "the VM description is 2 MiB, more than the 1 MiB a VM description may have"),
            ("--vm", str(tmp_path), 2, "the VM description is a directory, not a regular file")):
        r = vpmu_cli("run", opt, path, hostile)
        assert (r.status, r.error) == (status, f"vpmu: {path}: {reason}"), r


def test_initrd_files(fifo, sparse, vpmu_guest_dir):
    kernel = str(vpmu_guest_dir / "boot_initrd.img")
    for path, reason in (
            ("/dev/zero", "the initrd is a character device, not a regular file"),
            (fifo, "the initrd is a FIFO, not a regular file"),
            (sparse, "the initrd is 2 GiB, more than the 128 MiB of RAM (--memory) it must fit in")):
        r = vpmu_cli("run", "--initrd", path, kernel)
        assert (r.status, r.error) == (101, f"vpmu: {path}: {reason}"), r
        assert r.rss_kb < 400_000


# ---------------------------------------------------------------- 9. many ELF segments
def elf_with_segments(code: bytes, n: int, overlap: bool) -> bytes:
    """An AArch64 ELF: `code` at 0x4020_0000, then n zero-filled PT_LOAD segments (filesz 0,
    memsz 32 KiB), disjoint or (overlap) all at the same address with memsz 64 MiB."""
    base, ehsize, phentsize = 0x4020_0000, 64, 56
    phoff, data_off = ehsize, ehsize + phentsize * (n + 1)
    eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 183, 1, base, phoff, 0, 0, ehsize, phentsize, n + 1, 64, 0, 0)
    ph = [struct.pack("<IIQQQQQQ", 1, 7, data_off, base, base, len(code), len(code), 8)]
    for i in range(n):
        at = 0x4100_0000 if overlap else 0x4100_0000 + i * 0x8000
        size = 64 << 20 if overlap else 0x8000
        ph.append(struct.pack("<IIQQQQQQ", 1, 6, data_off, at, at, 0, size, 8))
    return eh + b"".join(ph) + code


# mov x0, #0x84000008 (PSCI SYSTEM_OFF); hvc #0
EXIT_CODE = struct.pack("<3I", 0xD2800100, 0xF2B08000, 0xD4000002)


def test_many_zero_filled_segments_load_at_once(tmp_path):
    path = tmp_path / "segs.elf"
    path.write_bytes(elf_with_segments(EXIT_CODE, 2000, overlap=False))
    t = time.monotonic()
    r = vpmu_cli("run", str(path))
    assert r.status == 0 and r.error == "", r
    assert r.seconds < 10 and time.monotonic() - t < MAX_SECONDS


def test_overlapping_segments_are_refused(tmp_path):
    """QEMU refuses overlapping ROM regions (loader.c); 2,000 segments of 64 MiB over one
    another used to take ~60 ms each to zero-fill."""
    path = tmp_path / "overlap.elf"
    path.write_bytes(elf_with_segments(EXIT_CODE, 2000, overlap=True))
    r = vpmu_cli("run", str(path))
    assert r.status == 101 and re.fullmatch(rf"vpmu: {re.escape(str(path))}: loadable segments overlap "
                                            r"\(\[0x41000000, 0x45000000\) and one at 0x41000000\); QEMU "
                                            r"refuses overlapping segments too", r.error), r


def test_segment_bytes_must_fit_the_ram(tmp_path):
    """A segment whose file bytes exceed the RAM is refused before it is read."""
    code = EXIT_CODE
    data = bytearray(elf_with_segments(code, 0, overlap=False))
    struct.pack_into("<QQ", data, 64 + 32, 1 << 40, 1 << 40)            # p_filesz, p_memsz
    path = tmp_path / "huge.elf"
    path.write_bytes(bytes(data))
    r = vpmu_cli("run", str(path))
    assert r.status == 101 and "the loadable segments hold more than the 128 MiB of RAM" in r.error, r


# ---------------------------------------------------------------- 16. --no-semihosting
def test_semihosting_switch(hostile):
    """On by default at EL1 (the guests here rely on it); --no-semihosting makes HLT #0xF000
    an Undefined Instruction (ESR EC 0, IL), as on QEMU without -semihosting."""
    on = vpmu_cli("run", "--append", "case=hlt", hostile)
    assert on.status == 0 and on.stdout == b"hlt: semihosting is on\nhlt_undefs=0\nhlt_esr=0x0\n", on
    off = vpmu_cli("run", "--no-semihosting", "--append", "case=hlt", hostile)
    assert off.status == 0 and b"hlt: semihosting is on" not in off.stdout, off
    kv = dict(line.split("=", 1) for line in off.stdout.decode().splitlines())
    assert int(kv["hlt_undefs"]) > 0 and kv["hlt_esr"] == "0x2000000", kv


# ---------------------------------------------------------------- the board's timers and PMU device
class _Gic:
    def __init__(self):
        self.levels: list = []

    def set_level(self, intid, level):
        self.levels.append((intid, level))


class _Trace:
    def __init__(self):
        self.records: list = []

    def add(self, rec):
        self.records.append(rec)


def _timers():
    from vpmu.config import MachineConfig
    from vpmu.pmu import layout as L
    A = np.zeros(L.ARENA_WORDS, dtype=np.uint64)
    return T.Timers(MachineConfig(), A, _Gic(), _Trace(), on_expiry=lambda name: None), A, L


def test_a_callback_may_cancel_or_rearm_another_due_timer():
    """on_event takes each due timer from the live table: one cancelled by an earlier
    callback does not fire (it used to raise KeyError), one re-armed for later fires then
    (it used to fire at once and lose the new arming)."""
    t, A, L = _timers()
    fired = []

    def first(name):
        fired.append(name)
        t.set_timer("cancelled", None)
        t.set_timer("moved", 5_000, fire=fired.append)

    t.set_timer("a", 100, fire=first)
    t.set_timer("cancelled", 200, fire=fired.append)
    t.set_timer("moved", 300, fire=fired.append)
    A[L.IDLE] = 1_000
    t.on_event()
    assert fired == ["a"] and t.deadline_ns("moved") == 5_000 and t.deadline_ns("cancelled") is None
    assert int(A[L.NEXT_DEADLINE]) == 5_000
    A[L.IDLE] = 5_000
    t.on_event()
    assert fired == ["a", "moved"] and int(A[L.NEXT_DEADLINE]) == L.NONE64


def test_a_timer_rearmed_due_fires_at_the_next_event_not_in_this_pass():
    t, A, L = _timers()
    fired = []

    def again(name):
        fired.append(name)
        t.set_timer(name, 0, fire=again)        # due again at once

    t.set_timer("x", 10, fire=again)
    A[L.IDLE] = 10
    t.on_event()
    assert fired == ["x"] and int(A[L.NEXT_DEADLINE]) == 0


def test_pmu_load_leaves_the_callers_registers_alone(vpmu_guest_dir):
    """pmu_device.load: PMCR.C/P zero the counters it loads, not the caller's PmuRegs;
    PMSELR keeps SEL [4:0] only."""
    from vpmu.board.env import PmuRegs
    from vpmu.board.loader import open_image
    from vpmu.board.machine import Machine
    from vpmu.config import MachineConfig
    from vpmu.pmu import layout as L
    m = Machine(MachineConfig(), open_image(str(vpmu_guest_dir / "hello.elf")), out=lambda b: None)
    try:
        regs = PmuRegs(nr_counters=6, pmcr=0x7, pmselr=(1 << 64) - 1 - 0x1C, pmccntr=123, evcntr=[5] * 31,
                       evtyper=[0x11] * 31, pmcntenset=1)
        m.pmu_load(regs)
        assert regs.pmccntr == 123 and regs.evcntr == [5] * 31 and regs.pmcr == 0x7
        assert int(m.A[L.SELR]) == 0x3
        snap = m.pmu_snapshot()
        assert snap.pmccntr == 0 and snap.evcntr[:6] == [0] * 6 and snap.pmselr == 3
        regs.pmcr = 0x1
        m.pmu_load(regs)
        assert m.pmu_snapshot().pmccntr == 123 and m.pmu_snapshot().evcntr[:6] == [5] * 6
    finally:
        m.close()

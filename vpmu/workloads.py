"""Named benchmark workloads for ``vpmu bench``: guests that look like test software and OS
code, timed under vpmu, on plain Unicorn and on QEMU TCG ``-icount``.

Every workload is a guest in ``guests/src/bench*.c`` that measures one function through
``bench_measure`` (guests/src/bench_common.h): it prints ``bench: start``, enables six event
counters (INST_RETIRED, CPU_CYCLES, BR_RETIRED, LD_RETIRED, ST_RETIRED, MEM_ACCESS) and the
cycle counter, calls the function, disables them, prints ``bench: end`` and then the counts
and the call itself (``fn``, ``a0``..``a2``) as key=value lines.  Sizes come from the
command line (``--append "n=..."``), so a round can be scaled up.

Three ways to run one round:

- :func:`run_vpmu`: the guest under vpmu, timed on the host between the completion of the
  ``bench: start`` and ``bench: end`` UART lines; the instructions are the guest's own
  INST_RETIRED count of that window.  Building the machine (image, device tree, engine,
  hooks) and the guest's boot up to ``bench: start`` are timed apart; the process's own
  start-up (Python, numba, the compiled kernels: :func:`load_runtime`, done once before
  the first round) is in none of these times.
- :func:`run_plain`: the same function, with the same argument registers, on a plain
  Unicorn engine without any hook, over the same memory image (the ELF's segments), timed
  around ``emu_start``; the guest's own set-up functions (``mmu_enable``...) run first,
  untimed.  Its instructions are the vpmu window's minus the wrapper's BENCH_OVERHEAD, and
  its return value must equal the guest's ``sum`` (else the comparison is refused).
  Workloads that need the board (exceptions, interrupts, the timer) cannot run there:
  plain Unicorn reports exceptions to a hook instead of taking them to VBAR_EL1.
- :func:`run_qemu`: ``qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57 -m 512
  -nographic -icount shift=0 -semihosting -kernel GUEST -append ARGS``.  The window is timed
  by the guest itself: bench_common.h reads semihosting SYS_ELAPSED right after ``bench:
  start`` and right before ``bench: end`` and prints the difference (``elapsed``, in
  SYS_TICKFREQ ticks); QEMU 7.2 answers SYS_ELAPSED with its host clock in nanoseconds
  (measured: a code-generation run of 2.1 million instructions, 2 ms of -icount time, read
  0.95 s).  The host times at which the two marker lines arrive on QEMU's stdout (read line
  by line) are kept too, but they are not used: QEMU's console output can arrive late (an
  exception-heavy window of 0.85 ms showed both lines within microseconds).  QEMU's
  start-up (spawn to the arrival of ``bench: start``) and the whole process are reported
  apart.  (Under vpmu, SYS_ELAPSED is guest time, which is why vpmu is timed by the lines.)

:func:`measure` alternates the three for a number of rounds (the machine is shared and
noisy): every figure reported is a median over the rounds, and the ratios (vpmu MIPS /
plain MIPS, vpmu MIPS / QEMU MIPS, so below 1 means vpmu is slower) are medians of
per-round ratios, each comparing runs made moments apart.  It also checks that every
round's counts are identical (the guests are deterministic under vpmu) and that plain
Unicorn and QEMU computed the guest's result.  Sizes are bounded: every argument has a
range, a round's estimated instruction count is at most MAX_ROUND_INSNS, the vpmu run has
an instruction limit and plain Unicorn and QEMU a timeout derived from that estimate.
"""
from __future__ import annotations

import math
import os
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .errors import EXIT_BAD_IMAGE, EXIT_USAGE, UsageError, VpmuError
from .qemudiff import QEMU_BOARD_ARGS
from .qemudiff import find_qemu as find_qemu

GUEST_DIR = Path(__file__).resolve().parent.parent / "guests" / "build"
BENCH_OVERHEAD = 4                  # instructions of bench_measure in the counted window (bench_common.h)
START, END = "bench: start", "bench: end"
COUNT_KEYS = ("inst", "cpu_cycles", "br", "ld", "st", "mem", "cycles")
DEFAULT_MEMORY = 512 << 20          # both boards get the same RAM (QEMU: -m 512)
# A round may run at most this many instructions (by the workload's estimate): at the slowest
# workload's speed that is still minutes, not hours.  The vpmu run is also given an instruction
# limit (twice the estimate plus BOOT_INSNS), so a guest that does not end cannot hang it.
MAX_ROUND_INSNS = 5_000_000_000
BOOT_INSNS = 10_000_000             # room for a guest's boot and report around the window
PLAIN_TIMEOUT = 120.0               # seconds plain Unicorn may take for one call (at least)
QEMU_TIMEOUT = 300.0                # seconds QEMU may take for one run (at least)
SLOWEST_MIPS = 1.0                  # the timeouts grow with the estimate at this speed
EXIT_QEMU = EXIT_USAGE              # QEMU missing or failing: as `vpmu qemu-diff`


@dataclass(frozen=True)
class Plain:
    """How plain Unicorn runs a workload's measured function.

    ``func`` is the function's symbol; its argument registers x0..x2 are the ones the guest
    passed (its ``a0``..``a2`` lines).  ``setup``: the guest's own functions run first, in
    order, untimed, with their x0.. arguments (they bring the CPU and memory to the state
    the function expects, e.g. the MMU on)."""
    func: str
    setup: tuple = ()               # ((symbol, (x0, x1, ...)), ...)


@dataclass(frozen=True)
class Arg:
    """A guest argument (``--append "name=value"``): its default and the range accepted."""
    name: str
    default: int
    lo: int
    hi: int


@dataclass(frozen=True)
class Workload:
    name: str
    guest: str                      # guests/build/<guest>.elf
    args: tuple                     # the guest's arguments: (Arg, ...)
    scale: str                      # the argument --scale multiplies
    what: str                       # one line: what it models
    insns: Callable[[dict], int]    # about how many instructions a round runs with these arguments
    plain: Optional[Plain] = None
    no_plain: str = ""              # why plain Unicorn cannot run it (plain is None)

    def guest_path(self, guest_dir: Path | str | None = None) -> str:
        return str(Path(guest_dir or GUEST_DIR) / f"{self.guest}.elf")

    def arguments(self, scale: float = 1.0, overrides: dict | None = None) -> dict:
        """The guest arguments: defaults, the scale argument multiplied by ``scale``, then
        ``overrides`` (key -> int).  UsageError for an unknown key, a value outside the
        argument's range or a round estimated above MAX_ROUND_INSNS."""
        spec = {a.name: a for a in self.args}
        if not (math.isfinite(scale) and scale > 0):
            raise UsageError(f"--scale must be a positive number (got {scale!r})")
        a = {k: x.default for k, x in spec.items()}
        if scale != 1.0:
            a[self.scale] = max(1, round(a[self.scale] * scale))
        for k, v in (overrides or {}).items():
            if k not in a:
                raise UsageError(f"workload {self.name}: no argument {k!r} (it takes "
                                 f"{', '.join(sorted(a))})")
            a[k] = int(v)
        for k, v in a.items():
            if not spec[k].lo <= v <= spec[k].hi:
                raise UsageError(f"workload {self.name}: {k}={v} is outside {spec[k].lo}..{spec[k].hi}")
        if self.insns(a) > MAX_ROUND_INSNS:
            raise UsageError(f"workload {self.name} {append_string(a)}: about {self.insns(a):.2g} instructions "
                             f"per round, more than the {MAX_ROUND_INSNS:.0e} a round may run")
        return a


_NO_PLAIN_BOARD = ("needs the board: plain Unicorn reports exceptions and interrupts to a hook "
                   "instead of taking them to VBAR_EL1, and has no GIC or timer")
_N = 1_000_000_000                  # the largest iteration / event count any workload takes

# Default sizes: a round's window takes 0.1-0.3 s under vpmu on the development VM (README,
# "Speed"), so `vpmu bench` stays at a few seconds per workload.  The instruction estimates
# are the guests' counts per iteration / page / event (measured) with some margin.
WORKLOADS: tuple[Workload, ...] = (
    Workload("loop10", "bench", (Arg("n", 2_000_000, 1, _N),), "n",
             "the 10-instruction loop (2 loads, 2 stores, ALU, a conditional branch): guests/src/bench.c",
             lambda a: 10 * a["n"], Plain("bench_loop")),
    Workload("loop6", "bench_loops", (Arg("k", 6, 6, 6), Arg("n", 3_000_000, 1, _N)), "n",
             "issue 10's 6-instruction loop (add, ldr, add, str, subs, b.ne): one block per iteration",
             lambda a: 6 * a["n"], Plain("loop6")),
    Workload("loop4", "bench_loops", (Arg("k", 4, 4, 4), Arg("n", 4_000_000, 1, _N)), "n",
             "a 4-instruction loop (ldr, add, subs, b.ne): one block per iteration",
             lambda a: 4 * a["n"], Plain("loop4")),
    Workload("mmu", "bench_mmu", (Arg("mb", 128, 1, 1024), Arg("r", 8, 1, 100_000), Arg("touch", 16, 1, 1 << 18)),
             "r",
             "MMU set-up: map MB MiB page by page, each PTE write followed by dsb ishst; "
             "tlbi vaae1is; dsb ish (kvm-unit-tests/Linux style), touch, unmap; R rounds",
             lambda a: 24 * 256 * a["mb"] * a["r"],
             Plain("mmu_rounds", (("mmu_enable", (0,)), ("mmu_setup", ())))),
    Workload("icache", "bench_icache", (Arg("n", 5000, 1, _N), Arg("len", 32, 3, 64), Arg("pages", 16, 1, 64)),
             "n",
             "code generation: write a LEN-instruction function, dc cvau + ic ivau per line, dsb ish, isb, "
             "call it (Linux caches_clean_inval_pou style); N times over PAGES pages",
             lambda a: a["n"] * (8 * a["len"] + 64),
             Plain("icache_run", (("mmu_enable", (0,)),))),
    Workload("timer_syscalls", "bench_syscalls", (Arg("n", 6000, 1, _N), Arg("k", 2000, 4, 1_000_000)), "n",
             "an EL1 kernel and an EL0 program (MMU on, user pages with AP bits) making a system call "
             "every K instructions, a 250 Hz virtual-timer tick through the GICv3",
             lambda a: a["n"] * (a["k"] + 256), no_plain=_NO_PLAIN_BOARD),
    Workload("exceptions", "bench_exceptions", (Arg("n", 8000, 4, _N), Arg("k", 200, 4, 1_000_000)), "n",
             "EL0 demand paging with frame reclaim (data abort, PTE write, tlbi vale1is) and BRK/UDF traps "
             "the kernel skips: N exceptions, one every K instructions",
             lambda a: a["n"] * (a["k"] + 64), no_plain=_NO_PLAIN_BOARD),
)

BY_NAME = {w.name: w for w in WORKLOADS}


def get(name: str) -> Workload:
    try:
        return BY_NAME[name]
    except KeyError:
        raise UsageError(f"unknown workload {name!r} (known: {', '.join(BY_NAME)})") from None


def parse_spec(spec: str) -> tuple[Workload, dict]:
    """``NAME`` or ``NAME:KEY=VALUE,...`` (the command line's workload arguments)."""
    name, _, rest = spec.partition(":")
    over = {}
    for item in filter(None, rest.split(",")):
        k, sep, v = item.partition("=")
        try:
            over[k.strip()] = int(v, 0)
        except ValueError:
            sep = ""
        if not sep or not k.strip():
            raise UsageError(f"workload {spec!r}: expected NAME:KEY=NUMBER,... (got {item!r})")
    return get(name), over


def append_string(args: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in args.items())


def _kv(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k and " " not in k:
            out[k] = v.strip()
    return out


def _int(kv: dict, key: str) -> int:
    return int(kv[key], 0)


def counts(kv: dict) -> dict:
    """The guest's counter values (COUNT_KEYS) as ints."""
    return {k: _int(kv, k) for k in COUNT_KEYS if k in kv}


# ============================================================================== vpmu
@dataclass
class VpmuRound:
    seconds: float                  # "bench: start" to "bench: end"
    setup: float                    # building the machine (image, device tree, engine, hooks)
    startup: float                  # building the machine and the guest's boot, to "bench: start"
    insns: int                      # the guest's INST_RETIRED over the window
    kv: dict                        # the guest's key=value lines
    status: int

    @property
    def mips(self) -> float:
        return self.insns / self.seconds / 1e6


class _Marks:
    """Guest output sink that notes when the "bench: start" / "bench: end" lines complete."""

    def __init__(self):
        self.out = bytearray()
        self.t: dict = {}

    def __call__(self, b: bytes) -> None:
        self.out += b
        if b.endswith(b"\n"):
            line = self.out[self.out.rfind(b"\n", 0, len(self.out) - 1) + 1:-1].rstrip(b"\r")
            if line in (b"bench: start", b"bench: end"):
                self.t[line.decode()] = time.perf_counter()


_runtime_loaded = False


def load_runtime(path: str) -> float:
    """Load what every vpmu run of this process shares (the board's modules, Unicorn, the
    compiled kernels and native hooks from numba's cache) by building one machine for the
    guest ``path`` and discarding it; returns the seconds it took (0 once loaded).  The
    rounds come after it, so their machine set-up times are the machine's alone: Python's
    and vpmu's own start-up is not in any measured time (``vpmu bench --startup`` and
    tools/startup.py measure it)."""
    global _runtime_loaded
    if _runtime_loaded:
        return 0.0
    t = time.perf_counter()
    from .board.loader import open_image
    from .board.machine import Machine
    from .options import RunOptions
    Machine(RunOptions().to_machine_config(), open_image(path), out=lambda b: None).close()
    _runtime_loaded = True
    return time.perf_counter() - t


def _board_run(path: str, append: str, memory: int, eager: bool, max_insns: int,
               out: Callable[[bytes], None]) -> tuple[int, float, float]:
    """The one place that drives the board: run the guest with the default PMU, its output
    to ``out``; returns the guest's exit status, the seconds spent building the machine and
    the moment (time.perf_counter) that started."""
    from .board.loader import open_image
    from .board.machine import Machine
    from .options import RunOptions
    t = time.perf_counter()
    cfg = RunOptions(memory=memory, append=append, eager=eager, max_insns=max_insns).to_machine_config()
    m = Machine(cfg, open_image(path), out=out, err=out)
    setup = time.perf_counter() - t
    try:
        return m.run(), setup, t
    finally:
        m.close()


def run_vpmu(path: str, args: dict, *, memory: int = DEFAULT_MEMORY, eager: bool = False,
             max_insns: int = 2 * MAX_ROUND_INSNS + BOOT_INSNS) -> VpmuRound:
    """One round under vpmu; ``max_insns`` bounds the whole run (measure() passes twice the
    workload's estimate plus BOOT_INSNS)."""
    marks = _Marks()
    status, setup, t0 = _board_run(path, append_string(args), memory, eager, max_insns, marks)
    text = marks.out.decode("utf-8", "replace")
    if START not in marks.t or END not in marks.t:
        raise VpmuError(f"{path}: no '{START}' / '{END}' lines (not a benchmark guest?)", EXIT_BAD_IMAGE)
    kv = _kv(text)
    if status != 0 or "inst" not in kv:
        tail = " | ".join(text.splitlines()[-3:])
        raise VpmuError(f"{path}: the guest failed under vpmu (exit status {status}): {tail}", EXIT_BAD_IMAGE)
    return VpmuRound(seconds=marks.t[END] - marks.t[START], setup=setup, startup=marks.t[START] - t0,
                     insns=_int(kv, "inst"), kv=kv, status=status)


# ============================================================================== plain Unicorn
@dataclass
class PlainRound:
    seconds: float
    insns: int
    result: int                     # x0 after the function returned

    @property
    def mips(self) -> float:
        return self.insns / self.seconds / 1e6


def _symbols(path: str) -> dict:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    with open(path, "rb") as f:
        st = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in st.iter_symbols()} if isinstance(st, SymbolTableSection) else {}


class _Watchdog(threading.Thread):
    """Stops a Unicorn engine after ``seconds``, and keeps stopping it every 10 ms until the
    caller's emu_start has returned: a stop that lands before emu_start has begun (a busy
    host may run this thread first) is forgotten by Unicorn."""

    def __init__(self, uc, seconds: float):
        super().__init__(daemon=True)
        self.uc, self.seconds, self.done = uc, seconds, threading.Event()

    def run(self) -> None:
        if self.done.wait(self.seconds):
            return
        while True:
            self.uc.emu_stop()
            if self.done.wait(0.01):
                return

    def finish(self) -> None:
        self.done.set()
        self.join()


def run_plain(path: str, plain: Plain, kv: dict, *, memory: int = DEFAULT_MEMORY,
              timeout: Optional[float] = None) -> PlainRound:
    """The measured function on Unicorn without hooks, as the guest called it (``kv``: the
    guest's output under vpmu: its call and its instruction count); each call is stopped
    after ``timeout`` seconds (default PLAIN_TIMEOUT)."""
    limit = timeout if timeout is not None else PLAIN_TIMEOUT
    import unicorn
    from unicorn import arm64_const as R
    from unicorn import unicorn_const as UC
    from unicorn.unicorn_py3.arch.arm64 import UcAArch64
    from . import arch as X
    from .board.loader import open_image
    from .board.memmap import RAM_BASE
    sym = _symbols(path)
    need = {plain.func, "bench_plain_return", "__stack_top", *(s for s, _ in plain.setup)}
    if not need <= set(sym):
        raise VpmuError(f"{path}: symbols missing for plain Unicorn: {', '.join(sorted(need - set(sym)))}",
                        EXIT_BAD_IMAGE)
    if _int(kv, "fn") != sym[plain.func]:
        raise VpmuError(f"{path}: the guest measured {kv['fn']}, not {plain.func}", EXIT_BAD_IMAGE)
    uc = unicorn.Uc(UC.UC_ARCH_ARM64, UC.UC_MODE_ARM)
    assert isinstance(uc, UcAArch64)        # Uc() returns the architecture's class (cpr_read/cpr_write)
    uc.ctl_set_cpu_model(R.UC_CPU_ARM64_A57)
    uc.cpr_write(*X.SCR_EL3, X.SCR_RW)      # an AArch64 EL1, as the board (vpmu/board/machine.py says why)
    uc.mem_map(RAM_BASE, memory)
    for paddr, blob, memsz in open_image(path).segments:
        # as the board's loader: the file's bytes, then the zero-filled rest (.bss)
        uc.mem_write(paddr, blob + bytes(memsz - len(blob)))
    stop = sym["bench_plain_return"]

    def call(addr: int, regs: tuple) -> None:
        for i, v in enumerate(regs):
            uc.reg_write(R.UC_ARM64_REG_X0 + i, v)
        uc.reg_write(R.UC_ARM64_REG_SP, sym["__stack_top"])
        uc.reg_write(R.UC_ARM64_REG_LR, stop)
        # Bounded by a watchdog thread: emu_start's own `count` adds a hook per instruction
        # and its `timeout` was measured to slow the loops by a third.
        watchdog = _Watchdog(uc, limit)
        watchdog.start()
        try:
            uc.emu_start(addr, stop)
        except unicorn.UcError as e:
            raise VpmuError(f"{path}: plain Unicorn stopped at {uc.reg_read(R.UC_ARM64_REG_PC):#x}: {e}",
                            EXIT_BAD_IMAGE) from None
        finally:
            watchdog.finish()
        if uc.reg_read(R.UC_ARM64_REG_PC) != stop:
            raise VpmuError(f"{path}: plain Unicorn did not return within {limit:g} s", EXIT_BAD_IMAGE)

    for name, regs in plain.setup:
        call(sym[name], tuple(regs))
    regs = (_int(kv, "a0"), _int(kv, "a1"), _int(kv, "a2"))
    t = time.perf_counter()
    call(sym[plain.func], regs)
    dt = time.perf_counter() - t
    return PlainRound(seconds=dt, insns=_int(kv, "inst") - BENCH_OVERHEAD, result=uc.reg_read(R.UC_ARM64_REG_X0))


# ============================================================================== QEMU
@dataclass
class QemuRound:
    seconds: float                  # the window by QEMU's host clock (the guest's SYS_ELAPSED difference)
    line_seconds: float             # "bench: start" to "bench: end" as the lines arrived (not reliable)
    startup: float                  # spawn to "bench: start" (QEMU's start-up and the guest's own set-up)
    total: float                    # spawn to exit
    kv: dict
    status: int


def qemu_command(qemu: str, path: str, args: dict, memory: int = DEFAULT_MEMORY) -> list[str]:
    return [qemu, *QEMU_BOARD_ARGS, "-m", f"{memory >> 20}M", "-kernel", path, "-append", append_string(args)]


def run_qemu(qemu: str, path: str, args: dict, *, memory: int = DEFAULT_MEMORY,
             timeout: float = QEMU_TIMEOUT) -> QemuRound:
    cmd = qemu_command(qemu, path, args, memory)
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        t: dict = {}
        lines = []
        try:
            assert p.stdout is not None
            for raw in iter(p.stdout.readline, b""):
                now = time.perf_counter()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line in (START, END):
                    t[line] = now
                lines.append(line)
            status = p.wait()
        finally:
            timer.cancel()
            if p.poll() is None:
                p.kill()
                p.wait()
        total = time.perf_counter() - t0
        err.seek(0)
        msg = err.read().decode("utf-8", "replace").strip()
    if START not in t or END not in t:
        why = f"killed after {timeout:.0f} s" if total >= timeout else f"exit status {status}"
        raise VpmuError(f"QEMU did not run {Path(path).name} to its end ({why}): "
                        f"{msg.splitlines()[-1] if msg else ' | '.join(lines[-3:])}", EXIT_QEMU)
    kv = _kv("\n".join(lines))
    if "elapsed" not in kv or _int(kv, "tickfreq") <= 0:
        raise VpmuError(f"QEMU: {Path(path).name} printed no elapsed=/tickfreq= (not a benchmark guest?)",
                        EXIT_QEMU)
    return QemuRound(seconds=_int(kv, "elapsed") / _int(kv, "tickfreq"), line_seconds=t[END] - t[START],
                     startup=t[START] - t0, total=total, kv=kv, status=status)


# ============================================================================== rounds
def _median(xs: list[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


@dataclass
class Measurement:
    """A workload's rounds.  Per-round lists are in round order; the figures reported
    (properties) are medians over the rounds."""
    workload: str
    guest: str                      # the image's path
    args: dict
    rounds: int
    counts: dict                    # the guest's counts (identical in every round)
    insns: int                      # instructions of the vpmu window (the guest's INST_RETIRED)
    vpmu_load: float = 0.0          # loading vpmu's runtime before round 1 (0: loaded before), not a round's
    vpmu_seconds: list = field(default_factory=list)    # the window: "bench: start" to "bench: end"
    vpmu_setup: list = field(default_factory=list)      # building the machine
    vpmu_startup: list = field(default_factory=list)    # building the machine and booting to "bench: start"
    plain_insns: int = 0            # instructions of the function alone (the window's minus BENCH_OVERHEAD)
    plain_seconds: list = field(default_factory=list)
    qemu_seconds: list = field(default_factory=list)
    qemu_insns: int = 0             # QEMU's own INST_RETIRED count of the window
    qemu_startup: list = field(default_factory=list)    # spawning QEMU to "bench: start"
    plain_ratios: list = field(default_factory=list)     # vpmu MIPS / plain MIPS, per round
    qemu_ratios: list = field(default_factory=list)      # vpmu MIPS / QEMU MIPS (QEMU time / vpmu time), per round
    plain_skipped: str = ""         # why there is no plain-Unicorn comparison
    qemu_skipped: str = ""          # why there is no QEMU comparison

    @property
    def vpmu_time(self) -> float:
        return statistics.median(self.vpmu_seconds)

    @property
    def vpmu_mips(self) -> float:
        return self.insns / self.vpmu_time / 1e6

    @property
    def setup_time(self) -> float:
        return statistics.median(self.vpmu_setup)

    @property
    def startup_time(self) -> float:
        return statistics.median(self.vpmu_startup)

    @property
    def plain_time(self) -> Optional[float]:
        return _median(self.plain_seconds)

    @property
    def plain_mips(self) -> Optional[float]:
        return self.plain_insns / self.plain_time / 1e6 if self.plain_time else None

    @property
    def qemu_time(self) -> Optional[float]:
        return _median(self.qemu_seconds)

    @property
    def qemu_mips(self) -> Optional[float]:
        """The window's architecturally retired instructions (the vpmu count: the same work)
        per second of QEMU's clock."""
        return self.insns / self.qemu_time / 1e6 if self.qemu_time else None

    @property
    def plain_ratio(self) -> Optional[float]:
        return _median(self.plain_ratios)

    @property
    def qemu_ratio(self) -> Optional[float]:
        return _median(self.qemu_ratios)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("vpmu_time", "vpmu_mips", "setup_time", "startup_time", "plain_time", "plain_mips",
                  "qemu_time", "qemu_mips", "plain_ratio", "qemu_ratio"):
            d[k] = getattr(self, k)
        return d


def round_limits(w: Workload, args: dict) -> tuple[int, float, float]:
    """From the workload's instruction estimate: the vpmu run's instruction limit and the
    seconds plain Unicorn and QEMU may take (never less than PLAIN_TIMEOUT / QEMU_TIMEOUT)."""
    est = w.insns(args)
    slow = est / (SLOWEST_MIPS * 1e6)
    return 2 * est + BOOT_INSNS, max(PLAIN_TIMEOUT, slow), max(QEMU_TIMEOUT, slow)


def measure(w: Workload, args: dict | None = None, *, rounds: int = 5, qemu: Optional[str] = None,
            qemu_skipped: str = "", plain: bool = True, memory: int = DEFAULT_MEMORY,
            guest_dir: Path | str | None = None, progress: Callable[[str], None] | None = None) -> Measurement:
    """``rounds`` alternating rounds of vpmu, plain Unicorn (if the workload has a plain
    function and ``plain``) and QEMU (if ``qemu`` is a path; ``qemu_skipped`` says why not).
    vpmu's runtime is loaded first (load_runtime), outside every round."""
    if rounds < 1:
        raise UsageError(f"--rounds must be at least 1 (got {rounds})")
    args = dict(args if args is not None else w.arguments())
    path = w.guest_path(guest_dir)
    if not os.path.exists(path):
        raise VpmuError(f"{path}: not found (build the guests: python3 dev.py setup)", EXIT_BAD_IMAGE)
    max_insns, plain_timeout, qemu_timeout = round_limits(w, args)
    m = Measurement(w.name, path, args, rounds, {}, 0, vpmu_load=load_runtime(path),
                    plain_skipped="" if w.plain and plain else (w.no_plain or "not requested"),
                    qemu_skipped="" if qemu else (qemu_skipped or "not requested"))
    for r in range(rounds):
        v = run_vpmu(path, args, memory=memory, max_insns=max_insns)
        c = counts(v.kv)
        if r == 0:
            m.counts, m.insns, m.plain_insns = c, v.insns, v.insns - BENCH_OVERHEAD
        elif c != m.counts:
            raise VpmuError(f"workload {w.name}: round {r + 1} counted {c}, round 1 {m.counts} "
                            f"(the guest is not deterministic under vpmu)", EXIT_BAD_IMAGE)
        m.vpmu_seconds.append(v.seconds)
        m.vpmu_setup.append(v.setup)
        m.vpmu_startup.append(v.startup)
        if w.plain and plain:
            p = run_plain(path, w.plain, v.kv, memory=memory, timeout=plain_timeout)
            if p.result != _int(v.kv, "sum"):
                raise VpmuError(f"workload {w.name}: plain Unicorn returned {p.result:#x}, the guest under vpmu "
                                f"{v.kv['sum']} (not the same computation: no comparison)", EXIT_BAD_IMAGE)
            m.plain_seconds.append(p.seconds)
            m.plain_ratios.append(v.mips / p.mips)
        if qemu:
            q = run_qemu(qemu, path, args, memory=memory, timeout=qemu_timeout)
            if q.kv.get("sum") != v.kv.get("sum"):
                raise VpmuError(f"workload {w.name}: QEMU computed sum={q.kv.get('sum')}, vpmu {v.kv.get('sum')} "
                                f"(not the same computation: no comparison)", EXIT_QEMU)
            m.qemu_seconds.append(q.seconds)
            m.qemu_insns = _int(q.kv, "inst")
            m.qemu_startup.append(q.startup)
            m.qemu_ratios.append(q.seconds / v.seconds)
        if progress:
            progress(f"{w.name}: round {r + 1}/{rounds}")
    return m


# ============================================================================== reports
def _r(x: float) -> str:
    """A ratio: two decimals, or two significant digits below 0.1."""
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def _range(xs: list) -> str:
    return f"{_r(min(xs))}-{_r(max(xs))}"


def _mips(x: float) -> str:
    return f"{x:7.2f}" if x < 1000 else f"{x:7.0f}"


def format_measurement(w: Workload, m: Measurement) -> str:
    """The text report of one workload (the loop benchmark's layout, one block per workload)."""
    n = len(m.vpmu_seconds)
    rounds = f"{n} round{'s' if n != 1 else ''}"
    lines = [f"{w.name}: {w.what}",
             f"  guest: {m.guest} {append_string(m.args)}",
             f"  counters: 6 event counters + cycle counter; {rounds} (figures: medians over the rounds)",
             f"  vpmu : {m.insns:>11} instructions in {m.vpmu_time:9.5f} s = {_mips(m.vpmu_mips)} MIPS  "
             f"(machine set-up {m.setup_time:.3f} s; set-up and boot to '{START}' {m.startup_time:.3f} s)"]
    if m.plain_time:
        assert m.plain_mips is not None and m.plain_ratio is not None
        fastest = (m.insns / min(m.vpmu_seconds)) / (m.plain_insns / min(m.plain_seconds))
        lines.append(f"  plain: {m.plain_insns:>11} instructions in {m.plain_time:9.5f} s = "
                     f"{_mips(m.plain_mips)} MIPS  (Unicorn, no hooks)")
        lines.append(f"  ratio: {_r(m.plain_ratio)}  (vpmu / plain MIPS: median of {rounds}, range "
                     f"{_range(m.plain_ratios)}; fastest vpmu / fastest plain round {_r(fastest)})")
    else:
        lines.append(f"  plain: skipped: {m.plain_skipped}")
    if m.qemu_time:
        assert m.qemu_mips is not None and m.qemu_ratio is not None
        own = f"; QEMU's INST_RETIRED {m.qemu_insns}" if m.qemu_insns != m.insns else ""
        lines.append(f"  qemu : {m.insns:>11} instructions in {m.qemu_time:9.5f} s = {_mips(m.qemu_mips)} MIPS  "
                     f"(TCG -icount shift=0, QEMU's clock; process start to '{START}' "
                     f"{statistics.median(m.qemu_startup):.3f} s{own})")
        lines.append(f"  ratio to QEMU: {_r(m.qemu_ratio)}  (vpmu / QEMU MIPS: median of {rounds}, range "
                     f"{_range(m.qemu_ratios)})")
    else:
        lines.append(f"  qemu : skipped: {m.qemu_skipped}")
    lines.append("  counts: " + " ".join(f"{k}={v}" for k, v in m.counts.items()))
    return "\n".join(lines)


def format_summary(ms: list[Measurement]) -> str:
    """One line per workload (medians): instructions, vpmu time, MIPS and machine set-up,
    plain Unicorn MIPS and the ratio to it, QEMU MIPS and the ratio to it."""
    head = ["workload", "instructions", "vpmu s", "vpmu MIPS", "set-up s", "plain MIPS", "vs plain",
            "QEMU MIPS", "vs QEMU"]
    rows = [head]
    for m in ms:
        rows.append([m.workload, str(m.insns), f"{m.vpmu_time:.4f}", f"{m.vpmu_mips:.2f}", f"{m.setup_time:.3f}",
                     f"{m.plain_mips:.2f}" if m.plain_mips else "-", _r(m.plain_ratio) if m.plain_ratio else "-",
                     f"{m.qemu_mips:.1f}" if m.qemu_mips else "-", _r(m.qemu_ratio) if m.qemu_ratio else "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(wd) if i == 0 else c.rjust(wd) for i, (c, wd) in enumerate(zip(r, widths)))
                     for r in rows)

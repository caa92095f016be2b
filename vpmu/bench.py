"""``vpmu bench``: the counting path against plain Unicorn, on the same code in the same run.

The benchmark guest (guests/build/bench.elf) programs six event counters (INST_RETIRED,
CPU_CYCLES, BR_RETIRED, LD_RETIRED, ST_RETIRED, MEM_ACCESS) and the cycle counter and runs
``bench_loop`` (10 instructions per iteration).  The same ``bench_loop`` then runs on a
plain Unicorn engine with no hooks.  vpmu is timed from the guest's "bench: start" line to
its "bench: end" line (enabling the counters, the loop and its first classification, and
disabling them), plain Unicorn around ``emu_start``.  The two alternate for --rounds
rounds.  The ratio is vpmu MIPS / plain MIPS: the median of the per-round ratios (each
compares two runs made moments apart, which is what stays stable on a shared, noisy
machine), with the ratio of the fastest round of each and its range printed too.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import VpmuError

# 10 instructions an iteration: 10**9 iterations are minutes per round at vpmu's speed
MAX_ITERATIONS = 10**9
MAX_ROUNDS = 1000


def default_guest() -> str:
    return str(Path(__file__).resolve().parent.parent / "guests" / "build" / "bench.elf")


def _symbols(path: str) -> dict:
    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as f:
        st = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in st.iter_symbols()} if st else {}


def plain_unicorn(path: str, iterations: int) -> tuple[int, float]:
    """bench_loop(iterations, buf) on Unicorn without any hook: (instructions, seconds)."""
    import unicorn
    from unicorn import arm64_const as R
    from unicorn import unicorn_const as UC
    from .board.loader import open_image
    img = open_image(path)
    sym = _symbols(path)
    if not {"bench_loop", "bench_end", "bench_buf"} <= set(sym):
        raise VpmuError(f"{path}: no bench_loop/bench_end/bench_buf symbols")
    uc = unicorn.Uc(UC.UC_ARCH_ARM64, UC.UC_MODE_ARM)
    uc.ctl_set_cpu_model(R.UC_CPU_ARM64_A57)
    uc.mem_map(0x4000_0000, 128 << 20)
    for paddr, blob, memsz in img.segments:
        uc.mem_write(paddr, blob)
    buf = sym["bench_buf"]              # the same buffer the guest uses
    uc.reg_write(R.UC_ARM64_REG_X0, iterations)
    uc.reg_write(R.UC_ARM64_REG_X1, buf)
    uc.reg_write(R.UC_ARM64_REG_LR, sym["bench_end"])
    t = time.perf_counter()
    uc.emu_start(sym["bench_loop"], sym["bench_end"])
    dt = time.perf_counter() - t
    return 10 * iterations + 3, dt


class _Marks:
    """Guest output sink that notes when the "bench: start" / "bench: end" lines complete."""

    def __init__(self):
        self.out = bytearray()
        self.t: dict = {}

    def __call__(self, b: bytes) -> None:
        self.out += b
        if b.endswith(b"\n"):
            line = self.out[self.out.rfind(b"\n", 0, len(self.out) - 1) + 1:-1]
            if line in (b"bench: start", b"bench: end"):
                self.t[line.decode()] = time.perf_counter()


def vpmu_run(path: str, iterations: int | None = None) -> tuple[int, float, float, dict]:
    """The guest under vpmu: (loop instructions, loop seconds, machine set-up seconds, result kv)."""
    t0 = time.perf_counter()
    from .board.loader import open_image
    from .board.machine import Machine
    from .options import RunOptions
    marks = _Marks()
    cfg = RunOptions(append=f"n={iterations}" if iterations is not None else "").to_machine_config()
    m = Machine(cfg, open_image(path), out=marks)
    t1 = time.perf_counter()
    m.run()
    m.close()
    kv = dict(line.split("=", 1) for line in marks.out.decode().splitlines() if "=" in line)
    if set(marks.t) != {"bench: start", "bench: end"}:
        raise VpmuError(f"{path}: no 'bench: start' / 'bench: end' lines (not the benchmark guest?)", 101)
    return int(kv.get("inst", "0")), marks.t["bench: end"] - marks.t["bench: start"], t1 - t0, kv


def startup(path: str, runs: int = 3) -> tuple[float, float]:
    """Cold (fresh numba cache) and warm wall time of `vpmu run` on the trivial guest."""
    import tempfile
    exe = [sys.executable, "-m", "vpmu", "run", path]
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, VPMU_CACHE_DIR=d)
        t = time.perf_counter()
        subprocess.run(exe, env=env, capture_output=True, check=True)
        cold = time.perf_counter() - t
    warm = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(exe, capture_output=True, check=True)
        warm.append(time.perf_counter() - t)
    return cold, min(warm)


@dataclass
class Measurement:
    """``rounds`` alternating rounds of the guest under vpmu and ``bench_loop`` on plain Unicorn."""
    path: str
    iterations: int
    rounds: int
    vpmu_insns: int              # the fastest vpmu round: loop instructions and seconds
    vpmu_seconds: float
    setup_seconds: float         # machine set-up, fastest round (the first also loads the kernels)
    plain_insns: int             # the fastest plain round
    plain_seconds: float
    ratios: list = field(default_factory=list)   # per round vpmu MIPS / plain MIPS, sorted
    counts: dict = field(default_factory=dict)   # the guest's key=value results (last round)

    @property
    def vpmu_mips(self) -> float:
        return self.vpmu_insns / self.vpmu_seconds / 1e6

    @property
    def plain_mips(self) -> float:
        return self.plain_insns / self.plain_seconds / 1e6

    @property
    def median_ratio(self) -> float:
        return self.ratios[len(self.ratios) // 2]


def measure(path: str, iterations: int, rounds: int) -> Measurement:
    """Alternate vpmu and plain-Unicorn rounds; VpmuError if the guest is not the benchmark."""
    if not os.path.exists(path):
        raise VpmuError(f"{path}: not found (build the guests: python3 dev.py setup)", 101)
    if rounds < 1 or iterations < 1:
        raise VpmuError("--rounds and --iterations must be at least 1", 2)
    if rounds > MAX_ROUNDS or iterations > MAX_ITERATIONS:
        raise VpmuError(f"--rounds must be at most {MAX_ROUNDS} and --iterations at most {MAX_ITERATIONS} "
                        f"(got {rounds} and {iterations})", 2)
    runs_v, runs_p = [], []
    kv: dict = {}
    for _ in range(rounds):
        n_v, t_v, t_start, kv = vpmu_run(path, iterations)
        iters = int(kv.get("iterations", "0"))
        if iters != iterations:
            raise VpmuError(f"{path}: the guest ran {iters} iterations, not {iterations} "
                            f"(not the benchmark guest?)", 101)
        n_p, t_p = plain_unicorn(path, iters)
        runs_v.append((t_v, n_v, t_start))
        runs_p.append((t_p, n_p))
    t_v, n_v, _ = min(runs_v)
    t_p, n_p = min(runs_p)
    ratios = sorted((n / tv) / (m / tp) for (tv, n, _), (tp, m) in zip(runs_v, runs_p))
    return Measurement(path, iterations, rounds, n_v, t_v, min(r[2] for r in runs_v), n_p, t_p, ratios, kv)

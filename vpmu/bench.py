"""``vpmu bench``: the named benchmark workloads (vpmu.workloads) under vpmu, against plain
Unicorn and QEMU TCG -icount on the same image.

Each workload (vpmu bench --list) is a guest that runs one function with six event
counters and the cycle counter enabled. Rounds alternate: the guest under vpmu (timed
between its "bench: start" and "bench: end" lines; machine set-up reported apart, Python's
start-up in no figure), the same function on plain Unicorn without hooks (where Unicorn
alone can run it), and the guest on qemu-system-aarch64 -icount shift=0 when it is
installed (timed by QEMU's clock through semihosting SYS_ELAPSED). Reported per workload:
MIPS and the ratios vpmu MIPS / plain MIPS and vpmu MIPS / QEMU MIPS, each the median of
the per-round ratios; times and MIPS are medians over the rounds.

This module turns the command line's choices into workloads and arguments (:func:`plan`),
finds QEMU (:func:`resolve_qemu`), runs the measurements (:func:`measure`) and measures
start-up (:func:`startup`); the rounds themselves are vpmu.workloads.measure.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from . import workloads as W
from .errors import UsageError, VpmuError

DEFAULT_ROUNDS = 5
MAX_ROUNDS = 100
MAX_SCALE = 1000.0
LOOPS = ("loop10", "loop6", "loop4")        # the workloads --iterations sizes (their n)
ITERATIONS_ARG = "n"


def default_guest_dir() -> Path:
    return W.GUEST_DIR


def check_rounds(rounds: int) -> int:
    if not 1 <= rounds <= MAX_ROUNDS:
        raise UsageError(f"--rounds must be 1..{MAX_ROUNDS} (got {rounds})")
    return rounds


def plan(specs: list[str], *, scale: float = 1.0, iterations: Optional[int] = None) -> list[tuple[W.Workload, dict]]:
    """The workloads to run and their guest arguments.  ``specs``: ``NAME`` or
    ``NAME:KEY=VALUE,...`` (none: every workload, in the table's order).  ``scale``
    multiplies each workload's scale argument; ``iterations`` sets the loops' ``n``
    unless a spec sets it.  UsageError for anything out of range."""
    if not (math.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise UsageError(f"--scale must be a number in (0, {MAX_SCALE:g}] (got {scale!r})")
    chosen = [W.parse_spec(s) for s in specs] if specs else [(w, {}) for w in W.WORKLOADS]
    if iterations is not None:
        if not any(w.name in LOOPS for w, _ in chosen):
            raise UsageError(f"--iterations sizes the loop workloads ({', '.join(LOOPS)}); none is selected")
        chosen = [(w, {ITERATIONS_ARG: iterations, **over} if w.name in LOOPS else over) for w, over in chosen]
    return [(w, w.arguments(scale=scale, overrides=over)) for w, over in chosen]


def resolve_qemu(qemu: Optional[str], use: bool = True) -> tuple[Optional[str], str]:
    """(path of qemu-system-aarch64, "") or (None, why the QEMU comparison is skipped).
    An explicit ``qemu`` that does not exist is a usage error (exit 2, as qemu-diff)."""
    if not use:
        return None, "--no-qemu"
    found = W.find_qemu(qemu)
    if found:
        return found, ""
    if qemu:
        raise UsageError(f"--qemu {qemu}: not found")
    return None, "qemu-system-aarch64 not found on PATH (install QEMU or pass --qemu PATH)"


def measure(chosen: list[tuple[W.Workload, dict]], *, rounds: int = DEFAULT_ROUNDS, qemu: Optional[str] = None,
            qemu_skipped: str = "", guest_dir: Path | str | None = None,
            progress: Callable[[str], None] | None = None) -> Iterator[W.Measurement]:
    """Each workload's rounds (vpmu.workloads.measure), one Measurement per workload as it
    completes.  Every guest must exist before the first round runs."""
    check_rounds(rounds)
    for w, _ in chosen:
        path = w.guest_path(guest_dir)
        if not os.path.exists(path):
            raise VpmuError(f"{path}: not found (build the guests: python3 dev.py setup)", W.EXIT_BAD_IMAGE)
    for w, args in chosen:
        yield W.measure(w, args, rounds=rounds, qemu=qemu, qemu_skipped=qemu_skipped, guest_dir=guest_dir,
                        progress=progress)


def startup(path: str, runs: int = 3) -> tuple[float, float]:
    """Cold (fresh numba cache) and warm (fastest of ``runs``) wall time of `vpmu run` on
    the guest ``path``, each a fresh interpreter: the start-up the measurements exclude."""
    if not os.path.exists(path):
        raise VpmuError(f"{path}: not found (build the guests: python3 dev.py setup)", W.EXIT_BAD_IMAGE)
    exe = [sys.executable, "-m", "vpmu", "run", path]

    def timed(env: Optional[dict] = None) -> float:
        t = time.perf_counter()
        p = subprocess.run(exe, env=env, capture_output=True)
        if p.returncode != 0:
            last = (p.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
            raise VpmuError(f"start-up: `vpmu run {path}` exited {p.returncode}: {last}", W.EXIT_BAD_IMAGE)
        return time.perf_counter() - t

    with tempfile.TemporaryDirectory() as d:
        cold = timed(dict(os.environ, VPMU_CACHE_DIR=d))
    return cold, min(timed() for _ in range(runs))

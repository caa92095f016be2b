"""``vpmu qemu-diff``: run a guest under vpmu and under QEMU's virt board; compare.

QEMU is run as ``qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57 -icount shift=0
-semihosting -nographic -nic none -m 128M -kernel GUEST`` (``-icount shift=0``: one
instruction = 1 ns, which is what vpmu's default cycle model gives).  vpmu runs with
``--pmu-version 3.0``, the PMU version of QEMU's cortex-a57.  Both outputs (UART /
semihosting) and exit statuses are compared line by line; ``--ignore KEY`` drops
``KEY=...`` lines that are known to differ (docs/qemu-compat.md lists where QEMU's TCG
PMU differs: unsupported events count 0, PMCR_EL0 IDCODE/IMP/LC, CHAIN, ...).
Exit status: 0 identical, 1 different, 2 QEMU missing or failed to start.
"""
from __future__ import annotations

import difflib
import os
import shutil
import subprocess
from dataclasses import dataclass

from .api import run
from .errors import VpmuError

# QEMU's board as vpmu's (the benchmark workloads, vpmu.workloads, use it with their own -m)
QEMU_BOARD_ARGS = ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-icount", "shift=0", "-semihosting",
                   "-nographic", "-nic", "none"]
QEMU_ARGS = [*QEMU_BOARD_ARGS, "-m", "128M"]


def find_qemu(path: str | None = None) -> str | None:
    return path if path and os.path.exists(path) else shutil.which(path or "qemu-system-aarch64")


@dataclass
class Outcome:
    status: int
    lines: list[str]


def run_qemu(qemu: str, guest: str, timeout: float = 60.0, extra: list[str] | None = None) -> Outcome:
    cmd = [qemu, *QEMU_ARGS, *(extra or []), "-kernel", guest]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise VpmuError(f"QEMU did not finish within {timeout:.0f} s: {' '.join(cmd)}", 2) from None
    if p.returncode != 0 and not p.stdout and p.stderr:
        raise VpmuError(f"QEMU failed: {p.stderr.decode(errors='replace').strip().splitlines()[-1]}", 2)
    return Outcome(p.returncode, p.stdout.decode(errors="replace").replace("\r\n", "\n").splitlines())


def run_vpmu(guest: str, options: dict) -> Outcome:
    """The guest under vpmu with ``vpmu run``'s options (keyword names of vpmu.run())."""
    r = run(guest, **options)
    if r.error:
        raise VpmuError(f"vpmu: {r.error}", 2)
    return Outcome(r.exit_status, r.output.splitlines())


def _keep(line: str, ignore: set[str]) -> bool:
    k, sep, _ = line.partition("=")
    return not (sep and k.strip() in ignore)


def compare(a: Outcome, b: Outcome, ignore: set[str]) -> list[str]:
    """Differences as lines ('' list = identical)."""
    la = [x for x in a.lines if _keep(x, ignore)]
    lb = [x for x in b.lines if _keep(x, ignore)]
    out = []
    if a.status != b.status:
        out.append(f"exit status: vpmu {a.status}, QEMU {b.status}")
    if la != lb:
        out.extend(difflib.unified_diff(la, lb, "vpmu", "qemu", lineterm="", n=1))
    return out

#!/usr/bin/env python3
"""Where `vpmu run` spends its start-up: import and load phases, then the run itself.

    .venv/bin/python tools/startup.py [GUEST] [--repeat N]

Each repetition is a fresh interpreter (the phases are one-time costs); prints one line per
repetition and the fastest of each phase.  `vpmu bench --startup` gives the end-to-end
figures; this splits them.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, sys, time
t = [time.perf_counter()]
import numpy; t.append(time.perf_counter())
import numba; t.append(time.perf_counter())
import unicorn, elftools; t.append(time.perf_counter())
import vpmu.pmu.counting, vpmu.pmu.registers, vpmu.pmu.codecache; t.append(time.perf_counter())
import vpmu.pmu.hooks; t.append(time.perf_counter())
import vpmu.cli, vpmu.board.machine; t.append(time.perf_counter())
from vpmu.api import run
r = run(sys.argv[1]); t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])] + [r.exit_status]))
"""
PHASES = ["numpy", "numba", "unicorn+pyelftools", "vpmu kernel modules", "native hooks (cached)",
          "rest of vpmu", "run the guest"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("guest", nargs="?", default=str(ROOT / "guests" / "build" / "hello.elf"))
    ap.add_argument("--repeat", type=int, default=5, metavar="N")
    args = ap.parse_args(argv)
    if not Path(args.guest).exists():
        print(f"startup.py: {args.guest}: not found (python3 dev.py setup builds the guests)", file=sys.stderr)
        return 2
    rows = []
    for _ in range(max(1, args.repeat)):
        p = subprocess.run([sys.executable, "-c", PROBE, args.guest], capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            print(f"startup.py: the probe failed:\n{p.stderr.strip()}", file=sys.stderr)
            return 1
        *times, status = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append(times)
        print("  ".join(f"{n} {t:.2f}" for n, t in zip(PHASES, times)) + f"  total {sum(times):.2f} s")
    best = [min(col) for col in zip(*rows)]
    print("fastest of each phase: " + ", ".join(f"{n} {t:.2f} s" for n, t in zip(PHASES, best))
          + f"; sum {sum(best):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

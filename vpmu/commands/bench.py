"""``vpmu bench``: counting-path speed against plain Unicorn (see vpmu.bench)."""
from __future__ import annotations

import os
from pathlib import Path

from .. import bench
from ..bench import default_guest, plain_unicorn, startup, vpmu_run
from ..errors import VpmuError


def cmd_bench(args) -> int:
    path = args.guest or default_guest()
    if not os.path.exists(path):
        raise VpmuError(f"{path}: not found (build the guests: python3 dev.py setup)", 101)
    if args.rounds < 1 or args.iterations < 1:
        raise VpmuError("--rounds and --iterations must be at least 1", 2)
    runs_v, runs_p = [], []
    for _ in range(args.rounds):
        n_v, t_v, t_start, kv = vpmu_run(path, args.iterations)
        iters = int(kv.get("iterations", "0"))
        if iters != args.iterations:
            raise VpmuError(f"{path}: the guest ran {iters} iterations, not {args.iterations} "
                            f"(not the benchmark guest?)", 101)
        n_p, t_p = plain_unicorn(path, iters)
        runs_v.append((t_v, n_v, t_start))
        runs_p.append((t_p, n_p))
    t_v, n_v, _ = min(runs_v)
    t_start = min(r[2] for r in runs_v)            # the first round also loads the compiled kernels
    t_p, n_p = min(runs_p)
    mips_v, mips_p = n_v / t_v / 1e6, n_p / t_p / 1e6
    ratios = sorted((n / tv) / (m / tp) for (tv, n, _), (tp, m) in zip(runs_v, runs_p))
    print(f"guest: {path}")
    print(f"  counters: 6 event counters + cycle counter; loop iterations {args.iterations}; "
          f"{args.rounds} rounds (times: the fastest)")
    print(f"  vpmu : {n_v:>11} instructions in {t_v:7.3f} s = {mips_v:7.1f} MIPS  (machine set-up {t_start:.3f} s)")
    print(f"  plain: {n_p:>11} instructions in {t_p:7.3f} s = {mips_p:7.1f} MIPS  (Unicorn, no hooks)")
    print(f"  ratio: {ratios[len(ratios) // 2]:.2f}  (median of {len(ratios)} rounds, range "
          f"{ratios[0]:.2f}-{ratios[-1]:.2f}; fastest vpmu / fastest plain round {mips_v / mips_p:.2f})")
    print(f"  counts: inst={kv.get('inst')} br={kv.get('br')} ld={kv.get('ld')} st={kv.get('st')} "
          f"mem={kv.get('mem')} cycles={kv.get('cycles')}")
    if args.startup:
        triv = str(Path(path).with_name("hello.elf"))
        cold, warm = startup(triv)
        print(f"  start-up of `vpmu run {Path(triv).name}`: cold {cold:.2f} s (empty numba cache), warm {warm:.2f} s")
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="counting-path speed against plain Unicorn (MIPS and ratio)",
                       description=bench.__doc__.split("\n\n")[1])
    p.add_argument("guest", nargs="?", help="benchmark guest (default guests/build/bench.elf)")
    p.add_argument("--iterations", type=int, default=2_000_000, metavar="N",
                   help="loop iterations per round (10 instructions each; default 2000000)")
    p.add_argument("--rounds", type=int, default=7, metavar="R",
                   help="alternating vpmu / plain rounds; the median ratio is reported (default 7)")
    p.add_argument("--startup", action="store_true", help="also measure cold and warm start-up of `vpmu run`")
    p.set_defaults(func=cmd_bench)

"""``vpmu bench``: counting-path speed against plain Unicorn (the measurement: vpmu.bench)."""
from __future__ import annotations

from pathlib import Path

from .. import bench


def register(sub) -> None:
    p = sub.add_parser("bench", help="counting-path speed against plain Unicorn (MIPS and ratio)",
                       description=bench.__doc__.split("\n\n")[1])
    p.add_argument("guest", nargs="?", help="benchmark guest (default guests/build/bench.elf)")
    p.add_argument("--iterations", type=int, default=2_000_000, metavar="N",
                   help=f"loop iterations per round (10 instructions each; 1..{bench.MAX_ITERATIONS}, default 2000000)")
    p.add_argument("--rounds", type=int, default=7, metavar="R",
                   help=f"alternating vpmu / plain rounds; the median ratio is reported "
                        f"(1..{bench.MAX_ROUNDS}, default 7)")
    p.add_argument("--startup", action="store_true", help="also measure cold and warm start-up of `vpmu run`")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    m = bench.measure(args.guest or bench.default_guest(), args.iterations, args.rounds)
    kv = m.counts
    print(f"guest: {m.path}")
    print(f"  counters: 6 event counters + cycle counter; loop iterations {m.iterations}; "
          f"{m.rounds} rounds (times: the fastest)")
    print(f"  vpmu : {m.vpmu_insns:>11} instructions in {m.vpmu_seconds:7.3f} s = {m.vpmu_mips:7.1f} MIPS  "
          f"(machine set-up {m.setup_seconds:.3f} s)")
    print(f"  plain: {m.plain_insns:>11} instructions in {m.plain_seconds:7.3f} s = {m.plain_mips:7.1f} MIPS  "
          "(Unicorn, no hooks)")
    print(f"  ratio: {m.median_ratio:.2f}  (median of {len(m.ratios)} rounds, range "
          f"{m.ratios[0]:.2f}-{m.ratios[-1]:.2f}; fastest vpmu / fastest plain round {m.vpmu_mips / m.plain_mips:.2f})")
    print(f"  counts: inst={kv.get('inst')} br={kv.get('br')} ld={kv.get('ld')} st={kv.get('st')} "
          f"mem={kv.get('mem')} cycles={kv.get('cycles')}")
    if args.startup:
        triv = str(Path(m.path).with_name("hello.elf"))
        cold, warm = bench.startup(triv)
        print(f"  start-up of `vpmu run {Path(triv).name}`: cold {cold:.2f} s (empty numba cache), warm {warm:.2f} s")
    return 0

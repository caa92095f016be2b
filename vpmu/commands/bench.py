"""``vpmu bench``: named workloads against plain Unicorn and QEMU (the measurement: vpmu.bench)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import bench
from .. import workloads as W
from ..errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("bench", help="speed of named workloads: MIPS, ratios to plain Unicorn and QEMU -icount",
                       description=bench.__doc__.split("\n\n")[1])
    p.add_argument("workloads", nargs="*", metavar="WORKLOAD[:KEY=N,...]",
                   help="workloads to run, optionally with guest arguments, e.g. mmu:mb=128,r=1 "
                        "(default: all; --list shows them)")
    p.add_argument("--list", action="store_true", help="list the workloads, their arguments and ranges, and exit")
    p.add_argument("--rounds", type=int, default=bench.DEFAULT_ROUNDS, metavar="R",
                   help=f"alternating vpmu / plain / QEMU rounds per workload, 1..{bench.MAX_ROUNDS}; medians are "
                        f"reported (default {bench.DEFAULT_ROUNDS})")
    p.add_argument("--scale", type=float, default=1.0, metavar="X",
                   help="multiply each workload's size argument (--list: 'scale') by X (default 1)")
    p.add_argument("--iterations", type=int, default=None, metavar="N",
                   help=f"loop iterations of the loop workloads ({', '.join(bench.LOOPS)}; "
                        "default: theirs, --list)")
    q = p.add_mutually_exclusive_group()
    q.add_argument("--qemu", metavar="PATH", default=None,
                   help="qemu-system-aarch64 to compare with (default: from PATH; skipped with a reason if absent)")
    q.add_argument("--no-qemu", action="store_true", help="no QEMU comparison")
    p.add_argument("--json", metavar="FILE", help="also write the measurements as JSON ('-': only JSON, to stdout)")
    p.add_argument("--guest-dir", metavar="DIR", default=None,
                   help="directory of the built benchmark guests (default guests/build)")
    p.add_argument("--startup", action="store_true", help="also measure cold and warm start-up of `vpmu run`")
    p.set_defaults(func=cmd_bench)


def _list() -> str:
    lines = []
    for w in W.WORKLOADS:
        args = ", ".join(f"{a.name}={a.default} ({a.lo}..{a.hi})" for a in w.args)
        plain = "plain Unicorn: yes" if w.plain else f"plain Unicorn: no ({w.no_plain})"
        lines += [f"{w.name}: {w.what}", f"  guest {w.guest}.elf; {args}; scale: {w.scale}", f"  {plain}"]
    return "\n".join(lines)


def cmd_bench(args) -> int:
    if args.list:
        print(_list())
        return 0
    if args.json == "":
        raise UsageError("--json needs a file name (or '-')")
    chosen = bench.plan(args.workloads, scale=args.scale, iterations=args.iterations)
    bench.check_rounds(args.rounds)
    qemu, skipped = bench.resolve_qemu(args.qemu, not args.no_qemu)
    text = args.json != "-"
    sink = None
    if args.json and text:
        try:                                    # before the rounds: a bad path fails at once
            sink = open(args.json, "w")
        except OSError as e:
            raise UsageError(f"--json {args.json}: {e.strerror}") from None
    try:
        return _run(args, chosen, qemu, skipped, text, sink)
    finally:
        if sink:
            sink.close()


def _run(args, chosen, qemu, skipped, text, sink) -> int:
    out: list[W.Measurement] = []
    for m in bench.measure(chosen, rounds=args.rounds, qemu=qemu, qemu_skipped=skipped, guest_dir=args.guest_dir):
        out.append(m)
        if text:
            if m.vpmu_load:
                print(f"(vpmu's runtime loaded in {m.vpmu_load:.2f} s before the rounds; in no figure below)")
            print(W.format_measurement(W.get(m.workload), m), flush=True)
    if text and len(out) > 1:
        print()
        print(W.format_summary(out))
    startup = None
    if args.startup:
        hello = str(Path(args.guest_dir or bench.default_guest_dir()) / "hello.elf")
        cold, warm = bench.startup(hello)
        startup = {"guest": hello, "cold": cold, "warm": warm}
        if text:
            print(f"start-up of `vpmu run {Path(hello).name}`: cold {cold:.2f} s (empty numba cache), "
                  f"warm {warm:.2f} s")
    if args.json:
        doc = {"rounds": args.rounds, "qemu": qemu, "qemu_skipped": skipped,
               "workloads": [m.to_dict() for m in out], "startup": startup}
        json.dump(doc, sink or sys.stdout, indent=1)
        (sink or sys.stdout).write("\n")
    return 0

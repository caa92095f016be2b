"""``vpmu stat``: perf stat for a guest (vpmu.stat): run it with runner-side counters the guest
cannot see and print perf stat's table, ``-x SEP`` lines or ``--json`` lines."""
from __future__ import annotations

import argparse
import sys

from .. import stat
from .run import add_run_options, options_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "stat", help="count a guest's events like perf stat (perf's event names, derived metrics)",
        description="Run a guest and count events the way `perf stat` counts a program: with counters of "
                    "the runner's own, beyond the guest's PMCR_EL0.N, which the guest cannot see (its own "
                    "PMU and readings are untouched). By default only while the guest's PMCR_EL0.E is 1, "
                    "so the counts equal what the guest reads itself; --window run counts every instruction. "
                    "More events than free counters (31 - N): the deterministic guest runs once per group, "
                    "exact counts, 100% running. The table goes to stderr (or -o FILE), the guest's output "
                    "to stdout; the exit status is the guest's, or the runner's error status.")
    p.add_argument("guest", metavar="GUEST", help="guest image")
    g = p.add_argument_group("stat")
    g.add_argument("-e", "--event", dest="events", action="append", metavar="EVENTS",
                   help="events to count, comma-separated, {a,b} a group, repeatable: perf names "
                        "(instructions, cycles, branches, branch-misses, cache-misses, "
                        "stalled-cycles-frontend, L1-dcache-load-misses ...), rNN, armv8_pmuv3_0/event=0xNN/, "
                        "Arm names, numbers; :u/:k count at EL0/EL1 only (default: perf's: "
                        + ",".join(stat.DEFAULT_EVENTS) + ")")
    g.add_argument("-r", "--repeat", type=int, default=1, metavar="N",
                   help=f"run N times, 1..{stat.MAX_REPEAT}, and show the spread (always 0: vpmu is deterministic)")
    fmt = g.add_mutually_exclusive_group()
    fmt.add_argument("-x", "--field-separator", dest="sep", metavar="SEP",
                     help="perf's separated lines: value, unit, event, [variance,] run time (guest ns), "
                          "running %%, metric value, metric unit")
    fmt.add_argument("-j", "--json", action="store_true", help="perf's JSON: one object per event and line")
    g.add_argument("-o", "--output", metavar="FILE", help="write the counts to FILE instead of stderr")
    g.add_argument("--window", choices=stat.WINDOWS, default="enabled",
                   help="enabled (default): count while the guest's PMCR_EL0.E is 1; run: the whole run")
    add_run_options(p)
    p.set_defaults(func=cmd_stat)


def cmd_stat(args: argparse.Namespace) -> int:
    rep = stat.measure(args.guest, options_from_args(args), args.events, window=args.window, repeat=args.repeat)
    if args.json:
        text = stat.format_json(rep)
    elif args.sep:
        text = stat.format_sv(rep, args.sep)
    else:
        text = stat.format_std(rep)
    sys.stdout.flush()
    if args.output:
        try:
            with open(args.output, "w") as f:
                f.write(text)
        except OSError as e:
            raise stat.StatError(f"cannot write {args.output}: {e.strerror or e}") from None
    else:
        sys.stderr.write(text)
    if rep.error:
        sys.stderr.write(f"vpmu: {rep.error}\n")
    return rep.exit_status

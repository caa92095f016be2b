"""``vpmu trace summary|diff|plot`` (see vpmu.tracecmd)."""
from __future__ import annotations

import sys

from .. import report, tracecmd
from ..testing import context, first_difference
from ..errors import UsageError
from ..tracecmd import check_plot_size, load, plot, stream
from .output import add_format_options, render


def cmd_summary(args) -> int:
    data = tracecmd.summary_data(stream(args.trace))      # any length: the records are read once
    sys.stdout.write(render(args, data, lambda: tracecmd.summary_text(data),
                            lambda sep: report.records_to_sv(data["counters"], sep, tracecmd.SUMMARY_COLUMNS)))
    return 0


def cmd_diff(args) -> int:
    if args.context < 0:
        raise UsageError(f"--context must not be negative (got {args.context})")
    a, b = load(args.a), load(args.b)
    i = first_difference(a, b, args.upto)
    runs = [r for r in (a[:1] + b[:1]) if r.get("type") == "run"]
    if len(runs) == 2 and {k: v for k, v in runs[0].items() if k != "image"} != \
            {k: v for k, v in runs[1].items() if k != "image"}:
        print("(the runs' configurations differ: "
              + ", ".join(f"{k} {runs[0].get(k)} vs {runs[1].get(k)}" for k in runs[0]
                          if k != "image" and runs[0].get(k) != runs[1].get(k)) + ")")
    if i is None:
        print(f"traces agree ({len(a)} records" + (f" up to icount {args.upto}" if args.upto is not None else "") + ")")
        return 0
    ca = [r for r in a if (args.upto is None or r["icount"] <= args.upto) and r.get("type") != "run"]
    cb = [r for r in b if (args.upto is None or r["icount"] <= args.upto) and r.get("type") != "run"]
    print(f"first divergence at record {i}:")
    print(f" {args.a}:\n" + (context(ca, i, args.context) if i < len(ca) else "  (ends here)"))
    print(f" {args.b}:\n" + (context(cb, i, args.context) if i < len(cb) else "  (ends here)"))
    return 1


def cmd_plot(args) -> int:
    fmt = tracecmd.plot_format(args.output, args.format)
    check_plot_size(args.width, args.height)          # before reading a long trace
    plot(load(args.trace), args.output, args.width, args.height, fmt=fmt, yscale=args.yscale, layout=args.layout,
         unwrap=not args.raw)
    print(f"wrote {args.output} ({fmt}, {args.width}x{args.height})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("trace", help="summarise, diff or plot JSON Lines traces", description=tracecmd.__doc__)
    tsub = p.add_subparsers(dest="trace_cmd", metavar="SUBCOMMAND")
    tsub.required = True
    s = tsub.add_parser("summary", help="per-counter final values, overflows and interrupts")
    s.add_argument("trace")
    add_format_options(s, "the summary (-x: the counter table)")
    s.set_defaults(func=cmd_summary)
    d = tsub.add_parser("diff", help="first divergence between two traces (exit 1 if they differ)")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--upto", type=int, default=None, metavar="ICOUNT", help="compare records up to this icount")
    d.add_argument("--context", type=int, default=2, metavar="N", help="neighbouring records to show (default 2)")
    d.set_defaults(func=cmd_diff)
    pl = tsub.add_parser("plot", help="PNG or SVG of counter values against retired instructions (needs matplotlib)",
                         description="Plot each counter against retired instructions, labelled with the event it "
                                     "counted; overflows are red x marks, PMU interrupts dashed lines. Run the guest "
                                     "with --trace-sample N (and --trace-pmu-regs) for points along the way.")
    pl.add_argument("trace")
    pl.add_argument("-o", "--output", required=True, help="image file to write (.png or .svg)")
    pl.add_argument("--format", choices=tracecmd.PLOT_FORMATS, default=None,
                    help="image format (default: from the --output extension)")
    pl.add_argument("--yscale", choices=tracecmd.YSCALES, default="linear",
                    help="value axis: linear (default), log, or symlog (linear around 0, log beyond)")
    pl.add_argument("--layout", choices=tracecmd.LAYOUTS, default="panels",
                    help="panels: each counter on its own axes (default); overlay: all on one")
    pl.add_argument("--raw", action="store_true",
                    help="plot the register values as read: a 32-bit counter falls back to 0 when it wraps "
                         "(default: unwrapped, counting on above 2**32)")
    pl.add_argument("--width", type=int, default=1000, help="pixels, 100..10000 (default 1000)")
    pl.add_argument("--height", type=int, default=600, help="pixels, 100..10000 (default 600)")
    pl.set_defaults(func=cmd_plot)

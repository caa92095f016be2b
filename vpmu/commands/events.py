"""``vpmu events [NAME...]``: the event catalogue (vpmu.pmu.events) for a PMU version, with
every event's perf spellings; with NAMEs, what each spelling resolves to."""
from __future__ import annotations

import sys

from .. import report
from ..config import PMU_VERSIONS
from ..errors import EXIT_USAGE
from ..pmu import events, perfnames
from .output import add_format_options, render


def register(sub) -> None:
    ev = sub.add_parser("events", help="list the event catalogue, or resolve event names",
                        description="List the event catalogue: number, name, whether this PMU version "
                                    "counts it, how vpmu derives it, and Linux perf's names for it. With "
                                    "NAMEs, show the event each spelling means (any number, Arm or perf "
                                    "name: instructions, branch-misses, r10, armv8_pmuv3_0/br_mis_pred/, "
                                    "L1-dcache-load-misses, l1d_cache_rd ...); exit 2 if one means none.")
    ev.add_argument("names", nargs="*", metavar="NAME", help="event spellings to resolve")
    ev.add_argument("--pmu-version", choices=sorted(PMU_VERSIONS), default="3.7")
    ev.add_argument("--implemented", action="store_true", help="only events this PMU version counts")
    add_format_options(ev, "the events")
    ev.set_defaults(func=cmd_events)


def _text(recs: list[dict]) -> str:
    lines = []
    for r in recs:
        mark = "yes" if r["implemented"] else "-"
        perf = [a for a in r["perf"] if perfnames.parse(a).kind in ("generic", "cache")]
        note = f"  [perf: {', '.join(perf)}]" if perf else ""
        spelled = f"{r['spelling']} = " if "spelling" in r else ""
        lines.append(f"{spelled}{r['number']:#06x}  {r['name']:<24} {mark:<4} {r['derived'] or r['definition']}{note}")
    return "\n".join(lines) + ("\n" if lines else "")


def cmd_events(args) -> int:
    pv = PMU_VERSIONS[args.pmu_version]
    if args.names:
        recs = []
        for text in args.names:
            try:
                number = perfnames.event_number(text)
            except ValueError as e:
                sys.stderr.write(f"vpmu events: error: {e}\n")
                return EXIT_USAGE
            ev = events.BY_NUMBER.get(number)
            rec = (report.event_record(ev, pv) if ev is not None else
                   {"number": number, "name": "", "kind": "unnamed", "implemented": False, "min_pmu_version": None,
                    "perf": perfnames.aliases(number), "definition": "(no event of the catalogue has this number)",
                    "derived": ""})
            recs.append({"spelling": text, **rec})
    else:
        recs = report.event_records(args.pmu_version, args.implemented)
    cols = (["spelling"] if args.names else []) + report.EVENT_COLUMNS
    sys.stdout.write(render(args, recs, lambda: _text(recs), lambda sep: report.records_to_sv(recs, sep, cols)))
    return 0

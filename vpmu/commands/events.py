"""``vpmu events``: the event catalogue (vpmu.pmu.events) for a PMU version."""
from __future__ import annotations

from ..config import PMU_VERSIONS
from ..pmu import events


def register(sub) -> None:
    ev = sub.add_parser("events", help="list the event catalogue")
    ev.add_argument("--pmu-version", choices=sorted(PMU_VERSIONS), default="3.7")
    ev.add_argument("--implemented", action="store_true", help="only events this PMU version counts")
    ev.set_defaults(func=cmd_events)


def cmd_events(args) -> int:
    pv = PMU_VERSIONS[args.pmu_version]
    for e in events.CATALOGUE:
        if args.implemented and not events.implemented_for(e.number, pv):
            continue
        mark = "yes" if events.implemented_for(e.number, pv) else "-"
        print(f"{e.number:#06x}  {e.name:<24} {mark:<4} {e.derived or e.definition}")
    return 0

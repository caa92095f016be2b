"""Machine-readable reports: the data behind ``vpmu events``, ``run --summary``, ``trace
summary`` and ``policy impact`` as plain dicts, and the two encodings every command offers
for them: JSON (``--json``) and separated values (``-x SEP``, ``--csv`` = ``-x ,``).

The text each command prints is made from the same dicts, so the formats cannot drift.
Separated values follow RFC 4180 with the chosen separator: a header line, then one line per
record; a field holding the separator, a double quote or a line break is double-quoted.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Optional, Sequence

from .config import PMU_VERSIONS, PMUVER_TO_NAME
from .pmu import events, perfnames


def to_json(data: Any) -> str:
    """One JSON document (sorted keys are not used: the order is the report's)."""
    return json.dumps(data, indent=2) + "\n"


def _field(v: Any, sep: str) -> str:
    if v is None:
        s = ""
    elif isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, (list, tuple)):
        s = " ".join(str(x) for x in v)
    else:
        s = str(v)
    if sep in s or '"' in s or "\n" in s or "\r" in s:
        s = '"' + s.replace('"', '""') + '"'
    return s


def to_sv(header: Sequence[str], rows: Iterable[Sequence[Any]], sep: str = ",") -> str:
    """A header line and one line per row, fields joined by ``sep`` (lists: space-joined)."""
    if not sep or "\n" in sep or '"' in sep:
        raise ValueError(f"bad field separator {sep!r}")
    lines = [sep.join(_field(h, sep) for h in header)]
    lines += [sep.join(_field(v, sep) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def records_to_sv(records: Sequence[dict], sep: str, columns: Optional[Sequence[str]] = None) -> str:
    """Records (dicts with the same keys) as separated values, one column per key."""
    cols = list(columns) if columns is not None else (list(records[0]) if records else [])
    return to_sv(cols, ([r.get(c) for c in cols] for r in records), sep)


# ---------------------------------------------------------------------------------------------
# vpmu events

IMPDEF_NUMBERS = frozenset(e.number for e in events.IMPDEF)
EVENT_COLUMNS = ["number", "name", "kind", "implemented", "min_pmu_version", "perf", "definition", "derived"]


def event_record(e: events.Event, pmuver: int) -> dict:
    """One catalogue event: ``implemented`` at PMU version ``pmuver``; ``perf``: every
    perf spelling (vpmu.pmu.perfnames.aliases)."""
    return {"number": e.number, "name": e.name,
            "kind": "impdef" if e.number in IMPDEF_NUMBERS else "common",
            "implemented": events.implemented_for(e.number, pmuver),
            "min_pmu_version": PMUVER_TO_NAME.get(e.min_pmuver, "3.0") if e.implemented else None,
            "perf": perfnames.aliases(e.number), "definition": e.definition, "derived": e.derived}



def event_records(version: str, implemented_only: bool = False) -> list[dict]:
    pv = PMU_VERSIONS[version]
    return [event_record(e, pv) for e in events.ALL
            if not implemented_only or events.implemented_for(e.number, pv)]


# ---------------------------------------------------------------------------------------------
# vpmu run --summary

SUMMARY_COLUMNS = ["counter", "index", "event", "event_name", "value", "enabled", "overflowed", "interrupt"]


def _event_name(ev: int) -> Optional[str]:
    e = events.BY_NUMBER.get(ev)
    return e.name if e else None


def run_summary(res) -> dict:
    """``vpmu run --summary`` as data: how the run ended and the final PMU registers, one
    record per counter (PMEV0..N-1, then PMCCNTR, index 31)."""
    p = res.pmu or {}
    out: dict = {"reason": res.reason, "exit_status": res.exit_status, "instructions": res.icount,
                 "cycles": res.cycles}
    if not p:
        out["pmu"] = None
        return out
    regs = {k: p[k] for k in ("pmcr", "pmcntenset", "pmintenset", "pmovsset", "pmselr", "pmuserenr",
                              "pmccfiltr", "pmceid0", "pmceid1") if k in p}
    counters = []
    for i in range(p["n"]):
        ev = p["evtyper"][i] & 0xFFFF
        counters.append({"counter": f"PMEV{i}", "index": i, "event": ev, "event_name": _event_name(ev),
                         "value": p["evcntr"][i], "enabled": bool(p["pmcntenset"] >> i & 1),
                         "overflowed": bool(p["pmovsset"] >> i & 1),
                         "interrupt": bool(p["pmintenset"] >> i & 1)})
    counters.append({"counter": "PMCCNTR", "index": 31, "event": 0x11, "event_name": "CPU_CYCLES",
                     "value": p["pmccntr"], "enabled": bool(p["pmcntenset"] >> 31 & 1),
                     "overflowed": bool(p["pmovsset"] >> 31 & 1), "interrupt": bool(p["pmintenset"] >> 31 & 1)})
    out["pmu"] = {"n": p["n"], "pmcr_e": bool(p["pmcr"] & 1), "registers": regs, "counters": counters}
    return out


def run_summary_text(data: dict) -> str:
    """The human ``--summary`` (stderr) from :func:`run_summary`'s data."""
    lines = [f"vpmu: {data['reason']} status={data['exit_status']} instructions={data['instructions']} "
             f"cycles={data['cycles']}"]
    pmu = data.get("pmu")
    if not pmu:
        return "\n".join(lines) + "\n"
    r = pmu["registers"]
    lines.append(f"  PMCR_EL0={r['pmcr']:#x} (E={int(pmu['pmcr_e'])}, N={pmu['n']})  "
                 f"PMCNTENSET={r['pmcntenset']:#x}  PMOVSSET={r['pmovsset']:#x}  PMINTENSET={r['pmintenset']:#x}")
    lines.append(f"  {'counter':<9} {'event':<26} {'value':>20} {'enabled':>8} {'overflowed':>11}")
    for c in pmu["counters"]:
        name = f"{c['event_name'] or 'event'} ({c['event']:#x})"
        lines.append(f"  {c['counter']:<9} {name:<26} {c['value']:>20} {int(c['enabled']):>8} "
                     f"{int(c['overflowed']):>11}")
    return "\n".join(lines) + "\n"

"""``vpmu stat``: count a guest's events the way ``perf stat`` counts a program.

How the events are counted.  The guest programs its own PMU, so ``vpmu stat`` must not use
the guest's counters (the guest would see them change; its own readings would change).  It
counts like ``perf stat`` on a host counting a KVM guest: with counters of its own that the
guest cannot see.  The model has 31 event counters; the guest sees PMCR_EL0.N of them
(``--counters``, default 6), and ``vpmu stat`` programs the others ("observers",
:class:`vpmu.config.Observers`): counters N, N+1, ... are beyond PMCR_EL0.N, so no guest access,
PMCR.P reset, enable, overflow flag, interrupt or CHAIN reaches them, and the kernels add
events to them through the same commit path as to the guest's counters (same instruction
boundaries, same cycle model, same branch predictor), 64 bits wide and unfiltered by a KVM
filter.  A guest's run with observers is the run without them: every trace record is the
same (tests/test_stat.py checks it), except that counting a cache event starts the cache
model from the first instruction, as ``--cache`` does.

Which instructions count (``--window``).  ``enabled`` (the default): only while the guest's
PMCR_EL0.E is 1, the region the guest measures itself, counted by the same rule as its own
counters (a PMCR write that sets E counts itself, one that clears it does not) - so the counts
equal what the guest reads from counters programmed with the same events and no EL filter;
``run``: every instruction from the first to the exit.

More events than free counters.  ``perf stat`` time-multiplexes event groups and scales the
counts by enabled/running time.  vpmu's runs are deterministic, so it runs the guest once per
group of at most 31 - N events instead: every event is counted over the whole window, the
counts are exact, nothing is scaled, and running/enabled is 100%.  ``-r N`` runs everything N
times; the spread is always 0 (determinism), and is reported as such.

Derived metrics are perf's (``tools/perf/util/stat-shadow.c``), matched by event number and
exception levels rather than by spelling: insn per cycle (INST_RETIRED / CPU_CYCLES), stalled
cycles per insn, branch misses "of all branches" (BR_MIS_PRED / PC_WRITE_RETIRED: the driver's
``branches``), cache misses "of all cache refs" (L1D_CACHE_REFILL / L1D_CACHE), the L1I, TLB
and LLC miss ratios, and frontend/backend cycles idle (STALL_* / CPU_CYCLES).

Output (:func:`format_std`, :func:`format_sv`, :func:`format_json`): perf stat's table, its
``-x SEP`` lines (value, unit, event, [variance,] run time, running %, metric, metric unit)
and its ``--json`` lines (one object per event).  The run time is guest time in ns (the cycle
model's 1 GHz clock, WFI included).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from . import api, errors
from .config import Observers
from .options import RunOptions
from .pmu import events
from .pmu.perfnames import EventSpec, parse

NCOUNTERS = 31                 # event counters of the model (PMCR_EL0.N at most 31)
DEFAULT_EVENTS = ("cycles", "stalled-cycles-frontend", "stalled-cycles-backend", "instructions",
                  "branches", "branch-misses")        # perf stat's default hardware events
WINDOWS = ("enabled", "run")
NOT_SUPPORTED = "<not supported>"

INST, CYC, BRANCHES, BR_MIS = 0x08, 0x11, 0x0C, 0x10
STALL_FE, STALL_BE = 0x23, 0x24


class StatError(errors.VpmuError):
    """Bad -e list or options (one line, exit status 2)."""

    def __init__(self, message: str):
        super().__init__(message, errors.EXIT_USAGE)


# ---------------------------------------------------------------------------------------------
# the event list

def split_event_list(text: str) -> list[list[str]]:
    """perf's ``-e`` list: events separated by commas (not those inside ``pmu/.../`` terms),
    ``{a,b}`` a group counted together.  Returns groups; an ungrouped event is a group of one."""
    items: list[list[str]] = []
    group: Optional[list[str]] = None
    cur, in_pmu = "", False

    def flush() -> None:
        nonlocal cur
        t, cur = cur.strip(), ""
        if t and group is not None:
            group.append(t)
        elif t:
            items.append([t])

    for ch in text:
        if ch == "/":
            in_pmu = not in_pmu
        if in_pmu or ch == "/":
            cur += ch
        elif ch == "{":
            if group is not None or cur.strip():
                raise StatError(f"bad event list {text!r}: '{{' inside an event or a group")
            group = []
        elif ch == "}":
            if group is None:
                raise StatError(f"bad event list {text!r}: '}}' without '{{'")
            flush()
            if not group:
                raise StatError(f"bad event list {text!r}: empty group")
            items.append(group)
            group = None
        elif ch == ",":
            flush()
        else:
            cur += ch
    if in_pmu:
        raise StatError(f"bad event list {text!r}: an unterminated pmu/.../")
    if group is not None:
        raise StatError(f"bad event list {text!r}: '{{' without '}}'")
    flush()
    if not items:
        raise StatError(f"empty event list {text!r}")
    return items


@dataclass
class StatEvent:
    spec: EventSpec
    group: int                         # the -e group it belongs to
    supported: bool = True
    reason: str = ""                   # why not supported
    run: int = -1                      # which run of the plan counts it
    values: list = field(default_factory=list)    # one per repeat

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def number(self) -> int:
        """The event number (supported events only)."""
        if self.spec.number is None:
            raise ValueError(f"{self.name} has no event number")
        return self.spec.number

    @property
    def value(self) -> int:
        return self.values[0] if self.values else 0


def parse_events(lists: Optional[list[str]], pmuver: int) -> list[StatEvent]:
    """The events of every ``-e`` (perf's default list without one).  Unknown spellings are
    errors; known ones this PMU cannot count are kept as ``<not supported>``."""
    groups = [[t] for t in DEFAULT_EVENTS] if not lists else [g for t in lists for g in split_event_list(t)]
    out = []
    for gi, grp in enumerate(groups):
        for text in grp:
            try:
                spec = parse(text)
            except ValueError as e:
                raise StatError(str(e)) from None
            ev = StatEvent(spec, gi)
            if spec.number is None:
                ev.supported, ev.reason = False, spec.unsupported
            elif spec.number == events.SW_INCR:
                ev.supported, ev.reason = False, "SW_INCR counts the guest's PMSWINC_EL0 writes to its own counter"
            elif spec.number == events.CHAIN:
                ev.supported, ev.reason = False, "CHAIN counts the overflows of the neighbouring guest counter"
            elif not events.implemented_for(spec.number, pmuver):
                cat = events.BY_NUMBER.get(spec.number)
                ev.supported = False
                ev.reason = (f"{cat.name if cat else hex(spec.number)} is not implemented"
                             + (" at this PMU version" if cat is not None and cat.implemented else " by vpmu"))
            out.append(ev)
    return out


def plan(evs: list[StatEvent], free: int) -> int:
    """Assign the supported events to runs of at most ``free`` observers, in order, an ``-e``
    group never split; returns the number of runs (0 when nothing is countable)."""
    if free <= 0:
        raise StatError("no counters left for vpmu stat: the guest has all 31 (use --counters 30 or fewer)")
    groups: dict[int, list[StatEvent]] = {}
    for ev in evs:
        if ev.supported:
            groups.setdefault(ev.group, []).append(ev)
    run, used = -1, free                      # no run open yet
    for grp in groups.values():
        if len(grp) > free:
            raise StatError(f"the group {{{','.join(e.name for e in grp)}}} has {len(grp)} events but only "
                            f"{free} counters are free beside the guest's {NCOUNTERS - free}")
        if used + len(grp) > free:
            run, used = run + 1, 0
        for ev in grp:
            ev.run = run
        used += len(grp)
    return run + 1


# ---------------------------------------------------------------------------------------------
# measuring

@dataclass
class StatReport:
    guest: str
    events: list
    window: str
    repeat: int
    runs: int                          # runs per repeat (groups of observers)
    free: int                          # counters available beside the guest's
    exit_status: int = 0
    reason: str = ""
    error: Optional[str] = None
    guest_ns: int = 0
    instructions: int = 0
    host_seconds: float = 0.0


# -r N runs the guest N times over: bounded like vpmu bench's --rounds (the runs are identical,
# so a larger N only costs time)
MAX_REPEAT = 100


def measure(guest: str, options: RunOptions, lists: Optional[list[str]], *, window: str = "enabled",
            repeat: int = 1, echo: bool = True) -> StatReport:
    """Run ``guest`` with ``options`` and count the ``-e`` lists (:func:`parse_events`) with
    observers.  The guest's output goes to stdout on the first run (``echo``); the other runs
    are captured and must end the same way (else a vpmu bug, exit status 106)."""
    if window not in WINDOWS:
        raise StatError(f"--window must be one of {', '.join(WINDOWS)}, not {window!r}")
    if repeat < 1:
        raise StatError(f"-r must be at least 1, not {repeat}")
    if repeat > MAX_REPEAT:
        raise StatError(f"-r must be at most {MAX_REPEAT}, not {repeat}")
    base = options.to_machine_config()
    evs = parse_events(lists, base.pmu.pmuver)
    free = NCOUNTERS - base.pmu.counters
    runs = plan(evs, free)
    rep = StatReport(guest, evs, window, repeat, runs, free)
    first: Optional[api.RunResult] = None
    t0 = time.perf_counter()
    for r in range(repeat):
        for k in range(max(runs, 1)):
            members = [e for e in evs if e.supported and e.run == k]
            cfg = options.to_machine_config() if first is None else replace(options, trace=None).to_machine_config()
            cfg.observe = Observers(tuple((e.number, e.spec.user, e.spec.kernel) for e in members), window)
            res = api.run_config(guest, cfg, capture=not (echo and first is None), keep_trace=False)
            if res.error is not None and res.exit_status in (errors.EXIT_USAGE, errors.EXIT_BAD_IMAGE,
                                                             errors.EXIT_KVM, errors.EXIT_INTERNAL):
                raise errors.VpmuError(res.error, res.exit_status)
            if first is None:
                first = res
                rep.host_seconds = time.perf_counter() - t0
            elif (res.exit_status, res.icount, res.cycles, res.error) != \
                    (first.exit_status, first.icount, first.cycles, first.error):
                raise errors.VpmuError(f"the runs of {guest} differ (status {first.exit_status} vs "
                                       f"{res.exit_status}, {first.icount} vs {res.icount} instructions): "
                                       "vpmu is meant to be deterministic", errors.EXIT_INTERNAL)
            for e, v in zip(members, res.observed):
                e.values.append(v)
    assert first is not None
    rep.exit_status, rep.reason, rep.error = first.exit_status, first.reason, first.error
    rep.guest_ns, rep.instructions = first.guest_ns, first.icount
    return rep


# ---------------------------------------------------------------------------------------------
# derived metrics (perf's stat-shadow.c)

@dataclass
class Metric:
    value: float
    fmt: str                  # perf's printf format of the value
    unit: str


def _find(rep: StatReport, number: int, like: StatEvent) -> Optional[StatEvent]:
    for e in rep.events:
        if e.supported and e.spec.number == number and (e.spec.user, e.spec.kernel) == (like.spec.user,
                                                                                        like.spec.kernel):
            return e
    return None


_MISS_RATIOS = {0x01: (0x14, "of all L1-icache accesses"), 0x05: (0x25, "of all dTLB cache accesses"),
                0x02: (0x26, "of all iTLB cache accesses"), 0x37: (0x36, "of all LL-cache accesses")}


def metrics(rep: StatReport, ev: StatEvent) -> list[Metric]:
    """perf's shadow metrics of one event (none for an event it has none for)."""
    if not ev.supported:
        return []
    n, avg = ev.spec.number, float(ev.value)

    def other(number: int) -> Optional[float]:
        e = _find(rep, number, ev)
        return float(e.value) if e is not None else None
    out = []
    if n == INST:
        cyc = other(CYC)
        if cyc:
            out.append(Metric(avg / cyc, "%7.2f ", "insn per cycle"))
        stalled = max(other(STALL_FE) or 0.0, other(STALL_BE) or 0.0)
        if stalled and avg:
            out.append(Metric(stalled / avg, "%7.2f ", "stalled cycles per insn"))
    elif n == BR_MIS:
        br = other(BRANCHES)
        if br is not None:
            out.append(Metric(avg / br * 100 if br else 0.0, "%7.2f%%", "of all branches"))
    elif n == 0x03:
        refs = other(0x04)
        if refs is not None:
            ratio = avg / refs * 100 if refs else 0.0
            if ev.spec.kind == "cache":
                out.append(Metric(ratio, "%7.2f%%", "of all L1-dcache accesses"))
            else:
                out.append(Metric(ratio, "%8.3f %%", "of all cache refs"))
    elif n in _MISS_RATIOS:
        den_n, unit = _MISS_RATIOS[n]
        den = other(den_n)
        if den is not None:
            out.append(Metric(avg / den * 100 if den else 0.0, "%7.2f%%", unit))
    elif n in (STALL_FE, STALL_BE):
        cyc = other(CYC)
        ratio = avg / cyc * 100 if cyc else 0.0
        if ratio:
            out.append(Metric(ratio, "%7.2f%%", "frontend cycles idle" if n == STALL_FE else "backend cycles idle"))
    return out


def spread_pct(values: list[int]) -> float:
    """perf's relative standard deviation of the mean, in percent (rel_stddev_stats)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    if not mean:
        return 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return 100.0 * math.sqrt(var / n) / mean


# ---------------------------------------------------------------------------------------------
# output (perf's stat-display.c)

COUNTS_LEN, EVNAME_LEN, METRIC_LEN, UNIT_WIDTH = 18, 32, 38, 4


def _avg(ev: StatEvent) -> float:
    return sum(ev.values) / len(ev.values) if ev.values else 0.0


def format_std(rep: StatReport) -> str:
    """perf stat's table (what it prints on stderr), with vpmu's notes after it."""
    runs = f" ({rep.repeat} runs)" if rep.repeat > 1 else ""
    lines = ["", f" Performance counter stats for '{rep.guest}'{runs}:", ""]
    for ev in rep.events:
        if ev.supported:
            count = f"{round(_avg(ev)):,}"
        else:
            count = NOT_SUPPORTED
        head = f"{count:>{COUNTS_LEN}} {'':<{UNIT_WIDTH}} {ev.name:<{EVNAME_LEN}}"
        ms = metrics(rep, ev)
        noise = f"  ( +-{spread_pct(ev.values):6.2f}% )" if rep.repeat > 1 and ev.supported else ""
        if not ms:
            lines.append((head + " " * METRIC_LEN + noise).rstrip())
            continue
        for i, m in enumerate(ms):
            val = m.fmt % m.value
            body = f" # {val}"
            body += " " + m.unit.ljust(METRIC_LEN - len(body) - 1)
            if i == 0:
                lines.append((head + body + noise).rstrip())
            else:
                lines.append((" " * len(head) + body).rstrip())
    secs = rep.guest_ns / 1e9
    lines.append("")
    if rep.repeat > 1:
        lines.append(f" {secs:17.9f} +- {0.0:.9f} seconds time elapsed  ( +- {0.0:5.2f}% )")
    else:
        lines.append(f" {secs:17.9f} seconds time elapsed")
    lines.append("")
    lines += [" " + n for n in notes(rep)]
    return "\n".join(lines) + "\n"


def notes(rep: StatReport) -> list[str]:
    """What a perf user needs to read vpmu's numbers (the std output prints them last)."""
    out = []
    if rep.window == "enabled":
        out.append("vpmu: counted while the guest's PMCR_EL0.E was 1 (the region it measures itself), "
                   "by counters beyond its PMCR_EL0.N; --window run counts the whole run.")
        if all(e.value == 0 for e in rep.events if e.supported) and any(e.supported for e in rep.events):
            out.append("vpmu: every count is 0: did the guest ever set PMCR_EL0.E? (--window run)")
    else:
        out.append("vpmu: counted from the first instruction to the exit, by counters beyond the "
                   "guest's PMCR_EL0.N.")
    if rep.runs > 1:
        out.append(f"vpmu: {sum(e.supported for e in rep.events)} events, {rep.free} free counters: counted "
                   f"in {rep.runs} runs of the deterministic guest, each event over the whole window "
                   "(exact counts, nothing scaled: 100% running).")
    if rep.repeat > 1:
        if all(len(set(e.values)) <= 1 for e in rep.events):
            out.append(f"vpmu: the {rep.repeat} repeats gave identical counts: the spread is 0 because vpmu "
                       "is deterministic.")
        else:
            out.append(f"vpmu: the {rep.repeat} repeats gave different counts: vpmu is meant to be "
                       "deterministic, please report this.")
    for e in rep.events:
        if not e.supported:
            out.append(f"vpmu: {e.name}: {NOT_SUPPORTED}: {e.reason}.")
    out.append(f"vpmu: guest time {rep.guest_ns} ns (the cycle model's 1 GHz clock, WFI included), "
               f"{rep.instructions} instructions; host time {rep.host_seconds:.3f} s for the first run.")
    return out


def _runtime(rep: StatReport, ev: StatEvent) -> int:
    return rep.guest_ns if ev.supported else 0


def _metric_value_text(m: Metric) -> str:
    """perf -x: the formatted value, spaces and the % sign dropped."""
    s = (m.fmt % m.value).strip()
    end = 0
    while end < len(s) and (s[end].isdigit() or s[end] == "."):
        end += 1
    return s[:end]


def format_sv(rep: StatReport, sep: str) -> str:
    """perf stat -x SEP: per event ``value SEP unit SEP event [SEP variance%] SEP run-time SEP
    running% SEP metric SEP metric-unit``; a second metric goes on its own line after three
    empty fields, as perf does.  No header, no footer (perf's)."""
    lines = []
    for ev in rep.events:
        value = f"{_avg(ev):.0f}" if ev.supported else NOT_SUPPORTED
        f = [value, "", ev.name]
        if rep.repeat > 1:
            f.append(f"{spread_pct(ev.values):.2f}%")
        f += [str(_runtime(rep, ev)), "100.00"]
        ms = metrics(rep, ev)
        f += [_metric_value_text(ms[0]), ms[0].unit] if ms else ["", ""]
        lines.append(sep.join(f))
        for m in ms[1:]:
            lines.append(sep * 3 + sep.join([_metric_value_text(m), m.unit]))
    return "\n".join(lines) + "\n"


def format_json(rep: StatReport) -> str:
    """perf stat --json: one JSON object per event and line (perf's keys)."""
    lines = []
    for ev in rep.events:
        obj: dict = {"counter-value": f"{_avg(ev):f}" if ev.supported else NOT_SUPPORTED, "unit": "",
                     "event": ev.name}
        if rep.repeat > 1:
            obj["variance"] = round(spread_pct(ev.values), 2)
        obj["event-runtime"] = _runtime(rep, ev)
        obj["pcnt-running"] = 100.00
        ms = metrics(rep, ev)
        if ms:
            obj["metric-value"] = round(ms[0].value, 6)
            obj["metric-unit"] = ms[0].unit
        lines.append(json.dumps(obj, separators=(", ", " : ")))
        for m in ms[1:]:
            extra = {"metric-value": round(m.value, 6), "metric-unit": m.unit}
            lines.append(json.dumps(extra, separators=(", ", " : ")))
    return "\n".join(lines) + "\n"


FORMATS: dict[str, Callable[..., str]] = {"std": format_std, "sv": format_sv, "json": format_json}

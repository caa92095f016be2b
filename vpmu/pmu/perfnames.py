"""Linux perf's names for this board's PMU events, derived from the event catalogue.

A Linux guest on this board drives the PMU through the generic PMUv3 driver (the device tree
says ``arm,armv8-pmuv3``; ``drivers/perf/arm_pmuv3.c``, ``arch/arm64/kernel/perf_event.c``
before Linux 6.4), which registers the PMU as ``armv8_pmuv3_0``.  Every spelling perf accepts
for an event of that PMU resolves here to the same event number:

- generic hardware events (``PERF_TYPE_HARDWARE``) as the driver's ``armv8_pmuv3_perf_map``
  maps them: ``instructions`` INST_RETIRED, ``cycles`` CPU_CYCLES, ``branches``
  PC_WRITE_RETIRED (not BR_RETIRED), ``branch-misses`` BR_MIS_PRED, ``cache-references``
  L1D_CACHE, ``cache-misses`` L1D_CACHE_REFILL, ``stalled-cycles-frontend``/``-backend``
  STALL_FRONTEND/STALL_BACKEND, ``bus-cycles`` BUS_CYCLES (``ref-cycles`` has no event);
- hardware cache events (``L1-dcache-load-misses``, ``branch-loads``, ...) with perf's alias
  grammar, as ``armv8_pmuv3_perf_cache_map`` maps them (read accesses and misses only);
- raw events ``rNNNN`` (``PERF_TYPE_RAW``: the hex event number, bits [15:0]);
- the PMU's own syntax: ``armv8_pmuv3_0/event=0x10/``, ``armv8_pmuv3/config=0x10/``,
  ``armv8_pmuv3_0/br_mis_pred/`` (sysfs and JSON aliases), optionally ``name=...``;
- perf's JSON event names (``tools/perf/pmu-events/arch/arm64/``: the common events and the
  Cortex-A57's recommended IMPLEMENTATION DEFINED ones), which are the catalogue's Arm names,
  in any case (``BR_MIS_PRED``, ``l1d_cache_rd``);
- and vpmu's own: a hex or decimal event number (``0x10``, ``16``).

:func:`event_number` is the one parser of an event name: ``--filter`` items, policy files, VM
descriptions, ``vpmu events NAME`` and ``vpmu stat -e`` all use it (:func:`parse` keeps the
spelling and perf's ``:u``/``:k`` modifiers for ``vpmu stat``).  Nothing here names an event
the catalogue does not: the tables below map perf's vocabulary onto catalogue names.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Optional

from . import events

# The PMU as perf sees it on the guest: armpmu_register() names it "<driver name>_<index>".
PMU_NAME = "armv8_pmuv3_0"
PMU_NAMES = ("armv8_pmuv3_0", "armv8_pmuv3")

# perf's generic hardware event names (tools/perf/util/parse-events.c event_symbols_hw; the
# second spelling of a pair is perf's alias) -> the catalogue event armv8_pmuv3_perf_map gives
# PERF_COUNT_HW_* (drivers/perf/arm_pmuv3.c; unchanged since Linux 4.x, the same in 6.1).
GENERIC: dict[str, str] = {
    "cpu-cycles": "CPU_CYCLES", "cycles": "CPU_CYCLES",
    "instructions": "INST_RETIRED",
    "cache-references": "L1D_CACHE",
    "cache-misses": "L1D_CACHE_REFILL",
    "branch-instructions": "PC_WRITE_RETIRED", "branches": "PC_WRITE_RETIRED",
    "branch-misses": "BR_MIS_PRED",
    "bus-cycles": "BUS_CYCLES",
    "stalled-cycles-frontend": "STALL_FRONTEND", "idle-cycles-frontend": "STALL_FRONTEND",
    "stalled-cycles-backend": "STALL_BACKEND", "idle-cycles-backend": "STALL_BACKEND",
}
# Generic names the driver leaves PERF_MAP_ALL_UNSUPPORTED (perf: "<not supported>").
GENERIC_UNSUPPORTED = ("ref-cycles",)

# Hardware cache events (tools/perf/util/evsel.c evsel__hw_cache*): cache, operation and
# result, each with perf's aliases (the first is the canonical spelling); matched case-insensitively.
CACHE_TYPES: dict[str, tuple[str, ...]] = {
    "L1-dcache": ("L1-dcache", "l1-d", "l1d", "L1-data"),
    "L1-icache": ("L1-icache", "l1-i", "l1i", "L1-instruction"),
    "LLC": ("LLC", "L2"),
    "dTLB": ("dTLB", "d-tlb", "Data-TLB"),
    "iTLB": ("iTLB", "i-tlb", "Instruction-TLB"),
    "branch": ("branch", "branches", "bpu", "btb", "bpc"),
    "node": ("node",),
}
CACHE_OPS: dict[str, tuple[str, ...]] = {
    "load": ("load", "loads", "read"),
    "store": ("store", "stores", "write"),
    "prefetch": ("prefetch", "prefetches", "speculative-read", "speculative-load"),
}
CACHE_RESULTS: dict[str, tuple[str, ...]] = {
    "access": ("refs", "Reference", "ops", "access"),
    "miss": ("misses", "miss"),
}
# The operations perf itself accepts per cache (evsel__hw_cache_stat); others are a syntax error.
_CACHE_OPS_VALID = {"L1-dcache": ("load", "store", "prefetch"), "L1-icache": ("load", "prefetch"),
                    "LLC": ("load", "store", "prefetch"), "dTLB": ("load", "store", "prefetch"),
                    "iTLB": ("load",), "branch": ("load",), "node": ("load", "store", "prefetch")}
# armv8_pmuv3_perf_cache_map: (cache, op, result) -> catalogue event; every other valid
# combination is PERF_CACHE_MAP_ALL_UNSUPPORTED.
CACHE_MAP: dict[tuple[str, str, str], str] = {
    ("L1-dcache", "load", "access"): "L1D_CACHE",
    ("L1-dcache", "load", "miss"): "L1D_CACHE_REFILL",
    ("L1-icache", "load", "access"): "L1I_CACHE",
    ("L1-icache", "load", "miss"): "L1I_CACHE_REFILL",
    ("dTLB", "load", "miss"): "L1D_TLB_REFILL",
    ("dTLB", "load", "access"): "L1D_TLB",
    ("iTLB", "load", "miss"): "L1I_TLB_REFILL",
    ("iTLB", "load", "access"): "L1I_TLB",
    ("LLC", "load", "miss"): "LL_CACHE_MISS_RD",
    ("LLC", "load", "access"): "LL_CACHE_RD",
    ("branch", "load", "access"): "BR_PRED",
    ("branch", "load", "miss"): "BR_MIS_PRED",
}

class UnknownEvent(ValueError):
    """The text is no spelling of an event at all (no close match either): a caller that
    splits ``FIRST-LAST`` ranges may try the parts instead."""


MODIFIERS = "uk"            # perf's :u (count at EL0 only) and :k (EL1 only); :uk = both
RAW_MAX = 0xFFFF            # the driver's event field, config:0-15


def cache_name(cache: str, op: str, result: str) -> str:
    """perf's canonical spelling (``L1-dcache-loads``, ``L1-dcache-load-misses``)."""
    if result == "access":
        return f"{cache}-{CACHE_OPS[op][1]}"
    return f"{cache}-{op}-{CACHE_RESULTS[result][0]}"


@dataclass(frozen=True)
class EventSpec:
    """One event as written: its number and how perf would show it.

    ``number`` is None for a name perf knows that has no event on this PMU (``ref-cycles``,
    ``L1-dcache-stores``): ``unsupported`` says why.  ``user``/``kernel``: count at EL0/EL1
    (perf's ``:u``/``:k``; both when no modifier)."""
    text: str
    number: Optional[int]
    name: str
    kind: str                  # number | name | generic | cache | raw | pmu
    user: bool = True
    kernel: bool = True
    unsupported: str = ""

    @property
    def modifiers(self) -> str:
        return "" if self.user and self.kernel else ("u" if self.user else "k")


_NUM_RE = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)\Z")
_RAW_RE = re.compile(r"r([0-9a-fA-F]{1,16})\Z")
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PMU_RE = re.compile(r"([A-Za-z0-9_]+)/(.*)/(?::?([A-Za-z]*))\Z")
_GENERIC_LC = {k.lower(): k for k in GENERIC}


def _by_name(name: str) -> Optional[events.Event]:
    return events.BY_NAME.get(name.upper())


def _number(tok: str) -> int:
    return int(tok, 16) if tok[:2].lower() == "0x" else int(tok, 10)


def _match_alias(s: str, table: dict[str, tuple[str, ...]]) -> tuple[Optional[str], str]:
    """The longest alias of ``table`` that is all of ``s`` or followed by '-' in it
    (case-insensitive): (canonical key, rest after the '-'), or (None, s)."""
    best, rest, longest = None, s, -1
    low = s.lower()
    for key, aliases in table.items():
        for a in aliases:
            al = a.lower()
            if len(al) > longest and (low == al or low.startswith(al + "-")):
                best, rest, longest = key, s[len(a) + 1:], len(al)
    return best, rest


def _cache(text: str) -> Optional[tuple[str, str, str]]:
    """perf's legacy cache grammar (parse_events__decode_legacy_cache): CACHE[-OP][-RESULT] or
    CACHE[-RESULT][-OP]; the operation defaults to read, the result to access."""
    cache, rest = _match_alias(text, CACHE_TYPES)
    if cache is None:
        return None
    op = result = None
    for _ in range(2):
        if not rest:
            break
        if op is None:
            o, r = _match_alias(rest, CACHE_OPS)
            if o is not None:
                op, rest = o, r
                continue
        if result is None:
            o, r = _match_alias(rest, CACHE_RESULTS)
            if o is not None:
                result, rest = o, r
                continue
        return None
    if rest:
        return None
    op = op or "load"
    if op not in _CACHE_OPS_VALID[cache]:
        raise ValueError(f"bad event {text!r}: perf has no {op} operation for {cache}")
    return cache, op, result or "access"


def _spelling_hint(tok: str) -> str:
    """'; did you mean X?' over every spelling, or an example."""
    cands: dict[str, str] = {e.name.lower(): e.name for e in events.ALL}
    cands.update({g: g for g in GENERIC})
    cands.update({cache_name(*k).lower(): cache_name(*k) for k in CACHE_MAP})
    close = difflib.get_close_matches(tok.lower(), list(cands), n=1)
    if close:
        return f"; did you mean {cands[close[0]]}?"
    return (" (use a number, an Arm event name such as CPU_CYCLES, a perf name such as "
            "instructions, rNN or armv8_pmuv3_0/event=0xNN/)")


def _modifiers(mods: str, text: str) -> tuple[bool, bool]:
    bad = [c for c in mods if c not in MODIFIERS]
    if bad or len(set(mods)) != len(mods):
        raise ValueError(f"event {text!r}: unsupported modifier {mods!r} (vpmu counts at EL0 and "
                         "EL1 only: use :u for EL0, :k for EL1)")
    return ("u" in mods or not mods), ("k" in mods or not mods)


def _pmu_event(pmu: str, terms: str, mods: str, text: str) -> EventSpec:
    if pmu not in PMU_NAMES:
        raise ValueError(f"unknown PMU {pmu!r} in event {text!r} (this board's PMU is "
                         f"{PMU_NAME}, also written {PMU_NAMES[1]})")
    number: Optional[int] = None
    shown: Optional[str] = None
    for term in (t.strip() for t in terms.split(",")):
        key, eq, val = term.partition("=")
        key = key.strip().lower()
        if eq and key in ("event", "config"):
            if not _NUM_RE.match(val.strip()):
                raise ValueError(f"event {text!r}: {key}= needs a number, not {val.strip()!r}")
            v = _number(val.strip())
            if v > RAW_MAX:
                raise ValueError(f"event {text!r}: {key}={val.strip()} does not fit the PMU's event "
                                 f"field (config:0-15, at most {RAW_MAX:#x})")
            if number is not None:
                raise ValueError(f"event {text!r} names more than one event")
            number = v
        elif eq and key == "name":
            shown = val.strip()
        elif not eq and term and _NAME_RE.match(term) and _by_name(term) is not None:
            if number is not None:
                raise ValueError(f"event {text!r} names more than one event")
            number = events.BY_NAME[term.upper()].number
        elif not eq and term and _NAME_RE.match(term):
            raise ValueError(f"unknown event {term!r} of PMU {pmu} in {text!r}{_spelling_hint(term)}")
        else:
            raise ValueError(f"event {text!r}: unknown term {term!r} (use event=0xNN, config=0xNN, "
                             "an event name, name=...)")
    if number is None:
        raise ValueError(f"event {text!r} names no event (use {pmu}/event=0xNN/)")
    user, kernel = _modifiers(mods, text)
    return EventSpec(text, number, shown or text, "pmu", user, kernel)


def parse(text: str) -> EventSpec:
    """Any spelling of one event (module docstring), with perf's ``:u``/``:k`` modifiers.
    Raises ValueError with a one-line message for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"an event must be a string, not {type(text).__name__}")
    tok = text.strip()
    if not tok:
        raise ValueError("empty event name")
    m = _PMU_RE.match(tok)
    if m:
        return _pmu_event(m.group(1), m.group(2), m.group(3), tok)
    if "/" in tok:
        raise ValueError(f"bad event {tok!r} (the PMU syntax is {PMU_NAME}/event=0xNN/ or "
                         f"{PMU_NAME}/NAME/)")
    body, sep, mods = tok.partition(":")
    user, kernel = _modifiers(mods, tok) if sep else (True, True)
    if body[:1].isdigit():
        if not _NUM_RE.match(body):
            raise UnknownEvent(f"bad event number {body!r} (use hex 0x.., decimal, or an event name "
                             "such as CPU_CYCLES)")
        return EventSpec(tok, _number(body), tok, "number", user, kernel)
    raw = _RAW_RE.match(body)
    if raw:
        v = int(raw.group(1), 16)
        if v > RAW_MAX:
            raise ValueError(f"raw event {body!r} does not fit the PMU's event field (config:0-15, "
                             f"at most r{RAW_MAX:x}); the driver would silently drop the high bits")
        return EventSpec(tok, v, tok, "raw", user, kernel)
    low = body.lower()
    if low in _GENERIC_LC:
        return EventSpec(tok, events.BY_NAME[GENERIC[_GENERIC_LC[low]]].number, tok, "generic", user, kernel)
    if low in GENERIC_UNSUPPORTED:
        return EventSpec(tok, None, tok, "generic", user, kernel, "the armv8_pmuv3 driver maps no event to it")
    if _NAME_RE.match(body) and _by_name(body) is not None:
        return EventSpec(tok, events.BY_NAME[body.upper()].number, tok, "name", user, kernel)
    c = _cache(body)
    if c is not None:
        arm = CACHE_MAP.get(c)
        if arm is None:
            return EventSpec(tok, None, tok, "cache", user, kernel,
                             f"the armv8_pmuv3 driver maps no event to {cache_name(*c)}")
        return EventSpec(tok, events.BY_NAME[arm].number, tok, "cache", user, kernel)
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", body):
        hint = _spelling_hint(body)
        raise (ValueError if "did you mean" in hint else UnknownEvent)(f"unknown event name {body!r}{hint}")
    raise UnknownEvent(f"bad event {tok!r} (use hex 0x.., decimal, or an event name such as CPU_CYCLES)")


def event_number(text: str) -> int:
    """The event number of one spelling (no modifiers).  ValueError (one line) for an unknown
    name, for a perf name with no event on this PMU, and for ``:u``/``:k``."""
    spec = parse(text)
    if spec.modifiers or ":" in text:
        raise ValueError(f"event {text.strip()!r}: modifiers (':u', ':k') choose where a counter counts; "
                         "here only the event number is meant")
    if spec.number is None:
        raise ValueError(f"event {text.strip()!r} has no event number on this PMU ({spec.unsupported})")
    return spec.number


def aliases(number: int) -> list[str]:
    """perf's spellings of an event, most common first (generic, cache, PMU, raw)."""
    out = [g for g, arm in GENERIC.items() if events.BY_NAME[arm].number == number]
    out += [cache_name(*k) for k, arm in CACHE_MAP.items() if events.BY_NAME[arm].number == number]
    e = events.BY_NUMBER.get(number)
    if e is not None:
        out.append(f"{PMU_NAME}/{e.name.lower()}/")
    out.append(f"{PMU_NAME}/event={number:#x}/")
    out.append(f"r{number:x}")
    return out

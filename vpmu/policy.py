"""``vpmu policy``: evaluate KVM PMU event-filter policies before a real VMM installs them.

A *policy* is the ordered list of ``KVM_ARM_VCPU_PMU_V3_FILTER`` calls a VMM makes, written
as CLI items ``allow|deny:FIRST[-LAST]`` (see :func:`vpmu.filter.parse_filter`).  KVM's
semantics are easy to get wrong (vcpu.rst 1.3): the first filter fixes the default for good,
"cancelling" a range does not bring back the no-filter state, SW_INCR and CHAIN are never
filtered but disappear from PMCEID, denying CPU_CYCLES also stops PMCCNTR, and the event
space is 1024 events on a PMUv3 v3p0 host.  The functions here answer:

- :func:`explain_policy` - the effective policy as allow/deny ranges with event names;
- :func:`lint_policy` - those pitfalls as warnings;
- :func:`diff_policies` - the events two policies decide differently;
- :func:`export_bytes` / :func:`import_bytes` - the exact ``struct kvm_pmu_event_filter``
  array a VMM passes (8 bytes each, little-endian) and back;
- :func:`impact_report` - what a policy changed in a guest run (two RunResults).

The command line (``vpmu policy explain|lint|diff|export|import|impact``) is
:mod:`vpmu.commands.policy`.
"""
from __future__ import annotations

import binascii
import re
import sys
from dataclasses import dataclass, field
from typing import Optional, Sequence

from .config import PMUVER_V3P7, event_space
from .filter import (CHAIN, COMMON_EVENT_NAMES, CPU_CYCLES, KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY,
                     SW_INCR, EventFilter, FilterRange, KvmPmuEventFilter,
                     event_label, event_name, pack_filters, parse_filter, ranges_to_structs,
                     space_description, structs_to_ranges, unpack_filters)

DEFAULT_PMU_VERSION = "3.7"


class PolicyError(ValueError):
    """Bad policy input (the CLI prints it as one line and exits with status 2)."""


# ---------------------------------------------------------------------------------------------
# Reading policies

_HEX_LINE = re.compile(r"[0-9a-fA-F\s]*\Z")


def parse_hex(text: str) -> bytes:
    """Hex dump (whitespace and newlines ignored, ``#`` comments allowed) -> bytes."""
    digits = "".join("".join(line.split("#", 1)[0].split()) for line in text.splitlines())
    if len(digits) % 2:
        raise PolicyError("hex input has an odd number of digits")
    try:
        return binascii.unhexlify(digits)
    except binascii.Error as e:
        raise PolicyError(f"bad hex input: {e}") from None


def _is_hex_text(text: str) -> bool:
    lines = [ln.split("#", 1)[0] for ln in text.splitlines()]
    body = [ln for ln in lines if ln.strip()]
    return bool(body) and all(_HEX_LINE.match(ln) for ln in body)


def parse_policy_text(text: str, source: str = "<text>") -> list[FilterRange]:
    """One ``allow|deny:FIRST[-LAST]`` item per line; ``#`` starts a comment."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        try:
            out.append(parse_filter(item))
        except ValueError as e:
            raise PolicyError(f"{source}:{lineno}: {e}") from None
    return out


def import_bytes(data: bytes) -> list[FilterRange]:
    """A ``struct kvm_pmu_event_filter`` array -> CLI items that export back to the same
    bytes (pad bytes excepted: KVM ignores them)."""
    try:
        return structs_to_ranges(unpack_filters(data))
    except ValueError as e:
        raise PolicyError(str(e)) from None


# A policy file is read whole: 16 MiB is two million binary structs, far beyond any VMM's list.
MAX_POLICY_BYTES = 16 << 20


def _read_input(path: str) -> bytes:
    """A policy file or standard input ('-'), at most MAX_POLICY_BYTES."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_POLICY_BYTES + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as e:
        raise PolicyError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: larger than {MAX_POLICY_BYTES >> 20} MiB, not a filter policy")
    return data


def read_policy_file(path: str) -> list[FilterRange]:
    """``--policy FILE``: the binary export (it always contains NUL bytes: the pad), a hex
    dump of it, or text items.  ``-`` reads standard input."""
    data = _read_input(path)
    if b"\0" in data:
        return import_bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: neither a binary filter array nor text") from None
    if _is_hex_text(text):
        return import_bytes(parse_hex(text))
    return parse_policy_text(text, path)


def bytes_from_file(path: str) -> bytes:
    """``import``'s input: the binary array, or a hex dump of it."""
    data = _read_input(path)
    if b"\0" in data or not data:
        return data
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return data
    if _is_hex_text(text):
        return parse_hex(text)
    return data


# ---------------------------------------------------------------------------------------------
# Evaluating

def check_space(ranges: Sequence[FilterRange], nr_events: int) -> None:
    """Raise PolicyError for the first item KVM would reject with EINVAL."""
    for i, r in enumerate(ranges, 1):
        if r.first + r.nevents > nr_events:
            raise PolicyError(f"filter #{i} {r} is outside the {space_description(nr_events)}; "
                              "KVM_ARM_VCPU_PMU_V3_FILTER would return EINVAL")


def effective(ranges: Sequence[FilterRange], nr_events: int) -> EventFilter:
    """The bitmap KVM ends up with after all items (PolicyError if one is rejected)."""
    check_space(ranges, nr_events)
    return EventFilter.from_ranges(ranges, nr_events)


def names_in(first: int, last: int, limit: int = 6) -> str:
    """Arm names of the events in [first, last] (at most ``limit``, then a count)."""
    named = [COMMON_EVENT_NAMES[e] for e in sorted(COMMON_EVENT_NAMES) if first <= e <= last]
    if len(named) > limit:
        return ", ".join(named[:limit]) + f", ... (+{len(named) - limit} named)"
    return ", ".join(named)


def fmt_range(first: int, last: int) -> str:
    return f"0x{first:04X}" if first == last else f"0x{first:04X}-0x{last:04X}"


def _run_line(first: int, last: int, label: str) -> str:
    n = last - first + 1
    count = "" if n == 1 else f"({n} events) "
    return f"  {label:<6} {fmt_range(first, last):<14} {count}{names_in(first, last)}".rstrip()


def explain_policy(ranges: Sequence[FilterRange], nr_events: int) -> str:
    """Human description of the effective policy: the default, then every range that
    differs from it, with Arm event names."""
    flt = effective(ranges, nr_events)
    head = f"Host event space: {space_description(nr_events)}, {nr_events} events"
    if not flt.installed:
        return (f"{head}\nNo filter: KVM installs no bitmap; every event is allowed and "
                "PMCEID0/1 are not masked.\n")
    first = ranges[0]
    default = "ALLOW" if flt.default_allow else "DENY"
    lines = [head,
             f"Filters: {', '.join(str(r) for r in ranges)}",
             f"Default: {default} (set by the first filter, {first}, which is "
             f"{'a DENY' if first.action == KVM_PMU_EVENT_DENY else 'an ALLOW'})"]
    exceptions = [(a, b, v) for a, b, v in flt.runs() if v != flt.default_allow]
    if exceptions:
        lines.append("Exceptions to the default:")
        for a, b, v in exceptions:
            lines.append(_run_line(a, b, "allow" if v else "deny"))
    else:
        lines.append("Exceptions to the default: none")
    lines.append(f"Everything else: {default.lower()}")
    allowed = flt.allowed_count()
    lines.append(f"Allowed: {allowed} events; denied: {nr_events - allowed} events")
    return "\n".join(lines) + "\n"


@dataclass
class LintWarning:
    """One finding of :func:`lint_policy`; ``item`` is the 1-based filter number or None."""
    code: str
    message: str
    item: Optional[int] = None

    def __str__(self) -> str:
        return f"warning[{self.code}]: {self.message}"


def lint_policy(ranges: Sequence[FilterRange], nr_events: int) -> list[LintWarning]:
    """What KVM users get wrong, as warnings (empty list = clean).

    Codes: ``out-of-space`` (KVM would return EINVAL), ``cancel`` (a later filter undoes the
    first one, but the default it set stays), ``redundant`` (changes nothing when applied),
    ``shadowed`` (every event it sets is overwritten later), ``sw-incr`` / ``chain`` (denied:
    no effect on counting, but hidden from PMCEID0), ``cpu-cycles`` (denied: also stops
    PMCCNTR_EL0).

    Linear in the number of filters: each filter costs O(1) Python steps and C-speed scans
    of its own range in three bitmaps (the replayed filter; the events later filters set,
    built backwards; the part of the first filter undone so far), so a policy of 200,000
    items is linted in seconds.
    """
    warns: list[LintWarning] = []
    valid = []
    for i, r in enumerate(ranges, 1):
        if r.first + r.nevents > nr_events:
            warns.append(LintWarning(
                "out-of-space", f"filter #{i} {r} is outside the {space_description(nr_events)}: "
                "KVM_ARM_VCPU_PMU_V3_FILTER returns EINVAL and the filter is not applied", i))
        else:
            valid.append((i, r))
    if not valid:
        return warns

    # Replay, noting the filters that change nothing when applied.
    flt = EventFilter(nr_events)
    redundant: set[int] = set()
    for i, r in valid:
        if flt.installed and not r.nevents:
            redundant.add(i)
            warns.append(LintWarning("redundant", f"filter #{i} {r} covers no events; only a "
                                     "first filter has an effect with nevents 0 (the default)", i))
        elif flt.installed and flt.all_set(r.first, r.last, r.action == KVM_PMU_EVENT_ALLOW):
            redundant.add(i)
            state = "allowed" if r.action == KVM_PMU_EVENT_ALLOW else "denied"
            warns.append(LintWarning("redundant", f"filter #{i} {r} changes nothing: those events "
                                     f"are already {state} at that point", i))
        else:
            flt.apply_range(r)

    # Fully shadowed: every event of filter i is set again by some later filter.  Walk
    # backwards, marking the events the filters after the current one set.
    later_sets = bytearray(nr_events)
    unset = nr_events                       # events no later filter sets
    ones = memoryview(b"\x01" * nr_events)
    shadowed: list[LintWarning] = []
    for k in range(len(valid) - 1, 0, -1):
        i, r = valid[k]
        if not r.nevents:
            continue
        if i not in redundant and (not unset or later_sets.find(0, r.first, r.last + 1) < 0):
            shadowed.append(LintWarning("shadowed", f"filter #{i} {r} is fully overridden by later "
                                        "filters; it has no effect", i))
        if unset:
            newly = later_sets.count(0, r.first, r.last + 1)
            if newly:
                later_sets[r.first:r.last + 1] = ones[:r.nevents]
                unset -= newly
    first_i, first = valid[0]
    if first.nevents:
        _lint_first(first, valid[1:], flt, warns)
    warns.extend(reversed(shadowed))

    bits = flt.bitmap()
    if bits is not None:
        if not bits[SW_INCR]:
            warns.append(LintWarning("sw-incr", "SW_INCR (0x00) is denied: KVM never filters it "
                                     "(PMSWINC still increments its counters), but PMCEID0 bit 0 "
                                     "reads 0, so the guest thinks SW_INCR is not implemented"))
        if not bits[CHAIN]:
            warns.append(LintWarning("chain", "CHAIN (0x1E) is denied: chaining still works (KVM "
                                     "never filters it), but PMCEID0 bit 30 reads 0, so the guest "
                                     "thinks CHAIN is not implemented"))
        if not bits[CPU_CYCLES]:
            warns.append(LintWarning("cpu-cycles", "CPU_CYCLES (0x11) is denied: this also stops "
                                     "the cycle counter PMCCNTR_EL0, not only event counters "
                                     "programmed with 0x11"))
    return warns


def _lint_first(r: FilterRange, later: list, flt: EventFilter, warns: list) -> None:
    """The first filter: is its range completely undone by later opposite filters?  The first
    one that completes the undoing is named."""
    undone = bytearray(r.nevents)            # events of r set the other way by a filter so far
    left = r.nevents
    for j, x in later:
        if x.action == r.action or not x.nevents:
            continue
        a, b = max(x.first, r.first) - r.first, min(x.last, r.last) - r.first
        if a > b:
            continue
        newly = undone.count(0, a, b + 1)
        if newly:
            undone[a:b + 1] = b"\x01" * (b - a + 1)
            left -= newly
        if left == 0:
            break
    else:
        return
    if r.action == KVM_PMU_EVENT_ALLOW:
        everything = " - the whole event space is denied" if flt.allowed_count() == 0 else ""
        warns.append(LintWarning(
            "cancel", f"filter #{j} {x} cancels the first filter {r}, but the default that "
            f"first filter set stays DENY (KVM never returns to the no-filter state): "
            f"{fmt_range(r.first, r.last)} end up denied with every event not explicitly "
            f"allowed{everything}. To allow everything, install no filter at all", j))
    else:
        warns.append(LintWarning(
            "cancel", f"filter #{j} {x} cancels the first filter {r}; the default stays ALLOW, "
            "so counting is as without a filter, but a filter is still installed: with a 10-bit "
            "guest event space PMCEID0/1[63:32] read 0, and SET_PMU to another host PMU returns "
            "EBUSY", j))


def diff_policies(a: Sequence[FilterRange], b: Sequence[FilterRange],
                  nr_events: int) -> list[tuple[int, int, bool, bool]]:
    """Ranges ``(first, last, allowed_in_a, allowed_in_b)`` where the decisions differ."""
    fa, fb = effective(a, nr_events), effective(b, nr_events)
    ba = fa.bitmap() or bytearray(b"\x01") * nr_events
    bb = fb.bitmap() or bytearray(b"\x01") * nr_events
    xor = bytes(x ^ y for x, y in zip(ba, bb))
    out = []
    for first, last, differs in _runs01(xor):
        if differs:
            out.append((first, last, bool(ba[first]), bool(bb[first])))
    # Split where A's decision flips inside a differing run (B then flips too).
    split = []
    for first, last, va, vb in out:
        start = first
        for e in range(first + 1, last + 1):
            if bool(ba[e]) != va:
                split.append((start, e - 1, va, vb))
                start, va, vb = e, bool(ba[e]), bool(bb[e])
        split.append((start, last, va, vb))
    return split


def _runs01(data: bytes):
    i, n = 0, len(data)
    while i < n:
        v = data[i]
        j = data.find(b"\x00" if v else b"\x01", i)
        j = n if j < 0 else j
        yield i, j - 1, bool(v)
        i = j


def export_bytes(ranges: Sequence[FilterRange]) -> bytes:
    """The struct array, in ioctl order (a 65536-event range is two structs)."""
    return pack_filters(ranges_to_structs(ranges))


def readable_structs(structs: Sequence[KvmPmuEventFilter]) -> str:
    lines = [f"{'#':>3}  {'base_event':<10}  {'nevents':>7}  {'action':<6}  {'bytes (LE)':<23}  covers"]
    for i, s in enumerate(structs):
        act = {KVM_PMU_EVENT_ALLOW: "ALLOW", KVM_PMU_EVENT_DENY: "DENY"}.get(s.action, str(s.action))
        raw = " ".join(f"{b:02x}" for b in s.pack())
        if s.nevents == 0:
            covers = "(no events)"
        else:
            last = s.base_event + s.nevents - 1
            covers = fmt_range(s.base_event, last)
            names = names_in(s.base_event, last, 3)
            covers += f" {names}" if names else ""
        lines.append(f"{i:>3}  0x{s.base_event:04X}      {s.nevents:>7}  {act:<6}  {raw}  {covers}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Impact of a policy on a guest run

@dataclass
class CounterImpact:
    index: int                 # 0..30, or 31 for PMCCNTR_EL0
    event: int
    enabled: bool
    allowed: bool              # the bitmap's decision for the event
    never_filtered: bool       # SW_INCR / CHAIN: count regardless of the bitmap
    without: int
    with_policy: int

    @property
    def changed(self) -> bool:
        return self.without != self.with_policy

    @property
    def stopped_by_policy(self) -> bool:
        return not self.allowed and not self.never_filtered

    @property
    def decision(self) -> str:
        return ("never filtered" if self.never_filtered and not self.allowed
                else "allowed" if self.allowed else "denied")

    def to_dict(self) -> dict:
        return {"counter": "PMCCNTR" if self.index == 31 else f"PMEV{self.index}", "index": self.index,
                "event": self.event, "event_name": event_name(self.event), "enabled": self.enabled,
                "decision": self.decision, "without": self.without, "with_policy": self.with_policy,
                "changed": self.changed}


IMPACT_COLUMNS = ["counter", "index", "event", "event_name", "enabled", "decision", "without", "with_policy",
                  "changed"]


@dataclass
class ImpactReport:
    counters: list = field(default_factory=list)
    denied_programmed: list = field(default_factory=list)      # events KVM would not count
    never_filtered_denied: list = field(default_factory=list)  # SW_INCR/CHAIN denied in bitmap
    programming_differs: list = field(default_factory=list)    # counter indices

    @property
    def changed(self) -> list:
        return [c for c in self.counters if c.changed]

    def to_dict(self) -> dict:
        """The report as data (``vpmu policy impact --json``); one record per counter in
        ``counters`` (:data:`IMPACT_COLUMNS`, ``-x SEP``)."""
        def ev(e: int) -> dict:
            return {"event": e, "event_name": event_name(e)}
        return {"counters": [c.to_dict() for c in self.counters],
                "denied_programmed": [ev(e) for e in self.denied_programmed],
                "never_filtered_denied": [ev(e) for e in self.never_filtered_denied],
                "programming_differs": list(self.programming_differs),
                "changed": len(self.changed)}

    def format(self) -> str:
        lines = ["Counters the guest programmed (final state), count without -> with the policy:"]
        if not self.counters:
            lines.append("  (none)")
        for c in self.counters:
            idx = "CC " if c.index == 31 else f"#{c.index:<2}"
            decision = c.decision
            mark = "  CHANGED" if c.changed else ""
            lines.append(f"  {idx} {event_label(c.event):<28} {'enabled' if c.enabled else 'disabled':<8} "
                         f"{decision:<14} {c.without} -> {c.with_policy}{mark}")
        den = ", ".join(event_label(e) for e in self.denied_programmed) or "none"
        lines.append(f"Programmed events the policy denies: {den}")
        if self.never_filtered_denied:
            lines.append("Denied in the bitmap but never filtered by KVM (still counted, hidden "
                         "from PMCEID): " + ", ".join(event_label(e) for e in self.never_filtered_denied))
        if self.programming_differs:
            lines.append("Note: the guest programmed counter(s) "
                         + ", ".join(f"#{i}" for i in self.programming_differs)
                         + " differently in the two runs (it may adapt to PMCEID)")
        lines.append(f"{len(self.changed)} counter(s) changed.")
        return "\n".join(lines) + "\n"


def _pmu(result) -> dict:
    pmu = getattr(result, "pmu", None)
    if not isinstance(pmu, dict):
        raise PolicyError("run result carries no PMU state")
    return pmu


def impact_report(without, with_policy, flt: EventFilter, guest_pmuver: int = PMUVER_V3P7) -> ImpactReport:
    """Compare two RunResult-like objects (``.pmu`` dict with ``n``, ``evtyper``, ``evcntr``,
    ``pmcntenset``, ``pmccntr``): the run without and the run with the policy.

    Programmed counters are taken from the final register state of the run without the
    policy (events programmed and later reprogrammed are not visible); a counter still at
    reset (type 0, disabled, zero in both runs) is left out.  The event number is
    ``PMEVTYPER & event mask`` of the guest PMU version; PMCCNTR counts CPU_CYCLES.
    """
    a, b = _pmu(without), _pmu(with_policy)
    mask = event_space(guest_pmuver) - 1
    rep = ImpactReport()
    n = int(a.get("n", 0))
    ena = int(a.get("pmcntenset", 0))
    ev_a, ev_b = list(a.get("evtyper", [])), list(b.get("evtyper", []))
    cnt_a, cnt_b = list(a.get("evcntr", [])), list(b.get("evcntr", []))
    denied: list[int] = []
    hidden: list[int] = []
    for i in range(min(n, len(ev_a), len(cnt_a))):
        event = int(ev_a[i]) & mask
        if i < len(ev_b) and (int(ev_b[i]) & mask) != event:
            rep.programming_differs.append(i)
        c = CounterImpact(i, event, bool(ena >> i & 1), flt.allowed(event),
                          event in (SW_INCR, CHAIN), int(cnt_a[i]),
                          int(cnt_b[i]) if i < len(cnt_b) else 0)
        # untouched counters (type 0, disabled, zero in both runs) are not "programmed"
        if not (c.enabled or int(ev_a[i]) or c.without or c.with_policy or i in rep.programming_differs):
            continue
        rep.counters.append(c)
        target = hidden if c.never_filtered else denied
        if not c.allowed and event not in target:
            target.append(event)
    if "pmccntr" in a:
        c = CounterImpact(31, CPU_CYCLES, bool(ena >> 31 & 1), flt.allowed(CPU_CYCLES), False,
                          int(a.get("pmccntr", 0)), int(b.get("pmccntr", 0)))
        rep.counters.append(c)
        if not c.allowed and c.enabled and CPU_CYCLES not in denied:
            denied.append(CPU_CYCLES)
    rep.denied_programmed = denied
    rep.never_filtered_denied = hidden
    return rep

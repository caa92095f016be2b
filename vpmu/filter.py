"""The PMU event filter exactly as KVM implements it, plus the ``allow|deny:FIRST[-LAST]`` syntax.

KVM keeps one bitmap per VM (``kvm->arch.pmu_filter``) over the *host* event space: 1024
events when the host PMU is PMUv3 v3p0, 65536 from v3p1 on.  The bitmap does not exist until
the first ``KVM_ARM_VCPU_PMU_V3_FILTER``; that first filter also fixes the default for good
(first ALLOW => everything else denied, first DENY => everything else allowed), even when it
covers no events.  Later filters only set or clear their own range.  (``pmu-emul.c``
``kvm_arm_pmu_v3_set_attr()``, case ``KVM_ARM_VCPU_PMU_V3_FILTER``; vcpu.rst section 1.3.)

This module holds:

- :class:`EventFilter` - that bitmap, with KVM's u32 bounds check (:meth:`EventFilter.check`);
- :class:`KvmPmuEventFilter` - ``struct kvm_pmu_event_filter`` (8 bytes, little-endian), with
  :func:`pack_filters` / :func:`unpack_filters` for arrays of it;
- :class:`FilterRange` and :func:`parse_filter` - the CLI item ``allow|deny:FIRST[-LAST]``
  (inclusive, hex or decimal or an event name), converted to one or more structs
  (:meth:`FilterRange.to_structs`) because ``nevents`` is a u16 and cannot say 65536;
- :func:`pmceid` - the guest's PMCEID0/1 as ``kvm_pmu_get_pmceid()`` computes them;
- :data:`COMMON_EVENT_NAMES` - number -> Arm name (common events 0x00..0x3F and the 0x4000
  range), derived from the event catalogue :mod:`vpmu.pmu.events`, for reports; the syntax
  takes every spelling :func:`vpmu.pmu.perfnames.event_number` takes (perf's included).

Pure Python; no numba, no Unicorn (vpmu.pmu.events is a plain table).
"""
from __future__ import annotations

import difflib
import errno
import os
import re
import struct
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

from .config import PMU_VERSIONS, PMUVER_V3P1, event_space
from .pmu import events, perfnames

# include/uapi/linux/kvm.h (arm64 asm/kvm.h): struct kvm_pmu_event_filter.action
KVM_PMU_EVENT_ALLOW = 0
KVM_PMU_EVENT_DENY = 1
ACTION_NAMES = {KVM_PMU_EVENT_ALLOW: "allow", KVM_PMU_EVENT_DENY: "deny"}

# Event numbers KVM treats specially (pmu-emul.c: SW_INCR and CHAIN are never filtered,
# CPU_CYCLES backs the cycle counter; compute_pmceid1() hides the STALL_SLOT events).
SW_INCR = events.BY_NAME["SW_INCR"].number
CPU_CYCLES = events.BY_NAME["CPU_CYCLES"].number
CHAIN = events.BY_NAME["CHAIN"].number
STALL_SLOT_BACKEND = events.BY_NAME["STALL_SLOT_BACKEND"].number
STALL_SLOT_FRONTEND = events.BY_NAME["STALL_SLOT_FRONTEND"].number
STALL_SLOT = events.BY_NAME["STALL_SLOT"].number

STRUCT_FORMAT = "<HHB3s"        # u16 base_event, u16 nevents, u8 action, u8 pad[3]
STRUCT_SIZE = struct.calcsize(STRUCT_FORMAT)
U16_MAX = 0xFFFF

# Event number -> Arm name, for the filter syntax and reports: a view of the event catalogue
# (vpmu.pmu.events, the one table of event names; Arm ARM D17.11, the same spelling as
# ARMV8_PMUV3_PERFCTR_* in include/linux/perf/arm_pmuv3.h).  Callers may pass their own dict.
COMMON_EVENT_NAMES: dict[int, str] = {e.number: e.name for e in events.CATALOGUE}
# ... and every name of the catalogue, the Cortex-A57's IMPLEMENTATION DEFINED events included.
EVENT_NAMES: dict[int, str] = {e.number: e.name for e in events.ALL}


def event_name(event: int, names: Optional[dict] = None) -> Optional[str]:
    """The Arm name of ``event``, or None if it has none in the table (default: the catalogue)."""
    return (EVENT_NAMES if names is None else names).get(event)


def event_label(event: int, names: Optional[dict] = None) -> str:
    """``0x0011 CPU_CYCLES`` style label (number always shown)."""
    name = event_name(event, names)
    return f"0x{event:04X} {name}" if name else f"0x{event:04X}"


def space_description(nr_events: int) -> str:
    """Human description of an event space size, for messages."""
    if nr_events == 1024:
        return "10-bit event space of a PMUv3 v3p0 host (0x000-0x3FF)"
    if nr_events == 65536:
        return "16-bit event space of a PMUv3p1+ host (0x0000-0xFFFF)"
    return f"event space 0x0-0x{nr_events - 1:X}"


def nr_events_for(version: Union[str, int]) -> int:
    """Host event-space size for a ``--pmu-version`` string ("3.0") or a PMUVer value."""
    if isinstance(version, str):
        if version not in PMU_VERSIONS:
            raise ValueError(f"unknown PMU version {version!r} (use one of "
                             f"{', '.join(PMU_VERSIONS)})")
        version = PMU_VERSIONS[version]
    return event_space(version)


# ---------------------------------------------------------------------------------------------
# struct kvm_pmu_event_filter

@dataclass(frozen=True)
class KvmPmuEventFilter:
    """``struct kvm_pmu_event_filter`` (arm64 uapi ``asm/kvm.h``): the value a VMM passes to
    ``KVM_ARM_VCPU_PMU_V3_FILTER``.  Fields are range-checked to their C widths only; whether
    KVM accepts the filter is :meth:`EventFilter.check`'s business (action 3 is a valid u8)."""
    base_event: int
    nevents: int
    action: int
    pad: bytes = b"\0\0\0"

    def __post_init__(self):
        for name, limit in (("base_event", U16_MAX), ("nevents", U16_MAX), ("action", 0xFF)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
                raise ValueError(f"{name}={v!r} does not fit the C field (0..{limit:#x})")
        if not isinstance(self.pad, (bytes, bytearray)) or len(self.pad) != 3:
            raise ValueError("pad must be 3 bytes")

    def pack(self) -> bytes:
        """The 8 little-endian bytes KVM copies from user memory."""
        return struct.pack(STRUCT_FORMAT, self.base_event, self.nevents, self.action,
                           bytes(self.pad))

    @classmethod
    def unpack(cls, data: bytes) -> "KvmPmuEventFilter":
        if len(data) != STRUCT_SIZE:
            raise ValueError(f"struct kvm_pmu_event_filter is {STRUCT_SIZE} bytes, got {len(data)}")
        base, n, action, pad = struct.unpack(STRUCT_FORMAT, bytes(data))
        return cls(base, n, action, pad)

    def __str__(self) -> str:
        act = ACTION_NAMES.get(self.action, f"action={self.action}")
        return f"{{base_event=0x{self.base_event:04X}, nevents={self.nevents}, {act}}}"


def pack_filters(filters: Iterable[KvmPmuEventFilter]) -> bytes:
    """An array of structs, as a VMM would keep them before the ioctls (8 bytes each)."""
    return b"".join(f.pack() for f in filters)


def unpack_filters(data: bytes) -> list[KvmPmuEventFilter]:
    """Inverse of :func:`pack_filters`.  Raises ValueError if the size is not a multiple of 8."""
    if len(data) % STRUCT_SIZE:
        raise ValueError(f"{len(data)} bytes is not a whole number of {STRUCT_SIZE}-byte "
                         "struct kvm_pmu_event_filter entries")
    return [KvmPmuEventFilter.unpack(data[i:i + STRUCT_SIZE])
            for i in range(0, len(data), STRUCT_SIZE)]


# ---------------------------------------------------------------------------------------------
# The bitmap

def check_filter(base_event: int, nevents: int, action: int, nr_events: int) -> int:
    """KVM's validity check for one filter: 0, or ``errno.EINVAL``.

    ``pmu-emul.c``: ``((u32)filter.base_event + filter.nevents) > nr_events`` or an action
    other than ALLOW/DENY.  The sum is done in 32 bits, so it cannot wrap, and
    ``base_event + nevents == nr_events`` (the range ends at the last event) is accepted.
    """
    if base_event + nevents > nr_events or action not in (KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY):
        return errno.EINVAL
    return 0


class EventFilter:
    """``kvm->arch.pmu_filter``: allowed/denied bit per host event number.

    A fresh object is "no filter installed" (:attr:`installed` False): every event is allowed
    and :meth:`bitmap` returns None, just as KVM has a NULL bitmap.  The first successful
    :meth:`apply` allocates the bitmap and sets the default from that filter's action.
    """

    __slots__ = ("nr_events", "_bits", "default_allow", "first_action")

    def __init__(self, nr_events: int = 65536):
        if nr_events not in (1024, 65536):
            raise ValueError(f"nr_events must be 1024 (PMUv3 v3p0) or 65536 (v3p1+), not {nr_events}")
        self.nr_events = nr_events
        self._bits: Optional[bytearray] = None
        self.default_allow: Optional[bool] = None     # None until the first filter
        self.first_action: Optional[int] = None

    @classmethod
    def for_pmuver(cls, pmuver: int) -> "EventFilter":
        """Empty filter sized for a host with this ID_AA64DFR0_EL1.PMUVer."""
        return cls(event_space(pmuver))

    @classmethod
    def from_ranges(cls, ranges: Iterable["FilterRange"], nr_events: int = 65536) -> "EventFilter":
        """Apply CLI items in order (each may be several structs).  Raises ``OSError(EINVAL)``
        for a range KVM would reject."""
        f = cls(nr_events)
        for r in ranges:
            f.apply_range(r)
        return f

    @classmethod
    def from_structs(cls, structs: Iterable[KvmPmuEventFilter], nr_events: int = 65536) -> "EventFilter":
        f = cls(nr_events)
        for s in structs:
            f.apply(s.base_event, s.nevents, s.action)
        return f

    @property
    def installed(self) -> bool:
        """True once a filter was applied (KVM has allocated the bitmap)."""
        return self._bits is not None

    def check(self, base_event: int, nevents: int, action: int) -> int:
        """0 if KVM would accept this filter, else ``errno.EINVAL`` (see :func:`check_filter`)."""
        return check_filter(base_event, nevents, action, self.nr_events)

    def apply(self, base_event: int, nevents: int, action: int) -> None:
        """One ``KVM_ARM_VCPU_PMU_V3_FILTER``: bounds check, default on first use, set/clear.

        Raises ``OSError(EINVAL)`` exactly when KVM returns -EINVAL; the bitmap is untouched then.
        """
        err = self.check(base_event, nevents, action)
        if err:
            raise OSError(err, os.strerror(err))
        if self._bits is None:
            # "The default depends on the first applied filter" - pmu-emul.c; also with nevents 0.
            self.default_allow = action == KVM_PMU_EVENT_DENY
            self.first_action = action
            self._bits = bytearray(b"\x01" if self.default_allow else b"\x00") * self.nr_events
        value = b"\x01" if action == KVM_PMU_EVENT_ALLOW else b"\x00"
        self._bits[base_event:base_event + nevents] = value * nevents

    def apply_struct(self, f: KvmPmuEventFilter) -> None:
        self.apply(f.base_event, f.nevents, f.action)

    def apply_range(self, r: "FilterRange") -> None:
        """Apply a CLI item: its structs in order (a 65536-event range is two structs)."""
        for s in r.to_structs():
            self.apply_struct(s)

    def allowed(self, event: int) -> bool:
        """Would KVM back a counter programmed with ``event`` by a perf event?

        This is the raw bitmap test of ``kvm_pmu_create_perf_event()``; it does *not* apply
        the SW_INCR/CHAIN exemption (those are never filtered - use :func:`counts`).  Events
        beyond the bitmap (cannot happen in KVM: the guest mask never exceeds the host space)
        are reported as denied.
        """
        if self._bits is None:
            return True
        if not 0 <= event < self.nr_events:
            return False
        return bool(self._bits[event])

    def bitmap(self) -> Optional[bytearray]:
        """Copy of the bitmap as 0/1 bytes (``PmuConfig.filter_bitmap``), None if no filter."""
        return None if self._bits is None else bytearray(self._bits)

    def runs(self) -> list[tuple[int, int, bool]]:
        """Maximal runs ``(first, last, allowed)`` covering the whole event space."""
        if self._bits is None:
            return [(0, self.nr_events - 1, True)]
        return _runs(self._bits)

    def allowed_count(self) -> int:
        return self.nr_events if self._bits is None else self._bits.count(1)

    def copy(self) -> "EventFilter":
        c = EventFilter(self.nr_events)
        c._bits = None if self._bits is None else bytearray(self._bits)
        c.default_allow = self.default_allow
        c.first_action = self.first_action
        return c

    def __eq__(self, other) -> bool:
        if not isinstance(other, EventFilter):
            return NotImplemented
        return self.nr_events == other.nr_events and self._bits == other._bits

    def __repr__(self) -> str:
        if self._bits is None:
            return f"EventFilter(nr_events={self.nr_events}, no filter)"
        d = "allow" if self.default_allow else "deny"
        return (f"EventFilter(nr_events={self.nr_events}, default={d}, "
                f"allowed={self.allowed_count()})")


def _runs(bits: Union[bytes, bytearray]) -> list[tuple[int, int, bool]]:
    """Maximal runs of equal 0/1 bytes as ``(first, last, value)``."""
    data = bytes(bits)
    out = []
    i, n = 0, len(data)
    while i < n:
        v = data[i]
        j = data.find(b"\x00" if v else b"\x01", i)     # C-speed scan to the next flip
        if j < 0:
            j = n
        out.append((i, j - 1, bool(v)))
        i = j
    return out


def counts(event: int, flt: Optional[Union[EventFilter, bytes, bytearray]]) -> bool:
    """Does a counter programmed with ``event`` count under this filter (pmu-emul.c)?

    SW_INCR and CHAIN are never backed by a perf event and never consult the filter; every
    other event counts iff there is no filter or its bit is set.  (The cycle counter uses
    CPU_CYCLES: pass 0x11 for it.)
    """
    if event in (SW_INCR, CHAIN):
        return True
    if flt is None:
        return True
    if isinstance(flt, EventFilter):
        return flt.allowed(event)
    return 0 <= event < len(flt) and bool(flt[event])


# ---------------------------------------------------------------------------------------------
# PMCEID0/1

def _bit_of(flt, event: int) -> int:
    if isinstance(flt, EventFilter):
        return 1 if flt.allowed(event) else 0
    return 1 if 0 <= event < len(flt) and flt[event] else 0


def pmceid(host_pmceid0: int, host_pmceid1: int,
           flt: Optional[Union[EventFilter, bytes, bytearray]] = None,
           guest_pmuver: int = PMUVER_V3P1) -> tuple[int, int]:
    """The guest's (PMCEID0_EL0, PMCEID1_EL0) as ``kvm_pmu_get_pmceid()`` computes them.

    ``host_pmceid0/1`` are the host PMU's values: bits [31:0] = common events 0..31 / 32..63,
    bits [63:32] = events 0x4000..0x401F / 0x4020..0x403F.

    1. PMCEID0 gets SW_INCR (bit 0) and CHAIN (bit 30) forced on (``compute_pmceid0()``);
       PMCEID1 gets STALL_SLOT_BACKEND/FRONTEND/STALL_SLOT (bits 29..31) forced off because
       PMMIR_EL1 is RAZ (``compute_pmceid1()``).
    2. With a filter (``flt`` an :class:`EventFilter` with a bitmap, or a 0/1 byte bitmap),
       the value is ANDed with the filter bits of events 0..31 (32..63) and - only if the
       *guest* event space reaches 0x4020 (0x4040), i.e. 16-bit PMUVer - with the bits of
       0x4000..0x401F (0x4020..0x403F); on a 10-bit guest the high half becomes 0.
       The AND also hides SW_INCR and CHAIN when the filter denies them, although they keep
       counting (vcpu.rst: they are never filtered).
    """
    v0 = (host_pmceid0 & 0xFFFF_FFFF_FFFF_FFFF) | (1 << SW_INCR) | (1 << CHAIN)
    v1 = (host_pmceid1 & 0xFFFF_FFFF_FFFF_FFFF) & ~((1 << (STALL_SLOT_BACKEND - 32))
                                                   | (1 << (STALL_SLOT_FRONTEND - 32))
                                                   | (1 << (STALL_SLOT - 32)))
    if flt is None or (isinstance(flt, EventFilter) and not flt.installed):
        return v0, v1
    guest_nr_events = event_space(guest_pmuver)
    out = []
    for val, base in ((v0, 0), (v1, 32)):
        mask = 0
        for i in range(32):
            mask |= _bit_of(flt, base + i) << i
            if guest_nr_events >= 0x4000 + base + 32:
                mask |= _bit_of(flt, 0x4000 + base + i) << (32 + i)
        out.append(val & mask)
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------
# CLI syntax: allow|deny:FIRST[-LAST]

@dataclass(frozen=True)
class FilterRange:
    """One CLI filter item: ``action`` over the inclusive range ``first..last``.

    A zero-length filter (KVM accepts nevents 0, and as the first filter it still sets the
    default) is written ``allow:none`` / ``deny:none`` (base_event 0), or ``allow:none@BASE``
    to keep a nonzero base_event (KVM still bounds-checks it); it has ``last == first - 1``
    (``nevents == 0``) - construct it with :meth:`empty`.
    """
    action: int
    first: int
    last: int

    def __post_init__(self):
        if self.action not in (KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY):
            raise ValueError(f"action must be KVM_PMU_EVENT_ALLOW or _DENY, not {self.action!r}")
        if self.first < 0 or self.last < self.first - 1:
            raise ValueError(f"bad range first={self.first} last={self.last}")

    @classmethod
    def empty(cls, action: int, base_event: int = 0) -> "FilterRange":
        """The zero-length filter ``{base_event, nevents=0}``."""
        return cls(action, base_event, base_event - 1)

    @property
    def nevents(self) -> int:
        return self.last - self.first + 1

    @property
    def action_name(self) -> str:
        return ACTION_NAMES[self.action]

    def to_structs(self) -> list[KvmPmuEventFilter]:
        """The ``struct kvm_pmu_event_filter`` sequence with the same effect.

        ``nevents`` is a u16, so a range of more than 0xFFFF events (only ``0-0xFFFF`` in a
        16-bit space) becomes several structs: chunks of 0xFFFF then the remainder.  (QEMU's
        review caught ``end - start + 1`` overflowing the u16 for ``0-0xFFFF``.)
        """
        if self.nevents == 0:
            return [KvmPmuEventFilter(self.first, 0, self.action)]
        out = []
        base, left = self.first, self.nevents
        while left:
            n = min(left, U16_MAX)
            out.append(KvmPmuEventFilter(base, n, self.action))
            base += n
            left -= n
        return out

    def format(self, names: Optional[dict] = None, use_names: bool = False) -> str:
        """CLI text; numbers in hex (or names if ``use_names`` and every bound has one)."""
        if self.nevents == 0:
            return f"{self.action_name}:none" + (f"@0x{self.first:X}" if self.first else "")

        def num(v):
            if use_names:
                n = event_name(v, names)
                if n:
                    return n
            return f"0x{v:X}"
        if self.first == self.last:
            return f"{self.action_name}:{num(self.first)}"
        return f"{self.action_name}:{num(self.first)}-{num(self.last)}"

    def __str__(self) -> str:
        return self.format()


_NUM_RE = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)\Z")
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
SYNTAX = "allow|deny:FIRST[-LAST]"


def _names_index(names: dict) -> dict[str, int]:
    return {v.upper(): k for k, v in names.items()}


def _event_in_table(tok: str, names: dict, where: str) -> int:
    """A number or a name of a caller's own table (``names=``): no perf vocabulary."""
    if _NUM_RE.match(tok):
        return int(tok, 0) if tok[:2].lower() == "0x" else int(tok, 10)
    if _NAME_RE.match(tok):
        index = _names_index(names)
        if tok.upper() not in index:
            close = difflib.get_close_matches(tok.upper(), list(index), n=1)
            hint = f"; did you mean {close[0]}?" if close else " (use a number or a name of the table)"
            raise ValueError(f"unknown event name {tok!r}{where}{hint}")
        return index[tok.upper()]
    raise ValueError(f"bad event number {tok!r}{where} (use hex 0x.., decimal, or an event name)")


def parse_event(token: str, names: Optional[dict] = None, *, nr_events: int = 65536,
                item: Optional[str] = None) -> int:
    """One event bound: hex (``0x11``), decimal (``17``), an Arm name (``CPU_CYCLES``,
    case-insensitive) or any perf spelling of an event (``cycles``, ``r11``,
    ``armv8_pmuv3_0/cpu_cycles/``: :func:`vpmu.pmu.perfnames.event_number`).  With ``names``,
    numbers and that table's names only.  Raises ValueError with a one-line message."""
    where = f" in filter {item!r}" if item is not None else ""
    tok = token.strip()
    if not tok:
        raise ValueError(f"empty event number{where} (syntax: {SYNTAX})")
    if names is not None:
        value = _event_in_table(tok, names, where)
    else:
        try:
            value = perfnames.event_number(tok)
        except ValueError as e:
            raise ValueError(f"{e}" + (f" (filter {item!r})" if item is not None else "")) from None
    if value >= nr_events:
        raise ValueError(f"event 0x{value:X}{where} is outside the {space_description(nr_events)}")
    return value


def _split_range(rng: str, text: str, names: Optional[dict]) -> tuple[str, str]:
    """FIRST and LAST of ``FIRST[-LAST]``.  perf names contain '-' (``branch-misses``,
    ``L1-dcache-load-misses``), so the whole text is one event if it is one spelling of an
    event; else the range is the one split at a '-' whose two sides are events (more than
    one such split: ambiguous)."""
    def ok(t: str) -> bool:
        try:
            parse_event(t, names)
        except ValueError:
            return False
        return True

    if "-" not in rng:
        return rng, rng
    whole: Optional[ValueError] = None
    try:
        if names is None:
            perfnames.parse(rng)             # a spelling, even one without a number here
        else:
            parse_event(rng, names)
        return rng, rng
    except ValueError as e:
        whole = e
    parts = rng.split("-")
    splits = [("-".join(parts[:i]), "-".join(parts[i:])) for i in range(1, len(parts))]
    found = [(a, b) for a, b in splits if ok(a) and ok(b)]
    if len(found) > 1:
        alts = " or ".join(f"{a.strip()!r} to {b.strip()!r}" for a, b in found)
        raise ValueError(f"bad filter {text!r}: ambiguous range, {alts}")
    if found:
        return found[0]
    if not isinstance(whole, perfnames.UnknownEvent):    # a (misspelt) single name: say so
        raise ValueError(f"{whole} (filter {text!r})")
    if len(parts) == 2:
        return parts[0], parts[1]             # parsing each side gives its own error
    raise ValueError(f"bad filter {text!r}: expected one FIRST or FIRST-LAST range "
                     "(no '-' in it separates two events)")


def parse_filter(text: str, *, nr_events: int = 65536, names: Optional[dict] = None) -> FilterRange:
    """Parse ``allow|deny:FIRST[-LAST]`` into a :class:`FilterRange`.

    FIRST/LAST are inclusive, hex (``0x..``), decimal, event names (``deny:BR_MIS_PRED``,
    ``allow:INST_RETIRED-CPU_CYCLES``) or perf's spellings (``deny:branch-misses``,
    ``allow:instructions-cycles``, ``deny:r10``, ``deny:armv8_pmuv3_0/br_mis_pred/``);
    ``allow:none``/``deny:none`` is the zero-length filter.  Every error is a ValueError with
    one specific line: bad syntax, unknown name, FIRST > LAST, or an event outside
    ``nr_events`` (the host event space).  ``0-0`` and ``0-0xFFFF`` are valid (both were
    rejected/mangled by early QEMU patches).
    """
    if not isinstance(text, str):
        raise ValueError(f"filter must be a string like {SYNTAX!r}, not {type(text).__name__}")
    item = text.strip()
    action_s, sep, rng = item.partition(":")
    if not sep:
        raise ValueError(f"bad filter {text!r}: expected {SYNTAX}")
    action_key = action_s.strip().lower()
    if action_key not in ("allow", "deny"):
        raise ValueError(f"bad filter {text!r}: action must be 'allow' or 'deny', not {action_s.strip()!r}")
    action = KVM_PMU_EVENT_ALLOW if action_key == "allow" else KVM_PMU_EVENT_DENY
    rng = rng.strip()
    if rng.startswith("-"):
        raise ValueError(f"bad filter {text!r}: event numbers cannot be negative")
    if rng.lower() == "none":
        return FilterRange.empty(action)
    if rng.lower().startswith("none@"):
        # zero-length with an explicit base_event: KVM accepts base_event == nr_events here
        base = parse_event(rng[5:], names, nr_events=min(nr_events + 1, U16_MAX + 1), item=text)
        return FilterRange.empty(action, base)
    a, b = _split_range(rng, text, names)
    first = parse_event(a, names, nr_events=nr_events, item=text)
    last = parse_event(b, names, nr_events=nr_events, item=text)
    if first > last:
        raise ValueError(f"bad filter {text!r}: FIRST 0x{first:X} is greater than LAST 0x{last:X}")
    return FilterRange(action, first, last)


def parse_filters(items: Iterable[str], *, nr_events: int = 65536,
                  names: Optional[dict] = None) -> list[FilterRange]:
    """Parse several items (order kept)."""
    return [parse_filter(t, nr_events=nr_events, names=names) for t in items]


def ranges_to_structs(ranges: Iterable[FilterRange]) -> list[KvmPmuEventFilter]:
    """All structs for a policy, in ioctl order."""
    out: list[KvmPmuEventFilter] = []
    for r in ranges:
        out.extend(r.to_structs())
    return out


def structs_to_ranges(structs: Sequence[KvmPmuEventFilter]) -> list[FilterRange]:
    """Inverse of :func:`ranges_to_structs` such that re-exporting gives the same bytes.

    Each struct becomes one item, except the split of a 65536-event range (``{0, 0xFFFF}``
    followed by ``{0xFFFF, 1}`` with the same action), which is merged back into ``0-0xFFFF``.
    Raises ValueError for a struct that no CLI item can express (action not 0/1, or a range
    running past event 0xFFFF - KVM would reject both with EINVAL).
    """
    out: list[FilterRange] = []
    i = 0
    while i < len(structs):
        s = structs[i]
        if s.action not in (KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY):
            raise ValueError(f"struct #{i} has action {s.action}, neither ALLOW (0) nor DENY (1); "
                             "KVM rejects it with EINVAL")
        if s.base_event + s.nevents > 65536:
            raise ValueError(f"struct #{i} {s} runs past event 0xFFFF; KVM rejects it with EINVAL")
        if s.nevents == 0:
            out.append(FilterRange.empty(s.action, s.base_event))
            i += 1
            continue
        last = s.base_event + s.nevents - 1
        if (s.nevents == U16_MAX and i + 1 < len(structs)
                and structs[i + 1].action == s.action
                and structs[i + 1].base_event == s.base_event + U16_MAX
                and structs[i + 1].nevents > 0
                and s.base_event + U16_MAX + structs[i + 1].nevents <= 65536):
            last += structs[i + 1].nevents
            i += 1
        out.append(FilterRange(s.action, s.base_event, last))
        i += 1
    return out

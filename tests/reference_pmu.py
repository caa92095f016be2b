"""Plain-Python reference model of the guest-visible PMUv3 as KVM emulates it.

Written from /work/shared/spec/kvm-pmu.md (section 3 for the registers, section 2 for the
event filter at counting time, section 1.4 for how a filter bitmap is built) without
looking at the numba kernels: plain ints, one dict/list per architectural register,
no arena, no channels.  ``tests/test_model_reference.py`` drives it and the numba model
with the same operations and compares every register read, the overflow interrupt
level and the overflow records.

What the reference is told from outside (emulator-specific facts, not PMU rules):

- ``implemented``: the events the emulator can produce at this PMU version (the "host
  supports the event" question of kvm-pmu.md section 2).  A counter programmed with
  anything else never counts; its PMEVTYPER still reads back.
- which events occur, and how many, per retired instruction (:meth:`RefPmu.retire`) or in
  one burst at a point in time (:meth:`RefPmu.burst`).  The test derives those from the
  emulator's event catalogue.

Interpretation choices (where the spec leaves room), each written down once:

- Counting is per increment (3.8): adding n events is n single increments, so an event
  counter with 32-bit overflow that crosses k multiples of 2**32 overflows k times.
- An overflow record is ``(counter, value, icount, pc)``: ``value`` is the counter just
  after the instruction (or burst) whose events made it overflow, ``icount`` the number
  of instructions retired up to and including that instruction, ``pc`` its address.
  A PMSWINC write takes effect when its MSR retires: its records count the MSR itself
  (icount + 1; :meth:`RefPmu.retire` is not told about the MSR instruction).
  A CHAIN increment and its overflow happen at the same point as the even counter's.
- PMU_OVFS (0x400D, PMUv3p4+) is an ordinary event that occurs once per counter overflow
  (including a chained odd counter's), at the exception level where the overflow happens.
  An overflow that a PMU_OVFS increment itself causes follows every rule of 3.8 (PMOVS,
  CHAIN) but does not produce a further PMU_OVFS event (no feedback loop).
- PMMIR_EL1 exists from PMUv3p4 (Arm ARM); it is RAZ (KVM, 0 "Note on PMCEID").
- The emulator has no AArch32 EL0, so PMCR.LC is RES1 (3.3); there is no EL2/EL3 in the
  guest, so PMEVTYPER keeps only P, U and evtCount (3.6).
"""
from __future__ import annotations

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1

UNDEF = "UNDEF"

# ID_AA64DFR0_EL1.PMUVer (kvm-pmu.md 0)
PMUVER = {"3.0": 1, "3.1": 4, "3.4": 5, "3.5": 6, "3.7": 7}
V3P1, V3P4, V3P5 = 4, 5, 6

# PMCR_EL0 bits (kvm-pmu.md 0)
E, P, C, D, X, DP, LC, LP = 1, 2, 4, 8, 16, 32, 64, 128
# PMEVTYPER / PMCCFILTR
TY_P, TY_U = 1 << 31, 1 << 30
# PMUSERENR_EL0
EN, SW, CR, ER = 1, 2, 4, 8

SW_INCR, CPU_CYCLES, CHAIN, PMU_OVFS = 0x00, 0x11, 0x1E, 0x400D
CYCLE = 31

ALLOW, DENY = 0, 1

# EL0 access rules, kvm-pmu.md 3.1: (read needs, write needs); 0 = always allowed,
# None = always UNDEF at EL0.
_FIXED = {
    "PMCR_EL0": (EN, EN),
    "PMCNTENSET_EL0": (EN, EN),
    "PMCNTENCLR_EL0": (EN, EN),
    "PMOVSSET_EL0": (EN, EN),
    "PMOVSCLR_EL0": (EN, EN),
    "PMCEID0_EL0": (EN, EN),
    "PMCEID1_EL0": (EN, EN),
    "PMXEVTYPER_EL0": (EN, EN),
    "PMCCFILTR_EL0": (EN, EN),
    "PMSELR_EL0": (EN | ER, EN | ER),
    "PMCCNTR_EL0": (EN | CR, EN),          # write: (EN or CR) then EN
    "PMXEVCNTR_EL0": (EN | ER, EN),        # write: (EN or ER) then EN
    "PMSWINC_EL0": (None, EN | SW),
    "PMINTENSET_EL1": (None, None),
    "PMINTENCLR_EL1": (None, None),
    "PMUSERENR_EL0": (0, None),
    "PMMIR_EL1": (None, None),
}
READ_ONLY = {"PMCEID0_EL0", "PMCEID1_EL0", "PMMIR_EL1"}
WRITE_ONLY = {"PMSWINC_EL0"}


def pmevcntr(n: int) -> str:
    return f"PMEVCNTR{n}_EL0"


def pmevtyper(n: int) -> str:
    return f"PMEVTYPER{n}_EL0"


REGISTER_NAMES = list(_FIXED) + [pmevcntr(n) for n in range(31)] + [pmevtyper(n) for n in range(31)]


def _family(name: str) -> tuple[str, int]:
    """("PMEVCNTR", n) / ("PMEVTYPER", n) / (name, -1)."""
    for fam in ("PMEVCNTR", "PMEVTYPER"):
        if name.startswith(fam) and name.endswith("_EL0") and name[len(fam):-4].isdigit():
            return fam, int(name[len(fam):-4])
    return name, -1


def event_space(pmuver: int) -> int:
    return 1024 if pmuver == 1 else 65536


def build_filter(pmuver: int, filters) -> set[int] | None:
    """The set of allowed events after KVM_ARM_VCPU_PMU_V3_FILTER calls (kvm-pmu.md 1.4),
    or None when no filter was ever set.  ``filters``: (action, base_event, nevents)."""
    allowed = None
    space = event_space(pmuver)
    for action, base, n in filters:
        if base + n > space or action not in (ALLOW, DENY):
            raise ValueError("KVM would return EINVAL for this filter")
        if allowed is None:                     # the first filter fixes the default
            allowed = set() if action == ALLOW else set(range(space))
        rng = range(base, base + n)
        if action == ALLOW:
            allowed.update(rng)
        else:
            allowed.difference_update(rng)
    return allowed


class RefPmu:
    def __init__(self, pmuver: int, n: int, implemented, filters=()):
        assert pmuver in PMUVER.values() and 0 <= n <= 31
        self.pmuver = pmuver
        self.n = n
        self.evmask = 0x3FF if pmuver == 1 else 0xFFFF
        self.counter64 = pmuver >= V3P5                  # event counter width (3.7)
        self.implemented = frozenset(implemented)
        self.allowed = build_filter(pmuver, filters)
        self.mask = ((1 << n) - 1) | (1 << 31)           # valid mask (3.4)
        # reset (3.10): PMCR = LC, everything else 0 (UNKNOWN in KVM; the emulator picks 0)
        self.pmcr = LC
        self.cnten = self.inten = self.ovs = 0
        self.selr = 0
        self.userenr = 0
        self.typer = [0] * 32        # [31] = PMCCFILTR
        self.cnt = [0] * 32          # [31] = PMCCNTR
        self.icount = 0
        self.records: list[tuple[int, int, int, int]] = []
        self._pmceid = None

    # ------------------------------------------------------------------ derived views
    def pmceid(self) -> tuple[int, int]:
        """PMCEID0/1 (kvm-pmu.md 2): host events, SW_INCR/CHAIN on, STALL_SLOT* off, AND filter."""
        if self._pmceid is None:
            self._pmceid = self._compute_pmceid()
        return self._pmceid

    def _compute_pmceid(self) -> tuple[int, int]:
        v = [0, 0]
        for ev in self.implemented:
            if ev < 64:
                v[ev // 32] |= 1 << (ev % 32)
            elif self.pmuver >= V3P1 and 0x4000 <= ev < 0x4040:
                v[(ev - 0x4000) // 32] |= 1 << (32 + (ev - 0x4000) % 32)
        v[0] |= 1 << SW_INCR | 1 << CHAIN
        v[1] &= ~(1 << 29 | 1 << 30 | 1 << 31)
        if self.allowed is not None:
            for i in (0, 1):
                m = 0
                for b in range(32):
                    if 32 * i + b in self.allowed:
                        m |= 1 << b
                    if event_space(self.pmuver) >= 0x4000 + 32 * i + 32 and 0x4000 + 32 * i + b in self.allowed:
                        m |= 1 << (32 + b)
                v[i] &= m
        return v[0], v[1]

    @property
    def irq_level(self) -> int:
        """3.9, newest rule: PMCR.E and any(PMOVS & PMINTEN); PMCNTEN is not part of it."""
        return int(bool(self.pmcr & E) and (self.ovs & self.inten & self.mask) != 0)

    def _width(self, c: int) -> int:
        return M64 if c == CYCLE or self.counter64 else M32

    def _ovf64(self, c: int) -> bool:
        return bool(self.pmcr & (LC if c == CYCLE else LP))

    def _evtcount(self, c: int) -> int:
        return CPU_CYCLES if c == CYCLE else self.typer[c] & self.evmask

    def _enabled(self, c: int) -> bool:
        return bool(self.pmcr & E) and bool(self.cnten >> c & 1)

    def counts(self, c: int, event: int, el: int) -> bool:
        """Counter c counts an occurrence of `event` at EL `el` (3.8 step 1, 3.6, 2)."""
        if not self._enabled(c):
            return False
        ev = self._evtcount(c)
        if ev != event or ev in (SW_INCR, CHAIN):       # software-only events: never by hardware
            return False
        if ev not in self.implemented:
            return False
        if self.allowed is not None and ev not in self.allowed:
            return False
        ty = self.typer[c]
        if el == 0 and ty & TY_U:
            return False
        if el == 1 and ty & TY_P:
            return False
        return True

    # ------------------------------------------------------------------ counting
    def _add(self, c: int, k: int, el: int, at: tuple[int, int], ovfs_feedback: bool = True) -> None:
        """k increments of counter c (3.8 steps 2-5)."""
        old = self.cnt[c]
        if self._ovf64(c):
            wraps = (old + k) >> 64
        else:
            wraps = ((old & M32) + k) >> 32
        self.cnt[c] = (old + k) & self._width(c)
        for _ in range(wraps):
            self._overflow(c, el, at, ovfs_feedback)

    def _overflow(self, c: int, el: int, at, ovfs_feedback: bool) -> None:
        self.ovs |= 1 << c
        self.records.append((c, self.cnt[c], at[0], at[1]))
        if c % 2 == 0 and c + 1 < 31 and not self._ovf64(c):          # CHAIN (3.8 step 4, 5)
            m = c + 1
            if self._enabled(m) and self.typer[m] & self.evmask == CHAIN:
                self._add(m, 1, el, at, ovfs_feedback)
        if ovfs_feedback:
            for o in range(32):
                if self.counts(o, PMU_OVFS, el):
                    self._add(o, 1, el, at, ovfs_feedback=False)

    def _occur(self, el: int, counts: dict, at) -> None:
        for c in range(32):
            if c < self.n or c == CYCLE:
                k = counts.get(self._evtcount(c), 0)
                if k and self.counts(c, self._evtcount(c), el):
                    self._add(c, k, el, at)

    def retire(self, el: int, insns, pc: int) -> None:
        """Instructions retire at EL `el`, the first at address pc; insns[i] maps event
        number -> occurrences caused by instruction i."""
        for i, counts in enumerate(insns):
            self.icount += 1
            self._occur(el, counts, (self.icount, pc + 4 * i))

    def burst(self, el: int, counts: dict, pc: int) -> None:
        """Events occur together at one point (between instructions), attributed to pc."""
        self._occur(el, counts, (self.icount, pc))

    def _swinc(self, v: int, el: int, pc: int) -> None:
        """3.8 step 6: needs PMCR.E and PMCNTENSET[n]; ignores P/U and the filter."""
        v &= self.mask
        if not self.pmcr & E:
            return
        for c in range(31):
            if v >> c & 1 and self.cnten >> c & 1 and self.typer[c] & self.evmask == SW_INCR:
                self._add(c, 1, el, (self.icount + 1, pc))

    # ------------------------------------------------------------------ register access
    def undef(self, name: str, is_read: bool, el: int = 1) -> bool:
        fam, idx = _family(name)
        if is_read and name in WRITE_ONLY or not is_read and name in READ_ONLY:
            return True
        if name == "PMMIR_EL1" and self.pmuver < V3P4:
            return True
        if el == 0:
            if fam == "PMEVCNTR":
                need = EN | ER if is_read else EN
            elif fam == "PMEVTYPER":
                need = EN
            else:
                need = _FIXED[name][0 if is_read else 1]
            if need is None or need and not self.userenr & need:
                return True
        if fam in ("PMEVCNTR", "PMEVTYPER"):                 # 3.2
            return idx >= self.n
        if name in ("PMXEVCNTR_EL0", "PMXEVTYPER_EL0"):
            sel = self.selr & 31
            return sel >= self.n and sel != CYCLE
        return False

    def read(self, name: str, el: int = 1):
        if self.undef(name, True, el):
            return UNDEF
        fam, idx = _family(name)
        sel = self.selr & 31
        if fam == "PMEVCNTR":
            return self.cnt[idx] & self._width(idx)
        if fam == "PMEVTYPER":
            return self.typer[idx]
        if name == "PMCR_EL0":
            return (self.pmcr & 0xFF & ~(P | C)) | self.n << 11
        if name in ("PMCNTENSET_EL0", "PMCNTENCLR_EL0"):
            return self.cnten
        if name in ("PMOVSSET_EL0", "PMOVSCLR_EL0"):
            return self.ovs
        if name in ("PMINTENSET_EL1", "PMINTENCLR_EL1"):
            return self.inten
        if name == "PMSELR_EL0":
            return sel
        if name == "PMCEID0_EL0":
            return self.pmceid()[0]
        if name == "PMCEID1_EL0":
            return self.pmceid()[1]
        if name == "PMCCNTR_EL0":
            return self.cnt[CYCLE]
        if name == "PMCCFILTR_EL0":
            return self.typer[CYCLE]
        if name == "PMXEVTYPER_EL0":
            return self.typer[sel]
        if name == "PMXEVCNTR_EL0":
            return self.cnt[sel] & self._width(sel)
        if name == "PMUSERENR_EL0":
            return self.userenr & 0xF
        if name == "PMMIR_EL1":
            return 0
        raise KeyError(name)

    def write(self, name: str, value: int, el: int = 1, pc: int = 0):
        """A guest MSR; returns UNDEF if it traps as undefined (no effect then)."""
        if self.undef(name, False, el):
            return UNDEF
        value &= M64
        fam, idx = _family(name)
        tymask = TY_P | TY_U | self.evmask                   # 3.6, EL1-only guest
        if fam == "PMEVCNTR":
            self.cnt[idx] = value & self._width(idx)
        elif fam == "PMEVTYPER":
            self.typer[idx] = value & tymask
        elif name == "PMCR_EL0":                              # 3.3
            new = value & 0xFF | LC
            if self.pmuver < V3P5:
                new &= ~LP
            if new & C:
                self.cnt[CYCLE] = 0
            if new & P:
                for c in range(self.n):
                    self.cnt[c] = 0
            self.pmcr = new & ~(P | C)
        elif name == "PMCNTENSET_EL0":
            self.cnten |= value & self.mask
        elif name == "PMCNTENCLR_EL0":
            self.cnten &= ~(value & self.mask)
        elif name == "PMOVSSET_EL0":
            self.ovs |= value & self.mask
        elif name == "PMOVSCLR_EL0":
            self.ovs &= ~(value & self.mask)
        elif name == "PMINTENSET_EL1":
            self.inten |= value & self.mask
        elif name == "PMINTENCLR_EL1":
            self.inten &= ~(value & self.mask)
        elif name == "PMSWINC_EL0":
            self._swinc(value, el, pc)
        elif name == "PMSELR_EL0":
            self.selr = value                                 # stored in full (3.5)
        elif name == "PMCCNTR_EL0":
            self.cnt[CYCLE] = value
        elif name == "PMCCFILTR_EL0":
            self.typer[CYCLE] = value & tymask                # KVM keeps evtCount (3.6 quirk)
        elif name == "PMXEVTYPER_EL0":
            self.typer[self.selr & 31] = value & tymask
        elif name == "PMXEVCNTR_EL0":
            sel = self.selr & 31
            self.cnt[sel] = value & self._width(sel)
        elif name == "PMUSERENR_EL0":
            self.userenr = value & 0xF
        else:
            raise KeyError(name)
        return None

    def take_records(self) -> list[tuple[int, int, int, int]]:
        r, self.records = self.records, []
        return r

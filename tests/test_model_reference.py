"""The numba PMU model (vpmu.pmu.counting, vpmu.pmu.registers) against the plain-Python reference (reference_pmu).

Both are driven with the same random operation sequences (hypothesis, derandomized) and
compared after every step: every PMU register read at EL1 (value or UNDEF), whether each
register UNDEFs for an EL0 read, an EL0 write and an EL1 write, the overflow interrupt
level, and the overflow records the step produced (as a multiset).

How events reach the numba side (the real counting code paths, no shortcut):

- static events: a synthetic translated block is installed in block-cache slot 0 (BLK_N,
  BLK_IOFF, POOL, one class per instruction in CLS_INC, BLK_TOT) and made current
  (CUR_*); it retires through ``commit`` - in one call (the fast path from BLK_TOT) or in
  chunks (the partial path summing CLS_INC, which also locates the overflowing
  instruction) - with register writes between chunks as a guest's MSR would be, and
  sometimes through ``commit_ex`` with one instruction of a chunk retiring as another
  class (the hook's failed store-exclusive path drops channels this way);
- dynamic events: ``dyn_event`` on a dynamic channel (bursts at one point in time);
- PMSWINC and every register: ``access_undef`` then ``pmu_read`` / ``pmu_write``, the
  calls the native MRS/MSR hook makes (ICOUNT includes the MSR during the write).

Which events a channel increment stands for comes from the event catalogue
(vpmu.pmu.events: data, not model code); the reference only sees event numbers.

The end of this file pins the cases random search found once (PMU_OVFS chaining and its
order, commit_ex replacements at the overflowing instruction).  Bursts stay below 2**32
events per counter and step, so no counter crosses two overflow boundaries in one add
(the model records one overflow per add; the reference would record each).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference_pmu as R
from reference_pmu import M32, M64, UNDEF, RefPmu

from vpmu import filter as F
from vpmu.pmu import channels as C
from vpmu.pmu import events as EV
from vpmu.pmu import counting as K_count
from vpmu.pmu import registers as K_regs
from vpmu.pmu import layout as L
from vpmu.pmu import regs

VERSIONS = [1, 4, 5, 6, 7]                       # PMUVer of 3.0, 3.1, 3.4, 3.5, 3.7
U64 = np.uint64

# ---------------------------------------------------------------------------------------------
# numba side: an arena initialised like Machine._init_arena, without Unicorn


def event_space(pmuver: int) -> int:
    return 1024 if pmuver == 1 else 65536


def kvm_filter(pmuver: int, filters) -> F.EventFilter:
    flt = F.EventFilter(event_space(pmuver))
    for action, base, n in filters:
        flt.apply(base, n, action)
    return flt


def make_arena(pmuver: int, ncnt: int, filters=()) -> np.ndarray:
    A = np.zeros(L.ARENA_WORDS, np.uint64)
    A[L.PMU_PRESENT] = 1
    A[L.PMUVER] = pmuver
    A[L.NCNT] = ncnt
    A[L.EVMASK] = 0x3FF if pmuver == 1 else 0xFFFF
    A[L.EVCNT64] = 1 if pmuver >= 6 else 0
    A[L.PMU_IRQ] = 23
    A[L.PMCR] = regs.PMCR_LC
    A[L.INSN_LIMIT] = L.NONE64
    A[L.NEXT_DEADLINE] = L.NONE64
    A[L.CNTFRQ] = 62_500_000
    # CNT_CYCLES ticks derived in commit() would be a second, derived event source; with
    # this divisor they never tick there (CYCLES stays far below it) and the channel is
    # driven through dyn_event like the other dynamic channels.
    A[L.TICK_DIV] = 1 << 62
    A[L.HANDLER:L.HANDLER + (1 << 16)] = regs.handler_table()
    A[L.RULE:L.RULE + (1 << 16)] = regs.el0_rule_table()
    for e in EV.CATALOGUE:
        sl = EV.slot(e.number)
        if sl < 0:
            continue
        A[L.EV_S + sl] = e.static if e.static >= 0 else L.NOCH
        A[L.EV_D + sl] = e.dynamic if e.dynamic >= 0 else L.NOCH
        A[L.EV_OK + sl] = 1 if EV.implemented_for(e.number, pmuver) else 0
    for sl in range(EV.NSLOT):
        if A[L.EV_OK + sl] == 0 and A[L.EV_S + sl] == 0 and A[L.EV_D + sl] == 0:
            A[L.EV_S + sl] = L.NOCH
            A[L.EV_D + sl] = L.NOCH
    flt = kvm_filter(pmuver, filters)
    bm = flt.bitmap()
    if bm is not None:
        full = np.zeros(65536, dtype=bool)
        full[:len(bm)] = np.frombuffer(bytes(bm), dtype=np.uint8).astype(bool)
        A[L.FILT_ON] = 1
        A[L.FILT:L.FILT + 1024] = np.packbits(full, bitorder="little").view(np.uint64)
    p0, p1 = EV.base_pmceid(pmuver)
    A[L.PMCEID0], A[L.PMCEID1] = F.pmceid(p0, p1, bytes(bm) if bm is not None else None, pmuver)
    K_regs.reconfigure(A)
    return A


class NumbaPmu:
    """The kernels, called the way the native hooks call them."""

    BLOCK = 0                       # block-cache slot used for the synthetic blocks

    def __init__(self, pmuver: int, n: int, filters=()):
        self.A = make_arena(pmuver, n, filters)

    @staticmethod
    def _kh(name: str) -> tuple[int, int]:
        k = regs.BY_NAME[name]
        return k, regs.HANDLER[k]

    def undef(self, name: str, is_read: bool, el: int) -> bool:
        k, h = self._kh(name)
        return bool(K_regs.access_undef(self.A, k, h, is_read, el))

    def read(self, name: str, el: int = 1):
        if self.undef(name, True, el):
            return UNDEF
        k, h = self._kh(name)
        return int(K_regs.pmu_read(self.A, h, U64(k)))

    def write(self, name: str, value: int, el: int = 1, pc: int = 0):
        self.A[L.CUR_EL] = el
        if self.undef(name, False, el):
            return UNDEF
        k, h = self._kh(name)
        # as the MSR hook does: what the write causes happens when the MSR retires, so its
        # records carry the icount including the MSR
        self.A[L.ICOUNT] += 1
        K_regs.pmu_write(self.A, h, U64(k), U64(value & M64), U64(pc))
        self.A[L.ICOUNT] -= 1
        return None

    def start_block(self, el: int, incs: list[list[int]], pc: int, extra_class=None) -> None:
        """Install a block whose instruction i has class i with channel increments incs[i]
        (plus an optional extra class n for commit_ex) and make it the current block."""
        A, e, n = self.A, self.BLOCK, len(incs)
        classes = incs + ([extra_class] if extra_class is not None else [])
        for cid, inc in enumerate(classes):
            A[L.CLS_INC + cid * C.NS:L.CLS_INC + (cid + 1) * C.NS] = np.array(inc, dtype=np.uint64)
        A[L.CLS_N] = len(classes)
        A[L.POOL:L.POOL + n] = np.arange(n, dtype=np.uint64)
        A[L.BLK_KEY + e * L.BW] = pc + 1
        A[L.BLK_N + e * L.BW] = n
        A[L.BLK_IOFF + e] = 0
        A[L.BLK_TOT + e * C.NS:L.BLK_TOT + (e + 1) * C.NS] = np.array(incs, dtype=np.uint64).sum(axis=0)
        A[L.CUR_VALID] = 1
        A[L.CUR_START] = pc
        A[L.CUR_SIZE] = 4 * n
        A[L.CUR_DONE] = 0
        A[L.CUR_ENTRY] = e
        A[L.CUR_EL] = el
        A[L.CUR_PRECISE] = 0

    def commit(self, i0: int, i1: int, oi: int = -1) -> None:
        if oi >= 0:
            K_count.commit_ex(self.A, i0, i1, oi, int(self.A[L.BLK_N + self.BLOCK * L.BW]))
        else:
            K_count.commit(self.A, i0, i1)

    def end_block(self) -> None:
        self.A[L.CUR_VALID] = 0

    def burst(self, el: int, d: int, n: int, pc: int) -> None:
        self.A[L.CUR_EL] = el
        K_count.dyn_event(self.A, d, U64(n), U64(pc), self.A[L.ICOUNT])

    @property
    def irq_level(self) -> int:
        return int(self.A[L.IRQ_LEVEL])

    @property
    def icount(self) -> int:
        return int(self.A[L.ICOUNT])

    def take_records(self) -> list[tuple[int, int, int, int]]:
        A = self.A
        n = int(A[L.RING_N])
        out = []
        for i in range(n):
            r = A[L.RING + i * L.RING_W:L.RING + (i + 1) * L.RING_W]
            if int(r[0]) == L.RT_OVERFLOW:
                out.append((int(r[1]), int(r[2]), int(r[3]), int(r[4])))
        A[L.RING_N] = 0
        return out


# ---------------------------------------------------------------------------------------------
# what a channel increment means in events (the catalogue's "derived" column)

STATIC_EVENTS = {s: [e.number for e in EV.CATALOGUE if e.static == s] for s in range(C.NS)}
DYNAMIC_EVENTS = {d: [e.number for e in EV.CATALOGUE if e.dynamic == d] for d in range(C.ND)}
DRIVEN_DYNAMIC = [d for d in range(C.ND) if DYNAMIC_EVENTS[d] and d != C.D_PMU_OVFS]


def implemented(pmuver: int) -> set[int]:
    return {e.number for e in EV.CATALOGUE if EV.implemented_for(e.number, pmuver)}


def events_of(inc: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for s, k in enumerate(inc):
        if k:
            for ev in STATIC_EVENTS[s]:
                out[ev] = out.get(ev, 0) + k
    return out


# ---------------------------------------------------------------------------------------------
# the pair: same operations on both, compared after every step

ALL_NAMES = R.REGISTER_NAMES
ACCESS_STATE = {"PMUSERENR_EL0", "PMSELR_EL0"}    # the registers the UNDEF outcomes depend on


class Mismatch(AssertionError):
    pass


class Pair:
    def __init__(self, pmuver: int, n: int, filters=()):
        self.pmuver, self.n = pmuver, n
        self.ref = RefPmu(pmuver, n, implemented(pmuver), filters)
        self.sut = NumbaPmu(pmuver, n, filters)
        self.log: list[str] = []
        self.pc = 0x4000_0000
        self.last_records: list[tuple[int, int, int, int]] = []    # overflow records of the last operation

    # --- observation
    def snapshot(self, side, access_rules: bool) -> dict:
        """Every register read at EL1; with access_rules also whether each register UNDEFs
        for an EL0 read, an EL0 write and an EL1 write (these depend only on PMUSERENR and
        PMSELR for a fixed configuration, so they are compared when those may have changed)."""
        snap = {name: side.read(name, 1) for name in ALL_NAMES}
        if access_rules:
            for name in ALL_NAMES:
                snap[name + " undef(r0,w0,w1)"] = (side.undef(name, True, 0), side.undef(name, False, 0),
                                                   side.undef(name, False, 1))
        snap["irq_level"] = side.irq_level
        return snap

    def check(self, what: str, access_rules: bool = False) -> None:
        self.log.append(what)
        a, b = self.snapshot(self.ref, access_rules), self.snapshot(self.sut, access_rules)
        diffs = [f"  {k}: reference {_fmt(a[k])} numba {_fmt(b[k])}" for k in a if a[k] != b[k]]
        ra, rb = sorted(self.ref.take_records()), sorted(self.sut.take_records())
        self.last_records += ra
        if ra != rb:
            diffs.append(f"  overflow records (counter, value, icount, pc):\n    reference {_fmtr(ra)}\n"
                         f"    numba     {_fmtr(rb)}")
        if diffs:
            raise Mismatch(f"after {what} (PMUVer {self.pmuver}, N={self.n}):\n" + "\n".join(diffs)
                           + "\nsteps:\n  " + "\n  ".join(self.log))

    # --- operations
    def write(self, name: str, value: int, el: int = 1) -> None:
        self.last_records = []
        self.pc += 4
        ra = self.ref.write(name, value, el, self.pc)
        rb = self.sut.write(name, value, el, self.pc)
        self.check(f"MSR {name}, {value:#x} at EL{el}{' (UNDEF)' if ra is UNDEF else ''}",
                   name in ACCESS_STATE)
        if ra != rb:
            raise Mismatch(f"{name} write UNDEF: reference {ra} numba {rb}")

    def block(self, el: int, incs, cuts=(), mids=None, override=None) -> None:
        """Retire a block of len(incs) instructions at EL el in chunks split at `cuts`;
        mids[cut] = list of (name, value) register writes done at that point (the MSR is the
        instruction at index cut); override = (i, inc): instruction i retires as a class
        with increments inc (commit_ex)."""
        self.last_records = []
        n = len(incs)
        mids = mids or {}
        self.pc = (self.pc + 0x100) & ~0xFF
        pc0 = self.pc
        oi, oinc = override if override is not None else (-1, None)
        self.sut.start_block(el, [list(i) for i in incs], pc0, oinc)
        bounds = [0] + sorted(set(c for c in cuts if 0 < c < n)) + [n]
        for i0, i1 in zip(bounds, bounds[1:]):
            ev = [events_of(oinc if i == oi else incs[i]) for i in range(i0, i1)]
            self.ref.retire(el, ev, pc0 + 4 * i0)
            self.sut.commit(i0, i1, oi if i0 <= oi < i1 else -1)
            kind = "full" if (i0, i1) == (0, n) and not (i0 <= oi < i1) else "partial"
            self.check(f"block @{pc0:#x} EL{el} commit [{i0},{i1}) of {n} ({kind}"
                       f"{', insn %d as extra class' % oi if i0 <= oi < i1 else ''}): {incs[i0:i1]}")
            for name, value in mids.get(i1, ()):
                pc = pc0 + 4 * i1
                ra = self.ref.write(name, value, el, pc)
                rb = self.sut.write(name, value, el, pc)
                self.check(f"  in block: MSR {name}, {value:#x} at EL{el} pc {pc:#x}"
                           f"{' (UNDEF)' if ra is UNDEF else ''}", name in ACCESS_STATE)
                if ra != rb:
                    raise Mismatch(f"{name} write UNDEF: reference {ra} numba {rb}")
        self.sut.end_block()
        self.pc = pc0 + 4 * n

    def burst(self, el: int, d: int, k: int) -> None:
        self.last_records = []
        self.pc += 4
        self.ref.burst(el, {ev: k for ev in DYNAMIC_EVENTS[d]}, self.pc)
        self.sut.burst(el, d, k, self.pc)
        self.check(f"dyn_event {C.DYNAMIC_NAMES[d]} x{k:#x} at EL{el}")

    def run(self, ops) -> None:
        self.check("reset", True)
        for op in ops:
            kind = op[0]
            if kind == "w":
                self.write(*op[1:])
            elif kind == "b":
                self.block(*op[1:])
            elif kind == "d":
                self.burst(*op[1:])
            else:
                raise ValueError(op)


def _fmt(v):
    if isinstance(v, int) and not isinstance(v, bool):
        return hex(v)
    return repr(v)


def _fmtr(rs):
    return "[" + ", ".join(f"({c}, {v:#x}, {i}, {p:#x})" for c, v, i, p in rs) + "]"


# ---------------------------------------------------------------------------------------------
# strategies

BOUNDARY = [0, 1, 2, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFF0, 0xFFFF_FFFE, 0xFFFF_FFFF, 1 << 32,
            0x1_FFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_0000_0000,
            0xFFFF_FFFF_FFFF_FFF0, M64 - 1, M64]
counter_values = st.one_of(
    st.sampled_from(BOUNDARY),
    st.tuples(st.sampled_from(BOUNDARY), st.integers(-40, 40)).map(lambda t: (t[0] + t[1]) & M64),
    st.integers(0, M64),
)
MASKS = [0, 1, 2, 3, 0x8000_0000, 0x8000_0001, 0x7FFF_FFFF, 0xFFFF_FFFF, M64, 0x5555_5555,
         0xAAAA_AAAA, 0x4000_0000, 0xC000_0000, 0xFFFF_FFFF_0000_0000]
masks = st.one_of(st.sampled_from(MASKS), st.integers(0, 63).map(lambda b: 1 << b), st.integers(0, M64))

EVENTS = [0x00, 0x1E, 0x11, 0x08, 0x13, 0x04, 0x06, 0x07, 0x09, 0x0C, 0x0D, 0x10, 0x12, 0x1B, 0x21,
          0x22, 0x23, 0x24, 0x3A, 0x3B, 0x3C, 0x4004, 0x4006, 0x01, 0x03, 0x02, 0x3D, 0x3F, 0x40,
          0x411, 0x41E, 0x400, 0x4000, 0x401E, 0x4011, 0x400C, 0xFFFF, 0x3FF]
event_numbers = st.one_of(st.sampled_from(EVENTS + [R.PMU_OVFS]), st.integers(0, 0xFFFF))
JUNK = [0, 1 << 29, 1 << 28, 1 << 27, 1 << 26, 0x3FF_0000, 0xFFFF_FFFF_0000_0000]
typer_values = st.builds(lambda ev, pu, junk: ev | pu | junk, event_numbers,
                         st.sampled_from([0, 0, R.TY_U, R.TY_P, R.TY_P | R.TY_U]),
                         st.one_of(st.just(0), st.sampled_from(JUNK)))
pmcr_values = st.one_of(
    st.builds(lambda lo, e, hi: lo | e | hi, st.integers(0, 0xFF), st.sampled_from([0, R.E, R.E]),
              st.sampled_from([0, 0, 0xF800, 0xFF00, 0xFFFF_FFFF_FFFF_FF00])),
    st.sampled_from([R.E, R.E | R.LP, R.E | R.LC, R.E | R.P, R.E | R.C, R.E | R.P | R.C, 0, R.P | R.C]))
selr_values = st.one_of(st.integers(0, 31), st.sampled_from([31, 32, 0xFFFF_FFFF_FFFF_FFE3, 63]),
                        st.integers(0, M64))


def value_for(name: str):
    fam, _ = R._family(name)
    if fam == "PMEVCNTR" or name in ("PMCCNTR_EL0", "PMXEVCNTR_EL0"):
        return counter_values
    if fam == "PMEVTYPER" or name in ("PMXEVTYPER_EL0", "PMCCFILTR_EL0"):
        return typer_values
    if name == "PMCR_EL0":
        return pmcr_values
    if name == "PMSELR_EL0":
        return selr_values
    if name == "PMUSERENR_EL0":
        return st.one_of(st.integers(0, 0xFF), st.just(M64))
    return masks


FIXED_NAMES = [n for n in R.REGISTER_NAMES if R._family(n)[1] < 0]
els = st.sampled_from([1, 1, 1, 0])


@st.composite
def reg_name(draw, n):
    idx = st.one_of(st.integers(0, 30), st.sampled_from([0, 1, 2, 3, 30, max(n - 1, 0), min(n, 30)]))
    return draw(st.one_of(
        st.sampled_from(FIXED_NAMES),
        st.sampled_from(["PMSWINC_EL0", "PMCR_EL0", "PMOVSCLR_EL0", "PMCNTENSET_EL0", "PMSELR_EL0",
                         "PMXEVCNTR_EL0", "PMXEVTYPER_EL0"]),
        idx.map(R.pmevcntr), idx.map(R.pmevtyper)))


@st.composite
def reg_write(draw, n):
    name = draw(reg_name(n))
    return (name, draw(value_for(name)), draw(els))


INC_COUNTS = [0, 1, 1, 1, 2, 3, 5, 0x100, 0x1_0000, 0x100_0000, 0x7FF_FFFF]


@st.composite
def instruction(draw):
    inc = [0] * C.NS
    for s in draw(st.lists(st.integers(0, C.NS - 1), max_size=6)):
        inc[s] = draw(st.sampled_from(INC_COUNTS))
    inc[C.S_INST] = draw(st.sampled_from([1, 1, 1, 0, 2]))
    inc[C.S_CYC] = draw(st.sampled_from([1, 1, 2, 3, 7, 0x100_0000]))
    return tuple(inc)


@st.composite
def block_op(draw, n):
    el = draw(st.sampled_from([0, 1]))
    incs = draw(st.lists(instruction(), min_size=1, max_size=8))
    k = len(incs)
    cuts = draw(st.lists(st.integers(1, max(k - 1, 1)), max_size=3)) if k > 1 else []
    mids = {}
    for c in cuts:
        if draw(st.booleans()):
            mids[c] = draw(st.lists(reg_write(n).map(lambda w: w[:2]), min_size=1, max_size=2))
    override = None
    if draw(st.integers(0, 3)) == 0:
        # commit_ex: instruction oi retires as another class (the store-exclusive hook drops
        # channels of a failed store-exclusive; the model accepts any replacement)
        oi = draw(st.integers(0, k - 1))
        override = (oi, draw(instruction()))
    return ("b", el, incs, cuts, mids, override)


@st.composite
def burst_op(draw):
    d = draw(st.sampled_from(DRIVEN_DYNAMIC))
    k = draw(st.sampled_from([1, 1, 2, 3, 16, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF]))
    return ("d", draw(st.sampled_from([0, 1])), d, k)


@st.composite
def scenario(draw, pmuver=None):
    if pmuver is None:
        pmuver = draw(st.sampled_from(VERSIONS))
    n = draw(st.one_of(st.sampled_from([0, 1, 2, 3, 4, 6, 30, 31]), st.integers(0, 31)))
    space = event_space(pmuver)
    filters = []
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            action = draw(st.sampled_from([F.KVM_PMU_EVENT_ALLOW, F.KVM_PMU_EVENT_DENY]))
            base = draw(st.one_of(st.sampled_from([0, 0x08, 0x10, 0x11, 0x13, 0x1E, 0x4000, 0x400D]),
                                  st.integers(0, space - 1)))
            base = min(base, space - 1)
            cnt = draw(st.one_of(st.sampled_from([0, 1, 2, 16, 64]), st.integers(0, space - base)))
            filters.append((action, base, min(cnt, space - base)))
    ops = []
    # a programming prefix (most examples): events, preset values near the boundaries,
    # enables, PMCR.E - so that counting and overflows happen often
    if draw(st.integers(0, 5)) > 0:
        counters = draw(st.lists(st.sampled_from(sorted(set(list(range(min(n, 8))) + [31] + ([n - 1] if n else [])))),
                                 max_size=6, unique=True))
        for c in counters:
            if c == 31:
                ops.append(("w", "PMCCFILTR_EL0", draw(typer_values), 1))
                ops.append(("w", "PMCCNTR_EL0", draw(counter_values), 1))
            else:
                ops.append(("w", R.pmevtyper(c), draw(typer_values), 1))
                ops.append(("w", R.pmevcntr(c), draw(counter_values), 1))
        ops.append(("w", "PMCNTENSET_EL0", draw(st.one_of(st.just(M64), masks)), 1))
        if draw(st.booleans()):
            ops.append(("w", "PMINTENSET_EL1", draw(st.one_of(st.just(M64), masks)), 1))
        ops.append(("w", "PMCR_EL0", draw(st.sampled_from([R.E, R.E, R.E | R.LP, R.E | R.LC | R.LP, R.E | R.P])), 1))
    body = draw(st.lists(st.one_of(
        reg_write(n).map(lambda w: ("w",) + w),
        st.tuples(st.just("w"), st.just("PMSWINC_EL0"), masks, els),
        block_op(n), block_op(n),
        burst_op()), max_size=20))
    return pmuver, n, filters, ops + body


# A longer local search: VPMU_REF_EXAMPLES=3000 (and VPMU_REF_RANDOM=1 for fresh random
# examples instead of the derandomized CI set).
EXAMPLES = int(os.environ.get("VPMU_REF_EXAMPLES", "60"))
COMMON = settings(max_examples=EXAMPLES, deadline=None, database=None,
                  derandomize="VPMU_REF_RANDOM" not in os.environ,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("pmuver", VERSIONS, ids=["v3p0", "v3p1", "v3p4", "v3p5", "v3p7"])
@COMMON
@given(data=st.data())
def test_random_sequences_match_reference(pmuver, data):
    pv, n, filters, ops = data.draw(scenario(pmuver))
    Pair(pv, n, filters).run(ops)


# ---------------------------------------------------------------------------------------------
# explicit edge cases: each asserts the spec value on both models (and Pair.check compares
# everything else after every step)

def insn(**channels) -> tuple[int, ...]:
    """One instruction's static channel increments, e.g. insn(inst=1, mem=1)."""
    inc = [0] * C.NS
    for k, v in channels.items():
        inc[C.STATIC_NAMES.index(k)] = v
    return tuple(inc)


def both(p: Pair, name: str):
    a, b = p.ref.read(name), p.sut.read(name)
    assert a == b, f"{name}: reference {_fmt(a)} numba {_fmt(b)}"
    return a


def setup(p: Pair, program: dict, enable: int, pmcr: int = R.E, inten: int = 0) -> None:
    """program: counter -> (PMEVTYPER value, preset); 31 = (PMCCFILTR, PMCCNTR)."""
    for c, (ty, v) in program.items():
        p.write("PMCCFILTR_EL0" if c == 31 else R.pmevtyper(c), ty)
        p.write("PMCCNTR_EL0" if c == 31 else R.pmevcntr(c), v)
    p.write("PMCNTENSET_EL0", enable)
    if inten:
        p.write("PMINTENSET_EL1", inten)
    p.write("PMCR_EL0", pmcr)


@pytest.mark.parametrize("pmuver", [1, 4, 5])
def test_32bit_counter_wraps_from_0xffffffff_to_0(pmuver):
    p = Pair(pmuver, 4)
    setup(p, {0: (0x08, 0xFFFF_FFFF), 2: (0x00, 0xFFFF_FFFF)}, 0b101)
    assert both(p, "PMEVCNTR0_EL0") == 0xFFFF_FFFF
    p.block(1, [insn(inst=1)])
    assert both(p, "PMEVCNTR0_EL0") == 0 and both(p, "PMOVSSET_EL0") == 0b1
    assert p.last_records == [(0, 0, 1, p.pc - 4)]
    p.write("PMSWINC_EL0", 0b100)                       # SW_INCR counter wraps the same way
    assert both(p, "PMEVCNTR2_EL0") == 0 and both(p, "PMOVSSET_EL0") == 0b101
    # a 64-bit write to a 32-bit counter keeps the low half only
    p.write("PMEVCNTR0_EL0", 0x1234_5678_FFFF_FFFF)
    assert both(p, "PMEVCNTR0_EL0") == 0xFFFF_FFFF


@pytest.mark.parametrize("pmuver", [6, 7])
def test_v3p5_64bit_counter_overflows_at_32_bits_without_lp(pmuver):
    p = Pair(pmuver, 4)
    setup(p, {0: (0x08, 0xFFFF_FFF0), 1: (0x00, 0xFFFF_FFF0)}, 0b11)
    p.block(1, [insn(inst=1)] * 0x64)                   # fast path: one add of 0x64
    assert both(p, "PMEVCNTR0_EL0") == 0x1_0000_0054
    assert both(p, "PMOVSSET_EL0") == 0b1
    assert p.last_records == [(0, 0x1_0000_0000, 16, p.pc - 4 * 0x64 + 4 * 15)]   # the 16th instruction
    for _ in range(0x64):                               # kvm-unit-tests pmu-sw-incr, 32-bit variant
        p.write("PMSWINC_EL0", 0b10)
    assert both(p, "PMEVCNTR1_EL0") == 0x1_0000_0054 and both(p, "PMOVSSET_EL0") == 0b11
    # and again at the next 2**32 boundary, in chunks (partial path)
    p.write("PMEVCNTR0_EL0", 0x1_FFFF_FFFE)
    icount = p.sut.icount
    p.block(0, [insn(inst=1)] * 4, cuts=[1, 3])
    assert both(p, "PMEVCNTR0_EL0") == 0x2_0000_0002
    assert p.last_records == [(0, 0x2_0000_0000, icount + 2, p.pc - 4 * 4 + 4)]


@pytest.mark.parametrize("pmuver", [6, 7])
def test_lp_gives_64bit_overflow_and_no_chain(pmuver):
    p = Pair(pmuver, 4)
    setup(p, {0: (0x08, 0xFFFF_FFF0), 1: (0x1E, 5)}, 0b11, pmcr=R.E | R.LP)
    assert both(p, "PMCR_EL0") & R.LP
    p.block(1, [insn(inst=1)] * 0x20)
    assert both(p, "PMEVCNTR0_EL0") == 0x1_0000_0010
    assert both(p, "PMOVSSET_EL0") == 0 and both(p, "PMEVCNTR1_EL0") == 5
    p.write("PMEVCNTR0_EL0", 0xFFFF_FFFF_FFFF_FFF0)
    p.block(1, [insn(inst=1)] * 0x20)
    assert both(p, "PMEVCNTR0_EL0") == 0x10
    assert both(p, "PMOVSSET_EL0") == 0b1                # overflow at 64 bits ...
    assert both(p, "PMEVCNTR1_EL0") == 5                 # ... and CHAIN does not move
    # the same without LP chains
    p.write("PMCR_EL0", R.E)
    p.write("PMEVCNTR0_EL0", 0xFFFF_FFFF_FFFF_FFF0)
    p.block(1, [insn(inst=1)] * 0x20)
    assert both(p, "PMEVCNTR1_EL0") == 6


@pytest.mark.parametrize("pmuver", VERSIONS)
def test_chain_into_a_disabled_odd_counter(pmuver):
    p = Pair(pmuver, 2)
    setup(p, {0: (0x00, 0xFFFF_FFFF), 1: (0x1E, 7)}, 0b01)
    p.write("PMSWINC_EL0", 0b01)
    assert both(p, "PMOVSSET_EL0") == 0b01               # the even counter's bit is set anyway
    assert both(p, "PMEVCNTR1_EL0") == 7                 # the odd counter needs its own enable
    p.write("PMCNTENSET_EL0", 0b10)
    p.write("PMEVCNTR0_EL0", 0xFFFF_FFFF)
    p.write("PMSWINC_EL0", 0b01)
    assert both(p, "PMEVCNTR1_EL0") == 8
    # an odd counter with CHAIN at 0xFFFFFFFF wraps and overflows too (kvm-unit-tests chained-sw-incr)
    p.write("PMEVCNTR1_EL0", 0xFFFF_FFFF)
    p.write("PMEVCNTR0_EL0", 0xFFFF_FFFF)
    p.write("PMOVSCLR_EL0", M64)
    p.write("PMSWINC_EL0", 0b01)
    assert both(p, "PMOVSSET_EL0") == 0b11
    assert both(p, "PMEVCNTR1_EL0") == (0x1_0000_0000 if pmuver >= 6 else 0)
    # the even counter disabled: never overflows, the odd counter stays
    p.write("PMCNTENCLR_EL0", 0b01)
    p.write("PMEVCNTR0_EL0", 0xFFFF_FFFF)
    p.write("PMSWINC_EL0", 0b11)
    assert both(p, "PMEVCNTR0_EL0") == 0xFFFF_FFFF


def test_counter_30_never_chains():
    p = Pair(7, 31)
    # PMCCFILTR keeps evtCount 0x1E (KVM quirk) and excludes EL0 and EL1: the cycle counter
    # would only move by a (wrong) chain from counter 30.
    setup(p, {30: (0x08, 0xFFFF_FFFF), 31: (R.TY_P | R.TY_U | 0x1E, 0)}, M64)
    assert both(p, "PMCCFILTR_EL0") == R.TY_P | R.TY_U | 0x1E
    p.block(1, [insn(inst=1, cycles=1)])
    assert both(p, "PMOVSSET_EL0") == 1 << 30
    assert both(p, "PMCCNTR_EL0") == 0


@pytest.mark.parametrize("pmuver", VERSIONS)
def test_pmcr_lc_res1_lp_res0_below_v3p5_p_c_read_0(pmuver):
    p = Pair(pmuver, 3)
    assert both(p, "PMCR_EL0") == R.LC | 3 << 11                           # reset value
    p.write("PMCR_EL0", 0)
    assert both(p, "PMCR_EL0") == R.LC | 3 << 11                           # LC is RES1
    p.write("PMCR_EL0", R.LP | R.D | R.X | R.DP | 0xFFFF_FF00)
    want_lp = R.LP if pmuver >= 6 else 0
    assert both(p, "PMCR_EL0") == R.LC | want_lp | R.D | R.X | R.DP | 3 << 11  # N/IDCODE/IMP read-only
    for c in range(3):
        p.write(R.pmevcntr(c), 0xFFFF_FFFF_FFFF_FFFF)
    p.write("PMCCNTR_EL0", 0x1234_5678_9ABC_DEF0)
    p.write("PMCR_EL0", R.P)
    assert both(p, "PMCR_EL0") & (R.P | R.C) == 0
    assert [both(p, R.pmevcntr(c)) for c in range(3)] == [0, 0, 0]
    assert both(p, "PMCCNTR_EL0") == 0x1234_5678_9ABC_DEF0                # P does not reset PMCCNTR
    p.write("PMCR_EL0", R.C)
    assert both(p, "PMCR_EL0") & (R.P | R.C) == 0 and both(p, "PMCCNTR_EL0") == 0


def test_pmselr_reads_bits_4_0_and_selects_with_them():
    p = Pair(7, 4)
    p.write("PMSELR_EL0", 0xFFFF_FFFF_FFFF_FFE3)
    assert both(p, "PMSELR_EL0") == 3
    p.write("PMXEVCNTR_EL0", 0xDEAD_BEEF)
    p.write("PMXEVTYPER_EL0", 0xEA)
    assert both(p, "PMEVCNTR3_EL0") == 0xDEAD_BEEF and both(p, "PMEVTYPER3_EL0") == 0xEA
    p.write("PMSELR_EL0", 4)                               # SEL = N: UNDEF
    assert p.ref.read("PMXEVCNTR_EL0") is UNDEF and p.sut.read("PMXEVCNTR_EL0") is UNDEF
    assert p.ref.write("PMXEVTYPER_EL0", 1) is UNDEF and p.sut.write("PMXEVTYPER_EL0", 1) is UNDEF


@pytest.mark.parametrize("pmuver", [1, 7])
def test_pmxevtyper_and_pmxevcntr_at_sel_31(pmuver):
    p = Pair(pmuver, 2)
    p.write("PMSELR_EL0", 31)
    p.write("PMXEVTYPER_EL0", M64)
    evmask = 0x3FF if pmuver == 1 else 0xFFFF
    assert both(p, "PMCCFILTR_EL0") == R.TY_P | R.TY_U | evmask            # evtCount kept (KVM quirk)
    assert both(p, "PMXEVTYPER_EL0") == R.TY_P | R.TY_U | evmask
    p.write("PMXEVCNTR_EL0", 0xFFFF_FFFF_FFFF_FFFE)
    assert both(p, "PMCCNTR_EL0") == 0xFFFF_FFFF_FFFF_FFFE                # 64 bits on every version
    # PMCCFILTR's evtCount does not change what the cycle counter counts
    p.write("PMCCFILTR_EL0", 0x08)
    setup(p, {}, 1 << 31)
    p.block(1, [insn(inst=1, cycles=3)])
    assert both(p, "PMCCNTR_EL0") == 1                                     # LC=1: 64-bit overflow
    assert both(p, "PMOVSSET_EL0") == 1 << 31


@pytest.mark.parametrize("pmuver", [1, 4, 7])
def test_filtered_cpu_cycles_stops_the_cycle_counter(pmuver):
    p = Pair(pmuver, 2, filters=[(F.KVM_PMU_EVENT_DENY, 0x11, 1)])
    setup(p, {0: (0x11, 0), 1: (0x08, 0), 31: (0, 0)}, M64)
    p.block(1, [insn(inst=1, cycles=5)] * 3)
    p.burst(1, C.D_CYC, 100)                                               # penalty cycles too
    assert both(p, "PMCCNTR_EL0") == 0 and both(p, "PMEVCNTR0_EL0") == 0
    assert both(p, "PMEVCNTR1_EL0") == 3
    assert both(p, "PMCEID0_EL0") >> 0x11 & 1 == 0
    # registers still work
    p.write("PMCCNTR_EL0", 42)
    assert both(p, "PMCCNTR_EL0") == 42


@pytest.mark.parametrize("pmuver", [1, 7])
def test_sw_incr_ignores_filter_and_pu_but_needs_e_and_cnten(pmuver):
    # first filter ALLOW INST_RETIRED only: everything else (SW_INCR included) denied
    p = Pair(pmuver, 2, filters=[(F.KVM_PMU_EVENT_ALLOW, 0x08, 1)])
    assert both(p, "PMCEID0_EL0") & 1 == 0                                 # hidden from PMCEID ...
    p.write("PMEVTYPER0_EL0", R.TY_P | R.TY_U | 0x00)                      # excludes EL0 and EL1
    p.write("PMSWINC_EL0", 1)
    assert both(p, "PMEVCNTR0_EL0") == 0                                   # PMCR.E = 0
    p.write("PMCR_EL0", R.E)
    p.write("PMSWINC_EL0", 1)
    assert both(p, "PMEVCNTR0_EL0") == 0                                   # not enabled
    p.write("PMCNTENSET_EL0", 1)
    p.write("PMSWINC_EL0", M64)                                            # bit 31, unimplemented bits ignored
    assert both(p, "PMEVCNTR0_EL0") == 1                                   # ... but counted
    p.write("PMUSERENR_EL0", R.SW)
    p.write("PMSWINC_EL0", 1, el=0)
    assert both(p, "PMEVCNTR0_EL0") == 2
    p.write("PMUSERENR_EL0", 0)
    p.write("PMSWINC_EL0", 1, el=0)                                        # UNDEF at EL0 without EN/SW
    assert both(p, "PMEVCNTR0_EL0") == 2
    p.write("PMEVTYPER1_EL0", 0x1E)                                         # CHAIN is not filtered either
    p.write("PMCNTENSET_EL0", 2)
    p.write("PMEVCNTR0_EL0", 0xFFFF_FFFF)
    p.write("PMSWINC_EL0", 1)
    assert both(p, "PMEVCNTR1_EL0") == 1


def test_overflow_irq_level_newest_rule():
    p = Pair(7, 2)
    setup(p, {0: (0x00, 0xFFFF_FFFF)}, 1, inten=1)
    assert p.sut.irq_level == 0
    p.write("PMSWINC_EL0", 1)
    assert p.sut.irq_level == 1
    p.write("PMCNTENCLR_EL0", 1)                          # PMCNTEN is not part of the level
    assert p.sut.irq_level == 1
    p.write("PMCR_EL0", 0)
    assert p.sut.irq_level == 0
    p.write("PMCR_EL0", R.E)
    assert p.sut.irq_level == 1
    p.write("PMINTENCLR_EL1", 1)
    assert p.sut.irq_level == 0
    p.write("PMINTENSET_EL1", 1)
    p.write("PMOVSCLR_EL0", 1)
    assert p.sut.irq_level == 0
    p.write("PMOVSSET_EL0", 1 << 31)                      # software-set overflow, cycle counter bit
    assert p.sut.irq_level == 0                           # (its interrupt is not enabled)
    p.write("PMINTENSET_EL1", 1 << 31)
    assert p.sut.irq_level == 1


@pytest.mark.parametrize("pmuver", VERSIONS)
def test_el_filter_and_unimplemented_counters(pmuver):
    p = Pair(pmuver, 3)
    setup(p, {0: (R.TY_U | 0x08, 0), 1: (R.TY_P | 0x08, 0), 2: (0x08, 0)}, M64)
    p.block(0, [insn(inst=1)] * 3)
    p.block(1, [insn(inst=1)] * 5, cuts=[2])
    assert [both(p, R.pmevcntr(c)) for c in range(3)] == [5, 3, 8]
    for name in (R.pmevcntr(3), R.pmevtyper(3), R.pmevcntr(30)):
        assert p.ref.read(name) is UNDEF and p.sut.read(name) is UNDEF
    assert both(p, "PMCNTENSET_EL0") == 0x8000_0007


@pytest.mark.parametrize("pmuver", [5, 6, 7])
def test_pmu_ovfs_counts_overflows_at_the_overflow_el(pmuver):
    p = Pair(pmuver, 4)
    setup(p, {1: (R.TY_U | 0x400D, 0), 0: (0x08, 0xFFFF_FFFF), 2: (0x00, 0xFFFF_FFFF), 31: (0, M64)}, M64)
    p.block(1, [insn(inst=1, cycles=1)])                  # counter 0 and the cycle counter overflow
    assert both(p, "PMEVCNTR1_EL0") == 2 and both(p, "PMOVSSET_EL0") == 0x8000_0001
    p.write("PMSWINC_EL0", 0b100)                         # at EL1
    assert both(p, "PMEVCNTR1_EL0") == 3
    p.write("PMEVCNTR0_EL0", 0xFFFF_FFFF)
    p.block(0, [insn(inst=1)])                            # overflow at EL0: PMU_OVFS excludes EL0
    assert both(p, "PMEVCNTR1_EL0") == 3 and both(p, "PMEVCNTR0_EL0") & M32 == 0


# ---------------------------------------------------------------------------------------------
# cases random search found (each was a model bug)

def test_overflow_of_a_pmu_ovfs_counter_chains():
    p = Pair(7, 4)
    setup(p, {0: (0x400D, 0xFFFF_FFFF), 1: (0x1E, 0), 2: (0x08, 0xFFFF_FFFF)}, 0b111)
    p.block(1, [insn(inst=1)])        # counter 2 overflows -> PMU_OVFS: counter 0 overflows -> CHAIN
    assert both(p, "PMOVSSET_EL0") == 0b101
    assert both(p, "PMEVCNTR1_EL0") == 1


def test_pmu_ovfs_overflow_record_follows_instruction_order():
    p = Pair(7, 4)
    setup(p, {0: (0x400D, 0xFFFF_FFFF), 2: (0x08, 0xFFFF_FFFE), 3: (0x08, 0xFFFF_FFFF)}, 0b1101)
    icount = p.sut.icount
    p.block(1, [insn(inst=1), insn(inst=1)])   # counter 3 overflows at insn 0, counter 2 at insn 1
    pc0 = p.pc - 8
    assert sorted(p.last_records) == [(0, 0x1_0000_0000, icount + 1, pc0),
                                      (2, 0x1_0000_0000, icount + 2, pc0 + 4),
                                      (3, 0x1_0000_0000, icount + 1, pc0)]


@pytest.mark.parametrize("case", ["failed-stxp-at-overflow", "replaced-before-overflow"])
def test_commit_ex_overflow_record_uses_the_replacement_class(case):
    p = Pair(7, 2)
    icount = p.sut.icount
    if case == "failed-stxp-at-overflow":
        # what the hook does: a failed STXP (2 registers: OP 2, MEM 2, ST 1) retires as the
        # failed class (OP 1, no store, no access); OP_RETIRED overflows exactly at it
        setup(p, {0: (0x3A, 0xFFFF_FFFF)}, 1)
        stxp = insn(inst=1, op=2, st=1, mem=2, mem_insn=1, cycles=1)
        failed = insn(inst=1, op=1, cycles=1)
        p.block(1, [stxp], override=(0, failed))
        assert p.last_records == [(0, 0x1_0000_0000, icount + 1, p.pc - 4)]
    else:
        # general (oi, oc): a store that retires as a non-store before the overflowing one
        setup(p, {0: (0x13, 0xFFFF_FFFF)}, 1)
        store = insn(inst=1, st=1, mem=1)
        p.block(1, [store, store], override=(0, insn(inst=1)))
        assert p.last_records == [(0, 0x1_0000_0000, icount + 2, p.pc - 4)]

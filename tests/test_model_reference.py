"""The numba PMU model (vpmu.pmu.kernels) against the plain-Python reference (reference_pmu).

Both are driven with the same random operation sequences (hypothesis, derandomized) and
compared after every step: every PMU register read at EL1 (value or UNDEF), whether each
register UNDEFs for an EL0 read, an EL0 write and an EL1 write, the overflow interrupt
level, and the overflow records the step produced (as a multiset).

How events reach the numba side (the real counting code paths, no shortcut):

- static events: a synthetic translated block is installed in block-cache slot 0 (BLK_N,
  BLK_IOFF, POOL, one class per instruction in CLS_INC, BLK_TOT) and made current
  (CUR_*); it retires through ``commit`` - in one call (the fast path from BLK_TOT) or in
  chunks (the partial path summing CLS_INC, which also locates the overflowing
  instruction) - with register accesses between chunks as a guest's MSR/MRS would be,
  and sometimes through ``commit_ex`` with one instruction retiring as another class
  (the failed store-exclusive path);
- dynamic events: ``dyn_event`` on a dynamic channel (bursts at one point in time);
- PMSWINC and every register: ``access_undef`` then ``pmu_read`` / ``pmu_write``, the
  calls the native MRS/MSR hook makes.

Which events a channel increment stands for comes from the event catalogue
(vpmu.pmu.events: data, not model code); the reference only sees event numbers.
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
from vpmu.pmu import kernels as K
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
    A[L.PMCR] = K.PMCR_LC
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
    K.reconfigure(A)
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
        return bool(K.access_undef(self.A, k, h, is_read, el))

    def read(self, name: str, el: int = 1):
        if self.undef(name, True, el):
            return UNDEF
        k, h = self._kh(name)
        return int(K.pmu_read(self.A, h, U64(k)))

    def write(self, name: str, value: int, el: int = 1, pc: int = 0):
        self.A[L.CUR_EL] = el
        if self.undef(name, False, el):
            return UNDEF
        k, h = self._kh(name)
        K.pmu_write(self.A, h, U64(k), U64(value & M64), U64(pc))
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
        A[L.BLK_KEY + e] = pc + 1
        A[L.BLK_SIZE + e] = 4 * n
        A[L.BLK_N + e] = n
        A[L.BLK_IOFF + e] = 0
        A[L.BLK_TOT + e * C.NS:L.BLK_TOT + (e + 1) * C.NS] = np.array(incs, dtype=np.uint64).sum(axis=0)
        A[L.CUR_VALID] = 1
        A[L.CUR_START] = pc
        A[L.CUR_SIZE] = 4 * n
        A[L.CUR_N] = n
        A[L.CUR_DONE] = 0
        A[L.CUR_ENTRY] = e
        A[L.CUR_EL] = el
        A[L.CUR_PRECISE] = 0

    def commit(self, i0: int, i1: int, oi: int = -1) -> None:
        if oi >= 0:
            K.commit_ex(self.A, i0, i1, oi, int(self.A[L.BLK_N + self.BLOCK]))
        else:
            K.commit(self.A, i0, i1)

    def end_block(self) -> None:
        self.A[L.CUR_VALID] = 0

    def burst(self, el: int, d: int, n: int, pc: int) -> None:
        self.A[L.CUR_EL] = el
        K.dyn_event(self.A, d, U64(n), U64(pc), self.A[L.ICOUNT])

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
        if ra != rb:
            diffs.append(f"  overflow records (counter, value, icount, pc):\n    reference {_fmtr(ra)}\n"
                         f"    numba     {_fmtr(rb)}")
        if diffs:
            raise Mismatch(f"after {what} (PMUVer {self.pmuver}, N={self.n}):\n" + "\n".join(diffs)
                           + "\nsteps:\n  " + "\n  ".join(self.log))

    # --- operations
    def write(self, name: str, value: int, el: int = 1) -> None:
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
          0x22, 0x23, 0x24, 0x3A, 0x3C, 0x400D, 0x4004, 0x4006, 0x01, 0x03, 0x02, 0x3D, 0x3F, 0x40,
          0x411, 0x41E, 0x400, 0x4000, 0x401E, 0x4011, 0xFFFF, 0x3FF]
event_numbers = st.one_of(st.sampled_from(EVENTS), st.integers(0, 0xFFFF))
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
    if draw(st.integers(0, 4)) == 0:
        override = (draw(st.integers(0, k - 1)), draw(instruction()))
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
EXAMPLES = int(os.environ.get("VPMU_REF_EXAMPLES", "100"))
COMMON = settings(max_examples=EXAMPLES, deadline=None, derandomize="VPMU_REF_RANDOM" not in os.environ, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("pmuver", VERSIONS, ids=["v3p0", "v3p1", "v3p4", "v3p5", "v3p7"])
@COMMON
@given(data=st.data())
def test_random_sequences_match_reference(pmuver, data):
    pv, n, filters, ops = data.draw(scenario(pmuver))
    Pair(pv, n, filters).run(ops)

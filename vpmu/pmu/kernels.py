"""The PMU model and the counting path: numba kernels over the arena.

Every function takes the arena ``A`` (``uint64[ARENA_WORDS]``, see ``layout``) and only
ints; none allocates, so all are compiled without numba's reference counting
(``_nrt=False``): with it, every call passing ``A`` costs a pair of incref/decref calls,
which made the per-block path about three times slower.  They are called from the native Unicorn hooks (``hooks``) and,
for rare events and tests, directly from Python.  Arithmetic on register values stays
in ``np.uint64``: mixing uint64 with a signed int silently gives float64 in numba.

Semantics follow kvm-pmu.md section 3 (KVM's view of PMUv3); the architecture decides
where KVM is silent.  Choices are written down where they are made.

Counting model.  Each block carries per-channel totals of its instructions' static
events.  ``commit`` adds the increments of instructions [i0, i1) of the current block
to every counter counting a static channel at the block's exception level; a fully
executed block is one add per counter.  Counters are "brought up to date before any
read, write or reconfiguration" (sync before observe): every trapped PMU access
first commits the instructions before it.  An instruction is counted after its own
effect: a write that enables counting counts itself, one that disables it does not.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import native
from . import channels as C
from .layout import *  # noqa: F401,F403  (offsets are compile-time constants)
from . import layout as L

U = np.uint64
I = np.int64         # numba: int() of a uint64 stays uint64; indices must be signed
M32 = U(0xFFFFFFFF)
M64 = U(0xFFFFFFFFFFFFFFFF)
ONE = U(1)
ZERO = U(0)

# PMCR_EL0 bits
PMCR_E, PMCR_P, PMCR_C, PMCR_D, PMCR_X, PMCR_DP, PMCR_LC, PMCR_LP = 1, 2, 4, 8, 16, 32, 64, 128
# PMEVTYPER / PMCCFILTR filter bits
TY_P = U(1 << 31)
TY_U = U(1 << 30)

_pycall = native.pycall


@njit(cache=True, _nrt=False)
def ring_put(A, rtype, a, b, c, d, e):
    n = I(A[RING_N])
    if n >= NRING:
        _pycall(PC_RING_FULL, A.ctypes)
        n = I(A[RING_N])
        if n >= NRING:          # Python could not drain: drop (never happens in practice)
            return
    o = RING + n * RING_W
    A[o] = U(rtype)
    A[o + 1] = U(a)
    A[o + 2] = U(b)
    A[o + 3] = U(c)
    A[o + 4] = U(d)
    A[o + 5] = U(e)
    A[RING_N] = U(n + 1)


@njit(cache=True, _nrt=False)
def valid_mask(A):
    """bits [N-1:0] | bit 31: the implemented counters."""
    n = I(A[NCNT])
    m = (ONE << U(n)) - ONE if n > 0 else ZERO
    return m | U(1 << 31)


@njit(cache=True, _nrt=False)
def event_allowed(A, ev):
    """KVM filter (kvm-pmu.md 2): no filter = allowed; else the bitmap bit."""
    if A[FILT_ON] == ZERO:
        return True
    if ev >= 65536:
        return False
    return (A[FILT + (ev >> 6)] >> U(ev & 63)) & ONE != ZERO


@njit(cache=True, _nrt=False)
def reconfigure(A):
    """Recompute what each counter counts from PMCR/PMCNTEN/PMINTEN/PMEVTYPER/PMCCFILTR,
    the filter, the PMU version and the frozen flag (KVM re-evaluates on every such change)."""
    defer_flush(A)                          # tallies count with the configuration they ran under
    e_on = (A[PMCR] & U(PMCR_E)) != ZERO and A[FROZEN] == ZERO and A[PMU_PRESENT] != ZERO
    vm = valid_mask(A)
    nact = 0
    for d in range(C.ND):
        A[DYN_LISTEN + d] = ZERO
    watch = ZERO
    evmask = A[EVMASK]
    pmcr = A[PMCR]
    for c in range(32):
        A[C_S + c] = U(NOCH)
        A[C_D + c] = U(NOCH)
        bit = ONE << U(c)
        if c == 31:
            A[C_OVF64 + c] = U(1) if (pmcr & U(PMCR_LC)) != ZERO else ZERO
            A[C_WMASK + c] = M64
            ev = 0x11                       # the cycle counter counts CPU_CYCLES
        else:
            A[C_OVF64 + c] = U(1) if ((pmcr & U(PMCR_LP)) != ZERO and A[EVCNT64] != ZERO) else ZERO
            A[C_WMASK + c] = M64 if A[EVCNT64] != ZERO else M32
            ev = I(A[TYPER + c] & evmask)
        ty = A[TYPER + c]
        # EL filter for a guest without EL2/EL3: counts at EL1 iff P == NSK (NSK reads 0),
        # at EL0 iff U == NSU (NSU reads 0) (kvm-pmu.md 3.6).
        elm = 0
        if (ty & TY_U) == ZERO:
            elm |= 1
        if (ty & TY_P) == ZERO:
            elm |= 2
        A[C_EL + c] = U(elm)
        if not e_on or (A[CNTEN] & bit & vm) == ZERO:
            continue
        if (A[INTEN] & bit) != ZERO:
            watch |= bit
        if ev == 0 or ev == 0x1E:           # SW_INCR / CHAIN: software, never filtered
            continue
        if not event_allowed(A, ev):        # denied: never counts, reads/writes still work
            continue
        sl = -1
        if ev < 64:
            sl = ev
        elif ev >= 0x4000 and ev < 0x4040:
            sl = 64 + ev - 0x4000
        if sl < 0 or A[EV_OK + sl] == ZERO:
            continue                        # not implemented: the counter does not count
        s = A[EV_S + sl]
        dch = A[EV_D + sl]
        A[C_S + c] = s
        A[C_D + c] = dch
        if s != U(NOCH):
            A[ACT + nact] = U(c) | (s << U(8)) | (U(elm) << U(16)) | (A[C_OVF64 + c] << U(24))
            nact += 1
        if dch != U(NOCH):
            A[DYN_LISTEN + I(dch)] |= bit
    A[ACT_N] = U(nact)
    A[IRQ_WATCH] = watch
    # A cache model starts (cold) when a counter first counts one of its events and then keeps
    # simulating (its contents must not depend on when counting was on); --cache starts both.
    if A[DYN_LISTEN + C.D_L1I_REFILL] != ZERO:
        A[L1I_ACTIVE] = ONE
    if (A[DYN_LISTEN + C.D_L1D_REFILL] | A[DYN_LISTEN + C.D_L1D_WB]) != ZERO:
        A[L1D_ACTIVE] = ONE
    mw = A[L1D_ACTIVE]
    for d in C.MEM_HOOK_CHANNELS:
        if A[DYN_LISTEN + d] != ZERO:
            mw = ONE
    A[MEMHOOK_WANT] = mw
    A[DEF_OK] = ONE if defer_ok(A) else ZERO


@njit(cache=True, _nrt=False)
def irq_update(A):
    """The overflow interrupt is a level: PMCR.E && (PMOVSSET & PMINTENSET) != 0
    (newest KVM: PMCNTENSET is not part of it, kvm-pmu.md 3.9).  Python is told on a change."""
    lvl = ZERO
    if A[PMU_PRESENT] != ZERO and (A[PMCR] & U(PMCR_E)) != ZERO and A[FROZEN] == ZERO:
        if (A[OVS] & A[INTEN] & valid_mask(A)) != ZERO:
            lvl = ONE
    if lvl != A[IRQ_LEVEL]:
        A[IRQ_LEVEL] = lvl
        ring_put(A, RT_IRQ_LEVEL, A[PMU_IRQ], lvl, A[ICOUNT], 0, 0)
        if A[IRQ_DEFER] != ZERO:
            A[IRQ_DEFER] = U(2)             # tell Python when the retiring instruction is complete
        else:
            _pycall(PC_IRQ_LEVEL, A.ctypes)


@njit(cache=True, _nrt=False)
def defer_irq(A):
    """Hold the interrupt-line notification while an instruction's events are being added:
    whoever reacts to it (the GIC, a Xen sample snapshotting the PMU) must see every counter
    updated for that instruction."""
    A[IRQ_DEFER] = ONE


@njit(cache=True, _nrt=False)
def release_irq(A):
    pending = A[IRQ_DEFER] == U(2)
    A[IRQ_DEFER] = ZERO
    if pending:
        _pycall(PC_IRQ_LEVEL, A.ctypes)


@njit(cache=True, _nrt=False)
def overflowing_add(A, c, inc):
    """Add inc to counter c with its width; return True if it overflowed (kvm-pmu.md 3.8)."""
    old = A[CNT + c]
    new = old + inc
    if A[C_OVF64 + c] != ZERO:
        ovf = new < old
    else:
        ovf = ((old & M32) + inc) > M32
    A[CNT + c] = new & A[C_WMASK + c]
    return ovf


@njit(cache=True, _nrt=False)
def _mark(A, c, pc, at_icount):
    A[OVS] |= ONE << U(c)
    ring_put(A, RT_OVERFLOW, c, A[CNT + c], at_icount, pc, 0)


@njit(cache=True, _nrt=False)
def _chain(A, c, pc, at_icount):
    """CHAIN: an even counter's 32-bit overflow increments its odd neighbour if that counter is
    enabled and programmed with CHAIN; never with 64-bit overflow, never into 31.  Returns the
    odd counter if the increment overflowed it (marked), else -1."""
    if (c & 1) == 0 and c + 1 < 31 and A[C_OVF64 + c] == ZERO:
        o = c + 1
        obit = ONE << U(o)
        if ((A[PMCR] & U(PMCR_E)) != ZERO and A[FROZEN] == ZERO and (A[CNTEN] & obit & valid_mask(A)) != ZERO
                and (A[TYPER + o] & A[EVMASK]) == U(0x1E)):
            if overflowing_add(A, o, ONE):
                _mark(A, o, pc, at_icount)
                return o
    return -1


@njit(cache=True, _nrt=False)
def _pmu_ovfs(A, pc, at_icount):
    """One PMU_OVFS event (an overflow happened).  The overflows it causes set PMOVS and CHAIN
    like any other but produce no further PMU_OVFS event (no feedback loop)."""
    lst = A[DYN_LISTEN + C.D_PMU_OVFS]
    if lst == ZERO:
        return
    el = I(A[CUR_EL])
    for c in range(32):
        if (lst >> U(c)) & ONE != ZERO and (A[C_EL + c] >> U(el)) & ONE != ZERO:
            if overflowing_add(A, c, ONE):
                _mark(A, c, pc, at_icount)
                _chain(A, c, pc, at_icount)


@njit(cache=True, _nrt=False)
def on_overflow(A, c, pc, at_icount):
    """Counter c overflowed at pc (kvm-pmu.md 3.8): PMOVS and its record, CHAIN into the odd
    neighbour (whose own overflow is an overflow too), PMU_OVFS once per overflow."""
    _mark(A, c, pc, at_icount)
    if _chain(A, c, pc, at_icount) >= 0:
        _pmu_ovfs(A, pc, at_icount)
    _pmu_ovfs(A, pc, at_icount)
    irq_update(A)


@njit(cache=True, _nrt=False)
def dyn_event(A, d, n, pc, at_icount):
    """A dynamic event happened n times at pc (attributed to the current block's EL)."""
    lst = A[DYN_LISTEN + d]
    if lst == ZERO or n == ZERO:
        return
    defer_flush(A)
    el = I(A[CUR_EL])
    for c in range(32):
        if (lst >> U(c)) & ONE != ZERO and (A[C_EL + c] >> U(el)) & ONE != ZERO:
            if overflowing_add(A, c, n):
                on_overflow(A, c, pc, at_icount)


@njit(cache=True, _nrt=False)
def add_cycles(A, cyc, pc, at_icount):
    """Advance the executed-cycle count; derive CNT_CYCLES ticks."""
    t0 = A[CYCLES]
    A[CYCLES] = t0 + cyc
    if A[DYN_LISTEN + C.D_CNT_CYCLES] != ZERO:
        div = A[TICK_DIV]
        ticks = (t0 + cyc) // div - t0 // div
        dyn_event(A, C.D_CNT_CYCLES, ticks, pc, at_icount)


@njit(cache=True, _nrt=False)
def locate(A, c, i0, i1, needed, oi, oc):
    """(index, events so far) of the instruction in [i0, i1) of the current block at which
    counter c's static channel has produced `needed` more events (the overflowing one);
    instruction oi retires as class oc (commit_ex)."""
    s = I(A[C_S + c])
    e = I(A[CUR_ENTRY])
    off = I(A[BLK_IOFF + e])
    acc = ZERO
    for i in range(i0, i1):
        cl = oc if i == oi else I(A[POOL + off + i])
        acc += A[CLS_INC + cl * C.NS + s]
        if acc >= needed:
            return i, acc
    return i1 - 1, acc


# ---- deferred counting ---------------------------------------------------------------------------
# While nothing needs per-block work (no cache model, no dynamic event fed per block, no
# mispredict cycles), the block hook only tallies completed blocks (how many times each ran)
# and admits a block only if its bound BLK_W fits in DEF_BUDGET: the least headroom of any
# counter counting a static channel, the instructions to the limit and to the next sample, and
# the cycles to the next timer deadline.  Nothing observable can then happen inside deferred
# blocks, so adding the tallies later (defer_flush, at the first point that could observe a
# counter, ICOUNT or the time) gives exactly the eager result.  The branch predictor keeps
# being updated per block (hooks._fast), as the eager path does.
@njit(cache=True, _nrt=False)
def defer_flush(A):
    """Add the tallied blocks to the counters, ICOUNT and the cycle count; the budget is
    invalid afterwards (DEF_BVALID = 0)."""
    A[DEF_BVALID] = ZERO
    n = I(A[DEF_N])
    if n == 0:
        return
    A[DEF_N] = ZERO
    A[DEF_FLUSHES] += ONE
    elbit = ONE << (A[DEF_EL] + U(16))
    nact = I(A[ACT_N])
    ic = A[ICOUNT]
    cyc = ZERO
    for i in range(n):
        e = I(A[DEF_LIST + i])
        k = A[DEF_CNT + i]
        A[BLK_DEF + e] = ZERO
        ic += k * A[BLK_N + e]
        cyc += k * A[BLK_TOT + e * C.NS + C.S_CYC]
        for j in range(nact):
            d = A[ACT + j]
            if (d & elbit) == ZERO:
                continue
            c = I(d & U(0xFF))
            inc = k * A[BLK_TOT + e * C.NS + I((d >> U(8)) & U(0xFF))]
            if inc != ZERO and overflowing_add(A, c, inc):
                A[DEF_MISS] += ONE          # impossible by the budget; keep the architectural effect
                on_overflow(A, c, A[CUR_START], ic)
    A[ICOUNT] = ic
    A[CYCLES] += cyc                        # (no CNT_CYCLES listener: defer_ok; and no add_cycles ->
                                            # dyn_event -> defer_flush cycle numba cannot compile)


@njit(cache=True, _nrt=False)
def defer_budget(A):
    """How much deferred blocks may add to any quantity before something observable could
    happen: the smallest of every static counter's headroom - 1 at the current EL, and the
    instructions / cycles left before the limit, the next sample and the next timer deadline
    minus one (the eager path acts at the first block boundary at or after them)."""
    b = M64
    elbit = ONE << (A[CUR_EL] + U(16))
    for j in range(I(A[ACT_N])):
        d = A[ACT + j]
        if (d & elbit) != ZERO:
            h = headroom(A, I(d & U(0xFF))) - ONE
            if h < b:
                b = h
    ic = A[ICOUNT]
    lim = A[INSN_LIMIT]
    if lim != M64:
        h = lim - ic - ONE if lim > ic else ZERO
        if h < b:
            b = h
    smp = A[NEXT_SAMPLE]
    if smp != M64:
        h = smp - ic - ONE if smp > ic else ZERO
        if h < b:
            b = h
    dl = A[NEXT_DEADLINE]
    if dl != M64:
        t = A[CYCLES] + A[IDLE]
        h = dl - t - ONE if dl > t else ZERO
        if h < b:
            b = h
    return b


@njit(cache=True, _nrt=False)
def defer_ok(A):
    """Can blocks be counted deferred with the current configuration?"""
    return (A[DEF_ENABLE] != ZERO and A[L1I_ACTIVE] == ZERO and A[L1D_ACTIVE] == ZERO
            and A[MEMHOOK_WANT] == ZERO and A[PEN_MISPRED] == ZERO
            and A[DYN_LISTEN + C.D_PCW] == ZERO and A[DYN_LISTEN + C.D_MISPRED] == ZERO
            and A[DYN_LISTEN + C.D_CNT_CYCLES] == ZERO)


@njit(cache=True, _nrt=False)
def headroom(A, c):
    """Events until counter c overflows (1 = the next event overflows it)."""
    v = A[CNT + c]
    if A[C_OVF64 + c] != ZERO:
        return (M64 - v) + ONE if v != ZERO else M64
    return (M32 - (v & M32)) + ONE


@njit(cache=True, _nrt=False)
def _queue_overflow(A, nq, c, old, i0, i1, oi, oc):
    """Counter c (which held `old`) overflowed while instructions [i0, i1) retired: queue it
    with the instruction whose events reach the threshold."""
    if A[C_OVF64 + c] != ZERO:
        hr = (M64 - old) + ONE
    else:
        hr = (M32 - (old & M32)) + ONE
    k, acc = locate(A, c, i0, i1, hr, oi, oc)
    q = OVQ + 4 * nq
    A[q], A[q + 1], A[q + 2], A[q + 3] = U(k), U(c), old, acc


@njit(cache=True, _nrt=False)
def _settle_overflows(A, nq, i0, start, icount0):
    """Handle the queued overflows in instruction order (then counter order): each is
    recorded at its instruction, with the counter as it was just after that instruction, so
    PMU_OVFS and CHAIN increments happen in the order the overflows did."""
    for _ in range(nq):
        best = -1
        for j in range(nq):
            q = OVQ + 4 * j
            if A[q + 1] == M64:
                continue
            if best < 0 or A[q] < A[OVQ + 4 * best] or (A[q] == A[OVQ + 4 * best]
                                                        and A[q + 1] < A[OVQ + 4 * best + 1]):
                best = j
        q = OVQ + 4 * best
        k, c, old, acc = I(A[q]), I(A[q + 1]), A[q + 2], A[q + 3]
        A[q + 1] = M64
        final = A[CNT + c]
        A[CNT + c] = (old + acc) & A[C_WMASK + c]
        A[ICOUNT] = icount0 + U(k - i0 + 1)
        on_overflow(A, c, start + U(4 * k), icount0 + U(k - i0 + 1))
        A[CNT + c] = final


@njit(cache=True, _nrt=False)
def commit(A, i0, i1):
    """Retire instructions [i0, i1) of the current block: static channels into counters.

    The fast path (a whole block) is one add per counting counter from the block's
    precomputed totals; a partial range sums the per-instruction class increments."""
    commit_ex(A, i0, i1, -1, 0)


@njit(cache=True, _nrt=False)
def commit_ex(A, i0, i1, oi, oc):
    """commit(), with instruction oi retiring as class oc instead of its own (a failed
    store-exclusive is not a store: the class is chosen after it executed)."""
    defer_flush(A)
    outer = A[IRQ_DEFER] != ZERO
    if not outer:
        defer_irq(A)
    _commit_ex(A, i0, i1, oi, oc)
    if not outer:
        release_irq(A)


@njit(cache=True, _nrt=False)
def _commit_ex(A, i0, i1, oi, oc):
    if i1 <= i0:
        return
    e = I(A[CUR_ENTRY])
    n = I(A[BLK_N + e])
    elbit = U(1) << (A[CUR_EL] + U(16))
    start = A[CUR_START]
    icount0 = A[ICOUNT]
    full = i0 == 0 and i1 == n and oi < 0
    off = I(A[BLK_IOFF + e])
    if full:
        cyc = A[BLK_TOT + e * C.NS + C.S_CYC]
        nins = U(n)
    else:
        cyc = ZERO
        for i in range(i0, i1):
            cl = oc if i == oi else I(A[POOL + off + i])
            cyc += A[CLS_INC + cl * C.NS + C.S_CYC]
        nins = U(i1 - i0)
    nact = I(A[ACT_N])
    nq = 0
    for j in range(nact):
        d = A[ACT + j]
        if (d & elbit) == ZERO:
            continue
        c = I(d & U(0xFF))
        s = I((d >> U(8)) & U(0xFF))
        if full:
            inc = A[BLK_TOT + e * C.NS + s]
        else:
            inc = ZERO
            for i in range(i0, i1):
                cl = oc if i == oi else I(A[POOL + off + i])
                inc += A[CLS_INC + cl * C.NS + s]
        if inc == ZERO:
            continue
        old = A[CNT + c]
        new = old + inc
        if (d >> U(24)) & ONE != ZERO:
            ovf = new < old
        else:
            ovf = ((old & M32) + inc) > M32
        A[CNT + c] = new & A[C_WMASK + c]
        if ovf:
            _queue_overflow(A, nq, c, old, i0, i1, oi, oc)
            nq += 1
    if nq:
        _settle_overflows(A, nq, i0, start, icount0)
    A[ICOUNT] = icount0 + nins
    add_cycles(A, cyc, start + U(4 * (i1 - 1)), icount0 + nins)
    A[CUR_DONE] = U(i1)


@njit(cache=True, _nrt=False)
def penalty(A, stall_d, pen, pc, ic):
    """`pen` extra cycles (a mispredict or refill): CPU_CYCLES, the frontend or backend stall
    channel `stall_d` and STALL count them, and time advances."""
    if pen != ZERO:
        dyn_event(A, C.D_CYC, pen, pc, ic)
        dyn_event(A, stall_d, pen, pc, ic)
        dyn_event(A, C.D_STALL, pen, pc, ic)
        add_cycles(A, pen, pc, ic)


# ---- branches ----------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def bp_index(pc):
    return I((pc >> U(2)) & U(BP_N - 1))


@njit(cache=True, _nrt=False, inline="always")
def bp_update(A, kind, pc, target, next_pc, outcome):
    """The predictor state after the branch at pc (kind BK_*) went to next_pc; returns
    1 if it was mispredicted, | 2 if it is a taken conditional branch.

    Predictor model (docs/events.md): conditional branches use a 2-bit saturating counter
    per (PC >> 2) mod 4096, initially weakly not-taken; B/BL are always predicted; BR/BLR
    use a 1024-entry last-target buffer (cold entry = mispredict); RET pops a 16-entry circular
    return stack filled by BL/BLR (the 17th push overwrites the oldest entry; empty or wrong =
    mispredict).  ERET is not predicted.  A conditional branch whose target is the next
    instruction is taken iff its condition held (outcome 2; decided by the block hook).
    """
    r = 0
    if kind == BK_COND:
        taken = next_pc == target
        if target == pc + U(4):
            taken = outcome == U(2)         # a branch to the next instruction: the condition decides
        i = bp_index(pc)
        ctr = A[BP + i]
        if (ctr >= U(2)) != taken:
            r = 1
        if taken:
            r |= 2
            if ctr < U(3):
                A[BP + i] = ctr + ONE
        elif ctr > ZERO:
            A[BP + i] = ctr - ONE
    elif kind == BK_BR or kind == BK_BLR:
        i = I((pc >> U(2)) & U(BTB_N - 1))
        if not (A[BTB_TAG + i] == pc + ONE and A[BTB_TGT + i] == next_pc):
            r = 1
        A[BTB_TAG + i] = pc + ONE
        A[BTB_TGT + i] = next_pc
    elif kind == BK_RET:
        cnt = I(A[RAS_CNT])
        if cnt > 0:                 # pop the most recent return address
            top = I(A[RAS_TOP])
            if A[RAS + top] != next_pc:
                r = 1
            A[RAS_TOP] = U((top + RAS_N - 1) % RAS_N)
            A[RAS_CNT] = U(cnt - 1)
        else:
            r = 1                   # empty return stack: not predicted
    if kind == BK_BL or kind == BK_BLR:
        top = (I(A[RAS_TOP]) + 1) % RAS_N   # circular: a 17th push overwrites the oldest entry
        A[RAS + top] = pc + U(4)
        A[RAS_TOP] = U(top)
        A[RAS_CNT] = U(min(I(A[RAS_CNT]) + 1, RAS_N))
    return r


@njit(cache=True, _nrt=False)
def resolve_branch(A, next_pc):
    """The successor of the last retired branch is known: taken/not-taken, predictor, and
    the events (PC_WRITE_RETIRED's conditional part, BR_MIS_PRED, mispredict cycles)."""
    if A[PB_VALID] == ZERO:
        return
    A[PB_VALID] = ZERO
    pc = A[PB_PC]
    ic = A[ICOUNT]
    r = bp_update(A, I(A[PB_KIND]), pc, A[PB_TARGET], next_pc, A[PB_OUTCOME])
    A[PB_OUTCOME] = ZERO
    if r == 0:
        return
    saved_el = A[CUR_EL]
    A[CUR_EL] = A[PB_EL]
    if r & 2:
        dyn_event(A, C.D_PCW, ONE, pc, ic)
    if r & 1:
        dyn_event(A, C.D_MISPRED, ONE, pc, ic)
        penalty(A, C.D_STALL_FE, A[PEN_MISPRED], pc, ic)
    A[CUR_EL] = saved_el


@njit(cache=True, _nrt=False)
def finish_block(A, next_pc):
    """Retire the rest of the current block; its final branch resolves against next_pc."""
    defer_irq(A)
    _finish_block(A, next_pc)
    release_irq(A)


@njit(cache=True, _nrt=False)
def _finish_block(A, next_pc):
    if A[CUR_VALID] != ZERO:
        e = I(A[CUR_ENTRY])
        n = I(A[BLK_N + e])
        commit(A, I(A[CUR_DONE]), n)
        bk = A[BLK_BK + e]
        A[CUR_VALID] = ZERO
        if bk == U(BK_ERET):
            A[EL_STALE] = ONE               # ERET changed the exception level: re-read PSTATE
        elif bk != U(BK_NONE):
            A[PB_VALID] = ONE
            A[PB_KIND] = bk
            A[PB_PC] = A[CUR_START] + U(4 * (n - 1))
            A[PB_TARGET] = A[BLK_TGT + e]
            A[PB_EL] = A[CUR_EL]
    resolve_branch(A, next_pc)


@njit(cache=True, _nrt=False)
def end_block_at(A, pc, retired):
    """A synchronous exception at pc: instructions before it retire, and pc itself if
    `retired` (SVC/HVC/SMC and handled semihosting calls complete; aborts/UNDEF/BRK do not).
    If pc is not inside the current block, the block completed and pc is its successor."""
    if A[CUR_VALID] != ZERO:
        start = A[CUR_START]
        if pc >= start and pc < start + A[CUR_SIZE]:
            idx = I((pc - start) >> U(2))
            commit(A, I(A[CUR_DONE]), idx + (1 if retired else 0))
            A[CUR_VALID] = ZERO
            return
    finish_block(A, pc)


@njit(cache=True, _nrt=False)
def sync_to(A, pc):
    """Commit the current block's instructions before pc (pc inside the block)."""
    defer_flush(A)
    if A[CUR_VALID] == ZERO:
        return
    start = A[CUR_START]
    if pc < start or pc >= start + A[CUR_SIZE]:
        return
    idx = I((pc - start) >> U(2))
    done = I(A[CUR_DONE])
    if idx > done:
        commit(A, done, idx)


# ---- caches ------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def cache_lookup(A, is_d, line, is_write):
    """LRU set-associative lookup in the L1D (is_d) or L1I model; returns (hit, wrote_back)."""
    if is_d:
        tag_base, age_base, sets, ways = L1D_TAG, L1D_AGE, I(A[L1D_SETS]), I(A[L1D_WAYS])
    else:
        tag_base, age_base, sets, ways = L1I_TAG, L1I_AGE, I(A[L1I_SETS]), I(A[L1I_WAYS])
    s = I(line % U(sets))
    base = s * ways
    A[CACHE_CLOCK] += ONE
    now = A[CACHE_CLOCK]
    key = line + ONE
    for w in range(ways):
        if A[tag_base + base + w] == key:
            A[age_base + base + w] = now
            if is_write and is_d:
                A[L1D_DIRTY + base + w] = ONE
            return True, False
    victim = 0
    oldest = M64
    for w in range(ways):
        if A[tag_base + base + w] == ZERO:
            victim = w
            break
        if A[age_base + base + w] < oldest:
            oldest = A[age_base + base + w]
            victim = w
    wb = False
    if is_d:
        wb = A[tag_base + base + victim] != ZERO and A[L1D_DIRTY + base + victim] != ZERO
        A[L1D_DIRTY + base + victim] = ONE if is_write else ZERO
    A[tag_base + base + victim] = key
    A[age_base + base + victim] = now
    return False, wb


@njit(cache=True, _nrt=False)
def icache_fetch(A, start, size, pc_for_events):
    """Instruction fetch of a block: one L1I lookup per line it spans (before it executes)."""
    if A[L1I_ACTIVE] == ZERO:
        return
    defer_irq(A)
    _icache_fetch(A, start, size, pc_for_events)
    release_irq(A)


@njit(cache=True, _nrt=False)
def _icache_fetch(A, start, size, pc_for_events):
    sh = A[LINE_SHIFT]
    first = start >> sh
    last = (start + size - ONE) >> sh
    ln = first
    ic = A[ICOUNT]
    while ln <= last:
        hit, _wb = cache_lookup(A, False, ln, False)
        if not hit:
            dyn_event(A, C.D_L1I_REFILL, ONE, pc_for_events, ic)
            penalty(A, C.D_STALL_FE, A[PEN_L1I], pc_for_events, ic)
        ln += ONE


@njit(cache=True, _nrt=False)
def _insn_class(A, pc):
    """Class of the instruction at pc in the current block (-1 if pc is not in it)."""
    start = A[CUR_START]
    if A[CUR_VALID] == ZERO or pc < start or pc >= start + A[CUR_SIZE]:
        return -1
    return I(A[POOL + I(A[BLK_IOFF + I(A[CUR_ENTRY])]) + I((pc - start) >> U(2))])


@njit(cache=True, _nrt=False)
def data_access(A, addr, size, is_write, pc, is_ram):
    defer_irq(A)
    _data_access(A, addr, size, is_write, pc, is_ram)
    release_irq(A)


@njit(cache=True, _nrt=False)
def _data_access(A, addr, size, is_write, pc, is_ram):
    """One data access seen by the memory hook (Unicorn may split an instruction's transfer
    into several).  Per instruction execution, on its first access: UNALIGNED_LDST_RETIRED if
    the address is not a multiple of the instruction's element size, and L1D_CACHE for its
    architectural accesses (as MEM_ACCESS counts them) when they go to RAM.  Per access: the
    L1D model (RAM only: Device memory does not allocate)."""
    ic = A[ICOUNT]
    if A[LAST_MEM_PC] != pc + ONE or A[LAST_MEM_IC] != ic:
        A[LAST_MEM_PC] = pc + ONE
        A[LAST_MEM_IC] = ic
        cl = _insn_class(A, pc)
        esize = A[CLS_ESIZE + cl] if cl >= 0 else U(size)
        nmem = A[CLS_NMEM + cl] if cl >= 0 else ONE
        if esize > ONE and (addr % esize) != ZERO:
            dyn_event(A, C.D_UNALIGNED, ONE, pc, ic)
        if is_ram:
            dyn_event(A, C.D_L1D_ACCESS, nmem, pc, ic)
    if not is_ram or A[L1D_ACTIVE] == ZERO:
        return
    sh = A[LINE_SHIFT]
    first = addr >> sh
    last = (addr + U(size) - ONE) >> sh
    ln = first
    while ln <= last:
        hit, wb = cache_lookup(A, True, ln, is_write)
        if not hit:
            _dside_event(A, C.D_L1D_REFILL, A[PEN_L1D], pc, ic)
        if wb:
            _dside_event(A, C.D_L1D_WB, A[PEN_WB], pc, ic)
        ln += ONE


@njit(cache=True, _nrt=False)
def _dside_event(A, d, pen, pc, ic):
    dyn_event(A, d, ONE, pc, ic)
    penalty(A, C.D_STALL_BE, pen, pc, ic)


@njit(cache=True, _nrt=False)
def cache_maintenance(A, op, addr, pc):
    """DC/IC by VA and IC IALLU seen by the SYS hook: op 1 = clean and invalidate (DC CIVAC),
    2 = invalidate (DC IVAC), 3 = clean (DC CVAC/CVAU/CVAP/CVADP), 4 = IC IVAU, 5 = IC IALLU.
    Cleaning a dirty line is a write-back."""
    ic = A[ICOUNT]
    if op >= 4:
        if A[L1I_ACTIVE] == ZERO:
            return
        if op == 5:
            for i in range(CACHE_MAX_LINES):
                A[L1I_TAG + i] = ZERO
            return
        key = (addr >> A[LINE_SHIFT]) + ONE
        ways = I(A[L1I_WAYS])
        base = I((key - ONE) % A[L1I_SETS]) * ways
        for w in range(ways):
            if A[L1I_TAG + base + w] == key:
                A[L1I_TAG + base + w] = ZERO
        return
    if A[L1D_ACTIVE] == ZERO:
        return
    key = (addr >> A[LINE_SHIFT]) + ONE
    ways = I(A[L1D_WAYS])
    base = I((key - ONE) % A[L1D_SETS]) * ways
    for w in range(ways):
        if A[L1D_TAG + base + w] == key:
            if A[L1D_DIRTY + base + w] != ZERO and op != 2:
                _dside_event(A, C.D_L1D_WB, A[PEN_WB], pc, ic)
            A[L1D_DIRTY + base + w] = ZERO
            if op != 3:
                A[L1D_TAG + base + w] = ZERO


# ---- precise mode ------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def needs_precise(A, e):
    """Could something that must happen *between* two instructions of block e happen before
    its last instruction retires?  (A watched counter overflowing, a timer deadline, the
    instruction limit.)  Then the block runs with a sync point before every instruction."""
    n = I(A[BLK_N + e])
    if A[ICOUNT] + U(n) > A[INSN_LIMIT]:
        return True
    if n <= 1 or (A[IRQ_WATCH] == ZERO and A[NEXT_DEADLINE] == M64):
        return False
    last = I(A[POOL + I(A[BLK_IOFF + e]) + n - 1])
    nmem = A[BLK_NMEM + e] * U(2)          # an access may cross a line: two refills
    pen_bound = nmem * (A[PEN_L1D] + A[PEN_WB])
    cyc = A[BLK_TOT + e * C.NS + C.S_CYC] - A[CLS_INC + last * C.NS + C.S_CYC] + pen_bound
    if A[NEXT_DEADLINE] != M64 and A[CYCLES] + A[IDLE] + cyc >= A[NEXT_DEADLINE]:
        return True
    w = A[IRQ_WATCH]
    if w == ZERO:
        return False
    el = I(A[CUR_EL])
    for c in range(32):
        if (w >> U(c)) & ONE == ZERO or (A[C_EL + c] >> U(el)) & ONE == ZERO:
            continue
        inc = ZERO
        s = A[C_S + c]
        if s != U(NOCH):
            si = I(s)
            inc = A[BLK_TOT + e * C.NS + si] - A[CLS_INC + last * C.NS + si]
        d = A[C_D + c]
        if d != U(NOCH):
            di = I(d)
            if di == C.D_L1D_REFILL or di == C.D_L1D_WB or di == C.D_UNALIGNED or di == C.D_L1D_ACCESS:
                inc += nmem
            elif di == C.D_CYC or di == C.D_STALL_BE or di == C.D_STALL:
                inc += pen_bound
            elif di == C.D_CNT_CYCLES:
                inc += cyc // A[TICK_DIV] + ONE
        if inc >= headroom(A, c):
            return True
    return False


# ---- PMU system registers ------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def access_undef(A, key, h, is_read, el):
    """Does this access UNDEF?  kvm-pmu.md 3.1 (EL0 table, checked first) and 3.2 (index)."""
    rule = A[RULE + key]
    if is_read and (rule & U(1 << 31)) != ZERO:
        return True             # read of a write-only register (regs.RULE_WO)
    if (not is_read) and (rule & U(1 << 30)) != ZERO:
        return True             # write of a read-only register (regs.RULE_RO)
    if h >= 1 and h <= 19:
        if A[PMU_PRESENT] == ZERO:
            return True         # vCPU without the PMU feature: every PMU register UNDEFs
        if h == 16 and A[PMUVER] < U(5):
            return True         # PMMIR_EL1 exists from PMUv3p4
    if el == 0:
        need = (rule >> U(15)) & U(0x7FFF) if not is_read else rule & U(0x7FFF)
        if need == U(0x7FFF):
            return True
        if need != ZERO:
            if h >= 1 and h <= 19:
                have = A[USERENR]
            else:
                have = A[CNTKCTL]
            if (have & need) == ZERO:
                return True
            # writes to counters at EL0 need EN even when ER/CR allowed the read path
    if h == 17 or h == 18 or h == 10 or h == 11:
        if h == 17 or h == 18:
            idx = I(((key >> 3) & 3) << 3 | (key & 7))
        else:
            idx = I(A[SELR] & U(31))
        if idx != 31 and idx >= I(A[NCNT]):
            return True
        if idx == 31 and (h == 17 or h == 18):
            return True         # PMEVCNTR31/PMEVTYPER31 do not exist
    return False


@njit(cache=True, _nrt=False)
def pmcr_read(A):
    # N replaced by the configured counter number; P and C read 0; IDCODE/IMP read 0 (KVM).
    return (A[PMCR] & U(0xFF & ~(PMCR_P | PMCR_C))) | (A[NCNT] << U(11))


@njit(cache=True, _nrt=False)
def pmu_read(A, h, key):
    vm = valid_mask(A)
    if h == 1:
        return pmcr_read(A)
    if h == 2 or h == 3:
        return A[CNTEN] & vm
    if h == 4 or h == 15:
        return A[OVS] & vm
    if h == 6:
        return A[SELR] & U(31)
    if h == 7:
        return A[PMCEID0]
    if h == 8:
        return A[PMCEID1]
    if h == 9:
        return A[CNT + 31]
    if h == 10:
        return A[TYPER + I(A[SELR] & U(31))]
    if h == 11:
        return A[CNT + I(A[SELR] & U(31))]
    if h == 12:
        return A[USERENR] & U(0xF)
    if h == 13 or h == 14:
        return A[INTEN] & vm
    if h == 16:
        return ZERO             # PMMIR_EL1 RAZ (KVM: no SLOTS / THWIDTH advertised)
    if h == 17:
        return A[CNT + I(((key >> 3) & 3) << 3 | (key & 7))]
    if h == 18:
        return A[TYPER + I(((key >> 3) & 3) << 3 | (key & 7))]
    if h == 19:
        return A[TYPER + 31]
    return ZERO


@njit(cache=True, _nrt=False)
def typer_mask(A):
    # P | U | evtCount (10 or 16 bits); NSK/NSU/NSH/M read 0 for an EL1 guest (kvm-pmu.md 3.6).
    return TY_P | TY_U | A[EVMASK]


@njit(cache=True, _nrt=False)
def swinc(A, v, pc):
    """PMSWINC_EL0 write (kvm-pmu.md 3.8 step 6): ignores P/U and the filter."""
    defer_irq(A)
    _swinc(A, v, pc)
    release_irq(A)


@njit(cache=True, _nrt=False)
def _swinc(A, v, pc):
    if (A[PMCR] & U(PMCR_E)) == ZERO or A[FROZEN] != ZERO:
        return
    v &= valid_mask(A) & ~U(1 << 31)
    for c in range(31):
        bit = ONE << U(c)
        if (v & bit) != ZERO and (A[CNTEN] & bit) != ZERO and (A[TYPER + c] & A[EVMASK]) == ZERO:
            if overflowing_add(A, c, ONE):
                on_overflow(A, c, pc, A[ICOUNT])


@njit(cache=True, _nrt=False)
def pmu_write(A, h, key, val, pc):
    vm = valid_mask(A)
    if h == 1:
        old_e = A[PMCR] & U(PMCR_E)
        nv = val & U(0xFF)
        nv |= U(PMCR_LC)                        # LC is RES1: AArch64-only EL0 (kvm-pmu.md 3.3)
        if A[PMUVER] < U(6):
            nv &= ~U(PMCR_LP)                   # LP is RES0 before PMUv3p5
        if (nv & U(PMCR_C)) != ZERO:
            A[CNT + 31] = ZERO                  # C: reset the cycle counter
        if (nv & U(PMCR_P)) != ZERO:
            for c in range(I(A[NCNT])):       # P: reset event counters (not PMCCNTR), 64 bits
                A[CNT + c] = ZERO
        A[PMCR] = nv & ~U(PMCR_P | PMCR_C)      # P and C are stored as 0
        reconfigure(A)
        irq_update(A)
        return
    if h == 2:
        A[CNTEN] |= val & vm
        reconfigure(A)
        return
    if h == 3:
        A[CNTEN] &= ~(val & vm)
        reconfigure(A)
        return
    if h == 4:
        A[OVS] &= ~(val & vm)
        irq_update(A)
        return
    if h == 15:
        A[OVS] |= val & vm
        irq_update(A)
        return
    if h == 5:
        swinc(A, val, pc)
        return
    if h == 6:
        A[SELR] = val                           # stored in full, reads return [4:0]
        return
    if h == 9:
        A[CNT + 31] = val
        return
    if h == 10:
        idx = I(A[SELR] & U(31))
        A[TYPER + idx] = val & typer_mask(A)    # SEL = 31 -> PMCCFILTR (same mask: KVM quirk)
        reconfigure(A)
        return
    if h == 11:
        idx = I(A[SELR] & U(31))
        A[CNT + idx] = val & A[C_WMASK + idx] if idx != 31 else val
        return
    if h == 12:
        A[USERENR] = val & U(0xF)
        return
    if h == 13:
        A[INTEN] |= val & vm
        reconfigure(A)
        irq_update(A)
        return
    if h == 14:
        A[INTEN] &= ~(val & vm)
        reconfigure(A)
        irq_update(A)
        return
    if h == 17:
        idx = I(((key >> 3) & 3) << 3 | (key & 7))
        A[CNT + idx] = val & A[C_WMASK + idx]
        return
    if h == 18:
        idx = I(((key >> 3) & 3) << 3 | (key & 7))
        A[TYPER + idx] = val & typer_mask(A)
        reconfigure(A)
        return
    if h == 19:
        A[TYPER + 31] = val & typer_mask(A)     # KVM keeps evtCount bits in PMCCFILTR
        reconfigure(A)
        return


# ---- generic timer reads (native: CNTVCT in a delay loop must be cheap) --------------------------
@njit(cache=True, _nrt=False)
def now(A):
    return A[CYCLES] + A[IDLE]


@njit(cache=True, _nrt=False)
def timer_read(A, h):
    t = now(A) // A[TICK_DIV]
    if h == 64:
        return A[CNTFRQ]
    if h == 65 or h == 66:
        return t
    if h == 67:
        return A[CNTKCTL]
    if h == 69 or h == 72:
        ctl = A[CNTP_CTL] if h == 69 else A[CNTV_CTL]
        cval = A[CNTP_CVAL] if h == 69 else A[CNTV_CVAL]
        ctl &= U(3)
        if (ctl & ONE) != ZERO and t >= cval:
            ctl |= U(4)                         # ISTATUS
        return ctl
    if h == 70:
        return A[CNTP_CVAL]
    if h == 73:
        return A[CNTV_CVAL]
    if h == 68 or h == 71:
        cval = A[CNTP_CVAL] if h == 68 else A[CNTV_CVAL]
        return (cval - t) & M32                 # TVAL: low 32 bits of CVAL - CNT (signed)
    return ZERO


# ---- ID registers ---------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def id_read(A, h, qemu_value):
    if h == 128:   # ID_AA64DFR0_EL1.PMUVer [11:8]
        pv = A[PMUVER] if A[PMU_PRESENT] != ZERO else ZERO
        return (qemu_value & ~U(0xF00)) | (pv << U(8))
    if h == 129:   # ID_DFR0_EL1.PerfMon [27:24]: the AArch32 encoding (PMUv3 = 3, then as PMUVer)
        pv = A[PMUVER] if A[PMU_PRESENT] != ZERO else ZERO
        if pv == ONE:
            pv = U(3)
        return (qemu_value & ~U(0xF000000)) | (pv << U(24))
    return qemu_value

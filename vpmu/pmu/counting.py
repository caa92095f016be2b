"""Counting: adding events to the PMU counters, overflows, the interrupt line, deferred counting.

Every function takes the arena ``A`` (``uint64[ARENA_WORDS]``, see ``layout``) and only ints;
none allocates, so all are compiled without numba's reference counting (``_nrt=False``):
with it, every call passing ``A`` costs a pair of incref/decref calls, which made the
per-block path about three times slower.  Arithmetic on register values stays in
``np.uint64``: mixing uint64 with a signed int silently gives float64 in numba.

Counting model.  Each block carries per-channel totals of its instructions' static
events.  ``commit`` adds the increments of instructions [i0, i1) of the current block
to every counter counting a static channel at the block's exception level; a fully
executed block is one add per counter.  Counters are "brought up to date before any
read, write or reconfiguration" (sync before observe): every trapped PMU access
first commits the instructions before it.  An instruction is counted after its own
effect: a write that enables counting counts itself, one that disables it does not.
Semantics follow kvm-pmu.md section 3 (KVM's view of PMUv3).
"""
from __future__ import annotations

import numpy as np


from .. import native
from .jit import kernel
from . import channels as C
from . import layout as L
from . import regs

U = np.uint64
I = np.int64         # numba: int() of a uint64 stays uint64; indices must be signed
M32 = U(0xFFFFFFFF)
M64 = U(0xFFFFFFFFFFFFFFFF)
ONE = U(1)
ZERO = U(0)

_pycall = native.pycall


@kernel
def ring_put(A, rtype, a, b, c, d, e, f=0, g=0):
    n = I(A[L.RING_N])
    if n >= L.NRING:
        _pycall(L.PC_RING_FULL, A.ctypes)
        n = I(A[L.RING_N])
        if n >= L.NRING:          # Python could not drain: drop (never happens in practice)
            return
    o = L.RING + n * L.RING_W
    A[o] = U(rtype)
    A[o + 1] = U(a)
    A[o + 2] = U(b)
    A[o + 3] = U(c)
    A[o + 4] = U(d)
    A[o + 5] = U(e)
    A[o + 6] = U(f)
    A[o + 7] = U(g)
    A[L.RING_N] = U(n + 1)


@kernel
def valid_mask(A):
    """bits [N-1:0] | bit 31: the implemented counters."""
    n = I(A[L.NCNT])
    m = (ONE << U(n)) - ONE if n > 0 else ZERO
    return m | (ONE << U(L.CCNT))


@kernel
def irq_update(A):
    """The overflow interrupt is a level: PMCR.E && (PMOVSSET & PMINTENSET) != 0
    (newest KVM: PMCNTENSET is not part of it, kvm-pmu.md 3.9).  Python is told on a change."""
    lvl = ZERO
    if A[L.PMU_PRESENT] != ZERO and (A[L.PMCR] & U(regs.PMCR_E)) != ZERO and A[L.FROZEN] == ZERO:
        if (A[L.OVS] & A[L.INTEN] & valid_mask(A)) != ZERO:
            lvl = ONE
    if lvl != A[L.IRQ_LEVEL]:
        A[L.IRQ_LEVEL] = lvl
        ring_put(A, L.RT_IRQ_LEVEL, A[L.PMU_IRQ], lvl, A[L.ICOUNT], 0, 0)
        if A[L.IRQ_DEFER] != ZERO:
            A[L.IRQ_DEFER] = U(2)             # tell Python when the retiring instruction is complete
        else:
            _pycall(L.PC_IRQ_LEVEL, A.ctypes)


@kernel
def defer_irq(A):
    """Hold the interrupt-line notification while an instruction's events are being added:
    whoever reacts to it (the GIC, a Xen sample snapshotting the PMU) must see every counter
    updated for that instruction."""
    A[L.IRQ_DEFER] = ONE


@kernel
def release_irq(A):
    pending = A[L.IRQ_DEFER] == U(2)
    A[L.IRQ_DEFER] = ZERO
    if pending:
        _pycall(L.PC_IRQ_LEVEL, A.ctypes)


@kernel
def overflowing_add(A, c, inc):
    """Add inc to counter c with its width; return True if it overflowed (kvm-pmu.md 3.8)."""
    old = A[L.CNT + c]
    new = old + inc
    if A[L.C_OVF64 + c] != ZERO:
        ovf = new < old
    else:
        ovf = ((old & M32) + inc) > M32
    A[L.CNT + c] = new & A[L.C_WMASK + c]
    return ovf


@kernel
def _mark(A, c, pc, at_icount):
    A[L.OVS] |= ONE << U(c)
    ring_put(A, L.RT_OVERFLOW, c, A[L.CNT + c], at_icount, pc, 0)


@kernel
def _chain(A, c, pc, at_icount):
    """CHAIN: an even counter's 32-bit overflow increments its odd neighbour if that counter is
    enabled and programmed with CHAIN; never with 64-bit overflow, never into 31.  Returns the
    odd counter if the increment overflowed it (marked), else -1."""
    if (c & 1) == 0 and c + 1 < L.CCNT and A[L.C_OVF64 + c] == ZERO:
        o = c + 1
        obit = ONE << U(o)
        if ((A[L.PMCR] & U(regs.PMCR_E)) != ZERO and A[L.FROZEN] == ZERO and (A[L.CNTEN] & obit & valid_mask(A)) != ZERO
                and (A[L.TYPER + o] & A[L.EVMASK]) == U(0x1E)):
            if overflowing_add(A, o, ONE):
                _mark(A, o, pc, at_icount)
                return o
    return -1


@kernel
def _pmu_ovfs(A, pc, at_icount):
    """One PMU_OVFS event (an overflow happened).  The overflows it causes set PMOVS and CHAIN
    like any other but produce no further PMU_OVFS event (no feedback loop)."""
    lst = A[L.DYN_LISTEN + C.D_PMU_OVFS]
    if lst == ZERO:
        return
    el = I(A[L.CUR_EL])
    for c in range(32):
        if (lst >> U(c)) & ONE != ZERO and (A[L.C_EL + c] >> U(el)) & ONE != ZERO:
            if overflowing_add(A, c, ONE):
                _mark(A, c, pc, at_icount)
                _chain(A, c, pc, at_icount)


@kernel
def on_overflow(A, c, pc, at_icount):
    """Counter c overflowed at pc (kvm-pmu.md 3.8): PMOVS and its record, CHAIN into the odd
    neighbour (whose own overflow is an overflow too), PMU_OVFS once per overflow."""
    _mark(A, c, pc, at_icount)
    if _chain(A, c, pc, at_icount) >= 0:
        _pmu_ovfs(A, pc, at_icount)
    _pmu_ovfs(A, pc, at_icount)
    irq_update(A)


@kernel
def dyn_event(A, d, n, pc, at_icount):
    """A dynamic event happened n times at pc (attributed to the current block's EL)."""
    lst = A[L.DYN_LISTEN + d]
    if lst == ZERO or n == ZERO:
        return
    defer_flush(A)
    el = I(A[L.CUR_EL])
    for c in range(32):
        if (lst >> U(c)) & ONE != ZERO and (A[L.C_EL + c] >> U(el)) & ONE != ZERO:
            if overflowing_add(A, c, n):
                on_overflow(A, c, pc, at_icount)


@kernel
def add_cycles(A, cyc, pc, at_icount):
    """Advance the executed-cycle count; derive CNT_CYCLES ticks."""
    t0 = A[L.CYCLES]
    A[L.CYCLES] = t0 + cyc
    if A[L.DYN_LISTEN + C.D_CNT_CYCLES] != ZERO:
        div = A[L.TICK_DIV]
        ticks = (t0 + cyc) // div - t0 // div
        dyn_event(A, C.D_CNT_CYCLES, ticks, pc, at_icount)


@kernel
def penalty(A, stall_d, pen, pc, ic):
    """`pen` extra cycles (a mispredict or refill): CPU_CYCLES, the frontend or backend stall
    channel `stall_d` and STALL count them, and time advances."""
    if pen != ZERO:
        dyn_event(A, C.D_CYC, pen, pc, ic)
        dyn_event(A, stall_d, pen, pc, ic)
        dyn_event(A, C.D_STALL, pen, pc, ic)
        add_cycles(A, pen, pc, ic)


@kernel
def now(A):
    return A[L.CYCLES] + A[L.IDLE]


@kernel
def headroom(A, c):
    """Events until counter c overflows (1 = the next event overflows it)."""
    v = A[L.CNT + c]
    if A[L.C_OVF64 + c] != ZERO:
        return (M64 - v) + ONE if v != ZERO else M64
    return (M32 - (v & M32)) + ONE


@kernel
def locate(A, c, i0, i1, needed, oi, oc):
    """(index, events so far) of the instruction in [i0, i1) of the current block at which
    counter c's static channel has produced `needed` more events (the overflowing one);
    instruction oi retires as class oc (commit_ex)."""
    s = I(A[L.C_S + c])
    e = I(A[L.CUR_ENTRY])
    off = I(A[L.BLK_IOFF + e])
    acc = ZERO
    for i in range(i0, i1):
        cl = oc if i == oi else I(A[L.POOL + off + i])
        acc += A[L.CLS_INC + cl * C.NS + s]
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
# being updated per block (hooks._leaf, hooks._fast), as the eager path does.


@kernel
def defer_flush(A):
    """Add the tallied blocks to the counters, ICOUNT and the cycle count; the budget is
    invalid afterwards (DEF_BVALID = 0) and the current block no longer counts as admitted
    deferred (CUR_FAST = 0: the block hook's leaf relies on it)."""
    A[L.DEF_BVALID] = ZERO
    A[L.CUR_FAST] = U(L.CF_NONE)
    n = I(A[L.DEF_N])
    if n == 0:
        return
    A[L.DEF_N] = ZERO
    A[L.DEF_FLUSHES] += ONE
    elbit = ONE << (A[L.DEF_EL] + U(16))
    nact = I(A[L.ACT_N])
    ic = A[L.ICOUNT]
    cyc = ZERO
    blocks = ZERO
    for i in range(n):
        e = I(A[L.DEF_LIST + i])
        k = A[L.BLK_DEF + e * L.BW]
        A[L.BLK_DEF + e * L.BW] = ZERO
        blocks += k
        ic += k * A[L.BLK_N + e * L.BW]
        cyc += k * A[L.BLK_TOT + e * C.NS + C.S_CYC]
        for j in range(nact):
            d = A[L.ACT + j]
            if (d & elbit) == ZERO:
                continue
            c = I(d & U(0xFF))
            inc = k * A[L.BLK_TOT + e * C.NS + I((d >> U(8)) & U(0xFF))]
            if inc != ZERO and overflowing_add(A, c, inc):
                A[L.DEF_MISS] += ONE          # impossible by the budget; keep the architectural effect
                on_overflow(A, c, A[L.CUR_START], ic)
    A[L.ICOUNT] = ic
    A[L.DEF_BLOCKS] += blocks
    A[L.CYCLES] += cyc                        # (no CNT_CYCLES listener: defer_ok; and no add_cycles ->
                                            # dyn_event -> defer_flush cycle numba cannot compile)


@kernel
def defer_budget(A):
    """How much deferred blocks may add to any quantity before something observable could
    happen: the smallest of every static counter's headroom - 1 at the current EL, and the
    instructions / cycles left before the limit, the next sample and the next timer deadline
    minus one (the eager path acts at the first block boundary at or after them); at most
    FAST_BOUND, which no block's bound exceeds (hooks._leaf relies on it)."""
    b = U(L.FAST_BOUND)
    elbit = ONE << (A[L.CUR_EL] + U(16))
    for j in range(I(A[L.ACT_N])):
        d = A[L.ACT + j]
        if (d & elbit) != ZERO:
            h = headroom(A, I(d & U(0xFF))) - ONE
            if h < b:
                b = h
    ic = A[L.ICOUNT]
    lim = A[L.INSN_LIMIT]
    if lim != M64:
        h = lim - ic - ONE if lim > ic else ZERO
        if h < b:
            b = h
    smp = A[L.NEXT_SAMPLE]
    if smp != M64:
        h = smp - ic - ONE if smp > ic else ZERO
        if h < b:
            b = h
    dl = A[L.NEXT_DEADLINE]
    if dl != M64:
        t = A[L.CYCLES] + A[L.IDLE]
        h = dl - t - ONE if dl > t else ZERO
        if h < b:
            b = h
    return b


@kernel
def defer_ok(A):
    """Can blocks be counted deferred with the current configuration?"""
    return (A[L.DEF_ENABLE] != ZERO and A[L.L1I_ACTIVE] == ZERO and A[L.L1D_ACTIVE] == ZERO
            and A[L.MEMHOOK_WANT] == ZERO and A[L.PEN_MISPRED] == ZERO
            and A[L.DYN_LISTEN + C.D_PCW] == ZERO and A[L.DYN_LISTEN + C.D_MISPRED] == ZERO
            and A[L.DYN_LISTEN + C.D_CNT_CYCLES] == ZERO)


@kernel
def _queue_overflow(A, nq, c, old, i0, i1, oi, oc):
    """Counter c (which held `old`) overflowed while instructions [i0, i1) retired: queue it
    with the instruction whose events reach the threshold."""
    if A[L.C_OVF64 + c] != ZERO:
        hr = (M64 - old) + ONE
    else:
        hr = (M32 - (old & M32)) + ONE
    k, acc = locate(A, c, i0, i1, hr, oi, oc)
    q = L.OVQ + 4 * nq
    A[q], A[q + 1], A[q + 2], A[q + 3] = U(k), U(c), old, acc


@kernel
def _settle_overflows(A, nq, i0, start, icount0):
    """Handle the queued overflows in instruction order (then counter order): each is
    recorded at its instruction, with the counter as it was just after that instruction, so
    PMU_OVFS and CHAIN increments happen in the order the overflows did."""
    for _ in range(nq):
        best = -1
        for j in range(nq):
            q = L.OVQ + 4 * j
            if A[q + 1] == M64:
                continue
            if best < 0 or A[q] < A[L.OVQ + 4 * best] or (A[q] == A[L.OVQ + 4 * best]
                                                        and A[q + 1] < A[L.OVQ + 4 * best + 1]):
                best = j
        q = L.OVQ + 4 * best
        k, c, old, acc = I(A[q]), I(A[q + 1]), A[q + 2], A[q + 3]
        A[q + 1] = M64
        final = A[L.CNT + c]
        A[L.CNT + c] = (old + acc) & A[L.C_WMASK + c]
        A[L.ICOUNT] = icount0 + U(k - i0 + 1)
        on_overflow(A, c, start + U(4 * k), icount0 + U(k - i0 + 1))
        A[L.CNT + c] = final


@kernel
def commit(A, i0, i1):
    """Retire instructions [i0, i1) of the current block: static channels into counters.

    The fast path (a whole block) is one add per counting counter from the block's
    precomputed totals; a partial range sums the per-instruction class increments."""
    commit_ex(A, i0, i1, -1, 0)


@kernel
def commit_ex(A, i0, i1, oi, oc):
    """commit(), with instruction oi retiring as class oc instead of its own (a failed
    store-exclusive is not a store: the class is chosen after it executed)."""
    defer_flush(A)
    outer = A[L.IRQ_DEFER] != ZERO
    if not outer:
        defer_irq(A)
    _commit_ex(A, i0, i1, oi, oc)
    if not outer:
        release_irq(A)


@kernel
def _commit_ex(A, i0, i1, oi, oc):
    if i1 <= i0:
        return
    e = I(A[L.CUR_ENTRY])
    n = I(A[L.BLK_N + e * L.BW])
    elbit = U(1) << (A[L.CUR_EL] + U(16))
    start = A[L.CUR_START]
    icount0 = A[L.ICOUNT]
    full = i0 == 0 and i1 == n and oi < 0
    off = I(A[L.BLK_IOFF + e])
    if full:
        cyc = A[L.BLK_TOT + e * C.NS + C.S_CYC]
        nins = U(n)
    else:
        cyc = ZERO
        for i in range(i0, i1):
            cl = oc if i == oi else I(A[L.POOL + off + i])
            cyc += A[L.CLS_INC + cl * C.NS + C.S_CYC]
        nins = U(i1 - i0)
    nact = I(A[L.ACT_N])
    nq = 0
    for j in range(nact):
        d = A[L.ACT + j]
        if (d & elbit) == ZERO:
            continue
        c = I(d & U(0xFF))
        s = I((d >> U(8)) & U(0xFF))
        if full:
            inc = A[L.BLK_TOT + e * C.NS + s]
        else:
            inc = ZERO
            for i in range(i0, i1):
                cl = oc if i == oi else I(A[L.POOL + off + i])
                inc += A[L.CLS_INC + cl * C.NS + s]
        if inc == ZERO:
            continue
        old = A[L.CNT + c]
        new = old + inc
        if (d >> U(24)) & ONE != ZERO:
            ovf = new < old
        else:
            ovf = ((old & M32) + inc) > M32
        A[L.CNT + c] = new & A[L.C_WMASK + c]
        if ovf:
            _queue_overflow(A, nq, c, old, i0, i1, oi, oc)
            nq += 1
    if nq:
        _settle_overflows(A, nq, i0, start, icount0)
    A[L.ICOUNT] = icount0 + nins
    add_cycles(A, cyc, start + U(4 * (i1 - 1)), icount0 + nins)
    A[L.CUR_DONE] = U(i1)

"""The branch predictor model: 2-bit counters, a last-target buffer, a return stack.

Its state is updated for every retired branch, deferred or eager, so BR_MIS_PRED counts
the same whenever a counter starts counting it.  The rules are in docs/events.md.
"""
from __future__ import annotations



from .jit import inline_kernel, kernel
from . import channels as C
from . import counting as cnt
from . import layout as L
from .counting import I, ONE, U, ZERO


@inline_kernel
def bp_cond(A, pc, taken):
    """The conditional branch at pc was taken or not: its 2-bit counter learns it (bp_update's
    return value)."""
    i = (pc >> U(2)) & U(L.BP_N - 1)
    ctr = A[U(L.BP) + i]
    r = 1 if (ctr >= U(2)) != taken else 0
    if taken:
        r |= 2
        if ctr < U(3):
            A[U(L.BP) + i] = ctr + ONE
    elif ctr > ZERO:
        A[U(L.BP) + i] = ctr - ONE
    return r


@inline_kernel
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
    if kind == L.BK_COND:
        taken = next_pc == target
        if target == pc + U(4):
            taken = outcome == U(2)         # a branch to the next instruction: the condition decides
        r = bp_cond(A, pc, taken)
    elif kind == L.BK_BR or kind == L.BK_BLR:
        i = I((pc >> U(2)) & U(L.BTB_N - 1))
        if not (A[L.BTB_TAG + i] == pc + ONE and A[L.BTB_TGT + i] == next_pc):
            r = 1
        A[L.BTB_TAG + i] = pc + ONE
        A[L.BTB_TGT + i] = next_pc
    elif kind == L.BK_RET:
        cnt = I(A[L.RAS_CNT])
        if cnt > 0:                 # pop the most recent return address
            top = I(A[L.RAS_TOP])
            if A[L.RAS + top] != next_pc:
                r = 1
            A[L.RAS_TOP] = U((top + L.RAS_N - 1) % L.RAS_N)
            A[L.RAS_CNT] = U(cnt - 1)
        else:
            r = 1                   # empty return stack: not predicted
    if kind == L.BK_BL or kind == L.BK_BLR:
        top = (I(A[L.RAS_TOP]) + 1) % L.RAS_N   # circular: a 17th push overwrites the oldest entry
        A[L.RAS + top] = pc + U(4)
        A[L.RAS_TOP] = U(top)
        A[L.RAS_CNT] = U(min(I(A[L.RAS_CNT]) + 1, L.RAS_N))
    return r


@kernel
def resolve_branch(A, next_pc):
    """The successor of the last retired branch is known: taken/not-taken, predictor, and
    the events (PC_WRITE_RETIRED's conditional part, BR_MIS_PRED, mispredict cycles)."""
    if A[L.PB_VALID] == ZERO:
        return
    A[L.PB_VALID] = ZERO
    pc = A[L.PB_PC]
    ic = A[L.ICOUNT]
    r = bp_update(A, I(A[L.PB_KIND]), pc, A[L.PB_TARGET], next_pc, A[L.PB_OUTCOME])
    A[L.PB_OUTCOME] = ZERO
    if r == 0:
        return
    saved_el = A[L.CUR_EL]
    A[L.CUR_EL] = A[L.PB_EL]
    if r & 2:
        cnt.dyn_event(A, C.D_PCW, ONE, pc, ic)
    if r & 1:
        cnt.dyn_event(A, C.D_MISPRED, ONE, pc, ic)
        cnt.penalty(A, C.D_STALL_FE, A[L.PEN_MISPRED], pc, ic)
    A[L.CUR_EL] = saved_el

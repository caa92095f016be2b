"""Retiring the current block: whole, up to an instruction (sync before observe), at an
exception; and deciding when a block needs per-instruction sync points (precise mode).
"""
from __future__ import annotations



from .jit import kernel
from . import channels as C
from . import counting as cnt
from . import layout as L
from . import predictor as bp
from .counting import I, ONE, U, ZERO


@kernel
def finish_block(A, next_pc):
    """Retire the rest of the current block; its final branch resolves against next_pc."""
    cnt.defer_irq(A)
    _finish_block(A, next_pc)
    cnt.release_irq(A)


@kernel
def _finish_block(A, next_pc):
    if A[L.CUR_VALID] != ZERO:
        e = I(A[L.CUR_ENTRY])
        n = I(A[L.BLK_N + e * L.BW])
        cnt.commit(A, I(A[L.CUR_DONE]), n)
        bk = A[L.BLK_BK + e * L.BW]
        A[L.CUR_VALID] = ZERO
        if bk == U(L.BK_ERET):
            A[L.EL_STALE] = ONE               # ERET changed the exception level: re-read PSTATE
        elif bk != U(L.BK_NONE):
            A[L.PB_VALID] = ONE
            A[L.PB_KIND] = bk
            A[L.PB_PC] = A[L.CUR_START] + U(4 * (n - 1))
            A[L.PB_TARGET] = A[L.BLK_TGT + e * L.BW]
            A[L.PB_EL] = A[L.CUR_EL]
    bp.resolve_branch(A, next_pc)


@kernel
def end_block_at(A, pc, retired):
    """A synchronous exception at pc: instructions before it retire, and pc itself if
    `retired` (SVC/HVC/SMC and handled semihosting calls complete; aborts/UNDEF/BRK do not).
    If pc is not inside the current block, the block completed and pc is its successor."""
    if A[L.CUR_VALID] != ZERO:
        start = A[L.CUR_START]
        if pc >= start and pc < start + A[L.CUR_SIZE]:
            idx = I((pc - start) >> U(2))
            cnt.commit(A, I(A[L.CUR_DONE]), idx + (1 if retired else 0))
            A[L.CUR_VALID] = ZERO
            return
    finish_block(A, pc)


@kernel
def sync_to(A, pc):
    """Commit the current block's instructions before pc (pc inside the block)."""
    cnt.defer_flush(A)
    if A[L.CUR_VALID] == ZERO:
        return
    start = A[L.CUR_START]
    if pc < start or pc >= start + A[L.CUR_SIZE]:
        return
    idx = I((pc - start) >> U(2))
    done = I(A[L.CUR_DONE])
    if idx > done:
        cnt.commit(A, done, idx)


@kernel
def needs_precise(A, e):
    """Could something that must happen *between* two instructions of block e happen before
    its last instruction retires?  (A watched counter overflowing, a timer deadline, the
    instruction limit.)  Then the block runs with a sync point before every instruction."""
    n = I(A[L.BLK_N + e * L.BW])
    if A[L.ICOUNT] + U(n) > A[L.INSN_LIMIT]:
        return True
    if n <= 1 or (A[L.IRQ_WATCH] == ZERO and A[L.NEXT_DEADLINE] == cnt.M64):
        return False
    last = I(A[L.POOL + I(A[L.BLK_IOFF + e]) + n - 1])
    nmem = A[L.BLK_NMEM + e] * U(2)          # an access may cross a line: two refills
    pen_bound = nmem * (A[L.PEN_L1D] + A[L.PEN_WB])
    cyc = A[L.BLK_TOT + e * C.NS + C.S_CYC] - A[L.CLS_INC + last * C.NS + C.S_CYC] + pen_bound
    if A[L.NEXT_DEADLINE] != cnt.M64 and A[L.CYCLES] + A[L.IDLE] + cyc >= A[L.NEXT_DEADLINE]:
        return True
    w = A[L.IRQ_WATCH]
    if w == ZERO:
        return False
    el = I(A[L.CUR_EL])
    for c in range(32):
        if (w >> U(c)) & ONE == ZERO or (A[L.C_EL + c] >> U(el)) & ONE == ZERO:
            continue
        inc = ZERO
        s = A[L.C_S + c]
        if s != U(L.NOCH):
            si = I(s)
            inc = A[L.BLK_TOT + e * C.NS + si] - A[L.CLS_INC + last * C.NS + si]
        d = A[L.C_D + c]
        if d != U(L.NOCH):
            di = I(d)
            if di == C.D_L1D_REFILL or di == C.D_L1D_WB or di == C.D_UNALIGNED or di == C.D_L1D_ACCESS:
                inc += nmem
            elif di == C.D_CYC or di == C.D_STALL_BE or di == C.D_STALL:
                inc += pen_bound
            elif di == C.D_CNT_CYCLES:
                inc += cyc // A[L.TICK_DIV] + ONE
        if inc >= cnt.headroom(A, c):
            return True
    return False

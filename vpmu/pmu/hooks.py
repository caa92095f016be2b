"""The native Unicorn hooks: numba ``@cfunc`` callbacks over the arena.

- ``block_hook`` (every translated block, at its start): retires the previous block,
  resolves its final branch, finds the new block in the code cache (classifying it natively
  the first time, ``codecache``), delivers a pending interrupt, and decides whether the
  block must run in *precise* mode (a sync point before every instruction).
- ``code_hook`` (only on claimed system-register sites, after store-exclusives and on
  precise blocks): commits the instructions before the current one, takes a due interrupt
  or timer event at this exact boundary, and raises UNDEF for a disallowed register access
  before it executes.
- ``mrs_hook`` / ``msr_hook`` (UC_HOOK_INSN): perform a claimed register access.  PMU,
  timer reads and ID registers are native; the GIC CPU interface and timer writes go to
  Python through ``vpmu_pycall``.  Writes of the translation registers reach the code cache.
- ``sys_hook`` (SYS): TLB maintenance for the code cache, cache maintenance for the models,
  DC ZVA against armed watchpoints.
- ``edge_hook`` (UC_HOOK_EDGE_GENERATED, once per new translation): the code cache checks the
  block's words again.
- ``mem_hook`` (only while a counter needs data addresses): cache model, unaligned.
- ``watch_hook`` (only on the physical ranges behind armed watchpoints, ``vpmu.board.debug``):
  Python judges the access; a Watchpoint exception is raised before the access is performed.

Python runs only for rare events.  Hooks never raise; what a guest does wrong becomes
an architectural outcome decided by the kernels.

Restarting a block: writing PC from a block or code hook makes Unicorn leave the block
at its next exit check, before any instruction of the block runs (unicorn 2.1.4
``uc_reg_write`` sets ``skip_sync_pc_on_exit``; the check follows the block and code
hooks).  ``stop_at`` uses that to hand control to the Python main loop at an exact PC.
"""
from __future__ import annotations

import numpy as np
from numba import carray, cfunc, types
from unicorn import arm64_const as R

from .. import arch as X
from .. import native
from .jit import inline_kernel, kernel, nrt_kernel
from . import blocks as blk
from . import channels as C
from . import caches
from . import codecache as cc
from . import counting as cnt
from . import layout as L
from . import predictor as bp
from . import registers as rg
from . import regs
from .counting import I, ONE, U, ZERO

_reg_read = native.uc_reg_read
_reg_write = native.uc_reg_write
_emu_stop = native.uc_emu_stop
_pycall = native.pycall

REG_PC = R.UC_ARM64_REG_PC
REG_PSTATE = R.UC_ARM64_REG_PSTATE
REG_XZR = R.UC_ARM64_REG_XZR
PSTATE_I = U(1 << 7)
PSTATE_EL_SHIFT = U(2)
# UC_HOOK_INSN's uc_arm64_cp_reg: crn, crm, op0, op1, op2 (uint32 each), then val (uint64)
CP_CRN, CP_CRM, CP_OP0, CP_OP1, CP_OP2, CP_VAL_LO, CP_VAL_HI = 0, 1, 2, 3, 4, 6, 7
CRN_CACHE, CRN_TLBI = 7, 8                # SYS: DC/IC (CRn 7), TLBI (CRn 8)
COND_NOT_TAKEN, COND_TAKEN = 1, 2         # PB_OUTCOME of a conditional branch to the next insn


@kernel
def _read_reg(uc, A, reg):
    A[L.SCRATCH] = ZERO
    _reg_read(uc, reg, A[L.SCRATCH:].ctypes)
    return A[L.SCRATCH]


@kernel
def _write_reg(uc, A, reg, val):
    A[L.SCRATCH + 1] = val
    _reg_write(uc, reg, A[L.SCRATCH + 1:].ctypes)


@kernel
def stop_at(uc, A, pc, reason, arg):
    """Hand control to the Python main loop, resuming later at pc."""
    A[L.STOP_REASON] = U(reason)
    A[L.STOP_ARG] = U(arg)
    _write_reg(uc, A, REG_PC, pc)
    _emu_stop(uc)


@kernel
def irq_deliverable(uc, A):
    if A[L.IRQ_CAND] == ZERO:
        return False
    return (_read_reg(uc, A, REG_PSTATE) & PSTATE_I) == ZERO


@kernel
def _xreg(rs):
    """Unicorn's register id of Xrs (X0..X28 are consecutive, X29/X30 are not)."""
    if rs <= 28:
        return R.UC_ARM64_REG_X0 + rs
    return R.UC_ARM64_REG_X29 if rs == 29 else R.UC_ARM64_REG_X30


@kernel
def _exclusive_outcome(uc, A, v):
    """The store-exclusive of check word v (codecache.XCHK_*) in the current block executed: if
    its status register says it failed, it retires as the "failed" class (no store, no data
    access) instead of its own class."""
    if A[L.CUR_VALID] == ZERO:
        return
    idx = I((v >> U(cc.XCHK_IDX)) & U(0x3FF))
    if idx < I(A[L.CUR_DONE]):
        return
    rs = I((v >> U(cc.XCHK_RS)) & U(31))
    if rs == 31:
        return                          # status discarded: counted as a successful store
    status = _read_reg(uc, A, _xreg(rs)) & U(0xFFFFFFFF)
    if status != ZERO:
        cnt.commit_ex(A, I(A[L.CUR_DONE]), idx + 1, idx, I((v >> U(cc.XCHK_FAIL)) & U(0xFFF)))


@kernel
def _cond_holds(uc, A, word):
    """Did the conditional branch `word` (the last instruction, just executed) see its
    condition hold?  Its inputs are still intact at the next block boundary."""
    if (word & U(0xFF000010)) == U(0x54000000):               # B.cond
        nzcv = _read_reg(uc, A, R.UC_ARM64_REG_NZCV) >> U(28)
        n, z, c, v = (nzcv >> U(3)) & ONE, (nzcv >> U(2)) & ONE, (nzcv >> U(1)) & ONE, nzcv & ONE
        cond = I(word & U(0xF))
        base = cond >> 1
        if base == 0:
            r = z == ONE
        elif base == 1:
            r = c == ONE
        elif base == 2:
            r = n == ONE
        elif base == 3:
            r = v == ONE
        elif base == 4:
            r = c == ONE and z == ZERO
        elif base == 5:
            r = n == v
        elif base == 6:
            r = n == v and z == ZERO
        else:
            r = True
        if (cond & 1) == 1 and cond != 15:
            r = not r
        return r
    rt = I(word & U(31))
    val = ZERO if rt == 31 else _read_reg(uc, A, _xreg(rt))
    if (word & U(0x7E000000)) == U(0x34000000):               # CBZ / CBNZ
        if (word >> U(31)) == ZERO:
            val &= U(0xFFFFFFFF)
        return (val == ZERO) != ((word >> U(24)) & ONE == ONE)
    bit = ((word >> U(31)) << U(5)) | ((word >> U(19)) & U(31))  # TBZ / TBNZ
    return ((val >> bit) & ONE == ZERO) != ((word >> U(24)) & ONE == ONE)


@kernel
def _defer_tally(A, e):
    """Block e completed: one more execution in the tally (kernels.defer_flush adds them)."""
    k = A[L.BLK_DEF + e * L.BW]
    if k != ZERO:
        A[L.BLK_DEF + e * L.BW] = k + ONE
        return
    n = I(A[L.DEF_N])
    if n == 0:
        A[L.DEF_EL] = A[L.CUR_EL]
    elif n == L.NDEF:
        cnt.defer_flush(A)
        A[L.DEF_BVALID] = ONE               # the remaining budget stays a valid bound
        A[L.DEF_EL] = A[L.CUR_EL]
        n = 0
    A[L.DEF_LIST + n] = U(e)
    A[L.BLK_DEF + e * L.BW] = ONE
    A[L.DEF_N] = U(n + 1)


@inline_kernel
def _leaf(A, addr, size):
    """The common deferred block boundary, with no call: the block that just completed was
    admitted deferred and is already in the tally (CUR_FAST = CF_LEAF), nothing waits at this
    boundary, the block at addr is the same block again (a loop: everything it needs was kept
    in CUR_* when it was admitted) or the successor the completed block had last time, and its
    bound fits in the budget.  Then it tallies the completed block, lets the predictor learn
    its branch and starts the new block deferred, exactly as _fast would; otherwise it changes
    nothing and returns False.

    CUR_FAST is the one test of the previous block's state: it is set only when a block is
    started deferred (CUR_VALID = 1, CUR_DONE = 0, CUR_PRECISE = 0, DEF_OK, a valid budget)
    and cleared by every flush, which precedes every commit (CUR_DONE), every reconfiguration
    (DEF_OK), every end of a block other than at its boundary (CUR_VALID = 0), every
    invalidation of the budget, every reclassification of a block (its slot's record) and every
    change of a block's precise mode.  Those four words stay as they are: the new block is
    started deferred too.  A tally stays non-zero until a flush, so CF_LEAF also says the
    completed block is in DEF_LIST.  Indices are unsigned (numba adds a negative-index check to
    every signed one)."""
    if A[L.CUR_FAST] != U(L.CF_LEAF) or (A[L.EL_STALE] | A[L.IRQ_CAND] | A[L.EXIT_PENDING]) != ZERO:
        return False
    e_prev = A[L.CUR_ENTRY]
    start = A[L.CUR_START]
    csize = A[L.CUR_SIZE]
    budget = A[L.DEF_BUDGET]
    epoch = A[L.XLAT_EPOCH]
    rec = U(L.BLK) + e_prev * U(L.BW)
    if addr == start and U(size) == csize and A[L.CUR_EPOCH] == epoch:
        # the same block again (its slot, record and bound cannot have changed without a flush)
        bound = A[L.CUR_BOUND]
        if bound > budget:
            return False
        A[L.DEF_BUDGET] = budget - bound
        A[rec + U(L.DEF_FIELD)] += ONE
        _leaf_branch(A, rec, start + csize - U(4), addr)
        return True
    succ = A[rec + U(L.SUCC_FIELD)]
    if succ == ZERO:
        return False
    e = succ - ONE
    rec_e = U(L.BLK) + e * U(L.BW)
    if (A[rec_e + U(L.KEY_FIELD)] != addr + ONE or A[rec_e + U(L.N_FIELD)] != U(size) >> U(2)
            or A[rec_e + U(L.EPOCH_FIELD)] != epoch):
        return False
    # a valid budget is at most FAST_BOUND (counting.defer_budget), so a precise block's bound
    # with its FAST_PRECISE bit never fits: one test for both
    f = A[rec_e + U(L.FAST_FIELD)]
    bound = f & U(L.FAST_PRECISE | L.FAST_BOUND)
    if bound > budget:
        return False
    A[L.DEF_BUDGET] = budget - bound
    A[rec + U(L.DEF_FIELD)] += ONE
    _leaf_branch(A, rec, start + csize - U(4), addr)
    A[L.CUR_START] = addr
    A[L.CUR_SIZE] = U(size)
    A[L.CUR_ENTRY] = e
    A[L.CUR_BOUND] = bound
    A[L.CUR_EPOCH] = epoch
    A[L.CUR_FAST] = _cur_fast(A, e, f)
    return True


@inline_kernel
def _leaf_branch(A, rec, pc, next_pc):
    """The predictor learns the last instruction (at pc) of the completed block (record rec),
    which went to next_pc: bp_update, with the common conditional branch inline (its target is
    never the next instruction here: such a block ends oddly, FAST_ODD_END)."""
    bk = A[rec + U(L.BK_FIELD)]
    if bk == U(L.BK_COND):
        bp.bp_cond(A, pc, next_pc == A[rec + U(L.TGT_FIELD)])
    elif bk != U(L.BK_NONE):
        bp.bp_update(A, I(bk), pc, A[rec + U(L.TGT_FIELD)], next_pc, ZERO)


@inline_kernel
def _cur_fast(A, e, f):
    """CUR_FAST of block e (FAST word f) started deferred: CF_LEAF if the leaf may take its end."""
    if (f & U(L.FAST_ODD_END)) == ZERO and A[U(L.BLK_DEF) + e * U(L.BW)] != ZERO:
        return U(L.CF_LEAF)
    return U(L.CF_DEFER)


@inline_kernel
def _fast(uc, addr, size, A):
    """The deferred block boundary (kernels.defer_flush explains the scheme) when _leaf could
    not take it.  Returns False (nothing tallied) when the eager path must handle this
    boundary."""
    if A[L.CUR_VALID] == ZERO or A[L.CUR_FAST] == ZERO or A[L.CUR_DONE] != ZERO or A[L.DEF_BVALID] == ZERO:
        return _fast_slow(uc, addr, size, A)
    e_prev = I(A[L.CUR_ENTRY])
    if (A[L.BLK_FAST + e_prev * L.BW] & U(L.FAST_ODD_END)) != ZERO:
        cnt.defer_flush(A)
        return False
    # the previous block completed: tally it (its bound was spent when it was admitted) and
    # let the predictor learn its branch, as on the eager path (no event can be counted)
    _defer_tally(A, e_prev)
    rec = L.BLK + e_prev * L.BW
    bk = I(A[rec + L.BK_FIELD])
    if bk != L.BK_NONE:
        bp.bp_update(A, bk, A[L.CUR_START] + U(4) * (A[rec + L.N_FIELD] - ONE), A[rec + L.TGT_FIELD], addr, ZERO)
    A[L.CUR_VALID] = ZERO
    return _admit(uc, addr, size, A, e_prev)


@inline_kernel
def _successor(A, addr, size, e_prev):
    """The slot of the block at addr: the one that followed e_prev last time if it is still
    that block (no hash probe), else looked up and remembered as e_prev's successor."""
    if e_prev >= 0:
        s = I(A[L.BLK_SUCC + e_prev * L.BW]) - 1
        if s >= 0 and A[L.BLK_KEY + s * L.BW] == addr + ONE and A[L.BLK_N + s * L.BW] == U(size) >> U(2):
            return s
    e = cc.blk_lookup(A, addr, size)
    if e >= 0 and e_prev >= 0:
        A[L.BLK_SUCC + e_prev * L.BW] = U(e + 1)
    return e


@inline_kernel
def _admit(uc, addr, size, A, e_prev):
    """Start the block at addr deferred if it is known, nothing waits at this boundary and its
    bound fits in the budget.  e_prev: the block that just completed (-1: not known)."""
    if (A[L.EL_STALE] | A[L.IRQ_CAND] | A[L.EXIT_PENDING]) != ZERO:
        cnt.defer_flush(A)
        return False
    e = _successor(A, addr, size, e_prev)
    if e < 0 or A[L.BLK_EPOCH + e * L.BW] != A[L.XLAT_EPOCH]:
        cnt.defer_flush(A)
        return False
    f = A[L.BLK_FAST + e * L.BW]
    if (f & U(L.FAST_PRECISE)) != ZERO or A[L.DEF_BVALID] == ZERO or (f & U(L.FAST_BOUND)) > A[L.DEF_BUDGET]:
        return _admit_slow(uc, addr, size, A, e)
    _start_deferred(A, addr, size, e, f & U(L.FAST_BOUND))
    return True


@inline_kernel
def _start_deferred(A, addr, size, e, bound):
    A[L.DEF_BUDGET] -= bound
    _start_block(A, addr, size, e, False, True)
    A[L.CUR_FAST] = _cur_fast(A, U(e), A[L.BLK_FAST + e * L.BW])
    A[L.CUR_BOUND] = bound
    A[L.CUR_EPOCH] = A[L.XLAT_EPOCH]


@inline_kernel
def _start_block(A, addr, size, e, precise, deferred):
    """The block at addr (slot e) starts executing."""
    A[L.CUR_VALID] = ONE
    A[L.CUR_START] = addr
    A[L.CUR_SIZE] = U(size)
    A[L.CUR_DONE] = ZERO
    A[L.CUR_ENTRY] = U(e)
    A[L.CUR_PRECISE] = ONE if precise else ZERO
    A[L.CUR_FAST] = U(L.CF_DEFER) if deferred else U(L.CF_NONE)


@kernel
def _admit_slow(uc, addr, size, A, e):
    f = A[L.BLK_FAST + e * L.BW]
    if (f & U(L.FAST_PRECISE)) == ZERO and A[L.DEF_BVALID] == ZERO:
        cnt.defer_flush(A)                  # (nothing is tallied while the budget is invalid)
        A[L.DEF_BUDGET] = cnt.defer_budget(A)
        A[L.DEF_BVALID] = ONE
        if (f & U(L.FAST_BOUND)) <= A[L.DEF_BUDGET]:
            _start_deferred(A, addr, size, e, f & U(L.FAST_BOUND))
            return True
    cnt.defer_flush(A)
    return False


@kernel
def _fast_slow(uc, addr, size, A):
    """_fast when the previous block was not admitted deferred, was partly committed, or the
    budget was reset while it ran (a flush for Python or a system-register access)."""
    e_prev = -1
    if A[L.CUR_VALID] != ZERO:
        e_prev = I(A[L.CUR_ENTRY])
        if A[L.CUR_DONE] != ZERO or (A[L.BLK_FAST + e_prev * L.BW] & U(L.FAST_ODD_END)) != ZERO:
            cnt.defer_flush(A)
            return False                  # the eager path retires it (exclusive outcome, ...)
        blk.finish_block(A, addr)           # retire it now: commit and resolve its branch
        A[L.CUR_VALID] = ZERO
    else:
        bp.resolve_branch(A, addr)
    return _admit(uc, addr, size, A, e_prev)


@kernel
def _block(uc, addr, size, A):
    # 1. the previous block retired completely; its branch resolves against addr
    e_prev = I(A[L.CUR_ENTRY]) if A[L.CUR_VALID] != ZERO else -1
    if A[L.CUR_VALID] != ZERO:
        e_prev = I(A[L.CUR_ENTRY])
        if A[L.BLK_EXCL + e_prev] != ZERO:      # a store-exclusive judged at the block's end
            _exclusive_outcome(uc, A, A[L.BLK_EXCL + e_prev])
        rec = L.BLK + e_prev * L.BW
        if A[rec + L.BK_FIELD] == U(L.BK_COND) and A[rec + L.TGT_FIELD] == A[L.CUR_START] + A[L.CUR_SIZE]:
            A[L.PB_OUTCOME] = U(COND_TAKEN) if _cond_holds(uc, A, A[L.BLK_WORD + e_prev]) else U(COND_NOT_TAKEN)
        blk.finish_block(A, addr)
    else:
        bp.resolve_branch(A, addr)
    # The EL changes only by exception entry (the board sets EL_NOW) and ERET (which ends its
    # block and marks the EL stale), so PSTATE is read only after an ERET.
    if A[L.EL_STALE] != ZERO:
        A[L.EL_NOW] = (_read_reg(uc, A, REG_PSTATE) >> PSTATE_EL_SHIFT) & U(3)
        A[L.EL_STALE] = ZERO
        if A[L.WATCH_ON] != ZERO:
            # the exception return may make a new mapping of a watched address current
            # (a page mapped by the handler): the board re-places the watch hooks first
            stop_at(uc, A, addr, L.SR_DEBUG, 0)
            return
    A[L.CUR_EL] = A[L.EL_NOW]
    if size == 0:
        # a translation without instructions: QEMU's software step in the active-pending
        # state raises the step exception before the first instruction (translate-a64.c
        # aarch64_tr_translate_insn); nothing starts, the board takes the exception
        return
    # 2. find the block in the code cache (classified natively the first time, its words
    #    checked again after TLB maintenance or a new translation)
    e = cc.ensure(uc, A, addr, size)
    if e < 0:
        stop_at(uc, A, addr, L.SR_UNCLASSIFIABLE, size)
        return
    if e_prev >= 0:
        A[L.BLK_SUCC + e_prev * L.BW] = U(e + 1)
    if A[L.NEW_N] != ZERO:                # new sites: their code hooks must exist before translation
        stop_at(uc, A, addr, L.SR_HOOKS, e)
        return
    # 3. an interrupt, the instruction limit, a timer event at this boundary
    if A[L.ICOUNT] >= A[L.INSN_LIMIT]:
        stop_at(uc, A, addr, L.SR_LIMIT, 0)
        return
    if A[L.NEXT_DEADLINE] != cnt.M64 and cnt.now(A) >= A[L.NEXT_DEADLINE]:
        _pycall(L.PC_TIMER, A.ctypes)
    if A[L.ICOUNT] >= A[L.NEXT_SAMPLE]:
        _pycall(L.PC_SAMPLE, A.ctypes)     # --trace-sample: all counters at this boundary
    if irq_deliverable(uc, A):
        A[L.PY_ARG] = addr
        _pycall(L.PC_IRQ, A.ctypes)        # Python takes the IRQ exception (writes PC)
        return
    if A[L.EXIT_PENDING] != ZERO:
        return
    # 4. precise mode when something must happen between two of its instructions
    need = blk.needs_precise(A, e)
    flags = A[L.BLK_FLAGS + e]
    if need and (flags & U(L.BF_PRECISE)) == ZERO:
        stop_at(uc, A, addr, L.SR_PRECISE_ON, e)
        return
    if (not need) and (flags & U(L.BF_PRECISE)) != ZERO:
        stop_at(uc, A, addr, L.SR_PRECISE_OFF, e)
        return
    # 5. the block starts
    _start_block(A, addr, size, e, need, False)
    caches.icache_fetch(A, addr, U(size), addr)
    if A[L.IRQ_CAND] != ZERO and irq_deliverable(uc, A):   # e.g. an I-cache refill overflowed a counter
        A[L.CUR_VALID] = ZERO
        A[L.PY_ARG] = addr
        _pycall(L.PC_IRQ, A.ctypes)


@cfunc(native.HOOK_BLOCK_SIG, cache=True)
def boundary_hook(uc, addr, size, user):
    """A block boundary _leaf did not take: deferred if possible, else eager."""
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    if A[L.DEF_OK] != ZERO and _fast(uc, addr, size, A):
        return
    _block(uc, addr, size, A)


# block_hook calls boundary_hook as a C function (linked by name, as vpmu_pycall, so the cached
# block_hook finds it): a numba call would make every block pay for numba's calling convention
# (an exception-info slot initialised at entry, which also keeps the leaf from running without
# a stack frame and saved registers)
native.link_cfunc("vpmu_block_boundary", boundary_hook)
_boundary = types.ExternalFunction("vpmu_block_boundary", native.HOOK_BLOCK_SIG)


@cfunc(native.HOOK_BLOCK_SIG, cache=True)
def block_hook(uc, addr, size, user):
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    if not _leaf(A, addr, size):
        _boundary(uc, addr, size, user)


@kernel
def _code(uc, addr, A):
    xchk = cc.xchk_at(A, addr)
    if xchk != ZERO:
        _exclusive_outcome(uc, A, xchk)
    blk.sync_to(A, addr)
    if A[L.CUR_PRECISE] != ZERO and A[L.CUR_VALID] != ZERO:
        if A[L.ICOUNT] >= A[L.INSN_LIMIT]:
            A[L.CUR_VALID] = ZERO
            stop_at(uc, A, addr, L.SR_LIMIT, 0)
            return
        if A[L.NEXT_DEADLINE] != cnt.M64 and cnt.now(A) >= A[L.NEXT_DEADLINE]:
            _pycall(L.PC_TIMER, A.ctypes)
        if irq_deliverable(uc, A):
            A[L.CUR_VALID] = ZERO          # the rest of the block does not run now
            A[L.PY_ARG] = addr
            _pycall(L.PC_IRQ, A.ctypes)
            return


@cfunc(native.HOOK_CODE_SIG, cache=True)
def code_hook(uc, addr, size, user):
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    _code(uc, addr, A)


@kernel
def _gpr_number(reg):
    """Rt of a system-register access from Unicorn's register id (XZR = 31)."""
    if reg == REG_XZR:
        return 31
    if reg == R.UC_ARM64_REG_X29:
        return 29
    if reg == R.UC_ARM64_REG_X30:
        return 30
    return reg - R.UC_ARM64_REG_X0


@kernel
def _raise_undef(A, key, h, is_read, el, reg):
    """Take the exception for a refused access right at the instruction (QEMU raises it from
    inside the hook and longjmps out of the translated block; the PC is already the access's).
    An EL0 generic-timer access refused by CNTKCTL_EL1 traps with EC 0x18 and the access in the
    ISS (Arm ARM D17.2.37); every other refusal is UNDEFINED (EC 0x00), as KVM injects it."""
    syndrome = X.ESR_UNKNOWN                                # EC 0x00, unknown reason
    if el == 0 and h >= regs.H_TIMER_FIRST and h <= regs.H_TIMER_LAST:
        rule = A[L.RULE + key]
        need = rule & U(rg.EL0_NEED) if is_read else (rule >> U(15)) & U(rg.EL0_NEED)
        if need != ZERO and need != U(regs.NEVER):
            syndrome = (X.EC_SYSREG << X.EC_SHIFT) | X.IL | ((key >> 14) & 3) << 20 | (key & 7) << 17 \
                | ((key >> 11) & 7) << 14 | ((key >> 7) & 15) << 10 | _gpr_number(reg) << 5 \
                | ((key >> 3) & 15) << 1 | (1 if is_read else 0)
    native.exception_with_syndrome(native.as_ptr(A[L.ENV_ADDR]), X.EXCP_UDEF, syndrome, 1)


@kernel
def _watch_xlat_changed(uc, A):
    """A write that may change translations retires (it ends its block): with watchpoints
    armed the board re-places its hooks before the next instruction."""
    if A[L.WATCH_ON] != ZERO and A[L.STOP_REASON] == U(L.SR_NONE):
        A[L.STOP_REASON] = U(L.SR_DEBUG)
        _emu_stop(uc)


@kernel
def _watch_ask(A, access, addr, size):
    """Python judges a data access against the watchpoints (PC_WATCH); a match raises the
    Watchpoint exception here, before the access is performed: QEMU's helper longjmps out of
    the translated block with the PC of the accessing instruction (synchronised before any
    memory hook and before the SYS hook), so it does not retire and memory is unchanged.  The
    fault address goes where QEMU's exception entry takes FAR_EL1 from."""
    A[L.PY_ARG] = U(access)
    A[L.PY_ARG + 1] = addr
    A[L.PY_ARG + 2] = U(size)
    A[L.PY_ARG + 4] = ZERO
    _pycall(L.PC_WATCH, A.ctypes)
    syndrome = A[L.PY_ARG + 4]
    if syndrome != ZERO:
        native.poke64(A[L.VADDR_ADDR], A[L.PY_ARG + 5])
        native.exception_with_syndrome(native.as_ptr(A[L.ENV_ADDR]), X.EXCP_DATA_ABORT, syndrome, 1)


@cfunc(native.HOOK_MEM_SIG, cache=True)
def watch_hook(uc, access, addr, size, value, user):
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    _watch_ask(A, access, addr, size)
    return True


@nrt_kernel                 # carray() of Unicorn's register struct needs NRT
def _sysreg(uc, reg, cp, A, is_read):
    c = carray(cp, 8, dtype=np.uint32)
    key = (I(c[CP_OP0]) << 14) | (I(c[CP_OP1]) << 11) | (I(c[CP_CRN]) << 7) | (I(c[CP_CRM]) << 3) | I(c[CP_OP2])
    h = I(A[L.HANDLER + key])
    if h == regs.H_NONE:
        return 0                          # not ours
    if h >= regs.H_OBS_MMU:               # observed only: QEMU performs the access
        if h == regs.H_OBS_MMU and not is_read:
            cc.bump_epoch(A)              # SCTLR/TTBR/TCR: a VA may now translate elsewhere
            _watch_xlat_changed(uc, A)
        return 0
    pc = _read_reg(uc, A, REG_PC)
    blk.sync_to(A, pc)
    el = I(A[L.CUR_EL])
    val = U(c[CP_VAL_LO]) | (U(c[CP_VAL_HI]) << U(32))
    if rg.access_undef(A, key, h, is_read, el):
        _raise_undef(A, key, h, is_read, el, reg)   # does not return: the access does not retire
        return 1
    if h <= regs.H_PMU_LAST:
        if is_read:
            val = rg.pmu_read(A, h, U(key))
        else:
            # what the write causes (a PMSWINC overflow, an interrupt-line edge) happens when
            # the MSR retires: its records carry the icount including the MSR itself
            A[L.ICOUNT] += ONE
            rg.pmu_write(A, h, U(key), val, pc)
            A[L.ICOUNT] -= ONE
            if A[L.MEMHOOK_WANT] != A[L.MEMHOOK_ON]:
                # the data-side memory hooks must be (un)installed before the next access:
                # an MSR ends its block, so stopping here resumes right after it
                A[L.STOP_REASON] = U(L.SR_MEMHOOK)
                _emu_stop(uc)
        if A[L.TRACE_REGS] != ZERO:
            cnt.ring_put(A, L.RT_PMU_REG, key, 1 if is_read else 0, val, A[L.ICOUNT], pc)
        if is_read and reg != REG_XZR:
            _write_reg(uc, A, reg, val)
    elif (h >= regs.H_CNTFRQ and h <= regs.H_TIMER_LAST) and (is_read or h == regs.H_CNTKCTL):
        if is_read:
            val = rg.timer_read(A, h)
            if reg != REG_XZR:
                _write_reg(uc, A, reg, val)
        else:
            A[L.CNTKCTL] = val & U(0x3FF)
    elif h >= regs.H_ID_FIRST and h <= regs.H_ID_LAST:
        val = rg.id_read(A, h, A[L.ID_BASE + h - regs.H_ID_FIRST])
        if reg != REG_XZR:
            _write_reg(uc, A, reg, val)
    else:                                 # GIC CPU interface, timer writes: Python
        A[L.PY_ARG] = U(key)
        A[L.PY_ARG + 1] = ONE if is_read else ZERO
        A[L.PY_ARG + 2] = val
        A[L.PY_ARG + 3] = pc
        _pycall(L.PC_SYSREG, A.ctypes)
        if is_read and reg != REG_XZR:
            _write_reg(uc, A, reg, A[L.PY_ARG + 4])
    # QEMU translated an access its CPU model lacks as "unallocated": "handled" skips to after
    # the exception it would raise, which ends the block without advancing the PC (and would
    # restart the block): the PC moves on here.  (Not for implemented registers: a write of
    # the PC asks Unicorn to leave the block, and a block chained after this one would see its
    # hook twice.)
    noimp = U(regs.RULE_NOIMP_READ) if is_read else U(regs.RULE_NOIMP_WRITE)
    if (A[L.RULE + key] & noimp) != ZERO:
        _write_reg(uc, A, REG_PC, pc + U(4))
    return 1


@cfunc(native.HOOK_INSN_SYS_SIG, cache=True)
def mrs_hook(uc, reg, cp, user):
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    return _sysreg(uc, reg, cp, A, True)


@cfunc(native.HOOK_INSN_SYS_SIG, cache=True)
def msr_hook(uc, reg, cp, user):
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    return _sysreg(uc, reg, cp, A, False)


@cfunc(native.HOOK_MEM_SIG, cache=True)
def mem_hook(uc, access, addr, size, value, user):
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    pc = _read_reg(uc, A, REG_PC)
    # (with the MMU on the address is virtual: the models are indexed by VA, and identity-
    # mapped RAM is what counts as cacheable)
    caches.data_access(A, U(addr), size, access == 17, pc, addr >= A[L.RAM_LO] and addr < A[L.RAM_HI])
    return True


@nrt_kernel                 # carray() of Unicorn's register struct needs NRT
def _sys(uc, cp, A):
    c = carray(cp, 8, dtype=np.uint32)
    crn, crm, op1, op2 = c[CP_CRN], c[CP_CRM], c[CP_OP1], c[CP_OP2]
    xt = U(c[CP_VAL_LO]) | (U(c[CP_VAL_HI]) << U(32))
    if crn == CRN_TLBI:
        cc.on_tlbi(A, op1, crm, op2, xt)
        _watch_xlat_changed(uc, A)
        return 0                                # QEMU performs the instruction
    if A[L.WATCH_ON] != ZERO and crn == CRN_CACHE and op1 == 3 and crm == 4 and op2 == 1:
        # DC ZVA: Unicorn zeroes the block without a memory hook (helper_dc_zva)
        _watch_ask(A, L.WATCH_ZVA, xt, 0)
    if crn != CRN_CACHE:
        return 0
    op = caches.maintenance_op(op1, crm, op2)
    if op != 0:
        caches.cache_maintenance(A, op, xt, _read_reg(uc, A, REG_PC))
    return 0


@cfunc(native.HOOK_INSN_SYS_SIG, cache=True)
def sys_hook(uc, reg, cp, user):
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    return _sys(uc, cp, A)


# ---- the one entry point for Python -> native calls ----------------------------------------------
@kernel
def _entry(A, op):
    a0, a1, a2, a3 = A[L.ENTRY_ARG], A[L.ENTRY_ARG + 1], A[L.ENTRY_ARG + 2], A[L.ENTRY_ARG + 3]
    cnt.defer_flush(A)                      # Python sees (and changes) counted state only
    if op == L.E_RECONFIGURE:
        rg.reconfigure(A)
    elif op == L.E_IRQ_UPDATE:
        cnt.irq_update(A)
    elif op == L.E_END_BLOCK_AT:
        blk.end_block_at(A, a0, a1 != ZERO)
    elif op == L.E_FINISH_BLOCK:
        blk.finish_block(A, a0)
    elif op == L.E_DYN_EVENT:
        cnt.dyn_event(A, I(a0), a1, a2, a3)
    elif op == L.E_PMCR_READ:
        return rg.pmcr_read(A)
    elif op == L.E_FLUSH_BLOCKS:
        cc.flush(A)
    elif op == L.E_BLK_LOOKUP:
        return U(cc.blk_lookup(A, a0, a1))       # two's complement; entry.py signs it
    elif op == L.E_HOOKED:
        return ONE if cc.set_add(A, L.HOOK_KEY, L.NHOOK, a0) else ZERO
    elif op == L.E_PRECISE:
        return ONE if cc.set_precise(A, a0, a1, a2 != ZERO) else ZERO
    elif op == L.E_VALID_MASK:
        return cnt.valid_mask(A)
    elif op == L.E_TYPER_MASK:
        return rg.typer_mask(A)
    # E_FLUSH: the flush above is the whole operation
    return ZERO


@cfunc(native.ENTRY_SIG, cache=True)
def entry(user, op):
    """Python calls the kernels through this one cached C entry point (arguments in
    ENTRY_ARG): no numba dispatcher, so no type inference or cache load per kernel at run
    time, and every kernel is the same compiled code the hooks run."""
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    return _entry(A, op)


@cfunc(native.HOOK_EDGE_SIG, cache=True)
def edge_hook(uc, cur_tb, prev_tb, user):
    """Unicorn translated a block (again): the code cache checks its words before it runs."""
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    tb = carray(cur_tb, 2, dtype=np.uint64)        # uc_tb: pc, then icount (u16) and size (u16)
    cc.on_new_tb(A, tb[0], (tb[1] >> U(8 * (native.UC_TB_SIZE_OFFSET - 8))) & U(0xFFFF))


# ---- synchronous exceptions ------------------------------------------------------------------------
@kernel
def _insn_at(A, pc):
    """The encoding of the instruction at pc in the current block, -1 if pc is not in it."""
    start = A[L.CUR_START]
    if A[L.CUR_VALID] == ZERO or pc < start or pc >= start + A[L.CUR_SIZE]:
        return I(-1)
    return I(A[L.POOL_W + I(A[L.BLK_IOFF + I(A[L.CUR_ENTRY])]) + I((pc - start) >> U(2))])


@kernel
def _intr(uc, intno, A):
    """A synchronous exception Unicorn hands over instead of taking it (UC_HOOK_INTR).  SVC,
    BRK, UNDEFINED instructions, refused system-register accesses and aborts are taken here:
    the instructions before it retire (and the SVC itself), QEMU's own exception entry does the
    architectural part (ESR/FAR/ELR/SPSR_EL1, SP banking, PSTATE, the vector: arm_cpu_do_interrupt
    with the syndrome QEMU computed), EXC_TAKEN counts it at the exception level it was taken
    from, and the trace gets its record.  Debug exceptions are told apart by their class:
    breakpoints (QEMU's), watchpoints (``watch_hook``) and software steps (QEMU's, after a
    one-instruction block or before any).  The board's services (HVC, SMC, semihosting), the EL0
    DAIF trap Unicorn's translator gets wrong, a fault at a vector just entered (no usable vector
    table) and anything unusual go to Python (PC_INTR), as every exception used to."""
    pc = _read_reg(uc, A, REG_PC)
    el = (_read_reg(uc, A, REG_PSTATE) >> PSTATE_EL_SHIFT) & U(3)
    syn = native.peek32(A[L.SYN_ADDR])
    ec = I((syn >> U(X.EC_SHIFT)) & U(0x3F))
    fault_pc = pc
    retired = False
    far = ZERO
    kind = 0
    if intno == X.EXCP_SWI:                       # the PC is already the preferred return address
        kind = L.EK_SVC
        fault_pc = pc - U(X.INSN_SIZE)
        retired = True
    elif intno == X.EXCP_BKPT:
        kind = L.EK_BRK
    elif intno == X.EXCP_DATA_ABORT or intno == X.EXCP_PREFETCH_ABORT:
        kind = L.EK_DATA_ABORT if intno == X.EXCP_DATA_ABORT else L.EK_PREFETCH_ABORT
        if ec == X.EC_WATCHPOINT_LOW or ec == X.EC_WATCHPOINT_CUR:
            kind = L.EK_WATCHPOINT                # raised by watch_hook / _sys, FAR set there
        elif ec == X.EC_BREAKPOINT_LOW or ec == X.EC_BREAKPOINT_CUR:
            kind = L.EK_BREAKPOINT                # FAR is UNKNOWN: 0, as QEMU 7.2 writes
            native.poke64(A[L.VADDR_ADDR], ZERO)
        far = native.peek64(A[L.VADDR_ADDR])
    elif intno == X.EXCP_UDEF and (ec == X.EC_SOFTSTEP_LOW or ec == X.EC_SOFTSTEP_CUR):
        # QEMU's software step: its one-instruction block completed (ISV = 1, the PC is where it
        # went), or no block ran (ISV = 0: active-pending, a translation without instructions)
        kind = L.EK_SOFTSTEP
    elif intno == X.EXCP_UDEF:
        w = _insn_at(A, pc)
        if w >= 0 and not (el >= ONE and ((w & X.HVC_MASK) == X.HVC or w == X.HLT_SEMIHOSTING)) \
                and not (el == ZERO and ec == X.EC_UNKNOWN and (w & X.MSR_DAIF_MASK) == X.MSR_DAIF):
            kind = L.EK_SYSREG_TRAP if ec == X.EC_SYSREG else L.EK_UNDEF
    if kind == 0 or (A[L.LAST_VEC] == fault_pc + ONE and A[L.LAST_VEC_IC] == A[L.ICOUNT]):
        A[L.PY_ARG] = U(intno)
        _pycall(L.PC_INTR, A.ctypes)
        return
    if kind == L.EK_SOFTSTEP:
        blk.finish_block(A, pc)
    else:
        blk.end_block_at(A, fault_pc, retired)
    native.do_interrupt(native.as_ptr(A[L.CPU_ADDR]))
    vector = _read_reg(uc, A, REG_PC)
    elr = _read_reg(uc, A, R.UC_ARM64_REG_ELR_EL1)
    esr = _read_reg(uc, A, R.UC_ARM64_REG_ESR_EL1)
    ic = A[L.ICOUNT]
    cnt.ring_put(A, L.RT_EXCEPTION, U(kind) | (el << U(8)), esr, elr, far, vector, ic)
    A[L.LAST_VEC] = vector + ONE
    A[L.LAST_VEC_IC] = ic
    # EXC_TAKEN is attributed to the exception level the exception was taken from
    A[L.CUR_EL] = el
    cnt.dyn_event(A, C.D_EXC_TAKEN, ONE, elr, ic)
    A[L.CUR_EL] = ONE
    A[L.EL_NOW] = ONE


@cfunc(native.HOOK_INTR_SIG, cache=True)
def intr_hook(uc, intno, user):
    A = carray(user, L.ARENA_WORDS, dtype=np.uint64)
    _intr(uc, intno, A)

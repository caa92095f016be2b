"""The native Unicorn hooks: numba ``@cfunc`` callbacks over the arena.

- ``block_hook`` (every translated block, at its start): retires the previous block,
  resolves its final branch, looks the new block up (asking Python to classify it the
  first time), delivers a pending interrupt, and decides whether the block must run in
  *precise* mode (a sync point before every instruction).
- ``code_hook`` (only on claimed system-register sites and on precise blocks): commits
  the instructions before the current one, takes a due interrupt or timer event at this
  exact boundary, and raises UNDEF for a disallowed register access before it executes.
- ``mrs_hook`` / ``msr_hook`` (UC_HOOK_INSN): perform a claimed register access.  PMU,
  timer reads and ID registers are native; the GIC CPU interface and timer writes go to
  Python through ``vpmu_pycall``.
- ``mem_hook`` (only while a counter needs data addresses): cache model, unaligned.

Python runs only for rare events.  Hooks never raise; what a guest does wrong becomes
an architectural outcome decided by the kernels.

Restarting a block: writing PC from a block or code hook makes Unicorn leave the block
at its next exit check, before any instruction of the block runs (unicorn 2.1.4
``uc_reg_write`` sets ``skip_sync_pc_on_exit``; the check follows the block and code
hooks).  ``stop_at`` uses that to hand control to the Python main loop at an exact PC.
"""
from __future__ import annotations

import numpy as np
from numba import carray, cfunc, njit
from unicorn import arm64_const as R

from .. import native
from . import kernels as K
from .layout import *  # noqa: F401,F403
from .regs import H_ICC, H_PMU_LAST, H_ID_AA64DFR0, H_ID_DFR0, H_CNTKCTL, H_TIMER_LAST, H_CNTFRQ

U = np.uint64
I = np.int64         # numba: int() of a uint64 stays uint64; indices must be signed
ZERO = U(0)
ONE = U(1)

_reg_read = native.uc_reg_read
_reg_write = native.uc_reg_write
_emu_stop = native.uc_emu_stop
_pycall = native.pycall

REG_PC = R.UC_ARM64_REG_PC
REG_PSTATE = R.UC_ARM64_REG_PSTATE
REG_XZR = R.UC_ARM64_REG_XZR
PSTATE_I = U(1 << 7)


@njit(cache=True, _nrt=False)
def _read_reg(uc, A, reg):
    A[SCRATCH] = ZERO
    _reg_read(uc, reg, A[SCRATCH:].ctypes)
    return A[SCRATCH]


@njit(cache=True, _nrt=False)
def _write_reg(uc, A, reg, val):
    A[SCRATCH + 1] = val
    _reg_write(uc, reg, A[SCRATCH + 1:].ctypes)


@njit(cache=True, _nrt=False)
def stop_at(uc, A, pc, reason, arg):
    """Hand control to the Python main loop, resuming later at pc."""
    A[STOP_REASON] = U(reason)
    A[STOP_ARG] = U(arg)
    _write_reg(uc, A, REG_PC, pc)
    _emu_stop(uc)


@njit(cache=True, _nrt=False)
def blk_lookup(A, addr, size):
    keyv = addr + ONE
    i = I((addr >> U(2)) * U(0x9E3779B1)) & (NBLK - 1)
    for _ in range(NBLK):
        k = A[BLK_KEY + i]
        if k == keyv:
            return i if A[BLK_SIZE + i] == U(size) else -2 - i
        if k == ZERO:
            return -1
        i = (i + 1) & (NBLK - 1)
    return -1


@njit(cache=True, _nrt=False)
def site_lookup(A, addr):
    keyv = addr + ONE
    i = I((addr >> U(2)) * U(0x9E3779B1)) & (NSITE - 1)
    for _ in range(NSITE):
        k = A[SITE_KEY + i]
        if k == keyv:
            return i
        if k == ZERO:
            return -1
        i = (i + 1) & (NSITE - 1)
    return -1


@njit(cache=True, _nrt=False)
def flush_blocks(A):
    """Forget everything derived from guest code (MMU change, cache maintenance)."""
    K.defer_flush(A)                    # tallies name block slots
    for i in range(NBLK):
        A[BLK_KEY + i] = ZERO
    A[BLK_USED] = ZERO
    A[POOL_TOP] = ZERO
    A[FLUSH_REQ] = ZERO


@njit(cache=True, _nrt=False)
def irq_deliverable(uc, A):
    if A[IRQ_CAND] == ZERO:
        return False
    return (_read_reg(uc, A, REG_PSTATE) & PSTATE_I) == ZERO


@njit(cache=True, _nrt=False)
def _xreg(rs):
    """Unicorn's register id of Xrs (X0..X28 are consecutive, X29/X30 are not)."""
    if rs <= 28:
        return R.UC_ARM64_REG_X0 + rs
    return R.UC_ARM64_REG_X29 if rs == 29 else R.UC_ARM64_REG_X30


@njit(cache=True, _nrt=False)
def _exclusive_outcome(uc, addr, A, v):
    """addr follows a store-exclusive: if its status register says it failed, it retires as
    the "failed" class (no store, no data access) instead of its own class."""
    prev = addr - U(4)
    start = A[CUR_START]
    if A[CUR_VALID] == ZERO or prev < start or prev >= start + A[CUR_SIZE]:
        return
    idx = I((prev - start) >> U(2))
    if idx < I(A[CUR_DONE]):
        return
    rs = I((v >> U(33)) & U(31))
    if rs == 31:
        return                          # status discarded: counted as a successful store
    status = _read_reg(uc, A, _xreg(rs)) & U(0xFFFFFFFF)
    if status != ZERO:
        K.commit_ex(A, I(A[CUR_DONE]), idx + 1, idx, I((v >> U(40)) & U(0xFFFF)))


@njit(cache=True, _nrt=False)
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


@njit(cache=True, _nrt=False, inline="always")
def _defer_tally(A, e):
    """Block e completed: one more execution in the tally (kernels.defer_flush adds them)."""
    i = I(A[BLK_DEF + e])
    if i != 0:
        A[DEF_CNT + i - 1] += ONE
    else:
        _defer_new(A, e)


@njit(cache=True, _nrt=False)
def _defer_new(A, e):
    n = I(A[DEF_N])
    if n == 0:
        A[DEF_EL] = A[CUR_EL]
    elif n == NDEF:
        K.defer_flush(A)
        A[DEF_BVALID] = ONE               # the remaining budget stays a valid bound
        A[DEF_EL] = A[CUR_EL]
        n = 0
    A[DEF_LIST + n] = U(e)
    A[DEF_CNT + n] = ONE
    A[BLK_DEF + e] = U(n + 1)
    A[DEF_N] = U(n + 1)


@njit(cache=True, _nrt=False, inline="always")
def _fast(uc, addr, size, A):
    """The deferred block boundary (kernels.defer_flush explains the scheme): the common case
    here, the rest in _fast_slow.  Returns False (nothing tallied) when the eager path must
    handle this boundary."""
    if A[CUR_VALID] == ZERO or A[CUR_FAST] == ZERO or A[CUR_DONE] != ZERO or A[DEF_BVALID] == ZERO:
        return _fast_slow(uc, addr, size, A)
    e_prev = I(A[CUR_ENTRY])
    if (A[BLK_FAST + e_prev] & U(FAST_ODD_END)) != ZERO:
        K.defer_flush(A)
        return False
    # the previous block completed: tally it (its bound was spent when it was admitted) and
    # let the predictor learn its branch, as on the eager path (no event can be counted)
    _defer_tally(A, e_prev)
    bk = I(A[BLK_BK + e_prev])
    if bk != BK_NONE:
        K.bp_update(A, bk, A[CUR_START] + U(4) * (A[BLK_N + e_prev] - ONE), A[BLK_TGT + e_prev], addr, ZERO)
    A[CUR_VALID] = ZERO
    return _admit(uc, addr, size, A)


@njit(cache=True, _nrt=False, inline="always")
def _admit(uc, addr, size, A):
    """Start the block at addr deferred if it is known, nothing waits at this boundary and its
    bound fits in the budget."""
    if (A[FLUSH_REQ] | A[EL_STALE] | A[IRQ_CAND] | A[EXIT_PENDING]) != ZERO:
        K.defer_flush(A)
        return False
    e = blk_lookup(A, addr, size)
    if e < 0:
        K.defer_flush(A)
        return False
    f = A[BLK_FAST + e]
    if (f & U(FAST_PRECISE)) != ZERO or A[DEF_BVALID] == ZERO or (f & U(FAST_BOUND)) > A[DEF_BUDGET]:
        return _admit_slow(uc, addr, size, A, e)
    _start_deferred(A, addr, size, e, f & U(FAST_BOUND))
    return True


@njit(cache=True, _nrt=False, inline="always")
def _start_deferred(A, addr, size, e, bound):
    A[DEF_BUDGET] -= bound
    A[DEF_BLOCKS] += ONE
    _start_block(A, addr, size, e, False, True)


@njit(cache=True, _nrt=False, inline="always")
def _start_block(A, addr, size, e, precise, deferred):
    """The block at addr (slot e) starts executing."""
    A[CUR_VALID] = ONE
    A[CUR_START] = addr
    A[CUR_SIZE] = U(size)
    A[CUR_N] = A[BLK_N + e]
    A[CUR_DONE] = ZERO
    A[CUR_ENTRY] = U(e)
    A[CUR_PRECISE] = ONE if precise else ZERO
    A[CUR_FAST] = ONE if deferred else ZERO


@njit(cache=True, _nrt=False)
def _admit_slow(uc, addr, size, A, e):
    f = A[BLK_FAST + e]
    if (f & U(FAST_PRECISE)) == ZERO and A[DEF_BVALID] == ZERO:
        K.defer_flush(A)                  # (nothing is tallied while the budget is invalid)
        A[DEF_BUDGET] = K.defer_budget(A)
        A[DEF_BVALID] = ONE
        if (f & U(FAST_BOUND)) <= A[DEF_BUDGET]:
            _start_deferred(A, addr, size, e, f & U(FAST_BOUND))
            return True
    K.defer_flush(A)
    return False


@njit(cache=True, _nrt=False)
def _fast_slow(uc, addr, size, A):
    """_fast when the previous block was not admitted deferred, was partly committed, or the
    budget was reset while it ran (a flush for Python or a system-register access)."""
    if A[CUR_VALID] != ZERO:
        if A[CUR_DONE] != ZERO or (A[BLK_FAST + I(A[CUR_ENTRY])] & U(FAST_ODD_END)) != ZERO:
            K.defer_flush(A)
            return False                  # the eager path retires it (exclusive outcome, ...)
        K.finish_block(A, addr)           # retire it now: commit and resolve its branch
        A[CUR_VALID] = ZERO
    else:
        K.resolve_branch(A, addr)
    return _admit(uc, addr, size, A)


@njit(cache=True, _nrt=False)
def _block(uc, addr, size, A):
    # 1. the previous block retired completely; its branch resolves against addr
    if A[CUR_VALID] != ZERO:
        e_prev = I(A[CUR_ENTRY])
        maint = (A[BLK_FLAGS + e_prev] & U(BF_MAINT)) != ZERO
        if A[BLK_EXCL + e_prev] != ZERO:      # a store-exclusive ended the block
            _exclusive_outcome(uc, A[CUR_START] + A[CUR_SIZE], A, A[BLK_EXCL + e_prev])
        if A[BLK_BK + e_prev] == U(BK_COND) and A[BLK_TGT + e_prev] == A[CUR_START] + A[CUR_SIZE]:
            A[PB_OUTCOME] = U(2) if _cond_holds(uc, A, A[BLK_WORD + e_prev]) else ONE
        K.finish_block(A, addr)
        if maint:
            A[FLUSH_REQ] = ONE
    else:
        K.resolve_branch(A, addr)
    if A[FLUSH_REQ] != ZERO:
        flush_blocks(A)
        A[STOP_REASON] = U(SR_FLUSH)
    # The EL changes only by exception entry (the board sets EL_NOW) and ERET (which ends its
    # block and marks the EL stale), so PSTATE is read only after an ERET.
    if A[EL_STALE] != ZERO:
        A[EL_NOW] = (_read_reg(uc, A, REG_PSTATE) >> U(2)) & U(3)
        A[EL_STALE] = ZERO
    A[CUR_EL] = A[EL_NOW]
    # 2. find (or classify) the block
    e = blk_lookup(A, addr, size)
    if e < 0:
        A[PY_ARG] = addr
        A[PY_ARG + 1] = U(size)
        r = _pycall(PC_CLASSIFY, A.ctypes)
        if r < 0:
            return
        e = blk_lookup(A, addr, size)
        if e < 0:
            return
        if r == 1:                       # new register sites: hooks must exist before translation
            stop_at(uc, A, addr, SR_HOOKS, e)
            return
    # 3. an interrupt, the instruction limit, a timer event at this boundary
    if A[ICOUNT] >= A[INSN_LIMIT]:
        stop_at(uc, A, addr, SR_LIMIT, 0)
        return
    if A[NEXT_DEADLINE] != K.M64 and K.now(A) >= A[NEXT_DEADLINE]:
        _pycall(PC_TIMER, A.ctypes)
    if A[ICOUNT] >= A[NEXT_SAMPLE]:
        _pycall(PC_SAMPLE, A.ctypes)     # --trace-sample: all counters at this boundary
    if irq_deliverable(uc, A):
        A[PY_ARG] = addr
        _pycall(PC_IRQ, A.ctypes)        # Python takes the IRQ exception (writes PC)
        return
    if A[EXIT_PENDING] != ZERO:
        return
    # 4. precise mode when something must happen between two of its instructions
    need = K.needs_precise(A, e)
    flags = A[BLK_FLAGS + e]
    if need and (flags & U(BF_PRECISE)) == ZERO:
        stop_at(uc, A, addr, SR_PRECISE_ON, e)
        return
    if (not need) and (flags & U(BF_PRECISE)) != ZERO:
        stop_at(uc, A, addr, SR_PRECISE_OFF, e)
        return
    # 5. the block starts
    _start_block(A, addr, size, e, need, False)
    K.icache_fetch(A, addr, U(size), addr)
    if A[IRQ_CAND] != ZERO and irq_deliverable(uc, A):   # e.g. an I-cache refill overflowed a counter
        A[CUR_VALID] = ZERO
        A[PY_ARG] = addr
        _pycall(PC_IRQ, A.ctypes)


@cfunc(native.HOOK_BLOCK_SIG, cache=True)
def block_hook(uc, addr, size, user):
    A = carray(user, ARENA_WORDS, dtype=np.uint64)
    if A[DEF_OK] != ZERO and _fast(uc, addr, size, A):
        return
    _block(uc, addr, size, A)


@njit(cache=True, _nrt=False)
def _code(uc, addr, A):
    s = site_lookup(A, addr)
    if s >= 0 and (A[SITE_VAL + s] >> U(32)) & ONE != ZERO:
        _exclusive_outcome(uc, addr, A, A[SITE_VAL + s])
    K.sync_to(A, addr)
    if A[CUR_PRECISE] != ZERO and A[CUR_VALID] != ZERO:
        if A[ICOUNT] >= A[INSN_LIMIT]:
            A[CUR_VALID] = ZERO
            stop_at(uc, A, addr, SR_LIMIT, 0)
            return
        if A[NEXT_DEADLINE] != K.M64 and K.now(A) >= A[NEXT_DEADLINE]:
            _pycall(PC_TIMER, A.ctypes)
        if irq_deliverable(uc, A):
            A[CUR_VALID] = ZERO          # the rest of the block does not run now
            A[PY_ARG] = addr
            _pycall(PC_IRQ, A.ctypes)
            return
    if s >= 0 and (A[SITE_VAL + s] & U(0xFFFF)) != ZERO:
        v = A[SITE_VAL + s]
        key = I(v & U(0xFFFF))
        is_read = (v >> U(16)) & ONE != ZERO
        h = I(A[HANDLER + key])
        if h != 0 and K.access_undef(A, key, h, is_read, I(A[CUR_EL])):
            A[CUR_VALID] = ZERO          # instructions before addr are committed; addr does not retire
            A[PY_ARG] = addr
            _pycall(PC_UNDEF, A.ctypes)  # Python takes the UNDEF exception (writes PC)


@cfunc(native.HOOK_CODE_SIG, cache=True)
def code_hook(uc, addr, size, user):
    A = carray(user, ARENA_WORDS, dtype=np.uint64)
    _code(uc, addr, A)


@njit(cache=True)                 # carray() of Unicorn's register struct needs NRT
def _sysreg(uc, reg, cp, A, is_read):
    c = carray(cp, 8, dtype=np.uint32)
    key = (I(c[2]) << 14) | (I(c[3]) << 11) | (I(c[0]) << 7) | (I(c[1]) << 3) | I(c[4])
    h = I(A[HANDLER + key])
    if h == 0 or h >= 160:
        return 0                          # not ours (observed-only registers are QEMU's too)
    pc = _read_reg(uc, A, REG_PC)
    K.sync_to(A, pc)
    el = I(A[CUR_EL])
    val = U(c[6]) | (U(c[7]) << U(32))
    if K.access_undef(A, key, h, is_read, el):
        # A site without its pre-check hook (code written after it was classified without
        # cache maintenance): no exception can be taken here; the access is ignored (RAZ/WI).
        A[UNHANDLED] += ONE
        if is_read and reg != REG_XZR:
            _write_reg(uc, A, reg, ZERO)
    elif h <= H_PMU_LAST:
        if is_read:
            val = K.pmu_read(A, h, U(key))
        else:
            # what the write causes (a PMSWINC overflow, an interrupt-line edge) happens when
            # the MSR retires: its records carry the icount including the MSR itself
            A[ICOUNT] += ONE
            K.pmu_write(A, h, U(key), val, pc)
            A[ICOUNT] -= ONE
            if A[MEMHOOK_WANT] != A[MEMHOOK_ON]:
                # the data-side memory hooks must be (un)installed before the next access:
                # an MSR ends its block, so stopping here resumes right after it
                A[STOP_REASON] = U(SR_MEMHOOK)
                _emu_stop(uc)
        if A[TRACE_REGS] != ZERO:
            K.ring_put(A, RT_PMU_REG, key, 1 if is_read else 0, val, A[ICOUNT], pc)
        if is_read and reg != REG_XZR:
            _write_reg(uc, A, reg, val)
    elif (h >= H_CNTFRQ and h <= H_TIMER_LAST) and (is_read or h == H_CNTKCTL):
        if is_read:
            val = K.timer_read(A, h)
            if reg != REG_XZR:
                _write_reg(uc, A, reg, val)
        else:
            A[CNTKCTL] = val & U(0x3FF)
    elif h == H_ID_AA64DFR0 or h == H_ID_DFR0:
        base = A[ID_AA64DFR0_BASE] if h == H_ID_AA64DFR0 else A[ID_DFR0_BASE]
        val = K.id_read(A, h, base)
        if reg != REG_XZR:
            _write_reg(uc, A, reg, val)
    else:                                 # GIC CPU interface, timer writes: Python
        A[PY_ARG] = U(key)
        A[PY_ARG + 1] = ONE if is_read else ZERO
        A[PY_ARG + 2] = val
        A[PY_ARG + 3] = pc
        _pycall(PC_SYSREG, A.ctypes)
        if is_read and reg != REG_XZR:
            _write_reg(uc, A, reg, A[PY_ARG + 4])
    # Registers QEMU's CPU model does not implement end their block right here (translated
    # as "unallocated"); their PC must be advanced by us or the access repeats forever.  For
    # an implemented register that happens to end its block the write is the same value.
    if pc + U(4) == A[CUR_START] + A[CUR_SIZE] and A[CUR_VALID] != ZERO:
        _write_reg(uc, A, REG_PC, pc + U(4))
    return 1


@cfunc(native.HOOK_INSN_SYS_SIG, cache=True)
def mrs_hook(uc, reg, cp, user):
    A = carray(user, ARENA_WORDS, dtype=np.uint64)
    return _sysreg(uc, reg, cp, A, True)


@cfunc(native.HOOK_INSN_SYS_SIG, cache=True)
def msr_hook(uc, reg, cp, user):
    A = carray(user, ARENA_WORDS, dtype=np.uint64)
    return _sysreg(uc, reg, cp, A, False)


@cfunc(native.HOOK_MEM_SIG, cache=True)
def mem_hook(uc, access, addr, size, value, user):
    A = carray(user, ARENA_WORDS, dtype=np.uint64)
    pc = _read_reg(uc, A, REG_PC)
    # (with the MMU on the address is virtual: the models are indexed by VA, and identity-
    # mapped RAM is what counts as cacheable)
    K.data_access(A, U(addr), size, access == 17, pc, addr >= A[RAM_LO] and addr < A[RAM_HI])
    return True


@njit(cache=True)                 # carray() of Unicorn's register struct needs NRT
def _sys(uc, cp, A):
    K.defer_flush(A)
    c = carray(cp, 8, dtype=np.uint32)
    crn, crm, op1, op2 = c[0], c[1], c[3], c[4]
    if crn != 7:
        return 0
    op = 0
    if op1 == 3 and op2 == 1 and crm == 14:
        op = 1                                  # DC CIVAC
    elif op1 == 0 and op2 == 1 and crm == 6:
        op = 2                                  # DC IVAC
    elif op1 == 3 and op2 == 1 and (crm == 10 or crm == 11 or crm == 12 or crm == 13):
        op = 3                                  # DC CVAC / CVAU / CVAP / CVADP
    elif op1 == 3 and op2 == 1 and crm == 5:
        op = 4                                  # IC IVAU
    elif op1 == 0 and op2 == 0 and (crm == 5 or crm == 1):
        op = 5                                  # IC IALLU / IALLUIS
    if op != 0:
        K.cache_maintenance(A, op, U(c[6]) | (U(c[7]) << U(32)), _read_reg(uc, A, REG_PC))
    return 0                                    # QEMU performs the instruction


@cfunc(native.HOOK_INSN_SYS_SIG, cache=True)
def sys_hook(uc, reg, cp, user):
    A = carray(user, ARENA_WORDS, dtype=np.uint64)
    return _sys(uc, cp, A)


# ---- the one entry point for Python -> native calls ----------------------------------------------
@njit(cache=True, _nrt=False)
def _entry(A, op):
    a0, a1, a2, a3 = A[ENTRY_ARG], A[ENTRY_ARG + 1], A[ENTRY_ARG + 2], A[ENTRY_ARG + 3]
    K.defer_flush(A)                      # Python sees (and changes) counted state only
    if op == E_RECONFIGURE:
        K.reconfigure(A)
    elif op == E_IRQ_UPDATE:
        K.irq_update(A)
    elif op == E_END_BLOCK_AT:
        K.end_block_at(A, a0, a1 != ZERO)
    elif op == E_FINISH_BLOCK:
        K.finish_block(A, a0)
    elif op == E_DYN_EVENT:
        K.dyn_event(A, I(a0), a1, a2, a3)
    elif op == E_PMCR_READ:
        return K.pmcr_read(A)
    elif op == E_FLUSH_BLOCKS:
        flush_blocks(A)
    elif op == E_BLK_LOOKUP:
        return U(blk_lookup(A, a0, a1))          # two's complement; entry.py signs it
    elif op == E_VALID_MASK:
        return K.valid_mask(A)
    elif op == E_TYPER_MASK:
        return K.typer_mask(A)
    # E_FLUSH: the flush above is the whole operation
    return ZERO


@cfunc(native.ENTRY_SIG, cache=True)
def entry(user, op):
    """Python calls the kernels through this one cached C entry point (arguments in
    ENTRY_ARG): no numba dispatcher, so no type inference or cache load per kernel at run
    time, and every kernel is the same compiled code the hooks run."""
    A = carray(user, ARENA_WORDS, dtype=np.uint64)
    return _entry(A, op)

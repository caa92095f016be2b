"""The L1 instruction and data cache models (set-associative, LRU, write-back).

They start (cold) when a counter first counts one of their events, or at once with
``--cache``; the data side is fed by the memory hook, the instruction side per block.
"""
from __future__ import annotations



from .jit import kernel
from . import channels as C
from . import counting as cnt
from . import layout as L
from .counting import I, ONE, U, ZERO


@kernel
def cache_lookup(A, is_d, line, is_write):
    """LRU set-associative lookup in the L1D (is_d) or L1I model; returns (hit, wrote_back)."""
    if is_d:
        tag_base, age_base, sets, ways = L.L1D_TAG, L.L1D_AGE, I(A[L.L1D_SETS]), I(A[L.L1D_WAYS])
    else:
        tag_base, age_base, sets, ways = L.L1I_TAG, L.L1I_AGE, I(A[L.L1I_SETS]), I(A[L.L1I_WAYS])
    s = I(line % U(sets))
    base = s * ways
    A[L.CACHE_CLOCK] += ONE
    now = A[L.CACHE_CLOCK]
    key = line + ONE
    for w in range(ways):
        if A[tag_base + base + w] == key:
            A[age_base + base + w] = now
            if is_write and is_d:
                A[L.L1D_DIRTY + base + w] = ONE
            return True, False
    victim = 0
    oldest = cnt.M64
    for w in range(ways):
        if A[tag_base + base + w] == ZERO:
            victim = w
            break
        if A[age_base + base + w] < oldest:
            oldest = A[age_base + base + w]
            victim = w
    wb = False
    if is_d:
        wb = A[tag_base + base + victim] != ZERO and A[L.L1D_DIRTY + base + victim] != ZERO
        A[L.L1D_DIRTY + base + victim] = ONE if is_write else ZERO
    A[tag_base + base + victim] = key
    A[age_base + base + victim] = now
    return False, wb


@kernel
def icache_fetch(A, start, size, pc_for_events):
    """Instruction fetch of a block: one L1I lookup per line it spans (before it executes)."""
    if A[L.L1I_ACTIVE] == ZERO:
        return
    cnt.defer_irq(A)
    _icache_fetch(A, start, size, pc_for_events)
    cnt.release_irq(A)


@kernel
def _icache_fetch(A, start, size, pc_for_events):
    sh = A[L.LINE_SHIFT]
    first = start >> sh
    last = (start + size - ONE) >> sh
    ln = first
    ic = A[L.ICOUNT]
    while ln <= last:
        hit, _wb = cache_lookup(A, False, ln, False)
        if not hit:
            cnt.dyn_event(A, C.D_L1I_REFILL, ONE, pc_for_events, ic)
            cnt.penalty(A, C.D_STALL_FE, A[L.PEN_L1I], pc_for_events, ic)
        ln += ONE


@kernel
def _insn_class(A, pc):
    """Class of the instruction at pc in the current block (-1 if pc is not in it)."""
    start = A[L.CUR_START]
    if A[L.CUR_VALID] == ZERO or pc < start or pc >= start + A[L.CUR_SIZE]:
        return -1
    return I(A[L.POOL + I(A[L.BLK_IOFF + I(A[L.CUR_ENTRY])]) + I((pc - start) >> U(2))])


@kernel
def data_access(A, addr, size, is_write, pc, is_ram):
    cnt.defer_irq(A)
    _data_access(A, addr, size, is_write, pc, is_ram)
    cnt.release_irq(A)


@kernel
def _data_access(A, addr, size, is_write, pc, is_ram):
    """One data access seen by the memory hook (Unicorn may split an instruction's transfer
    into several).  Per instruction execution, on its first access: UNALIGNED_LDST_RETIRED if
    the address is not a multiple of the instruction's element size, and L1D_CACHE for its
    architectural accesses (as MEM_ACCESS counts them) when they go to RAM.  Per access: the
    L1D model (RAM only: Device memory does not allocate)."""
    ic = A[L.ICOUNT]
    if A[L.LAST_MEM_PC] != pc + ONE or A[L.LAST_MEM_IC] != ic:
        A[L.LAST_MEM_PC] = pc + ONE
        A[L.LAST_MEM_IC] = ic
        cl = _insn_class(A, pc)
        esize = A[L.CLS_ESIZE + cl] if cl >= 0 else U(size)
        nmem = A[L.CLS_NMEM + cl] if cl >= 0 else ONE
        if esize > ONE and (addr % esize) != ZERO:
            cnt.dyn_event(A, C.D_UNALIGNED, ONE, pc, ic)
        if is_ram:
            cnt.dyn_event(A, C.D_L1D_ACCESS, nmem, pc, ic)
    if not is_ram or A[L.L1D_ACTIVE] == ZERO:
        return
    sh = A[L.LINE_SHIFT]
    first = addr >> sh
    last = (addr + U(size) - ONE) >> sh
    ln = first
    while ln <= last:
        hit, wb = cache_lookup(A, True, ln, is_write)
        if not hit:
            _dside_event(A, C.D_L1D_REFILL, A[L.PEN_L1D], pc, ic)
        if wb:
            _dside_event(A, C.D_L1D_WB, A[L.PEN_WB], pc, ic)
        ln += ONE


@kernel
def _dside_event(A, d, pen, pc, ic):
    cnt.dyn_event(A, d, ONE, pc, ic)
    cnt.penalty(A, C.D_STALL_BE, pen, pc, ic)


# cache maintenance operations (cache_maintenance's op)
CM_CIVAC, CM_IVAC, CM_CVAC, CM_IVAU, CM_IALLU = 1, 2, 3, 4, 5


@kernel
def maintenance_op(op1, crm, op2):
    """The CM_* operation of a DC/IC instruction (SYS, CRn = 7), 0 for anything else."""
    if op1 == 3 and op2 == 1 and crm == 14:
        return CM_CIVAC                         # DC CIVAC
    if op1 == 0 and op2 == 1 and crm == 6:
        return CM_IVAC                          # DC IVAC
    if op1 == 3 and op2 == 1 and (crm == 10 or crm == 11 or crm == 12 or crm == 13):
        return CM_CVAC                          # DC CVAC / CVAU / CVAP / CVADP
    if op1 == 3 and op2 == 1 and crm == 5:
        return CM_IVAU                          # IC IVAU
    if op1 == 0 and op2 == 0 and (crm == 5 or crm == 1):
        return CM_IALLU                         # IC IALLU / IALLUIS
    return 0


@kernel
def cache_maintenance(A, op, addr, pc):
    """DC/IC by VA and IC IALLU seen by the SYS hook (a CM_* op).  Cleaning a dirty line is a
    write-back."""
    ic = A[L.ICOUNT]
    if op == CM_IVAU or op == CM_IALLU:
        if A[L.L1I_ACTIVE] == ZERO:
            return
        if op == CM_IALLU:
            for i in range(L.CACHE_MAX_LINES):
                A[L.L1I_TAG + i] = ZERO
            return
        key = (addr >> A[L.LINE_SHIFT]) + ONE
        ways = I(A[L.L1I_WAYS])
        base = I((key - ONE) % A[L.L1I_SETS]) * ways
        for w in range(ways):
            if A[L.L1I_TAG + base + w] == key:
                A[L.L1I_TAG + base + w] = ZERO
        return
    if A[L.L1D_ACTIVE] == ZERO:
        return
    key = (addr >> A[L.LINE_SHIFT]) + ONE
    ways = I(A[L.L1D_WAYS])
    base = I((key - ONE) % A[L.L1D_SETS]) * ways
    for w in range(ways):
        if A[L.L1D_TAG + base + w] == key:
            if A[L.L1D_DIRTY + base + w] != ZERO and op != CM_IVAC:
                _dside_event(A, C.D_L1D_WB, A[L.PEN_WB], pc, ic)
            A[L.L1D_DIRTY + base + w] = ZERO
            if op != CM_CVAC:
                A[L.L1D_TAG + base + w] = ZERO

"""The code cache: every executed block classified once, natively, and kept valid across
TLB maintenance without being classified again.

A block (Unicorn's translation block: start VA and size) is classified the first time it
runs: its words are read through the guest's current translation (``uc_vmem_read``),
decoded by ``decode.decode`` into instruction classes, and its per-channel totals, branch,
sites and bounds are stored in a slot of the block cache (``layout``, BLK_*), keyed by the
start VA.  Nothing here calls Python: a block seen before, or re-translated by Unicorn with
the same words, is re-entered by native code alone.

What an instruction counts depends only on its encoding and its address (the target of a
PC-relative branch), both stored with the block (POOL_W).  So the cache stays valid as long
as the words at those VAs are the ones classified, and is re-checked exactly where they may
have changed:

- *A VA may now translate to other memory* (TLBI of a page holding classified code, TLBI of
  everything or of an ASID, a write that changes TTBR0/TTBR1/TCR/SCTLR): XLAT_EPOCH is
  bumped, and a block whose BLK_EPOCH is older reads its words again before it runs next;
  if they are the same it is valid (one read and compare), otherwise it is classified
  again.  A TLBI of a page without code (a fixmap slot used to patch text, user data)
  changes nothing.
- *The memory itself changed* (self-modifying code, code written by another VA or by the
  board): Unicorn invalidates the translation blocks of a page that is written, and its
  next execution is a new translation.  ``UC_HOOK_EDGE_GENERATED`` fires for every new
  translation (``tb_find`` -> ``tb_gen_code``, unicorn 2.1.4 cpu-exec.c); ``on_new_tb``
  marks the block for a check.  On Arm, QEMU has no precise SMC: a block that modifies
  itself completes with the words it was translated from, which is what was counted.
- Cache maintenance (IC IVAU, IC IALLU) does not affect the code cache: Unicorn does not
  tie execution to it, so the two rules above already cover what executes.

Left out, because the architecture leaves it UNPREDICTABLE: changing a valid translation
without the TLB maintenance break-before-make requires (Arm ARM D8.16) and then returning
to a (VA, PA) pair Unicorn still holds a translation for.

The block cache and the per-instruction pool are flushed as a whole only when full.
"""
from __future__ import annotations


from unicorn import unicorn_const as UC

from .. import native
from .jit import inline_kernel, kernel
from . import channels as C
from . import counting as cnt
from . import decode as D
from . import layout as L
from .counting import I, ONE, U, ZERO

_vmem_read = native.uc_vmem_read
_mem_read = native.uc_mem_read

PAGE_SHIFT = 12
HASH_MUL = U(0x9E3779B1)
# decode flags that change a class's channel increments (the rest only steer the hooks)
_INC_FLAGS = (D.F_LOAD | D.F_STORE | D.F_BR_IMMED | D.F_BR_RETURN | D.F_BR | D.F_EXC_RETURN
              | D.F_PCW | D.F_TTBR | D.F_CID)
MAX_INSNS = L.CODE_WORDS * 2              # instructions in the longest translation block


# ---- open-addressing sets of (key + 1) ------------------------------------------------------
@inline_kernel
def _home(key, n):
    return I((key >> U(2)) * HASH_MUL) & (n - 1)


@kernel
def set_has(A, base, n, key):
    k1 = key + ONE
    i = _home(key, n)
    for _ in range(n):
        v = A[base + i]
        if v == k1:
            return True
        if v == ZERO:
            return False
        i = (i + 1) & (n - 1)
    return False


@kernel
def set_add(A, base, n, key):
    """Add key; False if the set is full (the caller decides what that means)."""
    k1 = key + ONE
    i = _home(key, n)
    for _ in range(n):
        v = A[base + i]
        if v == k1:
            return True
        if v == ZERO:
            A[base + i] = k1
            return True
        i = (i + 1) & (n - 1)
    return False


# ---- the block cache ---------------------------------------------------------------------------
@kernel
def blk_lookup(A, addr, size):
    """Slot of the block at addr: i if cached with this size, -2 - i if cached with another
    size (a new translation of other extent), -1 if not cached."""
    keyv = addr + ONE
    i = _home(addr, L.NBLK)
    for _ in range(L.NBLK):
        k = A[L.BLK_KEY + i * L.BW]
        if k == keyv:
            return i if A[L.BLK_N + i * L.BW] == U(size) >> U(2) else -2 - i
        if k == ZERO:
            return -1
        i = (i + 1) & (L.NBLK - 1)
    return -1


@kernel
def _free_slot(A, addr):
    i = _home(addr, L.NBLK)
    while A[L.BLK_KEY + i * L.BW] != ZERO:
        i = (i + 1) & (L.NBLK - 1)
    return i


@kernel
def flush(A):
    """Forget every classified block (the cache or the pool is full).  Classes, code hooks
    and precise ranges stay."""
    cnt.defer_flush(A)                    # tallies name block slots
    for i in range(L.NBLK):
        A[L.BLK_KEY + i * L.BW] = ZERO
    for i in range(L.NCPAGE):
        A[L.CPAGE_KEY + i] = ZERO
    A[L.BLK_USED] = ZERO
    A[L.POOL_TOP] = ZERO
    A[L.CUR_VALID] = ZERO
    A[L.CC_FLUSHES] += ONE


@kernel
def bump_epoch(A):
    """Every VA may translate differently from now on: blocks check their words again."""
    A[L.XLAT_EPOCH] += ONE
    A[L.CC_EPOCHS] += ONE


@kernel
def on_new_tb(A, pc, size):
    """Unicorn translated the block at pc (again): its words may have changed."""
    e = blk_lookup(A, pc, size)
    if e >= 0:
        A[L.BLK_EPOCH + e * L.BW] = ZERO


# TLBI <op>, Xt by VA (op1 = 0, CRn = 8): CRm 3 (Inner Shareable) or 7, op2 odd: VAE1, VAAE1,
# VALE1, VAALE1.  Xt[43:0] = VA[55:12]; VA[63:56] repeat VA[55] (the two halves of EL1&0).
TLBI_VA_MASK = U((1 << 44) - 1)
VA_TOP = U(0xFF00_0000_0000_0000)


@kernel
def on_tlbi(A, op1, crm, op2, xt):
    """A TLBI retired.  By VA: only a page holding classified code matters; anything wider
    (VMALLE1, ASIDE1, ...) may change every translation."""
    if op1 == 0 and (crm == 3 or crm == 7) and (op2 & 1) == 1:
        va = (xt & TLBI_VA_MASK) << U(PAGE_SHIFT)
        if (va >> U(55)) & ONE != ZERO:
            va |= VA_TOP
        if set_has(A, L.CPAGE_KEY, L.NCPAGE, va >> U(PAGE_SHIFT)):
            bump_epoch(A)
        return
    bump_epoch(A)


# ---- reading a block's words -----------------------------------------------------------------
@kernel
def read_code(uc, A, addr, size):
    """The block's bytes into CODE, through the guest's current stage-1 translation (the
    MMU off: the address itself).  False if nothing readable is there."""
    buf = A[L.CODE:].ctypes
    if _vmem_read(uc, addr, UC.UC_PROT_EXEC, buf, size) == 0:
        return True
    return _mem_read(uc, addr, buf, size) == 0


@inline_kernel
def code_word(A, i):
    w = A[L.CODE + (i >> 1)]
    return (w >> U(32)) if (i & 1) else (w & U(0xFFFFFFFF))


# ---- classes -----------------------------------------------------------------------------------
@kernel
def _class_key(A):
    r = L.DEC
    return (A[r + D.R_KIND] | (A[r + D.R_BK] << U(3)) | ((A[r + D.R_FLAGS] & U(_INC_FLAGS)) << U(6))
            | (A[r + D.R_NMEM] << U(24)) | (A[r + D.R_ESIZE] << U(40)))


@kernel
def class_id(A):
    """The class of the decoded record in DEC (interned: identical classes share an id).
    -1 if the class table is full."""
    key = _class_key(A)
    k1 = key + ONE
    i = I((key * HASH_MUL) >> U(7)) & (L.NCLS_H - 1)
    for _ in range(L.NCLS_H):
        v = A[L.CLS_HKEY + i]
        if v == k1:
            return I(A[L.CLS_HVAL + i])
        if v == ZERO:
            cid = I(A[L.CLS_N])
            if cid >= L.NCLS:
                return -1
            D.class_inc(A[L.DEC:L.DEC + D.NREC], A[L.CYC_BASE], A[L.CYC_EXTRA:L.CYC_EXTRA + D.NKIND],
                        A[L.DEC_INC:L.DEC_INC + C.NS])
            for s in range(C.NS):
                A[L.CLS_INC + cid * C.NS + s] = A[L.DEC_INC + s]
            A[L.CLS_BK + cid] = A[L.DEC + D.R_BK]
            A[L.CLS_NMEM + cid] = A[L.DEC + D.R_NMEM]
            A[L.CLS_ESIZE + cid] = A[L.DEC + D.R_ESIZE]
            A[L.CLS_N] = U(cid + 1)
            A[L.CLS_HKEY + i] = k1
            A[L.CLS_HVAL + i] = U(cid)
            return cid
        i = (i + 1) & (L.NCLS_H - 1)
    return -1


@kernel
def _failed_class(A):
    """The class a store-exclusive retires as when it fails: architecturally executed
    (INST_RETIRED, cycles) but neither a store nor a data access (Arm ARM ST_RETIRED);
    classify.failed_exclusive is the reference."""
    r = L.DEC
    flags, nmem = A[r + D.R_FLAGS], A[r + D.R_NMEM]
    A[r + D.R_FLAGS] = flags & ~U(D.F_STORE)
    A[r + D.R_NMEM] = ZERO
    cid = class_id(A)
    A[r + D.R_FLAGS] = flags
    A[r + D.R_NMEM] = nmem
    return cid


# ---- precise-mode ranges (a code hook over the whole block; Python installs it) -----------------
@kernel
def _prec_slot(A, start, size, insert):
    """Slot of the precise range (start, size); an insert takes the first empty or switched-off
    slot of that start.  -1 if absent (or, inserting, if the table is full)."""
    k1 = start + ONE
    i = _home(start, L.NPREC)
    free = -1
    for _ in range(L.NPREC):
        v = A[L.PREC_KEY + i]
        if v == k1 and A[L.PREC_SIZE + i] == U(size):
            return i
        if v == k1 and A[L.PREC_SIZE + i] == ZERO and free < 0:
            free = i
        if v == ZERO:
            if not insert:
                return -1
            return i if free < 0 else free
        i = (i + 1) & (L.NPREC - 1)
    return free if insert else -1


@kernel
def set_precise(A, start, size, on):
    """The precise-mode code hook over [start, start + size) was installed (on) or removed.
    False if the range table is full."""
    i = _prec_slot(A, start, size, on)
    if i < 0:
        return not on
    A[L.PREC_KEY + i] = start + ONE
    A[L.PREC_SIZE + i] = U(size) if on else ZERO
    e = blk_lookup(A, start, size)
    if e >= 0:
        if on:
            A[L.BLK_FLAGS + e] |= U(L.BF_PRECISE)
            A[L.BLK_FAST + e * L.BW] |= U(L.FAST_PRECISE)
        else:
            A[L.BLK_FLAGS + e] &= ~U(L.BF_PRECISE)
            A[L.BLK_FAST + e * L.BW] &= ~U(L.FAST_PRECISE)
    return True


@kernel
def _is_precise(A, start, size):
    return _prec_slot(A, start, size, False) >= 0


# ---- store-exclusive outcomes ---------------------------------------------------------------------
# A Store-Exclusive retires as a store only if it succeeded, which its status register Ws says
# once it executed.  The check word (in POOL_XCHK of the next instruction, or BLK_EXCL) holds
# XCHK | Ws << XCHK_RS | the failed class << XCHK_FAIL | the store's index << XCHK_IDX.  When
# nothing after it in the block writes a general-purpose register (the usual `stxr; cbnz`),
# Ws is read when the block completes; otherwise a code hook on the next instruction reads it.
XCHK_RS, XCHK_FAIL, XCHK_IDX = 33, 40, 52


@kernel
def writes_no_gpr(w):
    """The instruction writes no general-purpose register: B.cond, CBZ/CBNZ, TBZ/TBNZ, B, BR,
    RET, barriers, hints, CMP/CMN/TST (flag-setting forms with Rd = XZR)."""
    if (w & U(0xFF000010)) == U(0x54000000) or (w & U(0x7E000000)) == U(0x34000000) \
            or (w & U(0x7E000000)) == U(0x36000000) or (w & U(0xFC000000)) == U(0x14000000):
        return True
    if (w & U(0xFFFFFC1F)) == U(0xD61F0000) or (w & U(0xFFFFFC1F)) == U(0xD65F0000):
        return True
    if (w & U(0xFFFFF01F)) == U(0xD503301F) or (w & U(0xFFFFF01F)) == U(0xD503201F):
        return True
    if (w & U(31)) == U(31):            # Rd = XZR: flag-setting ADDS/SUBS/ANDS are CMN/CMP/TST
        if (w & U(0x3F800000)) == U(0x31000000) or (w & U(0x3F200000)) == U(0x2B000000) \
                or (w & U(0x7F800000)) == U(0x72000000) or (w & U(0x7F200000)) == U(0x6A000000):
            return True
    return False


# ---- classification ----------------------------------------------------------------------------
@kernel
def _want_hook(A, va):
    """va needs a code hook (the check after a store-exclusive)."""
    if set_has(A, L.HOOK_KEY, L.NHOOK, va):
        return
    n = I(A[L.NEW_N])
    for j in range(n):
        if A[L.NEW_VA + j] == va:
            return
    if n < L.NNEW:
        A[L.NEW_VA + n] = va
        A[L.NEW_N] = U(n + 1)


@kernel
def classify(uc, A, addr, size, slot):
    """Classify the block at addr into slot (-1: a new slot).  Returns the slot, or -1 if the
    class table is full.  Instructions that need a code hook without one are listed in NEW_VA."""
    n = I(size) >> 2
    if n <= 0 or n > MAX_INSNS:
        return -1
    same_extent = (slot >= 0 and A[L.BLK_N + slot * L.BW] == U(n)
                   and A[L.BLK_KEY + slot * L.BW] == addr + ONE)
    if (not same_extent) and (I(A[L.POOL_TOP]) + n > L.NPOOL or I(A[L.BLK_USED]) >= L.NBLK * 3 // 4):
        flush(A)
        slot = -1
    if not read_code(uc, A, addr, U(size)):
        for i in range((n + 1) >> 1):
            A[L.CODE + i] = ZERO          # nothing readable: every word UDF #0 (never retires)
    if slot < 0:
        slot = _free_slot(A, addr)
        A[L.BLK_USED] += ONE
    if same_extent:
        off = I(A[L.BLK_IOFF + slot])     # the same extent: reuse its pool entries
    else:
        off = I(A[L.POOL_TOP])
        A[L.POOL_TOP] = U(off + n)
    e = slot
    tot = L.BLK_TOT + e * C.NS
    for s in range(C.NS):
        A[tot + s] = ZERO
    handler = A[L.HANDLER:L.HANDLER + 65536]
    dec = A[L.DEC:L.DEC + D.NREC]
    nmem = ZERO
    pending = ZERO                        # check word for the instruction after a store-exclusive
    excl_last = ZERO
    last_x = -1                           # the last store-exclusive of the block
    A[L.NEW_N] = ZERO
    last_bk = ZERO
    last_tgt = ZERO
    last_w = ZERO
    for i in range(n):
        va = addr + U(4 * i)
        w = code_word(A, i)
        D.decode(w, va, handler, dec)
        cid = class_id(A)
        if cid < 0:
            return -1
        A[L.POOL + off + i] = U(cid)
        A[L.POOL_W + off + i] = w
        for s in range(C.NS):
            A[tot + s] += A[L.CLS_INC + cid * C.NS + s]
        nmem += A[L.DEC + D.R_NMEM]
        flags = A[L.DEC + D.R_FLAGS]
        A[L.POOL_XCHK + off + i] = pending
        pending = ZERO
        if (flags & U(D.F_EXCL)) != ZERO:
            fail = _failed_class(A)
            if fail < 0:
                return -1
            pending = (U(L.XCHK) | (A[L.DEC + D.R_EXCL_RS] << U(XCHK_RS)) | (U(fail) << U(XCHK_FAIL))
                       | (U(i) << U(XCHK_IDX)))
            last_x = i
        last_bk = A[L.DEC + D.R_BK]
        last_tgt = A[L.DEC + D.R_TARGET]
        last_w = w
    # the last store-exclusive is judged when the block completes if nothing after it can
    # overwrite its status register; every other one by a code hook on the next instruction
    for i in range(n - 1):
        chk = A[L.POOL_XCHK + off + i + 1]
        if chk == ZERO:
            continue
        late = i == last_x
        for j in range(i + 1, n):
            if late and not writes_no_gpr(code_word(A, j)):
                late = False
        if late:
            excl_last = chk
        else:
            _want_hook(A, addr + U(4 * (i + 1)))
    if last_x == n - 1:
        excl_last = pending
    A[L.BLK_KEY + e * L.BW] = addr + ONE
    A[L.BLK_SUCC + e * L.BW] = ZERO
    A[L.BLK_N + e * L.BW] = U(n)
    A[L.BLK_IOFF + e] = U(off)
    A[L.BLK_BK + e * L.BW] = last_bk
    A[L.BLK_TGT + e * L.BW] = last_tgt
    A[L.BLK_NMEM + e] = nmem
    A[L.BLK_WORD + e] = last_w
    A[L.BLK_EXCL + e] = excl_last
    precise = _is_precise(A, addr, size)
    A[L.BLK_FLAGS + e] = U(L.BF_PRECISE) if precise else ZERO
    bound = U(n)
    for s in range(C.NS):
        if A[tot + s] > bound:
            bound = A[tot + s]
    if bound > U(L.FAST_BOUND):
        bound = U(L.FAST_BOUND)
    odd = (excl_last != ZERO or last_bk == U(L.BK_ERET)
           or (last_bk == U(L.BK_COND) and last_tgt == addr + U(size)))
    A[L.BLK_FAST + e * L.BW] = (bound | (U(L.FAST_PRECISE) if precise else ZERO)
                         | (U(L.FAST_ODD_END) if odd else ZERO))
    A[L.BLK_EPOCH + e * L.BW] = A[L.XLAT_EPOCH]
    A[L.BLK_DEF + e * L.BW] = ZERO
    set_add(A, L.CPAGE_KEY, L.NCPAGE, addr >> U(PAGE_SHIFT))
    set_add(A, L.CPAGE_KEY, L.NCPAGE, (addr + U(size) - ONE) >> U(PAGE_SHIFT))
    A[L.CC_CLASSIFIED] += ONE
    return e


@kernel
def _same_words(uc, A, e, addr, size):
    if not read_code(uc, A, addr, U(size)):
        return False
    off = I(A[L.BLK_IOFF + e])
    for i in range(I(size) >> 2):
        if code_word(A, i) != A[L.POOL_W + off + i]:
            return False
    return True


@kernel
def ensure(uc, A, addr, size):
    """The slot of the block at addr, classified and checked against the current words
    (-1: it cannot be classified).  NEW_N > 0 afterwards: sites need code hooks first."""
    A[L.NEW_N] = ZERO
    e = blk_lookup(A, addr, size)
    if e >= 0:
        if A[L.BLK_EPOCH + e * L.BW] == A[L.XLAT_EPOCH]:
            return e
        A[L.CC_CHECKED] += ONE
        if _same_words(uc, A, e, addr, size):
            A[L.BLK_EPOCH + e * L.BW] = A[L.XLAT_EPOCH]
            set_add(A, L.CPAGE_KEY, L.NCPAGE, addr >> U(PAGE_SHIFT))
            return e
        A[L.CC_CHANGED] += ONE
        if A[L.BLK_DEF + e * L.BW] != ZERO:
            cnt.defer_flush(A)            # its tally must be added with its old totals
        return classify(uc, A, addr, size, e)
    if e <= -2:                           # a new translation of other extent at this address
        e = -2 - e
        A[L.CC_CHANGED] += ONE
        if A[L.BLK_DEF + e * L.BW] != ZERO:
            cnt.defer_flush(A)
        return classify(uc, A, addr, size, e)
    return classify(uc, A, addr, size, -1)


@kernel
def xchk_at(A, addr):
    """The POOL_XCHK word of the instruction at addr in the current block (0: none)."""
    start = A[L.CUR_START]
    if A[L.CUR_VALID] == ZERO or addr < start or addr >= start + A[L.CUR_SIZE]:
        return ZERO
    return A[L.POOL_XCHK + I(A[L.BLK_IOFF + I(A[L.CUR_ENTRY])]) + I((addr - start) >> U(2))]


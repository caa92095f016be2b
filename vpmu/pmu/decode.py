"""Native instruction classification: the A64 encodings that decide the event classes.

``classify.classify_word`` (capstone, by mnemonic) costs about 400 us for a block seen for
the first time.  This module decodes a word from the A64 encoding tables instead (Arm ARM
DDI 0487, chapter C4 "A64 Instruction Set Encoding": the top-level ``op0`` groups first,
then the group tables) in numba, into a fixed record of what the counting path needs:
the cycle class, the branch kind and direct target, the static event flags, the number of
data accesses and their element size, the claimed system-register site and the status
register of a Store-Exclusive.  :func:`class_inc` turns a record into the static channel
increments exactly as the tail of ``classify_word`` does.

Both functions are numba kernels (``jit.kernel``), allocation-free and exception-free: they take
ints and preallocated ``uint64`` arrays only, so the native hooks can call them.

Every decision is classify.py's (see its docstring and docs/events.md); this module only
computes it from the encoding.  ``tests/test_decode.py`` proves that the two agree on
every word the modelled CPU (Unicorn's cortex-a57, Armv8.0) can retire, on the whole
system-instruction and exception-generating classes, on generated words of every encoding
class, on random words and on the code of every guest.

Scope.  Armv8.0 plus the extensions whose class is plain from the encoding (LSE atomics,
CASP, LDAPR, LDAPUR/STLUR, the PAuth branches and LDRAA/LDRAB) are decoded; SVE, SME, MTE
tag loads/stores, FEAT_MOPS, FEAT_LS64 and other unallocated space are OTHER: all are
UNDEFINED on cortex-a57, so they never retire and their class never counts.
Fields that the Arm ARM marks "should be" ((1)/(0), e.g. Rs and Rt2 of LDXR/LDAR/STLR)
and register numbers are ignored: a should-be field with another value, or registers that
overlap (LDP with Rt == Rt2, a writeback to a transfer register), are CONSTRAINED
UNPREDICTABLE, and Unicorn executes the instruction as if the encoding were the canonical
one, so it retires as what it is (classify.py does the same, see ``classify._disasm``).
"""
from __future__ import annotations

import numpy as np


from .. import _jitcache  # noqa: F401  (before any kernel is compiled or loaded)
from .jit import kernel
from . import channels as C
from . import layout as L
from . import regs

# ---- the record ------------------------------------------------------------------------------
R_KIND = 0      # cycle class (K_*)
R_BK = 1        # branch kind (layout.BK_*)
R_TARGET = 2    # direct branch target: addr + sign-extended offset, modulo 2**64
R_FLAGS = 3     # F_* bits
R_NMEM = 4      # data accesses (MEM_ACCESS / L1D_CACHE count)
R_ESIZE = 5     # element size of the data accesses in bytes (0: none)
R_SITE = 6      # claimed system-register site: key | rt << 16 (valid iff F_SITE)
R_EXCL_RS = 7   # Store-Exclusive status register number (valid iff F_EXCL)
NREC = 8

# cycle classes: the same meaning as classify's kind strings (KIND_NAMES)
K_OTHER, K_LOAD, K_STORE, K_BRANCH, K_MUL, K_DIV, K_FP, K_SYSTEM = 0, 1, 2, 3, 4, 5, 6, 7
NKIND = 8
KIND_NAMES = ("other", "load", "store", "branch", "mul", "div", "fp", "system")

# flags
F_LOAD = 1 << 0         # LD_RETIRED
F_STORE = 1 << 1        # ST_RETIRED
F_BR_IMMED = 1 << 2     # BR_IMMED_RETIRED
F_BR_RETURN = 1 << 3    # BR_RETURN_RETIRED (procedure return)
F_BR = 1 << 4           # BR_RETIRED / BR_PRED
F_EXC_RETURN = 1 << 5   # EXC_RETURN
F_PCW = 1 << 6          # unconditional PC write (static part of PC_WRITE_RETIRED)
F_MAINT = 1 << 7        # cache/TLB maintenance or MMU register write (the block cache is flushed)
F_TTBR = 1 << 8         # TTBR0_EL1/TTBR1_EL1 write
F_CID = 1 << 9          # CONTEXTIDR_EL1 write
F_SITE = 1 << 10        # claimed system-register site (R_SITE)
F_SITE_READ = 1 << 11   # ... which is a read (MRS)
F_EXCL = 1 << 12        # Store-Exclusive (R_EXCL_RS: its status register)

SITE_RT_SHIFT = 16

# system-register keys (regs.key packing) the static events look at
KEY_TTBR0 = regs.BY_NAME["TTBR0_EL1"]
KEY_TTBR1 = regs.BY_NAME["TTBR1_EL1"]
KEY_CONTEXTIDR = regs.key(3, 0, 13, 0, 1)
H_OBS_MMU = regs.H_OBS_MMU

_BK_COND, _BK_B, _BK_BL = L.BK_COND, L.BK_B, L.BK_BL
_BK_BR, _BK_BLR, _BK_RET, _BK_ERET = L.BK_BR, L.BK_BLR, L.BK_RET, L.BK_ERET

U = np.uint64
I = np.int64
M32 = 0xFFFFFFFF

# ---- encoding constants ------------------------------------------------------------------------
# C4.1, the top-level table: op0 = bits [28:25]
OP0_SHIFT, OP0_MASK = 25, 0xF

# "Branches, Exception Generating and System instructions": mask, value pairs
B_IMM_MASK, B_IMM_VAL = 0x7C000000, 0x14000000          # B / BL (op = bit 31)
B_COND_MASK, B_COND_VAL = 0xFF000010, 0x54000000        # B.cond (o1 = 0, o0 = 0)
CB_MASK, CB_VAL = 0x7E000000, 0x34000000                # CBZ / CBNZ
TB_MASK, TB_VAL = 0x7E000000, 0x36000000                # TBZ / TBNZ
EXC_MASK, EXC_VAL = 0xFF000000, 0xD4000000              # exception generation
SYS_MASK, SYS_VAL = 0xFFC00000, 0xD5000000              # system instructions (classify's test)
BR_REG_MASK, BR_REG_VAL = 0xFE000000, 0xD6000000        # unconditional branch (register)

# exception generation: opc (bits [23:21]), LL (bits [1:0]); op2 (bits [4:2]) = 0
EXC_OPC_SVC_HVC_SMC, EXC_OPC_BRK, EXC_OPC_HLT = 0, 1, 2

# unconditional branch (register): opc (bits [24:21])
UBR_BR, UBR_BLR, UBR_RET, UBR_ERET, UBR_BRA, UBR_BLRA = 0, 1, 2, 4, 8, 9
UBR_OP3_PLAIN, UBR_OP3_PAC_A, UBR_OP3_PAC_B = 0, 2, 3

# system instruction fields
SYS_OP0_SYS = 1           # SYS / SYSL (DC, IC, AT, TLBI)
SYS_OP0_REG = 2           # op0 >= 2: MSR/MRS (register)
DCZVA = (3, 7, 4, 1)      # (op1, CRn, CRm, op2) of DC ZVA

# "Loads and Stores": bits [29:28] select the group (bit 27 = 1, bit 25 = 0)
LS_EXCL_SIMD, LS_LIT_RCPC, LS_PAIR, LS_REG = 0, 1, 2, 3
# load/store register forms (op4 = bits [11:10] when bit 24 = 0 and bit 21 = 0)
FORM_UNSCALED, FORM_POST, FORM_UNPRIV, FORM_PRE = 0, 1, 2, 3
FORM_REGOFF, FORM_UIMM = 4, 5
# AdvSIMD load/store multiple structures: opcode -> registers transferred (0: unallocated)
SIMD_MULT_NREGS = (4, 0, 4, 0, 3, 0, 3, 1, 2, 0, 2, 0, 0, 0, 0, 0)

# "Data Processing -- Register"
DP3_MASK, DP3_VAL = 0x1F000000, 0x1B000000             # data-processing (3 source)
DP2_MASK, DP2_VAL = 0x5FE00000, 0x1AC00000             # data-processing (2 source)
DP2_UDIV, DP2_SDIV = 2, 3
DP3_MADD, DP3_SMADDL, DP3_SMULH, DP3_UMADDL, DP3_UMULH = 0, 1, 2, 5, 6

# "Data Processing -- Scalar Floating-Point and Advanced SIMD": Advanced SIMD copy
# (SMOV/UMOV write a general register)
SIMD_COPY_MASK, SIMD_COPY_VAL = 0x9FE08400, 0x0E000400
IMM4_SMOV, IMM4_UMOV = 5, 7


# ==================================================================================== helpers
@kernel
def _set(out, kind, flags, nmem, esize):
    out[R_KIND] = kind
    out[R_FLAGS] = flags
    out[R_NMEM] = nmem
    out[R_ESIZE] = esize


@kernel
def _branch(out, addr, bk, flags, offset):
    """A direct branch to addr + offset (offset signed), modulo 2**64."""
    out[R_KIND] = K_BRANCH
    out[R_BK] = bk
    out[R_FLAGS] = flags
    out[R_TARGET] = U(addr) + U(offset)


@kernel
def _sext(v, bits):
    return v - (1 << bits) if v >> (bits - 1) else v


@kernel
def sys_is_maintenance(op1, crn, crm, op2):
    """regs.sys_is_maintenance, natively: IC IALLUIS / IC IALLU / IC IVAU and every TLBI."""
    if crn == 7 and ((op1 == 0 and (crm == 1 or crm == 5) and op2 == 0) or (op1 == 3 and crm == 5 and op2 == 1)):
        return True
    return crn == 8


# ====================================== C4.1 Branches, Exception Generating and System instructions
@kernel
def _system(w, handler, out):
    """System instructions (bits [31:22] = 0b1101010100), decoded exactly as classify does:
    every one is of the system cycle class; MSR/MRS of a claimed register is a site; writes
    to the MMU registers, IC/TLBI are maintenance; DC ZVA is a 1-access store of a block."""
    is_read = (w >> 21) & 1
    op0 = (w >> 19) & 3
    op1 = (w >> 16) & 7
    crn = (w >> 12) & 15
    crm = (w >> 8) & 15
    op2 = (w >> 5) & 7
    rt = w & 31
    out[R_KIND] = K_SYSTEM
    if op0 >= SYS_OP0_REG:
        k = (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2      # regs.key
        h = I(handler[k])
        flags = 0
        if h != 0 and h < H_OBS_MMU:
            flags |= F_SITE | (F_SITE_READ if is_read else 0)
            out[R_SITE] = k | (rt << SITE_RT_SHIFT)
        if not is_read:
            if h == H_OBS_MMU:
                flags |= F_MAINT
            if k == KEY_TTBR0 or k == KEY_TTBR1:
                flags |= F_TTBR
            if k == KEY_CONTEXTIDR:
                flags |= F_CID
        out[R_FLAGS] = flags
    elif op0 == SYS_OP0_SYS and not is_read:
        if sys_is_maintenance(op1, crn, crm, op2):
            out[R_FLAGS] = F_MAINT
        if op1 == DCZVA[0] and crn == DCZVA[1] and crm == DCZVA[2] and op2 == DCZVA[3]:
            # DC ZVA writes a whole aligned block: one access, never unaligned (esize 1)
            _set(out, K_STORE, F_STORE, 1, 1)


@kernel
def _exception(w, out):
    """Exception generation (C4.1 Branches, Exception Generating and System): SVC, HVC,
    SMC, BRK, HLT are system; DCPS1-3 and TCANCEL (debug state / TME only) and the
    unallocated rest are OTHER."""
    opc = (w >> 21) & 7
    op2 = (w >> 2) & 7
    ll = w & 3
    if op2 != 0:
        return
    if (opc == EXC_OPC_SVC_HVC_SMC and ll != 0) or ((opc == EXC_OPC_BRK or opc == EXC_OPC_HLT) and ll == 0):
        out[R_KIND] = K_SYSTEM


@kernel
def _branch_reg(w, out):
    """Unconditional branch (register) (C4.1 Branches, Exception Generating and System):
    BR, BLR, RET, ERET and their PAuth forms.  ERET is an exception return, not a branch for
    BR_*; DRPS (debug state) is OTHER."""
    opc = (w >> 21) & 15
    op2 = (w >> 16) & 31
    op3 = (w >> 10) & 63
    rn = (w >> 5) & 31
    op4 = w & 31
    if op2 != 31:
        return
    pac = op3 == UBR_OP3_PAC_A or op3 == UBR_OP3_PAC_B
    if opc == UBR_BR or opc == UBR_BLR or opc == UBR_RET:
        if op3 == UBR_OP3_PLAIN and op4 == 0:
            ok = True
        elif pac and op4 == 31:                  # BRAAZ.., BLRAAZ.., RETAA/RETAB (Rn = 31)
            ok = opc != UBR_RET or rn == 31
        else:
            ok = False
        if not ok:
            return
        out[R_KIND] = K_BRANCH
        if opc == UBR_BR:
            out[R_BK] = _BK_BR
            out[R_FLAGS] = F_BR | F_PCW
        elif opc == UBR_BLR:
            out[R_BK] = _BK_BLR
            out[R_FLAGS] = F_BR | F_PCW
        else:                                   # RET: the procedure return
            out[R_BK] = _BK_RET
            out[R_FLAGS] = F_BR | F_PCW | F_BR_RETURN
    elif opc == UBR_ERET:
        if rn == 31 and ((op3 == UBR_OP3_PLAIN and op4 == 0) or (pac and op4 == 31)):
            out[R_KIND] = K_BRANCH
            out[R_BK] = _BK_ERET
            out[R_FLAGS] = F_EXC_RETURN | F_PCW
    elif (opc == UBR_BRA or opc == UBR_BLRA) and pac:   # BRAA/BRAB/BLRAA/BLRAB Xn, Xm
        out[R_KIND] = K_BRANCH
        out[R_BK] = _BK_BR if opc == UBR_BRA else _BK_BLR
        out[R_FLAGS] = F_BR | F_PCW


@kernel
def _branch_sys(w, addr, handler, out):
    """C4.1 Branches, Exception Generating and System instructions (op0 = 101x)."""
    if (w & B_IMM_MASK) == B_IMM_VAL:                       # B, BL: imm26
        bk = _BK_BL if w >> 31 else _BK_B
        _branch(out, addr, bk, F_BR_IMMED | F_BR | F_PCW, _sext(w & 0x3FFFFFF, 26) << 2)
    elif (w & B_COND_MASK) == B_COND_VAL:                   # B.cond: imm19
        _branch(out, addr, _BK_COND, F_BR_IMMED | F_BR, _sext((w >> 5) & 0x7FFFF, 19) << 2)
    elif (w & CB_MASK) == CB_VAL:                           # CBZ, CBNZ: imm19
        _branch(out, addr, _BK_COND, F_BR_IMMED | F_BR, _sext((w >> 5) & 0x7FFFF, 19) << 2)
    elif (w & TB_MASK) == TB_VAL:                           # TBZ, TBNZ: imm14
        _branch(out, addr, _BK_COND, F_BR_IMMED | F_BR, _sext((w >> 5) & 0x3FFF, 14) << 2)
    elif (w & SYS_MASK) == SYS_VAL:
        _system(w, handler, out)
    elif (w & EXC_MASK) == EXC_VAL:
        _exception(w, out)
    elif (w & BR_REG_MASK) == BR_REG_VAL:
        _branch_reg(w, out)


# ======================================================================= C4.1 Loads and Stores
@kernel
def _excl(w, out):
    """Load/store exclusive, ordered, compare-and-swap (bits [29:24] = 0b001000).
    Fields o2 (bit 23), L (22), o1 (21), o0 (15); size in [31:30]."""
    size = w >> 30
    o2 = (w >> 23) & 1
    is_load = (w >> 22) & 1
    o1 = (w >> 21) & 1
    esize = 1 << size
    if o2 == 0:
        if o1 == 1 and size < 2:
            # CASP (sz = bit 30): two registers compared, two swapped: 4 accesses; an odd
            # Rs or Rt is UNDEFINED (register pairs)
            if ((w >> 16) | w) & 1:
                return
            _set(out, K_LOAD, F_LOAD | F_STORE, 4, 4 << (size & 1))
        elif is_load:                                       # LDXR, LDAXR, LDXP, LDAXP
            _set(out, K_LOAD, F_LOAD, 1 + o1, esize)
        else:                                               # STXR, STLXR, STXP, STLXP
            _set(out, K_STORE, F_STORE | F_EXCL, 1 + o1, esize)
            out[R_EXCL_RS] = (w >> 16) & 31
    elif o1 == 1:                                           # CAS, CASA, CASL, CASAL
        _set(out, K_LOAD, F_LOAD | F_STORE, 2, esize)
    elif is_load:                                           # LDAR, LDLAR
        _set(out, K_LOAD, F_LOAD, 1, esize)
    else:                                                   # STLR, STLLR
        _set(out, K_STORE, F_STORE, 1, esize)


@kernel
def _simd_multiple(w, out):
    """AdvSIMD load/store multiple structures (C4.1 Loads and Stores), post-indexed when
    bit 23 is set: one access per register of the list, the element size of the arrangement."""
    post = (w >> 23) & 1
    if (post == 0 and ((w >> 16) & 63) != 0) or (post == 1 and (w >> 21) & 1):
        return
    opcode = (w >> 12) & 15
    size = (w >> 10) & 3
    q = (w >> 30) & 1
    nregs = SIMD_MULT_NREGS[opcode]
    if nregs == 0:
        return
    if size == 3 and q == 0 and (opcode & 3) == 0:      # LD2/LD3/LD4 (ST..) with .1D: reserved
        return
    if (w >> 22) & 1:
        _set(out, K_LOAD, F_LOAD, nregs, 1 << size)
    else:
        _set(out, K_STORE, F_STORE, nregs, 1 << size)


@kernel
def _simd_single(w, out):
    """AdvSIMD load/store single structure (C4.1 Loads and Stores), incl. LDnR (replicate);
    post-indexed when bit 23 is set.  selem registers, each one access."""
    post = (w >> 23) & 1
    if post == 0 and ((w >> 16) & 31) != 0:
        return
    is_load = (w >> 22) & 1
    r = (w >> 21) & 1
    opcode = (w >> 13) & 7
    s = (w >> 12) & 1
    size = (w >> 10) & 3
    scale = opcode >> 1
    selem = (((opcode & 1) << 1) | r) + 1
    if scale == 3:                          # LD1R..LD4R: loads only, S = 0
        if not is_load or s:
            return
        esize = 1 << size
    elif scale == 0:
        esize = 1
    elif scale == 1:
        if size & 1:
            return
        esize = 2
    else:
        if size & 2:
            return
        if size & 1:
            if s:
                return
            esize = 8
        else:
            esize = 4
    if is_load:
        _set(out, K_LOAD, F_LOAD, selem, esize)
    else:
        _set(out, K_STORE, F_STORE, selem, esize)


@kernel
def _ldst_reg(w, form, out):
    """Load/store register: unscaled, pre/post-indexed, unprivileged, register offset,
    unsigned immediate (C4.1 Loads and Stores).  size [31:30], V (bit 26), opc [23:22]."""
    size = w >> 30
    v = (w >> 26) & 1
    opc = (w >> 22) & 3
    if form == FORM_REGOFF and ((w >> 13) & 2) == 0:    # option<1> = 0: unallocated
        return
    if v == 0:
        if opc >= 2 and size == 3:
            # PRFM (unsigned offset, register) / PRFUM: a hint, no access, cycled as a load
            if opc == 2 and (form == FORM_UIMM or form == FORM_REGOFF or form == FORM_UNSCALED):
                out[R_KIND] = K_LOAD
            return
        if opc == 3 and size == 2:
            return
        if opc == 0:
            _set(out, K_STORE, F_STORE, 1, 1 << size)
        else:                                               # LDR, LDRS*
            _set(out, K_LOAD, F_LOAD, 1, 1 << size)
    else:
        if form == FORM_UNPRIV:
            return
        if opc >= 2:                                        # 128-bit Q register
            if size != 0:
                return
            esize = 16
        else:
            esize = 1 << size
        if opc & 1:
            _set(out, K_LOAD, F_LOAD, 1, esize)
        else:
            _set(out, K_STORE, F_STORE, 1, esize)


@kernel
def _atomic(w, out):
    """Atomic memory operations (C4.1 Loads and Stores; FEAT_LSE, FEAT_LRCPC LDAPR): an
    atomic is a load and a store with 2 accesses (classify's decision); LDAPR is a load."""
    if (w >> 26) & 1:
        return
    size = w >> 30
    o3 = (w >> 15) & 1
    opc = (w >> 12) & 7
    if o3 == 0 or opc == 0:                                 # LDADD..LDUMIN, SWP
        _set(out, K_LOAD, F_LOAD | F_STORE, 2, 1 << size)
    elif opc == 4 and (w >> 22) & 3 == 2 and (w >> 16) & 31 == 31:     # LDAPR: A = 1, R = 0
        _set(out, K_LOAD, F_LOAD, 1, 1 << size)


@kernel
def _ldst_pair(w, out):
    """Load/store register pair, incl. no-allocate (LDNP/STNP) and LDPSW (C4.1 Loads and
    Stores): two accesses.  opc [31:30], V (bit 26), L (bit 22), addressing mode [24:23]."""
    opc = w >> 30
    v = (w >> 26) & 1
    is_load = (w >> 22) & 1
    mode = (w >> 23) & 3
    if v == 0:
        if opc == 0:
            esize = 4
        elif opc == 2:
            esize = 8
        elif opc == 1 and is_load and mode != 0:           # LDPSW (STGP, L = 0, is MTE)
            esize = 4
        else:
            return
    else:
        if opc == 3:
            return
        esize = 4 << opc
    if is_load:
        _set(out, K_LOAD, F_LOAD, 2, esize)
    else:
        _set(out, K_STORE, F_STORE, 2, esize)


@kernel
def _literal(w, out):
    """Load register (literal) (C4.1 Loads and Stores); opc 3 with V = 0 is PRFM (literal)."""
    opc = w >> 30
    if (w >> 26) & 1:
        if opc == 3:
            return
        _set(out, K_LOAD, F_LOAD, 1, 4 << opc)
    elif opc == 3:
        out[R_KIND] = K_LOAD                                # PRFM: no access
    else:
        _set(out, K_LOAD, F_LOAD, 1, 8 if opc == 1 else 4)


@kernel
def _rcpc_unscaled(w, out):
    """LDAPUR*/STLUR* (FEAT_LRCPC2; C4.1 Loads and Stores, "LDAPR/STLR (unscaled immediate)")."""
    size = w >> 30
    opc = (w >> 22) & 3
    if (opc == 2 and size == 3) or (opc == 3 and size >= 2):
        return
    if opc == 0:
        _set(out, K_STORE, F_STORE, 1, 1 << size)
    else:
        _set(out, K_LOAD, F_LOAD, 1, 1 << size)


@kernel
def _ldst(w, out):
    """C4.1 Loads and Stores (op0 = x1x0)."""
    group = (w >> 28) & 3
    v = (w >> 26) & 1
    b24 = (w >> 24) & 1
    b21 = (w >> 21) & 1
    op4 = (w >> 10) & 3
    if group == LS_EXCL_SIMD:
        if v == 0:
            if b24 == 0:
                _excl(w, out)
        elif w >> 31 == 0:
            if b24 == 0:
                _simd_multiple(w, out)
            else:
                _simd_single(w, out)
    elif group == LS_LIT_RCPC:
        if b24 == 0:
            _literal(w, out)
        elif v == 0 and b21 == 0 and op4 == 0:
            _rcpc_unscaled(w, out)
        # else: MTE tag loads/stores, FEAT_MOPS: OTHER (UNDEFINED on cortex-a57)
    elif group == LS_PAIR:
        _ldst_pair(w, out)
    elif b24:
        _ldst_reg(w, FORM_UIMM, out)
    elif b21 == 0:
        _ldst_reg(w, op4, out)                              # FORM_UNSCALED..FORM_PRE = op4
    elif op4 == 0:
        _atomic(w, out)
    elif op4 == 2:
        _ldst_reg(w, FORM_REGOFF, out)
    elif (w >> 30) == 3 and v == 0:                         # LDRAA / LDRAB (FEAT_PAuth)
        _set(out, K_LOAD, F_LOAD, 1, 8)


# ============================ C4.1 Data Processing -- Register, -- Scalar FP and Advanced SIMD
@kernel
def _dp_reg(w, out):
    """C4.1 Data Processing -- Register (op0 = x101): MADD/MSUB, SMADDL.., SMULH/UMULH are
    mul; UDIV/SDIV are div; everything else (ALU, shifts, CRC32, conditional select...) is
    OTHER."""
    if (w & DP3_MASK) == DP3_VAL:
        if (w >> 29) & 3:                                   # op54 != 0: unallocated
            return
        sf = w >> 31
        op31 = (w >> 21) & 7
        o0 = (w >> 15) & 1
        if op31 == DP3_MADD or (sf and (op31 == DP3_SMADDL or op31 == DP3_UMADDL)) \
                or (sf and o0 == 0 and (op31 == DP3_SMULH or op31 == DP3_UMULH)):
            out[R_KIND] = K_MUL
    elif (w & DP2_MASK) == DP2_VAL:
        opcode = (w >> 10) & 63
        if ((w >> 29) & 1) == 0 and (opcode == DP2_UDIV or opcode == DP2_SDIV):
            out[R_KIND] = K_DIV


@kernel
def _simd_fp(w, out):
    """Data processing, scalar FP and Advanced SIMD (C4.1 "Data Processing -- Scalar Floating-Point and
    Advanced SIMD", op0 = x111): the fp class, except SMOV and
    UMOV (Advanced SIMD copy), which write a general register."""
    if (w & SIMD_COPY_MASK) == SIMD_COPY_VAL and ((w >> 29) & 1) == 0:
        imm4 = (w >> 11) & 15
        if imm4 == IMM4_SMOV or imm4 == IMM4_UMOV:
            return
    out[R_KIND] = K_FP


# ================================================================================== entry points
@kernel
def decode(word, addr, handler, out):
    """Decode one A64 instruction word at addr into out[0:NREC] (see R_*).

    handler: the sysreg key -> handler id table (uint64[65536]); out: uint64[>= NREC]."""
    w = I(word) & M32
    for i in range(NREC):
        out[i] = 0
    op0 = (w >> OP0_SHIFT) & OP0_MASK
    if (op0 & 0b1110) == 0b1010:            # 101x: branches, exception generating, system
        _branch_sys(w, addr, handler, out)
    elif (op0 & 0b0101) == 0b0100:          # x1x0: loads and stores
        _ldst(w, out)
    elif (op0 & 0b0111) == 0b0101:          # x101: data processing (register)
        _dp_reg(w, out)
    elif (op0 & 0b0111) == 0b0111:          # x111: data processing (SIMD and FP)
        _simd_fp(w, out)
    # 100x data processing (immediate), 0000 reserved/SME, 0010 SVE, unallocated: OTHER


@kernel
def class_inc(out, base_cycles, extra_cycles_by_kind, inc):
    """The static channel increments of a decoded record (inc: uint64[channels.NS]), as the
    tail of classify_word computes them.  extra_cycles_by_kind[K_*]: the cycle model's extra
    cycles of each class (see :func:`extra_cycles`)."""
    kind = I(out[R_KIND])
    flags = I(out[R_FLAGS])
    nmem = I(out[R_NMEM])
    extra = I(extra_cycles_by_kind[kind]) if kind != K_OTHER else 0
    for i in range(C.NS):
        inc[i] = 0
    inc[C.S_INST] = 1
    inc[C.S_CYC] = I(base_cycles) + extra
    inc[C.S_LD] = 1 if flags & F_LOAD else 0
    inc[C.S_ST] = 1 if flags & F_STORE else 0
    inc[C.S_MEM] = nmem
    inc[C.S_BR_IMMED] = 1 if flags & F_BR_IMMED else 0
    inc[C.S_BR_RETURN] = 1 if flags & F_BR_RETURN else 0
    inc[C.S_BR] = 1 if flags & F_BR else 0
    inc[C.S_EXC_RETURN] = 1 if flags & F_EXC_RETURN else 0
    inc[C.S_CID] = 1 if flags & F_CID else 0
    inc[C.S_TTBR] = 1 if flags & F_TTBR else 0
    inc[C.S_OP] = nmem if nmem > 1 else 1
    inc[C.S_PCW] = 1 if flags & F_PCW else 0
    inc[C.S_UNALIGNED_CAND] = 1 if nmem else 0
    if kind == K_BRANCH:
        inc[C.S_STALL_FE] = extra
    elif kind != K_OTHER:
        inc[C.S_STALL_BE] = extra
    inc[C.S_STALL] = extra if kind != K_OTHER else 0


# ============================================================================== Python helpers
def extra_cycles(cycles) -> np.ndarray:
    """A CycleModel's extra cycles per class, indexed by K_* (OTHER: 0)."""
    return np.array([0 if name == "other" else getattr(cycles, name) for name in KIND_NAMES], dtype=np.uint64)


def handler_table() -> np.ndarray:
    """regs.handler_table() as the uint64 array decode() takes."""
    return regs.handler_table().astype(np.uint64)


def record_tuple(rec, cycles) -> tuple:
    """A record -> the fields of classify's Insn, in the order (inc, bk, target, nmem, esize,
    kind, site, maint, excl_rs), so the two can be compared field by field."""
    inc = np.zeros(C.NS, dtype=np.uint64)
    class_inc(rec, cycles.base, extra_cycles(cycles), inc)
    flags = int(rec[R_FLAGS])
    site = None
    if flags & F_SITE:
        s = int(rec[R_SITE])
        site = (s & 0xFFFF, bool(flags & F_SITE_READ), s >> SITE_RT_SHIFT)
    return (tuple(int(x) for x in inc), int(rec[R_BK]), int(rec[R_TARGET]), int(rec[R_NMEM]),
            int(rec[R_ESIZE]), KIND_NAMES[int(rec[R_KIND])], site, bool(flags & F_MAINT),
            int(rec[R_EXCL_RS]) if flags & F_EXCL else -1)


def insn_tuple(ins) -> tuple:
    """The same fields of a classify.Insn."""
    return (tuple(ins.inc), ins.bk, ins.target, ins.nmem, ins.esize, ins.kind, ins.site, ins.maint, ins.excl_rs)

"""Instruction classification: which static events an instruction produces.

Capstone 5.0.9's groups and memory-access flags are wrong for several AArch64
instructions (ecosystem.md 3: ``blr`` is "branch_relative", ``str`` is read-write,
``stxr`` is a read, LSE atomics carry no flag), so classification is a mnemonic table,
and system instructions are decoded from the raw encoding.  Every decision the
architecture leaves open is made here once and documented in docs/events.md; the
tests in tests/test_classify.py pin each of them.

Decisions:
- LD_RETIRED counts loads of every kind (literal, pair, SIMD single/multiple structure,
  exclusive, acquire) and the read half of atomics (LDADD.., SWP, CAS); PRFM is not a load.
- ST_RETIRED counts stores of every kind, atomics, and DC ZVA.  A Store-Exclusive counts
  only when it succeeds (Arm ARM: a failed one is not a store); its outcome is read from
  its status register by a native hook on the next instruction.
- MEM_ACCESS / L1D_CACHE count one access per register transferred (LDP/STP = 2,
  LD1-LD4/ST1-ST4 = number of registers in the list), 2 for an atomic read-modify-write,
  1 for DC ZVA, 0 for PRFM.  OP_RETIRED = max(1, that number).
- Branches: B, BL, B.cond, CBZ/CBNZ, TBZ/TBNZ are immediate branches (BR_IMMED_RETIRED, taken
  or not); BR, BLR, RET are register branches; RET is the procedure return.  BR_RETIRED /
  BR_PRED count all of them, taken or not.  ERET is an exception return (EXC_RETURN), not a
  branch for BR_*; it writes the PC (PC_WRITE_RETIRED).  PC_WRITE_RETIRED counts
  unconditional branches always and conditional ones when taken (dynamic).
- Cycle classes: ``mul`` and ``div`` are the general-register multiplies and divides; the
  Advanced SIMD ``MUL``/``SMULL``/``UMULL`` are ``fp`` like every other SIMD&FP operation.
- A load/store that capstone rejects as CONSTRAINED UNPREDICTABLE but the engine executes
  is classified as what it executes (see :func:`_disasm`).
"""
from __future__ import annotations

from dataclasses import dataclass

import capstone

from ..config import CycleModel
from . import channels as C
from . import layout as L
from . import regs

_md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)


@dataclass
class Insn:
    addr: int
    word: int
    mnemonic: str
    op_str: str
    inc: tuple            # static channel increments (len NS)
    bk: int = L.BK_NONE   # branch kind
    target: int = 0       # direct branch target
    nmem: int = 0
    site: tuple | None = None   # (key, is_read, rt) for a claimed MRS/MSR
    maint: bool = False   # cache/TLB maintenance or MMU register write
    excl_rs: int = -1     # store-exclusive: its status register (the outcome decides the class)
    esize: int = 0        # element size of its data accesses in bytes (0: no data access)
    kind: str = "other"   # cycle class: load/store/branch/mul/div/fp/system/other

    @property
    def cls_key(self) -> tuple:
        return self.inc + (self.bk, self.nmem, self.esize)


_LOAD_PREFIXES = ("ldr", "ldur", "ldp", "ldnp", "ldxr", "ldxp", "ldaxr", "ldaxp", "ldar", "ldapr",
                  "ldlar", "ldtr", "ld1", "ld2", "ld3", "ld4", "ldpsw", "ldapur", "ldg")
_STORE_PREFIXES = ("str", "stur", "stp", "stnp", "stxr", "stxp", "stlxr", "stlxp", "stlr", "stllr",
                   "sttr", "st1", "st2", "st3", "st4", "stlur", "stg", "stz")
_ATOMIC_PREFIXES = ("ldadd", "ldclr", "ldeor", "ldset", "ldsmax", "ldsmin", "ldumax", "ldumin",
                    "swp", "cas", "stadd", "stclr", "steor", "stset", "stsmax", "stsmin", "stumax", "stumin")
_MUL = {"mul", "madd", "msub", "mneg", "smull", "umull", "smulh", "umulh", "smaddl", "umaddl",
        "smsubl", "umsubl", "smnegl", "umnegl"}
_DIV = {"sdiv", "udiv"}
_COND_BRANCH = {"cbz", "cbnz", "tbz", "tbnz"}


def _reg_list_len(op_str: str) -> int:
    if "{" not in op_str:
        return 1
    inner = op_str[op_str.index("{") + 1:op_str.index("}")]
    if " - " in inner:              # "{v0.16b - v3.16b}"
        a, b = (int(x.strip()[1:].split(".")[0]) for x in inner.split(" - "))
        return (b - a) % 32 + 1
    return len([x for x in inner.split(",") if x.strip()])


_VSIZE = {"b": 1, "h": 2, "s": 4, "d": 8, "q": 16}


def element_size(mnemonic: str, op_str: str) -> int:
    """Bytes per element of a load/store: what alignment is judged against (Arm ARM
    UNALIGNED_LDST_RETIRED: the alignment check SCTLR_ELx.A = 1 would make)."""
    m = mnemonic
    ops = [o.strip() for o in op_str.replace("{", "").replace("}", "").split(",")]
    if m.startswith(("ld1", "ld2", "ld3", "ld4", "st1", "st2", "st3", "st4")):
        arr = op_str.split(".", 1)[1] if "." in op_str else "b"
        return _VSIZE.get(arr.lstrip("0123456789")[:1], 1)
    if m.startswith(("stxr", "stlxr", "stxp", "stlxp")):
        ops = ops[1:]                                  # skip the status register
    if m in ("ldraa", "ldrab"):                        # PAuth key A/B, not a byte load
        return 8
    if m.endswith("b"):
        return 1
    if m.endswith("h"):
        return 2
    if m.endswith("sw"):
        return 4
    reg = ops[0] if ops else ""
    if reg[:1] in ("x",) or reg == "sp" or reg == "xzr":
        return 8
    if reg[:1] == "w":
        return 4
    return _VSIZE.get(reg[:1], 8)


# Capstone 5 rejects every encoding LLVM's decoder reports as "SoftFail" (capstone
# arch/AArch64/AArch64Disassembler.c): loads and stores whose should-be fields differ (Rs and
# Rt2, "(1)(1)(1)(1)(1)" in the Arm ARM, of LDXR/LDAXR/LDAR/STLR), or whose registers overlap
# where the Arm ARM makes that CONSTRAINED UNPREDICTABLE (LDP/LDXP with Rt == Rt2, a writeback
# to a transfer register) - and, by an LLVM bug, LDTR with Rn == Rt, which is well defined
# (it has no writeback).  Unicorn executes all of them (for the CONSTRAINED UNPREDICTABLE
# ones, the Arm ARM's "as if the field held its should-be value" / "execute" choice), so they
# retire and must be counted as the loads and stores they are.  Register numbers never decide
# a class, so such a word is disassembled with its registers renamed apart (and, in the
# exclusive/ordered group, its should-be fields set); the Store-Exclusive status register is
# still read from the word itself.
_LDST_MASK, _LDST_VAL = 0x0A000000, 0x08000000      # op0 = x1x0: loads and stores
_EXCL_MASK, _EXCL_VAL = 0x3F000000, 0x08000000      # load/store exclusive, ordered
_PAIR_MASK, _PAIR_VAL = 0x38000000, 0x28000000      # load/store pair
_RT, _RT2, _RS = 0, 10, 16                          # register field positions


def _renamed(word: int) -> list[int]:
    rn = (word >> 5) & 31
    rt2 = (word >> _RT2) & 31
    t = next(r for r in range(3) if r not in (rn, rt2))
    w = (word & ~(31 << _RT)) | (t << _RT)
    out = [w]
    if (word & _PAIR_MASK) == _PAIR_VAL:
        u = next(r for r in range(3, 6) if r != rn)
        out.append((w & ~(31 << _RT2)) | (u << _RT2))
    if (word & _EXCL_MASK) == _EXCL_VAL:
        out.append(w | (31 << _RS) | (31 << _RT2))
    return out


def _disasm(word: int, addr: int) -> list:
    res = list(_md.disasm_lite(word.to_bytes(4, "little"), addr))
    if not res and (word & _LDST_MASK) == _LDST_VAL:
        for alt in _renamed(word):
            res = list(_md.disasm_lite(alt.to_bytes(4, "little"), addr))
            if res:
                break
    return res


def _simd_operand(ops: str) -> bool:
    """The first operand is a SIMD&FP register (v0.., q0.., d0.., s0.., h0.., b0..)."""
    return len(ops) > 1 and ops[0] in "vqdsbh" and ops[1].isdigit()


def _target(op_str: str) -> int:
    return int(op_str.rsplit("#", 1)[1], 16)


def classify_word(addr: int, word: int, cycles: CycleModel) -> Insn:
    inc = [0] * C.NS
    inc[C.S_INST] = 1
    res = _disasm(word, addr)
    mnem, ops = (res[0][2], res[0][3]) if res else ("(undefined)", "")
    ins = Insn(addr, word, mnem, ops, ())
    m = mnem
    # --- system instructions from the encoding ---------------------------------------------------
    if (word & 0xFFC00000) == 0xD5000000:
        ins.kind = "system"
        l_bit, op0, op1, crn, crm, op2, rt = regs.insn_fields(word)
        if op0 >= 2:
            k = regs.key(op0, op1, crn, crm, op2)
            h = regs.HANDLER.get(k, 0)
            if h and h < regs.H_OBS_MMU:
                ins.site = (k, bool(l_bit), rt)
            if not l_bit:
                if h == regs.H_OBS_MMU:
                    ins.maint = True
                if k in (regs.BY_NAME["TTBR0_EL1"], regs.BY_NAME["TTBR1_EL1"]):
                    inc[C.S_TTBR] = 1
                if k == regs.key(3, 0, 13, 0, 1):       # CONTEXTIDR_EL1
                    inc[C.S_CID] = 1
        elif op0 == 1 and not l_bit:
            if regs.sys_is_maintenance(op1, crn, crm, op2):
                ins.maint = True
            if op1 == 3 and crn == 7 and crm == 4 and op2 == 1:     # DC ZVA: a store of a block
                inc[C.S_ST] = 1
                ins.nmem = 1
                ins.kind = "store"
                ins.esize = 1                                  # block-aligned: never unaligned
    # --- branches --------------------------------------------------------------------------------
    elif m.startswith("b.") or m in _COND_BRANCH:
        ins.bk, ins.target, ins.kind = L.BK_COND, _target(ops), "branch"
        inc[C.S_BR_IMMED] = inc[C.S_BR] = 1
    elif m == "b":
        ins.bk, ins.target, ins.kind = L.BK_B, _target(ops), "branch"
        inc[C.S_BR_IMMED] = inc[C.S_BR] = inc[C.S_PCW] = 1
    elif m == "bl":
        ins.bk, ins.target, ins.kind = L.BK_BL, _target(ops), "branch"
        inc[C.S_BR_IMMED] = inc[C.S_BR] = inc[C.S_PCW] = 1
    elif m in ("br", "braa", "brab", "braaz", "brabz"):
        ins.bk, ins.kind = L.BK_BR, "branch"
        inc[C.S_BR] = inc[C.S_PCW] = 1
    elif m in ("blr", "blraa", "blrab", "blraaz", "blrabz"):
        ins.bk, ins.kind = L.BK_BLR, "branch"
        inc[C.S_BR] = inc[C.S_PCW] = 1
    elif m in ("ret", "retaa", "retab"):
        ins.bk, ins.kind = L.BK_RET, "branch"
        inc[C.S_BR] = inc[C.S_PCW] = inc[C.S_BR_RETURN] = 1
    elif m in ("eret", "eretaa", "eretab"):
        ins.bk, ins.kind = L.BK_ERET, "branch"
        inc[C.S_EXC_RETURN] = inc[C.S_PCW] = 1
    # --- memory ------------------------------------------------------------------------------------
    elif m.startswith(_ATOMIC_PREFIXES):
        inc[C.S_LD] = inc[C.S_ST] = 1
        ins.nmem = 4 if m.startswith("casp") else 2
        ins.kind = "load"
        ins.esize = element_size(m, ops)
    elif m.startswith("prf"):
        ins.kind = "load"                               # a hint: no access, not a load
    elif m.startswith(_LOAD_PREFIXES):
        inc[C.S_LD] = 1
        ins.nmem = 2 if m.startswith(("ldp", "ldnp", "ldxp", "ldaxp", "ldpsw")) else _reg_list_len(ops)
        ins.kind = "load"
        ins.esize = element_size(m, ops)
    elif m.startswith(_STORE_PREFIXES):
        inc[C.S_ST] = 1
        ins.nmem = 2 if m.startswith(("stp", "stnp", "stxp", "stlxp")) else _reg_list_len(ops)
        ins.kind = "store"
        ins.esize = element_size(m, ops)
        if m.startswith(("stxr", "stlxr", "stxp", "stlxp")):
            ins.excl_rs = (word >> 16) & 31
    elif m in _MUL and not _simd_operand(ops):
        ins.kind = "mul"
    elif m in _DIV:
        ins.kind = "div"
    elif m.startswith("f") or _simd_operand(ops):
        ins.kind = "fp"
    elif m in ("isb", "dsb", "dmb", "wfi", "wfe", "hvc", "smc", "svc", "brk", "hlt"):
        ins.kind = "system"
    inc[C.S_MEM] = ins.nmem
    inc[C.S_OP] = max(1, ins.nmem)
    inc[C.S_UNALIGNED_CAND] = 1 if ins.nmem else 0
    extra = getattr(cycles, ins.kind, 0) if ins.kind != "other" else 0
    inc[C.S_CYC] = cycles.base + extra
    if ins.kind == "branch":
        inc[C.S_STALL_FE] = extra
    elif ins.kind != "other":
        inc[C.S_STALL_BE] = extra
    inc[C.S_STALL] = inc[C.S_STALL_FE] + inc[C.S_STALL_BE]
    ins.inc = tuple(inc)
    return ins


def failed_exclusive(ins: Insn) -> tuple:
    """The class a store-exclusive retires as when it fails: architecturally executed
    (INST_RETIRED, cycles) but neither a store nor a data access (Arm ARM ST_RETIRED)."""
    inc = list(ins.inc)
    inc[C.S_ST] = inc[C.S_MEM] = inc[C.S_UNALIGNED_CAND] = 0
    inc[C.S_OP] = 1
    return tuple(inc) + (ins.bk, 0, ins.esize)

"""Architectural numbers the board and the native hooks share (Arm ARM DDI 0487, QEMU's target/arm).

QEMU's exception numbers as Unicorn hands them to ``UC_HOOK_INTR``, ESR_EL1 exception
classes and ISS bits, PSTATE / SCTLR / SCR bits, the vector-table layout, the system
registers the board reads or writes through Unicorn, and the instruction encodings the
board recognises.  Function ids and operation numbers stay with the one device that
answers them (PSCI/SMCCC in ``smccc.py``, semihosting in ``semihosting.py``).
"""
from __future__ import annotations

from .pmu import regs

# QEMU exception numbers (target/arm/cpu.h EXCP_*) handed to UC_HOOK_INTR
EXCP_UDEF, EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT, EXCP_BKPT = 1, 2, 3, 4, 7
EXCP_SMC = 13

# ESR_EL1 (Arm ARM D17.2.37): EC in bits [31:26], IL = 32-bit instruction
EC_SHIFT = 26
EC_UNKNOWN, EC_SVC64, EC_HVC64, EC_SMC64, EC_BRK64 = 0x00, 0x15, 0x16, 0x17, 0x3C
EC_IABT_LOW, EC_IABT_CUR, EC_DABT_LOW, EC_DABT_CUR = 0x20, 0x21, 0x24, 0x25
EC_SYSREG = 0x18                  # trapped MSR, MRS or System instruction
# debug exceptions (Arm ARM D2.8-D2.12): from a lower EL / from the current EL
EC_BREAKPOINT_LOW, EC_BREAKPOINT_CUR = 0x30, 0x31
EC_SOFTSTEP_LOW, EC_SOFTSTEP_CUR = 0x32, 0x33
EC_WATCHPOINT_LOW, EC_WATCHPOINT_CUR = 0x34, 0x35
FSC_DEBUG = 0x22                  # DFSC/IFSC 0b100010: debug exception
IL = 1 << 25
ESR_UNKNOWN = (EC_UNKNOWN << EC_SHIFT) | IL     # an UNDEFINED instruction
# instruction/data abort ISS
FSC_SEA = 0x10                    # DFSC/IFSC 0b010000: synchronous external abort
ISS_WNR = 1 << 6                  # the abort was caused by a write
ISS_FNV = 1 << 10                 # FAR not valid

# PSTATE (as Unicorn's UC_ARM64_REG_PSTATE and SPSR_ELx lay it out)
PSTATE_EL_SHIFT = 2
PSTATE_SP = 1
PSTATE_DAIF = 0x3C0
PSTATE_I = 0x80
PSTATE_D = 0x200                  # debug exceptions masked (at the debug target EL)
PSTATE_SS = 1 << 21               # software step: 1 = active-not-pending (Arm ARM D2.12.3)

SCTLR_M = 1                       # stage 1 translation enabled
SCTLR_UMA = 1 << 9                # EL0 may access PSTATE.DAIF
SCR_RW = 1 << 10                  # the next lower EL is AArch64
SCTLR_DZE = 1 << 14               # EL0 may execute DC ZVA
TCR_TBI0, TCR_TBI1 = 1 << 37, 1 << 38     # top byte ignored for addresses in TTBR0 / TTBR1

# MDSCR_EL1 (Arm ARM D17.3.x): software step, kernel debug enable, monitor debug enable
MDSCR_SS, MDSCR_KDE, MDSCR_MDE = 1 << 0, 1 << 13, 1 << 15

# exception vectors (Arm ARM D1.10.2): table base by where the exception came from, + kind
VEC_CUR_SP0, VEC_CUR_SPX, VEC_LOWER_A64 = 0x000, 0x200, 0x400
VEC_SYNC, VEC_IRQ = 0x000, 0x080
VBAR_ALIGN = 0x7FF                # VBAR_EL1[10:0] are RES0

# system registers as Unicorn's cpr_read/cpr_write take them: (op0, op1, crn, crm, op2);
# the ones the board also claims come from the encoding table in vpmu.pmu.regs
SCTLR_EL1 = regs.fields(regs.BY_NAME["SCTLR_EL1"])
ID_AA64DFR0_EL1 = regs.fields(regs.BY_NAME["ID_AA64DFR0_EL1"])
ID_DFR0_EL1 = regs.fields(regs.BY_NAME["ID_DFR0_EL1"])
SPSR_EL1 = (3, 0, 4, 0, 0)
MDSCR_EL1 = regs.fields(regs.BY_NAME["MDSCR_EL1"])
TCR_EL1 = regs.fields(regs.BY_NAME["TCR_EL1"])
CONTEXTIDR_EL1 = (3, 0, 13, 0, 1)
DCZID_EL0 = (3, 3, 0, 0, 7)
SCR_EL3 = (3, 6, 1, 1, 0)

# instruction encodings
INSN_SIZE = 4
WFI = 0xD503207F
HVC_MASK, HVC = 0xFFE0001F, 0xD4000002          # HVC #imm16 (imm16 in bits [20:5])
HVC_SMCCC = 0                                   # HVC #0: the SMCCC conduit
HVC_XEN = 0xEA1                                 # HVC #0xEA1: a Xen hypercall (XEN_HYPERCALL_TAG)
BRK = 0xD4200000                                # BRK #imm16 (imm16 in bits [20:5])
HLT_SEMIHOSTING = 0xD45E0000                    # HLT #0xF000: A64 semihosting trap
MSR_MRS_MASK, MSR_MRS = 0xFFD00000, 0xD5100000  # MSR/MRS (register), op0 = 2 or 3
MSR_DAIF_MASK, MSR_DAIF = 0xFFFFF0DF, 0xD50340DF    # MSR (immediate), op1 = 3, CRn = 4
DC_ZVA_MASK, DC_ZVA = 0xFFFFFFE0, 0xD50B7420        # DC ZVA, Xt
DAIFSET_OP2, DAIFCLR_OP2 = 6, 7


def hvc_imm(word: int) -> int:
    return (word >> 5) & 0xFFFF


def sysreg_iss(op0: int, op1: int, crn: int, crm: int, op2: int, rt: int, is_read: bool) -> int:
    """ESR for EC 0x18 (Arm ARM D17.2.37: Op0, Op2, Op1, CRn, Rt, CRm, Direction)."""
    return ((EC_SYSREG << EC_SHIFT) | IL | op0 << 20 | op2 << 17 | op1 << 14 | crn << 10 | rt << 5
            | crm << 1 | int(is_read))

"""System-register encodings the board claims: one literal, aligned table.

The key of a register is Linux's ``sys_reg()`` packing ``op0<<14 | op1<<11 | crn<<7 |
crm<<3 | op2`` (PMCCNTR_EL0 = 0xDCE8).  Unicorn hands hooks a ``uc_arm64_cp_reg`` in
``(crn, crm, op0, op1, op2)`` order; :func:`key_from_cp` is the only conversion.

Each claimed register has a *handler* id (``H_*``, compile-time constants for the
numba kernels) and an EL0 access rule.  PMEVCNTR<n>/PMEVTYPER<n> use one handler each;
the counter index is decoded from the key with :func:`pmev_index` (the same formula
that :func:`pmevcntr_key` / :func:`pmevtyper_key` use to encode).
"""
from __future__ import annotations

import numpy as np


def key(op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
    return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2


def key_from_cp(crn: int, crm: int, op0: int, op1: int, op2: int) -> int:
    """Unicorn's uc_arm64_cp_reg field order -> key."""
    return key(op0, op1, crn, crm, op2)


def insn_fields(word: int) -> tuple[bool, int, int, int, int, int, int]:
    """A system instruction's encoding (MSR/MRS, SYS, MSR immediate: 0xD5xxxxxx) ->
    (L = is a read, op0, op1, crn, crm, op2, rt)."""
    return (bool((word >> 21) & 1), (word >> 19) & 3, (word >> 16) & 7, (word >> 12) & 15, (word >> 8) & 15,
            (word >> 5) & 7, word & 31)


def fields(k: int) -> tuple[int, int, int, int, int]:
    """key -> (op0, op1, crn, crm, op2)."""
    return (k >> 14) & 3, (k >> 11) & 7, (k >> 7) & 15, (k >> 3) & 15, k & 7


def pmevcntr_key(n: int) -> int:
    return key(3, 3, 14, 8 | (n >> 3), n & 7)


def pmevtyper_key(n: int) -> int:
    return key(3, 3, 14, 12 | (n >> 3), n & 7)


def pmev_index(k: int) -> int:
    """Counter index n of a PMEVCNTR<n>/PMEVTYPER<n> key (CRm[1:0]:op2)."""
    return ((k >> 3) & 3) << 3 | (k & 7)


# ---- handler ids -------------------------------------------------------------------------
# 0 = not claimed (Unicorn/QEMU handles it).  1..63: PMU (native), 64..95: timers (native
# reads, Python writes), 96..127: Python devices (GIC CPU interface, self-hosted debug),
# 128..: ID registers (native), 160..: observed-only writes (native bookkeeping, then Unicorn
# performs them).
H_NONE = 0
H_PMCR, H_PMCNTENSET, H_PMCNTENCLR, H_PMOVSCLR, H_PMSWINC, H_PMSELR, H_PMCEID0, H_PMCEID1 = 1, 2, 3, 4, 5, 6, 7, 8
H_PMCCNTR, H_PMXEVTYPER, H_PMXEVCNTR, H_PMUSERENR, H_PMINTENSET, H_PMINTENCLR, H_PMOVSSET = 9, 10, 11, 12, 13, 14, 15
H_PMMIR, H_PMEVCNTR, H_PMEVTYPER, H_PMCCFILTR = 16, 17, 18, 19
H_PMU_FIRST, H_PMU_LAST = H_PMCR, H_PMCCFILTR

H_CNTFRQ, H_CNTPCT, H_CNTVCT, H_CNTKCTL = 64, 65, 66, 67
H_CNTP_TVAL, H_CNTP_CTL, H_CNTP_CVAL, H_CNTV_TVAL, H_CNTV_CTL, H_CNTV_CVAL = 68, 69, 70, 71, 72, 73
H_TIMER_FIRST, H_TIMER_LAST = H_CNTFRQ, H_CNTV_CVAL

H_ICC = 96          # every ICC_* register: Python (vpmu.board.gic) decodes the key
H_DEBUG = 97        # watchpoints, MDSCR, the OS lock: Python (vpmu.board.debug) decodes the key
WATCHPOINTS = 4     # DBGWVR/DBGWCR<n>_EL1 the CPU model has (cortex-a57: ID_AA64DFR0_EL1.WRPs + 1)
H_ID_AA64DFR0, H_ID_DFR0 = 128, 129
H_ID_FIRST, H_ID_LAST = H_ID_AA64DFR0, H_ID_DFR0

H_OBS_MMU = 160     # SCTLR/TTBR/TCR writes: the block cache is flushed, QEMU performs the write
H_OBS_CACHE = 161   # IC / TLBI maintenance (SYS): the block cache is flushed

# ---- register fields the model uses ------------------------------------------------------------
# PMCR_EL0 bits [7:0] (N, IDCODE and IMP are computed on read)
PMCR_E, PMCR_P, PMCR_C, PMCR_D, PMCR_X, PMCR_DP, PMCR_LC, PMCR_LP = 1, 2, 4, 8, 16, 32, 64, 128
# PMEVTYPER<n>_EL0 / PMCCFILTR_EL0 exception-level filter bits
TY_P, TY_U = 1 << 31, 1 << 30

# ---- EL0 access rules (kvm-pmu.md 3.1; Arm ARM for the timers) ---------------------------------
# A rule is (read_need, write_need): a bitmask that PMUSERENR (PMU) or CNTKCTL (timers)
# must intersect for an EL0 access to be allowed; ALWAYS = no requirement; NEVER = UNDEF.
PMU_EN, PMU_SW, PMU_CR, PMU_ER = 1, 2, 4, 8
ALWAYS, NEVER = 0, 0x7FFF
# CNTKCTL_EL1 bits: EL0PCTEN 0, EL0VCTEN 1, EL0VTEN 8, EL0PTEN 9
K_PCTEN, K_VCTEN, K_VTEN, K_PTEN = 1, 2, 0x100, 0x200

#            name                 op0 op1 crn crm op2  handler           EL0 read        EL0 write
_TABLE = [
    ("PMCR_EL0",               3, 3, 9, 12, 0, H_PMCR,           PMU_EN,         PMU_EN),
    ("PMCNTENSET_EL0",         3, 3, 9, 12, 1, H_PMCNTENSET,     PMU_EN,         PMU_EN),
    ("PMCNTENCLR_EL0",         3, 3, 9, 12, 2, H_PMCNTENCLR,     PMU_EN,         PMU_EN),
    ("PMOVSCLR_EL0",           3, 3, 9, 12, 3, H_PMOVSCLR,       PMU_EN,         PMU_EN),
    ("PMSWINC_EL0",            3, 3, 9, 12, 4, H_PMSWINC,        NEVER,          PMU_EN | PMU_SW),
    ("PMSELR_EL0",             3, 3, 9, 12, 5, H_PMSELR,         PMU_EN | PMU_ER, PMU_EN | PMU_ER),
    ("PMCEID0_EL0",            3, 3, 9, 12, 6, H_PMCEID0,        PMU_EN,         NEVER),
    ("PMCEID1_EL0",            3, 3, 9, 12, 7, H_PMCEID1,        PMU_EN,         NEVER),
    ("PMCCNTR_EL0",            3, 3, 9, 13, 0, H_PMCCNTR,        PMU_EN | PMU_CR, PMU_EN),
    ("PMXEVTYPER_EL0",         3, 3, 9, 13, 1, H_PMXEVTYPER,     PMU_EN,         PMU_EN),
    ("PMXEVCNTR_EL0",          3, 3, 9, 13, 2, H_PMXEVCNTR,      PMU_EN | PMU_ER, PMU_EN),
    ("PMUSERENR_EL0",          3, 3, 9, 14, 0, H_PMUSERENR,      ALWAYS,         NEVER),
    ("PMINTENSET_EL1",         3, 0, 9, 14, 1, H_PMINTENSET,     NEVER,          NEVER),
    ("PMINTENCLR_EL1",         3, 0, 9, 14, 2, H_PMINTENCLR,     NEVER,          NEVER),
    ("PMOVSSET_EL0",           3, 3, 9, 14, 3, H_PMOVSSET,       PMU_EN,         PMU_EN),
    ("PMMIR_EL1",              3, 0, 9, 14, 6, H_PMMIR,          NEVER,          NEVER),
    ("PMCCFILTR_EL0",          3, 3, 14, 15, 7, H_PMCCFILTR,     PMU_EN,         PMU_EN),
    ("CNTFRQ_EL0",             3, 3, 14, 0, 0, H_CNTFRQ,         K_PCTEN | K_VCTEN, NEVER),
    ("CNTPCT_EL0",             3, 3, 14, 0, 1, H_CNTPCT,         K_PCTEN,        NEVER),
    ("CNTVCT_EL0",             3, 3, 14, 0, 2, H_CNTVCT,         K_VCTEN,        NEVER),
    ("CNTKCTL_EL1",            3, 0, 14, 1, 0, H_CNTKCTL,        NEVER,          NEVER),
    ("CNTP_TVAL_EL0",          3, 3, 14, 2, 0, H_CNTP_TVAL,      K_PTEN,         K_PTEN),
    ("CNTP_CTL_EL0",           3, 3, 14, 2, 1, H_CNTP_CTL,       K_PTEN,         K_PTEN),
    ("CNTP_CVAL_EL0",          3, 3, 14, 2, 2, H_CNTP_CVAL,      K_PTEN,         K_PTEN),
    ("CNTV_TVAL_EL0",          3, 3, 14, 3, 0, H_CNTV_TVAL,      K_VTEN,         K_VTEN),
    ("CNTV_CTL_EL0",           3, 3, 14, 3, 1, H_CNTV_CTL,       K_VTEN,         K_VTEN),
    ("CNTV_CVAL_EL0",          3, 3, 14, 3, 2, H_CNTV_CVAL,      K_VTEN,         K_VTEN),
    ("ID_AA64DFR0_EL1",        3, 0, 0, 5, 0, H_ID_AA64DFR0,     NEVER,          NEVER),
    ("ID_DFR0_EL1",            3, 0, 0, 1, 2, H_ID_DFR0,         NEVER,          NEVER),
    ("ICC_PMR_EL1",            3, 0, 4, 6, 0, H_ICC,             NEVER,          NEVER),
    ("ICC_IAR0_EL1",           3, 0, 12, 8, 0, H_ICC,            NEVER,          NEVER),
    ("ICC_EOIR0_EL1",          3, 0, 12, 8, 1, H_ICC,            NEVER,          NEVER),
    ("ICC_HPPIR0_EL1",         3, 0, 12, 8, 2, H_ICC,            NEVER,          NEVER),
    ("ICC_BPR0_EL1",           3, 0, 12, 8, 3, H_ICC,            NEVER,          NEVER),
    ("ICC_AP0R0_EL1",          3, 0, 12, 8, 4, H_ICC,            NEVER,          NEVER),
    ("ICC_AP1R0_EL1",          3, 0, 12, 9, 0, H_ICC,            NEVER,          NEVER),
    ("ICC_DIR_EL1",            3, 0, 12, 11, 1, H_ICC,           NEVER,          NEVER),
    ("ICC_RPR_EL1",            3, 0, 12, 11, 3, H_ICC,           NEVER,          NEVER),
    ("ICC_SGI1R_EL1",          3, 0, 12, 11, 5, H_ICC,           NEVER,          NEVER),
    ("ICC_ASGI1R_EL1",         3, 0, 12, 11, 6, H_ICC,           NEVER,          NEVER),
    ("ICC_SGI0R_EL1",          3, 0, 12, 11, 7, H_ICC,           NEVER,          NEVER),
    ("ICC_IAR1_EL1",           3, 0, 12, 12, 0, H_ICC,           NEVER,          NEVER),
    ("ICC_EOIR1_EL1",          3, 0, 12, 12, 1, H_ICC,           NEVER,          NEVER),
    ("ICC_HPPIR1_EL1",         3, 0, 12, 12, 2, H_ICC,           NEVER,          NEVER),
    ("ICC_BPR1_EL1",           3, 0, 12, 12, 3, H_ICC,           NEVER,          NEVER),
    ("ICC_CTLR_EL1",           3, 0, 12, 12, 4, H_ICC,           NEVER,          NEVER),
    ("ICC_SRE_EL1",            3, 0, 12, 12, 5, H_ICC,           NEVER,          NEVER),
    ("ICC_IGRPEN0_EL1",        3, 0, 12, 12, 6, H_ICC,           NEVER,          NEVER),
    ("ICC_IGRPEN1_EL1",        3, 0, 12, 12, 7, H_ICC,           NEVER,          NEVER),
    ("MDSCR_EL1",              2, 0, 0, 2, 2, H_DEBUG,           NEVER,          NEVER),
    ("OSLAR_EL1",              2, 0, 1, 0, 4, H_DEBUG,           NEVER,          NEVER),
    ("OSLSR_EL1",              2, 0, 1, 1, 4, H_DEBUG,           NEVER,          NEVER),
    ("OSDLR_EL1",              2, 0, 1, 3, 4, H_DEBUG,           NEVER,          NEVER),
    ("SCTLR_EL1",              3, 0, 1, 0, 0, H_OBS_MMU,         NEVER,          NEVER),
    ("TTBR0_EL1",              3, 0, 2, 0, 0, H_OBS_MMU,         NEVER,          NEVER),
    ("TTBR1_EL1",              3, 0, 2, 0, 1, H_OBS_MMU,         NEVER,          NEVER),
    ("TCR_EL1",                3, 0, 2, 0, 2, H_OBS_MMU,         NEVER,          NEVER),
]

NAMES: dict[int, str] = {}
HANDLER: dict[int, int] = {}
EL0_READ: dict[int, int] = {}
EL0_WRITE: dict[int, int] = {}
BY_NAME: dict[str, int] = {}

for _name, _op0, _op1, _crn, _crm, _op2, _h, _r, _w in _TABLE:
    _k = key(_op0, _op1, _crn, _crm, _op2)
    NAMES[_k], HANDLER[_k], EL0_READ[_k], EL0_WRITE[_k], BY_NAME[_name] = _name, _h, _r, _w, _k

for _n in range(31):
    for _name, _k, _h in ((f"PMEVCNTR{_n}_EL0", pmevcntr_key(_n), H_PMEVCNTR),
                          (f"PMEVTYPER{_n}_EL0", pmevtyper_key(_n), H_PMEVTYPER)):
        NAMES[_k], HANDLER[_k], BY_NAME[_name] = _name, _h, _k
        EL0_READ[_k] = PMU_EN | PMU_ER if _h == H_PMEVCNTR else PMU_EN
        EL0_WRITE[_k] = PMU_EN
for _n in range(WATCHPOINTS):
    for _name, _k in ((f"DBGWVR{_n}_EL1", key(2, 0, 0, _n, 6)), (f"DBGWCR{_n}_EL1", key(2, 0, 0, _n, 7))):
        NAMES[_k], HANDLER[_k], EL0_READ[_k], EL0_WRITE[_k], BY_NAME[_name] = _name, H_DEBUG, NEVER, NEVER, _k
for _n in range(1, 4):      # the remaining active-priority registers
    for _name, _k in ((f"ICC_AP0R{_n}_EL1", key(3, 0, 12, 8, 4 + _n)), (f"ICC_AP1R{_n}_EL1", key(3, 0, 12, 9, _n))):
        NAMES[_k], HANDLER[_k], EL0_READ[_k], EL0_WRITE[_k], BY_NAME[_name] = _name, H_ICC, NEVER, NEVER, _k

# SYS instructions (op0 = 1) whose execution invalidates what we derived from code:
# IC IALLUIS / IC IALLU / IC IVAU, and every TLBI (CRn = 8).
def sys_is_maintenance(op1: int, crn: int, crm: int, op2: int) -> bool:
    if crn == 7 and ((op1 == 0 and crm in (1, 5) and op2 == 0) or (op1 == 3 and crm == 5 and op2 == 1)):
        return True
    return crn == 8


def handler_table() -> np.ndarray:
    """Dense key -> handler table (uint8[65536]) for the native hooks."""
    t = np.zeros(1 << 16, dtype=np.uint8)
    for k, h in HANDLER.items():
        t[k] = h
    return t


# Read-only and write-only registers: the other direction is UNDEFINED at every EL.
READ_ONLY = {BY_NAME[n] for n in ("PMCEID0_EL0", "PMCEID1_EL0", "PMMIR_EL1", "CNTFRQ_EL0", "CNTPCT_EL0",
                                 "CNTVCT_EL0", "ID_AA64DFR0_EL1", "ID_DFR0_EL1", "OSLSR_EL1", "ICC_IAR0_EL1",
                                 "ICC_IAR1_EL1", "ICC_HPPIR0_EL1", "ICC_HPPIR1_EL1", "ICC_RPR_EL1")}
WRITE_ONLY = {BY_NAME[n] for n in ("PMSWINC_EL0", "OSLAR_EL1", "ICC_EOIR0_EL1", "ICC_EOIR1_EL1", "ICC_DIR_EL1",
                                  "ICC_SGI1R_EL1", "ICC_ASGI1R_EL1", "ICC_SGI0R_EL1")}
RULE_RO, RULE_WO = 1 << 30, 1 << 31
# the engine's CPU model translates the access as "unallocated" (native.unimplemented): the
# hook that performs it must advance the PC itself
RULE_NOIMP_READ, RULE_NOIMP_WRITE = 1 << 32, 1 << 33


def el0_rule_table() -> np.ndarray:
    """Dense key -> access rule (uint32[65536]): bits 0..14 the EL0 read need, bits 15..29
    the EL0 write need (NEVER = UNDEF at EL0), RULE_RO / RULE_WO = UNDEF at every EL."""
    t = np.zeros(1 << 16, dtype=np.uint32)
    for k in HANDLER:
        t[k] = EL0_READ[k] | (EL0_WRITE[k] << 15) | (RULE_RO if k in READ_ONLY else 0) \
            | (RULE_WO if k in WRITE_ONLY else 0)
    return t


def name(k: int) -> str:
    return NAMES.get(k, "S%d_%d_C%d_C%d_%d" % fields(k))

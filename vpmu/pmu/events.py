"""The event catalogue: number, Arm name, definition, how vpmu derives it.

One table drives both counting and PMCEID0/1 (what is advertised cannot drift from
what is counted, as in QEMU's pm_events table).  The whole common architected range
0x00-0x3F is listed in order, with the events vpmu does not implement marked as such,
plus the 0x4000 common range.  Definitions quote the Arm ARM's short descriptions;
the "derived" column says exactly how this emulator produces the count (see
docs/events.md for the long form and every decision).  The Cortex-A57's
IMPLEMENTATION DEFINED events (names only, not counted) follow the common ones.

Every event name lives here; :mod:`vpmu.pmu.perfnames` derives Linux perf's spellings
(``instructions``, ``r10``, ``armv8_pmuv3_0/br_mis_pred/``, ...) from these names, and its
:func:`~vpmu.pmu.perfnames.event_number` is the one parser of event names.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import channels as C


@dataclass(frozen=True)
class Event:
    number: int
    name: str
    definition: str
    derived: str = ""                 # empty = not implemented
    static: int = -1                  # static channel (vpmu.pmu.channels.S_*) or -1
    dynamic: int = -1                 # dynamic channel (D_*) or -1
    min_pmuver: int = 1               # ID_AA64DFR0_EL1.PMUVer that introduced the event
    special: str = ""                 # "sw_incr" | "chain" for the two software events

    @property
    def implemented(self) -> bool:
        return bool(self.derived)


_I = C  # short alias for the table below

# fmt: off
#  number  name                       definition (Arm ARM short description)                          derived by vpmu                                                   static            dynamic            min
_COMMON = [
    (0x00, "SW_INCR",                 "Instruction architecturally executed, condition code check pass, software increment",
                                      "PMSWINC_EL0 writes to counters programmed with event 0",             -1, -1, 1, "sw_incr"),
    (0x01, "L1I_CACHE_REFILL",        "Level 1 instruction cache refill",
                                      "L1I cache model: line misses of instruction fetches",                -1, _I.D_L1I_REFILL, 1, ""),
    (0x02, "L1I_TLB_REFILL",          "Level 1 instruction TLB refill", "", -1, -1, 1, ""),
    (0x03, "L1D_CACHE_REFILL",        "Level 1 data cache refill",
                                      "L1D cache model: line misses of data accesses (memory hooks)",      -1, _I.D_L1D_REFILL, 1, ""),
    (0x04, "L1D_CACHE",               "Level 1 data cache access",
                                      "data accesses to RAM, counted as MEM_ACCESS counts them (Device accesses excluded; memory hooks)", -1, _I.D_L1D_ACCESS, 1, ""),
    (0x05, "L1D_TLB_REFILL",          "Level 1 data TLB refill", "", -1, -1, 1, ""),
    (0x06, "LD_RETIRED",              "Instruction architecturally executed, condition code check pass, load",
                                      "load instructions retired (classification table)",                  _I.S_LD, -1, 1, ""),
    (0x07, "ST_RETIRED",              "Instruction architecturally executed, condition code check pass, store",
                                      "store instructions retired (classification table)",                 _I.S_ST, -1, 1, ""),
    (0x08, "INST_RETIRED",            "Instruction architecturally executed",
                                      "instructions retired",                                              _I.S_INST, -1, 1, ""),
    (0x09, "EXC_TAKEN",               "Exception taken",
                                      "exceptions (synchronous and IRQ) taken to EL1",                     -1, _I.D_EXC_TAKEN, 1, ""),
    (0x0A, "EXC_RETURN",              "Instruction architecturally executed, condition code check pass, exception return",
                                      "ERET retired",                                                      _I.S_EXC_RETURN, -1, 1, ""),
    (0x0B, "CID_WRITE_RETIRED",       "Instruction architecturally executed, condition code check pass, write to CONTEXTIDR",
                                      "MSR CONTEXTIDR_EL1 retired",                                        _I.S_CID, -1, 1, ""),
    (0x0C, "PC_WRITE_RETIRED",        "Instruction architecturally executed, condition code check pass, software change of the PC",
                                      "taken branches (all kinds) and ERET retired",                      _I.S_PCW, _I.D_PCW, 1, ""),
    (0x0D, "BR_IMMED_RETIRED",        "Instruction architecturally executed, immediate branch",
                                      "B, BL, B.cond, CBZ/CBNZ, TBZ/TBNZ retired, taken or not",           _I.S_BR_IMMED, -1, 1, ""),
    (0x0E, "BR_RETURN_RETIRED",       "Instruction architecturally executed, condition code check pass, procedure return",
                                      "RET retired",                                                       _I.S_BR_RETURN, -1, 1, ""),
    (0x0F, "UNALIGNED_LDST_RETIRED",  "Instruction architecturally executed, condition code check pass, unaligned load or store",
                                      "load/store instructions with an access not aligned to its size (memory hooks)", -1, _I.D_UNALIGNED, 1, ""),
    (0x10, "BR_MIS_PRED",             "Mispredicted or not predicted branch speculatively executed",
                                      "branch predictor model mispredictions (no speculation: = BR_MIS_PRED_RETIRED)", -1, _I.D_MISPRED, 1, ""),
    (0x11, "CPU_CYCLES",              "Cycle",
                                      "cycle model: base + class cycles + penalties",                      _I.S_CYC, _I.D_CYC, 1, ""),
    (0x12, "BR_PRED",                 "Predictable branch speculatively executed",
                                      "every branch is predictable (= BR_RETIRED)",                        _I.S_BR, -1, 1, ""),
    (0x13, "MEM_ACCESS",              "Data memory access",
                                      "architectural data accesses of retired instructions (classification table)", _I.S_MEM, -1, 1, ""),
    (0x14, "L1I_CACHE",               "Level 1 instruction cache access",
                                      "one instruction fetch per retired instruction",                     _I.S_INST, -1, 1, ""),
    (0x15, "L1D_CACHE_WB",            "Level 1 data cache write-back",
                                      "L1D cache model: dirty lines evicted (memory hooks)",               -1, _I.D_L1D_WB, 1, ""),
    (0x16, "L2D_CACHE",               "Level 2 data cache access", "", -1, -1, 1, ""),
    (0x17, "L2D_CACHE_REFILL",        "Level 2 data cache refill", "", -1, -1, 1, ""),
    (0x18, "L2D_CACHE_WB",            "Level 2 data cache write-back", "", -1, -1, 1, ""),
    (0x19, "BUS_ACCESS",              "Bus access", "", -1, -1, 1, ""),
    (0x1A, "MEMORY_ERROR",            "Local memory error", "", -1, -1, 1, ""),
    (0x1B, "INST_SPEC",               "Operation speculatively executed",
                                      "no speculation: = INST_RETIRED",                                    _I.S_INST, -1, 1, ""),
    (0x1C, "TTBR_WRITE_RETIRED",      "Instruction architecturally executed, condition code check pass, write to TTBR",
                                      "MSR TTBR0_EL1/TTBR1_EL1 retired",                                   _I.S_TTBR, -1, 1, ""),
    (0x1D, "BUS_CYCLES",              "Bus cycle", "", -1, -1, 1, ""),
    (0x1E, "CHAIN",                   "For an odd-numbered counter, increment when an overflow occurs on the preceding even-numbered counter",
                                      "overflow of the even neighbour (32-bit overflow only)",             -1, -1, 1, "chain"),
    (0x1F, "L1D_CACHE_ALLOCATE",      "Level 1 data cache allocation without refill", "", -1, -1, 1, ""),
    (0x20, "L2D_CACHE_ALLOCATE",      "Level 2 data cache allocation without refill", "", -1, -1, 1, ""),
    (0x21, "BR_RETIRED",              "Instruction architecturally executed, branch",
                                      "branch instructions retired, taken or not (not ERET)",              _I.S_BR, -1, 1, ""),
    (0x22, "BR_MIS_PRED_RETIRED",     "Instruction architecturally executed, mispredicted branch",
                                      "branch predictor model mispredictions",                             -1, _I.D_MISPRED, 1, ""),
    (0x23, "STALL_FRONTEND",          "No operation issued because of the frontend",
                                      "cycle model: extra branch cycles + mispredict and L1I refill penalties", _I.S_STALL_FE, _I.D_STALL_FE, 4, ""),
    (0x24, "STALL_BACKEND",           "No operation issued because of the backend",
                                      "cycle model: extra load/store/mul/div/fp/system cycles + L1D penalties", _I.S_STALL_BE, _I.D_STALL_BE, 4, ""),
    (0x25, "L1D_TLB",                 "Level 1 data TLB access", "", -1, -1, 1, ""),
    (0x26, "L1I_TLB",                 "Level 1 instruction TLB access", "", -1, -1, 1, ""),
    (0x27, "L2I_CACHE",               "Level 2 instruction cache access", "", -1, -1, 1, ""),
    (0x28, "L2I_CACHE_REFILL",        "Level 2 instruction cache refill", "", -1, -1, 1, ""),
    (0x29, "L3D_CACHE_ALLOCATE",      "Level 3 data cache allocation without refill", "", -1, -1, 1, ""),
    (0x2A, "L3D_CACHE_REFILL",        "Level 3 data cache refill", "", -1, -1, 1, ""),
    (0x2B, "L3D_CACHE",               "Level 3 data cache access", "", -1, -1, 1, ""),
    (0x2C, "L3D_CACHE_WB",            "Level 3 data cache write-back", "", -1, -1, 1, ""),
    (0x2D, "L2D_TLB_REFILL",          "Level 2 data TLB refill", "", -1, -1, 1, ""),
    (0x2E, "L2I_TLB_REFILL",          "Level 2 instruction TLB refill", "", -1, -1, 1, ""),
    (0x2F, "L2D_TLB",                 "Level 2 data TLB access", "", -1, -1, 1, ""),
    (0x30, "L2I_TLB",                 "Level 2 instruction TLB access", "", -1, -1, 1, ""),
    (0x31, "REMOTE_ACCESS",           "Access to another socket in a multi-socket system", "", -1, -1, 1, ""),
    (0x32, "LL_CACHE",                "Last level cache access", "", -1, -1, 1, ""),
    (0x33, "LL_CACHE_MISS",           "Last level cache miss", "", -1, -1, 1, ""),
    (0x34, "DTLB_WALK",               "Data TLB access with at least one translation table walk", "", -1, -1, 1, ""),
    (0x35, "ITLB_WALK",               "Instruction TLB access with at least one translation table walk", "", -1, -1, 1, ""),
    (0x36, "LL_CACHE_RD",             "Last level cache access, read", "", -1, -1, 1, ""),
    (0x37, "LL_CACHE_MISS_RD",        "Last level cache miss, read", "", -1, -1, 1, ""),
    (0x38, "REMOTE_ACCESS_RD",        "Access to another socket in a multi-socket system, read", "", -1, -1, 1, ""),
    (0x39, "L1D_CACHE_LMISS_RD",      "Level 1 data cache long-latency read miss", "", -1, -1, 5, ""),
    (0x3A, "OP_RETIRED",              "Micro-operation architecturally executed",
                                      "one micro-operation per instruction (pairs and multi-register transfers: one per register)", _I.S_OP, -1, 5, ""),
    (0x3B, "OP_SPEC",                 "Micro-operation speculatively executed",
                                      "no speculation: = OP_RETIRED",                                      _I.S_OP, -1, 5, ""),
    (0x3C, "STALL",                   "No operation sent for execution",
                                      "cycle model: STALL_FRONTEND + STALL_BACKEND",                       _I.S_STALL, _I.D_STALL, 5, ""),
    (0x3D, "STALL_SLOT_BACKEND",      "No operation sent for execution on a slot due to the backend", "", -1, -1, 5, ""),
    (0x3E, "STALL_SLOT_FRONTEND",     "No operation sent for execution on a slot due to the frontend", "", -1, -1, 5, ""),
    (0x3F, "STALL_SLOT",              "No operation sent for execution on a slot", "", -1, -1, 5, ""),
    # ---- common events in the 0x4000 range (PMCEID0/1 high halves, PMUv3p1+) ----------------
    (0x4000, "SAMPLE_POP",            "Statistical Profiling sample population", "", -1, -1, 4, ""),
    (0x4001, "SAMPLE_FEED",           "Statistical Profiling sample taken", "", -1, -1, 4, ""),
    (0x4002, "SAMPLE_FILTRATE",       "Statistical Profiling sample taken and not removed by filtering", "", -1, -1, 4, ""),
    (0x4003, "SAMPLE_COLLISION",      "Statistical Profiling sample collided with previous sample", "", -1, -1, 4, ""),
    (0x4004, "CNT_CYCLES",            "Constant frequency cycles",
                                      "ticks of the generic timer clock (CNTFRQ) derived from the cycle model", -1, _I.D_CNT_CYCLES, 5, ""),
    (0x4005, "STALL_BACKEND_MEM",     "Memory stall cycles", "", -1, -1, 5, ""),
    (0x4006, "L1I_CACHE_LMISS",       "Level 1 instruction cache long-latency miss",
                                      "every L1I refill of the cache model (single-level model)",          -1, _I.D_L1I_REFILL, 5, ""),
    (0x4009, "L2D_CACHE_LMISS_RD",    "Level 2 data cache long-latency read miss", "", -1, -1, 5, ""),
    (0x400A, "L2I_CACHE_LMISS",       "Level 2 instruction cache long-latency miss", "", -1, -1, 5, ""),
    (0x400B, "L3D_CACHE_LMISS_RD",    "Level 3 data cache long-latency read miss", "", -1, -1, 5, ""),
    (0x400C, "TRB_WRAP",              "Trace buffer current write pointer wrapped", "", -1, -1, 5, ""),
    (0x400D, "PMU_OVFS",              "PMU overflow, counters accessible to EL1 and EL0",
                                      "counter overflows (any counter, including the cycle counter)",      -1, _I.D_PMU_OVFS, 5, ""),
    (0x400E, "TRB_TRIG",              "Trace buffer Trigger Event", "", -1, -1, 5, ""),
    (0x400F, "PMU_HOVFS",             "PMU overflow, counters reserved for use by EL2", "", -1, -1, 5, ""),
    (0x4010, "TRCEXTOUT0",            "PE Trace Unit external output 0", "", -1, -1, 5, ""),
    (0x4011, "TRCEXTOUT1",            "PE Trace Unit external output 1", "", -1, -1, 5, ""),
    (0x4012, "TRCEXTOUT2",            "PE Trace Unit external output 2", "", -1, -1, 5, ""),
    (0x4013, "TRCEXTOUT3",            "PE Trace Unit external output 3", "", -1, -1, 5, ""),
    (0x4018, "CTI_TRIGOUT4",          "Cross-trigger Interface output trigger 4", "", -1, -1, 5, ""),
    (0x4019, "CTI_TRIGOUT5",          "Cross-trigger Interface output trigger 5", "", -1, -1, 5, ""),
    (0x401A, "CTI_TRIGOUT6",          "Cross-trigger Interface output trigger 6", "", -1, -1, 5, ""),
    (0x401B, "CTI_TRIGOUT7",          "Cross-trigger Interface output trigger 7", "", -1, -1, 5, ""),
    (0x4020, "LDST_ALIGN_LAT",        "Access with additional latency from alignment", "", -1, -1, 5, ""),
    (0x4021, "LD_ALIGN_LAT",          "Load with additional latency from alignment", "", -1, -1, 5, ""),
    (0x4022, "ST_ALIGN_LAT",          "Store with additional latency from alignment", "", -1, -1, 5, ""),
    (0x4024, "MEM_ACCESS_CHECKED",    "Checked data memory access", "", -1, -1, 5, ""),
    (0x4025, "MEM_ACCESS_CHECKED_RD", "Checked data memory access, read", "", -1, -1, 5, ""),
    (0x4026, "MEM_ACCESS_CHECKED_WR", "Checked data memory access, write", "", -1, -1, 5, ""),
]
# fmt: on

# ---- Cortex-A57 IMPLEMENTATION DEFINED events ---------------------------------------------------
# The Arm-recommended IMPLEMENTATION DEFINED events (0x40-0xBF) a Cortex-A57 implements: the
# ArchStdEvent entries of Linux perf's tools/perf/pmu-events/arch/arm64/arm/cortex-a57-a72/*.json,
# whose numbers and names come from arch/arm64/recommended.json (the Arm ARM's "recommended
# IMPLEMENTATION DEFINED event numbers").  vpmu does not count them: PMCEID0/1 cannot advertise
# them (they cover only 0x00-0x3F and 0x4000-0x403F), and KVM passes such an event to the host's
# own PMU, which vpmu does not model, so a counter programmed with one reads 0.  They are listed
# so that every name perf accepts for this CPU resolves to its number (filters, `vpmu stat`).
# fmt: off
_A57_IMPDEF = [
    (0x40, "L1D_CACHE_RD",          "Level 1 data cache access, read"),
    (0x41, "L1D_CACHE_WR",          "Level 1 data cache access, write"),
    (0x42, "L1D_CACHE_REFILL_RD",   "Level 1 data cache refill, read"),
    (0x43, "L1D_CACHE_REFILL_WR",   "Level 1 data cache refill, write"),
    (0x46, "L1D_CACHE_WB_VICTIM",   "Level 1 data cache write-back, victim"),
    (0x47, "L1D_CACHE_WB_CLEAN",    "Level 1 data cache write-back, cleaning and coherency"),
    (0x48, "L1D_CACHE_INVAL",       "Level 1 data cache invalidate"),
    (0x4C, "L1D_TLB_REFILL_RD",     "Level 1 data TLB refill, read"),
    (0x4D, "L1D_TLB_REFILL_WR",     "Level 1 data TLB refill, write"),
    (0x50, "L2D_CACHE_RD",          "Level 2 data cache access, read"),
    (0x51, "L2D_CACHE_WR",          "Level 2 data cache access, write"),
    (0x52, "L2D_CACHE_REFILL_RD",   "Level 2 data cache refill, read"),
    (0x53, "L2D_CACHE_REFILL_WR",   "Level 2 data cache refill, write"),
    (0x56, "L2D_CACHE_WB_VICTIM",   "Level 2 data cache write-back, victim"),
    (0x57, "L2D_CACHE_WB_CLEAN",    "Level 2 data cache write-back, cleaning and coherency"),
    (0x58, "L2D_CACHE_INVAL",       "Level 2 data cache invalidate"),
    (0x60, "BUS_ACCESS_RD",         "Bus access, read"),
    (0x61, "BUS_ACCESS_WR",         "Bus access, write"),
    (0x62, "BUS_ACCESS_SHARED",     "Bus access, Normal, Cacheable, Shareable"),
    (0x63, "BUS_ACCESS_NOT_SHARED", "Bus access, not Normal, Cacheable, Shareable"),
    (0x64, "BUS_ACCESS_NORMAL",     "Bus access, Normal"),
    (0x65, "BUS_ACCESS_PERIPH",     "Bus access, peripheral"),
    (0x66, "MEM_ACCESS_RD",         "Data memory access, read"),
    (0x67, "MEM_ACCESS_WR",         "Data memory access, write"),
    (0x68, "UNALIGNED_LD_SPEC",     "Unaligned access, read"),
    (0x69, "UNALIGNED_ST_SPEC",     "Unaligned access, write"),
    (0x6A, "UNALIGNED_LDST_SPEC",   "Unaligned access"),
    (0x6C, "LDREX_SPEC",            "Exclusive operation speculatively executed, LDREX or LDX"),
    (0x6D, "STREX_PASS_SPEC",       "Exclusive operation speculatively executed, STREX or STX pass"),
    (0x6E, "STREX_FAIL_SPEC",       "Exclusive operation speculatively executed, STREX or STX fail"),
    (0x70, "LD_SPEC",               "Operation speculatively executed, load"),
    (0x71, "ST_SPEC",               "Operation speculatively executed, store"),
    (0x72, "LDST_SPEC",             "Operation speculatively executed, load or store"),
    (0x73, "DP_SPEC",               "Operation speculatively executed, integer data processing"),
    (0x74, "ASE_SPEC",              "Operation speculatively executed, Advanced SIMD instruction"),
    (0x75, "VFP_SPEC",              "Operation speculatively executed, floating-point instruction"),
    (0x76, "PC_WRITE_SPEC",         "Operation speculatively executed, software change of the PC"),
    (0x77, "CRYPTO_SPEC",           "Operation speculatively executed, Cryptographic instruction"),
    (0x78, "BR_IMMED_SPEC",         "Branch speculatively executed, immediate branch"),
    (0x79, "BR_RETURN_SPEC",        "Branch speculatively executed, procedure return"),
    (0x7A, "BR_INDIRECT_SPEC",      "Branch speculatively executed, indirect branch"),
    (0x7C, "ISB_SPEC",              "Barrier speculatively executed, ISB"),
    (0x7D, "DSB_SPEC",              "Barrier speculatively executed, DSB"),
    (0x7E, "DMB_SPEC",              "Barrier speculatively executed, DMB"),
    (0x81, "EXC_UNDEF",             "Exception taken, other synchronous"),
    (0x82, "EXC_SVC",               "Exception taken, Supervisor Call"),
    (0x83, "EXC_PABORT",            "Exception taken, Instruction Abort"),
    (0x84, "EXC_DABORT",            "Exception taken, Data Abort or SError"),
    (0x86, "EXC_IRQ",               "Exception taken, IRQ"),
    (0x87, "EXC_FIQ",               "Exception taken, FIQ"),
    (0x88, "EXC_SMC",               "Exception taken, Secure Monitor Call"),
    (0x8A, "EXC_HVC",               "Exception taken, Hypervisor Call"),
    (0x8B, "EXC_TRAP_PABORT",       "Exception taken, Instruction Abort not taken locally"),
    (0x8C, "EXC_TRAP_DABORT",       "Exception taken, Data Abort or SError not taken locally"),
    (0x8D, "EXC_TRAP_OTHER",        "Exception taken, other traps not taken locally"),
    (0x8E, "EXC_TRAP_IRQ",          "Exception taken, IRQ not taken locally"),
    (0x8F, "EXC_TRAP_FIQ",          "Exception taken, FIQ not taken locally"),
    (0x90, "RC_LD_SPEC",            "Release consistency operation speculatively executed, Load-Acquire"),
    (0x91, "RC_ST_SPEC",            "Release consistency operation speculatively executed, Store-Release"),
]
# fmt: on

# CATALOGUE: the common architected events (they drive counting and PMCEID); IMPDEF: the
# Cortex-A57's implementation-defined events above; ALL: both, for names and listings.
CATALOGUE: list[Event] = [Event(n, name, d, der, s, dy, mv, sp) for n, name, d, der, s, dy, mv, sp in _COMMON]
IMPDEF: list[Event] = [Event(n, name, d) for n, name, d in _A57_IMPDEF]
ALL: list[Event] = CATALOGUE + IMPDEF
BY_NUMBER: dict[int, Event] = {e.number: e for e in ALL}
BY_NAME: dict[str, Event] = {e.name: e for e in ALL}

SW_INCR, CHAIN, CPU_CYCLES, INST_RETIRED = 0x00, 0x1E, 0x11, 0x08

# The native tables index events compactly: 0x00..0x3F -> 0..63, 0x4000..0x403F -> 64..127.
NSLOT = 128


def slot(event: int) -> int:
    """Compact index of an event number, or -1 if it is outside the PMCEID-visible ranges."""
    if event < 64:
        return event
    if 0x4000 <= event < 0x4040:
        return 64 + event - 0x4000
    return -1


def implemented_for(event: int, pmuver: int) -> bool:
    e = BY_NUMBER.get(event)
    return e is not None and e.implemented and pmuver >= e.min_pmuver


def base_pmceid(pmuver: int) -> tuple[int, int]:
    """PMCEID0_EL0 / PMCEID1_EL0 computed from the catalogue (before KVM's filter masking).

    Low 32 bits: common events 0..31 (PMCEID0) / 32..63 (PMCEID1); high 32 bits: the
    0x4000 range, which exists from PMUv3p1 (Arm ARM D19, PMCEID<n>_EL0).
    """
    p0 = p1 = 0
    for e in CATALOGUE:
        if not implemented_for(e.number, pmuver):
            continue
        n = e.number
        if n < 32:
            p0 |= 1 << n
        elif n < 64:
            p1 |= 1 << (n - 32)
        elif pmuver >= 4 and 0x4000 <= n < 0x4020:
            p0 |= 1 << (32 + n - 0x4000)
        elif pmuver >= 4 and 0x4020 <= n < 0x4040:
            p1 |= 1 << (32 + n - 0x4020)
    return p0, p1


"""Counting channels: the quantities the native counting path accumulates.

A *static* channel is a per-instruction increment known from the instruction alone
(INST_RETIRED, LD_RETIRED, ...).  Each translated block carries the sum of its
instructions' static increments, so a fully executed block is committed with one add
per enabled counter.  A *dynamic* channel is incremented at the moment its event
happens (a taken conditional branch, a mispredict, a cache refill, an exception).

An architected event maps to at most one static and one dynamic channel
(``vpmu.pmu.events``); e.g. PC_WRITE_RETIRED = unconditional PC writes (static) +
taken conditional branches (dynamic).
"""

# static channels ------------------------------------------------------------------------
S_INST = 0        # instructions retired (also INST_SPEC, L1I_CACHE: one fetch per instruction)
S_CYC = 1         # base + class cycles of the cycle model
S_LD = 2          # load instructions retired
S_ST = 3          # store instructions retired
S_MEM = 4         # data memory accesses (MEM_ACCESS, L1D_CACHE)
S_BR_IMMED = 5    # immediate branches retired
S_BR_RETURN = 6   # procedure returns retired
S_BR = 7          # branches retired (BR_RETIRED, BR_PRED)
S_EXC_RETURN = 8  # exception returns retired
S_CID = 9         # writes to CONTEXTIDR_EL1 retired
S_TTBR = 10       # writes to TTBR0_EL1/TTBR1_EL1 retired
S_OP = 11         # micro-operations retired
S_STALL_BE = 12   # static backend stall cycles (extra cycles of load/store/mul/div/fp/system)
S_STALL_FE = 13   # static frontend stall cycles (extra cycles of branches)
S_PCW = 14        # unconditional software PC writes retired
S_STALL = 15      # S_STALL_FE + S_STALL_BE
S_UNALIGNED_CAND = 16  # memory instructions (upper bound for UNALIGNED_LDST_RETIRED per block)
NS = 17

STATIC_NAMES = ["inst", "cycles", "ld", "st", "mem", "br_immed", "br_return", "br", "exc_return",
                "cid_write", "ttbr_write", "op", "stall_be", "stall_fe", "pc_write", "stall", "mem_insn"]

# dynamic channels -----------------------------------------------------------------------
D_PCW = 0         # taken conditional branches (the dynamic part of PC_WRITE_RETIRED)
D_MISPRED = 1     # mispredicted branches (branch predictor model)
D_EXC_TAKEN = 2   # exceptions taken
D_L1I_REFILL = 3  # L1 instruction cache refills (cache model)
D_L1D_REFILL = 4  # L1 data cache refills (cache model, memory hooks)
D_L1D_WB = 5      # L1 data cache write-backs of dirty lines (cache model, memory hooks)
D_UNALIGNED = 6   # load/store instructions with an unaligned access (memory hooks)
D_CYC = 7         # penalty cycles (refills, mispredicts)
D_STALL_FE = 8    # frontend penalty cycles (mispredicts, L1I refills)
D_STALL_BE = 9    # backend penalty cycles (L1D refills and write-backs)
D_PMU_OVFS = 10   # counter overflows
D_CNT_CYCLES = 11 # ticks of the constant-frequency (generic timer) clock
D_STALL = 12      # D_STALL_FE + D_STALL_BE
D_L1D_ACCESS = 13 # data accesses to RAM (cacheable): L1D_CACHE excludes Device accesses
ND = 14

DYNAMIC_NAMES = ["pc_write_cond", "mispred", "exc_taken", "l1i_refill", "l1d_refill", "l1d_wb",
                 "unaligned", "penalty_cycles", "stall_fe_pen", "stall_be_pen", "pmu_ovfs",
                 "cnt_cycles", "stall_pen", "l1d_access"]

# dynamic channels that need the data-side memory hooks while a counter uses them
MEM_HOOK_CHANNELS = (D_L1D_REFILL, D_L1D_WB, D_UNALIGNED, D_L1D_ACCESS)

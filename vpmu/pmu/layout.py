"""Layout of the arena: the one flat ``uint64`` array all native state lives in.

Unicorn hands every native hook a single ``user_data`` pointer; it is the address of
this array.  Offsets are module constants so the numba kernels see them as
compile-time constants.  Grouped by role: control of the counting path, PMU
architectural registers, derived per-counter configuration, timer registers, the
event/class/block tables, predictor and cache model state, the trace ring.
"""
from __future__ import annotations

from . import channels as C

NBLK = 1 << 17          # block-cache slots (open addressing on the block's start VA)
NPOOL = 1 << 21         # per-instruction entries (class id, word, site) of all cached blocks
NCLS = 4096             # distinct instruction classes
NCLS_H = 2 * NCLS       # class intern table (open addressing on the class key)
NHOOK = 1 << 13         # VAs with a code hook (store-exclusive checks), open addressing
NPREC = 1 << 10         # precise-mode code hooks (block ranges), open addressing
NCPAGE = 1 << 15        # VA pages holding classified code, open addressing
NNEW = 512              # instructions of one classification that still need their code hook
CODE_WORDS = 2048 // 8  # bytes of the longest translation block (512 instructions), as uint64
NRING = 4096            # trace ring records
RING_W = 8              # words per ring record: the type and up to 7 values
BP_N = 4096             # 2-bit conditional-branch predictor entries
BTB_N = 1024            # indirect-branch target buffer entries
RAS_N = 16              # return address stack depth
CACHE_MAX_LINES = 4096  # max lines per L1 cache (sets * ways)
NDEF = 1024             # distinct blocks tallied between two flushes of deferred counting

_off = 0
_tables = 0


def _alloc(n: int) -> int:
    """n words.  A table (n >= 512) starts on a 4 KiB boundary plus a cache-line skew that
    differs from table to table: the per-block tables are indexed by the same slot on
    every block, and without the skew the entries of one slot (a multiple of 256 KiB
    apart) all compete for one L1/L2 cache set (it made the per-block path ~2x slower)."""
    global _off, _tables
    if n >= 512:
        _off = ((_off + 511) & ~511) + 8 * (_tables % 64)
        _tables += 1
    o = _off
    _off += n
    return o


# --- control of the counting path ------------------------------------------------------------
# first, in two cache lines, every word the block hook's leaf (hooks._leaf) reads or writes
CUR_FAST = _alloc(1)       # CF_*: the current block was admitted deferred (its bound is spent); 0 after a flush
CUR_START = _alloc(1)
CUR_SIZE = _alloc(1)
CUR_ENTRY = _alloc(1)      # block-cache slot of the current block
CUR_BOUND = _alloc(1)      # deferred: the bound the current block was admitted with (its FAST_BOUND)
CUR_EPOCH = _alloc(1)      # deferred: XLAT_EPOCH when it was admitted
DEF_BUDGET = _alloc(1)     # bound on what deferred blocks may still add to any quantity
EL_STALE = _alloc(1)       # an ERET retired (or state was restored): read PSTATE at the next block
IRQ_CAND = _alloc(1)       # the GIC has an interrupt that is deliverable if PSTATE.I is clear
EXIT_PENDING = _alloc(1)   # Python asked the run to end (semihosting exit etc.)
XLAT_EPOCH = _alloc(1)     # bumped when a VA may now hold other code (TLBI of a code page or of
                           # everything, TTBR0/TTBR1/TCR/SCTLR write): blocks check their words again
                           # (the code cache, codecache.py)
CUR_VALID = _alloc(1)      # a block is executing (its start has been seen by the block hook)
CUR_DONE = _alloc(1)       # instructions of the current block already committed
CUR_EL = _alloc(1)         # exception level the current block runs at
EL_NOW = _alloc(1)         # the current exception level (valid unless EL_STALE)
CUR_PRECISE = _alloc(1)    # the current block runs with per-instruction sync points
PB_VALID = _alloc(1)       # a retired branch waits for its successor to be known
PB_KIND = _alloc(1)
PB_PC = _alloc(1)
PB_TARGET = _alloc(1)      # direct target (conditional / immediate branches)
PB_EL = _alloc(1)
PB_OUTCOME = _alloc(1)     # 0: infer taken from the successor; 1: not taken; 2: taken (branch to next insn)
ICOUNT = _alloc(1)         # instructions retired (all ELs)
CYCLES = _alloc(1)         # executed cycles (cycle model, all ELs)
IDLE = _alloc(1)           # cycles spent waiting in WFI (time advances, CPU_CYCLES does not)
INSN_LIMIT = _alloc(1)     # stop when ICOUNT reaches this (2**64-1 = none)
NEXT_DEADLINE = _alloc(1)  # time (cycles+idle) of the next timer event (2**64-1 = none)
STOP_REASON = _alloc(1)
STOP_ARG = _alloc(1)
MEMHOOK_WANT = _alloc(1)   # some counter (or the cycle model) needs the data-side memory hooks
MEMHOOK_ON = _alloc(1)     # the memory hooks are installed
LAST_MEM_PC = _alloc(1)    # pc + 1 of the instruction whose data accesses the memory hook saw last
LAST_MEM_IC = _alloc(1)    # ... and ICOUNT then (a new execution of the same pc differs)
L1I_ACTIVE = _alloc(1)     # the L1I model simulates fetches (sticky once on)
L1D_ACTIVE = _alloc(1)     # the L1D model simulates data accesses (sticky once on)
PY_ARG = _alloc(8)         # arguments / results of vpmu_pycall
SCRATCH = _alloc(8)        # native scratch (values passed by pointer to uc_reg_read/write)
ENTRY_ARG = _alloc(6)      # arguments of Python -> native calls through hooks.entry
OVQ = _alloc(4 * 32)       # overflows found by one commit: (instruction, counter, old value, events)
RAM_LO = _alloc(1)         # guest RAM [RAM_LO, RAM_HI): only RAM allocates in the data cache model
RAM_HI = _alloc(1)
# the CPU model's ID register values, by handler (regs.H_ID_FIRST..H_ID_LAST), patched on read
ID_BASE = _alloc(4)
NEXT_SAMPLE = _alloc(1)    # --trace-sample: next icount at which Python records all counters
ENV_ADDR = _alloc(1)       # Unicorn's CPUARMState of this engine (native.cpu_and_env) ...
CPU_ADDR = _alloc(1)       # ... and its CPU object (QEMU's do_interrupt takes it)
SYN_ADDR = _alloc(1)       # env->exception.syndrome ...
VADDR_ADDR = _alloc(1)     # ... and env->exception.vaddress (native.cpu_layout)
LAST_VEC = _alloc(1)       # vector + 1 of the last synchronous exception taken ...
LAST_VEC_IC = _alloc(1)    # ... and ICOUNT then (a fault at that vector at once: no vector table)
WATCH_ON = _alloc(1)       # watchpoints are armed (vpmu.board.debug): DC ZVA asks Python, and a
                           # translation change (TTBR/TCR/SCTLR write, TLBI, ERET) stops with SR_DEBUG
# deferred counting (kernels.defer_*): completed blocks are tallied per block and added to the
# counters at the next point that could observe them
DEF_ENABLE = _alloc(1)     # the run allows deferred counting (MachineConfig.defer)
DEF_OK = _alloc(1)         # nothing needs per-block work now (recomputed by reconfigure)
DEF_N = _alloc(1)          # distinct blocks tallied (DEF_LIST)
DEF_EL = _alloc(1)         # the exception level they ran at
DEF_BVALID = _alloc(1)     # DEF_BUDGET is valid (0 after every flush)
DEF_BLOCKS = _alloc(1)     # statistics: blocks counted deferred (added up by each flush)
DEF_FLUSHES = _alloc(1)    # statistics: flushes that added something
DEF_MISS = _alloc(1)       # overflows found while flushing (the bound makes this impossible: 0)

# CUR_FAST values
CF_NONE = 0                # not admitted deferred (or a flush happened since)
CF_LEAF = 1                # admitted deferred, tallied before, its end is plain: the leaf may take it
CF_DEFER = 2               # admitted deferred, its end goes through hooks._fast

# --- PMU configuration and architectural registers ----------------------------------------------
PMU_PRESENT = _alloc(1)
PMUVER = _alloc(1)
NCNT = _alloc(1)           # PMCR_EL0.N
EVMASK = _alloc(1)         # 0x3FF (PMUv3) or 0xFFFF (PMUv3p1+)
EVCNT64 = _alloc(1)        # event counters are 64 bits wide (PMUv3p5)
PMCEID0 = _alloc(1)
PMCEID1 = _alloc(1)
FROZEN = _alloc(1)         # Xen PMU_CACHED: nothing counts
IRQ_LEVEL = _alloc(1)      # current level of the overflow interrupt line
PMU_IRQ = _alloc(1)        # its INTID
TRACE_REGS = _alloc(1)     # record PMU register accesses in the trace ring
PMCR = _alloc(1)           # stored PMCR bits [7:0] (E P C D X DP LC LP); N is NCNT
CNTEN = _alloc(1)
INTEN = _alloc(1)
OVS = _alloc(1)
SELR = _alloc(1)
USERENR = _alloc(1)
TYPER = _alloc(32)         # PMEVTYPER0..30, [31] = PMCCFILTR
CNT = _alloc(32)           # PMEVCNTR0..30, [31] = PMCCNTR
CCNT = 31                  # the cycle counter's index in CNT / TYPER / the counter bitmasks

# --- derived per-counter configuration (recomputed by reconfigure()) ----------------------------
C_S = _alloc(32)           # static channel or NOCH
C_D = _alloc(32)           # dynamic channel or NOCH
C_EL = _alloc(32)          # bit0: counts at EL0, bit1: counts at EL1
C_OVF64 = _alloc(32)       # overflow at 64 bits (else at the low 32 bits)
C_WMASK = _alloc(32)       # value mask (32 or 64 bits)
ACT_N = _alloc(1)          # number of counters counting a static channel
ACT = _alloc(32)           # their descriptors: counter | static channel << 8 | EL mask << 16 | ovf64 << 24
DYN_LISTEN = _alloc(C.ND)  # per dynamic channel: bitmask of counters counting it
IRQ_WATCH = _alloc(1)      # counters whose overflow raises the interrupt line (or a Xen sample)
# observer counters (vpmu stat): counters at indices >= PMCR_EL0.N, which the guest cannot see,
# counting the events the runner programmed in their TYPER words through the same commit path
OBS_MASK = _alloc(1)       # bit c: counter c is an observer (always >= NCNT, never 31)
OBS_ALWAYS = _alloc(1)     # 1: observers count the whole run; 0: only while the guest's PMCR.E is set
IRQ_DEFER = _alloc(1)      # inside a commit: the line's new level is told to Python afterwards

# --- generic timer -------------------------------------------------------------------------
CNTKCTL = _alloc(1)
CNTV_CTL = _alloc(1)
CNTV_CVAL = _alloc(1)
CNTP_CTL = _alloc(1)
CNTP_CVAL = _alloc(1)
CNTFRQ = _alloc(1)
TICK_DIV = _alloc(1)       # CPU cycles per generic-timer tick (1 GHz / CNTFRQ)

# --- events, classes, blocks, sites ------------------------------------------------------------
EV_S = _alloc(128)         # static channel per compact event slot (events.slot)
EV_D = _alloc(128)
EV_OK = _alloc(128)        # implemented at this PMU version
FILT_ON = _alloc(1)
FILT = _alloc(1024)        # 65536-bit filter bitmap (1 = allowed)
CLS_INC = _alloc(NCLS * C.NS)
CLS_BK = _alloc(NCLS)      # branch kind of the class (BK_*)
CLS_NMEM = _alloc(NCLS)    # data accesses of the class
CLS_ESIZE = _alloc(NCLS)   # element size in bytes of its data accesses (alignment is judged on it)
CLS_N = _alloc(1)
CLS_HKEY = _alloc(NCLS_H)  # class intern table: class key + 1 (0 = empty) ...
CLS_HVAL = _alloc(NCLS_H)  # ... and its class id
# the block cache: what the block hook touches for every block is one 64-byte record (BW words)
# so that a block costs one cache line; the rest is in per-field tables.  Record fields:
# A[BLK_x + e * BW] (or A[BLK + e * BW + x_FIELD]).
BW = 8
KEY_FIELD, N_FIELD, FAST_FIELD, EPOCH_FIELD, DEF_FIELD, BK_FIELD, TGT_FIELD, SUCC_FIELD = range(BW)
BLK = _alloc(NBLK * BW)
BLK_KEY = BLK + KEY_FIELD      # start VA + 1 (0 = empty)
BLK_N = BLK + N_FIELD          # instructions (the block is 4 * N bytes: A64 instructions are 4 bytes)
BLK_FAST = BLK + FAST_FIELD    # deferred counting: bound | FAST_PRECISE | FAST_ODD_END (below)
BLK_EPOCH = BLK + EPOCH_FIELD  # XLAT_EPOCH at which the block's code was last checked (0 = must check)
BLK_DEF = BLK + DEF_FIELD      # deferred counting: completed executions tallied (0: not in DEF_LIST)
BLK_BK = BLK + BK_FIELD        # branch kind of the last instruction
BLK_TGT = BLK + TGT_FIELD      # its direct target
BLK_SUCC = BLK + SUCC_FIELD    # 1 + the slot of the block that last followed this one (0 = none)
BLK_IOFF = _alloc(NBLK)    # -- per-field tables: A[BLK_x + e]
BLK_NMEM = _alloc(NBLK)
BLK_WORD = _alloc(NBLK)    # the last instruction's encoding (conditional branch to the next insn)
BLK_EXCL = _alloc(NBLK)    # a store-exclusive judged when the block completes: its check word (XCHK)
BLK_FLAGS = _alloc(NBLK)   # BF_*
DEF_LIST = _alloc(NDEF)    # tallied blocks (slots; how many times each completed: its BLK_DEF)
BLK_TOT = _alloc(NBLK * C.NS)
BLK_USED = _alloc(1)
POOL = _alloc(NPOOL)       # per instruction: class id
POOL_W = _alloc(NPOOL)     # per instruction: its encoding (what a check compares)
POOL_XCHK = _alloc(NPOOL)  # per instruction: the check of the store-exclusive before it (0 = none;
                           # codecache.XCHK_* describes the word)
POOL_TOP = _alloc(1)
# --- the code cache (codecache.py): what keeps classified code valid (and XLAT_EPOCH, above) --
CPAGE_KEY = _alloc(NCPAGE) # VA page number + 1 of every page holding classified code
HOOK_KEY = _alloc(NHOOK)   # VA + 1 of every store-exclusive check code hook Python installed
PREC_KEY = _alloc(NPREC)   # start VA + 1 of every precise-mode block range with a code hook ...
PREC_SIZE = _alloc(NPREC)  # ... and its size
NEW_N = _alloc(1)          # instructions of the last classification that need a code hook ...
NEW_VA = _alloc(NNEW)      # ... their VAs (Python installs the hooks: stop reason SR_HOOKS)
CODE = _alloc(CODE_WORDS)  # the bytes of the block being classified or checked
DEC = _alloc(8)            # decode.decode's record for one word
DEC_INC = _alloc(C.NS)     # decode.class_inc's channel increments
CYC_BASE = _alloc(1)       # cycle model: cycles per instruction ...
CYC_EXTRA = _alloc(8)      # ... plus extra cycles by decode kind (decode.K_*)
CC_CLASSIFIED = _alloc(1)  # statistics: blocks classified, blocks whose code was checked again,
CC_CHECKED = _alloc(1)     # checks that found other code, epoch bumps, whole-cache flushes
CC_CHANGED = _alloc(1)
CC_EPOCHS = _alloc(1)
CC_FLUSHES = _alloc(1)
HANDLER = _alloc(1 << 16)  # sysreg key -> handler id (regs.H_*)
RULE = _alloc(1 << 16)     # sysreg key -> access rule (regs.el0_rule_table)

# --- branch predictor and caches ---------------------------------------------------------------
BP = _alloc(BP_N)
BTB_TAG = _alloc(BTB_N)
BTB_TGT = _alloc(BTB_N)
RAS = _alloc(RAS_N)
RAS_TOP = _alloc(1)        # index of the most recent entry
RAS_CNT = _alloc(1)        # valid entries (0..RAS_N)
PEN_MISPRED = _alloc(1)
PEN_L1I = _alloc(1)
PEN_L1D = _alloc(1)
PEN_WB = _alloc(1)
L1I_SETS = _alloc(1)
L1I_WAYS = _alloc(1)
L1D_SETS = _alloc(1)
L1D_WAYS = _alloc(1)
LINE_SHIFT = _alloc(1)
L1I_TAG = _alloc(CACHE_MAX_LINES)   # line address + 1 (0 = invalid)
L1I_AGE = _alloc(CACHE_MAX_LINES)
L1D_TAG = _alloc(CACHE_MAX_LINES)
L1D_AGE = _alloc(CACHE_MAX_LINES)
L1D_DIRTY = _alloc(CACHE_MAX_LINES)
CACHE_CLOCK = _alloc(1)

# --- trace ring ---------------------------------------------------------------------------------
RING_N = _alloc(1)
RING = _alloc(NRING * RING_W)

ARENA_WORDS = _off

NOCH = 0xFFFF              # "no channel" marker in C_S / C_D / EV_S / EV_D
NONE64 = (1 << 64) - 1

# block flags
BF_PRECISE = 1             # a per-instruction code hook covers this block
# BLK_FAST: bits 0..61 bound one execution's increments (max(instructions, every static
# channel total)); FAST_PRECISE mirrors BF_PRECISE; FAST_ODD_END: the block's end needs the
# eager path (store-exclusive, ERET, conditional branch to the next instruction)
FAST_PRECISE = 1 << 62
FAST_ODD_END = 1 << 63
FAST_BOUND = (1 << 62) - 1

# branch kinds (CLS_BK / BLK_BK / PB_KIND)
BK_NONE, BK_COND, BK_B, BK_BL, BK_BR, BK_BLR, BK_RET, BK_ERET = 0, 1, 2, 3, 4, 5, 6, 7

# stop reasons (STOP_REASON), set by native code before uc_emu_stop
SR_NONE, SR_HOOKS, SR_PRECISE_ON, SR_PRECISE_OFF, SR_MEMHOOK, SR_LIMIT = 0, 1, 2, 3, 4, 5
SR_RESTART = 8             # Python: resume at the PC an exception handler wrote
SR_UNCLASSIFIABLE = 9      # the code cache cannot hold the block (class table full)
SR_DEBUG = 10              # the debug unit must (re)place its hooks before the guest goes on

# vpmu_pycall kinds
PC_SYSREG, PC_IRQ, PC_IRQ_LEVEL, PC_RING_FULL, PC_TIMER, PC_SAMPLE, PC_INTR = 2, 3, 5, 6, 7, 8, 9
PC_WATCH = 10              # a data access (or DC ZVA) the watchpoints may match: PY_ARG = (access, address,
                           # size); Python answers the Watchpoint exception's syndrome (0: none) in PY_ARG + 4
WATCH_ZVA = 0              # PC_WATCH access kind of a DC ZVA (else Unicorn's UC_MEM_READ / UC_MEM_WRITE)

# hooks.entry operations (Python -> native)
E_RECONFIGURE, E_IRQ_UPDATE, E_END_BLOCK_AT, E_FINISH_BLOCK, E_DYN_EVENT = 1, 2, 3, 4, 5
E_PMCR_READ, E_FLUSH_BLOCKS, E_BLK_LOOKUP, E_VALID_MASK, E_TYPER_MASK = 6, 7, 8, 9, 10
E_FLUSH = 11
E_HOOKED, E_PRECISE = 12, 13

XCHK = 1 << 32             # POOL_XCHK / BLK_EXCL: a store-exclusive check (codecache.XCHK_*)

# trace ring record types
RT_OVERFLOW, RT_IRQ_LEVEL, RT_PMU_REG, RT_SWINC, RT_EXCEPTION = 1, 2, 3, 4, 5
# RT_EXCEPTION kinds (the trace's exception "kind")
EK_SVC, EK_BRK, EK_UNDEF, EK_SYSREG_TRAP, EK_DATA_ABORT, EK_PREFETCH_ABORT = 1, 2, 3, 4, 5, 6
EK_BREAKPOINT, EK_WATCHPOINT, EK_SOFTSTEP = 7, 8, 9
EXCEPTION_KINDS = {EK_SVC: "svc", EK_BRK: "brk", EK_UNDEF: "undef", EK_SYSREG_TRAP: "sysreg_trap",
                   EK_DATA_ABORT: "data_abort", EK_PREFETCH_ABORT: "prefetch_abort",
                   EK_BREAKPOINT: "breakpoint", EK_WATCHPOINT: "watchpoint", EK_SOFTSTEP: "software_step"}

"""Run configuration: the one value every frontend (CLI, Python API, KVM, Xen) builds.

``vpmu.kvm`` builds one from the device attributes a VMM set (so the runner "speaks KVM");
:meth:`vpmu.options.RunOptions.to_machine_config` builds one from the options of ``vpmu run``
and ``vpmu.run()`` (through ``vpmu.kvm``).  Nothing here touches Unicorn or numba.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar, Optional

# ID_AA64DFR0_EL1.PMUVer values (Arm ARM D19.2, ID_AA64DFR0_EL1): the one definition.
PMUVER_NI = 0x0             # no PMU
PMUVER_IMP = 0x1            # PMUv3 (v8.0): 10-bit event numbers
PMUVER_V3P1 = 0x4           # FEAT_PMUv3p1: 16-bit event numbers, the 0x4000 common events
PMUVER_V3P4 = 0x5           # FEAT_PMUv3p4
PMUVER_V3P5 = 0x6           # FEAT_PMUv3p5: 64-bit event counters, PMCR.LP
PMUVER_V3P7 = 0x7           # FEAT_PMUv3p7
PMUVER_IMP_DEF = 0xF        # an IMPLEMENTATION DEFINED (non-PMUv3) PMU

# The --pmu-version names of the modelled versions.
PMU_VERSIONS: dict[str, int] = {"3.0": PMUVER_IMP, "3.1": PMUVER_V3P1, "3.4": PMUVER_V3P4,
                                "3.5": PMUVER_V3P5, "3.7": PMUVER_V3P7}
PMUVER_TO_NAME = {v: k for k, v in PMU_VERSIONS.items()}


def event_space(pmuver: int) -> int:
    """Number of event numbers: 10 bits on PMUv3 (v8.0), 16 bits from PMUv3p1."""
    return 1024 if pmuver == PMUVER_IMP else 65536


def has_64bit_event_counters(pmuver: int) -> bool:
    """PMUv3p5 (FEAT_PMUv3p5) makes event counters 64 bits wide and adds PMCR.LP."""
    return pmuver >= PMUVER_V3P5


# RAM at 0x4000_0000 (QEMU virt): the default size, and the sizes a run accepts (Unicorn maps
# the RAM in one piece; the board's map leaves room for 4 GiB below 0x1_4000_0000).
DEFAULT_MEMORY = 128 << 20
DEFAULT_MAX_OUTPUT = 1 << 30            # bytes of guest console output a run may write (--max-output)
MEMORY_MIN = 1 << 20
MEMORY_MAX = 4 << 30

# Limits of the numbers a run accepts.  Counts (the instruction limit, the sample period, trace
# limits) live in uint64 arena words and are added to the instruction count: below 2**63 no sum
# of two of them wraps.  A cycle-model cost is at most 32 bits, so a block's cycles (a few
# thousand instructions times the costs) cannot overflow its uint64 bound either.
COUNT_MAX = 2**63 - 1
CYCLE_COST_MAX = 2**32 - 1
# --append: /chosen/bootargs, placed with the tree in QEMU's 1 MiB device-tree buffer; Linux
# itself keeps 2048 bytes of it (COMMAND_LINE_SIZE on arm64).
APPEND_MAX = 64 * 1024
# Xen domid_t: the ids from DOMID_FIRST_RESERVED (0x7FF0, xen.h) up are DOMID_SELF, DOMID_IO, ...
# (vpmu.xen.abi lists them); a guest's own id is below.
XEN_DOMID_MAX = 0x7FEF
# The character devices the virtio console's port 0 can be connected to (vpmu/board/chardev.py):
# QEMU's chr-testdev protocol (kvm-unit-tests' exit path), the standard output, nothing.
VIRTIO_CONSOLE_BACKENDS = ("testdev", "stdio", "null")

# Board interrupt numbers (QEMU virt): PPIs are INTID 16..31.
DEFAULT_PMU_IRQ = 23
DEFAULT_TIMER_PPIS = {"vtimer": 27, "ptimer": 30, "hvtimer": 28, "hptimer": 26}
XEN_EVTCHN_PPI = 31


@dataclass
class CycleModel:
    """Deterministic cycle model (see docs/cycle-model.md).

    Every retired instruction costs ``base`` cycles plus the extra cycles of its class;
    refills and mispredicts add penalties.  The default (1 cycle per instruction, no
    penalties) is what QEMU gives with ``-icount shift=0``: CPU_CYCLES == INST_RETIRED.
    """
    base: int = 1
    load: int = 0
    store: int = 0
    branch: int = 0
    mul: int = 0
    div: int = 0
    fp: int = 0
    system: int = 0
    l1i_refill: int = 0
    l1d_refill: int = 0
    l1d_writeback: int = 0
    mispredict: int = 0

    def problem(self) -> Optional[str]:
        """Why the model cannot run (a one-line reason), or None."""
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= CYCLE_COST_MAX:
                return f"{f.name.replace('_', '-')} must be an integer in 0..{CYCLE_COST_MAX} (got {v!r})"
        if self.base < 1:
            return "base must be at least 1"
        return None


@dataclass
class CacheModel:
    """Set-associative L1 caches used by the L1I_*/L1D_* events (LRU, write-back, write-allocate).

    ``enabled`` (set by ``--cache``): the models simulate from the start of the run; otherwise
    a model starts, cold, when a counter first counts one of its events."""
    enabled: bool = False
    line: int = 64
    l1i_size: int = 32 * 1024
    l1i_ways: int = 2
    l1d_size: int = 32 * 1024
    l1d_ways: int = 4

    def problem(self, max_lines: int) -> Optional[str]:
        """Why the geometry cannot be modelled (a one-line reason), or None.  The model keeps
        ``size / line`` lines in ``sets x ways`` (at most ``max_lines`` per cache) and finds a
        line's set as ``line address % sets``: every cache needs at least one set."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "enabled" and (isinstance(v, bool) or not isinstance(v, int)):
                return f"{f.name.replace('_', '-')} must be an integer (got {v!r})"
        if not 4 <= self.line <= 1 << 20 or self.line & (self.line - 1):
            return f"line must be a power of two in 4..1M (got {self.line})"
        for name, size, ways in (("l1i", self.l1i_size, self.l1i_ways), ("l1d", self.l1d_size, self.l1d_ways)):
            if ways < 1:
                return f"{name}-ways must be at least 1 (got {ways})"
            if size < self.line * ways or size % (self.line * ways):
                return (f"{name}-size {size} is not a positive multiple of line x ways = {self.line * ways} "
                        "(every set holds one line per way)")
            if size // self.line > max_lines:
                return f"{name}-size {size} is more than {max_lines} lines of {self.line} bytes"
        return None


@dataclass(frozen=True)
class TraceLimit:
    """``--trace-limit``: at most ``records`` trace records or ``size`` bytes of JSON Lines
    (0 = no limit of that kind).  At the limit the trace gets a ``truncated`` record and then
    only the final ``exit`` or ``error`` record."""
    DEFAULT_RECORDS: ClassVar[int] = 1_000_000
    records: int = DEFAULT_RECORDS
    size: int = 0

    def __post_init__(self) -> None:
        for name in ("records", "size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= COUNT_MAX:
                raise ValueError(f"{name} must be an integer in 0..2**63-1 (got {v!r})")

    def __str__(self) -> str:
        if self.size:
            return f"{self.size} bytes"
        return f"{self.records} records" if self.records else "no limit"


@dataclass
class PmuConfig:
    """What the guest sees of the PMU."""
    present: bool = True            # vCPU created with KVM_ARM_VCPU_PMU_V3
    version: str = "3.7"            # --pmu-version
    counters: int = 6               # PMCR_EL0.N
    irq: int = DEFAULT_PMU_IRQ      # overflow interrupt INTID (PPI or SPI)
    # Event filter as KVM stores it: a bitmap over the *host* event space
    # (True = allowed), or None when no filter was ever set.
    filter_bitmap: Optional[bytearray] = None

    @property
    def pmuver(self) -> int:
        return PMU_VERSIONS[self.version]


@dataclass
class Observers:
    """Counters the runner adds for ``vpmu stat`` (:mod:`vpmu.stat`): each counts one event
    at the chosen exception levels in a counter beyond PMCR_EL0.N, which the guest can neither
    see nor touch.  ``window`` "enabled": only while the guest's PMCR_EL0.E is set (what its
    own counters count); "run": every instruction of the run."""
    events: tuple[tuple[int, bool, bool], ...] = ()     # (event number, count at EL0, at EL1)
    window: str = "enabled"


@dataclass
class MachineConfig:
    memory: int = DEFAULT_MEMORY
    pmu: PmuConfig = field(default_factory=PmuConfig)
    timer_ppis: dict = field(default_factory=lambda: dict(DEFAULT_TIMER_PPIS))
    pvtime_ipa: Optional[int] = None        # KVM_ARM_VCPU_PVTIME_IPA, None = not set
    stolen_ns_per_ms: int = 0               # deterministic stolen time accrued per 1 ms of guest time
    cycles: CycleModel = field(default_factory=CycleModel)
    cache: CacheModel = field(default_factory=CacheModel)
    max_insns: Optional[int] = None
    max_output: int = DEFAULT_MAX_OUTPUT    # console output (UART, semihosting, Xen console) before stopping
    trace_path: Optional[str] = None
    trace_pmu_regs: bool = False
    trace_sample: int = 0                   # record all counters every N instructions (0 = off)
    trace_limit: TraceLimit = field(default_factory=TraceLimit)
    defer: bool = True                      # deferred counting (kernels.defer_flush); False = eager
    append: Optional[str] = None            # /chosen/bootargs
    dtb_path: Optional[str] = None          # replace the generated device tree
    initrd_path: Optional[str] = None       # initial RAM disk (QEMU -initrd), Linux boots only
    semihosting: bool = True                # HLT #0xF000 from EL1 is a semihosting call (else UNDEFINED)
    rtc_base: Optional[int] = None          # PL031 count at guest time 0 (None: the host clock at start)
    seed: int = 0                           # /chosen rng-seed and kaslr-seed are derived from it
    # QEMU virt's virtio-mmio transports with a legacy virtio console whose port 0 is
    # connected to this character device (VIRTIO_CONSOLE_BACKENDS); None: no transports
    virtio_console: Optional[str] = None
    # Xen frontend
    xen: bool = False
    xen_domid: int = 0
    xen_vpmu: str = "self"                  # off | self | hv | all
    observe: Observers = field(default_factory=Observers)   # vpmu stat's counters (none by default)

"""Run configuration: the one value every frontend (CLI, Python API, KVM, Xen) builds.

``vpmu.kvm`` builds one from the device attributes a VMM set (so the runner "speaks KVM");
:meth:`vpmu.options.RunOptions.to_machine_config` builds one from the options of ``vpmu run``
and ``vpmu.run()`` (through ``vpmu.kvm``).  Nothing here touches Unicorn or numba.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

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
MEMORY_MIN = 1 << 20
MEMORY_MAX = 4 << 30

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
    trace_path: Optional[str] = None
    trace_pmu_regs: bool = False
    trace_sample: int = 0                   # record all counters every N instructions (0 = off)
    defer: bool = True                      # deferred counting (kernels.defer_flush); False = eager
    append: Optional[str] = None            # /chosen/bootargs
    dtb_path: Optional[str] = None          # replace the generated device tree
    initrd_path: Optional[str] = None       # initial RAM disk (QEMU -initrd), Linux boots only
    semihosting: bool = True                # HLT #0xF000 at EL1 is a semihosting call (else UNDEFINED)
    # QEMU virt's virtio-mmio transports with a legacy virtio console whose port 0 is
    # connected to this character device (VIRTIO_CONSOLE_BACKENDS); None: no transports
    virtio_console: Optional[str] = None
    # Xen frontend
    xen: bool = False
    xen_domid: int = 0
    xen_vpmu: str = "self"                  # off | self | hv | all
    observe: Observers = field(default_factory=Observers)   # vpmu stat's counters (none by default)

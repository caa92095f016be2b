"""A Python model of the KVM/arm64 vCPU device-attribute API for the PMU, timers and PV time.

VMM code written against ``/dev/kvm`` can be exercised here unchanged in spirit: the
constants carry their Linux names and values, every failure raises ``OSError(errno.X,
os.strerror(errno.X))`` with the errno KVM returns - in KVM's check order - and a
successful first ``KVM_RUN`` yields the :class:`~vpmu.config.MachineConfig` the emulator
runs (so the runner "speaks KVM").

Objects:

- :class:`Host` / :class:`HostPmu` - what the host kernel has: its PMUs (perf type id,
  PMUVer, counters, CPUs), whether steal time is available, which CPU the VMM thread is on.
- :class:`Vm` - ``KVM_CREATE_VM``: vCPUs, the in-kernel vGICv3 (:class:`VgicV3`), memory slots
  (RAM at 0x4000_0000 by default), and the VM-wide state KVM keeps (selected host PMU, counter
  number, event filter, timer PPIs, "has run").
- :class:`Vcpu` - ``set_attr`` / ``get_attr`` / ``has_attr`` (``KVM_{SET,GET,HAS}_DEVICE_ATTR``)
  and :meth:`Vcpu.run` (the first-``KVM_RUN`` checks).

Where the behaviour comes from (Linux, arch/arm64/kvm): ``guest.c`` (group dispatch),
``pmu-emul.c`` / ``pmu.c`` (``kvm_arm_pmu_v3_set_attr/get_attr/has_attr``,
``kvm_arm_pmu_v3_enable``, ``kvm_arm_pmu_get_pmuver_limit``), ``arch_timer.c``
(``kvm_arm_timer_set_attr``, ``timer_irqs_are_valid``), ``pvtime.c``, ``vgic/vgic.c``
(``kvm_vgic_set_owner``), ``vgic/vgic-kvm-device.c`` (NR_IRQS, CTRL_INIT), ``arm.c``
(``kvm_arch_vcpu_run_pid_change``, vCPU feature checks).  See docs/kvm.md for the tables.

A user pointer that faults is modelled by passing :data:`BAD_ADDRESS` as the value (or as
the whole attribute to :meth:`Vcpu.ioctl`).  :func:`explain` turns an errno back into
KVM's meaning for the attribute; each raised OSError also carries ``.check`` (which rule
failed), ``.reason`` (a one-line specific message), ``.group`` and ``.attr``.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from .config import (DEFAULT_PMU_IRQ, DEFAULT_TIMER_PPIS, PMU_VERSIONS, PMUVER_TO_NAME,
                     MachineConfig, PmuConfig)
from .errors import EXIT_KVM, VpmuError
from .filter import (KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY, EventFilter,  # noqa: F401
                     KvmPmuEventFilter, event_space)


# ---------------------------------------------------------------------------------------------
# uapi constants (include/uapi/linux/kvm.h, arch/arm64/include/uapi/asm/kvm.h)

KVMIO = 0xAE


def _IOC(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


KVM_RUN = _IOC(0, 0x80, 0)                      # _IO(KVMIO, 0x80)
KVM_SET_DEVICE_ATTR = _IOC(1, 0xE1, 24)         # _IOW(KVMIO, 0xe1, struct kvm_device_attr)
KVM_GET_DEVICE_ATTR = _IOC(1, 0xE2, 24)
KVM_HAS_DEVICE_ATTR = _IOC(1, 0xE3, 24)

# struct kvm_vcpu_init.features[0] bits
KVM_ARM_VCPU_POWER_OFF = 0
KVM_ARM_VCPU_EL1_32BIT = 1
KVM_ARM_VCPU_PSCI_0_2 = 2
KVM_ARM_VCPU_PMU_V3 = 3
KVM_ARM_VCPU_SVE = 4
KVM_ARM_VCPU_PTRAUTH_ADDRESS = 5
KVM_ARM_VCPU_PTRAUTH_GENERIC = 6
KVM_ARM_VCPU_HAS_EL2 = 7

# vCPU device attribute groups and attributes
KVM_ARM_VCPU_PMU_V3_CTRL = 0
KVM_ARM_VCPU_PMU_V3_IRQ = 0
KVM_ARM_VCPU_PMU_V3_INIT = 1
KVM_ARM_VCPU_PMU_V3_FILTER = 2
KVM_ARM_VCPU_PMU_V3_SET_PMU = 3
KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS = 4
KVM_ARM_VCPU_TIMER_CTRL = 1
KVM_ARM_VCPU_TIMER_IRQ_VTIMER = 0
KVM_ARM_VCPU_TIMER_IRQ_PTIMER = 1
KVM_ARM_VCPU_TIMER_IRQ_HVTIMER = 2
KVM_ARM_VCPU_TIMER_IRQ_HPTIMER = 3
KVM_ARM_VCPU_PVTIME_CTRL = 2
KVM_ARM_VCPU_PVTIME_IPA = 0

# kvm_run->s.regs.device_irq_level (userspace irqchip)
KVM_ARM_DEV_EL1_VTIMER = 1 << 0
KVM_ARM_DEV_EL1_PTIMER = 1 << 1
KVM_ARM_DEV_PMU = 1 << 2

# KVM_CREATE_DEVICE / vGIC device attributes
KVM_DEV_TYPE_ARM_VGIC_V2 = 5
KVM_DEV_TYPE_ARM_VGIC_V3 = 7
KVM_DEV_ARM_VGIC_GRP_ADDR = 0
KVM_DEV_ARM_VGIC_GRP_DIST_REGS = 1
KVM_DEV_ARM_VGIC_GRP_CPU_REGS = 2
KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 3
KVM_DEV_ARM_VGIC_GRP_CTRL = 4
KVM_DEV_ARM_VGIC_CTRL_INIT = 0
KVM_VGIC_V3_ADDR_TYPE_DIST = 2
KVM_VGIC_V3_ADDR_TYPE_REDIST = 3

# KVM_RUN exit
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED = 1 << 63

# vGIC interrupt ranges (include/kvm/arm_vgic.h)
VGIC_NR_SGIS = 16
VGIC_NR_PRIVATE_IRQS = 32
VGIC_MAX_SPI = 1019
VGIC_MAX_RESERVED = 1023
VGIC_NR_IRQS_LEGACY = 256           # vgic_init() default when NR_IRQS was never set

INVALID_GPA = (1 << 64) - 1         # PV time base "not set" (reads back as all ones)
PAGE_SIZE = 4096
RAM_BASE = 0x4000_0000              # QEMU virt RAM base

# ID_AA64DFR0_EL1.PMUVer
PMUVER_NI = 0
PMUVER_IMP = 1
PMUVER_V3P5 = 6
PMUVER_IMP_DEF = 0xF

TIMER_NAMES = {
    KVM_ARM_VCPU_TIMER_IRQ_VTIMER: "vtimer",
    KVM_ARM_VCPU_TIMER_IRQ_PTIMER: "ptimer",
    KVM_ARM_VCPU_TIMER_IRQ_HVTIMER: "hvtimer",
    KVM_ARM_VCPU_TIMER_IRQ_HPTIMER: "hptimer",
}
# Without nested virtualisation (KVM_ARM_VCPU_HAS_EL2, not modelled) a vCPU has the two EL1
# timers; only they claim PPIs at the first run (arch_timer.c nr_timers()).
_EL0_TIMERS = ("vtimer", "ptimer")


class _BadAddress:
    """Sentinel for a user pointer that faults (``copy_from_user``/``put_user`` -> -EFAULT)."""
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "BAD_ADDRESS"


BAD_ADDRESS = _BadAddress()


def is_ppi(irq: int) -> bool:
    return VGIC_NR_SGIS <= irq < VGIC_NR_PRIVATE_IRQS


def is_spi(irq: int) -> bool:
    """Architectural SPI range only (``irq_is_spi``), not the vGIC's configured size."""
    return VGIC_NR_PRIVATE_IRQS <= irq <= VGIC_MAX_SPI


# ---------------------------------------------------------------------------------------------
# Errors and their explanations

ATTR_NAMES = {
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_IRQ): "KVM_ARM_VCPU_PMU_V3_IRQ",
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_INIT): "KVM_ARM_VCPU_PMU_V3_INIT",
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_FILTER): "KVM_ARM_VCPU_PMU_V3_FILTER",
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_SET_PMU): "KVM_ARM_VCPU_PMU_V3_SET_PMU",
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS): "KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS",
    (KVM_ARM_VCPU_TIMER_CTRL, KVM_ARM_VCPU_TIMER_IRQ_VTIMER): "KVM_ARM_VCPU_TIMER_IRQ_VTIMER",
    (KVM_ARM_VCPU_TIMER_CTRL, KVM_ARM_VCPU_TIMER_IRQ_PTIMER): "KVM_ARM_VCPU_TIMER_IRQ_PTIMER",
    (KVM_ARM_VCPU_TIMER_CTRL, KVM_ARM_VCPU_TIMER_IRQ_HVTIMER): "KVM_ARM_VCPU_TIMER_IRQ_HVTIMER",
    (KVM_ARM_VCPU_TIMER_CTRL, KVM_ARM_VCPU_TIMER_IRQ_HPTIMER): "KVM_ARM_VCPU_TIMER_IRQ_HPTIMER",
    (KVM_ARM_VCPU_PVTIME_CTRL, KVM_ARM_VCPU_PVTIME_IPA): "KVM_ARM_VCPU_PVTIME_IPA",
}
GROUP_NAMES = {
    KVM_ARM_VCPU_PMU_V3_CTRL: "KVM_ARM_VCPU_PMU_V3_CTRL",
    KVM_ARM_VCPU_TIMER_CTRL: "KVM_ARM_VCPU_TIMER_CTRL",
    KVM_ARM_VCPU_PVTIME_CTRL: "KVM_ARM_VCPU_PVTIME_CTRL",
}


_VGIC_ATTR_NAMES = {
    KVM_DEV_ARM_VGIC_GRP_NR_IRQS: "KVM_DEV_ARM_VGIC_GRP_NR_IRQS",
    KVM_DEV_ARM_VGIC_GRP_CTRL: "KVM_DEV_ARM_VGIC_CTRL_INIT",
    KVM_DEV_ARM_VGIC_GRP_ADDR: "KVM_DEV_ARM_VGIC_GRP_ADDR",
}


def attr_name(group: Any, attr: Any = None) -> str:
    """``KVM_ARM_VCPU_PMU_V3_INIT`` for (0, 1).  Operations that are not vCPU device
    attributes use their own name as ``group`` (``"KVM_RUN"``, ``"vGIC"``...)."""
    if isinstance(group, str):
        if attr is None:
            return group
        return _VGIC_ATTR_NAMES.get(attr, f"{group} {attr}") if group == "vGIC" else f"{group} {attr}"
    if (group, attr) in ATTR_NAMES:
        return ATTR_NAMES[(group, attr)]
    return f"{GROUP_NAMES.get(group, f'group {group}')} attr {attr}"


# check id -> (errno, what KVM means).  One line each; the CLI prints them.
EXPLANATIONS: dict[str, tuple[int, str]] = {
    # guest.c / arm.c dispatch
    "dispatch.efault": (errno.EFAULT, "the struct kvm_device_attr itself could not be read "
                        "(bad pointer passed to the ioctl)"),
    "dispatch.group": (errno.ENXIO, "unknown attribute group (vCPU groups are "
                       "KVM_ARM_VCPU_PMU_V3_CTRL=0, KVM_ARM_VCPU_TIMER_CTRL=1, "
                       "KVM_ARM_VCPU_PVTIME_CTRL=2)"),
    # PMU group, common prefix
    "pmu.nodev": (errno.ENODEV, "this vCPU was created without the KVM_ARM_VCPU_PMU_V3 "
                  "feature, so it has no PMU to configure"),
    "pmu.created": (errno.EBUSY, "the PMU of this vCPU is already initialised "
                    "(KVM_ARM_VCPU_PMU_V3_INIT was called); no PMU attribute may be set after INIT"),
    "pmu.unknown_attr": (errno.ENXIO, "unknown PMU attribute id (IRQ=0, INIT=1, FILTER=2, "
                         "SET_PMU=3, SET_NR_COUNTERS=4)"),
    # IRQ
    "irq.no_irqchip": (errno.EINVAL, "there is no in-kernel irqchip: create the vGIC "
                       "(KVM_CREATE_DEVICE) before setting the PMU interrupt"),
    "irq.efault": (errno.EFAULT, "the interrupt number could not be read from the user pointer"),
    "irq.range": (errno.EINVAL, "the interrupt is neither a PPI (16..31) nor an SPI (32..1019)"),
    "irq.inconsistent": (errno.EINVAL, "the interrupt disagrees with the vCPUs already "
                         "configured: a PPI must be the same on every vCPU, an SPI must be "
                         "different on every vCPU (including this one)"),
    "irq.busy": (errno.EBUSY, "this vCPU's PMU interrupt is already set and cannot be changed"),
    # INIT
    "init.vgic_uninit": (errno.ENODEV, "the vGIC exists but is not initialised: do "
                         "KVM_DEV_ARM_VGIC_CTRL_INIT before KVM_ARM_VCPU_PMU_V3_INIT"),
    "init.no_irq": (errno.ENXIO, "an in-kernel vGIC is present but this vCPU's PMU interrupt "
                    "was never set (KVM_ARM_VCPU_PMU_V3_IRQ)"),
    "init.bad_irq": (errno.EINVAL, "the PMU interrupt is neither a PPI nor an SPI that the "
                     "vGIC implements (32 <= irq < 32 + nr_spis)"),
    "init.owned": (errno.EEXIST, "the PMU interrupt is already used by another in-kernel "
                   "device on this vCPU (e.g. an architected timer)"),
    # FILTER
    "filter.efault": (errno.EFAULT, "the struct kvm_pmu_event_filter could not be read"),
    "filter.invalid": (errno.EINVAL, "invalid filter: base_event + nevents exceeds the host's "
                       "event space (1024 events on a PMUv3 v3p0 host, 65536 from v3p1), or "
                       "action is neither KVM_PMU_EVENT_ALLOW (0) nor KVM_PMU_EVENT_DENY (1)"),
    "filter.has_run": (errno.EBUSY, "a vCPU of this VM has already run; the event filter is "
                       "frozen (the guest may have read PMCEID0/1)"),
    # SET_PMU
    "set_pmu.efault": (errno.EFAULT, "the PMU type id could not be read"),
    "set_pmu.busy": (errno.EBUSY, "the PMU can no longer be changed: a vCPU has already run, or "
                     "an event filter is installed and this is a different host PMU"),
    "set_pmu.notfound": (errno.ENXIO, "no host PMU KVM can use has this perf type id (see "
                         "/sys/bus/event_source/devices/*/type)"),
    # SET_NR_COUNTERS
    "nr.efault": (errno.EFAULT, "the counter number could not be read"),
    "nr.no_pmu": (errno.EINVAL, "no host PMU is selected for this VM"),
    "nr.too_many": (errno.EINVAL, "more event counters than the selected host PMU implements"),
    # GET / HAS (PMU)
    "get.irq.no_irqchip": (errno.EINVAL, "there is no in-kernel irqchip, so there is no PMU "
                           "interrupt to read (checked before the PMU feature)"),
    "get.irq.nodev": (errno.ENODEV, "this vCPU has no PMU (created without KVM_ARM_VCPU_PMU_V3)"),
    "get.irq.unset": (errno.ENXIO, "the PMU interrupt of this vCPU was never set"),
    "get.efault": (errno.EFAULT, "the value could not be written to the user pointer"),
    "get.pmu.not_readable": (errno.ENXIO, "only KVM_ARM_VCPU_PMU_V3_IRQ can be read back"),
    "has.pmu": (errno.ENXIO, "not supported: unknown PMU attribute, or the vCPU has no PMU"),
    # timers
    "timer.no_irqchip": (errno.EINVAL, "there is no in-kernel irqchip; timer interrupts can only "
                         "be chosen with a vGIC"),
    "timer.efault": (errno.EFAULT, "the interrupt number could not be read"),
    "timer.not_ppi": (errno.EINVAL, "timer interrupts must be PPIs (16..31)"),
    "timer.frozen": (errno.EBUSY, "timer interrupts are frozen: a vCPU has already run"),
    "timer.unknown_attr": (errno.ENXIO, "unknown timer attribute (VTIMER=0, PTIMER=1, "
                           "HVTIMER=2, HPTIMER=3)"),
    "get.timer.unknown": (errno.ENXIO, "unknown timer attribute (VTIMER=0, PTIMER=1, "
                          "HVTIMER=2, HPTIMER=3)"),
    "has.timer": (errno.ENXIO, "unknown timer attribute"),
    # PV time
    "pvtime.unsupported": (errno.ENXIO, "stolen time is not available (host has no sched_info) "
                           "or the attribute is not KVM_ARM_VCPU_PVTIME_IPA"),
    "pvtime.efault": (errno.EFAULT, "the IPA could not be read"),
    "pvtime.align": (errno.EINVAL, "the stolen-time structure must be 64-byte aligned"),
    "pvtime.exists": (errno.EEXIST, "the stolen-time base of this vCPU is already set"),
    "pvtime.memslot": (errno.EINVAL, "the IPA is not inside a guest memory slot"),
    "has.pvtime": (errno.ENXIO, "stolen time is not available or unknown attribute"),
    # KVM_RUN (kvm_arch_vcpu_run_pid_change)
    "run.timer": (errno.EINVAL, "the timer PPIs conflict: two timers share a PPI, or a timer "
                  "uses an interrupt another device (the PMU) owns"),
    "run.pmu_uninit": (errno.EINVAL, "the vCPU has the PMU feature but "
                       "KVM_ARM_VCPU_PMU_V3_INIT was never done"),
    "run.pmu_irq": (errno.EINVAL, "the PMU interrupt is not valid for the in-kernel vGIC (e.g. "
                    "the PMU was INIT'ed before the vGIC was created)"),
    # vCPU creation (KVM_CREATE_VCPU + KVM_ARM_VCPU_INIT)
    "vcpu.after_vgic_init": (errno.EBUSY, "vCPUs cannot be created once the vGIC is initialised"),
    "vcpu.pmu_unsupported": (errno.EINVAL, "the host has no PMUv3 KVM can use, so the "
                             "KVM_ARM_VCPU_PMU_V3 feature is not supported"),
    "vcpu.features": (errno.EINVAL, "every vCPU of a VM must be initialised with the same "
                      "features (with or without KVM_ARM_VCPU_PMU_V3)"),
    "vcpu.no_default_pmu": (errno.ENODEV, "no host PMU covers the CPU the VMM runs on, so "
                            "KVM cannot pick a default PMU"),
    # vGIC device
    "vgic.exists": (errno.EEXIST, "the VM already has an in-kernel irqchip"),
    "vgic.has_run": (errno.EBUSY, "a vCPU has already run; the irqchip can no longer be created"),
    "vgic.efault": (errno.EFAULT, "the value could not be read"),
    "vgic.nr_irqs_range": (errno.EINVAL, "NR_IRQS must be a multiple of 32 between 64 and 1023 "
                           "(at least 32 SPIs)"),
    "vgic.nr_irqs_busy": (errno.EBUSY, "the number of interrupts is already set (by an earlier "
                          "NR_IRQS or by vGIC initialisation)"),
    "vgic.unknown": (errno.ENXIO, "unknown or unmodelled vGIC attribute"),
    # memory slots
    "memslot.align": (errno.EINVAL, "guest_phys_addr and memory_size must be page aligned"),
    "memslot.overlap": (errno.EEXIST, "the range overlaps another memory slot"),
    "memslot.resize": (errno.EINVAL, "an existing memory slot cannot change size"),
    "memslot.missing": (errno.EINVAL, "deleting a memory slot that does not exist"),
    # ID register writes
    "idreg.too_high": (errno.EINVAL, "ID_AA64DFR0_EL1.PMUVer may not promise more than KVM's "
                       "limit (min(host PMUVer, v3p5), 0 without a PMU)"),
    "idreg.busy": (errno.EBUSY, "ID registers are immutable once a vCPU has run"),
}

_PMU_PREFIX = ["dispatch.efault", "dispatch.group", "pmu.nodev", "pmu.created"]
_ATTR_SET_CHECKS: dict[tuple, list[str]] = {
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_IRQ):
        _PMU_PREFIX + ["irq.no_irqchip", "irq.efault", "irq.range", "irq.inconsistent", "irq.busy"],
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_INIT):
        _PMU_PREFIX + ["init.vgic_uninit", "init.no_irq", "init.bad_irq", "init.owned"],
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_FILTER):
        _PMU_PREFIX + ["filter.efault", "filter.invalid", "filter.has_run"],
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_SET_PMU):
        _PMU_PREFIX + ["set_pmu.efault", "set_pmu.busy", "set_pmu.notfound"],
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS):
        _PMU_PREFIX + ["nr.efault", "nr.no_pmu", "nr.too_many"],
    (KVM_ARM_VCPU_PMU_V3_CTRL, None): _PMU_PREFIX + ["pmu.unknown_attr"],
    (KVM_ARM_VCPU_TIMER_CTRL, None): ["dispatch.efault", "dispatch.group", "timer.no_irqchip",
                                      "timer.efault", "timer.not_ppi", "timer.frozen",
                                      "timer.unknown_attr"],
    (KVM_ARM_VCPU_PVTIME_CTRL, None): ["dispatch.efault", "dispatch.group", "pvtime.unsupported",
                                       "pvtime.efault", "pvtime.align", "pvtime.exists",
                                       "pvtime.memslot"],
    ("KVM_RUN", None): ["run.timer", "run.pmu_uninit", "run.pmu_irq"],
    ("KVM_ARM_VCPU_INIT", None): ["vcpu.after_vgic_init", "vcpu.pmu_unsupported",
                                  "vcpu.features", "vcpu.no_default_pmu"],
    ("vGIC", KVM_DEV_ARM_VGIC_GRP_NR_IRQS): ["vgic.efault", "vgic.nr_irqs_range",
                                             "vgic.nr_irqs_busy"],
    ("vGIC", None): ["vgic.exists", "vgic.has_run", "vgic.unknown"],
    ("KVM_SET_USER_MEMORY_REGION", None): ["memslot.align", "memslot.overlap",
                                           "memslot.resize", "memslot.missing"],
    ("KVM_SET_ONE_REG", None): ["idreg.busy", "idreg.too_high"],
}
_ATTR_GET_CHECKS: dict[tuple, list[str]] = {
    (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_IRQ):
        ["dispatch.efault", "dispatch.group", "get.irq.no_irqchip", "get.irq.nodev",
         "get.irq.unset", "get.efault"],
    (KVM_ARM_VCPU_PMU_V3_CTRL, None): ["dispatch.efault", "dispatch.group", "get.pmu.not_readable"],
    (KVM_ARM_VCPU_TIMER_CTRL, None): ["dispatch.efault", "dispatch.group", "get.timer.unknown",
                                      "get.efault"],
    (KVM_ARM_VCPU_PVTIME_CTRL, None): ["dispatch.efault", "dispatch.group", "pvtime.unsupported",
                                       "get.efault"],
}
_ATTR_HAS_CHECKS: dict[tuple, list[str]] = {
    (KVM_ARM_VCPU_PMU_V3_CTRL, None): ["dispatch.efault", "dispatch.group", "has.pmu"],
    (KVM_ARM_VCPU_TIMER_CTRL, None): ["dispatch.efault", "dispatch.group", "has.timer"],
    (KVM_ARM_VCPU_PVTIME_CTRL, None): ["dispatch.efault", "dispatch.group", "has.pvtime"],
}


def checks_for(group: Any, attr: Any = None, op: str = "set") -> list[str]:
    """The check ids KVM runs for this attribute, in KVM's order (``op``: set, get or has)."""
    table = {"set": _ATTR_SET_CHECKS, "get": _ATTR_GET_CHECKS, "has": _ATTR_HAS_CHECKS}[op]
    if (group, attr) in table:
        return list(table[(group, attr)])
    if (group, None) in table:
        return list(table[(group, None)])
    return ["dispatch.efault", "dispatch.group"]


def explain(err: int, group: Any, attr: Any = None, check: Optional[str] = None,
            op: str = "set") -> str:
    """One line: ``"EBUSY: <what KVM means by it for this attribute>"``.

    With ``check`` (the ``.check`` attribute of an OSError raised here) the line names the
    exact rule; without it every rule of this attribute that returns ``err`` is listed.
    ``group`` may also be ``"KVM_RUN"``, ``"KVM_ARM_VCPU_INIT"``, ``"vGIC"``,
    ``"KVM_SET_USER_MEMORY_REGION"`` or ``"KVM_SET_ONE_REG"``.
    """
    name = errno.errorcode.get(err, f"errno {err}")
    if check is not None and check in EXPLANATIONS and EXPLANATIONS[check][0] == err:
        return f"{name}: {EXPLANATIONS[check][1]}"
    texts = [EXPLANATIONS[c][1] for c in checks_for(group, attr, op) if EXPLANATIONS[c][0] == err]
    if not texts:
        return f"{name}: {os.strerror(err)}"
    return f"{name}: " + "; or ".join(texts)


def _fail(code: int, check: str, group: Any = None, attr: Any = None,
          reason: Optional[str] = None) -> OSError:
    """An OSError exactly like ``fcntl.ioctl`` raises (OSError(EEXIST) is a FileExistsError),
    with the rule that failed attached."""
    assert EXPLANATIONS[check][0] == code, check
    e = OSError(code, os.strerror(code))
    e.check = check
    e.group = group
    e.attr = attr
    e.reason = reason or EXPLANATIONS[check][1]
    return e


class KvmAttrError(VpmuError):
    """A KVM call failed while building a VM (vmdesc files, CLI flags): one line with the
    attribute, the errno name and what KVM means by it.  Exit status ``EXIT_KVM`` (105).

    ``errno`` (number), ``errno_name`` ("EBUSY"), ``attribute`` (e.g.
    "KVM_ARM_VCPU_PMU_V3_INIT"), ``explanation`` ("EBUSY: the PMU of this vCPU is already ..."),
    ``check`` (rule id) and ``detail`` (the specific reason).
    """
    status = EXIT_KVM

    def __init__(self, err: OSError, attribute: str, group: Any = None, attr: Any = None,
                 what: str = "", source: str = ""):
        self.errno = err.errno
        self.errno_name = errno.errorcode.get(err.errno, str(err.errno))
        self.attribute = attribute
        self.check = getattr(err, "check", None)
        self.detail = getattr(err, "reason", None)
        self.explanation = explain(err.errno, group, attr, self.check)
        where = f"{source}: " if source else ""
        item = f" ({what})" if what else ""
        specific = f" [{self.detail}]" if self.detail and self.detail not in self.explanation else ""
        super().__init__(f"{where}{attribute}{item} failed: {self.explanation}{specific}")


class KvmExitFailEntry(VpmuError):
    """``KVM_RUN`` returned with ``exit_reason == KVM_EXIT_FAIL_ENTRY`` and
    ``hardware_entry_failure_reason == KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED``: the VMM thread
    runs on a CPU outside the VM's supported CPUs (narrowed by SET_PMU).  Not an errno."""
    status = EXIT_KVM

    def __init__(self, cpu: int, supported: frozenset):
        self.cpu = cpu
        self.supported = supported
        self.exit_reason = KVM_EXIT_FAIL_ENTRY
        self.hardware_entry_failure_reason = KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED
        super().__init__(f"KVM_EXIT_FAIL_ENTRY: CPU {cpu} is not one of the VM's supported CPUs "
                         f"{sorted(supported)} (KVM_ARM_VCPU_PMU_V3_SET_PMU restricts them to "
                         "the selected PMU's CPUs)")


# ---------------------------------------------------------------------------------------------
# Host

def _pmuver_of(version: Union[str, int]) -> int:
    if isinstance(version, int) and not isinstance(version, bool):
        if version in PMUVER_TO_NAME or version in (PMUVER_NI, PMUVER_IMP_DEF):
            return version
        raise ValueError(f"unsupported PMUVer value {version:#x}")
    if isinstance(version, str):
        key = version.strip().lower()
        if key in PMU_VERSIONS:
            return PMU_VERSIONS[key]
        if key in ("imp_def", "impdef", "imp-def"):
            return PMUVER_IMP_DEF
        if key in ("none", "0"):
            return PMUVER_NI
    raise ValueError(f"unknown PMU version {version!r} (use one of {', '.join(PMU_VERSIONS)}, "
                     "'imp_def' or 'none')")


@dataclass(frozen=True)
class HostPmu:
    """One host PMU instance as perf registers it (``/sys/bus/event_source/devices/<name>``).

    ``version`` is this PMU's PMUVer as a ``--pmu-version`` string ("3.0".."3.7"), ``"imp_def"``
    (a non-PMUv3 PMU, e.g. Apple) or ``"none"``; ``counters`` the general-purpose counters;
    ``cpus`` the CPUs it covers.
    """
    type: int
    version: str = "3.7"
    counters: int = 6
    cpus: tuple = (0, 1, 2, 3)
    name: str = "armv8_pmuv3_0"

    def __post_init__(self):
        _pmuver_of(self.version)
        if not 0 <= self.counters <= 31:
            raise ValueError(f"HostPmu.counters must be 0..31, not {self.counters}")
        object.__setattr__(self, "cpus", tuple(sorted(set(self.cpus))))

    @property
    def pmuver(self) -> int:
        return _pmuver_of(self.version)


@dataclass
class Host:
    """The host kernel's view relevant to the vPMU.

    ``steal_time`` stands for ``sched_info_on()`` (PV time support); ``current_cpu`` is the
    CPU the VMM thread calls KVM_ARM_VCPU_INIT / KVM_RUN on (default PMU choice, and the
    supported-CPUs check after SET_PMU).
    """
    pmus: list = field(default_factory=lambda: [HostPmu(type=8)])
    steal_time: bool = True
    current_cpu: int = 0

    @property
    def cpus(self) -> frozenset:
        out = {self.current_cpu}
        for p in self.pmus:
            out.update(p.cpus)
        return frozenset(out)

    @property
    def pmuver_limit(self) -> int:
        """``kvm_arm_pmu_get_pmuver_limit()``: the sanitised system PMUVer, IMP_DEF treated as
        none, capped at v3p5.

        ID_AA64DFR0_EL1.PMUVer is an FTR_EXACT field in ``cpufeature.c``: if the CPUs disagree
        the sanitised value is 0, so a host whose PMUs have different versions gives KVM no
        PMU at all.
        """
        versions = {p.pmuver for p in self.pmus}
        if len(versions) != 1:
            return PMUVER_NI
        v = versions.pop()
        if v == PMUVER_IMP_DEF:
            return PMUVER_NI
        return min(v, PMUVER_V3P5)

    @property
    def kvm_pmus(self) -> list:
        """PMUs ``kvm_host_pmu_init()`` registered: all of them if the limit is a PMUv3."""
        return list(self.pmus) if self.pmuver_limit else []


# ---------------------------------------------------------------------------------------------
# Device attribute struct and payload reading

@dataclass(frozen=True)
class KvmDeviceAttr:
    """``struct kvm_device_attr``; ``addr`` stands for the user memory it points to: the
    value itself (an int, a :class:`KvmPmuEventFilter`, 8 bytes...) or :data:`BAD_ADDRESS`."""
    group: int
    attr: int
    addr: Any = None
    flags: int = 0


def _c_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    value &= 0xFFFF_FFFF                     # the kernel reads 4 bytes
    return value - (1 << 32) if value & 0x8000_0000 else value


def _c_uint(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value & 0xFFFF_FFFF


def _c_u64(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value & 0xFFFF_FFFF_FFFF_FFFF


def _as_filter(value: Any) -> KvmPmuEventFilter:
    if isinstance(value, KvmPmuEventFilter):
        return value
    if isinstance(value, (bytes, bytearray)):
        return KvmPmuEventFilter.unpack(bytes(value))
    raise TypeError("KVM_ARM_VCPU_PMU_V3_FILTER takes a KvmPmuEventFilter or its 8 bytes, "
                    f"not {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# vGIC

class VgicV3:
    """The in-kernel GICv3 device (``KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3)``), as far as
    the PMU and timers need it: its size (NR_IRQS), initialisation, interrupt ownership."""

    def __init__(self, vm: "Vm"):
        self.vm = vm
        self.nr_spis = 0                 # 0 = not configured yet
        self.initialized = False
        self.addresses: dict = {}        # GRP_ADDR values, stored only
        self._spi_owner: dict[int, Any] = {}

    def valid_spi(self, irq: int) -> bool:
        """``vgic_valid_spi()``: an SPI this vGIC implements."""
        return VGIC_NR_PRIVATE_IRQS <= irq < VGIC_NR_PRIVATE_IRQS + self.nr_spis

    def set_attr(self, group: int, attr: int, value: Any = None) -> int:
        """``KVM_SET_DEVICE_ATTR`` on the vGIC device fd (vgic-kvm-device.c)."""
        if group == KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
            if value is BAD_ADDRESS:
                raise _fail(errno.EFAULT, "vgic.efault", "vGIC", group)
            val = _c_uint(value, "NR_IRQS")
            # "at least 32 SPIs on top of the 16 SGIs and 16 PPIs, at most 1024, multiple of 32"
            if val < VGIC_NR_PRIVATE_IRQS + 32 or val > VGIC_MAX_RESERVED or val & 31:
                raise _fail(errno.EINVAL, "vgic.nr_irqs_range", "vGIC", group,
                            f"NR_IRQS {val} is not a multiple of 32 in 64..{VGIC_MAX_RESERVED}")
            if self.nr_spis:
                raise _fail(errno.EBUSY, "vgic.nr_irqs_busy", "vGIC", group)
            self.nr_spis = val - VGIC_NR_PRIVATE_IRQS
            return 0
        if group == KVM_DEV_ARM_VGIC_GRP_CTRL and attr == KVM_DEV_ARM_VGIC_CTRL_INIT:
            self.init()
            return 0
        if group == KVM_DEV_ARM_VGIC_GRP_ADDR:
            self.addresses[attr] = value
            return 0
        raise _fail(errno.ENXIO, "vgic.unknown", "vGIC", group)

    def init(self) -> None:
        """``vgic_init()``: idempotent; supplies the legacy default size if none was set."""
        if self.initialized:
            return
        if not self.nr_spis:
            self.nr_spis = VGIC_NR_IRQS_LEGACY - VGIC_NR_PRIVATE_IRQS
        self.initialized = True

    def set_owner(self, vcpu: "Vcpu", intid: int, owner: Any) -> int:
        """``kvm_vgic_set_owner()``: returns 0 or a (positive) errno - EAGAIN if the vGIC is not
        initialised, EINVAL for an SGI or an SPI the vGIC lacks, EEXIST if another owner has it.

        PPIs are per-vCPU interrupt instances (so every vCPU may give PPI 23 to its PMU);
        SPIs are VM-wide.
        """
        if not self.initialized:
            return errno.EAGAIN
        if not is_ppi(intid) and not self.valid_spi(intid):
            return errno.EINVAL
        table = vcpu._ppi_owner if is_ppi(intid) else self._spi_owner
        current = table.get(intid)
        if current is not None and current != owner:
            return errno.EEXIST
        table[intid] = owner
        return 0

    def owner(self, vcpu: "Vcpu", intid: int) -> Any:
        return (vcpu._ppi_owner if is_ppi(intid) else self._spi_owner).get(intid)


# ---------------------------------------------------------------------------------------------
# VM

class Vm:
    """``KVM_CREATE_VM`` plus the VM-wide state the vPMU rules depend on.

    ``memory`` creates memory slot 0 at :data:`RAM_BASE` (0x4000_0000) of that size (0: none).
    """

    def __init__(self, host: Optional[Host] = None, memory: int = 128 << 20):
        self.host = host if host is not None else Host()
        self.vcpus: list[Vcpu] = []
        self.vgic: Optional[VgicV3] = None
        self.memslots: dict[int, tuple[int, int]] = {}
        self.has_run = False                      # KVM_ARCH_FLAG_HAS_RAN_ONCE
        self.features: Optional[frozenset] = None  # VM-wide vCPU features after the first INIT
        self.arm_pmu: Optional[HostPmu] = None     # kvm->arch.arm_pmu
        self.nr_pmu_counters = 0                   # kvm->arch.nr_pmu_counters (PMCR_EL0.N)
        self.supported_cpus = self.host.cpus       # kvm->arch.supported_cpus
        self._pmuver_limit = self.host.pmuver_limit
        # The filter bitmap is sized from the host limit, not the guest's PMUVer (pmu-emul.c:
        # "for KVM backward compatibility").  None when KVM has no PMU at all.
        self.pmu_filter: Optional[EventFilter] = (
            EventFilter(event_space(self._pmuver_limit)) if self._pmuver_limit else None)
        self.id_pmuver = 0                         # guest ID_AA64DFR0_EL1.PMUVer
        self.timer_ppis = dict(DEFAULT_TIMER_PPIS)  # kvm->arch.timer_data.ppi (VM-wide)
        self.timer_ppis_immutable = False          # KVM_ARCH_FLAG_TIMER_PPIS_IMMUTABLE
        if memory:
            self.set_user_memory_region(0, RAM_BASE, memory)

    # -- devices and memory ---------------------------------------------------------------
    def create_device(self, dev_type: int = KVM_DEV_TYPE_ARM_VGIC_V3) -> VgicV3:
        """``KVM_CREATE_DEVICE`` for the in-kernel irqchip (only GICv3 is modelled)."""
        if dev_type != KVM_DEV_TYPE_ARM_VGIC_V3:
            raise ValueError("only KVM_DEV_TYPE_ARM_VGIC_V3 is modelled")
        # kvm_vgic_create()
        if self.vgic is not None:
            raise _fail(errno.EEXIST, "vgic.exists", "vGIC")
        if any(v.has_run_once for v in self.vcpus):
            raise _fail(errno.EBUSY, "vgic.has_run", "vGIC")
        self.vgic = VgicV3(self)
        return self.vgic

    def create_vgic(self, nr_spis: Optional[int] = None, init: bool = True) -> VgicV3:
        """Convenience: create the vGICv3, set NR_IRQS = 32 + ``nr_spis`` if given, and
        (``init``) do KVM_DEV_ARM_VGIC_CTRL_INIT - which must come after every vCPU exists."""
        g = self.create_device(KVM_DEV_TYPE_ARM_VGIC_V3)
        if nr_spis is not None:
            g.set_attr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, VGIC_NR_PRIVATE_IRQS + nr_spis)
        if init:
            g.set_attr(KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT)
        return g

    def set_user_memory_region(self, slot: int, guest_phys_addr: int, memory_size: int) -> int:
        """``KVM_SET_USER_MEMORY_REGION`` (alignment, overlap, resize, delete with size 0)."""
        op = "KVM_SET_USER_MEMORY_REGION"
        if guest_phys_addr % PAGE_SIZE or memory_size % PAGE_SIZE:
            raise _fail(errno.EINVAL, "memslot.align", op)
        if memory_size == 0:
            if slot not in self.memslots:
                raise _fail(errno.EINVAL, "memslot.missing", op)
            del self.memslots[slot]
            return 0
        if slot in self.memslots and self.memslots[slot][1] != memory_size:
            raise _fail(errno.EINVAL, "memslot.resize", op)
        end = guest_phys_addr + memory_size
        for other, (gpa, size) in self.memslots.items():
            if other != slot and gpa < end and guest_phys_addr < gpa + size:
                raise _fail(errno.EEXIST, "memslot.overlap", op,
                            reason=f"[{guest_phys_addr:#x}, {end:#x}) overlaps slot {other}")
        self.memslots[slot] = (guest_phys_addr, memory_size)
        return 0

    def ipa_is_mapped(self, ipa: int) -> bool:
        """``gfn_to_hva()`` succeeds: the page of ``ipa`` is in some memory slot."""
        page = ipa - ipa % PAGE_SIZE
        return any(gpa <= page < gpa + size for gpa, size in self.memslots.values())

    @property
    def ram_size(self) -> int:
        for gpa, size in self.memslots.values():
            if gpa == RAM_BASE:
                return size
        return 0

    # -- vCPUs -----------------------------------------------------------------------------
    def create_vcpu(self, pmu: bool = True) -> "Vcpu":
        """``KVM_CREATE_VCPU`` followed by ``KVM_ARM_VCPU_INIT`` with PSCI 0.2 and, if
        ``pmu``, ``KVM_ARM_VCPU_PMU_V3``.  (A failed INIT leaves no vCPU behind here.)"""
        op = "KVM_ARM_VCPU_INIT"
        # kvm_arch_vcpu_precreate()
        if self.vgic is not None and self.vgic.initialized:
            raise _fail(errno.EBUSY, "vcpu.after_vgic_init", op)
        features = {KVM_ARM_VCPU_PSCI_0_2} | ({KVM_ARM_VCPU_PMU_V3} if pmu else set())
        features = frozenset(features)
        # kvm_vcpu_init_check_features(): unsupported feature -> EINVAL
        if pmu and not self.host.kvm_pmus:
            raise _fail(errno.EINVAL, "vcpu.pmu_unsupported", op)
        # kvm_vcpu_initialize(): the feature set is VM-wide once configured
        if self.features is not None and self.features != features:
            raise _fail(errno.EINVAL, "vcpu.features", op)
        # kvm_setup_vcpu(): pick the default PMU (the one covering the current CPU)
        if pmu and self.arm_pmu is None:
            default = next((p for p in self.host.kvm_pmus if self.host.current_cpu in p.cpus), None)
            if default is None:
                raise _fail(errno.ENODEV, "vcpu.no_default_pmu", op)
            self._set_pmu(default)        # supported_cpus deliberately NOT narrowed (pmu.c)
        self.features = features
        if pmu:
            # sanitise_id_aa64dfr0_el1(): PMUVer = limit only if the vCPU has a PMU
            if not self.id_pmuver:
                self.id_pmuver = self._pmuver_limit
        vcpu = Vcpu(self, len(self.vcpus), pmu)
        self.vcpus.append(vcpu)
        return vcpu

    def _set_pmu(self, p: HostPmu) -> None:
        """``kvm_arm_set_pmu()``: select and reset the counter number to the PMU's maximum."""
        self.arm_pmu = p
        self.nr_pmu_counters = p.counters

    def _pmu_irq_is_valid(self, irq: int) -> bool:
        """``pmu_irq_is_valid()``: PPIs identical on all vCPUs, SPIs distinct - checked against
        every vCPU whose irq is set, including the caller."""
        for v in self.vcpus:
            if not v.pmu_irq_initialized:
                continue
            if is_ppi(irq):
                if v.pmu_irq != irq:
                    return False
            elif v.pmu_irq == irq:
                return False
        return True

    def _timer_irqs_are_valid(self, vcpu: "Vcpu") -> bool:
        """``timer_irqs_are_valid()``: each timer claims its PPI on this vCPU; all distinct.
        On success the timer PPIs become immutable VM-wide.  Claims made before a failure
        stay (as in KVM)."""
        ppis = set()
        for name in _EL0_TIMERS:
            irq = self.timer_ppis[name]
            if self.vgic.set_owner(vcpu, irq, (name, vcpu.vcpu_id)):
                break
            ppis.add(irq)
        valid = len(ppis) == len(_EL0_TIMERS)
        if valid:
            self.timer_ppis_immutable = True
        return valid

    # -- the result ------------------------------------------------------------------------
    def machine_config(self, vcpu: "Vcpu") -> MachineConfig:
        """The :class:`MachineConfig` for running ``vcpu`` with the current VM state."""
        cfg = MachineConfig(memory=self.ram_size)
        if vcpu.has_pmu:
            if self.vgic is not None and vcpu.pmu_irq_initialized:
                irq = vcpu.pmu_irq
            else:
                # No in-kernel irqchip: KVM publishes the overflow level in
                # kvm_run->s.regs.device_irq_level bit 2 (KVM_ARM_DEV_PMU) and the VMM's own
                # interrupt controller delivers it.  Our board plays that VMM and wires it the
                # way QEMU virt does: PPI 23.
                irq = DEFAULT_PMU_IRQ
            cfg.pmu = PmuConfig(
                present=True,
                version=PMUVER_TO_NAME[self.id_pmuver],
                counters=self.nr_pmu_counters,
                irq=irq,
                filter_bitmap=self.pmu_filter.bitmap() if self.pmu_filter else None,
            )
        else:
            cfg.pmu = PmuConfig(present=False, counters=0, irq=DEFAULT_PMU_IRQ, filter_bitmap=None)
        cfg.timer_ppis = dict(self.timer_ppis)
        cfg.pvtime_ipa = None if vcpu.pvtime_base == INVALID_GPA else vcpu.pvtime_base
        return cfg


# ---------------------------------------------------------------------------------------------
# vCPU

class Vcpu:
    """A vCPU fd: device attributes and ``KVM_RUN``.  Create with :meth:`Vm.create_vcpu`."""

    def __init__(self, vm: Vm, vcpu_id: int, has_pmu: bool):
        self.vm = vm
        self.vcpu_id = vcpu_id
        self.has_pmu = has_pmu                  # kvm_vcpu_has_pmu()
        self.pmu_irq = 0                        # vcpu->arch.pmu.irq_num
        self.pmu_created = False                # vcpu->arch.pmu.created
        self.pvtime_base = INVALID_GPA          # vcpu->arch.steal.base
        self.timer_enabled = False              # vcpu->arch.timer_cpu.enabled
        self.has_run_once = False
        self._ppi_owner: dict[int, Any] = {}

    @property
    def pmu_irq_initialized(self) -> bool:
        """``kvm_arm_pmu_irq_initialized()``: irq_num >= VGIC_NR_SGIS."""
        return self.pmu_irq >= VGIC_NR_SGIS

    def __repr__(self) -> str:
        return f"<Vcpu {self.vcpu_id} pmu={self.has_pmu}>"

    # -- ioctl entry points ------------------------------------------------------------------
    def ioctl(self, request: int, arg: Union[KvmDeviceAttr, Any]) -> Any:
        """``ioctl(vcpu_fd, KVM_{SET,GET,HAS}_DEVICE_ATTR, &attr)``.

        ``arg`` is a :class:`KvmDeviceAttr` or :data:`BAD_ADDRESS`.  Returns 0 (SET, HAS) or,
        for GET, the value KVM would store at ``attr.addr`` (``attr.addr`` =
        :data:`BAD_ADDRESS` makes the store fault).
        """
        if request not in (KVM_SET_DEVICE_ATTR, KVM_GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR):
            raise ValueError(f"unsupported vCPU ioctl {request:#x}")
        if arg is BAD_ADDRESS:
            raise _fail(errno.EFAULT, "dispatch.efault")
        if not isinstance(arg, KvmDeviceAttr):
            raise TypeError("arg must be a KvmDeviceAttr or BAD_ADDRESS")
        group, attr = arg.group, arg.attr
        if group not in GROUP_NAMES:
            raise _fail(errno.ENXIO, "dispatch.group", group, attr)
        if request == KVM_SET_DEVICE_ATTR:
            return {KVM_ARM_VCPU_PMU_V3_CTRL: self._pmu_set,
                    KVM_ARM_VCPU_TIMER_CTRL: self._timer_set,
                    KVM_ARM_VCPU_PVTIME_CTRL: self._pvtime_set}[group](attr, arg.addr)
        if request == KVM_GET_DEVICE_ATTR:
            return {KVM_ARM_VCPU_PMU_V3_CTRL: self._pmu_get,
                    KVM_ARM_VCPU_TIMER_CTRL: self._timer_get,
                    KVM_ARM_VCPU_PVTIME_CTRL: self._pvtime_get}[group](attr, arg.addr)
        return {KVM_ARM_VCPU_PMU_V3_CTRL: self._pmu_has,
                KVM_ARM_VCPU_TIMER_CTRL: self._timer_has,
                KVM_ARM_VCPU_PVTIME_CTRL: self._pvtime_has}[group](attr)

    def set_attr(self, group: int, attr: int, value: Any = None) -> int:
        """``KVM_SET_DEVICE_ATTR``; ``value`` is what ``addr`` points to (or BAD_ADDRESS)."""
        return self.ioctl(KVM_SET_DEVICE_ATTR, KvmDeviceAttr(group, attr, value))

    def get_attr(self, group: int, attr: int, buf: Any = None) -> int:
        """``KVM_GET_DEVICE_ATTR``: returns the value (``buf=BAD_ADDRESS`` makes the copy-out
        fault)."""
        return self.ioctl(KVM_GET_DEVICE_ATTR, KvmDeviceAttr(group, attr, buf))

    def has_attr(self, group: int, attr: int) -> int:
        """``KVM_HAS_DEVICE_ATTR``: 0, or OSError(ENXIO)."""
        return self.ioctl(KVM_HAS_DEVICE_ATTR, KvmDeviceAttr(group, attr))

    # -- PMU group (pmu-emul.c kvm_arm_pmu_v3_set_attr & co) ---------------------------------
    def _pmu_set(self, attr: int, value: Any) -> int:
        vm, g = self.vm, KVM_ARM_VCPU_PMU_V3_CTRL
        if not self.has_pmu:
            raise _fail(errno.ENODEV, "pmu.nodev", g, attr)
        if self.pmu_created:                  # per-vCPU, and before the attr switch
            raise _fail(errno.EBUSY, "pmu.created", g, attr)

        if attr == KVM_ARM_VCPU_PMU_V3_IRQ:
            if vm.vgic is None:
                raise _fail(errno.EINVAL, "irq.no_irqchip", g, attr)
            if value is BAD_ADDRESS:
                raise _fail(errno.EFAULT, "irq.efault", g, attr)
            irq = _c_int(value, "PMU irq")
            if not (is_ppi(irq) or is_spi(irq)):
                raise _fail(errno.EINVAL, "irq.range", g, attr,
                            f"interrupt {irq} is neither a PPI (16..31) nor an SPI (32..1019)")
            if not vm._pmu_irq_is_valid(irq):
                raise _fail(errno.EINVAL, "irq.inconsistent", g, attr)
            if self.pmu_irq_initialized:
                raise _fail(errno.EBUSY, "irq.busy", g, attr,
                            f"this vCPU's PMU interrupt is already {self.pmu_irq}")
            self.pmu_irq = irq
            return 0

        if attr == KVM_ARM_VCPU_PMU_V3_FILTER:
            flt = vm.pmu_filter
            if value is BAD_ADDRESS:
                raise _fail(errno.EFAULT, "filter.efault", g, attr)
            f = _as_filter(value)
            if flt.check(f.base_event, f.nevents, f.action):
                if f.action not in (KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY):
                    why = f"action {f.action} is neither KVM_PMU_EVENT_ALLOW (0) nor _DENY (1)"
                else:
                    why = (f"base_event {f.base_event:#x} + nevents {f.nevents} = "
                           f"{f.base_event + f.nevents} exceeds the host's {flt.nr_events} events")
                raise _fail(errno.EINVAL, "filter.invalid", g, attr, why)
            if vm.has_run:
                raise _fail(errno.EBUSY, "filter.has_run", g, attr)
            flt.apply(f.base_event, f.nevents, f.action)
            return 0

        if attr == KVM_ARM_VCPU_PMU_V3_SET_PMU:
            if value is BAD_ADDRESS:
                raise _fail(errno.EFAULT, "set_pmu.efault", g, attr)
            pmu_id = _c_int(value, "PMU type id")
            for p in vm.host.kvm_pmus:
                if p.type == pmu_id:
                    if vm.has_run or (vm.pmu_filter.installed and
                                      (vm.arm_pmu is None or vm.arm_pmu.type != p.type)):
                        raise _fail(errno.EBUSY, "set_pmu.busy", g, attr)
                    vm._set_pmu(p)
                    vm.supported_cpus = frozenset(p.cpus)
                    return 0
            raise _fail(errno.ENXIO, "set_pmu.notfound", g, attr,
                        f"no host PMU has perf type {pmu_id}")

        if attr == KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS:
            if value is BAD_ADDRESS:
                raise _fail(errno.EFAULT, "nr.efault", g, attr)
            n = _c_uint(value, "counter number")
            if vm.arm_pmu is None:            # unreachable via the API: INIT picks a default
                raise _fail(errno.EINVAL, "nr.no_pmu", g, attr)
            if n > vm.arm_pmu.counters:
                raise _fail(errno.EINVAL, "nr.too_many", g, attr,
                            f"{n} counters requested, the selected PMU "
                            f"(type {vm.arm_pmu.type}) has {vm.arm_pmu.counters}")
            vm.nr_pmu_counters = n
            return 0

        if attr == KVM_ARM_VCPU_PMU_V3_INIT:
            if vm.vgic is not None:
                if not vm.vgic.initialized:
                    raise _fail(errno.ENODEV, "init.vgic_uninit", g, attr)
                if not self.pmu_irq_initialized:
                    raise _fail(errno.ENXIO, "init.no_irq", g, attr)
                r = vm.vgic.set_owner(self, self.pmu_irq, ("pmu", self.vcpu_id))
                if r == errno.EINVAL:
                    raise _fail(errno.EINVAL, "init.bad_irq", g, attr,
                                f"PMU interrupt {self.pmu_irq} is not a PPI and the vGIC "
                                f"implements SPIs 32..{31 + vm.vgic.nr_spis}")
                if r == errno.EEXIST:
                    raise _fail(errno.EEXIST, "init.owned", g, attr,
                                f"interrupt {self.pmu_irq} is already owned by "
                                f"{vm.vgic.owner(self, self.pmu_irq)[0]} on vCPU {self.vcpu_id}")
            self.pmu_created = True
            return 0

        raise _fail(errno.ENXIO, "pmu.unknown_attr", g, attr)

    def _pmu_get(self, attr: int, buf: Any) -> int:
        g = KVM_ARM_VCPU_PMU_V3_CTRL
        if attr == KVM_ARM_VCPU_PMU_V3_IRQ:
            if self.vm.vgic is None:          # checked before the PMU feature
                raise _fail(errno.EINVAL, "get.irq.no_irqchip", g, attr)
            if not self.has_pmu:
                raise _fail(errno.ENODEV, "get.irq.nodev", g, attr)
            if not self.pmu_irq_initialized:
                raise _fail(errno.ENXIO, "get.irq.unset", g, attr)
            if buf is BAD_ADDRESS:
                raise _fail(errno.EFAULT, "get.efault", g, attr)
            return self.pmu_irq
        raise _fail(errno.ENXIO, "get.pmu.not_readable", g, attr)

    def _pmu_has(self, attr: int) -> int:
        if attr in (KVM_ARM_VCPU_PMU_V3_IRQ, KVM_ARM_VCPU_PMU_V3_INIT, KVM_ARM_VCPU_PMU_V3_FILTER,
                    KVM_ARM_VCPU_PMU_V3_SET_PMU, KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS) and self.has_pmu:
            return 0
        raise _fail(errno.ENXIO, "has.pmu", KVM_ARM_VCPU_PMU_V3_CTRL, attr)

    # -- timer group (arch_timer.c) ----------------------------------------------------------
    def _timer_set(self, attr: int, value: Any) -> int:
        vm, g = self.vm, KVM_ARM_VCPU_TIMER_CTRL
        if vm.vgic is None:
            raise _fail(errno.EINVAL, "timer.no_irqchip", g, attr)
        if value is BAD_ADDRESS:
            raise _fail(errno.EFAULT, "timer.efault", g, attr)
        irq = _c_int(value, "timer irq")
        if not is_ppi(irq):                   # the value is validated before the attr id
            raise _fail(errno.EINVAL, "timer.not_ppi", g, attr, f"interrupt {irq} is not a PPI (16..31)")
        if vm.timer_ppis_immutable:
            raise _fail(errno.EBUSY, "timer.frozen", g, attr)
        if attr not in TIMER_NAMES:
            raise _fail(errno.ENXIO, "timer.unknown_attr", g, attr)
        # Stored VM-wide; uniqueness is only judged at the first run ("blame it on the API").
        vm.timer_ppis[TIMER_NAMES[attr]] = irq
        return 0

    def _timer_get(self, attr: int, buf: Any) -> int:
        g = KVM_ARM_VCPU_TIMER_CTRL
        if attr not in TIMER_NAMES:
            raise _fail(errno.ENXIO, "get.timer.unknown", g, attr)
        if buf is BAD_ADDRESS:
            raise _fail(errno.EFAULT, "get.efault", g, attr)
        return self.vm.timer_ppis[TIMER_NAMES[attr]]

    def _timer_has(self, attr: int) -> int:
        if attr in TIMER_NAMES:               # independent of the irqchip
            return 0
        raise _fail(errno.ENXIO, "has.timer", KVM_ARM_VCPU_TIMER_CTRL, attr)

    # -- PV time group (pvtime.c) ------------------------------------------------------------
    def _pvtime_set(self, attr: int, value: Any) -> int:
        vm, g = self.vm, KVM_ARM_VCPU_PVTIME_CTRL
        if not vm.host.steal_time or attr != KVM_ARM_VCPU_PVTIME_IPA:
            raise _fail(errno.ENXIO, "pvtime.unsupported", g, attr)
        if value is BAD_ADDRESS:
            raise _fail(errno.EFAULT, "pvtime.efault", g, attr)
        ipa = _c_u64(value, "PV time IPA")
        if ipa % 64:
            raise _fail(errno.EINVAL, "pvtime.align", g, attr, f"IPA {ipa:#x} is not 64-byte aligned")
        if self.pvtime_base != INVALID_GPA:
            raise _fail(errno.EEXIST, "pvtime.exists", g, attr,
                        f"this vCPU's stolen-time base is already {self.pvtime_base:#x}")
        if not vm.ipa_is_mapped(ipa):
            raise _fail(errno.EINVAL, "pvtime.memslot", g, attr,
                        f"IPA {ipa:#x} is not inside a guest memory slot")
        self.pvtime_base = ipa
        return 0

    def _pvtime_get(self, attr: int, buf: Any) -> int:
        g = KVM_ARM_VCPU_PVTIME_CTRL
        if not self.vm.host.steal_time or attr != KVM_ARM_VCPU_PVTIME_IPA:
            raise _fail(errno.ENXIO, "pvtime.unsupported", g, attr)
        if buf is BAD_ADDRESS:
            raise _fail(errno.EFAULT, "get.efault", g, attr)
        return self.pvtime_base

    def _pvtime_has(self, attr: int) -> int:
        if self.vm.host.steal_time and attr == KVM_ARM_VCPU_PVTIME_IPA:
            return 0
        raise _fail(errno.ENXIO, "has.pvtime", KVM_ARM_VCPU_PVTIME_CTRL, attr)

    # -- ID register --------------------------------------------------------------------------
    def set_id_pmuver(self, version: Union[str, int]) -> int:
        """``KVM_SET_ONE_REG(ID_AA64DFR0_EL1)`` changing only PMUVer (ID registers are VM-wide).

        Lower the guest's PMU version below KVM's default ``min(host, v3p5)``; more than the
        limit -> EINVAL; once the VM ran, any different value -> EBUSY (``set_id_reg()``).
        """
        v = _pmuver_of(version)
        if v not in PMUVER_TO_NAME:
            raise ValueError("only PMUv3 versions (3.0..3.7) are modelled for the guest")
        op = "KVM_SET_ONE_REG"
        if self.vm.has_run:
            if v != self.vm.id_pmuver:
                raise _fail(errno.EBUSY, "idreg.busy", op)
            return 0
        limit = self.vm._pmuver_limit if self.has_pmu else PMUVER_NI
        if v > limit:
            raise _fail(errno.EINVAL, "idreg.too_high", op,
                        f"PMUVer {PMUVER_TO_NAME[v]} is above KVM's limit "
                        f"{PMUVER_TO_NAME.get(limit, 'none')}")
        self.vm.id_pmuver = v
        return 0

    # -- KVM_RUN --------------------------------------------------------------------------------
    def run(self, image: Optional[str] = None, **run_options):
        """``KVM_RUN``.  The first run of this vCPU does ``kvm_arch_vcpu_run_pid_change()``:
        vGIC resources (lazy vGIC init), ``kvm_timer_enable()`` (timer PPIs claimed on this
        vCPU, pairwise distinct, then frozen VM-wide), ``kvm_arm_pmu_v3_enable()`` (PMU INIT
        done, irq valid) and finally marks the VM as having run.  A failure leaves the VM
        not-run (retrying is allowed; claims already made stay).

        Returns the :class:`MachineConfig` of this vCPU, or - with ``image`` - the RunResult of
        ``vpmu.api.run_config(image, config, **run_options)``.  Raises
        :class:`KvmExitFailEntry` if the current host CPU is outside the supported CPUs.
        """
        vm = self.vm
        if not self.has_run_once:
            if vm.vgic is not None:
                vm.vgic.init()                       # kvm_vgic_map_resources -> vgic_lazy_init
            if not self.timer_enabled:
                if vm.vgic is not None and not vm._timer_irqs_are_valid(self):
                    raise _fail(errno.EINVAL, "run.timer", "KVM_RUN", None,
                                "timer PPIs " + ", ".join(f"{n}={vm.timer_ppis[n]}" for n in _EL0_TIMERS)
                                + (f" (PMU PPI {self.pmu_irq})" if self.pmu_irq_initialized else "")
                                + " cannot all be claimed on this vCPU")
                self.timer_enabled = True
            if self.has_pmu:
                if not self.pmu_created:
                    raise _fail(errno.EINVAL, "run.pmu_uninit", "KVM_RUN")
                if vm.vgic is not None:
                    if not is_ppi(self.pmu_irq) and not vm.vgic.valid_spi(self.pmu_irq):
                        raise _fail(errno.EINVAL, "run.pmu_irq", "KVM_RUN", None,
                                    f"PMU interrupt {self.pmu_irq} is not valid for the vGIC")
                elif self.pmu_irq_initialized:       # cannot happen: IRQ needs an irqchip
                    raise _fail(errno.EINVAL, "run.pmu_irq", "KVM_RUN")
            vm.has_run = True
            self.has_run_once = True
        if vm.host.current_cpu not in vm.supported_cpus:
            raise KvmExitFailEntry(vm.host.current_cpu, vm.supported_cpus)
        config = vm.machine_config(self)
        if image is None:
            return config
        from .api import run_config          # provided by the runner
        return run_config(image, config, **run_options)

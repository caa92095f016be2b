"""KVM's failures: the rule ids, their errno and what KVM means by them (:data:`EXPLANATIONS`),
KVM's check order - kept only here, in :data:`CHECK_ORDER`, and walked by the code through
:func:`run_checks` - :func:`explain`, the ``OSError`` a failed ioctl raises (:func:`fail`),
and the runner-side errors :class:`KvmAttrError` and :class:`KvmExitFailEntry`."""
from __future__ import annotations

import errno
import os
from typing import Any, Callable, Mapping, Optional, Union

from ..errors import EXIT_KVM, VpmuError
from .uapi import (KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_FILTER, KVM_ARM_VCPU_PMU_V3_INIT,
                   KVM_ARM_VCPU_PMU_V3_IRQ, KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS,
                   KVM_ARM_VCPU_PMU_V3_SET_PMU, KVM_ARM_VCPU_PVTIME_CTRL, KVM_ARM_VCPU_PVTIME_IPA,
                   KVM_ARM_VCPU_TIMER_CTRL, KVM_ARM_VCPU_TIMER_IRQ_HPTIMER,
                   KVM_ARM_VCPU_TIMER_IRQ_HVTIMER, KVM_ARM_VCPU_TIMER_IRQ_PTIMER,
                   KVM_ARM_VCPU_TIMER_IRQ_VTIMER, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_DEV_ARM_VGIC_GRP_CTRL,
                   KVM_DEV_ARM_VGIC_GRP_NR_IRQS, KVM_EXIT_FAIL_ENTRY,
                   KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED)


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

# KVM's check order: the one place it is kept.  Each entry is one KVM entry point - a device
# attribute (op, group, attr), or an ioctl named by a string group - and its rules in the order
# the kernel tests them; the first that fails gives the errno.  The code walks these lists
# (:func:`run_checks` with the rule tests of vcpu.py, vm.py and vgic.py); it does not repeat
# the order.  attr None is every other attribute of the group.
_DISPATCH = ("dispatch.efault", "dispatch.group")      # guest.c: copy_from_user, group switch
_PMU_SET = _DISPATCH + ("pmu.nodev", "pmu.created")    # kvm_arm_pmu_v3_set_attr(), before the attr switch
_P, _T, _V = KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_TIMER_CTRL, KVM_ARM_VCPU_PVTIME_CTRL
CHECK_ORDER: dict[tuple[str, Any, Any], tuple[str, ...]] = {
    # KVM_SET_DEVICE_ATTR on a vCPU (pmu-emul.c, arch_timer.c, pvtime.c)
    ("set", _P, KVM_ARM_VCPU_PMU_V3_IRQ):
        _PMU_SET + ("irq.no_irqchip", "irq.efault", "irq.range", "irq.inconsistent", "irq.busy"),
    ("set", _P, KVM_ARM_VCPU_PMU_V3_INIT):
        _PMU_SET + ("init.vgic_uninit", "init.no_irq", "init.bad_irq", "init.owned"),
    ("set", _P, KVM_ARM_VCPU_PMU_V3_FILTER):
        _PMU_SET + ("filter.efault", "filter.invalid", "filter.has_run"),
    ("set", _P, KVM_ARM_VCPU_PMU_V3_SET_PMU):
        _PMU_SET + ("set_pmu.efault", "set_pmu.busy", "set_pmu.notfound"),
    ("set", _P, KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS):
        _PMU_SET + ("nr.efault", "nr.no_pmu", "nr.too_many"),
    ("set", _P, None): _PMU_SET + ("pmu.unknown_attr",),
    ("set", _T, None):
        _DISPATCH + ("timer.no_irqchip", "timer.efault", "timer.not_ppi", "timer.frozen", "timer.unknown_attr"),
    ("set", _V, None):
        _DISPATCH + ("pvtime.unsupported", "pvtime.efault", "pvtime.align", "pvtime.exists", "pvtime.memslot"),
    # KVM_GET_DEVICE_ATTR
    ("get", _P, KVM_ARM_VCPU_PMU_V3_IRQ):
        _DISPATCH + ("get.irq.no_irqchip", "get.irq.nodev", "get.irq.unset", "get.efault"),
    ("get", _P, None): _DISPATCH + ("get.pmu.not_readable",),
    ("get", _T, None): _DISPATCH + ("get.timer.unknown", "get.efault"),
    ("get", _V, None): _DISPATCH + ("pvtime.unsupported", "get.efault"),
    # KVM_HAS_DEVICE_ATTR
    ("has", _P, None): _DISPATCH + ("has.pmu",),
    ("has", _T, None): _DISPATCH + ("has.timer",),
    ("has", _V, None): _DISPATCH + ("has.pvtime",),
    # other ioctls: the first KVM_RUN (kvm_arch_vcpu_run_pid_change), KVM_ARM_VCPU_INIT,
    # the vGIC device (vgic-kvm-device.c), memory slots (kvm_main.c), ID registers (sys_regs.c)
    ("set", "KVM_RUN", None): ("run.timer", "run.pmu_uninit", "run.pmu_irq"),
    ("set", "KVM_ARM_VCPU_INIT", None):
        ("vcpu.after_vgic_init", "vcpu.pmu_unsupported", "vcpu.features", "vcpu.no_default_pmu"),
    ("set", "KVM_CREATE_DEVICE", None): ("vgic.exists", "vgic.has_run"),
    ("set", "vGIC", KVM_DEV_ARM_VGIC_GRP_NR_IRQS): ("vgic.efault", "vgic.nr_irqs_range", "vgic.nr_irqs_busy"),
    ("set", "vGIC", None): ("vgic.unknown",),
    ("set", "KVM_SET_USER_MEMORY_REGION", None):
        ("memslot.align", "memslot.missing", "memslot.resize", "memslot.overlap"),
    ("set", "KVM_SET_ONE_REG", None): ("idreg.busy", "idreg.too_high"),
}

# A rule test: None/False = passes; True = fails with the rule's text; a string = fails with
# this specific reason.
Verdict = Union[None, bool, str]


def checks_for(group: Any, attr: Any = None, op: str = "set") -> list[str]:
    """The rule ids KVM tests for this attribute or ioctl, in KVM's order (``op``: set, get or
    has); an unknown vCPU attribute group stops at the dispatch."""
    if op not in ("set", "get", "has"):
        raise ValueError(f"op must be 'set', 'get' or 'has', not {op!r}")
    for key in ((op, group, attr), (op, group, None)):
        if key in CHECK_ORDER:
            return list(CHECK_ORDER[key])
    return list(_DISPATCH)


def run_checks(tests: Mapping[str, Callable[[Any], Verdict]], call: Any, group: Any, attr: Any = None,
               op: str = "set") -> None:
    """Walk KVM's rules for this call in order (:data:`CHECK_ORDER`) and raise the OSError of
    the first that fails.  ``tests`` maps each rule id to its test of ``call``; a test may also
    do what the kernel does when the check passes (e.g. claim the timer PPIs at the first
    KVM_RUN), as the kernel's own functions do."""
    for check in checks_for(group, attr, op):
        verdict = tests[check](call)
        if verdict:
            raise fail(check, group, attr, verdict if isinstance(verdict, str) else None)


def explain(err: int, group: Any, attr: Any = None, check: Optional[str] = None,
            op: str = "set") -> str:
    """One line: ``"EBUSY: <what KVM means by it for this attribute>"``.

    With ``check`` (the ``.check`` attribute of an OSError raised here) the line names the
    exact rule; without it every rule of this attribute that returns ``err`` is listed.
    ``group`` may also be ``"KVM_RUN"``, ``"KVM_ARM_VCPU_INIT"``, ``"KVM_CREATE_DEVICE"``,
    ``"vGIC"`` (its attribute groups), ``"KVM_SET_USER_MEMORY_REGION"`` or ``"KVM_SET_ONE_REG"``.
    """
    name = errno.errorcode.get(err, f"errno {err}")
    if check is not None and check in EXPLANATIONS and EXPLANATIONS[check][0] == err:
        return f"{name}: {EXPLANATIONS[check][1]}"
    texts = [EXPLANATIONS[c][1] for c in checks_for(group, attr, op) if EXPLANATIONS[c][0] == err]
    if not texts:
        return f"{name}: {os.strerror(err)}"
    return f"{name}: " + "; or ".join(texts)


def fail(check: str, group: Any = None, attr: Any = None, reason: Optional[str] = None) -> OSError:
    """The OSError a failed ioctl raises for rule ``check`` (errno from :data:`EXPLANATIONS`;
    OSError(EEXIST) is a FileExistsError, as with ``fcntl.ioctl``), with the rule attached:
    ``.check``, ``.reason`` (a specific one-line message), ``.group``, ``.attr``."""
    code = EXPLANATIONS[check][0]
    e = OSError(code, os.strerror(code))
    for name, value in (("check", check), ("group", group), ("attr", attr),
                        ("reason", reason or EXPLANATIONS[check][1])):
        setattr(e, name, value)
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
        code = err.errno if err.errno is not None else 0     # raised by fail(): always set
        self.errno = code
        self.errno_name = errno.errorcode.get(code, str(code))
        self.attribute = attribute
        self.check = getattr(err, "check", None)
        self.detail = getattr(err, "reason", None)
        self.explanation = explain(code, group, attr, self.check)
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

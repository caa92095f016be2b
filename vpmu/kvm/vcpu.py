"""A vCPU fd: ``KVM_{SET,GET,HAS}_DEVICE_ATTR`` for the PMU, timer and PV-time groups, the
``ID_AA64DFR0_EL1.PMUVer`` write, and the first-``KVM_RUN`` checks."""
from __future__ import annotations

import errno
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from ..config import PMUVER_NI, PMUVER_TO_NAME, MachineConfig
from ..filter import KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY, KvmPmuEventFilter
from .explain import GROUP_NAMES, KvmExitFailEntry, Verdict, run_checks
from .host import HostPmu, _pmuver_of
from .uapi import (_EL0_TIMERS, BAD_ADDRESS, INVALID_GPA, KVM_ARM_VCPU_PMU_V3_CTRL,
                   KVM_ARM_VCPU_PMU_V3_FILTER, KVM_ARM_VCPU_PMU_V3_INIT, KVM_ARM_VCPU_PMU_V3_IRQ,
                   KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, KVM_ARM_VCPU_PMU_V3_SET_PMU,
                   KVM_ARM_VCPU_PVTIME_CTRL, KVM_ARM_VCPU_PVTIME_IPA, KVM_ARM_VCPU_TIMER_CTRL,
                   KVM_GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR, KVM_SET_DEVICE_ATTR,
                   TIMER_NAMES, VGIC_NR_SGIS, KvmDeviceAttr, _as_filter, _c_int, _c_u64, _c_uint,
                   is_ppi, is_spi)

if TYPE_CHECKING:
    from .vm import Vm


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
        :data:`BAD_ADDRESS` makes the store fault).  KVM's rules for the attribute are
        tested in KVM's order (:data:`vpmu.kvm.explain.CHECK_ORDER`); then it takes effect.
        """
        op = _OPS.get(request)
        if op is None:
            raise ValueError(f"unsupported vCPU ioctl {request:#x}")
        if arg is not BAD_ADDRESS and not isinstance(arg, KvmDeviceAttr):
            raise TypeError("arg must be a KvmDeviceAttr or BAD_ADDRESS")
        call = _AttrCall(self, arg)
        run_checks(_ATTR_CHECKS, call, call.group, call.attr, op)
        if op == "has":
            return 0
        return _EFFECTS[(op, _checked(call.group))](call)

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

    # -- ID register --------------------------------------------------------------------------
    def set_id_pmuver(self, version: Union[str, int]) -> int:
        """``KVM_SET_ONE_REG(ID_AA64DFR0_EL1)`` changing only PMUVer (ID registers are VM-wide).

        Lower the guest's PMU version below KVM's default ``min(host, v3p5)``; more than the
        limit -> EINVAL; once the VM ran, any different value -> EBUSY (``set_id_reg()``).
        """
        v = _pmuver_of(version)
        if v not in PMUVER_TO_NAME:
            raise ValueError("only PMUv3 versions (3.0..3.7) are modelled for the guest")
        run_checks(_ID_REG_CHECKS, _IdRegWrite(self, v), "KVM_SET_ONE_REG")
        if not self.vm.has_run:                      # after a run only the same value passes
            self.vm.id_pmuver = v
        return 0

    @property
    def pmuver_limit(self) -> int:
        """KVM's limit for the guest PMUVer: ``min(host, v3p5)``, 0 without a PMU."""
        return self.vm._pmuver_limit if self.has_pmu else PMUVER_NI

    # -- KVM_RUN --------------------------------------------------------------------------------
    def run(self) -> MachineConfig:
        """``KVM_RUN``.  The first run of this vCPU does ``kvm_arch_vcpu_run_pid_change()``:
        vGIC resources (lazy vGIC init), ``kvm_timer_enable()`` (timer PPIs claimed on this
        vCPU, pairwise distinct, then frozen VM-wide), ``kvm_arm_pmu_v3_enable()`` (PMU INIT
        done, irq valid) and finally marks the VM as having run.  A failure leaves the VM
        not-run (retrying is allowed; claims already made stay).

        Returns the :class:`~vpmu.config.MachineConfig` of this vCPU; to run a guest with it,
        ``vpmu.api.run_config(image, vcpu.run())``.  Raises :class:`KvmExitFailEntry` if the
        current host CPU is outside the supported CPUs.
        """
        vm = self.vm
        if not self.has_run_once:
            if vm.vgic is not None:
                vm.vgic.init()                       # kvm_vgic_map_resources -> vgic_lazy_init
            run_checks(_RUN_CHECKS, self, "KVM_RUN")
            vm.has_run = True
            self.has_run_once = True
        if vm.host.current_cpu not in vm.supported_cpus:
            raise KvmExitFailEntry(vm.host.current_cpu, vm.supported_cpus)
        return vm.machine_config(self)


# ---------------------------------------------------------------------------------------------
# One device-attribute call, and the rules KVM tests on it (their order: explain.CHECK_ORDER)

_OPS = {KVM_SET_DEVICE_ATTR: "set", KVM_GET_DEVICE_ATTR: "get", KVM_HAS_DEVICE_ATTR: "has"}
_PMU_ATTRS = (KVM_ARM_VCPU_PMU_V3_IRQ, KVM_ARM_VCPU_PMU_V3_INIT, KVM_ARM_VCPU_PMU_V3_FILTER,
              KVM_ARM_VCPU_PMU_V3_SET_PMU, KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS)


T = TypeVar("T")


def _checked(x: Optional[T]) -> T:
    """A part of the VM an earlier rule of KVM's check order made sure exists (the call was
    refused otherwise)."""
    if x is None:
        raise AssertionError("a KVM rule that requires this state did not run first")
    return x


class _AttrCall:
    """``struct kvm_device_attr`` as KVM sees it on one call.  The payload is read (and its
    C type enforced) only when a rule looks at it - after the rules that come before KVM's
    ``copy_from_user``/``get_user``."""

    def __init__(self, vcpu: Vcpu, arg: Any):
        self.vcpu, self.vm = vcpu, vcpu.vm
        self.whole_faults = arg is BAD_ADDRESS
        self.group: Optional[int] = None if self.whole_faults else arg.group
        self.attr: Optional[int] = None if self.whole_faults else arg.attr
        self.value = None if self.whole_faults else arg.addr

    @cached_property
    def faults(self) -> bool:
        return self.value is BAD_ADDRESS

    @cached_property
    def irq(self) -> int:
        return _c_int(self.value, "PMU irq" if self.group == KVM_ARM_VCPU_PMU_V3_CTRL else "timer irq")

    @cached_property
    def filter(self) -> KvmPmuEventFilter:
        return _as_filter(self.value)

    @cached_property
    def pmu_type(self) -> int:
        return _c_int(self.value, "PMU type id")

    @cached_property
    def host_pmu(self) -> Optional[HostPmu]:
        """SET_PMU: the host PMU KVM can use with this perf type id, if any."""
        return next((p for p in self.vm.host.kvm_pmus if p.type == self.pmu_type), None)

    @cached_property
    def counters(self) -> int:
        return _c_uint(self.value, "counter number")

    @cached_property
    def ipa(self) -> int:
        return _c_u64(self.value, "PV time IPA")


def _irq_range(c: _AttrCall) -> Verdict:
    if is_ppi(c.irq) or is_spi(c.irq):
        return None
    return f"interrupt {c.irq} is neither a PPI (16..31) nor an SPI (32..1019)"


def _filter_invalid(c: _AttrCall) -> Verdict:
    f, flt = c.filter, _checked(c.vm.pmu_filter)
    if not flt.check(f.base_event, f.nevents, f.action):
        return None
    if f.action not in (KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY):
        return f"action {f.action} is neither KVM_PMU_EVENT_ALLOW (0) nor _DENY (1)"
    return (f"base_event {f.base_event:#x} + nevents {f.nevents} = {f.base_event + f.nevents} "
            f"exceeds the host's {flt.nr_events} events")


def _set_pmu_busy(c: _AttrCall) -> Verdict:
    p, vm = c.host_pmu, c.vm
    return p is not None and (vm.has_run or (_checked(vm.pmu_filter).installed
                                             and (vm.arm_pmu is None or vm.arm_pmu.type != p.type)))


def _nr_too_many(c: _AttrCall) -> Verdict:
    pmu = _checked(c.vm.arm_pmu)
    if c.counters <= pmu.counters:
        return None
    return f"{c.counters} counters requested, the selected PMU (type {pmu.type}) has {pmu.counters}"


def _pmu_owner_check(c: _AttrCall) -> int:
    """INIT: would the vGIC give this vCPU's PMU its interrupt (kvm_vgic_set_owner)?"""
    return _checked(c.vm.vgic).owner_check(c.vcpu, c.vcpu.pmu_irq, ("pmu", c.vcpu.vcpu_id))


def _init_bad_irq(c: _AttrCall) -> Verdict:
    if c.vm.vgic is None or _pmu_owner_check(c) != errno.EINVAL:
        return None
    return (f"PMU interrupt {c.vcpu.pmu_irq} is not a PPI and the vGIC implements SPIs "
            f"32..{31 + c.vm.vgic.nr_spis}")


def _init_owned(c: _AttrCall) -> Verdict:
    if c.vm.vgic is None or _pmu_owner_check(c) != errno.EEXIST:
        return None
    return (f"interrupt {c.vcpu.pmu_irq} is already owned by "
            f"{c.vm.vgic.owner(c.vcpu, c.vcpu.pmu_irq)[0]} on vCPU {c.vcpu.vcpu_id}")


def _pvtime_unsupported(c: _AttrCall) -> Verdict:
    return not c.vm.host.steal_time or c.attr != KVM_ARM_VCPU_PVTIME_IPA


def _pvtime_exists(c: _AttrCall) -> Verdict:
    base = c.vcpu.pvtime_base
    return None if base == INVALID_GPA else f"this vCPU's stolen-time base is already {base:#x}"


# guest.c (dispatch), pmu-emul.c kvm_arm_pmu_v3_{set,get,has}_attr, arch_timer.c
# kvm_arm_timer_{set,get,has}_attr, pvtime.c kvm_arm_pvtime_{set,get,has}_attr
_ATTR_CHECKS: dict[str, Callable[[_AttrCall], Verdict]] = {
    "dispatch.efault": lambda c: c.whole_faults,
    "dispatch.group": lambda c: c.group not in GROUP_NAMES,
    # PMU, SET
    "pmu.nodev": lambda c: not c.vcpu.has_pmu,
    "pmu.created": lambda c: c.vcpu.pmu_created,          # per vCPU, before the attr switch
    "pmu.unknown_attr": lambda c: c.attr not in _PMU_ATTRS,
    "irq.no_irqchip": lambda c: c.vm.vgic is None,
    "irq.efault": lambda c: c.faults,
    "irq.range": _irq_range,
    "irq.inconsistent": lambda c: not c.vm._pmu_irq_is_valid(c.irq),
    "irq.busy": lambda c: c.vcpu.pmu_irq_initialized and f"this vCPU's PMU interrupt is already {c.vcpu.pmu_irq}",
    "filter.efault": lambda c: c.faults,
    "filter.invalid": _filter_invalid,
    "filter.has_run": lambda c: c.vm.has_run,
    "set_pmu.efault": lambda c: c.faults,
    "set_pmu.busy": _set_pmu_busy,
    "set_pmu.notfound": lambda c: c.host_pmu is None and f"no host PMU has perf type {c.pmu_type}",
    "nr.efault": lambda c: c.faults,
    "nr.no_pmu": lambda c: c.vm.arm_pmu is None,          # unreachable via the API: INIT picks a default
    "nr.too_many": _nr_too_many,
    "init.vgic_uninit": lambda c: c.vm.vgic is not None and not c.vm.vgic.initialized,
    "init.no_irq": lambda c: c.vm.vgic is not None and not c.vcpu.pmu_irq_initialized,
    "init.bad_irq": _init_bad_irq,
    "init.owned": _init_owned,
    # PMU, GET / HAS
    "get.irq.no_irqchip": lambda c: c.vm.vgic is None,    # checked before the PMU feature
    "get.irq.nodev": lambda c: not c.vcpu.has_pmu,
    "get.irq.unset": lambda c: not c.vcpu.pmu_irq_initialized,
    "get.efault": lambda c: c.faults,
    "get.pmu.not_readable": lambda c: c.attr != KVM_ARM_VCPU_PMU_V3_IRQ,
    "has.pmu": lambda c: not (c.attr in _PMU_ATTRS and c.vcpu.has_pmu),
    # timers: the value is validated before the attribute id
    "timer.no_irqchip": lambda c: c.vm.vgic is None,
    "timer.efault": lambda c: c.faults,
    "timer.not_ppi": lambda c: not is_ppi(c.irq) and f"interrupt {c.irq} is not a PPI (16..31)",
    "timer.frozen": lambda c: c.vm.timer_ppis_immutable,
    "timer.unknown_attr": lambda c: c.attr not in TIMER_NAMES,
    "get.timer.unknown": lambda c: c.attr not in TIMER_NAMES,
    "has.timer": lambda c: c.attr not in TIMER_NAMES,     # independent of the irqchip
    # PV time
    "pvtime.unsupported": _pvtime_unsupported,
    "pvtime.efault": lambda c: c.faults,
    "pvtime.align": lambda c: bool(c.ipa % 64) and f"IPA {c.ipa:#x} is not 64-byte aligned",
    "pvtime.exists": _pvtime_exists,
    "pvtime.memslot": lambda c: not c.vm.ipa_is_mapped(c.ipa) and f"IPA {c.ipa:#x} is not inside a guest memory slot",
    "has.pvtime": _pvtime_unsupported,
}


def _set_pmu_attr(c: _AttrCall) -> int:
    vcpu, vm = c.vcpu, c.vm
    if c.attr == KVM_ARM_VCPU_PMU_V3_IRQ:
        vcpu.pmu_irq = c.irq
    elif c.attr == KVM_ARM_VCPU_PMU_V3_FILTER:
        _checked(vm.pmu_filter).apply(c.filter.base_event, c.filter.nevents, c.filter.action)
    elif c.attr == KVM_ARM_VCPU_PMU_V3_SET_PMU:
        p = _checked(c.host_pmu)
        vm._set_pmu(p)
        vm.supported_cpus = frozenset(p.cpus)
    elif c.attr == KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS:
        vm.nr_pmu_counters = c.counters
    else:                                               # INIT
        if vm.vgic is not None:
            vm.vgic.set_owner(vcpu, vcpu.pmu_irq, ("pmu", vcpu.vcpu_id))
        vcpu.pmu_created = True
    return 0


def _set_timer_attr(c: _AttrCall) -> int:
    # Stored VM-wide; uniqueness is only judged at the first run ("blame it on the API").
    c.vm.timer_ppis[TIMER_NAMES[_checked(c.attr)]] = c.irq
    return 0


def _set_pvtime_attr(c: _AttrCall) -> int:
    c.vcpu.pvtime_base = c.ipa
    return 0


# What a call that passed its rules does (SET) or returns (GET); HAS returns 0.
_EFFECTS: dict[tuple[str, int], Callable[[_AttrCall], int]] = {
    ("set", KVM_ARM_VCPU_PMU_V3_CTRL): _set_pmu_attr,
    ("set", KVM_ARM_VCPU_TIMER_CTRL): _set_timer_attr,
    ("set", KVM_ARM_VCPU_PVTIME_CTRL): _set_pvtime_attr,
    ("get", KVM_ARM_VCPU_PMU_V3_CTRL): lambda c: c.vcpu.pmu_irq,
    ("get", KVM_ARM_VCPU_TIMER_CTRL): lambda c: c.vm.timer_ppis[TIMER_NAMES[_checked(c.attr)]],
    ("get", KVM_ARM_VCPU_PVTIME_CTRL): lambda c: c.vcpu.pvtime_base,
}


# ---------------------------------------------------------------------------------------------
# KVM_SET_ONE_REG (sys_regs.c set_id_reg) and the first KVM_RUN (arm.c)

class _IdRegWrite:
    """One ``KVM_SET_ONE_REG`` of ID_AA64DFR0_EL1.PMUVer."""

    def __init__(self, vcpu: Vcpu, pmuver: int):
        self.vm, self.pmuver, self.limit = vcpu.vm, pmuver, vcpu.pmuver_limit


def _idreg_too_high(w: _IdRegWrite) -> Verdict:
    if w.vm.has_run or w.pmuver <= w.limit:
        return None
    return f"PMUVer {PMUVER_TO_NAME[w.pmuver]} is above KVM's limit {PMUVER_TO_NAME.get(w.limit, 'none')}"


_ID_REG_CHECKS: dict[str, Callable[[_IdRegWrite], Verdict]] = {
    "idreg.busy": lambda w: w.vm.has_run and w.pmuver != w.vm.id_pmuver,
    "idreg.too_high": _idreg_too_high,
}


def _run_timer(vcpu: Vcpu) -> Verdict:
    """kvm_timer_enable(): once per vCPU, the EL1 timers claim their PPIs on it (all distinct);
    claims made before a failure stay, as in KVM."""
    vm = vcpu.vm
    if vcpu.timer_enabled:
        return None
    if vm.vgic is not None and not vm._timer_irqs_are_valid(vcpu):
        return ("timer PPIs " + ", ".join(f"{n}={vm.timer_ppis[n]}" for n in _EL0_TIMERS)
                + (f" (PMU PPI {vcpu.pmu_irq})" if vcpu.pmu_irq_initialized else "")
                + " cannot all be claimed on this vCPU")
    vcpu.timer_enabled = True
    return None


def _run_pmu_irq(vcpu: Vcpu) -> Verdict:
    """kvm_arm_pmu_v3_enable(): the irq must suit the in-kernel vGIC (without one it cannot be
    set at all)."""
    if not vcpu.has_pmu:
        return None
    if vcpu.vm.vgic is None:
        return vcpu.pmu_irq_initialized
    if is_ppi(vcpu.pmu_irq) or vcpu.vm.vgic.valid_spi(vcpu.pmu_irq):
        return None
    return f"PMU interrupt {vcpu.pmu_irq} is not valid for the vGIC"


_RUN_CHECKS: dict[str, Callable[[Vcpu], Verdict]] = {
    "run.timer": _run_timer,
    "run.pmu_uninit": lambda v: v.has_pmu and not v.pmu_created,
    "run.pmu_irq": _run_pmu_irq,
}

"""A vCPU fd: ``KVM_{SET,GET,HAS}_DEVICE_ATTR`` for the PMU, timer and PV-time groups, the
``ID_AA64DFR0_EL1.PMUVer`` write, and the first-``KVM_RUN`` checks."""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Union

from ..config import PMUVER_NI, PMUVER_TO_NAME, MachineConfig
from ..filter import KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY
from .explain import GROUP_NAMES, KvmExitFailEntry, _fail
from .host import _pmuver_of
from .uapi import (_EL0_TIMERS, BAD_ADDRESS, INVALID_GPA, KVM_ARM_VCPU_PMU_V3_CTRL,
                   KVM_ARM_VCPU_PMU_V3_FILTER, KVM_ARM_VCPU_PMU_V3_INIT, KVM_ARM_VCPU_PMU_V3_IRQ,
                   KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, KVM_ARM_VCPU_PMU_V3_SET_PMU,
                   KVM_ARM_VCPU_PVTIME_CTRL, KVM_ARM_VCPU_PVTIME_IPA, KVM_ARM_VCPU_TIMER_CTRL,
                   KVM_GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR, KVM_SET_DEVICE_ATTR,
                   TIMER_NAMES, VGIC_NR_SGIS, KvmDeviceAttr, _as_filter, _c_int, _c_u64, _c_uint,
                   is_ppi, is_spi)

if TYPE_CHECKING:
    from .vm import Vm


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
        return vm.machine_config(self)

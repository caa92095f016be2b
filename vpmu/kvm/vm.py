"""``KVM_CREATE_VM``: the VM-wide state the vPMU rules depend on (vCPUs, vGIC, memory slots,
selected host PMU, counter number, event filter, timer PPIs, "has run") and the
:class:`~vpmu.config.MachineConfig` a vCPU of it runs with."""
from __future__ import annotations

from typing import Callable, Optional

from ..config import DEFAULT_PMU_IRQ, DEFAULT_TIMER_PPIS, PMUVER_TO_NAME, MachineConfig, PmuConfig
from ..filter import EventFilter, event_space
from .explain import Verdict, run_checks
from .host import Host, HostPmu
from .uapi import (_EL0_TIMERS, INVALID_GPA, KVM_ARM_VCPU_PMU_V3, KVM_ARM_VCPU_PSCI_0_2,
                   KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_VGIC_GRP_CTRL,
                   KVM_DEV_ARM_VGIC_GRP_NR_IRQS, KVM_DEV_TYPE_ARM_VGIC_V3, PAGE_SIZE, RAM_BASE,
                   VGIC_NR_PRIVATE_IRQS, is_ppi)
from .vcpu import Vcpu
from .vgic import VgicV3


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
        self.has_run: bool = False                # KVM_ARCH_FLAG_HAS_RAN_ONCE
        self.features: Optional[frozenset] = None  # VM-wide vCPU features after the first INIT
        self.arm_pmu: Optional[HostPmu] = None     # kvm->arch.arm_pmu
        self.nr_pmu_counters = 0                   # kvm->arch.nr_pmu_counters (PMCR_EL0.N)
        self.supported_cpus = self.host.cpus       # kvm->arch.supported_cpus
        self._pmuver_limit = self.host.pmuver_limit
        # The filter bitmap is sized from the host limit, not the guest's PMUVer (pmu-emul.c:
        # "for KVM backward compatibility").  None when KVM has no PMU at all.
        self.pmu_filter: Optional[EventFilter] = (
            EventFilter(event_space(self._pmuver_limit)) if self._pmuver_limit else None)
        self.id_pmuver: int = 0                    # guest ID_AA64DFR0_EL1.PMUVer
        self.timer_ppis: dict[str, int] = dict(DEFAULT_TIMER_PPIS)  # kvm->arch.timer_data.ppi (VM-wide)
        self.timer_ppis_immutable: bool = False    # KVM_ARCH_FLAG_TIMER_PPIS_IMMUTABLE
        if memory:
            self.set_user_memory_region(0, RAM_BASE, memory)

    # -- devices and memory ---------------------------------------------------------------
    def create_device(self, dev_type: int = KVM_DEV_TYPE_ARM_VGIC_V3) -> VgicV3:
        """``KVM_CREATE_DEVICE`` for the in-kernel irqchip (only GICv3 is modelled)."""
        if dev_type != KVM_DEV_TYPE_ARM_VGIC_V3:
            raise ValueError("only KVM_DEV_TYPE_ARM_VGIC_V3 is modelled")
        run_checks(_CREATE_DEVICE_CHECKS, self, "KVM_CREATE_DEVICE")      # kvm_vgic_create()
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
        """``KVM_SET_USER_MEMORY_REGION`` (alignment, delete with size 0, resize, overlap)."""
        run_checks(_MEMSLOT_CHECKS, _Memslot(self, slot, guest_phys_addr, memory_size),
                   "KVM_SET_USER_MEMORY_REGION")
        if memory_size == 0:
            del self.memslots[slot]
        else:
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
        init = _VcpuInit(self, pmu)
        run_checks(_VCPU_INIT_CHECKS, init, "KVM_ARM_VCPU_INIT")
        if pmu and self.arm_pmu is None and init.default_pmu is not None:
            self._set_pmu(init.default_pmu)   # supported_cpus deliberately NOT narrowed (pmu.c)
        self.features = init.features
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
            if self.vgic is None or self.vgic.set_owner(vcpu, irq, (name, vcpu.vcpu_id)):
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
# The rules of the VM-level ioctls (their order: explain.CHECK_ORDER)

# kvm_vgic_create()
_CREATE_DEVICE_CHECKS: dict[str, Callable[[Vm], Verdict]] = {
    "vgic.exists": lambda vm: vm.vgic is not None,
    "vgic.has_run": lambda vm: any(v.has_run_once for v in vm.vcpus),
}


class _VcpuInit:
    """One ``KVM_CREATE_VCPU`` + ``KVM_ARM_VCPU_INIT``."""

    def __init__(self, vm: Vm, pmu: bool):
        self.vm, self.pmu = vm, pmu
        self.features = frozenset({KVM_ARM_VCPU_PSCI_0_2} | ({KVM_ARM_VCPU_PMU_V3} if pmu else set()))

    @property
    def default_pmu(self) -> Optional[HostPmu]:
        """kvm_setup_vcpu(): the default PMU is the one covering the current CPU."""
        host = self.vm.host
        return next((p for p in host.kvm_pmus if host.current_cpu in p.cpus), None)


_VCPU_INIT_CHECKS: dict[str, Callable[[_VcpuInit], Verdict]] = {
    # kvm_arch_vcpu_precreate()
    "vcpu.after_vgic_init": lambda c: c.vm.vgic is not None and c.vm.vgic.initialized,
    # kvm_vcpu_init_check_features(): an unsupported feature
    "vcpu.pmu_unsupported": lambda c: c.pmu and not c.vm.host.kvm_pmus,
    # kvm_vcpu_initialize(): the feature set is VM-wide once configured
    "vcpu.features": lambda c: c.vm.features is not None and c.vm.features != c.features,
    "vcpu.no_default_pmu": lambda c: c.pmu and c.vm.arm_pmu is None and c.default_pmu is None,
}


class _Memslot:
    """One ``KVM_SET_USER_MEMORY_REGION``."""

    def __init__(self, vm: Vm, slot: int, gpa: int, size: int):
        self.vm, self.slot, self.gpa, self.size = vm, slot, gpa, size

    def overlapping(self) -> Optional[int]:
        end = self.gpa + self.size
        return next((other for other, (gpa, size) in self.vm.memslots.items()
                     if other != self.slot and gpa < end and self.gpa < gpa + size), None)


def _memslot_overlap(m: _Memslot) -> Verdict:
    other = m.overlapping() if m.size else None
    return None if other is None else f"[{m.gpa:#x}, {m.gpa + m.size:#x}) overlaps slot {other}"


# kvm_main.c __kvm_set_memory_region()
_MEMSLOT_CHECKS: dict[str, Callable[[_Memslot], Verdict]] = {
    "memslot.align": lambda m: bool(m.gpa % PAGE_SIZE or m.size % PAGE_SIZE),
    "memslot.missing": lambda m: m.size == 0 and m.slot not in m.vm.memslots,
    "memslot.resize": lambda m: bool(m.size) and m.slot in m.vm.memslots and m.vm.memslots[m.slot][1] != m.size,
    "memslot.overlap": _memslot_overlap,
}

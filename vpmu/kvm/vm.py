"""``KVM_CREATE_VM``: the VM-wide state the vPMU rules depend on (vCPUs, vGIC, memory slots,
selected host PMU, counter number, event filter, timer PPIs, "has run") and the
:class:`~vpmu.config.MachineConfig` a vCPU of it runs with."""
from __future__ import annotations

import errno
from typing import Optional

from ..config import DEFAULT_PMU_IRQ, DEFAULT_TIMER_PPIS, PMUVER_TO_NAME, MachineConfig, PmuConfig
from ..filter import EventFilter, event_space
from .explain import _fail
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

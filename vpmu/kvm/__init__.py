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

The package: :mod:`.uapi` (constants and ``struct kvm_device_attr``), :mod:`.explain` (rule ids,
KVM's check order, explanations, the errors), :mod:`.host`, :mod:`.vgic`, :mod:`.vm` and
:mod:`.vcpu`; their public names are re-exported here (``from vpmu import kvm; kvm.Vm(...)``).
"""
from __future__ import annotations

from ..filter import KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY, EventFilter, KvmPmuEventFilter
from .explain import (ATTR_NAMES, EXPLANATIONS, GROUP_NAMES, KvmAttrError, KvmExitFailEntry,
                      attr_name, checks_for, explain)
from .host import Host, HostPmu
from .uapi import (BAD_ADDRESS, INVALID_GPA, KVM_ARM_DEV_EL1_PTIMER, KVM_ARM_DEV_EL1_VTIMER,
                   KVM_ARM_DEV_PMU, KVM_ARM_VCPU_EL1_32BIT, KVM_ARM_VCPU_HAS_EL2,
                   KVM_ARM_VCPU_PMU_V3, KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_FILTER,
                   KVM_ARM_VCPU_PMU_V3_INIT, KVM_ARM_VCPU_PMU_V3_IRQ,
                   KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, KVM_ARM_VCPU_PMU_V3_SET_PMU,
                   KVM_ARM_VCPU_POWER_OFF, KVM_ARM_VCPU_PSCI_0_2, KVM_ARM_VCPU_PTRAUTH_ADDRESS,
                   KVM_ARM_VCPU_PTRAUTH_GENERIC, KVM_ARM_VCPU_PVTIME_CTRL, KVM_ARM_VCPU_PVTIME_IPA,
                   KVM_ARM_VCPU_SVE, KVM_ARM_VCPU_TIMER_CTRL, KVM_ARM_VCPU_TIMER_IRQ_HPTIMER,
                   KVM_ARM_VCPU_TIMER_IRQ_HVTIMER, KVM_ARM_VCPU_TIMER_IRQ_PTIMER,
                   KVM_ARM_VCPU_TIMER_IRQ_VTIMER, KVM_DEV_ARM_VGIC_CTRL_INIT,
                   KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
                   KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
                   KVM_DEV_ARM_VGIC_GRP_NR_IRQS, KVM_DEV_TYPE_ARM_VGIC_V2, KVM_DEV_TYPE_ARM_VGIC_V3,
                   KVM_EXIT_FAIL_ENTRY, KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED, KVM_GET_DEVICE_ATTR,
                   KVM_HAS_DEVICE_ATTR, KVM_RUN, KVM_SET_DEVICE_ATTR, KVM_VGIC_V3_ADDR_TYPE_DIST,
                   KVM_VGIC_V3_ADDR_TYPE_REDIST, KVMIO, PAGE_SIZE, RAM_BASE, TIMER_NAMES,
                   VGIC_MAX_RESERVED, VGIC_MAX_SPI, VGIC_NR_IRQS_LEGACY, VGIC_NR_PRIVATE_IRQS, VGIC_NR_SGIS,
                   KvmDeviceAttr, is_ppi,
                   is_spi)
from .vcpu import Vcpu
from .vgic import VgicV3
from .vm import Vm

__all__ = ["KVM_PMU_EVENT_ALLOW", "KVM_PMU_EVENT_DENY", "EventFilter", "KvmPmuEventFilter",
           "ATTR_NAMES", "EXPLANATIONS", "GROUP_NAMES", "KvmAttrError", "KvmExitFailEntry",
           "attr_name", "checks_for", "explain", "Host", "HostPmu", "BAD_ADDRESS", "INVALID_GPA",
           "KVM_ARM_DEV_EL1_PTIMER", "KVM_ARM_DEV_EL1_VTIMER", "KVM_ARM_DEV_PMU",
           "KVM_ARM_VCPU_EL1_32BIT", "KVM_ARM_VCPU_HAS_EL2", "KVM_ARM_VCPU_PMU_V3",
           "KVM_ARM_VCPU_PMU_V3_CTRL", "KVM_ARM_VCPU_PMU_V3_FILTER", "KVM_ARM_VCPU_PMU_V3_INIT",
           "KVM_ARM_VCPU_PMU_V3_IRQ", "KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS",
           "KVM_ARM_VCPU_PMU_V3_SET_PMU", "KVM_ARM_VCPU_POWER_OFF", "KVM_ARM_VCPU_PSCI_0_2",
           "KVM_ARM_VCPU_PTRAUTH_ADDRESS", "KVM_ARM_VCPU_PTRAUTH_GENERIC",
           "KVM_ARM_VCPU_PVTIME_CTRL", "KVM_ARM_VCPU_PVTIME_IPA", "KVM_ARM_VCPU_SVE",
           "KVM_ARM_VCPU_TIMER_CTRL", "KVM_ARM_VCPU_TIMER_IRQ_HPTIMER",
           "KVM_ARM_VCPU_TIMER_IRQ_HVTIMER", "KVM_ARM_VCPU_TIMER_IRQ_PTIMER",
           "KVM_ARM_VCPU_TIMER_IRQ_VTIMER", "KVM_DEV_ARM_VGIC_CTRL_INIT",
           "KVM_DEV_ARM_VGIC_GRP_ADDR", "KVM_DEV_ARM_VGIC_GRP_CPU_REGS",
           "KVM_DEV_ARM_VGIC_GRP_CTRL", "KVM_DEV_ARM_VGIC_GRP_DIST_REGS",
           "KVM_DEV_ARM_VGIC_GRP_NR_IRQS", "KVM_DEV_TYPE_ARM_VGIC_V2", "KVM_DEV_TYPE_ARM_VGIC_V3",
           "KVM_EXIT_FAIL_ENTRY", "KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED", "KVM_GET_DEVICE_ATTR",
           "KVM_HAS_DEVICE_ATTR", "KVM_RUN", "KVM_SET_DEVICE_ATTR", "KVM_VGIC_V3_ADDR_TYPE_DIST",
           "KVM_VGIC_V3_ADDR_TYPE_REDIST", "KVMIO", "PAGE_SIZE",
           "RAM_BASE", "TIMER_NAMES", "VGIC_MAX_RESERVED",
           "VGIC_MAX_SPI", "VGIC_NR_IRQS_LEGACY", "VGIC_NR_PRIVATE_IRQS", "VGIC_NR_SGIS",
           "KvmDeviceAttr", "is_ppi", "is_spi", "Vcpu", "VgicV3", "Vm"]

"""The in-kernel vGICv3 device (``KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3)``) as far as
the PMU and the timers need it: its size, initialisation and interrupt ownership."""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from .explain import _fail
from .uapi import (BAD_ADDRESS, KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_VGIC_GRP_ADDR,
                   KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, VGIC_MAX_RESERVED,
                   VGIC_NR_IRQS_LEGACY, VGIC_NR_PRIVATE_IRQS, _c_uint, is_ppi)

if TYPE_CHECKING:
    from .vcpu import Vcpu
    from .vm import Vm


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

"""The in-kernel vGICv3 device (``KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3)``) as far as
the PMU and the timers need it: its size, initialisation and interrupt ownership."""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Callable

from .explain import Verdict, run_checks
from .uapi import (BAD_ADDRESS, KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_VGIC_GRP_ADDR,
                   KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, VGIC_MAX_RESERVED,
                   VGIC_NR_IRQS_LEGACY, VGIC_NR_PRIVATE_IRQS, _c_uint, is_ppi)

if TYPE_CHECKING:
    from .vcpu import Vcpu
    from .vm import Vm


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
        """``KVM_SET_DEVICE_ATTR`` on the vGIC device fd (vgic-kvm-device.c): NR_IRQS,
        CTRL_INIT and the (stored only) GRP_ADDR; anything else is unmodelled (ENXIO)."""
        run_checks(_ATTR_CHECKS, _VgicCall(self, group, attr, value), "vGIC", group)
        if group == KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
            self.nr_spis = _c_uint(value, "NR_IRQS") - VGIC_NR_PRIVATE_IRQS
        elif group == KVM_DEV_ARM_VGIC_GRP_CTRL:
            self.init()
        else:
            self.addresses[attr] = value
        return 0

    def init(self) -> None:
        """``vgic_init()``: idempotent; supplies the legacy default size if none was set."""
        if self.initialized:
            return
        if not self.nr_spis:
            self.nr_spis = VGIC_NR_IRQS_LEGACY - VGIC_NR_PRIVATE_IRQS
        self.initialized = True

    def owner_check(self, vcpu: "Vcpu", intid: int, owner: Any) -> int:
        """What ``kvm_vgic_set_owner()`` would return, without claiming: 0 or a (positive)
        errno - EAGAIN if the vGIC is not initialised, EINVAL for an SGI or an SPI the vGIC
        lacks, EEXIST if another owner has it.

        PPIs are per-vCPU interrupt instances (so every vCPU may give PPI 23 to its PMU);
        SPIs are VM-wide.
        """
        if not self.initialized:
            return errno.EAGAIN
        if not is_ppi(intid) and not self.valid_spi(intid):
            return errno.EINVAL
        current = self.owner(vcpu, intid)
        if current is not None and current != owner:
            return errno.EEXIST
        return 0

    def set_owner(self, vcpu: "Vcpu", intid: int, owner: Any) -> int:
        """``kvm_vgic_set_owner()``: claim ``intid`` for ``owner`` unless
        :meth:`owner_check` fails; returns 0 or that errno."""
        r = self.owner_check(vcpu, intid, owner)
        if not r:
            (vcpu._ppi_owner if is_ppi(intid) else self._spi_owner)[intid] = owner
        return r

    def owner(self, vcpu: "Vcpu", intid: int) -> Any:
        return (vcpu._ppi_owner if is_ppi(intid) else self._spi_owner).get(intid)


class _VgicCall:
    """One ``KVM_SET_DEVICE_ATTR`` on the vGIC: what its rules look at."""

    def __init__(self, vgic: VgicV3, group: int, attr: int, value: Any):
        self.vgic, self.group, self.attr, self.value = vgic, group, attr, value

    @property
    def nr_irqs(self) -> int:
        return _c_uint(self.value, "NR_IRQS")


def _nr_irqs_range(c: _VgicCall) -> Verdict:
    # "at least 32 SPIs on top of the 16 SGIs and 16 PPIs, at most 1024, multiple of 32"
    n = c.nr_irqs
    if n < VGIC_NR_PRIVATE_IRQS + 32 or n > VGIC_MAX_RESERVED or n & 31:
        return f"NR_IRQS {n} is not a multiple of 32 in 64..{VGIC_MAX_RESERVED}"
    return None


# The rules of vgic-kvm-device.c (their order: explain.CHECK_ORDER).
_ATTR_CHECKS: dict[str, Callable[[_VgicCall], Verdict]] = {
    "vgic.efault": lambda c: c.value is BAD_ADDRESS,
    "vgic.nr_irqs_range": _nr_irqs_range,
    "vgic.nr_irqs_busy": lambda c: bool(c.vgic.nr_spis),
    "vgic.unknown": lambda c: not (c.group == KVM_DEV_ARM_VGIC_GRP_ADDR
                                   or (c.group == KVM_DEV_ARM_VGIC_GRP_CTRL and c.attr == KVM_DEV_ARM_VGIC_CTRL_INIT)),
}

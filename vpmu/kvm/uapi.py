"""KVM/arm64 uapi: ioctl numbers, attribute groups and ids, vGIC ranges, ``struct
kvm_device_attr`` and how the kernel reads an attribute's payload from user memory
(``include/uapi/linux/kvm.h``, ``arch/arm64/include/uapi/asm/kvm.h``, ``include/kvm/arm_vgic.h``).
Plain data and small helpers; no behaviour."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..filter import KvmPmuEventFilter


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

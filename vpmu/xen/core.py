"""vCPU state (Xen's ``struct vcpu``), Xen-owned pages and guest-memory access.

The domain (:class:`vpmu.xen.domain.Domain`) holds its ``Vcpu`` objects, its
``Region`` pages (shared_info, grant frames) and a ``Guest``.  Guest memory is reached
only through :class:`vpmu.xen.env.GuestEnv`; every access that can fault returns
``None``/``False`` instead of raising, so each hypercall handler decides, at the point
Xen does, whether a fault becomes ``-EFAULT`` or is ignored (Xen ignores the result of
some copies, e.g. runstate updates).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .abi import NR_VIRQS, RUNSTATE_offline, RUNSTATE_running
from .env import GuestEnv, GuestFault


class Guest:
    """Xen's copy_{from,to}_guest over a GuestEnv: faults become a falsy result."""

    def __init__(self, env: GuestEnv):
        self.env = env

    def copy_from(self, va: int, size: int) -> Optional[bytes]:
        if va < 0 or va + size > (1 << 64):
            return None
        try:
            data = self.env.read_virt(va, size)
        except GuestFault:
            return None
        return bytes(data) if len(data) == size else None

    def copy_to(self, va: int, data: bytes) -> bool:
        if va < 0 or va + len(data) > (1 << 64):
            return False
        try:
            self.env.write_virt(va, bytes(data))
        except GuestFault:
            return False
        return True

    def is_ram(self, pa: int, size: int = 1) -> bool:
        if pa < 0 or size <= 0 or pa + size > (1 << 64):
            return False
        return bool(self.env.is_ram(pa, size))

    def read_phys(self, pa: int, size: int) -> Optional[bytes]:
        try:
            data = self.env.read_phys(pa, size)
        except GuestFault:
            return None
        return bytes(data) if len(data) == size else None

    def write_phys(self, pa: int, data: bytes) -> bool:
        try:
            self.env.write_phys(pa, bytes(data))
        except GuestFault:
            return False
        return True


class Region:
    """Bytes Xen owns that the guest may see: a private buffer until mapped into guest RAM.

    Used for the shared_info page (mapped by XENMEM_add_to_physmap), grant-table frames
    and the per-vCPU ``dummy_vcpu_info``.  While mapped at ``pa`` every access goes to
    guest RAM, so the guest sees Xen's writes and Xen sees the guest's.
    """

    def __init__(self, guest: Guest, size: int):
        self.guest = guest
        self.private = bytearray(size)
        self.size = size
        self.pa: Optional[int] = None

    def read(self, off: int, n: int) -> bytes:
        if self.pa is None:
            return bytes(self.private[off:off + n])
        data = self.guest.read_phys(self.pa + off, n)
        return data if data is not None else bytes(n)

    def write(self, off: int, data: bytes) -> None:
        if self.pa is None:
            self.private[off:off + len(data)] = data
        else:
            self.guest.write_phys(self.pa + off, data)   # RAM was checked at map time

    def map_at(self, pa: int) -> None:
        """Make the region appear at ``pa``: the guest page takes the region's contents."""
        self.guest.write_phys(pa, bytes(self.private))
        self.pa = pa

    def unmap(self) -> None:
        if self.pa is not None:
            self.private[:] = self.read(0, self.size)
            self.pa = None

    def get_bit(self, off: int, bit: int) -> bool:
        byte = self.read(off + bit // 8, 1)[0]
        return bool(byte >> (bit % 8) & 1)

    def set_bit(self, off: int, bit: int, value: bool) -> bool:
        """Set/clear one bit; returns its old value (Xen's test_and_{set,clear}_bit)."""
        addr = off + bit // 8
        byte = self.read(addr, 1)[0]
        old = bool(byte >> (bit % 8) & 1)
        new = (byte | (1 << bit % 8)) if value else (byte & ~(1 << bit % 8))
        if new != byte:
            self.write(addr, bytes([new]))
        return old


@dataclass
class VcpuTimers:
    periodic_period: int = 0       # ns, 0 = stopped
    periodic_last: int = 0
    singleshot_deadline: Optional[int] = None
    poll_deadline: Optional[int] = None


@dataclass
class VcpuPmu:
    available: bool = False        # decided at vCPU creation (xen-pmu.md 2.3)
    counted: bool = False          # contributes to the global active-vPMU count
    initialised: bool = False      # VPMU_INITIALIZED
    page_pa: Optional[int] = None  # registered xen_pmu_data page (IPA)
    cached: bool = False           # VPMU_CACHED: a sample waits for XENPMU_flush
    lvtpc_masked: bool = True      # Xen's copy of the guest mask bit (hw_lapic_lvtpc)
    hw_masked: bool = True         # what is in force at the "LVTPC" (apic_write)
    sample_pmcr: int = 0           # PMCR_EL0 of the last sample (read-only fields reference)
    sample_n: int = 0              # PMCR_EL0.N of the last sample


@dataclass
class Vcpu:
    id: int
    up: bool
    # vcpu_info: (region, offset) in Xen's view; registered = placed by VCPUOP_register_vcpu_info
    vi_region: Region
    vi_off: int = 0
    vi_registered: bool = False
    virq_to_port: list = field(default_factory=lambda: [0] * NR_VIRQS)
    # runstate (xen/common/sched: v->runstate), times in ns of env.now_ns()
    rs_state: int = RUNSTATE_running
    rs_entry: int = 0
    rs_time: list = field(default_factory=lambda: [0, 0, 0, 0])
    runstate_va: Optional[int] = None
    runstate_pa: Optional[int] = None
    timers: VcpuTimers = field(default_factory=VcpuTimers)
    pmu: VcpuPmu = field(default_factory=VcpuPmu)
    line: bool = False             # level of the event-channel PPI we drive for this vCPU
    blocked: bool = False          # SCHEDOP_block / SCHEDOP_poll outstanding
    poll_ports: Optional[tuple] = None

    def runstate(self, now: int, include_current: bool) -> tuple[int, int, list]:
        """(state, state_entry_time, time[4]); like vcpu_runstate_get when include_current."""
        times = list(self.rs_time)
        if include_current and now > self.rs_entry:
            times[self.rs_state] += now - self.rs_entry
        return self.rs_state, self.rs_entry, times



def new_vcpu(guest: Guest, vid: int, up: bool, shared: Region, now: int) -> Vcpu:
    # XEN_LEGACY_MAX_VCPUS is 1 on Arm: only vCPU0 has a slot in shared_info; the others
    # start on a private dummy_vcpu_info until they register one.
    region = shared if vid == 0 else Region(guest, 48)
    v = Vcpu(id=vid, up=up, vi_region=region)
    v.rs_state = RUNSTATE_running if up else RUNSTATE_offline
    v.rs_entry = now
    return v

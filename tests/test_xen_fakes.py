"""A fake GuestEnv for the Xen frontend tests, plus guest-side helpers.

RAM is a bytearray at 0x4000_0000; virtual addresses translate 1:1 except one unmapped
page (HOLE_VA) so "the VA faults but the IPA is RAM" can be tested; anything outside
RAM faults.  The PMU is a plain register file that records freezes and loads.
"""
from __future__ import annotations

import copy
import struct

import pytest

from vpmu.xen import GuestFault, InterruptedContext, PmuRegs, XenFrontend
from vpmu.xen import abi as A

RAM_BASE = 0x4000_0000
RAM_SIZE = 4 << 20
HOLE_VA = RAM_BASE + 0x30_0000          # RAM, but not mapped at stage 1
BAD_VA = 0x1000                         # not RAM at all
SCRATCH = RAM_BASE + 0x10_0000          # where helpers put hypercall argument structs
PMU_PAGE = RAM_BASE + 0x20_0000
SHINFO_PAGE = RAM_BASE + 0x21_0000
PMCR_MODEL = (0x41 << 24) | (0x00 << 16) | (6 << 11)   # IMP=Arm, N=6


class FakeEnv:
    def __init__(self, n_counters: int = 6):
        self.ram = bytearray(RAM_SIZE)
        self.ppi_log: list[tuple[int, bool]] = []
        self.ppi: dict[int, bool] = {}
        self.now = 1_000
        self.timers: dict[str, int] = {}
        self.records: list[dict] = []
        self.frozen = False
        self.freeze_log: list[bool] = []
        self.loads: list[PmuRegs] = []
        self.readonly_pages: set[int] = set()   # VA pages whose writes fault (reads work)
        self.regs = PmuRegs(nr_counters=n_counters, pmcr=(PMCR_MODEL & ~(0x1F << 11)) | (n_counters << 11))

    # memory
    def _ram_off(self, pa: int, size: int) -> int:
        if pa < RAM_BASE or pa + size > RAM_BASE + RAM_SIZE or size < 0:
            raise GuestFault(hex(pa))
        return pa - RAM_BASE

    def _va_check(self, va: int, size: int) -> None:
        if va < HOLE_VA + 0x1000 and va + size > HOLE_VA:
            raise GuestFault(hex(va))

    def read_virt(self, va, size):
        self._va_check(va, size)
        o = self._ram_off(va, size)
        return bytes(self.ram[o:o + size])

    def write_virt(self, va, data):
        self._va_check(va, len(data))
        if {va >> 12, (va + max(len(data), 1) - 1) >> 12} & self.readonly_pages:
            raise GuestFault(hex(va))
        o = self._ram_off(va, len(data))
        self.ram[o:o + len(data)] = data

    def read_phys(self, pa, size):
        o = self._ram_off(pa, size)
        return bytes(self.ram[o:o + size])

    def write_phys(self, pa, data):
        o = self._ram_off(pa, len(data))
        self.ram[o:o + len(data)] = data

    def is_ram(self, pa, size=1):
        return RAM_BASE <= pa and pa + size <= RAM_BASE + RAM_SIZE

    # interrupts and time
    def set_ppi_level(self, intid, level):
        self.ppi_log.append((intid, level))
        self.ppi[intid] = level

    def now_ns(self):
        return self.now

    def set_timer(self, name, deadline_ns):
        if deadline_ns is None:
            self.timers.pop(name, None)
        else:
            self.timers[name] = deadline_ns

    # PMU
    def pmu_snapshot(self):
        return copy.deepcopy(self.regs)

    def pmu_load(self, regs):
        self.loads.append(copy.deepcopy(regs))
        self.regs = copy.deepcopy(regs)

    def pmu_set_frozen(self, frozen):
        self.frozen = frozen
        self.freeze_log.append(frozen)

    def trace(self, record):
        self.records.append(record)

    # test helpers
    def u8(self, pa):
        return self.ram[pa - RAM_BASE]

    def u16(self, pa):
        return struct.unpack_from("<H", self.ram, pa - RAM_BASE)[0]

    def u32(self, pa):
        return struct.unpack_from("<I", self.ram, pa - RAM_BASE)[0]

    def u64(self, pa):
        return struct.unpack_from("<Q", self.ram, pa - RAM_BASE)[0]

    def put(self, pa, data: bytes):
        self.ram[pa - RAM_BASE:pa - RAM_BASE + len(data)] = data

    def advance(self, fe: XenFrontend, to_ns: int) -> list[str]:
        """Move time to ``to_ns``, firing due timers in deadline order like the machine."""
        fired = []
        while True:
            due = sorted((d, n) for n, d in self.timers.items() if d <= to_ns)
            if not due:
                break
            d, n = due[0]
            del self.timers[n]
            self.now = max(self.now, d)
            fired.append(n)
            fe.on_timer(n)
        self.now = max(self.now, to_ns)
        return fired

    def of_type(self, t: str) -> list[dict]:
        return [r for r in self.records if r.get("type") == t]


class Guest:
    """Guest-side view: builds argument structs in RAM and issues hypercalls."""

    def __init__(self, fe: XenFrontend, env: FakeEnv):
        self.fe, self.env = fe, env

    def hc(self, nr: int, *args: int) -> int:
        return self.fe.hypercall(nr, list(args))

    # xenpmu_op
    def params(self, maj=0, minor=1, val=0, vcpu=0, at=SCRATCH) -> int:
        self.env.put(at, struct.pack("<IIQII", maj, minor, val, vcpu, 0))
        return at

    def pmu(self, op: int, maj=0, val=0, vcpu=0, arg=None) -> int:
        if arg is None:
            arg = self.params(maj=maj, val=val, vcpu=vcpu)
        return self.hc(A.HYPERVISOR_xenpmu_op, op, arg)

    def pmu_init(self, vcpu=0, page=PMU_PAGE) -> int:
        return self.pmu(A.XENPMU_init, val=page >> 12, vcpu=vcpu)

    def set_irq_ctrl(self, masked: bool, page=PMU_PAGE) -> None:
        self.env.put(page + 0x58, struct.pack("<I", (1 << 16 if masked else 0) | 23))

    # event channels
    def evtchn(self, cmd: int, payload: bytes, at=SCRATCH) -> int:
        self.env.put(at, payload)
        return self.hc(A.HYPERVISOR_event_channel_op, cmd, at)

    def bind_virq(self, virq: int, vcpu: int = 0) -> tuple[int, int]:
        rc = self.evtchn(A.EVTCHNOP_bind_virq, struct.pack("<III", virq, vcpu, 0xDEAD))
        return rc, self.env.u32(SCRATCH + 8)

    def port_op(self, cmd: int, port: int) -> int:
        return self.evtchn(cmd, struct.pack("<I", port))

    def map_shared_info(self, gpfn=SHINFO_PAGE >> 12) -> int:
        self.env.put(SCRATCH, struct.pack("<HHIQQ", A.DOMID_SELF, 0,
                                          A.XENMAPSPACE_shared_info, 0, gpfn))
        return self.hc(A.HYPERVISOR_memory_op, A.XENMEM_add_to_physmap, SCRATCH)

    # shared_info views (after map_shared_info)
    def pending(self, port: int) -> bool:
        return bool(self.env.u8(SHINFO_PAGE + 48 + port // 8) >> (port % 8) & 1)

    def masked(self, port: int) -> bool:
        return bool(self.env.u8(SHINFO_PAGE + 560 + port // 8) >> (port % 8) & 1)

    def set_mask(self, port: int, on: bool) -> None:
        pa = SHINFO_PAGE + 560 + port // 8
        b = self.env.u8(pa)
        self.env.put(pa, bytes([(b | 1 << port % 8) if on else (b & ~(1 << port % 8))]))

    def clear_pending(self, port: int) -> None:
        pa = SHINFO_PAGE + 48 + port // 8
        self.env.put(pa, bytes([self.env.u8(pa) & ~(1 << port % 8)]))

    def upcall_pending(self, vi=SHINFO_PAGE) -> int:
        return self.env.u8(vi)

    def pending_sel(self, vi=SHINFO_PAGE) -> int:
        return self.env.u64(vi + 8)

    def ack_upcall(self, vi=SHINFO_PAGE) -> None:
        """What a Linux handler does first: clear evtchn_upcall_pending and the selector."""
        self.env.put(vi, b"\0")
        self.env.put(vi + 8, bytes(8))


def make(domid=0, mode="self", nr_vcpus=1, **kw) -> tuple[XenFrontend, FakeEnv, Guest]:
    env = FakeEnv()
    fe = XenFrontend(env, domid=domid, vpmu_mode=mode, nr_vcpus=nr_vcpus, **kw)
    return fe, env, Guest(fe, env)


def ctx(pc=0xFFFF_0000_0010_0000, sp=0xFFFF_0000_0080_0000, pstate=0x3C5, el=1):
    return InterruptedContext(pc=pc, sp=sp, pstate=pstate, el=el)


# --- the fake itself ------------------------------------------------------------------------
def test_fake_env_translation_and_hole():
    env = FakeEnv()
    env.write_virt(RAM_BASE, b"abc")
    assert env.read_phys(RAM_BASE, 3) == b"abc"
    with pytest.raises(GuestFault):
        env.read_virt(HOLE_VA + 8, 4)
    assert env.read_phys(HOLE_VA, 4) == bytes(4)          # the IPA is RAM
    with pytest.raises(GuestFault):
        env.read_virt(BAD_VA, 1)
    assert not env.is_ram(BAD_VA) and env.is_ram(RAM_BASE, RAM_SIZE)


def test_fake_env_timers_fire_in_order():
    fe, env, _ = make()
    seen = []
    fe.on_timer = seen.append                               # type: ignore[method-assign]
    env.set_timer("b", 3000)
    env.set_timer("a", 2000)
    assert env.advance(fe, 2500) == ["a"]
    assert env.advance(fe, 5000) == ["b"] and seen == ["a", "b"] and env.now == 5000

"""The shared-page sample protocol (xen-pmu.md 3.2 adapted to Arm, layout of section 5)."""
from __future__ import annotations

import struct

import pytest
from test_xen_fakes import PMU_PAGE, ctx, make

from vpmu.xen import PageRules
from vpmu.xen import abi as A
from vpmu.xen.xerrno import EIO

PPI = 31
N = 6


def setup(mode="self", domid=0, bind=True, unmask=True, nr_vcpus=1):
    fe, env, g = make(domid=domid, mode=mode, nr_vcpus=nr_vcpus)
    assert g.map_shared_info() == 0
    port = None
    if bind:
        rc, port = g.bind_virq(A.VIRQ_XENPMU)
        assert rc == 0
    env.put(PMU_PAGE, bytes(4096))
    assert g.pmu_init() == 0
    if unmask:
        g.set_irq_ctrl(masked=False)
        assert g.pmu(A.XENPMU_lvtpc_set, arg=0) == 0
    r = env.regs
    r.pmcr = (0x41 << 24) | (N << 11) | 0x1          # E
    r.pmcntenset = (1 << 31) | 0b101
    r.pmintenset = 0b100
    r.pmovsset = 0b100
    r.pmselr = 2
    r.pmuserenr = 0x1
    r.pmccntr = 0x1234_5678_9ABC
    r.pmccfiltr = 0x8000_0000
    r.evcntr = [0x1000 + i for i in range(31)]       # entries >= N must not leak
    r.evtyper = [0x11 + i for i in range(31)]
    return fe, env, g, port


def page(env, off, size):
    return int.from_bytes(env.read_phys(PMU_PAGE + off, size), "little")


def test_sample_writes_page_at_section5_offsets_and_raises_virq():
    fe, env, g, port = setup()
    env.put(PMU_PAGE, b"\xCC" * 0x2A0 + b"\xDD" * 16)    # stale bytes everywhere
    g.set_irq_ctrl(masked=False)                          # guest-owned `l`
    c = ctx(pc=0xFFFF_8000_1234_5678, sp=0xFFFF_8000_00AB_C000, pstate=0x2000_03C5, el=1)
    assert fe.on_pmu_overflow(c) is True
    assert env.frozen and env.freeze_log == [True]
    # header
    assert page(env, 0x000, 4) == 0 and page(env, 0x004, 4) == 0
    assert page(env, 0x008, 2) == A.DOMID_SELF
    assert env.read_phys(PMU_PAGE + 0x00A, 6) == bytes(6)
    # r
    assert page(env, 0x010, 8) == 0xFFFF_8000_1234_5678
    assert page(env, 0x018, 8) == 0xFFFF_8000_00AB_C000
    assert page(env, 0x020, 8) == 0x2000_03C5
    assert page(env, 0x028, 4) == 0
    assert page(env, 0x02C, 1) == 1
    assert env.read_phys(PMU_PAGE + 0x02D, 35) == bytes(35)
    # flags; `l` untouched
    assert page(env, 0x050, 8) == A.PMU_CACHED
    assert page(env, 0x058, 4) == 23 and env.read_phys(PMU_PAGE + 0x05C, 4) == b"\xCC" * 4
    # c
    assert (page(env, 0x060, 4), page(env, 0x064, 4), page(env, 0x068, 4)) == (0x50, 0x148, N)
    assert page(env, 0x06C, 4) == 0
    assert page(env, 0x070, 8) == (0x41 << 24) | (N << 11) | 1
    assert page(env, 0x078, 8) == (1 << 31) | 0b101
    assert page(env, 0x080, 8) == 0b100
    assert page(env, 0x088, 8) == 0b100
    assert page(env, 0x090, 8) == 2
    assert page(env, 0x098, 8) == 1
    assert page(env, 0x0A0, 8) == 0x1234_5678_9ABC
    assert page(env, 0x0A8, 8) == 0x8000_0000
    for i in range(31):
        assert page(env, 0x0B0 + 8 * i, 8) == (0x1000 + i if i < N else 0)
        assert page(env, 0x1A8 + 8 * i, 8) == (0x11 + i if i < N else 0)
    assert env.read_phys(PMU_PAGE + 0x2A0, 16) == b"\xDD" * 16   # beyond the struct: untouched
    # the counters bank is where "start of c + offset" says
    assert PMU_PAGE + 0x60 + 0x50 == PMU_PAGE + 0x0B0
    # VIRQ_XENPMU -> port pending -> selector -> upcall -> PPI 31
    assert g.pending(port) and g.pending_sel() == 1 << (port // 64)
    assert g.upcall_pending() == 1
    assert env.ppi[PPI] is True and env.ppi_log == [(PPI, True)]
    s = env.of_type("xen_sample")[-1]
    assert s == {"type": "xen_sample", "vcpu": 0, "pc": c.pc, "sp": c.sp, "pstate": c.pstate,
                 "el": 1, "flags": A.PMU_CACHED, "domain_id": A.DOMID_SELF,
                 "port": port, "dropped": None}
    up = env.of_type("xen_upcall")[-1]
    assert up["level"] is True and up["port"] == port and up["virq"] == A.VIRQ_XENPMU
    assert fe.pmu_irq_masked()


def test_sample_from_el0_sets_sample_user():
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx(el=0, pstate=0))
    assert page(env, 0x050, 8) == A.PMU_SAMPLE_USER | A.PMU_CACHED
    assert page(env, 0x02C, 1) == 0


def test_overflow_while_cached_is_dropped():
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx(pc=0x1000))
    before = env.read_phys(PMU_PAGE, 0x2A0)
    g.ack_upcall()
    g.clear_pending(port)
    assert fe.on_pmu_overflow(ctx(pc=0x2000)) is True
    assert env.read_phys(PMU_PAGE, 0x2A0) == before
    assert not g.pending(port) and g.upcall_pending() == 0
    assert [s["dropped"] for s in env.of_type("xen_sample")] == [None, "cached"]
    assert env.freeze_log == [True]


def test_guest_edits_page_then_flush_reloads_and_unfreezes():
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx())
    # the guest's handler: acknowledge the overflow, re-arm counter 2, enable counter 1
    env.put(PMU_PAGE + 0x088, struct.pack("<Q", 0))                  # pmovsset
    env.put(PMU_PAGE + 0x0B0 + 8 * 2, struct.pack("<Q", 0xFFFF_FF00))
    env.put(PMU_PAGE + 0x078, struct.pack("<Q", (1 << 31) | 0b111))
    env.put(PMU_PAGE + 0x0B0 + 8 * 10, struct.pack("<Q", 0xBAD))     # >= N: ignored
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    assert page(env, 0x050, 8) == 0                                   # PMU_CACHED cleared
    assert not env.frozen and env.freeze_log == [True, False]
    r = env.loads[-1]
    assert r.pmovsset == 0 and r.evcntr[2] == 0xFFFF_FF00 and r.pmcntenset == (1 << 31) | 0b111
    assert r.evcntr[10] == 0 and r.evtyper[N:] == [0] * (31 - N)
    assert r.nr_counters == N and r.pmccntr == 0x1234_5678_9ABC and r.pmselr == 2
    assert not fe.pmu_irq_masked()                                    # l.irq_ctrl says unmasked
    assert fe.on_pmu_overflow(ctx(pc=0x4242))                         # samples again
    assert page(env, 0x010, 8) == 0x4242


def test_flush_applies_p_and_c_reset_commands():
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx())
    pmcr = page(env, 0x070, 8) | 0b110
    env.put(PMU_PAGE + 0x070, struct.pack("<Q", pmcr))
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    r = env.loads[-1]
    assert r.evcntr == [0] * 31 and r.pmccntr == 0
    assert r.pmcr == pmcr & ~0b110 and page(env, 0x070, 8) == pmcr & ~0b110


def test_flush_c_only_keeps_event_counters():
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx())
    env.put(PMU_PAGE + 0x070, struct.pack("<Q", page(env, 0x070, 8) | 0b100))
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    assert env.loads[-1].pmccntr == 0 and env.loads[-1].evcntr[0] == 0x1000


INVALID = [
    ("pmcntenset", 0x078, 1 << N),
    ("pmintenset", 0x080, 1 << 40),
    ("pmovsset", 0x088, 1 << 30),
    ("pmcr bit 8", 0x070, None),
    ("pmcr N changed", 0x070, (0x41 << 24) | (5 << 11) | 1),
    ("pmcr bit 32", 0x070, (1 << 32) | (0x41 << 24) | (N << 11)),
    ("pmselr >= N", 0x090, N),
    ("pmselr > 31", 0x090, 32),
    ("pmuserenr", 0x098, 0x10),
    ("pmccfiltr", 0x0A8, 0x1),
    ("pmevtyper", 0x1A8 + 8 * 3, 0x0001_0011),
    ("pmevcntr 33 bits", 0x0B0 + 8 * 5, 1 << 32),
]


@pytest.mark.parametrize("what,off,value", INVALID, ids=[i[0] for i in INVALID])
def test_flush_rejects_invalid_page_with_eio_and_recaches(what, off, value):
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx())
    if value is None:
        value = page(env, 0x070, 8) | (1 << 8)
    good = env.read_phys(PMU_PAGE + off, 8)
    env.put(PMU_PAGE + off, struct.pack("<Q", value))
    assert g.pmu(A.XENPMU_flush, arg=0) == -EIO
    assert page(env, 0x050, 8) & A.PMU_CACHED
    assert env.frozen and env.loads == [] and fe.pmu_irq_masked()
    assert env.of_type("hypercall")[-1]["detail"]["rejected"]
    assert fe.on_pmu_overflow(ctx()) is True                          # still cached: dropped
    assert env.of_type("xen_sample")[-1]["dropped"] == "cached"
    env.put(PMU_PAGE + off, good)                                     # the guest fixes it
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    assert not env.frozen and len(env.loads) == 1


def test_flush_accepts_boundary_values():
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx())
    env.put(PMU_PAGE + 0x090, struct.pack("<Q", 31))                  # PMSELR = cycle counter
    env.put(PMU_PAGE + 0x078, struct.pack("<Q", (1 << 31) | 0x3F))
    env.put(PMU_PAGE + 0x070, struct.pack("<Q", (0x41 << 24) | (N << 11) | 0xFB))
    env.put(PMU_PAGE + 0x0B0, struct.pack("<Q", 0xFFFF_FFFF))
    env.put(PMU_PAGE + 0x1A8, struct.pack("<Q", 0xF800_FFFF))
    env.put(PMU_PAGE + 0x1A8 + 8 * 20, struct.pack("<Q", 0xFFFF_FFFF))  # >= N: not validated
    assert g.pmu(A.XENPMU_flush, arg=0) == 0


def test_64bit_event_counters_with_pmuv3p5_rules():
    fe, env, g = make(page_rules=PageRules(event_counter_bits=64))
    assert g.map_shared_info() == 0 and g.pmu_init() == 0
    g.set_irq_ctrl(masked=False)
    assert g.pmu(A.XENPMU_lvtpc_set, arg=0) == 0
    assert fe.on_pmu_overflow(ctx())
    env.put(PMU_PAGE + 0x0B0, struct.pack("<Q", 0xFFFF_FFFF_FFFF_0000))  # Linux, LP=0 on v3p5
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    assert env.loads[-1].evcntr[0] == 0xFFFF_FFFF_FFFF_0000


def test_no_page_returns_false():
    fe, env, g = make()
    assert fe.on_pmu_overflow(ctx()) is False
    assert env.freeze_log == [] and env.of_type("xen_sample") == []
    fe, env, g, port = setup(nr_vcpus=2)
    assert g.pmu(A.XENPMU_finish) == 0
    assert g.pmu_init(vcpu=1) == 0
    assert fe.on_pmu_overflow(ctx()) is False                         # vCPU0 is interrupted


def test_interrupt_masked_after_init_until_lvtpc_set():
    fe, env, g, port = setup(unmask=False)
    assert fe.pmu_irq_owned() and fe.pmu_irq_masked()
    assert fe.on_pmu_overflow(ctx()) is True
    assert env.of_type("xen_sample")[-1]["dropped"] == "masked"
    assert not g.pending(port) and env.ppi_log == [] and env.freeze_log == []
    g.set_irq_ctrl(masked=False)
    assert g.pmu(A.XENPMU_lvtpc_set, arg=0) == 0
    assert not fe.pmu_irq_masked()
    assert fe.on_pmu_overflow(ctx()) and env.of_type("xen_sample")[-1]["dropped"] is None


def test_lvtpc_mask_bit_honoured():
    fe, env, g, port = setup()
    g.set_irq_ctrl(masked=True)
    assert g.pmu(A.XENPMU_lvtpc_set, arg=0) == 0
    assert fe.pmu_irq_masked()
    assert fe.on_pmu_overflow(ctx()) is True and not g.pending(port) and not env.frozen
    env.put(PMU_PAGE + 0x058, struct.pack("<I", 0xFFFE_FFFF))       # only bit 16 matters
    assert g.pmu(A.XENPMU_lvtpc_set, arg=0) == 0
    assert not fe.pmu_irq_masked()


def test_lvtpc_set_postponed_while_cached():
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx())
    g.set_irq_ctrl(masked=False)
    assert g.pmu(A.XENPMU_lvtpc_set, arg=0) == 0
    assert fe.pmu_irq_masked()                                        # deferred to flush
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    assert not fe.pmu_irq_masked()


def test_flush_masked_page_keeps_interrupt_masked():
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx())
    g.set_irq_ctrl(masked=True)
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    assert fe.pmu_irq_masked() and not env.frozen
    assert fe.on_pmu_overflow(ctx()) and env.of_type("xen_sample")[-1]["dropped"] == "masked"


def test_unbound_virq_notification_is_lost_but_sample_cached():
    fe, env, g, _ = setup(bind=False)
    assert fe.on_pmu_overflow(ctx()) is True
    assert page(env, 0x050, 8) == A.PMU_CACHED and env.frozen
    assert env.ppi_log == [] and g.upcall_pending() == 0
    assert env.of_type("xen_sample")[-1]["port"] is None
    assert g.pmu(A.XENPMU_flush, arg=0) == 0 and not env.frozen


def test_masked_port_keeps_pending_without_upcall_until_unmask():
    fe, env, g, port = setup()
    g.set_mask(port, True)
    assert fe.on_pmu_overflow(ctx())
    assert g.pending(port) and g.pending_sel() == 0 and g.upcall_pending() == 0
    assert env.ppi_log == []
    assert g.port_op(A.EVTCHNOP_unmask, port) == 0
    assert not g.masked(port) and g.pending_sel() == 1 and g.upcall_pending() == 1
    assert env.ppi[PPI]


def test_uninitialised_vpmu_drops_overflow():
    fe, env, g = make()
    assert g.pmu(A.XENPMU_mode_set, val=0) == 0
    assert g.pmu_init() == 0
    assert fe.on_pmu_overflow(ctx()) is True
    assert env.of_type("xen_sample")[-1]["dropped"] == "uninitialised"


def test_finish_while_cached_unfreezes():
    fe, env, g, port = setup()
    assert fe.on_pmu_overflow(ctx())
    assert g.pmu(A.XENPMU_finish) == 0
    assert not env.frozen and not fe.pmu_irq_owned()
    assert fe.on_pmu_overflow(ctx()) is False


def test_flush_without_pending_sample_does_not_touch_the_pmu():
    fe, env, g, port = setup()
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    assert env.loads == [] and env.freeze_log == []


@pytest.mark.parametrize("mode", ["hv", "all"])
def test_dom0_sample_in_hv_and_all_modes_is_self(mode):
    fe, env, g, port = setup(mode=mode)
    assert fe.on_pmu_overflow(ctx())
    assert page(env, 0x008, 2) == A.DOMID_SELF and g.pending(port)


def test_domu_sample():
    fe, env, g, port = setup(domid=5)
    assert fe.on_pmu_overflow(ctx())
    assert page(env, 0x000, 4) == 0 and page(env, 0x004, 4) == 0
    assert page(env, 0x008, 2) == A.DOMID_SELF


def test_linux_style_round_trip_one_interrupt_per_sample():
    """Bind, sample, handler clears upcall_pending + selector + port, edits, flush, EOI."""
    fe, env, g, port = setup()
    for i in range(3):
        assert fe.on_pmu_overflow(ctx(pc=0x100 * (i + 1)))
        assert env.ppi[PPI]
        g.ack_upcall()
        g.clear_pending(port)
        env.put(PMU_PAGE + 0x088, bytes(8))
        assert g.pmu(A.XENPMU_flush, arg=0) == 0       # entry re-samples the line: it drops
        fe.sync_upcall_line()                          # the machine, at EOI
        assert env.ppi[PPI] is False
    assert env.ppi_log == [(PPI, True), (PPI, False)] * 3

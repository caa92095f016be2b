"""event_channel_op (2-level ABI), shared_info delivery and the upcall line."""
from __future__ import annotations

import struct

import pytest
from test_xen_fakes import BAD_VA, HOLE_VA, RAM_BASE, SCRATCH, SHINFO_PAGE, make

from vpmu.xen import abi as A
from vpmu.xen.xerrno import EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, ENOSYS, EOPNOTSUPP, ESRCH

PPI = 31
DOMU = 3


def ready(domid=0, nr_vcpus=1, **kw):
    fe, env, g = make(domid=domid, nr_vcpus=nr_vcpus, **kw)
    assert g.map_shared_info() == 0
    return fe, env, g


def bind_ipi(g, vcpu=0):
    rc = g.evtchn(A.EVTCHNOP_bind_ipi, struct.pack("<II", vcpu, 0))
    return rc, g.env.u32(SCRATCH + 4)


def status(g, port, dom=A.DOMID_SELF):
    g.env.put(SCRATCH, struct.pack("<HHIIIHHI", dom, 0, port, 0xEE, 0xEE, 0xEEEE, 0xEEEE, 0xEE))
    rc = g.hc(A.HYPERVISOR_event_channel_op, A.EVTCHNOP_status, SCRATCH)
    raw = g.env.read_phys(SCRATCH, 24)
    st, vcpu = struct.unpack_from("<II", raw, 8)
    return rc, st, vcpu, raw[16:24]


def alloc_unbound(g, remote=A.DOMID_SELF, dom=A.DOMID_SELF):
    rc = g.evtchn(A.EVTCHNOP_alloc_unbound, struct.pack("<HHI", dom, remote, 0))
    return rc, g.env.u32(SCRATCH + 4)


def bind_interdomain(g, rport, rdom=A.DOMID_SELF):
    rc = g.evtchn(A.EVTCHNOP_bind_interdomain, struct.pack("<HHII", rdom, 0, rport, 0))
    return rc, g.env.u32(SCRATCH + 8)


# --- bind_virq ---------------------------------------------------------------------------------
def test_bind_virq_allocates_lowest_port_and_writes_struct_back():
    fe, env, g = ready(nr_vcpus=2)
    rc, port = g.bind_virq(A.VIRQ_XENPMU)
    assert rc == 0 and port == 1
    assert env.read_phys(SCRATCH, 12) == struct.pack("<III", A.VIRQ_XENPMU, 0, 1)
    assert g.bind_virq(A.VIRQ_TIMER) == (0, 2)
    assert g.bind_virq(A.VIRQ_XENPMU, vcpu=1) == (0, 3)       # per-vCPU: one per vCPU


def test_bind_virq_twice_eexist():
    fe, env, g = ready()
    assert g.bind_virq(A.VIRQ_XENPMU)[0] == 0
    assert g.bind_virq(A.VIRQ_XENPMU)[0] == -EEXIST


@pytest.mark.parametrize("virq,vcpu,rc", [
    (24, 0, -EINVAL), (0xFFFF_FFFF, 0, -EINVAL), (1 << 31, 0, -EINVAL),
    (A.VIRQ_CONSOLE, 1, -EINVAL),          # global VIRQ on vCPU != 0 (even a missing one)
    (A.VIRQ_ARCH_0, 7, -EINVAL),
    (A.VIRQ_ARGO, 1, -EINVAL),             # per-domain VIRQ is also vCPU0 only
    (A.VIRQ_TIMER, 2, -ENOENT),
    (A.VIRQ_XENPMU, 0xFFFF_FFFF, -ENOENT),
])
def test_bind_virq_argument_rules(virq, vcpu, rc):
    fe, env, g = ready(nr_vcpus=2)
    assert g.bind_virq(virq, vcpu)[0] == rc


@pytest.mark.parametrize("virq", [A.VIRQ_CONSOLE, A.VIRQ_DOM_EXC, A.VIRQ_ARCH_0, 23])
def test_global_virq_owned_by_hardware_domain(virq):
    fe, env, g = ready(domid=DOMU)
    assert g.bind_virq(virq)[0] == -EBUSY
    fe, env, g = ready(domid=0)
    assert g.bind_virq(virq) == (0, 1)
    assert g.bind_virq(virq)[0] == -EEXIST


def test_per_domain_virq_argo_bindable_by_domu():
    fe, env, g = ready(domid=DOMU)
    assert g.bind_virq(A.VIRQ_ARGO) == (0, 1)


def test_bind_virq_copy_faults():
    fe, env, g = ready()
    assert g.hc(A.HYPERVISOR_event_channel_op, A.EVTCHNOP_bind_virq, BAD_VA) == -EFAULT
    assert g.hc(A.HYPERVISOR_event_channel_op, A.EVTCHNOP_bind_virq, HOLE_VA - 4) == -EFAULT
    # copy-out fault: Xen keeps the binding ("cleaning up here would be a mess")
    env.readonly_pages.add(SCRATCH >> 12)
    assert g.bind_virq(A.VIRQ_XENPMU)[0] == -EFAULT
    env.readonly_pages.clear()
    assert status(g, 1)[:3] == (0, A.EVTCHNSTAT_virq, 0)
    assert g.bind_virq(A.VIRQ_XENPMU)[0] == -EEXIST


# --- send / close / unmask ---------------------------------------------------------------------
def test_send_rules():
    fe, env, g = ready()
    _, vport = g.bind_virq(A.VIRQ_XENPMU)
    assert g.port_op(A.EVTCHNOP_send, vport) == -EINVAL        # VIRQ-bound port
    assert g.port_op(A.EVTCHNOP_send, 0) == -EINVAL            # reserved
    assert g.port_op(A.EVTCHNOP_send, 5) == -EINVAL            # valid but free
    assert g.port_op(A.EVTCHNOP_send, 64) == -EINVAL           # bucket not allocated
    assert g.port_op(A.EVTCHNOP_send, 0xFFFF_FFFF) == -EINVAL
    _, uport = alloc_unbound(g)
    assert g.port_op(A.EVTCHNOP_send, uport) == 0              # unbound: silently dropped
    assert not g.pending(uport)
    _, iport = bind_ipi(g)
    assert g.port_op(A.EVTCHNOP_send, iport) == 0
    assert g.pending(iport) and g.upcall_pending() == 1 and env.ppi[PPI]


def test_close_rules_and_virq_rebind():
    fe, env, g = ready()
    _, port = g.bind_virq(A.VIRQ_XENPMU)
    fe.domain.evtchn.send_vcpu_virq(fe.domain.vcpus[0], A.VIRQ_XENPMU)
    g.set_mask(port, True)
    assert g.pending(port)
    assert g.port_op(A.EVTCHNOP_close, port) == 0
    assert not g.pending(port) and g.masked(port)              # pending cleared, mask kept
    assert status(g, port)[:2] == (0, A.EVTCHNSTAT_closed)
    assert fe.domain.evtchn.send_vcpu_virq(fe.domain.vcpus[0], A.VIRQ_XENPMU) is None   # unbound: lost
    assert g.port_op(A.EVTCHNOP_close, port) == -EINVAL        # already free
    assert g.port_op(A.EVTCHNOP_close, 0) == -EINVAL
    assert g.port_op(A.EVTCHNOP_close, 200) == -EINVAL
    assert g.bind_virq(A.VIRQ_XENPMU) == (0, port)             # lowest free again


def test_unmask_rules():
    fe, env, g = ready()
    assert g.port_op(A.EVTCHNOP_unmask, 64) == -EINVAL
    assert g.port_op(A.EVTCHNOP_unmask, 9) == 0                # valid free port: fine
    _, port = bind_ipi(g)
    g.set_mask(port, True)
    assert g.port_op(A.EVTCHNOP_send, port) == 0
    assert g.pending(port) and g.pending_sel() == 0 and g.upcall_pending() == 0
    assert env.ppi_log == []
    assert g.port_op(A.EVTCHNOP_unmask, port) == 0
    assert not g.masked(port) and g.pending_sel() == 1 and g.upcall_pending() == 1
    assert env.ppi_log == [(PPI, True)]
    g.ack_upcall()
    assert g.port_op(A.EVTCHNOP_unmask, port) == 0             # not masked: no re-signal
    assert g.upcall_pending() == 0


def test_pending_sel_word_bits():
    fe, env, g = ready()
    ports = [bind_ipi(g)[1] for _ in range(70)]
    assert ports == list(range(1, 71))
    assert g.port_op(A.EVTCHNOP_send, 70) == 0
    assert g.pending(70) and g.pending_sel() == 1 << 1
    assert g.port_op(A.EVTCHNOP_send, 3) == 0
    assert g.pending_sel() == 0b11
    assert env.u64(SHINFO_PAGE + 48 + 8) == 1 << (70 - 64)


def test_pending_bit_is_an_edge():
    fe, env, g = ready()
    _, port = bind_ipi(g)
    assert g.port_op(A.EVTCHNOP_send, port) == 0
    g.ack_upcall()                                  # the guest forgot to clear the port bit
    assert g.port_op(A.EVTCHNOP_send, port) == 0
    assert g.upcall_pending() == 0                  # edge already recorded: no new upcall
    g.clear_pending(port)
    assert g.port_op(A.EVTCHNOP_send, port) == 0
    assert g.upcall_pending() == 1


# --- status / buckets / ENOSPC ----------------------------------------------------------------
def test_status_of_each_kind():
    fe, env, g = ready(domid=0, nr_vcpus=2)
    _, vport = g.bind_virq(A.VIRQ_XENPMU, vcpu=1)
    _, iport = bind_ipi(g, vcpu=1)
    _, uport = alloc_unbound(g, remote=9)
    rc, st, vcpu, u = status(g, vport)
    assert (rc, st, vcpu) == (0, A.EVTCHNSTAT_virq, 1) and u[:4] == struct.pack("<I", A.VIRQ_XENPMU)
    assert u[4:] == struct.pack("<I", 0xEE)                    # the rest of the union untouched
    assert status(g, iport)[:3] == (0, A.EVTCHNSTAT_ipi, 1)
    rc, st, vcpu, u = status(g, uport)
    assert (rc, st, vcpu) == (0, A.EVTCHNSTAT_unbound, 0) and u[:2] == struct.pack("<H", 9)
    assert status(g, 0)[:2] == (0, A.EVTCHNSTAT_closed)        # reserved reports closed
    assert status(g, 40)[:2] == (0, A.EVTCHNSTAT_closed)       # free in an allocated bucket
    assert status(g, 64)[0] == -EINVAL                         # bucket not allocated
    assert status(g, 1, dom=0)[0] == 0                         # own id accepted
    assert status(g, 1, dom=1)[0] == -ESRCH
    assert status(g, 1000, dom=1)[0] == -ESRCH                 # domain checked before port


def test_buckets_grow_in_64_port_steps():
    fe, env, g = ready()
    for _ in range(63):
        bind_ipi(g)
    assert status(g, 64)[0] == -EINVAL
    assert bind_ipi(g) == (0, 64)
    assert status(g, 64)[:2] == (0, A.EVTCHNSTAT_ipi)
    assert status(g, 127)[:2] == (0, A.EVTCHNSTAT_closed) and status(g, 128)[0] == -EINVAL


def test_enospc_at_max_evtchn_port():
    fe, env, g = ready(max_evtchn_port=8)
    assert [bind_ipi(g)[1] for _ in range(8)] == list(range(1, 9))
    assert bind_ipi(g)[0] == -ENOSPC
    assert g.bind_virq(A.VIRQ_TIMER)[0] == -ENOSPC
    assert alloc_unbound(g)[0] == -ENOSPC
    assert g.port_op(A.EVTCHNOP_close, 4) == 0
    assert bind_ipi(g) == (0, 4)


def test_domu_default_port_limit_is_xl_default():
    fe, env, g = ready(domid=DOMU)
    assert fe.domain.evtchn.max_evtchn_port == 1023
    fe, env, g = ready(domid=0)
    assert fe.domain.evtchn.max_evtchn_port == 4095


# --- interdomain loopback, IPIs, bind_vcpu -----------------------------------------------------
def test_interdomain_loopback():
    fe, env, g = ready()
    rc, a = alloc_unbound(g)
    assert rc == 0 and a == 1
    assert status(g, a)[3][:2] == struct.pack("<H", 0)         # DOMID_SELF stored as own id
    rc, b = bind_interdomain(g, a)
    assert rc == 0 and b == 2
    assert g.pending(b)                                        # conservative notification
    rc, st, vcpu, u = status(g, b)
    assert st == A.EVTCHNSTAT_interdomain and struct.unpack("<H2xI", u) == (0, a)
    g.clear_pending(b)
    assert g.port_op(A.EVTCHNOP_send, b) == 0 and g.pending(a) and not g.pending(b)
    assert g.port_op(A.EVTCHNOP_send, a) == 0 and g.pending(b)
    assert g.port_op(A.EVTCHNOP_close, b) == 0
    assert status(g, a)[1] == A.EVTCHNSTAT_unbound             # peer back to unbound
    assert bind_interdomain(g, a) == (0, 2)


def test_bind_interdomain_rules():
    fe, env, g = ready()
    assert bind_interdomain(g, 1, rdom=4)[0] == -ESRCH
    assert bind_interdomain(g, 200)[0] == -EINVAL              # invalid remote port
    _, ipi = bind_ipi(g)
    assert bind_interdomain(g, ipi)[0] == -EINVAL              # not unbound
    _, u = alloc_unbound(g, remote=9)
    assert bind_interdomain(g, u)[0] == -EINVAL                # unbound for another domain
    assert alloc_unbound(g, dom=9)[0] == -ESRCH


def test_ipi_to_other_vcpu_uses_its_vcpu_info():
    fe, env, g = ready(nr_vcpus=2)
    vi1 = RAM_BASE + 0x22_0040
    env.put(SCRATCH, struct.pack("<QII", vi1 >> 12, vi1 & 0xFFF, 0))
    assert g.hc(A.HYPERVISOR_vcpu_op, A.VCPUOP_register_vcpu_info, 1, SCRATCH) == 0
    g.ack_upcall(vi1)
    assert bind_ipi(g, vcpu=5)[0] == -ENOENT
    _, port = bind_ipi(g, vcpu=1)
    assert g.port_op(A.EVTCHNOP_send, port) == 0
    assert g.upcall_pending(vi1) == 1 and g.pending_sel(vi1) == 1
    assert g.upcall_pending() == 0                             # vCPU0 untouched
    assert PPI not in env.ppi                                  # only the current vCPU's line
    assert fe.upcall_level(1) and not fe.upcall_level(0)


def test_bind_vcpu_rules():
    fe, env, g = ready(nr_vcpus=2)
    _, pv = g.bind_virq(A.VIRQ_TIMER)
    _, gv = g.bind_virq(A.VIRQ_CONSOLE)
    _, ipi = bind_ipi(g)
    _, ub = alloc_unbound(g)

    def bind_vcpu(port, vcpu):
        return g.evtchn(A.EVTCHNOP_bind_vcpu, struct.pack("<II", port, vcpu))
    assert bind_vcpu(pv, 1) == -EINVAL                         # per-vCPU VIRQ cannot move
    assert bind_vcpu(ipi, 1) == -EINVAL
    assert bind_vcpu(gv, 1) == 0 and status(g, gv)[2] == 1
    assert bind_vcpu(ub, 1) == 0 and status(g, ub)[2] == 1
    assert bind_vcpu(ub, 2) == -ENOENT
    assert bind_vcpu(99, 1) == -EINVAL
    assert bind_vcpu(30, 1) == -EINVAL                         # free


def test_pirq_fifo_and_unknown_commands():
    fe, env, g = ready()
    assert g.evtchn(A.EVTCHNOP_bind_pirq, struct.pack("<III", 0, 0, 0)) == -EINVAL
    assert g.evtchn(A.EVTCHNOP_init_control, bytes(24)) == -EOPNOTSUPP
    assert g.evtchn(A.EVTCHNOP_expand_array, bytes(8)) == -EOPNOTSUPP
    assert g.evtchn(A.EVTCHNOP_set_priority, struct.pack("<II", 0, 1)) == -ENOSYS
    assert g.evtchn(A.EVTCHNOP_set_priority, struct.pack("<II", 64, 1)) == -EINVAL
    for cmd in (14, 99, 0xFFFF_FFFF, (1 << 40) | 14):
        assert g.hc(A.HYPERVISOR_event_channel_op, cmd, SCRATCH) == -ENOSYS
    g.env.put(SCRATCH, struct.pack("<I", 1))
    assert g.hc(A.HYPERVISOR_event_channel_op, (1 << 32) | A.EVTCHNOP_unmask, SCRATCH) == 0


@pytest.mark.parametrize("cmd", range(14))
def test_every_command_copy_in_fault(cmd):
    fe, env, g = ready()
    assert g.hc(A.HYPERVISOR_event_channel_op, cmd, BAD_VA) == -EFAULT


def test_reset_closes_everything():
    fe, env, g = ready()
    g.bind_virq(A.VIRQ_XENPMU)
    bind_ipi(g)
    alloc_unbound(g)
    assert g.evtchn(A.EVTCHNOP_reset, struct.pack("<H", 5)) == -ESRCH
    assert g.evtchn(A.EVTCHNOP_reset, struct.pack("<H", A.DOMID_SELF)) == 0
    assert [status(g, p)[1] for p in (1, 2, 3)] == [A.EVTCHNSTAT_closed] * 3
    assert g.bind_virq(A.VIRQ_XENPMU) == (0, 1)


# --- shared_info placement and the upcall line ---------------------------------------------------
def test_events_before_shared_info_is_mapped_appear_after_mapping():
    fe, env, g = make()
    _, port = bind_ipi(g)
    assert g.port_op(A.EVTCHNOP_send, port) == 0
    assert env.read_phys(SHINFO_PAGE, 64) == bytes(64)         # nothing in guest RAM yet
    assert g.map_shared_info() == 0
    assert g.pending(port) and g.upcall_pending() == 1 and g.pending_sel() == 1


def test_upcall_line_one_interrupt_per_notification():
    fe, env, g = ready()
    _, port = bind_ipi(g)
    assert g.port_op(A.EVTCHNOP_send, port) == 0
    assert env.ppi_log == [(PPI, True)]
    assert g.port_op(A.EVTCHNOP_send, port) == 0               # already pending: nothing new
    assert env.ppi_log == [(PPI, True)]
    fe.sync_upcall_line()                                      # EOI without clearing: stays
    assert env.ppi_log == [(PPI, True)] and fe.upcall_level()
    g.ack_upcall()
    g.clear_pending(port)
    fe.sync_upcall_line()                                      # the machine at EOI
    assert env.ppi_log == [(PPI, True), (PPI, False)]
    assert g.port_op(A.EVTCHNOP_send, port) == 0
    assert env.ppi_log == [(PPI, True), (PPI, False), (PPI, True)]
    ups = env.of_type("xen_upcall")
    assert [(u["level"], u["port"]) for u in ups] == [(True, port), (False, None), (True, port)]


def test_guest_clearing_upcall_pending_then_hypercall_drops_line():
    fe, env, g = ready()
    _, port = bind_ipi(g)
    g.port_op(A.EVTCHNOP_send, port)
    g.ack_upcall()
    g.hc(A.HYPERVISOR_xen_version, A.XENVER_version, 0)        # any entry re-samples
    assert env.ppi[PPI] is False


def test_custom_evtchn_ppi():
    fe, env, g = ready(evtchn_ppi=22)
    _, port = bind_ipi(g)
    g.port_op(A.EVTCHNOP_send, port)
    assert env.ppi_log == [(22, True)]


def test_switching_current_vcpu_drives_its_line():
    fe, env, g = ready(nr_vcpus=2)
    _, port = bind_ipi(g, vcpu=1)
    assert g.port_op(A.EVTCHNOP_send, port) == 0
    assert PPI not in env.ppi
    fe.set_current_vcpu(1)
    assert env.ppi[PPI] is True and fe.upcall_level()
    fe.set_current_vcpu(0)
    assert env.ppi[PPI] is False

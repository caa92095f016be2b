"""memory_op, hvm_op, grant_table_op, sched_op, console_io and the dispatcher itself."""
from __future__ import annotations

import struct

import pytest
from test_xen_fakes import BAD_VA, HOLE_VA, RAM_BASE, SCRATCH, SHINFO_PAGE, make

from vpmu.xen import abi as A
from vpmu.xen.xerrno import (EBUSY, EDOM, EFAULT, EILSEQ, EINVAL, ENOENT, ENOSPC, ENOSYS,
                             EOPNOTSUPP, EPERM, ESRCH)

DOMU = 6
OTHER_PAGE = RAM_BASE + 0x24_0000


def physmap(g, space, idx=0, gpfn=SHINFO_PAGE >> 12, domid=A.DOMID_SELF, size=0, cmd=None):
    g.env.put(SCRATCH, struct.pack("<HHIQQ", domid, size, space, idx, gpfn))
    return g.hc(A.HYPERVISOR_memory_op, A.XENMEM_add_to_physmap if cmd is None else cmd, SCRATCH)


def unmap(g, gpfn, domid=A.DOMID_SELF, cmd=A.XENMEM_remove_from_physmap):
    g.env.put(SCRATCH, struct.pack("<HHIQ", domid, 0, 0, gpfn))
    return g.hc(A.HYPERVISOR_memory_op, cmd, SCRATCH)


# --- memory_op --------------------------------------------------------------------------------
def test_shared_info_mapping_rules():
    fe, env, g = make()
    env.put(SHINFO_PAGE, b"\x77" * 4096)
    assert physmap(g, A.XENMAPSPACE_shared_info, idx=1) == -EINVAL
    assert physmap(g, A.XENMAPSPACE_shared_info, gpfn=A.U64) == -EINVAL       # INVALID_GFN
    assert physmap(g, A.XENMAPSPACE_shared_info, domid=9) == -ESRCH
    assert physmap(g, A.XENMAPSPACE_shared_info, gpfn=0x10) == -EINVAL       # not RAM (model)
    assert physmap(g, A.XENMAPSPACE_shared_info) == 0
    assert env.read_phys(SHINFO_PAGE, 4096) == bytes(4096)    # the Xen page replaced it
    assert physmap(g, A.XENMAPSPACE_shared_info, gpfn=OTHER_PAGE >> 12) == -EBUSY
    assert physmap(g, A.XENMAPSPACE_shared_info, domid=0) == -EBUSY          # own id is fine


def test_shared_info_remap_after_remove_keeps_contents():
    fe, env, g = make()
    assert g.map_shared_info() == 0
    rc, port = g.bind_virq(A.VIRQ_XENPMU)
    fe.domain.evtchn.send_vcpu_virq(fe.domain.vcpus[0], A.VIRQ_XENPMU)
    assert unmap(g, 0x10) == -ENOENT                           # a hole
    assert unmap(g, OTHER_PAGE >> 12) == -EOPNOTSUPP           # plain RAM: not modelled
    assert unmap(g, SHINFO_PAGE >> 12, domid=4) == -ESRCH
    assert unmap(g, SHINFO_PAGE >> 12, cmd=A.XENMEM_remove_from_physmap | (1 << 6)) == -EINVAL
    assert unmap(g, SHINFO_PAGE >> 12) == 0
    assert physmap(g, A.XENMAPSPACE_shared_info, gpfn=OTHER_PAGE >> 12) == 0
    assert env.u8(OTHER_PAGE + 48) & (1 << port) and env.u8(OTHER_PAGE) == 1


def test_other_map_spaces():
    fe, env, g = make()
    assert physmap(g, A.XENMAPSPACE_gmfn) == -ENOSYS
    assert physmap(g, A.XENMAPSPACE_gmfn_foreign, domid=77) == -ENOSYS   # before the domain
    assert physmap(g, A.XENMAPSPACE_dev_mmio) == -EINVAL
    assert physmap(g, 99) == -ENOSYS
    assert physmap(g, A.XENMAPSPACE_gmfn_range, size=0) == 0
    assert physmap(g, A.XENMAPSPACE_gmfn_range, size=2) == -ENOSYS
    cont = A.XENMEM_add_to_physmap | (3 << 6)
    assert physmap(g, A.XENMAPSPACE_gmfn_range, size=2, cmd=cont) == -EILSEQ
    assert physmap(g, A.XENMAPSPACE_shared_info, cmd=A.XENMEM_add_to_physmap | (1 << 22)) == -EDOM
    assert g.hc(A.HYPERVISOR_memory_op, A.XENMEM_add_to_physmap, BAD_VA) == -EFAULT
    for op in (0, 1, 6, 14, 63):
        assert g.hc(A.HYPERVISOR_memory_op, op, SCRATCH) == -ENOSYS


def test_grant_table_frames_and_query_size():
    fe, env, g = make()

    def query(dom=A.DOMID_SELF, count=1):
        env.put(SCRATCH, struct.pack("<HHIIhH", dom, 0xAAAA, 0, 0, 99, 0))
        rc = g.hc(A.HYPERVISOR_grant_table_op, A.GNTTABOP_query_size, SCRATCH, count)
        return (rc,) + struct.unpack_from("<IIh", env.read_phys(SCRATCH, 16), 4)
    assert query() == (0, 1, 64, 0)
    assert physmap(g, A.XENMAPSPACE_grant_table, idx=3, gpfn=OTHER_PAGE >> 12) == 0
    assert query() == (0, 4, 64, 0)
    assert physmap(g, A.XENMAPSPACE_grant_table, idx=64) == -EINVAL
    assert physmap(g, A.XENMAPSPACE_grant_table, idx=3) == -EBUSY
    assert query(dom=9)[0] == 0 and query(dom=9)[3] == A.GNTST_bad_domain
    assert query(count=2)[0] == -EINVAL
    assert env.u16(SCRATCH + 2) == 0xAAAA                      # padding copied back untouched
    assert g.hc(A.HYPERVISOR_grant_table_op, A.GNTTABOP_query_size, BAD_VA, 1) == -EFAULT


def test_grant_versions_and_other_commands():
    fe, env, g = make()
    gop = lambda cmd, arg=SCRATCH, count=1: g.hc(A.HYPERVISOR_grant_table_op, cmd, arg, count)  # noqa
    env.put(SCRATCH, struct.pack("<HHI", A.DOMID_SELF, 0, 0))
    assert gop(A.GNTTABOP_get_version) == 0 and env.u32(SCRATCH + 4) == 1
    env.put(SCRATCH, struct.pack("<HHI", 3, 0, 0))
    assert gop(A.GNTTABOP_get_version) == -ESRCH
    for version, rc in ((1, 0), (2, -ENOSYS), (3, -EINVAL), (0, -EINVAL)):
        env.put(SCRATCH, struct.pack("<I", version))
        assert gop(A.GNTTABOP_set_version) == rc
        assert env.u32(SCRATCH) == 1                           # always told the current one
    assert gop(A.GNTTABOP_set_version, BAD_VA) == -EFAULT
    assert gop(A.GNTTABOP_get_version, BAD_VA) == -EFAULT
    assert gop(A.GNTTABOP_query_size, count=1 << 31) == -EINVAL
    assert gop(A.GNTTABOP_get_version | (1 << 12)) == -EINVAL  # continuation bits
    for cmd in (0, 1, 2, 3, 5, 9, 11, 12, 20):
        assert gop(cmd) == -ENOSYS


# --- hvm_op -----------------------------------------------------------------------------------
@pytest.mark.parametrize("domid", [0, DOMU])
def test_hvm_params(domid):
    fe, env, g = make(domid=domid)

    def param(op, index, value=0, dom=A.DOMID_SELF):
        env.put(SCRATCH, struct.pack("<HHIQ", dom, 0, index, value))
        return g.hc(A.HYPERVISOR_hvm_op, op, SCRATCH)
    assert param(A.HVMOP_get_param, A.HVM_PARAM_CALLBACK_IRQ) == 0
    assert env.u64(SCRATCH + 8) == 0x0200_0000_0000_021F       # PPI type, level-low, INTID 31
    for idx in (A.HVM_PARAM_STORE_PFN, A.HVM_PARAM_STORE_EVTCHN, A.HVM_PARAM_CONSOLE_PFN,
                A.HVM_PARAM_CONSOLE_EVTCHN):
        assert param(A.HVMOP_get_param, idx, value=5) == 0 and env.u64(SCRATCH + 8) == 0
    assert param(A.HVMOP_get_param, A.HVM_PARAM_MONITOR_RING_PFN) == -EPERM
    assert param(A.HVMOP_get_param, 3) == -EINVAL and param(A.HVMOP_get_param, 10_000) == -EINVAL
    assert param(A.HVMOP_set_param, A.HVM_PARAM_CALLBACK_IRQ, 1) == -EPERM
    assert param(A.HVMOP_set_param, A.HVM_PARAM_MONITOR_RING_PFN, 1) == -EPERM
    assert param(A.HVMOP_set_param, 3, 1) == -EINVAL
    assert param(A.HVMOP_get_param, 0, dom=77) == -ESRCH
    assert g.hc(A.HYPERVISOR_hvm_op, A.HVMOP_get_param, BAD_VA) == -EFAULT
    assert g.hc(A.HYPERVISOR_hvm_op, A.HVMOP_guest_request_vm_event, 0) == 0
    assert g.hc(A.HYPERVISOR_hvm_op, A.HVMOP_guest_request_vm_event, SCRATCH) == -EINVAL
    assert g.hc(A.HYPERVISOR_hvm_op, 5, SCRATCH) == -ENOSYS


def test_hvm_get_param_copy_out_fault():
    fe, env, g = make()
    env.put(SCRATCH, struct.pack("<HHIQ", A.DOMID_SELF, 0, 0, 0))
    env.readonly_pages.add(SCRATCH >> 12)
    assert g.hc(A.HYPERVISOR_hvm_op, A.HVMOP_get_param, SCRATCH) == -EFAULT


# --- sched_op -----------------------------------------------------------------------------------
def sched(g, cmd, payload=None):
    if payload is not None:
        g.env.put(SCRATCH, payload)
    return g.hc(A.HYPERVISOR_sched_op, cmd, SCRATCH)


@pytest.mark.parametrize("domid", [0, DOMU])
def test_shutdown_stops_the_run(domid):
    seen = []
    fe, env, g = make(domid=domid, on_shutdown=seen.append)
    assert sched(g, A.SCHEDOP_yield) == 0
    assert g.hc(A.HYPERVISOR_sched_op, A.SCHEDOP_shutdown, BAD_VA) == -EFAULT
    assert fe.shutdown_reason is None
    assert sched(g, A.SCHEDOP_shutdown, struct.pack("<I", 0x100 | A.SHUTDOWN_reboot)) == 0
    assert fe.shutdown_reason == A.SHUTDOWN_reboot and seen == [A.SHUTDOWN_reboot]
    assert env.of_type("hypercall")[-1]["detail"] == {"shutdown": A.SHUTDOWN_reboot}
    assert fe.shutdown == (0, "reset")


def test_shutdown_code_takes_precedence():
    fe, env, g = make()
    assert sched(g, A.SCHEDOP_shutdown_code, struct.pack("<I", A.SHUTDOWN_crash)) == 0
    assert sched(g, A.SCHEDOP_shutdown_code, struct.pack("<I", A.SHUTDOWN_poweroff)) == 0
    assert sched(g, A.SCHEDOP_shutdown, struct.pack("<I", A.SHUTDOWN_poweroff)) == 0
    assert fe.shutdown_reason == A.SHUTDOWN_crash


def test_remote_shutdown():
    fe, env, g = make(domid=DOMU)
    assert sched(g, A.SCHEDOP_remote_shutdown, struct.pack("<HHI", DOMU, 0, 0)) == 0
    assert fe.shutdown_reason is None                          # XSM refused, still 0
    assert sched(g, A.SCHEDOP_remote_shutdown, struct.pack("<HHI", A.DOMID_SELF, 0, 0)) == -ESRCH
    fe, env, g = make()
    assert sched(g, A.SCHEDOP_remote_shutdown, struct.pack("<HHI", 0, 0, 2)) == 0
    assert fe.shutdown_reason == 2


def test_block_and_poll():
    fe, env, g = make()
    assert g.map_shared_info() == 0
    assert sched(g, A.SCHEDOP_block) == 0
    assert fe.blocked and fe.unmask_irqs_on_return
    g.hc(A.HYPERVISOR_xen_version, 0, 0)
    assert not fe.unmask_irqs_on_return                        # per call
    env.put(SCRATCH + 64, struct.pack("<I", 1))
    rc = g.evtchn(A.EVTCHNOP_bind_ipi, struct.pack("<II", 0, 0), at=SCRATCH + 128)
    assert rc == 0
    assert fe.blocked and g.port_op(A.EVTCHNOP_send, 1) == 0
    assert not fe.blocked                                      # the upcall kicked the vCPU
    g.ack_upcall()
    g.clear_pending(1)
    poll = struct.pack("<QIIQ", SCRATCH + 64, 1, 0, env.now + 5000)
    assert sched(g, A.SCHEDOP_poll, poll) == 0
    assert fe.blocked and env.timers == {"xen:poll:0": env.now + 5000}
    env.advance(fe, env.now + 6000)
    assert not fe.blocked
    assert sched(g, A.SCHEDOP_poll, struct.pack("<QIIQ", SCRATCH + 64, 129, 0, 0)) == -EINVAL
    assert sched(g, A.SCHEDOP_poll, struct.pack("<QIIQ", BAD_VA, 1, 0, 0)) == -EFAULT
    env.put(SCRATCH + 64, struct.pack("<I", 4096))
    assert sched(g, A.SCHEDOP_poll, struct.pack("<QIIQ", SCRATCH + 64, 1, 0, 0)) == -EINVAL
    env.put(SCRATCH + 64, struct.pack("<I", 1))
    assert sched(g, A.SCHEDOP_poll, struct.pack("<QIIQ", SCRATCH + 64, 1, 0, 0)) == 0
    assert fe.blocked
    assert g.port_op(A.EVTCHNOP_send, 1) == 0
    assert not fe.blocked                                      # the polled port woke it


def test_watchdog():
    fe, env, g = make()
    assert sched(g, A.SCHEDOP_watchdog, struct.pack("<II", 0, 10)) == 1
    assert sched(g, A.SCHEDOP_watchdog, struct.pack("<II", 0, 10)) == 2
    assert sched(g, A.SCHEDOP_watchdog, struct.pack("<II", 0, 10)) == -ENOSPC
    assert sched(g, A.SCHEDOP_watchdog, struct.pack("<II", 2, 0)) == 0       # delete
    assert sched(g, A.SCHEDOP_watchdog, struct.pack("<II", 2, 5)) == -EINVAL
    assert sched(g, A.SCHEDOP_watchdog, struct.pack("<II", 3, 5)) == -EINVAL
    assert sched(g, A.SCHEDOP_watchdog, struct.pack("<II", 1, 1)) == 0       # pet: 1 s from now
    env.advance(fe, env.now + 999_999_999)
    assert fe.shutdown_reason is None
    env.advance(fe, env.now + 2)
    assert fe.shutdown_reason == A.SHUTDOWN_watchdog


def test_pin_override_and_unknown():
    fe, env, g = make(domid=DOMU)
    assert sched(g, A.SCHEDOP_pin_override, struct.pack("<i", 0)) == -EPERM
    fe, env, g = make()
    assert sched(g, A.SCHEDOP_pin_override, struct.pack("<i", -1)) == 0
    assert sched(g, A.SCHEDOP_pin_override, struct.pack("<i", 3)) == -EINVAL
    assert g.hc(A.HYPERVISOR_sched_op, A.SCHEDOP_pin_override, BAD_VA) == -EFAULT
    assert sched(g, 8) == -ENOSYS and sched(g, 0xFFFF_FFFF) == -ENOSYS


# --- console_io and the dispatcher ------------------------------------------------------------
def test_console_io():
    out = []
    fe, env, g = make(on_console=out.append)
    msg = b"hello from dom0 " * 20
    env.put(SCRATCH, msg)
    assert g.hc(A.HYPERVISOR_console_io, A.CONSOLEIO_write, len(msg), SCRATCH) == 0
    assert b"".join(out) == msg
    assert g.hc(A.HYPERVISOR_console_io, A.CONSOLEIO_write, 8, HOLE_VA) == -EFAULT
    # Xen copies 127 bytes at a time: the chunks before the one that faults are written
    out.clear()
    start = HOLE_VA - 1000                                   # 7 whole chunks (889 bytes) before the hole
    env.put(start, bytes(range(256)) * 4)
    assert g.hc(A.HYPERVISOR_console_io, A.CONSOLEIO_write, 5000, start) == -EFAULT
    assert b"".join(out) == (bytes(range(256)) * 4)[:7 * 127]
    out.clear()
    assert g.hc(A.HYPERVISOR_console_io, A.CONSOLEIO_write, 300, (1 << 64) - 100) == -EFAULT
    assert out == []
    assert g.hc(A.HYPERVISOR_console_io, A.CONSOLEIO_read, 8, SCRATCH) == 0
    assert g.hc(A.HYPERVISOR_console_io, 7, 0, 0) == -ENOSYS
    fe, env, g = make(domid=DOMU)
    assert g.hc(A.HYPERVISOR_console_io, A.CONSOLEIO_write, 1, SCRATCH) == -EPERM


@pytest.mark.parametrize("nr", [0, 1, 13, 16, 33, 39, 41, 48, 1 << 32, (1 << 64) - 1])
def test_unknown_hypercalls_enosys(nr):
    fe, env, g = make()
    assert fe.hypercall(nr, [1, 2, 3, 4, 5]) == -ENOSYS
    rec = env.of_type("hypercall")[-1]
    assert rec["nr"] == nr and rec["name"] is None and rec["errno"] == "ENOSYS"


def test_hypercall_args_are_normalised():
    fe, env, g = make()
    assert fe.hypercall(A.HYPERVISOR_xen_version, []) == 0x0004_0013
    assert fe.hypercall(A.HYPERVISOR_xen_version, [A.XENVER_pagesize - (1 << 64), 0]) == 4096
    rec = env.of_type("hypercall")[-1]
    assert rec["args"] == [A.XENVER_pagesize, 0, 0, 0, 0]
    assert rec["op_name"] == "pagesize" and rec["result"] == 4096 and rec["errno"] is None


def test_the_table_only_dispatches_to_handlers_in_the_operation_modules():
    """hypercall.py holds no behaviour: each entry names a do_* handler of an operation
    module that takes the Domain and exactly the arguments the entry converts."""
    import inspect

    from vpmu.xen.hypercall import HYPERCALLS
    assert set(HYPERCALLS) <= set(A.HYPERCALL_NAMES)
    for nr, (handler, types) in HYPERCALLS.items():
        assert handler.__module__ != "vpmu.xen.hypercall" and handler.__name__.startswith("do_"), nr
        params = list(inspect.signature(handler).parameters)
        assert params[0] == "d" and len(params) == 1 + len(types), (nr, params)


@pytest.mark.parametrize("nr,args,expect", [
    # int cmd: the low 32 bits, signed (0xFFFFFFFF is -1, an unknown command)
    (A.HYPERVISOR_xen_version, [(1 << 32) | A.XENVER_pagesize, 0], 4096),
    (A.HYPERVISOR_xen_version, [A.U32, 0], -ENOSYS),
    (A.HYPERVISOR_sched_op, [(7 << 32) | A.SCHEDOP_yield, 0], 0),
    # unsigned int vcpuid: vCPU 0 whatever the upper half
    (A.HYPERVISOR_vcpu_op, [A.VCPUOP_is_up, (5 << 32) | 0, 0], 1),
    # unsigned long cmd: memory_op's extent start is cmd >> 6, all 64 bits of it
    (A.HYPERVISOR_memory_op, [(1 << 32) | A.XENMEM_add_to_physmap, SCRATCH], -EDOM),
    # unsigned int count: grant_table_op's count 1 with garbage above bit 31 ...
    (A.HYPERVISOR_grant_table_op, [A.GNTTABOP_query_size, BAD_VA, (1 << 32) | 1], -EFAULT),
    # ... but a count with bit 31 set is a negative int to Xen
    (A.HYPERVISOR_grant_table_op, [A.GNTTABOP_query_size, SCRATCH, 1 << 31], -EINVAL),
])
def test_arguments_take_their_c_types(nr, args, expect):
    fe, env, g = make()
    g.env.put(SCRATCH, bytes(64))
    assert fe.hypercall(nr, args) == expect


def test_trace_keys_are_stable():
    fe, env, g = make()
    g.hc(A.HYPERVISOR_memory_op, A.XENMEM_add_to_physmap | (1 << 6), BAD_VA)
    rec = env.of_type("hypercall")[-1]
    assert set(rec) == {"type", "nr", "name", "op", "op_name", "args", "result", "errno"}
    assert rec["op"] == A.XENMEM_add_to_physmap and rec["op_name"] == "add_to_physmap"


def test_constructor_validation():
    from test_xen_fakes import FakeEnv

    from vpmu.xen import XenFrontend
    with pytest.raises(ValueError):
        XenFrontend(FakeEnv(), vpmu_mode="sometimes")
    with pytest.raises(ValueError):
        XenFrontend(FakeEnv(), domid=A.DOMID_SELF)
    with pytest.raises(ValueError):
        XenFrontend(FakeEnv(), nr_vcpus=0)


@pytest.mark.parametrize("reason,expect", [(0, (0, "system_off")), (1, (0, "reset")),
                                           (3, (1, "xen_crash")), (4, (1, "xen_watchdog")),
                                           (77, (1, "xen_shutdown_77"))])
def test_shutdown_tuple_for_the_machine(reason, expect):
    fe, env, g = make()
    assert fe.shutdown is None
    assert sched(g, A.SCHEDOP_shutdown, struct.pack("<I", reason)) == 0
    assert fe.shutdown == expect

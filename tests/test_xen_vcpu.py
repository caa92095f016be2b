"""vcpu_op (24): Xen/Arm's two commands, the switchable extensions, timers and runstate."""
from __future__ import annotations

import struct

import pytest
from test_xen_fakes import BAD_VA, HOLE_VA, RAM_BASE, SCRATCH, SHINFO_PAGE, make

from vpmu.xen import abi as A
from vpmu.xen.xerrno import EBUSY, EFAULT, EINVAL, ENOENT, ENOSYS, ENXIO

PPI = 31
VI = RAM_BASE + 0x22_0040          # where tests register a vcpu_info
RS = RAM_BASE + 0x23_0000          # where tests register a runstate area


def vop(g, cmd, vcpu=0, arg=SCRATCH):
    return g.hc(A.HYPERVISOR_vcpu_op, cmd, vcpu, arg)


def runstate(env, at):
    return struct.unpack("<iIQ4Q", env.read_phys(at, 48))


@pytest.mark.parametrize("cmd", [0, 3, 5, 10, 99, 0xFFFF_FFFF])
def test_missing_vcpu_enoent_first(cmd):
    fe, env, g = make(nr_vcpus=2)
    assert vop(g, cmd, vcpu=2) == -ENOENT
    assert vop(g, cmd, vcpu=0xFFFF_FFFF, arg=BAD_VA) == -ENOENT


@pytest.mark.parametrize("cmd", [0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16])
def test_strict_arm_rejects_everything_else(cmd):
    fe, env, g = make(vcpu_op_extensions=False)
    assert vop(g, cmd) == -EINVAL


@pytest.mark.parametrize("cmd", [0, 1, 2, 11, 12, 13, 15, 99])
def test_extensions_still_reject_the_rest(cmd):
    fe, env, g = make()
    assert vop(g, cmd, arg=0) == -EINVAL


def test_is_up_extension():
    fe, env, g = make(nr_vcpus=2)
    assert vop(g, A.VCPUOP_is_up, 0) == 1 and vop(g, A.VCPUOP_is_up, 1) == 0
    fe.set_vcpu_up(1, True)
    assert vop(g, A.VCPUOP_is_up, 1) == 1


def test_get_runstate_info_extension():
    fe, env, g = make(nr_vcpus=2)
    t0 = env.now
    env.now = t0 + 5_000_000
    assert vop(g, A.VCPUOP_get_runstate_info) == 0
    assert runstate(env, SCRATCH) == (A.RUNSTATE_running, 0, t0, 5_000_000, 0, 0, 0)
    assert vop(g, A.VCPUOP_get_runstate_info, vcpu=1) == 0
    assert runstate(env, SCRATCH) == (A.RUNSTATE_offline, 0, t0, 0, 0, 0, 5_000_000)
    assert vop(g, A.VCPUOP_get_runstate_info, arg=BAD_VA) == -EFAULT
    assert vop(g, A.VCPUOP_get_runstate_info, arg=HOLE_VA) == -EFAULT
    fe.set_vcpu_up(1, True)
    env.now += 1000
    assert vop(g, A.VCPUOP_get_runstate_info, vcpu=1) == 0
    assert runstate(env, SCRATCH) == (A.RUNSTATE_running, 0, t0 + 5_000_000, 1000, 0, 0,
                                      5_000_000)


def test_register_runstate_memory_area():
    fe, env, g = make(nr_vcpus=2, vcpu_op_extensions=False)
    t0 = env.now
    env.now += 777
    assert vop(g, A.VCPUOP_register_runstate_memory_area, arg=BAD_VA) == -EFAULT
    env.put(SCRATCH, struct.pack("<Q", RS))
    assert vop(g, A.VCPUOP_register_runstate_memory_area) == 0
    # the current vCPU gets its stored runstate: entered at t0, nothing accumulated yet
    assert runstate(env, RS) == (A.RUNSTATE_running, 0, t0, 0, 0, 0, 0)
    env.put(SCRATCH, struct.pack("<Q", RS + 64))
    assert vop(g, A.VCPUOP_register_runstate_memory_area, vcpu=1) == 0
    assert runstate(env, RS + 64) == (A.RUNSTATE_offline, 0, t0, 0, 0, 0, 777)


def test_register_runstate_bad_area_is_ignored_like_xen():
    fe, env, g = make()
    for addr in (HOLE_VA, BAD_VA, 0):
        env.put(SCRATCH, struct.pack("<Q", addr))
        assert vop(g, A.VCPUOP_register_runstate_memory_area) == 0


def test_register_vcpu_info_rules():
    fe, env, g = make(nr_vcpus=2)

    def reg(mfn, offset, vcpu=0):
        env.put(SCRATCH, struct.pack("<QII", mfn, offset, 0))
        return vop(g, A.VCPUOP_register_vcpu_info, vcpu=vcpu)
    page = VI >> 12
    assert vop(g, A.VCPUOP_register_vcpu_info, arg=BAD_VA) == -EFAULT
    assert reg(page, 4096) == -EINVAL                          # offset leaves the frame
    assert reg(1 << 60, 0) == -EINVAL                          # frame number overflows
    assert reg((1 << 52) - 1, 0xFFF) == -EINVAL                # the all-ones address
    assert reg(page, 4096 - 40) == -ENXIO                      # crosses a page
    assert reg(page, 4) == -ENXIO                              # not 8-byte aligned
    assert reg(0x10, 0) == -EINVAL                             # not RAM
    assert reg(page, VI & 0xFFF) == 0
    assert reg(page, (VI & 0xFFF) + 64) == -EBUSY
    assert reg(page, (VI & 0xFFF) + 64, vcpu=1) == 0


def test_register_vcpu_info_moves_delivery_and_marks_everything_pending():
    fe, env, g = make()
    assert g.map_shared_info() == 0
    rc, port = g.bind_virq(A.VIRQ_TIMER)
    env.put(SHINFO_PAGE + 16, b"T" * 32)                       # vcpu_time_info slot content
    env.put(SCRATCH, struct.pack("<QII", VI >> 12, VI & 0xFFF, 0))
    assert vop(g, A.VCPUOP_register_vcpu_info) == 0
    assert env.read_phys(VI + 16, 32) == b"T" * 32             # old vcpu_info copied
    assert g.pending_sel(VI) == A.U64 and g.upcall_pending(VI) == 1
    assert env.ppi_log == [(PPI, True)]                        # a spurious event, on purpose
    g.ack_upcall(VI)
    fe.sync_upcall_line()
    fe.domain.evtchn.send_vcpu_virq(fe.domain.vcpus[0], A.VIRQ_TIMER)
    assert g.upcall_pending(VI) == 1 and g.pending_sel(VI) == 1
    assert g.upcall_pending(SHINFO_PAGE) == 0                  # the shared_info slot is dead


def test_secondary_vcpu_info_starts_from_zeros():
    fe, env, g = make(nr_vcpus=2)
    env.put(VI, b"\xAB" * 48)
    env.put(SCRATCH, struct.pack("<QII", VI >> 12, VI & 0xFFF, 0))
    assert vop(g, A.VCPUOP_register_vcpu_info, vcpu=1) == 0
    assert env.read_phys(VI, 48) == b"\x01" + bytes(7) + b"\xFF" * 8 + bytes(32)


# --- timers ---------------------------------------------------------------------------------------
def timer_setup(**kw):
    fe, env, g = make(**kw)
    assert g.map_shared_info() == 0
    rc, port = g.bind_virq(A.VIRQ_TIMER)
    return fe, env, g, port


@pytest.mark.parametrize("period", [0, 999_999, (1 << 62), (1 << 64) - 1])
def test_periodic_timer_bounds(period):
    fe, env, g, port = timer_setup()
    env.put(SCRATCH, struct.pack("<Q", period))
    assert vop(g, A.VCPUOP_set_periodic_timer) == -EINVAL
    assert env.timers == {}


def test_periodic_timer_delivers_virq_timer():
    fe, env, g, port = timer_setup()
    assert vop(g, A.VCPUOP_set_periodic_timer, arg=BAD_VA) == -EFAULT
    t0 = env.now
    env.put(SCRATCH, struct.pack("<Q", 1_000_000))
    assert vop(g, A.VCPUOP_set_periodic_timer) == 0
    assert env.timers == {"xen:periodic:0": t0 + 1_000_000}
    assert env.advance(fe, t0 + 3_500_000) == ["xen:periodic:0"] * 3
    assert g.pending(port) and env.ppi[PPI]
    assert env.timers == {"xen:periodic:0": t0 + 4_000_000}
    assert vop(g, A.VCPUOP_set_periodic_timer) == 0            # same period: not re-armed
    assert env.timers == {"xen:periodic:0": t0 + 4_000_000}
    assert vop(g, A.VCPUOP_stop_periodic_timer, arg=0) == 0
    assert env.timers == {}


def test_periodic_timer_stops_while_the_vcpu_is_blocked():
    """Xen stops the periodic timer of a vCPU it deschedules (sched_context_switch) and on
    resume sends VIRQ_TIMER if a period passed, the phase restarting then; a vCPU that is not
    running here keeps its timer on the period's grid and catches up in one step."""
    fe, env, g, port = timer_setup(nr_vcpus=2)
    rc, port1 = g.bind_virq(A.VIRQ_TIMER, 1)
    assert rc == 0 and port1 != port
    t0 = env.now
    env.put(SCRATCH, struct.pack("<Q", 1_000_000))
    assert vop(g, A.VCPUOP_set_periodic_timer) == 0
    assert vop(g, A.VCPUOP_set_periodic_timer, vcpu=1) == 0
    fe.on_sleep(True)                                           # vCPU 0 waits (WFI, SCHEDOP_block)
    assert env.timers == {}                                     # nothing left that re-arms itself
    assert "periodic timer of vCPU 0 does not run while the vCPU is blocked" in fe.sleep_note()
    env.now = t0 + 3_500_000
    fe.on_sleep(False)
    assert g.pending(port) and g.pending(port1)
    assert env.timers == {"xen:periodic:0": t0 + 4_500_000, "xen:periodic:1": t0 + 4_000_000}
    # too early for another period: the timers stay where they were
    fe.on_sleep(True)
    env.now = t0 + 3_900_000
    fe.on_sleep(False)
    assert env.timers == {"xen:periodic:0": t0 + 4_500_000, "xen:periodic:1": t0 + 4_000_000}
    assert vop(g, A.VCPUOP_stop_periodic_timer, arg=0) == 0
    assert fe.sleep_note() == ""


def test_periodic_timer_on_other_vcpu_allowed():
    fe, env, g, port = timer_setup(nr_vcpus=2)
    env.put(SCRATCH, struct.pack("<Q", 2_000_000))
    assert vop(g, A.VCPUOP_set_periodic_timer, vcpu=1) == 0
    assert "xen:periodic:1" in env.timers


def test_singleshot_timer():
    fe, env, g, port = timer_setup(nr_vcpus=2)
    env.put(SCRATCH, struct.pack("<QII", env.now + 500, 0, 0))
    assert vop(g, A.VCPUOP_set_singleshot_timer, vcpu=1) == -EINVAL     # not the caller
    assert vop(g, A.VCPUOP_stop_singleshot_timer, vcpu=1) == -EINVAL
    assert vop(g, A.VCPUOP_set_singleshot_timer, arg=BAD_VA) == -EFAULT
    assert vop(g, A.VCPUOP_set_singleshot_timer) == 0
    assert not g.pending(port)
    assert env.advance(fe, env.now + 1000) == ["xen:singleshot:0"]
    assert g.pending(port)
    assert env.timers == {}


def test_singleshot_in_the_past_fires_now_and_flag_is_ignored():
    fe, env, g, port = timer_setup()
    env.put(SCRATCH, struct.pack("<QII", env.now - 1, A.VCPU_SSHOTTMR_future, 0))
    assert vop(g, A.VCPUOP_set_singleshot_timer) == 0          # no -ETIME since Xen 4.18
    assert g.pending(port) and env.timers == {}
    g.clear_pending(port)
    env.put(SCRATCH, struct.pack("<QII", (1 << 64) - 1, 0, 0))  # negative s_time_t: past
    assert vop(g, A.VCPUOP_set_singleshot_timer) == 0 and g.pending(port)


def test_stop_singleshot_cancels():
    fe, env, g, port = timer_setup()
    env.put(SCRATCH, struct.pack("<QII", env.now + 10, 0, 0))
    assert vop(g, A.VCPUOP_set_singleshot_timer) == 0
    assert vop(g, A.VCPUOP_stop_singleshot_timer, arg=0) == 0
    assert env.timers == {} and env.advance(fe, env.now + 100) == []
    fe.on_timer("xen:singleshot:0")                            # a stale expiry is harmless
    assert not g.pending(port)


def test_timers_unbound_virq_lost_and_bad_names_ignored():
    fe, env, g = make()
    env.put(SCRATCH, struct.pack("<Q", 1_000_000))
    assert vop(g, A.VCPUOP_set_periodic_timer) == 0
    env.advance(fe, env.now + 1_000_000)
    assert env.ppi_log == []
    for name in ("xen:periodic:9", "bogus", "xen:x:y", "xen:watchdog:1"):
        fe.on_timer(name)


def test_send_nmi_is_einval_on_arm():
    for ext in (True, False):
        fe, env, g = make(vcpu_op_extensions=ext)
        assert vop(g, A.VCPUOP_send_nmi, arg=0) == -EINVAL


def test_register_runstate_phys_area_extension():
    fe, env, g = make()
    t0 = env.now

    def reg(addr):
        env.put(SCRATCH, struct.pack("<Q", addr))
        return vop(g, A.VCPUOP_register_runstate_phys_area)
    assert vop(g, A.VCPUOP_register_runstate_phys_area, arg=BAD_VA) == -EFAULT
    assert reg(RS + 4096 - 8) == -ENXIO
    assert reg(RS + 4) == -ENXIO
    assert reg(0x2000) == -EINVAL
    assert reg(RS) == 0 and runstate(env, RS) == (0, 0, t0, 0, 0, 0, 0)
    assert reg(A.U64) == 0 and fe.domain.vcpus[0].runstate_pa is None


def test_vm_assist():
    fe, env, g = make()
    hc = lambda cmd, t: g.hc(A.HYPERVISOR_vm_assist, cmd, t)   # noqa: E731
    assert hc(A.VMASST_CMD_enable, A.VMASST_TYPE_runstate_update_flag) == 0
    assert fe.domain.vm_assist == 1 << 5
    assert hc(A.VMASST_CMD_disable, A.VMASST_TYPE_runstate_update_flag) == 0
    assert fe.domain.vm_assist == 0
    assert hc(A.VMASST_CMD_enable, 0) == -EINVAL               # x86-only types
    assert hc(A.VMASST_CMD_enable, 64) == -EINVAL
    assert hc(2, A.VMASST_TYPE_runstate_update_flag) == -ENOSYS

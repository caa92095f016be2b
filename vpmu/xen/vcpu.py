"""vcpu_op (24), vm_assist (21), the vCPU timers and the runstate area.

Xen/Arm (xen/arch/arm/domain.c ``do_vcpu_op``) checks the vCPU id first (``-ENOENT``)
and accepts only ``register_vcpu_info`` (10) and ``register_runstate_memory_area`` (5);
everything else is ``-EINVAL``.  With ``Domain.vcpu_op_extensions`` (the default, documented in
docs/xen.md) the frontend also answers the common-code commands x86 guests use:
``is_up`` (3), ``get_runstate_info`` (4), the periodic / single-shot timers (6-9,
delivering VIRQ_TIMER through ``env.set_timer``; a periodic timer does not run while its
vCPU is blocked, as in Xen: see :func:`on_sleep`) and ``register_runstate_phys_area``
(14), each exactly as xen/common/domain.c does.  ``send_nmi`` (11) stays ``-EINVAL``
either way: AArch64 without FEAT_NMI has nothing an NMI could be delivered as.

Runstate: every vCPU that is up has been RUNSTATE_running since the frontend was
built (the emulator never deschedules it); times come from ``env.now_ns()``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import abi as A
from . import layout as L
from .core import Region
from .xerrno import EBUSY, EFAULT, EINVAL, ENOENT, ENOSYS, ENXIO

if TYPE_CHECKING:
    from .core import Vcpu
    from .domain import Domain

MILLISECS = 1_000_000
STIME_DELTA_MAX = (1 << 62) - 1        # (s_time_t)((uint64_t)~0ull >> 2)
ARM_CMDS = (A.VCPUOP_register_vcpu_info, A.VCPUOP_register_runstate_memory_area)
EXT_CMDS = (A.VCPUOP_is_up, A.VCPUOP_get_runstate_info, A.VCPUOP_set_periodic_timer,
            A.VCPUOP_stop_periodic_timer, A.VCPUOP_set_singleshot_timer,
            A.VCPUOP_stop_singleshot_timer, A.VCPUOP_register_runstate_phys_area)
_RS = L.VCPU_RUNSTATE_INFO


def s64(x: int) -> int:
    x &= A.U64
    return x - (1 << 64) if x >> 63 else x


def timer_name(kind: str, vid: int) -> str:
    return f"xen:{kind}:{vid}"


# --- vcpu_op ------------------------------------------------------------------------
def do_vcpu_op(d: "Domain", cmd: int, vcpuid: int, arg: int) -> int:
    if vcpuid >= len(d.vcpus):
        return -ENOENT
    if cmd not in ARM_CMDS and not (d.vcpu_op_extensions and cmd in EXT_CMDS):
        return -EINVAL
    v = d.vcpus[vcpuid]
    g = d.guest
    current = vcpuid == d.current_vcpu
    if cmd == A.VCPUOP_register_vcpu_info:
        return _register_vcpu_info(d, v, arg)
    if cmd == A.VCPUOP_register_runstate_memory_area:
        raw = g.copy_from(arg, L.VCPU_REGISTER_RUNSTATE_AREA.size)
        if raw is None:
            return -EFAULT
        addr = L.VCPU_REGISTER_RUNSTATE_AREA.get(raw, "addr")
        v.runstate_va = addr or None           # a NULL handle unregisters
        if addr:
            # guest_handle_okay() is always true on Arm and the copy's result is ignored.
            g.copy_to(addr, _runstate_bytes(d, v, include_current=not current))
        return 0
    if cmd == A.VCPUOP_is_up:
        return 1 if v.up else 0
    if cmd == A.VCPUOP_get_runstate_info:
        data = _runstate_bytes(d, v, include_current=True)
        return 0 if g.copy_to(arg, data) else -EFAULT
    if cmd == A.VCPUOP_set_periodic_timer:
        raw = g.copy_from(arg, L.VCPU_SET_PERIODIC_TIMER.size)
        if raw is None:
            return -EFAULT
        period = s64(L.VCPU_SET_PERIODIC_TIMER.get(raw, "period_ns"))
        if period < MILLISECS or period > STIME_DELTA_MAX:
            return -EINVAL
        set_periodic_timer(d, v, period)
        return 0
    if cmd == A.VCPUOP_stop_periodic_timer:
        set_periodic_timer(d, v, 0)
        return 0
    if cmd == A.VCPUOP_set_singleshot_timer:
        if not current:
            return -EINVAL
        raw = g.copy_from(arg, L.VCPU_SET_SINGLESHOT_TIMER.size)
        if raw is None:
            return -EFAULT
        timeout = s64(L.VCPU_SET_SINGLESHOT_TIMER.get(raw, "timeout_abs_ns"))
        # VCPU_SSHOTTMR_future is ignored since Xen 4.18: a past deadline fires now.
        if timeout < d.env.now_ns():
            _stop_singleshot(d, v)
            d.evtchn.send_vcpu_virq(v, A.VIRQ_TIMER)
        else:
            v.timers.singleshot_deadline = timeout
            d.env.set_timer(timer_name("singleshot", v.id), timeout)
        return 0
    if cmd == A.VCPUOP_stop_singleshot_timer:
        if not current:
            return -EINVAL
        _stop_singleshot(d, v)
        return 0
    if cmd == A.VCPUOP_register_runstate_phys_area:
        raw = g.copy_from(arg, 8)
        if raw is None:
            return -EFAULT
        gaddr = int.from_bytes(raw, "little")
        if gaddr == A.U64:                     # ~0: unmap
            v.runstate_pa = None
            return 0
        rc = _check_guest_area(d, gaddr, _RS.size)
        if rc:
            return rc
        v.runstate_pa = gaddr
        if current:                            # runstate_area_populate()
            g.write_phys(gaddr, _runstate_bytes(d, v, include_current=False))
        return 0
    return -EINVAL                             # not reached: filtered above


def _check_guest_area(d: "Domain", gaddr: int, size: int) -> int:
    """map_guest_area()'s checks: same page, xen_ulong_t aligned, writable RAM."""
    if gaddr >> A.PAGE_SHIFT != (gaddr + size - 1) >> A.PAGE_SHIFT:
        return -ENXIO
    if gaddr & 7:
        return -ENXIO
    if not d.guest.is_ram(gaddr, size):
        return -EINVAL                         # check_get_page_from_gfn()
    return 0


def _register_vcpu_info(d: "Domain", v: "Vcpu", arg: int) -> int:
    raw = d.guest.copy_from(arg, L.VCPU_REGISTER_VCPU_INFO.size)
    if raw is None:
        return -EFAULT
    f = L.VCPU_REGISTER_VCPU_INFO.unpack(raw)
    gaddr = ((f["mfn"] << A.PAGE_SHIFT) + f["offset"]) & A.U64
    if gaddr == A.U64 or gaddr >> A.PAGE_SHIFT != f["mfn"]:
        return -EINVAL
    if v.vi_registered:
        return -EBUSY
    rc = _check_guest_area(d, gaddr, L.VCPU_INFO.size)
    if rc:
        return rc
    # vcpu_info_populate(): copy the old vcpu_info, or zeros if it was the dummy.
    old = bytes(L.VCPU_INFO.size) if v.id != 0 else \
        v.vi_region.read(v.vi_off, L.VCPU_INFO.size)
    region = Region(d.guest, L.VCPU_INFO.size)
    region.pa = gaddr
    region.write(0, old)
    v.vi_region, v.vi_off, v.vi_registered = region, 0, True
    # "Mark everything as being pending just to make sure nothing gets lost."
    region.write(L.VCPU_INFO.off("evtchn_pending_sel"), A.U64.to_bytes(8, "little"))
    d.evtchn.mark_events_pending(v)
    return 0


def _runstate_bytes(d: "Domain", v: "Vcpu", include_current: bool) -> bytes:
    state, entry, times = v.runstate(d.env.now_ns(), include_current)
    return _RS.pack({"state": state, "state_entry_time": entry, "time": times})


# --- timers (xen/common/sched/core.c) ------------------------------------------------
def set_periodic_timer(d: "Domain", v: "Vcpu", period: int) -> None:
    t = v.timers
    if t.periodic_period == period:
        return
    t.periodic_period = period
    if period == 0:
        d.env.set_timer(timer_name("periodic", v.id), None)
        return
    now = d.env.now_ns()
    t.periodic_last = now
    d.env.set_timer(timer_name("periodic", v.id), now + period)


def _stop_singleshot(d: "Domain", v: "Vcpu") -> None:
    if v.timers.singleshot_deadline is not None:
        v.timers.singleshot_deadline = None
        d.env.set_timer(timer_name("singleshot", v.id), None)


def set_poll_timer(d: "Domain", v: "Vcpu", deadline: int) -> None:
    """SCHEDOP_poll with a timeout: the poll ends at ``deadline`` (ns) at the latest."""
    v.timers.poll_deadline = deadline
    d.env.set_timer(timer_name("poll", v.id), deadline)


def stop_poll_timer(d: "Domain", v: "Vcpu") -> None:
    if v.timers.poll_deadline is not None:
        v.timers.poll_deadline = None
        d.env.set_timer(timer_name("poll", v.id), None)


def vcpu_timer_expired(d: "Domain", kind: str, vid: int) -> None:
    """The timer ``xen:<kind>:<vid>`` expired (periodic, singleshot or poll)."""
    if vid >= len(d.vcpus):
        return
    v = d.vcpus[vid]
    t = v.timers
    if kind == "singleshot" and t.singleshot_deadline is not None:
        t.singleshot_deadline = None
        d.evtchn.send_vcpu_virq(v, A.VIRQ_TIMER)
    elif kind == "periodic" and t.periodic_period:
        _periodic_timer_work(d, v)
    elif kind == "poll":
        t.poll_deadline = None                 # poll_timer_fn(): the poll ends
        v.blocked, v.poll_ports = False, None


def _periodic_timer_work(d: "Domain", v: "Vcpu") -> None:
    """vcpu_periodic_timer_work(): VIRQ_TIMER if a period has passed since the last one
    (the phase restarts from now), and the timer armed for the next."""
    t = v.timers
    now = d.env.now_ns()
    nxt = t.periodic_last + t.periodic_period
    if now >= nxt:
        d.evtchn.send_vcpu_virq(v, A.VIRQ_TIMER)
        t.periodic_last = now
        nxt = now + t.periodic_period
    d.env.set_timer(timer_name("periodic", v.id), nxt)


def on_sleep(d: "Domain", sleeping: bool) -> None:
    """The current vCPU blocks (WFI, SCHEDOP_block/poll) or is scheduled again.

    Xen stops a vCPU's periodic timer when it deschedules it and, when it schedules it
    again, sends VIRQ_TIMER at once if a period has passed (sched/core.c
    ``sched_context_switch``: ``stop_timer(&vprev->periodic_timer)``,
    ``vcpu_periodic_timer_work(vnext)``).  So a blocked vCPU is never woken by its
    periodic timer.  The other vCPUs never run here; their periodic timers keep running
    in Xen, firing on time: on resume they catch up in one step (the first missed tick
    sets VIRQ_TIMER pending, the others change only the phase, which stays on the
    period's grid)."""
    for v in d.vcpus:
        t = v.timers
        if not t.periodic_period:
            continue
        name = timer_name("periodic", v.id)
        if sleeping:
            d.env.set_timer(name, None)
        elif v.id == d.current_vcpu:
            _periodic_timer_work(d, v)
        else:
            now = d.env.now_ns()
            if now >= t.periodic_last + t.periodic_period:
                d.evtchn.send_vcpu_virq(v, A.VIRQ_TIMER)
                t.periodic_last += (now - t.periodic_last) // t.periodic_period * t.periodic_period
            d.env.set_timer(name, t.periodic_last + t.periodic_period)


def sleep_note(d: "Domain") -> str:
    """Why a stopped timer cannot end the current wait ('' if none)."""
    v = d.current
    if v.timers.periodic_period:
        return (f"the Xen periodic timer of vCPU {v.id} does not run while the vCPU is blocked "
                f"(Xen stops it when it deschedules the vCPU)")
    return ""


def vcpu_set_up(d: "Domain", v: "Vcpu", up: bool) -> None:
    """A secondary vCPU was brought up (PSCI CPU_ON) or down: its runstate follows."""
    if v.up == up:
        return
    now = d.env.now_ns()
    _state, _entry, times = v.runstate(now, include_current=True)
    v.rs_time = times
    v.rs_entry = now
    v.up = up
    v.rs_state = A.RUNSTATE_running if up else A.RUNSTATE_offline


# --- vm_assist -----------------------------------------------------------------------
def do_vm_assist(d: "Domain", cmd: int, vtype: int) -> int:
    if vtype >= 64 or not (A.ARM_VM_ASSIST_VALID >> vtype) & 1:
        return -EINVAL
    if cmd == A.VMASST_CMD_enable:
        d.vm_assist |= 1 << vtype
        return 0
    if cmd == A.VMASST_CMD_disable:
        d.vm_assist &= ~(1 << vtype)
        return 0
    return -ENOSYS

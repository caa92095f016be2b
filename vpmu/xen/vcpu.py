"""vcpu_op (24), vm_assist (21), the vCPU timers and the runstate area.

Xen/Arm (xen/arch/arm/domain.c ``do_vcpu_op``) checks the vCPU id first (``-ENOENT``)
and accepts only ``register_vcpu_info`` (10) and ``register_runstate_memory_area`` (5);
everything else is ``-EINVAL``.  With ``extensions=True`` (the default, documented in
docs/xen.md) the frontend also answers the common-code commands x86 guests use:
``is_up`` (3), ``get_runstate_info`` (4), the periodic / single-shot timers (6-9,
delivering VIRQ_TIMER through ``env.set_timer``; a periodic timer does not run while its
vCPU is blocked, as in Xen: see :meth:`VcpuOps.on_sleep`) and ``register_runstate_phys_area``
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
    from .hypercall import XenFrontend

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


class VcpuOps:
    def __init__(self, fe: "XenFrontend", extensions: bool):
        self.fe = fe
        self.extensions = extensions
        self.vm_assist = 0

    # --- vcpu_op ------------------------------------------------------------------------
    def op(self, cmd: int, vcpuid: int, arg: int) -> int:
        fe = self.fe
        if vcpuid >= len(fe.vcpus):
            return -ENOENT
        if cmd not in ARM_CMDS and not (self.extensions and cmd in EXT_CMDS):
            return -EINVAL
        v = fe.vcpus[vcpuid]
        g = fe.guest
        current = vcpuid == fe.current_vcpu
        if cmd == A.VCPUOP_register_vcpu_info:
            return self._register_vcpu_info(v, arg)
        if cmd == A.VCPUOP_register_runstate_memory_area:
            raw = g.copy_from(arg, L.VCPU_REGISTER_RUNSTATE_AREA.size)
            if raw is None:
                return -EFAULT
            addr = L.VCPU_REGISTER_RUNSTATE_AREA.get(raw, "addr")
            v.runstate_va = addr or None           # a NULL handle unregisters
            if addr:
                # guest_handle_okay() is always true on Arm and the copy's result is ignored.
                g.copy_to(addr, self._runstate_bytes(v, include_current=not current))
            return 0
        if cmd == A.VCPUOP_is_up:
            return 1 if v.up else 0
        if cmd == A.VCPUOP_get_runstate_info:
            data = self._runstate_bytes(v, include_current=True)
            return 0 if g.copy_to(arg, data) else -EFAULT
        if cmd == A.VCPUOP_set_periodic_timer:
            raw = g.copy_from(arg, L.VCPU_SET_PERIODIC_TIMER.size)
            if raw is None:
                return -EFAULT
            period = s64(L.VCPU_SET_PERIODIC_TIMER.get(raw, "period_ns"))
            if period < MILLISECS or period > STIME_DELTA_MAX:
                return -EINVAL
            self.set_periodic(v, period)
            return 0
        if cmd == A.VCPUOP_stop_periodic_timer:
            self.set_periodic(v, 0)
            return 0
        if cmd == A.VCPUOP_set_singleshot_timer:
            if not current:
                return -EINVAL
            raw = g.copy_from(arg, L.VCPU_SET_SINGLESHOT_TIMER.size)
            if raw is None:
                return -EFAULT
            timeout = s64(L.VCPU_SET_SINGLESHOT_TIMER.get(raw, "timeout_abs_ns"))
            # VCPU_SSHOTTMR_future is ignored since Xen 4.18: a past deadline fires now.
            if timeout < fe.env.now_ns():
                self._stop_singleshot(v)
                fe.evtchn.send_vcpu_virq(v, A.VIRQ_TIMER)
            else:
                v.timers.singleshot_deadline = timeout
                fe.env.set_timer(timer_name("singleshot", v.id), timeout)
            return 0
        if cmd == A.VCPUOP_stop_singleshot_timer:
            if not current:
                return -EINVAL
            self._stop_singleshot(v)
            return 0
        if cmd == A.VCPUOP_register_runstate_phys_area:
            raw = g.copy_from(arg, 8)
            if raw is None:
                return -EFAULT
            gaddr = int.from_bytes(raw, "little")
            if gaddr == A.U64:                     # ~0: unmap
                v.runstate_pa = None
                return 0
            rc = self._check_guest_area(gaddr, _RS.size)
            if rc:
                return rc
            v.runstate_pa = gaddr
            if current:                            # runstate_area_populate()
                g.write_phys(gaddr, self._runstate_bytes(v, include_current=False))
            return 0
        return -EINVAL                             # not reached: filtered above

    def _check_guest_area(self, gaddr: int, size: int) -> int:
        """map_guest_area()'s checks: same page, xen_ulong_t aligned, writable RAM."""
        if gaddr >> A.PAGE_SHIFT != (gaddr + size - 1) >> A.PAGE_SHIFT:
            return -ENXIO
        if gaddr & 7:
            return -ENXIO
        if not self.fe.guest.is_ram(gaddr, size):
            return -EINVAL                         # check_get_page_from_gfn()
        return 0

    def _register_vcpu_info(self, v: "Vcpu", arg: int) -> int:
        fe = self.fe
        raw = fe.guest.copy_from(arg, L.VCPU_REGISTER_VCPU_INFO.size)
        if raw is None:
            return -EFAULT
        f = L.VCPU_REGISTER_VCPU_INFO.unpack(raw)
        gaddr = ((f["mfn"] << A.PAGE_SHIFT) + f["offset"]) & A.U64
        if gaddr == A.U64 or gaddr >> A.PAGE_SHIFT != f["mfn"]:
            return -EINVAL
        if v.vi_registered:
            return -EBUSY
        rc = self._check_guest_area(gaddr, L.VCPU_INFO.size)
        if rc:
            return rc
        # vcpu_info_populate(): copy the old vcpu_info, or zeros if it was the dummy.
        old = bytes(L.VCPU_INFO.size) if v.id != 0 else \
            v.vi_region.read(v.vi_off, L.VCPU_INFO.size)
        region = Region(fe.guest, L.VCPU_INFO.size)
        region.pa = gaddr
        region.write(0, old)
        v.vi_region, v.vi_off, v.vi_registered = region, 0, True
        # "Mark everything as being pending just to make sure nothing gets lost."
        region.write(L.VCPU_INFO.off("evtchn_pending_sel"), A.U64.to_bytes(8, "little"))
        fe.evtchn.mark_events_pending(v)
        return 0

    def _runstate_bytes(self, v: "Vcpu", include_current: bool) -> bytes:
        state, entry, times = v.runstate(self.fe.env.now_ns(), include_current)
        return _RS.pack({"state": state, "state_entry_time": entry, "time": times})

    # --- timers (xen/common/sched/core.c) ------------------------------------------------
    def set_periodic(self, v: "Vcpu", period: int) -> None:
        t = v.timers
        if t.periodic_period == period:
            return
        t.periodic_period = period
        if period == 0:
            self.fe.env.set_timer(timer_name("periodic", v.id), None)
            return
        now = self.fe.env.now_ns()
        t.periodic_last = now
        self.fe.env.set_timer(timer_name("periodic", v.id), now + period)

    def _stop_singleshot(self, v: "Vcpu") -> None:
        if v.timers.singleshot_deadline is not None:
            v.timers.singleshot_deadline = None
            self.fe.env.set_timer(timer_name("singleshot", v.id), None)

    def on_timer(self, kind: str, v: "Vcpu") -> None:
        fe = self.fe
        t = v.timers
        if kind == "singleshot" and t.singleshot_deadline is not None:
            t.singleshot_deadline = None
            fe.evtchn.send_vcpu_virq(v, A.VIRQ_TIMER)
        elif kind == "periodic" and t.periodic_period:
            self._periodic_work(v)

    def _periodic_work(self, v: "Vcpu") -> None:
        """vcpu_periodic_timer_work(): VIRQ_TIMER if a period has passed since the last one
        (the phase restarts from now), and the timer armed for the next."""
        fe = self.fe
        t = v.timers
        now = fe.env.now_ns()
        nxt = t.periodic_last + t.periodic_period
        if now >= nxt:
            fe.evtchn.send_vcpu_virq(v, A.VIRQ_TIMER)
            t.periodic_last = now
            nxt = now + t.periodic_period
        fe.env.set_timer(timer_name("periodic", v.id), nxt)

    def on_sleep(self, sleeping: bool) -> None:
        """The current vCPU blocks (WFI, SCHEDOP_block/poll) or is scheduled again.

        Xen stops a vCPU's periodic timer when it deschedules it and, when it schedules it
        again, sends VIRQ_TIMER at once if a period has passed (sched/core.c
        ``sched_context_switch``: ``stop_timer(&vprev->periodic_timer)``,
        ``vcpu_periodic_timer_work(vnext)``).  So a blocked vCPU is never woken by its
        periodic timer.  The other vCPUs never run here; their periodic timers keep running
        in Xen, firing on time: on resume they catch up in one step (the first missed tick
        sets VIRQ_TIMER pending, the others change only the phase, which stays on the
        period's grid)."""
        fe = self.fe
        for v in fe.vcpus:
            t = v.timers
            if not t.periodic_period:
                continue
            name = timer_name("periodic", v.id)
            if sleeping:
                fe.env.set_timer(name, None)
            elif v.id == fe.current_vcpu:
                self._periodic_work(v)
            else:
                now = fe.env.now_ns()
                if now >= t.periodic_last + t.periodic_period:
                    fe.evtchn.send_vcpu_virq(v, A.VIRQ_TIMER)
                    t.periodic_last += (now - t.periodic_last) // t.periodic_period * t.periodic_period
                fe.env.set_timer(name, t.periodic_last + t.periodic_period)

    def sleep_note(self) -> str:
        v = self.fe.vcpus[self.fe.current_vcpu]
        if v.timers.periodic_period:
            return (f"the Xen periodic timer of vCPU {v.id} does not run while the vCPU is blocked "
                    f"(Xen stops it when it deschedules the vCPU)")
        return ""

    # --- vm_assist -----------------------------------------------------------------------
    def do_vm_assist(self, cmd: int, vtype: int) -> int:
        if vtype >= 64 or not (A.ARM_VM_ASSIST_VALID >> vtype) & 1:
            return -EINVAL
        if cmd == A.VMASST_CMD_enable:
            self.vm_assist |= 1 << vtype
            return 0
        if cmd == A.VMASST_CMD_disable:
            self.vm_assist &= ~(1 << vtype)
            return 0
        return -ENOSYS

"""The Xen frontend: one object the machine builds when ``MachineConfig.xen`` is set.

It owns the emulated domain (id, privilege, vCPUs, shared_info, event channels, vPMU)
and answers ``HVC #0xEA1`` hypercalls with x16 = number and x0..x4 = arguments.  One
dispatcher per hypercall lives in its own module; this module is the composition root
and the interface to the machine (docs/xen.md "Machine interface"):

* :meth:`XenFrontend.hypercall` -- returns the signed value for x0;
* :meth:`XenFrontend.on_pmu_overflow` -- True when the frontend consumed the overflow
  (the machine must then not raise the PMU PPI);
* :meth:`XenFrontend.on_timer` -- a timer armed with ``env.set_timer`` expired;
* :meth:`XenFrontend.sync_upcall_line` -- re-sample the event-channel PPI level (call it
  when the guest EOIs / deactivates that PPI);
* flags the machine reads after a call: ``shutdown_reason``, ``unmask_irqs_on_return``,
  ``blocked``.

Nothing a guest passes raises: bad input becomes ``-errno`` in x0.
"""
from __future__ import annotations

from typing import Callable, Optional

from . import abi as A
from .core import Guest, Region, new_vcpu
from .env import GuestEnv, InterruptedContext
from .evtchn import EventChannels
from .grant import do_grant_table_op
from .hvm import callback_irq, do_hvm_op
from .memory import Physmap
from .pmu import PageRules, XenPmu
from .sched import do_console_io, do_sched_op
from .vcpu import VcpuOps, timer_name
from .version import VersionInfo, do_xen_version
from .xerrno import ENOSYS
from .xerrno import name as errno_name

try:
    from ..config import XEN_EVTCHN_PPI
except ImportError:                    # pragma: no cover - the package always has config
    XEN_EVTCHN_PPI = 31


# SCHEDOP_shutdown reason -> (exit status, RunResult.reason)
SHUTDOWN_EXIT = {
    A.SHUTDOWN_poweroff: (0, "system_off"),
    A.SHUTDOWN_reboot: (0, "reset"),
    A.SHUTDOWN_suspend: (0, "xen_suspend"),
    A.SHUTDOWN_crash: (1, "xen_crash"),
    A.SHUTDOWN_watchdog: (1, "xen_watchdog"),
    A.SHUTDOWN_soft_reset: (0, "xen_soft_reset"),
}


def _s32(x: int) -> int:
    x &= A.U32
    return x - (1 << 32) if x >> 31 else x


class XenFrontend:
    """A Xen hypervisor as seen by one guest domain (xen-pmu.md, docs/xen.md).

    ``domid`` 0 is the hardware + control domain (dom0): privileged ops work and its
    vCPUs never count as active vPMUs.  Any other id is an unprivileged domU.
    ``vpmu_mode`` is the boot mode: "off" (xenpmu_op answers -EOPNOTSUPP), "self",
    "hv" or "all".
    """

    def __init__(self, env: GuestEnv, domid: int = 0, vpmu_mode: str = "self",
                 nr_vcpus: int = 1, xen_version: tuple[int, int] = (4, 19), *,
                 evtchn_ppi: int = XEN_EVTCHN_PPI,
                 vcpu_op_extensions: bool = True,
                 max_evtchn_port: Optional[int] = None,
                 direct_mapped: Optional[bool] = None,
                 page_rules: Optional[PageRules] = None,
                 version_info: Optional[VersionInfo] = None,
                 max_grant_frames: int = 64,
                 on_shutdown: Optional[Callable[[int], None]] = None,
                 on_console: Optional[Callable[[bytes], None]] = None):
        if not 0 <= domid < A.DOMID_FIRST_RESERVED:
            raise ValueError("domid must be a real domain id (0 .. 0x7fef)")
        if nr_vcpus < 1:
            raise ValueError("nr_vcpus must be >= 1")
        self.env = env
        self.guest = Guest(env)
        self.domid = domid
        self.hardware_domain = domid == 0
        self.privileged = domid == 0           # control domain (default XSM)
        self.direct_mapped = self.hardware_domain if direct_mapped is None else direct_mapped
        self.evtchn_ppi = evtchn_ppi
        self.current_vcpu = 0
        self.version = version_info or VersionInfo()
        self.version.major, self.version.minor = xen_version
        self.on_shutdown = on_shutdown
        self.on_console = on_console
        self.shutdown_reason: Optional[int] = None
        self.shutdown_code: Optional[int] = None
        self.unmask_irqs_on_return = False
        self.watchdogs: dict[int, int] = {}
        self.hvm_params = {A.HVM_PARAM_CALLBACK_IRQ: callback_irq(evtchn_ppi)}
        self._notes: dict = {}

        self.shared = Region(self.guest, A.PAGE_SIZE)   # Xen's shared_info page
        self.pmu = XenPmu(self, vpmu_mode, page_rules or PageRules())
        now = env.now_ns()
        self.vcpus = []
        for vid in range(nr_vcpus):
            v = new_vcpu(self.guest, vid, up=(vid == 0), shared=self.shared, now=now)
            v.pmu.available, v.pmu.counted = self.pmu.vcpu_created(self.hardware_domain)
            self.vcpus.append(v)
        # xl's default max_event_channels is 1023 for a domU; dom0 gets the 2-level maximum.
        if max_evtchn_port is None:
            max_evtchn_port = 4095 if self.hardware_domain else 1023
        self.evtchn = EventChannels(self, max_evtchn_port)
        self.vcpu_ops = VcpuOps(self, vcpu_op_extensions)
        self.physmap = Physmap(self, max_grant_frames)

        self._table = {
            A.HYPERVISOR_xenpmu_op: lambda a: self.pmu.op(a[0] & A.U32, a[1]),
            A.HYPERVISOR_event_channel_op: lambda a: self.evtchn.op(_s32(a[0]), a[1]),
            A.HYPERVISOR_xen_version: lambda a: do_xen_version(self, _s32(a[0]), a[1]),
            A.HYPERVISOR_vcpu_op: lambda a: self.vcpu_ops.op(_s32(a[0]), a[1] & A.U32, a[2]),
            A.HYPERVISOR_vm_assist: lambda a: self.vcpu_ops.do_vm_assist(a[0] & A.U32,
                                                                        a[1] & A.U32),
            A.HYPERVISOR_memory_op: lambda a: self.physmap.op(a[0], a[1]),
            A.HYPERVISOR_hvm_op: lambda a: do_hvm_op(self, a[0], a[1]),
            A.HYPERVISOR_grant_table_op: lambda a: do_grant_table_op(self, a[0] & A.U32, a[1],
                                                                     a[2] & A.U32),
            A.HYPERVISOR_sched_op: lambda a: do_sched_op(self, _s32(a[0]), a[1]),
            A.HYPERVISOR_console_io: lambda a: do_console_io(self, a[0] & A.U32,
                                                             a[1] & A.U32, a[2]),
        }

    # --- the machine interface ----------------------------------------------------------
    def hypercall(self, nr: int, args: list[int]) -> int:
        """Execute hypercall ``nr`` (x16) with ``args`` (x0..x4); returns the value for x0."""
        a = [(int(x) & A.U64) for x in list(args)[:5]] + [0] * (5 - min(5, len(args)))
        self.unmask_irqs_on_return = False
        self._notes = {}
        self._enter()
        handler = self._table.get(nr)
        rc = handler(a) if handler is not None else -ENOSYS
        self._enter()
        self._trace_call(nr, a, rc)
        return rc

    def on_pmu_overflow(self, ctx: InterruptedContext) -> bool:
        """A counter with its interrupt enabled overflowed on the current vCPU.

        True: the frontend consumed it (sample taken, or dropped because a sample is
        pending / the interrupt is masked / the vPMU is not initialised) and the PMU PPI
        must not be raised.  False: the vCPU has no registered page, raise the PPI.
        """
        self._enter()
        return self.pmu.on_overflow(ctx)

    def on_timer(self, name: str) -> None:
        """A timer armed through ``env.set_timer(name, ...)`` expired."""
        self._enter()
        parts = name.split(":")
        if len(parts) != 3 or parts[0] != "xen" or not parts[2].isdigit():
            return
        kind, idx = parts[1], int(parts[2])
        if kind in ("periodic", "singleshot") and idx < len(self.vcpus):
            self.vcpu_ops.on_timer(kind, self.vcpus[idx])
        elif kind == "poll" and idx < len(self.vcpus):
            v = self.vcpus[idx]
            v.timers.poll_deadline = None
            v.blocked, v.poll_ports = False, None
        elif kind == "watchdog" and idx in self.watchdogs:
            del self.watchdogs[idx]
            self.domain_shutdown(A.SHUTDOWN_watchdog)

    def on_sleep(self, sleeping: bool) -> None:
        """The current vCPU starts waiting (WFI, SCHEDOP_block/poll: Xen deschedules it) or
        runs again: the periodic vCPU timers stop and catch up (``VcpuOps.on_sleep``)."""
        self.vcpu_ops.on_sleep(sleeping)

    def sleep_note(self) -> str:
        """Why a stopped timer cannot end the current wait ('' if none)."""
        return self.vcpu_ops.sleep_note()

    def sync_upcall_line(self) -> None:
        """Drive the event-channel PPI to ``vcpu_info.evtchn_upcall_pending`` of the current
        vCPU.  Call it when the guest EOIs or deactivates that PPI (before applying it)."""
        self.evtchn.sync_line(self.vcpus[self.current_vcpu])

    def upcall_level(self, vcpu: Optional[int] = None) -> bool:
        """The level the event-channel PPI of ``vcpu`` should have now (no side effects)."""
        return self.evtchn.upcall_pending(self.vcpus[self._vid(vcpu)])

    def pmu_irq_owned(self, vcpu: Optional[int] = None) -> bool:
        """True while the vCPU has a registered PMU page: overflows go to on_pmu_overflow
        and the PMU PPI must not be driven from PMOVSSET."""
        return self.vcpus[self._vid(vcpu)].pmu.page_pa is not None

    def pmu_irq_masked(self, vcpu: Optional[int] = None) -> bool:
        """The frontend's PMU interrupt mask (Xen's LVTPC): set after a sample until flush,
        and by the guest through l.irq_ctrl bit 16 + lvtpc_set.  Meaningful when owned."""
        return self.vcpus[self._vid(vcpu)].pmu.hw_masked

    def pmu_available(self, vcpu: Optional[int] = None) -> bool:
        """Whether the vCPU was given a vPMU at creation (xen-pmu.md 2.3).  Xen/Arm makes the
        PMU registers RAZ/WI for a vCPU without one; the machine may do the same."""
        return self.vcpus[self._vid(vcpu)].pmu.available

    @property
    def shutdown(self) -> Optional[tuple[int, str]]:
        """``(exit status, reason)`` once the guest shut down, else None -- what the machine
        turns into ``GuestExit`` (poweroff -> "system_off", reboot -> "reset" as PSCI)."""
        if self.shutdown_reason is None:
            return None
        return SHUTDOWN_EXIT.get(self.shutdown_reason,
                                 (1, f"xen_shutdown_{self.shutdown_reason}"))

    @property
    def blocked(self) -> bool:
        """The current vCPU waits in SCHEDOP_block / SCHEDOP_poll for an event."""
        return self.vcpus[self.current_vcpu].blocked

    def set_current_vcpu(self, vcpu: int) -> None:
        """The machine switched to running ``vcpu`` (env now talks to its redistributor):
        drive that vCPU's event-channel PPI to its current level."""
        self.current_vcpu = vcpu
        v = self.vcpus[vcpu]
        v.line = self.evtchn.upcall_pending(v)
        self.env.set_ppi_level(self.evtchn_ppi, v.line)

    def set_vcpu_up(self, vcpu: int, up: bool) -> None:
        """The machine brought a secondary vCPU up (PSCI CPU_ON) or down."""
        v = self.vcpus[vcpu]
        if v.up == up:
            return
        now = self.env.now_ns()
        state, entry, times = v.runstate(now, include_current=True)
        v.rs_time = times
        v.rs_entry = now
        v.up = up
        v.rs_state = A.RUNSTATE_running if up else A.RUNSTATE_offline

    # --- vPMU bookkeeping for tests and multi-domain setups -------------------------------
    @property
    def vpmu_mode(self) -> int:
        return self.pmu.mode

    @property
    def active_vpmus(self) -> int:
        return self.pmu.count

    def add_foreign_vcpu(self) -> int:
        """Create a vCPU of some other (unmodelled) domU now; returns a handle.  It takes a
        vPMU -- and counts as active -- iff the mode is SELF or HV at this moment."""
        return self.pmu.add_foreign_vcpu()

    def destroy_foreign_vcpu(self, handle: int) -> None:
        self.pmu.destroy_foreign_vcpu(handle)

    # --- helpers for the dispatchers ------------------------------------------------------
    def lookup_domain(self, domid: int) -> bool:
        """rcu_lock_domain_by_any_id(): only this domain exists for the frontend."""
        return domid in (A.DOMID_SELF, self.domid)

    def is_global_virq_handler(self) -> bool:
        # get_global_virq_handler(): no handler was set, so it is the hardware domain.
        return self.hardware_domain

    def domain_shutdown(self, reason: int) -> None:
        if self.shutdown_code is None:
            self.shutdown_code = reason
        reason = self.shutdown_code
        if self.shutdown_reason is None:
            self.shutdown_reason = reason
            self.note("shutdown", reason)
            if self.on_shutdown is not None:
                self.on_shutdown(reason)

    def set_poll_timer(self, v, deadline: int) -> None:
        v.timers.poll_deadline = deadline
        self.env.set_timer(timer_name("poll", v.id), deadline)

    def cancel_poll_timer(self, v) -> None:
        if v.timers.poll_deadline is not None:
            v.timers.poll_deadline = None
            self.env.set_timer(timer_name("poll", v.id), None)

    def console_write(self, data: bytes) -> None:
        if self.on_console is not None:
            self.on_console(bytes(data))

    def note(self, key: str, value) -> None:
        """Attach a detail to the trace record of the hypercall being executed."""
        self._notes[key] = value

    def trace(self, record: dict) -> None:
        self.env.trace(record)

    def _vid(self, vcpu: Optional[int]) -> int:
        return self.current_vcpu if vcpu is None else vcpu

    def _enter(self) -> None:
        # Every entry into "Xen" is a guest exit: re-evaluate the upcall line (NEW_VGIC).
        self.evtchn.sync_line(self.vcpus[self.current_vcpu])

    def _trace_call(self, nr: int, a: list[int], rc: int) -> None:
        name = A.HYPERCALL_NAMES.get(nr)
        op, op_name = _op_of(nr, a)
        rec = {"type": "hypercall", "nr": nr, "name": name, "op": op, "op_name": op_name,
               "args": list(a), "result": rc, "errno": errno_name(rc)}
        if self._notes:
            rec["detail"] = dict(self._notes)
        self.trace(rec)


def _op_of(nr: int, a: list[int]) -> tuple[Optional[int], Optional[str]]:
    if nr == A.HYPERVISOR_memory_op:
        op = a[0] & A.MEMOP_CMD_MASK
        return op, A.XENMEM_NAMES.get(op)
    if nr == A.HYPERVISOR_hvm_op:
        return a[0], A.HVMOP_NAMES.get(a[0])
    names = {A.HYPERVISOR_xenpmu_op: A.XENPMU_OP_NAMES,
             A.HYPERVISOR_event_channel_op: A.EVTCHNOP_NAMES,
             A.HYPERVISOR_xen_version: A.XENVER_NAMES,
             A.HYPERVISOR_vcpu_op: A.VCPUOP_NAMES,
             A.HYPERVISOR_sched_op: A.SCHEDOP_NAMES,
             A.HYPERVISOR_grant_table_op: A.GNTTABOP_NAMES,
             A.HYPERVISOR_console_io: {A.CONSOLEIO_write: "write", A.CONSOLEIO_read: "read"},
             A.HYPERVISOR_vm_assist: {A.VMASST_CMD_enable: "enable",
                                      A.VMASST_CMD_disable: "disable"}}.get(nr)
    if names is None:
        return None, None
    op = a[0] & A.U32
    if nr == A.HYPERVISOR_grant_table_op:
        op &= A.GNTTABOP_CMD_MASK
    return op, names.get(op)

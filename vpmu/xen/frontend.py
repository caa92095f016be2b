"""The Xen frontend: the one object the machine builds when ``MachineConfig.xen`` is set.

It holds the emulated :class:`~vpmu.xen.domain.Domain` and is the interface to the
machine (docs/xen.md "Machine interface"); every call is an entry into "Xen" that it
hands to the module that does the work:

* :meth:`XenFrontend.hypercall` -- ``HVC #0xEA1``: the hypercall table
  (:mod:`vpmu.xen.hypercall`) runs it; returns the signed value for x0;
* :meth:`XenFrontend.on_pmu_overflow` -- True when the frontend consumed the overflow
  (the machine must then not raise the PMU PPI);
* :meth:`XenFrontend.on_timer` -- a timer armed with ``env.set_timer`` expired;
* :meth:`XenFrontend.sync_upcall_line` -- re-sample the event-channel PPI level (call it
  when the guest EOIs / deactivates that PPI);
* flags the machine reads after a call: ``shutdown``, ``unmask_irqs_on_return``,
  ``blocked``.

Nothing a guest passes raises: bad input becomes ``-errno`` in x0.
"""
from __future__ import annotations

from typing import Callable, Optional

from ..config import XEN_EVTCHN_PPI
from . import abi as A
from .core import Vcpu
from .domain import Domain, domain_create
from .env import GuestEnv, InterruptedContext
from .hypercall import call_record, dispatch
from .pmu import PageRules
from .sched import watchdog_expired
from .vcpu import on_sleep, sleep_note, vcpu_set_up, vcpu_timer_expired
from .version import VersionInfo

# SCHEDOP_shutdown reason -> (exit status, RunResult.reason)
SHUTDOWN_EXIT = {
    A.SHUTDOWN_poweroff: (0, "system_off"),
    A.SHUTDOWN_reboot: (0, "reset"),
    A.SHUTDOWN_suspend: (0, "xen_suspend"),
    A.SHUTDOWN_crash: (1, "xen_crash"),
    A.SHUTDOWN_watchdog: (1, "xen_watchdog"),
    A.SHUTDOWN_soft_reset: (0, "xen_soft_reset"),
}


class XenFrontend:
    """A Xen hypervisor as seen by one guest domain (xen-pmu.md, docs/xen.md).

    ``domid`` 0 is the hardware + control domain (dom0): privileged ops work and its
    vCPUs never count as active vPMUs.  Any other id is an unprivileged domU.
    ``vpmu_mode`` is the boot mode: "off" (xenpmu_op answers -EOPNOTSUPP), "self",
    "hv" or "all".  The other arguments are :func:`~vpmu.xen.domain.domain_create`'s.
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
        self.env = env
        self.domain: Domain = domain_create(
            env, domid, vpmu_mode, nr_vcpus, xen_version, evtchn_ppi=evtchn_ppi,
            vcpu_op_extensions=vcpu_op_extensions, max_evtchn_port=max_evtchn_port,
            direct_mapped=direct_mapped, page_rules=page_rules, version_info=version_info,
            max_grant_frames=max_grant_frames, on_shutdown=on_shutdown, on_console=on_console)

    # --- the machine interface ----------------------------------------------------------
    def hypercall(self, nr: int, args: list[int]) -> int:
        """Execute hypercall ``nr`` (x16) with ``args`` (x0..x4); returns the value for x0."""
        d = self.domain
        a = [(int(x) & A.U64) for x in list(args)[:5]] + [0] * (5 - min(5, len(args)))
        d.unmask_irqs_on_return = False
        d.notes = {}
        self._enter()
        rc = dispatch(d, nr, a)
        self._enter()
        d.trace(call_record(nr, a, rc, d.notes))
        return rc

    def on_pmu_overflow(self, ctx: InterruptedContext) -> bool:
        """A counter with its interrupt enabled overflowed on the current vCPU.

        True: the frontend consumed it (sample taken, or dropped because a sample is
        pending / the interrupt is masked / the vPMU is not initialised) and the PMU PPI
        must not be raised.  False: the vCPU has no registered page, raise the PPI.
        """
        self._enter()
        return self.domain.vpmu.on_overflow(ctx)

    def on_timer(self, name: str) -> None:
        """A timer armed through ``env.set_timer(name, ...)`` expired."""
        self._enter()
        parts = name.split(":")
        if len(parts) != 3 or parts[0] != "xen" or not parts[2].isdigit():
            return
        kind, idx = parts[1], int(parts[2])
        if kind in ("periodic", "singleshot", "poll"):
            vcpu_timer_expired(self.domain, kind, idx)
        elif kind == "watchdog":
            watchdog_expired(self.domain, idx)

    def on_sleep(self, sleeping: bool) -> None:
        """The current vCPU starts waiting (WFI, SCHEDOP_block/poll: Xen deschedules it) or
        runs again: the periodic vCPU timers stop and catch up (``vcpu.on_sleep``)."""
        on_sleep(self.domain, sleeping)

    def sleep_note(self) -> str:
        """Why a stopped timer cannot end the current wait ('' if none)."""
        return sleep_note(self.domain)

    def sync_upcall_line(self) -> None:
        """Drive the event-channel PPI to ``vcpu_info.evtchn_upcall_pending`` of the current
        vCPU.  Call it when the guest EOIs or deactivates that PPI (before applying it)."""
        self.domain.evtchn.sync_line(self.domain.current)

    def upcall_level(self, vcpu: Optional[int] = None) -> bool:
        """The level the event-channel PPI of ``vcpu`` should have now (no side effects)."""
        return self.domain.evtchn.upcall_pending(self._vcpu(vcpu))

    def pmu_irq_owned(self, vcpu: Optional[int] = None) -> bool:
        """True while the vCPU has a registered PMU page: overflows go to on_pmu_overflow
        and the PMU PPI must not be driven from PMOVSSET."""
        return self._vcpu(vcpu).pmu.page_pa is not None

    def pmu_irq_masked(self, vcpu: Optional[int] = None) -> bool:
        """The frontend's PMU interrupt mask (Xen's LVTPC): set after a sample until flush,
        and by the guest through l.irq_ctrl bit 16 + lvtpc_set.  Meaningful when owned."""
        return self._vcpu(vcpu).pmu.hw_masked

    def pmu_available(self, vcpu: Optional[int] = None) -> bool:
        """Whether the vCPU was given a vPMU at creation (xen-pmu.md 2.3).  Xen/Arm makes the
        PMU registers RAZ/WI for a vCPU without one; the machine may do the same."""
        return self._vcpu(vcpu).pmu.available

    @property
    def shutdown(self) -> Optional[tuple[int, str]]:
        """``(exit status, reason)`` once the guest shut down, else None -- what the machine
        turns into ``GuestExit`` (poweroff -> "system_off", reboot -> "reset" as PSCI)."""
        reason = self.domain.shutdown_reason
        if reason is None:
            return None
        return SHUTDOWN_EXIT.get(reason, (1, f"xen_shutdown_{reason}"))

    @property
    def shutdown_reason(self) -> Optional[int]:
        """The raw ``SHUTDOWN_*`` code once the guest shut down, else None."""
        return self.domain.shutdown_reason

    @property
    def unmask_irqs_on_return(self) -> bool:
        """SCHEDOP_block asks the caller's PSTATE.I cleared when the HVC returns; the machine
        resets the flag once it did that."""
        return self.domain.unmask_irqs_on_return

    @unmask_irqs_on_return.setter
    def unmask_irqs_on_return(self, value: bool) -> None:
        self.domain.unmask_irqs_on_return = value

    @property
    def blocked(self) -> bool:
        """The current vCPU waits in SCHEDOP_block / SCHEDOP_poll for an event."""
        return self.domain.current.blocked

    def set_current_vcpu(self, vcpu: int) -> None:
        """The machine switched to running ``vcpu`` (env now talks to its redistributor):
        drive that vCPU's event-channel PPI to its current level."""
        d = self.domain
        d.current_vcpu = vcpu
        v = d.current
        v.line = d.evtchn.upcall_pending(v)
        self.env.set_ppi_level(d.evtchn_ppi, v.line)

    def set_vcpu_up(self, vcpu: int, up: bool) -> None:
        """The machine brought a secondary vCPU up (PSCI CPU_ON) or down."""
        vcpu_set_up(self.domain, self.domain.vcpus[vcpu], up)

    # --- vPMU bookkeeping for tests and multi-domain setups -------------------------------
    @property
    def vpmu_mode(self) -> int:
        return self.domain.vpmu.mode

    @property
    def active_vpmus(self) -> int:
        return self.domain.vpmu.count

    def add_foreign_vcpu(self) -> int:
        """Create a vCPU of some other (unmodelled) domU now; returns a handle.  It takes a
        vPMU -- and counts as active -- iff the mode is SELF or HV at this moment."""
        return self.domain.vpmu.add_foreign_vcpu()

    def destroy_foreign_vcpu(self, handle: int) -> None:
        self.domain.vpmu.destroy_foreign_vcpu(handle)

    # --- internals ----------------------------------------------------------------------
    def _vcpu(self, vcpu: Optional[int]) -> Vcpu:
        d = self.domain
        return d.current if vcpu is None else d.vcpus[vcpu]

    def _enter(self) -> None:
        # Every entry into "Xen" is a guest exit: re-evaluate the upcall line (NEW_VGIC).
        self.domain.evtchn.sync_line(self.domain.current)

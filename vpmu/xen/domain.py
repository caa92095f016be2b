"""The emulated domain: Xen's ``struct domain`` (xen/include/xen/sched.h) for the one guest.

Every hypercall handler receives the :class:`Domain` of its caller, as Xen's handlers
reach ``current->domain``: its id and privilege, its vCPUs (``Vcpu``, the calling one is
:attr:`Domain.current`), the ``shared_info`` page, the event-channel table, the grant
table, the vPMU state, the console sink, ``vm_assist``, the watchdog timers, the shutdown
state and the GuestEnv through which Xen reaches the guest's memory and the machine.

:func:`domain_create` builds it the way xen/common/domain.c ``domain_create()`` and
``vcpu_create()`` do: the domain's own state, then its event channels (``evtchn_init``),
grant table (``grant_table_init``) and vCPUs, each given a vPMU or not from the vPMU mode
in force at that moment (xen-pmu.md 2.3).

The frontend models a single domain, so what Xen keeps in globals -- the vPMU mode,
features and active count (``vpmu_mode``, ``vpmu_features``, ``vpmu_count``), the
version strings, the console -- hangs off the domain too (``vpmu``, ``version``,
``on_console``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import abi as A
from .core import Guest, Region, Vcpu, new_vcpu
from .env import GuestEnv
from .evtchn import EventChannels
from .grant import GrantTable
from .hvm import callback_irq
from .pmu import PageRules, XenPmu
from .version import VersionInfo

# xl's default max_event_channels is 1023 for a domU; dom0 gets the 2-level maximum.
MAX_EVTCHN_PORT_DOM0 = 4095
MAX_EVTCHN_PORT_DOMU = 1023


@dataclass(eq=False)
class Domain:
    """One Xen domain as its hypercalls see it (``struct domain``).

    ``domain_id`` 0 is the hardware + control domain (dom0): privileged ops work and its
    vCPUs never count as active vPMUs; any other id is an unprivileged domU.
    """
    domain_id: int
    env: GuestEnv                      # the machine: guest memory, PMU, timers, PPIs, trace
    guest: Guest                       # copy_{from,to}_guest over ``env``: faults are falsy
    is_hardware_domain: bool
    is_privileged: bool                # the control domain (default XSM: dom0)
    direct_mapped: bool                # only changes XENVER_get_features
    evtchn_ppi: int                    # the event-channel upcall PPI (INTID)
    vcpu_op_extensions: bool           # vcpu_op answers the common-code commands too
    version: VersionInfo               # what xen_version reports
    shared_info: Region                # Xen's shared_info page
    vpmu: XenPmu = field(init=False)   # the vPMU mode, features, active count and protocol
    evtchn: EventChannels = field(init=False)
    grant_table: GrantTable = field(init=False)
    vcpus: list[Vcpu] = field(default_factory=list)
    current_vcpu: int = 0              # the vCPU the machine runs (the caller of a hypercall)
    vm_assist: int = 0                 # VMASST_TYPE_* bits enabled
    hvm_params: dict[int, int] = field(default_factory=dict)
    watchdogs: dict[int, int] = field(default_factory=dict)   # timer index -> deadline (ns)
    shutdown_code: Optional[int] = None      # SCHEDOP_shutdown_code's reason, first wins
    shutdown_reason: Optional[int] = None    # set once the domain shut down
    unmask_irqs_on_return: bool = False      # SCHEDOP_block: clear the caller's PSTATE.I
    on_shutdown: Optional[Callable[[int], None]] = None
    on_console: Optional[Callable[[bytes], None]] = None
    notes: dict[str, Any] = field(default_factory=dict)   # details for the current call's record

    @property
    def current(self) -> Vcpu:
        """Xen's ``current``: the vCPU that is running (and making the hypercall)."""
        return self.vcpus[self.current_vcpu]

    def lookup_domain(self, domid: int) -> bool:
        """rcu_lock_domain_by_any_id(): only this domain exists for the frontend."""
        return domid in (A.DOMID_SELF, self.domain_id)

    def is_global_virq_handler(self) -> bool:
        """get_global_virq_handler(): no handler was set, so it is the hardware domain."""
        return self.is_hardware_domain

    def shutdown(self, reason: int) -> None:
        """domain_shutdown(): a SCHEDOP_shutdown_code reason given earlier takes precedence."""
        if self.shutdown_code is None:
            self.shutdown_code = reason
        reason = self.shutdown_code
        if self.shutdown_reason is None:
            self.shutdown_reason = reason
            self.note("shutdown", reason)
            if self.on_shutdown is not None:
                self.on_shutdown(reason)

    def console_write(self, data: bytes) -> None:
        if self.on_console is not None:
            self.on_console(bytes(data))

    def note(self, key: str, value: Any) -> None:
        """Attach a detail to the trace record of the hypercall being executed."""
        self.notes[key] = value

    def trace(self, record: dict) -> None:
        self.env.trace(record)


def domain_create(env: GuestEnv, domid: int = 0, vpmu_mode: str = "self", nr_vcpus: int = 1,
                  xen_version: tuple[int, int] = (4, 19), *,
                  evtchn_ppi: int,
                  vcpu_op_extensions: bool = True,
                  max_evtchn_port: Optional[int] = None,
                  direct_mapped: Optional[bool] = None,
                  page_rules: Optional[PageRules] = None,
                  version_info: Optional[VersionInfo] = None,
                  max_grant_frames: int = 64,
                  on_shutdown: Optional[Callable[[int], None]] = None,
                  on_console: Optional[Callable[[bytes], None]] = None) -> Domain:
    """domain_create() + vcpu_create() for each vCPU; vCPU 0 is up, the others are not."""
    if not 0 <= domid < A.DOMID_FIRST_RESERVED:
        raise ValueError("domid must be a real domain id (0 .. 0x7fef)")
    if nr_vcpus < 1:
        raise ValueError("nr_vcpus must be >= 1")
    guest = Guest(env)
    hardware_domain = domid == 0
    version = version_info or VersionInfo()
    version.major, version.minor = xen_version
    d = Domain(domain_id=domid, env=env, guest=guest,
               is_hardware_domain=hardware_domain, is_privileged=hardware_domain,
               direct_mapped=hardware_domain if direct_mapped is None else direct_mapped,
               evtchn_ppi=evtchn_ppi, vcpu_op_extensions=vcpu_op_extensions, version=version,
               shared_info=Region(guest, A.PAGE_SIZE),
               hvm_params={A.HVM_PARAM_CALLBACK_IRQ: callback_irq(evtchn_ppi)},
               on_shutdown=on_shutdown, on_console=on_console)
    d.vpmu = XenPmu(d, vpmu_mode, page_rules or PageRules())
    now = env.now_ns()
    for vid in range(nr_vcpus):
        v = new_vcpu(guest, vid, up=(vid == 0), shared=d.shared_info, now=now)
        v.pmu.available, v.pmu.counted = d.vpmu.vcpu_created(hardware_domain)
        d.vcpus.append(v)
    if max_evtchn_port is None:
        max_evtchn_port = MAX_EVTCHN_PORT_DOM0 if hardware_domain else MAX_EVTCHN_PORT_DOMU
    d.evtchn = EventChannels(d, max_evtchn_port)
    d.grant_table = GrantTable(max_grant_frames)
    return d

"""sched_op (29) and console_io (18) (xen/common/sched/core.c, drivers/char/console.c).

Shutdown is what lets the machine stop the run: ``SCHEDOP_shutdown`` (and an expired
``SCHEDOP_watchdog``) records the reason in ``XenFrontend.shutdown_reason`` and calls
the ``on_shutdown`` callback; for the hardware domain Xen would halt/restart the host,
for a domU the domain stops -- either way no guest instruction runs afterwards.

Blocking is not scheduled by the frontend: ``SCHEDOP_block`` and ``SCHEDOP_poll``
return at once (0), leave ``vcpu.blocked`` set until an event arrives, and the machine
may idle until then (``XenFrontend.blocked``).  ``SCHEDOP_block`` on Arm also unmasks
IRQs in the caller's PSTATE (``local_event_delivery_enable``): the frontend cannot
write guest registers, so it raises ``XenFrontend.unmask_irqs_on_return``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import abi as A
from . import layout as L
from .xerrno import EFAULT, EINVAL, ENOSPC, ENOSYS, EPERM, ESRCH

if TYPE_CHECKING:
    from .hypercall import XenFrontend

CONSOLE_CHUNK = 127            # sizeof(kbuf) - 1 in guest_console_write()
CONSOLE_PIECE = CONSOLE_CHUNK * 512    # what console_io reads at once (whole chunks)
SECONDS = 1_000_000_000


def do_sched_op(fe: "XenFrontend", cmd: int, arg: int) -> int:
    g = fe.guest
    v = fe.vcpus[fe.current_vcpu]
    if cmd == A.SCHEDOP_yield:
        return 0
    if cmd == A.SCHEDOP_block:
        fe.unmask_irqs_on_return = True
        v.blocked = not fe.evtchn.upcall_pending(v)
        return 0
    if cmd in (A.SCHEDOP_shutdown, A.SCHEDOP_shutdown_code):
        raw = g.copy_from(arg, L.SCHED_SHUTDOWN.size)
        if raw is None:
            return -EFAULT
        reason = L.SCHED_SHUTDOWN.get(raw, "reason") & 0xFF          # (u8) cast
        if cmd == A.SCHEDOP_shutdown:
            fe.domain_shutdown(reason)
        elif fe.shutdown_code is None:
            fe.shutdown_code = reason
        return 0
    if cmd == A.SCHEDOP_poll:
        raw = g.copy_from(arg, L.SCHED_POLL.size)
        if raw is None:
            return -EFAULT
        p = L.SCHED_POLL.unpack(raw)
        if p["nr_ports"] > A.SCHED_POLL_MAX_PORTS:
            return -EINVAL
        if fe.evtchn.upcall_pending(v):                # local_events_need_delivery()
            return 0
        ports = []
        for i in range(p["nr_ports"]):
            pr = g.copy_from(p["ports"] + 4 * i, 4)
            if pr is None:
                return -EFAULT
            port = int.from_bytes(pr, "little")
            if port >= 64 * 64:                        # d->max_evtchns
                return -EINVAL
            if fe.evtchn.is_pending(port):
                return 0
            ports.append(port)
        v.blocked = True
        v.poll_ports = tuple(ports)
        if p["timeout"]:
            fe.set_poll_timer(v, p["timeout"])
        return 0
    if cmd == A.SCHEDOP_remote_shutdown:
        raw = g.copy_from(arg, L.SCHED_REMOTE_SHUTDOWN.size)
        if raw is None:
            return -EFAULT
        r = L.SCHED_REMOTE_SHUTDOWN.unpack(raw)
        if r["domain_id"] != fe.domid:                 # rcu_lock_domain_by_id(): no DOMID_SELF
            return -ESRCH
        if fe.privileged:                              # xsm_schedop_shutdown: XSM_DM_PRIV
            fe.domain_shutdown(r["reason"] & 0xFF)
        return 0                                       # Xen returns 0 even when XSM refused
    if cmd == A.SCHEDOP_watchdog:
        raw = g.copy_from(arg, L.SCHED_WATCHDOG.size)
        if raw is None:
            return -EFAULT
        w = L.SCHED_WATCHDOG.unpack(raw)
        return _watchdog(fe, w["id"], w["timeout"])
    if cmd == A.SCHEDOP_pin_override:
        if not fe.hardware_domain:
            return -EPERM
        raw = g.copy_from(arg, L.SCHED_PIN_OVERRIDE.size)
        if raw is None:
            return -EFAULT
        pcpu = int.from_bytes(raw, "little", signed=True)
        # One physical CPU: clearing (pcpu < 0) or pinning to CPU 0 succeed.
        return 0 if pcpu <= 0 else -EINVAL
    return -ENOSYS


def _watchdog(fe: "XenFrontend", wid: int, timeout: int) -> int:
    """domain_watchdog(): id 0 allocates one of two timers and returns its id (1-based)."""
    now = fe.env.now_ns()
    if wid == 0:
        for i in range(A.NR_DOMAIN_WATCHDOG_TIMERS):
            if i not in fe.watchdogs:
                fe.watchdogs[i] = now + timeout * SECONDS
                fe.env.set_timer(f"xen:watchdog:{i}", fe.watchdogs[i])
                return i + 1
        return -ENOSPC
    i = wid - 1
    if i >= A.NR_DOMAIN_WATCHDOG_TIMERS or i not in fe.watchdogs:
        return -EINVAL
    if timeout == 0:
        del fe.watchdogs[i]
        fe.env.set_timer(f"xen:watchdog:{i}", None)
    else:
        fe.watchdogs[i] = now + timeout * SECONDS
        fe.env.set_timer(f"xen:watchdog:{i}", fe.watchdogs[i])
    return 0


def do_console_io(fe: "XenFrontend", cmd: int, count: int, buf: int) -> int:
    # xsm_console_io(): only a privileged (or console) domain, release builds.
    if not fe.privileged:
        return -EPERM
    if cmd == A.CONSOLEIO_write:
        # guest_console_write() copies CONSOLE_CHUNK bytes at a time and fails at the first
        # chunk it cannot copy, the earlier ones written.  The same outcome, read in larger
        # pieces (count can be 4 GiB, which the MMU can map onto one page): a piece that
        # faults is retried chunk by chunk.  The machine bounds the total (--max-output).
        while count > 0:
            n = min(count, CONSOLE_PIECE)
            data = fe.guest.copy_from(buf, n)
            if data is not None:
                fe.console_write(data)
            else:
                for off in range(0, n, CONSOLE_CHUNK):
                    chunk = fe.guest.copy_from(buf + off, min(n - off, CONSOLE_CHUNK))
                    if chunk is None:
                        return -EFAULT
                    fe.console_write(chunk)
            buf += n
            count -= n
        return 0
    if cmd == A.CONSOLEIO_read:
        return 0                                       # no serial input in the emulator
    return -ENOSYS

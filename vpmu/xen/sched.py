"""sched_op (29) and console_io (18) (xen/common/sched/core.c, drivers/char/console.c).

Shutdown is what lets the machine stop the run: ``SCHEDOP_shutdown`` (and an expired
``SCHEDOP_watchdog``) records the reason in ``Domain.shutdown_reason`` and calls
the ``on_shutdown`` callback; for the hardware domain Xen would halt/restart the host,
for a domU the domain stops -- either way no guest instruction runs afterwards.

Blocking is not scheduled by the frontend: ``SCHEDOP_block`` and ``SCHEDOP_poll``
return at once (0), leave ``vcpu.blocked`` set until an event arrives, and the machine
may idle until then (``XenFrontend.blocked``).  ``SCHEDOP_block`` on Arm also unmasks
IRQs in the caller's PSTATE (``local_event_delivery_enable``): the frontend cannot
write guest registers, so it sets ``Domain.unmask_irqs_on_return`` (the machine reads it as
``XenFrontend.unmask_irqs_on_return``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import abi as A
from . import layout as L
from .vcpu import set_poll_timer
from .xerrno import EFAULT, EINVAL, ENOSPC, ENOSYS, EPERM, ESRCH

if TYPE_CHECKING:
    from .domain import Domain

CONSOLE_CHUNK = 127            # sizeof(kbuf) - 1 in guest_console_write()
CONSOLE_PIECE = CONSOLE_CHUNK * 512    # what console_io reads at once (whole chunks)
SECONDS = 1_000_000_000


def do_sched_op(d: "Domain", cmd: int, arg: int) -> int:
    g = d.guest
    v = d.current
    if cmd == A.SCHEDOP_yield:
        return 0
    if cmd == A.SCHEDOP_block:
        d.unmask_irqs_on_return = True
        v.blocked = not d.evtchn.upcall_pending(v)
        return 0
    if cmd in (A.SCHEDOP_shutdown, A.SCHEDOP_shutdown_code):
        raw = g.copy_from(arg, L.SCHED_SHUTDOWN.size)
        if raw is None:
            return -EFAULT
        reason = L.SCHED_SHUTDOWN.get(raw, "reason") & 0xFF          # (u8) cast
        if cmd == A.SCHEDOP_shutdown:
            d.shutdown(reason)
        elif d.shutdown_code is None:
            d.shutdown_code = reason
        return 0
    if cmd == A.SCHEDOP_poll:
        raw = g.copy_from(arg, L.SCHED_POLL.size)
        if raw is None:
            return -EFAULT
        p = L.SCHED_POLL.unpack(raw)
        if p["nr_ports"] > A.SCHED_POLL_MAX_PORTS:
            return -EINVAL
        if d.evtchn.upcall_pending(v):                # local_events_need_delivery()
            return 0
        ports = []
        for i in range(p["nr_ports"]):
            pr = g.copy_from(p["ports"] + 4 * i, 4)
            if pr is None:
                return -EFAULT
            port = int.from_bytes(pr, "little")
            if port >= 64 * 64:                        # d->max_evtchns
                return -EINVAL
            if d.evtchn.is_pending(port):
                return 0
            ports.append(port)
        v.blocked = True
        v.poll_ports = tuple(ports)
        if p["timeout"]:
            set_poll_timer(d, v, p["timeout"])
        return 0
    if cmd == A.SCHEDOP_remote_shutdown:
        raw = g.copy_from(arg, L.SCHED_REMOTE_SHUTDOWN.size)
        if raw is None:
            return -EFAULT
        r = L.SCHED_REMOTE_SHUTDOWN.unpack(raw)
        if r["domain_id"] != d.domain_id:            # rcu_lock_domain_by_id(): no DOMID_SELF
            return -ESRCH
        if d.is_privileged:                          # xsm_schedop_shutdown: XSM_DM_PRIV
            d.shutdown(r["reason"] & 0xFF)
        return 0                                       # Xen returns 0 even when XSM refused
    if cmd == A.SCHEDOP_watchdog:
        raw = g.copy_from(arg, L.SCHED_WATCHDOG.size)
        if raw is None:
            return -EFAULT
        w = L.SCHED_WATCHDOG.unpack(raw)
        return _watchdog(d, w["id"], w["timeout"])
    if cmd == A.SCHEDOP_pin_override:
        if not d.is_hardware_domain:
            return -EPERM
        raw = g.copy_from(arg, L.SCHED_PIN_OVERRIDE.size)
        if raw is None:
            return -EFAULT
        pcpu = int.from_bytes(raw, "little", signed=True)
        # One physical CPU: clearing (pcpu < 0) or pinning to CPU 0 succeed.
        return 0 if pcpu <= 0 else -EINVAL
    return -ENOSYS


def _watchdog(d: "Domain", wid: int, timeout: int) -> int:
    """domain_watchdog(): id 0 allocates one of two timers and returns its id (1-based)."""
    now = d.env.now_ns()
    if wid == 0:
        for i in range(A.NR_DOMAIN_WATCHDOG_TIMERS):
            if i not in d.watchdogs:
                d.watchdogs[i] = now + timeout * SECONDS
                d.env.set_timer(f"xen:watchdog:{i}", d.watchdogs[i])
                return i + 1
        return -ENOSPC
    i = wid - 1
    if i >= A.NR_DOMAIN_WATCHDOG_TIMERS or i not in d.watchdogs:
        return -EINVAL
    if timeout == 0:
        del d.watchdogs[i]
        d.env.set_timer(f"xen:watchdog:{i}", None)
    else:
        d.watchdogs[i] = now + timeout * SECONDS
        d.env.set_timer(f"xen:watchdog:{i}", d.watchdogs[i])
    return 0


def watchdog_expired(d: "Domain", idx: int) -> None:
    """The watchdog timer ``xen:watchdog:<idx>`` expired: domain_watchdog_timeout()."""
    if idx in d.watchdogs:
        del d.watchdogs[idx]
        d.shutdown(A.SHUTDOWN_watchdog)


def do_console_io(d: "Domain", cmd: int, count: int, buf: int) -> int:
    # xsm_console_io(): only a privileged (or console) domain, release builds.
    if not d.is_privileged:
        return -EPERM
    if cmd == A.CONSOLEIO_write:
        # guest_console_write() copies CONSOLE_CHUNK bytes at a time and fails at the first
        # chunk it cannot copy, the earlier ones written.  The same outcome, read in larger
        # pieces (count can be 4 GiB, which the MMU can map onto one page): a piece that
        # faults is retried chunk by chunk.  The machine bounds the total (--max-output).
        while count > 0:
            n = min(count, CONSOLE_PIECE)
            data = d.guest.copy_from(buf, n)
            if data is not None:
                d.console_write(data)
            else:
                for off in range(0, n, CONSOLE_CHUNK):
                    chunk = d.guest.copy_from(buf + off, min(n - off, CONSOLE_CHUNK))
                    if chunk is None:
                        return -EFAULT
                    d.console_write(chunk)
            buf += n
            count -= n
        return 0
    if cmd == A.CONSOLEIO_read:
        return 0                                       # no serial input in the emulator
    return -ENOSYS

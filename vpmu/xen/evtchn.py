"""Event channels, 2-level ABI: event_channel_op (32) and delivery to the guest.

Follows xen/common/event_channel.c and event_2l.c (Xen 4.19+/4.23-unstable):

* ports are allocated lowest-free-first from 1 (port 0 is ECS_RESERVED); the port
  table grows in buckets of 64 (EVTCHNS_PER_BUCKET on arm64), and a port is *valid*
  only once its bucket exists, so e.g. ``status`` of a never-allocated port 100 is
  ``-EINVAL`` while a free port 5 reports "closed" (Xen's ``port_is_valid``);
* the pending/mask bitmaps live in ``shared_info`` and ``evtchn_pending_sel`` /
  ``evtchn_upcall_pending`` in the vCPU's ``vcpu_info``, i.e. in guest RAM once mapped,
  so the guest sees Xen's writes exactly as on real Xen;
* the only domain is the guest itself (as on a dom0less system with one domain):
  other domain ids answer ``-ESRCH``; interdomain channels work in loopback
  (``alloc_unbound`` with remote DOMID_SELF, then ``bind_interdomain`` to it);
* no physical IRQs are routed to Arm guests (``nr_pirqs`` is 0): ``bind_pirq`` is
  ``-EINVAL``; the FIFO ABI is not built (CONFIG_EVTCHN_FIFO=n): ``init_control`` and
  ``expand_array`` answer ``-EOPNOTSUPP``, ``set_priority`` ``-ENOSYS`` (Linux then
  uses the 2-level ABI).

Upcall line (documented choice, docs/xen.md "Upcall interrupt"): the event-channel PPI
is driven as a *level* equal to ``vcpu_info.evtchn_upcall_pending`` -- Xen's
CONFIG_NEW_VGIC model (``vcpu_update_evtchn_irq``).  It rises when Xen sets the flag
(0 -> 1, ``vcpu_mark_events_pending``) and is re-sampled at every entry into the
frontend and whenever the machine calls ``sync_upcall_line()`` (it must, when the
guest EOIs/deactivates the PPI), so a guest that clears the flag and EOIs sees exactly
one interrupt per notification.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Optional

from . import abi as A
from . import layout as L
from .vcpu import stop_poll_timer
from .xerrno import EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, ENOSYS, EOPNOTSUPP, ESRCH

if TYPE_CHECKING:
    from .core import Vcpu
    from .domain import Domain

# Channel states (xen/include/xen/sched.h ECS_*)
ECS_FREE, ECS_RESERVED, ECS_UNBOUND, ECS_INTERDOMAIN, ECS_PIRQ, ECS_VIRQ, ECS_IPI = range(7)

EVTCHNS_PER_BUCKET = 64          # PAGE_SIZE / sizeof(struct evtchn) (64-byte aligned) on arm64
MAX_EVTCHNS_2L = 64 * 64         # BITS_PER_EVTCHN_WORD ** 2 on arm64
NR_PIRQS_ARM = 0                 # CONFIG_HAS_PIRQ is x86-only

VIRQ_VCPU, VIRQ_DOMAIN, VIRQ_GLOBAL = "vcpu", "domain", "global"

OFF_PENDING = L.SHARED_INFO.off("evtchn_pending")
OFF_MASK = L.SHARED_INFO.off("evtchn_mask")
OFF_UPCALL_PENDING = L.VCPU_INFO.off("evtchn_upcall_pending")
OFF_PENDING_SEL = L.VCPU_INFO.off("evtchn_pending_sel")


def virq_type(virq: int) -> str:
    """get_virq_type(): per-vCPU "V", per-domain "D" or global "G" (public/xen.h)."""
    if virq in (A.VIRQ_TIMER, A.VIRQ_DEBUG, A.VIRQ_XENOPROF, A.VIRQ_XENPMU):
        return VIRQ_VCPU
    if virq == A.VIRQ_ARGO:
        return VIRQ_DOMAIN
    return VIRQ_GLOBAL           # including VIRQ_ARCH_0..7: arch_get_virq_type() on Arm


@dataclass
class Chan:
    state: int
    notify_vcpu: int = 0
    virq: int = 0
    remote_domid: int = 0        # ECS_UNBOUND: who may bind; ECS_INTERDOMAIN: peer domain
    remote_port: int = 0         # ECS_INTERDOMAIN


class EventChannels:
    """The domain's event channels (``d->evtchn``, ``d->valid_evtchns``, ``d->max_evtchn_port``)
    and their 2-level delivery into its shared_info and vcpu_info."""

    def __init__(self, d: "Domain", max_evtchn_port: int):
        self.d = d
        self.max_evtchn_port = max_evtchn_port
        self.valid = EVTCHNS_PER_BUCKET           # bucket 0 exists from evtchn_init()
        self.chans: dict[int, Chan] = {0: Chan(ECS_RESERVED)}

    # --- port table -------------------------------------------------------------------
    def port_is_valid(self, port: int) -> bool:
        return 0 <= port < self.valid

    def chan(self, port: int) -> Chan:
        """evtchn_from_port(): a port without a channel reads as a free one (vCPU 0)."""
        c = self.chans.get(port)
        return c if c is not None else Chan(ECS_FREE)

    def state(self, port: int) -> int:
        return self.chan(port).state

    def get_free_port(self) -> int:
        for port in range(0, self.max_evtchn_port + 1):
            if port >= MAX_EVTCHNS_2L:
                return -ENOSPC
            if port < self.valid:
                if self.state(port) != ECS_FREE:
                    continue                          # -EBUSY: try the next one
                return port
            self.valid += EVTCHNS_PER_BUCKET          # allocate the next bucket
            return port
        return -ENOSPC

    def free(self, port: int) -> None:
        # evtchn_free(): clear the pending bit (not the mask), back to ECS_FREE / vCPU0.
        self.d.shared_info.set_bit(OFF_PENDING, port, False)
        self.chans.pop(port, None)

    # --- delivery (event_2l.c + arch/arm/domain.c) ------------------------------------
    def set_pending(self, vid: int, port: int) -> None:
        """evtchn_2l_set_pending()."""
        sh = self.d.shared_info
        if sh.set_bit(OFF_PENDING, port, True):
            return                                    # edge already recorded
        v = self.d.vcpus[vid]
        if not sh.get_bit(OFF_MASK, port) and \
                not v.vi_region.set_bit(v.vi_off + OFF_PENDING_SEL, port // 64, True):
            self.mark_events_pending(v, port)
        self.check_pollers(port)

    def mark_events_pending(self, v: "Vcpu", port: Optional[int] = None) -> None:
        """vcpu_mark_events_pending(): set evtchn_upcall_pending; inject on 0 -> 1."""
        if v.vi_region.set_bit(v.vi_off + OFF_UPCALL_PENDING, 0, True):
            return
        self.drive_line(v, True, port)
        v.blocked = False                             # the injection kicks the vCPU
        v.poll_ports = None

    def upcall_pending(self, v: "Vcpu") -> bool:
        return v.vi_region.read(v.vi_off + OFF_UPCALL_PENDING, 1)[0] != 0

    def drive_line(self, v: "Vcpu", level: bool, port: Optional[int] = None) -> None:
        if v.line == level:
            return
        v.line = level
        d = self.d
        if v.id == d.current_vcpu:
            d.env.set_ppi_level(d.evtchn_ppi, level)
        c = self.chans.get(port) if port is not None else None
        virq = c.virq if c is not None and c.state == ECS_VIRQ else None
        d.trace({"type": "xen_upcall", "vcpu": v.id, "intid": d.evtchn_ppi,
                  "level": level, "port": port, "virq": virq})

    def sync_line(self, v: "Vcpu") -> None:
        """vcpu_update_evtchn_irq(): the line follows evtchn_upcall_pending."""
        self.drive_line(v, self.upcall_pending(v))

    def check_pollers(self, port: int) -> None:
        for v in self.d.vcpus:
            if v.blocked and v.poll_ports is not None and \
                    (len(v.poll_ports) != 1 or v.poll_ports[0] == port):
                v.blocked = False
                v.poll_ports = None
                stop_poll_timer(self.d, v)

    def unmask(self, port: int) -> None:
        """evtchn_2l_unmask()."""
        sh = self.d.shared_info
        v = self.d.vcpus[self.chan(port).notify_vcpu]
        if sh.set_bit(OFF_MASK, port, False) and sh.get_bit(OFF_PENDING, port) and \
                not v.vi_region.set_bit(v.vi_off + OFF_PENDING_SEL, port // 64, True):
            self.mark_events_pending(v, port)

    def send_vcpu_virq(self, v: "Vcpu", virq: int) -> Optional[int]:
        """send_guest_vcpu_virq(): returns the port, or None if the VIRQ is unbound."""
        port = v.virq_to_port[virq]
        if port == 0:
            return None                               # silently lost
        self.set_pending(v.id, port)
        return port

    def is_pending(self, port: int) -> bool:
        return 0 <= port < MAX_EVTCHNS_2L and self.d.shared_info.get_bit(OFF_PENDING, port)

    # --- EVTCHNOP_* ---------------------------------------------------------------------
    def op(self, cmd: int, arg: int) -> int:
        """do_event_channel_op(): copy-in (-EFAULT), the command, copy-out (-EFAULT)."""
        g = self.d.guest
        handler = self._OPS.get(cmd)
        if handler is None:
            return -ENOSYS
        struct, method, copy_back = handler
        raw = g.copy_from(arg, struct.size)
        if raw is None:
            return -EFAULT
        buf = bytearray(raw)
        rc = method(self, struct, buf)
        if rc == 0 and copy_back and not g.copy_to(arg, bytes(buf)):
            rc = -EFAULT                              # "Cleaning up here would be a mess!"
        return rc

    def _alloc_unbound(self, s: L.Struct, buf: bytearray) -> int:
        f = s.unpack(buf)
        if not self.d.lookup_domain(f["dom"]):
            return -ESRCH
        port = self.get_free_port()
        if port < 0:
            return port
        remote = self.d.domain_id if f["remote_dom"] == A.DOMID_SELF else f["remote_dom"]
        self.chans[port] = Chan(ECS_UNBOUND, remote_domid=remote)
        s.put(buf, "port", port)
        return 0

    def _bind_interdomain(self, s: L.Struct, buf: bytearray) -> int:
        f = s.unpack(buf)
        if not self.d.lookup_domain(f["remote_dom"]):
            return -ESRCH
        lport = self.get_free_port()
        if lport < 0:
            return lport
        rport = f["remote_port"]
        if not self.port_is_valid(rport):
            return -EINVAL
        rchn = self.chans.get(rport)
        if rchn is None or rchn.state != ECS_UNBOUND or rchn.remote_domid != self.d.domain_id:
            return -EINVAL
        self.chans[lport] = Chan(ECS_INTERDOMAIN, remote_domid=self.d.domain_id, remote_port=rport)
        rchn.state = ECS_INTERDOMAIN
        rchn.remote_domid = self.d.domain_id
        rchn.remote_port = lport
        # "We may have lost notifications on the remote unbound port": always notify.
        self.set_pending(0, lport)
        s.put(buf, "local_port", lport)
        return 0

    def _bind_virq(self, s: L.Struct, buf: bytearray) -> int:
        f = s.unpack(buf)
        virq, vcpu = f["virq"], f["vcpu"]
        if virq >= A.NR_VIRQS:
            return -EINVAL
        vtype = virq_type(virq)
        if vtype != VIRQ_VCPU and vcpu != 0:
            return -EINVAL
        if vcpu >= len(self.d.vcpus):
            return -ENOENT
        if vtype == VIRQ_GLOBAL and not self.d.is_global_virq_handler():
            return -EBUSY
        v = self.d.vcpus[vcpu]
        if v.virq_to_port[virq] != 0:
            return -EEXIST
        port = self.get_free_port()
        if port < 0:
            return port
        self.chans[port] = Chan(ECS_VIRQ, notify_vcpu=vcpu, virq=virq)
        v.virq_to_port[virq] = port
        s.put(buf, "port", port)
        return 0

    def _bind_pirq(self, s: L.Struct, buf: bytearray) -> int:
        # "pirq < 0 || pirq >= d->nr_pirqs" is always true on Arm (nr_pirqs == 0).
        return -EINVAL

    def close(self, port: int) -> int:
        """evtchn_close(d, port, guest=true)."""
        if not self.port_is_valid(port):
            return -EINVAL
        c = self.chans.get(port)
        if c is None or c.state == ECS_RESERVED:
            return -EINVAL
        if c.state == ECS_VIRQ:
            owner = 0 if virq_type(c.virq) != VIRQ_VCPU else c.notify_vcpu
            v = self.d.vcpus[owner]
            if v.virq_to_port[c.virq] == port:
                v.virq_to_port[c.virq] = 0
        elif c.state == ECS_INTERDOMAIN:
            peer = self.chans.get(c.remote_port)
            if peer is not None and peer.state == ECS_INTERDOMAIN:
                peer.state = ECS_UNBOUND
                peer.remote_domid = self.d.domain_id
                peer.remote_port = 0
        self.free(port)
        return 0

    def _close(self, s: L.Struct, buf: bytearray) -> int:
        return self.close(s.get(buf, "port"))

    def _send(self, s: L.Struct, buf: bytearray) -> int:
        port = s.get(buf, "port")
        if not self.port_is_valid(port):
            return -EINVAL
        c = self.chan(port)
        state = c.state
        if state == ECS_INTERDOMAIN:
            self.set_pending(self.chan(c.remote_port).notify_vcpu, c.remote_port)
            return 0
        if state == ECS_IPI:
            self.set_pending(c.notify_vcpu, port)
            return 0
        if state == ECS_UNBOUND:
            return 0                                  # silently drop the notification
        return -EINVAL                                # free, reserved, VIRQ, PIRQ

    def _status(self, s: L.Struct, buf: bytearray) -> int:
        f = s.unpack(buf)
        if not self.d.lookup_domain(f["dom"]):
            return -ESRCH
        port = f["port"]
        if not self.port_is_valid(port):
            return -EINVAL
        c = self.chan(port)
        state = c.state
        if state in (ECS_FREE, ECS_RESERVED):
            s.put(buf, "status", A.EVTCHNSTAT_closed)
        elif state == ECS_UNBOUND:
            s.put(buf, "status", A.EVTCHNSTAT_unbound)
            s.put(buf, "u.dom", c.remote_domid)
        elif state == ECS_INTERDOMAIN:
            s.put(buf, "status", A.EVTCHNSTAT_interdomain)
            s.put(buf, "u.dom", c.remote_domid)
            s.put(buf, "u.port", c.remote_port)
        elif state == ECS_VIRQ:
            s.put(buf, "status", A.EVTCHNSTAT_virq)
            buf[L.EVTCHN_STATUS_U32:L.EVTCHN_STATUS_U32 + 4] = c.virq.to_bytes(4, "little")
        elif state == ECS_IPI:
            s.put(buf, "status", A.EVTCHNSTAT_ipi)
        s.put(buf, "vcpu", c.notify_vcpu)
        return 0

    def _bind_ipi(self, s: L.Struct, buf: bytearray) -> int:
        vcpu = s.get(buf, "vcpu")
        if vcpu >= len(self.d.vcpus):
            return -ENOENT
        port = self.get_free_port()
        if port < 0:
            return port
        self.chans[port] = Chan(ECS_IPI, notify_vcpu=vcpu)
        s.put(buf, "port", port)
        return 0

    def _bind_vcpu(self, s: L.Struct, buf: bytearray) -> int:
        port, vcpu = s.get(buf, "port"), s.get(buf, "vcpu")
        if vcpu >= len(self.d.vcpus):
            return -ENOENT
        if not self.port_is_valid(port):
            return -EINVAL
        c = self.chan(port)
        state = c.state
        if state == ECS_VIRQ and virq_type(c.virq) != VIRQ_VCPU:
            c.notify_vcpu = vcpu
            return 0
        if state in (ECS_UNBOUND, ECS_INTERDOMAIN):
            c.notify_vcpu = vcpu
            return 0
        return -EINVAL

    def _unmask(self, s: L.Struct, buf: bytearray) -> int:
        port = s.get(buf, "port")
        if not self.port_is_valid(port):
            return -EINVAL
        self.unmask(port)
        return 0

    def _reset(self, s: L.Struct, buf: bytearray) -> int:
        if not self.d.lookup_domain(s.get(buf, "dom")):
            return -ESRCH
        for port in range(self.valid):
            self.close(port)                          # errors (port 0, free ports) ignored
        return 0

    def _init_control(self, s: L.Struct, buf: bytearray) -> int:
        return -EOPNOTSUPP                            # CONFIG_EVTCHN_FIFO=n

    def _expand_array(self, s: L.Struct, buf: bytearray) -> int:
        return -EOPNOTSUPP

    def _set_priority(self, s: L.Struct, buf: bytearray) -> int:
        if not self.port_is_valid(s.get(buf, "port")):
            return -EINVAL
        return -ENOSYS                                # 2-level ops have no set_priority

    # EVTCHNOP_* -> (argument struct, handler, copy the struct back on success)
    _OPS: ClassVar[dict[int, tuple[L.Struct, Callable[[EventChannels, L.Struct, bytearray], int],
                                   bool]]] = {
        A.EVTCHNOP_alloc_unbound: (L.EVTCHN_ALLOC_UNBOUND, _alloc_unbound, True),
        A.EVTCHNOP_bind_interdomain: (L.EVTCHN_BIND_INTERDOMAIN, _bind_interdomain, True),
        A.EVTCHNOP_bind_virq: (L.EVTCHN_BIND_VIRQ, _bind_virq, True),
        A.EVTCHNOP_bind_ipi: (L.EVTCHN_BIND_IPI, _bind_ipi, True),
        A.EVTCHNOP_bind_pirq: (L.EVTCHN_BIND_PIRQ, _bind_pirq, True),
        A.EVTCHNOP_close: (L.EVTCHN_PORT, _close, False),
        A.EVTCHNOP_send: (L.EVTCHN_PORT, _send, False),
        A.EVTCHNOP_status: (L.EVTCHN_STATUS, _status, True),
        A.EVTCHNOP_bind_vcpu: (L.EVTCHN_BIND_VCPU, _bind_vcpu, False),
        A.EVTCHNOP_unmask: (L.EVTCHN_PORT, _unmask, False),
        A.EVTCHNOP_reset: (L.EVTCHN_RESET, _reset, False),
        A.EVTCHNOP_init_control: (L.EVTCHN_INIT_CONTROL, _init_control, True),
        A.EVTCHNOP_expand_array: (L.EVTCHN_EXPAND_ARRAY, _expand_array, False),
        A.EVTCHNOP_set_priority: (L.EVTCHN_SET_PRIORITY, _set_priority, False),
    }


def do_event_channel_op(d: "Domain", cmd: int, arg: int) -> int:
    """event_channel_op (32) on the caller's domain."""
    return d.evtchn.op(cmd, arg)

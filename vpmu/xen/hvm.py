"""hvm_op (34) as xen/arch/arm/hvm.c answers: HVMOP_set_param / get_param.

On Arm a domain may *read* CALLBACK_IRQ, STORE_PFN/EVTCHN and CONSOLE_PFN/EVTCHN and
may set none of them (``-EPERM`` for those, set by the toolstack); MONITOR_RING_PFN is
toolstack-only (``-EPERM``); every other index is ``-EINVAL``.  CALLBACK_IRQ holds what
Xen/libxl put there for an Arm guest: type PPI (2) in bits 63:56, flags "level, active
low" (2) in bits 15:8, and the event-channel PPI in bits 7:0.  There is no xenstore
or PV console in the emulator, so their parameters read 0.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import abi as A
from . import layout as L
from .xerrno import EFAULT, EINVAL, ENOSYS, EPERM, ESRCH

if TYPE_CHECKING:
    from .domain import Domain

GUEST_READABLE = (A.HVM_PARAM_CALLBACK_IRQ, A.HVM_PARAM_STORE_PFN, A.HVM_PARAM_STORE_EVTCHN,
                  A.HVM_PARAM_CONSOLE_PFN, A.HVM_PARAM_CONSOLE_EVTCHN)
TOOLSTACK_ONLY = GUEST_READABLE + (A.HVM_PARAM_MONITOR_RING_PFN,)


def callback_irq(ppi: int) -> int:
    return (A.HVM_PARAM_CALLBACK_TYPE_PPI << 56) | \
        (A.HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL << 8) | (ppi & 0xFF)


def do_hvm_op(d: "Domain", op: int, arg: int) -> int:
    g = d.guest
    if op in (A.HVMOP_set_param, A.HVMOP_get_param):
        raw = g.copy_from(arg, L.XEN_HVM_PARAM.size)
        if raw is None:
            return -EFAULT
        p = L.XEN_HVM_PARAM.unpack(raw)
        if not d.lookup_domain(p["domid"]):
            return -ESRCH
        index = p["index"]
        if op == A.HVMOP_set_param:
            # hvm_allow_set_param(): the caller is always the target domain here.
            return -EPERM if index in TOOLSTACK_ONLY else -EINVAL
        if index == A.HVM_PARAM_MONITOR_RING_PFN:
            return -EPERM
        if index not in GUEST_READABLE:
            return -EINVAL
        out = L.XEN_HVM_PARAM.pack({"value": d.hvm_params.get(index, 0)}, base=raw)
        return 0 if g.copy_to(arg, out) else -EFAULT
    if op == A.HVMOP_guest_request_vm_event:
        return 0 if arg == 0 else -EINVAL                 # no vm_event monitor attached
    return -ENOSYS

"""The hypercall table: hypercall number -> handler, and the trace record of each call.

Like Xen's ``hypercall_table`` (generated from xen/include/hypercall-defs.c), each entry
names the handler and the C types of its arguments; the dispatcher truncates x0..x4 to
those types (an ``int`` is the sign-extended low 32 bits, an ``unsigned int`` the low 32
bits, a ``long``/pointer all 64) and calls the handler with the caller's
:class:`~vpmu.xen.domain.Domain`.  The handlers live in their operation modules; an
unknown number is ``-ENOSYS``.
"""
from __future__ import annotations

from typing import Callable, Optional

from . import abi as A
from .domain import Domain
from .evtchn import do_event_channel_op
from .grant import do_grant_table_op
from .hvm import do_hvm_op
from .memory import do_memory_op
from .pmu import do_xenpmu_op
from .sched import do_console_io, do_sched_op
from .vcpu import do_vcpu_op, do_vm_assist
from .version import do_xen_version
from .xerrno import ENOSYS
from .xerrno import name as errno_name


def _int(x: int) -> int:
    """C ``int``: the low 32 bits, signed."""
    x &= A.U32
    return x - (1 << 32) if x >> 31 else x


def _uint(x: int) -> int:
    """C ``unsigned int``: the low 32 bits."""
    return x & A.U32


def _ulong(x: int) -> int:
    """C ``unsigned long`` or a guest handle (pointer): all 64 bits."""
    return x & A.U64


# nr -> (handler, argument types), as hypercall-defs.c declares them.
HYPERCALLS: dict[int, tuple[Callable[..., int], tuple[Callable[[int], int], ...]]] = {
    A.HYPERVISOR_memory_op: (do_memory_op, (_ulong, _ulong)),
    A.HYPERVISOR_xen_version: (do_xen_version, (_int, _ulong)),
    A.HYPERVISOR_console_io: (do_console_io, (_uint, _uint, _ulong)),
    A.HYPERVISOR_grant_table_op: (do_grant_table_op, (_uint, _ulong, _uint)),
    A.HYPERVISOR_vm_assist: (do_vm_assist, (_uint, _uint)),
    A.HYPERVISOR_vcpu_op: (do_vcpu_op, (_int, _uint, _ulong)),
    A.HYPERVISOR_sched_op: (do_sched_op, (_int, _ulong)),
    A.HYPERVISOR_event_channel_op: (do_event_channel_op, (_int, _ulong)),
    A.HYPERVISOR_hvm_op: (do_hvm_op, (_ulong, _ulong)),
    A.HYPERVISOR_xenpmu_op: (do_xenpmu_op, (_uint, _ulong)),
}


def dispatch(d: Domain, nr: int, args: list[int]) -> int:
    """Run hypercall ``nr`` with the register arguments ``args`` (x0..x4, 64-bit each)."""
    entry = HYPERCALLS.get(nr)
    if entry is None:
        return -ENOSYS
    handler, types = entry
    return handler(d, *(conv(x) for conv, x in zip(types, args)))


def call_record(nr: int, args: list[int], rc: int, notes: dict) -> dict:
    """The ``hypercall`` trace record (docs/xen.md "Trace records")."""
    op, op_name = _op_of(nr, args)
    rec = {"type": "hypercall", "nr": nr, "name": A.HYPERCALL_NAMES.get(nr), "op": op,
           "op_name": op_name, "args": list(args), "result": rc, "errno": errno_name(rc)}
    if notes:
        rec["detail"] = dict(notes)
    return rec


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

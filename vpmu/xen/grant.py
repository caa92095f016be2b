"""grant_table_op (20): query_size, get_version and set_version (xen/common/grant_table.c).

The grant table itself is not modelled (no map/unmap/copy): its frames can be mapped
with XENMEM_add_to_physmap (:mod:`vpmu.xen.memory`) and read as an empty v1 table, and
the size/version queries answer as Xen/Arm does (grant table v1 only,
``gnttab_max_frames`` 64 by default).  Every other command is ``-ENOSYS``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import abi as A
from . import layout as L
from .xerrno import EFAULT, EINVAL, ENOSYS, ESRCH

if TYPE_CHECKING:
    from .hypercall import XenFrontend

GNTTABOP_cache_flush = 12
GT_VERSION = 1                 # CONFIG_GRANT_TABLE_V2 is not available on Arm
MAX_GT_VERSION = 1


def do_grant_table_op(fe: "XenFrontend", cmd: int, uop: int, count: int) -> int:
    g = fe.guest
    if count >= 1 << 31:                                  # (int)count < 0
        return -EINVAL
    opaque = cmd & ~A.GNTTABOP_CMD_MASK
    cmd &= A.GNTTABOP_CMD_MASK
    if cmd != GNTTABOP_cache_flush and opaque:
        return -EINVAL
    if cmd == A.GNTTABOP_query_size:
        if count != 1:
            return -EINVAL
        raw = g.copy_from(uop, L.GNTTAB_QUERY_SIZE.size)
        if raw is None:
            return -EFAULT
        s = L.GNTTAB_QUERY_SIZE
        if not fe.lookup_domain(s.get(raw, "dom")):
            out = s.pack({"status": A.GNTST_bad_domain}, base=raw)
        else:
            out = s.pack({"nr_frames": fe.physmap.nr_grant_frames,
                          "max_nr_frames": fe.physmap.max_grant_frames,
                          "status": A.GNTST_okay}, base=raw)
        return 0 if g.copy_to(uop, out) else -EFAULT
    if cmd == A.GNTTABOP_get_version:
        raw = g.copy_from(uop, L.GNTTAB_GET_VERSION.size)
        if raw is None:
            return -EFAULT
        if not fe.lookup_domain(L.GNTTAB_GET_VERSION.get(raw, "dom")):
            return -ESRCH
        ok = g.copy_to(uop + L.GNTTAB_GET_VERSION.off("version"), GT_VERSION.to_bytes(4, "little"))
        return 0 if ok else -EFAULT
    if cmd == A.GNTTABOP_set_version:
        raw = g.copy_from(uop, L.GNTTAB_SET_VERSION.size)
        if raw is None:
            return -EFAULT
        version = L.GNTTAB_SET_VERSION.get(raw, "version")
        if version not in (1, 2):
            rc = -EINVAL
        elif version == 2 and MAX_GT_VERSION == 1:
            rc = -ENOSYS                                  # "as before set_version existed"
        else:
            rc = 0
        if not g.copy_to(uop, GT_VERSION.to_bytes(4, "little")):
            rc = -EFAULT
        return rc
    return -ENOSYS

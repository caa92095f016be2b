"""grant_table_op (20): query_size, get_version and set_version (xen/common/grant_table.c).

The grant table itself is not modelled (no map/unmap/copy): its frames (``GrantTable``,
the domain's ``grant_table``) can be mapped with XENMEM_add_to_physmap
(:mod:`vpmu.xen.memory`) and read as an empty v1 table, and
the size/version queries answer as Xen/Arm does (grant table v1 only,
``gnttab_max_frames`` 64 by default).  Every other command is ``-ENOSYS``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from . import abi as A
from . import layout as L
from .core import Region
from .xerrno import EFAULT, EINVAL, ENOSYS, ESRCH

if TYPE_CHECKING:
    from .domain import Domain

GNTTABOP_cache_flush = 12
GT_VERSION = 1                 # CONFIG_GRANT_TABLE_V2 is not available on Arm
MAX_GT_VERSION = 1
GNTTAB_INITIAL_FRAMES = 1


@dataclass
class GrantTable:
    """The domain's ``struct grant_table``: how many shared frames it has and may grow to."""
    max_grant_frames: int
    nr_grant_frames: int = GNTTAB_INITIAL_FRAMES
    frames: dict[int, Region] = field(default_factory=dict)    # frame index -> its page


def get_shared_frame(d: "Domain", idx: int) -> Optional[Region]:
    """gnttab_get_shared_frame_mfn(): grows the table on demand up to the maximum."""
    gt = d.grant_table
    if gt.nr_grant_frames <= idx < gt.max_grant_frames:
        gt.nr_grant_frames = idx + 1
    if idx >= gt.nr_grant_frames:
        return None
    if idx not in gt.frames:
        gt.frames[idx] = Region(d.guest, A.PAGE_SIZE)
    return gt.frames[idx]


def do_grant_table_op(d: "Domain", cmd: int, uop: int, count: int) -> int:
    g = d.guest
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
        if not d.lookup_domain(s.get(raw, "dom")):
            out = s.pack({"status": A.GNTST_bad_domain}, base=raw)
        else:
            out = s.pack({"nr_frames": d.grant_table.nr_grant_frames,
                          "max_nr_frames": d.grant_table.max_grant_frames,
                          "status": A.GNTST_okay}, base=raw)
        return 0 if g.copy_to(uop, out) else -EFAULT
    if cmd == A.GNTTABOP_get_version:
        raw = g.copy_from(uop, L.GNTTAB_GET_VERSION.size)
        if raw is None:
            return -EFAULT
        if not d.lookup_domain(L.GNTTAB_GET_VERSION.get(raw, "dom")):
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

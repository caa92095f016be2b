"""memory_op (12): XENMEM_add_to_physmap / remove_from_physmap for Xen-owned pages.

xen/common/memory.c + xen/arch/arm/mm.c ``xenmem_add_to_physmap_one``.  Implemented:
``XENMAPSPACE_shared_info`` (idx 0) and ``XENMAPSPACE_grant_table`` frames.  A Xen
page may appear at one GFN at a time (mapping it again is ``-EBUSY`` until it is
removed), as on Xen/Arm since 4.17.

Model limits (documented in docs/xen.md): the target GFN must be guest RAM (Xen can
map into a hole; the frontend keeps Xen pages in guest RAM so the guest sees them, and
answers ``-EINVAL`` otherwise); removing an ordinary RAM page would need a p2m the
board does not have (``-EOPNOTSUPP``); no device MMIO is delegated (``dev_mmio`` is
``-EINVAL``); every other memory_op sub-op is not modelled (``-ENOSYS``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import abi as A
from . import layout as L
from .core import Region
from .grant import get_shared_frame
from .xerrno import EBUSY, EDOM, EFAULT, EILSEQ, EINVAL, ENOENT, ENOSYS, EOPNOTSUPP, ESRCH

if TYPE_CHECKING:
    from .domain import Domain


def xen_pages(d: "Domain") -> list[Region]:
    """The Xen-owned pages the domain may map: shared_info and the grant frames."""
    return [d.shared_info, *d.grant_table.frames.values()]


def do_memory_op(d: "Domain", cmd: int, arg: int) -> int:
    op, start = cmd & A.MEMOP_CMD_MASK, cmd >> A.MEMOP_EXTENT_SHIFT
    g = d.guest
    if op == A.XENMEM_add_to_physmap:
        if start > 0xFFFF:                         # must fit xatp.size
            return -EDOM
        raw = g.copy_from(arg, L.XEN_ADD_TO_PHYSMAP.size)
        if raw is None:
            return -EFAULT
        x = L.XEN_ADD_TO_PHYSMAP.unpack(raw)
        if x["space"] == A.XENMAPSPACE_gmfn_foreign:
            return -ENOSYS                         # only via add_to_physmap_batch
        if not d.lookup_domain(x["domid"]):
            return -ESRCH
        if x["gpfn"] == A.U64:                     # INVALID_GFN
            return -EINVAL
        space = x["space"]
        if space == A.XENMAPSPACE_gmfn_range:
            if x["size"] < start:
                return -EILSEQ
            return 0 if x["size"] == start else -ENOSYS   # gmfn: -ENOSYS on Arm
        if space == A.XENMAPSPACE_shared_info:
            if x["idx"] != 0:
                return -EINVAL
            region = d.shared_info
        elif space == A.XENMAPSPACE_grant_table:
            frame = get_shared_frame(d, x["idx"])
            if frame is None:
                return -EINVAL
            region = frame
        elif space == A.XENMAPSPACE_dev_mmio:
            return -EINVAL                         # no iomem is delegated to the guest
        else:
            return -ENOSYS
        if region.pa is not None:
            return -EBUSY                          # "first unmap the page"
        pa = x["gpfn"] << A.PAGE_SHIFT
        if not g.is_ram(pa, A.PAGE_SIZE):
            return -EINVAL                         # model limit: Xen pages live in RAM
        for other in xen_pages(d):
            if other.pa == pa:
                other.unmap()                      # p2m_set_entry() replaces the mapping
        region.map_at(pa)
        return 0
    if op == A.XENMEM_remove_from_physmap:
        if start:
            return -EINVAL
        raw = g.copy_from(arg, L.XEN_REMOVE_FROM_PHYSMAP.size)
        if raw is None:
            return -EFAULT
        x = L.XEN_REMOVE_FROM_PHYSMAP.unpack(raw)
        if not d.lookup_domain(x["domid"]):
            return -ESRCH
        pa = x["gpfn"] << A.PAGE_SHIFT
        for page in xen_pages(d):
            if page.pa == pa:
                page.unmap()
                return 0
        if g.is_ram(pa, A.PAGE_SIZE):
            return -EOPNOTSUPP                     # model limit: no p2m holes
        return -ENOENT                             # get_page_from_gfn() failed
    return -ENOSYS

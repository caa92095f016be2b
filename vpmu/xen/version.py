"""xen_version (17), as xen/common/kernel.c ``do_xen_version`` answers on Arm.

Access control is the default (dummy) XSM's: version, platform_parameters and
get_features always answer; extraversion(2), compile_info, capabilities(2),
changeset(2), pagesize and guest_handle are open to every domain; commandline,
commandline2 and build_id need a privileged domain -- for others ``commandline``
returns the string "<denied>" and the varbuf ops / build_id ``-EPERM``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import abi as A
from . import layout as L
from .xerrno import E2BIG, EFAULT, EINVAL, ENOBUFS, ENODATA, ENOSYS, EPERM

if TYPE_CHECKING:
    from .domain import Domain

XEN_DENY = "<denied>"
VARBUF_MAX = 64 * 1024


@dataclass
class VersionInfo:
    major: int = 4
    minor: int = 19
    extraversion: str = ".0"
    compiler: str = "vpmu Xen frontend (Python)"
    compile_by: str = "vpmu"
    compile_domain: str = "localdomain"
    compile_date: str = "Thu Jan  1 00:00:00 UTC 1970"
    changeset: str = "unavailable"
    # arch_get_xen_caps() on arm64; no "xen-3.0-armv7l" since the board has no AArch32 EL1.
    capabilities: str = "xen-3.0-aarch64 "
    commandline: str = ""
    domain_handle: bytes = bytes(16)


def _cstr(s: str, size: int) -> bytes:
    """safe_strcpy() into a zeroed char[size]: truncated, always NUL-terminated."""
    raw = s.encode()[:size - 1]
    return raw + bytes(size - len(raw))


def features(d: "Domain") -> int:
    """Submap 0 of XENVER_get_features for this domain (kernel.c, CONFIG_ARM)."""
    bits = (1 << A.XENFEAT_memory_op_vnode_supported) | (1 << A.XENFEAT_runstate_phys_area)
    bits |= (1 << A.XENFEAT_writable_page_tables) | (1 << A.XENFEAT_auto_translated_physmap)
    if d.is_hardware_domain:
        bits |= 1 << A.XENFEAT_dom0
    bits |= 1 << A.XENFEAT_ARM_SMCCC_supported
    bits |= 1 << (A.XENFEAT_direct_mapped if d.direct_mapped else A.XENFEAT_not_direct_mapped)
    return bits


def do_xen_version(d: "Domain", cmd: int, arg: int) -> int:
    info: VersionInfo = d.version
    g = d.guest
    open_ops = (A.XENVER_version, A.XENVER_platform_parameters, A.XENVER_get_features,
                A.XENVER_extraversion, A.XENVER_extraversion2, A.XENVER_compile_info,
                A.XENVER_capabilities, A.XENVER_capabilities2, A.XENVER_changeset,
                A.XENVER_changeset2, A.XENVER_pagesize, A.XENVER_guest_handle)
    deny = cmd not in open_ops and not d.is_privileged

    if cmd == A.XENVER_version:
        return (info.major << 16) | info.minor
    if cmd == A.XENVER_extraversion:
        data = _cstr(info.extraversion, L.XEN_EXTRAVERSION_LEN)
        return 0 if g.copy_to(arg, data) else -EFAULT
    if cmd == A.XENVER_compile_info:
        data = L.XEN_COMPILE_INFO.pack({
            "compiler": _cstr(info.compiler, 64), "compile_by": _cstr(info.compile_by, 16),
            "compile_domain": _cstr(info.compile_domain, 32),
            "compile_date": _cstr(info.compile_date, 32)})
        return 0 if g.copy_to(arg, data) else -EFAULT
    if cmd == A.XENVER_capabilities:
        return 0 if g.copy_to(arg, _cstr(info.capabilities, L.XEN_CAPABILITIES_LEN)) else -EFAULT
    if cmd == A.XENVER_platform_parameters:
        # virt_start is 0 for anything but a 64-bit PV guest.
        return 0 if g.copy_to(arg, L.XEN_PLATFORM_PARAMETERS.pack({"virt_start": 0})) else -EFAULT
    if cmd == A.XENVER_changeset:
        return 0 if g.copy_to(arg, _cstr(info.changeset, L.XEN_CHANGESET_LEN)) else -EFAULT
    if cmd == A.XENVER_get_features:
        raw = g.copy_from(arg, L.XEN_FEATURE_INFO.size)
        if raw is None:
            return -EFAULT
        if L.XEN_FEATURE_INFO.get(raw, "submap_idx") >= A.XENFEAT_NR_SUBMAPS:
            return -EINVAL
        out = L.XEN_FEATURE_INFO.pack({"submap": features(d)}, base=raw)
        return 0 if g.copy_to(arg, out) else -EFAULT
    if cmd == A.XENVER_pagesize:
        return A.PAGE_SIZE if arg == 0 else -EINVAL
    if cmd == A.XENVER_guest_handle:
        return 0 if g.copy_to(arg, bytes(info.domain_handle[:16]).ljust(16, b"\0")) else -EFAULT
    if cmd == A.XENVER_commandline:
        data = (XEN_DENY.encode() + b"\0") if deny else _cstr(info.commandline,
                                                              L.XEN_COMMANDLINE_LEN)
        return 0 if g.copy_to(arg, data) else -EFAULT
    if cmd in (A.XENVER_build_id, A.XENVER_extraversion2, A.XENVER_capabilities2,
               A.XENVER_changeset2, A.XENVER_commandline2):
        if deny:
            return -EPERM
        return _varbuf(d, cmd, arg)
    return -ENOSYS


def _varbuf(d: "Domain", cmd: int, arg: int) -> int:
    """xenver_varbuf_op(): NULL arg asks for the length; no NUL is copied."""
    info = d.version
    if cmd == A.XENVER_build_id:
        return -ENODATA                    # the emulated Xen carries no build id
    s = {A.XENVER_extraversion2: info.extraversion, A.XENVER_changeset2: info.changeset,
         A.XENVER_commandline2: info.commandline,
         A.XENVER_capabilities2: info.capabilities}[cmd].encode()
    if len(s) > VARBUF_MAX:
        return -E2BIG
    if arg == 0:
        return len(s)
    raw = d.guest.copy_from(arg, L.XEN_VARBUF.size)
    if raw is None:
        return -EFAULT
    if len(s) > L.XEN_VARBUF.get(raw, "len"):
        return -ENOBUFS
    if not d.guest.copy_to(arg + L.XEN_VARBUF.size, s):
        return -EFAULT
    return len(s)

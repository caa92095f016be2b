"""Xen's error numbers (xen/include/public/errno.h), as the guest sees them.

Hypercalls return ``-XEN_Exxx`` in x0.  Xen's public numbering is the Linux/x86 one,
so every value below equals the host's :mod:`errno` value on Linux; the names are kept
here as literals anyway, because the ABI is Xen's and must not move with the host C
library (``tests/test_xen_version.py`` checks the two agree on Linux).
"""
from __future__ import annotations

EPERM = 1
ENOENT = 2
ESRCH = 3
EIO = 5
E2BIG = 7
ENOMEM = 12
EACCES = 13
EFAULT = 14
EBUSY = 16
EEXIST = 17
ENXIO = 6
EINVAL = 22
ENOSPC = 28
EDOM = 33
ENOSYS = 38
ENODATA = 61
ETIME = 62
EILSEQ = 84
EOPNOTSUPP = 95
ENOBUFS = 105

NAMES: dict[int, str] = {v: k for k, v in dict(globals()).items()
                         if k.isupper() and k.startswith("E") and isinstance(v, int)}


def name(rc: int) -> str | None:
    """``-22 -> "EINVAL"``; None for a non-error result."""
    return NAMES.get(-rc) if rc < 0 else None

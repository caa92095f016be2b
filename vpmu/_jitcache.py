"""Where numba caches the compiled kernels, keyed by the sources they are built from.

numba's on-disk cache is invalidated only when the *file of the cached function* changes,
not when a function it calls (in another module) changes: an edited kernel would keep
running as its stale inlined copy inside the cached hooks.  So the cache directory is
named after a hash of every module the native code is compiled from (and the numba and
Python versions); a change anywhere gives a fresh directory, inside vpmu's cache directory
(vpmu.cachedir: ``VPMU_CACHE_DIR``, default ``$XDG_CACHE_HOME/vpmu`` or ``~/.cache/vpmu``).
Must be imported before numba compiles or loads anything (vpmu.native does).
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from .cachedir import cache_base

_PKG = Path(__file__).resolve().parent
_SOURCES = ["native.py", "config.py", "arch.py", "pmu/jit.py", "pmu/layout.py", "pmu/channels.py", "pmu/regs.py",
            "pmu/counting.py", "pmu/predictor.py", "pmu/blocks.py", "pmu/caches.py", "pmu/registers.py",
            "pmu/decode.py", "pmu/codecache.py", "pmu/hooks.py"]


def cache_dir() -> Path:
    import numba
    h = hashlib.sha256()
    for rel in _SOURCES:
        h.update(rel.encode())
        h.update((_PKG / rel).read_bytes())
    h.update(numba.__version__.encode())
    h.update(sys.version.encode())
    return cache_base() / f"numba-{h.hexdigest()[:16]}"


def configure() -> Path:
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return d                      # unwritable: numba falls back to not caching
    import numba.core.config as cfg
    setattr(cfg, "CACHE_DIR", str(d))      # numba's config module sets its names at import
    os.environ["NUMBA_CACHE_DIR"] = str(d)
    return d


configure()

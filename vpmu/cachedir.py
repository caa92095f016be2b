"""vpmu's per-user cache directory: ``VPMU_CACHE_DIR``, else ``$XDG_CACHE_HOME/vpmu``, else
``~/.cache/vpmu``.  It holds the compiled numba kernels (vpmu._jitcache) and the guest
builder's dependency lists (vpmu.guestsdk.builder); everything in it can be deleted."""
from __future__ import annotations

import os
from pathlib import Path


def cache_base() -> Path:
    base = os.environ.get("VPMU_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "vpmu")
    return Path(base)

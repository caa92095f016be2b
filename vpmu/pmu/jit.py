"""The numba decorators of the counting path, in one place.

Every kernel is compiled ahead of its first call from the hooks, cached on disk
(``vpmu._jitcache`` picks the directory) and, unless it must build array views of foreign
memory, compiled without numba's reference-counting runtime: with it, every call passing the
arena costs an incref/decref pair, which made the per-block path about three times slower.
Kernels take the arena and ints only and never allocate.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from numba import njit

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """A numba kernel: cached, no reference counting."""
    return njit(cache=True, _nrt=False)(fn)  # type: ignore[call-overload]


def inline_kernel(fn: F) -> F:
    """A kernel inlined into its callers (the per-block fast path)."""
    return njit(cache=True, _nrt=False, inline="always")(fn)  # type: ignore[call-overload]


def nrt_kernel(fn: F) -> F:
    """A kernel that views foreign memory (Unicorn's register structs) with ``carray``,
    which needs numba's runtime."""
    return njit(cache=True)(fn)  # type: ignore[return-value]

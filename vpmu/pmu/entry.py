"""Python's handle on the native model: thin wrappers over the ``hooks.entry`` C entry point.

The board calls the kernels for rare events (an exception retires a block, a register file
is reloaded, ...).  Going through one ctypes call of a cached cfunc costs about a
microsecond and nothing at start-up, where calling each ``@njit`` dispatcher from Python
would type-check and load each kernel separately.
"""
from __future__ import annotations

import ctypes

from . import layout as L

_FN = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_int64)


class Native:
    def __init__(self, arena):
        from . import hooks
        self.A = arena
        self._addr = arena.ctypes.data
        self._call = _FN(hooks.entry.address)

    def _op(self, op: int, *args: int) -> int:
        for i, a in enumerate(args):
            self.A[L.ENTRY_ARG + i] = a & L.NONE64
        return self._call(self._addr, op)

    def flush(self) -> None:
        """Add deferred block tallies to the counters (kernels.defer_flush): before Python
        reads or changes counted state."""
        self._call(self._addr, L.E_FLUSH)

    def reconfigure(self) -> None:
        self._op(L.E_RECONFIGURE)

    def irq_update(self) -> None:
        self._op(L.E_IRQ_UPDATE)

    def end_block_at(self, pc: int, retired: bool) -> None:
        """A synchronous exception at pc (kernels.end_block_at)."""
        self._op(L.E_END_BLOCK_AT, pc, int(retired))

    def finish_block(self, next_pc: int) -> None:
        self._op(L.E_FINISH_BLOCK, next_pc)

    def dyn_event(self, channel: int, n: int, pc: int, icount: int) -> None:
        self._op(L.E_DYN_EVENT, channel, n, pc, icount)

    def pmcr_read(self) -> int:
        return self._op(L.E_PMCR_READ)

    def flush_blocks(self) -> None:
        self._op(L.E_FLUSH_BLOCKS)

    def blk_lookup(self, addr: int, size: int) -> int:
        v = self._op(L.E_BLK_LOOKUP, addr, size)
        return v - (1 << 64) if v >> 63 else v   # hooks.blk_lookup's int64, returned as uint64

    def hooked(self, va: int) -> bool:
        """A code hook now covers va (the code cache stops asking for one); False if full."""
        return bool(self._op(L.E_HOOKED, va))

    def precise(self, start: int, size: int, on: bool) -> bool:
        """The precise-mode code hook over the block [start, start + size) was installed or
        removed; False if the range table is full."""
        return bool(self._op(L.E_PRECISE, start, size, int(on)))

    def valid_mask(self) -> int:
        return self._op(L.E_VALID_MASK)

    def typer_mask(self) -> int:
        return self._op(L.E_TYPER_MASK)

"""Exceptions raised inside Unicorn callbacks: recorded, emulation stopped, re-raised later.

A Python exception cannot cross Unicorn's C frames.  Every Python callback the board
registers (MMIO devices, the interrupt and unmapped-access hooks, the native hooks' calls
into Python) runs under one :class:`CallbackGuard`: the first exception is kept, the engine
is asked to stop, and the run loop raises it once ``emu_start`` has returned.
"""
from __future__ import annotations

from typing import Any, Callable, Optional


class CallbackGuard:
    def __init__(self, uc):
        self.uc = uc
        self.error: Optional[BaseException] = None

    def fail(self, e: BaseException) -> None:
        """Keep the first exception and stop the engine (every ``except BaseException`` in a
        board callback ends here: never lose an exception inside a C callback)."""
        if self.error is None:
            self.error = e
        self.uc.emu_stop()

    def raise_pending(self) -> None:
        """After emu_start: raise the recorded exception, if any (and forget it)."""
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    def mmio(self, read: Callable[[int, int], int], write: Callable[[int, int, int], None],
             before: Optional[Callable[[], Any]] = None):
        """Unicorn ``mmio_map`` callbacks around a device's ``read(off, size)`` and
        ``write(off, size, value)``; ``before()`` runs first on every access.  (The guard is
        inlined here: a console prints through these on every character.)"""
        fail = self.fail

        def on_read(_uc, off, size, _ud):
            try:
                if before is not None:
                    before()
                return read(off, size)
            except BaseException as e:
                fail(e)
                return 0

        def on_write(_uc, off, size, value, _ud):
            try:
                if before is not None:
                    before()
                write(off, size, value)
            except BaseException as e:
                fail(e)

        return on_read, on_write

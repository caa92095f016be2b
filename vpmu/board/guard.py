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
        """Keep the first exception and stop the engine."""
        if self.error is None:
            self.error = e
        self.uc.emu_stop()

    def call(self, fn: Callable[..., Any], *args, default: Any = None) -> Any:
        """fn(*args), or ``default`` after recording what it raised."""
        try:
            return fn(*args)
        except BaseException as e:          # never lose an exception inside a C callback
            self.fail(e)
            return default

    def raise_pending(self) -> None:
        """After emu_start: raise the recorded exception, if any (and forget it)."""
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    def mmio(self, read: Callable[[int, int], int], write: Callable[[int, int, int], None],
             before: Optional[Callable[[], Any]] = None):
        """Unicorn ``mmio_map`` callbacks around a device's ``read(off, size)`` and
        ``write(off, size, value)``; ``before()`` runs first on every access."""
        def on_read(_uc, off, size, _ud):
            return self.call(_then, before, read, off, size, default=0)

        def on_write(_uc, off, size, value, _ud):
            self.call(_then, before, write, off, size, value)

        return on_read, on_write


def _then(before: Optional[Callable[[], Any]], fn: Callable[..., Any], *args) -> Any:
    if before is not None:
        before()
    return fn(*args)

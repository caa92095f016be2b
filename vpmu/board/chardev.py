"""Character-device backends for the virtio console's port 0 (``--virtio-console``).

- ``testdev``: QEMU's ``-chardev testdev`` (chardev/testdev.c), the exit path of
  kvm-unit-tests (lib/arm/io.c ``chr_testdev_exit`` sends ``"%dq"``).  The bytes the guest
  writes are kept in a 32-byte buffer and read as packets: blanks, a decimal number (the
  argument, 0 if absent), blanks, then one command character.  ``q`` ends the run at once
  with status ``((arg << 1) | 1) & 0xff``, as QEMU's ``exit((arg << 1) | 1)``; any other
  character is consumed and ignored; a packet not complete yet waits for more bytes.  One
  deliberate difference: when the buffer is full and still holds no complete packet (32
  blanks or digits in a row), QEMU loops forever in ``testdev_chr_write``; here the 32
  bytes are dropped (``on_note`` reports it) and parsing goes on with the rest.
- ``stdio``: the bytes go to the standard output, next to the UART's.
- ``null``: the bytes are discarded.

A backend is a callable taking the bytes written (:func:`open_backend`).
"""
from __future__ import annotations

from typing import Callable, Optional

from .env import GuestExit

TESTDEV_BUF_SIZE = 32                  # QEMU's BUF_SIZE: the testdev's input buffer
TESTDEV_QUIT = ord("q")
TESTDEV_EXIT_REASON = "testdev"        # the exit record's reason when the guest quits through it
_BLANKS = frozenset(b" \t\n\v\f\r")    # C isspace() in the "C" locale
_DIGITS = frozenset(b"0123456789")


def testdev_status(arg: int) -> int:
    """The process status QEMU's ``exit((arg << 1) | 1)`` gives (the low 8 bits)."""
    return ((arg << 1) | 1) & 0xFF


class TestDev:
    """QEMU's testdev character device (see the module docstring)."""

    def __init__(self, on_note: Optional[Callable[[str], None]] = None):
        self.buf = bytearray()
        self.on_note = on_note or (lambda note: None)

    def write(self, data: bytes) -> None:
        """The guest wrote ``data``; raises :class:`~vpmu.board.env.GuestExit` on ``q``."""
        data = bytes(data)
        while data:
            room = TESTDEV_BUF_SIZE - len(self.buf)
            self.buf += data[:room]
            data = data[room:]
            while self.buf:
                eaten = self._eat_packet()
                if eaten == 0:
                    break
                del self.buf[:eaten]
            if len(self.buf) == TESTDEV_BUF_SIZE:
                self.on_note(f"testdev: {TESTDEV_BUF_SIZE} bytes without a command character dropped "
                             f"(QEMU would loop forever)")
                self.buf.clear()

    def _eat_packet(self) -> int:
        """Bytes consumed by the first complete packet in the buffer, 0 if it is incomplete
        (testdev_eat_packet)."""
        buf, i, n = self.buf, 0, len(self.buf)
        while i < n and buf[i] in _BLANKS:
            i += 1
        arg = 0
        while i < n and buf[i] in _DIGITS:
            arg = arg * 10 + buf[i] - ord("0")
            i += 1
        while i < n and buf[i] in _BLANKS:
            i += 1
        if i == n:
            return 0
        if buf[i] == TESTDEV_QUIT:
            raise GuestExit(testdev_status(arg), TESTDEV_EXIT_REASON)
        return i + 1


def open_backend(kind: str, out: Callable[[bytes], object],
                 on_note: Optional[Callable[[str], None]] = None) -> Callable[[bytes], None]:
    """The writer for a backend named in ``config.VIRTIO_CONSOLE_BACKENDS``; ``out`` is the
    standard output's writer, ``on_note`` receives the testdev's notes."""
    if kind == "testdev":
        return TestDev(on_note).write
    if kind == "stdio":
        def to_stdout(data: bytes) -> None:
            if data:
                out(bytes(data))
        return to_stdout
    if kind == "null":
        def discard(data: bytes) -> None:
            pass
        return discard
    raise ValueError(f"unknown character device backend {kind!r}")

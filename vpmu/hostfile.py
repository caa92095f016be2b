"""The host files a run reads (guest image, ``--dtb``, ``--vm``, ``--initrd``): regular files
only, with a size limit checked before a byte is read.

Reading a path blindly goes wrong in three ways: a device (``/dev/zero``) never ends, so
``read()`` runs out of memory; a FIFO blocks ``open()`` for ever when nobody writes to it;
and a huge (possibly sparse) file costs its whole size in memory before any check can refuse
it.  :func:`open_regular` therefore looks at the path first (``stat``: a regular file, not
larger than the limit), then opens it without blocking and checks the descriptor again
(the path may have changed in between); :func:`read_regular` also stops reading at the limit
should the file grow.  Every problem is one line naming the path, raised as the caller's
error class (an image problem is status 101, a bad ``--vm`` file status 2).
"""
from __future__ import annotations

import os
import stat
from typing import BinaryIO

from .sizes import format_size

# what a path is when it is not a regular file (for the message)
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _check(path: str, st: os.stat_result, what: str, limit: int, why: str, error: type[Exception]) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: {what} is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise error(f"{path}: {what} is {format_size(st.st_size)}, more than the {format_size(limit)} {why}")


def open_regular(path: str, what: str, limit: int, why: str, error: type[Exception]) -> tuple[BinaryIO, int]:
    """Open ``path`` for reading if it is a regular file of at most ``limit`` bytes; returns
    the file and its size.  ``what`` names the file in messages ("the guest image"), ``why``
    says where the limit comes from ("of RAM it must fit in").  Raises ``error(message)``."""
    path = os.fspath(path)
    try:
        _check(path, os.stat(path), what, limit, why, error)
        # O_NONBLOCK: should the path have become a FIFO since the stat, open() must not wait
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise error(f"{path}: cannot read {what} ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        _check(path, st, what, limit, why, error)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str, what: str, limit: int, why: str, error: type[Exception]) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    f, _size = open_regular(path, what, limit, why, error)
    with f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise error(f"{os.fspath(path)}: cannot read {what} ({e.strerror})") from None
    if len(data) > limit:                  # it grew while we read it
        raise error(f"{os.fspath(path)}: {what} is larger than the {format_size(limit)} {why}")
    return data

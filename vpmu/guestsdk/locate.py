"""Finding a guest image by path or by name, for ``vpmu sweep`` and the pytest plugin.

A guest given with a directory part or an image suffix (``.elf``, ``.bin``, ``.img``), or
naming an existing file, is a path, used as it is (a missing one is the runner's error).  A
bare name ``NAME`` is ``NAME.elf`` in the guest directory, which is, first set:

1. the one the caller was given (``vpmu sweep --guest-dir DIR``; the plugin's
   ``--vpmu-guests DIR`` or its ini option ``vpmu_guests``);
2. the environment variable ``VPMU_GUESTS``;
3. a development convenience only: ``guests/build`` of the vpmu source checkout this package
   runs from, when there is one (an installed vpmu has none).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError

ENV_VAR = "VPMU_GUESTS"
IMAGE_SUFFIXES = (".elf", ".bin", ".img")


class GuestNotFound(UsageError):
    """A guest path that does not exist, or a name not in the guest directory."""


def checkout_guest_dir() -> Path | None:
    """``guests/build`` of the vpmu checkout holding this package, if it is one and has that directory."""
    root = Path(__file__).resolve().parent.parent.parent
    d = root / "guests" / "build"
    return d if (root / "guests" / "build.py").is_file() and d.is_dir() else None


def guest_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The directory bare guest names are looked up in (see the module docstring), or None."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return checkout_guest_dir()


def is_path(guest: str) -> bool:
    return os.sep in guest or (os.altsep is not None and os.altsep in guest) or guest.endswith(IMAGE_SUFFIXES)


def find_guest(guest: str, directory: Path | None, hint: str = f"{ENV_VAR}=DIR") -> str:
    """The image file `guest` names: a path as it is (whether it exists is the caller's or the
    runner's question), or NAME.elf in `directory`.  `hint` says how the caller's user sets a
    guest directory (for the error when there is none)."""
    if is_path(guest) or os.path.exists(guest):
        return guest
    if directory is None:
        raise GuestNotFound(f"guest {guest!r}: not a file, and no guest directory to look it up in "
                            f"(give a path, or a directory: {hint})")
    p = Path(directory) / f"{guest}.elf"
    if not p.is_file():
        raise GuestNotFound(f"guest {guest!r}: no {p}")
    return str(p)

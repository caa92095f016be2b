"""The guest SDK: what it takes to write, build and find AArch64 guests, shipped in the package.

- ``runtime/``: the bare-metal runtime every guest links with (``start.S`` entry,
  ``vectors.S`` exception vectors, ``lib.c`` UART printf / key=value output / semihosting
  exit / GIC, PMU, MMU and device-tree helpers, ``image_head.S`` the Linux Image header),
  its header ``vpmu.h`` and the linker script template ``link.ld.in``;
- :mod:`vpmu.guestsdk.builder`: the one builder (``vpmu guest build``, and ``guests/build.py``
  for vpmu's own guests), clang + lld from the pinned ``ziglang`` dependency;
- ``starter.c``: what ``vpmu guest new NAME`` writes;
- :mod:`vpmu.guestsdk.locate`: guest lookup by path or by name in a guest directory
  (``VPMU_GUESTS``), for ``vpmu sweep`` and the pytest plugin.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .builder import RUNTIME_DIR, STARTER, BuildFailed, Built, Outputs, ToolchainMissing, build
from .locate import ENV_VAR, GuestNotFound, find_guest, guest_dir

__all__ = ["RUNTIME_DIR", "STARTER", "BuildFailed", "Built", "Outputs", "ToolchainMissing", "build", "new_guest",
           "ENV_VAR", "GuestNotFound", "find_guest", "guest_dir"]


def new_guest(name: str | Path) -> Path:
    """Write the starter guest to NAME.c (NAME may have a directory part and the .c suffix);
    refuse to overwrite an existing file."""
    path = Path(name)
    if path.name in ("", ".", "..") or path.name.startswith("-"):     # '' and '.' have no name to extend
        raise UsageError(f"{name!r}: not a usable guest name")
    if path.suffix != ".c":
        path = path.with_name(path.name + ".c")
    if not path.stem:
        raise UsageError(f"{name!r}: not a usable guest name")
    text = STARTER.read_text().replace("NAME", path.stem)
    try:
        with open(path, "x") as f:
            f.write(text)
    except FileExistsError:
        raise UsageError(f"{path}: exists (not overwritten)") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot write: {e.strerror}") from None
    return path

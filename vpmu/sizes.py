"""Sizes as people write them: ``128M``, ``1G``, ``1GiB``, ``512K``, ``0x8000000``, ``134217728``.

The one parser for every size vpmu reads: ``vpmu run --memory``, ``vpmu dtb --memory``,
``--cache l1d-size=32K`` and ``memory = "1G"`` in a ``--vm`` description.  Suffixes are binary
(K = 1024, M, G, T) as in QEMU's ``-m``, case-insensitive, and may be followed by ``B`` or
``iB`` (``1GiB``, ``64KB``); a bare number is bytes, decimal or ``0x`` hex (in hex, ``B`` is a
digit), with ``_`` allowed between digits.  No fractions, no signs.
"""
from __future__ import annotations

import re

_SIZE_RE = re.compile(r"\s*(0[xX][0-9a-fA-F_]+|[0-9][0-9_]*)\s*(?:([kKmMgGtT])[iI]?[bB]?|[bB])?\s*\Z")
_SHIFT = {"k": 10, "m": 20, "g": 30, "t": 40}
EXAMPLES = "e.g. 128M, 1GiB, 0x8000000 or a number of bytes"


def parse_size(text: str) -> int:
    """Bytes from a size string (see the module docstring).  Raises ValueError with a one-line
    message (``not a size: '12Q' (e.g. ...)``)."""
    m = _SIZE_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"not a size: {text!r} ({EXAMPLES})")
    try:
        value = int(m.group(1), 0)
    except ValueError:                  # "1__0", "0128": int() has the last word
        raise ValueError(f"not a size: {text!r} ({EXAMPLES})") from None
    return value << _SHIFT[m.group(2).lower()] if m.group(2) else value


def format_size(n: int) -> str:
    """``1 GiB``, ``128 MiB``, ``4 KiB`` for whole multiples, else ``N bytes`` (for messages)."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"

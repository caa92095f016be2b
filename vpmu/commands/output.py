"""The machine-readable output options the reporting commands share (``--json``, ``-x SEP``,
``--csv``) and where their text goes; the encodings themselves are :mod:`vpmu.report`'s."""
from __future__ import annotations

import argparse
from typing import Any, Callable


def add_format_options(p: argparse.ArgumentParser, what: str) -> None:
    """``--json`` | ``-x SEP`` | ``--csv`` (mutually exclusive) for a command printing ``what``."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help=f"print {what} as one JSON document")
    g.add_argument("-x", "--field-separator", dest="sep", metavar="SEP",
                   help=f"print {what} as separated values: a header line, then one line per "
                        "record, fields joined by SEP (quoted when they hold it)")
    g.add_argument("--csv", dest="sep", action="store_const", const=",", help="the same as -x ,")


def machine_readable(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False) or getattr(args, "sep", None))


def render(args: argparse.Namespace, data: Any, text: Callable[[], str], sv: Callable[[str], str]) -> str:
    """The text for the chosen format: ``data`` as JSON, ``sv(SEP)``, or ``text()``."""
    from ..report import to_json
    if getattr(args, "json", False):
        return to_json(data)
    if getattr(args, "sep", None):
        return sv(args.sep)
    return text()

"""Command line: ``vpmu run|stat|events|guest|bench|dtb|policy|trace|sweep|qemu-diff|qemu ...``.

This module holds the top-level parser, the one argument-parser class every subcommand uses
(argparse errors as one line, exit status 2) and the mapping from errors to exit statuses;
the subcommands are in :mod:`vpmu.commands`.  Bad input gets one line on stderr and a
documented exit status (vpmu.errors), never a traceback (``--debug`` shows it for internal
errors).
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Optional

from . import errors
from .commands import COMMANDS


# reStructuredText markup in the docstrings that double as help texts: roles (:mod:`x`),
# literals (``x``) and interpreted text (`x`) all print as plain x.
_RST = re.compile(r"(?::[a-z]+:)?(``?)([^`]+?)\1")


def plain_text(text: str) -> str:
    """`text` without reStructuredText inline markup (what ``--help`` prints)."""
    return _RST.sub(r"\2", text)


class _Parser(argparse.ArgumentParser):
    """The argument parser of ``vpmu`` and of every subcommand (subparsers inherit it)."""

    def error(self, message):            # one line, exit status 2
        self.exit(errors.EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def format_help(self) -> str:        # descriptions are often module docstrings, written in RST
        return plain_text(super().format_help())


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, looked up only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from . import version
        sys.stdout.write(f"vpmu {version()}\n")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vpmu", description="ARM64 virtual PMU (PMUv3) emulator: run AArch64 guest images on a "
                                         "QEMU-virt-compatible board with an exact, numba-compiled PMU model.")
    p.add_argument("--version", action=_Version, help="print vpmu's version and exit")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except errors.VpmuError as e:
        sys.stderr.write(f"vpmu: {e}\n")
        return e.status
    except KeyboardInterrupt:
        sys.stderr.write("vpmu: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:                     # an internal error: still one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"vpmu: internal error: {type(e).__name__}: {e} (run with --debug for details)\n")
        return errors.EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

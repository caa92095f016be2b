"""``vpmu run``: run a guest.  The options come from one table, :class:`vpmu.options.RunOptions`
(each field's :class:`~vpmu.options.CliForm`); this module only maps argparse onto it and
prints ``--summary`` (text, ``--json`` or ``-x SEP``: vpmu.report)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any, Callable

from .. import api, errors, report
from ..options import RunOptions
from .output import add_format_options, machine_readable, render


def register(sub) -> None:
    r = sub.add_parser("run", help="run a guest (ELF, Linux Image or flat binary)",
                       description="Run a guest. Its UART/semihosting output goes to stdout and its exit status "
                                   "(semihosting SYS_EXIT, PSCI SYSTEM_OFF = 0) becomes ours. Runner errors exit "
                                   "with " + ", ".join(f"{k} ({v})" for k, v in errors.EXIT_STATUSES.items()) + ".")
    r.add_argument("guest", metavar="GUEST", help="guest image")
    add_run_options(r)
    r.add_argument("--summary", action="store_true", help="print the final PMU registers to stderr")
    add_format_options(r, "the --summary (implies --summary; still on stderr)")
    r.set_defaults(func=cmd_run)


def _argtype(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse's ``type=``: the option table's parser, its ValueError as argparse's message."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = parse.__name__
    return convert


def add_run_options(p: argparse.ArgumentParser) -> None:
    """One argument per :class:`RunOptions` field, in the table's order and groups."""
    groups: dict[str, Any] = {}
    for f in fields(RunOptions):
        cli = f.metadata["cli"]
        if cli.group not in groups:
            groups[cli.group] = p.add_argument_group(cli.group)
        kw: dict[str, Any] = {"dest": f.name, "help": cli.help}
        if isinstance(f.default, bool):
            kw["action"] = "store_true"
        else:
            kw["default"] = None if cli.repeat else f.default
            if cli.repeat:
                kw["action"] = "append"
            if cli.metavar:
                kw["metavar"] = cli.metavar
            if cli.parse:
                kw["type"] = _argtype(cli.parse)
            if cli.choices:
                kw["choices"] = cli.choices
        groups[cli.group].add_argument(cli.flag_for(f.name), **kw)


def options_from_args(args: argparse.Namespace) -> RunOptions:
    return RunOptions(**{f.name: getattr(args, f.name) for f in fields(RunOptions)})


def summary(res) -> str:
    """``--summary``: the final PMU registers, one counter a line (vpmu.report.run_summary)."""
    return report.run_summary_text(report.run_summary(res))


def _summary_sv(data: dict, sep: str) -> str:
    pmu = data.get("pmu") or {"counters": []}
    return report.records_to_sv(pmu["counters"], sep, report.SUMMARY_COLUMNS)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = options_from_args(args).to_machine_config()
    res = api.run_config(args.guest, cfg, capture=False, keep_trace=False, raise_errors=True)
    if args.summary or machine_readable(args):
        data = report.run_summary(res)
        sys.stderr.write(render(args, data, lambda: report.run_summary_text(data),
                                lambda sep: _summary_sv(data, sep)))
    return res.exit_status

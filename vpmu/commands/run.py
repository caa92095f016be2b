"""``vpmu run``: run a guest.  The options come from one table, :class:`vpmu.options.RunOptions`
(each field's :class:`~vpmu.options.CliForm`); this module only maps argparse onto it and
prints ``--summary``."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any, Callable

from .. import api, errors
from ..options import RunOptions
from ..pmu import events


def register(sub) -> None:
    r = sub.add_parser("run", help="run a guest (ELF, Linux Image or flat binary)",
                       description="Run a guest. Its UART/semihosting output goes to stdout and its exit status "
                                   "(semihosting SYS_EXIT, PSCI SYSTEM_OFF = 0) becomes ours. Runner errors exit "
                                   "with " + ", ".join(f"{k} ({v})" for k, v in errors.EXIT_STATUSES.items()) + ".")
    r.add_argument("guest", metavar="GUEST", help="guest image")
    add_run_options(r)
    r.add_argument("--summary", action="store_true", help="print the final PMU registers to stderr")
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
    """``--summary``: the final PMU registers, one counter a line."""
    p = res.pmu
    lines = [f"vpmu: {res.reason} status={res.exit_status} instructions={res.icount} cycles={res.cycles}"]
    if not p:
        return "\n".join(lines) + "\n"
    e_on = p["pmcr"] & 1
    lines.append(f"  PMCR_EL0={p['pmcr']:#x} (E={e_on}, N={p['n']})  PMCNTENSET={p['pmcntenset']:#x}  "
                 f"PMOVSSET={p['pmovsset']:#x}  PMINTENSET={p['pmintenset']:#x}")
    lines.append(f"  {'counter':<9} {'event':<26} {'value':>20} {'enabled':>8} {'overflowed':>11}")
    evmask = 0xFFFF
    for i in range(p["n"]):
        ev = p["evtyper"][i] & evmask
        e = events.BY_NUMBER.get(ev)
        name = f"{e.name if e else 'event'} ({ev:#x})"
        lines.append(f"  {'PMEV' + str(i):<9} {name:<26} {p['evcntr'][i]:>20} {(p['pmcntenset'] >> i) & 1:>8} "
                     f"{(p['pmovsset'] >> i) & 1:>11}")
    lines.append(f"  {'PMCCNTR':<9} {'CPU_CYCLES (0x11)':<26} {p['pmccntr']:>20} {(p['pmcntenset'] >> 31) & 1:>8} "
                 f"{(p['pmovsset'] >> 31) & 1:>11}")
    return "\n".join(lines) + "\n"


def cmd_run(args: argparse.Namespace) -> int:
    cfg = options_from_args(args).to_machine_config()
    res = api.run_config(args.guest, cfg, capture=False, keep_trace=False, raise_errors=True)
    if args.summary:
        sys.stderr.write(summary(res))
    return res.exit_status

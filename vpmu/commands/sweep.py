"""``vpmu sweep``: guests x filter policies on local processes or a Dask cluster (vpmu.sweeps)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

from .. import sweeps as S
from ..errors import EXIT_USAGE, UsageError
from ..options import RunOptions
from ..policy import PolicyError, read_policy_file
from .run import add_run_options

DESCRIPTION = """\
Run every guest under every policy, one run per (guest, policy), on local processes (-j) or a
Dask distributed cluster (--dask), and print a table: a row per run (exit status, instructions,
the final value of each event the guest counted; the CSV names the counters). A policy is an
ordered list of KVM filter items (allow|deny:FIRST[-LAST]) applied as successive
KVM_ARM_VCPU_PMU_V3_FILTER calls; the unfiltered baseline "none" comes first unless
--no-baseline. Every vpmu run option applies to every run (its --filter items before the
policy's; --trace is a pattern with {guest} and {policy}; --max-insns defaults to 5e7 here).
All options, policies and guests are checked before the first run starts. --csv writes the long
format (one line per guest, policy, counter, event and value, with the run's status), --json
the rows, --report a self-contained HTML page (a table and a plot per guest). The exit status
is 1 when a run failed on the runner's side (its error is listed below the table), else 0.
"""

MAX_JOBS = 1024


DEFAULTS = {f.name: f.default for f in fields(RunOptions)}


def _policies(args: argparse.Namespace) -> list[S.Policy]:
    out: list[S.Policy] = [] if args.no_baseline else [S.Policy("none", ())]
    for path in args.policy or []:
        try:
            items = tuple(str(r) for r in read_policy_file(path))
        except PolicyError as e:
            raise UsageError(f"--policy {path}: {e}") from None
        out.append(S.Policy(Path(path).stem, items))
    for spec in args.policy_filters or []:
        name, _, body = spec.rpartition("=") if "=" in spec.split(":")[0] else ("", "", spec)
        items = tuple(x.strip() for x in body.replace(";", ",").split(",") if x.strip())
        out.append(S.Policy(name or body, items))
    if not out:
        raise UsageError("no policies to sweep (use --policy/--filters, or keep the baseline)")
    return out


def _open_output(flag: str, path: str):
    """--csv / --json: opened before the first run, so a bad path costs no sweep."""
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except (OSError, ValueError) as e:
        raise UsageError(f"{flag} {path}: cannot write ({getattr(e, 'strerror', None) or e})") from None


def _dask_executor(stack: ExitStack, scheduler: str, workers: int) -> Executor:
    """Dask distributed's concurrent.futures executor: a LocalCluster of ``workers``
    processes for ``local``, else a client of the scheduler at that address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--dask needs Dask distributed: pip install 'vpmu[dask]'") from None
    try:
        if scheduler == "local":
            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(Client(scheduler, timeout="10s"))
    except (OSError, TimeoutError, ValueError) as e:
        raise UsageError(f"--dask {scheduler}: cannot reach the scheduler ({e})") from None
    return client.get_executor(pure=False)


def cmd_sweep(args: argparse.Namespace) -> int:
    guests = [S.guest_path(g, args.guest_dir) for g in args.guests]
    policies = _policies(args)
    options = {f.name: getattr(args, f.name) for f in fields(RunOptions)}
    if args.report:
        from ..sweepreport import require_matplotlib
        require_matplotlib()
    if args.jobs is not None and not 0 <= args.jobs <= MAX_JOBS:
        raise UsageError(f"--jobs must be in 0..{MAX_JOBS} (0 = one per core; got {args.jobs})")
    jobs = args.jobs or os.cpu_count() or 1
    # Everything is checked, and the output files opened, before an executor (processes, a
    # cluster) is started: a bad path costs no sweep.
    planned = S.plan(guests, policies, **options)
    outputs = [(flag, path, _open_output(flag, path))
               for flag, path in (("--csv", args.csv), ("--json", args.json), ("--report", args.report)) if path]
    try:
        return _sweep_and_write(args, planned, options, jobs, outputs)
    finally:
        for _, _, f in outputs:
            try:
                f.close()
            except (OSError, ValueError):
                pass                    # a failed write was reported already


def _sweep_and_write(args: argparse.Namespace, planned: list, options: dict, jobs: int, outputs: list) -> int:
    with ExitStack() as stack:
        executor: Optional[Executor] = None
        if args.dask:
            executor = _dask_executor(stack, args.dask, jobs)
        elif jobs > 1 and len(planned) > 1:
            executor = stack.enter_context(ProcessPoolExecutor(max_workers=min(jobs, len(planned))))
        progress: Any = (S.Progress(len(planned), verbose=args.verbose, bar=not args.quiet)
                         if args.verbose or not args.quiet else False)
        try:
            rows = S.run_jobs(planned, executor=executor, progress=progress)
        finally:
            if progress:
                progress.close()
        sys.stdout.write(rows.table())
        sys.stdout.flush()
        status = 1 if rows.errors() else 0
        for flag, path, f in outputs:
            try:
                if flag == "--csv":
                    rows.to_csv(f)
                elif flag == "--json":
                    json.dump(rows.to_json_data(), f, indent=1)
                    f.write("\n")
                else:
                    from ..sweepreport import write_report
                    given = {k: v for k, v in options.items() if v not in (None, False, ()) and v != DEFAULTS[k]}
                    write_report(rows, f, options=given)
                f.flush()
                f.close()
            except (OSError, ValueError) as e:
                # the table is on stdout already: name the lost file, status 2
                sys.stderr.write(f"vpmu: {flag} {path}: write failed ({getattr(e, 'strerror', None) or e})\n")
                status = EXIT_USAGE
    return status


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run guests x filter policies on local processes or Dask; table, CSV, JSON, "
                                     "HTML report", description=DESCRIPTION)
    p.add_argument("guests", nargs="+", metavar="GUEST",
                   help="guest images: paths, or names NAME for NAME.elf in the guest directory")
    p.add_argument("--guest-dir", metavar="DIR", default=None,
                   help="where guest names are looked up (default: $VPMU_GUESTS)")
    g = p.add_argument_group("policies")
    g.add_argument("--policy", action="append", metavar="FILE",
                   help="a policy file (as vpmu policy reads), repeatable; named after the file")
    g.add_argument("--filters", dest="policy_filters", action="append", metavar="[NAME=]ITEM[,ITEM...]",
                   help="an inline policy: comma-separated allow|deny:FIRST[-LAST] items, repeatable")
    g.add_argument("--no-baseline", action="store_true", help="do not include the unfiltered run \"none\"")
    w = p.add_argument_group("where the runs happen")
    w.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help=f"parallel local processes, or the workers of --dask local, at most {MAX_JOBS} "
                        "(default or 0: all cores)")
    w.add_argument("--dask", metavar="SCHEDULER",
                   help="run on Dask distributed: a scheduler address (tcp://HOST:8786) or 'local' for a "
                        "LocalCluster here; workers need vpmu installed (pip install 'vpmu[dask]')")
    o = p.add_argument_group("output")
    o.add_argument("--csv", metavar="FILE",
                   help="write the long format: guest, policy, counter, event, value, event_number, status, "
                        "reason, instructions, cycles, filters, error")
    o.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    o.add_argument("--report", metavar="FILE.html",
                   help="write a self-contained HTML report: per guest a table and a plot (needs matplotlib)")
    o.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (there is none anyway when stderr is not a terminal)")
    o.add_argument("-v", "--verbose", action="store_true", help="a line per finished run on stderr")
    add_run_options(p)
    p.set_defaults(func=cmd_sweep)

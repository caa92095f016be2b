"""``vpmu sweep``: guests x filter policies in parallel (see vpmu.sweep)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .. import sweep as S
from ..errors import EXIT_USAGE, UsageError, VpmuError
from ..options import RunOptions
from ..policy import read_policy_file

MAX_JOBS = 1024


def _policies(args) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = [] if args.no_baseline else [("none", [])]
    for path in args.policy or []:
        try:
            items = [str(r) for r in read_policy_file(path)]
        except Exception as e:
            raise VpmuError(f"--policy {path}: {e}", 2) from None
        out.append((Path(path).stem, items))
    for spec in args.filters or []:
        name, _, body = spec.rpartition("=") if "=" in spec.split(":")[0] else ("", "", spec)
        items = [x.strip() for x in body.replace(";", ",").split(",") if x.strip()]
        out.append((name or body, items))
    if not out:
        raise VpmuError("no policies to sweep (use --policy/--filters, or keep the baseline)", 2)
    return out


def _open_output(flag: str, path: str):
    """--csv / --json: opened before the first run, so a bad path costs no sweep."""
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except (OSError, ValueError) as e:
        raise UsageError(f"{flag} {path}: cannot write ({getattr(e, 'strerror', None) or e})") from None


def cmd_sweep(args) -> int:
    guests = [S.guest_path(g) for g in args.guests]
    policies = _policies(args)
    opts = {"pmu_version": args.pmu_version, "counters": args.counters, "max_insns": args.max_insns}
    RunOptions.from_keywords(**opts)            # every run's options, checked once up front (status 2)
    if not 0 <= args.jobs <= MAX_JOBS:
        raise UsageError(f"--jobs must be in 0..{MAX_JOBS} (0 = one per core; got {args.jobs})")
    jobs = args.jobs or os.cpu_count() or 1
    outputs = [(flag, path, _open_output(flag, path)) for flag, path in (("--csv", args.csv), ("--json", args.json))
               if path]
    try:
        rows = S.sweep(guests, policies, opts, jobs, progress=not args.quiet)
        sys.stdout.write(S.table(rows))
        status = 1 if any(r.get("error") for r in rows) else 0
        for flag, path, f in outputs:
            try:
                with f:
                    if flag == "--csv":
                        S.write_csv_to(rows, f)
                    else:
                        json.dump(rows, f, indent=1)
            except (OSError, ValueError) as e:
                # the table is on stdout already: name the lost file, status 2
                sys.stderr.write(f"vpmu: {flag} {path}: write failed ({getattr(e, 'strerror', None) or e})\n")
                status = EXIT_USAGE
    finally:
        for _, _, f in outputs:
            f.close()
    return status


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run guests x filter policies in parallel; result table/CSV/JSON",
                       description=S.__doc__)
    p.add_argument("guests", nargs="+", metavar="GUEST", help="guest images (or names in guests/build)")
    p.add_argument("--policy", action="append", metavar="FILE", help="a policy file (as vpmu policy reads), repeatable")
    p.add_argument("--filters", action="append", metavar="[NAME=]ITEM[,ITEM...]",
                   help="an inline policy: comma-separated allow|deny:FIRST[-LAST] items, repeatable")
    p.add_argument("--no-baseline", action="store_true", help="do not include the unfiltered run")
    p.add_argument("--pmu-version", default=None, help="guest PMU version for every run")
    p.add_argument("--counters", type=int, default=None, help="PMCR_EL0.N for every run")
    p.add_argument("--max-insns", type=int, default=50_000_000, help="per-run instruction limit (default 5e7)")
    p.add_argument("-j", "--jobs", type=int, default=0,
                   help=f"parallel runs, at most {MAX_JOBS} and never more than the runs (default 0: all cores)")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV (status 2 if it cannot be written)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON (status 2 if it cannot be written)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

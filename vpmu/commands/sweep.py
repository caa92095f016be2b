"""``vpmu sweep``: guests x filter policies in parallel (see vpmu.sweep)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .. import sweep as S
from ..errors import VpmuError
from ..policy import read_policy_file


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


def cmd_sweep(args) -> int:
    guests = [S.guest_path(g, args.guest_dir) for g in args.guests]
    policies = _policies(args)
    opts = {"pmu_version": args.pmu_version, "counters": args.counters, "max_insns": args.max_insns}
    jobs = args.jobs or os.cpu_count() or 1
    rows = S.sweep(guests, policies, opts, jobs, progress=not args.quiet)
    sys.stdout.write(S.table(rows))
    if args.csv:
        S.write_csv(rows, args.csv)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 1 if any(r.get("error") for r in rows) else 0


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run guests x filter policies in parallel; result table/CSV/JSON",
                       description=S.__doc__)
    p.add_argument("guests", nargs="+", metavar="GUEST",
                   help="guest images: paths, or names NAME for NAME.elf in the guest directory")
    p.add_argument("--guest-dir", metavar="DIR", default=None,
                   help="where guest names are looked up (default: $VPMU_GUESTS)")
    p.add_argument("--policy", action="append", metavar="FILE", help="a policy file (as vpmu policy reads), repeatable")
    p.add_argument("--filters", action="append", metavar="[NAME=]ITEM[,ITEM...]",
                   help="an inline policy: comma-separated allow|deny:FIRST[-LAST] items, repeatable")
    p.add_argument("--no-baseline", action="store_true", help="do not include the unfiltered run")
    p.add_argument("--pmu-version", default=None, help="guest PMU version for every run")
    p.add_argument("--counters", type=int, default=None, help="PMCR_EL0.N for every run")
    p.add_argument("--max-insns", type=int, default=50_000_000, help="per-run instruction limit (default 5e7)")
    p.add_argument("-j", "--jobs", type=int, default=0, help="parallel runs (default: all cores)")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

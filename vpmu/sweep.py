"""``vpmu sweep``: many guests x many filter policies, in parallel on all cores.

Each (guest, policy) pair is one run with the policy applied as successive KVM filters.
A progress line goes to stderr; the result table (one row per run: exit status,
instructions, and every programmed counter's final value) goes to stdout, and can also
be written as CSV (``--csv FILE``) or JSON (``--json FILE``).  The baseline policy "none"
(no filter) is included unless ``--no-baseline``.
"""
from __future__ import annotations

import csv
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import IO

from .api import run_config
from .errors import VpmuError
from .options import RunOptions


def guest_path(g: str) -> str:
    if os.path.exists(g):
        return g
    p = Path(__file__).resolve().parent.parent / "guests" / "build" / f"{g}.elf"
    if p.exists():
        return str(p)
    raise VpmuError(f"guest {g!r}: no such file (and no guests/build/{g}.elf)", 2)


def _job(guest: str, policy: str, items: list[str], opts: dict) -> dict:
    row = {"guest": Path(guest).name, "policy": policy, "filters": " ".join(items)}
    try:
        cfg = RunOptions.from_keywords(filters=items, **opts).to_machine_config()
        r = run_config(guest, cfg, keep_trace=False)
    except VpmuError as e:
        row.update(status=e.status, reason="error", error=str(e), instructions=None, counters={})
        return row
    p = r.pmu
    counters = {}
    for i in range(p.get("n", 0)):
        if (p["pmcntenset"] >> i) & 1 or p["evcntr"][i]:
            counters[f"c{i}:{p['evtyper'][i] & 0xFFFF:#x}"] = p["evcntr"][i]
    counters["ccnt"] = p.get("pmccntr", 0)
    row.update(status=r.exit_status, reason=r.reason, error=r.error or "", instructions=r.icount,
               counters=counters)
    return row


def _progress(done: int, total: int, t0: float) -> None:
    width = 30
    fill = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} runs, {time.time() - t0:.1f} s")
    sys.stderr.flush()


def sweep(guests: list[str], policies: list[tuple[str, list[str]]], opts: dict, jobs: int,
          progress: bool = True) -> list[dict]:
    work = [(g, name, items) for g in guests for name, items in policies]
    rows: list[dict] = [None] * len(work)   # type: ignore[list-item]
    jobs = max(1, min(jobs, len(work)))     # a process pool forks all its workers up front
    t0 = time.time()
    if jobs <= 1:
        for k, w in enumerate(work):
            rows[k] = _job(*w, opts)
            if progress:
                _progress(k + 1, len(work), t0)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            futs = {ex.submit(_job, *w, opts): k for k, w in enumerate(work)}
            for n, f in enumerate(as_completed(futs), 1):
                rows[futs[f]] = f.result()
                if progress:
                    _progress(n, len(work), t0)
    if progress:
        sys.stderr.write("\n")
    return rows


def table(rows: list[dict]) -> str:
    keys = sorted({k for r in rows for k in r["counters"]}, key=lambda k: (k == "ccnt", k))
    head = ["guest", "policy", "status", "instructions"] + keys
    body = [[r["guest"], r["policy"], str(r["status"]), "" if r["instructions"] is None else str(r["instructions"])]
            + [str(r["counters"].get(k, "")) for k in keys] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*b) for b in body]
    errs = [f"  {r['guest']} / {r['policy']}: {r['error']}" for r in rows if r.get("error")]
    return "\n".join(lines + (["errors:"] + errs if errs else [])) + "\n"


def write_csv(rows: list[dict], path: str) -> None:
    with open(path, "w", newline="") as f:
        write_csv_to(rows, f)


def write_csv_to(rows: list[dict], f: IO[str]) -> None:
    keys = sorted({k for r in rows for k in r["counters"]}, key=lambda k: (k == "ccnt", k))
    w = csv.writer(f)
    w.writerow(["guest", "policy", "filters", "status", "reason", "instructions", "error"] + keys)
    for r in rows:
        w.writerow([r["guest"], r["policy"], r["filters"], r["status"], r["reason"], r["instructions"],
                    r.get("error", "")] + [r["counters"].get(k, "") for k in keys])

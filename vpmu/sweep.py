"""``vpmu sweep``: many guests x many filter policies, in parallel on all cores.

Each (guest, policy) pair is one run with the policy applied as successive KVM filters.
A progress line goes to stderr; the result table (one row per run: exit status,
instructions, and every programmed counter's final value) goes to stdout, and can also
be written as CSV (``--csv FILE``) or JSON (``--json FILE``).  The baseline policy "none"
(no filter) is included unless ``--no-baseline``.
"""
from __future__ import annotations

import csv
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from .api import run_config
from .errors import VpmuError
from .guestsdk import locate
from .options import RunOptions


def guest_path(g: str, guest_dir: str | None = None) -> str:
    """A guest by path, or by name in the guest directory (vpmu.guestsdk.locate: --guest-dir, VPMU_GUESTS);
    checked before the first run."""
    p = locate.find_guest(g, locate.guest_dir(guest_dir), hint=f"--guest-dir DIR or {locate.ENV_VAR}=DIR")
    if not Path(p).is_file():
        raise locate.GuestNotFound(f"guest {g}: no such file")
    return p


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
    keys = sorted({k for r in rows for k in r["counters"]}, key=lambda k: (k == "ccnt", k))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["guest", "policy", "filters", "status", "reason", "instructions", "error"] + keys)
        for r in rows:
            w.writerow([r["guest"], r["policy"], r["filters"], r["status"], r["reason"], r["instructions"],
                        r.get("error", "")] + [r["counters"].get(k, "") for k in keys])

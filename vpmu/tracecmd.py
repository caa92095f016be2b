"""``vpmu trace summary|diff|plot``: read traces written by ``vpmu run --trace``.

- summary: per counter the final value (from the exit record), its event, the number of
  overflows and the interrupts taken on the PMU INTID, plus exceptions and exit;
- diff: the first record where two traces diverge, with its neighbours (exit status 1
  when they differ, 0 when they agree);
- plot: a PNG of counter values against retired instructions (points from --trace-sample
  records, traced counter reads and writes, overflow records and the exit record), with overflow and interrupt
  markers.  Needs matplotlib (``pip install vpmu[plot]``).
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Iterator

from .config import TraceLimit
from .errors import EXIT_USAGE, UsageError, VpmuError
from .trace import TraceError, read

# diff and plot hold a trace in memory: at most this many records (a trace recorded with the
# default --trace-limit, its truncated and its final record); summary streams any length.
MAX_LOADED_RECORDS = TraceLimit.DEFAULT_RECORDS + 2
# plot: picture sizes matplotlib renders in well under 1 GB
PLOT_MIN_PIXELS, PLOT_MAX_PIXELS = 100, 10000


def stream(path: str) -> Iterator[dict]:
    """The validated records of a trace file; VpmuError (status 2) names the first bad line."""
    try:
        yield from read(path)
    except OSError as e:
        raise VpmuError(f"{path}: cannot read ({e.strerror or e})", EXIT_USAGE) from None
    except TraceError as e:
        raise VpmuError(f"{path}: invalid trace: {e}", EXIT_USAGE) from None


def load(path: str, limit: int = MAX_LOADED_RECORDS) -> list[dict]:
    out: list[dict] = []
    for rec in stream(path):
        if len(out) >= limit:
            raise VpmuError(f"{path}: more than {limit} records, too many to hold in memory (record a shorter "
                            "trace with --trace-limit; vpmu trace summary reads any length)", EXIT_USAGE)
        out.append(rec)
    return out


def _event_name(ev: int) -> str:
    from .pmu.events import BY_NUMBER
    e = BY_NUMBER.get(ev)
    return f"{e.name} ({ev:#x})" if e else f"event {ev:#x}"


SUMMARY_COLUMNS = ["counter", "index", "event", "event_name", "value", "overflows"]


def summary_data(recs: Iterable[dict]) -> dict:
    """The summary as data (``vpmu trace summary --json``): the run record's configuration,
    how the run ended, per counter the final value and the overflows, interrupts on the PMU
    INTID and others, exceptions by kind, Xen samples, and where the trace limit cut the
    records (``truncated_at``).  A counter's ``value``/``event`` are None when the trace has
    no exit record.  ``recs`` is read once: a list, or :func:`stream`'s validated records of
    a trace of any length."""
    from .pmu.events import BY_NUMBER
    run: dict = {}
    ex = truncated = None
    ovf: Counter = Counter()
    irq: Counter = Counter()
    exc: Counter = Counter()
    samples = 0
    for r in recs:
        t = r["type"]
        if not run:
            run = r
        if t == "overflow":
            ovf[r["counter"]] += 1
        elif t == "irq":
            irq[r["intid"]] += 1
        elif t == "exception":
            exc[r["kind"]] += 1
        elif t == "xen_sample":
            samples += 1
        elif t == "truncated":
            truncated = r
        elif t in ("exit", "error"):
            ex = r
    pmu_irq = run.get("pmu_irq", 23)
    end: dict | None = None
    if ex is not None and ex["type"] == "error":
        end = {"type": "error", "icount": ex["icount"], "reason": ex["reason"], "status": ex.get("status")}
    elif ex is not None:
        end = {"type": "exit", "reason": ex["reason"], "status": ex["status"], "icount": ex["icount"],
               "cycles": ex["cycles"]}
    pmu = ex.get("pmu") if ex else None
    counters = []

    def name(ev):
        e = BY_NUMBER.get(ev)
        return e.name if e else None
    if pmu:
        # the schema types each field; that the lists are n long is the runner's promise only
        for i in range(min(pmu["n"], len(pmu["evtyper"]), len(pmu["evcntr"]))):
            ev = pmu["evtyper"][i] & 0xFFFF
            counters.append({"counter": f"PMEV{i}", "index": i, "event": ev, "event_name": name(ev),
                             "value": pmu["evcntr"][i], "overflows": ovf.get(i, 0)})
        counters.append({"counter": "PMCCNTR", "index": 31, "event": 0x11, "event_name": "CPU_CYCLES",
                         "value": pmu["pmccntr"], "overflows": ovf.get(31, 0)})
    else:
        for c in sorted(ovf):
            counters.append({"counter": "PMCCNTR" if c == 31 else f"PMEV{c}", "index": c, "event": None,
                             "event_name": None, "value": None, "overflows": ovf[c]})
    return {"image": run.get("image"), "pmu_version": run.get("pmu_version"), "counters_n": run.get("counters"),
            "pmu_irq": pmu_irq, "filters": bool(run.get("filters")), "end": end, "counters": counters,
            "truncated_at": None if truncated is None else {"icount": truncated["icount"],
                                                            "limit": truncated["limit"]},
            "pmu_interrupts": irq.get(pmu_irq, 0),
            "other_interrupts": {str(k): v for k, v in sorted(irq.items()) if k != pmu_irq},
            "exceptions": dict(sorted(exc.items())),
            "xen_samples": samples}


def summary(recs: Iterable[dict]) -> str:
    return summary_text(summary_data(recs))


def summary_text(d: dict) -> str:
    pmu_irq = d["pmu_irq"]
    lines = [f"trace of {d['image']}: PMU {d['pmu_version']}, N={d['counters_n']}, "
             f"PMU IRQ {pmu_irq}, filters {'yes' if d['filters'] else 'no'}"]
    cut = d.get("truncated_at")
    if cut is not None:
        lines.append(f"  records stop at icount {cut['icount']}: the trace limit ({cut['limit']}) was reached")
    end = d["end"]
    if end is None:
        lines.append("  (no exit record: the trace is truncated)")
    elif end["type"] == "error":
        status = f" (runner status {end['status']})" if end.get("status") is not None else ""
        lines.append(f"  stopped with an error at icount {end['icount']}{status}: {end['reason']}")
    else:
        lines.append(f"  exit: {end['reason']} status {end['status']} after {end['icount']} instructions, "
                     f"{end['cycles']} cycles")
    lines.append(f"  {'counter':<9} {'event':<28} {'final value':>20} {'overflows':>10}")
    for c in d["counters"]:
        if c["value"] is None:
            lines.append(f"  {c['counter']:<9} {'?':<28} {'?':>20} {c['overflows']:>10}")
        else:
            lines.append(f"  {c['counter']:<9} {_event_name(c['event']):<28} {c['value']:>20} {c['overflows']:>10}")
    other = d["other_interrupts"]
    lines.append(f"  interrupts on the PMU INTID {pmu_irq}: {d['pmu_interrupts']}"
                 + (f"; other INTIDs: {dict((int(k), v) for k, v in other.items())}" if other else ""))
    if d["exceptions"]:
        lines.append("  exceptions: " + ", ".join(f"{k} x{v}" for k, v in d["exceptions"].items()))
    if d["xen_samples"]:
        lines.append(f"  Xen PMU samples: {d['xen_samples']}")
    return "\n".join(lines) + "\n"


def _counter_series(recs: list[dict]) -> dict[int, list[tuple[int, int]]]:
    series: dict[int, list[tuple[int, int]]] = {}
    names = {f"PMEVCNTR{i}_EL0": i for i in range(31)}
    names["PMCCNTR_EL0"] = 31
    for r in recs:
        if r["type"] == "pmu_reg" and r["reg"] in names:
            series.setdefault(names[r["reg"]], []).append((r["icount"], r["value"]))
        elif r["type"] == "sample":
            for i, v in enumerate(r["evcntr"]):
                series.setdefault(i, []).append((r["icount"], v))
            series.setdefault(31, []).append((r["icount"], r["pmccntr"]))
        elif r["type"] == "overflow":
            series.setdefault(r["counter"], []).append((r["icount"], r["value"]))
        elif r["type"] == "exit" and r.get("pmu"):
            p = r["pmu"]
            for i in range(min(p["n"], len(p["evcntr"]))):
                series.setdefault(i, []).append((r["icount"], p["evcntr"][i]))
            series.setdefault(31, []).append((r["icount"], p["pmccntr"]))
    return series


def check_plot_size(width: int, height: int) -> None:
    for name, v in (("--width", width), ("--height", height)):
        if not PLOT_MIN_PIXELS <= v <= PLOT_MAX_PIXELS:
            raise UsageError(f"{name} must be {PLOT_MIN_PIXELS}..{PLOT_MAX_PIXELS} pixels (got {v})")


def plot(recs: list[dict], out: str, width: int = 1000, height: int = 600) -> None:
    """Write the PNG to ``out`` (VpmuError, status 2, if it cannot be written)."""
    check_plot_size(width, height)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VpmuError("vpmu trace plot needs matplotlib: pip install 'vpmu[plot]'", 2) from None
    dpi = 100
    fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    series = _counter_series(recs)
    for c in sorted(series):
        pts = sorted(series[c])
        if not pts:
            continue
        xs, ys = ([float(v) for v in col] for col in zip(*pts))     # uint64 values: numpy needs floats
        ax.step(xs, ys, where="post", label="PMCCNTR" if c == 31 else f"PMEVCNTR{c}")
    ovf = [(float(r["icount"]), float(r["value"])) for r in recs if r["type"] == "overflow"]
    if ovf:
        ax.scatter(*zip(*ovf), marker="x", color="red", zorder=3, label="overflow")
    pmu_irq = recs[0].get("pmu_irq", 23)
    irqs = [float(r["icount"]) for r in recs if r["type"] == "irq" and r.get("intid") == pmu_irq]
    for k, x in enumerate(irqs):
        ax.axvline(x, color="orange", linewidth=0.8, linestyle="--", label="PMU interrupt" if k == 0 else None)
    ax.set_xlabel("instructions retired")
    ax.set_ylabel("counter value")
    ax.set_title(f"{recs[0].get('image')}: counters")
    if series or ovf or irqs:
        ax.legend(loc="best", fontsize="small")
    try:
        fig.savefig(out, format="png", dpi=dpi)
    except OSError as e:
        raise VpmuError(f"-o {out}: cannot write ({e.strerror or e})", EXIT_USAGE) from None
    finally:
        plt.close(fig)

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

from .errors import VpmuError
from .trace import TraceError, read


def load(path: str) -> list[dict]:
    try:
        return list(read(path))
    except OSError as e:
        raise VpmuError(f"{path}: cannot read ({e.strerror})", 2) from None
    except TraceError as e:
        raise VpmuError(f"{path}: invalid trace: {e}", 2) from None


def _event_name(ev: int) -> str:
    from .pmu.events import BY_NUMBER
    e = BY_NUMBER.get(ev)
    return f"{e.name} ({ev:#x})" if e else f"event {ev:#x}"


SUMMARY_COLUMNS = ["counter", "index", "event", "event_name", "value", "overflows"]


def summary_data(recs: list[dict]) -> dict:
    """The summary as data (``vpmu trace summary --json``): the run record's configuration,
    how the run ended, per counter the final value and the overflows, interrupts on the PMU
    INTID and others, exceptions by kind, Xen samples.  A counter's ``value``/``event`` are
    None when the trace has no exit record (truncated)."""
    from .pmu.events import BY_NUMBER
    run = recs[0]
    ex = next((r for r in reversed(recs) if r["type"] in ("exit", "error")), None)
    ovf = Counter(r["counter"] for r in recs if r["type"] == "overflow")
    irq = Counter(r["intid"] for r in recs if r["type"] == "irq")
    exc = Counter(r["kind"] for r in recs if r["type"] == "exception")
    pmu_irq = run.get("pmu_irq", 23)
    end: dict | None = None
    if ex is not None and ex["type"] == "error":
        end = {"type": "error", "icount": ex["icount"], "reason": ex["reason"]}
    elif ex is not None:
        end = {"type": "exit", "reason": ex["reason"], "status": ex["status"], "icount": ex["icount"],
               "cycles": ex["cycles"]}
    pmu = ex.get("pmu") if ex else None
    counters = []

    def name(ev):
        e = BY_NUMBER.get(ev)
        return e.name if e else None
    if pmu:
        for i in range(pmu["n"]):
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
            "pmu_interrupts": irq.get(pmu_irq, 0),
            "other_interrupts": {str(k): v for k, v in sorted(irq.items()) if k != pmu_irq},
            "exceptions": dict(sorted(exc.items())),
            "xen_samples": sum(1 for r in recs if r["type"] == "xen_sample")}


def summary(recs: list[dict]) -> str:
    return summary_text(summary_data(recs))


def summary_text(d: dict) -> str:
    pmu_irq = d["pmu_irq"]
    lines = [f"trace of {d['image']}: PMU {d['pmu_version']}, N={d['counters_n']}, "
             f"PMU IRQ {pmu_irq}, filters {'yes' if d['filters'] else 'no'}"]
    end = d["end"]
    if end is None:
        lines.append("  (no exit record: the trace is truncated)")
    elif end["type"] == "error":
        lines.append(f"  stopped with an error at icount {end['icount']}: {end['reason']}")
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
            for i in range(p["n"]):
                series.setdefault(i, []).append((r["icount"], p["evcntr"][i]))
            series.setdefault(31, []).append((r["icount"], p["pmccntr"]))
    return series


def plot(recs: list[dict], out: str, width: int = 1000, height: int = 600) -> None:
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
        xs, ys = zip(*pts)
        ax.step(xs, ys, where="post", label="PMCCNTR" if c == 31 else f"PMEVCNTR{c}")
    ovf = [(r["icount"], r["value"]) for r in recs if r["type"] == "overflow"]
    if ovf:
        ax.scatter(*zip(*ovf), marker="x", color="red", zorder=3, label="overflow")
    pmu_irq = recs[0].get("pmu_irq", 23)
    irqs = [r["icount"] for r in recs if r["type"] == "irq" and r.get("intid") == pmu_irq]
    for k, x in enumerate(irqs):
        ax.axvline(x, color="orange", linewidth=0.8, linestyle="--", label="PMU interrupt" if k == 0 else None)
    ax.set_xlabel("instructions retired")
    ax.set_ylabel("counter value")
    ax.set_title(f"{recs[0].get('image')}: counters")
    if series or ovf or irqs:
        ax.legend(loc="best", fontsize="small")
    fig.savefig(out, format="png", dpi=dpi)
    plt.close(fig)

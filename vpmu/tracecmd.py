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


def summary(recs: list[dict]) -> str:
    run = recs[0]
    ex = next((r for r in reversed(recs) if r["type"] in ("exit", "error")), None)
    ovf = Counter(r["counter"] for r in recs if r["type"] == "overflow")
    irq = Counter(r["intid"] for r in recs if r["type"] == "irq")
    exc = Counter(r["kind"] for r in recs if r["type"] == "exception")
    pmu_irq = run.get("pmu_irq", 23)
    lines = [f"trace of {run.get('image')}: PMU {run.get('pmu_version')}, N={run.get('counters')}, "
             f"PMU IRQ {pmu_irq}, filters {'yes' if run.get('filters') else 'no'}"]
    if ex is None:
        lines.append("  (no exit record: the trace is truncated)")
    elif ex["type"] == "error":
        lines.append(f"  stopped with an error at icount {ex['icount']}: {ex['reason']}")
    else:
        lines.append(f"  exit: {ex['reason']} status {ex['status']} after {ex['icount']} instructions, "
                     f"{ex['cycles']} cycles")
    pmu = ex.get("pmu") if ex else None
    lines.append(f"  {'counter':<9} {'event':<28} {'final value':>20} {'overflows':>10}")
    if pmu:
        for i in range(pmu["n"]):
            lines.append(f"  {'PMEV' + str(i):<9} {_event_name(pmu['evtyper'][i] & 0xFFFF):<28} "
                         f"{pmu['evcntr'][i]:>20} {ovf.get(i, 0):>10}")
        lines.append(f"  {'PMCCNTR':<9} {'CPU_CYCLES (0x11)':<28} {pmu['pmccntr']:>20} {ovf.get(31, 0):>10}")
    else:
        for c in sorted(ovf):
            lines.append(f"  {'PMCCNTR' if c == 31 else 'PMEV' + str(c):<9} {'?':<28} {'?':>20} {ovf[c]:>10}")
    lines.append(f"  interrupts on the PMU INTID {pmu_irq}: {irq.get(pmu_irq, 0)}"
                 + (f"; other INTIDs: {dict(sorted((k, v) for k, v in irq.items() if k != pmu_irq))}"
                    if len(irq) > (1 if pmu_irq in irq else 0) else ""))
    if exc:
        lines.append("  exceptions: " + ", ".join(f"{k} x{v}" for k, v in sorted(exc.items())))
    samples = sum(1 for r in recs if r["type"] == "xen_sample")
    if samples:
        lines.append(f"  Xen PMU samples: {samples}")
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

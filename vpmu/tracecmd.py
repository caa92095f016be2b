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


def summary(recs: Iterable[dict]) -> str:
    """The summary of a validated trace (a list, or :func:`stream`'s records: read once)."""
    run: dict = {}
    ex = None
    truncated = None
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
    lines = [f"trace of {run.get('image')}: PMU {run.get('pmu_version')}, N={run.get('counters')}, "
             f"PMU IRQ {pmu_irq}, filters {'yes' if run.get('filters') else 'no'}"]
    if truncated is not None:
        lines.append(f"  records stop at icount {truncated['icount']}: the trace limit ({truncated['limit']}) "
                     "was reached")
    if ex is None:
        lines.append("  (no exit record: the trace is truncated)")
    elif ex["type"] == "error":
        status = f" (runner status {ex['status']})" if "status" in ex else ""
        lines.append(f"  stopped with an error at icount {ex['icount']}{status}: {ex['reason']}")
    else:
        lines.append(f"  exit: {ex['reason']} status {ex['status']} after {ex['icount']} instructions, "
                     f"{ex['cycles']} cycles")
    pmu = ex.get("pmu") if ex else None
    lines.append(f"  {'counter':<9} {'event':<28} {'final value':>20} {'overflows':>10}")
    if pmu:
        for i in range(min(pmu["n"], len(pmu["evtyper"]), len(pmu["evcntr"]))):
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

"""``vpmu trace summary|diff|plot``: read traces written by ``vpmu run --trace``.

- summary: per counter the final value (from the exit record), its event, the number of
  overflows and the interrupts taken on the PMU INTID, plus exceptions and exit;
- diff: the first record where two traces diverge, with its neighbours (exit status 1
  when they differ, 0 when they agree);
- plot: a PNG or SVG of counter values against retired instructions (points from
  --trace-sample records, traced counter reads and writes, overflow records and the exit
  record; :func:`counter_series`), each line labelled with the event its counter counted,
  32-bit wraps unwrapped, a panel per counter (or one overlay) on a linear, log or symlog
  axis, with overflow and interrupt markers.  Needs matplotlib (``pip install vpmu[plot]``).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

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


# ---------------------------------------------------------------------------------------------
# plot

PLOT_FORMATS = ("png", "svg")
YSCALES = ("linear", "log", "symlog")
LAYOUTS = ("panels", "overlay")
PMCR_P, PMCR_C = 1 << 1, 1 << 2          # PMCR_EL0.P / .C: reset the event counters / PMCCNTR
CYCLE_COUNTER = 31


@dataclass
class CounterSeries:
    """One counter's values against retired instructions, as a trace shows them."""
    index: int                                              # 0..30, 31 = PMCCNTR
    events: list[str] = field(default_factory=list)         # what it counted, in order
    points: list[tuple[int, int]] = field(default_factory=list)      # (icount, value)
    overflows: list[tuple[int, int]] = field(default_factory=list)   # (icount, value after it)
    wraps: int = 0                                          # overflows that wrapped the value

    @property
    def counter(self) -> str:
        return "PMCCNTR" if self.index == CYCLE_COUNTER else f"PMEV{self.index}"

    @property
    def label(self) -> str:
        return f"{' then '.join(self.events)} ({self.counter})" if self.events else self.counter


def counter_series(recs: list[dict], unwrap: bool = True) -> list[CounterSeries]:
    """The counters a trace shows, each with the event(s) it counted and its values.

    Values come from ``--trace-sample`` records, traced counter reads and writes
    (``--trace-pmu-regs``, PMXEVCNTR through PMSELR), PMCR_EL0 writes with P or C (a reset to
    0), overflow records and the exit record.  Events come from traced PMEVTYPER<n> /
    PMXEVTYPER writes and the exit record's PMEVTYPER values, named from the event catalogue.

    ``unwrap``: a counter that wraps at its overflow (a 32-bit counter: PMUv3.0-3.4, or
    PMCR_EL0.LP/LC clear) continues above 2**32 instead of falling back to 0, so a wrap does
    not flatten the plot.  A wrap is an overflow record whose value is below the counter's
    previous value, or below 2**32 (a 64-bit counter overflowing at bit 31 reads 2**32 and
    has not wrapped); a write to the counter starts it again from the written value.
    Counters that never leave 0 and were not enabled at the end are left out.
    """
    from .pmu.events import BY_NUMBER
    run = recs[0] if recs and recs[0].get("type") == "run" else {}
    n = run.get("counters") or 0
    series: dict[int, CounterSeries] = {}
    offset: dict[int, int] = {}
    last: dict[int, int] = {}                   # the last raw value seen
    sel = 0

    def get(c: int) -> CounterSeries:
        if c not in series:
            series[c] = CounterSeries(c, events=["CPU_CYCLES"] if c == CYCLE_COUNTER else [])
        return series[c]

    def point(c: int, icount: int, raw: int) -> None:
        last[c] = raw
        get(c).points.append((icount, raw + (offset.get(c, 0) if unwrap else 0)))

    def write(c: int, icount: int, raw: int) -> None:
        offset[c] = 0
        point(c, icount, raw)

    def event(c: int, number: int) -> None:
        ev = BY_NUMBER.get(number)
        name = ev.name if ev else f"event {number:#x}"
        s = get(c)
        if not s.events or s.events[-1] != name:
            s.events.append(name)

    cntr = {f"PMEVCNTR{i}_EL0": i for i in range(31)}
    cntr["PMCCNTR_EL0"] = CYCLE_COUNTER
    typer = {f"PMEVTYPER{i}_EL0": i for i in range(31)}
    for r in recs:
        t = r["type"]
        if t == "pmu_reg":
            reg, v = r["reg"], r["value"]
            c = cntr.get(reg, sel if reg == "PMXEVCNTR_EL0" else None)
            if c is not None:
                (write if r["dir"] == "w" else point)(c, r["icount"], v)
            elif r["dir"] == "w":
                c = typer.get(reg, sel if reg == "PMXEVTYPER_EL0" else None)
                if c is not None and c != CYCLE_COUNTER:
                    event(c, v & 0xFFFF)
                elif reg == "PMSELR_EL0":
                    sel = v & 0x1F
                elif reg == "PMCR_EL0":
                    for c in (range(n) if v & PMCR_P else ()):
                        write(c, r["icount"], 0)
                    if v & PMCR_C:
                        write(CYCLE_COUNTER, r["icount"], 0)
        elif t == "sample":
            for i, v in enumerate(r["evcntr"]):
                point(i, r["icount"], v)
            point(CYCLE_COUNTER, r["icount"], r["pmccntr"])
        elif t == "overflow":
            c, v = r["counter"], r["value"]
            prev = last.get(c)
            if unwrap and (v < 2**32 or (prev is not None and v < prev)):
                offset[c] = offset.get(c, 0) + (2**64 if prev is not None and prev >= 2**32 else 2**32)
                get(c).wraps += 1
            point(c, r["icount"], v)
            s = get(c)
            s.overflows.append(s.points[-1])
        elif t == "exit" and r.get("pmu"):
            p = r["pmu"]
            for i in range(p["n"]):
                event(i, p["evtyper"][i] & 0xFFFF)
                point(i, r["icount"], p["evcntr"][i])
            point(CYCLE_COUNTER, r["icount"], p["pmccntr"])
    enabled = next((r["pmu"]["pmcntenset"] for r in reversed(recs) if r["type"] == "exit" and r.get("pmu")), 0)
    return [series[c] for c in sorted(series)
            if series[c].points and (any(v for _, v in series[c].points) or (enabled >> c) & 1)]


def check_plot_size(width: int, height: int) -> None:
    for name, v in (("--width", width), ("--height", height)):
        if not PLOT_MIN_PIXELS <= v <= PLOT_MAX_PIXELS:
            raise UsageError(f"{name} must be {PLOT_MIN_PIXELS}..{PLOT_MAX_PIXELS} pixels (got {v})")


def plot_format(out: str, fmt: Optional[str] = None) -> str:
    """The image format: ``fmt``, else the output file's extension (.png, .svg)."""
    if os.path.isdir(out):
        raise VpmuError(f"-o {out}: cannot write (Is a directory)", EXIT_USAGE)
    if fmt is None:
        fmt = os.path.splitext(out)[1].lstrip(".").lower()
        if fmt not in PLOT_FORMATS:
            raise VpmuError(f"{out}: cannot tell the image format from the name; use --format "
                            f"{'|'.join(PLOT_FORMATS)} or a .png/.svg file", 2)
    if fmt not in PLOT_FORMATS:
        raise VpmuError(f"--format must be one of {', '.join(PLOT_FORMATS)} (got {fmt!r})", 2)
    return fmt


def plot(recs: list[dict], out: str, width: int = 1000, height: int = 600, *, fmt: Optional[str] = None,
         yscale: str = "linear", layout: str = "panels", unwrap: bool = True) -> None:
    """Counter values against retired instructions, as PNG or SVG (``fmt``, else from
    ``out``'s extension).  ``layout``: "panels" gives each counter its own axes (its own
    scale: no counter hides another), "overlay" draws them all on one with distinct line
    styles.  ``yscale``: linear, log or symlog.  Overflows are marked with a red x on their
    counter, PMU interrupts with a dashed vertical line; lines are labelled with the event."""
    fmt = plot_format(out, fmt)
    if yscale not in YSCALES:
        raise VpmuError(f"--yscale must be one of {', '.join(YSCALES)} (got {yscale!r})", 2)
    if layout not in LAYOUTS:
        raise VpmuError(f"--layout must be one of {', '.join(LAYOUTS)} (got {layout!r})", 2)
    check_plot_size(width, height)
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise VpmuError("vpmu trace plot needs matplotlib: pip install 'vpmu[plot]'", 2) from None
    series = counter_series(recs, unwrap=unwrap)
    pmu_irq = recs[0].get("pmu_irq", 23)
    irqs = [r["icount"] for r in recs if r["type"] == "irq" and r.get("intid") == pmu_irq]
    dpi = 100
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "vpmu-trace-plot", "font.size": 9}):
        fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
        ncols = 1
        if layout == "overlay" or not series:
            axes = [fig.add_subplot()] * max(len(series), 1)
        else:
            ncols = 1 if len(series) <= 3 else 2
            nrows = -(-len(series) // ncols)
            grid = fig.subplots(nrows, ncols, sharex=True, squeeze=False)
            axes = [ax for row in grid for ax in row]
            for ax in axes[len(series):]:
                ax.set_visible(False)
        styles = ["-", "--", ":", "-."]
        for k, (s, ax) in enumerate(zip(series, axes)):
            xs, ys = zip(*s.points)
            overlay = layout == "overlay"
            ax.step(xs, ys, where="post", label=s.label if overlay else "_nolegend_",
                    linestyle=styles[k % len(styles)] if overlay else "-",
                    linewidth=max(2.4 - 0.3 * k, 0.9) if overlay else 1.4)
            if s.overflows:
                ax.scatter(*zip(*s.overflows), marker="x", color="red", zorder=3,
                           label="overflow" if not overlay or k == 0 else None)
            if not overlay:
                ax.set_title(s.label + (f", unwrapped ({s.wraps} wrap{'s' * (s.wraps != 1)})" if s.wraps else ""),
                             fontsize=9)
        used = axes[:max(len(series), 1)]
        for ax in dict.fromkeys(used):
            for j, x in enumerate(irqs):
                ax.axvline(x, color="orange", linewidth=0.8, linestyle="--", label="PMU interrupt" if j == 0 else None)
            ax.set_yscale(yscale)
            ax.grid(True, linewidth=0.3)
            if layout == "panels" and ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize="small")
        for ax in dict.fromkeys(used[-ncols:]):        # the bottom panel of each column
            ax.set_xlabel("instructions retired")
        if layout == "overlay" and (series or irqs):
            used[0].set_ylabel("counter value" + (" (unwrapped)" if any(s.wraps for s in series) else ""))
            used[0].legend(loc="best", fontsize="small")
        fig.suptitle(f"{recs[0].get('image')}: counters" if series else
                     f"{recs[0].get('image')}: no counter values in this trace (run with --trace-sample N)")
        try:
            fig.savefig(out, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
        except OSError as e:
            raise VpmuError(f"-o {out}: cannot write ({e.strerror or e})", EXIT_USAGE) from None

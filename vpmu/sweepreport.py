"""The HTML report of a sweep (``vpmu sweep --report FILE.html``).

One self-contained file: inline CSS, the plots as inline SVG, no script and no reference to
anything outside the page, so it can be mailed, archived or opened offline.  It holds the
sweep's policies and options, then per guest a table (a row per policy: exit status,
instructions, every counter's final value under the event it counted; the policy's filter
items are its tooltip; a value that differs
from the baseline policy's - the first policy without filters - is marked and shows the
baseline's in its tooltip) and a plot (a horizontal bar per counter and policy on a symlog
axis, so zero, a few hundred and a few million are all readable).  The page is the same for
the same rows: the SVG ids are salted with a constant and no date is written.

The plots need matplotlib (``pip install 'vpmu[plot]'``).
"""
from __future__ import annotations

import html
import io
import os
from typing import Any, Optional, TextIO, Union

from .errors import UsageError
from .sweeps import SweepResult, SweepRow

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #1b1f24; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
.scroll { overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; }
th { background: #f6f8fa; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, monospace; }
td.changed { background: #fff1c2; font-weight: 600; }
td.error, tr.error td { color: #a40e26; }
.event { display: block; font-weight: normal; color: #57606a; font-size: 0.85em; }
.note { color: #57606a; font-size: 0.9em; }
figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
code { font-family: ui-monospace, monospace; background: #f6f8fa; padding: 0 0.2em; }
"""


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--report needs matplotlib for its plots: pip install 'vpmu[plot]'") from None


def baseline_policy(rows: SweepResult) -> Optional[str]:
    """The policy the others are compared with: the first one without filter items."""
    return next((r.policy for r in rows if not r.filters), None)


def _guests(rows: SweepResult) -> dict[str, list[SweepRow]]:
    out: dict[str, list[SweepRow]] = {}
    for r in rows:
        out.setdefault(r.image, []).append(r)
    return out


def guest_plot_svg(rows: list[SweepRow], width_in: float = 9.0) -> str:
    """One guest's counters, a bar per policy, as an ``<svg>`` element (text as text)."""
    require_matplotlib()
    import matplotlib
    from matplotlib.figure import Figure

    cols = SweepResult(rows).columns()
    policies = [r.policy for r in rows]
    n = max(len(cols), 1)
    bar = 0.8 / max(len(policies), 1)
    height_in = 1.2 + n * max(0.45, 0.22 * len(policies))
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "vpmu-sweep-report", "font.size": 9}):
        fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        for k, r in enumerate(rows):
            vals = {(c.index, c.event): c.value for c in r.counters}
            ys = [i - 0.4 + bar * (k + 0.5) for i in range(len(cols))]
            xs = [vals.get(key, 0) for key in cols]
            ax.barh(ys, xs, height=bar * 0.9, label=r.policy)
            if len(cols) * len(rows) <= 60:
                for x, y, key in zip(xs, ys, cols):
                    ax.annotate(f"{vals[key]:,}" if key in vals else "-", (x, y), xytext=(3, 0),
                                textcoords="offset points", va="center", fontsize=7)
        ax.set_yticks(range(len(cols)), [f"{e} ({'PMCCNTR' if i == 31 else f'PMEV{i}'})" for i, e in cols])
        ax.invert_yaxis()
        ax.set_xscale("symlog", linthresh=1)
        top = max((c.value for r in rows for c in r.counters), default=1)
        ax.set_xlim(0, max(top, 1) * 4)             # room for the value labels on a log scale
        ax.set_xlabel("final counter value (symlog)")
        ax.set_title(f"{rows[0].guest}: counters by policy")
        if not cols:
            ax.text(0.5, 0.5, "no counter was used", transform=ax.transAxes, ha="center")
        ax.legend(title="policy", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        buf = io.StringIO()
        # no date (the same rows give the same page) and no RDF block (it names web URIs)
        fig.savefig(buf, format="svg", metadata=dict.fromkeys(("Date", "Creator", "Format", "Type")))
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _cell(value: Any, cls: str = "", title: str = "") -> str:
    """A table cell; ``title`` is its tooltip."""
    attrs = (f' class="{cls}"' if cls else "") + (f' title="{html.escape(title)}"' if title else "")
    return f"<td{attrs}>{html.escape('' if value is None else str(value))}</td>"


def guest_table(rows: list[SweepRow], baseline: Optional[str]) -> str:
    cols = SweepResult(rows).columns()
    base = next((r for r in rows if r.policy == baseline), None)
    base_vals = {(c.index, c.event): c.value for c in base.counters} if base else {}
    head = "".join(f"<th>{'PMCCNTR' if i == 31 else f'PMEV{i}'}<span class=\"event\">{html.escape(e)}</span></th>"
                   for i, e in cols)
    out = ['<div class="scroll"><table>', f"<tr><th>policy</th><th>status</th><th>instructions</th>{head}</tr>"]
    for r in rows:
        vals = {(c.index, c.event): c.value for c in r.counters}
        cells = [_cell(r.policy, title=" ".join(r.filters) or "no filter"),
                 _cell(r.status, "num error" if r.error else "num", r.error), _cell(f"{r.instructions:,}", "num")]
        for key in cols:
            v = vals.get(key)
            changed = base is not None and r is not base and v != base_vals.get(key)
            cells.append(_cell("" if v is None else f"{v:,}", "num changed" if changed else "num",
                               f"{baseline}: {base_vals.get(key, '-')}" if changed else ""))
        out.append(('<tr class="error">' if r.error else "<tr>") + "".join(cells) + "</tr>")
    out.append("</table></div>")
    errs = [r for r in rows if r.error]
    if errs:
        out.append("<ul>" + "".join(f'<li class="error">{html.escape(r.policy)}: {html.escape(r.error)}</li>'
                                    for r in errs) + "</ul>")
    return "\n".join(out)


def report_html(rows: SweepResult, options: Optional[dict] = None, title: str = "vpmu sweep") -> str:
    """The whole page as a string."""
    if not isinstance(rows, SweepResult):
        rows = SweepResult(rows)
    baseline = baseline_policy(rows)
    guests = _guests(rows)
    policies: dict[str, tuple[str, ...]] = {}
    for r in rows:
        policies.setdefault(r.policy, r.filters)
    opts = ", ".join(f"<code>{html.escape(k)}={html.escape(str(v))}</code>" for k, v in (options or {}).items())
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        f"<h1>{html.escape(title)}: {len(guests)} guest{'s' * (len(guests) != 1)} &times; "
        f"{len(policies)} polic{'ies' if len(policies) != 1 else 'y'}</h1>",
        "<table>", "<tr><th>policy</th><th>KVM filter items, in order</th></tr>",
        *(f"<tr>{_cell(name)}{_cell(' '.join(items) or '(no filter)')}</tr>" for name, items in policies.items()),
        "</table>",
        f"<p class=\"note\">Run options: {opts or 'the defaults'}. "
        + (f"Values that differ from the baseline policy <code>{html.escape(baseline)}</code> are marked; "
           "hover for the baseline's value." if baseline else "No policy without filters: nothing is marked.")
        + f" {len(rows)} runs, {len(rows.errors())} with a runner error.</p>",
    ]
    for image, grows in guests.items():
        parts += [f'<h2 id="{html.escape(os.path.basename(image))}">{html.escape(grows[0].guest)}</h2>',
                  f'<p class="note">{html.escape(image)}</p>',
                  guest_table(grows, baseline),
                  f"<figure>{guest_plot_svg(grows)}</figure>"]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_report(rows: SweepResult, out: Union[str, "os.PathLike[str]", TextIO],
                 options: Optional[dict] = None) -> None:
    """Write the HTML report to a path or an open text file."""
    text = report_html(rows, options)
    if isinstance(out, (str, os.PathLike)):
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        out.write(text)

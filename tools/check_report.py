#!/usr/bin/env python3
"""Render a ``vpmu sweep --report`` page in headless Chromium and check what a reader sees.

Runs a small sweep (the demo and pmu_smoke guests under three policies), writes the HTML
report, screenshots it with Chromium (``--headless --screenshot``, no network: every host
name resolves to nothing) and checks the picture: the right size, not blank, and the plots
drawn (the bar colours of the first two policies are on the page, which only happens when
the inline SVG rendered).  ``--docs`` also writes the small palette PNG the README shows
(docs/sweep-report.png).

    .venv/bin/python tools/check_report.py [--guests guests/build] [--out DIR] [--docs]

Needs Chromium (Debian: ``apt-get install chromium``) and matplotlib.  Exit status 0 when the
page renders, 1 when a check fails, 2 when Chromium is missing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTH, HEIGHT = 1000, 1100
# matplotlib's first two default colours (tab:blue, tab:orange): the first two policies' bars
BAR_COLOURS = [(0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e)]


def browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def make_report(guest_dir: Path, out: Path) -> Path:
    import vpmu
    from vpmu.sweepreport import write_report
    # paths as short as they can be: the report shows them
    rows = vpmu.sweep([os.path.relpath(guest_dir / g) for g in ("demo.elf", "pmu_smoke.elf")],
                      {"none": [], "no-mispredicts": ["deny:BR_MIS_PRED"], "inst-only": ["allow:INST_RETIRED"]})
    page = out / "sweep-report.html"
    write_report(rows, str(page))
    return page


def screenshot(chrome: str, page: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}",
               f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if p.returncode != 0 or not png.exists():
        raise SystemExit(f"chromium failed (status {p.returncode}): {p.stderr.strip()[-500:]}")


def check(png: Path, width: int, height: int) -> list[str]:
    """What is wrong with the screenshot (an empty list when nothing is)."""
    from PIL import Image
    img = Image.open(png).convert("RGB")
    problems = []
    if img.size != (width, height):
        problems.append(f"screenshot is {img.size[0]}x{img.size[1]}, expected {width}x{height}")
    colours = img.getcolors(maxcolors=1 << 20) or []
    if len(colours) < 20:
        problems.append(f"the page looks blank ({len(colours)} colours)")
    counts = {c: n for n, c in colours}
    for rgb in BAR_COLOURS:
        near = sum(n for c, n in counts.items() if all(abs(a - b) <= 8 for a, b in zip(c, rgb)))
        if near < 200:
            problems.append(f"no plot bars in colour #{bytes(rgb).hex()} ({near} pixels): did the SVG render?")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--guests", type=Path, default=ROOT / "guests" / "build", help="built guests directory")
    ap.add_argument("--out", type=Path, default=None, help="directory for the page and the screenshot "
                                                           "(default: a temporary one)")
    ap.add_argument("--docs", action="store_true", help="also write docs/sweep-report.png (the README's picture)")
    args = ap.parse_args(argv)
    chrome = browser()
    if chrome is None:
        print("check_report: no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        page = make_report(args.guests, out)
        png = out / "sweep-report.png"
        screenshot(chrome, page, png, WIDTH, HEIGHT)
        problems = check(png, WIDTH, HEIGHT)
        for p in problems:
            print(f"check_report: {p}", file=sys.stderr)
        if problems:
            return 1
        print(f"report renders: {page} -> {png} ({WIDTH}x{HEIGHT}, plots drawn)")
        if args.docs:
            from PIL import Image
            small = Image.open(png).convert("RGB").quantize(colors=64)
            dest = ROOT / "docs" / "sweep-report.png"
            small.save(dest, optimize=True)
            print(f"wrote {dest} ({dest.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

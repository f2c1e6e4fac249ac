"""Screenshots of the dashboard on the demo organisation, in headless Chromium.

    python scripts/screenshot.py              # docs/images/overview.png (the README's)
    python scripts/screenshot.py --all DIR    # also every page, full length, into DIR
    make screenshot

The demo is built once into artifacts/screenshot/demo.db with a fixed seed and end date
(`poise demo --until 2026-10-01`), and the pages are shown over 2026Q3, so that a new
screenshot differs from the last one only where the dashboard changed. `poise ui` serves
it on a free loopback port; Debian's Chromium (/usr/bin/chromium, driven by Playwright)
takes the pictures at 1440 px wide. The README's image is the overview from the top to
the velocity-against-stability chart, reduced to a palette so that it stays small.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.headless import CHROMIUM, CHROMIUM_ARGS, full_page, serving, visit  # noqa: E402

UNTIL = "2026-10-01"
PERIOD = "2026Q3"
WIDTH = 1440
README_IMAGE = ROOT / "docs" / "images" / "overview.png"
# URL path -> the page's title and its own parameters (the retro: a team, and the last
# sprint of the demo's history)
PAGES = {
    "": ("Overview", ""),
    "delivery": ("Delivery", ""),
    "reliability": ("Reliability", ""),
    "incidents": ("Incidents", ""),
    "team_retro": ("Team retro", f"team=billing&sprint_end={UNTIL}"),
    "reports": ("Reports", ""),
    "data_sources": ("Data & sources", ""),
}
# Where the README's image ends: below the overview's first chart (velocity against stability).
README_BOTTOM = """() => {
    const chart = document.querySelector('[data-testid="stPlotlyChart"]');
    return chart ? Math.ceil(chart.getBoundingClientRect().bottom + 16) : null;
}"""


def demo_warehouse(folder: Path) -> str:
    """The demo organisation, built once (fixed seed and end date)."""
    database = folder / "demo.db"
    marker = folder / "demo.db.complete"
    url = f"sqlite:///{database}"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        database.unlink(missing_ok=True)
        print(f"building the demo into {database} ...", flush=True)
        command = [sys.executable, "-m", "poise.cli", "demo", "--db", url, "--until", UNTIL]
        built = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if built.returncode != 0:
            raise SystemExit(f"poise demo failed:\n{built.stderr[-2000:]}")
        marker.touch()
    return url


def shrink(path: Path, colours: int = 128) -> None:
    """Reduce a screenshot to a palette (flat UI colours survive it) to keep the file small."""
    from PIL import Image

    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT)
    reduced.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="warehouse URL (default: the demo, built once)")
    parser.add_argument("--out", type=Path, default=README_IMAGE, help="the README's image")
    parser.add_argument("--all", type=Path, metavar="DIR", help="every page, full length, here")
    parser.add_argument("--params", default=f"period={PERIOD}", help="URL parameters")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (scripts/install-system-deps.sh)")
    from playwright.sync_api import sync_playwright

    work = ROOT / "artifacts" / "screenshot"
    url = args.db or demo_warehouse(work)
    with serving(url, work / "streamlit.log") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            visit(page, f"{base}/?{args.params}", "Overview")
            page.set_viewport_size({"width": WIDTH, "height": 4000})  # the chart fully drawn
            page.wait_for_timeout(1000)
            bottom = page.evaluate(README_BOTTOM)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            full_page(page, args.out, height=bottom)
            shrink(args.out)
            print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KB")
            if args.all:
                args.all.mkdir(parents=True, exist_ok=True)
                for path, (title, own) in PAGES.items():
                    params = "&".join(p for p in (args.params, own) if p)
                    visit(page, f"{base}/{path}?{params}", title)
                    target = args.all / f"{path or 'overview'}.png"
                    full_page(page, target)
                    print(f"{target}: {target.stat().st_size / 1024:.0f} KB")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

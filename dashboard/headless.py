"""The dashboard served by `poise ui` and seen through a headless browser: what the browser
test (tests/test_browser.py) and the screenshot script (scripts/screenshot.py) share.

The browser side takes a Playwright page (any object with its `goto`, `wait_for_function`,
`evaluate`, `set_viewport_size` and `screenshot`); Playwright itself is a test dependency
and is not imported here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # Debian's (scripts/install-system-deps.sh)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The script has finished, the page is the one asked for, and every chart has been drawn.
FINISHED = """(title) => {
    const app = document.querySelector('[data-testid="stApp"]');
    const heading = document.querySelector('[data-testid="stMain"] h1');
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
    return app && app.getAttribute('data-test-script-state') === 'notRunning'
        && heading && heading.innerText.trim() === title
        && charts.filter(chart => chart.offsetParent !== null)
            .every(chart => chart.querySelector('.main-svg'));
}"""
# How long the page is: Streamlit scrolls inside its main block, so the window's own height
# says nothing; the main block's content (or the sidebar's, when longer) does.
PAGE_HEIGHT = """() => {
    const main = document.querySelector('[data-testid="stMainBlockContainer"]');
    const side = document.querySelector('[data-testid="stSidebarContent"]');
    const bottom = (e) => e ? e.getBoundingClientRect().top + e.scrollHeight : 0;
    return Math.ceil(Math.max(bottom(main), bottom(side)) + 40);
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
            return bool(answer.read() == b"ok")
    except OSError:
        return False


@contextmanager
def serving(
    url: str,
    log: Path,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    timeout: float = 120.0,
) -> Iterator[str]:
    """`poise ui --db URL` on a loopback port (a free one by default) until the block ends;
    yields its base address once it answers its health check. The process's output goes
    to `log`; POISE_DATABASE_URL and POISE_CONFIG of this process are not passed on."""
    port = port or free_port()
    environment = {
        k: v for k, v in os.environ.items() if k not in ("POISE_DATABASE_URL", "POISE_CONFIG")
    }
    environment.update(env or {})
    command = [sys.executable, "-m", "poise.cli", "ui", "--db", url, "--port", str(port), *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while not _healthy(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"poise ui did not start: {log.read_text()[-2000:]}")
                time.sleep(0.3)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def visit(page: Any, url: str, title: str, *, timeout_ms: int = 240_000) -> None:
    """Open `url` and wait until the page titled `title` has finished, charts drawn."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(FINISHED, arg=title, timeout=timeout_ms)
    time.sleep(0.5)  # Plotly finishes drawing after the script has finished


def full_page(page: Any, path: Path, *, height: int | None = None) -> None:
    """A screenshot of the whole page (or of its top `height` px): the window grows to
    the page's length first, then returns to 900 px."""
    width = page.viewport_size["width"]
    whole = int(page.evaluate(PAGE_HEIGHT))
    page.set_viewport_size({"width": width, "height": min(max(whole, 900), 12_000)})
    time.sleep(1.0)  # the charts redraw at the new size
    clip = {"x": 0, "y": 0, "width": width, "height": height} if height else None
    page.screenshot(path=str(path), clip=clip)
    page.set_viewport_size({"width": width, "height": 900})

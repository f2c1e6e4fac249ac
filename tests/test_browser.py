"""The dashboard in a real browser: `poise ui` serving the demo warehouse, Debian's Chromium
(headless, driven by Playwright) visiting every page by its URL. A page fails on any
Streamlit exception or error box; a screenshot of each is saved under
artifacts/screenshots/. A second server holds names and titles with HTML and script in
them: no script may run and no element may be made from them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dashboard_org
import pytest

from poise.warehouse import open_warehouse

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# URL path -> the page's title
PAGES = {
    "": "Overview",
    "delivery": "Delivery",
    "reliability": "Reliability",
    "incidents": "Incidents",
    "team_retro?team=billing": "Team retro",
    "reports": "Reports",
    "data_sources": "Data & sources",
}
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
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"needs Debian's chromium at {CHROMIUM} (scripts/install-system-deps.sh)"
    if os.environ.get("POISE_REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(url: str) -> Iterator[str]:
    """`poise ui` on a free loopback port, until the block ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("POISE_DATABASE_URL", "POISE_CONFIG")}
    log = SHOTS.parent / f"streamlit-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "poise.cli", "ui", "--db", url, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                        if answer.read() == b"ok":
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"poise ui did not start: {log.read_text()[-2000:]}")
                time.sleep(0.3)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def visit(page: Any, url: str, title: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(FINISHED, arg=title, timeout=240_000)
    time.sleep(0.5)  # charts draw after the script has finished


def screenshot(page: Any, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the window first."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))"
    )
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": min(max(height + 40, 900), 10_000)})
    time.sleep(0.5)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": 900})


@pytest.fixture(scope="module")
def hostile_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("hostile-browser")
    url = f"sqlite:///{folder / 'hostile.db'}"
    engine = open_warehouse(url)
    dashboard_org.build(engine, folder / "files", hostile=True)
    engine.dispose()
    return url


def test_every_page_in_chromium(dashboard_demo_url: str) -> None:
    require_chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serving(dashboard_demo_url) as base, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1440, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        for path, title in PAGES.items():
            visit(page, f"{base}/{path}", title)
            errors = page.locator(ERRORS)
            assert errors.count() == 0, f"/{path}: {errors.first.inner_text()[:500]}"
            navigation = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
            assert len(navigation) == len(PAGES), navigation  # app.py's router, not pages/
            name = path.split("?")[0] or "overview"
            screenshot(page, SHOTS / f"{name}.png")
            assert (SHOTS / f"{name}.png").stat().st_size > 20_000
        # the filters travel in the URL and from page to page
        visit(page, f"{base}/delivery?team=growth&period=90d", "Delivery")
        assert (
            "team growth"
            in page.locator(
                '[data-testid="stMain"] [data-testid="stCaptionContainer"]'
            ).first.inner_text()
        )
        page.locator('[data-testid="stSidebarNav"] a', has_text="Incidents").click()
        page.wait_for_function(FINISHED, arg="Incidents", timeout=240_000)
        assert "team=growth" in page.url and "period=90d" in page.url
        assert not problems, problems


def test_hostile_text_stays_text_in_chromium(hostile_warehouse: str) -> None:
    require_chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    beta = dashboard_org.names(True)["beta"]
    with serving(hostile_warehouse) as base, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1440, "height": 900})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        visits = {
            "incidents": "Incidents",
            "delivery": "Delivery",
            "reliability": "Reliability",
            "team_retro?team=" + urllib.request.quote(beta): "Team retro",
            "?team=" + urllib.request.quote("<img src=x onerror=alert(7)>"): "Overview",
        }
        for path, title in visits.items():
            visit(page, f"{base}/{path}", title)
            time.sleep(1.0)
            assert page.locator(ERRORS).count() == 0
            assert page.locator('img[src="x"]').count() == 0
            assert page.locator("script:has-text('alert')").count() == 0
        screenshot(page, SHOTS / "hostile-overview.png")
        warning = page.locator('[data-testid="stAlertContentWarning"]').first.inner_text()
        assert "No team named '<img src=x onerror=alert(7)>'" in warning
        visit(page, f"{base}/incidents", "Incidents")
        # shown, as written, on the timeline's axis (Plotly may still be drawing it)
        page.wait_for_function(
            """(name) => [...document.querySelectorAll('.js-plotly-plot text')]
                .some(text => text.textContent === name)""",
            arg='db<img src=x onerror="alert(1)">',
            timeout=60_000,
        )
        assert not dialogs, dialogs

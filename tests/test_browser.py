"""The dashboard in a real browser: `poise ui` serving the demo warehouse, Debian's Chromium
(headless, driven by Playwright) visiting every page by its URL. A page fails on any
Streamlit exception or error box; a screenshot of each is saved under
artifacts/screenshots/. A second server holds names and titles with HTML and script in
them: no script may run and no element may be made from them.
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dashboard_org
import pytest

from dashboard import charts, headless
from dashboard.headless import CHROMIUM, CHROMIUM_ARGS, FINISHED, visit
from poise.warehouse import open_warehouse

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
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
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"needs Debian's chromium at {CHROMIUM} (scripts/install-system-deps.sh)"
    if os.environ.get("POISE_REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def serving(url: str) -> Iterator[str]:
    """`poise ui` on a free loopback port, until the block ends (its output beside the
    screenshots)."""
    port = headless.free_port()
    with headless.serving(url, SHOTS.parent / f"streamlit-{port}.log", port=port) as base:
        yield base


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def hostile_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("hostile-browser")
    url = f"sqlite:///{folder / 'hostile.db'}"
    engine = open_warehouse(url)
    dashboard_org.build(engine, folder / "files", hostile=True)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium for this module (Playwright's sync API allows one at a time)."""
    require_chromium()
    with browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def demo_site(dashboard_demo_url: str, chromium: Any) -> Iterator[tuple[str, Any]]:
    """One `poise ui` on the demo warehouse for this module's tests of it: a server each
    cost a start and cold caches again (half a minute of the suite)."""
    with serving(dashboard_demo_url) as base:
        yield base, chromium


def test_every_page_in_chromium(demo_site: tuple[str, Any]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    base, chromium = demo_site
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
        headless.full_page(page, SHOTS / f"{name}.png")
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


def test_hostile_text_stays_text_in_chromium(hostile_warehouse: str, chromium: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    beta = dashboard_org.names(True)["beta"]
    with serving(hostile_warehouse) as base:
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
        headless.full_page(page, SHOTS / "hostile-overview.png")
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


# Text of a figure card that Streamlit cuts with "…": wider than the box it is shown in.
CUT_CARD_TEXT = """() => [...document.querySelectorAll(
        '[data-testid="stMetric"] .stMarkdownEllipsis, [data-testid="stMetric"] .stMarkdownEllipsis p')]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""
SIDEBAR_OPEN = """() => document.querySelector('[data-testid="stSidebar"]')
    .getAttribute('data-collapsed') === 'false'"""


def test_a_laptop_and_a_phone_read_the_cards_and_the_page(demo_site: tuple[str, Any]) -> None:
    """On a 1024 px laptop (sidebar open) five cards in columns were 100 px each, cut to
    "Deploys p…" over "1…"; on a 390 px phone the sidebar, kept open, covered the page."""
    base, chromium = demo_site
    page = chromium.new_page(viewport={"width": 1024, "height": 900})
    visit(page, f"{base}/delivery", "Delivery")
    assert page.evaluate(SIDEBAR_OPEN)
    assert page.evaluate(CUT_CARD_TEXT) == []
    phone = chromium.new_page(viewport={"width": 390, "height": 844})
    visit(phone, f"{base}/data_sources", "Data & sources")
    assert not phone.evaluate(SIDEBAR_OPEN)
    assert phone.evaluate(CUT_CARD_TEXT) == []


# Words a chart writes over its plot (point labels, annotations, panel titles) that overlap
# one another or run past the chart's edge, in every drawn chart showing the text `marker`;
# null until `count` such charts are drawn. The hint's box and the plot area's come too.
CROWDED_WORDS = """([marker, count, hint]) => {
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .filter(chart => chart.offsetParent !== null && chart.querySelector('.main-svg'))
        .filter(chart => [...chart.querySelectorAll('text')]
            .some(text => text.textContent.includes(marker)));
    if (charts.length < count) return null;
    const problems = [];
    for (const chart of charts) {
        const svg = chart.querySelector('.main-svg').getBoundingClientRect();
        const texts = [...chart.querySelectorAll('.annotation-text, .textpoint text')]
            .filter(text => text.textContent.trim())
            .map(text => [text.textContent, text.getBoundingClientRect()]);
        texts.forEach(([words, box], i) => {
            if (box.left < svg.left - 1 || box.right > svg.right + 1)
                problems.push(`"${words}" runs past the chart's edge`);
            for (const [other, next] of texts.slice(i + 1))
                if (box.left < next.right && next.left < box.right
                        && box.top < next.bottom && next.top < box.bottom)
                    problems.push(`"${words}" overlaps "${other}"`);
        });
        const note = texts.find(([words]) => words === hint);
        const plot = chart.querySelector('.nsewdrag');
        if (note && note[1].bottom > plot.getBoundingClientRect().top)
            problems.push(`"${hint}" lies on the plot`);
    }
    return problems;
}"""


def crowded_words(page: Any, marker: str, count: int = 1) -> list[str]:
    """What `CROWDED_WORDS` finds once the charts showing `marker` are drawn. Streamlit
    draws a chart only once it is in the window, so the window first grows to the page."""
    width = page.viewport_size["width"]
    height = min(int(page.evaluate(headless.PAGE_HEIGHT)), 12_000)
    page.set_viewport_size({"width": width, "height": height})
    found = page.wait_for_function(CROWDED_WORDS, arg=[marker, count, charts.HINT], timeout=60_000)
    return list(found.json_value())


def test_chart_words_keep_apart_on_a_phone_and_a_laptop(demo_site: tuple[str, Any]) -> None:
    """On a 390 px phone the response-time panels' titles ran into each other ("detect,
    median (min)acknowledge…"), worse for long causes; at 1024 px and on a phone two teams'
    names touched on the velocity chart, whose hint lay on its elite band; at 1024 px the
    longest names of what burned the budget ran past their half of the page."""
    base, chromium = demo_site
    phone = chromium.new_page(viewport={"width": 390, "height": 844})
    visit(phone, f"{base}/incidents", "Incidents")
    assert crowded_words(phone, "acknowledge") == []
    phone.get_by_role("tab", name="By cause").click()
    assert crowded_words(phone, "acknowledge") == []
    visit(phone, base, "Overview")
    assert crowded_words(phone, "weekly") == []
    laptop = chromium.new_page(viewport={"width": 1024, "height": 900})
    visit(laptop, base, "Overview")
    assert crowded_words(laptop, "weekly") == []
    visit(laptop, f"{base}/reliability", "Reliability")
    assert crowded_words(laptop, "share of the error budget", count=2) == []

"""The four renderers on a hand-made report: structure, exact values, pages, no outside requests."""

from __future__ import annotations

import io
import os
import re
import shutil
import warnings
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from dashboard.headless import CHROMIUM, CHROMIUM_ARGS
from reports import render_document
from reports.charts import render_svg
from reports.formats import keep_units
from reports.guardrail_sections import _days_left
from reports.html import render_html
from reports.incident_sections import _postmortem
from reports.markdown import render_markdown
from reports.model import (
    Band,
    BulletList,
    Cell,
    Chart,
    ChartKind,
    Column,
    Definition,
    Definitions,
    Evidence,
    Fmt,
    Paper,
    Paragraph,
    Report,
    Section,
    Series,
    Table,
)
from reports.sections import _lone_week, _partial_caption

WEEKS = tuple(f"07-{day:02d}" for day in range(1, 29, 7))


def sample_report() -> Report:
    figures = Table(
        "Headline figures",
        (
            Column("figure", "Figure"),
            Column("now", "This quarter", Fmt.DECIMAL1),
            Column("tier", "Tier", Fmt.TIER),
        ),
        (
            ("Deployments per week", 21.2857, "high"),
            ("Change fail rate", Cell(0.0912, Fmt.PERCENT1), "elite"),
            ("Change lead time, median (h)", None, "insufficient data"),
        ),
        "Headline/figures",
    )
    trend = Chart(
        "Deployments per week",
        ChartKind.LINE,
        WEEKS,
        (Series("payments", (3.0, 4.0, None, 6.0)), Series("search", (1.0, 2.0, 2.0, 1.0))),
        "deployments",
        Fmt.COUNT,
        "Trend deployments",
        bands=(Band(1, 2, "release freeze"),),
    )
    slos = Chart(
        "SLO attainment",
        ChartKind.HBAR,
        ("checkout-availability", "search-latency"),
        (Series("attainment", (0.99912, 0.998)),),
        "attainment",
        Fmt.PERCENT3,
        "SLO attainment",
        notes=("target 99.900 %", "target 99.900 %"),
    )
    empty = Table(
        "Freezes", (Column("service", "Service"),), (), "Freezes", empty_text="No freezes."
    )
    evidence = pd.DataFrame(
        {
            "id": ["d1", "d2"],
            "deployed_at": pd.to_datetime(["2026-07-01T10:00:00Z", "2026-07-02T11:30:00Z"]),
            "lead_hours": [1.5, None],
        }
    )
    return Report(
        title="Quarterly report 2026Q3",
        subtitle="Whole organisation",
        period_label="2026Q3: 1 July – 30 September 2026 (UTC)",
        generated_at=datetime(2026, 10, 2, 8, 0, tzinfo=UTC),
        sections=[
            Section(
                "Executive summary",
                "summary",
                [Paragraph("Deployment frequency rose 18 % to 21.3 per week.", "lead"), figures],
            ),
            Section(
                "Trends",
                "trends",
                [trend, slos],
                [Section("Team payments", "team-payments", [empty, BulletList(("a <b> & c",))])],
            ),
            Section(
                "Definitions",
                "definitions",
                [Definitions((Definition("Deployment frequency", "production deployments"),))],
            ),
        ],
        evidence=[Evidence("Deployments", "Rows deployments", evidence, "every deployment")],
        facts=(("Teams", "2"),),
    )


class _Resources(HTMLParser):
    """Every attribute of the page that a browser would fetch on its own."""

    FETCHING: ClassVar[set[tuple[str, str]]] = {
        ("img", "src"),
        ("script", "src"),
        ("link", "href"),
        ("iframe", "src"),
        ("source", "src"),
        ("video", "src"),
        ("audio", "src"),
        ("embed", "src"),
        ("object", "data"),
        ("image", "href"),
        ("use", "href"),
        ("image", "xlink:href"),
        ("use", "xlink:href"),
    }

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if (tag, name) in self.FETCHING and value and not value.startswith("#"):
                self.found.append(f"<{tag} {name}={value}>")


def outside_references(html: str) -> list[str]:
    parser = _Resources()
    parser.feed(html)
    found = parser.found
    found += re.findall(r"url\(\s*['\"]?(?!#)[^)]*\)", html)
    found += re.findall(r"@import", html)
    found += re.findall(r"<!DOCTYPE svg[^>]*>", html)
    if "script" in parser.tags:
        found.append("<script>")
    return found


def test_html_is_self_contained_and_keeps_exact_values() -> None:
    html = render_html(sample_report())
    assert outside_references(html) == []
    assert html.count("<svg") == 2  # both charts inline
    assert 'data-value="21.2857"' in html and ">21.3<" in html
    assert 'data-value="0.0912"' in html and ">9.1\u00a0%<" in html  # unit kept on the line
    assert "a &lt;b&gt; &amp; c" in html  # text is escaped, never markup
    assert "No freezes." in html
    assert '<td class="tier tier-high"' in html and "<span>high</span>" in html  # word + colour
    assert 'href="#team-payments"' in html and 'id="team-payments"' in html


def test_outside_reference_scan_catches_what_it_must() -> None:
    bad = '<img src="https://x.example/a.png"><style>a{background:url(http://x/y)}</style>'
    assert len(outside_references(bad)) == 2


def test_pdf_has_title_toc_page_numbers_and_paper_sizes() -> None:
    require_pdf()
    report = sample_report()
    for paper, size in ((Paper.A4, (595, 842)), (Paper.LETTER, (612, 792))):
        reader = PdfReader(io.BytesIO(render_document(report, "pdf", paper)))
        box = reader.pages[0].mediabox
        assert (round(float(box.width)), round(float(box.height))) == size
        pages = [page.extract_text() for page in reader.pages]
        assert "Quarterly report 2026Q3" in pages[0] and "Page" not in pages[0]
        assert pages[1].startswith("Contents")
        toc = dict(re.findall(r"^(\d[\d.]* [A-Z][\w ]+?)[ .]+(\d+)$", pages[1], re.M))
        assert set(toc) == {"1 Executive summary", "2 Trends", "2.1 Team payments", "3 Definitions"}
        for entry, number in toc.items():  # each TOC entry points at the page it is on
            heading = entry.split(" ", 1)[1]
            assert heading in pages[int(number) - 1], (entry, number)
        last = len(pages)
        assert all(f"Page {n} of {last}" in pages[n - 1] for n in range(2, last + 1))
        assert "21.3" in "".join(pages) and "9.1\u00a0%" in "".join(pages)
        assert reader.outline, "headings become PDF bookmarks"


def test_xlsx_has_a_sheet_per_table_and_the_rows_behind() -> None:
    book = load_workbook(io.BytesIO(render_document(sample_report(), "xlsx")))
    assert book.sheetnames == [
        "Report",
        "Headline-figures",
        "Trend deployments",
        "SLO attainment",
        "Freezes",
        "Rows deployments",
    ]
    headline = list(book["Headline-figures"].iter_rows(values_only=True))
    assert headline[0] == ("Figure", "This quarter", "Tier")
    assert headline[1] == ("Deployments per week", 21.2857, "high")  # exact, not rounded
    assert headline[2][1] == 0.0912 and headline[3][1] is None
    assert book["Headline-figures"]["B3"].number_format == "0.0%"
    rows = list(book["Rows deployments"].iter_rows(values_only=True))
    assert rows[0] == ("id", "deployed_at", "lead_hours")
    utc_wall_clock = datetime(2026, 7, 1, 10, 0, tzinfo=UTC).replace(tzinfo=None)
    assert rows[1] == ("d1", utc_wall_clock, 1.5)
    assert rows[2][2] is None
    trend = list(book["Trend deployments"].iter_rows(values_only=True))
    assert trend[0] == (None, "payments", "search") and trend[3] == ("07-15", None, 2.0)
    text = [cell for row in book["Report"].iter_rows(values_only=True) for cell in row if cell]
    assert "Deployment frequency rose 18 % to 21.3 per week." in text
    assert "Rows deployments" in text


def test_control_characters_become_a_replacement_mark_in_xlsx_and_stay_elsewhere() -> None:
    """An alert's colour codes in an incident title: Excel cells cannot hold them."""
    title = "Disk \x1b[31mfull\x07"
    incidents = Table(
        "Incidents", (Column("title", "Title"),), ((title,),), "Incidents\x1b of team"
    )
    rows = pd.DataFrame({"id": ["i1"], "title": [title]})
    report = Report(
        title="Quarterly report 2026Q3",
        subtitle="Team \x1fops",
        period_label="2026Q3",
        generated_at=datetime(2026, 10, 2, 8, 0, tzinfo=UTC),
        sections=[Section("Incidents", "incidents", [Paragraph(f"Worst: {title}"), incidents])],
        evidence=[Evidence("Incidents", "Rows incidents", rows, "every incident")],
    )
    book = load_workbook(io.BytesIO(render_document(report, "xlsx")))
    assert book.sheetnames == ["Report", "Incidents- of team", "Rows incidents"]
    shown = "Disk \ufffd[31mfull\ufffd"
    assert list(book["Incidents- of team"].iter_rows(values_only=True))[1] == (shown,)
    assert list(book["Rows incidents"].iter_rows(values_only=True))[1] == ("i1", shown)
    text = [cell for row in book["Report"].iter_rows(values_only=True) for cell in row if cell]
    assert f"Worst: {shown}" in text and "Team \ufffdops" in text
    assert "Disk \x1b\\[31mfull\x07" in render_markdown(report)  # text keeps them


def test_markdown_tables_and_escaping() -> None:
    markdown = render_markdown(sample_report())
    assert markdown.startswith("# Quarterly report 2026Q3\n")
    assert "| Figure | This quarter | Tier |\n|---|---:|---|\n" in markdown
    assert "| Deployments per week | 21.3 | high |" in markdown
    assert "| Change fail rate | 9.1 % | elite |" in markdown
    assert "| Change lead time, median (h) | no data | insufficient data |" in markdown
    assert "| 07-15 | no data | 2 |" in markdown  # a chart becomes the table of its numbers
    assert "- a \\<b\\> & c" in markdown
    assert "### Team payments" in markdown and "*No freezes.*" in markdown


def _missing(message: str) -> None:
    if os.environ.get("POISE_REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def require_pdf() -> None:
    """WeasyPrint needs Pango from the system (scripts/install-system-deps.sh)."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as exc:
        _missing(f"PDF export needs WeasyPrint and Pango ({exc}): scripts/install-system-deps.sh")


def require_chromium() -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        _missing(f"needs Debian's chromium at {CHROMIUM} (scripts/install-system-deps.sh)")


def test_html_in_headless_chromium_makes_no_request(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    path = tmp_path / "report.html"
    path.write_bytes(render_document(sample_report(), "html"))
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.route(lambda url: not url.startswith("file:"), lambda route: route.abort())
            page.goto(path.as_uri(), wait_until="networkidle")
            assert page.locator("svg").count() == 2
            assert page.locator("h1").first.inner_text() == "Quarterly report 2026Q3"
            page.pdf(path=str(tmp_path / "printed.pdf"), format="A4")  # the browser can print it
        finally:
            browser.close()
    assert requests == [path.as_uri()]
    assert PdfReader(tmp_path / "printed.pdf").pages


def test_numbers_keep_their_units_on_the_line() -> None:
    assert keep_units("fell 14 % to 2.0 h; 99.918 %–99.988 %, −1.2 pts") == (
        "fell 14\u00a0% to 2.0\u00a0h; 99.918\u00a0%–99.988\u00a0%, −1.2\u00a0pts"
    )
    assert keep_units("3 hosts, 2 h-ish") == "3 hosts, 2 h-ish"  # only units, whole words


def test_a_chart_with_words_shows_them_instead_of_a_drawing() -> None:
    lone = Chart(
        "Change fail rate per week",
        ChartKind.LINE,
        ("1 Sep", "8 Sep"),
        (Series("rate", (None, 0.2)),),
        "failed share",
        Fmt.PERCENT1,
        "Trend cfr",
        words="Only the week starting 8 Sep has 5 or more deployments behind this figure.",
    )
    assert lone.points == 1
    report = sample_report()
    report.sections[0].blocks.append(lone)
    html = render_html(report)
    figure = html.split('data-sheet="Trend cfr"', 1)[1].split("</figure>", 1)[0]
    assert "<svg" not in figure
    assert "Only the week starting 8 Sep has 5 or more deployments" in figure
    markdown = render_document(report, "md").decode()
    assert "*Only the week starting 8 Sep has 5 or more deployments" in markdown
    assert "Trend cfr" in load_workbook(io.BytesIO(render_document(report, "xlsx"))).sheetnames


def test_lone_week_sentence() -> None:
    labels = ("1 Sep", "8 Sep", "15 Sep")
    assert _lone_week(labels, (None, 0.2, None), Fmt.PERCENT1, "deployments", 5) == (
        "Only the week starting 8 Sep has 5 or more deployments behind this figure: 20.0 %. "
        "One week makes no trend, so no chart is drawn; every other week is left blank for "
        "too small a sample, and the quarter's figure is in the scorecard."
    )
    assert _lone_week(labels, (1.0, 2.0, None), Fmt.DECIMAL1, "changes", 5) == ""
    assert _lone_week(labels, (None, None, None), Fmt.DECIMAL1, "changes", 5) == ""


def _weekly(kind: ChartKind, values: tuple[float | None, ...], days: tuple[float, ...]) -> Chart:
    labels = tuple(f"w{index}" for index in range(len(values)))
    return Chart("Per week", kind, labels, (Series("s", values),), "n", Fmt.COUNT, "W", x_days=days)


def test_parts_of_weeks_are_drawn_pale_or_hollow_and_said() -> None:
    """A quarter's first and last buckets hold parts of weeks (1–5 Jul, 28–30 Sep): drawn as
    full bars they read as dips, so they are pale (bars) or open (line markers), with a
    legend entry saying so, as on the dashboard."""
    whole = (7.0, 7.0, 7.0)
    clipped = (5.0, 7.0, 3.0)
    for kind in (ChartKind.BAR, ChartKind.STACKED):
        pale = render_svg(_weekly(kind, (60.0, 115.0, 55.0), clipped))
        assert pale.count("fill-opacity: 0.4") >= 2  # the two partial bars (and the key)
        assert "pale bar:" in pale and "part of a week" in pale
        plain = render_svg(_weekly(kind, (60.0, 115.0, 55.0), whole))
        assert "fill-opacity" not in plain and "part of a week" not in plain
    hollow = render_svg(_weekly(ChartKind.LINE, (5.0, 6.0, 3.0), clipped))
    assert "fill: #ffffff; stroke: #0072b2" in hollow and "open marker:" in hollow
    solid = render_svg(_weekly(ChartKind.LINE, (5.0, 6.0, 3.0), whole))
    assert "fill: #ffffff; stroke: #0072b2" not in solid and "part of a week" not in solid
    # a blank partial week (too small a sample) draws nothing, so nothing needs explaining
    blank = render_svg(_weekly(ChartKind.LINE, (None, 6.0, 4.0), (5.0, 7.0, 7.0)))
    assert "part of a week" not in blank


def test_a_weekly_charts_table_says_how_many_days_each_week_holds() -> None:
    table = _weekly(ChartKind.BAR, (60.0, 115.0, 55.0), (5.0, 7.0, 3.0)).as_table()
    assert [column.title for column in table.columns] == ["", "s", "Days"]
    assert table.rows == (("w0", 60.0, 5.0), ("w1", 115.0, 7.0), ("w2", 55.0, 3.0))
    markdown = render_markdown(
        Report("R", "S", "P", datetime(2026, 10, 2, tzinfo=UTC), [Section("T", "t", [table])])
    )
    assert "| w0 | 60 | 5 |" in markdown


def test_links_read_short_and_only_web_addresses_are_links() -> None:
    url = "https://wiki.example.com/postmortems/billing-api-i0073"
    table = Table(
        "Most significant incidents",
        (Column("id", "Incident"), Column("pm", "Postmortem", Fmt.LINK)),
        (("i1", url), ("i2", "javascript:alert(1)"), ("i3", Cell("none linked", Fmt.TEXT))),
        "Significant incidents",
    )
    report = Report("R", "S", "P", datetime(2026, 10, 2, tzinfo=UTC), [Section("T", "t", [table])])
    html = render_html(report)
    assert f'<a href="{url}">read</a>' in html  # not the address broken over four lines
    assert f'data-value="{url}"' in html
    assert "javascript:" not in html.replace('data-value="javascript:alert(1)"', "")
    assert "not a web link" in html and "none linked" in html
    assert f"| i1 | {url} |" in render_markdown(report)  # a wiki and a workbook keep the URL
    rows = list(
        load_workbook(io.BytesIO(render_document(report, "xlsx")))[
            "Significant incidents"
        ].iter_rows(values_only=True)
    )
    assert rows[1] == ("i1", url)


def test_postmortems_that_are_not_web_addresses_are_left_out_everywhere() -> None:
    assert _postmortem(" https://wiki.example/pm/1 ") == "https://wiki.example/pm/1"
    assert _postmortem("JavaScript:alert(1)") == Cell("not a web link", Fmt.TEXT)
    assert _postmortem("data:text/html,<b>x</b>") == Cell("not a web link", Fmt.TEXT)
    assert _postmortem(None) == Cell("none linked", Fmt.TEXT)
    assert _postmortem(float("nan")) == Cell("none linked", Fmt.TEXT)


def test_certificate_days_left_read_as_whole_days_or_words() -> None:
    assert _days_left(12.04) == 12 and _days_left(139.6) == 140
    assert _days_left(-3.03) == Cell("expired 3 days ago", Fmt.TEXT)
    assert _days_left(-1.2) == Cell("expired 1 day ago", Fmt.TEXT)
    assert _days_left(-0.2) == Cell("expired less than a day ago", Fmt.TEXT)
    assert _days_left(0.5) == Cell("less than a day", Fmt.TEXT)
    assert _days_left(float("nan")) is None


def _tick_labels(svg: str, axis: str) -> list[str]:
    """The tick labels of one axis ('x' or 'y') of a rendered chart, in order."""
    ticks = re.split(rf'<g id="{axis}tick_\d+">', svg)[1:]
    return [re.search(r">([^<>]*)</text>", tick).group(1) for tick in ticks]  # type: ignore[union-attr]


def test_a_small_count_is_ticked_in_whole_numbers() -> None:
    """Two to four deployments a week: ticks at halves printed as counts read 0, 0, 1, 1, 2."""
    svg = render_svg(_weekly(ChartKind.BAR, (2.0, 4.0, 1.0), (7.0, 7.0, 7.0)))
    labels = _tick_labels(svg, "y")
    assert labels == sorted(set(labels), key=labels.index) and "4" in labels
    assert [int(label) for label in labels] == sorted(int(label) for label in labels)
    hours = Chart(
        "Lead", ChartKind.LINE, ("a", "b"), (Series("s", (0.2, 0.9)),), "h", Fmt.DECIMAL1, "L"
    )
    assert "0.2" in _tick_labels(render_svg(hours), "y")  # a measure keeps its fractions


def test_a_part_of_a_week_without_deployments_is_said_to_have_none() -> None:
    """A pale bar is explained; a part of a week with nothing in it has no bar to explain."""
    starts = pd.to_datetime(["2026-07-01", "2026-07-06", "2026-09-28"], utc=True)
    ends = pd.to_datetime(["2026-07-06", "2026-07-13", "2026-10-01"], utc=True)
    scope = pd.DataFrame({"week_end": ends, "deployments": [2, 5, 0]}, index=starts)
    assert _partial_caption(scope, (5.0, 7.0, 3.0)) == (
        "1–5 Jul (5 days) holds only part of a week, so its bar is drawn pale: fewer "
        "deployments there are fewer days, not a dip. 28–30 Sep (3 days), a part of a week, "
        "had no deployment."
    )
    scope["deployments"] = [2, 5, 1]
    assert _partial_caption(scope, (5.0, 7.0, 3.0)).startswith(
        "1–5 Jul (5 days) and 28–30 Sep (3 days) hold only part of a week, so their bars are"
    )
    assert _partial_caption(scope, (7.0, 7.0, 7.0)) == ""


def test_a_long_name_is_cut_on_a_chart_and_the_chart_keeps_its_size() -> None:
    """A 200-character team or SLO name (imported names have no shorter bound) took the
    whole width: matplotlib collapsed the plot to nothing ("axes sizes collapsed to zero")."""
    name = "checkout-availability-" + "x" * 178
    chart = Chart(
        "Budgets",
        ChartKind.HBAR,
        (name, "short"),
        (Series(name, (0.5, 0.9)),),
        "b",
        Fmt.PERCENT1,
        "B",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the collapse is only a warning
        svg = render_svg(chart)
    assert name not in svg
    assert _tick_labels(svg, "y") == [f"{name[:39]}…: 50.0 %", "short: 90.0 %"]


def test_a_name_the_chart_font_cannot_draw_stays_text_without_a_warning() -> None:
    """A team or SLO named with an emoji: matplotlib measured it with DejaVu Sans and
    printed "UserWarning: Glyph 128640 (\\N{ROCKET}) missing from font(s) DejaVu Sans"
    under `poise report`; the SVG keeps the text for the reader's fonts to draw."""
    chart = Chart(
        "Budget left",
        ChartKind.HBAR,
        ("🚀 launches-availability", "checkout-availability"),
        (Series("budget", (0.5, 0.2)),),
        "budget left",
        Fmt.PERCENT1,
        "budget",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = render_svg(chart)
    assert "🚀 launches-availability" in svg

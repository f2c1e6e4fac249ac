"""The quarterly report of a real (demo) warehouse: every format shows `poise metrics`' figures.

The demo organisation is built once for the module into a SQLite file; `poise metrics`
prints its JSON through the real CLI, and each report format is read back the way a person
or a program would read it: text out of the PDF, cells out of the HTML tables, values out of
the workbook, pipe tables out of the Markdown.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from test_reports_render import (
    CHROMIUM,
    CHROMIUM_ARGS,
    outside_references,
    require_chromium,
    require_pdf,
)

from metrics import Period, Scope, Settings
from metrics.glossary import TERMS, help_text
from metrics.trends import weekly_trends
from metrics.wording import hours_words
from poise.cli import main
from poise.demo import build_demo
from poise.warehouse import open_warehouse
from reports import render_document
from reports.builder import build_report
from reports.formats import display, keep_units
from reports.model import Chart, Fmt, Paper, Paragraph, Report, Table
from reports.pdf import laid_out

QUARTER = "2026Q3"
UNTIL = datetime(2026, 10, 1, tzinfo=UTC)
HEADLINES = (  # row of the headline table, path in the scorecard, format
    ("Deployment frequency (per week)", ("dora", "deployment_frequency", "per_week"), Fmt.DECIMAL1),
    ("Change lead time, median", ("dora", "lead_time", "median_hours"), Fmt.HOURS),
    ("Change fail rate", ("dora", "change_failure_rate", "rate"), Fmt.PERCENT1),
    (
        "Failed deployment recovery time, median",
        ("dora", "recovery_time", "median_hours"),
        Fmt.HOURS,
    ),
    ("Rework rate", ("dora", "rework_rate", "rate"), Fmt.PERCENT1),
    ("Incidents started", ("incidents", "count"), Fmt.COUNT),
    ("Time to acknowledge, median", ("incidents", "mtta_median_minutes"), Fmt.MINUTES),
    ("Time to resolve, median", ("incidents", "mttr_median_hours"), Fmt.HOURS),
)


def same(value: Any) -> Any:
    """A figure as the workbook holds it: openpyxl writes 16 significant digits (Excel itself
    keeps 15), so a float comes back within one part in 10^15."""
    return pytest.approx(value, rel=1e-15, abs=0) if isinstance(value, float) else value


def dig(card: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        card = card[key]
    return card


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    engine = open_warehouse(url)
    try:
        build_demo(engine, until=UNTIL, days=200)
    finally:
        engine.dispose()
    return url


class Cache:
    """Each report built once and rendered once per format in the module (a PDF takes
    seconds); `render` itself, the one call the CLI and dashboard make, is the CLI test's."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_warehouse(url)
        self.built: dict[tuple[str | None, str], Report] = {}
        self.files: dict[tuple[str, str | None, str, str], bytes] = {}

    def get(
        self, fmt: str, team: str | None = None, quarter: str = QUARTER, paper: str = "a4"
    ) -> bytes:
        if (team, quarter) not in self.built:
            self.built[team, quarter] = build_report(
                self.engine, quarter, team=team, settings=Settings()
            )
        key = (fmt, team, quarter, paper)
        if fmt == "pdf":
            require_pdf()
        if key not in self.files:
            self.files[key] = render_document(self.built[team, quarter], fmt, paper)
        return self.files[key]


@pytest.fixture(scope="module")
def reports(demo_url: str) -> Any:
    cache = Cache(demo_url)
    yield cache
    cache.engine.dispose()


def metrics_json(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> Any:
    capsys.readouterr()
    assert main(["metrics", "--quarter", QUARTER, "--format", "json", "--db", url, *extra]) == 0
    return json.loads(capsys.readouterr().out)


FINER = {
    Fmt.DECIMAL1: Fmt.DECIMAL2,
    Fmt.PERCENT1: Fmt.PERCENT2,
    Fmt.HOURS: Fmt.HOURS2,
    Fmt.MINUTES: Fmt.MINUTES2,
}


def shown_fmt(now: float, before: float, fmt: Fmt, change: str) -> Fmt:
    """The format a headline row shows its two figures in: one decimal finer when they
    round alike but the change column says they moved."""
    moved = change.replace("\u00a0", " ") not in ("", "–", "±0 %", "±0.0 pts")
    return FINER.get(fmt, fmt) if moved and display(now, fmt) == display(before, fmt) else fmt


# --- reading each format back ---------------------------------------------------------------


class _Tables(HTMLParser):
    """Every <table data-sheet=…>: its rows of (text, data-value) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self._sheet: str | None = None
        self._cell: list[str] | None = None
        self._value: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("data-sheet"):
            self._sheet = found["data-sheet"]
            self.tables[self._sheet] = []
        elif tag == "tr" and self._sheet:
            self.tables[self._sheet].append([])
        elif tag in ("td", "th") and self._sheet:
            self._cell, self._value = [], found.get("data-value")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._sheet and self._cell is not None:
            self.tables[self._sheet][-1].append(("".join(self._cell).strip(), self._value))
            self._cell = None
        elif tag == "table":
            self._sheet = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(data: bytes) -> dict[str, list[list[tuple[str, str | None]]]]:
    parser = _Tables()
    parser.feed(data.decode("utf-8"))
    return parser.tables


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def markdown_table(markdown: str, title: str) -> list[list[str]]:
    block = markdown.split(f"**{title}**\n\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split(" | ") for line in block.splitlines()]
    return [[cell.strip() for cell in row] for row in rows if not row[0].startswith("-")]


_BOOKS: dict[int, Any] = {}


def sheet_rows(data: bytes, sheet: str) -> list[tuple[Any, ...]]:
    """The rows of one sheet (each workbook parsed once: the evidence sheets are large)."""
    key = id(data)
    if key not in _BOOKS:
        _BOOKS.clear()
        _BOOKS[key] = (data, load_workbook(io.BytesIO(data)))
    return list(_BOOKS[key][1][sheet].iter_rows(values_only=True))


def all_text(fmt: str, data: bytes) -> str:
    if fmt == "pdf":
        return pdf_text(data)
    if fmt == "xlsx":
        book = load_workbook(io.BytesIO(data))
        return "\n".join(
            str(cell)
            for sheet in book
            for row in sheet.iter_rows(values_only=True)
            for cell in row
            if cell is not None
        )
    return data.decode("utf-8")


# --- the figures are the engine's ------------------------------------------------------------


def test_headline_figures_in_every_format_equal_poise_metrics(
    reports: Cache, capsys: pytest.CaptureFixture[str]
) -> None:
    card = metrics_json(capsys, reports.url, "--compare")
    previous = card["previous"]
    expected = {name: (dig(card, path), dig(previous, path), fmt) for name, path, fmt in HEADLINES}

    rows = sheet_rows(reports.get("xlsx"), "Headline figures")
    assert rows[0][:3] == ("Figure", "This quarter", "Quarter before")
    got = {row[0]: (row[1], row[2]) for row in rows[1:]}
    for name, (now, before, _fmt) in expected.items():
        assert got[name] == (same(now), same(before)), name  # the values, not rounded text

    table = html_tables(reports.get("html"))["Headline figures"]
    cells = {row[0][0]: row for row in table[1:]}
    # two figures that round alike but moved are shown one decimal finer ("8.57 %")
    expected = {
        name: (now, before, shown_fmt(now, before, fmt, cells[name][3][0]))
        for name, (now, before, fmt) in expected.items()
    }
    for name, (now, before, fmt) in expected.items():
        assert float(cells[name][1][1]) == now and float(cells[name][2][1]) == before, name
        # the HTML binds each number to its unit with a no-break space ("6.6\u00a0%")
        assert cells[name][1][0] == keep_units(display(now, fmt)), name

    rows_md = markdown_table(reports.get("md").decode(), "Headline figures")
    md = {row[0]: row for row in rows_md[1:]}
    for name, (now, before, fmt) in expected.items():
        assert md[name][1:3] == [display(now, fmt), display(before, fmt)], name

    text = pdf_text(reports.get("pdf"))
    summary = text.split("Executive summary", 2)[2].split("Team scorecards")[0]
    lines = {line.split(" ")[0]: line for line in summary.splitlines()}
    assert lines
    flat = " ".join(summary.split())
    for name, (now, before, fmt) in expected.items():
        assert f"{name} {display(now, fmt)} {display(before, fmt)}" in flat, name
    per_week = display(card["dora"]["deployment_frequency"]["per_week"], Fmt.DECIMAL1)
    assert f"{per_week} per week" in flat  # the sentence says it too


def test_the_appendix_defines_every_figure_of_the_glossary(reports: Cache) -> None:
    appendix = reports.get("html").decode().split('id="definitions"', 1)[1]
    for key, entry in TERMS.items():
        assert f"<dt>{escape(entry.label)}</dt><dd>{escape(help_text(key))}</dd>" in appendix, key


def test_team_scorecards_equal_poise_metrics_by_team(
    reports: Cache, capsys: pytest.CaptureFixture[str]
) -> None:
    by_team = metrics_json(capsys, reports.url, "--by-team")
    rows = sheet_rows(reports.get("xlsx"), "Teams side by side")
    got = {row[0]: row[1:7] for row in rows[1:]}
    assert set(got) == set(by_team)
    for team, card in by_team.items():
        assert got[team] == tuple(
            same(value)
            for value in (
                card["dora"]["deployment_frequency"]["per_week"],
                card["dora"]["lead_time"]["median_hours"],
                card["dora"]["change_failure_rate"]["rate"],
                card["dora"]["recovery_time"]["median_hours"],
                card["dora"]["rework_rate"]["rate"],
                card["incidents"]["count"],
            )
        ), team
        team_rows = {row[0]: row[1] for row in sheet_rows(reports.get("xlsx"), f"Team {team}")[1:]}
        for name, path, _fmt in HEADLINES:
            assert team_rows[name] == same(dig(card, path)), (team, name)
    markdown = reports.get("md").decode()
    for team, card in by_team.items():
        md = {row[0]: row[1] for row in markdown_table(markdown, f"Scorecard: {team}")[1:]}
        for name, path, fmt in HEADLINES:
            assert md[name] == display(dig(card, path), fmt), (team, name)


def test_slos_equal_poise_metrics_at_quarter_end_and_over_the_calendar_quarter(
    reports: Cache, capsys: pytest.CaptureFixture[str]
) -> None:
    own = metrics_json(capsys, reports.url)
    quarter = metrics_json(capsys, reports.url, "--slo-window", "quarter")
    rows = sheet_rows(reports.get("xlsx"), "SLO attainment")
    assert rows[0][:6] == ("SLO", "Service", "Target", "Window", "SLI", "Budget left")
    got = {row[0]: (row[2], row[4], row[5]) for row in rows[1:]}
    assert got == {
        slo["name"]: tuple(same(slo[key]) for key in ("target", "sli", "budget_remaining"))
        for slo in quarter["slos"]
    }
    # each row names the window it was judged over, so the two SLO tables cannot be confused
    assert {row[3] for row in rows[1:]} == {"1 Jul – 30 Sep"}
    for slo in own["slos"]:
        team_rows = sheet_rows(reports.get("xlsx"), f"SLOs {slo['team']}")
        row = next(row for row in team_rows if row[0] == slo["name"])
        assert (row[4], row[5], row[7]) == (
            same(slo["sli"]),
            same(slo["budget_remaining"]),
            slo["status"].replace("_", " "),
        )
    text = " ".join(pdf_text(reports.get("pdf")).split())
    for slo in quarter["slos"]:
        if slo["sli"] is not None:
            assert f"SLI {display(slo['sli'], Fmt.PERCENT3)}" in text, slo["name"]


def test_weekly_trends_are_the_engines(reports: Cache) -> None:
    frame = weekly_trends(reports.engine, Period.quarter(QUARTER), Scope(), Settings())
    rows = sheet_rows(reports.get("xlsx"), "Trend hours lead")
    assert [row[1] for row in rows[1:]] == [
        same(value) if changes >= 5 else None
        for value, changes in zip(frame["lead_time_median_hours"], frame["changes"], strict=True)
    ]
    stacked = sheet_rows(reports.get("xlsx"), "Trend deployments")
    assert stacked[0][-1] == "Days"  # how many days each week holds, after the teams
    totals = [sum(cell or 0 for cell in row[1:-1]) for row in stacked[1:]]
    assert totals == frame["deployments"].tolist()
    # 2026Q3 starts on a Wednesday and ends on a Wednesday: 1–5 Jul and 28–30 Sep
    days = [row[-1] for row in stacked[1:]]
    assert days[0] == 5 and days[-1] == 3 and set(days[1:-1]) == {7}
    assert "1–5 Jul (5 days) and 28–30 Sep (3 days) hold only part of a week" in " ".join(
        pdf_text(reports.get("pdf")).split()
    )


def test_evidence_sheets_hold_the_rows_behind_the_figures(
    reports: Cache, capsys: pytest.CaptureFixture[str]
) -> None:
    card = metrics_json(capsys, reports.url)
    book = load_workbook(io.BytesIO(reports.get("xlsx")), read_only=True)
    deployments = list(book["Rows deployments"].iter_rows(values_only=True))
    header = deployments[0]
    assert len(deployments) - 1 == card["dora"]["deployment_frequency"]["deployments"]
    failed = header.index("failed")
    assert (
        sum(1 for row in deployments[1:] if row[failed])
        == card["dora"]["change_failure_rate"]["failed"]
    )
    incidents = list(book["Rows incidents"].iter_rows(values_only=True))
    assert len(incidents) - 1 == card["incidents"]["count"]
    attributions = list(book["Rows attributions"].iter_rows(values_only=True))
    method = attributions[0].index("method")
    counted = {key: 0 for key in card["attribution"]}
    for row in attributions[1:]:
        counted[row[method] if row[method] in counted else "unattributed"] += 1
    assert counted == card["attribution"]


# --- scope, emptiness, paper, self-containment ------------------------------------------------


@pytest.mark.parametrize("fmt", ["md", "html", "xlsx", "pdf"])
def test_a_team_report_leaves_out_every_other_team(reports: Cache, fmt: str) -> None:
    with reports.engine.connect() as connection:
        services = connection.exec_driver_sql("SELECT name, team FROM services").fetchall()
    others = {team for _name, team in services if team != "growth"}
    others |= {name for name, team in services if team != "growth"}
    text = all_text(fmt, reports.get(fmt, team="growth"))
    assert "Team growth" in text
    leaked = {name for name in others if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)}
    assert leaked == set()


@pytest.mark.parametrize("fmt", ["md", "html", "xlsx", "pdf"])
def test_an_empty_quarter_says_so(reports: Cache, fmt: str) -> None:
    text = " ".join(all_text(fmt, reports.get(fmt, quarter="2024Q1")).split())
    assert "No data for 2024Q1" in text
    assert "no data" in text
    # said once, not again figure by figure ("Deployment frequency was 0.0 per week (no
    # figure for the quarter before …); change lead time: not enough data …")
    assert "Deployment frequency was" not in text and "not enough data this quarter" not in text


def test_letter_and_a4(reports: Cache) -> None:
    for paper, size in (("a4", (595, 842)), ("letter", (612, 792))):
        reader = PdfReader(io.BytesIO(reports.get("pdf", team="growth", paper=paper)))
        assert {
            (round(float(p.mediabox.width)), round(float(p.mediabox.height))) for p in reader.pages
        } == {size}


def test_the_real_report_makes_no_outside_request(reports: Cache, tmp_path: Path) -> None:
    html = reports.get("html").decode()
    assert outside_references(html) == []
    require_chromium()
    from playwright.sync_api import sync_playwright

    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(path.as_uri(), wait_until="networkidle")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        finally:
            browser.close()
    assert requests == [path.as_uri()]


# --- the command line --------------------------------------------------------------------------


def test_cli_writes_each_format(
    demo_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_pdf()
    checks: dict[str, Callable[[bytes], bool]] = {
        "report.md": lambda data: data.startswith(b"# Quarterly report 2024Q1"),
        "report.html": lambda data: data.startswith(b"<!DOCTYPE html>"),
        "report.xlsx": lambda data: data.startswith(b"PK"),
        "report.pdf": lambda data: data.startswith(b"%PDF"),
    }
    for name, check in checks.items():  # an empty quarter: quick, and the format from the suffix
        out = tmp_path / name
        assert main(["report", "--quarter", "2024q1", "--out", str(out), "--db", demo_url]) == 0
        assert check(out.read_bytes()), name
        assert f"wrote {out}" in capsys.readouterr().out
    args = ["report", "--quarter", "2026q3", "--team", "identity", "--format", "pdf"]
    assert main([*args, "--paper", "letter", "--out", str(tmp_path), "--db", demo_url]) == 0
    written = tmp_path / "poise-report-2026Q3-identity.pdf"  # a folder gets the default name
    reader = PdfReader(written)
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)
    assert "Team identity" in reader.pages[0].extract_text()


def test_cli_errors_are_one_line(
    demo_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        main(
            [
                "report",
                "--quarter",
                QUARTER,
                "--team",
                "grwth",
                "--out",
                str(tmp_path / "x.md"),
                "--db",
                demo_url,
            ]
        )
        == 1
    )
    assert (
        capsys.readouterr().err.strip()
        == "poise: --team 'grwth': no such team in the warehouse (did you mean 'growth'?)"
    )
    missing = tmp_path / "nowhere" / "x.md"
    assert main(["report", "--quarter", QUARTER, "--out", str(missing), "--db", demo_url]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"poise: --out {missing}: folder {missing.parent} does not exist"
    )
    assert not missing.parent.exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--quarter", "2026Q5", "--db", demo_url])
    assert exit_info.value.code == 2


# --- layout and wording the reviewers asked for ------------------------------------------------


def test_no_pdf_page_holds_only_a_sentence(reports: Cache) -> None:
    """Sections flow on instead of each starting a page: a forced break used to leave a page
    holding one chart or one sentence (the last trend chart, an empty chart's note)."""
    for team in (None, "billing"):
        pages = [
            page.extract_text() for page in PdfReader(io.BytesIO(reports.get("pdf", team))).pages
        ]
        for number, text in enumerate(pages[2:-1], start=3):  # title, contents, last page
            body = "\n".join(line for line in text.splitlines() if "Page " not in line)
            # a lone sentence, or a lone chart's title and ticks, is well under 300 characters
            assert len(body) > 300, (team, number, body)


def test_every_pdf_table_fits_the_pages_text_width(reports: Cache) -> None:
    """A PDF cannot scroll: a table wider than the text runs into the margin and off the
    page (the freezes table's last column did, with nine columns)."""
    require_pdf()
    reports.get("html")
    document = laid_out(reports.built[None, QUARTER], Paper.A4)
    tables = 0
    for number, page in enumerate(document.pages, start=1):
        box = page._page_box  # WeasyPrint's layout: the page and every box on it
        right = page.width - box.margin_right
        for table in box.descendants():
            if getattr(table, "element_tag", None) != "table" or type(table).__name__ != "TableBox":
                continue
            tables += 1
            assert table.position_x + table.border_width() <= right + 0.5, (
                number,
                table.element.get("data-sheet"),
            )
    assert tables > 20


def test_freezes_per_service_are_the_engines_budget_policy(
    reports: Cache, capsys: pytest.CaptureFixture[str]
) -> None:
    card = metrics_json(capsys, reports.url)
    frozen = card["budget_policy"]["frozen_services"]
    assert any(len(block["intervals"]) > 1 for block in frozen)  # the demo has flapping budgets
    rows = sheet_rows(reports.get("xlsx"), "Freezes per service")
    assert rows[0][:8] == (
        "Service",
        "Team",
        "Exhausted SLOs",
        "Freezes",
        "Frozen, total",
        "Longest",
        "First frozen",
        "Last thawed",
    )
    got = {row[0]: row for row in rows[1:]}
    assert set(got) == {block["service"] for block in frozen}
    for block in frozen:
        row = got[block["service"]]
        spans = [
            (datetime.fromisoformat(i["from"]), datetime.fromisoformat(i["to"]))
            for i in block["intervals"]
        ]
        assert row[3] == len(spans)
        assert row[4] == same(block["frozen_hours"])
        assert row[5] == max((end - start).total_seconds() / 3600 for start, end in spans)
        assert (row[6], row[7]) == (
            spans[0][0].replace(tzinfo=None),
            spans[-1][1].replace(tzinfo=None),
        )
        assert row[8:10] == (block["deployments"], block["exempt"])
    longest = sheet_rows(reports.get("xlsx"), "Longest freezes")[1:]
    assert 0 < len(longest) <= 10
    hours = [row[4] for row in longest]
    assert hours == sorted(hours, reverse=True)
    every = sheet_rows(reports.get("xlsx"), "Rows freezes")
    assert len(every) - 1 == sum(len(block["intervals"]) for block in frozen)


def test_each_slo_table_names_its_window_and_why_statuses_differ(
    reports: Cache, capsys: pytest.CaptureFixture[str]
) -> None:
    own = metrics_json(capsys, reports.url)
    quarter = metrics_json(capsys, reports.url, "--slo-window", "quarter")
    for slo in own["slos"]:
        row = next(
            r for r in sheet_rows(reports.get("xlsx"), f"SLOs {slo['team']}") if r[0] == slo["name"]
        )
        assert row[3] == f"{slo['window_days']} days to 30 Sep"
    over_quarter = {slo["name"]: slo["status"] for slo in quarter["slos"]}
    differ = [slo for slo in own["slos"] if slo["status"] != over_quarter[slo["name"]]]
    assert differ  # the demo has some (billing-api-availability: at risk vs ok)
    text = " ".join(pdf_text(reports.get("pdf")).split())
    assert f"{len(differ)} of {len(quarter['slos'])} SLOs have a different status here" in text
    assert "more" not in text.split("SLOs whose status differs by window", 1)[0][-400:]
    # every one is named (a sentence used to stop at six, "and 2 more"), in the PDF's table
    # and in the workbook
    rows = sheet_rows(reports.get("xlsx"), "SLO status by window")
    assert rows[0] == (
        "SLO",
        "Service",
        "Own window",
        "Status over its own window",
        "Status over the quarter",
    )
    assert rows[1:] == [
        (
            slo["name"],
            slo["service"],
            f"{slo['window_days']} days to 30 Sep",
            slo["status"].replace("_", " "),
            over_quarter[slo["name"]].replace("_", " "),
        )
        for slo in sorted(differ, key=lambda slo: list(over_quarter).index(slo["name"]))
    ]
    table = html_tables(reports.get("html"))["SLO status by window"]
    assert [row[0][0] for row in table[1:]] == [row[0] for row in rows[1:]]


def test_certificates_say_they_are_as_of_the_export(reports: Cache) -> None:
    html = reports.get("html").decode()
    section = html.split('id="certificates"', 1)[1].split("</section>", 1)[0]
    assert "Certificates at risk, as of the export (" in section
    assert "not as of the end of 2026Q3" in section


def test_every_headline_row_has_a_change_in_its_unit_or_says_why_not(reports: Cache) -> None:
    table = html_tables(reports.get("html"))["Headline figures"]
    changes = {row[0][0]: row[3][0].replace("\u00a0", " ") for row in table[1:]}
    for name, _path, fmt in HEADLINES:
        change = changes[name]
        assert change, name  # never blank beside two figures
        if change == "–":  # the engine compares no such figure: the note says so
            continue
        if fmt is Fmt.PERCENT1:  # rates move in points, "±0.0 pts" included
            assert change.endswith(" pts"), (name, change)
        else:
            assert change.endswith(" %") or change == "new", (name, change)
    # every headline figure is among metrics.trends.COMPARED: none says "no change (–)"
    assert [name for name, change in changes.items() if change == "–"] == []
    assert "no change (–)" not in " ".join(pdf_text(reports.get("pdf")).split())


def _page_texts(data: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def test_a_heading_and_its_note_stay_with_what_they_introduce(reports: Cache) -> None:
    """ "3 Delivery trends over the quarter" and its note were left alone at the foot of a
    page whose next page began with the chart they introduce."""
    report = reports.built.get((None, QUARTER)) or build_report(
        reports.engine, QUARTER, settings=Settings()
    )
    pages = _page_texts(reports.get("pdf"))[2:]  # past the title page and the contents
    checked = []
    for _depth, section in report.walk():
        blocks = section.blocks
        if len(blocks) < 2 or not isinstance(blocks[0], Paragraph) or blocks[0].style != "note":
            continue
        follower = blocks[1]
        if not isinstance(follower, Table | Chart):
            continue
        title = " ".join(section.title.split())
        on = [index for index, text in enumerate(pages) if title in text]
        assert on, title
        assert " ".join(follower.title.split()) in pages[on[0]], (title, follower.title)
        checked.append(title)
    assert {"Delivery trends over the quarter", "Reliability: SLO attainment"} <= set(checked)


def test_durations_read_as_the_dashboard_writes_them(reports: Cache) -> None:
    """Freeze lengths in hours or days as the dashboard words them (the exact hours stay in
    the cell's data and in the workbook); days left are whole days or words."""
    tables = html_tables(reports.get("html"))
    seen = set()
    for sheet, columns in (("Freezes per service", (4, 5)), ("Longest freezes", (4,))):
        for row in tables[sheet][1:]:
            for column in columns:
                text, value = row[column]
                assert text == keep_units(hours_words(float(value))), (sheet, row[0][0], text)
                seen.add(text.split("\u00a0")[-1])
    assert "d" in seen  # the demo has freezes of days: "74.1 d", not "1,779"
    certificates = tables.get("Certificates at risk", [[]])[1:]
    for row in certificates:
        text = row[3][0].replace("\u00a0", " ")
        assert re.fullmatch(
            r"[\d,]+|expired \d+ days? ago|expired less than a day ago|less than a day", text
        ), text
    assert ".0 days" not in pdf_text(reports.get("pdf"))


def test_postmortems_are_short_links_in_html_and_addresses_elsewhere(reports: Cache) -> None:
    html = reports.get("html").decode()
    section = html.split('data-sheet="Significant incidents"', 1)[1].split("</table>", 1)[0]
    links = re.findall(r'<a href="([^"]+)">read</a>', section)
    assert links and all(link.startswith(("https://", "http://")) for link in links)
    markdown = reports.get("md").decode()
    assert all(link in markdown for link in links)  # a wiki keeps the address
    rows = sheet_rows(reports.get("xlsx"), "Significant incidents")
    assert {row[-1] for row in rows[1:]} >= set(links)


def test_unusual_weeks_are_listed_once(reports: Cache) -> None:
    """The bullets that led the section repeated rows of the table below them."""
    html = reports.get("html").decode()
    section = html.split('id="anomalies"', 1)[1].split("</section>", 1)[0]
    assert "<ul>" not in section
    assert 'data-sheet="Unusual weeks"' in section

"""Quarterly reports of odd but legitimate warehouses: names no layout expected (200
characters without a space, line breaks, pipes, markup, emoji, Excel's reserved words), a
crowded organisation (more teams than colours, more SLOs than a page holds), an open
incident, a quarter not over yet, a team asked for in the wrong case.

Each warehouse is imported through `poise.importer` (`metrics_org.Org`) and built once per
module; each test reads the formats back as a person or a program would.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from metrics_org import Org, at
from openpyxl import load_workbook
from pypdf import PdfReader
from test_reports_builder import html_tables
from test_reports_render import outside_references, require_pdf, sample_report

from metrics import Period, Scope, Settings
from metrics.scorecard import scorecard
from poise.errors import PoiseError
from poise.warehouse import open_warehouse
from reports import render_document
from reports.builder import build_report
from reports.charts import render_svg
from reports.formats import display
from reports.markdown import _inline
from reports.model import Chart, Fmt, Paper, Report, Table
from reports.pdf import laid_out

QUARTER = "2026Q3"
NEWLINE_TEAM = "multi\nline | `ops`"
ODD_TEAMS = (
    NEWLINE_TEAM,
    "History",
    "a[b]:c*d?e/f\\g",
    "a b",
    "A-B",  # the same anchor as "a b" once lowered
    # two 200-character names alike in their first 31 characters, emoji included
    ("🚀 Plataforma <b>Ñ</b> " * 20)[:200],
    ("🚀 Plataforma <b>Ñ</b> " * 20)[:60] + " second",
)
LONG_TEAM = ("Ü" + "teamnamewithoutspaces" * 10)[:200]
LONG_SERVICE = ("service_name_with_underscores_" * 7)[:200]
LONG_SLO = ("slo.name.with.dots." * 11)[:200]
CROWDED_SERVICES = 60
CROWDED_TEAMS = 12


def _deployed(org: Org, key: str, service: str, weeks: int = 8) -> Org:
    for week in range(weeks):
        org.change(f"{key}c{week}", service, at(week * 7))
        org.deploy(f"{key}d{week}", service, at(week * 7, 5), [f"{key}c{week}"])
    return org


def _warehouse(tmp_path_factory: pytest.TempPathFactory, name: str, org: Org) -> Any:
    folder = tmp_path_factory.mktemp(name)
    engine = open_warehouse(f"sqlite:///{folder / 'poise.db'}")
    org.load(engine, folder)
    return engine


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Teams, services, SLOs and an incident title with names no layout expected."""
    org = Org()
    for index, team in enumerate(ODD_TEAMS):
        service = f"svc{index} | `x` <i>"
        _deployed(org.service(service, team), f"o{index}", service)
        slo = f"slo|{index}\n`avail`"
        org.slo(slo, service, 0.99).sli(slo, at(80), 24, 990, 1000)
    org.incident("open", "svc0 | `x` <i>", at(10, 6), resolved=None)
    org.rows["incidents"][-1]["title"] = "Disk full\n| on `db` |\n# not a heading"
    # the quarter before holds this one incident: compared with, not a quarter without data
    org.incident("before", "svc0 | `x` <i>", at(-20))
    engine = _warehouse(tmp_path_factory, "odd", org)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One team of 60 services, each with an SLO, beside eleven small teams; names without
    a place to break a line."""
    org = Org()
    for index in range(CROWDED_SERVICES):
        service = LONG_SERVICE if index == 0 else f"service-{index:03d}"
        slo = LONG_SLO if index == 0 else f"{service}-availability"
        org.service(service, LONG_TEAM)
        org.change(f"c{index}", service, at(index)).deploy(
            f"d{index}", service, at(index, 3), [f"c{index}"]
        )
        # a budget per SLO that orders them: the lower the index, the more budget spent
        org.slo(slo, service, 0.99).sli(slo, at(85), 24, 900 + index, 1000)
    for team in range(1, CROWDED_TEAMS):
        _deployed(org.service(f"s{team}", f"team-{team:02d}"), f"t{team}", f"s{team}", team % 4 + 1)
    engine = _warehouse(tmp_path_factory, "crowded", org)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def crowded_report(crowded: Any) -> Report:
    return build_report(crowded, QUARTER, settings=Settings())


def _overflowing(report: Report, paper: Paper) -> list[tuple[int, str, str]]:
    """Every laid-out box of the report's body that reaches past the page's text area, to
    the right or below (page number, tag, sheet or text)."""
    found = []
    for number, page in enumerate(laid_out(report, paper).pages, start=1):
        box = page._page_box  # WeasyPrint's layout: the page and every box on it
        right, bottom = page.width - box.margin_right, page.height - box.margin_bottom
        body = next(child for child in box.children if type(child).__name__ != "MarginBox")
        for inner in body.descendants():
            if not hasattr(inner, "border_width") or getattr(inner, "element", None) is None:
                continue
            if (
                inner.border_box_x() + inner.border_width() > right + 0.5
                or inner.border_box_y() + inner.border_height() > bottom + 0.5
            ):
                element = inner.element
                found.append((number, str(element.tag), element.get("data-sheet") or ""))
    return found


# --- HTML and PDF ---------------------------------------------------------------------------


def test_a_team_name_cannot_end_the_style_sheet_or_drop_the_pdf_footer() -> None:
    """The subtitle is written into the CSS of the running footer: a team named
    `</style><script>…` closed the style element and its script ran in the HTML, and a
    line break or quote in the name ended the CSS string, so the PDF had no footer."""
    require_pdf()
    for team in ("</style><script>alert(1)</script>", 'multi\nline "q" \\ end'):
        report = sample_report()
        report.subtitle = f"Team {team}"
        html = render_document(report, "html").decode()
        assert outside_references(html) == [], team  # no <script> element
        assert "alert(1)</script>" not in html.split("</style>", 1)[0], team
        pages = PdfReader(io.BytesIO(render_document(report, "pdf"))).pages
        footer = " ".join(pages[1].extract_text().split())
        assert f"Quarterly report 2026Q3 · Team {' '.join(team.split())}" in footer, team


def test_names_without_a_place_to_break_stay_on_the_page(crowded_report: Report) -> None:
    """A 200-character team name without a space, a snake_case service and a dotted SLO
    widened the contents, the teams and freezes tables and the headings by up to 1,700 pt
    past the page's edge; and a bar per SLO made the budget chart 15 inches tall, cut off
    at the page's foot."""
    require_pdf()
    assert _overflowing(crowded_report, Paper.LETTER) == []


def test_the_budget_chart_draws_the_slos_with_least_budget_and_says_so(
    crowded_report: Report,
) -> None:
    chart = next(
        block
        for _depth, section in crowded_report.walk()
        for block in section.blocks
        if isinstance(block, Chart) and block.sheet == "SLO budget chart"
    )
    assert len(chart.x_labels) == 30
    budgets = chart.series[0].values
    assert LONG_SLO in chart.x_labels and "service-029-availability" in chart.x_labels
    assert "service-030-availability" not in chart.x_labels  # more budget left than all 30
    assert max(value for value in budgets if value is not None) < 0
    assert chart.caption == (
        f"The 30 of {CROWDED_SERVICES} SLOs with the least error budget left; the table above "
        "gives every one."
    )
    slo_rows = next(t for t in crowded_report.tables() if t.sheet == "SLO attainment").rows
    assert len(slo_rows) == CROWDED_SERVICES  # the table still lists every SLO


def test_the_budget_charts_axis_title_stays_on_the_chart(crowded_report: Report) -> None:
    """With 40-character names and their notes the bars get the right third of the width:
    the axis title, centred under them, ran off the chart ("(below 0: o")."""
    chart = next(
        block
        for _depth, section in crowded_report.walk()
        for block in section.blocks
        if isinstance(block, Chart) and block.sheet == "SLO budget chart"
    )
    svg = render_svg(chart)
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))  # type: ignore[union-attr]
    label = re.search(r"<text [^>]*>error budget left over the quarter[^<]*</text>", svg)
    assert label is not None
    x = float(re.search(r' x="([\d.]+)"', label.group(0)).group(1))  # type: ignore[union-attr]
    assert "text-anchor: end" in label.group(0) and x <= width


def test_more_teams_than_colours_share_one_layer(crowded: Any, crowded_report: Report) -> None:
    """Twelve teams in seven colours drew two teams in the same blue: the six that deployed
    most keep a layer each, the others share one, and the weekly totals stay the engine's."""
    chart = next(
        block
        for _depth, section in crowded_report.walk()
        for block in section.blocks
        if isinstance(block, Chart) and block.sheet == "Trend deployments"
    )
    names = [series.name for series in chart.series]
    assert len(names) == 7 and names[-1] == "6 other teams"
    assert LONG_TEAM in names  # the team that deployed most
    weekly = [
        sum(value or 0 for value in week)
        for week in zip(*(s.values for s in chart.series), strict=True)
    ]
    card = scorecard(crowded, Period.quarter(QUARTER), Scope(), Settings())
    assert sum(weekly) == card["dora"]["deployment_frequency"]["deployments"]


def test_team_sections_have_one_anchor_each(odd: Any) -> None:
    """ "a b" and "A-B" both became id="team-a-b": the contents led both entries (and the
    PDF's page numbers) to the first."""
    html = render_document(build_report(odd, QUARTER, settings=Settings()), "html").decode()
    ids = re.findall(r' id="(team-[^"]*)"', html)
    assert len(ids) == len(set(ids)) == len(ODD_TEAMS)
    targets = re.findall(r'<a href="#(team-[^"]*)">', html)
    assert sorted(targets) == sorted(ids)


# --- Markdown and the workbook ----------------------------------------------------------------


def _cells(line: str) -> int:
    """The cells of a Markdown table row: pipes not escaped by a backslash, less one."""
    return len(re.findall(r"(?<!\\)\|", line)) - 1


def test_markdown_tables_and_headings_survive_line_breaks_and_pipes_in_names(odd: Any) -> None:
    report = build_report(odd, QUARTER, settings=Settings())
    markdown = render_document(report, "md").decode()
    blocks = re.findall(r"(?:^\|.*\n)+", markdown, re.M)
    assert len(blocks) > 20
    for block in blocks:
        rows = block.splitlines()
        assert len({_cells(row) for row in rows}) == 1, rows[0]
    tables = [b for _d, section in report.walk() for b in section.blocks if isinstance(b, Table)]
    for table in (t for t in tables if t.rows):  # no table lost a row to a line break
        found = (
            markdown.split(f"**{_inline(table.title)}**\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
        )
        assert len(found) == len(table.rows) + 2, table.title
    assert "\n# not a heading" not in markdown and "\nline \\| \\`ops\\`" not in markdown
    assert "### Team multi line \\| \\`ops\\`\n" in markdown
    # the figures of the team are the engine's
    card = scorecard(odd, Period.quarter(QUARTER), Scope(team=NEWLINE_TEAM), Settings())
    per_week = display(card["dora"]["deployment_frequency"]["per_week"], Fmt.DECIMAL1)
    scoped = render_document(build_report(odd, QUARTER, team=NEWLINE_TEAM), "md").decode()
    assert f"| Deployment frequency (per week) | {per_week} |" in scoped


def test_sheet_names_fit_excel_for_any_team_name(odd: Any) -> None:
    """Excel counts a sheet name's 31 characters in UTF-16 units (an emoji is two), refuses
    an apostrophe at either end and keeps "History" for itself; two teams alike in their
    first 31 characters still get a sheet each."""
    book = load_workbook(io.BytesIO(render_document(build_report(odd, QUARTER), "xlsx")))
    names = book.sheetnames
    assert len({name.casefold() for name in names}) == len(names)
    for name in names:
        assert len(name.encode("utf-16-le")) <= 62, name
        assert not re.search(r"[\[\]:*?/\\\x00-\x1f]", name) and name.strip("'") == name, name
        assert name.casefold() != "history", name
    scorecards = [name for name in names if name.startswith("Team ")]
    assert len(scorecards) == len(ODD_TEAMS)
    assert "Team History" in names and "Team multi-line | `ops`" in names


def test_an_open_incident_reads_not_resolved(odd: Any) -> None:
    report = build_report(odd, QUARTER, settings=Settings())
    rows = html_tables(render_document(report, "html"))["Significant incidents"]
    assert [cell[0] for cell in rows[1]][4] == "not resolved"  # was "no data"
    markdown = render_document(report, "md").decode()
    assert "| Disk full \\| on \\`db\\` \\| # not a heading | not resolved |" in markdown


# --- what was asked for -------------------------------------------------------------------------


def test_a_team_in_another_case_is_suggested_and_many_teams_are_not_all_listed(
    odd: Any, crowded: Any
) -> None:
    with pytest.raises(PoiseError) as wrong_case:
        build_report(odd, QUARTER, team="HISTORY")
    assert str(wrong_case.value) == (
        "--team 'HISTORY': no such team in the warehouse (did you mean 'History'?)"
    )
    with pytest.raises(PoiseError) as unknown:
        build_report(crowded, QUARTER, team="zzz")
    message = str(unknown.value)
    assert "\n" not in message and message.endswith(", team-10 and 2 more)"), message
    with pytest.raises(PoiseError) as unknown:
        build_report(odd, QUARTER, team="zzz")
    assert "\n" not in str(unknown.value) and "multi line | `ops`" in str(unknown.value)


def test_a_quarter_not_over_is_reported_to_date_and_one_not_begun_is_refused(odd: Any) -> None:
    """Divided by all 13 weeks and judged at an end still to come, a quarter half gone read
    as a collapse against the quarter before, with every SLO "no data": it covers the days
    there have been, says so first, and compares with the whole quarter before."""
    now = datetime(2026, 8, 15, 12, tzinfo=UTC)
    report = build_report(odd, QUARTER, settings=Settings(), now=now)
    assert report.period_label == "2026Q3 to date: 1 July – 14 August 2026 (UTC)"
    lead = report.sections[0].blocks[0].text  # type: ignore[union-attr]
    assert lead.startswith(
        "2026Q3 is not over: this report covers it to date, 1 July – 14 August 2026, 45 of "
        "its 92 days"
    ), lead
    assert "ending 14 August" in lead
    to_date = Period(at(0), datetime(2026, 8, 15, tzinfo=UTC))
    expected = scorecard(odd, to_date, Scope(), Settings())["dora"]["deployment_frequency"]
    headline = next(block for block in report.sections[0].blocks if isinstance(block, Table))
    frequency = headline.rows[0][1]
    assert frequency.value == pytest.approx(expected["per_week"])  # type: ignore[union-attr]
    assert expected["deployments"] == 7 * len(ODD_TEAMS)  # weeks 0–6 of each service's 8
    counts = {row[0]: row[3] for row in headline.rows}
    assert counts["Incidents started"] == "–"  # 1 in 45 days against a whole quarter: no change
    assert "not comparable with the whole quarter before" in report.sections[0].blocks[-1].text  # type: ignore[union-attr]
    with pytest.raises(PoiseError, match="2027Q1: the quarter has not begun"):
        build_report(odd, "2027Q1", settings=Settings(), now=now)
    done = build_report(odd, QUARTER, settings=Settings(), now=datetime(2026, 10, 2, tzinfo=UTC))
    assert "is not over" not in done.sections[0].blocks[0].text  # type: ignore[union-attr]
    assert done.period_label == "2026Q3: 1 July – 30 September 2026 (UTC)"

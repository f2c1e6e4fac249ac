"""Every dashboard page under Streamlit's AppTest: on the demo warehouse (built once per
session), on an empty warehouse, and on a warehouse whose names and titles carry HTML and
script. Headline figures are checked against `poise metrics` and the engine for the same
scope and period; the filters must change them."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dashboard_org
import numpy as np
import pandas as pd
import pytest
from metrics_org import Org
from streamlit.testing.v1 import AppTest

from dashboard import charts, components
from dashboard.filters import today
from metrics import Period, Scope, Settings
from metrics.scorecard import scorecard
from poise.warehouse import open_warehouse

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "overview": "Overview",
    "delivery": "Delivery",
    "reliability": "Reliability",
    "incidents": "Incidents",
    "team_retro": "Team retro",
    "report": "Reports",
    "data_sources": "Data & sources",
}
TIMEOUT = 240


@pytest.fixture(scope="session")
def hostile_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{folder / 'hostile.db'}"
    engine = open_warehouse(url)
    dashboard_org.build(engine, folder / "files", hostile=True)
    engine.dispose()
    return url


def run(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def walk(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from walk(child)


def elements(at: AppTest) -> list[Any]:
    return [node for root in (at.main, at.sidebar) for node in walk(root)]


def sidebar_box(at: AppTest, label: str) -> Any:
    return next(box for box in at.sidebar.selectbox if box.label == label)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at: AppTest, label: str) -> Any:
    found = [m for m in at.metric if m.label == label]
    assert found, f"no figure {label!r} among {[m.label for m in at.metric]}"
    return found[0]


def engine_card(url: str, period: Period, scope: Scope) -> dict[str, Any]:
    engine = open_warehouse(url, migrate=False)
    try:
        return scorecard(engine, period, scope, Settings())
    finally:
        engine.dispose()


def last_days(days: int) -> Period:
    end = today()
    return Period(end - timedelta(days=days), end)


# --- the demo warehouse ----------------------------------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_on_the_demo(dashboard_demo_url: str, use: Any, page: str) -> None:
    use(dashboard_demo_url)
    at = run(page, team="billing") if page == "team_retro" else run(page)
    assert_clean(at)
    assert at.title[0].value == PAGES[page]
    assert not [
        node
        for node in elements(at)
        if getattr(node, "type", "") == "info" and "is empty" in str(getattr(node, "value", ""))
    ]
    if page not in ("report",):
        assert len(at.dataframe) >= 1
    if page == "report":
        assert len(at.get("iframe")) == 1
        assert {b.label for b in at.get("download_button")} >= {"PDF", "HTML", "XLSX", "MD"}


def cards_with_their_grid(
    node: Any, grid: Any = None, kind: str = "metric"
) -> Iterator[tuple[Any, Any]]:
    """Every figure (st.metric, or the elements of another `kind`) under `node`, with the
    grid it sits in (None: none)."""
    if getattr(node, "type", "") == kind:
        yield node, grid
    if type(node).__name__ == "Grid":
        grid = node
    for child in getattr(node, "children", {}).values():
        yield from cards_with_their_grid(child, grid, kind)


@pytest.mark.parametrize(
    "page", ["overview", "delivery", "reliability", "incidents", "team_retro", "data_sources"]
)
def test_figure_cards_wrap_before_their_titles_and_values_are_cut(
    dashboard_demo_url: str, use: Any, page: str
) -> None:
    """In st.columns, five cards on a 1024 px laptop (sidebar open) were 100 px wide each:
    "Deploys p…" over "1…". In a grid each keeps the width its title needs, and a row that
    has not the room wraps (docs/dashboard.md, "Narrow screens")."""
    use(dashboard_demo_url)
    at = run(page, team="billing") if page == "team_retro" else run(page)
    assert_clean(at)
    cards = list(cards_with_their_grid(at.main))
    assert cards
    for card, grid in cards:
        assert grid is not None, f"{card.label!r} is not in a grid"
        assert grid.proto.wrap
        assert grid.proto.min_column_width_px >= components.card_width([card.label])
        assert components.card_width([card.label]) >= components.CARD_WIDTH


def test_what_burned_the_budget_sets_its_charts_side_by_side_only_where_names_fit(
    dashboard_demo_url: str, use: Any
) -> None:
    """In st.columns, half of a 1024 px laptop's page cut the longest names written above
    the bars ("recommendations-i0187 · recommendations-availa"). The two charts share a
    grid that wraps unless each has the width its longest name needs."""
    use(dashboard_demo_url)
    at = run("reliability")
    assert_clean(at)
    placed = [
        (chart, grid)
        for chart, grid in cards_with_their_grid(at.main, kind="plotly_chart")
        if "chart-budget-by-" in chart.proto.id
    ]
    assert len(placed) == 2
    (_, grid), (_, other) = placed
    assert grid is not None and other is grid and grid.proto.wrap
    names = [
        html.unescape(note["text"])
        for chart, _ in placed
        for note in json.loads(chart.proto.spec)["layout"]["annotations"]
        if note.get("yref") == "y"
    ]
    assert names  # the demo's incidents burned budget
    widest = max(len(name) for name in names) * charts.LABEL_CHAR_PX
    assert grid.proto.min_column_width_px >= widest + 20  # the name and the chart's margins


def test_overview_headline_equals_poise_metrics(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run("overview")
    assert_clean(at)
    period = last_days(28)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "poise.cli",
            "metrics",
            "--format",
            "json",
            "--db",
            dashboard_demo_url,
            "--from",
            f"{period.start:%Y-%m-%d}",
            "--to",
            f"{period.end:%Y-%m-%d}",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "POISE_DATABASE_URL"},
    )
    card = json.loads(result.stdout)
    dora = card["dora"]
    assert metric(at, "Deploys per week").value == components.per_week(
        dora["deployment_frequency"]["per_week"]
    )
    assert metric(at, "Lead time (median)").value == components.hours(
        dora["lead_time"]["median_hours"]
    )
    assert metric(at, "Change fail rate").value == components.percent(
        dora["change_failure_rate"]["rate"]
    )
    assert metric(at, "Recovery (median)").value == components.hours(
        dora["recovery_time"]["median_hours"]
    )
    assert metric(at, "Incidents").value == components.count(card["incidents"]["count"])
    assert metric(at, "Deploys in a freeze").value == components.count(
        card["budget_policy"]["deployments_during_freeze"]
    )
    # the team table holds every team's figures from the same engine
    teams = at.dataframe[0].value
    assert sorted(teams["team"]) == [
        "billing",
        "data-platform",
        "growth",
        "identity",
        "mobile",
        "storefront",
    ]
    # rates in percent (one decimal on the page, named _pct in the CSV)
    billing = engine_card(dashboard_demo_url, period, Scope(team="billing"))
    row = teams.set_index("team").loc["billing"]
    assert row["change_fail_rate_pct"] == pytest.approx(
        100 * billing["dora"]["change_failure_rate"]["rate"]
    )
    # each tier goes in its figure's cell, the SLOs "met of with data" in one, so the table
    # fits the page; the CSV (the frame) keeps them as columns
    config = at.dataframe[0].proto.columns
    hidden = {name for name, column in json.loads(config).items() if column.get("hidden")}
    hidden.discard("_index")  # hide_index
    assert hidden == {
        "deploys_tier",
        "lead_time_tier",
        "change_fail_tier",
        "recovery_tier",
        "slos_with_data",
        "frozen_at_end",
    }
    assert not [c for c in teams.columns if c.endswith(("_change", "_change_pts"))]
    # the changes from the previous period on demand, to one decimal, and one that rounds
    # to nothing is +0.0, never -0.0
    at.toggle(key="teams-compare").set_value(True).run()
    assert at.query_params["compare"] in (["1"], "1")  # the address shares it
    teams = at.dataframe[0].value
    shared = run("overview", compare="1").dataframe[0].value
    assert list(shared.columns) == list(teams.columns)
    changes = teams[[c for c in teams.columns if c.endswith(("_change", "_change_pts"))]]
    assert len(changes.columns) == 4
    # each right after its figure, read side by side rather than scrolled to
    order = list(teams.columns)
    for change in changes.columns:
        figure = change.removesuffix("_pts").removesuffix("_change")
        figure = figure + "_pct" if figure == "change_fail_rate" else figure
        assert order.index(change) == order.index(figure) + 1, (change, order)
    values = changes.to_numpy(dtype=float)
    assert not (np.signbit(values) & (values == 0)).any()
    assert np.array_equal(np.round(values, 1), values, equal_nan=True)


def test_overview_says_when_the_slos_are_judged(dashboard_demo_url: str, use: Any) -> None:
    """SLOs are judged at the period's end over their own windows: a past quarter's cards
    say so, and its freezes are those in force when it ended, not today's."""
    use(dashboard_demo_url)
    at = run("overview", period="2026Q3")
    assert_clean(at)
    captions = [caption.value.replace("\\", "") for caption in at.caption]  # markdown-escaped
    assert any("each over its own window to 2026-10-01 00:00 UTC" in c for c in captions)
    card = engine_card(dashboard_demo_url, Period.quarter("2026Q3"), Scope())
    frozen = card["budget_policy"]["frozen_at_end"]
    expected = (
        f"frozen at 2026-10-01 00:00 UTC: {components.listed(frozen)}"
        if frozen
        else "none frozen at 2026-10-01 00:00 UTC"
    )
    assert any(expected in c for c in captions), captions
    teams = at.dataframe[0].value
    assert "frozen_at_end" in teams.columns and "frozen_now" not in teams.columns
    # one service picked: its headline, whole teams below, and the page says so
    at = run("overview", period="2026Q3", service="billing-api")
    assert_clean(at)
    captions = [caption.value.replace("\\", "") for caption in at.caption]
    assert any("cover every service of each team" in c and "billing-api" in c for c in captions)


def test_a_change_on_too_few_rows_is_grey(dashboard_demo_url: str, use: Any) -> None:
    """A figure whose tier is "insufficient data" (fewer than 5 rows) shows its change in
    grey, never as a green improvement or an orange decline."""
    use(dashboard_demo_url)
    at = run("overview", service="billing-api")
    assert_clean(at)
    card = engine_card(dashboard_demo_url, last_days(28), Scope(service="billing-api"))
    labels = {
        "deployment_frequency": "Deploys per week",
        "lead_time": "Lead time (median)",
        "change_failure_rate": "Change fail rate",
        "recovery_time": "Recovery (median)",
    }
    few = [key for key in labels if card["dora"][key]["tier"] == "insufficient data"]
    assert few, "the demo's billing-api has a figure on too few rows"
    for key in few:
        assert metric(at, labels[key]).proto.color == 2  # grey


def test_filters_change_the_figures(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run("delivery")
    assert_clean(at)
    org = metric(at, "Deploys per week").value
    sidebar_box(at, "Team").set_value("storefront").run()
    assert_clean(at)
    team = metric(at, "Deploys per week").value
    assert team != org
    card = engine_card(dashboard_demo_url, last_days(28), Scope(team="storefront"))
    assert team == components.per_week(card["dora"]["deployment_frequency"]["per_week"])
    assert at.query_params["team"] == ["storefront"] or at.query_params["team"] == "storefront"
    # the service list follows the team
    services = sidebar_box(at, "Service").options
    assert "search" in services and "billing-api" not in services
    sidebar_box(at, "Service").set_value("search").run()
    assert_clean(at)
    card = engine_card(dashboard_demo_url, last_days(28), Scope(service="search"))
    assert metric(at, "Lead time (median)").value == components.hours(
        card["dora"]["lead_time"]["median_hours"]
    )
    sidebar_box(at, "Period").set_value("90d").run()
    assert_clean(at)
    card = engine_card(dashboard_demo_url, last_days(90), Scope(service="search"))
    assert metric(at, "Lead time (median)").value == components.hours(
        card["dora"]["lead_time"]["median_hours"]
    )


def test_a_shared_link_selects_team_and_period(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    end = today()
    start = end - timedelta(days=42)
    at = run(
        "incidents",
        team="billing",
        period="custom",
        **{"from": f"{start:%Y-%m-%d}", "to": f"{end:%Y-%m-%d}"},
    )
    assert_clean(at)
    card = engine_card(dashboard_demo_url, Period(start, end), Scope(team="billing"))
    assert metric(at, "Incidents").value == components.count(card["incidents"]["count"])
    assert metric(at, "Time to resolve").value == components.hours(
        card["incidents"]["mttr_median_hours"]
    )
    assert sidebar_box(at, "Team").value == "billing"
    assert sidebar_box(at, "Period").value == "custom"


def test_a_link_to_an_unknown_team_says_so(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run("overview", team="<b>nobody</b>", period="1999Q9")
    assert_clean(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "No team named" in warnings and "&lt;b&gt;nobody&lt;/b&gt;" in warnings
    assert "showing the last 28 days" in warnings
    assert sidebar_box(at, "Team").value == "All teams"


def test_team_retro_compares_sprints_and_writes_markdown(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run("team_retro", team="growth")
    assert_clean(at)
    end = today()
    sprint = Period(end - timedelta(days=14), end)
    card = engine_card(dashboard_demo_url, sprint, Scope(team="growth"))
    assert metric(at, "Deploys per week").value == components.per_week(
        card["dora"]["deployment_frequency"]["per_week"]
    )
    notes = at.code[0].value
    assert notes.startswith(
        f"## Retro: growth, {sprint.start:%Y-%m-%d} – {(end - timedelta(days=1)):%Y-%m-%d}"
    )
    assert "### What changed" in notes and "### Slowest changes" in notes
    assert (
        f"| Change fail rate | {components.percent(card['dora']['change_failure_rate']['rate'])} |"
        in notes
    )
    length = next(box for box in at.selectbox if box.label == "Sprint length (days)")
    length.set_value(7).run()
    assert_clean(at)
    assert at.query_params["sprint_days"] in (["7"], "7")


def test_team_retro_of_a_sprint_without_data_offers_the_last_one(
    dashboard_demo_url: str, use: Any
) -> None:
    use(dashboard_demo_url)
    later = today() + timedelta(days=60)  # after the demo's latest rows: no deployment at all
    at = run("team_retro", team="growth", sprint_end=f"{later:%Y-%m-%d}")
    assert_clean(at)
    assert any("No data in this sprint" in str(box.value) for box in at.info)
    assert metric(at, "Deploys per week").value == components.per_week(0.0)
    jump = next(b for b in at.button if b.label.startswith("Show the sprint ending"))
    # the demo's latest day: yesterday, or the day before when the suite crossed midnight
    # after building it
    latest = date.fromisoformat(jump.label.rsplit(" ", 1)[1])
    assert today().date() - timedelta(days=2) <= latest < today().date(), latest
    jump.click().run()
    assert_clean(at)
    assert not any("No data in this sprint" in str(box.value) for box in at.info)
    end = f"{latest + timedelta(days=1):%Y-%m-%d}"  # the address holds the sprint's (open) end
    assert at.query_params["sprint_end"] in ([end], end)


def test_incident_search_narrows_the_index(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run("incidents")
    everything = len(at.dataframe[-1].value)
    at.text_input[0].set_value("regression").run()
    assert_clean(at)
    found = at.dataframe[-1].value
    assert 0 < len(found) < everything
    assert all("regression" in " ".join(map(str, row)).lower() for row in found.itertuples())


def test_reliability_burndown_follows_the_chosen_slo(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run("reliability", slo="auth-availability")
    assert_clean(at)
    choice = next(box for box in at.selectbox if box.label == "SLO")
    assert choice.value == "auth-availability"
    card = engine_card(dashboard_demo_url, last_days(28), Scope())
    slo = next(s for s in card["slos"] if s["name"] == "auth-availability")
    numbers = at.dataframe[1].value
    assert numbers["remaining"].iloc[-1] == pytest.approx(slo["budget_remaining"])


@pytest.mark.parametrize("page", ["reliability", "data_sources"])
def test_a_page_assembles_the_scorecard_once(
    dashboard_demo_url: str, use: Any, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    """The SLO summary, the burn-down, the reliability and the sources views each
    assembled the period's scorecard again beside the cached one (seconds on a first view
    with many SLOs): now they all read that one."""
    from dashboard import data, queries

    assembled: list[Any] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        assembled.append(args)
        return real(*args, **kwargs)

    real = data.assemble
    monkeypatch.setattr(data, "assemble", counted)
    use(dashboard_demo_url)
    queries.clear()
    at = run(page, slo="auth-availability")
    assert_clean(at)
    assert len(at.dataframe[1].value) > 0  # the burn-down, the freshness table
    assert len(assembled) == 1


def test_data_sources_lists_coverage_and_findings(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run("data_sources")
    assert_clean(at)
    coverage = at.dataframe[0].value
    assert list(coverage["measure"]) == [
        "changes_linked",
        "deployments_with_changes",
        "incidents_attributed",
        "slos_with_data",
    ]
    card = engine_card(dashboard_demo_url, last_days(28), Scope())
    attributed = card["attribution"]["explicit"] + card["attribution"]["inferred"]
    row = coverage.set_index("measure").loc["incidents_attributed"]
    assert (row["covered"], row["total"]) == (attributed, card["incidents"]["count"])
    # each card says what its share is out of: these changes are not the lead time's sample
    changes = coverage.set_index("measure").loc["changes_linked"]
    captions = [caption.value.replace("\\", "") for caption in at.caption]
    assert (
        f"{int(changes['covered']):,} of {int(changes['total']):,} committed in the period"
        in captions
    )
    labels = [e.label for e in at.expander]
    assert any(
        label.startswith("Changes committed in the period that no production deployment shipped: ")
        for label in labels
    )
    sources = at.dataframe[1].value
    assert set(sources["source"]) == {"import"} and set(sources["state"]) == {"ok"}
    # the age is shown in words but stays hours underneath, for sorting and the CSV
    fresh = at.dataframe[2].value.set_index("table")
    age = (pd.Timestamp.now(tz="UTC") - fresh.loc["changes", "latest"]).total_seconds() / 3600
    assert fresh.loc["changes", "age_hours"] == pytest.approx(age, abs=0.5)


# --- an empty warehouse ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_an_empty_warehouse_shows_how_to_start(tmp_path: Path, use: Any, page: str) -> None:
    use(f"sqlite:///{tmp_path / 'empty.db'}")
    at = run(page)
    assert_clean(at)
    assert at.info[0].value.startswith(f"The warehouse `{tmp_path / 'empty.db'}` is empty")
    assert any("poise demo" in code.value for code in at.code)
    assert not at.metric


def test_a_warehouse_made_again_in_a_new_file_is_read_at_once(tmp_path: Path, use: Any) -> None:
    """`rm data/demo.db; make demo` under a running dashboard: the pages read the new file,
    not the deleted one through connections still open on it (nor figures cached from it)."""
    path = tmp_path / "again.db"
    use(f"sqlite:///{path}")
    before = run("overview")
    assert_clean(before)
    assert before.info[0].value.startswith(f"The warehouse `{path}` is empty")
    for leftover in tmp_path.glob("again.db*"):  # the file, its WAL and shared memory
        leftover.unlink()
    engine = open_warehouse(f"sqlite:///{path}")
    dashboard_org.build(engine, tmp_path / "files")
    engine.dispose()
    after = run("overview")
    assert_clean(after)
    assert not [info for info in after.info if "is empty" in info.value]
    assert metric(after, "Deploys per week").value != components.MISSING


@pytest.mark.postgres
def test_an_empty_shared_warehouse_does_not_show_its_address(postgres_url: str, use: Any) -> None:
    open_warehouse(postgres_url).dispose()  # migrated, empty
    use(postgres_url)
    at = run("overview")
    assert_clean(at)
    assert at.info[0].value.startswith("The warehouse is empty")
    assert "127.0.0.1" not in at.info[0].value


# --- hostile text ------------------------------------------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_hostile_strings_are_shown_as_text(hostile_url: str, use: Any, page: str) -> None:
    use(hostile_url)
    params = {"team": dashboard_org.names(True)["beta"]} if page == "team_retro" else {}
    at = run(page, **params)
    assert_clean(at)
    nodes = elements(at)
    for node in nodes:
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "allow_html"):
            assert not proto.allow_html, node
        body = (
            str(getattr(node, "value", ""))
            if getattr(node, "type", "") in ("markdown", "caption", "warning", "info")
            else ""
        )
        assert "<script" not in body and "<img" not in body, body
    for chart in at.get("plotly_chart"):
        spec = chart.proto.spec
        assert "<script" not in spec and "<img" not in spec
    if page in ("delivery", "incidents", "reliability"):
        shown = " ".join(frame.value.astype(str).to_csv() for frame in at.dataframe)
        # the titles are in the tables exactly as written, as text
        assert dashboard_org.HOSTILE_SCRIPT in shown or dashboard_org.HOSTILE_IMG in shown
    if page == "incidents":
        table = at.dataframe[-1].value
        # a javascript: postmortem link is not offered as a link
        assert "javascript:alert(1)" not in table["postmortem_url"].astype(str).tolist()
        spec = " ".join(chart.proto.spec for chart in at.get("plotly_chart"))
        assert "&lt;img src=x" in spec  # the service name, escaped for Plotly
    if page == "team_retro":
        notes = at.code[0].value
        assert "&lt;script&gt;" in notes and "<script>" not in notes


def test_hostile_team_in_the_link_is_text(hostile_url: str, use: Any) -> None:
    use(hostile_url)
    at = run("overview", team="<img src=x onerror=alert(2)>")
    assert_clean(at)
    warning = at.warning[0].value
    assert "&lt;img src\\=x onerror\\=alert\\(2\\)&gt;" in warning
    assert "<img" not in warning


def test_delivery_says_which_changes_a_stage_left_out(tmp_path: Path, use: Any) -> None:
    """A change merged before its first commit (a rewritten history, a wrong import) is left
    out of "commit to merge", and the caption says so rather than dropping it silently."""
    url = f"sqlite:///{tmp_path / 'stages.db'}"
    engine = open_warehouse(url)
    deployed = datetime.combine(today(), time(), UTC) - timedelta(days=2)
    org = Org().service("checkout", "payments")
    org.change("ok", "checkout", deployed - timedelta(hours=9), deployed - timedelta(hours=3))
    org.change("odd", "checkout", deployed - timedelta(hours=9), deployed - timedelta(hours=12))
    org.deploy("d1", "checkout", deployed, ["ok", "odd"])
    org.load(engine, tmp_path / "files")
    engine.dispose()
    use(url)
    at = run("delivery")
    assert_clean(at)
    captions = [caption.value.replace("\\", "") for caption in at.caption]
    assert any(
        c.startswith("2 of 2 measured changes have merge times")
        and c.endswith(
            "(merged before the first commit, deployed before the merge): commit to merge 1."
        )
        for c in captions
    ), captions


def test_change_fail_rate_card_says_when_no_incident_data_speaks_for_it(
    tmp_path: Path, use: Any
) -> None:
    """A git-only organisation: 0 % change fail rate, and the card says that no incident
    source speaks for these deployments."""
    url = f"sqlite:///{tmp_path / 'git-only.db'}"
    engine = open_warehouse(url)
    org = Org().service("checkout", "payments")
    end = today()
    for day in range(1, 8):
        org.deploy(f"d{day}", "checkout", datetime.combine(end, time(), UTC) - timedelta(days=day))
    org.load(engine, tmp_path / "files")
    engine.dispose()
    use(url)
    for page in ("overview", "delivery"):
        at = run(page)
        assert_clean(at)
        assert metric(at, "Change fail rate").value == "0.0 %"
        captions = [caption.value.replace("\\", "") for caption in at.caption]
        assert "0 failed of 7 · 7 with no incident data" in captions, captions
        # no tier badge it could not have missed ("elite" before)
        badges = [m.value for m in at.markdown if "-badge[" in m.value]
        assert any(b.endswith(f"{components.NO_INCIDENT_DATA}]") for b in badges), badges
        assert not any(b.endswith("elite]") for b in badges), badges
        if page == "overview":  # and under the team table, which team it concerns
            # no incident anywhere: no figure, and where to get them, rather than "0"
            assert metric(at, "Incidents").value == components.MISSING
            assert any(caption.startswith("no incident on record: sync") for caption in captions)
            assert any(
                caption.startswith("Change fail rate rests on rollbacks and fixes alone")
                and caption.endswith("by payments (7 of 7).")
                for caption in captions
            ), captions
            # and the team's row gives no tier its rate could not have earned otherwise
            row = at.dataframe[0].value.set_index("team").loc["payments"]
            assert row["change_fail_tier"] == components.NO_INCIDENT_DATA
        else:  # the week-by-week rate is grey and says why, not a row of 0 % weeks
            specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
            weekly = next(s for s in specs if "Change fail rate" in str(s["layout"]["yaxis"]))
            notes = [note["text"] for note in weekly["layout"].get("annotations", [])]
            assert "no incident data: only rollbacks and fixes count" in notes, notes
            assert weekly["data"][0]["line"]["color"] == charts.GREY
            # each deployment's row says why, without repeating its id
            table = next(f.value for f in at.dataframe if "reason" in f.value.columns)
            assert len(table) == 7
            assert all(r.startswith("did not fail: no incident") for r in table["reason"])
    # the Incidents page says there is no incident source, not that the period was quiet
    incidents = run("incidents")
    assert_clean(incidents)
    assert metric(incidents, "Incidents").value == components.MISSING
    assert metric(incidents, "Attributed").value == components.MISSING
    assert (
        incidents.info[0]
        .value.replace("\\", "")
        .startswith("No incident is on record for this scope's services: sync PagerDuty")
    )
    # the retro does not call 0 incidents against 0 "about the same": there is no figure
    retro = run("team_retro", team="payments")
    assert_clean(retro)
    assert any(
        caption.value.replace("\\", "").startswith(
            "No incident on record for the services of payments:"
        )
        for caption in retro.caption
    )
    notes = retro.code[0].value
    assert "| Incidents | — | — | no comparison |" in notes, notes
    assert "| Change fail rate | 0.0 % | — | no incident data |" in notes, notes
    assert "No figure: no incident on record for these services" in notes

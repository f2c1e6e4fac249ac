"""The dashboard's pages on odd but legitimate warehouses, under Streamlit's AppTest: data
that ended years ago, a period before the first row, teams configured without a service,
incidents never acknowledged or resolved, 200-character names holding HTML and Markdown,
and one team of 300 services. Each test pins a fault these warehouses showed: a page must
say why a figure or a chart is empty, offer periods that hold data, and keep its layout
whatever the names and counts."""

from __future__ import annotations

import html
import json
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from metrics_org import Org
from test_page_incidents import figure
from test_pages import assert_clean, engine_card, metric, run, sidebar_box

from dashboard import charts, components
from dashboard.filters import today
from metrics import Period, Scope, Settings
from metrics.derived import refresh_derived
from poise.catalog import apply_config
from poise.config import AnomalyConfig, load_config
from poise.warehouse import open_warehouse

GREY = 2  # Metric.proto.color of a change that is neither better nor worse
# 200 characters each (the warehouse's longest names), with HTML, quotes and Markdown
TEAM = ('Équipe-🚀<b>bold</b>"quoted" & $x$ ' + "t" * 200)[:200]
SERVICE = ("svc-<i>it</i> [link](javascript:alert(1)) :red[x] `tick` " + "s" * 200)[:200]
SLO = ('slo-✓<u>u</u>"' + "z" * 200)[:200]
PAST_FIRST = datetime(2018, 9, 3, 10, tzinfo=UTC)


def build(org: Org, folder: Path) -> str:
    url = f"sqlite:///{folder / 'probe.db'}"
    engine = open_warehouse(url)
    try:
        org.load(engine, folder / "files")
        refresh_derived(engine, Settings())
    finally:
        engine.dispose()
    return url


def midnight(days_ago: int) -> datetime:
    return today() - timedelta(days=days_ago)


def shown_cells(at: Any, position: int = 0) -> pd.DataFrame:
    """A styled table's cells as the page writes them (the Styler's display values)."""
    styler = at.dataframe[position].proto.arrow_data.styler
    return pa.ipc.open_stream(styler.display_values).read_all().to_pandas()


def captions(at: Any) -> list[str]:
    """The captions as a reader sees them (the page escapes names for Markdown)."""
    return [html.unescape(caption.value.replace("\\", "")) for caption in at.caption]


# --- data that ended years ago ------------------------------------------------------------------


@pytest.fixture(scope="module")
def past_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One service deploying twice a week from 2018-09-03 to the end of 2018, and two
    incidents: a demo built with `--until` far in the past looks like this."""
    org = Org().service("web", "alpha")
    for week in range(17):
        for part in range(2):
            moment = PAST_FIRST + timedelta(days=7 * week + 3 * part)
            org.change(f"c{week}-{part}", "web", moment - timedelta(hours=5))
            org.deploy(f"d{week}-{part}", "web", moment, [f"c{week}-{part}"])
    org.incident("i1", "web", PAST_FIRST + timedelta(days=30, hours=1))
    org.incident("i2", "web", PAST_FIRST + timedelta(days=80, hours=1), cause="capacity")
    return build(org, tmp_path_factory.mktemp("past"))


def test_a_warehouse_whose_data_ended_years_ago_offers_its_quarters(
    past_url: str, use: Any
) -> None:
    """The quarters on offer ran back 12 quarters from today only: the report of such a
    warehouse defaulted to an empty recent quarter and none of its own could be picked."""
    use(past_url)
    at = run("report")
    assert_clean(at)
    quarter = next(box for box in at.selectbox if box.label == "Quarter")
    assert quarter.value == "2018Q4"
    assert {"2018Q4", "2018Q3"} <= set(quarter.options)
    assert any("poise report --quarter 2018Q4" in caption for caption in captions(at))
    overview = run("overview")
    assert_clean(overview)
    assert {"2018Q4", "2018Q3"} <= set(sidebar_box(overview, "Period").options)


def test_a_period_before_the_first_data_says_so_and_offers_it(past_url: str, use: Any) -> None:
    """The quarter before the first row showed a page of zeros without a word; now it says
    where the data starts and offers a period of the same length from there."""
    use(past_url)
    at = run("overview", period="2018Q2")
    assert_clean(at)
    notes = [box.value for box in at.info]
    assert (
        "No data in this period: the first deployment or incident is from 2018-09-03." in notes
    ), notes
    jump = next(button for button in at.button if button.key == "jump-to-data")
    assert jump.label == "Show 2018-09-03 to 2018-12-02"  # as long as 2018Q2: 91 days
    jump.click().run()
    assert_clean(at)
    assert at.query_params["from"] in (["2018-09-03"], "2018-09-03")
    card = engine_card(
        past_url,
        Period(datetime(2018, 9, 3, tzinfo=UTC), datetime(2018, 12, 3, tzinfo=UTC)),
        Scope(),
    )
    assert metric(at, "Deploys per week").value == components.per_week(
        card["dora"]["deployment_frequency"]["per_week"]
    )
    assert not [box for box in at.info if box.value.startswith("No data in this period")]


def test_a_change_of_nothing_is_grey(past_url: str, use: Any) -> None:
    """No incident in the period nor in the one before, both with deployments: "+0" is no
    change, not a red arrow (incidents are better lower)."""
    use(past_url)
    # between the two incidents (2018-10-03 and 2018-11-22), and so is the period before
    at = run("overview", **{"from": "2018-10-29", "to": "2018-11-19"})
    assert_clean(at)
    incidents = metric(at, "Incidents")
    assert incidents.value == "0" and incidents.delta == "+0"
    assert incidents.proto.color == GREY


def test_a_period_before_the_data_is_no_figure_to_compare_with(past_url: str, use: Any) -> None:
    """The quarter after an empty one (2018Q3 after 2018Q2, before the first row): its
    delta read "+0.6" per week against a zero that was no data."""
    use(past_url)
    at = run("overview", period="2018Q3")
    assert_clean(at)
    frequency = metric(at, "Deploys per week")
    assert frequency.value != "0.0" and not frequency.delta
    assert not metric(at, "Incidents").delta


# --- teams configured without a service -----------------------------------------------------------


def test_a_team_without_slo_data_has_no_slos_met_figure(tmp_path: Path, use: Any) -> None:
    """Teams from poise.yaml with no service yet: their row read "0 of 0" SLOs met where
    the headline card (rightly) gives no figure."""
    config = tmp_path / "poise.yaml"
    config.write_text("teams:\n  - name: alpha\n    size: 5\n  - name: beta\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'teams.db'}"
    engine = open_warehouse(url)
    apply_config(engine, load_config(str(config)))
    engine.dispose()
    use(url)
    at = run("overview")
    assert_clean(at)
    assert metric(at, "SLOs met").value == components.MISSING
    cells = shown_cells(at).set_index("team")
    assert list(cells["slos_met"]) == [components.MISSING, components.MISSING]


# --- incidents never acknowledged nor resolved ------------------------------------------------


def test_response_times_say_why_a_panel_is_empty(tmp_path: Path, use: Any) -> None:
    """Every incident still open and none acknowledged: the acknowledge and resolve panels
    were blank axes; each now says there is nothing to draw."""
    org = Org().service("web", "alpha")
    for number in range(1, 5):
        org.incident(
            f"open-{number}",
            "web",
            midnight(3 * number),
            detected=timedelta(minutes=4) if number % 2 else None,
            acknowledged=None,
            resolved=None,
        )
    use(build(org, tmp_path))
    at = run("incidents")
    assert_clean(at)
    assert metric(at, "Time to resolve").value == components.MISSING
    assert "n = 0 resolved, 4 still open" in captions(at)
    for by in ("severity", "cause"):
        notes = [note["text"] for note in figure(at, f"response-by-{by}")["layout"]["annotations"]]
        assert "none acknowledged" in notes and "none resolved yet" in notes, notes
        assert "none detected" not in notes  # two were detected: that panel has its bar


# --- long names with HTML and Markdown ---------------------------------------------------------


@pytest.fixture(scope="module")
def names_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 200-character team, service and SLO: the service deploys daily and has spent its
    budget (so it is frozen), and an incident with a long cause."""
    org = Org().service(SERVICE, TEAM).service("plain", "other")
    for day in range(1, 20):
        org.change(f"c{day}", SERVICE, midnight(day) - timedelta(hours=5))
        org.deploy(f"d{day}", SERVICE, midnight(day), [f"c{day}"])
        org.deploy(f"p{day}", "plain", midnight(day) - timedelta(hours=2))
    org.incident("i1", SERVICE, midnight(3) + timedelta(minutes=10), caused_by="d3")
    org.incident("i2", SERVICE, midnight(6) + timedelta(minutes=10), cause="<b>cause</b> " * 15)
    org.slo(SLO, SERVICE, 0.99)
    org.sli(SLO, midnight(30), 30 * 24, 980, 1000)
    return build(org, tmp_path_factory.mktemp("names"))


def written(text: str) -> str:
    """A Plotly label as a reader sees it."""
    return html.unescape(text)


def test_long_names_are_cut_on_plots_and_cards(names_url: str, use: Any) -> None:
    """A 200-character name squeezed each plot to a sliver beside its axis label and made
    cards hundreds of pixels tall; the plots and cards now cut it ("…"), the tables and
    hovers keep it whole, and nothing of it is read as HTML or Markdown."""
    use(names_url)
    most = charts.LABEL_CHARS
    at = run("overview")
    assert_clean(at)
    lowest = metric(at, "Lowest budget left")
    assert lowest.value.startswith("-")  # overspent: the SLO is exhausted
    assert charts.cut(SLO) in captions(at)
    frozen = next(c for c in captions(at) if "frozen at" in c and "rollbacks or fixes" in c)
    assert frozen.endswith(charts.cut(SERVICE)), frozen
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["team"]["width"] == "medium"  # the pinned name, not the figures, is cut
    assert TEAM in set(at.dataframe[0].value["team"])  # the CSV keeps it whole
    velocity = figure(at, "velocity-stability")
    labels = [written(text) for trace in velocity["data"] for text in trace.get("text") or []]
    assert TEAM not in labels and all(len(label) <= most for label in labels), labels
    assert any(label.startswith("Équipe-🚀<b>bold</b>") for label in labels)  # as text

    at = run("reliability")
    assert_clean(at)
    slos = json.loads(at.dataframe[0].proto.columns)
    assert slos["slo"]["width"] == slos["service"]["width"] == "medium"
    title = figure(at, "burndown")["layout"]["yaxis"]["title"]["text"]
    assert written(title) == f"budget remaining<br>{charts.cut(SLO)}"
    ticks = figure(at, "freezes")["layout"]["yaxis"]["ticktext"]
    assert [written(tick) for tick in ticks] == [charts.cut(SERVICE)]  # the frozen service

    at = run("incidents", service=SERVICE)
    assert_clean(at)
    ticks = figure(at, "incident-timeline")["layout"]["yaxis"]["ticktext"]
    assert [written(tick) for tick in ticks] == [charts.cut(SERVICE)]
    causes = figure(at, "causes")
    assert html.escape(("<b>cause</b> " * 15).strip(), quote=False) in causes["data"][0]["y"]
    assert all(len(written(tick)) <= most for tick in causes["layout"]["yaxis"]["ticktext"])
    assert SERVICE in set(at.dataframe[-1].value["service"])  # the index keeps it whole


def test_the_report_command_is_quoted_for_a_shell(names_url: str, use: Any) -> None:
    use(names_url)
    at = run("report", team=TEAM)
    assert_clean(at)
    said = next(c for c in captions(at) if "poise report --quarter" in c)
    assert f" --team {shlex.quote(TEAM)}`" in said, said


# --- one team of 300 services -----------------------------------------------------------------


def test_a_freeze_of_many_services_names_a_few_on_its_card(tmp_path: Path, use: Any) -> None:
    """300 services, a dozen of them frozen: the freeze card listed every frozen service
    (a card thousands of pixels tall); it names three and counts the rest."""
    org = Org().service("lonely", "small")
    for number in range(300):
        service = f"service-{number:03d}"
        org.service(service, "big")
        org.deploy(f"d{number}", service, midnight(1 + number % 20) + timedelta(hours=9))
    for number in range(12):  # each spent its budget: its service is frozen
        org.slo(f"slo-{number:02d}", f"service-{number:03d}", 0.999)
        org.sli(f"slo-{number:02d}", midnight(3), 48, 990, 1000)
    url = build(org, tmp_path)
    use(url)
    at = run("overview", team="big")
    assert_clean(at)
    assert len(sidebar_box(at, "Service").options) == 301  # "All services" and every one
    card = engine_card(url, Period(midnight(28), today()), Scope(team="big"))
    assert metric(at, "Deploys per week").value == components.per_week(
        card["dora"]["deployment_frequency"]["per_week"]
    )
    frozen = card["budget_policy"]["frozen_at_end"]
    assert len(frozen) == 12
    note = next(c for c in captions(at) if "rollbacks or fixes" in c)
    assert note.endswith(f": {', '.join(frozen[:3])} and 9 more"), note


def test_unusual_weeks_say_whether_the_period_is_too_short_or_holds_nothing(
    past_url: str, use: Any
) -> None:
    """It said "choose a period that covers at least one whole week" also for a period of
    whole weeks in which (and before which) nothing happened."""
    use(past_url)
    quiet = run("overview", **{"from": "2019-06-03", "to": "2019-07-01"})  # months after the end
    assert_clean(quiet)
    notes = [box.value.replace("\\", "") for box in quiet.info]
    history = AnomalyConfig().history_weeks
    said = f"falls in this period's weeks or in the {history} weeks before them: there is nothing"
    assert any(said in note for note in notes), notes
    assert not any("choose a longer period" in note for note in notes)
    short = run("overview", **{"from": "2018-10-03", "to": "2018-10-07"})  # Wednesday to Sunday
    assert_clean(short)
    notes = [box.value.replace("\\", "") for box in short.info]
    assert any("holds no whole week that has ended" in note for note in notes), notes


def test_short_names_keep_their_columns_to_their_size(dashboard_demo_url: str, use: Any) -> None:
    """Capping every name column (for 200-character names) pushed the Incidents column off
    the teams table at 1440 px for names like `billing`: only long names are capped."""
    use(dashboard_demo_url)
    at = run("overview")
    assert_clean(at)
    assert "width" not in json.loads(at.dataframe[0].proto.columns)["team"]
    assert components.name_width(["billing", "data-platform"]) is None
    assert components.name_width(["x" * (components.NAME_FITS + 1)]) == "medium"


def test_custom_days_still_to_come_are_cut_to_date(past_url: str, use: Any) -> None:
    """A last day still to come divided the deployments by days that have not happened;
    it is cut at the start of today as a quarter not over is, and days all to come are
    refused in the sidebar with the reason, keeping the period shown before."""
    use(past_url)
    first = midnight(10)
    later = f"{today() + timedelta(days=30):%Y-%m-%d}"
    at = run("overview", period="custom", **{"from": f"{first:%Y-%m-%d}", "to": later})
    assert_clean(at)
    shown = f"{first:%Y-%m-%d} – {midnight(1):%Y-%m-%d} (to date)"
    assert any(shown in text for text in captions(at)), captions(at)[0]
    days = {box.label: box for box in at.sidebar.date_input}
    days["Last day (included)"].set_value((today() + timedelta(days=5)).date()).run()
    assert_clean(at)
    assert any(shown in text for text in captions(at))
    days = {box.label: box for box in at.sidebar.date_input}
    days["First day"].set_value((today() + timedelta(days=1)).date()).run()
    assert_clean(at)
    assert any("which has not ended" in box.value for box in at.sidebar.warning)
    assert any(shown in text for text in captions(at))

"""The Team retro page: one team or none, the filters it keeps for the next page, verdicts
that do not call noise "worse", and an error budget spent that means what it says.

The rule and the budget arithmetic on made-up numbers (dashboard.retro); the page under
Streamlit's AppTest on the session's demo warehouse (tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from test_pages import ROOT, TIMEOUT, assert_clean, metric, run, sidebar_box

from dashboard import filters, retro
from dashboard.filters import today
from metrics.burndown import spent_since

FIGURES = {figure.key: figure for figure in retro.CHANGED}


def judge(key: str, now: float, then: float, rows: tuple[int, int] | None = None) -> str:
    return retro.verdict({"current": now, "previous": then}, FIGURES[key], rows, 5)


# --- the verdict rule ---------------------------------------------------------------------------


def test_changes_within_noise_are_about_the_same() -> None:
    # the reviewer's cases on the demo: all three were called "worse"
    assert judge("lead_time_median_hours", 2.07, 2.05, (141, 150)) == retro.SAME
    assert judge("rework_rate", 0.109, 0.103, (101, 116)) == retro.SAME
    assert judge("toil_share", 0.273, 0.262) == retro.SAME
    # under 10 % but over the floor is still noise; over 10 % but under the floor too
    assert judge("lead_time_median_hours", 60.0, 56.0, (50, 50)) == retro.SAME
    assert judge("recovery_median_hours", 2.0, 1.6, (10, 10)) == retro.SAME
    assert judge("incidents", 3, 2) == retro.SAME
    assert judge("deployments_per_week", 1.0, 0.6) == retro.SAME


def test_real_changes_keep_their_direction() -> None:
    assert judge("change_failure_rate", 0.099, 0.129, (101, 116)) == retro.BETTER
    assert judge("deployments_per_week", 50.5, 58.0) == retro.WORSE
    assert judge("mttr_median_hours", 2.8, 1.6, (9, 12)) == retro.WORSE
    assert judge("incidents", 9, 12) == retro.BETTER
    # from zero there is no relative change: the floor alone decides
    assert judge("change_failure_rate", 0.05, 0.0, (40, 40)) == retro.WORSE
    assert judge("incidents", 1, 0) == retro.SAME


def test_a_figure_on_few_rows_is_too_few_to_tell() -> None:
    assert judge("recovery_median_hours", 15.9, 1.0, (2, 7)) == retro.TOO_FEW
    # deployments per week is a count: too few only when both sprints are small
    assert judge("deployments_per_week", 1.5, 0.5, (3, 1)) == retro.TOO_FEW
    assert judge("deployments_per_week", 1.0, 10.0, (2, 20)) == retro.WORSE
    assert judge("lead_time_median_hours", 20.0, 2.0, (4, None)) == retro.TOO_FEW  # type: ignore[arg-type]
    assert retro.verdict({"current": 1.0, "previous": None}, FIGURES["toil_share"]) == (
        retro.NO_COMPARISON
    )


def test_samples_come_from_both_sprints_scorecards() -> None:
    now = {"dora": {"lead_time": {"changes": 12}}, "incidents": {"mttr_n": 3}}
    then = {"dora": {"lead_time": {"changes": 7}}}
    rows = retro.samples(now, then)
    assert rows["lead_time_median_hours"] == (12, 7)
    assert rows["mttr_median_hours"] == (3, None)
    assert rows["deployments_per_week"] == (None, None)
    assert "incidents" not in rows and "toil_share" not in rows


def test_the_rule_in_words_names_its_thresholds() -> None:
    words = retro.noise_rule(5)
    assert "less than 10 %" in words and "fewer than 5 rows" in words
    assert "0.5 deployments a week" in words and "30 min" in words
    assert "2 percentage points" in words and "incidents moving by one" in words
    assert "fewer than" not in retro.noise_rule(None)


# --- the error budget a sprint spent -------------------------------------------------------------


def burndown(start: datetime, bad: list[float]) -> pd.DataFrame:
    """Hourly buckets from `start`; `ts` is each bucket's end, as metrics.burndown has it."""
    ts = [pd.Timestamp(start + timedelta(hours=hour + 1)) for hour in range(len(bad))]
    return pd.DataFrame({"ts": ts, "bad": bad})


def test_spent_counts_the_sprints_own_bad_events_only() -> None:
    window_start = datetime(2026, 10, 1, tzinfo=UTC)
    sprint_start = window_start + timedelta(hours=4)
    series = burndown(window_start, [50.0, 50.0, 0.0, 0.0, 10.0, 15.0])
    slo = {"budget_events": 100.0}
    # the bucket ending at the sprint's start belongs to the sprint before
    assert spent_since(slo, series, sprint_start) == pytest.approx(0.25)
    assert spent_since({"budget_events": None}, series, sprint_start) is None
    assert spent_since(slo, series.iloc[:0], sprint_start) is None


def test_a_recovering_budget_is_not_negative_spending() -> None:
    """The reviewer's −49.82 %: the budget left rose (old bad events left the window) while
    the sprint itself spent some."""
    change = {
        "slos": {"api": {"previous_budget_remaining": -0.004, "budget_remaining": 0.494}},
    }
    rows = retro.budget_rows(change, {"api": 0.23})
    assert rows == [
        {"slo": "api", "budget_at_start": -0.004, "budget_at_end": 0.494, "spent": 0.23}
    ]
    notes = retro.retro_markdown(
        "t",
        "s",
        {"people": {}, "incidents": {}},
        change,
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame(),
        rows={},
        spent={"api": 0.23},
    )
    assert "| api | 23.0 % | -0.4 % | 49.4 % |" in notes
    assert retro.BUDGET_NOTE in notes and retro.noise_rule(5) in notes
    assert "Unusual weeks" not in notes  # not given: not claimed to be none


def test_the_notes_list_the_unusual_weeks() -> None:
    unusual = pd.DataFrame(
        [
            {
                "week": pd.Timestamp("2026-09-14", tz="UTC"),
                "what": "ledger-latency",
                "figure": "weekly SLI",
                "value": "98.587 %",
                "usual": "98.741 %–99.441 %",
                "median": "99.091 %",
                "direction": "worse",
                "description": "…",
            }
        ]
    )
    card: dict[str, Any] = {"people": {}, "incidents": {}}
    empty = pd.DataFrame()
    notes = retro.retro_markdown("t", "s", card, {}, empty, empty, empty, unusual=unusual)
    assert (
        "### Unusual weeks\n\n| Week of | What | Figure | Value | Usual | Direction |\n|---|---|---|---|---|---|\n"
        "| 2026-09-14 | ledger-latency | weekly SLI | 98.587 % | 98.741 %–99.441 % | worse |\n"
        "\n### Notes"
    ) in notes
    quiet = retro.retro_markdown("t", "s", card, {}, empty, empty, empty, unusual=unusual.iloc[:0])
    assert f"### Unusual weeks\n\n{retro.NO_UNUSUAL_WEEK}\n" in quiet


# --- the page -------------------------------------------------------------------------------------


def table_with(at: Any, *columns: str) -> pd.DataFrame:
    found = [frame.value for frame in at.dataframe if set(columns) <= set(frame.value.columns)]
    assert found, [list(frame.value.columns) for frame in at.dataframe]
    value = found[0]
    return value.data if hasattr(value, "data") else value


def test_all_teams_shows_no_retro_until_a_team_is_chosen(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run("team_retro")
    assert_clean(at)
    assert sidebar_box(at, "Team").value == filters.ALL_TEAMS
    message = " ".join(str(box.value) for box in at.info)
    assert "choose the team here or in the sidebar" in message
    assert not at.dataframe and not at.metric and not at.code  # no team's retro meanwhile
    picker = at.selectbox(key="retro-team")
    assert picker.value is None
    picker.set_value("growth").run()
    assert_clean(at)
    # the page's choice is the sidebar's team filter: both name the same team
    assert sidebar_box(at, "Team").value == "growth"
    assert at.query_params["team"] in (["growth"], "growth")
    assert at.code[0].value.startswith("## Retro: growth, ")
    assert not [box for box in at.selectbox if box.key == "retro-team"]


def test_the_service_filter_survives_the_retro(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run("team_retro", service="search", period="90d")
    assert_clean(at)
    assert at.code[0].value.startswith("## Retro: storefront, ")  # the service's team
    assert at.query_params["service"] in (["search"], "search")
    assert at.query_params["period"] in (["90d"], "90d")
    assert at.session_state[filters.MEMORY]["service"] == "search"
    assert any("service filter" in caption.value for caption in at.caption)
    # another sprint length: the page runs again, the service stays
    next(box for box in at.selectbox if box.label == "Sprint length (days)").set_value(7).run()
    assert at.query_params["service"] in (["search"], "search")
    # a team of its own in the sidebar: the service is not that team's, and is dropped
    sidebar_box(at, "Team").set_value("billing").run()
    assert_clean(at)
    assert "service" not in at.query_params
    assert "service" not in at.session_state[filters.MEMORY]


def test_the_sprint_follows_the_visitor_back_to_the_page(dashboard_demo_url: str, use: Any) -> None:
    """Streamlit empties the address on a page switch: the session remembers the sprint
    last shown, and a link naming a sprint still wins."""
    use(dashboard_demo_url)
    end = today() - timedelta(days=7)
    at = AppTest.from_file(str(ROOT / "pages" / "team_retro.py"), default_timeout=TIMEOUT)
    at.query_params["team"] = "growth"
    at.session_state["poise_retro_sprint"] = {"sprint_end": f"{end:%Y-%m-%d}", "sprint_days": "7"}
    at.run()
    assert_clean(at)
    assert at.code[0].value.startswith(
        f"## Retro: growth, {end - timedelta(days=7):%Y-%m-%d} – {end - timedelta(days=1):%Y-%m-%d}"
    )
    assert at.query_params["sprint_days"] in (["7"], "7")
    linked = run("team_retro", team="growth", sprint_days="21")
    assert linked.query_params["sprint_days"] in (["21"], "21")


GREY = 2  # streamlit's MetricProto.MetricColor.GRAY


def test_verdicts_follow_the_rule_and_budgets_spent_are_not_negative(
    dashboard_demo_url: str, use: Any
) -> None:
    use(dashboard_demo_url)
    at = run("team_retro", team="growth")
    assert_clean(at)
    verdicts = table_with(at, "figure", "verdict")
    allowed = {retro.BETTER, retro.WORSE, retro.SAME, retro.TOO_FEW, retro.NO_COMPARISON}
    assert set(verdicts["verdict"]) <= allowed
    assert "10 %" in (at.subheader[0].proto.help or "")
    # a card's change is grey when the table calls it about the same or too few to tell,
    # green or orange otherwise (Metric.proto.color: 2 is grey)
    words = dict(zip(verdicts["figure"], verdicts["verdict"], strict=True))
    cards = {
        "Lead time (median)": "Lead time (median)",
        "Change fail rate": "Change fail rate",
        "Recovery (median)": "Recovery time (median)",
    }
    for card, figure in cards.items():
        settled = words[figure] in (retro.SAME, retro.TOO_FEW)
        assert (metric(at, card).proto.color == GREY) == settled, (card, words[figure])
    budgets = table_with(at, "slo", "spent", "budget_at_start", "budget_at_end")
    assert len(budgets) >= 1
    assert (budgets["spent"].dropna() >= 0).all()
    notes = at.code[0].value
    assert "Spent in the sprint" in notes and retro.BUDGET_NOTE in notes
    # the unusual weeks travel with the notes, as the page lists them
    unusual = notes.split("### Unusual weeks\n\n", 1)[1].split("\n\n### Notes", 1)[0]
    weeks = [df for df in at.dataframe if "direction" in df.value.columns]
    if weeks:
        listed = weeks[0].value
        assert unusual.count("\n") == len(listed) + 1  # header and rule, one line a week
        assert all(what in unusual for what in listed["what"])
    else:
        assert unusual == retro.NO_UNUSUAL_WEEK
    # the figure a table is about comes right after its identifier
    slowest = table_with(at, "change_id", "lead_hours")
    assert list(slowest.columns[:2]) == ["change_id", "lead_hours"]
    failed = table_with(at, "id", "recovery_hours", "reason")
    assert list(failed.columns[:2]) == ["id", "recovery_hours"]
    assert failed.columns[-1] == "reason"
    # why each failed, going on from the heading: not its id again, nor "failed"
    assert len(failed) and all(
        not reason.startswith((ident, "failed")) and ("attributed" in reason or "by" in reason)
        for ident, reason in zip(failed["id"], failed["reason"], strict=True)
    ), failed["reason"].tolist()

"""The engine's additions for the dashboard: lead-time stages, burn-down, SLO summary,
coverage, sources and freshness, and the glossary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dashboard_org
import pandas as pd
import pytest
from sqlalchemy import Engine

from metrics import Period, Scope, details, reliability, sources
from metrics.burndown import burndown, forecast_line, load_burndown
from metrics.glossary import TERMS, help_text, term
from metrics.scorecard import scorecard

UNTIL = datetime(2026, 7, 1, tzinfo=UTC)
PERIOD = Period(UNTIL - timedelta(days=28), UNTIL)


@pytest.fixture
def org(warehouse: Engine, tmp_path: Path) -> Engine:
    dashboard_org.build(warehouse, tmp_path / "files", until=UNTIL)
    return warehouse


def _t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_lead_time_stages_split_at_the_pull_request() -> None:
    changes = pd.DataFrame(
        {
            "change_id": ["a", "b", "c"],
            "committed_at": [_t("2026-06-01 00:00"), _t("2026-06-01 00:00"), _t("2026-06-02")],
            "deployed_at": [_t("2026-06-01 10:00"), _t("2026-06-01 06:00"), _t("2026-06-01")],
            "lead_hours": [10.0, 6.0, -24.0],
        }
    )
    described = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "opened_at": [_t("2026-06-01 02:00"), pd.NaT, pd.NaT],
            "merged_at": [_t("2026-06-01 05:00"), _t("2026-06-01 07:00"), pd.NaT],
        }
    )
    stages = details.lead_time_stages(changes, described).set_index("change_id")
    assert list(stages.index) == ["a", "b"]  # c's lead time does not count
    assert stages.loc[
        "a", ["coding_hours", "review_hours", "before_merge_hours", "waiting_hours"]
    ].tolist() == [2.0, 3.0, 5.0, 5.0]
    # merged after the deployment: that stage is out of order, so unknown, not negative
    assert pd.isna(stages.loc["b", "waiting_hours"])
    assert stages.loc["b", "before_merge_hours"] == 7.0
    assert pd.isna(stages.loc["b", "coding_hours"])
    summary = details.stage_summary(stages.reset_index()).set_index("stage")
    assert summary.loc["coding_hours", "changes"] == 1
    assert summary.loc["before_merge_hours", "median_hours"] == 6.0
    assert summary.loc["waiting_hours", "changes"] == 1
    # b was merged after it deployed: said, per stage, not silently dropped
    assert summary["out_of_order"].to_dict() == {
        "coding_hours": 0,
        "review_hours": 0,
        "before_merge_hours": 0,
        "waiting_hours": 1,
    }


def test_change_and_incident_details_by_id(org: Engine) -> None:
    with org.connect() as connection:
        described = details.change_details(connection, ["web-c200", "api-u0", "nope", None])
        incidents = details.incident_details(connection, ["inc-1", "inc-2"])
    assert sorted(described["id"]) == ["api-u0", "web-c200"]
    row = described.set_index("id").loc["web-c200"]
    assert row["title"] == "Change 20.0" and row["author"] == "dev@example.com"
    assert row["merged_at"] - (UNTIL - timedelta(days=20)) == timedelta(hours=1 + 10 - 3 - 0)
    assert pd.isna(row["opened_at"])
    links = incidents.set_index("id")["postmortem_url"]
    assert links["inc-1"] == "https://wiki.example.com/pm/inc-1"
    assert pd.isna(links["inc-2"]) or links["inc-2"] == ""


def test_burndown_ends_at_the_scorecards_budget(org: Engine) -> None:
    card = scorecard(org, PERIOD, Scope(team="alpha"), now=UNTIL)
    slo = next(s for s in card["slos"] if s["name"] == "web-availability")
    series = load_burndown(org, slo)
    assert len(series) == 28 * 24
    assert series["remaining"].iloc[-1] == pytest.approx(slo["budget_remaining"])
    assert series["remaining"].is_monotonic_decreasing
    assert series["even_burn"].iloc[-1] == pytest.approx(0.0)
    assert series["even_burn"].iloc[0] == pytest.approx(1 - 1 / (28 * 24))
    # the bad stretch (40 bad an hour for three hours) is where the line drops fastest
    drops = (-series["remaining"].diff()).fillna(0)
    steepest = series.loc[drops.nlargest(3).index, "ts"].sort_values()
    assert steepest.iloc[0] == UNTIL - timedelta(days=20) + timedelta(hours=1)


def test_burndown_of_a_slo_without_events_is_empty() -> None:
    slo = {
        "name": "x",
        "window": {"from": "2026-06-01T00:00:00Z", "to": "2026-06-29T00:00:00Z", "ends": None},
        "budget_events": None,
    }
    assert burndown(slo, pd.DataFrame(columns=["ts", "good", "total"])).empty


def test_forecast_line_runs_from_now_to_exhaustion() -> None:
    slo = {
        "window": {"to": "2026-06-29T00:00:00Z"},
        "budget_remaining": 0.4,
        "forecast_exhausted_at": "2026-07-03T00:00:00Z",
    }
    line = forecast_line(slo)
    assert line["remaining"].tolist() == [0.4, 0.0]
    assert line["ts"].iloc[1] == _t("2026-07-03")
    assert forecast_line({**slo, "forecast_exhausted_at": None}).empty
    assert forecast_line({**slo, "budget_remaining": -0.1}).empty


def test_slo_summary_counts_met_lowest_and_worst() -> None:
    slos = [
        {
            "name": "a",
            "sli": 0.999,
            "target": 0.99,
            "budget_remaining": 0.9,
            "status": "ok",
            "alert": {"state": "none"},
        },
        {
            "name": "b",
            "sli": 0.98,
            "target": 0.99,
            "budget_remaining": -1.0,
            "status": "exhausted",
            "alert": {"state": "page"},
        },
        {
            "name": "c",
            "sli": 0.995,
            "target": 0.995,
            "budget_remaining": 0.2,
            "status": "at_risk",
            "alert": {"state": "ticket"},
        },
        {
            "name": "d",
            "sli": None,
            "target": 0.9,
            "budget_remaining": None,
            "status": None,
            "alert": {"state": "none"},
        },
    ]
    summary = reliability.summarise(slos)
    assert summary["slos"] == 4 and summary["with_data"] == 3
    assert summary["met"] == 2 and summary["met_share"] == pytest.approx(2 / 3)
    assert summary["lowest_budget_slo"] == "b" and summary["lowest_budget_remaining"] == -1.0
    assert (summary["exhausted"], summary["at_risk"], summary["alerts"]) == (1, 1, 2)
    assert summary["worst_status"] == "exhausted"
    assert reliability.summarise(slos[:1])["worst_status"] == "ok"
    assert reliability.summarise(slos[3:])["worst_status"] is None
    assert reliability.summarise([])["met_share"] is None


def test_coverage_of_the_small_org(org: Engine) -> None:
    scope = Scope(team="alpha")
    card = scorecard(org, PERIOD, scope, now=UNTIL)
    committed = sources.committed_changes(org, PERIOD, scope)
    rows = {row["measure"]: row for row in sources.coverage(card, committed)}
    # 2 services x 28 days x 2 changes, deployed; plus web's and api's 2 undeployed each;
    # the commits of the first day's deployments fall before the period for none of them
    # (they are committed hours before a 10:00 deployment)
    assert rows["changes_linked"]["total"] == committed == 2 * 28 * 2 + 4
    assert rows["changes_linked"]["covered"] == 2 * 28 * 2
    # the rollback names no change
    assert rows["deployments_with_changes"]["total"] == 2 * 28 + 1
    assert rows["deployments_with_changes"]["covered"] == 2 * 28
    assert rows["incidents_attributed"]["covered"] == 2  # inc-1 explicit, inc-3 inferred
    assert rows["incidents_attributed"]["total"] == 2
    assert rows["slos_with_data"]["share"] == 1.0
    assert sources.coverage({}, 0)[0]["share"] is None


def test_sync_status_and_freshness(org: Engine) -> None:
    status = sources.sync_status(org)
    assert set(status["stream"]) >= {"services", "changes", "deployments", "incidents", "sli"}
    assert set(status["state"]) == {"ok"}
    fresh = sources.freshness(org).set_index("table")
    assert fresh.loc["deployments", "rows"] == 3 * 35 + 2
    assert fresh.loc["deployments", "latest"] == UNTIL - timedelta(days=1) + timedelta(hours=10)
    assert fresh.loc["sli_samples", "latest"] == UNTIL - timedelta(hours=1)
    assert fresh.loc["toil_entries", "rows"] == 19
    # a kind of data with no row at all is listed as missing, not left out
    assert fresh.loc["ci_runs", "rows"] == 0 and pd.isna(fresh.loc["ci_runs", "latest"])
    assert fresh.loc["ci_runs", "source"] is None
    per_slo = sources.slo_freshness(org, Scope(team="beta")).set_index("slo")
    assert list(per_slo.index) == ["db-availability"]
    assert per_slo.loc["db-availability", "latest_sample"] == UNTIL - timedelta(hours=1)


def test_glossary_defines_every_figure_the_pages_show() -> None:
    for key in (
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
        "rework_rate",
        "mttd",
        "mtta",
        "mttr",
        "sli",
        "budget_remaining",
        "burn_rate",
        "status",
        "alert",
        "toil_share",
        "pages_per_week",
        "changes_linked",
    ):
        assert term(key).definition
    assert "(hours)" in help_text("lead_time")
    # a unit the definition already gives is not said twice ("…, per week. (per week)")
    assert help_text("pages_per_week") == term("pages_per_week").definition
    assert not help_text("mttd").endswith("(minutes)")
    assert all(entry.better in ("", "higher", "lower") for entry in TERMS.values())
    with pytest.raises(KeyError, match="no glossary entry for 'nope'"):
        term("nope")

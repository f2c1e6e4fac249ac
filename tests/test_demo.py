"""`poise demo`: deterministic, realistic, loaded through the importer, on both engines.

One full two-year build (SQLite) backs the checks on the profiles; short builds (`--days`)
check determinism, the PostgreSQL path and the refusal to overwrite a warehouse.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from poise.catalog import apply_config
from poise.cli import main
from poise.config import PoiseConfig, TeamConfig
from poise.demo import HORIZON_DAYS, PROFILES
from poise.warehouse import open_engine, open_warehouse, schema

UNTIL = "2026-06-01"
UNTIL_AT = datetime(2026, 6, 1, tzinfo=UTC)
FULL_DAYS = 730
ELITE, STRUGGLING, BURNING, STABLE = "storefront", "billing", "growth", "identity"
BOOKKEEPING = {"updated_at", "computed_at"}


def build(url: str, *options: str) -> int:
    return main(["demo", "--db", url, "--until", UNTIL, *options])


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every canonical row, bookkeeping (`updated_at`, `computed_at`) aside, in a stable order."""
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            tables = {}
            for table in schema.CANONICAL_TABLES:
                columns = [column for column in table.c if column.name not in BOOKKEEPING]
                rows = connection.execute(select(*columns)).all()
                tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
            return tables
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The two-year demo with the default seed, built once through the CLI."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    assert build(url) == 0
    engine = open_engine(url)
    yield engine
    engine.dispose()


def frame(engine: Engine, sql: str) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(text(sql)).mappings().all())


def stamps(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, utc=True, format="ISO8601")


# --- size and shape ----------------------------------------------------------------------------
def test_row_counts_fall_in_the_expected_ranges(full_demo: Engine) -> None:
    counts = frame(
        full_demo,
        "SELECT (SELECT count(*) FROM teams) teams, (SELECT count(*) FROM services) services,"
        " (SELECT count(*) FROM slos) slos, (SELECT count(*) FROM sli_samples) sli,"
        " (SELECT count(*) FROM changes) changes, (SELECT count(*) FROM deployments) deployments,"
        " (SELECT count(*) FROM incidents) incidents, (SELECT count(*) FROM oncall_pages) pages,"
        " (SELECT count(*) FROM toil_entries) toil",
    ).iloc[0]
    assert counts["teams"] == 6
    assert counts["services"] == 15
    assert 20 <= counts["slos"] <= 30
    assert counts["sli"] == counts["slos"] * FULL_DAYS * 24  # hourly, for every SLO
    assert 8_000 <= counts["deployments"] <= 20_000
    assert 15_000 <= counts["changes"] <= 40_000
    assert 600 <= counts["incidents"] <= 2_000
    assert 2_000 <= counts["pages"] <= 9_000
    assert 2_000 <= counts["toil"] <= 6_000


def test_team_sizes_and_time_zones_come_from_the_profiles(full_demo: Engine) -> None:
    teams = frame(full_demo, "SELECT name, size, timezone FROM teams").set_index("name")
    for profile in PROFILES:
        assert teams.loc[profile.name, "size"] == profile.size
        assert teams.loc[profile.name, "timezone"] == profile.timezone
    sources = frame(full_demo, "SELECT DISTINCT source FROM deployments")["source"].tolist()
    assert sources == ["demo"]


def test_every_sli_sample_lies_in_the_two_years_before_until(full_demo: Engine) -> None:
    bounds = frame(full_demo, "SELECT min(ts) first, max(ts) last FROM sli_samples").iloc[0]
    assert stamps(pd.Series([bounds["first"]]))[0] == UNTIL_AT - timedelta(days=FULL_DAYS)
    assert stamps(pd.Series([bounds["last"]]))[0] == UNTIL_AT - timedelta(hours=1)


# --- delivery ----------------------------------------------------------------------------------
def per_team(engine: Engine, sql: str) -> pd.Series:
    result = frame(engine, sql)
    return result.set_index("team")["value"].astype(float)


PRODUCTION = "d.status = 'success' AND d.environment = 'production'"


def test_deploy_frequency_separates_the_profiles(full_demo: Engine) -> None:
    per_week = per_team(
        full_demo,
        f"SELECT s.team, count(*) * 7.0 / {FULL_DAYS} value FROM deployments d "
        f"JOIN services s ON s.name = d.service WHERE {PRODUCTION} GROUP BY s.team",
    )
    assert per_week[ELITE] >= 14  # several a day
    assert per_week[ELITE] > 8 * per_week[STRUGGLING]
    assert per_week[BURNING] > per_week[ELITE]
    assert per_week[STABLE] < 1.5  # rare
    assert per_week.idxmin() == STABLE


def test_lead_times_are_positive_and_ordered_by_profile(full_demo: Engine) -> None:
    shipped = frame(
        full_demo,
        "SELECT s.team, c.id, c.committed_at, d.deployed_at FROM changes c "
        "JOIN deployment_changes dc ON dc.change_id = c.id "
        f"JOIN deployments d ON d.id = dc.deployment_id JOIN services s ON s.name = c.service "
        f"WHERE {PRODUCTION}",
    )
    shipped["lead"] = stamps(shipped["deployed_at"]) - stamps(shipped["committed_at"])
    assert (shipped["lead"] > timedelta(0)).all()
    first = shipped.sort_values("lead").groupby("id").first()
    median_hours = first.groupby("team")["lead"].median().dt.total_seconds() / 3600
    assert median_hours[ELITE] < 24
    assert median_hours[BURNING] < 24
    assert median_hours[STRUGGLING] > 14 * 24  # weeks
    assert median_hours[STABLE] > 5 * 24


def test_some_changes_are_not_deployed_yet_mostly_recent_ones(full_demo: Engine) -> None:
    waiting = frame(
        full_demo,
        "SELECT c.committed_at FROM changes c WHERE NOT EXISTS "
        "(SELECT 1 FROM deployment_changes dc WHERE dc.change_id = c.id)",
    )
    committed = stamps(waiting["committed_at"])
    assert 0 < len(waiting) < 500
    # work in flight at `until`: mostly recent, the odd long-lived branch aside
    assert (committed >= UNTIL_AT - timedelta(days=HORIZON_DAYS)).mean() > 0.9


def test_struggling_team_rolls_back_and_fixes_forward_far_more_often(full_demo: Engine) -> None:
    undone = per_team(
        full_demo,
        "SELECT s.team, avg(CASE WHEN EXISTS (SELECT 1 FROM deployments r WHERE "
        "r.rollback_of = d.id OR r.remediation_of = d.id) THEN 1.0 ELSE 0.0 END) value "
        f"FROM deployments d JOIN services s ON s.name = d.service WHERE {PRODUCTION} "
        "GROUP BY s.team",
    )
    assert undone[STRUGGLING] > 0.15
    assert undone[ELITE] < 0.05
    assert undone[STRUGGLING] > 4 * undone[ELITE]
    kinds = frame(
        full_demo,
        "SELECT count(rollback_of) rollbacks, count(remediation_of) fixes, "
        "sum(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) failed_attempts FROM deployments",
    ).iloc[0]
    assert kinds["rollbacks"] > 50 and kinds["fixes"] > 50 and kinds["failed_attempts"] > 50


def test_rollbacks_ship_no_changes_and_restore_an_earlier_sha(full_demo: Engine) -> None:
    rollbacks = frame(
        full_demo,
        "SELECT r.id, r.sha, (SELECT count(*) FROM deployment_changes dc "
        "WHERE dc.deployment_id = r.id) shipped, b.deployed_at bad_at, r.deployed_at at "
        "FROM deployments r JOIN deployments b ON b.id = r.rollback_of",
    )
    assert (rollbacks["shipped"] == 0).all()
    assert (stamps(rollbacks["at"]) > stamps(rollbacks["bad_at"])).all()


# --- incidents ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def incidents(full_demo: Engine) -> pd.DataFrame:
    result = frame(
        full_demo, "SELECT i.*, s.team FROM incidents i JOIN services s ON s.name = i.service"
    )
    for column in ("started_at", "detected_at", "acknowledged_at", "resolved_at"):
        result[column] = stamps(result[column])
    return result


def test_incidents_have_every_severity_cause_and_kind_of_attribution(
    incidents: pd.DataFrame,
) -> None:
    assert set(incidents["severity"]) == {"SEV1", "SEV2", "SEV3", "SEV4"}
    assert set(incidents["cause"].dropna()) == {
        "regression",
        "latent bug",
        "cascading failure",
        "capacity",
        "external",
        "unpredictable state transition",
    }
    explicit = incidents["caused_by_deployment"].notna()
    left_to_inference = incidents["caused_by_deployment"].isna() & incidents["cause"].isna()
    assert explicit.sum() > 100 and left_to_inference.sum() > 100
    assert (incidents.loc[explicit, "cause"] == "regression").all()
    assert (incidents["detected_at"] >= incidents["started_at"]).all()
    resolved = incidents["resolved_at"].notna()
    assert (incidents.loc[resolved, "resolved_at"] >= incidents.loc[resolved, "started_at"]).all()


def test_incidents_left_to_inference_follow_the_bad_deployment(
    full_demo: Engine, incidents: pd.DataFrame
) -> None:
    """The latest production deployment in the 24 h before each one is a regular release
    (not a rollback or fix), so inference lands on the deployment that went bad."""
    deployments = frame(
        full_demo,
        f"SELECT d.id, d.service, d.deployed_at, d.rollback_of, d.remediation_of "
        f"FROM deployments d WHERE {PRODUCTION}",
    )
    deployments["deployed_at"] = stamps(deployments["deployed_at"])
    by_service = dict(tuple(deployments.sort_values("deployed_at").groupby("service")))
    inferred = incidents[incidents["caused_by_deployment"].isna() & incidents["cause"].isna()]
    for incident in inferred.itertuples():
        candidates = by_service[incident.service]
        window = candidates[
            (candidates["deployed_at"] <= incident.started_at)
            & (candidates["deployed_at"] >= incident.started_at - timedelta(hours=24))
        ]
        assert len(window), f"{incident.id}: no deployment in the 24 h before it"
        latest = window.iloc[-1]
        assert pd.isna(latest["rollback_of"]) and pd.isna(latest["remediation_of"])


def test_stored_attributions_follow_the_demo_intent(full_demo: Engine) -> None:
    """`poise demo` refreshes the stored attributions, and the metrics' own rule agrees with
    what the demo meant: named, inferred, or (with another cause) never inferred."""
    links = frame(
        full_demo,
        "SELECT i.caused_by_deployment named, i.cause, a.method FROM incidents i "
        "LEFT JOIN attributions a ON a.incident_id = i.id",
    )
    named = links["named"].notna()
    other_cause = links["named"].isna() & links["cause"].notna()
    assert links["method"].notna().all()
    assert (links.loc[named, "method"] == "explicit").all()
    assert (links.loc[~named & ~other_cause, "method"] == "inferred").all()
    assert (links.loc[other_cause, "method"] == "none").all()


def test_explicit_causes_name_an_earlier_deployment_of_the_same_service(
    full_demo: Engine,
) -> None:
    mismatched = frame(
        full_demo,
        "SELECT count(*) n FROM incidents i JOIN deployments d ON d.id = i.caused_by_deployment "
        "WHERE d.service <> i.service OR d.deployed_at > i.started_at",
    ).iloc[0]["n"]
    assert mismatched == 0


def test_recent_incidents_are_still_open_and_severe_ones_have_postmortems(
    incidents: pd.DataFrame,
) -> None:
    open_ = incidents[incidents["resolved_at"].isna()]
    assert 2 <= len(open_) <= 15
    assert (open_["started_at"] >= UNTIL_AT - timedelta(days=7)).all()
    assert set(open_["team"]) >= {STRUGGLING, BURNING}
    with_postmortem = incidents["postmortem_url"].notna()
    assert with_postmortem.sum() > 50
    assert set(incidents.loc[with_postmortem, "severity"]) <= {"SEV1", "SEV2"}


def test_recovery_is_fast_for_the_elite_team_and_slow_for_the_struggling_one(
    incidents: pd.DataFrame,
) -> None:
    caused = incidents[incidents["caused_by_deployment"].notna()].dropna(subset=["resolved_at"])
    hours = (caused["resolved_at"] - caused["started_at"]).dt.total_seconds() / 3600
    median = hours.groupby(caused["team"]).median()
    assert median[ELITE] < 1
    assert median[STRUGGLING] > 24


# --- reliability -------------------------------------------------------------------------------
def daily_budget_remaining(engine: Engine, team: str) -> pd.DataFrame:
    """Per SLO and day, 1 - bad / budget over the 28 days ending that day."""
    samples = frame(
        engine,
        "SELECT x.slo, x.ts, x.good, x.total, o.target FROM sli_samples x "
        f"JOIN slos o ON o.name = x.slo JOIN services s ON s.name = o.service WHERE s.team = '{team}'",
    )
    samples["day"] = samples["ts"].str[:10]
    daily = samples.groupby(["slo", "day"]).agg(
        good=("good", "sum"), total=("total", "sum"), target=("target", "first")
    )
    remaining = {}
    for slo, rows in daily.groupby(level="slo"):
        bad = (rows["total"] - rows["good"]).rolling(28).sum()
        budget = (1 - rows["target"]) * rows["total"].rolling(28).sum()
        remaining[slo] = (1 - bad / budget).dropna().reset_index(drop=True)
    return pd.DataFrame(remaining)


def test_burning_team_exhausts_its_budget_for_weeks_but_not_always(full_demo: Engine) -> None:
    remaining = daily_budget_remaining(full_demo, BURNING)
    exhausted_days = (remaining <= 0).sum()
    assert exhausted_days.max() >= 21
    assert ((remaining <= 0).mean() < 0.7).all()


def test_elite_and_stable_teams_keep_their_budgets(full_demo: Engine) -> None:
    """Mostly: a rare SEV1 may spend a 99.9 % budget for a few days."""
    for team in (ELITE, STABLE):
        remaining = daily_budget_remaining(full_demo, team)
        assert ((remaining <= 0).mean() < 0.05).all(), team
        assert (remaining.median() > 0.5).all(), team


def test_struggling_team_breaches_often(full_demo: Engine) -> None:
    remaining = daily_budget_remaining(full_demo, STRUGGLING)
    assert (remaining <= 0).mean().mean() > 0.2


def test_bad_events_rise_during_severe_incidents(full_demo: Engine) -> None:
    """Error-budget burn lines up with incidents: the first hour of a SEV1/SEV2 incident
    fails far more requests than the SLO's hours overall."""
    during = frame(
        full_demo,
        # CROSS JOIN keeps SQLite's join order (incidents first, then the samples' key);
        # timestamps are fixed-width UTC text there, so the hour's bucket is spelt out.
        "SELECT sum(x.total - x.good) * 1.0 / sum(x.total) share FROM incidents i "
        "CROSS JOIN slos o CROSS JOIN sli_samples x WHERE i.severity IN ('SEV1', 'SEV2') "
        "AND o.service = i.service AND o.name LIKE '%-availability' AND x.slo = o.name "
        "AND x.ts = substr(i.started_at, 1, 13) || ':00:00.000000Z'",
    ).iloc[0]["share"]
    overall = frame(
        full_demo,
        "SELECT sum(total - good) * 1.0 / sum(total) share FROM sli_samples "
        "WHERE slo LIKE '%-availability'",
    ).iloc[0]["share"]
    assert during > 10 * overall


# --- people ------------------------------------------------------------------------------------
def test_toil_is_near_the_cap_for_the_struggling_team_only(full_demo: Engine) -> None:
    share = per_team(
        full_demo,
        "SELECT t.team, sum(t.hours) / count(DISTINCT t.day) / (max(m.size) * 40.0) value "
        "FROM toil_entries t JOIN teams m ON m.name = t.team GROUP BY t.team",
    )
    assert share[STRUGGLING] >= 0.45
    assert share.drop(STRUGGLING).max() < 0.4
    assert share[ELITE] < 0.15


def test_pages_load_the_struggling_and_burning_teams_and_after_hours_is_local(
    full_demo: Engine,
) -> None:
    pages = frame(
        full_demo,
        "SELECT p.team, p.triggered_at, p.after_hours, p.incident_id, t.timezone "
        "FROM oncall_pages p JOIN teams t ON t.name = p.team",
    )
    counts = pages.groupby("team").size()
    assert min(counts[STRUGGLING], counts[BURNING]) > 3 * max(counts[ELITE], counts[STABLE])
    assert pages["incident_id"].notna().sum() > 500
    assert 0.3 < pages["after_hours"].astype(bool).mean() < 0.9
    triggered = stamps(pages["triggered_at"])
    for zone, rows in pages.groupby("timezone"):
        local = triggered[rows.index].dt.tz_convert(ZoneInfo(zone))
        in_hours = (local.dt.day_of_week < 5) & (local.dt.hour >= 9) & (local.dt.hour < 18)
        assert (rows["after_hours"].astype(bool) == ~in_hours).all(), zone


# --- determinism, engines, refusal -------------------------------------------------------------
def test_same_seed_gives_identical_rows_and_another_seed_does_not(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / name}.db" for name in ("a", "b", "c")]
    assert build(urls[0], "--days", "60", "--seed", "3") == 0
    assert build(urls[1], "--days", "60", "--seed", "3") == 0
    assert build(urls[2], "--days", "60", "--seed", "4") == 0
    first, second, other = (dump(url) for url in urls)
    assert first == second
    assert len(first["sli_samples"]) == len(first["slos"]) * 60 * 24
    assert first["deployments"] != other["deployments"]
    assert first["sli_samples"] != other["sli_samples"]


@pytest.fixture(scope="module")
def short_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'demo.db'}"
    assert build(url, "--days", "21") == 0
    return dump(url)


def test_builds_the_same_rows_on_each_engine(
    warehouse_url: str, short_reference: dict[str, list[tuple[Any, ...]]]
) -> None:
    """Also runs on PostgreSQL (a 21-day history keeps it quick)."""
    assert build(warehouse_url, "--days", "21") == 0
    assert dump(warehouse_url) == short_reference


def test_refuses_a_warehouse_that_holds_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    engine = open_warehouse(url)
    apply_config(engine, PoiseConfig(teams=[TeamConfig(name="payments", size=4)]))
    engine.dispose()
    before = dump(url)
    assert build(url, "--days", "7") == 1
    message = capsys.readouterr().err
    assert "not empty" in message and "--force" in message and "teams: 1" in message
    assert dump(url) == before


def test_force_replaces_earlier_demo_rows_and_keeps_the_rest(
    warehouse_url: str, tmp_path: Path
) -> None:
    url = warehouse_url
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert build(url, "--days", "14", "--seed", "1") == 0
    engine = open_warehouse(url)
    apply_config(engine, PoiseConfig(teams=[TeamConfig(name="payments", size=4)]))
    engine.dispose()
    assert build(url, "--days", "14", "--seed", "2", "--force") == 0
    assert build(fresh, "--days", "14", "--seed", "2") == 0
    rebuilt, expected = dump(url), dump(fresh)
    payments = [row for row in rebuilt["teams"] if row[0] == "payments"]
    assert payments and payments[0][1] == 4
    rebuilt["teams"] = [row for row in rebuilt["teams"] if row[0] != "payments"]
    assert rebuilt == expected


def test_export_keeps_the_import_files(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    assert build(f"sqlite:///{tmp_path / 'poise.db'}", "--days", "3", "--export", str(folder)) == 0
    names = sorted(path.name for path in folder.iterdir())
    assert names == [
        "changes.csv",
        "deployments.csv",
        "incidents.jsonl",
        "services.csv",
        "sli.csv",
        "slos.csv",
        "toil.csv",
    ]
    assert (folder / "sli.csv").read_text().splitlines()[0] == "slo,timestamp,good,total"


def test_rejects_a_malformed_until(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--until", "June"])
    assert exit_info.value.code == 2
    assert "--until" in capsys.readouterr().err


def test_the_terminal_scorecard_groups_thousands(
    full_demo: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """Samples of thousands read as the dashboard writes them: "1,478 deployments"."""
    url = full_demo.url.render_as_string(hide_password=False)
    capsys.readouterr()
    assert main(["metrics", "--db", url, "--quarter", "2026Q1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\b\d{1,3}(,\d{3})+ deployments\b", out), out
    assert re.search(r"\b\d{1,3}(,\d{3})+ changes\b", out), out
    assert not re.search(r"\b\d{4,} (deployments|changes|failures)\b", out), out
    assert re.search(r"Toil: .*, \d{1,3}(,\d{3})+ h\)", out), out  # thousands of hours
    assert "Freeze: " in out and "(s)" not in out, out  # "3 intervals", not "3 interval(s)"

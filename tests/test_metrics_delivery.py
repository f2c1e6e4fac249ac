"""Golden examples for the delivery (DORA) figures and incident attribution.

Each test builds a small organisation, imports it through `poise.importer`, and checks the
figures against values worked out by hand in the comments. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from metrics_org import Org, at
from sqlalchemy import Engine

from metrics import Period, Scope, Settings
from metrics.explain import explain
from metrics.scorecard import scorecard, team_scorecards
from poise.warehouse import schema

Q3 = Period.quarter("2026Q3")  # 92 days: 13.142857 weeks


def card(engine: Engine, period: Period = Q3, scope: Scope | None = None, **settings: object):
    document = scorecard(engine, period, scope, Settings(**settings))  # type: ignore[arg-type]
    json.dumps(document, allow_nan=False)  # never NaN, always JSON
    return document


def test_empty_period_gives_nulls_not_zeros(warehouse: Engine, tmp_path: Path) -> None:
    Org().service("checkout", "payments").load(warehouse, tmp_path)
    doc = card(warehouse)
    dora = doc["dora"]
    assert dora["deployment_frequency"]["deployments"] == 0
    assert dora["deployment_frequency"]["per_week"] == 0.0
    assert dora["deployment_frequency"]["tier"] == "insufficient data"
    assert dora["lead_time"]["median_hours"] is None
    assert dora["lead_time"]["p90_hours"] is None
    assert dora["lead_time"]["changes"] == 0
    assert dora["change_failure_rate"]["rate"] is None
    assert dora["change_failure_rate"]["deployments"] == 0
    assert dora["recovery_time"]["median_hours"] is None
    assert dora["recovery_time"]["failures"] == 0
    assert dora["rework_rate"]["rate"] is None
    # no incident ever recorded: no incident source, so no count (not a calm quarter)
    assert doc["incidents"]["count"] is None
    assert "no incident on record" in doc["incidents"]["reason"]
    assert doc["incidents"]["mttr_median_hours"] is None
    assert doc["incidents"]["mtta_median_minutes"] is None
    assert doc["slos"] == []
    assert doc["attribution"] == {"explicit": 0, "inferred": 0, "unattributed": 0}
    assert doc["period"] == {"from": "2026-07-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"}
    assert doc["scope"] == {"team": None, "service": None}


def test_incident_count_is_null_only_where_no_incident_was_ever_recorded(
    warehouse: Engine, tmp_path: Path
) -> None:
    """A quiet quarter of a service with incidents on record counts 0; a team whose services
    never recorded one has no count, with the reason; the organisation counts an incident
    that names no service as on record."""
    org = Org().service("checkout", "payments").service("search", "discovery")
    org.incident("INC-1", "checkout", at(days=-40))  # before the quarter
    org.load(warehouse, tmp_path)
    assert card(warehouse, scope=Scope(team="payments"))["incidents"]["count"] == 0
    assert card(warehouse, scope=Scope(team="payments"))["incidents"]["reason"] is None
    quiet = card(warehouse, scope=Scope(team="discovery"))["incidents"]
    assert quiet["count"] is None and "no incident on record" in quiet["reason"]
    assert card(warehouse)["incidents"]["count"] == 0
    teams = team_scorecards(warehouse, Q3, Settings())
    assert teams["payments"]["incidents"]["count"] == 0
    assert teams["discovery"]["incidents"]["count"] is None


def test_an_incident_naming_no_service_puts_the_organisation_on_record(
    warehouse: Engine, tmp_path: Path
) -> None:
    Org().service("search", "discovery").load(warehouse, tmp_path)
    with warehouse.begin() as connection:  # as a sync stores a pager's unmapped service
        connection.execute(
            schema.incidents.insert().values(
                id="pd:INC-9",
                service=None,
                severity="SEV2",
                started_at=at(days=-40),
                source="pagerduty",
                updated_at=at(days=-40),
            )
        )
    assert card(warehouse)["incidents"]["count"] == 0  # the organisation has a source
    assert card(warehouse, scope=Scope(team="discovery"))["incidents"]["count"] is None


def test_single_deployment(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments")
    org.change("c1", "checkout", at(days=10))
    org.deploy("d1", "checkout", at(days=11, hours=6), ["c1"])  # lead time 30 h
    org.load(warehouse, tmp_path)
    dora = card(warehouse)["dora"]
    assert dora["deployment_frequency"]["deployments"] == 1
    assert dora["deployment_frequency"]["per_week"] == pytest.approx(1 / (92 / 7))
    assert dora["lead_time"]["median_hours"] == pytest.approx(30.0)
    assert dora["lead_time"]["p90_hours"] == pytest.approx(30.0)
    assert dora["lead_time"]["changes"] == 1
    assert dora["change_failure_rate"] == {
        "rate": 0.0,
        "failed": 0,
        "deployments": 1,
        "tier": "insufficient data",
        "tier_reason": "1 deployment behind it; a tier needs at least 5",
        "benchmark_year": 2023,
    }
    assert dora["recovery_time"]["median_hours"] is None
    assert dora["rework_rate"] == {"rate": 0.0, "rework": 0, "deployments": 1}


def test_change_shipped_twice_counts_at_its_first_production_deployment(
    warehouse: Engine, tmp_path: Path
) -> None:
    org = Org().service("checkout", "payments")
    org.change("c1", "checkout", at(days=1))
    org.change("c2", "checkout", at(days=1))
    org.change("c3", "checkout", at(days=1))
    # c1 goes to production twice: only the first (day 2) counts, lead 24 h
    org.deploy("d1", "checkout", at(days=2), ["c1"])
    org.deploy("d2", "checkout", at(days=5), ["c1", "c2"])  # c2: 96 h
    # c3: staging on day 1.5 and a failed production attempt on day 2.5 do not count;
    # its first production deployment is d3 on day 4 (72 h)
    org.deploy("s1", "checkout", at(days=1, hours=12), ["c3"], environment="staging")
    org.deploy("f1", "checkout", at(days=2, hours=12), ["c3"], status="failure")
    org.deploy("d3", "checkout", at(days=4), ["c3"])
    org.load(warehouse, tmp_path)

    dora = card(warehouse)["dora"]
    assert dora["deployment_frequency"]["deployments"] == 3  # d1, d2, d3
    # lead times 24, 72, 96: median 72, p90 = 72 + 0.8 * 24 = 91.2
    assert dora["lead_time"]["changes"] == 3
    assert dora["lead_time"]["median_hours"] == pytest.approx(72.0)
    assert dora["lead_time"]["p90_hours"] == pytest.approx(91.2)

    # a period holding only d2: c1 is not counted again (its first deployment was d1)
    later = card(warehouse, Period(at(days=4, hours=12), at(days=10)))["dora"]
    assert later["deployment_frequency"]["deployments"] == 1
    assert later["lead_time"]["changes"] == 1
    assert later["lead_time"]["median_hours"] == pytest.approx(96.0)


def test_rollback_of_a_rollback(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments")
    org.deploy("d1", "checkout", at(days=3))
    org.deploy("d2", "checkout", at(days=3, hours=1), rollback_of="d1")
    org.deploy("d3", "checkout", at(days=3, hours=3), rollback_of="d2")
    org.load(warehouse, tmp_path)
    dora = card(warehouse)["dora"]
    # d1 is undone by d2 (1 h), d2 by d3 (2 h); d3 stands
    assert dora["change_failure_rate"]["failed"] == 2
    assert dora["change_failure_rate"]["rate"] == pytest.approx(2 / 3)
    assert dora["rework_rate"] == {"rate": pytest.approx(2 / 3), "rework": 2, "deployments": 3}
    assert dora["recovery_time"]["failures"] == 2
    assert dora["recovery_time"]["median_hours"] == pytest.approx(1.5)
    rows = {row["id"]: row for row in explain(warehouse, "change_failure_rate", Q3)}
    assert rows["d1"]["reason"] == "d1 failed: rolled back by d2 1 h later"
    assert rows["d2"]["reason"] == "d2 failed: rolled back by d3 2 h later"
    assert rows["d3"]["value"] is False


def test_recovery_is_the_earliest_fixer_even_after_the_period(
    warehouse: Engine, tmp_path: Path
) -> None:
    org = Org().service("checkout", "payments")
    org.deploy("d1", "checkout", at(days=91, hours=20))  # 2026-09-30 20:00
    org.deploy("d2", "checkout", at(days=92, hours=6), remediation_of="d1")  # Oct 1, 10 h later
    org.deploy("d3", "checkout", at(days=92, hours=9), rollback_of="d1")
    org.load(warehouse, tmp_path)
    dora = card(warehouse)["dora"]
    assert dora["change_failure_rate"]["failed"] == 1
    assert dora["recovery_time"]["median_hours"] == pytest.approx(10.0)
    assert dora["rework_rate"]["rework"] == 0  # the fixers shipped after the period


def test_another_services_fix_fails_a_deployment_in_every_scope(
    warehouse: Engine, tmp_path: Path
) -> None:
    """A platform team's deployment that remediates checkout's: checkout's deployment failed,
    whether the scorecard is of its service, its team, all teams or every team at once."""
    org = Org().service("checkout", "payments").service("gateway", "platform")
    for day in range(5):
        org.deploy(f"c{day}", "checkout", at(days=10 + day))
    org.deploy("g1", "gateway", at(days=11, hours=6), remediation_of="c1")  # in the period
    org.deploy("g2", "gateway", at(days=13, hours=2), rollback_of="c3")  # 2 h later
    org.load(warehouse, tmp_path)
    expected = {"rate": pytest.approx(0.4), "failed": 2, "deployments": 5}
    by_team = team_scorecards(warehouse, Q3)
    for doc in (
        card(warehouse, scope=Scope(service="checkout")),
        card(warehouse, scope=Scope(team="payments")),
        by_team["payments"],
    ):
        cfr = doc["dora"]["change_failure_rate"]
        assert {key: cfr[key] for key in expected} == expected
        assert doc["dora"]["recovery_time"]["median_hours"] == pytest.approx(4.0)  # 6 h, 2 h
    platform = card(warehouse, scope=Scope(team="platform"))["dora"]
    assert platform["change_failure_rate"]["failed"] == 0
    assert platform["rework_rate"]["rework"] == 2


def test_incident_exactly_24h_after_is_attributed_and_one_second_later_is_not(
    warehouse: Engine, tmp_path: Path
) -> None:
    org = Org().service("checkout", "payments").service("search", "payments")
    org.deploy("c-1", "checkout", at(days=10))
    org.incident("INC-1", "checkout", at(days=11))  # exactly 24 h: inside [t − 24 h, t]
    org.deploy("s-1", "search", at(days=10))
    org.incident("INC-2", "search", at(days=11, seconds=1))  # 24 h 1 s: outside
    org.load(warehouse, tmp_path)
    doc = card(warehouse)
    assert doc["attribution"] == {"explicit": 0, "inferred": 1, "unattributed": 1}
    assert doc["dora"]["change_failure_rate"]["failed"] == 1
    reasons = {row["id"]: row["reason"] for row in explain(warehouse, "incidents", Q3)}
    assert (
        "c-1 is the latest production deployment of checkout in the 24 h before INC-1"
        in (reasons["INC-1"])
    )
    assert "no production deployment of search in the 24 h before it started" in reasons["INC-2"]
    # a wider window (configurable) catches the second one too
    wider = card(warehouse, attribution_window=timedelta(hours=25))
    assert wider["attribution"]["inferred"] == 2


def test_inference_takes_the_latest_deployment_of_the_same_service(
    warehouse: Engine, tmp_path: Path
) -> None:
    org = Org().service("checkout", "payments").service("search", "payments")
    org.deploy("c-1", "checkout", at(days=10))
    org.deploy("c-2", "checkout", at(days=10, hours=5))
    org.deploy("s-1", "search", at(days=10, hours=7))  # later, but another service
    org.incident("INC-1", "checkout", at(days=10, hours=8))
    org.load(warehouse, tmp_path)
    rows = {row["id"]: row for row in explain(warehouse, "change_failure_rate", Q3)}
    assert rows["c-2"]["reason"] == (
        "c-2 failed: INC-1 attributed by inference, deployed 3 h before the incident on the "
        "same service"
    )
    assert rows["c-1"]["value"] is False
    assert rows["s-1"]["value"] is False


def test_several_incidents_on_one_deployment_count_it_once(
    warehouse: Engine, tmp_path: Path
) -> None:
    org = Org().service("checkout", "payments")
    org.deploy("d1", "checkout", at(days=20))
    org.deploy("d2", "checkout", at(days=30))
    org.incident("INC-1", "checkout", at(days=20, hours=1), resolved=timedelta(hours=1))
    org.incident("INC-2", "checkout", at(days=20, hours=2), resolved=timedelta(hours=4))
    org.incident("INC-3", "checkout", at(days=19), caused_by="d1", resolved=timedelta(hours=2))
    org.load(warehouse, tmp_path)
    doc = card(warehouse)
    cfr = doc["dora"]["change_failure_rate"]
    assert (cfr["failed"], cfr["deployments"], cfr["rate"]) == (1, 2, 0.5)
    # recovery: the last of its incidents resolved at day 20 + 6 h
    assert doc["dora"]["recovery_time"]["median_hours"] == pytest.approx(6.0)
    assert doc["attribution"] == {"explicit": 1, "inferred": 2, "unattributed": 0}
    row = next(r for r in explain(warehouse, "cfr", Q3) if r["id"] == "d1")
    # INC-3 started a day before d1: still attributed (explicit), but said and counted
    assert row["reason"].startswith(
        "d1 failed: INC-3 names it in caused_by_deployment, though it started 1 d before it "
        "deployed (data quality: incidents blaming later deployments); INC-1"
    )
    assert doc["data_quality"]["incidents_blaming_later_deployments"] == 1


def test_explicit_cause_and_unresolved(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments")
    org.deploy("d1", "checkout", at(days=5))
    org.deploy("d2", "checkout", at(days=40))
    # a known cause is never inferred, even right after a deployment
    org.incident("INC-1", "checkout", at(days=5, hours=1), cause="capacity")
    # caused_by wins over cause; explicit attribution needs no window
    org.incident("INC-2", "checkout", at(days=50), caused_by="d2", cause="bad config")
    # an open incident keeps its deployment failed but unrecovered
    org.deploy("d3", "checkout", at(days=60))
    org.incident("INC-3", "checkout", at(days=60, hours=1), resolved=None)
    org.load(warehouse, tmp_path)
    doc = card(warehouse)
    assert doc["attribution"] == {"explicit": 1, "inferred": 1, "unattributed": 1}
    assert doc["dora"]["change_failure_rate"]["failed"] == 2  # d2 and d3
    rt = doc["dora"]["recovery_time"]
    assert (rt["failures"], rt["unrecovered"]) == (1, 1)
    assert rt["median_hours"] == pytest.approx(10 * 24 + 2)  # d2: day 40 to day 50 + 2 h
    assert doc["data_quality"]["incidents_unresolved"] == 1
    assert doc["incidents"]["mttr_n"] == 2


def test_failed_and_other_environment_deployments_count_nowhere(
    warehouse: Engine, tmp_path: Path
) -> None:
    org = Org().service("checkout", "payments")
    org.change("c1", "checkout", at(days=1))
    org.deploy("s1", "checkout", at(days=2), ["c1"], environment="staging")
    org.deploy("f1", "checkout", at(days=3), ["c1"], status="failure")
    org.incident("INC-1", "checkout", at(days=3, hours=1))
    org.load(warehouse, tmp_path)
    doc = card(warehouse)
    assert doc["dora"]["deployment_frequency"]["deployments"] == 0
    assert doc["dora"]["lead_time"]["changes"] == 0
    assert doc["attribution"]["unattributed"] == 1
    assert doc["data_quality"]["changes_never_deployed"] == 1


def test_nonpositive_lead_times_are_left_out_and_counted(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments")
    org.change("c1", "checkout", at(days=2))  # committed after it deployed: clock skew
    org.change("c2", "checkout", at(days=1, hours=12))
    org.change("c3", "checkout", at(days=1))  # committed exactly when deployed: 0
    org.deploy("d1", "checkout", at(days=1), ["c3"])
    org.deploy("d2", "checkout", at(days=1, hours=18), ["c1", "c2"])
    org.deploy("d3", "checkout", at(days=3))  # ships nothing
    org.load(warehouse, tmp_path)
    doc = card(warehouse)
    assert doc["dora"]["lead_time"]["changes"] == 1
    assert doc["dora"]["lead_time"]["median_hours"] == pytest.approx(6.0)
    assert doc["dora"]["lead_time"]["excluded_nonpositive"] == 2
    assert doc["data_quality"]["lead_time_nonpositive"] == 2
    assert doc["data_quality"]["deployments_without_changes"] == 1
    found = {row["id"] for row in explain(warehouse, "data_quality", Q3)}
    assert {"c1", "c3", "d3"} <= found


def test_team_versus_service_scope(warehouse: Engine, tmp_path: Path) -> None:
    org = Org()
    org.service("checkout", "payments").service("ledger", "payments").service("search", "discovery")
    for day in range(6):
        org.deploy(f"co-{day}", "checkout", at(days=day * 7))
    org.deploy("le-1", "ledger", at(days=3))
    org.deploy("le-2", "ledger", at(days=4), rollback_of="le-1")
    org.deploy("se-1", "search", at(days=3))
    org.incident("INC-1", "search", at(days=3, hours=2))
    org.load(warehouse, tmp_path)
    team = card(warehouse, scope=Scope(team="payments"))
    assert team["scope"] == {"team": "payments", "service": None}
    assert team["dora"]["deployment_frequency"]["deployments"] == 8
    assert team["dora"]["change_failure_rate"]["failed"] == 1
    assert team["incidents"]["count"] is None  # its services never had one: no data
    service = card(warehouse, scope=Scope(service="ledger"))
    assert service["dora"]["deployment_frequency"]["deployments"] == 2
    assert service["dora"]["change_failure_rate"]["rate"] == 0.5
    other = card(warehouse, scope=Scope(team="discovery"))
    assert other["dora"]["change_failure_rate"]["failed"] == 1
    assert other["incidents"]["count"] == 1
    assert other["attribution"]["inferred"] == 1
    whole = card(warehouse)
    assert whole["dora"]["deployment_frequency"]["deployments"] == 9
    assert whole["dora"]["change_failure_rate"]["failed"] == 2


def test_tiers_need_five_and_follow_the_2023_table(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments")
    # 92 deployments in 92 days: 7 a week, which is "daily", not "more than once a day"
    for day in range(92):
        org.change(f"c{day}", "checkout", at(days=day))
        org.deploy(f"d{day}", "checkout", at(days=day, hours=2), [f"c{day}"])
    org.deploy("fix", "checkout", at(days=0, hours=2, minutes=30), rollback_of="d0")
    org.load(warehouse, tmp_path)
    dora = card(warehouse)["dora"]
    df = dora["deployment_frequency"]
    assert df["deployments"] == 93
    assert df["per_week"] == pytest.approx(93 / (92 / 7))
    assert df["tier"] == "elite"  # 7.08 a week: more than once a day
    assert dora["lead_time"]["tier"] == "elite"  # 2 h
    assert dora["change_failure_rate"]["rate"] == pytest.approx(1 / 93)
    assert dora["change_failure_rate"]["tier"] == "elite"
    rt = dora["recovery_time"]
    assert rt["tier"] == "insufficient data"
    assert rt["tier_reason"] == "1 failure behind it; a tier needs at least 5"
    in_2021 = card(warehouse, benchmark_year=2021)["dora"]
    assert in_2021["lead_time"]["tier"] == "high"  # 2021: elite needs under 1 hour
    assert in_2021["deployment_frequency"]["tier"] == "elite"
    assert in_2021["lead_time"]["benchmark_year"] == 2021

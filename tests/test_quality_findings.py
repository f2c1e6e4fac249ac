"""Rows that contradict themselves in time: counted as the contract says, and listed.

- An incident naming, in `caused_by_deployment`, a deployment made after it started: the
  contract bounds only inference in time, so the deployment counts as failed; the
  incident is the finding `incidents_blaming_later_deployments`, and a recovery time that
  would come out negative is left out (never reported).
- A deployment whose `rollback_of` / `remediation_of` names one made at the same moment or
  later: rework rate counts it (the contract puts no time on rework), change fail rate
  does not count its target as failed ("a *later* production deployment names it"); the
  finding `rework_before_its_target` lists it.

Each test builds a small organisation and imports it through `poise.importer`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from metrics_org import Org, at
from sqlalchemy import Engine

from dashboard.data import Query, Warehouse, source_view
from metrics import Period, Scope, Settings, quality
from metrics.explain import explain
from metrics.glossary import term
from metrics.scorecard import compute, quality_frames, scorecard, team_scorecards
from poise.cli import main
from reports.coverage import coverage_notes

Q2 = Period.quarter("2026Q2")
Q3 = Period.quarter("2026Q3")
Q4 = Period.quarter("2026Q4")
NEW = ("incidents_blaming_later_deployments", "rework_before_its_target")
# every finding added after the first eight, in the order the scorecard gives them
ADDED = (*NEW, "deployments_without_incident_data")


def card(engine: Engine, period: Period = Q3, scope: Scope | None = None) -> dict[str, Any]:
    document = scorecard(engine, period, scope, Settings())
    json.dumps(document, allow_nan=False)
    return document


def explained(engine: Engine, figure: str, period: Period = Q3) -> list[dict[str, Any]]:
    return explain(engine, figure, period)


def findings(engine: Engine, name: str, period: Period = Q3, scope: Scope | None = None) -> Any:
    basis = compute(engine, period, scope or Scope(), Settings())
    return quality.rows(name, **quality_frames(basis))


def test_incident_blaming_a_later_deployment(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments")
    # the reviewer's case: i3 started 07-01 and was resolved 07-02; d3 deployed 07-06
    org.deploy("d3", "checkout", at(days=5))
    org.incident("i3", "checkout", at(days=0), caused_by="d3", resolved=timedelta(days=1))
    # started before d4, but resolved after it: flagged, and its recovery is positive
    org.deploy("d4", "checkout", at(days=20))
    org.incident("i4", "checkout", at(days=19), caused_by="d4", resolved=timedelta(days=2))
    # started the moment d5 finished: a deployment may cause that, not flagged
    org.deploy("d5", "checkout", at(days=30))
    org.incident("i5", "checkout", at(days=30), caused_by="d5", resolved=timedelta(hours=3))
    org.load(warehouse, tmp_path)

    doc = card(warehouse)
    dora = doc["dora"]
    # explicit attribution has no time bound in the contract: all three count as failed
    assert dora["change_failure_rate"]["failed"] == 3
    # d3's recovery (-4 d) is left out, neither measured nor waiting; d4 1 d, d5 3 h
    assert dora["recovery_time"]["failures"] == 2
    assert dora["recovery_time"]["unrecovered"] == 0
    assert dora["recovery_time"]["median_hours"] == pytest.approx((24 + 3) / 2)
    assert doc["data_quality"]["incidents_blaming_later_deployments"] == 2
    assert doc["data_quality"]["rework_before_its_target"] == 0

    rows = findings(warehouse, "incidents_blaming_later_deployments")
    page = source_view(Warehouse(warehouse, Settings()), Query(Q3.start, Q3.end))["findings"]
    assert page["incidents_blaming_later_deployments"].equals(rows)
    assert rows["id"].tolist() == ["i3", "i4"]
    assert rows["deployment_id"].tolist() == ["d3", "d4"]
    assert rows["hours_before"].tolist() == pytest.approx([5 * 24, 24])
    assert rows["team"].tolist() == ["payments", "payments"]

    recovery = {row["id"]: row for row in explained(warehouse, "recovery_time")}
    assert all(row["value"] is None or row["value"] >= 0 for row in recovery.values())
    assert recovery["d3"]["value"] is None
    assert recovery["d3"]["counts"] is False
    assert recovery["d3"]["reason"] == (
        "d3: left out: the last of i3 was resolved 4 d before it deployed, so its recovery "
        "time would be negative; counted in data quality"
    )
    assert recovery["d4"]["value"] == pytest.approx(24.0)
    assert recovery["d4"]["counts"] is True

    cfr = {row["id"]: row["reason"] for row in explained(warehouse, "cfr")}
    assert cfr["d3"] == (
        "d3 failed: i3 names it in caused_by_deployment, though it started 5 d before it "
        "deployed (data quality: incidents blaming later deployments); recovery time left "
        "out: the last of its incidents was resolved 4 d before it deployed"
    )
    assert cfr["d5"] == "d5 failed: i5 names it in caused_by_deployment"

    listed = [row for row in explained(warehouse, "data_quality") if row["kind"] in NEW]
    assert [(row["kind"], row["id"]) for row in listed] == [
        ("incidents_blaming_later_deployments", "i3"),
        ("incidents_blaming_later_deployments", "i4"),
    ]
    assert all(row["counts"] for row in listed)  # counted in the figures, not left out
    assert listed[0]["reason"] == (
        "i3 started 2026-07-01 00:00 UTC, 5 d before d3 deployed, yet names it in "
        "caused_by_deployment: explicit attribution has no time bound, so d3 counts as failed"
    )

    basis = compute(warehouse, Q3, Scope(), Settings())
    hours = basis.deployments["recovery_hours"].dropna()
    assert (hours >= 0).all()
    assert basis.deployments.set_index("id")["recovery_left_out"].to_dict() == {
        "d3": True,
        "d4": False,
        "d5": False,
    }


def test_blame_counts_in_the_period_and_team_of_the_deployment(
    warehouse: Engine, tmp_path: Path
) -> None:
    org = Org().service("checkout", "payments").service("search", "discovery")
    # a Q2 incident of another team's service, blaming a payments deployment of Q3
    org.deploy("d3", "checkout", at(days=5))
    org.deploy("s1", "search", at(days=-30))
    org.incident("i0", "search", at(days=-1), caused_by="d3", resolved=timedelta(hours=2))
    org.load(warehouse, tmp_path)

    assert card(warehouse)["data_quality"]["incidents_blaming_later_deployments"] == 1
    assert card(warehouse, Q2)["data_quality"]["incidents_blaming_later_deployments"] == 0
    payments = card(warehouse, scope=Scope(team="payments"))
    assert payments["dora"]["change_failure_rate"]["failed"] == 1
    assert payments["data_quality"]["incidents_blaming_later_deployments"] == 1
    discovery = card(warehouse, scope=Scope(team="discovery"))
    assert discovery["data_quality"]["incidents_blaming_later_deployments"] == 0
    # the all-teams grouping agrees with the scoped scorecards
    teams = team_scorecards(warehouse, Q3, Settings())
    assert teams["payments"]["data_quality"] == payments["data_quality"]
    assert teams["discovery"]["data_quality"] == discovery["data_quality"]
    rows = findings(warehouse, "incidents_blaming_later_deployments", scope=Scope(team="payments"))
    assert rows[["id", "service", "deployment_id", "team"]].to_dict("records") == [
        {"id": "i0", "service": "search", "deployment_id": "d3", "team": "payments"}
    ]


def test_rework_before_its_target(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments").service("search", "discovery")
    # the reviewer's case: d9 at 07-01 rolls back d1 at 07-05
    org.deploy("d9", "checkout", at(days=0), rollback_of="d1")
    org.deploy("d1", "checkout", at(days=4))
    # a remediation at the same moment as what it names: not "later" either
    org.deploy("d7", "checkout", at(days=10), remediation_of="d8")
    org.deploy("d8", "checkout", at(days=10))
    # a sound rollback: d2 rolls back d1 a day after it
    org.deploy("d2", "checkout", at(days=5), rollback_of="d1")
    # names one made in the next quarter, far beyond what the period's load reaches
    org.deploy("s1", "search", at(days=80), rollback_of="s2")
    org.deploy("s2", "search", at(days=130))
    org.load(warehouse, tmp_path)

    doc = card(warehouse)
    dora = doc["dora"]
    # the contract's letter: rework counts every deployment naming another ...
    assert dora["rework_rate"]["rework"] == 4  # d9, d7, d2, s1
    assert dora["rework_rate"]["deployments"] == 6
    # ... but only a later one makes its target failed: d1 (by d2), not d8
    assert dora["change_failure_rate"]["failed"] == 1
    assert dora["recovery_time"]["median_hours"] == pytest.approx(24.0)  # d1 to d2, not d9
    assert doc["data_quality"]["rework_before_its_target"] == 3
    assert doc["data_quality"]["incidents_blaming_later_deployments"] == 0

    rows = findings(warehouse, "rework_before_its_target")
    assert rows[["id", "target", "how", "team"]].to_dict("records") == [
        {"id": "d9", "target": "d1", "how": "rollback", "team": "payments"},
        {"id": "d7", "target": "d8", "how": "remediation", "team": "payments"},
        {"id": "s1", "target": "s2", "how": "rollback", "team": "discovery"},
    ]
    # the Data & sources page lists every finding with its rows
    page = source_view(Warehouse(warehouse, Settings()), Query(Q3.start, Q3.end))["findings"]
    assert page["rework_before_its_target"]["id"].tolist() == ["d9", "d7", "s1"]
    assert page["incidents_blaming_later_deployments"].empty
    teams = team_scorecards(warehouse, Q3, Settings())
    assert teams["payments"]["data_quality"]["rework_before_its_target"] == 2
    assert teams["discovery"]["data_quality"]["rework_before_its_target"] == 1
    assert card(warehouse, Q4)["data_quality"]["rework_before_its_target"] == 0

    rework = {row["id"]: row["reason"] for row in explained(warehouse, "rework")}
    assert rework["d9"] == (
        "d9 is rework: it rolls back d1, though d1 deployed 4 d after it: d1 does not count as failed "
        "by it; counted in data quality"
    )
    assert rework["d7"] == (
        "d7 is rework: it remediates d8, though d8 deployed at the same moment: d8 does not count as "
        "failed by it; counted in data quality"
    )
    assert rework["d2"] == "d2 is rework: it rolls back d1"
    listed = {
        row["id"]: row["reason"]
        for row in explained(warehouse, "data_quality")
        if row["kind"] == "rework_before_its_target"
    }
    assert listed == {
        "d9": "d9 rolls back d1, which deployed 4 d after it: counted as rework, but d1 does "
        "not count as failed by it (only a later deployment's rollback or remediation does)",
        "d7": "d7 remediates d8, which deployed at the same moment: counted as rework, but d8 "
        "does not count as failed by it (only a later deployment's rollback or remediation "
        "does)",
        "s1": "s1 rolls back s2, which deployed 50 d after it: counted as rework, but s2 does "
        "not count as failed by it (only a later deployment's rollback or remediation does)",
    }


def clean_org() -> Org:
    org = Org().service("checkout", "payments").service("search", "discovery")
    org.change("c1", "checkout", at(days=0))
    org.change("c2", "search", at(days=30))
    org.deploy("d1", "checkout", at(days=0, hours=10), ["c1"])
    org.deploy("d2", "checkout", at(days=9))
    org.deploy("d3", "checkout", at(days=9, hours=5), rollback_of="d2")
    org.deploy("s1", "search", at(days=33), ["c2"])
    org.incident("INC-1", "checkout", at(days=9, hours=1))  # inferred onto d2
    org.incident("INC-2", "search", at(days=40), caused_by="s1", resolved=timedelta(hours=1))
    org.incident("INC-3", "search", at(days=50), cause="external")
    org.slo("checkout-availability", "checkout", 0.999, 28)
    org.sli("checkout-availability", at(days=64), 28 * 24, 9995, 10000)
    return org


def test_clean_metrics_json_gains_only_zero_counts(
    warehouse_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no poise.yaml around
    for kind, path in clean_org().write(tmp_path / "files").items():
        assert main(["import", "--kind", kind, str(path), "--db", warehouse_url]) == 0
    capsys.readouterr()

    def metrics_json() -> dict[str, Any]:
        argv = ["metrics", "--quarter", "2026Q3", "--format", "json", "--db", warehouse_url]
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)

    now = metrics_json()
    # the scorecard as it was before these findings: the same engine without them
    monkeypatch.setattr(quality, "FINDINGS", tuple(f for f in quality.FINDINGS if f not in ADDED))
    before = metrics_json()
    assert list(now["data_quality"]) == [*before["data_quality"], *ADDED]
    assert {name: now["data_quality"].pop(name) for name in ADDED} == dict.fromkeys(ADDED, 0)
    assert now == before
    # the clean figures themselves, worked by hand: d2 failed (INC-1, rolled back by d3
    # after 5 h) and s1 (INC-2, resolved 7 d 1 h after it)
    dora = before["dora"]
    assert dora["change_failure_rate"]["failed"] == 2
    assert dora["recovery_time"]["failures"] == 2
    assert dora["recovery_time"]["median_hours"] == pytest.approx((5 + 7 * 24 + 1) / 2)
    assert dora["rework_rate"]["rework"] == 1


def test_new_findings_have_glossary_entries_and_coverage_notes() -> None:
    for name in NEW:
        assert name in quality.FINDINGS
        assert term(name).definition
    card_ = {
        "dora": {"deployment_frequency": {"deployments": 10}},
        "incidents": {"count": 0},
        "data_quality": {"incidents_blaming_later_deployments": 2, "rework_before_its_target": 1},
    }
    notes = coverage_notes(card_)
    assert any(note.startswith("For 2 incidents, caused_by_deployment names") for note in notes)
    assert any(
        note.startswith("1 of 10 production deployments roll back or remediate") for note in notes
    )
    clean = coverage_notes({**card_, "data_quality": dict.fromkeys(NEW, 0)})
    assert not any("caused_by_deployment" in note or "rework" in note for note in clean)


def test_deployments_of_a_service_without_incident_data_are_listed(
    warehouse: Engine, tmp_path: Path
) -> None:
    """A service no incident source speaks for has a change fail rate of rollbacks alone:
    counted as the contract says, and listed, so 0 % is not read as a clean record."""
    org = Org().service("checkout", "payments").service("search", "payments")
    org.deploy("c1", "checkout", at(days=3))
    org.incident("i1", "checkout", at(days=3, hours=1), caused_by="c1", resolved=timedelta(hours=2))
    org.deploy("s1", "search", at(days=4))
    org.deploy("s2", "search", at(days=5), rollback_of="s1")
    org.load(warehouse, tmp_path)

    doc = card(warehouse)
    assert doc["dora"]["change_failure_rate"]["failed"] == 2  # c1 (incident), s1 (rolled back)
    assert doc["data_quality"]["deployments_without_incident_data"] == 2
    rows = findings(warehouse, "deployments_without_incident_data")
    assert rows["id"].tolist() == ["s1", "s2"]
    assert (
        card(warehouse, scope=Scope(service="checkout"))["data_quality"][
            "deployments_without_incident_data"
        ]
        == 0
    )
    teams = team_scorecards(warehouse, Q3)
    assert teams["payments"]["data_quality"]["deployments_without_incident_data"] == 2
    listed = [
        row
        for row in explained(warehouse, "data_quality")
        if row["kind"] == "deployments_without_incident_data"
    ]
    assert [row["id"] for row in listed] == ["s1", "s2"] and all(row["counts"] for row in listed)
    assert listed[0]["reason"] == (
        "s1: search has no incident on record, so its change fail rate counts only "
        "rollbacks and fixes"
    )
    page = source_view(Warehouse(warehouse, Settings()), Query(Q3.start, Q3.end))["findings"]
    assert page["deployments_without_incident_data"]["id"].tolist() == ["s1", "s2"]
    notes = coverage_notes(doc)
    assert any(
        note.startswith("2 of 3 production deployments belong to services with no incident")
        for note in notes
    )

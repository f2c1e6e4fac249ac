"""`poise metrics` and `poise explain` on imported data, against figures worked out by hand.

The files go in through `poise import` itself, so the whole way from CSV to JSON is the
one a user takes. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from metrics_org import Org, at

from metrics.explain import FIGURES
from poise.cli import main


def golden_quarter() -> Org:
    """Q3 2026 for two teams. The expected figures are derived in test_quarter_json."""
    org = Org().service("checkout", "payments").service("search", "discovery")
    org.change("c1", "checkout", at(days=0))
    org.change("c2", "checkout", at(days=1))
    org.change("c3", "checkout", at(days=8))
    org.change("c4", "checkout", at(days=19))
    org.change("c5", "search", at(days=31))
    org.deploy("d1", "checkout", at(days=0, hours=10), ["c1"])  # lead 10 h
    org.deploy("d2", "checkout", at(days=2), ["c2"])  # 24 h
    org.deploy("d3", "checkout", at(days=9), ["c3"])  # 24 h
    org.deploy("d4", "checkout", at(days=9, hours=5), remediation_of="d3")
    org.deploy("d5", "checkout", at(days=19, hours=12), ["c4"])  # 12 h
    org.deploy("s1", "search", at(days=33), ["c5"])  # 48 h
    org.deploy("s2", "search", at(days=40))
    org.incident("INC-1", "checkout", at(days=9, hours=3))  # inferred onto d3
    org.incident(
        "INC-2",
        "search",
        at(days=40, hours=6),
        cause="external",
        detected=timedelta(minutes=10),
        acknowledged=timedelta(minutes=20),
        resolved=timedelta(hours=4),
    )
    org.incident(
        "INC-3", "search", at(days=62), severity="SEV1", caused_by="s1", resolved=timedelta(hours=1)
    )
    org.slo("checkout-availability", "checkout", 0.999, 28)
    org.sli("checkout-availability", at(days=64), 28 * 24, 9995, 10000)
    return org


@pytest.fixture
def loaded(
    warehouse_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    monkeypatch.chdir(tmp_path)  # no poise.yaml around
    paths = golden_quarter().write(tmp_path / "files")
    for kind, path in paths.items():
        assert main(["import", "--kind", kind, str(path), "--db", warehouse_url]) == 0
    errors = capsys.readouterr().err
    assert "attribution: 1 explicit, 1 inferred, 1 unattributed incidents" in errors
    return warehouse_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_quarter_json(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "metrics", "--quarter", "2026Q3", "--format", "json", "--db", loaded)
    assert code == 0
    doc = json.loads(out)
    assert doc["period"] == {"from": "2026-07-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"}
    assert doc["scope"] == {"team": None, "service": None}
    dora = doc["dora"]
    # 7 production deployments in 92 days
    assert dora["deployment_frequency"]["deployments"] == 7
    assert dora["deployment_frequency"]["per_week"] == pytest.approx(7 / (92 / 7))
    assert dora["deployment_frequency"]["tier"] == "medium"  # 0.53 a week: weekly to monthly
    # lead times 10, 12, 24, 24, 48 h: median 24, p90 24 + 0.6 × 24 = 38.4; 24 h is not < 1 day
    assert dora["lead_time"]["median_hours"] == pytest.approx(24.0)
    assert dora["lead_time"]["p90_hours"] == pytest.approx(38.4)
    assert dora["lead_time"]["changes"] == 5
    assert dora["lead_time"]["tier"] == "high"
    # d3 (INC-1 inferred, and remediated by d4) and s1 (INC-3 explicit) failed: 2 of 7
    assert dora["change_failure_rate"]["failed"] == 2
    assert dora["change_failure_rate"]["deployments"] == 7
    assert dora["change_failure_rate"]["rate"] == pytest.approx(2 / 7)
    assert dora["change_failure_rate"]["tier"] == "low"
    # d3: 5 h to d4; s1: until INC-3 resolved (day 62 01:00 − day 33) = 697 h; median 351
    assert dora["recovery_time"]["median_hours"] == pytest.approx(351.0)
    assert dora["recovery_time"]["failures"] == 2
    assert dora["recovery_time"]["tier"] == "insufficient data"
    assert dora["rework_rate"] == {"rate": pytest.approx(1 / 7), "rework": 1, "deployments": 7}
    incidents = doc["incidents"]
    assert incidents["count"] == 3
    assert incidents["mttd_median_minutes"] == 5.0  # 5, 10, 5
    assert incidents["mtta_median_minutes"] == 10.0  # 10, 20, 10
    assert incidents["mttr_median_hours"] == 2.0  # 2, 4, 1
    assert incidents["by_severity"]["SEV1"]["count"] == 1
    assert incidents["by_cause"]["external"]["mttr_median_hours"] == 4.0
    assert doc["attribution"] == {"explicit": 1, "inferred": 1, "unattributed": 1}
    (slo,) = doc["slos"]
    assert {k: slo[k] for k in ("name", "service", "target", "window_days", "status")} == {
        "name": "checkout-availability",
        "service": "checkout",
        "target": 0.999,
        "window_days": 28,
        "status": "ok",  # half the budget left, burning at 0.5: lasts exactly a window
    }
    assert slo["sli"] == pytest.approx(0.9995)
    assert slo["budget_remaining"] == pytest.approx(0.5)
    assert slo["burn_rate"] == {k: pytest.approx(0.5) for k in ("1h", "6h", "24h", "72h")}
    assert slo["forecast_exhausted_at"] == "2026-10-29T00:00:00Z"


def test_a_quarter_not_over_is_measured_to_date(
    loaded: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On 15 August, 2026Q3 is its first 45 days: divided by all 92, its deployments per
    week read at less than half, and its SLOs would be judged at 1 October, still to come."""
    monkeypatch.setattr("poise.commands.metrics.utcnow", lambda: at(days=45, hours=12))
    code, out, err = run(
        capsys, "metrics", "--quarter", "2026Q3", "--format", "json", "--db", loaded
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["period"] == {"from": "2026-07-01T00:00:00Z", "to": "2026-08-15T00:00:00Z"}
    frequency = doc["dora"]["deployment_frequency"]
    assert frequency["deployments"] == 7  # every one falls in the first 41 days
    assert frequency["per_week"] == pytest.approx(7 / (45 / 7))
    assert err.strip() == (
        "poise: note: 2026Q3 is not over: the figures cover it to date, 2026-07-01 to "
        "2026-08-14 (today, unfinished, left out)"
    )
    code, _, err = run(capsys, "metrics", "--quarter", "2026Q4", "--db", loaded)
    assert code == 1
    assert err.strip() == (
        "poise: 2026Q4: the quarter has not begun (it starts on 2026-10-01, and figures cover "
        "whole days up to the start of today, UTC)"
    )


def test_a_period_ending_later_is_measured_to_date(
    loaded: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--to` a day still to come is cut at the start of today, as a quarter not over is:
    left as given, the days to come would divide the deployments and dilute the rate."""
    monkeypatch.setattr("poise.commands.metrics.utcnow", lambda: at(days=45, hours=12))

    def between(start: str, end: str) -> tuple[int, str, str]:
        return run(
            capsys, "metrics", "--from", start, "--to", end, "--format", "json", "--db", loaded
        )

    code, out, err = between("2026-07-01", "2026-10-01")
    assert code == 0
    doc = json.loads(out)
    assert doc["period"] == {"from": "2026-07-01T00:00:00Z", "to": "2026-08-15T00:00:00Z"}
    assert doc["dora"]["deployment_frequency"]["per_week"] == pytest.approx(7 / (45 / 7))
    assert err.strip() == (
        "poise: note: --to 2026-10-01 is still to come: the figures cover the period to "
        "date, 2026-07-01 to 2026-08-14 (today, unfinished, left out)"
    )
    # an end earlier today has passed: kept as given, no note
    code, out, err = between("2026-07-01", "2026-08-15T06:00:00Z")
    assert (code, err) == (0, "")
    assert json.loads(out)["period"]["to"] == "2026-08-15T06:00:00Z"
    code, _, err = between("2026-08-15", "2026-09-01")
    assert code == 1
    assert err.strip() == (
        "poise: the period starts on 2026-08-15, which has not ended: figures cover whole "
        "days up to the start of today, UTC"
    )
    code, _, err = between("2026-09-01", "2026-08-01")
    assert code == 1
    assert "`to` must be after `from`" in err


def test_team_scope_json_and_by_team(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys,
        "metrics",
        "--quarter",
        "2026Q3",
        "--team",
        "discovery",
        "--format",
        "json",
        "--db",
        loaded,
    )
    team = json.loads(out)
    assert team["dora"]["deployment_frequency"]["deployments"] == 2
    assert team["dora"]["change_failure_rate"]["rate"] == 0.5
    assert team["slos"] == []
    _, out, _ = run(
        capsys, "metrics", "--quarter", "2026Q3", "--by-team", "--format", "json", "--db", loaded
    )
    teams = json.loads(out)
    assert sorted(teams) == ["discovery", "payments"]
    assert teams["discovery"]["dora"] == team["dora"]
    assert teams["payments"]["dora"]["deployment_frequency"]["deployments"] == 5


def test_table_csv_and_compare(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "metrics", "--quarter", "2026Q3", "--db", loaded)
    assert code == 0
    for text in (
        "Delivery (DORA)",
        "change fail rate",
        "28.6 %",
        "checkout-availability",
        "Attribution: 1 explicit, 1 inferred, 1 unattributed",
    ):
        assert text in out
    _, out, _ = run(capsys, "metrics", "--quarter", "2026Q3", "--format", "csv", "--db", loaded)
    rows = {row["figure"]: row["value"] for row in csv.DictReader(io.StringIO(out))}
    assert rows["dora.deployment_frequency.deployments"] == "7"
    assert float(rows["slos[checkout-availability].budget_remaining"]) == pytest.approx(0.5)
    assert rows["dora.lead_time.p90_hours"].startswith("38.4")
    _, out, _ = run(
        capsys, "metrics", "--quarter", "2026Q3", "--compare", "--format", "json", "--db", loaded
    )
    compared = json.loads(out)
    assert compared["previous"]["period"] == {
        "from": "2026-04-01T00:00:00Z",
        "to": "2026-07-01T00:00:00Z",
    }
    # 2026Q2 holds no row at all: its scorecard counts 0 incidents, but the change has
    # nothing to compare with (metrics.trends.holds_data), rather than "+3"
    assert compared["previous"]["incidents"]["count"] == 0
    assert compared["change"]["incidents"] == {
        "current": 3,
        "previous": None,
        "delta": None,
        "relative": None,
    }
    _, out, _ = run(capsys, "metrics", "--quarter", "2026Q3", "--compare", "--db", loaded)
    assert "The warehouse holds nothing of the previous period" in " ".join(out.split())
    _, out, _ = run(capsys, "metrics", "--quarter", "2026Q4", "--compare", "--db", loaded)
    assert "holds nothing" not in " ".join(out.split())  # 2026Q3 before it holds data


def test_explain_prints_why(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        "change_failure_rate",
        "--quarter",
        "2026Q3",
        "--format",
        "json",
        "--db",
        loaded,
    )
    assert code == 0
    rows = {row["id"]: row for row in json.loads(out)}
    assert rows["d3"]["reason"] == (
        "d3 failed: INC-1 attributed by inference, deployed 3 h before the incident on the same "
        "service; remediated by d4 5 h later"
    )
    assert rows["s1"]["reason"] == "s1 failed: INC-3 names it in caused_by_deployment"
    code, out, _ = run(
        capsys,
        "explain",
        "lead_time",
        "--quarter",
        "2026Q3",
        "--service",
        "search",
        "--format",
        "json",
        "--db",
        loaded,
    )
    assert code == 0
    (row,) = json.loads(out)
    assert row["reason"] == "c5: first production deployment s1, 2 d after it was committed"
    code, out, _ = run(capsys, "explain", "rework", "--quarter", "2026Q3", "--db", loaded)
    assert code == 0
    assert "rework_rate: 7 rows" in out
    assert "d4 is rework: it remediates d3" in out
    assert "is not rework: it names no deployment in rollback_of or remediation_of" in out


@pytest.mark.parametrize(
    "scope",
    [
        ("--quarter", "2026Q3"),  # failures recovered by remediation and by incident
        ("--quarter", "2026Q3", "--service", "search"),  # recovered only through an incident
        ("--from", "2026-07-01", "--to", "2026-07-08"),  # deployments, none failed
        ("--quarter", "2025Q1"),  # nothing at all
    ],
    ids=["quarter", "incident-only", "none-failed", "empty"],
)
def test_every_figure_explains_every_scope(
    loaded: str, capsys: pytest.CaptureFixture[str], scope: tuple[str, ...]
) -> None:
    """The rows of each figure, whatever a period holds; recovery time crashed on a period
    where no failure's recovery had been left out."""
    for figure in FIGURES:
        code, out, err = run(capsys, "explain", figure, *scope, "--format", "json", "--db", loaded)
        assert (code, err) == (0, ""), (figure, err)
        assert isinstance(json.loads(out), list)
    code, out, _ = run(
        capsys, "explain", "recovery_time", *scope, "--format", "json", "--db", loaded
    )
    _, doc, _ = run(capsys, "metrics", *scope, "--format", "json", "--db", loaded)
    counted = [row for row in json.loads(out) if row["counts"]]
    assert len(counted) == json.loads(doc)["dora"]["recovery_time"]["failures"]


def test_user_mistakes_are_one_line_errors(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "metrics", "--team", "paymnets", "--db", loaded)
    assert code == 1
    assert err.strip() == "poise: unknown team 'paymnets' (known: discovery, payments)"
    code, _, err = run(
        capsys, "metrics", "--quarter", "2026Q3", "--from", "2026-07-01", "--db", loaded
    )
    assert (code, err.strip()) == (1, "poise: give either --quarter or --from/--to, not both")
    code, _, err = run(capsys, "explain", "velocity", "--db", loaded)
    assert code == 1 and err.startswith("poise: unknown figure 'velocity'")
    code, _, err = run(
        capsys, "metrics", "--from", "2026-10-01", "--to", "2026-07-01", "--db", loaded
    )
    assert code == 1 and "is empty" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["metrics", "--quarter", "2026Q5", "--db", loaded])
    assert exit_info.value.code == 2


def test_a_scope_without_incident_data_prints_no_tier_and_no_incident_table(
    sqlite_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A git-only organisation: the terminal gives the change fail rate no tier and prints
    why there is no incident figure; the JSON keeps the contract's tier."""
    monkeypatch.chdir(tmp_path)
    org = Org().service("checkout", "payments")
    for day in range(1, 8):
        org.change(f"c{day}", "checkout", at(days=day))
        org.deploy(f"d{day}", "checkout", at(days=day, hours=2), [f"c{day}"])
    for kind, path in org.write(tmp_path / "files").items():
        assert main(["import", "--kind", kind, str(path), "--db", sqlite_url]) == 0
    capsys.readouterr()
    period = ["--quarter", "2026Q3", "--db", sqlite_url]
    code, out, _ = run(capsys, "metrics", *period)
    assert code == 0
    cfr = next(line for line in out.splitlines() if "change fail rate" in line)
    assert "0 of 7" in cfr and "no incident data" in cfr and "elite" not in cfr
    assert "Incidents: — (no incident on record for these services" in out
    code, out, _ = run(capsys, "metrics", *period, "--format", "json")
    document = json.loads(out)
    assert document["dora"]["change_failure_rate"]["tier"] == "elite"  # the contract's
    assert document["incidents"]["count"] is None

"""Figures exactly on a tier bound, through `poise import` and `poise metrics --format json`.

metric-definitions.md grades by bounds ("daily to weekly", "on demand: several a day"), so a
figure that lands exactly on one must get the tier of that side, not the one float rounding
happens to give it. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from metrics_org import Org, at

from poise.cli import main


def metrics_json(
    org: Org, url: str, folder: Path, capsys: pytest.CaptureFixture[str], *period: str
) -> dict:
    for kind, path in org.write(folder).items():
        assert main(["import", "--kind", kind, str(path), "--db", url]) == 0
    capsys.readouterr()
    assert main(["metrics", *period, "--format", "json", "--db", url]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("deployments", "per_week", "tier"),
    [
        # one a day for 17 days is exactly daily: 17 / (17 / 7) computed as the quotient of
        # the rounded weeks read 7.000000000000001, which is "more than once a day"
        (17, 7.0, "high"),
        (18, 18 * 7 / 17, "elite"),
    ],
)
def test_exactly_daily_deployments_are_daily_not_on_demand(
    warehouse_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    deployments: int,
    per_week: float,
    tier: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # no poise.yaml around
    org = Org().service("checkout", "payments")
    for n in range(deployments):
        org.deploy(f"d{n:02d}", "checkout", at(hours=n * 17 * 24 / deployments))
    doc = metrics_json(
        org, warehouse_url, tmp_path / "files", capsys, "--from", "2026-07-01", "--to", "2026-07-18"
    )
    frequency = doc["dora"]["deployment_frequency"]
    assert frequency["deployments"] == deployments
    assert frequency["per_week"] == per_week
    assert frequency["tier"] == tier


def test_a_median_of_exactly_one_hour_from_millisecond_times_is_not_under_an_hour(
    warehouse_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Six rollbacks; the middle two recover 8 min 47.414 s either side of 1 h, so the
    median is exactly 1 h: "less than 1 hour" is elite, so 1 h is high. In hours those two
    carry binary noise, and their interpolated median read 0.9999999999999999 (elite)."""
    monkeypatch.chdir(tmp_path)
    recoveries_ms = [600_000, 1_200_000, 3_072_586, 4_127_414, 18_000_000, 21_600_000]
    org = Org().service("checkout", "payments")
    for n, milliseconds in enumerate(recoveries_ms):
        org.deploy(f"d{n}", "checkout", at(days=n))
        org.deploy(f"r{n}", "checkout", at(days=n), rollback_of=f"d{n}")
        # metrics_org writes whole seconds; these need their milliseconds
        fixed = at(days=n, seconds=milliseconds / 1000)
        org.rows["deployments"][-1]["deployed_at"] = fixed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    doc = metrics_json(org, warehouse_url, tmp_path / "files", capsys, "--quarter", "2026Q3")
    recovery = doc["dora"]["recovery_time"]
    assert recovery["failures"] == 6
    assert recovery["median_hours"] == 1.0
    assert recovery["tier"] == "high"

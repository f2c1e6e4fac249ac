"""`poise sync` against loopback PagerDuty and Opsgenie, then `poise metrics` over what it stored.

Deployments come in through `poise import` (a tool without a collector); incidents and pages
through the two collectors; the post-sync attribution hook links them; the figures follow
metric-definitions.md. A second sync adds nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from incident_fakes import FakeOpsgenie, FakePagerDuty
from replay import ReplayServer
from sqlalchemy import create_engine, func, select

from poise.cli import main
from poise.warehouse import schema

PD_TOKEN = "pd-e2e-T0ken-not-stored"
OG_KEY = "og-e2e-key-not-stored"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def snapshot(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                which.name: sorted(tuple(row) for row in connection.execute(select(which)).all())
                for which in (schema.incidents, schema.oncall_pages, schema.attributions)
            } | {"raw": connection.scalar(select(func.count()).select_from(schema.raw_payloads))}
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two sources' secrets, from the environment only."""
    monkeypatch.setenv("E2E_PAGERDUTY_TOKEN", PD_TOKEN)
    monkeypatch.setenv("E2E_OPSGENIE_KEY", OG_KEY)


def write_config(
    folder: Path,
    pagerduty: ReplayServer,
    opsgenie: ReplayServer,
    *,
    teams: list[dict[str, Any]],
    services: list[dict[str, Any]],
) -> Path:
    config = folder / "poise.yaml"
    sources = {
        "pagerduty": {
            "base_url": pagerduty.base_url,
            "token_env": "E2E_PAGERDUTY_TOKEN",
            "since": "2026-01-01",
        },
        "opsgenie": {"base_url": opsgenie.base_url, "token_env": "E2E_OPSGENIE_KEY"},
    }
    document = {"teams": teams, "services": services, "sources": sources}
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    return config


def test_sync_fills_incidents_and_pages_and_metrics_show_them(
    warehouse_url: str,
    replay_server: ReplayServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pagerduty = FakePagerDuty(replay_server)
    pagerduty.incident(  # 30 minutes after a checkout deployment: attributed by inference
        "Q1E2E000000001",
        1,
        service="PCHECK1",
        created=at("2026-03-03T10:30:00"),
        acknowledged=at("2026-03-03T10:36:00"),
        resolved=at("2026-03-03T12:30:00"),
    )
    pagerduty.incident(  # no deployment in the 24 h before: unattributed
        "Q2E2E000000002",
        2,
        service="PCHECK1",
        created=at("2026-03-20T03:00:00"),
        urgency="low",
        omit_priority=True,
        resolved=at("2026-03-20T03:20:00"),
    )
    with ReplayServer() as opsgenie_server:
        opsgenie = FakeOpsgenie(opsgenie_server)
        opsgenie.incident(
            "0c6a1c8e-0000-4000-8000-00000000e2e1",
            7,
            service="og-search",
            created=at("2026-03-10T15:00:00"),
            resolved=at("2026-03-10T16:00:00"),
            priority="P2",
        )
        opsgenie.alert("al-e2e-1", 70, query="teams:discovery", created=at("2026-03-10T14:58:00"))

        config = write_config(
            tmp_path,
            replay_server,
            opsgenie_server,
            teams=[
                {"name": "payments", "timezone": "Europe/Berlin"},
                {"name": "discovery", "timezone": "America/New_York"},
            ],
            services=[
                {"name": "checkout", "team": "payments", "pagerduty": {"service_id": "PCHECK1"}},
                {
                    "name": "search",
                    "team": "discovery",
                    "opsgenie": {"service_id": "og-search", "alert_query": "teams:discovery"},
                },
            ],
        )
        deployments = tmp_path / "deployments.csv"
        deployments.write_text(
            "id,service,environment,deployed_at,status,sha,change_ids\n"
            "deploy-1,checkout,production,2026-03-03T10:00:00Z,success,,\n",
            encoding="utf-8",
        )
        common = ["--config", str(config), "--db", warehouse_url]
        assert main(["import", "--kind", "deployments", str(deployments), *common]) == 0
        assert main(["sync", *common]) == 0
        first = snapshot(warehouse_url)
        assert len(first["incidents"]) == 3 and len(first["oncall_pages"]) == 3
        capsys.readouterr()

        assert main(["sync", *common]) == 0
        again = snapshot(warehouse_url)
        assert {k: v for k, v in again.items() if k != "raw"} == {
            k: v for k, v in first.items() if k != "raw"
        }  # not even updated_at moved

    capsys.readouterr()
    argv = ["metrics", "--from", "2026-03-01", "--to", "2026-04-01", "--format", "json"]
    assert main([*argv, *common]) == 0
    figures = json.loads(capsys.readouterr().out)
    incidents = figures["incidents"]
    assert incidents["count"] == 3
    # acknowledged: 6 minutes after the start (PagerDuty's log entries); Opsgenie's none
    assert incidents["mtta_median_minutes"] == pytest.approx(6.0)
    assert incidents["mttd_median_minutes"] == pytest.approx(0.0)
    # resolved after 2 h, 20 min and 1 h: the median is 1 h
    assert incidents["mttr_median_hours"] == pytest.approx(1.0)
    assert figures["attribution"] == {"explicit": 0, "inferred": 1, "unattributed": 2}
    dora = figures["dora"]["change_failure_rate"]
    assert (dora["failed"], dora["deployments"]) == (1, 1)


def test_a_pager_that_found_nothing_puts_its_service_on_record(
    warehouse_url: str,
    replay_server: ReplayServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A calm service behind a synced pager has 0 incidents and 0 pages (a real zero, with its
    tier); a service no incident source covers has no figure. Before its first sync the calm
    service is no data too: the zero comes from the sync, not from the config."""
    FakePagerDuty(replay_server)  # answers, with no incident
    with ReplayServer() as opsgenie_server:
        FakeOpsgenie(opsgenie_server)
        config = write_config(
            tmp_path,
            replay_server,
            opsgenie_server,
            teams=[{"name": "payments"}, {"name": "discovery"}, {"name": "platform"}],
            services=[
                {"name": "checkout", "team": "payments", "pagerduty": {"service_id": "P1"}},
                {
                    "name": "search",
                    "team": "discovery",
                    "opsgenie": {"service_id": "og-1", "alert_query": "teams:discovery"},
                },
                {"name": "builds", "team": "platform"},
            ],
        )
        deployments = tmp_path / "deployments.csv"
        deployments.write_text(
            "id,service,environment,deployed_at,status,sha,change_ids\n"
            "d-1,checkout,production,2026-03-03T10:00:00Z,success,,\n"
            "d-2,search,production,2026-03-04T10:00:00Z,success,,\n"
            "d-3,builds,production,2026-03-05T10:00:00Z,success,,\n",
            encoding="utf-8",
        )
        common = ["--config", str(config), "--db", warehouse_url]
        assert main(["import", "--kind", "deployments", str(deployments), *common]) == 0
        window = ["--from", "2026-03-01", "--to", "2026-04-01", "--format", "json"]

        def figures(team: str) -> dict[str, Any]:
            capsys.readouterr()
            assert main(["metrics", *window, "--team", team, *common]) == 0
            return json.loads(capsys.readouterr().out)

        assert figures("payments")["incidents"]["count"] is None  # not synced yet
        assert main(["sync", *common]) == 0
        engine = create_engine(warehouse_url)
        try:  # disposed: a PostgreSQL connection left in the pool warns when collected
            with engine.connect() as connection:
                assert connection.scalar(select(func.count()).select_from(schema.incidents)) == 0
        finally:
            engine.dispose()
        for team in ("payments", "discovery"):
            calm = figures(team)
            assert calm["incidents"]["count"] == 0, team
            assert calm["incidents"]["reason"] is None
            oncall = calm["people"]["oncall"]
            assert oncall["per_week"] == 0.0 and oncall["reason"] is None, team
            assert calm["dora"]["change_failure_rate"]["rate"] == 0.0
        silent = figures("platform")
        assert silent["incidents"]["count"] is None
        assert "no incident on record" in silent["incidents"]["reason"]
        assert silent["people"]["oncall"]["per_week"] is None


def test_the_streams_that_put_a_service_on_record_are_the_collectors_own() -> None:
    from collectors import github, opsgenie, pagerduty
    from poise.warehouse.sync_state import INCIDENT_STREAMS, PAGE_STREAMS

    pd_source, og_source = pagerduty.PagerDutySource, opsgenie.OpsgenieSource
    assert set(INCIDENT_STREAMS) == {
        (pd_source.name, pagerduty.INCIDENTS.name),
        (og_source.name, opsgenie.INCIDENTS.name),
        (github.GitHubSource.name, github.ISSUES.name),
    }
    assert set(PAGE_STREAMS) == {
        (pd_source.name, pagerduty.INCIDENTS.name),
        (og_source.name, opsgenie.ALERTS.name),
    }

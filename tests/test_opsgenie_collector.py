"""The Opsgenie collector against a loopback Opsgenie (tests/incident_fakes.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from incident_fakes import FakeOpsgenie, quiet
from replay import ReplayServer, Reply
from sqlalchemy import Engine, select

from collectors.opsgenie import OpsgenieSource
from collectors.runner import SyncSummary, run_sync
from poise.catalog import apply_config
from poise.config import PoiseConfig, parse_config
from poise.warehouse import schema
from poise.warehouse.sync_state import read_state

KEY = "0f6c2d44-genie-key-never-stored"
CHECKOUT = "695bce3d-4a1b-47c9-9a7e-7b1f0f0c8f55"
ALERTS = "teams:payments AND tag:checkout"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_config(
    tmp_path: Path,
    server: ReplayServer,
    alert_query: str | None = ALERTS,
    service_id: str = CHECKOUT,
    **settings: Any,
) -> Any:
    block: dict[str, Any] = {"service_id": service_id}
    if alert_query:
        block["alert_query"] = alert_query
    return parse_config(
        {
            "teams": [{"name": "payments", "timezone": "Europe/London"}],
            "services": [{"name": "checkout", "team": "payments", "opsgenie": block}],
            "sources": {
                "opsgenie": {
                    "base_url": server.base_url,
                    "token_env": "TEST_OPSGENIE_KEY",
                    "max_retries": 2,
                    **settings,
                }
            },
        },
        base_dir=tmp_path,
    )


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TEST_OPSGENIE_KEY", KEY)
    return KEY


def account(server: ReplayServer) -> FakeOpsgenie:
    fake = FakeOpsgenie(server)
    fake.incident(
        "3f84e009-7548-4e7d-832a-fa82c1ceb6b1",
        12,
        service=CHECKOUT,
        created=at("2026-05-04T11:00:05.003000"),
        resolved=at("2026-05-04T11:41:10.490000"),
        message="Checkout down",
    )
    fake.incident(
        "8d1c0a4e-1b2f-4c3d-9e8f-0a1b2c3d4e5f",
        13,
        service=CHECKOUT,
        created=at("2026-06-01T22:10:00.100000"),
        status="open",
        priority="P2",
    )
    fake.incident(  # another service's, never asked for
        "aaaaaaaa-0000-4000-8000-000000000000",
        14,
        service="other-service",
        created=at("2026-06-02T10:00:00"),
    )
    fake.alert("a-1", 101, query=ALERTS, created=at("2026-05-04T10:59:00.500000"), priority="P1")
    fake.alert("a-2", 102, query=ALERTS, created=at("2026-06-06T09:30:00"))  # a Saturday
    fake.alert("a-3", 103, query="teams:search", created=at("2026-06-03T09:30:00"))
    return fake


def sync(engine: Engine, config: PoiseConfig) -> tuple[SyncSummary, list[float]]:
    source, sleeps = quiet(OpsgenieSource)
    apply_config(engine, config)
    return run_sync(engine, config, registry={"opsgenie": source}, hooks=[]), sleeps


def rows(engine: Engine, which: Any) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        return {row["id"]: dict(row) for row in connection.execute(select(which)).mappings()}


def test_incidents_and_alerts_are_collected_and_a_second_sync_adds_nothing(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, key: str
) -> None:
    fake = account(replay_server)
    config = make_config(tmp_path, replay_server)
    summary, _ = sync(warehouse, config)
    result = summary.result("opsgenie")
    assert not summary.failed, result.errors
    assert (result.new, result.updated) == (4, 0)

    incidents = rows(warehouse, schema.incidents)
    assert set(incidents) == {
        "opsgenie:3f84e009-7548-4e7d-832a-fa82c1ceb6b1",
        "opsgenie:8d1c0a4e-1b2f-4c3d-9e8f-0a1b2c3d4e5f",
    }
    resolved = incidents["opsgenie:3f84e009-7548-4e7d-832a-fa82c1ceb6b1"]
    assert resolved["started_at"] == resolved["detected_at"] == at("2026-05-04T11:00:05.003000")
    assert resolved["resolved_at"] == at("2026-05-04T11:41:10.490000")  # ".49Z"
    assert (resolved["severity"], resolved["status"], resolved["acknowledged_at"]) == (
        "P1",
        "resolved",
        None,
    )
    assert resolved["title"] == "Checkout down"
    assert resolved["url"].endswith("/incident/detail/3f84e009-7548-4e7d-832a-fa82c1ceb6b1")
    still_open = incidents["opsgenie:8d1c0a4e-1b2f-4c3d-9e8f-0a1b2c3d4e5f"]
    assert (still_open["status"], still_open["resolved_at"]) == ("open", None)

    pages = rows(warehouse, schema.oncall_pages)
    assert {k: (p["urgency"], p["after_hours"], p["team"]) for k, p in pages.items()} == {
        "opsgenie:alert:a-1": ("high", False, "payments"),  # 11:59 in London
        "opsgenie:alert:a-2": ("low", True, "payments"),  # Saturday
    }
    assert pages["opsgenie:alert:a-1"]["triggered_at"] == at("2026-05-04T10:59:00.500000")

    requests = replay_server.requests
    assert all(r.header("Authorization") == f"GenieKey {key}" for r in requests)
    listing = next(r for r in requests if r.path == "/v1/incidents")
    assert listing.query == {
        "query": f"impactedServices:{CHECKOUT}",
        "sort": "createdAt",
        "order": "desc",
        "limit": "100",
    }
    assert next(r for r in requests if r.path == "/v2/alerts").query["query"] == ALERTS

    served = len(requests)
    summary, _ = sync(warehouse, config)
    assert (summary.result("opsgenie").new, summary.result("opsgenie").updated) == (0, 0)
    assert sorted(r.path for r in replay_server.requests[served:]) == [
        "/v1/incidents",
        "/v1/incidents/8d1c0a4e-1b2f-4c3d-9e8f-0a1b2c3d4e5f",  # still open: asked again
        "/v2/alerts",
    ]

    fake.incident(
        "8d1c0a4e-1b2f-4c3d-9e8f-0a1b2c3d4e5f",
        13,
        service=CHECKOUT,
        created=at("2026-06-01T22:10:00.100000"),
        priority="P2",
        resolved=at("2026-06-01T23:00:00"),
    )
    summary, _ = sync(warehouse, config)
    assert summary.result("opsgenie").updated == 1
    now_resolved = rows(warehouse, schema.incidents)[
        "opsgenie:8d1c0a4e-1b2f-4c3d-9e8f-0a1b2c3d4e5f"
    ]
    assert (now_resolved["status"], now_resolved["resolved_at"]) == (
        "resolved",
        at("2026-06-01T23:00:00"),
    )


def test_without_an_alert_query_no_alerts_are_asked_for(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, key: str
) -> None:
    account(replay_server)
    summary, _ = sync(warehouse, make_config(tmp_path, replay_server, alert_query=None))
    assert not summary.failed
    assert not replay_server.requests_to("/v2/alerts")
    assert rows(warehouse, schema.oncall_pages) == {}


def test_throttling_is_waited_out(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, key: str
) -> None:
    fake = account(replay_server)
    throttled = Reply(
        429,
        {"message": "You are making too many requests!", "took": 0.0, "requestId": "r"},
        {
            "X-RateLimit-State": "THROTTLED",
            "X-RateLimit-Reason": "INTEGRATION",
            "X-RateLimit-Period-In-Sec": "60",
        },
    )
    fake.fault("/v2/alerts", throttled, throttled)
    summary, sleeps = sync(warehouse, make_config(tmp_path, replay_server))
    assert not summary.failed
    assert sleeps == [1.0, 2.0]  # no wait header to go by: exponential back-off
    assert len(rows(warehouse, schema.oncall_pages)) == 2


def test_garbage_is_one_line_and_keeps_the_bookmark(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, key: str
) -> None:
    fake = account(replay_server)
    fake.fault("/v2/alerts", Reply(200, b'{"data": [{"id": "a-9", "createdAt": '))
    summary, _ = sync(warehouse, make_config(tmp_path, replay_server))
    (error,) = summary.result("opsgenie").errors
    assert error.startswith("opsgenie: malformed response from http://127.0.0.1:")
    assert "/v2/alerts?" in error and KEY not in error
    assert len(rows(warehouse, schema.incidents)) == 2  # the incidents came first and stay
    with warehouse.connect() as connection:
        alerts = read_state(connection, "opsgenie", "alerts", "checkout")
        incidents = read_state(connection, "opsgenie", "incidents", "checkout")
    assert alerts.bookmark is None and alerts.last_error == error
    assert incidents.last_error is None and incidents.bookmark["cursor"] is not None


def test_an_alert_without_its_creation_time_is_malformed(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, key: str
) -> None:
    fake = account(replay_server)
    fake.fault("/v2/alerts", Reply(200, {"data": [{"id": "a-9", "message": "?"}], "took": 0.1}))
    summary, _ = sync(warehouse, make_config(tmp_path, replay_server))
    assert summary.result("opsgenie").errors == [
        "opsgenie: malformed alert from record 'a-9': missing 'createdAt'; earlier pages are kept"
    ]


def test_since_bounds_the_first_sync_and_stops_the_paging(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, key: str
) -> None:
    fake = account(replay_server)
    for number in range(150):  # a long history before `since`: never paged through
        fake.incident(
            f"00000000-0000-4000-8000-{number:012d}",
            1000 + number,
            service=CHECKOUT,
            created=at("2025-01-01T00:00:00").replace(hour=number % 24, day=1 + number // 24),
        )
    config = make_config(tmp_path, replay_server, since="2026-06-01")
    summary, _ = sync(warehouse, config)
    assert not summary.failed
    assert set(rows(warehouse, schema.incidents)) == {
        "opsgenie:8d1c0a4e-1b2f-4c3d-9e8f-0a1b2c3d4e5f"  # created 2026-06-01 22:10
    }
    assert set(rows(warehouse, schema.oncall_pages)) == {"opsgenie:alert:a-2"}
    assert len(replay_server.requests_to("/v1/incidents")) == 1  # one page: the rest is older

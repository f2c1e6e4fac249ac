"""PagerDuty and Opsgenie probed as a demanding SRE would use them; each test found a fault.

- Opsgenie: an incident impacting two configured services (an ordinary Opsgenie incident:
  `impactedServices` is a list) was written by both services' scopes under the one id
  `opsgenie:<id>`, so it moved from one service to the other at every sync (never "a second
  sync adds nothing") and the first service lost it. It now belongs to the first of its
  impacted services that poise.yaml maps; the others leave it alone.
- PagerDuty: an incident's `acknowledgements` list only the current acknowledgement; after
  an acknowledgement timed out and was acknowledged again it shows the second one. Once
  seen, that later time was kept and the log entries (which know the first) were never
  read, so time to acknowledge came out too long. The log entries are now read once when
  an incident is first seen resolved, whatever was known before.

The accounts are the collectors' own stories (tests/test_*_collector.py), served by the
loopback fakes of tests/incident_fakes.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import test_opsgenie_collector as opsgenie_story
import test_pagerduty_collector as pagerduty_story
from incident_fakes import FakeOpsgenie, FakePagerDuty
from replay import ReplayServer
from sqlalchemy import Engine

from poise.config import PoiseConfig, parse_config
from poise.warehouse import schema


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PAGERDUTY_TOKEN", pagerduty_story.TOKEN)
    monkeypatch.setenv("TEST_OPSGENIE_KEY", opsgenie_story.KEY)


# -- Opsgenie ------------------------------------------------------------------------------

CHECKOUT_OG, PAYMENTS_OG = (
    "695bce3d-4a1b-47c9-9a7e-7b1f0f0c8f55",
    "1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
)


def two_services(tmp_path: Path, server: ReplayServer) -> PoiseConfig:
    return parse_config(
        {
            "teams": [{"name": "payments"}],
            "services": [
                {"name": "checkout", "team": "payments", "opsgenie": {"service_id": CHECKOUT_OG}},
                {
                    "name": "payments-api",
                    "team": "payments",
                    "opsgenie": {"service_id": PAYMENTS_OG},
                },
            ],
            "sources": {
                "opsgenie": {"base_url": server.base_url, "token_env": "TEST_OPSGENIE_KEY"}
            },
        },
        base_dir=tmp_path,
    )


def test_an_opsgenie_incident_impacting_two_services_belongs_to_one_and_stays_put(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path
) -> None:
    fake = FakeOpsgenie(replay_server)
    both = fake.incident(
        "3f84e009-7548-4e7d-832a-fa82c1ceb6b1",
        12,
        service=PAYMENTS_OG,
        created=at("2026-05-04T11:00:05.003000"),
        resolved=at("2026-05-04T11:41:10.490000"),
    )
    both["impactedServices"] = [PAYMENTS_OG, CHECKOUT_OG]  # payments-api first
    fake.incident(
        "8d1c0a4e-1b2f-4c3d-9e8f-0a1b2c3d4e5f",
        13,
        service=CHECKOUT_OG,
        created=at("2026-05-05T09:00:00"),
        resolved=at("2026-05-05T09:30:00"),
    )
    config = two_services(tmp_path, replay_server)

    summary, _ = opsgenie_story.sync(warehouse, config)
    result = summary.result("opsgenie")
    assert not summary.failed, result.errors
    assert (result.new, result.updated) == (2, 0)
    stored = opsgenie_story.rows(warehouse, schema.incidents)
    assert {key: row["service"] for key, row in stored.items()} == {
        "opsgenie:3f84e009-7548-4e7d-832a-fa82c1ceb6b1": "payments-api",
        "opsgenie:8d1c0a4e-1b2f-4c3d-9e8f-0a1b2c3d4e5f": "checkout",
    }

    summary, _ = opsgenie_story.sync(warehouse, config)
    again = summary.result("opsgenie")
    assert (again.new, again.updated) == (0, 0)  # a second sync changes nothing
    assert opsgenie_story.rows(warehouse, schema.incidents) == stored


def test_an_opsgenie_incident_whose_first_impacted_service_is_unmapped_goes_to_a_mapped_one(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path
) -> None:
    fake = FakeOpsgenie(replay_server)
    record = fake.incident(
        "aaaaaaaa-0000-4000-8000-000000000001",
        21,
        service=CHECKOUT_OG,
        created=at("2026-05-04T11:00:00"),
        resolved=at("2026-05-04T12:00:00"),
    )
    record["impactedServices"] = ["not-in-poise-yaml", CHECKOUT_OG]
    summary, _ = opsgenie_story.sync(sqlite_warehouse, two_services(tmp_path, replay_server))
    assert not summary.failed
    stored = opsgenie_story.rows(sqlite_warehouse, schema.incidents)
    assert [row["service"] for row in stored.values()] == ["checkout"]


# -- PagerDuty -----------------------------------------------------------------------------


def test_a_pagerduty_acknowledgement_that_timed_out_keeps_the_first_acknowledgement_time(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path
) -> None:
    """Triggered 10:00, acknowledged 10:05, the acknowledgement timed out at 10:35 and was
    renewed at 10:35: the first sync sees only the renewed one. Time to acknowledge is 5 min."""
    fake = FakePagerDuty(replay_server)
    created, first_ack = at("2026-03-03T10:00:00"), at("2026-03-03T10:05:00")
    renewed = at("2026-03-03T10:35:00")  # the fake's log holds a second ack 30 min after
    record = fake.incident(
        "Q7RENEWEDACK00",
        701,
        service=pagerduty_story.CHECKOUT,
        created=created,
        status="acknowledged",
        acknowledged=first_ack,
    )
    record["acknowledgements"][0]["at"] = renewed.strftime("%Y-%m-%dT%H:%M:%SZ")
    config = pagerduty_story.make_config(tmp_path, replay_server)
    summary, _ = pagerduty_story.sync(warehouse, config)
    assert not summary.failed, summary.result("pagerduty").errors

    fake.incident(  # resolved since: its acknowledgements are empty now
        "Q7RENEWEDACK00",
        701,
        service=pagerduty_story.CHECKOUT,
        created=created,
        acknowledged=first_ack,
        resolved=at("2026-03-03T11:00:00"),
    )
    served = len(replay_server.requests)
    summary, _ = pagerduty_story.sync(warehouse, config)
    assert not summary.failed, summary.result("pagerduty").errors
    stored = pagerduty_story.table(warehouse, schema.incidents)["pagerduty:Q7RENEWEDACK00"]
    assert (stored["status"], stored["acknowledged_at"]) == ("resolved", first_ack)
    logs = [r.path for r in replay_server.requests[served:] if r.path.endswith("/log_entries")]
    assert logs == ["/incidents/Q7RENEWEDACK00/log_entries"]

    served = len(replay_server.requests)
    summary, _ = pagerduty_story.sync(warehouse, config)  # read once, not at every sync
    assert (summary.result("pagerduty").new, summary.result("pagerduty").updated) == (0, 0)
    assert not [r for r in replay_server.requests[served:] if r.path.endswith("/log_entries")]

"""Opsgenie incidents changed after they were stored resolved: reopened, or edited.

Opsgenie's incident search lists by creation time only (no `updatedAt`), so every sync
lists again the incidents created within `RELIST` (14 days) of the newest one stored
(`Stream.relist`, collectors/streams.py). The account here is a long history of incidents
three hours apart: 113 of them within the span of the newest (two pages of 100), 320 in
all (four pages), served by the loopback Opsgenie of tests/incident_fakes.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import test_opsgenie_collector as og
from collector_checks import rows
from collector_checks import sync as run
from incident_fakes import FakeOpsgenie, quiet
from replay import ReplayServer, Reply
from sqlalchemy import Engine

from collectors.base import Stream, relist_floor
from collectors.opsgenie import ALERTS, INCIDENTS, RELIST, OpsgenieSource
from collectors.runner import SyncSummary
from poise.config import PoiseConfig
from poise.timeutil import to_sqlite_text
from poise.warehouse import open_warehouse
from poise.warehouse.sync_state import read_state

NEWEST = datetime(2026, 6, 20, 9, 0, tzinfo=UTC)  # a Saturday; after hours play no part here
APART = timedelta(hours=3)
HISTORY = 320
IN_SPAN = 113  # NEWEST - 112 × 3 h is NEWEST - 14 days, on the bound: listed again
BOOM = Reply(500, {"message": "Internal Server Error", "took": 0.0, "requestId": "e"})


def incident_id(index: int) -> str:
    return f"{index:08d}-1b2f-4c3d-9e8f-0a1b2c3d4e5f"


def created(index: int) -> datetime:
    return NEWEST - index * APART


def history(server: ReplayServer) -> FakeOpsgenie:
    """The account: `HISTORY` resolved incidents of the service, the newest first."""
    fake = FakeOpsgenie(server)
    for index in range(HISTORY):
        fake.incident(
            incident_id(index),
            1000 + index,
            service=og.CHECKOUT,
            created=created(index),
            resolved=created(index) + timedelta(minutes=40),
        )
    return fake


def reopen(fake: FakeOpsgenie, index: int) -> None:
    """What Opsgenie's reopen action does: open again, its impact no longer ended."""
    record = fake.incidents[incident_id(index)]
    record["status"] = "open"
    record.pop("impactEndDate", None)
    record["updatedAt"] = FakeOpsgenie.stamp(NEWEST + timedelta(days=1), 2)


def edit(fake: FakeOpsgenie, index: int, **fields: Any) -> None:
    """An edit after resolution (the postmortem's): the fields given, and `updatedAt`."""
    record = fake.incidents[incident_id(index)]
    record.update(fields, updatedAt=FakeOpsgenie.stamp(NEWEST + timedelta(days=2), 2))


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TEST_OPSGENIE_KEY", og.KEY)
    return og.KEY


def configured(tmp_path: Path, server: ReplayServer, **settings: Any) -> PoiseConfig:
    return og.make_config(tmp_path, server, alert_query=None, **settings)


def sync(engine: Engine, config: PoiseConfig, **kwargs: Any) -> SyncSummary:
    source, _sleeps = quiet(OpsgenieSource)
    return run(engine, config, source, **kwargs)


def ok(summary: SyncSummary) -> tuple[int, int, int]:
    """The sync did not fail: its new, updated and unchanged counts."""
    assert not summary.failed, [result.errors for result in summary.results]
    result = summary.result("opsgenie")
    return result.new, result.updated, result.unchanged


def incident(engine: Engine, index: int) -> dict[str, Any]:
    return og.rows(engine, og.schema.incidents)[f"opsgenie:{incident_id(index)}"]


def listed(server: ReplayServer, since: int = 0) -> list[int]:
    """The offsets of the incident listing's pages asked for (from request `since` on)."""
    return [
        int(request.query.get("offset", 0))
        for request in server.requests[since:]
        if request.path == "/v1/incidents"
    ]


def cursor(engine: Engine) -> Any:
    with engine.connect() as connection:
        return read_state(connection, "opsgenie", "incidents", "checkout").bookmark["cursor"]


@pytest.fixture
def synced(warehouse: Engine, replay_server: ReplayServer, tmp_path: Path) -> FakeOpsgenie:
    """The account, read through by a first sync."""
    fake = history(replay_server)
    assert ok(sync(warehouse, configured(tmp_path, replay_server))) == (HISTORY, 0, 0)
    assert listed(replay_server) == [0, 100, 200, 300]
    assert cursor(warehouse) == to_sqlite_text(NEWEST)
    return fake


# -- the tests --------------------------------------------------------------------------------


def test_a_reopened_incident_is_open_again_and_then_followed_until_it_resolves(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, synced: FakeOpsgenie
) -> None:
    config = configured(tmp_path, replay_server)
    assert (incident(warehouse, 30)["status"], incident(warehouse, 30)["resolved_at"]) == (
        "resolved",
        created(30) + timedelta(minutes=40),
    )
    reopen(synced, 30)  # created 3¾ days before the newest
    assert ok(sync(warehouse, config))[:2] == (0, 1)
    reopened = incident(warehouse, 30)
    assert (reopened["status"], reopened["resolved_at"]) == ("open", None)
    assert reopened["detected_at"] == created(30)

    served = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 0)  # still open: fetched again, unchanged
    detail = f"/v1/incidents/{incident_id(30)}"
    assert [r.path for r in replay_server.requests[served:]].count(detail) == 1

    resolved = NEWEST + timedelta(days=3)
    synced.incident(
        incident_id(30), 1030, service=og.CHECKOUT, created=created(30), resolved=resolved
    )
    assert ok(sync(warehouse, config))[:2] == (0, 1)  # by the refresh; the re-list agrees
    assert (incident(warehouse, 30)["status"], incident(warehouse, 30)["resolved_at"]) == (
        "resolved",
        resolved,
    )
    served = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 0)
    assert detail not in {r.path for r in replay_server.requests[served:]}  # resolved: no more


def test_an_edit_after_resolution_is_picked_up_within_the_span_only(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, synced: FakeOpsgenie
) -> None:
    corrected = created(105) + timedelta(hours=2)
    edit(synced, 3, priority="P3", message="Checkout slow, not down")  # the postmortem's
    edit(synced, 105, impactEndDate=FakeOpsgenie.stamp(corrected, 2))  # on the second page
    edit(synced, 150, priority="P5")  # 18¾ days before the newest: never listed again
    assert ok(sync(warehouse, configured(tmp_path, replay_server)))[:2] == (0, 2)

    assert (incident(warehouse, 3)["severity"], incident(warehouse, 3)["title"]) == (
        "P3",
        "Checkout slow, not down",
    )
    assert incident(warehouse, 105)["resolved_at"] == corrected
    assert incident(warehouse, 150)["severity"] == "P1"  # the documented limit
    assert cursor(warehouse) == to_sqlite_text(NEWEST)  # the re-list moved it no way


def test_the_listing_stops_at_the_page_where_incidents_leave_the_span(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, synced: FakeOpsgenie
) -> None:
    served = len(replay_server.requests)
    assert ok(sync(warehouse, configured(tmp_path, replay_server))) == (0, 0, IN_SPAN)
    assert listed(replay_server, served) == [0, 100]  # 0–99 in it, then 100–112 and out
    assert {r.path for r in replay_server.requests[served:]} == {"/v1/incidents"}


def test_new_incidents_move_the_span_forward(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, synced: FakeOpsgenie
) -> None:
    config = configured(tmp_path, replay_server)
    later = NEWEST + 20 * timedelta(days=1)
    synced.incident(
        "ffffffff-1b2f-4c3d-9e8f-0a1b2c3d4e5f", 9999, service=og.CHECKOUT, created=later
    )
    served = len(replay_server.requests)
    assert ok(sync(warehouse, config)) == (1, 0, IN_SPAN)  # the span of the old newest
    assert listed(replay_server, served) == [0, 100]
    assert cursor(warehouse) == to_sqlite_text(later)

    reopen(synced, 0)  # the old newest, now 20 days before the newest stored
    served = len(replay_server.requests)
    assert ok(sync(warehouse, config)) == (0, 0, 1)
    assert listed(replay_server, served) == [0]
    assert incident(warehouse, 0)["status"] == "resolved"


def test_since_bounds_the_span_as_it_bounds_a_first_sync(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path
) -> None:
    history(replay_server)
    config = configured(tmp_path, replay_server, since=(NEWEST - timedelta(days=5)).isoformat())
    assert ok(sync(warehouse, config)) == (41, 0, 0)  # 0–40: five days, three hours apart
    assert ok(sync(warehouse, config)) == (0, 0, 41)  # none older added by the re-list
    assert listed(replay_server) == [0, 0]


@pytest.mark.parametrize("every", [50, 500], ids=["after-a-checkpoint", "before-one"])
def test_a_sync_failing_half_way_through_the_relist_ends_as_an_uninterrupted_one(
    warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    synced: FakeOpsgenie,
    every: int,
) -> None:
    """The second page fails for good (HTTP 500, retried): the first page's rows stay,
    the cursor does not move, and the next sync resumes at the checkpoint's next page, or
    lists again from the start when none was reached; either way it ends as one sync
    that did not fail."""
    config = configured(tmp_path, replay_server)
    straight = open_warehouse(f"sqlite:///{tmp_path / 'straight.db'}")
    try:
        ok(sync(straight, config))  # before the changes, as `warehouse` was
        reopen(synced, 20)  # on the first page
        edit(synced, 110, priority="P2")  # on the second
        synced.incident(
            "ffffffff-1b2f-4c3d-9e8f-0a1b2c3d4e5f",
            9999,
            service=og.CHECKOUT,
            created=NEWEST + timedelta(hours=1),
        )
        ok(sync(straight, config))
        expected = rows(straight, "incidents"), cursor(straight)
    finally:
        straight.dispose()

    second = replay_server.add("/v1/incidents", BOOM, query={"offset": "100"})
    served = len(replay_server.requests)
    failed = sync(warehouse, config, checkpoint_every=every)
    (error,) = failed.result("opsgenie").errors
    assert "HTTP 500" in error and "offset=100" in error
    assert listed(replay_server, served) == [0, 100, 100, 100]  # retried, then given up
    assert incident(warehouse, 20)["status"] == "open"  # the first page is kept
    assert incident(warehouse, 110)["severity"] == "P1"
    with warehouse.connect() as connection:
        bookmark = read_state(connection, "opsgenie", "incidents", "checkout").bookmark
    assert bookmark["cursor"] == to_sqlite_text(NEWEST)  # not moved until the listing ends
    resumed = bookmark.get("pending")
    if every < 100:
        assert resumed["request"]["params"]["offset"] == 100
    else:
        assert resumed is None

    replay_server.routes.remove(second)
    served = len(replay_server.requests)
    ok(sync(warehouse, config))
    assert listed(replay_server, served) == ([100] if resumed else [0, 100])
    assert (rows(warehouse, "incidents"), cursor(warehouse)) == expected
    assert incident(warehouse, 110)["severity"] == "P2"


# -- the declaration ---------------------------------------------------------------------------


def test_only_the_incidents_are_listed_again() -> None:
    assert (INCIDENTS.relist, ALERTS.relist) == (RELIST, None)
    assert timedelta(days=14) == RELIST  # what collectors/opsgenie.py and the docs say


def test_the_floor_is_the_span_before_the_cursor_and_never_before_since() -> None:
    stored = to_sqlite_text(NEWEST)
    span = timedelta(days=14)
    assert relist_floor(stored, span) == to_sqlite_text(NEWEST - span)
    assert relist_floor(stored, span, NEWEST - timedelta(days=5)) == to_sqlite_text(
        NEWEST - timedelta(days=5)
    )
    # `since` after the cursor (moved on in poise.yaml): the records after the cursor stay
    assert relist_floor(stored, span, NEWEST + timedelta(days=5)) == stored
    assert relist_floor("0001-01-03T00:00:00.000000Z", span) is None  # no bound before year 1
    with pytest.raises(ValueError, match="timestamp cursor"):
        relist_floor(1234, span)


def test_a_relist_is_declared_only_where_it_means_something() -> None:
    def convert(record: dict[str, Any], scope: Any) -> dict[str, Any]:
        return {}

    def declared(**fields: Any) -> Stream:
        return Stream("s", "/s", convert, cursor_field="createdAt", **fields)

    declared(newest_first=True, relist=timedelta(days=1))
    for fields in (
        {"relist": timedelta(days=1)},  # oldest first: already lists everything after
        {"newest_first": True, "relist": timedelta(days=-1)},
        {"newest_first": True, "relist": timedelta(days=1), "conditional": True},
        {"newest_first": True, "relist": timedelta(days=1), "settled": lambda r: True},
    ):
        with pytest.raises(ValueError, match="relist"):
            declared(**fields)


def test_an_open_incident_moved_to_another_mapped_service_moves_when_it_is_fetched_again(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path
) -> None:
    """Open, older than the span and moved (its `impactedServices`) to another service of
    poise.yaml: only the old service's refresh fetches it, which wrote nothing for it (not
    that service's any more), so it stayed open under the old one."""
    search = "0c1d2e3f-4a5b-46c7-98d9-0e1f2a3b4c5d"
    fake = FakeOpsgenie(replay_server)
    fake.incident(incident_id(0), 1000, service=og.CHECKOUT, created=NEWEST, resolved=NEWEST)
    fake.incident(incident_id(1), 1001, service=search, created=NEWEST, resolved=NEWEST)
    moved = incident_id(2)
    fake.incident(
        moved, 1002, service=og.CHECKOUT, created=NEWEST - timedelta(days=20), status="open"
    )
    config = og.parse_config(
        {
            "teams": [{"name": "payments"}, {"name": "discovery"}],
            "services": [
                {"name": "checkout", "team": "payments", "opsgenie": {"service_id": og.CHECKOUT}},
                {"name": "search", "team": "discovery", "opsgenie": {"service_id": search}},
            ],
            "sources": {
                "opsgenie": {"base_url": replay_server.base_url, "token_env": "TEST_OPSGENIE_KEY"}
            },
        },
        base_dir=tmp_path,
    )
    assert ok(sync(warehouse, config))[:2] == (3, 0)
    assert og.rows(warehouse, og.schema.incidents)[f"opsgenie:{moved}"]["service"] == "checkout"

    fake.incidents[moved]["impactedServices"] = [search]
    assert ok(sync(warehouse, config))[:2] == (0, 1)
    stored = og.rows(warehouse, og.schema.incidents)[f"opsgenie:{moved}"]
    assert (stored["service"], stored["status"]) == ("search", "open")
    start = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 0)  # search's refresh follows it now
    assert f"/v1/incidents/{moved}" in [r.path for r in replay_server.requests[start:]]

    # moved to a service poise.yaml does not map: kept as stored, and said
    fake.incidents[moved]["impactedServices"] = ["9f8e7d6c-unmapped"]
    summary = sync(warehouse, config)
    assert ok(summary)[:2] == (0, 0)
    assert og.rows(warehouse, og.schema.incidents)[f"opsgenie:{moved}"] == stored
    assert summary.result("opsgenie").warnings == [
        f"opsgenie: incident {moved} impacts no service poise.yaml maps any more, not "
        f"{search} (search); kept as stored"
    ]

"""PagerDuty incidents changed after they were stored resolved: reopened, edited, reassigned.

PagerDuty lists incidents by creation time only, and lets people reopen a resolved
incident, edit its title and priority, and reassign it to another service. So every sync
lists again the incidents created within `RELIST` (14 days) of the end of the last one
(collectors/pagerduty.py). The clock of the collector is pinned here (the spans follow
it); the account is the loopback PagerDuty of tests/incident_fakes.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import test_pagerduty_collector as pd
from incident_fakes import FakePagerDuty, z
from replay import ReplayServer, Reply
from sqlalchemy import Engine

from collectors import pagerduty
from collectors.runner import SyncSummary
from poise.config import PoiseConfig
from poise.timeutil import to_sqlite_text
from poise.warehouse import open_warehouse, schema
from poise.warehouse.sync_state import read_state

CHECKOUT, SEARCH, UNMAPPED = pd.CHECKOUT, pd.SEARCH, "PUNMAPD"
FIRST = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)  # the first sync's clock
NEXT = FIRST + timedelta(days=1)  # the second one's
RELIST = timedelta(days=14)  # what collectors/pagerduty.py and the docs say

# id: (number, service, days before FIRST it was created); all resolved 40 minutes later,
# acknowledged after 4
HISTORY: dict[str, tuple[int, str, float]] = {
    "QREOPEN0000000": (201, CHECKOUT, 3),
    "QEDITED0000000": (202, CHECKOUT, 10),
    "QMOVED00000000": (203, CHECKOUT, 5),
    "QLEFT000000000": (204, CHECKOUT, 6),
    "QOLD0000000000": (205, CHECKOUT, 20),  # before the span of the second sync
    "QSEARCH0000000": (206, SEARCH, 2),
}


def created(incident: str) -> datetime:
    return FIRST - timedelta(days=HISTORY[incident][2])


def acknowledged(incident: str) -> datetime:
    return created(incident) + timedelta(minutes=4)


def resolved(incident: str) -> datetime:
    return created(incident) + timedelta(minutes=40)


def history(server: ReplayServer) -> FakePagerDuty:
    fake = FakePagerDuty(server)
    for incident, (number, service, _days) in HISTORY.items():
        fake.incident(
            incident,
            number,
            service=service,
            created=created(incident),
            acknowledged=acknowledged(incident),
            resolved=resolved(incident),
            title=f"Incident {number}",
        )
    return fake


def reopen(fake: FakePagerDuty, incident: str) -> None:
    """What PagerDuty's reopen does: triggered again, no longer resolved."""
    number, service, _days = HISTORY[incident]
    fake.incident(
        incident,
        number,
        service=service,
        created=created(incident),
        status="triggered",
        title=f"Incident {number}",
    )


def edit(fake: FakePagerDuty, incident: str, **fields: Any) -> None:
    """An edit after resolution (the postmortem's): the fields given, and `updated_at`."""
    fake.incidents[incident].update(fields, updated_at=z(NEXT - timedelta(hours=2)))


def reassign(fake: FakePagerDuty, incident: str, service: str) -> None:
    edit(fake, incident, service={**fake.incidents[incident]["service"], "id": service})


@dataclass
class Clock:
    now: datetime = FIRST


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The collector's clock: each sync's windows end at `clock.now`."""
    pinned = Clock()
    monkeypatch.setattr(pagerduty, "utcnow", lambda: pinned.now)
    return pinned


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TEST_PAGERDUTY_TOKEN", pd.TOKEN)
    return pd.TOKEN


def sync(engine: Engine, config: PoiseConfig, **kwargs: Any) -> SyncSummary:
    summary, _sleeps = pd.sync(engine, config, **kwargs)
    return summary


def ok(summary: SyncSummary) -> tuple[int, int, int]:
    """The sync did not fail and warned of nothing: its new, updated and unchanged counts."""
    result = summary.result("pagerduty")
    assert not summary.failed, result.errors
    assert result.warnings == []
    return result.new, result.updated, result.unchanged


def incidents(engine: Engine) -> dict[str, dict[str, Any]]:
    return pd.table(engine, schema.incidents)


def incident(engine: Engine, source_id: str) -> dict[str, Any]:
    return incidents(engine)[f"pagerduty:{source_id}"]


def page(engine: Engine, source_id: str) -> dict[str, Any]:
    return pd.table(engine, schema.oncall_pages)[f"pagerduty:{source_id}:trigger"]


def served(server: ReplayServer, since: int) -> list[str]:
    return [request.path for request in server.requests[since:]]


def logs(server: ReplayServer, since: int) -> list[str]:
    return sorted(path for path in served(server, since) if path.endswith("/log_entries"))


def listings(server: ReplayServer, since: int, service: str = CHECKOUT) -> list[dict[str, str]]:
    return [
        request.query
        for request in server.requests[since:]
        if request.path == "/incidents" and request.query["service_ids[]"] == service
    ]


def cursor(engine: Engine, service: str = "checkout") -> Any:
    with engine.connect() as connection:
        return read_state(connection, "pagerduty", "incidents", service).bookmark["cursor"]


@pytest.fixture
def config(tmp_path: Path, replay_server: ReplayServer) -> PoiseConfig:
    return pd.make_config(tmp_path, replay_server)


@pytest.fixture
def synced(
    warehouse: Engine, replay_server: ReplayServer, config: PoiseConfig, clock: Clock
) -> Iterator[FakePagerDuty]:
    """The account, read by a first sync at `FIRST`; the clock then moves to `NEXT`."""
    fake = history(replay_server)
    assert ok(sync(warehouse, config)) == (2 * len(HISTORY), 0, 0)  # incidents and pages
    assert len(logs(replay_server, 0)) == len(HISTORY)  # each first seen resolved
    assert cursor(warehouse) == to_sqlite_text(FIRST)
    clock.now = NEXT
    yield fake


# -- the tests --------------------------------------------------------------------------------


def test_a_reopened_incident_is_open_again_and_then_followed_until_it_resolves(
    warehouse: Engine,
    replay_server: ReplayServer,
    config: PoiseConfig,
    clock: Clock,
    synced: FakePagerDuty,
) -> None:
    reopen(synced, "QREOPEN0000000")  # created 3 days before the first sync
    start = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 1)
    reopened = incident(warehouse, "QREOPEN0000000")
    assert (reopened["status"], reopened["resolved_at"]) == ("open", None)
    assert reopened["acknowledged_at"] == acknowledged("QREOPEN0000000")  # still the first
    assert logs(replay_server, start) == []  # open: nothing to look up

    # Later, it leaves the re-listed span: the open-incident refresh fetches it by id.
    clock.now = FIRST + timedelta(days=20)
    assert ok(sync(warehouse, config))[:2] == (0, 0)  # still within the span of NEXT
    clock.now = FIRST + timedelta(days=21)
    start = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 0)
    assert "/incidents/QREOPEN0000000" in served(replay_server, start)
    assert all(
        datetime.fromisoformat(query["since"]) > created("QREOPEN0000000")
        for query in listings(replay_server, start)
    )

    # It resolves again: seen by the refresh, and its log entries are read once more.
    again = FIRST + timedelta(days=21, hours=3)
    synced.incident(
        "QREOPEN0000000",
        201,
        service=CHECKOUT,
        created=created("QREOPEN0000000"),
        acknowledged=acknowledged("QREOPEN0000000"),
        resolved=again,
        title="Incident 201",
    )
    clock.now = FIRST + timedelta(days=22)
    start = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 1)
    closed = incident(warehouse, "QREOPEN0000000")
    assert (closed["status"], closed["resolved_at"]) == ("resolved", again)
    assert closed["acknowledged_at"] == acknowledged("QREOPEN0000000")
    assert logs(replay_server, start) == ["/incidents/QREOPEN0000000/log_entries"]

    start = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 0)
    assert "/incidents/QREOPEN0000000" not in served(replay_server, start)  # resolved: no more


def test_a_reopened_incident_resolved_again_later_reads_its_log_entries_again(
    warehouse: Engine,
    replay_server: ReplayServer,
    config: PoiseConfig,
    clock: Clock,
    synced: FakePagerDuty,
) -> None:
    """Within the span, the re-list (not the refresh) sees it open, then resolved."""
    reopen(synced, "QREOPEN0000000")
    assert ok(sync(warehouse, config))[:2] == (0, 1)
    later = NEXT + timedelta(hours=5)
    acknowledged_again = NEXT + timedelta(hours=4)
    synced.incident(
        "QREOPEN0000000",
        201,
        service=CHECKOUT,
        created=created("QREOPEN0000000"),
        acknowledged=acknowledged_again,
        resolved=later,
        title="Incident 201",
    )
    clock.now = NEXT + timedelta(days=1)
    start = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 1)
    assert "/incidents/QREOPEN0000000" not in served(replay_server, start)  # listed instead
    assert logs(replay_server, start) == ["/incidents/QREOPEN0000000/log_entries"]
    closed = incident(warehouse, "QREOPEN0000000")
    assert (closed["status"], closed["resolved_at"]) == ("resolved", later)
    assert closed["acknowledged_at"] == acknowledged("QREOPEN0000000")  # the earliest known


def test_a_priority_and_a_title_edited_after_resolution_are_picked_up(
    warehouse: Engine,
    replay_server: ReplayServer,
    config: PoiseConfig,
    synced: FakePagerDuty,
) -> None:
    edit(
        synced,
        "QEDITED0000000",
        priority={"id": "PRIP3", "type": "priority_reference", "summary": "P3"},
    )
    edit(synced, "QSEARCH0000000", title="Search index lagging, not down")
    start = len(replay_server.requests)
    new, updated, _unchanged = ok(sync(warehouse, config))
    # the priority: the incident; the title: the incident and its page
    assert (new, updated) == (0, 3)
    edited = incident(warehouse, "QEDITED0000000")
    assert (edited["severity"], edited["status"]) == ("P3", "resolved")
    assert edited["resolved_at"] == resolved("QEDITED0000000")
    assert edited["acknowledged_at"] == acknowledged("QEDITED0000000")
    assert incident(warehouse, "QSEARCH0000000")["title"] == "Search index lagging, not down"
    assert page(warehouse, "QSEARCH0000000")["title"] == "Search index lagging, not down"
    assert logs(replay_server, start) == []  # stored resolved already: not looked up again
    assert cursor(warehouse) == to_sqlite_text(NEXT)


def test_an_incident_reassigned_to_another_mapped_service_moves_there(
    warehouse: Engine,
    replay_server: ReplayServer,
    config: PoiseConfig,
    synced: FakePagerDuty,
) -> None:
    assert incident(warehouse, "QMOVED00000000")["service"] == "checkout"
    reassign(synced, "QMOVED00000000", SEARCH)
    start = len(replay_server.requests)
    new, updated, _unchanged = ok(sync(warehouse, config))
    assert (new, updated) == (0, 2)  # the incident and its page
    moved = incident(warehouse, "QMOVED00000000")
    assert (moved["service"], moved["status"]) == ("search-api", "resolved")
    assert moved["acknowledged_at"] == acknowledged("QMOVED00000000")
    moved_page = page(warehouse, "QMOVED00000000")
    assert (moved_page["service"], moved_page["team"]) == ("search-api", "discovery")
    assert logs(replay_server, start) == []

    assert ok(sync(warehouse, config))[:2] == (0, 0)  # and it stays there


def test_an_open_incident_reassigned_before_the_span_moves_when_it_is_fetched_again(
    warehouse: Engine, replay_server: ReplayServer, config: PoiseConfig, clock: Clock
) -> None:
    """Reassigned while open and older than the span: only checkout's open-incident refresh
    fetches it (search-api's listing starts after it was created). It warned "belongs to
    service …; skipped" at every sync and stayed open under checkout."""
    fake = history(replay_server)
    reopen(fake, "QOLD0000000000")  # still open at the first sync, 20 days old
    sync(warehouse, config)
    assert incident(warehouse, "QOLD0000000000")["status"] == "open"
    reassign(fake, "QOLD0000000000", SEARCH)
    clock.now = NEXT
    start = len(replay_server.requests)
    summary = sync(warehouse, config)
    assert ok(summary)[:2] == (0, 2)  # the incident and its page, now search-api's
    assert "/incidents/QOLD0000000000" in served(replay_server, start)
    assert summary.result("pagerduty").warnings == []
    moved = incident(warehouse, "QOLD0000000000")
    assert (moved["service"], moved["status"]) == ("search-api", "open")
    start = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 0)  # search-api's refresh follows it now
    assert "/incidents/QOLD0000000000" in served(replay_server, start)


def test_an_incident_reassigned_to_a_service_poise_does_not_map_stays_as_stored(
    warehouse: Engine,
    replay_server: ReplayServer,
    config: PoiseConfig,
    synced: FakePagerDuty,
) -> None:
    before = incident(warehouse, "QLEFT000000000")
    reassign(synced, "QLEFT000000000", UNMAPPED)
    edit(synced, "QLEFT000000000", title="Now someone else's")
    assert ok(sync(warehouse, config))[:2] == (0, 0)  # no service of poise.yaml lists it
    assert incident(warehouse, "QLEFT000000000") == before


def test_an_unchanged_second_sync_counts_nothing_new_or_updated_and_reads_no_log_entries(
    warehouse: Engine,
    replay_server: ReplayServer,
    config: PoiseConfig,
    synced: FakePagerDuty,
) -> None:
    before = incidents(warehouse), pd.table(warehouse, schema.oncall_pages)
    start = len(replay_server.requests)
    # all but the incident created 20 days before are listed again: each incident and page
    assert ok(sync(warehouse, config)) == (0, 0, 2 * (len(HISTORY) - 1))
    assert sorted(served(replay_server, start)) == ["/incidents", "/incidents"]  # one a service
    strip = {"raw_id", "updated_at"}
    after = incidents(warehouse), pd.table(warehouse, schema.oncall_pages)
    for was, now in zip(before, after, strict=True):
        assert {k: {c: v for c, v in row.items() if c not in strip} for k, row in now.items()} == {
            k: {c: v for c, v in row.items() if c not in strip} for k, row in was.items()
        }


def test_an_incident_merged_away_after_resolution_is_listed_again_without_change(
    warehouse: Engine,
    replay_server: ReplayServer,
    config: PoiseConfig,
    clock: Clock,
) -> None:
    fake = history(replay_server)
    fake.incident(
        "QMERGED0000000",
        207,
        service=CHECKOUT,
        created=FIRST - timedelta(days=3, minutes=-1),
        status="triggered",
    )
    fake.merge("QMERGED0000000", into="QREOPEN0000000", at=FIRST - timedelta(days=3, minutes=-3))
    assert ok(sync(warehouse, config))[:2] == (2 * len(HISTORY) + 1, 0)  # its page only
    clock.now = NEXT
    assert ok(sync(warehouse, config))[:2] == (0, 0)
    assert "pagerduty:QMERGED0000000" not in incidents(warehouse)
    assert page(warehouse, "QMERGED0000000")["incident_id"] == "pagerduty:QREOPEN0000000"


def test_the_next_listing_starts_14_days_before_the_stored_cursor(
    warehouse: Engine,
    replay_server: ReplayServer,
    config: PoiseConfig,
    synced: FakePagerDuty,
) -> None:
    start = len(replay_server.requests)
    ok(sync(warehouse, config))
    for service, scope in ((CHECKOUT, "checkout"), (SEARCH, "search-api")):
        first = listings(replay_server, start, service)[0]
        assert (first["since"], first["until"]) == (z(FIRST - RELIST), z(NEXT))
        assert cursor(warehouse, scope) == to_sqlite_text(NEXT)
    assert pagerduty.RELIST == RELIST


def test_an_incident_created_before_the_span_is_not_listed_again(
    warehouse: Engine,
    replay_server: ReplayServer,
    config: PoiseConfig,
    synced: FakePagerDuty,
) -> None:
    """The documented limit: 20 days before the last sync's end, an edit is not seen."""
    before = incident(warehouse, "QOLD0000000000")
    reopen(synced, "QOLD0000000000")
    edit(synced, "QOLD0000000000", title="Edited too late")
    start = len(replay_server.requests)
    assert ok(sync(warehouse, config))[:2] == (0, 0)
    assert incident(warehouse, "QOLD0000000000") == before
    assert "/incidents/QOLD0000000000" not in served(replay_server, start)
    assert min(query["since"] for query in listings(replay_server, start)) > z(
        created("QOLD0000000000")
    )


def test_the_span_never_reaches_before_since(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, clock: Clock
) -> None:
    """`since` 5 days before the first sync: the incidents created before it are left out
    by the first sync, and the re-list of the next does not add them."""
    history(replay_server)
    since = FIRST - timedelta(days=5)
    config = pd.make_config(tmp_path, replay_server, since=since.isoformat())
    assert ok(sync(warehouse, config))[:2] == (6, 0)  # QREOPEN, QMOVED, QSEARCH and pages
    clock.now = NEXT
    start = len(replay_server.requests)
    assert ok(sync(warehouse, config)) == (0, 0, 6)
    for service in (CHECKOUT, SEARCH):
        assert listings(replay_server, start, service)[0]["since"] == z(since)
    assert set(incidents(warehouse)) == {
        "pagerduty:QREOPEN0000000",
        "pagerduty:QMOVED00000000",
        "pagerduty:QSEARCH0000000",
    }

    # `since` moved past the stored cursor: the incidents after the cursor are still read
    later = pd.make_config(tmp_path, replay_server, since=(NEXT + timedelta(hours=6)).isoformat())
    clock.now = NEXT + timedelta(days=1)
    start = len(replay_server.requests)
    ok(sync(warehouse, later))
    assert listings(replay_server, start)[0]["since"] == z(NEXT)


def test_a_killed_sync_of_a_halved_span_keeps_the_cursor_where_it_was(
    warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    config: PoiseConfig,
    clock: Clock,
    synced: FakePagerDuty,
) -> None:
    """A span over the 10,000 cap is halved; its first half ends before the stored
    cursor, which must not move back to it (the next sync would start further back)."""
    whole = {"service_ids[]": CHECKOUT, "since": z(FIRST - RELIST), "until": z(NEXT)}
    too_many = {"incidents": [], "limit": 100, "offset": 0, "more": True, "total": 10_001}
    cap = replay_server.add("/incidents", Reply(200, too_many), query=whole)
    edit(synced, "QEDITED0000000", title="Edited in the first half")

    def kill(stream: str, scope: str, bookmark: Any) -> None:
        raise pd.Killed

    with pytest.raises(pd.Killed):
        sync(warehouse, config, on_checkpoint=kill)
    assert incident(warehouse, "QEDITED0000000")["title"] == "Edited in the first half"
    assert cursor(warehouse) == to_sqlite_text(FIRST)  # not the half's end

    replay_server.routes.remove(cap)
    start = len(replay_server.requests)
    ok(sync(warehouse, config))
    assert listings(replay_server, start)[0]["since"] == z(FIRST - RELIST)
    assert cursor(warehouse) == to_sqlite_text(NEXT)

    straight = open_warehouse(f"sqlite:///{tmp_path / 'straight.db'}")
    try:
        clock.now = FIRST
        ok(sync(straight, config))  # the same account, read without the kill
        strip = {"raw_id", "updated_at"}
        for which in (schema.incidents, schema.oncall_pages):
            assert {
                k: {c: v for c, v in row.items() if c not in strip}
                for k, row in pd.table(warehouse, which).items()
            } == {
                k: {c: v for c, v in row.items() if c not in strip}
                for k, row in pd.table(straight, which).items()
            }
    finally:
        straight.dispose()

"""A service's incident source changed in poise.yaml: `pagerduty.service_id` or
`opsgenie.service_id` names another service of the account, or `opsgenie.alert_query`
another search.

Incident ids are global (`pagerduty:<id>`), so the rows read from the old service cannot
be told by their ids, as a repository's are (tests/test_location_change.py): the move
reads every stream of the service again, as on a first sync, and then removes the
service's rows of that source that the re-read did not write. The next plain sync ends
as a first sync with the new config would: the new service's history before the old
cursor is read, the old service's incidents and pages are gone (and its open ones are no
longer fetched again). An error at the new service removes nothing; a re-read killed
half-way removes nothing until a later sync has read the new service through.

The servers are the collector tests' accounts (tests/test_pagerduty_collector.py,
tests/test_opsgenie_collector.py) with a second service of older incidents.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import test_opsgenie_collector as og
import test_pagerduty_collector as pd
from collector_checks import Killed, kill_after_checkpoints, rows, sync
from incident_fakes import quiet
from replay import ReplayServer, Reply
from sqlalchemy import Engine, delete
from test_deploy_settings_change import ok, sync_killed_until_done

from collectors.base import Source
from collectors.opsgenie import OpsgenieSource
from collectors.pagerduty import PagerDutySource
from collectors.runner import SyncSummary
from poise.config import PoiseConfig
from poise.warehouse import open_warehouse, schema
from poise.warehouse.sync_state import read_state

TABLES = ("incidents", "oncall_pages")  # what an incident source writes
NEW_PD = "PNEWSVC"
NEW_OG = "0b5e7c1d-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
OTHER_ALERTS = "teams:payments AND tag:web"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Desk:
    """One incident source: its account, and one key of the service's block changed."""

    source: ClassVar[type[Source]]
    key: ClassVar[str]  # the key of the service's block that changes
    old: ClassVar[str]
    new: ClassVar[str]
    error_path: ClassVar[str]  # the first request at the new location

    @property
    def name(self) -> str:
        return self.source.name

    fake: Any  # the account, once served

    def serve(self, server: ReplayServer) -> Any:
        raise NotImplementedError

    def config(self, tmp_path: Path, server: ReplayServer, value: str) -> PoiseConfig:
        raise NotImplementedError

    def sync(
        self, engine: Engine, tmp_path: Path, server: ReplayServer, value: str, **kw: Any
    ) -> SyncSummary:
        source, _sleeps = quiet(self.source)
        return sync(engine, self.config(tmp_path, server, value), source, **kw)

    def note(self) -> str:
        return (
            f"{self.name}: checkout: {self.key} changed ({self.old} → {self.new}) since the "
            "last sync; reading every stream again, as on a first sync, and removing the rows "
            f"read from {self.old} once that is done"
        )


class PagerDuty(Desk):
    source, key, old, new = PagerDutySource, "service_id", pd.CHECKOUT, NEW_PD
    error_path = "/incidents"

    def serve(self, server: ReplayServer) -> Any:
        fake = pd.account(server)
        # the new service: older than anything of the old one, and one still open
        for incident_id, number, status, day in (
            ("QN1NNNNNNNNNNN", 201, "resolved", "2026-01-20"),
            ("QN2NNNNNNNNNNN", 202, "acknowledged", "2026-02-14"),
        ):
            created = at(f"{day}T23:00:00")
            fake.incident(
                incident_id,
                number,
                service=NEW_PD,
                created=created,
                status=status,
                acknowledged=created + timedelta(minutes=5),
                resolved=created + timedelta(hours=1) if status == "resolved" else None,
            )
        return fake

    def config(self, tmp_path: Path, server: ReplayServer, value: str) -> PoiseConfig:
        return pd.make_config(tmp_path, server, checkout=value)


class Opsgenie(Desk):
    source, key, old, new = OpsgenieSource, "service_id", og.CHECKOUT, NEW_OG
    error_path = "/v1/incidents"

    def serve(self, server: ReplayServer) -> Any:
        fake = og.account(server)
        for tiny, status, day in ((21, "resolved", "2026-03-02"), (22, "open", "2026-04-11")):
            created = at(f"{day}T08:00:00")
            resolved = created + timedelta(minutes=30) if status == "resolved" else None
            incident_id = f"11111111-aaaa-4bbb-8ccc-0000000000{tiny}"
            fake.incident(
                incident_id, tiny, service=NEW_OG, created=created, status=status, resolved=resolved
            )
        fake.alert("a-9", 109, query=OTHER_ALERTS, created=at("2026-03-02T07:59:00"))
        return fake

    def config(self, tmp_path: Path, server: ReplayServer, value: str) -> PoiseConfig:
        return og.make_config(tmp_path, server, service_id=value)


class OpsgenieAlerts(Opsgenie):
    """Another alert query: the pages are another search's (and the incidents read again)."""

    key, old, new = "alert_query", og.ALERTS, OTHER_ALERTS
    error_path = "/v2/alerts"

    def config(self, tmp_path: Path, server: ReplayServer, value: str) -> PoiseConfig:
        return og.make_config(tmp_path, server, alert_query=value)


def incident_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    return {table: rows(engine, table) for table in TABLES}


def checkout_ids(engine: Engine) -> set[str]:
    """The ids of the service's incidents and pages."""
    found = incident_rows(engine)
    return {row["id"] for table in TABLES for row in found[table] if row["service"] == "checkout"}


def fresh(
    desk: Desk, tmp_path: Path, server: ReplayServer, value: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The incident rows of a first sync with the new config (or the key at `value`), in a
    warehouse of its own."""
    engine = open_warehouse(f"sqlite:///{tmp_path / f'fresh-{value is None}.db'}")
    try:
        ok(desk.sync(engine, tmp_path, server, desk.new if value is None else value))
        return incident_rows(engine)
    finally:
        engine.dispose()


def location_bookmark(engine: Engine, desk: Desk) -> Any:
    with engine.connect() as connection:
        return read_state(connection, desk.name, "location", "checkout").bookmark


@pytest.fixture(
    params=[PagerDuty, Opsgenie, OpsgenieAlerts],
    ids=["pagerduty", "opsgenie", "opsgenie-alerts"],
)
def desk(
    request: pytest.FixtureRequest,
    warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Desk:
    """An incident source, its service synced at its old location: twice."""
    monkeypatch.setenv("TEST_PAGERDUTY_TOKEN", pd.TOKEN)
    monkeypatch.setenv("TEST_OPSGENIE_KEY", og.KEY)
    desk: Desk = request.param()
    desk.fake = desk.serve(replay_server)
    for _ in range(2):
        ok(desk.sync(warehouse, tmp_path, replay_server, desk.old))
    return desk


# -- the tests --------------------------------------------------------------------------------


def test_another_service_is_read_from_its_start_and_the_old_rows_go(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, desk: Desk
) -> None:
    old = checkout_ids(warehouse)
    expected = fresh(desk, tmp_path, replay_server)
    assert expected != incident_rows(warehouse)

    served = len(replay_server.requests)
    summary = desk.sync(warehouse, tmp_path, replay_server, desk.new)
    ok(summary)
    assert incident_rows(warehouse) == expected  # not the old rows beside the new ones
    assert summary.results[0].notes == [desk.note()]
    assert summary.results[0].warnings == []
    # the incidents stored while open are not fetched again one by one (a first sync has
    # none): the old service's would be skipped with a warning, or kept
    old_ids = {row_id.rsplit(":", 1)[-1] for row_id in old}
    asked = [request.path.rsplit("/", 1)[-1] for request in replay_server.requests[served:]]
    assert not old_ids & set(asked)

    # done: the next sync is incremental, says nothing and adds nothing
    again = desk.sync(warehouse, tmp_path, replay_server, desk.new)
    ok(again)
    result = again.result(desk.name)
    assert (result.new, result.updated, result.notes) == (0, 0, [])
    assert incident_rows(warehouse) == expected
    assert location_bookmark(warehouse, desk)["location"][desk.key] == desk.new


def test_an_error_at_the_new_service_removes_nothing(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, desk: Desk
) -> None:
    before = incident_rows(warehouse)
    desk.fake.fault(desk.error_path, Reply(404, {"message": "No such service"}))

    failed = desk.sync(warehouse, tmp_path, replay_server, desk.new).result(desk.name)
    assert len(failed.errors) == 1 and "HTTP 404" in failed.errors[0]
    assert incident_rows(warehouse) == before

    ok(desk.sync(warehouse, tmp_path, replay_server, desk.new))  # the service is there now
    assert incident_rows(warehouse) == fresh(desk, tmp_path, replay_server)


def test_a_reread_killed_half_way_removes_nothing_early_and_ends_as_a_first_sync(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, desk: Desk
) -> None:
    old = checkout_ids(warehouse)
    expected = fresh(desk, tmp_path, replay_server)
    read = {
        row["id"] for table in TABLES for row in expected[table] if row["service"] == "checkout"
    }
    gone = old - read
    assert gone and read - old

    def keeps() -> None:  # every old row until the new service is read through, then none
        now = checkout_ids(warehouse)
        assert gone <= now if gone & now else read <= now

    kills = sync_killed_until_done(
        lambda **kw: desk.sync(warehouse, tmp_path, replay_server, desk.new, **kw), keeps
    )
    assert kills >= 2
    assert incident_rows(warehouse) == expected


def test_moving_back_before_the_reread_ended_removes_the_rows_of_the_service_left(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, desk: Desk
) -> None:
    """The new service was a mistake, put right after a sync that stored part of it."""
    with pytest.raises(Killed):
        desk.sync(
            warehouse,
            tmp_path,
            replay_server,
            desk.new,
            checkpoint_every=1,
            on_checkpoint=kill_after_checkpoints(1),
        )
    assert location_bookmark(warehouse, desk)["moving_from"]

    summary = desk.sync(warehouse, tmp_path, replay_server, desk.old)
    ok(summary)
    assert incident_rows(warehouse) == fresh(desk, tmp_path, replay_server, desk.old)
    assert f"changed ({desk.new} → {desk.old})" in summary.results[0].notes[0]
    assert "moving_from" not in location_bookmark(warehouse, desk)


def test_a_new_service_that_gives_nothing_says_so(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, desk: Desk
) -> None:
    """A well-formed id of no service of the account (a typo) answers empty lists, not a
    404: the rows it would have replaced go, as a first sync would hold none of them, and a
    warning says so (Opsgenie's other stream, unchanged, is read again and stays)."""
    empty = {"service_id": "PNOSUCH" if desk.name == "pagerduty" else "0" * 36}.get(
        desk.key, "teams:nobody"
    )
    before = incident_rows(warehouse)
    expected = fresh(desk, tmp_path, replay_server, empty)
    summary = desk.sync(warehouse, tmp_path, replay_server, empty)
    ok(summary)
    assert incident_rows(warehouse) == expected
    gone = {
        table: sum(row["service"] == "checkout" for row in before[table])
        - sum(row["service"] == "checkout" for row in expected[table])
        for table in TABLES
    }
    emptied = {table.replace("_", " "): count for table, count in gone.items() if count}
    names = list(emptied)
    counts = " and ".join(f"{count} {name}" for name, count in emptied.items())
    assert summary.result(desk.name).warnings == [
        f"{desk.name}: checkout: {desk.key} {empty} gave no {' and no '.join(names)}, so the "
        f"{counts} read from {desk.old} were removed (a first sync with this config would "
        "hold none); if it names the wrong service, correct it and the next sync reads them "
        "again"
    ]
    if desk.name == "pagerduty":  # as a person reads it
        assert (
            summary.result(desk.name)
            .warnings[0]
            .startswith(
                "pagerduty: checkout: service_id PNOSUCH gave no incidents and no oncall pages, so "
                "the 4 incidents and 4 oncall pages read from "
            )
        )
    ok(desk.sync(warehouse, tmp_path, replay_server, desk.old))  # put right: read again
    assert incident_rows(warehouse) == fresh(desk, tmp_path, replay_server, desk.old)


def test_a_warehouse_from_before_locations_were_kept_reads_nothing_again(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, desk: Desk
) -> None:
    served = len(replay_server.requests)
    ok(desk.sync(warehouse, tmp_path, replay_server, desk.old))
    incremental = sorted(request.path for request in replay_server.requests[served:])

    with warehouse.begin() as connection:  # as a warehouse of an older Poise
        state = schema.sync_state
        connection.execute(delete(state).where(state.c.stream == "location"))
    served = len(replay_server.requests)
    summary = desk.sync(warehouse, tmp_path, replay_server, desk.old)
    ok(summary)
    assert sorted(request.path for request in replay_server.requests[served:]) == incremental
    assert summary.results[0].notes == []
    assert location_bookmark(warehouse, desk)["location"][desk.key] == desk.old


def test_opsgenie_without_its_alert_query_keeps_no_page(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alert query taken out of poise.yaml: a first sync would collect no page."""
    monkeypatch.setenv("TEST_OPSGENIE_KEY", og.KEY)
    og.account(replay_server)
    source, _sleeps = quiet(OpsgenieSource)
    ok(sync(warehouse, og.make_config(tmp_path, replay_server), source))
    assert rows(warehouse, "oncall_pages")

    summary = sync(warehouse, og.make_config(tmp_path, replay_server, alert_query=None), source)
    ok(summary)
    assert rows(warehouse, "oncall_pages") == []
    assert len(rows(warehouse, "incidents")) == 2
    assert (
        summary.results[0]
        .notes[0]
        .startswith(
            f"opsgenie: checkout: alert_query changed ({og.ALERTS} → none) since the last sync"
        )
    )

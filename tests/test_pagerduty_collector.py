"""The PagerDuty collector against a loopback PagerDuty (tests/incident_fakes.py).

The fake enforces the API's rules (offsets on since/until, six-month spans, the 10,000
offset cap), so a request the real API would refuse fails here too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from incident_fakes import FakePagerDuty, quiet
from replay import ReplayServer, Reply
from sqlalchemy import Engine, func, select

from collectors.pagerduty import MAX_WINDOW, RELIST, PagerDutySource
from collectors.runner import SyncSummary, run_sync
from poise.catalog import apply_config
from poise.config import PoiseConfig, parse_config
from poise.warehouse import open_warehouse, schema
from poise.warehouse.sync_state import read_state

TOKEN = "u+PdT0kenNeverStored_9f3"
CHECKOUT, SEARCH = "PWJAGSD", "P2NQ7ZK"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_config(
    tmp_path: Path, server: ReplayServer, since: str = "2026-01-01", checkout: str = CHECKOUT
) -> PoiseConfig:
    return parse_config(
        {
            "teams": [
                {"name": "payments", "timezone": "Europe/Berlin"},
                {"name": "discovery", "timezone": "America/New_York"},
            ],
            "services": [
                {"name": "checkout", "team": "payments", "pagerduty": {"service_id": checkout}},
                {"name": "search-api", "team": "discovery", "pagerduty": {"service_id": SEARCH}},
            ],
            "sources": {
                "pagerduty": {
                    "base_url": server.base_url,
                    "token_env": "TEST_PAGERDUTY_TOKEN",
                    "since": since,
                    "max_retries": 2,
                }
            },
        },
        base_dir=tmp_path,
    )


def account(server: ReplayServer, **options: Any) -> FakePagerDuty:
    fake = FakePagerDuty(server, **options)
    # checkout (Berlin): in hours, acknowledged twice, resolved
    fake.incident(
        "Q1AAAAAAAAAAAA",
        101,
        service=CHECKOUT,
        created=at("2026-03-03T08:30:00"),
        acknowledged=at("2026-03-03T08:34:00"),
        resolved=at("2026-03-03T09:10:00"),
        title="5xx spike on checkout",
    )
    # a Saturday night, no priorities on the account then, resolved by itself
    fake.incident(
        "Q2BBBBBBBBBBBB",
        102,
        service=CHECKOUT,
        created=at("2026-03-07T02:15:00"),
        urgency="low",
        omit_priority=True,
        resolved=at("2026-03-07T02:45:00"),
    )
    # 18:30 in Berlin (after hours), acknowledged and still open, priority null
    fake.incident(
        "Q3CCCCCCCCCCCC",
        103,
        service=CHECKOUT,
        created=at("2026-08-04T16:30:00"),
        status="acknowledged",
        priority=None,
        acknowledged=at("2026-08-04T16:41:00"),
    )
    # triggered, nobody on it yet
    fake.incident(
        "Q4DDDDDDDDDDDD",
        104,
        service=CHECKOUT,
        created=at("2026-10-05T10:00:00"),
        status="triggered",
        priority="P2",
    )
    # search-api (New York): 09:30 EDT on a Monday
    fake.incident(
        "Q5EEEEEEEEEEEE",
        105,
        service=SEARCH,
        created=at("2026-05-11T13:30:00"),
        acknowledged=at("2026-05-11T13:45:00"),
        resolved=at("2026-05-11T15:00:00"),
        priority="P3",
    )
    # a service nobody configured: never asked for
    fake.incident("QZZZZZZZZZZZZZ", 199, service="PUNMAPD", created=at("2026-04-01T00:00:00"))
    return fake


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TEST_PAGERDUTY_TOKEN", TOKEN)
    return TOKEN


def sync(engine: Engine, config: PoiseConfig, **kwargs: Any) -> tuple[SyncSummary, list[float]]:
    source, sleeps = quiet(PagerDutySource)
    apply_config(engine, config)
    summary = run_sync(engine, config, registry={"pagerduty": source}, hooks=[], **kwargs)
    return summary, sleeps


def table(engine: Engine, which: Any) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        return {
            row["id"]: dict(row)
            for row in connection.execute(select(which).order_by(which.c.id)).mappings()
        }


def count(engine: Engine, which: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(which)) or 0)


def paths(server: ReplayServer, start: int = 0) -> list[str]:
    return [request.path for request in server.requests[start:]]


def test_incidents_and_pages_are_collected_with_their_times_and_hours(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    account(replay_server)
    config = make_config(tmp_path, replay_server)
    summary, _ = sync(warehouse, config)
    result = summary.result("pagerduty")
    assert not summary.failed, result.errors
    assert (result.scopes, result.records, result.new, result.updated) == (2, 5, 10, 0)

    incidents = table(warehouse, schema.incidents)
    assert set(incidents) == {
        "pagerduty:Q1AAAAAAAAAAAA",
        "pagerduty:Q2BBBBBBBBBBBB",
        "pagerduty:Q3CCCCCCCCCCCC",
        "pagerduty:Q4DDDDDDDDDDDD",
        "pagerduty:Q5EEEEEEEEEEEE",
    }
    first = incidents["pagerduty:Q1AAAAAAAAAAAA"]
    assert {k: first[k] for k in ("service", "severity", "status", "title", "url")} == {
        "service": "checkout",
        "severity": "P1",
        "status": "resolved",
        "title": "5xx spike on checkout",
        "url": "https://acme.pagerduty.com/incidents/Q1AAAAAAAAAAAA",
    }
    assert first["started_at"] == first["detected_at"] == at("2026-03-03T08:30:00")
    assert first["acknowledged_at"] == at("2026-03-03T08:34:00")  # the first of two
    assert first["resolved_at"] == at("2026-03-03T09:10:00")
    assert (first["source"], first["source_id"]) == ("pagerduty", "Q1AAAAAAAAAAAA")
    assert first["raw_id"] is not None

    auto = incidents["pagerduty:Q2BBBBBBBBBBBB"]
    assert (auto["severity"], auto["acknowledged_at"]) == ("low", None)  # urgency stands in
    open_acknowledged = incidents["pagerduty:Q3CCCCCCCCCCCC"]
    assert (open_acknowledged["severity"], open_acknowledged["status"]) == ("high", "acknowledged")
    assert open_acknowledged["acknowledged_at"] == at("2026-08-04T16:41:00")
    assert open_acknowledged["resolved_at"] is None
    triggered = incidents["pagerduty:Q4DDDDDDDDDDDD"]
    assert (triggered["status"], triggered["acknowledged_at"], triggered["resolved_at"]) == (
        "open",
        None,
        None,
    )
    assert incidents["pagerduty:Q5EEEEEEEEEEEE"]["service"] == "search-api"

    pages = table(warehouse, schema.oncall_pages)
    assert {page["incident_id"] + ":trigger" for page in pages.values()} == set(pages)
    assert {
        page["incident_id"]: (page["team"], page["urgency"], page["after_hours"])
        for page in pages.values()
    } == {
        "pagerduty:Q1AAAAAAAAAAAA": ("payments", "high", False),  # Tuesday 09:30 in Berlin
        "pagerduty:Q2BBBBBBBBBBBB": ("payments", "low", True),  # Saturday night
        "pagerduty:Q3CCCCCCCCCCCC": ("payments", "high", True),  # 18:30 in Berlin
        "pagerduty:Q4DDDDDDDDDDDD": ("payments", "high", False),
        "pagerduty:Q5EEEEEEEEEEEE": ("discovery", "high", False),  # 09:30 in New York
    }
    assert pages["pagerduty:Q1AAAAAAAAAAAA:trigger"]["triggered_at"] == at("2026-03-03T08:30:00")

    requests = replay_server.requests
    assert all(r.header("Authorization") == f"Token token={token}" for r in requests)
    assert all(r.header("Accept") == "application/vnd.pagerduty+json;version=2" for r in requests)
    lists = [r for r in requests if r.path == "/incidents"]
    assert {r.query["service_ids[]"] for r in lists} == {CHECKOUT, SEARCH}
    for r in lists:
        assert r.query["since"].endswith("Z") and r.query["until"].endswith("Z")
        since, until = (datetime.fromisoformat(r.query[k]) for k in ("since", "until"))
        assert until - since <= MAX_WINDOW
        assert (r.query["total"], r.query["limit"], r.query["time_zone"]) == ("true", "100", "UTC")
    assert min(r.query["since"] for r in lists) == "2026-01-01T00:00:00Z"
    # log entries once per incident first seen resolved, in UTC; none for open ones
    logs = sorted(r.path for r in requests if r.path.endswith("/log_entries"))
    assert logs == [
        "/incidents/Q1AAAAAAAAAAAA/log_entries",
        "/incidents/Q2BBBBBBBBBBBB/log_entries",
        "/incidents/Q5EEEEEEEEEEEE/log_entries",
    ]
    assert all(r.query["time_zone"] == "UTC" for r in requests if r.path.endswith("log_entries"))
    with warehouse.connect() as connection:
        state = read_state(connection, "pagerduty", "incidents", "checkout")
        streams = set(connection.scalars(select(schema.raw_payloads.c.stream)))
    assert state.last_error is None and state.bookmark["cursor"].endswith("Z")
    assert streams == {"incidents", "log_entries"}


def test_a_second_sync_adds_nothing_and_open_incidents_update_later(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    fake = account(replay_server)
    config = make_config(tmp_path, replay_server)
    sync(warehouse, config)
    before = table(warehouse, schema.incidents)
    served = len(replay_server.requests)

    summary, _ = sync(warehouse, config)
    again = summary.result("pagerduty")
    assert not summary.failed
    assert (again.new, again.updated) == (0, 0)
    assert table(warehouse, schema.incidents) == before
    # one window per service (the re-listed span to now), and the two open incidents,
    # created before that span, one by one
    assert sorted(paths(replay_server, served)) == [
        "/incidents",
        "/incidents",
        "/incidents/Q3CCCCCCCCCCCC",
        "/incidents/Q4DDDDDDDDDDDD",
    ]

    # Both open incidents resolve; Q4 was acknowledged in between, unseen by Poise.
    fake.incident(
        "Q3CCCCCCCCCCCC",
        103,
        service=CHECKOUT,
        created=at("2026-08-04T16:30:00"),
        priority=None,
        acknowledged=at("2026-08-04T16:41:00"),
        resolved=at("2026-08-04T17:30:00"),
    )
    fake.incident(
        "Q4DDDDDDDDDDDD",
        104,
        service=CHECKOUT,
        created=at("2026-10-05T10:00:00"),
        priority="P2",
        acknowledged=at("2026-10-05T10:20:00"),
        resolved=at("2026-10-05T11:00:00"),
    )
    served = len(replay_server.requests)
    summary, _ = sync(warehouse, config)
    assert summary.result("pagerduty").updated == 2
    after = table(warehouse, schema.incidents)
    assert after["pagerduty:Q3CCCCCCCCCCCC"]["resolved_at"] == at("2026-08-04T17:30:00")
    assert after["pagerduty:Q3CCCCCCCCCCCC"]["acknowledged_at"] == at("2026-08-04T16:41:00")
    assert after["pagerduty:Q4DDDDDDDDDDDD"]["status"] == "resolved"
    assert after["pagerduty:Q4DDDDDDDDDDDD"]["acknowledged_at"] == at("2026-10-05T10:20:00")
    # the log entries of both, once each, as they resolve: Q3's known acknowledgement may
    # have been a renewed one (tests/test_incident_probe.py)
    assert sorted(p for p in paths(replay_server, served) if p.endswith("log_entries")) == [
        "/incidents/Q3CCCCCCCCCCCC/log_entries",
        "/incidents/Q4DDDDDDDDDDDD/log_entries",
    ]

    served = len(replay_server.requests)
    summary, _ = sync(warehouse, config)
    assert (summary.result("pagerduty").new, summary.result("pagerduty").updated) == (0, 0)
    assert paths(replay_server, served) == ["/incidents", "/incidents"]  # nothing open now


class Killed(BaseException):
    """Stands in for SIGKILL: no handler of the sync gets to run."""


def test_a_sync_killed_after_a_window_resumes_there_and_ends_like_an_uninterrupted_one(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    fake = account(replay_server)
    fake.incident(
        "Q0000000000000",
        100,
        service=CHECKOUT,
        created=at("2025-09-15T12:00:00"),
        acknowledged=at("2025-09-15T12:03:00"),
        resolved=at("2025-09-15T13:00:00"),
    )
    config = make_config(tmp_path, replay_server, since="2025-06-01")

    def kill(stream: str, scope: str, bookmark: Any) -> None:
        raise Killed

    with pytest.raises(Killed):
        sync(warehouse, config, on_checkpoint=kill)
    with warehouse.connect() as connection:
        cursor = read_state(connection, "pagerduty", "incidents", "checkout").bookmark["cursor"]
    first_window_end = at("2025-06-01T00:00:00") + MAX_WINDOW
    assert cursor == first_window_end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert set(table(warehouse, schema.incidents)) == {"pagerduty:Q0000000000000"}

    served = len(replay_server.requests)
    summary, _ = sync(warehouse, config)
    assert not summary.failed
    resumed = [
        r.query["since"]
        for r in replay_server.requests[served:]
        if r.path == "/incidents" and r.query["service_ids[]"] == CHECKOUT
    ]
    # the re-listed span (RELIST) before the window end, within `since`
    assert min(resumed) == (first_window_end - RELIST).strftime("%Y-%m-%dT%H:%M:%SZ")

    uninterrupted = open_warehouse(f"sqlite:///{tmp_path / 'uninterrupted.db'}")
    try:
        sync(uninterrupted, config)
        for which in (schema.incidents, schema.oncall_pages):
            ignore = {"raw_id", "updated_at"}
            resumed_rows = {
                k: {c: v for c, v in row.items() if c not in ignore}
                for k, row in table(warehouse, which).items()
            }
            whole_rows = {
                k: {c: v for c, v in row.items() if c not in ignore}
                for k, row in table(uninterrupted, which).items()
            }
            assert resumed_rows == whole_rows
    finally:
        uninterrupted.dispose()


@pytest.mark.parametrize("honour_total", [True, False], ids=["total", "no-total"])
def test_a_window_past_the_10000_cap_is_sliced_in_time_and_nothing_is_missed(
    sqlite_warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    token: str,
    honour_total: bool,
) -> None:
    fake = FakePagerDuty(replay_server, honour_total=honour_total)
    start = at("2026-01-01T00:00:00")
    busy = 10_030
    step = (MAX_WINDOW - timedelta(days=1)) / busy
    for n in range(busy):
        fake.incident(
            f"QB{n:012d}",
            10_000 + n,
            service=CHECKOUT,
            created=start + step * n,
            status="acknowledged",
            acknowledged=start + step * n + timedelta(minutes=2),
            detail_routes=False,
        )
    config = make_config(tmp_path, replay_server)
    summary, _ = sync(sqlite_warehouse, config)
    assert not summary.failed, summary.result("pagerduty").errors
    assert count(sqlite_warehouse, schema.incidents) == busy
    assert count(sqlite_warehouse, schema.oncall_pages) == busy
    lists = [r for r in replay_server.requests if r.path == "/incidents"]
    assert max(int(r.query["offset"]) + int(r.query["limit"]) for r in lists) <= 10_000
    assert not [r for r in replay_server.requests if r.path.endswith("log_entries")]
    windows = {(r.query["since"], r.query["until"]) for r in lists if r.query["offset"] == "0"}
    assert ("2026-01-01T00:00:00Z", "2026-06-30T00:00:00Z") in windows  # tried whole, then cut
    if honour_total:
        # the total on the first page was enough to cut: no page past the first was wasted
        pages = [r for r in lists if r.query["service_ids[]"] == CHECKOUT]
        assert len(pages) <= busy // 100 + 1 + len(windows)


def test_throttling_is_waited_out_with_ratelimit_reset(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    fake = account(replay_server)
    fake.fault(
        "/incidents",
        Reply(
            429,
            {"error": {"message": "Rate Limit Exceeded", "code": 2020}},
            {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "7"},
        ),
    )
    summary, sleeps = sync(warehouse, make_config(tmp_path, replay_server))
    assert not summary.failed
    assert sleeps == [7.0]
    assert count(warehouse, schema.incidents) == 5


def _failing_sync(
    warehouse: Engine, server: ReplayServer, tmp_path: Path, path: str, *replies: Reply
) -> tuple[str, FakePagerDuty, PoiseConfig]:
    fake = account(server)
    fake.fault(path, *replies)
    config = make_config(tmp_path, server)
    summary, _ = sync(warehouse, config)
    (error,) = summary.result("pagerduty").errors
    return error, fake, config


def test_a_persisting_500_keeps_what_was_stored_and_the_bookmark_where_it_was(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    # search-api's only incident needs its log entries, which keep failing
    error, _fake, config = _failing_sync(
        warehouse,
        replay_server,
        tmp_path,
        "/incidents/Q5EEEEEEEEEEEE/log_entries",
        *[Reply(503, b"<html>503 Service Unavailable</html>")] * 3,
    )
    assert error.startswith("pagerduty: HTTP 503 from http://127.0.0.1:")
    assert "/incidents/Q5EEEEEEEEEEEE/log_entries" in error and "after 3 tries" in error
    assert "\n" not in error and TOKEN not in error
    incidents = table(warehouse, schema.incidents)
    assert len(incidents) == 4 and "pagerduty:Q5EEEEEEEEEEEE" not in incidents  # checkout kept
    with warehouse.connect() as connection:
        search = read_state(connection, "pagerduty", "incidents", "search-api")
        checkout = read_state(connection, "pagerduty", "incidents", "checkout")
    assert search.bookmark is None and search.last_error == error
    assert checkout.last_error is None and checkout.bookmark is not None

    summary, _ = sync(warehouse, config)  # the service is back
    assert not summary.failed
    assert "pagerduty:Q5EEEEEEEEEEEE" in table(warehouse, schema.incidents)


def test_an_empty_page_that_says_more_follow_does_not_move_the_bookmark(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    """With no incident to step the offset by, paging cannot go on; ending the window
    there would put the bookmark past incidents never read."""
    empty = {"incidents": [], "limit": 100, "offset": 0, "more": True, "total": None}
    fake = account(replay_server)
    fake.fault("/incidents", Reply(200, empty))
    config = make_config(tmp_path, replay_server)
    summary, _ = sync(warehouse, config)
    (error,) = summary.result("pagerduty").errors
    assert error.startswith("pagerduty: http://127.0.0.1:")
    assert error.endswith(
        "answered an empty page that says more follow: paging stopped; earlier pages are "
        "kept and this window is read again at the next sync"
    )
    with warehouse.connect() as connection:
        checkout = read_state(connection, "pagerduty", "incidents", "checkout")
    assert checkout.bookmark is None and checkout.last_error == error
    assert "pagerduty:Q5EEEEEEEEEEEE" in table(warehouse, schema.incidents)  # search-api's

    summary, _ = sync(warehouse, config)  # read again: checkout's incidents are all there
    assert not summary.failed
    assert {"pagerduty:Q1AAAAAAAAAAAA", "pagerduty:Q2BBBBBBBBBBBB"} <= set(
        table(warehouse, schema.incidents)
    )


def test_garbage_and_expired_tokens_are_one_line_and_other_services_go_on(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    error, _fake, _config = _failing_sync(
        warehouse,
        replay_server,
        tmp_path,
        "/incidents",
        Reply(
            200, b"<html><body>Down for maintenance</body></html>", {"Content-Type": "text/html"}
        ),
    )
    assert error.startswith("pagerduty: malformed response from http://127.0.0.1:")
    assert "(HTTP 200, not JSON: '<html><body>Down for maintenance</body></html>')" in error
    assert {row["service"] for row in table(warehouse, schema.incidents).values()} == {"search-api"}


def test_an_expired_token_names_the_variable_to_check(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    fake = account(replay_server)
    fake.fault("/incidents", Reply(401, {"error": {"message": "Unauthorized", "code": 2006}}))
    summary, _ = sync(warehouse, make_config(tmp_path, replay_server))
    error, not_tried = summary.result("pagerduty").errors
    assert error.startswith("pagerduty: token expired or invalid (HTTP 401 at http://127.0.0.1:")
    assert error.endswith("): check $TEST_PAGERDUTY_TOKEN") and TOKEN not in error
    # the key is the account's: the other service is not asked with it (one line, not one a service)
    assert not_tried.startswith("pagerduty: not tried for 1 more (of 2): search-api, ")
    assert count(warehouse, schema.incidents) == 0


def test_an_incident_missing_its_creation_time_is_a_malformed_page(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    fake = account(replay_server)
    del fake.incidents["Q5EEEEEEEEEEEE"]["created_at"]
    summary, _ = sync(warehouse, make_config(tmp_path, replay_server))
    (error,) = summary.result("pagerduty").errors
    assert error.startswith("pagerduty: malformed incident from http://127.0.0.1:")
    assert error.endswith(": missing 'created_at'; earlier pages are kept")
    assert count(warehouse, schema.incidents) == 4  # checkout's are kept


def test_the_token_never_reaches_the_warehouse_file(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    fake = account(replay_server)
    fake.fault("/incidents/Q5EEEEEEEEEEEE/log_entries", Reply(401, {"error": {"code": 2006}}))
    summary, _ = sync(sqlite_warehouse, make_config(tmp_path, replay_server))
    assert summary.failed and count(sqlite_warehouse, schema.raw_payloads) > 0
    sqlite_warehouse.dispose()
    database = Path(str(sqlite_warehouse.url.database))
    for path in [database, *database.parent.glob(database.name + "-*")]:
        assert TOKEN.encode() not in path.read_bytes()


def test_an_incident_of_another_service_in_a_page_is_skipped_with_a_warning(
    warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    token: str,
) -> None:
    fake = account(replay_server)
    stray = dict(fake.incidents["QZZZZZZZZZZZZZ"])
    mine = dict(fake.incidents["Q1AAAAAAAAAAAA"])
    fake.fault(
        "/incidents",
        Reply(200, {"incidents": [mine, stray], "limit": 100, "offset": 0, "more": False}),
    )
    summary, _ = sync(warehouse, make_config(tmp_path, replay_server))
    assert not summary.failed
    assert "pagerduty:QZZZZZZZZZZZZZ" not in table(warehouse, schema.incidents)
    assert "pagerduty:Q1AAAAAAAAAAAA" in table(warehouse, schema.incidents)
    assert summary.result("pagerduty").warnings == [
        "pagerduty: incident QZZZZZZZZZZZZZ belongs to service PUNMAPD, not PWJAGSD (checkout); "
        "skipped"
    ]


def test_an_incident_with_no_service_is_skipped_with_a_warning_that_says_so(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    fake = account(replay_server)
    orphan = {**fake.incidents["QZZZZZZZZZZZZZ"], "service": None}
    mine = dict(fake.incidents["Q1AAAAAAAAAAAA"])
    fake.fault(
        "/incidents",
        Reply(200, {"incidents": [mine, orphan], "limit": 100, "offset": 0, "more": False}),
    )
    summary, _ = sync(sqlite_warehouse, make_config(tmp_path, replay_server))
    assert not summary.failed
    assert summary.result("pagerduty").warnings == [
        "pagerduty: incident QZZZZZZZZZZZZZ belongs to no service, not PWJAGSD (checkout); skipped"
    ]


def test_incidents_of_one_second_across_pages_are_all_stored_once(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    """PagerDuty orders ties of a non-unique sort key anyhow, and may do so differently
    from one page's request to the next: paging by offset over `created_at` then skips
    some incidents and lists others twice. The incident number is unique."""
    fake = FakePagerDuty(replay_server, unstable_ties=True)
    storm = at("2026-06-01T12:00:00")
    for number in range(1, 151):  # an alert storm: 150 incidents in one second, two pages
        fake.incident(
            f"QSTORM{number:08d}",
            1000 + number,
            service=CHECKOUT,
            created=storm,
            status="triggered",
            detail_routes=False,
        )
    config = make_config(tmp_path, replay_server)
    summary, _ = sync(warehouse, config)
    assert not summary.failed, summary.result("pagerduty").errors
    assert set(table(warehouse, schema.incidents)) == {
        f"pagerduty:QSTORM{number:08d}" for number in range(1, 151)
    }
    lists = [
        r
        for r in replay_server.requests
        if r.path == "/incidents" and r.query["service_ids[]"] == CHECKOUT
    ]
    assert "100" in [r.query["offset"] for r in lists]  # the storm came in two pages
    assert {r.query["sort_by"] for r in lists} == {"incident_number:asc"}


def test_an_incident_merged_into_another_is_no_incident_of_its_own(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, token: str
) -> None:
    """PagerDuty resolves an incident merged into another (`merge_resolve_reason`): counted
    as an incident it would count one outage twice and add a short "recovery" to the
    response times. Its page was sent all the same, so that stays, with the incident it
    now belongs to; seen open before the merge, its stored row goes."""
    fake = account(replay_server)
    # a second alert of the 5xx spike opened its own incident; the responder merges it
    fake.incident(
        "Q6FFFFFFFFFFFF",
        106,
        service=CHECKOUT,
        created=at("2026-03-03T08:31:00"),
        status="triggered",
        title="checkout latency",
    )
    fake.merge("Q6FFFFFFFFFFFF", into="Q1AAAAAAAAAAAA", at=at("2026-03-03T08:36:00"))
    # and one seen open by the first sync, merged before the next
    fake.incident(
        "Q8HHHHHHHHHHHH",
        108,
        service=CHECKOUT,
        created=at("2026-10-05T10:01:00"),
        status="triggered",
    )
    config = make_config(tmp_path, replay_server)
    summary, _ = sync(warehouse, config)
    assert not summary.failed, summary.result("pagerduty").errors
    incidents = table(warehouse, schema.incidents)
    assert "pagerduty:Q6FFFFFFFFFFFF" not in incidents
    assert incidents["pagerduty:Q8HHHHHHHHHHHH"]["status"] == "open"
    pages = table(warehouse, schema.oncall_pages)
    assert pages["pagerduty:Q6FFFFFFFFFFFF:trigger"]["incident_id"] == "pagerduty:Q1AAAAAAAAAAAA"
    assert pages["pagerduty:Q6FFFFFFFFFFFF:trigger"]["triggered_at"] == at("2026-03-03T08:31:00")
    merged_logs = [r for r in replay_server.requests if r.path.startswith("/incidents/Q6")]
    assert merged_logs == []  # no acknowledgement to look up for it

    fake.merge("Q8HHHHHHHHHHHH", into="Q4DDDDDDDDDDDD", at=at("2026-10-05T10:03:00"))
    summary, _ = sync(warehouse, config)
    assert not summary.failed, summary.result("pagerduty").errors
    assert summary.result("pagerduty").updated >= 1
    incidents = table(warehouse, schema.incidents)
    assert "pagerduty:Q8HHHHHHHHHHHH" not in incidents
    assert set(incidents) == {
        "pagerduty:Q1AAAAAAAAAAAA",
        "pagerduty:Q2BBBBBBBBBBBB",
        "pagerduty:Q3CCCCCCCCCCCC",
        "pagerduty:Q4DDDDDDDDDDDD",
        "pagerduty:Q5EEEEEEEEEEEE",
    }
    pages = table(warehouse, schema.oncall_pages)
    assert pages["pagerduty:Q8HHHHHHHHHHHH:trigger"]["incident_id"] == "pagerduty:Q4DDDDDDDDDDDD"
    assert len(pages) == 7  # every page sent, merged or not

    summary, _ = sync(warehouse, config)  # and nothing changes after
    assert (summary.result("pagerduty").new, summary.result("pagerduty").updated) == (0, 0)

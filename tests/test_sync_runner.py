"""The collector framework and `run_sync`: declared streams against a real loopback server.

A small GitHub-Deployments-shaped source is declared here the way a real collector is,
so these tests exercise exactly the machinery later collectors use: Link paging followed
verbatim, raw payloads with lineage, ETag 304s, checkpoints, resuming after a kill,
malformed pages, one failing source among others, and tokens kept out of the warehouse.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine, func, select

from collectors.base import Scope, Source, Stream, SyncContext
from collectors.http import SourceError
from collectors.runner import run_sync
from poise.catalog import apply_config
from poise.config import PoiseConfig, parse_config
from poise.timeutil import parse_timestamp
from poise.warehouse import open_warehouse, schema
from poise.warehouse.sync_state import read_state

TOKEN = "ghp_runnerT0kenNeverStored42"
ETAG = 'W/"d3adb33f"'


def deployment_rows(record: dict[str, Any], scope: Scope) -> dict[str, list[dict[str, Any]]]:
    return {
        "deployments": [
            {
                "id": f"github:{scope.key}:deployment:{record['id']}",
                "service": scope.key,
                "environment": record["environment"],
                "status": "success",
                "deployed_at": parse_timestamp(record["created_at"]),
                "sha": record["sha"],
                "source_id": str(record["id"]),
            }
        ]
    }


class DeploymentsSource(Source):
    name = "github"
    streams = (
        Stream(
            "deployments",
            "/repos/{repo}/deployments",
            deployment_rows,
            cursor_field="created_at",
            newest_first=True,
            conditional=True,
            page_size=2,
        ),
    )


def deployment(number: int) -> dict[str, Any]:
    return {
        "id": 1402233870 + number,
        "sha": f"{number:040x}",
        "ref": "main",
        "task": "deploy",
        "environment": "production",
        "production_environment": True,
        "created_at": f"2024-05-{number:02d}T10:20:00Z",
        "updated_at": f"2024-05-{number:02d}T10:24:31Z",
        "creator": None if number == 3 else {"login": "github-actions[bot]", "id": 41898282},
        "payload": {},
        "description": None,
    }


def script_deployments(server: ReplayServer, repo: str = "acme/svc", repo_id: int = 77) -> None:
    """Five deployments newest first, two a page; later pages use /repositories/{id}/…."""
    newest_first = [deployment(n) for n in (5, 4, 3, 2, 1)]

    def first_page(request: RecordedRequest) -> Reply:
        if request.header("If-None-Match") == ETAG:
            return Reply(304, b"", {"ETag": ETAG, "X-RateLimit-Remaining": "4999"})
        link = server.link(next=f"/repositories/{repo_id}/deployments?per_page=2&page=2")
        return Reply(200, newest_first[:2], {"ETag": ETAG, "Link": link})

    server.add_handler(f"/repos/{repo}/deployments", first_page)
    server.add(
        f"/repositories/{repo_id}/deployments",
        Reply(
            200,
            newest_first[2:4],
            {"Link": server.link(next=f"/repositories/{repo_id}/deployments?per_page=2&page=3")},
        ),
        query={"page": "2"},
    )
    server.add(
        f"/repositories/{repo_id}/deployments", Reply(200, newest_first[4:]), query={"page": "3"}
    )


def make_config(tmp_path: Path, server: ReplayServer, services: dict[str, str]) -> PoiseConfig:
    return parse_config(
        {
            "teams": [{"name": "payments"}],
            "services": [
                {"name": name, "team": "payments", "github": {"repo": repo}}
                for name, repo in services.items()
            ],
            "sources": {"github": {"base_url": server.base_url, "token_env": "TEST_GITHUB_TOKEN"}},
        },
        base_dir=tmp_path,
    )


@pytest.fixture
def github_config(
    tmp_path: Path, replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> PoiseConfig:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    script_deployments(replay_server)
    return make_config(tmp_path, replay_server, {"checkout": "acme/svc"})


def sync(engine: Engine, config: PoiseConfig, **kwargs: Any) -> Any:
    apply_config(engine, config)
    return run_sync(engine, config, registry={"github": DeploymentsSource}, hooks=[], **kwargs)


def deployment_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.scalars(select(schema.deployments.c.id)))


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def test_stream_pages_are_stored_with_lineage_and_a_second_sync_adds_nothing(
    warehouse: Engine, github_config: PoiseConfig, replay_server: ReplayServer
) -> None:
    summary = sync(warehouse, github_config)
    result = summary.result("github")
    assert not summary.failed
    assert (result.new, result.updated, result.unchanged, result.records) == (5, 0, 0, 5)
    paths = [request.path for request in replay_server.requests]
    assert paths == [
        "/repos/acme/svc/deployments",
        "/repositories/77/deployments",
        "/repositories/77/deployments",
    ]
    assert replay_server.requests[0].query == {"per_page": "2"}
    assert replay_server.requests[2].query == {"per_page": "2", "page": "3"}
    assert all(r.header("Authorization") == f"Bearer {TOKEN}" for r in replay_server.requests)
    with warehouse.connect() as connection:
        rows = connection.execute(select(schema.deployments)).mappings().all()
        raw = connection.execute(select(schema.raw_payloads)).mappings().all()
    assert len(raw) == 3
    assert {row["source"] for row in rows} == {"github"}
    assert {row["raw_id"] for row in rows} == {r["id"] for r in raw}
    assert raw[1]["request_url"].endswith("/repositories/77/deployments?per_page=2&page=2")
    assert raw[0]["request_method"] == "GET" and raw[0]["status_code"] == 200
    with warehouse.connect() as connection:
        state = read_state(connection, "github", "deployments", "checkout")
    assert state.bookmark["cursor"] == "2024-05-05T10:20:00.000000Z"
    assert state.bookmark["etag"] == ETAG and state.last_error is None

    again = sync(warehouse, github_config).result("github")
    assert (again.new, again.updated, again.records) == (0, 0, 0)
    assert replay_server.requests[-1].header("If-None-Match") == ETAG
    assert len(replay_server.requests) == 4
    assert count(warehouse, schema.raw_payloads) == 3


def test_full_sync_ignores_the_bookmark_and_changes_nothing(
    warehouse: Engine, github_config: PoiseConfig, replay_server: ReplayServer
) -> None:
    sync(warehouse, github_config)
    before = deployment_ids(warehouse)
    result = sync(warehouse, github_config, full=True).result("github")
    assert (result.new, result.updated, result.unchanged) == (0, 0, 5)
    assert replay_server.requests[-3].header("If-None-Match") is None
    assert deployment_ids(warehouse) == before


class Killed(BaseException):
    """Stands in for SIGKILL: no handler of the sync gets to run."""


def test_a_sync_killed_after_a_checkpoint_resumes_there_and_ends_with_the_same_rows(
    warehouse: Engine,
    github_config: PoiseConfig,
    replay_server: ReplayServer,
    tmp_path: Path,
) -> None:
    def kill(stream: str, scope: str, bookmark: Any) -> None:
        raise Killed

    with pytest.raises(Killed):
        sync(warehouse, github_config, checkpoint_every=2, on_checkpoint=kill)
    assert len(deployment_ids(warehouse)) == 2
    with warehouse.connect() as connection:
        pending = read_state(connection, "github", "deployments", "checkout").bookmark
    assert pending["cursor"] is None
    assert pending["pending"]["request"]["url"].endswith(
        "/repositories/77/deployments?per_page=2&page=2"
    )

    served_before = len(replay_server.requests)
    sync(warehouse, github_config, checkpoint_every=2)
    resumed = [r.query.get("page") for r in replay_server.requests[served_before:]]
    assert resumed == ["2", "3"]  # the first page is not fetched again

    uninterrupted = open_warehouse(f"sqlite:///{tmp_path / 'uninterrupted.db'}")
    sync(uninterrupted, github_config)
    assert deployment_ids(warehouse) == deployment_ids(uninterrupted)
    uninterrupted.dispose()
    with warehouse.connect() as connection:
        state = read_state(connection, "github", "deployments", "checkout").bookmark
    assert state == {"cursor": "2024-05-05T10:20:00.000000Z", "etag": ETAG}


def test_a_malformed_page_keeps_earlier_pages_and_does_not_advance_the_bookmark(
    warehouse: Engine, tmp_path: Path, replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    link = replay_server.link(next="/repositories/77/deployments?page=2")
    replay_server.add(
        "/repos/acme/svc/deployments", Reply(200, [deployment(5), deployment(4)], {"Link": link})
    )
    replay_server.add(
        "/repositories/77/deployments", Reply(200, b'[{"id": 1, "sha": '), query={"page": "2"}
    )
    config = make_config(tmp_path, replay_server, {"checkout": "acme/svc"})
    summary = sync(warehouse, config)
    assert summary.failed
    (error,) = summary.result("github").errors
    assert error.startswith("github: malformed response from http://127.0.0.1:")
    assert "/repositories/77/deployments?page=2" in error
    assert len(deployment_ids(warehouse)) == 2
    with warehouse.connect() as connection:
        state = read_state(connection, "github", "deployments", "checkout")
    assert state.bookmark is None
    assert state.last_error == error


def test_an_object_where_a_list_belongs_is_a_malformed_page(
    warehouse: Engine, tmp_path: Path, replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    replay_server.add("/repos/acme/svc/deployments", Reply(200, {"message": "Moved Permanently"}))
    config = make_config(tmp_path, replay_server, {"checkout": "acme/svc"})
    (error,) = sync(warehouse, config).result("github").errors
    assert "malformed page" in error and "expected a list of objects" in error


def test_one_failing_scope_is_recorded_and_the_others_go_on(
    warehouse: Engine, tmp_path: Path, replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    replay_server.add(
        "/repos/acme/legacy/deployments",
        Reply(403, {"message": "Resource not accessible by personal access token"}),
    )
    script_deployments(replay_server)
    config = make_config(tmp_path, replay_server, {"legacy": "acme/legacy", "checkout": "acme/svc"})
    result = sync(warehouse, config).result("github")
    assert result.errors == [
        f"github: access denied (HTTP 403 at {replay_server.base_url}"
        '/repos/acme/legacy/deployments?per_page=2: "Resource not accessible by personal access '
        "token\"): check $TEST_GITHUB_TOKEN and the token's permissions for this resource"
    ]
    assert result.new == 5 and result.scopes == 2
    with warehouse.connect() as connection:
        legacy = read_state(connection, "github", "deployments", "legacy")
        checkout = read_state(connection, "github", "deployments", "checkout")
    assert legacy.last_error == result.errors[0] and legacy.last_success_at is None
    assert checkout.last_error is None and checkout.last_success_at is not None


@pytest.mark.parametrize("failure", ["expired token", "no such host", "rate limited"])
def test_a_failure_of_the_whole_source_stops_it_at_the_first_scope(
    warehouse: Engine,
    tmp_path: Path,
    replay_server: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    """A 401, a host that cannot be reached or a rate limit still on after the waits is the
    source's, not a repository's: trying the other scopes would fail each the same way,
    after the same retries (with 20 services and a wrong base_url, ten minutes of
    waiting). One more line says which were not tried; each is recorded as failing."""
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    script_deployments(replay_server)
    services = {"legacy": "acme/legacy", "checkout": "acme/svc", "search": "acme/search"}
    config = make_config(tmp_path, replay_server, services)
    if failure == "expired token":
        reply = Reply(401, {"message": "Bad credentials"})
        replay_server.add("/repos/acme/legacy/deployments", reply)
        expected = "github: token expired or invalid (HTTP 401 at"
    elif failure == "rate limited":
        reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9999999999"}
        reply = Reply(403, {"message": "API rate limit exceeded"}, reset)
        replay_server.add("/repos/acme/legacy/deployments", reply)
        expected = "github: still rate limited (HTTP 403)"
    else:
        with socket.socket() as free:  # a port nothing listens on
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        data = config.model_dump()
        data["sources"]["github"].update(base_url=f"http://127.0.0.1:{port}", max_retries=0)
        config = parse_config(data, base_dir=tmp_path)
        expected = f"github: cannot connect to http://127.0.0.1:{port}/repos/acme/legacy"
    served = len(replay_server.requests)
    result = sync(warehouse, config).result("github")
    assert [error[: len(expected)] for error in result.errors[:1]] == [expected]
    assert result.errors[1:] == [
        "github: not tried for 2 more (of 3): checkout, search, as the same failure would "
        "stop each of them; run `poise sync` again once it is fixed"
    ]
    assert all("/repos/acme/svc" not in r.path for r in replay_server.requests[served:])
    assert result.new == 0 and result.failures == 3  # the summary's errors column
    with warehouse.connect() as connection:
        for name in ("checkout", "search"):
            assert read_state(connection, "github", "*", name).last_error == result.errors[0]


def test_a_graceful_stop_finishes_the_scope_under_way_and_the_next_sync_reads_the_rest(
    warehouse: Engine, tmp_path: Path, replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM while the first of three repositories is read: that one finishes, the
    other two are not asked for (a source of many repositories must fit a scheduler's grace
    period), the summary says the sync stopped, and the next sync reads them."""
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)
    for repo, repo_id in (("acme/svc", 77), ("acme/legacy", 78), ("acme/search", 79)):
        script_deployments(replay_server, repo, repo_id)
    services = {"checkout": "acme/svc", "legacy": "acme/legacy", "search": "acme/search"}
    config = make_config(tmp_path, replay_server, services)

    def stop_once_checkout_is_read() -> bool:
        return any("/repos/acme/svc/" in r.path for r in replay_server.requests)

    summary = sync(warehouse, config, should_stop=stop_once_checkout_is_read)
    result = summary.result("github")
    assert summary.stopped and not summary.failed
    assert result.stopped_scopes == 2 and result.new == 5 and result.failures == 0
    assert result.warnings == [
        "github: stopped before 2 more (of 3): legacy, search; the next sync reads them"
    ]
    assert not any(
        "acme/legacy" in r.path or "acme/search" in r.path for r in replay_server.requests
    )
    assert len(deployment_ids(warehouse)) == 5
    with warehouse.connect() as connection:  # not started is not failed
        assert read_state(connection, "github", "deployments", "legacy").last_error is None

    again = sync(warehouse, config)
    assert not again.stopped and again.result("github").new == 10
    assert len(deployment_ids(warehouse)) == 15


class Broken(Source):
    name = "gitlab"

    def scopes(self) -> list[Scope]:
        return [Scope(s.name, s, None) for s in self.config.services]

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        if scope.key == "checkout":
            raise SourceError("gitlab: project acme/svc not found: check services[0].gitlab")
        raise KeyError("iid")  # a bug, not a user mistake


def test_failing_sources_do_not_stop_the_others_and_bugs_are_reported_as_such(
    warehouse: Engine, github_config: PoiseConfig
) -> None:
    apply_config(warehouse, github_config)
    summary = run_sync(
        warehouse,
        github_config,
        registry={"gitlab": Broken, "github": DeploymentsSource},
        hooks=[],
    )
    assert summary.failed
    assert summary.result("gitlab").errors == [
        "gitlab: project acme/svc not found: check services[0].gitlab"
    ]
    assert summary.result("github").new == 5 and not summary.result("github").failed


def test_a_missing_token_variable_fails_that_source_with_one_line(
    warehouse: Engine, tmp_path: Path, replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_GITHUB_TOKEN", raising=False)
    config = make_config(tmp_path, replay_server, {"checkout": "acme/svc"})
    (error,) = sync(warehouse, config).result("github").errors
    assert error == "sources.github.token_env: environment variable TEST_GITHUB_TOKEN is not set"
    two = make_config(tmp_path, replay_server, {"checkout": "acme/svc", "search": "acme/search"})
    assert sync(warehouse, two).result("github").failures == 2  # one line, both scopes failed
    assert replay_server.requests == []
    # kept in the sync state like any failure, so the Data & sources page shows it
    with warehouse.connect() as connection:
        state = read_state(connection, "github", "*", "checkout")
    assert state.last_error == error


def test_a_failing_post_sync_hook_is_reported_after_the_sources(
    warehouse: Engine, github_config: PoiseConfig
) -> None:
    def refresh_attributions(engine: Engine, config: PoiseConfig) -> None:
        raise RuntimeError("attribution table locked")

    apply_config(warehouse, github_config)
    summary = run_sync(
        warehouse,
        github_config,
        registry={"github": DeploymentsSource},
        hooks=[refresh_attributions],
    )
    assert summary.result("github").new == 5
    assert summary.result("refresh_attributions").errors == [
        "refresh_attributions: attribution table locked"
    ]


def test_the_token_never_reaches_the_warehouse_file(
    sqlite_warehouse: Engine, github_config: PoiseConfig, replay_server: ReplayServer
) -> None:
    replay_server.add("/repos/acme/other/deployments", Reply(401, {"message": "Bad credentials"}))
    sync(sqlite_warehouse, github_config)
    sqlite_warehouse.dispose()
    database = Path(str(sqlite_warehouse.url.database))
    for path in [database, *database.parent.glob(database.name + "-*")]:
        assert TOKEN.encode() not in path.read_bytes()


def test_unknown_source_name_is_a_config_error(
    warehouse: Engine, github_config: PoiseConfig
) -> None:
    from poise.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--source: unknown source 'gitub' \(known: github\)"):
        run_sync(
            warehouse, github_config, sources=["gitub"], registry={"github": DeploymentsSource}
        )

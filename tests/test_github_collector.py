"""The GitHub collector against a loopback server replaying GitHub-shaped answers.

One repository story (`Story`) is served: five pull requests (merged, rebase-merged,
from a deleted user and a deleted fork, open, closed), a direct push, five deployments
(one still in progress, one replaced by a later one, one in a mapped environment, one
failed, one in an unmapped production environment), compare pages behind
`/repositories/<id>/` Link URLs, and incident issues. Faults are scripted per test.
"""

from __future__ import annotations

import itertools
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import github_shapes as gh
import pytest
from collector_checks import (
    assert_secret_absent,
    by_id,
    iso,
    links,
    one_service_config,
    replace_route,
    rows,
    snapshot,
    sync,
    sync_through_kills,
)
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine

from collectors.github import GitHubSource, first_review_at, split
from poise.config import PoiseConfig
from poise.warehouse import open_warehouse
from poise.warehouse.sync_state import read_state

TOKEN = "ghp_GitHubT0kenNeverShown0123456789"
REPO, REPO_ID = gh.REPO, gh.REPO_ID
PREFIX = f"github:{REPO}"


def sha(name: str) -> str:
    return name.encode().hex().ljust(40, "0")[:40]


S10, F11, M11, D1, R14A, R14B, P0 = (
    sha(n) for n in ("S10", "F11", "M11", "D1", "R14a", "R14b", "P0")
)


class Story:
    """A small repository history, served the way GitHub serves it (at `repo`, whose id
    is `repo_id`: another name with the same id is the repository renamed)."""

    def __init__(self, server: ReplayServer, repo: str = REPO, repo_id: int = REPO_ID) -> None:
        self.server, self.repo, self.repo_id = server, repo, repo_id
        self.deploy_1003_finished = False
        self.pulls = {
            14: gh.pull(
                14,
                created_at="2024-05-02T15:00:00Z",
                updated_at="2024-05-03T08:00:00Z",
                merged_at="2024-05-03T08:00:00Z",
                merge_commit_sha=R14B,
                author="ghost",
            ),
            12: gh.pull(12, created_at="2024-05-02T10:00:00Z", updated_at="2024-05-02T10:30:00Z"),
            11: gh.pull(
                11,
                created_at="2024-05-01T12:00:00Z",
                updated_at="2024-05-02T09:00:00Z",
                merged_at="2024-05-02T09:00:00Z",
                merge_commit_sha=M11,
                author=None,
                fork_deleted=True,
            ),
            10: gh.pull(
                10,
                created_at="2024-04-29T09:00:00Z",
                updated_at="2024-05-01T10:00:00Z",
                merged_at="2024-05-01T10:00:00Z",
                merge_commit_sha=S10,
                title="Add retry",
            ),
            13: gh.pull(
                13,
                created_at="2024-04-30T09:00:00Z",
                updated_at="2024-05-01T08:00:00Z",
                closed_at="2024-05-01T08:00:00Z",
            ),
        }
        self.first_commits = {
            10: gh.commit(sha("c10"), authored="2024-04-29T08:00:00Z", parents=[P0]),
            11: gh.commit(F11, authored="2024-05-01T11:30:00Z", parents=[S10], author=None),
            14: gh.commit(R14A, authored="2024-05-02T14:00:00Z", parents=[D1]),
        }
        self.reviews = {
            10: [
                gh.review(
                    1, reviewer="alice", state="COMMENTED", submitted_at="2024-04-29T12:00:00Z"
                ),
                gh.review(2, reviewer="bob", state="PENDING", submitted_at=None),
                gh.review(3, reviewer="bob", state="APPROVED", submitted_at="2024-04-30T16:00:00Z"),
            ],
            11: [],
            14: [
                gh.review(4, reviewer="bob", state="APPROVED", submitted_at="2024-05-02T18:00:00Z")
            ],
        }
        self.deployments = [
            gh.deployment(
                1003, sha=R14B, environment="production", created_at="2024-05-03T09:30:00Z"
            ),
            gh.deployment(
                1002, sha=D1, environment="production", created_at="2024-05-02T12:00:00Z"
            ),
            gh.deployment(
                1001, sha=S10, environment="production", created_at="2024-05-01T10:30:00Z"
            ),
            gh.deployment(1000, sha=S10, environment="stage", created_at="2024-05-01T10:10:00Z"),
            gh.deployment(
                999,
                sha=P0,
                environment="prod-eu",
                created_at="2024-04-20T10:00:00Z",
                production=True,
            ),
        ]
        self.issues = [
            gh.issue(
                50,
                created_at="2024-05-02T13:00:00Z",
                updated_at="2024-05-02T14:31:00Z",
                closed_at="2024-05-02T14:30:00Z",
            ),
            gh.issue(
                51,
                created_at="2024-05-02T13:10:00Z",
                updated_at="2024-05-02T14:40:00Z",
                is_pull_request=True,
            ),
            gh.issue(
                52,
                created_at="2024-05-03T07:00:00Z",
                updated_at="2024-05-03T07:05:00Z",
                title="Payments timeouts",
            ),
        ]

    # -- serving ------------------------------------------------------------------------

    def serve(self) -> Story:
        s, repo, repo_id = self.server, f"/repos/{self.repo}", self.repo_id
        # GitHub's ETags differ between repositories (the bodies name them)
        s.add_handler(repo, self.conditional(f'W/"repo-1 {self.repo}"', gh.repository()))
        first_page = [self.pulls[n] for n in (14, 12, 11)]
        link = s.link(
            next=f"/repositories/{repo_id}/pulls?state=all&sort=updated&direction=desc&per_page=100&page=2"
        )
        etag = f'W/"pulls-1 {self.repo}"'
        s.add_handler(f"{repo}/pulls", self.conditional(etag, first_page, {"Link": link}))
        s.add(
            f"/repositories/{repo_id}/pulls",
            Reply(200, [self.pulls[10], self.pulls[13]], gh.rate_headers()),
            query={"page": "2"},
        )
        for number, first in self.first_commits.items():
            s.add(
                f"{repo}/pulls/{number}/commits",
                Reply(200, [first], gh.rate_headers()),
                query={"per_page": "1"},
            )
            s.add(f"{repo}/pulls/{number}/reviews", Reply(200, self.reviews[number]))
        s.add_handler(f"{repo}/deployments", self.deployment_list)
        for item in self.deployments:
            s.add_handler(f"{repo}/deployments/{item['id']}/statuses", self.statuses)
        s.add_handler(f"{repo}/issues", self.issue_list)
        self.serve_compare(
            S10,
            D1,
            [
                [
                    gh.commit(F11, authored="2024-05-01T11:30:00Z", parents=[S10], author=None),
                    gh.commit(
                        M11,
                        authored="2024-05-02T09:00:00Z",
                        parents=[S10, F11],
                        message="Merge pull request #11",
                    ),
                ],
                [
                    gh.commit(
                        D1,
                        authored="2024-05-02T11:00:00Z",
                        parents=[M11],
                        author=None,
                        name="Carol",
                        message="Hotfix: raise timeout\n\nNo PR: the pager was going off",
                    )
                ],
            ],
        )
        self.serve_compare(
            D1,
            R14B,
            [
                [
                    gh.commit(R14A, authored="2024-05-02T14:00:00Z", parents=[D1]),
                    gh.commit(R14B, authored="2024-05-02T14:30:00Z", parents=[R14A]),
                ]
            ],
        )
        s.add(f"{repo}/commits/{D1}/pulls", Reply(200, []))
        s.add(f"{repo}/commits/{R14A}/pulls", Reply(200, [self.pulls[14]]))
        return self

    def conditional(self, etag: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        def answer(request: RecordedRequest) -> Reply:
            if request.header("If-None-Match") == etag:
                return Reply(304, b"", {"ETag": etag, **gh.rate_headers()})
            return Reply(200, body, {"ETag": etag, **gh.rate_headers(), **(headers or {})})

        return answer

    def deployment_list(self, request: RecordedRequest) -> Reply:
        etag = f'W/"deployments-{self.deploy_1003_finished} {self.repo}"'
        if request.header("If-None-Match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(200, self.deployments, {"ETag": etag, **gh.rate_headers()})

    def statuses(self, request: RecordedRequest) -> Reply:
        deployment_id = int(request.path.split("/")[-2])
        env = {1000: "stage", 999: "prod-eu"}.get(deployment_id, "production")

        def status(n: int, state: str, at: str) -> dict[str, Any]:
            return gh.deployment_status(
                deployment_id * 10 + n, state=state, created_at=at, environment=env
            )

        story = {
            1003: [status(2, "success", "2024-05-03T09:45:00Z")]
            if self.deploy_1003_finished
            else [],
            1002: [status(1, "success", "2024-05-02T12:20:00Z")],
            1001: [
                status(3, "inactive", "2024-05-02T12:20:00Z"),
                status(2, "success", "2024-05-01T10:50:00Z"),
            ],
            1000: [status(1, "failure", "2024-05-01T10:20:00Z")],
            999: [status(1, "error", "2024-04-20T10:05:00Z")],
        }[deployment_id]
        story += [status(1, "in_progress", "2024-05-03T09:31:00Z")] if deployment_id == 1003 else []
        story += [status(0, "pending", "2024-05-01T10:30:00Z")] if deployment_id == 1001 else []
        return Reply(200, story, gh.rate_headers())

    def issue_list(self, request: RecordedRequest) -> Reply:
        assert request.query["labels"] == "incident" and request.query["direction"] == "asc"
        since = request.query.get("since", "")
        items = [i for i in self.issues if i["updated_at"] >= since]
        return Reply(200, sorted(items, key=lambda i: i["updated_at"]), gh.rate_headers())

    def serve_compare(self, base: str, head: str, pages: list[list[dict[str, Any]]]) -> None:
        total = sum(len(page) for page in pages)
        for number, page in enumerate(pages, start=1):
            following = (
                {
                    "Link": self.server.link(
                        next=f"/repositories/{self.repo_id}/compare/{base}...{head}?per_page=100&page={number + 1}"
                    )
                }
                if number < len(pages)
                else {}
            )
            path = (
                f"/repos/{self.repo}/compare/{base}...{head}"
                if number == 1
                else f"/repositories/{self.repo_id}/compare/{base}...{head}"
            )
            self.server.add(
                path,
                Reply(200, gh.compare(page, total=total, base=base, head=head), following),
                query={"page": str(number)} if number > 1 else None,
            )


def make_config(
    tmp_path: Path, server: ReplayServer, timeout_seconds: float = 2, **github: Any
) -> PoiseConfig:
    block = {"repo": REPO, "environment_map": {"stage": "staging"}, "incident_label": "incident"}
    settings = {
        "base_url": server.base_url,
        "token_env": "TEST_GITHUB_TOKEN",
        "timeout_seconds": timeout_seconds,
    }
    return one_service_config(tmp_path, "checkout", "github", {**block, **github}, settings)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", TOKEN)


STORY_NOW = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def story(
    replay_server: ReplayServer, http_sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> Story:
    # The story's "now", so that its deployment in progress is recent enough to wait for.
    monkeypatch.setattr("collectors.github.utcnow", lambda: STORY_NOW)
    return Story(replay_server).serve()


def github_sync(engine: Engine, config: PoiseConfig, **kwargs: Any) -> Any:
    return sync(engine, config, GitHubSource, **kwargs)


def test_story_becomes_changes_deployments_links_and_incidents(
    warehouse: Engine, story: Story, replay_server: ReplayServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, replay_server)
    summary = github_sync(warehouse, config)
    assert not summary.failed, summary.result("github").errors

    changes = by_id(warehouse, "changes")
    assert sorted(changes) == [
        f"{PREFIX}:commit:{D1}",
        f"{PREFIX}:pr:10",
        f"{PREFIX}:pr:11",
        f"{PREFIX}:pr:14",
    ]
    pr10 = changes[f"{PREFIX}:pr:10"]
    assert (pr10["sha"], iso(pr10["committed_at"]), iso(pr10["merged_at"])) == (
        S10,
        "2024-04-29T08:00:00Z",
        "2024-05-01T10:00:00Z",
    )
    assert (iso(pr10["opened_at"]), iso(pr10["first_review_at"])) == (
        "2024-04-29T09:00:00Z",
        "2024-04-30T16:00:00Z",
    )
    assert (pr10["pr_number"], pr10["title"], pr10["author"], pr10["source"]) == (
        10,
        "Add retry",
        "alice",
        "github",
    )
    pr11 = changes[f"{PREFIX}:pr:11"]  # deleted user, deleted fork
    assert (pr11["author"], pr11["sha"], iso(pr11["committed_at"]), pr11["first_review_at"]) == (
        "ghost",
        M11,
        "2024-05-01T11:30:00Z",
        None,
    )
    pr14 = changes[f"{PREFIX}:pr:14"]
    assert (pr14["author"], iso(pr14["committed_at"]), iso(pr14["first_review_at"])) == (
        "ghost",
        "2024-05-02T14:00:00Z",
        "2024-05-02T18:00:00Z",
    )
    direct = changes[f"{PREFIX}:commit:{D1}"]
    assert (
        direct["title"],
        direct["author"],
        iso(direct["committed_at"]),
        direct["pr_number"],
    ) == ("Hotfix: raise timeout", "Carol", "2024-05-02T11:00:00Z", None)

    deployments = by_id(warehouse, "deployments")
    assert sorted(deployments) == [f"{PREFIX}:deployment:{n}" for n in (1000, 1001, 1002, 999)]
    seen = {
        k.rsplit(":", 1)[1]: (v["environment"], v["status"], iso(v["deployed_at"]), v["sha"])
        for k, v in deployments.items()
    }
    assert seen == {
        "1002": ("production", "success", "2024-05-02T12:20:00Z", D1),
        "1001": ("production", "success", "2024-05-01T10:50:00Z", S10),  # not the inactive time
        "1000": ("staging", "failure", "2024-05-01T10:20:00Z", S10),
        "999": (
            "production",
            "failure",
            "2024-04-20T10:05:00Z",
            P0,
        ),  # flagged production, unmapped
    }
    assert deployments[f"{PREFIX}:deployment:1002"]["url"] == "https://ci.example/run/10021"
    assert links(warehouse) == {
        (f"{PREFIX}:deployment:1001", f"{PREFIX}:pr:10"),  # the first: its own merge sha's PR
        (f"{PREFIX}:deployment:1002", f"{PREFIX}:pr:11"),  # F11 came with the merge of #11
        (f"{PREFIX}:deployment:1002", f"{PREFIX}:commit:{D1}"),
    }
    incidents = by_id(warehouse, "incidents")
    assert sorted(incidents) == [f"{PREFIX}:issue:50", f"{PREFIX}:issue:52"]  # #51 is a PR
    assert (
        incidents[f"{PREFIX}:issue:50"]["status"],
        iso(incidents[f"{PREFIX}:issue:50"]["resolved_at"]),
    ) == ("resolved", "2024-05-02T14:30:00Z")
    assert (
        incidents[f"{PREFIX}:issue:52"]["status"],
        incidents[f"{PREFIX}:issue:52"]["resolved_at"],
    ) == ("open", None)
    repository = rows(warehouse, "repositories")
    assert [(r["id"], r["kind"], r["branch"]) for r in repository] == [
        ("github:checkout", "github", "main")
    ]

    requests = replay_server.requests
    assert all(r.header("Authorization") == f"Bearer {TOKEN}" for r in requests)
    assert all(r.header("X-GitHub-Api-Version") == "2022-11-28" for r in requests)
    assert replay_server.requests_to(f"/repositories/{REPO_ID}/pulls")[0].query["page"] == "2"
    assert len(replay_server.requests_to(f"/repositories/{REPO_ID}/compare/{S10}...{D1}")) == 1
    # Only merged pull requests cost detail requests; open and closed ones do not.
    assert not replay_server.requests_to(f"/repos/{REPO}/pulls/12/commits")
    assert not replay_server.requests_to(f"/repos/{REPO}/pulls/13/commits")


def test_a_deployment_in_progress_is_picked_up_once_finished_and_a_third_sync_adds_nothing(
    warehouse: Engine, story: Story, replay_server: ReplayServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, replay_server)
    github_sync(warehouse, config)
    story.deploy_1003_finished = False
    served = len(replay_server.requests)
    still = github_sync(warehouse, config).result("github")
    assert (still.new, still.updated, still.errors) == (0, 0, [])
    again = [r.path for r in replay_server.requests[served:]]
    assert f"/repos/{REPO}/deployments/1003/statuses" in again  # held: listed again
    assert f"/repos/{REPO}/deployments/1002/statuses" not in again  # older: not listed again

    story.deploy_1003_finished = True
    finished = github_sync(warehouse, config).result("github")
    assert finished.new >= 1 and not finished.errors
    deployment = by_id(warehouse, "deployments")[f"{PREFIX}:deployment:1003"]
    assert (deployment["status"], iso(deployment["deployed_at"])) == (
        "success",
        "2024-05-03T09:45:00Z",
    )
    # R14a was rebase-merged: asking which PR introduced it finds #14, not a direct push.
    assert (f"{PREFIX}:deployment:1003", f"{PREFIX}:pr:14") in links(warehouse)
    assert f"{PREFIX}:commit:{R14A}" not in by_id(warehouse, "changes")

    served = len(replay_server.requests)
    before = snapshot(warehouse)
    third = github_sync(warehouse, config).result("github")
    assert (third.new, third.updated) == (0, 0)
    assert snapshot(warehouse) == before
    paths = [r.path for r in replay_server.requests[served:]]
    assert paths.count(f"/repos/{REPO}") == 1 and f"/repos/{REPO}/pulls/10/commits" not in paths
    assert not any("/compare/" in path for path in paths)
    with warehouse.connect() as connection:
        state = read_state(connection, "github", "pulls", "checkout")
    assert state.bookmark["cursor"] == "2024-05-03T08:00:00.000000Z" and state.last_error is None


def test_a_killed_sync_resumes_and_ends_with_the_rows_of_an_uninterrupted_one(
    warehouse: Engine, story: Story, replay_server: ReplayServer, tmp_path: Path
) -> None:
    story.deploy_1003_finished = True
    config = make_config(tmp_path, replay_server)
    kills, summary = sync_through_kills(warehouse, config, GitHubSource)
    assert kills >= 3 and not summary.failed, summary.result("github").errors
    uninterrupted = open_warehouse(f"sqlite:///{tmp_path / 'uninterrupted.db'}")
    github_sync(uninterrupted, config)
    assert snapshot(warehouse) == snapshot(uninterrupted)
    uninterrupted.dispose()


def test_rate_limits_are_waited_out_and_the_sync_goes_on(
    sqlite_warehouse: Engine,
    story: Story,
    replay_server: ReplayServer,
    tmp_path: Path,
    http_sleeps: list[float],
) -> None:
    reset = int(time.time()) + 120
    primary = Reply(
        403,
        {
            "message": "API rate limit exceeded for user ID 5012.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        },
        {**gh.rate_headers(remaining=0, reset=reset)},
    )
    secondary = Reply(
        429,
        {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        },
        {"Retry-After": "37"},
    )
    replace_route(
        replay_server, f"/repos/{REPO}/pulls/10/reviews", primary, Reply(200, story.reviews[10])
    )
    replace_route(
        replay_server,
        f"/repos/{REPO}/deployments/1002/statuses",
        secondary,
        Reply(
            200,
            [
                gh.deployment_status(
                    10021,
                    state="success",
                    created_at="2024-05-02T12:20:00Z",
                    environment="production",
                )
            ],
        ),
    )
    summary = github_sync(sqlite_warehouse, make_config(tmp_path, replay_server))
    assert not summary.failed, summary.result("github").errors
    assert 37.0 in http_sleeps
    assert any(110 < wait <= 125 for wait in http_sleeps)  # until x-ratelimit-reset
    assert (
        iso(by_id(sqlite_warehouse, "changes")[f"{PREFIX}:pr:10"]["first_review_at"])
        == "2024-04-30T16:00:00Z"
    )


@pytest.mark.parametrize(
    ("route", "reply", "expected"),
    [
        (
            f"/repos/{REPO}/deployments",
            Reply(200, b"<html><body>Unicorn!</body></html>"),
            "github: malformed response from http://127.0.0.1:{port}/repos/acme/checkout/deployments?per_page=100 (HTTP 200, not JSON: '<html><body>Unicorn!</body></html>'): check that base_url points at the API",
        ),
        (
            f"/repos/{REPO}/deployments",
            Reply(500, {"message": "Server Error"}),
            "github: HTTP 500 from http://127.0.0.1:{port}/repos/acme/checkout/deployments?per_page=100 persisted after 3 tries: the service may be down; collected pages are kept, run `poise sync` again later",
        ),
        (
            f"/repos/{REPO}/deployments",
            Reply(
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            ),
            "github: token expired or invalid (HTTP 401 at http://127.0.0.1:{port}/repos/acme/checkout/deployments?per_page=100): check $TEST_GITHUB_TOKEN",
        ),
        (
            f"/repos/{REPO}/deployments",
            Reply(200, [], delay=1.0),
            "github: no answer within 0.3s from http://127.0.0.1:{port}/repos/acme/checkout/deployments?per_page=100 after 3 tries: the service may be down or slow; try again later or raise timeout_seconds",
        ),
    ],
    ids=["garbage", "500-persists", "401", "timeout"],
)
def test_a_failing_endpoint_is_one_line_and_earlier_streams_are_kept(
    sqlite_warehouse: Engine,
    story: Story,
    replay_server: ReplayServer,
    tmp_path: Path,
    route: str,
    reply: Reply,
    expected: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    replace_route(replay_server, route, reply)
    caplog.set_level(logging.DEBUG)
    config = make_config(tmp_path, replay_server, timeout_seconds=0.3 if reply.delay else 2)
    summary = github_sync(sqlite_warehouse, config)
    port = replay_server.base_url.rsplit(":", 1)[1]
    assert summary.result("github").errors == [expected.format(port=port)]
    assert len(by_id(sqlite_warehouse, "changes")) == 3  # the pull requests, stored before
    assert by_id(sqlite_warehouse, "deployments") == {}
    with sqlite_warehouse.connect() as connection:
        state = read_state(connection, "github", "deployments", "checkout")
    assert state.bookmark is None and state.last_error == expected.format(port=port)
    assert_secret_absent(TOKEN, sqlite_warehouse, caplog.text, *summary.result("github").errors)


def test_a_missing_repository_is_one_line(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    summary = github_sync(sqlite_warehouse, make_config(tmp_path, replay_server))
    (error,) = summary.result("github").errors
    assert error == (
        f"github: not found (HTTP 404 at {replay_server.base_url}/repos/{REPO}): check the "
        "repository (services[].github.repo) in poise.yaml and that the token can see it"
    )


def test_the_token_is_nowhere_but_the_authorization_header(
    sqlite_warehouse: Engine,
    story: Story,
    replay_server: ReplayServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    replace_route(
        replay_server,
        f"/repos/{REPO}/issues",
        Reply(403, {"message": "Resource not accessible by integration"}),
    )
    summary = github_sync(sqlite_warehouse, make_config(tmp_path, replay_server))
    (error,) = summary.result("github").errors
    assert "access denied (HTTP 403" in error and "check $TEST_GITHUB_TOKEN" in error
    assert all(TOKEN not in f"{r.path}{r.query}" for r in replay_server.requests)
    assert_secret_absent(TOKEN, sqlite_warehouse, caplog.text, error)


def test_enterprise_base_url_with_an_api_prefix(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    replay_server.add("/api/v3/repos/acme/checkout", Reply(200, gh.repository()))
    replay_server.add("/api/v3/repos/acme/checkout/pulls", Reply(200, []))
    replay_server.add("/api/v3/repos/acme/checkout/deployments", Reply(200, []))
    config = make_config(tmp_path, replay_server, incident_label=None)
    config = config.model_copy(
        update={
            "sources": config.sources.model_copy(
                update={
                    "github": config.sources.github.model_copy(
                        update={"base_url": replay_server.base_url + "/api/v3"}
                    )
                }
            )
        }
    )
    summary = github_sync(sqlite_warehouse, config)
    assert not summary.failed, summary.result("github").errors
    assert {r.path for r in replay_server.requests} == {
        "/api/v3/repos/acme/checkout",
        "/api/v3/repos/acme/checkout/pulls",
        "/api/v3/repos/acme/checkout/deployments",
    }


# -- workflow runs: windows under the 1,000-result cap -------------------------------------


class Runs:
    """Generated runs of one workflow, served with GitHub's `created` filter and result cap
    (of the repository `repo`, whose id is `repo_id`)."""

    def __init__(
        self,
        server: ReplayServer,
        runs: list[dict[str, Any]],
        workflow_id: int = 1903133,
        repo: str = REPO,
        repo_id: int = REPO_ID,
    ) -> None:
        self.server, self.runs, self.workflow_id = server, runs, workflow_id
        self.repo_id = repo_id
        self.windows: list[str] = []
        path = f"/repos/{repo}/actions/workflows/{workflow_id}/runs"
        server.add_handler(path, self.answer)
        server.add_handler(
            f"/repositories/{repo_id}/actions/workflows/{workflow_id}/runs", self.answer
        )
        server.add(
            f"/repos/{repo}/actions/workflows",
            Reply(
                200,
                {
                    "total_count": 2,
                    "workflows": [
                        gh.workflow(1903001, "CI", ".github/workflows/ci.yml"),
                        gh.workflow(workflow_id, "Deploy", ".github/workflows/deploy.yml"),
                    ],
                },
            ),
        )

    def answer(self, request: RecordedRequest) -> Reply:
        first, last = request.query["created"].split("..")
        page, per_page = int(request.query.get("page", 1)), int(request.query["per_page"])
        if page == 1:
            self.windows.append(request.query["created"])
        found = sorted(
            (r for r in self.runs if first <= r["created_at"] <= last),
            key=lambda r: r["id"],
            reverse=True,
        )
        capped = found[:1000]
        items = capped[(page - 1) * per_page : page * per_page]
        headers = gh.rate_headers()
        if page * per_page < len(capped):
            query = f"created={first}..{last}&per_page={per_page}&page={page + 1}"
            headers["Link"] = self.server.link(
                next=f"/repositories/{self.repo_id}/actions/workflows/{self.workflow_id}/runs?{query}"
            )
        return Reply(200, {"total_count": len(found), "workflow_runs": items}, headers)


def generated_runs(count: int, start: datetime, step: timedelta) -> list[dict[str, Any]]:
    return [
        gh.run(
            9021700000 + i,
            created_at=(start + step * i).strftime("%Y-%m-%dT%H:%M:%SZ"),
            head_sha=f"{i // 100:040x}",
            conclusion="failure" if i % 10 == 0 else "success",
        )
        for i in range(count)
    ]


def test_workflow_runs_are_listed_in_windows_that_stay_under_the_result_cap(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    replay_server.add(
        f"/repos/{REPO}", Reply(200, gh.repository(created_at="2024-01-01T00:00:00Z"))
    )
    replay_server.add(f"/repos/{REPO}/pulls", Reply(200, []))
    runs = Runs(
        replay_server, generated_runs(2600, datetime(2024, 2, 1, tzinfo=UTC), timedelta(minutes=7))
    )
    config = make_config(tmp_path, replay_server, incident_label=None, deploy_workflow="Deploy")
    summary = github_sync(sqlite_warehouse, config)
    assert not summary.failed, summary.result("github").errors
    assert len(rows(sqlite_warehouse, "ci_runs")) == 2600
    deployments = by_id(sqlite_warehouse, "deployments")
    assert len(deployments) == 2600
    assert sum(d["status"] == "failure" for d in deployments.values()) == 260
    assert {d["environment"] for d in deployments.values()} == {"production"}
    assert len(runs.windows) > 3  # the whole range was too many for one listing
    assert not replay_server.requests_to(f"/repos/{REPO}/deployments")  # the workflow gives them
    windows = len(runs.windows)
    again = github_sync(sqlite_warehouse, config).result("github")
    assert (again.new, again.updated) == (0, 0)
    assert len(runs.windows) == windows + 1  # from the bookmark on: one window
    # The bookmark is where the last window ended, less three days for re-runs.
    resumed_from = datetime.fromisoformat(runs.windows[-1].split("..")[0])
    assert abs(datetime.now(UTC) - timedelta(days=3) - resumed_from) < timedelta(minutes=10)


def test_deploy_branches_keep_runs_of_other_branches_out_of_the_deployments(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    """A deploy workflow that also runs on feature branches (a staging deploy, a dry run):
    only runs on `deploy_branches` (a branch, or the tag a run was started for) deploy to
    production; every run stays a CI run. Set after a first sync, `--full` removes the
    deployments the other branches' runs had made."""
    replay_server.add(
        f"/repos/{REPO}", Reply(200, gh.repository(created_at="2024-01-01T00:00:00Z"))
    )
    replay_server.add(f"/repos/{REPO}/pulls", Reply(200, []))
    start = datetime(2024, 2, 1, tzinfo=UTC)
    branches = ["main", "feature/login", "v1.4.0", "main", "renovate/pandas-3.x", "release/7"]
    Runs(
        replay_server,
        [
            gh.run(
                9021700000 + i,
                created_at=(start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                head_sha=f"{i:040x}",
                head_branch=branch,
                run_attempt=2 if branch == "feature/login" else 1,
            )
            for i, branch in enumerate(branches)
        ],
    )
    everything = make_config(tmp_path, replay_server, incident_label=None, deploy_workflow="Deploy")
    assert not github_sync(sqlite_warehouse, everything).failed
    assert len(by_id(sqlite_warehouse, "deployments")) == 6

    config = make_config(
        tmp_path,
        replay_server,
        incident_label=None,
        deploy_workflow="Deploy",
        deploy_branches=["main", "release/*", "v*"],
    )
    full = github_sync(sqlite_warehouse, config, full=True).result("github")
    assert full.errors == [] and full.updated >= 2
    wanted = {i for i, branch in enumerate(branches) if "/" not in branch or "release" in branch}
    assert sorted(by_id(sqlite_warehouse, "deployments")) == sorted(
        f"github:{REPO}:run:{9021700000 + i}" for i in wanted
    )
    assert len(rows(sqlite_warehouse, "ci_runs")) == 6
    again = github_sync(sqlite_warehouse, config).result("github")
    assert (again.errors, again.new, again.updated) == ([], 0, 0)


def deploy_job_reply(
    job_id: int, now: datetime, *, conclusion: str, minutes: tuple[int, int]
) -> Reply:
    """The jobs of run 502: its deploy job, started and completed `minutes` before `now`."""
    started, completed = (
        (now - timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ") for m in minutes
    )
    job = gh.job(
        job_id,
        502,
        name="deploy (production)",
        conclusion=conclusion,
        started_at=started,
        completed_at=completed,
    )
    return Reply(200, {"total_count": 1, "jobs": [job]})


def test_a_running_deploy_job_is_picked_up_when_it_completes_and_a_rerun_is_a_deployment_of_its_own(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    replay_server.add(f"/repos/{REPO}", Reply(200, gh.repository()))
    replay_server.add(f"/repos/{REPO}/pulls", Reply(200, []))
    older = gh.run(
        501,
        created_at=stamp(now - timedelta(hours=3)),
        head_sha=S10,
        updated_at=stamp(now - timedelta(hours=2)),
    )
    running = gh.run(
        502,
        created_at=stamp(now - timedelta(hours=1)),
        head_sha=D1,
        status="in_progress",
        conclusion=None,
    )
    runs = Runs(replay_server, [older, running])
    jobs = {
        501: [
            gh.job(
                7001,
                501,
                name="test",
                conclusion="success",
                started_at=stamp(now - timedelta(hours=3)),
                completed_at=stamp(now - timedelta(minutes=170)),
            ),
            gh.job(
                7002,
                501,
                name="deploy (production)",
                conclusion="success",
                started_at=stamp(now - timedelta(minutes=170)),
                completed_at=stamp(now - timedelta(minutes=150)),
            ),
        ],
    }
    replay_server.add_handler(
        f"/repos/{REPO}/actions/runs/501/jobs",
        lambda r: Reply(200, {"total_count": 2, "jobs": jobs[501]}),
    )
    config = make_config(
        tmp_path,
        replay_server,
        incident_label=None,
        deploy_workflow="deploy.yml",
        deploy_job="deploy*",
    )
    github_sync(sqlite_warehouse, config)
    deployments = by_id(sqlite_warehouse, "deployments")
    assert list(deployments) == [f"{PREFIX}:run:501"]
    assert iso(deployments[f"{PREFIX}:run:501"]["deployed_at"]) == stamp(
        now - timedelta(minutes=150)
    )
    assert by_id(sqlite_warehouse, "ci_runs")[f"{PREFIX}:run:502"]["status"] == "running"
    assert not replay_server.requests_to(f"/repos/{REPO}/actions/runs/502/jobs")  # not finished

    running.update(
        status="completed", conclusion="failure", updated_at=stamp(now - timedelta(minutes=20))
    )
    replay_server.add(
        f"/repos/{REPO}/actions/runs/502/jobs",
        deploy_job_reply(7003, now, conclusion="failure", minutes=(40, 25)),
    )
    github_sync(sqlite_warehouse, config)
    deployment = by_id(sqlite_warehouse, "deployments")[f"{PREFIX}:run:502"]
    assert (deployment["status"], iso(deployment["deployed_at"])) == (
        "failure",
        stamp(now - timedelta(minutes=25)),
    )

    # A re-run keeps the run's id: its ci_run is updated; the attempt is a deployment of
    # its own (the failed first attempt stays where and what it was).
    running.update(
        run_attempt=2, conclusion="success", updated_at=stamp(now - timedelta(minutes=5))
    )
    replace_route(
        replay_server,
        f"/repos/{REPO}/actions/runs/502/jobs",
        deploy_job_reply(7004, now, conclusion="success", minutes=(10, 6)),
    )
    rerun = github_sync(sqlite_warehouse, config).result("github")
    assert (rerun.new, rerun.updated) == (1, 1)  # the attempt's deployment; the ci_run
    deployments = by_id(sqlite_warehouse, "deployments")
    assert (deployments[f"{PREFIX}:run:502"]["status"]) == "failure"
    deployment = deployments[f"{PREFIX}:run:502:attempt:2"]
    assert (deployment["status"], iso(deployment["deployed_at"])) == (
        "success",
        stamp(now - timedelta(minutes=6)),
    )
    assert not replay_server.requests_to(f"/repos/{REPO}/actions/runs/502/attempts/1")  # stored
    # The unchanged older run is listed again (within three days) but its jobs are not asked.
    assert len(replay_server.requests_to(f"/repos/{REPO}/actions/runs/501/jobs")) == 1
    assert len(runs.windows) == 3


def test_window_split_covers_every_second_once() -> None:
    first = datetime(2024, 1, 1, tzinfo=UTC)
    last = first + timedelta(seconds=99)
    windows = split(first, last, 3)
    assert windows[0][0] == first and windows[-1][1] == last
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start == end + timedelta(seconds=1)


def test_releases_are_deployments_at_their_publication(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    replay_server.add(f"/repos/{REPO}", Reply(200, gh.repository()))
    replay_server.add(f"/repos/{REPO}/pulls", Reply(200, []))
    replay_server.add(
        f"/repos/{REPO}/releases",
        Reply(
            200,
            [
                gh.release(3, "v1.9.0", published_at=None, draft=True),
                gh.release(2, "v1.8.1-rc1", published_at="2024-05-04T10:00:00Z", prerelease=True),
                gh.release(1, "release/v1.8.0", published_at="2024-05-03T10:30:00Z"),
            ],
            {"ETag": 'W/"rel"'},
        ),
    )
    replay_server.add(
        f"/repos/{REPO}/commits/release%2Fv1.8.0",
        Reply(200, gh.commit(R14B, authored="2024-05-02T14:30:00Z", parents=[R14A])),
    )
    config = make_config(tmp_path, replay_server, incident_label=None, use_releases=True)
    assert not github_sync(sqlite_warehouse, config).failed
    deployments = by_id(sqlite_warehouse, "deployments")
    assert list(deployments) == [f"{PREFIX}:release:1"]
    release = deployments[f"{PREFIX}:release:1"]
    assert (release["sha"], iso(release["deployed_at"]), release["status"]) == (
        R14B,
        "2024-05-03T10:30:00Z",
        "success",
    )
    assert not replay_server.requests_to(f"/repos/{REPO}/deployments")


@pytest.mark.parametrize(
    ("author", "reviewer", "state", "counts"),
    [
        ("alice", "bob", "COMMENTED", True),
        ("alice", "alice", "COMMENTED", False),  # the author answering in a review
        ("alice", None, "COMMENTED", True),  # a deleted reviewer is not the author
        (None, "bob", "COMMENTED", True),
        (None, None, "COMMENTED", False),  # both deleted: may be the author's own comment
        (None, None, "APPROVED", True),  # GitHub refuses an approval from the author
        (None, None, "CHANGES_REQUESTED", True),
        (None, {"login": "ghost"}, "APPROVED", True),  # GitHub's own placeholder user
    ],
)
def test_a_review_counts_when_it_cannot_be_the_authors_own(
    author: str | None, reviewer: Any, state: str, counts: bool
) -> None:
    def user(name: Any) -> Any:
        return {"login": name, "id": 1} if isinstance(name, str) else name

    pull = {
        "user": user(author),
        "_reviews": [
            {"user": user(reviewer), "state": state, "submitted_at": "2024-05-02T18:00:00Z"}
        ],
    }
    expected = datetime(2024, 5, 2, 18, tzinfo=UTC) if counts else None
    assert first_review_at(pull) == expected

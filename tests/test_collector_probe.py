"""The HTTP collectors against odd but real API answers, each served by a loopback server.

Each test here is a probe that found a fault: a 503 in maintenance retried before it said
to, a 403 whose reason (SAML SSO, an IP allow list) was dropped, paging that never ends
(a `Link` to itself, a proxy that ignores the query string, a Jenkins that ignores tree
ranges), GitLab's newer `canceling` status failing the sync, an empty GitLab sha stored
as "", a Jenkins checkout without a SHA1 stored as the text "None", a Jenkins build with
no result or no start time, and a PagerDuty incident resolved without a resolve time.
The stories and shapes come from the collectors' own tests (tests/test_*_collector.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import test_github_collector as github_story
import test_gitlab_collector as gitlab_story
import test_pagerduty_collector as pagerduty_story
from collector_checks import by_id, one_service_config, sync
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine
from test_http_client import NOW, make_client
from test_jenkins_collector import build

from collectors.github import GitHubSource
from collectors.gitlab import GitLabSource
from collectors.http import AuthError, ServerError, SourceError
from collectors.jenkins import JenkinsSource
from poise.config import PoiseConfig
from poise.warehouse import schema

REPEATS = 6  # a looping server gives up after this many answers, so a probe always ends


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", github_story.TOKEN)
    monkeypatch.setenv("TEST_GITLAB_TOKEN", gitlab_story.TOKEN)
    monkeypatch.setenv("TEST_PAGERDUTY_TOKEN", pagerduty_story.TOKEN)
    monkeypatch.setenv("TEST_JENKINS_TOKEN", "jenkins-api-token")
    monkeypatch.setenv("TEST_JENKINS_USER", "ci-bot")


# -- the HTTP client ------------------------------------------------------------------------


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone other than UTC: an HTTP date read as local time would be off."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("120", 120.0),
        (format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True), 90.0),
        # `-0000` (RFC 5322's "zone unknown") parses as a naive datetime: still UTC
        (format_datetime(datetime.fromtimestamp(NOW + 45, UTC)).replace("+0000", "-0000"), 45.0),
    ],
    ids=["seconds", "http-date", "http-date-0000"],
)
def test_a_503_in_maintenance_is_retried_once_its_retry_after_has_passed(
    replay_server: ReplayServer, new_york: None, retry_after: str, wait: float
) -> None:
    replay_server.add(
        "/repos/acme/svc/pulls",
        Reply(503, b"<html>Down for maintenance</html>", {"Retry-After": retry_after}),
        Reply(200, []),
    )
    client, sleeps = make_client(replay_server)
    assert client.get("/repos/acme/svc/pulls").json() == []
    assert sleeps == [wait]  # not 1 s of back-off, spending the retries before it is back


def test_a_503_asking_for_longer_than_poise_waits_fails_at_once_and_says_so(
    replay_server: ReplayServer,
) -> None:
    replay_server.add("/repos/acme/svc/pulls", Reply(503, b"Maintenance", {"Retry-After": "7200"}))
    client, sleeps = make_client(replay_server)
    with pytest.raises(ServerError) as caught:
        client.get("/repos/acme/svc/pulls")
    assert str(caught.value) == (
        f"github: HTTP 503 from {replay_server.base_url}/repos/acme/svc/pulls: the service asks "
        "to come back in 7200s, longer than Poise waits; collected pages are kept, run "
        "`poise sync` again then"
    )
    assert sleeps == [] and len(replay_server.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "error", "says"),
    [
        (
            403,
            {
                "message": "Resource protected by organization SAML enforcement. You must "
                "grant your Personal Access token access to this organization.",
                "documentation_url": "https://docs.github.com/articles/authenticating-with-saml",
            },
            AuthError,
            'access denied (HTTP 403 at {url}: "Resource protected by organization SAML '
            "enforcement. You must grant your Personal Access token access to this "
            "organization.\"): check $GITHUB_TOKEN and the token's permissions for this resource",
        ),
        (
            403,
            {
                "error": {
                    "message": "Access Denied",
                    "code": 2010,
                    "errors": ["The IP address 203.0.113.9 is not on the allow list"],
                }
            },
            AuthError,
            'access denied (HTTP 403 at {url}: "Access Denied: The IP address 203.0.113.9 is '
            "not on the allow list\"): check $GITHUB_TOKEN and the token's permissions for "
            "this resource",
        ),
        (
            409,
            {"message": "Git Repository is empty.", "documentation_url": "https://docs.github.com"},
            SourceError,
            "HTTP 409 from {url}: Git Repository is empty.",
        ),
    ],
    ids=["github-saml", "pagerduty-ip-allow-list", "other-status"],
)
def test_a_refusal_says_what_the_api_said(
    replay_server: ReplayServer, status: int, body: Any, error: type, says: str
) -> None:
    replay_server.add("/repos/acme/svc/pulls", Reply(status, body))
    client, sleeps = make_client(replay_server)
    with pytest.raises(error) as caught:
        client.get("/repos/acme/svc/pulls")
    url = f"{replay_server.base_url}/repos/acme/svc/pulls"
    assert str(caught.value) == "github: " + says.format(url=url)
    assert sleeps == []


# -- paging that does not move on ----------------------------------------------------------


def answer_instead(server: ReplayServer, path: str, handler: Any) -> None:
    """`path` answered by `handler` alone, whatever answered it before."""
    server.routes = [route for route in server.routes if route.path != path]
    server.add_handler(path, handler)


def looping(
    first: Reply, last: Reply
) -> tuple[dict[str, int], Any]:  # (answers given, the handler)
    """A handler answering `first` REPEATS times, then `last` (so that a probe ends)."""
    served = {"n": 0}

    def answer(request: RecordedRequest) -> Reply:
        served["n"] += 1
        return first if served["n"] <= REPEATS else last

    return served, answer


def test_a_github_next_link_to_the_same_page_is_one_line_and_the_page_is_kept(
    sqlite_warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    http_sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("collectors.github.utcnow", lambda: github_story.STORY_NOW)
    story = github_story.Story(replay_server).serve()
    path = f"/repos/{github_story.REPO}/pulls"
    itself = replay_server.url(f"{path}?state=all&sort=updated&direction=desc&per_page=100")
    page = [story.pulls[n] for n in (14, 12, 11)]
    served, answer = looping(
        Reply(200, page, {"Link": f'<{itself}>; rel="next"'}), Reply(200, page)
    )
    answer_instead(replay_server, path, answer)
    summary = sync(
        sqlite_warehouse, github_story.make_config(tmp_path, replay_server), GitHubSource
    )
    assert summary.result("github").errors == [
        f"github: {itself} answered with the page before it again (a cache or proxy ignoring "
        "the query string?): paging stopped, earlier pages are kept; check base_url"
    ]
    assert served["n"] == 2
    prefix = github_story.PREFIX
    assert sorted(by_id(sqlite_warehouse, "changes")) == [f"{prefix}:pr:11", f"{prefix}:pr:14"]


def gitlab_pipelines(server: ReplayServer, answer: Any) -> str:
    """GitLab's story (tests/test_gitlab_collector.py) with its pipelines answered by
    `answer`; returns their path."""
    gitlab_story.Story(server).serve()
    path = f"{gitlab_story.API}/pipelines"
    answer_instead(server, path, answer)
    return path


def test_a_gitlab_proxy_that_ignores_the_page_parameter_is_one_line(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    pipelines = [
        gitlab_story.pipeline(1078343570, status="success", updated_at="2024-05-03T10:24:29.757Z")
    ]
    served, answer = looping(
        Reply(200, pipelines, {"x-page": "1", "x-next-page": "2"}),
        Reply(200, pipelines, {"x-page": "1", "x-next-page": ""}),
    )
    path = gitlab_pipelines(replay_server, answer)
    summary = sync(
        sqlite_warehouse, gitlab_story.make_config(tmp_path, replay_server), GitLabSource
    )
    (error,) = summary.result("gitlab").errors
    assert error.startswith(
        f"gitlab: {replay_server.base_url}{path}?order_by=updated_at&sort=asc&per_page=100&page=2 "
        "answered with the page before it again"
    )
    assert served["n"] == 2
    assert len(by_id(sqlite_warehouse, "changes")) == 3  # the merge requests, stored before


# -- GitLab ----------------------------------------------------------------------------------


def test_a_gitlab_pipeline_canceling_or_waiting_for_a_callback_is_still_running(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    pipelines = [
        gitlab_story.pipeline(7, status="canceling", updated_at="2024-05-03T10:24:29.757Z"),
        gitlab_story.pipeline(8, status="waiting_for_callback", updated_at="2024-05-03T10:25:00Z"),
    ]

    def updated_after(request: RecordedRequest) -> Reply:
        since = request.query.get("updated_after", "")
        return Reply(200, [p for p in pipelines if p["updated_at"] > since], {"x-next-page": ""})

    gitlab_pipelines(replay_server, updated_after)
    config = gitlab_story.make_config(tmp_path, replay_server)
    summary = sync(sqlite_warehouse, config, GitLabSource)
    assert not summary.failed, summary.result("gitlab").errors
    runs = by_id(sqlite_warehouse, "ci_runs")
    prefix = gitlab_story.PREFIX
    assert [(runs[f"{prefix}:pipeline:{n}"]["status"]) for n in (7, 8)] == ["running"] * 2
    assert runs[f"{prefix}:pipeline:7"]["finished_at"] is None

    pipelines[0].update(status="canceled", updated_at="2024-05-03T10:26:00.000Z")
    assert not sync(sqlite_warehouse, config, GitLabSource).failed
    canceled = by_id(sqlite_warehouse, "ci_runs")[f"{prefix}:pipeline:7"]
    assert canceled["status"] == "cancelled" and canceled["finished_at"] is not None


def test_a_status_word_poise_does_not_know_fails_that_scope_in_one_line(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    """A word GitLab adds one day: no guess (it could count a failure as a success), and
    not an internal error either."""
    pipeline = gitlab_story.pipeline(9, status="quarantined", updated_at="2024-05-03T10:24:29Z")
    gitlab_pipelines(replay_server, lambda request: Reply(200, [pipeline], {"x-next-page": ""}))
    summary = sync(
        sqlite_warehouse, gitlab_story.make_config(tmp_path, replay_server), GitLabSource
    )
    errors = summary.result("gitlab").errors
    assert summary.failed and len(errors) == 1
    assert "status 'quarantined' is not one Poise knows" in errors[0]
    assert "internal error" not in errors[0] and "\n" not in errors[0]


def test_a_gitlab_deployment_with_an_empty_sha_has_none(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    story = gitlab_story.Story(replay_server).serve()
    story.more_deployments = [
        gitlab_story.deployment(
            13426800,
            status="success",
            sha_="",
            env="production",
            updated_at="2024-05-03T15:00:00.000Z",
            job=None,
        )
    ]
    summary = sync(
        sqlite_warehouse, gitlab_story.make_config(tmp_path, replay_server), GitLabSource
    )
    assert not summary.failed, summary.result("gitlab").errors
    stored = by_id(sqlite_warehouse, "deployments")[f"{gitlab_story.PREFIX}:deployment:13426800"]
    assert stored["sha"] is None  # not "", which a sha lookup would match


# -- Jenkins ---------------------------------------------------------------------------------

JOB_PATH = "/job/acme/job/ledger/job/main/api/json"
JENKINS_PREFIX = "jenkins:acme/ledger/main:build"


def jenkins_config(tmp_path: Path, server: ReplayServer) -> PoiseConfig:
    settings = {
        "base_url": server.base_url,
        "token_env": "TEST_JENKINS_TOKEN",
        "user_env": "TEST_JENKINS_USER",
    }
    return one_service_config(tmp_path, "ledger", "jenkins", {"job": "acme/ledger/main"}, settings)


def serve_builds(server: ReplayServer, builds: list[dict[str, Any]]) -> None:
    newest_first = sorted(builds, key=lambda b: -b["number"])
    answer_instead(server, JOB_PATH, lambda _request: Reply(200, {"allBuilds": newest_first}))


def test_a_jenkins_checkout_without_a_sha1_has_no_sha_rather_than_the_text_none(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    nameless = build(2, result="SUCCESS", sha=None)
    nameless["actions"].append(
        {
            "_class": "hudson.plugins.git.util.BuildData",
            "lastBuiltRevision": {"SHA1": None, "branch": []},
            "remoteUrls": ["git@github.com:acme/ledger.git"],
        }
    )
    serve_builds(replay_server, [build(1, result="SUCCESS", sha="a" * 40), nameless])
    summary = sync(sqlite_warehouse, jenkins_config(tmp_path, replay_server), JenkinsSource)
    assert not summary.failed, summary.result("jenkins").errors
    assert by_id(sqlite_warehouse, "deployments")[f"{JENKINS_PREFIX}:2"]["sha"] is None
    assert by_id(sqlite_warehouse, "ci_runs")[f"{JENKINS_PREFIX}:2"]["sha"] is None


def test_a_jenkins_build_without_a_result_is_running_until_it_has_one(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    pending = build(2, result=None, sha="b" * 40)
    pending["building"] = False  # done building, its result not recorded yet
    pending["timestamp"] = int(time.time() * 1000) - 60_000
    serve_builds(replay_server, [build(1, result="SUCCESS", sha="a" * 40), pending])
    config = jenkins_config(tmp_path, replay_server)
    assert not sync(sqlite_warehouse, config, JenkinsSource).failed
    run = by_id(sqlite_warehouse, "ci_runs")[f"{JENKINS_PREFIX}:2"]
    assert (run["status"], run["finished_at"]) == ("running", None)
    assert f"{JENKINS_PREFIX}:2" not in by_id(sqlite_warehouse, "deployments")

    pending.update(result="FAILURE", duration=42_000)  # read again: it held the bookmark
    serve_builds(replay_server, [build(1, result="SUCCESS", sha="a" * 40), pending])
    assert not sync(sqlite_warehouse, config, JenkinsSource).failed
    assert by_id(sqlite_warehouse, "deployments")[f"{JENKINS_PREFIX}:2"]["status"] == "failure"


def test_a_jenkins_build_without_a_start_time_is_skipped_with_a_warning(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    zero, missing = build(2, result="SUCCESS", sha="b" * 40), build(3, result="FAILURE", sha=None)
    zero["timestamp"] = 0
    del missing["timestamp"]
    serve_builds(replay_server, [build(1, result="SUCCESS", sha="a" * 40), zero, missing])
    summary = sync(sqlite_warehouse, jenkins_config(tmp_path, replay_server), JenkinsSource)
    result = summary.result("jenkins")
    assert not result.failed, result.errors
    assert result.warnings == [
        f"jenkins: ledger: build {n} of acme/ledger/main has no start time; skipped" for n in (3, 2)
    ]
    assert sorted(by_id(sqlite_warehouse, "ci_runs")) == [f"{JENKINS_PREFIX}:1"]
    assert sorted(by_id(sqlite_warehouse, "deployments")) == [f"{JENKINS_PREFIX}:1"]


def test_a_jenkins_that_ignores_tree_ranges_is_one_line_not_an_endless_first_sync(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    builds = [build(n, result="SUCCESS", sha="a" * 40) for n in range(200, 100, -1)]
    served, answer = looping(Reply(200, {"allBuilds": builds}), Reply(200, {"allBuilds": []}))
    answer_instead(replay_server, JOB_PATH, answer)
    summary = sync(sqlite_warehouse, jenkins_config(tmp_path, replay_server), JenkinsSource)
    (error,) = summary.result("jenkins").errors
    assert error.startswith(f"jenkins: {replay_server.base_url}{JOB_PATH}?tree=allBuilds")
    assert "answered with the page before it again" in error
    assert served["n"] == 2 and len(by_id(sqlite_warehouse, "ci_runs")) == 100


# -- PagerDuty ---------------------------------------------------------------------------------


def test_a_pagerduty_incident_resolved_without_its_resolve_time_resolves_at_its_last_update(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path
) -> None:
    fake = pagerduty_story.account(replay_server)
    incident = fake.incidents["Q1AAAAAAAAAAAA"]
    incident["resolved_at"] = None
    del incident["last_status_change_at"]
    summary, _ = pagerduty_story.sync(
        sqlite_warehouse, pagerduty_story.make_config(tmp_path, replay_server)
    )
    assert not summary.failed, summary.result("pagerduty").errors
    stored = pagerduty_story.table(sqlite_warehouse, schema.incidents)["pagerduty:Q1AAAAAAAAAAAA"]
    assert (stored["status"], stored["resolved_at"]) == (
        "resolved",
        datetime(2026, 3, 3, 9, 10, tzinfo=UTC),
    )

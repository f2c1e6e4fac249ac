"""The Jenkins collector against a loopback server replaying Jenkins-shaped answers (api-facts.md §3).

A multibranch job `acme/ledger/main` has 150 builds, served newest first through
`allBuilds{M,N}` tree ranges: the newest is still running (`result: null`,
`building: true`, `duration: 0`), others failed, were aborted or not built, one checked
out a shared library before the service's repository. The builds' shas are commits of
a real Git repository made in a temp folder, so the Git collector's changes get linked.
"""

from __future__ import annotations

import base64
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from collector_checks import (
    assert_secret_absent,
    by_id,
    links,
    replace_route,
    rows,
    snapshot,
    sync,
    sync_through_kills,
)
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine
from test_git_collector import Repo

from collectors.git import GitSource
from collectors.jenkins import TREE, JenkinsSource
from collectors.runner import run_sync
from poise.catalog import apply_config
from poise.config import PoiseConfig, parse_config
from poise.warehouse import open_warehouse

TOKEN = "11a3f0c9e7b2d4JenkinsApiT0ken"
USER = "ci-bot"
JOB_PATH = "/job/acme/job/ledger/job/main/api/json"
PREFIX = "jenkins:acme/ledger/main:build"
START = datetime(2024, 5, 1, tzinfo=UTC)
NOW = START + timedelta(minutes=1510)


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def checkout(sha: str, remote: str = "git@github.com:acme/ledger.git") -> dict[str, Any]:
    return {
        "_class": "hudson.plugins.git.util.BuildData",
        "lastBuiltRevision": {"SHA1": sha, "branch": [{"name": "main"}]},
        "remoteUrls": [remote],
    }


def build(number: int, *, result: str | None, sha: str | None, library: bool = False) -> dict:
    running = result is None
    actions: list[dict[str, Any]] = [
        {"_class": "hudson.model.CauseAction"},
        {},
        {},
    ]
    if library:
        actions.insert(1, checkout("0" * 40, "https://github.com/acme/jenkins-lib.git"))
    if sha is not None:
        actions.append(checkout(sha))
    return {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        "number": number,
        "url": f"https://ci.example/job/acme/job/ledger/job/main/{number}/",
        "timestamp": millis(START + timedelta(minutes=10 * number)),
        "duration": 0 if running else 95_000,
        "building": running,
        "result": result,
        "actions": actions,
    }


class Jenkins:
    """The job's builds, served by tree range like Jenkins."""

    def __init__(self, server: ReplayServer, builds: list[dict[str, Any]]) -> None:
        self.builds = sorted(builds, key=lambda b: b["number"], reverse=True)
        server.add_handler(JOB_PATH, self.answer)

    def answer(self, request: RecordedRequest) -> Reply:
        tree = request.query["tree"]
        match = re.fullmatch(re.escape(TREE) + r"\{(\d+),(\d+)\}", tree)
        assert match, tree
        first, last = int(match.group(1)), int(match.group(2))
        body = {
            "_class": "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
            "allBuilds": self.builds[first:last],
        }
        return Reply(200, body, {"X-Jenkins": "2.440.3", "X-Content-Type-Options": "nosniff"})


def ledger_repository(folder: Path) -> dict[str, str]:
    """The service's clone in `folder`/ledger: commits c1..c4, its origin the job's URL."""
    ledger = Repo(folder / "ledger")
    ledger.git("remote", "add", "origin", "git@github.com:acme/ledger.git")
    return {
        f"c{n}": ledger.commit(f"ledger change {n}", f"2024-04-30T0{n}:00:00+00:00")
        for n in range(1, 5)
    }


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, str]:
    return ledger_repository(tmp_path)


def finished_builds(shas: dict[str, str]) -> list[dict[str, Any]]:
    """The story's builds 1-150, all finished: 144 successes of c1, then every result."""
    builds = [build(n, result="SUCCESS", sha=shas["c1"]) for n in range(1, 145)]
    return [
        *builds,
        build(145, result="NOT_BUILT", sha=None),
        build(146, result="ABORTED", sha=shas["c2"]),
        build(147, result="SUCCESS", sha=shas["c2"]),
        build(148, result="FAILURE", sha=shas["c3"]),
        build(149, result="UNSTABLE", sha=shas["c3"]),
        build(150, result="SUCCESS", sha=shas["c3"], library=True),
    ]


@pytest.fixture
def jenkins(
    replay_server: ReplayServer,
    repo: dict[str, str],
    http_sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> Jenkins:
    monkeypatch.setattr("collectors.jenkins.utcnow", lambda: NOW)
    builds = [*finished_builds(repo), build(151, result=None, sha=repo["c4"])]
    return Jenkins(replay_server, builds)


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_JENKINS_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_JENKINS_USER", USER)


def make_config(
    tmp_path: Path, server: ReplayServer, block: dict[str, Any] | None = None, **settings: Any
) -> PoiseConfig:
    """The ledger service on `server`'s Jenkins: `block` is its `jenkins:` block (the main
    branch's job by default), `settings` go to `sources.jenkins`."""
    return parse_config(
        {
            "teams": [{"name": "finance"}],
            "services": [
                {
                    "name": "ledger",
                    "team": "finance",
                    "git": {"path": "ledger"},
                    "jenkins": block or {"job": "acme/ledger/main"},
                }
            ],
            "sources": {
                "jenkins": {
                    "base_url": server.base_url,
                    "token_env": "TEST_JENKINS_TOKEN",
                    "user_env": "TEST_JENKINS_USER",
                    "timeout_seconds": 2,
                    "max_retries": 1,
                    **settings,
                }
            },
        },
        base_dir=tmp_path,
    )


def both(engine: Engine, config: PoiseConfig, **kwargs: Any) -> Any:
    """Git first (it owns the changes), then Jenkins, as `poise sync` runs them."""
    apply_config(engine, config)
    registry = {"git": GitSource, "jenkins": JenkinsSource}
    return run_sync(engine, config, registry=registry, hooks=[], **kwargs)


def test_builds_become_ci_runs_and_deployments_linked_to_git_changes(
    warehouse: Engine,
    jenkins: Jenkins,
    replay_server: ReplayServer,
    repo: dict[str, str],
    tmp_path: Path,
) -> None:
    summary = both(warehouse, make_config(tmp_path, replay_server))
    assert not summary.failed, [r.errors for r in summary.results]

    runs = by_id(warehouse, "ci_runs")
    assert len(runs) == 151
    assert (
        runs[f"{PREFIX}:151"]["status"] == "running"
        and runs[f"{PREFIX}:151"]["finished_at"] is None
    )
    assert runs[f"{PREFIX}:145"]["status"] == "skipped"
    deployments = by_id(warehouse, "deployments")
    assert f"{PREFIX}:151" not in deployments and f"{PREFIX}:145" not in deployments
    assert len(deployments) == 149
    newest = {n: deployments[f"{PREFIX}:{n}"] for n in (146, 147, 148, 149, 150)}
    assert {n: d["status"] for n, d in newest.items()} == {
        146: "failure",
        147: "success",
        148: "failure",
        149: "failure",
        150: "success",
    }
    deployed = newest[150]
    assert deployed["deployed_at"] == START + timedelta(minutes=1500, seconds=95)
    assert deployed["sha"] == repo["c3"]  # not the shared library's checkout
    assert (deployed["environment"], deployed["source"]) == ("production", "jenkins")
    assert deployed["url"] == "https://ci.example/job/acme/job/ledger/job/main/150/"

    git = "git:ledger:"
    assert links(warehouse) == {
        (f"{PREFIX}:1", git + repo["c1"]),  # the first: only its own commit
        (f"{PREFIX}:147", git + repo["c2"]),
        (f"{PREFIX}:150", git + repo["c3"]),
    }
    pages = [r.query["tree"][len(TREE) :] for r in replay_server.requests_to(JOB_PATH)]
    assert pages == ["{0,100}", "{100,200}"]
    expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert all(r.header("Authorization") == expected for r in replay_server.requests)


def test_a_running_build_is_picked_up_once_finished_and_a_third_sync_adds_nothing(
    warehouse: Engine,
    jenkins: Jenkins,
    replay_server: ReplayServer,
    repo: dict[str, str],
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, replay_server)
    both(warehouse, config)
    running = next(b for b in jenkins.builds if b["number"] == 151)
    running.update(result="SUCCESS", building=False, duration=120_000)
    served = len(replay_server.requests)
    result = both(warehouse, config).result("jenkins")
    assert not result.errors and result.records == 101  # a page of builds, one deployment linked
    assert [r.query["tree"][len(TREE) :] for r in replay_server.requests[served:]] == ["{0,100}"]
    deployment = by_id(warehouse, "deployments")[f"{PREFIX}:151"]
    assert (deployment["status"], deployment["deployed_at"]) == (
        "success",
        START + timedelta(minutes=1510, seconds=120),
    )
    assert (f"{PREFIX}:151", "git:ledger:" + repo["c4"]) in links(warehouse)

    before = snapshot(warehouse)
    third = both(warehouse, config).result("jenkins")
    assert (third.new, third.updated, third.errors) == (0, 0, [])
    assert snapshot(warehouse) == before


def test_deployments_linked_before_git_stored_their_commits_are_linked_once_it_has(
    warehouse: Engine,
    jenkins: Jenkins,
    replay_server: ReplayServer,
    repo: dict[str, str],
    tmp_path: Path,
) -> None:
    """`poise sync --source jenkins` before git (or git failing that round, or a clone not
    yet fetched) linked the deployments to nothing, and as their rows never change again,
    no later sync linked them: the next pass after git stores changes does."""
    config = make_config(tmp_path, replay_server)
    apply_config(warehouse, config)
    registry = {"git": GitSource, "jenkins": JenkinsSource}
    run_sync(warehouse, config, registry=registry, hooks=[], sources=["jenkins"])
    assert links(warehouse) == set()
    run_sync(warehouse, config, registry=registry, hooks=[], sources=["git"])
    run_sync(warehouse, config, registry=registry, hooks=[], sources=["jenkins"])
    git = "git:ledger:"
    assert links(warehouse) == {
        (f"{PREFIX}:1", git + repo["c1"]),
        (f"{PREFIX}:147", git + repo["c2"]),
        (f"{PREFIX}:150", git + repo["c3"]),
    }
    # nothing gained since: the empty ones (the redeploys) are not asked about again
    before = snapshot(warehouse)
    again = both(warehouse, config).result("jenkins")
    assert (again.new, again.updated, again.errors) == (0, 0, [])
    assert snapshot(warehouse) == before


def test_since_keeps_older_builds_out_and_stops_paging_at_them(
    warehouse: Engine, jenkins: Jenkins, replay_server: ReplayServer, tmp_path: Path
) -> None:
    since = START + timedelta(minutes=1300)  # build 130's start: kept, 129 is older
    config = make_config(tmp_path, replay_server, since=f"{since:%Y-%m-%dT%H:%M:%SZ}")
    summary = both(warehouse, config)
    assert not summary.failed, [r.errors for r in summary.results]
    assert sorted(int(key.rsplit(":", 1)[1]) for key in by_id(warehouse, "ci_runs")) == list(
        range(130, 152)
    )
    pages = [r.query["tree"][len(TREE) :] for r in replay_server.requests_to(JOB_PATH)]
    assert pages == ["{0,100}"]  # the first page already reaches back past `since`


def test_a_killed_sync_resumes_and_ends_with_the_rows_of_an_uninterrupted_one(
    warehouse: Engine, jenkins: Jenkins, replay_server: ReplayServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, replay_server)
    kills, summary = sync_through_kills(warehouse, config, JenkinsSource)
    assert kills >= 2 and not summary.failed
    uninterrupted = open_warehouse(f"sqlite:///{tmp_path / 'uninterrupted.db'}")
    sync(uninterrupted, config, JenkinsSource)
    assert snapshot(warehouse) == snapshot(uninterrupted)
    uninterrupted.dispose()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply(
                403,
                "<html><head><title>Error 403 Forbidden</title></head></html>",
                {"Content-Type": "text/html"},
            ),
            "jenkins: access denied (HTTP 403 at {url}): check $TEST_JENKINS_TOKEN and the token's permissions for this resource",
        ),
        (
            Reply(404, "<html>Not Found</html>", {"Content-Type": "text/html"}),
            "jenkins: job 'acme/ledger/main' not found (HTTP 404 at {job}): check services[0].jenkins.job and that the user can see it",
        ),
        (
            Reply(500, "<html>Oops</html>"),
            "jenkins: HTTP 500 from {url} persisted after 2 tries: the service may be down; collected pages are kept, run `poise sync` again later",
        ),
        (
            Reply(200, b"<html><body>Jenkins is getting ready to work</body></html>"),
            "jenkins: malformed response from {url} (HTTP 200, not JSON: '<html><body>Jenkins is getting ready to work</body></html>'): check that base_url points at the API",
        ),
    ],
    ids=["403-no-auth", "404-job", "500-persists", "garbage"],
)
def test_a_failing_job_is_one_line_without_the_token(
    sqlite_warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    http_sleeps: list[float],
    reply: Reply,
    expected: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    replace_route(replay_server, JOB_PATH, reply)
    (tmp_path / "ledger").mkdir()
    summary = sync(sqlite_warehouse, make_config(tmp_path, replay_server), JenkinsSource)
    job = f"{replay_server.base_url}{JOB_PATH}"
    url = (
        job
        + "?tree="
        + TREE.replace("[", "%5B").replace("]", "%5D").replace(",", ",")
        + "%7B0,100%7D"
    )
    (error,) = summary.result("jenkins").errors
    assert error == expected.format(url=url, job=job)
    assert rows(sqlite_warehouse, "ci_runs") == []
    assert_secret_absent(TOKEN, sqlite_warehouse, caplog.text, error)
    assert_secret_absent(
        base64.b64encode(f"{USER}:{TOKEN}".encode()).decode(), sqlite_warehouse, caplog.text
    )


def test_a_token_without_a_user_is_a_config_error(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path
) -> None:
    (tmp_path / "ledger").mkdir()
    config = make_config(tmp_path, replay_server, user_env=None)
    (error,) = sync(sqlite_warehouse, config, JenkinsSource).result("jenkins").errors
    assert error.startswith("sources.jenkins.user_env: required with token_env")
    assert replay_server.requests == []

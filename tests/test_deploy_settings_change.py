"""A deploy setting changed after a first sync: the next incremental sync stores what a first
sync with the new config would have stored (deployments and their links), for GitHub, GitLab
and Jenkins.

The settings that decide a stream's deployments are kept in its bookmark; when the config
says otherwise, the stream is read again from its start, and the deployments it no longer
makes are removed in the transaction of its last page. A stream switched off loses its
deployments. A bookmark from before the settings were kept is taken as made with today's
config (no re-read on upgrade). A re-read stopped half-way (a page failing, a kill) keeps
the old deployments and is a re-read again at the next sync.

The servers replay the shapes of the collector tests (tests/test_github_collector.py,
tests/test_gitlab_collector.py, tests/test_jenkins_collector.py) on 127.0.0.1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import github_shapes as gh
import pytest
from collector_checks import Killed, kill_after_checkpoints, one_service_config, rows, sync
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine
from test_github_collector import Runs
from test_gitlab_collector import API, PROJECT
from test_gitlab_collector import Story as GitLabStory
from test_jenkins_collector import (
    JOB_PATH,
    TREE,
    Jenkins,
    both,
    build,
    ledger_repository,
    make_config,
)

from collectors.github import GitHubSource
from collectors.gitlab import GitLabSource
from poise.config import PoiseConfig
from poise.warehouse import open_warehouse
from poise.warehouse.sync_state import read_state, save_bookmark

REPO, REPO_ID = gh.REPO, gh.REPO_ID
SyncFn = Callable[..., Any]


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEST_GITHUB_TOKEN", "TEST_GITLAB_TOKEN", "TEST_JENKINS_TOKEN"):
        monkeypatch.setenv(name, "t0ken-" + name.lower())
    monkeypatch.setenv("TEST_JENKINS_USER", "ci-bot")


def deploy_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """What the deploy settings decide: deployments and their links (bookkeeping aside)."""
    return {table: rows(engine, table) for table in ("deployments", "deployment_changes")}


def ids(engine: Engine) -> set[str]:
    return {row["id"] for row in rows(engine, "deployments")}


def fresh(tmp_path: Path, run: SyncFn, config: PoiseConfig) -> dict[str, list[dict[str, Any]]]:
    """The deployment rows of a first sync with `config`, in a warehouse of its own."""
    engine = open_warehouse(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        summary = run(engine, config)
        assert not summary.failed, [result.errors for result in summary.results]
        return deploy_rows(engine)
    finally:
        engine.dispose()


def ok(summary: Any) -> None:
    assert not summary.failed, [result.errors for result in summary.results]


def drop_settings(engine: Engine, source: str, stream: str, scope: str) -> None:
    """Make the stream's bookmark one written before the settings were kept."""
    with engine.begin() as connection:
        bookmark = read_state(connection, source, stream, scope).bookmark
        assert "settings" in bookmark
        del bookmark["settings"]
        save_bookmark(connection, source, stream, scope, bookmark)


def stored_settings(engine: Engine, source: str, stream: str, scope: str) -> Any:
    with engine.connect() as connection:
        return read_state(connection, source, stream, scope).bookmark.get("settings")


def asked(server: ReplayServer, since: int) -> list[str]:
    return sorted(request.path for request in server.requests[since:])


def upgrade_reads_nothing_again(
    engine: Engine, server: ReplayServer, run: SyncFn, source: str, stream: str, scope: str
) -> None:
    """After a first sync: an incremental sync asks the same after the stream's bookmark
    lost its settings (as a bookmark of an older Poise) as before, and records them."""
    ok(run(engine))  # the pass after the first links what the first found (its changes)
    served = len(server.requests)
    ok(run(engine))
    incremental = asked(server, served)
    settings = stored_settings(engine, source, stream, scope)
    drop_settings(engine, source, stream, scope)
    served = len(server.requests)
    ok(run(engine))
    assert asked(server, served) == incremental  # no re-read
    assert stored_settings(engine, source, stream, scope) == settings


def sync_killed_until_done(run: SyncFn, keeps: Callable[[], None]) -> int:
    """Sync killed at its 1st checkpoint, then (resumed) at its 2nd … until one ends;
    `keeps()` checks the warehouse after every kill. Returns how many syncs were killed."""
    kills = 0
    while True:
        try:
            summary = run(checkpoint_every=1, on_checkpoint=kill_after_checkpoints(kills + 1))
        except Killed:
            kills += 1
            keeps()
            continue
        ok(summary)
        return kills


# -- GitHub: runs of a deploy workflow, releases -------------------------------------------


def sha(name: str) -> str:
    return name.encode().hex().ljust(40, "0")[:40]


COMMITS = [sha(f"C{k}") for k in range(5)]  # a linear history, pushed without pull requests
RUNS_FROM = datetime(2024, 3, 1, tzinfo=UTC)  # weeks before any sync: no run is listed again


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Pipeline:
    """A deploy workflow's `count` runs (some on a feature branch, some failing; every third
    without a deploy job), releases of the same commits, and compares between them all."""

    def __init__(self, server: ReplayServer, count: int) -> None:
        self.server = server
        server.add(f"/repos/{REPO}", Reply(200, gh.repository(created_at="2024-01-01T00:00:00Z")))
        server.add(f"/repos/{REPO}/pulls", Reply(200, []))
        runs = []
        for i in range(count):
            created = RUNS_FROM + timedelta(hours=i)
            run = gh.run(
                8800000 + i,
                created_at=stamp(created),
                updated_at=stamp(created + timedelta(minutes=12)),
                head_sha=COMMITS[min(4, i * 5 // count)],
                head_branch="feature/x" if i % 4 == 3 else "main",
                conclusion="failure" if i % 6 == 5 else "success",
            )
            runs.append(run)
            jobs = [self.job(run, 1, "test", created, 1, 5)]
            if i % 3 != 1:
                jobs.append(self.job(run, 2, "deploy (production)", created, 6, 10))
            server.add(
                f"/repos/{REPO}/actions/runs/{run['id']}/jobs",
                Reply(200, {"total_count": len(jobs), "jobs": jobs}),
            )
        self.runs = Runs(server, runs)
        history = [
            gh.commit(
                commit,
                authored=f"2024-02-0{k + 1}T10:00:00Z",
                parents=COMMITS[k - 1 : k],
                author=None,
                name="Carol",
                message=f"Change {k}",
            )
            for k, commit in enumerate(COMMITS)
        ]
        for k, commit in enumerate(COMMITS):
            server.add(f"/repos/{REPO}/commits/{commit}/pulls", Reply(200, []))
            for later in range(k + 1, len(COMMITS)):
                shipped = history[k + 1 : later + 1]
                server.add(
                    f"/repos/{REPO}/compare/{commit}...{COMMITS[later]}",
                    Reply(
                        200,
                        gh.compare(shipped, total=len(shipped), base=commit, head=COMMITS[later]),
                    ),
                )
        releases = [
            gh.release(k, f"v1.{k}.0", published_at=f"2024-02-0{k + 1}T12:00:00Z")
            for k in range(1, 5)
        ]
        server.add(f"/repos/{REPO}/releases", Reply(200, releases, {"ETag": 'W/"rel"'}))
        for k in range(1, 5):
            server.add(f"/repos/{REPO}/commits/v1.{k}.0", Reply(200, history[k]))

    @staticmethod
    def job(run: dict[str, Any], n: int, name: str, created: datetime, start: int, end: int) -> Any:
        return gh.job(
            run["id"] * 10 + n,
            run["id"],
            name=name,
            conclusion=run["conclusion"],
            started_at=stamp(created + timedelta(minutes=start)),
            completed_at=stamp(created + timedelta(minutes=end)),
        )

    def runs_path(self) -> str:
        return f"/repositories/{REPO_ID}/actions/workflows/{self.runs.workflow_id}/runs"


def github_config(tmp_path: Path, server: ReplayServer, **block: Any) -> PoiseConfig:
    settings = {"base_url": server.base_url, "token_env": "TEST_GITHUB_TOKEN"}
    return one_service_config(tmp_path, "checkout", "github", {"repo": REPO, **block}, settings)


def github(engine: Engine, config: PoiseConfig, **kwargs: Any) -> Any:
    return sync(engine, config, GitHubSource, **kwargs)


WORKFLOW = {"deploy_workflow": "deploy.yml"}


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        ({}, {"deploy_job": "deploy*"}, "deploy_job"),
        ({"deploy_job": "deploy*"}, {}, "deploy_job"),
        ({}, {"deploy_branches": ["main", "v*"]}, "deploy_branches"),
        ({}, {"environment_map": {"Deploy": "staging"}}, "environment_map"),
    ],
    ids=["deploy-job-set", "deploy-job-unset", "deploy-branches", "mapped-out-of-production"],
)
def test_github_a_changed_deploy_setting_reads_the_runs_again_as_a_first_sync(
    warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    http_sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    before: dict[str, Any],
    after: dict[str, Any],
    changed: str,
) -> None:
    Pipeline(replay_server, count=12)
    old = github_config(tmp_path, replay_server, **WORKFLOW, **before)
    ok(github(warehouse, old))
    assert deploy_rows(warehouse)["deployment_changes"]  # production deployments ship commits
    new = github_config(tmp_path, replay_server, **WORKFLOW, **after)
    expected = fresh(tmp_path, github, new)
    assert expected != deploy_rows(warehouse)

    caplog.set_level(logging.INFO, logger="poise")
    summary = github(warehouse, new)
    ok(summary)
    assert deploy_rows(warehouse) == expected
    said = (
        f"github: checkout: deploy settings changed ({changed}) since the last sync; "
        "reading the workflow runs again"
    )
    assert summary.results[0].notes == [said]  # under `poise sync`'s summary
    assert said in caplog.messages
    assert "t0ken" not in caplog.text

    # done: the next sync is incremental again
    served = len(replay_server.requests)
    ok(github(warehouse, new))
    assert not any("/jobs" in path for path in asked(replay_server, served))
    assert deploy_rows(warehouse) == expected


def test_github_a_stream_switched_off_leaves_none_of_its_deployments(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    """Releases were the deployments; now a deploy workflow is: counting both would double
    the deployment frequency."""
    Pipeline(replay_server, count=12)
    ok(github(warehouse, github_config(tmp_path, replay_server, use_releases=True)))
    assert {i for i in ids(warehouse) if ":release:" in i} == {
        f"github:{REPO}:release:{k}" for k in range(1, 5)
    }
    new = github_config(tmp_path, replay_server, **WORKFLOW)
    expected = fresh(tmp_path, github, new)

    summary = github(warehouse, new)
    ok(summary)
    assert deploy_rows(warehouse) == expected
    assert not any(":release:" in i for i in ids(warehouse))
    assert summary.results[0].notes == [
        "github: checkout: deploy settings changed since the last sync; the releases are no "
        "longer read and the 4 deployment(s) they made are removed"
    ]
    with warehouse.connect() as connection:
        assert read_state(connection, "github", "releases", "checkout").bookmark is None

    # switched on again: read in full, as on a first sync (no ETag kept to answer 304)
    both_on = github_config(tmp_path, replay_server, **WORKFLOW, use_releases=True)
    ok(github(warehouse, both_on))
    assert {i for i in ids(warehouse) if ":release:" in i} == {
        f"github:{REPO}:release:{k}" for k in range(1, 5)
    }


def test_github_a_bookmark_from_before_the_settings_were_kept_is_no_reread(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    pipeline = Pipeline(replay_server, count=12)
    old = github_config(tmp_path, replay_server, **WORKFLOW)
    ok(github(warehouse, old))
    windows = len(pipeline.runs.windows)
    upgrade_reads_nothing_again(
        warehouse,
        replay_server,
        lambda engine: github(engine, old),
        "github",
        "workflow_runs",
        "checkout",
    )
    assert len(pipeline.runs.windows) == windows + 3  # one recent window each: no re-read

    new = github_config(tmp_path, replay_server, **WORKFLOW, deploy_job="deploy*")
    ok(github(warehouse, new))  # settings recorded: a change after the upgrade is seen
    assert deploy_rows(warehouse) == fresh(tmp_path, github, new)


def test_github_a_reread_failing_half_way_keeps_the_old_deployments_and_is_done_next_time(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    pipeline = Pipeline(replay_server, count=250)  # three pages of runs
    old = github_config(tmp_path, replay_server, **WORKFLOW)
    ok(github(warehouse, old))
    before = ids(warehouse)
    new = github_config(tmp_path, replay_server, **WORKFLOW, deploy_job="deploy*")
    expected = fresh(tmp_path, github, new)

    failing = replay_server.add(
        pipeline.runs_path(), Reply(500, {"message": "Server Error"}), query={"page": "3"}
    )
    failed = github(warehouse, new).result("github")
    assert failed.errors and "HTTP 500" in failed.errors[0]
    assert ids(warehouse) >= before  # nothing removed before the re-read is through

    replay_server.routes.remove(failing)
    ok(github(warehouse, new))
    assert deploy_rows(warehouse) == expected


# -- GitLab: deployments' environments ------------------------------------------------------


def gitlab_config(tmp_path: Path, server: ReplayServer, environment_map: dict) -> PoiseConfig:
    block = {"project": PROJECT, "environment_map": environment_map}
    settings = {"base_url": server.base_url + "/api/v4", "token_env": "TEST_GITLAB_TOKEN"}
    return one_service_config(tmp_path, "billing", "gitlab", block, settings)


def gitlab(engine: Engine, config: PoiseConfig, **kwargs: Any) -> Any:
    return sync(engine, config, GitLabSource, **kwargs)


@pytest.fixture
def gitlab_story(replay_server: ReplayServer, http_sleeps: list[float]) -> GitLabStory:
    """The GitLab collector test's story, its deployments two a page."""
    story = GitLabStory(replay_server).serve()
    story.deploy_90_finished = True
    replay_server.routes = [r for r in replay_server.routes if r.path != f"{API}/deployments"]

    def paged(request: RecordedRequest) -> Reply:
        listed = story.deployments(request).body
        page = int(request.query.get("page", "1"))
        more = page * 2 < len(listed)
        return Reply(
            200, listed[(page - 1) * 2 : page * 2], {"x-next-page": str(page + 1) if more else ""}
        )

    replay_server.add_handler(f"{API}/deployments", paged)
    return story


OLD_MAP = {"stage": "staging"}


@pytest.mark.parametrize(
    "new_map",
    [{"stage": "production"}, {"stage": "staging", "production": "live"}],
    ids=["into-production", "out-of-production"],
)
def test_gitlab_a_changed_environment_map_reads_the_deployments_again(
    warehouse: Engine,
    gitlab_story: GitLabStory,
    replay_server: ReplayServer,
    tmp_path: Path,
    new_map: dict[str, str],
) -> None:
    ok(gitlab(warehouse, gitlab_config(tmp_path, replay_server, OLD_MAP)))
    assert deploy_rows(warehouse)["deployment_changes"]
    new = gitlab_config(tmp_path, replay_server, new_map)
    expected = fresh(tmp_path, gitlab, new)
    assert expected != deploy_rows(warehouse)

    ok(gitlab(warehouse, new))
    assert deploy_rows(warehouse) == expected


def test_gitlab_a_reread_killed_at_every_checkpoint_ends_as_a_first_sync(
    warehouse: Engine, gitlab_story: GitLabStory, replay_server: ReplayServer, tmp_path: Path
) -> None:
    ok(gitlab(warehouse, gitlab_config(tmp_path, replay_server, OLD_MAP)))
    before = ids(warehouse)
    new = gitlab_config(tmp_path, replay_server, {"stage": "staging", "production": "live"})
    expected = fresh(tmp_path, gitlab, new)

    def keeps() -> None:  # every deployment stays stored through the re-read
        assert ids(warehouse) == before

    kills = sync_killed_until_done(lambda **kw: gitlab(warehouse, new, **kw), keeps)
    assert kills >= 3  # killed within the re-read of the deployments (three pages)
    assert deploy_rows(warehouse) == expected


def test_gitlab_a_bookmark_from_before_the_settings_were_kept_is_no_reread(
    warehouse: Engine, gitlab_story: GitLabStory, replay_server: ReplayServer, tmp_path: Path
) -> None:
    old = gitlab_config(tmp_path, replay_server, OLD_MAP)
    ok(gitlab(warehouse, old))
    upgrade_reads_nothing_again(
        warehouse,
        replay_server,
        lambda engine: gitlab(engine, old),
        "gitlab",
        "deployments",
        "billing",
    )
    new = gitlab_config(tmp_path, replay_server, {"stage": "production"})
    ok(gitlab(warehouse, new))
    assert deploy_rows(warehouse) == fresh(tmp_path, gitlab, new)


# -- Jenkins: the job and its environment ---------------------------------------------------

RELEASE_PATH = "/job/acme/job/ledger/job/release/api/json"
NOW = datetime(2024, 5, 3, tzinfo=UTC)


class Job(Jenkins):
    """A job's builds by tree range; with `failing`, its second page answers 500."""

    def __init__(self, server: ReplayServer, builds: list[dict[str, Any]], path: str) -> None:
        self.builds = sorted(builds, key=lambda b: b["number"], reverse=True)
        self.failing = False
        server.add_handler(path, self.answer)

    def answer(self, request: RecordedRequest) -> Reply:
        if self.failing and not request.query["tree"].endswith("{0,100}"):
            return Reply(500, b"<html>Jenkins is restarting</html>")
        return super().answer(request)


@pytest.fixture
def jobs(
    replay_server: ReplayServer,
    tmp_path: Path,
    http_sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Job]:
    """`acme/ledger/main` with 150 finished builds (two pages) and `acme/ledger/release`
    with 4, of the commits of a real clone of the service's repository."""
    monkeypatch.setattr("collectors.jenkins.utcnow", lambda: NOW)
    shas = ledger_repository(tmp_path)
    results = ["SUCCESS", "FAILURE", "SUCCESS", "UNSTABLE", "SUCCESS"]
    main = [
        build(n, result=results[n % 5], sha=shas[f"c{1 + min(3, n // 40)}"]) for n in range(1, 151)
    ]
    release = [build(n, result="SUCCESS", sha=shas[f"c{n}"]) for n in range(1, 5)]
    return {
        "main": Job(replay_server, main, JOB_PATH),
        "release": Job(replay_server, release, RELEASE_PATH),
    }


def jenkins_config(
    tmp_path: Path, server: ReplayServer, job: str = "acme/ledger/main", **block: Any
) -> PoiseConfig:
    return make_config(tmp_path, server, {"job": job, **block})


@pytest.mark.parametrize(
    "change",
    [{"environment": "staging"}, {"job": "acme/ledger/release"}],
    ids=["environment", "job"],
)
def test_jenkins_a_changed_job_or_environment_lists_the_builds_again(
    warehouse: Engine,
    jobs: dict[str, Job],
    replay_server: ReplayServer,
    tmp_path: Path,
    change: dict[str, str],
) -> None:
    ok(both(warehouse, jenkins_config(tmp_path, replay_server)))
    assert deploy_rows(warehouse)["deployment_changes"]
    new = jenkins_config(tmp_path, replay_server, **change)
    expected = fresh(tmp_path, both, new)
    assert expected != deploy_rows(warehouse)

    ok(both(warehouse, new))
    assert deploy_rows(warehouse) == expected


def test_jenkins_a_reread_failing_or_killed_half_way_ends_as_a_first_sync(
    warehouse: Engine, jobs: dict[str, Job], replay_server: ReplayServer, tmp_path: Path
) -> None:
    ok(both(warehouse, jenkins_config(tmp_path, replay_server)))
    before = ids(warehouse)
    new = jenkins_config(tmp_path, replay_server, environment="staging")
    expected = fresh(tmp_path, both, new)

    jobs["main"].failing = True
    served = len(replay_server.requests)
    failed = both(warehouse, new).result("jenkins")
    assert failed.errors and "HTTP 500" in failed.errors[0]
    assert ids(warehouse) == before
    pages = [r.query["tree"][len(TREE) :] for r in replay_server.requests[served:]]
    assert "{100,200}" in pages  # the re-read failed on its second page

    jobs["main"].failing = False

    def keeps() -> None:
        assert ids(warehouse) == before

    kills = sync_killed_until_done(lambda **kw: both(warehouse, new, **kw), keeps)
    assert kills >= 2
    assert deploy_rows(warehouse) == expected


def test_jenkins_a_bookmark_from_before_the_settings_were_kept_is_no_reread(
    warehouse: Engine, jobs: dict[str, Job], replay_server: ReplayServer, tmp_path: Path
) -> None:
    old = jenkins_config(tmp_path, replay_server)
    ok(both(warehouse, old))
    upgrade_reads_nothing_again(
        warehouse, replay_server, lambda engine: both(engine, old), "jenkins", "builds", "ledger"
    )
    new = jenkins_config(tmp_path, replay_server, environment="staging")
    ok(both(warehouse, new))
    assert deploy_rows(warehouse) == fresh(tmp_path, both, new)

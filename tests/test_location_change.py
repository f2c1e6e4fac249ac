"""A service's CI/CD location changed in poise.yaml: a GitHub repository renamed (the same
repository id and records under the new name) or replaced by another repository (other
records), a GitLab project moved or replaced, a Jenkins job replaced by another.

Row ids hold the repository or project (`github:<repo>:pr:<n>`), so the rule is the one for
deploy settings: the next plain sync ends as a first sync with the new config would. Every
stream of the service is read again from its start (no cursor, ETag or checkpoint's next
page), and once the new location's streams are stored, the rows read from the old one
(changes, deployments with their links, CI runs, incident issues) are removed. A wrong new
location (404) fails with the usual line and removes nothing; a re-read killed half-way
removes nothing until a later sync has read the new location through; a warehouse from
before locations were kept reads nothing again on upgrade.

The servers are the collector tests' stories (tests/test_github_collector.py,
tests/test_gitlab_collector.py, the two Jenkins jobs of tests/test_deploy_settings_change.py)
on 127.0.0.1, served at another repository or project too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import github_shapes as gh
import pytest
from collector_checks import Killed, kill_after_checkpoints, one_service_config, snapshot, sync
from replay import ReplayServer
from sqlalchemy import Engine, delete
from test_deploy_settings_change import Job, asked, jenkins_config, ok, sync_killed_until_done
from test_deploy_settings_change import jobs as jobs  # the fixture, used below
from test_github_collector import D1, R14B, S10, STORY_NOW, Runs
from test_github_collector import Story as GitHubStory
from test_github_collector import make_config as github_story_config
from test_gitlab_collector import PROJECT, PROJECT_ID
from test_gitlab_collector import Story as GitLabStory
from test_jenkins_collector import both

from collectors.base import Source
from collectors.github import GitHubSource
from collectors.gitlab import GitLabSource
from collectors.runner import SyncSummary
from poise.config import PoiseConfig
from poise.warehouse import open_warehouse, schema
from poise.warehouse.sync_state import read_state

# the tables whose rows a location gives (their ids begin with it)
LOCATED = ("changes", "deployments", "ci_runs", "incidents")
MOVES = ("rename", "replacement")


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch, http_sleeps: list[float]) -> None:
    for name in ("TEST_GITHUB_TOKEN", "TEST_GITLAB_TOKEN", "TEST_JENKINS_TOKEN"):
        monkeypatch.setenv(name, "t0ken-" + name.lower())
    monkeypatch.setenv("TEST_JENKINS_USER", "ci-bot")
    # the GitHub story's "now": its deployment in progress is recent enough to wait for
    monkeypatch.setattr("collectors.github.utcnow", lambda: STORY_NOW)


class Forge:
    """One CI/CD source: where the service was, where it moves, and how to serve each."""

    source: ClassVar[type[Source]]
    scope: ClassVar[str]  # the service
    old: ClassVar[str]  # where it was
    moved: ClassVar[dict[str, str]]  # MOVES -> where it is now
    what: ClassVar[str]  # what a 404 at a location says to check

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def key(self) -> str:  # the services[] key naming the location
        return str(self.source.located_by)

    def serve(self, server: ReplayServer, location: str, other: bool) -> None:
        """The story at `location`; `other`: another repository's, with other records."""
        raise NotImplementedError

    def config(self, tmp_path: Path, server: ReplayServer, location: str) -> PoiseConfig:
        raise NotImplementedError

    def path(self, location: str) -> str:
        """The API path of `location`."""
        raise NotImplementedError

    def sync(
        self, engine: Engine, location: str, tmp: Path, server: ReplayServer, **kw: Any
    ) -> SyncSummary:
        return sync(engine, self.config(tmp, server, location), self.source, **kw)

    def note(self, new: str) -> str:
        return (
            f"{self.name}: {self.scope}: {self.key} changed ({self.old} → {new}) since the last "
            f"sync; reading every stream again, as on a first sync, and removing the rows "
            f"read from {self.old} once that is done"
        )

    def not_found(self, server: ReplayServer, location: str) -> str:
        return (
            f"{self.name}: not found (HTTP 404 at {server.base_url}{self.path(location)}): "
            f"check the {self.what} (services[].{self.name}.{self.key}) in poise.yaml and "
            "that the token can see it"
        )


# -- GitHub: pull requests, deployments, a deploy workflow's runs, incident issues ----------

OTHER_REPO_ID = 77120077


class GitHub(Forge):
    source = GitHubSource
    scope, old, what = "checkout", gh.REPO, "repository"
    moved: ClassVar[dict[str, str]] = {
        "rename": "acme/checkout-web",
        "replacement": "acme/storefront",
    }

    def serve(self, server: ReplayServer, location: str, other: bool) -> None:
        """The collector test's story, with runs of a deploy workflow; another repository
        has its own id, fewer deployments and incidents, and other runs."""
        repo_id = OTHER_REPO_ID if other else gh.REPO_ID
        story = GitHubStory(server, location, repo_id)
        story.deploy_1003_finished = True
        first = 6100000 + (500 if other else 0)
        runs = [
            gh.run(first + 1, created_at="2024-05-01T10:55:00Z", head_sha=S10),
            gh.run(first + 2, created_at="2024-05-02T12:25:00Z", head_sha=D1, conclusion="failure"),
            gh.run(first + 3, created_at="2024-05-03T10:00:00Z", head_sha=R14B),
        ]
        if other:
            story.deployments = [d for d in story.deployments if d["id"] not in (999, 1000)]
            story.issues = [issue for issue in story.issues if issue["number"] != 50]
            story.pulls[10] = {**story.pulls[10], "title": "Storefront: retry payments"}
            runs = runs[:1] + runs[2:]
        story.serve()
        Runs(server, runs, repo=location, repo_id=repo_id)

    def config(self, tmp_path: Path, server: ReplayServer, location: str) -> PoiseConfig:
        return github_story_config(
            tmp_path, server, repo=location, deploy_workflow="deploy.yml", use_deployments_api=True
        )

    def path(self, location: str) -> str:
        return f"/repos/{location}"


# -- GitLab: merge requests, deployments, pipelines -----------------------------------------


class GitLab(Forge):
    source = GitLabSource
    scope, old, what = "billing", PROJECT, "project"
    moved: ClassVar[dict[str, str]] = {"rename": "finance/billing", "replacement": "acme/invoicing"}

    def serve(self, server: ReplayServer, location: str, other: bool) -> None:
        """The collector test's story; another project has its own id, and neither the
        failed nor the canceled deployment."""
        story = GitLabStory(server, location, PROJECT_ID + 88 if other else PROJECT_ID)
        if other:
            story.left_out = {13426789, 13426791}
        story.serve()

    def config(self, tmp_path: Path, server: ReplayServer, location: str) -> PoiseConfig:
        block = {"project": location, "environment_map": {"stage": "staging"}}
        settings = {"base_url": server.base_url + "/api/v4", "token_env": "TEST_GITLAB_TOKEN"}
        return one_service_config(tmp_path, "billing", "gitlab", block, settings)

    def path(self, location: str) -> str:
        return f"/api/v4/projects/{quote(location, safe='')}"


# -- helpers ----------------------------------------------------------------------------------


def located_ids(engine: Engine) -> set[str]:
    """The ids of the rows a location gives."""
    return {row["id"] for table in LOCATED for row in snapshot(engine)[table]}


def fresh(forge: Forge, location: str, tmp_path: Path, server: ReplayServer) -> dict[str, Any]:
    """Every canonical row of a first sync at `location`, in a warehouse of its own."""
    engine = open_warehouse(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        ok(forge.sync(engine, location, tmp_path, server))
        return snapshot(engine)
    finally:
        engine.dispose()


def location_bookmark(engine: Engine, forge: Forge) -> Any:
    with engine.connect() as connection:
        return read_state(connection, forge.name, "location", forge.scope).bookmark


@pytest.fixture(params=[GitHub(), GitLab()], ids=["github", "gitlab"])
def forge(
    request: pytest.FixtureRequest, warehouse: Engine, replay_server: ReplayServer, tmp_path: Path
) -> Forge:
    """A CI/CD source, its service synced at its old location: a first sync, then an
    incremental one."""
    forge: Forge = request.param
    forge.serve(replay_server, forge.old, False)
    for _ in range(2):
        ok(forge.sync(warehouse, forge.old, tmp_path, replay_server))
    assert any(i.startswith(f"{forge.name}:{forge.old}:") for i in located_ids(warehouse))
    return forge


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("move", MOVES)
def test_a_moved_location_is_read_again_from_its_start_and_the_old_rows_go(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, forge: Forge, move: str
) -> None:
    new = forge.moved[move]
    forge.serve(replay_server, new, move == "replacement")
    expected = fresh(forge, new, tmp_path, replay_server)
    assert expected["deployment_changes"] and all(expected[table] for table in LOCATED[:3])

    served = len(replay_server.requests)
    summary = forge.sync(warehouse, new, tmp_path, replay_server)
    ok(summary)
    assert snapshot(warehouse) == expected  # not the old rows beside the new ones
    assert summary.results[0].notes == [forge.note(new)]
    # read from the start: no ETag, no cursor sent back to the API
    reread = replay_server.requests[served:]
    assert not any(request.header("If-None-Match") for request in reread)
    assert not any({"since", "updated_after"} & set(request.query) for request in reread)

    # done: the next sync is incremental, says nothing and adds nothing
    again = forge.sync(warehouse, new, tmp_path, replay_server)
    ok(again)
    result = again.result(forge.name)
    assert (result.new, result.updated, result.notes) == (0, 0, [])
    assert snapshot(warehouse) == expected
    assert location_bookmark(warehouse, forge) == {
        "location": {forge.key: new},
        "prefix": f"{forge.name}:{new}:",
    }


def test_a_new_location_not_found_is_one_line_and_removes_nothing(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, forge: Forge
) -> None:
    before = snapshot(warehouse)
    new = forge.moved["replacement"]

    failed = forge.sync(warehouse, new, tmp_path, replay_server).result(forge.name)
    assert failed.errors == [forge.not_found(replay_server, new)]
    assert snapshot(warehouse) == before

    forge.serve(replay_server, new, True)  # the repository made, or the name put right
    ok(forge.sync(warehouse, new, tmp_path, replay_server))
    assert snapshot(warehouse) == fresh(forge, new, tmp_path, replay_server)


def test_a_reread_killed_half_way_removes_nothing_early_and_ends_as_a_first_sync(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, forge: Forge
) -> None:
    old = located_ids(warehouse)
    new = forge.moved["rename"]
    forge.serve(replay_server, new, False)
    expected = fresh(forge, new, tmp_path, replay_server)
    # what the streams store (changes of direct pushes come with the links, after them)
    streamed = {
        row["id"] for table in LOCATED for row in expected[table] if ":commit:" not in row["id"]
    }

    def keeps() -> None:
        now = located_ids(warehouse)
        if old & now:  # not through yet: every old row is still there
            assert old <= now
        else:  # the old rows went in one go, and only once the new location was read
            assert streamed <= now

    kills = sync_killed_until_done(
        lambda **kw: forge.sync(warehouse, new, tmp_path, replay_server, **kw), keeps
    )
    assert kills >= 3
    assert snapshot(warehouse) == expected


def test_moving_back_before_the_reread_ended_removes_the_rows_of_the_location_left(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, forge: Forge
) -> None:
    """The new location was a mistake, put right after a sync that stored part of it."""
    new = forge.moved["replacement"]
    forge.serve(replay_server, new, True)
    with pytest.raises(Killed):
        forge.sync(
            warehouse,
            new,
            tmp_path,
            replay_server,
            checkpoint_every=1,
            on_checkpoint=kill_after_checkpoints(3),
        )
    assert any(i.startswith(f"{forge.name}:{new}:") for i in located_ids(warehouse))

    summary = forge.sync(warehouse, forge.old, tmp_path, replay_server)
    ok(summary)
    assert snapshot(warehouse) == fresh(forge, forge.old, tmp_path, replay_server)
    assert f"changed ({new} → {forge.old})" in summary.results[0].notes[0]


def test_a_bookmark_from_before_locations_were_kept_reads_nothing_again(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, forge: Forge
) -> None:
    stored = location_bookmark(warehouse, forge)
    assert stored == {"location": {forge.key: forge.old}, "prefix": f"{forge.name}:{forge.old}:"}
    served = len(replay_server.requests)
    ok(forge.sync(warehouse, forge.old, tmp_path, replay_server))
    incremental = asked(replay_server, served)

    with warehouse.begin() as connection:  # as a warehouse of an older Poise
        state = schema.sync_state
        connection.execute(delete(state).where(state.c.stream == "location"))
    served = len(replay_server.requests)
    summary = forge.sync(warehouse, forge.old, tmp_path, replay_server)
    ok(summary)
    assert asked(replay_server, served) == incremental  # no re-read
    assert summary.results[0].notes == []
    assert location_bookmark(warehouse, forge) == stored  # taken as today's, and kept

    new = forge.moved["replacement"]  # a move after the upgrade is seen
    forge.serve(replay_server, new, True)
    ok(forge.sync(warehouse, new, tmp_path, replay_server))
    assert snapshot(warehouse) == fresh(forge, new, tmp_path, replay_server)


def test_jenkins_another_job_is_listed_in_full_and_the_old_jobs_runs_go(
    warehouse: Engine, jobs: dict[str, Job], replay_server: ReplayServer, tmp_path: Path
) -> None:
    """`job` is where a Jenkins service's builds are read from (ids `jenkins:<job>:build:<n>`):
    its deployments went with the old job already (a deploy setting), its CI runs go too, so
    the warehouse is a first sync's with the new job; the move says so once."""
    ok(both(warehouse, jenkins_config(tmp_path, replay_server)))
    new = jenkins_config(tmp_path, replay_server, job="acme/ledger/release")
    engine = open_warehouse(f"sqlite:///{tmp_path / 'fresh.db'}")
    ok(both(engine, new))
    expected = snapshot(engine)
    engine.dispose()

    summary = both(warehouse, new)
    ok(summary)
    assert snapshot(warehouse) == expected
    assert not any(":main:" in row["id"] for row in expected["ci_runs"])
    assert summary.result("jenkins").notes == [
        "jenkins: ledger: job changed (acme/ledger/main → acme/ledger/release) since the last "
        "sync; reading every stream again, as on a first sync, and removing the rows read "
        "from acme/ledger/main once that is done"
    ]

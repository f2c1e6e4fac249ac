"""A Jenkins job that numbers its builds from 1 again, against the loopback replay server.

The job `acme/ledger/main` of tests/test_jenkins_collector.py ran builds 1-150 (the
story's `finished_builds`), then was deleted and created again (or renamed back, or moved
to a fresh Jenkins): the new job's builds are numbered 1, 2, 3 … again and started days
later. Build ids of the old job stay `…:build:<n>`; the new job's are a second series,
`…:build:<n>:series:2`, collected in full even though their numbers are below (or have
passed) the highest one stored.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from collector_checks import by_id, links, snapshot, sync, sync_through_kills
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine
from test_jenkins_collector import (
    JOB_PATH,
    PREFIX,
    START,
    TOKEN,
    USER,
    Jenkins,
    both,
    build,
    finished_builds,
    ledger_repository,
    make_config,
    millis,
)

from collectors.base import SyncContext
from collectors.jenkins import TREE, BuildSeries, JenkinsSource, newest_query
from poise.config import PoiseConfig
from poise.warehouse import open_warehouse

# The job recreated three days after the story's first build; builds every 10 minutes.
RECREATED = START + timedelta(days=3)
NOW = RECREATED + timedelta(days=5)
WARNING = (
    "jenkins: ledger: job acme/ledger/main restarted its build numbers (newest #{newest}, "
    "#{before} stored before{reused}); its builds are collected as a new series (ids ending "
    "in :series:{series}), the {stored} builds stored before are kept"
)


def series_id(number: int, series: int = 2) -> str:
    return f"{PREFIX}:{number}:series:{series}"


def recreated(count: int, sha: str, *, at: datetime = RECREATED) -> list[dict[str, Any]]:
    """The recreated job's builds 1..count, all successes of `sha`, started from `at` on."""
    builds = [build(n, result="SUCCESS", sha=sha) for n in range(1, count + 1)]
    for n, each in enumerate(builds, start=1):
        each["timestamp"] = millis(at + timedelta(minutes=10 * n))
    return builds


class RestartingJenkins(Jenkins):
    """The story's Jenkins, whose job can be recreated (`serve`), which answers a build's own
    `…/<number>/api/json`, and whose listing pages can be made to fail (`failing`)."""

    def __init__(
        self, server: ReplayServer, builds: list[dict[str, Any]], path: str = JOB_PATH
    ) -> None:
        # not Jenkins.__init__: its route would answer the listing before `listing` could
        # (the server takes the first route of a path), so no page could be made to fail
        self.server, self.path = server, path
        self.failing: set[str] = set()  # tree ranges answered with 500: `{100,200}`
        self.routed: set[int] = set()
        server.add_handler(path, self.listing)
        self.serve(builds)

    def serve(self, builds: list[dict[str, Any]]) -> None:
        self.builds = sorted(builds, key=lambda b: b["number"], reverse=True)
        for number in {b["number"] for b in builds} - self.routed:
            self.server.add_handler(self.build_path(number), self.one_build)
            self.routed.add(number)

    def build_path(self, number: int) -> str:
        return self.path.replace("/api/json", f"/{number}/api/json")

    def listing(self, request: RecordedRequest) -> Reply:
        if request.query["tree"][len(TREE) :] in self.failing:
            return Reply(500, "<html>Oops</html>", {"Content-Type": "text/html"})
        return self.answer(request)

    def one_build(self, request: RecordedRequest) -> Reply:
        number = int(re.findall(r"/(\d+)/api/json$", request.path)[0])
        assert request.query == {"tree": "number,timestamp"}
        found = [b for b in self.builds if b["number"] == number]
        if not found:
            return Reply(404, "<html>Not Found</html>", {"Content-Type": "text/html"})
        return Reply(200, {key: found[0][key] for key in ("_class", "number", "timestamp")})


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_JENKINS_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_JENKINS_USER", USER)


@pytest.fixture
def shas(tmp_path: Path) -> dict[str, str]:
    """The service's clone (the Git collector's changes c1..c4), as the story's `repo`."""
    return ledger_repository(tmp_path)


@pytest.fixture
def jenkins(
    replay_server: ReplayServer,
    shas: dict[str, str],
    http_sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> RestartingJenkins:
    monkeypatch.setattr("collectors.jenkins.utcnow", lambda: NOW)
    return RestartingJenkins(replay_server, finished_builds(shas))


def pages_since(server: ReplayServer, served: int) -> list[str]:
    """What the requests after the first `served` asked for: a listing's tree range, or
    a build's own number."""
    asked = []
    for request in server.requests[served:]:
        if request.path == JOB_PATH:
            asked.append(request.query["tree"][len(TREE) :])
        else:
            asked.append(request.path.removeprefix(JOB_PATH.removesuffix("/api/json")))
    return asked


def old_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """The rows of the job as first collected (no series suffix)."""
    return {
        table: [row for row in rows if ":series:" not in str(row.get("id", ""))]
        for table, rows in snapshot(engine).items()
        if table in ("ci_runs", "deployments")
    }


def assert_a_resync_changes_nothing(engine: Engine, config: PoiseConfig) -> None:
    settled = snapshot(engine)
    again = both(engine, config).result("jenkins")
    assert (again.errors, again.warnings, again.new, again.updated) == ([], [], 0, 0)
    assert snapshot(engine) == settled


def test_a_recreated_job_is_a_new_series_and_every_build_stored_before_is_kept(
    warehouse: Engine,
    jenkins: RestartingJenkins,
    replay_server: ReplayServer,
    shas: dict[str, str],
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, replay_server)
    # the old job's newest build is still running when the job is deleted
    jenkins.serve([*finished_builds(shas), build(151, result=None, sha=shas["c4"])])
    first = both(warehouse, config).result("jenkins")
    assert (first.errors, first.warnings) == ([], [])
    before = old_rows(warehouse)
    assert (len(before["ci_runs"]), len(before["deployments"])) == (151, 149)

    # recreated: builds 1-12, the newest still running
    new = recreated(12, shas["c4"])
    new[-1].update(result=None, building=True, duration=0)
    jenkins.serve(new)
    served = len(replay_server.requests)
    second = both(warehouse, config).result("jenkins")
    assert second.errors == []
    assert old_rows(warehouse) == before  # the old build 151 is still running, as last seen
    runs, deployments = by_id(warehouse, "ci_runs"), by_id(warehouse, "deployments")
    assert (len(runs), len(deployments)) == (151 + 12, 149 + 11)
    assert second.warnings == [
        WARNING.format(newest=12, before=151, reused="", series=2, stored=151)
    ]
    assert pages_since(replay_server, served) == ["{0,100}"]  # no request more than before
    assert runs[series_id(12)]["status"] == "running" and series_id(12) not in deployments
    redeployed = deployments[series_id(5)]
    assert (redeployed["source_id"], redeployed["sha"], redeployed["deployed_at"]) == (
        "5",
        shas["c4"],
        RECREATED + timedelta(minutes=50, seconds=95),
    )
    # the new job's first deployment ships what came after the old job's last (build 150)
    git = "git:ledger:"
    assert links(warehouse) == {
        (f"{PREFIX}:1", git + shas["c1"]),
        (f"{PREFIX}:147", git + shas["c2"]),
        (f"{PREFIX}:150", git + shas["c3"]),
        (series_id(1), git + shas["c4"]),
    }

    # the new job's running build finishes: read again (it held the new series' bookmark)
    new[-1].update(result="FAILURE", building=False, duration=30_000)
    third = both(warehouse, config).result("jenkins")
    assert (third.errors, third.warnings, third.new, third.updated) == ([], [], 1, 1)
    deployments = by_id(warehouse, "deployments")
    assert len(deployments) == 149 + 12 and deployments[series_id(12)]["status"] == "failure"

    # the newest build deleted by hand is no restart
    jenkins.serve(new[:-1])
    assert_a_resync_changes_nothing(warehouse, config)


@pytest.mark.parametrize(
    ("count", "asked"),
    [
        (160, ["{0,100}", "{100,200}"]),  # old build 150's number is on the first page
        (260, ["{0,100}", "/150/api/json", "{100,200}", "{200,300}"]),  # below it
    ],
    ids=["on-the-first-page", "below-the-first-page"],
)
def test_a_recreated_job_whose_numbers_passed_the_old_ones_is_told_by_start_times(
    warehouse: Engine,
    jenkins: RestartingJenkins,
    replay_server: ReplayServer,
    shas: dict[str, str],
    tmp_path: Path,
    count: int,
    asked: list[str],
) -> None:
    """The job restarted and ran past build 150 before the next sync: 150 is another build."""
    config = make_config(tmp_path, replay_server)
    assert not both(warehouse, config).failed
    before = old_rows(warehouse)
    # a job that never restarted keeps its bookmark as it was (and its ids)
    state = SyncContext(warehouse, config, "jenkins").bookmark("builds", "ledger")
    settings = {"environment": "production", "job": "acme/ledger/main"}  # its deploy settings
    assert state == {"cursor": 150, "etag": None, "settings": settings}

    new = recreated(count, shas["c4"])
    jenkins.serve(new)
    served = len(replay_server.requests)
    second = both(warehouse, config).result("jenkins")
    assert second.errors == []
    assert old_rows(warehouse) == before
    runs, deployments = by_id(warehouse, "ci_runs"), by_id(warehouse, "deployments")
    assert (len(runs), len(deployments)) == (150 + count, 149 + count)
    assert runs[series_id(150)]["started_at"] == RECREATED + timedelta(minutes=1500)
    assert runs[f"{PREFIX}:150"]["started_at"] == START + timedelta(minutes=1500)
    assert second.warnings == [
        WARNING.format(
            newest=count, before=150, reused=" and now another build", series=2, stored=150
        )
    ]
    assert pages_since(replay_server, served) == asked

    # more than a page of builds between two syncs is no restart: build `count` is read
    # once to tell, and the series goes on
    more = recreated(count + 150, shas["c4"])
    jenkins.serve(more)
    served = len(replay_server.requests)
    third = both(warehouse, config).result("jenkins")
    assert (third.errors, third.warnings, third.new) == ([], [], 2 * 150)  # runs, deployments
    assert pages_since(replay_server, served) == ["{0,100}", f"/{count}/api/json", "{100,200}"]
    assert len(by_id(warehouse, "ci_runs")) == 150 + count + 150
    assert not [key for key in by_id(warehouse, "ci_runs") if key.endswith(":series:3")]

    assert_a_resync_changes_nothing(warehouse, config)


def test_a_sync_failing_half_way_through_the_new_series_resumes_without_loss(
    warehouse: Engine,
    jenkins: RestartingJenkins,
    replay_server: ReplayServer,
    shas: dict[str, str],
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, replay_server)
    assert not both(warehouse, config).failed
    before = old_rows(warehouse)
    jenkins.serve(recreated(250, shas["c4"]))
    jenkins.failing = {"{100,200}"}
    warning = WARNING.format(
        newest=250, before=150, reused=" and now another build", series=2, stored=150
    )

    failed = both(warehouse, config, checkpoint_every=1).result("jenkins")
    (error,) = failed.errors
    assert error.startswith("jenkins: HTTP 500 from ") and "%7B100,200%7D" in error
    assert old_rows(warehouse) == before
    assert len(by_id(warehouse, "ci_runs")) == 150 + 100  # the first page is kept
    assert failed.warnings == [warning]

    jenkins.failing = set()
    served = len(replay_server.requests)
    resumed = both(warehouse, config, checkpoint_every=1).result("jenkins")
    assert resumed.errors == []
    assert old_rows(warehouse) == before
    runs, deployments = by_id(warehouse, "ci_runs"), by_id(warehouse, "deployments")
    assert (len(runs), len(deployments)) == (150 + 250, 149 + 250)
    assert resumed.warnings == [warning]  # said again: the series was not listed through
    assert pages_since(replay_server, served) == ["{100,200}", "{200,300}"]

    assert_a_resync_changes_nothing(warehouse, config)


def test_a_sync_killed_at_every_checkpoint_of_a_restart_ends_as_an_uninterrupted_one(
    warehouse: Engine,
    jenkins: RestartingJenkins,
    replay_server: ReplayServer,
    shas: dict[str, str],
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, replay_server)
    uninterrupted = open_warehouse(f"sqlite:///{tmp_path / 'uninterrupted.db'}")
    try:
        for engine in (warehouse, uninterrupted):
            assert not sync(engine, config, JenkinsSource).failed
        jenkins.serve(recreated(250, shas["c4"]))
        kills, summary = sync_through_kills(warehouse, config, JenkinsSource)
        # the first kill comes right after the restart is saved, before any page of it
        assert kills >= 2 and not summary.failed
        assert not sync(uninterrupted, config, JenkinsSource).failed
        assert snapshot(warehouse) == snapshot(uninterrupted)
        assert len(by_id(warehouse, "ci_runs")) == 150 + 250
        assert len(by_id(warehouse, "deployments")) == 149 + 250
    finally:
        uninterrupted.dispose()


def test_full_after_a_restart_keeps_every_series_and_a_second_restart_is_a_third_series(
    warehouse: Engine,
    jenkins: RestartingJenkins,
    replay_server: ReplayServer,
    shas: dict[str, str],
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, replay_server)
    assert not both(warehouse, config).failed
    before = old_rows(warehouse)
    jenkins.serve(recreated(12, shas["c4"]))
    # `poise sync --full`, as the docs said to run after recreating a job: it sees the
    # restart too, rather than writing the new builds over the old ones
    full = both(warehouse, config, full=True).result("jenkins")
    assert full.errors == []
    assert old_rows(warehouse) == before
    assert len(by_id(warehouse, "ci_runs")) == 150 + 12
    assert full.warnings == [WARNING.format(newest=12, before=150, reused="", series=2, stored=150)]

    settled = snapshot(warehouse)
    again = both(warehouse, config, full=True).result("jenkins")
    assert (again.errors, again.warnings, again.new, again.updated) == ([], [], 0, 0)
    assert snapshot(warehouse) == settled

    # recreated once more, three days later: builds 1-5 are a third series
    jenkins.serve(recreated(5, shas["c4"], at=RECREATED + timedelta(days=3)))
    third = both(warehouse, config).result("jenkins")
    runs = by_id(warehouse, "ci_runs")
    assert len(runs) == 150 + 12 + 5
    assert {series_id(n, 3) for n in range(1, 6)} <= set(runs)
    assert old_rows(warehouse) == before
    assert all(series_id(n) in runs for n in range(1, 13))
    assert third.warnings == [WARNING.format(newest=5, before=12, reused="", series=3, stored=162)]


def test_a_bookmark_guarding_no_stored_build_does_not_hide_a_recreated_jobs_builds(
    warehouse: Engine,
    jenkins: RestartingJenkins,
    replay_server: ReplayServer,
    shas: dict[str, str],
    tmp_path: Path,
) -> None:
    """`since` kept every build of the old job out (its bookmark is build 150 all the
    same); the recreated job's builds, all after `since`, are collected."""
    since = f"{RECREATED:%Y-%m-%dT%H:%M:%SZ}"
    config = make_config(tmp_path, replay_server, since=since)
    first = both(warehouse, config).result("jenkins")
    assert first.errors == [] and by_id(warehouse, "ci_runs") == {}
    jenkins.serve(recreated(12, shas["c4"]))
    second = both(warehouse, config).result("jenkins")
    assert (second.errors, second.warnings) == ([], [])  # nothing was stored to keep apart
    assert sorted(by_id(warehouse, "deployments")) == sorted(f"{PREFIX}:{n}" for n in range(1, 13))


def test_a_job_named_anew_in_the_config_is_listed_in_full_below_the_old_ones_bookmark(
    warehouse: Engine,
    jenkins: RestartingJenkins,
    replay_server: ReplayServer,
    shas: dict[str, str],
    tmp_path: Path,
) -> None:
    """`services[].jenkins.job` changed to another job, whose numbers are below the old
    job's bookmark (150): its builds are all collected, under their own ids, and the old
    job's are removed (a first sync with the new job holds none of them)."""
    assert not both(warehouse, make_config(tmp_path, replay_server)).failed
    release = "/job/acme/job/ledger/job/release/api/json"
    RestartingJenkins(replay_server, recreated(12, shas["c4"]), path=release)
    config = make_config(tmp_path, replay_server)
    service = config.services[0]
    assert service.jenkins is not None
    moved = service.model_copy(
        update={"jenkins": service.jenkins.model_copy(update={"job": "acme/ledger/release"})}
    )
    config = config.model_copy(update={"services": [moved]})
    result = both(warehouse, config).result("jenkins")
    assert (result.errors, result.warnings) == ([], [])
    runs = by_id(warehouse, "ci_runs")
    assert set(runs) == {f"jenkins:acme/ledger/release:build:{n}" for n in range(1, 13)}


@pytest.mark.parametrize("series", [BuildSeries(1, {}), BuildSeries(2, {})], ids=["first", "later"])
def test_the_newest_stored_build_is_read_from_the_end_of_an_index(
    sqlite_warehouse: Engine, series: BuildSeries
) -> None:
    """Asked for every job at every sync: with only `service` indexed it read every run of
    the service (≈ 55 ms a job at 100,000 builds), now one step of (service, started_at)."""
    query = newest_query("ledger", "jenkins", "ledger-deploy", series)
    compiled = query.compile(sqlite_warehouse, compile_kwargs={"literal_binds": True})
    with sqlite_warehouse.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "USING INDEX ix_ci_runs_service_started_at (service=?" in details, details
    # in started_at order from the index: only builds of one start time are sorted by id
    assert "TEMP B-TREE FOR ORDER BY" not in details, details

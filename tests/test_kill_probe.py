"""`poise sync` killed with SIGKILL at many moments, then synced again: nothing lost, nothing doubled.

The other kill tests stop a sync in-process by raising from a checkpoint hook, which never
lands in the middle of a write, between a write and its commit, inside a transaction or
while SQLite checkpoints its WAL. Here real `poise sync` processes are killed (`kill -9`):

- per engine, a warehouse is filled by uninterrupted syncs (the reference): a first sync,
  the sync after it, then an incremental sync (2,000 new commits and four new deploy tags
  in the big repository; a GitHub and a GitLab deployment that were in progress have
  finished) and the sync after that;
- another warehouse goes through the same two syncs as chains: each sync of a chain is
  killed at its own moment and resumes what the ones before it left, then one runs to
  its end and must leave exactly the reference's rows (canonical and derived, bookkeeping
  columns aside), no bookmark still pending and no error; and the sync after it must ask
  the APIs exactly what the sync after the reference asked (path, query, answer status:
  an ETag lost would turn a 304 into a 200), i.e. only what is new;
- after every kill the warehouse's sync lock must be free at once (tests/test_sync_lock.py),
  on PostgreSQL within 3 s (the killed client's backend lets go of it when the statement
  it was running ends): the next sync of the chain is started right after and would exit
  1 on a held lock.

Sources, all in one config and one sync: Local Git over a generated repository of 6,000
commits (bench/gitrepo.py) and a small one behind Jenkins, and the GitHub, GitLab, Jenkins,
PagerDuty and Opsgenie stories of their collector tests, served by one loopback replay
server in this process. Each sync is a process forked from one Python process that has
imported Poise already (ZYGOTE): it starts in milliseconds, so the chains stay quick.
Kill moments (`plan`): part of the time the reference took from its start to its lock
(opening, migrating, writing the catalog); seeded delays after it took
its lock, within the time the reference's Git ingest took; the n-th request to a path
(the server sends SIGKILL from its handler thread, before answering or 2-10 ms after);
the end (the derived tables being rebuilt); and on SQLite the moment SQLite starts
writing its WAL back into the database file. On SQLite once with the shipped checkpoint
intervals and once with a checkpoint after every page (every 1,000 commits for Git), which
makes resuming from a bookmark left half-way the common case; the same on PostgreSQL.
Deterministic (fixed seeds); POISE_KILL_PROBE_SEED picks other moments for a longer search
by hand.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from conftest import POSTGRES_ENV, REPO_ROOT, postgres_base_url
from incident_fakes import FakeOpsgenie, FakePagerDuty
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine, create_engine, select, text
from test_github_collector import REPO as GITHUB_REPO
from test_github_collector import Story as GitHubStory
from test_gitlab_collector import PROJECT as GITLAB_PROJECT
from test_gitlab_collector import Story as GitLabStory
from test_jenkins_collector import Jenkins, finished_builds, ledger_repository
from test_opsgenie_collector import ALERTS
from test_opsgenie_collector import CHECKOUT as OPSGENIE_SERVICE
from test_opsgenie_collector import account as opsgenie_account
from test_pagerduty_collector import CHECKOUT, SEARCH
from test_pagerduty_collector import account as pagerduty_account

from poise.warehouse import open_warehouse, schema
from poise.warehouse.lock import SyncLocked, sync_lock

COMMITS = 6_000  # two batches of the Git collector's 5,000 (six of 1,000 at SMALL_CHECKPOINTS)
NEW_COMMITS = 2_000  # and then, with four new deploy tags, for an incremental sync
TOKENS = {
    "KILL_GITHUB_TOKEN": "ghp_KillProbeT0ken",
    "KILL_GITLAB_TOKEN": "glpat-KillProbeT0ken",
    "KILL_JENKINS_TOKEN": "11a3KillProbeJenkinsT0ken",
    "KILL_JENKINS_USER": "ci-bot",
    "KILL_PAGERDUTY_TOKEN": "u+KillProbePdT0ken",
    "KILL_OPSGENIE_KEY": "0f6c2d44-kill-probe-key",
}
# Checkpoint intervals of the second pass: every page of an HTTP stream, every 1,000 commits.
SMALL_CHECKPOINTS = (1, 1000)
# The processes of the syncs: forked from one Python process that has imported what a
# sync imports at start-up (ZYGOTE), so that each of the many syncs is a new process
# running `poise sync` (poise.cli.main, as the `poise` executable runs it) without paying
# for Python's start-up again, on a machine of two cores. For each line it reads (the
# arguments, the checkpoint intervals, a log file) it forks a child and says `pid N`; for
# each child that ends, `exit N CODE` (-9: SIGKILL). Writes are single os.write calls,
# as the SIGCHLD handler may run between any two bytecodes of the main loop.
ZYGOTE = """
import json, os, signal, sys
import collectors.runner, poise.commands.sync
from collectors.base import Source
from collectors.git import GitSource
from poise.cli import main

report = os.dup(1)


def reap(signum, frame):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        os.write(report, f"exit {pid} {os.waitstatus_to_exitcode(status)}\\n".encode())


signal.signal(signal.SIGCHLD, reap)
os.write(report, b"ready\\n")
for line in sys.stdin:
    order = json.loads(line)
    pid = os.fork()
    if pid:
        os.write(report, f"pid {pid}\\n".encode())
        continue
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the sync waits for its own git processes
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.close(report)
    code = 1
    try:
        if order["checkpoints"]:
            Source.checkpoint_every, GitSource.checkpoint_every = order["checkpoints"]
        code = main(order["argv"])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
"""
# Other kill moments, for a longer search by hand (`for s in $(seq 100 140); do
# POISE_KILL_PROBE_SEED=$s pytest tests/test_kill_probe.py …`); the suite runs the default.
SEED_ENV = "POISE_KILL_PROBE_SEED"
# Columns that say when or from which payload a row was written, not what it holds.
BOOKKEEPING = {"updated_at", "raw_id", "computed_at"}
COMPARED = (
    "teams",
    "services",
    "repositories",
    "changes",
    "deployments",
    "deployment_changes",
    "incidents",
    "ci_runs",
    "oncall_pages",
    "attributions",
    "change_leads",
)


# in the order `poise sync` runs them
HTTP_SOURCES = ("github", "gitlab", "jenkins", "pagerduty", "opsgenie")
LAST = HTTP_SOURCES[-1]


def asked(request: RecordedRequest) -> str:
    """A request as the "fetches only what is new" check compares it: path and query, but
    PagerDuty's `since` and `until`, which follow the clock."""
    clock = ("since", "until") if source_of(request.path) == "pagerduty" else ()
    query = sorted((k, v) for k, v in request.query.items() if k not in clock)
    return request.path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")


def source_of(path: str) -> str:
    if path.startswith(("/repos/", "/repositories/")):
        return "github"
    if path.startswith("/api/v4/"):
        return "gitlab"
    if path.startswith("/job/"):
        return "jenkins"
    if path.startswith("/incidents"):
        return "pagerduty"
    if path.startswith(("/v1/incidents", "/v2/alerts")):
        return "opsgenie"
    return "other"


# --- the loopback APIs ------------------------------------------------------------------------


class KillingServer(ReplayServer):
    """The replay server, which can SIGKILL the sync it serves when a given request arrives."""

    def __init__(self) -> None:
        super().__init__()
        self._armed: Armed | None = None
        self._seen = 0
        # each request as it was answered: (what, status, when: monotonic), in that order
        self.answered: list[tuple[str, int, float]] = []
        self.landed: str | None = None  # where the last armed kill landed
        # a killed client leaves a connection reset behind: not worth a traceback on stderr
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]

    def arm(self, armed: Armed) -> None:
        with self._lock:
            self._armed, self._seen, self.landed = armed, 0, None

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def _answer(self, request: RecordedRequest) -> Reply:
        reply = super()._answer(request)
        with self._lock:
            self.answered.append((asked(request), reply.status, time.monotonic()))
            armed = self._armed
            if armed is None:
                return reply
            if source_of(request.path) in armed.later:
                delay = 0.0
                self.landed = f"at its first {source_of(request.path)} request (fallback)"
            elif armed.hits(request.path):
                self._seen += 1
                if self._seen != armed.occurrence:
                    return reply
                delay, self.landed = armed.delay, "as planned"
            else:
                return reply
            self._armed = None
        if delay:  # the answer goes out: the kill finds the sync storing it, or further on
            threading.Timer(delay, sigkill, (armed.pid,)).start()
        else:  # the sync waits for this answer: killed with its request in flight
            sigkill(armed.pid)
        return reply


@dataclass(frozen=True)
class Armed:
    """Kill `pid` at the occurrence-th request to `kill.path` (to any path of `kill.source`),
    then after `kill.delay` seconds; or at once at the first request to one of the `later`
    sources, whichever comes first."""

    pid: int
    kill: Kill
    later: frozenset[str]

    def hits(self, path: str) -> bool:
        if self.kill.start != "request":
            return False
        return path == self.kill.path or source_of(path) == self.kill.source

    @property
    def occurrence(self) -> int:
        return self.kill.occurrence

    @property
    def delay(self) -> float:
        return self.kill.delay


def sigkill(pid: int) -> None:
    with suppress(ProcessLookupError):  # it ended first
        os.kill(pid, signal.SIGKILL)


@dataclass
class World:
    """Everything a sync reads, shared by the tests of the module, and the process launcher."""

    folder: Path
    server: KillingServer
    configs: tuple[Path, Path]  # the first sync's, and the incremental one's (mono-next)
    stories: tuple[GitHubStory, GitLabStory]
    launcher: Launcher

    def phase(self, phase: int) -> None:
        """The APIs as the first sync (0) or the incremental one (1) finds them: in between,
        a GitHub deployment and a GitLab one in progress have finished."""
        github, gitlab = self.stories
        github.deploy_1003_finished = gitlab.deploy_90_finished = phase == 1


def serve_stories(server: KillingServer) -> tuple[GitHubStory, GitLabStory]:
    github, gitlab = GitHubStory(server).serve(), GitLabStory(server).serve()
    pagerduty: FakePagerDuty = pagerduty_account(server)
    opsgenie: FakeOpsgenie = opsgenie_account(server)
    assert pagerduty.incidents and opsgenie.incidents
    return github, gitlab


def serve_jenkins(server: KillingServer, shas: dict[str, str]) -> None:
    Jenkins(server, finished_builds(shas))


def extend_repository(source: Path, target: Path, commits: int) -> None:
    """A copy of `source` whose main branch has `commits` more commits and a deploy tag
    every 500: what an incremental sync reads (new commits, new tags)."""
    shutil.copytree(source, target)
    out: list[bytes] = []
    clock = 1_700_000_000
    for n in range(1, commits + 1):
        clock += 600
        message = f"Next change {n}".encode()
        content = f"next {n}\n".encode()
        out.append(f"commit refs/heads/main\nmark :{n}\n".encode())
        out.append(f"author Erin Park <erin@example.com> {clock - 60} +0100\n".encode())
        out.append(f"committer Erin Park <erin@example.com> {clock} +0100\n".encode())
        out.append(b"data %d\n%s\n" % (len(message), message))
        if n == 1:
            out.append(b"from refs/heads/main^0\n")
        out.append(f"M 100644 inline services/api/next_{n % 50}.py\n".encode())
        out.append(b"data %d\n%s\n" % (len(content), content))
        if n % 500 == 0:
            out.append(f"tag v2.{n // 500}\nfrom :{n}\n".encode())
            out.append(f"tagger Erin Park <erin@example.com> {clock + 60} +0100\n".encode())
            out.append(b"data 7\nrelease\n")
    out.append(b"done\n")
    subprocess.run(
        ["git", "-C", str(target), "fast-import", "--quiet", "--done"],
        input=b"".join(out),
        check=True,
    )


def write_config(folder: Path, server: KillingServer, name: str, mono: str) -> Path:
    def settings(token: str, **more: Any) -> dict[str, Any]:
        return {"token_env": token, "timeout_seconds": 20, "max_retries": 1, **more}

    document = {
        "teams": [
            {"name": "payments", "timezone": "Europe/Berlin"},
            {"name": "discovery", "timezone": "America/New_York"},
            {"name": "finance"},
            {"name": "platform"},
        ],
        "services": [
            {"name": "mono", "team": "platform", "git": {"path": mono, "deploy_tags": "v*"}},
            {
                "name": "checkout",
                "team": "payments",
                "github": {
                    "repo": GITHUB_REPO,
                    "environment_map": {"stage": "staging"},
                    "incident_label": "incident",
                },
                "pagerduty": {"service_id": CHECKOUT},
            },
            {"name": "search-api", "team": "discovery", "pagerduty": {"service_id": SEARCH}},
            {
                "name": "storefront",
                "team": "payments",
                "opsgenie": {"service_id": OPSGENIE_SERVICE, "alert_query": ALERTS},
            },
            {
                "name": "billing",
                "team": "finance",
                "gitlab": {"project": GITLAB_PROJECT, "environment_map": {"stage": "staging"}},
            },
            {
                "name": "ledger",
                "team": "finance",
                "git": {"path": "ledger"},
                "jenkins": {"job": "acme/ledger/main"},
            },
        ],
        "sources": {
            "github": settings("KILL_GITHUB_TOKEN", base_url=server.base_url),
            "gitlab": settings("KILL_GITLAB_TOKEN", base_url=server.base_url + "/api/v4"),
            "jenkins": settings(
                "KILL_JENKINS_TOKEN", base_url=server.base_url, user_env="KILL_JENKINS_USER"
            ),
            "pagerduty": settings(
                "KILL_PAGERDUTY_TOKEN", base_url=server.base_url, since="2026-01-01"
            ),
            "opsgenie": settings("KILL_OPSGENIE_KEY", base_url=server.base_url),
        },
    }
    path = folder / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("kill")
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        from gitrepo import make_repo
    finally:
        sys.path.pop(0)
    make_repo(folder / "mono", COMMITS)
    extend_repository(folder / "mono", folder / "mono-next", NEW_COMMITS)
    shas = ledger_repository(folder)
    with KillingServer() as server:
        stories = serve_stories(server)
        serve_jenkins(server, shas)
        first = write_config(folder, server, "poise.yaml", "mono")
        configs = (first, write_config(folder, server, "next.yaml", "mono-next"))
        launcher = Launcher(folder)
        try:
            yield World(folder, server, configs, stories, launcher)
        finally:
            launcher.close()


# --- running `poise sync` ---------------------------------------------------------------------


class Child:
    """A sync process forked by the zygote: what the tests use of subprocess.Popen."""

    def __init__(self, pid: int, launcher: Launcher) -> None:
        self.pid = pid
        self.launcher = launcher

    @property
    def returncode(self) -> int | None:
        return self.launcher.codes.get(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self.launcher.ended(self.pid).wait(timeout):
            raise subprocess.TimeoutExpired(f"poise sync (pid {self.pid})", timeout or 0)
        code = self.returncode
        assert code is not None
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


@dataclass
class Run:
    """One `poise sync` process."""

    process: Child
    log: Path
    spawned: float  # monotonic
    locked: float = 0.0  # when it was seen holding the sync lock

    def wait(self) -> int:
        return self.process.wait(timeout=120)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class Launcher:
    """Starts `poise sync` processes through the zygote (ZYGOTE), and hears them end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        env = {
            k: v for k, v in os.environ.items() if k not in ("POISE_CONFIG", "POISE_DATABASE_URL")
        }
        env.update(TOKENS, COLUMNS="200")
        self.zygote = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            cwd=folder,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.started = 0
        self.codes: dict[int, int] = {}
        self._ended: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._pids: queue.SimpleQueue[int] = queue.SimpleQueue()
        assert self.zygote.stdout is not None
        assert self.zygote.stdout.readline() == b"ready\n"  # its imports done
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.zygote.stdout is not None
        for line in self.zygote.stdout:
            word, *numbers = line.split()
            if word == b"pid":
                self._pids.put(int(numbers[0]))
            elif word == b"exit":
                pid, code = int(numbers[0]), int(numbers[1])
                self.codes[pid] = code
                self.ended(pid).set()

    def ended(self, pid: int) -> threading.Event:
        with self._lock:
            return self._ended.setdefault(pid, threading.Event())

    def launch(self, argv: list[str], checkpoints: tuple[int, int] | None) -> Run:
        self.started += 1
        log = self.folder / f"sync-{self.started:03d}.log"
        order = {"checkpoints": checkpoints, "argv": argv, "log": str(log)}
        assert self.zygote.stdin is not None
        self.zygote.stdin.write(json.dumps(order).encode() + b"\n")
        self.zygote.stdin.flush()
        spawned = time.monotonic()
        return Run(Child(self._pids.get(timeout=60), self), log, spawned)

    def close(self) -> None:
        assert self.zygote.stdin is not None
        self.zygote.stdin.close()  # no more orders: it exits
        self.zygote.wait(timeout=60)


def start_sync(world: World, url: str, checkpoints: tuple[int, int] | None, phase: int = 0) -> Run:
    """`poise sync` of phase 0 (the first sync) or 1 (the incremental one)."""
    argv = ["sync", "--config", str(world.configs[phase]), "--db", url]
    return world.launcher.launch(argv, checkpoints)


def sqlite_file(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def holds_lock(url: str, pid: int, admin: Engine | None) -> bool:
    """Whether process `pid` holds the warehouse's sync lock (it then starts collecting)."""
    database = sqlite_file(url)
    if database is not None:  # the lock file beside the database names its holder
        try:
            holder = json.loads(
                database.with_name(database.name + ".sync.lock").read_text() or "{}"
            )
        except (OSError, ValueError):
            return False
        return bool(holder.get("pid") == pid)
    assert admin is not None
    with admin.connect() as connection:
        found = connection.execute(
            text("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE :label"),
            {"label": f"poise sync pid={pid} %"},
        ).first()
    return found is not None


def wait_for_lock(run: Run, url: str, admin: Engine | None) -> bool:
    """Poll (another process gives no event) until the sync holds its lock; False if it
    was killed first (a kill armed at a request)."""
    deadline = time.monotonic() + 60
    while not holds_lock(url, run.process.pid, admin):
        if run.process.poll() is not None:
            assert run.process.returncode == -signal.SIGKILL, run.output()
            return False
        assert time.monotonic() < deadline, f"the sync never took its lock:\n{run.output()}"
        time.sleep(0.003)  # the sync gets the CPU meanwhile (two cores)
    run.locked = time.monotonic()
    return True


def wait_for_checkpoint(run: Run, database: Path) -> bool:
    """Poll until SQLite writes the database file itself, which in WAL mode only a WAL
    checkpoint does (pages copied back from the log): True then, False if the sync ended."""
    before = database.stat()
    while run.process.poll() is None:
        now = database.stat()
        if (now.st_size, now.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            return True
        time.sleep(0.001)
    return False


# --- reading a warehouse ----------------------------------------------------------------------


def business_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each compared table's rows, bookkeeping columns aside, sorted; datetimes in UTC."""
    engine = create_engine(url)
    found: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as connection:
            for name in COMPARED:
                table = schema.metadata.tables[name]
                columns = [c for c in table.c if c.name not in BOOKKEEPING]
                rows = connection.execute(select(*columns)).all()
                found[name] = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
    finally:
        engine.dispose()
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


def differences(
    found: dict[str, list[tuple[Any, ...]]], expected: dict[str, list[tuple[Any, ...]]]
) -> dict[str, dict[str, Any]]:
    """Per table that differs: how many rows each side has, and a few rows only one has."""
    result = {}
    for name in COMPARED:
        if found[name] == expected[name]:
            continue
        have, want = Counter(found[name]), Counter(expected[name])
        result[name] = {
            "rows": (sum(have.values()), sum(want.values())),
            "extra": list((have - want).elements())[:5],
            "missing": list((want - have).elements())[:5],
        }
    return result


def sync_states(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(select(schema.sync_state)).mappings()]
    finally:
        engine.dispose()


def lock_is_free(url: str, grace: float = 3.0) -> bool:
    """Whether a sync could take the lock within `grace` seconds (milliseconds, longer on
    a busy machine). PostgreSQL: a killed client's backend keeps its session's advisory
    lock until the statement it was running ends and it finds the connection gone. SQLite:
    a git process the sync was starting when it was killed holds its copy of the lock
    file's descriptor (a `flock` lives while any copy is open) from the fork until it runs
    git, which closes it; one CI run on a loaded machine saw the lock held just after a
    kill landing where the Git ingest starts its processes."""
    deadline = time.monotonic() + grace
    engine = open_warehouse(url, migrate=False)
    try:
        while True:
            try:
                with sync_lock(engine, url):
                    return True
            except SyncLocked:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
    finally:
        engine.dispose()


# --- the kill moments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """When to kill one sync. `start`:

    - "spawn": `delay` seconds after the process started (opening, migrating the warehouse,
      writing the catalog: before the lock);
    - "lock": `delay` seconds after it took its lock (the Git ingest);
    - "checkpoint": when SQLite starts writing its WAL back into the database file;
    - "request": at the occurrence-th request to `path` (or to any path of `source`), then
      after `delay` seconds.

    A kill meant for Git (spawn, lock) lands at the first API request at the latest, one
    meant for an HTTP source at the first request of the next source: the sources after
    it still have everything to do, so the next moments of the chain are ahead of where
    it stopped. A checkpoint comes at the latest when the sync closes the warehouse (the
    last connection closed writes the whole WAL back).
    """

    start: str = "request"
    delay: float = 0.0
    path: str | None = None
    occurrence: int = 1
    source: str | None = None

    @property
    def of(self) -> str:
        """The source it is meant for."""
        if self.start == "checkpoint":  # the last one comes as the sync closes the warehouse
            return LAST
        if self.start != "request":
            return "git"
        return self.source or source_of(str(self.path))

    def __str__(self) -> str:
        after = f" + {self.delay * 1000:.0f} ms" if self.delay else ""
        if self.start == "request":
            return f"request {self.occurrence} to {self.path or self.source}{after}"
        if self.start == "checkpoint":
            return "a WAL checkpoint"
        return f"{self.start}{after}"


# Kills per HTTP source: in a first sync (everything to fetch), in the incremental one
# (a deployment finished on GitHub and on GitLab; Jenkins and PagerDuty ask little).
REQUEST_KILLS = {
    "github": (3, 1),
    "gitlab": (3, 1),
    "jenkins": (1, 0),
    "pagerduty": (2, 0),
    "opsgenie": (1, 0),
}


def plan(
    reference: dict[str, Any], seed: int, *, sqlite: bool, first: bool, spawn: bool
) -> list[Kill]:
    """Kill moments in the order an uninterrupted sync passes them, from a fixed seed.

    Each sync of the chain resumes what the killed ones before it left, so a moment later
    in the reference order is still ahead of it: the start of a first sync (migrating the
    new warehouse), the Git ingest (delays within the reference's Git time), requests of
    each HTTP source (REQUEST_KILLS), the end (as
    long after the last source's first request as that source took, plus part of what the
    reference took after its last request: the derived tables) and, on SQLite, a WAL
    checkpoint.
    """
    rng = random.Random(seed)
    order: list[tuple[str, int]] = reference["order"]
    kills = [Kill("spawn", reference["boot_seconds"] * rng.uniform(0.6, 0.95))] if spawn else []
    git = reference["git_seconds"]
    moments = sorted(rng.uniform(0.05, 0.9) for _ in range(3 if first else 2))
    kills += [Kill("lock", git * moment) for moment in moments]
    for source in HTTP_SOURCES:
        places = [i for i, (path, _) in enumerate(order) if source_of(path) == source]
        count = REQUEST_KILLS[source][0 if first else 1]
        for i in sorted(rng.sample(places, min(count, len(places)))):
            path, occurrence = order[i]
            delay = rng.choice((0.0, 0.0, 0.002, 0.01))
            kills.append(Kill(delay=delay, path=path, occurrence=occurrence))
    tail = reference["last_source_seconds"] + rng.uniform(0.1, 0.7) * reference["tail_seconds"]
    kills.append(Kill(delay=tail, source=LAST))
    if sqlite:
        kills.append(Kill("checkpoint"))
    return kills


# --- the warehouses ------------------------------------------------------------------------------


def reference_of(world: World, url: str, admin: Engine | None) -> list[dict[str, Any]]:
    """Per phase (the first sync, the incremental one) an uninterrupted sync and the one
    after it: rows, requests, durations."""
    phases = []
    for phase in (0, 1):
        world.phase(phase)
        server = world.server
        first = len(server.answered)
        run = start_sync(world, url, None, phase)
        assert wait_for_lock(run, url, admin)
        assert run.wait() == 0, run.output()
        ended = time.monotonic()
        second = len(server.answered)
        answered = server.answered[first:second]
        assert answered, run.output()
        again = start_sync(world, url, None, phase)
        assert again.wait() == 0, again.output()
        seen: Counter[str] = Counter()
        order = []
        for what, _, _ in answered:
            path = what.split("?", 1)[0]
            seen[path] += 1
            order.append((path, seen[path]))
        arrivals = [at for _, _, at in answered]
        last = [at for what, _, at in answered if source_of(what) == LAST]
        phases.append(
            {
                "rows": business_rows(url),
                "order": order,
                "again": Counter((what, status) for what, status, _ in server.answered[second:]),
                "boot_seconds": run.locked - run.spawned,
                "git_seconds": min(arrivals) - run.locked,
                "last_source_seconds": max(arrivals) - min(last),
                "tail_seconds": ended - max(arrivals),
            }
        )
    assert len(phases[1]["rows"]["changes"]) > len(phases[0]["rows"]["changes"])
    return phases


@dataclass
class Target:
    """A warehouse to kill syncs into, the engine it is on, and that engine's reference."""

    url: str
    admin: Engine | None  # PostgreSQL: a connection to see who holds the lock
    world: World
    reference: list[dict[str, Any]]  # per phase


@contextmanager
def postgres_schema() -> Iterator[tuple[str, Engine]]:
    """A warehouse URL in a schema of its own (as conftest's postgres_url), and an admin engine."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(
            f"PostgreSQL half of the matrix: set {POSTGRES_ENV} "
            "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run it"
        )
    name = f"t_kill_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={name}')}", admin
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def references(world: World) -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """Each engine's reference, made on first use and kept for the module."""
    with ExitStack() as stack:
        found: dict[str, list[dict[str, Any]]] = {}

        def of(kind: str) -> list[dict[str, Any]]:
            if kind not in found:
                if kind == "sqlite":
                    url, admin = f"sqlite:///{world.folder / 'reference.db'}", None
                else:
                    url, admin = stack.enter_context(postgres_schema())
                found[kind] = reference_of(world, url, admin)
            return found[kind]

        yield of


@pytest.fixture
def target(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A new warehouse on `engine` (skipped without PostgreSQL before anything is built)."""

    def reference(kind: str) -> tuple[World, list[dict[str, Any]]]:
        references = request.getfixturevalue("references")
        return request.getfixturevalue("world"), references(kind)

    if engine == "sqlite":
        yield Target(f"sqlite:///{tmp_path / 'killed.db'}", None, *reference("sqlite"))
        return
    with postgres_schema() as (url, admin):
        yield Target(url, admin, *reference("postgresql"))


# --- the test -------------------------------------------------------------------------------------


def run_killed(
    world: World,
    target: Target,
    kill: Kill,
    checkpoints: tuple[int, int] | None,
    phase: int,
) -> tuple[int, str, str]:
    """One sync, killed at `kill` unless it ends first: its exit code, where the kill landed,
    and what it printed."""
    run = start_sync(world, target.url, checkpoints, phase)
    server = world.server
    later = HTTP_SOURCES[HTTP_SOURCES.index(kill.of) + 1 :] if kill.of != "git" else HTTP_SOURCES
    server.arm(Armed(run.process.pid, kill, frozenset(later)))
    landed = ""
    try:
        if kill.start == "spawn":
            with suppress(subprocess.TimeoutExpired):  # returns early when the sync ends first
                run.process.wait(timeout=max(0.0, run.spawned + kill.delay - time.monotonic()))
            landed = "as planned"
        elif kill.start in ("lock", "checkpoint") and wait_for_lock(run, target.url, target.admin):
            if kill.start == "lock":
                with suppress(subprocess.TimeoutExpired):
                    run.process.wait(timeout=max(0.0, run.locked + kill.delay - time.monotonic()))
            else:
                database = sqlite_file(target.url)
                assert database is not None
                wait_for_checkpoint(run, database)
            landed = "as planned"
        if run.process.poll() is None and landed:
            run.process.send_signal(signal.SIGKILL)
        code = run.wait()
    finally:
        server.disarm()
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()
    if code != -signal.SIGKILL:
        return code, "not: the sync ended first", run.output()
    return code, server.landed or landed, run.output()


def killed_chain(
    world: World,
    target: Target,
    checkpoints: tuple[int, int] | None,
    phase: int,
    kills: list[Kill],
) -> None:
    """Sync with each kill in turn, then once to the end: the reference's rows, and the
    next sync fetches what the next sync after the reference fetched."""
    reference = target.reference[phase]
    where: list[str] = []  # each kill and where it landed, for the messages
    for kill in kills:
        code, landed, output = run_killed(world, target, kill, checkpoints, phase)
        where.append(f"{kill}: {landed}")
        assert code in (0, -signal.SIGKILL), (where, output)
        # the lock went with the process: the next sync can run at once
        assert lock_is_free(target.url), f"a sync killed at {kill} left its lock held"
    # each kill lands (a fallback keeps it within its source) but maybe the last source's
    # second request and the end (`Kill(source=LAST)`), which may find nothing left to do:
    # its delay comes from the reference's timing, and a sync of a chain that resumed
    # much of its work, or a quieter moment of the machine, ends sooner
    requests_to_last = [k for k in kills if k.of == LAST and k.start == "request" and k.path]
    may_miss = requests_to_last[1:] + [k for k in kills if k.source == LAST]
    missed = [k for w, k in zip(where, kills, strict=True) if w.endswith("ended first")]
    assert all(k in may_miss for k in missed), where

    final = start_sync(world, target.url, checkpoints, phase)
    assert final.wait() == 0, (where, final.output())
    found = business_rows(target.url)
    assert differences(found, reference["rows"]) == {}, where
    assert found == reference["rows"], where
    states = sync_states(target.url)
    assert [s for s in states if s["last_error"]] == [], where
    assert [s for s in states if '"pending"' in (s["bookmark"] or "")] == [], where

    # and the next sync fetches only what is new: what a sync after the reference fetched
    second = len(world.server.answered)
    again = start_sync(world, target.url, checkpoints, phase)
    assert again.wait() == 0, again.output()
    asked_again = Counter((what, status) for what, status, _ in world.server.answered[second:])
    assert asked_again == reference["again"], where
    assert business_rows(target.url) == reference["rows"], where


@pytest.mark.parametrize(
    ("engine", "checkpoints"),
    [
        ("sqlite", None),
        ("sqlite", SMALL_CHECKPOINTS),
        pytest.param("postgresql", None, marks=pytest.mark.postgres),
        pytest.param("postgresql", SMALL_CHECKPOINTS, marks=pytest.mark.postgres),
    ],
    ids=[
        "sqlite-shipped-checkpoints",
        "sqlite-small-checkpoints",
        "postgresql-shipped-checkpoints",
        "postgresql-small-checkpoints",
    ],
)
def test_syncs_killed_at_many_moments_end_with_the_rows_of_an_uninterrupted_one(
    target: Target, engine: str, checkpoints: tuple[int, int] | None
) -> None:
    world, sqlite = target.world, engine == "sqlite"
    seed = int(os.environ.get(SEED_ENV, "17")) + (0 if checkpoints is None else 12)
    for phase in (0, 1):  # a first sync, then an incremental one with new commits and tags
        world.phase(phase)
        kills = plan(
            target.reference[phase],
            seed + phase,
            sqlite=sqlite,
            first=phase == 0,
            spawn=phase == 0 and checkpoints is None,  # opening a warehouse: once per engine
        )
        killed_chain(world, target, checkpoints, phase, kills)

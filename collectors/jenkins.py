"""Jenkins: the builds of a service's job are its CI runs and its deployments.

For every service with a `jenkins:` block (docs/collectors.md, "Jenkins"):

- `GET <job>/api/json?tree=allBuilds[…]{M,N}` lists builds newest first, 100 at a time
  (`builds` would stop at the newest 100), down to the bookmark: the last build number
  stored, held back by any build still running, so it is read again once finished; on a
  first sync, builds started before `sources.jenkins.since` are neither stored nor paged past;
- a job that numbers its builds from 1 again (deleted and recreated, renamed back, a new
  Jenkins) is seen on that first page: the newest build stored is no longer there with its
  start time (or, when it is below the page, `GET <job>/<number>/api/json` says so). Its
  builds are then a new series, listed in full as on a first sync, with ids ending in
  `:series:<n>` so that no number used again replaces a stored build; the first series'
  ids are unchanged, and the series is kept in the bookmark (`BuildSeries`);
- every build is a `ci_runs` row; every finished one (a `result`, no longer `building`)
  is a deployment to the block's `environment` (`deployed_at` = `timestamp + duration`,
  epoch milliseconds), its sha the `lastBuiltRevision` of the checkout whose remote URL
  is the service's repository; a build without a start time is skipped with a warning;
- with a `git:` block too, each successful production deployment is linked to the Git
  changes between the previous one's sha and its own (`git rev-list` in the clone).

Auth is HTTP Basic `user:token`, sent with the first request (Jenkins answers 403, not a
401 challenge, when it is missing).
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import ColumnElement, Select, func, select

from collectors.base import (
    DeploySettings,
    Rows,
    Scope,
    Source,
    Stream,
    SyncContext,
    run_http_stream,
)
from collectors.git import OWN_SESSION, git_command
from collectors.http import HttpResponse, NotFoundError, PageRequest
from collectors.shipped import Commit, link_deployments
from poise.errors import ConfigError
from poise.timeutil import from_epoch_millis, utcnow
from poise.vocab import RunStatus, deployment_status, normalize_status
from poise.warehouse import schema
from poise.warehouse.sync_state import read_state

PAGE = 100
TREE = (
    "allBuilds[number,url,timestamp,duration,building,result,"
    "actions[lastBuiltRevision[SHA1,branch[name]],remoteUrls]]"
)
# How long a build that says it is still running is waited for.
HOLD = timedelta(days=2)


@dataclass(frozen=True)
class RangePaginator:
    """Tree ranges `{M,N}` (M inclusive, N exclusive): the next `size` builds, until a short page."""

    size: int = PAGE
    # `sources.jenkins.since`: builds come newest first, so a page ending in a build started
    # before it holds the last builds wanted (Jenkins cannot filter by time itself)
    since: datetime | None = None

    def next_request(
        self, response: HttpResponse, request: PageRequest, records: list[Any]
    ) -> PageRequest | None:
        if len(records) < self.size:
            return None
        if self.since is not None and started_before(records[-1], self.since):
            return None
        params = dict(request.params or {})
        match = re.search(r"\{(\d+),(\d+)\}$", str(params.get("tree", "")))
        end = int(match.group(2)) if match else self.size
        params["tree"] = f"{TREE}{{{end},{end + self.size}}}"
        return PageRequest(request.url, params)


def job_path(job: str) -> str:
    """`folder/app` -> `/job/folder/job/app`."""
    return "".join(f"/job/{quote(part, safe='')}" for part in job.strip("/").split("/"))


def revision(build: dict[str, Any], hint: str | None) -> str | None:
    """The built sha: of the checkout whose remote URL contains `hint`, else the first one.

    A checkout without a SHA1 (null) is no checkout: its sha is unknown, not "None"."""
    checkouts = [
        action
        for action in build.get("actions") or []
        if isinstance(action, dict)
        and isinstance(action.get("lastBuiltRevision"), dict)
        and action["lastBuiltRevision"].get("SHA1")
    ]
    if hint:
        wanted = repository_path(hint)
        exact = [
            action
            for action in checkouts
            if any(
                path == wanted or path.endswith("/" + wanted)
                for path in map(repository_path, map(str, action.get("remoteUrls") or []))
            )
        ]
        # `acme/ledger` is a part of `acme/ledger-pipeline-lib` too: the exact path wins
        matching = exact or [
            action
            for action in checkouts
            if any(hint in str(url) for url in action.get("remoteUrls") or [])
        ]
        checkouts = matching or checkouts
    return str(checkouts[0]["lastBuiltRevision"].get("SHA1")) if checkouts else None


def repository_path(url: str) -> str:
    """A remote URL's repository path, lower case: `git@github.com:Acme/Ledger.git`,
    `https://github.com/acme/ledger/` and `ssh://git@host:22/acme/ledger` -> `acme/ledger`."""
    path = re.sub(r"^[a-z][a-z0-9+.-]*://[^/]*/", "", url.strip(), flags=re.I)
    path = re.sub(r"^[^@/:]+@[^:/]+:", "", path)  # scp-like `user@host:path`
    return path.strip("/").removesuffix(".git").strip("/").lower()


def repository_hint(scope: Scope) -> str | None:
    """What the service's checkout URL contains: `repository`, the github repo or gitlab
    project, or the path of the local clone's `origin` (`acme/ledger`)."""
    service = scope.service
    if scope.location.repository:
        return str(scope.location.repository)
    if service.github is not None:
        return str(service.github.repo)
    if service.gitlab is not None:
        return str(service.gitlab.project)
    return scope.vars.get("origin")


def origin_path(repo: Path) -> str | None:
    """`git@github.com:acme/ledger.git` -> `acme/ledger` (None without an origin)."""
    done = subprocess.run(
        git_command(repo, "remote", "get-url", "origin"),
        capture_output=True,
        text=True,
        start_new_session=OWN_SESSION,
    )
    url = done.stdout.strip() if done.returncode == 0 else ""
    match = re.search(r"[:/]([^:/]+/[^/]+?)(?:\.git)?/?$", url)
    return match.group(1) if match else None


def started_before(build: dict[str, Any], since: datetime) -> bool:
    stamp = build.get("timestamp")
    return isinstance(stamp, int | float) and stamp > 0 and from_epoch_millis(stamp) < since


def running(build: dict[str, Any]) -> bool:
    """Not finished: `building`, or no `result` recorded yet (it would be one at the end)."""
    return bool(build.get("building")) or build.get("result") is None


# The `builds` bookmark's keys for a series after the first.
SERIES_KEY, BEGAN_KEY = "series", "series_began"


@dataclass(frozen=True)
class BuildSeries:
    """One run of a job's build numbers from 1, kept in the `builds` bookmark.

    Jenkins numbers a job's builds 1, 2, 3 …; a job deleted and created again (or renamed
    back, or moved to a fresh Jenkins) numbers them from 1 again. Each run of numbers is a
    series: 1 for the numbers as Poise first collected them, one more at each restart
    seen. From the second series on, build ids end in `:series:<n>`, so a number used
    again is a row of its own, and the ids of a job that never restarted (every existing
    warehouse's) stay what they were. A counter rather than a time: it is unique by
    construction and short enough to read on the dashboard.
    """

    number: int = 1
    # The restart that began it, for its warning: the newest build on the server then,
    # the newest build stored before it, and how many builds of the job were stored.
    began: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, bookmark: Mapping[str, Any]) -> BuildSeries:
        number = bookmark.get(SERIES_KEY)
        if not isinstance(number, int) or number < 2:
            return cls()
        return cls(number, dict(bookmark.get(BEGAN_KEY) or {}))

    def kept(self) -> dict[str, Any]:
        """The bookmark keys that say it (none for the first series: bookmarks unchanged)."""
        if self.number == 1:
            return {}
        return {SERIES_KEY: self.number, BEGAN_KEY: dict(self.began)}

    def build_id(self, job: str, number: int) -> str:
        return f"jenkins:{job}:build:{number}{self.suffix}"

    @property
    def suffix(self) -> str:
        return "" if self.number == 1 else f":series:{self.number}"

    def holds(self, run_id: ColumnElement[Any]) -> ColumnElement[bool]:
        """A condition on a `ci_runs.id` column: the row is a build of this series
        (job names cannot hold a `:`, so the suffix is never part of one)."""
        if self.number == 1:
            return ~run_id.contains(":series:", autoescape=True)
        return run_id.endswith(self.suffix, autoescape=True)

    def after_restart(self, *, newest: int, before: int, stored: int) -> BuildSeries:
        return BuildSeries(self.number + 1, {"newest": newest, "before": before, "stored": stored})

    def warning(self, service: str, job: str) -> str:
        newest, before = self.began.get("newest"), self.began.get("before")
        reused = (
            " and now another build"
            if newest is not None and before is not None and newest >= before
            else ""
        )
        return (
            f"jenkins: {service}: job {job} restarted its build numbers (newest #{newest}, "
            f"#{before} stored before{reused}); its builds are collected as a new series "
            f"(ids ending in :series:{self.number}), the {self.began.get('stored')} builds "
            "stored before are kept"
        )


FIRST_SERIES = BuildSeries()


@dataclass(frozen=True)
class StoredBuild:
    number: int
    started: int  # epoch milliseconds, as Jenkins gives `timestamp`


def start_millis(build: dict[str, Any]) -> int | None:
    stamp = build.get("timestamp")
    return int(stamp) if isinstance(stamp, int | float) and stamp > 0 else None


def as_millis(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def newest_query(service: str, source: str, job: str, series: BuildSeries) -> Select[Any]:
    """The row of `newest_stored`, read from the end of the (service, started_at) index."""
    runs = schema.ci_runs
    return (
        select(runs.c.id, runs.c.source_id, runs.c.started_at)
        .where(
            (runs.c.service == service)
            & (runs.c.source == source)
            & (runs.c.name == job)
            & series.holds(runs.c.id)
            & runs.c.started_at.is_not(None)
        )
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(1)
    )


def newest_stored(ctx: SyncContext, scope: Scope, series: BuildSeries) -> StoredBuild | None:
    """The latest-started build of the job stored in `series` (None: none stored yet).

    Builds start in number order within a series, so this is its highest number stored,
    read from the rows rather than the bookmark's cursor, which a running build holds
    back and `--full` does not read."""
    job = scope.location.job
    with ctx.engine.connect() as connection:
        row = connection.execute(newest_query(scope.key, ctx.source, job, series)).first()
    if row is None or not str(row.source_id or "").isdigit():
        return None
    number = int(row.source_id)
    if row.id != series.build_id(job, number):
        return None  # not a row this collector wrote (an import, another job's name)
    return StoredBuild(number, as_millis(row.started_at))


def stored_starts(
    ctx: SyncContext, scope: Scope, series: BuildSeries, numbers: Iterable[int]
) -> dict[int, int]:
    """Build number -> stored start (epoch ms), of those of `numbers` stored in `series`."""
    runs, job = schema.ci_runs, scope.location.job
    ids = {series.build_id(job, number): number for number in numbers}
    query = select(runs.c.id, runs.c.started_at).where(
        runs.c.id.in_(sorted(ids)) & runs.c.started_at.is_not(None)
    )
    with ctx.engine.connect() as connection:
        return {ids[row.id]: as_millis(row.started_at) for row in connection.execute(query)}


def stored_count(ctx: SyncContext, scope: Scope) -> int:
    runs = schema.ci_runs
    query = select(func.count()).where(
        (runs.c.service == scope.key)
        & (runs.c.source == ctx.source)
        & (runs.c.name == scope.location.job)
    )
    with ctx.engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def started_on_server(ctx: SyncContext, scope: Scope, number: int) -> int | None:
    """Build `number`'s start on the server (None: no such build any more)."""
    assert ctx.http is not None
    try:
        response = ctx.http.request(
            "GET",
            f"{scope.vars['job_path']}/{number}/api/json",
            params={"tree": "number,timestamp"},
        )
    except NotFoundError:
        return None  # discarded (a job keeping its last N builds): nothing to compare
    body = response.json()
    if not isinstance(body, dict) or body.get("number") != number:
        return None
    return start_millis(body)


def restart_seen(
    ctx: SyncContext,
    scope: Scope,
    series: BuildSeries,
    newest: StoredBuild,
    page: list[dict[str, Any]],
) -> bool:
    """Whether the listing's first page shows that the job numbers its builds from 1
    again since `newest`, the series' newest build stored, was read.

    A restart cannot keep that build: its number is gone (the numbers went back) or
    belongs to a build that started at another time (they went past it). Builds deleted
    by hand or discarded are no restart: the stored builds still on the page start when
    they did. Costs a query or two, and one request only when more than a page of builds
    ran since the last sync (the newest build stored is below the first page).
    """
    starts = {
        build["number"]: started
        for build in page
        if isinstance(build.get("number"), int) and (started := start_millis(build)) is not None
    }
    if not starts:
        return False  # a job without builds (yet): nothing to compare
    if newest.number in starts:
        return starts[newest.number] != newest.started
    stored = stored_starts(ctx, scope, series, starts)
    if stored:  # the newest stored is gone: the other stored builds on the page decide
        return not any(starts[number] == started for number, started in stored.items())
    if max(starts) < newest.number:
        return True  # every number on the page is below it and none of them was stored
    if len(page) >= PAGE and newest.number < min(starts):
        started = started_on_server(ctx, scope, newest.number)
        return started is not None and started != newest.started
    return False  # it was discarded on the server: nothing left to compare with


def build_rows(
    build: dict[str, Any],
    scope: Scope,
    warn: Callable[[str], None] | None = None,
    since: datetime | None = None,
    series: BuildSeries = FIRST_SERIES,
) -> Rows:
    job, number = scope.location.job, build["number"]
    if since is not None and started_before(build, since):
        return {}
    stamp = build.get("timestamp")
    if not isinstance(stamp, int | float) or stamp <= 0:
        # Every build Jenkins ran has a start time; without one (0 or missing: a damaged
        # build record) it would become a run and a deployment in 1970.
        if warn is not None:
            warn(f"jenkins: {scope.key}: build {number} of {job} has no start time; skipped")
        return {}
    started = from_epoch_millis(stamp)
    unfinished = running(build)
    word = RunStatus.RUNNING if unfinished else normalize_status(build.get("result"))
    finished = None if unfinished else started + timedelta(milliseconds=build.get("duration") or 0)
    sha = revision(build, repository_hint(scope))
    common = {
        "id": series.build_id(job, number),
        "source_id": str(number),
        "service": scope.key,
        "sha": sha,
        "started_at": started,
        "url": build.get("url"),
    }
    rows: Rows = {
        "ci_runs": [{**common, "name": job, "status": word.value, "finished_at": finished}]
    }
    result = deployment_status(word)
    if result is not None and finished is not None:
        rows["deployments"] = [
            {
                **common,
                "environment": scope.location.environment,
                "status": result,
                "deployed_at": finished,
            }
        ]
    return rows


def build_settled(build: dict[str, Any]) -> bool:
    if not running(build):
        return True
    stamp = build.get("timestamp")
    return not isinstance(stamp, int | float) or from_epoch_millis(stamp) < utcnow() - HOLD


BUILDS = Stream(
    "builds",
    "{job_path}/api/json",
    build_rows,
    records="allBuilds",
    primary_key="number",
    cursor_field="number",
    page_size=PAGE,
    page_size_param=None,
    params={"tree": f"{TREE}{{0,{PAGE}}}"},
    newest_first=True,
    paginator=RangePaginator(),
    settled=build_settled,
)


def deploy_settings(scope: Scope) -> DeploySettings:
    """The job and its environment: changed, its builds are listed again in full and the
    service's deployments from another job removed. The job's own builds the listing no
    longer shows (discarded on the server, an earlier series) are kept: Jenkins cannot
    give them again."""
    job = scope.location.job
    return DeploySettings(
        {"job": job, "environment": scope.location.environment},
        prefix="jenkins:",
        spare=lambda deployment_id: deployment_id.startswith(f"jenkins:{job}:build:"),
    )


class JenkinsSource(Source):
    """Builds of services[].jenkins jobs: CI runs and deployments."""

    name = "jenkins"
    streams = (BUILDS,)
    located_by = "job"  # ids `jenkins:<job>:…`: another job's builds are listed, the old go

    def auth_headers(self, token: str | None, user: str | None) -> dict[str, str]:
        if not token:
            return {}
        if not user:
            raise ConfigError(
                "sources.jenkins.user_env: required with token_env (a Jenkins API token "
                "belongs to a user)"
            )
        basic = base64.b64encode(f"{user}:{token}".encode()).decode("ascii")
        return {"Authorization": f"Basic {basic}"}

    def scopes(self) -> list[Scope]:
        return [
            Scope(
                scope.key,
                scope.service,
                scope.location,
                {**scope.vars, "job_path": job_path(scope.location.job)},
            )
            for scope in super().scopes()
        ]

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        git = scope.service.git
        clone = ctx.config.resolve_path(git.path) if git is not None else None
        if clone is not None and clone.is_dir():
            scope = replace(scope, vars={**scope.vars, "origin": origin_path(clone)})
        try:
            self.sync_builds(ctx, scope)
        except NotFoundError:
            assert ctx.http is not None
            url = ctx.http.shown(ctx.http.absolute(BUILDS.path.format(**scope.vars)))
            index = self.config.services.index(scope.service)
            raise NotFoundError(
                f"jenkins: job {scope.location.job!r} not found (HTTP 404 at {url}): check "
                f"services[{index}].jenkins.job and that the user can see it"
            ) from None
        if clone is not None:
            link_deployments(ctx, scope, GitRangeResolver(clone, scope.key))

    def sync_builds(self, ctx: SyncContext, scope: Scope) -> None:
        """List the job's builds into the current series, after checking the first page
        for a restart of its numbers (which begins the next series)."""
        assert ctx.http is not None
        ctx.bookmark(BUILDS.name, scope.key)  # the stream under way: its failure is its own
        settings = deploy_settings(scope)
        guard = ctx.deploy_guard(BUILDS.name, scope, settings)  # a re-read starts on top
        # Read even by `--full` (which lists every build again, from no bookmark): the
        # builds of one series must not take the ids of another.
        with ctx.engine.connect() as connection:
            stored = read_state(connection, ctx.source, BUILDS.name, scope.key).bookmark or {}
        series = BuildSeries.of(stored)
        # a series begun by a restart whose listing has not come through yet (a sync
        # killed before its summary): its warning is said again, not swallowed
        listed_through = stored.get("cursor") is not None
        first_response = None
        # a resumed listing does not start on top (a re-read does: from the start)
        if ctx.full or guard.rereading or not stored.get("pending"):
            request = BUILDS.first_request(scope, None)
            first_response = ctx.http.request(request.method, request.url, params=request.params)
            page = BUILDS.records_of(first_response.json(), first_response)
            newest = newest_stored(ctx, scope, series)
            if newest is not None and restart_seen(ctx, scope, series, newest, page):
                series = series.after_restart(
                    newest=max(b["number"] for b in page if isinstance(b.get("number"), int)),
                    before=newest.number,
                    stored=stored_count(ctx, scope),
                )
                # The new series starts without a cursor, so it is listed in full as on a
                # first sync; one write, so a kill leaves the old series or the new one.
                ctx.save_bookmark(BUILDS.name, scope.key, {**series.kept(), **guard.kept()})
                listed_through = False
            elif newest is None and stored.get("cursor") is not None:
                # Nothing of the series is stored (`since` kept every build out, or the
                # config names another job now), so its cursor guards no row and would
                # only hide builds numbered below it: list from the top, which `since`
                # stops after this page. A job with no build stored at all is at its
                # first series.
                if stored_count(ctx, scope) == 0:
                    series = FIRST_SERIES
                ctx.save_bookmark(BUILDS.name, scope.key, {**series.kept(), **guard.kept()})
        if series.number > 1 and not listed_through:
            ctx.warn(series.warning(scope.key, scope.location.job))
        # a build that cannot be stored is skipped and said so in the sync's summary
        since = self.settings.since_bound()
        builds = replace(
            BUILDS,
            convert=partial(build_rows, warn=ctx.warn, since=since, series=series),
            paginator=RangePaginator(since=since),
        )
        run_http_stream(
            ctx, builds, scope, keep=series.kept(), first_response=first_response, deploys=settings
        )


class GitRangeResolver:
    """Commits between two deployed shas in the service's local clone; Git owns the changes."""

    def __init__(self, repo: Path, service: str) -> None:
        self.repo, self.service = repo, service

    def between(self, base: str, head: str) -> list[Commit]:
        done = subprocess.run(
            git_command(self.repo, "rev-list", "--parents", f"{base}..{head}", "--"),
            capture_output=True,
            text=True,
            start_new_session=OWN_SESSION,
        )
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["failed"])[0]
            raise NotFoundError(f"jenkins: {self.service}: git rev-list in {self.repo}: {reason}")
        return [
            Commit(sha=line.split()[0], parents=tuple(line.split()[1:]))
            for line in done.stdout.splitlines()
            if line.strip()
        ]

    def change_of_commit(self, commit: Commit) -> tuple[str, Rows] | None:
        return None

    def direct_change(self, commit: Commit) -> dict[str, Any] | None:
        return None  # the Git collector decides which commits are changes (monorepo paths)

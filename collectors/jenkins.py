"""Jenkins: the builds of a service's job are its CI runs and its deployments.

For every service with a `jenkins:` block (docs/collectors.md, "Jenkins"):

- `GET <job>/api/json?tree=allBuilds[…]{M,N}` lists builds newest first, 100 at a time
  (`builds` would stop at the newest 100), down to the bookmark: the last build number
  stored, held back by any build still running, so it is read again once finished; on a
  first sync, builds started before `sources.jenkins.since` are neither stored nor paged past;
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
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from collectors.base import Rows, Scope, Source, Stream, SyncContext, run_http_stream
from collectors.git import OWN_SESSION, git_command
from collectors.http import HttpResponse, NotFoundError, PageRequest
from collectors.shipped import Commit, link_deployments
from poise.errors import ConfigError
from poise.timeutil import from_epoch_millis, utcnow
from poise.vocab import RunStatus, deployment_status, normalize_status

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


def build_rows(
    build: dict[str, Any],
    scope: Scope,
    warn: Callable[[str], None] | None = None,
    since: datetime | None = None,
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
        "id": f"jenkins:{job}:build:{number}",
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


class JenkinsSource(Source):
    """Builds of services[].jenkins jobs: CI runs and deployments."""

    name = "jenkins"
    streams = (BUILDS,)

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
        # a build that cannot be stored is skipped and said so in the sync's summary
        since = self.settings.since_bound()
        builds = replace(
            BUILDS,
            convert=partial(build_rows, warn=ctx.warn, since=since),
            paginator=RangePaginator(since=since),
        )
        try:
            run_http_stream(ctx, builds, scope)
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

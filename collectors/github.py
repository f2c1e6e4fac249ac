"""GitHub (github.com or Enterprise): pull requests, deployments, workflow runs, releases, incidents.

For every service with a `github:` block (docs/collectors.md, "GitHub"):

- merged pull requests are the service's changes (`github:<repo>:pr:<number>`), listed
  by `sort=updated&direction=desc` down to the bookmark, each completed with its first
  commit (the author time is `committed_at`) and, with `review_times`, its reviews;
- deployments come from the Deployments API (each with its statuses), from runs of
  `deploy_workflow` (completed runs; with `deploy_job`, that job's completion), and from
  published releases with `use_releases`;
- runs of `deploy_workflow` are also `ci_runs`;
- issues labelled `incident_label` are incidents;
- each successful production deployment is linked to the changes it shipped through the
  compare API (collectors/shipped.py), which also finds commits pushed without a pull
  request and makes them changes (`github:<repo>:commit:<sha>`).

Lists are followed by their `Link` header verbatim; rate limits, retries and ETags are the
HTTP client's (collectors/http.py).
"""

from __future__ import annotations

import fnmatch
import logging
import math
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from collectors.base import (
    DeploySettings,
    PageFetcher,
    RawRequest,
    Rows,
    Scope,
    Source,
    Stream,
    SyncContext,
    complete_records,
    cursor_value,
    merge_rows,
    records_in,
    run_http_stream,
)
from collectors.http import (
    HttpClient,
    HttpResponse,
    LinkPaginator,
    NotFoundError,
    PageGuard,
    PageRequest,
    SourceError,
)
from collectors.shipped import Commit, commit_change, link_deployments
from poise.config import GitHubLocation
from poise.timeutil import isoformat_z, parse_timestamp, utcnow
from poise.vocab import RunStatus, deployment_status, incident_status, normalize_status
from poise.warehouse import schema

log = logging.getLogger("poise.collectors.github")

API_VERSION = "2022-11-28"
GHOST = "ghost"  # how GitHub shows a deleted user
# How long an unfinished deployment or run is waited for before it is no longer listed again.
HOLD = timedelta(days=7)
RESULT_CAP = 1000  # filtered workflow-run listings return at most this many runs
# Runs created this recently are listed again by the next sync: a re-run keeps its run's id
# and creation time, so only listing them again sees it (and runs not visible yet).
RERUN_WINDOW = timedelta(days=3)
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})


def login(user: Any) -> str:
    """A user's login; a deleted user (null, or GitHub's own placeholder) is `ghost`."""
    if isinstance(user, dict) and user.get("login"):
        return str(user["login"])
    return GHOST


def when(value: Any) -> datetime | None:
    return parse_timestamp(value) if isinstance(value, str) and value else None


def _recent(value: Any) -> bool:
    moment = when(value)
    return moment is not None and moment > utcnow() - HOLD


def repo_of(scope: Scope) -> str:
    return str(scope.location.repo)


def environment_for(scope: Scope, name: str | None, *, production: bool = False) -> str:
    """A GitHub environment (or deploy workflow/job name) as the Poise environment it means.

    `environment_map` decides; unmapped, an environment GitHub flags as production (and a
    deploy workflow or job) deploys to the service's production environment. GitHub's
    environment names are not case sensitive (`Production` is `production`), so neither
    are the map's keys nor the comparison with the production environment's name.
    """
    production_environment = scope.service.production_environment
    if not name:
        return production_environment
    environment_map = scope.location.environment_map
    mapped = environment_map.get(name)
    if mapped is None:
        folded = name.casefold()
        mapped = next(
            (value for key, value in environment_map.items() if key.casefold() == folded), None
        )
    if mapped:
        return str(mapped)
    if production or name.casefold() == production_environment.casefold():
        return production_environment
    return name


def get_list(http: HttpClient, path: str, params: dict[str, Any], key: str | None = None) -> list:
    response = http.get(path, params)
    return records_in(response.json(), response, key)


# -- pull requests -> changes -----------------------------------------------------------


def pull_details(http: HttpClient, pull: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """A merged pull request with its first commit and (with review_times) its reviews."""
    if not pull.get("merged_at"):
        return pull
    base = f"/repos/{repo_of(scope)}/pulls/{pull['number']}"
    first = get_list(http, f"{base}/commits", {"per_page": 1})  # oldest first
    reviews = (
        get_list(http, f"{base}/reviews", {"per_page": 100}) if scope.location.review_times else []
    )
    return {**pull, "_first_commit": first[0] if first else None, "_reviews": reviews}


# GitHub refuses these from a pull request's own author
NEVER_THE_AUTHORS = frozenset({"APPROVED", "CHANGES_REQUESTED"})


def by_someone_else(review: dict[str, Any], author: str) -> bool:
    reviewer = login(review.get("user"))
    if reviewer == GHOST and author == GHOST:  # two deleted users: only the state can tell
        return review.get("state") in NEVER_THE_AUTHORS
    return reviewer != author


def first_review_at(pull: dict[str, Any]) -> datetime | None:
    """When someone other than the author first submitted a review (pending ones have no time)."""
    author = login(pull.get("user"))
    times = [
        when(review.get("submitted_at"))
        for review in pull.get("_reviews") or []
        if review.get("submitted_at") and by_someone_else(review, author)
    ]
    return min((t for t in times if t is not None), default=None)


def pull_change(pull: dict[str, Any], scope: Scope) -> dict[str, Any]:
    first = pull.get("_first_commit") or {}
    authored = ((first.get("commit") or {}).get("author") or {}).get("date")
    return {
        "id": f"github:{repo_of(scope)}:pr:{pull['number']}",
        "source_id": str(pull["number"]),
        "service": scope.key,
        "sha": pull.get("merge_commit_sha"),
        # Without commits (a pull request whose branch is gone) its opening is the best guess.
        "committed_at": when(authored) or parse_timestamp(pull["created_at"]),
        "merged_at": when(pull.get("merged_at")),
        "opened_at": when(pull.get("created_at")),
        "first_review_at": first_review_at(pull),
        "pr_number": pull["number"],
        "title": pull.get("title"),
        "author": login(pull.get("user")),
    }


def pull_rows(pull: dict[str, Any], scope: Scope) -> Rows:
    # Merged is merged_at set: an open pull request also carries a (test) merge_commit_sha.
    return {"changes": [pull_change(pull, scope)]} if pull.get("merged_at") else {}


# -- Deployments API --------------------------------------------------------------------


def deployment_details(http: HttpClient, deployment: dict[str, Any], scope: Scope) -> dict:
    path = f"/repos/{repo_of(scope)}/deployments/{deployment['id']}/statuses"
    return {**deployment, "_statuses": get_list(http, path, {"per_page": 100})}


def deployment_outcome(deployment: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """The deployment's result and the status that says so (statuses come newest first).

    `inactive` only means a later deployment replaced this one: it tells when this one
    was deployed only when no success or failure status says so.
    """
    statuses = deployment.get("_statuses") or []
    for status in statuses:
        state = status.get("state")
        if state == "inactive":
            continue
        result = deployment_status(normalize_status(state))
        if result is not None:
            return result, status
        return None, None  # the newest word is queued / pending / in_progress
    inactive = next((s for s in statuses if s.get("state") == "inactive"), None)
    return (RunStatus.SUCCESS.value, inactive) if inactive else (None, None)


def deployment_settled(deployment: dict[str, Any]) -> bool:
    return deployment_outcome(deployment)[0] is not None or not _recent(deployment["created_at"])


def deployment_rows(deployment: dict[str, Any], scope: Scope) -> Rows:
    result, status = deployment_outcome(deployment)
    if result is None or status is None:
        return {}  # still in progress: listed again by the next sync
    environment = environment_for(
        scope,
        deployment.get("environment"),
        production=bool(deployment.get("production_environment")),
    )
    return {
        "deployments": [
            {
                "id": f"github:{repo_of(scope)}:deployment:{deployment['id']}",
                "source_id": str(deployment["id"]),
                "service": scope.key,
                "environment": environment,
                "status": result,
                "deployed_at": parse_timestamp(status["created_at"]),
                "started_at": when(deployment.get("created_at")),
                "sha": deployment.get("sha"),
                "url": status.get("log_url") or status.get("target_url") or None,
            }
        ]
    }


# -- workflow runs -> ci_runs and deployments --------------------------------------------


def attempt_of(run: dict[str, Any]) -> int:
    """Which attempt of its run a run object describes (1 unless re-run)."""
    attempt = run.get("run_attempt")
    return attempt if isinstance(attempt, int) and attempt > 1 else 1


def run_deployment_id(scope: Scope, run_id: Any, attempt: int) -> str:
    """A run's deployment: `…:run:<id>` for its first attempt, `…:run:<id>:attempt:<n>` after.

    A re-run deploys again (a failed deploy retried, an older run re-run to roll back), as
    GitHub's Deployments API and GitLab count it: each attempt is a deployment of its own,
    at its own time, and an attempt once completed never moves.
    """
    base = f"github:{repo_of(scope)}:run:{run_id}"
    return base if attempt <= 1 else f"{base}:attempt:{attempt}"


def run_details(http: HttpClient, run: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """A completed run of the deploy workflow with its jobs (when a deploy_job is named) and
    the earlier attempts of a re-run not stored yet (`_earlier`: the listing shows only the
    latest attempt; `…/runs/{id}/attempts/{n}` gives an earlier one).

    A run listed again unchanged (same `updated_at` as stored) is not asked about again;
    without `_jobs` it leaves its stored deployment as it is.
    """
    if run.get("status") != "completed":
        return run
    stored = scope.vars.get("finished_runs", {}).get(str(run["id"]))
    if stored is not None and stored == when(run.get("updated_at")):
        return run
    base = f"/repos/{repo_of(scope)}/actions/runs/{run['id']}"
    detailed = dict(run)
    if scope.location.deploy_job:
        detailed["_jobs"] = get_list(
            http, f"{base}/jobs", {"filter": "latest", "per_page": 100}, "jobs"
        )
    known = scope.vars.get("run_deployments", frozenset())
    earlier = []
    for attempt in range(1, attempt_of(run)):
        if run_deployment_id(scope, run["id"], attempt) in known:
            continue
        try:
            response = http.get(f"{base}/attempts/{attempt}")
        except NotFoundError:  # an attempt GitHub no longer keeps
            continue
        past = response.json()
        if not isinstance(past, dict) or past.get("status") != "completed":
            continue
        past = {**past, "run_attempt": attempt}
        if scope.location.deploy_job:
            past["_jobs"] = get_list(
                http, f"{base}/attempts/{attempt}/jobs", {"per_page": 100}, "jobs"
            )
        earlier.append(past)
    if earlier:
        detailed["_earlier"] = earlier
    return detailed


def deploy_jobs(run: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    """The run's jobs named like deploy_job that ran in this attempt (`filter=latest` also
    lists the jobs a "re-run failed jobs" did not run again, from the attempt before)."""
    pattern, attempt = scope.location.deploy_job, attempt_of(run)
    return [
        job
        for job in run.get("_jobs") or []
        if fnmatch.fnmatchcase(job.get("name", ""), pattern)
        and job.get("run_attempt", attempt) == attempt
    ]


def on_deploy_branch(run: dict[str, Any], location: GitHubLocation) -> bool:
    """Whether the run's branch (or tag, for a run a tag started) is one `deploy_branches`
    names; any is, without them."""
    globs = location.deploy_branch_globs
    branch = str(run.get("head_branch") or "")
    return not globs or any(fnmatch.fnmatchcase(branch, glob) for glob in globs)


def run_deployment(run: dict[str, Any], scope: Scope) -> dict[str, Any] | None:
    """The deployment a completed attempt of a deploy workflow run made, if it made one."""
    if run.get("status") != "completed" or run.get("event") in PULL_REQUEST_EVENTS:
        return None
    location: GitHubLocation = scope.location
    if not on_deploy_branch(run, location):
        return None
    name, started, finished = run.get("name"), run.get("run_started_at"), run.get("updated_at")
    conclusion = run.get("conclusion")
    attempt = attempt_of(run)
    if location.deploy_job:
        if "_jobs" not in run:
            return None  # listed again unchanged: its stored deployment stands
        jobs = [job for job in deploy_jobs(run, scope) if job.get("completed_at")]
        if not jobs:
            return None  # the deploy job did not run (skipped, or not in this run)
        last = max(jobs, key=lambda job: job["completed_at"])
        name, started, finished = last.get("name"), last.get("started_at"), last["completed_at"]
        words = [normalize_status(job.get("conclusion")) for job in jobs]
        conclusion = next(
            (w.value for w in words if w in (RunStatus.FAILURE, RunStatus.CANCELLED)),
            "success" if RunStatus.SUCCESS in words else "skipped",
        )
    result = deployment_status(normalize_status(conclusion))
    if result is None:
        return None
    url = run.get("html_url")
    return {
        "id": run_deployment_id(scope, run["id"], attempt),
        "source_id": str(run["id"]) if attempt == 1 else f"{run['id']}:{attempt}",
        "service": scope.key,
        "environment": environment_for(scope, name, production=True),
        "status": result,
        "deployed_at": parse_timestamp(finished),
        "started_at": when(started),
        "sha": run.get("head_sha"),
        "url": f"{url}/attempts/{attempt}" if url and attempt > 1 else url,
    }


def run_rows(run: dict[str, Any], scope: Scope) -> Rows:
    completed = run.get("status") == "completed"
    word = normalize_status(run.get("conclusion") if completed else run.get("status"))
    rows: Rows = {
        "ci_runs": [
            {
                "id": f"github:{repo_of(scope)}:run:{run['id']}",
                "source_id": str(run["id"]),
                "service": scope.key,
                "name": run.get("name"),
                "sha": run.get("head_sha"),
                "status": word.value,
                "started_at": when(run.get("run_started_at")) or when(run.get("created_at")),
                "finished_at": when(run.get("updated_at")) if completed else None,
                "url": run.get("html_url"),
            }
        ]
    }
    attempts = [*run.get("_earlier", []), run]
    deployments = [d for d in (run_deployment(a, scope) for a in attempts) if d is not None]
    if deployments:
        rows["deployments"] = deployments
    return rows


def run_settled(run: dict[str, Any]) -> bool:
    return run.get("status") == "completed" or not _recent(run.get("created_at"))


# -- releases -> deployments -------------------------------------------------------------


def release_rows(release: dict[str, Any], scope: Scope) -> Rows:
    if release.get("draft") or release.get("prerelease") or not release.get("published_at"):
        return {}  # not (yet) a release of production
    return {
        "deployments": [
            {
                "id": f"github:{repo_of(scope)}:release:{release['id']}",
                "source_id": str(release["id"]),
                "service": scope.key,
                "environment": scope.service.production_environment,
                "status": RunStatus.SUCCESS.value,
                "deployed_at": parse_timestamp(release["published_at"]),
                "started_at": None,
                "sha": release.get("_sha"),
                "url": release.get("html_url"),
            }
        ]
    }


# -- issues labelled as incidents --------------------------------------------------------


def issue_rows(issue: dict[str, Any], scope: Scope) -> Rows:
    if "pull_request" in issue:  # the issues list includes pull requests
        return {}
    closed = issue.get("state") == "closed"
    return {
        "incidents": [
            {
                "id": f"github:{repo_of(scope)}:issue:{issue['number']}",
                "source_id": str(issue["number"]),
                "service": scope.key,
                "status": incident_status("closed" if closed else "open").value,
                "started_at": parse_timestamp(issue["created_at"]),
                "resolved_at": when(issue.get("closed_at")) if closed else None,
                "title": issue.get("title"),
                "url": issue.get("html_url"),
            }
        ]
    }


PULLS = Stream(
    "pulls",
    "/repos/{repo}/pulls",
    pull_rows,
    primary_key="number",
    cursor_field="updated_at",
    params={"state": "all", "sort": "updated", "direction": "desc"},
    newest_first=True,
    conditional=True,
    details=pull_details,
)
DEPLOYMENTS = Stream(
    "deployments",
    "/repos/{repo}/deployments",
    deployment_rows,
    cursor_field="created_at",
    newest_first=True,
    conditional=True,
    details=deployment_details,
    settled=deployment_settled,
)
WORKFLOW_RUNS = Stream(
    "workflow_runs",
    "/repos/{repo}/actions/workflows/{workflow_id}/runs",
    run_rows,
    records="workflow_runs",
    cursor_field="created_at",
    details=run_details,
    settled=run_settled,
)
RELEASES = Stream("releases", "/repos/{repo}/releases", release_rows, conditional=True)
ISSUES = Stream(
    "issues",
    "/repos/{repo}/issues",
    issue_rows,
    primary_key="number",
    cursor_field="updated_at",
    params={"state": "all", "sort": "updated", "direction": "asc"},
    since_param="since",
)


# The streams that make deployments, by name: the kind of record in their deployments' ids.
DEPLOY_KINDS = {DEPLOYMENTS.name: "deployment", WORKFLOW_RUNS.name: "run", RELEASES.name: "release"}


def deploy_settings(stream: str, scope: Scope) -> DeploySettings:
    """What decides the deployments `stream` makes: changed, the stream is read again."""
    location: GitHubLocation = scope.location
    values: dict[str, Any] = {"production_environment": scope.service.production_environment}
    if stream != RELEASES.name:  # a release is a deployment to production, mapped or not
        values["environment_map"] = location.environment_map
    if stream == WORKFLOW_RUNS.name:
        values["deploy_workflow"] = location.deploy_workflow
        values["deploy_job"] = location.deploy_job
        values["deploy_branches"] = location.deploy_branch_globs
    return DeploySettings(values, prefix=f"github:{repo_of(scope)}:{DEPLOY_KINDS[stream]}:")


class GitHubSource(Source):
    """Pull requests, deployments, workflow runs, releases and incident issues (services[].github)."""

    name = "github"
    default_base_url = "https://api.github.com"
    streams = (PULLS, DEPLOYMENTS, WORKFLOW_RUNS, RELEASES, ISSUES)
    located_by = "repo"  # ids `github:<repo>:…`: another repo is read again, the old rows go

    def auth_headers(self, token: str | None, user: str | None) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        GitHubSync(ctx, scope, self.settings.since_bound()).run()


class GitHubSync:
    """One service's sync: see the module docstring."""

    def __init__(self, ctx: SyncContext, scope: Scope, since: datetime | None) -> None:
        assert ctx.http is not None
        self.ctx, self.scope, self.since, self.http = ctx, scope, since, ctx.http
        self.location: GitHubLocation = scope.location
        self.repo = self.location.repo

    def run(self) -> None:
        repository = self.repository()
        run_http_stream(self.ctx, PULLS, self.scope, start=self.since)
        deploys = partial(deploy_settings, scope=self.scope)
        if self.location.deployments_api:
            run_http_stream(
                self.ctx,
                DEPLOYMENTS,
                self.scope,
                start=self.since,
                deploys=deploys(DEPLOYMENTS.name),
            )
        if self.location.deploy_workflow:
            origin = self.since or parse_timestamp(repository["created_at"])
            WorkflowRuns(self.ctx, self.scope, self.workflow_id(), origin).run()
        if self.location.use_releases:
            run_http_stream(self.ctx, self.releases(), self.scope, deploys=deploys(RELEASES.name))
        # Once the streams read now are stored: a stream switched off (`use_releases` for a
        # `deploy_workflow`) leaves none of its deployments, and no moment without either.
        reads = {
            DEPLOYMENTS.name: self.location.deployments_api,
            WORKFLOW_RUNS.name: bool(self.location.deploy_workflow),
            RELEASES.name: self.location.use_releases,
        }
        for stream, read in reads.items():
            if not read:
                self.ctx.switched_off(stream, self.scope, deploys(stream))
        if self.location.incident_label:
            issues = replace(
                ISSUES, params={**ISSUES.params, "labels": self.location.incident_label}
            )
            run_http_stream(self.ctx, issues, self.scope, start=self.since)
        link_deployments(self.ctx, self.scope, CompareResolver(self.http, self.scope))

    def repository(self) -> dict[str, Any]:
        """The repository (a 404 here is the one clear line for a wrong `repo`)."""
        state = self.ctx.bookmark("repository", self.scope.key) or {}
        response = self.http.get(f"/repos/{self.repo}", etag=state.get("etag"))
        if response.not_modified and state.get("repository"):
            return dict(state["repository"])
        body = response.json()
        if not isinstance(body, dict) or not body.get("full_name"):
            raise SourceError(
                f"github: malformed response from {response.url}: expected a repository object"
            )
        kept = {key: body.get(key) for key in ("id", "full_name", "default_branch", "created_at")}
        row = {
            "id": f"github:{self.scope.key}",
            "service": self.scope.key,
            "kind": "github",
            "location": body.get("html_url") or body["full_name"],
            "branch": body.get("default_branch"),
            "source_id": str(body.get("id")),
        }
        self.ctx.store_page(
            "repository",
            self.scope.key,
            request=RawRequest("GET", response.url),
            payload=response.text,
            status=response.status,
            rows={"repositories": [row]},
            records=1,
            bookmark={"etag": response.etag, "repository": kept},
            final=True,
        )
        return kept

    def workflow_id(self) -> str:
        """The deploy workflow's id, found by id, file name, path or name."""
        wanted = str(self.location.deploy_workflow)
        request: PageRequest | None = PageRequest(
            f"/repos/{self.repo}/actions/workflows", {"per_page": 100}
        )
        names: list[str] = []
        guard = PageGuard()
        while request is not None:
            response = self.http.get(request.url, request.params)
            workflows = records_in(response.json(), response, "workflows")
            guard.check(request, response, workflows)
            for workflow in workflows:
                path = str(workflow.get("path") or "")
                if wanted in (
                    str(workflow.get("id")),
                    path,
                    path.rsplit("/", 1)[-1],
                    workflow.get("name"),
                ):
                    return str(workflow["id"])
                names.append(str(workflow.get("name")))
            request = LinkPaginator().next_request(response, request, workflows)
        where = self.where()
        raise SourceError(
            f"github: {self.scope.key}: no workflow {wanted!r} in {self.repo} "
            f"(found: {', '.join(names) or 'none'}): check {where}.deploy_workflow"
        )

    def where(self) -> str:
        index = self.ctx.config.services.index(self.scope.service)
        return f"services[{index}].github"

    def releases(self) -> Stream:
        """Releases, each with the sha its tag points at (asked once per release)."""
        table = schema.deployments
        query = select(table.c.source_id, table.c.sha).where(
            (table.c.service == self.scope.key) & (table.c.id.like(f"github:{self.repo}:release:%"))
        )
        with self.ctx.engine.connect() as connection:
            known = {source_id: sha for source_id, sha in connection.execute(query) if sha}

        def tag_sha(http: HttpClient, release: dict[str, Any], scope: Scope) -> dict[str, Any]:
            if not release_rows(release, scope) or not release.get("tag_name"):
                return release
            sha = known.get(str(release["id"]))
            if sha is None:
                tag = quote(str(release["tag_name"]), safe="")
                try:
                    response = http.get(f"/repos/{self.repo}/commits/{tag}")
                except NotFoundError:  # the tag is gone: a deployment of an unknown commit
                    return release
                body = response.json()
                sha = body.get("sha") if isinstance(body, dict) else None
            return {**release, "_sha": sha}

        return replace(RELEASES, details=tag_sha)


class WorkflowRuns:
    """Runs of the deploy workflow, listed in `created` windows of fewer than 1,000 runs.

    A filtered listing returns at most 1,000 runs, so a window whose `total_count` reaches
    that is split into smaller ones (by time, in proportion to its count) before any of
    its pages is stored. Windows run oldest first; after each, the bookmark moves to its
    end, held back by runs not finished yet and by the last three days (RERUN_WINDOW), so
    the next sync sees re-runs and runs that were not visible yet.
    """

    def __init__(self, ctx: SyncContext, scope: Scope, workflow_id: str, origin: datetime) -> None:
        assert ctx.http is not None
        self.ctx, self.scope, self.http = ctx, scope, ctx.http
        # Details cost requests only for a deploy_job's jobs and a re-run's earlier attempts.
        self.stream = WORKFLOW_RUNS
        self.path = WORKFLOW_RUNS.path.format(repo=scope.location.repo, workflow_id=workflow_id)
        self.origin = origin
        settings = deploy_settings(WORKFLOW_RUNS.name, scope)
        self.guard = ctx.deploy_guard(WORKFLOW_RUNS.name, scope, settings)

    def finished_runs(self, since: datetime) -> dict[str, datetime]:
        """Runs stored as finished since `since`: run id -> finished_at (its `updated_at`)."""
        table = schema.ci_runs
        query = select(table.c.source_id, table.c.finished_at).where(
            (table.c.service == self.scope.key)
            & (table.c.source == "github")
            & (table.c.started_at >= since)
            & table.c.finished_at.is_not(None)
        )
        with self.ctx.engine.connect() as connection:
            return {str(run_id): finished for run_id, finished in connection.execute(query)}

    def run_deployments(self, since: datetime) -> frozenset[str]:
        """Ids of the run deployments (every attempt's) stored since `since`."""
        table = schema.deployments
        query = select(table.c.id).where(
            (table.c.service == self.scope.key)
            & (table.c.source == "github")
            & table.c.id.like(f"github:{self.scope.location.repo}:run:%")
            & (table.c.deployed_at >= since)
        )
        with self.ctx.engine.connect() as connection:
            return frozenset(str(row[0]) for row in connection.execute(query))

    def run(self) -> None:
        # none for a re-read: every run again, its jobs and attempts asked again
        state = self.ctx.bookmark(self.stream.name, self.scope.key) or {}
        start = when(state.get("cursor")) or self.origin
        finished = self.finished_runs(start) if state.get("cursor") else {}
        known = self.run_deployments(start) if state.get("cursor") else frozenset()
        self.scope = replace(
            self.scope,
            vars={**self.scope.vars, "finished_runs": finished, "run_deployments": known},
        )
        now = utcnow()
        windows = [(_second(start), _second(now + timedelta(days=1)))]
        held: datetime | None = None
        while windows:
            first, last = windows.pop()
            request = PageRequest(
                self.path,
                {
                    "created": f"{isoformat_z(first)}..{isoformat_z(last)}",
                    "per_page": self.stream.page_size,
                },
            )
            response = self.http.get(request.url, request.params)
            body = response.json()
            total = body.get("total_count") if isinstance(body, dict) else None
            if (
                isinstance(total, int)
                and total >= RESULT_CAP
                and last - first > timedelta(seconds=1)
            ):
                windows.extend(reversed(split(first, last, math.ceil(total / (RESULT_CAP / 2)))))
                continue
            if isinstance(total, int) and total >= RESULT_CAP:
                log.warning(
                    "github: %s: %d runs created within one second at %s; only %d are listed",
                    self.scope.key,
                    total,
                    isoformat_z(first),
                    RESULT_CAP,
                )
            reached = max(first, min(last, now - RERUN_WINDOW))
            held = self.window(request, response, body, held, reached, last=not windows)

    def window(
        self,
        request: PageRequest,
        response: HttpResponse,
        body: Any,
        held: datetime | None,
        reached: datetime,
        *,
        last: bool,
    ) -> datetime | None:
        """Store one window's pages; the bookmark moves to its end on the last one (the
        `last` window's ends a re-read)."""
        guard = PageGuard()
        with PageFetcher(self.http) as pages:
            while True:
                page = self.stream.records_of(body, response)
                guard.check(request, response, page)
                following = self.stream.paginator.next_request(response, request, page)
                pages.prefetch(following)
                rows: Rows = {}
                for run in complete_records(self.ctx, self.stream, self.scope, page):
                    if not run_settled(run):
                        created = parse_timestamp(run["created_at"])
                        held = created if held is None or created < held else held
                    merge_rows(rows, run_rows(run, self.scope))
                cursor = reached if held is None else min(held, reached)
                ends = last and following is None
                bookmark = {"cursor": cursor_value(cursor), **self.guard.kept(final=ends)}
                self.ctx.store_page(
                    self.stream.name,
                    self.scope.key,
                    request=RawRequest(request.method, response.url, request.params),
                    payload=response.text,
                    status=response.status,
                    write=self.guard.writer(rows, final=ends),
                    records=len(page),
                    final=following is None,
                    **({"bookmark": bookmark} if following is None else {}),
                )
                if following is None:
                    return held
                request = following
                response = pages.get(request)
                body = response.json()


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def split(first: datetime, last: datetime, parts: int) -> list[tuple[datetime, datetime]]:
    """[first, last] (whole seconds, both ends included) as `parts` adjacent windows."""
    span = int((last - first).total_seconds())
    parts = max(2, min(parts, span + 1))
    bounds = [first + timedelta(seconds=span * i // parts) for i in range(parts + 1)]
    windows = []
    for i in range(parts):
        start = bounds[i] if i == 0 else bounds[i] + timedelta(seconds=1)
        end = bounds[i + 1]
        if start <= end:
            windows.append((start, end))
    return windows


class CompareResolver:
    """Commits between two deployments through `/compare/{base}...{head}` (paged)."""

    def __init__(self, http: HttpClient, scope: Scope) -> None:
        self.http, self.scope, self.repo = http, scope, scope.location.repo

    def between(self, base: str, head: str) -> list[Commit]:
        request: PageRequest | None = PageRequest(
            f"/repos/{self.repo}/compare/{base}...{head}", {"per_page": 100}
        )
        commits: list[Commit] = []
        total, guard = None, PageGuard()
        while request is not None:
            response = self.http.get(request.url, request.params)
            body = response.json()
            page = records_in(body, response, "commits")
            guard.check(request, response, page)
            total = body.get("total_commits", total)
            commits.extend(commit_of(item) for item in page)
            request = LinkPaginator().next_request(response, request, page) if page else None
        if isinstance(total, int) and len(commits) < total:
            log.warning(
                "github: %s: compare %s...%s listed %d of %d commits",
                self.scope.key,
                base,
                head,
                len(commits),
                total,
            )
        return commits

    def change_of_commit(self, commit: Commit) -> tuple[str, Rows] | None:
        pulls = get_list(
            self.http, f"/repos/{self.repo}/commits/{commit.sha}/pulls", {"per_page": 100}
        )
        merged = [pull for pull in pulls if pull.get("merged_at")]
        if not merged:
            return None
        pull = pull_details(self.http, min(merged, key=lambda p: p["merged_at"]), self.scope)
        change = pull_change(pull, self.scope)
        return change["id"], {"changes": [change]}

    def direct_change(self, commit: Commit) -> dict[str, Any] | None:
        return commit_change(commit, f"github:{self.repo}:commit:{commit.sha}", self.scope.key)


def commit_of(item: dict[str, Any]) -> Commit:
    git = item.get("commit") or {}
    author = git.get("author") or {}
    message = str(git.get("message") or "")
    account = item.get("author")
    return Commit(
        sha=str(item["sha"]),
        parents=tuple(str(parent.get("sha")) for parent in item.get("parents") or []),
        authored_at=when(author.get("date")),
        title=message.splitlines()[0] if message else None,
        author=login(account) if account else (author.get("name") or GHOST),
    )

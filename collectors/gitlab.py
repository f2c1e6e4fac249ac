"""GitLab (gitlab.com or self-hosted): merge requests, deployments and pipelines.

For every service with a `gitlab:` block (docs/collectors.md, "GitLab"):

- merged merge requests are its changes (`gitlab:<project>:mr:<iid>`), each with its
  first commit (`/merge_requests/:iid/commits` lists newest first: the last one) and,
  with `review_times`, its first review: the oldest note (`/merge_requests/:iid/notes`)
  that is a comment or an approval by someone other than the author;
- deployments (`/deployments`) are its deployments, once finished;
- pipelines are `ci_runs`;
- each successful production deployment is linked to the changes it shipped through the
  repository compare endpoint (collectors/shipped.py); commits pushed without a merge
  request become changes of their own (`gitlab:<project>:commit:<sha>`).

Every list is read oldest first by `updated_at` with `updated_after` (one second of
overlap, since GitLab's bound is exclusive), and paged by `x-next-page` until it comes
back empty: past 10,000 rows GitLab stops sending `x-total` and `x-total-pages`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from collectors.base import (
    DeploySettings,
    Rows,
    Scope,
    Source,
    Stream,
    SyncContext,
    records_in,
    run_http_stream,
)
from collectors.http import (
    HttpClient,
    HttpResponse,
    NotFoundError,
    PageGuard,
    PageRequest,
    SourceError,
)
from collectors.shipped import Commit, commit_change, link_deployments
from poise.timeutil import isoformat_z, parse_timestamp
from poise.vocab import deployment_status, normalize_status

GHOST = "ghost"  # GitLab's Ghost User stands in for deleted accounts
OVERLAP = timedelta(seconds=1)  # updated_after is exclusive: ask from a second earlier
FINISHED = frozenset({"success", "failed", "canceled", "skipped"})


@dataclass(frozen=True)
class NextPagePaginator:
    """GitLab offset paging: `page` = the `x-next-page` header, until it is empty."""

    def next_request(
        self, response: HttpResponse, request: PageRequest, records: list[Any]
    ) -> PageRequest | None:
        following = (response.headers.get("x-next-page") or "").strip()
        if not following:
            return None
        return PageRequest(request.url, {**(request.params or {}), "page": following})


@dataclass(frozen=True)
class UpdatedStream(Stream):
    """An oldest-first list filtered by `updated_after`, asked from a second before the cursor."""

    since_param: str | None = "updated_after"
    cursor_field: str | None = "updated_at"
    paginator: Any = NextPagePaginator()

    def first_request(self, scope: Scope, cursor: Any) -> PageRequest:
        request = super().first_request(scope, cursor)
        since = request.params.get("updated_after") if request.params else None
        if since is None:
            return request
        earlier = isoformat_z(parse_timestamp(str(since)) - OVERLAP)
        return PageRequest(request.url, {**(request.params or {}), "updated_after": earlier})


def username(user: Any) -> str:
    if isinstance(user, dict) and user.get("username"):
        return str(user["username"])
    return GHOST


def when(value: Any) -> Any:
    return parse_timestamp(value) if isinstance(value, str) and value else None


def project_of(scope: Scope) -> str:
    return str(scope.location.project)


def pages(http: HttpClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a small list, page after page."""
    return list(items_of(http, path, params))


def items_of(http: HttpClient, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A list's items, asking for the next page only once the last one is used up."""
    request: PageRequest | None = PageRequest(path, params)
    guard = PageGuard()
    while request is not None:
        response = http.get(request.url, request.params)
        page = records_in(response.json(), response)
        guard.check(request, response, page)
        yield from page
        request = NextPagePaginator().next_request(response, request, page)


# -- merge requests -> changes -----------------------------------------------------------


def merge_request_details(http: HttpClient, mr: dict[str, Any], scope: Scope) -> dict[str, Any]:
    base = f"/projects/{scope.vars['id']}/merge_requests/{mr['iid']}"
    commits = pages(http, f"{base}/commits", {"per_page": 100})
    detailed = {**mr, "_first_commit": commits[-1] if commits else None}  # newest first
    if scope.location.review_times:
        detailed["_first_review_at"] = first_review_at(http, base, mr)
    return detailed


# the system notes GitLab writes for a reviewer's verdict (others, "added 3 commits",
# "assigned to @x", are no review)
VERDICT_NOTES = ("approved this merge request", "requested changes")


def is_review(note: dict[str, Any], author: str) -> bool:
    """A comment or an approval by someone other than the merge request's author (two
    deleted users, both GitLab's Ghost User, cannot be told apart: not counted)."""
    system = bool(note.get("system"))
    if system and not str(note.get("body") or "").startswith(VERDICT_NOTES):
        return False
    return username(note.get("author")) != author


def first_review_at(http: HttpClient, base: str, mr: dict[str, Any]) -> datetime | None:
    """When someone other than the author first commented or approved: the notes oldest
    first, read until one is found (usually on the first page)."""
    author = username(mr.get("author"))
    params = {"sort": "asc", "order_by": "created_at", "per_page": 100}
    try:
        for note in items_of(http, f"{base}/notes", params):
            if isinstance(note, dict) and is_review(note, author):
                return when(note.get("created_at"))
    except NotFoundError:  # the merge request went away since it was listed
        return None
    return None


def merge_request_change(mr: dict[str, Any], scope: Scope) -> dict[str, Any]:
    first = mr.get("_first_commit") or {}
    # The commit that landed on the target branch: merge commit, squash commit, or (fast
    # forward) the merge request's own head.
    sha = mr.get("merge_commit_sha") or mr.get("squash_commit_sha") or mr.get("sha")
    return {
        "id": f"gitlab:{project_of(scope)}:mr:{mr['iid']}",
        "source_id": str(mr["iid"]),
        "service": scope.key,
        "sha": sha,
        "committed_at": when(first.get("authored_date")) or parse_timestamp(mr["created_at"]),
        "merged_at": when(mr.get("merged_at")) or when(mr.get("updated_at")),
        "opened_at": when(mr.get("created_at")),
        "first_review_at": mr.get("_first_review_at"),
        "pr_number": mr["iid"],
        "title": mr.get("title"),
        "author": username(mr.get("author")),
    }


def merge_request_rows(mr: dict[str, Any], scope: Scope) -> Rows:
    return {"changes": [merge_request_change(mr, scope)]} if mr.get("state") == "merged" else {}


# -- deployments ---------------------------------------------------------------------------


class EnvironmentTiers:
    """Environment name -> tier, asked (`/environments?name=`) once per name and sync.

    Shared by the detail workers: a lookup holds the lock, so no name is asked twice."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tiers: dict[str, str | None] = {}

    def tier(self, http: HttpClient, project: str, environment: str) -> str | None:
        with self.lock:
            if environment not in self.tiers:
                try:
                    found = pages(http, f"/projects/{project}/environments", {"name": environment})
                except NotFoundError:  # an instance without the environments API: names only
                    found = []
                self.tiers[environment] = next(
                    (
                        str(item["tier"])
                        for item in found
                        if item.get("name") == environment and item.get("tier")
                    ),
                    None,
                )
            return self.tiers[environment]


def deployment_details(http: HttpClient, deployment: dict[str, Any], scope: Scope) -> dict:
    """A finished deployment to an environment neither mapped nor named like the service's
    production environment, with that environment's tier (`_tier`): the environment a
    deployment embeds has none."""
    environment = (deployment.get("environment") or {}).get("name")
    tiers = scope.vars.get("tiers")
    if (
        not isinstance(tiers, EnvironmentTiers)
        or not environment
        or environment in scope.location.environment_map
        or environment == scope.service.production_environment
        or deployment_status(normalize_status(deployment.get("status"))) is None
    ):
        return deployment
    return {**deployment, "_tier": tiers.tier(http, scope.vars["id"], environment)}


def environment_of(deployment: dict[str, Any], scope: Scope) -> str:
    """`environment_map` decides; unmapped, an environment of tier `production` (as GitLab's
    own DORA metrics count it) is the service's production environment."""
    environment = (deployment.get("environment") or {}).get("name")
    production = scope.service.production_environment
    mapped = scope.location.environment_map.get(environment) if environment else None
    if mapped:
        return str(mapped)
    if not environment or deployment.get("_tier") == "production":
        return production
    return str(environment)


def deployment_rows(deployment: dict[str, Any], scope: Scope) -> Rows:
    result = deployment_status(normalize_status(deployment.get("status")))
    if result is None:
        return {}  # created, running or blocked: its updated_at moves when it finishes
    job = deployment.get("deployable") or {}  # null for deployments made through the API
    return {
        "deployments": [
            {
                "id": f"gitlab:{project_of(scope)}:deployment:{deployment['id']}",
                "source_id": str(deployment["id"]),
                "service": scope.key,
                "environment": environment_of(deployment, scope),
                "status": result,
                "deployed_at": when(job.get("finished_at"))
                or parse_timestamp(deployment["updated_at"]),
                "started_at": when(job.get("started_at")) or when(deployment.get("created_at")),
                "sha": deployment.get("sha") or None,  # an empty sha is none: stored as NULL
                "url": (deployment.get("environment") or {}).get("external_url"),
            }
        ]
    }


def deploy_settings(scope: Scope) -> DeploySettings:
    """What `environment_of` decides with: changed, the deployments are read again."""
    return DeploySettings(
        {
            "environment_map": scope.location.environment_map,
            "production_environment": scope.service.production_environment,
        },
        prefix=f"gitlab:{project_of(scope)}:deployment:",
    )


# -- pipelines -> ci_runs ------------------------------------------------------------------


def pipeline_rows(pipeline: dict[str, Any], scope: Scope) -> Rows:
    status = pipeline.get("status")
    return {
        "ci_runs": [
            {
                "id": f"gitlab:{project_of(scope)}:pipeline:{pipeline['id']}",
                "source_id": str(pipeline["id"]),
                "service": scope.key,
                "name": pipeline.get("name") or pipeline.get("ref"),
                "sha": pipeline.get("sha"),
                "status": normalize_status(status).value,
                "started_at": when(pipeline.get("created_at")),
                # List items carry no finished_at: the last update of a finished pipeline.
                "finished_at": when(pipeline.get("updated_at")) if status in FINISHED else None,
                "url": pipeline.get("web_url"),
            }
        ]
    }


MERGE_REQUESTS = UpdatedStream(
    "merge_requests",
    "/projects/{id}/merge_requests",
    merge_request_rows,
    primary_key="iid",
    params={"state": "merged", "order_by": "updated_at", "sort": "asc"},
    details=merge_request_details,
)
DEPLOYMENTS = UpdatedStream(
    "deployments",
    "/projects/{id}/deployments",
    deployment_rows,
    params={"order_by": "updated_at", "sort": "asc"},
    details=deployment_details,
)
PIPELINES = UpdatedStream(
    "pipelines",
    "/projects/{id}/pipelines",
    pipeline_rows,
    params={"order_by": "updated_at", "sort": "asc"},
)


class GitLabSource(Source):
    """Merge requests, deployments and pipelines of services[].gitlab projects."""

    name = "gitlab"
    default_base_url = "https://gitlab.com/api/v4"
    streams = (MERGE_REQUESTS, DEPLOYMENTS, PIPELINES)
    located_by = "project"  # ids `gitlab:<project>:…`: another project is read again

    def auth_headers(self, token: str | None, user: str | None) -> dict[str, str]:
        return {"PRIVATE-TOKEN": token} if token else {}

    def client(self) -> HttpClient | None:
        """`base_url` may name the instance (`https://gitlab.example.com`) or its API root."""
        client = super().client()
        if client is not None and not client.base_url.rstrip("/").endswith("/api/v4"):
            client.base_url = client.base_url.rstrip("/") + "/api/v4/"
        return client

    def scopes(self) -> list[Scope]:
        """One per service; `{id}` is the project's numeric id or URL-encoded path."""
        return [
            Scope(
                scope.key,
                scope.service,
                scope.location,
                {**scope.vars, "id": quote(str(scope.location.project), safe="")},
            )
            for scope in super().scopes()
        ]

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        assert ctx.http is not None
        since = self.settings.since_bound()
        self.project(ctx, scope)
        scope = replace(scope, vars={**scope.vars, "tiers": EnvironmentTiers()})
        for stream in self.streams:
            deploys = deploy_settings(scope) if stream is DEPLOYMENTS else None
            run_http_stream(ctx, stream, scope, start=since, deploys=deploys)
        link_deployments(ctx, scope, CompareResolver(ctx.http, scope))

    def project(self, ctx: SyncContext, scope: Scope) -> None:
        """The project (a 404 here is the one line for a wrong `project`), as a repositories row."""
        assert ctx.http is not None
        response = ctx.http.get(f"/projects/{scope.vars['id']}")
        body = response.json()
        if not isinstance(body, dict) or "id" not in body:
            raise SourceError(
                f"gitlab: malformed response from {response.url}: expected a project object"
            )
        row = {
            "id": f"gitlab:{scope.key}",
            "service": scope.key,
            "kind": "gitlab",
            "location": body.get("web_url") or project_of(scope),
            "branch": body.get("default_branch"),
            "source_id": str(body["id"]),
        }
        ctx.write_rows("project", scope.key, {"repositories": [row]})


class CompareResolver:
    """Commits between two deployments through `/repository/compare?from=&to=`."""

    def __init__(self, http: HttpClient, scope: Scope) -> None:
        self.http, self.scope, self.project = http, scope, scope.vars["id"]

    def between(self, base: str, head: str) -> list[Commit]:
        response = self.http.get(
            f"/projects/{self.project}/repository/compare", {"from": base, "to": head}
        )
        body = response.json()
        return [commit_of(item) for item in records_in(body, response, "commits")]

    def change_of_commit(self, commit: Commit) -> tuple[str, Rows] | None:
        found = pages(
            self.http,
            f"/projects/{self.project}/repository/commits/{commit.sha}/merge_requests",
            {"per_page": 100},
        )
        merged = [mr for mr in found if mr.get("state") == "merged"]
        if not merged:
            return None
        mr = merge_request_details(self.http, merged[0], self.scope)
        change = merge_request_change(mr, self.scope)
        return change["id"], {"changes": [change]}

    def direct_change(self, commit: Commit) -> dict[str, Any] | None:
        return commit_change(
            commit, f"gitlab:{project_of(self.scope)}:commit:{commit.sha}", self.scope.key
        )


def commit_of(item: dict[str, Any]) -> Commit:
    return Commit(
        sha=str(item["id"]),
        parents=tuple(str(parent) for parent in item.get("parent_ids") or []),
        authored_at=when(item.get("authored_date")),
        title=item.get("title"),
        author=item.get("author_name"),
    )

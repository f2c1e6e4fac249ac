"""The GitLab collector against a loopback server replaying GitLab-shaped answers (api-facts.md §2).

The story: three merged merge requests (a merge commit, a squash without a merge commit,
a fast-forward), a direct push, deployments in every status (one with a null
`deployable`, one running that finishes on the next sync, one canceled, one blocked),
pipelines (one with a null `updated_at`), commit dates with offsets, `x-next-page`
paging that ends on an empty header, and a list past 10,000 rows without `x-total`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from collector_checks import (
    assert_secret_absent,
    by_id,
    iso,
    links,
    one_service_config,
    replace_route,
    rows,
    snapshot,
    sync,
    sync_through_kills,
)
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine

from collectors.gitlab import GitLabSource
from poise.config import PoiseConfig
from poise.warehouse import open_warehouse
from poise.warehouse.sync_state import read_state

TOKEN = "glpat-GitLabT0kenNeverShown42"
PROJECT, PROJECT_ID = "acme/billing", 4411
API = "/api/v4/projects/acme%2Fbilling"
PREFIX = f"gitlab:{PROJECT}"


def sha(name: str) -> str:
    return name.encode().hex().ljust(40, "0")[:40]


B0, F17, MC17, SQ18, H18, D2, FF19A, FF19B = (
    sha(n) for n in ("B0", "F17", "MC17", "SQ18", "H18", "D2", "FF19a", "FF19b")
)
USERS = {
    "alice": {"id": 12, "username": "alice", "name": "Alice", "state": "active"},
    "bob": {"id": 7, "username": "bob", "name": "Bob", "state": "active"},
    "ghost": {"id": 1, "username": "ghost", "name": "Ghost User", "state": "active"},
}


def merge_request(
    iid: int, *, updated_at: str, merged_at: str, author: str = "alice", **shas: Any
) -> dict:
    return {
        "id": 32348400 + iid,
        "iid": iid,
        "project_id": PROJECT_ID,
        "title": f"Billing change !{iid}",
        "description": None,
        "state": "merged",
        "draft": False,
        "created_at": "2024-05-01T08:11:09.743Z",
        "updated_at": updated_at,
        "merged_at": merged_at,
        "closed_at": None,
        "closed_by": None,
        "merged_by": USERS["bob"],
        "merge_user": USERS["bob"],
        "author": USERS[author],
        "source_branch": f"feature-{iid}",
        "target_branch": "main",
        "sha": shas.get("sha", sha(f"head{iid}")),
        "merge_commit_sha": shas.get("merge_commit_sha"),
        "squash_commit_sha": shas.get("squash_commit_sha"),
        "squash": bool(shas.get("squash_commit_sha")),
        "references": {"full": f"{PROJECT}!{iid}"},
        "web_url": f"https://gitlab.example/{PROJECT}/-/merge_requests/{iid}",
    }


def commit(
    commit_id: str,
    *,
    authored: str,
    parents: list[str],
    title: str = "Change",
    author: str = "Alice",
) -> dict:
    return {
        "id": commit_id,
        "short_id": commit_id[:8],
        "title": title,
        "message": title + "\n",
        "author_name": author,
        "author_email": f"{author.lower()}@example.com",
        "authored_date": authored,
        "committer_name": author,
        "committer_email": f"{author.lower()}@example.com",
        "committed_date": authored,
        "created_at": authored,
        "parent_ids": parents,
        "web_url": f"https://gitlab.example/{PROJECT}/-/commit/{commit_id}",
    }


def deployment(
    deployment_id: int,
    *,
    status: str,
    sha_: str,
    env: str,
    updated_at: str,
    job: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": deployment_id,
        "iid": deployment_id - 13426700,
        "ref": "main",
        "sha": sha_,
        "status": status,
        "created_at": "2024-05-03T10:14:24.109Z",
        "updated_at": updated_at,
        "user": USERS["bob"],
        "environment": {
            "id": 585636,
            "name": env,
            "slug": env,
            "external_url": f"https://{env}.billing.example",
            "created_at": "2023-01-01T00:00:00.000Z",
            "updated_at": "2024-05-03T10:17:47.647Z",
        },
        "deployable": job,
    }


def job(
    job_id: int, *, status: str, started_at: str | None, finished_at: str | None
) -> dict[str, Any]:
    return {
        "id": job_id,
        "name": "deploy_prod",
        "stage": "deploy",
        "status": status,
        "created_at": "2024-05-03T10:14:20.000Z",
        "started_at": started_at,
        "finished_at": finished_at,
        "duration": 14.08 if finished_at else None,
        "queued_duration": 0.4,
        "user": USERS["bob"],
        "pipeline": {"id": 51653436, "sha": MC17, "ref": "main", "status": status},
        "commit": {
            "id": MC17,
            "parent_ids": [B0],
            "committed_date": "2024-05-03T12:02:41.000+02:00",
        },
    }


def pipeline(
    pipeline_id: int, *, status: str, updated_at: str | None, ref: str = "main"
) -> dict[str, Any]:
    return {
        "id": pipeline_id,
        "iid": pipeline_id % 10000,
        "project_id": PROJECT_ID,
        "sha": MC17,
        "ref": ref,
        "status": status,
        "source": "push",
        "created_at": "2024-05-03T10:03:08.753Z",
        "updated_at": updated_at,
        "web_url": f"https://gitlab.example/{PROJECT}/-/pipelines/{pipeline_id}",
    }


def paged(
    server: ReplayServer,
    path: str,
    items: list[dict[str, Any]],
    per_page: int,
    *,
    totals: bool = True,
) -> None:
    """Serve `items` like GitLab: x-page/x-next-page (empty on the last page), x-total while ≤ 10,000."""

    def answer(request: RecordedRequest) -> Reply:
        since = request.query.get("updated_after")
        chosen = [i for i in items if since is None or (i.get("updated_at") or "") > since]
        page = int(request.query.get("page", "1"))
        body = chosen[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(chosen)
        headers = {
            "x-page": str(page),
            "x-per-page": str(per_page),
            "x-next-page": str(page + 1) if more else "",
            "x-prev-page": str(page - 1) if page > 1 else "",
        }
        if totals and len(chosen) <= 10000:
            headers.update(
                {
                    "x-total": str(len(chosen)),
                    "x-total-pages": str(max(1, -(-len(chosen) // per_page))),
                }
            )
        return Reply(200, body, headers)

    server.add_handler(path, answer)


APPROVAL = "approved this merge request"


def note(
    note_id: int, author: str | None, created_at: str, body: str, *, system: bool = False
) -> dict[str, Any]:
    """A merge request note as `GET …/merge_requests/:iid/notes` gives it."""
    return {
        "id": 302000000 + note_id,
        "type": None if system else "DiscussionNote",
        "body": body,
        "attachment": None,
        "author": {
            "id": 1000 + note_id,
            "username": author or "ghost",
            "name": author.title() if author else "Ghost User",
            "state": "active",
            "web_url": f"https://gitlab.example/{author or 'ghost'}",
        },
        "created_at": created_at,
        "updated_at": created_at,
        "system": system,
        "noteable_id": 290000000 + note_id,
        "noteable_type": "MergeRequest",
        "project_id": PROJECT_ID,
        "resolvable": False,
        "confidential": False,
        "internal": False,
        "noteable_iid": 17,
    }


class Story:
    """The project's history, served at `project` (whose id is `project_id`: another path
    with the same id is the project renamed or moved); `left_out` names merge requests (by
    iid) and deployments (by id) it does not have."""

    def __init__(
        self, server: ReplayServer, project: str = PROJECT, project_id: int = PROJECT_ID
    ) -> None:
        self.server, self.project, self.project_id = server, project, project_id
        self.api = f"/api/v4/projects/{quote(project, safe='')}"
        self.deploy_90_finished = False
        self.more_deployments: list[dict[str, Any]] = []
        self.left_out: set[int] = set()

    def serve(self) -> Story:
        s, api = self.server, self.api
        s.add(
            api,
            Reply(
                200,
                {
                    "id": self.project_id,
                    "path_with_namespace": self.project,
                    "default_branch": "main",
                    "web_url": f"https://gitlab.example/{self.project}",
                    "created_at": "2023-01-01T00:00:00.000Z",
                },
            ),
        )
        mrs = [
            merge_request(
                17,
                updated_at="2024-05-03T10:02:45.270Z",
                merged_at="2024-05-03T10:02:41.192Z",
                merge_commit_sha=MC17,
                sha=F17,
            ),
            merge_request(
                18,
                updated_at="2024-05-03T11:30:00.000Z",
                merged_at="2024-05-03T11:29:58.000Z",
                author="ghost",
                squash_commit_sha=SQ18,
                sha=H18,
            ),
            merge_request(
                19,
                updated_at="2024-05-03T12:10:00.000Z",
                merged_at="2024-05-03T12:09:59.000Z",
                sha=FF19B,
            ),
        ]
        served = [mr for mr in mrs if mr["iid"] not in self.left_out]
        paged(s, f"{api}/merge_requests", served, per_page=2)
        commits = {
            17: [
                commit(F17, authored="2024-05-02T11:00:00.000+02:00", parents=[]),
                commit(sha("F17a"), authored="2024-05-02T09:55:00.000+02:00", parents=[]),
            ],
            18: [commit(H18, authored="2024-05-03T11:00:00.000+00:00", parents=[])],
            19: [
                commit(FF19B, authored="2024-05-03T12:00:00.000Z", parents=[]),
                commit(FF19A, authored="2024-05-03T11:45:00.000Z", parents=[]),
            ],
        }
        for iid, items in commits.items():
            paged(s, f"{api}/merge_requests/{iid}/commits", items, per_page=1)  # two pages for !17
        notes = {
            17: [  # oldest first; the review is on the second page
                note(1, "alice", "2024-05-02T12:00:00.000Z", "added 1 commit", system=True),
                note(2, "alice", "2024-05-02T12:30:00.000Z", "Ready for review"),
                note(3, "bob", "2024-05-02T13:00:00.000Z", "assigned to @carol", system=True),
                note(4, "carol", "2024-05-03T08:15:00.000+00:00", "Why not retry twice?"),
                note(5, "bob", "2024-05-03T09:00:00.000Z", APPROVAL, system=True),
            ],
            18: [  # by a deleted user: its own approval is no review, another's is
                note(6, None, "2024-05-03T11:05:00.000Z", APPROVAL, system=True),
                note(7, "carol", "2024-05-03T11:20:00.000Z", APPROVAL, system=True),
            ],
            19: [],
        }
        for iid, items in notes.items():
            paged(s, f"{api}/merge_requests/{iid}/notes", items, per_page=3)
        s.add_handler(f"{api}/deployments", self.deployments)
        paged(
            s,
            f"{api}/pipelines",
            [
                pipeline(1078343570, status="success", updated_at="2024-05-03T10:24:29.757Z"),
                pipeline(
                    1078343571, status="running", updated_at=None, ref="refs/merge-requests/18/head"
                ),
            ],
            per_page=100,
        )
        s.add(
            f"{api}/repository/compare",
            Reply(
                200,
                {
                    "commit": commit(FF19B, authored="2024-05-03T12:00:00.000Z", parents=[FF19A]),
                    "commits": [
                        commit(SQ18, authored="2024-05-03T11:00:00.000+00:00", parents=[MC17]),
                        commit(
                            D2,
                            authored="2024-05-03T13:40:00.000+02:00",
                            parents=[SQ18],
                            title="Hotfix rounding",
                            author="Carol",
                        ),
                        commit(FF19A, authored="2024-05-03T11:45:00.000Z", parents=[D2]),
                        commit(FF19B, authored="2024-05-03T12:00:00.000Z", parents=[FF19A]),
                    ],
                    "diffs": [
                        {
                            "old_path": "ledger.py",
                            "new_path": "ledger.py",
                            "diff": "@@ -1 +1 @@",
                            "new_file": False,
                        }
                    ],
                    "compare_timeout": False,
                    "compare_same_ref": False,
                    "web_url": "https://gitlab.example/compare",
                },
            ),
            query={"from": MC17, "to": FF19B},
        )
        s.add(f"{api}/repository/commits/{D2}/merge_requests", Reply(200, [], {"x-next-page": ""}))
        s.add(
            f"{api}/repository/commits/{FF19A}/merge_requests",
            Reply(200, [mrs[2]], {"x-next-page": ""}),
        )
        return self

    def deployments(self, request: RecordedRequest) -> Reply:
        finished = self.deploy_90_finished
        items = [
            deployment(
                13426788,
                status="success",
                sha_=MC17,
                env="production",
                updated_at="2024-05-03T10:17:47.647Z",
                job=job(
                    176919795,
                    status="success",
                    started_at="2024-05-03T10:17:33.559Z",
                    finished_at="2024-05-03T10:17:47.640Z",
                ),
            ),
            deployment(
                13426789,
                status="failed",
                sha_=MC17,
                env="stage",
                updated_at="2024-05-03T10:20:00.000Z",
                job=None,
            ),
            deployment(
                13426791,
                status="canceled",
                sha_=SQ18,
                env="production",
                updated_at="2024-05-03T11:40:00.000Z",
                job=job(
                    176919801,
                    status="canceled",
                    started_at="2024-05-03T11:39:00.000Z",
                    finished_at="2024-05-03T11:40:00.000Z",
                ),
            ),
            deployment(
                13426792,
                status="blocked",
                sha_=SQ18,
                env="production",
                updated_at="2024-05-03T11:50:00.000Z",
                job=job(176919802, status="manual", started_at=None, finished_at=None),
            ),
            deployment(
                13426790,
                status="success" if finished else "running",
                sha_=FF19B,
                env="production",
                updated_at="2024-05-03T14:05:00.000Z" if finished else "2024-05-03T14:00:00.000Z",
                job=job(
                    176919800,
                    status="success" if finished else "running",
                    started_at="2024-05-03T14:00:00.000Z",
                    finished_at="2024-05-03T14:04:59.000Z" if finished else None,
                ),
            ),
            *self.more_deployments,
        ]
        items = [item for item in items if item["id"] not in self.left_out]
        since = request.query.get("updated_after", "")
        chosen = sorted(
            (d for d in items if d["updated_at"] > since), key=lambda d: d["updated_at"]
        )
        return Reply(200, chosen, {"x-next-page": "", "x-page": "1", "x-total": str(len(chosen))})


def make_config(tmp_path: Path, server: ReplayServer, **settings: Any) -> PoiseConfig:
    block = {"project": PROJECT, "environment_map": {"stage": "staging"}}
    base = {"base_url": server.base_url + "/api/v4", "token_env": "TEST_GITLAB_TOKEN"}
    return one_service_config(tmp_path, "billing", "gitlab", block, {**base, **settings})


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_GITLAB_TOKEN", TOKEN)


@pytest.fixture
def story(replay_server: ReplayServer, http_sleeps: list[float]) -> Story:
    return Story(replay_server).serve()


def gitlab_sync(engine: Engine, config: PoiseConfig, **kwargs: Any) -> Any:
    return sync(engine, config, GitLabSource, **kwargs)


def test_story_becomes_changes_deployments_pipelines_and_links(
    warehouse: Engine, story: Story, replay_server: ReplayServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, replay_server)
    summary = gitlab_sync(warehouse, config)
    assert not summary.failed, summary.result("gitlab").errors

    changes = by_id(warehouse, "changes")
    assert sorted(changes) == [f"{PREFIX}:mr:17", f"{PREFIX}:mr:18", f"{PREFIX}:mr:19"]
    mr17 = changes[f"{PREFIX}:mr:17"]
    # The first commit is the last one listed (newest first), its +02:00 date made UTC.
    assert (mr17["sha"], iso(mr17["committed_at"]), iso(mr17["merged_at"])) == (
        MC17,
        "2024-05-02T07:55:00Z",
        "2024-05-03T10:02:41Z",
    )
    assert (mr17["pr_number"], mr17["author"], mr17["title"], mr17["source"]) == (
        17,
        "alice",
        "Billing change !17",
        "gitlab",
    )
    assert (changes[f"{PREFIX}:mr:18"]["sha"], changes[f"{PREFIX}:mr:18"]["author"]) == (
        SQ18,
        "ghost",
    )
    assert changes[f"{PREFIX}:mr:19"]["sha"] == FF19B  # fast-forward: its own head landed
    # the first comment or approval by someone else; notes read only as far as needed
    assert {iid: iso(changes[f"{PREFIX}:mr:{iid}"]["first_review_at"]) for iid in (17, 18)} == {
        17: "2024-05-03T08:15:00Z",
        18: "2024-05-03T11:20:00Z",
    }
    assert changes[f"{PREFIX}:mr:19"]["first_review_at"] is None
    notes17 = replay_server.requests_to(f"{API}/merge_requests/17/notes")
    assert [r.query.get("page") for r in notes17] == [None, "2"]
    assert notes17[0].query == {"sort": "asc", "order_by": "created_at", "per_page": "100"}

    deployments = {
        k.rsplit(":", 1)[1]: (v["environment"], v["status"], iso(v["deployed_at"]))
        for k, v in by_id(warehouse, "deployments").items()
    }
    assert deployments == {
        "13426788": ("production", "success", "2024-05-03T10:17:47Z"),  # deployable.finished_at
        "13426789": ("staging", "failure", "2024-05-03T10:20:00Z"),  # deployable null: updated_at
        "13426791": ("production", "failure", "2024-05-03T11:40:00Z"),  # canceled
    }
    runs = by_id(warehouse, "ci_runs")
    assert {k.rsplit(":", 1)[1]: (v["status"], iso(v["finished_at"])) for k, v in runs.items()} == {
        "1078343570": ("success", "2024-05-03T10:24:29Z"),
        "1078343571": ("running", None),
    }
    assert links(warehouse) == {(f"{PREFIX}:deployment:13426788", f"{PREFIX}:mr:17")}
    assert [(r["id"], r["branch"]) for r in rows(warehouse, "repositories")] == [
        ("gitlab:billing", "main")
    ]
    assert all(r.header("PRIVATE-TOKEN") == TOKEN for r in replay_server.requests)
    mr_pages = replay_server.requests_to(f"{API}/merge_requests")
    assert [r.query.get("page") for r in mr_pages] == [None, "2"]
    assert mr_pages[0].query == {
        "state": "merged",
        "order_by": "updated_at",
        "sort": "asc",
        "per_page": "100",
    }


def test_review_times_off_reads_no_notes(
    sqlite_warehouse: Engine, story: Story, replay_server: ReplayServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, replay_server)
    service = config.services[0]
    assert service.gitlab is not None
    off = service.model_copy(
        update={"gitlab": service.gitlab.model_copy(update={"review_times": False})}
    )
    config = config.model_copy(update={"services": [off]})
    assert not gitlab_sync(sqlite_warehouse, config).failed
    assert not [r for r in replay_server.requests if r.path.endswith("/notes")]
    changes = by_id(sqlite_warehouse, "changes")
    assert {change["first_review_at"] for change in changes.values()} == {None}
    again = gitlab_sync(sqlite_warehouse, config).result("gitlab")
    assert (again.new, again.updated) == (0, 0)


def test_a_review_environment_longer_than_its_column_is_cut_to_fit_on_either_engine(
    warehouse: Engine, story: Story, replay_server: ReplayServer, tmp_path: Path
) -> None:
    """GitLab allows 255 characters (a review app named after a long branch); the column
    holds 100, which PostgreSQL enforces: the deployment is kept, its name cut."""
    review = "review/dependabot/npm_and_yarn/" + "very-long-package-name-" * 6
    story.more_deployments.append(
        deployment(
            13426793,
            status="success",
            sha_=SQ18,
            env=review,
            updated_at="2024-05-03T12:00:00.000Z",
            job=job(
                176919803,
                status="success",
                started_at="2024-05-03T11:59:00.000Z",
                finished_at="2024-05-03T12:00:00.000Z",
            ),
        )
    )
    config = make_config(tmp_path, replay_server)
    summary = gitlab_sync(warehouse, config)
    assert not summary.failed, summary.result("gitlab").errors
    stored = by_id(warehouse, "deployments")[f"{PREFIX}:deployment:13426793"]
    assert len(review) > 100 and stored["environment"] == review[:99] + "…"
    before = snapshot(warehouse)
    again = gitlab_sync(warehouse, config).result("gitlab")
    assert (again.new, again.updated, snapshot(warehouse)) == (0, 0, before)


def test_a_running_deployment_is_picked_up_once_finished_and_linked_through_compare(
    warehouse: Engine, story: Story, replay_server: ReplayServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, replay_server)
    gitlab_sync(warehouse, config)
    story.deploy_90_finished = True
    served = len(replay_server.requests)
    summary = gitlab_sync(warehouse, config)
    assert not summary.failed, summary.result("gitlab").errors
    asked = replay_server.requests[served:]
    since = [r.query.get("updated_after") for r in asked if r.path == f"{API}/deployments"]
    assert since == ["2024-05-03T13:59:59Z"]  # the cursor (14:00:00) less a second of overlap
    deployment = by_id(warehouse, "deployments")[f"{PREFIX}:deployment:13426790"]
    assert (deployment["status"], iso(deployment["deployed_at"])) == (
        "success",
        "2024-05-03T14:04:59Z",
    )
    assert {c for d, c in links(warehouse) if d.endswith("13426790")} == {
        f"{PREFIX}:mr:18",  # its squash commit
        f"{PREFIX}:commit:{D2}",  # pushed without a merge request
        f"{PREFIX}:mr:19",  # FF19a asked: it came with !19
    }
    direct = by_id(warehouse, "changes")[f"{PREFIX}:commit:{D2}"]
    assert (direct["title"], direct["author"], iso(direct["committed_at"])) == (
        "Hotfix rounding",
        "Carol",
        "2024-05-03T11:40:00Z",
    )

    before = snapshot(warehouse)
    again = gitlab_sync(warehouse, config).result("gitlab")
    assert (again.new, again.updated, again.errors) == (0, 0, [])
    assert snapshot(warehouse) == before


def test_a_killed_sync_resumes_and_ends_with_the_rows_of_an_uninterrupted_one(
    warehouse: Engine, story: Story, replay_server: ReplayServer, tmp_path: Path
) -> None:
    story.deploy_90_finished = True
    config = make_config(tmp_path, replay_server)
    kills, summary = sync_through_kills(warehouse, config, GitLabSource)
    assert kills >= 3 and not summary.failed, summary.result("gitlab").errors
    uninterrupted = open_warehouse(f"sqlite:///{tmp_path / 'uninterrupted.db'}")
    gitlab_sync(uninterrupted, config)
    assert snapshot(warehouse) == snapshot(uninterrupted)
    uninterrupted.dispose()


def test_paging_goes_past_ten_thousand_rows_without_totals(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    replay_server.add(API, Reply(200, {"id": PROJECT_ID, "default_branch": "main"}))
    paged(replay_server, f"{API}/merge_requests", [], per_page=100)
    replay_server.add(f"{API}/deployments", Reply(200, [], {"x-next-page": ""}))
    count = 10_050
    items = [
        pipeline(
            2_000_000 + n,
            status="success",
            updated_at=f"2024-0{1 + n // 3000}-01T00:00:{n % 60:02d}.{n:06d}Z",
        )
        for n in range(count)
    ]
    items.sort(key=lambda p: p["updated_at"])
    paged(replay_server, f"{API}/pipelines", items, per_page=100)
    summary = gitlab_sync(sqlite_warehouse, make_config(tmp_path, replay_server))
    assert not summary.failed, summary.result("gitlab").errors
    assert len(rows(sqlite_warehouse, "ci_runs")) == count
    pages = replay_server.requests_to(f"{API}/pipelines")
    assert len(pages) == 101 and pages[-1].query["page"] == "101"


def test_throttling_with_a_plain_text_429_is_waited_out(
    sqlite_warehouse: Engine,
    story: Story,
    replay_server: ReplayServer,
    tmp_path: Path,
    http_sleeps: list[float],
) -> None:
    replace_route(
        replay_server,
        f"{API}/pipelines",
        Reply(
            429,
            "Retry later",
            {
                "Retry-After": "42",
                "Content-Type": "text/plain",
                "RateLimit-Name": "throttle_authenticated_api",
            },
        ),
        Reply(
            200,
            [pipeline(1078343570, status="success", updated_at="2024-05-03T10:24:29.757Z")],
            {"x-next-page": ""},
        ),
    )
    summary = gitlab_sync(sqlite_warehouse, make_config(tmp_path, replay_server))
    assert not summary.failed, summary.result("gitlab").errors
    assert 42.0 in http_sleeps and len(rows(sqlite_warehouse, "ci_runs")) == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply(200, b'[{"id": 13426788, "status": "succ'),
            'gitlab: malformed response from {base}/api/v4/projects/acme%2Fbilling/deployments?order_by=updated_at&sort=asc&per_page=100 (HTTP 200, not JSON: \'[{"id": 13426788, "status": "succ\'): check that base_url points at the API',
        ),
        (
            Reply(502, "<html>502 Bad Gateway</html>"),
            "gitlab: HTTP 502 from {base}/api/v4/projects/acme%2Fbilling/deployments?order_by=updated_at&sort=asc&per_page=100 persisted after 3 tries: the service may be down; collected pages are kept, run `poise sync` again later",
        ),
        (
            Reply(401, {"message": "401 Unauthorized"}),
            "gitlab: token expired or invalid (HTTP 401 at {base}/api/v4/projects/acme%2Fbilling/deployments?order_by=updated_at&sort=asc&per_page=100): check $TEST_GITLAB_TOKEN",
        ),
    ],
    ids=["garbage", "502-persists", "401"],
)
def test_a_failing_list_is_one_line_and_what_came_before_is_kept(
    sqlite_warehouse: Engine,
    story: Story,
    replay_server: ReplayServer,
    tmp_path: Path,
    reply: Reply,
    expected: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    replace_route(replay_server, f"{API}/deployments", reply)
    summary = gitlab_sync(sqlite_warehouse, make_config(tmp_path, replay_server))
    expected = expected.replace("{base}", replay_server.base_url)
    assert summary.result("gitlab").errors == [expected]
    assert len(by_id(sqlite_warehouse, "changes")) == 3
    with sqlite_warehouse.connect() as connection:
        state = read_state(connection, "gitlab", "deployments", "billing")
    assert state.bookmark is None and state.last_error == expected
    assert_secret_absent(TOKEN, sqlite_warehouse, caplog.text, expected)


def test_a_missing_project_is_one_line(
    sqlite_warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    replay_server.add(API, Reply(404, {"message": "404 Project Not Found"}))
    (error,) = (
        gitlab_sync(sqlite_warehouse, make_config(tmp_path, replay_server)).result("gitlab").errors
    )
    assert error == (
        f"gitlab: not found (HTTP 404 at {replay_server.base_url}{API}): check the project "
        "(services[].gitlab.project) in poise.yaml and that the token can see it"
    )


def test_base_url_may_name_the_instance_instead_of_its_api_root(
    sqlite_warehouse: Engine, story: Story, replay_server: ReplayServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, replay_server, base_url=replay_server.base_url + "/")
    assert not gitlab_sync(sqlite_warehouse, config).failed
    assert replay_server.requests[0].path == API

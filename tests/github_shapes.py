"""GitHub REST items shaped like the real API (api-facts.md §1), for replay servers and benchmarks.

Only the shapes live here; each test scripts its own story with them. Nulls are where
GitHub puts them: a deleted user is `null` (or the `ghost` placeholder), a pull request
from a deleted fork has `head.repo: null`, an open pull request carries a test-merge
`merge_commit_sha`, a pending review has no `submitted_at`.
"""

from __future__ import annotations

from typing import Any

REPO = "acme/checkout"
REPO_ID = 77120001
API_ROOT = "https://api.github.com"

USERS = {
    "alice": {"login": "alice", "id": 5012, "type": "User", "site_admin": False},
    "bob": {"login": "bob", "id": 7044, "type": "User", "site_admin": False},
    "ghost": {"login": "ghost", "id": 10137, "type": "User", "site_admin": False},
    "bot": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot", "site_admin": False},
}


def user(name: str | None) -> dict[str, Any] | None:
    return None if name is None else dict(USERS[name])


def repository(created_at: str = "2023-11-02T09:14:55Z") -> dict[str, Any]:
    owner, name = REPO.split("/")
    return {
        "id": REPO_ID,
        "node_id": "R_kgDOEXAMPLE",
        "name": name,
        "full_name": REPO,
        "private": True,
        "owner": {"login": owner, "id": 9001, "type": "Organization"},
        "html_url": f"https://github.com/{REPO}",
        "url": f"{API_ROOT}/repos/{REPO}",
        "default_branch": "main",
        "created_at": created_at,
        "updated_at": "2024-05-03T10:24:40Z",
        "pushed_at": "2024-05-03T10:02:41Z",
        "archived": False,
        "visibility": "private",
    }


def pull(
    number: int,
    *,
    created_at: str,
    updated_at: str,
    merged_at: str | None = None,
    closed_at: str | None = None,
    merge_commit_sha: str | None = None,
    author: str | None = "alice",
    fork_deleted: bool = False,
    title: str | None = None,
) -> dict[str, Any]:
    head_repo = None if fork_deleted else {"id": REPO_ID, "full_name": REPO}
    return {
        "url": f"{API_ROOT}/repos/{REPO}/pulls/{number}",
        "id": 1874512000 + number,
        "node_id": f"PR_kwDOEXAMPLE{number}",
        "html_url": f"https://github.com/{REPO}/pull/{number}",
        "number": number,
        "state": "closed" if closed_at or merged_at else "open",
        "locked": False,
        "draft": False,
        "title": title or f"Change number {number}",
        "user": user(author),
        "body": None,
        "labels": [],
        "created_at": created_at,
        "updated_at": updated_at,
        "closed_at": closed_at or merged_at,
        "merged_at": merged_at,
        "merge_commit_sha": merge_commit_sha or f"{number:04d}" + "e" * 36,
        "assignee": None,
        "requested_reviewers": [],
        "head": {
            "label": None if fork_deleted else f"acme:feature-{number}",
            "ref": f"feature-{number}",
            "sha": f"{number:04d}" + "h" * 36,
            "user": None if fork_deleted else user(author),
            "repo": head_repo,
        },
        "base": {
            "label": "acme:main",
            "ref": "main",
            "sha": "0f9e8d7c6b5a49382716f5e4d3c2b1a09f8e7d6c",
            "repo": {"id": REPO_ID, "full_name": REPO},
        },
        "author_association": "MEMBER",
        "auto_merge": None,
        "active_lock_reason": None,
    }


def commit(
    sha: str,
    *,
    authored: str,
    parents: list[str],
    message: str = "Change",
    author: str | None = "alice",
    name: str = "Alice",
) -> dict[str, Any]:
    """A commit as PR-commits, commit lists and compare list it (author may be null)."""
    return {
        "sha": sha,
        "node_id": f"C_{sha[:12]}",
        "commit": {
            "author": {"name": name, "email": f"{name.lower()}@example.com", "date": authored},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "date": authored},
            "message": message,
            "tree": {"sha": "7" * 40},
            "comment_count": 0,
        },
        "url": f"{API_ROOT}/repos/{REPO}/commits/{sha}",
        "html_url": f"https://github.com/{REPO}/commit/{sha}",
        "author": user(author),
        "committer": {"login": "web-flow", "id": 19864447},
        "parents": [
            {"sha": parent, "url": f"{API_ROOT}/repos/{REPO}/commits/{parent}"}
            for parent in parents
        ],
    }


def review(review_id: int, *, reviewer: str | None, state: str, submitted_at: str | None) -> dict:
    item: dict[str, Any] = {
        "id": review_id,
        "node_id": f"PRR_{review_id}",
        "user": user(reviewer),
        "body": "",
        "state": state,
        "html_url": f"https://github.com/{REPO}/pull/1#pullrequestreview-{review_id}",
        "author_association": "MEMBER",
        "commit_id": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
    }
    if submitted_at is not None:  # a PENDING review has no submitted_at at all
        item["submitted_at"] = submitted_at
    return item


def deployment(
    deployment_id: int,
    *,
    sha: str,
    environment: str,
    created_at: str,
    production: bool | None = None,
) -> dict[str, Any]:
    return {
        "url": f"{API_ROOT}/repos/{REPO}/deployments/{deployment_id}",
        "id": deployment_id,
        "node_id": f"DE_{deployment_id}",
        "sha": sha,
        "ref": "main",
        "task": "deploy",
        "payload": {},
        "original_environment": environment,
        "environment": environment,
        "description": None,
        "creator": user("bot"),
        "created_at": created_at,
        "updated_at": created_at,
        "statuses_url": f"{API_ROOT}/repos/{REPO}/deployments/{deployment_id}/statuses",
        "repository_url": f"{API_ROOT}/repos/{REPO}",
        "transient_environment": False,
        "production_environment": environment == "production" if production is None else production,
        "performed_via_github_app": None,
    }


def deployment_status(status_id: int, *, state: str, created_at: str, environment: str) -> dict:
    return {
        "url": f"{API_ROOT}/repos/{REPO}/deployments/1/statuses/{status_id}",
        "id": status_id,
        "node_id": f"DES_{status_id}",
        "state": state,
        "creator": user("bot"),
        "description": "",
        "environment": environment,
        "target_url": f"https://ci.example/run/{status_id}",
        "log_url": f"https://ci.example/run/{status_id}",
        "environment_url": "https://checkout.example",
        "created_at": created_at,
        "updated_at": created_at,
        "performed_via_github_app": None,
    }


def workflow(workflow_id: int, name: str, path: str) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "node_id": f"W_{workflow_id}",
        "name": name,
        "path": path,
        "state": "active",
        "created_at": "2023-11-02T09:20:00.000Z",
        "updated_at": "2024-01-10T08:00:00.000Z",
        "url": f"{API_ROOT}/repos/{REPO}/actions/workflows/{workflow_id}",
        "html_url": f"https://github.com/{REPO}/blob/main/{path}",
    }


def run(
    run_id: int,
    *,
    created_at: str,
    head_sha: str,
    status: str = "completed",
    conclusion: str | None = "success",
    updated_at: str | None = None,
    run_attempt: int = 1,
    event: str = "push",
    name: str = "Deploy",
    workflow_id: int = 1903133,
    head_branch: str = "main",
) -> dict[str, Any]:
    return {
        "id": run_id,
        "name": name,
        "node_id": f"WFR_{run_id}",
        "head_branch": head_branch,
        "head_sha": head_sha,
        "path": ".github/workflows/deploy.yml",
        "display_title": "Deploy",
        "run_number": run_id % 100000,
        "event": event,
        "status": status,
        "conclusion": conclusion if status == "completed" else None,
        "workflow_id": workflow_id,
        "check_suite_id": 20000000000 + run_id,
        "url": f"{API_ROOT}/repos/{REPO}/actions/runs/{run_id}",
        "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}",
        "pull_requests": [],
        "created_at": created_at,
        "updated_at": updated_at or created_at,
        "actor": user("alice"),
        "run_attempt": run_attempt,
        "run_started_at": created_at,
        "triggering_actor": user("alice"),
        "head_commit": {
            "id": head_sha,
            "tree_id": "7" * 40,
            "message": "Deploy",
            "timestamp": created_at,
            "author": {"name": "Alice", "email": "alice@example.com"},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        },
        "repository": {"id": REPO_ID, "full_name": REPO},
        "head_repository": {"id": REPO_ID, "full_name": REPO},
    }


def job(
    job_id: int,
    run_id: int,
    *,
    name: str,
    conclusion: str | None,
    started_at: str,
    completed_at: str | None,
) -> dict:
    return {
        "id": job_id,
        "run_id": run_id,
        "run_url": f"{API_ROOT}/repos/{REPO}/actions/runs/{run_id}",
        "node_id": f"CR_{job_id}",
        "head_sha": "9f1c2ab7d0e4c5b6a7f8e9d0c1b2a3f4e5d6c7b8",
        "status": "completed" if completed_at else "in_progress",
        "conclusion": conclusion,
        "created_at": started_at,
        "started_at": started_at,
        "completed_at": completed_at,
        "name": name,
        "steps": [
            {
                "name": "Set up job",
                "status": "completed",
                "conclusion": "success",
                "number": 1,
                "started_at": started_at.replace("Z", ".000Z"),
                "completed_at": started_at.replace("Z", ".000Z"),
            }
        ],
        "labels": ["ubuntu-latest"],
        "runner_name": "GitHub Actions 2",
        "workflow_name": "Deploy",
        "head_branch": "main",
    }


def release(
    release_id: int,
    tag: str,
    *,
    published_at: str | None,
    draft: bool = False,
    prerelease: bool = False,
) -> dict:
    return {
        "url": f"{API_ROOT}/repos/{REPO}/releases/{release_id}",
        "html_url": f"https://github.com/{REPO}/releases/tag/{tag}",
        "id": release_id,
        "node_id": f"RE_{release_id}",
        "tag_name": tag,
        "target_commitish": "main",
        "name": tag,
        "draft": draft,
        "prerelease": prerelease,
        "created_at": "2024-05-03T09:58:00Z",
        "published_at": published_at,
        "author": user("alice"),
        "assets": [],
        "body": None,
    }


def issue(
    number: int,
    *,
    created_at: str,
    updated_at: str,
    closed_at: str | None = None,
    labels: tuple[str, ...] = ("incident",),
    is_pull_request: bool = False,
    title: str = "Checkout returns 502",
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "url": f"{API_ROOT}/repos/{REPO}/issues/{number}",
        "html_url": f"https://github.com/{REPO}/issues/{number}",
        "id": 2293000000 + number,
        "node_id": f"I_{number}",
        "number": number,
        "title": title,
        "user": user("bob"),
        "labels": [
            {"id": 600 + i, "name": name, "color": "d73a4a"} for i, name in enumerate(labels)
        ],
        "state": "closed" if closed_at else "open",
        "state_reason": "completed" if closed_at else None,
        "locked": False,
        "assignee": None,
        "comments": 3,
        "created_at": created_at,
        "updated_at": updated_at,
        "closed_at": closed_at,
        "author_association": "MEMBER",
        "body": None,
    }
    if is_pull_request:
        item["pull_request"] = {"url": f"{API_ROOT}/repos/{REPO}/pulls/{number}", "merged_at": None}
    return item


def compare(commits: list[dict[str, Any]], *, total: int, base: str, head: str) -> dict[str, Any]:
    return {
        "url": f"{API_ROOT}/repos/{REPO}/compare/{base}...{head}",
        "html_url": f"https://github.com/{REPO}/compare/{base}...{head}",
        "status": "ahead",
        "ahead_by": total,
        "behind_by": 0,
        "total_commits": total,
        "base_commit": {"sha": base},
        "merge_base_commit": {"sha": base},
        "commits": commits,
        "files": [
            {
                "filename": "app.py",
                "status": "modified",
                "additions": 3,
                "deletions": 1,
                "patch": "@@ -1 +1 @@",
            }
        ],
    }


def rate_headers(remaining: int = 4999, reset: int = 1714733000) -> dict[str, str]:
    """Headers GitHub sends with every answer (mixed case, as recorded)."""
    return {
        "X-RateLimit-Limit": "5000",
        "x-ratelimit-remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
        "X-RateLimit-Used": str(5000 - remaining),
        "X-RateLimit-Resource": "core",
        "X-GitHub-Api-Version-Selected": "2022-11-28",
    }

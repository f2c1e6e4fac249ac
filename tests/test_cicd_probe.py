"""Probes of what the CI/CD collectors' rows *mean*, against awkward but real API answers.

HTTP faults (429, 5xx, garbage, paging loops, SSO 403s) are tests/test_collector_probe.py's;
here every answer is well-formed, and the question is whether the stored deployments,
changes and links say what happened. Real loopback HTTP servers (tests/replay.py), real
Git repositories in temp folders, a real SQLite file and, with POISE_TEST_POSTGRES_URL,
PostgreSQL.

What was probed, and found:

- GitHub Actions re-runs. A re-run keeps its run's id, and the collector kept one
  deployment per run, moved to the re-run's time. Re-running an older successful run (the
  usual Actions rollback) moved that deployment past later ones, and the deployment right
  after its old place was never re-linked: the change it had shipped was left shipped by
  nothing (no lead time), and a deployment was lost from the frequency. Now each attempt
  is a deployment of its own (`…:run:<id>:attempt:<n>`, as GitHub Deployments and GitLab
  count a re-run), an earlier attempt never seen is fetched (`…/attempts/<n>`), and with
  `deploy_job` only the jobs that ran in that attempt count (`filter=latest` also lists
  the jobs a "re-run failed jobs" did not run again). Cancelled runs are failed
  deployments, skipped ones and pull-request runs none (unchanged).
- GitHub environments: GitHub's environment names are not case sensitive, the collector's
  were: a deployment to `Production` (not flagged production) was a deployment to another
  environment, and `environment_map` keys had to match the case. Now compared without
  case. Several statuses per deployment (queued → in_progress → success; failure then a
  redeploy's success; inactive after a newer one; error) were already read right.
- GitLab: an environment whose tier is `production` but whose name is not the service's
  production environment (`prod`, `production-eu`) was not production, where GitLab's own
  DORA counts it. Now the project's environments' tiers are read once a sync. Deployment
  statuses (created, running, blocked, skipped: none; canceled: failure), a merge request
  both squashed and merged with a merge commit, and a self-hosted base URL under a path
  prefix were right.
- Jenkins: the service's checkout was picked by a substring of the remote URL, so a shared
  library `acme/ledger-pipeline-lib` checked out first passed for `acme/ledger`. Now an
  exact repository path wins over a substring.
- shipped.py: a Jenkins deployment linked while Local Git had not stored its commit yet
  (the clone fetched between the git and jenkins syncs) shipped the older known commits
  only, and was never linked to its own commit later (it was not "empty"). Now a
  deployment whose own sha became a known change since the last pass, and that does not
  ship it, is linked again. A rollback to an older sha ships nothing, and the deployment
  after it ships again what the rollback took out (chosen: lead time counts the first).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import github_shapes as gh
import pytest
import test_gitlab_collector as gl
from collector_checks import by_id, iso, links, one_service_config, rows, snapshot, sync
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine
from test_git_collector import Repo
from test_github_collector import Runs
from test_jenkins_collector import Jenkins, build, checkout
from test_jenkins_collector import make_config as jenkins_configured

from collectors.git import GitSource
from collectors.github import GitHubSource
from collectors.gitlab import GitLabSource
from collectors.jenkins import JenkinsSource
from collectors.runner import run_sync
from poise.catalog import apply_config
from poise.config import PoiseConfig

REPO, REPO_ID = gh.REPO, gh.REPO_ID
PREFIX = f"github:{REPO}"
NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)


def sha(name: str) -> str:
    return name.encode().hex().ljust(40, "0")[:40]


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_ProbeT0kenNeverShown0123456789")
    monkeypatch.setenv("TEST_GITLAB_TOKEN", gl.TOKEN)
    monkeypatch.setenv("TEST_JENKINS_TOKEN", "jenkins-api-token")
    monkeypatch.setenv("TEST_JENKINS_USER", "ci-bot")


@pytest.fixture
def github_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr("collectors.github.utcnow", lambda: NOW)
    return NOW


def github_config(tmp_path: Path, server: ReplayServer, **block: Any) -> PoiseConfig:
    settings = {"base_url": server.base_url, "token_env": "TEST_GITHUB_TOKEN"}
    return one_service_config(tmp_path, "checkout", "github", {"repo": REPO, **block}, settings)


def serve_repository(server: ReplayServer) -> None:
    server.add(f"/repos/{REPO}", Reply(200, gh.repository(created_at="2024-01-01T00:00:00Z")))
    server.add(f"/repos/{REPO}/pulls", Reply(200, [], gh.rate_headers()))


def serve_compare(server: ReplayServer, base: str, head: str, commits: list[dict]) -> None:
    body = gh.compare(commits, total=len(commits), base=base, head=head)
    server.add(f"/repos/{REPO}/compare/{base}...{head}", Reply(200, body, gh.rate_headers()))


# -- GitHub Actions: re-runs --------------------------------------------------------------

K0, K1, K2, K3, K4 = (sha(f"K{n}") for n in range(5))


def kommit(name: str, parent: str, authored: str) -> dict[str, Any]:
    return gh.commit(name, authored=authored, parents=[parent], message=f"commit {name[:6]}")


def test_a_rerun_is_a_deployment_of_its_own_and_a_rollback_by_rerun_keeps_every_link(
    warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    http_sleeps: list[float],
    github_now: datetime,
) -> None:
    """Runs 601 (K1), 602 (K2), 603 (K3); then 602 is re-run (a rollback to K2) and run 604
    (K4) is first seen at its second attempt, its first having failed. Each attempt is a
    deployment at its own time; 603 still ships K3 and 602 still ships K2."""
    serve_repository(replay_server)

    def run(run_id: int, hour: str, head: str, **fields: Any) -> dict[str, Any]:
        """A run created at `hour`:00 that took ten minutes."""
        return gh.run(
            run_id,
            created_at=f"{hour}:00:00Z",
            updated_at=f"{hour}:10:00Z",
            head_sha=head,
            **fields,
        )

    runs = [
        run(601, "2024-05-08T10", K1),
        run(602, "2024-05-08T12", K2),
        run(603, "2024-05-09T09", K3),
        run(605, "2024-05-08T11", K1, conclusion="cancelled"),
        run(606, "2024-05-08T13", K1, conclusion="skipped"),
        run(607, "2024-05-08T14", K3, event="pull_request"),
    ]
    Runs(replay_server, runs)
    serve_compare(replay_server, K1, K2, [kommit(K2, K1, "2024-05-08T09:00:00Z")])
    serve_compare(replay_server, K2, K3, [kommit(K3, K2, "2024-05-09T08:00:00Z")])
    for name in (K1, K2, K3, K4):
        replay_server.add(f"/repos/{REPO}/commits/{name}/pulls", Reply(200, []))
    config = github_config(tmp_path, replay_server, deploy_workflow="deploy.yml")
    summary = sync(warehouse, config, GitHubSource)
    assert not summary.failed, summary.result("github").errors
    first = by_id(warehouse, "deployments")
    assert {k.removeprefix(f"{PREFIX}:"): v["status"] for k, v in first.items()} == {
        "run:601": "success",
        "run:602": "success",
        "run:603": "success",
        "run:605": "failure",  # cancelled: a deployment that did not complete
    }  # 606 skipped deployed nothing; 607 ran for a pull request
    assert len(rows(warehouse, "ci_runs")) == 6

    # 602 re-run on 05-09 15:00 (rollback to K2); 604 on K4: attempt 1 failed, attempt 2 passed
    runs[1].update(
        run_attempt=2, run_started_at="2024-05-09T15:00:00Z", updated_at="2024-05-09T15:05:00Z"
    )
    rerun_604 = gh.run(
        604,
        created_at="2024-05-10T08:00:00Z",
        head_sha=K4,
        run_attempt=2,
        updated_at="2024-05-10T09:05:00Z",
    )
    rerun_604["run_started_at"] = "2024-05-10T09:00:00Z"
    runs.append(rerun_604)
    attempt_1 = {
        **rerun_604,
        "run_attempt": 1,
        "conclusion": "failure",
        "run_started_at": "2024-05-10T08:00:00Z",
        "updated_at": "2024-05-10T08:07:00Z",
    }
    replay_server.add(f"/repos/{REPO}/actions/runs/604/attempts/1", Reply(200, attempt_1))
    behind = {**gh.compare([], total=0, base=K3, head=K2), "status": "behind", "behind_by": 1}
    replay_server.add(f"/repos/{REPO}/compare/{K3}...{K2}", Reply(200, behind))  # the rollback
    serve_compare(
        replay_server,
        K2,
        K4,
        [kommit(K3, K2, "2024-05-09T08:00:00Z"), kommit(K4, K3, "2024-05-10T07:00:00Z")],
    )
    summary = sync(warehouse, config, GitHubSource)
    assert not summary.failed, summary.result("github").errors

    deployments = {
        k.removeprefix(f"{PREFIX}:"): (v["status"], iso(v["deployed_at"]), v["sha"])
        for k, v in by_id(warehouse, "deployments").items()
    }
    assert deployments == {
        "run:601": ("success", "2024-05-08T10:10:00Z", K1),
        "run:602": ("success", "2024-05-08T12:10:00Z", K2),  # stays where it deployed
        "run:602:attempt:2": ("success", "2024-05-09T15:05:00Z", K2),  # the rollback
        "run:603": ("success", "2024-05-09T09:10:00Z", K3),
        "run:604": ("failure", "2024-05-10T08:07:00Z", K4),  # fetched: never listed
        "run:604:attempt:2": ("success", "2024-05-10T09:05:00Z", K4),
        "run:605": ("failure", "2024-05-08T11:10:00Z", K1),
    }
    commit = f"{PREFIX}:commit:"
    assert links(warehouse) == {
        (f"{PREFIX}:run:602", commit + K2),
        (f"{PREFIX}:run:603", commit + K3),
        # after the rollback to K2, K4's deployment brings K3 back with K4
        (f"{PREFIX}:run:604:attempt:2", commit + K3),
        (f"{PREFIX}:run:604:attempt:2", commit + K4),
    }
    assert len(replay_server.requests_to(f"/repos/{REPO}/actions/runs/604/attempts/1")) == 1

    before = snapshot(warehouse)
    again = sync(warehouse, config, GitHubSource).result("github")
    assert (again.new, again.updated, again.errors) == (0, 0, [])
    assert snapshot(warehouse) == before
    assert len(replay_server.requests_to(f"/repos/{REPO}/actions/runs/604/attempts/1")) == 1


def test_a_rerun_of_failed_jobs_only_deploys_when_the_deploy_job_ran_again(
    sqlite_warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    http_sleeps: list[float],
    github_now: datetime,
) -> None:
    """`filter=latest` lists the deploy job of attempt 1 beside the notify job that attempt
    2 re-ran: attempt 2 deployed nothing, and attempt 1's deployment is not doubled."""
    serve_repository(replay_server)
    run = gh.run(
        701,
        created_at="2024-05-09T10:00:00Z",
        head_sha=K1,
        run_attempt=2,
        updated_at="2024-05-09T11:00:00Z",
    )
    Runs(replay_server, [run])

    def job(job_id: int, name: str, attempt: int, start: str, end: str) -> dict[str, Any]:
        item = gh.job(
            job_id, 701, name=name, conclusion="success", started_at=start, completed_at=end
        )
        return {**item, "run_attempt": attempt}

    deploy = job(8001, "deploy", 1, "2024-05-09T10:01:00Z", "2024-05-09T10:06:00Z")
    notify_1 = {
        **job(8002, "notify", 1, "2024-05-09T10:06:00Z", "2024-05-09T10:07:00Z"),
        "conclusion": "failure",
    }
    notify_2 = job(8003, "notify", 2, "2024-05-09T10:58:00Z", "2024-05-09T10:59:00Z")
    replay_server.add(
        f"/repos/{REPO}/actions/runs/701/jobs",
        Reply(200, {"total_count": 2, "jobs": [deploy, notify_2]}),
    )
    attempt_1 = {
        **run,
        "run_attempt": 1,
        "conclusion": "failure",
        "updated_at": "2024-05-09T10:07:00Z",
    }
    replay_server.add(f"/repos/{REPO}/actions/runs/701/attempts/1", Reply(200, attempt_1))
    replay_server.add(
        f"/repos/{REPO}/actions/runs/701/attempts/1/jobs",
        Reply(200, {"total_count": 2, "jobs": [deploy, notify_1]}),
    )
    config = github_config(tmp_path, replay_server, deploy_workflow="Deploy", deploy_job="deploy")
    summary = sync(sqlite_warehouse, config, GitHubSource)
    assert not summary.failed, summary.result("github").errors
    deployments = by_id(sqlite_warehouse, "deployments")
    assert {k: (v["status"], iso(v["deployed_at"])) for k, v in deployments.items()} == {
        f"{PREFIX}:run:701": ("success", "2024-05-09T10:06:00Z"),  # the deploy job's end
    }


# -- GitHub Deployments API: statuses and environment names ------------------------------


def test_deployment_statuses_and_environment_names_as_github_means_them(
    warehouse: Engine,
    replay_server: ReplayServer,
    tmp_path: Path,
    http_sleeps: list[float],
    github_now: datetime,
) -> None:
    serve_repository(replay_server)
    stories: dict[int, tuple[str, bool | None, list[tuple[str, str]]]] = {
        # id: (environment, production flag, statuses newest first)
        901: (
            "production",
            None,
            [("success", "10:05"), ("in_progress", "10:01"), ("queued", "10:00")],
        ),
        902: ("production", None, [("success", "11:20"), ("failure", "11:05")]),  # redeployed
        903: ("production", None, [("inactive", "12:30"), ("success", "11:50")]),
        904: ("production", None, [("error", "12:10")]),
        905: ("Production", False, [("success", "12:40")]),  # GitHub: same environment
        906: ("PROD-EU", False, [("success", "12:45")]),  # environment_map key "prod-eu"
        907: ("pr-42", False, [("success", "12:50")]),  # a transient review environment
        908: ("Staging", False, [("success", "12:55")]),
    }
    deployments = []
    for deployment_id, (env, production, _) in sorted(stories.items(), reverse=True):
        item = gh.deployment(
            deployment_id,
            sha=K1,
            environment=env,
            created_at="2024-05-09T09:59:00Z",
            production=production,
        )
        item["creator"] = None  # a deleted account
        item["transient_environment"] = env == "pr-42"
        deployments.append(item)
    replay_server.add(f"/repos/{REPO}/deployments", Reply(200, deployments))

    def statuses(request: RecordedRequest) -> Reply:
        deployment_id = int(request.path.split("/")[-2])
        env, _, story = stories[deployment_id]
        return Reply(
            200,
            [
                gh.deployment_status(
                    deployment_id * 10 + n,
                    state=state,
                    created_at=f"2024-05-09T{at}:00Z",
                    environment=env,
                )
                for n, (state, at) in enumerate(story)
            ],
        )

    for deployment_id in stories:
        replay_server.add_handler(f"/repos/{REPO}/deployments/{deployment_id}/statuses", statuses)
    config = github_config(tmp_path, replay_server, environment_map={"prod-eu": "production"})
    summary = sync(warehouse, config, GitHubSource)
    assert not summary.failed, summary.result("github").errors
    found = {
        int(k.rsplit(":", 1)[1]): (v["environment"], v["status"], iso(v["deployed_at"]))
        for k, v in by_id(warehouse, "deployments").items()
    }
    assert found == {
        901: ("production", "success", "2024-05-09T10:05:00Z"),
        902: ("production", "success", "2024-05-09T11:20:00Z"),
        903: ("production", "success", "2024-05-09T11:50:00Z"),  # not when it was replaced
        904: ("production", "failure", "2024-05-09T12:10:00Z"),
        905: ("production", "success", "2024-05-09T12:40:00Z"),
        906: ("production", "success", "2024-05-09T12:45:00Z"),
        907: ("pr-42", "success", "2024-05-09T12:50:00Z"),
        908: ("Staging", "success", "2024-05-09T12:55:00Z"),
    }


# -- GitLab: statuses, tiers, squash + merge commit, a base URL under a path prefix -------

GL_API = "/gitlab/api/v4/projects/acme%2Fbilling"
GL_PREFIX = gl.PREFIX
G0, G1, G2, SQ, MC = (sha(n) for n in ("G0", "G1", "G2", "SQ", "MC"))


def test_gitlab_statuses_tiers_and_a_squashed_merge_request_under_a_path_prefix(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    """Self-hosted at https://host/gitlab (base_url without /api/v4): every request keeps the
    prefix. `prod-eu` has tier production and is the service's production; `review/x` has
    tier development and stays itself. A merge request squashed *and* merged with a merge
    commit is its merge commit, and the squash commit comes with it."""
    s = replay_server
    s.add(GL_API, Reply(200, {"id": gl.PROJECT_ID, "default_branch": "main"}))
    squashed = gl.merge_request(
        21,
        updated_at="2024-05-03T10:00:01.000Z",
        merged_at="2024-05-03T10:00:00.000Z",
        merge_commit_sha=MC,
        squash_commit_sha=SQ,
        sha=sha("H21"),
    )
    squashed["author"] = None  # a deleted account
    gl.paged(s, f"{GL_API}/merge_requests", [squashed], per_page=100)
    gl.paged(
        s,
        f"{GL_API}/merge_requests/21/commits",
        [gl.commit(sha("H21"), authored="2024-05-02T09:00:00.000+02:00", parents=[])],
        per_page=100,
    )

    def deployment(n: int, status: str, env: str, sha_: str, minute: int) -> dict[str, Any]:
        at = f"2024-05-03T11:{minute:02d}:00.000Z"
        job = gl.job(900 + n, status=status, started_at=at, finished_at=at)
        return gl.deployment(
            13500000 + n, status=status, sha_=sha_, env=env, updated_at=at, job=job
        )

    items = [
        deployment(1, "success", "prod-eu", G1, 1),
        deployment(2, "created", "prod-eu", MC, 2),
        deployment(3, "running", "prod-eu", MC, 3),
        deployment(4, "blocked", "prod-eu", MC, 4),  # waiting for an approval
        deployment(5, "skipped", "prod-eu", MC, 5),
        deployment(6, "canceled", "prod-eu", MC, 6),
        deployment(7, "success", "review/x", MC, 7),
        deployment(8, "success", "prod-eu", MC, 8),
    ]
    gl.paged(s, f"{GL_API}/deployments", items, per_page=100)
    environments = {"prod-eu": "production", "review/x": "development"}
    s.add_handler(
        f"{GL_API}/environments",
        lambda r: Reply(
            200,
            [
                {
                    "id": 5,
                    "name": r.query["name"],
                    "slug": "x",
                    "state": "available",
                    "tier": environments[r.query["name"]],
                }
            ],
            {"x-next-page": ""},
        ),
    )
    gl.paged(s, f"{GL_API}/pipelines", [], per_page=100)
    s.add(
        f"{GL_API}/repository/compare",
        Reply(
            200,
            {
                "commits": [
                    gl.commit(G2, authored="2024-05-02T12:00:00.000Z", parents=[G1]),
                    gl.commit(SQ, authored="2024-05-02T13:00:00.000Z", parents=[G1]),
                    gl.commit(MC, authored="2024-05-03T10:00:00.000Z", parents=[G2, SQ]),
                ],
                "diffs": [],
            },
        ),
        query={"from": G1, "to": MC},
    )
    s.add(f"{GL_API}/repository/commits/{G2}/merge_requests", Reply(200, []))
    config = one_service_config(
        tmp_path,
        "billing",
        "gitlab",
        {"project": gl.PROJECT},
        {"base_url": s.base_url + "/gitlab", "token_env": "TEST_GITLAB_TOKEN"},
    )
    summary = sync(warehouse, config, GitLabSource)
    assert not summary.failed, summary.result("gitlab").errors
    assert all(r.path.startswith("/gitlab/api/v4/") for r in s.requests)
    found = {
        int(k.rsplit(":", 1)[1]) - 13500000: (v["environment"], v["status"])
        for k, v in by_id(warehouse, "deployments").items()
    }
    assert found == {
        1: ("production", "success"),
        6: ("production", "failure"),  # canceled
        7: ("review/x", "success"),
        8: ("production", "success"),
    }  # created, running, blocked and skipped deployed nothing (yet)
    assert [r.query["name"] for r in s.requests_to(f"{GL_API}/environments")] == [
        "prod-eu",
        "review/x",
    ]  # once per name and sync
    change = by_id(warehouse, "changes")[f"{GL_PREFIX}:mr:21"]
    assert (change["sha"], change["author"], iso(change["committed_at"])) == (
        MC,
        "ghost",
        "2024-05-02T07:00:00Z",
    )
    assert links(warehouse) == {
        (f"{GL_PREFIX}:deployment:13500008", f"{GL_PREFIX}:mr:21"),  # SQ came with MC
        (f"{GL_PREFIX}:deployment:13500008", f"{GL_PREFIX}:commit:{G2}"),  # pushed directly
    }


# -- Jenkins: which checkout is the service's ----------------------------------------------


def ledger_repo(tmp_path: Path, commits: int) -> tuple[Repo, list[str]]:
    repo = Repo(tmp_path / "ledger")
    repo.git("remote", "add", "origin", "git@github.com:acme/ledger.git")
    shas = [repo.commit(f"ledger {n}", f"2024-04-30T0{n}:00:00+00:00") for n in range(commits)]
    return repo, shas


def run_sources(engine: Engine, config: PoiseConfig, *names: str) -> None:
    apply_config(engine, config)
    registry = {"git": GitSource, "jenkins": JenkinsSource}
    summary = run_sync(engine, config, registry=registry, hooks=[], sources=list(names))
    assert not summary.failed, [r.errors for r in summary.results]


def test_a_shared_library_whose_url_contains_the_repository_is_not_its_checkout(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    _, shas = ledger_repo(tmp_path, 2)
    library = build(2, result="SUCCESS", sha=None)
    library["actions"] += [
        checkout("f" * 40, "https://github.com/acme/ledger-pipeline-lib.git"),
        checkout(shas[1], "https://github.com/Acme/Ledger"),
    ]
    Jenkins(replay_server, [build(1, result="SUCCESS", sha=shas[0]), library])
    run_sources(warehouse, jenkins_configured(tmp_path, replay_server), "git", "jenkins")
    deployment = by_id(warehouse, "deployments")["jenkins:acme/ledger/main:build:2"]
    assert deployment["sha"] == shas[1]
    assert ("jenkins:acme/ledger/main:build:2", f"git:ledger:{shas[1]}") in links(warehouse)


# -- shipped.py: a clone ahead of what Git stored; a rollback ------------------------------


def test_a_deployment_linked_before_git_stored_its_own_commit_is_linked_to_it_later(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    """Git stores c0, c1; the clone then fetches c2 and Jenkins deploys it: it ships c1
    (known) but not c2 (not a change yet). Once Git stores c2 the deployment ships it."""
    repo, shas = ledger_repo(tmp_path, 2)
    config = jenkins_configured(tmp_path, replay_server)
    run_sources(warehouse, config, "git")
    shas.append(repo.commit("ledger 2", "2024-04-30T02:00:00+00:00"))
    Jenkins(
        replay_server,
        [build(1, result="SUCCESS", sha=shas[0]), build(2, result="SUCCESS", sha=shas[2])],
    )
    run_sources(warehouse, config, "jenkins")
    build_2 = "jenkins:acme/ledger/main:build:2"
    assert {c for d, c in links(warehouse) if d == build_2} == {f"git:ledger:{shas[1]}"}

    run_sources(warehouse, config, "git")
    run_sources(warehouse, config, "jenkins")
    assert {c for d, c in links(warehouse) if d == build_2} == {
        f"git:ledger:{shas[1]}",
        f"git:ledger:{shas[2]}",
    }
    before = snapshot(warehouse)
    run_sources(warehouse, config, "git", "jenkins")
    assert snapshot(warehouse) == before


def test_a_rollback_ships_nothing_and_the_next_deployment_ships_what_it_took_out(
    warehouse: Engine, replay_server: ReplayServer, tmp_path: Path, http_sleeps: list[float]
) -> None:
    """Builds deploy c1, c3, then c2 (a rollback), then c4. Chosen: the rollback ships
    nothing; c4's deployment ships c3 again with c4 (both were missing from production),
    and lead time counts each change's first deployment (metric-definitions.md)."""
    _, c = ledger_repo(tmp_path, 5)
    Jenkins(
        replay_server,
        [
            build(1, result="SUCCESS", sha=c[1]),
            build(2, result="SUCCESS", sha=c[3]),
            build(3, result="SUCCESS", sha=c[2]),
            build(4, result="SUCCESS", sha=c[3]),  # the same sha as build 2, redeployed
            build(5, result="SUCCESS", sha=c[4]),
        ],
    )
    run_sources(warehouse, jenkins_configured(tmp_path, replay_server), "git", "jenkins")
    shipped: dict[int, set[int]] = {}
    for deployment, change in links(warehouse):
        number = int(deployment.rsplit(":", 1)[1])
        shipped.setdefault(number, set()).add(c.index(change.removeprefix("git:ledger:")))
    assert shipped == {1: {1}, 2: {2, 3}, 4: {3}, 5: {4}}  # 3, the rollback: nothing

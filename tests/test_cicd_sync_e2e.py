"""End to end: `poise sync` against a local Git repository and GitHub-, GitLab- and
Jenkins-shaped replay servers, then `poise metrics --format json` gives the delivery
figures the stories imply; a second `poise sync` adds nothing.

The stories are the collector tests' own (tests/test_github_collector.py,
tests/test_gitlab_collector.py, tests/test_jenkins_collector.py); the expected lead
times below are worked out by hand from their timestamps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import test_github_collector as github_story
import test_gitlab_collector as gitlab_story
import yaml
from collector_checks import assert_secret_absent, snapshot
from replay import ReplayServer
from sqlalchemy import Engine
from test_git_collector import Repo
from test_jenkins_collector import Jenkins, build

from poise.cli import main
from poise.warehouse import open_warehouse

TOKENS = {
    "E2E_GITHUB_TOKEN": "ghp_E2eGitHubT0kenNeverShown0000",
    "E2E_GITLAB_TOKEN": "glpat-E2eGitLabT0kenNeverShown",
    "E2E_JENKINS_TOKEN": "11e2eJenkinsT0kenNeverShown",
    "E2E_JENKINS_USER": "ci-bot",
}
HOURS = 3600.0

# change -> hours from its commit (first commit of its PR/MR) to its first production deployment
LEAD_TIMES = {
    # checkout (GitHub): PR #10, PR #11, the direct push D1, PR #14 (rebase-merged)
    "pr10": 50 + 50 / 60,  # 04-29 08:00 -> deployment 1001 at 05-01 10:50
    "pr11": 24 + 50 / 60,  # 05-01 11:30 -> 1002 at 05-02 12:20
    "d1": 1 + 20 / 60,  # 05-02 11:00 -> 1002
    "pr14": 19.75,  # 05-02 14:00 -> 1003 at 05-03 09:45
    # billing (GitLab): !17, !18 (squash), D2 (direct), !19 (fast-forward)
    "mr17": (26 * 3600 + 22 * 60 + 47.64) / HOURS,  # 05-02 07:55Z -> 05-03 10:17:47.640
    "mr18": (3 * 3600 + 4 * 60 + 59) / HOURS,  # 05-03 11:00 -> 14:04:59
    "d2": (2 * 3600 + 24 * 60 + 59) / HOURS,  # 11:40Z (13:40+02:00) -> 14:04:59
    "mr19": (2 * 3600 + 19 * 60 + 59) / HOURS,  # 11:45 -> 14:04:59
    # ledger (Git + Jenkins): c1..c4, committed 04-30 01:00..04:00, deployed by builds 1, 3, 4, 5
    "c1": (23 * 3600 + 11 * 60 + 35) / HOURS,
    "c2": (22 * 3600 + 31 * 60 + 35) / HOURS,
    "c3": (21 * 3600 + 41 * 60 + 35) / HOURS,
    "c4": (20 * 3600 + 51 * 60 + 35) / HOURS,
}


@pytest.fixture
def world(
    tmp_path: Path,
    replay_server: ReplayServer,
    http_sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The three stories on one loopback server, a Git clone, and the poise.yaml naming them."""
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    checkout = github_story.Story(replay_server)
    checkout.deploy_1003_finished = True
    checkout.serve()
    billing = gitlab_story.Story(replay_server)
    billing.deploy_90_finished = True
    billing.serve()
    ledger = Repo(tmp_path / "ledger")
    ledger.git("remote", "add", "origin", "git@github.com:acme/ledger.git")
    shas = [ledger.commit(f"ledger {n}", f"2024-04-30T0{n}:00:00+00:00") for n in range(1, 5)]
    Jenkins(
        replay_server,
        [
            build(1, result="SUCCESS", sha=shas[0]),
            build(2, result="FAILURE", sha=shas[1]),
            build(3, result="SUCCESS", sha=shas[1]),
            build(4, result="SUCCESS", sha=shas[2], library=True),
            build(5, result="SUCCESS", sha=shas[3]),
        ],
    )
    base = replay_server.base_url
    config = {
        "teams": [{"name": "payments"}, {"name": "finance"}],
        "services": [
            {
                "name": "checkout",
                "team": "payments",
                "github": {
                    "repo": "acme/checkout",
                    "environment_map": {"stage": "staging"},
                    "incident_label": "incident",
                },
            },
            {
                "name": "billing",
                "team": "finance",
                "gitlab": {"project": "acme/billing", "environment_map": {"stage": "staging"}},
            },
            {
                "name": "ledger",
                "team": "finance",
                "git": {"path": "ledger"},
                "jenkins": {"job": "acme/ledger/main"},
            },
        ],
        "sources": {
            "github": {"base_url": base, "token_env": "E2E_GITHUB_TOKEN"},
            "gitlab": {"base_url": base + "/api/v4", "token_env": "E2E_GITLAB_TOKEN"},
            "jenkins": {
                "base_url": base,
                "token_env": "E2E_JENKINS_TOKEN",
                "user_env": "E2E_JENKINS_USER",
            },
        },
    }
    path = tmp_path / "poise.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def poise(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def synced(where: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """`poise sync`'s standard output, once it succeeded."""
    code, out, err = poise("sync", *where, capsys=capsys)
    assert code == 0, err
    return out


def edit_config(world: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    """poise.yaml changed by `edit`, as its owner would."""
    config = yaml.safe_load(world.read_text(encoding="utf-8"))
    edit(config)
    world.write_text(yaml.safe_dump(config), encoding="utf-8")


def dora_of_spring(where: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`poise metrics --format json`'s DORA figures for April and May 2024."""
    period = ["--from", "2024-04-01", "--to", "2024-06-01"]
    code, out, err = poise("metrics", *where, *period, "--format", "json", capsys=capsys)
    assert code == 0, err
    return dict(json.loads(out)["dora"])


def test_poise_sync_then_metrics_gives_the_delivery_figures_and_a_second_sync_adds_nothing(
    world: Path, warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--db", warehouse_url, "--config", str(world)]
    code, out, err = poise("sync", *where, capsys=capsys)
    assert code == 0, err
    for name in ("git", "github", "gitlab", "jenkins"):
        assert name in out

    dora = dora_of_spring(where, capsys)
    assert dora["deployment_frequency"]["deployments"] == 3 + 2 + 4
    lead = pd.Series(list(LEAD_TIMES.values()))
    assert dora["lead_time"]["changes"] == len(LEAD_TIMES)
    assert dora["lead_time"]["median_hours"] == pytest.approx(lead.quantile(0.5), abs=1e-3)
    assert dora["lead_time"]["p90_hours"] == pytest.approx(lead.quantile(0.9), abs=1e-3)
    # Both incident issues of checkout start within 24 h after deployment 1002.
    failure = dora["change_failure_rate"]
    assert (failure["failed"], failure["deployments"]) == (1, 9)

    engine = open_warehouse(warehouse_url)
    before = snapshot(engine)
    code, out, err = poise("sync", *where, capsys=capsys)
    assert code == 0, err
    assert snapshot(engine) == before
    lines = [
        line
        for line in out.splitlines()
        if any(s in line for s in ("github", "gitlab", "jenkins", " git "))
    ]
    assert lines and all(_new_column(line) == "0" for line in lines), out
    _no_secret_anywhere(engine, out + err)
    engine.dispose()


def _new_column(line: str) -> str:
    cells = [cell.strip() for cell in line.replace("│", "|").split("|") if cell.strip()]
    return cells[3] if len(cells) > 3 else "?"


def _no_secret_anywhere(engine: Engine, text: str) -> None:
    for value in TOKENS.values():
        if value != "ci-bot":
            assert_secret_absent(value, engine, text)


def test_a_changed_deploy_setting_is_said_under_the_summary_and_the_figures_follow_it(
    world: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Moving ledger's Jenkins job to staging takes its four deployments out of the figures
    at the next plain sync, and the person who changed the config reads why it re-read."""
    where = ["--db", sqlite_url, "--config", str(world)]
    synced(where, capsys)
    edit_config(
        world, lambda config: config["services"][2]["jenkins"].update(environment="staging")
    )

    assert (
        "jenkins: ledger: deploy settings changed (environment) since the last sync; "
        "reading the builds again"
    ) in synced(where, capsys)
    assert dora_of_spring(where, capsys)["deployment_frequency"]["deployments"] == 3 + 2
    # said once: nothing changed since
    assert "deploy settings changed" not in synced(where, capsys)


def test_a_renamed_repository_is_said_under_the_summary_and_counted_once(
    world: Path,
    sqlite_url: str,
    replay_server: ReplayServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GitHub renamed acme/checkout to acme/checkout-web (same id, same history) and
    poise.yaml follows: the next plain sync reads it again from its start and removes the
    rows of the old name, so its deployments and changes are counted once, not twice."""
    where = ["--db", sqlite_url, "--config", str(world)]
    synced(where, capsys)
    before = dora_of_spring(where, capsys)
    renamed = github_story.Story(replay_server, "acme/checkout-web")
    renamed.deploy_1003_finished = True
    renamed.serve()
    edit_config(world, lambda config: config["services"][0]["github"].update(repo=renamed.repo))

    assert (
        "github: checkout: repo changed (acme/checkout → acme/checkout-web) since the last "
        "sync; reading every stream again, as on a first sync, and removing the rows read "
        "from acme/checkout once that is done"
    ) in synced(where, capsys)
    after = dora_of_spring(where, capsys)
    assert after["deployment_frequency"] == before["deployment_frequency"]
    assert after["lead_time"] == before["lead_time"]
    assert "repo changed" not in synced(where, capsys)  # said once: nothing changed since

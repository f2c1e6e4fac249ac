"""The Local Git collector against every rule of metric-definitions.md that concerns git.

Each test builds a real repository in a temp folder, syncs it, and checks the stored rows
and the figures of `poise metrics --format json` against values worked out by hand from
the contract ("From a local Git repository", "Change lead time", "Rework rate", periods
half-open, times UTC). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from test_git_collector import Repo, changes, deployments, make_config, sync

from collectors.base import Scope, SyncContext, upsert_canonical
from collectors.jenkins import GitRangeResolver
from collectors.shipped import link_deployments
from metrics.derived import refresh_derived
from metrics.model import Settings
from poise.catalog import apply_config
from poise.cli import main
from poise.config import load_config
from poise.warehouse import open_warehouse


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def write_config(tmp_path: Path, services: list[dict[str, Any]]) -> Path:
    """A poise.yaml (JSON is YAML) with one team owning `services`."""
    path = tmp_path / "poise.yaml"
    document = {
        "teams": [{"name": "payments"}],
        "services": [{"team": "payments", **service} for service in services],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def poise_sync(url: str, config: Path, *extra: str) -> None:
    assert main(["sync", "--db", url, "--config", str(config), *extra]) == 0


def figures(
    capsys: pytest.CaptureFixture[str],
    url: str,
    config: Path,
    start: str,
    end: str,
    *extra: str,
) -> dict[str, Any]:
    """The JSON of `poise metrics` over [start, end)."""
    capsys.readouterr()
    argv = ["metrics", "--db", url, "--config", str(config), "--from", start, "--to", end]
    code = main([*argv, "--format", "json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document: dict[str, Any] = json.loads(captured.out)
    return document


def shipped(engine: Engine) -> dict[str, set[str]]:
    """Tag name -> the shas of the changes its deployment shipped."""
    return {
        key.rsplit(":", 1)[1]: row["shipped"]
        for key, row in deployments(engine).items()
        if ":tag:" in key
    }


@pytest.fixture
def utc_is_not_local() -> Iterator[None]:
    """The process (and every git it starts) in Kathmandu, +05:45: nothing may depend on it."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kathmandu"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


# -- changes ---------------------------------------------------------------------------


def test_every_non_merge_commit_reachable_from_the_branch_is_a_change_at_its_author_time(
    warehouse: Engine, tmp_path: Path, utc_is_not_local: None
) -> None:
    """Merges (two parents, an octopus, an unrelated history's) are not changes; what they
    bring is. Commits on branches not merged are not. committed_at is the author time,
    stored in UTC whatever the author's offset or the machine's zone."""
    repo = Repo(tmp_path / "svc")
    root = repo.commit("root", "2024-03-01T09:00:00+05:45")  # 03:15 UTC
    repo.git("checkout", "-q", "-b", "feature")
    feature = repo.commit("feature", "2024-03-02T10:00:00-03:30")  # 13:30 UTC
    repo.git("checkout", "-q", "main")
    direct = repo.commit("direct", "2024-03-03T00:00:00+00:00")
    repo.git(
        "merge", "-q", "--no-ff", "-m", "Merge feature", "feature", when="2024-03-04T00:00:00+00:00"
    )
    merge = repo.head()
    for branch in ("left", "right"):
        repo.git("checkout", "-q", "-b", branch, merge)
        repo.commit(branch, "2024-03-05T00:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.git(
        "merge", "-q", "--no-ff", "-m", "Octopus", "left", "right", when="2024-03-05T12:00:00+00:00"
    )
    octopus = repo.head()
    assert len(repo.git("log", "-1", "--format=%P").split()) == 3
    repo.git("checkout", "-q", "--orphan", "vendor")
    repo.git("rm", "-rqf", ".")
    vendored = repo.commit("vendored", "2024-03-06T00:00:00+00:00", path="vendor/lib.txt")
    repo.git("checkout", "-q", "main")
    repo.git(
        "merge",
        "-q",
        "--no-ff",
        "--allow-unrelated-histories",
        "-m",
        "Vendor",
        "vendor",
        when="2024-03-06T06:00:00+00:00",
    )
    unrelated_merge = repo.head()
    # a cherry-pick or a rebase keeps the author time and moves the committer time
    picked = repo.commit(
        "picked", "2024-03-07T00:00:00+00:00", author_when="2024-03-06T12:00:00+01:00"
    )
    # a squash merge is one ordinary commit: one change, at its own author time; the
    # squashed branch's commits are not on the branch
    repo.git("checkout", "-q", "-b", "squashed")
    squashed = [repo.commit(f"s{n}", f"2024-03-07T0{n}:00:00+00:00") for n in (1, 2)]
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--squash", "squashed")
    repo.git("commit", "-q", "-m", "Squash s1+s2", when="2024-03-07T10:00:00+00:00")
    squash = repo.head()
    repo.git("checkout", "-q", "-b", "wip")
    unmerged = repo.commit("wip", "2024-03-08T00:00:00+00:00")
    repo.git("checkout", "-q", "main")

    config = make_config(tmp_path, [{"name": "svc", "git": {"path": "svc"}}])
    assert not sync(warehouse, config).failed
    found = changes(warehouse)
    left, right = (repo.head(branch) for branch in ("left", "right"))
    assert set(found) == {root, feature, direct, left, right, vendored, picked, squash}
    assert not {merge, octopus, unrelated_merge, unmerged, *squashed} & set(found)
    assert {sha: row["committed_at"] for sha, row in found.items()} == {
        root: at("2024-03-01T03:15:00+00:00"),
        feature: at("2024-03-02T13:30:00+00:00"),
        direct: at("2024-03-03T00:00:00+00:00"),
        left: at("2024-03-05T00:00:00+00:00"),
        right: at("2024-03-05T00:00:00+00:00"),
        vendored: at("2024-03-06T00:00:00+00:00"),
        picked: at("2024-03-06T11:00:00+00:00"),  # the author's time, not the pick's
        squash: at("2024-03-07T10:00:00+00:00"),
    }
    assert all(row["committed_at"].utcoffset() == timedelta(0) for row in found.values())
    assert {row["id"] for row in found.values()} == {f"git:svc:{sha}" for sha in found}
    assert {row["service"] for row in found.values()} == {"svc"}


# -- deployments from tags -------------------------------------------------------------


def test_a_deploy_tag_merged_into_the_branch_is_a_successful_production_deployment_at_its_time(
    warehouse_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    utc_is_not_local: None,
) -> None:
    """Annotated: the tagger date; lightweight: the commit's committer date (not its
    author date). Only tags matching deploy_tags and merged into the branch; a tag on a
    side branch counts once the branch is merged. The environment is the service's
    production environment."""
    repo = Repo(tmp_path / "svc")
    c1 = repo.commit("c1", "2024-04-01T10:00:00+00:00")
    repo.tag("v1", "2024-04-02T09:00:00+09:00")  # annotated: 04-02 00:00 UTC
    c2 = repo.commit(
        "c2", "2024-04-03T12:00:00-07:00", author_when="2024-04-03T08:00:00+00:00"
    )  # committed 04-03 19:00 UTC
    repo.tag("v2", "", annotated=False)  # lightweight: at c2's committer date, 19:00
    repo.tag("nightly-2", "2024-04-03T20:00:00+00:00")  # does not match v*
    repo.git("checkout", "-q", "-b", "side")
    s1 = repo.commit("s1", "2024-04-04T00:00:00+00:00")
    repo.tag("v3", "2024-04-05T00:00:00+00:00")  # on a branch not merged yet
    repo.git("checkout", "-q", "main")
    c3 = repo.commit("c3", "2024-04-04T06:00:00+00:00")
    config = write_config(
        tmp_path,
        [
            {
                "name": "svc",
                "production_environment": "live",
                "git": {"path": "svc", "deploy_tags": "v*"},
            }
        ],
    )
    poise_sync(warehouse_url, config)
    engine = open_warehouse(warehouse_url)
    try:
        found = deployments(engine)
        assert set(found) == {"git:svc:tag:v1", "git:svc:tag:v2"}
        v1, v2 = found["git:svc:tag:v1"], found["git:svc:tag:v2"]
        assert v1["deployed_at"] == at("2024-04-02T00:00:00+00:00")
        assert v2["deployed_at"] == at("2024-04-03T19:00:00+00:00")
        for row, sha, tag in ((v1, c1, "v1"), (v2, c2, "v2")):
            assert (row["environment"], row["status"], row["sha"]) == ("live", "success", sha)
            assert (row["source"], row["source_id"], row["service"]) == ("git", tag, "svc")
            assert row["deployed_at"].utcoffset() == timedelta(0)
        assert (v1["shipped"], v2["shipped"]) == ({c1}, {c2})

        repo.git(
            "merge", "-q", "--no-ff", "-m", "Merge side", "side", when="2024-04-06T00:00:00+00:00"
        )
        poise_sync(warehouse_url, config)
        v3 = deployments(engine)["git:svc:tag:v3"]
        assert (v3["deployed_at"], v3["sha"], v3["shipped"]) == (
            at("2024-04-05T00:00:00+00:00"),
            s1,
            {s1},
        )
        assert c3 in changes(engine) and len(deployments(engine)) == 3
    finally:
        engine.dispose()

    doc = figures(capsys, warehouse_url, config, "2024-04-01", "2024-04-08")
    assert doc["period"] == {"from": "2024-04-01T00:00:00Z", "to": "2024-04-08T00:00:00Z"}
    frequency = doc["dora"]["deployment_frequency"]
    assert (frequency["deployments"], frequency["per_week"]) == (3, 3.0)


def test_a_tag_ships_the_changes_it_contains_that_no_earlier_tag_contains(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Built up over several incremental syncs, and the same read in one go and again
    with --full. "Earlier" is the tag's time, not its place in the graph; two tags at the
    same moment are not earlier than one another, so both ship what they contain."""
    repo = Repo(tmp_path / "svc")
    config = make_config(tmp_path, [{"name": "svc", "git": {"path": "svc", "deploy_tags": "v*"}}])
    sha: dict[str, str] = {}
    sha["c1"] = repo.commit("c1", "2024-01-01T00:00:00+00:00")
    repo.tag("v1", "2024-01-02T00:00:00+00:00")
    sha["c2"] = repo.commit("c2", "2024-01-03T00:00:00+00:00")
    sha["c3"] = repo.commit("c3", "2024-01-04T00:00:00+00:00")
    repo.tag("v2", "2024-01-05T00:00:00+00:00")
    repo.tag("v3", "2024-01-06T00:00:00+00:00", ref=sha["c1"])  # redeploys what v1 shipped
    assert not sync(warehouse, config).failed
    # a side branch tagged before it is merged, a commit on main, the merge, a tag on it
    repo.git("checkout", "-q", "-b", "side")
    sha["s1"] = repo.commit("s1", "2024-01-07T00:00:00+00:00")
    repo.tag("v4", "2024-01-08T00:00:00+00:00")
    repo.git("checkout", "-q", "main")
    sha["c4"] = repo.commit("c4", "2024-01-09T00:00:00+00:00")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge side", "side", when="2024-01-10T00:00:00+00:00")
    repo.tag("v5", "2024-01-11T00:00:00+00:00")
    assert not sync(warehouse, config).failed
    # the later tag is on the older commit: the earlier one, on its child, shipped it
    sha["c5"] = repo.commit("c5", "2024-01-12T00:00:00+00:00")
    sha["c6"] = repo.commit("c6", "2024-01-13T00:00:00+00:00")
    repo.tag("v7", "2024-01-14T00:00:00+00:00")
    repo.tag("v6", "2024-01-15T00:00:00+00:00", ref=sha["c5"])
    assert not sync(warehouse, config).failed
    # two lightweight tags on one commit: one moment (its committer date), synced apart
    sha["c7"] = repo.commit("c7", "2024-01-16T00:00:00+00:00")
    repo.tag("v8", "", annotated=False)
    assert not sync(warehouse, config).failed
    repo.tag("v8.0", "", annotated=False)
    assert not sync(warehouse, config).failed

    expected = {
        "v1": {sha["c1"]},
        "v2": {sha["c2"], sha["c3"]},
        "v3": set(),
        "v4": {sha["s1"]},
        "v5": {sha["c4"]},  # s1 came with v4, earlier; the merge is no change
        "v6": set(),
        "v7": {sha["c5"], sha["c6"]},
        "v8": {sha["c7"]},
        "v8.0": {sha["c7"]},
    }
    assert shipped(warehouse) == expected
    assert deployments(warehouse)["git:svc:tag:v8.0"]["deployed_at"] == at(
        "2024-01-16T00:00:00+00:00"
    )
    assert not sync(warehouse, config, full=True).failed
    assert shipped(warehouse) == expected
    fresh = open_warehouse(f"sqlite:///{tmp_path / 'one-go.db'}")
    try:
        assert not sync(fresh, config).failed
        assert shipped(fresh) == expected
    finally:
        fresh.dispose()


# -- the figures -------------------------------------------------------------------------


def lead_time_history(tmp_path: Path) -> Path:
    """One service's March 2024; the lead times, in hours, are worked out beside each."""
    repo = Repo(tmp_path / "svc")
    repo.commit("z", "2024-02-28T00:00:00+00:00")
    repo.tag("v0", "2024-03-01T00:00:00+00:00")  # at `from`: in the period; z 48 h
    repo.commit("a", "2024-03-01T00:00:00+00:00")  # 12 h
    repo.commit("b", "2024-03-01T06:00:00+00:00")  # 6 h
    repo.tag("v1", "2024-03-01T12:00:00+00:00")
    repo.commit("c", "2024-03-02T00:00:00+00:00")  # 18 h
    # the author's clock 12 h ahead of the committer's: -6 h, left out and counted
    repo.commit("d", "2024-03-02T12:00:00+00:00", author_when="2024-03-03T00:00:00+00:00")
    repo.tag("v2", "2024-03-02T18:00:00+00:00")
    repo.commit("e", "2024-03-03T00:00:00+00:00")  # tagged the same second: 0 h, left out
    repo.tag("v3", "2024-03-03T00:00:00+00:00")
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("g", "2024-03-03T12:00:00+00:00", author_when="2024-03-02T00:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.commit("f", "2024-03-04T00:00:00+00:00")  # 48 h
    repo.git(
        "merge", "-q", "--no-ff", "-m", "Merge feature", "feature", when="2024-03-05T00:00:00+00:00"
    )
    repo.tag("v4", "2024-03-06T00:00:00+00:00")  # g: 96 h, from its author time
    repo.commit("h", "2024-03-07T00:00:00+00:00")  # 24 h, in the next period
    repo.tag("v5", "2024-03-08T00:00:00+00:00")  # at `to`: not in [03-01, 03-08)
    return write_config(tmp_path, [{"name": "svc", "git": {"path": "svc", "deploy_tags": "v*"}}])


def test_lead_time_frequency_and_rework_from_tags_are_the_contracts_figures(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same figures read from the rows themselves and from the derived table."""
    config = lead_time_history(tmp_path)
    engine = open_warehouse(warehouse_url)
    try:
        assert not sync(engine, load_config(str(config))).failed  # no hook: stale
        stale = figures(capsys, warehouse_url, config, "2024-03-01", "2024-03-08")
        refresh_derived(engine, Settings())
    finally:
        engine.dispose()
    doc = figures(capsys, warehouse_url, config, "2024-03-01", "2024-03-08")
    assert stale["dora"] == doc["dora"] and stale["data_quality"] == doc["data_quality"]
    dora = doc["dora"]
    # v0, v1, v2, v3, v4 in [03-01, 03-08); v5 at 03-08 is the next period's
    assert dora["deployment_frequency"]["deployments"] == 5
    assert dora["deployment_frequency"]["per_week"] == 5.0
    # 6, 12, 18, 48, 48, 96 h: median (18 + 48) / 2; p90 at rank 4.5: 48 + 0.5 × 48
    lead = dora["lead_time"]
    assert (lead["median_hours"], lead["p90_hours"], lead["changes"]) == (33.0, 72.0, 6)
    assert lead["excluded_nonpositive"] == 2  # d (-6 h) and e (0 h)
    assert lead["tier"] == "high"  # under a week, from 6 changes
    assert doc["data_quality"]["lead_time_nonpositive"] == 2
    assert doc["data_quality"]["changes_never_deployed"] == 0
    # tags name no deployment in rollback_of / remediation_of, and no incident is on record
    assert dora["rework_rate"] == {"rate": 0.0, "rework": 0, "deployments": 5}
    assert dora["change_failure_rate"]["rate"] == 0.0
    assert dora["change_failure_rate"]["deployments"] == 5

    after = figures(capsys, warehouse_url, config, "2024-03-08", "2024-03-09")["dora"]
    assert after["deployment_frequency"]["deployments"] == 1
    assert after["deployment_frequency"]["per_week"] == 7.0
    assert (after["lead_time"]["median_hours"], after["lead_time"]["changes"]) == (24.0, 1)
    assert after["lead_time"]["p90_hours"] == 24.0
    assert after["rework_rate"] == {"rate": 0.0, "rework": 0, "deployments": 1}

    empty = figures(capsys, warehouse_url, config, "2024-04-01", "2024-04-08")["dora"]
    assert empty["deployment_frequency"]["deployments"] == 0
    assert (empty["lead_time"]["median_hours"], empty["lead_time"]["p90_hours"]) == (None, None)
    assert empty["lead_time"]["changes"] == 0
    assert empty["rework_rate"]["rate"] is None  # no deployment: no rate, not 0


def test_an_author_clock_ahead_is_kept_and_its_lead_time_is_a_data_quality_finding(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A future author time is stored as it is, the tag still ships the commit, and the
    lead time (negative) is left out and counted; an old author time (work rebased much
    later) counts in full."""
    repo = Repo(tmp_path / "svc")
    ahead = repo.commit("ahead", "2024-05-01T00:00:00+00:00", author_when="2031-01-01T00:00:00Z")
    old = repo.commit("old", "2024-05-01T01:00:00+00:00", author_when="2024-04-01T02:00:00Z")
    repo.tag("v1", "2024-05-01T02:00:00+00:00")
    config = write_config(tmp_path, [{"name": "svc", "git": {"path": "svc", "deploy_tags": "v*"}}])
    poise_sync(warehouse_url, config)
    engine = open_warehouse(warehouse_url)
    try:
        assert changes(engine)[ahead]["committed_at"] == at("2031-01-01T00:00:00+00:00")
        assert deployments(engine)["git:svc:tag:v1"]["shipped"] == {ahead, old}
    finally:
        engine.dispose()
    doc = figures(capsys, warehouse_url, config, "2024-05-01", "2024-05-02")
    lead = doc["dora"]["lead_time"]
    assert (lead["median_hours"], lead["changes"], lead["excluded_nonpositive"]) == (720.0, 1, 1)
    assert doc["data_quality"]["lead_time_nonpositive"] == 1


def test_an_incident_after_a_tag_is_attributed_to_it_by_inference(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tag deployments are production deployments: the latest within 24 h before an
    incident of the service is blamed, and recovery runs to its resolution."""
    repo = Repo(tmp_path / "svc")
    for day in (1, 2, 3, 4, 5):
        repo.commit(f"c{day}", f"2024-06-0{day}T00:00:00+00:00")
        repo.tag(f"v{day}", f"2024-06-0{day}T06:00:00+00:00")
    config = write_config(tmp_path, [{"name": "svc", "git": {"path": "svc", "deploy_tags": "v*"}}])
    poise_sync(warehouse_url, config)
    incident = {
        "id": "INC-1",
        "service": "svc",
        "severity": "SEV2",
        "started_at": "2024-06-03T08:00:00Z",  # 2 h after v3
        "detected_at": "2024-06-03T08:05:00Z",
        "acknowledged_at": "2024-06-03T08:10:00Z",
        "resolved_at": "2024-06-03T11:00:00Z",
    }
    incidents = tmp_path / "incidents.jsonl"
    incidents.write_text(json.dumps(incident) + "\n", encoding="utf-8")
    argv = ["import", "--kind", "incidents", str(incidents), "--db", warehouse_url]
    assert main([*argv, "--config", str(config)]) == 0
    dora = figures(capsys, warehouse_url, config, "2024-06-01", "2024-06-08")["dora"]
    assert dora["change_failure_rate"]["failed"] == 1
    assert dora["change_failure_rate"]["rate"] == 0.2  # 1 of 5 tags
    assert (dora["recovery_time"]["median_hours"], dora["recovery_time"]["failures"]) == (5.0, 1)
    assert dora["rework_rate"] == {"rate": 0.0, "rework": 0, "deployments": 5}


# -- monorepo paths, and settings changed after a first sync ------------------------------


def test_monorepo_paths_scope_changes_shipments_and_lead_times(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo(tmp_path / "mono")
    api = repo.commit("api", "2024-02-01T00:00:00+00:00", path="services/api/a.py")
    web = repo.commit("web", "2024-02-01T02:00:00+00:00", path="services/web/w.py")
    repo.tag("api-v1", "2024-02-01T12:00:00+00:00")  # api: 12 h
    repo.tag("web-v1", "2024-02-01T06:00:00+00:00")  # web: 4 h
    (repo.path / "services/api/b.py").write_text("b\n")
    (repo.path / "services/web/b.py").write_text("b\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "both", when="2024-02-02T00:00:00+00:00")
    both = repo.head()
    repo.git("checkout", "-q", "-b", "feature")
    feature = repo.commit("feature", "2024-02-02T06:00:00+00:00", path="services/api/f.py")
    repo.git("checkout", "-q", "main")
    readme = repo.commit("readme", "2024-02-02T08:00:00+00:00", path="README.md")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge", "feature", when="2024-02-02T10:00:00+00:00")
    repo.tag("api-v2", "2024-02-03T00:00:00+00:00")  # both: 24 h, feature: 18 h
    repo.tag("web-v2", "2024-02-04T00:00:00+00:00")  # both: 48 h
    services = [
        {
            "name": "api",
            "git": {"path": "mono", "deploy_tags": "api-v*", "paths": ["services/api"]},
        },
        {
            "name": "web",
            "git": {"path": "mono", "deploy_tags": "web-v*", "paths": ["services/web"]},
        },
    ]
    config = write_config(tmp_path, services)
    poise_sync(warehouse_url, config)
    engine = open_warehouse(warehouse_url)
    try:
        assert set(changes(engine, "api")) == {api, both, feature}
        assert set(changes(engine, "web")) == {web, both}
        assert readme not in changes(engine)
        assert changes(engine, "api")[both]["id"] == f"git:api:{both}"
        assert shipped(engine) == {
            "api-v1": {api},
            "api-v2": {both, feature},
            "web-v1": {web},
            "web-v2": {both},
        }
    finally:
        engine.dispose()
    period = ("2024-02-01", "2024-02-08")
    api_lead = figures(capsys, warehouse_url, config, *period, "--service", "api")["dora"]
    assert (api_lead["lead_time"]["median_hours"], api_lead["lead_time"]["changes"]) == (18.0, 3)
    web_lead = figures(capsys, warehouse_url, config, *period, "--service", "web")["dora"]
    assert (web_lead["lead_time"]["median_hours"], web_lead["lead_time"]["changes"]) == (26.0, 2)


def test_paths_and_the_production_environment_changed_after_a_sync_apply_at_the_next(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing new in the clone, but the service's settings say other rows are its
    changes and other deployments its production ones: the next sync reads it again."""
    repo = Repo(tmp_path / "mono")
    api = repo.commit("api", "2024-02-01T00:00:00+00:00", path="services/api/a.py")
    repo.commit("web", "2024-02-01T06:00:00+00:00", path="services/web/w.py")
    repo.tag("v1", "2024-02-01T12:00:00+00:00")
    config = write_config(tmp_path, [{"name": "api", "git": {"path": "mono", "deploy_tags": "v*"}}])
    poise_sync(warehouse_url, config)
    before = figures(capsys, warehouse_url, config, "2024-02-01", "2024-02-02")["dora"]
    assert before["lead_time"]["changes"] == 2
    config = write_config(
        tmp_path,
        [
            {
                "name": "api",
                "production_environment": "prod",
                "git": {"path": "mono", "deploy_tags": "v*", "paths": ["services/api"]},
            }
        ],
    )
    poise_sync(warehouse_url, config)
    engine = open_warehouse(warehouse_url)
    try:
        assert set(changes(engine)) == {api}
        assert deployments(engine)["git:api:tag:v1"]["environment"] == "prod"
    finally:
        engine.dispose()
    dora = figures(capsys, warehouse_url, config, "2024-02-01", "2024-02-02")["dora"]
    assert dora["deployment_frequency"]["deployments"] == 1
    assert (dora["lead_time"]["median_hours"], dora["lead_time"]["changes"]) == (12.0, 1)


def test_a_github_block_added_later_takes_the_changes_away_from_git(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """One source of changes per service: once a github block names the repository, the
    commits stored from the clone would be counted beside its pull requests."""
    repo = Repo(tmp_path / "svc")
    repo.commit("c1", "2024-02-01T00:00:00+00:00")
    config = make_config(tmp_path, [{"name": "svc", "git": {"path": "svc"}}])
    assert not sync(sqlite_warehouse, config).failed
    assert len(changes(sqlite_warehouse)) == 1
    config = make_config(
        tmp_path, [{"name": "svc", "git": {"path": "svc"}, "github": {"repo": "acme/svc"}}]
    )
    assert not sync(sqlite_warehouse, config).failed
    assert changes(sqlite_warehouse) == {}


def test_a_github_block_that_collects_no_deployments_leaves_them_to_the_tags(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """ "Where no CI/CD source gives the deployments": a github block for pull requests only
    (`use_deployments_api: false`, no workflow, no releases) gives none, and turned the
    tags off all the same, leaving the service without a single deployment."""
    repo = Repo(tmp_path / "svc")
    repo.commit("c1", "2024-02-01T00:00:00+00:00")
    repo.tag("v1", "2024-02-02T00:00:00+00:00")
    git = {"path": "svc", "deploy_tags": "v*"}
    pulls_only = {"repo": "acme/svc", "use_deployments_api": False}
    config = make_config(tmp_path, [{"name": "svc", "git": git, "github": pulls_only}])
    assert not sync(sqlite_warehouse, config).failed
    assert list(deployments(sqlite_warehouse)) == ["git:svc:tag:v1"]
    # a block that does collect them (its Deployments, by default) takes them over
    collecting = {"repo": "acme/svc"}
    config = make_config(tmp_path, [{"name": "svc", "git": git, "github": collecting}])
    assert not sync(sqlite_warehouse, config).failed
    assert deployments(sqlite_warehouse) == {}


# -- CI/CD deployments linked through the clone (collectors/shipped.py) ------------------


def test_a_ci_cd_deployment_ships_what_its_sha_reaches_and_the_previous_ones_does_not(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """Jenkins deploys, Git owns the changes: `git rev-list previous..sha` in the clone.
    A merge brings its branch's commits (the merge itself is no change), a redeploy ships
    nothing, a failed deployment ships nothing and is not the next one's predecessor, and
    the service's first deployment (no predecessor) ships only its own commit."""
    repo = Repo(tmp_path / "svc")
    sha: dict[str, str] = {}
    sha["c0"] = repo.commit("c0", "2024-05-01T00:00:00+00:00")
    sha["c1"] = repo.commit("c1", "2024-05-01T01:00:00+00:00")
    repo.git("checkout", "-q", "-b", "feature")
    sha["f1"] = repo.commit("f1", "2024-05-01T02:00:00+00:00")
    sha["f2"] = repo.commit("f2", "2024-05-01T03:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge", "feature", when="2024-05-01T04:00:00+00:00")
    sha["m"] = repo.head()
    sha["c2"] = repo.commit("c2", "2024-05-01T05:00:00+00:00")
    sha["c3"] = repo.commit("c3", "2024-05-01T06:00:00+00:00")
    config = make_config(
        tmp_path, [{"name": "svc", "git": {"path": "svc"}, "jenkins": {"job": "svc/deploy"}}]
    )
    assert not sync(sqlite_warehouse, config).failed  # the changes, no tag deployment
    apply_config(sqlite_warehouse, config)
    start = at("2024-05-02T00:00:00+00:00")
    plan = [
        ("d1", "c1", "success"),
        ("d2", "m", "success"),
        ("d3", "m", "success"),  # a redeploy
        ("d4", "c3", "failure"),
        ("d5", "c3", "success"),
    ]
    rows = [
        {
            "id": name,
            "service": "svc",
            "environment": "production",
            "status": status,
            "deployed_at": start + timedelta(hours=n),
            "sha": sha[commit],
        }
        for n, (name, commit, status) in enumerate(plan)
    ]
    with sqlite_warehouse.begin() as connection:
        upsert_canonical(connection, {"deployments": rows}, source="jenkins", raw_id=None)
    service = config.services[0]
    ctx = SyncContext(engine=sqlite_warehouse, config=config, source="jenkins")
    link_deployments(
        ctx, Scope("svc", service, service.jenkins), GitRangeResolver(repo.path, "svc")
    )
    found = {key: row["shipped"] for key, row in deployments(sqlite_warehouse).items()}
    assert found == {
        "d1": {sha["c1"]},
        "d2": {sha["f1"], sha["f2"]},
        "d3": set(),
        "d4": set(),
        "d5": {sha["c2"], sha["c3"]},
    }


class Killed(BaseException):
    """Stands in for SIGKILL: nothing of the sync gets to clean up."""


def test_a_sync_killed_under_other_settings_is_not_resumed_but_read_again(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """The batches a killed sync stored were worked out with its settings: with a github
    block, none of the commits were changes. Resumed without it, they would be missing."""
    repo = Repo(tmp_path / "svc")
    shas = {repo.commit(f"c{n}", f"2024-02-0{n}T00:00:00+00:00") for n in range(1, 6)}
    with_github = make_config(
        tmp_path, [{"name": "svc", "git": {"path": "svc"}, "github": {"repo": "acme/svc"}}]
    )

    def kill(stream: str, scope: str, bookmark: Any) -> None:
        raise Killed

    with pytest.raises(Killed):
        sync(sqlite_warehouse, with_github, checkpoint_every=2, on_checkpoint=kill)
    assert changes(sqlite_warehouse) == {}
    alone = make_config(tmp_path, [{"name": "svc", "git": {"path": "svc"}}])
    assert not sync(sqlite_warehouse, alone, checkpoint_every=2).failed
    assert set(changes(sqlite_warehouse)) == shas

"""Which changes each deployment shipped (collectors/shipped.py), on a linear history.

Deployments are written the way a collector writes them; a fake resolver answers from a
list of commits s0…s9 (each one a known change), so what is tested is the ordering:
what gets re-linked when a deployment arrives late, or stops being a success.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from collector_checks import links
from sqlalchemy import Engine

from collectors.base import Rows, Scope, SyncContext, upsert_canonical
from collectors.shipped import Commit, classify, link_deployments
from poise.catalog import apply_config
from poise.config import parse_config

SHAS = [f"s{n}" for n in range(10)]
T0 = datetime(2024, 5, 1, tzinfo=UTC)


class LinearHistory:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def between(self, base: str, head: str) -> list[Commit]:
        self.asked.append((base, head))
        first, last = SHAS.index(base), SHAS.index(head)
        return [Commit(sha, (SHAS[i - 1],)) for i, sha in enumerate(SHAS) if first < i <= last]

    def change_of_commit(self, commit: Commit) -> tuple[str, Rows] | None:
        return None

    def direct_change(self, commit: Commit) -> dict[str, Any] | None:
        return None


@pytest.fixture
def world(sqlite_warehouse: Engine, tmp_path: Path) -> tuple[SyncContext, Scope]:
    config = parse_config(
        {
            "teams": [{"name": "t"}],
            "services": [{"name": "svc", "team": "t", "jenkins": {"job": "svc"}}],
        },
        base_dir=tmp_path,
    )
    apply_config(sqlite_warehouse, config)
    changes = [{"id": f"c:{sha}", "service": "svc", "sha": sha, "committed_at": T0} for sha in SHAS]
    with sqlite_warehouse.begin() as connection:
        upsert_canonical(connection, {"changes": changes}, source="git", raw_id=None)
    service = config.services[0]
    ctx = SyncContext(engine=sqlite_warehouse, config=config, source="jenkins")
    return ctx, Scope("svc", service, service.jenkins)


def deploy(ctx: SyncContext, name: str, sha: str, hours: int, status: str = "success") -> None:
    row = {
        "id": name,
        "service": "svc",
        "environment": "production",
        "status": status,
        "deployed_at": T0 + timedelta(hours=hours),
        "sha": sha,
    }
    with ctx.engine.begin() as connection:
        upsert_canonical(connection, {"deployments": [row]}, source="jenkins", raw_id=None)


def shipped(engine: Engine) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for deployment, change in sorted(links(engine)):
        found.setdefault(deployment, []).append(change.removeprefix("c:"))
    return found


def test_a_late_deployment_and_a_success_turned_failure_relink_their_neighbours(
    world: tuple[SyncContext, Scope],
) -> None:
    ctx, scope = world
    history = LinearHistory()
    deploy(ctx, "A", "s2", 1)
    deploy(ctx, "C", "s6", 3)
    link_deployments(ctx, scope, history)
    assert shipped(ctx.engine) == {"A": ["s2"], "C": ["s3", "s4", "s5", "s6"]}

    deploy(ctx, "B", "s4", 2)  # arrives late, between A and C
    history.asked.clear()
    link_deployments(ctx, scope, history)
    assert shipped(ctx.engine) == {"A": ["s2"], "B": ["s3", "s4"], "C": ["s5", "s6"]}
    assert history.asked == [("s2", "s4"), ("s4", "s6")]  # A was not asked about again

    deploy(ctx, "B", "s4", 2, status="failure")  # B turns out to have failed
    link_deployments(ctx, scope, history)
    assert shipped(ctx.engine) == {"A": ["s2"], "C": ["s3", "s4", "s5", "s6"]}

    history.asked.clear()
    link_deployments(ctx, scope, history)  # nothing changed: nothing asked, nothing written
    assert history.asked == [] and shipped(ctx.engine)["C"] == ["s3", "s4", "s5", "s6"]


def test_a_redeploy_ships_nothing_and_a_merge_brings_its_branch() -> None:
    history = [
        Commit("f1", ("m0",)),
        Commit("m1", ("m0", "f1")),  # a pull request's merge commit: f1 came with it
        Commit("d1", ("m1",)),  # pushed directly
        Commit("m2", ("d1", "x1")),  # a merge no pull request made
        Commit("x1", ("m0",)),
    ]
    resolver = LinearHistory()
    resolver.direct_change = lambda commit: {"id": f"direct:{commit.sha}"}  # type: ignore[method-assign]
    shipment = classify(history, {"m1": "pr:1"}, resolver)
    assert shipment.change_ids == ["pr:1", "direct:d1", "direct:x1"]
    assert [row["id"] for row in shipment.rows["changes"]] == ["direct:d1", "direct:x1"]

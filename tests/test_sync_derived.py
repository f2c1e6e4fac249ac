"""`poise sync` keeps the derived tables (metrics.derived) in step with what it collects:
refreshed after a sync that changed rows or links, left alone (one read) after one that
changed nothing, and never taken as fresh while a write has not been refreshed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from test_git_collector import Repo, checkout_config
from tls_server import closed_port

from collectors.base import upsert_canonical
from collectors.git import GitSource
from collectors.runner import post_sync_hooks, run_sync
from collectors.tls import TlsSource
from metrics import Period
from metrics.freshness import SCOPE, SOURCE, STREAM, is_fresh
from metrics.scorecard import scorecard
from poise.catalog import apply_config
from poise.config import AttributionConfig, CertificateEndpoint
from poise.warehouse import schema
from poise.warehouse.sync_state import read_state


def sync(engine: Engine, tmp_path: Path, **options: Any) -> None:
    config = checkout_config(tmp_path)
    apply_config(engine, config)
    summary = run_sync(engine, config, registry={"git": GitSource}, **options)
    assert not summary.failed, summary


def fresh(engine: Engine) -> bool:
    with engine.connect() as connection:
        return is_fresh(connection)


def refreshed_at(engine: Engine) -> Any:
    with engine.connect() as connection:
        return read_state(connection, SOURCE, STREAM, SCOPE).last_success_at


def leads(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(schema.change_leads)))


def first_release(warehouse: Engine, tmp_path: Path) -> Repo:
    """A repository with one release, synced (with the default hooks)."""
    repo = Repo(tmp_path / "checkout")
    released(repo, "first", 1)
    sync(warehouse, tmp_path)
    return repo


def released(repo: Repo, name: str, day: int) -> None:
    repo.commit(name, f"2024-02-{day:02d}T10:00:00+00:00")
    repo.tag(f"v{day}", f"2024-02-{day:02d}T12:00:00+00:00")


def test_a_sync_that_writes_refreshes_and_one_that_does_not_only_reads(
    warehouse: Engine, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "checkout")
    released(repo, "first", 1)
    released(repo, "second", 2)
    sync(warehouse, tmp_path)  # the default post-sync hooks
    assert fresh(warehouse) and leads(warehouse) == 2
    first = refreshed_at(warehouse)

    sync(warehouse, tmp_path)  # nothing new: the derived tables are not rebuilt
    assert refreshed_at(warehouse) == first and fresh(warehouse)

    released(repo, "third", 3)
    sync(warehouse, tmp_path)
    assert refreshed_at(warehouse) > first and fresh(warehouse) and leads(warehouse) == 3
    february = Period.quarter("2024Q1")
    assert scorecard(warehouse, february)["dora"]["lead_time"]["changes"] == 3


def test_a_write_never_refreshed_is_not_hidden_by_a_later_sync_that_wrote_nothing(
    warehouse: Engine, tmp_path: Path
) -> None:
    repo = first_release(warehouse, tmp_path)
    assert fresh(warehouse)
    repo.commit("second", "2024-02-02T10:00:00+00:00")  # a change, no release: no link
    sync(warehouse, tmp_path, hooks=[])  # the refresh never ran (a kill, a failed hook)
    assert not fresh(warehouse)
    sync(warehouse, tmp_path, hooks=[])  # a later run with nothing new resets its counts
    assert not fresh(warehouse)  # ... and the write is still known
    sync(warehouse, tmp_path)  # the next sync with its hooks catches up
    assert fresh(warehouse) and leads(warehouse) == 2  # the new change, not yet deployed


def test_links_alone_make_the_derived_tables_stale(warehouse: Engine, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "checkout")
    released(repo, "first", 1)
    late = repo.commit("late", "2024-02-05T10:00:00+00:00")  # on main, in no release
    sync(warehouse, tmp_path)
    assert fresh(warehouse)
    link = {"deployment_id": "git:checkout:tag:v1", "change_id": f"git:checkout:{late}"}
    with warehouse.begin() as connection:  # as a CI/CD source links a change it resolved
        counts = upsert_canonical(
            connection, {"deployment_changes": [link]}, source="test", raw_id=None
        )
    assert (counts.new, counts.updated) == (0, 0)  # links are not counted as records
    assert not fresh(warehouse)


def test_a_new_attribution_window_rebuilds_them(warehouse: Engine, tmp_path: Path) -> None:
    first_release(warehouse, tmp_path)
    (hook,) = post_sync_hooks()
    assert hook(warehouse, checkout_config(tmp_path)) is None  # 24 h, as built
    narrower = checkout_config(tmp_path).model_copy(
        update={"attribution": AttributionConfig(window_hours=6)}
    )
    rebuilt = hook(warehouse, narrower)
    assert rebuilt is not None and rebuilt["change_leads"] == 1
    assert hook(warehouse, narrower) is None


def test_a_certificate_check_leaves_the_derived_tables_alone(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Certificates feed no derived table: checking them (every hour, say) rebuilds nothing."""
    first_release(warehouse, tmp_path)
    built = refreshed_at(warehouse)
    endpoint = {"host": "127.0.0.1", "port": closed_port(), "service": "checkout"}
    config = checkout_config(tmp_path).model_copy(
        update={"certificates": [CertificateEndpoint(**endpoint)]}
    )
    summary = run_sync(warehouse, config, registry={"tls": TlsSource})
    assert summary.result("tls").new == 1  # the failed check is recorded ...
    assert fresh(warehouse) and refreshed_at(warehouse) == built  # ... and nothing rebuilt

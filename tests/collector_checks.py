"""Helpers shared by the CI/CD collector tests: running a sync, reading rows back, no waiting."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from replay import ReplayServer, Reply
from sqlalchemy import Engine, select

from collectors.base import Source
from collectors.runner import SyncSummary, run_sync
from poise.catalog import apply_config
from poise.config import PoiseConfig, parse_config
from poise.warehouse import schema

CANONICAL = ("repositories", "changes", "deployments", "deployment_changes", "incidents", "ci_runs")
BOOKKEEPING = {"updated_at", "raw_id"}


def one_service_config(
    tmp_path: Path, service: str, source: str, block: dict[str, Any], settings: dict[str, Any]
) -> PoiseConfig:
    """A config with one team and one service whose `source` block is `block`."""
    return parse_config(
        {
            "teams": [{"name": "delivery"}],
            "services": [{"name": service, "team": "delivery", source: block}],
            "sources": {source: {"timeout_seconds": 2, "max_retries": 2, **settings}},
        },
        base_dir=tmp_path,
    )


def replace_route(server: ReplayServer, path: str, *replies: Reply) -> None:
    """Script `path` anew: the replies given here replace whatever answered it before."""
    server.routes = [route for route in server.routes if route.path != path]
    server.add(path, *replies)


class Killed(BaseException):
    """Stands in for SIGKILL: no handler of the sync gets to run."""


def sync(engine: Engine, config: PoiseConfig, source: type[Source], **kwargs: Any) -> SyncSummary:
    apply_config(engine, config)
    return run_sync(engine, config, registry={source.name: source}, hooks=[], **kwargs)


def kill_after_checkpoints(count: int) -> Any:
    """An on_checkpoint hook that kills the sync at its `count`-th checkpoint."""
    seen = []

    def on_checkpoint(stream: str, scope: str, bookmark: Any) -> None:
        seen.append(stream)
        if len(seen) == count:
            raise Killed(f"killed after checkpoint {count} ({stream})")

    return on_checkpoint


def sync_through_kills(
    engine: Engine, config: PoiseConfig, source: type[Source], **kwargs: Any
) -> tuple[int, SyncSummary]:
    """Sync, killed at its 1st checkpoint, then (resumed) at its 2nd, 3rd … until one ends.

    Returns how many syncs were killed and the summary of the one that got through.
    """
    kills = 0
    while True:
        try:
            summary = sync(
                engine,
                config,
                source,
                checkpoint_every=1,
                on_checkpoint=kill_after_checkpoints(kills + 1),
                **kwargs,
            )
        except Killed:
            kills += 1
            continue
        return kills, summary


def rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    """A table's rows without bookkeeping columns, in key order."""
    target = schema.metadata.tables[table]
    key = [column.name for column in target.primary_key.columns]
    with engine.connect() as connection:
        found = connection.execute(select(target)).mappings().all()
    cleaned = [{k: v for k, v in row.items() if k not in BOOKKEEPING} for row in found]
    return sorted(cleaned, key=lambda row: tuple(str(row[name]) for name in key))


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    return {table: rows(engine, table) for table in CANONICAL}


def by_id(engine: Engine, table: str) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows(engine, table)}


def links(engine: Engine) -> set[tuple[str, str]]:
    return {(row["deployment_id"], row["change_id"]) for row in rows(engine, "deployment_changes")}


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_secret_absent(secret: str, engine: Engine, *texts: str) -> None:
    """The secret is in no message, and in no byte of the SQLite file (or its WAL)."""
    for text in texts:
        assert secret not in text
    if engine.dialect.name == "sqlite":
        engine.dispose()
        database = Path(str(engine.url.database))
        for path in [database, *database.parent.glob(database.name + "-*")]:
            assert secret.encode() not in path.read_bytes(), path
    with engine.connect() as connection:
        for table in (schema.raw_payloads, schema.sync_state):
            for row in connection.execute(select(table)):
                assert secret not in " ".join(str(value) for value in row)

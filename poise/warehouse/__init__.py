"""The warehouse: schema, engine, migrations and idempotent writes."""

from __future__ import annotations

from sqlalchemy import Engine

from poise.warehouse.engine import connect_or_explain, open_engine, redact, resolve_url
from poise.warehouse.migrate import upgrade


def open_warehouse(
    url: str, *, migrate: bool = True, create: bool = True, origin: str = "database URL"
) -> Engine:
    """Open the warehouse at `url` and bring its schema up to date.

    `create=False` refuses a SQLite file that does not exist (a command that only reads
    must not turn a typo into a new, empty warehouse and print zeros), and `origin` names
    where the URL came from (`--db`, `--from`, …) in every message (see `open_engine`).
    """
    engine = open_engine(url, create=create, origin=origin)
    try:
        connect_or_explain(engine)
        if migrate:
            upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


__all__ = ["open_engine", "open_warehouse", "redact", "resolve_url", "upgrade"]

"""The warehouse: schema, engine, migrations and idempotent writes."""

from __future__ import annotations

from sqlalchemy import Engine

from poise.warehouse.engine import connect_or_explain, open_engine, redact, resolve_url
from poise.warehouse.migrate import upgrade


def open_warehouse(url: str, *, migrate: bool = True) -> Engine:
    """Open the warehouse at `url` and bring its schema up to date."""
    engine = open_engine(url)
    connect_or_explain(engine)
    if migrate:
        upgrade(engine)
    return engine


__all__ = ["open_engine", "open_warehouse", "redact", "resolve_url", "upgrade"]

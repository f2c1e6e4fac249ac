"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from poise.timeutil import SQLITE_FORMAT, ensure_utc


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp.

    PostgreSQL keeps it as `timestamptz`. SQLite has no time type, so it is stored as
    fixed-width ISO text ending in Z (`2026-07-01T00:00:00.000000Z`): text order is
    time order and the value says it is UTC. Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        value = ensure_utc(value)
        if dialect.name == "sqlite":
            return value.strftime(SQLITE_FORMAT)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

"""Bookmarks and the outcome of every sync or import, per source, stream and scope."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from poise.timeutil import utcnow
from poise.warehouse.schema import sync_state
from poise.warehouse.upsert import upsert_rows

MAX_ERROR_LENGTH = 2000
# Where the collectors note that they changed collected rows (or the links between them):
# one row, whose `last_success_at` is the last such write. The outcome rows of the sources
# cannot say it: a later run that wrote nothing resets their counts, and link rows are
# not counted at all (metrics.freshness reads both).
WRITES = ("warehouse", "writes", "all")
# Streams (source, stream) whose scope is a service's name and whose successful sync puts
# that service's incidents, or its pages, on record even when it found none: a calm service
# behind a pager has 0 incidents, a service no incident source covers has no figure.
INCIDENT_STREAMS = (("pagerduty", "incidents"), ("opsgenie", "incidents"), ("github", "issues"))
PAGE_STREAMS = (("pagerduty", "incidents"), ("opsgenie", "alerts"))


@dataclass(frozen=True)
class SyncState:
    source: str
    stream: str
    scope: str
    bookmark: Any
    last_success_at: datetime | None
    last_error: str | None


def read_state(connection: Connection, source: str, stream: str, scope: str) -> SyncState:
    row = (
        connection.execute(
            select(sync_state).where(
                sync_state.c.source == source,
                sync_state.c.stream == stream,
                sync_state.c.scope == scope,
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return SyncState(source, stream, scope, None, None, None)
    bookmark = json.loads(row["bookmark"]) if row["bookmark"] else None
    return SyncState(source, stream, scope, bookmark, row["last_success_at"], row["last_error"])


def _set(connection: Connection, source: str, stream: str, scope: str, **values: Any) -> None:
    """Set these columns of one state row (made if missing)."""
    row = {"source": source, "stream": stream, "scope": scope, **values}
    upsert_rows(connection, sync_state, [row], count=False)


def save_bookmark(
    connection: Connection, source: str, stream: str, scope: str, bookmark: Any
) -> None:
    """Checkpoint a bookmark; call it in the transaction that stored the rows it covers."""
    _set(
        connection,
        source,
        stream,
        scope,
        bookmark=json.dumps(bookmark, sort_keys=True, default=str),
    )


def mark_written(connection: Connection) -> None:
    """In the transaction that changed collected rows: the derived tables are stale now."""
    now = utcnow()
    _set(connection, *WRITES, last_attempt_at=now, last_success_at=now, rows_new=1)


def record_attempt(
    connection: Connection,
    source: str,
    stream: str,
    scope: str,
    *,
    error: str | None,
    new: int = 0,
    updated: int = 0,
    unchanged: int = 0,
) -> None:
    """Record how a run ended: success resets the error, failure keeps the last success."""
    now = utcnow()
    outcome: dict[str, Any] = (
        {
            "last_success_at": now,
            "last_error": None,
            "last_error_at": None,
            "rows_new": new,
            "rows_updated": updated,
            "rows_unchanged": unchanged,
        }
        if error is None
        else {"last_error": error[:MAX_ERROR_LENGTH], "last_error_at": now}
    )
    _set(connection, source, stream, scope, last_attempt_at=now, **outcome)

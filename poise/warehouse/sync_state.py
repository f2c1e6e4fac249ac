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


def save_bookmark(
    connection: Connection, source: str, stream: str, scope: str, bookmark: Any
) -> None:
    """Checkpoint a bookmark; call it in the transaction that stored the rows it covers."""
    upsert_rows(
        connection,
        sync_state,
        [
            {
                "source": source,
                "stream": stream,
                "scope": scope,
                "bookmark": json.dumps(bookmark, sort_keys=True, default=str),
            }
        ],
        count=False,
    )


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
    row: dict[str, Any] = {
        "source": source,
        "stream": stream,
        "scope": scope,
        "last_attempt_at": now,
    }
    if error is None:
        row.update(
            last_success_at=now,
            last_error=None,
            last_error_at=None,
            rows_new=new,
            rows_updated=updated,
            rows_unchanged=unchanged,
        )
    else:
        row.update(last_error=error[:MAX_ERROR_LENGTH], last_error_at=now)
    upsert_rows(connection, sync_state, [row], count=False)

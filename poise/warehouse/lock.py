"""One sync at a time per warehouse.

Two syncs writing one warehouse would not corrupt it (every page is its own transaction),
but they would fetch everything twice and race on bookmarks. So `poise sync` holds a lock
for its whole run:

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated
  connection, keyed by a fixed number and the schema, so two warehouses in one database
  (one schema each) do not block each other. The connection's `application_name` records
  who holds it (pid and start time), read back from `pg_stat_activity` by a second sync.
  PostgreSQL drops the lock by itself when the holder dies, even on `kill -9`.
- SQLite: an exclusive `flock` on a file beside the database (`<db>.sync.lock`) holding the
  holder's pid and start time. The kernel releases it when the process ends, however it ends.

A second sync is refused at once with `SyncLocked` ("another poise sync is running against …
(since …, pid …)"), never queued.
"""

from __future__ import annotations

import fcntl
import json
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from poise.errors import PoiseError
from poise.timeutil import isoformat_z, utcnow
from poise.warehouse.engine import redact

# "poise" in ASCII folded into a positive int4: the first half of the two-key advisory lock.
LOCK_CLASS = 0x706F6973
APPLICATION_PREFIX = "poise sync"


class SyncLocked(PoiseError):
    """Another `poise sync` holds the warehouse's sync lock."""


def _message(url: str, since: str | None, pid: str | int | None) -> str:
    holder = ", ".join(
        part for part in (f"since {since}" if since else "", f"pid {pid}" if pid else "") if part
    )
    return f"another poise sync is running against {redact(url)}" + (
        f" ({holder})" if holder else ""
    )


@contextmanager
def sync_lock(engine: Engine, url: str | None = None) -> Iterator[None]:
    """Hold the warehouse's sync lock for the `with` block, or raise `SyncLocked`."""
    shown = url or str(engine.url)
    backend = engine.dialect.name
    if backend == "postgresql":
        with _postgres_lock(engine, shown):
            yield
    elif backend == "sqlite":
        with _file_lock(_lock_path(engine), shown):
            yield
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported warehouses
        yield


# --- PostgreSQL ---------------------------------------------------------------------------------


def schema_key(schema: str) -> int:
    """A stable signed int4 for the schema (the second half of the lock key)."""
    value = zlib.crc32(schema.encode("utf-8"))
    return value - (1 << 32) if value >= (1 << 31) else value


@contextmanager
def _postgres_lock(engine: Engine, url: str) -> Iterator[None]:
    connection = engine.connect()
    try:
        schema = connection.scalar(text("SELECT current_schema()")) or "public"
        key = schema_key(schema)
        got = connection.scalar(
            text("SELECT pg_try_advisory_lock(:cls, :key)"), {"cls": LOCK_CLASS, "key": key}
        )
        if not got:
            since, pid = _postgres_holder(connection, key)
            connection.rollback()
            raise SyncLocked(_message(url, since, pid))
        # Who holds it, for the message a second sync prints (set_config is parameterised).
        label = f"{APPLICATION_PREFIX} pid={os.getpid()} since={isoformat_z(utcnow())}"
        connection.execute(
            text("SELECT set_config('application_name', :label, false)"), {"label": label}
        )
        connection.commit()
        try:
            yield
        finally:
            try:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:cls, :key)"), {"cls": LOCK_CLASS, "key": key}
                )
                connection.commit()
            except Exception:  # the server went away: the lock went with the session
                connection.invalidate()
    finally:
        connection.close()


def _postgres_holder(connection: object, key: int) -> tuple[str | None, str | None]:
    row = connection.execute(  # type: ignore[attr-defined]
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :cls "
            "AND l.objid = :objid AND l.objsubid = 2 LIMIT 1"
        ),
        {"cls": LOCK_CLASS, "objid": key & 0xFFFFFFFF},
    ).first()
    if row is None or not str(row[0]).startswith(APPLICATION_PREFIX):
        return None, None
    fields = dict(part.split("=", 1) for part in str(row[0]).split() if "=" in part)
    return fields.get("since"), fields.get("pid")


# --- SQLite -------------------------------------------------------------------------------------


def _lock_path(engine: Engine) -> Path | None:
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve().with_name(Path(database).name + ".sync.lock")


@contextmanager
def _file_lock(path: Path | None, url: str) -> Iterator[None]:
    if path is None:  # an in-memory database is private to its process
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(descriptor)
            raise SyncLocked(_message(url, holder.get("since"), holder.get("pid"))) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(
            descriptor,
            json.dumps({"pid": os.getpid(), "since": isoformat_z(utcnow())}).encode(),
            0,
        )
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _read_holder(descriptor: int) -> dict[str, str]:
    try:
        data = json.loads(os.pread(descriptor, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return {key: str(value) for key, value in data.items()} if isinstance(data, dict) else {}

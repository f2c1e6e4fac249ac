"""Opening the warehouse: which URL, the SQLite settings, and bringing the schema up to date."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from poise.errors import DatabaseUnavailable, PoiseError

DEFAULT_URL = "sqlite:///data/poise.db"
URL_ENV = "POISE_DATABASE_URL"


def resolve_url(explicit: str | None = None, configured: str | None = None) -> str:
    """`--db` beats `POISE_DATABASE_URL`, which beats the config file, which beats the default."""
    return explicit or os.environ.get(URL_ENV) or configured or DEFAULT_URL


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def redact(url: str) -> str:
    """The URL as it may be shown: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def open_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise PoiseError(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    try:
        return create_engine(parsed, **kwargs)
    except ModuleNotFoundError as exc:
        raise PoiseError(f"no driver for {redact(url)}: {exc.name} is not installed") from None


def unavailable(engine: Engine) -> DatabaseUnavailable | None:
    """Why the warehouse cannot be reached now (one line), or None when it answers.

    Asks with a statement of its own: a caller that saw a query fail asks here rather than
    judging the failure by its message (an OperationalError may as well be a missing table,
    which is no outage). On PostgreSQL the engine's pre-ping replaces pooled connections
    that a restart has broken, so an answer here means the next query gets a working one.
    """
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1").close()
    except (OperationalError, InterfaceError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return DatabaseUnavailable(f"database unavailable at {redact(str(engine.url))}: {reason}")
    return None


def connect_or_explain(engine: Engine) -> None:
    """Fail with one clear line when the warehouse cannot be reached."""
    problem = unavailable(engine)
    if problem is not None:
        raise problem


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one committed state of the warehouse, however many
    statements they take and whatever a sync commits meanwhile (never half of a write).

    PostgreSQL: a REPEATABLE READ transaction (READ COMMITTED, the default, lets each
    statement see the latest commit). SQLite: an explicit BEGIN, since the driver starts a
    transaction only before a write and each SELECT would otherwise be its own snapshot;
    in WAL mode the snapshot does not block the writer. Rolled back at the end: reads only.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        elif engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")
        try:
            yield connection
        finally:
            connection.rollback()


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())

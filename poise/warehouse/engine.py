"""Opening the warehouse: which URL, the SQLite settings, and bringing the schema up to date."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from poise.errors import DatabaseUnavailable, MissingWarehouse, PoiseError

log = logging.getLogger("poise.warehouse")
T = TypeVar("T")

DEFAULT_URL = "sqlite:///data/poise.db"
URL_ENV = "POISE_DATABASE_URL"


def resolve_url(explicit: str | None = None, configured: str | None = None) -> str:
    """`--db` beats `POISE_DATABASE_URL`, which beats the config file, which beats the default."""
    return explicit or os.environ.get(URL_ENV) or configured or DEFAULT_URL


# Pages of a new warehouse file, instead of SQLite's 4 kB: a bulk write (a first git
# ingest, an import) dirties fewer pages and splits fewer B-tree nodes, and scans read the
# same bytes in fewer steps; 64 kB made point reads slower (docs/performance.md). Set
# before anything is written, it takes effect only on a new, empty file: an existing
# warehouse keeps the page size it was made with.
SQLITE_PAGE_SIZE = 16384


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def redact(url: str) -> str:
    """The URL as it may be shown: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Unparseable (a port that is not a number, say): mask whatever sits between
        # `user:` and `@`, since a mistyped URL still often carries a real password.
        return _USERINFO_PASSWORD.sub(r"\1***@", url)


# `scheme://user:password@` in a URL SQLAlchemy cannot parse.
_USERINFO_PASSWORD = re.compile(r"^([^:/?#]*://[^:/@?#]*:)[^@/?#]*@")
SUPPORTED_KINDS = ("sqlite", "postgresql")
URL_HINT = "use sqlite:///FILE or postgresql+psycopg://…"
SQLITE_HEADER = b"SQLite format 3\x00"


def url_origin(
    explicit: str | None = None, configured: str | None = None, config_file: str = "the config"
) -> str:
    """Where `resolve_url` found the URL, as a person would go and fix it: `--db`,
    `$POISE_DATABASE_URL`, or `database` in the config file. The default URL is named as
    `--db` too: giving one is how to point elsewhere."""
    if explicit:
        return "--db"
    if os.environ.get(URL_ENV):
        return f"${URL_ENV}"
    if configured:
        return f"database in {config_file}"
    return "--db"


def _check_kind(parsed: URL, url: str, origin: str) -> None:
    """Only SQLite and PostgreSQL hold a warehouse; say so before SQLAlchemy looks for a
    plugin named after the typo (NoSuchModuleError) or a driver nobody installed."""
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_KINDS:
        try:
            parsed.get_dialect()
        except NoSuchModuleError:
            raise PoiseError(
                f"{origin} {redact(url)}: unknown database kind {backend!r} ({URL_HINT})"
            ) from None
        raise PoiseError(
            f"{origin} {redact(url)}: Poise keeps its warehouse in SQLite or PostgreSQL, "
            f"not {backend} ({URL_HINT})"
        )
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise PoiseError(
            f"{origin} {redact(url)}: unknown driver {parsed.get_driver_name()!r} for "
            f"{backend} ({URL_HINT})"
        ) from None


def _sqlite_file(database: str, *, create: bool, origin: str) -> Path:
    """The warehouse file, checked before SQLite opens it: SQLite itself would create a
    missing one (a typo becoming an empty warehouse) and fail on a folder or a foreign file
    with messages that name neither."""
    path = Path(database).expanduser()
    if path.is_dir():
        raise PoiseError(f"{path} is a folder, not a SQLite warehouse (name a file in it)")
    if path.exists():
        try:
            with path.open("rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise PoiseError(f"cannot read the warehouse {path}: {exc.strerror or exc}") from None
        # An empty file is a valid, empty SQLite database (what `touch` or a new mount gives).
        if header and header != SQLITE_HEADER:
            raise PoiseError(f"{path} is not a SQLite warehouse")
        return path
    if not create:
        raise MissingWarehouse(
            f"no warehouse at {path} (run poise demo, import or sync first, or check {origin})"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PoiseError(
            f"cannot create the folder {path.parent} for the warehouse: {exc.strerror or exc}"
        ) from None
    return path


def _in_memory(parsed: URL) -> bool:
    """`sqlite://`, `sqlite:///`, `sqlite:///:memory:`, and a `file:` URI asking for memory."""
    database = parsed.database or ""
    if database in ("", ":memory:"):
        return True
    if database.startswith("file:"):
        return database.startswith("file::memory:") or parsed.query.get("mode") == "memory"
    return False


def open_engine(
    url: str, *, create: bool = True, origin: str = "database URL", **kwargs: Any
) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout.

    `create=False` is for commands that only read: a SQLite file that does not exist is
    refused (`MissingWarehouse`) instead of being created empty. `origin` names where the
    URL came from (`--db`, `--from`, …) in the messages, so the person knows what to fix.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise PoiseError(f"{origin} {redact(url)}: not a valid database URL ({URL_HINT})") from None
    _check_kind(parsed, url, origin)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if _in_memory(parsed):
            # Each connection would get a new, empty database that vanishes with it: a sync
            # would write nowhere, metrics would read zeros, a demo would be thrown away.
            shown = redact(url) if parsed.password else url  # redact() would quote ':'
            raise PoiseError(
                f"{origin} {shown}: an in-memory SQLite database keeps nothing: a "
                "warehouse must be a file or a server (name the file, e.g. "
                f"{DEFAULT_URL})"
            )
        if database and database != ":memory:" and not database.startswith("file:"):
            # SQLite does not expand `~` itself: open the file the check looked at.
            path = _sqlite_file(database, create=create, origin=origin)
            parsed = parsed.set(database=str(path))
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    if parsed.get_driver_name() == "psycopg":
        # No server-side prepared statements: psycopg prepares a statement from its fifth
        # run, and PostgreSQL may then keep one generic plan for it. An import's DELETE of
        # a chunk's old links, first run on an empty table, kept its sequential scan while
        # the transaction grew the table to 700,000 rows: 5 s a chunk instead of a few ms
        # (docs/performance.md). Planned on every run, each gets its index.
        kwargs["connect_args"] = {"prepare_threshold": None, **kwargs.get("connect_args", {})}
    try:
        return create_engine(parsed, **kwargs)
    except ModuleNotFoundError as exc:
        raise PoiseError(f"no driver for {redact(url)}: {exc.name} is not installed") from None


def refresh_planner_statistics(connection: Connection, tables: Iterable[Table]) -> None:
    """PostgreSQL: ANALYZE `tables` now. Right after an import or a sync wrote hundreds of
    thousands of rows, autovacuum has not sampled them yet, and a planner that believes
    `deployments` holds 38 rows joins it to every service in a nested loop: finding each
    change's first deployment took 14-17 s instead of 6 s (docs/performance.md). Sampling
    costs under a second at 600,000 changes. A table the user does not own is skipped by
    PostgreSQL with a warning, not an error. SQLite: nothing (its plans need no samples)."""
    if connection.dialect.name != "postgresql":
        return
    quote = connection.dialect.identifier_preparer.quote
    connection.execute(text("ANALYZE " + ", ".join(quote(table.name) for table in tables)))


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
    # DatabaseError rather than only OperationalError: a damaged SQLite file fails the
    # first statement with a plain DatabaseError ("database disk image is malformed").
    except (DatabaseError, InterfaceError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return DatabaseUnavailable(f"database unavailable at {redact(str(engine.url))}: {reason}")
    return None


# What a database answers when it will not write for this session at all: PostgreSQL's
# insufficient privilege (a role granted SELECT only) and read-only transaction (a hot
# standby, `default_transaction_read_only`); SQLite's SQLITE_READONLY (a file opened with
# `mode=ro`, or one the user may not write), whose extended codes keep it in the low byte.
_PG_WRITE_REFUSED = frozenset({"42501", "25006"})
_SQLITE_READONLY = 8


def write_refused(exc: DBAPIError) -> str | None:
    """The database's one-line reason when `exc` is a write refused for good, else None."""
    original = exc.orig
    sqlstate = getattr(original, "sqlstate", None)
    code = getattr(original, "sqlite_errorcode", None)
    if sqlstate in _PG_WRITE_REFUSED or (code is not None and code & 0xFF == _SQLITE_READONLY):
        return str(original).strip().splitlines()[0]
    return None


def database_failure(exc: DBAPIError) -> str | None:
    """The one line a database failure gets (without `poise: `): a write refused for good,
    or the database unavailable; None when it is neither, i.e. a bug."""
    refused = write_refused(exc)
    if refused is not None:  # a read-only role, replica or file, and a command that writes
        return f"the warehouse refused to write: {refused}"
    if isinstance(exc, OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"database unavailable: {reason}"
    return None


def connect_or_explain(engine: Engine) -> None:
    """Fail with one clear line when the warehouse cannot be reached."""
    problem = unavailable(engine)
    if problem is not None:
        raise problem
    _schema_exists(engine)


def _schema_exists(engine: Engine) -> None:
    """PostgreSQL: refuse a `search_path` naming no schema that exists (the URL's
    `options=-csearch_path=…`, or the role's setting). The server still connects, and the
    first CREATE fails with "no schema has been selected to create in" and its SQL."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        if connection.exec_driver_sql("SELECT current_schema()").scalar() is not None:
            return
        search_path = connection.exec_driver_sql("SHOW search_path").scalar()
    raise PoiseError(
        f"database {redact(str(engine.url))}: no schema named in its search_path "
        f"({search_path}) exists: create it (CREATE SCHEMA …) or fix the URL"
    )


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
        except Exception as exc:
            if _sqlite_corrupt(engine, exc):
                # not back into the pool: its page cache may hold what it read malformed
                connection.invalidate()
            raise
        finally:
            if not connection.invalidated:
                connection.rollback()


# Reads of one snapshot tried again after SQLite said "database disk image is malformed"
# while another process committed: see `read_consistently`.
SNAPSHOT_ATTEMPTS = 3


def read_consistently(engine: Engine, read: Callable[[Connection], T]) -> T:
    """`read(connection)` in one `read_snapshot`, tried again in a new snapshot when SQLite
    says the file is malformed for a moment (`again_if_malformed`)."""

    def in_snapshot() -> T:
        with read_snapshot(engine) as connection:
            return read(connection)

    return again_if_malformed(engine, in_snapshot)


def again_if_malformed(engine: Engine, call: Callable[[], T]) -> T:
    """`call()`, made again (up to SNAPSHOT_ATTEMPTS times in all) when it failed on SQLite
    with SQLITE_CORRUPT: `call` must only read, in snapshots of its own.

    SQLite before 3.51.3 has races in WAL mode between a commit, its checkpoint and the
    WAL being reset (sqlite.org/wal.html, "the WAL-reset bug"); under load a reader of
    Debian 12's 3.40.1 was seen to get "database disk image is malformed" while `poise
    import` committed in another process, the file itself sound before and after. A
    dashboard page or `poise metrics` then failed for a moment's race. A file that is
    really damaged fails every attempt, and that error is raised as it is.
    """
    for attempt in range(1, SNAPSHOT_ATTEMPTS):
        try:
            return call()
        except (DatabaseError, sqlite3.DatabaseError) as exc:
            # the driver's own error too: frames are fetched from its cursor (`fetch_frame`)
            if not _sqlite_corrupt(engine, exc):
                raise
            log.warning("SQLite read a malformed page (attempt %d): reading again", attempt)
            time.sleep(0.05 * attempt)
    return call()  # the last attempt: its error is raised


SQLITE_CORRUPT = 11  # sqlite3.h; the low byte of an extended result code


def _sqlite_corrupt(engine: Engine, exc: BaseException) -> bool:
    """SQLITE_CORRUPT, raised through SQLAlchemy or by the driver's cursor itself."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(error, "sqlite_errorcode", None)
    return engine.dialect.name == "sqlite" and code is not None and code & 0xFF == SQLITE_CORRUPT


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())

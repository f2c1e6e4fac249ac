"""Bring a warehouse up to date before anything uses it.

A warehouse already at the head revision (every command after the first) is checked
without importing Alembic: the head is read from the revision files, the current revision
from `alembic_version`. Alembic (a fifth of a second to import, with Mako) loads only
when there is something to apply.

An upgrade runs in one transaction, under a lock, on both engines:

- it is all or nothing: SQLite's driver would otherwise commit each CREATE and ALTER on
  its own, and an upgrade killed or failing halfway left tables or columns that the next
  run tripped over ("table … already exists") for ever;
- two commands opening an old warehouse at once (a dashboard and a sync starting after a
  new image is deployed) take turns: SQLite's `BEGIN IMMEDIATE` and a PostgreSQL advisory
  lock per schema; the second reads the revision again once it has the lock and finds
  nothing left to do (it used to fail on the tables the first had just made);
- on SQLite foreign keys are off meanwhile and checked before the commit: a migration
  that rebuilds a table (what Alembic's batch mode does for most column changes) drops
  the old one, which with foreign keys on deletes every row referring to it
  (`ON DELETE CASCADE`).

What it cannot apply it says in one line (`PoiseError`): a warehouse migrated by a newer
Poise, a database holding other tables and no revision, a warehouse that refuses writes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from poise.errors import PoiseError
from poise.warehouse.engine import redact, write_refused
from poise.warehouse.lock import LOCK_CLASS, schema_key

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
_REVISION = re.compile(r"^revision\s*=\s*['\"](\w+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*['\"](\w+)['\"]", re.MULTILINE)
# The second advisory lock class (the sync lock is LOCK_CLASS): a migration waits for
# another migration of the same schema, never for a running sync.
MIGRATION_LOCK_CLASS = LOCK_CLASS + 1


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _chain() -> tuple[frozenset[str], str | None]:
    """Every revision the files name, and the one no other revision builds on (the chain
    is linear)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        source = path.read_text(encoding="utf-8")
        if found := _REVISION.search(source):
            revisions.add(found.group(1))
        if down := _DOWN.search(source):
            parents.add(down.group(1))
    heads = sorted(revisions - parents)
    return frozenset(revisions), heads[-1] if heads else None


def head_revision() -> str | None:
    """The revision no other revision builds on."""
    return _chain()[1]


def known_revisions() -> frozenset[str]:
    """Every revision this Poise has a file for."""
    return _chain()[0]


def _where(connection: Connection) -> str:
    return redact(str(connection.engine.url))


def _stored(connection: Connection) -> str | None:
    """The revision `alembic_version` records (None: no such table, or no row in it)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise PoiseError(
            f"the warehouse {_where(connection)} records several schema revisions "
            f"({', '.join(sorted(rows))}) in {VERSION_TABLE}, where Poise keeps one: it was "
            "changed by hand or by another tool; keep the row of the revision its tables are at"
        )
    return rows[0] if rows else None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _stored(connection)


def _check(connection: Connection, current: str | None) -> None:
    """Refuse what an upgrade to head would harm or cannot do, in one line."""
    if current is not None and current not in known_revisions():
        from poise import __version__

        raise PoiseError(
            f"the warehouse {_where(connection)} is at schema revision {current}, which this "
            f"Poise ({__version__}, schema {head_revision()}) does not know: a newer Poise "
            "has upgraded it; upgrade Poise to use it"
        )
    if current is None:
        others = sorted(set(inspect(connection).get_table_names()) - {VERSION_TABLE})
        if others:
            shown = ", ".join(others[:4]) + (", …" if len(others) > 4 else "")
            raise PoiseError(
                f"{_where(connection)} is not a Poise warehouse: it holds tables ({shown}) "
                f"but no schema revision ({VERSION_TABLE}); name a new file, or an empty "
                "database or schema"
            )


def _dangling(connection: Connection) -> Counter[tuple[str, str]]:
    """SQLite: how many rows of each table refer to no row of the table they name."""
    return Counter(
        (str(row[0]), str(row[2])) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")
    )


@contextmanager
def _exclusive(connection: Connection) -> Iterator[None]:
    """One transaction holding the warehouse's migration lock; committed at the end."""
    if connection.dialect.name == "sqlite":
        # Only outside a transaction does SQLite hear this pragma.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # waits out the busy timeout
            before = _dangling(connection)
            yield
            # what the migrations left dangling (rows written by hand before are not theirs)
            if added := _dangling(connection) - before:
                table, parent = next(iter(added))
                raise PoiseError(
                    f"the schema upgrade of {_where(connection)} would leave rows of {table} "
                    f"referring to no row of {parent}: nothing was changed (please report it)"
                )
            connection.commit()
        finally:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
        return
    if connection.dialect.name == "postgresql":
        schema = connection.scalar(text("SELECT current_schema()")) or "public"
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:cls, :key)"),
            {"cls": MIGRATION_LOCK_CLASS, "key": schema_key(schema)},
        )
    yield
    connection.commit()


def upgrade(engine: Engine) -> bool:
    """Apply pending migrations; returns whether anything was applied (False too when
    another process applied them while this one waited for the lock)."""
    head = head_revision()
    if current_revision(engine) == head:
        return False
    from alembic import command

    config = _config()
    with engine.connect() as connection:
        current: str | None = None
        try:
            with _exclusive(connection):
                current = _stored(connection)  # again: another process may have upgraded
                if current == head:
                    return False
                _check(connection, current)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except DBAPIError as exc:
            reason = write_refused(exc)
            if reason is None:
                raise
            raise PoiseError(
                f"the warehouse {_where(connection)} is at schema revision "
                f"{current or 'none'} and this Poise needs {head}, but it refused the "
                f"upgrade ({reason}): run poise sync once where it can be written"
            ) from None
    return True

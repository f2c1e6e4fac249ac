"""Migrations from empty give exactly `schema.metadata`, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from poise.warehouse import open_warehouse, upgrade
from poise.warehouse.engine import SQLITE_PAGE_SIZE, open_engine
from poise.warehouse.migrate import current_revision, head_revision
from poise.warehouse.schema import CANONICAL_TABLES, metadata, services, teams


def _differences(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, metadata)


def test_the_head_and_the_current_revision_are_alembics(warehouse_url: str) -> None:
    """Read without Alembic (a fifth of a second of every command's start), they must say
    what Alembic says, or a warehouse would be left unmigrated or migrated at each run."""
    import subprocess
    import sys

    from alembic.script import ScriptDirectory

    from poise.warehouse.migrate import _config

    assert head_revision() == ScriptDirectory.from_config(_config()).get_current_head()
    engine = open_warehouse(warehouse_url)
    try:
        with engine.connect() as connection:
            stored = MigrationContext.configure(connection).get_current_revision()
        assert current_revision(engine) == stored == head_revision()
    finally:
        engine.dispose()
    opened = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from poise.warehouse import open_warehouse; "
            f"open_warehouse({warehouse_url!r}).dispose(); print('alembic' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert opened.stdout.strip() == "False"  # at head: nothing to apply, nothing imported


def test_migrating_an_empty_database_reaches_head(warehouse_url: str) -> None:
    engine = open_engine(warehouse_url)
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) is True
        assert current_revision(engine) == head_revision()
        assert upgrade(engine) is False  # nothing left to apply
    finally:
        engine.dispose()


def test_migrated_database_matches_the_schema_exactly(warehouse: Engine) -> None:
    assert _differences(warehouse) == []


def test_every_table_of_the_schema_exists(warehouse: Engine) -> None:
    tables = set(inspect(warehouse).get_table_names())
    assert set(metadata.tables) <= tables
    assert {table.name for table in CANONICAL_TABLES} <= tables


def test_a_missing_column_is_a_difference(warehouse: Engine) -> None:
    """The comparison above can fail: drop a column and it reports it."""
    with warehouse.begin() as connection:
        connection.execute(text("ALTER TABLE teams DROP COLUMN size"))
    differences = _differences(warehouse)
    assert any(d[0] == "add_column" and d[3].name == "size" for d in differences)


def test_reopening_a_migrated_warehouse_keeps_its_rows(warehouse_url: str) -> None:
    engine = open_warehouse(warehouse_url)
    now = datetime(2026, 7, 1, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(teams.insert().values(name="payments", source="test", updated_at=now))
    engine.dispose()
    engine = open_warehouse(warehouse_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(select(teams.c.name)).scalars().all() == ["payments"]
    finally:
        engine.dispose()


def test_timestamps_come_back_aware_utc(warehouse: Engine) -> None:
    berlin = timezone(timedelta(hours=2))
    written = datetime(2026, 7, 1, 11, 30, 0, 123456, tzinfo=berlin)
    with warehouse.begin() as connection:
        connection.execute(
            teams.insert().values(name="payments", source="test", updated_at=written)
        )
        read = connection.execute(select(teams.c.updated_at)).scalar_one()
    assert read == written
    assert read.tzinfo is not None and read.utcoffset() == timedelta(0)
    assert read == datetime(2026, 7, 1, 9, 30, 0, 123456, tzinfo=UTC)


def test_naive_datetimes_are_refused(warehouse: Engine) -> None:
    with warehouse.begin() as connection, pytest.raises(StatementError, match="naive datetime"):
        connection.execute(
            teams.insert().values(
                name="payments",
                source="test",
                updated_at=datetime(2026, 7, 1),  # noqa: DTZ001 - the point of the test
            )
        )


def test_sqlite_stores_fixed_width_text_in_time_order(sqlite_warehouse: Engine) -> None:
    stamps = [
        datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
        datetime(2026, 7, 1, 9, 0, 0, 5, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    ]
    with sqlite_warehouse.begin() as connection:
        for index, stamp in enumerate(reversed(stamps)):
            connection.execute(
                teams.insert().values(name=f"t{index}", source="test", updated_at=stamp)
            )
        raw = connection.execute(text("SELECT updated_at FROM teams ORDER BY updated_at")).all()
    assert [row[0] for row in raw] == [
        "2026-07-01T09:00:00.000000Z",
        "2026-07-01T09:00:00.000005Z",
        "2026-12-31T23:59:59.000000Z",
    ]


def test_sqlite_enforces_foreign_keys(sqlite_warehouse: Engine) -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    with pytest.raises(IntegrityError), sqlite_warehouse.begin() as connection:
        connection.execute(
            services.insert().values(name="checkout", team="nobody", source="t", updated_at=now)
        )


def test_a_new_sqlite_warehouse_has_large_pages_and_an_old_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    fresh = open_warehouse(f"sqlite:///{tmp_path / 'new.db'}")
    with fresh.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA page_size").scalar() == SQLITE_PAGE_SIZE
    fresh.dispose()
    old_file = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old_file)) as connection:  # as made before
        connection.execute("PRAGMA page_size=4096")
        connection.execute("PRAGMA journal_mode=WAL")
    from alembic import command

    from poise.warehouse.migrate import _config

    made_before = open_engine(f"sqlite:///{old_file}")  # a warehouse of revision 0001
    with made_before.begin() as connection:
        alembic = _config()
        alembic.attributes["connection"] = connection
        command.upgrade(alembic, "0001")
        connection.execute(
            teams.insert().values(name="kept", source="test", updated_at=datetime.now(UTC))
        )
    made_before.dispose()
    old = open_warehouse(f"sqlite:///{old_file}")  # migrated to head on its 4 kB pages
    with old.begin() as connection:
        assert connection.exec_driver_sql("PRAGMA page_size").scalar() == 4096
        assert connection.execute(select(teams.c.name)).scalars().all() == ["kept"]
    assert current_revision(old) == head_revision()
    assert _differences(old) == []
    old.dispose()


def test_postgresql_keeps_no_prepared_plan(postgres_url: str) -> None:
    """A statement run again and again in one transaction is planned each time: psycopg's
    server-side prepared statements let PostgreSQL keep the plan it made while a table was
    empty (a sequential scan) after the transaction had filled it (an import's DELETE of a
    chunk's old links took seconds a chunk)."""
    engine = open_engine(postgres_url)
    try:
        with engine.begin() as connection:
            for _ in range(8):
                connection.execute(
                    text("SELECT count(*) FROM pg_class WHERE relname = :n"), {"n": "x"}
                )
            kept = connection.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()
        assert kept == 0
        # a caller's own connect arguments are kept beside it
        custom = open_engine(postgres_url, connect_args={"application_name": "poise-test"})
        with custom.connect() as connection:
            name = connection.execute(text("SHOW application_name")).scalar()
        custom.dispose()
        assert name == "poise-test"
    finally:
        engine.dispose()

"""Shared fixtures: a real SQLite file and, when CI names it, the real PostgreSQL server.

`warehouse_url` / `warehouse` are parametrised over both engines, so a test that takes
them runs twice. On PostgreSQL each test gets a schema of its own (dropped afterwards),
reached through the URL's `search_path`, so the CLI can be handed the same URL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DatabaseError

from poise.warehouse import open_warehouse

POSTGRES_ENV = "POISE_TEST_POSTGRES_URL"
REPO_ROOT = Path(__file__).resolve().parent.parent


def postgres_base_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def _skip_without_postgres() -> None:
    if not postgres_base_url():
        pytest.skip(
            f"PostgreSQL half of the matrix: set {POSTGRES_ENV} "
            "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run it"
        )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'poise.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    _skip_without_postgres()
    base = postgres_base_url()
    assert base is not None
    schema_name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options={quote(f'-csearch_path={schema_name}')}"
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest) -> str:
    """A URL of an empty warehouse, once per engine."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Engine]:
    """A migrated, empty warehouse, once per engine."""
    engine = open_warehouse(warehouse_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_warehouse(sqlite_url: str) -> Iterator[Engine]:
    """A migrated, empty SQLite warehouse, for tests that need only one engine."""
    engine = open_warehouse(sqlite_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def replay_server() -> Iterator[Any]:
    """A loopback HTTP server replaying scripted API responses (see tests/replay.py)."""
    from replay import ReplayServer  # tests/ is on sys.path (pytest's rootdir-relative import)

    with ReplayServer() as server:
        yield server


@pytest.fixture
def http_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """What HTTP clients made in this test would have slept (back-off, rate limits): recorded, not slept."""
    from collectors.http import HttpClient

    waited: list[float] = []
    monkeypatch.setitem(HttpClient.__init__.__kwdefaults__, "sleep", waited.append)
    return waited


@pytest.fixture(scope="session")
def dashboard_demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite warehouse holding the demo organisation up to today (four months of it, to
    keep the suite quick), built once per session and shared by the dashboard tests."""
    from datetime import UTC, datetime

    from poise.demo import build_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    engine = open_warehouse(url)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    build_demo(engine, until=midnight, days=120)
    engine.dispose()
    return url


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the dashboard at a warehouse: its URL is part of every cache key, so a URL of
    a test starts with nothing cached and no engine opened."""

    def point(url: str) -> None:
        monkeypatch.setenv("POISE_DATABASE_URL", url)
        monkeypatch.delenv("POISE_CONFIG", raising=False)

    return point


@pytest.fixture(scope="session")
def malformed(tmp_path_factory: pytest.TempPathFactory) -> DatabaseError:
    """The error SQLite gives for a damaged page, as SQLAlchemy raises it (a real one: a
    file whose second page was overwritten)."""
    path = tmp_path_factory.mktemp("damaged") / "damaged.db"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE t (x TEXT)")
        connection.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
        connection.commit()
    with path.open("r+b") as damaged:
        damaged.seek(4096 * 2)
        damaged.write(b"\xff" * 200)
    engine = create_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(DatabaseError) as caught, engine.connect() as connection:
            connection.execute(text("SELECT count(*), max(x) FROM t")).all()
    finally:
        engine.dispose()
    assert getattr(caught.value.orig, "sqlite_errorname", None) == "SQLITE_CORRUPT"
    return caught.value


@pytest.fixture
def snapshots_taken(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], list[Any]]:
    """`watch(module)`: the read snapshots `module.read_snapshot` opens from then on."""
    from poise.warehouse.engine import read_snapshot

    def watch(module: Any) -> list[Any]:
        taken: list[Any] = []

        @contextmanager
        def recorded(engine: Engine) -> Iterator[Any]:
            with read_snapshot(engine) as connection:
                taken.append(connection)
                yield connection

        monkeypatch.setattr(module, "read_snapshot", recorded)
        return taken

    return watch

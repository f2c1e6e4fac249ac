"""A warehouse's life across Poise upgrades, as an organisation that has used it for months
meets it: an old warehouse opened by new code, one migrated by a newer Poise, a database
that is not a warehouse, an upgrade cut short, two commands upgrading at once.

Real SQLite files in tmp_path and, when POISE_TEST_POSTGRES_URL is set, the real
PostgreSQL server (a schema per test, see conftest.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, inspect, text

from poise.cli import main
from poise.warehouse import migrate, open_warehouse, schema
from poise.warehouse.engine import open_engine
from poise.warehouse.migrate import current_revision, head_revision

PERIOD = ["--from", "2026-07-01", "--to", "2026-08-01"]
OLD_REVISIONS = ("0001", "0002", "0003", "0004")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No poise.yaml or database URL from around the test."""
    monkeypatch.chdir(tmp_path)
    for name in ("POISE_CONFIG", "POISE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 7, day, hour, tzinfo=UTC)


def fill(connection: Connection) -> None:
    """Rows valid at every revision from 0001 on (no column a later one added): a month of
    one service's changes, deployments, a failure and its incident, an SLO and its
    samples, toil and pages."""
    stamp = at(1)
    connection.execute(
        schema.teams.insert(), [{"name": "payments", "size": 6, "source": "t", "updated_at": stamp}]
    )
    connection.execute(
        schema.services.insert(),
        [{"name": "checkout", "team": "payments", "source": "t", "updated_at": stamp}],
    )
    changes, deployments, links = [], [], []
    for day in range(1, 29):
        change, deployment = f"c{day}", f"d{day}"
        changes.append(
            {
                "id": change,
                "service": "checkout",
                "sha": f"{day:040x}",
                "committed_at": at(day, 9),
                "source": "t",
                "updated_at": stamp,
            }
        )
        deployments.append(
            {
                "id": deployment,
                "service": "checkout",
                "environment": "production",
                "status": "failure" if day % 7 == 0 else "success",
                "deployed_at": at(day, 9 + day % 5),
                "sha": f"{day:040x}",
                "source": "t",
                "updated_at": stamp,
            }
        )
        links.append({"deployment_id": deployment, "change_id": change})
    connection.execute(schema.changes.insert(), changes)
    connection.execute(schema.deployments.insert(), deployments)
    connection.execute(schema.deployment_changes.insert(), links)
    connection.execute(
        schema.incidents.insert(),
        [
            {
                "id": f"i{day}",
                "service": "checkout",
                "severity": "SEV2",
                "status": "resolved",
                "started_at": at(day, 12),
                "resolved_at": at(day, 15),
                "caused_by_deployment": f"d{day}",
                "source": "t",
                "updated_at": stamp,
            }
            for day in (7, 14)
        ],
    )
    connection.execute(
        schema.slos.insert(),
        [
            {
                "name": "checkout-availability",
                "service": "checkout",
                "target": 0.999,
                "window_days": 28,
                "source": "t",
                "updated_at": stamp,
            }
        ],
    )
    connection.execute(
        schema.sli_samples.insert(),
        [
            {
                "slo": "checkout-availability",
                "ts": at(1) + timedelta(hours=hour),
                "good": 1000.0 - (hour % 13 == 0),
                "total": 1000.0,
                "source": "t",
            }
            for hour in range(24 * 30)
        ],
    )
    connection.execute(
        schema.toil_entries.insert(),
        [
            {
                "team": "payments",
                "day": date(2026, 7, day),
                "category": "manual deploys",
                "hours": 3.0,
                "source": "t",
                "updated_at": stamp,
            }
            for day in range(1, 29, 3)
        ],
    )
    connection.execute(
        schema.oncall_pages.insert(),
        [
            {
                "id": f"p{day}",
                "service": "checkout",
                "team": "payments",
                "triggered_at": at(day, 3),
                "after_hours": True,
                "source": "t",
                "updated_at": stamp,
            }
            for day in (7, 14, 20)
        ],
    )


FILLED = {
    "teams": 1,
    "services": 1,
    "changes": 28,
    "deployments": 28,
    "deployment_changes": 28,
    "incidents": 2,
    "slos": 1,
    "sli_samples": 720,
    "toil_entries": 10,
    "oncall_pages": 3,
}


def build_at(url: str, revision: str) -> None:
    """A warehouse as Poise left it at `revision` (migrated that far and no further),
    holding the rows of `fill`."""
    from alembic import command

    engine = open_engine(url)
    try:
        with engine.begin() as connection:
            config = migrate._config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        with engine.begin() as connection:
            fill(connection)
    finally:
        engine.dispose()


def counts(url: str) -> dict[str, int]:
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
                for name in FILLED
            }
    finally:
        engine.dispose()


def tables_and_revision(url: str) -> tuple[set[str], list[str] | None]:
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            names = set(inspect(connection).get_table_names())
            rows = (
                connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
                if "alembic_version" in names
                else None
            )
    finally:
        engine.dispose()
    return names, rows


def scorecard(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["metrics", "--format", "json", "--db", url, *PERIOD]) == 0
    return json.loads(capsys.readouterr().out)


def failure(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one stderr line of a command that must fail cleanly."""
    capsys.readouterr()
    assert main(list(argv)) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    return lines[0]


@pytest.fixture
def reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The scorecard of the same rows in a warehouse made at head."""
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    engine = open_warehouse(url)
    with engine.begin() as connection:
        fill(connection)
    engine.dispose()
    return scorecard(url, capsys)


@pytest.mark.parametrize("revision", OLD_REVISIONS)
def test_an_old_warehouse_is_upgraded_in_place_with_its_rows_and_figures(
    warehouse_url: str,
    revision: str,
    reference: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    build_at(warehouse_url, revision)
    assert current_revision_of(warehouse_url) == revision
    document = scorecard(warehouse_url, capsys)  # any command upgrades it
    assert current_revision_of(warehouse_url) == head_revision()
    assert counts(warehouse_url) == FILLED
    assert document == reference
    assert document["dora"]["deployment_frequency"]["deployments"] == 24  # 4 failed


def current_revision_of(url: str) -> str | None:
    engine = open_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def test_a_warehouse_a_newer_poise_upgraded_is_refused_and_left_alone(
    warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    build_at(warehouse_url, head_revision() or "head")
    engine = open_engine(warehouse_url)
    with engine.begin() as connection:  # a colleague's newer Poise added revision 0099
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        connection.execute(text("CREATE TABLE newer_feature (x INTEGER)"))
    engine.dispose()
    before = tables_and_revision(warehouse_url)
    for argv in (["metrics", *PERIOD], ["gate", "--service", "checkout"]):
        line = failure(capsys, *argv, "--db", warehouse_url)
        assert "schema revision 0099" in line
        assert "a newer Poise has upgraded it; upgrade Poise to use it" in line
    assert tables_and_revision(warehouse_url) == before
    assert counts(warehouse_url) == FILLED


@pytest.mark.parametrize("tables", ["notes", "teams"])
def test_a_database_of_another_application_is_refused_and_left_alone(
    warehouse_url: str, tables: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tables but no alembic_version: Poise's tables were created among them by any
    command (a reader too), or, where a name was the same, the upgrade failed halfway
    with `database unavailable: table teams already exists` and left some behind."""
    engine = open_engine(warehouse_url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {tables} (id INTEGER PRIMARY KEY, body TEXT)"))
        connection.execute(text(f"INSERT INTO {tables} (id, body) VALUES (1, 'kept')"))
    engine.dispose()
    rows = tmp_path / "services.csv"
    rows.write_text("name,team\ncheckout,payments\n", encoding="utf-8")
    for argv in (["metrics", *PERIOD], ["import", "--kind", "services", str(rows)]):
        line = failure(capsys, *argv, "--db", warehouse_url)
        assert "is not a Poise warehouse: it holds tables (" in line
        assert tables in line
        assert tables_and_revision(warehouse_url) == ({tables}, None)
    engine = open_engine(warehouse_url)
    with engine.connect() as connection:
        assert connection.execute(text(f"SELECT body FROM {tables}")).scalar() == "kept"
    engine.dispose()


KILL_MIDWAY = """
import os, sys
from sqlalchemy import Engine, event
from poise.warehouse import open_warehouse

def cut(conn, cursor, statement, *args):
    # 0004 adds committer_at, then parents: die between the two, as kill -9 would
    if "parents" in statement:
        os._exit(9)

event.listen(Engine, "before_cursor_execute", cut)
open_warehouse(sys.argv[1])
"""


def test_an_upgrade_killed_halfway_is_rolled_back_and_the_next_run_completes(
    warehouse_url: str,
) -> None:
    """SQLite's driver committed each ALTER on its own: a process killed after the first
    column of 0004 left it there at revision 0003, and every later command failed with
    `duplicate column name: committer_at`."""
    build_at(warehouse_url, "0003")
    killed = subprocess.run(
        [sys.executable, "-c", KILL_MIDWAY, warehouse_url], capture_output=True, text=True
    )
    assert killed.returncode == 9, killed.stderr
    assert current_revision_of(warehouse_url) == "0003"
    engine = open_warehouse(warehouse_url)  # the next command
    try:
        assert current_revision(engine) == head_revision()
        columns = {column["name"] for column in inspect(engine).get_columns("changes")}
        assert {"committer_at", "parents"} <= columns
    finally:
        engine.dispose()
    assert counts(warehouse_url) == FILLED


SLOW_UPGRADE = """
import sys, time
from pathlib import Path
from sqlalchemy import Engine, event
from poise.warehouse import open_warehouse

def slow(conn, cursor, statement, *args):
    # halfway through 0004 (committer_at added, parents not yet): say so, and linger
    if "parents" in statement:
        Path(sys.argv[2]).write_text("midway")
        time.sleep(1.5)

event.listen(Engine, "before_cursor_execute", slow)
open_warehouse(sys.argv[1]).dispose()
print("upgraded")
"""


def test_two_commands_upgrading_one_warehouse_at_once_take_turns(
    warehouse_url: str, tmp_path: Path
) -> None:
    """A dashboard and a sync starting together after a new image: the second ran the
    same migration over the first's half-done one and failed (`duplicate column name`,
    on PostgreSQL an internal error once the first's lock was released)."""
    build_at(warehouse_url, "0003")
    signal = tmp_path / "midway"
    first = subprocess.Popen(
        [sys.executable, "-c", SLOW_UPGRADE, warehouse_url, str(signal)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not signal.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        engine = open_warehouse(warehouse_url)  # the second, while the first is midway
        try:
            assert current_revision(engine) == head_revision()
        finally:
            engine.dispose()
    finally:
        out, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    assert out.strip() == "upgraded"
    assert counts(warehouse_url) == FILLED


def read_only(url: str) -> str:
    if url.startswith("sqlite:///"):
        return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    from urllib.parse import quote

    return url + quote(" -cdefault_transaction_read_only=on")


def test_an_old_warehouse_that_refuses_writes_says_what_to_run(
    warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reader (a replica, a read-only file or role) cannot upgrade the schema; it said
    `the warehouse refused to write: …`, which a `poise metrics` user cannot act on."""
    build_at(warehouse_url, "0003")
    line = failure(capsys, "metrics", *PERIOD, "--db", read_only(warehouse_url))
    assert "is at schema revision 0003 and this Poise needs" in line
    assert "run poise sync once where it can be written" in line
    assert current_revision_of(warehouse_url) == "0003"
    assert counts(warehouse_url) == FILLED


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (["0004", "0005"], "records several schema revisions (0004, 0005)"),
        (["0003", "0004"], "records several schema revisions (0003, 0004)"),
        ([], "is not a Poise warehouse: it holds tables ("),
    ],
    ids=["two-rows-with-head", "two-rows", "no-row"],
)
def test_an_alembic_version_poise_never_writes_is_one_line(
    warehouse_url: str, versions: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several rows read as whichever came first (up to date, or an internal error from
    Alembic: `Requested revision 0004 overlaps…`); no row tried to create every table
    again (`database unavailable: table raw_payloads already exists`)."""
    build_at(warehouse_url, "0004")
    engine = open_engine(warehouse_url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
        for version in versions:
            connection.execute(text(f"INSERT INTO alembic_version VALUES ('{version}')"))
    engine.dispose()
    line = failure(capsys, "metrics", *PERIOD, "--db", warehouse_url)
    assert expected in line
    assert sorted(tables_and_revision(warehouse_url)[1] or []) == versions


REBUILD = '''"""probe: a column change SQLite can only make by rebuilding the table

Revision ID: {revision}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.alter_column("title", type_=sa.String(500), existing_nullable=True)


def downgrade() -> None:
    pass
'''


@pytest.fixture
def migrations_with_a_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Poise's migrations plus one that rebuilds `changes`, as the next one may."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    head = head_revision()
    assert head is not None
    rebuild = f"{int(head) + 1:04d}"
    (copy / "versions" / f"{rebuild}_probe_rebuild.py").write_text(
        REBUILD.format(revision=rebuild, down=head), encoding="utf-8"
    )
    migrate._chain.cache_clear()
    monkeypatch.setattr(migrate, "MIGRATIONS", copy)
    try:
        yield rebuild
    finally:
        monkeypatch.undo()
        migrate._chain.cache_clear()


def test_a_migration_that_rebuilds_a_table_keeps_the_rows_referring_to_it(
    sqlite_url: str, migrations_with_a_rebuild: str
) -> None:
    """On SQLite, Alembic's batch mode rebuilds a table for most column changes and drops
    the old one; with foreign keys on, that DELETE cascaded to every link of
    deployment_changes (ON DELETE CASCADE): the next such migration would have emptied
    them, and every lead time with them."""
    build_at(sqlite_url, "0005")
    engine = open_warehouse(sqlite_url)
    try:
        assert current_revision(engine) == migrations_with_a_rebuild
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    assert counts(sqlite_url) == FILLED


def test_an_up_to_date_warehouse_does_not_take_the_migration_lock(
    warehouse: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock and Alembic are for warehouses with something to apply only."""

    def refuse(*_: object) -> None:
        raise AssertionError("locked an up-to-date warehouse")

    monkeypatch.setattr(migrate, "_exclusive", refuse)
    assert migrate.upgrade(warehouse) is False


def test_a_page_on_a_warehouse_a_newer_poise_upgraded_says_so_without_a_traceback(
    tmp_path: Path, use: Any
) -> None:
    """`streamlit run app.py` without `poise ui` (which refuses before starting): the page
    opens the warehouse itself and shows the refusal in one message."""
    from streamlit.testing.v1 import AppTest

    url = f"sqlite:///{tmp_path / 'newer.db'}"
    build_at(url, head_revision() or "head")
    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    use(url)
    root = Path(__file__).resolve().parents[1]
    page = AppTest.from_file(str(root / "pages" / "overview.py"), default_timeout=60).run()
    assert not page.exception, [e.message for e in page.exception]
    assert [e.value.split(".**")[0] for e in page.error] == ["**Warehouse not usable"]
    assert "a newer Poise has upgraded it; upgrade Poise to use it" in page.error[0].value
    assert not page.metric

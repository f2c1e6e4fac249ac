"""`poise migrate-db`: a laptop's SQLite warehouse moved to PostgreSQL (and back) gives the
same `poise metrics` to the byte; every table of the schema is copied; a non-empty target is
refused unless --merge; a merge twice changes nothing; serial ids go on after the copied ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select, text

from poise.cli import main
from poise.commands.migrate_db import row_counts, tables
from poise.timeutil import utcnow
from poise.warehouse import open_warehouse, schema

UNTIL = "2026-10-01"
PERIODS = (
    ["--from", "2026-08-01", "--to", UNTIL],
    ["--quarter", "2026Q3", "--by-team"],
    ["--from", "2026-09-01", "--to", UNTIL, "--team", "billing", "--compare"],
)


@pytest.fixture(scope="module")
def demo_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A demo organisation (90 days) in SQLite, with a raw payload as a collector leaves one."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'laptop.db'}"
    assert main(["demo", "--db", url, "--days", "90", "--until", UNTIL]) == 0
    engine = open_warehouse(url)
    with engine.begin() as connection:
        connection.execute(
            insert(schema.raw_payloads),
            [
                {
                    "source": "github",
                    "stream": "pulls",
                    "scope": "checkout",
                    "request_method": "GET",
                    "request_url": f"https://api.github.com/repos/acme/checkout/pulls?page={n}",
                    "fetched_at": utcnow(),
                    "payload": "[]",
                }
                for n in range(3)
            ],
        )
    engine.dispose()
    # the release gate's ledger holds a JSON column: it must copy like the rest
    for service in ("billing-api", "search"):  # recorded (an --at answer would not be)
        assert main(["gate", "--db", url, "--service", service]) in (0, 3)
    return url


def metrics_json(url: str, period: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    capsys.readouterr()
    assert main(["metrics", "--db", url, "--format", "json", *period]) == 0
    return json.loads(capsys.readouterr().out)


def counts(url: str) -> dict[str, int]:
    engine = open_warehouse(url)
    try:
        with engine.connect() as connection:
            return row_counts(connection)
    finally:
        engine.dispose()


def test_every_schema_table_is_copied_parents_first() -> None:
    names = [table.name for table in tables()]
    assert set(names) == set(schema.metadata.tables)  # a table added later is covered
    for position, table in enumerate(tables()):
        for key in table.foreign_keys:
            assert names.index(key.column.table.name) < position or key.column.table is table


@pytest.mark.postgres
def test_sqlite_to_postgres_and_back_gives_the_same_metrics(
    demo_sqlite: str, postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate-db", "--from", demo_sqlite, "--to", postgres_url]) == 0
    shown = capsys.readouterr()
    assert "sli_samples" in shown.out and "raw_payloads" in shown.out
    source_counts = counts(demo_sqlite)
    assert counts(postgres_url) == source_counts
    assert source_counts["deployments"] > 100 and source_counts["sli_samples"] > 1000
    engine = open_warehouse(postgres_url)
    with engine.connect() as connection:  # the copy leaves the planner the tables' sizes
        planned = connection.scalar(
            text(
                "SELECT reltuples FROM pg_class WHERE relname = 'deployments' "
                "AND relnamespace = current_schema()::regnamespace"
            )
        )
    engine.dispose()
    assert planned == source_counts["deployments"]
    for period in PERIODS:
        assert metrics_json(postgres_url, period, capsys) == metrics_json(
            demo_sqlite, period, capsys
        ), period

    back = f"sqlite:///{tmp_path / 'back.db'}"
    assert main(["migrate-db", "--from", postgres_url, "--to", back]) == 0
    assert counts(back) == source_counts
    capsys.readouterr()
    for period in PERIODS:
        assert main(["metrics", "--db", back, "--format", "json", *period]) == 0
        on_back = capsys.readouterr().out
        assert main(["metrics", "--db", demo_sqlite, "--format", "json", *period]) == 0
        assert on_back == capsys.readouterr().out  # byte for byte


@pytest.mark.postgres
def test_postgres_serial_ids_go_on_after_the_copied_ones(
    demo_sqlite: str, postgres_url: str
) -> None:
    assert main(["migrate-db", "--from", demo_sqlite, "--to", postgres_url]) == 0
    engine = open_warehouse(postgres_url)
    try:
        with engine.begin() as connection:
            highest = connection.scalar(select(func.max(schema.raw_payloads.c.id)))
            new_id = connection.execute(
                insert(schema.raw_payloads).returning(schema.raw_payloads.c.id),
                {
                    "source": "github",
                    "stream": "pulls",
                    "scope": "checkout",
                    "request_method": "GET",
                    "request_url": "https://api.github.com/repos/acme/checkout/pulls?page=9",
                    "fetched_at": utcnow(),
                    "payload": "[]",
                },
            ).scalar_one()
        assert new_id > highest
    finally:
        engine.dispose()


def test_the_gate_ledger_is_copied_with_its_details(demo_sqlite: str, tmp_path: Path) -> None:
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    assert main(["migrate-db", "--from", demo_sqlite, "--to", copy]) == 0
    assert counts(copy) == counts(demo_sqlite)

    def ledger(url: str) -> list[tuple]:
        engine = open_warehouse(url)
        try:
            with engine.connect() as connection:
                table = schema.gate_decisions
                return [
                    tuple(row) for row in connection.execute(select(table).order_by(table.c.id))
                ]
        finally:
            engine.dispose()

    copied = ledger(copy)
    assert len(copied) == 2 and copied == ledger(demo_sqlite)
    details = [value for row in copied for value in row if isinstance(value, dict)]
    assert len(details) == 2  # the details came back as JSON objects, not text


def test_a_non_empty_target_is_refused_unless_merge(
    demo_sqlite: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"sqlite:///{tmp_path / 'shared.db'}"
    assert main(["migrate-db", "--from", demo_sqlite, "--to", target]) == 0
    first = counts(target)
    capsys.readouterr()
    assert main(["migrate-db", "--from", demo_sqlite, "--to", target]) == 1
    err = capsys.readouterr().err
    assert "already holds rows" in err and "--merge" in err and "Traceback" not in err
    assert counts(target) == first  # nothing written

    assert main(["migrate-db", "--from", demo_sqlite, "--to", target, "--merge"]) == 0
    assert counts(target) == first  # an upsert of the same rows adds nothing


def test_merge_keeps_the_targets_own_rows(
    demo_sqlite: str, sqlite_warehouse: Engine, sqlite_url: str
) -> None:
    with sqlite_warehouse.begin() as connection:
        connection.execute(
            insert(schema.teams), {"name": "zz-own", "source": "config", "updated_at": utcnow()}
        )
    assert main(["migrate-db", "--from", demo_sqlite, "--to", sqlite_url, "--merge"]) == 0
    after = counts(sqlite_url)
    assert after["teams"] == counts(demo_sqlite)["teams"] + 1


def test_same_warehouse_and_bad_urls_are_one_line_errors(
    demo_sqlite: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate-db", "--from", demo_sqlite, "--to", demo_sqlite]) == 1
    assert "same warehouse" in capsys.readouterr().err
    assert main(["migrate-db", "--from", demo_sqlite, "--to", "nonsense://"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("poise: ") and "Traceback" not in err

"""Idempotent writes: new, updated and unchanged rows counted the same way on both engines."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from poise.warehouse import open_warehouse
from poise.warehouse import upsert as upsert_module
from poise.warehouse.schema import services, sli_samples, slos, teams, toil_entries
from poise.warehouse.sync_state import read_state, record_attempt, save_bookmark
from poise.warehouse.upsert import (
    COPY_FROM,
    UpsertCounts,
    execute_plan,
    plan_upsert,
    upsert_rows,
)

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def _teams(*rows: tuple[str, int | None]) -> list[dict]:
    return [{"name": name, "size": size, "source": "test"} for name, size in rows]


def _all(engine: Engine, table) -> list[tuple]:
    key = list(table.primary_key.columns)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(table).order_by(*key))]


def _upsert(engine: Engine, table, rows: list[dict], **kwargs) -> UpsertCounts:
    with engine.begin() as connection:
        return upsert_rows(connection, table, rows, **kwargs)


def test_new_rows_are_counted_as_new(warehouse: Engine) -> None:
    counts = _upsert(warehouse, teams, _teams(("payments", 6), ("search", 4)))
    assert (counts.new, counts.updated, counts.unchanged) == (2, 0, 0)
    assert counts.total == 2
    assert [row[:2] for row in _all(warehouse, teams)] == [("payments", 6), ("search", 4)]


def test_the_same_rows_again_change_nothing_not_even_updated_at(warehouse: Engine) -> None:
    _upsert(warehouse, teams, _teams(("payments", 6), ("search", 4)))
    before = _all(warehouse, teams)
    counts = _upsert(warehouse, teams, _teams(("payments", 6), ("search", 4)))
    assert (counts.new, counts.updated, counts.unchanged) == (0, 0, 2)
    assert _all(warehouse, teams) == before


def test_a_changed_row_is_updated_and_its_updated_at_moves(warehouse: Engine) -> None:
    _upsert(warehouse, teams, [{**_teams(("payments", 6))[0], "updated_at": T0}])
    counts = _upsert(
        warehouse,
        teams,
        [
            {"name": "payments", "size": 7, "source": "test", "updated_at": T0 + timedelta(1)},
            {"name": "search", "size": None, "source": "test", "updated_at": T0 + timedelta(1)},
        ],
    )
    assert (counts.new, counts.updated, counts.unchanged) == (1, 1, 0)
    rows = {row[0]: row for row in _all(warehouse, teams)}
    assert rows["payments"][1] == 7
    assert rows["payments"][4] == T0 + timedelta(1)


def test_only_bookkeeping_differs_then_the_row_is_unchanged(warehouse: Engine) -> None:
    _upsert(warehouse, teams, [{**_teams(("payments", 6))[0], "updated_at": T0}])
    counts = _upsert(
        warehouse, teams, [{**_teams(("payments", 6))[0], "updated_at": T0 + timedelta(1)}]
    )
    assert (counts.new, counts.updated, counts.unchanged) == (0, 0, 1)
    assert _all(warehouse, teams)[0][4] == T0


def test_null_to_value_and_back_counts_as_a_change(warehouse: Engine) -> None:
    _upsert(warehouse, teams, _teams(("payments", None)))
    assert _upsert(warehouse, teams, _teams(("payments", 3))).updated == 1
    assert _upsert(warehouse, teams, _teams(("payments", None))).updated == 1
    assert _upsert(warehouse, teams, _teams(("payments", None))).unchanged == 1


def test_composite_keys_and_dates(warehouse: Engine) -> None:
    _upsert(warehouse, teams, _teams(("payments", 6)))
    day = date(2026, 7, 1)
    rows = [
        {"team": "payments", "day": day, "category": "tickets", "hours": 2.5, "source": "t"},
        {"team": "payments", "day": day, "category": "restarts", "hours": 1.0, "source": "t"},
        {
            "team": "payments",
            "day": day + timedelta(1),
            "category": "tickets",
            "hours": 1.0,
            "source": "t",
        },
    ]
    assert _upsert(warehouse, toil_entries, rows).new == 3
    rows[1] = {**rows[1], "hours": 1.5}
    counts = _upsert(warehouse, toil_entries, rows)
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 2)
    stored = _all(warehouse, toil_entries)
    assert [(r[1], r[2], r[3]) for r in stored] == [
        (day, "restarts", 1.5),
        (day, "tickets", 2.5),
        (day + timedelta(1), "tickets", 1.0),
    ]


def test_timestamp_keys(warehouse: Engine) -> None:
    _upsert(warehouse, teams, _teams(("payments", 6)))
    _upsert(warehouse, services, [{"name": "checkout", "team": "payments", "source": "t"}])
    _upsert(
        warehouse,
        slos,
        [
            {
                "name": "avail",
                "service": "checkout",
                "target": 0.999,
                "window_days": 28,
                "source": "t",
            }
        ],
    )
    samples = [
        {"slo": "avail", "ts": T0 + timedelta(hours=h), "good": 99.0, "total": 100.0, "source": "t"}
        for h in range(3)
    ]
    assert _upsert(warehouse, sli_samples, samples).new == 3
    samples[2] = {**samples[2], "good": 98.0}
    counts = _upsert(warehouse, sli_samples, samples)
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 2)


def test_many_rows_across_lookup_chunks(warehouse: Engine) -> None:
    rows = _teams(*[(f"team-{i:04d}", i % 7) for i in range(1234)])
    assert _upsert(warehouse, teams, rows).new == 1234
    rows[1000] = {**rows[1000], "size": 99}
    counts = _upsert(warehouse, teams, rows)
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 1233)
    with warehouse.connect() as connection:
        assert connection.execute(select(func.count()).select_from(teams)).scalar() == 1234


@pytest.mark.parametrize("size", [10, COPY_FROM + 10], ids=["row-by-row", "bulk"])
def test_a_key_given_twice_in_a_batch_keeps_its_last_row(warehouse: Engine, size: int) -> None:
    rows = _teams(*[(f"team-{i:05d}", 1) for i in range(size)])
    rows.append({"name": "team-00003", "size": 42, "source": "test"})
    with warehouse.begin() as connection:
        upsert_rows(connection, teams, rows)
    sizes = {row[0]: row[1] for row in _all(warehouse, teams)}
    assert len(sizes) == size and sizes["team-00003"] == 42 and sizes["team-00004"] == 1


@pytest.mark.parametrize("size", [10, COPY_FROM + 10], ids=["row-by-row", "bulk"])
def test_a_nul_in_text_is_kept_by_sqlite_and_stood_in_for_on_postgresql(
    warehouse: Engine, size: int
) -> None:
    """PostgreSQL's text cannot hold U+0000: the batch goes in with U+FFFD instead of
    failing, and the transaction it was written in goes on."""
    rows = _teams(*[(f"team-{i:05d}", 1) for i in range(size)])
    rows[3] = {"name": "team-\x00-3", "size": 7, "source": "a\x00b"}
    with warehouse.begin() as connection:
        counts = upsert_rows(connection, teams, rows)
        upsert_rows(connection, teams, _teams(("after", 2)))
    assert counts.new == size
    stand_in = "\x00" if warehouse.dialect.name == "sqlite" else "\ufffd"
    with warehouse.connect() as connection:
        stored = {row.name: row for row in connection.execute(select(teams))}
    assert len(stored) == size + 1 and stored["after"].size == 2
    odd = stored[f"team-{stand_in}-3"]
    assert (odd.size, odd.source) == (7, f"a{stand_in}b")
    with warehouse.begin() as connection:  # the same rows again: nothing new, nothing changed
        again = upsert_rows(connection, teams, rows)
    assert (again.new, again.unchanged) == (0, size)


@pytest.mark.parametrize("size", [10, COPY_FROM + 10], ids=["row-by-row", "bulk"])
def test_a_compiled_plan_writes_a_nul_as_the_upsert_does(warehouse: Engine, size: int) -> None:
    """The importer's, the git collector's and migrate-db's path: positional rows."""
    plan = plan_upsert(warehouse.dialect, teams, ("name", "size", "source", "updated_at"))
    rows = [
        {"name": f"team-{i:05d}", "size": i, "source": "ok", "updated_at": T0} for i in range(size)
    ]
    rows[5]["source"] = "x\x00y"
    params = [plan.params(row) for row in rows]
    with warehouse.begin() as connection:
        assert execute_plan(connection, plan, params) == size
        upsert_rows(connection, teams, _teams(("after", 2)))
    stand_in = "\x00" if warehouse.dialect.name == "sqlite" else "\ufffd"
    with warehouse.connect() as connection:
        source = connection.scalar(select(teams.c.source).where(teams.c.name == "team-00005"))
        assert source == f"x{stand_in}y"
        assert connection.scalar(select(func.count()).select_from(teams)) == size + 1


def _written_one_row_at_a_time_and_many(
    tmp_path, monkeypatch: pytest.MonkeyPatch, batches: list[list[dict]], variables: int | None
) -> tuple[list, list]:
    """The same batches into two SQLite files: one row per statement, then many."""
    outcomes = []
    for name, values_from in (("rows", 10**9), ("values", upsert_module.VALUES_FROM)):
        monkeypatch.setattr(upsert_module, "VALUES_FROM", values_from)
        engine = open_warehouse(f"sqlite:///{tmp_path / name}.db")
        try:
            counts = []
            for batch in batches:
                with engine.begin() as connection:
                    if variables is not None:
                        driver = connection.connection.driver_connection
                        driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)
                    counts.append(upsert_rows(connection, teams, batch))
            outcomes.append((counts, _all(engine, teams)))
        finally:
            engine.dispose()
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("variables", [None, 600], ids=["default-limit", "lower-limit"])
def test_sqlite_many_rows_a_statement_write_what_one_row_a_statement_writes(
    tmp_path, monkeypatch: pytest.MonkeyPatch, variables: int | None
) -> None:
    """New, changed, unchanged and repeated keys, past one statement's rows and variables."""
    size = upsert_module.VALUES_ROWS * 2 + 37
    first = [
        {"name": f"team-{i:05d}", "size": i % 5, "source": "t", "updated_at": T0}
        for i in range(size)
    ]
    second = [
        {**row, "size": 99 if i % 97 == 0 else row["size"], "updated_at": T0 + timedelta(1)}
        for i, row in enumerate(first[::-1])
    ]
    second += [
        {"name": "team-00003", "size": 42, "source": "t", "updated_at": T0},
        {"name": "team-new", "size": None, "source": "t", "updated_at": T0},
    ]
    one_at_a_time, many = _written_one_row_at_a_time_and_many(
        tmp_path, monkeypatch, [first, second], variables
    )
    assert many == one_at_a_time
    counts, rows = many
    assert (counts[1].new, counts[1].updated) == (1, len(range(0, size, 97)) + 1)
    assert len(rows) == size + 1 and dict(row[:2] for row in rows)["team-00003"] == 42


def test_a_failing_bulk_write_raises_sqlalchemys_error(warehouse: Engine) -> None:
    """Many rows a statement still go through SQLAlchemy: a broken reference (or a locked
    database) is its exception, which the CLI and `poise sync` turn into one line."""
    rows = [
        {"name": f"svc-{i:03d}", "team": "nobody", "source": "t"}
        for i in range(upsert_module.VALUES_FROM * 3)
    ]
    with pytest.raises(IntegrityError), warehouse.begin() as connection:
        upsert_rows(connection, services, rows)
    assert _all(warehouse, services) == []


def test_bulk_batches_write_every_type(warehouse: Engine) -> None:
    """Enough rows for PostgreSQL's COPY path: timestamps, dates, floats, nulls, booleans."""
    _upsert(warehouse, teams, _teams(("payments", 6)))
    day = date(2026, 7, 1)
    rows = [
        {
            "team": "payments",
            "day": day + timedelta(days=i // 3),
            "category": f"c{i % 3}",
            "hours": i / 4,
            "source": "t",
            "updated_at": T0 + timedelta(minutes=i),
        }
        for i in range(COPY_FROM * 2)
    ]
    assert _upsert(warehouse, toil_entries, rows).new == COPY_FROM * 2
    rows[7] = {**rows[7], "hours": 99.5}
    counts = _upsert(warehouse, toil_entries, rows)
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, COPY_FROM * 2 - 1)
    stored = {(r[1], r[2]): (r[3], r[5]) for r in _all(warehouse, toil_entries)}
    assert stored[(day + timedelta(days=2), "c1")] == (99.5, T0 + timedelta(minutes=7))
    assert stored[(day, "c0")] == (0.0, T0)


def test_without_counting_new_carries_the_rows_written(warehouse: Engine) -> None:
    assert _upsert(warehouse, teams, _teams(("a", 1), ("b", 2)), count=False).new == 2
    assert _upsert(warehouse, teams, _teams(("a", 1), ("b", 3)), count=False).new == 1


def test_empty_input_writes_nothing(warehouse: Engine) -> None:
    assert _upsert(warehouse, teams, []) == UpsertCounts()


def test_a_plan_without_the_key_is_refused(warehouse: Engine) -> None:
    with pytest.raises(ValueError, match=r"needs its key columns \['name'\]"):
        plan_upsert(warehouse.dialect, teams, ["size", "source"])


def test_do_nothing_plan_leaves_existing_rows_alone(warehouse: Engine) -> None:
    _upsert(warehouse, teams, _teams(("payments", 6)))
    plan = plan_upsert(
        warehouse.dialect, teams, ["name", "size", "source", "updated_at"], update=False
    )
    assert "DO NOTHING" in plan.sql
    with warehouse.begin() as connection:
        written = execute_plan(
            connection,
            plan,
            [
                plan.params({"name": "payments", "size": 1, "source": "x", "updated_at": T0}),
                plan.params({"name": "search", "size": 2, "source": "x", "updated_at": T0}),
            ],
        )
    assert written == 1
    sizes = {row[0]: row[1] for row in _all(warehouse, teams)}
    assert sizes == {"payments": 6, "search": 2}


def test_sync_state_keeps_the_last_success_through_a_failure(warehouse: Engine) -> None:
    with warehouse.begin() as connection:
        save_bookmark(connection, "github", "deployments", "acme/checkout", {"since": "2026-07-01"})
        record_attempt(connection, "github", "deployments", "acme/checkout", error=None, new=3)
    with warehouse.begin() as connection:
        first = read_state(connection, "github", "deployments", "acme/checkout")
        record_attempt(connection, "github", "deployments", "acme/checkout", error="HTTP 502")
    with warehouse.connect() as connection:
        state = read_state(connection, "github", "deployments", "acme/checkout")
    assert state.bookmark == {"since": "2026-07-01"}
    assert state.last_error == "HTTP 502"
    assert first.last_success_at is not None
    assert state.last_success_at == first.last_success_at
    with warehouse.connect() as connection:
        empty = read_state(connection, "gitlab", "deployments", "x")
    assert (empty.bookmark, empty.last_success_at, empty.last_error) == (None, None, None)

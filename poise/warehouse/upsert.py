"""Idempotent writes: insert new rows, update changed ones, leave identical ones alone.

Loading the same data twice changes nothing, not even `updated_at`: the update only
fires when some other column differs. Both engines use the same statement shape
(`INSERT … ON CONFLICT (key) DO UPDATE … WHERE <something differs>`), sent through the
driver itself so that bulk loads stay close to bare-driver speed: on SQLite a batch goes
several hundred rows a statement (`VALUES (…), (…), …`), on PostgreSQL a large batch by
COPY into a scratch table and one `INSERT … SELECT`.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import chain
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.engine import Dialect

from poise.timeutil import to_sqlite_text, utcnow
from poise.warehouse.types import UTCDateTime

# Columns whose change alone does not make a row "updated".
BOOKKEEPING = frozenset({"updated_at", "raw_id", "computed_at"})
_IN_CHUNK = 500
VALUES_FROM = 50  # rows from which SQLite gets several rows per statement
VALUES_ROWS = 500
# psycopg's refusal of a NUL in text, and what is written instead (as the XLSX report does
# with what a cell cannot hold)
NUL_REFUSED = "cannot contain NUL"
NUL_STAND_IN = "\ufffd"
COPY_FROM = 1000  # rows from which PostgreSQL gets them by COPY rather than row by row


@dataclass
class UpsertCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self

    @property
    def total(self) -> int:
        return self.new + self.updated + self.unchanged


@dataclass
class UpsertPlan:
    """A compiled upsert for one table and one column list."""

    table: Table
    columns: tuple[str, ...]
    sql: str
    converters: tuple[Any, ...] = field(repr=False)
    # `ON CONFLICT …` on its own, and where the key is in a row (PostgreSQL's COPY path).
    conflict: str = field(default="", repr=False)
    key_positions: tuple[int, ...] = field(default=(), repr=False)

    # Only the columns that need converting are visited per row (bulk paths call this a lot).
    converted: tuple[tuple[int, Any], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.converted = tuple((i, c) for i, c in enumerate(self.converters) if c is not None)

    def params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        values = [row.get(name) for name in self.columns]
        for index, convert in self.converted:
            values[index] = convert(values[index])
        return tuple(values)


def _placeholder(dialect: Dialect) -> str:
    return "?" if dialect.paramstyle == "qmark" else "%s"


def _quote(dialect: Dialect, name: str) -> str:
    return dialect.identifier_preparer.quote(name)


def _converter(dialect: Dialect, column: Any) -> Any:
    if isinstance(column.type, UTCDateTime) and dialect.name == "sqlite":
        return _sqlite_timestamps()
    if isinstance(column.type, JSON):  # the driver takes text, not the dict SQLAlchemy reads
        return lambda value: value if value is None else json.dumps(value, sort_keys=True)
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return None
    if dialect.name == "sqlite" and python_type is date:
        return lambda value: value.isoformat() if isinstance(value, date) else value
    return None


def _sqlite_timestamps() -> Any:
    """Datetime -> SQLite text, remembering the last one: a batch's shared `updated_at`
    is converted once, not once per row."""
    last: list[Any] = [None, None]

    def convert(value: Any) -> Any:
        if value is last[0]:
            return last[1]
        text = to_sqlite_text(value) if isinstance(value, datetime) else value
        last[0], last[1] = value, text
        return text

    return convert


def _compared(dialect: Dialect, column: Any, expression: str) -> str:
    """A column as the upsert compares it: PostgreSQL's json type has no equality, jsonb has."""
    if isinstance(column.type, JSON) and dialect.name == "postgresql":
        return f"{expression}::jsonb"
    return expression


def plan_upsert(
    dialect: Dialect, table: Table, columns: Sequence[str], *, update: bool = True
) -> UpsertPlan:
    """Compile `INSERT … ON CONFLICT DO UPDATE … WHERE differs` for `columns` of `table`.

    With `update=False` an existing row is left exactly as it is (`DO NOTHING`).
    """
    key = [column.name for column in table.primary_key.columns]
    missing = [name for name in key if name not in columns]
    if missing:
        raise ValueError(f"upsert into {table.name} needs its key columns {missing}")
    quote = lambda name: _quote(dialect, name)  # noqa: E731
    target = quote(table.name)
    marks = ", ".join(_placeholder(dialect) for _ in columns)
    column_list = ", ".join(quote(name) for name in columns)
    updatable = [name for name in columns if name not in key]
    compared = [name for name in updatable if name not in BOOKKEEPING]
    conflict = f"ON CONFLICT ({', '.join(quote(k) for k in key)}) "
    if compared and update:
        differs = " IS NOT " if dialect.name == "sqlite" else " IS DISTINCT FROM "
        assignments = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in updatable)
        condition = " OR ".join(
            _compared(dialect, table.c[name], f"{target}.{quote(name)}")
            + differs
            + _compared(dialect, table.c[name], f"excluded.{quote(name)}")
            for name in compared
        )
        conflict += f"DO UPDATE SET {assignments} WHERE {condition}"
    else:
        conflict += "DO NOTHING"
    converters = tuple(_converter(dialect, table.c[name]) for name in columns)
    return UpsertPlan(
        table=table,
        columns=tuple(columns),
        sql=f"INSERT INTO {target} ({column_list}) VALUES ({marks}) {conflict}",
        converters=converters,
        conflict=conflict,
        key_positions=tuple(list(columns).index(name) for name in key),
    )


def execute_plan(connection: Connection, plan: UpsertPlan, params: list[tuple[Any, ...]]) -> int:
    """Run a compiled upsert over positional rows; returns rows inserted or changed."""
    if not params:
        return 0
    if connection.dialect.name == "postgresql":
        return _postgres_upsert(connection, plan, params)
    if connection.dialect.name == "sqlite" and len(params) >= VALUES_FROM:
        return _values_upsert(connection, plan, params)
    return _statement_upsert(connection, plan, params)


def _statement_upsert(
    connection: Connection, plan: UpsertPlan, params: list[tuple[Any, ...]]
) -> int:
    cursor = connection.exec_driver_sql(plan.sql, params)
    return max(cursor.rowcount, 0)


def _postgres_upsert(
    connection: Connection, plan: UpsertPlan, params: list[tuple[Any, ...]]
) -> int:
    """PostgreSQL's text cannot hold U+0000, which a JSON API, an imported file or a SQLite
    warehouse can: a batch holding one is written again with NUL_STAND_IN in its place,
    rather than failing the whole sync, import or copy on a title. The savepoint keeps the
    transaction usable after the refused attempt."""
    write = _copy_upsert if len(params) >= COPY_FROM else _statement_upsert
    try:
        with connection.begin_nested():
            return write(connection, plan, params)
    except Exception as exc:  # psycopg's DataError, bare (COPY) or wrapped by SQLAlchemy
        if NUL_REFUSED not in str(exc):
            raise
    return write(connection, plan, [_without_nul(row) for row in params])


def _without_nul(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_nul_stood_in(value) for value in row)


def _nul_stood_in(value: Any) -> Any:
    return value.replace("\x00", NUL_STAND_IN) if isinstance(value, str) else value


def _values_upsert(connection: Connection, plan: UpsertPlan, params: list[tuple[Any, ...]]) -> int:
    """SQLite's bulk path: many rows per statement (`VALUES (…), (…), …`).

    The same rows, written in the same order, with the same conflict rule, as one statement
    per row; but SQLite is entered once per few hundred rows instead of once per row, so
    the GIL is released and taken back that much less often (each entry gives it up), which
    is what a writer thread beside a parsing thread waits on.
    """
    width = len(plan.columns)
    driver = connection.connection.driver_connection
    assert driver is not None
    limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(VALUES_ROWS, limit // width))
    one = "(" + ", ".join("?" * width) + ")"
    head, tail = plan.sql.split(" VALUES ", 1)
    conflict = tail[len(one) :]
    changed = 0
    for start in range(0, len(params), per):
        part = params[start : start + per]
        sql = f"{head} VALUES {', '.join([one] * len(part))}{conflict}"
        # through SQLAlchemy, as every other statement: a locked or full database is its
        # OperationalError, which the CLI and `poise sync` turn into one line
        cursor = connection.exec_driver_sql(sql, tuple(chain.from_iterable(part)))
        changed += max(cursor.rowcount, 0)
    return changed


def _copy_upsert(connection: Connection, plan: UpsertPlan, params: list[tuple[Any, ...]]) -> int:
    """PostgreSQL's bulk path: COPY the rows into a scratch table, then one INSERT … SELECT.

    Several times faster than a statement per row. A key given twice keeps its last row, as
    a statement per row would end up with (one statement cannot change a row twice).
    """
    last = {tuple(row[i] for i in plan.key_positions): row for row in params}
    if len(last) < len(params):
        params = list(last.values())
    quote = lambda name: _quote(connection.dialect, name)  # noqa: E731
    columns = ", ".join(quote(name) for name in plan.columns)
    scratch = quote(f"poise_copy_{plan.table.name}_{zlib.crc32(columns.encode()):08x}")
    target = quote(plan.table.name)
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {scratch} ON COMMIT DROP AS "
            f"SELECT {columns} FROM {target} WITH NO DATA"
        )
        cursor.execute(f"TRUNCATE {scratch}")
        with cursor.copy(f"COPY {scratch} ({columns}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {scratch} {plan.conflict}"
        )
        return max(cursor.rowcount, 0)


def _existing_keys(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> set:
    key = [column.name for column in table.primary_key.columns]
    first = table.c[key[0]]
    wanted = {tuple(row[name] for name in key) for row in rows}
    firsts = sorted({k[0] for k in wanted})
    found: set = set()
    for start in range(0, len(firsts), _IN_CHUNK):
        chunk = firsts[start : start + _IN_CHUNK]
        query = table.select().with_only_columns(*[table.c[n] for n in key]).where(first.in_(chunk))
        for record in connection.execute(query):
            candidate = tuple(record)
            if candidate in wanted:
                found.add(candidate)
    return found


def upsert_rows(
    connection: Connection,
    table: Table,
    rows: Iterable[Mapping[str, Any]],
    *,
    count: bool = True,
) -> UpsertCounts:
    """Upsert dict rows (all with the same keys) into `table`.

    With `count`, the result says how many rows were new, updated and unchanged (one
    extra key lookup per batch); without it only `new` carries the rows written.
    """
    if connection.dialect.name == "postgresql":  # the key lookup below sends them too
        batch = [{name: _nul_stood_in(value) for name, value in row.items()} for row in rows]
    else:
        batch = [dict(row) for row in rows]
    if not batch:
        return UpsertCounts()
    if "updated_at" in table.c and "updated_at" not in batch[0]:
        now = utcnow()
        for row in batch:
            row["updated_at"] = now
    columns = list(batch[0].keys())
    plan = plan_upsert(connection.dialect, table, columns)
    existing = _existing_keys(connection, table, batch) if count else set()
    written = execute_plan(connection, plan, [plan.params(row) for row in batch])
    if not count:
        return UpsertCounts(new=written)
    distinct = len({tuple(row[c.name] for c in table.primary_key.columns) for row in batch})
    new = distinct - len(existing)
    updated = max(written - new, 0)
    return UpsertCounts(new=new, updated=updated, unchanged=distinct - new - updated)

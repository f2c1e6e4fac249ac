"""`poise migrate-db`: copy a whole warehouse to another database (a laptop's SQLite file to
the organisation's PostgreSQL, or back).

Every table of the schema is copied, in foreign-key order (`schema.metadata.sorted_tables`,
so a table added by a later migration is copied without a change here), in batches through
the same compiled upsert the collectors use. Both warehouses are first brought to the latest
schema. The copy is one transaction on the target: it lands whole or not at all. Row counts
are compared afterwards. A target that already holds rows is refused unless `--merge`, which
upserts into it (rows only the target has are kept; a row both have takes the source's values).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from rich.table import Table as RichTable
from sqlalchemy import Connection, Engine, Table, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from poise.console import err, out
from poise.errors import PoiseError
from poise.warehouse import open_warehouse, redact, schema
from poise.warehouse.engine import refresh_planner_statistics
from poise.warehouse.lock import sync_lock
from poise.warehouse.upsert import execute_plan, plan_upsert

NAME = "migrate-db"
HELP = "copy a whole warehouse to another database (e.g. SQLite to PostgreSQL)"
BATCH = 5_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="the warehouse to copy"
    )
    parser.add_argument(
        "--to", dest="target", required=True, metavar="URL", help="the warehouse to fill"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="copy into a target that already holds rows (upsert: its other rows are kept)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=BATCH, metavar="N", help=f"rows a batch (default {BATCH})"
    )


def tables() -> list[Table]:
    """Every table of the schema, parents before children."""
    return list(schema.metadata.sorted_tables)


def row_counts(connection: Connection) -> dict[str, int]:
    return {
        table.name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
        for table in tables()
    }


def _batches(connection: Connection, table: Table, size: int) -> Iterator[list[dict]]:
    query = select(table).order_by(*table.primary_key.columns)
    result = connection.execution_options(stream_results=True, yield_per=size).execute(query)
    for partition in result.mappings().partitions(size):
        yield [dict(row) for row in partition]


def copy_table(source: Connection, target: Connection, table: Table, size: int = BATCH) -> int:
    """Upsert every row of `table` from `source` into `target`; returns rows read."""
    plan = plan_upsert(target.dialect, table, [column.name for column in table.columns])
    copied = 0
    for batch in _batches(source, table, size):
        execute_plan(target, plan, [plan.params(row) for row in batch])
        copied += len(batch)
    return copied


def _advance_sequences(target: Connection) -> None:
    """PostgreSQL: ids copied explicitly leave a serial column's sequence behind; move it on."""
    if target.dialect.name != "postgresql":
        return
    for table in tables():
        for column in table.primary_key.columns:
            if column.autoincrement is not True:
                continue
            sequence = target.scalar(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            )
            if sequence is None:
                continue
            highest = target.scalar(select(func.max(column)))
            if highest is not None:
                target.execute(
                    text("SELECT setval(CAST(:sequence AS regclass), :value)"),
                    {"sequence": sequence, "value": int(highest)},
                )


def migrate(
    source_engine: Engine, target_engine: Engine, *, merge: bool = False, batch: int = BATCH
) -> tuple[dict[str, int], dict[str, int]]:
    """Copy every table; returns the row counts of (source, target) afterwards."""
    target_url = redact(str(target_engine.url))
    with source_engine.connect() as source, target_engine.begin() as target:
        before = row_counts(target)
        if any(before.values()) and not merge:
            held = ", ".join(f"{name} {count:,}" for name, count in before.items() if count)
            raise PoiseError(
                f"{target_url} already holds rows ({held}); copy into an empty warehouse, or "
                "give --merge to upsert into it"
            )
        for table in tables():
            copy_table(source, target, table, batch)
        _advance_sequences(target)
        refresh_planner_statistics(target, tables())  # the first reads plan with real sizes
        source_counts = row_counts(source)
        target_counts = row_counts(target)
        # A merge may leave the target with more rows than the source, never fewer.
        short = [
            f"{name}: {target_counts[name]:,} of {count:,}"
            for name, count in source_counts.items()
            if target_counts[name] < count or (not merge and target_counts[name] != count)
        ]
        if short:
            raise PoiseError(f"copy to {target_url} incomplete, rolled back: {'; '.join(short)}")
    return source_counts, target_counts


def _sqlite_file(url: str) -> str | None:
    """The real path of a SQLite warehouse's file (symlinks and `..` resolved, relative to
    the working folder as SQLite opens it); None for anything else."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None  # opening it says what is wrong
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database.startswith("file:"):
        return None
    return os.path.realpath(Path(database).expanduser())


def _same_sqlite_file(source: str, target: str) -> bool:
    """Whether two differently spelt URLs name one SQLite file (`/tmp/x/demo.db` and
    `../demo.db`, a symlink, a hard link). Asked before either is opened: the copy would
    otherwise stop at its own sync lock, blaming "another poise sync" with its own pid."""
    first, second = _sqlite_file(source), _sqlite_file(target)
    if first is None or second is None:
        return False
    if first == second:
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist yet: not the same file
        return False


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise PoiseError("--batch-size: give at least 1")
    if args.source == args.target or _same_sqlite_file(args.source, args.target):
        raise PoiseError("--from and --to name the same warehouse")
    # The source is only read: a missing SQLite file is a typo, not an empty warehouse to
    # copy (that would print a table of zeros and exit 0). The target may be new.
    source_engine = open_warehouse(args.source, create=False, origin="--from")
    try:
        target_engine = open_warehouse(args.target, origin="--to")
    except BaseException:
        source_engine.dispose()
        raise
    try:
        with ExitStack() as locks:  # no sync may write either side during the copy
            locks.enter_context(sync_lock(source_engine, args.source))
            locks.enter_context(sync_lock(target_engine, args.target))
            err.print(f"copying {redact(args.source)} to {redact(args.target)} …", markup=False)
            source_counts, target_counts = migrate(
                source_engine, target_engine, merge=args.merge, batch=args.batch_size
            )
    finally:
        source_engine.dispose()
        target_engine.dispose()
    summary = RichTable(title="poise migrate-db", title_justify="left")
    for heading in ("table", "source rows", "target rows"):
        summary.add_column(heading, justify="left" if heading == "table" else "right")
    for name, count in source_counts.items():
        summary.add_row(name, f"{count:,}", f"{target_counts[name]:,}")
    out.print(summary)
    return 0

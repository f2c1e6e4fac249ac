"""`poise import`: canonical rows from CSV or JSON Lines, for any tool without a collector.

A file is checked and written in one transaction: a bad row rejects the whole file with
`FILE:LINE: what is wrong` and nothing of it is kept. Importing the same file twice
changes nothing, and an optional column a file leaves out keeps what is stored (an empty
one clears it: docs/import.md, "Absent and empty"). Files are read in chunks, so memory
stays bounded however large they are, and each chunk is validated column by column
(vectorised) rather than row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, select

from poise.errors import ImportFileError
from poise.import_checks import RepeatedKeys, RowError, Validator, python_values
from poise.import_files import (
    Lines,
    blank_record,
    csv_chunks,
    csv_reader,
    detect_format,
    jsonl_chunks,
)
from poise.import_kinds import KINDS, Column, Kind
from poise.timeutil import to_sqlite_text, utcnow
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written, record_attempt
from poise.warehouse.upsert import execute_plan, plan_upsert

BULK_CACHE_KIB = 128 * 1024  # SQLite page cache while a file is written


@dataclass
class ImportResult:
    kind: str
    path: str
    rows: int = 0
    written: int = 0

    @property
    def unchanged(self) -> int:
        return self.rows - self.written


def _given_cells(frame: pd.DataFrame, kind: Kind) -> pd.DataFrame:
    """Which optional cells the file gives, one column of booleans per optional column.

    A CSV column in the header is given in every row, even where a cell is empty (an empty
    cell clears the stored value); a column the header leaves out is given in none. A JSON
    object gives the keys it has (`null` included, which clears); a key it leaves out is
    not given for that line. A cell not given keeps what the warehouse holds: reading it as
    empty would erase a stored `rollback_of` or `title` whenever an export drops a column.
    """
    optional = [column.name for column in kind.columns if not column.required]
    return pd.DataFrame(
        {name: frame[name].notna() if name in frame.columns else False for name in optional},
        index=frame.index,
    )


def _given_groups(kind: Kind, given: pd.DataFrame) -> Iterator[tuple[list[Column], np.ndarray]]:
    """The rows that give the same optional columns (a mask), each with the columns to write.

    Each group is written with only its own columns: the upsert leaves every other column
    of a stored row as it is, and compares only these to decide whether the row changed.
    """
    patterns, group_of_row = np.unique(given.to_numpy(dtype=bool), axis=0, return_inverse=True)
    for number, pattern in enumerate(patterns):
        named = set(given.columns[pattern])
        columns = [
            column
            for column in kind.columns
            if column.kind != "ids" and (column.required or column.name in named)
        ]
        yield columns, group_of_row == number


def _changes_by_deployment(
    ids: list[str], pairs: list[tuple[str, str, int]]
) -> dict[str, set[str]]:
    """The set of changes the file lists for each deployment (empty for none)."""
    listed: dict[str, set[str]] = {deployment: set() for deployment in ids}
    for deployment, change, _ in pairs:
        listed[deployment].add(change)
    return listed


def _batches(items: list[str], size: int = 500) -> Iterator[list[str]]:
    """`items` in lists of `size`: an `IN (…)` of a whole chunk would pass SQLite's limit."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Importer:
    def __init__(self, connection: Connection, kind: Kind, path: Path, source: str) -> None:
        self.connection = connection
        self.kind = kind
        self.path = path
        self.source = source
        # Text in the warehouse's fixed-width UTC form: SQLite stores it, PostgreSQL parses it.
        self.now_text = to_sqlite_text(utcnow())
        self.known = self._known_names()
        self.validator = Validator(kind, self.known)
        self.repeats = RepeatedKeys(kind.key)
        self.written = 0
        self.rows = 0
        self._refs_ready = False

    def _known_names(self) -> dict[str, set[str]]:
        wanted = {
            c.refers_to for c in self.kind.columns if c.refers_to in ("services", "teams", "slos")
        }
        tables = {"services": schema.services, "teams": schema.teams, "slos": schema.slos}
        known: dict[str, set[str]] = {}
        for name in wanted:
            table = tables[name]
            known[name] = {
                row[0]
                for row in self.connection.execute(table.select().with_only_columns(table.c.name))
            }
        return known

    def load_chunk(self, frame: pd.DataFrame) -> None:
        typed = self.validator.run(frame)
        if (repeat := self.repeats.first_repeat(typed)) is not None:
            key = ", ".join(
                f"{name} {str(frame.at[repeat, name]).strip()!r}" for name in self.kind.key
            )
            raise RowError(repeat, f"{key} appears earlier in the file")
        self.rows += len(typed)
        given = _given_cells(frame, self.kind)
        handler = getattr(self, f"_load_{self.kind.name}", None)
        if handler:
            handler(typed, given)
        else:
            self.written += self._write(typed, given)

    # --- writers -------------------------------------------------------------------------
    def _rows(self, typed: pd.DataFrame, columns: list[Column]) -> tuple[list[str], list[tuple]]:
        names = [column.target or column.name for column in columns]
        data = [python_values(typed[column.name]) for column in columns]
        return names, list(zip(*data, strict=True))

    def _write(self, typed: pd.DataFrame, given: pd.DataFrame) -> int:
        """Upsert the rows, each with the columns it gives; returns rows new or changed."""
        return sum(
            self._upsert(typed[rows], columns) for columns, rows in _given_groups(self.kind, given)
        )

    def _upsert(self, typed: pd.DataFrame, columns: list[Column]) -> int:
        names, rows = self._rows(typed, columns)
        extra_names: list[str] = []
        extra_values: tuple = ()
        table = self.kind.table
        if "source" in table.c:
            extra_names.append("source")
            extra_values += (self.source,)
        if "source_id" in table.c:
            extra_names.append("source_id")
        if "updated_at" in table.c:
            extra_names.append("updated_at")
        if "retired_at" in table.c:  # an SLO imported is in the figures, even one retired
            extra_names.append("retired_at")
        plan = plan_upsert(self.connection.dialect, table, names + extra_names)
        now = self.now_text if "updated_at" in extra_names else None
        params = []
        key_position = names.index(self.kind.key[0]) if self.kind.key[0] in names else 0
        for row in rows:
            values = row + extra_values
            if "source_id" in extra_names:
                values += (row[key_position],)
            if now is not None:
                values += (now,)
            if "retired_at" in extra_names:
                values += (None,)
            params.append(values)
        return execute_plan(self.connection, plan, params)

    def _load_services(self, typed: pd.DataFrame, given: pd.DataFrame) -> None:
        teams = sorted(set(typed["team"].tolist()))
        plan = plan_upsert(
            self.connection.dialect, schema.teams, ["name", "source", "updated_at"], update=False
        )
        execute_plan(self.connection, plan, [(team, self.source, self.now_text) for team in teams])
        self.written += self._write(typed, given)

    def _load_deployments(self, typed: pd.DataFrame, given: pd.DataFrame) -> None:
        self._defer_refs(typed, "rollback_of")
        self._defer_refs(typed, "remediation_of")
        ids = typed["id"].tolist()
        pairs = [
            (deployment, change, position)
            for position, deployment, change_text in zip(
                typed.index, ids, typed["change_ids"].fillna(""), strict=True
            )
            for change in dict.fromkeys(str(change_text).split())
        ]
        self._check_now(pairs, schema.changes.c.id, "change_ids", "change")
        listed = _changes_by_deployment(ids, pairs)
        stored = self._stored_changes(ids)
        relinked = {d for d, changes in listed.items() if changes != stored.get(d, set())}
        self._write_deployments(typed, given, relinked)
        # only the links that differ are rewritten, and a new deployment has none to drop
        self._relink(relinked & stored.keys(), [pair for pair in pairs if pair[0] in relinked])

    def _write_deployments(
        self, typed: pd.DataFrame, given: pd.DataFrame, relinked: set[str]
    ) -> None:
        """Upsert the rows and count them. The links are part of what a deployment is: one
        whose set of changes differs is changed even if its own row is not (counted once if
        both differ); the same changes in another order are no change."""
        # a set lookup per id: Series.isin of a large set is some ten times slower
        moved = np.fromiter((d in relinked for d in typed["id"]), bool, len(typed))
        self.written += self._write(typed[~moved], given[~moved])
        self._write(typed[moved], given[moved])
        self.written += int(moved.sum())

    def _stored_changes(self, ids: list[str]) -> dict[str, set[str]]:
        """The changes each of these deployments is stored with (absent: none, or new)."""
        stored: dict[str, set[str]] = {}
        links = schema.deployment_changes.c
        for batch in _batches(ids):
            for deployment, change in self.connection.execute(
                select(links.deployment_id, links.change_id).where(links.deployment_id.in_(batch))
            ):
                stored.setdefault(deployment, set()).add(change)
        return stored

    def _relink(self, unlinked: set[str], pairs: list[tuple[str, str, int]]) -> None:
        """Drop the stored links of the deployments `unlinked`, then write `pairs`."""
        links = schema.deployment_changes
        for batch in _batches(sorted(unlinked)):
            self.connection.execute(links.delete().where(links.c.deployment_id.in_(batch)))
        plan = plan_upsert(self.connection.dialect, links, ["deployment_id", "change_id"])
        execute_plan(
            self.connection, plan, [(deployment, change) for deployment, change, _ in pairs]
        )

    def _load_incidents(self, typed: pd.DataFrame, given: pd.DataFrame) -> None:
        self._defer_refs(typed, "caused_by_deployment")
        self.written += self._write(typed, given)

    # --- references checked against the warehouse ------------------------------------------
    def _refs_table(self) -> None:
        if self._refs_ready:
            return
        self.connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE poise_import_refs (position INTEGER, name VARCHAR(40), ref TEXT)"
        )
        self._refs_ready = True

    def _insert_refs(self, name: str, refs: list[tuple[int, str]]) -> None:
        self._refs_table()
        if self.connection.dialect.name == "postgresql":  # COPY: a statement per row is slow
            driver = self.connection.connection.driver_connection
            assert driver is not None
            with (
                driver.cursor() as cursor,
                cursor.copy("COPY poise_import_refs (position, name, ref) FROM STDIN") as copy,
            ):
                for position, ref in refs:
                    copy.write_row((position, name, ref))
            return
        mark = "?" if self.connection.dialect.paramstyle == "qmark" else "%s"
        self.connection.exec_driver_sql(
            f"INSERT INTO poise_import_refs (position, name, ref) VALUES ({mark}, {mark}, {mark})",
            [(position, name, ref) for position, ref in refs],
        )

    def _missing_ref(self, name: str, target: Any) -> tuple[int, str] | None:
        table = target.table.name
        column = target.name
        row = self.connection.exec_driver_sql(
            f"SELECT r.position, r.ref FROM poise_import_refs r LEFT JOIN {table} t "
            f"ON t.{column} = r.ref WHERE r.name = '{name}' AND t.{column} IS NULL "
            "ORDER BY r.position LIMIT 1"
        ).first()
        return (int(row[0]), str(row[1])) if row else None

    def _check_now(
        self, pairs: list[tuple[str, str, int]], target: Any, column: str, what: str
    ) -> None:
        if not pairs:
            return
        self._insert_refs("now", [(position, change) for _, change, position in pairs])
        missing = self._missing_ref("now", target)
        self.connection.exec_driver_sql("DELETE FROM poise_import_refs WHERE name = 'now'")
        if missing:
            raise RowError(
                missing[0], f"{column}: unknown {what} {missing[1]!r} (import {what}s first)"
            )

    def _defer_refs(self, typed: pd.DataFrame, column: str) -> None:
        refs = [
            (int(position), value)
            for position, value in typed[column].items()
            if isinstance(value, str) and value
        ]
        if refs:
            self._insert_refs(column, refs)

    def finish(self) -> None:
        if not self._refs_ready:
            return
        for column in ("rollback_of", "remediation_of", "caused_by_deployment"):
            missing = self._missing_ref(column, schema.deployments.c.id)
            if missing:
                raise RowError(missing[0], f"{column}: unknown deployment {missing[1]!r}")
        self.connection.exec_driver_sql("DROP TABLE poise_import_refs")


def _physical_line(path: Path, file_format: str, frame_lines: dict[int, int], position: int) -> int:
    if file_format == "jsonl":
        return frame_lines.get(position, position + 1)
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        lines = Lines(handle)
        reader = csv_reader(lines)
        previous_end = 0
        index = -1  # the header; blank lines are no records (pandas skips them too)
        for record in reader:
            if not blank_record(record, lines.last):
                if index == position:
                    return previous_end + 1
                index += 1
            previous_end = reader.line_num
    return position + 2


def import_file(
    engine: Engine,
    kind_name: str,
    path: str | Path,
    *,
    source: str = "import",
    on_read: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import one file of `kind_name`; all or nothing."""
    if kind_name not in KINDS:
        raise ImportFileError(f"unknown kind {kind_name!r} (kinds: {', '.join(KINDS)})")
    kind = KINDS[kind_name]
    file_path = Path(path)
    if file_path.is_dir():
        raise ImportFileError(f"{file_path}: is a folder, not a file (import its files one by one)")
    if not file_path.exists():
        raise ImportFileError(f"{file_path}: no such file")
    if not file_path.is_file():
        # A pipe or device can be read only once; the importer reads a file more than once
        # (the header, the rows, and again to find the line of a bad row).
        raise ImportFileError(f"{file_path}: not a regular file")
    try:
        with file_path.open("rb"):
            pass
    except OSError as exc:  # no permission, mostly: say so rather than fail on the first read
        raise ImportFileError(f"{file_path}: cannot read it ({exc.strerror or exc})") from None
    file_format = detect_format(file_path)
    chunks = jsonl_chunks if file_format == "jsonl" else csv_chunks
    result = ImportResult(kind=kind_name, path=str(file_path))
    jsonl_lines: dict[int, int] = {}
    try:
        with engine.begin() as connection, _bulk_cache(connection):
            importer = _Importer(connection, kind, file_path, source)
            for _start, frame in chunks(file_path, kind, on_read):
                if file_format == "jsonl":
                    jsonl_lines = dict(zip(frame.index, frame.attrs["lines"], strict=True))
                importer.load_chunk(frame)
            importer.finish()
            result.rows, result.written = importer.rows, importer.written
            if result.written:
                mark_written(connection)  # metrics.freshness: the derived tables are stale
            record_attempt(
                connection,
                "import",
                kind_name,
                file_path.name,
                error=None,
                new=result.written,
                unchanged=result.unchanged,
            )
    except RowError as exc:
        if file_format == "jsonl" and exc.position not in jsonl_lines:
            jsonl_lines = _jsonl_line_index(file_path, exc.position)
        line = _physical_line(file_path, file_format, jsonl_lines, exc.position)
        message = f"{file_path}:{line}: {exc.message}"
        _record_failure(engine, kind_name, file_path, message)
        raise ImportFileError(message) from None
    except ImportFileError as exc:
        _record_failure(engine, kind_name, file_path, str(exc))
        raise
    return result


@contextmanager
def _bulk_cache(connection: Connection) -> Iterator[None]:
    """A larger SQLite page cache while one file is written, back to normal afterwards.

    Links and reference checks touch large indexes at random; with SQLite's default 2 MiB
    cache that costs about a quarter of a big deployments import in CPU alone.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    normal = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(normal)}")


def _jsonl_line_index(path: Path, position: int) -> dict[int, int]:
    count = -1
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                count += 1
                if count == position:
                    return {position: number}
    return {}


def _record_failure(engine: Engine, kind_name: str, path: Path, message: str) -> None:
    with engine.begin() as connection:
        record_attempt(connection, "import", kind_name, path.name, error=message)

"""`poise import`: canonical rows from CSV or JSON Lines, for any tool without a collector.

A file is checked and written in one transaction: a bad row rejects the whole file with
`FILE:LINE: what is wrong` and nothing of it is kept. Importing the same file twice
changes nothing, and an optional column a file leaves out keeps what is stored (an empty
one clears it: docs/import.md, "Absent and empty"). Files are read in chunks, so memory
stays bounded however large they are, and each chunk is validated column by column
(vectorised) rather than row by row.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Table, select

from poise.config import SloConfig
from poise.errors import ImportFileError
from poise.timeutil import ISO_WITH_OFFSET, TimestampError, parse_timestamp, to_sqlite_text, utcnow
from poise.vocab import DEPLOYMENT_STATUSES
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written, record_attempt
from poise.warehouse.upsert import execute_plan, plan_upsert

CHUNK_ROWS = 50_000
MAX_INTEGER = 2**31 - 1  # the warehouse's INTEGER on both engines
# Python's datetime, and so every reader of the warehouse, knows only years 1 to 9999; an
# offset can push a timestamp written inside that range outside it once it is in UTC.
MIN_YEAR, MAX_YEAR = 1, 9999
NUMERIC_KINDS = ("count", "number", "fraction", "integer")
# Toil is logged per (team, day, category). A day has 24 hours, and no team Poise scores
# has a thousand people, so more than 24 × 1,000 hours in one row is a unit or export
# mistake (minutes, seconds, a cumulative total), not toil; and values far above it, up to
# 1e308, overflow the toil share computed from them.
MAX_TOIL_HOURS = 24 * 1_000
# SLI buckets are counts of events (requests, probes) in one bucket, an hour for Poise's
# collectors: 10^15 is a million billion, far beyond any service's events in an hour. A
# larger figure is no count of events (a unit or export mistake), and figures near 1e308
# overflow the sums taken over a window (infinity, then NaN and a wrong status).
MAX_SLI_EVENTS = 10**15
# An SLO's window as poise.yaml bounds it (poise/config.py): the figures look back this far,
# and a window of millions of days would reach before the calendar's first day.
MAX_WINDOW_DAYS = next(
    rule.le for rule in SloConfig.model_fields["window_days"].metadata if hasattr(rule, "le")
)
# Columns of free text: the only ones that may hold a NUL character. Every other text column
# is an id, a name or a reference, compared with others: PostgreSQL cannot store a NUL (the
# warehouse writes U+FFFD there instead), so such a value would differ between the engines.
FREE_TEXT = frozenset({"title", "author", "cause", "postmortem_url"})
# Python's csv module stops at 131,072 characters a field, pandas (which reads the rows) has
# no limit: the importer's own csv readers, which find the header and the line of a bad row,
# must read what pandas reads. 2^31 - 1 fits the C long the limit is kept in on every system.
CSV_FIELD_LIMIT = 2**31 - 1
# A lone surrogate (U+D800 to U+DFFF) is no Unicode character: UTF-8 cannot encode it, and
# neither engine can store it. JSON can write one (`"\ud800"`), and the JSON Lines reader
# decodes with 'surrogatepass' as json.loads does, so it reaches the values.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
# timeutil's pattern with the digits 0-9 only: \d would take '２０２６' (full-width digits).
# No re.ASCII flag: pandas hands a pattern without flags to pyarrow, many times faster.
_ISO_ASCII = re.compile(ISO_WITH_OFFSET.pattern.replace(r"\d", "[0-9]"))
_SPACE = re.compile(r"\s")  # Unicode whitespace, as str.split() splits change_ids
BULK_CACHE_KIB = 128 * 1024  # SQLite page cache while a file is written


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text | timestamp | count | number | integer | date | ids | status | fraction
    required: bool = True
    refers_to: str | None = None  # services | teams | slos | changes | deployments
    target: str | None = None  # warehouse column, when named differently


@dataclass(frozen=True)
class Kind:
    name: str
    table: Table
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    checks: tuple[Callable[[pd.DataFrame], tuple[pd.Series, str] | None], ...] = field(default=())

    @property
    def allowed(self) -> list[str]:
        return [column.name for column in self.columns]


def _good_within_total(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    return frame["good"] > frame["total"], "good is greater than total"


def _plausible_events(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    too_many = (frame["good"] > MAX_SLI_EVENTS) | (frame["total"] > MAX_SLI_EVENTS)
    message = ""
    if too_many.any():
        row = frame[too_many].iloc[0]
        name = "good" if row["good"] > MAX_SLI_EVENTS else "total"
        shown = repr(float(row[name])).removesuffix(".0")  # 1e+308, 1000000000000001
        message = (
            f"{name}: {shown} is more than {MAX_SLI_EVENTS:,} events in "
            "one bucket: not a count of events"
        )
    return too_many, message


def _resolved_after_start(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    resolved = frame["resolved_at"]
    return resolved.notna() & (resolved < frame["started_at"]), "resolved_at is before started_at"


def _acknowledged_after_start(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    acked = frame["acknowledged_at"]
    return acked.notna() & (acked < frame["started_at"]), "acknowledged_at is before started_at"


def _detected_after_start(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    detected = frame["detected_at"]
    return detected.notna() & (detected < frame["started_at"]), "detected_at is before started_at"


def _plausible_toil(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    too_many = frame["hours"] > MAX_TOIL_HOURS
    shown = format(frame["hours"][too_many].iloc[0], ".15g") if too_many.any() else ""
    return (
        too_many,
        f"hours: {shown} is more than {MAX_TOIL_HOURS:,} (24 hours of 1,000 people) for one "
        "team, day and category: not hours of toil (minutes, or a running total?)",
    )


def _positive_pr_number(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    # GitHub pull requests and GitLab merge requests are numbered from 1.
    # to_numeric: the column is all None (object) when the file leaves it out
    below = (pd.to_numeric(frame["pr_number"], errors="coerce") < 1).fillna(False)
    shown = str(frame["pr_number"][below].iloc[0]) if below.any() else ""
    return below, f"pr_number: {shown} is not a pull request's number (they start at 1)"


def _not_itself(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    return (
        (frame["rollback_of"] == frame["id"]) | (frame["remediation_of"] == frame["id"]),
        "a deployment cannot roll back or remediate itself",
    )


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "services",
            schema.services,
            (Column("name", "text"), Column("team", "text")),
            ("name",),
        ),
        Kind(
            "changes",
            schema.changes,
            (
                Column("id", "text"),
                Column("service", "text", refers_to="services"),
                Column("sha", "text"),
                Column("committed_at", "timestamp"),
                Column("merged_at", "timestamp", required=False),
                Column("pr_number", "integer", required=False),
                Column("title", "text", required=False),
                Column("author", "text", required=False),
            ),
            ("id",),
            (_positive_pr_number,),
        ),
        Kind(
            "deployments",
            schema.deployments,
            (
                Column("id", "text"),
                Column("service", "text", refers_to="services"),
                Column("environment", "text"),
                Column("deployed_at", "timestamp"),
                Column("status", "status"),
                Column("sha", "text"),
                Column("change_ids", "ids", refers_to="changes"),
                Column("rollback_of", "text", required=False, refers_to="deployments"),
                Column("remediation_of", "text", required=False, refers_to="deployments"),
            ),
            ("id",),
            (_not_itself,),
        ),
        Kind(
            "incidents",
            schema.incidents,
            (
                Column("id", "text"),
                Column("service", "text", refers_to="services"),
                Column("severity", "text"),
                Column("started_at", "timestamp"),
                Column("detected_at", "timestamp"),
                Column("acknowledged_at", "timestamp"),
                Column("resolved_at", "timestamp"),
                Column("caused_by_deployment", "text", required=False, refers_to="deployments"),
                Column("cause", "text", required=False),
                Column("title", "text", required=False),
                Column("postmortem_url", "text", required=False),
            ),
            ("id",),
            (_detected_after_start, _acknowledged_after_start, _resolved_after_start),
        ),
        Kind(
            "slos",
            schema.slos,
            (
                Column("name", "text"),
                Column("service", "text", refers_to="services"),
                Column("target", "fraction"),
                Column("window_days", "integer"),
            ),
            ("name",),
        ),
        Kind(
            "sli",
            schema.sli_samples,
            (
                Column("slo", "text", refers_to="slos"),
                Column("timestamp", "timestamp", target="ts"),
                Column("good", "count"),
                Column("total", "count"),
            ),
            ("slo", "timestamp"),
            (_plausible_events, _good_within_total),
        ),
        Kind(
            "toil",
            schema.toil_entries,
            (
                Column("team", "text", refers_to="teams"),
                Column("date", "date", target="day"),
                Column("hours", "count"),
                Column("category", "text"),
            ),
            ("team", "date", "category"),
            (_plausible_toil,),
        ),
    )
}

# Columns the contract lists as present but whose value may legitimately be empty.
# `changes.sha` is not among them: the contract gives every change a sha, and
# collectors/shipped.py finds a deployment's changes by it.
_MAY_BE_EMPTY = {
    ("incidents", "detected_at"),
    ("incidents", "acknowledged_at"),
    ("incidents", "resolved_at"),
    ("incidents", "severity"),
    ("deployments", "change_ids"),
    ("deployments", "sha"),
}


@dataclass
class ImportResult:
    kind: str
    path: str
    rows: int = 0
    written: int = 0

    @property
    def unchanged(self) -> int:
        return self.rows - self.written


class _RowError(Exception):
    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position  # index of the data record in the file (0-based)
        self.message = message


class _CountingReader(io.RawIOBase):
    """Wraps a binary file to report how many bytes were read, for the progress bar."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        if self._on_read and data:
            self._on_read(len(data))
        return len(data)


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    return "jsonl" if head.startswith(b"{") else "csv"


def _csv_chunks(
    path: Path, kind: Kind, on_read: Callable[[int], None] | None
) -> Iterator[tuple[int, pd.DataFrame]]:
    try:
        header, header_line = _csv_header(path)
        _comma_separated(path, header, line=header_line)
        _check_header(path, kind, header, line=header_line)
        with path.open("rb") as raw:
            stream = io.BufferedReader(_CountingReader(raw, on_read), buffer_size=1 << 20)
            reader = pd.read_csv(
                stream,
                dtype=str,
                keep_default_na=False,
                chunksize=CHUNK_ROWS,
                encoding="utf-8-sig",
                index_col=False,  # a row with an extra field is an error, not an index column
            )
            position = 0
            while (chunk := _next_chunk(reader)) is not None:
                chunk.columns = [name.strip() for name in header]
                chunk.index = pd.RangeIndex(position, position + len(chunk))
                position += len(chunk)
                yield position - len(chunk), chunk
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise _malformed_csv(path, len(header), str(exc).strip()) from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def _csv_header(path: Path) -> tuple[list[str], int]:
    """The header record and its line (blank lines before it are skipped, as pandas does)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        lines = _Lines(handle)
        reader = _csv_reader(lines)
        for record in reader:
            if not _blank(record, lines.last):
                return record, reader.line_num
    raise ImportFileError(f"{path}:1: empty file: expected a header row")


def _csv_reader(handle: Any, **options: Any) -> Any:
    csv.field_size_limit(CSV_FIELD_LIMIT)  # process-wide, and only ever raised
    return csv.reader(handle, **options)


class _Lines:
    """The lines of a file as csv.reader takes them, keeping the last one it took."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.last = ""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        self.last = next(self._handle)
        return self.last


def _blank(record: list[str], line: str) -> bool:
    """A line pandas skips: empty, or nothing but spaces and tabs (`"  "`, quoted, is a record)."""
    return not record or (len(record) == 1 and not line.strip(" \t\r\n"))


def _comma_separated(path: Path, header: list[str], *, line: int) -> None:
    """Refuse a header split by ';' or tabs (a spreadsheet's export in many locales), which
    would otherwise read as one unknown column named after the whole header."""
    if len(header) != 1:
        return  # commas split it: a ';' inside a quoted name is that name's business
    separator = max((";", "\t"), key=header[0].count)
    if header[0].count(separator):
        shown = "tabs" if separator == "\t" else repr(separator)
        raise ImportFileError(
            f"{path}:{line}: the columns are separated by {shown}: Poise reads "
            "comma-separated files"
        )


def _next_chunk(reader: Any) -> pd.DataFrame | None:
    with warnings.catch_warnings():
        # pandas only warns when the first data row has more fields than the header.
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return next(reader, None)


def _malformed_csv(path: Path, width: int, detail: str) -> ImportFileError:
    """Locate what pandas found malformed: its own line numbers count records, not lines."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = _csv_reader(handle, strict=True)
        start = 1
        try:
            for record in reader:
                if len(record) > width:
                    return ImportFileError(
                        f"{path}:{start}: malformed CSV: {len(record)} fields, "
                        f"the header has {width}"
                    )
                start = reader.line_num + 1
        except csv.Error as exc:
            return ImportFileError(f"{path}:{start}: malformed CSV: {exc}")
    return ImportFileError(f"{path}: malformed CSV: {detail.splitlines()[-1]}")


def _not_utf8(path: Path) -> ImportFileError:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return ImportFileError(
                    f"{path}:{number}: not UTF-8 text (byte {exc.start + 1} of the line)"
                )
    return ImportFileError(f"{path}: not UTF-8 text")


def _check_header(path: Path, kind: Kind, header: list[str], *, line: int) -> None:
    header = [name.strip() for name in header]
    repeated = [name for index, name in enumerate(header) if name in header[:index]]
    if repeated:
        raise ImportFileError(f"{path}:{line}: column {_shown(repeated[0])} appears twice")
    unknown = [name for name in header if name not in kind.allowed]
    if unknown:
        raise ImportFileError(
            f"{path}:{line}: unknown column {_shown(unknown[0])} for --kind {kind.name} "
            f"(columns: {', '.join(kind.allowed)})"
        )
    for column in kind.columns:
        if column.required and column.name not in header:
            raise ImportFileError(f"{path}:{line}: missing column {column.name!r}")


def _shown(name: str, limit: int = 60) -> str:
    """A column name for a message: a whole header line read as one name can be huge."""
    if len(name) <= limit:
        return repr(name)
    return f"{name[:limit]!r}… ({len(name):,} characters)"


class _JsonObject(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs in order, so a key given twice can be seen."""


class _JsonNumber(str):
    """A JSON number as written: `0.999` stays `0.999` and `12` stays `12`, as in CSV."""

    __slots__ = ()


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON does not have.
    raise ValueError(f"{name} is not a JSON value")


_JSON = json.JSONDecoder(
    object_pairs_hook=_JsonObject,  # keeps a repeated key, where a dict would keep the last
    parse_int=_JsonNumber,
    parse_float=_JsonNumber,
    parse_constant=_no_constant,
)


def _json_type(value: Any) -> str:
    if isinstance(value, _JsonObject):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _JsonNumber):
        return f"the number {value}"
    return "null" if value is None else "text"


def _json_cell(column: Column, value: Any) -> str:
    """One JSON value as the text a CSV cell would hold, or ValueError saying why not.

    Text is taken as it is and a number as written wherever text is expected (an export's
    numeric id `12345` is the id `12345`). Objects, arrays and true/false have no text form
    a person would mean, so they are refused rather than stored as Python's repr.
    """
    if value is None:
        return ""
    if column.kind == "ids":
        if isinstance(value, str):
            return value  # space-separated, as in CSV
        if not isinstance(value, list) or isinstance(value, _JsonObject):
            raise ValueError(f"expected an array of ids, got {_json_type(value)}")
        ids = []
        for item in value:
            if not isinstance(item, str):  # a string, or a _JsonNumber as written
                raise ValueError(f"expected an array of ids, got {_json_type(item)} in it")
            # The ids are stored space-separated on the way in: an id with a space would
            # silently become two ids, an empty one would vanish.
            if not item.strip() or item.split() != [item.strip()]:
                raise ValueError(f"{str(item)!r} in the array is not an id (empty or has a space)")
            ids.append(str(item).strip())
        return " ".join(ids)
    if isinstance(value, str):  # a string, or a _JsonNumber as written
        return str(value)
    wanted = "a number" if column.kind in NUMERIC_KINDS else "text"
    raise ValueError(f"expected {wanted}, got {_json_type(value)}")


def _jsonl_chunks(
    path: Path, kind: Kind, on_read: Callable[[int], None] | None
) -> Iterator[tuple[int, pd.DataFrame]]:
    records: list[dict[str, str]] = []
    lines: list[int] = []
    position = 0
    unreported = 0
    columns = {column.name: column for column in kind.columns}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            unreported += len(raw)
            if on_read and unreported >= 1 << 20:  # a progress bar per line would cost seconds
                on_read(unreported)
                unreported = 0
            stripped = raw.strip()
            if not stripped:
                continue
            try:
                # What json.loads does with bytes, with one decoder made once (not per line).
                text = stripped.decode(json.detect_encoding(stripped), "surrogatepass")
                record = _JSON.decode(text)
            except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
                raise ImportFileError(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(record, _JsonObject):
                raise ImportFileError(f"{path}:{number}: expected a JSON object per line")
            _check_header(path, kind, [key for key, _ in record], line=number)
            cells: dict[str, str] = {}
            for key, value in record:
                name = key.strip()
                if type(value) is str:  # the common case, without a call per value
                    cells[name] = value
                    continue
                try:
                    cells[name] = _json_cell(columns[name], value)
                except ValueError as exc:
                    raise ImportFileError(f"{path}:{number}: {name}: {exc}") from None
            if _SURROGATE_HINT.search(text):  # an escape such as \ud800, or one passed through
                _no_lone_surrogate(path, number, cells)
            records.append(cells)
            lines.append(number)
            if len(records) >= CHUNK_ROWS:
                yield position, _frame(records, kind, lines, position)
                position += len(records)
                records, lines = [], []
    if on_read and unreported:
        on_read(unreported)
    if records:
        yield position, _frame(records, kind, lines, position)
    elif position == 0:  # as for a CSV file without even a header: likely a failed export
        raise ImportFileError(f"{path}:1: empty file: expected one JSON object per line")


def _no_lone_surrogate(path: Path, number: int, cells: dict[str, str]) -> None:
    for name, value in cells.items():
        if found := _SURROGATE.search(value):
            raise ImportFileError(
                f"{path}:{number}: {name}: not valid Unicode text: a lone surrogate "
                f"{ascii(found.group())[1:-1]}"
            )


def _frame(records: list[dict[str, str]], kind: Kind, lines: list[int], start: int) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=[c.name for c in kind.columns])
    # A key an object leaves out stays missing (NaN): not given, so the stored value is kept
    # (see _given_cells), where `null` is "" and clears it.
    frame = frame.astype(object)
    frame.index = pd.RangeIndex(start, start + len(frame))
    frame.attrs["lines"] = lines
    return frame


def _first(mask: pd.Series) -> int | None:
    if not mask.any():
        return None
    return int(mask.idxmax())


def _first_spaced(values: pd.Series) -> int | None:
    """The first row whose value holds whitespace as str.split() sees it (which splits a
    deployment's change_ids): Python's Unicode \\s, searched over the joined column first."""
    texts = values.tolist()
    if not _SPACE.search("".join(texts)):
        return None
    return _first(pd.Series([bool(_SPACE.search(text)) for text in texts], index=values.index))


class _Validator:
    """Turns a chunk of strings into typed columns, or raises _RowError at the first bad row."""

    def __init__(self, kind: Kind, known: dict[str, set[str]]) -> None:
        self.kind = kind
        self.known = known
        # PostgreSQL refuses text longer than a VARCHAR; SQLite would keep it. Say so first.
        self.lengths = {
            column.name: length
            for column in kind.columns
            if (target := kind.table.c.get(column.target or column.name)) is not None
            and (length := getattr(target.type, "length", None))
        }

    def run(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=frame.index)
        for column in self.kind.columns:
            if column.name not in frame.columns:
                out[column.name] = None
                continue
            # A cell not given (a key a JSON object leaves out) is checked as an empty one.
            values = frame[column.name].fillna("").astype(str).str.strip()
            required_value = column.required and (self.kind.name, column.name) not in _MAY_BE_EMPTY
            empty = values == ""
            if required_value and (bad := _first(empty)) is not None:
                raise _RowError(bad, f"{column.name}: missing value")
            limit = self.lengths.get(column.name)
            if limit and (bad := _first(values.str.len() > limit)) is not None:
                raise _RowError(bad, f"{column.name}: longer than {limit} characters")
            if (
                column.kind in ("text", "ids")
                and column.name not in FREE_TEXT
                and (bad := _first(values.str.contains("\x00", regex=False))) is not None
            ):
                raise _RowError(bad, f"{column.name}: holds a NUL character")
            # A deployment names its changes space-separated: this id could never be named.
            if (self.kind.name, column.name) == ("changes", "id") and (
                bad := _first_spaced(values)
            ) is not None:
                raise _RowError(
                    bad,
                    f"id: {values[bad]!r} has a space in it: a deployment's change_ids are "
                    "separated by spaces, so no deployment could name this change",
                )
            out[column.name] = self._convert(column, values, empty)
        for check in self.kind.checks:
            result = check(out)
            if result is not None:
                mask, message = result
                if (bad := _first(mask.fillna(False))) is not None:
                    raise _RowError(bad, message)
        return out

    def _convert(self, column: Column, values: pd.Series, empty: pd.Series) -> pd.Series:
        kind = column.kind
        if kind == "timestamp":
            return self._timestamps(column, values, empty)
        if kind in ("count", "number", "fraction", "integer"):
            numbers = pd.to_numeric(values.where(~empty, None), errors="coerce")
            invalid = numbers.isna() & ~empty
            if (bad := _first(invalid)) is not None:
                raise _RowError(bad, f"{column.name}: {values[bad]!r} is not a number")
            # Before any other check: '-inf' is not "negative", and 'inf' is not "too large".
            if (bad := _first(np.isinf(numbers.fillna(0)))) is not None:
                raise _RowError(bad, f"{column.name}: {values[bad]!r} is not a finite number")
            finite = numbers.dropna()
            if kind == "count" and (bad := _first(numbers < 0)) is not None:
                raise _RowError(bad, f"{column.name}: negative value {values[bad]}")
            if kind == "fraction" and (bad := _first((numbers <= 0) | (numbers >= 1))) is not None:
                raise _RowError(bad, f"{column.name}: {values[bad]} is not between 0 and 1")
            if kind == "integer":
                whole = (finite % 1 == 0).reindex(numbers.index, fill_value=True)
                if (bad := _first(~whole)) is not None:
                    raise _RowError(bad, f"{column.name}: {values[bad]!r} is not a whole number")
                if column.name == "window_days" and (bad := _first(numbers < 1)) is not None:
                    raise _RowError(bad, f"{column.name}: must be at least 1")
                if (
                    column.name == "window_days"
                    and (bad := _first(numbers > MAX_WINDOW_DAYS)) is not None
                ):
                    raise _RowError(
                        bad,
                        f"{column.name}: {values[bad]} is more than {MAX_WINDOW_DAYS} days "
                        "(the longest window poise.yaml allows)",
                    )
                if (bad := _first(numbers.abs() > MAX_INTEGER)) is not None:
                    raise _RowError(bad, f"{column.name}: {values[bad]} is too large")
                return numbers.astype("Int64")
            return numbers
        if kind == "date":
            valid = values.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
            if (bad := _first(~valid & ~empty)) is not None:
                raise _RowError(bad, f"{column.name}: {values[bad]!r} is not a date (YYYY-MM-DD)")
            parsed = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
            if (bad := _first(parsed.isna() & ~empty)) is not None:
                raise _RowError(bad, f"{column.name}: {values[bad]!r} is not a valid date")
            # pandas reads year 0; Python's date, which reads the warehouse back, does not.
            if (bad := _first((parsed.dt.year < MIN_YEAR).fillna(False))) is not None:
                raise _RowError(bad, _out_of_range(column, values[bad], in_utc=False))
            return values
        if kind == "status":
            valid = values.isin(DEPLOYMENT_STATUSES)
            if (bad := _first(~valid)) is not None:
                raise _RowError(
                    bad,
                    f"{column.name}: {values[bad]!r} is not one of {', '.join(DEPLOYMENT_STATUSES)}",
                )
            return values
        if column.refers_to in self.known:
            known = self.known[column.refers_to]
            unknown = ~values.isin(known) & ~empty
            if (bad := _first(unknown)) is not None:
                singular = column.refers_to.rstrip("s")
                raise _RowError(bad, f"{column.name}: unknown {singular} {values[bad]!r}")
        return values.where(~empty, None)

    def _timestamps(self, column: Column, values: pd.Series, empty: pd.Series) -> pd.Series:
        written = values  # for messages: the value as the file has it
        lower_z = values.str.endswith("z")
        if lower_z.any():  # RFC 3339 allows it; pandas does not
            values = values.where(~lower_z, values.str[:-1] + "Z")
        # The warehouse keeps microseconds. Beyond them pandas switches to nanoseconds, whose
        # range is only the years 1677 to 2262, so drop digits 7 to 9 first (as Python's
        # fromisoformat does; more than 9 is no timestamp by the contract's pattern).
        if values.str.contains(r"\.[0-9]{7}", regex=True).any():
            values = values.str.replace(r"(\.[0-9]{6})[0-9]{1,3}(?![0-9])", r"\1", regex=True)
        shaped = values.str.match(_ISO_ASCII.pattern)
        if (bad := _first(~shaped & ~empty)) is not None:
            _parse_one(column, bad, written[bad])
            raise _RowError(bad, f"{column.name}: {written[bad]!r} is not an ISO 8601 timestamp")
        try:
            parsed = pd.to_datetime(values.where(~empty, None), utc=True, format="ISO8601")
        except (ValueError, OverflowError):
            # One by one, to name the row; if each parses alone, keep what they parse to.
            one_by_one = {
                position: _parse_one(column, int(position), written[position])
                for position in values[~empty].index
            }
            parsed = pd.Series(one_by_one, index=values.index, dtype="datetime64[us, UTC]")
        years = parsed.dt.year
        if (bad := _first(((years < MIN_YEAR) | (years > MAX_YEAR)).fillna(False))) is not None:
            raise _RowError(bad, _out_of_range(column, written[bad], in_utc=True))
        return parsed


def _parse_one(column: Column, position: int, text: str) -> Any:
    """The value parsed by the contract's own rules, or _RowError saying what is wrong."""
    if ISO_WITH_OFFSET.match(text.strip()) and not _ISO_ASCII.match(text.strip()):
        raise _RowError(
            position, f"{column.name}: {text!r} is not an ISO 8601 timestamp: digits must be 0-9"
        )
    try:
        return parse_timestamp(text)
    except TimestampError as exc:
        raise _RowError(position, f"{column.name}: {exc}") from None
    except OverflowError:  # astimezone(UTC) leaving Python's years 1 to 9999
        raise _RowError(position, _out_of_range(column, text, in_utc=True)) from None


def _out_of_range(column: Column, text: str, *, in_utc: bool) -> str:
    where = " in UTC" if in_utc else ""
    return (
        f"{column.name}: out of range: {text!r} is outside the years "
        f"{MIN_YEAR} to {MAX_YEAR}{where}"
    )


def _storage_text(stamps: pd.Series) -> list[str | None]:
    """Timestamps as the fixed-width UTC text the warehouse stores (both engines accept it)."""
    array = stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    texts = np.datetime_as_string(array, unit="us")
    missing = stamps.isna().to_numpy()
    return [
        None if gone else f"{value}Z" for value, gone in zip(texts.tolist(), missing, strict=True)
    ]


def _python_values(series: pd.Series) -> list[Any]:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return _storage_text(series)
    if str(series.dtype) == "Int64":
        return [None if pd.isna(v) else int(v) for v in series.tolist()]
    values = series.tolist()
    return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in values]


class _RepeatedKeys:
    """Finds a key that a file gives twice (which would make a second import rewrite it).

    Across chunks, each key read so far is kept as a 64-bit hash in one sorted array, 8 bytes
    a row; two different keys sharing a hash (about 1 in 10^7 for a file of two million
    rows) would be taken for a repeat, the price of not holding every key in memory.
    """

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = list(key)
        self.seen = np.empty(0, dtype=np.uint64)

    def first_repeat(self, typed: pd.DataFrame) -> int | None:
        hashes = pd.util.hash_pandas_object(typed[self.key], index=False).to_numpy()
        repeated = pd.Series(hashes).duplicated().to_numpy()
        if len(self.seen):
            slots = np.minimum(np.searchsorted(self.seen, hashes), len(self.seen) - 1)
            repeated = repeated | (self.seen[slots] == hashes)
        if repeated.any():
            return int(typed.index[int(repeated.argmax())])
        ordered = np.sort(hashes)
        slots = np.searchsorted(self.seen, ordered) + np.arange(len(ordered))
        merged = np.empty(len(self.seen) + len(ordered), dtype=np.uint64)
        old = np.ones(len(merged), dtype=bool)
        old[slots] = False
        merged[slots] = ordered
        merged[old] = self.seen
        self.seen = merged
        return None


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
        self.validator = _Validator(kind, self.known)
        self.repeats = _RepeatedKeys(kind.key)
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
            raise _RowError(repeat, f"{key} appears earlier in the file")
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
        data = [_python_values(typed[column.name]) for column in columns]
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
            raise _RowError(
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
                raise _RowError(missing[0], f"{column}: unknown deployment {missing[1]!r}")
        self.connection.exec_driver_sql("DROP TABLE poise_import_refs")


def _physical_line(path: Path, file_format: str, frame_lines: dict[int, int], position: int) -> int:
    if file_format == "jsonl":
        return frame_lines.get(position, position + 1)
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        lines = _Lines(handle)
        reader = _csv_reader(lines)
        previous_end = 0
        index = -1  # the header; blank lines are no records (pandas skips them too)
        for record in reader:
            if not _blank(record, lines.last):
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
    chunks = _jsonl_chunks if file_format == "jsonl" else _csv_chunks
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
    except _RowError as exc:
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

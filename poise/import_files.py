"""Reading an import file in chunks: CSV with a header row or JSON Lines, each chunk a frame
of text cells with the physical line each row came from, so that a bad row can be named
`FILE:LINE`; a file that is not what it claims (not UTF-8, a malformed CSV row, a JSON
value that is not an object) fails with one line saying where.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from poise.errors import ImportFileError
from poise.import_kinds import NUMERIC_KINDS, Column, Kind

CHUNK_ROWS = 50_000
# Python's csv module stops at 131,072 characters a field, pandas (which reads the rows) has
# no limit: the importer's own csv readers, which find the header and the line of a bad row,
# must read what pandas reads. 2^31 - 1 fits the C long the limit is kept in on every system.
CSV_FIELD_LIMIT = 2**31 - 1
# A lone surrogate (U+D800 to U+DFFF) is no Unicode character: UTF-8 cannot encode it, and
# neither engine can store it. JSON can write one (`"\ud800"`), and the JSON Lines reader
# decodes with 'surrogatepass' as json.loads does, so it reaches the values.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


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


def csv_chunks(
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
        lines = Lines(handle)
        reader = csv_reader(lines)
        for record in reader:
            if not blank_record(record, lines.last):
                return record, reader.line_num
    raise ImportFileError(f"{path}:1: empty file: expected a header row")


def csv_reader(handle: Any, **options: Any) -> Any:
    csv.field_size_limit(CSV_FIELD_LIMIT)  # process-wide, and only ever raised
    return csv.reader(handle, **options)


class Lines:
    """The lines of a file as csv.reader takes them, keeping the last one it took."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.last = ""

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        self.last = next(self._handle)
        return self.last


def blank_record(record: list[str], line: str) -> bool:
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
        reader = csv_reader(handle, strict=True)
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


def jsonl_chunks(
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

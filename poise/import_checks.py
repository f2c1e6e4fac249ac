"""Checking a chunk of an import file column by column (vectorised, not row by row): types,
required cells, ranges, the kind's plausibility rules and keys given twice; the first bad
row found is the `FILE:LINE` the whole file is rejected with.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from poise.import_kinds import (
    FREE_TEXT,
    MAX_INTEGER,
    MAX_WINDOW_DAYS,
    MAX_YEAR,
    MAY_BE_EMPTY,
    MIN_YEAR,
    Column,
    Kind,
)
from poise.timeutil import ISO_WITH_OFFSET, TimestampError, parse_timestamp
from poise.vocab import DEPLOYMENT_STATUSES

# timeutil's pattern with the digits 0-9 only: \d would take '２０２６' (full-width digits).
# No re.ASCII flag: pandas hands a pattern without flags to pyarrow, many times faster.
_ISO_ASCII = re.compile(ISO_WITH_OFFSET.pattern.replace(r"\d", "[0-9]"))
_SPACE = re.compile(r"\s")  # Unicode whitespace, as str.split() splits change_ids


class RowError(Exception):
    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position  # index of the data record in the file (0-based)
        self.message = message


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


class Validator:
    """Turns a chunk of strings into typed columns, or raises RowError at the first bad row."""

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
            required_value = column.required and (self.kind.name, column.name) not in MAY_BE_EMPTY
            empty = values == ""
            if required_value and (bad := _first(empty)) is not None:
                raise RowError(bad, f"{column.name}: missing value")
            limit = self.lengths.get(column.name)
            if limit and (bad := _first(values.str.len() > limit)) is not None:
                raise RowError(bad, f"{column.name}: longer than {limit} characters")
            if (
                column.kind in ("text", "ids")
                and column.name not in FREE_TEXT
                and (bad := _first(values.str.contains("\x00", regex=False))) is not None
            ):
                raise RowError(bad, f"{column.name}: holds a NUL character")
            # A deployment names its changes space-separated: this id could never be named.
            if (self.kind.name, column.name) == ("changes", "id") and (
                bad := _first_spaced(values)
            ) is not None:
                raise RowError(
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
                    raise RowError(bad, message)
        return out

    def _convert(self, column: Column, values: pd.Series, empty: pd.Series) -> pd.Series:
        kind = column.kind
        if kind == "timestamp":
            return self._timestamps(column, values, empty)
        if kind in ("count", "number", "fraction", "integer"):
            numbers = pd.to_numeric(values.where(~empty, None), errors="coerce")
            invalid = numbers.isna() & ~empty
            if (bad := _first(invalid)) is not None:
                raise RowError(bad, f"{column.name}: {values[bad]!r} is not a number")
            # Before any other check: '-inf' is not "negative", and 'inf' is not "too large".
            if (bad := _first(np.isinf(numbers.fillna(0)))) is not None:
                raise RowError(bad, f"{column.name}: {values[bad]!r} is not a finite number")
            finite = numbers.dropna()
            if kind == "count" and (bad := _first(numbers < 0)) is not None:
                raise RowError(bad, f"{column.name}: negative value {values[bad]}")
            if kind == "fraction" and (bad := _first((numbers <= 0) | (numbers >= 1))) is not None:
                raise RowError(bad, f"{column.name}: {values[bad]} is not between 0 and 1")
            if kind == "integer":
                whole = (finite % 1 == 0).reindex(numbers.index, fill_value=True)
                if (bad := _first(~whole)) is not None:
                    raise RowError(bad, f"{column.name}: {values[bad]!r} is not a whole number")
                if column.name == "window_days" and (bad := _first(numbers < 1)) is not None:
                    raise RowError(bad, f"{column.name}: must be at least 1")
                if (
                    column.name == "window_days"
                    and (bad := _first(numbers > MAX_WINDOW_DAYS)) is not None
                ):
                    raise RowError(
                        bad,
                        f"{column.name}: {values[bad]} is more than {MAX_WINDOW_DAYS} days "
                        "(the longest window poise.yaml allows)",
                    )
                if (bad := _first(numbers.abs() > MAX_INTEGER)) is not None:
                    raise RowError(bad, f"{column.name}: {values[bad]} is too large")
                return numbers.astype("Int64")
            return numbers
        if kind == "date":
            valid = values.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
            if (bad := _first(~valid & ~empty)) is not None:
                raise RowError(bad, f"{column.name}: {values[bad]!r} is not a date (YYYY-MM-DD)")
            parsed = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
            if (bad := _first(parsed.isna() & ~empty)) is not None:
                raise RowError(bad, f"{column.name}: {values[bad]!r} is not a valid date")
            # pandas reads year 0; Python's date, which reads the warehouse back, does not.
            if (bad := _first((parsed.dt.year < MIN_YEAR).fillna(False))) is not None:
                raise RowError(bad, _out_of_range(column, values[bad], in_utc=False))
            return values
        if kind == "status":
            valid = values.isin(DEPLOYMENT_STATUSES)
            if (bad := _first(~valid)) is not None:
                raise RowError(
                    bad,
                    f"{column.name}: {values[bad]!r} is not one of {', '.join(DEPLOYMENT_STATUSES)}",
                )
            return values
        if column.refers_to in self.known:
            known = self.known[column.refers_to]
            unknown = ~values.isin(known) & ~empty
            if (bad := _first(unknown)) is not None:
                singular = column.refers_to.rstrip("s")
                raise RowError(bad, f"{column.name}: unknown {singular} {values[bad]!r}")
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
            raise RowError(bad, f"{column.name}: {written[bad]!r} is not an ISO 8601 timestamp")
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
            raise RowError(bad, _out_of_range(column, written[bad], in_utc=True))
        return parsed


def _parse_one(column: Column, position: int, text: str) -> Any:
    """The value parsed by the contract's own rules, or RowError saying what is wrong."""
    if ISO_WITH_OFFSET.match(text.strip()) and not _ISO_ASCII.match(text.strip()):
        raise RowError(
            position, f"{column.name}: {text!r} is not an ISO 8601 timestamp: digits must be 0-9"
        )
    try:
        return parse_timestamp(text)
    except TimestampError as exc:
        raise RowError(position, f"{column.name}: {exc}") from None
    except OverflowError:  # astimezone(UTC) leaving Python's years 1 to 9999
        raise RowError(position, _out_of_range(column, text, in_utc=True)) from None


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


def python_values(series: pd.Series) -> list[Any]:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return _storage_text(series)
    if str(series.dtype) == "Int64":
        return [None if pd.isna(v) else int(v) for v in series.tolist()]
    values = series.tolist()
    return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in values]


class RepeatedKeys:
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

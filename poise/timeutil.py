"""UTC-aware time helpers shared by every layer.

Poise never guesses a time zone: a timestamp without an offset is an error, and every
datetime that leaves this module is aware and in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

# ISO 8601 as the import contract states it: a date, a time, and an offset or Z.
ISO_WITH_OFFSET = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})$"
)
_HAS_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

# How SQLite stores a timestamp: fixed width, so text order is time order, and the Z says UTC.
SQLITE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class TimestampError(ValueError):
    """A timestamp that is malformed or has no offset."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries an offset (or Z) into an aware UTC datetime."""
    value = text.strip()
    if not ISO_WITH_OFFSET.match(value):
        if _HAS_TIME.match(value) and not re.search(r"(Z|z|[+-]\d{2}:?\d{2})$", value):
            raise TimestampError(f"timestamp {text!r} has no offset: add Z or +HH:MM")
        raise TimestampError(f"{text!r} is not an ISO 8601 timestamp with an offset")
    if value.endswith("z"):  # RFC 3339 allows it; fromisoformat (3.11) does not
        value = value[:-1] + "Z"
    offset = re.search(r"[+-](\d{2}):?(\d{2})$", value)
    if offset and (int(offset[1]) > 23 or int(offset[2]) > 59):
        raise TimestampError(f"{text!r}: the offset must be under 24 hours (e.g. +02:00)")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise TimestampError(f"{text!r} is not a valid timestamp ({exc})") from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-01:00 is in year 10000 in UTC
        raise TimestampError(f"{text!r} is outside the years 1 to 9999 in UTC") from None


def ensure_utc(value: datetime) -> datetime:
    """Return `value` in UTC; a naive datetime is a programming error."""
    if value.tzinfo is None:
        raise TimestampError(f"naive datetime {value!r}: Poise needs an aware datetime")
    return value.astimezone(UTC)


def to_sqlite_text(value: datetime) -> str:
    # SQLITE_FORMAT, via isoformat: twice as fast as strftime, and the year is always 4 digits
    return ensure_utc(value).isoformat(timespec="microseconds")[:26] + "Z"


def from_epoch_seconds(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def from_epoch_millis(millis: float) -> datetime:
    return datetime.fromtimestamp(millis / 1000.0, tz=UTC)


def isoformat_z(value: datetime) -> str:
    """`2026-07-01T00:00:00Z`: the form `poise metrics` prints."""
    value = ensure_utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def is_after_hours(moment: datetime, zone: str | tzinfo, start_hour: int, end_hour: int) -> bool:
    """Whether `moment` falls outside business hours: weekdays, `[start_hour, end_hour)` local time.

    Local time is `zone`'s at that instant (an IANA name such as `Europe/Berlin`), so a page
    at 07:30 UTC is after hours in Berlin in winter (08:30) and in hours in summer (09:30).
    """
    local = ensure_utc(moment).astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone)
    return local.weekday() >= 5 or not start_hour <= local.hour < end_hour


def start_of_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# The years a period may name: the figures look back (windows, the previous period, a
# history of weeks) and the calendar ends at 9999, so a bound near either end would
# overflow deep in the computation instead of being refused where it is given.
PERIOD_YEARS = (1900, 8999)


def parse_period_bound(text: str) -> datetime:
    """A period bound from the command line: a date (midnight UTC) or a full timestamp."""
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            moment = start_of_day(date.fromisoformat(value))
        except ValueError as exc:
            raise TimestampError(f"{text!r} is not a valid date ({exc})") from None
    else:
        moment = parse_timestamp(value)
    _in_period_years(text, moment.year)
    return moment


def _in_period_years(text: str, year: int) -> None:
    first, last = PERIOD_YEARS
    if not first <= year <= last:
        raise TimestampError(f"{text!r} is outside the years {first} to {last} a period may name")


def quarter_bounds(text: str) -> tuple[datetime, datetime]:
    """`2026Q3` -> [2026-07-01, 2026-10-01) in UTC."""
    match = re.fullmatch(r"(\d{4})-?[Qq]([1-4])", text.strip())
    if not match:
        raise TimestampError(f"{text!r} is not a quarter like 2026Q3")
    _in_period_years(text, int(match.group(1)))
    year, quarter = int(match.group(1)), int(match.group(2))
    start = datetime(year, 3 * (quarter - 1) + 1, 1, tzinfo=UTC)
    end = (
        datetime(year + 1, 1, 1, tzinfo=UTC)
        if quarter == 4
        else datetime(year, 3 * quarter + 1, 1, tzinfo=UTC)
    )
    return start, end


def quarter_of(value: datetime) -> str:
    value = ensure_utc(value)
    return f"{value.year}Q{(value.month - 1) // 3 + 1}"


def previous_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The period of the same length just before [start, end); quarters map to quarters."""
    if start.day == 1 and end.day == 1 and start.hour == end.hour == 0:
        months = (end.year - start.year) * 12 + end.month - start.month
        if months in (1, 3, 6, 12):
            month_index = start.year * 12 + start.month - 1 - months
            prev_start = datetime(month_index // 12, month_index % 12 + 1, 1, tzinfo=UTC)
            return prev_start, start
    length: timedelta = end - start
    return start - length, start

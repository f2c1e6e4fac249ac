"""UTC-only time: offsets are required, never guessed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from poise.timeutil import (
    TimestampError,
    ensure_utc,
    from_epoch_millis,
    from_epoch_seconds,
    isoformat_z,
    parse_period_bound,
    parse_timestamp,
    previous_period,
    quarter_bounds,
    quarter_of,
    start_of_day,
    to_sqlite_text,
    utcnow,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07-01T09:30:00Z", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
        ("2026-07-01T09:30:00z", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
        ("2026-07-01T11:30:00+02:00", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
        ("2026-07-01T04:30:00-0500", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
        ("2026-07-01 09:30Z", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
        ("2026-07-01T09:30:00.25Z", datetime(2026, 7, 1, 9, 30, 0, 250000, tzinfo=UTC)),
        ("  2026-07-01T09:30:00Z ", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
        ("2026-07-01T00:30:00+05:30", datetime(2026, 6, 30, 19, 0, tzinfo=UTC)),
    ],
)
def test_timestamps_with_an_offset_parse_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["2026-07-01T09:30:00", "2026-07-01 09:30", "2026-07-01T09:30:00.5"]
)
def test_a_timestamp_without_an_offset_is_an_error_not_a_guess(text: str) -> None:
    with pytest.raises(TimestampError, match="has no offset: add Z or \\+HH:MM"):
        parse_timestamp(text)


@pytest.mark.parametrize(
    "text", ["yesterday", "2026-07-01", "1719826200", "2026-13-01T00:00:00Z", ""]
)
def test_malformed_timestamps_are_errors(text: str) -> None:
    with pytest.raises(TimestampError):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("9999-12-31T23:59:59-01:00", "outside the years 1 to 9999 in UTC"),
        ("0001-01-01T00:00:00+01:00", "outside the years 1 to 9999 in UTC"),
        ("2026-01-01T00:00:00+99:99", "the offset must be under 24 hours"),
        ("2026-01-01T00:00:00+24:00", "the offset must be under 24 hours"),
    ],
)
def test_times_that_leave_the_calendar_in_utc_say_so(text: str, says: str) -> None:
    with pytest.raises(TimestampError, match=says):
        parse_timestamp(text)
    assert parse_timestamp("9999-12-31T23:59:59+01:00").year == 9999  # the edges still parse


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(TimestampError, match="naive datetime"):
        ensure_utc(datetime(2026, 7, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(TimestampError):
        to_sqlite_text(datetime(2026, 7, 1))  # noqa: DTZ001
    with pytest.raises(TimestampError):
        isoformat_z(datetime(2026, 7, 1))  # noqa: DTZ001


def test_aware_datetimes_are_converted_to_utc() -> None:
    tokyo = datetime(2026, 7, 1, 18, 0, tzinfo=timezone(timedelta(hours=9)))
    assert ensure_utc(tokyo) == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert ensure_utc(tokyo).utcoffset() == timedelta(0)
    assert utcnow().tzinfo is UTC


def test_storage_and_display_forms() -> None:
    value = datetime(2026, 7, 1, 9, 30, 0, 120000, tzinfo=UTC)
    assert to_sqlite_text(value) == "2026-07-01T09:30:00.120000Z"
    assert isoformat_z(value) == "2026-07-01T09:30:00.12Z"
    assert isoformat_z(datetime(2026, 7, 1, tzinfo=UTC)) == "2026-07-01T00:00:00Z"


def test_epochs_are_utc() -> None:
    assert from_epoch_seconds(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert from_epoch_millis(1_500) == datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    assert from_epoch_seconds(0).tzinfo is UTC


def test_period_bounds() -> None:
    assert parse_period_bound("2026-07-01") == datetime(2026, 7, 1, tzinfo=UTC)
    assert parse_period_bound("2026-07-01T12:00:00+02:00") == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert start_of_day(date(2026, 7, 1)) == datetime(2026, 7, 1, tzinfo=UTC)
    with pytest.raises(TimestampError, match="not a valid date"):
        parse_period_bound("2026-02-30")
    with pytest.raises(TimestampError, match="has no offset"):
        parse_period_bound("2026-07-01T12:00")


def test_quarters() -> None:
    assert quarter_bounds("2026Q3") == (
        datetime(2026, 7, 1, tzinfo=UTC),
        datetime(2026, 10, 1, tzinfo=UTC),
    )
    assert quarter_bounds("2026-q4") == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert quarter_of(datetime(2026, 9, 30, 23, 59, tzinfo=UTC)) == "2026Q3"
    with pytest.raises(TimestampError, match="not a quarter"):
        quarter_bounds("2026Q5")


def test_previous_period() -> None:
    start, end = quarter_bounds("2026Q1")
    assert previous_period(start, end) == quarter_bounds("2025Q4")
    month = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert previous_period(*month) == (datetime(2026, 2, 1, tzinfo=UTC), month[0])
    week = (datetime(2026, 7, 6, tzinfo=UTC), datetime(2026, 7, 13, tzinfo=UTC))
    assert previous_period(*week) == (datetime(2026, 6, 29, tzinfo=UTC), week[0])

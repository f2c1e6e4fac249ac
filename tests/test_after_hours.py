"""Business hours in a team's time zone: weekdays, [start, end) local time, DST included."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from poise.timeutil import TimestampError, is_after_hours, parse_timestamp


@pytest.mark.parametrize(
    ("moment", "zone", "after"),
    [
        # Berlin springs forward on Sunday 2025-03-30: 07:30 UTC is 08:30 the Monday before
        # (after hours) and 09:30 the Monday after (in hours).
        ("2025-03-24T07:30:00Z", "Europe/Berlin", True),
        ("2025-03-31T07:30:00Z", "Europe/Berlin", False),
        # New York falls back on Sunday 2025-11-02: 13:30 UTC is 09:30 EDT, then 08:30 EST.
        ("2025-10-27T13:30:00Z", "America/New_York", False),
        ("2025-11-03T13:30:00Z", "America/New_York", True),
        # The last in-hours minute and the first after-hours one (end is exclusive).
        ("2025-06-02T17:59:00+02:00", "Europe/Berlin", False),
        ("2025-06-02T18:00:00+02:00", "Europe/Berlin", True),
        ("2025-06-02T09:00:00+02:00", "Europe/Berlin", False),
        # Friday 23:30 UTC is Saturday morning in Tokyo: a weekend page there.
        ("2025-06-06T23:30:00Z", "Asia/Tokyo", True),
        ("2025-06-09T01:00:00Z", "Asia/Tokyo", False),
        # UTC teams: a plain weekday noon, and a Sunday noon.
        ("2025-06-04T12:00:00Z", "UTC", False),
        ("2025-06-08T12:00:00Z", "UTC", True),
    ],
)
def test_after_hours_in_the_team_time_zone(moment: str, zone: str, after: bool) -> None:
    assert is_after_hours(parse_timestamp(moment), zone, 9, 18) is after


def test_business_hours_may_end_at_midnight_and_zones_may_be_objects() -> None:
    late = parse_timestamp("2025-06-04T21:30:00Z")  # 23:30 in Berlin, a Wednesday
    assert is_after_hours(late, ZoneInfo("Europe/Berlin"), 9, 24) is False
    assert is_after_hours(late, ZoneInfo("Europe/Berlin"), 9, 23) is True


def test_a_naive_moment_is_refused() -> None:
    from datetime import datetime

    with pytest.raises(TimestampError, match="naive datetime"):
        is_after_hours(datetime(2025, 6, 4, 12), "UTC", 9, 18)  # noqa: DTZ001

"""The shortcuts the metrics take for speed give exactly what the plain pandas calls give."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, literal_column, select, text

from metrics.frames import TIME_DTYPE, collector_paused, read, sort_rows, to_utc
from metrics.people import Capacity
from poise.timeutil import to_sqlite_text

# hypothesis takes naive bounds and makes the values aware with `timezones`
INSTANTS = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001
    max_value=datetime(2090, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def _pandas_times(values: list[object]) -> pd.Series:
    """pandas' own parse, at the frames' one resolution (pandas picks one per call)."""
    parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
    return parsed.astype(TIME_DTYPE)


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), INSTANTS.map(to_sqlite_text)), min_size=1, max_size=30))
def test_sqlite_text_parses_to_the_same_instants_and_dtype(values: list[str | None]) -> None:
    ours = to_utc(pd.Series(values, dtype=object, index=range(5, 5 + len(values))))
    theirs = _pandas_times(values)
    assert ours.dtype == theirs.dtype
    assert list(ours.index) == list(range(5, 5 + len(values)))
    pd.testing.assert_series_equal(ours.reset_index(drop=True), theirs, check_names=False)


def test_other_text_and_datetimes_take_pandas_own_parser() -> None:
    cases = [
        ["2026-07-01T02:00:00+02:00", "2026-07-01T00:00:00.000000Z"],  # an offset
        ["2026-07-01T00:00:00Z"],  # no fraction
        [datetime(2026, 7, 1, 2, tzinfo=timezone(timedelta(hours=2))), None],  # PostgreSQL
        [None, None],  # nothing to parse
        ["2026-07-01 00:00:00.000000Z"],  # the right length, a space for the T
        ["2026-07-01T00:00:00.00000+1Z"],  # the right length, not a time
    ]
    for values in cases:
        try:
            theirs = _pandas_times(values)
        except ValueError:  # pandas refuses it: so must we
            with pytest.raises(ValueError):
                to_utc(pd.Series(values, dtype=object))
            continue
        ours = to_utc(pd.Series(values, dtype=object))
        assert ours.dtype == theirs.dtype
        pd.testing.assert_series_equal(ours, theirs, check_names=False)


def test_every_time_column_has_one_resolution_so_frames_concatenate() -> None:
    """pandas infers a resolution per parse (seconds for nulls, nanoseconds for nothing,
    microseconds for SQLite's text): frames read in chunks, one of them without a time or
    with no rows, concatenated into plain objects that no `.dt` could read."""
    chunks = [
        [],
        [None, None],
        ["2026-07-01T00:00:00.000000Z"],
        ["2026-07-01T00:00:00Z"],
        [datetime(2026, 7, 1, tzinfo=UTC)],
    ]
    columns = [to_utc(pd.Series(values, dtype=object)) for values in chunks]
    assert {str(column.dtype) for column in columns} == {TIME_DTYPE}
    joined = pd.concat([pd.DataFrame({"at": column}) for column in columns], ignore_index=True)
    assert str(joined["at"].dtype) == TIME_DTYPE
    assert joined["at"].dt.day.dropna().tolist() == [1, 1, 1]
    # far from 1970 too: a nanosecond resolution would end in 2262
    assert to_utc(pd.Series(["8999-12-31T00:00:00.000000Z"], dtype=object))[0].year == 8999


KEYS = st.sampled_from(["a", "b", "ab", "B", "é", "z9", "a0"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), KEYS, st.integers(0, 3)), max_size=25),
    st.booleans(),
)
def test_sort_rows_is_a_stable_sort(rows: list[tuple[int, str, int]], presort: bool) -> None:
    """Sorted or not on arrival, the rows come out as pandas' stable sort puts them."""
    frame = pd.DataFrame(rows, columns=["day", "name", "n"]).astype({"name": object})
    frame["at"] = pd.Timestamp("2026-07-01", tz="UTC") + pd.to_timedelta(frame["day"], unit="h")
    if presort:  # as an ORDER BY would deliver them
        frame = frame.sort_values(["at", "name"], kind="stable")
    expected = frame.sort_values(["at", "name"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(sort_rows(frame, ["at", "name"]), expected)


def test_sort_rows_with_nulls_or_mixed_types_sorts_as_pandas_does() -> None:
    frame = pd.DataFrame({"k": ["b", None, "a"], "v": [1, 2, 3]})
    expected = frame.sort_values(["k"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(sort_rows(frame, ["k"]), expected)
    mixed = pd.DataFrame({"k": pd.Series(["b", 1], dtype=object)})
    try:
        expected = mixed.sort_values(["k"], kind="stable").reset_index(drop=True)
    except TypeError:
        return  # pandas refuses too
    pd.testing.assert_frame_equal(sort_rows(mixed, ["k"]), expected)


def test_capacity_of_each_team_is_capacity_of_that_team() -> None:
    teams = pd.DataFrame(
        {
            "name": ["a", "b", "c", "d", "e"],
            "size": [6, None, 0, 4, None],
            "records_toil": [True, True, True, False, False],
            "records_pages": [True, False, True, False, True],
        }
    )
    for frame in (teams, teams[teams["size"].notna()].astype({"size": int})):
        each = Capacity.each(frame)
        assert list(each) == list(frame["name"])
        for name, capacity in each.items():
            assert capacity == Capacity.of(frame[frame["name"] == name])


def test_the_collector_resumes_as_it_was() -> None:
    assert gc.isenabled()
    try:
        with collector_paused():
            assert not gc.isenabled()
            with collector_paused():  # nested: the inner one leaves it paused
                pass
            assert not gc.isenabled()
            raise KeyError("boom")
    except KeyError:
        pass
    assert gc.isenabled()
    gc.disable()  # paused by someone else: stays paused
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_read_converts_columns_by_their_first_value() -> None:
    """Numbers after leading NULLs still become numbers; text stays text."""
    engine = create_engine("sqlite://")
    rows = select(
        literal_column("n"), literal_column("f"), literal_column("t"), literal_column("b")
    ).select_from(
        text(
            "(SELECT NULL AS n, NULL AS f, 'x' AS t, 1 AS b "
            "UNION ALL SELECT 2, 1.5, NULL, NULL UNION ALL SELECT 3, NULL, 'y', 0)"
        )
    )
    with engine.connect() as connection:
        frame = read(connection, rows)
    assert frame["n"].tolist()[1:] == [2.0, 3.0] and frame["n"].dtype == float
    assert frame["f"].dtype == float and frame["f"].tolist()[1] == 1.5
    assert frame["t"].tolist() == ["x", None, "y"]
    assert frame["b"].tolist()[::2] == [1.0, 0.0] and frame["b"].dtype == float

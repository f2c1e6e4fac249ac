"""Anomaly flags: weeks whose figures depart from the service's own recent history.

The rule (docs/guardrails.md), for each weekly series (a DORA figure of a service, of a
team or of the whole scope; an SLO's weekly SLI and its budget remaining at the week's end):

- the history of week w is the `history` (12) weeks before it; it needs at least
  `min_history` (8) of them with a value, else w is not judged (short series: no flags);
- m = median(history), MAD = median(|history − m|), scale = max(1.4826 · MAD, floor);
- w is flagged when |x_w − m| > k · scale, k = `threshold` (3.5).

1.4826 · MAD estimates the standard deviation of normal noise robustly (one wild week in
the history does not widen the band). `floor` is per figure: an absolute amount plus a
share of |m| (e.g. 5 percentage points of change fail rate; 10 % of the median lead time),
so a flat history (MAD = 0) flags only a real departure, never a rounding wobble.

Weeks run Monday 00:00 UTC to Monday; only whole weeks are judged (a partial week's count
is not comparable). A DORA series starts at its first week with a deployment in the loaded
range (before that the service may not have existed); weeks after that without
deployments count 0 deployments, and no rate.

Every series is judged at once: the series are the rows of one series × week matrix, and a
week's history is a slice of it (`_histories`), with the same arithmetic as `np.median` of
one series' history week by week (tests/test_anomalies.py checks the two agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from sqlalchemy import Engine

from metrics import attribution, delivery, sli
from metrics.frames import _slos, load
from metrics.freshness import is_fresh
from metrics.model import Period, Scope, Settings
from metrics.stats import settled, to_jsonable
from metrics.windows import window_for
from poise.config import AnomalyConfig
from poise.timeutil import ensure_utc
from poise.warehouse.engine import read_snapshot

MAD_SCALE = 1.4826
WEEK = timedelta(weeks=1)


@dataclass(frozen=True)
class Figure:
    label: str
    absolute_floor: float
    relative_floor: float
    worse: str  # the direction that is bad news: "above" or "below"


FIGURES: dict[str, Figure] = {
    "deployments": Figure("deployments", 1.0, 0.1, "below"),
    "lead_time_median_hours": Figure("lead time (median, h)", 1.0, 0.1, "above"),
    "change_failure_rate": Figure("change fail rate", 0.05, 0.0, "above"),
    "recovery_median_hours": Figure("recovery time (median, h)", 0.5, 0.1, "above"),
    "rework_rate": Figure("rework rate", 0.05, 0.0, "above"),
    # floors in units of the SLO's error budget are set per SLO (see `_slo_floor`)
    "sli": Figure("weekly SLI", 0.0, 0.0, "below"),
    "budget_remaining": Figure("budget remaining at week end", 0.05, 0.0, "below"),
}
DORA_FIGURES = tuple(name for name in FIGURES if name not in ("sli", "budget_remaining"))
# Levels carried from week to week (a budget over a 28-day window): once one leaves its
# usual range it stays out for weeks while its history catches up. A run of weeks out in
# the same direction is one finding, flagged at its first week.
LEVELS = frozenset({"budget_remaining"})
COLUMNS = [
    "level",
    "service",
    "team",
    "slo",
    "figure",
    "label",
    "week_start",
    "value",
    "sample",
    "median",
    "lower",
    "upper",
    "history_weeks",
    "score",
    "direction",
    "worse",
    "anomaly",
]
# a weekly series' values: `week` indexes the weeks loaded (history first)
SERIES_COLUMNS = ["level", "service", "team", "slo", "figure", "week", "value", "sample"]


@dataclass(frozen=True)
class Judgement:
    median: float | None
    lower: float | None
    upper: float | None
    history: int
    score: float | None
    anomaly: bool


def judge(
    values: Sequence[float | None],
    rule: AnomalyConfig,
    absolute_floor: float = 0.0,
    relative_floor: float = 0.0,
) -> list[Judgement]:
    """The rule applied to every position of one weekly series (None: no value)."""
    if not values:
        return []
    series = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    history = _histories(series[np.newaxis, :], rule.history_weeks)[0]
    floors = np.full(len(series), absolute_floor)
    verdicts = _verdicts(history, series, floors, relative_floor, rule)
    return [
        Judgement(float(middle), float(low), float(high), int(count), float(score), bool(hit))
        if not np.isnan(middle)
        else Judgement(None, None, None, int(count), None, False)
        for middle, low, high, count, score, hit in zip(*verdicts.values(), strict=True)
    ]


def _histories(matrix: np.ndarray, weeks: int) -> np.ndarray:
    """For a (series × week) matrix (NaN: no value), each cell's `weeks` previous values
    (series × week × weeks; NaN before the series' first week): a view, no copy."""
    padded = np.hstack([np.full((matrix.shape[0], weeks), np.nan), matrix])
    return sliding_window_view(padded, weeks, axis=1)[:, : matrix.shape[1]]


def _median(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `windows`, the median of its values that are not NaN (NaN for none), as
    `np.median` of those values gives it, and how many there are."""
    count = np.count_nonzero(~np.isnan(windows), axis=-1)
    ordered = np.sort(windows, axis=-1)  # NaN sorts last
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0)[:, None] // 2, axis=-1)[:, 0]
    high = np.take_along_axis(ordered, (count // 2)[:, None], axis=-1)[:, 0]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(count % 2 == 1, low, (low + high) / 2), count


def _verdicts(
    history: np.ndarray,
    values: np.ndarray,
    absolute_floor: np.ndarray,
    relative_floor: float | np.ndarray,
    rule: AnomalyConfig,
) -> dict[str, np.ndarray]:
    """The rule for many weeks at once: row i is a week with value `values[i]` and previous
    weeks `history[i]` (NaN: no value). `median`, `lower`, `upper` and `score` are NaN where
    the week is not judged (no value, or fewer than `rule.min_history_weeks` before it)."""
    middle, count = _median(history)
    judged = (count >= rule.min_history_weeks) & ~np.isnan(values)
    middle = np.where(judged, middle, np.nan)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mad, _ = _median(np.abs(history - middle[:, None]))
        scale = np.maximum(MAD_SCALE * mad, absolute_floor + relative_floor * np.abs(middle))
        # no floor and a flat history: any difference would be "infinite"
        flat = np.finfo(float).eps * np.maximum(1.0, np.abs(middle))
        scale = np.where(scale <= 0, flat, scale)
        band = rule.threshold * scale
        score = (values - middle) / scale
    return {
        "median": middle,
        "lower": middle - band,
        "upper": middle + band,
        "history": count,
        "score": score,
        "anomaly": judged & (np.abs(score) > rule.threshold),
    }


# -- weekly series from the warehouse ------------------------------------------------------


def judged_weeks(period: Period, now: datetime) -> list[datetime]:
    """The starts of the whole weeks that overlap the period and have ended by its end and
    by `now`."""
    end = min(ensure_utc(period.end), ensure_utc(now))
    first = pd.Timestamp(period.start).tz_convert("UTC").floor("D")
    first -= pd.Timedelta(days=first.weekday())
    weeks = []
    cursor = first.to_pydatetime()
    while cursor + WEEK <= end:
        if cursor + WEEK > period.start:
            weeks.append(cursor)
        cursor += WEEK
    return weeks


def _week_index(times: pd.Series, first: datetime, count: int) -> np.ndarray:
    """The week number of each time counted from `first` (-1 outside the `count` weeks)."""
    if times.empty:
        return np.array([], dtype=int)
    offsets = (pd.DatetimeIndex(times) - pd.Timestamp(first)) // pd.Timedelta(WEEK)
    index = np.asarray(offsets, dtype=int)
    index[(index < 0) | (index >= count)] = -1
    return index


def _dora_series(
    rows: pd.DataFrame, changes: pd.DataFrame, starts: list[datetime], settings: Settings, key: str
) -> pd.DataFrame:
    """Per value of `key` (`service` or `team`; "": the whole scope) and week, the DORA
    figures (SERIES_COLUMNS, one row per figure), all groups in one `delivery.dora_by` pass."""
    count = len(starts)
    names = rows[key] if key else pd.Series("", index=rows.index)
    known = pd.Index(names.dropna().unique())

    def group_of(frame: pd.DataFrame, frame_names: pd.Series) -> np.ndarray:
        """Each row's (name, week) as one integer, name × weeks + week (-1: no group)."""
        code = known.get_indexer(frame_names)
        week = _week_index(frame["deployed_at"], starts[0], count)
        return np.where((code >= 0) & (week >= 0), code * count + week, -1)

    group = group_of(rows, names)
    rows = rows.assign(group=group)
    change_names = changes[key] if key else pd.Series("", index=changes.index)
    changes = changes.assign(group=group_of(changes, change_names))
    active = group[group >= 0]
    first_week = pd.Series(active % count).groupby(active // count).min()
    periods = {
        code * count + week: Period(starts[week], starts[week] + WEEK)
        for code, first in first_week.items()
        for week in range(int(first), count)
    }
    if not periods:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    blocks = delivery.dora_by(rows, changes, periods, settings)
    # (value, sample) of each figure, in DORA_FIGURES order, one row per group
    cells = []
    for block in blocks.values():
        deployments = block["deployment_frequency"]["deployments"]
        cells.append(
            (
                (deployments, deployments),
                (block["lead_time"]["median_hours"], block["lead_time"]["changes"]),
                (block["change_failure_rate"]["rate"], deployments),
                (block["recovery_time"]["median_hours"], block["recovery_time"]["failures"]),
                (block["rework_rate"]["rate"], deployments),
            )
        )
    pairs = np.array(cells, dtype=float).reshape(-1, 2)  # None: NaN
    groups = len(blocks)
    codes = np.fromiter(blocks, dtype=np.int64, count=groups)
    series_names = np.repeat(known.to_numpy(dtype=object)[codes // count], len(DORA_FIGURES))
    if key == "service":
        teams = rows.drop_duplicates(key).set_index(key)["team"]
        team = pd.Series(series_names).map(teams).to_numpy(dtype=object)
    else:
        team = series_names if key == "team" else np.full(len(series_names), None)
    return pd.DataFrame(
        {
            "level": key or "scope",
            "service": series_names if key == "service" else None,
            "team": team,
            "slo": None,
            "figure": np.tile(np.array(DORA_FIGURES, dtype=object), groups),
            "week": np.repeat(codes % count, len(DORA_FIGURES)),
            "value": pairs[:, 0],
            "sample": pairs[:, 1].astype(np.int64),  # counts, never missing
        },
        columns=SERIES_COLUMNS,
    )


def _slo_floor(target: np.ndarray) -> np.ndarray:
    """A tenth of the error budget: a week at 0.1× burn more is not news."""
    return 0.1 * (1.0 - target)


def _slo_series(
    connection: Any, scope: Scope, starts: list[datetime], settings: Settings
) -> pd.DataFrame:
    """Per SLO and week (SERIES_COLUMNS and `target`): the week's SLI, and the budget
    remaining at the week's end over the SLO's window (as `reliability.evaluate` works it
    out). Weeks and windows both start at a midnight, so daily sums give them exactly: one
    array of every SLO's daily (good, total, samples), summed along the days once."""
    slos = _slos(connection, scope)
    if slos.empty:
        return pd.DataFrame(columns=[*SERIES_COLUMNS, "target"])
    windows = [window_for(slo, settings) for slo in slos.itertuples(index=False)]
    ends = [start + WEEK for start in starts]
    since = min([starts[0], *(w.at(ends[0])[0] for w in windows)])
    days = pd.date_range(since, ends[-1], freq="D", inclusive="left")
    daily = sli.daily_sums(
        connection, slos["name"].tolist(), since, ends[-1], rollup=is_fresh(connection)
    )
    names = pd.Index(slos["name"])
    sums = np.zeros((len(slos), len(days), 3))
    slo_row, day = names.get_indexer(daily["slo"]), days.get_indexer(daily["day"])
    kept = (slo_row >= 0) & (day >= 0)
    daily_sums = daily[["good", "total", "samples"]].to_numpy(dtype=float)
    sums[slo_row[kept], day[kept]] = daily_sums[kept]
    # prefix[i, d]: SLO i's sums over the days before days[d]
    prefix = np.concatenate([np.zeros((len(slos), 1, 3)), np.cumsum(sums, axis=1)], axis=1)
    week_from = days.searchsorted(pd.DatetimeIndex(starts))
    week_to = days.searchsorted(pd.DatetimeIndex(ends))
    distinct: dict[Any, int] = {}
    kinds = np.array([distinct.setdefault(window, len(distinct)) for window in windows])
    window_from = np.array(
        [days.searchsorted(pd.DatetimeIndex([w.at(end)[0] for end in ends])) for w in distinct]
    )[kinds]
    every = np.arange(len(slos))[:, None]
    week = prefix[:, week_to] - prefix[:, week_from]  # SLOs × weeks × (good, total, samples)
    window = prefix[every, week_to[None, :]] - prefix[every, window_from]
    # an SLO's series starts at its first week with a sample
    seen = np.logical_or.accumulate(week[:, :, 2].astype(int) > 0, axis=1)
    slo_index, week_index = np.nonzero(seen)
    good, events = week[slo_index, week_index, 0], week[slo_index, week_index, 1]
    window_good, window_total = window[slo_index, week_index, 0], window[slo_index, week_index, 1]
    target = slos["target"].to_numpy(dtype=float)[slo_index]
    with np.errstate(divide="ignore", invalid="ignore"):
        weekly_sli = np.where(events != 0, good / events, np.nan)
        budget = (1.0 - target) * window_total
        remaining = settled(1.0 - (window_total - window_good) / budget)
    remaining = np.where(window_total > 0, remaining, np.nan)
    picked = slos.iloc[slo_index]
    half = pd.DataFrame(
        {
            "level": "slo",
            "service": picked["service"].to_numpy(dtype=object),
            "team": picked["team"].to_numpy(dtype=object),
            "slo": picked["name"].to_numpy(dtype=object),
            "week": week_index,
            "target": target,
        }
    )
    return pd.concat(
        [
            half.assign(figure="sli", value=_finite(weekly_sli), sample=events),
            half.assign(figure="budget_remaining", value=_finite(remaining), sample=window_total),
        ],
        ignore_index=True,
    )[[*SERIES_COLUMNS, "target"]]


def _finite(values: np.ndarray) -> np.ndarray:
    """NaN for what `stats.finite` calls no value (inf, NaN)."""
    return np.where(np.isfinite(values), values, np.nan)


def weekly_judgements(
    engine: Engine,
    period: Period,
    scope: Scope | None = None,
    settings: Settings | None = None,
    rule: AnomalyConfig | None = None,
    *,
    now: datetime,
) -> pd.DataFrame:
    """Every judged week of every series in scope (COLUMNS), flagged or not.

    Series: each DORA figure of each service, of each team (when the scope is wider than
    a team), and of the scope as a whole; each SLO's weekly SLI and week-end budget. The
    judged weeks are the whole weeks overlapping `period` (ended by `now`); their histories
    reach `rule.history_weeks` further back.
    """
    scope = scope or Scope()
    settings = settings or Settings()
    rule = rule or AnomalyConfig()
    judged = judged_weeks(period, now)
    if not judged:
        return pd.DataFrame(columns=COLUMNS)
    starts = [judged[0] - WEEK * n for n in range(rule.history_weeks, 0, -1)] + judged
    loaded = Period(starts[0], starts[-1] + WEEK)
    with read_snapshot(engine) as connection:  # one state, whatever a sync commits meanwhile
        frames = load(connection, loaded, scope, settings)
        slo_rows = _slo_series(connection, scope, starts, settings)
    links = attribution.attribute(frames.incidents, frames.deployments, settings.attribution_window)
    rows = delivery.deployment_rows(
        frames.deployments, frames.fixers, links, frames.incidents, reasons=False
    )
    levels = (
        ["service"] + (["team"] if scope.is_org else []) + ([""] if scope.service is None else [])
    )
    series = [_dora_series(rows, frames.changes, starts, settings, level) for level in levels]
    series = [frame for frame in [*series, slo_rows] if not frame.empty]
    if not series:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.concat(series, ignore_index=True)
    if scope.team is not None:  # a team's own series is the team's, whatever its level is called
        frame.loc[frame["level"] == "scope", "team"] = scope.team
    return _judge_frame(frame, starts, rule, settings.min_sample)


SAMPLED = frozenset(
    {"lead_time_median_hours", "change_failure_rate", "recovery_median_hours", "rework_rate"}
)
KEYS = ["level", "service", "team", "slo", "figure"]


def _usable(frame: pd.DataFrame, min_sample: int) -> np.ndarray:
    """The values the rule may use (NaN: none): none for a rate or median resting on fewer
    than `min_sample` rows (the tiers' "insufficient data"), or an SLO week without events.
    A missing sample holds nothing back (NaN compares false)."""
    value = frame["value"].to_numpy(dtype=float, na_value=np.nan)
    sample = frame["sample"].to_numpy(dtype=float, na_value=np.nan)
    figure = frame["figure"]
    few = figure.isin(SAMPLED).to_numpy() & (sample < min_sample)
    no_events = figure.isin(["sli", "budget_remaining"]).to_numpy() & (sample == 0)
    return np.where(few | no_events, np.nan, value)


def judge_records(
    records: list[dict[str, Any]], starts: list[datetime], rule: AnomalyConfig, min_sample: int
) -> pd.DataFrame:
    """Judge weekly values: `records` hold level, service, team, slo, figure, week (index
    into `starts`), value, sample (and target for SLO figures). Weeks before
    `rule.history_weeks` are history only."""
    if not records:
        return pd.DataFrame(columns=COLUMNS)
    return _judge_frame(pd.DataFrame(records), starts, rule, min_sample)


def _judge_frame(
    frame: pd.DataFrame, starts: list[datetime], rule: AnomalyConfig, min_sample: int
) -> pd.DataFrame:
    """`judge_records` of a frame of records, every series at once: the series (KEYS) become
    the rows of a series × week matrix, each shown week's history a slice of it. A week
    given twice in a series keeps its last record."""
    frame = frame.reset_index(drop=True)
    # series numbered in sorted key order (missing keys last): the order rows are listed in
    # before the final sort, which keeps it among rows that tie
    series = frame.groupby(KEYS, dropna=False, sort=True).ngroup().to_numpy()
    week = frame["week"].to_numpy(dtype=int)
    value = _usable(frame, min_sample)
    last = ~pd.DataFrame({"series": series, "week": week}).duplicated(keep="last").to_numpy()
    matrix = np.full((series.max() + 1, len(starts)), np.nan)
    matrix[series[last], week[last]] = value[last]
    shown = np.flatnonzero(last & (week >= rule.history_weeks) & ~np.isnan(value))
    shown = shown[np.lexsort((week[shown], series[shown]))]

    names = frame["figure"].to_numpy(dtype=object)[shown]
    figures = [FIGURES[name] for name in names]
    first_row = np.unique(series, return_index=True)[1]  # a series' target: its first record's
    targets = frame["target"] if "target" in frame else pd.Series(np.nan, index=frame.index)
    target = targets.to_numpy(dtype=float, na_value=np.nan)[first_row][series[shown]]
    absolute = np.where(
        names == "sli", _slo_floor(target), [figure.absolute_floor for figure in figures]
    )
    relative = np.array([figure.relative_floor for figure in figures], dtype=float)
    histories = _histories(matrix, rule.history_weeks)
    verdicts = _verdicts(
        histories[series[shown], week[shown]], value[shown], absolute, relative, rule
    )
    level = np.isin(names, list(LEVELS))
    if level.any():  # a level's week out of range right after one out the same way: no flag
        rows, before = series[shown][level], week[shown][level] - 1
        earlier = _verdicts(
            histories[rows, np.maximum(before, 0)],
            np.where(before >= 0, matrix[rows, np.maximum(before, 0)], np.nan),
            absolute[level],
            relative[level],
            rule,
        )
        same_way = np.sign(earlier["score"]) == np.sign(verdicts["score"][level])
        verdicts["anomaly"][level] &= ~(earlier["anomaly"] & same_way)

    score = verdicts["score"]
    direction = np.where(score > 0, "above", np.where(score < 0, "below", None))
    worse = np.array([figure.worse for figure in figures], dtype=object)
    columns: dict[str, list[Any]] = {
        key: _none_for_missing(frame[key].to_numpy(dtype=object)[shown]) for key in KEYS
    }
    columns |= {
        "label": [figure.label for figure in figures],
        "week_start": [starts[w] for w in week[shown]],
        "value": value[shown].tolist(),
        "sample": frame["sample"].to_numpy()[shown].tolist(),
        **{
            name: _none_for_missing(verdicts[name])
            for name in ("median", "lower", "upper", "score")
        },
        "history_weeks": verdicts["history"].tolist(),
        "direction": direction.tolist(),
        "worse": (verdicts["anomaly"] & (direction == worse)).tolist(),
        "anomaly": verdicts["anomaly"].tolist(),
    }
    # built from plain Python values, so pandas infers each column's type as it does for
    # one dict per row (an all-missing column stays None; no rows: all columns objects)
    result = pd.DataFrame(columns if len(shown) else None, columns=COLUMNS)
    result["week_start"] = pd.to_datetime(result["week_start"], utc=True)
    for column in ("service", "team", "slo", "direction"):  # None, not NaN, for "none"
        result[column] = result[column].astype(object).where(result[column].notna(), None)
    order = ["week_start", "level", "service", "slo", "figure"]
    return result.sort_values(order, na_position="first").reset_index(drop=True)


def _none_for_missing(values: np.ndarray) -> list[Any]:
    """The values as Python objects, None for NaN or None."""
    objects = values.astype(object)
    objects[pd.isna(values)] = None
    return objects.tolist()


def flagged(judgements: pd.DataFrame) -> pd.DataFrame:
    """The anomalous weeks only."""
    return judgements[judgements["anomaly"].astype(bool)].reset_index(drop=True)


def as_json(judgements: pd.DataFrame) -> list[dict[str, Any]]:
    """The flagged weeks as `poise metrics` lists them (`anomalies`), each with a unique
    `name` (series and week) and a one-line `description`."""
    rows = flagged(judgements)
    out = []
    for _, row in rows.iterrows():
        entry = {column: _given(row, column) for column in COLUMNS if column != "anomaly"}
        entry["sample"] = None if entry["sample"] is None else int(entry["sample"])
        who = entry["slo"] or entry["service"] or entry["team"] or "all"
        entry["name"] = f"{who}/{entry['figure']}/{pd.Timestamp(entry['week_start']):%Y-%m-%d}"
        entry["description"] = describe(row)
        out.append(entry)
    return to_jsonable(out)


def for_team(judgements: pd.DataFrame, team: str) -> pd.DataFrame:
    """A team's part of an organisation's judgements: its services, its SLOs, and the team's
    own series."""
    mine = judgements["team"] == team
    return judgements[mine & (judgements["level"] != "scope")].reset_index(drop=True)


def rule_sentence(rule: AnomalyConfig) -> str:
    """The rule in words, with the configured numbers (report notes, page help)."""
    return (
        f"A week is flagged when its figure lies more than {rule.threshold:g} robust "
        f"deviations (1.4826 × the median absolute deviation, with a floor per figure) from "
        f"the median of the same series' previous {rule.history_weeks} weeks; "
        f"{rule.min_history_weeks} of them must have data. Each service, team and SLO is "
        "compared with its own history; a budget that stays out of its usual range is "
        "flagged at its first week only."
    )


def describe(row: Any) -> str:
    """One line: `checkout · change fail rate, week of 2026-11-09: 40 % (usual 0–17 %, median 5 %)`."""
    week = pd.Timestamp(row["week_start"]).strftime("%Y-%m-%d")
    return (
        f"{subject(row)} · {row['label']}, week of {week}: {value_text(row)} "
        f"(usual {usual_range(row)}, median {median_text(row)})"
    )


def subject(row: Any) -> str:
    """Whose series a judged week belongs to: the SLO, the service, the team or all teams."""
    team = _given(row, "team")
    return _given(row, "slo") or _given(row, "service") or (f"team {team}" if team else "all teams")


def usual_range(row: Any) -> str:
    """The band a judged week was held against, clipped to what its figure can be."""
    fmt = _formatter(row["figure"], _extra_decimals(row))
    low, high = plausible_band(row["figure"], row["lower"], row["upper"])
    return f"{fmt(low)}–{fmt(high)}"


def _extra_decimals(row: Any) -> int:
    """Decimals beyond the figure's usual ones, so that a flagged week never reads the same
    as the edge of the range it left ("18 %, usual 0–18 %" for 18.4 % against 17.6 %)."""
    if not _given(row, "anomaly") or _given(row, "value") is None:
        return 0
    low, high = plausible_band(row["figure"], row["lower"], row["upper"])
    for extra in range(_MAX_EXTRA_DECIMALS):
        fmt = _formatter(row["figure"], extra)
        if fmt(row["value"]) not in (fmt(low), fmt(high)):
            return extra
    return _MAX_EXTRA_DECIMALS


_MAX_EXTRA_DECIMALS = 3


def _given(row: Any, key: str) -> Any:
    """A cell, with pandas' missing markers (NaN, NaT) as None."""
    value = row[key]
    if value is None or isinstance(value, str | bool):
        return value
    return None if pd.isna(value) else value


def plausible_band(figure: str, low: Any, high: Any) -> tuple[Any, Any]:
    """The band clipped to what the figure can be (a rate in [0, 1], a count at least 0);
    numbers or pandas Series alike."""
    if figure == "budget_remaining":
        return low, np.minimum(high, 1.0)
    if figure in ("sli", "change_failure_rate", "rework_rate"):
        return np.maximum(low, 0.0), np.minimum(high, 1.0)
    return np.maximum(low, 0.0), high


def value_text(row: Any) -> str:
    """A judged week's value as `describe` writes it (40 %, 52.0 h, 99.830 %, 14), beside
    `usual_range(row)`."""
    return str(_formatter(row["figure"], _extra_decimals(row))(row["value"]))


def median_text(row: Any) -> str:
    """The median of a judged week's history as `describe` writes it."""
    return str(_formatter(row["figure"], _extra_decimals(row))(row["median"]))


def _formatter(figure: str, extra: int = 0) -> Any:
    if figure in ("change_failure_rate", "rework_rate", "budget_remaining"):
        return lambda v: f"{v * 100:.{extra}f} %"
    if figure == "sli":
        return lambda v: f"{v * 100:.{3 + extra}f} %"
    if figure == "deployments":
        return lambda v: f"{v:.{extra}f}"
    return lambda v: f"{v:.{1 + extra}f} h"

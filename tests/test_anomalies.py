"""Anomaly flags: median ± k·1.4826·MAD over the previous 12 weeks, with per-figure floors.

The rule on series with a planted anomaly, flat, short, gappy and noisy series; then on a
warehouse (both engines) through `weekly_judgements` and `poise metrics`.
"""

from __future__ import annotations

import json
import random
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_org import Org
from sqlalchemy import Engine

from metrics import attribution, delivery, reliability
from metrics.anomalies import (
    COLUMNS,
    DORA_FIGURES,
    FIGURES,
    MAD_SCALE,
    SAMPLED,
    WEEK,
    as_json,
    describe,
    flagged,
    judge,
    judge_records,
    judged_weeks,
    plausible_band,
    usual_range,
    value_text,
    weekly_judgements,
)
from metrics.frames import load
from metrics.model import Period, Scope, Settings
from metrics.windows import window_for
from poise.cli import main
from poise.config import AnomalyConfig, parse_config
from poise.errors import ConfigError

RULE = AnomalyConfig()  # k = 3.5, 12 weeks of history, 8 of them needed
# Ordinary week-to-week wobble around 10 (no week more than 1.6 from the median).
WOBBLE = [10.4, 9.1, 10.9, 9.6, 10.2, 8.4, 11.1, 10.0, 9.5, 10.7, 9.8, 11.6, 8.9, 10.3]


def flags(values: list[float | None], floor: float = 0.0, relative: float = 0.0) -> list[int]:
    return [i for i, verdict in enumerate(judge(values, RULE, floor, relative)) if verdict.anomaly]


def test_a_planted_spike_and_a_planted_drop_are_flagged_and_nothing_else() -> None:
    assert flags(WOBBLE) == []
    spike = [*WOBBLE[:13], 19.0, 10.1]
    assert flags(spike) == [13]
    drop = [*WOBBLE[:12], 3.0, *WOBBLE[12:]]
    assert flags(drop) == [12]
    verdict = judge(spike, RULE)[13]
    assert verdict.median == pytest.approx(float(np.median(WOBBLE[1:13])))
    assert verdict.lower < 10 < verdict.upper < 19
    assert verdict.score > RULE.threshold and verdict.history == 12


def test_the_week_after_a_spike_is_judged_by_a_history_the_spike_does_not_move() -> None:
    values = [*WOBBLE[:12], 40.0, 10.5, 9.7]
    assert flags(values) == [12]  # the median and MAD shrug off one wild week


def test_a_flat_series_raises_no_flag_and_a_real_departure_from_it_does() -> None:
    flat = [5.0] * 20
    assert flags(flat, floor=1.0, relative=0.1) == []
    wobble = [*([5.0] * 14), 5.0001, 5.0]
    assert flags(wobble, floor=1.0, relative=0.1) == []  # MAD 0: the floor is the scale
    jump = [*([5.0] * 14), 11.0, 5.0]
    assert flags(jump, floor=1.0, relative=0.1) == [14]  # 6 > 3.5 × (1 + 0.5)
    # change fail rate flat at 0: one failure in ten deployments is no anomaly, four are
    assert flags([*([0.0] * 14), 0.1], floor=0.05) == []
    assert flags([*([0.0] * 14), 0.4], floor=0.05) == [14]


def test_short_series_raise_no_flag() -> None:
    assert flags([10.0, 10.2, 9.9, 10.1, 50.0]) == []
    seven = [*WOBBLE[:7], 50.0]
    assert flags(seven) == []  # 7 weeks of history: not enough
    eight = [*WOBBLE[:8], 50.0]
    assert flags(eight) == [8]
    assert flags([]) == [] and flags([None, None, 3.0]) == []


def test_missing_weeks_do_not_count_as_history() -> None:
    gappy: list[float | None] = [None, 10.0, None, 9.0, None, 11.0, None, 10.5, None, 9.5]
    gappy += [None, 10.2, 50.0]
    assert flags(gappy) == []  # only 6 of the previous 12 weeks have a value
    assert judge(gappy, RULE)[-1].history == 6


def test_noise_without_anomalies_is_rarely_flagged() -> None:
    """Normal noise, 400 series of 26 weeks: with a 12-week history the robust band is
    itself uncertain, so about 2.5 % of weeks cross it (docs/guardrails.md says so)."""
    rng = np.random.default_rng(20261127)
    judged = flagged_weeks = 0
    for _ in range(400):
        verdicts = judge(list(50 + 5 * rng.standard_normal(26)), RULE)
        judged += sum(v.median is not None for v in verdicts)
        flagged_weeks += sum(v.anomaly for v in verdicts)
    assert judged == 400 * (26 - 8)
    assert flagged_weeks / judged < 0.04
    strict = AnomalyConfig(threshold=5.0)
    rng = np.random.default_rng(7)
    strict_flags = sum(
        v.anomaly for _ in range(400) for v in judge(list(50 + 5 * rng.standard_normal(26)), strict)
    )
    assert strict_flags / judged < 0.01


def test_rates_and_medians_on_small_samples_are_not_judged() -> None:
    starts = [datetime(2026, 1, 5, tzinfo=UTC) + timedelta(weeks=w) for w in range(14)]

    def record(week: int, value: float, sample: int) -> dict:
        return {"level": "service", "service": "s", "team": "t", "slo": None,
                "figure": "change_failure_rate", "week": week, "value": value, "sample": sample}  # fmt: skip

    steady = [record(w, 0.0, 10) for w in range(12)]
    few = judge_records([*steady, record(12, 1.0, 2), record(13, 0.9, 10)], starts, RULE, 5)
    assert few["week_start"].tolist() == [starts[13]]  # 2 deployments: insufficient data
    assert few["anomaly"].tolist() == [True]


def test_judged_weeks_are_the_whole_weeks_that_overlap_the_period() -> None:
    period = Period(datetime(2026, 11, 4, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))
    weeks = judged_weeks(period, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert weeks == [datetime(2026, 11, d, tzinfo=UTC) for d in (2, 9, 16)]  # 23 Nov not over
    early = judged_weeks(period, now=datetime(2026, 11, 20, tzinfo=UTC))
    assert early == [datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC)]


def test_the_rule_is_configurable_and_checked() -> None:
    config = parse_config(
        {"anomalies": {"threshold": 5, "history_weeks": 8, "min_history_weeks": 6}}
    )
    assert (config.anomalies.threshold, config.anomalies.history_weeks) == (5, 8)
    with pytest.raises(ConfigError, match=r"anomalies\.min_history_weeks: cannot exceed"):
        parse_config({"anomalies": {"history_weeks": 6}})
    with pytest.raises(
        ConfigError, match=r"anomalies.treshold: unknown key \(did you mean 'threshold'"
    ):
        parse_config({"anomalies": {"treshold": 5}})


# -- from the warehouse ----------------------------------------------------------------------

FIRST_MONDAY = datetime(2026, 6, 1, tzinfo=UTC)
WEEKS = 16
PLANTED = 14  # the week of 2026-09-07: a stuck release train and a bad availability week
NOW = FIRST_MONDAY + timedelta(weeks=WEEKS, days=2)
PERIOD = Period(FIRST_MONDAY + timedelta(weeks=12), FIRST_MONDAY + timedelta(weeks=WEEKS))


def planted_org() -> Org:
    org = Org().service("checkout", "shop").service("search", "shop")
    org.slo("checkout-availability", "checkout", 0.999)
    for week in range(WEEKS):
        monday = FIRST_MONDAY + timedelta(weeks=week)
        lead = 52.0 if week == PLANTED else 2.0 + 0.25 * (week % 3)
        for day in range(5):
            deployed = monday + timedelta(days=day, hours=10)
            for service in ("checkout", "search"):
                ident = f"{service}-{week}-{day}"
                hours = lead if service == "checkout" else 3.0
                org.change(ident, service, deployed - timedelta(hours=hours))
                org.deploy(f"d-{ident}", service, deployed, [ident])
        bad = 6.0 if week == PLANTED else 0.2 + 0.05 * (week % 4)
        org.sli("checkout-availability", monday, 24 * 7, 1000 - bad, 1000)
    return org


@pytest.fixture
def planted(warehouse: Engine, tmp_path: Path) -> Engine:
    return planted_org().load(warehouse, tmp_path)


def test_a_planted_week_is_flagged_from_the_warehouse(planted: Engine) -> None:
    judged = weekly_judgements(planted, PERIOD, Scope(), Settings(), now=NOW)
    assert set(judged["week_start"]) == {FIRST_MONDAY + timedelta(weeks=w) for w in range(12, 16)}
    hits = flagged(judged)
    found = {(row.level, row.service, row.slo, row.figure) for row in hits.itertuples()}
    assert found == {
        ("service", "checkout", None, "lead_time_median_hours"),
        ("team", None, None, "lead_time_median_hours"),
        ("scope", None, None, "lead_time_median_hours"),
        ("slo", "checkout", "checkout-availability", "sli"),
        ("slo", "checkout", "checkout-availability", "budget_remaining"),
    }
    planted_week = FIRST_MONDAY + timedelta(weeks=PLANTED)
    assert set(hits["week_start"]) == {planted_week}
    # the budget stays spent while the bad week is inside its 28-day window: the week after
    # is still out of its usual range, the same way, and is the same finding (no flag)
    budget = judged[judged["figure"] == "budget_remaining"].set_index("week_start")
    after = budget.loc[planted_week + timedelta(weeks=1)]
    assert after["value"] < after["lower"] and after["direction"] == "below"
    assert not after["anomaly"] and budget.loc[planted_week, "anomaly"]
    assert hits["worse"].all()
    lead = hits[(hits["level"] == "service") & (hits["figure"] == "lead_time_median_hours")].iloc[0]
    assert lead["value"] == pytest.approx(52.0) and lead["median"] == pytest.approx(2.25)
    assert describe(lead) == (
        "checkout · lead time (median, h), week of 2026-09-07: 52.0 h (usual 0.0 h–6.5 h, median 2.2 h)"
    )
    sli = hits[hits["figure"] == "sli"].iloc[0]
    assert sli["value"] == pytest.approx(0.994) and sli["direction"] == "below"
    # steady figures are judged and left alone: deployments, change fail rate, search
    quiet = judged[(judged["service"] == "search") | (judged["figure"] == "deployments")]
    assert len(quiet) and not quiet["anomaly"].any()


def test_a_service_scope_judges_only_its_own_series(planted: Engine) -> None:
    judged = weekly_judgements(planted, PERIOD, Scope(service="search"), Settings(), now=NOW)
    assert set(judged["level"]) == {"service"} and set(judged["service"]) == {"search"}
    assert flagged(judged).empty


def test_poise_metrics_lists_the_anomalies(
    planted: Engine, warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    window = ["--from", "2026-08-24", "--to", "2026-09-21", "--db", warehouse_url]
    assert main(["metrics", *window, "--format", "json", "--service", "checkout"]) == 0
    document = json.loads(capsys.readouterr().out)
    names = sorted(item["name"] for item in document["anomalies"])
    assert names == [
        "checkout-availability/budget_remaining/2026-09-07",
        "checkout-availability/sli/2026-09-07",
        "checkout/lead_time_median_hours/2026-09-07",
    ]
    assert all(
        item["description"] and item["history_weeks"] == 12 for item in document["anomalies"]
    )
    assert main(["metrics", *window]) == 0
    table = capsys.readouterr().out
    assert "Anomalies: 5 weeks far from their own last 12 weeks:" in table
    assert "checkout · lead time (median, h), week of 2026-09-07: 52.0 h" in table
    assert main(["metrics", *window, "--by-team", "--format", "json"]) == 0
    teams = json.loads(capsys.readouterr().out)
    assert {item["level"] for item in teams["shop"]["anomalies"]} == {"service", "team", "slo"}


def test_as_json_names_every_flag_uniquely(planted: Engine) -> None:
    entries = as_json(weekly_judgements(planted, PERIOD, Scope(), Settings(), now=NOW))
    assert len({entry["name"] for entry in entries}) == len(entries) == 5
    json.dumps(entries, allow_nan=False)


# -- every series at once, against the rule applied one series and one week at a time ------
#
# `judge_records` and `weekly_judgements` judge all series together (one series × week
# matrix). The reference below is the rule as docs/guardrails.md states it, one series at a
# time and one week at a time; the two must agree exactly: flags, medians, bands, scores,
# the frame's column types and row order, and the descriptions.


def reference_judge(
    values: list[float | None], rule: AnomalyConfig, floor: float, relative: float
) -> list[tuple[float | None, float | None, float | None, int, float | None, bool]]:
    """(median, lower, upper, history, score, anomaly) of every week, straight from the rule."""
    out = []
    for week, value in enumerate(values):
        past = [v for v in values[max(0, week - rule.history_weeks) : week] if v is not None]
        if len(past) < rule.min_history_weeks or value is None:
            out.append((None, None, None, len(past), None, False))
            continue
        middle = float(np.median(past))
        mad = float(np.median([abs(v - middle) for v in past]))
        scale = max(MAD_SCALE * mad, floor + relative * abs(middle))
        if scale <= 0:
            scale = np.finfo(float).eps * max(1.0, abs(middle))
        band = rule.threshold * scale
        score = (value - middle) / scale
        out.append(
            (middle, middle - band, middle + band, len(past), score, abs(score) > rule.threshold)
        )
    return out


def reference_usable(figure: str, value: Any, sample: Any, min_sample: int) -> float | None:
    if value is None or pd.isna(value):
        return None
    if figure in SAMPLED and (sample is None or sample < min_sample):
        return None
    if figure in ("sli", "budget_remaining") and not sample:
        return None
    return float(value)


def reference_judgements(
    records: list[dict[str, Any]], starts: list[datetime], rule: AnomalyConfig, min_sample: int
) -> pd.DataFrame:
    """`judge_records`, one series at a time, one dict per judged week."""
    if not records:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.DataFrame(records)
    if "target" not in frame.columns:
        frame["target"] = np.nan
    keys = ["level", "service", "team", "slo", "figure"]
    out = []
    for _key, series in frame.groupby(keys, dropna=False, sort=True):
        head = series.iloc[0]
        figure = FIGURES[str(head["figure"])]
        floor = 0.1 * (1.0 - float(head["target"])) if head["figure"] == "sli" else None
        values: list[float | None] = [None] * len(starts)
        samples: list[Any] = [None] * len(starts)
        for week, value, sample in zip(
            series["week"], series["value"], series["sample"], strict=True
        ):
            values[int(week)] = reference_usable(str(head["figure"]), value, sample, min_sample)
            samples[int(week)] = sample
        verdicts = reference_judge(
            values,
            rule,
            figure.absolute_floor if floor is None else floor,
            figure.relative_floor,
        )
        for week in range(rule.history_weeks, len(starts)):
            if values[week] is None:
                continue
            middle, lower, upper, history, score, anomaly = verdicts[week]
            direction = None if not score else "above" if score > 0 else "below"
            if head["figure"] == "budget_remaining" and week > 0:  # a level: its first week out
                _, _, _, _, earlier_score, earlier = verdicts[week - 1]
                if earlier and (earlier_score > 0) == (score > 0):
                    anomaly = False
            out.append(
                {
                    **{key: (None if pd.isna(head[key]) else head[key]) for key in keys},
                    "label": figure.label,
                    "week_start": starts[week],
                    "value": values[week],
                    "sample": samples[week],
                    "median": middle,
                    "lower": lower,
                    "upper": upper,
                    "history_weeks": history,
                    "score": score,
                    "direction": direction,
                    "worse": anomaly and direction == figure.worse,
                    "anomaly": anomaly,
                }
            )
    result = pd.DataFrame(out, columns=COLUMNS)
    result["week_start"] = pd.to_datetime(result["week_start"], utc=True)
    for column in ("service", "team", "slo", "direction"):
        result[column] = result[column].astype(object).where(result[column].notna(), None)
    order = ["week_start", "level", "service", "slo", "figure"]
    return result.sort_values(order, na_position="first").reset_index(drop=True)


def assert_same_judgements(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert as_json(got) == as_json(expected)  # names and one-line descriptions too


RULES = [
    RULE,
    AnomalyConfig(threshold=5, history_weeks=8, min_history_weeks=6),
    AnomalyConfig(threshold=1.0, history_weeks=4, min_history_weeks=3),
]
# (level, service, team, slo): several teams' series tie in the final sort
OWNERS = [
    ("service", "checkout", "shop", None),
    ("service", "search", "shop", None),
    ("service", "ledger", None, None),
    ("team", None, "shop", None),
    ("team", None, "money", None),
    ("scope", None, None, None),
    ("scope", None, "shop", None),
    ("slo", "checkout", "shop", "checkout-availability"),
    ("slo", "ledger", None, "ledger-latency"),
]
# no -0.0: np.median may return 0.0 or -0.0 for a tie of the two (equal, printed differently)
FINITE = st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: x + 0.0)


@st.composite
def weekly_values(draw: st.DrawFn, weeks: int) -> list[float | None]:
    """A series' weekly values: flat, short, with gaps, with a planted departure, or wild."""
    shape = draw(st.sampled_from(["flat", "short", "gappy", "planted", "wild"]))
    if shape == "flat":
        level = draw(st.sampled_from([0.0, 1.0, 5.0, 0.999, 250.0]))
        values: list[float | None] = [level] * weeks
    elif shape == "wild":
        values = draw(st.lists(FINITE, min_size=weeks, max_size=weeks))
    else:
        level = draw(st.floats(0.5, 500.0))
        wobble = st.floats(-0.2, 0.2).map(lambda x: x + 0.0)
        values = [level * (1 + w) for w in draw(st.lists(wobble, min_size=weeks, max_size=weeks))]
    if shape in ("flat", "planted"):  # one week far off (or not so far)
        week = draw(st.integers(0, weeks - 1))
        values[week] = draw(st.sampled_from([0.0, 3.0, 10.0, -4.0])) * (values[week] or 1.0)
    if shape == "gappy":
        holes = draw(st.lists(st.booleans(), min_size=weeks, max_size=weeks))
        values = [None if hole else value for value, hole in zip(values, holes, strict=True)]
    if shape == "short":
        values = [None] * (weeks - 5) + values[-5:]
    return values


@st.composite
def record_sets(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[datetime], AnomalyConfig]:
    rule = draw(st.sampled_from(RULES))
    weeks = rule.history_weeks + draw(st.integers(1, 12))
    starts = [FIRST_MONDAY + timedelta(weeks=w) for w in range(weeks)]
    records = []
    for level, service, team, slo in draw(st.lists(st.sampled_from(OWNERS), max_size=6)):
        figures = ["sli", "budget_remaining"] if level == "slo" else list(DORA_FIGURES)
        target = draw(st.sampled_from([0.9, 0.99, 0.999]))
        for figure in draw(st.lists(st.sampled_from(figures), min_size=1, max_size=3)):
            first = draw(st.integers(0, weeks - 1))  # a series starts at its first week
            values = draw(weekly_values(weeks))
            samples = draw(st.lists(st.integers(0, 12), min_size=weeks, max_size=weeks))
            for week in range(first, weeks):
                value = values[week]
                if value is None and draw(st.booleans()):
                    continue  # a week without a record at all, rather than one with no value
                records.append(
                    {
                        "level": level,
                        "service": service,
                        "team": team,
                        "slo": slo,
                        "figure": figure,
                        "week": week,
                        "value": value,
                        "sample": samples[week],
                        "target": target if level == "slo" else None,
                    }
                )
    if records and draw(st.booleans()):  # a week given twice: the last record counts
        repeated = dict(draw(st.sampled_from(records)))
        records.append(repeated | {"value": draw(FINITE), "sample": draw(st.integers(0, 12))})
    return records, starts, rule


@settings(max_examples=300, deadline=None)
@given(record_sets(), st.sampled_from([5, 1]))
def test_all_series_at_once_judge_as_one_series_at_a_time(
    case: tuple[list[dict[str, Any]], list[datetime], AnomalyConfig], min_sample: int
) -> None:
    records, starts, rule = case
    expected = reference_judgements(records, starts, rule, min_sample)
    assert_same_judgements(judge_records(records, starts, rule, min_sample), expected)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 40).flatmap(weekly_values),
    st.sampled_from(RULES),
    st.sampled_from([(0.0, 0.0), (1.0, 0.1), (0.05, 0.0), (0.0, 0.5)]),
)
def test_one_series_judged_as_the_rule_says(
    values: list[float | None], rule: AnomalyConfig, floors: tuple[float, float]
) -> None:
    got = [astuple(verdict) for verdict in judge(values, rule, *floors)]
    assert got == reference_judge(values, rule, *floors)


def test_planted_and_flat_series_agree_with_the_reference_on_every_column() -> None:
    """The hand-made cases of the tests above, all in one set of records."""
    starts = [FIRST_MONDAY + timedelta(weeks=w) for w in range(16)]
    cases: dict[str, list[float | None]] = {
        "spike": [*WOBBLE[:13], 19.0, 10.1, 10.0],
        "flat": [5.0] * 14 + [11.0, 5.0],
        "gappy": [
            None,
            10.0,
            None,
            9.0,
            None,
            11.0,
            None,
            10.5,
            None,
            9.5,
            None,
            10.2,
            50.0,
            None,
            9.9,
            10.1,
        ],
        "short": [None] * 10 + [10.0, 10.2, 9.9, 10.1, 50.0, 10.0],
    }
    records = [
        {
            "level": "service",
            "service": name,
            "team": "t",
            "slo": None,
            "figure": "lead_time_median_hours",
            "week": week,
            "value": value,
            "sample": 9,
        }
        for name, values in cases.items()
        for week, value in enumerate(values)
    ]
    got = judge_records(records, starts, RULE, 5)
    assert_same_judgements(got, reference_judgements(records, starts, RULE, 5))
    assert {(row.service, row.week_start) for row in flagged(got).itertuples()} == {
        ("spike", starts[13]),
        ("flat", starts[14]),
    }


# -- the weekly series from the warehouse, against one series and one week at a time --------

SERIES_WEEKS = 18
SERIES_NOW = FIRST_MONDAY + timedelta(weeks=SERIES_WEEKS, days=1)
SERIES_PERIOD = Period(FIRST_MONDAY + timedelta(weeks=12), FIRST_MONDAY + timedelta(weeks=18))
TEAMS = {"checkout": "shop", "search": "shop", "payments": "money", "ledger": "money"}
# name: (service, target, window days, first week with data, weeks without data)
SLOS = {
    "checkout-availability": ("checkout", 0.999, 28, 0, ()),
    "search-latency": ("search", 0.99, 7, 2, (9, 10)),
    "payments-availability": ("payments", 0.995, 30, 5, (13,)),
}


def varied_org(seed: int = 20261127) -> Org:
    """Four services (ledger starts late, payments pauses), failures fixed by rollbacks or
    followed by incidents, and three SLOs with integer daily counts (sums are exact)."""
    rng = random.Random(seed)
    org = Org()
    for service, team in TEAMS.items():
        org.service(service, team)
    for name, (service, target, days, _first, _gaps) in SLOS.items():
        org.slo(name, service, target, days)
    for week in range(SERIES_WEEKS):
        monday = FIRST_MONDAY + timedelta(weeks=week)
        for service in TEAMS:
            if (service == "ledger" and week < 6) or (service == "payments" and week in (9, 10)):
                continue
            for n in range(rng.randint(0, 7)):
                deployed = monday + timedelta(days=rng.randint(0, 4), hours=9 + n)
                ident = f"{service}-{week}-{n}"
                changes = [f"{ident}-c{c}" for c in range(rng.randint(1, 3))]
                for change in changes:
                    lead = rng.choice([rng.uniform(0.5, 8), rng.uniform(8, 120)])
                    org.change(change, service, deployed - timedelta(hours=lead))
                org.deploy(f"d-{ident}", service, deployed, changes)
                luck = rng.random()
                if luck < 0.08:  # rolled back a few hours later
                    fix = deployed + timedelta(hours=rng.uniform(0.2, 6))
                    org.deploy(f"r-{ident}", service, fix, rollback_of=f"d-{ident}")
                elif luck < 0.15:  # an incident it caused
                    org.incident(f"i-{ident}", service, deployed + timedelta(minutes=30),
                                 caused_by=f"d-{ident}",
                                 resolved=timedelta(hours=rng.uniform(0.5, 30)))  # fmt: skip
        for name, (_service, _target, _days, first, gaps) in SLOS.items():
            if week < first or week in gaps:
                continue
            for day in range(7):
                total = 0 if (week, day) == (7, 3) else rng.randint(800, 1200)
                bad = rng.choice([0, 0, 1, 2, 5, 40]) if total else 0
                org.sli(name, monday + timedelta(days=day, hours=12), 1, total - bad, total)
    return org


def reference_series(
    engine: Engine, org: Org, scope: Scope, settings: Settings, starts: list[datetime]
) -> list[dict[str, Any]]:
    """Every series' records, one series and one week at a time: DORA from `delivery.dora`
    of that service, team or scope and week; SLOs from the imported hourly rows themselves
    and `reliability.evaluate`."""
    loaded = Period(starts[0], starts[-1] + WEEK)
    with engine.connect() as connection:
        frames = load(connection, loaded, scope, settings)
    links = attribution.attribute(frames.incidents, frames.deployments, settings.attribution_window)
    rows = delivery.deployment_rows(
        frames.deployments, frames.fixers, links, frames.incidents, reasons=False
    )
    changes = frames.changes
    records = []
    levels = ["service"] + (["team"] if scope.is_org else []) + [""]
    for key in levels:
        names = rows[key] if key else pd.Series("", index=rows.index)
        change_names = changes[key] if key else pd.Series("", index=changes.index)
        for name in sorted(set(names.dropna())):
            mine = rows[names == name]
            weeks = [
                week
                for week, start in enumerate(starts)
                if ((mine["deployed_at"] >= start) & (mine["deployed_at"] < start + WEEK)).any()
            ]
            for week in range(min(weeks), len(starts)) if weeks else []:
                start, end = starts[week], starts[week] + WEEK
                block = delivery.dora(
                    mine[(mine["deployed_at"] >= start) & (mine["deployed_at"] < end)],
                    changes[
                        (change_names == name)
                        & (changes["deployed_at"] >= start)
                        & (changes["deployed_at"] < end)
                    ],
                    Period(start, end),
                    settings,
                )
                count = block["deployment_frequency"]["deployments"]
                for figure, value, sample in (
                    ("deployments", count, count),
                    ("lead_time_median_hours", block["lead_time"]["median_hours"],
                     block["lead_time"]["changes"]),
                    ("change_failure_rate", block["change_failure_rate"]["rate"], count),
                    ("recovery_median_hours", block["recovery_time"]["median_hours"],
                     block["recovery_time"]["failures"]),
                    ("rework_rate", block["rework_rate"]["rate"], count),
                ):  # fmt: skip
                    team = mine["team"].iloc[0] if key == "service" else name if key else None
                    records.append(
                        {
                            "level": key or "scope",
                            "service": name if key == "service" else None,
                            "team": scope.team if not key and scope.team else team,
                            "slo": None,
                            "figure": figure,
                            "week": week,
                            "value": value,
                            "sample": sample,
                        }
                    )
    hourly = pd.DataFrame(org.rows["sli"])
    hourly["at"] = pd.to_datetime(hourly["timestamp"], utc=True)
    for name, (service, target, days, _first, _gaps) in SLOS.items():
        if scope.team not in (None, TEAMS[service]):
            continue
        slo = SimpleNamespace(name=name, service=service, team=TEAMS[service], target=target,
                              window_days=days, window_kind="rolling", calendar_unit=None)  # fmt: skip
        window = window_for(slo, settings)
        mine = hourly[hourly["slo"] == name]

        def sums(lo: datetime, hi: datetime, mine: pd.DataFrame = mine) -> tuple[float, ...]:
            inside = mine[(mine["at"] >= lo) & (mine["at"] < hi)]
            return float(inside["good"].sum()), float(inside["total"].sum()), len(inside)

        seen = False
        for week, start in enumerate(starts):
            end = start + WEEK
            good, events, samples = sums(start, end)
            seen = seen or samples > 0
            if not seen:
                continue
            in_window = sums(window.at(end)[0], end)
            burns = dict.fromkeys(reliability.BURN_WINDOWS, (0.0, 0.0, 0))
            evaluated = reliability.evaluate(slo, {"window": in_window, **burns}, end, settings)
            for figure, value, sample in (
                ("sli", good / events if events else None, events),
                ("budget_remaining", evaluated["budget_remaining"], in_window[1]),
            ):
                records.append(
                    {
                        "level": "slo",
                        "service": service,
                        "team": TEAMS[service],
                        "slo": name,
                        "figure": figure,
                        "week": week,
                        "value": value,
                        "sample": sample,
                        "target": target,
                    }
                )
    return records


def test_weekly_series_from_the_warehouse_match_one_series_at_a_time(
    warehouse: Engine, tmp_path: Path
) -> None:
    org = varied_org()
    org.load(warehouse, tmp_path)
    rule = AnomalyConfig(threshold=2.0)  # more flags to compare
    starts = [FIRST_MONDAY + timedelta(weeks=w) for w in range(SERIES_WEEKS)]
    for scope in (Scope(), Scope(team="shop")):
        for settings_ in (Settings(), Settings(slo_window="month")):
            got = weekly_judgements(
                warehouse, SERIES_PERIOD, scope, settings_, rule, now=SERIES_NOW
            )
            records = reference_series(warehouse, org, scope, settings_, starts)
            expected = reference_judgements(records, starts, rule, settings_.min_sample)
            assert_same_judgements(got, expected)
            assert len(flagged(got)) > 0


def _week(figure: str, value: float, lower: float, upper: float, anomaly: bool) -> pd.Series:
    return pd.Series(
        {
            "figure": figure,
            "label": figure.replace("_", " "),
            "week_start": datetime(2026, 9, 7, tzinfo=UTC),
            "slo": None,
            "service": "checkout",
            "team": "payments",
            "value": value,
            "median": (lower + upper) / 2,
            "lower": lower,
            "upper": upper,
            "anomaly": anomaly,
        }
    )


def test_a_flagged_week_never_reads_the_same_as_the_edge_it_crossed() -> None:
    crossed = _week("change_failure_rate", 0.184, -0.04, 0.176, anomaly=True)
    assert usual_range(crossed) == "0.0 %–17.6 %"
    assert value_text(crossed) == "18.4 %"
    assert describe(crossed).endswith(": 18.4 % (usual 0.0 %–17.6 %, median 6.8 %)")
    # far enough out, or not flagged: the figure's usual decimals
    assert value_text(_week("change_failure_rate", 0.4, 0.0, 0.17, anomaly=True)) == "40 %"
    assert usual_range(_week("change_failure_rate", 0.176, 0.0, 0.176, anomaly=False)) == (
        "0 %–18 %"
    )
    below = _week("sli", 0.998996, 0.998997, 1.2, anomaly=True)
    assert value_text(below) == "99.8996 %" and usual_range(below) == "99.8997 %–100.0000 %"


def test_the_usual_range_is_clipped_to_what_the_figure_can_be() -> None:
    lower, upper = plausible_band("deployments", pd.Series([-2.0, 3.0]), pd.Series([10.0, 12.0]))
    assert list(lower) == [0.0, 3.0] and list(upper) == [10.0, 12.0]
    lower, upper = plausible_band("sli", pd.Series([0.98]), pd.Series([1.01]))
    assert list(lower) == [0.98] and list(upper) == [1.0]
    assert usual_range(_week("deployments", 30, -2.4, 12.6, anomaly=True)) == "0–13"

"""Anomaly flags: median ± k·1.4826·MAD over the previous 12 weeks, with per-figure floors.

The rule on series with a planted anomaly, flat, short, gappy and noisy series; then on a
warehouse (both engines) through `weekly_judgements` and `poise metrics`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from metrics_org import Org
from sqlalchemy import Engine

from metrics.anomalies import (
    as_json,
    describe,
    flagged,
    judge,
    judge_records,
    judged_weeks,
    weekly_judgements,
)
from metrics.model import Period, Scope, Settings
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
    assert set(hits.loc[hits["figure"] != "budget_remaining", "week_start"]) == {planted_week}
    # the budget stays spent while the bad week is inside its 28-day window
    budget = hits[hits["figure"] == "budget_remaining"]
    assert budget["week_start"].tolist() == [planted_week, planted_week + timedelta(weeks=1)]
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
        "checkout-availability/budget_remaining/2026-09-14",
        "checkout-availability/sli/2026-09-07",
        "checkout/lead_time_median_hours/2026-09-07",
    ]
    assert all(
        item["description"] and item["history_weeks"] == 12 for item in document["anomalies"]
    )
    assert main(["metrics", *window]) == 0
    table = capsys.readouterr().out
    assert "Anomalies: 6 week(s) far from their own last 12 weeks:" in table
    assert "checkout · lead time (median, h), week of 2026-09-07: 52.0 h" in table
    assert main(["metrics", *window, "--by-team", "--format", "json"]) == 0
    teams = json.loads(capsys.readouterr().out)
    assert {item["level"] for item in teams["shop"]["anomalies"]} == {"service", "team", "slo"}


def test_as_json_names_every_flag_uniquely(planted: Engine) -> None:
    entries = as_json(weekly_judgements(planted, PERIOD, Scope(), Settings(), now=NOW))
    assert len({entry["name"] for entry in entries}) == len(entries) == 6
    json.dumps(entries, allow_nan=False)

"""Golden examples for SLOs, error budgets, burn rates, alerts, forecasts and budget policy.

Hand-worked numbers are in the comments. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from metrics_org import Org, at
from sqlalchemy import Engine

from metrics import Period, Scope, Settings
from metrics.explain import explain
from metrics.scorecard import scorecard
from metrics.slo_data import burn_down
from poise.catalog import apply_config
from poise.config import parse_config

Q3 = Period.quarter("2026Q3")


def card(engine: Engine, period: Period = Q3, **settings: object) -> dict:
    document = scorecard(engine, period, Scope(), Settings(**settings))  # type: ignore[arg-type]
    json.dumps(document, allow_nan=False)
    return document


def slo_of(document: dict, name: str) -> dict:
    return next(slo for slo in document["slos"] if slo["name"] == name)


def burning_org() -> Org:
    """checkout-availability, target 99 %, 28-day window ending at 2026-10-01, 1000 events an
    hour: 648 h at 0.5 % errors, then 18 h at 3 %, 5 h at 10 %, and the last hour at 20 %."""
    org = Org().service("checkout", "payments")
    org.slo("checkout-availability", "checkout", 0.99, 28)
    name = "checkout-availability"
    org.sli(name, at(days=64), 648, 995, 1000)
    org.sli(name, at(days=91), 18, 970, 1000)
    org.sli(name, at(days=91, hours=18), 5, 900, 1000)
    org.sli(name, at(days=91, hours=23), 1, 800, 1000)
    return org


def test_budget_burn_rates_status_alert_and_forecast(warehouse: Engine, tmp_path: Path) -> None:
    burning_org().load(warehouse, tmp_path)
    slo = slo_of(card(warehouse), "checkout-availability")
    # bad events: 1 h 200, hours 2-6 5 × 100, hours 7-24 18 × 30, the other 648 h 648 × 5
    assert slo["total"] == 672_000
    assert slo["bad"] == 200 + 500 + 540 + 3240  # 4480
    assert slo["sli"] == pytest.approx(1 - 4480 / 672_000)
    assert slo["budget_events"] == pytest.approx(6720)  # 1 % of 672,000
    assert slo["budget_remaining"] == pytest.approx(1 / 3)  # 1 − 4480 / 6720
    assert slo["burn_rate"] == {
        "1h": pytest.approx(20.0),  # 20 % errors / 1 %
        "6h": pytest.approx(700 / 6000 / 0.01),  # 11.67
        "24h": pytest.approx(1240 / 24000 / 0.01),  # 5.17
        "72h": pytest.approx(1480 / 72000 / 0.01),  # 2.06
    }
    # at 5.17× the remaining third of a 672 h budget lasts 224 / 5.17 = 43.35 h
    assert slo["status"] == "at_risk"
    forecast = datetime.fromisoformat(slo["forecast_exhausted_at"].replace("Z", "+00:00"))
    expected = at(days=92) + timedelta(hours=224 / (1240 / 240))
    assert abs((forecast - expected).total_seconds()) < 1
    assert slo["alert"]["state"] == "page"
    assert len(slo["alert"]["fired"]) == 4  # 14.4/1 h, 6/6 h, 3/24 h (2 h = 15), 1/72 h
    assert slo["window"] == {
        "kind": "rolling",
        "unit": None,
        "from": "2026-09-03T00:00:00Z",
        "to": "2026-10-01T00:00:00Z",
        "ends": None,
    }


def test_a_budget_spent_exactly_is_exhausted_and_a_burn_of_exactly_14_4_pages(
    warehouse: Engine, tmp_path: Path
) -> None:
    """By hand, not by binary floating point: 1 − 0.99 is 0.010000000000000009 in floats."""
    org = Org().service("checkout", "payments")
    org.slo("spent", "checkout", 0.99, 1)  # 24 buckets of 99/100: bad 24 = budget 24
    org.sli("spent", at(days=91), 24, 99, 100)
    org.slo("paging", "checkout", 0.99, 28)  # the last hour: 144 bad of 1000 = 14.4×
    org.sli("paging", at(days=90), 23, 1000, 1000)
    org.sli("paging", at(days=91, hours=23), 1, 856, 1000)
    org.load(warehouse, tmp_path)
    doc = card(warehouse)
    spent = slo_of(doc, "spent")
    assert (spent["budget_remaining"], spent["status"]) == (0.0, "exhausted")
    assert "checkout" in doc["budget_policy"]["frozen_at_end"]
    paging = slo_of(doc, "paging")
    assert paging["burn_rate"]["1h"] == 14.4
    assert paging["alert"]["state"] == "page"


def test_budget_burned_by_incident_and_by_its_deployment(warehouse: Engine, tmp_path: Path) -> None:
    org = burning_org()
    org.deploy("co-9", "checkout", at(days=91, hours=20))
    # 22:30 to 23:30 overlaps the buckets of 22:00 (100 bad) and 23:00 (200 bad)
    org.incident(
        "INC-7", "checkout", at(days=91, hours=22, minutes=30), resolved=timedelta(hours=1)
    )
    org.load(warehouse, tmp_path)
    slo = slo_of(card(warehouse), "checkout-availability")
    assert slo["burned_by_incidents"] == {
        "incidents": 1,
        "bad_events": 300.0,
        "budget_share": pytest.approx(300 / 6720),
    }
    assert slo["burned_by_deployments"] == {
        "deployments": 1,
        "bad_events": 300.0,
        "budget_share": pytest.approx(300 / 6720),
    }
    reasons = [row["reason"] for row in explain(warehouse, "budget", Q3)]
    assert (
        "INC-7 burned 300 bad events of checkout-availability: 4.5 % of its window budget"
        in reasons
    )
    assert (
        "co-9 burned 4.5 % of checkout-availability's budget through 1 attributed incident"
        in reasons
    )


def test_slo_with_zero_traffic_is_null_with_a_reason(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments").service("search", "discovery")
    org.slo("quiet", "checkout", 0.999).sli("quiet", at(days=60), 32 * 24, 0, 0)
    org.slo("stale", "search", 0.999).sli("stale", at(days=1), 24, 10, 10)  # long before
    org.load(warehouse, tmp_path)
    doc = card(warehouse)
    for name in ("quiet", "stale"):
        slo = slo_of(doc, name)
        assert slo["sli"] is None
        assert slo["budget_remaining"] is None
        assert slo["status"] is None
        assert slo["burn_rate"] == {"1h": None, "6h": None, "24h": None, "72h": None}
        assert (
            slo["reason"] == "no events in the window: attainment and budget are unknown, not 100 %"
        )
        assert slo["alert"]["state"] == "none"


def test_calendar_quarter_window_shows_the_quarter(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments")
    org.slo("avail", "checkout", 0.999, 28)
    org.sli("avail", at(days=0), 31 * 24, 999, 1000)  # July: 1 bad in 1000
    org.sli("avail", at(days=31), 31 * 24, 998, 1000)  # August: 2 in 1000
    org.sli("avail", at(days=62), 30 * 24, 1000, 1000)  # September: none
    org.load(warehouse, tmp_path)
    rolling = slo_of(card(warehouse), "avail")
    assert (rolling["sli"], rolling["budget_remaining"], rolling["status"]) == (1.0, 1.0, "ok")
    quarter = slo_of(card(warehouse, slo_window="quarter"), "avail")
    # 2208 h × 1000 events; bad 744 + 1488 = 2232 against a budget of 2208
    assert quarter["total"] == 2_208_000
    assert quarter["sli"] == pytest.approx(1 - 2232 / 2_208_000)
    assert quarter["budget_remaining"] == pytest.approx(1 - 2232 / 2208)
    assert quarter["status"] == "exhausted"
    assert quarter["window"]["from"] == "2026-07-01T00:00:00Z"
    assert quarter["window"]["ends"] == "2026-10-01T00:00:00Z"
    month = slo_of(card(warehouse, slo_window="month"), "avail")
    assert month["window"]["from"] == "2026-09-01T00:00:00Z"
    assert month["status"] == "ok"


def test_calendar_window_declared_in_the_config(warehouse: Engine, tmp_path: Path) -> None:
    config = parse_config(
        {
            "teams": [{"name": "payments"}],
            "services": [{"name": "checkout", "team": "payments"}],
            "slos": [
                {
                    "name": "avail",
                    "service": "checkout",
                    "target": 0.999,
                    "window": "calendar",
                    "calendar_unit": "quarter",
                }
            ],
        }
    )
    apply_config(warehouse, config)
    samples = Org()
    samples.sli("avail", at(days=0), 31 * 24, 999, 1000)
    samples.sli("avail", at(days=31), 61 * 24, 1000, 1000)
    samples.load(warehouse, tmp_path)
    slo = slo_of(card(warehouse), "avail")
    assert slo["window"]["kind"] == "calendar" and slo["window"]["unit"] == "quarter"
    assert slo["bad"] == 744
    assert slo["budget_remaining"] == pytest.approx(1 - 744 / 2208)
    # the quarter's view of the same data when asked to roll instead
    assert slo_of(card(warehouse, slo_window="rolling"), "avail")["bad"] == 0


def test_freeze_intervals_and_deployments_during_freeze(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("pay", "payments").service("search", "discovery")
    org.slo("pay-avail", "pay", 0.99, 1)  # a 1-day window: budget 24 events a day at 100/h
    org.sli("pay-avail", at(days=-1), 24 * 3, 100, 100)
    org.sli("pay-avail", at(days=2), 3, 90, 100)  # 30 bad in the first 3 h of day 2
    org.sli("pay-avail", at(days=2, hours=3), 24 * 8 - 3, 100, 100)
    # The window [e − 24 h, e) holds all 30 bad events (>= 24) for e from day 2 03:00 to
    # day 3 00:00: frozen from day 2 03:00 until day 3 01:00, 22 hours.
    org.deploy("pay-1", "pay", at(days=2, hours=5))
    org.deploy("pay-2", "pay", at(days=2, hours=6), rollback_of="pay-1")
    org.deploy("pay-3", "pay", at(days=3, minutes=30))
    org.deploy("pay-4", "pay", at(days=3, hours=1))
    org.deploy("se-1", "search", at(days=2, hours=5))
    org.load(warehouse, tmp_path)
    policy = card(warehouse)["budget_policy"]
    assert policy["frozen_services"] == [
        {
            "service": "pay",
            "team": "payments",
            "intervals": [
                {
                    "from": "2026-07-03T03:00:00Z",
                    "to": "2026-07-04T01:00:00Z",
                    "slos": ["pay-avail"],
                }
            ],
            "frozen_hours": 22.0,
            "deployments": 3,
            "exempt": 1,
        }
    ]
    assert policy["deployments_during_freeze"] == 3
    assert policy["exempt"] == 1
    rows = explain(warehouse, "budget_policy", Q3)
    assert rows[0]["reason"] == (
        "pay frozen from 2026-07-03 03:00 to 2026-07-04 01:00 UTC: budget exhausted on pay-avail"
    )
    assert [row["id"] for row in rows[1:]] == ["pay-1", "pay-2", "pay-3"]
    assert rows[2]["reason"].endswith("allowed: a rollback or remediation")


def test_sli_gaps_are_counted(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments").service("search", "discovery")
    org.slo("avail", "checkout", 0.999)
    org.sli("avail", at(days=0), 100, 1000, 1000)
    org.sli("avail", at(hours=105), 10 * 24 - 105, 1000, 1000)  # hours 100-104 missing
    org.slo("empty", "search", 0.999)
    org.load(warehouse, tmp_path)
    period = Period(at(days=0), at(days=10))
    quality = card(warehouse, period)["data_quality"]
    assert quality["sli_gaps"] == 5
    assert quality["slos_with_gaps"] == 1
    assert quality["slos_without_data"] == 1
    # the current, unfinished hour is not a gap yet
    now = datetime(2026, 7, 11, 0, 30, tzinfo=UTC)
    live = scorecard(warehouse, Period(at(days=0), at(days=11)), now=now)["data_quality"]
    assert live["sli_gaps"] == 5


def test_burn_down_series_with_forecast(warehouse: Engine, tmp_path: Path) -> None:
    burning_org().load(warehouse, tmp_path)
    series = burn_down(warehouse, "checkout-availability", Q3, Settings())
    actual = series[series["kind"] == "actual"]
    assert len(actual) == 92  # every midnight from 2026-07-02 to 2026-10-01
    assert pd.isna(actual["budget_remaining"].iloc[0])  # no events yet: unknown, not 100 %
    last = actual.iloc[-1]
    assert last["at"] == at(days=92)
    assert last["budget_remaining"] == pytest.approx(1 / 3)
    # a day earlier the window held 27 days at 0.5 % errors: half the budget left
    assert actual.iloc[-2]["budget_remaining"] == pytest.approx(0.5)
    forecast = series[series["kind"] == "forecast"]
    assert forecast["budget_remaining"].tolist() == [pytest.approx(1 / 3), 0.0]

"""Toil against capacity and on-call load, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from metrics_org import Org, at
from sqlalchemy import Engine

from metrics import Period, Scope, Settings
from metrics.explain import explain
from metrics.scorecard import scorecard, team_scorecards
from poise.catalog import apply_config
from poise.config import parse_config
from poise.timeutil import utcnow
from poise.warehouse import schema
from poise.warehouse.upsert import upsert_rows

FOUR_WEEKS = Period(at(days=0), at(days=28))


def _org(warehouse: Engine, tmp_path: Path) -> None:
    apply_config(
        warehouse,
        parse_config({"teams": [{"name": "payments", "size": 4}, {"name": "discovery"}]}),
    )
    org = Org().service("checkout", "payments").service("search", "discovery")
    for day in range(1, 23):  # 22 days × 16 h = 352 h in the period
        org.toil("payments", f"2026-07-{day:02d}", 16.0)
    org.toil("payments", "2026-07-29", 100.0)  # after the period
    org.toil("discovery", "2026-07-02", 5.0)
    org.load(warehouse, tmp_path)
    pages = [
        {
            "id": f"P{n}",
            "service": "checkout",
            "team": None,
            "triggered_at": at(days=n * 4, hours=3),
            "urgency": "high",
            "after_hours": n % 3 == 0,
            "source": "pagerduty",
            "source_id": f"P{n}",
            "updated_at": utcnow(),
        }
        for n in range(6)  # days 0, 4, … 20; P0 and P3 after hours
    ]
    pages.append(
        pages[0] | {"id": "P9", "service": None, "team": "discovery", "after_hours": False}
    )
    with warehouse.begin() as connection:
        upsert_rows(connection, schema.oncall_pages, pages)


def test_toil_share_of_capacity_and_oncall_load(warehouse: Engine, tmp_path: Path) -> None:
    _org(warehouse, tmp_path)
    doc = scorecard(warehouse, FOUR_WEEKS, Scope(team="payments"), Settings())
    toil = doc["people"]["toil"]
    # capacity: 4 people × 40 h × 4 weeks = 640 h; 352 / 640 = 55 % > 50 %
    assert toil["hours"] == 352.0
    assert toil["capacity_hours"] == pytest.approx(640.0)
    assert toil["share"] == pytest.approx(0.55)
    assert toil["over_cap"] is True
    oncall = doc["people"]["oncall"]
    assert oncall == {
        "pages": 6,
        "per_week": pytest.approx(1.5),
        "after_hours": 2,
        "after_hours_share": pytest.approx(1 / 3),
        "reason": None,
    }
    # a shorter working week and a higher cap change the verdict
    relaxed = scorecard(
        warehouse, FOUR_WEEKS, Scope(team="payments"), Settings(hours_per_week=50, toil_cap=0.6)
    )["people"]["toil"]
    assert relaxed["share"] == pytest.approx(352 / 800)
    assert relaxed["over_cap"] is False


def test_team_without_a_size_has_no_share(warehouse: Engine, tmp_path: Path) -> None:
    _org(warehouse, tmp_path)
    team = scorecard(warehouse, FOUR_WEEKS, Scope(team="discovery"))["people"]
    assert team["toil"]["share"] is None
    assert team["toil"]["reason"] == "no team size configured, so no capacity to weigh toil against"
    assert team["oncall"]["pages"] == 1
    whole = scorecard(warehouse, FOUR_WEEKS)["people"]["toil"]
    assert whole["teams_without_size"] == ["discovery"]
    assert whole["share"] == pytest.approx(0.55)  # only teams with a size are weighed
    service = scorecard(warehouse, FOUR_WEEKS, Scope(service="checkout"))["people"]["toil"]
    assert service["team"] == "payments"
    assert service["share"] == pytest.approx(0.55)
    # `poise explain toil` counts what the figure counts
    rows = explain(warehouse, "toil", FOUR_WEEKS)
    assert sum(row["value"] for row in rows if row["counts"]) == whole["hours"] == 352.0
    (unsized,) = [row for row in rows if not row["counts"]]
    assert unsized["id"] == "discovery" and "the team has no size" in unsized["reason"]


def test_toil_outside_the_period_is_left_out(warehouse: Engine, tmp_path: Path) -> None:
    _org(warehouse, tmp_path)
    later = Period(at(days=28), at(days=28) + timedelta(days=7))
    toil = scorecard(warehouse, later, Scope(team="payments"))["people"]["toil"]
    assert toil["hours"] == 100.0


def test_a_team_that_never_recorded_toil_is_not_said_to_have_none(
    warehouse: Engine, tmp_path: Path
) -> None:
    apply_config(
        warehouse,
        parse_config({"teams": [{"name": "payments", "size": 4}, {"name": "ledger", "size": 3}]}),
    )
    org = Org().service("checkout", "payments").service("books", "ledger")
    for day in range(1, 23):
        org.toil("payments", f"2026-07-{day:02d}", 16.0)
    org.load(warehouse, tmp_path)
    silent = scorecard(warehouse, FOUR_WEEKS, Scope(team="ledger"))["people"]["toil"]
    assert silent["share"] is None and silent["over_cap"] is None
    assert silent["reason"].startswith("no toil recorded")
    assert silent["teams_without_toil"] == ["ledger"]
    # the whole organisation weighs only the teams that keep a toil log: 352 h of 640 h
    whole = scorecard(warehouse, FOUR_WEEKS)["people"]["toil"]
    assert whole["share"] == pytest.approx(0.55) and whole["teams_without_toil"] == ["ledger"]
    by_team = team_scorecards(warehouse, FOUR_WEEKS)
    assert by_team["ledger"]["people"]["toil"]["share"] is None
    assert by_team["payments"]["people"]["toil"]["share"] == pytest.approx(0.55)
    # a team that keeps a log and logged nothing in a period did have no toil then
    quiet = Period(at(days=40), at(days=47))
    assert scorecard(warehouse, quiet, Scope(team="payments"))["people"]["toil"]["share"] == 0.0


def test_a_team_never_paged_has_no_pages_per_week(warehouse: Engine, tmp_path: Path) -> None:
    _org(warehouse, tmp_path)  # payments' checkout is paged; discovery has one page of its own
    apply_config(warehouse, parse_config({"teams": [{"name": "ledger", "size": 3}]}))
    Org().service("books", "ledger").load(warehouse, tmp_path / "ledger")
    never = scorecard(warehouse, FOUR_WEEKS, Scope(team="ledger"))["people"]["oncall"]
    assert never["pages"] == 0 and never["per_week"] is None
    assert never["reason"].startswith("no page recorded")
    service = scorecard(warehouse, FOUR_WEEKS, Scope(service="books"))["people"]["oncall"]
    assert service["per_week"] is None
    # paged before, quiet in this period: a real zero
    quiet = Period(at(days=40), at(days=47))
    calm = scorecard(warehouse, quiet, Scope(team="payments"))["people"]["oncall"]
    assert calm["pages"] == 0 and calm["per_week"] == 0.0 and calm["reason"] is None
    # a team paged only through its team (no service): known as well
    assert scorecard(warehouse, quiet, Scope(team="discovery"))["people"]["oncall"]["per_week"] == 0
    assert team_scorecards(warehouse, FOUR_WEEKS)["ledger"]["people"]["oncall"]["per_week"] is None

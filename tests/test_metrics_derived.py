"""The derived tables (metrics.derived) change how fast figures come, never what they are."""

from __future__ import annotations

from pathlib import Path

from metrics_org import Org, at
from sqlalchemy import Engine, func, select
from test_metrics_cli import golden_quarter
from test_metrics_reliability import burning_org

from metrics import Period, Settings
from metrics.derived import refresh_derived
from metrics.freshness import is_fresh
from metrics.scorecard import scorecard, team_scorecards
from poise.warehouse import schema

Q3 = Period.quarter("2026Q3")


def _fresh(engine: Engine) -> bool:
    with engine.connect() as connection:
        return is_fresh(connection)


def test_figures_are_the_same_from_derived_tables(warehouse: Engine, tmp_path: Path) -> None:
    org = golden_quarter()
    burning = burning_org()
    for kind in ("slos", "sli"):
        key = "name" if kind == "slos" else "slo"
        org.rows[kind] += [row | {key: "checkout-latency"} for row in burning.rows[kind]]
    org.service("pay", "payments").slo("pay-avail", "pay", 0.99, 1)
    org.sli("pay-avail", at(days=-1), 24 * 3, 100, 100).sli("pay-avail", at(days=2), 3, 90, 100)
    org.sli("pay-avail", at(days=2, hours=3), 24 * 8 - 3, 100, 100)
    org.deploy("pay-1", "pay", at(days=2, hours=5))
    org.change("late", "checkout", at(days=91))  # never deployed
    org.load(warehouse, tmp_path)
    assert not _fresh(warehouse)
    periods = [
        Q3,
        Period(at(days=1, hours=7), at(days=40, hours=13)),
        Period(at(days=-30), at(days=93)),
    ]
    before = [scorecard(warehouse, period) for period in periods]
    teams_before = team_scorecards(warehouse, Q3)
    quarter_before = scorecard(warehouse, Q3, settings=Settings(slo_window="quarter"))

    done = refresh_derived(warehouse, Settings())
    assert done["change_leads"] == 6 and done["sli_daily"] > 0
    assert _fresh(warehouse)
    assert [scorecard(warehouse, period) for period in periods] == before
    assert team_scorecards(warehouse, Q3) == teams_before
    assert scorecard(warehouse, Q3, settings=Settings(slo_window="quarter")) == quarter_before
    assert before[0]["budget_policy"]["frozen_services"][0]["service"] == "pay"
    assert before[0]["data_quality"]["changes_never_deployed"] == 1


def test_a_later_import_makes_them_stale_until_refreshed(warehouse: Engine, tmp_path: Path) -> None:
    org = Org().service("checkout", "payments")
    org.change("c1", "checkout", at(days=1)).deploy("d1", "checkout", at(days=2), ["c1"])
    org.load(warehouse, tmp_path / "one")
    refresh_derived(warehouse, Settings())
    assert _fresh(warehouse)
    # importing the same file again writes nothing: still fresh
    org.load(warehouse, tmp_path / "one")
    assert _fresh(warehouse)
    more = Org().change("c2", "checkout", at(days=3)).deploy("d2", "checkout", at(days=4), ["c2"])
    more.load(warehouse, tmp_path / "two")
    assert not _fresh(warehouse)
    more.load(warehouse, tmp_path / "two")  # again: writes nothing, resets its counts ...
    assert not _fresh(warehouse)  # ... and the unrefreshed write is still known
    # stale derived rows are not used: the new deployment's change counts already
    assert scorecard(warehouse, Q3)["dora"]["lead_time"]["changes"] == 2
    refresh_derived(warehouse, Settings())
    with warehouse.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(schema.change_leads)).scalar() == 2
        )
    assert scorecard(warehouse, Q3)["dora"]["lead_time"]["changes"] == 2

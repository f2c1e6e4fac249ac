"""The derived tables (metrics.derived) change how fast figures come, never what they are."""

from __future__ import annotations

from pathlib import Path

from metrics_org import Org, at
from sqlalchemy import Engine, func, select, text
from test_metrics_cli import golden_quarter
from test_metrics_reliability import burning_org

from metrics import Period, Settings
from metrics.derived import refresh_derived
from metrics.freshness import is_fresh
from metrics.scorecard import scorecard, team_scorecards
from poise.warehouse import open_warehouse, schema

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


def _leads(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(schema.change_leads).order_by(schema.change_leads.c.change_id)
            )
        ]


def test_a_rebuild_writes_what_a_build_from_scratch_would(
    warehouse: Engine, tmp_path: Path
) -> None:
    """A rebuild rewrites only the rows that changed: it must end where a first build does,
    whatever changed in between."""
    org = Org().service("checkout", "payments").service("search", "payments")
    for n in range(1, 7):
        org.change(f"c{n}", "checkout", at(days=n))
    org.change("s1", "search", at(days=1))
    org.deploy("d1", "checkout", at(days=3), ["c1", "c2", "c3"])
    org.deploy("a1", "checkout", at(days=3), ["c3"])  # a tie: the lower id comes first
    org.deploy("d2", "checkout", at(days=5), ["c4"])
    org.deploy("d3", "checkout", at(days=8), ["c5", "c4"])
    org.deploy("e1", "search", at(days=2), ["s1"])
    org.load(warehouse, tmp_path)
    refresh_derived(warehouse, Settings())
    first = {row[0]: row[3] for row in _leads(warehouse)}
    assert first == {
        "c1": "d1",
        "c2": "d1",
        "c3": "a1",
        "c4": "d2",
        "c5": "d3",
        "c6": None,
        "s1": "e1",
    }

    dc, d, c, s = (
        schema.deployment_changes,
        schema.deployments,
        schema.changes,
        schema.services,
    )
    with warehouse.begin() as connection:
        # c3 was also in an earlier deployment; d2 turned out to have failed (c4 now first
        # ships with d3); c6 finally ships; c2 is gone; c1's time was corrected; search's
        # production environment was renamed, so e1 no longer counts
        connection.execute(dc.insert(), [{"deployment_id": "e1", "change_id": "c3"}])
        connection.execute(d.update().where(d.c.id == "d2").values(status="failed"))
        connection.execute(dc.insert(), [{"deployment_id": "d3", "change_id": "c6"}])
        connection.execute(c.delete().where(c.c.id == "c2"))
        connection.execute(
            c.update().where(c.c.id == "c1").values(committed_at=at(days=2, hours=1))
        )
        connection.execute(
            s.update().where(s.c.name == "search").values(production_environment="live")
        )
    refresh_derived(warehouse, Settings())
    rebuilt = _leads(warehouse)
    with warehouse.begin() as connection:
        connection.execute(schema.change_leads.delete())
    refresh_derived(warehouse, Settings())
    assert rebuilt == _leads(warehouse)
    assert {row[0]: row[3] for row in rebuilt} == {
        "c1": "d1",
        "c3": "a1",
        "c4": "d3",
        "c5": "d3",
        "c6": "d3",
        "s1": None,
    }


def test_the_refresh_gives_postgresql_the_sizes_of_what_was_just_written(
    postgres_url: str, tmp_path: Path
) -> None:
    """An import has just written the rows: without fresh statistics PostgreSQL plans the
    refresh and the first scorecards as if the tables were empty."""
    engine = open_warehouse(postgres_url)
    try:
        org = Org().service("checkout", "payments")
        for n in range(1, 41):
            org.change(f"c{n}", "checkout", at(days=n % 20))
        org.deploy("d1", "checkout", at(days=21), [f"c{n}" for n in range(1, 41)])
        org.load(engine, tmp_path)
        refresh_derived(engine, Settings())
        with engine.connect() as connection:
            sizes = dict(
                connection.execute(
                    text(
                        "SELECT relname, reltuples FROM pg_class WHERE relnamespace = "
                        "current_schema()::regnamespace AND relkind = 'r'"
                    )
                ).all()
            )
        assert sizes["changes"] == 40 and sizes["deployment_changes"] == 40
        assert sizes["deployments"] == 1 and sizes["change_leads"] == 40
    finally:
        engine.dispose()

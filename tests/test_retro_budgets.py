"""The retro's "Error budget spent" for a team of many SLOs: every SLO read at once
(`metrics.burndown.load_spent`, `dashboard.queries.budgets_spent`) gives exactly what the
page computed before, one burn-down per SLO (`spent_since` of `load_burndown` of each
scorecard SLO); the page shows the same table and notes, and asks for them in one query.

The warehouse (built once for the module with `metrics_org.Org`): team `big` with 60 SLOs
whose hourly samples carry fractional counts (so a sum added in another order would show
in the last bits), and SLOs at the edges: no sample at all, samples that stop before the
later sprints, samples that begin inside a sprint, a 7-day window (shorter than a 14-day
sprint), and no events (no budget); team `small` with SLOs of its own, out of scope."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from metrics_org import Org, at, iso
from sqlalchemy import Engine
from test_pages import assert_clean, run

from dashboard import data, queries, retro
from dashboard.components import percent
from dashboard.data import Query, Warehouse
from metrics import Settings
from metrics.burndown import load_burndown, load_spent, spent_since
from metrics.model import SloWindow
from poise.warehouse import open_warehouse

DAYS = 40  # hourly samples from 2026-07-01 for this many days
PLAIN = 60
SERVICES = 10
EDGES = ("quiet", "stopped", "late", "short", "idle")
# (end, days) of the sprints checked: at the data's end; a 28-day one; one whose windows
# begin before the first sample; one after the last sample (windows holding samples from
# before the sprint only)
SPRINTS = ((at(DAYS), 14), (at(33), 28), (at(8), 7), (at(50), 7))


def samples(org: Org, slo: str, first: datetime, hours: int, rng: np.random.Generator) -> None:
    totals = rng.uniform(50.0, 5000.0, hours).round(3)
    errors = rng.gamma(0.8, 0.004, hours)
    errors[rng.random(hours) < 0.01] *= 40  # bursts
    goods = (totals * (1.0 - np.clip(errors, 0.0, 1.0))).round(3)
    for hour, (good, total) in enumerate(zip(goods, totals, strict=True)):
        org.rows["sli"].append(
            {
                "slo": slo,
                "timestamp": iso(first + timedelta(hours=hour)),
                "good": float(good),
                "total": float(total),
            }
        )


def organisation(plain: int = PLAIN) -> Org:
    """Team `big`: `plain` SLOs sampled for DAYS days, then the edge cases (EDGES); team
    `small` with two SLOs of its own; a deployment a day and an incident."""
    rng = np.random.default_rng(7)
    org = Org()
    for index in range(SERVICES):
        org.service(f"svc-{index}", "big")
    org.service("other", "small")
    for day in range(1, DAYS):  # something for the rest of the page
        service = f"svc-{day % SERVICES}"
        org.change(f"c{day}", service, at(day, hours=2), at(day, hours=5))
        org.deploy(f"d{day}", service, at(day, hours=9), [f"c{day}"])
    org.incident("i1", "svc-1", at(DAYS - 3), cause="capacity")
    hours = DAYS * 24
    for index in range(plain):
        name = f"slo-{index:02d}"
        target = (0.99, 0.995, 0.999)[index % 3]
        org.slo(name, f"svc-{index % SERVICES}", target, window_days=(28, 30)[index % 2])
        samples(org, name, at(), hours, rng)
    org.slo("quiet", "svc-0", 0.99)  # never a sample
    org.slo("stopped", "svc-1", 0.99)
    samples(org, "stopped", at(), 20 * 24, rng)
    org.slo("late", "svc-2", 0.99)
    samples(org, "late", at(DAYS - 5), 5 * 24, rng)
    org.slo("short", "svc-3", 0.999, window_days=7)
    samples(org, "short", at(), hours, rng)
    org.slo("idle", "svc-4", 0.99)  # samples without events: no budget
    org.sli("idle", at(), hours, 0.0, 0.0)
    for index in range(2):
        org.slo(f"small-{index}", "other", 0.99)
        samples(org, f"small-{index}", at(), hours, rng)
    return org


@pytest.fixture(scope="module")
def many_slos(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("many-slos")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    engine = open_warehouse(url)
    organisation().load(engine, folder / "files")
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def engine(many_slos: str) -> Iterator[Engine]:
    engine = open_warehouse(many_slos, migrate=False)
    yield engine
    engine.dispose()


def warehouse(engine: Engine, settings: Settings) -> Warehouse:
    """The queries' warehouse with each basis computed once, as the cache layer shares it."""
    return Warehouse(
        engine, settings, basis_of=cache(lambda query: data.compute_basis(engine, settings, query))
    )


def sprint(end: datetime, days: int) -> Query:
    return Query(end - timedelta(days=days), end, "big", None)


def one_by_one(wh: Warehouse, query: Query) -> dict[str, float | None]:
    """What the page computed before: each scorecard SLO's burn-down (as `data.burndown`
    reads it), then `spent_since` on it."""
    card = data.scorecard(wh, query)
    return {
        slo["name"]: spent_since(slo, load_burndown(wh.engine, slo), query.start)
        for slo in card["slos"]
    }


def same(left: dict[str, float | None], right: dict[str, float | None]) -> None:
    assert list(left) == list(right)
    # equal to the last bit, not approximately: the table's CSV keeps the shares unrounded
    # (on these fractional counts a grouped sum, adding in another order, differs for
    # about a third of the SLOs)
    unequal = {
        name: (left[name], right[name])
        for name in left
        if left[name] != right[name] or type(left[name]) is not type(right[name])
    }
    assert not unequal


@pytest.mark.parametrize(("end", "days"), SPRINTS)
@pytest.mark.parametrize("window", [None, "month"])
def test_every_slo_at_once_equals_one_burn_down_per_slo(
    engine: Engine, end: datetime, days: int, window: SloWindow | None
) -> None:
    """Per sprint, and with calendar months for every SLO (a window that began during
    the sprint counts only its part)."""
    wh = warehouse(engine, Settings(slo_window=window))
    query = sprint(end, days)
    before = one_by_one(wh, query)
    assert len(before) == PLAIN + len(EDGES)  # the team's SLOs only
    # from the scorecard's SLOs, and from the basis the query reads them from
    same(load_spent(engine, data.scorecard(wh, query)["slos"], query.start), before)
    same(queries._budgets_spent(wh, query), before)
    # the cases the sprints are chosen for occur
    assert before["quiet"] is None and before["idle"] is None
    if end > at(DAYS):  # after the data: the windows hold samples, the sprint none
        assert before["slo-00"] == 0.0 and before["late"] == 0.0
        assert before["stopped"] is None  # nothing in its window either
    else:
        assert before["slo-00"] is not None and before["slo-00"] > 0
    if end == at(DAYS):  # samples that begin inside it; a window shorter than it
        assert before["late"] is not None and before["late"] > 0
        assert before["short"] is not None and math.isfinite(before["short"])


def test_the_same_on_either_engine(warehouse: Engine, tmp_path: Path) -> None:
    """SQLite and PostgreSQL (when POISE_TEST_POSTGRES_URL names one): a smaller team,
    every sprint above."""
    organisation(plain=6).load(warehouse, tmp_path / "files")
    wh = Warehouse(warehouse, Settings())
    for end, days in SPRINTS:
        query = sprint(end, days)
        same(
            load_spent(
                warehouse,
                data.compute_basis(warehouse, Settings(), query).reliability.evaluated,
                query.start,
            ),
            one_by_one(wh, query),
        )


def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in row.items()
        }
        for row in frame.to_dict("records")
    ]


def test_the_page_shows_the_same_budgets_from_one_query(
    many_slos: str, engine: Engine, use: Any
) -> None:
    use(many_slos)
    end, days = SPRINTS[0]
    query = sprint(end, days)
    wh = warehouse(engine, Settings())
    spent = one_by_one(wh, query)
    change = data.comparison(wh, query)
    queries.RECORDER = []
    try:
        page = run("team_retro", team="big", sprint_end=f"{end:%Y-%m-%d}", sprint_days=str(days))
        asked = [name for name, _ in queries.RECORDER]
    finally:
        queries.RECORDER = None
    assert_clean(page)
    # one query for every SLO's budget, not one burn-down per SLO
    assert asked.count("budgets_spent") == 1 and "burndown" not in asked
    shown = next(
        frame.value
        for frame in page.dataframe
        if {"slo", "spent", "budget_at_start", "budget_at_end"} <= set(frame.value.columns)
    )
    shown = shown.data if hasattr(shown, "data") else shown
    expected = pd.DataFrame(
        retro.budget_rows(change, spent),
        columns=["slo", "spent", "budget_at_start", "budget_at_end"],
    )
    assert len(shown) == PLAIN + len(EDGES)
    assert rows(shown) == rows(expected)
    notes = page.code[0].value
    for row in rows(expected):
        line = (
            f"| {retro.cell(row['slo'])} | {percent(row['spent'])} | "
            f"{percent(row['budget_at_start'])} | {percent(row['budget_at_end'])} |"
        )
        assert line in notes


def test_comparison_is_the_change_between_the_cached_scorecards(
    many_slos: str, engine: Engine, use: Any
) -> None:
    """`queries.comparison` takes the two scorecards from their cache instead of
    assembling them again: the same document as `data.comparison`, recorded once."""
    use(many_slos)
    query = sprint(*SPRINTS[0])
    queries.RECORDER = []
    try:
        compared = queries.comparison(query)
        asked = list(queries.RECORDER)
    finally:
        queries.RECORDER = None
    assert compared == data.comparison(warehouse(engine, Settings()), query)
    assert asked == [("comparison", (query,))]
    assert len(compared["slos"]) == PLAIN + len(EDGES)

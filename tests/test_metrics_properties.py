"""Properties that must hold for any data (hypothesis).

- rates stay within [0, 1], counts add up, p90 is never below the median;
- ruling SLOs out of hour-by-hour budget-policy evaluation never drops a freeze;
- adding an unrelated service never changes another team's figures (SQLite and PostgreSQL),
  and `team_scorecards` agrees with `scorecard` for that team.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metrics_org import Org, at
from sqlalchemy import Engine

from metrics import attribution, delivery, policy
from metrics.incidents import incident_figures
from metrics.model import Period, Scope, Settings
from metrics.scorecard import scorecard, team_scorecards
from poise.warehouse import schema

Q3 = Period.quarter("2026Q3")
HOURS = st.integers(min_value=-48, max_value=92 * 24 + 48)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    count = draw(st.integers(0, 25))
    hours = sorted(draw(st.lists(HOURS, min_size=count, max_size=count)))
    services = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=count, max_size=count))
    ids = [f"d{i}" for i in range(count)]
    rollback = [
        draw(st.sampled_from(ids[:i])) if i and draw(st.booleans()) else None for i in range(count)
    ]
    deployments = pd.DataFrame(
        {
            "id": ids,
            "service": services,
            "team": "t",
            "deployed_at": [at(hours=h) for h in hours],
            "rollback_of": rollback,
            "remediation_of": None,
            "has_changes": True,
        }
    )
    deployments["deployed_at"] = pd.to_datetime(deployments["deployed_at"], utc=True)
    deployments["in_period"] = (deployments["deployed_at"] >= Q3.start) & (
        deployments["deployed_at"] < Q3.end
    )
    named = deployments[deployments["rollback_of"].notna()]
    fixers = pd.DataFrame(
        {
            "id": named["id"],
            "service": named["service"],
            "deployed_at": named["deployed_at"],
            "target": named["rollback_of"],
            "how": "rollback",
            "target_team": "t",
        }
    )
    n = draw(st.integers(0, 15))
    starts = draw(st.lists(HOURS, min_size=n, max_size=n))
    incidents = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(n)],
            "service": draw(
                st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n)
            ),
            "team": "t",
            "severity": "SEV2",
            "started_at": pd.to_datetime([at(hours=h) for h in starts], utc=True),
            "detected_at": pd.to_datetime([at(hours=h, minutes=5) for h in starts], utc=True),
            "acknowledged_at": pd.to_datetime([at(hours=h, minutes=9) for h in starts], utc=True),
            "resolved_at": pd.to_datetime([at(hours=h + 2) for h in starts], utc=True),
            "caused_by_deployment": [
                draw(st.sampled_from(ids)) if ids and draw(st.booleans()) else None
                for _ in range(n)
            ],
            "cause": draw(st.lists(st.sampled_from([None, "external"]), min_size=n, max_size=n)),
        }
    )
    incidents["in_period"] = (incidents["started_at"] >= Q3.start) & (
        incidents["started_at"] < Q3.end
    )
    return deployments, fixers, incidents


@given(deliveries())
@settings(max_examples=60, deadline=None)
def test_rates_stay_in_range_and_counts_add_up(data: tuple) -> None:
    deployments, fixers, incidents = data
    links = attribution.attribute(incidents, deployments, timedelta(hours=24))
    assert len(links) == len(incidents)
    assert sum(attribution.counts(links).values()) == len(incidents)
    rows = delivery.deployment_rows(deployments, fixers, links, incidents)
    changes = pd.DataFrame({"lead_hours": pd.Series(dtype=float), "deployed_at": []})
    dora = delivery.dora(rows, changes, Q3, Settings())
    cfr, rework = dora["change_failure_rate"], dora["rework_rate"]
    for block in (cfr, rework):
        assert block["rate"] is None or 0.0 <= block["rate"] <= 1.0
    assert cfr["failed"] <= cfr["deployments"] == int(deployments["in_period"].sum())
    recovery = dora["recovery_time"]
    assert recovery["failures"] + recovery["unrecovered"] <= cfr["failed"]
    if recovery["median_hours"] is not None:
        assert 0 <= recovery["median_hours"] <= recovery["p90_hours"]
    figures = incident_figures(incidents[incidents["in_period"]])
    if figures["mttr_median_hours"] is not None:
        assert figures["mttr_median_hours"] <= figures["mttr_p90_hours"]


@st.composite
def sli_series(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    slos, samples = [], []
    for index in range(draw(st.integers(1, 4))):
        name = f"slo{index}"
        target = draw(st.sampled_from([0.9, 0.99, 0.999]))
        days = draw(st.integers(1, 3))
        slos.append((name, "svc", "team", target, days, "rolling", None))
        hours = draw(st.integers(24, 24 * 12))
        base = draw(st.integers(1, 200))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        total = rng.poisson(base, hours).astype(float)
        rate = (1 - target) * rng.gamma(0.5, 2.0, hours)
        bad = np.minimum(rng.binomial(total.astype(int), np.clip(rate, 0, 1)), total)
        keep = rng.random(hours) > 0.05  # a few gaps
        ts = pd.date_range(at(days=-days), periods=hours, freq="h")
        samples.append(
            pd.DataFrame(
                {"slo": name, "ts": ts[keep], "good": (total - bad)[keep], "total": total[keep]}
            )
        )
    frame = pd.DataFrame(
        slos,
        columns=[
            "name",
            "service",
            "team",
            "target",
            "window_days",
            "window_kind",
            "calendar_unit",
        ],
    )
    return frame, pd.concat(samples, ignore_index=True)


@given(sli_series())
@settings(max_examples=80, deadline=None)
def test_daily_bound_never_drops_a_freeze(data: tuple) -> None:
    slos, hourly = data
    start, cap = at(days=0), at(days=9)
    everything = policy.exhausted_intervals(slos, hourly, start, cap, Settings())
    daily = (
        hourly.assign(day=hourly["ts"].dt.floor("D"))
        .groupby(["slo", "day"], as_index=False)[["good", "total"]]
        .sum()
    )
    days = policy.candidates(slos, daily, start, cap, Settings())
    ranges = policy.sample_ranges(slos[slos["name"].isin(days)], days, cap, Settings())
    needed = pd.concat(
        [
            hourly[(hourly["slo"] == n) & (hourly["ts"] >= a) & (hourly["ts"] < b)]
            for n, a, b in ranges
        ]
        or [hourly.iloc[0:0]]
    )
    pruned = policy.exhausted_intervals(
        slos[slos["name"].isin(days)], needed, start, cap, Settings(), days
    )
    pd.testing.assert_frame_equal(
        everything.reset_index(drop=True), pruned.reset_index(drop=True), check_dtype=False
    )


def _wipe(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(schema.CANONICAL_TABLES):
            connection.execute(table.delete())


def _team_a(org: Org, seed: int) -> Org:
    rng = np.random.default_rng(seed)
    org.service("a1", "alpha").service("a2", "alpha")
    org.slo("a1-avail", "a1", 0.99, 7)
    org.sli("a1-avail", at(days=80), 24 * 12, 995, 1000)
    for i in range(int(rng.integers(3, 12))):
        service = "a1" if i % 2 else "a2"
        org.change(f"ac{i}", service, at(hours=int(rng.integers(0, 2000))))
        org.deploy(f"ad{i}", service, at(hours=int(rng.integers(2000, 2200))), [f"ac{i}"])
        if rng.random() < 0.4:
            org.incident(f"AI{i}", service, at(hours=int(rng.integers(2000, 2210))))
    return org


def _unrelated(org: Org, seed: int) -> Org:
    rng = np.random.default_rng(seed)
    org.service("b1", "beta")
    org.slo("b1-avail", "b1", 0.999, 28)
    org.sli("b1-avail", at(days=60), 24 * 32, 900, 1000)
    for i in range(int(rng.integers(1, 10))):
        org.deploy(f"bd{i}", "b1", at(hours=int(rng.integers(1990, 2210))))
        org.incident(f"BI{i}", "b1", at(hours=int(rng.integers(1990, 2210))))
    return org


@given(st.integers(0, 10_000), st.integers(0, 10_000))
@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_an_unrelated_service_changes_no_other_team(
    warehouse: Engine, tmp_path: Path, seed: int, other: int
) -> None:
    folder = tmp_path / f"{seed}-{other}"
    _wipe(warehouse)
    _team_a(Org(), seed).load(warehouse, folder / "a")
    before = scorecard(warehouse, Q3, Scope(team="alpha"))
    _unrelated(Org(), other).load(warehouse, folder / "b")
    after = scorecard(warehouse, Q3, Scope(team="alpha"))
    assert after == before
    assert team_scorecards(warehouse, Q3)["alpha"] == after
    shutil.rmtree(folder)

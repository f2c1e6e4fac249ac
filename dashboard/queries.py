"""The one cached query layer every page reads through.

- the SQLAlchemy engine and the settings are process-wide resources (`st.cache_resource`):
  the warehouse URL comes from POISE_DATABASE_URL (set by `poise ui`), else the config's
  `database`, else the default; the config from POISE_CONFIG or ./poise.yaml. Both names
  are part of every cache key below;
- the engine's row-level basis of a period and scope is a shared resource too (read-only,
  kept for TTL seconds): one load serves every figure of that period and scope, on every
  page and for every visitor;
- every query of `dashboard.data` is wrapped in `st.cache_data(ttl=TTL)`: pages get plain
  data (dicts, DataFrames) that they may not change the cache by touching.

A page never calls `metrics` or the database itself. `clear()` empties everything (the
"Refresh data" button). When the warehouse cannot be reached (checked first by every page,
`ensure_available`, and again whenever a query fails) the page says so and stops
(`dashboard.outage`); since no failure is cached, it shows figures again as soon as the
warehouse answers. `RECORDER`, when a list, receives every query a page makes, so the
benchmark can replay the same queries without the cache layer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from dashboard import data, guardrails, outage
from dashboard.data import Query, Warehouse
from metrics import Settings
from metrics.scorecard import Basis
from poise.config import AnomalyConfig, load_config
from poise.errors import DatabaseUnavailable
from poise.warehouse import open_warehouse, resolve_url
from poise.warehouse.engine import unavailable

TTL = 300  # seconds a query result is reused before the warehouse is read again
CATALOG_TTL = 60
RECORDER: list[tuple[str, tuple[Any, ...]]] | None = None

R = TypeVar("R")


def source() -> tuple[str | None, str | None]:
    """Where the warehouse and the config are named (part of every cache key, so that
    a process never mixes two warehouses' figures)."""
    return os.environ.get("POISE_DATABASE_URL") or None, os.environ.get("POISE_CONFIG") or None


@st.cache_resource(show_spinner=False)
def _context(url: str | None, config_path: str | None) -> tuple[Engine, Settings, AnomalyConfig]:
    """The warehouse, the metric settings and the anomaly rule: the config is read once."""
    config = load_config(config_path)
    warehouse_engine = open_warehouse(resolve_url(url, config.database))
    return warehouse_engine, Settings.from_config(config), config.anomalies


def engine() -> Engine:
    return _context(*source())[0]


def settings() -> Settings:
    return _context(*source())[1]


@st.cache_resource(ttl=TTL, max_entries=24, show_spinner="Computing the figures…")
def _basis(where: tuple[str | None, str | None], query: Query) -> Basis:
    engine, settings, _ = _context(*where)
    return data.compute_basis(engine, settings, query)


def unreachable() -> DatabaseUnavailable | None:
    """Why the warehouse cannot be reached now, or None when it answers."""
    where = source()
    try:
        engine = _context(*where)[0]  # opening it the first time may be what fails
    except DatabaseUnavailable as problem:
        return problem
    except (OperationalError, InterfaceError) as exc:  # lost during the schema upgrade
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return DatabaseUnavailable(f"database unavailable: {reason}")
    return unavailable(engine)


def ensure_available() -> None:
    """Every page first: when the warehouse cannot be reached, say so and stop the page
    (figures cached from before would otherwise pass for current ones)."""
    problem = unreachable()
    if problem is not None:
        outage.stop(problem, unreachable)


def _guarded(call: Callable[[], R]) -> R:
    """Run a query; when it fails because the warehouse went away meanwhile, say so and stop
    the page. A connection that broke in a restart the warehouse is already back from is
    retried once; any other failure is a bug and is raised as it is."""
    try:
        return call()
    except DatabaseUnavailable as problem:
        outage.stop(problem, unreachable)
    except (OperationalError, InterfaceError) as exc:
        problem = unreachable()
        if problem is not None:
            outage.stop(problem, unreachable)
        if not exc.connection_invalidated:
            raise
    return call()


def warehouse() -> Warehouse:
    where = source()
    engine, settings, rule = _context(*where)
    return Warehouse(
        engine, settings, basis_of=lambda query: _basis(where, query), anomaly_rule=rule
    )


def anomaly_rule() -> AnomalyConfig:
    """The config's rule for unusual weeks (`anomalies`)."""
    return _context(*source())[2]


def _cached(function: Callable[..., R], *, ttl: int = TTL) -> Callable[..., R]:
    """`function(warehouse, *args)` as a cached query `query(*args)`."""

    def run(where: tuple[str | None, str | None], *args: Any) -> R:
        return function(warehouse(), *args)

    # Streamlit keys a cache by the function's qualified name and source: give each query
    # its own, or they would share one cache.
    run.__qualname__ = run.__name__ = f"query_{function.__name__}"
    cached = st.cache_data(ttl=ttl, max_entries=64, show_spinner=False)(run)

    def query(*args: Any) -> R:
        if RECORDER is not None:
            RECORDER.append((function.__name__, args))
        return _guarded(lambda: cached(source(), *args))

    query.__name__ = function.__name__
    query.__doc__ = function.__doc__
    return query


catalog = _cached(data.catalog, ttl=CATALOG_TTL)
scorecard = _cached(data.scorecard)
comparison = _cached(data.comparison)
slo_summary = _cached(data.slo_summary)
team_table = _cached(data.team_table)
weekly = _cached(data.weekly)
lead_times = _cached(data.lead_times)
deployments = _cached(data.deployments)
reliability_view = _cached(data.reliability_view)
burndown = _cached(data.burndown)
incidents = _cached(data.incidents)
source_view = _cached(data.source_view)
gate_ledger = _cached(guardrails.gate_ledger)
certificate_view = _cached(guardrails.certificate_view)


def _anomaly_weeks(wh: Warehouse, query: Query) -> Any:
    return guardrails.anomaly_weeks(wh, query, wh.anomaly_rule)


_anomaly_weeks.__name__ = "anomaly_weeks"
anomaly_weeks = _cached(_anomaly_weeks)


@st.cache_resource(ttl=TTL, max_entries=8, show_spinner="Building the report…")
def _report(where: tuple[str | None, str | None], quarter: str, team: str | None) -> Any:
    return data.report(warehouse(), quarter, team)


@st.cache_data(ttl=TTL, max_entries=32, show_spinner="Laying out the report…")
def _report_file(
    where: tuple[str | None, str | None], quarter: str, team: str | None, fmt: str
) -> bytes:
    return data.report_file(_report(where, quarter, team), fmt)


def report_file(quarter: str, team: str | None, fmt: str) -> bytes:
    """The quarterly report in one format (built once per quarter and team)."""
    if RECORDER is not None:
        RECORDER.append(("report_file", (quarter, team, fmt)))
    return _guarded(lambda: _report_file(source(), quarter, team, fmt))


def clear() -> None:
    """Forget every cached result (the next page view reads the warehouse again)."""
    st.cache_data.clear()
    _basis.clear()
    _report.clear()


__all__ = [
    "RECORDER",
    "TTL",
    "Query",
    "anomaly_weeks",
    "catalog",
    "certificate_view",
    "clear",
    "comparison",
    "deployments",
    "engine",
    "ensure_available",
    "gate_ledger",
    "incidents",
    "lead_times",
    "reliability_view",
    "report_file",
    "scorecard",
    "settings",
    "slo_summary",
    "source_view",
    "team_table",
    "unreachable",
    "warehouse",
    "weekly",
]

"""The one cached query layer every page reads through.

- the SQLAlchemy engine and the settings are process-wide resources (`st.cache_resource`):
  the warehouse URL comes from POISE_DATABASE_URL (set by `poise ui`), else the config's
  `database`, else the default; the config from POISE_CONFIG or ./poise.yaml. Both names,
  and for a SQLite file which file is at that path now, are part of every cache key below:
  a warehouse rebuilt in a new file (`rm data/demo.db; make demo`) is read at once, not
  through connections still open on the deleted file;
- the engine's row-level basis of a period and scope is a shared resource too (read-only,
  kept for TTL seconds): one load serves every figure of that period and scope, on every
  page and for every visitor;
- every query of `dashboard.data` is wrapped in `st.cache_data(ttl=TTL)`: pages get plain
  data (dicts, DataFrames) that they may not change the cache by touching. `comparison`
  is the change between two cached scorecards, not a third assembly of them.

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
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from dashboard import data, guardrails, outage
from dashboard.data import Query, Warehouse
from metrics import Settings, reliability, trends
from metrics.burndown import load_spent
from metrics.scorecard import Basis
from poise.config import AnomalyConfig, load_config
from poise.errors import DatabaseUnavailable, PoiseError
from poise.warehouse import open_warehouse, resolve_url
from poise.warehouse.engine import again_if_malformed, unavailable

TTL = 300  # seconds a query result is reused before the warehouse is read again
CATALOG_TTL = 60
RECORDER: list[tuple[str, tuple[Any, ...]]] | None = None

R = TypeVar("R")


FileIdentity = tuple[int, int] | None
Where = tuple[str | None, str | None, FileIdentity]


def source() -> Where:
    """Where the warehouse and the config are named, and which SQLite file is there now
    (part of every cache key, so that a process never mixes two warehouses' figures)."""
    url = os.environ.get("POISE_DATABASE_URL") or None
    config_path = os.environ.get("POISE_CONFIG") or None
    return url, config_path, file_identity(_configured(url, config_path)[0])


def file_identity(url: str) -> FileIdentity:
    """The device and inode of a SQLite warehouse's file (None for a server, memory, or a
    file not there yet): a file deleted and made again is another warehouse, which the
    connections still open on the old one would never see."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return None
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


@st.cache_resource(show_spinner=False)
def _configured(url: str | None, config_path: str | None) -> tuple[str, Settings, AnomalyConfig]:
    """The warehouse's URL, the metric settings and the anomaly rule: the config is read once."""
    config = load_config(config_path)
    return resolve_url(url, config.database), Settings.from_config(config), config.anomalies


# a few files' engines at most: one replaced file's engine is dropped with its connections
@st.cache_resource(show_spinner=False, max_entries=4)
def _engine(url: str, identity: FileIdentity) -> Engine:
    return open_warehouse(url)


def _context(
    url: str | None, config_path: str | None, identity: FileIdentity
) -> tuple[Engine, Settings, AnomalyConfig]:
    """The warehouse, the metric settings and the anomaly rule."""
    resolved, settings, rule = _configured(url, config_path)
    return _engine(resolved, identity), settings, rule


def engine() -> Engine:
    return _context(*source())[0]


def settings() -> Settings:
    return _context(*source())[1]


@st.cache_resource(ttl=TTL, max_entries=24, show_spinner="Computing the figures…")
def _basis(where: Where, query: Query) -> Basis:
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
    try:
        problem = unreachable()
    except PoiseError as refused:  # it answers, but this Poise cannot use it
        outage.refuse(refused)
    if problem is not None:
        outage.stop(problem, unreachable)


def _guarded(call: Callable[[], R]) -> R:
    """Run a query; when it fails because the warehouse went away meanwhile, say so and stop
    the page. A connection that broke in a restart the warehouse is already back from is
    retried once, a read SQLite found malformed for a moment up to twice
    (`again_if_malformed`: every page query only reads); any other failure is a bug and is
    raised as it is."""
    try:
        return again_if_malformed(engine(), call)
    except DatabaseUnavailable as problem:
        outage.stop(problem, unreachable)
    except (OperationalError, InterfaceError) as exc:
        problem = unreachable()
        if problem is not None:
            outage.stop(problem, unreachable)
        if not exc.connection_invalidated:
            raise
    return call()


def warehouse(where: Where | None = None) -> Warehouse:
    where = where or source()
    engine, settings, rule = _context(*where)
    return Warehouse(
        engine, settings, basis_of=lambda query: _basis(where, query), anomaly_rule=rule
    )


def anomaly_rule() -> AnomalyConfig:
    """The config's rule for unusual weeks (`anomalies`)."""
    return _context(*source())[2]


def _cache(function: Callable[..., R], *, ttl: int = TTL) -> Callable[..., R]:
    """`function(warehouse, *args)` as a cached call `call(*args)` (not recorded)."""

    def run(where: Where, *args: Any) -> R:
        return function(warehouse(where), *args)

    # Streamlit keys a cache by the function's qualified name and source: give each query
    # its own, or they would share one cache.
    run.__qualname__ = run.__name__ = f"query_{function.__name__}"
    cached = st.cache_data(ttl=ttl, max_entries=64, show_spinner=False)(run)

    def call(*args: Any) -> R:
        return _guarded(lambda: cached(source(), *args))

    return call


def _recorded(name: str, call: Callable[..., R], doc: str | None) -> Callable[..., R]:
    """`call` as the page query `name`, which `RECORDER` receives."""

    def query(*args: Any) -> R:
        if RECORDER is not None:
            RECORDER.append((name, args))
        return call(*args)

    query.__name__ = name
    query.__doc__ = doc
    return query


def _cached(function: Callable[..., R], *, ttl: int = TTL) -> Callable[..., R]:
    """`function(warehouse, *args)` as a cached query `query(*args)`."""
    return _recorded(function.__name__, _cache(function, ttl=ttl), function.__doc__)


catalog = _cached(data.catalog, ttl=CATALOG_TTL)
_scorecard = _cache(data.scorecard)
scorecard = _recorded("scorecard", _scorecard, data.scorecard.__doc__)


def _comparison(query: Query) -> dict[str, Any]:
    # from the two periods' cached scorecards: `data.comparison` assembled both again,
    # though every page that asks for the change has asked for the period's scorecard
    # too (and the retro for the previous one's), and with many SLOs an assembly is a
    # good part of a first view
    return trends.change(_scorecard(query), _scorecard(query.previous()))


comparison = _recorded("comparison", _comparison, data.comparison.__doc__)
# from the period's cached scorecard, which every page asking for these has asked for
# too: `data.slo_summary` and `data.burndown` assemble it again (seconds with many SLOs)
slo_summary = _recorded(
    "slo_summary",
    lambda query: reliability.summarise(_scorecard(query).get("slos") or []),
    data.slo_summary.__doc__,
)
team_table = _cached(data.team_table)
weekly = _cached(data.weekly)
lead_times = _cached(data.lead_times)
deployments = _cached(data.deployments)


def _with_card(function: Callable[..., R]) -> Callable[..., R]:
    """`function(warehouse, query, *args, card)` as a cached query `query(query, *args)`
    given the period's cached scorecard: assembled once per period and scope, not once
    more by each query that reads it (seconds with many SLOs)."""

    def given(wh: Warehouse, query: Query, *args: Any) -> R:
        return function(wh, query, *args, card=_scorecard(query))

    given.__name__ = function.__name__
    return _recorded(function.__name__, _cache(given), function.__doc__)


reliability_view = _with_card(data.reliability_view)
burndown = _with_card(data.burndown)
incidents = _cached(data.incidents)
source_view = _with_card(data.source_view)
gate_ledger = _cached(guardrails.gate_ledger)
certificate_view = _cached(guardrails.certificate_view)


def _anomaly_weeks(wh: Warehouse, query: Query) -> Any:
    return guardrails.anomaly_weeks(wh, query, wh.anomaly_rule)


_anomaly_weeks.__name__ = "anomaly_weeks"
anomaly_weeks = _cached(_anomaly_weeks)


def _budgets_spent(wh: Warehouse, query: Query) -> dict[str, float | None]:
    """Per SLO of the query's scope: the error budget spent since the period began
    (`metrics.burndown.load_spent`: `spent_since` of every SLO at once)."""
    # One `burndown` per SLO was a query and a scorecard assembly each, and a team of 100
    # SLOs overflowed its cache (64 entries), so even a cached view computed them all
    # again. The SLOs are those of the basis the scorecard is assembled from: the same
    # names, budgets and windows as the scorecard's `slos`, without assembling it again.
    return load_spent(wh.engine, wh.basis(query).reliability.evaluated, query.start)


_budgets_spent.__name__ = "budgets_spent"
budgets_spent = _cached(_budgets_spent)


@st.cache_resource(ttl=TTL, max_entries=8, show_spinner="Building the report…")
def _report(where: Where, quarter: str, team: str | None) -> Any:
    return data.report(warehouse(where), quarter, team)


@st.cache_data(ttl=TTL, max_entries=32, show_spinner="Laying out the report…")
def _report_file(where: Where, quarter: str, team: str | None, fmt: str) -> bytes:
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
    "budgets_spent",
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

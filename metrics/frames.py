"""Reading the warehouse into DataFrames for one period and scope.

The heavy lifting (period and scope filters, "first production deployment" of a change,
sums of SLI samples over windows) happens in SQL, written once with SQLAlchemy Core and
parameterised, so it runs the same on SQLite and PostgreSQL. What comes back is the rows
the figures need, already narrowed, each with the team it belongs to, so one load can serve
every team (`team_scorecards`) by grouping in pandas.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    DateTime,
    Select,
    String,
    and_,
    exists,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from metrics.freshness import is_fresh
from metrics.model import Period, Scope, Settings
from poise.warehouse import schema
from poise.warehouse.sync_state import INCIDENT_STREAMS, PAGE_STREAMS

try:  # pandas' optional engine (Streamlit requires it): fast parsing of SQLite's times
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - pandas' own parser does the same, slower
    pa = pc = None

S = schema


def production(deployment: object, service: object) -> ColumnElement[bool]:
    """A production deployment: the service's production environment, and it succeeded."""
    return and_(
        deployment.c.environment == service.c.production_environment,  # type: ignore[attr-defined]
        deployment.c.status == "success",  # type: ignore[attr-defined]
    )


def in_scope(service: object, scope: Scope) -> ColumnElement[bool]:
    """Rows whose service (an aliased `services` row) is inside `scope`."""
    conditions: list[ColumnElement[bool]] = []
    if scope.team is not None:
        conditions.append(service.c.team == scope.team)  # type: ignore[attr-defined]
    if scope.service is not None:
        conditions.append(service.c.name == scope.service)  # type: ignore[attr-defined]
    return and_(literal(True), *conditions) if conditions else literal(True)


def raw_time(connection: Connection, column: ColumnElement[datetime]) -> ColumnElement[object]:
    """The column as the driver returns it (text on SQLite, timestamptz on PostgreSQL),
    so a whole column is parsed at once by pandas instead of value by value."""
    kind = String() if connection.dialect.name == "sqlite" else DateTime(timezone=True)
    return type_coerce(column, kind).label(column.key if hasattr(column, "key") else None)


def read(connection: Connection, statement: Select, times: Sequence[str] = ()) -> pd.DataFrame:
    """Run `statement`; the named columns become UTC datetimes, numeric columns numbers.

    Rows come straight from the driver's cursor and the frame is built as plain objects
    (pandas' string inference and SQLAlchemy's per-row objects cost more than the query on
    large results); columns holding numbers are converted afterwards.
    """
    result = connection.execute(statement)
    columns = list(result.keys())
    frame = fetch_frame(result.cursor, columns)
    for name in columns:
        if name in times:
            frame[name] = to_utc(frame[name])
            continue
        values = frame[name]
        first = _first_value(values.to_numpy())
        if first is None:
            continue
        if isinstance(first, bool):
            frame[name] = values.astype(bool) if values.notna().all() else values
        elif isinstance(first, int | float | Decimal):
            frame[name] = pd.to_numeric(values)
    return frame


def _first_value(values: np.ndarray) -> object | None:
    """The first value that is not null (None, NaN), or None: found by looking from the
    top, which is almost always the first row, instead of testing the whole column."""
    for value in values:
        if value is not None and value == value:  # NaN is the value not equal to itself
            return value
    return None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a burst of allocation (reading and
    computing a scorecard): hundreds of thousands of fresh row tuples and frame values
    would otherwise set off full collections that walk every object alive, over a tenth of
    the scorecard's time. Nothing here builds reference cycles: what it drops is freed by
    reference count at once, so the paused collector leaves nothing behind. Resumes only
    if it was running (nesting and other pausers keep their state)."""
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()


def fetch_frame(cursor: Any, columns: list[str]) -> pd.DataFrame:
    """All rows of a DB-API cursor as a frame of plain objects (collector paused)."""
    with collector_paused():
        return pd.DataFrame(cursor.fetchall(), columns=columns, dtype=object)


# Every time column of every frame has this one resolution: pandas infers one per read
# (seconds for a column of nulls, nanoseconds for an empty one, microseconds for SQLite's
# text), and frames of different resolutions concatenate into plain objects.
TIME_DTYPE = "datetime64[us, UTC]"


def to_utc(values: pd.Series) -> pd.Series:
    if values.empty:
        return pd.Series(pd.to_datetime([], utc=True), index=values.index, dtype=TIME_DTYPE)
    fast = _sqlite_times(values)
    if fast is None:
        fast = pd.to_datetime(values, utc=True, format="ISO8601")
    return fast.astype(TIME_DTYPE)


def _all_sqlite_shaped(text: Any) -> bool:
    """Every value is as SQLite keeps a UTC time (poise.warehouse.types.UTCDateTime):
    `YYYY-MM-DDTHH:MM:SS.ffffffZ`, 27 characters ending in Z. (Arrow's cast then reads
    the digits, and fails on anything that is not a time.)"""
    shaped = pc.and_(pc.equal(pc.utf8_length(text), 27), pc.ends_with(text, "Z"))
    return bool(pc.all(shaped).as_py())


def _sqlite_times(values: pd.Series) -> pd.Series | None:
    """SQLite's fixed-format text parsed by Arrow (five times faster than pandas' ISO
    parser, and the same instants at the same microsecond resolution), or None when the
    values are anything else (PostgreSQL's datetimes, other text, no values at all), which
    `pd.to_datetime` then parses as before."""
    if pa is None or values.dtype != object:
        return None
    try:
        text = pa.array(values.to_numpy(), type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if text.null_count == len(text) or not _all_sqlite_shaped(text):
        return None
    try:
        stamps = text.cast(pa.timestamp("us", tz="UTC")).to_pandas()
    except pa.ArrowInvalid:  # shaped like one, but not a time
        return None
    return pd.Series(stamps.array, index=values.index, name=values.name)


def sort_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`frame.sort_values(keys, kind="stable")` with a fresh index, skipping the sort when
    the rows already come in that order (the query's ORDER BY, where the database orders
    the same way; strings compare by code point in both, SQLite's BINARY collation too).
    Sorting strings in pandas costs more than checking the order."""
    if not _in_order(frame, keys):
        frame = frame.sort_values(keys, kind="stable")
    return frame.reset_index(drop=True)


def _in_order(frame: pd.DataFrame, keys: list[str]) -> bool:
    """Whether the rows are sorted by `keys` (lexicographically, ascending, no nulls)."""
    if len(frame) < 2:
        return True
    undecided = np.ones(len(frame) - 1, dtype=bool)  # adjacent pairs equal so far
    try:
        for key in keys:
            column = frame[key]
            if column.isna().any():
                return False
            values = (
                column.to_numpy(dtype="int64")  # the instants, not Timestamp objects
                if isinstance(column.dtype, pd.DatetimeTZDtype)
                else column.to_numpy()
            )
            before, after = values[:-1], values[1:]
            if (undecided & (before > after)).any():
                return False
            undecided &= ~(before < after)
    except TypeError:  # values that do not compare (mixed types): let pandas decide
        return False
    return True


@dataclass
class Frames:
    """Everything the figures of one period need, for one scope (or all teams at once).

    - `deployments`: production deployments with `deployed_at` in the period widened by the
      attribution window on both sides (inference needs them), flag `in_period`.
    - `fixers`: production deployments that name a period deployment in `rollback_of` /
      `remediation_of`, whenever they happened.
    - `rework_targets`: the period's production deployments that name another deployment
      in `rollback_of` / `remediation_of`, with when the named one was deployed
      (`target_at`, whatever its environment, period or scope).
    - `incidents`: incidents in scope started in [start, end + window), plus any incident
      that explicitly names a period deployment; flag `in_period` (started in the period, in
      scope).
    - `changes`: changes whose first production deployment is in the period.
    - `undeployed`: changes committed in the period that no production deployment shipped.
    - `unowned_incidents`: whether any incident without a known service was ever recorded
      (it counts for the whole organisation only).
    """

    period: Period
    scope: Scope
    services: pd.DataFrame
    teams: pd.DataFrame
    deployments: pd.DataFrame
    fixers: pd.DataFrame
    rework_targets: pd.DataFrame
    incidents: pd.DataFrame
    changes: pd.DataFrame
    undeployed: pd.DataFrame
    slos: pd.DataFrame
    toil: pd.DataFrame
    pages: pd.DataFrame
    unowned_incidents: bool = False

    @property
    def records_incidents(self) -> bool:
        """Whether the scope has its incidents on record (any incident ever, or an incident
        source that synced one of its services): without that, an incident count of 0 says
        nothing (no incident source synced or imported for it)."""
        if bool(self.services["records_incidents"].astype(bool).any()):
            return True
        return self.scope.is_org and self.unowned_incidents

    def for_team(self, team: str) -> Frames:
        """The same frames narrowed to one team (from an all-teams load)."""
        return replace(
            self,
            scope=Scope(team=team),
            services=self.services[self.services["team"] == team],
            teams=self.teams[self.teams["name"] == team],
            deployments=self.deployments[self.deployments["team"] == team],
            fixers=self.fixers[self.fixers["target_team"] == team],
            rework_targets=self.rework_targets[self.rework_targets["team"] == team],
            incidents=_team_incidents(self.incidents, self.deployments, team),
            changes=self.changes[self.changes["team"] == team],
            undeployed=self.undeployed[self.undeployed["team"] == team],
            slos=self.slos[self.slos["team"] == team],
            toil=self.toil[self.toil["team"] == team],
            pages=self.pages[self.pages["team"] == team],
        )


def _team_incidents(incidents: pd.DataFrame, deployments: pd.DataFrame, team: str) -> pd.DataFrame:
    """A team's incidents, and other teams' incidents that name one of its deployments."""
    own = incidents["team"] == team
    theirs = deployments.loc[deployments["team"] == team, "id"]
    naming = incidents["caused_by_deployment"].isin(theirs)
    frame = incidents[own | naming].copy()
    frame["in_period"] = frame["in_period"] & own[own | naming]
    frame["in_scope"] = own[own | naming]
    return frame


def load(connection: Connection, period: Period, scope: Scope, settings: Settings) -> Frames:
    """One read of everything the scorecard of `period` needs for `scope`."""
    window = settings.attribution_window
    services = _services(connection, scope)
    fresh = is_fresh(connection)
    deployments = _deployments(connection, period.start - window, period.end + window, scope)
    deployments["in_period"] = (deployments["deployed_at"] >= period.start) & (
        deployments["deployed_at"] < period.end
    )
    return Frames(
        period=period,
        scope=scope,
        services=services,
        teams=_teams(connection, scope),
        deployments=deployments,
        fixers=_fixers(
            connection, period, deployments, period.end + window if scope.is_org else period.start
        ),
        rework_targets=_rework_targets(connection, deployments),
        incidents=_incidents(connection, period, scope, settings, deployments),
        changes=_first_deployed_changes(connection, period, scope, services, fresh),
        undeployed=_undeployed_changes(connection, period, scope, services, fresh),
        slos=_slos(connection, scope),
        toil=_toil(connection, period, scope),
        pages=_pages(connection, period, scope),
        unowned_incidents=scope.is_org and _unowned_incidents(connection),
    )


def _synced(streams: Sequence[tuple[str, str]], service: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether one of these (source, stream) pairs ever synced `service` successfully."""
    st = S.sync_state
    return exists().where(
        st.c.scope == service,
        st.c.last_success_at.is_not(None),
        or_(*(and_(st.c.source == source, st.c.stream == stream) for source, stream in streams)),
    )


def _services(connection: Connection, scope: Scope) -> pd.DataFrame:
    """Services in scope, and whether each has its incidents on record: any incident ever,
    or an incident source that synced it (a calm service behind a pager counts 0; one no
    source covers has a change fail rate of rollbacks and fixes alone)."""
    s, i = S.services, S.incidents
    records_incidents = or_(
        exists().where(i.c.service == s.c.name), _synced(INCIDENT_STREAMS, s.c.name)
    ).label("records_incidents")
    return read(
        connection,
        select(s.c.name, s.c.team, s.c.production_environment, records_incidents)
        .where(in_scope(s, scope))
        .order_by(s.c.name),
    )


def _unowned_incidents(connection: Connection) -> bool:
    i, s = S.incidents, S.services
    owned = exists().where(s.c.name == i.c.service).correlate(i)
    return connection.execute(select(i.c.id).where(~owned).limit(1)).first() is not None


def _teams(connection: Connection, scope: Scope) -> pd.DataFrame:
    """Teams with their size, and whether they have ever recorded toil or have their pages
    on record (any page, or a paging source that synced one of their services): a team
    that keeps no toil log, or has no pager synced, is not a team without toil or pages."""
    t, s, toil, page = S.teams, S.services, S.toil_entries, S.oncall_pages
    owned = S.services.alias("owned")
    records_toil = exists().where(toil.c.team == t.c.name).label("records_toil")
    records_pages = or_(
        exists().where(page.c.team == t.c.name),
        exists().where(page.c.service == owned.c.name, owned.c.team == t.c.name),
        exists().where(owned.c.team == t.c.name, _synced(PAGE_STREAMS, owned.c.name)),
    ).label("records_pages")
    statement = select(t.c.name, t.c.size, records_toil, records_pages).order_by(t.c.name)
    if scope.service is not None:
        statement = statement.where(t.c.name.in_(select(s.c.team).where(s.c.name == scope.service)))
    elif scope.team is not None:
        statement = statement.where(t.c.name == scope.team)
    return read(connection, statement)


def _deployments(
    connection: Connection, start: datetime, end: datetime, scope: Scope
) -> pd.DataFrame:
    d, s, dc = S.deployments, S.services, S.deployment_changes
    has_changes = exists().where(dc.c.deployment_id == d.c.id)
    statement = (
        select(
            d.c.id,
            d.c.service,
            s.c.team,
            raw_time(connection, d.c.deployed_at),
            d.c.rollback_of,
            d.c.remediation_of,
            has_changes.label("has_changes"),
        )
        .join(s, s.c.name == d.c.service)
        .where(
            production(d, s), d.c.deployed_at >= start, d.c.deployed_at <= end, in_scope(s, scope)
        )
        .order_by(d.c.deployed_at, d.c.id)
    )
    frame = read(connection, statement, times=["deployed_at"])
    frame["has_changes"] = frame["has_changes"].astype(bool)
    return frame


FIXER_COLUMNS = ["id", "service", "deployed_at", "target", "how", "target_team"]


def _fixers(
    connection: Connection, period: Period, deployments: pd.DataFrame, late: datetime
) -> pd.DataFrame:
    """Production deployments naming a period deployment in `rollback_of` /
    `remediation_of`, with the target's team. Those of the scope up to `late` are in
    `deployments` already (the load reaches that far); later ones come from one small
    query. A fixer may be another service's (the contract sets no condition on it), which a
    scoped load does not hold: for a team or a service `late` is the period's start, and
    the query's rows already loaded are dropped."""
    targets = deployments.loc[deployments["in_period"], ["id", "team"]]
    target_team = targets.set_index("id")["team"]
    loaded = deployments[["id", "service", "deployed_at", "rollback_of", "remediation_of"]]
    d, s = S.deployments, S.services
    later = read(
        connection,
        select(
            d.c.id,
            d.c.service,
            raw_time(connection, d.c.deployed_at),
            d.c.rollback_of,
            d.c.remediation_of,
        )
        .join(s, s.c.name == d.c.service)
        .where(
            production(d, s),
            d.c.deployed_at > late,
            or_(d.c.rollback_of.is_not(None), d.c.remediation_of.is_not(None)),
        ),
        times=["deployed_at"],
    )
    later = later[~later["id"].isin(loaded["id"])]
    candidates = pd.concat([loaded, later], ignore_index=True) if len(later) else loaded
    parts = []
    for how, column in (("rollback", "rollback_of"), ("remediation", "remediation_of")):
        named = candidates[candidates[column].isin(target_team.index)]
        parts.append(
            pd.DataFrame(
                {
                    "id": named["id"],
                    "service": named["service"],
                    "deployed_at": named["deployed_at"],
                    "target": named[column],
                    "how": how,
                    "target_team": named[column].map(target_team),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    return sort_rows(frame, ["deployed_at", "id"])[FIXER_COLUMNS]


REWORK_TARGET_COLUMNS = ["id", "service", "team", "deployed_at", "target", "how", "target_at"]


def _rework_targets(connection: Connection, deployments: pd.DataFrame) -> pd.DataFrame:
    """The period's production deployments (of `deployments`, the loaded ones) that name
    another deployment in `rollback_of` / `remediation_of`, with the named deployment's
    `deployed_at` (`target_at`).

    Rework rate counts these whatever the named deployment is; change fail rate counts
    the named one as failed only when the naming deployment is later. The named one is
    usually among the loaded rows (just before); any other (outside the loaded span,
    another environment, another scope) is read by id, so it may lie anywhere in time.
    """
    rows = deployments[deployments["in_period"]]
    parts = []
    for how, column in (("rollback", "rollback_of"), ("remediation", "remediation_of")):
        names = rows[column]
        # naming itself is no rework (as in `delivery.deployment_rows`; the importer
        # refuses it)
        named = rows[names.notna() & (names.astype(object) != "") & (names != rows["id"])]
        if len(named):
            parts.append(
                pd.DataFrame(
                    {
                        "id": named["id"],
                        "service": named["service"],
                        "team": named["team"],
                        "deployed_at": named["deployed_at"],
                        "target": named[column].astype(object),
                        "how": how,
                    }
                )
            )
    if not parts:
        return pd.DataFrame(
            {
                column: pd.Series(dtype=deployments["deployed_at"].dtype)
                if column in ("deployed_at", "target_at")
                else pd.Series(dtype=object)
                for column in REWORK_TARGET_COLUMNS
            }
        )
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    known = deployments.drop_duplicates("id").set_index("id")["deployed_at"]
    target_at = frame["target"].map(known)
    missing = frame.loc[target_at.isna(), "target"].unique().tolist()
    if missing:
        target_at = target_at.fillna(frame["target"].map(_deployed_at(connection, missing)))
    frame["target_at"] = pd.to_datetime(target_at, utc=True)
    frame = frame[frame["target_at"].notna()]  # a name the warehouse does not hold
    return sort_rows(frame, ["deployed_at", "id"])[REWORK_TARGET_COLUMNS]


def _deployed_at(connection: Connection, ids: list[str]) -> pd.Series:
    """`deployed_at` of any deployments by id (any environment, status or time)."""
    frame = read_by_id(connection, S.deployments, ids, ["id", "deployed_at"], ("deployed_at",))
    return frame.set_index("id")["deployed_at"]


ID_CHUNK = 900  # ids per query: within every driver's parameter limit


def read_by_id(
    connection: Connection,
    table: Any,
    ids: Iterable[Any],
    columns: list[str],
    times: Sequence[str] = (),
) -> pd.DataFrame:
    """`columns` of the rows of `table` with the given ids (text ids; others are skipped),
    read ID_CHUNK at a time; `times` are parsed to UTC."""
    unique = sorted({str(value) for value in ids if isinstance(value, str) and value})
    selected = [
        raw_time(connection, table.c[name]) if name in times else table.c[name] for name in columns
    ]
    frames = [
        read(connection, select(*selected).where(table.c.id.in_(chunk)), times=times)
        for chunk in (unique[i : i + ID_CHUNK] for i in range(0, len(unique), ID_CHUNK))
    ]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        empty = pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
        for name in times:
            empty[name] = pd.Series(dtype=TIME_DTYPE)
        return empty
    return pd.concat(frames, ignore_index=True)


INCIDENT_TIMES = ("started_at", "detected_at", "acknowledged_at", "resolved_at")


def _incident_columns(connection: Connection, i: object, s: object) -> list[ColumnElement[object]]:
    return [
        i.c.id,  # type: ignore[attr-defined]
        i.c.service,  # type: ignore[attr-defined]
        s.c.team,  # type: ignore[attr-defined]
        i.c.severity,  # type: ignore[attr-defined]
        *(raw_time(connection, i.c[name]) for name in INCIDENT_TIMES),  # type: ignore[attr-defined]
        i.c.caused_by_deployment,  # type: ignore[attr-defined]
        i.c.cause,  # type: ignore[attr-defined]
        i.c.title,  # type: ignore[attr-defined]
    ]


def _incidents(
    connection: Connection,
    period: Period,
    scope: Scope,
    settings: Settings,
    deployments: pd.DataFrame,
) -> pd.DataFrame:
    """Incidents in scope started in [start, end + window), and any incident naming one of
    the period's production deployments (`deployments`, the scope's) explicitly."""
    i, s = S.incidents, S.services
    late = period.end + settings.attribution_window
    scoped = (
        select(*_incident_columns(connection, i, s))
        .outerjoin(s, s.c.name == i.c.service)
        .where(i.c.started_at >= period.start, i.c.started_at < late)
    )
    if not scope.is_org:
        scoped = scoped.where(in_scope(s, scope))
    naming = (
        select(*_incident_columns(connection, i, s))
        .outerjoin(s, s.c.name == i.c.service)
        .where(i.c.caused_by_deployment.is_not(None), i.c.caused_by_deployment != "")
    )
    own = read(connection, scoped, times=INCIDENT_TIMES)
    others = read(connection, naming, times=INCIDENT_TIMES)
    own["in_scope"] = True
    targets = deployments.loc[deployments["in_period"], "id"]
    others = others[others["caused_by_deployment"].isin(targets) & ~others["id"].isin(own["id"])]
    others = others.copy()
    others["in_scope"] = _service_in_scope(others, scope)
    # concatenate only frames with rows: an empty frame's columns may differ in dtype from
    # a filled one's, which pandas concatenates into plain objects (a period with no
    # incident of its own but an older one naming its deployment broke on it)
    parts = [part for part in (own, others) if len(part)]
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts or [own])[0]
    frame["in_period"] = (
        frame["in_scope"]
        & (frame["started_at"] >= period.start)
        & (frame["started_at"] < period.end)
    )
    return frame.sort_values(["started_at", "id"], kind="stable").reset_index(drop=True)


def _service_in_scope(frame: pd.DataFrame, scope: Scope) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    if scope.team is not None:
        mask &= frame["team"] == scope.team
    if scope.service is not None:
        mask &= frame["service"] == scope.service
    return mask.astype(bool)


def shipped_to_production(
    change_id: ColumnElement[str],
    condition: Callable[[Any], ColumnElement[bool]] | None = None,
) -> Select:
    """A correlated `SELECT 1`: some production deployment shipped the change (and meets
    `condition`, given that deployment's table)."""
    dc2, d2, s2 = (
        S.deployment_changes.alias("dc2"),
        S.deployments.alias("d2"),
        S.services.alias("s2"),
    )
    return (
        select(literal(1))
        .select_from(
            dc2.join(d2, d2.c.id == dc2.c.deployment_id).join(s2, s2.c.name == d2.c.service)
        )
        .where(
            dc2.c.change_id == change_id,
            production(d2, s2),
            condition(d2) if condition is not None else literal(True),
        )
    )


def _change_services(
    services: pd.DataFrame, scope: Scope, column: ColumnElement[str]
) -> ColumnElement[bool]:
    """Rows whose service is one of the scope's (the services frame is already scoped)."""
    if scope.is_org:
        return literal(True)
    return column.in_(services["name"].tolist())


def _with_team(frame: pd.DataFrame, services: pd.DataFrame) -> pd.DataFrame:
    frame.insert(2, "team", frame["service"].map(services.set_index("name")["team"]))
    return frame


def _first_deployed_changes(
    connection: Connection, period: Period, scope: Scope, services: pd.DataFrame, fresh: bool
) -> pd.DataFrame:
    """Changes of the scope's services whose first production deployment (earliest; ties by
    id) is in the period, from `change_leads` when fresh, else from the links themselves."""
    if fresh:
        leads = S.change_leads
        statement = select(
            leads.c.change_id,
            leads.c.service,
            raw_time(connection, leads.c.committed_at),
            leads.c.deployment_id,
            raw_time(connection, leads.c.deployed_at),
        ).where(
            leads.c.deployed_at >= period.start,
            leads.c.deployed_at < period.end,
            _change_services(services, scope, leads.c.service),
        )
        order = [leads.c.deployed_at, leads.c.change_id]
    else:
        c, dc, d, s = S.changes, S.deployment_changes, S.deployments, S.services
        earlier = shipped_to_production(
            dc.c.change_id,
            lambda d2: or_(
                d2.c.deployed_at < d.c.deployed_at,
                and_(d2.c.deployed_at == d.c.deployed_at, d2.c.id < d.c.id),
            ),
        )
        statement = (
            select(
                c.c.id.label("change_id"),
                c.c.service,
                raw_time(connection, c.c.committed_at),
                d.c.id.label("deployment_id"),
                raw_time(connection, d.c.deployed_at),
            )
            .select_from(
                d.join(s, s.c.name == d.c.service)
                .join(dc, dc.c.deployment_id == d.c.id)
                .join(c, c.c.id == dc.c.change_id)
            )
            .where(
                production(d, s),
                d.c.deployed_at >= period.start,
                d.c.deployed_at < period.end,
                _change_services(services, scope, c.c.service),
                ~exists(earlier),
            )
        )
        order = [d.c.deployed_at, c.c.id]
    frame = _with_team(
        read(connection, statement.order_by(*order), times=["committed_at", "deployed_at"]),
        services,
    )
    frame["lead_hours"] = (frame["deployed_at"] - frame["committed_at"]).dt.total_seconds() / 3600
    return sort_rows(frame, ["deployed_at", "change_id"])


def _undeployed_changes(
    connection: Connection, period: Period, scope: Scope, services: pd.DataFrame, fresh: bool
) -> pd.DataFrame:
    """Changes of the scope committed in the period that no production deployment shipped."""
    if fresh:
        leads = S.change_leads
        statement = select(
            leads.c.change_id.label("id"),
            leads.c.service,
            raw_time(connection, leads.c.committed_at),
        ).where(
            leads.c.deployed_at.is_(None),
            leads.c.committed_at >= period.start,
            leads.c.committed_at < period.end,
            _change_services(services, scope, leads.c.service),
        )
        order = [leads.c.committed_at, leads.c.change_id]
    else:
        c = S.changes
        statement = select(c.c.id, c.c.service, raw_time(connection, c.c.committed_at)).where(
            c.c.committed_at >= period.start,
            c.c.committed_at < period.end,
            _change_services(services, scope, c.c.service),
            ~exists(shipped_to_production(c.c.id)),
        )
        order = [c.c.committed_at, c.c.id]
    frame = _with_team(
        read(connection, statement.order_by(*order), times=["committed_at"]), services
    )
    return sort_rows(frame, ["committed_at", "id"])


def _slos(connection: Connection, scope: Scope) -> pd.DataFrame:
    o, s = S.slos, S.services
    return read(
        connection,
        select(
            o.c.name,
            o.c.service,
            s.c.team,
            o.c.target,
            o.c.window_days,
            o.c.window_kind,
            o.c.calendar_unit,
        )
        .join(s, s.c.name == o.c.service)
        .where(in_scope(s, scope), o.c.retired_at.is_(None))
        .order_by(o.c.service, o.c.name),
    )


def _toil(connection: Connection, period: Period, scope: Scope) -> pd.DataFrame:
    t = S.toil_entries
    statement = select(t.c.team, t.c.day, t.c.category, t.c.hours).where(
        t.c.day >= period.start.date(), t.c.day < _end_day(period)
    )
    if scope.service is not None:
        s = S.services
        statement = statement.where(t.c.team.in_(select(s.c.team).where(s.c.name == scope.service)))
    elif scope.team is not None:
        statement = statement.where(t.c.team == scope.team)
    return read(connection, statement)


def _end_day(period: Period) -> object:
    """The first day whose midnight is not inside the period."""
    end = period.end
    day = end.date()
    if end.hour or end.minute or end.second or end.microsecond:
        return day.fromordinal(day.toordinal() + 1)
    return day


def _pages(connection: Connection, period: Period, scope: Scope) -> pd.DataFrame:
    p, s = S.oncall_pages, S.services
    statement = (
        select(
            p.c.id,
            p.c.service,
            p.c.team.label("page_team"),
            s.c.team.label("service_team"),
            raw_time(connection, p.c.triggered_at),
            p.c.after_hours,
        )
        .outerjoin(s, s.c.name == p.c.service)
        .where(p.c.triggered_at >= period.start, p.c.triggered_at < period.end)
    )
    frame = read(connection, statement, times=["triggered_at"])
    frame["team"] = frame["page_team"].where(frame["page_team"].notna(), frame["service_team"])
    frame = frame.drop(columns=["page_team", "service_team"])
    frame["after_hours"] = frame["after_hours"].astype(bool)
    if scope.team is not None:
        frame = frame[frame["team"] == scope.team]
    if scope.service is not None:
        frame = frame[frame["service"] == scope.service]
    return frame.reset_index(drop=True)

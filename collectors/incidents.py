"""What the incident sources (PagerDuty, Opsgenie) share.

- their scopes: one per service with a `pagerduty:`/`opsgenie:` block, carrying the
  source's service id and the team's business hours (pages need them), and by service id
  (`IncidentSource.mapped_scopes`: an incident moved to another mapped service is that
  one's);
- `page_row`: one `oncall_pages` row, with `after_hours` from the team's time zone and
  `people.business_hours_start/end` (weekdays only);
- `refresh_open_incidents`: incidents stored while still open, fetched again one by one,
  since a list filtered on creation time never shows them again once they resolve;
- `stored_incidents`: what the warehouse already knows of some incidents (to fetch a
  resolved incident's acknowledgement only once);
- `malformed_record`: a record missing what the API always sends is a one-line
  `BadPayloadError`, not a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple

from sqlalchemy import Engine, select

from collectors.base import RawRequest, Rows, Scope, Source, SyncContext, Writer, chunks
from collectors.http import BadPayloadError, HttpResponse, NotFoundError
from poise.timeutil import is_after_hours
from poise.vocab import IncidentStatus
from poise.warehouse import schema
from poise.warehouse.upsert import UpsertCounts


@dataclass(frozen=True)
class BusinessHours:
    """A team's working week: weekdays, `[start_hour, end_hour)` in its time zone."""

    zone: str
    start_hour: int
    end_hour: int

    def after_hours(self, moment: datetime) -> bool:
        return is_after_hours(moment, self.zone, self.start_hour, self.end_hour)


def incident_scopes(source: Source) -> list[Scope]:
    """One scope per service with a block for `source`; `vars` holds `service_id` and `hours`.

    (The config already refuses one source id mapped to two services.)
    """
    config = source.config
    people = config.people
    scopes: list[Scope] = []
    for service in config.services:
        location = getattr(service, source.name, None)
        if location is None:
            continue
        team = config.team(service.team)
        hours = BusinessHours(
            team.timezone if team else "UTC",
            people.business_hours_start,
            people.business_hours_end,
        )
        scopes.append(
            Scope(service.name, service, location, {**location.model_dump(), "hours": hours})
        )
    return scopes


class IncidentSource(Source):
    """A source of incidents: one scope per service with its block (`incident_scopes`)."""

    def scopes(self) -> list[Scope]:
        return incident_scopes(self)

    @cached_property
    def mapped_scopes(self) -> dict[str, Scope]:
        """Each service id poise.yaml maps -> its scope (the config is fixed for a run)."""
        return {scope.vars["service_id"]: scope for scope in self.scopes()}


def page_row(
    scope: Scope,
    *,
    id: str,
    source_id: str,
    triggered_at: datetime,
    urgency: str | None,
    incident_id: str | None,
    title: str | None,
) -> dict[str, Any]:
    """One page (one interruption of the on-call person) of `scope`'s service and team."""
    hours: BusinessHours = scope.vars["hours"]
    return {
        "id": id,
        "source_id": source_id,
        "service": scope.key,
        "team": scope.service.team,
        "triggered_at": triggered_at,
        "urgency": urgency,
        "after_hours": hours.after_hours(triggered_at),
        "incident_id": incident_id,
        "title": title,
    }


@contextmanager
def malformed_record(source: str, what: str, url: str) -> Iterator[None]:
    """Turn a record missing a field the API always sends into one clear line."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise BadPayloadError(
            f"{source}: malformed {what} from {url}: {detail}; earlier pages are kept"
        ) from None


class StoredIncident(NamedTuple):
    status: str | None
    acknowledged_at: datetime | None


def stored_incidents(engine: Engine, ids: Sequence[str]) -> dict[str, StoredIncident]:
    """What the warehouse holds of these incidents (absent ids were never stored)."""
    table = schema.incidents
    found: dict[str, StoredIncident] = {}
    with engine.connect() as connection:
        for chunk in chunks(ids):
            query = select(table.c.id, table.c.status, table.c.acknowledged_at).where(
                table.c.id.in_(chunk)
            )
            for row in connection.execute(query):
                found[row.id] = StoredIncident(row.status, row.acknowledged_at)
    return found


def open_incident_ids(
    engine: Engine, source: str, service: str, before: datetime | None = None
) -> list[str]:
    """Source ids of `service`'s incidents from `source` stored while not yet resolved."""
    table = schema.incidents
    query = (
        select(table.c.source_id)
        .where(
            table.c.source == source,
            table.c.service == service,
            (table.c.status != IncidentStatus.RESOLVED.value) | table.c.status.is_(None),
        )
        .order_by(table.c.started_at, table.c.source_id)
    )
    if before is not None:
        query = query.where(table.c.started_at < before)
    with engine.connect() as connection:
        return [str(value) for value in connection.scalars(query) if value is not None]


def refresh_open_incidents(
    ctx: SyncContext,
    scope: Scope,
    *,
    stream: str,
    path: str,
    record_key: str,
    rows_of: Callable[[dict[str, Any], HttpResponse], Rows] | None = None,
    write_of: Callable[[dict[str, Any], HttpResponse], Writer] | None = None,
    params: dict[str, Any] | None = None,
    before: datetime | None = None,
) -> None:
    """Fetch each incident stored while open (`path` has `{id}`) and store it again.

    Its rows are `rows_of(record, response)`, or whatever `write_of(record, response)`
    writes (for a source that may also remove rows). One request per open incident: there
    are few, and a list filtered on creation time would have to reach back to the oldest
    of them. One that is gone (404) stays as stored. Nothing while the service moves to
    another location (`SyncContext.move`): its stored incidents are the old location's,
    removed at the end, and a first sync has none to refresh.
    """
    if (rows_of is None) == (write_of is None):
        raise TypeError("refresh_open_incidents takes one of rows_of and write_of")
    if ctx.move is not None:
        return
    if ctx.http is None:
        raise RuntimeError(f"{ctx.source}: refreshing incidents needs an HTTP client")
    for source_id in open_incident_ids(ctx.engine, ctx.source, scope.key, before):
        try:
            response = ctx.http.get(path.format(id=source_id), params)
        except NotFoundError:
            ctx.warn(f"{ctx.source}: incident {source_id} is no longer found; kept as stored")
            continue
        body = response.json()
        record = body.get(record_key) if isinstance(body, dict) else None
        if not isinstance(record, dict):
            raise BadPayloadError(
                f"{ctx.source}: malformed incident from {response.url}: expected an object "
                f"under {record_key!r}; earlier pages are kept"
            )
        if write_of is not None:
            content: dict[str, Any] = {"write": write_of(record, response)}
        elif rows_of is not None:
            content = {"rows": rows_of(record, response)}
        store_response(ctx, stream, scope, response, params, records=1, **content)


def store_response(
    ctx: SyncContext,
    stream: str,
    scope: Scope,
    response: HttpResponse,
    params: Mapping[str, Any] | None,
    **what: Any,
) -> UpsertCounts:
    """`ctx.store_page` for the answer to a GET: its URL, params, status and body as fetched."""
    return ctx.store_page(
        stream,
        scope.key,
        request=RawRequest("GET", response.url, params),
        payload=response.text,
        status=response.status,
        **what,
    )

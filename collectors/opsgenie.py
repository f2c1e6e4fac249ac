"""Opsgenie: each configured service's incidents, and its alerts as pages. Kept small on purpose.

Atlassian ends Opsgenie, its REST API included, on 2027-04-05; after that this collector
has nothing to call. Move to another tool before then (or export and `poise import`).

Per service (`services[].opsgenie.service_id`):
- incidents: `GET /v1/incidents?query=impactedServices:<id>&sort=createdAt&order=desc`,
  newest first, paged by offset, stopping `RELIST` (14 days) before the newest `createdAt`
  already stored: the search cannot filter on `updatedAt`, so listing again the incidents
  created in that span is how a resolved one reopened, or edited after it resolved
  (priority, `impactEndDate`, message), is seen; one created earlier than that is not
  read again (`poise sync --full` reads them all). The incidents stored while open are
  first fetched again one by one (`GET /v1/incidents/{id}`) to see them resolve (a
  reopened one among them, once the re-list stored it open). An incident impacting
  several mapped services belongs to the first of its `impactedServices` that
  poise.yaml maps, and moves to another when they change (an open one older than the
  span when it is fetched again). Mapping: id `opsgenie:<id>`, severity = priority (`P1`…`P5`),
  started_at = `impactStartDate` (else `createdAt`), detected_at = `createdAt`,
  acknowledged_at = none (Opsgenie incidents have no acknowledgement), resolved_at =
  `impactEndDate` (absent until resolved; `updatedAt` for a resolved one without it).
- pages: with `alert_query`, `GET /v2/alerts?query=<alert_query>&sort=createdAt&order=desc`,
  each alert one `oncall_pages` row at its `createdAt`; urgency `high` for P1/P2, `low`
  otherwise; after hours in the service's team's time zone.

Another `service_id` or `alert_query` is a move (collectors/moves.py, `Move`): both streams
are read as on a first sync, then the service's incidents and pages not read again go.

`sources.opsgenie.since` bounds a first sync of both (newest first: paging stops at the
first older record), and the span re-listed by later ones. Throttling is a 429 (with
`X-RateLimit-State: THROTTLED`), waited out with back-off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from collectors.base import Rows, Scope, Stream, SyncContext, run_http_stream
from collectors.http import HttpResponse, OffsetPaginator, PageRequest
from collectors.incidents import (
    IncidentSource,
    malformed_record,
    page_row,
    refresh_open_incidents,
)
from poise.timeutil import parse_timestamp
from poise.vocab import IncidentStatus, incident_status

HIGH_URGENCY = frozenset({"P1", "P2"})
# Incidents are listed by creation time only (the search has no `updatedAt`), so each sync
# lists again those created this long before the newest stored: reopenings and postmortem
# edits (a priority raised, `impactEndDate` corrected) come within days of the incident,
# and the span costs about one more page per hundred incidents it holds. Edits of older
# ones are not seen. Alerts get none: only their creation time is used, and they are many.
RELIST = timedelta(days=14)


@dataclass(frozen=True)
class SearchStream(Stream):
    """A stream whose `query` parameter is an Opsgenie search, filled from `Scope.vars`."""

    query: str = ""

    def first_request(self, scope: Scope, cursor: Any) -> PageRequest:
        request = super().first_request(scope, cursor)
        return PageRequest(
            request.url, {**(request.params or {}), "query": self.query.format(**scope.vars)}
        )


@dataclass(frozen=True)
class ShortPagePaginator:
    """Offset paging that stops at a page shorter than the limit (Opsgenie has no `more`)."""

    def next_request(
        self, response: HttpResponse, request: PageRequest, records: list[Any]
    ) -> PageRequest | None:
        if len(records) < int((request.params or {}).get("limit", 0)):
            return None
        return OffsetPaginator(more_field=None).next_request(response, request, records)


def owner(record: dict[str, Any], scope: Scope) -> str | None:
    """The Opsgenie service an incident belongs to: the first of its `impactedServices` that
    poise.yaml maps (`scope.vars["mapped"]`), so one incident is one row of one service."""
    mapped = scope.vars.get("mapped") or {scope.vars["service_id"]}
    return next((sid for sid in record.get("impactedServices") or [] if sid in mapped), None)


def incident_rows(record: dict[str, Any], scope: Scope) -> Rows:
    source_id = str(record["id"])
    if owner(record, scope) != scope.vars["service_id"]:
        return {}  # another service's (or none's), whatever the search matched
    created = parse_timestamp(record["createdAt"])
    status = incident_status(record["status"])
    resolved = None
    if status is IncidentStatus.RESOLVED:
        resolved = parse_timestamp(record.get("impactEndDate") or record["updatedAt"])
    started = record.get("impactStartDate")
    return {
        "incidents": [
            {
                "id": f"opsgenie:{source_id}",
                "source_id": source_id,
                "service": scope.key,
                "severity": record.get("priority"),
                "status": status.value,
                "started_at": parse_timestamp(started) if started else created,
                "detected_at": created,
                "acknowledged_at": None,
                "resolved_at": resolved,
                "title": record.get("message"),
                "url": (record.get("links") or {}).get("web"),
            }
        ]
    }


def alert_rows(record: dict[str, Any], scope: Scope) -> Rows:
    source_id = str(record["id"])
    priority = record.get("priority")
    return {
        "oncall_pages": [
            page_row(
                scope,
                id=f"opsgenie:alert:{source_id}",
                source_id=source_id,
                triggered_at=parse_timestamp(record["createdAt"]),
                urgency=None if priority is None else "high" if priority in HIGH_URGENCY else "low",
                incident_id=None,
                title=record.get("message"),
            )
        ]
    }


Convert = Callable[[dict[str, Any], Scope], Rows]


def _checked(convert: Convert, what: str) -> Convert:
    def guarded(record: dict[str, Any], scope: Scope) -> Rows:
        with malformed_record("opsgenie", what, f"record {record.get('id')!r}"):
            return convert(record, scope)

    return guarded


def _newest_first(
    name: str,
    path: str,
    convert: Convert,
    what: str,
    query: str,
    relist: timedelta | None = None,
) -> SearchStream:
    return SearchStream(
        name,
        path,
        _checked(convert, what),
        records="data",
        cursor_field="createdAt",
        newest_first=True,
        page_size=100,
        page_size_param="limit",
        params={"sort": "createdAt", "order": "desc"},
        paginator=ShortPagePaginator(),
        query=query,
        relist=relist,
    )


INCIDENTS = _newest_first(
    "incidents",
    "/v1/incidents",
    incident_rows,
    "incident",
    "impactedServices:{service_id}",
    relist=RELIST,
)
ALERTS = _newest_first("alerts", "/v2/alerts", alert_rows, "alert", "{alert_query}")


class OpsgenieSource(IncidentSource):
    name = "opsgenie"
    default_base_url = "https://api.opsgenie.com"
    streams = (INCIDENTS, ALERTS)
    # Another service, or another alert search, is read again from its start (the
    # incidents and the pages: one block, one move); ids are global, so the service's rows
    # not read again are what goes.
    located_by, ids_located = ("service_id", "alert_query"), False

    def auth_headers(self, token: str | None, user: str | None) -> dict[str, str]:
        return {"Authorization": f"GenieKey {token}"} if token else {}

    def scopes(self) -> list[Scope]:
        scopes = super().scopes()
        mapped = frozenset(scope.vars["service_id"] for scope in scopes)
        return [replace(scope, vars={**scope.vars, "mapped": mapped}) for scope in scopes]

    def refreshed_rows(self, ctx: SyncContext, record: dict[str, Any], scope: Scope) -> Rows:
        """An open incident fetched again, under the service it belongs to now: its
        `impactedServices` may name another mapped service by then, and one created before
        the re-listed span is seen nowhere else. None mapped: it stays as stored, said."""
        now = self.mapped_scopes.get(owner(record, scope) or "")
        if now is None:
            ctx.warn(
                f"opsgenie: incident {record.get('id')} impacts no service poise.yaml maps "
                f"any more, not {scope.vars['service_id']} ({scope.key}); kept as stored"
            )
            return {}
        return INCIDENTS.convert(record, now)

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        ctx.bookmark(INCIDENTS.name, scope.key)
        refresh_open_incidents(
            ctx,
            scope,
            stream=INCIDENTS.name,
            path="/v1/incidents/{id}",
            params={"identifierType": "id"},
            record_key="data",
            rows_of=lambda record, response: self.refreshed_rows(ctx, record, scope),
        )
        since = self.settings.since_bound()  # nothing older: not a first sync, not a re-list
        run_http_stream(ctx, INCIDENTS, scope, start=since)
        if scope.vars.get("alert_query"):
            run_http_stream(ctx, ALERTS, scope, start=since)

"""PagerDuty: each configured service's incidents, and the page each of them sent.

Per service (`services[].pagerduty.service_id`), one scope:

- `GET /incidents?service_ids[]=<id>&since=…Z&until=…Z&sort_by=incident_number:asc` (a
  unique key, so that ties cannot reorder between pages) over windows of at most 180 days
  (PagerDuty refuses spans over six months, and reads a bound without an offset in the
  account's time zone, so every bound carries `Z`), paged by offset/limit while `more`.
  PagerDuty cannot page past offset + limit = 10,000: with `total=true` the first page
  says how many a window holds, and a window holding more is halved until each half fits
  (a window that hits the cap without a total is halved too).
- Incremental: the bookmark is the end of the last window fully stored. The list filters
  on creation time only, and PagerDuty lets an incident change after it resolved (it may
  be reopened, its title and priority edited, or it may be reassigned to another
  service), so the next sync starts `RELIST` (14 days) before the bookmark and lists
  again the incidents created in that span: one reopened is stored open again, one
  edited is stored as edited, one reassigned to another mapped service moves there when
  that service's sync lists it, or, open and older than the span, when the refresh below
  fetches it (reassigned to a service poise.yaml does not map, it stays
  as stored). The span never reaches before `sources.pagerduty.since` (what a first sync
  left out is not added later), and the bookmark never moves back. An incident created
  earlier than the span is not read again unless stored open (`poise sync --full` reads
  everything again). The sync first fetches again, one by one, the open incidents
  created before the span, because a list filtered on creation time would not show them
  resolving.
- `acknowledged_at`: while an incident is acknowledged its `acknowledgements` say when
  (the current acknowledgement: a renewed one once the first timed out); once resolved
  they are empty. So when an incident is first seen resolved (or resolving since the last
  sync) its log entries are read once (`GET /incidents/{id}/log_entries?time_zone=UTC`):
  the first `acknowledge_log_entry`, or an earlier time already known, counts. A first
  sync of a long history therefore costs about one request per resolved incident; one
  listed again still resolved costs none, one seen reopened costs one more when it
  resolves again.
- Another `service_id` is a move (collectors/moves.py, `Move`): the new service is read
  as on a first sync, then the Poise service's incidents and pages not read again go.
- Pages: PagerDuty notifies the on-call person when an incident triggers (alerts grouped
  into an open incident do not page again), so each incident is one `oncall_pages` row at
  its `created_at`, with its urgency, after hours or not in the service's team's zone.

Incident mapping: id `pagerduty:<id>`; severity = the priority's name (`P1`…), else the
urgency (`high`/`low`) for accounts without priorities; `started_at` = `detected_at` =
`created_at` (PagerDuty knows of an incident from its trigger); `resolved_at` (or, from
older payloads, `last_status_change_at` of a resolved incident, else its `updated_at`);
url = `html_url`. An incident merged into another (`merge_resolve_reason`) is no incident
of its own: only its page is kept, with the incident it went into.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete

from collectors.base import (
    Rows,
    Scope,
    Stream,
    SyncContext,
    Writer,
    merge_rows,
    relist_start,
)
from collectors.http import BadPayloadError, OffsetPaginator, PageGuard, PageRequest, SourceError
from collectors.incidents import (
    IncidentSource,
    malformed_record,
    page_row,
    refresh_open_incidents,
    store_response,
    stored_incidents,
)
from poise.timeutil import (
    isoformat_z,
    parse_timestamp,
    to_sqlite_text,
    utcnow,
)
from poise.vocab import IncidentStatus, incident_status
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written
from poise.warehouse.upsert import UpsertCounts

OFFSET_CAP = 10_000  # PagerDuty refuses offset + limit above this
MAX_WINDOW = timedelta(days=180)  # never more than six calendar months
# The list filters on creation time only, so each sync lists again the incidents created
# this long before the end of the last one: reopenings and postmortem edits (priority,
# title, service) come within days of the incident, and the span costs about one more
# page per hundred incidents it holds. It also covers incidents that appear in the list a
# little late. Changes to older resolved incidents are not seen.
RELIST = timedelta(days=14)
FIRST_SYNC_HISTORY = timedelta(days=365)
SMALLEST_WINDOW = timedelta(seconds=2)
ACCEPT = "application/vnd.pagerduty+json;version=2"


def _timestamp(value: Any) -> datetime | None:
    return parse_timestamp(value) if value else None


def merged_away(record: dict[str, Any]) -> bool:
    """Whether PagerDuty resolved this incident by merging it into another one."""
    reason = record.get("resolve_reason")
    return isinstance(reason, dict) and reason.get("type") == "merge_resolve_reason"


def incident_rows(record: dict[str, Any], scope: Scope) -> Rows:
    """One PagerDuty incident -> its `incidents` row and its `oncall_pages` row.

    `acknowledged_at` here is only what the incident itself says (its current
    acknowledgements); the source completes it from the warehouse or the log entries.
    An incident merged into another is no incident of its own (its alerts, and its
    outage, now belong to the one it was merged into), but the page it sent when it
    triggered was real on-call load: it keeps its page, counted with that other incident.
    """
    source_id = str(record["id"])
    created = parse_timestamp(record["created_at"])
    urgency = record.get("urgency")
    title = record.get("title") or record.get("summary")
    incident_id = f"pagerduty:{source_id}"
    merged = merged_away(record)
    paged_for: str | None = incident_id
    if merged:
        target = (record["resolve_reason"].get("incident") or {}).get("id")
        paged_for = f"pagerduty:{target}" if target else None
    page = page_row(
        scope,
        id=f"pagerduty:{source_id}:trigger",
        source_id=source_id,
        triggered_at=created,
        urgency=urgency,
        incident_id=paged_for,
        title=title,
    )
    if merged:
        return {"oncall_pages": [page]}
    status = incident_status(record["status"])
    resolved = _timestamp(record.get("resolved_at"))
    if resolved is None and status is IncidentStatus.RESOLVED:
        # Older payloads: the last status change was the resolve; without that either, the
        # last update is the closest known bound (a resolved incident is never left without).
        resolved = _timestamp(record.get("last_status_change_at") or record.get("updated_at"))
    acknowledgements = [
        parse_timestamp(ack["at"]) for ack in record.get("acknowledgements") or [] if ack.get("at")
    ]
    priority = record.get("priority") or {}
    return {
        "incidents": [
            {
                "id": incident_id,
                "source_id": source_id,
                "service": scope.key,
                "severity": priority.get("summary") or urgency,
                "status": status.value,
                "started_at": created,
                "detected_at": created,
                "acknowledged_at": min(acknowledgements) if acknowledgements else None,
                "resolved_at": resolved if status is IncidentStatus.RESOLVED else None,
                "title": title,
                "url": record.get("html_url"),
            }
        ],
        "oncall_pages": [page],
    }


INCIDENTS = Stream(
    "incidents",
    "/incidents",
    incident_rows,
    records="incidents",
    cursor_field="created_at",
    page_size=100,
    page_size_param="limit",
    params={"total": "true", "sort_by": "incident_number:asc", "time_zone": "UTC"},
    paginator=OffsetPaginator(cap=OFFSET_CAP),
)
LOG_ENTRIES = Stream(
    "log_entries",
    "/incidents/{id}/log_entries",
    lambda record, scope: {},
    records="log_entries",
    page_size=100,
    page_size_param="limit",
    params={"time_zone": "UTC"},
    paginator=OffsetPaginator(cap=OFFSET_CAP),
)


def time_windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """`[start, end)` cut into consecutive windows of at most `MAX_WINDOW`, oldest first."""
    since = start
    while since < end:
        until = min(since + MAX_WINDOW, end)
        yield since, until
        since = until


def halves(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    middle = since + (until - since) // 2
    middle = middle.replace(microsecond=0)
    return [(since, middle), (middle, until)]


class PagerDutySource(IncidentSource):
    name = "pagerduty"
    default_base_url = "https://api.pagerduty.com"
    streams = (INCIDENTS,)
    # Another service is read again from its start; incident ids are global (not under the
    # service id), so its incidents and pages not read again are what goes.
    located_by, ids_located = "service_id", False

    def auth_headers(self, token: str | None, user: str | None) -> dict[str, str]:
        headers = {"Accept": ACCEPT}
        if token:
            headers["Authorization"] = f"Token token={token}"
        return headers

    # -- one service --------------------------------------------------------------------

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        now = utcnow().replace(microsecond=0)
        state = ctx.bookmark(INCIDENTS.name, scope.key) or {}
        cursor = _timestamp(state.get("cursor"))
        start = self._start(cursor, now)
        refresh_open_incidents(
            ctx,
            scope,
            stream=INCIDENTS.name,
            path="/incidents/{id}",
            record_key="incident",
            write_of=lambda record, response: self._writer(
                ctx, self._rows(ctx, scope, [record], response.url), [record]
            ),
            before=start,
        )
        pending = list(reversed(list(time_windows(start, now))))
        while pending:
            since, until = pending.pop()
            split = self._collect_window(ctx, scope, since, until, cursor)
            pending.extend(reversed(split))

    def _start(self, cursor: datetime | None, now: datetime) -> datetime:
        """Where the listing starts: `RELIST` before the bookmark's cursor, but not before
        `since` unless the cursor itself is (`relist_start`, as Opsgenie's listing)."""
        since = self.settings.since_bound()
        if cursor is None:
            return since or now - FIRST_SYNC_HISTORY
        start = relist_start(cursor, RELIST, since)
        assert start is not None, "a cursor is the end of a sync, long after the year 1"
        return start

    def _collect_window(
        self,
        ctx: SyncContext,
        scope: Scope,
        since: datetime,
        until: datetime,
        cursor: datetime | None,
    ) -> list[tuple[datetime, datetime]]:
        """Store the incidents created in `[since, until)`; or return the halves to do instead.

        The bookmark becomes `until`, or stays at `cursor` (the stored one) when that is
        later: a window of the re-listed span, halved at the cap, may end before it, and a
        sync killed there would otherwise start the next further back.
        """
        assert ctx.http is not None
        params = {
            **INCIDENTS.params,
            "service_ids[]": scope.vars["service_id"],
            "since": isoformat_z(since),
            "until": isoformat_z(until),
            "limit": INCIDENTS.page_size,
            "offset": 0,
        }
        reached = max(until, cursor) if cursor is not None else until
        done = {"bookmark": {"cursor": to_sqlite_text(reached)}, "final": True}
        request: PageRequest | None = PageRequest(INCIDENTS.path, params)
        first, guard = True, PageGuard()
        while request is not None:
            response = ctx.http.get(request.url, request.params)
            body = response.json()
            records = INCIDENTS.records_of(body, response)
            guard.check(request, response, records)
            total = body.get("total")
            if first and isinstance(total, int) and total > OFFSET_CAP:
                return self._split(since, until, total)
            first = False
            following = INCIDENTS.paginator.next_request(response, request, records)
            if not records and body.get("more"):
                # Nothing to step the offset by, and more to come: ending the window here
                # would move the bookmark past incidents never read.
                raise BadPayloadError(
                    f"pagerduty: {response.url} answered an empty page that says more "
                    "follow: paging stopped; earlier pages are kept and this window is read "
                    "again at the next sync"
                )
            if following is None and body.get("more"):
                # The cap, reached without a total: halve and fetch both halves again.
                return self._split(since, until, None)
            rows = self._rows(ctx, scope, records, response.url)
            final = following is None
            store_response(
                ctx,
                INCIDENTS.name,
                scope,
                response,
                request.params,
                write=self._writer(ctx, rows, records),
                records=len(records),
                **(done if final else {}),
            )
            request = following
        return []

    def _split(
        self, since: datetime, until: datetime, total: int | None
    ) -> list[tuple[datetime, datetime]]:
        if until - since < SMALLEST_WINDOW:
            count = f"{total:,}" if total is not None else "more than 10,000"
            raise SourceError(
                f"pagerduty: {count} incidents created between {isoformat_z(since)} and "
                f"{isoformat_z(until)}: PagerDuty lists at most 10,000 per query and the "
                "window cannot be cut smaller"
            )
        return halves(since, until)

    # -- rows ---------------------------------------------------------------------------

    def _rows(
        self, ctx: SyncContext, scope: Scope, records: list[dict[str, Any]], url: str
    ) -> Rows:
        rows: Rows = {}
        service_id = scope.vars["service_id"]
        mapped = self.mapped_scopes
        for record in records:
            with malformed_record("pagerduty", "incident", url):
                belongs_to = (record.get("service") or {}).get("id")
                # reassigned to another service poise.yaml maps (an open one created before
                # the re-listed span is only seen here, fetched by id): it is that one's now
                owner_scope = scope if belongs_to == service_id else mapped.get(belongs_to)
                if owner_scope is None:
                    owner = f"to service {belongs_to}" if belongs_to else "to no service"
                    ctx.warn(
                        f"pagerduty: incident {record.get('id')} belongs {owner}, not "
                        f"{service_id} ({scope.key}); skipped"
                    )
                    continue
                merge_rows(rows, incident_rows(record, owner_scope))
        self._complete_acknowledgements(ctx, scope, rows.get("incidents", []))
        return rows

    @staticmethod
    def _writer(ctx: SyncContext, rows: Rows, records: list[dict[str, Any]]) -> Writer:
        """Upsert `rows`, first removing the stored rows of incidents since merged away.

        A removal counts as an update (the figures change with it).
        """
        gone = [
            f"pagerduty:{record['id']}"
            for record in records
            if isinstance(record, dict) and "id" in record and merged_away(record)
        ]

        def write(connection: Connection, raw_id: Any) -> UpsertCounts:
            removed = 0
            if gone:
                table = schema.incidents
                removed = connection.execute(delete(table).where(table.c.id.in_(gone))).rowcount
                if removed:
                    mark_written(connection)
            counts = ctx.upsert(connection, rows, raw_id)
            counts.updated += removed
            return counts

        return write

    def _complete_acknowledgements(
        self, ctx: SyncContext, scope: Scope, incidents: list[dict[str, Any]]
    ) -> None:
        """The earliest acknowledgement known, with the log entries' once newly resolved.

        What an open incident says (and so what the warehouse holds) may be a renewed
        acknowledgement, after the first one timed out: only the log knows the first.
        """
        stored = stored_incidents(ctx.engine, [row["id"] for row in incidents])
        for row in incidents:
            before = stored.get(row["id"])
            known = [t for t in (row["acknowledged_at"], before and before.acknowledged_at) if t]
            if row["status"] == IncidentStatus.RESOLVED.value and (
                before is None or before.status != IncidentStatus.RESOLVED.value
            ):
                logged = self._first_acknowledgement(ctx, scope, row["source_id"])
                known += [logged] if logged else []
            row["acknowledged_at"] = min(known) if known else None

    def _first_acknowledgement(
        self, ctx: SyncContext, scope: Scope, incident: str
    ) -> datetime | None:
        """The time of the incident's first `acknowledge_log_entry` (None: never acknowledged)."""
        assert ctx.http is not None
        request: PageRequest | None = PageRequest(
            LOG_ENTRIES.path.format(id=incident),
            {**LOG_ENTRIES.params, "limit": LOG_ENTRIES.page_size, "offset": 0},
        )
        first: datetime | None = None
        guard = PageGuard()
        while request is not None:
            response = ctx.http.get(request.url, request.params)
            entries = LOG_ENTRIES.records_of(response.json(), response)
            guard.check(request, response, entries)
            with malformed_record("pagerduty", "log entry", response.url):
                for entry in entries:
                    if entry.get("type") == "acknowledge_log_entry":
                        moment = parse_timestamp(entry["created_at"])
                        first = moment if first is None or moment < first else first
            store_response(ctx, LOG_ENTRIES.name, scope, response, request.params)
            request = LOG_ENTRIES.paginator.next_request(response, request, entries)
        return first

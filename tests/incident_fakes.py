"""PagerDuty and Opsgenie, played by the loopback replay server (tests/replay.py).

Bodies, headers and rules follow /work/shared/docs/api-facts.md §4–5:

- PagerDuty `GET /incidents` filters on `service_ids[]` and on creation time in
  `[since, until)`, refuses a bound without an offset, a span over six months and
  offset + limit over 10,000 (HTTP 400, PagerDuty's error body), pages by offset/limit
  with `more`, and fills `total` only for `total=true` (unless told to ignore it).
  `GET /incidents/{id}` and `GET /incidents/{id}/log_entries` (newest first) answer for
  each incident; a resolved incident has empty `acknowledgements`.
- Opsgenie `GET /v1/incidents` (search `impactedServices:<id>`, newest first,
  `data` + `totalCount`), `GET /v1/incidents/{id}?identifierType=id` and
  `GET /v2/alerts` (search by the configured query, newest first, `data` + `paging`).

`fault(path, reply, …)` makes the next requests to a path answer those replies first
(a 429, a 500, garbage), whatever the request.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from replay import RecordedRequest, ReplayServer, Reply

PD_BAD_INPUT = 2001
OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _six_months_after(moment: datetime) -> datetime:
    month = moment.month + 6
    year = moment.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    day = min(moment.day, 28)
    return moment.replace(year=year, month=month, day=day)


@dataclass
class Faults:
    queued: dict[str, list[Reply]] = field(default_factory=lambda: defaultdict(list))

    def fault(self, path: str, *replies: Reply) -> None:
        self.queued[path].extend(replies)

    def take(self, path: str) -> Reply | None:
        queue = self.queued.get(path)
        return queue.pop(0) if queue else None


class FakePagerDuty(Faults):
    """A PagerDuty account: incidents by id, their log entries, and the API's rules."""

    def __init__(
        self, server: ReplayServer, *, honour_total: bool = True, unstable_ties: bool = False
    ) -> None:
        super().__init__()
        self.server = server
        self.honour_total = honour_total
        self.unstable_ties = unstable_ties
        self._requests = 0
        self.incidents: dict[str, dict[str, Any]] = {}
        self.created: dict[str, datetime] = {}  # kept apart, so a test may spoil the field
        self._routed: set[str] = set()
        self._order: list[tuple[datetime, int, str]] | None = None  # by creation time
        self.log_entries: dict[str, Callable[[], list[dict[str, Any]]]] = {}
        server.add_handler("/incidents", self._list)

    # -- the account --------------------------------------------------------------------

    def incident(
        self,
        incident_id: str,
        number: int,
        *,
        service: str,
        created: datetime,
        status: str = "resolved",
        urgency: str = "high",
        priority: str | None = "P1",
        omit_priority: bool = False,
        acknowledged: datetime | None = None,
        resolved: datetime | None = None,
        title: str | None = None,
        detail_routes: bool = True,
    ) -> dict[str, Any]:
        """Add (or replace) an incident; its log entries follow its status.

        `detail_routes=False` leaves out `/incidents/{id}` and its log entries (thousands of
        routes slow every request down, and a test of the list alone needs none).
        """
        record: dict[str, Any] = {
            "id": incident_id,
            "type": "incident",
            "summary": f"[#{number}] {title or 'Incident'}",
            "self": f"{self.server.base_url}/incidents/{incident_id}",
            "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
            "incident_number": number,
            "title": title or f"Incident {number}",
            "status": status,
            "urgency": urgency,
            "created_at": z(created),
            "updated_at": z(resolved or acknowledged or created),
            "last_status_change_at": z(resolved or acknowledged or created),
            "resolved_at": z(resolved) if status == "resolved" and resolved else None,
            "incident_key": f"{incident_id.lower()}-key",
            "resolve_reason": None,
            "service": {
                "id": service,
                "type": "service_reference",
                "summary": f"service {service}",
                "self": f"{self.server.base_url}/services/{service}",
                "html_url": f"https://acme.pagerduty.com/service-directory/{service}",
            },
            "escalation_policy": {
                "id": "P7LVMYP",
                "type": "escalation_policy_reference",
                "summary": "Primary",
            },
            "teams": [],
            "assignments": []
            if status == "resolved"
            else [{"at": z(created), "assignee": {"id": "PXPGF42", "type": "user_reference"}}],
            "acknowledgements": (
                [
                    {
                        "at": z(acknowledged),
                        "acknowledger": {
                            "id": "PXPGF42",
                            "type": "user_reference",
                            "summary": "Bob",
                        },
                    }
                ]
                if status == "acknowledged" and acknowledged
                else []
            ),
            "first_trigger_log_entry": {
                "id": f"R{incident_id}T",
                "type": "trigger_log_entry_reference",
            },
            "last_status_change_by": {
                "id": "PXPGF42",
                "type": "user_reference",
                "summary": "Bob",
            },
            "alert_counts": {
                "all": 1,
                "triggered": 0 if status == "resolved" else 1,
                "resolved": 1 if status == "resolved" else 0,
            },
            "is_mergeable": True,
        }
        if not omit_priority:
            record["priority"] = (
                {"id": f"PRI{priority}", "type": "priority_reference", "summary": priority}
                if priority
                else None
            )
        self.incidents[incident_id] = record
        self.created[incident_id] = created
        self._order = None
        self.log_entries[incident_id] = lambda: self._entries(
            incident_id, created, acknowledged, resolved
        )
        if detail_routes and incident_id not in self._routed:
            self._routed.add(incident_id)
            self.server.add_handler(f"/incidents/{incident_id}", self._one)
            self.server.add_handler(f"/incidents/{incident_id}/log_entries", self._log)
        return record

    def merge(self, incident_id: str, *, into: str, at: datetime) -> dict[str, Any]:
        """Merge an incident into another, as PagerDuty's web UI or API does.

        The merged incident is resolved at that moment with a `merge_resolve_reason`
        naming the incident it went into; its alerts move there.
        """
        record = self.incidents[incident_id]
        target = self.incidents[into]
        record.update(
            status="resolved",
            resolved_at=z(at),
            updated_at=z(at),
            last_status_change_at=z(at),
            assignments=[],
            acknowledgements=[],
            alert_counts={"all": 0, "triggered": 0, "resolved": 0},
            is_mergeable=False,
            resolve_reason={
                "type": "merge_resolve_reason",
                "incident": {
                    "id": into,
                    "type": "incident_reference",
                    "summary": target["summary"],
                    "self": target["self"],
                    "html_url": target["html_url"],
                },
            },
        )
        created = self.created[incident_id]
        self.log_entries[incident_id] = lambda: self._entries(incident_id, created, None, at)
        return record

    def _entries(
        self,
        incident_id: str,
        created: datetime,
        acknowledged: datetime | None,
        resolved: datetime | None,
    ) -> list[dict[str, Any]]:
        def entry(kind: str, moment: datetime, n: int, **extra: Any) -> dict[str, Any]:
            return {
                "id": f"R{incident_id}{n}",
                "type": kind,
                "summary": kind.replace("_log_entry", "").replace("_", " ").capitalize(),
                "self": f"{self.server.base_url}/log_entries/R{incident_id}{n}",
                "html_url": None,
                "created_at": z(moment),
                "agent": {"id": "PXPGF42", "type": "user_reference", "summary": "Bob"},
                "channel": {"type": "web_ui"},
                "incident": {"id": incident_id, "type": "incident_reference"},
                "teams": [],
                "contexts": [],
                **extra,
            }

        entries = [
            entry("trigger_log_entry", created, 1, channel={"type": "api"}),
            entry(
                "notify_log_entry",
                created + timedelta(seconds=5),
                2,
                channel={"type": "notification", "notification": {"type": "sms_notification"}},
            ),
        ]
        if acknowledged:
            entries.append(entry("acknowledge_log_entry", acknowledged, 3))
            # acknowledged again after a timeout: the first one counts
            entries.append(entry("acknowledge_log_entry", acknowledged + timedelta(minutes=30), 4))
        if resolved:
            entries.append(entry("resolve_log_entry", resolved, 5))
        return sorted(entries, key=lambda e: e["created_at"], reverse=True)

    # -- the API ------------------------------------------------------------------------

    @staticmethod
    def _bad_input(message: str) -> Reply:
        return Reply(
            400,
            {
                "error": {
                    "message": "Invalid Input Provided",
                    "code": PD_BAD_INPUT,
                    "errors": [message],
                }
            },
        )

    def _list(self, request: RecordedRequest) -> Reply:
        fault = self.take("/incidents")
        if fault is not None:
            return fault
        query = request.query
        for bound in ("since", "until"):
            if bound in query and not OFFSET.search(query[bound]):
                return self._bad_input(f"{bound} has no time zone offset")
        since, until = _parse(query["since"]), _parse(query["until"])
        if until > _six_months_after(since):
            return self._bad_input("The date range may not exceed 6 months")
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 25))
        if limit > 100 or offset + limit > 10_000:
            return self._bad_input("Offset + limit must not exceed 10000")
        service = query.get("service_ids[]")
        if self._order is None or len(self._order) != len(self.incidents):
            self._order = sorted(
                (self.created[i], r["incident_number"], i) for i, r in self.incidents.items()
            )
        window = self._order[
            bisect_left(self._order, (since,)) : bisect_left(self._order, (until,))
        ]
        matching = [
            self.incidents[incident_id]
            for _created, _number, incident_id in window
            if service is None or self.incidents[incident_id]["service"]["id"] == service
        ]
        sort_by = query.get("sort_by", "created_at:asc")
        if sort_by.startswith("incident_number"):
            matching.sort(key=lambda record: record["incident_number"])
        elif self.unstable_ties:
            # A database sorting on a non-unique key gives ties in no set order: here the
            # incidents of one second come reversed on every other request.
            self._requests += 1
            if self._requests % 2:
                matching.sort(key=lambda record: record["incident_number"], reverse=True)
                matching.sort(key=lambda record: self.created[record["id"]])
        page = matching[offset : offset + limit]
        total = len(matching) if query.get("total") == "true" and self.honour_total else None
        return Reply(
            200,
            {
                "incidents": page,
                "limit": limit,
                "offset": offset,
                "more": offset + len(page) < len(matching),
                "total": total,
            },
            headers={"ratelimit-limit": "960", "ratelimit-remaining": "959"},
        )

    def _one(self, request: RecordedRequest) -> Reply:
        fault = self.take(request.path)
        if fault is not None:
            return fault
        incident_id = request.path.rsplit("/", 1)[-1]
        return Reply(200, {"incident": self.incidents[incident_id]})

    def _log(self, request: RecordedRequest) -> Reply:
        fault = self.take(request.path)
        if fault is not None:
            return fault
        incident_id = request.path.split("/")[2]
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 25))
        entries = self.log_entries[incident_id]()
        page = entries[offset : offset + limit]
        return Reply(
            200,
            {
                "log_entries": page,
                "limit": limit,
                "offset": offset,
                "more": offset + len(page) < len(entries),
                "total": None,
            },
        )


class FakeOpsgenie(Faults):
    """An Opsgenie account: incidents by id, alerts, and searches over them."""

    def __init__(self, server: ReplayServer) -> None:
        super().__init__()
        self.server = server
        self.incidents: dict[str, dict[str, Any]] = {}
        self.alerts: list[tuple[str, dict[str, Any]]] = []  # (query that finds it, alert)
        server.add_handler("/v1/incidents", self._incidents)
        server.add_handler("/v2/alerts", self._alerts)

    @staticmethod
    def stamp(moment: datetime, digits: int = 3) -> str:
        fraction = f"{moment.microsecond:06d}"[:digits].rstrip("0") or "0"
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction}Z"

    def incident(
        self,
        incident_id: str,
        tiny: int,
        *,
        service: str,
        created: datetime,
        status: str = "resolved",
        priority: str = "P1",
        resolved: datetime | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": incident_id,
            "tinyId": str(tiny),
            "message": message or f"Incident {tiny}",
            "status": status,
            "tags": [],
            "createdAt": self.stamp(created),
            "updatedAt": self.stamp(resolved or created, 2),
            "priority": priority,
            "ownerTeam": "",
            "responders": [{"type": "team", "id": "c0259fb8-5b11-4a3b-9d2a-1d1a2c3b4e5f"}],
            "extraProperties": {},
            "links": {
                "web": f"https://acme.app.opsgenie.com/incident/detail/{incident_id}",
                "api": f"https://api.opsgenie.com/v1/incidents/{incident_id}",
            },
            "impactStartDate": self.stamp(created),
            "impactedServices": [service],
        }
        if resolved is not None:
            record["impactEndDate"] = self.stamp(resolved, 2)
        self.incidents[incident_id] = record
        self.server.add_handler(f"/v1/incidents/{incident_id}", self._one)
        return record

    def alert(
        self, alert_id: str, tiny: int, *, query: str, created: datetime, priority: str = "P3"
    ) -> dict[str, Any]:
        record = {
            "id": alert_id,
            "tinyId": str(tiny),
            "alias": f"alias-{tiny}",
            "message": f"Alert {tiny}",
            "status": "closed",
            "acknowledged": True,
            "isSeen": True,
            "tags": ["checkout"],
            "snoozed": False,
            "count": 1,
            "lastOccurredAt": self.stamp(created, 1),
            "createdAt": self.stamp(created, 1),
            "updatedAt": self.stamp(created + timedelta(minutes=20)),
            "source": "prometheus",
            "owner": "bob@example.com",
            "priority": priority,
            "responders": [{"type": "team", "id": "c0259fb8-5b11-4a3b-9d2a-1d1a2c3b4e5f"}],
            "integration": {"id": "4513b7ea", "name": "Prometheus", "type": "Prometheus"},
            "report": {"ackTime": 15_702, "closeTime": 1_200_000, "acknowledgedBy": "bob"},
        }
        self.alerts.append((query, record))
        return record

    def _page(self, request: RecordedRequest, records: list[dict[str, Any]]) -> tuple[list, int]:
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 20))
        ordered = sorted(records, key=lambda r: _parse(r["createdAt"]), reverse=True)
        if request.query.get("order") == "asc":
            ordered.reverse()
        return ordered[offset : offset + min(limit, 100)], len(ordered)

    def _incidents(self, request: RecordedRequest) -> Reply:
        fault = self.take("/v1/incidents")
        if fault is not None:
            return fault
        match = re.fullmatch(r"impactedServices:(\S+)", request.query.get("query", ""))
        service = match.group(1) if match else None
        found = [r for r in self.incidents.values() if service in r["impactedServices"]]
        page, total = self._page(request, found)
        return Reply(
            200, {"data": page, "totalCount": total, "took": 0.012, "requestId": "9ae63dd7"}
        )

    def _one(self, request: RecordedRequest) -> Reply:
        fault = self.take(request.path)
        if fault is not None:
            return fault
        if request.query.get("identifierType") != "id":
            return Reply(422, {"message": "identifierType must be id", "took": 0.0})
        record = self.incidents[request.path.rsplit("/", 1)[-1]]
        return Reply(200, {"data": record, "took": 0.003, "requestId": "5d0c6e4a"})

    def _alerts(self, request: RecordedRequest) -> Reply:
        fault = self.take("/v2/alerts")
        if fault is not None:
            return fault
        found = [alert for query, alert in self.alerts if query == request.query.get("query")]
        page, _total = self._page(request, found)
        offset = int(request.query.get("offset", 0))
        base = f"{self.server.base_url}/v2/alerts?limit=100&sort=createdAt&order=desc"
        paging = {"first": f"{base}&offset=0"}
        if len(page) == int(request.query.get("limit", 20)):
            paging["next"] = f"{base}&offset={offset + len(page)}"
        return Reply(200, {"data": page, "paging": paging, "took": 0.021, "requestId": "77f1a1c2"})


def quiet(source_class: type) -> tuple[type, list[float]]:
    """`source_class` whose HTTP client records its waits instead of sleeping."""
    sleeps: list[float] = []

    class Quiet(source_class):  # type: ignore[misc, valid-type]
        def client(self) -> Any:
            client = super().client()
            client.sleep = sleeps.append
            return client

    Quiet.__name__ = f"Quiet{source_class.__name__}"
    return Quiet, sleeps

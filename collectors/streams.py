"""Declared HTTP lists (`Stream`) and the loop that pages through one (`run_http_stream`).

A stream says where a list is (`path`, filled from the `Scope`), how it pages, what its
cursor is and how a record becomes canonical rows; `run_http_stream` fetches its pages,
the next one while this one is stored, and keeps its bookmark (the cursor, the ETag, the
next page of a listing cut short) so that a sync killed half-way resumes without loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import repeat
from typing import TYPE_CHECKING, Any

from collectors.http import (
    BadPayloadError,
    HttpClient,
    HttpResponse,
    LinkPaginator,
    PageGuard,
    PageRequest,
    Paginator,
)
from collectors.rows import Rows, merge_rows
from poise.config import ServiceConfig
from poise.timeutil import isoformat_z, parse_timestamp, to_sqlite_text

if TYPE_CHECKING:
    from collectors.base import SyncContext
    from collectors.deploys import DeploySettings


@dataclass(frozen=True)
class Scope:
    """What one bookmark covers: usually one service's repository or project at a source."""

    key: str  # the bookmark scope (the service name)
    service: ServiceConfig
    location: Any  # the service's block for this source: GitLocation, GitHubLocation, …
    vars: Mapping[str, Any] = field(default_factory=dict)  # fills `Stream.path` templates


@dataclass(frozen=True)
class RawRequest:
    """Where a raw payload came from (stored beside it): method, URL (no credentials), params."""

    method: str
    url: str
    params: Any = None


@dataclass(frozen=True)
class Stream:
    """One list at an API, declared rather than coded.

    - `path`: endpoint template, formatted with `Scope.vars` (`/repos/{repo}/deployments`).
    - `convert(record, scope)`: one API record -> canonical rows per table.
    - `records`: the key holding the list in a page (`"workflow_runs"`); None when the body
      is the list itself.
    - `primary_key`: the record's id field (documentation and de-duplication).
    - `cursor_field`: a field that only grows (`updated_at`, a build number); the largest
      value stored becomes the bookmark. `since_param` sends it back to the API as a
      server-side filter; with `newest_first` paging stops at the first older record.
    - `relist` (newest-first streams with a timestamp cursor): list again, at every sync,
      the records up to this long before the bookmark's cursor, for an API that cannot
      list by update time (Opsgenie's incident search): a record edited after it was
      stored is seen while its cursor value is within that span, never after. The
      bookmark's cursor stays the largest value seen; `since` bounds the span as it
      bounds a first sync. Not with `settled` or `conditional`.
    - `conditional`: send the stored ETag on the first page; a 304 means nothing changed.
    - `details(http, record, scope)`: completes a record with what its list item lacks (a
      pull request's first commit, a deployment's statuses), for the records listed (newer
      than the bookmark, or within `relist` of it), `detail_workers` requests at a time;
      returns the completed record.
    - `settled(record)`: False for a record that may still change (a running build): it
      holds the bookmark's cursor at its value, so the next sync lists it again. Decide
      there, too, when to stop waiting (a deployment left "pending" for weeks).
    """

    name: str
    path: str
    convert: Callable[[dict[str, Any], Scope], Rows]
    records: str | None = None
    primary_key: str = "id"
    cursor_field: str | None = None
    page_size: int = 100
    page_size_param: str | None = "per_page"
    params: Mapping[str, Any] = field(default_factory=dict)
    since_param: str | None = None
    newest_first: bool = False
    conditional: bool = False
    paginator: Paginator = field(default_factory=LinkPaginator)
    details: Callable[[HttpClient, dict[str, Any], Scope], dict[str, Any]] | None = None
    detail_workers: int = 4
    settled: Callable[[dict[str, Any]], bool] | None = None
    relist: timedelta | None = None

    def __post_init__(self) -> None:
        if self.relist is None:
            return
        if not self.newest_first or not self.cursor_field or self.relist < timedelta(0):
            raise ValueError(
                f"stream {self.name}: relist needs newest_first, a cursor_field and a span >= 0"
            )
        # A held record would move the cursor back below the records re-listed, and a 304
        # of the first page says nothing of the later pages the span reaches.
        if self.settled is not None or self.conditional:
            raise ValueError(
                f"stream {self.name}: relist goes with neither settled nor conditional"
            )

    def first_request(self, scope: Scope, cursor: Any) -> PageRequest:
        params = dict(self.params)
        if self.page_size_param:
            params[self.page_size_param] = self.page_size
        if self.since_param and cursor is not None:
            params[self.since_param] = _cursor_for_api(cursor)
        return PageRequest(self.path.format(**scope.vars), params)

    def records_of(self, body: Any, response: HttpResponse) -> list[dict[str, Any]]:
        return records_in(body, response, self.records)


def records_in(body: Any, response: HttpResponse, key: str | None = None) -> list[dict[str, Any]]:
    """The list of objects in a page (under `key`); anything else is a malformed page."""
    found = body.get(key) if key and isinstance(body, dict) else body
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        where = f"a list under {key!r}" if key else "a list"
        raise BadPayloadError(
            f"{response.source}: malformed page from {response.url}: expected {where} "
            "of objects; earlier pages are kept"
        )
    return found


def _as_timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            return None
    return None


def cursor_value(value: Any) -> Any:
    """A cursor in a form that sorts correctly: timestamps become fixed-width UTC text."""
    moment = _as_timestamp(value)
    return to_sqlite_text(moment) if moment is not None else value


def _cursor_for_api(cursor: Any) -> Any:
    moment = _as_timestamp(cursor)
    return isoformat_z(moment) if moment is not None else cursor


def relist_start(
    moment: datetime, relist: timedelta, since: datetime | None = None
) -> datetime | None:
    """`relist` before `moment`, but not before `since` (what a first sync left out is not
    added later) unless `moment` itself is; None (no bound) before the year 1."""
    try:
        floor: datetime | None = moment - relist
    except OverflowError:
        floor = None
    if since is None:
        return floor
    bound = min(since, moment)
    return bound if floor is None or bound > floor else floor


def relist_floor(cursor: Any, relist: timedelta, start: Any = None) -> Any:
    """Where a newest-first listing with `relist` stops, as a cursor (`relist_start` of the
    bookmark's `cursor` and `start`, `since`)."""
    moment = _as_timestamp(cursor)
    if moment is None:
        raise ValueError(f"relist needs a timestamp cursor, the bookmark holds {cursor!r}")
    floor = relist_start(moment, relist, None if start is None else _as_timestamp(start))
    return None if floor is None else cursor_value(floor)


def run_http_stream(
    ctx: SyncContext,
    stream: Stream,
    scope: Scope,
    *,
    start: Any = None,
    keep: Mapping[str, Any] | None = None,
    first_response: HttpResponse | None = None,
    deploys: DeploySettings | None = None,
) -> None:
    """Page through one declared stream for one scope, storing each page as it arrives.

    Bookmark rules: an oldest-first stream advances its cursor at every checkpoint. A
    newest-first stream only moves its cursor once the last page is stored; until then
    a checkpoint remembers the next page to fetch, so a killed sync resumes there. A
    record that is not `settled` holds the cursor at its value (and drops the ETag), so
    the next sync lists it again. `start` is the cursor when there is no bookmark yet
    (`sources.<name>.since`): older records are not collected. A stream with `relist`
    stops `relist` before the bookmark's cursor instead (`relist_floor`); what it lists
    again never lowers the cursor, and a resumed listing stops where it would have.

    `keep`: keys saved in every bookmark of the listing beside its own (what the source
    knows of the list itself, such as which series of Jenkins build numbers it is in),
    given by the caller because a `--full` sync starts without the stored bookmark.
    `first_response`: the answer to the stream's first request (sent without an ETag)
    when the caller has read it already, to check the list before paging it, so it is not
    asked for twice; a listing resumed at a checkpoint's next page ignores it.
    `deploys`: what decides the stream's deployments, kept in its bookmark; when it
    changed, the stream is read again from its start (`DeployGuard`).
    """
    if ctx.http is None:
        raise RuntimeError(f"{ctx.source}: stream {stream.name} needs an HTTP client")
    settings = ctx.deploy_guard(stream.name, scope, deploys) if deploys is not None else None
    state = ctx.bookmark(stream.name, scope.key) or {}  # none for a re-read: as a first sync
    cursor = state.get("cursor")
    floor = cursor  # a newest-first listing stops at records older than this
    if cursor is None and start is not None:
        cursor = floor = cursor_value(start)
    elif cursor is not None and stream.relist is not None:
        floor = relist_floor(cursor, stream.relist, start)
    etag = state.get("etag") if stream.conditional else None
    highest, held = cursor, None
    pending = state.get("pending")
    if pending:
        request = PageRequest(**pending["request"])
        highest, held = pending.get("cursor", cursor), pending.get("held")
        etag = pending.get("etag")
    else:
        request = stream.first_request(scope, floor)
    first, guard = True, PageGuard()
    with PageFetcher(ctx.http) as pages:
        while request is not None:
            if first and not pending and first_response is not None:
                response = first_response
            else:
                response = pages.get(request, etag=etag if first and not pending else None)
            if response.not_modified:
                ctx.advance(0)
                return
            if first and not pending and stream.conditional:
                etag = response.etag
            first = False
            records = stream.records_of(response.json(), response)
            guard.check(request, response, records)
            fresh, values, stop = [], [], False
            for record in records:
                field_value = record.get(stream.cursor_field) if stream.cursor_field else None
                value = cursor_value(field_value) if field_value is not None else None
                if stream.newest_first and None not in (value, floor) and value < floor:
                    stop = True
                    continue
                fresh.append(record)
                values.append(value)
            following = None if stop else stream.paginator.next_request(response, request, records)
            pages.prefetch(following)
            rows: Rows = {}
            for value, record in zip(
                values, complete_records(ctx, stream, scope, fresh), strict=True
            ):
                if value is not None:
                    highest = value if highest is None or value > highest else highest
                    if stream.settled is not None and not stream.settled(record):
                        held = value if held is None or value < held else held
                merge_rows(rows, stream.convert(record, scope))
            reached = highest if None in (held, highest) else min(highest, held)
            last = following is None
            kept = {**(keep or {}), **(settings.kept(final=last) if settings else {})}
            bookmark: dict[str, Any] = {
                **kept,
                "cursor": reached,
                "etag": etag if held is None else None,
            }
            if following is not None and stream.newest_first:
                bookmark = {
                    **kept,
                    "cursor": cursor,
                    "etag": state.get("etag"),
                    "pending": {
                        "request": {
                            "url": ctx.http.absolute(following.url),
                            "params": dict(following.params) if following.params else None,
                            "method": following.method,
                            "json_body": following.json_body,
                        },
                        "cursor": highest,
                        "held": held,
                        "etag": etag,
                    },
                }
            ctx.store_page(
                stream.name,
                scope.key,
                request=RawRequest(request.method, response.url, request.params),
                payload=response.text,
                status=response.status,
                rows=rows,
                write=settings.writer(rows, final=last) if settings else None,
                records=len(records),
                bookmark=bookmark,
                final=following is None,
            )
            request = following


class PageFetcher:
    """Sends a stream's page requests; the next page's goes out while this one is stored.

    Paging is sequential (each next URL comes from the page before), so this one request
    in flight is what overlaps the API's latency with converting and storing. An error of
    the page fetched ahead surfaces when that page is asked for, after the current page
    is stored; leaving the block waits for the request in flight, so none outlives it.
    """

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="poise-next-page")
        self._ahead: tuple[PageRequest, Future[HttpResponse]] | None = None

    def __enter__(self) -> PageFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def get(self, request: PageRequest, *, etag: str | None = None) -> HttpResponse:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == request and etag is None:
            return ahead[1].result()
        return self._send(request, etag)

    def prefetch(self, request: PageRequest | None) -> None:
        self._ahead = None if request is None else (request, self._pool.submit(self._send, request))

    def _send(self, request: PageRequest, etag: str | None = None) -> HttpResponse:
        return self.http.request(
            request.method,
            request.url,
            params=request.params,
            json_body=request.json_body,
            etag=etag,
        )


def complete_records(
    ctx: SyncContext, stream: Stream, scope: Scope, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The records with their details fetched, `detail_workers` requests at a time."""
    if stream.details is None or not records:
        return records
    with ThreadPoolExecutor(min(stream.detail_workers, len(records))) as pool:
        return list(pool.map(stream.details, repeat(ctx.http), records, repeat(scope)))

"""The collector framework: sources, their streams, and the context that stores what they fetch.

A collector is one module per source (`collectors/<name>.py`) with one `Source` subclass:

- `name` (`"github"`), and which services it applies to: by default every service whose
  config has a block of that name (`services[].github`), one `Scope` per service;
- `streams`: declarative `Stream`s (endpoint, primary key, cursor, page size, where the
  records sit in a page, how to page, and `convert(record, scope) -> Rows`);
- optionally `client()` (how to reach the API) and `sync_scope()` (for a source that is
  not a list of HTTP pages, such as a local git repository);
- `located_by`, the key(s) of the service's block saying where its rows are read from
  (`repo`, `service_id`): another value there moves the service's rows (`Location`,
  `Move`), told by their ids (`github:<repo>:`) or, for a source with `ids_located =
  False`, by the re-read not writing them.

Everything fetched goes through `SyncContext.store_page`: in ONE transaction it writes the
raw payload (with the request it came from, credentials stripped), upserts the canonical
rows (each with `source` and `raw_id`) and, every `checkpoint_every` records and at the
end of the stream, the bookmark. A sync killed at any point resumes from the last
committed bookmark; what was fetched after it is fetched again and upserted, so nothing is
lost or doubled. See docs/collectors.md for a worked example.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Connection, Engine, Table, delete, exists, or_, select

from collectors.http import (
    BadPayloadError,
    HttpClient,
    HttpResponse,
    LinkPaginator,
    PageGuard,
    PageRequest,
    Paginator,
)
from poise.config import PoiseConfig, ServiceConfig, SourceConfig, secret_from_env
from poise.errors import ConfigError
from poise.text import cut
from poise.timeutil import isoformat_z, parse_timestamp, to_sqlite_text, utcnow
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written, read_state, record_attempt, save_bookmark
from poise.warehouse.upsert import UpsertCounts, upsert_rows

log = logging.getLogger("poise.collectors")

# Canonical rows, by table name: {"changes": [{...}, ...], "deployments": [...]}.
Rows = dict[str, list[dict[str, Any]]]
TABLES = {table.name: table for table in schema.CANONICAL_TABLES}
# Relations between rows, not records: written like the others but left out of the counts.
LINK_TABLES = frozenset({"deployment_changes"})
# Words of a source's own choosing kept in columns of bounded width. A longer one (a GitLab
# review app's environment named after a long branch, a PagerDuty priority written as a
# sentence) is cut to fit, ending in "…", on either engine: PostgreSQL would refuse the
# row and fail that source at every sync, SQLite would keep it whole.
CUT_TO_FIT: dict[str, tuple[str, ...]] = {
    "changes": ("author",),
    "deployments": ("environment",),
    "incidents": ("severity", "cause"),
    "ci_runs": ("name",),
    "oncall_pages": ("urgency",),
    "slos": ("display_name", "datasource"),
}


# Writes one page's rows in the page's transaction: (connection, raw_id) -> counts.
Writer = Callable[[Connection, Any], UpsertCounts]
CHECKPOINT_EVERY = 500
_KEEP = object()
# The bookmark of the pass that links deployments to the changes they shipped
# (collectors/shipped.py): reset, its next pass links every deployment again.
LINKS_STREAM = "shipped"
# Keys of a deployment stream's bookmark: the settings its deployments were made with, and,
# while a re-read after a change of them is under way, the settings that changed.
SETTINGS_KEY, REREAD_KEY = "settings", "rereading"
# The bookmark of a scope's location (stream `location`): where its rows were read from and,
# while a move to another location is under way, the locations moved from.
LOCATION_STREAM = "location"
LOCATION_KEY, PREFIX_KEY, MOVING_KEY = "location", "prefix", "moving_from"
# The tables whose rows a location gives (their ids begin with its prefix, or the move's
# re-read writes them again). Links go with their deployments and changes (ON DELETE
# CASCADE); the `repositories` row is the service's (`github:<service>`), written again
# from the new location.
LOCATED_TABLES: tuple[Table, ...] = (
    schema.changes,
    schema.deployments,
    schema.ci_runs,
    schema.incidents,
    schema.oncall_pages,
)
_IN_CHUNK = 500  # ids in one IN (…): well under every driver's parameter limit


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


def relist_floor(cursor: Any, relist: timedelta, start: Any = None) -> Any:
    """Where a newest-first listing with `relist` stops, as a cursor: `relist` before the
    bookmark's `cursor`, but not before `start` (`since`: what a first sync left out is
    not added later) unless the cursor itself is; None (no bound) before the year 1."""
    moment = _as_timestamp(cursor)
    if moment is None:
        raise ValueError(f"relist needs a timestamp cursor, the bookmark holds {cursor!r}")
    try:
        floor: Any = cursor_value(moment - relist)
    except OverflowError:
        floor = None
    if start is None:
        return floor
    bound = min(cursor_value(start), cursor_value(moment))
    return bound if floor is None or bound > floor else floor


class Source:
    """One data source. Subclasses set `name` and `streams`, and override what differs."""

    name: ClassVar[str]
    streams: ClassVar[tuple[Stream, ...]] = ()
    default_base_url: ClassVar[str | None] = None
    # Records between checkpoints unless the run says otherwise (`run_sync(checkpoint_every=)`).
    checkpoint_every: ClassVar[int] = CHECKPOINT_EVERY
    # Whether what it writes feeds the derived tables (metrics.derived): its writes are then
    # noted for metrics.freshness, and a sync that made them rebuilds those tables.
    feeds_derived: ClassVar[bool] = True
    # The key(s) of the service's block that say where its rows are read from (`repo`); see
    # `Location`. With `ids_located`, every row id begins with `<name>:<that value>:` (one
    # key); without (incident ids are global), a move removes the service's rows of the
    # source that its re-read did not write, so every row must go through
    # `SyncContext.upsert` (`store_page`, `write_rows` and the writers built on it do).
    located_by: ClassVar[str | tuple[str, ...] | None] = None
    ids_located: ClassVar[bool] = True

    def __init__(self, config: PoiseConfig) -> None:
        self.config = config

    def scopes(self) -> list[Scope]:
        """One scope per service that has a `<name>:` block."""
        found = []
        for service in self.config.services:
            location = getattr(service, self.name, None)
            if location is not None:
                found.append(Scope(service.name, service, location, location.model_dump()))
        return found

    @property
    def settings(self) -> SourceConfig:
        return getattr(self.config.sources, self.name, None) or SourceConfig()

    def auth_headers(self, token: str | None, user: str | None) -> dict[str, str]:
        """Request headers carrying the credentials (the only place they ever go)."""
        return {"Authorization": f"Bearer {token}"} if token else {}

    def client(self) -> HttpClient | None:
        """The HTTP client for this source; None for sources that use no HTTP."""
        if not self.streams:
            return None
        settings = self.settings
        base_url = settings.base_url or self.default_base_url
        if not base_url:
            raise ConfigError(f"sources.{self.name}.base_url: required for {self.name}")
        what = f"sources.{self.name}"
        token = secret_from_env(settings.token_env, what=f"{what}.token_env")
        user = secret_from_env(settings.user_env, what=f"{what}.user_env")
        return HttpClient(
            self.name,
            base_url,
            headers=self.auth_headers(token, user),
            secrets=[s for s in (token, user) if s],
            token_env=settings.token_env,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
        )

    def location(self, scope: Scope) -> Location | None:
        """Where the scope's rows are read from (None: the source keeps no location)."""
        if self.located_by is None:
            return None
        if not self.ids_located:
            keys = (self.located_by,) if isinstance(self.located_by, str) else self.located_by
            values = {key: getattr(scope.location, key, None) for key in keys}
            return Location({key: "" if v is None else str(v) for key, v in values.items()}, None)
        assert isinstance(self.located_by, str), "row ids begin with one value"
        value = str(getattr(scope.location, self.located_by))
        return Location({self.located_by: value}, f"{self.name}:{value}:")

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        """Collect every stream for one scope; override for sources that are not HTTP lists."""
        for stream in self.streams:
            run_http_stream(ctx, stream, scope)


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """`items` a few hundred at a time, for `IN (…)` lists."""
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def remove_ids(connection: Connection, table: Table, ids: Sequence[str]) -> int:
    """Delete the rows of `table` with these ids; how many there were."""
    for chunk in chunks(ids):
        connection.execute(delete(table).where(table.c.id.in_(chunk)))
    return len(ids)


def changed_keys(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ between what a bookmark kept and the config now."""
    return sorted(key for key in {*before, *now} if before.get(key) != now.get(key))


@dataclass(frozen=True)
class DeploySettings:
    """What decides which records of a stream are deployments, and to which environment.

    `values` (JSON-able) are kept in the stream's bookmark (`settings`): when the config
    says otherwise at a later sync, the stream is read again from its start and the
    deployments it made that the new settings do not make are removed (`DeployGuard`).
    `prefix` begins the ids of the deployments the stream makes for the service;
    `spare(id)`: one of them the stream cannot read again and keeps (a build of the Jenkins
    job that the server discarded, or of an earlier series of its numbers).
    """

    values: Mapping[str, Any]
    prefix: str
    spare: Callable[[str], bool] | None = None

    @property
    def stored(self) -> dict[str, Any]:
        """The values as the bookmark gives them back (JSON: tuples are lists, keys text)."""
        return dict(json.loads(json.dumps(self.values, sort_keys=True, default=str)))

    def owned(self, ctx: SyncContext, scope: Scope) -> ColumnElement[bool]:
        """The service's deployments from this source whose ids begin with `prefix`."""
        table = schema.deployments
        return (
            (table.c.service == scope.key)
            & (table.c.source == ctx.source)
            & table.c.id.startswith(self.prefix, autoescape=True)
        )


class DeployGuard:
    """A deployment stream's settings across one sync of one scope (see `DeploySettings`).

    Settings unlike the bookmark's make the sync a re-read: the stream starts as on a
    first sync (from `since`, no cursor, ETag or checkpoint's next page), asks again the
    details that depend on them, and its last page's transaction removes the deployments
    it did not make this time. Until then every checkpoint says a re-read is under way
    (`rereading`), so a sync killed half-way reads from the start again; the old rows
    stay until the new ones are written. The stored settings are read past `--full`,
    which is a re-read too when they changed.
    """

    def __init__(
        self, ctx: SyncContext, stream: str, scope: Scope, settings: DeploySettings
    ) -> None:
        self.ctx, self.stream, self.scope, self.settings = ctx, stream, scope, settings
        self.made: set[str] = set()
        current = settings.stored
        with ctx.engine.connect() as connection:
            stored = read_state(connection, ctx.source, stream, scope.key).bookmark
        self.changed: list[str] = []  # the settings that changed: a re-read
        if isinstance(stored, dict) and stored.get(REREAD_KEY):
            self.changed = list(stored[REREAD_KEY])  # one that did not finish: from the start
        elif isinstance(stored, dict) and SETTINGS_KEY in stored:
            before = stored[SETTINGS_KEY] or {}
            self.changed = changed_keys(before, current)
        elif isinstance(stored, dict):
            # A bookmark from before the settings were kept cannot say what its rows were
            # made with. Taken as made with today's settings (what the user has seen since):
            # reading every stream of every service again on upgrade would spend hours of
            # rate limit for nothing in the usual case. They are recorded now, not with the
            # next checkpoint, as an unchanged list (a 304) writes none.
            ctx.save_bookmark(stream, scope.key, {**stored, SETTINGS_KEY: current})
        # a move of the scope reads this stream again anyway and says so once, for all of them
        if self.changed and ctx.move is None:
            ctx.note(
                f"{ctx.source}: {scope.key}: deploy settings changed ({', '.join(self.changed)})"
                f" since the last sync; reading the {stream.replace('_', ' ')} again"
            )

    @property
    def rereading(self) -> bool:
        return bool(self.changed)

    def kept(self, *, final: bool = False) -> dict[str, Any]:
        """The keys to save in the stream's bookmark (a re-read says so until its end)."""
        kept: dict[str, Any] = {SETTINGS_KEY: self.settings.stored}
        if self.rereading and not final:
            kept[REREAD_KEY] = self.changed
        return kept

    def writer(self, rows: Rows, *, final: bool) -> Writer:
        """A page's rows (noting the deployments made), and at the end of a re-read the
        removal of those no longer made, in the page's transaction."""
        self.made.update(str(row["id"]) for row in rows.get("deployments", ()))

        def write(connection: Connection, raw_id: Any) -> UpsertCounts:
            counts = self.ctx.upsert(connection, rows, raw_id)
            if final and self.rereading:
                counts.updated += self.remove_stale(connection)
            return counts

        return write

    def remove_stale(self, connection: Connection) -> int:
        """Remove the deployments of the stream the re-read did not make (their links go
        with them: ON DELETE CASCADE); when any went, or one left production still ships
        changes, the next pass links every deployment again (a predecessor changed)."""
        table, links = schema.deployments, schema.deployment_changes
        owned = self.settings.owned(self.ctx, self.scope)
        spare = self.settings.spare or (lambda _id: False)
        stale = [
            deployment_id
            for deployment_id in connection.scalars(select(table.c.id).where(owned))
            if deployment_id not in self.made and not spare(deployment_id)
        ]
        remove_ids(connection, table, stale)
        left_production = exists().where(
            (links.c.deployment_id == table.c.id)
            & owned
            & (table.c.environment != self.scope.service.production_environment)
        )
        if stale or connection.execute(select(left_production)).scalar():
            save_bookmark(connection, self.ctx.source, LINKS_STREAM, self.scope.key, None)
        if stale:
            mark_written(connection)
        return len(stale)


@dataclass(frozen=True)
class Location:
    """Where a scope's rows are read from at its source: a repository, a project, a job.

    The id of every row read from it begins with `prefix` (`github:acme/checkout:`), so
    after a change of location in the config (a repository renamed, transferred or
    replaced) the old rows would stay beside the new ones, counted twice, and the old
    location's cursors and ETags would hide the new one's history. `values`
    (`{"repo": "acme/checkout"}`) are kept in the scope's `location` bookmark; when the
    config names another location, the sync is a `Move`. A location without a prefix
    (`None`: a PagerDuty service, whose incident ids are global) is told by its values,
    and its rows by the move's re-read not writing them.
    """

    values: Mapping[str, str]
    prefix: str | None

    @property
    def place(self) -> Any:
        """What tells two locations apart: the prefix, else the values."""
        return self.prefix if self.prefix is not None else tuple(sorted(self.values.items()))

    @property
    def stored(self) -> dict[str, Any]:
        return {LOCATION_KEY: dict(self.values), PREFIX_KEY: self.prefix}

    def shown(self, keys: Iterable[str]) -> str:
        """The values of `keys` (those that changed), for a note."""
        return ", ".join(self.values.get(key) or "none" for key in keys)

    @classmethod
    def of(cls, stored: Any) -> Location | None:
        """The location a bookmark (or an entry of its `moving_from`) keeps, if any."""
        if not isinstance(stored, dict):
            return None
        values, prefix = stored.get(LOCATION_KEY), stored.get(PREFIX_KEY, "")
        # a prefix, or None (stored `null`) for a location the row ids do not name
        if not isinstance(values, dict) or not (
            prefix is None or (prefix and isinstance(prefix, str))
        ):
            return None
        return cls({str(k): str(v) for k, v in values.items()}, prefix)


class Move:
    """A scope whose rows were read from other locations than the config names now.

    The sync reads every stream of the scope as on a first sync (`SyncContext.bookmark`
    answers None: no cursor, ETag or checkpoint's next page), and once they are stored,
    `end` removes the service's rows from the locations moved from, in one transaction
    with the new location's bookmark, and has every deployment linked again. The move is
    saved (`moving_from`) in the transaction of the first rows written from the new
    location, so a sync killed or failing after it moves again, from the start, at the
    next sync, and removes nothing early; one that fails before writing anything (a 404
    at the new location) leaves the bookmark as it was. Moving back before the end
    removes the rows of the location left instead.

    For a location without a prefix, the rows removed are the service's rows of the
    source that the re-read did not write (`written`, noted by `SyncContext.upsert`): the
    warehouse then holds what a first sync with the new config would.
    """

    def __init__(
        self, ctx: SyncContext, scope: str, location: Location, left: list[Location]
    ) -> None:
        self.ctx, self.scope, self.location, self.left = ctx, scope, location, left
        self.saved = False
        self.written: dict[str, set[str]] = {}  # by table: what a sweeping move's re-read wrote

    @property
    def sweeps(self) -> bool:
        """Whether the rows left are told by the re-read not writing them (no prefix)."""
        return self.location.prefix is None

    @property
    def stored(self) -> dict[str, Any]:
        return {**self.location.stored, MOVING_KEY: [old.stored for old in self.left]}

    def save(self, connection: Connection) -> None:
        save_bookmark(connection, self.ctx.source, LOCATION_STREAM, self.scope, self.stored)

    def shown(self) -> tuple[str, str, str]:
        """The keys that changed, the locations left and the new one, for a line."""
        keys = sorted(
            {key for old in self.left for key in changed_keys(old.values, self.location.values)}
        )
        olds = ", ".join(old.shown(keys) for old in self.left)
        return ", ".join(keys), olds, self.location.shown(keys)

    def note(self) -> str:
        keys, olds, new = self.shown()
        return (
            f"{self.ctx.source}: {self.scope}: {keys} changed ({olds} → {new}) since the last "
            "sync; reading every stream again, as on a first sync, and removing the rows read "
            f"from {olds} once that is done"
        )

    def warn_if_emptied(self, removed: dict[str, int]) -> None:
        """A move without a prefix removes what the re-read did not write: a table it wrote
        nothing to at all (a valid-looking id of the wrong service answers empty lists, not
        a 404) loses every row, and is said so."""
        emptied = {
            table.replace("_", " "): count
            for table, count in removed.items()
            if count and self.sweeps and not self.written.get(table)
        }
        if not emptied:
            return
        keys, olds, new = self.shown()
        counts = " and ".join(f"{count} {name}" for name, count in emptied.items())
        self.ctx.warn(
            f"{self.ctx.source}: {self.scope}: {keys} {new} gave no {' and no '.join(emptied)}, "
            f"so the {counts} read from {olds} were removed (a first sync with this config "
            "would hold none); if it names the wrong service, correct it and the next sync "
            "reads them again"
        )

    def end(self) -> int:
        """Remove the rows read from the locations left; how many went."""
        source = self.ctx.source
        with self.ctx.engine.begin() as connection:
            by_table = {table.name: self.remove(connection, table) for table in LOCATED_TABLES}
            removed = sum(by_table.values())
            save_bookmark(connection, source, LOCATION_STREAM, self.scope, self.location.stored)
            # the links of a first sync at the new location: every deployment linked again
            # (a source that links none, such as PagerDuty, keeps no links bookmark)
            if read_state(connection, source, LINKS_STREAM, self.scope).bookmark is not None:
                save_bookmark(connection, source, LINKS_STREAM, self.scope, None)
            if removed:
                mark_written(connection)
        self.warn_if_emptied(by_table)
        return removed

    def remove(self, connection: Connection, table: Table) -> int:
        new = self.location.prefix
        if new is None:
            return self.sweep(connection, table)
        prefixes = tuple(old.prefix for old in self.left if old.prefix is not None)
        under = or_(*(table.c.id.startswith(prefix, autoescape=True) for prefix in prefixes))
        query = select(table.c.id).where(
            (table.c.source == self.ctx.source) & (table.c.service == self.scope) & under
        )
        # Compared again here: LIKE ignores case on SQLite, and `Acme/App` → `acme/app` is a
        # move whose new rows must stay.
        stale = [
            row_id
            for row_id in connection.scalars(query)
            if row_id.startswith(prefixes) and not row_id.startswith(new)
        ]
        return remove_ids(connection, table, stale)

    def sweep(self, connection: Connection, table: Table) -> int:
        """Remove the service's rows of the source in `table` that the re-read did not write."""
        written = self.written.get(table.name, set())
        query = select(table.c.id).where(
            (table.c.source == self.ctx.source) & (table.c.service == self.scope)
        )
        stale = [row_id for row_id in connection.scalars(query) if row_id not in written]
        return remove_ids(connection, table, stale)

    def wrote(self, rows: Rows) -> None:
        """Note the ids of rows written from the new location (a move without a prefix)."""
        if self.sweeps:
            for table, batch in rows.items():
                ids = (str(row["id"]) for row in batch if "id" in row)  # links have none
                self.written.setdefault(table, set()).update(ids)


@dataclass
class StreamOutcome:
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    records: int = 0
    since_checkpoint: int = 0


@dataclass
class SyncContext:
    """What a source gets while it syncs: the warehouse, config, HTTP client and store helpers."""

    engine: Engine
    config: PoiseConfig
    source: str
    full: bool = False
    http: HttpClient | None = None
    checkpoint_every: int = CHECKPOINT_EVERY
    advance: Callable[[int], None] = lambda _n: None
    # Called after each committed checkpoint with (stream, scope, bookmark); tests use it
    # to stop a sync half-way as a kill would.
    on_checkpoint: Callable[[str, str, Any], None] | None = None
    feeds_derived: bool = True  # the source's `feeds_derived`
    log: logging.Logger = log
    outcomes: dict[tuple[str, str], StreamOutcome] = field(default_factory=dict)
    current: tuple[str, str] | None = None
    guards: dict[tuple[str, str], DeployGuard] = field(default_factory=dict)
    move: Move | None = None  # the scope's rows are read from a new location (`follow`)
    # what the user should know though nothing failed (a path matching nothing, a record
    # skipped): `poise sync` prints them under its summary
    warnings: list[str] = field(default_factory=list)
    # what the sync did beyond the usual that the user should hear of (a stream read again
    # because its settings changed): printed under the summary, not as a warning
    notes: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """A finding for the sync's summary (logged at debug level only: said once, at the end)."""
        self.warnings.append(message)
        self.log.debug("%s", message)

    def note(self, message: str) -> None:
        """A line for the sync's summary that is no warning (logged at info level too)."""
        self.notes.append(message)
        self.log.info("%s", message)

    # -- bookmarks ------------------------------------------------------------------

    def bookmark(self, stream: str, scope: str) -> Any:
        """The last committed bookmark (None on a first or `--full` sync, for every stream
        of a scope that moved to another location, and for a stream read again because its
        deploy settings changed: `deploy_guard`, asked first)."""
        self.current = (stream, scope)
        self.outcomes.setdefault((stream, scope), StreamOutcome())
        guard = self.guards.get((stream, scope))
        if self.full or self.move is not None or (guard is not None and guard.rereading):
            return None
        with self.engine.connect() as connection:
            return read_state(connection, self.source, stream, scope).bookmark

    def save_bookmark(self, stream: str, scope: str, bookmark: Any) -> None:
        with self.engine.begin() as connection:
            save_bookmark(connection, self.source, stream, scope, bookmark)
        self._checkpointed(stream, scope, bookmark)

    # -- location ---------------------------------------------------------------------

    def follow(self, scope: Scope, location: Location) -> None:
        """Before the scope's streams: compare where its rows were read from with where
        the config says they are now (a `Move` when they differ)."""
        with self.engine.connect() as connection:
            stored = read_state(connection, self.source, LOCATION_STREAM, scope.key).bookmark
        before = Location.of(stored)
        if before is None:
            # A first sync, or a warehouse from before locations were kept, which cannot
            # say where its rows were read from: taken as read from today's location (what
            # the dashboard has shown since), as deploy settings are, so upgrading reads
            # nothing again. Recorded now, so a change after it is seen.
            with self.engine.begin() as connection:
                save_bookmark(connection, self.source, LOCATION_STREAM, scope.key, location.stored)
        moving = stored.get(MOVING_KEY) if isinstance(stored, dict) else None
        left: dict[Any, Location] = {}
        for old in [*map(Location.of, moving or []), before]:
            if old is not None and old.place != location.place:
                left.setdefault(old.place, old)
        if left:
            self.move = Move(self, scope.key, location, list(left.values()))
            self.note(self.move.note())
        else:  # its outcome is the move's when one is under way (recorded once it ends)
            self.outcomes.setdefault((LOCATION_STREAM, scope.key), StreamOutcome())

    def end_move(self) -> None:
        """Once every stream of the scope is stored from its new location (before linking
        deployments to changes, which then sees only the new location's rows): remove
        the rows read from the old one. Nothing when no move is under way."""
        move, self.move = self.move, None
        if move is not None:
            outcome = self.outcomes.setdefault((LOCATION_STREAM, move.scope), StreamOutcome())
            outcome.counts.updated += move.end()

    # -- deployment settings ----------------------------------------------------------

    def deploy_guard(self, stream: str, scope: Scope, settings: DeploySettings) -> DeployGuard:
        """The stream's `DeployGuard` for this sync (one per stream and scope: said once)."""
        key = (stream, scope.key)
        if key not in self.guards:
            self.guards[key] = DeployGuard(self, stream, scope, settings)
        return self.guards[key]

    def switched_off(self, stream: str, scope: Scope, settings: DeploySettings) -> None:
        """A deployment stream the config no longer reads: the deployments it made are
        removed and its bookmark is forgotten (read in full if switched on again), in one
        transaction; once, as the bookmark is gone after it."""
        with self.engine.connect() as connection:
            if read_state(connection, self.source, stream, scope.key).bookmark is None:
                return
        with self.engine.begin() as connection:
            gone = connection.execute(delete(schema.deployments).where(settings.owned(self, scope)))
            save_bookmark(connection, self.source, stream, scope.key, None)
            removed = max(gone.rowcount or 0, 0)
            if removed:
                save_bookmark(connection, self.source, LINKS_STREAM, scope.key, None)
                mark_written(connection)
        if self.move is None:  # a move removes the old location's deployments, and says so
            self.note(
                f"{self.source}: {scope.key}: deploy settings changed since the last sync; the "
                f"{stream.replace('_', ' ')} are no longer read and the {removed} deployment(s) "
                "they made are removed"
            )

    # -- storing --------------------------------------------------------------------

    def store_page(
        self,
        stream: str,
        scope: str,
        *,
        request: RawRequest,
        payload: str,
        rows: Rows | None = None,
        write: Writer | None = None,
        status: int | None = None,
        records: int = 0,
        bookmark: Any = _KEEP,
        final: bool = False,
    ) -> UpsertCounts:
        """Store one page in one transaction: raw payload, canonical rows, and (when due) the bookmark.

        The rows are `rows` (upserted in foreign-key order with `source` and `raw_id`), or
        whatever `write(connection, raw_id) -> UpsertCounts` writes, for bulk paths. The
        bookmark is saved when `final` or when `checkpoint_every` records have passed since
        the last one; between checkpoints a kill only costs re-fetching.
        """
        raw = {
            "source": self.source,
            "stream": stream,
            "scope": scope,
            "request_method": request.method,
            "request_url": request.url,
            "request_params": _dump(request.params),
            "status_code": status,
            "fetched_at": utcnow(),
            "payload": payload,
        }
        return self._commit(
            stream, scope, write or self._upserter(rows or {}), raw, records, bookmark, final
        )

    def write_rows(
        self,
        stream: str,
        scope: str,
        rows: Rows,
        *,
        records: int = 0,
        bookmark: Any = _KEEP,
        final: bool = False,
        delete: Callable[[Connection], Any] | None = None,
        after: Callable[[Connection], UpsertCounts | None] | None = None,
    ) -> UpsertCounts:
        """Like `store_page` for rows derived from pages already stored (no raw payload).

        In the same transaction, `delete(connection)` runs first (stale rows of a re-read)
        and `after(connection)` last (bulk rows that depend on `rows`).
        """
        upsert = self._upserter(rows)

        def write(connection: Connection, raw_id: Any) -> UpsertCounts:
            if delete is not None:
                delete(connection)
            counts = upsert(connection, raw_id)
            if after is not None:
                counts += after(connection) or UpsertCounts()
            return counts

        return self._commit(stream, scope, write, None, records, bookmark, final)

    def _upserter(self, rows: Rows) -> Writer:
        return lambda connection, raw_id: self.upsert(connection, rows, raw_id)

    def upsert(self, connection: Connection, rows: Rows, raw_id: Any) -> UpsertCounts:
        """`upsert_canonical` for this source, noting the rows a move's re-read writes."""
        if self.move is not None:
            self.move.wrote(rows)
        return upsert_canonical(connection, rows, source=self.source, raw_id=raw_id)

    def _commit(
        self,
        stream: str,
        scope: str,
        write: Writer,
        raw: dict[str, Any] | None,
        records: int,
        bookmark: Any,
        final: bool,
    ) -> UpsertCounts:
        outcome = self.outcomes.setdefault((stream, scope), StreamOutcome())
        self.current = (stream, scope)
        saved = False
        # the first rows from a new location: the move is kept with them (see `Move`)
        moving = self.move if self.move is not None and not self.move.saved else None
        with self.engine.begin() as connection:
            if moving is not None:
                moving.save(connection)
            raw_id = None
            if raw is not None:
                result = connection.execute(schema.raw_payloads.insert().values(**raw))
                raw_id = result.inserted_primary_key[0]
            counts = write(connection, raw_id)
            if self.feeds_derived and (counts.new or counts.updated):
                mark_written(connection)
            outcome.since_checkpoint += records
            if bookmark is not _KEEP and (
                final or outcome.since_checkpoint >= self.checkpoint_every
            ):
                save_bookmark(connection, self.source, stream, scope, bookmark)
                saved = True
        if moving is not None:
            moving.saved = True
        outcome.counts += counts
        outcome.records += records
        self.advance(records)
        if saved:
            outcome.since_checkpoint = 0
            self._checkpointed(stream, scope, bookmark)
        return counts

    def _checkpointed(self, stream: str, scope: str, bookmark: Any) -> None:
        if self.on_checkpoint is not None:
            self.on_checkpoint(stream, scope, bookmark)

    # -- outcome --------------------------------------------------------------------

    def record_outcomes(self, scope: str, error: str | None) -> None:
        """Write each stream's result for `scope` to the sync state (the error on the failing one)."""
        with self.engine.begin() as connection:
            for (stream, stream_scope), outcome in self.outcomes.items():
                if stream_scope != scope:
                    continue
                failed = error is not None and self.current == (stream, scope)
                record_attempt(
                    connection,
                    self.source,
                    stream,
                    scope,
                    error=error if failed else None,
                    new=outcome.counts.new,
                    updated=outcome.counts.updated,
                    unchanged=outcome.counts.unchanged,
                )
            if error is not None and (self.current is None or self.current[1] != scope):
                record_attempt(connection, self.source, "*", scope, error=error)

    def totals(self) -> UpsertCounts:
        total = UpsertCounts()
        for outcome in self.outcomes.values():
            total += outcome.counts
        return total


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def upsert_canonical(
    connection: Any, rows: Rows, *, source: str, raw_id: int | None
) -> UpsertCounts:
    """Upsert rows of several tables in foreign-key order, stamping source and raw_id."""
    counts = UpsertCounts()
    unknown = set(rows) - set(TABLES)
    if unknown:
        raise ValueError(f"{source}: convert produced rows for unknown tables {sorted(unknown)}")
    for table in schema.CANONICAL_TABLES:
        batch = rows.get(table.name)
        if not batch:
            continue
        stamp: dict[str, Any] = {}
        if "source" in table.c:
            stamp["source"] = source
        if "raw_id" in table.c and raw_id is not None:
            stamp["raw_id"] = raw_id
        widths = {name: table.c[name].type.length for name in CUT_TO_FIT.get(table.name, ())}
        for group in _same_columns(batch, stamp, widths):
            written = upsert_rows(connection, table, group)
            if table.name not in LINK_TABLES:
                counts += written
            elif written.new or written.updated:  # not counted, but the figures read them
                mark_written(connection)
    return counts


def _same_columns(
    batch: Iterable[dict[str, Any]], stamp: dict[str, Any], widths: dict[str, int]
) -> list[list[dict]]:
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in batch:
        full = {**stamp, **row} if stamp else row
        for name, width in widths.items():
            value = full.get(name)
            if isinstance(value, str) and len(value) > width:
                full = {**full, name: cut(value, width)}
        groups.setdefault(frozenset(full), []).append(full)
    return list(groups.values())


def merge_rows(target: Rows, more: Rows) -> Rows:
    for table, batch in more.items():
        target.setdefault(table, []).extend(batch)
    return target


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

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

The framework's parts live in modules of their own, and their names are given here too:
`collectors.streams` (`Scope`, `Stream`, `run_http_stream`), `collectors.rows` (`Rows`,
`upsert_canonical`), `collectors.deploys` (`DeploySettings`, `DeployGuard`) and
`collectors.moves` (`Location`, `Move`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, delete

from collectors.deploys import LINKS_STREAM, DeployGuard, DeploySettings
from collectors.http import HttpClient
from collectors.moves import LOCATION_STREAM, MOVING_KEY, Location, Move
from collectors.rows import Rows, Writer, chunks, merge_rows, upsert_canonical
from collectors.streams import (
    PageFetcher,
    RawRequest,
    Scope,
    Stream,
    complete_records,
    cursor_value,
    records_in,
    relist_floor,
    relist_start,
    run_http_stream,
)
from poise.config import PoiseConfig, SourceConfig, secret_from_env
from poise.errors import ConfigError
from poise.timeutil import utcnow
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written, read_state, record_attempt, save_bookmark
from poise.warehouse.upsert import UpsertCounts

# the framework's names, wherever they live (collectors import them from here)
__all__ = [
    "CHECKPOINT_EVERY",
    "LINKS_STREAM",
    "DeployGuard",
    "DeploySettings",
    "Location",
    "Move",
    "PageFetcher",
    "RawRequest",
    "Rows",
    "Scope",
    "Source",
    "Stream",
    "StreamOutcome",
    "SyncContext",
    "Writer",
    "chunks",
    "complete_records",
    "cursor_value",
    "merge_rows",
    "records_in",
    "relist_floor",
    "relist_start",
    "run_http_stream",
    "upsert_canonical",
]


log = logging.getLogger("poise.collectors")
CHECKPOINT_EVERY = 500
_KEEP = object()


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

"""Run the configured sources: each scope on its own, failures recorded, the rest going on."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from collectors.base import Scope, Source, SyncContext
from collectors.http import SourceError
from poise.config import PoiseConfig
from poise.errors import ConfigError, PoiseError
from poise.warehouse.sync_state import record_attempt

log = logging.getLogger("poise.collectors")

# Run after every sync with (engine, config): derived tables that depend on collected rows.
PostSyncHook = Callable[[Engine, PoiseConfig], Any]


@dataclass
class SourceResult:
    """What one source did in one sync: counts over all its scopes, and one line per failure."""

    name: str
    scopes: int = 0
    records: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what it did beyond the usual, a line each
    failed_scopes: int = 0  # a failure of the whole source fails several with one line
    stopped_scopes: int = 0  # not started because a graceful stop came first

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def failures(self) -> int:
        """How many scopes failed (a post-sync hook's failure is one)."""
        return self.failed_scopes or len(self.errors)


@dataclass
class SyncSummary:
    results: list[SourceResult] = field(default_factory=list)
    stopped: bool = False  # a graceful stop skipped the scopes and sources not started yet
    notes: list[str] = field(default_factory=list)  # what the post-sync hooks did, one line each

    @property
    def failed(self) -> bool:
        return any(result.failed for result in self.results)

    def result(self, name: str) -> SourceResult:
        return next(result for result in self.results if result.name == name)


def registered_sources() -> dict[str, type[Source]]:
    from collectors import SOURCES

    return SOURCES


def post_sync_hooks() -> list[PostSyncHook]:
    """Refreshing the derived tables (incident attributions, each change's first deployment,
    the daily SLI sums: metrics.derived) when the sync changed what they are made of. The
    check reads a few rows; the refresh (and pandas) is loaded only when it is needed."""
    try:
        freshness = importlib.import_module("metrics.freshness")
        model = importlib.import_module("metrics.model")
    except ImportError:
        return []

    def rebuild_derived_tables(engine: Engine, config: PoiseConfig) -> Any:
        settings = model.Settings.from_config(config)
        with engine.connect() as connection:
            if not freshness.needs_refresh(connection, settings.window_hours):
                return None
        return importlib.import_module("metrics.derived").refresh_derived(engine, settings)

    return [rebuild_derived_tables]


def run_sync(
    engine: Engine,
    config: PoiseConfig,
    *,
    sources: Sequence[str] | None = None,
    full: bool = False,
    registry: dict[str, type[Source]] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    on_checkpoint: Callable[[str, str, Any], None] | None = None,
    hooks: Iterable[PostSyncHook] | None = None,
    checkpoint_every: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SyncSummary:
    """Sync the configured sources (or those named) and return what each did.

    A failing scope is recorded in the sync state with its one-line error and the others
    go on; only a bug-free `BaseException` (Ctrl-C, a kill) stops the run. `should_stop`
    is asked before each scope: once it says yes, the scopes and sources not started yet
    are skipped (a graceful stop finishes the scope under way, so that a source of many
    repositories fits a scheduler's grace period; the post-sync hooks still run).
    `checkpoint_every` replaces every source's own interval (`Source.checkpoint_every`).
    """
    registry = registry if registry is not None else registered_sources()
    if sources:
        unknown = [name for name in sources if name not in registry]
        if unknown:
            raise ConfigError(
                f"--source: unknown source {unknown[0]!r} (known: {', '.join(sorted(registry))})"
            )
    summary = SyncSummary()
    for name, source_class in registry.items():
        if sources and name not in sources:
            continue
        source = source_class(config)
        if should_stop is not None and should_stop():
            summary.stopped = summary.stopped or bool(source.scopes())
            continue
        options = _Options(full, on_progress, on_checkpoint, checkpoint_every, should_stop)
        result = _run_source(engine, config, source, options)
        if result is not None:
            summary.results.append(result)
            summary.stopped = summary.stopped or bool(result.stopped_scopes)
    for hook in post_sync_hooks() if hooks is None else hooks:
        hook_name = getattr(hook, "__name__", "post-sync hook")
        label = hook_name.replace("_", " ")
        if on_progress is not None:
            on_progress(label, 0)
        started = time.perf_counter()
        try:
            done = hook(engine, config)
        except Exception as exc:  # a derived table failing must not hide what was collected
            summary.results.append(
                SourceResult(hook_name, errors=[f"{hook_name}: {_one_line(exc)}"])
            )
            continue
        if done is not None:
            seconds = time.perf_counter() - started
            summary.notes.append(f"{label}: done in {seconds:.1f} s")
    return summary


@dataclass(frozen=True)
class _Options:
    full: bool
    on_progress: Callable[[str, int], None] | None
    on_checkpoint: Callable[[str, str, Any], None] | None
    checkpoint_every: int | None
    should_stop: Callable[[], bool] | None = None

    def stop_requested(self) -> bool:
        return self.should_stop is not None and self.should_stop()


def _run_source(
    engine: Engine, config: PoiseConfig, source: Source, options: _Options
) -> SourceResult | None:
    scopes = source.scopes()
    if not scopes:
        return None
    result = SourceResult(source.name, scopes=len(scopes))
    on_progress = options.on_progress
    advance: Callable[[int], None] = (
        (lambda n: on_progress(source.name, n)) if on_progress else (lambda _n: None)
    )
    try:
        client = source.client()
    except PoiseError as exc:  # no token, no base URL: every scope fails the same way
        error = _one_line(exc)
        result.errors.append(error)
        result.failed_scopes = len(scopes)
        with engine.begin() as connection:  # so Data & sources shows it, as any failure
            for scope in scopes:
                record_attempt(connection, source.name, "*", scope.key, error=error)
        return result
    try:
        for index, scope in enumerate(scopes):
            if index and options.stop_requested():
                _stop_before(scopes[index:], result)
                break
            ctx = SyncContext(
                engine=engine,
                config=config,
                source=source.name,
                full=options.full,
                http=client,
                advance=advance,
                on_checkpoint=options.on_checkpoint,
                checkpoint_every=options.checkpoint_every or source.checkpoint_every,
                feeds_derived=source.feeds_derived,
            )
            error: str | None = None
            stop = False
            try:
                location = source.location(scope)
                if location is not None:
                    ctx.follow(scope, location)
                source.sync_scope(ctx, scope)
                ctx.end_move()  # when the source did not (a source linking no deployments)
            except PoiseError as exc:
                error = _one_line(exc)
                stop = isinstance(exc, SourceError) and exc.source_wide
            except Exception as exc:  # a bug in one collector must not stop the others
                log.debug("%s: %s failed", source.name, scope.key, exc_info=True)
                error = (
                    f"{source.name}: {scope.key}: internal error: {type(exc).__name__}: "
                    f"{_one_line(exc)[:300]} (run with --debug for details, and please report it)"
                )
            if error is not None and client is not None:
                error = client.scrub(error)
            ctx.record_outcomes(scope.key, error)
            totals = ctx.totals()
            result.new += totals.new
            result.updated += totals.updated
            result.unchanged += totals.unchanged
            result.records += sum(outcome.records for outcome in ctx.outcomes.values())
            if error is not None:
                result.errors.append(error)
                result.failed_scopes += 1
            for warning in ctx.warnings:
                result.warnings.append(client.scrub(warning) if client is not None else warning)
            for note in ctx.notes:
                result.notes.append(client.scrub(note) if client is not None else note)
            if stop:  # the source's own failure: the other scopes would fail alike
                _skip_the_rest(engine, source.name, scopes[index + 1 :], error, result)
                break
    finally:
        if client is not None:
            client.close()
    return result


def _skip_the_rest(
    engine: Engine, source: str, rest: list[Scope], error: str, result: SourceResult
) -> None:
    """Record a source-wide failure for the scopes not tried after it, in one more line."""
    if not rest:
        return
    with engine.begin() as connection:  # so Data & sources shows each of them failing
        for scope in rest:
            record_attempt(connection, source, "*", scope.key, error=error)
    result.failed_scopes += len(rest)
    result.errors.append(
        f"{source}: not tried for {len(rest)} more (of {result.scopes}): {_first_names(rest)}, "
        "as the same failure would stop each of them; run `poise sync` again once it is fixed"
    )


def _stop_before(rest: list[Scope], result: SourceResult) -> None:
    """A graceful stop: the scopes not started keep their bookmarks for the next sync."""
    result.stopped_scopes = len(rest)
    result.warnings.append(
        f"{result.name}: stopped before {len(rest)} more (of {result.scopes}): "
        f"{_first_names(rest)}; the next sync reads them"
    )


def _first_names(scopes: list[Scope]) -> str:
    return ", ".join(scope.key for scope in scopes[:3]) + (", …" if len(scopes) > 3 else "")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.split()) if text else type(exc).__name__

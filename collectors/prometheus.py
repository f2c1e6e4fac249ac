"""SLI samples from Prometheus (or Thanos, Mimir, VictoriaMetrics): hourly good and total events.

For every SLO with Prometheus queries (inline `good`/`bad` + `total`, an OpenSLO ratio
metric on a Prometheus-family source, or a Sloth events SLI), each query is turned into
event counts per UTC hour through `/api/v1/query_range` with explicit start, end and step.
How a query's values become events depends on what it returns (docs/slos.md has the
worked details):

- **counter** (`counter: true`): the query selects raw counters. Poise samples it every
  `resolution` seconds (60) and adds up each series' increases, a drop being a counter
  reset (the increase is then the new value, as Prometheus's `increase()` counts it). An
  increase seen by the sample at time t belongs to the hour (t − 1h, t] ends in, so a
  scrape at 10:00:00 counts in the 09:00 bucket. Exact for counters sampled on the step.
- **rate** (the default): the query gives per-second rates (`sum(rate(x[5m]))`). Poise
  samples it every `resolution` seconds and adds `value × resolution` for the samples
  in (H, H + 1h]: the integral of the rate over the hour, sampled once a step.
- **window** (the query has Sloth's `{{.window}}`): `{{.window}}` becomes `1h` and the
  query is read once per hour, at the hour's end. A query with `rate(` or `irate(` gives
  a per-second average over the hour and is multiplied by 3600; any other (`increase`,
  `sum_over_time(...[1h:])`) already gives a count.

NaN and ±Inf samples are skipped and reported; a query with no series is "no data"
(reported, never zeros), except a `bad` query: no error series while there is traffic
means no errors, which is counted as 0 and said so. Requests are cut so that none asks
for more than 11,000 points per series (Prometheus refuses more). Collection is
incremental: each SLO restarts at its last stored hour, which is fetched again because it
may have been partial (the hour before too when a sync runs in the first `LATE` seconds of
an hour, as that hour's last samples may land late). The hour under way is read up to
now, never past it (the look-back would repeat the last value there).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import Connection, func, select

from collectors.base import Scope, Source, SyncContext
from collectors.http import BadPayloadError, HttpClient, HttpResponse, SourceError
from collectors.slo_files import declared_slos
from collectors.slo_spec import WINDOW_TEMPLATE
from poise.config import (
    WINDOW_PLACEHOLDER,
    ServiceConfig,
    SloConfig,
    secret_from_env,
    uses_window,
)
from poise.errors import ConfigError
from poise.timeutil import ensure_utc, from_epoch_seconds, parse_period_bound, utcnow
from poise.warehouse import schema
from poise.warehouse.upsert import UpsertCounts, upsert_rows

log = logging.getLogger("poise.collectors.prometheus")

SOURCE = "prometheus"
STREAM = "sli_samples"
HOUR = 3600
MAX_POINTS = 11_000  # per series and request; Prometheus answers bad_data above it
DEFAULT_RESOLUTION = 60
WINDOW_VALUE = "1h"
PER_SECOND = re.compile(r"\b(?:rate|irate)\s*\(")
QUERY_RANGE = "api/v1/query_range"
LATE = 300  # how late a sample may land (remote write, a slow scrape): an hour is refetched


class Mode(StrEnum):
    COUNTER = "counter"
    RATE = "rate"
    WINDOW = "window"


class PrometheusError(SourceError):
    """Prometheus answered with its error envelope (bad_data, execution, timeout …)."""


# -- what to ask ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SliQuery:
    """One of an SLO's queries and how its values become events."""

    part: str  # good | bad | total
    promql: str
    mode: Mode

    @property
    def sent(self) -> str:
        return WINDOW_PLACEHOLDER.sub(WINDOW_VALUE, self.promql)

    @property
    def per_second(self) -> bool:
        return self.mode is Mode.WINDOW and bool(PER_SECOND.search(self.promql))


@dataclass(frozen=True)
class SliQueries:
    numerator: SliQuery  # good or bad
    total: SliQuery

    @classmethod
    def of(cls, slo: SloConfig) -> SliQueries | None:
        """The SLO's queries, or None when it has none (its SLIs are imported)."""
        part = "good" if slo.good else "bad" if slo.bad else None
        if part is None or not slo.total:
            return None
        promql = slo.good or slo.bad or ""
        return cls(_query(slo, part, promql), _query(slo, "total", slo.total))

    @property
    def fingerprint(self) -> str:
        """Changes when a query or its mode does: stored samples then no longer match."""
        text = json.dumps([[q.part, q.promql, q.mode] for q in (self.numerator, self.total)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _query(slo: SloConfig, part: str, promql: str) -> SliQuery:
    if uses_window(promql):
        if slo.counter:
            raise ConfigError(
                f"SLO {slo.name}: {part}: counter queries select raw counters and cannot use "
                f"{WINDOW_TEMPLATE}"
            )
        return SliQuery(part, promql, Mode.WINDOW)
    return SliQuery(part, promql, Mode.COUNTER if slo.counter else Mode.RATE)


# -- talking to Prometheus ------------------------------------------------------------------


def _error_envelope(body: bytes) -> tuple[str, str] | None:
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    if isinstance(envelope, dict) and envelope.get("status") == "error":
        return str(envelope.get("errorType") or "error"), str(envelope.get("error") or "")
    return None


class PrometheusHttp(HttpClient):
    """The shared HTTP client, reading Prometheus's own error envelope when it sends one."""

    def _failure(self, response: HttpResponse, attempt: int) -> SourceError:
        envelope = _error_envelope(response.body)
        if envelope is None:
            return super()._failure(response, attempt)
        kind, message = envelope
        tries = f" after {attempt} tries" if attempt > 1 else ""
        return PrometheusError(
            f"{self.source}: {kind}: {self.scrub(message)} (HTTP {response.status} from "
            f"{response.url.split('?', 1)[0]}{tries})"
        )


def prometheus_client(
    base_url: str,
    *,
    token: str | None = None,
    token_env: str | None = None,
    tenant: str | None = None,
    timeout: float = 30.0,
    max_retries: int = 5,
    **options: Any,
) -> PrometheusHttp:
    """A client for a Prometheus-compatible API; the bearer token only ever goes in a header.
    `tenant` is the X-Scope-OrgID header multi-tenant back ends (Mimir, Cortex) require."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    return PrometheusHttp(
        SOURCE,
        base_url,
        headers=headers,
        secrets=[token] if token else [],
        token_env=token_env,
        timeout=timeout,
        max_retries=max_retries,
        **options,
    )


@dataclass
class RangeAnswer:
    series: list[tuple[tuple[tuple[str, str], ...], list[tuple[int, float]]]]
    nonfinite: int = 0
    warnings: list[str] = field(default_factory=list)


def query_range(http: HttpClient, query: str, start: int, end: int, step: int) -> RangeAnswer:
    """One `/api/v1/query_range` call; finite samples per series, non-finite ones counted."""
    points = (end - start) // step + 1
    if points > MAX_POINTS:
        raise ValueError(f"{points} points per series exceeds Prometheus's {MAX_POINTS}")
    response = http.get(
        QUERY_RANGE, {"query": query, "start": str(start), "end": str(end), "step": str(step)}
    )
    body = response.json()
    if not isinstance(body, dict) or body.get("status") != "success":
        envelope = _error_envelope(response.body)
        if envelope is not None:  # a proxy or an old server: an error with HTTP 200
            raise PrometheusError(
                f"{SOURCE}: {envelope[0]}: {http.scrub(envelope[1])} (HTTP {response.status} "
                f"from {response.url.split('?', 1)[0]})"
            )
        raise _unexpected(response, "no status: success")
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise _unexpected(response, "no data.result list")
    if data.get("resultType") != "matrix":
        raise _unexpected(response, f"resultType {data.get('resultType')!r}, not matrix")
    warnings = body.get("warnings") or []
    warnings = [warnings] if isinstance(warnings, str) else warnings
    answer = RangeAnswer(series=[], warnings=[str(w) for w in warnings])
    for item in data["result"]:
        if not isinstance(item, dict) or not isinstance(item.get("values", []), list):
            raise _unexpected(response, "a series without values")
        metric = item.get("metric") or {}
        if not isinstance(metric, dict):
            raise _unexpected(response, f"a series whose metric is not an object: {metric!r}")
        labels = tuple(sorted((str(k), str(v)) for k, v in metric.items()))
        samples: list[tuple[int, float]] = []
        for pair in item.get("values", []):
            sample = _sample(pair)
            if sample is None:
                raise _unexpected(response, f"a sample that is not [time, value]: {pair!r}")
            if math.isfinite(sample[1]):
                samples.append(sample)
            else:
                answer.nonfinite += 1
        answer.series.append((labels, samples))
    return answer


def _sample(pair: Any) -> tuple[int, float] | None:
    """[unix seconds, "value"] as (seconds, value); None for anything else."""
    if not isinstance(pair, list) or len(pair) != 2:
        return None
    if any(isinstance(part, bool) or not isinstance(part, str | int | float) for part in pair):
        return None
    try:
        timestamp, value = float(pair[0]), float(pair[1])
    except ValueError:
        return None
    return (round(timestamp), value) if math.isfinite(timestamp) else None


def _unexpected(response: HttpResponse, what: str) -> BadPayloadError:
    return BadPayloadError(
        f"{SOURCE}: unexpected answer from {response.url.split('?', 1)[0]} ({what}): check "
        "that base_url points at a Prometheus-compatible query API"
    )


# -- from samples to hourly events ----------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    start: datetime  # the hour's start, UTC
    good: float
    total: float


@dataclass
class SliStats:
    """What a collection met that the user should hear about (rendered by `notes`)."""

    requests: Counter[str] = field(default_factory=Counter)
    empty: Counter[str] = field(default_factory=Counter)
    nonfinite: Counter[str] = field(default_factory=Counter)
    partial_hours: Counter[str] = field(default_factory=Counter)
    warnings: set[str] = field(default_factory=set)
    hours_without_total: int = 0
    hours_without_good: int = 0
    hours_without_total_but_numerator: int = 0
    bad_counted_as_zero: int = 0
    clipped: int = 0
    buckets: int = 0

    def notes(self) -> list[tuple[int, str]]:
        """(logging level, line) for each thing worth saying."""
        found: list[tuple[int, str]] = []

        def say(condition: object, text: str, level: int = logging.WARNING) -> None:
            if condition:
                found.append((level, text))

        for part, count in self.empty.items():
            say(
                count,
                f"{part} query: no data (no series) in {count} of {self.requests[part]} requests",
            )
        for part, count in self.nonfinite.items():
            say(count, f"{part} query: skipped {count} NaN/Inf samples")
        for part, count in self.partial_hours.items():
            say(
                count, f"{part} query: {count} hours had gaps in their samples and count only those"
            )
        for text in sorted(self.warnings):
            say(True, f"Prometheus warning: {text}")
        say(
            self.hours_without_total,
            f"{self.hours_without_total} hours without data from the total query were left out",
        )
        say(
            self.hours_without_good,
            f"{self.hours_without_good} hours with traffic but no data from the good query were "
            "left out",
        )
        say(
            self.hours_without_total_but_numerator,
            f"{self.hours_without_total_but_numerator} hours with good/bad events but no total "
            "were left out",
        )
        say(self.clipped, f"{self.clipped} hours where good or bad exceeded total were clipped")
        say(
            self.bad_counted_as_zero,
            f"{self.bad_counted_as_zero} hours with traffic and no bad-event series: counted as "
            "0 bad events",
            logging.INFO,
        )
        return found


def hours_per_request(query: SliQuery, resolution: int, max_points: int = MAX_POINTS) -> int:
    """Whole hours one request may cover without exceeding `max_points` per series."""
    if query.mode is Mode.WINDOW:
        return max_points
    per_hour = HOUR // resolution
    extra = per_hour + 1 if query.mode is Mode.COUNTER else 0  # the warm-up hour and baseline
    hours = (max_points - extra) // per_hour
    if hours < 1:
        raise ValueError(f"max_points {max_points} is too small for a resolution of {resolution}s")
    return hours


class HourlyEvents:
    """One query's events per hour, fetched a chunk at a time (counter state carries over)."""

    def __init__(self, http: HttpClient, query: SliQuery, resolution: int, stats: SliStats) -> None:
        self.http = http
        self.query = query
        self.resolution = resolution
        self.stats = stats
        self.last: dict[tuple[tuple[str, str], ...], tuple[int, float]] = {}
        self.started = False

    def fetch(self, start: int, end: int, settled: int) -> dict[int, float]:
        """Events for the hours in [start, end) that had data: {hour start: events}.

        Hours ending after `settled` (the current one) are not yet expected to be whole.
        """
        query, step = self.query, self.resolution
        if query.mode is Mode.WINDOW:
            first, step = start + HOUR, HOUR
        elif query.mode is Mode.COUNTER:
            first = start if self.started else start - HOUR  # a warm-up hour finds the baseline
        else:
            first = start + step
        if query.mode is not Mode.WINDOW:
            # Not past now: Prometheus's look-back repeats the last value for 5 minutes
            # after it, which a rate would count as traffic that has not happened yet.
            end = min(end, settled // step * step)
            if end < first:
                return {}  # not one whole step of the hour yet
        try:
            answer = query_range(self.http, query.sent, first, end, step)
        except PrometheusError as exc:  # about this query: say which of the SLO's it is
            detail = str(exc).removeprefix(f"{SOURCE}: ")
            raise PrometheusError(f"{SOURCE}: {query.part} query: {detail}") from None
        self.started = True
        part = query.part
        self.stats.requests[part] += 1
        if answer.nonfinite:
            self.stats.nonfinite[part] += answer.nonfinite
        if not answer.series:
            self.stats.empty[part] += 1
        self.stats.warnings.update(answer.warnings)
        counts: dict[int, float] = {}
        densest: Counter[int] = Counter()  # the most samples any one series had in an hour
        for labels, points in answer.series:
            samples: Counter[int] = Counter()
            for timestamp, value in points:
                hour = (timestamp - 1) // HOUR * HOUR  # (H, H+1h] -> H
                events = self._events(labels, timestamp, value)
                if events is None or hour < start:
                    continue
                counts[hour] = counts.get(hour, 0.0) + events
                samples[hour] += 1
            for hour, number in samples.items():
                densest[hour] = max(densest[hour], number)
        if query.mode is Mode.RATE:
            expected = HOUR // step
            short = [h for h in counts if densest[h] < expected and h + HOUR <= settled]
            if short:
                self.stats.partial_hours[part] += len(short)
        return counts

    def _events(
        self, labels: tuple[tuple[str, str], ...], timestamp: int, value: float
    ) -> float | None:
        mode = self.query.mode
        if mode is Mode.RATE:
            return value * self.resolution
        if mode is Mode.WINDOW:
            return value * HOUR if self.query.per_second else value
        previous = self.last.get(labels)
        if previous is not None and timestamp <= previous[0]:
            return None  # the chunk boundary's sample, already counted
        self.last[labels] = (timestamp, value)
        if previous is None:
            return None  # a series' first sample is its baseline
        return value - previous[1] if value >= previous[1] else value  # a drop is a reset


def iter_sli_chunks(
    http: HttpClient,
    queries: SliQueries,
    start: datetime,
    end: datetime,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    max_points: int = MAX_POINTS,
    stats: SliStats | None = None,
) -> Iterator[tuple[datetime, list[Bucket]]]:
    """(the hour to start again at, buckets) per chunk of requests, oldest first.

    `start` is rounded down and `end` up to whole hours; each chunk asks Prometheus for
    the numerator and the total over the same hours. The hour to start again at is the
    chunk's last, or the hour `LATE` seconds before `end` if earlier: a sync just after
    an hour ended may not see that hour's last samples yet.
    """
    if resolution < 1 or HOUR % resolution:
        raise ValueError(f"resolution {resolution}s must divide an hour")
    stats = stats if stats is not None else SliStats()
    first = int(ensure_utc(start).timestamp()) // HOUR * HOUR
    settled = int(ensure_utc(end).timestamp())
    last = -(-settled // HOUR) * HOUR
    numerator = HourlyEvents(http, queries.numerator, resolution, stats)
    total = HourlyEvents(http, queries.total, resolution, stats)
    span = HOUR * min(
        hours_per_request(queries.numerator, resolution, max_points),
        hours_per_request(queries.total, resolution, max_points),
    )
    chunk_start = first
    while chunk_start < last:
        chunk_end = min(chunk_start + span, last)
        totals = total.fetch(chunk_start, chunk_end, settled)
        numerators = numerator.fetch(chunk_start, chunk_end, settled)
        buckets = _combine(
            queries.numerator.part, numerators, totals, chunk_start, min(chunk_end, settled), stats
        )
        restart = min(chunk_end - HOUR, (settled - LATE) // HOUR * HOUR)
        yield from_epoch_seconds(restart), buckets
        chunk_start = chunk_end


def _combine(
    part: str,
    numerators: dict[int, float],
    totals: dict[int, float],
    start: int,
    end: int,
    stats: SliStats,
) -> list[Bucket]:
    buckets = []
    whole = range(start, end - HOUR + 1, HOUR)  # an hour still going on is not missing yet
    stats.hours_without_total += sum(1 for hour in whole if hour not in totals)
    stats.hours_without_total_but_numerator += sum(1 for hour in numerators if hour not in totals)
    for hour in sorted(totals):
        total = totals[hour]
        if hour in numerators:
            count = numerators[hour]
        elif part == "bad":
            count = 0.0
            stats.bad_counted_as_zero += total > 0
        else:
            stats.hours_without_good += 1
            continue
        good = count if part == "good" else total - count
        if not 0 <= good <= total:
            stats.clipped += 1
            good = min(max(good, 0.0), total)
        buckets.append(Bucket(from_epoch_seconds(hour), _tidy(good), _tidy(total)))
    stats.buckets += len(buckets)
    return buckets


def _tidy(value: float) -> float:
    """Drop the float noise of rate × seconds (1234.0000000000002 events is 1234)."""
    return round(value, 6) + 0.0


def fetch_sli_buckets(
    http: HttpClient, queries: SliQueries, start: datetime, end: datetime, **options: Any
) -> tuple[list[Bucket], SliStats]:
    """Every bucket in [start, end) with data, and what was met on the way."""
    stats = options.pop("stats", None) or SliStats()
    buckets = [
        bucket
        for _, chunk in iter_sli_chunks(http, queries, start, end, stats=stats, **options)
        for bucket in chunk
    ]
    return buckets, stats


# -- the warehouse --------------------------------------------------------------------------


def sli_rows(slo: str, buckets: list[Bucket]) -> list[dict[str, Any]]:
    return [
        {"slo": slo, "ts": bucket.start, "good": bucket.good, "total": bucket.total}
        for bucket in buckets
    ]


def store_buckets(connection: Connection, slo: str, buckets: list[Bucket]) -> UpsertCounts:
    """Upsert buckets into sli_samples (source prometheus): a re-fetched hour is updated."""
    rows = [{**row, "source": SOURCE} for row in sli_rows(slo, buckets)]
    return upsert_rows(connection, schema.sli_samples, rows)


def last_stored_bucket(connection: Connection, slo: str) -> datetime | None:
    """The latest hour of this SLO that Prometheus filled (fetched again: it may be partial)."""
    table = schema.sli_samples
    query = select(func.max(table.c.ts)).where(table.c.slo == slo, table.c.source == SOURCE)
    return connection.execute(query).scalar()


def first_start(slo: SloConfig, now: datetime, since: str | None) -> datetime:
    """Where a first sync of an SLO starts: `sources.prometheus.since`, else enough history
    for its window (a rolling window's length; a calendar window's previous period)."""
    if since:
        return parse_period_bound(since)
    now = ensure_utc(now)
    if slo.window == "calendar":
        months = 3 if slo.calendar_unit == "quarter" else 1
        index = now.year * 12 + now.month - 1
        index -= index % months + months  # the start of the previous period
        return now.replace(
            year=index // 12, month=index % 12 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
        )
    return now - timedelta(days=slo.window_days)


# -- the collector --------------------------------------------------------------------------


class PrometheusSource(Source):
    """`poise sync` for Prometheus: one scope per SLO that has queries."""

    name = SOURCE
    resolution: ClassVar[int] = DEFAULT_RESOLUTION
    max_points: ClassVar[int] = MAX_POINTS

    @staticmethod
    def now() -> datetime:
        return utcnow()

    def scopes(self) -> list[Scope]:
        found = []
        for declared in declared_slos(self.config).slos:
            slo = declared.slo
            if slo.datasource not in (None, SOURCE) or SliQueries.of(slo) is None:
                continue
            service = self.config.service(slo.service) or ServiceConfig.model_construct(
                name=slo.service, team=""
            )
            found.append(Scope(slo.name, service, slo))
        return found

    def client(self) -> HttpClient | None:
        settings = self.settings
        if not settings.base_url:
            raise ConfigError(
                f"sources.{SOURCE}.base_url: required to collect SLIs (the URL of Prometheus, "
                "Thanos Query, Mimir's /prometheus or VictoriaMetrics)"
            )
        token = secret_from_env(settings.token_env, what=f"sources.{SOURCE}.token_env")
        return prometheus_client(
            settings.base_url,
            token=token,
            token_env=settings.token_env,
            tenant=getattr(settings, "tenant", None),
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
        )

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        slo: SloConfig = scope.location
        queries = SliQueries.of(slo)
        assert queries is not None and ctx.http is not None
        now = self.now()
        bookmark = ctx.bookmark(STREAM, scope.key)
        start = self._start(ctx, slo, queries, bookmark, now)
        stats = SliStats()
        try:
            for last_hour, buckets in iter_sli_chunks(
                ctx.http,
                queries,
                start,
                now,
                resolution=self.resolution,
                max_points=self.max_points,
                stats=stats,
            ):
                ctx.write_rows(
                    STREAM,
                    scope.key,
                    {"sli_samples": sli_rows(slo.name, buckets)},
                    records=len(buckets),
                    bookmark={"hour": last_hour.isoformat(), "queries": queries.fingerprint},
                    final=True,
                )
        except SourceError as exc:
            detail = str(exc).removeprefix(f"{SOURCE}: ")
            raise SourceError(f"{SOURCE}: SLO {slo.name}: {detail}") from None
        finally:
            for level, note in stats.notes():
                ctx.log.log(level, "%s: SLO %s: %s", SOURCE, slo.name, note)

    def _start(
        self, ctx: SyncContext, slo: SloConfig, queries: SliQueries, bookmark: Any, now: datetime
    ) -> datetime:
        if isinstance(bookmark, dict) and bookmark.get("queries") == queries.fingerprint:
            return datetime.fromisoformat(bookmark["hour"])
        if bookmark is not None:
            ctx.warn(
                f"{SOURCE}: SLO {slo.name}: its queries changed since the last sync; "
                "fetched its history again"
            )
        elif not ctx.full:
            with ctx.engine.connect() as connection:
                stored = last_stored_bucket(connection, slo.name)
            if stored is not None:
                return stored
        return first_start(slo, now, self.settings.since)

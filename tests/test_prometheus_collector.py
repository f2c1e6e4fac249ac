"""Hourly good/total events from Prometheus, checked against known data.

The first half runs a real Prometheus (Debian's `prometheus`, see tests/promserver.py)
over a backfilled history of counters with a reset, a scrape gap and a NaN sample, and
checks every collected bucket against what the history adds up to. The second half uses
a loopback server replaying Prometheus's answers for what a healthy server will not do on
demand: errors, garbage, throttling, and the request sizes of long ranges.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from promserver import HOUR, CounterHistory, PrometheusServer, prometheus_major_version
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine, select

from collectors.prometheus import (
    MAX_POINTS,
    Bucket,
    PrometheusError,
    PrometheusSource,
    SliQueries,
    SliStats,
    fetch_sli_buckets,
    first_start,
    prometheus_client,
)
from collectors.runner import run_sync
from poise.catalog import apply_config
from poise.cli import main
from poise.config import PoiseConfig, SloConfig, parse_config
from poise.errors import ConfigError
from poise.timeutil import from_epoch_seconds
from poise.warehouse import open_warehouse, schema
from poise.warehouse.sync_state import read_state

TOKEN = "prom-T0ken-never-stored-9f2c"
GOOD = 'poise_requests_total{code="200"}'


# -- the real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def history() -> CounterHistory:
    return CounterHistory.generate(end=int(time.time()) // HOUR * HOUR)


@pytest.fixture(scope="module")
def prometheus(
    history: CounterHistory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    with PrometheusServer(history.openmetrics(), tmp_path_factory.mktemp("prometheus")) as server:
        yield server


def slo(**queries: Any) -> SloConfig:
    return SloConfig(name="checkout-availability", service="checkout", target=0.99, **queries)


def collect(server_url: str, history: CounterHistory, definition: SloConfig, **options: Any):
    queries = SliQueries.of(definition)
    assert queries is not None
    client = prometheus_client(server_url, max_retries=0)
    start, end = from_epoch_seconds(history.start), from_epoch_seconds(history.end)
    return fetch_sli_buckets(client, queries, start, end, **options)


def as_table(buckets: list[Bucket]) -> dict[int, tuple[float, float]]:
    return {int(bucket.start.timestamp()): (bucket.good, bucket.total) for bucket in buckets}


def expected(history: CounterHistory, good: dict[int, float]) -> dict[int, tuple[float, float]]:
    return {hour: (good[hour], history.total[hour]) for hour in history.hours()}


def test_counters_give_exact_hourly_events_through_a_reset_and_a_gap(
    prometheus: PrometheusServer, history: CounterHistory
) -> None:
    definition = slo(good=GOOD, total="poise_requests_total", counter=True)
    buckets, stats = collect(prometheus.base_url, history, definition)
    assert as_table(buckets) == expected(history, history.good)
    assert len(buckets) == 30
    assert stats.notes() == []
    reset_hour = (history.reset_at - 1) // HOUR * HOUR
    assert as_table(buckets)[reset_hour][0] == history.good[reset_hour] > 0


def test_chunked_requests_give_the_same_buckets(
    prometheus: PrometheusServer, history: CounterHistory
) -> None:
    definition = slo(good=GOOD, total="poise_requests_total", counter=True)
    buckets, stats = collect(prometheus.base_url, history, definition, max_points=200)
    assert as_table(buckets) == expected(history, history.good)
    # (200 − 61) // 60 = 2 hours a request: 15 requests for 30 hours, per query.
    assert stats.requests == {"good": 15, "total": 15}


def test_rates_are_integrated_and_a_nan_sample_is_skipped_and_reported(
    prometheus: PrometheusServer, history: CounterHistory
) -> None:
    definition = slo(good="poise_good_per_second", total="poise_total_per_second")
    buckets, stats = collect(prometheus.base_url, history, definition)
    assert as_table(buckets) == expected(history, history.rate_good)
    nan_hour = (history.nan_at - 1) // HOUR * HOUR
    assert history.rate_good[nan_hour] < history.good[nan_hour]
    assert dict(stats.nonfinite) == {"good": 1}
    assert (logging.WARNING, "good query: skipped 1 NaN/Inf samples") in stats.notes()


def test_sloth_window_queries_read_one_value_an_hour(
    prometheus: PrometheusServer, history: CounterHistory
) -> None:
    definition = slo(
        bad='sum(rate(poise_requests_total{code="500"}[{{.window}}]))',
        total="sum(rate(poise_requests_total[{{.window}}]))",
    )
    buckets, stats = collect(prometheus.base_url, history, definition)
    want = expected(history, history.good)
    if prometheus_major_version(prometheus.prometheus) < 3:
        # Prometheus 2 reads [t − 1h, t] inclusive: rate × 3600 is the exact increase.
        assert as_table(buckets) == want
    else:  # Prometheus 3 reads (t − 1h, t] and extrapolates the first minute.
        for hour, (good, total) in as_table(buckets).items():
            assert total == pytest.approx(want[hour][1], rel=0.03)
            assert good == pytest.approx(want[hour][0], rel=0.03)
    assert stats.requests == {"bad": 1, "total": 1}


def test_a_query_without_series_is_no_data_not_zeros(
    prometheus: PrometheusServer, history: CounterHistory
) -> None:
    definition = slo(
        good='poise_requests_total{code="200"}', total="poise_missing_total", counter=True
    )
    buckets, stats = collect(prometheus.base_url, history, definition)
    assert buckets == []
    notes = [text for _, text in stats.notes()]
    assert "total query: no data (no series) in 1 of 1 requests" in notes
    assert "30 hours without data from the total query were left out" in notes


def test_a_missing_bad_series_counts_as_no_errors_and_says_so(
    prometheus: PrometheusServer, history: CounterHistory
) -> None:
    definition = slo(
        bad='poise_requests_total{code="503"}', total="poise_requests_total", counter=True
    )
    buckets, stats = collect(prometheus.base_url, history, definition)
    assert as_table(buckets) == {h: (history.total[h], history.total[h]) for h in history.hours()}
    assert (
        logging.INFO,
        "30 hours with traffic and no bad-event series: counted as 0 bad events",
    ) in stats.notes()


def test_bad_promql_is_one_line_with_prometheus_own_error(
    prometheus: PrometheusServer, history: CounterHistory
) -> None:
    definition = slo(good="sum(poise_requests_total", total="poise_requests_total")
    with pytest.raises(PrometheusError) as caught:
        collect(prometheus.base_url, history, definition)
    message = str(caught.value)
    assert message.startswith("prometheus: good query: bad_data: ")
    assert "parse error" in message
    assert message.endswith(f"(HTTP 400 from {prometheus.base_url}/api/v1/query_range)")
    assert "\n" not in message


def source_with_clock(moment: datetime, **settings: Any) -> type[PrometheusSource]:
    class FixedClock(PrometheusSource):
        @staticmethod
        def now() -> datetime:
            return moment

    for key, value in settings.items():
        setattr(FixedClock, key, value)
    return FixedClock


def prometheus_config(
    tmp_path: Path, base_url: str, slos: list[dict[str, Any]], **source: Any
) -> PoiseConfig:
    return parse_config(
        {
            "teams": [{"name": "shop"}],
            "services": [{"name": "checkout", "team": "shop"}, {"name": "search", "team": "shop"}],
            "sources": {"prometheus": {"base_url": base_url, "max_retries": 0, **source}},
            "slos": slos,
        },
        origin="poise.yaml",
        base_dir=tmp_path,
    )


def stored(engine: Engine, name: str) -> dict[int, tuple[float, float]]:
    table = schema.sli_samples
    with engine.connect() as connection:
        rows = connection.execute(select(table).where(table.c.slo == name)).mappings().all()
    assert {row["source"] for row in rows} <= {"prometheus"}
    return {int(row["ts"].timestamp()): (row["good"], row["total"]) for row in rows}


def test_poise_sync_stores_buckets_and_the_next_sync_only_refetches_from_the_last_hour(
    prometheus: PrometheusServer, history: CounterHistory, warehouse: Engine, tmp_path: Path
) -> None:
    sloth = tmp_path / "sloth.yaml"
    sloth.write_text(
        "version: prometheus/v1\nservice: search\nslos:\n  - name: requests\n    objective: 99.5\n"
        "    sli:\n      events:\n"
        '        error_query: sum(rate(poise_requests_total{code="500"}[{{.window}}]))\n'
        "        total_query: sum(rate(poise_requests_total[{{.window}}]))\n",
        encoding="utf-8",
    )
    config = prometheus_config(
        tmp_path,
        prometheus.base_url,
        [
            {
                "name": "checkout-ok",
                "service": "checkout",
                "target": 0.99,
                "window_days": 1,
                "good": GOOD,
                "total": "poise_requests_total",
                "counter": True,
            },
            {"name": "checkout-untracked", "service": "checkout", "target": 0.9},
            {"file": "sloth.yaml"},
        ],
        since=from_epoch_seconds(history.start).isoformat(),
    )
    apply_config(warehouse, config)
    midway = from_epoch_seconds(history.end - 10 * HOUR)
    first = run_sync(
        warehouse, config, registry={"prometheus": source_with_clock(midway)}, hooks=[]
    )
    assert not first.failed
    result = first.result("prometheus")
    assert result.scopes == 2  # an SLO without queries is not Prometheus's to fill
    assert (result.new, result.updated) == (2 * 20, 0)
    assert stored(warehouse, "checkout-ok") == {
        hour: value
        for hour, value in expected(history, history.good).items()
        if hour < history.end - 10 * HOUR
    }
    with warehouse.connect() as connection:
        state = read_state(connection, "prometheus", "sli_samples", "checkout-ok")
    assert state.bookmark["hour"] == from_epoch_seconds(history.end - 11 * HOUR).isoformat()
    assert state.last_error is None

    end = from_epoch_seconds(history.end)
    second = run_sync(warehouse, config, registry={"prometheus": source_with_clock(end)}, hooks=[])
    again = second.result("prometheus")
    # Only the last stored hour is fetched again (unchanged), then the 10 new ones.
    assert (again.new, again.updated, again.unchanged) == (2 * 10, 0, 2 * 1)
    assert stored(warehouse, "checkout-ok") == expected(history, history.good)
    assert stored(warehouse, "search-requests") == expected(history, history.good)


def test_poise_sync_command_collects_prometheus_slis(
    prometheus: PrometheusServer,
    history: CounterHistory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`poise sync --source prometheus` end to end, on the real clock."""
    config = tmp_path / "poise.yaml"
    config.write_text(
        "teams: [{name: shop}]\n"
        "services: [{name: checkout, team: shop}]\n"
        f"sources: {{prometheus: {{base_url: '{prometheus.base_url}', "
        f"since: '{from_epoch_seconds(history.start).isoformat()}'}}}}\n"
        "slos:\n"
        "  - {name: checkout-ok, service: checkout, target: 0.99, counter: true,\n"
        f"     good: '{GOOD}', total: poise_requests_total}}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    assert main(["sync", "--config", str(config), "--db", url, "--source", "prometheus"]) == 0
    assert "prometheus" in capsys.readouterr().out
    engine = open_warehouse(url)
    try:
        found = stored(engine, "checkout-ok")
    finally:
        engine.dispose()
    # The history ends where the current hour starts: Prometheus's 5-minute look-back
    # repeats the last values into it, which is no increase (0 of 0), not a gap.
    assert found.pop(history.end, (0.0, 0.0)) == (0.0, 0.0)
    assert found == expected(history, history.good)


# -- replayed answers ---------------------------------------------------------------------


def matrix(series: list[tuple[dict[str, str], list[tuple[float, str]]]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": labels, "values": [[ts, value] for ts, value in values]}
                for labels, values in series
            ],
        },
    }


def counter_answer(request: RecordedRequest) -> Reply:
    """A counter growing 10 per step (600 an hour at a 60 s step), for any query_range."""
    start, end, step = (int(request.query[k]) for k in ("start", "end", "step"))
    values = [(t, str(10 * t // step)) for t in range(start, end + 1, step)]
    return Reply(200, matrix([({"job": "api"}, values)]))


END = datetime.fromisoformat("2026-06-30T00:00:00+00:00")
DAY = 24 * HOUR
COARSE = 300  # a 5-minute resolution keeps the replayed fault tests light
PER_HOUR = 10 * HOUR // COARSE  # what counter_answer adds up to in an hour at COARSE


def coarse() -> type[PrometheusSource]:
    return source_with_clock(END, resolution=COARSE)


def replay_config(tmp_path: Path, server: ReplayServer, **source: Any) -> PoiseConfig:
    return prometheus_config(
        tmp_path,
        server.base_url,
        [
            {
                "name": "checkout-ok",
                "service": "checkout",
                "target": 0.99,
                "window_days": 30,
                "good": "api_ok_total",
                "total": "api_total",
                "counter": True,
            },
            {
                "name": "search-ok",
                "service": "search",
                "target": 0.99,
                "window_days": 2,
                "good": "search_ok_total",
                "total": "search_total",
                "counter": True,
            },
        ],
        **source,
    )


def test_a_month_of_counters_is_cut_into_requests_under_11000_points(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path
) -> None:
    replay_server.add_handler("/api/v1/query_range", counter_answer)
    config = replay_config(tmp_path, replay_server)
    apply_config(warehouse, config)
    summary = run_sync(warehouse, config, registry={"prometheus": source_with_clock(END)}, hooks=[])
    assert not summary.failed
    checkout = [
        r for r in replay_server.requests if r.query["query"] in ("api_ok_total", "api_total")
    ]
    spans = [(int(r.query["start"]), int(r.query["end"]), int(r.query["step"])) for r in checkout]
    assert all(step == 60 for _, _, step in spans)
    assert all((end - start) // step + 1 <= MAX_POINTS for start, end, step in spans)
    first_hour = int(END.timestamp()) - 30 * DAY
    # 720 hours, 182 a request (plus a warm-up hour before the first): 4 requests per query.
    bounds = [
        first_hour - HOUR,
        first_hour + 182 * HOUR,
        first_hour + 364 * HOUR,
        first_hour + 546 * HOUR,
    ]
    ends = [
        first_hour + 182 * HOUR,
        first_hour + 364 * HOUR,
        first_hour + 546 * HOUR,
        int(END.timestamp()),
    ]
    assert [(s, e) for s, e, _ in spans][::2] == list(zip(bounds, ends, strict=True))
    assert max((end - start) // step + 1 for start, end, step in spans) == 10981
    assert stored(warehouse, "checkout-ok") == {
        first_hour + i * HOUR: (600.0, 600.0) for i in range(720)
    }


def test_bad_data_on_one_slo_is_one_line_and_the_others_go_on(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path
) -> None:
    error = {
        "status": "error",
        "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:9: parse error: unexpected "}"',
    }
    replay_server.add("/api/v1/query_range", Reply(400, error), query={"query": "api_total"})
    replay_server.add_handler("/api/v1/query_range", counter_answer)
    config = replay_config(tmp_path, replay_server)
    apply_config(warehouse, config)
    summary = run_sync(warehouse, config, registry={"prometheus": coarse()}, hooks=[])
    (line,) = summary.result("prometheus").errors
    assert line == (
        'prometheus: SLO checkout-ok: total query: bad_data: invalid parameter "query": 1:9: '
        "parse error: "
        f'unexpected "}}" (HTTP 400 from {replay_server.base_url}/api/v1/query_range)'
    )
    assert stored(warehouse, "checkout-ok") == {}
    assert len(stored(warehouse, "search-ok")) == 48
    with warehouse.connect() as connection:
        failed = read_state(connection, "prometheus", "sli_samples", "checkout-ok")
    assert failed.bookmark is None and failed.last_error == line


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            Reply(
                200, b"<html><body>Sign in to continue</body></html>", {"Content-Type": "text/html"}
            ),
            "malformed response from {url}/api/v1/query_range?query=api_total&start=",
        ),
        (
            Reply(200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
            "unexpected answer from {url}/api/v1/query_range (resultType 'vector', not matrix): "
            "check that base_url points at a Prometheus-compatible query API",
        ),
        (
            Reply(503, b"Service Unavailable", {"Content-Type": "text/plain"}),
            "HTTP 503 from {url}/api/v1/query_range?query=api_total&start=",
        ),
        (
            Reply(
                503,
                {
                    "status": "error",
                    "errorType": "timeout",
                    "error": "query timed out in expression evaluation",
                },
            ),
            "timeout: query timed out in expression evaluation (HTTP 503 from {url}/api/v1/query_range)",
        ),
        (
            Reply(429, b"Too Many Requests", {"Retry-After": "3600", "Content-Type": "text/plain"}),
            "still rate limited (HTTP 429) at {url}/api/v1/query_range?query=api_total&start=",
        ),
    ],
    ids=["html", "wrong-shape", "down", "timeout", "throttled"],
)
def test_a_failing_source_mid_way_keeps_what_was_stored_and_the_bookmark(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path, reply: Reply, message: str
) -> None:
    calls = {"n": 0}

    def flaky(request: RecordedRequest) -> Reply:
        calls["n"] += 1
        return reply if calls["n"] > 4 else counter_answer(request)  # two chunks, then trouble

    replay_server.add_handler("/api/v1/query_range", flaky)
    config = replay_config(tmp_path, replay_server)
    apply_config(warehouse, config)
    source = source_with_clock(END, resolution=COARSE, max_points=13 + 12 * 24 * 5)  # 5 days
    summary = run_sync(warehouse, config, registry={"prometheus": source}, hooks=[])
    errors = summary.result("prometheus").errors
    assert len(errors) == 2  # both SLOs met the fault, each said so in one line
    assert errors[0].startswith("prometheus: SLO checkout-ok: ")
    assert message.format(url=replay_server.base_url) in errors[0]
    assert all("\n" not in line for line in errors)
    first_hour = int(END.timestamp()) - 30 * DAY
    kept = stored(warehouse, "checkout-ok")
    assert sorted(kept) == [first_hour + i * HOUR for i in range(2 * 5 * 24)]
    with warehouse.connect() as connection:
        state = read_state(connection, "prometheus", "sli_samples", "checkout-ok")
    assert state.bookmark["hour"] == from_epoch_seconds(first_hour + 239 * HOUR).isoformat()
    assert state.last_error == errors[0]

    # The source recovers: the next sync resumes at the bookmark and fills the rest.
    replay_server.routes.clear()
    replay_server.add_handler("/api/v1/query_range", counter_answer)
    before = len(replay_server.requests)
    run_sync(warehouse, config, registry={"prometheus": source}, hooks=[])
    resumed = replay_server.requests[before]
    assert int(resumed.query["start"]) == first_hour + 238 * HOUR  # the bookmark hour − warm-up
    assert stored(warehouse, "checkout-ok") == {
        first_hour + i * HOUR: (PER_HOUR, PER_HOUR) for i in range(720)
    }


def test_a_transient_503_is_retried(replay_server: ReplayServer) -> None:
    replay_server.add("/api/v1/query_range", Reply(503, b"busy"), Reply(200, matrix([])))
    client = prometheus_client(replay_server.base_url, max_retries=2, sleep=lambda _s: None)
    definition = slo(good="a_total", total="b_total", counter=True)
    queries = SliQueries.of(definition)
    assert queries is not None
    buckets, stats = fetch_sli_buckets(client, queries, END, END.replace(hour=1))
    assert buckets == [] and stats.empty["total"] == 1
    assert len(replay_server.requests) == 3  # 503, then 200 for total, then good


def test_the_bearer_token_is_sent_and_never_stored_or_logged(
    replay_server: ReplayServer,
    warehouse: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TEST_PROMETHEUS_TOKEN", TOKEN)
    denied = {
        "status": "error",
        "errorType": "bad_data",
        "error": f"token {TOKEN} has no access to tenant",
    }
    replay_server.add("/api/v1/query_range", Reply(400, denied), query={"query": "search_total"})
    replay_server.add_handler("/api/v1/query_range", counter_answer)
    config = replay_config(tmp_path, replay_server, token_env="TEST_PROMETHEUS_TOKEN")
    apply_config(warehouse, config)
    with caplog.at_level(logging.DEBUG):
        summary = run_sync(warehouse, config, registry={"prometheus": coarse()}, hooks=[])
    assert all(r.header("Authorization") == f"Bearer {TOKEN}" for r in replay_server.requests)
    (line,) = summary.result("prometheus").errors
    assert "token *** has no access" in line and TOKEN not in line
    assert TOKEN not in caplog.text
    with warehouse.connect() as connection:
        for table in schema.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                assert TOKEN not in json.dumps([str(value) for value in row])


def test_an_error_sent_with_http_200_names_where_and_hides_the_token(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some proxies and old servers answer a failed query with HTTP 200 and the error
    envelope: the line says where it came from, and the token echoed in it is hidden."""
    monkeypatch.setenv("TEST_PROMETHEUS_TOKEN", TOKEN)
    denied = {"status": "error", "errorType": "bad_data", "error": f"token {TOKEN} denied"}
    replay_server.add("/api/v1/query_range", Reply(200, denied), query={"query": "search_total"})
    replay_server.add_handler("/api/v1/query_range", counter_answer)
    config = replay_config(tmp_path, replay_server, token_env="TEST_PROMETHEUS_TOKEN")
    apply_config(warehouse, config)
    summary = run_sync(warehouse, config, registry={"prometheus": coarse()}, hooks=[])
    (line,) = summary.result("prometheus").errors
    assert "bad_data: token *** denied (HTTP 200 from http://127.0.0.1:" in line, line
    assert line.split("(HTTP 200 from ", 1)[1].startswith(replay_server.base_url)
    assert TOKEN not in line


def test_a_token_variable_that_is_not_set_is_one_line(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_PROMETHEUS_TOKEN", raising=False)
    config = replay_config(tmp_path, replay_server, token_env="TEST_PROMETHEUS_TOKEN")
    apply_config(warehouse, config)
    summary = run_sync(warehouse, config, registry={"prometheus": source_with_clock(END)}, hooks=[])
    assert summary.result("prometheus").errors == [
        "sources.prometheus.token_env: environment variable TEST_PROMETHEUS_TOKEN is not set"
    ]
    assert replay_server.requests == []


def test_changed_queries_fetch_the_history_again(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path
) -> None:
    replay_server.add_handler("/api/v1/query_range", counter_answer)
    config = replay_config(tmp_path, replay_server)
    apply_config(warehouse, config)
    run_sync(warehouse, config, registry={"prometheus": coarse()}, hooks=[])
    changed = replay_config(tmp_path, replay_server)
    slos = [
        s.model_copy(update={"total": "search_requests_total"}) if s.name == "search-ok" else s
        for s in changed.slos
    ]
    changed = changed.model_copy(update={"slos": slos})
    before = len(replay_server.requests)
    summary = run_sync(warehouse, changed, registry={"prometheus": coarse()}, hooks=[])
    search = [
        r for r in replay_server.requests[before:] if r.query["query"] == "search_requests_total"
    ]
    assert int(search[0].query["start"]) == int(END.timestamp()) - 2 * DAY - HOUR
    assert summary.result("prometheus").warnings == [
        "prometheus: SLO search-ok: its queries changed since the last sync; fetched its "
        "history again"
    ]


def test_stats_notes_are_one_line_each() -> None:
    stats = SliStats()
    stats.empty["good"] += 1
    stats.requests["good"] += 2
    stats.clipped = 3
    assert [text for _, text in stats.notes()] == [
        "good query: no data (no series) in 1 of 2 requests",
        "3 hours where good or bad exceeded total were clipped",
    ]


def test_a_base_url_with_a_path_prefix_is_kept(replay_server: ReplayServer) -> None:
    """Mimir answers under /prometheus, VictoriaMetrics cluster under /select/0/prometheus."""
    replay_server.add_handler("/select/0/prometheus/api/v1/query_range", counter_answer)
    client = prometheus_client(f"{replay_server.base_url}/select/0/prometheus", max_retries=0)
    queries = SliQueries.of(slo(good="a_total", total="b_total", counter=True))
    assert queries is not None
    buckets, _ = fetch_sli_buckets(client, queries, END, END.replace(hour=3))
    assert [(b.start.hour, b.good, b.total) for b in buckets] == [
        (0, 600.0, 600.0),
        (1, 600.0, 600.0),
        (2, 600.0, 600.0),
    ]


@pytest.mark.parametrize(
    ("definition", "since", "start"),
    [
        ({"window_days": 28}, None, "2026-05-12T13:20:00+00:00"),
        ({"window": "calendar", "calendar_unit": "month"}, None, "2026-05-01T00:00:00+00:00"),
        ({"window": "calendar", "calendar_unit": "quarter"}, None, "2026-01-01T00:00:00+00:00"),
        ({"window_days": 28}, "2025-01-01", "2025-01-01T00:00:00+00:00"),
    ],
)
def test_where_a_first_sync_starts(
    definition: dict[str, Any], since: str | None, start: str
) -> None:
    now = datetime.fromisoformat("2026-06-09T13:20:00+00:00")
    assert first_start(slo(**definition), now, since) == datetime.fromisoformat(start)


def test_counter_queries_cannot_use_the_sloth_window() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "slos": [
                    {
                        "name": "x",
                        "service": "s",
                        "target": 0.9,
                        "counter": True,
                        "bad": "sum(rate(e[{{.window}}]))",
                        "total": "sum(rate(t[{{.window}}]))",
                    }
                ]
            }
        )
    assert str(caught.value) == (
        "poise.yaml: slos[0].counter: counter queries select raw counters and cannot use "
        "{{.window}}"
    )


def test_a_tenant_goes_in_x_scope_orgid_for_mimir(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path
) -> None:
    replay_server.add_handler("/api/v1/query_range", counter_answer)
    config = replay_config(tmp_path, replay_server, tenant="team-sre")
    apply_config(warehouse, config)
    summary = run_sync(warehouse, config, registry={"prometheus": coarse()}, hooks=[])
    assert not summary.result("prometheus").errors
    assert replay_server.requests
    assert {r.header("X-Scope-OrgID") for r in replay_server.requests} == {"team-sre"}


def test_without_a_tenant_no_x_scope_orgid_is_sent(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path
) -> None:
    replay_server.add_handler("/api/v1/query_range", counter_answer)
    config = replay_config(tmp_path, replay_server)
    apply_config(warehouse, config)
    run_sync(warehouse, config, registry={"prometheus": coarse()}, hooks=[])
    assert {r.header("X-Scope-OrgID") for r in replay_server.requests} == {None}

"""A probe of SLI collection from Prometheus as a demanding SRE would use it.

A real Prometheus (tests/promserver.py) over a backfilled history of hand-made series:
rates that stop mid-hour, histogram buckets with a reset, counters that reset exactly on
request boundaries, series that appear and vanish; and a loopback server replaying
Prometheus's answers for what a real server will not do on demand (values "+Inf",
blocking a request so a `poise sync` subprocess can be killed half-way).
Every expected figure is computed by hand from the samples written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from promserver import HOUR, MINUTE, PrometheusServer
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import Engine, select

from collectors.prometheus import (
    PrometheusSource,
    SliQueries,
    fetch_sli_buckets,
    prometheus_client,
)
from collectors.runner import run_sync
from poise.catalog import apply_config
from poise.cli import main
from poise.config import PoiseConfig, SloConfig, parse_config
from poise.timeutil import from_epoch_seconds
from poise.warehouse import open_warehouse, schema

Samples = list[tuple[int, float]]


# -- a history written by hand ------------------------------------------------------------


class History:
    """Series (name, labels) → samples, written as OpenMetrics for `promtool`."""

    def __init__(self) -> None:
        self.families: dict[str, str] = {}
        self.series: dict[tuple[str, str], Samples] = {}

    def add(self, family: str, kind: str, name: str, labels: str, samples: Samples) -> None:
        self.families.setdefault(family, kind)
        self.series[(name, labels)] = samples

    def openmetrics(self) -> str:
        lines = []
        for family, kind in self.families.items():
            lines.append(f"# TYPE {family} {kind}")
            for (name, labels), samples in self.series.items():
                if name.startswith(family):
                    lines += [f"{name}{labels} {value!r} {t}" for t, value in samples]
        return "\n".join([*lines, "# EOF"]) + "\n"


def increases(samples: Samples) -> dict[int, float]:
    """A counter's increase per hour, a drop being a reset: what Poise's contract says."""
    hours: dict[int, float] = defaultdict(float)
    for (_, before), (t, value) in pairwise(samples):
        hours[(t - 1) // HOUR * HOUR] += value - before if value >= before else value
    return hours


NOW_HOUR = int(time.time()) // HOUR * HOUR
H0 = NOW_HOUR - 12 * HOUR  # the history's first hour
MID = H0 + 5 * HOUR + 30 * MINUTE  # where the rate gauge stops: a clock half-way in an hour
LATENCY_RESET = H0 + 3 * HOUR + 17 * MINUTE
CHUNK_RESET = H0 + 4 * HOUR  # a reset on the hour, where 2-hour requests meet


def build_history() -> tuple[History, dict[str, dict[int, float]]]:
    history = History()
    expected: dict[str, dict[int, float]] = {}
    # A rate (events per second) of exactly 1, until MID.
    history.add(
        "probe_rate", "gauge", "probe_rate", "", [(t, 1.0) for t in range(H0, MID + 1, MINUTE)]
    )
    # A latency histogram scraped every minute: 50 requests a minute, of which those under
    # 300 ms vary; all its series reset together once (a restart).
    fast_samples, all_samples = [], []
    fast = every = 0.0
    for t in range(H0, NOW_HOUR + 1, MINUTE):
        if t == LATENCY_RESET:
            fast = every = 0.0
        if t > H0:
            fast += 40 + (t // MINUTE) % 9
            every += 50
        fast_samples.append((t, fast))
        all_samples.append((t, every))
    history.add("probe_latency", "histogram", "probe_latency_bucket", '{le="0.3"}', fast_samples)
    history.add("probe_latency", "histogram", "probe_latency_bucket", '{le="+Inf"}', all_samples)
    history.add("probe_latency", "histogram", "probe_latency_count", "", all_samples)
    history.add("probe_latency", "histogram", "probe_latency_sum", "", all_samples)
    expected["latency_good"] = increases(fast_samples)
    expected["latency_total"] = increases(all_samples)
    # Request counters: pod "a" resets exactly on CHUNK_RESET; pod "b" appears mid-history
    # and vanishes; pod "c" is not scraped for 40 minutes (longer than the 5 m look-back).
    pods: dict[str, Samples] = {"a": [], "b": [], "c": []}
    a = b = 0.0
    c = 500.0
    for t in range(H0, NOW_HOUR + 1, MINUTE):
        a = 7.0 if t == CHUNK_RESET else a + 11
        pods["a"].append((t, a))
        if H0 + 2 * HOUR + 10 * MINUTE <= t < H0 + 7 * HOUR:
            pods["b"].append((t, b))
            b += 5
        c += 3
        if not H0 + 8 * HOUR <= t < H0 + 8 * HOUR + 40 * MINUTE:
            pods["c"].append((t, c))
    total: dict[int, float] = defaultdict(float)
    for pod, samples in pods.items():
        history.add(
            "probe_requests", "counter", "probe_requests_total", f'{{pod="{pod}"}}', samples
        )
        for hour, value in increases(samples).items():
            total[hour] += value
    expected["requests"] = total
    return history, expected


@pytest.fixture(scope="module")
def built() -> tuple[History, dict[str, dict[int, float]]]:
    return build_history()


@pytest.fixture(scope="module")
def prometheus(
    built: tuple[History, dict[str, dict[int, float]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    with PrometheusServer(built[0].openmetrics(), tmp_path_factory.mktemp("probe")) as server:
        yield server


def definition(**queries: Any) -> SliQueries:
    queries = SliQueries.of(SloConfig(name="probe", service="checkout", target=0.99, **queries))
    assert queries is not None
    return queries


def table(buckets: list[Any]) -> dict[int, tuple[float, float]]:
    return {int(b.start.timestamp()): (b.good, b.total) for b in buckets}


# -- rates: no events from the future -------------------------------------------------------


def test_the_current_hour_of_a_rate_counts_no_events_past_now(
    prometheus: PrometheusServer,
) -> None:
    """At MID (half-way through an hour) a rate of 1/s has made 1,800 events in that hour.
    Prometheus's 5-minute look-back repeats the last value at instants after now, which
    must not count as 5 more minutes of traffic."""
    client = prometheus_client(prometheus.base_url, max_retries=0)
    queries = definition(good="probe_rate", total="probe_rate")
    buckets, stats = fetch_sli_buckets(
        client, queries, from_epoch_seconds(H0), from_epoch_seconds(MID)
    )
    current = MID // HOUR * HOUR
    assert table(buckets) == {
        **{hour: (3600.0, 3600.0) for hour in range(H0, current, HOUR)},
        current: (1800.0, 1800.0),
    }
    assert stats.notes() == []


def test_a_sync_on_the_hour_asks_nothing_of_an_hour_not_begun(
    replay_server: ReplayServer,
) -> None:
    """A sync a few seconds into an hour has no whole step of it yet: no request reaches
    past now, and the hour that just began is not reported as missing data."""
    replay_server.add_handler("/api/v1/query_range", _steady_rate)
    client = prometheus_client(replay_server.base_url, max_retries=0)
    queries = definition(good="ok_rate", total="all_rate")
    start = datetime.fromisoformat("2026-06-30T00:00:00+00:00")
    now = datetime.fromisoformat("2026-06-30T03:00:20+00:00")
    buckets, stats = fetch_sli_buckets(client, queries, start, now)
    assert [(b.start.hour, b.good, b.total) for b in buckets] == [
        (0, 3600.0, 3600.0),
        (1, 3600.0, 3600.0),
        (2, 3600.0, 3600.0),
    ]
    assert all(int(r.query["end"]) <= int(now.timestamp()) for r in replay_server.requests)
    assert stats.notes() == []


def _steady_rate(request: RecordedRequest) -> Reply:
    start, end, step = (int(request.query[k]) for k in ("start", "end", "step"))
    values = [[t, "1"] for t in range(start, end + 1, step)]
    return Reply(
        200,
        {
            "status": "success",
            "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
        },
    )


# -- counters: histogram buckets, resets on request boundaries ------------------------------


def test_latency_from_histogram_buckets_is_exact_through_a_restart(
    prometheus: PrometheusServer, built: tuple[History, dict[str, dict[int, float]]]
) -> None:
    """good = requests under 300 ms (`le="0.3"`), total = `_count`: every bucket of the
    histogram restarts at once, and each hour is still the sum of its increases."""
    expected = built[1]
    client = prometheus_client(prometheus.base_url, max_retries=0)
    queries = definition(
        good='probe_latency_bucket{le="0.3"}', total="probe_latency_count", counter=True
    )
    buckets, stats = fetch_sli_buckets(
        client, queries, from_epoch_seconds(H0), from_epoch_seconds(NOW_HOUR)
    )
    assert table(buckets) == {
        hour: (expected["latency_good"][hour], expected["latency_total"][hour])
        for hour in range(H0, NOW_HOUR, HOUR)
    }
    reset_hour = LATENCY_RESET // HOUR * HOUR
    assert table(buckets)[reset_hour][1] == 50 * 60  # the restart lost no request
    assert stats.notes() == []


@pytest.mark.parametrize(
    ("resolution", "max_points"),
    [(60, 11_000), (60, 2 * 60 + 61), (15, 11_000), (15, 2 * 240 + 241), (15, 240 + 241)],
    ids=["60s", "60s-2h-requests", "15s", "15s-2h-requests", "15s-1h-requests"],
)
def test_counters_are_exact_across_request_boundaries(
    prometheus: PrometheusServer,
    built: tuple[History, dict[str, dict[int, float]]],
    resolution: int,
    max_points: int,
) -> None:
    """Pod a resets exactly where two requests meet (and on the hour), pod b appears and
    vanishes, pod c is stale for 40 minutes: the sample on a boundary counts once."""
    client = prometheus_client(prometheus.base_url, max_retries=0)
    queries = definition(good="probe_requests_total", total="probe_requests_total", counter=True)
    buckets, _ = fetch_sli_buckets(
        client,
        queries,
        from_epoch_seconds(H0),
        from_epoch_seconds(NOW_HOUR),
        resolution=resolution,
        max_points=max_points,
    )
    want = built[1]["requests"]
    assert table(buckets) == {hour: (want[hour], want[hour]) for hour in range(H0, NOW_HOUR, HOUR)}


def test_a_step_that_skips_scrapes_counts_the_same_in_one_request_or_many(
    prometheus: PrometheusServer,
) -> None:
    """At 90 s a 60 s scrape is sometimes skipped; however the range is cut, each step's
    increase still lands once."""
    client = prometheus_client(prometheus.base_url, max_retries=0)
    queries = definition(good="probe_requests_total", total="probe_requests_total", counter=True)
    span = from_epoch_seconds(H0), from_epoch_seconds(NOW_HOUR)
    whole, _ = fetch_sli_buckets(client, queries, *span, resolution=90)
    cut, stats = fetch_sli_buckets(client, queries, *span, resolution=90, max_points=40 + 41)
    assert stats.requests["total"] == 12
    assert table(cut) == table(whole)
    assert len(whole) == 12
    with pytest.raises(ValueError, match="resolution 7s must divide an hour"):
        fetch_sli_buckets(client, queries, *span, resolution=7)


# -- incremental syncs ----------------------------------------------------------------------


def source_at(moment: datetime) -> type[PrometheusSource]:
    class FixedClock(PrometheusSource):
        @staticmethod
        def now() -> datetime:
            return moment

    return FixedClock


def probe_config(tmp_path: Path, base_url: str, **source: Any) -> PoiseConfig:
    return parse_config(
        {
            "teams": [{"name": "shop"}],
            "services": [{"name": "checkout", "team": "shop"}],
            "sources": {"prometheus": {"base_url": base_url, "max_retries": 0, **source}},
            "slos": [
                {
                    "name": "checkout-requests",
                    "service": "checkout",
                    "target": 0.99,
                    "window_days": 1,
                    "bad": 'probe_requests_total{pod="b"}',
                    "total": "probe_requests_total",
                    "counter": True,
                },
                {
                    "name": "checkout-latency",
                    "service": "checkout",
                    "target": 0.9,
                    "window_days": 1,
                    "good": 'sum(rate(probe_latency_bucket{le="0.3"}[5m]))',
                    "total": "sum(rate(probe_latency_count[5m]))",
                },
                {
                    "name": "checkout-rate",
                    "service": "checkout",
                    "target": 0.99,
                    "window_days": 1,
                    "good": "probe_rate",
                    "total": "probe_rate",
                },
            ],
        },
        origin="poise.yaml",
        base_dir=tmp_path,
    )


def stored_rows(engine: Engine) -> dict[tuple[str, int], tuple[float, float]]:
    table_ = schema.sli_samples
    with engine.connect() as connection:
        rows = connection.execute(select(table_)).mappings().all()
    assert {row["source"] for row in rows} <= {"prometheus"}
    return {(r["slo"], int(r["ts"].timestamp())): (r["good"], r["total"]) for r in rows}


def test_a_second_sync_adds_nothing(
    prometheus: PrometheusServer, warehouse: Engine, tmp_path: Path
) -> None:
    config = probe_config(tmp_path, prometheus.base_url, since=from_epoch_seconds(H0).isoformat())
    apply_config(warehouse, config)
    registry = {"prometheus": source_at(from_epoch_seconds(MID))}
    first = run_sync(warehouse, config, registry=registry, hooks=[])
    assert not first.failed, first.result("prometheus").errors
    rows = stored_rows(warehouse)
    assert rows[("checkout-rate", MID // HOUR * HOUR)] == (1800.0, 1800.0)
    second = run_sync(warehouse, config, registry=registry, hooks=[]).result("prometheus")
    assert (second.new, second.updated, second.unchanged) == (0, 0, 3)  # the last hour of each
    assert stored_rows(warehouse) == rows


def _counter_until(last: int) -> Any:
    """A counter growing 10 a minute, with no samples after `last` (a replay handler)."""

    def answer(request: RecordedRequest) -> Reply:
        start, end, step = (int(request.query[k]) for k in ("start", "end", "step"))
        values = [[t, str(10 * t // MINUTE)] for t in range(start, min(end, last) + 1, step)]
        result = [{"metric": {"job": "api"}, "values": values}] if values else []
        return Reply(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})

    return answer


def counter_slo_config(base_url: str, since: int) -> dict[str, Any]:
    """One service with one SLO of raw counters, read from `since` (epoch seconds)."""
    return {
        "teams": [{"name": "shop"}],
        "services": [{"name": "checkout", "team": "shop"}],
        "sources": {
            "prometheus": {
                "base_url": base_url,
                "max_retries": 0,
                "since": from_epoch_seconds(since).isoformat(),
            }
        },
        "slos": [
            {
                "name": "checkout-ok",
                "service": "checkout",
                "target": 0.99,
                "good": "api_ok_total",
                "total": "api_total",
                "counter": True,
            }
        ],
    }


def _sync_command(tmp_path: Path, base_url: str, since: int) -> list[str]:
    config = tmp_path / "poise.yaml"
    config.write_text(json.dumps(counter_slo_config(base_url, since)), encoding="utf-8")
    return [sys.executable, "-m", "poise.cli", "sync", "--config", str(config)]


def _env() -> dict[str, str]:
    env = dict(os.environ, COLUMNS="200")
    env.pop("POISE_DATABASE_URL", None)
    env.pop("POISE_CONFIG", None)
    return env


def test_a_killed_sync_resumes_to_exactly_the_rows_of_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    """`poise sync` is SIGKILLed while waiting for its fourth request (the second chunk's
    good query, after the first chunk was stored); run again, it ends with the very rows
    an uninterrupted sync stores."""
    last = NOW_HOUR - 2 * HOUR
    since = last - 20 * 24 * HOUR  # 480 hours: three requests of 182 hours per query
    handler = _counter_until(last)
    waiting, release = threading.Event(), threading.Event()
    calls = {"n": 0}

    def blocking(request: RecordedRequest) -> Reply:
        calls["n"] += 1
        if calls["n"] == 4:
            waiting.set()
            release.wait(30)
        return handler(request)

    with ReplayServer() as server:
        server.add_handler("/api/v1/query_range", blocking)
        killed_dir = tmp_path / "killed"
        killed_dir.mkdir()
        command = _sync_command(killed_dir, server.base_url, since)
        url = f"sqlite:///{killed_dir / 'poise.db'}"
        process = subprocess.Popen(
            [*command, "--db", url],
            cwd=killed_dir,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert waiting.wait(60), "the sync never reached its fourth request"
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            release.set()
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        engine = open_warehouse(url)
        try:
            partial = stored_rows(engine)
        finally:
            engine.dispose()
        assert len(partial) == 182  # the first chunk, committed with its bookmark
        rerun = subprocess.run(
            [*command, "--db", url], cwd=killed_dir, env=_env(), capture_output=True, text=True
        )
        assert rerun.returncode == 0, rerun.stderr

        whole_dir = tmp_path / "whole"
        whole_dir.mkdir()
        whole_command = _sync_command(whole_dir, server.base_url, since)
        whole_url = f"sqlite:///{whole_dir / 'poise.db'}"
        whole = subprocess.run(
            [*whole_command, "--db", whole_url],
            cwd=whole_dir,
            env=_env(),
            capture_output=True,
            text=True,
        )
        assert whole.returncode == 0, whole.stderr

    engines = [open_warehouse(url), open_warehouse(whole_url)]
    try:
        resumed, uninterrupted = (stored_rows(engine) for engine in engines)
    finally:
        for engine in engines:
            engine.dispose()
    assert resumed == uninterrupted
    assert sorted(hour for _, hour in uninterrupted) == list(range(since, last, HOUR))
    assert set(uninterrupted.values()) == {(600.0, 600.0)}


# -- faults ---------------------------------------------------------------------------------


def test_a_promql_syntax_error_is_one_line_naming_the_slo_and_its_query(
    prometheus: PrometheusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "poise.yaml"
    config.write_text(
        "teams: [{name: shop}]\n"
        "services: [{name: checkout, team: shop}]\n"
        f"sources: {{prometheus: {{base_url: '{prometheus.base_url}', max_retries: 0, "
        f"since: '{from_epoch_seconds(NOW_HOUR - 3 * HOUR).isoformat()}'}}}}\n"
        "slos:\n"
        "  - {name: checkout-ok, service: checkout, target: 0.99,\n"
        "     good: 'sum(rate(probe_latency_bucket{le=\"0.3\"}[5m]))',\n"
        "     total: 'sum(rate(probe_latency_count[5m])'}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    assert main(["sync", "--config", str(config), "--db", url, "--source", "prometheus"]) == 1
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if "bad_data" in line]
    assert len(lines) == 1, out
    assert "prometheus: SLO checkout-ok: total query: bad_data: " in lines[0]
    assert "parse error" in lines[0]
    assert "Traceback" not in out.err


def test_nan_and_inf_strings_are_skipped_and_a_counter_goes_on_from_its_last_finite_value(
    replay_server: ReplayServer,
) -> None:
    """Prometheus sends values as strings: "NaN", "+Inf", "-Inf" are skipped (and
    counted); the increase after them is taken from the last finite value."""
    base = 1_782_777_600  # 2026-06-30T00:00:00Z
    good = [(base, "10"), (base + 60, "20"), (base + 120, "+Inf"), (base + 180, "25")]
    good += [(base + 240, "NaN"), (base + 300, "-Inf"), (base + 360, "30")]
    total = [(t, str(100 + (t - base) // 60 * 10)) for t in range(base, base + 361, 60)]
    for query, values in (("ok_total", good), ("all_total", total)):
        replay_server.add(
            "/api/v1/query_range",
            Reply(
                200,
                {
                    "status": "success",
                    "data": {
                        "resultType": "matrix",
                        "result": [
                            {"metric": {"__name__": query}, "values": [[t, v] for t, v in values]}
                        ],
                    },
                },
            ),
            query={"query": query},
        )
    client = prometheus_client(replay_server.base_url, max_retries=0)
    queries = definition(good="ok_total", total="all_total", counter=True)
    span = from_epoch_seconds(base), from_epoch_seconds(base + HOUR)
    buckets, stats = fetch_sli_buckets(client, queries, *span)
    assert table(buckets) == {base: (20.0, 60.0)}
    assert [text for _, text in stats.notes()] == ["good query: skipped 3 NaN/Inf samples"]


# -- from what was collected to the figures -------------------------------------------------


def test_attainment_budget_and_burn_rates_match_a_hand_computation(
    prometheus: PrometheusServer,
    built: tuple[History, dict[str, dict[int, float]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Collected with `poise sync`, evaluated with `poise metrics` at NOW_HOUR: Σ over the
    buckets in [to − window, to), to the contract's letter."""
    requests = built[1]["requests"]
    bad_hours = increases(built[0].series[("probe_requests_total", '{pod="b"}')])
    config = tmp_path / "poise.yaml"
    config.write_text(
        "teams: [{name: shop}]\n"
        "services: [{name: checkout, team: shop}]\n"
        f"sources: {{prometheus: {{base_url: '{prometheus.base_url}', max_retries: 0, "
        f"since: '{from_epoch_seconds(H0).isoformat()}'}}}}\n"
        "slos:\n"
        "  - {name: rolling, service: checkout, target: 0.95, window_days: 1, counter: true,\n"
        "     bad: 'probe_requests_total{pod=\"b\"}', total: probe_requests_total}\n"
        "  - {name: monthly, service: checkout, target: 0.95, window: calendar,\n"
        "     calendar_unit: month, counter: true,\n"
        "     bad: 'probe_requests_total{pod=\"b\"}', total: probe_requests_total}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    common = ["--config", str(config), "--db", url]
    assert main(["sync", *common, "--source", "prometheus"]) == 0
    capsys.readouterr()
    to = from_epoch_seconds(NOW_HOUR)
    period = ["--from", from_epoch_seconds(H0).date().isoformat(), "--to", to.isoformat()]
    assert main(["metrics", *common, *period, "--format", "json"]) == 0
    figures = {slo["name"]: slo for slo in json.loads(capsys.readouterr().out)["slos"]}

    def hand(first: int) -> dict[str, Any]:
        hours = range(max(first, H0), NOW_HOUR, HOUR)
        total = sum(requests[h] for h in hours)
        bad = sum(bad_hours.get(h, 0.0) for h in hours)

        def burn(length: int) -> float:
            window = range(NOW_HOUR - length * HOUR, NOW_HOUR, HOUR)
            t, b = sum(requests[h] for h in window), sum(bad_hours.get(h, 0.0) for h in window)
            return (b / t) / (1 - 0.95)

        return {
            "sli": (total - bad) / total,
            "budget_remaining": 1 - bad / ((1 - 0.95) * total),
            "burn_rate": {f"{n}h": burn(n) for n in (1, 6, 24, 72)},
        }

    month_start = int(datetime(to.year, to.month, 1, tzinfo=to.tzinfo).timestamp())
    if month_start == NOW_HOUR:  # `to` on the 1st at midnight reports the month before
        month_start = int(from_epoch_seconds(NOW_HOUR - 1).replace(day=1, hour=0).timestamp())
    for name, first in (("rolling", NOW_HOUR - 24 * HOUR), ("monthly", month_start)):
        want, got = hand(first), figures[name]
        assert got["sli"] == pytest.approx(want["sli"], rel=1e-12), name
        assert got["budget_remaining"] == pytest.approx(want["budget_remaining"], rel=1e-9), name
        assert got["burn_rate"] == pytest.approx(want["burn_rate"], rel=1e-9), name
    assert figures["rolling"]["burn_rate"]["1h"] == 0.0  # pod b is gone by then


def test_a_sample_ingested_late_at_the_end_of_an_hour_is_not_lost(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path
) -> None:
    """A sync at 11:00:05 does not see the 11:00:00 scrape yet (ingestion lags a few
    seconds; remote write, a slow exporter). The next sync must still count the last
    minute of 10:00–11:00 once the sample has arrived."""
    day = 1_782_777_600  # 2026-06-30T00:00:00Z
    ingested = {"until": 0}

    def lagging(request: RecordedRequest) -> Reply:
        start, end, step = (int(request.query[k]) for k in ("start", "end", "step"))
        values = []
        for t in range(start, end + 1, step):
            scrape = min(t, ingested["until"]) // MINUTE * MINUTE  # the look-back's pick
            if t - scrape <= 300:
                values.append([t, str(10 * (scrape - day) // MINUTE)])
        return Reply(
            200,
            {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [{"metric": {"job": "api"}, "values": values}],
                },
            },
        )

    replay_server.add_handler("/api/v1/query_range", lagging)
    config = parse_config(
        counter_slo_config(replay_server.base_url, day + 8 * HOUR),
        origin="poise.yaml",
        base_dir=tmp_path,
    )
    apply_config(warehouse, config)
    ingested["until"] = day + 10 * HOUR + 59 * MINUTE
    early = {"prometheus": source_at(from_epoch_seconds(day + 11 * HOUR + 5))}
    assert not run_sync(warehouse, config, registry=early, hooks=[]).failed
    assert stored_rows(warehouse)[("checkout-ok", day + 10 * HOUR)] == (590.0, 590.0)
    ingested["until"] = day + 11 * HOUR + 30 * MINUTE
    later = {"prometheus": source_at(from_epoch_seconds(day + 11 * HOUR + 30 * MINUTE))}
    assert not run_sync(warehouse, config, registry=later, hooks=[]).failed
    rows = stored_rows(warehouse)
    assert rows[("checkout-ok", day + 10 * HOUR)] == (600.0, 600.0)
    assert rows[("checkout-ok", day + 11 * HOUR)] == (300.0, 300.0)


def _matrix(result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (_matrix([{"metric": {}, "values": [{"t": 1}]}]), "a sample that is not [time, value]"),
        (_matrix([{"metric": {}, "values": ["12"]}]), "a sample that is not [time, value]"),
        (
            _matrix([{"metric": {}, "values": [[1, "2", "3"]]}]),
            "a sample that is not [time, value]",
        ),
        (_matrix([{"metric": {}, "values": [["Infinity", "1"]]}]), "a sample that is not"),
        (_matrix([{"metric": {}, "values": [[1782777660, True]]}]), "a sample that is not"),
        (_matrix([{"metric": ["code"], "values": []}]), "a series whose metric is not an object"),
        (_matrix([{"metric": "code", "values": []}]), "a series whose metric is not an object"),
    ],
    ids=["dict", "string", "triple", "infinite-time", "boolean", "metric-list", "metric-string"],
)
def test_a_garbled_matrix_is_one_line_not_an_internal_error(
    replay_server: ReplayServer, warehouse: Engine, tmp_path: Path, body: Any, what: str
) -> None:
    replay_server.add("/api/v1/query_range", Reply(200, body))
    config = probe_config(tmp_path, replay_server.base_url)
    apply_config(warehouse, config)
    moment = from_epoch_seconds(1_782_777_600 + 2 * HOUR)
    summary = run_sync(warehouse, config, registry={"prometheus": source_at(moment)}, hooks=[])
    errors = summary.result("prometheus").errors
    assert len(errors) == 3  # one line per SLO
    for line in errors:
        assert "internal error" not in line, line
        assert f"unexpected answer from {replay_server.base_url}/api/v1/query_range ({what}" in line


def test_a_warnings_string_is_one_warning(replay_server: ReplayServer) -> None:
    body = {**_matrix([]), "warnings": "results may be partial"}
    replay_server.add("/api/v1/query_range", Reply(200, body))
    client = prometheus_client(replay_server.base_url, max_retries=0)
    queries = definition(good="a_total", total="b_total", counter=True)
    start = from_epoch_seconds(1_782_777_600)
    _, stats = fetch_sli_buckets(client, queries, start, from_epoch_seconds(1_782_777_600 + HOUR))
    assert stats.warnings == {"results may be partial"}

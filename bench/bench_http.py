"""HTTP collection speed and memory against the loopback replay server.

The bars (issue #4): at least 2,000 items per second through the framework (request,
JSON, convert, raw payload, upsert, checkpoint), with peak memory independent of the
length of the history.

A GitHub-Deployments-shaped list (100 items a page, `Link` headers with the
`/repositories/{id}/…` form) is served by tests/replay.py in this process (pages are
rendered before the clock starts, so the server costs little); each size is
collected by a fresh `python bench/bench_http.py --worker` process into a fresh SQLite
warehouse through `run_sync`: once timed, once under tracemalloc for the peak of the
Python heap (the memory bar). Peak RSS is printed too; it also holds SQLite's page
cache and the allocator's slack, and varies from run to run. A declared `Stream` like the
ones the GitHub collector uses does the work, so this measures the framework itself.

    python bench/bench_http.py [--sizes 5000 40000]

Exit status 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from replay import RecordedRequest, ReplayServer, Reply  # noqa: E402

from collectors.base import Scope, Source, Stream  # noqa: E402
from collectors.runner import run_sync  # noqa: E402
from poise.catalog import apply_config  # noqa: E402
from poise.config import parse_config  # noqa: E402
from poise.timeutil import parse_timestamp  # noqa: E402
from poise.warehouse import open_warehouse  # noqa: E402

PAGE = 100
HEAP_SLACK_MB = 2.0


def deployment(number: int) -> dict[str, Any]:
    day, minute = divmod(number, 1440)
    return {
        "url": f"https://api.github.com/repos/acme/svc/deployments/{number}",
        "id": 1_400_000_000 + number,
        "sha": f"{number:040x}",
        "ref": "main",
        "task": "deploy",
        "payload": {},
        "original_environment": "production",
        "environment": "production",
        "description": None,
        "creator": None if number % 50 == 0 else {"login": "github-actions[bot]", "id": 41898282},
        "created_at": f"2020-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{minute // 60:02d}:{minute % 60:02d}:00Z",
        "updated_at": f"2020-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{minute // 60:02d}:{minute % 60:02d}:30Z",
        "statuses_url": f"https://api.github.com/repos/acme/svc/deployments/{number}/statuses",
        "repository_url": "https://api.github.com/repos/acme/svc",
        "transient_environment": False,
        "production_environment": True,
        "performed_via_github_app": None,
    }


def deployment_rows(record: dict[str, Any], scope: Scope) -> dict[str, list[dict[str, Any]]]:
    return {
        "deployments": [
            {
                "id": f"github:{scope.key}:deployment:{record['id']}",
                "source_id": str(record["id"]),
                "service": scope.key,
                "environment": record["environment"],
                "status": "success",
                "deployed_at": parse_timestamp(record["updated_at"]),
                "sha": record["sha"],
            }
        ]
    }


class BenchSource(Source):
    name = "github"
    streams = (
        Stream(
            "deployments",
            "/repos/{repo}/deployments",
            deployment_rows,
            cursor_field="created_at",
            page_size=PAGE,
        ),
    )


def serve(server: ReplayServer, size: int) -> None:
    """Pages rendered before the clock starts, so the server is not what is measured."""
    pages: dict[int, Reply] = {}
    for number in range(1, max(1, -(-size // PAGE)) + 1):
        start = (number - 1) * PAGE
        items = [deployment(n) for n in range(start, min(start + PAGE, size))]
        headers = {"ETag": f'W/"{number}"'}
        if start + PAGE < size:
            headers["Link"] = server.link(
                next=f"/repositories/77/deployments?per_page={PAGE}&page={number + 1}"
            )
        pages[number] = Reply(200, json.dumps(items).encode(), headers)

    def page(request: RecordedRequest) -> Reply:
        return pages[int(request.query.get("page", "1"))]

    server.add_handler("/repos/acme/svc/deployments", page)
    server.add_handler("/repositories/77/deployments", page)


def worker(base_url: str, database: str, trace: bool) -> None:
    config = parse_config(
        {
            "teams": [{"name": "bench"}],
            "services": [{"name": "svc", "team": "bench", "github": {"repo": "acme/svc"}}],
            "sources": {"github": {"base_url": base_url}},
        }
    )
    engine = open_warehouse(database)
    apply_config(engine, config)
    if trace:
        tracemalloc.start()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    summary = run_sync(engine, config, registry={"github": BenchSource}, hooks=[])
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    result = summary.result("github")
    report = {
        "items": result.records,
        "errors": result.errors,
        "seconds": seconds,
        "cpu": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime,
        "peak_rss_mb": after.ru_maxrss / 1024,
        "peak_heap_mb": tracemalloc.get_traced_memory()[1] / 1e6 if trace else None,
    }
    print(json.dumps(report))


def collect(size: int, trace: bool) -> dict[str, Any]:
    """One collection of `size` items by a fresh worker process."""
    with (
        ReplayServer() as server,
        tempfile.TemporaryDirectory(prefix="poise-bench-http-") as folder,
    ):
        serve(server, size)
        database = f"sqlite:///{Path(folder) / 'bench.db'}"
        command = [sys.executable, __file__, "--worker", server.base_url, database]
        done = subprocess.run(
            [*command, *(["--trace"] if trace else [])], capture_output=True, text=True, check=True
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"] or result["items"] != size:
        raise SystemExit(f"{size:,} items: failed: {result}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 40_000])
    parser.add_argument(
        "--worker", nargs=2, metavar=("BASE_URL", "DATABASE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.trace)
        return 0
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rates, heaps = [], []
    for size in args.sizes:
        timed = collect(size, trace=False)
        traced = collect(size, trace=True)  # tracemalloc slows it: a run of its own
        rate = timed["items"] / timed["seconds"]
        rates.append(rate)
        heaps.append(traced["peak_heap_mb"])
        print(
            f"{size:>8,} items  {timed['seconds']:6.2f} s  {rate:7,.0f} items/s (bar ≥ 2,000)  "
            f"collector CPU {timed['cpu']:5.2f} s ({timed['items'] / timed['cpu']:,.0f}/CPU-s)  "
            f"peak Python heap {traced['peak_heap_mb']:5.1f} MB  peak RSS {timed['peak_rss_mb']:5.1f} MB"
        )
    growth = heaps[-1] - heaps[0]
    print(
        f"peak Python heap grows {growth:+.2f} MB from {args.sizes[0]:,} to {args.sizes[-1]:,} "
        f"items (bar: independent of history length, within {HEAP_SLACK_MB:.0f} MB)"
    )
    ok = all(rate >= 2_000 for rate in rates) and growth <= HEAP_SLACK_MB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

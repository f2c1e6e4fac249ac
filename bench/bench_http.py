"""HTTP collection speed and memory against the loopback replay server.

The bars (issue #4): at least 2,000 items per second through the framework (request,
JSON, convert, raw payload, upsert, checkpoint), with peak memory independent of the
length of the history.

A GitHub-Deployments-shaped list (100 items a page, `Link` headers with the
`/repositories/{id}/…` form) is served by tests/replay.py in this process; each size is
collected by a fresh `python bench/bench_http.py --worker` process into a fresh SQLite
warehouse through `run_sync`, so its peak RSS is its own. A declared `Stream` like the
ones the GitHub collector uses does the work, so this measures the framework itself.

    python bench/bench_http.py [--sizes 5000 40000]

Exit status 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
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
MEMORY_SLACK_MB = 16.0


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
    """Pages generated on demand: the server holds no history in memory either."""

    def page(request: RecordedRequest) -> Reply:
        number = int(request.query.get("page", "1"))
        start = (number - 1) * PAGE
        items = [deployment(n) for n in range(start, min(start + PAGE, size))]
        headers = {"ETag": f'W/"{number}"'}
        if start + PAGE < size:
            headers["Link"] = server.link(
                next=f"/repositories/77/deployments?per_page={PAGE}&page={number + 1}"
            )
        return Reply(200, json.dumps(items).encode(), headers)

    server.add_handler("/repos/acme/svc/deployments", page)
    server.add_handler("/repositories/77/deployments", page)


def worker(base_url: str, database: str) -> None:
    config = parse_config(
        {
            "teams": [{"name": "bench"}],
            "services": [{"name": "svc", "team": "bench", "github": {"repo": "acme/svc"}}],
            "sources": {"github": {"base_url": base_url}},
        }
    )
    engine = open_warehouse(database)
    apply_config(engine, config)
    started = time.perf_counter()
    summary = run_sync(engine, config, registry={"github": BenchSource}, hooks=[])
    seconds = time.perf_counter() - started
    result = summary.result("github")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "items": result.records,
                "seconds": seconds,
                "peak_mb": peak_mb,
                "errors": result.errors,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 40_000])
    parser.add_argument(
        "--worker", nargs=2, metavar=("BASE_URL", "DATABASE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    results = []
    for size in args.sizes:
        with (
            ReplayServer() as server,
            tempfile.TemporaryDirectory(prefix="poise-bench-http-") as folder,
        ):
            serve(server, size)
            database = f"sqlite:///{Path(folder) / 'bench.db'}"
            done = subprocess.run(
                [sys.executable, __file__, "--worker", server.base_url, database],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result["errors"] or result["items"] != size:
                print(f"{size:,} items: failed: {result}")
                return 1
            rate = result["items"] / result["seconds"]
            results.append((size, rate, result["peak_mb"]))
            print(
                f"{size:>8,} items  {result['seconds']:7.2f} s  {rate:8,.0f} items/s (bar ≥ 2,000)"
                f"  peak RSS {result['peak_mb']:6.1f} MB"
            )
    growth = results[-1][2] - results[0][2]
    print(
        f"peak RSS grows {growth:+.1f} MB from {results[0][0]:,} to {results[-1][0]:,} items "
        f"(bar: independent of history length, within {MEMORY_SLACK_MB:.0f} MB)"
    )
    ok = all(rate >= 2_000 for _, rate, _ in results) and growth <= MEMORY_SLACK_MB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The GitHub collector end to end against a loopback server that generates GitHub-shaped pages.

The bars (issue #4): HTTP collection at 2,000 items per second or more, and peak memory
independent of the length of the history. Two histories are collected by the real
`GitHubSource` through `run_sync` into a fresh SQLite file, in a fresh worker process:

- **runs**: the deploy workflow's runs, 100 a page, listed in `created` windows under the
  1,000-result cap (the collector splits the years of history itself); every run is a
  `ci_runs` row, and one in 50 (a push to main) is a deployment whose shipped commits are
  asked of the compare API;
- **pulls**: merged pull requests, 100 a page, each completed by its two detail requests
  (first commit, reviews), four at a time: GitHub's API shape, not the collector, sets
  that pace.

Baseline, in the same run: a worker with bare `requests` GETting exactly the URLs the
collector fetched (taken from the server's log), one after the other, reading each body
and storing nothing. The server runs in this process and generates every page from
arithmetic on demand, so it holds no history either. Each size is collected twice: once
timed, once under tracemalloc for the peak of the Python heap.

    python bench/bench_github.py [--runs 5000 40000] [--pulls 1000 4000]

Exit status 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import github_shapes as gh  # noqa: E402
from replay import RecordedRequest, ReplayServer, Reply  # noqa: E402

REPO, REPO_ID, WORKFLOW = "acme/svc", 77, 1903133
T0 = datetime(2020, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)
RESULT_CAP = 1000
DEPLOY_EVERY = 50
ITEMS_BAR = 2_000
HEAP_SLACK_MB = 2.0


def run_template() -> str:
    run = gh.run(
        0,
        created_at="@CREATED@",
        updated_at="@UPDATED@",
        head_sha="@SHA@",
        event="@EVENT@",
        conclusion="@CONCLUSION@",
        workflow_id=WORKFLOW,
    )
    run.update(id="@ID@", run_number="@NUMBER@", check_suite_id="@ID@", node_id="WFR_@ID@")
    for key in ("url", "html_url"):
        run[key] = run[key].replace("/runs/0", "/runs/@ID@")
    return json.dumps(run)


def pull_template() -> str:
    pull = gh.pull(
        1,
        created_at="@CREATED@",
        updated_at="@UPDATED@",
        merged_at="@UPDATED@",
        merge_commit_sha="@SHA@",
    )
    pull.update(number="@NUMBER@", id="@NUMBER@", title="Change number @NUMBER@")
    for key in ("url", "html_url"):
        pull[key] = pull[key].replace("/1", "/@NUMBER@")
    return json.dumps(pull)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


RUN_TEMPLATE = run_template()
PULL_TEMPLATE = pull_template()


class GeneratedGitHub(ReplayServer):
    """Answers from arithmetic: run i was created at T0 + i·STEP, pull request n updated then."""

    def __init__(self, kind: str, size: int) -> None:
        super().__init__()
        self.kind, self.size = kind, size
        self.urls: list[str] = []
        self.routes_by_pattern = [
            (re.compile(rf"^/repos/{REPO}$"), self.repository),
            (re.compile(rf"^/repos/{REPO}/actions/workflows$"), self.workflows),
            (
                re.compile(
                    rf"^/(repos/{REPO}|repositories/{REPO_ID})/actions/workflows/{WORKFLOW}/runs$"
                ),
                self.runs,
            ),
            (re.compile(rf"^/repos/{REPO}/compare/(\w+)\.\.\.(\w+)$"), self.compare),
            (re.compile(rf"^/(repos/{REPO}|repositories/{REPO_ID})/pulls$"), self.pulls),
            (re.compile(rf"^/repos/{REPO}/pulls/(\d+)/commits$"), self.pull_commits),
            (re.compile(rf"^/repos/{REPO}/pulls/(\d+)/reviews$"), self.reviews),
            (re.compile(rf"^/repos/{REPO}/deployments$"), lambda request, match: Reply(200, [])),
        ]

    def _answer(self, request: RecordedRequest) -> Reply:
        query = urlencode(request.query, safe=".:,")
        self.urls.append(request.path + ("?" + query if query else ""))
        for pattern, answer in self.routes_by_pattern:
            match = pattern.match(request.path)
            if match:
                return answer(request, match)
        return Reply(404, gh.REPO and {"message": "Not Found"})

    def repository(self, request: RecordedRequest, match: Any) -> Reply:
        return Reply(
            200, {**gh.repository(created_at=stamp(T0 - timedelta(days=1))), "full_name": REPO}
        )

    def workflows(self, request: RecordedRequest, match: Any) -> Reply:
        items = [gh.workflow(WORKFLOW, "Deploy", ".github/workflows/deploy.yml")]
        return Reply(200, {"total_count": 1, "workflows": items})

    def run(self, i: int) -> str:
        """Run i as JSON, filled into a template (the server must not be what is measured)."""
        created = T0 + STEP * i
        return (
            RUN_TEMPLATE.replace('"@ID@"', str(9_000_000_000 + i))
            .replace("@ID@", str(9_000_000_000 + i))
            .replace('"@NUMBER@"', str(i + 1))
            .replace("@CREATED@", stamp(created))
            .replace("@UPDATED@", stamp(created + timedelta(minutes=4)))
            .replace("@SHA@", f"{i:040x}")
            .replace("@EVENT@", "push" if i % DEPLOY_EVERY == 0 else "pull_request")
            .replace("@CONCLUSION@", "failure" if i % 17 == 0 else "success")
        )

    def runs(self, request: RecordedRequest, match: Any) -> Reply:
        first, last = (moment(part) for part in request.query["created"].split(".."))
        low = max(0, math.ceil((first - T0) / STEP))
        high = min(self.size - 1, math.floor((last - T0) / STEP))
        total = max(0, high - low + 1)
        page, per_page = int(request.query.get("page", "1")), int(request.query["per_page"])
        start, listed = (page - 1) * per_page, min(total, RESULT_CAP)
        newest = high - start
        items = [self.run(i) for i in range(newest, max(newest - per_page, high - listed), -1)]
        headers = {}
        if start + per_page < listed:
            query = urlencode({**request.query, "page": page + 1}, safe=".:,")
            path = f"/repositories/{REPO_ID}/actions/workflows/{WORKFLOW}/runs?{query}"
            headers["Link"] = self.link(next=path)
        body = f'{{"total_count": {total}, "workflow_runs": [{", ".join(items)}]}}'
        return Reply(200, body.encode(), headers)

    def compare(self, request: RecordedRequest, match: Any) -> Reply:
        base, head = match.group(1), match.group(2)
        merge = gh.commit(head, authored=stamp(T0), parents=[base, "f" * 40], message="Merge")
        return Reply(200, gh.compare([merge], total=1, base=base, head=head))

    def pulls(self, request: RecordedRequest, match: Any) -> Reply:
        if self.kind != "pulls":
            return Reply(200, [])
        page, per_page = int(request.query.get("page", "1")), int(request.query["per_page"])
        newest = self.size - 1 - (page - 1) * per_page
        items = [
            PULL_TEMPLATE.replace('"@NUMBER@"', str(n))
            .replace("@NUMBER@", str(n))
            .replace("@CREATED@", stamp(T0 + STEP * n - timedelta(hours=5)))
            .replace("@UPDATED@", stamp(T0 + STEP * n))
            .replace("@SHA@", f"{n:040x}")
            for n in range(newest, max(newest - per_page, -1), -1)
        ]
        headers = {}
        if newest - per_page >= 0:
            query = urlencode({**request.query, "page": page + 1}, safe=".:,")
            headers["Link"] = self.link(next=f"/repositories/{REPO_ID}/pulls?{query}")
        return Reply(200, f"[{', '.join(items)}]".encode(), headers)

    def pull_commits(self, request: RecordedRequest, match: Any) -> Reply:
        n = int(match.group(1))
        first = gh.commit(
            f"{n:039x}a", authored=stamp(T0 + STEP * n - timedelta(hours=6)), parents=["0" * 40]
        )
        return Reply(200, [first])

    def reviews(self, request: RecordedRequest, match: Any) -> Reply:
        n = int(match.group(1))
        at = stamp(T0 + STEP * n - timedelta(hours=2))
        return Reply(200, [gh.review(n, reviewer="bob", state="APPROVED", submitted_at=at)])


def collector_worker(kind: str, base_url: str, database: str, trace: bool) -> dict[str, Any]:
    from sqlalchemy import func, select

    from collectors.github import GitHubSource
    from collectors.runner import run_sync
    from poise.catalog import apply_config
    from poise.config import parse_config
    from poise.warehouse import open_warehouse, schema

    block: dict[str, Any] = {"repo": REPO}
    if kind == "runs":
        block["deploy_workflow"] = "deploy.yml"
    config = parse_config(
        {
            "teams": [{"name": "bench"}],
            "services": [{"name": "svc", "team": "bench", "github": block}],
            "sources": {"github": {"base_url": base_url}},
        }
    )
    engine = open_warehouse(database)
    apply_config(engine, config)
    if trace:
        tracemalloc.start()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    summary = run_sync(engine, config, registry={"github": GitHubSource}, hooks=[])
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    heap = tracemalloc.get_traced_memory()[1] / 1e6 if trace else None
    table = schema.ci_runs if kind == "runs" else schema.changes
    with engine.connect() as connection:
        items = int(connection.scalar(select(func.count()).select_from(table)) or 0)
        deployments = int(
            connection.scalar(select(func.count()).select_from(schema.deployments)) or 0
        )
    return {
        "items": items,
        "deployments": deployments,
        "errors": summary.result("github").errors,
        "seconds": seconds,
        "cpu": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime,
        "peak_heap_mb": heap,
        "peak_rss_mb": after.ru_maxrss / 1024,
    }


def baseline_worker(base_url: str, urls_file: str) -> dict[str, Any]:
    import requests

    urls = Path(urls_file).read_text().split()
    session = requests.Session()
    started = time.perf_counter()
    received = 0
    for url in urls:
        response = session.get(base_url + url, timeout=30)
        received += len(response.content)
    return {"seconds": time.perf_counter() - started, "requests": len(urls), "bytes": received}


def in_worker(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"worker {args[0]} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(kind: str, size: int) -> dict[str, Any]:
    """Timed collection, its bare-requests baseline, and a traced collection, of one history."""
    with tempfile.TemporaryDirectory(prefix="poise-bench-github-") as folder:
        with GeneratedGitHub(kind, size) as server:
            timed = in_worker("collect", kind, server.base_url, f"sqlite:///{folder}/timed.db")
            urls = Path(folder) / "urls.txt"
            urls.write_text("\n".join(server.urls))
            baseline = in_worker("baseline", server.base_url, str(urls))
        with GeneratedGitHub(kind, size) as server:
            traced = in_worker(
                "collect", kind, server.base_url, f"sqlite:///{folder}/traced.db", "trace"
            )
    if timed["errors"] or timed["items"] != size:
        raise SystemExit(f"{kind} {size:,}: collected {timed['items']:,}: {timed['errors']}")
    return {"timed": timed, "baseline": baseline, "traced": traced}


def report(kind: str, sizes: list[int]) -> tuple[list[float], float]:
    rates, heaps = [], []
    for size in sizes:
        result = measure(kind, size)
        timed, baseline, traced = result["timed"], result["baseline"], result["traced"]
        rate = timed["items"] / timed["seconds"]
        rates.append(rate)
        heaps.append(traced["peak_heap_mb"])
        print(
            f"{kind:>5} {size:>7,}  {timed['seconds']:6.2f} s  {rate:7,.0f} items/s  "
            f"({timed['deployments']:,} deployments)  collector CPU {timed['cpu']:5.2f} s  "
            f"baseline {baseline['seconds']:6.2f} s for the same {baseline['requests']:,} GETs "
            f"({timed['seconds'] / baseline['seconds']:.2f}× it)  peak heap "
            f"{traced['peak_heap_mb']:5.1f} MB  peak RSS {timed['peak_rss_mb']:5.0f} MB"
        )
    growth = heaps[-1] - heaps[0]
    print(f"{kind:>5}: peak Python heap grows {growth:+.2f} MB from {sizes[0]:,} to {sizes[-1]:,}")
    return rates, growth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[5_000, 40_000])
    parser.add_argument("--pulls", type=int, nargs="+", default=[1_000, 4_000])
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        role, *rest = args.worker
        if role == "collect":
            kind, base_url, database, *flags = rest
            result = collector_worker(kind, base_url, database, "trace" in flags)
        else:
            result = baseline_worker(*rest)
        print(json.dumps(result))
        return 0
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    run_rates, run_growth = report("runs", args.runs)
    pull_rates, pull_growth = report("pulls", args.pulls)
    ok = (
        all(rate >= ITEMS_BAR for rate in run_rates)
        and max(run_growth, pull_growth) <= HEAP_SLACK_MB
    )
    print(
        f"bars: runs ≥ {ITEMS_BAR:,} items/s: {'met' if all(r >= ITEMS_BAR for r in run_rates) else 'MISSED'}; "
        f"heap independent of history (within {HEAP_SLACK_MB:.0f} MB): "
        f"{'met' if max(run_growth, pull_growth) <= HEAP_SLACK_MB else 'MISSED'}; "
        f"pull requests (two detail requests each): {min(pull_rates):,.0f}–{max(pull_rates):,.0f} items/s, no bar"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

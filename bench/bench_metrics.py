"""Scorecard speed on an organisation-scale warehouse, against a straightforward baseline.

The bar (issue #3): the full scorecard — every team, one quarter, all figures — in under
2 s on SQLite with peak memory under 1 GB; the same is measured on PostgreSQL.

- data: bench/orggen.py's import set for two years (50 teams, 500 services, 200,000
  deployments, 600,000 changes, 20,000 incidents, 1,000 SLOs with hourly SLI samples for
  the last 90 days), imported once through `poise.importer` into bench/out (a SQLite file
  and a schema of the PostgreSQL server), then `metrics.derived.refresh_derived`, as
  `poise import` does.
- poise: `metrics.team_scorecards(engine, 2026Q3)` — one load, grouped by team — in a fresh
  child process per run (cold Python, warm OS cache); wall and CPU seconds, peak RSS.
- baseline: bench/metrics_baseline.py — per team and per service, SQL per row and Python
  loops — measured once in the same run; its figures must equal the engine's.

    python bench/bench_metrics.py [--scale 0.1] [--runs 3] [--postgres URL] [--skip-baseline]

Exit status 1 when the SQLite bar is missed or the baseline disagrees.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from memory import peak_rss_mib  # noqa: E402
from metrics_baseline import Baseline  # noqa: E402
from orggen import write_org  # noqa: E402

from metrics import Period, Settings  # noqa: E402
from metrics.derived import refresh_derived  # noqa: E402
from metrics.scorecard import team_scorecards  # noqa: E402
from poise.importer import import_file  # noqa: E402
from poise.warehouse import open_warehouse  # noqa: E402

BAR_SECONDS = 2.0
BAR_MIB = 1024.0
QUARTER = "2026Q3"
NOW = datetime(2026, 11, 27, tzinfo=UTC)  # after the quarter: nothing is cut at "now"
ORDER = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")
FULL = {
    "teams": 50,
    "services": 500,
    "deployments": 200_000,
    "changes": 600_000,
    "incidents": 20_000,
    "slos": 1000,
    "sli_days": 90,
    "days": 730,
}


def sizes(scale: float) -> dict[str, int]:
    out = {k: max(1, round(v * scale)) for k, v in FULL.items() if k not in ("sli_days", "days")}
    out["teams"] = min(out["teams"], out["services"])
    return {**out, "sli_days": FULL["sli_days"], "days": FULL["days"]}


def import_set(out: Path, scale: float) -> Path:
    folder = out / "metrics-org-{deployments}d-{changes}c-{slos}slo".format(**sizes(scale))
    if not (folder / ".complete").exists():
        print(f"generating the import set in {folder} ...", flush=True)
        write_org(folder, **sizes(scale))
        (folder / ".complete").touch()
    return folder


def load(url: str, folder: Path) -> None:
    engine = open_warehouse(url)
    try:
        for kind in ORDER:
            started = time.perf_counter()
            result = import_file(engine, kind, folder / f"{kind}.csv")
            print(
                f"  imported {kind:12} {result.rows:>10,} rows in {time.perf_counter() - started:6.1f} s",
                flush=True,
            )
        with engine.begin() as connection:  # team sizes, so toil has a capacity to weigh
            connection.execute(text("UPDATE teams SET size = 6"))
        started = time.perf_counter()
        refresh_derived(engine, Settings())
        print(f"  derived tables refreshed in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        engine.dispose()


def sqlite_warehouse(out: Path, folder: Path) -> str:
    database = out / f"{folder.name}.db"
    if not Path(f"{database}.complete").exists():
        for stale in out.glob(f"{database.name}*"):
            stale.unlink()
        print(f"importing into {database} ...", flush=True)
        load(f"sqlite:///{database}", folder)
        Path(f"{database}.complete").touch()
    return f"sqlite:///{database}"


def postgres_warehouse(base: str, folder: Path) -> str:
    schema = "bench_" + folder.name.replace("-", "_")
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    admin = create_engine(base)
    with admin.begin() as connection:
        done = connection.execute(
            text(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = :s AND table_name = 'bench_complete'"
            ),
            {"s": schema},
        ).first()
        if not done:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    if not done:
        print(f"importing into PostgreSQL schema {schema} ...", flush=True)
        load(url, folder)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE TABLE "{schema}".bench_complete (done int)'))
    admin.dispose()
    return url


def child(url: str, result_file: str) -> int:
    """One measured run of the engine, in this (fresh) process."""
    engine = open_warehouse(url, migrate=False)
    period = Period.quarter(QUARTER)
    wall, cpu = time.perf_counter(), time.process_time()
    documents = team_scorecards(engine, period, Settings(), now=NOW)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    Path(result_file).write_text(
        json.dumps({"wall": wall, "cpu": cpu, "peak_mib": peak_rss_mib(), "documents": documents})
    )
    engine.dispose()
    return 0


def measure(url: str, runs: int, out: Path) -> tuple[list[dict[str, float]], dict[str, Any]]:
    results, documents = [], {}
    for run in range(runs):
        result_file = out / f"metrics-run-{os.getpid()}-{run}.json"
        subprocess.run(
            [sys.executable, __file__, "--child", url, "--result", str(result_file)], check=True
        )
        data = json.loads(result_file.read_text())
        result_file.unlink()
        documents = data.pop("documents")
        results.append(data)
    return results, documents


def baseline(url: str) -> tuple[float, float, dict[str, Any]]:
    engine = open_warehouse(url, migrate=False)
    period = Period.quarter(QUARTER)
    wall, cpu = time.perf_counter(), time.process_time()
    figures = Baseline(engine, period.start, period.end, Settings().attribution_window).run(NOW)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.dispose()
    return wall, cpu, figures


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def disagreements(documents: dict[str, Any], figures: dict[str, Any]) -> list[str]:
    """Where the baseline's figures differ from the engine's (empty: they agree)."""
    out = []
    for team, base in figures.items():
        doc = documents[team]
        dora, incidents = doc["dora"], doc["incidents"]
        pairs = {
            "deployments": (dora["deployment_frequency"]["deployments"], base["deployments"]),
            "failed": (dora["change_failure_rate"]["failed"], base["failed"]),
            "rework": (dora["rework_rate"]["rework"], base["rework"]),
            "changes": (dora["lead_time"]["changes"], base["changes"]),
            "lead_median": (dora["lead_time"]["median_hours"], base["lead_median"]),
            "lead_p90": (dora["lead_time"]["p90_hours"], base["lead_p90"]),
            "recovery_median": (dora["recovery_time"]["median_hours"], base["recovery_median"]),
            "incidents": (incidents["count"], base["incidents"]),
            "mttr_median": (incidents["mttr_median_hours"], base["mttr_median"]),
            "attribution": (doc["attribution"], base["attribution"]),
            "budget_remaining": (
                {slo["name"]: slo["budget_remaining"] for slo in doc["slos"]},
                base["budget_remaining"],
            ),
            "frozen_hours": (
                {s["service"]: s["frozen_hours"] for s in doc["budget_policy"]["frozen_services"]},
                base["frozen_hours"],
            ),
        }
        for name, (ours, theirs) in pairs.items():
            if isinstance(ours, dict):
                same = ours.keys() == theirs.keys() and all(
                    _close(ours[k], theirs[k]) for k in ours
                )
            else:
                same = _close(ours, theirs)
            if not same:
                out.append(f"{team} {name}: engine {ours!r} baseline {theirs!r}")
    return out


def report(label: str, results: list[dict[str, float]], base: tuple[float, float] | None) -> bool:
    walls = sorted(r["wall"] for r in results)
    median = walls[len(walls) // 2]
    cpu = sorted(r["cpu"] for r in results)[len(results) // 2]
    peak = max(r["peak_mib"] for r in results)
    print(f"\n{label}: full scorecard, {QUARTER}, every team ({len(results)} fresh processes)")
    print(
        f"  poise     wall {median:7.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)})  cpu {cpu:7.2f} s  peak RSS {peak:6.0f} MiB"
    )
    if base is not None:
        print(f"  baseline  wall {base[0]:7.2f} s  cpu {base[1]:7.2f} s")
        print(f"  ratio     {base[0] / median:7.1f}× faster (wall), {base[1] / cpu:.1f}× (cpu)")
    return median < BAR_SECONDS and peak < BAR_MIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full set")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument(
        "--postgres", metavar="URL", help="also measure on this PostgreSQL database"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="engine times only")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.result)
    args.out.mkdir(parents=True, exist_ok=True)
    folder = import_set(args.out, args.scale)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    ok = True
    targets = [("SQLite", sqlite_warehouse(args.out, folder))]
    if args.postgres:
        targets.append(("PostgreSQL", postgres_warehouse(args.postgres, folder)))
    for label, url in targets:
        results, documents = measure(url, args.runs, args.out)
        base = None
        if not args.skip_baseline:
            wall, cpu, figures = baseline(url)
            base = (wall, cpu)
            wrong = disagreements(documents, figures)
            if wrong:
                ok = False
                print(
                    f"{label}: the baseline disagrees with the engine:\n  "
                    + "\n  ".join(wrong[:20])
                )
        met = report(label, results, base)
        if label == "SQLite":
            print(
                f"  bar       under {BAR_SECONDS:.0f} s and {BAR_MIB:.0f} MiB: {'met' if met else 'MISSED'}"
            )
            ok = ok and met
    print(f"load average now {os.getloadavg()[0]:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

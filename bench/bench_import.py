"""Import speed against bare sqlite3, measured in the same run.

The bar (foundation issue): importing an organisation-scale set (500 services, 200,000
deployments, 600,000 changes, 20,000 incidents, 2,000,000 SLI samples) takes at most 4×
the time of loading the same unparsed rows with bare `sqlite3` `executemany`.

- baseline: the warehouse's tables (same DDL, indexes and all) in a fresh SQLite file;
  each file's rows as `csv.reader` gives them (strings, unchecked) go straight into
  their table through `executemany`, one transaction per file. Deployments' `change_ids`
  has no column of its own and is left out: splitting it into links is parsing.
- poise: `poise.importer.import_file` of every kind, in import order, into a fresh
  migrated warehouse: parsing, validation, reference checks, links and upserts.

    python bench/bench_import.py [--scale 0.1] [--out bench/out]

The import set is generated once (bench/orggen.py) and cached under bench/out/.
Exit status 1 when the ratio misses the bar.
"""

from __future__ import annotations

import argparse
import csv
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from memory import peak_rss_mib, reset_peak_rss  # noqa: E402

from poise.importer import KINDS, import_file  # noqa: E402
from poise.timeutil import to_sqlite_text, utcnow  # noqa: E402
from poise.warehouse import open_warehouse  # noqa: E402
from poise.warehouse.schema import metadata  # noqa: E402

BAR = 4.0
ORDER = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")
FULL = {
    "teams": 50,
    "services": 500,
    "deployments": 200_000,
    "changes": 600_000,
    "incidents": 20_000,
    "slos": 1000,
    "sli_samples": 2_000_000,
}
BATCH = 50_000


def org_set(out: Path, scale: float) -> dict[str, Path]:
    """The cached import set for `scale`, generated (in a child process) when missing."""
    sizes = {name: max(1, round(value * scale)) for name, value in FULL.items()}
    sizes["teams"] = min(sizes["teams"], sizes["services"])
    folder = out / "org-{deployments}d-{changes}c-{sli_samples}s".format(**sizes)
    done = folder / ".complete"
    if not done.exists():
        print(f"generating the import set in {folder} ...", flush=True)
        options = [f"--{name.replace('_', '-')}={value}" for name, value in sizes.items()]
        subprocess.run([sys.executable, str(HERE / "orggen.py"), str(folder), *options], check=True)
        done.touch()
    return {kind: folder / f"{kind}.csv" for kind in ORDER}


class Clock:
    """Wall and CPU seconds of a block: on a shared machine CPU time is the steadier figure."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def _batches(rows: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    while batch := list(islice(rows, size)):
        yield batch


def baseline_load(database: Path, files: dict[str, Path]) -> dict[str, Clock]:
    """Bare sqlite3: the same tables, the same rows as unparsed strings, executemany."""
    engine = create_engine(f"sqlite:///{database}")
    metadata.create_all(engine)
    engine.dispose()
    times: dict[str, Clock] = {}
    connection = sqlite3.connect(database)
    try:
        for kind_name, path in files.items():
            with Clock() as times[kind_name], path.open(newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                sql, keep, tail = _plain_insert(kind_name, next(reader))
                rows = ([row[i] for i in keep] + tail for row in reader)
                for batch in _batches(rows, BATCH):
                    connection.executemany(sql, batch)
                connection.commit()
    finally:
        connection.close()
    return times


def _plain_insert(kind_name: str, header: list[str]) -> tuple[str, list[int], list[str]]:
    """INSERT of a file's columns (all but change_ids) plus the constants a row needs."""
    kind = KINDS[kind_name]
    keep = [i for i, name in enumerate(header) if name != "change_ids"]
    targets = {c.name: c.target or c.name for c in kind.columns}
    constants = {"source": "import"}
    if "updated_at" in kind.table.c:
        constants["updated_at"] = to_sqlite_text(utcnow())
    columns = [targets[header[i]] for i in keep] + list(constants)
    sql = (
        f"INSERT INTO {kind.table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    return sql, keep, list(constants.values())


def poise_import(url: str, files: dict[str, Path]) -> tuple[dict[str, Clock], dict[str, float]]:
    engine = open_warehouse(url)
    times: dict[str, Clock] = {}
    peaks: dict[str, float] = {}
    try:
        for kind_name, path in files.items():
            reset_peak_rss()
            with Clock() as times[kind_name]:
                import_file(engine, kind_name, path)
            peaks[kind_name] = peak_rss_mib()
    finally:
        engine.dispose()
    return times, peaks


def print_postgres(
    base_url: str, files: dict[str, Path], rows: dict[str, int], baseline: dict[str, Clock]
) -> None:
    """The same import into PostgreSQL, beside the SQLite baseline (no bar: another engine)."""
    schema_name = f"bench_import_{os.getpid()}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    separator = "&" if "?" in base_url else "?"
    url = f"{base_url}{separator}options={quote(f'-csearch_path={schema_name}')}"
    try:
        times, _ = poise_import(url, files)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
        admin.dispose()
    print(f"\nPostgreSQL {'rows':>10} {'poise s':>9} {'vs sqlite3':>10} {'rows/s':>10}")
    for kind, clock in times.items():
        print(
            f"{kind:10} {rows[kind]:>10,} {clock.wall:>9.2f} "
            f"{clock.wall / baseline[kind].wall:>9.1f}× {rows[kind] / clock.wall:>10,.0f}"
        )
    total = sum(clock.wall for clock in times.values())
    print(f"{'total':10} {sum(rows.values()):>10,} {total:>9.2f}")


def count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full set")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also import into this PostgreSQL database (a schema of its own; figures only)",
    )
    args = parser.parse_args(argv)

    files = org_set(args.out, args.scale)
    run_dir = args.out / f"run-{os.getpid()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    baseline_db, poise_db = run_dir / "baseline.db", run_dir / "poise.db"
    try:
        rows = {kind: count_rows(path) for kind, path in files.items()}
        reset_peak_rss()
        base_rss_start = peak_rss_mib()
        baseline = baseline_load(baseline_db, files)
        baseline_rss = peak_rss_mib()
        ours, peaks = poise_import(f"sqlite:///{poise_db}", files)
    finally:
        for path in sorted(run_dir.glob("*")):
            path.unlink()
        run_dir.rmdir()

    print(
        f"\n{'kind':12} {'rows':>10} {'sqlite3 s':>10} {'poise s':>9} {'ratio':>6} "
        f"{'cpu ratio':>9} {'rows/s':>10}"
    )
    for kind in files:
        b, o = baseline[kind], ours[kind]
        print(
            f"{kind:12} {rows[kind]:>10,} {b.wall:>10.2f} {o.wall:>9.2f} {o.wall / b.wall:>5.1f}× "
            f"{o.cpu / b.cpu if b.cpu else float('nan'):>8.1f}× {rows[kind] / o.wall:>10,.0f}"
        )
    base_wall, our_wall = (sum(c.wall for c in t.values()) for t in (baseline, ours))
    base_cpu, our_cpu = (sum(c.cpu for c in t.values()) for t in (baseline, ours))
    ratio = our_wall / base_wall
    print(
        f"{'total':12} {sum(rows.values()):>10,} {base_wall:>10.2f} {our_wall:>9.2f} "
        f"{ratio:>5.2f}× {our_cpu / base_cpu:>8.2f}×"
    )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"peak RSS: baseline {baseline_rss:.0f} MiB (process before it {base_rss_start:.0f} MiB); "
        f"poise import {max(peaks.values()):.0f} MiB "
        f"({', '.join(f'{k} {v:.0f}' for k, v in peaks.items())})"
    )
    if args.postgres:
        print_postgres(args.postgres, files, rows, baseline)
    verdict = "meets" if ratio <= BAR else "MISSES"
    print(f"ratio {ratio:.2f}× {verdict} the bar of ≤ {BAR:.0f}× bare sqlite3 executemany")
    return 0 if ratio <= BAR else 1


if __name__ == "__main__":
    sys.exit(main())

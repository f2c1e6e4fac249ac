"""`poise demo` speed, phase by phase, against the import of its own files in the same run.

The bar (foundation issue): the default demo (two years, 6 teams, 15 services) builds in
under 60 s on the project machine (2 cores).

- baseline: `poise.importer.import_file` of the demo's files, in load order, into a fresh
  warehouse: the part of the build that is the ordinary import path.
- demo: `poise.demo.build_demo` into another fresh warehouse: generation, writing the
  files, the same imports, and the on-call pages.

    python bench/bench_demo.py [--days 730] [--postgres URL]

Exit status 1 when the build misses the bar.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from poise.catalog import apply_config  # noqa: E402
from poise.demo import DEFAULT_DAYS, build_demo, demo_config, generate, write_files  # noqa: E402
from poise.importer import import_file  # noqa: E402
from poise.warehouse import open_warehouse  # noqa: E402

BAR_SECONDS = 60.0
UNTIL = datetime(2026, 6, 1, tzinfo=UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--postgres", metavar="URL", help="build into this (empty) database too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
        folder = Path(scratch)
        began = time.perf_counter()
        data = generate(7, UNTIL, args.days)
        generated = time.perf_counter()
        paths = write_files(data, folder / "files")
        written = time.perf_counter()
        print(f"generate  {generated - began:6.2f} s")
        print(
            f"write     {written - generated:6.2f} s  ({len(data.sli)} SLOs, {len(data.deployments)} deployments)"
        )

        baseline = open_warehouse(f"sqlite:///{folder / 'baseline.db'}")
        apply_config(baseline, demo_config())
        start = time.perf_counter()
        for kind, path in paths.items():
            import_file(baseline, kind, path, source="demo")
        imported = time.perf_counter() - start
        print(f"baseline  {imported:6.2f} s  import of the demo's files (SQLite)")

        targets = [("SQLite", f"sqlite:///{folder / 'demo.db'}")]
        if args.postgres:
            targets.append(("PostgreSQL", args.postgres))
        ok = True
        for name, url in targets:
            engine = open_warehouse(url)
            start = time.perf_counter()
            build_demo(engine, until=UNTIL, days=args.days)
            total = time.perf_counter() - start
            engine.dispose()
            verdict = "ok" if total < BAR_SECONDS else "MISSES THE BAR"
            print(
                f"demo      {total:6.2f} s  build into {name}: {total / imported:.2f}x the SQLite "
                f"import baseline; bar {BAR_SECONDS:.0f} s: {verdict}"
            )
            ok = ok and total < BAR_SECONDS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

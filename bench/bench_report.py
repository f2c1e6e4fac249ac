"""`poise report` speed: the organisation-wide quarterly PDF of the demo warehouse.

The bar (issue #7): the whole organisation's quarterly PDF of the default demo renders in
under 30 s on the project machine (2 cores).

Measured in the same run, on the same warehouse:
- baseline: `metrics.scorecard` of the quarter for the whole organisation, the figure
  computation the report cannot do without (what `poise metrics --quarter` does);
- build: `reports.builder.build_report` (scorecards of the quarter, of the quarter before,
  of every team, the SLOs over the calendar quarter, weekly trends, incidents);
- each format laid out from the built report (HTML, Markdown, XLSX, PDF);
- end to end: `reports.render(..., fmt="pdf")`, what `poise report --format pdf` runs.

    python bench/bench_report.py [--quarter 2026Q1] [--keep FOLDER]

Exit status 1 when the end-to-end PDF misses the bar.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pypdf import PdfReader  # noqa: E402

from metrics import Period, Scope, Settings  # noqa: E402
from metrics.scorecard import scorecard  # noqa: E402
from poise.demo import DEFAULT_DAYS, build_demo  # noqa: E402
from poise.warehouse import open_warehouse  # noqa: E402
from reports import render, render_document  # noqa: E402
from reports.builder import build_report  # noqa: E402

BAR_SECONDS = 30.0
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)  # the demo's last full quarter is 2026Q1


def _timed(label: str, call: object, note: str = "") -> tuple[float, object]:
    """Wall time (the bar) and this process's CPU time beside it: the machine is shared, and
    CPU time shows the work however busy the other core is."""
    start, cpu = time.perf_counter(), time.process_time()
    result = call()  # type: ignore[operator]
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    print(f"{label:<10}{seconds:7.2f} s wall {cpu_seconds:7.2f} s CPU  {note}")
    return seconds, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quarter", default="2026Q1")
    parser.add_argument("--keep", metavar="FOLDER", help="also write the files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        engine = open_warehouse(f"sqlite:///{Path(scratch) / 'demo.db'}")
        built = time.perf_counter()
        counts = build_demo(engine, until=UNTIL, days=DEFAULT_DAYS)
        print(
            f"demo      {time.perf_counter() - built:7.2f} s  ({counts['deployments']:,} deployments, "
            f"{counts['incidents']:,} incidents, {counts['sli_samples']:,} SLI samples; not timed below)"
        )
        settings = Settings()
        period = Period.quarter(args.quarter)
        render(engine, args.quarter, fmt="md", settings=settings)  # warm caches and imports

        baseline, _ = _timed(
            "baseline",
            lambda: scorecard(engine, period, Scope(), settings),
            "metrics.scorecard, whole organisation",
        )
        build, report = _timed(
            "build", lambda: build_report(engine, args.quarter, settings=settings)
        )
        outputs: dict[str, bytes] = {}
        for fmt in ("html", "md", "xlsx", "pdf"):
            _seconds, data = _timed(fmt, lambda fmt=fmt: render_document(report, fmt))  # type: ignore[misc]
            outputs[fmt] = data  # type: ignore[assignment]
        end_to_end, pdf = _timed(
            "pdf total", lambda: render(engine, args.quarter, fmt="pdf", settings=settings)
        )
        pages = len(PdfReader(io.BytesIO(pdf)).pages)  # type: ignore[arg-type]
        print(f"\n{args.quarter} organisation-wide PDF: {pages} pages, {len(pdf) / 1024:,.0f} KiB")  # type: ignore[arg-type]
        print(
            f"end to end / baseline: {end_to_end / baseline:5.1f}x   build / baseline: {build / baseline:5.1f}x"
        )
        print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
        print(
            f"bar: {BAR_SECONDS:.0f} s  ->  {'met' if end_to_end < BAR_SECONDS else 'MISSED'} ({end_to_end:.1f} s)"
        )
        if args.keep:
            folder = Path(args.keep)
            folder.mkdir(parents=True, exist_ok=True)
            for fmt, data in outputs.items():
                (folder / f"report-{args.quarter}.{fmt}").write_bytes(data)
        engine.dispose()
    return 0 if end_to_end < BAR_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())

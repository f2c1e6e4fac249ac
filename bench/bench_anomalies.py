"""The unusual weeks on the 50-team warehouse, against the per-series judgement they replaced.

`metrics.anomalies.weekly_judgements` for 2026Q3 over all teams, as the Overview's first
view calls it (docs/guardrails.md): 25 weeks loaded (12 of history before the quarter's 13),
4,740 weekly series (500 services × 5 DORA figures, 50 teams × 5, the scope × 5, 1,000
SLOs × 2). Baseline, in the same run: the module as it was before the judgement was
vectorised (git `BASELINE`), which built the series and judged them one at a time. Both
run in this process, alternately, after one untimed run each (imports, the OS cache); the
median of `--runs`. Their frames must be equal, column for column, before any time counts.

    python bench/bench_anomalies.py [--runs 3] [--skip-baseline]

Reuses (or builds) bench_metrics.py's warehouse in bench/out.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_metrics  # noqa: E402

from metrics import Period, Scope, Settings, anomalies  # noqa: E402
from poise.config import AnomalyConfig  # noqa: E402
from poise.warehouse import open_warehouse  # noqa: E402

BASELINE = "8097f03"  # metrics/anomalies.py before the vectorised judgement


def baseline_module() -> ModuleType | None:
    """The module at BASELINE, loaded from git under a name of its own (None: no git)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BASELINE}:metrics/anomalies.py"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as problem:
        print(f"no baseline: git show {BASELINE} failed ({problem})")
        return None
    path = Path(tempfile.mkdtemp()) / "anomalies_baseline.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("anomalies_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def timed(action: Callable[[], pd.DataFrame]) -> tuple[float, float, pd.DataFrame]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args(argv)

    out = HERE / "out"
    url = bench_metrics.sqlite_warehouse(out, bench_metrics.import_set(out, 1.0))
    engine = open_warehouse(url)
    period = Period.quarter(bench_metrics.QUARTER)
    rule, settings = AnomalyConfig(), Settings()
    modules = {"poise": anomalies}
    baseline = None if args.skip_baseline else baseline_module()
    if baseline is not None:
        modules["baseline"] = baseline

    def run(module: ModuleType) -> Callable[[], pd.DataFrame]:
        return lambda: module.weekly_judgements(
            engine, period, Scope(), settings, rule, now=bench_metrics.NOW
        )

    print(f"load average at the start {os.getloadavg()[0]:.1f}")
    results = {name: run(module)() for name, module in modules.items()}  # untimed
    if baseline is not None:
        pd.testing.assert_frame_equal(results["poise"], results["baseline"], check_exact=True)
        assert anomalies.as_json(results["poise"]) == baseline.as_json(results["baseline"])
        print("frames and poise metrics JSON equal to the baseline's")
    judged = results["poise"]
    series = judged.groupby(["level", "service", "team", "slo", "figure"], dropna=False).ngroups
    print(
        f"{bench_metrics.QUARTER}, all teams: {len(judged):,} judged weeks in {series:,} series "
        f"with a judged week, {int(judged['anomaly'].sum())} flagged"
    )
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in modules}
    for _ in range(args.runs):
        for name, module in modules.items():
            wall, cpu, _result = timed(run(module))
            samples[name].append((wall, cpu))
    medians = {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in samples.items()
    }
    for name, (wall, cpu) in medians.items():
        print(f"  {name:9} {wall:6.2f} s wall  {cpu:6.2f} s cpu  (median of {args.runs})")
    if baseline is not None:
        ratio = medians["baseline"][1] / medians["poise"][1]
        print(f"  baseline / poise: {ratio:.1f}× CPU")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

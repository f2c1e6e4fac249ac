"""A real Prometheus server for tests, with a known history backfilled by promtool.

    history = CounterHistory.generate(end=hour_start)   # samples every minute, relative to now
    with PrometheusServer(history.openmetrics(), tmp_path) as server:
        ... query server.base_url ...

- The history is written as OpenMetrics and turned into TSDB blocks with
  `promtool tsdb create-blocks-from openmetrics`; the server then starts on a free
  127.0.0.1 port with that TSDB and a long retention, and is stopped by its PID.
- Without `prometheus`/`promtool` on PATH (Debian package `prometheus`, installed by
  scripts/install-system-deps.sh) the tests that need them skip and say why, except when
  POISE_REQUIRE_SYSTEM_TOOLS=1 (CI), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRE_ENV = "POISE_REQUIRE_SYSTEM_TOOLS"
HOUR = 3600
MINUTE = 60


def require_prometheus() -> tuple[str, str]:
    """Paths of `prometheus` and `promtool`; skip (or fail in CI) when they are missing."""
    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        reason = (
            f"{' and '.join(missing)} not on PATH: install Debian's `prometheus` package "
            "(scripts/install-system-deps.sh, run by `make test`)"
        )
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    return str(found["prometheus"]), str(found["promtool"])


def prometheus_major_version(binary: str) -> int:
    text = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    words = (text.stdout + text.stderr).split()
    version = words[words.index("version") + 1] if "version" in words else "2"
    return int(version.split(".")[0])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class CounterHistory:
    """Request counters scraped every minute, with what each hour should add up to.

    - `poise_requests_total{code="200"}` and `{code="500"}`: counters whose increase per
      minute is known; the 200 series is reset to zero once (a restart) and misses 20
      minutes of scrapes once (the events of that gap show up at the next scrape).
    - `poise_good_per_second` / `poise_total_per_second`: gauges holding each minute's
      increase divided by 60 (what `rate()` would say), one of them NaN once.

    `good[h]` / `total[h]`: the events in the hour starting at `h` (unix seconds), counting
    a scrape's increase in the hour (t − 1h, t] ends in. `rate_good[h]` is `good[h]`
    without the NaN minute's events.
    """

    start: int
    end: int
    lines: list[str] = field(default_factory=list)
    good: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    total: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    rate_good: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    reset_at: int = 0
    gap: tuple[int, int] = (0, 0)
    nan_at: int = 0

    @classmethod
    def generate(cls, end: int, hours: int = 30) -> CounterHistory:
        """`hours` whole hours of history ending at `end` (an hour boundary)."""
        assert end % HOUR == 0
        start = end - hours * HOUR
        history = cls(start=start, end=end)
        history.reset_at = start + 5 * HOUR + 27 * MINUTE
        history.gap = (start + 9 * HOUR + 10 * MINUTE, start + 9 * HOUR + 30 * MINUTE)
        history.nan_at = start + 12 * HOUR + 41 * MINUTE
        history._build()
        return history

    def _ok_increase(self, t: int) -> int:
        hour = (t - self.start) // HOUR
        return 40 + 3 * (hour % 5) + (t // MINUTE) % 7

    def _error_increase(self, t: int) -> int:
        minute = (t // MINUTE) % 60
        return 1 if minute % 11 == 0 or (t - self.start) // HOUR == 17 else 0

    def _build(self) -> None:
        ok, errors = 1000.0, 0.0
        ok_lines, error_lines, good_rate_lines, total_rate_lines = [], [], [], []
        for t in range(self.start, self.end + 1, MINUTE):
            first = t == self.start
            ok_step = 0 if first else self._ok_increase(t)
            error_step = 0 if first else self._error_increase(t)
            ok = float(ok_step) if t == self.reset_at else ok + ok_step
            errors += error_step
            bucket = (t - 1) // HOUR * HOUR
            if not first:
                self.good[bucket] += ok_step
                self.total[bucket] += ok_step + error_step
                if t != self.nan_at:
                    self.rate_good[bucket] += ok_step
            if not self.gap[0] <= t < self.gap[1]:
                ok_lines.append(f'poise_requests_total{{code="200"}} {ok:g} {t}')
            error_lines.append(f'poise_requests_total{{code="500"}} {errors:g} {t}')
            good_rate = "NaN" if t == self.nan_at else repr(ok_step / 60)
            good_rate_lines.append(f"poise_good_per_second {good_rate} {t}")
            total_rate_lines.append(f"poise_total_per_second {(ok_step + error_step) / 60!r} {t}")
        self.lines = [
            "# TYPE poise_requests counter",
            *ok_lines,
            *error_lines,
            "# TYPE poise_good_per_second gauge",
            *good_rate_lines,
            "# TYPE poise_total_per_second gauge",
            *total_rate_lines,
            "# EOF",
        ]

    def openmetrics(self) -> str:
        return "\n".join(self.lines) + "\n"

    def hours(self) -> list[int]:
        return list(range(self.start, self.end, HOUR))


class PrometheusServer:
    """`prometheus` on 127.0.0.1 over a backfilled TSDB; a context manager."""

    def __init__(self, openmetrics: str, workdir: Path) -> None:
        self.prometheus, self.promtool = require_prometheus()
        self.workdir = workdir
        self.openmetrics = openmetrics
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        source = self.workdir / "history.om"
        source.write_text(self.openmetrics, encoding="utf-8")
        tsdb = self.workdir / "tsdb"
        backfill = subprocess.run(
            [self.promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
            capture_output=True,
            text=True,
        )
        if backfill.returncode != 0:
            raise RuntimeError(f"promtool backfill failed: {backfill.stderr.strip()[-500:]}")
        config = self.workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\n", encoding="utf-8")
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tsdb}",
                    "--storage.tsdb.retention.time=3650d",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-800:]
                raise RuntimeError(f"prometheus exited with {self.process.returncode}: {tail}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"prometheus not ready within {timeout:g}s")

    def stop(self) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Many people on the Overview at once: one `poise ui` server, N concurrent dashboard
sessions.

Two kinds of visitor, in the same run:
- browser: a real browser context in headless Chromium (Playwright), its own Streamlit
  session; timed from asking for the page to the page being rendered (the script has
  finished, the title, at least four figure cards and the teams table are there, every
  visible chart has been drawn);
- protocol: Streamlit's own websocket protocol (what the browser's page speaks), no browser;
  timed from connecting to the server's "script finished" with every element received.
  This is the server's share of the time alone: the browser runs on the same machine as
  the server and competes for its cores, so the browser times also hold Chromium's work of
  laying the page out N times over, which a visitor's own computer would do.

Phases, each on the default demo warehouse (built into bench/out/ if absent):
- cold, alone:      one session on a freshly started server (nothing cached yet);
- warm, alone:      one session at a time, five times: the baseline (the figures are cached;
                    what is left is the script run, sending the page, and the browser);
- warm, N at once:  N sessions started together;
- cold, N at once:  N sessions started together on a freshly started server (all of them
                    want the same figures that nobody has computed yet).

On the server: the peak resident memory of its whole process tree (`poise ui` and the
Streamlit process it starts, sampled from /proc every 50 ms) and the CPU time it used.

    python bench/bench_load.py [--sessions 20] [--db sqlite:///bench/out/load-demo.db]

Exit status 1 when a page fails to render (an error box, a timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from dashboard import headless  # noqa: E402
from dashboard.headless import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

OUT = HERE / "out"
DEFAULT_DB = OUT / "load-demo.db"
PAGE_TIMEOUT_MS = 600_000
# Rendered: the script has finished, this is the Overview with its figures and teams table,
# and every visible chart has been drawn.
RENDERED = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const heading = document.querySelector('[data-testid="stMain"] h1');
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .filter(chart => chart.offsetParent !== null);
    return app && app.getAttribute('data-test-script-state') === 'notRunning'
        && heading && heading.innerText.trim() === 'Overview'
        && document.querySelectorAll('[data-testid="stMetric"]').length >= 4
        && document.querySelector('[data-testid="stDataFrame"]') !== null
        && charts.length >= 1 && charts.every(chart => chart.querySelector('.main-svg'));
}"""
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


# --- the demo warehouse ------------------------------------------------------------------------


def ensure_demo(path: Path) -> str:
    """The default demo up to today in `path` (rebuilt when it was built on another day, so
    the Overview's last 28 days hold data)."""
    url = f"sqlite:///{path}"
    marker = path.with_name(path.name + ".complete")
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    if marker.exists() and marker.read_text().strip() == today and path.exists():
        return url
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, marker):
        stale.unlink(missing_ok=True)
    print(f"building the demo warehouse into {path} (poise demo)…", flush=True)
    subprocess.run([sys.executable, "-m", "poise.cli", "demo", "--db", url], cwd=ROOT, check=True)
    marker.write_text(today)
    return url


# --- the server and its process tree -------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    """Every process's children (from /proc/*/stat's parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """`root` and every process below it."""
    children = _children()
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def server_process(port: int) -> int:
    """The `poise ui --port PORT` this process started."""
    for pid in _children().get(os.getpid(), []):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ui" in command and str(port).encode() in command:
            return pid
    raise SystemExit(f"no poise ui on port {port} among this process's children")


def _status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@dataclass
class Server:
    base: str
    pids: list[int] = field(default_factory=list)

    def rss_mib(self) -> float:
        return sum(_status_kib(pid, "VmRSS") for pid in self.pids) / 1024

    def cpu(self) -> float:
        return cpu_seconds(self.pids)


@contextmanager
def serving(url: str) -> Iterator[Server]:
    """`poise ui` on a free loopback port until the block ends (dashboard.headless)."""
    port = free_port()
    log = OUT / f"load-ui-{port}.log"
    with headless.serving(url, log, port=port) as base:
        yield Server(base, process_tree(server_process(port)))
    log.unlink(missing_ok=True)


@contextmanager
def peak_memory(server: Server) -> Iterator[list[float]]:
    """The highest total resident memory of the server's processes while the block runs
    (sampled every 50 ms): the list's one value after the block."""
    peak = [server.rss_mib()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], server.rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], server.rss_mib())


# --- sessions ----------------------------------------------------------------------------------


async def browser_session(browser: Any, base: str, start: asyncio.Event) -> float:
    """One visitor in a browser context of its own: seconds from asking for the page to its
    being rendered."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = await context.new_page()
        await start.wait()
        began = time.perf_counter()
        await page.goto(base + "/", wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
        # rendered, or an error box (which ends the wait at once)
        await page.wait_for_function(
            f"() => ({RENDERED})() || document.querySelector({ERRORS!r}) !== null",
            timeout=PAGE_TIMEOUT_MS,
            polling=100,
        )
        seconds = time.perf_counter() - began
        errors = page.locator(ERRORS)
        if await errors.count():
            raise RuntimeError(f"error on the page: {(await errors.first.inner_text())[:300]}")
        return seconds
    finally:
        await context.close()


async def protocol_session(_browser: Any, base: str, start: asyncio.Event) -> float:
    """One visitor speaking Streamlit's websocket protocol: seconds from connecting to the
    end of the page's script run, every element received."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    await start.wait()
    began = time.perf_counter()
    stream = base.replace("http://", "ws://") + "/_stcore/stream"
    elements: dict[str, int] = {}
    async with websockets.connect(stream, subprotocols=["streamlit"], max_size=None) as socket_:
        ask = BackMsg()
        ask.rerun_script.query_string = ""
        ask.rerun_script.page_script_hash = ""  # the default page: the Overview
        await socket_.send(ask.SerializeToString())
        while True:
            message = ForwardMsg()
            message.ParseFromString(await asyncio.wait_for(socket_.recv(), PAGE_TIMEOUT_MS / 1000))
            kind = message.WhichOneof("type")
            if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                name = element.WhichOneof("type")
                if name == "alert" and element.alert.format == element.alert.ERROR:
                    name = "error"
                elements[name] = elements.get(name, 0) + 1
            if kind == "script_finished" and message.script_finished in (
                ForwardMsg.FINISHED_SUCCESSFULLY,
                ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
            ):
                break
    seconds = time.perf_counter() - began
    if elements.get("exception") or elements.get("error") or elements.get("metric", 0) < 4:
        raise RuntimeError(f"the page did not render its figures: {elements}")
    return seconds


Visit = Callable[[Any, str, asyncio.Event], Awaitable[float]]
VISITORS: dict[str, Visit] = {"browser": browser_session, "protocol": protocol_session}


async def together(visit: Visit, browser: Any, base: str, count: int) -> list[float]:
    """`count` sessions asking for the page at the same moment."""
    start = asyncio.Event()
    tasks = [asyncio.create_task(visit(browser, base, start)) for _ in range(count)]
    await asyncio.sleep(0.5)  # browser contexts open before the clock starts
    start.set()
    return sorted(await asyncio.gather(*tasks))


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * share))
    return ordered[rank - 1]


@dataclass
class Phase:
    name: str
    times: list[float]
    peak_mib: float
    cpu_s: float

    @property
    def p50(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        return percentile(self.times, 0.95)

    def line(self, baseline: Phase | None = None) -> str:
        ratio = (
            f"  = {self.p50 / baseline.p50:4.1f}x / {self.p95 / baseline.p50:4.1f}x {baseline.name}"
            if baseline
            else ""
        )
        return (
            f"{self.name:<26} n={len(self.times):<3} p50 {self.p50:6.2f} s  "
            f"p95 {self.p95:6.2f} s  peak RSS {self.peak_mib:5.0f} MiB  "
            f"server CPU {self.cpu_s:5.1f} s{ratio}"
        )


async def measure(
    server: Server, browser: Any, kind: str, name: str, count: int, repeat: int = 1
) -> Phase:
    times: list[float] = []
    cpu_before = server.cpu()
    with peak_memory(server) as peak:
        for _ in range(repeat):
            times += await together(VISITORS[kind], browser, server.base, count)
    phase = Phase(f"{kind}: {name}", times, peak[0], server.cpu() - cpu_before)
    return phase


async def run(url: str, sessions: int) -> list[tuple[Phase, Phase | None]]:
    """Every phase, with the phase it is compared with."""
    from playwright.async_api import async_playwright

    n = f"{sessions} at once"
    results: list[tuple[Phase, Phase | None]] = []

    def report(phase: Phase, baseline: Phase | None = None) -> Phase:
        print(phase.line(baseline), flush=True)
        results.append((phase, baseline))
        return phase

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            with serving(url) as server:
                print(
                    f"server idle: {server.rss_mib():.0f} MiB resident ({len(server.pids)} processes)"
                )
                cold = report(await measure(server, browser, "browser", "cold, alone", 1))
                warm = report(await measure(server, browser, "browser", "warm, alone", 1, 5))
                report(await measure(server, browser, "browser", f"warm, {n}", sessions), warm)
                bare = report(await measure(server, None, "protocol", "warm, alone", 1, 5))
                report(await measure(server, None, "protocol", f"warm, {n}", sessions), bare)
            with serving(url) as server:
                report(await measure(server, browser, "browser", f"cold, {n}", sessions), cold)
            with serving(url) as server:
                bare_cold = report(await measure(server, None, "protocol", "cold, alone", 1))
            with serving(url) as server:
                report(await measure(server, None, "protocol", f"cold, {n}", sessions), bare_cold)
        finally:
            await browser.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--db", help=f"warehouse URL (default: the demo in {DEFAULT_DB})")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"needs Chromium at {CHROMIUM} (scripts/install-system-deps.sh)")
        return 1
    url = args.db or ensure_demo(DEFAULT_DB)
    load = os.getloadavg()
    print(
        f"{args.sessions} sessions on the Overview, one `poise ui` server, headless Chromium on "
        f"the same machine ({os.cpu_count()} cores; load average {load[0]:.2f} at the start)"
    )
    try:
        results = asyncio.run(run(url, args.sessions))
    except Exception as exc:  # a page that failed: say which and how, exit 1
        print(f"FAILED: {type(exc).__name__}: {exc}")
        return 1
    peak = max(phase.peak_mib for phase, _ in results)
    print(f"server peak RSS over the whole run: {peak:.0f} MiB")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`poise sync`: collect from the configured sources (Git, GitHub, GitLab, Jenkins, PagerDuty, Opsgenie, Prometheus)."""

from __future__ import annotations

import argparse
import logging
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import FrameType

from rich.logging import RichHandler
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import OperationalError

from collectors.runner import SyncSummary, run_sync
from poise.commands.common import Context, add_config_option, add_db_option, open_context
from poise.console import err, out
from poise.errors import PoiseError
from poise.timeutil import isoformat_z, utcnow
from poise.warehouse.lock import SyncLocked, sync_lock

NAME = "sync"
HELP = "collect from the configured sources (Git, GitHub, GitLab, Jenkins, PagerDuty, Opsgenie, Prometheus)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    add_config_option(parser)
    parser.add_argument(
        "--source",
        action="append",
        metavar="NAME",
        help="sync only this source (git, github, …); may be given more than once",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="ignore bookmarks and collect everything again (idempotent: nothing is doubled)",
    )
    parser.add_argument(
        "--every",
        metavar="INTERVAL",
        type=parse_interval,
        help="keep running: sync again every INTERVAL (e.g. 15m, 1h, 90s; ±10%% jitter); "
        "SIGTERM or Ctrl-C finishes the current source, then exits 0",
    )


JITTER = 0.10
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(value: str) -> float:
    """`15m`, `1h`, `90s`, `2d` or plain seconds, as seconds (at least one)."""
    match = _INTERVAL.match(value)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an interval: use a number with s, m, h or d (e.g. 15m)"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: the interval must be at least 1s")
    return seconds


def jittered(seconds: float, rng: random.Random | None = None) -> float:
    """The interval moved by up to ±10 %, so many instances do not hit an API in step."""
    return seconds * (1 + (rng or random).uniform(-JITTER, JITTER))


def _attach_log_handler(debug: bool) -> logging.Handler:
    """Retries, rate-limit waits and (with --debug) tracebacks of failing scopes, on stderr."""
    handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    level = logging.DEBUG if debug else logging.WARNING
    handler.setLevel(level)
    logger = logging.getLogger("poise")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    return handler


def run(args: argparse.Namespace) -> int:
    if args.every is None:
        return _sync_once(args)
    return _sync_every(args, args.every)


def _sync_once(args: argparse.Namespace, should_stop: Callable[[], bool] | None = None) -> int:
    """One locked sync: 0 when every source succeeded, 1 otherwise."""
    context = open_context(args, notes=lambda note: err.print(f"poise: note: {note}", markup=False))
    try:
        with sync_lock(context.engine, context.url):
            summary = _collect(args, context, should_stop)
    finally:
        context.engine.dispose()
    print_summary(summary)
    if summary.stopped:
        err.print("poise: stopped before the remaining sources (signal)", markup=False)
    return 1 if summary.failed else 0


def _collect(
    args: argparse.Namespace, context: Context, should_stop: Callable[[], bool] | None
) -> SyncSummary:
    handler = _attach_log_handler(getattr(args, "debug", False))
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} records"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    tasks: dict[str, int] = {}

    def on_progress(source: str, records: int) -> None:
        if source not in tasks:
            # source names have no spaces; a post-sync step is named in words
            label = source if " " in source else f"syncing {source}"
            tasks[source] = bar.add_task(label, total=None)
        bar.advance(tasks[source], records)

    try:
        with bar:
            return run_sync(
                context.engine,
                context.config,
                sources=args.source,
                full=args.full,
                on_progress=on_progress,
                should_stop=should_stop,
            )
    finally:
        logging.getLogger("poise").removeHandler(handler)


def _sync_every(args: argparse.Namespace, interval: float) -> int:
    """Sync, wait the interval (jittered), sync again, until SIGTERM or SIGINT.

    The config is read again and the warehouse opened again each round, so an edited
    poise.yaml or a restarted database is picked up; a round that fails (a source, the
    database, a sync already running) is reported and the loop goes on.
    """
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            err.print(
                f"poise: {signal.Signals(signum).name}: finishing the current source, then "
                "stopping",
                markup=False,
            )
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.is_set():
            try:
                _sync_once(args, should_stop=stop.is_set)
            except SyncLocked as exc:
                err.print(f"poise: {exc}; trying again next round", markup=False)
            except PoiseError as exc:
                err.print(f"poise: {exc}", markup=False)
            except OperationalError as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                err.print(f"poise: database unavailable: {reason}", markup=False)
            if stop.is_set():
                break
            wait = jittered(interval)
            next_at = utcnow() + timedelta(seconds=wait)
            err.print(f"poise: next sync at {isoformat_z(next_at)}", markup=False)
            _sleep_until_stopped(stop, wait)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err.print("poise: sync loop stopped", markup=False)
    return 0


def _sleep_until_stopped(stop: threading.Event, seconds: float) -> None:
    # Short waits: a signal handler runs between them, so a stop is seen within a second.
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        stop.wait(min(remaining, 0.5))


def print_summary(summary: SyncSummary) -> None:
    if not summary.results:
        err.print(
            "poise: nothing to sync: no service in the config names a source "
            "(git, github, gitlab, jenkins, pagerduty, opsgenie) and no SLO has Prometheus "
            "queries",
            markup=False,
        )
        return
    table = Table(title="poise sync", title_justify="left")
    for heading in ("source", "scopes", "records", "new", "updated", "unchanged", "errors"):
        table.add_column(heading, justify="left" if heading == "source" else "right")
    for result in summary.results:
        table.add_row(
            result.name,
            str(result.scopes),
            f"{result.records:,}",
            f"{result.new:,}",
            f"{result.updated:,}",
            f"{result.unchanged:,}",
            str(result.failures),
        )
    out.print(table)
    for note in summary.notes:
        out.print(note, markup=False)
    for result in summary.results:
        for warning in result.warnings:
            err.print(f"poise: warning: {warning}", markup=False)
    for result in summary.results:
        for error in result.errors:
            err.print(f"poise: {error}", markup=False)

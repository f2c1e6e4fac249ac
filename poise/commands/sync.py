"""`poise sync`: collect from the configured sources (Git, GitHub, GitLab, Jenkins, PagerDuty, Opsgenie, Prometheus)."""

from __future__ import annotations

import argparse
import logging
import random
import re
import signal
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import Any

from rich.logging import RichHandler
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from collectors.runner import SyncSummary, registered_sources, run_sync
from poise.commands.common import Context, add_config_option, add_db_option, open_context
from poise.console import err, out
from poise.errors import PoiseError, internal_error
from poise.timeutil import isoformat_z, utcnow
from poise.warehouse.engine import database_failure
from poise.warehouse.lock import SyncLocked, sync_lock

NAME = "sync"
HELP = (
    "collect from the configured sources (Git, GitHub, GitLab, Jenkins, PagerDuty, Opsgenie, "
    "Prometheus, TLS)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    add_config_option(parser)
    parser.add_argument(
        "--source",
        action="append",
        metavar="NAME",
        type=parse_source,
        help="sync only this source (git, github, gitlab, jenkins, pagerduty, opsgenie, "
        "prometheus, tls); may be given more than once",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="ignore bookmarks and collect everything again (idempotent: nothing is doubled); "
        "with --every, the first round only",
    )
    parser.add_argument(
        "--every",
        metavar="INTERVAL",
        type=parse_interval,
        help="keep running: sync again every INTERVAL after a round ends (e.g. 15m, 1h, 90s; "
        "±10%% jitter); SIGTERM or Ctrl-C finishes the scope under way, then exits 0 "
        "(a second one stops at once)",
    )


def parse_source(value: str) -> str:
    """A registered source's name; anything else is a usage error (exit 2), said before the
    config is read or the warehouse is opened, and never once per round of `--every`."""
    known = registered_sources()
    if value not in known:
        raise argparse.ArgumentTypeError(
            f"unknown source {value!r} (known: {', '.join(sorted(known))})"
        )
    return value


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
    stop = _StopRequest()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():  # only there can Python catch one
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if args.every is None:
            code = _sync_once(args, stop)
            if stop.signum is not None and stop.skipped:
                return 128 + stop.signum  # stopped early: what a shell reports for the signal
            return code
        return _sync_every(args, args.every, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _StopRequest:
    """SIGTERM and SIGINT: the first lets the scope under way finish (one repository, job,
    service, SLO or certificate), a second stops at once.

    A second signal raises KeyboardInterrupt where the sync is (`poise: interrupted`, exit
    130): every page committed before it is kept, and the lock goes with the process.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.skipped = False  # a round ended with sources not started because of the stop

    def is_set(self) -> bool:
        return self.event.is_set()

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set():
            err.print(f"poise: {name} again: stopping now", markup=False)
            raise KeyboardInterrupt
        self.signum = signum
        self.event.set()
        err.print(
            f"poise: {name}: finishing the scope under way, then stopping "
            f"({name} again to stop at once)",
            markup=False,
        )


def _stamp() -> str:
    """The time now, UTC, to the second: `2026-11-29T05:38:43Z`."""
    return isoformat_z(utcnow().replace(microsecond=0))


def _sync_once(args: argparse.Namespace, stop: _StopRequest) -> int:
    """One locked sync: 0 when every source succeeded, 1 otherwise (a source failed, or one
    named with --source has nothing configured)."""

    def say(note: str) -> None:
        err.print(f"poise: note: {note}", markup=False)

    with open_context(args, notes=say) as context, sync_lock(context.engine, context.url):
        summary = _collect(args, context, stop.is_set)
    print_summary(summary, args.source)
    if summary.stopped:
        err.print(
            "poise: stopped early (signal): what was not started is read by the next sync",
            markup=False,
        )
    stop.skipped = summary.stopped
    unconfigured = _unconfigured(args.source, summary)
    return 1 if summary.failed or unconfigured else 0


def _unconfigured(requested: list[str] | None, summary: SyncSummary) -> list[str]:
    """The sources named with --source that had nothing to sync (no scope in the config)."""
    if not requested or summary.stopped:  # a stop skips sources; it does not unconfigure them
        return []
    ran = {result.name for result in summary.results}
    return [name for name in dict.fromkeys(requested) if name not in ran]


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


def _sync_every(args: argparse.Namespace, interval: float, stop: _StopRequest) -> int:
    """Sync, wait the interval (jittered), sync again, until SIGTERM or SIGINT.

    The config is read again and the warehouse opened again each round, so an edited
    poise.yaml or a restarted database is picked up; a round that fails (a source, the
    database, a sync already running, even a bug) is reported and the loop goes on. Each
    round starts with a line stamped in UTC, so a log (docker logs, journald) says when.
    """
    while not stop.is_set():
        err.print(
            f"poise: sync started at {_stamp()}" + (" (full)" if args.full else ""), markup=False
        )
        try:
            code = _sync_once(args, stop)
        except SyncLocked as exc:
            err.print(f"poise: {exc}; trying again next round", markup=False)
        except PoiseError as exc:
            err.print(f"poise: {exc}", markup=False)
        except DBAPIError as exc:
            failure = database_failure(exc)  # as `main` says it
            if failure is None:
                _report_bug(args, exc)
            else:
                err.print(f"poise: {failure}", markup=False)
        except Exception as exc:  # a bug in one round must not end a scheduled sync for good
            _report_bug(args, exc)
        else:
            # --full is for the first round that ran: every round reading everything again
            # would spend the APIs' rate limits for nothing
            args.full = False
            outcome = "ok" if code == 0 else "failed (see above)"
            err.print(f"poise: sync finished at {_stamp()}: {outcome}", markup=False)
        if stop.is_set():
            break
        wait = jittered(interval)
        next_at = (utcnow() + timedelta(seconds=wait)).replace(microsecond=0)
        err.print(f"poise: next sync at {isoformat_z(next_at)}", markup=False)
        _sleep_until_stopped(stop.event, wait)
    err.print("poise: sync loop stopped", markup=False)
    return 0


def _report_bug(args: argparse.Namespace, exc: Exception) -> None:
    if getattr(args, "debug", False):
        traceback.print_exception(exc)
    err.print(f"poise: {internal_error(exc)}; trying again next round", markup=False)


def _sleep_until_stopped(stop: threading.Event, seconds: float) -> None:
    # Short waits: a signal handler runs between them, so a stop is seen within a second.
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        stop.wait(min(remaining, 0.5))


def print_summary(summary: SyncSummary, requested: list[str] | None = None) -> None:
    if not summary.results:
        if not requested and not summary.stopped:  # a stop before the first source: said after
            err.print(
                "poise: nothing to sync: no service in the config names a source "
                "(git, github, gitlab, jenkins, pagerduty, opsgenie), no SLO has Prometheus "
                "queries and no certificate is listed (tls)",
                markup=False,
            )
        _print_unconfigured(summary, requested)
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
    for note in [*(note for result in summary.results for note in result.notes), *summary.notes]:
        out.print(note, markup=False)
    for result in summary.results:
        for warning in result.warnings:
            err.print(f"poise: warning: {warning}", markup=False)
    for result in summary.results:
        for error in result.errors:
            err.print(f"poise: {error}", markup=False)
    _print_unconfigured(summary, requested)


def _print_unconfigured(summary: SyncSummary, requested: list[str] | None) -> None:
    for name in _unconfigured(requested, summary):
        err.print(
            f"poise: --source {name}: nothing to sync: the config gives {name} nothing to read "
            "(docs/collectors.md says what each source needs)",
            markup=False,
        )

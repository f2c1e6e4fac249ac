"""`poise sync`: collect from the configured sources (Git, GitHub, GitLab, Jenkins, PagerDuty, Opsgenie, Prometheus)."""

from __future__ import annotations

import argparse
import logging

from rich.logging import RichHandler
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from collectors.runner import SyncSummary, run_sync
from poise.commands.common import add_config_option, add_db_option, open_context
from poise.console import err, out

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
    context = open_context(args)
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
            tasks[source] = bar.add_task(f"syncing {source}", total=None)
        bar.advance(tasks[source], records)

    try:
        with bar:
            summary = run_sync(
                context.engine,
                context.config,
                sources=args.source,
                full=args.full,
                on_progress=on_progress,
            )
    finally:
        logging.getLogger("poise").removeHandler(handler)
    print_summary(summary)
    return 1 if summary.failed else 0


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
            str(len(result.errors)),
        )
    out.print(table)
    for result in summary.results:
        for error in result.errors:
            err.print(f"poise: {error}", markup=False)

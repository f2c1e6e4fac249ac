"""`poise demo`: build the deterministic demo organisation."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

from metrics.derived import refresh_derived
from metrics.model import Settings
from poise.commands.common import Context, add_config_option, add_db_option, open_context
from poise.console import err, out
from poise.demo import DEFAULT_DAYS, DEFAULT_SEED, build_demo, clear_demo_rows, row_counts
from poise.errors import PoiseError
from poise.timeutil import TimestampError, parse_period_bound, start_of_day, utcnow
from poise.warehouse import redact

NAME = "demo"
HELP = "build a deterministic demo warehouse (6 teams, 15 services, two years)"


def _until(text: str) -> datetime:
    try:
        return parse_period_bound(text)
    except TimestampError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _days(text: str) -> int:
    # Its own check, not _non_negative's: -3 and 0 get the same message ("at least 1").
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _check_export(folder: Path) -> None:
    """Make the --export folder and try a file in it before anything is built: failing
    halfway would leave the warehouse with some of the demo (and, with --force, without
    the earlier demo rows)."""
    if folder.exists() and not folder.is_dir():
        raise PoiseError(f"--export {folder} is a file: name a folder for the import files")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".poise-demo-", dir=folder)
        os.close(handle)
        Path(probe).unlink()
    except OSError as exc:
        raise PoiseError(f"--export {folder}: cannot write: {exc.strerror or exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    # the demo's teams are its own; a config gives the warehouse (`database:`) and the
    # attribution settings its attributions are refreshed with, as for `poise import`
    add_config_option(parser)
    parser.add_argument(
        "--seed",
        metavar="N",
        type=_non_negative,
        default=DEFAULT_SEED,
        help=f"random seed (same seed and --until, same rows; default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--until",
        type=_until,
        metavar="DATE",
        help="end of the demo history, exclusive (default: the start of today, UTC)",
    )
    parser.add_argument(
        "--days",
        metavar="N",
        type=_days,
        default=DEFAULT_DAYS,
        help=f"length of the history in days (default {DEFAULT_DAYS}; shorter builds faster)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="build into a warehouse that already holds data: earlier demo rows are replaced, "
        "rows from other sources are kept",
    )
    parser.add_argument(
        "--export",
        metavar="DIR",
        type=Path,
        help="also keep the generated import files (CSV / JSON Lines) in DIR",
    )


def run(args: argparse.Namespace) -> int:
    if args.export is not None:
        _check_export(args.export)
    with open_context(args, apply=False) as context:
        _build(args, context)
    return 0


def _build(args: argparse.Namespace, context: Context) -> None:
    existing = {table: rows for table, rows in row_counts(context.engine).items() if rows}
    if existing and not args.force:
        held = ", ".join(f"{table}: {rows}" for table, rows in list(existing.items())[:3])
        held += ", …" if len(existing) > 3 else ""
        raise PoiseError(
            f"the warehouse at {redact(context.url)} is not empty ({held}); `poise demo` builds "
            "into an empty one: choose another --db, or add --force to replace earlier demo rows"
        )
    if existing:
        err.print("clearing earlier demo rows (rows from other sources are kept)")
        clear_demo_rows(context.engine)
    until = args.until or start_of_day(utcnow().date())
    began = time.perf_counter()
    build_demo(
        context.engine,
        seed=args.seed,
        until=until,
        days=args.days,
        export=args.export,
        report=lambda message: err.print(message, markup=False),
    )
    # Like `poise import`: keep the stored incident attributions in step with the rows.
    refreshed = refresh_derived(context.engine, Settings.from_config(context.config))
    if isinstance(found := refreshed.get("attributions"), dict):
        err.print(
            f"attribution: {found['explicit']} explicit, {found['inferred']} inferred, "
            f"{found['unattributed']} unattributed incidents"
        )
    elapsed = time.perf_counter() - began
    counts = row_counts(context.engine)
    out.print(f"demo warehouse at {redact(context.url)} built in {elapsed:.1f} s:", markup=False)
    width = max(len(table) for table in counts)
    for table, rows in counts.items():
        if rows:
            out.print(f"  {table:<{width}}  {rows:>9,}", markup=False)

"""`poise import`: load canonical rows from a CSV or JSON Lines file."""

from __future__ import annotations

import argparse
from pathlib import Path

from metrics.derived import refresh_derived
from metrics.model import Settings
from poise.commands.common import Context, add_config_option, add_db_option, open_context
from poise.console import err, progress
from poise.importer import KINDS, import_file

NAME = "import"
HELP = "import services, changes, deployments, incidents, SLOs, SLI samples or toil from a file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", required=True, choices=list(KINDS), help="what the file holds")
    parser.add_argument("file", help="CSV with a header row, or JSON Lines (.jsonl)")
    add_db_option(parser)
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    with open_context(args) as context:
        return _run(args, context)


def _run(args: argparse.Namespace, context: Context) -> int:
    path = Path(args.file)
    size = path.stat().st_size if path.is_file() else None
    with progress(f"importing {path.name}", size, unit="bytes") as advance:
        result = import_file(context.engine, args.kind, path, on_read=advance)
    err.print(
        f"{path}: {result.rows} {args.kind} rows read, {result.written} new or changed, "
        f"{result.unchanged} unchanged",
        markup=False,  # a file name like data[1].csv is not markup
    )
    refreshed = refresh_derived(
        context.engine, Settings.from_config(context.config), kind=args.kind
    )
    if "attributions" in refreshed:
        counts = refreshed["attributions"]
        err.print(
            f"attribution: {counts['explicit']:,} explicit, {counts['inferred']:,} inferred, "  # type: ignore[index]
            f"{counts['unattributed']:,} unattributed incidents"  # type: ignore[index]
        )
    return 0

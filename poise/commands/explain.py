"""`poise explain`: print the rows behind a figure and why each counts.

    poise explain change_failure_rate --quarter 2026Q3 --team payments

Figures: deployment_frequency, lead_time, change_failure_rate, recovery_time, rework_rate,
incidents (and attribution), slos, budget_policy, budget, data_quality, toil, oncall.
"""

from __future__ import annotations

import argparse
import json

from metrics.explain import FIGURES, explain, figure_name
from metrics.wording import counted
from poise.commands.common import Context, open_context
from poise.commands.metrics import (
    add_period_scope_options,
    period_from,
    scope_from,
    settings_from,
)
from poise.console import out

NAME = "explain"
HELP = "print the rows behind a figure and why each counts"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} rows: give 0 (all) or more")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("figure", metavar="FIGURE", help=f"one of: {', '.join(FIGURES)}")
    add_period_scope_options(parser)
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format"
    )
    parser.add_argument(
        "--limit", type=_count, default=0, metavar="N", help="print at most N rows (0: all)"
    )


def run(args: argparse.Namespace) -> int:
    with open_context(args, create=False) as context:  # reads only: a missing file is a typo
        return _run(args, context)


def _run(args: argparse.Namespace, context: Context) -> int:
    period = period_from(args)
    scope = scope_from(args, context.engine)
    rows = explain(context.engine, args.figure, period, scope, settings_from(args, context.config))
    shown = rows[: args.limit] if args.limit > 0 else rows
    if args.format == "json":
        print(json.dumps(shown, indent=2, allow_nan=False))
        return 0
    name = figure_name(args.figure)
    out.print(
        f"[bold]{name}[/bold]: {counted(len(rows), 'row')}, {period.as_json()['from']} to "
        f"{period.as_json()['to']}, {scope.label()}"
    )
    for row in shown:
        when = str(row["at"] or "").replace("T", " ").replace(":00Z", "Z")
        mark = "counts  " if row["counts"] else "left out"
        out.print(f"  {mark}  {when:17}  {row['reason']}", markup=False)
    if len(shown) < len(rows):
        out.print(f"… {len(rows) - len(shown)} more (use --limit 0 or --format json)")
    return 0

"""`poise metrics`: print the scorecard: DORA, incidents, SLOs, attribution (table, JSON or CSV).

Period: `--quarter 2026Q3` (one not over: to date), or `--from`/`--to` (dates are midnight UTC;
`to` is excluded);
without either, the last 28 whole days (UTC) before today. Scope: `--team` or `--service`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from metrics import anomalies
from metrics.model import DEFAULT_PERIOD_DAYS, Period, Scope, Settings
from metrics.scorecard import scorecard, team_scorecards
from metrics.trends import period_over_period
from poise.commands.common import Context, add_config_option, add_db_option, note, open_context
from poise.commands.scorecard_table import (
    print_scorecard,
    print_team_summary,
)
from poise.console import out
from poise.errors import PoiseError
from poise.timeutil import (
    TimestampError,
    isoformat_z,
    parse_period_bound,
    quarter_bounds,
    utcnow,
)
from poise.warehouse import schema

NAME = "metrics"
HELP = "print the scorecard: DORA, incidents, SLOs, attribution (table, JSON or CSV)"


def _bound(text: str) -> Any:
    try:
        return parse_period_bound(text)
    except TimestampError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _quarter(text: str) -> str:
    try:
        quarter_bounds(text)
    except TimestampError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_period_scope_options(parser: argparse.ArgumentParser) -> None:
    """--from/--to or --quarter, --team or --service, and the settings overrides."""
    period = parser.add_argument_group("period (half-open, UTC)")
    period.add_argument(
        "--from",
        dest="start",
        type=_bound,
        metavar="DATE",
        help="first day (or ISO timestamp) included",
    )
    period.add_argument(
        "--to",
        dest="end",
        type=_bound,
        metavar="DATE",
        help="first day (or ISO timestamp) excluded",
    )
    period.add_argument(
        "--quarter", type=_quarter, metavar="YYYYQN", help="a calendar quarter, e.g. 2026Q3"
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--team", metavar="T", help="only this team's services")
    scope.add_argument("--service", metavar="S", help="only this service")
    parser.add_argument(
        "--slo-window",
        choices=("rolling", "month", "quarter"),
        help="evaluate every SLO over this window instead of its own (e.g. quarter for a quarterly report)",
    )
    parser.add_argument(
        "--benchmark-year",
        type=int,
        choices=(2021, 2023, 2024),
        help="DORA tier table (default: the config's, 2023)",
    )
    add_db_option(parser)
    add_config_option(parser)


def period_from(args: argparse.Namespace) -> Period:
    if args.quarter and (args.start or args.end):
        raise PoiseError("give either --quarter or --from/--to, not both")
    if args.quarter:
        period, cut = Period.quarter_to_date(args.quarter, now=utcnow())
        if cut:
            last = period.end - timedelta(days=1)
            note(
                f"{args.quarter} is not over: the figures cover it to date, "
                f"{period.start:%Y-%m-%d} to {last:%Y-%m-%d} (today, unfinished, left out)"
            )
        return period
    if args.start or args.end:
        end = args.end or Period.last_days(DEFAULT_PERIOD_DAYS, now=utcnow()).end
        start = args.start or end - timedelta(days=DEFAULT_PERIOD_DAYS)
        Period(start, end)  # an empty period is refused as given, before any cut
        period, cut = Period.to_date(start, end, now=utcnow())
        if cut:
            note(
                f"--to {_day_or_instant(end)} is still to come: the figures cover the period "
                "to date, "
                f"{period.start:%Y-%m-%d} to {period.end - timedelta(days=1):%Y-%m-%d} "
                "(today, unfinished, left out)"
            )
        return period
    return Period.last_days(DEFAULT_PERIOD_DAYS, now=utcnow())


def _day_or_instant(moment: datetime) -> str:
    if moment == moment.replace(hour=0, minute=0, second=0, microsecond=0):
        return f"{moment:%Y-%m-%d}"
    return isoformat_z(moment)


def scope_from(args: argparse.Namespace, engine: Engine) -> Scope:
    scope = Scope(team=args.team, service=args.service)
    if scope.team is not None:
        _must_exist(engine, schema.teams.c.name, scope.team, "team")
    if scope.service is not None:
        _must_exist(engine, schema.services.c.name, scope.service, "service")
    return scope


def _must_exist(engine: Engine, column: Any, name: str, what: str) -> None:
    with engine.connect() as connection:
        names = [row[0] for row in connection.execute(select(column).order_by(column))]
    if name not in names:
        known = ", ".join(names[:20]) + (" …" if len(names) > 20 else "") if names else "none yet"
        raise PoiseError(f"unknown {what} {name!r} (known: {known})")


def settings_from(args: argparse.Namespace, config: Any) -> Settings:
    return Settings.from_config(
        config, benchmark_year=args.benchmark_year, slo_window=args.slo_window
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_period_scope_options(parser)
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format (default table)",
    )
    parser.add_argument(
        "--compare", action="store_true", help="add the previous period and the change from it"
    )
    parser.add_argument(
        "--by-team", action="store_true", help="one scorecard per team (JSON: keyed by team)"
    )


def _anomalies(context: Context, period: Period, scope: Scope, settings: Settings) -> Any:
    """Every week of the period judged against its series' own last weeks."""
    return anomalies.weekly_judgements(
        context.engine, period, scope, settings, context.config.anomalies, now=utcnow()
    )


def run(args: argparse.Namespace) -> int:
    with open_context(args, create=False) as context:  # reads only: a missing file is a typo
        return _run(args, context)


def _run(args: argparse.Namespace, context: Context) -> int:
    period = period_from(args)
    settings = settings_from(args, context.config)
    if args.by_team:
        if args.team or args.service or args.compare:
            raise PoiseError("--by-team covers every team: drop --team, --service and --compare")
        documents = team_scorecards(context.engine, period, settings)
        judged = _anomalies(context, period, Scope(), settings)
        for team, document in documents.items():
            document["anomalies"] = anomalies.as_json(anomalies.for_team(judged, team))
        if args.format == "json":
            print(json.dumps(documents, indent=2, allow_nan=False))
        elif args.format == "csv":
            print(_csv({team: doc for team, doc in documents.items()}), end="")
        else:
            print_team_summary(out, period, documents)
        return 0
    scope = scope_from(args, context.engine)
    if args.compare:
        document = period_over_period(context.engine, period, scope, settings)
    else:
        document = scorecard(context.engine, period, scope, settings)
    document["anomalies"] = anomalies.as_json(_anomalies(context, period, scope, settings))
    if args.format == "json":
        print(json.dumps(document, indent=2, allow_nan=False))
    elif args.format == "csv":
        print(_csv({scope.team or scope.service or "": document}), end="")
    else:
        print_scorecard(out, document, history_weeks=context.config.anomalies.history_weeks)
    return 0


def _flatten(prefix: str, value: Any, rows: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, rows)
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        for index, item in enumerate(value):
            label = item.get("name") or item.get("service") or str(index)
            _flatten(f"{prefix}[{label}]", item, rows)
    elif isinstance(value, list):
        rows.append((prefix, " ".join(str(item) for item in value)))
    else:
        rows.append((prefix, value))


def _csv(documents: dict[str, dict[str, Any]]) -> str:
    """One `team,figure,value` row per leaf (`figure` is a dotted path into the JSON)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["team", "figure", "value"])
    for team, document in documents.items():
        rows: list[tuple[str, Any]] = []
        _flatten("", document, rows)
        for figure, value in rows:
            writer.writerow([team, figure, "" if value is None else value])
    return buffer.getvalue()

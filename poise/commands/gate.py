"""`poise gate`: may a deployment of this service ship now? (the error-budget release gate)

Exit codes: 0 ship, warn or exception; 3 freeze; 1 an unknown service or a failure; 2 a
usage error. Every answer is recorded in the warehouse's ledger (`gate_decisions`) unless
`--dry-run` or `--at` is given. docs/guardrails.md has the rules and CI examples.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from metrics.gate import CHANGE_TYPES, Decision
from metrics.gate_data import evaluate_gate, record_decision
from metrics.model import Settings
from poise.commands.common import add_config_option, add_db_option, open_context
from poise.errors import PoiseError
from poise.timeutil import TimestampError, isoformat_z, parse_period_bound, utcnow
from poise.warehouse.engine import write_refused

NAME = "gate"
HELP = "answer whether a deployment may ship now: ship / warn (exit 0) or freeze (exit 3)"
# Where CI systems put the commit and the person behind a pipeline.
REF_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA")
ACTOR_VARIABLES = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN")


def _moment(text: str) -> datetime:
    try:
        moment = parse_period_bound(text)
    except TimestampError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if moment > utcnow():  # a replay of the past: a future answer would rest on no data
        raise argparse.ArgumentTypeError(f"{text!r} is in the future: --at replays a past moment")
    return moment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", required=True, metavar="S", help="the service to deploy")
    parser.add_argument(
        "--change-type",
        choices=CHANGE_TYPES,
        default="feature",
        help="feature (default) is gated; fix and rollback always ship, as exceptions "
        "during a freeze",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output (default text)"
    )
    parser.add_argument(
        "--ref",
        metavar="REF",
        help="what is deployed (commit, tag, pipeline URL), kept in the ledger "
        f"(default: ${' or $'.join(REF_VARIABLES)})",
    )
    parser.add_argument(
        "--actor",
        metavar="WHO",
        help=f"who or what asked, kept in the ledger (default: ${' or $'.join(ACTOR_VARIABLES)})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="answer without recording it in the ledger"
    )
    parser.add_argument(
        "--at",
        type=_moment,
        metavar="TIME",
        help="answer as of this UTC time instead of now (replays; not recorded)",
    )
    add_db_option(parser)
    add_config_option(parser)


def _from_env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)


def _record(engine: Engine, decision: Decision, now: datetime, **who: str | None) -> int:
    try:
        return record_decision(engine, decision, now, **who)
    except DBAPIError as exc:
        refused = write_refused(exc)
        if refused is None:
            raise
        raise PoiseError(
            f"the warehouse refused to record the decision ({refused}): the answer was "
            f"{decision.decision!r}; answer with --dry-run to leave the ledger alone, or give "
            "the gate a database role that can write"
        ) from None


def run(args: argparse.Namespace) -> int:
    # The ledger is the only write, and an answer from a warehouse created just now would be
    # a `ship` for every service of the config (no SLOs, no data): a typo in --db in a
    # pipeline must fail, not pass.
    with open_context(args, create=False) as context:
        now = args.at or utcnow()
        policy = context.config.budget_policy.for_service(args.service)
        decision = evaluate_gate(
            context.engine,
            args.service,
            args.change_type,
            policy,
            Settings.from_config(context.config),
            now,
            replay=args.at is not None,
        )
        ref = args.ref or _from_env(REF_VARIABLES)
        actor = args.actor or _from_env(ACTOR_VARIABLES)
        recorded = None
        if not (args.dry_run or args.at):
            recorded = _record(context.engine, decision, now, ref=ref, actor=actor)
    if args.format == "json":
        document = {
            **decision.as_json(),
            "decided_at": isoformat_z(now),
            "ref": ref,
            "actor": actor,
            "recorded_id": recorded,
        }
        print(json.dumps(document, indent=2, allow_nan=False))
    else:
        print(decision.reason)
    return decision.exit_code

"""The release gate's reads and writes: a service's SLOs evaluated now, how fresh their
samples are, and the ledger of decisions (`gate_decisions`)."""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, func, insert, or_, select

from metrics import reliability, sli
from metrics.frames import _slos, in_scope, read
from metrics.gate import Decision, Freshness, decide, evaluation_instant
from metrics.model import Period, Scope, Settings
from poise.config import BudgetPolicy
from poise.errors import PoiseError
from poise.timeutil import ensure_utc
from poise.warehouse import schema
from poise.warehouse.engine import read_consistently

LEDGER_COLUMNS = [
    "id",
    "decided_at",
    "service",
    "team",
    "change_type",
    "decision",
    "reason",
    "ref",
    "actor",
]


class UnknownService(PoiseError):
    """The gate was asked about a service the warehouse does not know."""


def _check_service(connection: Connection, service: str) -> None:
    names = list(
        connection.execute(
            select(schema.services.c.name).order_by(schema.services.c.name)
        ).scalars()
    )
    if service in names:
        return
    close = difflib.get_close_matches(service, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(names[:10]) + (" …" if len(names) > 10 else "") if names else "none yet"
    raise UnknownService(f"unknown service {service!r}{hint}; known: {listed}")


def freshness(
    connection: Connection,
    names: list[str],
    until: datetime | None = None,
    *,
    replay: bool = False,
) -> dict[str, Freshness]:
    """Per SLO: its newest sample, and the last sync that could have brought more
    (Prometheus per SLO; otherwise the latest import of SLI samples).

    `until`: only samples whose hour began before it count, so a replay (`--at`) judges
    the data as it stood then, not the hours (or the backfill of a gap) stored since;
    `replay` also leaves out the syncs after `until`, which had not happened then."""
    if not names:
        return {}
    x, state = schema.sli_samples, schema.sync_state
    newest_query = select(x.c.slo, func.max(x.c.ts)).where(x.c.slo.in_(names))
    if until is not None:
        newest_query = newest_query.where(x.c.ts < until)
    newest = dict(connection.execute(newest_query.group_by(x.c.slo)).all())
    syncs = connection.execute(
        select(
            state.c.source,
            state.c.scope,
            state.c.last_success_at,
            state.c.last_error,
            state.c.last_error_at,
        ).where(
            or_(
                (state.c.source == "prometheus") & state.c.scope.in_(names),
                (state.c.source == "import") & (state.c.stream == "sli"),
            )
        )
    ).all()
    per_slo = {row.scope: row for row in syncs if row.source == "prometheus"}
    imports = [row for row in syncs if row.source == "import"]
    latest_import = max(
        imports, key=lambda row: row.last_success_at or row.last_error_at, default=None
    )
    out = {}
    by = until if replay else None
    for name in names:
        row = per_slo.get(name, latest_import)
        synced = row.last_success_at if row is not None else None
        failed = row.last_error_at if row is not None else None
        out[name] = Freshness(
            newest=newest.get(name),
            last_sync=synced if _by(synced, by) else None,
            last_error=row.last_error if row is not None and _by(failed, by) else None,
            last_error_at=failed if _by(failed, by) else None,
        )
    return out


def _by(moment: datetime | None, until: datetime | None) -> bool:
    """Whether `moment` is known and not after `until` (no bound: any known moment)."""
    return moment is not None and (until is None or ensure_utc(moment) <= until)


def evaluate_gate(
    engine: Engine,
    service: str,
    change_type: str,
    policy: BudgetPolicy,
    settings: Settings,
    now: datetime,
    *,
    replay: bool = False,
) -> Decision:
    """The gate's answer for `service` at `now` (its SLOs evaluated at the last whole hour);
    `replay`: `now` is a past instant (`--at`), answered from what was known then."""
    at = evaluation_instant(now)

    def evaluate(
        connection: Connection,
    ) -> tuple[list[dict[str, Any]], dict[str, Freshness], dict[str, Any]]:
        _check_service(connection, service)
        slos = _slos(connection, Scope(service=service))
        names = slos["name"].tolist()
        sums = sli.interval_sums(connection, reliability.requests_for(slos, at, settings, {}))
        evaluated = reliability.evaluate_all(slos, sums, at, settings)
        fresh = freshness(connection, names, ensure_utc(now), replay=replay)
        o = schema.slos
        display = (
            dict(
                connection.execute(
                    select(o.c.name, o.c.display_name).where(o.c.name.in_(names))
                ).all()
            )
            if names
            else {}
        )
        return evaluated, fresh, display

    # a pipeline's gate must not fail on a sync committing beside it (one snapshot)
    evaluated, fresh, display = read_consistently(engine, evaluate)
    return decide(service, change_type, evaluated, fresh, policy, now, display)


def record_decision(
    engine: Engine,
    decision: Decision,
    decided_at: datetime,
    *,
    ref: str | None = None,
    actor: str | None = None,
) -> int:
    """Append the decision to the ledger; returns its id."""
    with engine.begin() as connection:
        result = connection.execute(
            insert(schema.gate_decisions).values(
                decided_at=decided_at,
                service=decision.service,
                change_type=decision.change_type,
                decision=decision.decision,
                reason=decision.reason,
                details=decision.details(),
                ref=ref[:400] if ref else None,
                actor=actor[:200] if actor else None,
            )
        )
        return int(result.inserted_primary_key[0])


def ledger(connection: Connection, period: Period, scope: Scope) -> pd.DataFrame:
    """The gate's decisions in the period for the scope, newest first, with each
    service's team (None for a service the warehouse no longer holds)."""
    g, s = schema.gate_decisions, schema.services
    statement = (
        select(
            g.c.id,
            g.c.decided_at,
            g.c.service,
            s.c.team,
            g.c.change_type,
            g.c.decision,
            g.c.reason,
            g.c.ref,
            g.c.actor,
        )
        .select_from(g.outerjoin(s, s.c.name == g.c.service))
        .where(g.c.decided_at >= period.start, g.c.decided_at < period.end)
        .order_by(g.c.decided_at.desc(), g.c.id.desc())
    )
    if not scope.is_org:
        statement = statement.where(in_scope(s, scope))
    frame = read(connection, statement, times=["decided_at"])
    return frame if len(frame) else pd.DataFrame(columns=LEDGER_COLUMNS)


def ledger_counts(frame: pd.DataFrame) -> dict[str, Any]:
    """How many decisions of each kind a ledger extract holds."""
    counts = frame["decision"].value_counts() if len(frame) else pd.Series(dtype=int)
    return {kind: int(counts.get(kind, 0)) for kind in ("ship", "warn", "freeze", "exception")}

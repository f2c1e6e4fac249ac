"""The guardrails section of the quarterly report: certificates that are availability risks,
the weeks flagged as anomalies, and what the release gate answered (docs/guardrails.md).

Figures come from `metrics.certificates`, `metrics.anomalies` and `metrics.gate_data`;
nothing here computes one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from metrics import Period, Scope, Settings, anomalies, certificates, gate_data
from poise.config import AnomalyConfig
from poise.timeutil import quarter_of
from poise.warehouse.engine import read_snapshot
from reports.model import Cell, Column, Entry, Evidence, Fmt, Paragraph, Section, Table

LISTED_FLAGS = 40
LISTED_DECISIONS = 25
RISK_WORDS = {
    "expired": "expired",
    "expiring": "expires within 30 days",
    "invalid": "does not verify",
    "unreachable": "no answer at the last check",
}


def guardrails_section(
    engine: Engine,
    period: Period,
    scope: Scope,
    settings: Settings,
    now: datetime,
    rule: AnomalyConfig | None = None,
) -> tuple[Section, list[Evidence]]:
    """The section and the rows behind it (workbook sheets)."""
    with read_snapshot(engine) as connection:
        stored = certificates.load(connection, scope)
        decisions = gate_data.ledger(connection, period, scope)
    risks = certificates.expiry_risks(stored, now)
    rule = rule or AnomalyConfig()
    judged = anomalies.weekly_judgements(engine, period, scope, settings, rule, now=now)
    flags = anomalies.flagged(judged)
    section = Section(
        "Guardrails: certificates, unusual weeks, release gate",
        "guardrails",
        [
            Paragraph(
                "What the guardrails of docs/guardrails.md found: certificates that put "
                "availability at risk, weeks that departed from their own recent history, "
                "and the answers the error-budget release gate gave pipelines.",
                "note",
            )
        ],
        [
            _certificates(stored, risks, now, period),
            _anomalies(flags, judged, rule),
            _gate(decisions),
        ],
    )
    evidence = [
        Evidence(
            "Certificates checked, with their risk at the report's generation",
            "Rows certificates",
            certificates.with_risk(stored, now),
            "behind the certificates at risk",
        ),
        Evidence(
            "Every week judged for anomalies",
            "Rows anomaly weeks",
            judged,
            "median and band of the previous weeks, and whether the week was flagged",
        ),
        Evidence(
            "Release gate decisions",
            "Rows gate decisions",
            decisions,
            "every decision poise gate recorded",
        ),
    ]
    return section, evidence


def _certificates(
    stored: pd.DataFrame, risks: pd.DataFrame, now: datetime, period: Period
) -> Section:
    # The warehouse keeps only the latest check of each endpoint, not its history, so the
    # certificate served at the end of the quarter is unknown: the state shown is the export's.
    blocks: list[Any] = [
        Paragraph(
            f"Unlike the rest of this report, certificates are shown as of the export "
            f"({now:%Y-%m-%d %H:%M} UTC), not as of the end of {quarter_of(period.start)}: "
            "Poise keeps only the latest check of each endpoint, so which certificate was "
            "served during the quarter is not known.",
            "note",
        )
    ]
    if stored.empty:
        blocks.append(
            Paragraph(
                "No TLS certificate is checked for this scope: list the endpoints under "
                "`certificates:` in poise.yaml and `poise sync` checks them.",
                "note",
            )
        )
    else:
        blocks.append(
            Paragraph(
                f"{len(risks)} of {len(stored)} certificates checked are availability risks "
                f"at the export, {now:%Y-%m-%d %H:%M} UTC (expired, expiring within 30 days, "
                "failing verification, or not answering at their latest check).",
                "lead" if len(risks) else "body",
            )
        )
    rows = tuple(
        (
            row["service"],
            row["id"],
            RISK_WORDS.get(str(row["risk"]), str(row["risk"])),
            _days_left(row["days_left"]),
            None if pd.isna(row["not_after"]) else row["not_after"].to_pydatetime(),
            str(row["verify_error"] or row["error"] or ""),
        )
        for _, row in risks.iterrows()
    )
    blocks.append(
        Table(
            "Certificates at risk",
            (
                Column("service", "Service"),
                Column("id", "Endpoint"),
                Column("risk", "Risk"),
                Column("days_left", "Days left", Fmt.COUNT, compact=True),
                Column("not_after", "Expires", Fmt.DATETIME),
                Column("problem", "Problem"),
            ),
            rows,
            "Certificates at risk",
            empty_text="No certificate is at risk.",
        )
    )
    return Section(
        f"Certificates at risk, as of the export ({now:%Y-%m-%d})", "certificates", blocks
    )


def _days_left(days: float | None) -> Entry:
    """Whole days left, or the words an expired or nearly expired certificate reads better in
    ("expired 3 days ago" rather than -3); the exact fraction is in "Rows certificates"."""
    if days is None or pd.isna(days):
        return None
    if days < 0:
        ago = round(-days)
        if ago < 1:
            return Cell("expired less than a day ago", Fmt.TEXT)
        return Cell(f"expired {ago} {'day' if ago == 1 else 'days'} ago", Fmt.TEXT)
    if days < 1:
        return Cell("less than a day", Fmt.TEXT)
    return round(float(days))  # the engine's own sentences round days too ("in 12 days")


def _anomalies(flags: pd.DataFrame, judged: pd.DataFrame, rule: AnomalyConfig) -> Section:
    worse = flags[flags["worse"].astype(bool)] if len(flags) else flags
    blocks: list[Any] = [
        Paragraph(anomalies.rule_sentence(rule), "note"),
        Paragraph(
            f"{len(flags)} of {len(judged)} judged series-weeks were flagged, "
            f"{len(worse)} of them in the bad direction; the table below gives each, week by "
            "week."
            if len(judged)
            else "No whole week of the quarter could be judged (too little history).",
        ),
    ]
    listed = flags.head(LISTED_FLAGS)
    blocks.append(
        Table(
            "Unusual weeks",
            (
                Column("week", "Week of", Fmt.DATE),
                Column("what", "Series"),
                Column("figure", "Figure"),
                Column("value", "Value", compact=True),
                Column("usual", "Usual range"),
                Column("direction", "Direction"),
            ),
            tuple(
                (
                    row["week_start"].to_pydatetime(),
                    anomalies.subject(row),
                    row["label"],
                    anomalies.value_text(row),
                    anomalies.usual_range(row),
                    "worse" if row["worse"] else "better",
                )
                for _, row in listed.iterrows()
            ),
            "Unusual weeks",
            f"The first {LISTED_FLAGS} of {len(flags)}; the workbook lists every judged week."
            if len(flags) > LISTED_FLAGS
            else "",
            empty_text="No week of the quarter departed from its own recent history.",
        )
    )
    return Section("Unusual weeks", "anomalies", blocks)


def _gate(decisions: pd.DataFrame) -> Section:
    counts = gate_data.ledger_counts(decisions)
    blocks: list[Any] = [
        Paragraph(
            f"`poise gate` answered {len(decisions)} times in the quarter: "
            + ", ".join(
                f"{counts[kind]} {kind}" for kind in ("ship", "warn", "freeze", "exception")
            )
            + ". A freeze stops feature releases while an error budget is spent or a "
            "page-level burn alert fires; an exception is a fix or rollback shipped during one."
            if len(decisions)
            else "No pipeline asked the release gate (`poise gate`) in the quarter.",
        )
    ]
    held = decisions[decisions["decision"].isin(["freeze", "exception", "warn"])]
    blocks.append(
        Table(
            "Release gate: freezes, exceptions and warnings",
            (
                Column("decided_at", "When", Fmt.DATETIME),
                Column("service", "Service"),
                Column("change_type", "Change"),
                Column("decision", "Decision"),
                Column("reason", "Reason"),
            ),
            tuple(
                (
                    row.decided_at.to_pydatetime(),
                    row.service,
                    row.change_type,
                    row.decision,
                    row.reason,
                )
                for row in held.head(LISTED_DECISIONS).itertuples(index=False)
            ),
            "Gate decisions",
            f"The latest {LISTED_DECISIONS} of {len(held)}; the workbook lists every decision."
            if len(held) > LISTED_DECISIONS
            else "",
            empty_text="No freeze, exception or warning in the quarter.",
        )
    )
    return Section("Release gate", "gate", blocks)

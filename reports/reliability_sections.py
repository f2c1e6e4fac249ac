"""The reliability section: SLO attainment over the calendar quarter and the budget policy."""

from __future__ import annotations

from typing import Any

from reports.figures import LISTED_FREEZE_DEPLOYMENTS, Inputs, freeze_sentence, slo_table
from reports.formats import display
from reports.model import (
    Chart,
    ChartKind,
    Column,
    Fmt,
    Paragraph,
    Section,
    Series,
    Table,
)


def reliability_section(inputs: Inputs) -> Section:
    slos = inputs.quarter_slos
    blocks: list[Any] = [
        Paragraph(
            "Attainment over the calendar quarter: the SLI summed over every sample of the "
            "quarter, against each SLO's target. The error budget is the quarter's: how much "
            "of the failures the target allows over the quarter were left unspent.",
            "note",
        )
    ]
    if slos:
        blocks.append(
            Chart(
                "Error budget left at the end of the quarter",
                ChartKind.HBAR,
                tuple(str(s.get("name")) for s in slos),
                (Series("budget left", tuple(s.get("budget_remaining") for s in slos)),),
                "error budget left over the quarter (below 0: overspent)",
                Fmt.PERCENT1,
                "SLO budget chart",
                notes=tuple(
                    "no data"
                    if s.get("sli") is None
                    else f"SLI {display(s['sli'], Fmt.PERCENT3)} for {display(s.get('target'), Fmt.PERCENT3)}"
                    for s in slos
                ),
            )
        )
    blocks.append(slo_table(slos, "SLO attainment over the calendar quarter", "SLO attainment"))
    return Section("Reliability: SLO attainment", "reliability", blocks, [_policy_section(inputs)])


def _policy_section(inputs: Inputs) -> Section:
    freezes, shipped = inputs.freezes, inputs.freeze_deployments
    blocks: list[Any] = [
        Paragraph(
            "Budget policy: a service whose SLO has exhausted its error budget is in release "
            "freeze (only rollbacks and fixes should ship) until the budget recovers.",
            "note",
        ),
        Paragraph(freeze_sentence(inputs)),
    ]
    freeze_rows = tuple(
        (
            row.service,
            row.team,
            ", ".join(row.slos) if isinstance(row.slos, list | tuple) else str(row.slos),
            row.start.to_pydatetime(),
            row.end.to_pydatetime(),
        )
        for row in freezes.itertuples(index=False)
    )
    blocks.append(
        Table(
            "Release freezes",
            (
                Column("service", "Service"),
                Column("team", "Team"),
                Column("slos", "Exhausted SLOs"),
                Column("start", "Frozen from", Fmt.DATETIME),
                Column("end", "Until", Fmt.DATETIME),
            ),
            freeze_rows,
            "Freezes",
            empty_text="No release freeze in the quarter.",
        )
    )
    listed = shipped.head(LISTED_FREEZE_DEPLOYMENTS)
    caption = (
        f"The first {LISTED_FREEZE_DEPLOYMENTS} of {len(shipped)}; the workbook lists all."
        if len(shipped) > LISTED_FREEZE_DEPLOYMENTS
        else ""
    )
    blocks.append(
        Table(
            "Deployments during a freeze",
            (
                Column("id", "Deployment"),
                Column("service", "Service"),
                Column("deployed_at", "Deployed", Fmt.DATETIME),
                Column("kind", "Kind"),
            ),
            tuple(
                (
                    row.id,
                    row.service,
                    row.deployed_at.to_pydatetime(),
                    "rollback or fix (allowed)" if row.exempt else "other change",
                )
                for row in listed.itertuples(index=False)
            ),
            "Freeze deployments",
            caption,
            empty_text="No deployment shipped during a freeze.",
        )
    )
    return Section("Budget policy: release freezes", "policy", blocks)

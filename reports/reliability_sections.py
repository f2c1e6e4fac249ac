"""The reliability section: SLO attainment over the calendar quarter and the budget policy."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from reports.figures import (
    LISTED_FREEZE_DEPLOYMENTS,
    Inputs,
    freeze_sentence,
    slo_table,
    window_text,
)
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

LISTED_FREEZES = 10
# bars of the budget chart: as many as fit one Letter page (a chart cannot split)
CHARTED_SLOS = 30


def reliability_section(inputs: Inputs) -> Section:
    slos = inputs.quarter_slos
    blocks: list[Any] = [
        Paragraph(
            "Attainment over the calendar quarter: the SLI summed over every sample of the "
            "quarter, against each SLO's target. The error budget is the quarter's: how much "
            "of the failures the target allows over the quarter were left unspent.",
            "note",
        ),
        # The table comes before the chart: its rows flow from page to page, while the chart
        # (a bar per SLO, most of a page for two dozen SLOs) cannot split, and placed first it
        # left the page before it half empty.
        slo_table(
            slos,
            "SLO attainment over the calendar quarter",
            "SLO attainment",
            "Status judged over the whole calendar quarter (dates in the Window column). The "
            "team scorecards judge the same SLOs over their own windows ending with the quarter.",
        ),
    ]
    blocks += _status_differences(inputs)
    if slos:
        blocks.append(_budget_chart(slos))
    return Section("Reliability: SLO attainment", "reliability", blocks, [_policy_section(inputs)])


def _budget_chart(slos: list[Any]) -> Chart:
    """A bar per SLO, the SLOs with the least budget left first to be drawn: a chart cannot
    split across pages, and a bar per SLO of 300 made it 73 inches tall, cut off by the page's
    foot after the first thirty (the table above lists every SLO, the workbook too)."""
    drawn = slos
    caption = ""
    if len(slos) > CHARTED_SLOS:
        least = sorted(
            range(len(slos)),
            key=lambda index: (
                slos[index].get("budget_remaining") is None,
                slos[index].get("budget_remaining") or 0.0,
            ),
        )[:CHARTED_SLOS]
        drawn = [slos[index] for index in sorted(least)]
        caption = (
            f"The {CHARTED_SLOS} of {len(slos)} SLOs with the least error budget left; the "
            "table above gives every one."
        )
    return Chart(
        "Error budget left at the end of the quarter",
        ChartKind.HBAR,
        tuple(str(s.get("name")) for s in drawn),
        (Series("budget left", tuple(s.get("budget_remaining") for s in drawn)),),
        "error budget left over the quarter (below 0: overspent)",
        Fmt.PERCENT1,
        "SLO budget chart",
        caption,
        notes=tuple(
            "no data"
            if s.get("sli") is None
            else f"SLI {display(s['sli'], Fmt.PERCENT3)} for {display(s.get('target'), Fmt.PERCENT3)}"
            for s in drawn
        ),
    )


def _status_differences(inputs: Inputs) -> list[Any]:
    """Name every SLO whose status over the quarter differs from its status over its own
    window at the quarter's end, so two tables that disagree say why.

    A table rather than a sentence: a sentence grew unreadable past half a dozen SLOs and
    was cut off ("and 2 more"); table rows flow across pages and become a workbook sheet."""
    own = {slo.get("name"): slo for slo in inputs.current.get("slos", [])}
    pairs = [
        (slo, own[slo.get("name")])
        for slo in inputs.quarter_slos
        if slo.get("name") in own and own[slo.get("name")].get("status") != slo.get("status")
    ]
    if not pairs:
        return []
    lead = Paragraph(
        f"{len(pairs)} of {len(inputs.quarter_slos)} SLOs have a different status here than in "
        "the team scorecards, because the window differs; the table below names each. The "
        "status over the SLO's own window is the one the budget policy and the release gate "
        "act on.",
        "note",
    )
    table = Table(
        "SLOs whose status differs by window",
        (
            Column("name", "SLO"),
            Column("service", "Service"),
            Column("own_window", "Own window", compact=True),
            Column("own_status", "Status over its own window", Fmt.STATUS),
            Column("quarter_status", "Status over the quarter", Fmt.STATUS),
        ),
        tuple(
            (
                quarter.get("name"),
                quarter.get("service"),
                window_text(rolling),
                rolling.get("status"),
                quarter.get("status"),
            )
            for quarter, rolling in pairs
        ),
        "SLO status by window",
    )
    return [lead, table]


def _policy_section(inputs: Inputs) -> Section:
    shipped = inputs.freeze_deployments
    blocks: list[Any] = [
        Paragraph(
            "Budget policy: a service whose SLO has exhausted its error budget is in release "
            "freeze (only rollbacks and fixes should ship) until the budget recovers.",
            "note",
        ),
        Paragraph(freeze_sentence(inputs)),
    ]
    blocks += _freeze_tables(inputs)
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


def _freeze_tables(inputs: Inputs) -> list[Any]:
    """The freezes per service, then the longest ones.

    A budget hovering around zero starts and ends a freeze every hour or two, so one row per
    freeze would list dozens of short flaps; per service the engine's `budget_policy` block
    (`metrics.scorecard`) already gives the intervals, the frozen hours and what shipped.
    The workbook's "Rows freezes" sheet keeps every interval."""
    frozen = inputs.current.get("budget_policy", {}).get("frozen_services", [])
    rows = []
    for block in frozen:
        intervals = block.get("intervals", [])
        spans = [_span(interval) for interval in intervals]
        slos = sorted({slo for interval in intervals for slo in interval.get("slos", [])})
        rows.append(
            (
                block["service"],
                block.get("team"),
                ", ".join(slos),
                len(intervals),
                block.get("frozen_hours"),
                max((hours for _start, _end, hours in spans), default=None),
                min((start for start, _end, _hours in spans), default=None),
                max((end for _start, end, _hours in spans), default=None),
                block.get("deployments", 0),
                block.get("exempt", 0),
            )
        )
    tables: list[Any] = [
        Table(
            "Release freezes per service",
            (
                Column("service", "Service"),
                Column("team", "Team"),
                Column("slos", "Exhausted SLOs"),
                Column("count", "Freezes", Fmt.COUNT),
                Column("hours", "Frozen, total", Fmt.HOURS),
                Column("longest", "Longest", Fmt.HOURS),
                Column("first", "First frozen", Fmt.DATETIME),
                Column("last", "Last thawed", Fmt.DATETIME),
                # two numbers rather than "128 (18 allowed)": narrower, and numbers in the
                # workbook
                Column("shipped", "Deployed meanwhile", Fmt.COUNT),
                Column("exempt", "Of them allowed", Fmt.COUNT),
            ),
            tuple(rows),
            "Freezes per service",
            "A freeze lasts while any of the service's SLOs has no error budget left, checked "
            "hour by hour; a budget hovering around zero freezes and thaws a service many "
            "times. Frozen total is the sum of its freezes, clipped to the quarter; "
            "the allowed deployments are rollbacks and fixes.",
            empty_text="No release freeze in the quarter.",
        )
    ]
    freezes = inputs.freezes
    if len(freezes) > len(rows):  # some service froze more than once: name the longest
        hours = (freezes["end"] - freezes["start"]).dt.total_seconds() / 3600.0
        longest = freezes.assign(hours=hours).sort_values(
            ["hours", "start"], ascending=[False, True], kind="stable"
        )
        listed = longest.head(LISTED_FREEZES)
        tables.append(
            Table(
                "Longest release freezes",
                (
                    Column("service", "Service"),
                    Column("slos", "Exhausted SLOs"),
                    Column("start", "Frozen from", Fmt.DATETIME),
                    Column("end", "Until", Fmt.DATETIME),
                    Column("hours", "Length", Fmt.HOURS),
                ),
                tuple(
                    (
                        row.service,
                        ", ".join(row.slos)
                        if isinstance(row.slos, list | tuple)
                        else str(row.slos),
                        row.start.to_pydatetime(),
                        row.end.to_pydatetime(),
                        row.hours,
                    )
                    for row in listed.itertuples(index=False)
                ),
                "Longest freezes",
                f"The {len(listed)} longest of {len(freezes)} freezes; the workbook's "
                "“Rows freezes” sheet lists every one.",
            )
        )
    return tables


def _span(interval: Mapping[str, Any]) -> tuple[datetime, datetime, float]:
    start = pd.Timestamp(interval["from"]).to_pydatetime()
    end = pd.Timestamp(interval["to"]).to_pydatetime()
    return start, end, (end - start).total_seconds() / 3600.0

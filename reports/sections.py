"""The report's sections: summary, team scorecards, trends, coverage and appendix.

Nothing here computes a figure: every number is read from what the metrics engine returned
(`reports.figures.Inputs`), and only chosen, ordered and worded here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from metrics.trends import holds_data, nothing_held
from reports.figures import (
    DETAIL_FIGURES,
    DORA_FIGURES,
    INCIDENT_FIGURES,
    Card,
    Figure,
    Inputs,
    freeze_sentence,
    get,
    headline,
    incident_sentence,
    is_empty,
    number,
    slo_counts,
    slo_table,
    tier_of,
)
from reports.formats import display
from reports.model import (
    PALETTE,
    BulletList,
    Cell,
    Chart,
    ChartKind,
    Column,
    Definitions,
    Entry,
    Fmt,
    Paragraph,
    Section,
    Series,
    Table,
)
from reports.summary import change_text, compared_fmt, count_phrase, paragraph

# --- sections ---------------------------------------------------------------------------

ROLLING_CAPTION = (
    "Status at the end of the quarter, judged over each SLO's own window (usually its last "
    "28 days; dates in the Window column), as the dashboard and the release gate judge it. "
    "The Reliability section judges the same SLOs over the whole calendar quarter, so a "
    "status can differ: failures late in the quarter weigh more in 28 days than in 13 weeks."
)


# what `is_empty` finds none of
NOTHING_HELD = (
    "the warehouse holds no production deployment, deployed change, incident or SLI sample"
)


def summary_section(inputs: Inputs) -> Section:
    current, previous = inputs.current, inputs.previous
    blocks: list[Any] = [Paragraph(inputs.unfinished, "lead")] if inputs.unfinished else []
    if is_empty(current):
        blocks.append(
            Paragraph(
                f"No data for {inputs.quarter}: {NOTHING_HELD} in this quarter for this scope,"
                " so the figures below count 0 deployments and otherwise read “no data”. Check "
                "that the collectors ran for the quarter (poise sync) or that the right "
                "quarter was asked for.",
                "lead",
            )
        )
    blocks += figure_paragraphs(current, previous, DORA_FIGURES, "the quarter before", "lead")
    blocks.append(Paragraph(_reliability_sentence(inputs), "lead"))
    blocks.append(Paragraph(incident_sentence(current, previous, inputs.to_date), "lead"))
    blocks.append(Paragraph(freeze_sentence(inputs), "lead"))
    table, uncompared = _headline_table(current, previous, inputs.to_date)
    blocks.append(table)
    blocks.append(
        Paragraph(
            "Tiers follow the benchmark table of the State of DevOps report named in the "
            "appendix; a figure resting on too small a sample reads “insufficient data” "
            "instead of a tier. Change is against the quarter before: percent for "
            "quantities, percentage points for rates; where two figures round alike but "
            "differ, both are shown with one more decimal." + uncompared,
            "note",
        )
    )
    return Section("Executive summary", "summary", blocks)


def figure_paragraphs(
    current: Card, previous: Card | None, figures: Sequence[Figure], before: str, style: str = ""
) -> list[Paragraph]:
    """The figures in words against the period before. Nothing for a period without data
    (the caller says so once, rather than "not enough data" figure by figure), and a
    period before that holds nothing (`holds_data`) said once, not after each figure
    ("was 70.5 per week (no figure for …)")."""
    if is_empty(current):
        return []
    headlines = [headline(figure, current, previous) for figure in figures]
    blocks = []
    if previous is None or not holds_data(previous):
        blocks.append(Paragraph(nothing_held(before), style))
        headlines = [replace(item, nothing_before=True) for item in headlines]
    return [*blocks, Paragraph(paragraph(headlines), style)]


def _reliability_sentence(inputs: Inputs) -> str:
    slos = list(inputs.current.get("slos", []))
    if not slos:
        return "No SLO is defined for this scope."
    counts = slo_counts(slos)
    parts = [
        f"{counts['ok']} ok",
        f"{counts['at_risk']} at risk",
        f"{counts['exhausted']} exhausted",
    ]
    if counts["no data"]:
        parts.append(f"{counts['no data']} without data")
    end, span = (
        ("At the end of the days covered", "the quarter so far")
        if inputs.to_date
        else ("At the end of the quarter", "the whole calendar quarter")
    )
    text = (
        f"{end}, each judged over its own window (usually its last 28 days), of "
        f"{count_phrase(len(slos), 'SLO')}: {', '.join(parts)}."
    )
    measured = [s for s in inputs.quarter_slos if s.get("sli") is not None]
    if measured:
        met = sum(1 for s in measured if s["sli"] >= s["target"])
        text += f" Over {span}, {met} of {len(measured)} SLOs with data met their target."
    return text


def _headline_table(current: Card, previous: Card, to_date: bool = False) -> tuple[Table, str]:
    """The headline table, and a sentence naming the figures it gives no change for (empty
    when every row has one). A count of a quarter not over is not compared with the whole
    quarter before: 86 incidents in 58 days read as "−41 %"."""
    rows: list[tuple[Entry, ...]] = []
    uncompared: list[str] = []
    partial: list[str] = []
    for figure in (*DORA_FIGURES, *INCIDENT_FIGURES):
        item = headline(figure, current, previous)
        sample = get(current, *figure.sample_path) if figure.sample_path else None
        moved = change_text(item)
        if to_date and figure.fmt is Fmt.COUNT and moved:
            partial.append(figure.label)
            moved = "–"
        if not moved and item.current is not None and item.previous is not None:
            # both quarters have the figure but the engine gives no change for it
            uncompared.append(figure.label)
            moved = "–"
        fmt = compared_fmt(item)
        rows.append(
            (
                figure.name,
                Cell(item.current, fmt),
                Cell(item.previous, fmt),
                moved,
                Cell(item.tier, Fmt.TIER) if figure.tier_path else "",
                f"{sample:,} {figure.sample_noun}" if sample is not None else "",
            )
        )
    columns = (
        Column("figure", "Figure"),
        Column("current", "This quarter", Fmt.DECIMAL1),
        Column("previous", "Quarter before", Fmt.DECIMAL1),
        Column("change", "Change", compact=True),
        Column("tier", "Tier", Fmt.TIER),
        Column("sample", "Sample", compact=True),
    )
    table = Table("Headline figures", columns, tuple(rows), "Headline figures")
    note = ""
    if partial:
        note += (
            f" {' and '.join(partial)}: no change (–), as this quarter is not over and a "
            "count of its days so far is not comparable with the whole quarter before."
        )
    if uncompared:
        names = " and ".join(uncompared)
        note += (
            f" {names} {'has' if len(uncompared) == 1 else 'have'} no change (–): Poise's "
            "quarter-over-quarter comparison does not cover "
            f"{'it' if len(uncompared) == 1 else 'them'} yet, so both quarters' figures are "
            "shown to be compared by eye."
        )
    return table, note


def _scorecard_table(card: Card, title: str, sheet: str) -> Table:
    rows: list[tuple[Entry, ...]] = []
    for figure in (*DORA_FIGURES, *DETAIL_FIGURES, *INCIDENT_FIGURES):
        sample = get(card, *figure.sample_path) if figure.sample_path else None
        rows.append(
            (
                figure.name,
                Cell(get(card, *figure.path), figure.fmt),
                Cell(tier_of(card, figure), Fmt.TIER) if figure.tier_path else "",
                f"{sample:,} {figure.sample_noun}" if sample is not None else "",
            )
        )
    columns = (
        Column("figure", "Figure"),
        Column("value", "Value", Fmt.DECIMAL1),
        Column("tier", "Tier", Fmt.TIER),
        Column("sample", "Sample", compact=True),
    )
    return Table(title, columns, tuple(rows), sheet)


def teams_section(inputs: Inputs) -> Section:
    blocks: list[Any] = []
    if inputs.scope_team is None and len(inputs.teams) > 1:
        blocks.append(_teams_side_by_side(inputs.teams))
    subsections = []
    anchors: set[str] = set()
    for team, card in sorted(inputs.teams.items()):
        before = inputs.previous_teams.get(team)
        said = figure_paragraphs(
            card, before, DORA_FIGURES[:4], f"the quarter before for team {team}"
        ) or [Paragraph(f"No data for team {team} in {inputs.quarter}: {NOTHING_HELD}.")]
        team_blocks: list[Any] = [
            *said,
            _scorecard_table(card, f"Scorecard: {team}", f"Team {team}"),
            slo_table(
                card.get("slos", []),
                f"SLOs at the end of the quarter, each over its own window: {team}",
                f"SLOs {team}",
                ROLLING_CAPTION,
            ),
        ]
        subsections.append(Section(f"Team {team}", _anchor(team, anchors), team_blocks))
    title = "Team scorecards" if inputs.scope_team is None else "Team scorecard"
    return Section(title, "teams", blocks, subsections)


def _teams_side_by_side(teams: dict[str, Card]) -> Table:
    columns = (
        Column("team", "Team"),
        Column("freq", "Deploys per week", Fmt.DECIMAL1),
        Column("lead", "Lead time, median", Fmt.HOURS),
        Column("cfr", "Change fail rate", Fmt.PERCENT1),
        Column("mttr", "Recovery, median", Fmt.HOURS),
        Column("rework", "Rework rate", Fmt.PERCENT1),
        Column("incidents", "Incidents", Fmt.COUNT),
        Column("slos", "SLOs ok / at risk / exhausted", compact=True),
    )
    rows = []
    for team, card in sorted(teams.items()):
        counts = slo_counts(card.get("slos", []))
        rows.append(
            (
                team,
                get(card, "dora", "deployment_frequency", "per_week"),
                get(card, "dora", "lead_time", "median_hours"),
                get(card, "dora", "change_failure_rate", "rate"),
                get(card, "dora", "recovery_time", "median_hours"),
                get(card, "dora", "rework_rate", "rate"),
                get(card, "incidents", "count"),
                f"{counts['ok']} / {counts['at_risk']} / {counts['exhausted']}",
            )
        )
    return Table(
        "Teams side by side: delivery beside reliability",
        columns,
        tuple(rows),
        "Teams side by side",
    )


TREND_LINES = (
    # column of the weekly frame, its sample column, title, y title, format
    (
        "lead_time_median_hours",
        "changes",
        "Change lead time per week, median",
        "hours",
        Fmt.DECIMAL1,
    ),
    (
        "change_failure_rate",
        "deployments",
        "Change fail rate per week",
        "failed share",
        Fmt.PERCENT1,
    ),
    (
        "recovery_median_hours",
        "failures",
        "Failed deployment recovery time per week, median",
        "hours",
        Fmt.DECIMAL1,
    ),
)


def trends_section(inputs: Inputs) -> Section:
    weekly = inputs.weekly
    blocks: list[Any] = [
        Paragraph(
            "Weeks start on Monday (UTC); the first and last weeks of the quarter may hold "
            "only some of their days, and are drawn pale (bars) or as open markers (lines). "
            f"A week whose figure rests on fewer than {inputs.min_sample} deployments, "
            "changes or failures is left blank in the charts (the workbook has every week).",
            "note",
        )
    ]
    if weekly.empty or not weekly["deployments"].any():
        blocks.append(Paragraph("No production deployment in the quarter: no trend to draw."))
        return Section("Delivery trends over the quarter", "trends", blocks)
    weeks = sorted(weekly["week"].unique())
    labels = tuple(pd.Timestamp(week).strftime("%-d %b") for week in weeks)
    scope = weekly[weekly["team"] == ""].set_index("week").reindex(weeks)
    days = _week_days(scope)
    teams = sorted(t for t in weekly["team"].unique() if t)
    if teams:
        series = _team_layers(weekly, teams, weeks)
        kind = ChartKind.STACKED
    else:
        series = (Series("deployments", tuple(number(v) for v in scope["deployments"])),)
        kind = ChartKind.BAR
    blocks.append(
        Chart(
            "Production deployments per week",
            kind,
            labels,
            series,
            "deployments",
            Fmt.COUNT,
            "Trend deployments",
            x_title="week starting",
            x_days=days,
            caption=_partial_caption(scope, days),
        )
    )
    for column, sample, title, y_title, fmt in TREND_LINES:
        values = tuple(number(v) for v in scope[column].where(scope[sample] >= inputs.min_sample))
        blocks.append(
            Chart(
                title,
                ChartKind.LINE,
                labels,
                (Series(title, values),),
                y_title,
                fmt,
                f"Trend {y_title} {column.split('_')[0]}"[:31],
                x_title="week starting",
                empty_text=f"No week of the quarter has {inputs.min_sample} or more {sample} "
                "behind this figure, so no weekly value is drawn; the quarter's figure is in "
                "the scorecard.",
                words=_lone_week(labels, values, fmt, sample, inputs.min_sample),
                x_days=days,
            )
        )
    return Section("Delivery trends over the quarter", "trends", blocks)


def _week_days(scope: pd.DataFrame) -> tuple[float, ...]:
    """Days in each week of the quarter (7, or fewer for a week the quarter clips)."""
    if "week_end" not in scope.columns:
        return ()
    spans = pd.to_datetime(scope["week_end"], utc=True) - pd.to_datetime(scope.index, utc=True)
    return tuple(round(span.total_seconds() / 86_400, 2) for span in spans)


def _partial_caption(scope: pd.DataFrame, days: tuple[float, ...]) -> str:
    """Which weeks are parts of weeks, by their dates: "1–5 Jul (5 days) and 28–30 Sep
    (3 days) hold only part of a week, so their bars are drawn pale: …"; a part of a week
    without a deployment has no bar to be pale, and is said to have none."""
    drawn, empty = [], []
    for (start, row), span in zip(scope.iterrows(), days, strict=True):
        if span >= 7:
            continue
        last = pd.Timestamp(row["week_end"]) - pd.Timedelta(microseconds=1)
        first = pd.Timestamp(start)
        dates = (
            f"{first:%-d}–{last:%-d %b}"
            if first.month == last.month
            else f"{first:%-d %b}–{last:%-d %b}"
        )
        part = f"{dates} ({span:g} {'day' if span == 1 else 'days'})"
        (drawn if number(row.get("deployments")) else empty).append(part)
    sentences = []
    if drawn:
        one = len(drawn) == 1
        sentences.append(
            f"{' and '.join(drawn)} {'holds' if one else 'hold'} only part of a week, so "
            f"{'its bar is' if one else 'their bars are'} drawn pale: fewer deployments there "
            "are fewer days, not a dip."
        )
    if empty:
        one = len(empty) == 1
        sentences.append(
            f"{' and '.join(empty)}, {'a part' if one else 'parts'} of a week, had no deployment."
        )
    return " ".join(sentences)


def _lone_week(
    labels: tuple[str, ...], values: tuple[float | None, ...], fmt: Fmt, sample: str, least: int
) -> str:
    """The sentence that stands in for a line with a single point, which would read as an
    empty chart with a stray dot; "" when there are two or more points (or none)."""
    present = [
        (label, value) for label, value in zip(labels, values, strict=True) if value is not None
    ]
    if len(present) != 1:
        return ""
    label, value = present[0]
    unit = " h" if fmt is Fmt.DECIMAL1 else ""
    return (
        f"Only the week starting {label} has {least} or more {sample} behind this figure: "
        f"{display(value, fmt)}{unit}. One week makes no trend, so no chart is drawn; every "
        "other week is left blank for too small a sample, and the quarter's figure is in the "
        "scorecard."
    )


def _team_column(weekly: pd.DataFrame, team: str, column: str, weeks: list[Any]) -> pd.Series:
    return weekly[weekly["team"] == team].set_index("week")[column].reindex(weeks)


def _team_layers(weekly: pd.DataFrame, teams: list[str], weeks: list[Any]) -> tuple[Series, ...]:
    """A layer of weekly deployments per team; past as many teams as the palette has colours
    (13 teams drew "big" and "team-06" in the same blue), the teams that deployed most keep
    a layer each and the others share one ("7 other teams")."""
    columns = {team: _team_column(weekly, team, "deployments", weeks) for team in teams}
    if len(teams) > len(PALETTE):
        ranked = sorted(teams, key=lambda team: (-columns[team].sum(), team))
        named = sorted(ranked[: len(PALETTE) - 1])
        others = [team for team in teams if team not in named]
        rest = sum((columns[team].fillna(0) for team in others), start=pd.Series(0.0, index=weeks))
        layers = [(team, columns[team]) for team in named]
        layers.append((f"{len(others)} other teams", rest))
    else:
        layers = list(columns.items())
    return tuple(Series(name, tuple(number(v) for v in values)) for name, values in layers)


def coverage_section(inputs: Inputs) -> Section:
    items = tuple(inputs.coverage) or ("The metrics engine reported no gap in the data.",)
    return Section(
        "Data coverage: what the numbers do not see",
        "coverage",
        [
            Paragraph(
                "Every figure above rests on the rows the collectors brought in. These notes "
                "say where those rows are thin or missing, so a figure is read with its limits."
            ),
            BulletList(items),
        ],
    )


def appendix_section(inputs: Inputs) -> Section:
    return Section(
        "Appendix: definitions",
        "definitions",
        [
            Paragraph(
                "All times are UTC; a period is half-open, [start, end). These are the short "
                "definitions Poise shows on every page and report; docs/metrics.md gives each "
                "in full, with worked examples."
            ),
            Definitions(tuple(inputs.definitions)),
        ],
    )


def _anchor(team: str, used: set[str]) -> str:
    """The team's section id, unlike every other: "a b" and "A-B" both read "team-a-b", and
    with one id the contents and the PDF's page numbers led both entries to the first."""
    base = "team-" + "".join(ch if ch.isalnum() else "-" for ch in team.lower())
    anchor, counter = base, 2
    while anchor in used:
        anchor, counter = f"{base}-{counter}", counter + 1
    used.add(anchor)
    return anchor

"""Plotly figures for the pages: pure functions, DataFrames and dicts in, `go.Figure` out.

Colours are the Okabe–Ito palette (distinct under the common colour-vision deficiencies),
with one meaning throughout: blue is good (elite, ok), bluish green high, orange medium
or at risk, vermillion low, exhausted or failed, grey insufficient data. Colour never carries meaning alone: tiers and states are also written in words,
marker shapes differ, and every chart's numbers are shown as a table beside it. Figures
leave backgrounds transparent and fonts to the theme, so they read in light and dark.

Untrusted text (team, service and incident names) reaches Plotly only through `safe`,
which escapes the few HTML tags Plotly would otherwise interpret. A name written on the
plot (an axis label, a point's label) is cut to `LABEL_CHARS` (`short`): a 200-character
name would otherwise squeeze the plot to a sliver; the hover and the table keep it whole.
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from metrics.wording import NO_INCIDENT_DATA, hours_words
from poise.text import LABEL_CHARS
from poise.text import cut as cut_text

BLUE, SKY, GREEN, ORANGE, VERMILLION, PURPLE, YELLOW = (
    "#0072B2",
    "#56B4E9",
    "#009E73",
    "#E69F00",
    "#D55E00",
    "#CC79A7",
    "#F0E442",
)
GREY = "#999999"
PALETTE = (BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION, YELLOW)
TIER_COLOURS = {
    "elite": BLUE,
    "high": GREEN,
    "medium": ORANGE,
    "low": VERMILLION,
    "insufficient data": GREY,
}
STATUS_COLOURS = {"ok": BLUE, "at_risk": ORANGE, "exhausted": VERMILLION, "no data": GREY}
STATUS_SYMBOLS = {"ok": "circle", "at_risk": "diamond", "exhausted": "x", "no data": "circle-open"}
STATUS_WORDS = {"ok": "ok", "at_risk": "at risk", "exhausted": "exhausted", "no data": "no data"}
SEVERITY_COLOURS = {"SEV1": VERMILLION, "SEV2": ORANGE, "SEV3": SKY, "SEV4": BLUE}
SEVERITY_SYMBOLS = {"SEV1": "x", "SEV2": "diamond", "SEV3": "square", "SEV4": "circle"}
HEIGHT = 340


def safe(value: Any) -> str:
    """Text for a Plotly label or hover: HTML-escaped, so `<img …>` shows as written."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return html.escape(str(value), quote=False)


def cut(value: Any, limit: int = LABEL_CHARS) -> str:
    """A name as plain text of at most `limit` characters (the end replaced by "…")."""
    missing = value is None or (isinstance(value, float) and np.isnan(value))
    return "" if missing else cut_text(str(value), limit)


def short(value: Any) -> str:
    """A name to write on a plot: cut to `LABEL_CHARS`, then escaped as `safe` does."""
    return safe(cut(value))


def _short_categories(
    figure: go.Figure, labels: list[str], written: list[str] | None = None, **where: Any
) -> None:
    """Write a category axis's names cut (`labels`: the escaped categories as the traces
    hold them, so the hover keeps them whole; `written`: how to write each, by default the
    label cut to `LABEL_CHARS`). Nothing changes when no name is cut."""
    written = written or [short(html.unescape(label)) for label in labels]
    if written != labels:
        figure.update_yaxes(tickmode="array", tickvals=labels, ticktext=written, **where)


# Rows named above their bar (`_names_above`): a row's height in px (its name's line and
# its bar), and the bar's thickness in rows.
NAMED_ROW = 36
NAMED_BAR = 0.4


def _names_above(
    figure: go.Figure, labels: list[str], written: list[str], *, lift: float = 9
) -> None:
    """Write each row's name above its bar, from the plot's left edge, instead of as a
    tick label left of the axis: names as long as "recommendations-i0185 · recommendations-
    availability" would otherwise take the width from the bars (down to Plotly's 64 px
    minimum on a laptop's half column) and be cut on a phone. `labels` are the categories
    as the traces hold them (the hover keeps them whole), `written` how to write each;
    `lift`: px from the row's middle to the name's foot, clear of the bar or marks."""
    figure.update_yaxes(showticklabels=False, ticks="")
    for label, text in zip(labels, written, strict=True):
        figure.add_annotation(
            text=text,
            x=0,
            xref="paper",
            y=label,
            yref="y",
            xanchor="left",
            yanchor="bottom",
            yshift=lift,
            showarrow=False,
            font={"size": 12},
        )


def _layout(figure: go.Figure, *, height: int = HEIGHT, **extra: Any) -> go.Figure:
    figure.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        colorway=list(PALETTE),
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        hoverlabel={"namelength": -1},
        **extra,
    )
    return figure


def _rows_over_time(figure: go.Figure, rows: list[str]) -> None:
    """A time axis (always typed as dates: a legend-only trace must not make it numeric)
    against one labelled row per name, top to bottom."""
    figure.update_yaxes(
        tickvals=list(range(len(rows))),
        ticktext=[short(name) for name in rows],
        autorange="reversed",
        title=None,
    )
    figure.update_xaxes(title=None, type="date")


def empty(message: str, *, height: int = 160) -> go.Figure:
    """A figure that says there is nothing to draw (as tall as the chart it stands for,
    where it sits in a grid of them)."""
    figure = go.Figure()
    figure.add_annotation(
        text=safe(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return _layout(figure, height=height)


# --- overview -----------------------------------------------------------------------------------


# Where a team's name goes around its point, in order of preference: above it as before,
# else wherever it clears the other names and points (`_label_positions`).
LABEL_POSITIONS = (
    "top center",
    "bottom center",
    "middle right",
    "middle left",
    "top right",
    "top left",
    "bottom right",
    "bottom left",
)
# The velocity chart's plot area (width, height in px, inside the axes) on a 390 px phone,
# a 1024 px laptop with the sidebar open and a 1440 px screen, as Chromium draws the
# Overview (a little less tall than measured, to be safe). The names are placed to clear
# each other at every one of these sizes: the points spread sideways as the page widens,
# while the names stay the same size.
LABEL_PLOTS = ((220, 260), (430, 275), (850, 285))
POINT_SIZE = 16
LABEL_CHAR_PX = 5.6  # a 12 px label's mean width per character (Source Sans, measured)
LABEL_GAP = 2.0  # px kept clear around a name: names that touch read as one
HINT = "better: right and low"  # where the velocity chart's best teams sit


def _label_box(x: float, y: float, text: str, position: str) -> tuple[float, float, float, float]:
    """The box (left, bottom, right, top; px, y upwards) of a point's label at `position`,
    as Plotly places text beside a marker of `POINT_SIZE` (its textPointPosition: the text
    keeps `radius / 0.8 + 1` px from the point's centre, its baseline 3/4 of the font size
    below the text's anchor)."""
    gap = POINT_SIZE / 2 / 0.8 + 1
    width = LABEL_CHAR_PX * len(html.unescape(text)) + LABEL_GAP
    vertical, _, horizontal = position.partition(" ")
    baseline = {"top": gap + 3, "middle": -3.0, "bottom": -gap - 9}[vertical]
    left = {"left": x - gap - width, "center": x - width / 2, "right": x + gap}[horizontal]
    return (left, y + baseline - 4 - LABEL_GAP, left + width, y + baseline + 12 + LABEL_GAP)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The area two boxes (left, bottom, right, top) share."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def _covered(box: tuple[float, ...], boxes: np.ndarray) -> float:
    """The area `box` shares with each of `boxes` (rows of left, bottom, right, top), summed."""
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return float(np.sum(np.clip(width, 0, None) * np.clip(height, 0, None)))


def _label_positions(
    spots: list[tuple[float, float]], texts: list[str], plots: tuple[tuple[int, int], ...]
) -> list[str]:
    """Where each point's label goes (`LABEL_POSITIONS`): the first position whose label
    stays inside the plot (Plotly clips text at the axes) and clear of every point and of
    the labels placed before it, at each plot size in `plots`; where none is clear, the one
    covering least. `spots` are the points as fractions of the plot's width and height. Top
    points first, as their labels above them have the least room."""
    half = POINT_SIZE / 2 + 1
    fractions = np.array(spots, dtype=float).reshape(-1, 2)
    scales = [np.array([width, height], dtype=float) for width, height in plots]
    points = [np.hstack([fractions * scale - half, fractions * scale + half]) for scale in scales]
    # the labels placed so far at each size; a row not placed yet is an empty box far away
    placed = [np.full((len(spots), 4), -1e9) for _ in plots]
    chosen = ["top center"] * len(spots)
    for index in sorted(range(len(spots)), key=lambda i: (-spots[i][1], spots[i][0])):
        costs = []
        for position in LABEL_POSITIONS:
            cost = 0.0
            for size, (width, height) in enumerate(plots):
                x, y = fractions[index] * scales[size]
                box = _label_box(x, y, texts[index], position)
                inside = (max(box[0], 0), max(box[1], 0), min(box[2], width), min(box[3], height))
                cost += (box[2] - box[0]) * (box[3] - box[1]) - _overlap(box, inside)
                cost += _covered(box, placed[size])
                # Plotly keeps a label clear of its own point; the others' count
                cost += _covered(box, points[size]) - _overlap(box, tuple(points[size][index]))
            costs.append(cost)
            if cost <= 1e-9:
                break
        chosen[index] = LABEL_POSITIONS[costs.index(min(costs))]
        for size in range(len(plots)):
            x, y = fractions[index] * scales[size]
            placed[size][index] = _label_box(x, y, texts[index], chosen[index])
    return chosen


def velocity_stability(teams: pd.DataFrame) -> go.Figure:
    """Teams as points: deployments per week (log scale) against change fail rate, marked
    by the state of their weakest SLO budget; lines at the tier boundaries (2023 table).
    Each team's name is written beside its point where it clears the others', on a phone
    as on a wide screen."""
    rows = teams.dropna(subset=["deploys_per_week"])
    rows = rows[rows["deploys_per_week"] > 0]
    if rows.empty:
        return empty("No team deployed to production in this period.")
    figure = go.Figure()
    # a team no incident data speaks for sits low by default, not by merit: its label says so
    label = rows["team"].map(short)
    if "change_fail_tier" in rows:
        blind = rows["change_fail_tier"] == NO_INCIDENT_DATA
        label = label.where(~blind, label + f" ({NO_INCIDENT_DATA})")
    # from below weekly to above daily at least, so the tier lines are always in view
    low = min(float(rows["deploys_per_week"].min()), 1.0) / 1.6
    high = max(float(rows["deploys_per_week"].max()), 7.0) * 1.6
    top = max(0.2, float(rows["change_fail_rate"].fillna(0).max()) * 1.15)
    bottom = -0.01
    rate = rows["change_fail_rate"].astype(float).fillna(0.0)
    spots = list(
        zip(
            (np.log10(rows["deploys_per_week"].astype(float)) - np.log10(low))
            / (np.log10(high) - np.log10(low)),
            (rate - bottom) / (top - bottom),
            strict=True,
        )
    )
    rows = rows.assign(label=label, position=_label_positions(spots, label.tolist(), LABEL_PLOTS))
    for state in STATUS_COLOURS:
        mine = rows[rows["budget_state"] == state]
        if mine.empty:
            continue
        figure.add_trace(
            go.Scatter(
                x=mine["deploys_per_week"],
                y=mine["change_fail_rate"].fillna(0.0),
                mode="markers+text",
                name=f"weakest SLO budget: {STATUS_WORDS[state]}",
                text=mine["label"].tolist(),
                textposition=mine["position"].tolist(),
                marker={
                    "size": POINT_SIZE,
                    "color": STATUS_COLOURS[state],
                    "symbol": STATUS_SYMBOLS[state],
                    "line": {"width": 1.5, "color": STATUS_COLOURS[state]},
                },
                customdata=np.stack(
                    [
                        [safe(team) for team in mine["team"]],
                        mine["lead_time_hours"].astype(float).round(1),
                        (mine["lowest_budget_remaining"].astype(float) * 100).round(1),
                    ],
                    axis=-1,
                ),
                hovertemplate="<b>%{customdata[0]}</b><br>%{x:.1f} deployments/week"
                "<br>change fail rate %{y:.1%}<br>lead time %{customdata[1]} h"
                "<br>lowest budget remaining %{customdata[2]} %<extra></extra>",
            )
        )
    for boundary, name in ((1.0, "weekly"), (7.0, "daily")):
        figure.add_vline(x=boundary, line={"dash": "dot", "color": GREY, "width": 1})
        figure.add_annotation(
            x=np.log10(boundary), y=1, yref="paper", text=name, showarrow=False, yanchor="bottom"
        )
    # the change-fail-rate tiers as bands, named in the right margin (the points' own
    # labels stay clear of them)
    for boundary in (0.05, 0.10, 0.15):
        figure.add_hline(y=boundary, line={"dash": "dot", "color": GREY, "width": 1})
    for middle, tier in ((0.025, "elite"), (0.075, "high"), (0.125, "medium"), (0.175, "low")):
        if middle < top:
            figure.add_annotation(
                x=1.005,
                xref="paper",
                y=middle,
                text=tier,
                showarrow=False,
                xanchor="left",
                font={"color": GREY, "size": 11},
            )
    # a line of its own above "weekly" and "daily": in the plot's corner it lay on the
    # elite band, where the best teams' points and names go, and across the daily line on
    # a phone
    _corner_note(figure, HINT, "right", line=1)
    ticks = [tick for tick in RATE_TICKS if low <= tick <= high]
    figure.update_xaxes(
        type="log",
        title="deployments per week (log scale)",
        tickvals=ticks,
        ticktext=[f"{tick:g}" for tick in ticks],
        range=[np.log10(low), np.log10(high)],
    )
    figure.update_yaxes(title="change fail rate", tickformat=".0%", range=[bottom, top])
    _layout(figure, height=440)
    figure.update_layout(
        showlegend=True,  # the markers' meaning, even when every team shares one state
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
        margin={"l": 10, "r": 60, "t": 30 + NOTE_LINE, "b": 10},
    )
    return figure


TREND_HEIGHT = 260
RATE_TICKS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


# --- trends -------------------------------------------------------------------------------------


def trend(
    weekly: pd.DataFrame,
    columns: dict[str, str],
    *,
    title: str,
    percent: bool = False,
    bars: bool = False,
    log: bool = False,
    caveat: str | None = None,
) -> go.Figure:
    """Weekly values of one figure (several columns as several lines, e.g. median and
    p90), with each week's sample size in the hover. `log`: hours on a log scale, so that
    a median of hours stays readable under a p90 of weeks. `caveat`: why these values say
    little (a change fail rate no incident could raise): drawn grey, said above the plot."""
    if weekly.empty:
        return empty("No weeks in this period.")
    drawn = weekly[list(columns)].apply(pd.to_numeric, errors="coerce")
    if drawn.isna().all().all():  # axes over nothing read as a broken chart
        return empty(f"No week of this period has a {title.lower()} figure.", height=TREND_HEIGHT)
    figure = go.Figure()
    weeks = pd.to_datetime(weekly["bucket_start"], utc=True)
    # the period's first and last buckets may be parts of weeks (a Friday-to-Sunday start):
    # a rate over them is honest but reads as a dip, so they are drawn pale or open and say
    # how many days they hold
    days = _bucket_days(weekly)
    partial = days < 7
    spans = [f"{d:g} of 7 days" if p else "whole week" for d, p in zip(days, partial, strict=True)]
    for index, (column, label) in enumerate(columns.items()):
        values = pd.to_numeric(weekly[column], errors="coerce")
        style = {"color": GREY if caveat else PALETTE[index % len(PALETTE)]}
        hover = "week of %{x|%d %b}: %{y:.3g}<br>%{customdata}<extra>" + safe(label) + "</extra>"
        if bars:
            figure.add_trace(
                go.Bar(
                    x=weeks,
                    y=values,
                    name=label,
                    # each bar covers its own days from its start, so a three-day bucket is
                    # a narrow bar and the bars do not touch
                    width=[d * DAY_MS * 0.85 for d in days],
                    offset=0,
                    marker={**style, "opacity": [0.4 if p else 1.0 for p in partial]},
                    customdata=spans,
                    hovertemplate=hover,
                )
            )
        else:
            symbol = ["circle", "square", "diamond"][index % 3]
            figure.add_trace(
                go.Scatter(
                    x=weeks,
                    y=values,
                    name=label,
                    mode="lines+markers",
                    line={**style, "dash": "solid" if index == 0 else "dash"},
                    marker={"symbol": symbol},
                    connectgaps=False,
                    customdata=spans,
                    hovertemplate=hover,
                )
            )
            if partial.any():  # hollow markers over the parts of weeks (the legend stays solid)
                figure.add_trace(
                    go.Scatter(
                        x=weeks[partial],
                        y=values[partial],
                        mode="markers",
                        marker={
                            "symbol": symbol,
                            "color": "white",
                            "line": {"color": style["color"], "width": 1.5},
                        },
                        showlegend=False,
                        hoverinfo="skip",
                    )
                )
    notes = [(safe(caveat), "left")] if caveat else []
    if partial.any():
        notes.append((f"{'pale bars' if bars else 'open markers'}: part of a week", "right"))
    # each note on a line of its own above the plot, over the legend's: side by side they
    # ran into each other ("p90open markers…") in a half-page chart on a laptop, or on a phone
    legend = len(columns) > 1
    for line, (text, side) in enumerate(notes, start=int(legend)):
        _corner_note(figure, text, side, line)
    lines = len(notes) + int(legend)
    figure.update_xaxes(title=None, type="date", **week_ticks(weeks))
    if log:
        shown = pd.concat([pd.to_numeric(weekly[c], errors="coerce") for c in columns])
        shown = shown[shown > 0]
        figure.update_yaxes(title=f"{safe(title)} (log scale)", **hours_axis(shown))
    else:
        figure.update_yaxes(
            title=safe(title), tickformat=".0%" if percent else None, rangemode="tozero"
        )
    _layout(figure, height=TREND_HEIGHT, showlegend=legend)
    # the top margin holds one line (the legend's, or a note's); each more line widens it
    return figure.update_layout(margin={"t": 30 + NOTE_LINE * max(0, lines - 1)})


NOTE_LINE = 20  # px: one line above a plot (the legend's, or a note's)


def _corner_note(figure: go.Figure, text: str, side: str, line: int = 0) -> None:
    """A small grey note above the plot, in its top left or right corner, on the `line`th
    line above it (0: the first, where a legend sits)."""
    figure.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0 if side == "left" else 1,
        y=1,
        yshift=4 + NOTE_LINE * line,
        showarrow=False,
        xanchor=side,
        yanchor="bottom",
        font={"size": 11, "color": GREY},
    )


DAY_MS = 86_400_000  # Plotly's date axis counts milliseconds


def week_ticks(starts: pd.Series, most: int = 8) -> dict[str, Any]:
    """Ticks on the buckets' own starts (Mondays, and a period's first day), not Plotly's
    Sundays or every third day: a label names the week drawn above it. At most `most`
    labels: every second or third week on a long period."""
    shown = pd.Series(pd.to_datetime(starts, utc=True).unique()).sort_values()
    step = max(1, int(np.ceil(len(shown) / most)))
    picked = list(shown.iloc[::step])
    return {"tickvals": picked, "ticktext": [f"{t:%d %b}" for t in picked]}


def _bucket_days(weekly: pd.DataFrame) -> np.ndarray:
    """How many days each bucket spans (7 for a whole week; fewer at a period's edges)."""
    if "bucket_end" not in weekly:
        return np.full(len(weekly), 7.0)
    start = pd.to_datetime(weekly["bucket_start"], utc=True)
    end = pd.to_datetime(weekly["bucket_end"], utc=True)
    return ((end - start).dt.total_seconds() / 86_400).round(2).to_numpy()


# --- lead time ----------------------------------------------------------------------------------


def lead_time_distribution(
    changes: pd.DataFrame, median: float | None, p90: float | None
) -> go.Figure:
    """Histogram of lead times (hours, log-spaced bins) with the median and p90 marked."""
    values = changes.loc[changes["lead_hours"] > 0, "lead_hours"].astype(float)
    if values.empty:
        return empty("No change reached production in this period.")
    low, high = np.log10(values.min()), np.log10(values.max())
    edges = np.logspace(np.floor(low * 4) / 4, np.ceil(high * 4) / 4 + 0.25, 40)
    counts, edges = np.histogram(values, bins=edges)
    centres = np.sqrt(edges[:-1] * edges[1:])
    figure = go.Figure(
        go.Bar(
            x=centres,
            y=counts,
            width=np.diff(edges),
            marker={"color": SKY},
            name="changes",
            customdata=np.stack([edges[:-1], edges[1:]], axis=-1),
            hovertemplate="%{customdata[0]:.1f}–%{customdata[1]:.1f} h: %{y} changes<extra></extra>",
        )
    )
    for value, label, colour, dash in (
        (median, "p50", BLUE, "solid"),
        (p90, "p90", VERMILLION, "dash"),
    ):
        if value is not None:
            figure.add_vline(x=value, line={"color": colour, "dash": dash, "width": 2})
            figure.add_annotation(
                x=np.log10(value),
                y=1,
                yref="paper",
                text=f"{label} {hours_words(value)}",
                showarrow=False,
                yanchor="bottom",
                font={"color": colour},
            )
    ticks = [t for t in HOUR_TICKS if edges[0] / 2 <= t[0] <= edges[-1] * 2]
    figure.update_xaxes(
        type="log",
        title="lead time (log scale)",
        tickvals=[t[0] for t in ticks],
        ticktext=[t[1] for t in ticks],
    )
    figure.update_yaxes(title="changes")
    return _layout(figure, showlegend=False)


HOUR_TICKS = (  # hours, as words on a log axis
    (1 / 60, "1 min"),
    (0.1, "6 min"),
    (1, "1 h"),
    (6, "6 h"),
    (24, "1 d"),
    (168, "1 w"),
    (720, "30 d"),
    (4380, "6 mo"),
)
DENSE_HOUR_TICKS = (  # for a range of less than two decades
    (1 / 60, "1 min"),
    (5 / 60, "5 min"),
    (0.25, "15 min"),
    (0.5, "30 min"),
    (1, "1 h"),
    (2, "2 h"),
    (4, "4 h"),
    (8, "8 h"),
    (24, "1 d"),
    (48, "2 d"),
    (96, "4 d"),
    (168, "1 w"),
    (336, "2 w"),
    (720, "30 d"),
    (2160, "3 mo"),
    (4380, "6 mo"),
)


def hours_axis(values: pd.Series, *, margin: float = 1.5) -> dict[str, Any]:
    """A log axis of hours: its range (the values, `margin` times wider either way) and
    ticks in words within it, denser when the range is narrow."""
    if values.empty:
        return {"type": "log"}
    low, high = float(values.min()) / margin, float(values.max()) * margin
    table = DENSE_HOUR_TICKS if high / low < 100 else HOUR_TICKS
    ticks = [t for t in table if low <= t[0] <= high]
    return {
        "type": "log",
        "range": [np.log10(low), np.log10(high)],
        "tickvals": [t[0] for t in ticks],
        "ticktext": [t[1] for t in ticks],
    }


STAGE_LABELS = {
    "coding_hours": "Coding",
    "review_hours": "Review",
    "before_merge_hours": "Commit to merge",
    "waiting_hours": "Waiting for deploy",
}


def lead_time_stages(stages: pd.DataFrame) -> go.Figure:
    """Median (dot) and p90 (bar end) hours of each stage that is known for some change,
    joined by a line, on a log axis: a median of minutes stays visible beside a p90 of
    days."""
    rows = stages[stages["changes"] > 0]
    if rows.empty:
        return empty("No pull-request data: merge times are needed to split lead time.")
    labels = [
        f"{STAGE_LABELS[s]} (n={n:,})" for s, n in zip(rows["stage"], rows["changes"], strict=True)
    ]
    median = rows["median_hours"].astype(float)
    p90 = rows["p90_hours"].astype(float)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            y=labels,
            x=median,
            mode="markers+text",
            name="median",
            marker={"color": BLUE, "size": 12},
            text=[hours_words(v) for v in median],
            textposition="bottom center",
            hovertemplate="%{y}: median %{x:.1f} h<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            y=labels,
            x=p90,
            mode="markers+text",
            name="p90",
            marker={
                "symbol": "line-ns-open",
                "size": 18,
                "color": VERMILLION,
                "line": {"width": 3},
            },
            text=[hours_words(v) for v in p90],
            textposition="bottom center",
            hovertemplate="%{y}: p90 %{x:.1f} h<extra></extra>",
        )
    )
    figure.add_trace(_spans(median, p90, labels, {"color": GREY, "width": 2}))
    known = pd.concat([median, p90])
    # room either side for the labels under the end points
    figure.update_xaxes(title="hours (log scale)", **hours_axis(known[known > 0], margin=2.0))
    # each stage named above its marks, so that they have the whole width of their column
    # (two fifths of a laptop's page): clear of the p90 mark (18 px tall)
    _names_above(figure, labels, labels, lift=12)
    # top to bottom, with room above the first row for its name and under the last for its
    # times
    figure.update_yaxes(range=[len(rows) - 0.3, -0.8])
    return _layout(figure, height=110 + 70 * len(rows))


def _spans(starts: Any, ends: Any, rows: Any, line: dict[str, Any] | None = None) -> go.Scatter:
    """One line from each start to its end, on its row, as a single trace (no legend)."""
    xs: list[Any] = []
    ys: list[Any] = []
    for start, end, row in zip(starts, ends, rows, strict=True):
        xs += [start, end, None]
        ys += [row, row, None]
    return go.Scatter(x=xs, y=ys, mode="lines", line=line or {}, hoverinfo="skip", showlegend=False)


# --- reliability ----------------------------------------------------------------------------------


def burndown(series: pd.DataFrame, forecast: pd.DataFrame, name: str) -> go.Figure:
    """Budget remaining through the window, the even-burn line, and the forecast."""
    if series.empty:
        return empty("No SLI events in this SLO's window.")
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=series["ts"],
            y=series["even_burn"],
            name="spent evenly (burn rate 1)",
            mode="lines",
            line={"color": GREY, "dash": "dot"},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=series["ts"],
            y=series["remaining"],
            name="budget remaining",
            mode="lines",
            line={"color": BLUE, "width": 2.5},
        )
    )
    if not forecast.empty:
        figure.add_trace(
            go.Scatter(
                x=forecast["ts"],
                y=forecast["remaining"],
                name="forecast at the 24 h burn rate",
                mode="lines+markers",
                line={"color": VERMILLION, "dash": "dash"},
                marker={"symbol": ["circle", "x"], "size": 9},
            )
        )
    figure.add_hline(y=0, line={"color": VERMILLION, "width": 1})
    figure.update_yaxes(title=f"budget remaining<br>{short(name)}", tickformat=".0%")
    figure.update_xaxes(title=None, type="date")
    return _layout(figure)


def deployment_timeline(
    deployments: pd.DataFrame, freezes: pd.DataFrame, *, limit: int = 25
) -> go.Figure:
    """Production deployments per service over time (failed ones marked), with the
    service's release freezes as shaded bands. Past `limit` services, those frozen longest
    and then those deploying most are drawn, and a note under the chart says so."""
    if deployments.empty and freezes.empty:
        return empty("No production deployment and no freeze in this period.")
    hours = (pd.to_datetime(freezes["end"]) - pd.to_datetime(freezes["start"])) / pd.Timedelta(
        hours=1
    )
    frozen = hours.groupby(freezes["service"]).sum()
    deploys = deployments.groupby("service").size()
    weight = pd.concat([frozen.rename("frozen"), deploys.rename("deploys")], axis=1)
    services = _most(weight, ["frozen", "deploys"], limit)
    position = {service: index for index, service in enumerate(services)}
    figure = go.Figure()
    for row in freezes[freezes["service"].isin(services)].itertuples(index=False):
        y = position[row.service]
        figure.add_shape(
            type="rect",
            x0=row.start,
            x1=row.end,
            y0=y - 0.4,
            y1=y + 0.4,
            fillcolor=VERMILLION,
            opacity=0.18,
            line={"width": 0},
            layer="below",
        )
    if len(freezes):
        figure.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name="release freeze (budget exhausted)",
                marker={"symbol": "square", "size": 12, "color": VERMILLION, "opacity": 0.35},
            )
        )
    shown = deployments[deployments["service"].isin(services)]
    for failed, name, colour, symbol in (
        (False, "deployment", BLUE, "line-ns-open"),
        (True, "failed deployment", VERMILLION, "x"),
    ):
        mine = shown[shown["failed"].astype(bool) == failed]
        figure.add_trace(
            go.Scatter(
                x=mine["deployed_at"],
                y=[position[s] for s in mine["service"]],
                mode="markers",
                name=name,
                marker={
                    "symbol": symbol,
                    "size": 10 if failed else 12,
                    "color": colour,
                    "line": {"width": 2, "color": colour},
                },
                text=[safe(i) for i in mine["id"]],
                hovertemplate="%{text}<br>%{x|%Y-%m-%d %H:%M} UTC<extra></extra>",
            )
        )
    _rows_over_time(figure, services)
    _layout(figure, height=max(220, 60 + 32 * len(services)), showlegend=True)
    return _shown_of(
        figure, len(services), len(weight), "those frozen longest, then those deploying most"
    )


def _most(weight: pd.DataFrame, by: list[str], limit: int) -> list[str]:
    """The names (the index) of the `limit` heaviest rows by `by` (ties by name), in
    alphabetical order, as the rows of a chart."""
    ranked = weight.fillna(0).reset_index(names="name")
    ranked["name"] = ranked["name"].astype(str)
    ranked = ranked.sort_values([*by, "name"], ascending=[*(False for _ in by), True])
    return sorted(ranked["name"].head(limit))


def _shown_of(figure: go.Figure, shown: int, total: int, which: str) -> go.Figure:
    """Under a chart that draws only some of its services: how many, and which."""
    if shown >= total:
        return figure
    figure.add_annotation(
        text=f"{shown} of {total:,} services drawn: {which}; the table lists them all",
        xref="paper",
        yref="paper",
        x=0,
        y=0,
        yshift=-28,
        xanchor="left",
        yanchor="top",
        showarrow=False,
        font={"color": GREY, "size": 12},
    )
    return figure.update_layout(margin={"b": 40})


def _budget_rows(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The `limit` largest budget burns, largest first."""
    rows = frame.dropna(subset=["budget_share"]).sort_values("budget_share", ascending=False)
    return rows.head(limit)


def _budget_names(rows: pd.DataFrame, label: str) -> list[str]:
    """Each bar's incident (or deployment) and SLO as written above it: each of the two
    names cut on its own, since cutting the pair would cut off the SLO."""
    pairs = zip(rows[label], rows["slo"], strict=True)
    return [f"{short(a)} · {short(b)}" for a, b in pairs]


# The narrowest a chart of names written above its bars may be: its names, the chart's
# margins either side, a little to spare.
NAMED_CHART_MIN = 240
NAMED_CHART_CHROME = 30


def budget_bars_width(frame: pd.DataFrame, label: str, *, limit: int = 15) -> int:
    """How wide (px) `budget_bars` must be for its longest name to fit: written above the
    bars from the plot's left edge, a name wider than the chart runs off its right edge."""
    written = _budget_names(_budget_rows(frame, limit), label)
    widest = max((len(html.unescape(name)) for name in written), default=0)
    return max(NAMED_CHART_MIN, math.ceil(LABEL_CHAR_PX * widest) + NAMED_CHART_CHROME)


def budget_bars(frame: pd.DataFrame, label: str, *, limit: int = 15) -> go.Figure:
    """The largest budget burns: one bar per incident (or deployment) and SLO."""
    rows = _budget_rows(frame, limit)
    if rows.empty:
        return empty("Nothing burned error budget in this period.")
    names = [f"{safe(a)} · {safe(b)}" for a, b in zip(rows[label], rows["slo"], strict=True)]
    figure = go.Figure(
        go.Bar(
            y=names,
            x=rows["budget_share"],
            orientation="h",
            width=NAMED_BAR,
            marker={"color": ORANGE},
            hovertemplate="%{y}: %{x:.1%} of the window's budget<extra></extra>",
        )
    )
    figure.update_xaxes(title="share of the error budget", tickformat=".0%")
    figure.update_yaxes(autorange="reversed")
    # written above the bars, which then span the chart (it is half the page beside its
    # twin where the page is wide enough for both: `budget_bars_width`)
    _names_above(figure, names, _budget_names(rows, label))
    return _layout(figure, height=90 + NAMED_ROW * len(rows), showlegend=False)


# --- incidents ------------------------------------------------------------------------------------


def incident_timeline(
    incidents: pd.DataFrame, *, limit: int = 30, until: datetime | None = None
) -> go.Figure:
    """Incidents by start time and service; shape and colour by severity, and a line to
    the resolution (dotted to `until`, the period's end or now, while still open). Plotly draws later traces over earlier ones: every resolution line
    first, then the markers from the least severe up, so a SEV1 is never hidden under a
    SEV3 of the same hours (the legend still lists SEV1 first)."""
    if incidents.empty:
        return empty("No incident started in this period.")
    services = incidents["service"].fillna("(no service)").astype(str)
    counts = services.value_counts().rename("incidents").to_frame()
    order = _most(counts, ["incidents"], limit)
    position = {service: index for index, service in enumerate(order)}
    figure = go.Figure()
    severities = incidents["severity"].fillna("unspecified").astype(str)
    ranked = list(SEVERITY_COLOURS)  # most severe first
    present = sorted(
        severities.unique(),
        key=lambda name: (-ranked.index(name) if name in ranked else -len(ranked), name),
    )  # least severe (and unknown) first
    markers = []
    for severity in present:
        mask = (severities == severity) & services.isin(order)
        mine = incidents[mask]
        y = [position[s] for s in services[mask]]
        colour = SEVERITY_COLOURS.get(severity, GREY)
        resolved = mine["resolved_at"].notna().to_numpy()
        if resolved.any():
            rows = [v for v, keep in zip(y, resolved, strict=True) if keep]
            spans = _spans(mine["started_at"][resolved], mine["resolved_at"][resolved], rows)
            figure.add_trace(spans.update(line={"color": colour, "width": 3}, opacity=0.6))
        if until is not None and not resolved.all():  # an open incident is not an instant
            rows = [v for v, keep in zip(y, resolved, strict=True) if not keep]
            starts = mine["started_at"][~resolved]
            spans = _spans(starts, [max(until, start) for start in starts], rows)
            figure.add_trace(
                spans.update(line={"color": colour, "width": 2, "dash": "dot"}, opacity=0.6)
            )
        markers.append(
            go.Scatter(
                x=mine["started_at"],
                y=y,
                mode="markers",
                name=safe(severity),
                marker={
                    "color": colour,
                    "size": 11,
                    "symbol": SEVERITY_SYMBOLS.get(severity, "circle-open"),
                },
                text=[
                    f"{safe(i)}: {safe(t)}" for i, t in zip(mine["id"], mine["title"], strict=True)
                ],
                customdata=[
                    _resolution(at, hours)
                    for at, hours in zip(mine["resolved_at"], mine["mttr"], strict=True)
                ],
                hovertemplate="%{text}<br>started %{x|%Y-%m-%d %H:%M} UTC"
                "<br>%{customdata}<extra></extra>",
            )
        )
    figure.add_traces(markers)
    _rows_over_time(figure, order)
    # the legend says what each marker is, even when one severity is all there is
    figure.update_layout(legend={"traceorder": "reversed"})
    _layout(figure, height=max(240, 60 + 30 * len(order)), showlegend=True)
    return _shown_of(figure, len(order), len(counts), "those with the most incidents")


def _resolution(resolved_at: Any, hours: Any) -> str:
    """An incident's end in words for its hover: still open is not a missing number."""
    if pd.isna(resolved_at):
        return "still open"
    if pd.isna(hours):
        return "time to resolve unknown"
    return f"resolved after {float(hours):.1f} h"


# Each panel's column, title and axis title. A title is one word: three titles such as
# "acknowledge, median (min)" ran into each other on a phone, where a panel is under
# 100 px wide; the unit is the panel's axis title.
TIME_PANELS = (
    ("mttd_median_minutes", "detect", "median, min"),
    ("mtta_median_minutes", "acknowledge", "median, min"),
    ("mttr_median_hours", "resolve", "median, h"),
)
TITLE_SIZE = 13  # px: the panels' titles
TITLE_ROOM = 0.4  # rows: more room above the first row's name than the usual half row
# what an empty panel says: no incident of the period has that time yet
NO_TIME = {
    "mttd_median_minutes": "none detected",
    "mtta_median_minutes": "none acknowledged",
    "mttr_median_hours": "none resolved yet",
}


def response_times(blocks: pd.DataFrame, by: str) -> go.Figure:
    """Median time to detect, acknowledge and resolve per severity or cause (`blocks`
    has one row per group with the engine's medians and counts), in three panels side by
    side. Each group is named above its bars across the panels: as tick labels left of
    the first panel, a cause such as "unpredictable state transition" took width from
    the panels, whose titles already ran into each other on a phone."""
    if blocks.empty:
        return empty("No incident started in this period.")
    figure = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title, _ in TIME_PANELS])
    figure.update_annotations(font={"size": TITLE_SIZE})
    names = [f"{safe(g)} (n={n})" for g, n in zip(blocks[by], blocks["count"], strict=True)]
    for index, (column, _title, unit) in enumerate(TIME_PANELS, start=1):
        figure.add_trace(
            go.Bar(
                y=names,
                x=blocks[column],
                orientation="h",
                width=NAMED_BAR,
                marker={"color": BLUE},  # one colour: orange and green mean tiers elsewhere
                showlegend=False,
                hovertemplate="%{y}: %{x:.1f}<extra></extra>",
            ),
            row=1,
            col=index,
        )
        # top to bottom, with room above the first row for its name under the titles
        # (the usual half row above it put the name across the titles)
        figure.update_yaxes(range=[len(blocks) - 0.5, -0.5 - TITLE_ROOM], row=1, col=index)
        if blocks[column].isna().all():
            # an empty panel says why where its axis would be: in the middle of the panel
            # it would lie across a long name written over the panels
            axis = "" if index == 1 else str(index)
            figure.update_xaxes(showticklabels=False, row=1, col=index)
            figure.add_annotation(
                text=NO_TIME[column],
                showarrow=False,
                x=0.5,
                y=0,
                xref=f"x{axis} domain",
                yref=f"y{axis} domain",
                yanchor="top",
                font={"color": GREY},
            )
        else:
            figure.update_xaxes(title={"text": unit, "font": {"size": 12}}, row=1, col=index)
    written = [f"{short(g)} (n={n})" for g, n in zip(blocks[by], blocks["count"], strict=True)]
    _names_above(figure, names, written)
    return _layout(figure, height=120 + NAMED_ROW * len(blocks))


def counts_bar(frame: pd.DataFrame, label: str, value: str, *, title: str) -> go.Figure:
    """A horizontal bar per category (e.g. incidents per cause)."""
    if frame.empty:
        return empty("Nothing to count in this period.")
    rows = frame.sort_values(value, ascending=False)
    names = [safe(v) for v in rows[label]]
    figure = go.Figure(go.Bar(y=names, x=rows[value], orientation="h", marker={"color": BLUE}))
    figure.update_yaxes(autorange="reversed")
    _short_categories(figure, names)
    # counts have no halves: ticks on whole numbers only, about five to eight of them
    figure.update_xaxes(
        title=safe(title), tick0=0, dtick=_count_step(float(rows[value].max())), tickformat=",d"
    )
    return _layout(figure, height=90 + 28 * len(rows), showlegend=False)


def _count_step(largest: float) -> int:
    """The 1, 2 or 5 × 10ⁿ tick step that gives at most eight ticks up to `largest`."""
    for scale in (1, 10, 100, 1_000, 10_000, 100_000):
        for base in (1, 2, 5):
            if largest / (base * scale) <= 8:
                return base * scale
    return 1_000_000


def coverage_bars(coverage: pd.DataFrame, labels: dict[str, str]) -> go.Figure:
    """Each coverage share as a bar out of 100 %."""
    rows = coverage.dropna(subset=["share"])
    if rows.empty:
        return empty("Nothing to cover in this period.")
    names = [labels.get(m, m) for m in rows["measure"]]
    figure = go.Figure(
        go.Bar(
            y=names,
            x=rows["share"],
            orientation="h",
            marker={"color": BLUE},
            text=[f"{c:,} of {t:,}" for c, t in zip(rows["covered"], rows["total"], strict=True)],
            textposition="auto",
        )
    )
    # a little past 100 %: a tick label at the very edge is dropped (the axis read "0–80 %")
    figure.update_xaxes(range=[0, 1.06], tickformat=".0%", tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1])
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, height=90 + 36 * len(rows), showlegend=False)

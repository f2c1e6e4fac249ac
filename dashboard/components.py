"""The building blocks every page uses: figure cards, tables, charts, empty states.

- Every figure card and table column carries its definition as a tooltip, from the one
  glossary (`metrics.glossary`).
- Every chart comes with its numbers as a table and a CSV download.
- Tiers and states are words with a colour (and an icon), never a colour alone.
- Text from the warehouse is never HTML: tables show it as text, Markdown gets it escaped
  (`md`), charts get it escaped (`charts.safe`). Nothing here uses `unsafe_allow_html`.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import charts, filters, queries
from dashboard.filters import View
from metrics import Period
from metrics.glossary import Term, help_text, term
from metrics.wording import NO_INCIDENT_DATA, hours_words, shown_change_fail_tier

MISSING = "—"
INSUFFICIENT = "insufficient data"  # the contract's tier for a figure on too few rows
# a wide table's tier cells: the tier the contract names, in the few letters a narrow column
# holds (the column's help says it in full)
COMPACT_TIERS = {INSUFFICIENT: "n < 5", NO_INCIDENT_DATA: "no data"}
TIER_BADGES = {
    "elite": ("blue", ":material/keyboard_double_arrow_up:"),
    "high": ("green", ":material/keyboard_arrow_up:"),
    "medium": ("orange", ":material/remove:"),
    "low": ("red", ":material/keyboard_arrow_down:"),
    "insufficient data": ("gray", ":material/help:"),
}
STATUS_BADGES = {
    "ok": ("blue", ":material/check_circle:"),
    "at_risk": ("orange", ":material/warning:"),
    "exhausted": ("red", ":material/block:"),
    "no data": ("gray", ":material/help:"),
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def md(value: Any) -> str:
    """Untrusted text made inert for Markdown: every character Markdown (or Streamlit's
    directives such as `:red[…]`) could interpret is escaped, and `<` `>` `&` become
    entities, so `<script>` and `[x](javascript:…)` show exactly as written."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;")
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return text.replace("\\<", "&lt;").replace("\\>", "&gt;").replace("\n", " ")


# --- numbers as words --------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def hours(value: float | None) -> str:
    return MISSING if _missing(value) else hours_words(value)


# where incidents come from, for a warehouse that holds none
INCIDENT_SOURCES = "sync PagerDuty or Opsgenie, or import incidents (poise import --kind incidents)"


def days_left_words(days: float) -> str:
    """Time left before an expiry, in days: "12.5 d", "20 h", or "expired 60.2 d ago"."""
    if days < 0:
        return f"expired {hours_words(-days * 24)} ago"
    return hours_words(days * 24)


def minutes(value: float | None) -> str:
    if _missing(value):
        return MISSING
    return hours(value / 60.0)


def percent(value: float | None, digits: int = 1) -> str:
    if _missing(value):
        return MISSING
    return f"{value * 100:,.{digits}f} %"


def per_week(value: float | None) -> str:
    return MISSING if _missing(value) else f"{value:,.1f}"


def count(value: float | None) -> str:
    return MISSING if _missing(value) else f"{value:,.0f}"


def burn(value: float | None) -> str:
    return MISSING if _missing(value) else f"{value:,.2f}×"


FORMATS = {
    "hours": hours,
    "minutes": minutes,
    "share": percent,
    "per week": per_week,
    "×": burn,
    "": count,
}


def signed(value: float | None, unit: str) -> str | None:
    """A change as st.metric's delta text (its sign sets the arrow), or None."""
    if _missing(value):
        return None
    if unit == "share":
        text = f"{value * 100:+,.1f} pts"
    elif unit == "hours":
        text = ("+" if value >= 0 else "−") + hours(abs(value))
    elif unit == "minutes":
        text = ("+" if value >= 0 else "−") + minutes(abs(value))
    elif unit == "":  # a figure without a unit is a count: "+3", not "+3.0"
        text = f"{value:+,.0f}"
    else:
        text = f"{value:+,.1f}"
    return text.replace("−", "-")


# --- figures -----------------------------------------------------------------------------------


def badge(word: str | None, kind: str = "tier") -> None:
    """A tier or state in words, coloured, with an icon."""
    table = TIER_BADGES if kind == "tier" else STATUS_BADGES
    label = word or "no tier"
    colour, icon = table.get(label, ("gray", ":material/help:"))
    st.badge(label.replace("_", " "), color=colour, icon=icon)


# Card titles that the glossary's labels would overflow when five cards share a row (a
# 1440 px screen); the tooltip still gives the definition under the full name.
CARD_LABELS = {
    "deployment_frequency": "Deploys per week",
    "recovery_time": "Recovery (median)",
    "lowest_budget_remaining": "Lowest budget left",
    "deployments_during_freeze": "Deploys in a freeze",
    "changes_linked": "Changes shipped",
    "deployments_with_changes": "Deploys naming changes",
}


def card_label(key: str, label: str | None = None) -> str:
    """A card's title: the one given, else the short one of `CARD_LABELS`, else the glossary's."""
    return label or CARD_LABELS.get(key, term(key).label)


# How narrow a figure card may get (border and padding included) before its row wraps onto
# another: its title, help icon and a value such as "-93.9 %" or "16 of 24" still fit on
# one line each. Columns would instead shrink the cards to "Deploys p…" and "1…" (five on a
# 1024 px laptop with the sidebar open are 100 px each). Five cards still share a row on a
# 1440 px screen (about 183 px each); a 1280 px laptop shows four a row, a 1024 px one two,
# a phone one.
CARD_WIDTH = 180
# A title longer than CARD_WIDTH holds widens its row's cards: the metric title's average
# width per character (14 px Source Sans, measured on the cards' titles), and what a card
# adds around its title (padding, border, the help icon).
TITLE_PX = 6.6
CARD_CHROME = 56


def card_width(titles: Iterable[str]) -> int:
    """The narrowest card in which the longest of `titles` fits."""
    widest = max((len(title) for title in titles), default=0)
    return max(CARD_WIDTH, math.ceil(CARD_CHROME + TITLE_PX * widest))


def card_row(titles: Sequence[str]) -> list[Any]:
    """One cell per figure card (titled `titles`, in order) in a row that wraps onto more
    rows where the screen is too narrow for all of them at `card_width`; `with cell:`
    fills one, as with `st.columns`."""
    grid = st.grid(max(1, len(titles)), min_column_width=card_width(titles))
    return [grid.cell() for _ in titles]


def chart_row(count: int, width: int) -> list[Any]:
    """`count` cells side by side while each can be `width` px wide (what its chart needs,
    e.g. `charts.budget_bars_width`), else one under another; `with cell:` fills one. In
    `st.columns`, two halves of a 1024 px laptop's page cut the longest names of a chart."""
    grid = st.grid(max(1, count), min_column_width=width)
    return [grid.cell() for _ in range(count)]


def figure_card(
    key: str,
    value: Any,
    *,
    label: str | None = None,
    change: float | None = None,
    tier: str | None = None,
    status: str | None = None,
    note: str | None = None,
    settled: bool = False,
) -> None:
    """One figure: its value, its definition on hover, its change from the previous
    period (green when it improved; grey when `settled`: a change within noise, or on
    too few rows to tell), its tier in words and its sample."""
    entry = term(key)
    shown = FORMATS.get(entry.unit, count)(value) if not isinstance(value, str) else value
    colour = "inverse" if entry.better == "lower" else "normal" if entry.better else "off"
    delta = signed(change, entry.unit)
    # a change that reads as none ("+0", "+0.0 pts") is neither better nor worse: grey,
    # not a green or red arrow
    if settled or (delta is not None and not re.search(r"[1-9]", delta)):
        colour = "off"
    with st.container(border=True):
        st.metric(
            card_label(key, label),
            shown,
            delta=delta,
            delta_color=colour,
            help=help_text(key),
        )
        if tier is not None or status is not None:
            badge(tier if tier is not None else status, "tier" if tier is not None else "status")
        if note:
            st.caption(md(note))


def sample_note(count_value: int | None, noun: str) -> str:
    return f"n = {count_value or 0:,} {noun}"


# figure: (the value in its block, its key in `trends.change`, the note under it)
DORA_CARDS: dict[str, tuple[str, str, Any]] = {
    "deployment_frequency": (
        "per_week",
        "deployments_per_week",
        lambda f: sample_note(f["deployments"], "deployments"),
    ),
    "lead_time": (
        "median_hours",
        "lead_time_median_hours",
        lambda f: f"p90 {hours(f['p90_hours'])} · " + sample_note(f["changes"], "changes"),
    ),
    "change_failure_rate": (
        "rate",
        "change_failure_rate",
        lambda f: f"{f['failed']:,} failed of {f['deployments']:,}",
    ),
    "recovery_time": (
        "median_hours",
        "recovery_median_hours",
        lambda f: sample_note(f["failures"], "recovered failures"),
    ),
    "rework_rate": ("rate", "rework_rate", lambda f: f"{f['rework']:,} rollbacks and fixes"),
}


def dora_cards(
    dora: Mapping[str, Any],
    change: Mapping[str, Any],
    figures: tuple[str, ...] = (
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
    ),
    *,
    settled: Collection[str] = (),
    quality: Mapping[str, Any] | None = None,
) -> None:
    """The DORA figures of a scorecard side by side, each with its tier, sample and change
    from the previous period (`settled`: the compared keys whose change is not a real one,
    shown grey instead of green or orange). With the scorecard's `quality`, the change fail
    rate says how many deployments no incident data speaks for."""
    silent = int((quality or {}).get("deployments_without_incident_data") or 0)
    cells = card_row([card_label(key) for key in figures])
    for column, key in zip(cells, figures, strict=True):
        field, compared, note = DORA_CARDS[key]
        block = dora[key]
        text = note(block)
        tier = block.get("tier")
        if key == "change_failure_rate":
            tier = shown_change_fail_tier(block, quality)
            if silent:
                text += f" · {silent:,} with no incident data"
        with column:
            figure_card(
                key,
                block[field],
                change=change[compared]["delta"],
                tier=tier,
                note=text,
                # a change on too few rows is noise: grey, as its tier says
                settled=compared in settled or tier in (INSUFFICIENT, NO_INCIDENT_DATA),
            )


# Names up to this long fit a column sized to its content; a longer one (an imported name
# of up to 200 characters) would push the figures off the table, so its column is capped.
NAME_FITS = 24


def name_width(names: Iterable[Any]) -> Literal["medium"] | None:
    """The width for a column of names: their own (None) unless one is too long to fit."""
    return "medium" if any(len(str(name)) > NAME_FITS for name in names) else None


def listed(names: Sequence[Any], most: int = 3) -> str:
    """Names for a card's note: the first `most`, each cut to `charts.LABEL_CHARS`, then
    how many more (a card is a fifth of the page: the tables list them all)."""
    shown = [charts.cut(name) for name in names[:most]]
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" and {rest:,} more" if rest else "")


EXHAUSTED_LABEL = "Budgets exhausted"


def resilience_titles() -> list[str]:
    """The titles of `resilience_cards`, in order: for the `card_row` they go in."""
    return [
        card_label("slos_met"),
        card_label("lowest_budget_remaining"),
        EXHAUSTED_LABEL,
        card_label("deployments_during_freeze"),
    ]


def resilience_cards(
    summary: Mapping[str, Any], policy: Mapping[str, Any], columns: list[Any], judged_at: datetime
) -> None:
    """The SLO side in four cards: SLOs met, the lowest budget and its state, budgets
    exhausted (and at risk), deployments shipped during a freeze (and frozen at the end).

    SLOs are judged at the period's end over each SLO's own window (the contract), not over
    the period: the cards say when, so a past quarter's "frozen" is not read as today's."""
    without = summary["slos"] - summary["with_data"]
    frozen = policy.get("frozen_at_end") or []
    at = instant(judged_at)
    with columns[0]:
        figure_card(
            "slos_met",
            f"{summary['met']} of {summary['with_data']}" if summary["with_data"] else MISSING,
            note=f"{summary['slos']} SLOs in scope"
            + (f", {without} without data" if without else "")
            + f"; each over its own window to {at}",
        )
    with columns[1]:
        figure_card(
            "lowest_budget_remaining",
            summary["lowest_budget_remaining"],
            status=summary["worst_status"] or "no data",
            note=charts.cut(summary["lowest_budget_slo"]) or "no SLO with data",
        )
    with columns[2]:
        figure_card(
            "status",
            summary["exhausted"],
            label=EXHAUSTED_LABEL,
            note=f"{summary['at_risk']} more at risk (at the last 24 h burn rate)",
        )
    with columns[3]:
        figure_card(
            "deployments_during_freeze",
            policy.get("deployments_during_freeze", 0),
            note=f"{policy.get('exempt', 0)} of them rollbacks or fixes (allowed)"
            + (f"; frozen at {at}: {listed(frozen)}" if frozen else f"; none frozen at {at}"),
        )


def instant(moment: datetime) -> str:
    """A period's edge as the pages write it: `2026-10-01 00:00 UTC`."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


# --- tables and charts ----------------------------------------------------------------------------


def column_help(frame: pd.DataFrame, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Column configs: readable titles, the glossary's definition where a column is a
    figure, shares in percent and hours to one decimal (by the glossary's unit), and times
    as UTC minutes (or days, where every value is a midnight) instead of pandas' long form."""
    config: dict[str, Any] = {}
    labels = labels or {}
    for column in frame.columns:
        title = labels.get(column, str(column).replace("_", " "))
        try:
            entry: Term | None = term(str(column))
        except KeyError:
            entry = None
        definition = help_text(str(column)) if entry is not None else None
        values = frame[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            given = values.dropna()
            days = bool(len(given)) and bool((given.dt.floor("D") == given).all())
            config[column] = st.column_config.DatetimeColumn(
                f"{title} (UTC)",
                format="YYYY-MM-DD" if days else "YYYY-MM-DD HH:mm",
                help=definition,
            )
        elif pd.api.types.is_float_dtype(values) and (unit := _unit(str(column), entry)):
            if unit == "hours" and column not in labels:
                title = title.removesuffix(" hours")  # the cells say their unit
            config[column] = st.column_config.NumberColumn(
                title, format=COLUMN_FORMATS[unit], help=definition
            )
        else:
            config[column] = st.column_config.Column(title, help=definition)
    return config


# hours have no number format: `displayed` words them as the cards do
COLUMN_FORMATS = {"share": "percent", "hours": None, "per week": "%.1f"}
# Streamlit's "percent" shows as many decimals as a value has (11.76 % beside 6.9 %): a
# table's shares are shown as percent numbers to one decimal instead, its CSV keeps them
# as the fractions the contract gives.
SHARE_SHOWN = "%.1f%%"


def displayed(
    frame: pd.DataFrame | Any,
    column_config: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    durations: Collection[str] = (),
    written: Collection[str] = (),
) -> tuple[pd.DataFrame | Any, dict[str, Any]]:
    """What a table shows and its column configs: the page's own configs over
    `column_help`'s, and the shares the page left to it (of a DataFrame; a Styler keeps
    Streamlit's percent) scaled to percent numbers shown with one decimal."""
    rows = frame.data if hasattr(frame, "data") and isinstance(frame.data, pd.DataFrame) else frame
    config = column_help(rows, labels)
    shares = [
        column
        for column, entry in config.items()
        if column not in column_config
        and (entry.get("type_config") or {}).get("format") == COLUMN_FORMATS["share"]
    ]
    if shares and isinstance(frame, pd.DataFrame):
        frame = frame.assign(**{column: frame[column] * 100 for column in shares})
        for column in shares:
            config[column]["type_config"]["format"] = SHARE_SHOWN
    config.update(column_config)
    return _durations_worded(frame, rows, config, durations, written), config


# Tables of up to this many cells word their durations through a Styler. Streamlit sends a
# Styler's text for every cell (≈ 0.15 s for 16,000 cells, 0.7 s for 50,000), which a long
# table should not pay for on every rerun: it gets "%.1f h" instead.
STYLED_CELLS = 20_000


def _durations_worded(
    frame: pd.DataFrame | Any,
    rows: pd.DataFrame,
    config: dict[str, Any],
    named: Collection[str],
    written: Collection[str] = (),
) -> Any:
    """Hours columns (`…_hours`, their `…_hours_change` from another period, and those
    `named`) that the page gave no number format, shown as the cards show durations —
    "4.4 h", "21.0 d", "12 min" — while the column stays hours for sorting and the CSV.
    Fills `config`."""
    durations = [
        column
        for column in rows.columns
        if (str(column).endswith(("_hours", "_hours_change")) or column in named)
        and column not in written
        and pd.api.types.is_float_dtype(rows[column])
        and not (config.get(column) or {}).get("type_config", {}).get("format")
    ]
    if not durations:
        return frame
    if rows.size > STYLED_CELLS:
        for column in durations:
            entry = config.get(column) or st.column_config.NumberColumn(str(column))
            shown = "%+.1f h" if str(column).endswith("_change") else "%.1f h"
            config[column] = {
                **entry,
                "type_config": {**entry.get("type_config", {}), "format": shown},
            }
        return frame
    styler = frame.style if isinstance(frame, pd.DataFrame) else frame
    for column in durations:
        signed = str(column).endswith("_change")
        styler = styler.format(
            lambda value, signed=signed: hours_words(value, signed=signed),
            subset=[column],
            na_rep=MISSING,
        )
    return styler


def _unit(column: str, entry: Term | None) -> str | None:
    """The unit of a figure column: the glossary's, else what its name ends with."""
    if entry is not None and entry.unit in COLUMN_FORMATS:
        return entry.unit
    if column.endswith("_hours"):
        return "hours"
    if column.endswith("per_week"):
        return "per week"
    return None


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def table(
    frame: pd.DataFrame | Any,
    name: str,
    *,
    column_config: dict[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    height: int | str = "auto",
    key: str | None = None,
    durations: Collection[str] = (),
    written: Collection[str] = (),
) -> None:
    """A table (a DataFrame, or a Styler of one) with a CSV download of exactly its rows;
    hours columns (`…_hours`, and those named in `durations`) are worded as durations,
    except those the Styler already writes (`written`)."""
    rows = frame.data if hasattr(frame, "data") and isinstance(frame.data, pd.DataFrame) else frame
    shown, config = displayed(frame, column_config or {}, labels, durations, written)
    # an empty cell is a figure that has no value (too few events, nothing recorded): a dash,
    # not Streamlit's default "None"
    st.dataframe(shown, hide_index=True, column_config=config, height=height, placeholder="—")
    st.download_button(
        "Download CSV",
        lambda: _csv(rows),  # written when clicked: a large table's CSV costs seconds
        file_name=f"poise-{name}.csv",
        mime="text/csv",
        key=key or f"csv-{name}",
        icon=":material/download:",
        on_click="ignore",
    )


def flagged_weeks(flags: pd.DataFrame, name: str) -> None:
    """The unusual weeks (`guardrails.flag_rows`): the one-line description only repeats
    the other columns, so it stays in the CSV and off the page."""
    table(
        flags,
        name,
        column_config={
            "week": st.column_config.DatetimeColumn("week of", format="YYYY-MM-DD"),
            "description": None,
        },
    )


def chart(
    figure: go.Figure,
    numbers: pd.DataFrame,
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    column_config: dict[str, Any] | None = None,
    durations: Collection[str] = (),
) -> None:
    """A chart, with its numbers as a table (and CSV) under it."""
    st.plotly_chart(figure, key=f"chart-{name}", config={"displaylogo": False})
    with st.expander("Numbers behind this chart", icon=":material/table:"):
        table(
            numbers,
            name,
            labels=labels,
            column_config=column_config,
            key=f"csv-chart-{name}",
            durations=durations,
        )


# --- page frame ---------------------------------------------------------------------------------


def header(title: str, view: View | None, *, about: str, period: bool = True) -> None:
    """The page title, what the page is for, and the view it shows."""
    st.title(title)
    if view is not None:
        when = (
            f" · {md(view.period_label)} ({view.query.start:%Y-%m-%d} to "
            f"{view.query.end:%Y-%m-%d}, end excluded, UTC)"
            if period
            else ""
        )
        st.caption(f"{md(about)} · **{md(view.scope_label)}**{when}")
        for notice in view.notices:
            st.warning(md(notice), icon=":material/link_off:")
    else:
        st.caption(md(about))


def first_run(catalog: Mapping[str, Any]) -> bool:
    """When the warehouse holds nothing yet, say how to fill it (and return True)."""
    if not catalog.get("empty"):
        return False
    url = queries.engine().url
    # a local file is named (a mistyped --db shows here); a shared server's address is not
    where = f" `{url.database}`" if url.get_backend_name() == "sqlite" and url.database else ""
    st.info(
        f"The warehouse{where} is empty: there is nothing to show yet.", icon=":material/inbox:"
    )
    st.markdown(
        "**Explore with demo data.** Build a demo organisation (six teams, fifteen services, "
        "two years of history) into this warehouse, then reload this page:"
    )
    st.code("poise demo        # or: make demo", language="bash")
    st.markdown(
        "**Connect your own sources.** Describe teams, services and sources in `poise.yaml`, "
        "then collect:"
    )
    st.code("poise init\n$EDITOR poise.yaml\npoise sync\npoise ui", language="bash")
    st.markdown(
        "**Or import files** exported from any tool (CSV or JSON Lines): "
        "`poise import --kind deployments deployments.csv` (see docs/import.md)."
    )
    return True


def _leave_pages_directory_mode() -> None:
    """Run through app.py's navigation even when a page's own URL was the first one the
    server saw: until some session has run app.py, Streamlit treats `pages/` as an old-style
    pages directory and runs the page alone (no router, no page config). Turn that off and
    run again, through the router."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_start(title: str, about: str, **sidebar: Any) -> View | None:
    """Filters, title and the empty-warehouse state: every page begins here. Returns
    None when there is nothing to show (the page stops); a warehouse that cannot be reached
    stops the page with one message (`dashboard.outage`)."""
    _leave_pages_directory_mode()
    queries.ensure_available()  # a warehouse that cannot be reached: one message, no traceback
    view = filters.sidebar(**sidebar)
    with_period = sidebar.get("period", True)
    header(title, view, about=about, period=with_period)
    if first_run(view.catalog):
        return None
    if with_period:
        period_hint(view)
    return view


def period_hint(view: View) -> None:
    """When the period is after the latest data, or before the first, say so and offer a
    period of the same length that holds data (the last weeks, or the first)."""
    latest, first = view.catalog.get("latest"), view.catalog.get("first")
    length = view.query.end - view.query.start
    if latest is not None and latest < view.query.start:
        end = filters.today(pd.Timestamp(latest).to_pydatetime()) + pd.Timedelta(days=1)
        suggestion = Period(end - length, end)
        which = f"the latest deployment or incident is from {latest:%Y-%m-%d}"
    elif first is not None and first >= view.query.end:
        start = filters.today(pd.Timestamp(first).to_pydatetime())
        # up to today at most: a period running into the future would only add empty weeks
        end = min(start + length, max(filters.today(), start + pd.Timedelta(days=1)))
        suggestion = Period(start, end)
        which = f"the first deployment or incident is from {first:%Y-%m-%d}"
    else:
        return
    st.info(f"No data in this period: {which}.", icon=":material/event_busy:")
    if st.button(
        f"Show {suggestion.start:%Y-%m-%d} to {(suggestion.end - pd.Timedelta(days=1)):%Y-%m-%d}",
        key="jump-to-data",
    ):
        filters.jump_to(suggestion)
        st.rerun()


def not_enough(message: str) -> None:
    st.info(md(message), icon=":material/hourglass_empty:")


SYNC_STATES = {"ok": charts.BLUE, "failing": charts.VERMILLION, "never succeeded": charts.ORANGE}


def _fill(colour: str | None) -> str:
    if not colour:
        return ""
    ink = "#FFFFFF" if colour == charts.BLUE else "#000000"
    return f"background-color: {colour}; color: {ink}"


def _tier_fill(value: Any) -> str:
    key = INSUFFICIENT if value == NO_INCIDENT_DATA else str(value)  # both: no tier
    return _fill(charts.TIER_COLOURS.get(key) or charts.STATUS_COLOURS.get(key))


def _tier_word(value: Any, *, compact: bool = False) -> str:
    text = str(value).replace("_", " ")
    return COMPACT_TIERS.get(text, text) if compact else text


def tier_style(frame: pd.DataFrame, columns: list[str]) -> Any:
    """A Styler colouring tier and status cells (the words stay, `at_risk` shown as
    "at risk") for st.dataframe."""
    present = [column for column in columns if column in frame.columns]
    words = dict.fromkeys(present, _tier_word)
    return frame.style.map(_tier_fill, subset=present).format(words, na_rep=MISSING)


def tiered_style(
    frame: pd.DataFrame,
    tiers: Mapping[str, str],
    texts: Mapping[str, Callable[[Any], str]],
    states: Collection[str] = (),
) -> Any:
    """A Styler showing each figure of `tiers` (figure column to its tier column) as
    "figure · tier" on the tier's colour, the figure written by `texts`; the cells stay
    numbers, so the table sorts by the figure. `states` columns (a budget's state) are
    coloured by their word. The tier columns stay in the frame (hide them, the CSV keeps
    them). Tiers are compact ("n < 5", "no data")."""

    def fills(_: pd.DataFrame) -> pd.DataFrame:
        css = pd.DataFrame("", index=frame.index, columns=frame.columns)
        for figure, tier in tiers.items():
            css[figure] = frame[tier].map(_tier_fill)
        for state in states:
            css[state] = frame[state].map(_tier_fill)
        return css

    styler = frame.style.apply(fills, axis=None)
    for figure, tier in tiers.items():
        write = texts[figure]
        shown = [
            f"{write(value) or MISSING} · {_tier_word(rank, compact=True)}"
            if pd.notna(rank)
            else write(value)
            for value, rank in zip(frame[figure], frame[tier], strict=True)
        ]
        styler = cell_texts(styler, figure, shown)
    if states:  # (a formatter dict resets every column it does not name)
        styler = styler.format(_tier_word, subset=list(states), na_rep=MISSING)
    return styler


def cell_texts(styler: Any, column: str, texts: Sequence[str]) -> Any:
    """The Styler with `column`'s cells written as `texts` (one a row, in order) while
    their values stay what the table sorts by. One format a cell, as a formatter sees only
    its value: for tables of a handful of rows."""
    for index, text in zip(styler.data.index, texts, strict=True):
        styler = styler.format(
            lambda _value, text=text: text, subset=pd.IndexSlice[[index], [column]]
        )
    return styler


def state_style(frame: pd.DataFrame, column: str, colours: Mapping[str, str]) -> Any:
    """A Styler colouring one column's cells by their word."""
    return frame.style.map(lambda value: _fill(colours.get(str(value))), subset=[column])


INERT_POLICY = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "style-src 'unsafe-inline'; img-src data:; font-src data:\">"
)


def inert_document(document: bytes) -> str:
    """A self-contained HTML document as a `data:` URL that can run no script and load
    nothing: a Content-Security-Policy allowing only inline styles and data images goes
    first in its head, and a data URL gives it an opaque origin, cut off from the app."""
    text = document.decode("utf-8")
    head = re.search(r"<head[^>]*>", text, flags=re.IGNORECASE)
    text = text[: head.end()] + INERT_POLICY + text[head.end() :] if head else INERT_POLICY + text
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"data:text/html;charset=utf-8;base64,{encoded}"

"""The dashboard's pure parts: chart builders, wording, escaping, periods, scope, retro notes."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from dashboard import charts, components, filters, retro
from dashboard.data import Query, web_links
from metrics.wording import hours_words
from poise.errors import PoiseError

NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)


def _t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def teams() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "team": ["fast", "slow", "<b>x</b>", "idle"],
            "deploys_per_week": [40.0, 0.5, 3.0, 0.0],
            "change_fail_rate": [0.12, 0.0, None, None],
            "lead_time_hours": [2.0, 300.0, 20.0, None],
            "lowest_budget_remaining": [-0.5, 0.9, None, None],
            "budget_state": ["exhausted", "ok", "no data", "no data"],
        }
    )


def test_velocity_stability_marks_each_team_by_its_weakest_budget() -> None:
    figure = charts.velocity_stability(teams())
    by_name = {trace.name: trace for trace in figure.data}
    assert set(by_name) == {
        "weakest SLO budget: exhausted",
        "weakest SLO budget: ok",
        "weakest SLO budget: no data",
    }
    burning = by_name["weakest SLO budget: exhausted"]
    assert list(burning.x) == [40.0] and list(burning.y) == [0.12]
    assert burning.marker.symbol == "x" and burning.marker.color == charts.VERMILLION
    # a team with no change fail rate sits at 0; one that never deployed is left out
    unknown = by_name["weakest SLO budget: no data"]
    assert list(unknown.text) == ["&lt;b&gt;x&lt;/b&gt;"]
    assert figure.layout.xaxis.type == "log"
    assert (
        charts.velocity_stability(teams().iloc[3:]).layout.annotations[0].text.startswith("No team")
    )


def test_a_team_no_incident_data_speaks_for_is_labelled_so_on_the_chart() -> None:
    frame = teams().assign(change_fail_tier=["high", "no incident data", None, None])
    by_name = {trace.name: trace for trace in charts.velocity_stability(frame).data}
    assert list(by_name["weakest SLO budget: ok"].text) == ["slow (no incident data)"]
    assert list(by_name["weakest SLO budget: exhausted"].text) == ["fast"]


def test_velocity_stability_of_one_team_keeps_its_legend_and_tier_lines() -> None:
    figure = charts.velocity_stability(teams().iloc[:1])
    assert figure.layout.showlegend is True  # Plotly hides a lone trace's legend otherwise
    # the weekly and daily lines stay in view, with plain numbers for ticks
    assert {"1", "5", "10", "50"} <= set(figure.layout.xaxis.ticktext)
    low, high = figure.layout.xaxis.range
    assert 10**low < 1 and 10**high > 40
    bands = [a.text for a in figure.layout.annotations if a.xref == "paper" and a.x > 1]
    assert bands == ["elite", "high", "medium", "low"]


def test_hours_axis_words_its_ticks() -> None:
    narrow = charts.hours_axis(pd.Series([1.5, 7.0]))
    assert narrow["type"] == "log" and narrow["ticktext"] == ["1 h", "2 h", "4 h", "8 h"]
    wide = charts.hours_axis(pd.Series([0.08, 900.0]))
    assert wide["ticktext"][0] == "6 min" and "1 w" in wide["ticktext"]
    assert hours_words(0.5) == "30 min" and hours_words(72) == "3.0 d"


def test_trend_draws_one_line_per_column_with_gaps_kept() -> None:
    weekly = pd.DataFrame(
        {
            "bucket_start": [_t("2026-11-02"), _t("2026-11-09"), _t("2026-11-16")],
            "lead_time_median_hours": [3.0, None, 5.0],
            "lead_time_p90_hours": [9.0, None, 12.0],
        }
    )
    figure = charts.trend(
        weekly,
        {"lead_time_median_hours": "median", "lead_time_p90_hours": "p90"},
        title="Lead time",
    )
    assert [trace.name for trace in figure.data] == ["median", "p90"]
    assert pd.isna(figure.data[0].y[1]) and figure.data[0].connectgaps is False
    assert figure.layout.xaxis.type == "date"
    bars = charts.trend(weekly, {"lead_time_median_hours": "x"}, title="t", bars=True)
    assert bars.data[0].type == "bar" and bars.layout.showlegend is False
    assert charts.trend(weekly.iloc[0:0], {"x": "x"}, title="t").layout.annotations
    # weeks without a single figure: a sentence as tall as its neighbours, not empty axes
    blank = weekly.assign(lead_time_median_hours=None, lead_time_p90_hours=None)
    nothing = charts.trend(
        blank,
        {"lead_time_median_hours": "median", "lead_time_p90_hours": "p90"},
        title="Recovery time",
    )
    assert not nothing.data and nothing.layout.height == figure.layout.height
    assert nothing.layout.annotations[0].text == (
        "No week of this period has a recovery time figure."
    )


def test_a_caveat_greys_the_trend_and_says_why() -> None:
    weekly = pd.DataFrame(
        {"bucket_start": [_t("2026-11-02"), _t("2026-11-09")], "rate": [0.0, 0.0]}
    )
    figure = charts.trend(weekly, {"rate": "rate"}, title="t", percent=True, caveat="why <b>")
    assert figure.data[0].line.color == charts.GREY
    assert [note.text for note in figure.layout.annotations] == ["why &lt;b&gt;"]
    plain = charts.trend(weekly, {"rate": "rate"}, title="t", percent=True)
    assert plain.data[0].line.color != charts.GREY and not plain.layout.annotations


def test_parts_of_weeks_are_drawn_pale_or_hollow_and_say_so() -> None:
    weekly = pd.DataFrame(
        {  # a period from a Friday: its first bucket holds three days
            "bucket_start": [_t("2026-10-30"), _t("2026-11-02"), _t("2026-11-09")],
            "bucket_end": [_t("2026-11-02"), _t("2026-11-09"), _t("2026-11-16")],
            "deployments_per_week": [39.7, 128.0, 122.0],
        }
    )
    bars = charts.trend(weekly, {"deployments_per_week": "deploys"}, title="t", bars=True)
    assert list(bars.data[0].marker.opacity) == [0.4, 1.0, 1.0]
    assert list(bars.data[0].customdata) == ["3 of 7 days", "whole week", "whole week"]
    assert "part of a week" in bars.layout.annotations[0].text
    # each bar covers its own days from its start; labels name the buckets' starts
    assert list(bars.data[0].width) == [3 * charts.DAY_MS * 0.85] + [7 * charts.DAY_MS * 0.85] * 2
    assert bars.data[0].offset == 0
    assert list(bars.layout.xaxis.ticktext) == ["30 Oct", "02 Nov", "09 Nov"]
    lines = charts.trend(weekly, {"deployments_per_week": "deploys"}, title="t")
    hollow = [trace for trace in lines.data if trace.showlegend is False]
    assert len(hollow) == 1 and list(hollow[0].y) == [39.7]
    whole = weekly.iloc[1:]
    assert not charts.trend(whole, {"deployments_per_week": "d"}, title="t").layout.annotations


def test_notes_above_a_trend_never_share_a_line_with_its_legend_or_each_other() -> None:
    """Side by side, the legend ("median", "p90") and "open markers: part of a week" ran
    into each other in a half-page chart on a 1024 px laptop and on a phone."""
    weekly = pd.DataFrame(
        {
            "bucket_start": [_t("2026-10-30"), _t("2026-11-02")],
            "bucket_end": [_t("2026-11-02"), _t("2026-11-09")],
            "median": [2.0, 3.0],
            "p90": [20.0, 30.0],
        }
    )
    two = charts.trend(weekly, {"median": "median", "p90": "p90"}, title="t", log=True)
    assert two.layout.showlegend and two.layout.legend.y > 1  # the legend: the first line
    (note,) = two.layout.annotations
    assert note.yanchor == "bottom" and note.yshift >= charts.NOTE_LINE  # the second
    assert two.layout.margin.t >= note.yshift + charts.NOTE_LINE  # inside the chart
    one = charts.trend(weekly, {"median": "m"}, title="t", caveat="why")
    assert not one.layout.showlegend
    lines = sorted(note.yshift // charts.NOTE_LINE for note in one.layout.annotations)
    assert lines == [0, 1]  # the caveat and the part-of-a-week note: a line each
    assert one.layout.margin.t >= max(n.yshift for n in one.layout.annotations) + charts.NOTE_LINE
    plain = charts.trend(weekly.iloc[1:], {"median": "m"}, title="t")
    assert plain.layout.margin.t == 30  # nothing above the plot: the margin of every chart


def test_lead_time_distribution_marks_p50_and_p90() -> None:
    changes = pd.DataFrame({"lead_hours": [0.5, 1.0, 2.0, 4.0, 8.0, 100.0, -1.0]})
    figure = charts.lead_time_distribution(changes, 4.0, 183.8)
    assert sum(figure.data[0].y) == 6  # the non-positive lead time is not drawn
    lines = [shape for shape in figure.layout.shapes if shape.type == "line"]
    assert sorted(shape.x0 for shape in lines) == [4.0, 183.8]
    texts = [a.text for a in figure.layout.annotations]
    # worded as the cards word them: days from two days on
    assert "p50 4.0 h" in texts and "p90 7.7 d" in texts
    assert "1 h" in figure.layout.xaxis.ticktext
    assert charts.lead_time_distribution(
        changes[changes.lead_hours < 0], None, None
    ).layout.annotations


def test_lead_time_stages_shows_known_stages_only() -> None:
    stages = pd.DataFrame(
        {
            "stage": ["coding_hours", "review_hours", "before_merge_hours", "waiting_hours"],
            "median_hours": [None, None, 5.0, 20.0],
            "p90_hours": [None, None, 9.0, 40.0],
            "changes": [0, 0, 10, 10],
        }
    )
    figure = charts.lead_time_stages(stages)
    assert list(figure.data[0].y) == ["Commit to merge (n=10)", "Waiting for deploy (n=10)"]
    assert list(figure.data[1].x) == [9.0, 40.0]
    # named above their marks: as tick labels they left the marks a sliver of the column on
    # a 1024 px laptop, and cut the names ("ommit to merge") and times ("4.6 …")
    assert names_written_above(figure) == list(figure.data[0].y)
    empty = charts.lead_time_stages(stages.assign(changes=0))
    assert "merge times" in empty.layout.annotations[0].text


def test_burndown_with_forecast_and_zero_line() -> None:
    series = pd.DataFrame(
        {
            "ts": [_t("2026-11-01"), _t("2026-11-02")],
            "remaining": [0.9, 0.5],
            "even_burn": [0.97, 0.93],
        }
    )
    forecast = pd.DataFrame({"ts": [_t("2026-11-02"), _t("2026-11-04")], "remaining": [0.5, 0.0]})
    figure = charts.burndown(series, forecast, "<i>slo</i>")
    assert [t.name for t in figure.data] == [
        "spent evenly (burn rate 1)",
        "budget remaining",
        "forecast at the 24 h burn rate",
    ]
    assert figure.layout.shapes[0].y0 == 0
    assert "&lt;i&gt;slo&lt;/i&gt;" in figure.layout.yaxis.title.text
    assert len(charts.burndown(series, forecast.iloc[0:0], "s").data) == 2


def test_deployment_timeline_shades_freezes_on_a_date_axis() -> None:
    deployments = pd.DataFrame(
        {
            "id": ["d1", "d2", "d3"],
            "service": ["a", "a", "b"],
            "deployed_at": [_t("2026-11-01"), _t("2026-11-03"), _t("2026-11-02")],
            "failed": [False, True, False],
        }
    )
    freezes = pd.DataFrame(
        {"service": ["a"], "start": [_t("2026-11-02")], "end": [_t("2026-11-04")], "slos": ["a-av"]}
    )
    figure = charts.deployment_timeline(deployments, freezes)
    assert figure.layout.xaxis.type == "date"
    assert [s.type for s in figure.layout.shapes] == ["rect"]
    failed = next(t for t in figure.data if t.name == "failed deployment")
    assert list(failed.text) == ["d2"] and failed.marker.symbol == "x"
    assert list(figure.layout.yaxis.ticktext) == ["a", "b"]


def test_a_timeline_of_many_services_draws_the_frozen_and_busiest_and_says_so() -> None:
    """The first 25 names in the alphabet were drawn, silently: a frozen service named
    late in it was left off the very chart about freezes."""
    services = [f"svc-{n:02}" for n in range(30)]
    deployments = pd.DataFrame(
        {
            "id": [f"d{n}" for n in range(30)] + ["d-extra-1", "d-extra-2"],
            "service": [*services, "svc-28", "svc-28"],
            "deployed_at": [_t("2026-11-01")] * 32,
            "failed": [False] * 32,
        }
    )
    freezes = pd.DataFrame(
        {
            "service": ["svc-29"],
            "start": [_t("2026-11-02")],
            "end": [_t("2026-11-04")],
            "slos": ["x"],
        }
    )
    figure = charts.deployment_timeline(deployments, freezes, limit=3)
    assert list(figure.layout.yaxis.ticktext) == ["svc-00", "svc-28", "svc-29"]
    (note,) = figure.layout.annotations
    assert note.text == (
        "3 of 30 services drawn: those frozen longest, then those deploying most; "
        "the table lists them all"
    )
    assert not charts.deployment_timeline(deployments, freezes, limit=30).layout.annotations


def test_an_incident_timeline_of_many_services_draws_those_with_most_incidents() -> None:
    services = ["a", "b", "c", "zz", "zz", "zz", "y", "y"]
    incidents = pd.DataFrame(
        {
            "id": [f"i{n}" for n in range(len(services))],
            "service": services,
            "severity": "SEV2",
            "title": "t",
            "started_at": _t("2026-11-01"),
            "resolved_at": _t("2026-11-01 05:00"),
            "mttr": 5.0,
        }
    )
    figure = charts.incident_timeline(incidents, limit=3)
    assert list(figure.layout.yaxis.ticktext) == ["a", "y", "zz"]  # then the first by name
    assert figure.layout.annotations[0].text.startswith("3 of 5 services drawn: those with")


def test_budget_bars_keep_the_largest() -> None:
    frame = pd.DataFrame(
        {
            "incident_id": [f"i{n}" for n in range(20)],
            "slo": "s",
            "budget_share": [n / 100 for n in range(20)],
        }
    )
    figure = charts.budget_bars(frame, "incident_id", limit=3)
    assert list(figure.data[0].x) == [0.19, 0.18, 0.17]
    assert figure.data[0].y[0] == "i19 · s"


def test_budget_bars_cut_each_name_of_a_pair_on_its_own() -> None:
    """Cut as one label, an incident and its SLO lost the SLO's name past 40 characters
    (`events-ingest-i0040 · events-ingest-ava…`)."""
    frame = pd.DataFrame(
        {"incident_id": ["events-ingest-i0040", "i" * 50], "slo": "events-ingest-availability",
         "budget_share": [0.9, 0.5]}
    )  # fmt: skip
    figure = charts.budget_bars(frame, "incident_id")
    assert [note.text for note in figure.layout.annotations] == [
        "events-ingest-i0040 · events-ingest-availability",
        f"{'i' * 39}… · events-ingest-availability",
    ]


def names_written_above(figure: Any) -> list[str]:
    """The rows' names as `_names_above` writes them: from the plot's left edge, above
    each row's middle, with no tick label left of the axis to take the bars' width."""
    assert figure.layout.yaxis.showticklabels is False
    names = [note for note in figure.layout.annotations if note.yref == "y"]
    for note in names:
        assert (note.xref, note.x, note.xanchor, note.yanchor) == ("paper", 0, "left", "bottom")
        assert note.yshift > 0
    return [note.text for note in names]


def test_budget_bars_name_each_bar_above_it_so_bars_keep_the_width() -> None:
    """As tick labels, names of 80 characters took all but Plotly's 64 px minimum from the
    bars on a 1024 px laptop (a half-page chart) and were cut on a phone."""
    frame = pd.DataFrame(
        {"incident_id": ["recommendations-i0185", "ledger-i0052"],
         "slo": ["recommendations-availability", "ledger-latency"],
         "budget_share": [0.4, 0.2]}
    )  # fmt: skip
    figure = charts.budget_bars(frame, "incident_id")
    assert names_written_above(figure) == [
        "recommendations-i0185 · recommendations-availability",
        "ledger-i0052 · ledger-latency",
    ]
    # the names go where the bars are not: each bar is thinner than its row, the name lifted
    # clear of the bar's upper half
    bar = figure.data[0]
    half_bar = bar.width * charts.NAMED_ROW / 2
    assert all(note.yshift > half_bar for note in figure.layout.annotations)
    assert figure.layout.height >= 90 + charts.NAMED_ROW * 2
    # the hover keeps the whole names
    assert list(bar.y) == [note.text for note in figure.layout.annotations]


def test_incident_timeline_draws_durations_by_severity() -> None:
    incidents = pd.DataFrame(
        {
            "id": ["i1", "i2"],
            "service": ["a", None],
            "severity": ["SEV1", None],
            "title": ["<script>x</script>", "t"],
            "started_at": [_t("2026-11-01"), _t("2026-11-02")],
            "resolved_at": [_t("2026-11-01 05:00"), pd.NaT],
            "mttr": [5.0, None],
        }
    )
    figure = charts.incident_timeline(incidents)
    markers = [t for t in figure.data if t.mode == "markers"]
    assert sorted(t.name for t in markers) == ["SEV1", "unspecified"]
    assert "&lt;script&gt;" in next(t for t in markers if t.name == "SEV1").text[0]
    lines = [t for t in figure.data if t.mode == "lines"]
    assert len(lines) == 1 and lines[0].x[1] == _t("2026-11-01 05:00")
    assert list(figure.layout.yaxis.ticktext) == ["(no service)", "a"]
    # an open incident's hover says so, instead of "resolved after NaN h"
    hover = {t.name: list(t.customdata) for t in markers}
    assert hover == {"SEV1": ["resolved after 5.0 h"], "unspecified": ["still open"]}
    # every line under every marker, and the most severe markers drawn last (on top)
    kinds = [t.mode for t in figure.data]
    assert kinds == sorted(kinds, key=lambda mode: mode == "markers")
    assert [t.name for t in markers] == ["unspecified", "SEV1"]
    # with the period's end given, the open incident runs dotted up to it
    until = _t("2026-11-03")
    drawn = charts.incident_timeline(incidents, until=until)
    dotted = [t for t in drawn.data if t.mode == "lines" and t.line.dash == "dot"]
    assert len(dotted) == 1 and list(dotted[0].x[:2]) == [_t("2026-11-02"), until]


def test_counts_have_whole_number_ticks() -> None:
    few = charts.counts_bar(pd.DataFrame({"c": ["a", "b"], "n": [3, 1]}), "c", "n", title="x")
    many = charts.counts_bar(pd.DataFrame({"c": ["a"], "n": [385]}), "c", "n", title="x")
    assert (few.layout.xaxis.dtick, many.layout.xaxis.dtick) == (1, 50)
    assert few.layout.xaxis.tickformat == ",d"


def test_response_times_three_panels() -> None:
    blocks = pd.DataFrame(
        {
            "severity": ["SEV1", "SEV2"],
            "count": [2, 5],
            "mttd_median_minutes": [3, 4],
            "mtta_median_minutes": [5, 6],
            "mttr_median_hours": [1.0, 2.0],
        }
    )
    figure = charts.response_times(blocks, "severity")
    assert len(figure.data) == 3
    assert list(figure.data[2].x) == [1.0, 2.0]
    assert list(figure.data[0].y) == ["SEV1 (n=2)", "SEV2 (n=5)"]


# The plot of a chart as wide as a 390 px phone's page (358 px) less the chart's margins
PHONE_PLOT = 358 - 20


def test_response_time_panels_keep_their_titles_apart_on_a_phone() -> None:
    """Titles such as "acknowledge, median (min)" ran into each other at 390 px, and a long
    cause written left of the panels left them less room still. Each group is now named
    above its bars, across the panels; each title is a word narrower than its panel on a
    phone, and the unit is the panel's axis title."""
    blocks = pd.DataFrame(
        {
            "cause": ["unpredictable state transition", "regression"],
            "count": [1, 18],
            "mttd_median_minutes": [120.0, 10.0],
            "mtta_median_minutes": [None, None],
            "mttr_median_hours": [100.0, 1.0],
        }
    )
    figure = charts.response_times(blocks, "cause")
    assert names_written_above(figure) == [
        "unpredictable state transition (n=1)",
        "regression (n=18)",
    ]
    titles = [note for note in figure.layout.annotations if note.yref == "paper"]
    assert [title.text for title in titles] == ["detect", "acknowledge", "resolve"]
    for title, axis in zip(titles, ("xaxis", "xaxis2", "xaxis3"), strict=True):
        start, end = figure.layout[axis].domain
        written = len(title.text) * charts.LABEL_CHAR_PX * title.font.size / 12
        assert written < (end - start) * PHONE_PLOT, title.text
    assert figure.layout.xaxis.title.text == "median, min"
    assert figure.layout.xaxis3.title.text == "median, h"
    # the empty panel says why where its axis would be, not across a name over the panels
    (note,) = [note for note in figure.layout.annotations if note.text == "none acknowledged"]
    assert (note.y, note.yanchor) == (0, "top")
    assert figure.layout.xaxis2.showticklabels is False
    assert figure.layout.height >= 120 + charts.NAMED_ROW * 2
    # top to bottom, with more than the usual half row above the first row for its name,
    # which otherwise rose across the titles
    assert figure.layout.yaxis.range[0] > figure.layout.yaxis.range[1] < -0.5


def positions(trace: Any) -> list[str]:
    """Where a trace writes each point's label (Plotly takes one position for all, too)."""
    where = trace.textposition
    return [where] * len(trace.x) if isinstance(where, str) else list(where)


def boxes(figure: Any, size: tuple[int, int]) -> list[tuple[float, float, float, float]]:
    """The velocity chart's point labels as boxes (px) in a plot of `size`."""
    width, height = size
    low, high = figure.layout.xaxis.range
    bottom, top = figure.layout.yaxis.range
    found = []
    for trace in figure.data:
        for x, y, text, position in zip(
            trace.x, trace.y, trace.text, positions(trace), strict=True
        ):
            spot_x = (math.log10(x) - low) / (high - low) * width
            spot_y = (y - bottom) / (top - bottom) * height
            found.append(charts._label_box(spot_x, spot_y, text, position))
    return found


def test_velocity_names_clear_each_other_on_a_phone_and_a_laptop() -> None:
    """Two teams a little apart had their names, each above its point, touching at 1024 px
    and on a phone. Each name now goes where it clears the other names and the points, at
    the plot sizes of a phone, a laptop and a wide screen."""
    close = (
        teams()
        .iloc[:3]
        .assign(
            team=["checkout", "payments", "search"],
            deploys_per_week=[5.0, 5.6, 40.0],
            change_fail_rate=[0.10, 0.09, 0.01],
            budget_state=["ok", "ok", "at_risk"],
        )
    )
    figure = charts.velocity_stability(close)
    chosen = [where for trace in figure.data for where in positions(trace)]
    assert chosen.count("top center") < 3  # above both, checkout and payments collide
    assert "top center" in chosen  # a team with room keeps its name above it
    for size in charts.LABEL_PLOTS:
        placed = boxes(figure, size)
        overlaps = [
            (a, b) for i, a in enumerate(placed) for b in placed[i + 1 :] if charts._overlap(a, b)
        ]
        assert not overlaps, size
        width, height = size
        assert all(b[0] >= 0 and b[2] <= width and b[1] >= 0 and b[3] <= height for b in placed)


def test_velocity_hint_sits_above_the_plot_not_on_its_elite_band() -> None:
    """ "better: right and low" lay in the plot's lower right corner: on the elite band,
    where the best teams' points and names go, and across the daily line on a phone."""
    figure = charts.velocity_stability(teams())
    (hint,) = [note for note in figure.layout.annotations if note.text == charts.HINT]
    assert (hint.yref, hint.y, hint.yanchor) == ("paper", 1, "bottom")  # above the plot
    assert hint.yshift >= charts.NOTE_LINE  # over the line of "weekly" and "daily"
    assert figure.layout.margin.t >= hint.yshift + charts.NOTE_LINE  # inside the chart


def test_budget_bars_say_how_wide_their_longest_name_needs_them() -> None:
    """Half of a 1024 px laptop's page (275 px) cut "recommendations-i0187 · recommendations-
    availa…": the page sets the two charts side by side only where each has the width its
    longest name needs, which puts them one under the other at 1024 px."""
    name = "recommendations-i0187 · recommendations-availability"
    frame = pd.DataFrame(
        {"incident_id": ["recommendations-i0187", "ledger-i0052"],
         "slo": ["recommendations-availability", "ledger-latency"],
         "budget_share": [0.4, 0.2]}
    )  # fmt: skip
    width = charts.budget_bars_width(frame, "incident_id")
    assert width >= len(name) * charts.LABEL_CHAR_PX + 20  # the name and the chart's margins
    assert 2 * width + 16 > 564  # two of them do not fit a 1024 px laptop's page
    assert width <= 358  # one fits a phone's
    few = frame.assign(incident_id=["a", "b"], slo="s")
    assert charts.budget_bars_width(few, "incident_id") == charts.NAMED_CHART_MIN
    assert charts.budget_bars_width(frame.iloc[0:0], "incident_id") == charts.NAMED_CHART_MIN


def test_coverage_bars_say_how_many_of_how_many() -> None:
    coverage = pd.DataFrame(
        {
            "measure": ["changes_linked", "slos_with_data"],
            "covered": [9, 0],
            "total": [10, 0],
            "share": [0.9, None],
        }
    )
    figure = charts.coverage_bars(coverage, {"changes_linked": "Changes linked"})
    assert list(figure.data[0].y) == ["Changes linked"] and list(figure.data[0].text) == ["9 of 10"]
    assert list(figure.layout.xaxis.tickvals)[-1] == 1 and figure.layout.xaxis.range[1] > 1


def test_markdown_escaping_leaves_no_markup() -> None:
    text = components.md("<script>alert(1)</script> [x](javascript:alert(1)) **b** :red[c]")
    assert "<" not in text and ">" not in text
    assert "&lt;script&gt;" in text
    assert "\\[x\\]\\(javascript\\:alert\\(1\\)\\)" in text
    assert "\\*\\*b\\*\\*" in text and "\\:red\\[c\\]" in text
    assert components.md(None) == ""


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "—"), (0.25, "15 min"), (5.04, "5.0 h"), (49.0, "2.0 d"), (float("nan"), "—")],
)
def test_hours_in_words(value: float | None, shown: str) -> None:
    assert components.hours(value) == shown


def test_signed_changes_and_percentages() -> None:
    assert components.signed(0.012, "share") == "+1.2 pts"
    assert components.signed(-1.5, "hours") == "-1.5 h"
    assert components.signed(None, "hours") is None
    assert components.percent(0.0712) == "7.1 %"


def test_inert_document_forbids_scripts() -> None:
    url = components.inert_document(
        b"<html><head><title>r</title></head><body><script>x</script></body></html>"
    )
    assert url.startswith("data:text/html;charset=utf-8;base64,")
    html = base64.b64decode(url.split(",", 1)[1]).decode()
    assert html.startswith(
        '<html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
    )


def test_periods_from_filter_values() -> None:
    period, label = filters.resolve_period("28d", now=NOW)
    assert (period.start, period.end, label) == (
        datetime(2026, 10, 30, tzinfo=UTC),
        datetime(2026, 11, 27, tzinfo=UTC),
        "Last 28 days",
    )
    period, label = filters.resolve_period("2026Q3", now=NOW)
    assert (period.start.month, period.end.month, label) == (7, 10, "2026Q3")
    period, label = filters.resolve_period("2026Q4", now=NOW)
    assert period.end == datetime(2026, 11, 27, tzinfo=UTC) and label == "2026Q4 to date"
    period, label = filters.resolve_period("custom", "2026-01-01", "2026-02-01", now=NOW)
    assert label == "2026-01-01 – 2026-01-31"
    # days still to come are cut at the start of today, as a quarter not over is
    later, label = filters.resolve_period("custom", "2026-11-01", "2027-01-01", now=NOW)
    assert later.end == datetime(2026, 11, 27, tzinfo=UTC)
    assert label == "2026-11-01 – 2026-11-26 (to date)"
    for bad in (
        ("2027Q1",),
        ("13d",),
        ("custom", "2026-02-01", "2026-01-01"),
        ("custom", "yesterday"),
        ("custom", "2026-11-27", "2026-12-01"),
    ):
        with pytest.raises(PoiseError):
            filters.resolve_period(*bad, now=NOW)
    assert filters.period_params(period) == {
        "period": "custom",
        "from": "2026-01-01",
        "to": "2026-02-01",
    }


def test_quarter_choices_run_from_the_data_to_now() -> None:
    assert filters.quarter_choices(datetime(2026, 2, 10, tzinfo=UTC), NOW) == [
        "2026Q4",
        "2026Q3",
        "2026Q2",
        "2026Q1",
    ]
    assert filters.quarter_choices(None, NOW)[:2] == ["2026Q4", "2026Q3"]


def test_allowed_scope_drops_what_does_not_exist() -> None:
    catalog = {
        "teams": ["a", "b"],
        "services": pd.DataFrame({"name": ["s1", "s2"], "team": ["a", "b"]}),
    }
    assert filters.allowed_scope("a", None, catalog) == ("a", None, [])
    assert filters.allowed_scope(None, "s2", catalog) == ("b", "s2", [])
    team, service, notices = filters.allowed_scope("a", "s2", catalog)
    assert (team, service) == ("a", None) and "belongs to team 'b'" in notices[0]
    team, service, notices = filters.allowed_scope("zz", "nope", catalog)
    assert (team, service) == (None, None) and len(notices) == 2


def test_previous_query_of_a_quarter_is_the_quarter_before() -> None:
    query = Query(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC), "a")
    before = query.previous()
    assert (before.start, before.end, before.team) == (
        datetime(2026, 4, 1, tzinfo=UTC),
        query.start,
        "a",
    )
    assert query.org().team is None


def test_only_web_links_are_links() -> None:
    links = web_links(pd.Series(["https://x", "javascript:alert(1)", None, "HTTP://y", ""]))
    assert links.tolist() == ["https://x", None, None, "HTTP://y", None]


def test_retro_notes_escape_and_judge() -> None:
    assert retro.cell("a|b <script>\nc") == "a\\|b &lt;script&gt; c"
    change = {
        "lead_time_median_hours": {"current": 2.0, "previous": 4.0, "delta": -2.0},
        "deployments_per_week": {"current": 3.0, "previous": 4.0, "delta": -1.0},
        "slos": {"s": {"budget_remaining": 0.5, "previous_budget_remaining": 0.8}},
    }
    rows = {row["figure"]: row for row in retro.changed_rows(change)}
    assert rows["Lead time (median)"]["verdict"] == "better"
    assert rows["Deployments per week"]["verdict"] == "worse"
    assert rows["Incidents"]["verdict"] == "no comparison"
    assert retro.budget_rows(change, {"s": 0.25}) == [
        {"slo": "s", "budget_at_start": 0.8, "budget_at_end": 0.5, "spent": 0.25}
    ]
    notes = retro.retro_markdown(
        "t<b>",
        "2026-11-01 – 2026-11-14",
        {"people": {}, "incidents": {}},
        change,
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame(),
        spent={"s": 0.25},
    )
    assert notes.startswith("## Retro: t&lt;b&gt;, 2026-11-01 – 2026-11-14")
    # spent first, as on the page
    assert "No change reached production." in notes and "| s | 25.0 % | 80.0 % | 50.0 % |" in notes

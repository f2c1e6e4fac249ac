"""Static charts as inline SVG (matplotlib, no browser): the same drawing serves HTML and PDF.

Text stays text (`svg.fonttype = none`), so a PDF's words can be searched and extracted, and
nothing in the SVG points outside the file. Colours are the Okabe–Ito palette, which stays
distinct for the common colour-vision deficiencies; lines also differ by marker and dash, so
a greyscale print still tells them apart.
"""

from __future__ import annotations

import io
import math
import re
import warnings

from matplotlib import rc_context
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from poise.text import cut
from reports.formats import display
from reports.model import PALETTE, Chart, ChartKind, Fmt

MARKERS = ("o", "s", "^", "D", "v", "P", "X")
DASHES = ("-", "--", "-.", ":", "-", "--", "-.")
WIDTH_INCHES = 6.7  # the text width of an A4 or Letter page with 2 cm margins
HEIGHT_INCHES = 2.5
MET, MISSED, TARGET, BAND = "#0072B2", "#D55E00", "#000000", "#999999"

STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "poise-report",  # stable element ids: the same data, the same file
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
}


def tick_text(value: float, fmt: Fmt) -> str:
    if fmt in (Fmt.PERCENT1, Fmt.PERCENT3) and value > 1.0 + 1e-9:
        return ""
    if fmt is Fmt.PERCENT3:
        return f"{value * 100:.2f} %"
    if fmt is Fmt.PERCENT1:
        return f"{value * 100:.0f} %"
    if value % 1 and fmt is not Fmt.COUNT:
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def _clean_svg(svg: str) -> str:
    """Keep the <svg> element only: the XML prolog's DOCTYPE names a remote DTD."""
    svg = svg[svg.index("<svg") :]
    # Fixed points would overflow a narrow screen; the viewBox keeps the proportions.
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 width="100%"', svg, count=1)
    return re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)


def render_svg(chart: Chart) -> str:
    """The chart as an `<svg>` element, as wide as the page's text."""
    with rc_context(STYLE):
        rows = len(chart.x_labels)
        # a bar per row, as close as 8-point labels allow: two dozen SLOs fit in half a page
        height = HEIGHT_INCHES if chart.kind is not ChartKind.HBAR else 0.24 * rows + 0.9
        figure = Figure(figsize=(WIDTH_INCHES, height), layout="constrained")
        axes = figure.subplots()
        formatter = FuncFormatter(lambda value, _pos: tick_text(value, chart.y_fmt))
        if chart.kind is ChartKind.HBAR:
            _draw_hbars(axes, chart)
            values_axis = axes.xaxis
            # under the bars, not centred: long labels leave the bars the right third of the
            # width, and a centred title ran off the chart ("below 0: o")
            axes.set_xlabel(chart.y_title, loc="right")
        else:
            _draw_xy(axes, chart)
            values_axis = axes.yaxis
            axes.set_ylabel(chart.y_title)
            if chart.x_title:
                axes.set_xlabel(chart.x_title)
        values_axis.set_major_formatter(formatter)
        if chart.y_fmt is Fmt.COUNT:  # ticks at 0.5 read "0, 0, 1, 1, 2" on a small count
            values_axis.set_major_locator(MaxNLocator(integer=True))
        buffer = io.StringIO()
        with warnings.catch_warnings():
            # Text stays text (`svg.fonttype = none`): the reader's fonts draw it, so a name
            # with a character DejaVu Sans lacks (an emoji) is not matplotlib's to warn of on
            # the command line; it only measures the label with a stand-in glyph.
            warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
            figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _clean_svg(buffer.getvalue())


PALE = 0.4  # opacity of a bar that holds only part of a week (as the dashboard's)


def _draw_xy(axes: Axes, chart: Chart) -> None:
    positions = list(range(len(chart.x_labels)))
    partial = chart.partial
    for band in chart.bands:
        axes.axvspan(
            band.start - 0.5, band.end + 0.5, color=BAND, alpha=0.2, lw=0, label=band.label
        )
    count = len(chart.series)
    bottom = [0.0] * len(positions)
    handles: list[Artist] = []
    shown_partial = False  # a part of a week was drawn, so the chart must say what pale means
    for index, series in enumerate(chart.series):
        values = [math.nan if v is None else v for v in series.values]
        colour = PALETTE[index % len(PALETTE)]
        # one colour per bar: the parts of weeks pale, so a short week does not read as a dip
        colours = [to_rgba(colour, PALE if part else 1.0) for part in partial]
        if chart.kind is ChartKind.STACKED:
            heights = [0.0 if math.isnan(v) else v for v in values]
            axes.bar(
                positions,
                heights,
                width=0.75,
                bottom=bottom,
                color=colours,
                edgecolor="white",
                linewidth=0.3,
            )
            shown_partial |= any(h > 0 and p for h, p in zip(heights, partial, strict=True))
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
            # the legend's swatch is drawn apart: taken from the first bar, it would be pale
            handles.append(Patch(facecolor=colour, label=cut(series.name)))
        elif chart.kind is ChartKind.BAR:
            width = 0.8 / count
            offsets = [p - 0.4 + width * (index + 0.5) for p in positions]
            axes.bar(offsets, values, width=width, color=colours)
            shown_partial |= any(
                not math.isnan(v) and p for v, p in zip(values, partial, strict=True)
            )
            handles.append(Patch(facecolor=colour, label=cut(series.name)))
        else:
            marker = MARKERS[index % len(MARKERS)]
            (line,) = axes.plot(
                positions,
                values,
                color=colour,
                marker=marker,
                linestyle=DASHES[index % len(DASHES)],
                linewidth=1.5,
                markersize=3.5,
                label=cut(series.name),
            )
            handles.append(line)
            hollow = [
                (x, v)
                for x, v, p in zip(positions, values, partial, strict=True)
                if p and not math.isnan(v)
            ]
            if hollow:  # open markers over the parts of weeks; the legend's marker stays solid
                shown_partial = True
                axes.plot(
                    [x for x, _ in hollow],
                    [v for _, v in hollow],
                    linestyle="none",
                    marker=marker,
                    markersize=4.5,
                    markerfacecolor="white",
                    markeredgecolor=colour,
                    markeredgewidth=1.2,
                )
    step = max(1, math.ceil(len(positions) / 8))
    axes.set_xticks(positions[::step], [cut(label) for label in chart.x_labels[::step]])
    axes.grid(axis="x", visible=False)
    # every week keeps its place even when the first or last is blank for too small a sample,
    # so the weekly charts of a section line up
    axes.set_xlim(-0.5, len(positions) - 0.5)
    axes.set_ylim(bottom=0)
    if count == 1:  # a lone series is named by the chart's title: no legend entry for it
        handles = []
    handles = [
        *(Patch(facecolor=BAND, alpha=0.2, label=band.label) for band in chart.bands),
        *handles,
    ]
    if shown_partial:
        handles.append(_partial_handle(chart.kind))
    if handles:
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)


def _partial_handle(kind: ChartKind) -> Artist:
    """The legend entry that says what a pale bar or an open marker is."""
    if kind is ChartKind.LINE:
        return Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markersize=4.5,
            markerfacecolor="white",
            markeredgecolor=BAND,
            label="open marker:\npart of a week",
        )
    return Patch(facecolor=to_rgba(BAND, PALE), label="pale bar:\npart of a week")


def _draw_hbars(axes: Axes, chart: Chart) -> None:
    """One bar per category from 0; a negative value (an overspent budget) goes left, in a
    different colour, and each label says the value in words as well.

    (No hatching: SVG patterns cost WeasyPrint seconds per chart.)"""
    values = chart.series[0].values
    notes = chart.notes or tuple("" for _ in values)
    positions = list(range(len(values)))[::-1]
    labels = []
    names = [cut(name) for name in chart.x_labels]  # a long team or SLO name: no sliver
    for position, label, value, note in zip(positions, names, values, notes, strict=True):
        extra = f" ({note})" if note else ""
        if value is None:
            labels.append(f"{label}: no data{extra}")
            continue
        labels.append(f"{label}: {display(value, chart.y_fmt)}{extra}")
        negative = value < 0
        axes.barh(
            position,
            value,
            height=0.6,
            color=MISSED if negative else MET,
            edgecolor="white",
            linewidth=0,
        )
    axes.axvline(0, color=TARGET, linewidth=0.8)
    present = [v for v in values if v is not None]
    if present:
        axes.set_xlim(min(0.0, min(present)) * 1.08 - 0.02, max(1.0, max(present)) * 1.02)
    axes.set_yticks(positions, labels)
    axes.set_ylim(-0.7, len(positions) - 0.3)
    axes.grid(axis="y", visible=False)

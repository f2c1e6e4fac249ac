"""The report document: what a quarterly report says, independent of how it is rendered.

The builder (`reports.builder`) fills this model from the metrics engine; the four renderers
(`html`, `pdf`, `xlsx`, `markdown`) only lay it out. A renderer never computes a figure: every
number in a cell arrives here already computed, with the format it is shown in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TypeAlias

import pandas as pd

Value: TypeAlias = str | int | float | date | datetime | None

# The Okabe–Ito colours the charts draw series in (`reports.charts`): a chart of more series
# than colours would draw two in one colour, so the sections keep to this many.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")


class Paper(StrEnum):
    A4 = "a4"
    LETTER = "letter"


class Fmt(StrEnum):
    """How a value is shown. `reports.formats` turns each into text and an Excel number format."""

    TEXT = "text"
    COUNT = "count"  # 1,234
    DECIMAL1 = "decimal1"  # 21.3
    DECIMAL2 = "decimal2"  # 0.45 (burn rates)
    PERCENT1 = "percent1"  # a fraction shown as 9.1 %
    PERCENT2 = "percent2"  # 9.12 %: two rates that read alike at one decimal but differ
    PERCENT3 = "percent3"  # a fraction shown as 99.912 % (SLIs)
    # durations as the dashboard words them: 28 min, 4.4 h, 21.0 d (a workbook keeps the
    # number with its unit: 503.3 h); the -2 forms have one more digit, to tell apart two
    # quarters that read alike
    HOURS = "hours"  # a value in hours
    HOURS2 = "hours2"
    MINUTES = "minutes"  # a value in minutes
    MINUTES2 = "minutes2"
    DATE = "date"  # 2026-07-01
    DATETIME = "datetime"  # 2026-07-01 14:05 UTC
    TIER = "tier"  # elite / high / medium / low / insufficient data, in words and colour
    STATUS = "status"  # ok / at_risk / exhausted, in words and colour
    LINK = "link"  # a web address: a short "read" link in HTML and PDF, the address elsewhere


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    fmt: Fmt = Fmt.TEXT
    compact: bool = False  # short text kept on one line and right-aligned (+1.5 pts)


@dataclass(frozen=True)
class Cell:
    """A value whose format differs from its column's (a summary row per figure)."""

    value: Value
    fmt: Fmt


Entry: TypeAlias = Value | Cell


def unwrap(entry: Entry, column: Column) -> tuple[Value, Fmt]:
    if isinstance(entry, Cell):
        return entry.value, entry.fmt
    return entry, column.fmt


@dataclass(frozen=True)
class Table:
    """A table; `sheet` names it in the workbook (unique, at most 31 characters)."""

    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Entry, ...], ...]
    sheet: str
    caption: str = ""
    empty_text: str = "Nothing to show for this period."

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.title!r}: a row has {len(row)} cells, not {len(self.columns)}"
                )


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Band:
    """A shaded stretch of the x axis (a release freeze), labelled in the legend."""

    start: int  # index into the chart's x labels
    end: int  # inclusive
    label: str


class ChartKind(StrEnum):
    LINE = "line"
    BAR = "bar"
    STACKED = "stacked"  # bars stacked per x value, one layer per series
    HBAR = "hbar"  # one horizontal bar per category, negative values to the left of 0


@dataclass(frozen=True)
class Chart:
    """A static chart: labelled x values, one or more series, the y axis's format and unit.

    `notes` (HBAR only) adds words to each bar's label, e.g. an SLO's attainment and target.
    The same data is offered as a table in formats that cannot draw (Markdown) and as a
    sheet in the workbook, so a chart never hides its numbers.

    `words`, when set, replaces the drawing (and Markdown's table) with a sentence: for data
    that a chart would only show as an empty-looking frame, such as a line with one point.
    The workbook still has the chart's sheet.
    """

    title: str
    kind: ChartKind
    x_labels: tuple[str, ...]
    series: tuple[Series, ...]
    y_title: str
    y_fmt: Fmt
    sheet: str
    caption: str = ""
    notes: tuple[str, ...] = ()
    bands: tuple[Band, ...] = ()
    x_title: str = ""
    empty_text: str = "No data for this chart in the period."
    words: str = ""
    # days each x value spans, when the x values are weeks: a period's first and last week
    # may hold only a few days (a quarter starting on a Wednesday), and a count over them
    # would read as a dip, so the charts draw them pale or hollow. Empty: all whole.
    x_days: tuple[float, ...] = ()

    @property
    def partial(self) -> tuple[bool, ...]:
        """Per x value, whether it holds only part of a week."""
        if not self.x_days:
            return tuple(False for _ in self.x_labels)
        return tuple(days < 7 for days in self.x_days)

    @property
    def points(self) -> int:
        """How many values the chart would draw."""
        return sum(value is not None for series in self.series for value in series.values)

    @property
    def is_empty(self) -> bool:
        return not self.x_labels or all(
            value is None for series in self.series for value in series.values
        )

    def as_table(self) -> Table:
        columns = [Column("x", self.x_title or "", Fmt.TEXT)]
        columns += [Column(f"s{index}", s.name, self.y_fmt) for index, s in enumerate(self.series)]
        if self.notes:
            columns.append(Column("note", "Note"))
        if self.x_days:  # last, so the series' columns stay where a reader expects them
            columns.append(Column("days", "Days", Fmt.COUNT))
        rows = []
        for index, label in enumerate(self.x_labels):
            row: list[Entry] = [label, *(s.values[index] for s in self.series)]
            if self.notes:
                row.append(self.notes[index])
            if self.x_days:
                row.append(self.x_days[index])
            rows.append(tuple(row))
        return Table(self.title, tuple(columns), tuple(rows), self.sheet, self.caption)


@dataclass(frozen=True)
class Paragraph:
    text: str
    style: str = "body"  # body | lead (a headline sentence) | note (a caveat)


@dataclass(frozen=True)
class BulletList:
    items: tuple[str, ...]
    style: str = "body"


@dataclass(frozen=True)
class Definition:
    term: str
    text: str


@dataclass(frozen=True)
class Definitions:
    items: tuple[Definition, ...]


Block: TypeAlias = Paragraph | BulletList | Table | Chart | Definitions


@dataclass
class Section:
    """A numbered part of the report; `anchor` is its id in HTML and its TOC target."""

    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    """The rows behind a figure, offered as a sheet of the workbook."""

    title: str
    sheet: str
    frame: pd.DataFrame
    description: str = ""


@dataclass
class Report:
    title: str
    subtitle: str  # the scope: "Whole organisation" or "Team payments"
    period_label: str  # "2026Q3: 1 July – 30 September 2026 (UTC)"
    generated_at: datetime
    sections: list[Section] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    facts: tuple[tuple[str, str], ...] = ()  # shown on the title page: ("Teams", "6"), …

    def walk(self) -> list[tuple[int, Section]]:
        """Every section with its depth (1 for top level), in document order."""
        found: list[tuple[int, Section]] = []

        def visit(sections: Sequence[Section], depth: int) -> None:
            for section in sections:
                found.append((depth, section))
                visit(section.subsections, depth + 1)

        visit(self.sections, 1)
        return found

    def tables(self) -> list[Table]:
        """Every table and chart (as its table) in document order: the workbook's sheets."""
        found: list[Table] = []
        for _depth, section in self.walk():
            for block in section.blocks:
                if isinstance(block, Table):
                    found.append(block)
                elif isinstance(block, Chart):
                    found.append(block.as_table())
        return found

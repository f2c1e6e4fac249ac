"""The report as one self-contained HTML file: inline CSS, inline SVG charts, no scripts.

It opens offline and makes no request: no external stylesheet, font, image or script, and
the fonts are the reader's own (DejaVu Sans where present). The same HTML, with print CSS
(title page, table of contents with page numbers, running footer), is what `reports.pdf`
hands to WeasyPrint; a browser ignores the page-number parts and prints the rest.

Every figure cell carries its exact value in `data-value`, so a program reading the HTML
gets the number the metrics engine computed, not only its rounded text.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from html import escape

from reports.charts import render_svg
from reports.formats import NUMERIC, css_class, display, is_web_link, keep_units
from reports.model import (
    Block,
    BulletList,
    Chart,
    Definitions,
    Fmt,
    Paper,
    Paragraph,
    Report,
    Section,
    Table,
    Value,
    unwrap,
)

# From this many columns a table is set smaller and tighter, so that it stays within the
# page's text width (a PDF cannot scroll sideways).
WIDE_COLUMNS = 9
PAGE_SIZES = {Paper.A4: "A4", Paper.LETTER: "letter"}

CSS = """
:root { --ink: #1b1f24; --muted: #57606a; --rule: #d0d7de; --band: #f3f5f7; }
html { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif;
       color: var(--ink); font-size: 10pt; line-height: 1.45; overflow-wrap: break-word; }
body { margin: 0 auto; max-width: 52rem; padding: 1.5rem; }
h1 { font-size: 17pt; margin: 0 0 .6em; padding-bottom: .2em; border-bottom: 2px solid var(--ink); }
h2 { font-size: 13pt; margin: 1.4em 0 .5em; }
h3 { font-size: 11pt; margin: 1.2em 0 .4em; }
p { margin: .45em 0; }
p.lead { font-size: 11pt; }
p.note, li.note, .caption { color: var(--muted); font-size: 9pt; }
ul { margin: .4em 0; padding-left: 1.3em; }
.num-label { color: var(--muted); font-weight: normal; margin-right: .4em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 .2em; font-size: 8.5pt; }
caption { text-align: left; font-weight: bold; font-size: 9.5pt; padding: .3em 0; caption-side: top; }
th, td { padding: .25em .45em; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { background: var(--band); font-weight: bold; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
/* a name with no place to break (200 characters of an imported team, an SLO in snake_case)
   widened its table off the page: such a cell, and only such a cell, may break anywhere */
td.long, caption { overflow-wrap: anywhere; }
table.wide { font-size: 7.5pt; }
table.wide th, table.wide td { padding: .25em .3em; }
td.no-data { color: var(--muted); font-style: italic; white-space: nowrap; }
td.tier span, td.status span { display: inline-block; padding: 0 .45em; border-radius: .6em;
         font-weight: bold; font-size: 8pt; white-space: nowrap; }
.tier-elite span { background: #0072B2; color: #fff; }
.tier-high span { background: #56B4E9; color: #000; }
.tier-medium span { background: #E69F00; color: #000; }
.tier-low span { background: #D55E00; color: #fff; }
.tier-insufficient-data span, .tier-no-incident-data span { background: #e8e8e8; color: #333;
         font-style: italic; }
.status-ok span { background: #0072B2; color: #fff; }
.status-at-risk span { background: #E69F00; color: #000; }
.status-exhausted span { background: #D55E00; color: #fff; }
figure { margin: .8em 0; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-weight: bold; font-size: 9.5pt; margin-bottom: .2em; }
p.empty { color: var(--muted); font-style: italic; }
dl dt { font-weight: bold; margin-top: .6em; }
dl dd { margin: .1em 0 0 0; }
main > section { margin-top: 2.5rem; }
nav.toc { margin-top: 1rem; }
.title-page { padding: 2rem 0 3rem; }
.title-page .brand { color: var(--muted); letter-spacing: .12em; text-transform: uppercase;
         font-size: 9pt; }
.title-page h1.title { font-size: 26pt; border: none; margin: .3em 0 .2em; }
.title-page .subtitle { font-size: 15pt; margin: 0 0 .3em; }
.title-page .period { font-size: 12pt; color: var(--muted); }
.title-page table.facts { width: auto; margin-top: 2.5em; font-size: 10pt; }
.title-page table.facts th { background: none; padding-right: 2em; }
nav.toc h1 { border: none; }
nav.toc ol { list-style: none; padding-left: 0; margin: 0; }
nav.toc ol ol { padding-left: 1.4em; }
nav.toc li { margin: .2em 0; }
nav.toc a { color: var(--ink); text-decoration: none; }
a { color: #0b5cad; }
@media print {
  body { max-width: none; padding: 0; }
  .title-page { break-after: page; padding-top: 6cm; }
  nav.toc { break-after: page; }
  /* Sections flow on: a forced break before each one left pages holding a lone chart or
     sentence. Headings stay with what follows them instead. */
  main > section { break-before: auto; }
  figure, tr, dl dt, dl dd { break-inside: avoid; }
  h1, h2, h3, dt, caption, figcaption { break-after: avoid; }
  /* A section's opening note introduces what follows it: kept with it, so a heading and
     its note never end a page whose next page starts with their chart or table. */
  h1 + p.note, h2 + p.note, h3 + p.note { break-after: avoid; }
  thead { display: table-header-group; }
}
@page { size: __PAGE__; margin: 2cm 2cm 2.2cm;
  @bottom-left { content: "__FOOTER__"; font-family: "DejaVu Sans", sans-serif; font-size: 7.5pt;
                 color: #57606a; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages);
                  font-family: "DejaVu Sans", sans-serif; font-size: 7.5pt; color: #57606a; } }
@page :first { @bottom-left { content: none; } @bottom-right { content: none; } }
nav.toc a::after { content: leader(".") " " target-counter(attr(href), page); }
"""


def render_html(report: Report, paper: Paper = Paper.A4) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    numbers = _numbering(report)
    footer = _css_string(f"{report.title} · {report.subtitle}")
    css = CSS.replace("__PAGE__", PAGE_SIZES[paper]).replace("__FOOTER__", footer)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report.title)} · {escape(report.subtitle)}</title>",
        '<meta name="generator" content="Poise">',
        f'<meta name="dcterms.created" content="{report.generated_at.isoformat()}">',
        f'<meta name="description" content="{escape(report.period_label)}">',
        f"<style>{css}</style></head><body>",
        _title_page(report),
        _toc(report, numbers),
        "<main>",
        *(_section(section, 1, numbers) for section in report.sections),
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _css_string(text: str) -> str:
    """`text` as the inside of a CSS string in a <style> element: a team named
    `</style><script>…` ended the style element and ran as a script, and a quote, a
    backslash or a line break ended the string and dropped the footer. Every character that
    could do either is written as a CSS escape; runs of white space become one space."""
    return "".join(
        f"\\{ord(char):x} " if char in _CSS_UNSAFE or not char.isprintable() else char
        for char in " ".join(text.split())
    )


_CSS_UNSAFE = frozenset("\"\\'<>&")
# a run this long with no space, hyphen or slash (where lines break) may not fit its column
_UNBREAKABLE = re.compile(r"[^\s\-/\u2010-\u2014]{24,}")


def _long(text: str) -> str:
    """' class="long"' for text holding a run too long to fit a column unbroken, else ""."""
    return ' class="long"' if _UNBREAKABLE.search(text) else ""


def _numbering(report: Report) -> dict[str, str]:
    numbers: dict[str, str] = {}

    def visit(sections: list[Section], prefix: str) -> None:
        for index, section in enumerate(sections, start=1):
            number = f"{prefix}{index}"
            numbers[section.anchor] = number
            visit(section.subsections, number + ".")

    visit(report.sections, "")
    return numbers


def _title_page(report: Report) -> str:
    facts = "".join(
        f"<tr><th>{escape(name)}</th><td{_long(value)}>{escape(value)}</td></tr>"
        for name, value in report.facts
    )
    generated = report.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<header class="title-page"><div class="brand">Poise · DevOps and SRE scorecard</div>'
        f'<h1 class="title">{escape(report.title)}</h1>'
        f'<p class="subtitle">{escape(report.subtitle)}</p>'
        f'<p class="period">{escape(report.period_label)}</p>'
        f'<table class="facts"><tbody>{facts}'
        f"<tr><th>Generated</th><td>{generated}</td></tr></tbody></table></header>"
    )


def _toc(report: Report, numbers: dict[str, str]) -> str:
    def items(sections: list[Section]) -> str:
        if not sections:
            return ""
        entries = []
        for section in sections:
            label = f"{numbers[section.anchor]} {escape(section.title)}"
            entries.append(
                f'<li><a href="#{section.anchor}">{label}</a>{items(section.subsections)}</li>'
            )
        return "<ol>" + "".join(entries) + "</ol>"

    return f'<nav class="toc"><h1>Contents</h1>{items(report.sections)}</nav>'


def _section(section: Section, depth: int, numbers: dict[str, str]) -> str:
    level = min(depth, 3)
    heading = (
        f'<h{level} id="{section.anchor}"><span class="num-label">{numbers[section.anchor]}</span>'
        f"{escape(section.title)}</h{level}>"
    )
    body = "".join(_block(block) for block in section.blocks)
    children = "".join(_section(child, depth + 1, numbers) for child in section.subsections)
    return f'<section class="level{depth}">{heading}{body}{children}</section>'


def _block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f'<p class="{block.style}">{_text(block.text)}</p>'
    if isinstance(block, BulletList):
        items = "".join(f'<li class="{block.style}">{_text(item)}</li>' for item in block.items)
        return f"<ul>{items}</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Chart):
        return _chart(block)
    if isinstance(block, Definitions):
        items = "".join(
            f"<dt>{escape(item.term)}</dt><dd>{escape(item.text)}</dd>" for item in block.items
        )
        return f"<dl>{items}</dl>"
    raise TypeError(f"unknown block {type(block).__name__}")


def _text(text: str) -> str:
    return escape(keep_units(text))


def _raw(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _cell(value: Value, fmt: Fmt, *, compact: bool = False) -> str:
    shown = display(value, fmt)
    text = _text(shown)
    classes = css_class(value, fmt) or ("num" if compact else "")
    if fmt is not Fmt.LINK and _long(shown):
        classes = f"{classes} long".strip()
    if fmt in (Fmt.TIER, Fmt.STATUS) and value is not None:
        text = f"<span>{text}</span>"
    if fmt is Fmt.LINK and value is not None:
        # a long address broke over four lines of a narrow column: the cell says "read" and
        # the address is the link's (data-value keeps it for a program)
        text = (
            f'<a href="{escape(str(value))}">read</a>'
            if is_web_link(value)
            else "not a web link"  # never a javascript: or data: href, as on the dashboard
        )
    attributes = f' class="{classes}"' if classes else ""
    if value is not None and fmt is not Fmt.TEXT:
        attributes += f' data-value="{escape(_raw(value))}"'
    return f"<td{attributes}>{text}</td>"


def _table(table: Table) -> str:
    caption = f"<caption>{escape(table.title)}</caption>" if table.title else ""
    note = f'<p class="caption">{_text(table.caption)}</p>' if table.caption else ""
    if not table.rows:
        return (
            f'<div class="table-empty" data-sheet="{escape(table.sheet)}">'
            f"<p><strong>{escape(table.title)}</strong></p>"
            f'<p class="empty">{_text(table.empty_text)}</p>{note}</div>'
        )
    head = "".join(
        f'<th class="{"num" if column.fmt in NUMERIC or column.compact else ""}">'
        f"{_text(column.title)}</th>"
        for column in table.columns
    )
    body = "".join(
        "<tr>"
        + "".join(
            _cell(*unwrap(entry, column), compact=column.compact)
            for entry, column in zip(row, table.columns, strict=True)
        )
        + "</tr>"
        for row in table.rows
    )
    wide = ' class="wide"' if len(table.columns) >= WIDE_COLUMNS else ""
    return (
        f'<table data-sheet="{escape(table.sheet)}"{wide}>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>{note}"
    )


def _chart(chart: Chart) -> str:
    caption = f'<p class="caption">{_text(chart.caption)}</p>' if chart.caption else ""
    if chart.is_empty or chart.words:
        words = chart.words or chart.empty_text
        return (
            f'<figure data-sheet="{escape(chart.sheet)}"><figcaption>{escape(chart.title)}'
            f'</figcaption><p class="empty">{_text(words)}</p></figure>'
        )
    return (
        f'<figure data-sheet="{escape(chart.sheet)}"><figcaption>{escape(chart.title)}</figcaption>'
        f"{render_svg(chart)}{caption}</figure>"
    )

"""The report as Markdown, for pasting into a wiki: headings, sentences and pipe tables.

A wiki cannot draw the charts, so each chart appears as the table of its numbers.
"""

from __future__ import annotations

from reports.formats import NUMERIC, display
from reports.model import (
    Block,
    BulletList,
    Chart,
    Definitions,
    Paragraph,
    Report,
    Section,
    Table,
    unwrap,
)


def render_markdown(report: Report) -> str:
    lines = [
        f"# {report.title}",
        "",
        f"**{_inline(report.subtitle)}** · {_inline(report.period_label)}",
        "",
    ]
    generated = report.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    for name, value in (*report.facts, ("Generated", generated)):
        lines.append(f"- {_inline(name)}: {_inline(value)}")
    lines.append("")
    for section in report.sections:
        _section(section, 2, lines)
    return "\n".join(lines).rstrip() + "\n"


def _inline(text: str) -> str:
    """Escape what a wiki would read as markup inside running text, on one line: a line
    break in a name (an imported team "multi\\nline") ended its table row or heading and
    started a paragraph in the middle of the table."""
    text = " ".join(text.splitlines())
    for char in ("\\", "*", "_", "`", "[", "]", "<", ">", "|"):
        text = text.replace(char, "\\" + char)
    return text


def _section(section: Section, level: int, lines: list[str]) -> None:
    lines += ["#" * min(level, 6) + " " + _inline(section.title), ""]
    for block in section.blocks:
        lines += _block(block)
        lines.append("")
    for child in section.subsections:
        _section(child, level + 1, lines)


def _block(block: Block) -> list[str]:
    if isinstance(block, Paragraph):
        text = _inline(block.text)
        return [f"*{text}*" if block.style == "note" else text]
    if isinstance(block, BulletList):
        return [f"- {_inline(item)}" for item in block.items]
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Chart):
        if block.is_empty or block.words:
            words = block.words or block.empty_text
            return [f"**{_inline(block.title)}**", "", f"*{_inline(words)}*"]
        return _table(block.as_table())
    if isinstance(block, Definitions):
        return [
            line
            for item in block.items
            for line in (f"**{_inline(item.term)}**: {_inline(item.text)}", "")
        ][:-1]
    raise TypeError(f"unknown block {type(block).__name__}")


def _table(table: Table) -> list[str]:
    lines = [f"**{_inline(table.title)}**", ""] if table.title else []
    if not table.rows:
        lines.append(f"*{_inline(table.empty_text)}*")
    else:
        lines.append("| " + " | ".join(_inline(c.title) or " " for c in table.columns) + " |")
        lines.append(
            "|" + "|".join("---:" if c.fmt in NUMERIC else "---" for c in table.columns) + "|"
        )
        for row in table.rows:
            cells = (
                _inline(display(*unwrap(e, c))) for e, c in zip(row, table.columns, strict=True)
            )
            lines.append("| " + " | ".join(cells) + " |")
    if table.caption:
        lines += ["", f"*{_inline(table.caption)}*"]
    return lines

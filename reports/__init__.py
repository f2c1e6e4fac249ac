"""Quarterly reports: the metrics engine's figures laid out as PDF, HTML, XLSX or Markdown.

The one call the CLI and the dashboard make:

    from reports import render
    data = render(engine, "2026Q3", fmt="pdf", team=None, settings=settings, paper="a4")

`render` returns the file's bytes; `FORMATS[fmt]` gives its MIME type and file suffix, and
`default_filename(quarter, team, fmt)` a name to offer for download. A report never computes
a figure itself: `reports.builder` asks `metrics` for every number (docs/reports.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from metrics import Settings
from poise.config import AnomalyConfig
from poise.errors import PoiseError
from reports.model import Paper, Report


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    mime: str
    description: str


FORMATS: dict[str, Format] = {
    "pdf": Format("pdf", ".pdf", "application/pdf", "PDF, A4 or Letter, for printing"),
    "html": Format("html", ".html", "text/html", "one self-contained HTML file"),
    "xlsx": Format(
        "xlsx",
        ".xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Excel workbook: a sheet per table and the rows behind each figure",
    ),
    "md": Format("md", ".md", "text/markdown", "Markdown, for a wiki"),
}


def default_filename(quarter: str, team: str | None, fmt: str) -> str:
    scope = f"-{team}" if team else ""
    return f"poise-report-{quarter.upper()}{scope}{FORMATS[fmt].suffix}"


def render_document(report: Report, fmt: str, paper: Paper | str = Paper.A4) -> bytes:
    """Lay out an already built report in one format."""
    paper = Paper(paper)
    if fmt == "pdf":
        from reports.pdf import render_pdf

        return render_pdf(report, paper)
    if fmt == "html":
        from reports.html import render_html

        return render_html(report, paper).encode("utf-8")
    if fmt == "xlsx":
        from reports.xlsx import render_xlsx

        return render_xlsx(report)
    if fmt == "md":
        from reports.markdown import render_markdown

        return render_markdown(report).encode("utf-8")
    raise PoiseError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")


def render(
    engine: Engine,
    quarter: str,
    *,
    fmt: str = "pdf",
    team: str | None = None,
    settings: Settings | None = None,
    paper: Paper | str = Paper.A4,
    now: datetime | None = None,
    rule: AnomalyConfig | None = None,
) -> bytes:
    """The quarterly report of `quarter` (e.g. "2026Q3") for the organisation or one team;
    `rule` flags unusual weeks (the config's `anomalies`; default: its defaults)."""
    from reports.builder import build_report

    if fmt not in FORMATS:
        raise PoiseError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")
    report = build_report(
        engine, quarter, team=team, settings=settings or Settings(), now=now, rule=rule
    )
    return render_document(report, fmt, paper)


__all__ = ["FORMATS", "Paper", "default_filename", "render", "render_document"]

"""The report as PDF: the HTML rendering laid out by WeasyPrint (no browser involved).

WeasyPrint implements CSS paged media, which gives the document what a printed report needs:
a title page, a table of contents whose entries carry page numbers (`target-counter`), "Page n
of m" on every page, A4 or Letter, PDF bookmarks from the headings, and charts as vector SVG.
It needs Pango (libpango-1.0-0, libpangoft2-1.0-0) and a font (fonts-dejavu-core) from the
system; `scripts/install-system-deps.sh` installs them.
"""

from __future__ import annotations

from typing import Any, NoReturn

from poise.errors import PoiseError
from reports.html import render_html
from reports.model import Paper, Report


class PdfUnavailable(PoiseError):
    """WeasyPrint or the system libraries it needs are missing."""


def _no_fetching() -> Any:
    from weasyprint.urls import URLFetcher

    class NoFetching(URLFetcher):  # type: ignore[misc]
        """The report is self-contained: a resource URL in it is a bug, never a download."""

        def fetch(self, url: str, headers: Any = None) -> NoReturn:
            raise ValueError(f"the report refers to an outside resource {url!r}")

    return NoFetching()


def laid_out(report: Report, paper: Paper = Paper.A4) -> Any:
    """The report laid out in pages (a WeasyPrint document), before it is written."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: Pango is missing from the system
        raise PdfUnavailable(
            f"PDF export needs WeasyPrint and Pango ({exc}); run scripts/install-system-deps.sh"
        ) from None
    return HTML(string=render_html(report, paper), url_fetcher=_no_fetching()).render()


def render_pdf(report: Report, paper: Paper = Paper.A4) -> bytes:
    return bytes(laid_out(report, paper).write_pdf())

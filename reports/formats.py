"""How each kind of value is written: the one place that decides rounding and units.

Every renderer calls `display` for text and `excel_format` for the workbook, so a figure
reads the same in the PDF, the HTML and the Markdown, and the workbook keeps the exact value.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime

from metrics.wording import NO_INCIDENT_DATA, hours_words
from reports.model import Fmt, Value

NO_DATA = "no data"
DURATIONS = frozenset({Fmt.HOURS, Fmt.HOURS2, Fmt.MINUTES, Fmt.MINUTES2})
NUMERIC = frozenset(
    {Fmt.COUNT, Fmt.DECIMAL1, Fmt.DECIMAL2, Fmt.PERCENT1, Fmt.PERCENT2, Fmt.PERCENT3} | DURATIONS
)

_EXCEL = {
    Fmt.TEXT: "General",
    Fmt.COUNT: "#,##0",
    Fmt.DECIMAL1: "0.0",
    Fmt.DECIMAL2: "0.00",
    Fmt.PERCENT1: "0.0%",
    Fmt.PERCENT2: "0.00%",
    Fmt.PERCENT3: "0.000%",
    Fmt.HOURS: '#,##0.0" h"',
    Fmt.HOURS2: '#,##0.00" h"',
    Fmt.MINUTES: '#,##0.0" min"',
    Fmt.MINUTES2: '#,##0.00" min"',
    Fmt.DATE: "yyyy-mm-dd",
    Fmt.DATETIME: "yyyy-mm-dd hh:mm",
    Fmt.TIER: "General",
    Fmt.STATUS: "General",
    Fmt.LINK: "General",
}

TIER_WORDS = {
    "elite": "elite",
    "high": "high",
    "medium": "medium",
    "low": "low",
    "insufficient data": "insufficient data",
    NO_INCIDENT_DATA: NO_INCIDENT_DATA,
}
STATUS_WORDS = {"ok": "ok", "at_risk": "at risk", "exhausted": "exhausted"}


def _is_missing(value: Value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def display(value: Value, fmt: Fmt) -> str:
    """`value` as the report prints it; a missing figure says so rather than showing 0."""
    if _is_missing(value):
        return NO_DATA
    if fmt is Fmt.COUNT:
        return f"{round(float(value)):,}"  # type: ignore[arg-type]
    if fmt is Fmt.DECIMAL1:
        return f"{float(value):,.1f}"  # type: ignore[arg-type]
    if fmt is Fmt.DECIMAL2:
        return f"{float(value):,.2f}"  # type: ignore[arg-type]
    if fmt is Fmt.PERCENT1:
        return f"{float(value) * 100:.1f} %"  # type: ignore[arg-type]
    if fmt is Fmt.PERCENT2:
        return f"{float(value) * 100:.2f} %"  # type: ignore[arg-type]
    if fmt is Fmt.PERCENT3:
        return f"{float(value) * 100:.3f} %"  # type: ignore[arg-type]
    if fmt in DURATIONS:
        hours = float(value) / (60 if fmt in (Fmt.MINUTES, Fmt.MINUTES2) else 1)  # type: ignore[arg-type]
        return hours_words(hours, digits=2 if fmt in (Fmt.HOURS2, Fmt.MINUTES2) else 1)
    if fmt is Fmt.DATETIME and isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if fmt in (Fmt.DATE, Fmt.DATETIME) and isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if fmt is Fmt.TIER:
        return TIER_WORDS.get(str(value), str(value))
    if fmt is Fmt.STATUS:
        return STATUS_WORDS.get(str(value), str(value))
    return str(value)


NBSP = "\u00a0"
# A number followed by its unit ("99.840 %", "4.7 h", "−1.2 pts", "2.1 per week"); the
# engine's own sentences (anomaly descriptions) are written with plain spaces too.
_NUMBER_UNIT = re.compile(
    r"(?<=\d) (?=(?:%|h|d|min|pts|points|per week|days|weeks|deployments|UTC)(?![\w-]))"
)


def keep_units(text: str) -> str:
    """`text` with each number bound to its unit by a no-break space, so a narrow column or
    a line end never leaves "%" or "h" alone on the next line (HTML and PDF only: a wiki
    and a workbook get the plain text)."""
    return _NUMBER_UNIT.sub(NBSP, text)


def is_web_link(value: Value) -> bool:
    """Whether a link may be made clickable: http(s) only, as the dashboard's `web_links`, so
    a `javascript:` or `data:` address in the warehouse never becomes an href."""
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


def excel_format(fmt: Fmt) -> str:
    return _EXCEL[fmt]


def css_class(value: Value, fmt: Fmt) -> str:
    """A class that colours tiers and statuses; the word is always printed as well."""
    if _is_missing(value):
        return "no-data num" if fmt in NUMERIC else "no-data"
    if fmt is Fmt.TIER:
        return "tier tier-" + str(value).replace(" ", "-")
    if fmt is Fmt.STATUS:
        return "status status-" + str(value).replace("_", "-")
    if fmt in NUMERIC:
        return "num"
    return ""

"""Headline sentences: a figure this quarter against the quarter before, in words.

"Deployment frequency rose 18 % to 21.3 per week (tier high, was medium)"; "change fail
rate held at 9.0 %"; "change lead time: not enough data this quarter". The numbers are the
metrics engine's, written with `reports.formats.display`, so a sentence and a table cell
never disagree.

The change itself (difference and relative change) is the engine's (`metrics.trends.change`).
When is a change "held"? When it rounds to nothing at the precision the report prints:
a quantity whose relative change is under 0.5 % (it would print as 0 %), or a rate whose
change is under 0.05 percentage points (it would print as 0.0 points).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from metrics.wording import NO_INCIDENT_DATA, counted
from reports.formats import display
from reports.model import Fmt

TIER_ORDER = ("low", "medium", "high", "elite")
NOT_ENOUGH = ": not enough data this quarter"


class Change(StrEnum):
    RELATIVE = "relative"  # a quantity: "rose 18 %"
    POINTS = "points"  # a rate shown in %: "rose 1.2 points"


@dataclass(frozen=True)
class Headline:
    label: str  # "Deployment frequency", as it starts a sentence
    current: float | None
    previous: float | None
    fmt: Fmt
    unit: str = ""  # " per week", " h": written after the number
    change: Change = Change.RELATIVE
    tier: str | None = None
    previous_tier: str | None = None
    graded: bool = False  # the figure has a DORA tier (so "not graded" is worth saying)
    delta: float | None = None  # current − previous, from the engine
    relative: float | None = None  # delta / previous, from the engine (None when previous is 0)
    compared: bool = True  # False: the engine gives no change for this figure
    # the quarter before holds no data at all, and a sentence before says so once
    nothing_before: bool = False

    def value_text(self, value: float | None) -> str:
        return display(value, self.fmt) + self.unit


def movement(headline: Headline) -> str:
    """The verb phrase: "rose 18 % to 21.3 per week", "held at 9.0 %", "was 4.0 h", or
    ": not enough data this quarter"."""
    current, previous = headline.current, headline.previous
    now = headline.value_text(current)
    if current is None:
        return NOT_ENOUGH
    if previous is None:
        return (
            f"was {now}"
            if headline.nothing_before
            else f"was {now} (no figure for the quarter before)"
        )
    if not headline.compared or headline.delta is None:
        return f"was {now} ({headline.value_text(previous)} the quarter before)"
    if headline.change is Change.POINTS:
        points = headline.delta * 100
        if round(abs(points), 1) == 0:
            return f"held at {now}"
        verb = "rose" if points > 0 else "fell"
        return f"{verb} {abs(points):.1f} points to {now}"
    ratio = headline.relative
    if ratio is None:  # the quarter before was 0
        if headline.delta == 0:
            return f"held at {now}"
        return f"rose from {headline.value_text(previous)} to {now}"
    if round(abs(ratio) * 100) == 0:
        return f"held at {now}"
    verb = "rose" if ratio > 0 else "fell"
    return f"{verb} {abs(ratio) * 100:.0f} % to {now}"


def tier_note(headline: Headline) -> str:
    """ " (tier high, was medium)", " (tier elite)", or "" for a figure without tiers."""
    if not headline.graded or headline.current is None:
        return ""
    tier = headline.tier
    if tier is None:
        return " (not graded by the benchmark table)"
    if tier == "insufficient data":
        return " (too small a sample for a tier)"
    if tier == NO_INCIDENT_DATA:
        return " (no tier: no incident is on record for these services)"
    previous = headline.previous_tier
    if previous and previous != tier and previous in TIER_ORDER and tier in TIER_ORDER:
        return f" (tier {tier}, was {previous})"
    return f" (tier {tier})"


def sentence(headline: Headline, *, first: bool = True) -> str:
    label = headline.label if first else headline.label[0].lower() + headline.label[1:]
    moved = movement(headline)
    tier = tier_note(headline)
    if tier and moved.endswith(")"):  # one aside, not two in a row: "(…; tier high)"
        moved, tier = moved[:-1] + "; " + tier.strip()[1:], ""
    return f"{label}{'' if moved.startswith(':') else ' '}{moved}{tier}"


def paragraph(headlines: list[Headline]) -> str:
    """Several figures in one sentence: "A rose …; b held …; c fell …."."""
    parts = [sentence(h, first=index == 0) for index, h in enumerate(headlines)]
    return "; ".join(parts) + "." if parts else ""


def change_text(headline: Headline) -> str:
    """The change column of the headline table: "+18 %", "−1.2 pts", "±0 %", "±0.0 pts", or
    "" (no change to give). A change that rounds to nothing keeps its unit, so a rate's
    column reads in points on every row."""
    if headline.current is None or headline.previous is None or headline.delta is None:
        return ""
    if headline.change is Change.POINTS:
        points = headline.delta * 100
        return "±0.0 pts" if round(abs(points), 1) == 0 else _signed(f"{points:+.1f} pts")
    ratio = headline.relative
    if ratio is None:
        return "±0 %" if headline.delta == 0 else "new"
    return "±0 %" if round(abs(ratio) * 100) == 0 else _signed(f"{ratio * 100:+.0f} %")


def _signed(text: str) -> str:
    return text.replace("-", "−")  # a true minus sign, as wide as the plus


HELD = frozenset({"±0 %", "±0.0 pts"})
FINER = {
    Fmt.DECIMAL1: Fmt.DECIMAL2,
    Fmt.PERCENT1: Fmt.PERCENT2,
    Fmt.HOURS: Fmt.HOURS2,
    Fmt.MINUTES: Fmt.MINUTES2,
}


def compared_fmt(headline: Headline) -> Fmt:
    """The format to show this quarter's and the last quarter's figure in, side by side.

    Usually the figure's own; one decimal finer when both round to the same text but the
    change column says they moved ("8.6 %" against "8.6 %" beside "−0.1 pts" reads as a
    contradiction; "8.63 %" against "8.57 %" does not)."""
    moved = change_text(headline) not in ("", *HELD)
    alike = display(headline.current, headline.fmt) == display(headline.previous, headline.fmt)
    return FINER.get(headline.fmt, headline.fmt) if moved and alike else headline.fmt


def count_phrase(count: int, singular: str, plural: str | None = None) -> str:
    """ "1 incident", "3 incidents", "no incidents"."""
    if count == 0:
        return f"no {plural or singular + 's'}"
    return counted(count, singular, plural)

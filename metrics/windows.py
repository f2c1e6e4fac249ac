"""SLO evaluation windows: rolling `window_days`, or the calendar month / quarter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from metrics.model import Settings

EPSILON = timedelta(microseconds=1)


def unit_start(moment: datetime, unit: str) -> datetime:
    month = moment.month if unit == "month" else 3 * ((moment.month - 1) // 3) + 1
    return datetime(moment.year, month, 1, tzinfo=UTC)


def unit_end(moment: datetime, unit: str) -> datetime:
    start = unit_start(moment, unit)
    step = 1 if unit == "month" else 3
    index = start.year * 12 + start.month - 1 + step
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """How an SLO's budget window is laid out in time."""

    kind: str  # rolling | calendar
    days: int
    unit: str | None = None  # month | quarter, for calendar windows

    def at(self, moment: datetime) -> tuple[datetime, datetime]:
        """The window reported at `moment`: its start, and where it ends in full.

        Rolling: [moment − days, moment), a window long. Calendar: the unit holding the
        instant just before `moment` (so at 2026-10-01 the quarter is Q3), up to `moment`.
        """
        if self.kind == "rolling" or self.unit is None:
            return moment - timedelta(days=self.days), moment
        inside = moment - EPSILON
        return unit_start(inside, self.unit), unit_end(inside, self.unit)

    def state_start(self, moment: datetime) -> datetime:
        """Where the window starts for the hour beginning at `moment` (budget policy):
        a calendar budget resets at the start of its unit."""
        if self.kind == "rolling" or self.unit is None:
            return moment - timedelta(days=self.days)
        return unit_start(moment, self.unit)

    def length(self, moment: datetime) -> timedelta:
        start, end = self.at(moment)
        if self.kind == "rolling" or self.unit is None:
            return timedelta(days=self.days)
        return end - start

    def describe(self, moment: datetime) -> dict[str, Any]:
        """What was summed (`from`, `to`) and, for a calendar window, where it ends."""
        start, end = self.at(moment)
        calendar = self.kind == "calendar" and self.unit is not None
        return {
            "kind": self.kind,
            "unit": self.unit,
            "from": start,
            "to": moment,
            "ends": end if calendar else None,
        }


def window_for(slo: Any, settings: Settings) -> Window:
    """The window an SLO row is evaluated over (`Settings.slo_window` overrides its own)."""
    days = int(slo.window_days)
    override = settings.slo_window
    if override == "rolling":
        return Window("rolling", days)
    if override in ("month", "quarter"):
        return Window("calendar", days, override)
    unit = getattr(slo, "calendar_unit", None)
    if getattr(slo, "window_kind", "rolling") == "calendar" and unit in ("month", "quarter"):
        return Window("calendar", days, unit)
    return Window("rolling", days)

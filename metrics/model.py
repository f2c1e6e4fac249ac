"""The three values every metrics call takes: what period, what scope, which settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from poise.config import PoiseConfig
from poise.errors import PoiseError
from poise.timeutil import ensure_utc, isoformat_z, quarter_bounds

SloWindow = Literal["rolling", "month", "quarter"]
DEFAULT_PERIOD_DAYS = 28
WEEK_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval `[start, end)`."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", ensure_utc(self.start))
        object.__setattr__(self, "end", ensure_utc(self.end))
        if self.end <= self.start:
            raise PoiseError(
                f"period {isoformat_z(self.start)} – {isoformat_z(self.end)} is empty: "
                "`to` must be after `from`"
            )

    @classmethod
    def quarter(cls, text: str) -> Period:
        """`2026Q3` -> [2026-07-01, 2026-10-01)."""
        start, end = quarter_bounds(text)
        return cls(start, end)

    @classmethod
    def quarter_to_date(cls, text: str, *, now: datetime) -> tuple[Period, bool]:
        """`2026Q4` as far as it has gone at `now` (see `to_date`); True when it was cut.
        A quarter's 13 weeks would otherwise divide 8 weeks of deployments, and its SLOs
        would be judged at an end still to come."""
        start, end = quarter_bounds(text)
        try:
            return cls.to_date(start, end, now=now)
        except PoiseError:
            raise PoiseError(
                f"{text}: the quarter has not begun (it starts on {start:%Y-%m-%d}, and "
                "figures cover whole days up to the start of today, UTC)"
            ) from None

    @classmethod
    def to_date(cls, start: datetime, end: datetime, *, now: datetime) -> tuple[Period, bool]:
        """`[start, end)` as far as it has gone at `now`: an end still to come is cut at the
        start of today (today left out, as it is unfinished); True when it was cut. A
        period that begins today or later holds nothing to measure: refused."""
        today = ensure_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
        if ensure_utc(end) <= ensure_utc(now):
            return cls(start, end), False
        if ensure_utc(start) >= today:
            raise PoiseError(
                f"the period starts on {ensure_utc(start):%Y-%m-%d}, which has not ended: "
                "figures cover whole days up to the start of today, UTC"
            )
        return cls(start, today), True

    @classmethod
    def last_days(cls, days: int, *, now: datetime) -> Period:
        """The `days` whole UTC days before today (today itself left out, as it is unfinished)."""
        today = ensure_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(today - timedelta(days=days), today)

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def days(self) -> float:
        return self.length.total_seconds() / 86400.0

    @property
    def weeks(self) -> float:
        return self.days / 7.0

    def per_week(self, count: float) -> float:
        """`count / weeks`, the contract's `count / (days / 7)`, in one rounding step: the
        quotient of the rounded `weeks` made 17 deployments in 17 days (exactly daily)
        read 7.000000000000001 a week, past the "more than once a day" tier bound."""
        return count * WEEK_SECONDS / self.length.total_seconds()

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def as_json(self) -> dict[str, str]:
        return {"from": isoformat_z(self.start), "to": isoformat_z(self.end)}


@dataclass(frozen=True)
class Scope:
    """What the figures cover: everything, one team's services, or one service."""

    team: str | None = None
    service: str | None = None

    @property
    def is_org(self) -> bool:
        return self.team is None and self.service is None

    def as_json(self) -> dict[str, str | None]:
        return {"team": self.team, "service": self.service}

    def label(self) -> str:
        if self.service:
            return f"service {self.service}"
        if self.team:
            return f"team {self.team}"
        return "all teams"


@dataclass(frozen=True)
class Settings:
    """The knobs of the definitions; `Settings.from_config` reads them from poise.yaml.

    - `benchmark_year`: which published DORA tier table grades the figures.
    - `attribution_window`: how far before an incident inference looks for a deployment.
    - `min_sample`: a figure resting on fewer rows gets the tier `insufficient data`.
    - `hours_per_week`, `toil_cap`: a person's weekly capacity and the share toil may take.
    - `slo_window`: None evaluates each SLO over its own window (rolling `window_days`, or
      its calendar month/quarter); `rolling`, `month` or `quarter` overrides that for all.
    """

    benchmark_year: int = 2023
    attribution_window: timedelta = timedelta(hours=24)
    min_sample: int = 5
    hours_per_week: float = 40.0
    toil_cap: float = 0.5
    slo_window: SloWindow | None = None

    @classmethod
    def from_config(cls, config: PoiseConfig, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "benchmark_year": config.benchmark_year,
            "attribution_window": timedelta(hours=config.attribution.window_hours),
            "hours_per_week": config.people.hours_per_week,
            "toil_cap": config.people.toil_cap,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def window_hours(self) -> float:
        return self.attribution_window.total_seconds() / 3600.0

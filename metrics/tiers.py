"""DORA performance tiers from a published table, chosen by report year.

Each table lists, per figure and tier, the published upper bound (lower bound for
deployment frequency). A value gets the best tier whose bound it meets, so the gaps the
reports leave between bands (2021: lead time "< 1 hour" then "1 day – 1 week") fall to the
better neighbouring tier instead of to nothing. Where a report does not separate tiers at
all (2021 change fail rate: high, medium and low are all "16–30 %"), the tier is None and
the reason says so, rather than a band we invented. Every result carries its report year.
"""

from __future__ import annotations

from dataclasses import dataclass

INSUFFICIENT = "insufficient data"
DAY_H = 24.0
WEEK_H = 7 * DAY_H
MONTH_DAYS = 365.2425 / 12  # the mean Gregorian month
MONTH_H = MONTH_DAYS * DAY_H
PER_MONTH = 7 / MONTH_DAYS  # one deployment a month, as deployments per week
PER_SIX_MONTHS = PER_MONTH / 6


@dataclass(frozen=True)
class Band:
    """A tier and its bound: `value < bound` (`<=` when not strict); for deployment
    frequency, where more is better, `value > bound` (`>=` when not strict)."""

    tier: str
    bound: float
    text: str  # the bound as the report words it
    strict: bool = True


@dataclass(frozen=True)
class Table:
    year: int
    lead_time: tuple[Band, ...]  # hours
    recovery_time: tuple[Band, ...]  # hours
    change_failure_rate: tuple[Band, ...]  # fraction
    deployment_frequency: tuple[Band, ...]  # deployments per week
    notes: dict[str, str]


TABLES: dict[int, Table] = {
    2023: Table(
        year=2023,
        lead_time=(
            Band("elite", DAY_H, "less than 1 day"),
            Band("high", WEEK_H, "less than 1 week"),
            Band("medium", MONTH_H, "less than 1 month"),
        ),
        recovery_time=(
            Band("elite", 1.0, "less than 1 hour"),
            Band("high", DAY_H, "less than 1 day"),
            Band("medium", WEEK_H, "less than 1 week"),
        ),
        change_failure_rate=(
            Band("elite", 0.05, "at most 5 %", strict=False),
            Band("high", 0.10, "at most 10 %", strict=False),
            Band("medium", 0.15, "at most 15 %", strict=False),
        ),
        deployment_frequency=(
            Band("elite", 7.0, "on demand: more than once a day"),
            Band("high", 1.0, "daily to weekly: at least once a week", strict=False),
            Band("medium", PER_MONTH, "weekly to monthly: at least once a month", strict=False),
        ),
        notes={},
    ),
    2021: Table(
        year=2021,
        lead_time=(
            Band("elite", 1.0, "less than 1 hour"),
            Band("high", WEEK_H, "less than 1 week"),
            Band("medium", 6 * MONTH_H, "less than 6 months"),
        ),
        recovery_time=(
            Band("elite", 1.0, "less than 1 hour"),
            Band("high", DAY_H, "less than 1 day"),
            Band("medium", WEEK_H, "less than 1 week"),
        ),
        change_failure_rate=(Band("elite", 0.15, "at most 15 %", strict=False),),
        deployment_frequency=(
            Band("elite", 7.0, "on demand: more than once a day"),
            Band("high", PER_MONTH, "at least once a month", strict=False),
            Band("medium", PER_SIX_MONTHS, "at least once every 6 months", strict=False),
        ),
        notes={
            "change_failure_rate": "the 2021 report gives 16–30 % for high, medium and low "
            "alike, so above 15 % it cannot tell them apart",
        },
    ),
}

UNSUPPORTED_REASON = (
    "no verified {year} tier table (see docs/metrics.md); choose benchmark_year 2021 or 2023"
)


def _result(tier: str | None, reason: str, year: int) -> dict[str, object]:
    return {"tier": tier, "tier_reason": reason, "benchmark_year": year}


def grade(
    figure: str,
    value: float | None,
    sample: int,
    *,
    year: int,
    min_sample: int,
    sample_noun: str,
) -> dict[str, object]:
    """The tier of `figure` (lead_time, recovery_time, change_failure_rate,
    deployment_frequency) for `value`, with the reason and the report year."""
    if sample < min_sample:
        noun = sample_noun.removesuffix("s") if sample == 1 else sample_noun
        return _result(
            INSUFFICIENT,
            f"{sample} {noun} behind it; a tier needs at least {min_sample}",
            year,
        )
    table = TABLES.get(year)
    if table is None:
        return _result(None, UNSUPPORTED_REASON.format(year=year), year)
    if value is None:
        return _result(None, "no value to grade", year)
    bands: tuple[Band, ...] = getattr(table, figure)
    for band in bands:
        if _meets(figure, value, band):
            return _result(band.tier, f"{band.text} ({year} table)", year)
    if figure in table.notes:
        return _result(None, f"{table.notes[figure]} ({year} table)", year)
    last = bands[-1]
    return _result("low", f"not {last.text} ({year} table)", year)


def _meets(figure: str, value: float, band: Band) -> bool:
    if figure == "deployment_frequency":
        return value > band.bound if band.strict else value >= band.bound
    return value < band.bound if band.strict else value <= band.bound

"""Headline sentences: rose / fell / held, units, tiers, and missing figures."""

from __future__ import annotations

from reports.figures import DORA_FIGURES, headline, incident_sentence, tier_of
from reports.formats import display, excel_format
from reports.model import Fmt
from reports.summary import (
    Change,
    Headline,
    change_text,
    compared_fmt,
    count_phrase,
    paragraph,
    sentence,
)


def moved(current: float | None, previous: float | None) -> dict[str, float | None]:
    """What the engine's `metrics.trends.change` gives: difference and relative change."""
    if current is None or previous is None:
        return {"delta": None, "relative": None}
    delta = current - previous
    return {"delta": delta, "relative": delta / previous if previous else None}


def frequency(current: float | None, previous: float | None, **kw: object) -> Headline:
    return Headline(
        "Deployment frequency",
        current,
        previous,
        Fmt.DECIMAL1,
        " per week",
        graded=True,
        **moved(current, previous),
        **kw,  # type: ignore[arg-type]
    )


def fail_rate(current: float | None, previous: float | None, **kw: object) -> Headline:
    return Headline(
        "Change fail rate",
        current,
        previous,
        Fmt.PERCENT1,
        change=Change.POINTS,
        graded=True,
        **moved(current, previous),
        **kw,  # type: ignore[arg-type]
    )


def test_the_issue_example() -> None:
    text = paragraph(
        [
            frequency(21.24, 18.0, tier="elite", previous_tier="high"),
            fail_rate(0.0901, 0.0903, tier="high"),
        ]
    )
    assert text == (
        "Deployment frequency rose 18 % to 21.2 per week (tier elite, was high); "
        "change fail rate held at 9.0 % (tier high)."
    )


def test_fell_and_points() -> None:
    assert sentence(frequency(9.0, 12.0, tier="high")) == (
        "Deployment frequency fell 25 % to 9.0 per week (tier high)"
    )
    assert sentence(fail_rate(0.12, 0.08, tier="medium", previous_tier="high")) == (
        "Change fail rate rose 4.0 points to 12.0 % (tier medium, was high)"
    )
    assert change_text(fail_rate(0.12, 0.08)) == "+4.0 pts"
    assert change_text(frequency(9.0, 12.0)) == "−25 %"
    assert change_text(frequency(12.02, 12.0)) == "±0 %"


def test_a_change_that_rounds_to_nothing_keeps_its_unit() -> None:
    """Rates change in points on every row, "±0" included (the headline table's rework rate
    read "±0" between rows reading "−0.1 pts")."""
    assert change_text(fail_rate(0.0771, 0.0772)) == "±0.0 pts"
    assert change_text(fail_rate(0.0863, 0.0857)) == "+0.1 pts"
    assert change_text(frequency(0.0, 0.0)) == "±0 %"


def test_figures_that_round_alike_but_moved_get_one_more_decimal() -> None:
    # 8.6 % against 8.6 % beside "−0.1 pts" read as a contradiction
    moved_rate = fail_rate(0.08573, 0.08627)
    assert change_text(moved_rate) == "−0.1 pts"
    assert compared_fmt(moved_rate) is Fmt.PERCENT2
    assert compared_fmt(fail_rate(0.0771, 0.0772)) is Fmt.PERCENT1  # held: alike is right
    assert compared_fmt(fail_rate(0.12, 0.08)) is Fmt.PERCENT1  # already read apart
    assert compared_fmt(frequency(10.04, 9.96)) is Fmt.DECIMAL2  # 10.0 vs 10.0, +1 %
    assert compared_fmt(frequency(10.0, None)) is Fmt.DECIMAL1


def test_missing_figures_say_so_instead_of_zero() -> None:
    assert sentence(frequency(None, 12.0)) == "Deployment frequency: not enough data this quarter"
    assert sentence(frequency(3.0, None, tier="medium")) == (
        "Deployment frequency was 3.0 per week (no figure for the quarter before; tier medium)"
    )
    assert change_text(frequency(None, 1.0)) == "" and change_text(frequency(1.0, None)) == ""
    assert (
        sentence(frequency(2.0, 0.0, tier="high"))
        == "Deployment frequency rose from 0.0 per week to 2.0 per week (tier high)"
    )
    assert (
        sentence(frequency(0.0, 0.0, tier="low"))
        == "Deployment frequency held at 0.0 per week (tier low)"
    )


def test_small_samples_and_ungraded_figures() -> None:
    assert sentence(frequency(1.0, 1.0, tier="insufficient data")).endswith(
        "held at 1.0 per week (too small a sample for a tier)"
    )
    assert sentence(fail_rate(0.2, 0.2, tier=None)).endswith("(not graded by the benchmark table)")
    untiered = Headline("Incidents", 4, 5, Fmt.COUNT, **moved(4, 5))
    assert sentence(untiered) == "Incidents fell 20 % to 4"
    no_change_given = Headline(
        "Time to acknowledge", 4.0, 5.0, Fmt.DECIMAL1, " min", compared=False
    )
    assert (
        sentence(no_change_given) == "Time to acknowledge was 4.0 min (5.0 min the quarter before)"
    )


def test_count_phrase() -> None:
    assert count_phrase(0, "incident") == "no incidents"
    assert count_phrase(1, "incident") == "1 incident"
    assert count_phrase(1200, "deployment") == "1,200 deployments"
    assert count_phrase(2, "was", "were") == "2 were"


def lead_time(current: float | None, previous: float | None) -> Headline:
    return Headline("Change lead time", current, previous, Fmt.HOURS, **moved(current, previous))


def test_durations_are_worded_as_the_dashboard_words_them() -> None:
    assert sentence(lead_time(503.3, 492.0)) == "Change lead time rose 2 % to 21.0 d"
    assert sentence(lead_time(0.4, 0.5)) == "Change lead time fell 20 % to 24 min"
    assert sentence(lead_time(4.4, None)).startswith("Change lead time was 4.4 h")
    # alike at one decimal but moved: one more digit, in the same words
    assert compared_fmt(lead_time(4.44, 4.36)) is Fmt.HOURS2
    assert display(4.44, Fmt.HOURS2) == "4.44 h" and display(1000.0, Fmt.HOURS2) == "41.67 d"
    # minutes are worded from minutes; the workbook keeps numbers, with the unit in the format
    assert display(22.0, Fmt.MINUTES) == "22 min" and display(114.0, Fmt.MINUTES) == "1.9 h"
    assert excel_format(Fmt.HOURS) == '#,##0.0" h"' and excel_format(Fmt.MINUTES).endswith('min"')
    assert display(None, Fmt.HOURS) == "no data"


def test_the_incident_sentence_says_when_no_incident_data_speaks_for_deployments() -> None:
    def card(incidents: int | None, silent: int, deployments: int) -> dict[str, object]:
        return {
            "incidents": {"count": incidents},
            "dora": {"deployment_frequency": {"deployments": deployments}},
            "data_quality": {"deployments_without_incident_data": silent},
        }

    # a git-only scope: no incident figure at all, said once
    git_only = incident_sentence(card(None, 6, 6), card(None, 0, 0))
    assert git_only == (
        "No incident is on record for these services at all (no incident source synced or "
        "imported): there is no incident figure for the quarter, and the change fail rate of "
        "its 6 production deployments counts only rollbacks and fixes."
    )
    # incidents elsewhere in the organisation, none for these deployments' services
    partly = incident_sentence(card(0, 6, 6), card(0, 0, 3))  # deployed before, no incident
    assert partly == (
        "No incidents started in the quarter (no incidents in the quarter before). All "
        "production deployments belong to services with no incident on record at all, so "
        "their change fail rate counts only rollbacks and fixes."
    )
    assert "2 of 9 production deployments belong" in incident_sentence(card(0, 2, 9), {})
    assert "on record" not in incident_sentence(card(0, 0, 9), {})


def test_a_change_fail_rate_no_incident_data_speaks_for_gets_no_tier() -> None:
    cfr = next(f for f in DORA_FIGURES if f.tier_path == ("dora", "change_failure_rate", "tier"))

    def card(silent: int, deployments: int) -> dict[str, object]:
        return {
            "dora": {
                "change_failure_rate": {"rate": 0.0, "deployments": deployments, "tier": "elite"}
            },
            "data_quality": {"deployments_without_incident_data": silent},
        }

    assert tier_of(card(7, 7), cfr) == "no incident data"
    assert tier_of(card(2, 7), cfr) == "elite"  # partly covered: the tier stands, a note says
    assert tier_of(card(0, 0), cfr) == "elite"
    item = headline(cfr, card(7, 7), None)
    assert sentence(item) == (
        "Change fail rate was 0.0 % (no figure for the quarter before; no tier: no incident is "
        "on record for these services)"
    )

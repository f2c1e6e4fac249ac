"""The change from the period before (`metrics.trends.change`, which the report's headline
sentences, its "Quarter before" column and the dashboard's deltas read): a period before the
data begins is no figure to compare with, not a period of zeros."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from metrics_org import Org
from sqlalchemy import Engine

from metrics import Period, Scope, Settings
from metrics.trends import COMPARED, holds_data, period_over_period
from reports.builder import build_report
from reports.figures import DORA_FIGURES, headline
from reports.model import Paragraph
from reports.summary import movement

Q3 = Period(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
NOW = datetime(2026, 10, 2, tzinfo=UTC)


def at(days: float) -> datetime:
    return Q3.start + timedelta(days=days)


def shop(*, incident_before: bool = False) -> Org:
    """Ten deployments of checkout in 2026Q3, each shipping a change; with
    `incident_before`, one incident of it in the quarter before and nothing else there."""
    org = Org().service("checkout", "payments")
    for n in range(10):
        org.change(f"c{n}", "checkout", at(n * 7) - timedelta(hours=3))
        org.deploy(f"d{n}", "checkout", at(n * 7), [f"c{n}"])
    if incident_before:
        org.incident("i1", "checkout", at(-20))
    return org


def test_a_quarter_before_the_data_begins_gives_no_previous_figure(
    warehouse: Engine, tmp_path: Path
) -> None:
    shop().load(warehouse, tmp_path)
    card = period_over_period(warehouse, Q3, Scope(), Settings(), now=NOW)
    assert card["dora"]["deployment_frequency"]["deployments"] == 10
    # the engine's own figures for the empty quarter stay as the contract says (0, not null)
    assert card["previous"]["dora"]["deployment_frequency"]["per_week"] == 0.0
    assert not holds_data(card["previous"]) and holds_data(card)
    change = card["change"]
    assert {name: change[name]["previous"] for name in COMPARED} == dict.fromkeys(COMPARED)
    assert change["deployments_per_week"]["delta"] is None
    assert (
        change["deployments_per_week"]["current"]
        == card["dora"]["deployment_frequency"]["per_week"]
    )
    frequency = headline(DORA_FIGURES[0], card, card["previous"])
    assert frequency.previous is None and frequency.previous_tier is None
    assert movement(frequency).endswith("per week (no figure for the quarter before)")


def test_a_quarter_with_any_record_is_compared_zeros_and_all(
    warehouse: Engine, tmp_path: Path
) -> None:
    """One incident in the quarter before: the warehouse covered it, and no deployment
    there is a real 0 per week."""
    shop(incident_before=True).load(warehouse, tmp_path)
    card = period_over_period(warehouse, Q3, Scope(), Settings(), now=NOW)
    assert holds_data(card["previous"])
    frequency = card["change"]["deployments_per_week"]
    assert frequency["previous"] == 0.0 and frequency["delta"] == frequency["current"] > 0
    assert card["change"]["incidents"]["previous"] == 1
    frequency_line = movement(headline(DORA_FIGURES[0], card, card["previous"]))
    assert frequency_line.startswith("rose from 0.0 per week"), frequency_line


def test_the_report_says_once_that_the_quarter_before_holds_nothing(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Its summary read "rose from 0.0 per week", then "(no figure for the quarter before)"
    after each figure, and "(no incidents in the quarter before)"."""
    shop().incident("i2", "checkout", at(30)).load(warehouse, tmp_path)
    report = build_report(warehouse, "2026Q3", settings=Settings(), now=NOW)
    summary = [block.text for block in report.sections[0].blocks if isinstance(block, Paragraph)]
    assert summary[0] == (
        "The warehouse holds nothing of the quarter before (no deployment, deployed change, "
        "incident, toil or page), so no figure is compared with it."
    )
    assert summary[1].startswith("Deployment frequency was 0.8 per week (tier medium);")
    assert summary[3].startswith("1 incident started in the quarter; time to resolve was 2")
    assert not [text for text in summary[1:5] if "quarter before" in text]


def test_team_sections_say_once_what_their_quarters_hold(warehouse: Engine, tmp_path: Path) -> None:
    """A team with nothing in the quarter before reads the line once, as the summary does;
    a team with nothing in the quarter itself says so in one sentence, not "not enough data"
    figure by figure."""
    shop().service("ledger", "billing").load(warehouse, tmp_path)
    report = build_report(warehouse, "2026Q3", settings=Settings(), now=NOW)
    teams = {section.title: section for section in report.sections[1].subsections}

    def said(team: str) -> list[str]:
        blocks = teams[f"Team {team}"].blocks
        return [block.text for block in blocks if isinstance(block, Paragraph)]

    payments = said("payments")
    assert payments[0] == (
        "The warehouse holds nothing of the quarter before for team payments (no deployment, "
        "deployed change, incident, toil or page), so no figure is compared with it."
    )
    assert payments[1].startswith("Deployment frequency was 0.8 per week (tier medium);")
    assert "quarter before" not in payments[1]
    assert said("billing") == [
        "No data for team billing in 2026Q3: the warehouse holds no production deployment, "
        "deployed change, incident or SLI sample."
    ]

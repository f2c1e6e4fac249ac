"""How the dashboard's tables show a frame's columns when a page gives no config of its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from dashboard import charts, components
from dashboard.components import column_help, displayed, tier_style


def _format(config: dict, column: str) -> tuple[str, str | None]:
    entry = config[column]
    return entry["label"], (entry.get("type_config") or {}).get("format")


def test_times_rates_and_hours_read_as_people_write_them() -> None:
    frame = pd.DataFrame(
        {
            "bucket_start": pd.to_datetime(
                [datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)]
            ),
            "deployed_at": pd.to_datetime(
                [datetime(2026, 10, 30, 9, 41, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)]
            ),
            "change_failure_rate": [0.1176, 0.07],
            "lead_time_median_hours": [3.2529, 3.1119],
            "deployments_per_week": [39.6667, 128.0],
            "failed": [2, 9],
            "service": ["checkout", "search"],
        }
    )
    config = column_help(frame, {"bucket_start": "week of"})
    # whole days as days, other instants to the minute, both saying UTC
    assert _format(config, "bucket_start") == ("week of (UTC)", "YYYY-MM-DD")
    assert _format(config, "deployed_at") == ("deployed at (UTC)", "YYYY-MM-DD HH:mm")
    # a share in percent (the glossary's unit) with its definition on hover
    assert _format(config, "change_failure_rate") == ("change failure rate", "percent")
    assert config["change_failure_rate"]["help"]
    # weekly rates to one decimal; hours get no number format (`displayed` words them) and
    # their title leaves the unit to the cells
    assert _format(config, "lead_time_median_hours") == ("lead time median", None)
    assert _format(config, "deployments_per_week")[1] == "%.1f"
    # counts and words as they are
    assert "type_config" not in config["failed"] or not config["failed"]["type_config"]
    assert config["service"]["label"] == "service"


def test_shares_show_in_percent_to_one_decimal_and_stay_fractions_for_the_csv() -> None:
    frame = pd.DataFrame(
        {"change_failure_rate": [0.1176, 0.069], "target": [0.999, 0.9995], "team": ["a", "b"]}
    )
    shown, config = displayed(frame, {"target": {"label": "target", "type_config": {}}})
    # what the table shows: percent numbers with one decimal, whatever the value's digits
    assert list(shown["change_failure_rate"]) == pytest.approx([11.76, 6.9])
    assert _format(config, "change_failure_rate") == ("change failure rate", "%.1f%%")
    # a column the page configured itself is left to it, values and all
    assert list(shown["target"]) == [0.999, 0.9995] and config["target"]["label"] == "target"
    # the frame the CSV is written from is untouched
    assert list(frame["change_failure_rate"]) == [0.1176, 0.069]
    # a Styler's cells are not rescaled under its formats: it keeps Streamlit's percent
    styled, styled_config = displayed(tier_style(frame, ["team"]), {})
    assert list(styled.data["change_failure_rate"]) == [0.1176, 0.069]
    assert _format(styled_config, "change_failure_rate")[1] == "percent"


def test_durations_read_as_the_cards_write_them_and_stay_hours() -> None:
    frame = pd.DataFrame(
        {
            "team": ["a", "b", "c", "d"],
            "lead_time_hours": [3.25, 503.3, 0.2, None],
            "lead_time_hours_change": [-0.5, 48.0, None, 0.0],
            "mttr": [1.5, None, 72.0, 0.5],
            "p90_hours": [1.0, 2.0, 3.0, 4.0],
        }
    )
    shown, config = displayed(
        frame, {"p90_hours": {"label": "p90", "type_config": {"format": "%.2f"}}}, None, ["mttr"]
    )
    text = shown.to_string(delimiter="|")
    rows = [line.split("|")[1:] for line in text.splitlines()[1:]]
    assert [row[1] for row in rows] == ["3.2 h", "21.0 d", "12 min", "—"]
    assert [row[2] for row in rows] == ["-30 min", "+2.0 d", "—", "+0 min"]
    assert [row[3] for row in rows] == ["1.5 h", "—", "3.0 d", "30 min"]  # named by the page
    # a column the page gave a format keeps it; the data under the words stays hours
    assert config["p90_hours"]["type_config"]["format"] == "%.2f"
    assert shown.data["lead_time_hours"].iloc[1] == 503.3
    assert _format(config, "lead_time_hours")[1] is None


def test_a_long_table_gets_its_durations_in_hours_without_a_styler(monkeypatch) -> None:
    monkeypatch.setattr(components, "STYLED_CELLS", 3)
    frame = pd.DataFrame({"lead_hours": [3.25, 503.3], "delta_hours_change": [1.0, -2.0]})
    shown, config = displayed(frame, {})
    assert isinstance(shown, pd.DataFrame)
    assert _format(config, "lead_hours")[1] == "%.1f h"
    assert _format(config, "delta_hours_change")[1] == "%+.1f h"


def test_days_left_read_as_time_left_or_how_long_ago_it_expired() -> None:
    assert components.days_left_words(12.5) == "12.5 d"
    assert components.days_left_words(0.5) == "12.0 h"
    assert components.days_left_words(-60.2) == "expired 60.2 d ago"
    assert components.days_left_words(-0.01) == "expired 14 min ago"


def test_a_figure_and_its_tier_share_one_cell_that_still_sorts_by_the_figure() -> None:
    frame = pd.DataFrame(
        {
            "team": ["a", "b", "c"],
            "lead_time_hours": [503.34, 1.5, float("nan")],
            "lead_time_tier": ["medium", "insufficient data", None],
            "met": [3.0, 0.0, float("nan")],
            "budget_state": ["at_risk", "ok", None],
        }
    )
    styler = components.tiered_style(
        frame,
        {"lead_time_hours": "lead_time_tier"},
        {"lead_time_hours": components.hours},
        states=["budget_state"],
    )
    styler = components.cell_texts(styler, "met", ["3 of 5", "0 of 2", components.MISSING])
    lines = [line.split("|", 1)[1] for line in styler.to_string(delimiter="|").splitlines()[1:]]
    assert lines == [
        "a|21.0 d · medium|medium|3 of 5|at risk",
        "b|1.5 h · n < 5|insufficient data|0 of 2|ok",
        "c|—|nan|—|—",
    ]
    assert styler.data["lead_time_hours"].tolist()[:2] == [503.34, 1.5]  # sorts as numbers
    html = styler.to_html()
    fills = {
        charts.TIER_COLOURS["medium"],
        charts.TIER_COLOURS["insufficient data"],
        charts.STATUS_COLOURS["at_risk"],
    }
    assert all(colour.lower() in html.lower() for colour in fills)
    # shown through the dashboard's table, the Styler's text is not worded over again
    shown, _config = displayed(styler, {}, written=["lead_time_hours"])
    assert "21.0 d · medium" in shown.to_string()

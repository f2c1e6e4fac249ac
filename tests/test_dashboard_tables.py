"""How the dashboard's tables show a frame's columns when a page gives no config of its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

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
    # hours and weekly rates to one decimal, by what their names say
    assert _format(config, "lead_time_median_hours")[1] == "%.1f"
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

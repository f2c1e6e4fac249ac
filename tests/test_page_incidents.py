"""The Incidents page under Streamlit's AppTest, on a warehouse of five hand-written
incidents (the exact figures are known) and on the demo organisation: one word for an
incident without a cause or severity, open incidents said to be open, every time card with
its change, whole-number count axes, the most severe incidents drawn on top, and an index
whose key columns come first."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import components
from dashboard.filters import today
from metrics import Period, Scope, Settings
from metrics.derived import refresh_derived
from metrics.scorecard import scorecard
from poise.importer import import_file
from poise.warehouse import open_warehouse

PAGE = Path(__file__).resolve().parent.parent / "pages" / "incidents.py"
TIMEOUT = 240
INDEX_COLUMNS = [
    "id",
    "started_at",
    "severity",
    "state",
    "mttr",
    "postmortem_url",
    "cause",
    "attribution",
    "deployment_id",
    "service",
    "title",
    "attribution_reason",
]


def _stamp(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _incident(
    id_: str,
    service: str,
    severity: str,
    started: datetime,
    detect_min: int,
    ack_min: int,
    resolve_h: float | None,
    cause: str = "",
    postmortem: str = "",
) -> dict[str, str]:
    return {
        "id": id_,
        "service": service,
        "severity": severity,
        "started_at": _stamp(started),
        "detected_at": _stamp(started + timedelta(minutes=detect_min)),
        "acknowledged_at": _stamp(started + timedelta(minutes=ack_min)),
        "resolved_at": _stamp(None if resolve_h is None else started + timedelta(hours=resolve_h)),
        "cause": cause,
        "title": f"{id_} went wrong",
        "postmortem_url": postmortem,
    }


@pytest.fixture(scope="module")
def small_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Four incidents in the last 28 days and one in the 28 days before.

    Now: times to detect 10, 20, 30, 40 min (median 25), to acknowledge 20, 30, 40, 60
    (median 35), to resolve 2 h, 1 h and 3 h (median 2; `open-1` is still open). Before:
    30 min, 40 min and 4 h. So the changes are +3 incidents, -5 min, -5 min and -2 h.
    `sev1-a` and `sev3-b` start at the same moment on the same service; `sev3-b` and
    `open-1` have no cause, `open-1` no severity either, and a postmortem already."""
    folder = tmp_path_factory.mktemp("incidents-page")
    end = today()
    day = end - timedelta(days=3)
    incidents = [
        _incident("sev1-a", "web", "SEV1", day, 10, 20, 2.0, cause="regression"),
        _incident("sev3-b", "web", "SEV3", day, 20, 30, 1.0),
        _incident(
            "open-1",
            "api",
            "",
            end - timedelta(days=1),
            30,
            40,
            None,
            postmortem="https://wiki.example.com/pm/open-1",
        ),
        _incident("sev2-d", "api", "SEV2", end - timedelta(days=10), 40, 60, 3.0, "capacity"),
        _incident("before-1", "web", "SEV2", end - timedelta(days=40), 30, 40, 4.0, "capacity"),
    ]
    services = folder / "services.csv"
    services.write_text("name,team\nweb,alpha\napi,alpha\n", encoding="utf-8")
    rows = folder / "incidents.jsonl"
    rows.write_text("".join(json.dumps(row) + "\n" for row in incidents), encoding="utf-8")
    url = f"sqlite:///{folder / 'small.db'}"
    engine = open_warehouse(url)
    try:
        import_file(engine, "services", services)
        import_file(engine, "incidents", rows)
        refresh_derived(engine, Settings())
    finally:
        engine.dispose()
    return url


def run(**params: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def metric(at: AppTest, label: str) -> Any:
    found = [m for m in at.metric if m.label == label]
    assert found, f"no figure {label!r} among {[m.label for m in at.metric]}"
    return found[0]


def index(at: AppTest) -> pd.DataFrame:
    return at.dataframe[-1].value


def figure(at: AppTest, name: str) -> dict[str, Any]:
    """The Plotly spec of the chart keyed `chart-{name}`."""
    for chart in at.get("plotly_chart"):
        if chart.proto.id and f"chart-{name}" in chart.proto.id:
            return dict(json.loads(chart.proto.spec))
    raise AssertionError(f"no chart {name!r}")


def values(array: Any) -> list[Any]:
    """A Plotly array as a list: Plotly writes numbers as base64 typed arrays."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def column_config(at: AppTest, position: int) -> dict[str, Any]:
    return dict(json.loads(at.dataframe[position].proto.columns))


# --- hand-written incidents ---------------------------------------------------------------------


def test_a_missing_cause_or_severity_reads_unspecified_everywhere(small_url: str, use: Any) -> None:
    use(small_url)
    at = run()
    rows = index(at).set_index("id")
    assert rows.loc["sev3-b", "cause"] == "unspecified"
    assert rows.loc["open-1", "cause"] == "unspecified"
    assert rows.loc["open-1", "severity"] == "unspecified"
    assert rows["cause"].notna().all() and rows["severity"].notna().all()
    causes = figure(at, "causes")["data"][0]
    assert dict(zip(causes["y"], values(causes["x"]), strict=True)) == {
        "unspecified": 2,
        "regression": 1,
        "capacity": 1,
    }
    timeline = figure(at, "incident-timeline")
    assert "unspecified" in {trace.get("name") for trace in timeline["data"]}
    # the chart's numbers use the same word, in the chart's order
    numbers = at.dataframe[-2].value
    assert list(numbers["cause"]) == ["unspecified", "capacity", "regression"]
    # and the search finds them by it
    at.text_input[0].set_value("Unspecified").run()
    assert set(index(at)["id"]) == {"sev3-b", "open-1"}


def test_an_open_incident_says_it_is_open(small_url: str, use: Any) -> None:
    use(small_url)
    at = run()
    rows = index(at).set_index("id")
    assert rows.loc["open-1", "state"] == "open"
    assert pd.isna(rows.loc["open-1", "mttr"])
    assert set(rows.drop(index="open-1")["state"]) == {"resolved"}
    assert rows.loc["sev2-d", "mttr"] == pytest.approx(3.0)
    # its postmortem link is not labelled "open" (that word is the state now)
    link = column_config(at, -1)["postmortem_url"]
    assert link["type_config"]["display_text"] == "read"
    timeline_numbers = at.dataframe[0].value.set_index("id")
    assert timeline_numbers.loc["open-1", "state"] == "open"
    at.text_input[0].set_value("open").run()
    assert list(index(at)["id"]) == ["open-1"]


def test_every_time_card_shows_its_change(small_url: str, use: Any) -> None:
    use(small_url)
    at = run()
    assert metric(at, "Time to detect").value == components.minutes(25.0)
    assert metric(at, "Time to detect").delta == components.signed(-5.0, "minutes")
    assert metric(at, "Time to acknowledge").value == components.minutes(35.0)
    assert metric(at, "Time to acknowledge").delta == components.signed(-5.0, "minutes")
    assert metric(at, "Time to resolve").value == components.hours(2.0)
    assert metric(at, "Time to resolve").delta == components.signed(-2.0, "hours")
    assert components.md("n = 3 resolved, 1 still open") in [c.value for c in at.caption]
    assert metric(at, "Incidents").value == "4"
    assert metric(at, "Attributed").value == "0"


def test_the_change_of_a_count_is_a_whole_number(small_url: str, use: Any) -> None:
    use(small_url)
    at = run()
    assert metric(at, "Incidents").delta == "+3"


def test_the_most_severe_incident_is_drawn_on_top(small_url: str, use: Any) -> None:
    use(small_url)
    at = run()
    timeline = figure(at, "incident-timeline")
    traces = timeline["data"]
    markers = [trace.get("name") for trace in traces if trace.get("mode") == "markers"]
    # Plotly paints in order: every resolution line under every marker, SEV1 last
    first_marker = next(i for i, t in enumerate(traces) if t.get("mode") == "markers")
    assert all(t.get("mode") == "markers" for t in traces[first_marker:])
    assert markers == ["unspecified", "SEV3", "SEV2", "SEV1"]
    # the legend still reads from SEV1 down
    assert timeline["layout"]["legend"]["traceorder"] == "reversed"


def test_the_index_puts_its_key_columns_first(small_url: str, use: Any) -> None:
    use(small_url)
    at = run()
    assert list(index(at).columns) == INDEX_COLUMNS
    config = column_config(at, -1)
    assert config["state"]["label"] == "state"
    assert config["title"]["width"] == "medium" and config["attribution_reason"]["width"] == (
        "large"
    )


def test_counts_have_whole_ticks(small_url: str, use: Any) -> None:
    use(small_url)
    at = run()
    axis = figure(at, "causes")["layout"]["xaxis"]
    assert axis["dtick"] == 1 and axis["tickformat"] == ",d"


# --- the demo organisation ------------------------------------------------------------------------


def test_on_the_demo_the_page_agrees_with_the_engine(dashboard_demo_url: str, use: Any) -> None:
    use(dashboard_demo_url)
    at = run(period="90d")
    end = today()
    engine = open_warehouse(dashboard_demo_url, migrate=False)
    try:
        card = scorecard(engine, Period(end - timedelta(days=90), end), Scope(), Settings())
    finally:
        engine.dispose()
    figures = card["incidents"]
    rows = index(at)
    assert len(rows) == figures["count"]
    assert (rows["state"] == "open").sum() == card["data_quality"]["incidents_unresolved"]
    # the causes shown in the index are the engine's, `unspecified` included
    assert rows["cause"].value_counts().to_dict() == {
        cause: block["count"] for cause, block in figures["by_cause"].items()
    }
    axis = figure(at, "causes")["layout"]["xaxis"]
    largest = max(block["count"] for block in figures["by_cause"].values())
    assert float(axis["dtick"]).is_integer() and largest / axis["dtick"] <= 8
    for label in ("Time to detect", "Time to acknowledge", "Time to resolve"):
        assert metric(at, label).delta is not None, label

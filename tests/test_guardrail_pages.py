"""The guardrails on the dashboard (Streamlit AppTest): the gate's ledger and the certificates
at risk on the Reliability page, the unusual weeks on the Overview and the Team retro.

On a copy of the session's demo warehouse (four months up to today, with the demo's
certificate checks), plus gate decisions asked of the real gate, and on the planted
warehouse of tests/test_anomalies.py.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest
from test_anomalies import planted_org
from test_pages import assert_clean, cards_with_their_grid, run

from dashboard import components, guardrails
from metrics import anomalies, certificates
from metrics.gate_data import evaluate_gate, record_decision
from metrics.model import Period, Scope, Settings
from poise.config import AnomalyConfig, BudgetPolicy
from poise.timeutil import utcnow
from poise.warehouse import open_warehouse

SERVICES = ("recommendations", "billing-api", "storefront-web")


@pytest.fixture(scope="module")
def guarded_url(dashboard_demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo, copied, with the gate asked about three services (and a rollback)."""
    source = Path(make_url(dashboard_demo_url).database or "")
    copy = tmp_path_factory.mktemp("guarded") / "demo.db"
    shutil.copyfile(source, copy)
    url = f"sqlite:///{copy}"
    engine = open_warehouse(url)
    now = utcnow()
    for service in SERVICES:
        decision = evaluate_gate(engine, service, "feature", BudgetPolicy(), Settings(), now)
        record_decision(engine, decision, now, ref=f"{service}@v2", actor="ci")
    rollback = evaluate_gate(engine, "billing-api", "rollback", BudgetPolicy(), Settings(), now)
    record_decision(engine, rollback, now, ref="billing-api@v1", actor="alice")
    engine.dispose()
    return url


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    for frame in at.dataframe:
        value = frame.value
        if all(column in value.columns for column in columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def texts(at: AppTest) -> str:
    parts = [*(c.value for c in at.caption), *(m.value for m in at.markdown)]
    parts += [*(w.value for w in at.warning), *(s.value for s in at.subheader)]
    return "\n".join(str(part) for part in parts)


def test_reliability_shows_the_gate_ledger_and_certificates_at_risk(
    guarded_url: str, use: Any
) -> None:
    use(guarded_url)
    at = run("reliability")
    assert_clean(at)
    assert {"Release gate decisions", "Certificates at risk"} <= {s.value for s in at.subheader}
    ledger = table_with(at, "decided_at", "decision", "reason")
    assert sorted(ledger["service"]) == sorted([*SERVICES, "billing-api"])
    assert set(ledger["ref"]) == {f"{s}@v2" for s in SERVICES} | {"billing-api@v1"}
    assert all(
        reason.startswith(f"{service}: ")
        for service, reason in zip(ledger["service"], ledger["reason"], strict=True)
    )
    counts = {m.label: m.value for m in at.metric}
    kinds = ledger["decision"].value_counts()
    assert counts["ship"] == str(kinds.get("ship", 0))
    assert counts["freeze"] == str(kinds.get("freeze", 0))

    engine = open_warehouse(guarded_url, migrate=False)
    try:
        with engine.connect() as connection:
            expected = certificates.expiry_risks(certificates.load(connection, Scope()), utcnow())
    finally:
        engine.dispose()
    risks = table_with(at, "risk", "days_left", "problem")
    assert list(risks["id"]) == list(expected["id"])
    assert list(risks["risk"]) == ["expired", "expiring", "unreachable"]
    assert risks["problem"].iloc[0] == "certificate has expired"
    assert "3 of 5 certificates are availability risks" in texts(at)


def test_the_gate_decision_cards_wrap_rather_than_cut_their_titles(
    guarded_url: str, use: Any
) -> None:
    """In st.columns, the four decision cards were a quarter of a 1024 px laptop's page
    each: "exception (fix or rollback in a freeze)" read "exception (fix or roll…", and a
    phone had four slivers. As the other pages' cards, they sit in a grid sized to their
    titles, which wraps: four a row on a 1280 px laptop, two at 1024 px, one on a phone."""
    use(guarded_url)
    at = run("reliability")
    assert_clean(at)
    placed = {card.label: grid for card, grid in cards_with_their_grid(at.main)}
    words = list(guardrails.DECISION_WORDS.values())
    grids = [placed[word] for word in words]
    assert all(grid is not None and grid is grids[0] for grid in grids)
    assert grids[0].proto.wrap
    assert grids[0].proto.min_column_width_px >= components.card_width(words)
    # a word each, so the titles do not widen the cards (a 39-character title needed
    # 314 px: three a row at 1440 px); what each decision means is said under it
    assert components.card_width(words) == components.CARD_WIDTH
    captions = {caption.value for caption in at.caption}
    assert set(guardrails.DECISION_NOTES.values()) <= captions


def test_a_team_sees_only_its_own_certificates_and_decisions(guarded_url: str, use: Any) -> None:
    use(guarded_url)
    at = run("reliability", team="storefront")
    assert_clean(at)
    ledger = table_with(at, "decided_at", "decision", "reason")
    assert set(ledger["service"]) == {"storefront-web"}
    risks = table_with(at, "risk", "days_left", "problem")
    assert list(risks["service"]) == ["search"]  # expiring in 12 days


@pytest.fixture(scope="module")
def planted_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("planted")
    url = f"sqlite:///{folder / 'planted.db'}"
    engine = open_warehouse(url)
    planted_org().load(engine, folder)
    engine.dispose()
    return url


def test_overview_marks_the_unusual_weeks(planted_url: str, use: Any) -> None:
    use(planted_url)
    at = run("overview", **{"period": "custom", "from": "2026-08-24", "to": "2026-09-21"})
    assert_clean(at)
    flags = table_with(at, "week", "what", "figure", "usual")
    assert "checkout" in set(flags["what"]) and "all teams" in set(flags["what"])
    assert set(flags["direction"]) == {"worse"}
    figure = next(box for box in at.selectbox if box.label == "Figure")
    figure.set_value("lead_time_median_hours").run()
    assert_clean(at)
    numbers = table_with(at, "week_start", "value", "lower", "upper", "anomaly")
    assert numbers["anomaly"].tolist() == [False, False, True, False]
    assert numbers["value"].iloc[2] == pytest.approx(27.5)
    # the band as drawn and tabled is clipped to what a lead time can be: never below 0
    judged = anomalies.weekly_judgements(
        open_warehouse(planted_url, migrate=False),
        Period(datetime(2026, 8, 24, tzinfo=UTC), datetime(2026, 9, 21, tzinfo=UTC)),
        Scope(),
        Settings(),
        now=utcnow(),
    )
    lead = judged[(judged["level"] == "scope") & (judged["figure"] == "lead_time_median_hours")]
    assert (lead["lower"] < 0).any()  # the rule's own band reaches below zero here ...
    assert (numbers["lower"] >= 0).all()  # ... the page's does not


def test_overview_says_why_the_weeks_start_before_a_period(planted_url: str, use: Any) -> None:
    """Weeks are judged whole: a period starting on a Wednesday shows the week from Monday."""
    use(planted_url)
    at = run("overview", **{"period": "custom", "from": "2026-08-26", "to": "2026-09-21"})
    assert_clean(at)
    numbers = table_with(at, "week_start", "value", "lower", "upper", "anomaly")
    assert numbers["week_start"].min() == pd.Timestamp("2026-08-24", tz="UTC")
    notes = [caption.value for caption in at.caption]
    assert any("the first starts on 24 Aug, before the period does" in n for n in notes), notes
    # from a Monday, nothing to explain
    at = run("overview", **{"period": "custom", "from": "2026-08-24", "to": "2026-09-21"})
    assert not any("before the period does" in caption.value for caption in at.caption)
    assert any(
        block.value.startswith("**1 flagged week**") or "flagged weeks**" in block.value
        for block in at.markdown
    )


def test_team_retro_lists_the_sprints_unusual_weeks(planted_url: str, use: Any) -> None:
    use(planted_url)
    at = run("team_retro", team="shop", sprint_end="2026-09-21", sprint_days="14")
    assert_clean(at)
    flags = table_with(at, "week", "what", "figure", "usual")
    assert set(flags["what"]) == {"checkout", "team shop", "checkout-availability"}
    lead = flags[flags["what"] == "checkout"].iloc[0]
    assert lead["value"] == "52.0 h"
    assert f"usual {lead['usual']}, median {lead['median']})" in lead["description"]
    # the sentence only repeats the columns: in the CSV, not on the page
    shown = next(frame for frame in at.dataframe if "what" in frame.value.columns)
    config = json.loads(shown.proto.columns)
    assert {name for name, column in config.items() if column.get("hidden")} == {
        "_index",
        "description",
    }
    assert lead["description"] == anomalies.describe(
        anomalies.flagged(
            anomalies.weekly_judgements(
                open_warehouse(planted_url, migrate=False),
                _sprint(),
                Scope(team="shop"),
                Settings(),
                now=utcnow(),
            )
        )
        .query("service == 'checkout' and figure == 'lead_time_median_hours'")
        .iloc[0]
    )


def _sprint() -> Any:
    return Period(datetime(2026, 9, 7, tzinfo=UTC), datetime(2026, 9, 21, tzinfo=UTC))


def test_the_configured_rule_flags_and_explains_the_unusual_weeks(
    planted_url: str, use: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`anomalies:` in poise.yaml: the dashboard and the report judge by it and say so."""
    config = tmp_path / "poise.yaml"
    config.write_text("anomalies: {threshold: 100, history_weeks: 8, min_history_weeks: 6}\n")
    use(planted_url)
    monkeypatch.setenv("POISE_CONFIG", str(config))
    at = run("overview", **{"period": "custom", "from": "2026-08-24", "to": "2026-09-21"})
    assert_clean(at)
    heading = next(h for h in at.subheader if h.value == "Unusual weeks")
    assert heading.proto.help.startswith(
        "A week is flagged when its figure lies more than 100 robust deviations"
    )
    assert "previous 8 weeks; 6 of them must have data" in heading.proto.help
    assert any("No week of this period is flagged" in c.value for c in at.caption)

    from reports.builder import build_report

    engine = open_warehouse(planted_url, migrate=False)
    rule = AnomalyConfig(threshold=100, history_weeks=8, min_history_weeks=6)
    report = build_report(engine, "2026Q3", settings=Settings(), now=utcnow(), rule=rule)
    default = build_report(engine, "2026Q3", settings=Settings(), now=utcnow())
    engine.dispose()
    texts = [_texts(r) for r in (report, default)]
    assert any("more than 100 robust deviations" in t for t in texts[0])
    assert any(t.startswith("0 of ") and "were flagged" in t for t in texts[0])
    assert any("more than 3.5 robust deviations" in t for t in texts[1])
    assert not any(t.startswith("0 of ") and "were flagged" in t for t in texts[1])


def _texts(report: Any) -> list[str]:
    """Every paragraph's text in the report's sections, nested ones included."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if hasattr(node, "text") and isinstance(node.text, str):
            found.append(node.text)
        for name in ("sections", "blocks", "children", "subsections"):
            for child in getattr(node, name, None) or []:
                walk(child)

    walk(report)
    return found

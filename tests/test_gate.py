"""`poise gate`: the error-budget release gate.

Each service below has one 99.9 % SLO over 28 days with 1,000 events an hour (a budget of
one bad event an hour), its samples shaped so that one rule of the budget policy applies.
The data goes in through the importer; the answers come from the engine's evaluation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from metrics_org import Org
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DatabaseError

from metrics.gate import Freshness, budget_label, decide, evaluation_instant, sli_text
from metrics.gate_data import UnknownService, evaluate_gate, ledger, record_decision
from metrics.model import Period, Scope, Settings
from metrics.scorecard import scorecard
from poise.cli import main
from poise.config import BudgetPolicy, parse_config
from poise.demo import build_demo
from poise.timeutil import utcnow
from poise.warehouse import open_warehouse, schema

POISE = Path(sys.executable).with_name("poise")
NOW = datetime(2026, 8, 10, 0, 20, tzinfo=UTC)  # evaluated at 00:00, the last whole hour
WINDOW = 28 * 24

# service -> (hours, bad events an hour) segments, oldest first, ending at the evaluation hour
SHAPES: dict[str, list[tuple[int, float]]] = {
    "healthy": [(WINDOW, 0.2)],  # 80 % of the budget left, burning slowly
    "at-risk": [(WINDOW, 0.8)],  # 20 % left, and 0.8x burn spends it in a week
    "low": [(WINDOW // 2, 1.6), (WINDOW // 2, 0.0)],  # 20 % left, not burning now
    "spent": [(WINDOW, 1.6)],  # overspent by 60 %
    "paging": [(WINDOW - 1, 0.1), (1, 20.0)],  # 20x over the last hour: page
    "ticket": [(WINDOW - 24, 0.1), (24, 4.0)],  # 4x over 24 h (and 2 h): ticket
    "stale": [(WINDOW - 10, 0.2), (10, None)],  # healthy, but the last 10 hours are missing
}


def build_org(end: datetime) -> Org:
    org = Org()
    for service, segments in SHAPES.items():
        org.service(service, "shop").slo(f"{service}-availability", service, 0.999)
        hour = end - timedelta(hours=sum(hours for hours, _ in segments))
        for hours, bad in segments:
            if bad is not None:
                org.sli(f"{service}-availability", hour, hours, 1000 - bad, 1000)
            hour += timedelta(hours=hours)
    return org.service("bare", "shop")  # no SLO at all


@pytest.fixture
def shop(warehouse: Engine, tmp_path: Path) -> Engine:
    return build_org(evaluation_instant(NOW)).load(warehouse, tmp_path)


def gate(engine: Engine, service: str, change_type: str = "feature", **policy: object):
    return evaluate_gate(engine, service, change_type, BudgetPolicy(**policy), Settings(), NOW)


EXPECTED = {
    # service: (decision, exit code, the rule the reason leads with, the reason)
    "healthy": (
        "ship",
        0,
        None,
        "healthy: ship — 1 SLO within budget (lowest: 28-day availability budget, 80 % left)",
    ),
    "at-risk": (
        "warn",
        0,
        "at_risk",
        "at-risk: warn — 28-day availability budget at risk: 20 % left, spent by "
        "2026-08-17 00:00 UTC at the last 24 h burn rate",
    ),
    "low": (
        "warn",
        0,
        "low_budget",
        "low: warn — 28-day availability budget low: 20 % left (the policy warns below 25 %)",
    ),
    "spent": (
        "freeze",
        3,
        "exhausted",
        "spent: freeze — 28-day availability budget overspent by 60 % "
        "(SLI 99.84 % vs 99.9 %); fixes and rollbacks only",
    ),
    "paging": ("freeze", 3, "page_alert", None),
    "ticket": ("warn", 0, "ticket_alert", None),
    "stale": ("warn", 0, "stale", None),
    "bare": ("ship", 0, None, "bare: ship — no SLOs defined, nothing to gate on"),
}


@pytest.mark.parametrize("service", list(EXPECTED))
def test_each_state_gets_its_answer_and_exit_code(shop: Engine, service: str) -> None:
    decision_kind, code, rule, reason = EXPECTED[service]
    decision = gate(shop, service)
    assert (decision.decision, decision.exit_code) == (decision_kind, code)
    assert (decision.findings[0].rule if decision.findings else None) == rule
    if reason is not None:
        assert decision.reason == reason
    assert "\n" not in decision.reason
    assert decision.evaluated_at == datetime(2026, 8, 10, tzinfo=UTC)


def test_burn_alert_reasons_name_the_rule_that_fired(shop: Engine) -> None:
    paging = gate(shop, "paging")
    assert paging.reason.startswith(
        "paging: freeze — page-level burn alert on the 28-day availability budget: "
        "14.4× over 1h and 5m"
    )
    ticket = gate(shop, "ticket")
    assert ticket.reason.startswith(
        "ticket: warn — ticket-level burn alert on the 28-day availability budget: "
        "3× over 24h and 2h"
    )
    # 4x burn over the last day also spends the budget before the window ends
    assert [f.rule for f in ticket.findings] == ["ticket_alert", "at_risk"]
    assert "(+1 more finding)" in ticket.reason


def test_stale_data_warns_with_its_age_never_a_silent_ship(shop: Engine) -> None:
    decision = gate(shop, "stale")
    assert decision.reason.startswith(
        "stale: warn — SLI data is stale: the 28-day availability budget's newest sample "
        "ends 2026-08-09 14:00 UTC (10 h 20 min ago, limit 6 h)"
    )
    assert "last successful sync" in decision.reason  # the import that brought the samples
    assert gate(shop, "stale", max_staleness_hours=12).decision == "ship"


def test_a_spent_budget_freezes_even_on_stale_data(warehouse: Engine, tmp_path: Path) -> None:
    Org().service("old", "shop").slo("old-availability", "old", 0.999).sli(
        "old-availability", NOW - timedelta(days=30), 24 * 20, 998, 1000
    ).load(warehouse, tmp_path)
    decision = gate(warehouse, "old")
    assert decision.decision == "freeze"
    assert [f.rule for f in decision.findings] == ["exhausted", "stale"]


def test_fixes_and_rollbacks_ship_as_exceptions_during_a_freeze(shop: Engine) -> None:
    for change_type in ("fix", "rollback"):
        decision = gate(shop, "spent", change_type)
        assert (decision.decision, decision.verdict, decision.exit_code) == (
            "exception",
            "freeze",
            0,
        )
        assert decision.reason.startswith(
            f"spent: exception — a {change_type} ships during a freeze"
        )
    # outside a freeze a fix is an ordinary release
    assert gate(shop, "healthy", "fix").decision == "ship"
    assert gate(shop, "at-risk", "rollback").decision == "warn"


def test_the_policy_changes_the_answers(shop: Engine) -> None:
    assert gate(shop, "spent", freeze_when_exhausted=False).decision == "warn"
    assert gate(shop, "paging", freeze_on_page_alert=False).decision == "warn"
    assert gate(shop, "ticket", warn_on_ticket_alert=False, warn_when_at_risk=False).decision == (
        "ship"
    )
    assert gate(shop, "at-risk", warn_when_at_risk=False).findings[0].rule == "low_budget"
    assert gate(shop, "low", at_risk_remaining=0.0).decision == "ship"
    assert gate(shop, "low", at_risk_remaining=0.1).decision == "ship"
    bare = gate(shop, "bare", without_slos="warn")
    assert bare.decision == "warn"
    assert bare.reason == "bare: warn — no SLOs defined: the budget policy cannot judge it"


def test_per_service_overrides_change_only_the_keys_given() -> None:
    config = parse_config(
        {
            "budget_policy": {
                "default": {"max_staleness_hours": 12},
                "services": {"checkout": {"at_risk_remaining": 0.5}},
            }
        }
    )
    checkout = config.budget_policy.for_service("checkout")
    assert (checkout.at_risk_remaining, checkout.max_staleness_hours) == (0.5, 12)
    assert config.budget_policy.for_service("search") == BudgetPolicy(max_staleness_hours=12)


def test_an_unknown_service_is_one_clear_error(shop: Engine) -> None:
    with pytest.raises(
        UnknownService, match=r"unknown service 'helthy' \(did you mean 'healthy'\?\)"
    ):
        gate(shop, "helthy")


def test_decisions_are_recorded_in_the_ledger(shop: Engine) -> None:
    first = record_decision(shop, gate(shop, "spent"), NOW, ref="abc123", actor="ci-bot")
    second = record_decision(shop, gate(shop, "spent", "rollback"), NOW + timedelta(minutes=5))
    record_decision(shop, gate(shop, "healthy"), NOW + timedelta(minutes=6))
    assert second > first
    with shop.connect() as connection:
        rows = ledger(connection, Period(NOW - timedelta(days=1), NOW + timedelta(days=1)), Scope())
        row = connection.execute(
            select(schema.gate_decisions).where(schema.gate_decisions.c.id == first)
        ).one()
        only_low = ledger(
            connection,
            Period(NOW - timedelta(days=1), NOW + timedelta(days=1)),
            Scope(service="healthy"),
        )
    assert rows["decision"].tolist() == ["ship", "exception", "freeze"]  # newest first
    assert rows["team"].tolist() == ["shop"] * 3
    assert (row.service, row.change_type, row.decision, row.ref, row.actor) == (
        "spent",
        "feature",
        "freeze",
        "abc123",
        "ci-bot",
    )
    assert row.decided_at == NOW
    assert row.reason.startswith("spent: freeze — 28-day availability budget overspent by 60 %")
    assert row.details["verdict"] == "freeze"
    assert row.details["findings"][0]["rule"] == "exhausted"
    assert row.details["slos"][0]["budget_remaining"] == pytest.approx(-0.6)
    assert only_low["service"].tolist() == ["healthy"]


# -- pure pieces ---------------------------------------------------------------------------


def test_sli_is_shown_precisely_enough_to_be_below_target() -> None:
    assert sli_text(0.9984, 0.999) == "99.84 %"
    assert sli_text(0.99896, 0.999) == "99.896 %"  # 99.90 % would look like meeting 99.9 %
    assert sli_text(0.9995, 0.9995) == "99.950 %"
    assert sli_text(0.97, 0.99) == "97.0 %"


def test_budget_labels_say_the_window_and_what_is_measured() -> None:
    rolling = {"name": "checkout-latency", "service": "checkout", "window_days": 7}
    assert budget_label(rolling) == "7-day latency budget"
    calendar = {**rolling, "window": {"kind": "calendar", "unit": "quarter"}}
    assert budget_label(calendar, "Checkout p99 under 300 ms") == (
        "quarterly Checkout p99 under 300 ms budget"
    )


def test_a_change_type_outside_the_three_is_refused() -> None:
    with pytest.raises(ValueError, match="hotfix"):
        decide("x", "hotfix", [], {}, BudgetPolicy(), NOW)


def test_an_slo_without_samples_warns() -> None:
    slo = {"name": "x-availability", "service": "x", "target": 0.999, "window_days": 28}
    decision = decide(
        "x", "feature", [slo], {"x-availability": Freshness(None)}, BudgetPolicy(), NOW
    )
    assert decision.decision == "warn"
    assert decision.reason == "x: warn — no SLI samples for the 28-day availability budget yet"


# -- the command ---------------------------------------------------------------------------


def run_gates(
    *calls: tuple[tuple[str, ...], dict[str, str]],
) -> list[subprocess.CompletedProcess[str]]:
    """`poise gate <args>` on the real executable (exit codes and stderr as a pipeline sees
    them), the calls running side by side."""
    clean = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    started = [
        (
            args,
            subprocess.Popen(
                [str(POISE), "gate", *args],
                env={**clean, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args, env in calls
    ]
    done = []
    for args, process in started:
        out, err = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return done


CI_VARIABLES = (
    "POISE_CONFIG",
    "POISE_DATABASE_URL",
    "GITHUB_SHA",
    "GITHUB_ACTOR",
    "CI_COMMIT_SHA",
    "GITLAB_USER_LOGIN",
)


@pytest.fixture
def gate_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """`poise gate …` in this process (the same code without the start-up): (code, out, err)."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def call(*args: str) -> tuple[int, str, str]:
        code = main(["gate", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def _ledger_rows(url: str) -> list[tuple]:
    engine = open_warehouse(url)
    try:
        with engine.connect() as connection:
            g = schema.gate_decisions
            return [
                tuple(row)
                for row in connection.execute(
                    select(g.c.service, g.c.change_type, g.c.decision, g.c.ref, g.c.actor).order_by(
                        g.c.id
                    )
                )
            ]
    finally:
        engine.dispose()


def clear_of_the_hour(margin_seconds: float = 90.0) -> datetime:
    """The real now, but never within `margin_seconds` of the next hour (it waits the hour
    out): data built up to this hour must still be this hour's when the gate runs, or the
    last whole hour the gate judges is one the data does not have."""
    now = utcnow()
    left = 3600 - (now.minute * 60 + now.second + now.microsecond / 1e6)
    if left < margin_seconds:
        time.sleep(left + 1)
        now = utcnow()
    return now


@pytest.fixture
def live_url(warehouse_url: str, tmp_path: Path) -> str:
    """The shop with samples up to the current hour, so the gate runs at the real now."""
    engine = open_warehouse(warehouse_url)
    try:
        build_org(evaluation_instant(clear_of_the_hour())).load(engine, tmp_path)
    finally:
        engine.dispose()
    return warehouse_url


def test_the_command_exits_0_ship_3_freeze_1_unknown_2_usage(live_url: str) -> None:
    env = {"GITHUB_SHA": "0123abc", "GITHUB_ACTOR": "octocat"}
    shipped, frozen, unknown, usage = run_gates(
        (("--service", "healthy", "--db", live_url), env),
        (("--service", "spent", "--db", live_url), env),
        (("--service", "nope", "--db", live_url), {}),
        (("--service", "spent", "--change-type", "hotfix", "--db", live_url), {}),
    )
    assert (shipped.returncode, frozen.returncode) == (0, 3)
    assert shipped.stdout.startswith("healthy: ship — 1 SLO within budget")
    assert frozen.stdout.startswith("spent: freeze — 28-day availability budget overspent by 6")
    assert frozen.stdout.count("\n") == 1 and frozen.stderr == ""
    assert unknown.returncode == 1 and unknown.stderr.startswith("poise: unknown service 'nope'")
    assert "Traceback" not in unknown.stderr
    assert usage.returncode == 2 and "invalid choice: 'hotfix'" in usage.stderr
    # the unknown service and the usage error left no row; CI variables fill ref and actor
    assert sorted(_ledger_rows(live_url)) == [
        ("healthy", "feature", "ship", "0123abc", "octocat"),
        ("spent", "feature", "freeze", "0123abc", "octocat"),
    ]


def test_the_command_records_warnings_and_exceptions_but_not_dry_runs(
    live_url: str, gate_main
) -> None:
    warned = gate_main("--service", "at-risk", "--db", live_url)
    excepted = gate_main(
        "--service", "spent", "--change-type", "rollback", "--ref", "v1.2.4", "--db", live_url
    )
    code, out, _ = gate_main(
        "--service", "spent", "--format", "json", "--dry-run", "--db", live_url
    )
    assert warned[0] == 0 and warned[1].startswith(
        "at-risk: warn — 28-day availability budget at risk"
    )
    assert excepted[0] == 0 and excepted[1].startswith("spent: exception — a rollback")
    document = json.loads(out)
    assert code == 3
    assert (document["decision"], document["exit_code"], document["recorded_id"]) == (
        "freeze",
        3,
        None,
    )
    assert document["slos"][0]["name"] == "spent-availability"
    assert document["findings"][0]["rule"] == "exhausted"
    assert _ledger_rows(live_url) == [
        ("at-risk", "feature", "warn", None, None),
        ("spent", "rollback", "exception", "v1.2.4", None),
    ]


def test_the_command_reads_per_service_policy_from_the_config(
    sqlite_url: str, tmp_path: Path, gate_main
) -> None:
    engine = open_warehouse(sqlite_url)
    try:
        build_org(evaluation_instant(clear_of_the_hour())).load(engine, tmp_path)
    finally:
        engine.dispose()
    config = tmp_path / "poise.yaml"
    config.write_text(
        "budget_policy:\n  services:\n    spent:\n      freeze_when_exhausted: false\n",
        encoding="utf-8",
    )
    relaxed = gate_main("--service", "spent", "--db", sqlite_url, "--config", str(config))
    strict = gate_main("--service", "paging", "--db", sqlite_url, "--config", str(config))
    assert relaxed[0] == 0 and relaxed[1].startswith("spent: warn — ")
    assert strict[0] == 3
    config.write_text("budget_policy:\n  default:\n    freeze_on_page: true\n", encoding="utf-8")
    typo = gate_main("--service", "spent", "--db", sqlite_url, "--config", str(config))
    assert typo[0] == 1
    assert typo[2].strip() == (
        f"poise: {config}: budget_policy.default.freeze_on_page: unknown key "
        "(did you mean 'freeze_on_page_alert'?)"
    )


def test_replaying_a_past_instant_is_not_recorded(
    shop: Engine, warehouse_url: str, gate_main
) -> None:
    code, out, _ = gate_main(
        "--service", "spent", "--db", warehouse_url, "--at", "2026-08-10T00:20:00Z"
    )
    assert code == 3 and out.startswith("spent: freeze — ")
    with shop.connect() as connection:
        count = connection.execute(select(func.count()).select_from(schema.gate_decisions)).scalar()
    assert count == 0


# -- the demo organisation -----------------------------------------------------------------

DEMO_UNTIL = datetime(2026, 6, 1, tzinfo=UTC)


def test_on_the_demo_a_growth_service_freezes_while_its_budget_is_spent_and_not_after(
    warehouse: Engine,
) -> None:
    """Seed 3 over 60 days: `experiments` (growth) spends its availability budget in
    May and recovers; `storefront-web` (elite) stays healthy. The gate agrees with the
    engine's freeze intervals at every instant checked."""
    build_demo(warehouse, seed=3, until=DEMO_UNTIL, days=60)
    period = Period(DEMO_UNTIL - timedelta(days=32), DEMO_UNTIL)
    policy = scorecard(warehouse, period, Scope(team="growth"), now=DEMO_UNTIL)["budget_policy"]
    freezes = {item["service"]: item["intervals"] for item in policy["frozen_services"]}
    ended = [
        (service, interval)
        for service, intervals in freezes.items()
        for interval in intervals
        if interval["to"] < "2026-05-30" and interval["to"] > interval["from"] > "2026-05-02"
    ]
    assert ended, f"the demo should show a growth freeze that ends: {freezes}"
    service, interval = ended[0]
    start = datetime.fromisoformat(interval["from"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(interval["to"].replace("Z", "+00:00"))

    def answer(name: str, moment: datetime, change_type: str = "feature"):
        return evaluate_gate(warehouse, name, change_type, BudgetPolicy(), Settings(), moment)

    during = start + (end - start) / 2
    during = evaluation_instant(during)
    assert answer(service, during).decision == "freeze"
    assert answer(service, during).exit_code == 3
    assert answer(service, during, "fix").decision == "exception"
    after = answer(service, end + timedelta(hours=12))
    assert after.decision in ("ship", "warn") and after.exit_code == 0
    assert not any(f.rule == "exhausted" for f in after.findings)
    for moment in (during, end + timedelta(hours=12)):
        elite = answer("storefront-web", moment)
        assert (elite.decision, elite.exit_code) == ("ship", 0), elite.reason

    # every growth service, day by day: frozen by a spent budget exactly inside a freeze
    for name in ("recommendations", "notifications", "experiments"):
        for day in range(2, 31):
            moment = DEMO_UNTIL - timedelta(days=31) + timedelta(days=day, hours=7)
            inside = any(
                item["from"] <= f"{moment:%Y-%m-%dT%H:%M:%SZ}" < item["to"]
                for item in freezes.get(name, [])
            )
            exhausted = any(f.rule == "exhausted" for f in answer(name, moment).findings)
            assert exhausted == inside, (name, moment)


def test_the_gate_reads_one_snapshot_and_again_after_a_malformed_moment(
    shop: Engine,
    malformed: DatabaseError,
    monkeypatch: pytest.MonkeyPatch,
    snapshots_taken: Callable[[Any], list[Any]],
) -> None:
    """A pipeline's gate runs while a sync commits: its SLOs, sums and freshness come from
    one state, and on SQLite a read found malformed for a moment (the WAL race of SQLite
    before 3.51.3) is read again rather than failing the pipeline."""
    from metrics import gate_data
    from poise.warehouse import engine as engine_module

    expected = gate(shop, "spent")
    real_slos = gate_data._slos
    snapshots = snapshots_taken(engine_module)
    assert gate(shop, "spent") == expected and len(snapshots) == 1
    if shop.dialect.name != "sqlite":
        return
    failures = [malformed]

    def flaky_slos(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_slos(*args, **kwargs)

    monkeypatch.setattr(gate_data, "_slos", flaky_slos)
    assert gate(shop, "spent") == expected and not failures and len(snapshots) == 3

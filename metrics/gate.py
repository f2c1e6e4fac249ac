"""The error-budget release gate: may a deployment of a service ship now?

A pure function over the engine's reliability evaluation (`reliability.evaluate`, the SLOs
evaluated at the last whole hour) and how fresh each SLO's samples are. The rules are the
budget policy (`poise.config.BudgetPolicy`, docs/guardrails.md):

- `freeze`: an SLO's budget is spent (budget remaining <= 0: the SRE Workbook's example
  policy halts releases "until the service is back within its SLO"), or a page-level
  multiwindow burn-rate alert fires;
- `warn`: a ticket-level alert fires, a budget is `at_risk` or below `at_risk_remaining`,
  an SLO has no events in its window, or the SLI data is stale (its newest sample ended
  more than `max_staleness_hours` ago): a stale warehouse never gives a silent `ship`;
- `ship`: none of these.

Fixes and rollbacks ship even during a freeze; such a decision is an `exception`. Burn
alerts describe the last hours, so they are not judged on stale samples; a spent budget
still freezes (it recovers over weeks, not hours).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from metrics.stats import to_jsonable
from metrics.wording import duration
from poise.config import BudgetPolicy
from poise.timeutil import ensure_utc

CHANGE_TYPES = ("feature", "fix", "rollback")
EXEMPT_CHANGES = frozenset({"fix", "rollback"})
DECISIONS = ("ship", "warn", "freeze", "exception")
EXIT_CODES = {"ship": 0, "warn": 0, "exception": 0, "freeze": 3}
LEVELS = {"ship": 0, "warn": 1, "freeze": 2}
# Which finding a one-line reason leads with, among those of the same level.
RULE_ORDER = (
    "exhausted",
    "page_alert",
    "stale",
    "no_samples",
    "ticket_alert",
    "at_risk",
    "low_budget",
    "no_events",
    "no_slos",
)
SAMPLE_LENGTH = timedelta(hours=1)  # SLI samples are hourly buckets keyed by their start


def evaluation_instant(now: datetime) -> datetime:
    """The last whole hour: the current hour's bucket is still being filled."""
    return ensure_utc(now).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Freshness:
    """How current one SLO's samples are, and what the last sync of them said."""

    newest: datetime | None  # start of the newest sample
    last_sync: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def data_end(self) -> datetime | None:
        return None if self.newest is None else self.newest + SAMPLE_LENGTH

    def age(self, now: datetime) -> timedelta | None:
        end = self.data_end
        return None if end is None else max(now - end, timedelta(0))


@dataclass(frozen=True)
class Finding:
    level: str  # warn | freeze
    rule: str  # one of RULE_ORDER
    slo: str | None
    text: str


@dataclass
class Decision:
    service: str
    change_type: str
    decision: str  # ship | warn | freeze | exception
    verdict: str  # what the policy says for a feature release: ship | warn | freeze
    reason: str
    evaluated_at: datetime
    findings: list[Finding] = field(default_factory=list)
    slos: list[dict[str, Any]] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def details(self) -> dict[str, Any]:
        """What the ledger keeps beside the decision and its reason."""
        return to_jsonable(
            {
                "verdict": self.verdict,
                "evaluated_at": self.evaluated_at,
                "findings": [finding.__dict__ for finding in self.findings],
                "slos": self.slos,
                "policy": self.policy,
            }
        )

    def as_json(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "service": self.service,
                "change_type": self.change_type,
                "decision": self.decision,
                "exit_code": self.exit_code,
                "reason": self.reason,
                **self.details(),
            }
        )


# -- wording ------------------------------------------------------------------------------


def target_text(target: float) -> str:
    return f"{target * 100:.10g} %"


def sli_text(sli: float, target: float) -> str:
    """The SLI with one decimal more than its target, and more where rounding would hide
    that it is below target (99.896 % must not read as 99.90 % against 99.9 %)."""
    shown = f"{target * 100:.10g}"
    digits = len(shown.split(".")[1]) + 1 if "." in shown else 1
    while digits < 6 and sli < target and round(sli * 100, digits) >= target * 100:
        digits += 1
    return f"{sli * 100:.{digits}f} %"


def share_text(value: float) -> str:
    return f"{abs(value) * 100:.0f} %"


def budget_label(slo: dict[str, Any], display_name: str | None = None) -> str:
    """`28-day availability budget`: the window and what the SLO measures."""
    kind = display_name or slo["name"]
    prefix = f"{slo['service']}-"
    if not display_name and kind.startswith(prefix) and len(kind) > len(prefix):
        kind = kind[len(prefix) :]
    window = slo.get("window") or {}
    unit = window.get("unit") if window.get("kind") == "calendar" else None
    span = {"month": "monthly", "quarter": "quarterly"}.get(unit or "", f"{slo['window_days']}-day")
    return f"{span} {kind} budget"


def _moment(value: datetime) -> str:
    """To the nearest minute (a forecast is not more precise than that)."""
    return f"{ensure_utc(value) + timedelta(seconds=30):%Y-%m-%d %H:%M} UTC"


# -- the rules ----------------------------------------------------------------------------


def _stale_finding(
    slo: dict[str, Any], label: str, fresh: Freshness, policy: BudgetPolicy, now: datetime
) -> Finding | None:
    limit = timedelta(hours=policy.max_staleness_hours)
    if fresh.newest is None:
        return Finding("warn", "no_samples", slo["name"], f"no SLI samples for the {label} yet")
    age = fresh.age(now)
    assert age is not None and fresh.data_end is not None
    if age <= limit:
        return None
    text = (
        f"SLI data is stale: the {label}'s newest sample ends {_moment(fresh.data_end)} "
        f"({duration(age)} ago, limit {duration(limit)})"
    )
    if (
        fresh.last_error
        and fresh.last_error_at
        and (fresh.last_sync is None or fresh.last_error_at > fresh.last_sync)
    ):
        text += f"; last sync failed {_moment(fresh.last_error_at)}: {fresh.last_error[:120]}"
    elif fresh.last_sync is not None:
        text += f"; last successful sync {_moment(fresh.last_sync)}"
    return Finding("warn", "stale", slo["name"], text)


def _alert_finding(slo: dict[str, Any], label: str, policy: BudgetPolicy) -> Finding | None:
    alert = slo.get("alert") or {}
    state = alert.get("state")
    if state not in ("page", "ticket"):
        return None
    rules = [rule.split(": ", 1)[-1] for rule in alert.get("fired", []) if rule.startswith(state)]
    text = f"{state}-level burn alert on the {label}: {'; '.join(rules)}"
    if state == "page":
        return Finding(
            "freeze" if policy.freeze_on_page_alert else "warn", "page_alert", slo["name"], text
        )
    if policy.warn_on_ticket_alert:
        return Finding("warn", "ticket_alert", slo["name"], text)
    return None


def slo_findings(
    slo: dict[str, Any],
    fresh: Freshness,
    policy: BudgetPolicy,
    now: datetime,
    display_name: str | None = None,
) -> list[Finding]:
    """What the policy says about one evaluated SLO."""
    label = budget_label(slo, display_name)
    found: list[Finding] = []
    stale = _stale_finding(slo, label, fresh, policy, now)
    if stale is not None:
        found.append(stale)
    remaining, sli, target = slo.get("budget_remaining"), slo.get("sli"), float(slo["target"])
    if remaining is None or sli is None:
        if stale is None:
            found.append(
                Finding(
                    "warn",
                    "no_events",
                    slo["name"],
                    f"no events in the {label}'s window: budget unknown",
                )
            )
        return found
    if remaining <= 0:
        spent = "spent" if remaining == 0 else f"overspent by {share_text(remaining)}"
        text = f"{label} {spent} (SLI {sli_text(sli, target)} vs {target_text(target)})"
        found.append(
            Finding(
                "freeze" if policy.freeze_when_exhausted else "warn", "exhausted", slo["name"], text
            )
        )
        return found
    if stale is None:
        alert = _alert_finding(slo, label, policy)
        if alert is not None:
            found.append(alert)
    if policy.warn_when_at_risk and slo.get("status") == "at_risk":
        when = slo.get("forecast_exhausted_at")
        text = f"{label} at risk: {share_text(remaining)} left"
        if isinstance(when, datetime):
            text += f", spent by {_moment(when)} at the last 24 h burn rate"
        found.append(Finding("warn", "at_risk", slo["name"], text))
    elif remaining < policy.at_risk_remaining:
        found.append(
            Finding(
                "warn",
                "low_budget",
                slo["name"],
                f"{label} low: {share_text(remaining)} left "
                f"(the policy warns below {share_text(policy.at_risk_remaining)})",
            )
        )
    return found


def _ship_text(slos: list[dict[str, Any]], labels: dict[str, str]) -> str:
    judged = [slo for slo in slos if slo.get("budget_remaining") is not None]
    lowest = min(judged, key=lambda slo: (slo["budget_remaining"], slo["name"]), default=None)
    count = f"{len(slos)} SLO{'s' if len(slos) != 1 else ''} within budget"
    if lowest is None:
        return count
    return (
        f"{count} (lowest: {labels[lowest['name']]}, {share_text(lowest['budget_remaining'])} left)"
    )


def decide(
    service: str,
    change_type: str,
    slos: list[dict[str, Any]],
    freshness: dict[str, Freshness],
    policy: BudgetPolicy,
    now: datetime,
    display_names: dict[str, str | None] | None = None,
) -> Decision:
    """The gate's answer for one service from its SLOs evaluated at `evaluation_instant(now)`."""
    if change_type not in CHANGE_TYPES:
        raise ValueError(f"change type {change_type!r} is not one of {CHANGE_TYPES}")
    now = ensure_utc(now)
    names = display_names or {}
    labels = {slo["name"]: budget_label(slo, names.get(slo["name"])) for slo in slos}
    findings: list[Finding] = []
    for slo in slos:
        fresh = freshness.get(slo["name"], Freshness(None))
        findings += slo_findings(slo, fresh, policy, now, names.get(slo["name"]))
    if not slos and policy.without_slos == "warn":
        findings.append(
            Finding("warn", "no_slos", None, "no SLOs defined: the budget policy cannot judge it")
        )
    findings.sort(key=lambda f: (-LEVELS[f.level], RULE_ORDER.index(f.rule), f.slo or ""))
    verdict = findings[0].level if findings else "ship"
    decision = "exception" if verdict == "freeze" and change_type in EXEMPT_CHANGES else verdict
    if findings:
        lead = findings[0].text
        more = len(findings) - 1
        lead += f" (+{more} more finding{'s' if more > 1 else ''})" if more else ""
    else:
        lead = _ship_text(slos, labels) if slos else "no SLOs defined, nothing to gate on"
    if decision == "freeze":
        reason = f"{service}: freeze — {lead}; fixes and rollbacks only"
    elif decision == "exception":
        reason = f"{service}: exception — a {change_type} ships during a freeze: {lead}"
    else:
        reason = f"{service}: {decision} — {lead}"
    fresh_of = {slo["name"]: freshness.get(slo["name"], Freshness(None)) for slo in slos}
    return Decision(
        service=service,
        change_type=change_type,
        decision=decision,
        verdict=verdict,
        reason=reason,
        evaluated_at=evaluation_instant(now),
        findings=findings,
        slos=[_slo_summary(slo, labels[slo["name"]], fresh_of[slo["name"]], now) for slo in slos],
        policy=policy.model_dump(),
    )


def _slo_summary(
    slo: dict[str, Any], label: str, fresh: Freshness, now: datetime
) -> dict[str, Any]:
    alert = slo.get("alert") or {}
    return {
        "name": slo["name"],
        "label": label,
        "target": slo["target"],
        "window_days": slo["window_days"],
        "sli": slo.get("sli"),
        "budget_remaining": slo.get("budget_remaining"),
        "status": slo.get("status"),
        "alert": alert.get("state"),
        "alerts_fired": alert.get("fired", []),
        "burn_rate": slo.get("burn_rate"),
        "forecast_exhausted_at": slo.get("forecast_exhausted_at"),
        "newest_sample": fresh.newest,
        "data_age_hours": None if fresh.age(now) is None else fresh.age(now).total_seconds() / 3600,
        "last_sync": fresh.last_sync,
    }

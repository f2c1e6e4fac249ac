"""Probes of SLO definitions and `poise gate` with odd-but-legitimate and with wrong input.

Each test here pins a behaviour that was wrong before: an SLO file read differently from
what it says (a key given twice, a start time with an offset, a Sloth query in both
spellings, `{{ .window }}` spaced as Go templates allow), an inline SLO accepted with a
value that means something else (`window_days: yes`, `calendar_unit` on a rolling
window), and a replayed gate (`--at`) judging freshness by samples stored after it.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from metrics_org import Org
from sqlalchemy import Engine

from collectors.openslo import parse_openslo
from collectors.prometheus import Mode, SliQueries
from collectors.slo_files import declared_slos
from collectors.sloth import parse_sloth
from poise.cli import main
from poise.config import SloConfig, load_config, parse_config
from poise.errors import ConfigError

SERVICES = {
    "teams": [{"name": "shop"}],
    "services": [{"name": "checkout", "team": "shop"}, {"name": "search", "team": "shop"}],
}
RATIO = """\
  indicator:
    metadata: {name: checkout-requests}
    spec:
      ratioMetric:
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(ok_total[5m]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(all_total[5m]))'}}}
"""


def openslo(spec: str = "", *, window: str = "[{duration: 28d, isRolling: true}]") -> str:
    return (
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: checkout-availability}\nspec:\n"
        f"  service: checkout\n  budgetingMethod: Occurrences\n  timeWindow: {window}\n"
        f"  objectives: [{{target: 0.999}}]\n{spec}{RATIO}"
    )


def read_files(tmp_path: Path, files: dict[str, str], **extra: Any) -> list[SloConfig]:
    """The SLOs poise.yaml declares when it lists `files` (written to tmp_path)."""
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    data = {**SERVICES, "slos": [{"file": name} for name in files], **extra}
    return declared_slos(parse_config(data, base_dir=tmp_path)).configs


# -- SLO files -----------------------------------------------------------------------------


def test_a_key_given_twice_in_an_slo_file_is_refused_not_the_last_one_kept(
    tmp_path: Path,
) -> None:
    # a second `service:` pasted below the indicator moved the SLO to search silently
    with pytest.raises(ConfigError) as caught:
        read_files(tmp_path, {"checkout.yaml": openslo() + "  service: search\n"})
    assert str(caught.value) == "checkout.yaml:15: not valid YAML: key 'service' appears twice"
    sloth = (
        "version: prometheus/v1\nservice: checkout\nslos:\n  - name: requests\n"
        "    objective: 99.9\n    objective: 99\n"
        "    sli: {events: {error_query: e, total_query: t}}\n"
    )
    with pytest.raises(ConfigError, match=r"^sloth\.yaml:6: .*'objective' appears twice$"):
        read_files(tmp_path, {"sloth.yaml": sloth})


def test_yaml_merge_keys_work_in_slo_files_and_in_poise_yaml(tmp_path: Path) -> None:
    """`<<: *base` is the usual way to share most of two definitions; its keys are
    defaults the mapping's own keys override, not keys given twice."""
    listed = """\
        - &base
          apiVersion: openslo/v1
          kind: SLI
          metadata: {name: requests}
          spec:
            ratioMetric:
              good: {metricSource: {type: Prometheus, spec: {query: ok}}}
              total: {metricSource: {type: Prometheus, spec: {query: all}}}
        - <<: *base
          metadata: {name: requests-too}
        - apiVersion: openslo/v1
          kind: SLO
          metadata: {name: checkout-availability}
          spec: &slo
            service: checkout
            budgetingMethod: Occurrences
            objectives: [{target: 0.999}]
            timeWindow: [{duration: 4w, isRolling: true}]
            indicatorRef: requests
        - apiVersion: openslo/v1
          kind: SLO
          metadata: {name: search-availability}
          spec:
            <<: *slo
            service: search
            indicatorRef: requests-too
        """
    slos = read_files(tmp_path, {"slos.yaml": listed})
    assert [(s.name, s.service, s.window_days, s.good) for s in slos] == [
        ("checkout-availability", "checkout", 28, "ok"),
        ("search-availability", "search", 28, "ok"),
    ]
    config = tmp_path / "poise.yaml"
    config.write_text(
        "teams: [{name: shop}]\nservices:\n  - &svc {name: checkout, team: shop}\n"
        "  - <<: *svc\n    name: search\n",
        encoding="utf-8",
    )
    assert [(s.name, s.team) for s in load_config(str(config)).services] == [
        ("checkout", "shop"),
        ("search", "shop"),
    ]


@pytest.mark.parametrize(
    ("start", "accepted"),
    [
        ("'2026-01-01T00:00:00Z'", True),  # quoted ISO 8601 with Z (refused before)
        ("2026-01-01T01:00:00+01:00", True),  # midnight UTC
        ("2026-01-01T00:00:00+02:00", False),  # 22:00 UTC on 31 December (accepted before)
    ],
)
def test_a_calendar_start_time_with_an_offset_is_that_instant(
    tmp_path: Path, start: str, accepted: bool
) -> None:
    window = (
        f"[{{duration: 1M, isRolling: false, calendar: {{startTime: {start}, timeZone: UTC}}}}]"
    )
    text = openslo(window=window)
    if accepted:
        (slo,) = read_files(tmp_path, {"checkout.yaml": text})
        assert (slo.window, slo.calendar_unit) == ("calendar", "month")
        return
    with pytest.raises(ConfigError) as caught:
        read_files(tmp_path, {"checkout.yaml": text})
    assert str(caught.value) == (
        "checkout.yaml: SLO checkout-availability: spec.timeWindow[0].calendar.startTime: "
        "2026-01-01T00:00:00+02:00 (2025-12-31 22:00 UTC) is not midnight on the first of a "
        "month, where Poise's calendar months start"
    )


def test_an_indicator_ref_that_is_not_a_name_says_so(tmp_path: Path) -> None:
    text = openslo().replace(RATIO, "  indicatorRef: [checkout-requests]\n")
    with pytest.raises(ConfigError) as caught:
        read_files(tmp_path, {"checkout.yaml": text})
    assert str(caught.value) == (
        "checkout.yaml: SLO checkout-availability: spec.indicatorRef: must be text, not list"
    )


def sloth(events: str) -> str:
    """A Sloth spec whose one SLO, checkout-requests, counts `events` (YAML lines)."""
    head = "version: prometheus/v1\nservice: checkout\nslos:\n  - name: requests\n"
    return (
        head + "    objective: 99.9\n    sli:\n      events:\n" + textwrap.indent(events, " " * 8)
    )


def test_a_sloth_query_in_both_spellings_is_refused_not_one_dropped(tmp_path: Path) -> None:
    # errorQuery / totalQuery is the Kubernetes resource's spelling; given both, one was dropped
    spec = sloth(
        "errorQuery: sum(rate(errors_total[{{.window}}]))\n"
        "totalQuery: sum(rate(requests_total[{{.window}}]))\n"
        "total_query: sum(rate(old_requests_total[{{.window}}]))\n"
    )
    with pytest.raises(ConfigError) as caught:
        read_files(tmp_path, {"sloth.yaml": spec})
    assert str(caught.value) == (
        "sloth.yaml: SLO checkout-requests: slos[0].sli.events.totalQuery: give "
        "total_query or totalQuery (the Kubernetes spelling), not both"
    )


def test_sloths_window_placeholder_spaced_as_go_templates_allow(tmp_path: Path) -> None:
    """Sloth renders its queries with Go's text/template, where `{{ .window }}` and
    `{{- .window -}}` are `{{.window}}`; Poise sent them to Prometheus as written."""
    spec = sloth(
        "error_query: sum(rate(errors_total[{{ .window }}]))\n"
        "total_query: sum(increase(requests_total[{{- .window -}}]))\n"
    )
    (slo,) = read_files(tmp_path, {"sloth.yaml": spec})
    queries = SliQueries.of(slo)
    assert queries is not None
    assert (queries.numerator.mode, queries.total.mode) == (Mode.WINDOW, Mode.WINDOW)
    assert queries.numerator.sent == "sum(rate(errors_total[1h]))"
    assert queries.total.sent == "sum(increase(requests_total[1h]))"
    assert (queries.numerator.per_second, queries.total.per_second) == (True, False)
    inline = {"name": "x", "service": "checkout", "target": 0.99, "counter": True}
    with pytest.raises(ConfigError, match=r"slos\[0\]\.counter: .*cannot use"):
        parse_config({**SERVICES, "slos": [{**inline, "bad": "e[{{ .window }}]", "total": "t"}]})


# -- inline SLOs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"target": 99.9},
            "slos[0].target: 99.9 looks like a percentage: target is a fraction, "
            "0 < target < 1 (give 0.999)",
        ),
        # YAML `yes` is a bool, which pydantic took as 1: a one-day window
        ({"target": 0.999, "window_days": True}, "slos[0].window_days: must be a number, not true"),
        (
            {"target": 0.999, "calendar_unit": "quarter"},
            "slos[0].calendar_unit: only with window: calendar (this SLO's window is rolling, "
            "28 days)",
        ),
    ],
)
def test_inline_slo_values_that_mean_something_else_are_refused(
    keys: dict[str, Any], message: str
) -> None:
    slo = {"name": "checkout-availability", "service": "checkout", **keys}
    with pytest.raises(ConfigError) as caught:
        parse_config({**SERVICES, "slos": [slo]})
    assert str(caught.value) == f"poise.yaml: {message}"


# -- the gate replayed ---------------------------------------------------------------------

T = datetime(2026, 8, 10, tzinfo=UTC)
AT = T - timedelta(days=10)


@pytest.fixture
def replayed(warehouse: Engine, tmp_path: Path) -> Engine:
    """`gap`: samples for 10 days up to T − 20 d, then none until T − 5 d (a gap filled
    since); `late`: samples only from T − 5 d."""
    org = Org().service("gap", "shop").service("late", "shop")
    org.slo("gap-availability", "gap", 0.999).slo("late-availability", "late", 0.999)
    org.sli("gap-availability", T - timedelta(days=30), 24 * 10, 1000, 1000)
    org.sli("gap-availability", T - timedelta(days=5), 24 * 5, 1000, 1000)
    org.sli("late-availability", T - timedelta(days=5), 24 * 5, 1000, 1000)
    return org.load(warehouse, tmp_path)


def gate_json(url: str, service: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`poise gate --at AT` for `service`, as text and as JSON (which must agree)."""
    args = ["gate", "--service", service, "--db", url, "--at", f"{AT:%Y-%m-%dT%H:%M:%SZ}"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert main([*args, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["reason"] == text.strip()
    return document


def test_a_replayed_gate_judges_freshness_by_the_samples_there_were_then(
    replayed: Engine, warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gap = gate_json(warehouse_url, "gap", capsys)
    assert gap["reason"] == (
        "gap: warn — SLI data is stale: the 28-day availability budget's newest sample ends "
        "2026-07-21 00:00 UTC (10 d ago, limit 6 h)"
    )
    (slo,) = gap["slos"]
    assert slo["newest_sample"] == "2026-07-20T23:00:00Z"
    assert slo["data_age_hours"] == 240
    assert slo["last_sync"] is None  # the import that brought the samples came later
    late = gate_json(warehouse_url, "late", capsys)
    assert late["findings"][0]["rule"] == "no_samples"
    assert late["reason"] == "late: warn — no SLI samples for the 28-day availability budget yet"


SLOTH_FIXTURES = Path(__file__).parent / "fixtures" / "sloth"
OPENSLO_FIXTURES = Path(__file__).parent / "fixtures" / "openslo"


def test_a_percentage_under_one_is_read_as_written_and_said() -> None:
    """`objective: 0.999` (a fraction where Sloth reads a percentage) is a target of
    0.999 %: valid, so kept, but a note says what it means and what 99.9 % would be."""
    sloth = (SLOTH_FIXTURES / "getting-started.yaml").read_text(encoding="utf-8")
    parsed = parse_sloth(sloth.replace("objective: 99.9", "objective: 0.999"), "s.yaml")
    assert parsed.configs[0].target == pytest.approx(0.00999)
    said = (
        "s.yaml: SLO checkout-requests-availability: slos[0].objective: 0.999 is a "
        "percentage, so the target is 0.999 % (0.00999); for 99.9 % write 99.9"
    )
    assert said in parsed.notes
    assert not [n for n in parse_sloth(sloth, "s.yaml").notes if "is a percentage" in n]
    openslo = (OPENSLO_FIXTURES / "ratio-inline.yaml").read_text(encoding="utf-8")
    parsed = parse_openslo(openslo.replace("target: 0.995", "targetPercent: 0.995"), "o.yaml")
    assert any("spec.objectives[0].targetPercent: 0.995 is a percentage" in n for n in parsed.notes)

"""OpenSLO v1 files become Poise SLOs; what Poise cannot honour is refused in one line.

The fixtures under tests/fixtures/openslo are the OpenSLO spec's own examples (README,
examples/, the SDK's examples/*.yaml) re-typed with our names and queries.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from collectors.openslo import load_openslo, parse_openslo
from collectors.slo_files import declared_slos
from poise.catalog import apply_config
from poise.cli import main
from poise.config import SloConfig, parse_config
from poise.errors import ConfigError
from poise.warehouse import schema

FIXTURES = Path(__file__).parent / "fixtures" / "openslo"


def parse_fixture(name: str):
    return parse_openslo((FIXTURES / name).read_text(encoding="utf-8"), name)


def test_inline_ratio_indicator_with_counters() -> None:
    parsed = parse_fixture("ratio-inline.yaml")
    assert parsed.configs == [
        SloConfig(
            name="checkout-availability",
            service="checkout",
            display_name="Checkout availability",
            description="99.5% of checkout requests succeed over 28 days",
            target=0.995,
            window_days=28,
            window="rolling",
            good='shop_http_requests_total{service="checkout",code!~"5.."}',
            total='shop_http_requests_total{service="checkout"}',
            counter=True,
            datasource="prometheus",
        )
    ]
    assert parsed.notes == []
    assert parsed.slos[0].source == "openslo"
    assert parsed.slos[0].source_id == "ratio-inline.yaml#checkout-availability"


def test_sli_reference_datasource_reference_and_calendar_month() -> None:
    parsed = parse_fixture("sli-and-datasource.yaml")
    assert parsed.configs == [
        SloConfig(
            name="search-availability",
            service="search",
            display_name="Search availability",
            target=0.999,
            window_days=30,
            window="calendar",
            calendar_unit="month",
            bad='sum(rate(search_requests_total{code=~"5.."}[5m]))',
            total="sum(rate(search_requests_total[5m]))",
            counter=False,
            datasource="prometheus",
        )
    ]
    assert parsed.notes == [
        "sli-and-datasource.yaml: AlertPolicy search-burn: ignored (alerting is not Poise's job)",
        "sli-and-datasource.yaml: DataSource shop-prometheus: connectionDetails ignored "
        "(Poise reaches Prometheus through sources.prometheus in poise.yaml)",
    ]


def test_list_of_objects_and_one_slo_per_objective() -> None:
    parsed = parse_fixture("list-form.yaml")
    assert [(s.name, s.display_name, s.target, s.window_days) for s in parsed.configs] == [
        ("storefront-pages-internal-objective", "Storefront pages: Internal objective", 0.995, 7),
        ("storefront-pages-contract-sla", "Storefront pages: Contract (SLA)", 0.99, 7),
    ]
    assert {s.good for s in parsed.configs} == {'storefront_pages_total{outcome="ok"}'}


def test_quarter_calendar_on_a_thanos_source_keeps_its_queries() -> None:
    (slo,) = parse_fixture("quarter-calendar.yaml").configs
    assert (slo.window, slo.calendar_unit, slo.window_days) == ("calendar", "quarter", 90)
    assert slo.datasource == "prometheus"
    assert slo.good == 'sum(rate(payments_duration_seconds_bucket{le="0.3"}[5m]))'
    assert slo.counter is False


def test_a_source_poise_does_not_query_keeps_the_definition_only() -> None:
    parsed = parse_fixture("datadog-source.yaml")
    (slo,) = parsed.configs
    assert (slo.name, slo.target, slo.window_days, slo.datasource) == (
        "basket-errors",
        0.98,
        28,
        "datadog",
    )
    assert (slo.good, slo.bad, slo.total) == (None, None, None)
    assert (
        "datadog-source.yaml: SLO basket-errors: its SLI comes from Datadog, which Poise does "
        "not query; import its SLI samples (docs/import.md)"
    ) in parsed.notes


REJECTED = {
    "timeslices.yaml": "SLO shop-uptime: spec.budgetingMethod: Timeslices is not supported "
    "(Poise budgets by occurrences)",
    "ratio-timeslices.yaml": "SLO home-page: spec.budgetingMethod: RatioTimeslices is not "
    "supported (Poise budgets by occurrences)",
    "threshold.yaml": "SLO search-time: spec.indicator.spec.thresholdMetric: is not supported: "
    "Poise counts good and total events (use ratioMetric)",
    "raw-ratio.yaml": "SLO wifi-satisfaction: spec.indicator.spec.ratioMetric.raw: a "
    "precomputed ratio gives no event counts, which occurrence budgeting needs: give good "
    "(or bad) and total",
    "good-and-bad.yaml": "SLO both-numerators: spec.indicator.spec.ratioMetric: give good or "
    "bad, not both",
    "sub-day-window.yaml": "SLO half-day: spec.timeWindow[0].duration: 12h is shorter than a "
    "day: rolling windows are whole days",
    "fractional-days.yaml": "SLO day-and-a-half: spec.timeWindow[0].duration: 36h is not a "
    "whole number of days",
    "calendar-week.yaml": "SLO weekly-calendar: spec.timeWindow[0].duration: a calendar window "
    "of 1w is not supported: use 1M (a month) or 1Q (a quarter)",
    "calendar-time-zone.yaml": "SLO new-york-month: spec.timeWindow[0].calendar.timeZone: "
    "America/New_York is not supported: Poise aligns calendar windows to UTC months (use UTC, "
    "or a rolling window)",
    "calendar-start.yaml": "SLO mid-month: spec.timeWindow[0].calendar.startTime: 2024-01-15 "
    "12:00:00 is not midnight on the first of a month, where Poise's calendar months start",
    "target-and-percent.yaml": "SLO both-targets: spec.objectives[0]: give target or "
    "targetPercent, not both",
    "unnamed-objectives.yaml": "SLO unnamed-objectives: spec.objectives[0].displayName: "
    "required when an SLO has several objectives (Poise makes one SLO per objective, named "
    "<slo>-<objective>)",
    "two-windows.yaml": "SLO two-windows: spec.timeWindow: must list exactly one window",
    "missing-datasource.yaml": "SLO missing-source: spec.indicator.spec.ratioMetric.good."
    "metricSource.metricSourceRef: no DataSource named 'nowhere' in the OpenSLO files listed "
    "under slos:",
    "missing-sli.yaml": "SLO orphan: spec.indicatorRef: no SLI named 'no-such-sli' in the "
    "OpenSLO files listed under slos:",
    "v1alpha.yaml": "SLO home-page: apiVersion: openslo/v1alpha is not supported: Poise reads "
    "openslo/v1",
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_each_rejection_names_file_document_and_field(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fixture(f"bad/{name}")
    assert str(caught.value) == f"bad/{name}: {REJECTED[name]}"


def test_every_bad_fixture_has_an_expected_message() -> None:
    files = {path.name for path in (FIXTURES / "bad").glob("*.yaml")}
    assert files - {"not-yaml.yaml"} == set(REJECTED)


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"^bad/not-yaml\.yaml:7: not valid YAML: "):
        parse_fixture("bad/not-yaml.yaml")


@pytest.mark.parametrize(
    ("duration", "days"),
    [("7d", 7), ("4w", 28), ("1M", 30), ("1Q", 90), ("1Y", 365), ("48h", 2), ("2880m", 2)],
)
def test_rolling_window_units(duration: str, days: int) -> None:
    text = (FIXTURES / "ratio-inline.yaml").read_text(encoding="utf-8")
    (slo,) = parse_openslo(text.replace("duration: 28d", f"duration: {duration}"), "x.yaml").configs
    assert (slo.window, slo.window_days) == ("rolling", days)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("duration: 28d", "duration: 2Y"),
            "spec.timeWindow[0].duration: 2Y is 730 days; rolling windows are 1 to 400 days",
        ),
        (
            ("duration: 28d", "duration: 28"),
            "spec.timeWindow[0].duration: 28 is not a "
            "duration like 28d (a whole number, then m, h, d, w, M, Q or Y)",
        ),
        (("target: 0.995", "target: 99.5"), "spec.objectives[0].target: 99.5 is outside (0, 1)"),
        (
            ("counter: true", "counter: yes please"),
            "spec.indicator.spec.ratioMetric.counter: must be true or false, not 'yes please'",
        ),
        (
            ("budgetingMethod: Occurrences", "budgetingMethod: Events"),
            "spec.budgetingMethod: "
            "unknown method 'Events' (OpenSLO v1 has Occurrences, Timeslices, RatioTimeslices)",
        ),
        (("  service: checkout\n", ""), "spec.service: required"),
        (
            (
                'query: shop_http_requests_total{service="checkout"}',
                "query: sum(increase(x[{{.window}}]))",
            ),
            "spec.indicator.spec.ratioMetric.counter: counter queries select raw counters and "
            "cannot use {{.window}}",
        ),
        (
            ("isRolling: true", "isRolling: true\n      calendar: {timeZone: UTC}"),
            "spec.timeWindow[0].calendar: is for windows with isRolling: false",
        ),
        (
            (
                "type: Prometheus\n            spec:\n              query: shop_http_requests_total"
                '{service="checkout"}',
                "type: Datadog\n            spec:\n              query: x",
            ),
            "spec.indicator.spec.ratioMetric.total.metricSource: type Datadog differs from good's "
            "Prometheus",
        ),
    ],
)
def test_field_level_mistakes(change: tuple[str, str], message: str) -> None:
    text = (FIXTURES / "ratio-inline.yaml").read_text(encoding="utf-8")
    assert change[0] in text
    with pytest.raises(ConfigError) as caught:
        parse_openslo(text.replace(change[0], change[1], 1), "x.yaml")
    assert str(caught.value) == f"x.yaml: SLO checkout-availability: {message}"


def test_prometheus_source_needs_a_query() -> None:
    text = (FIXTURES / "ratio-inline.yaml").read_text(encoding="utf-8")
    text = text.replace(
        'query: shop_http_requests_total{service="checkout",code!~"5.."}', "promql: up"
    )
    with pytest.raises(ConfigError) as caught:
        parse_openslo(text, "x.yaml")
    assert str(caught.value) == (
        "x.yaml: SLO checkout-availability: spec.indicator.spec.ratioMetric.good.metricSource"
        ".spec.query: required"
    )


def test_unknown_kinds_are_noted_and_duplicates_refused() -> None:
    text = (FIXTURES / "ratio-inline.yaml").read_text(encoding="utf-8")
    extra = "---\napiVersion: openslo/v1\nkind: Dashboard\nmetadata:\n  name: overview\nspec: {}\n"
    parsed = parse_openslo(text + extra, "x.yaml")
    assert parsed.notes == ["x.yaml: Dashboard overview: ignored (unknown kind)"]
    with pytest.raises(ConfigError) as caught:
        parse_openslo(text + "---\n" + text, "x.yaml")
    assert str(caught.value) == (
        "x.yaml: SLO checkout-availability: metadata.name: defined twice (also in x.yaml)"
    )


def test_poise_sync_says_what_the_slo_files_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt kind is a note, not an error: `poise sync` prints it (it went to a log no
    one saw, so the SLO vanished silently); the read-only commands stay quiet."""
    text = (FIXTURES / "ratio-inline.yaml").read_text(encoding="utf-8")
    (tmp_path / "slos.yaml").write_text(text.replace("kind: SLO", "kind: Slo"), encoding="utf-8")
    (tmp_path / "poise.yaml").write_text(
        "teams: [{name: shop}]\nservices: [{name: checkout, team: shop}]\n"
        "slos: [{file: slos.yaml}]\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["sync", "--db", db]) == 0
    err = capsys.readouterr().err
    assert "poise: note: slos.yaml: Slo checkout-availability: ignored (unknown kind)" in err
    assert main(["metrics", "--db", db]) == 0
    assert "note" not in capsys.readouterr().err


def test_a_document_that_is_not_openslo() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_openslo("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n", "x.yaml")
    assert str(caught.value) == (
        "x.yaml: ConfigMap settings: apiVersion: 'v1' is not OpenSLO (expected openslo/v1)"
    )


def test_references_resolve_across_files(tmp_path: Path) -> None:
    documents = (FIXTURES / "sli-and-datasource.yaml").read_text(encoding="utf-8").split("---\n")
    (tmp_path / "sources.yaml").write_text("---\n".join(documents[:3]), encoding="utf-8")
    (tmp_path / "slos.yaml").write_text("---\n".join(documents[3:]), encoding="utf-8")
    parsed = load_openslo(
        [(tmp_path / "slos.yaml", "slos.yaml"), (tmp_path / "sources.yaml", "sources.yaml")]
    )
    (declared,) = parsed.slos
    assert declared.slo.bad == 'sum(rate(search_requests_total{code=~"5.."}[5m]))'
    assert declared.where.origin == "slos.yaml"


def _config(tmp_path: Path, slos: list[dict], services: tuple[str, ...] = ("checkout", "search")):
    return parse_config(
        {
            "teams": [{"name": "shop"}],
            "services": [{"name": name, "team": "shop"} for name in services],
            "slos": slos,
        },
        origin="poise.yaml",
        base_dir=tmp_path,
    )


def test_config_slo_files_are_written_to_the_warehouse(tmp_path: Path, warehouse: Engine) -> None:
    (tmp_path / "slos").mkdir()
    for name in ("ratio-inline.yaml", "sli-and-datasource.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / "slos" / name)
    config = _config(
        tmp_path,
        [
            {"name": "checkout-latency", "service": "checkout", "target": 0.99},
            {"file": "slos/ratio-inline.yaml"},
            {"file": "slos/sli-and-datasource.yaml"},
        ],
    )
    counts = apply_config(warehouse, config)
    assert counts.new == 1 + 2 + 3
    with warehouse.connect() as connection:
        rows = connection.execute(select(schema.slos).order_by(schema.slos.c.name)).mappings().all()
    found = {row["name"]: row for row in rows}
    assert set(found) == {"checkout-latency", "checkout-availability", "search-availability"}
    search = found["search-availability"]
    assert (search["source"], search["source_id"]) == (
        "openslo",
        "slos/sli-and-datasource.yaml#search-availability",
    )
    assert (search["window_kind"], search["calendar_unit"], search["window_days"]) == (
        "calendar",
        "month",
        30,
    )
    assert (search["target"], search["datasource"], search["display_name"]) == (
        0.999,
        "prometheus",
        "Search availability",
    )
    assert found["checkout-latency"]["source"] == "config"
    everything = " ".join(str(value) for row in rows for value in row.values())
    assert "prometheus.shop.internal" not in everything  # connectionDetails are never stored
    assert apply_config(warehouse, config).new == 0


def test_file_slo_with_an_unknown_service(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "ratio-inline.yaml", tmp_path / "x.yaml")
    config = _config(tmp_path, [{"file": "x.yaml"}], services=("checkouts", "search"))
    with pytest.raises(ConfigError) as caught:
        declared_slos(config)
    assert str(caught.value) == (
        "x.yaml: SLO checkout-availability: service: unknown service 'checkout' (did you mean "
        "'checkouts'?): not among the services in poise.yaml"
    )


def test_a_name_used_inline_and_in_a_file(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "ratio-inline.yaml", tmp_path / "x.yaml")
    config = _config(
        tmp_path,
        [
            {"name": "checkout-availability", "service": "checkout", "target": 0.9},
            {"file": "x.yaml"},
        ],
    )
    with pytest.raises(ConfigError) as caught:
        declared_slos(config)
    assert str(caught.value) == (
        "x.yaml: SLO checkout-availability: SLO name 'checkout-availability' is already used "
        "(poise.yaml)"
    )


def test_a_file_of_neither_kind(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("groups:\n  - name: rules\n", encoding="utf-8")
    config = _config(tmp_path, [{"file": "x.yaml"}])
    with pytest.raises(ConfigError) as caught:
        declared_slos(config)
    assert str(caught.value) == (
        "x.yaml: neither OpenSLO v1 (apiVersion: openslo/v1) nor a Sloth spec (version: "
        "prometheus/v1) in every document"
    )


def test_rejections_follow_the_error_shape() -> None:
    """FILE: KIND NAME: field.path: message — for every bad fixture."""
    shape = re.compile(r"^bad/[\w.-]+\.yaml: (SLO|SLI|DataSource) [\w.-]+: [\w.\[\]]+: .+$")
    for name in REJECTED:
        with pytest.raises(ConfigError) as caught:
            parse_fixture(f"bad/{name}")
        assert shape.match(str(caught.value)), str(caught.value)

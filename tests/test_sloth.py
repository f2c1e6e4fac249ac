"""Sloth prometheus/v1 specs become Poise SLOs (bad = error_query, total = total_query).

The fixtures under tests/fixtures/sloth are Sloth's examples re-typed with our names.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from collectors.slo_files import declared_slos
from collectors.sloth import parse_sloth
from poise.catalog import apply_config
from poise.config import SloConfig, parse_config
from poise.errors import ConfigError
from poise.warehouse import schema

FIXTURES = Path(__file__).parent / "fixtures" / "sloth"


def parse_fixture(name: str):
    return parse_sloth((FIXTURES / name).read_text(encoding="utf-8"), name)


def test_getting_started_spec() -> None:
    parsed = parse_fixture("getting-started.yaml")
    assert parsed.configs == [
        SloConfig(
            name="checkout-requests-availability",
            service="checkout",
            description="Checkout HTTP requests that do not fail.",
            target=0.999,
            window_days=30,
            bad='sum(rate(shop_http_requests_total{service="checkout",code=~"(5..|429)"}'
            "[{{.window}}]))",
            total='sum(rate(shop_http_requests_total{service="checkout"}[{{.window}}]))',
            datasource="prometheus",
        )
    ]
    assert parsed.slos[0].source == "sloth"
    assert parsed.notes == [
        "getting-started.yaml: document 1: slo_plugins ignored (they shape Sloth's rules)"
    ]


def test_several_documents_and_multi_line_queries() -> None:
    parsed = parse_fixture("multifile.yaml")
    assert [(s.name, s.service, s.target) for s in parsed.configs] == [
        ("search-requests-availability", "search", 0.995),
        ("basket-requests-availability", "basket", 0.9995),
        ("basket-requests-latency", "basket", 0.99),
    ]
    search = parsed.configs[0]
    assert search.bad == 'sum(\n  rate(search_requests_total{code=~"5.."}[{{.window}}])\n)'
    assert all(s.window_days == 30 and s.window == "rolling" for s in parsed.configs)


def test_kubernetes_resource_with_camel_case_keys() -> None:
    (slo,) = parse_fixture("k8s-service-level.yaml").configs
    assert slo.name == "payments-requests-availability"
    assert slo.bad == 'sum(rate(payments_requests_total{code=~"(5..|429)"}[{{.window}}]))'
    assert slo.total == "sum(rate(payments_requests_total[{{.window}}]))"


def test_subquery_events_are_kept_verbatim() -> None:
    (slo,) = parse_fixture("subquery-events.yaml").configs
    assert slo.total == "sum_over_time((count(wifi_client_signal_ratio))[{{.window}}:])"
    assert slo.target == 0.95


REJECTED = {
    "raw-ratio.yaml": "SLO office-wifi-client-satisfaction: slos[0].sli.raw: an error-ratio "
    "query gives no event counts, which Poise needs: use sli.events with error_query and "
    "total_query",
    "plugin.yaml": "SLO checkout-requests-availability: slos[0].sli.plugin: SLI plugins are Go "
    "code that Sloth runs; Poise cannot run them: use sli.events with error_query and "
    "total_query",
    "missing-total.yaml": "SLO checkout-requests-availability: slos[0].sli.events.total_query: "
    "required",
    "objective-100.yaml": "SLO checkout-perfect: slos[0].objective: 100 leaves no error budget: "
    "give an objective below 100",
    "wrong-version.yaml": "document 1: version: 'prometheus/v2' is not a Sloth spec (expected "
    "prometheus/v1)",
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_each_rejection_names_file_document_and_field(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fixture(f"bad/{name}")
    assert str(caught.value) == f"bad/{name}: {REJECTED[name]}"


def test_every_bad_fixture_has_an_expected_message() -> None:
    assert {path.name for path in (FIXTURES / "bad").glob("*.yaml")} == set(REJECTED)


def test_missing_objective_and_empty_slos() -> None:
    text = (FIXTURES / "getting-started.yaml").read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        parse_sloth(text.replace("    objective: 99.9\n", ""), "x.yaml")
    assert str(caught.value) == (
        "x.yaml: SLO checkout-requests-availability: slos[0].objective: required (a "
        "percentage, e.g. 99.9)"
    )
    with pytest.raises(ConfigError) as caught:
        parse_sloth('version: "prometheus/v1"\nservice: checkout\nslos: []\n', "x.yaml")
    assert str(caught.value) == "x.yaml: document 1: slos: required: a list with at least one SLO"


def test_sloth_file_listed_in_the_config(tmp_path: Path, warehouse: Engine) -> None:
    shutil.copy(FIXTURES / "multifile.yaml", tmp_path / "sloth.yaml")
    config = parse_config(
        {
            "teams": [{"name": "shop"}],
            "services": [{"name": "search", "team": "shop"}, {"name": "basket", "team": "shop"}],
            "slos": [{"file": "sloth.yaml"}],
        },
        origin="poise.yaml",
        base_dir=tmp_path,
    )
    assert [d.source_id for d in declared_slos(config).slos] == [
        "sloth.yaml#search-requests-availability",
        "sloth.yaml#basket-requests-availability",
        "sloth.yaml#basket-requests-latency",
    ]
    apply_config(warehouse, config)
    with warehouse.connect() as connection:
        rows = connection.execute(
            select(schema.slos.c.name, schema.slos.c.bad_query, schema.slos.c.source)
        ).all()
    assert {(name, source) for name, _, source in rows} == {
        ("search-requests-availability", "sloth"),
        ("basket-requests-availability", "sloth"),
        ("basket-requests-latency", "sloth"),
    }


def test_an_slo_of_a_service_nobody_declared_is_refused_before_writing(
    tmp_path: Path, sqlite_warehouse: Engine
) -> None:
    shutil.copy(FIXTURES / "getting-started.yaml", tmp_path / "sloth.yaml")
    config = parse_config(
        {"slos": [{"file": "sloth.yaml"}]}, origin="poise.yaml", base_dir=tmp_path
    )
    with pytest.raises(ConfigError) as caught:
        apply_config(sqlite_warehouse, config)
    assert str(caught.value) == (
        "sloth.yaml: SLO checkout-requests-availability: service 'checkout' is not a known "
        "service: declare it under services: in the config, or import it"
    )
    with sqlite_warehouse.connect() as connection:
        assert connection.execute(select(schema.slos)).first() is None

"""The TLS certificate collector against real TLS servers on 127.0.0.1, with certificates
made by the test: valid, expiring in 10 days, expired, a wrong name, an unknown CA, and
endpoints that refuse or never answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from tls_server import TestCa, TlsServer, closed_port, silent_port

from collectors.runner import run_sync
from collectors.tls import certificate_row, check_endpoint
from metrics import certificates
from metrics.model import Scope
from poise.cli import main
from poise.config import CertificateEndpoint, parse_config
from poise.errors import ConfigError
from poise.warehouse import schema

NOW = datetime.now(UTC)


def config_for(endpoints: list[dict[str, Any]], folder: Path, timeout: float = 2.0):
    return parse_config(
        {
            "teams": [{"name": "shop"}],
            "services": [{"name": "checkout", "team": "shop"}, {"name": "search", "team": "shop"}],
            "sources": {"tls": {"timeout_seconds": timeout}},
            "certificates": endpoints,
        },
        base_dir=folder,
    )


def rows_by_id(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        return {row.id: row for row in connection.execute(select(schema.certificates))}


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path)


def sync(engine: Engine, config) -> Any:
    from poise.catalog import apply_config

    apply_config(engine, config)
    return run_sync(engine, config, sources=["tls"], hooks=[]).result("tls")


def test_valid_expiring_and_expired_certificates_are_all_recorded(
    warehouse: Engine, ca: TestCa, tmp_path: Path
) -> None:
    valid = ca.issue(not_after=NOW + timedelta(days=90))
    soon = ca.issue(not_after=NOW + timedelta(days=10))
    expired = ca.issue(not_after=NOW - timedelta(days=2))
    with TlsServer(valid) as a, TlsServer(soon) as b, TlsServer(expired) as c:
        ports = {"valid": a.port, "soon": b.port, "expired": c.port}
        endpoints = [
            {"host": "127.0.0.1", "port": port, "service": "checkout", "server_name": "localhost",
             "ca_file": "ca.pem"}
            for port in ports.values()
        ]  # fmt: skip
        result = sync(warehouse, config_for(endpoints, tmp_path))
    assert result.errors == []
    assert (result.new, result.records) == (3, 3)
    rows = rows_by_id(warehouse)
    key = {name: f"127.0.0.1:{port}/localhost" for name, port in ports.items()}
    good, near, old = rows[key["valid"]], rows[key["soon"]], rows[key["expired"]]

    assert (good.verified, good.verify_error, good.error) == (True, None, None)
    assert good.subject == "CN=localhost,O=Poise tests"
    assert good.issuer == "CN=Poise test CA,O=Poise tests"
    assert good.dns_names == "localhost, 127.0.0.1"
    assert good.not_after == valid.not_after and good.not_before == valid.not_before
    assert good.serial == format(valid.serial, "x")
    assert (good.service, good.host, good.port, good.server_name) == (
        "checkout",
        "127.0.0.1",
        ports["valid"],
        "localhost",
    )
    assert near.verified is True and near.not_after == soon.not_after
    # an expired certificate fails verification, and is read anyway
    assert old.verified is False and "expired" in old.verify_error
    assert old.not_after == expired.not_after and old.error is None
    assert good.checked_at == good.read_at and NOW - timedelta(minutes=5) < good.checked_at

    with warehouse.connect() as connection:
        raw = connection.execute(
            select(schema.raw_payloads).where(schema.raw_payloads.c.id == good.raw_id)
        ).one()
    assert (raw.source, raw.stream, raw.request_method) == ("tls", "certificates", "TLS")
    assert raw.request_url == f"tls://127.0.0.1:{ports['valid']}"
    assert "BEGIN CERTIFICATE" in raw.payload

    with warehouse.connect() as connection:
        stored = certificates.load(connection, Scope())
    risks = certificates.expiry_risks(stored, NOW)
    assert risks["id"].tolist() == [key["expired"], key["soon"]]  # the valid one is no risk
    assert risks["risk"].tolist() == ["expired", "expiring"]
    assert risks["days_left"].iloc[1] == pytest.approx(10, abs=0.01)
    assert risks["team"].tolist() == ["shop", "shop"]
    assert certificates.describe(risks.iloc[1]) == (
        f"{key['soon']} (checkout) expires in 10 days ({soon.not_after:%Y-%m-%d})"
    )
    assert certificates.describe(risks.iloc[0]).startswith(
        f"{key['expired']} (checkout) expired 2 days ago"
    )


def test_endpoints_that_refuse_or_never_answer_are_recorded_and_reported(
    warehouse: Engine, ca: TestCa, tmp_path: Path
) -> None:
    refused = closed_port()
    with silent_port() as quiet:
        endpoints = [
            {"host": "127.0.0.1", "port": refused, "service": "checkout"},
            {"host": "127.0.0.1", "port": quiet, "service": "search"},
        ]
        result = sync(warehouse, config_for(endpoints, tmp_path, timeout=0.5))
    assert result.errors == [
        f"tls: 127.0.0.1:{refused} (checkout): connection to 127.0.0.1:{refused} refused",
        f"tls: 127.0.0.1:{quiet} (search): no answer from 127.0.0.1:{quiet} within 0.5 s",
    ]
    rows = rows_by_id(warehouse)
    for port in (refused, quiet):
        row = rows[f"127.0.0.1:{port}"]
        assert row.not_after is None and row.verified is None and row.raw_id is None
        assert row.error and row.checked_at is not None
    with warehouse.connect() as connection:
        state = connection.execute(
            select(schema.sync_state).where(schema.sync_state.c.source == "tls")
        ).all()
        stored = certificates.load(connection, Scope(service="search"))
    assert {row.scope for row in state if row.last_error} == {
        f"127.0.0.1:{refused}",
        f"127.0.0.1:{quiet}",
    }
    risks = certificates.expiry_risks(stored, NOW)
    assert risks["risk"].tolist() == ["unreachable"]
    assert certificates.describe(risks.iloc[0]) == (
        f"127.0.0.1:{quiet} (search) did not answer at the last check: "
        f"no answer from 127.0.0.1:{quiet} within 0.5 s"
    )


def test_a_host_that_stops_answering_keeps_its_last_certificate(
    warehouse: Engine, ca: TestCa, tmp_path: Path
) -> None:
    leaf = ca.issue(not_after=NOW + timedelta(days=200))
    with TlsServer(leaf) as server:
        endpoint = {"host": "127.0.0.1", "port": server.port, "service": "checkout",
                    "server_name": "localhost", "ca_file": str(ca.pem)}  # fmt: skip
        config = config_for([endpoint], tmp_path, timeout=0.5)
        first = sync(warehouse, config)
        again = sync(warehouse, config)
    assert first.errors == [] and again.errors == []
    assert (first.new, again.new, again.updated) == (1, 0, 1)  # the check time moved
    gone = sync(warehouse, config)
    key = f"127.0.0.1:{endpoint['port']}/localhost"
    row = rows_by_id(warehouse)[key]
    assert gone.errors and "refused" in gone.errors[0]
    assert row.not_after == leaf.not_after and row.verified is True
    assert row.error == f"connection to 127.0.0.1:{endpoint['port']} refused"
    assert row.checked_at > row.read_at
    with warehouse.connect() as connection:
        risk = certificates.expiry_risks(certificates.load(connection, Scope()), NOW)
    assert risk["risk"].tolist() == ["unreachable"]


def test_verification_failures_other_than_expiry_are_invalid(ca: TestCa, tmp_path: Path) -> None:
    leaf = ca.issue("localhost", not_after=NOW + timedelta(days=120))
    with TlsServer(leaf) as server:
        unknown_ca = check_endpoint("127.0.0.1", server.port, server_name="localhost", timeout=2)
        wrong_name = check_endpoint(
            "127.0.0.1", server.port, server_name="shop.example", timeout=2, ca_file=str(ca.pem)
        )
        by_ip = check_endpoint("127.0.0.1", server.port, timeout=2, ca_file=str(ca.pem))
    assert unknown_ca.verified is False
    assert unknown_ca.verify_error == "self-signed certificate in certificate chain"
    assert wrong_name.verified is False and "shop.example" in wrong_name.verify_error
    assert by_ip.verified is True  # matched against the IP address in the certificate
    assert unknown_ca.der == wrong_name.der == by_ip.der
    endpoint = CertificateEndpoint(host="127.0.0.1", service="checkout")
    frame = pd.DataFrame(
        [certificate_row(endpoint, found, NOW) for found in (unknown_ca, wrong_name, by_ip)]
    )
    assert certificates.with_risk(frame, NOW)["risk"].tolist() == ["invalid", "invalid", None]


def test_a_plain_tcp_service_is_a_failed_handshake(tmp_path: Path) -> None:
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(1024)
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    found = check_endpoint("127.0.0.1", port, timeout=2)
    thread.join(timeout=5)
    server.close()
    assert found.der is None
    assert found.error.startswith(f"TLS handshake with 127.0.0.1:{port} failed: ")


def test_poise_sync_reports_an_unreachable_endpoint_in_one_line(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = closed_port()
    (tmp_path / "poise.yaml").write_text(
        "teams: [{name: shop}]\n"
        "services: [{name: checkout, team: shop}]\n"
        "sources: {tls: {timeout_seconds: 1}}\n"
        f"certificates: [{{host: 127.0.0.1, port: {refused}, service: checkout}}]\n",
        encoding="utf-8",
    )
    code = main(
        ["sync", "--source", "tls", "--db", sqlite_url, "--config", str(tmp_path / "poise.yaml")]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert f"tls: 127.0.0.1:{refused} (checkout): connection to 127.0.0.1:{refused} refused" in (
        captured.err + captured.out
    )
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("endpoints", "message"),
    [
        ([{"host": "a", "service": "nope"}], "certificates[0].service: unknown service 'nope'"),
        (
            [{"host": "a", "service": "checkout"}, {"host": "a", "port": 443, "service": "search"}],
            "certificates[1]: a:443 is listed twice",
        ),
        ([{"host": "a", "service": "checkout", "ca_file": "x.pem"}], "ca_file: no such file"),
        ([{"host": "a", "service": "checkout", "prot": 1}], "certificates[0].prot: unknown key"),
        ([{"host": "a", "service": "checkout", "port": 70000}], "certificates[0].port: "),
    ],
)
def test_certificate_endpoints_are_validated(
    endpoints: list[dict[str, Any]], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config_for(endpoints, tmp_path)

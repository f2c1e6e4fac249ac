"""TLS certificates of configured endpoints: who issued them, when they expire, whether they verify.

For every `certificates[]` entry (host, port, service, optional server_name and ca_file)
`poise sync` opens a TLS connection with SNI, within `sources.tls.timeout_seconds`:

1. a verifying handshake (the system's CAs, or `ca_file`; the certificate must match the
   server name); if it passes, the certificate is read and `verified` is true;
2. if verification fails (expired, self-signed, unknown CA, wrong name), a second handshake
   without verification reads the certificate anyway, so an expired one is still recorded,
   with `verified` false and the reason in `verify_error`;
3. if nothing answers (refused, no route, no TLS answer in time, a handshake that fails for
   any other reason), the row keeps the certificate last read and gets `error`; the scope
   fails with that one line, so `poise sync` says so and exits 1.

Each certificate read is kept in `raw_payloads` (PEM and handshake facts, method `TLS`).
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from sqlalchemy import Connection

from collectors.base import RawRequest, Scope, Source, SyncContext
from collectors.http import SourceError
from poise.config import CertificateEndpoint, ServiceConfig
from poise.timeutil import utcnow
from poise.warehouse import schema
from poise.warehouse.upsert import UpsertCounts, upsert_rows

SOURCE = "tls"
STREAM = "certificates"


@dataclass(frozen=True)
class Handshake:
    """What one check learnt: the certificate (DER) and the verdict on it, or why none came."""

    der: bytes | None = None
    verified: bool | None = None
    verify_error: str | None = None
    error: str | None = None
    protocol: str | None = None


def _connect_error(exc: OSError, host: str, port: int, timeout: float) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {host}:{port} within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {host}:{port} refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror or exc}"
    return f"cannot connect to {host}:{port}: {exc.strerror or exc}"


def _handshake(
    host: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float
) -> tuple[bytes, str | None]:
    # ssl sends no SNI for an IP address, and then matches it against the IP SANs
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        if not der:
            raise ssl.SSLError("the server sent no certificate")
        return der, tls.version()


def check_endpoint(
    host: str,
    port: int,
    *,
    server_name: str | None = None,
    timeout: float = 10.0,
    ca_file: str | None = None,
) -> Handshake:
    """Connect and read the certificate served at host:port (see the module docstring)."""
    name = server_name or host
    verifying = ssl.create_default_context(cafile=ca_file)
    try:
        der, protocol = _handshake(host, port, name, verifying, timeout)
        return Handshake(der=der, verified=True, protocol=protocol)
    except ssl.SSLCertVerificationError as exc:
        verify_error = str(exc.verify_message or exc.reason or exc)
    except ssl.SSLError as exc:
        return Handshake(error=f"TLS handshake with {host}:{port} failed: {exc.reason or exc}")
    except OSError as exc:
        return Handshake(error=_connect_error(exc, host, port, timeout))
    reading = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    reading.check_hostname = False
    reading.verify_mode = ssl.CERT_NONE
    try:
        der, protocol = _handshake(host, port, name, reading, timeout)
    except ssl.SSLError as exc:
        return Handshake(error=f"TLS handshake with {host}:{port} failed: {exc.reason or exc}")
    except OSError as exc:
        return Handshake(error=_connect_error(exc, host, port, timeout))
    return Handshake(der=der, verified=False, verify_error=verify_error, protocol=protocol)


def certificate_fields(der: bytes) -> dict[str, Any]:
    """The columns read from a DER certificate."""
    cert = x509.load_der_x509_certificate(der)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = names.get_values_for_type(x509.DNSName)
        dns += [str(value) for value in names.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns = []
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "dns_names": ", ".join(dns) or None,
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
    }


def certificate_row(
    endpoint: CertificateEndpoint, found: Handshake, checked_at: datetime
) -> dict[str, Any]:
    """The `certificates` row of one check. Without a certificate only the check's own
    columns are written, so the certificate last read stays."""
    row: dict[str, Any] = {
        "id": endpoint.key,
        "source_id": endpoint.key,
        "service": endpoint.service,
        "host": endpoint.host,
        "port": endpoint.port,
        "server_name": endpoint.server_name or endpoint.host,
        "checked_at": checked_at,
        "error": found.error,
        "source": SOURCE,
    }
    if found.der is not None:
        row.update(
            certificate_fields(found.der),
            verified=found.verified,
            verify_error=found.verify_error,
            read_at=checked_at,
        )
    return row


def _payload(endpoint: CertificateEndpoint, found: Handshake) -> str:
    assert found.der is not None
    return json.dumps(
        {
            "host": endpoint.host,
            "port": endpoint.port,
            "server_name": endpoint.server_name or endpoint.host,
            "protocol": found.protocol,
            "verified": found.verified,
            "verify_error": found.verify_error,
            "certificate": ssl.DER_cert_to_PEM_cert(found.der),
        },
        sort_keys=True,
    )


class TlsSource(Source):
    """`poise sync` for certificates: one scope per `certificates[]` endpoint."""

    name = SOURCE
    feeds_derived = False  # certificates: no derived table is made from them

    def scopes(self) -> list[Scope]:
        found = []
        for endpoint in self.config.certificates:
            service = self.config.service(endpoint.service) or ServiceConfig.model_construct(
                name=endpoint.service, team=""
            )
            found.append(Scope(endpoint.key, service, endpoint))
        return found

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        endpoint: CertificateEndpoint = scope.location
        ca_file = str(self.config.resolve_path(endpoint.ca_file)) if endpoint.ca_file else None
        checked_at = utcnow()
        found = check_endpoint(
            endpoint.host,
            endpoint.port,
            server_name=endpoint.server_name,
            timeout=self.settings.timeout_seconds,
            ca_file=ca_file,
        )
        row = certificate_row(endpoint, found, checked_at)

        def write(connection: Connection, raw_id: Any) -> UpsertCounts:
            stamped = {**row, "raw_id": raw_id} if raw_id is not None else row
            return upsert_rows(connection, schema.certificates, [stamped])

        if found.der is None:
            ctx.write_rows(STREAM, scope.key, {}, records=0, after=lambda c: write(c, None))
            raise SourceError(f"{SOURCE}: {scope.key} ({endpoint.service}): {found.error}")
        ctx.store_page(
            STREAM,
            scope.key,
            request=RawRequest(
                "TLS",
                f"tls://{endpoint.host}:{endpoint.port}",
                {"server_name": endpoint.server_name or endpoint.host},
            ),
            payload=_payload(endpoint, found),
            write=write,
            records=1,
        )

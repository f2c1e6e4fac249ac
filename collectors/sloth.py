"""Sloth SLO specs (`version: prometheus/v1`, or the `PrometheusServiceLevel` resource).

Each `slos[]` entry becomes one Poise SLO named `<service>-<name>` (Sloth's own SLO id),
with `objective` (a percentage) as the target, `sli.events.error_query` as the bad-events
query and `sli.events.total_query` as the total. Sloth's SLO period is not in the spec
(it is the `--default-slo-period` flag, 30 days unless changed), so the window is a
rolling 30 days.

The queries are kept exactly as written, `{{.window}}` included: the Prometheus
collector replaces `{{.window}}` with `1h` and reads one value per hour (see
docs/slos.md). `sli.raw` (an error ratio, which gives no event counts) and `sli.plugin`
(Go code that Sloth runs) are refused; alerting, labels and `slo_plugins` are Sloth's
rule-generation settings and are not read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from collectors.slo_spec import (
    DeclaredSlo,
    ParsedSlos,
    Where,
    build_slo,
    fraction,
    mapping,
    slo_name,
    small_percentage,
    text_field,
    yaml_documents,
)

VERSION = "prometheus/v1"
K8S_API_VERSION = "sloth.slok.dev/v1"
K8S_KIND = "PrometheusServiceLevel"
WINDOW_DAYS = 30


def is_sloth(document: Any) -> bool:
    return isinstance(document, dict) and (
        document.get("version") == VERSION or document.get("apiVersion") == K8S_API_VERSION
    )


def parse_sloth(text: str, origin: str) -> ParsedSlos:
    """The SLOs of every Sloth document in a file."""
    return parse_sloth_documents(yaml_documents(text, origin), origin)


def parse_sloth_documents(documents: Iterable[tuple[int, Any]], origin: str) -> ParsedSlos:
    parsed = ParsedSlos()
    for number, document in documents:
        where = Where(origin, f"document {number}")
        node = mapping(document, where, "")
        if node.get("apiVersion") == K8S_API_VERSION:
            if node.get("kind") != K8S_KIND:
                raise where.error("kind", f"{node.get('kind')!r} is not {K8S_KIND}")
            name = mapping(node.get("metadata"), where, "metadata", required=False).get("name")
            where = Where(origin, f"{K8S_KIND} {name}" if name else where.document)
            parsed.extend(_service_level(mapping(node.get("spec"), where, "spec"), where, "spec."))
        elif node.get("version") == VERSION:
            parsed.extend(_service_level(node, where, ""))
        else:
            found = node.get("version") or node.get("apiVersion")
            raise where.error("version", f"{found!r} is not a Sloth spec (expected {VERSION})")
    return parsed


def _service_level(spec: dict[str, Any], where: Where, prefix: str) -> ParsedSlos:
    parsed = ParsedSlos()
    service = text_field(spec, "service", where, f"{prefix}service", required=True)
    entries = spec.get("slos")
    if not isinstance(entries, list) or not entries:
        raise where.error(f"{prefix}slos", "required: a list with at least one SLO")
    for index, entry in enumerate(entries):
        path = f"{prefix}slos[{index}]"
        node = mapping(entry, where, path)
        name = text_field(node, "name", where, f"{path}.name", required=True)
        full_name = slo_name(f"{service}-{name}", where, f"{path}.name")
        here = Where(where.origin, f"SLO {full_name}")
        bad, total = _events(mapping(node.get("sli"), here, f"{path}.sli"), here, f"{path}.sli")
        if "objective" not in node:
            raise here.error(f"{path}.objective", "required (a percentage, e.g. 99.9)")
        fields = {
            "name": full_name,
            "service": service,
            "target": fraction(node["objective"], here, f"{path}.objective", scale=100),
            "window_days": WINDOW_DAYS,
            "description": text_field(node, "description", here, f"{path}.description"),
            "bad": bad,
            "total": total,
            "datasource": "prometheus",
        }
        parsed.slos.append(DeclaredSlo(build_slo(here, fields), "sloth", here))
        if note := small_percentage(node["objective"], f"{path}.objective"):
            parsed.notes.append(here.note(note))
    if spec.get("slo_plugins") or spec.get("sloPlugins"):
        parsed.notes.append(where.note("slo_plugins ignored (they shape Sloth's rules)"))
    return parsed


def _events(sli: dict[str, Any], where: Where, path: str) -> tuple[str, str]:
    if "raw" in sli:
        raise where.error(
            f"{path}.raw",
            "an error-ratio query gives no event counts, which Poise needs: use sli.events "
            "with error_query and total_query",
        )
    if "plugin" in sli:
        raise where.error(
            f"{path}.plugin",
            "SLI plugins are Go code that Sloth runs; Poise cannot run them: use sli.events "
            "with error_query and total_query",
        )
    events = mapping(sli.get("events"), where, f"{path}.events")
    queries = []
    for snake, camel in (("error_query", "errorQuery"), ("total_query", "totalQuery")):
        if snake in events and camel in events:
            raise where.error(
                f"{path}.events.{camel}",
                f"give {snake} or {camel} (the Kubernetes spelling), not both",
            )
        key = camel if camel in events else snake
        queries.append(text_field(events, key, where, f"{path}.events.{key}", required=True))
    bad, total = queries
    assert bad is not None and total is not None
    return bad, total

"""Every SLO the configuration declares: inline under `slos:`, or in OpenSLO / Sloth files.

A `slos: - file: x.yaml` entry is read by the reader its content calls for: OpenSLO v1
(`apiVersion: openslo/v1`) or Sloth (`version: prometheus/v1`, or `apiVersion:
sloth.slok.dev/v1`). OpenSLO references resolve across all the OpenSLO files listed.
"""

from __future__ import annotations

import difflib
from typing import Any

from collectors.openslo import OpenSloReader
from collectors.slo_spec import DeclaredSlo, ParsedSlos, Where, read_text, yaml_documents
from collectors.sloth import is_sloth, parse_sloth_documents
from poise.config import PoiseConfig, SloConfig, SloFile
from poise.errors import ConfigError


def _is_openslo(document: Any) -> bool:
    items = document if isinstance(document, list) else [document]
    return any(
        isinstance(item, dict) and str(item.get("apiVersion", "")).startswith("openslo/")
        for item in items
    )


def load_slo_files(config: PoiseConfig) -> ParsedSlos:
    """The SLOs of every `slos: - file:` entry, in the order listed."""
    parsed = ParsedSlos()
    openslo = OpenSloReader()
    for entry in config.slos:
        if not isinstance(entry, SloFile):
            continue
        origin = entry.file
        text = read_text(config.resolve_path(entry.file), origin)
        documents = list(yaml_documents(text, origin))
        if not documents:
            parsed.notes.append(f"{origin}: empty file, no SLOs")
        elif all(_is_openslo(document) for _, document in documents):
            openslo.add_documents(documents, origin)
        elif all(is_sloth(document) for _, document in documents):
            parsed.extend(parse_sloth_documents(documents, origin))
        else:
            raise ConfigError(
                f"{origin}: neither OpenSLO v1 (apiVersion: openslo/v1) nor a Sloth spec "
                "(version: prometheus/v1) in every document"
            )
    parsed.extend(openslo.result())
    return parsed


def declared_slos(config: PoiseConfig) -> ParsedSlos:
    """Inline SLOs and those of SLO files, checked together: unique names, known services."""
    declared = ParsedSlos(
        slos=[
            DeclaredSlo(slo, "config", Where(config.origin, f"slos[{index}]"))
            for index, slo in enumerate(config.slos)
            if isinstance(slo, SloConfig)
        ]
    )
    declared.extend(load_slo_files(config))
    services = [service.name for service in config.services]
    seen: dict[str, DeclaredSlo] = {}
    for item in declared.slos:
        name = item.slo.name
        if name in seen:
            raise item.where.error(
                "", f"SLO name {name!r} is already used ({seen[name].where.origin})"
            )
        seen[name] = item
        if services and item.slo.service not in services and item.source != "config":
            close = difflib.get_close_matches(item.slo.service, services, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise item.where.error(
                "service",
                f"unknown service {item.slo.service!r}{hint}: not among the services in "
                f"{config.origin}",
            )
    return declared

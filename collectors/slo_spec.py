"""What the OpenSLO and Sloth readers share: YAML loading, error prefixes, names, targets.

Both readers turn a file into `poise.config.SloConfig` entries plus notes (things read
but ignored). Every error is a `ConfigError` whose one line names the file, the document
(kind and name) and the field, e.g.
`slos/checkout.yaml: SLO checkout-availability: spec.budgetingMethod: Timeslices is not
supported (Poise budgets by occurrences)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from poise.config import NAME, SloConfig, load_yaml_documents
from poise.errors import ConfigError

# Prometheus and the servers that answer its HTTP query API.
PROMETHEUS_TYPES = frozenset(
    {"prometheus", "thanos", "mimir", "grafana-mimir", "cortex", "victoriametrics", "promql"}
)
WINDOW_TEMPLATE = "{{.window}}"


@dataclass(frozen=True)
class Where:
    """A document in a file, for error messages: `FILE: SLO name`."""

    origin: str
    document: str

    def error(self, path: str, message: str) -> ConfigError:
        location = f"{self.origin}: {self.document}"
        return ConfigError(f"{location}: {path}: {message}" if path else f"{location}: {message}")

    def note(self, message: str) -> str:
        return f"{self.origin}: {self.document}: {message}"


@dataclass(frozen=True)
class DeclaredSlo:
    """An SLO and where it was declared: inline in the config, or in an SLO file."""

    slo: SloConfig
    source: str  # config | openslo | sloth
    where: Where

    @property
    def source_id(self) -> str:
        return self.slo.name if self.source == "config" else f"{self.where.origin}#{self.slo.name}"


@dataclass
class ParsedSlos:
    """SLOs read from definition files, and what was read but not used."""

    slos: list[DeclaredSlo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: ParsedSlos) -> None:
        self.slos.extend(other.slos)
        self.notes.extend(other.notes)

    @property
    def configs(self) -> list[SloConfig]:
        return [declared.slo for declared in self.slos]

    def by_name(self, name: str) -> SloConfig:
        return next(declared.slo for declared in self.slos if declared.slo.name == name)


def read_text(path: Path, origin: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{origin}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{origin}: cannot read: {reason}") from None


def yaml_documents(text: str, origin: str) -> Iterator[tuple[int, Any]]:
    """(1-based document number, content) for each non-empty YAML document."""
    for number, document in enumerate(load_yaml_documents(text, origin), start=1):
        if document is not None:
            yield number, document


def mapping(value: Any, where: Where, path: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        found = "nothing" if value is None else type(value).__name__
        raise where.error(path, f"must be a mapping, not {found}")
    return value


def text_field(
    node: dict[str, Any], key: str, where: Where, path: str, *, required: bool = False
) -> str | None:
    value = node.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise where.error(path, "required")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise where.error(path, f"must be text, not {type(value).__name__}")
    return str(value).strip()


def slo_name(value: str, where: Where, path: str) -> str:
    if not re.match(NAME, value):
        raise where.error(
            path, f"{value!r} is not a usable SLO name (letters, digits, '.', '_', '-')"
        )
    return value


def fraction(value: Any, where: Where, path: str, *, scale: float) -> float:
    """A target given as a fraction (scale 1) or a percentage (scale 100), as a fraction."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(path, f"must be a number, not {value!r}")
    if value == scale:
        raise where.error(path, f"{value} leaves no error budget: give an objective below {value}")
    if not 0 < value < scale:
        upper = "1" if scale == 1 else "100"
        raise where.error(path, f"{value} is outside (0, {upper})")
    # 99.9 / 100 is 0.9990000000000001 in binary floating point; keep what the user wrote.
    return round(value / scale, 12)


def small_percentage(value: Any, path: str) -> str | None:
    """A note for a percentage under 1 (`objective: 0.999` is a target of 0.999 %, which
    no service means): read as written, since it is valid, but said."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        return None
    return (
        f"{path}: {value:g} is a percentage, so the target is {value:g} % "
        f"({value / 100:g}); for {value * 100:g} % write {value * 100:g}"
    )


def build_slo(where: Where, fields: dict[str, Any]) -> SloConfig:
    """A SloConfig from converted fields; a value it refuses is reported at its file."""
    try:
        return SloConfig.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise where.error("", f"{key}: {first['msg']}") from None


def is_prometheus(kind: str | None) -> bool:
    return bool(kind) and kind.strip().lower().replace(" ", "") in PROMETHEUS_TYPES

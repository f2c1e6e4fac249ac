"""OpenSLO v1 definitions (`apiVersion: openslo/v1`) read into Poise SLOs.

No Python library reads OpenSLO v1, so this reader is ours. What it takes and what it
refuses, and why, is in docs/slos.md; in short:

- Files hold one object per YAML document, or a YAML list of objects (as the OpenSLO
  SDK's examples do). Kinds SLO, SLI and DataSource are read, Service is accepted,
  AlertPolicy / AlertCondition / AlertNotificationTarget and unknown kinds are ignored
  with a note. References (`indicatorRef`, `metricSourceRef`) resolve across every
  OpenSLO file the config lists.
- An SLO's indicator is inline (`indicator`) or a named SLI (`indicatorRef`), and must
  be a `ratioMetric` with `good` or `bad` plus `total`: Poise budgets by occurrences,
  so it needs event counts. `raw` ratios and `thresholdMetric` are refused.
- `timeWindow`: rolling windows of whole days (`28d`, `4w`, `1M` = 30 days, `1Q` = 90,
  `1Y` = 365, as the OpenSLO SDK counts them); calendar windows of `1M` or `1Q` aligned
  to UTC months.
- `budgetingMethod: Occurrences` only.
- One objective gives one SLO named after the document; several objectives give one SLO
  each, named `<slo>-<objective>` after each objective's `name` or `displayName`.
- A Prometheus-family source (`type: Prometheus`, Thanos, Mimir, VictoriaMetrics…) keeps
  its queries (`spec.query`) for the Prometheus collector; any other source keeps the SLO
  definition only, and its SLI samples are imported. A DataSource's `connectionDetails`
  are never read or stored: Poise reaches Prometheus through `sources.prometheus`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectors.slo_spec import (
    WINDOW_TEMPLATE,
    DeclaredSlo,
    ParsedSlos,
    Where,
    build_slo,
    fraction,
    is_prometheus,
    mapping,
    read_text,
    slo_name,
    small_percentage,
    text_field,
    yaml_documents,
)
from poise.config import uses_window

API_VERSION = "openslo/v1"
READ_KINDS = ("SLO", "SLI", "DataSource", "Service")
IGNORED_KINDS = ("AlertPolicy", "AlertCondition", "AlertNotificationTarget")
DURATION = re.compile(r"^([0-9]+)([mhdwMQY])$")
MINUTES_PER_UNIT = {"m": 1, "h": 60}
DAYS_PER_UNIT = {"d": 1, "w": 7, "M": 30, "Q": 90, "Y": 365}
MAX_WINDOW_DAYS = 400
DEFAULT_WINDOW_DAYS = 28
CALENDAR_UNITS = {"1M": ("month", 30), "1Q": ("quarter", 90)}
QUARTER_STARTS = (1, 4, 7, 10)
OTHER_METHODS = ("Timeslices", "RatioTimeslices")


@dataclass(frozen=True)
class OpenSloObject:
    kind: str
    name: str
    where: Where
    metadata: dict[str, Any]
    spec: dict[str, Any]


@dataclass(frozen=True)
class Metric:
    """One of good / bad / total, as read from its metricSource."""

    source_type: str
    query: str | None
    datasource_ref: str | None


class OpenSloReader:
    """Collects OpenSLO objects from one or more files, then resolves them into SLOs."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], OpenSloObject] = {}
        self.notes: list[str] = []

    def add_file(self, path: Path, origin: str | None = None) -> None:
        origin = origin or str(path)
        self.add_text(read_text(path, origin), origin)

    def add_text(self, text: str, origin: str) -> None:
        self.add_documents(yaml_documents(text, origin), origin)

    def add_documents(self, documents: Iterable[tuple[int, Any]], origin: str) -> None:
        for number, document in documents:
            items = document if isinstance(document, list) else [document]
            for index, item in enumerate(items):
                label = f"document {number}" + (f"[{index}]" if isinstance(document, list) else "")
                self._add_object(item, Where(origin, label))

    def _add_object(self, item: Any, where: Where) -> None:
        node = mapping(item, where, "")
        kind = node.get("kind")
        metadata = node.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(kind, str) and isinstance(name, str):
            where = Where(where.origin, f"{kind} {name}")
        version = node.get("apiVersion")
        if version != API_VERSION:
            if version is None:
                raise where.error("apiVersion", f"required ({API_VERSION})")
            if isinstance(version, str) and version.startswith("openslo/"):
                raise where.error(
                    "apiVersion", f"{version} is not supported: Poise reads {API_VERSION}"
                )
            raise where.error("apiVersion", f"{version!r} is not OpenSLO (expected {API_VERSION})")
        kind = text_field(node, "kind", where, "kind", required=True)
        metadata = mapping(metadata, where, "metadata")
        name = text_field(metadata, "name", where, "metadata.name", required=True)
        assert kind is not None and name is not None
        named = Where(where.origin, f"{kind} {name}")
        if kind not in READ_KINDS:
            why = "alerting is not Poise's job" if kind in IGNORED_KINDS else "unknown kind"
            self.notes.append(named.note(f"ignored ({why})"))
            return
        spec = mapping(node.get("spec"), named, "spec", required=kind != "Service")
        earlier = self.objects.get((kind, name))
        if earlier is not None:
            raise named.error("metadata.name", f"defined twice (also in {earlier.where.origin})")
        self.objects[(kind, name)] = OpenSloObject(kind, name, named, metadata, spec)

    def result(self) -> ParsedSlos:
        parsed = ParsedSlos(notes=list(self.notes))
        for obj in self.objects.values():
            if obj.kind == "SLO":
                parsed.extend(self._convert(obj))
            elif obj.kind == "DataSource" and obj.spec.get("connectionDetails"):
                parsed.notes.append(
                    obj.where.note(
                        "connectionDetails ignored (Poise reaches Prometheus through "
                        "sources.prometheus in poise.yaml)"
                    )
                )
        return parsed

    # -- one SLO ----------------------------------------------------------------------

    def _convert(self, slo: OpenSloObject) -> ParsedSlos:
        where, spec = slo.where, slo.spec
        result = ParsedSlos()
        name = slo_name(slo.name, where, "metadata.name")
        service = text_field(spec, "service", where, "spec.service", required=True)
        _budgeting_method(spec, where)
        window = self._window(spec, where, result)
        metrics = self._indicator(spec, where)
        queries: dict[str, Any] = {"counter": metrics.pop("counter")}
        source_type = metrics["total"].source_type
        if is_prometheus(source_type):
            queries["datasource"] = "prometheus"
            for part, metric in metrics.items():
                queries[part] = metric.query
        else:
            queries["datasource"] = source_type.lower()
            result.notes.append(
                where.note(
                    f"its SLI comes from {source_type}, which Poise does not query; import its "
                    "SLI samples (docs/import.md)"
                )
            )
        common = {
            "service": service,
            "description": text_field(spec, "description", where, "spec.description"),
            **window,
            **queries,
        }
        display = text_field(slo.metadata, "displayName", where, "metadata.displayName")
        for suffix, objective_name, target in _objectives(spec, where, result.notes):
            full_name = f"{name}-{suffix}" if suffix else name
            title = display if not objective_name else f"{display or name}: {objective_name}"
            fields = {"name": full_name, "display_name": title, "target": target, **common}
            result.slos.append(DeclaredSlo(build_slo(where, fields), "openslo", where))
        return result

    def _window(self, spec: dict[str, Any], where: Where, result: ParsedSlos) -> dict[str, Any]:
        windows = spec.get("timeWindow")
        if windows is None:
            result.notes.append(
                where.note(f"no spec.timeWindow; using a rolling {DEFAULT_WINDOW_DAYS}-day window")
            )
            return {"window_days": DEFAULT_WINDOW_DAYS, "window": "rolling"}
        if not isinstance(windows, list) or len(windows) != 1:
            raise where.error("spec.timeWindow", "must list exactly one window")
        path = "spec.timeWindow[0]"
        window = mapping(windows[0], where, path)
        duration = window.get("duration")
        match = DURATION.match(duration) if isinstance(duration, str) else None
        if match is None:
            raise where.error(
                f"{path}.duration",
                f"{duration!r} is not a duration like 28d (a whole number, then m, h, d, w, "
                "M, Q or Y)",
            )
        rolling = window.get("isRolling")
        calendar = window.get("calendar")
        if rolling is not None and not isinstance(rolling, bool):
            raise where.error(f"{path}.isRolling", f"must be true or false, not {rolling!r}")
        if rolling is None:
            rolling = calendar is None
        if rolling:
            if calendar is not None:
                raise where.error(f"{path}.calendar", "is for windows with isRolling: false")
            return {
                "window_days": _rolling_days(match, where, f"{path}.duration"),
                "window": "rolling",
            }
        unit, days = _calendar_unit(duration, where, f"{path}.duration")
        _check_calendar(
            mapping(calendar, where, f"{path}.calendar", required=False), unit, where, path
        )
        return {"window_days": days, "window": "calendar", "calendar_unit": unit}

    def _indicator(self, spec: dict[str, Any], where: Where) -> dict[str, Any]:
        inline = spec.get("indicator")
        ref = text_field(spec, "indicatorRef", where, "spec.indicatorRef")
        if inline is not None and ref is not None:
            raise where.error("spec", "give indicator or indicatorRef, not both")
        if inline is not None:
            indicator = mapping(inline, where, "spec.indicator")
            sli_spec = mapping(indicator.get("spec"), where, "spec.indicator.spec")
            return self._ratio_metric(sli_spec, where, "spec.indicator.spec")
        if ref is None:
            raise where.error("spec.indicator", "required (or indicatorRef naming an SLI)")
        sli = self.objects.get(("SLI", ref))
        if sli is None:
            raise where.error(
                "spec.indicatorRef", f"no SLI named {ref!r} in the OpenSLO files listed under slos:"
            )
        return self._ratio_metric(sli.spec, sli.where, "spec")

    def _ratio_metric(self, spec: dict[str, Any], where: Where, prefix: str) -> dict[str, Any]:
        if "thresholdMetric" in spec:
            raise where.error(
                f"{prefix}.thresholdMetric",
                "is not supported: Poise counts good and total events (use ratioMetric)",
            )
        path = f"{prefix}.ratioMetric"
        ratio = mapping(spec.get("ratioMetric"), where, path)
        counter = ratio.get("counter", False)
        if not isinstance(counter, bool):
            raise where.error(f"{path}.counter", f"must be true or false, not {counter!r}")
        if "raw" in ratio or "rawType" in ratio:
            raise where.error(
                f"{path}.raw",
                "a precomputed ratio gives no event counts, which occurrence budgeting needs: "
                "give good (or bad) and total",
            )
        if "good" in ratio and "bad" in ratio:
            raise where.error(path, "give good or bad, not both")
        numerator = "good" if "good" in ratio else "bad" if "bad" in ratio else None
        if numerator is None:
            raise where.error(f"{path}.good", "required (or bad), with total")
        if "total" not in ratio:
            raise where.error(f"{path}.total", f"required with {numerator}")
        parts = {
            part: self._metric(ratio[part], where, f"{path}.{part}")
            for part in (numerator, "total")
        }
        first, total = parts[numerator], parts["total"]
        if first.source_type.lower() != total.source_type.lower():
            raise where.error(
                f"{path}.total.metricSource",
                f"type {total.source_type} differs from {numerator}'s {first.source_type}",
            )
        if first.datasource_ref != total.datasource_ref:
            raise where.error(
                f"{path}.total.metricSource.metricSourceRef",
                f"{numerator} and total must come from the same data source",
            )
        if counter and uses_window(*(metric.query for metric in parts.values())):
            raise where.error(
                f"{path}.counter",
                f"counter queries select raw counters and cannot use {WINDOW_TEMPLATE}",
            )
        return {"counter": counter, **parts}

    def _metric(self, node: Any, where: Where, path: str) -> Metric:
        source = mapping(
            mapping(node, where, path).get("metricSource"), where, f"{path}.metricSource"
        )
        path = f"{path}.metricSource"
        ref = text_field(source, "metricSourceRef", where, f"{path}.metricSourceRef")
        declared = text_field(source, "type", where, f"{path}.type")
        ref_type = None
        if ref is not None:
            datasource = self.objects.get(("DataSource", ref))
            if datasource is None:
                raise where.error(
                    f"{path}.metricSourceRef",
                    f"no DataSource named {ref!r} in the OpenSLO files listed under slos:",
                )
            ref_type = text_field(
                datasource.spec, "type", datasource.where, "spec.type", required=True
            )
        source_type = declared or ref_type
        if source_type is None:
            raise where.error(f"{path}.type", "required when no metricSourceRef names a DataSource")
        if declared and ref_type and declared.lower() != ref_type.lower():
            raise where.error(
                f"{path}.type", f"{declared} differs from DataSource {ref}'s {ref_type}"
            )
        query = None
        if is_prometheus(source_type):
            details = mapping(source.get("spec"), where, f"{path}.spec")
            query = text_field(details, "query", where, f"{path}.spec.query", required=True)
        return Metric(source_type, query, ref)


# -- helpers for one SLO ------------------------------------------------------------------


def _budgeting_method(spec: dict[str, Any], where: Where) -> None:
    method = spec.get("budgetingMethod")
    if method == "Occurrences":
        return
    if method is None:
        raise where.error("spec.budgetingMethod", "required (Poise supports Occurrences)")
    if method in OTHER_METHODS:
        raise where.error(
            "spec.budgetingMethod", f"{method} is not supported (Poise budgets by occurrences)"
        )
    raise where.error(
        "spec.budgetingMethod",
        f"unknown method {method!r} (OpenSLO v1 has Occurrences, Timeslices, RatioTimeslices)",
    )


def _rolling_days(match: re.Match[str], where: Where, path: str) -> int:
    number, unit = int(match.group(1)), match.group(2)
    duration = match.group(0)
    if unit in MINUTES_PER_UNIT:
        minutes = number * MINUTES_PER_UNIT[unit]
        if minutes < 1440:
            raise where.error(
                path, f"{duration} is shorter than a day: rolling windows are whole days"
            )
        if minutes % 1440:
            raise where.error(path, f"{duration} is not a whole number of days")
        days = minutes // 1440
    else:
        days = number * DAYS_PER_UNIT[unit]
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise where.error(
            path, f"{duration} is {days} days; rolling windows are 1 to {MAX_WINDOW_DAYS} days"
        )
    return days


def _calendar_unit(duration: str, where: Where, path: str) -> tuple[str, int]:
    if duration not in CALENDAR_UNITS:
        raise where.error(
            path,
            f"a calendar window of {duration} is not supported: use 1M (a month) or 1Q (a quarter)",
        )
    return CALENDAR_UNITS[duration]


def _check_calendar(calendar: dict[str, Any], unit: str, where: Where, path: str) -> None:
    """Poise's calendar windows are UTC months and quarters; refuse other alignments."""
    zone = calendar.get("timeZone")
    if zone is not None and not _is_utc(str(zone), where, f"{path}.calendar.timeZone"):
        raise where.error(
            f"{path}.calendar.timeZone",
            f"{zone} is not supported: Poise aligns calendar windows to UTC months "
            "(use UTC, or a rolling window)",
        )
    start = calendar.get("startTime")
    if start is None:
        return
    when = _start_time(start, where, f"{path}.calendar.startTime")
    aligned = when.day == 1 and (when.hour, when.minute, when.second) == (0, 0, 0)
    if unit == "quarter":
        aligned = aligned and when.month in QUARTER_STARTS
    if not aligned:
        first = "the first day of a quarter" if unit == "quarter" else "the first of a month"
        utc = (
            ""
            if str(start).startswith(f"{when:%Y-%m-%d %H:%M}")
            else f" ({when:%Y-%m-%d %H:%M} UTC)"
        )
        raise where.error(
            f"{path}.calendar.startTime",
            f"{start}{utc} is not midnight on {first}, where Poise's calendar {unit}s start",
        )


def _is_utc(name: str, where: Where, path: str) -> bool:
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise where.error(path, f"unknown time zone {name!r}") from None
    probes = (datetime(2001, 1, 15, tzinfo=UTC), datetime(2001, 7, 15, tzinfo=UTC))
    return all(probe.astimezone(zone).utcoffset() == timedelta(0) for probe in probes)


def _start_time(value: Any, where: Where, path: str) -> datetime:
    """The start as a UTC wall-clock time (`2024-01-01 00:00:00`, quoted or not: SLO files
    are read as poise.yaml is, times as text). A time with an offset (`…Z`, `+02:00`) is
    that instant, so midnight at +02:00 is 22:00 UTC the day before."""
    when = value
    if not isinstance(value, datetime):
        try:
            when = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise where.error(path, f"{value!r} is not a time like 2024-01-01 00:00:00") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _objectives(
    spec: dict[str, Any], where: Where, notes: list[str]
) -> list[tuple[str | None, str | None, float]]:
    """(name suffix, objective title, target) per objective; one objective has no suffix."""
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise where.error("spec.objectives", "required: a list with at least one objective")
    several = len(objectives) > 1
    found: list[tuple[str | None, str | None, float]] = []
    seen: set[str] = set()
    for index, item in enumerate(objectives):
        path = f"spec.objectives[{index}]"
        objective = mapping(item, where, path)
        target = _target(objective, where, path)
        if note := small_percentage(objective.get("targetPercent"), f"{path}.targetPercent"):
            notes.append(where.note(note))
        title = text_field(objective, "name", where, f"{path}.name") or text_field(
            objective, "displayName", where, f"{path}.displayName"
        )
        if not several:
            found.append((None, None, target))
            continue
        if title is None:
            raise where.error(
                f"{path}.displayName",
                "required when an SLO has several objectives (Poise makes one SLO per "
                "objective, named <slo>-<objective>)",
            )
        suffix = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        if not suffix or suffix in seen:
            raise where.error(
                f"{path}.displayName", f"{title!r} does not name it apart from the others"
            )
        seen.add(suffix)
        found.append((suffix, title, target))
    return found


def _target(objective: dict[str, Any], where: Where, path: str) -> float:
    has_target, has_percent = "target" in objective, "targetPercent" in objective
    if has_target and has_percent:
        raise where.error(path, "give target or targetPercent, not both")
    if has_target:
        return fraction(objective["target"], where, f"{path}.target", scale=1)
    if has_percent:
        return fraction(objective["targetPercent"], where, f"{path}.targetPercent", scale=100)
    raise where.error(f"{path}.target", "required (or targetPercent)")


def parse_openslo(text: str, origin: str) -> ParsedSlos:
    """The SLOs in one OpenSLO v1 text (references must resolve within it)."""
    reader = OpenSloReader()
    reader.add_text(text, origin)
    return reader.result()


def load_openslo(paths: list[tuple[Path, str]]) -> ParsedSlos:
    """The SLOs in OpenSLO files given as (path, name to show); references span all of them."""
    reader = OpenSloReader()
    for path, origin in paths:
        reader.add_file(path, origin)
    return reader.result()

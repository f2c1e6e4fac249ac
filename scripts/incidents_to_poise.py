"""Turn an incident.io, FireHydrant or Jira export into a file `poise import --kind incidents` reads.

    python scripts/incidents_to_poise.py --from incident.io export.csv \\
        --service-column "Affected services" --map "Checkout API=checkout" -o incidents.csv
    python scripts/incidents_to_poise.py --from jira jira.csv --timezone Europe/Berlin \\
        --service checkout -o incidents.csv
    poise import --kind incidents incidents.csv

What it does: picks each Poise column from the export's column of that meaning (the
presets below; `--column started_at="Custom field (Impact start)"` overrides one), reads
timestamps (a time without an offset is read in `--timezone`, and refused without one),
maps the export's service names to Poise services, and writes the import columns with
UTC timestamps. What it cannot know is left to you, loudly: a column the export does not
have is left empty with a line on stderr, and a service name not mapped is an error that
lists every unmapped name. See docs/incident-imports.md for the mappings and caveats.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

COLUMNS = (
    "id",
    "service",
    "severity",
    "started_at",
    "detected_at",
    "acknowledged_at",
    "resolved_at",
    "cause",
    "title",
    "postmortem_url",
)
TIMES = ("started_at", "detected_at", "acknowledged_at", "resolved_at")
OFFSET = r"(?:Z|z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class Preset:
    """Where each Poise column comes from: candidate export columns, the first present wins."""

    prefix: str  # ids become `<prefix>:<their id>`, so they never collide with other sources
    sources: dict[str, tuple[str, ...]]
    date_format: str | None = None  # None: ISO 8601


PRESETS = {
    # incident.io's CSV export: one column per field and per lifecycle timestamp, named as
    # configured in the organisation (Settings > Lifecycle).
    "incident.io": Preset(
        "incident.io",
        {
            "id": ("Reference", "ID"),
            "title": ("Name",),
            "severity": ("Severity",),
            "started_at": ("Impact started at", "Reported at", "Created at"),
            "detected_at": ("Reported at", "Created at"),
            "acknowledged_at": ("Accepted at",),
            "resolved_at": ("Resolved at", "Closed at"),
            "postmortem_url": ("Postmortem document URL", "Post-mortem document URL"),
        },
    ),
    # FireHydrant's REST API (`GET /v1/incidents`): milestones are a list of
    # {type, occurred_at}; `milestone:<type>` names the time of one.
    "firehydrant": Preset(
        "firehydrant",
        {
            "id": ("number", "id"),
            "title": ("name",),
            "severity": ("severity",),
            "started_at": ("milestone:started", "started_at", "created_at"),
            "detected_at": ("milestone:detected",),
            "acknowledged_at": ("milestone:acknowledged",),
            "resolved_at": ("milestone:resolved",),
        },
    ),
    # Jira's CSV export ("Export > CSV (all fields)"): dates in the exporting user's time
    # zone and display format, without an offset.
    "jira": Preset(
        "jira",
        {
            "id": ("Issue key",),
            "title": ("Summary",),
            "severity": ("Priority",),
            "started_at": ("Created",),
            "detected_at": ("Created",),
            "resolved_at": ("Resolved",),
        },
        date_format="%d/%b/%y %I:%M %p",
    ),
}


class ConversionError(Exception):
    """A problem with the export or the options, said in one line."""


def read_export(path: Path) -> pd.DataFrame:
    """A CSV, a JSON array, a JSON object with a `data` list, or JSON Lines; all as text."""
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    text = path.read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
        records = loaded.get("data", loaded) if isinstance(loaded, dict) else loaded
    except json.JSONDecodeError:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not isinstance(records, list):
        raise ConversionError(f"{path}: expected a list of incidents")
    return pd.DataFrame([_flatten(record) for record in records])


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    flat = {key: value for key, value in record.items() if not isinstance(value, list | dict)}
    severity = record.get("severity")
    if isinstance(severity, dict):  # {"name": "SEV1", ...} in some APIs
        flat["severity"] = severity.get("name") or severity.get("slug")
    for milestone in record.get("milestones") or []:
        if isinstance(milestone, dict) and milestone.get("type") and milestone.get("occurred_at"):
            flat.setdefault(f"milestone:{milestone['type']}", milestone["occurred_at"])
    return flat


def _times(values: pd.Series, column: str, zone: str | None, date_format: str | None) -> pd.Series:
    text = values.fillna("").astype(str).str.strip()
    present = text != ""
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if not present.any():
        return parsed
    with_offset = text[present].str.contains(OFFSET, regex=True)
    if with_offset.any() and not with_offset.all():
        raise ConversionError(f"{column}: some times have an offset and some do not")
    if not with_offset.any() and not zone:
        raise ConversionError(
            f"{column}: times such as {text[present].iloc[0]!r} have no offset: pass "
            "--timezone, the zone the export was written in (Jira: the exporting user's zone)"
        )
    try:
        moments = pd.to_datetime(
            text[present], format=date_format or "ISO8601", utc=bool(with_offset.all())
        )
        if not with_offset.any():
            moments = moments.dt.tz_localize(zone, ambiguous="raise", nonexistent="raise")
    except (ValueError, TypeError) as exc:  # pandas' time zone errors are ValueErrors
        raise ConversionError(f"{column}: cannot read the times ({exc})") from None
    parsed[present] = moments.dt.tz_convert("UTC")
    return parsed


def convert(
    export: pd.DataFrame,
    preset: Preset,
    *,
    service: str | None = None,
    service_column: str | None = None,
    service_map: dict[str, str] | None = None,
    overrides: dict[str, str] | None = None,
    zone: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The export as Poise import rows, and the notes on what was left empty."""
    notes: list[str] = []
    chosen: dict[str, list[str]] = {}
    for name in COLUMNS:
        override = (overrides or {}).get(name)
        if override is not None and override not in export.columns:
            raise ConversionError(f"--column {name}: the export has no column {override!r}")
        candidates = (override,) if override else preset.sources.get(name, ())
        chosen[name] = [column for column in candidates if column in export.columns]
    if not chosen["id"]:
        raise ConversionError(f"no id column: expected one of {preset.sources['id']}")
    out = pd.DataFrame(index=export.index)
    for name in COLUMNS:
        columns = chosen[name]
        if name == "service":
            continue
        if not columns:
            if name in TIMES or name in ("severity", "title", "postmortem_url"):
                notes.append(f"{name}: no such column in the export; left empty")
            out[name] = pd.NaT if name in TIMES else ""
            continue
        # Row by row, the first candidate column with a value (impact start, else reported).
        if name in TIMES:
            parts = [_times(export[c], c, zone, preset.date_format) for c in columns]
            out[name] = _first_present(parts)
        else:
            parts = [export[c].fillna("").astype(str).replace("", None) for c in columns]
            out[name] = _first_present(parts).fillna("")
    out["id"] = preset.prefix + ":" + out["id"]
    out["service"] = _services(export, service, service_column, service_map or {})
    missing_start = out["started_at"].isna()
    if missing_start.any():
        raise ConversionError(
            f"started_at: empty for {', '.join(out.loc[missing_start, 'id'].head(5))}: "
            "every incident needs a start"
        )
    for name in TIMES:
        out[name] = out[name].map(lambda t: "" if pd.isna(t) else t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return out[list(COLUMNS)], notes


def _first_present(parts: list[pd.Series]) -> pd.Series:
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.where(combined.notna(), part)
    return combined


def _services(
    export: pd.DataFrame,
    service: str | None,
    service_column: str | None,
    service_map: dict[str, str],
) -> pd.Series:
    if service is not None:
        return pd.Series(service, index=export.index)
    if service_column is None:
        raise ConversionError("say which Poise service: --service NAME or --service-column COLUMN")
    if service_column not in export.columns:
        raise ConversionError(f"--service-column: the export has no column {service_column!r}")
    # incident.io lists several affected services in one cell; the first mapped one counts.
    names = export[service_column].fillna("").astype(str)
    mapped = names.map(
        lambda cell: next(
            (service_map.get(p.strip(), "") for p in cell.split(",") if p.strip() in service_map),
            "",
        )
    )
    unmapped = sorted(set(names[mapped == ""]))
    if unmapped:
        raise ConversionError(
            f"no Poise service for {', '.join(repr(n) for n in unmapped)}: add --map NAME=SERVICE"
        )
    return mapped


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise ConversionError(f"{option} {value!r}: expected NAME=VALUE")
        pairs[name.strip()] = target.strip()
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="tool", required=True, choices=sorted(PRESETS))
    parser.add_argument("export", type=Path, help="the export: CSV, JSON or JSON Lines")
    parser.add_argument("-o", "--output", type=Path, default=Path("incidents.csv"))
    parser.add_argument("--service", help="put every incident on this Poise service")
    parser.add_argument("--service-column", help="the export's column naming the service")
    parser.add_argument("--map", action="append", default=[], help="their service=Poise service")
    parser.add_argument("--column", action="append", default=[], help="poise column=their column")
    parser.add_argument("--timezone", help="IANA zone of times written without an offset")
    parser.add_argument(
        "--date-format",
        help="strftime format of the export's times (Jira: %%d/%%b/%%y %%I:%%M %%p)",
    )
    args = parser.parse_args(argv)
    try:
        rows, notes = convert(
            read_export(args.export),
            replace(
                PRESETS[args.tool], date_format=args.date_format or PRESETS[args.tool].date_format
            ),
            service=args.service,
            service_column=args.service_column,
            service_map=_pairs(args.map, "--map"),
            overrides=_pairs(args.column, "--column"),
            zone=args.timezone,
        )
    except (ConversionError, OSError, ValueError) as exc:
        print(f"incidents_to_poise: {args.export}: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"incidents_to_poise: {note}", file=sys.stderr)
    rows.to_csv(args.output, index=False)
    print(f"incidents_to_poise: {len(rows)} incidents written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

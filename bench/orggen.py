"""A deterministic organisation-scale import set, in the exact columns `poise import` reads.

The same arguments always give byte-identical files. The rows are shaped so the metrics
have something to say: deployments ship about three changes each (a failed attempt's
changes ship again with the service's next production deployment, and a staging
deployment ships what the next production one will), a few production deployments are
bad (undone by a rollback, fixed by a remediation, and/or blamed by an incident), some
incidents have an external cause and some none (left to inference), and every SLI bucket
has good ≤ total with error bursts on top of the SLO's normal error rate.

    python bench/orggen.py OUTDIR [--deployments N ...]

Everything is vectorised with numpy; the default size writes in seconds.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import csv

KINDS = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")
END = datetime(2026, 10, 1, tzinfo=UTC)
HOUR = 3600
SEVERITIES = np.array(["SEV1", "SEV2", "SEV3", "SEV4"])
SEVERITY_WEIGHTS = np.array([0.05, 0.15, 0.4, 0.4])
OTHER_CAUSES = np.array(["external", "capacity", "dependency", "configuration"])
TOIL_CATEGORIES = np.array(["manual-deploys", "tickets", "access-requests", "restarts", "cleanup"])
# Authors commit from these offsets, so the files carry more than Z.
OFFSETS_SECONDS = np.array([0, 3600, 7200, -5 * HOUR, 19800, -8 * HOUR])
OFFSET_TEXTS = np.array(["Z", "+01:00", "+02:00", "-05:00", "+05:30", "-08:00"])


def _iso(seconds: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Epoch seconds as ISO 8601 text with Z (or, per row, an offset index into OFFSET_TEXTS).

    Built as bytes, because numpy's string functions are slow at millions of rows.
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    if offsets is None:
        offsets = np.zeros(len(seconds), dtype=np.int64)
    local = (seconds + OFFSETS_SECONDS[offsets]).astype("datetime64[s]")
    stamp = np.datetime_as_string(local, unit="s").astype("S19").view(np.uint8)
    suffix = OFFSET_TEXTS.astype("S6").view(np.uint8).reshape(-1, 6)
    text = np.zeros((len(seconds), 25), dtype=np.uint8)
    text[:, :19] = stamp.reshape(-1, 19)
    text[:, 19:] = suffix[offsets]
    return text.view("S25").ravel()


def _hex(rng: np.random.Generator, count: int, width: int = 40) -> np.ndarray:
    raw = rng.integers(0, 16, size=(count, width), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[raw]
    return digits.view(f"S{width}").ravel().astype(str)


def _labels(prefix: str, count: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(count).astype(str), width))


def _join_ids(owner: np.ndarray, ids: np.ndarray, size: int) -> np.ndarray:
    """Space-separated `ids` per owner index (0..size-1), in the order given."""
    order = np.argsort(owner, kind="stable")
    owner, ids = owner[order], ids[order].tolist()
    starts = np.searchsorted(owner, np.arange(size), side="left").tolist()
    ends = np.searchsorted(owner, np.arange(size), side="right").tolist()
    return np.array([" ".join(ids[a:b]) for a, b in zip(starts, ends, strict=True)], dtype=object)


def _next_in_group(group: np.ndarray, order_key: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """For every row, the index of the next eligible row of the same group (-1 if none).

    Rows are ordered by (group, order_key); "next" is strictly later in that order.
    """
    order = np.lexsort((order_key, group))
    frame = pd.DataFrame(
        {
            "group": group[order],
            "candidate": np.where(eligible[order], order, -1).astype(float),
        }
    )
    frame.loc[frame["candidate"] < 0, "candidate"] = np.nan
    following = frame.groupby("group", sort=False)["candidate"].shift(-1)
    following = following.groupby(frame["group"], sort=False).bfill()
    result = np.full(len(group), -1, dtype=np.int64)
    result[order] = following.fillna(-1).to_numpy(dtype=np.int64)
    return result


def _arrow(values: np.ndarray | pa.Array) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    if values.dtype.kind == "S":  # bytes to arrow binary, then a free cast to text
        return pa.array(values).cast(pa.string())
    return pa.array(values)


def _write(columns: dict[str, np.ndarray | pa.Array], path: Path) -> Path:
    """Plain CSV (no quoting: no value holds a comma, quote or newline); empty text is empty."""
    table = pa.table([_arrow(values) for values in columns.values()], names=list(columns))
    with path.open("wb") as handle:
        handle.write((",".join(columns) + "\n").encode())
        csv.write_csv(table, handle, csv.WriteOptions(include_header=False, quoting_style="none"))
    return path


def write_org(
    folder: str | Path,
    *,
    teams: int = 50,
    services: int = 500,
    deployments: int = 200_000,
    changes: int = 600_000,
    incidents: int = 20_000,
    slos: int = 1000,
    sli_days: int = 90,
    sli_samples: int | None = None,
    days: int = 365,
    end: datetime = END,
    seed: int = 1,
) -> dict[str, Path]:
    """Write the import set as CSV files in `folder`; returns {kind: path} in import order.

    `sli_samples` fixes the number of SLI rows exactly (spread over the SLOs, hourly,
    ending at `end`); without it every SLO gets `sli_days` of hourly buckets.
    """
    if changes < deployments:
        raise ValueError("every deployment ships at least one change: changes >= deployments")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    end_s = int(end.timestamp())
    start_s = end_s - days * 86400
    paths: dict[str, Path] = {}

    # --- services: a few big teams, a long tail of small ones -----------------------------
    team_names = _labels("team-", teams, 2)
    service_names = _labels("svc-", services, 3)
    team_of = np.sort(rng.integers(0, teams, services))
    team_of[:teams] = np.arange(min(teams, services))  # every team owns a service
    team_of = np.sort(team_of)
    paths["services"] = _write(
        {"name": service_names, "team": team_names[team_of]}, out / "services.csv"
    )

    # --- deployments: busy services deploy many times a day, quiet ones monthly ------------
    weights = rng.lognormal(0.0, 1.2, services)
    dep_service = rng.choice(services, size=deployments, p=weights / weights.sum())
    dep_time = rng.integers(start_s, end_s, deployments)
    order = np.lexsort((dep_time, dep_service))
    dep_service, dep_time = dep_service[order], dep_time[order]
    staging = rng.random(deployments) < 0.15
    failed_attempt = ~staging & (rng.random(deployments) < 0.05)
    production_ok = ~staging & ~failed_attempt
    environment = np.where(staging, "staging", "production")
    status = np.where(failed_attempt, "failure", "success")
    dep_ids = _labels("d", deployments, 7)
    dep_sha = _hex(rng, deployments)
    rows = np.arange(deployments)

    # Bad production deployments: the next production deployment of the service undoes
    # (rollback) or fixes (remediation) some of them, soon after.
    next_ok = _next_in_group(dep_service, dep_time, production_ok)
    bad = production_ok & (rng.random(deployments) < 0.04) & (next_ok >= 0)
    recovered = bad & (rng.random(deployments) < 0.6)
    fixer = next_ok[recovered]
    _, first = np.unique(fixer, return_index=True)  # one fixer undoes one bad deployment
    undone, fixer = rows[recovered][first], fixer[first]
    recovery = rng.lognormal(np.log(1.5 * HOUR), 1.0, len(fixer)).astype(np.int64) + 60
    dep_time[fixer] = np.minimum(dep_time[fixer], dep_time[undone] + recovery)
    rollback_of = np.full(deployments, "", dtype=object)
    remediation_of = np.full(deployments, "", dtype=object)
    is_rollback = rng.random(len(fixer)) < 0.5
    rollback_of[fixer[is_rollback]] = dep_ids[undone[is_rollback]]
    remediation_of[fixer[~is_rollback]] = dep_ids[undone[~is_rollback]]
    next_ok = _next_in_group(dep_service, dep_time, production_ok)  # times moved

    # --- changes: each non-staging deployment ships at least one, about three on average ---
    shippers = rows[~staging]
    if changes < len(shippers):
        raise ValueError("too few changes for the deployments that ship them")
    extra = rng.choice(shippers, size=changes - len(shippers))
    change_dep = np.sort(np.concatenate([shippers, extra]))
    change_service = dep_service[change_dep]
    lead = rng.lognormal(np.log(20 * HOUR), 1.3, changes).astype(np.int64) + 120
    committed = dep_time[change_dep] - lead
    merged = committed + (lead * rng.uniform(0.3, 0.95, changes)).astype(np.int64)
    change_ids = _hex(rng, changes)
    authors = np.char.add("dev", np.char.zfill(rng.integers(0, 4000, changes).astype(str), 4))
    author_offset = rng.integers(0, len(OFFSET_TEXTS), changes)
    has_pr = rng.random(changes) < 0.85
    pr_number = np.where(has_pr, np.arange(changes) + 1, 0)
    paths["changes"] = _write(
        {
            "id": change_ids,
            "service": service_names[change_service],
            "sha": change_ids,
            "committed_at": _iso(committed, author_offset),
            "merged_at": np.where(has_pr, _iso(merged), b""),
            "pr_number": np.where(has_pr, pr_number.astype(str), ""),
            "title": np.char.add("Change ", np.arange(changes).astype(str)),
            "author": authors,
        },
        out / "changes.csv",
    )

    # Which deployment ships which change: its own; a failed attempt's changes again with
    # the next production deployment; a staging deployment what the next production one ships.
    owner, shipped = [change_dep], [change_ids]
    retry = next_ok[change_dep]
    carried = failed_attempt[change_dep] & (retry >= 0)
    owner.append(retry[carried])
    shipped.append(change_ids[carried])
    next_prod = _next_in_group(dep_service, dep_time, ~staging)
    stage = rows[staging & (next_prod >= 0)]
    link = pd.DataFrame({"owner": change_dep, "id": change_ids})
    staged = link.merge(
        pd.DataFrame({"owner": next_prod[stage], "stage": stage}), on="owner", how="inner"
    )
    owner.append(staged["stage"].to_numpy())
    shipped.append(staged["id"].to_numpy())
    change_list = _join_ids(np.concatenate(owner), np.concatenate(shipped), deployments)
    paths["deployments"] = _write(
        {
            "id": dep_ids,
            "service": service_names[dep_service],
            "environment": environment,
            "deployed_at": _iso(dep_time),
            "status": status,
            "sha": dep_sha,
            "change_ids": change_list,
            "rollback_of": rollback_of,
            "remediation_of": remediation_of,
        },
        out / "deployments.csv",
    )

    # --- incidents: some blamed on a bad deployment, some external, the rest left open ----
    blamed_pool = rows[bad]
    explicit = min(int(incidents * 0.3), len(blamed_pool))
    blamed = rng.permutation(blamed_pool)[:explicit]
    other = incidents - explicit
    inc_service = np.concatenate(
        [dep_service[blamed], rng.choice(services, other, p=weights / weights.sum())]
    )
    started = np.concatenate(
        [
            dep_time[blamed] + rng.integers(60, 6 * HOUR, explicit),
            rng.integers(start_s, end_s - 2 * 86400, other),
        ]
    )
    caused_by = np.concatenate([dep_ids[blamed], np.full(other, "", dtype=object)])
    cause = np.full(incidents, "", dtype=object)
    external = np.concatenate([np.zeros(explicit, bool), rng.random(other) < 0.35])
    cause[external] = rng.choice(OTHER_CAUSES, external.sum())
    detected = started + rng.exponential(5 * 60, incidents).astype(np.int64)
    acknowledged = detected + rng.exponential(8 * 60, incidents).astype(np.int64) + 30
    resolved = acknowledged + rng.lognormal(np.log(2 * HOUR), 1.1, incidents).astype(np.int64)
    severity = rng.choice(SEVERITIES, incidents, p=SEVERITY_WEIGHTS)
    inc_ids = _labels("INC-", incidents, 6)
    serious = np.isin(severity, ["SEV1", "SEV2"])
    paths["incidents"] = _write(
        {
            "id": inc_ids,
            "service": service_names[inc_service],
            "severity": severity,
            "started_at": _iso(started),
            "detected_at": _iso(detected),
            "acknowledged_at": _iso(acknowledged),
            "resolved_at": _iso(resolved),
            "caused_by_deployment": caused_by,
            "cause": cause,
            "title": np.char.add("Elevated errors on ", service_names[inc_service]),
            "postmortem_url": np.where(
                serious, np.char.add("https://wiki.example/postmortems/", inc_ids), ""
            ),
        },
        out / "incidents.csv",
    )

    # --- SLOs: availability and latency per service, round-robin ----------------------------
    slo_service = np.arange(slos) % services
    slo_kind = np.where(np.arange(slos) // services % 2 == 0, "availability", "latency")
    slo_names = np.char.add(np.char.add(service_names[slo_service], "-"), slo_kind)
    beyond_two = np.arange(slos) >= 2 * services  # more SLOs than two per service: number them
    slo_names[beyond_two] = np.char.add(
        slo_names[beyond_two], np.arange(slos)[beyond_two].astype(str)
    )
    target = rng.choice(np.array([0.99, 0.995, 0.999, 0.9995]), slos)
    paths["slos"] = _write(
        {
            "name": slo_names,
            "service": service_names[slo_service],
            "target": target,
            "window_days": rng.choice(np.array([28, 30]), slos),
        },
        out / "slos.csv",
    )

    # --- SLI samples: hourly buckets, diurnal traffic, errors around the SLO's budget -------
    total_samples = sli_samples if sli_samples is not None else slos * sli_days * 24
    per_slo = np.full(slos, total_samples // slos, dtype=np.int64)
    per_slo[: total_samples % slos] += 1
    slo_of = np.repeat(np.arange(slos), per_slo)
    first_of = np.repeat(np.cumsum(per_slo) - per_slo, per_slo)
    hour_back = per_slo[slo_of] - (np.arange(total_samples) - first_of)  # 1 = last hour
    bucket = end_s - hour_back * HOUR
    base = rng.lognormal(np.log(20_000), 1.0, slos)[slo_of]
    diurnal = 1.0 + 0.6 * np.sin(2 * np.pi * ((bucket // HOUR) % 24) / 24.0)
    total = rng.poisson(base * diurnal).astype(np.int64)
    error_rate = (1 - target[slo_of]) * rng.gamma(0.8, 0.6, total_samples)
    burst = rng.random(total_samples) < 0.002
    error_rate = np.clip(np.where(burst, error_rate * 40, error_rate), 0, 1)
    good = total - rng.binomial(total, error_rate)
    paths["sli"] = _write(
        {
            "slo": pa.array(slo_names).take(pa.array(slo_of)),
            "timestamp": _iso(bucket),
            "good": good,
            "total": total,
        },
        out / "sli.csv",
    )

    # --- toil: a few categories per team on working days of the last quarter --------------
    day_count = 91
    first_day = np.datetime64(end.date()) - np.timedelta64(day_count, "D")
    day_values = first_day + np.arange(day_count)
    weekday = (day_values.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 0 = Monday
    working = day_values[weekday < 5]
    grid_team, grid_day, grid_cat = np.meshgrid(
        np.arange(teams), np.arange(len(working)), np.arange(len(TOIL_CATEGORIES)), indexing="ij"
    )
    keep = rng.random(grid_team.size) < 0.35
    paths["toil"] = _write(
        {
            "team": team_names[grid_team.ravel()[keep]],
            "date": np.datetime_as_string(working[grid_day.ravel()[keep]], unit="D"),
            "hours": np.round(rng.gamma(2.0, 0.75, int(keep.sum())), 2),
            "category": TOIL_CATEGORIES[grid_cat.ravel()[keep]],
        },
        out / "toil.csv",
    )
    return {kind: paths[kind] for kind in KINDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    for name, default in (
        ("teams", 50),
        ("services", 500),
        ("deployments", 200_000),
        ("changes", 600_000),
        ("incidents", 20_000),
        ("slos", 1000),
        ("sli-days", 90),
        ("sli-samples", None),
        ("days", 365),
        ("seed", 1),
    ):
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k != "outdir"}
    paths = write_org(args.outdir, **options)
    for kind, path in paths.items():
        with path.open("rb") as handle:
            rows = sum(1 for _ in handle) - 1
        print(f"{kind:12} {rows:>10,} rows  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

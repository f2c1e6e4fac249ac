"""Certificates as availability risks: expired, expiring soon, failing verification, or not
answering at the last check (rows of `certificates`, written by collectors/tls.py).

A certificate is an availability risk when, at `now`:

- `expired`: its `not_after` has passed;
- `expiring`: it expires within `within_days` (30 by default);
- `invalid`: it does not verify for another reason (unknown CA, self-signed, wrong name);
- `unreachable`: the last check read no certificate (the one shown, if any, is older).

`days_left` is (not_after − now) in days, negative once expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, select

from metrics.frames import in_scope, read
from metrics.model import Scope
from poise.timeutil import ensure_utc
from poise.warehouse import schema

EXPIRY_WARNING_DAYS = 30
RISKS = ("expired", "expiring", "invalid", "unreachable")
URGENCY = {"expired": 0, "expiring": 0, "invalid": 1, "unreachable": 2}  # then by days left
COLUMNS = [
    "id",
    "service",
    "team",
    "host",
    "port",
    "server_name",
    "subject",
    "issuer",
    "dns_names",
    "not_before",
    "not_after",
    "verified",
    "verify_error",
    "error",
    "checked_at",
    "read_at",
]
# Verification failures that only restate the expiry (OpenSSL's wording).
EXPIRY_WORDS = ("certificate has expired", "certificate is not yet valid")


def load(connection: Connection, scope: Scope) -> pd.DataFrame:
    """The stored certificate of every checked endpoint in scope, with the service's team."""
    c, s = schema.certificates, schema.services
    statement = (
        select(*(c.c[name] for name in COLUMNS if name != "team"), s.c.team)
        .select_from(c.outerjoin(s, s.c.name == c.c.service))
        .order_by(c.c.service, c.c.id)
    )
    if not scope.is_org:
        statement = statement.where(in_scope(s, scope))
    frame = read(connection, statement, times=["not_before", "not_after", "checked_at", "read_at"])
    return frame[COLUMNS] if len(frame) else pd.DataFrame(columns=COLUMNS)


def _risk(row: pd.Series, now: pd.Timestamp, horizon: pd.Timestamp) -> str | None:
    not_after = row["not_after"]
    if pd.notna(not_after) and not_after <= now:
        return "expired"
    if pd.notna(not_after) and not_after <= horizon:
        return "expiring"
    verified = row["verified"]
    if pd.notna(verified) and not bool(verified):
        error = str(row["verify_error"] or "")
        if not any(word in error for word in EXPIRY_WORDS):
            return "invalid"
    if pd.notna(row["error"]) and row["error"]:
        return "unreachable"
    return None


def with_risk(
    certificates: pd.DataFrame, now: datetime, within_days: int = EXPIRY_WARNING_DAYS
) -> pd.DataFrame:
    """Every certificate with `days_left` and `risk` (None when it is fine)."""
    frame = certificates.copy()
    # an empty frame has object columns; the subtraction below needs datetimes
    frame["not_after"] = pd.to_datetime(frame["not_after"], utc=True)
    moment = pd.Timestamp(ensure_utc(now))
    horizon = moment + timedelta(days=within_days)
    frame["days_left"] = (frame["not_after"] - moment).dt.total_seconds() / 86400.0
    risks = [_risk(row, moment, horizon) for _, row in frame.iterrows()]
    frame["risk"] = pd.Series(risks, index=frame.index, dtype="object")
    return frame


def expiry_risks(
    certificates: pd.DataFrame, now: datetime, within_days: int = EXPIRY_WARNING_DAYS
) -> pd.DataFrame:
    """The certificates that are availability risks at `now`, the most urgent first
    (expired and soonest to expire, then invalid, then unreachable)."""
    frame = with_risk(certificates, now, within_days)
    risky = frame[frame["risk"].notna()].copy()
    risky["order"] = risky["risk"].map(URGENCY)
    risky = risky.sort_values(["order", "days_left", "id"], na_position="last")
    return risky.drop(columns="order").reset_index(drop=True)


def describe(row: pd.Series) -> str:
    """One line for a risky certificate: `checkout.example.com:443 (checkout) expires in 12 days
    (2026-12-09)`."""
    where = f"{row['id']} ({row['service']})"
    risk = row["risk"]
    if risk == "expired":
        return f"{where} expired {abs(row['days_left']):.0f} days ago ({row['not_after']:%Y-%m-%d})"
    if risk == "expiring":
        days = row["days_left"]
        when = "in less than a day" if days < 1 else f"in {days:.0f} days"
        return f"{where} expires {when} ({row['not_after']:%Y-%m-%d})"
    if risk == "invalid":
        return f"{where} does not verify: {row['verify_error']}"
    return f"{where} did not answer at the last check: {row['error']}"

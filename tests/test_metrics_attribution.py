"""`refresh_attributions` stores every incident's attribution with its reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from metrics_org import Org, at
from sqlalchemy import Engine, select

from metrics import Settings
from metrics.attribution import refresh_attributions
from poise.warehouse import schema


def test_refresh_writes_method_and_reason_for_every_incident(
    warehouse: Engine, tmp_path: Path
) -> None:
    org = Org().service("checkout", "payments")
    org.deploy("d1", "checkout", at(days=1))
    org.deploy("d2", "checkout", at(days=5))
    org.incident("INC-1", "checkout", at(days=1, hours=3))
    org.incident("INC-2", "checkout", at(days=9), caused_by="d2")
    org.incident("INC-3", "checkout", at(days=1, hours=4), cause="external")
    org.load(warehouse, tmp_path)

    assert refresh_attributions(warehouse, Settings()) == {
        "explicit": 1,
        "inferred": 1,
        "unattributed": 1,
    }
    a = schema.attributions
    with warehouse.connect() as connection:
        rows = {
            row.incident_id: row for row in connection.execute(select(a).order_by(a.c.incident_id))
        }
    assert (rows["INC-1"].deployment_id, rows["INC-1"].method) == ("d1", "inferred")
    assert rows["INC-1"].reason == (
        "d1 is the latest production deployment of checkout in the 24 h before INC-1 "
        "started (deployed 3 h before it)"
    )
    assert (rows["INC-2"].deployment_id, rows["INC-2"].method) == ("d2", "explicit")
    assert rows["INC-2"].reason == "INC-2 names d2 in caused_by_deployment"
    assert (rows["INC-3"].deployment_id, rows["INC-3"].method) == (None, "none")
    assert "cause is 'external'" in rows["INC-3"].reason
    computed = rows["INC-1"].computed_at

    # again: nothing changes, not even computed_at; a narrower window changes INC-1
    refresh_attributions(warehouse, Settings())
    with warehouse.connect() as connection:
        again = connection.execute(select(a).where(a.c.incident_id == "INC-1")).one()
    assert again.computed_at == computed
    refresh_attributions(warehouse, Settings(attribution_window=timedelta(hours=2)))
    with warehouse.connect() as connection:
        narrow = connection.execute(select(a).where(a.c.incident_id == "INC-1")).one()
    assert (narrow.method, narrow.deployment_id) == ("none", None)

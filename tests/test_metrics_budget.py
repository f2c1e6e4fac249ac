"""Budget totals per group: the fsum per group gives what pandas' own aggregation gives."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.budget import _totals, summarise

SHARES = st.one_of(st.none(), st.floats(0, 2, allow_nan=False), st.just(0.1), st.just(0.2))


def _plain_totals(frame: pd.DataFrame, keys: list[str], id_column: str, count_key: str):
    """The straightforward version: a pandas aggregation calling math.fsum per group."""
    shares = pd.to_numeric(frame["budget_share"])
    grouped = frame.assign(budget_share=shares).groupby(keys, sort=True)
    out = grouped.agg(
        **{count_key: (id_column, "nunique")},
        bad_events=("bad_events", math.fsum),
        budget_share=("budget_share", math.fsum),
    )
    unknown = shares.isna().groupby([frame[k] for k in keys]).any()
    out["budget_share"] = (
        out["budget_share"].astype(object).where(~unknown.reindex(out.index), None)
    )
    return out.reset_index()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["d-2", "d-1", "d-10", None]),
            st.sampled_from(["slo-b", "slo-a"]),
            st.sampled_from(["i-1", "i-2", "i-3", None]),
            st.floats(0, 1e6, allow_nan=False),
            SHARES,
        ),
        min_size=1,
        max_size=30,
    )
)
def test_totals_match_the_plain_aggregation(rows: list[tuple]) -> None:
    frame = pd.DataFrame(
        rows, columns=["deployment_id", "slo", "incident_id", "bad_events", "budget_share"]
    ).astype({"budget_share": object})
    for keys, id_column, count_key in (
        (["deployment_id", "slo"], "incident_id", "incidents"),
        (["slo"], "deployment_id", "deployments"),
    ):
        ours = _totals(frame, keys, id_column, count_key)
        theirs = _plain_totals(frame, keys, id_column, count_key)
        pd.testing.assert_frame_equal(ours, theirs)


def test_an_unknown_share_makes_the_slo_total_unknown() -> None:
    frame = pd.DataFrame(
        {
            "incident_id": ["i-1", "i-2", "i-3"],
            "slo": ["a", "a", "b"],
            "bad_events": [1.0, 2.0, 3.0],
            "budget_share": [0.1, None, 0.2],
        }
    )
    assert summarise(frame, "incident_id", "incidents") == {
        "a": {"incidents": 2, "bad_events": 3.0, "budget_share": None},
        "b": {"incidents": 1, "bad_events": 3.0, "budget_share": 0.2},
    }

"""Long-short sorts and the bond market factor against a slow, obviously-correct reference."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesbond as bb
from bayesbond.errors import DataError


def _reference(long, signal, n_groups, weighting, within, min_bonds):
    """Row-by-row reference: merge month-t returns with month-(t-1) characteristics."""
    prev = long[["date", "bond", signal, "weight", "rating"]].copy()
    prev["date"] = prev["date"] + pd.offsets.MonthEnd(1)
    cur = long[["date", "bond", "ret"]]
    m = cur.merge(prev, on=["date", "bond"], how="inner")
    m = m[m["ret"].notna() & m[signal].notna()]
    if weighting == "value":
        m = m[m["weight"].notna() & (m["weight"] > 0)]
    else:
        m = m.assign(weight=1.0)
    if within:
        m = m[m["rating"].notna()]
        m = m.assign(group=[bb.rating_bucket(r) for r in m["rating"]])
        groups = ["IG+", "IG-", "HY"]
    else:
        m = m.assign(group="all")
        groups = ["all"]
    out = {}
    for date in sorted(long["date"].unique())[1:]:
        month = m[m["date"] == date]
        spreads, ok = [], True
        for g in groups:
            sub = month[month["group"] == g].sort_values([signal, "bond"])
            n = len(sub)
            legs = {}
            for which, target in (("low", 0), ("high", n_groups - 1)):
                rows = [i for i in range(n) if (i * n_groups) // n == target]
                leg = sub.iloc[rows]
                if len(leg) < min_bonds:
                    ok = False
                    break
                legs[which] = (leg["weight"] * leg["ret"]).sum() / leg["weight"].sum()
            if not ok:
                break
            spreads.append(legs["high"] - legs["low"])
        out[date] = float(np.mean(spreads)) if ok else np.nan
    return pd.Series(out)


@pytest.fixture(scope="module")
def sim():
    return bb.datasets.simulate_panel(n_bonds=150, n_dates=30, seed=5, missing=0.15, migration=0.05)


@pytest.mark.parametrize(
    "n_groups, weighting, within",
    [(3, "value", None), (3, "value", "rating_bucket"), (5, "equal", "rating_bucket"),
     (2, "equal", None)],
)  # fmt: skip
def test_matches_reference(sim, n_groups, weighting, within):
    long = sim.panel.to_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = bb.factors.long_short(
            sim.panel, "spread", n_groups=n_groups, weighting=weighting, within=within, min_bonds=3
        )
    ref = _reference(long, "spread", n_groups, weighting, within, 3)
    assert got.index.equals(pd.DatetimeIndex(ref.index))
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)
    assert got.notna().sum() > 20


def test_no_look_ahead():
    sim = bb.datasets.simulate_panel(n_bonds=120, n_dates=24, seed=8)
    long = sim.panel.to_frame()
    # signal at t equal to next month's return: knowing it at t-1... is exactly the return at t
    nxt = long.sort_values(["bond", "date"]).groupby("bond")["ret"].shift(-1)
    same = long["ret"]
    p_next = bb.BondPanel.from_frame(long.assign(spread=nxt.reindex(long.index).fillna(0.0)))
    p_same = bb.BondPanel.from_frame(long.assign(spread=same))
    f_next = bb.factors.long_short(p_next, "spread", min_bonds=5)
    f_same = bb.factors.long_short(p_same, "spread", min_bonds=5)
    assert f_next.iloc[:-1].min() > 0  # a perfect predictor known at t-1 always earns
    assert abs(f_same.mean()) < f_next.mean() / 3  # this month's return is not used


def test_thin_months_are_nan_and_reported(sim):
    with pytest.warns(UserWarning, match="fewer than 25 bonds"):
        f = bb.factors.long_short(sim.panel, "spread", within="rating_bucket", min_bonds=25)
    assert f.isna().any()
    assert set(f.index[f.isna()]) == set(f.attrs["thin_months"])
    counts = f.attrs["counts"]
    thin_rows = counts.loc[f.attrs["thin_months"]]
    assert (thin_rows.min(axis=1) < 25).all()
    assert (counts.drop(index=f.attrs["thin_months"]).min(axis=1) >= 25).all()


def test_bucket_sort_uses_lagged_bucket():
    # b0 migrates from AA (IG+) to B (HY) in March: March still sorts it with IG+, April with HY
    dates = pd.date_range("2020-01-31", periods=4, freq="ME")
    base = {"b0": "AA", "b1": "AA", "b2": "AA", "b3": "BB", "b4": "BB", "b5": "BB",
            "b6": "BBB", "b7": "BBB"}  # fmt: skip
    rows = []
    for j, (bond, rating) in enumerate(base.items()):
        for i, d in enumerate(dates):
            r = "B" if (bond == "b0" and i >= 2) else rating
            rows.append(
                {"date": d, "bond": bond, "ret": 0.01 * j + 0.001 * i, "rating": r,
                 "weight": 1.0 + j, "spread": float(j % 3)}
            )  # fmt: skip
    p = bb.BondPanel.from_frame(pd.DataFrame(rows))
    f = bb.factors.long_short(p, "spread", n_groups=2, within="rating_bucket", min_bonds=1)
    ref = _reference(p.to_frame(), "spread", 2, "value", True, 1)
    np.testing.assert_allclose(f.to_numpy(), ref.to_numpy())
    assert f.notna().all()
    c = f.attrs["counts"]
    size = {g: c.loc[:, (g, "low")] + c.loc[:, (g, "high")] for g in ("IG+", "HY")}
    assert size["IG+"].loc["2020-03-31"] == 3 and size["HY"].loc["2020-03-31"] == 3
    assert size["IG+"].loc["2020-04-30"] == 2 and size["HY"].loc["2020-04-30"] == 4


def test_market_factor(sim):
    rf = pd.Series(0.001, index=sim.panel.dates)
    cm = bb.factors.market(sim.panel, rf)
    long = sim.panel.to_frame()
    prev = long[["date", "bond", "weight"]].assign(date=long["date"] + pd.offsets.MonthEnd(1))
    m = long[["date", "bond", "ret"]].merge(prev, on=["date", "bond"]).dropna()
    ref = m.groupby("date").apply(
        lambda g: (g["weight"] * g["ret"]).sum() / g["weight"].sum(), include_groups=False
    )
    np.testing.assert_allclose(cm.loc[ref.index], ref - 0.001, rtol=1e-12)
    assert cm.name == "CMKT" and cm.index[0] == sim.panel.dates[1]
    with pytest.raises(DataError, match="rf has no value"):
        bb.factors.market(sim.panel, rf.iloc[:-3])
    ew = bb.factors.market(sim.panel, 0.0, weighting="equal")
    assert ew.index.equals(cm.index)


def test_bad_arguments(sim):
    with pytest.raises(DataError, match="no signal 'carry'"):
        bb.factors.long_short(sim.panel, "carry")
    with pytest.raises(DataError, match="weighting"):
        bb.factors.long_short(sim.panel, "spread", weighting="cap")
    bare = bb.BondPanel.from_frame(sim.panel.to_frame().drop(columns=["weight", "rating"]))
    with pytest.raises(DataError, match="weights"):
        bb.factors.long_short(bare, "spread")
    with pytest.raises(DataError, match="ratings"):
        bb.factors.long_short(bare, "spread", weighting="equal", within="rating_bucket")

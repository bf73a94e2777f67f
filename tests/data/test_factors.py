"""Long-short sorts and the bond market factor against a slow, obviously-correct reference."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesbond as bb
from bayesbond.errors import DataError

_SUBSETS = {"IG": {"IG+", "IG-"}, "HY": {"HY"}}


def _formation_legs(long, s, signal, n_groups, weighting, within, breakpoints, subsample,
                    bp_col, return_filter, every=False):  # fmt: skip
    """Row-by-row legs formed at month s (``long``: date -> rows): {group: (low, high)}, or
    every group's portfolio (``every``)."""
    f = long[s]
    f = f[f[signal].notna()]
    if weighting == "value":
        f = f[f["weight"].notna() & (f["weight"] > 0)]
    else:
        f = f.assign(weight=1.0)
    if within or subsample:
        f = f[f["rating"].notna()]
        f = f.assign(group=f["rating"].map(lambda r: bb.rating_bucket(r)))
    if subsample:
        f = f[f["group"].isin(_SUBSETS[subsample])]
    if return_filter is not None:
        lo, hi = return_filter
        f = f[~(f["ret"].notna() & ((f["ret"] < lo) | (f["ret"] > hi)))]
    if within:
        groups = [g for g in ("IG+", "IG-", "HY") if not subsample or g in _SUBSETS[subsample]]
    else:
        f = f.assign(group="all")
        groups = ["all"]
    legs = {}
    for g in groups:
        sub = f[f["group"] == g]
        n = len(sub)
        if breakpoints == "rank":
            mid = sub[signal].rank(method="average").to_numpy() - 1.0  # mean tied position
            grp = np.floor(mid * n_groups / max(n, 1)).astype(int)
        else:
            base = sub if bp_col is None else sub[sub[bp_col]]
            q = base[signal].quantile(np.arange(1, n_groups) / n_groups).to_numpy()
            x = sub[signal].to_numpy()
            grp = (x[:, None] > q[None, :]).sum(axis=1)  # bins closed on the right
        legs[g] = (tuple(sub[grp == j] for j in range(n_groups)) if every
                   else (sub[grp == 0], sub[grp == n_groups - 1]))
    return legs


def _reference(
    long, signal, n_groups, weighting, within, min_bonds, breakpoints="rank", holding=1,
    subsample=None, bp_col=None, return_filter=None, winsorize=None,
):  # fmt: skip
    """Factor month by month from row merges: cohorts formed at t-1..t-K, held at t."""
    dates = sorted(long["date"].unique())
    by_date = {d: g for d, g in long.groupby("date")}
    cache = {}
    out = {}
    for i in range(holding, len(dates)):
        t = dates[i]
        now = by_date[t][by_date[t]["ret"].notna()][["bond", "ret"]]
        if winsorize is not None:
            past = long.loc[long["date"] < t, "ret"].dropna().to_numpy()
            lo, hi = np.percentile(past, winsorize)
            now = now.assign(ret=now["ret"].clip(lo, hi))
        cohort_f, ok = [], True
        for j in range(1, holding + 1):
            s = dates[i - j]
            if s not in cache:
                cache[s] = _formation_legs(
                    by_date, s, signal, n_groups, weighting, within, breakpoints, subsample,
                    bp_col, return_filter,
                )  # fmt: skip
            spreads = []
            for low, high in cache[s].values():
                r = []
                for leg in (low, high):
                    m = leg[["bond", "weight"]].merge(now, on="bond", how="inner")
                    if len(m) < min_bonds:
                        ok = False
                        break
                    r.append((m["weight"] * m["ret"]).sum() / m["weight"].sum())
                if not ok:
                    break
                spreads.append(r[1] - r[0])
            if not ok:
                break
            cohort_f.append(np.mean(spreads))
        out[t] = float(np.mean(cohort_f)) if ok else np.nan
    return pd.Series(out)


@pytest.fixture(scope="module")
def sim():
    return bb.datasets.simulate_panel(n_bonds=150, n_dates=30, seed=5, missing=0.15, migration=0.05)


def _quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return f(*args, **kw)


@pytest.mark.parametrize(
    "n_groups, weighting, within, breakpoints",
    [(3, "value", None, "rank"), (3, "value", "rating_bucket", "rank"),
     (5, "equal", "rating_bucket", "rank"), (2, "equal", None, "rank"),
     (3, "value", None, "percentile"), (5, "value", "rating_bucket", "percentile")],
)  # fmt: skip
def test_matches_reference(sim, n_groups, weighting, within, breakpoints):
    long = sim.panel.to_frame()
    got = _quiet(
        bb.factors.long_short, sim.panel, "spread", n_groups=n_groups, weighting=weighting,
        within=within, min_bonds=3, breakpoints=breakpoints,
    )  # fmt: skip
    ref = _reference(long, "spread", n_groups, weighting, within, 3, breakpoints=breakpoints)
    assert got.index.equals(pd.DatetimeIndex(ref.index))
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)
    assert got.notna().sum() > 20


def test_formation_universe_not_holding_month(sim):
    """Breakpoints use every bond with a signal at t-1, not only those with a return at t."""
    long = sim.panel.to_frame()
    f = _quiet(bb.factors.long_short, sim.panel, "spread", min_bonds=3)
    # the look-ahead universe (bonds that have a return at t), as the old code sorted
    prev = long[["date", "bond", "spread", "weight"]].assign(
        date=long["date"] + pd.offsets.MonthEnd(1)
    )
    m = long[["date", "bond", "ret"]].merge(prev, on=["date", "bond"]).dropna()
    peek = {}
    for d, g in m.groupby("date"):
        g = g.sort_values("spread")
        k = (np.arange(len(g)) * 3) // len(g)
        lo, hi = g[k == 0], g[k == 2]
        peek[d] = (hi["weight"] * hi["ret"]).sum() / hi["weight"].sum() - (
            lo["weight"] * lo["ret"]
        ).sum() / lo["weight"].sum()
    peek = pd.Series(peek).reindex(f.index)
    assert (np.abs(f - peek) > 1e-12).sum() > 20  # with 15% missing, most months differ
    # bonds with a signal at t-1 and no return at t are counted, not re-sorted away
    v = f.attrs["vanished"]
    assert v.to_numpy().sum() > 0
    formed = f.attrs["counts"] + v
    for d in f.index[:5]:
        s = d - pd.offsets.MonthEnd(1)
        n = int(long[(long["date"] == s) & long["spread"].notna()].shape[0])
        # documented leg sizes of the rank rule without ties: ceil(n/G) low, floor(n/G) high
        assert formed.loc[d, ("all", "low")] == -(-n // 3)
        assert formed.loc[d, ("all", "high")] == n // 3


def test_vanished_bond_hand_case():
    # 6 bonds, signal 1..6, two legs; bond c (signal 3) has no return in February
    bonds = list("abcdef")
    rows = [{"date": "2020-01-31", "bond": b, "ret": 0.0, "weight": 1.0, "spread": float(i + 1)}
            for i, b in enumerate(bonds)]  # fmt: skip
    feb = {"a": 0.01, "b": 0.02, "d": 0.04, "e": 0.05, "f": 0.06}
    rows += [{"date": "2020-02-29", "bond": b, "ret": r, "weight": 1.0, "spread": 0.0}
             for b, r in feb.items()]  # fmt: skip
    p = bb.BondPanel.from_frame(pd.DataFrame(rows))
    f = bb.factors.long_short(p, "spread", n_groups=2, min_bonds=1)
    # low = {a, b, c}: c vanished, so (0.01 + 0.02) / 2; high = {d, e, f}
    assert f.iloc[0] == pytest.approx(0.05 - 0.015, abs=1e-15)
    assert f.attrs["vanished"].iloc[0].tolist() == [1, 0]
    assert f.attrs["counts"].iloc[0].tolist() == [2, 3]


def _tied_panel(sim):
    long = sim.panel.to_frame()
    return long.assign(spread=(long["spread"] / 0.01).round() * 0.01)  # few distinct values


@pytest.mark.parametrize("breakpoints", ["rank", "percentile"])
def test_relabelling_bonds_leaves_factor_unchanged(sim, breakpoints):
    long = _tied_panel(sim)
    assert long.groupby("date")["spread"].nunique().max() < 20  # heavy ties
    labels = sorted(long["bond"].unique())
    rename = dict(zip(labels, [f"X{i:04d}" for i in range(len(labels))][::-1], strict=True))
    p1 = bb.BondPanel.from_frame(long)
    p2 = bb.BondPanel.from_frame(long.assign(bond=long["bond"].map(rename)))
    kw = dict(n_groups=3, min_bonds=3, within="rating_bucket", breakpoints=breakpoints)
    f1 = _quiet(bb.factors.long_short, p1, "spread", **kw)
    f2 = _quiet(bb.factors.long_short, p2, "spread", **kw)
    assert f1.notna().sum() >= 15
    np.testing.assert_allclose(f1.to_numpy(), f2.to_numpy(), rtol=1e-12, atol=1e-15)
    ref = _reference(long, "spread", 3, "value", True, 3, breakpoints=breakpoints)
    np.testing.assert_allclose(f1.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)


def _one_month(signals, **kw):
    """Low and high leg of a single formation, read off the returns (bond i earns 2**i)."""
    n = len(signals)
    rows = []
    for i, s in enumerate(signals):
        rows.append({"date": "2020-01-31", "bond": f"b{i}", "ret": 0.0, "weight": 1.0,
                     "spread": float(s)})  # fmt: skip
        rows.append({"date": "2020-02-29", "bond": f"b{i}", "ret": 2.0**i / 2.0**n,
                     "weight": 1.0, "spread": 0.0})  # fmt: skip
    p = bb.BondPanel.from_frame(pd.DataFrame(rows))
    f = bb.factors.long_short(p, "spread", min_bonds=1, weighting="equal", **kw)
    c = f.attrs["counts"].iloc[0]
    legs = []
    for which in ("low", "high"):
        legs.append(c[("all", which)])
    return f.iloc[0], legs


@pytest.mark.parametrize(
    "signals, n_groups, low, high",
    [([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 3, [0, 1, 2, 3], [7, 8, 9, 10]),  # edges 4.33, 7.67
     ([1, 1, 1, 2, 2, 3], 2, [0, 1, 2], [3, 4, 5]),  # median 1.5
     ([1, 2, 3, 4, 5], 2, [0, 1, 2], [3, 4]),  # median 3 is in the low bin (closed right)
     ([1, 2, 2, 2, 3], 2, [0, 1, 2, 3], [4]),  # the tie on the edge stays low
     ([5, 4, 3, 2, 1, 0], 3, [4, 5], [0, 1])],  # edges 1.67, 3.33
)  # fmt: skip
def test_percentile_rule_hand_checked(signals, n_groups, low, high):
    f, sizes = _one_month(signals, n_groups=n_groups, breakpoints="percentile")
    n = len(signals)
    expect = np.mean([2.0**i / 2.0**n for i in high]) - np.mean([2.0**i / 2.0**n for i in low])
    assert f == pytest.approx(expect, rel=1e-14)
    assert sizes == [len(low), len(high)]


@pytest.mark.parametrize(
    "signals, n_groups, low, high",
    [([1, 2, 2, 2, 3], 2, [0, 1, 2, 3], [4]),  # tie block at positions 1..3: mid 2 -> low
     ([1, 1, 2, 3], 2, [0, 1], [2, 3]),
     ([1, 2, 3, 3], 2, [0, 1], [2, 3]),  # mid 2.5 -> 2.5*2/4 = 1.25 -> high
     ([3, 1, 2, 4, 5, 6, 7, 8, 9, 10], 3, [0, 1, 2, 3], [7, 8, 9]),  # ceil(10/3), floor(10/3)
     ([1, 1, 1, 1, 2, 2], 3, [0, 1, 2, 3], [4, 5])],  # mid 1.5 -> 0; mid 4.5 -> 4.5*3/6 = 2
)  # fmt: skip
def test_rank_rule_ties_hand_checked(signals, n_groups, low, high):
    f, sizes = _one_month(signals, n_groups=n_groups)
    n = len(signals)
    expect = np.mean([2.0**i / 2.0**n for i in high]) - np.mean([2.0**i / 2.0**n for i in low])
    assert f == pytest.approx(expect, rel=1e-14)
    assert sizes == [len(low), len(high)]


def test_breakpoint_universe(sim):
    long = sim.panel.to_frame()
    big = long["weight"] > long["weight"].median()
    mask = xr.DataArray(
        np.zeros(sim.panel.shape, dtype=bool), coords=sim.panel.returns.coords
    )
    mask.loc[{"date": xr.DataArray(long["date"][big].to_numpy()),
              "bond": xr.DataArray(long["bond"][big].to_numpy())}] = True  # fmt: skip
    kw = dict(n_groups=3, min_bonds=3, breakpoints="percentile")
    got = _quiet(bb.factors.long_short, sim.panel, "spread", breakpoint_universe=mask, **kw)
    ref = _reference(long.assign(big=big), "spread", 3, "value", None, 3,
                     breakpoints="percentile", bp_col="big")  # fmt: skip
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)
    plain = _quiet(bb.factors.long_short, sim.panel, "spread", **kw)
    assert (np.abs(got - plain) > 1e-12).sum() > 10
    # a DataFrame mask (dates x bonds) works the same
    frame = mask.to_pandas()
    got2 = _quiet(bb.factors.long_short, sim.panel, "spread", breakpoint_universe=frame, **kw)
    np.testing.assert_array_equal(got.to_numpy(), got2.to_numpy())
    with pytest.raises(DataError, match="lacks: B0000"):
        bb.factors.long_short(sim.panel, "spread", breakpoint_universe=frame.iloc[:, 1:], **kw)
    with pytest.raises(DataError, match="booleans"):
        bb.factors.long_short(sim.panel, "spread", breakpoint_universe=frame.astype(float), **kw)
    with pytest.raises(DataError, match="breakpoints='percentile'"):
        bb.factors.long_short(sim.panel, "spread", breakpoint_universe=mask)


@pytest.mark.parametrize("holding", [3])
def test_holding_period_overlapping_cohorts(sim, holding):
    long = sim.panel.to_frame()
    got = _quiet(bb.factors.long_short, sim.panel, "spread", min_bonds=3, holding=holding,
                 within="rating_bucket")  # fmt: skip
    ref = _reference(long, "spread", 3, "value", True, 3, holding=holding)
    assert got.index.equals(pd.DatetimeIndex(ref.index))
    assert got.index[0] == sim.panel.dates[holding]
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)
    # the mean of the single-month factors of cohorts formed at t-1..t-K (the K=1 factor only
    # covers the cohort formed at t-1, so rebuild the older cohorts through the reference)
    assert got.notna().sum() > 15


def test_winsorize_uses_only_the_past(sim):
    long = sim.panel.to_frame()
    kw = dict(min_bonds=3, winsorize=(5, 95))
    got = _quiet(bb.factors.long_short, sim.panel, "spread", **kw)
    ref = _reference(long, "spread", 3, "value", None, 3, winsorize=(5, 95))
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)
    raw = _quiet(bb.factors.long_short, sim.panel, "spread", min_bonds=3)
    assert (np.abs(got - raw) > 1e-12).sum() > 10
    # changing returns after month t cannot change the factor at t (an ex-post winsoriser would)
    cut = sim.panel.dates[15]
    later = long["date"] > cut
    wild = long.assign(ret=np.where(later, long["ret"] * 20.0, long["ret"]))
    got_w = _quiet(bb.factors.long_short, bb.BondPanel.from_frame(wild), "spread", **kw)
    np.testing.assert_array_equal(got.loc[:cut].to_numpy(), got_w.loc[:cut].to_numpy())


def test_return_filter_is_ex_ante(sim):
    long = sim.panel.to_frame()
    band = (-0.02, 0.03)
    got = _quiet(bb.factors.long_short, sim.panel, "spread", min_bonds=3, return_filter=band)
    ref = _reference(long, "spread", 3, "value", None, 3, return_filter=band)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)
    raw = _quiet(bb.factors.long_short, sim.panel, "spread", min_bonds=3)
    assert (np.abs(got - raw) > 1e-12).sum() > 5


@pytest.mark.parametrize("subsample, within", [("IG", None), ("HY", None),
                                               ("IG", "rating_bucket")])  # fmt: skip
def test_rating_subsamples(sim, subsample, within):
    long = sim.panel.to_frame()
    got = _quiet(bb.factors.long_short, sim.panel, "spread", min_bonds=3, subsample=subsample,
                 within=within)  # fmt: skip
    ref = _reference(long, "spread", 3, "value", within, 3, subsample=subsample)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)
    groups = got.attrs["counts"].columns.get_level_values("group").unique().tolist()
    assert groups == (["IG+", "IG-"] if within else ["all"])
    bare = bb.BondPanel.from_frame(long.drop(columns=["rating"]))
    with pytest.raises(DataError, match="needs ratings"):
        bb.factors.long_short(bare, "spread", subsample=subsample)


def test_turnover_hand_case():
    # four bonds, two legs; weights 1, 1, 2, 2; legs swap completely after February
    rows = []
    sig = {"2020-01-31": [1, 2, 3, 4], "2020-02-29": [1, 2, 3, 4], "2020-03-31": [4, 3, 2, 1],
           "2020-04-30": [1, 3, 2, 4]}  # fmt: skip
    for d, s in sig.items():
        for i in range(4):
            rows.append({"date": d, "bond": f"b{i}", "ret": 0.01, "weight": [1.0, 1, 2, 2][i],
                         "spread": float(s[i])})  # fmt: skip
    p = bb.BondPanel.from_frame(pd.DataFrame(rows))
    f = bb.factors.long_short(p, "spread", n_groups=2, min_bonds=1)
    to = f.attrs["turnover"]
    # Feb holds the Jan legs (no earlier formation); March the Feb legs (same as Jan): no
    # trade; April the March legs: all new
    assert np.isnan(to.iloc[0]).all()
    assert to.loc["2020-03-31"].tolist() == [0.0, 0.0]
    assert to.loc["2020-04-30"].tolist() == [1.0, 1.0]
    f2 = bb.factors.long_short(p, "spread", n_groups=2, min_bonds=1, weighting="equal")
    assert f2.attrs["turnover"].loc["2020-04-30"].tolist() == [1.0, 1.0]
    # add May: it holds the April legs, low {b0, b2} with weights (1/3, 2/3) and high {b1, b3}
    # (1/3, 2/3), which replace March's low {b2, b3} (1/2, 1/2) and high {b0, b1} (1/2, 1/2)
    rows += [{"date": "2020-05-31", "bond": f"b{i}", "ret": 0.0, "weight": [1.0, 1, 2, 2][i],
              "spread": 0.0} for i in range(4)]  # fmt: skip
    f3 = bb.factors.long_short(bb.BondPanel.from_frame(pd.DataFrame(rows)), "spread",
                               n_groups=2, min_bonds=1)  # fmt: skip
    low = 0.5 * (1 / 3 + (2 / 3 - 1 / 2) + 1 / 2)  # b0 in, b2 up, b3 out
    high = 0.5 * (1 / 2 + (1 / 2 - 1 / 3) + 2 / 3)  # b0 out, b1 down, b3 in
    np.testing.assert_allclose(f3.attrs["turnover"].loc["2020-05-31"], [low, high], rtol=1e-14)
    np.testing.assert_allclose([low, high], [0.5, 2 / 3], rtol=1e-14)
    f_eq = bb.factors.long_short(bb.BondPanel.from_frame(pd.DataFrame(rows)), "spread",
                                 n_groups=2, min_bonds=1, weighting="equal")  # fmt: skip
    # equal weights: one of the two bonds changed in each leg
    np.testing.assert_allclose(f_eq.attrs["turnover"].loc["2020-05-31"], [0.5, 0.5])


def test_missing_calendar_month_is_named(sim):
    long = sim.panel.to_frame()
    hole = sim.panel.dates[10]
    p = bb.BondPanel.from_frame(long[long["date"] != hole])
    with pytest.warns(UserWarning, match=f"month\\(s\\) {hole.date()} missing") as rec:
        f = bb.factors.long_short(p, "spread", min_bonds=3)
    assert not any("fewer than" in str(w.message) for w in rec)
    after = hole + pd.offsets.MonthEnd(1)
    assert f.attrs["missing_months"] == [hole]
    assert f.attrs["gap_months"] == [hole, after]
    assert f.loc[[hole, after]].isna().all() and f.drop(index=[hole, after]).notna().all()


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


def test_market_refuses_mixed_units(sim):
    long = sim.panel.to_frame()
    pct = bb.BondPanel.from_frame(long.assign(ret=long["ret"] * 100), check_units=False)
    with pytest.raises(DataError, match="look like percent"):
        bb.factors.market(pct, rf=0.002)
    with pytest.raises(DataError, match="look like percent"):
        bb.factors.long_short(pct, "spread")
    gross = bb.BondPanel.from_frame(long.assign(ret=1.0 + long["ret"]), check_units=False)
    with pytest.raises(DataError, match="gross returns"):
        bb.factors.market(gross, rf=0.002)
    with pytest.raises(DataError, match=r"rf is 0\.2 in 2005-02-28.*not percent"):
        bb.factors.market(sim.panel, rf=0.2)  # percent rf with decimal returns
    with pytest.raises(DataError, match="rf is 1.002"):
        bb.factors.market(sim.panel, rf=1.002)
    with pytest.raises(DataError, match="is rf annual"):
        bb.factors.market(sim.panel, rf=0.045)  # an annual rate given as monthly
    rf = pd.Series(0.002, index=sim.panel.dates)
    rf.iloc[5] = 0.3
    with pytest.raises(DataError, match=f"in {sim.panel.dates[5].date()}"):
        bb.factors.market(sim.panel, rf)
    assert np.isfinite(bb.factors.market(sim.panel, rf=0.004)).all()  # 5% a year is fine


def test_bad_arguments(sim):
    with pytest.raises(DataError, match="no signal 'carry'"):
        bb.factors.long_short(sim.panel, "carry")
    with pytest.raises(DataError, match="weighting"):
        bb.factors.long_short(sim.panel, "spread", weighting="cap")
    with pytest.raises(DataError, match="breakpoints must be"):
        bb.factors.long_short(sim.panel, "spread", breakpoints="quantile")
    with pytest.raises(DataError, match="holding must be"):
        bb.factors.long_short(sim.panel, "spread", holding=0)
    with pytest.raises(DataError, match="subsample must be"):
        bb.factors.long_short(sim.panel, "spread", subsample="junk")
    with pytest.raises(DataError, match="winsorize must be"):
        bb.factors.long_short(sim.panel, "spread", winsorize=(99, 1))
    with pytest.raises(DataError, match="return_filter must be"):
        bb.factors.long_short(sim.panel, "spread", return_filter=(0.1, -0.1))
    with pytest.raises(DataError, match="min_bonds must be"):
        bb.factors.long_short(sim.panel, "spread", min_bonds=0)
    with pytest.raises(DataError, match="holding=40 needs more than 40 months"):
        bb.factors.long_short(sim.panel, "spread", holding=40)
    bare = bb.BondPanel.from_frame(sim.panel.to_frame().drop(columns=["weight", "rating"]))
    with pytest.raises(DataError, match="weights"):
        bb.factors.long_short(bare, "spread")
    with pytest.raises(DataError, match="ratings"):
        bb.factors.long_short(bare, "spread", weighting="equal", within="rating_bucket")


@pytest.mark.parametrize("holding, weighting", [(1, "value"), (3, "equal")])
def test_sorted_portfolios_against_row_merges(sim, holding, weighting):
    """Every tertile portfolio within each bucket, month by month from row merges (cohorts
    formed at t-1..t-K, weights at formation), and the long-short factor as the bucket mean of
    top minus bottom."""
    long = sim.panel.to_frame()
    long = long.assign(date=pd.to_datetime(long["date"]))
    by_date = {d: g for d, g in long.groupby("date")}
    dates = sorted(by_date)
    P = _quiet(bb.factors.sorted_portfolios, sim.panel, "spread", weighting=weighting,
               min_bonds=1, holding=holding)
    assert list(P.columns) == [f"{g} spread {j}" for g in ("IG+", "IG-", "HY")
                               for j in (1, 2, 3)]
    checked = 0
    for i in range(holding, len(dates)):
        t = dates[i]
        now = by_date[t][by_date[t]["ret"].notna()][["bond", "ret"]]
        ref = np.zeros(9)
        for j in range(1, holding + 1):
            legs = _formation_legs(by_date, dates[i - j], "spread", 3, weighting,
                                   "rating_bucket", "rank", None, None, None, every=True)
            for k, g in enumerate(("IG+", "IG-", "HY")):
                for q, leg in enumerate(legs[g]):
                    m = leg[["bond", "weight"]].merge(now, on="bond", how="inner")
                    w = m["weight"] if weighting == "value" else np.ones(len(m))
                    ref[3 * k + q] += (w * m["ret"]).sum() / w.sum() / holding
        np.testing.assert_allclose(P.loc[t].to_numpy(), ref, rtol=1e-12)
        checked += 1
    assert checked == len(dates) - holding
    ls = _quiet(bb.factors.long_short, sim.panel, "spread", weighting=weighting,
                within="rating_bucket", min_bonds=1, holding=holding)
    spread = np.mean([P[f"{g} spread 3"] - P[f"{g} spread 1"] for g in ("IG+", "IG-", "HY")],
                     axis=0)
    np.testing.assert_allclose(spread, ls.to_numpy(), rtol=1e-12, atol=1e-15)

"""BondPanel.from_frame: grid layout, month-end dates, validation messages, bond buckets."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesbond as bb
from bayesbond.data.panel import to_month_end
from bayesbond.errors import DataError


def _long(n_bonds=4, n_dates=6, seed=0):
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2020-01-31", periods=n_dates, freq="ME")
    rows = []
    for j in range(n_bonds):
        for i, d in enumerate(dates):
            rows.append(
                {
                    "date": d - pd.Timedelta(days=int(rng.integers(0, 20))),  # mid-month dates
                    "cusip": f"C{j:03d}",
                    "ret": rng.normal(0.005, 0.02),
                    "rating": ["AA", "BBB-", "Ba2", "A+"][j],
                    "amt": 100.0 + j + i,
                    "spread": rng.normal(),
                }
            )
    return pd.DataFrame(rows)


def test_grid_labels_and_values():
    df = _long()
    p = bb.BondPanel.from_frame(df, bond="cusip", weight="amt")
    assert p.returns.dims == ("date", "bond")
    assert list(p.bonds) == ["C000", "C001", "C002", "C003"]
    assert (p.dates == pd.date_range("2020-01-31", periods=6, freq="ME")).all()
    assert p.dates.is_month_end.all()
    # every input row lands in its cell
    for _, row in df.iterrows():
        d = row["date"] + pd.offsets.MonthEnd(0)
        assert p.returns.sel(date=d, bond=row["cusip"]).item() == row["ret"]
        assert p.weights.sel(date=d, bond=row["cusip"]).item() == row["amt"]
        assert p.signals["spread"].sel(date=d, bond=row["cusip"]).item() == row["spread"]
        assert p.ratings.sel(date=d, bond=row["cusip"]).item() == row["rating"]
    assert list(p.signals.data_vars) == ["spread"]
    assert p.buckets.sel(bond="C002").values.tolist() == ["HY"] * 6
    assert p.n_obs.tolist() == [6] * 4
    assert p.observed.dtype == bool


def test_unbalanced_missing_is_nan_and_counted():
    df = _long()
    df = df.drop(index=[0, 7]).reset_index(drop=True)  # C000 month 1 and C001 month 2 absent
    df.loc[3, "ret"] = np.nan  # C000 month 5 present but missing
    p = bb.BondPanel.from_frame(df, bond="cusip", weight="amt")
    assert p.n_obs.loc["C000"] == 4 and p.n_obs.loc["C001"] == 5
    assert np.isnan(p.returns.values).sum() == 3
    # the row with NaN return keeps its other fields; absent rows have none
    d5 = p.dates[4]
    assert p.ratings.sel(date=d5, bond="C000").item() == "AA"
    assert pd.isna(p.ratings.sel(date=p.dates[0], bond="C000").item())
    assert pd.isna(p.buckets.sel(date=p.dates[0], bond="C000").item())
    # to_frame round-trips the present rows
    back = p.to_frame()
    assert len(back) == len(df)
    again = bb.BondPanel.from_frame(back)
    xr.testing.assert_identical(again.returns, p.returns)
    xr.testing.assert_identical(again.weights, p.weights)


def test_optional_rating_and_weight():
    df = _long()[["date", "cusip", "ret", "spread"]]
    p = bb.BondPanel.from_frame(df, bond="cusip")
    assert p.ratings is None and p.buckets is None and p.weights is None
    p2 = bb.BondPanel.from_frame(
        _long(), bond="cusip", rating=None, weight=None, signals=["spread"]
    )
    assert p2.ratings is None and list(p2.signals.data_vars) == ["spread"]


def test_numeric_ratings_and_yyyymm_dates():
    df = pd.DataFrame(
        {"date": [202001, 202002, 202001], "bond": ["x", "x", "y"], "ret": [0.01, 0.02, 0.0],
         "rating": [3, 9, 15]}
    )  # fmt: skip
    p = bb.BondPanel.from_frame(df)
    assert list(p.dates) == [pd.Timestamp("2020-01-31"), pd.Timestamp("2020-02-29")]
    assert p.buckets.sel(bond="x").values.tolist() == ["IG+", "IG-"]


def test_to_month_end_forms():
    got = to_month_end(
        ["2020-01-15", "2020-02", 202003, "20200415", pd.Timestamp("2020-05-31 13:00")]
    )
    assert list(got) == list(pd.date_range("2020-01-31", periods=5, freq="ME"))
    with pytest.raises(DataError, match="row 1: 'not a date'"):
        to_month_end(["2020-01-31", "not a date"])


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.drop(columns="ret"), "missing column.*'ret'"),
        (lambda d: d.iloc[:0], "empty panel"),
        (lambda d: d.assign(ret=np.nan), "no finite return"),
        (
            lambda d: d.assign(ret=d["ret"].where(d.index != 2, np.inf)),
            r"non-finite returns.*row 2",
        ),
        (lambda d: d.assign(amt=d["amt"].where(d.index != 5, -1.0)), r"negative.*row 5"),
        (
            lambda d: d.assign(rating=d["rating"].where(d.index != 1, "NR")),
            r"unrated label.*'NR'.*unrated='missing'.*row 1 \(C000, 2020-02-29\)",
        ),
        (
            lambda d: d.assign(rating=d["rating"].where(d.index != 2, "ZZ")),
            r"unknown rating.*'ZZ'.*row 2 \(C000, 2020-03-31\)",
        ),
        (lambda d: d.assign(date=d["date"].astype(object).where(d.index != 3, "garbage")), "row 3"),
        (lambda d: d.assign(ret=d["ret"].astype(object).where(d.index != 4, "abc")), "not numeric"),
    ],
)
def test_validation_errors(mutate, match):
    with pytest.raises(DataError, match=match):
        bb.BondPanel.from_frame(mutate(_long()), bond="cusip", weight="amt")


def test_duplicates_listed_after_month_end():
    df = _long()
    extra = df.iloc[[0, 8]].copy()
    extra["date"] = extra["date"] + pd.offsets.MonthEnd(0)  # same month, other day
    with pytest.raises(DataError) as exc:
        bb.BondPanel.from_frame(pd.concat([df, extra]), bond="cusip", weight="amt")
    msg = str(exc.value)
    assert "(C000, 2020-01-31)" in msg and "(C001, 2020-03-31)" in msg


def test_non_numeric_extra_column_names_signals_hint():
    df = _long().assign(issuer="ACME")
    with pytest.raises(DataError, match=r"'issuer' is not numeric.*signals="):
        bb.BondPanel.from_frame(df, bond="cusip", weight="amt")
    p = bb.BondPanel.from_frame(df, bond="cusip", weight="amt", signals=["spread"])
    assert list(p.signals.data_vars) == ["spread"]


def test_explicit_missing_rating_column_is_an_error():
    with pytest.raises(DataError, match="'sp_rating'"):
        bb.BondPanel.from_frame(_long(), bond="cusip", rating="sp_rating")


def test_bond_bucket_rules():
    dates = pd.date_range("2020-01-31", periods=5, freq="ME")
    seqs = {
        "a": ["AA", "AA", "AA", "BBB", "BB"],  # mode IG+, last HY
        "b": ["BBB", "BB", "BBB", "BB", None],  # tie 2-2: most recent of the tied is HY
        "c": ["BB", "BB", "A", "A", "AAA"],  # mode IG+ (3 months)
        "d": [None] * 5,
    }
    rows = [
        {"date": d, "bond": b, "ret": 0.0, "rating": r}
        for b, s in seqs.items()
        for d, r in zip(dates, s, strict=True)
    ]
    p = bb.BondPanel.from_frame(pd.DataFrame(rows))
    with pytest.raises(DataError, match="without any rating.*d"):
        p.bond_bucket()
    mode = p.bond_bucket(mapping={"d": "BBB+"})
    assert mode.to_dict() == {"a": "IG+", "b": "HY", "c": "IG+", "d": "IG-"}
    last = p.bond_bucket(rule="last", mapping={"d": "HY"})
    assert last.to_dict() == {"a": "HY", "b": "HY", "c": "IG+", "d": "HY"}
    # slow reference for the mode rule
    for bond, s in seqs.items():
        if bond == "d":
            continue
        buckets = [bb.rating_bucket(r) for r in s if r is not None]
        counts = {k: buckets.count(k) for k in set(buckets)}
        top = max(counts.values())
        tied = [k for k in counts if counts[k] == top]
        expected = max(tied, key=lambda k: max(i for i, x in enumerate(buckets) if x == k))
        assert mode[bond] == expected
    with pytest.raises(DataError, match="not in the panel"):
        p.bond_bucket(mapping={"zz": "HY"})
    with pytest.raises(DataError, match="rule"):
        p.bond_bucket(rule="first")


def test_from_frame_unrated_and_qualified_ratings():
    df = _long(n_bonds=4, n_dates=6)
    df["rating"] = df["rating"].astype(object)
    df.loc[[0, 1], "rating"] = ["NR", "WR"]  # C000 months 1-2
    df.loc[6, "rating"] = ""  # C001 month 1
    df.loc[7, "rating"] = "BBB- *-"
    df.loc[12, "rating"] = "(P)Ba2"
    df.loc[13, "rating"] = "Ba2u"
    with pytest.raises(DataError, match=r"'', 'NR', 'WR'.*row 0 \(C000, 2020-01-31\)"):
        bb.BondPanel.from_frame(df, bond="cusip", weight="amt")
    p = bb.BondPanel.from_frame(df, bond="cusip", weight="amt", unrated="missing")
    b = p.buckets.to_pandas()
    assert b["C000"].isna().tolist() == [True, True, False, False, False, False]
    assert b["C001"].isna().tolist()[:2] == [True, False] and b["C001"].iloc[1] == "IG-"
    assert (b["C002"] == "HY").all()
    assert p.ratings.sel(bond="C000").values[0] == "NR"  # the raw label is kept as given
    assert p.bond_bucket()["C000"] == "IG+"


def test_mode_rule_counts_observed_months_only():
    # BBB for 4 rows with a return, BB for 5 rows of which 3 have no return (matured, stale
    # rating rows): the bond is IG- on its observed months
    dates = pd.date_range("2020-01-31", periods=9, freq="ME")
    rating = ["BBB"] * 4 + ["BB"] * 5
    ret = [0.01, -0.01, 0.02, 0.0, 0.01, 0.0, np.nan, np.nan, np.nan]
    df = pd.DataFrame({"date": dates, "bond": "X", "ret": ret, "rating": rating})
    df = pd.concat(
        [df, pd.DataFrame({"date": dates, "bond": "Y", "ret": 0.01, "rating": ["BB"] * 9})]
    )
    p = bb.BondPanel.from_frame(df)
    assert p.bond_bucket()["X"] == "IG-"  # 4 observed BBB months against 2 observed BB
    assert p.bond_bucket(rule="last")["X"] == "HY"
    # a bond rated only on rows without a return falls back to those rows
    z = pd.DataFrame({"date": dates, "bond": "Z", "ret": [0.01] + [np.nan] * 8,
                      "rating": [None] + ["A"] * 8})  # fmt: skip
    p2 = bb.BondPanel.from_frame(pd.concat([df, z]))
    assert p2.bond_bucket()["Z"] == "IG+"


def test_from_frame_units():
    df = _long(n_bonds=3, n_dates=24)
    ref = bb.BondPanel.from_frame(df, bond="cusip", weight="amt")
    with pytest.raises(DataError, match="returns in column 'ret' look like percent"):
        bb.BondPanel.from_frame(df.assign(ret=df["ret"] * 100), bond="cusip", weight="amt")
    with pytest.raises(DataError, match=r"gross returns 1 \+ r"):
        bb.BondPanel.from_frame(df.assign(ret=1 + df["ret"]), bond="cusip", weight="amt")
    one = df["ret"].where(df["cusip"] != "C001", df["ret"] * 100)
    with pytest.raises(DataError, match="bonds C001"):
        bb.BondPanel.from_frame(df.assign(ret=one), bond="cusip", weight="amt")
    pct = bb.BondPanel.from_frame(
        df.assign(ret=df["ret"] * 100), bond="cusip", weight="amt", units="percent"
    )
    np.testing.assert_allclose(pct.returns.values, ref.returns.values, rtol=1e-14)
    with pytest.raises(DataError, match="units must be"):
        bb.BondPanel.from_frame(df, bond="cusip", weight="amt", units="bp")
    raw = bb.BondPanel.from_frame(
        df.assign(ret=df["ret"] * 100), bond="cusip", weight="amt", check_units=False
    )
    assert np.nanmax(np.abs(raw.returns.values)) > 1


def test_ambiguous_and_mixed_dates_refused():
    assert list(to_month_end(["31/01/2020", "29/02/2020"])) == list(
        pd.date_range("2020-01-31", periods=2, freq="ME")
    )
    assert list(to_month_end(["01/31/2020", "02/29/2020"])) == list(
        pd.date_range("2020-01-31", periods=2, freq="ME")
    )
    with pytest.raises(DataError, match=r"ambiguous.*row 0: '05/01/2020'.*day first"):
        to_month_end(["05/01/2020", "13/01/2020"])
    with pytest.raises(DataError, match=r"mixed.*row 0: '13/01/2020'.*row 1: '01/13/2020'"):
        to_month_end(["13/01/2020", "01/13/2020"])
    got = to_month_end(["2020-1-5", "2020/02/29", "2020-03-31T00:00:00Z", "2020-04-30 13:45:00"])
    assert list(got) == list(pd.date_range("2020-01-31", periods=4, freq="ME"))
    with pytest.raises(DataError, match="row 2: '05/01/2020'; row 3: '05/01/2020'"):
        to_month_end(["2020-01-31", "13/01/2020", "05/01/2020", "05/01/2020"])  # every row named
    with pytest.raises(DataError, match="row 0: '2020-13-01'"):  # never read year-day-month
        to_month_end(["2020-13-01"])
    got = to_month_end(["05/01/2020", "13/01/2020"], date_format="%d/%m/%Y")
    assert list(got) == [pd.Timestamp("2020-01-31")] * 2
    with pytest.raises(DataError, match=r"date_format='%d/%m/%Y'.*row 1: '01/13/2020'"):
        to_month_end(["13/01/2020", "01/13/2020"], date_format="%d/%m/%Y")
    df = pd.DataFrame(
        {"date": ["05/01/2020", "13/01/2020"], "bond": ["A", "B"], "ret": [0.01, 0.02]}
    )
    with pytest.raises(DataError, match=r"column 'date'.*row 0: '05/01/2020'"):
        bb.BondPanel.from_frame(df)
    p = bb.BondPanel.from_frame(df, date_format="%d/%m/%Y")
    assert list(p.dates) == [pd.Timestamp("2020-01-31")]

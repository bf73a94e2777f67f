"""Readers: synthetic files in each format, and the real files in ../shared/data."""

import numpy as np
import pandas as pd
import pytest

import bayesbond as bb
from bayesbond.data import readers
from bayesbond.errors import DataError

FRENCH_RAW = """This file was created by CMPT_ME_BEME_RETS using the 202408 CRSP database.
The 1-month TBill return is from Ibbotson and Associates Inc.

,Mkt-RF,SMB,HML,RF
192607,    2.96,   -2.56,   -2.43,    0.22
192608,    2.64,   -1.17,    3.82,    0.25
192609,    0.36,   -1.40,  -99.99,    0.23

 Annual Factors: January-December
,Mkt-RF,SMB,HML,RF
1927,   29.47,   -2.46,   -3.75,    3.12
"""

GSW_RAW = """Nominal yield curve, Gurkaynak, Sack and Wright (2007)
Series,BETA0,SVENY01,SVENY02
Compounding Convention,,Continuously Compounded,Continuously Compounded

Date,BETA0,SVENY01,SVENY02
2020-01-30,1.0,1.50,1.60
2020-01-31,1.0,1.52,1.61
2020-02-28,1.0,1.20,NA
"""


def test_read_french_raw_library_format(tmp_path):
    f = tmp_path / "F-F_Research_Data_Factors.CSV"
    f.write_text(FRENCH_RAW)
    out = readers.read_french(f)
    assert list(out.columns) == ["Mkt-RF", "SMB", "HML", "RF"]
    assert list(out.index) == list(pd.date_range("1926-07-31", periods=3, freq="ME"))
    np.testing.assert_allclose(out.loc["1926-07-31"], [0.0296, -0.0256, -0.0243, 0.0022])
    assert np.isnan(out.loc["1926-09-30", "HML"])  # -99.99 is the library's missing code


def test_read_gsw_raw_fed_format_takes_month_end(tmp_path):
    f = tmp_path / "feds200628.csv"
    f.write_text(GSW_RAW)
    out = readers.read_gsw(f)
    assert list(out.columns) == [1.0, 2.0] and out.columns.name == "maturity"
    np.testing.assert_allclose(out.loc["2020-01-31"], [0.0152, 0.0161])
    assert np.isnan(out.loc["2020-02-29", 2.0])


def test_read_fred_missing_dots_and_rate_detection(tmp_path):
    f = tmp_path / "fred.csv"
    f.write_text("observation_date,GS10,INDPRO\n2020-01-01,1.76,110.2\n2020-02-01,.,109.9\n")
    out = readers.read_fred(f)
    assert out.index[0] == pd.Timestamp("2020-01-31")
    np.testing.assert_allclose(out["GS10"].iloc[0], 0.0176)
    assert np.isnan(out["GS10"].iloc[1])
    np.testing.assert_allclose(out["INDPRO"], [110.2, 109.9])  # not a rate: unchanged
    assert out.attrs["converted"] == ["GS10"]
    assert readers.read_fred(f, rates="all")["INDPRO"].iloc[0] == pytest.approx(1.102)


def test_read_yields_csv_maturity_names(tmp_path):
    f = tmp_path / "curve.csv"
    f.write_text("date,3m,1y,y10,m6\n2001-05-15,4.0,4.5,5.5,4.2\n")
    out = readers.read_yields_csv(f)
    assert list(out.columns) == [0.25, 0.5, 1.0, 10.0]
    np.testing.assert_allclose(out.iloc[0], [0.04, 0.042, 0.045, 0.055])
    assert out.index[0] == pd.Timestamp("2001-05-31")
    bad = tmp_path / "bad.csv"
    bad.write_text("date,3m,beta0\n2001-05-31,4.0,1\n")
    with pytest.raises(DataError, match=r"bad.csv: column 'beta0' is not a maturity"):
        readers.read_yields_csv(bad)


def test_read_panel_and_factors_roundtrip(tmp_path):
    sim = bb.datasets.simulate_panel(n_bonds=8, n_dates=12, seed=1, missing=0.1, min_obs=6)
    df = sim.panel.to_frame().rename(columns={"bond": "cusip", "weight": "amt"})
    csv = tmp_path / "panel.csv"
    df.to_csv(csv, index=False)
    p = readers.read_panel(csv, bond="cusip", weight="amt")
    np.testing.assert_allclose(p.returns.values, sim.panel.returns.values, rtol=1e-15)
    pd.testing.assert_frame_equal(
        p.to_frame(), sim.panel.to_frame().astype({"rating": p.to_frame()["rating"].dtype})
    )
    pq = tmp_path / "panel.parquet"
    df.to_parquet(pq)
    p2 = readers.read_panel(pq, bond="cusip", weight="amt")
    np.testing.assert_array_equal(p2.returns.values, p.returns.values)
    fcsv = tmp_path / "factors.csv"
    sim.factors.to_csv(fcsv)
    F = readers.read_factors(fcsv)
    pd.testing.assert_frame_equal(F, sim.factors, check_freq=False)


def test_reader_errors_name_file_and_place(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        readers.read_factors(tmp_path / "absent.csv")
    f = tmp_path / "factors.csv"
    f.write_text("date,CMKT\n2020-01-31,0.01\n2020-02-29,abc\n")
    with pytest.raises(DataError, match=r"factors.csv: column 'CMKT'.*'abc' on 2020-02-29"):
        readers.read_factors(f)
    f.write_text("date,CMKT\n2020-01-31,0.01\nnot-a-date,0.02\n")
    with pytest.raises(DataError, match=r"factors.csv.*row 1: 'not-a-date'"):
        readers.read_factors(f)
    p = tmp_path / "panel.csv"
    p.write_text("date,bond,ret\n2020-01-31,A,0.01\n2020-01-15,A,0.02\n")
    with pytest.raises(DataError, match=r"panel.csv: duplicated.*\(A, 2020-01-31\)"):
        readers.read_panel(p)


@pytest.mark.data
def test_real_zero_curves(shared_data):
    lw = readers.read_liuwu(shared_data / "liuwu_zcb_monthly_1to360m.csv")
    assert lw.shape == (739, 360) and lw.columns[0] == pytest.approx(1 / 12)
    assert lw.columns[-1] == 30.0 and lw.index.name == "date"
    assert lw.loc["1961-06-30", 1 / 12] == pytest.approx(0.020926)
    gsw = readers.read_gsw(shared_data / "gsw_sveny_monthly_eom.csv")
    assert list(gsw.columns[:2]) == [1.0, 2.0] and gsw.index[-1] == pd.Timestamp("2023-07-31")
    assert gsw.loc["2023-07-31", 1.0] == pytest.approx(0.053766)
    # the two reconstructions agree on the 5-year yield to within 25 basis points
    both = pd.concat([lw[5.0], gsw[5.0]], axis=1, join="inner").dropna()
    assert (both.iloc[:, 0] - both.iloc[:, 1]).abs().median() < 0.0025
    mk = readers.read_yields_csv(shared_data / "mcculloch_kwon_irates_monthly.csv")
    assert mk.columns[0] == pytest.approx(1 / 12) and mk.columns[-1] == 10.0


@pytest.mark.data
def test_real_factor_files(shared_data):
    ff = readers.read_french(shared_data / "ff3_monthly.csv")
    np.testing.assert_allclose(ff.loc["1926-07-31"], [0.0296, -0.0256, -0.0243, 0.0022])
    fred = readers.read_fred(shared_data / "fred2017_shortrates_monthly.csv")
    assert fred.loc["2016-12-31", "TB3MS"] == pytest.approx(0.0051)
    gw = readers.read_factors(shared_data / "goyal_welch_bond_factors_monthly.csv")
    np.testing.assert_allclose(gw["TERM"], gw["ltr"] - gw["rf"], atol=1e-6)


@pytest.mark.data
def test_real_data_ols_smoke(shared_data):
    # ICE corporate index returns on the Goyal-Welch TERM and DEF factors (1997-2016)
    R = readers.read_factors(shared_data / "corp_tr_returns_monthly.csv")
    gw = readers.read_factors(shared_data / "goyal_welch_bond_factors_monthly.csv")
    R = R.loc["1997-01-31":"2016-12-31", ["BAMLCC0A0CMTRIV", "BAMLHYH0A0HYM2TRIV"]]
    excess = R.sub(gw["rf"], axis=0).dropna(how="all")
    res = bb.ols(excess, gw[["TERM", "DEF"]], hac_lags=6)
    beta = res.params
    assert 0.3 < beta.loc["BAMLCC0A0CMTRIV", "TERM"] < 1.2  # IG corporates load on duration
    assert beta.loc["BAMLHYH0A0HYM2TRIV", "DEF"] > beta.loc["BAMLCC0A0CMTRIV", "DEF"] > 0
    assert (res.nobs == 240).all()


def test_readers_refuse_ambiguous_dates_unless_a_format_is_given(tmp_path):
    f = tmp_path / "factors.csv"
    f.write_text("date,CMKT\n05/01/2020,0.01\n13/02/2020,0.02\n")
    with pytest.raises(DataError, match=r"factors.csv, column 'date'.*row 0: '05/01/2020'"):
        readers.read_factors(f)
    F = readers.read_factors(f, date_format="%d/%m/%Y")
    assert list(F.index) == [pd.Timestamp("2020-01-31"), pd.Timestamp("2020-02-29")]
    d = tmp_path / "fred.csv"
    d.write_text("DATE,DGS10\n01/02/2020,1.88\n01/03/2020,1.80\n")  # daily: US or UK order?
    with pytest.raises(DataError, match=r"ambiguous dates in .*fred.csv.*row 0: '01/02/2020'"):
        readers.read_fred(d)
    daily = readers.read_fred(d, date_format="%m/%d/%Y")
    assert list(daily.index) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]
    p = tmp_path / "panel.csv"
    p.write_text(
        "date,bond,ret,rating\n31/01/2020,A,0.01,NR\n29/02/2020,A,0.02,BBB+ *-\n"
        "31/01/2020,B,0.01,(P)Baa3\n29/02/2020,B,0.03,A-(sf)\n"
    )
    with pytest.raises(DataError, match=r"panel.csv: unrated label.*'NR'.*row 0 \(A, 2020-01-31\)"):
        readers.read_panel(p)
    panel = readers.read_panel(p, unrated="missing")
    assert panel.bond_bucket().to_dict() == {"A": "IG-", "B": "IG+"}  # tie: the latest
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("date,bond,ret\n13/01/2020,A,0.01\n02/13/2020,A,0.02\n")
    with pytest.raises(DataError, match=r"mixed.csv: mixed date formats.*row 1: '02/13/2020'"):
        readers.read_panel(mixed)

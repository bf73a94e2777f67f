"""Treasury zero-coupon holding-period excess returns against hand computations."""

import numpy as np
import pandas as pd
import pytest

import bayesbond as bb
from bayesbond.errors import DataError


def _curve(values, maturities, start="2001-01-31"):
    dates = pd.date_range(start, periods=len(values), freq="ME")
    return pd.DataFrame(values, index=dates, columns=pd.Index(maturities, name="maturity"))


def test_one_month_log_and_simple_by_hand():
    y = _curve([[0.020, 0.025, 0.030], [0.021, 0.026, 0.031]], [1 / 12, 2 / 12, 3 / 12])
    rx = bb.treasury_excess_returns(y)
    assert list(rx.columns) == [2 / 12, 3 / 12]
    assert list(rx.index) == [pd.Timestamp("2001-02-28")]  # dated t + 1
    # n = 2m: p_t1(1m) - p_t0(2m) - y_t0(1m)/12 = -0.021/12 + 2*0.025/12 - 0.020/12
    assert rx.iloc[0, 0] == pytest.approx(0.00075, abs=1e-15)
    # n = 3m: -2*0.026/12 + 3*0.030/12 - 0.020/12
    assert rx.iloc[0, 1] == pytest.approx(0.0015, abs=1e-15)
    simple = bb.treasury_excess_returns(y, kind="simple")
    hpr = -2 * 0.026 / 12 + 3 * 0.030 / 12
    assert simple.iloc[0, 1] == pytest.approx(np.exp(hpr) - np.exp(0.020 / 12), abs=1e-15)


def test_interpolated_maturity_and_given_short_rate():
    # GSW-like: yearly maturities only; the 23-month yield is linear between 1y and 2y
    y = _curve([[0.03, 0.04, 0.05], [0.031, 0.041, 0.051]], [1.0, 2.0, 3.0])
    rf = pd.Series([0.02, 0.021], index=y.index)
    rx = bb.treasury_excess_returns(y, maturities=[2.0], short_rate=rf)
    y23 = 0.031 + (11 / 12) * (0.041 - 0.031)
    assert rx.iloc[0, 0] == pytest.approx(-(23 / 12) * y23 + 2 * 0.04 - 0.02 / 12, abs=1e-15)
    assert rx.iloc[0, 0] == pytest.approx(0.0013472222222222, abs=1e-13)
    with pytest.raises(DataError, match="outside the curve"):  # no 1-month yield on GSW
        bb.treasury_excess_returns(y, maturities=[2.0])


def test_horizon_twelve_and_gaps():
    y = _curve(np.tile([0.02, 0.03, 0.04], (14, 1)) + np.arange(14)[:, None] * 1e-4,
               [1.0, 2.0, 3.0])
    rx = bb.treasury_excess_returns(y, horizon=12)
    assert list(rx.columns) == [2.0, 3.0]
    assert len(rx) == 2  # t = months 0 and 1
    # n = 2: p_{t+12}(1) - p_t(2) - y_t(1)
    assert rx.iloc[0, 0] == pytest.approx(-(0.02 + 12e-4) + 2 * 0.03 - 0.02, abs=1e-15)
    m = _curve(np.tile([0.02, 0.03], (4, 1)), [1 / 12, 1.0])
    gap = m.drop(m.index[1])  # month 1 missing: no return realised at months 1 and 2
    r1 = bb.treasury_excess_returns(gap)
    assert list(r1.index) == [m.index[3]]


def test_bad_inputs():
    y = _curve([[0.02, 0.03]], [1 / 12, 1.0])
    with pytest.raises(DataError, match="horizon"):
        bb.treasury_excess_returns(y, horizon=0)
    with pytest.raises(DataError, match="kind"):
        bb.treasury_excess_returns(y, kind="gross")
    with pytest.raises(DataError, match="not longer"):
        bb.treasury_excess_returns(y, maturities=[1 / 12])
    with pytest.raises(DataError, match="maturities in years"):
        bb.treasury_excess_returns(y.set_axis(["a", "b"], axis=1))


@pytest.mark.data
def test_liuwu_term_structure_of_excess_returns(shared_data):
    y = bb.readers.read_liuwu(shared_data / "liuwu_zcb_monthly_1to360m.csv")
    rx = bb.treasury_excess_returns(y, maturities=[1.0, 2.0, 5.0, 10.0])
    assert len(rx) == len(y) - 1 and rx[[1.0, 2.0, 5.0]].notna().all().all()
    rx = rx.dropna()  # the long end starts later in Liu-Wu
    assert len(rx) > 600
    sd = rx.std().to_numpy()
    assert np.all(np.diff(sd) > 0)  # volatility rises with maturity
    # annualised 10-year excess return between 0 and 5% over 1961-2022; 1-year SD under 1%/mo
    assert 0 < rx[10.0].mean() * 12 < 0.05 and sd[0] < 0.01

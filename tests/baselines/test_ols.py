"""Batched OLS against statsmodels' per-bond OLS, NIST Longley, and hand-written references."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import xarray as xr

import bayesbond as bb
from bayesbond.core.ols import (
    _meat_compressed,
    _spd_inverse,
    bartlett_weights,
    batched_ols,
    newey_west_meat,
)
from bayesbond.errors import DataError

RTOL = 1e-9


def _panel(T=120, N=25, K=3, missing=0.0, seed=0, ar=0.3):
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2000-01-31", periods=T, freq="ME")
    F = pd.DataFrame(
        rng.normal(0.003, 0.02, (T, K)), index=dates, columns=[f"f{k}" for k in range(K)]
    )
    X = np.column_stack([np.ones(T), F.to_numpy()])
    e = rng.normal(0, 0.01, (T, N))
    for t in range(1, T):  # autocorrelated errors so that HAC differs from classical
        e[t] += ar * e[t - 1]
    Y = 0.01 * (X @ rng.normal(0.5, 0.5, (K + 1, N)) + e)  # decimals: alphas of about 0.5%
    if missing:
        Y[rng.random((T, N)) < missing] = np.nan
        Y[:30, 0] = np.nan  # a late starter
        Y[60:, 1] = np.nan  # an early leaver
    R = pd.DataFrame(Y, index=dates, columns=[f"C{j:04d}" for j in range(N)])
    return R, F


def _sm_fit(y, X, hac_lags, use_correction):
    o = np.isfinite(y)
    mod = sm.OLS(y[o], X[o])
    if hac_lags is None:
        return mod.fit()
    return mod.fit(cov_type="HAC", cov_kwds={"maxlags": hac_lags, "use_correction": use_correction})


@pytest.mark.parametrize("missing", [0.0, 0.2], ids=["balanced", "unbalanced"])
@pytest.mark.parametrize(
    "hac_lags, use_correction", [(None, True), (6, True), (6, False), (0, True), (3, False)]
)
def test_matches_statsmodels_per_bond(missing, hac_lags, use_correction):
    R, F = _panel(missing=missing)
    res = bb.ols(R, F, hac_lags=hac_lags, use_correction=use_correction)
    X = np.column_stack([np.ones(len(F)), F.to_numpy()])
    assert list(res.params.columns) == ["alpha", "f0", "f1", "f2"]
    for bond in R.columns:
        s = _sm_fit(R[bond].to_numpy(), X, hac_lags, use_correction)
        np.testing.assert_allclose(res.params.loc[bond], s.params, rtol=RTOL)
        np.testing.assert_allclose(res.bse.loc[bond], s.bse, rtol=RTOL)
        np.testing.assert_allclose(res.tvalues.loc[bond], s.tvalues, rtol=RTOL)
        np.testing.assert_allclose(res.pvalues.loc[bond], s.pvalues, rtol=1e-7, atol=1e-300)
        # covariances relative to sqrt(V_ii V_jj) (off-diagonal entries may be near zero)
        C, D = res.cov_params.sel(bond=bond).values, np.asarray(s.cov_params())
        scale = np.sqrt(np.outer(np.diag(D), np.diag(D)))
        np.testing.assert_allclose(C / scale, D / scale, rtol=0, atol=RTOL)
        np.testing.assert_allclose(res.rsquared[bond], s.rsquared, rtol=RTOL)
        np.testing.assert_allclose(np.sqrt(s.scale), res.sigma[bond], rtol=RTOL)
        assert res.nobs[bond] == s.nobs
        r = res.resid[bond].dropna()
        np.testing.assert_allclose(r.to_numpy(), s.resid, rtol=1e-7, atol=1e-13)
        assert r.index.equals(R[bond].dropna().index)
    if missing:
        assert res.resid["C0000"].iloc[:30].isna().all()
        assert res.nobs["C0001"] <= 60


def test_qr_route_matches_statsmodels():
    # max_cond=0 sends every series through its own Householder QR (the fallback route)
    R, F = _panel(missing=0.2, seed=4)
    X = np.column_stack([np.ones(len(F)), F.to_numpy()])
    fast = batched_ols(X, R.to_numpy(), hac_lags=4)
    slow = batched_ols(X, R.to_numpy(), hac_lags=4, max_cond=0.0)
    for j, bond in enumerate(R.columns):
        s = _sm_fit(R[bond].to_numpy(), X, 4, True)
        np.testing.assert_allclose(slow.params[j], s.params, rtol=RTOL)
        np.testing.assert_allclose(np.sqrt(np.diag(slow.cov_hac[j])), s.bse, rtol=RTOL)
        scale = np.sqrt(np.outer(np.diag(slow.cov_hac[j]), np.diag(slow.cov_hac[j])))
        np.testing.assert_allclose(fast.cov_hac[j] / scale, slow.cov_hac[j] / scale, atol=RTOL)


def test_short_stretch_bond_is_accurate():
    # a bond observed only on 12 months where one factor barely moves: ill-conditioned G_j
    R, F = _panel(T=120, N=3, seed=5)
    F.iloc[50:62, 1] = 0.001 + 1e-7 * np.arange(12)
    R.iloc[:50, 2] = np.nan
    R.iloc[62:, 2] = np.nan
    X = np.column_stack([np.ones(len(F)), F.to_numpy()])
    res = bb.ols(R, F, hac_lags=2)
    s = _sm_fit(R["C0002"].to_numpy(), X, 2, True)
    np.testing.assert_allclose(res.params.loc["C0002"], s.params, rtol=1e-7)
    np.testing.assert_allclose(res.bse.loc["C0002"], s.bse, rtol=1e-7)


def test_refined_route_matches_statsmodels():
    # a bond observed on 30 months where two factors nearly coincide: 100 < cond(G_j) < 1e4, so
    # its coefficients take the step of iterative refinement; a gappy bond and complete ones beside
    R, F = _panel(T=120, N=3, seed=8)
    rng = np.random.default_rng(1)
    F.iloc[40:70, 1] = F.iloc[40:70, 0] + 0.1 * rng.normal(0, 0.02, 30)
    R.iloc[:40, 1] = np.nan
    R.iloc[70:, 1] = np.nan
    R.iloc[::4, 2] = np.nan
    X = np.column_stack([np.ones(len(F)), F.to_numpy()])
    Q = np.linalg.qr(X / np.linalg.norm(X, axis=0))[0][40:70]  # the fit's orthonormal rows
    assert 100 < np.linalg.cond(Q.T @ Q, 1) < 1e4
    res = bb.ols(R, F, hac_lags=3)
    for bond in R.columns:
        s = _sm_fit(R[bond].to_numpy(), X, 3, True)
        np.testing.assert_allclose(res.params.loc[bond], s.params, rtol=RTOL)
        np.testing.assert_allclose(res.bse.loc[bond], s.bse, rtol=RTOL)
        np.testing.assert_allclose(res.rsquared[bond], s.rsquared, rtol=RTOL)
        np.testing.assert_allclose(np.sqrt(s.scale), res.sigma[bond], rtol=RTOL)
        r = res.resid[bond].dropna()
        np.testing.assert_allclose(r.to_numpy(), s.resid, rtol=1e-7, atol=1e-13)


def test_design_without_constant_and_total_sum_of_squares():
    # no constant column: coefficients against least squares, the centred total sum of squares
    # against its definition (the fast route for it needs a constant column)
    R, F = _panel(T=60, N=5, missing=0.2, seed=11)
    X = F.to_numpy()
    Y = R.to_numpy()
    fit = batched_ols(X, Y, hac_lags=2)
    for j in range(Y.shape[1]):
        o = np.isfinite(Y[:, j])
        b = np.linalg.lstsq(X[o], Y[o, j], rcond=None)[0]
        np.testing.assert_allclose(fit.params[j], b, rtol=1e-10)
        e = Y[o, j] - X[o] @ b
        np.testing.assert_allclose(fit.rss[j], e @ e, rtol=1e-10)
        y = Y[o, j]
        np.testing.assert_allclose(fit.tss[j], ((y - y.mean()) ** 2).sum(), rtol=1e-12)
    # with a constant column, tss = rss + ess must equal the same definition
    X1 = np.column_stack([np.full(60, 2.0), X])
    fit1 = batched_ols(X1, Y)
    for j in range(Y.shape[1]):
        y = Y[np.isfinite(Y[:, j]), j]
        np.testing.assert_allclose(fit1.tss[j], ((y - y.mean()) ** 2).sum(), rtol=1e-12)


def test_core_treats_infinite_responses_as_missing():
    R, F = _panel(T=50, N=3, seed=13)
    X = np.column_stack([np.ones(50), F.to_numpy()])
    Y = R.to_numpy().copy()
    Y[3, 1], Y[7, 2] = np.inf, np.nan
    fit = batched_ols(X, Y, hac_lags=2)
    ref = batched_ols(X, np.where(np.isinf(Y), np.nan, Y), hac_lags=2)
    assert np.isnan(fit.resid[3, 1]) and np.isnan(fit.resid[7, 2])
    np.testing.assert_array_equal(fit.nobs, [50, 49, 49])
    np.testing.assert_allclose(fit.params, ref.params, rtol=1e-14)
    np.testing.assert_allclose(fit.cov_hac, ref.cov_hac, rtol=1e-14)


@pytest.mark.parametrize("hac_gaps", ["compress", "zero"])
def test_row_and_column_major_responses_agree(hac_gaps):
    # work arrays follow the memory order of Y (pandas hands over column-major arrays)
    R, F = _panel(T=70, N=9, missing=0.2, seed=14)
    X = np.column_stack([np.ones(70), F.to_numpy()])
    a = batched_ols(X, np.ascontiguousarray(R.to_numpy()), hac_lags=3, hac_gaps=hac_gaps)
    Yf = np.asfortranarray(R.to_numpy())
    Ys = np.repeat(R.to_numpy(), 2, axis=1)[:, ::2]  # every other column: neither C nor F order
    for Y in (Yf, Ys):
        _assert_fits_agree(a, batched_ols(X, Y, hac_lags=3, hac_gaps=hac_gaps))


def _assert_fits_agree(a, b):
    for name in ("params", "rss", "tss"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12)
    for name in ("cov_classical", "cov_hac"):  # relative to sqrt(V_ii V_jj)
        A, B = getattr(a, name), getattr(b, name)
        d = np.sqrt(np.diagonal(B, axis1=1, axis2=2))
        scale = d[:, :, None] * d[:, None, :]
        np.testing.assert_allclose(A / scale, B / scale, rtol=0, atol=1e-12)
    # residuals to rounding of the responses (about 0.5 here), NaN in the same places
    np.testing.assert_allclose(a.resid, b.resid, rtol=0, atol=1e-14)


def test_spd_inverse_against_lapack():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(50, 5, 5))
    G = A @ A.transpose(0, 2, 1) + 1e-3 * np.eye(5)
    G[0] = np.diag([1.0, 2.0, 0.0, 3.0, 4.0])  # singular
    G[1] = np.diag([1.0, -2.0, 1.0, 3.0, 4.0])  # indefinite
    Gi, cond = _spd_inverse(np.ascontiguousarray(G.transpose(1, 2, 0)))
    Gi = Gi.transpose(2, 0, 1)
    assert np.isinf(cond[:2]).all()
    np.testing.assert_allclose(
        Gi[2:], np.linalg.inv(G[2:]), rtol=1e-9, atol=1e-9 * np.abs(Gi[2:]).max()
    )
    np.testing.assert_allclose(cond[2:], np.linalg.cond(G[2:], 1), rtol=1e-8)


@pytest.mark.parametrize("lags", [0, 1, 4, 30])
def test_packed_windows_meat_against_lag_sums(lags):
    # gaps of every length (one spanning most of the sample), chunks and window blocks that do
    # not divide the sizes: against the lag-by-lag sums on each series' dropped-NaN scores
    rng = np.random.default_rng(lags)
    T, N, p = 70, 23, 3
    Z = np.linalg.qr(rng.normal(size=(T, p)))[0]
    mask = rng.random((T, N)) < 0.7
    mask[5:60, 0] = False
    mask[:, 1] = True
    mask[::2, 2] = False
    U = np.where(mask, rng.normal(size=(T, N)), 0.0)
    ref = np.stack(
        [
            newey_west_meat((Z[mask[:, j]] * U[mask[:, j], j][:, None])[None], lags)[0]
            for j in range(N)
        ]
    )
    for chunk, width in [(5, 3), (7, 16), (64, 1)]:
        got = _meat_compressed(Z, U, mask, lags, chunk=chunk, width=width)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())


# NIST StRD Longley certified values (https://www.itl.nist.gov/div898/strd/lls/data/Longley.shtml)
LONGLEY_PARAMS = [
    -3482258.63459582, 15.0618722713733, -0.358191792925910e-01, -2.02022980381683,
    -1.03322686717359, -0.511041056535807e-01, 1829.15146461355,
]  # fmt: skip
LONGLEY_BSE = [
    890420.383607373, 84.9149257747669, 0.334910077722432e-01, 0.488399681651699,
    0.214274163161675, 0.226073200069370, 455.478499142212,
]  # fmt: skip


def _lstsq_tolerances(X, y):
    """First-order error bounds of a backward-stable least-squares solve (Higham 2002, sec. 20.1).

    With kappa the condition number of the column-equilibrated design (Householder QR is
    column-scaling invariant), u the unit roundoff and theta the angle between y and its fit:
    coefficients ``rtol ~ u (kappa + kappa^2 tan(theta))`` and the residual norm
    ``rtol ~ 2 u kappa / sin(theta)``. A factor of 10 covers the constants of the bounds. These
    follow the conditioning of the problem, not one BLAS build.
    """
    u = np.finfo(float).eps
    kappa = np.linalg.cond(X / np.linalg.norm(X, axis=0))
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    fit, r = X @ b, y - X @ b
    tan_theta = np.linalg.norm(r) / np.linalg.norm(fit)
    sin_theta = np.linalg.norm(r) / np.linalg.norm(y)
    return 10 * u * (kappa + kappa**2 * tan_theta), 10 * 2 * u * kappa / sin_theta


def test_longley_nist_certified():
    data = sm.datasets.longley.load_pandas()
    dates = pd.date_range("1947-01-31", periods=16, freq="ME")
    F = pd.DataFrame(data.exog.to_numpy(), index=dates, columns=list(data.exog.columns))
    y = pd.Series(data.endog.to_numpy(), index=dates, name="TOTEMP")
    X = np.column_stack([np.ones(16), F.to_numpy()])
    # Longley is ill-conditioned (cond(X) ~ 4.9e9; 4.3e4 after equilibrating the columns): the
    # tolerances come from that condition number (about 1.5e-8 for the coefficients, 5e-8 for sigma)
    # rather than from the digits one BLAS build happens to reach.
    rtol_b, rtol_r = _lstsq_tolerances(X, y.to_numpy())
    assert 1e-9 < rtol_b < 1e-7 and 1e-9 < rtol_r < 1e-7
    # the same series twice, once complete and once missing two months: both routes
    R = pd.DataFrame({"full": y, "gappy": y.where(~y.index.isin(dates[[3, 9]]))})
    res = bb.ols(R, F, check_units=False)  # employment on GNP etc.: not returns
    np.testing.assert_allclose(res.params.loc["full"], LONGLEY_PARAMS, rtol=rtol_b)
    np.testing.assert_allclose(res.bse.loc["full"], LONGLEY_BSE, rtol=rtol_b)
    # 1 - R2 = RSS / TSS carries the residual's relative error
    np.testing.assert_allclose(1 - res.rsquared["full"], 1 - 0.995479004577296, rtol=2 * rtol_r)
    np.testing.assert_allclose(res.sigma["full"], 304.854073561965, rtol=rtol_r)
    s = _sm_fit(R["gappy"].to_numpy(), X, None, True)
    o = R["gappy"].notna().to_numpy()
    rtol_gb, _ = _lstsq_tolerances(X[o], R["gappy"].to_numpy()[o])
    # two independent solves of the same problem: each within its bound of the exact answer
    np.testing.assert_allclose(res.params.loc["gappy"], s.params, rtol=2 * rtol_gb)
    np.testing.assert_allclose(res.bse.loc["gappy"], s.bse, rtol=2 * rtol_gb)


def test_hac_zero_gaps_against_calendar_loop():
    R, F = _panel(T=60, N=4, missing=0.25, seed=7)
    X = np.column_stack([np.ones(len(F)), F.to_numpy()])
    L = 3
    res = bb.ols(R, F, hac_lags=L, use_correction=False, hac_gaps="zero")
    w = bartlett_weights(L)
    for bond in R.columns:
        y = R[bond].to_numpy()
        o = np.isfinite(y)
        b = np.linalg.lstsq(X[o], y[o], rcond=None)[0]
        u = np.where(o, y - X @ b, 0.0)  # calendar positions kept, zero where missing
        S = np.zeros((4, 4))
        for t in range(len(y)):
            for s_ in range(len(y)):
                lag = abs(t - s_)
                if lag <= L:
                    S += w[lag] * u[t] * u[s_] * np.outer(X[t], X[s_])
        B = np.linalg.pinv(X[o].T @ X[o])
        np.testing.assert_allclose(res.cov_params.sel(bond=bond).values, B @ S @ B, rtol=1e-9)


def test_input_forms_agree():
    sim = bb.datasets.simulate_panel(n_bonds=15, n_dates=48, seed=2, missing=0.1, min_obs=20)
    a = bb.ols(sim.panel, sim.factors, hac_lags=3)
    b = bb.ols(sim.panel.returns, sim.factors, hac_lags=3)
    c = bb.ols(sim.panel.returns.to_pandas(), sim.factors, hac_lags=3)
    d = bb.ols(sim.panel.returns.transpose("bond", "date"), sim.factors, hac_lags=3)
    for other in (b, c, d):
        pd.testing.assert_frame_equal(a.params, other.params)
        pd.testing.assert_frame_equal(a.bse, other.bse)
    assert a.resid.shape == (48, 15) and a.resid.index.equals(sim.panel.dates)
    assert a.cov_params.dims == ("bond", "coef", "coef2")
    one = bb.ols(sim.panel.returns.to_pandas()["B0003"], sim.factors)
    np.testing.assert_allclose(one.params.iloc[0], a.params.loc["B0003"], rtol=1e-12)
    assert "t(alpha)" in a.summary().columns and "OLSResult(15 bonds" in repr(a)


def test_noise_free_recovers_truth_and_factor_dates_are_month_end():
    sim = bb.datasets.simulate_panel(n_bonds=10, n_dates=40, sigma=0.0, seed=9)
    F = sim.factors.copy()
    F.index = F.index - pd.Timedelta(days=3)  # mid-month labels still align
    res = bb.ols(sim.panel, F)
    np.testing.assert_allclose(res.params["alpha"], sim.truth.alpha, atol=1e-12)
    np.testing.assert_allclose(res.beta, sim.truth.beta, rtol=1e-9)


def test_expected_return_delta_method():
    R, F = _panel(missing=0.1, seed=3)
    res = bb.ols(R, F, hac_lags=4)
    X = np.column_stack([np.ones(len(F)), F.to_numpy()])
    m = pd.Series({"f0": 0.004, "f1": 0.002, "f2": -0.001})
    er = res.expected_return(m)
    c = np.r_[1.0, m.to_numpy()]
    for bond in R.columns[:5]:
        s = _sm_fit(R[bond].to_numpy(), X, 4, True)
        tt = s.t_test(c)
        np.testing.assert_allclose(er.loc[bond, "mean"], tt.effect[0], rtol=1e-9)
        np.testing.assert_allclose(er.loc[bond, "se"], tt.sd[0, 0], rtol=1e-9)
    # with uncertainty of E[F]: numerical delta method on the stacked (theta, m) vector
    Sigma_F = F.cov().to_numpy()
    er2 = res.expected_return(m, factor_cov=Sigma_F, n_obs_factors=120)
    for bond in R.columns[:5]:
        theta = res.params.loc[bond].to_numpy()
        z = np.r_[theta, m.to_numpy()]

        def f(z):
            return z[0] + z[1:4] @ z[4:]

        h = 1e-6
        J = np.array([(f(z + h * e) - f(z - h * e)) / (2 * h) for e in np.eye(7)])
        V = np.zeros((7, 7))
        V[:4, :4] = res.cov_params.sel(bond=bond).values
        V[4:, 4:] = Sigma_F / 120
        np.testing.assert_allclose(er2.loc[bond, "se"], np.sqrt(J @ V @ J), rtol=1e-6)
    # defaults: sample means; "sample" covariance = cov / T
    er3 = res.expected_return(factor_cov="sample")
    er4 = res.expected_return(F.mean(), factor_cov=F.cov(), n_obs_factors=len(F))
    pd.testing.assert_frame_equal(er3, er4)
    with pytest.raises(DataError, match="f2"):
        res.expected_return({"f0": 0.0, "f1": 0.0})


def test_errors_name_what_and_where():
    R, F = _panel(T=40, N=3)
    with pytest.raises(DataError, match="2000-03-31"):
        bb.ols(R, F.drop(index=F.index[2]))
    F2 = F.copy()
    F2.iloc[5, 1] = np.nan
    with pytest.raises(DataError, match="f1 on 2000-06-30"):
        bb.ols(R, F2)
    R2 = R.copy()
    R2.iloc[4:, 1] = np.nan
    with pytest.raises(DataError, match=r"C0001 \(4\)"):
        bb.ols(R2, F)
    R3 = R.copy()
    R3.iloc[3, 2] = np.inf
    with pytest.raises(DataError, match="C0002, 2000-04-30"):
        bb.ols(R3, F)
    with pytest.raises(DataError, match="alpha"):
        bb.ols(R, F.rename(columns={"f0": "alpha"}))
    F3 = F.copy()
    F3["f3"] = 2 * F3["f0"]
    with pytest.raises(DataError, match="collinear"):
        bb.ols(R, F3)
    F4 = F.copy()
    F4.iloc[:20, 2] = 0.01  # constant where C0000 is observed -> collinear with alpha there
    R4 = R.copy()
    R4.iloc[20:, 0] = np.nan
    with pytest.raises(DataError, match="C0000"):
        bb.ols(R4, F4)
    with pytest.raises(DataError, match="non-negative integer"):
        bb.ols(R, F, hac_lags=-1)
    with pytest.raises(DataError, match="BondPanel"):
        bb.ols([1, 2], F)
    with pytest.raises(DataError, match="dims"):
        bb.ols(xr.DataArray(R.to_numpy(), dims=("t", "b")), F)


def test_staggered_contiguous_and_gappy_series_and_long_lags():
    # contiguous issuance-to-maturity windows (calendar route) mixed with gappy series (packed
    # windows route), and a lag longer than a short series
    R, F = _panel(T=90, N=8, seed=12)
    R.iloc[:20, 0] = np.nan
    R.iloc[70:, 1] = np.nan
    R.iloc[30:42, 2] = np.nan  # one long gap
    R.iloc[::3, 3] = np.nan
    R.iloc[:78, 4] = np.nan  # only 12 months
    X = np.column_stack([np.ones(len(F)), F.to_numpy()])
    for lags in (2, 15):
        res = bb.ols(R, F, hac_lags=lags)
        for bond in R.columns:
            s = _sm_fit(R[bond].to_numpy(), X, lags, True)
            np.testing.assert_allclose(res.bse.loc[bond], s.bse, rtol=RTOL)


def test_min_obs_drops_short_bonds_with_a_warning():
    R, F = _panel(T=40, N=4)
    R.iloc[3:, 1] = np.nan  # C0001: 3 months, fewer than the 4 coefficients + 1
    R.iloc[6:, 2] = np.nan  # C0002: 6 months
    with pytest.raises(DataError, match=r"C0001 \(3\).*min_obs="):
        bb.ols(R, F)  # the default still refuses
    with pytest.warns(UserWarning, match=r"C0001 \(3\), C0002 \(6\)"):
        res = bb.ols(R, F, min_obs=12)
    assert list(res.params.index) == ["C0000", "C0003"]
    assert res.dropped.to_dict() == {"C0001": 3, "C0002": 6}
    assert "2 dropped" in repr(res)
    # the kept bonds are fitted exactly as without the short ones
    ref = bb.ols(R[["C0000", "C0003"]], F)
    pd.testing.assert_frame_equal(res.params, ref.params)
    assert bb.ols(R[["C0000", "C0003"]], F, min_obs=12).dropped.empty
    with pytest.raises(DataError, match="at least 5"):
        bb.ols(R, F, min_obs=4)
    with pytest.raises(DataError, match="every bond"):
        bb.ols(R, F, min_obs=41)


def test_units_percent_gross_and_conversion():
    R, F = _panel(T=60, N=5)
    with pytest.raises(DataError, match="returns look like percent.*units='percent'"):
        bb.ols(R * 100, F)
    with pytest.raises(DataError, match=r"gross returns 1 \+ r"):
        bb.ols(1 + R, F)
    with pytest.raises(DataError, match="factors look like percent.*factors f0, f1, f2"):
        bb.ols(R, F * 100)
    mixed = R.copy()
    mixed["C0003"] *= 100
    with pytest.raises(DataError, match="bonds C0003"):
        bb.ols(mixed, F)
    ref = bb.ols(R, F)
    conv = bb.ols(R * 100, F * 100, units="percent")
    np.testing.assert_allclose(conv.params, ref.params, rtol=1e-12)
    conv2 = bb.ols(R * 100, F, units="percent", factor_units="decimal")
    np.testing.assert_allclose(conv2.params, ref.params, rtol=1e-12)
    with pytest.warns(UserWarning, match="declared in percent but are tiny"):
        bb.ols(R, F, units="percent", factor_units="decimal")
    with pytest.warns(UserWarning, match="large for monthly decimal"):
        bb.ols(R * 15, F)
    with pytest.raises(DataError, match="units of the returns"):
        bb.ols(R, F, units="bp")
    bb.ols(R * 100, F, check_units=False)  # the user says they are right


def test_collinear_factors_named_over_the_sample():
    R, F = _panel(T=40, N=3)
    with pytest.raises(DataError, match="f0, f1, f3 are an exact linear combination"):
        bb.ols(R, F.assign(f3=F["f0"] - 2 * F["f1"]))
    with pytest.raises(DataError, match=r"alpha \(the constant\), c"):
        bb.ols(R, F.assign(c=0.01))


def test_collinear_columns_core():
    from bayesbond.core.ols import collinear_columns

    rng = np.random.default_rng(4)
    X = np.column_stack([np.ones(50), rng.normal(size=(50, 3))])
    assert collinear_columns(X).size == 0
    Xd = np.column_stack([X, X[:, 1] - 3 * X[:, 3]])  # column 4 = x1 - 3 x3; x2 not involved
    assert collinear_columns(Xd).tolist() == [1, 3, 4]
    Xz = np.column_stack([X, np.zeros(50)])
    assert collinear_columns(Xz).tolist() == [4]
    # nearly (not exactly) collinear columns are a legitimate, if ill-conditioned, design
    Xn = np.column_stack([X, X[:, 1] + 1e-6 * rng.normal(size=50)])
    assert collinear_columns(Xn).size == 0

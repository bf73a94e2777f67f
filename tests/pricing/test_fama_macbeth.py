"""Two-pass Fama-MacBeth and SDF GMM against linearmodels 7.1, closed forms and Monte Carlo."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import bayesbond as bb
from bayesbond.errors import DataError

lm_ap = pytest.importorskip("linearmodels.asset_pricing")


def _simulate(T=240, N=10, K=3, seed=0, premia=None, start="2000-01-31"):
    rng = np.random.default_rng(seed)
    F = rng.normal(0.005, 0.03, (T, K))
    B = rng.normal(1.0, 0.5, (N, K))
    lam = np.full(K, 0.005) if premia is None else np.asarray(premia)
    # E[r] = B lam; the factors' own means (0.005) need not equal lam (non-traded view)
    R = B @ lam + (F - 0.005) @ B.T + rng.normal(0, 0.02, (T, N))
    dates = pd.date_range(start, periods=T, freq="ME")
    return (pd.DataFrame(R, index=dates, columns=[f"p{i}" for i in range(N)]),
            pd.DataFrame(F, index=dates, columns=[f"f{k}" for k in range(K)]))


def _residual_cov(R, F):
    T = len(R)
    Fc = np.c_[np.ones(T), F]
    E = R - Fc @ np.linalg.lstsq(Fc, R, rcond=None)[0]
    return E.T @ E / T


def _linearmodels(R, F, intercept, gls, lags):
    sigma = _residual_cov(R.to_numpy(), F.to_numpy()) if gls else None
    mod = lm_ap.LinearFactorModel(R.to_numpy(), F.to_numpy(), risk_free=intercept, sigma=sigma)
    kw = {} if lags is None else {"cov_type": "kernel", "kernel": "bartlett", "bandwidth": lags}
    return mod.fit(**kw)


def _agree(ours, lm):
    lp = np.asarray(lm.risk_premia)
    ls = np.asarray(lm.risk_premia_se)
    np.testing.assert_allclose(ours.risk_premia.to_numpy(), lp, rtol=1e-8, atol=0)
    np.testing.assert_allclose(ours.se_gmm.to_numpy(), ls, rtol=1e-8, atol=0)
    np.testing.assert_allclose(ours.beta.to_numpy(), np.asarray(lm.betas), rtol=1e-8)
    np.testing.assert_allclose(ours.alpha.to_numpy(), np.asarray(lm.alphas).ravel(),
                               rtol=1e-8, atol=1e-14)
    return max(np.max(np.abs(ours.risk_premia.to_numpy() / lp - 1)),
               np.max(np.abs(ours.se_gmm.to_numpy() / ls - 1)))


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("gls", [False, True])
@pytest.mark.parametrize("lags", [None, 4])
def test_matches_linearmodels_simulated(intercept, gls, lags):
    R, F = _simulate()
    res = bb.pricing.fama_macbeth(R, F, gls=gls, hac_lags=lags, intercept=intercept)
    err = _agree(res, _linearmodels(R, F, intercept, gls, lags))
    print(f"intercept={intercept} gls={gls} lags={lags}: max rel. diff vs linearmodels {err:.1e}")
    assert list(res.risk_premia.index) == (["intercept"] if intercept else []) + list(F.columns)


def _real(shared_data):
    corp = pd.read_csv(shared_data / "corp_tr_returns_monthly.csv", index_col=0,
                       parse_dates=True)
    gw = pd.read_csv(shared_data / "goyal_welch_bond_factors_monthly.csv", index_col=0,
                     parse_dates=True)
    ice = corp[[c for c in corp.columns if c.startswith("BAML")]].dropna()
    both = ice.join(gw[["rf", "TERM", "DEF"]], how="inner").dropna()
    R = both[ice.columns].sub(both["rf"], axis=0)
    return R, both[["TERM", "DEF"]]


@pytest.mark.data
@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("gls", [False, True])
@pytest.mark.parametrize("lags", [None, 6])
def test_matches_linearmodels_real(shared_data, intercept, gls, lags):
    R, F = _real(shared_data)
    res = bb.pricing.fama_macbeth(R, F, gls=gls, hac_lags=lags, intercept=intercept)
    err = _agree(res, _linearmodels(R, F, intercept, gls, lags))
    print(f"ICE x (TERM, DEF), T = {res.nobs}: max rel. diff vs linearmodels {err:.1e}")


def test_shanken_closed_form_and_fm_errors():
    R, F = _simulate(seed=3)
    res = bb.pricing.fama_macbeth(R, F, intercept=True)
    Rn, Fn = R.to_numpy(), F.to_numpy()
    T, N = Rn.shape
    S_e = _residual_cov(Rn, Fn)
    S_f = np.cov(Fn.T, ddof=0)
    X = np.c_[np.ones(N), res.beta.to_numpy()]
    lam = res.risk_premia.to_numpy()
    H = np.linalg.inv(X.T @ X) @ X.T
    c = lam[1:] @ np.linalg.inv(S_f) @ lam[1:]
    Sf_star = np.zeros((4, 4))
    Sf_star[1:, 1:] = S_f
    V = ((1 + c) * H @ S_e @ H.T + Sf_star) / T
    np.testing.assert_allclose(res.cov_shanken.to_numpy(), V, rtol=1e-12)
    np.testing.assert_allclose(res.shanken_c, c, rtol=1e-12)
    # plain FM: the mean of the monthly estimates and their standard error
    np.testing.assert_allclose(res.lambda_t.mean().to_numpy(), lam, rtol=1e-10)
    np.testing.assert_allclose(res.se_fm.to_numpy(), res.lambda_t.std(ddof=0).to_numpy()
                               / np.sqrt(T), rtol=1e-10)
    # cross-sectional R2 (OLS with intercept: the centred one)
    rbar = Rn.mean(0)
    r2 = 1 - np.sum(res.alpha.to_numpy() ** 2) / np.sum((rbar - rbar.mean()) ** 2)
    assert res.rsquared == pytest.approx(r2, rel=1e-12)
    # GLS: H Sigma H' = (X' Sigma^-1 X)^-1, and the lambda equals GLS with Sigma_r
    g = bb.pricing.fama_macbeth(R, F, gls=True)
    Wi = np.linalg.inv(S_e)
    np.testing.assert_allclose(
        g.cov_shanken.to_numpy(),
        ((1 + g.shanken_c) * np.linalg.inv(X.T @ Wi @ X) + Sf_star) / T, rtol=1e-10)
    S_r = np.cov(Rn.T, ddof=0)
    Wr = np.linalg.inv(S_r)
    lam_r = np.linalg.solve(X.T @ Wr @ X, X.T @ Wr @ rbar)
    np.testing.assert_allclose(g.risk_premia.to_numpy(), lam_r, rtol=1e-9)


def test_shanken_se_is_the_sampling_sd():
    """Monte Carlo: i.i.d. normal economy; Shanken SE ~ sampling sd of lambda, plain FM lower."""
    reps, lam_hat, se, se_fm = 300, [], [], []
    for s in range(reps):
        R, F = _simulate(T=200, N=8, K=2, seed=100 + s, premia=[0.01, 0.005])
        r = bb.pricing.fama_macbeth(R, F, intercept=True)
        lam_hat.append(r.risk_premia.to_numpy())
        se.append(r.se.to_numpy())
        se_fm.append(r.se_fm.to_numpy())
    sd = np.std(lam_hat, axis=0, ddof=1)
    ratio = np.mean(se, axis=0) / sd
    ratio_fm = np.mean(se_fm, axis=0) / sd
    print(f"Shanken SE / MC sd: {ratio.round(3)}; plain FM SE / MC sd: {ratio_fm.round(3)}")
    # the sd of an sd estimate over 300 reps is ~4%: allow 15%
    assert np.all(np.abs(ratio - 1) < 0.15)
    assert np.all(ratio_fm[1:] < ratio[1:])


# ------------------------------------------------------------------------------- SDF GMM
def _bhj_sandwich(Rn, Fn, theta, kappa=1e8):
    """Bryzgalova-Huang-Julliard SDF_gmm covariance with factor-moment weight kappa."""
    T, N = Rn.shape
    K = Fn.shape[1]
    mu_f = Fn.mean(0)
    Fd = Fn - mu_f
    mu_R = Rn.mean(0)
    C_f = Rn.T @ Fd / T
    lam_c, b = theta[0], theta[1:]
    g = np.c_[Rn - lam_c - Rn * (Fd @ b)[:, None], Fd]
    g = g - g.mean(0)
    S = g.T @ g / T
    G = np.zeros((N + K, 2 * K + 1))
    G[:N, 0] = -1
    G[:N, 1:K + 1] = -C_f
    G[:N, K + 1:] = np.outer(mu_R, b)
    G[N:, K + 1:] = -np.eye(K)
    W = np.zeros((N + K, N + K))
    W[:N, :N] = np.eye(N)
    W[N:, N:] = kappa * np.eye(K)
    A = np.linalg.inv(G.T @ W @ G)
    return (A @ G.T @ W @ S @ W @ G @ A / T)[:K + 1, :K + 1]


def test_sdf_gmm_against_numerical_gmm():
    R, F = _simulate(seed=7)
    res = bb.pricing.sdf_gmm(R, F)
    Rn, Fn = R.to_numpy(), F.to_numpy()
    T, N = Rn.shape
    K = Fn.shape[1]

    def moments(x):  # full moment vector, (lambda_c, b, mu) free
        lam_c, b, mu = x[0], x[1:K + 1], x[K + 1:]
        e = Rn - lam_c - Rn * ((Fn - mu) @ b)[:, None]
        return np.r_[e.mean(0), 1e9 * (Fn - mu).mean(0)]

    # the factor means exactly identified (mu = fbar): the moments are linear in theta, so the
    # minimiser is the least-squares fit of rbar on [1, Cov(r, f)] (by SVD, not our solve)
    C = np.c_[np.ones(N), np.cov(Rn.T, Fn.T, ddof=0)[:N, N:]]
    th, *_ = np.linalg.lstsq(C, Rn.mean(0), rcond=None)
    np.testing.assert_allclose(res.risk_prices.to_numpy(), th, rtol=1e-10)
    assert np.abs(moments(np.r_[th, Fn.mean(0)])[:N] - res.alpha.to_numpy()).max() < 1e-15
    # all of (lambda_c, b, mu) free with a heavy weight on the factor moments: the limit
    x0 = np.r_[np.zeros(K + 1), Fn.mean(0) + 0.001]
    sol = optimize.least_squares(moments, x0, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    np.testing.assert_allclose(res.risk_prices.to_numpy(), sol.x[:K + 1], rtol=1e-6)
    V, V_bhj = res.cov.to_numpy(), _bhj_sandwich(Rn, Fn, th, kappa=1e5)
    sd = np.sqrt(np.diag(V))
    # in correlation units: the kappa -> infinity limit, reached as 1/kappa (3.6e-7 at
    # kappa = 1e2, 3.6e-9 at 1e4) until G'WG is ill-conditioned (4e-7 at 1e8)
    np.testing.assert_allclose(V / np.outer(sd, sd), V_bhj / np.outer(sd, sd), atol=2e-8)
    # implied premia lambda = Sigma_f b
    np.testing.assert_allclose(res.risk_premia.to_numpy(),
                               np.cov(Fn.T, ddof=0) @ res.risk_prices.to_numpy()[1:], rtol=1e-12)


def test_sdf_gmm_efficient_j_and_recovery():
    R, F = _simulate(T=2000, N=10, K=2, seed=11, premia=[0.01, 0.005])
    res = bb.pricing.sdf_gmm(R, F, weighting="efficient")
    b_true = np.linalg.solve(np.cov(F.to_numpy().T, ddof=0), [0.01, 0.005])
    z = (res.risk_prices.to_numpy()[1:] - b_true) / res.se.to_numpy()[1:]
    assert np.all(np.abs(z) < 4)
    assert 0 < res.jstat and res.jstat_pvalue > 0.001  # correctly specified
    g = bb.pricing.sdf_gmm(R, F, weighting="gls")
    assert np.isnan(g.jstat) and 0 <= g.rsquared <= 1


# --------------------------------------------------------------------------- bad input
def test_bad_input_errors():
    R, F = _simulate(T=60, N=10, K=2)
    bad = R.copy()
    bad.iloc[5, 3] = np.nan
    with pytest.raises(DataError, match=r"'p3' is missing on 1 .*2000-06-30"):
        bb.pricing.fama_macbeth(bad, F)
    shifted = F.copy()
    shifted.index = shifted.index + pd.DateOffset(years=20)
    with pytest.raises(DataError, match="no month in common"):
        bb.pricing.fama_macbeth(R, shifted)
    with pytest.raises(DataError, match=r"GLS needs more months .*T = 12, N = 10"):
        bb.pricing.fama_macbeth(R.iloc[:12], F.iloc[:12], gls=True)
    twin = F.assign(f2=F["f0"] * 2)
    with pytest.raises(DataError, match="f0, f2"):
        bb.pricing.fama_macbeth(R, twin)
    with pytest.raises(DataError, match="intercept"):
        bb.pricing.fama_macbeth(R, F.rename(columns={"f0": "intercept"}))
    with pytest.raises(DataError, match="too few"):
        bb.pricing.fama_macbeth(R.iloc[:, :2], F)
    with pytest.raises(DataError, match="hac_lags"):
        bb.pricing.fama_macbeth(R, F, hac_lags=-1)
    with pytest.raises(DataError, match="not numeric"):
        bb.pricing.fama_macbeth(R.assign(p0="x"), F)
    with pytest.raises(DataError, match="weighting"):
        bb.pricing.sdf_gmm(R, F, weighting="ols")

"""Checks of ``bb.pricing.select_factors``: the moment draws against scipy's inverse Wishart,
the Dirac enumeration against a dense brute force, the continuous sampler against the exact
Dirac probabilities, the numba engine against the numpy one, recovery of a simulated SDF, and
simulation-based calibration of the Gibbs sampler."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from scipy import integrate

import bayesbond as bb
from bayesbond.bayes.convergence import ess_bulk
from bayesbond.errors import DataError, ModelError, SpecError
from bayesbond.pricing import sdf_gibbs
from bayesbond.pricing import sdf_kernels as kern
from tests.pricing.sdf_economy import FACTORS, economy

PRICED, ZERO_PRICE = ["strong1", "strong2"], ["useless", "unpriced"]


def _fixed(cs):
    """A moment source that repeats one cross-section (the second stage alone)."""
    return lambda rng, n: kern.CrossSection(*[np.repeat(x, n, axis=0) for x in cs])


def _sample_cs(R, f, K, gls=False):
    Y = np.column_stack([f, R])
    return kern.cross_section(Y.mean(0)[None], np.cov(Y, rowvar=False)[None], K, gls=gls)


def _quiet_fit(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bb.pricing.select_factors(*args, progressbar=False, **kw)


# ------------------------------------------------------------------------ first stage, prior
def test_draw_moments_match_scipy_inverse_wishart():
    rng = np.random.default_rng(0)
    T, p, n = 15, 3, 40_000
    Y = rng.standard_normal((T, p)) @ np.array([[1, 0, 0], [0.5, 1, 0], [0.2, -0.3, 0.7]])
    mu, Sig = kern.draw_moments(Y, n, rng)
    E = Y - Y.mean(0)
    ref = st.invwishart(df=T - 1, scale=E.T @ E).rvs(n, random_state=1)
    for i, j in [(0, 0), (1, 0), (2, 2), (2, 1)]:  # two-sample KS, element by element
        assert st.ks_2samp(Sig[:, i, j], ref[:, i, j]).pvalue > 1e-3
    # mu | Y is multivariate t: mean Ybar, covariance S / (T (T - p - 2))
    np.testing.assert_allclose(mu.mean(0), Y.mean(0), atol=4 * np.sqrt(
        np.diag(E.T @ E) / (T * (T - p - 2)) / n).max())
    np.testing.assert_allclose(np.cov(mu, rowvar=False), E.T @ E / (T * (T - p - 2)), rtol=0.06)


def test_prior_sharpe_maps_back():
    """psi0 from the prior Sharpe ratio gives that ratio back through eq. (27) of BHJ."""
    R, f, _ = economy(300, 0)
    R, f = R.values, f.values
    psi, psi0, sr_max = kern.psi_from_prior_sharpe(R, f, 0.1, aw=1, bw=3)
    rho = np.corrcoef(np.column_stack([f, R]), rowvar=False)[5:, :5]
    rt = rho - rho.mean(0)
    eta = 0.25 * (rt**2).sum() / R.shape[1]
    assert sr_max * np.sqrt(psi0 * eta / (1 + psi0 * eta)) == pytest.approx(0.1, rel=1e-12)
    np.testing.assert_allclose(psi, psi0 * (rt**2).sum(0), rtol=1e-12)
    mu, S = R.mean(0), np.cov(R, rowvar=False)
    assert sr_max == pytest.approx(np.sqrt(mu @ np.linalg.inv(S) @ mu), rel=1e-10)


# ---------------------------------------------------------------------- Dirac: closed form
def _brute_force_log_marginal(a, X, d):
    """log p(a | model) = log int N(a; 0, s2 (I + X D^-1 X')) ds2 / s2, numerically."""
    V = np.eye(len(a)) + X @ np.diag(1 / d) @ X.T

    def logf(ls2):  # integrand in log sigma2 (the 1/s2 prior and ds2 = s2 dlog s2 cancel)
        return st.multivariate_normal(np.zeros(len(a)), np.exp(ls2) * V).logpdf(a)

    grid = np.linspace(-20, 10, 3001)
    m = max(logf(x) for x in grid[::50])
    val, _ = integrate.quad(lambda x: np.exp(logf(x) - m), -30, 15, limit=400, points=[
        grid[np.argmax([logf(x) for x in grid[::50]]) * 50]])
    return m + np.log(val)


@pytest.mark.parametrize("intercept", [True, False])
def test_dirac_log_marginals_equal_brute_force_on_three_factors(intercept):
    rng = np.random.default_rng(3)
    N, K = 8, 3
    C = rng.uniform(-0.8, 0.8, (N, K))
    a = 0.1 + C @ np.array([0.3, 0.0, -0.2]) + 0.1 * rng.standard_normal(N)
    n0 = int(intercept)
    X = np.column_stack([np.ones(N), C])[:, 1 - n0:]
    d = np.array([1e-2, 1 / 2.0, 1 / 0.5, 1 / 3.0])[1 - n0:]
    lm = kern.dirac_log_marginals((X.T @ X)[None], (X.T @ a)[None], np.array([a @ a]), d, N,
                                  n0=n0)[0]
    bits = kern.model_bits(K)
    cols = [[*range(n0), *(n0 + np.flatnonzero(b))] for b in bits]
    ref = np.array([_brute_force_log_marginal(a, X[:, c], d[c]) for c in cols])
    np.testing.assert_allclose(lm, ref, rtol=0, atol=1e-6)
    p, q = np.exp(lm - lm.max()), np.exp(ref - ref.max())
    np.testing.assert_allclose(p / p.sum(), q / q.sum(), atol=1e-7)


def test_dirac_fit_probabilities_sum_to_one_and_match_inclusion():
    R, f, _ = economy(400, 1)
    fit = _quiet_fit(R, f[["strong1", "useless", "unpriced"]], prior_sharpe=0.1,
                     method="dirac", draws=200, chains=2, random_seed=0)
    s = fit["summary"]
    assert float(s["model_probability"].sum()) == pytest.approx(1.0, abs=1e-12)
    assert s.sizes["model"] == 8
    # exact inclusion probabilities and the sampled gamma agree to Monte Carlo error
    g = fit["posterior"]["gamma"].mean(("chain", "draw")).values
    p = s["inclusion_probability"].values
    assert np.all(np.abs(g - p) < 4 * np.sqrt(p * (1 - p) / 400) + 1e-9)


def test_dirac_refuses_more_than_twenty_factors():
    rng = np.random.default_rng(0)
    dates = pd.date_range("2000-01-31", periods=80, freq="ME")
    f = pd.DataFrame(rng.standard_normal((80, 21)), index=dates,
                     columns=[f"f{i}" for i in range(21)])
    R = pd.DataFrame(rng.standard_normal((80, 24)) + 0.2, index=dates,
                     columns=[f"r{i}" for i in range(24)])
    with pytest.raises(ModelError, match="K = 20.*K = 21"):
        bb.pricing.select_factors(R, f, prior_sharpe=0.1, method="dirac", progressbar=False)


# ------------------------------------------------------------- continuous sampler, engines
def test_numba_engine_equals_numpy_engine():
    if not sdf_gibbs.numba_available():
        pytest.skip("numba is not installed")
    R, f, _ = economy(300, 2)
    psi = kern.psi_from_prior_sharpe(R.values, f.values, 0.1)[0]
    Y = np.column_stack([f.values, R.values])

    def moments(rng, n):
        return kern.cross_section(*kern.draw_moments(Y, n, rng), 5, gls=True)

    runs = [kern.continuous_ss(moments, [np.random.default_rng(s) for s in (1, 2)], n_draws=150,
                               n_burn=20, psi=psi, N=25, sweeps=2, engine=e)
            for e in ("numpy", "numba")]
    for k in runs[0]:
        np.testing.assert_allclose(runs[1][k], runs[0][k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_continuous_matches_exact_dirac_at_fixed_moments():
    """With one cross-section and a tiny spike the continuous posterior of gamma is the Dirac
    one; tolerance 4 Monte Carlo standard errors (from the bulk ESS) plus 0.005 for r > 0."""
    R, f, _ = economy(600, 1)
    psi = kern.psi_from_prior_sharpe(R.values, f.values, 0.15)[0]
    cs = _sample_cs(R.values, f.values, 5)
    lm = kern.dirac_log_marginals(cs.G0, cs.g, cs.c, np.r_[1e-5, 1 / psi], 25)[0]
    p = np.exp(lm - lm.max())
    exact = kern.model_bits(5).T @ (p / p.sum())
    out = kern.continuous_ss(_fixed(cs), [np.random.default_rng(s) for s in range(4)],
                             n_draws=3000, n_burn=200, psi=psi, r=1e-4, N=25)
    g = out["gamma"].astype(float)
    se = np.sqrt(exact * (1 - exact) / np.maximum(ess_bulk(g), 1.0))
    assert np.all(np.abs(g.mean((0, 1)) - exact) < 4 * se + 0.005), (g.mean((0, 1)), exact)


def _agree(R, f, T_label, **kw):
    cont = _quiet_fit(R, f, draws=2500, tune=300, random_seed=4, **kw)
    dirac = _quiet_fit(R, f, method="dirac", draws=1000, random_seed=4, **kw)
    pc = cont["posterior"]["gamma"].astype(float)
    pd_ = dirac["summary"]["inclusion_probability"].values
    se = np.sqrt(pd_ * (1 - pd_) / np.maximum(
        ess_bulk(pc.transpose("chain", "draw", "factor").values), 1.0))
    diff = np.abs(pc.mean(("chain", "draw")).values - pd_)
    print(T_label, kw, "continuous", pc.mean(("chain", "draw")).values.round(3), "dirac",
          pd_.round(3))
    # 4 Monte Carlo standard errors of the continuous sampler, 4 of the Dirac average over its
    # 4000 moment draws (at most sqrt(0.25 / 4000)), and 0.01 for the spike r = 0.001
    assert np.all(diff < 4 * se + 4 * np.sqrt(0.25 / 4000) + 0.01), diff


def test_continuous_and_dirac_fits_agree():
    """Full posterior (moments drawn): the inclusion probabilities of the Gibbs sampler equal
    the exact Dirac ones (the paper's gamma | lambda step in place of the blocked one gives
    0.70 against the exact 0.85 for strong2 and 0.35 against 0.46 for unpriced here)."""
    R, f, _ = economy(600, 1)
    _agree(R, f, "T=600", prior_sharpe=0.15)


def test_continuous_and_dirac_agree_with_gls():
    """GLS cross-section (pricing errors ~ N(0, sigma2 Omega_R)): same agreement. (With these
    iid pricing errors GLS is less sure of the priced factors than OLS: 0.5-0.85 against
    > 0.99 over five seeds at T = 2400.)"""
    R, f, _ = economy(T_FAST, 5)
    _agree(R, f, f"T={T_FAST}", prior_sharpe=0.5 * kern.max_sharpe(R.values),
           cross_section="gls")


# ------------------------------------------------------------------ simulated truth
#: T = 2400 months: the priced factors' risk prices (0.2 per unit correlation) are about 10
#: standard errors (1 / sqrt(T)) from zero, and the zero-price factor's Bayes factor has had
#: time to fall (its inclusion probability falls with T, to 0.32 on average at T = 2400 against
#: 0.44 at T = 1200 over 12 seeds)
T_FAST = 2400


def _check_truth(fit, lam_true, strict=True):
    s = fit["summary"]
    pip = s["inclusion_probability"].to_series()
    out = {"pip": pip.round(3).to_dict()}
    assert (pip[PRICED] > 0.9).all(), out
    if strict:
        assert pip["unpriced"] < 0.5, out
    # useless and weak (psi_j ~ 0): the data cannot tell slab from spike, the prior mean 1/2
    # comes back and the price is shrunk to zero
    assert abs(pip["useless"] - 0.5) < 0.05 and abs(pip["weak"] - 0.5) < 0.05, out
    # ... and the summary says so: their information ratio is far below 1, the others' far above
    ident = s["identified"].to_series()
    assert not ident["useless"] and not ident["weak"] and ident[PRICED + ["unpriced"]].all(), \
        s["information_ratio"].to_series()
    lo, hi = s["lambda_lower"].to_series(), s["lambda_upper"].to_series()
    assert lo["useless"] < 0 < hi["useless"] and hi["useless"] - lo["useless"] < 0.05, out
    return pip


def test_selection_recovers_the_simulated_sdf():
    R, f, lam = economy(T_FAST, 0)
    sr = kern.max_sharpe(R.values)
    fit = _quiet_fit(R, f, prior_sharpe=0.5 * sr, draws=1500, tune=300, random_seed=0)
    _check_truth(fit, lam)
    post = fit["posterior"]
    assert set(post["gamma"].dims) == {"chain", "draw", "factor"}
    assert post["expected_return"].dims == ("chain", "draw", "asset")
    assert float(post["n_factors"].mean()) == pytest.approx(
        float(fit["summary"]["inclusion_probability"].sum()), abs=1e-9)
    assert "max R-hat" in fit.attrs["diagnostics"] and fit.attrs["family"] == "sdf_selection"
    from bayesbond.pricing.sdf_selection import SDFSelection

    assert SDFSelection.from_fit(fit).spec() == json.loads(fit.attrs["model"])
    # SDF Sharpe ratio: the truth sqrt(b' Sigma_f b) lies in the posterior's 99% range
    q = post["sdf_sharpe"].quantile([0.005, 0.995]).values
    assert q[0] < np.sqrt(3 * 0.2**2) < q[1]
    # implied expected returns track the sample means
    s = fit["summary"]
    assert np.corrcoef(s["expected_return_mean"], s["sample_mean_return"])[0, 1] > 0.9


def test_same_seed_same_draws_and_chains_differ():
    R, f, _ = economy(300, 3)
    a, b = (_quiet_fit(R, f, prior_sharpe=0.1, draws=100, tune=20, chains=2, random_seed=7)
            for _ in range(2))
    np.testing.assert_array_equal(a["posterior"]["lambda"].values, b["posterior"]["lambda"].values)
    lam = a["posterior"]["lambda"].values
    assert not np.allclose(lam[0], lam[1])


def test_bad_inputs_name_the_problem():
    R, f, _ = economy(200, 0)
    with pytest.raises(DataError, match="DataFrame"):
        bb.pricing.select_factors(R.values, f, prior_sharpe=0.1)
    with pytest.raises(DataError, match="more test assets than factors"):
        bb.pricing.select_factors(R.iloc[:, :4], f, prior_sharpe=0.1)
    with pytest.raises(DataError, match="'strong1'.*both|both.*strong1"):
        bb.pricing.select_factors(R.join(f[["strong1"]]), f, prior_sharpe=0.1)
    with pytest.raises(DataError, match="'p03' is constant"):
        bb.pricing.select_factors(R.assign(p03=1.0), f, prior_sharpe=0.1)
    with pytest.raises(SpecError, match="maximal in-sample Sharpe ratio"):
        bb.pricing.select_factors(R, f, prior_sharpe=5.0)
    with pytest.raises(SpecError, match="method"):
        bb.pricing.select_factors(R, f, prior_sharpe=0.1, method="lasso")
    with pytest.raises(DataError, match="complete dates"):
        bb.pricing.select_factors(R.iloc[:20], f, prior_sharpe=0.1)


@pytest.mark.validate
def test_selection_many_seeds_and_coverage():
    """20 economies: priced factors included (> 0.9) in every one, the zero-price factor below
    1/2 in at least 80%, useless and weak at their prior; 90% bands of the priced factors'
    risk prices cover the truth near nominally; the useless factor's band holds zero in every
    seed (printed next to the rate at which two-pass Fama-MacBeth, linearmodels, calls its
    premium significant at 10%); 90% bands of the SDF-implied expected returns cover
    ``B Sigma_f b``."""
    from linearmodels.asset_pricing import LinearFactorModel

    seeds = range(20)
    cover, unpriced_below, fm_reject, er_cover = [], [], [], []
    for seed in seeds:
        R, f, lam, er = economy(T_FAST, 100 + seed, implied=True)
        fit = _quiet_fit(R, f, prior_sharpe=0.5 * kern.max_sharpe(R.values), draws=1000,
                         tune=200, random_seed=seed)
        pip = _check_truth(fit, lam, strict=False)
        unpriced_below.append(pip["unpriced"] < 0.5)
        s = fit["summary"]
        lo, hi = s["lambda_lower"].values, s["lambda_upper"].values
        cover.append((lo <= lam) & (lam <= hi))
        er_cover.append((s["expected_return_lower"].values <= er)
                        & (er <= s["expected_return_upper"].values))
        res = LinearFactorModel(R, f).fit()
        fm_reject.append(abs(res.risk_premia_tstats["useless"]) > 1.645)
    cover = np.array(cover)
    rate = cover[:, [FACTORS.index(k) for k in PRICED]].mean()
    print(f"coverage of the priced risk prices {rate:.2f}; unpriced PIP < 0.5 in "
          f"{np.mean(unpriced_below):.2f}; useless band holds 0 in "
          f"{cover[:, FACTORS.index('useless')].mean():.2f} of seeds, Fama-MacBeth rejects "
          f"its zero premium at 10% in {np.mean(fm_reject):.2f}; 90% bands of the implied "
          f"expected returns cover the truth in {np.mean(er_cover):.2f}")
    assert np.mean(unpriced_below) >= 0.8
    assert 0.75 <= rate <= 1.0  # 40 intervals at 90%: binomial 2.5% quantile is 0.775
    assert cover[:, FACTORS.index("useless")].all()
    # 500 bands, correlated within a seed (one posterior): a wide acceptance range
    assert 0.75 <= np.mean(er_cover) <= 0.99


def test_unidentified_inclusion_is_the_prior_mean():
    """Exact (Dirac) probabilities under two Beta priors: a factor with information ratio << 1
    (useless, weak) sits at the prior mean aw / (aw + bw); a priced one stays above 0.9; and the
    ratio equals psi_j (X'X)_jj recomputed by hand from the sample correlations."""
    R, f, _ = economy(1200, 3)
    for aw, bw in [(1.0, 1.0), (1.0, 3.0)]:
        s = _quiet_fit(R, f, prior_sharpe=0.5 * kern.max_sharpe(R.values), method="dirac",
                       draws=200, aw=aw, bw=bw, random_seed=0)["summary"]
        pip, info = s["inclusion_probability"].to_series(), s["information_ratio"].to_series()
        low = info.index[info < 0.2]
        assert {"useless", "weak"} <= set(low), info
        np.testing.assert_allclose(pip[low], aw / (aw + bw), atol=0.03)
        assert (pip[PRICED] > 0.9).all(), pip
    # by hand: OLS cross-section on X = [1, C] with C the correlations of assets and factors
    C = np.corrcoef(np.column_stack([R.values, f.values]), rowvar=False)[:R.shape[1],
                                                                           R.shape[1]:]
    fit = _quiet_fit(R, f, prior_sharpe=0.1, method="dirac", draws=10, random_seed=0)
    psi = fit["constant_data"]["psi"].values
    np.testing.assert_allclose(fit["summary"]["information_ratio"].values,
                               psi * (C**2).sum(axis=0), rtol=1e-10)


# ------------------------------------------------------------------------- SBC of the Gibbs
def _sbc_setup():
    rng = np.random.default_rng(11)
    N, K = 10, 3
    C = rng.uniform(-0.8, 0.8, (N, K))
    X = np.column_stack([np.ones(N), C])
    return N, K, X, np.array([2.0, 1.0, 0.5]), (4.0, 0.3)


def _sbc(reps, seed):
    import xarray as xr

    from tests.sbc import run_sbc

    N, K, X, psi, (a0, b0) = _sbc_setup()
    r, d_c = 0.01, 1.0

    def prior(rng):
        omega = rng.beta(1, 1, K)
        gamma = rng.random(K) < omega
        s2 = b0 / rng.gamma(a0)
        lam = rng.normal(0, np.sqrt(np.where(gamma, 1, r) * psi * s2))
        return {"lambda": lam, "lambda_c": rng.normal(0, np.sqrt(s2 / d_c)), "sigma2": s2,
                "omega": omega}

    def simulate(t, rng):
        return (X @ np.r_[t["lambda_c"], t["lambda"]] + np.sqrt(t["sigma2"])
                * rng.standard_normal(N),)

    def fit(data, s):
        (a,) = data
        cs = kern.CrossSection((X.T @ X)[None], (X.T @ a)[None], np.array([a @ a]),
                               np.zeros((1, N, K)), np.ones((1, K)), np.ones((1, N)),
                               np.eye(K)[None])
        out = kern.continuous_ss(_fixed(cs), [np.random.default_rng([s, c]) for c in range(4)],
                                 n_draws=500, n_burn=100, psi=psi, r=r, d_c=d_c, N=N,
                                 sigma2_prior=(a0, b0))
        lam = out["lambda_all"]
        post = xr.Dataset({"lambda": (("chain", "draw", "factor"), lam[..., 1:]),
                           "lambda_c": (("chain", "draw"), lam[..., 0]),
                           "sigma2": (("chain", "draw"), out["sigma2"]),
                           "omega": (("chain", "draw", "factor"), out["omega"])})
        return xr.DataTree.from_dict({"posterior": post})

    return run_sbc("SDF continuous spike-and-slab Gibbs (fixed moments)", prior, simulate, fit,
                   reps=reps, L=99, seed=seed)


def test_sbc_gibbs_fast():
    res = _sbc(40, seed=1)
    print(res.summary())
    assert res.min_p() > 1e-3


@pytest.mark.validate
def test_sbc_gibbs():
    res = _sbc(400, seed=2)
    print(res.summary())
    assert res.min_p() > 0.001


def test_a_gap_is_refused_not_dropped():
    """A missing value on a common month is named, never silently dropped with its row."""
    R, f, _ = economy(200, 0)
    R = R.copy()
    R.iloc[5, 2] = np.nan
    with pytest.raises(DataError, match=f"column {R.columns[2]!r} is missing on 1 of the 200"):
        bb.pricing.select_factors(R, f, prior_sharpe=0.1)

"""Expected-return bands against closed forms of the flat-prior normal regression and OLS.

Under p(theta, sigma^2) ~ 1/sigma^2, x'theta | y is Student-t with n - p degrees of freedom, centre
x'theta_OLS and scale the classical OLS standard error (BDA3 sec. 14.2), so its posterior mean is
the OLS expected return and its posterior sd is SE * sqrt((n - p) / (n - p - 2)).
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesbond as bb
from bayesbond.errors import SpecError
from bayesbond.workflow.expected import (
    expected_returns,
    factor_mean_draws,
    long_run_cov,
    residual_returns,
)
from tests.workflow.test_loglik import conjugate_fit, simulate

FACTORS = ["CMKT", "TERM"]


def point(tree, **kwargs):
    """The band that treats E[F] as known (its sample mean): the conditional posterior."""
    return expected_returns(tree, factor_uncertainty=False, **kwargs)


@pytest.fixture(scope="module")
def case():
    y, F = simulate(T=80, B=6, seed=7, missing=0.1)
    groups = ["IG+", "IG+", "IG-", "IG-", "HY", "HY"]
    tree = conjugate_fit(y, F, FACTORS, chains=4, draws=5000, seed=7, groups=groups)
    return y, F, tree


def test_expected_returns_match_ols_t_posterior(case):
    y, F, tree = case
    er = point(tree, prob=0.9)
    bonds = list(tree["observed_data"]["bond"].values)
    R = pd.DataFrame(y, columns=bonds, index=tree["observed_data"]["date"].to_index())
    Fdf = pd.DataFrame(F, columns=FACTORS, index=R.index)
    ols = bb.ols(R, Fdf)
    ref = ols.expected_return(Fdf.mean())
    n = np.isfinite(y).sum(axis=0)
    dof = n - 3
    se_col = [c for c in ref.columns if c in ("se", "std_err", "bse")][0]
    mean_col = [c for c in ref.columns if c in ("expected_return", "mean", "er")][0]
    np.testing.assert_allclose(er["mean"], ref[mean_col].to_numpy(),
                               atol=4 * ref[se_col].max() / np.sqrt(20000))
    sd_ref = ref[se_col].to_numpy() * np.sqrt(dof / (dof - 2))
    np.testing.assert_allclose(er["sd"], sd_ref, rtol=0.03)
    q = pd.DataFrame({"lo": ref[mean_col] - sd_ref * 1.645, "hi": ref[mean_col] + sd_ref * 1.645})
    np.testing.assert_allclose(er["lower"], q["lo"], atol=0.1 * sd_ref.max())
    assert list(er.columns) == ["mean", "sd", "lower", "upper", "group", "ef_start", "ef_end",
                                "ef_months", "ef_effective_months"]
    assert list(er["group"]) == ["IG+", "IG+", "IG-", "IG-", "HY", "HY"]


def test_factor_mean_uncertainty_adds_beta_var_beta(case):
    y, F, tree = case
    base = point(tree)
    unc = expected_returns(tree, factor_dependence="iid", random_seed=1)
    T, K = F.shape
    dev = F - F.mean(0)
    V_mu = dev.T @ dev / (T * (T - K)) * (T - K) / (T - K - 2)  # covariance of the t posterior
    b = tree["posterior"]["beta"].values.reshape(-1, 6, K)
    extra = np.einsum("sbk,kl,sbl->sb", b, V_mu, b).mean(0)
    np.testing.assert_allclose(unc["sd"] ** 2, base["sd"] ** 2 + extra, rtol=0.06)
    np.testing.assert_allclose(unc["mean"], base["mean"], atol=3 * np.sqrt(extra.max() / 20000))


def test_factor_mean_draws_moments():
    rng = np.random.default_rng(0)
    F = rng.normal([0.01, -0.02], [0.02, 0.05], (40, 2))
    d = factor_mean_draws(F, 200000, np.random.default_rng(1))
    T, K = F.shape
    dev = F - F.mean(0)
    np.testing.assert_allclose(d.mean(0), F.mean(0), atol=5e-5)
    np.testing.assert_allclose(np.cov(d.T), dev.T @ dev / (T * (T - K - 2)), rtol=0.03)


def test_user_factor_means_and_groups(case):
    y, F, tree = case
    er = point(tree, factor_means={"CMKT": 0.005, "TERM": 0.0})
    post = tree["posterior"]
    ref = (post["alpha"] + 0.005 * post["beta"].sel(factor="CMKT")).mean(("chain", "draw"))
    np.testing.assert_allclose(er["mean"], ref.values, rtol=1e-12)
    by_g = point(tree, factor_means=[0.005, 0.0], by="rating_bucket")
    draws = (post["alpha"] + 0.005 * post["beta"].sel(factor="CMKT")).values.reshape(-1, 6)
    np.testing.assert_allclose(by_g.loc["IG-", "mean"], draws[:, 2:4].mean(), rtol=1e-12)
    assert list(by_g.index) == ["IG+", "IG-", "HY"] and by_g.index.name == "rating_bucket"
    cov = np.diag([1e-4, 1e-4])
    with_cov = expected_returns(tree, factor_means=[0.005, 0.0], factor_uncertainty=True,
                                factor_cov=cov, random_seed=2)
    assert (with_cov["sd"] > er["sd"]).all()


def test_bad_arguments(case):
    _, _, tree = case
    with pytest.raises(SpecError, match="prob"):
        expected_returns(tree, prob=1.5)
    with pytest.raises(SpecError, match="missing \\['TERM'\\]"):
        expected_returns(tree, factor_means={"CMKT": 0.0})
    with pytest.raises(SpecError, match="factor_cov"):
        expected_returns(tree, factor_means=[0, 0], factor_uncertainty=True)
    with pytest.raises(SpecError, match="by must be"):
        expected_returns(tree, by="sector")
    with pytest.raises(SpecError, match=r"not finite for \['TERM'\]"):
        expected_returns(tree, factor_means={"CMKT": 0.0, "TERM": np.nan})


def test_residual_returns(case):
    y, F, tree = case
    res = residual_returns(tree)
    post = tree["posterior"]
    fitted = post["alpha"].mean(("chain", "draw")).values + F @ post["beta"].mean(
        ("chain", "draw")).values.T
    np.testing.assert_allclose(res.values, y - fitted, rtol=1e-12, atol=1e-15)
    assert res.dims == ("date", "bond")
    np.testing.assert_array_equal(np.isnan(res.values), np.isnan(y))


def _by_hand(tree, Fbar):
    """Posterior mean of alpha_b + beta_b'Fbar_b with Fbar (bond, factor), by plain numpy."""
    a = tree["posterior"]["alpha"].values.reshape(-1, 6)
    b = tree["posterior"]["beta"].values.reshape(-1, 6, 2)
    return (a + (b * Fbar[None]).sum(-1)).mean(0)


def test_default_window_is_every_fitted_month_and_says_so(case):
    y, F, tree = case
    er = point(tree)
    dates = tree["observed_data"]["date"].to_index()
    np.testing.assert_allclose(er["mean"], _by_hand(tree, np.tile(F.mean(0), (6, 1))),
                               rtol=1e-12)
    assert (er["ef_start"] == dates[0]).all() and (er["ef_end"] == dates[-1]).all()
    assert (er["ef_months"] == len(dates)).all()
    assert er.attrs["factor_uncertainty"] is False
    assert er.attrs["ef_window"] == "every month of the fitted factor returns"
    # "panel" is the same window here (the factor returns cover exactly the fit's months)
    np.testing.assert_allclose(point(tree, window="panel")["mean"], er["mean"],
                               rtol=1e-15)


def test_window_bond_uses_each_bonds_own_months(case):
    y, F, tree = case
    er = point(tree, window="bond")
    dates = tree["observed_data"]["date"].to_index()
    obs = np.isfinite(y)
    assert not obs.all()  # the bonds have different months
    Fbar = np.stack([F[obs[:, j]].mean(0) for j in range(6)])
    np.testing.assert_allclose(er["mean"], _by_hand(tree, Fbar), rtol=1e-12)
    assert list(er["ef_months"]) == list(obs.sum(0))
    assert list(er["ef_start"]) == [dates[obs[:, j]][0] for j in range(6)]
    assert list(er["ef_end"]) == [dates[obs[:, j]][-1] for j in range(6)]
    np.testing.assert_allclose(er.attrs["factor_means_by_bond"].to_numpy(), Fbar, rtol=1e-12)
    # a group: the average of its bonds' E[R] (each over its own months), the union of months
    by_g = point(tree, window="bond", by="rating_bucket")
    assert by_g.loc["IG-", "mean"] == pytest.approx(er["mean"].iloc[2:4].mean(), rel=1e-12)
    assert by_g.loc["IG-", "ef_months"] == (obs[:, 2] | obs[:, 3]).sum()
    # with E[F] uncertainty each bond's E[F] draws have the t posterior of its own months
    unc = expected_returns(tree, window="bond", factor_uncertainty=True, random_seed=3)
    assert (unc["sd"] > er["sd"]).all()
    np.testing.assert_allclose(unc["mean"], er["mean"], atol=3e-4)


def test_user_window_and_longer_history(case):
    y, F, tree = case
    dates = tree["observed_data"]["date"].to_index()
    er = point(tree, window=("2002-01-01", "2003-12-31"))
    inside = (dates >= "2002-01-01") & (dates <= "2003-12-31")
    assert inside.sum() == 24
    np.testing.assert_allclose(er["mean"], _by_hand(tree, np.tile(F[inside].mean(0), (6, 1))),
                               rtol=1e-12)
    assert (er["ef_months"] == 24).all()
    assert (er["ef_start"] == pd.Timestamp("2002-01-31")).all()
    assert (er["ef_end"] == pd.Timestamp("2003-12-31")).all()
    # a longer history: 5 earlier years of other factor returns plus the fitted ones
    rng = np.random.default_rng(11)
    early = pd.date_range("1996-01-31", periods=60, freq="ME")
    H = pd.DataFrame(np.vstack([rng.normal(0.01, 0.03, (60, 2)), F]),
                     index=early.append(dates), columns=["TERM", "CMKT"][::-1])
    hist = point(tree, factor_history=H)
    np.testing.assert_allclose(hist["mean"], _by_hand(tree, np.tile(H.mean().to_numpy(), (6, 1))),
                               rtol=1e-12)
    assert (hist["ef_months"] == 60 + len(dates)).all()
    assert (hist["ef_start"] == early[0]).all()
    assert hist.attrs["ef_window"] == "every month of factor_history"
    # the history over the fit's months only gives back the default
    np.testing.assert_allclose(point(tree, factor_history=H, window="panel")["mean"],
                               point(tree)["mean"], rtol=1e-12)
    # the history on each bond's own months: the same as the fitted factor returns there
    np.testing.assert_allclose(
        point(tree, factor_history=H.reset_index(names="date"), window="bond")["mean"],
        point(tree, window="bond")["mean"], rtol=1e-12)


def test_bad_windows(case):
    y, F, tree = case
    dates = tree["observed_data"]["date"].to_index()
    with pytest.raises(SpecError, match="window must be"):
        expected_returns(tree, window="all")
    with pytest.raises(SpecError, match="holds no month"):
        expected_returns(tree, window=("1990-01-01", "1990-12-31"))
    with pytest.raises(SpecError, match="starts after it ends"):
        expected_returns(tree, window=("2004-01-01", "2003-01-01"))
    with pytest.raises(SpecError, match="not both"):
        expected_returns(tree, factor_means=[0, 0], window="bond")
    with pytest.raises(SpecError, match="no column 'TERM'"):
        expected_returns(tree, factor_history=pd.DataFrame({"CMKT": F[:, 0]}, index=dates))
    H = pd.DataFrame(F, index=dates, columns=FACTORS)
    with pytest.raises(SpecError, match=f"no row for {dates[0].date()}, a month of bond 'b0"):
        expected_returns(tree, factor_history=H.iloc[1:], window="bond")
    H.iloc[5, 1] = np.nan
    with pytest.raises(SpecError, match=f"'TERM' is missing on {dates[5].date()}"):
        expected_returns(tree, factor_history=H)


def _ar1(rng, T, K, phi, corr=0.5):
    """T months of K correlated AR(1) series with coefficient phi and unit stationary variance."""
    C = np.linalg.cholesky(np.full((K, K), corr) + (1 - corr) * np.eye(K))
    u = rng.standard_normal((T, K)) @ C.T
    for t in range(1, T):
        u[t] = phi * u[t - 1] + np.sqrt(1 - phi**2) * u[t]
    return u


def test_long_run_cov_against_statsmodels_and_the_ar1_truth():
    from statsmodels.stats.sandwich_covariance import S_hac_simple

    rng = np.random.default_rng(4)
    F = _ar1(rng, 90, 2, 0.3)
    x = F - F.mean(0)
    Omega, T_eff, text = long_run_cov(F, 4)
    np.testing.assert_allclose(Omega, S_hac_simple(x, nlags=4) / 90, rtol=1e-12)
    assert T_eff == pytest.approx(90 * np.trace(x.T @ x / 90) / np.trace(Omega), rel=1e-12)
    assert "4 lags" in text
    np.testing.assert_allclose(long_run_cov(F, "iid")[0], x.T @ x / 90, rtol=1e-12)
    # VAR(1): the long-run variance of an AR(1) is (1 + phi) / (1 - phi) times the variance
    G = _ar1(np.random.default_rng(5), 40000, 2, 0.5)
    Om, T_eff, _ = long_run_cov(G, "var1")
    np.testing.assert_allclose(Om, 3.0 * np.array([[1, 0.5], [0.5, 1]]), rtol=0.08, atol=0.08)
    assert T_eff == pytest.approx(40000 / 3, rel=0.08)
    with pytest.raises(SpecError, match="factor_dependence"):
        long_run_cov(F, "hac")
    with pytest.raises(SpecError, match="factor_dependence"):
        long_run_cov(F, -1)


@pytest.mark.parametrize("phi", [0.0, 0.3, 0.6])
def test_factor_mean_intervals_cover_on_autocorrelated_factors(phi):
    """Coverage of the 90% interval of E[F] over 600 simulated 10-year histories of two
    correlated AR(1) factors: the VAR(1) posterior covers 86-94%; the i.i.d. one under-covers
    once the factors are autocorrelated (about 80% at phi = 0.3, 65% at 0.6)."""
    rng = np.random.default_rng(int(phi * 10))
    hits = {"var1": 0, "iid": 0}
    R = 600
    for _ in range(R):
        F = _ar1(rng, 120, 2, phi)
        for dep in hits:
            d = factor_mean_draws(F, 400, rng, dependence=dep)
            lo, hi = np.quantile(d, [0.05, 0.95], axis=0)
            hits[dep] += int(np.sum((lo < 0) & (hi > 0)))
    cover = {k: v / (2 * R) for k, v in hits.items()}
    print(f"phi={phi}: 90% coverage of E[F]: {cover}")
    assert 0.86 <= cover["var1"] <= 0.94
    if phi >= 0.3:
        assert cover["iid"] < 0.84
    else:
        assert 0.86 <= cover["iid"] <= 0.94


def test_default_band_carries_the_factor_mean_uncertainty(case):
    y, F, tree = case
    er = expected_returns(tree, random_seed=0)
    known = point(tree)
    assert er.attrs["factor_uncertainty"] is True
    assert "VAR(1)" in er.attrs["factor_dependence"] and "VAR(1)" in er.attrs["band"]
    assert (er["sd"] > known["sd"]).all()
    T, K = F.shape
    Omega, T_eff, _ = long_run_cov(F, "var1")
    assert (er["ef_effective_months"] == round(T_eff, 1)).all()
    # the added variance is beta' Var(E[F]) beta with the t posterior's covariance
    nu = T_eff - K
    V = Omega / (T - K) * nu / (nu - 2)
    b = tree["posterior"]["beta"].values.reshape(-1, 6, K)
    extra = np.einsum("sbk,kl,sbl->sb", b, V, b).mean(0)
    np.testing.assert_allclose(er["sd"] ** 2, known["sd"] ** 2 + extra, rtol=0.08)
    with pytest.raises(SpecError, match="factor_uncertainty=False"):
        expected_returns(tree, factor_means=[0.005, 0.0])


def test_value_weighted_and_population_bands(case):
    y, F, tree = case
    post = tree["posterior"]
    a = post["alpha"].values.reshape(-1, 6)
    b = post["beta"].values.reshape(-1, 6, 2)
    er_draws = a + b @ F.mean(0)
    w = pd.Series([1.0, 3.0, 2.0, 2.0, 5.0, 1.0], index=[f"b{i:02d}" for i in range(6)])
    vw = point(tree, by="rating_bucket", weights=w)
    ref_ig = er_draws[:, :2] @ np.array([0.25, 0.75])
    assert vw.loc["IG+", "mean"] == pytest.approx(ref_ig.mean(), rel=1e-12)
    assert vw.loc["IG+", "sd"] == pytest.approx(ref_ig.std(ddof=1), rel=1e-10)
    assert vw.attrs["weights"] == "value" and "value-weighted" in vw.attrs["band"]
    # a (date, bond) DataArray of amounts: each bond's mean over the fit's months
    dates = tree["observed_data"]["date"].to_index()
    amt = xr.DataArray(np.outer(np.linspace(1, 2, len(dates)), w.to_numpy()),
                       dims=("date", "bond"), coords={"date": dates, "bond": w.index})
    vw2 = point(tree, by="rating_bucket", weights=amt)
    np.testing.assert_allclose(vw2["mean"], vw["mean"], rtol=1e-12)
    # the population band: mu_alpha_g + mu_beta_g'E[F], from (here made-up) group parameters
    rng = np.random.default_rng(0)
    C, D = post.sizes["chain"], post.sizes["draw"]
    g = ["IG+", "IG-", "HY"]
    mu_a = rng.normal(0.001, 0.0005, (C, D, 3))
    mu_b = rng.normal(0.8, 0.1, (C, D, 3, 2))
    hier = tree.copy()
    hier["posterior"] = post.to_dataset().assign(
        mu_alpha=(("chain", "draw", "rating_bucket"), mu_a),
        mu_beta=(("chain", "draw", "rating_bucket", "factor"), mu_b)).assign_coords(
        rating_bucket=g)
    pop = point(hier, by="rating_bucket", level="population")
    ref = (mu_a + mu_b @ F.mean(0)).reshape(-1, 3)
    np.testing.assert_allclose(pop["mean"], ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(pop["lower"], np.quantile(ref, 0.03, axis=0), rtol=1e-12)
    assert pop.attrs["level"] == "population" and "typical bond" in pop.attrs["band"]
    with pytest.raises(SpecError, match="hierarchical"):
        point(tree, by="rating_bucket", level="population")
    with pytest.raises(SpecError, match="by='rating_bucket'"):
        point(tree, level="population")
    with pytest.raises(SpecError, match="groups"):
        point(tree, weights=w)
    with pytest.raises(SpecError, match="no bond 'b05'"):
        point(tree, by="rating_bucket", weights=w.iloc[:5])
    with pytest.raises(SpecError, match="'b01' has no positive weight"):
        point(tree, by="rating_bucket", weights=w.replace(3.0, 0.0))

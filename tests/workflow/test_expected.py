"""Expected-return bands against closed forms of the flat-prior normal regression and OLS.

Under p(theta, sigma^2) ~ 1/sigma^2, x'theta | y is Student-t with n - p degrees of freedom, centre
x'theta_OLS and scale the classical OLS standard error (BDA3 sec. 14.2), so its posterior mean is
the OLS expected return and its posterior sd is SE * sqrt((n - p) / (n - p - 2)).
"""

import numpy as np
import pandas as pd
import pytest

import bayesbond as bb
from bayesbond.errors import SpecError
from bayesbond.workflow.expected import expected_returns, factor_mean_draws, residual_returns
from tests.workflow.test_loglik import conjugate_fit, simulate

FACTORS = ["CMKT", "TERM"]


@pytest.fixture(scope="module")
def case():
    y, F = simulate(T=80, B=6, seed=7, missing=0.1)
    groups = ["IG+", "IG+", "IG-", "IG-", "HY", "HY"]
    tree = conjugate_fit(y, F, FACTORS, chains=4, draws=5000, seed=7, groups=groups)
    return y, F, tree


def test_expected_returns_match_ols_t_posterior(case):
    y, F, tree = case
    er = expected_returns(tree, prob=0.9)
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
    assert list(er.columns) == ["mean", "sd", "lower", "upper", "group"]
    assert list(er["group"]) == ["IG+", "IG+", "IG-", "IG-", "HY", "HY"]


def test_factor_mean_uncertainty_adds_beta_var_beta(case):
    y, F, tree = case
    base = expected_returns(tree)
    unc = expected_returns(tree, factor_uncertainty=True, random_seed=1)
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
    er = expected_returns(tree, factor_means={"CMKT": 0.005, "TERM": 0.0})
    post = tree["posterior"]
    ref = (post["alpha"] + 0.005 * post["beta"].sel(factor="CMKT")).mean(("chain", "draw"))
    np.testing.assert_allclose(er["mean"], ref.values, rtol=1e-12)
    by_g = expected_returns(tree, factor_means=[0.005, 0.0], by="rating_bucket")
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

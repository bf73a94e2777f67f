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
    assert list(er.columns) == ["mean", "sd", "lower", "upper", "group", "ef_start", "ef_end",
                                "ef_months"]
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


def _by_hand(tree, Fbar):
    """Posterior mean of alpha_b + beta_b'Fbar_b with Fbar (bond, factor), by plain numpy."""
    a = tree["posterior"]["alpha"].values.reshape(-1, 6)
    b = tree["posterior"]["beta"].values.reshape(-1, 6, 2)
    return (a + (b * Fbar[None]).sum(-1)).mean(0)


def test_default_window_is_every_fitted_month_and_says_so(case):
    y, F, tree = case
    er = expected_returns(tree)
    dates = tree["observed_data"]["date"].to_index()
    np.testing.assert_allclose(er["mean"], _by_hand(tree, np.tile(F.mean(0), (6, 1))),
                               rtol=1e-12)
    assert (er["ef_start"] == dates[0]).all() and (er["ef_end"] == dates[-1]).all()
    assert (er["ef_months"] == len(dates)).all()
    assert er.attrs["factor_uncertainty"] is False
    assert er.attrs["ef_window"] == "every month of the fitted factor returns"
    # "panel" is the same window here (the factor returns cover exactly the fit's months)
    np.testing.assert_allclose(expected_returns(tree, window="panel")["mean"], er["mean"],
                               rtol=1e-15)


def test_window_bond_uses_each_bonds_own_months(case):
    y, F, tree = case
    er = expected_returns(tree, window="bond")
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
    by_g = expected_returns(tree, window="bond", by="rating_bucket")
    assert by_g.loc["IG-", "mean"] == pytest.approx(er["mean"].iloc[2:4].mean(), rel=1e-12)
    assert by_g.loc["IG-", "ef_months"] == (obs[:, 2] | obs[:, 3]).sum()
    # with E[F] uncertainty each bond's E[F] draws have the t posterior of its own months
    unc = expected_returns(tree, window="bond", factor_uncertainty=True, random_seed=3)
    assert (unc["sd"] > er["sd"]).all()
    np.testing.assert_allclose(unc["mean"], er["mean"], atol=3e-4)


def test_user_window_and_longer_history(case):
    y, F, tree = case
    dates = tree["observed_data"]["date"].to_index()
    er = expected_returns(tree, window=("2002-01-01", "2003-12-31"))
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
    hist = expected_returns(tree, factor_history=H)
    np.testing.assert_allclose(hist["mean"], _by_hand(tree, np.tile(H.mean().to_numpy(), (6, 1))),
                               rtol=1e-12)
    assert (hist["ef_months"] == 60 + len(dates)).all()
    assert (hist["ef_start"] == early[0]).all()
    assert hist.attrs["ef_window"] == "every month of factor_history"
    # the history over the fit's months only gives back the default
    np.testing.assert_allclose(expected_returns(tree, factor_history=H, window="panel")["mean"],
                               expected_returns(tree)["mean"], rtol=1e-12)
    # the history on each bond's own months: the same as the fitted factor returns there
    np.testing.assert_allclose(
        expected_returns(tree, factor_history=H.reset_index(names="date"), window="bond")["mean"],
        expected_returns(tree, window="bond")["mean"], rtol=1e-12)


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

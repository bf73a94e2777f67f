"""Bayesian spanning: closed forms against brute-force integration and a Gibbs sampler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

import bayesbond as bb
from bayesbond.pricing.bayes_spanning import spanning_posterior


def _data(T=15, alpha=0.3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 1.0, (T, 1))
    y = alpha + 0.8 * x[:, 0] + rng.normal(0.0, 1.0, T)
    return y, x


def _log_marginals(y, x, k, n=161):
    """log p(y | H1) and log p(y | H0) by Riemann sums over (alpha, beta, log sigma) with the
    priors p(beta, sigma) = 1/sigma and, under H1, alpha | sigma ~ N(0, k sigma^2)."""
    T = len(y)
    X = np.column_stack([np.ones(T), x[:, 0]])
    b_ols, *_ = np.linalg.lstsq(X, y, rcond=None)
    s = np.sqrt(np.sum((y - X @ b_ols) ** 2) / (T - 2))
    se = s * np.sqrt(np.diag(np.linalg.inv(X.T @ X)))
    al = np.linspace(b_ols[0] - 12 * se[0], b_ols[0] + 12 * se[0], n)
    be = np.linspace(b_ols[1] - 12 * se[1], b_ols[1] + 12 * se[1], n)
    ls = np.linspace(np.log(s) - 2.5, np.log(s) + 2.0, n)
    A, B, LS = np.meshgrid(al, be, ls, indexing="ij")
    sig2 = np.exp(2 * LS)
    # RSS(alpha, beta) from the sums
    Syy, Sy, Sx, Sxx, Sxy = y @ y, y.sum(), x[:, 0].sum(), x[:, 0] @ x[:, 0], x[:, 0] @ y
    rss = (Syy - 2 * A * Sy - 2 * B * Sxy + T * A**2 + 2 * A * B * Sx + B**2 * Sxx)
    loglik = -0.5 * T * np.log(2 * np.pi * sig2) - 0.5 * rss / sig2
    # measure d alpha d beta (1/sigma) d sigma = d alpha d beta d log sigma
    cell = np.log(al[1] - al[0]) + np.log(be[1] - be[0]) + np.log(ls[1] - ls[0])
    prior_a = -0.5 * np.log(2 * np.pi * k * sig2) - 0.5 * A**2 / (k * sig2)
    log_m1 = logsumexp(loglik + prior_a) + cell
    # H0: alpha = 0, (beta, log sigma) grid
    B0, LS0 = np.meshgrid(be, ls, indexing="ij")
    s2 = np.exp(2 * LS0)
    rss0 = Syy - 2 * B0 * Sxy + B0**2 * Sxx
    log_m0 = logsumexp(-0.5 * T * np.log(2 * np.pi * s2) - 0.5 * rss0 / s2) + \
        np.log(be[1] - be[0]) + np.log(ls[1] - ls[0])
    return log_m1, log_m0


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_bayes_factor_equals_brute_force_integration(alpha):
    y, x = _data(alpha=alpha, seed=1)
    k = 0.5
    log_m1, log_m0 = _log_marginals(y, x, k)
    post = spanning_posterior(y, x, k)
    assert post["log_bf10"] == pytest.approx(log_m1 - log_m0, abs=2e-3)


def test_alpha_posterior_equals_a_gibbs_sampler():
    """Gibbs on the full conditionals: (alpha, beta) | sigma^2 normal, sigma^2 | . inverse gamma
    (prior 1/sigma on sigma and N(0, k sigma^2) on alpha)."""
    y, x = _data(T=40, alpha=0.4, seed=2)
    k = 0.3
    T = len(y)
    X = np.column_stack([np.ones(T), x[:, 0]])
    rng = np.random.default_rng(3)
    s2, draws = 1.0, []
    for it in range(40_000):
        P0 = np.diag([1.0 / k, 0.0])  # prior precision of (alpha, beta) / sigma^2
        prec = (X.T @ X + P0) / s2
        cov = np.linalg.inv(prec)
        mean = cov @ (X.T @ y) / s2
        ab = rng.multivariate_normal(mean, cov)
        rss = np.sum((y - X @ ab) ** 2) + ab[0] ** 2 / k
        s2 = 1.0 / rng.gamma((T + 1) / 2, 2.0 / rss)  # T obs + the alpha prior, p(s) ~ 1/s
        if it >= 1000:
            draws.append(ab[0])
    draws = np.asarray(draws)
    post = spanning_posterior(y, x, k)
    sd = post["scale"] * np.sqrt(post["dof"] / (post["dof"] - 2))
    mc_se = draws.std() / np.sqrt(len(draws) / 5)  # mild autocorrelation allowance
    assert draws.mean() == pytest.approx(post["m"], abs=4 * mc_se)
    assert draws.std() == pytest.approx(sd, rel=0.03)


def test_table_labels_and_a_spanned_factor_favours_the_null():
    rng = np.random.default_rng(4)
    dates = pd.date_range("1900-01-31", periods=1200, freq="ME")
    base = pd.DataFrame(rng.normal(0.004, 0.02, (1200, 2)), index=dates, columns=["CMKT", "TERM"])
    test = pd.DataFrame({"spanned": 0.5 * base["CMKT"] + rng.normal(0, 0.01, 1200),
                         "alpha": 0.004 + 0.3 * base["TERM"] + rng.normal(0, 0.01, 1200)})
    tab = bb.pricing.bayesian_spanning(test, base)
    for col in ("alpha", "beta_CMKT", "beta_TERM", "R2", "nobs", "BF(alpha=0)"):
        assert col in tab.columns
    assert tab.loc["spanned", "BF(alpha=0)"] > 1
    assert tab.loc["alpha", "BF(alpha=0)"] < 1e-3
    assert tab.loc["alpha", "P(|alpha|>threshold)"] > 0.95
    with pytest.raises(bb.DataError, match="TERM"):
        bb.pricing.bayesian_spanning(test, base.assign(TERM=base["TERM"].where(
            base.index != dates[5])))

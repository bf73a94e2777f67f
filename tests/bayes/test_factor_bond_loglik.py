"""Per-bond marginal likelihood given the hyperparameters (leave-one-bond-out kernel):
the log-sigma form equals the Woodbury form, the adapted Gauss-Hermite quadrature equals
adaptive scipy quadrature of multivariate-normal densities and a brute-force Monte Carlo
integral over sigma, and fits are read by label, with clear refusals where no population
exists."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.integrate as si
import scipy.stats as st
import xarray as xr

from bayesbond.bayes.factor_bond_loglik import (
    bond_loglik,
    bond_marginal_loglik,
    collapsed_in_log_sigma,
    collapsed_loglik_u,
)
from bayesbond.bayes.factor_data import sufficient_stats
from bayesbond.bayes.factor_likelihood import collapsed_loglik_np
from bayesbond.errors import SpecError


def _panel(T=30, B=5, K=2, seed=0, missing=0.2):
    rng = np.random.default_rng(seed)
    F = rng.normal(0.003, 0.02, (T, K))
    y = 0.001 + F @ rng.normal(1.0, 0.3, (K, B)) + rng.normal(0, 0.01, (T, B))
    y[rng.random((T, B)) < missing] = np.nan
    X = np.column_stack([np.ones(T), F])
    return y, F, X


def _full_scale(rng, K):
    """blockdiag(tau_alpha, diag(tau_beta) L) with L the Cholesky factor of a correlation."""
    A = rng.normal(size=(K, K))
    C = A @ A.T + K * np.eye(K)
    d = np.sqrt(np.diag(C))
    L = np.linalg.cholesky(C / np.outer(d, d))
    S = np.zeros((K + 1, K + 1))
    S[0, 0] = 0.002
    S[1:, 1:] = rng.uniform(0.1, 0.4, K)[:, None] * L
    return S


def _mvn_marginal(yb, Xb, m, SS, mu, tau):
    """log int N(y | X m, e^{2u} I + X SS X') N(u; mu, tau) du by adaptive scipy quadrature of
    scipy's multivariate normal density (independent of the library's collapsed algebra)."""
    V0 = Xb @ SS @ Xb.T

    def logf(u):
        return (st.multivariate_normal.logpdf(yb, Xb @ m, np.exp(2 * u) * np.eye(len(yb)) + V0)
                + st.norm.logpdf(u, mu, tau))

    # the integrand's peak can lie far in the prior's tail (a tight tau against the data):
    # locate it on a wide grid, then integrate adaptively over where it is not negligible
    grid = np.linspace(min(mu - 10 * tau, np.log(1e-4)), max(mu + 10 * tau, 0.0), 801)
    vals = np.array([logf(u) for u in grid])
    top = vals.max()
    peak = grid[vals.argmax()]
    keep = grid[vals > top - 60]
    lo, hi = keep[0] - (grid[1] - grid[0]), keep[-1] + (grid[1] - grid[0])
    r, _ = si.quad(lambda u: np.exp(logf(u) - top), lo, hi, points=[peak],
                   limit=500, epsabs=1e-14, epsrel=1e-12)
    return top + np.log(r)


def test_log_sigma_form_equals_the_woodbury_form_for_diagonal_and_full_scales():
    y, F, X = _panel()
    XtX, Xty, yty, n = sufficient_stats(y, X)
    rng = np.random.default_rng(1)
    B, p = Xty.shape
    m = rng.normal(0, 0.5, (B, p))
    for diag in (True, False):
        S = (rng.uniform(0.001, 0.5, (B, p)) if diag
             else np.stack([_full_scale(rng, p - 1) for _ in range(B)]))
        rtr, lam, zsq = collapsed_in_log_sigma(XtX, Xty, yty, n, m, S, diag=diag)
        for sig in (0.003, 0.01, 0.05):
            ref = collapsed_loglik_np(XtX, Xty, yty, n, np.full(B, sig), m, S, diag=diag)
            got = collapsed_loglik_u(np.full(B, np.log(sig)), n, rtr, lam, zsq)
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("diag", [True, False])
def test_quadrature_equals_scipy_quadrature_of_the_multivariate_normal_marginal(diag):
    y, F, X = _panel(seed=2)
    XtX, Xty, yty, n = sufficient_stats(y, X)
    rng = np.random.default_rng(3)
    B, p = Xty.shape
    m = np.tile([0.0, 1.0, 1.0], (B, 1)) + rng.normal(0, 0.1, (B, p))
    S = (np.tile([0.002, 0.3, 0.2], (B, 1)) if diag
         else np.stack([_full_scale(rng, p - 1) for _ in range(B)]))
    mu = np.log(0.012) + rng.normal(0, 0.3, B)
    tau = rng.uniform(0.05, 0.8, B)
    got = bond_marginal_loglik(XtX, Xty, yty, n, m, S, mu, tau, diag=diag)
    for b in range(B):
        o = np.isfinite(y[:, b])
        SS = np.diag(S[b] ** 2) if diag else S[b] @ S[b].T
        ref = _mvn_marginal(y[o, b], X[o], m[b], SS, mu[b], tau[b])
        assert got[b] == pytest.approx(ref, abs=1e-8), b
    # 32 nodes (the default) against many more, and a crude rule that is visibly worse
    many = bond_marginal_loglik(XtX, Xty, yty, n, m, S, mu, tau, diag=diag, nodes=128)
    np.testing.assert_allclose(got, many, rtol=0, atol=1e-10)
    few = bond_marginal_loglik(XtX, Xty, yty, n, m, S, mu, tau, diag=diag, nodes=2)
    assert np.max(np.abs(few - many)) > 1e-6


def test_quadrature_equals_a_monte_carlo_integral_over_sigma_from_its_prior():
    """A short bond (12 months): sigma drawn from N(mu, tau) on the log scale, 400,000 draws."""
    y, F, X = _panel(T=12, B=3, seed=4, missing=0.0)
    XtX, Xty, yty, n = sufficient_stats(y, X)
    m = np.array([0.0, 1.0, 1.0])
    S = np.array([0.003, 0.4, 0.4])
    mu, tau = np.log(0.011), 0.35
    got = bond_marginal_loglik(XtX, Xty, yty, n, m, S, mu, tau, diag=True)
    rng = np.random.default_rng(5)
    u = rng.normal(mu, tau, 400_000)
    for b in range(3):
        ll = collapsed_loglik_np(XtX[b], Xty[b], yty[b], n[b], np.exp(u), m, S, diag=True)
        w = np.exp(ll - ll.max())
        mc = ll.max() + np.log(w.mean())
        mc_se = w.std() / w.mean() / np.sqrt(w.size)  # delta method on log mean
        assert abs(got[b] - mc) < 4 * mc_se, (b, got[b], mc, mc_se)
        assert mc_se < 0.02


def test_a_vanishing_population_spread_gives_the_plain_gaussian_likelihood():
    """S -> 0 and tau -> 0: the marginal tends to log N(y | X m, e^{2 mu} I)."""
    y, F, X = _panel(seed=6)
    XtX, Xty, yty, n = sufficient_stats(y, X)
    B, p = Xty.shape
    m = np.tile([0.001, 1.0, 1.0], (B, 1))
    mu = np.log(0.01)
    got = bond_marginal_loglik(XtX, Xty, yty, n, m, np.full((B, p), 1e-9), mu, 1e-7, diag=True)
    for b in range(B):
        o = np.isfinite(y[:, b])
        ref = st.norm.logpdf(y[o, b], X[o] @ m[b], 0.01).sum()
        assert got[b] == pytest.approx(ref, abs=1e-4)


# ---------------------------------------------------------------------------- from a fit
def _tree(y, F, groups, post, pooling, errors="normal"):
    T, B = y.shape
    dates = pd.date_range("2001-01-31", periods=T, freq="ME")
    bonds = [f"b{i}" for i in range(B)]
    factors = [f"f{k}" for k in range(F.shape[1])]
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset(post),
        "observed_data": xr.Dataset({"returns": xr.DataArray(
            y, dims=("date", "bond"), coords={"date": dates, "bond": bonds})}),
        "constant_data": xr.Dataset({
            "factor_returns": xr.DataArray(F, dims=("date", "factor"),
                                           coords={"date": dates, "factor": factors}),
            "group": xr.DataArray(np.asarray(groups, dtype=str), dims="bond",
                                  coords={"bond": bonds}, attrs={"name": "rating_bucket"})}),
    })
    tree.attrs.update(pooling=pooling, errors=errors,
                      model=json.dumps({"family": "FactorModel", "pooling": pooling}))
    return tree


def _hier_posterior(rng, C, D, gnames, factors, correlated=False):
    G, K = len(gnames), len(factors)
    cd = {"chain": np.arange(C), "draw": np.arange(D)}
    g = {"rating_bucket": gnames}
    gf = {**g, "factor": factors}
    post = {
        "mu_alpha": xr.DataArray(rng.normal(0.001, 0.001, (C, D, G)),
                                 dims=("chain", "draw", "rating_bucket"), coords={**cd, **g}),
        "tau_alpha": xr.DataArray(rng.uniform(0.0005, 0.003, (C, D, G)),
                                  dims=("chain", "draw", "rating_bucket"), coords={**cd, **g}),
        "mu_beta": xr.DataArray(rng.normal(1.0, 0.2, (C, D, G, K)),
                                dims=("chain", "draw", "rating_bucket", "factor"),
                                coords={**cd, **gf}),
        "tau_beta": xr.DataArray(rng.uniform(0.05, 0.4, (C, D, G, K)),
                                 dims=("chain", "draw", "rating_bucket", "factor"),
                                 coords={**cd, **gf}),
        "mu_log_sigma": xr.DataArray(np.log(0.01) + rng.normal(0, 0.2, (C, D, G)),
                                     dims=("chain", "draw", "rating_bucket"), coords={**cd, **g}),
        "tau_log_sigma": xr.DataArray(rng.uniform(0.1, 0.6, (C, D, G)),
                                      dims=("chain", "draw", "rating_bucket"),
                                      coords={**cd, **g}),
    }
    if correlated:
        Ls = np.empty((C, D, G, K, K))
        for idx in np.ndindex(C, D, G):
            Ls[idx] = np.linalg.cholesky(np.corrcoef(rng.normal(size=(K, 3 * K))))
        post["chol_corr_beta"] = xr.DataArray(
            Ls, dims=("chain", "draw", "rating_bucket", "factor", "factor2"),
            coords={**cd, **gf, "factor2": factors})
    return post


@pytest.mark.parametrize("correlated", [False, True])
def test_bond_loglik_of_a_hierarchical_fit_equals_scipy_per_draw_and_bond(correlated):
    y, F, X = _panel(T=24, B=5, seed=7)
    rng = np.random.default_rng(8)
    gnames = ["HY", "IG"]  # the posterior's order, not the bonds' order of appearance
    groups = ["IG", "IG", "HY", "IG", "HY"]
    post = _hier_posterior(rng, 2, 3, gnames, ["f0", "f1"], correlated)
    tree = _tree(y, F, groups, post, "hierarchical")
    ll = bond_loglik(tree, max_bytes=1)  # one bond a block
    assert ll.dims == ("chain", "draw", "bond") and ll.shape == (2, 3, 5)
    assert list(ll["bond_group"].values) == groups
    for c, d, b in [(0, 0, 0), (1, 2, 2), (0, 1, 3), (1, 0, 4)]:
        g = gnames.index(groups[b])
        ta = post["tau_alpha"].values[c, d, g]
        tb = post["tau_beta"].values[c, d, g]
        S = np.diag(np.concatenate([[ta], tb]))
        if correlated:
            S[1:, 1:] = tb[:, None] * post["chol_corr_beta"].values[c, d, g]
        m = np.concatenate([[post["mu_alpha"].values[c, d, g]], post["mu_beta"].values[c, d, g]])
        o = np.isfinite(y[:, b])
        ref = _mvn_marginal(y[o, b], X[o], m, S @ S.T, post["mu_log_sigma"].values[c, d, g],
                            post["tau_log_sigma"].values[c, d, g])
        assert float(ll.values[c, d, b]) == pytest.approx(ref, abs=1e-8)


def test_bond_loglik_of_a_pooled_fit_integrates_only_sigma():
    y, F, X = _panel(T=24, B=4, seed=9)
    rng = np.random.default_rng(10)
    C, D = 2, 2
    cd = {"chain": np.arange(C), "draw": np.arange(D)}
    post = {
        "alpha": xr.DataArray(rng.normal(0.001, 0.001, (C, D)), dims=("chain", "draw"),
                              coords=cd),
        "beta": xr.DataArray(rng.normal(1.0, 0.1, (C, D, 2)), dims=("chain", "draw", "factor"),
                             coords={**cd, "factor": ["f0", "f1"]}),
        "mu_log_sigma": xr.DataArray(np.log(0.01) + rng.normal(0, 0.1, (C, D)),
                                     dims=("chain", "draw"), coords=cd),
        "tau_log_sigma": xr.DataArray(rng.uniform(0.1, 0.5, (C, D)), dims=("chain", "draw"),
                                      coords=cd),
    }
    tree = _tree(y, F, ["all"] * 4, post, "pooled")
    ll = bond_loglik(tree)
    c, d, b = 1, 0, 2
    o = np.isfinite(y[:, b])
    th = np.concatenate([[post["alpha"].values[c, d]], post["beta"].values[c, d]])
    mu, tau = post["mu_log_sigma"].values[c, d], post["tau_log_sigma"].values[c, d]

    def f(u):
        return np.exp(st.norm.logpdf(y[o, b], X[o] @ th, np.exp(u)).sum()
                      + st.norm.logpdf(u, mu, tau) - float(ll.values[c, d, b]))

    r, _ = si.quad(f, mu - 10 * tau, mu + 10 * tau, limit=400, epsabs=1e-13)
    assert np.log(r) == pytest.approx(0.0, abs=1e-8)


def test_bond_loglik_refuses_fits_without_a_population_or_a_closed_form():
    y, F, _ = _panel(T=24, B=4, seed=11)
    rng = np.random.default_rng(12)
    post = _hier_posterior(rng, 1, 2, ["IG"], ["f0", "f1"])
    unpooled = _tree(y, F, ["IG"] * 4, post, "unpooled")
    with pytest.raises(SpecError, match="unpooled fit gives every bond its own coefficients"):
        bond_loglik(unpooled)
    student = _tree(y, F, ["IG"] * 4, post, "hierarchical", errors="student_t")
    with pytest.raises(SpecError, match="Gaussian errors.*'student_t'"):
        bond_loglik(student)
    de = _tree(y, F, ["IG"] * 4, post, "hierarchical")
    de["posterior"] = de["posterior"].to_dataset().assign(
        date_effect=xr.DataArray(np.zeros((1, 2, 24)), dims=("chain", "draw", "date")))
    with pytest.raises(SpecError, match="date effects"):
        bond_loglik(de)
    lost = _tree(y, F, ["IG", "IG", "BB", "BB"], post, "hierarchical")
    with pytest.raises(SpecError, match="bonds b2, b3 are in groups BB"):
        bond_loglik(lost)

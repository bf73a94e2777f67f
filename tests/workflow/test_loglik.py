"""Pointwise log-likelihood and chunked PSIS-LOO against scipy densities and arviz_stats.loo.

The fits here are exact posterior draws of the unpooled regression under the noninformative prior
p(theta, sigma^2) ~ 1/sigma^2 (Gelman et al., BDA3, sec. 14.2): sigma^2 | y ~ Inv-chi2(n - p, s^2),
theta | sigma, y ~ N(theta_OLS, sigma^2 (X'X)^-1). They need no MCMC, so the tests are fast.
"""

import tracemalloc

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import xarray as xr

from bayesbond.errors import SpecError
from bayesbond.workflow.loglik import add_log_likelihood, iter_loglik, loo, pointwise_loglik


def conjugate_fit(y, F, factors, chains=2, draws=500, seed=0, groups=None, nu=None):
    """DataTree of exact posterior draws of the flat-prior unpooled regression of each bond."""
    rng = np.random.default_rng(seed)
    T, B = y.shape
    K = F.shape[1]
    X = np.column_stack([np.ones(T), F])
    S = chains * draws
    alpha = np.empty((S, B))
    beta = np.empty((S, B, K))
    sigma = np.empty((S, B))
    for b in range(B):
        o = np.isfinite(y[:, b])
        Xb, yb = X[o], y[o, b]
        coef, *_ = np.linalg.lstsq(Xb, yb, rcond=None)
        dof = o.sum() - K - 1
        s2 = np.sum((yb - Xb @ coef) ** 2) / dof
        sig2 = dof * s2 / rng.chisquare(dof, size=S)
        Linv = np.linalg.cholesky(np.linalg.inv(Xb.T @ Xb))
        th = coef + np.sqrt(sig2)[:, None] * (rng.standard_normal((S, K + 1)) @ Linv.T)
        alpha[:, b], beta[:, b], sigma[:, b] = th[:, 0], th[:, 1:], np.sqrt(sig2)
    dates = pd.date_range("2001-01-31", periods=T, freq="ME")
    bonds = [f"b{i:02d}" for i in range(B)]
    cd = {"chain": np.arange(chains), "draw": np.arange(draws)}
    post = {
        "alpha": xr.DataArray(alpha.reshape(chains, draws, B), dims=("chain", "draw", "bond"),
                              coords={**cd, "bond": bonds}),
        "beta": xr.DataArray(beta.reshape(chains, draws, B, K),
                             dims=("chain", "draw", "bond", "factor"),
                             coords={**cd, "bond": bonds, "factor": factors}),
        "sigma": xr.DataArray(sigma.reshape(chains, draws, B), dims=("chain", "draw", "bond"),
                              coords={**cd, "bond": bonds}),
    }
    if nu is not None:
        post["nu"] = xr.DataArray(rng.uniform(nu - 1, nu + 1, (chains, draws)),
                                  dims=("chain", "draw"), coords=cd)
    groups = np.array(["all"] * B if groups is None else groups, dtype=str)
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset(post),
        "observed_data": xr.Dataset({"returns": xr.DataArray(
            y, dims=("date", "bond"), coords={"date": dates, "bond": bonds})}),
        "constant_data": xr.Dataset({
            "factor_returns": xr.DataArray(F, dims=("date", "factor"),
                                           coords={"date": dates, "factor": factors}),
            "group": xr.DataArray(groups, dims="bond", coords={"bond": bonds},
                                  attrs={"name": "rating_bucket"})}),
    })
    tree.attrs["errors"] = "student_t" if nu is not None else "normal"
    return tree


def simulate(T=60, B=8, K=2, seed=1, missing=0.2):
    rng = np.random.default_rng(seed)
    F = rng.normal(0.004, 0.02, (T, K))
    beta = rng.normal(1.0, 0.3, (B, K))
    y = 0.001 + F @ beta.T + rng.normal(0, 0.01, (T, B))
    y[rng.random((T, B)) < missing] = np.nan
    return y, F


@pytest.fixture(scope="module")
def fit():
    y, F = simulate()
    return conjugate_fit(y, F, ["CMKT", "TERM"])


def test_pointwise_loglik_equals_scipy_normal(fit):
    ll = pointwise_loglik(fit, max_bytes=50_000)  # several blocks
    y = fit["observed_data"]["returns"].values
    F = fit["constant_data"]["factor_returns"].values
    post = fit["posterior"]
    t, b = np.nonzero(np.isfinite(y))
    mu = post["alpha"].values[..., b] + np.einsum(
        "cdik,ik->cdi", post["beta"].values[:, :, b], F[t])
    ref = st.norm.logpdf(y[t, b], mu, post["sigma"].values[..., b])
    np.testing.assert_allclose(ll.values, ref, rtol=1e-12, atol=1e-12)
    assert list(ll["obs_bond"].values) == list(fit["observed_data"]["bond"].values[b])
    np.testing.assert_array_equal(ll["obs_date"].values, fit["observed_data"]["date"].values[t])
    ll32 = pointwise_loglik(fit, dtype="float32")
    assert ll32.dtype == np.float32
    np.testing.assert_allclose(ll32.values, ref, rtol=2e-5, atol=2e-5)


def test_student_t_loglik_equals_scipy():
    y, F = simulate(T=30, B=3)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], draws=50, nu=5.0)
    ll = pointwise_loglik(tree)
    post = tree["posterior"]
    t, b = np.nonzero(np.isfinite(y))
    mu = post["alpha"].values[..., b] + np.einsum(
        "cdik,ik->cdi", post["beta"].values[:, :, b], F[t])
    ref = st.t.logpdf(y[t, b], post["nu"].values[..., None], mu, post["sigma"].values[..., b])
    np.testing.assert_allclose(ll.values, ref, rtol=1e-10)


def test_pooled_coefficients_broadcast(fit):
    pooled = fit.copy()
    post = fit["posterior"].to_dataset()
    pooled["posterior"] = xr.DataTree(post.assign(alpha=post["alpha"].isel(bond=0, drop=True),
                                                  beta=post["beta"].isel(bond=0, drop=True)))
    ll = pointwise_loglik(pooled)
    y = fit["observed_data"]["returns"].values
    F = fit["constant_data"]["factor_returns"].values
    t, b = np.nonzero(np.isfinite(y))
    mu = post["alpha"].values[..., :1] + np.einsum(
        "cdk,ik->cdi", post["beta"].values[:, :, 0], F[t])
    np.testing.assert_allclose(ll.values, st.norm.logpdf(y[t, b], mu,
                                                         post["sigma"].values[..., b]))


def test_chunked_loo_equals_arviz_loo(fit):
    full = fit.copy()
    add_log_likelihood(full)
    ref = azs.loo(full, pointwise=True, var_name="returns")
    got = loo(fit, max_bytes=40_000)  # forces several blocks
    assert got.elpd == pytest.approx(ref.elpd, rel=1e-10)
    assert got.se == pytest.approx(ref.se, rel=1e-10)
    assert got.p == pytest.approx(ref.p, rel=1e-9)
    np.testing.assert_allclose(got.elpd_i.values, ref.elpd_i.values, rtol=1e-10)
    np.testing.assert_allclose(got.pareto_k.values, ref.pareto_k.values, rtol=1e-8, atol=1e-10)
    assert got.n_data_points == ref.n_data_points
    exact = loo(fit, method="exact")
    assert exact.elpd == pytest.approx(ref.elpd, rel=1e-12)


def test_subsample_loo_equals_arviz_and_is_within_two_se_of_exact():
    y, F = simulate(T=60, B=12, seed=4)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], draws=300, seed=4)
    exact = loo(tree)
    sub = loo(tree, method="subsample", observations=150, seed=1, max_bytes=30_000)
    full = tree.copy()
    add_log_likelihood(full)
    ref = azs.loo_subsample(full, observations=150, seed=1, var_name="returns", pointwise=True)
    assert sub.subsample_size == ref.subsample_size == 150
    assert sub.elpd == pytest.approx(ref.elpd, rel=1e-10)
    assert sub.se == pytest.approx(ref.se, rel=1e-8)
    assert sub.subsampling_se == pytest.approx(ref.subsampling_se, rel=1e-8)
    assert sub.p == pytest.approx(ref.p, rel=1e-8)
    assert abs(sub.elpd - exact.elpd) <= 2 * sub.subsampling_se


def test_chunked_loo_memory_is_bounded():
    """60 bonds x 240 months x 400 draws: the full array takes 46 MB, a block 2 MB."""
    y, F = simulate(T=240, B=60, seed=5, missing=0.0)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], chains=2, draws=200, seed=5)
    full_bytes = y.size * 400 * 8
    tracemalloc.start()
    res = loo(tree, method="subsample", observations=200, max_bytes=2 * 2**20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < full_bytes / 4, peak
    blocks = list(iter_loglik(tree, max_bytes=2 * 2**20))
    assert len(blocks) > 4
    assert sum(b.sizes["obs"] for b in blocks) == res.n_data_points == y.size


@pytest.mark.validate
def test_loo_2000_bonds_240_months_4000_draws_under_4gb():
    y, F = simulate(T=240, B=2000, seed=6, missing=0.0)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], chains=4, draws=1000, seed=6)
    tracemalloc.start()
    res = loo(tree, method="subsample", observations=2000, dtype="float32")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert res.n_data_points == 480_000
    assert peak < 4 * 2**30, peak


def test_loo_errors(fit):
    with pytest.raises(SpecError, match="unknown LOO method"):
        loo(fit, method="waic")
    bad = fit.copy()
    bad["posterior"] = xr.DataTree(fit["posterior"].to_dataset().drop_vars("sigma"))
    with pytest.raises(SpecError, match="'sigma'"):
        loo(bad)

"""Pointwise log-likelihood and chunked PSIS-LOO against scipy densities and arviz_stats.loo.

The fits here are exact posterior draws of the unpooled regression under the noninformative prior
p(theta, sigma^2) ~ 1/sigma^2 (Gelman et al., BDA3, sec. 14.2): sigma^2 | y ~ Inv-chi2(n - p, s^2),
theta | sigma, y ~ N(theta_OLS, sigma^2 (X'X)^-1). They need no MCMC, so the tests are fast.
"""

import gc
import tracemalloc
import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import xarray as xr

from bayesbond.errors import DataError, SpecError
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


def peak_bytes(fn):
    """``fn()`` and the peak of the memory it allocated (tracemalloc, which numpy reports to).

    The cycle collector is off while ``fn`` runs, so memory freed only by it (blocks kept alive
    by reference cycles) counts against the peak.
    """
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        res = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    return res, peak


def test_blocks_hold_max_bytes_over_one_bond_of_values():
    """A block has floor(max_bytes / (draws x dates x itemsize)) bonds: the array it is computed
    in is the only block-sized one (the old sizing assumed three and made blocks 3x smaller)."""
    y, F = simulate(T=40, B=23, seed=7)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], chains=2, draws=50, seed=7)
    per_bond = 2 * 50 * 40 * 8
    sizes = [len(set(b["obs_bond"].values)) for b in iter_loglik(tree, max_bytes=5 * per_bond)]
    assert sizes == [5, 5, 5, 5, 3]
    sizes32 = [len(set(b["obs_bond"].values))
               for b in iter_loglik(tree, max_bytes=5 * per_bond, dtype="float32")]
    assert sizes32 == [10, 10, 3]


def test_chunked_and_subsample_loo_peak_memory_is_max_bytes_plus_posterior_size():
    """30 bonds x 240 months x 400 draws, 10% missing: the full float64 array takes 21 MB.

    With blocks of 8 MB, the peak of either route is 8 MB plus arrays of the size of the
    posterior (0.4 MB) and of the pointwise results, and the kept subsample. The old code held
    5-6 block-sized temporaries, and reference cycles kept earlier blocks alive.
    """
    y, F = simulate(T=240, B=30, seed=5, missing=0.1)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], chains=2, draws=200, seed=5)
    S, N = 400, int(np.isfinite(y).sum())
    full_bytes = N * S * 8
    post_bytes = sum(v.nbytes for v in tree["posterior"].to_dataset().data_vars.values())
    max_bytes = 8 * 2**20
    assert full_bytes > 2.4 * max_bytes
    overhead = 4 * post_bytes + 200 * N
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a few high Pareto k: not the point here
        res, peak = peak_bytes(lambda: loo(tree, max_bytes=max_bytes))
    assert res.n_data_points == N
    assert peak < max_bytes + overhead, (peak, max_bytes + overhead)
    m = 200
    sub, peak = peak_bytes(lambda: loo(tree, method="subsample", observations=m,
                                       max_bytes=max_bytes))
    assert sub.n_data_points == N
    assert peak < max_bytes + overhead + m * S * 8, (peak, max_bytes + overhead + m * S * 8)
    blocks = list(iter_loglik(tree, max_bytes=2 * 2**20))
    assert len(blocks) > 4
    assert sum(b.sizes["obs"] for b in blocks) == N


def big_panel_loo_peak(n_bonds, chains, draws, **loo_kw):
    """Peak memory of :func:`loo` on a fully observed ``n_bonds`` x 240-month panel."""
    y, F = simulate(T=240, B=n_bonds, seed=6, missing=0.0)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], chains=chains, draws=draws, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res, peak = peak_bytes(lambda: loo(tree, **loo_kw))
    assert res.n_data_points == 240 * n_bonds
    return res, peak


@pytest.mark.validate
def test_loo_2000_bonds_240_months_4000_draws_under_4gb():
    _, peak = big_panel_loo_peak(2000, 4, 1000, method="subsample", observations=2000,
                                 dtype="float32")
    assert peak < 4 * 2**30, peak


@pytest.mark.validate
def test_chunked_loo_2000_bonds_240_months_4000_draws_under_4gb():
    """The route :func:`bayesbond.compare` uses (chunked, float64, default ``max_bytes``)."""
    _, peak = big_panel_loo_peak(2000, 4, 1000)
    assert peak < 4 * 2**30, peak


def test_subsample_pointwise_values_line_up_with_their_observation_indices():
    """elpd_i[j] and pareto_k[j] are those of observation loo_subsample_observations[j]."""
    y, F = simulate(T=60, B=12, seed=4)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], draws=300, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exact = loo(tree)
        sub = loo(tree, method="subsample", observations=150, seed=1,
                  max_bytes=30_000)  # several blocks: block order differs from index order
    idx = np.asarray(sub.loo_subsample_observations)
    assert len(idx) == 150 == len(np.unique(idx))
    np.testing.assert_array_equal(sub.elpd_i["obs"].values, idx)
    np.testing.assert_allclose(sub.elpd_i.values, exact.elpd_i.values[idx], rtol=1e-12)
    np.testing.assert_allclose(sub.pareto_k.values, exact.pareto_k.values[idx], rtol=1e-10)
    for c in ("obs_bond", "obs_date"):
        np.testing.assert_array_equal(sub.elpd_i[c].values, exact.elpd_i[c].values[idx])
    # the same subsample as arviz_stats.loo_subsample draws from the seed
    full = tree.copy()
    add_log_likelihood(full)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = azs.loo_subsample(full, observations=150, seed=1, var_name="returns",
                                pointwise=True)
    np.testing.assert_array_equal(idx, np.sort(ref.loo_subsample_observations))


def test_subsample_default_size_never_exceeds_the_number_of_cells():
    """N < 100: the default subsample is every cell, and the estimate is the exact LOO."""
    y, F = simulate(T=20, B=3, seed=8)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], draws=200, seed=8)
    N = int(np.isfinite(y).sum())
    assert N < 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exact = loo(tree)
        sub = loo(tree, method="subsample")
    assert sub.subsample_size == N == sub.n_data_points
    assert sub.elpd == pytest.approx(exact.elpd, rel=1e-12)
    assert sub.subsampling_se == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(SpecError, match=rf"between 1 and {N}.*got {N + 1}"):
        loo(tree, method="subsample", observations=N + 1)
    with pytest.raises(SpecError, match="got 0"):
        loo(tree, method="subsample", observations=0)


def permuted(tree, perm_bonds=None, perm_factors=None, transpose=True, keep=None):
    """Copy of ``tree`` whose posterior has bonds (and factors) in another order, a subset
    ``keep`` of the bonds, and dims transposed."""
    post = tree["posterior"].to_dataset()
    if keep is not None:
        post = post.sel(bond=keep)
    if perm_bonds is not None:
        post = post.isel(bond=perm_bonds)
    if perm_factors is not None:
        post = post.isel(factor=perm_factors)
    if transpose:
        post = post.assign(
            alpha=post["alpha"].transpose("bond", "draw", "chain"),
            beta=post["beta"].transpose("factor", "draw", "bond", "chain"),
            sigma=post["sigma"].transpose("draw", "bond", "chain"))
        if "nu" in post:
            post = post.assign(nu=post["nu"].transpose("draw", "chain"))
    out = tree.copy()
    out["posterior"] = xr.DataTree(post)
    return out


def test_loglik_matches_the_posterior_to_the_data_by_label():
    y, F = simulate(T=30, B=6, K=3, seed=9)
    for nu in (None, 5.0):
        tree = conjugate_fit(y, F, ["CMKT", "TERM", "DEF"], draws=40, seed=9, nu=nu)
        ref = pointwise_loglik(tree)
        perm = [3, 0, 5, 1, 4, 2]
        for t in (permuted(tree, perm, transpose=False),
                  permuted(tree, perm, [2, 0, 1], transpose=True)):
            got = pointwise_loglik(t, max_bytes=5_000)  # several blocks
            np.testing.assert_allclose(got.values, ref.values, rtol=1e-13, atol=1e-13)
            np.testing.assert_array_equal(got["obs_bond"].values, ref["obs_bond"].values)
    # factor returns stored with dates in another order
    shuffled = tree.copy()
    fr = tree["constant_data"].to_dataset()
    shuffled["constant_data"] = xr.DataTree(fr.isel(date=np.arange(30)[::-1]))
    np.testing.assert_allclose(pointwise_loglik(shuffled).values, ref.values, rtol=1e-13)
    # a posterior with more bonds than the data: the extra ones are not used
    obs = tree["observed_data"].to_dataset()
    fewer = tree.copy()
    fewer["observed_data"] = xr.DataTree(obs.isel(bond=[4, 1]))
    got = pointwise_loglik(fewer)
    t, b = np.nonzero(np.isfinite(y[:, [4, 1]]))
    sel = [np.flatnonzero((ref["obs_bond"].values == bb) & (ref["obs_date"].values == dd))[0]
           for bb, dd in zip(np.array(["b04", "b01"])[b], obs["date"].values[t], strict=True)]
    np.testing.assert_allclose(got.values, ref.values[..., sel], rtol=1e-13)


def test_a_bond_missing_from_the_posterior_is_named():
    y, F = simulate(T=30, B=6, seed=9)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], draws=20, seed=9)
    bad = permuted(tree, keep=["b00", "b01", "b03", "b05"])
    with pytest.raises(SpecError, match=r"no bond b02, b04"):
        pointwise_loglik(bad)
    with pytest.raises(SpecError, match=r"no bond b02, b04"):
        loo(bad)
    other = tree.copy()
    other["constant_data"] = xr.DataTree(
        tree["constant_data"].to_dataset().assign_coords(factor=["CMKT", "SMB"]))
    with pytest.raises(SpecError, match="'beta' has no factor SMB, which constant_data"):
        pointwise_loglik(other)
    no_nu = tree.copy()
    no_nu.attrs["errors"] = "student_t"
    with pytest.raises(SpecError, match="Student-t fit needs .*'nu'"):
        pointwise_loglik(no_nu)


def test_loo_errors(fit):
    with pytest.raises(SpecError, match="unknown LOO method"):
        loo(fit, method="waic")
    bad = fit.copy()
    bad["posterior"] = xr.DataTree(fit["posterior"].to_dataset().drop_vars("sigma"))
    with pytest.raises(SpecError, match="'sigma'"):
        loo(bad)


def test_float32_chunked_loo_equals_arviz_on_the_float32_loglik(fit):
    """float32 blocks go to PSIS without a float64 copy; PSIS still runs in float64."""
    ll32 = pointwise_loglik(fit, dtype="float32")
    full = fit.copy()
    full["log_likelihood"] = xr.DataTree(ll32.astype("float64").to_dataset())
    ref = azs.loo(full, pointwise=True, var_name="returns")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = loo(fit, dtype="float32", max_bytes=20_000)  # several blocks
    np.testing.assert_allclose(got.elpd_i.values, ref.elpd_i.values, rtol=1e-10)
    np.testing.assert_allclose(got.pareto_k.values, ref.pareto_k.values, rtol=1e-10)
    assert got.p == pytest.approx(ref.p, rel=1e-9)


def test_a_cell_with_a_constant_loglik_is_named_where_arviz_raises():
    """A bond whose parameters do not vary over the draws: every importance ratio of its cells
    is equal, no Pareto tail can be fitted (arviz_stats raises a bare ValueError)."""
    y, F = simulate(T=20, B=4, seed=11, missing=0.0)
    tree = conjugate_fit(y, F, ["CMKT", "TERM"], draws=100, seed=11)
    post = tree["posterior"].to_dataset()
    for v in ("alpha", "sigma", "beta"):
        const = post[v].sel(bond="b02").isel(chain=0, draw=0)
        post[v].loc[{"bond": "b02"}] = const
    tree["posterior"] = xr.DataTree(post)
    full = tree.copy()
    add_log_likelihood(full)
    with pytest.raises(ValueError, match="All tail values are the same"):
        azs.loo(full, pointwise=True, var_name="returns")
    for kw in ({}, {"max_bytes": 30_000}, {"method": "subsample", "observations": 80}):
        with pytest.raises(DataError, match=r"bond b02 on 2001-01-31; bond b02 on 2001-02-28"):
            loo(tree, **kw)

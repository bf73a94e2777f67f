"""The shared sampler wrapper: attributes, diagnostics and the convergence warning."""

import numpy as np
import pymc as pm
import pytest

from bayesbond.bayes.sampling import diagnostics, sample
from bayesbond.errors import ConvergenceWarning


def test_sample_normal_mean_matches_conjugate_posterior():
    rng = np.random.default_rng(1)
    y = rng.normal(0.3, 1.0, size=200)
    with pm.Model() as m:
        mu = pm.Normal("mu", 0.0, 10.0)
        pm.Normal("y", mu, 1.0, observed=y)
    idata = sample(m, draws=500, tune=500, chains=2, random_seed=3, model_name="normal")
    post_var = 1.0 / (1 / 100.0 + len(y))
    post_mean = post_var * y.sum()
    draws = idata["posterior"]["mu"].values
    assert abs(draws.mean() - post_mean) < 4 * np.sqrt(post_var / 300)
    d = diagnostics(idata)
    assert d.ok and d.divergences == 0 and d.max_rhat <= 1.01
    assert idata.attrs["model"] == "normal" and "R-hat" in idata.attrs["diagnostics"]


def test_non_convergence_warns_with_numbers():
    with pm.Model() as m:
        pm.Normal("x", 0.0, 1.0)
    with pytest.warns(ConvergenceWarning, match="R-hat"):
        sample(m, draws=5, tune=5, chains=2, random_seed=1)


def test_diagnostics_equal_arviz_stats_extremes():
    """The vectorised check reproduces arviz_stats' worst R-hat and smallest bulk/tail ESS."""
    import arviz_stats as azs
    import xarray as xr

    rng = np.random.default_rng(2)
    C, D = 4, 300
    e = rng.standard_normal((C, D, 6, 2))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, D):  # AR(1) with element-wise persistence
        x[:, t] = np.linspace(0.1, 0.9, 6)[:, None] * x[:, t - 1] + e[:, t]
    post = xr.Dataset({
        "a": (("chain", "draw", "bond", "factor"), x + np.arange(C)[:, None, None, None] * 0.05),
        "b": (("chain", "draw"), rng.standard_normal((C, D))),
        "c": (("chain", "draw", "bond"), np.ones((C, D, 6))),  # constant: R-hat NaN, ignored
    })
    tree = xr.DataTree.from_dict({"posterior": post})
    d = diagnostics(tree)
    ref = {k: azs.rhat(post[["a", "b"]])[k].max() for k in ("a", "b")}
    np.testing.assert_allclose(d.max_rhat, max(float(v) for v in ref.values()), rtol=1e-12)
    bulk = azs.ess(post, method="bulk")
    tail = azs.ess(post, method="tail")
    np.testing.assert_allclose(d.min_ess_bulk, min(float(bulk[k].min()) for k in bulk),
                               rtol=1e-12)
    np.testing.assert_allclose(d.min_ess_tail, min(float(tail[k].min()) for k in tail),
                               rtol=1e-12)
    assert d.divergences == 0 and (d.n_chains, d.n_draws) == (C, D)
    # chains stuck at different constants: R-hat about 6e15 (0 within-chain variance up to rounding)
    stuck = post.assign(c=(("chain", "draw", "bond"),
                           np.broadcast_to(np.arange(C)[:, None, None], (C, D, 6)).astype(float)))
    d_stuck = diagnostics(xr.DataTree.from_dict({"posterior": stuck}))
    assert d_stuck.max_rhat > 1e3 and not d_stuck.ok

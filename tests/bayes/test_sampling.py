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

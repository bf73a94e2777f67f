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


# ----------------------------------------------------------- settings, timings, progress, advice
def test_bad_sampler_settings_refused_before_any_work():
    from bayesbond.bayes.sampling import check_sampler_args
    from bayesbond.errors import SpecError

    with pm.Model() as m:
        pm.Normal("x", 0.0, 1.0)
    with pytest.raises(SpecError, match=r"draws = 0: need an integer >= 1"):
        sample(m, draws=0, tune=5, chains=2)
    for kw, key in ((dict(draws=10, tune=-1, chains=2), "tune = -1"),
                    (dict(draws=10, tune=5, chains=0), "chains = 0"),
                    (dict(draws=2.5, tune=5, chains=2), "draws = 2.5"),
                    (dict(draws=10, tune=5, chains=2, target_accept=1.0), "target_accept = 1.0")):
        with pytest.raises(SpecError, match=key):
            check_sampler_args(**kw)


def test_timings_and_phases_reported():
    """compile_seconds and sampling_seconds are in the attrs; the phases go to progress_to's
    callback (and nothing to it without progress_to, off a terminal)."""
    from bayesbond.bayes.sampling import progress_to

    with pm.Model() as m:
        pm.Normal("x", 0.0, 1.0)
    lines = []
    with progress_to(lines.append):
        idata = sample(m, draws=500, tune=200, chains=2, random_seed=1, model_name="one")
    assert idata.attrs["compile_seconds"] > 0 and idata.attrs["sampling_seconds"] > 0
    text = "\n".join(lines)
    for phase in ("compiling one", "tuning: 2 chains x 200", "drawing: 2 chains x 500",
                  "sampled in", "post-processing"):
        assert phase in text, text
    assert idata["posterior"].sizes["draw"] == 500


def test_interrupted_nutpie_run_is_not_a_fit(monkeypatch):
    """nutpie answers Ctrl-C by returning the draws so far; sample() raises instead."""
    import nutpie

    real = nutpie.sample

    def cut_short(compiled, **kw):
        return real(compiled, **{**kw, "draws": kw["draws"] // 2})

    monkeypatch.setattr(nutpie, "sample", cut_short)
    with pm.Model() as m:
        pm.Normal("x", 0.0, 1.0)
    with pytest.raises(KeyboardInterrupt, match="after 50 of 100 draws"):
        sample(m, draws=100, tune=50, chains=2, random_seed=1)


def _tree(post: dict, diverging=None):
    import xarray as xr

    ds = xr.Dataset({k: (("chain", "draw", *([f"{k}_dim"] if np.ndim(v) == 3 else [])), v)
                     for k, v in post.items()})
    children = {"posterior": ds}
    if diverging is not None:
        children["sample_stats"] = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return xr.DataTree.from_dict(children)


def test_warning_names_model_failed_parameters_and_funnel():
    """Divergences at small values of a scale parameter: 'funnel', the parameter named; a JSON
    spec as model name is shortened to Family(scalar settings)."""
    import json

    from bayesbond.bayes.sampling import check_convergence

    rng = np.random.default_rng(0)
    C, D = 4, 500
    log_tau = np.cumsum(rng.normal(0, 0.3, (C, D)), axis=1) * 0.1 + rng.normal(0, 1, (C, 1))
    tau = np.exp(log_tau - 2)
    div = tau < np.quantile(tau, 0.05)  # divergent draws where tau is smallest
    mu = rng.normal(size=(C, D))
    tree = _tree({"tau": tau, "mu": mu}, div)
    name = json.dumps({"family": "OUModel", "n": 1, "priors": {}, "stationary_init": False})
    with pytest.warns(ConvergenceWarning) as rec:
        check_convergence(tree, model_name=name)
    msg = str(rec[0].message)
    assert msg.startswith("OUModel(n=1, stationary_init=False) did not converge cleanly")
    assert "{" not in msg
    assert "Failed: tau (R-hat" in msg and "mu (" not in msg
    assert f"a funnel: the {int(div.sum())} divergences sit at small values of tau" in msg
    assert "raise target_accept" in msg and "pool" in msg


def test_advice_for_a_ridge_and_for_a_boundary():
    from bayesbond.bayes.sampling import explain

    rng = np.random.default_rng(1)
    C, D = 4, 400
    walk = np.cumsum(rng.normal(size=(C, D)), axis=1) * 0.05 + rng.normal(0, 0.5, (C, 1))
    a = walk + 0.01 * rng.normal(size=(C, D))
    b = -walk + 0.01 * rng.normal(size=(C, D))  # a + b is identified, a and b are not
    msg = explain(_tree({"a": a, "b": b}))
    assert "weak identification" in msg and "correlation -1.00" in msg, msg
    assert "Failed: a (R-hat" in msg or "Failed: b (R-hat" in msg
    # a positive parameter piled up at zero, mixing slowly
    k = np.exp(np.cumsum(rng.normal(0, 1.0, (C, D)), axis=1) * 0.3 - 1.0)
    msg = explain(_tree({"kappa": k}))
    assert "a boundary: the posterior of kappa piles up at zero" in msg, msg
    # a clean posterior: nothing to say
    assert explain(_tree({"z": rng.normal(size=(C, D))})) == ""


def test_advice_when_only_rhat_fails():
    """Chains that each mix well but sit apart: not 'too few draws' but 'the chains disagree'."""
    from bayesbond.bayes.sampling import explain

    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 1000)) + np.array([0.0, 0.0, 0.0, 0.37])[:, None]  # R-hat 1.011
    msg = explain(_tree({"x": x}))
    assert msg.startswith("Failed: x (R-hat") and "the chains disagree" in msg, msg

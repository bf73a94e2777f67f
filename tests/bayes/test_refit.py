"""Compile once, refit many: a fit on new data of the same shapes reuses the compiled sampler
(``sample(compile_key=...)``, keyed by the models' ``compile_key`` hooks) and gives the draws a
fresh compile of those data gives."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesbond as bb
from bayesbond.bayes import sampling

KW = dict(draws=40, tune=40, chains=2, random_seed=4, progressbar=False)


def _panel(seed, start="2000-01-31", prefix="B"):
    sim = bb.datasets.simulate_panel(n_bonds=12, n_dates=48, seed=seed)
    R = sim.panel.returns.to_pandas()
    R.index = pd.date_range(start, periods=len(R), freq="ME", name="date")
    R.columns = [f"{prefix}{i:03d}" for i in range(R.shape[1])]
    F = sim.factors.set_axis(R.index)
    groups = pd.Series(np.array(["IG+", "IG-", "HY"])[np.arange(12) % 3], index=R.columns)
    return R, F, groups


def _fit(model, data):
    R, F, groups = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(R, F, groups=groups, **KW)


@pytest.mark.slow
def test_a_refit_on_new_months_and_bonds_reuses_the_compiled_sampler():
    sampling._COMPILED.clear()
    model = bb.FactorModel(["CMKT", "TERM"])
    first = _fit(model, _panel(1))
    other = _panel(2, start="2010-01-31", prefix="X")
    refit = _fit(model, other)
    assert not first.attrs["compile_reused"] and refit.attrs["compile_reused"]
    assert refit.attrs["compile_seconds"] < 0.05 * first.attrs["compile_seconds"]
    # the new data's labels, not the cached model's
    assert list(refit["posterior"]["bond"].values) == list(other[0].columns)
    assert refit["observed_data"]["date"].to_index()[0] == pd.Timestamp("2010-01-31")
    # the same draws as a fresh compile of the new data
    sampling._COMPILED.clear()
    fresh = _fit(model, other)
    assert not fresh.attrs["compile_reused"]
    for v in ("alpha", "beta", "sigma", "mu_beta", "tau_beta"):
        np.testing.assert_array_equal(refit["posterior"][v].values, fresh["posterior"][v].values)
    # another shape compiles anew
    R, F, groups = _panel(3)
    smaller = _fit(model, (R.iloc[:, :9], F, groups.iloc[:9]))
    assert not smaller.attrs["compile_reused"]


@pytest.mark.slow
def test_a_key_too_coarse_costs_a_compile_not_a_wrong_posterior():
    """Two models of other graphs under one key: the second is compiled, not given the first's
    sampler (the graphs are compared, not only the keys)."""
    sampling._COMPILED.clear()
    R, F, groups = _panel(1)
    kw = {k: v for k, v in KW.items() if k != "progressbar"}
    fits = []
    for pooling in ("pooled", "unpooled"):
        model = bb.FactorModel(["CMKT"], pooling=pooling)
        built = model.build(model.prepare(R, F, groups))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(sampling.sample(built, compile_key="one key", check=False,
                                        progressbar=False, **kw))
    assert [f.attrs["compile_reused"] for f in fits] == [False, False]

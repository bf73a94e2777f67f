"""LOO comparison: ranks the data-generating model first, equals arviz_stats.compare, warns on k;
every Bayesian family compares; fits of different families or data are refused by name; the
table keeps one decimal of elpd and its differences."""

import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesbond.bayes.ou_model import OUModel
from bayesbond.core.ou import OU, transition_loglik
from bayesbond.errors import ModelError, SpecError
from bayesbond.workflow.compare import compare
from bayesbond.workflow.loglik import add_log_likelihood, loo
from tests.workflow.test_loglik import conjugate_fit, simulate


@pytest.fixture(scope="module")
def fits():
    y, F = simulate(T=80, B=10, seed=3)
    two = conjugate_fit(y, F, ["CMKT", "TERM"], seed=1)
    one = conjugate_fit(y, F[:, :1], ["CMKT"], seed=2)
    return y, F, two, one


def test_true_model_ranks_first_and_table_equals_arviz(fits):
    _, _, two, one = fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # se="obs": the cell-level SEs of arviz_stats (the default se="date" clusters by date)
        table = compare({"CMKT+TERM": two, "CMKT": one}, round_to="none", se="obs")
    assert list(table.index) == ["CMKT+TERM", "CMKT"]
    assert abs(table.loc["CMKT", "elpd_diff"]) > 2 * table.loc["CMKT", "dse"]
    full = {}
    for name, t in (("CMKT+TERM", two), ("CMKT", one)):
        c = t.copy()
        add_log_likelihood(c)
        full[name] = c
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = azs.compare(full, round_to="none")
    for col in ("elpd", "p", "elpd_diff", "se", "dse", "weight"):
        np.testing.assert_allclose(table[col].astype(float), ref[col].astype(float), rtol=1e-8)
    for name, t in full.items():
        e = azs.loo(t, pointwise=True, var_name="returns")
        assert table.loc[name, "n_high_k"] == int((e.pareto_k > e.good_k).sum())


def test_high_pareto_k_is_warned_not_hidden(fits):
    y, F, two, one = fits
    y2 = y.copy()
    y2[np.isfinite(y2[:, 0]).nonzero()[0][0], 0] += 1.0  # a 100-sigma outlier
    bad = conjugate_fit(y2, F, ["CMKT", "TERM"], seed=4)
    good = conjugate_fit(y2, F[:, :1], ["CMKT"], seed=5)
    with pytest.warns(UserWarning, match="model 'outlier': Pareto k"):
        table = compare({"outlier": bad, "other": good})
    assert table.loc["outlier", "n_high_k"] >= 1


def test_compare_errors(fits):
    y, F, two, _ = fits
    with pytest.raises(SpecError, match="at least two"):
        compare({"a": two})
    other = conjugate_fit(y[:, :5], F, ["CMKT", "TERM"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelError, match="'a' and 'b'.*different observed data.*bond"):
            compare({"a": two, "b": other})


def test_subsample_method_is_refused_with_a_clear_error():
    with pytest.raises(SpecError, match="subsample"):
        compare({"a": None, "b": None}, method="subsample")


def test_same_cells_but_different_returns_are_refused_naming_the_cell(fits):
    y, F, two, _ = fits
    y2 = y.copy()
    b, t = 3, int(np.isfinite(y[:, 3]).nonzero()[0][5])
    y2[t, b] += 0.01
    other = conjugate_fit(y2, F, ["CMKT", "TERM"], seed=7)
    with pytest.raises(ModelError, match=r"'returns' differs in 1 of .*bond b03"):
        compare({"a": two, "b": other})


# ------------------------------------------------------------------------------ OU fits
@pytest.fixture(scope="module")
def ou_fits():
    truth = OU.vasicek(3.0, 0.05, 0.02)
    x = truth.simulate(0.05, n_steps=240, dt=1 / 12, rng=8)[0]
    s = pd.Series(x, index=pd.date_range("2001-01-31", periods=len(x), freq="ME"), name="r")
    kw = dict(draws=300, tune=300, chains=2, random_seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        free = OUModel().fit(s, 1 / 12, **kw)
        wrong = OUModel(restrictions={"mean": 0.02}).fit(s, 1 / 12, **kw)
    return s, free, wrong


def test_ou_fits_compare_and_equal_arviz_on_the_exact_transition_densities(ou_fits):
    s, free, wrong = ou_fits
    # the stored pointwise values are the exact transition densities (core, independent code)
    ll = free["log_likelihood"]["x"]
    assert ll.dims == ("chain", "draw", "date") and ll.sizes["date"] == len(s) - 1
    post = free["posterior"]
    for c, d in [(0, 0), (1, 123)]:
        k, th, sg = (float(post[v].values[c, d]) for v in ("kappa", "theta", "sigma"))
        ref = transition_loglik(s.to_numpy()[:, None], 1 / 12, np.array([[-k]]),
                                np.array([k * th]), np.array([[sg**2]]))
        assert float(ll.values[c, d].sum()) == pytest.approx(ref, rel=1e-11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare({"free mean": free, "mean 2%": wrong}, round_to="none", se="obs")
        ref = azs.compare({"free mean": free, "mean 2%": wrong}, round_to="none")
    assert list(table.index) == ["free mean", "mean 2%"]
    assert abs(table.loc["mean 2%", "elpd_diff"]) > 2 * table.loc["mean 2%", "dse"]
    for col in ("elpd", "p", "elpd_diff", "se", "dse", "weight"):
        np.testing.assert_allclose(table[col].astype(float), ref[col].astype(float), rtol=1e-10)
    # bb.loo of an OU fit cross-validates its dates (it raised a KeyError on 'returns')
    e = loo(free)
    assert e.n_data_points == len(s) - 1
    assert e.elpd == pytest.approx(azs.loo(free, var_name="x").elpd, rel=1e-12)


def test_ou_against_factor_fit_is_a_model_error_naming_both(ou_fits, fits):
    _, free, _ = ou_fits
    factor = fits[2].copy()
    factor.attrs["model"] = '{"family": "FactorModel"}'
    with pytest.raises(ModelError,
                       match=r"'ou' is a fit of OUModel, 'factor' is a fit of FactorModel"):
        compare({"ou": free, "factor": factor})


def test_ou_fits_of_different_data_are_refused_naming_the_difference(ou_fits):
    s, free, _ = ou_fits
    shorter = free.copy()
    obs = free["observed_data"].to_dataset().isel(date=slice(1, None))
    shorter["observed_data"] = xr.DataTree(obs)
    with pytest.raises(ModelError, match=r"'a' and 'b'.*'x' has 241 vs 240 'date' entries "
                                         r"\(2001-01-31\.\.2021-01-31 vs 2001-02-28"):
        compare({"a": free, "b": shorter})
    moved = free.copy()
    obs = free["observed_data"].to_dataset().copy(deep=True)
    obs["x"].values[10, 0] += 1e-4
    moved["observed_data"] = xr.DataTree(obs)
    with pytest.raises(ModelError, match=r"'x' differs in 1 of 241 values \(first at date "
                                         r"2001-11-30, state r"):
        compare({"a": free, "b": moved})
    # a fit stored without its log-likelihood: the model contract computes it from the fit
    no_ll = free.copy()
    del no_ll["log_likelihood"]
    table = compare({"a": free, "b": no_ll})
    assert table.loc["b", "elpd"] == pytest.approx(table.loc["a", "elpd"], rel=1e-12)
    unnamed = xr.DataTree.from_dict({
        "posterior": free["posterior"].to_dataset(),
        "observed_data": xr.Dataset({"y": free["observed_data"]["x"]})})
    with pytest.raises(SpecError, match="'a' \\(OUModel fit\\) has no 'log_likelihood' group "
                                        "and records no model spec"):
        compare({"a": unnamed.copy(), "b": unnamed})


# ------------------------------------------------------------------------------ rounding
def _elpd(values):
    """A precomputed LOO object with pointwise elpd ``values`` (k = 0 everywhere)."""
    from arviz_stats import ELPDDataLOO

    v = np.asarray(values, float)
    da = xr.DataArray(v, dims="obs", coords={"obs": np.arange(v.size)})
    return ELPDDataLOO(elpd=float(v.sum()), se=float(np.sqrt(v.size * v.var())), p=3.21,
                       n_samples=1000, n_data_points=v.size, scale="log", warning=False,
                       good_k=0.7, elpd_i=da, pareto_k=da * 0.0, approx_posterior=False)


def test_auto_rounding_keeps_one_decimal_of_elpd_differences_and_ses():
    rng = np.random.default_rng(0)
    base = 2.7 + 0.9 * rng.standard_normal(2000)  # elpd about 5,400 with an SE of about 40
    models = {"a": _elpd(base), "b": _elpd(base - 0.0061 + 0.01 * rng.standard_normal(2000)),
              "c": _elpd(base - 0.25 + 0.3 * rng.standard_normal(2000))}
    # these hand-made results have no dates: se="obs" (the default se="date" needs obs_date)
    raw = compare(models, round_to="none", se="obs")
    auto = compare(models, se="obs")
    arviz_auto = azs.compare(models)
    # arviz_stats' own "auto" keeps the two significant digits of the SE (about 40): elpd to
    # tens, so the difference of a and b (about 12) is lost in their elpd column
    assert float(arviz_auto["elpd"].iloc[0]) % 10 == 0
    for col in ("elpd", "elpd_diff", "se", "dse", "p"):
        np.testing.assert_array_equal(auto[col], raw[col].astype(float).round(1))
    assert auto.loc["b", "elpd_diff"] == pytest.approx(raw.loc["b", "elpd_diff"], abs=0.05)
    assert 10 < abs(auto.loc["b", "elpd_diff"]) < 14 and auto.loc["b", "elpd_diff"] % 1 != 0
    assert auto.loc["b", "elpd"] != auto.loc["a", "elpd"]
    printed = auto.to_string()
    assert f"{raw.loc['a', 'elpd']:.1f}" in printed and f"{raw.loc['b', 'dse']:.1f}" in printed
    three = compare(models, round_to=3, se="obs")
    np.testing.assert_array_equal(three["elpd"], raw["elpd"].astype(float).round(3))
    with pytest.raises(SpecError, match="round_to"):
        compare(models, round_to="2g")

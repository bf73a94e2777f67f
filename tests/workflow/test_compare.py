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


# ------------------------------------------------------------------- date-clustered SEs
def _by_date(e):
    """Per-date sums of the pointwise elpd, by hand (numpy only)."""
    dates = e.elpd_i["obs_date"].values
    uniq, inv = np.unique(dates, return_inverse=True)
    s = np.zeros(len(uniq))
    np.add.at(s, inv, e.elpd_i.values)
    return s


def test_date_clustered_se_equals_a_hand_computation(fits):
    from scipy.stats import norm

    _, _, two, one = fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare({"CMKT+TERM": two, "CMKT": one}, round_to="none")  # se="date"
        cells = compare({"CMKT+TERM": two, "CMKT": one}, round_to="none", se="obs")
        e2, e1 = loo(two), loo(one)
    s2, s1 = _by_date(e2), _by_date(e1)
    T = len(s2)
    assert T == 80
    se2 = np.sqrt(T * np.sum((s2 - s2.mean()) ** 2) / (T - 1))
    se1 = np.sqrt(T * np.sum((s1 - s1.mean()) ** 2) / (T - 1))
    d = s1 - s2
    dse = np.sqrt(T * np.sum((d - d.mean()) ** 2) / (T - 1))
    assert table.loc["CMKT+TERM", "se"] == pytest.approx(se2, rel=1e-12)
    assert table.loc["CMKT", "se"] == pytest.approx(se1, rel=1e-12)
    assert table.loc["CMKT", "dse"] == pytest.approx(dse, rel=1e-12)
    assert table.loc["CMKT+TERM", "dse"] == 0
    assert table.loc["CMKT", "p_worse"] == pytest.approx(norm.cdf(-d.sum() / dse), rel=1e-9)
    # the estimates themselves are unchanged; only the SEs
    for col in ("elpd", "elpd_diff", "p", "weight"):
        np.testing.assert_allclose(table[col].astype(float), cells[col].astype(float),
                                   rtol=1e-12)
    assert list(table["unit"]) == ["obs", "obs"]
    assert list(table["se_type"]) == ["date", "date"]
    assert list(cells["se_type"]) == ["obs", "obs"]
    assert list(table["method"]) == ["psis-loo(by=obs)"] * 2


def _shocked(T, B, seed, shock):
    """Two-factor panel with a common date shock of sd ``shock`` that neither model has; the
    bonds' betas are the same for every seed (the SE is conditional on the bonds)."""
    beta = np.random.default_rng(0).normal(1.0, 0.3, (B, 2))
    rng = np.random.default_rng(seed)
    F = rng.normal(0.004, 0.02, (T, 2))
    y = 0.001 + F @ beta.T + shock * rng.standard_normal((T, 1)) + rng.normal(0, 0.01, (T, B))
    return y, F


def _dses(y, F, seed):
    two = conjugate_fit(y, F, ["CMKT", "TERM"], chains=2, draws=200, seed=seed)
    one = conjugate_fit(y, F[:, :1], ["CMKT"], chains=2, draws=200, seed=seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        date = compare({"two": two, "one": one}, round_to="none")
        cell = compare({"two": two, "one": one}, round_to="none", se="obs")
    name = date.index[1]
    return (float(date.loc[name, "elpd_diff"]) * (1 if name == "one" else -1),
            float(date.loc[name, "dse"]), float(cell.loc[name, "dse"]))


def test_date_clustered_dse_exceeds_the_cell_dse_when_cells_of_a_date_are_correlated():
    """12 bonds x 60 months with a common shock (sd 0.6%) that no model has: the bond-months
    of a date are correlated and the cell-level dse is several times too small."""
    y, F = _shocked(60, 12, seed=11, shock=0.006)
    _, dse_date, dse_cell = _dses(y, F, seed=3)
    assert dse_date > 2 * dse_cell, (dse_date, dse_cell)


@pytest.mark.slow
def test_date_clustered_dse_is_the_sampling_sd_of_the_elpd_difference():
    """Over 40 simulated panels of the same bonds (new factors, shocks and errors each time)
    the sd of the
    elpd difference matches the mean date-clustered dse (within the 25% the MC noise of 40
    replicates allows); the cell-level dse is less than half of it."""
    diffs, d_date, d_cell = [], [], []
    for r in range(40):
        y, F = _shocked(60, 12, seed=100 + r, shock=0.006)
        a, b, c = _dses(y, F, seed=1000 + r)
        diffs.append(a)
        d_date.append(b)
        d_cell.append(c)
    sd = float(np.std(diffs, ddof=1))
    ratio = np.mean(d_date) / sd
    print(f"sd of elpd_diff {sd:.2f}; mean dse by date {np.mean(d_date):.2f} "
          f"(ratio {ratio:.2f}), by cell {np.mean(d_cell):.2f} (ratio {np.mean(d_cell) / sd:.2f})")
    assert 0.75 < ratio < 1.25
    assert np.mean(d_cell) / sd < 0.5


def test_ou_fits_are_already_by_date_so_the_two_ses_coincide(ou_fits):
    """OU pointwise values are dates: se is arviz_stats' own; dse differs by sqrt(T/(T-1))
    only (arviz_stats takes ddof=0 for dse, the clustered SE ddof=1)."""
    _, free, wrong = ou_fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        date = compare({"free mean": free, "mean 2%": wrong}, round_to="none")
        obs = compare({"free mean": free, "mean 2%": wrong}, round_to="none", se="obs")
    T = 240
    np.testing.assert_allclose(date["se"].astype(float), obs["se"].astype(float), rtol=1e-12)
    assert date.loc["mean 2%", "dse"] == pytest.approx(
        obs.loc["mean 2%", "dse"] * np.sqrt(T / (T - 1)), rel=1e-12)
    assert list(date["unit"]) == ["date", "date"] and list(obs["se_type"]) == ["date", "date"]


def _by_date_result(values, dates, unit=True, method="kfold(k=10, by=date)"):
    """An ELPDData over dates, as bb.kfold returns (Python attributes unit and method)."""
    from arviz_stats import ELPDDataLOOKFold

    v = np.asarray(values, float)
    da = xr.DataArray(v, dims="date", coords={"date": dates})
    out = ELPDDataLOOKFold(elpd=float(v.sum()), se=float(np.sqrt(v.size * v.var(ddof=1))),
                           p=2.0, n_samples=400, n_data_points=v.size, scale="log",
                           warning=False, good_k=None, elpd_i=da, pareto_k=None, n_folds=10)
    if unit:
        out.unit, out.method = "date", method
    return out


def test_kfold_results_over_dates_are_compared_with_their_unit_and_method(fits):
    rng = np.random.default_rng(2)
    dates = pd.date_range("2001-01-31", periods=80, freq="ME")
    a = 20 + rng.standard_normal(80)
    b = a - 0.3 + 0.5 * rng.standard_normal(80)
    ka = _by_date_result(a, dates)
    kb = _by_date_result(b, dates, unit=False)  # e.g. dataclasses.replace drops attributes
    table = compare({"a": ka, "b": kb}, round_to="none")
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "se"] == pytest.approx(np.sqrt(80 * np.var(a, ddof=1)), rel=1e-12)
    assert table.loc["b", "dse"] == pytest.approx(np.sqrt(80 * np.var(b - a, ddof=1)), rel=1e-12)
    assert table.loc["b", "elpd_diff"] == pytest.approx((b - a).sum(), rel=1e-12)
    assert list(table["unit"]) == ["date", "date"]
    assert list(table["method"]) == ["kfold(k=10, by=date)", "kfold"]
    # against a leave-one-cell-out fit: compared on per-date sums, with a warning
    _, _, two, _ = fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cell = loo(two)
    s = _by_date(cell)
    kd = _by_date_result(s - 0.2 + 0.1 * rng.standard_normal(80), dates)
    with pytest.warns(UserWarning, match="scored on different units .*'loo' over obs, "
                                         "'kfold' over date"):
        mixed = compare({"loo": cell, "kfold": kd}, round_to="none")
    d = kd.elpd_i.values - s
    assert mixed.loc["kfold", "elpd_diff"] == pytest.approx(d.sum(), rel=1e-10)
    assert mixed.loc["kfold", "dse"] == pytest.approx(np.sqrt(80 * np.var(d, ddof=1)), rel=1e-10)
    assert mixed.loc["loo", "elpd"] == pytest.approx(cell.elpd, rel=1e-12)
    assert list(mixed.loc[["loo", "kfold"], "unit"]) == ["obs", "date"]
    with pytest.raises(ModelError, match="different units.*use se='date'"):
        compare({"loo": cell, "kfold": kd}, se="obs")
    short = _by_date_result(kd.elpd_i.values[1:], dates[1:])
    with pytest.raises(ModelError, match=r"score different dates \(80 vs 79: 'kfold' lacks "
                                         r"2001-01-31"):
        compare({"loo": cell, "kfold": short})


def test_results_over_bonds_are_not_paired_with_cells_and_subsamples_have_no_dates(fits):
    from arviz_stats import ELPDDataLOO

    _, _, two, one = fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cell = loo(two)
        sub = loo(one, method="subsample", observations=100)
    v = np.arange(10.0)
    da = xr.DataArray(v, dims="bond", coords={"bond": [f"b{i:02d}" for i in range(10)]})
    bond = ELPDDataLOO(elpd=45.0, se=1.0, p=1.0, n_samples=1000, n_data_points=10, scale="log",
                       warning=False, good_k=0.7, elpd_i=da, pareto_k=da * 0,
                       approx_posterior=False)
    with pytest.raises(ModelError, match="results over bonds cannot be paired"):
        compare({"cell": cell, "bond": bond})
    with pytest.raises(SpecError, match="subsampled LOO .* no per-date sums: use se='obs'"):
        compare({"cell": cell, "sub": sub})
    with pytest.raises(SpecError, match="se must be 'date'"):
        compare({"cell": cell, "sub": sub}, se="cluster")
    with pytest.raises(SpecError, match="by must be 'obs'"):
        compare({"cell": cell, "sub": sub}, by="month")

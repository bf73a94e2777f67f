"""Time-series cross-validation: the per-date predictive kernel against brute force, blocked
K-fold against fresh fits made by hand, PSIS-LFO against exact LFO."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logsumexp

import bayesbond as bb
from bayesbond.bayes.factor_predictive import date_logpdf, log_mean_exp
from bayesbond.errors import IdentificationWarning, SpecError
from bayesbond.workflow import cv

FACTORS = ["CMKT", "TERM"]
KW = dict(draws=150, tune=150, chains=2, random_seed=3, target_accept=0.95, progressbar=False)


def _draws(rng, S, B, K):
    return (rng.normal(size=(S, B)), rng.normal(size=(S, B, K)),
            np.exp(0.3 * rng.normal(size=(S, B))))


def _y(rng, T, B):
    y = rng.normal(size=(T, B))
    y[1, 2] = np.nan
    y[3, :] = np.nan  # a date without any return scores 0
    return y


# ------------------------------------------------------------------------- the numpy kernel
def test_date_logpdf_is_the_sum_of_scipy_normal_logpdfs_over_the_observed_bonds():
    rng = np.random.default_rng(0)
    S, T, B, K = 7, 5, 4, 2
    y, F = _y(rng, T, B), rng.normal(size=(T, K))
    a, be, sg = _draws(rng, S, B, K)
    ref = np.zeros((S, T))
    for s in range(S):
        for t in range(T):
            for b in range(B):
                if np.isfinite(y[t, b]):
                    ref[s, t] += stats.norm.logpdf(y[t, b], a[s, b] + F[t] @ be[s, b], sg[s, b])
    for max_bytes in (1, 10**8):  # one draw at a time, or all at once
        np.testing.assert_allclose(date_logpdf(y, F, a, be, sg, max_bytes=max_bytes), ref,
                                   rtol=1e-12, atol=1e-12)
    assert np.all(ref[:, 3] == 0)
    # complete pooling: one alpha and beta per draw
    pooled = date_logpdf(y, F, a[:, 0], be[:, 0], sg)
    full = date_logpdf(y, F, np.repeat(a[:, :1], B, 1), np.repeat(be[:, :1], B, 1), sg)
    np.testing.assert_allclose(pooled, full, rtol=1e-13)


def test_date_logpdf_student_t_matches_scipy():
    rng = np.random.default_rng(1)
    S, T, B, K = 5, 4, 3, 2
    y, F = _y(rng, T, B), rng.normal(size=(T, K))
    a, be, sg = _draws(rng, S, B, K)
    nu = rng.uniform(2, 20, size=S)
    ref = np.zeros((S, T))
    for s in range(S):
        for t in range(T):
            ok = np.isfinite(y[t])
            ref[s, t] = stats.t.logpdf(y[t, ok], nu[s], a[s, ok] + be[s, ok] @ F[t],
                                       sg[s, ok]).sum()
    np.testing.assert_allclose(date_logpdf(y, F, a, be, sg, nu=nu), ref, rtol=1e-12,
                               atol=1e-12)


def test_date_logpdf_with_date_effects_is_the_joint_normal_of_each_group():
    """Bonds of a group share a date effect N(0, s_g^2): jointly N(mu, diag(sigma^2) + s^2 11')."""
    rng = np.random.default_rng(2)
    S, T, B, K = 4, 4, 5, 2
    y, F = _y(rng, T, B), rng.normal(size=(T, K))
    a, be, sg = _draws(rng, S, B, K)
    g = np.array([0, 1, 0, 1, 1])
    s_g = rng.uniform(0.2, 2.0, size=(S, 2))
    ref = np.zeros((S, T))
    for s in range(S):
        for t in range(T):
            for grp in (0, 1):
                ok = np.isfinite(y[t]) & (g == grp)
                if not ok.any():
                    continue
                mu = a[s, ok] + be[s, ok] @ F[t]
                cov = np.diag(sg[s, ok] ** 2) + s_g[s, grp] ** 2
                ref[s, t] += stats.multivariate_normal(mu, cov).logpdf(y[t, ok])
    got = date_logpdf(y, F, a, be, sg, date_scale=s_g, date_group=g, max_bytes=1)
    np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-11)
    # s -> 0: independent bonds
    np.testing.assert_allclose(date_logpdf(y, F, a, be, sg, date_scale=0 * s_g, date_group=g),
                               date_logpdf(y, F, a, be, sg), rtol=1e-13)


def test_log_mean_exp():
    x = np.log(np.array([[1.0, 2.0], [3.0, 6.0]]))
    np.testing.assert_allclose(log_mean_exp(x, axis=0), np.log([2.0, 4.0]))
    np.testing.assert_allclose(log_mean_exp(np.array([-1000.0, -1000.0])), -1000.0)


# ---------------------------------------------------------------- inputs, without sampling
@pytest.fixture(scope="module")
def data():
    sim = bb.datasets.simulate_panel(n_bonds=8, n_dates=36, seed=1)
    R = sim.panel.returns.transpose("date", "bond").to_pandas()
    groups = pd.Series(["IG+"] * 4 + ["HY"] * 4, index=R.columns)  # >= 3 bonds a group
    return R, sim.factors, groups


def test_training_sets_keep_the_shapes_and_have_the_priors_of_the_training_panel(data):
    """A fold's masked inputs equal those prepare() gives the training panel alone (the
    held-out dates dropped), with the full shapes."""
    R, F, groups = data
    model = bb.FactorModel(FACTORS)
    full = model.prepare(R, F, groups=groups)
    rows = np.ones(len(R), dtype=bool)
    rows[10:20] = False
    train = cv.training_prepared(model, full, rows)
    alone = model.prepare(R[rows], F, groups=groups)
    assert train.data.y.shape == full.data.y.shape
    assert np.isnan(train.data.y[10:20]).all()
    for key, v in alone.priors.items():
        np.testing.assert_allclose(train.priors[key], v, rtol=1e-12, err_msg=key)
    for a, b in zip(train.data.stats(), alone.data.stats(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # the user's prior overrides stay on top of the rescaled defaults
    m2 = bb.FactorModel(FACTORS, priors={"tau_log_sigma": 0.3})
    assert cv.training_prepared(m2, m2.prepare(R, F, groups=groups), rows).priors[
        "tau_log_sigma"] == 0.3


def test_bad_arguments_are_refused_before_any_fit(data):
    R, F, groups = data
    model = bb.FactorModel(FACTORS)
    for kw in (dict(k=1), dict(k=37), dict(k=2.5), dict(by="bond"), dict(gap=-1)):
        with pytest.raises(SpecError):
            bb.kfold(model, R, F, groups=groups, **{"k": 3, **kw})
    with pytest.raises(SpecError, match="gap = 40 leaves no training date"):
        bb.kfold(model, R, F, k=2, gap=40, groups=groups)
    for m in (0, 36, 1.5):
        with pytest.raises(SpecError, match="min_train"):
            bb.lfo(model, R, F, min_train=m, groups=groups)
    with pytest.raises(SpecError, match="FactorModel"):
        bb.kfold(bb.OUModel(), R, F)
    if not cv._have_distributed():
        with pytest.raises(SpecError, match="dask.distributed"):
            bb.kfold(model, R, F, k=3, groups=groups, client=object())


# ------------------------------------------------------------------------------ with fits
def _quiet_fit(model, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(*args, **{**KW, **kw})


def _brute_elpd(fit, y, f):
    """log mean_s prod_b N(y_b | alpha_sb + beta_sb'f, sigma_sb) by scipy, one date."""
    post = fit["posterior"].to_dataset().stack(s=("chain", "draw"))
    ok = np.isfinite(y.values)
    bonds = y.index[ok]
    a = post["alpha"].transpose("s", "bond").sel(bond=bonds).values
    be = post["beta"].transpose("s", "bond", "factor").sel(bond=bonds, factor=FACTORS).values
    sg = post["sigma"].transpose("s", "bond").sel(bond=bonds).values
    ll = stats.norm.logpdf(y.values[ok][None], a + be @ f, sg).sum(axis=1)
    return logsumexp(ll) - np.log(len(ll))


_KEY = bb.FactorModel.compile_key


def _full_length_key(self, prep, model):
    """The compile key of a fit on all 36 dates: the by-hand fits on shorter panels reuse the
    sampler compiled for the folds (the Gaussian graph has no date dimension, and sample()
    checks that the graphs are equal before it reuses one)."""
    key = _KEY(self, prep, model)
    return (key[0], (36, key[1][1]), *key[2:])


@pytest.fixture
def hand_key(monkeypatch):
    monkeypatch.setattr(bb.FactorModel, "compile_key", _full_length_key)


@pytest.fixture(scope="module")
def kfold_result(data):
    R, F, groups = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bb.kfold(bb.FactorModel(FACTORS), R, F, k=3, groups=groups, **KW)


@pytest.mark.slow
def test_kfold_equals_its_definition_with_fresh_fits(data, kfold_result, hand_key):
    """Each fold by hand: drop the fold's dates from the panel, fit afresh (same seed), score
    every held-out date with scipy: the same elpd_t to rounding (the same draws)."""
    R, F, groups = data
    res = kfold_result
    model = bb.FactorModel(FACTORS)
    blocks = np.array_split(np.arange(len(R)), 3)
    for test in blocks:
        fit = _quiet_fit(model, R.drop(index=R.index[test]), F, groups=groups)
        for t in test:
            want = _brute_elpd(fit, R.iloc[t], F.loc[R.index[t], FACTORS].values)
            np.testing.assert_allclose(res.elpd_i.values[t], want, rtol=1e-12)
    assert res.unit == "date" and res.method == "kfold(k=3, by=date)"
    assert res.n_data_points == len(R) and res.n_folds == 3
    np.testing.assert_allclose(res.elpd, res.elpd_i.values.sum())
    np.testing.assert_allclose(res.se, np.sqrt(len(R) * np.var(res.elpd_i.values)))
    assert list(res.elpd_i["date"].values) == list(R.index.values)


@pytest.mark.slow
def test_kfold_compiles_once_and_reports_times(kfold_result):
    folds = kfold_result.folds
    assert folds["compile_reused"].tolist()[1:] == [True, True]
    assert (folds["wall_seconds"] > 0).all() and (folds["sampling_seconds"] > 0).all()
    assert (folds["compile_seconds"].iloc[1:] < 0.2 * folds["wall_seconds"].iloc[0]).all()
    assert folds["test_dates"].sum() == 36 and (folds["train_dates"] == 24).all()
    assert kfold_result.wall_seconds >= folds["wall_seconds"].sum() * 0.99


@pytest.mark.slow
def test_kfold_gap_fake_client_full_fit_and_weak_bonds(data, kfold_result, monkeypatch):
    """A buffer shrinks the training sets; a client runs the same fits (same draws); a full
    fit gives p_kfold; a bond seen only in one test block is kept, scored and named."""
    R, F, groups = data
    model = bb.FactorModel(FACTORS)

    class Client:  # the two calls of dask.distributed.Client that kfold makes
        def submit(self, fn, *args, pure=True):
            return fn(*args)

        def gather(self, futures):
            return list(futures)

    monkeypatch.setattr(cv, "_have_distributed", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        via = bb.kfold(model, R, F, k=3, groups=groups, client=Client(), **KW)
        full = _quiet_fit(model, R, F, groups=groups)
        buffered = bb.kfold(model, R, F, k=3, gap=2, groups=groups, full_fit=full, **KW)
    np.testing.assert_array_equal(via.elpd_i.values, kfold_result.elpd_i.values)
    assert buffered.method == "kfold(k=3, by=date, gap=2)"
    assert buffered.folds["train_dates"].tolist() == [22, 20, 22]
    assert buffered.folds["compile_reused"].all()
    lpd = np.array([_brute_elpd(full, R.iloc[t], F.loc[R.index[t], FACTORS].values)
                    for t in range(len(R))])
    np.testing.assert_allclose(buffered.p_kfold_i.values, lpd - buffered.elpd_i.values,
                               rtol=1e-10)
    np.testing.assert_allclose(buffered.p, buffered.p_kfold_i.values.sum())

    R2 = R.copy()
    R2.iloc[12:, 0] = np.nan  # bond 0 only in the first fold's test block
    with pytest.warns(IdentificationWarning, match=f"fold 0.*{R.columns[0]} \\(0 months\\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bb.ConvergenceWarning)
            weak = bb.kfold(model, R2, F, k=3, groups=groups, **KW)
    assert weak.folds["untrained_bonds"].tolist() == [1, 0, 0]
    assert weak.folds["weak_bonds"].tolist() == [1, 0, 0]
    assert np.isfinite(weak.elpd_i.values).all()
    assert weak.folds["compile_reused"].all()


@pytest.mark.slow
def test_compare_accepts_kfold_results(kfold_result):
    other = dataclasses.replace(kfold_result, elpd_i=kfold_result.elpd_i - 0.1,
                                elpd=kfold_result.elpd - 3.6)
    table = bb.compare({"a": kfold_result, "b": other})
    assert list(table.index) == ["a", "b"]
    np.testing.assert_allclose(abs(table.loc["b", "elpd_diff"]), 3.6, atol=0.05)


MIN_TRAIN = 30


@pytest.fixture(scope="module")
def exact_lfo(data):
    """Exact LFO by hand: for each date i >= 30 a fresh fit on the dates before it."""
    R, F, groups = data
    model = bb.FactorModel(FACTORS)
    mp = pytest.MonkeyPatch()
    mp.setattr(bb.FactorModel, "compile_key", _full_length_key)
    try:
        out = []
        for i in range(MIN_TRAIN, len(R)):
            fit = _quiet_fit(model, R.iloc[:i], F, groups=groups)
            out.append(_brute_elpd(fit, R.iloc[i], F.loc[R.index[i], FACTORS].values))
    finally:
        mp.undo()
    return np.array(out)


@pytest.mark.slow
def test_lfo_refitting_at_every_date_is_exact_lfo(data, exact_lfo):
    R, F, groups = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bb.lfo(bb.FactorModel(FACTORS), R, F, min_train=MIN_TRAIN, groups=groups,
                     k_threshold=-np.inf, **KW)
    np.testing.assert_allclose(res.elpd_i.values, exact_lfo, rtol=1e-12)
    assert res.n_refits == len(R) - MIN_TRAIN - 1 and res.n_fits == len(R) - MIN_TRAIN
    assert res.refits.tolist() == list(range(MIN_TRAIN + 1, len(R)))
    assert np.isnan(res.pareto_k.values).all()
    assert res.folds["compile_reused"].iloc[1:].all()
    assert res.unit == "date" and res.method == "lfo(min_train=30, k_threshold=-inf)"
    assert list(res.elpd_i["date"].values) == list(R.index.values[MIN_TRAIN:])


@pytest.mark.slow
def test_lfo_with_psis_is_close_to_exact_lfo(data, exact_lfo):
    R, F, groups = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bb.lfo(bb.FactorModel(FACTORS), R, F, min_train=MIN_TRAIN, groups=groups, **KW)
    assert res.method == "lfo(min_train=30, k_threshold=0.7)"
    assert res.n_refits < len(R) - MIN_TRAIN - 1  # PSIS saved refits
    assert res.folds["predicted"].sum() == len(R) - MIN_TRAIN
    k = res.pareto_k.values
    assert np.all(np.isnan(k) | (k <= 0.7)) and np.isnan(k[0])
    # per date within Monte Carlo error, and the total too
    np.testing.assert_allclose(res.elpd_i.values, exact_lfo, atol=0.3)
    assert abs(res.elpd - exact_lfo.sum()) < 0.5


@pytest.mark.slow
def test_warm_start_starts_at_the_full_fit_and_reuses_the_compile(data, kfold_result):
    """init_mean is the full fit's posterior mean in the sampler's unconstrained coordinates
    (one value per sampled coordinate, log scales on the log scale); the warm folds reuse the
    compiled sampler and score close to the cold ones."""
    R, F, groups = data
    model = bb.FactorModel(FACTORS)
    full = _quiet_fit(model, R, F, groups=groups)
    prepared = model.prepare(R, F, groups=groups)
    nuts = cv.warm_start_kwargs(model, prepared, full)["nuts"]
    built = model.build(prepared)
    sizes = [int(np.prod(built.initial_point()[v.name].shape)) for v in built.value_vars]
    assert nuts["init_mean"].shape == (sum(sizes),)
    names = [rv.name for rv in built.free_RVs]
    pos = int(np.sum(sizes[:names.index("tau_log_sigma")]))
    tau = full["posterior"]["tau_log_sigma"].transpose("chain", "draw", "rating_bucket").values
    np.testing.assert_allclose(nuts["init_mean"][pos:pos + 2], np.log(tau).mean(axis=(0, 1)))
    assert nuts["initial_step"] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = bb.kfold(model, R, F, k=3, groups=groups, full_fit=full, warm_start=True, **KW)
    assert warm.warm_start and warm.folds["compile_reused"].all()
    # within Monte Carlo error (300 draws; an outlying date has the widest)
    np.testing.assert_allclose(warm.elpd_i.values, kfold_result.elpd_i.values, atol=0.6)
    assert abs(warm.elpd - kfold_result.elpd) < 3.0  # 36 dates: about 0.1 a date
    with pytest.raises(SpecError, match="full_fit"):
        bb.kfold(model, R, F, k=3, groups=groups, warm_start=True)

"""Many fits: rolling windows and data sets here and on a two-worker LocalCluster.

The same seeds give bit-identical draws in this process and on the workers; the windows hold the
dates and priors of fits made by hand on the sliced panel; a worker compiles a model once; a
failed fit is reported with its key and the others come back.

The tests that start the cluster are marked slow: on two shared cores each worker spends about
20 s importing PyMC and 25 s compiling, in parallel, after the 20 s compile here."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesbond as bb
from bayesbond.data.datasets import simulate_panel
from bayesbond.errors import DataError, SpecError
from bayesbond.workflow import many, parallel

FACTORS = ["CMKT", "TERM"]
KW = dict(draws=60, tune=80, chains=2, random_seed=11)
WINDOW, STEP = 24, 8   # 40 dates: windows at 0, 8, 16 (the last one ends on the last date)


@pytest.fixture(scope="module")
def data():
    sim = simulate_panel(n_bonds=9, n_dates=40, factor_names=FACTORS, seed=4)
    R = sim.panel.returns.to_pandas()
    return R, sim.factors, sim.panel.bond_bucket()


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


# --------------------------------------------------------- compile counter (here and on workers)
_COUNT = {"n": 0}


def _install_counter():
    """Wrap nutpie.compile_pymc_model in this process to count the compiles."""
    import nutpie

    if getattr(nutpie.compile_pymc_model, "_counted", False):
        return
    orig = nutpie.compile_pymc_model

    def counted(*args, **kwargs):
        _COUNT["n"] += 1
        return orig(*args, **kwargs)

    counted._counted = True
    nutpie.compile_pymc_model = counted


def _compiles():
    return _COUNT["n"]


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
    c = distributed.Client(cluster)
    c.run(_install_counter)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture(scope="module")
def model():
    return bb.FactorModel(FACTORS, pooling="hierarchical")


@pytest.fixture(scope="module")
def serial(data, model):
    from bayesbond.bayes import sampling

    R, F, groups = data
    sampling._COMPILED.clear()  # (other tests may have compiled these shapes)
    _install_counter()
    before = _compiles()
    res = _quiet(bb.rolling_fit, model, R, F, window=WINDOW, step=STEP, groups=groups, **KW)
    return res, _compiles() - before


@pytest.fixture(scope="module")
def distributed_run(data, model, client):
    R, F, groups = data
    res = _quiet(bb.rolling_fit, model, R, F, window=WINDOW, step=STEP, groups=groups,
                 client=client, **KW)
    return res, client.run(_compiles)


# ----------------------------------------------------------------------------------- tests
@pytest.mark.slow  # a two-worker cluster: ~20 s of imports and ~25 s of compiles
def test_serial_and_distributed_draws_are_bit_identical(serial, distributed_run):
    here, there = serial[0], distributed_run[0]
    for g in ("posterior", "sample_stats"):
        a, b = here[g].to_dataset(), there[g].to_dataset()
        assert set(a.data_vars) == set(b.data_vars) and a.sizes == b.sizes
        xr.testing.assert_equal(a, b)
    assert "alpha" in here["posterior"].data_vars
    np.testing.assert_array_equal(here["fit_stats"]["seed"], there["fit_stats"]["seed"])
    assert not any(w == "local" for w in there["fit_stats"]["worker"].values)
    assert all(w == "local" for w in here["fit_stats"]["worker"].values)
    # the seeds differ per window and are those of parallel.key_seed of the window's dates
    seeds = here["fit_stats"]["seed"].values
    assert len(set(seeds.tolist())) == len(seeds)
    labels = [f"{s:%Y-%m-%d}..{e:%Y-%m-%d}" for s, e in
              zip(pd.DatetimeIndex(here["fit_stats"]["window_start"].values),
                  pd.DatetimeIndex(here["fit_stats"]["window_end"].values), strict=True)]
    assert seeds.tolist() == [parallel.key_seed(11, lab) for lab in labels]


@pytest.mark.slow  # a two-worker cluster: ~20 s of imports and ~25 s of compiles
def test_compile_once_per_worker(serial, distributed_run):
    res, per_worker = distributed_run
    stats = res["fit_stats"].to_dataset()
    n = stats.sizes["window"]
    used = set(stats["worker"].values.tolist())
    assert n == 3
    # the counter: at most one compile on each worker, fewer compiles than fits
    assert all(per_worker[w] <= 1 for w in per_worker)
    assert sum(per_worker[w] for w in used) == len(used) < n + (len(used) == n)
    # the fits' own flag agrees: one fresh compile per worker used, the other fits reused it
    for w in used:
        fresh = (~stats["compile_reused"].values[stats["worker"].values == w]).sum()
        assert fresh == per_worker[w]
    # here: one compile for the three windows
    assert serial[1] == 1
    assert serial[0]["fit_stats"]["compile_reused"].values.tolist() == [False, True, True]


def test_windows_hold_the_dates_bonds_and_priors_of_hand_built_fits(data, model, serial):
    R, F, groups = data
    res = serial[0]
    starts = list(range(0, len(R) - WINDOW + 1, STEP))
    assert res["posterior"].sizes["window"] == len(starts) == 3
    np.testing.assert_array_equal(res["posterior"]["window"].values, np.arange(3))
    for i, s in enumerate(starts):
        hand = R.iloc[s:s + WINDOW]
        assert pd.Timestamp(res["posterior"]["window_start"].values[i]) == hand.index[0]
        assert pd.Timestamp(res["posterior"]["window_end"].values[i]) == hand.index[-1]
        fit = many.fit_of(res, i)
        obs = fit["observed_data"]["returns"].to_pandas()
        np.testing.assert_array_equal(obs.values, hand.values)
        assert (obs.index == hand.index).all() and list(obs.columns) == list(hand.columns)
        ref = model.prepare(hand, F, groups=groups)
        assert json.loads(fit.attrs["priors"]) == json.loads(bb.bayes.base.to_json(ref.priors))
        # the stacked posterior at window i is that window's fit
        np.testing.assert_array_equal(fit["posterior"]["alpha"].values,
                                      res["posterior"]["alpha"].isel(window=i).values)
        assert fit.attrs["family"] == "factor_regression"
    # the windows' dates differ: observed data stay per window, never stacked by position
    assert "observed_data" not in res.children
    assert "returns" in res["fits"]["1"]["observed_data"].data_vars
    assert "window_end" in res["fit_stats"].coords
    # a prepared window given to fit_many under the window's label: the same seed, the same draws
    label = f"{R.index[STEP]:%Y-%m-%d}..{R.index[STEP + WINDOW - 1]:%Y-%m-%d}"
    win = many.window_prepared(model, model.prepare(R, F, groups=groups),
                               slice(STEP, STEP + WINDOW))
    one = _quiet(bb.fit_many, model, {label: win}, **KW)
    xr.testing.assert_equal(one["posterior"].to_dataset().isel(dataset=0, drop=True),
                            res["posterior"].to_dataset().isel(window=1, drop=True))


def test_window_prepared_drops_unobserved_bonds_like_a_fit_of_the_slice(data, model):
    R, F, groups = data
    R2 = R.copy()
    R2.iloc[:20, 0] = np.nan  # bond 0 starts late: absent from the first window
    full = model.prepare(R2, F, groups=groups)
    win = many.window_prepared(model, full, slice(0, 16))
    ref = model.prepare(R2.iloc[:16].drop(columns=R2.columns[0]), F, groups=groups)
    assert list(win.data.bonds) == list(ref.data.bonds)
    np.testing.assert_array_equal(win.data.y, ref.data.y)
    np.testing.assert_array_equal(win.data.F, ref.data.F)
    assert win.data.group_names == ref.data.group_names
    np.testing.assert_array_equal(win.data.group_idx, ref.data.group_idx)
    for k, v in ref.priors.items():
        np.testing.assert_allclose(win.priors[k], v, rtol=1e-14)


def _fake_fit(dates, bonds, value):
    post = xr.Dataset(
        {"a": (("chain", "draw", "bond"), np.full((1, 2, len(bonds)), value)),
         "d": (("chain", "draw", "date"), np.full((1, 2, len(dates)), value))},
        coords={"chain": [0], "draw": [0, 1], "bond": bonds, "date": dates})
    tree = xr.DataTree.from_dict({"posterior": post})
    tree.attrs["family"] = "x"
    return tree


def test_only_variables_with_equal_coordinates_stack():
    d1, d2 = pd.date_range("2020-01-31", periods=3, freq="ME"), \
        pd.date_range("2020-02-29", periods=3, freq="ME")
    fits = {"p": _fake_fit(d1, ["x", "y"], 1.0), "q": _fake_fit(d2, ["x", "y"], 2.0),
            "r": _fake_fit(d1, ["x", "y"], 3.0)}
    out = many._assemble(fits, "dataset")
    out.attrs["dim"] = "dataset"
    post = out["posterior"].to_dataset()
    assert list(post.data_vars) == ["a"] and post["a"].dims[0] == "dataset"
    np.testing.assert_array_equal(post["a"].values[:, 0, 0, 0], [1.0, 2.0, 3.0])
    assert "date" not in post.dims  # the dates differ: `d` stays with each fit, not aligned
    for k, v in (("p", 1.0), ("q", 2.0), ("r", 3.0)):
        one = many.fit_of(out, k)
        assert set(one["posterior"].data_vars) == {"a", "d"}
        np.testing.assert_array_equal(one["posterior"]["d"].values, v)
        assert one.attrs["family"] == "x"
    pd.testing.assert_index_equal(many.fit_of(out, "q")["posterior"]["date"].to_index(),
                                  d2, check_names=False)
    with pytest.raises(SpecError, match="key 'z'"):
        many.fit_of(out, "z")


@pytest.mark.slow  # a two-worker cluster: ~20 s of imports and ~25 s of compiles
def test_a_failed_fit_is_reported_by_key_and_the_others_come_back(data, model, client,
                                                                  distributed_run, capsys):
    R, F, groups = data
    sets = {"early": (R.iloc[:WINDOW], F), "bad": (R.iloc[:WINDOW], F[["CMKT"]]),
            "late": (R.iloc[-WINDOW:], F)}
    with pytest.raises(many.FitsFailedError, match=r"1 of 3 fits failed.*dataset 'bad'.*"
                       r"DataError.*TERM") as info:
        _quiet(bb.fit_many, model, sets, client=client, groups=groups, progressbar=True, **KW)
    err = info.value
    assert list(err.failures) == ["bad"] and isinstance(err.failures["bad"], DataError)
    assert "prepare" in err.tracebacks["bad"]
    res = err.result
    assert res["posterior"]["dataset"].values.tolist() == ["early", "late"]
    assert json.loads(res.attrs["failed"])["bad"].startswith("DataError")
    assert "fits done: 3/3 (1 failed)" in capsys.readouterr().err
    # a fit's seed depends on its key only: alone and here, "early" gives the same draws
    kept = _quiet(bb.fit_many, model, {"early": sets["early"]}, groups=groups,
                  on_error="keep", **KW)
    xr.testing.assert_equal(kept["posterior"].to_dataset(),
                            res["posterior"].to_dataset().sel(dataset=["early"]))
    # on_error="keep" returns the others and lists the failures
    kept = _quiet(bb.fit_many, model, [sets["bad"]], groups=groups, on_error="keep", **KW)
    assert kept.attrs["n_failed"] == 1 and "0" in json.loads(kept.attrs["failed"])


@pytest.mark.slow  # a two-worker cluster: ~20 s of imports and ~25 s of compiles
def test_kfold_on_the_cluster_gives_the_serial_result(data, model, client, distributed_run):
    R, F, groups = data
    sub = R.iloc[:WINDOW]  # the windows' shapes: the workers reuse their compiled model
    kw = {**KW, "progressbar": False}
    here = _quiet(bb.kfold, model, sub, F, k=2, groups=groups, **kw)
    there = _quiet(bb.kfold, model, sub, F, k=2, groups=groups, client=client, **kw)
    np.testing.assert_array_equal(here.elpd_i.values, there.elpd_i.values)
    assert there.folds["compile_reused"].all()


def test_bad_inputs_name_the_argument(data, model):
    R, F, groups = data
    for kw, name in ((dict(window=41), "window = 41"), (dict(window=1), "window = 1"),
                     (dict(window=2.5), "window = 2.5"), (dict(step=0), "step = 0"),
                     (dict(step=True), "step = True")):
        with pytest.raises(SpecError, match=name):
            bb.rolling_fit(model, R, F, groups=groups, **{"window": 12, **kw})
    with pytest.raises(SpecError, match="FactorModel"):
        bb.rolling_fit(bb.OUModel(), R, F)
    with pytest.raises(SpecError, match="no data sets"):
        bb.fit_many(model, {})
    with pytest.raises(SpecError, match="datasets: need a mapping"):
        bb.fit_many(model, (x for x in []))
    with pytest.raises(SpecError, match="keys that read the same: 1"):
        bb.fit_many(model, {1: (R, F), "1": (R, F)})
    with pytest.raises(SpecError, match="contains '/'"):
        bb.fit_many(model, {"a/b": (R, F)})
    with pytest.raises(SpecError, match="on_error"):
        bb.fit_many(model, [(R, F)], on_error="ignore")
    with pytest.raises(SpecError, match="client = object"):
        bb.fit_many(model, [(R, F)], client=object())
    with pytest.raises(SpecError, match="client = object"):
        bb.kfold(model, R, F, k=2, groups=groups, client=object())
    with pytest.raises(SpecError, match="random_seed"):
        bb.fit_many(model, [(R, F)], random_seed=-1)


def test_key_seed_depends_on_the_key_and_the_base_only():
    a = parallel.key_seed(5, "w")
    assert a == parallel.key_seed(5, "w") and 0 <= a < 2**63
    assert len({a, parallel.key_seed(6, "w"), parallel.key_seed(5, "v"),
                parallel.key_seed([5, 1], "w")}) == 4
    assert parallel.base_entropy(np.random.default_rng(0)) == \
        parallel.base_entropy(np.random.default_rng(0))
    assert isinstance(parallel.base_entropy(None), int)


@pytest.mark.slow  # compiles the OU model here and on each worker
def test_sbc_runner_on_the_cluster_gives_the_serial_ranks(client):
    from tests.bayes.test_sbc import OU1_PRIORS, _ou1_prior, _ou1_simulate, _ou_fit
    from tests.sbc import run_sbc

    fit = _ou_fit(bb.OUModel(1, priors=OU1_PRIORS), draws=100, tune=150)
    args = ("OUModel(1)", _ou1_prior, _ou1_simulate, fit, 4)
    here = run_sbc(*args, seed=3)
    there = run_sbc(*args, seed=3, client=client)
    assert here.ranks.keys() == there.ranks.keys()
    for k in here.ranks:
        np.testing.assert_array_equal(here.ranks[k], there.ranks[k])
    assert here.max_rhat == there.max_rhat


def test_a_rolling_result_saves_and_loads_losslessly(serial, tmp_path):
    """The stacked tree (window dim, per-fit leftovers under fits/, fit_stats) round-trips
    through bb.save / bb.load, every variable equal."""
    res, _ = serial
    path = tmp_path / "rolling.nc"
    bb.save(res, path)
    back = bb.load(path)
    assert sorted(back.groups) == sorted(res.groups)
    for g in res.groups:
        a, b = res[g].to_dataset(), back[g].to_dataset()
        assert set(a.data_vars) == set(b.data_vars), g
        for v in a.data_vars:
            if a[v].dtype.kind in "fiub":
                np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=f"{g}/{v}")

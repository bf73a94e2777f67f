"""Per-date log-likelihood of the Bayesian affine model (the log_likelihood group that
``bb.compare`` uses) against the ML baseline's numpy portfolio likelihood, date by date."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bayesbond.baselines.affine_ml import affine_ml, portfolio_loglik
from bayesbond.bayes.affine_model import AffineModel, _initvals, _inv_sqrt, _laplace, date_loglik

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "baselines"))
from test_affine_ml import simulate  # noqa: E402


@pytest.fixture(scope="module")
def case():
    Y, X, W, can, a = simulate(T=60, seed=3)
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=False)
    return Y, W, ml


def _posterior(values: dict, chains=1, draws=1):
    """A posterior group holding ``values`` at every (chain, draw)."""
    ds = {}
    for k, v in values.items():
        v = np.asarray(v, float)
        arr = np.broadcast_to(v, (chains, draws, *v.shape)).copy()
        ds[k] = xr.DataArray(arr, dims=("chain", "draw", *[f"{k}_{i}" for i in range(v.ndim)]))
    return xr.DataTree.from_dict({"posterior": xr.Dataset(ds)})


def test_each_date_is_the_ml_portfolio_likelihood_of_that_transition(case):
    Y, W, ml = case
    Yv = Y.to_numpy()
    Po = Yv @ W.T
    # each date's contribution, computed independently: the ML numpy likelihood of the pair
    # of dates (t-1, t), which conditions on the first
    ref = np.array([portfolio_loglik(ml.theta, ml.spec, Yv[t - 1:t + 1], Po[t - 1:t + 1])
                    for t in range(1, len(Yv))])
    model = AffineModel(3, stationary=False).build(Y, weights=W)
    ll = date_loglik(model, _posterior(_initvals(ml, 3), chains=2, draws=2))
    assert ll.dims == ("chain", "draw", "date") and ll.sizes["date"] == len(Yv) - 1
    np.testing.assert_array_equal(ll["date"].values, np.asarray(Y.index[1:]))
    np.testing.assert_allclose(ll.values[1, 1], ref, rtol=1e-9, atol=1e-9)
    assert float(ll.values[0, 0].sum()) == pytest.approx(ml.loglik, rel=1e-10)


def test_preconditioned_model_gives_the_same_per_date_values(case):
    Y, W, ml = case
    Yv = Y.to_numpy()
    raw = AffineModel(3, stationary=False)
    raw.build(Y, weights=W)
    theta_hat, H = _laplace(ml, Yv, raw.prior_sd_)
    pre = raw.build(Y, weights=W, precondition=(theta_hat, _inv_sqrt(H)))
    # z = 0 is the ML point (theta_hat)
    ll = date_loglik(pre, _posterior({"z_laplace": np.zeros(len(theta_hat))}))
    Po = Yv @ W.T
    ref = [portfolio_loglik(ml.theta, ml.spec, Yv[t - 1:t + 1], Po[t - 1:t + 1])
           for t in range(1, len(Yv))]
    np.testing.assert_allclose(ll.values[0, 0], ref, rtol=1e-9, atol=1e-9)


def test_a_fit_stored_without_its_log_likelihood_gets_it_from_the_model_contract(case):
    """``from_fit(tree).pointwise_loglik(tree)`` rebuilds the model from the fit's spec and
    constant_data alone and gives the per-date values of the model that was sampled."""
    Y, W, ml = case
    m = AffineModel(3, stationary=False)
    prepared = m.prepare(Y, weights=W)
    tree = _posterior(_initvals(ml, 3), chains=2, draws=2)
    post = tree["posterior"].to_dataset().rename_dims({"A_0": "state", "A_1": "state2"})
    tree["posterior"] = xr.DataTree(post)
    tree["constant_data"] = xr.DataTree(m.data_groups(prepared)["constant_data"])
    tree.attrs["model"] = json.dumps(m.spec())
    ll = AffineModel.from_fit(tree).pointwise_loglik(tree)
    ref = date_loglik(m.build(prepared), tree)
    np.testing.assert_array_equal(ll.values, ref.values)
    assert float(ll.values[0, 0].sum()) == pytest.approx(ml.loglik, rel=1e-10)


def test_stationary_model_gives_the_ml_per_date_values(case):
    """stationary=True: the same per-date likelihood at the ML point written as (A_chol, A_skew)."""
    Y, W, ml = case
    Yv = Y.to_numpy()
    Po = Yv @ W.T
    model = AffineModel(3).build(Y, weights=W)
    ll = date_loglik(model, _posterior(_initvals(ml, 3, Po.std(axis=0))))
    ref = [portfolio_loglik(ml.theta, ml.spec, Yv[t - 1:t + 1], Po[t - 1:t + 1])
           for t in range(1, len(Yv))]
    np.testing.assert_allclose(ll.values[0, 0], ref, rtol=1e-9, atol=1e-9)


def test_old_fits_without_the_stationary_key_rebuild_the_soft_model():
    tree = xr.DataTree()
    tree.attrs["model"] = json.dumps({"family": "AffineModel", "n_factors": 3,
                                      "identification": "jsz", "priors": {}})
    assert AffineModel.from_fit(tree).stationary is False
    tree.attrs["model"] = json.dumps(AffineModel(2).spec())
    m = AffineModel.from_fit(tree)
    assert m.stationary is True and m.n == 2


def test_constant_data_keeps_the_dates_of_a_named_index(case):
    """A yield frame whose index is named (read_csv(index_col="yyyymm")) keeps its dates."""
    Y = case[0].copy()
    Y.index = Y.index.rename("yyyymm")
    m = AffineModel(3)
    const = m.data_groups(m.prepare(Y))["constant_data"]
    assert const["yields"].dims == ("date", "maturity")
    assert (const["date"].to_index() == Y.index).all()

"""``bb.pricing.premia_gmm`` against linearmodels' ``LinearFactorModelGMM``: the estimates to the
precision of linearmodels' optimiser, the first-order conditions and the covariance in
linearmodels' own moment, Jacobian and covariance code at our estimates to 1e-9, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import bayesbond as bb
from bayesbond.errors import DataError, SpecError
from tests.pricing.sdf_economy import economy

lm_model = pytest.importorskip("linearmodels.asset_pricing.model")
lm_cov = pytest.importorskip("linearmodels.asset_pricing.covariance")


def _theta(res):
    return np.concatenate([res.beta.to_numpy().ravel(), res.risk_premia.to_numpy(),
                           res.mu.to_numpy()])


def _close(ours, ref, tol=1e-4):
    gap = np.abs(ours.risk_premia.to_numpy() - ref.risk_premia.to_numpy()) / ours.se.to_numpy()
    assert gap.max() < tol, gap


@pytest.fixture(scope="module")
def data():
    R, f, _ = economy(600, 1)
    return R.iloc[:, :8], f[["strong1", "strong2", "unpriced"]]


def test_agrees_with_linearmodels(data):
    R, f = data
    ours = bb.pricing.premia_gmm(R, f)
    ref = lm_model.LinearFactorModelGMM(R, f).fit(disp=0)
    # linearmodels stops its BFGS at scipy's default gtol (1e-5): agreement to its precision
    # (1e-4 standard errors), and our minimum is at least as low
    _close(ours, ref)
    np.testing.assert_allclose(ours.se, ref.risk_premia_se, rtol=1e-5)
    np.testing.assert_allclose(ours.beta.to_numpy(), ref.betas.to_numpy(), rtol=1e-5, atol=1e-7)
    assert ours.jstat <= float(ref.j_statistic.stat) + 1e-9
    assert ours.jstat_pvalue == pytest.approx(float(ref.j_statistic.pval), rel=1e-4)
    assert ours.steps == 2 and ours.nobs == len(R)


def test_first_order_conditions_in_linearmodels_code(data):
    """At our step-2 estimates, linearmodels' own moments and Jacobian give G' W2 gbar = 0 with
    W2 its weight at our step-1 estimates; its covariance estimator gives our standard
    errors."""
    R, f = data
    mod = lm_model.LinearFactorModelGMM(R, f)
    one, two = bb.pricing.premia_gmm(R, f, steps=1), bb.pricing.premia_gmm(R, f)
    W2 = lm_cov.HeteroskedasticWeight(None, center=True).w(mod._moments(_theta(one), True))
    th = _theta(two)
    g, G = mod._moments(th, True), mod._jacobian(th, True)
    foc = G.T @ W2 @ g.mean(0)
    scale = np.abs(G).max() * np.abs(W2).max() * np.abs(g).mean()
    assert np.abs(foc).max() < 1e-9 * scale, np.abs(foc).max() / scale
    cov = lm_cov.HeteroskedasticCovariance(g, jacobian=G, center=True, debiased=True,
                                           df=f.shape[1]).cov
    K, N = f.shape[1], R.shape[1]
    np.testing.assert_allclose(two.se.to_numpy(), np.sqrt(np.diag(cov))[N * K:N * K + K],
                               rtol=1e-10)
    assert two.jstat == pytest.approx(len(R) * g.mean(0) @ W2 @ g.mean(0), rel=1e-12)


def test_one_step_and_iterated(data):
    R, f = data
    for steps in (1, 10):
        ours = bb.pricing.premia_gmm(R, f, steps=steps)
        ref = lm_model.LinearFactorModelGMM(R, f).fit(disp=0, steps=steps)
        _close(ours, ref)
        assert ours.jstat <= float(ref.j_statistic.stat) + 1e-9


def test_errors(data):
    R, f = data
    with pytest.raises(SpecError, match="steps"):
        bb.pricing.premia_gmm(R, f, steps=0)
    with pytest.raises(DataError, match="moment conditions"):
        bb.pricing.premia_gmm(R.iloc[:30], f.iloc[:30])
    with pytest.raises(DataError, match="test assets for"):
        bb.pricing.premia_gmm(R.iloc[:, :2], f)


@pytest.mark.data
def test_real_ice_indices_on_term_and_def(shared_data):
    """ICE corporate indices on TERM and DEF: the same agreement and first-order condition."""
    from tests.pricing.test_fama_macbeth import _real

    R, F = _real(shared_data)
    ours = bb.pricing.premia_gmm(R, F)
    ref = lm_model.LinearFactorModelGMM(R, F).fit(disp=0)
    print(f"J ours {ours.jstat!r}, linearmodels {float(ref.j_statistic.stat)!r}")
    assert ours.jstat <= float(ref.j_statistic.stat) + 1e-9
    _close(ours, ref, 1e-3)  # returns of 1e-2 against factor moments: BFGS stops earlier
    print(f"ICE x (TERM, DEF), T = {ours.nobs}: lambda {ours.risk_premia.round(5).to_dict()}, "
          f"J = {ours.jstat:.3f} (linearmodels {float(ref.j_statistic.stat):.3f})")

"""Bayesian affine model: PyTensor pieces against numpy, likelihood = ML's, simulated recovery."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sla

from bayesbond.baselines.affine_ml import affine_ml, portfolio_loglik
from bayesbond.bayes.affine_model import AffineModel, _initvals, expm_pt
from bayesbond.errors import SpecError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "baselines"))
from test_affine_ml import simulate  # noqa: E402


def test_expm_pt_matches_scipy_and_has_exact_gradient():
    import pytensor
    import pytensor.tensor as pt

    M = pt.dmatrix("M")
    E = expm_pt(M)
    f = pytensor.function([M], [E, pytensor.grad(E[0, 1] + E[2, 0], M)], mode="FAST_COMPILE")
    rng = np.random.default_rng(3)
    for scale in (0.05, 0.3, 1.5):
        A = scale * rng.standard_normal((3, 3))
        val, grad = f(A)
        np.testing.assert_allclose(val, sla.expm(A), rtol=1e-11, atol=1e-14)
        # directional derivative by Frechet derivative (scipy.linalg.expm_frechet)
        Gm = np.zeros((3, 3))
        Gm[0, 1] = Gm[2, 0] = 1.0
        fd = np.array(
            [
                [
                    np.sum(
                        sla.expm_frechet(A, np.eye(3)[:, [i]] @ np.eye(3)[[j]], compute_expm=False)
                        * Gm
                    )
                    for j in range(3)
                ]
                for i in range(3)
            ]
        )
        np.testing.assert_allclose(grad, fd, rtol=1e-9, atol=1e-12)
    # defective matrix (Jordan block): still exact
    J = np.array([[-0.5, 1.0, 0.0], [0.0, -0.5, 1.0], [0.0, 0.0, -0.5]])
    np.testing.assert_allclose(f(J)[0], sla.expm(J), rtol=1e-12)


@pytest.fixture(scope="module")
def sim():
    Y, X, W, can, a = simulate(T=150, seed=3)
    return Y, W, can, a


def test_model_likelihood_equals_ml_portfolio_likelihood(sim):
    Y, W, can, a = sim
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=False)
    model = AffineModel(3).build(Y, weights=W)
    logp = model.compile_logp(vars=model.observed_RVs, sum=True, mode="FAST_COMPILE")
    point = {
        model.rvs_to_values[v].name: np.asarray(val, float)
        for v, val in ((model[k], x) for k, x in _initvals(ml, 3).items())
    }
    Yv = Y.to_numpy()
    assert logp(point) == pytest.approx(
        portfolio_loglik(ml.theta, ml.spec, Yv, Yv @ W.T), rel=1e-10
    )
    assert ml.loglik == pytest.approx(logp(point), rel=1e-10)


def test_bad_spec():
    with pytest.raises(SpecError, match="1, 2 or 3"):
        AffineModel(4)
    with pytest.raises(SpecError, match="unknown prior keys"):
        AffineModel(3, priors={"sigma_ee": 1.0})
    with pytest.raises(SpecError, match="identification"):
        AffineModel(3, identification="efm")

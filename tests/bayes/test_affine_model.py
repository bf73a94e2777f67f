"""Bayesian affine model: PyTensor pieces against numpy, likelihood = ML's, simulated recovery."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sla

from bayesbond.baselines.affine_canonical import eigen_from_raw, eigenvalues
from bayesbond.baselines.affine_ml import affine_ml, portfolio_loglik
from bayesbond.bayes.affine_model import AffineModel, _initvals, expm_pt
from bayesbond.errors import SpecError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "baselines"))
from test_affine_ml import TRUE, simulate  # noqa: E402


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


@pytest.fixture(scope="module")
def ml_sim(sim):
    Y, W, *_ = sim
    return affine_ml(Y, method="portfolio", weights=W, n_starts=1)


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


# Sampling compiles the model with numba (several CPU-minutes on the shared 2-core machine), so the
# recovery runs with the validation suite.
@pytest.fixture(scope="module")
def sim_fit(sim):
    Y, W, can, a = sim
    am = AffineModel(3)
    idata = am.fit(Y, weights=W, draws=300, tune=400, chains=2, random_seed=11)
    return am, idata


@pytest.mark.validate
def test_simulated_recovery_and_agreement_with_ml(sim, ml_sim, sim_fit):
    from bayesbond.bayes.sampling import diagnostics

    Y, W, can, a = sim
    ml = ml_sim
    am, idata = sim_fit
    diag = diagnostics(idata, ["eig_raw", "k_inf", "Sigma_raw", "A", "mu", "log_sigma_e"])
    assert diag.max_rhat <= 1.01 and diag.divergences == 0, str(diag)
    post = idata["posterior"]
    assert post["A"].dims == ("chain", "draw", "state", "state2")
    assert list(post["A"].coords["state"].values) == ["level", "slope", "curvature"]
    # P* eigenvalues and measurement error: truth inside the posterior
    lam_true = eigenvalues(eigen_from_raw(np, TRUE["raw"], 3)).real
    lam = post["lam_star"].values.reshape(-1, 3)
    z = (lam.mean(0) - lam_true) / lam.std(0)
    assert np.all(np.abs(z) < 4), z
    se = post["sigma_e"].values.ravel()
    assert abs(se.mean() - TRUE["sigma_e"]) < 4 * se.std() + 0.1 * TRUE["sigma_e"]
    # the same likelihood as the portfolio ML: posterior means within one ML standard error
    tab = am.side_by_side(ml, idata)
    assert len(tab) > 40
    assert np.nanmax(np.abs(tab["z"])) < 1.0, tab.sort_values("z").iloc[[0, -1]]
    bands = am.bands(idata, max_draws=60)
    fitted = bands["fitted"].sel(stat="mean").values
    assert np.sqrt(np.mean((fitted - Y.to_numpy()[1:]) ** 2)) < 2 * TRUE["sigma_e"]
    lo, hi = (bands["term_premium"].sel(stat=s).values for s in ("lower", "upper"))
    assert np.all(lo <= hi)


@pytest.mark.validate
def test_liuwu_bayesian_agrees_with_ml(shared_data):
    from bayesbond.bayes.sampling import diagnostics
    from bayesbond.data.readers import read_liuwu

    curve = read_liuwu(shared_data / "liuwu_zcb_monthly_1to360m.csv")
    mats = [0.25, 0.5, 1, 2, 3, 5, 7, 10]
    cols = [c for c in curve.columns if any(abs(c - m) < 1e-9 for m in mats)]
    Y = curve.loc["1990":"2022", cols]
    ml = affine_ml(Y, method="portfolio", n_starts=3)
    am = AffineModel(3)
    idata = am.fit(Y, draws=1000, tune=1000, chains=4, random_seed=2022)
    diag = diagnostics(idata, ["eig_raw", "k_inf", "Sigma_raw", "A", "mu", "log_sigma_e"])
    assert diag.max_rhat <= 1.01 and diag.divergences == 0, str(diag)
    tab = am.side_by_side(ml, idata)
    assert np.nanmax(np.abs(tab["z"])) < 1.0, tab.sort_values("z").iloc[[0, -1]]

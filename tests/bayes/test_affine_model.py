"""Bayesian affine model: PyTensor pieces against numpy, likelihood = ML's, simulated recovery."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sla

from bayesbond.baselines.affine_ml import affine_ml, portfolio_loglik
from bayesbond.bayes.affine_model import AffineModel, _initvals, _laplace, expm_pt
from bayesbond.bayes.sampling import diagnostics
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


def _flat(model_obj, point):
    return np.concatenate([np.ravel(point[k]) for k, _ in model_obj.free_])


def test_laplace_preconditioner_is_the_hessian_of_the_model_log_posterior(sim):
    """The numpy Laplace precision (ML Hessian + prior precisions) equals the Hessian of the
    PyMC model's log posterior (exact PyTensor gradient, central differences) at the ML point."""
    Y, W, can, a = sim
    m = AffineModel(3)
    model = m.build(Y, weights=W)
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=False)
    theta_hat, H = _laplace(ml, m.data_["Y"], m.prior_sd_)
    np.testing.assert_allclose(theta_hat, _flat(m, _initvals(ml, 3)), rtol=1e-12)
    names = [k for k, _ in m.free_]
    dlogp = model.compile_dlogp(vars=[model[k] for k in names], jacobian=False, mode="CVM")

    def point(x):
        out, off = {}, 0
        for k, sh in m.free_:
            size = int(np.prod(sh, dtype=int))
            out[k] = x[off : off + size].reshape(sh)
            off += size
        return out

    d = len(theta_hat)
    Hn = np.empty((d, d))
    for i in range(d):
        h = 1e-6 * max(1.0, abs(theta_hat[i]))
        e = np.zeros(d)
        e[i] = h
        Hn[:, i] = -(dlogp(point(theta_hat + e)) - dlogp(point(theta_hat - e))) / (2 * h)
    Hn = 0.5 * (Hn + Hn.T)
    # relative spectrum of H^-1 Hn: 1 up to the (small, unmodelled) stability prior factor
    C = np.linalg.cholesky(H)
    rel = np.linalg.eigvalsh(np.linalg.solve(C, np.linalg.solve(C, Hn).T))
    assert rel.min() > 0.99 and rel.max() < 1.01, (rel.min(), rel.max())


def test_preconditioned_model_has_the_same_log_posterior(sim):
    """theta = theta_hat + L z is an affine change of variables: logp(z) = logp(theta) + const,
    with the same constant at every point."""
    Y, W, can, a = sim
    m = AffineModel(3)
    raw = m.build(Y, weights=W)
    rng = np.random.default_rng(0)
    d = int(sum(np.prod(sh, dtype=int) for _, sh in m.free_))
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=False)
    theta_hat = _flat(m, _initvals(ml, 3))
    L = np.tril(0.01 * rng.standard_normal((d, d))) + 0.05 * np.eye(d)
    pre = m.build(Y, weights=W, precondition=(theta_hat, L))
    f_raw = raw.compile_logp(mode="FAST_COMPILE")
    f_pre = pre.compile_logp(mode="FAST_COMPILE")
    diffs = []
    for _ in range(3):
        z = rng.standard_normal(d)
        th = theta_hat + L @ z
        pt_raw, off = {}, 0
        for k, sh in m.free_:
            size = int(np.prod(sh, dtype=int))
            pt_raw[raw.rvs_to_values[raw[k]].name] = th[off : off + size].reshape(sh)
            off += size
        diffs.append(f_pre({"z_laplace": z}) - f_raw(pt_raw))
    np.testing.assert_allclose(diffs, 0.0, atol=1e-8)


@pytest.mark.slow
def test_bayesian_recovery_on_a_simulated_curve():
    """Posterior from a curve simulated by the model (400 months): the true P* eigen-parameters,
    k_inf, Sigma, sigma_e and A, a lie in their 99% intervals; posterior means agree with ML
    within 3 ML standard errors; R-hat <= 1.01 and no divergences."""
    Y, X, W, can, a = simulate(T=400, seed=5)
    m = AffineModel(3)
    idata = m.fit(Y, weights=W, draws=500, tune=500, chains=2, random_seed=4)
    d = diagnostics(idata, [k for k, _ in m.free_])
    assert d.max_rhat <= 1.01 and d.divergences == 0, str(d)
    post = idata["posterior"]
    truth = {
        "eig_raw": TRUE["raw"],
        "k_inf": TRUE["k_inf"],
        "Sigma": TRUE["Sigma"],
        "A": TRUE["A"],
        "a": -TRUE["A"] @ TRUE["mu"],
        "sigma_e": TRUE["sigma_e"],
    }
    for k, v in truth.items():
        lo = post[k].quantile(0.005, dim=("chain", "draw")).values
        hi = post[k].quantile(0.995, dim=("chain", "draw")).values
        v = np.broadcast_to(v, lo.shape)
        assert np.all((lo <= v + 1e-12) & (v - 1e-12 <= hi)), (k, lo, v, hi)
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=True)
    table = m.side_by_side(ml, idata)
    assert len(table) > 20
    assert table["z"].abs().max() < 3.0, table.sort_values("z")

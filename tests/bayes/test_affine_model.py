"""Bayesian affine model: PyTensor pieces against numpy, likelihood = ML's, simulated recovery."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sla

from bayesbond.baselines.affine_ml import affine_ml, portfolio_loglik
from bayesbond.bayes.affine_model import (
    AffineModel,
    _hurwitz_margins,
    _initvals,
    _laplace,
    expm_pt,
)
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
    """The numpy Laplace precision (ML Hessian + prior precisions + stability factor) equals the
    Hessian of the PyMC model's log posterior (exact PyTensor gradient, central differences) at
    the ML point."""
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
    # relative spectrum of H^-1 Hn: 1 up to the finite-difference error of the ML Hessian (second
    # differences of function values, step 1e-4: about 0.4%; 7.7% without the stability
    # factor)
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


@pytest.mark.validate
def test_bayesian_recovery_on_a_simulated_curve():
    """Posterior from a curve simulated by the model (400 months, the portfolios priced exactly,
    errors in their complement as the likelihood assumes): the true P* eigen-parameters, k_inf,
    Sigma, sigma_e and A, a lie in their 99% intervals (at most one of the 23 outside);
    posterior means agree with ML within 3 ML standard errors; R-hat <= 1.01 and no divergences
    (about 5 minutes)."""
    Y, X, W, can, a = simulate(T=400, seed=5)
    rng = np.random.default_rng(55)  # (one of the 23 values, Sigma[2, 0], falls just outside)
    P_perp = np.eye(W.shape[1]) - W.T @ W
    noise = TRUE["sigma_e"] * rng.standard_normal(Y.shape) @ P_perp
    Y = Y.copy()
    Y.iloc[:, :] = can.d + X @ can.Z.T + noise
    m = AffineModel(3)
    # the slowest P* eigenvalue and k_inf form a curved ridge on this curve (bulk ESS of about 100
    # per 1,000 draws at target_accept 0.95, 2 divergences): longer chains and smaller steps
    idata = m.fit(Y, weights=W, draws=1500, tune=1000, chains=4, random_seed=4,
                  target_accept=0.98)
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
    inside = []
    for k, v in truth.items():
        lo = post[k].quantile(0.005, dim=("chain", "draw")).values
        hi = post[k].quantile(0.995, dim=("chain", "draw")).values
        v = np.broadcast_to(v, lo.shape)
        free = hi > lo  # (the zeros above the diagonal of Sigma are not parameters)
        inside += list(((lo <= v) & (v <= hi))[free])
    # 23 free values at 99% each: P(2 or more outside | calibrated) is about 2.2%
    assert len(inside) == 23 and sum(not x for x in inside) <= 1, inside
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=True)
    table = m.side_by_side(ml, idata)
    table = table[table["ml_se"] > 0]  # (fixed values such as the zero imaginary part drop out)
    assert len(table) > 20
    assert table["z"].abs().max() < 3.0, table.sort_values("z")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_hurwitz_margins_are_positive_exactly_for_stable_matrices(n):
    import pytensor
    import pytensor.tensor as pt

    A_ = pt.dmatrix("A")
    f = pytensor.function([A_], pt.stack(_hurwitz_margins(A_, n)), mode="FAST_COMPILE")
    rng = np.random.default_rng(n)
    for _ in range(300):
        A = rng.standard_normal((n, n)) * rng.uniform(0.05, 2.0) - rng.uniform(0, 1) * np.eye(n)
        stable = np.linalg.eigvals(A).real.max() < 0
        assert (f(A).min() > 0) == stable, (A, np.linalg.eigvals(A))
    if n == 3:
        # a complex pair al +- i be next to the axis: third margin ~ -2 al / (2 width)
        for al in (-0.01, 0.01):
            T = rng.standard_normal((3, 3))
            A = T @ np.array([[-1.0, 0, 0], [0, al, 0.5], [0, -0.5, al]]) @ np.linalg.inv(T)
            assert f(A)[2] == pytest.approx(-2 * al / 0.04, rel=0.25)


@pytest.mark.validate
def test_liuwu_posterior_agrees_with_ml(shared_data):
    """Liu-Wu 1990-2022, 8 maturities, 3 factors, 4 chains x 1000 draws: R-hat <= 1.01, no
    divergences, and every posterior mean within one ML standard error of the ML estimate."""
    from bayesbond.data.readers import read_liuwu

    curve = read_liuwu(shared_data / "liuwu_zcb_monthly_1to360m.csv")
    mats = [0.25, 0.5, 1, 2, 3, 5, 7, 10]
    cols = [c for c in curve.columns if any(abs(c - m) < 1e-9 for m in mats)]
    Y = curve.loc["1990":"2022", cols]
    ml = affine_ml(Y, n_factors=3, method="portfolio", n_starts=3, se=True)
    m = AffineModel(3)
    idata = m.fit(Y, draws=1000, tune=1000, chains=4, random_seed=20261122)
    d = diagnostics(idata, [k for k, _ in m.free_])
    assert d.max_rhat <= 1.01 and d.divergences == 0, str(d)
    table = m.side_by_side(ml, idata)
    table = table[table["ml_se"] > 0]
    assert len(table) > 40
    assert table["z"].abs().max() < 1.0, table.sort_values("z")
    b = m.bands(idata, max_draws=200)
    rmse_bp = 1e4 * float(np.sqrt(((b["fitted"].sel(stat="mean").values - Y.to_numpy()[1:]) ** 2)
                                  .mean()))
    assert rmse_bp < 10.0

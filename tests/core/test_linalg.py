"""Matrix-exponential integrals against numerical quadrature and Lyapunov residuals."""

import numpy as np
import pytest
import scipy.integrate as si
import scipy.linalg as sla

from bayesbond.core import linalg
from bayesbond.errors import ModelError


def _quad_cov(A, V, t):
    def f(s):
        E = sla.expm(s * A)
        return E @ V @ E.T

    return si.quad_vec(f, 0.0, t, epsabs=1e-14, epsrel=1e-12)[0]


CASES = {
    "stable": np.array([[-0.5, 0.3], [0.1, -1.2]]),
    "defective": np.array([[-0.7, 1.0], [0.0, -0.7]]),
    "singular": np.array([[0.0, 0.0], [0.4, -1.0]]),
    "explosive": np.array([[0.2, 0.0], [0.1, -0.3]]),
}
V = np.array([[0.04, 0.01], [0.01, 0.02]])


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("method", ["van_loan", "auto"])
def test_integrated_cov_matches_quadrature(name, method):
    A = CASES[name]
    ts = np.array([0.01, 0.5, 3.0, 10.0])
    F, G = linalg.integrated_cov(A, V, ts, method=method)
    for k, t in enumerate(ts):
        np.testing.assert_allclose(F[k], sla.expm(t * A), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(G[k], _quad_cov(A, V, t), rtol=1e-9, atol=1e-14)


def test_lyapunov_route_long_horizon():
    A = CASES["stable"]
    F, G = linalg.integrated_cov(A, V, 400.0, method="lyapunov")
    P = linalg.solve_lyapunov(A, V)
    np.testing.assert_allclose(G, P, rtol=1e-12)
    assert np.all(np.isfinite(F))


def test_expm_integral_quadrature_singular():
    A = CASES["singular"]
    F, J = linalg.expm_and_integral(A, 2.5)
    ref = si.quad_vec(lambda s: sla.expm(s * A), 0, 2.5, epsabs=1e-14)[0]
    np.testing.assert_allclose(J, ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(F, sla.expm(2.5 * A), rtol=1e-12)


def test_lyapunov_residual_and_unstable_error():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(3, 3))
    A = M - 4 * np.eye(3)
    S = rng.normal(size=(3, 3))
    Vr = S @ S.T
    P = linalg.solve_lyapunov(A, Vr)
    assert np.max(np.abs(A @ P + P @ A.T + Vr)) < 1e-13
    with pytest.raises(ModelError, match="not stable"):
        linalg.solve_lyapunov(CASES["explosive"], V)


def test_discrete_lyapunov_residual():
    Phi = np.array([[0.9, 0.05], [0.0, 0.7]])
    P = linalg.solve_discrete_lyapunov(Phi, V)
    assert np.max(np.abs(Phi @ P @ Phi.T + V - P)) < 1e-14
    with pytest.raises(ModelError, match="spectral radius"):
        linalg.solve_discrete_lyapunov(np.diag([1.01, 0.5]), V)


def test_auto_route_near_unit_root_mode():
    # a stable A with a nearly zero eigenvalue beside a fast one: the Lyapunov route cancels badly
    A = np.diag([-1e-12, -1.0])
    _, G = linalg.integrated_cov(A, V, 1.0)
    np.testing.assert_allclose(G, _quad_cov(A, V, 1.0), rtol=1e-10, atol=1e-15)

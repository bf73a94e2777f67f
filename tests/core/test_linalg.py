"""Matrix-exponential integrals against numerical quadrature and Lyapunov residuals."""

import json
import pathlib

import numpy as np
import pytest
import scipy.integrate as si
import scipy.linalg as sla

from bayesbond.core import linalg
from bayesbond.errors import DataError, ModelError


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


# --------------------------------------------------------------- long horizons (issue 12, sec. 2)
_REF = json.loads((pathlib.Path(__file__).parent / "reference" / "ou_cov_mpmath.json").read_text())


@pytest.mark.parametrize("name", list(_REF))
def test_integrated_cov_long_horizons_against_mpmath(name):
    # A = S diag(lam) S^-1 (not triangular) mixing slow and fast modes, a unit root, explosive
    # modes or a Jordan block; reference: tests/core/reference/ou_cov_mpmath.py (60 digits).
    # Van Loan's block exponential was off by 1e4 (relative) at 10 years and 1e45 at 30 for
    # "slow_fast". The Kronecker-sum route's error is a few eps times cond(S)^2 ||G||.
    case = _REF[name]
    A, Vr, ts = np.array(case["A"]), np.array(case["V"]), np.array(case["t"])
    _, G = linalg.integrated_cov(A, Vr, ts)
    for k in range(len(ts)):
        ref = np.array(case["G"][k])
        np.testing.assert_allclose(G[k], ref, rtol=0, atol=1e-12 * np.max(np.abs(ref)))


def test_integrated_cov_slow_fast_matches_eigen_closed_form():
    # independent closed form from the construction A = S diag(lam) S^-1:
    # G = S (Vt o t phi1((lam_i + lam_j) t)) S' with Vt = S^-1 V S^-T
    from bayesbond.core.affine_loadings import phi1

    S = np.array([[1.0, 0.3], [0.2, 1.0]])
    for lam in ([-1e-6, -5.0], [0.0, -5.0], [0.03, -8.0], [-1e-3, -40.0]):
        lam = np.array(lam)
        A = S @ np.diag(lam) @ np.linalg.inv(S)
        Si = np.linalg.inv(S)
        Vt = Si @ V @ Si.T
        for t in (1.0, 10.0, 30.0, 100.0):
            ref = S @ (Vt * t * phi1((lam[:, None] + lam[None, :]) * t)) @ S.T
            G = linalg.integrated_cov(A, V, t)[1]
            np.testing.assert_allclose(G, ref, rtol=0, atol=1e-11 * np.max(np.abs(ref)))


def test_bad_horizons_and_complex_matrix():
    with pytest.raises(DataError, match=r"t = -1.0: a horizon must be finite and >= 0"):
        linalg.integrated_cov(CASES["stable"], V, -1.0)
    with pytest.raises(DataError, match=r"t\[1\] = nan"):
        linalg.integrated_cov(CASES["stable"], V, [1.0, np.nan])
    with pytest.raises(ModelError, match="A is complex"):
        linalg.as_square(np.array([[-1.0 + 0.5j, 0.0], [0.0, -1.0]]))
    # a complex array with zero imaginary part is the real matrix (exact)
    np.testing.assert_array_equal(linalg.as_square(np.array([[-1.0 + 0j]])), [[-1.0]])


def test_unit_root_tolerance_is_scale_aware():
    # an eigenvalue of -5e-17 next to -1 is a unit root computed with round-off
    assert not linalg.is_stable(np.diag([-5e-17, -1.0]))
    assert linalg.is_stable(np.diag([-1e-6, -1.0]))
    # a uniformly tiny A is stable: the tolerance scales with ||A||
    assert linalg.is_stable(-1e-300 * np.eye(2))


def test_lyapunov_tiny_A_exact():
    # A = -1e-300 I: P = V / 2e-300 exactly (was -2.5e291 I: wrong sign)
    P = linalg.solve_lyapunov(-1e-300 * np.eye(2), np.eye(2))
    np.testing.assert_allclose(P, 5e299 * np.eye(2), rtol=1e-14)
    with pytest.raises(ModelError, match="overflows"):
        linalg.solve_lyapunov(-1e-300 * np.eye(2), 1e10 * np.eye(2))


def test_expm_frechet_block_matches_scipy_and_finite_differences():
    """L_exp(X, E) from the block exponential against scipy's Al-Mohy-Higham algorithm and a
    central difference of expm, on a random matrix and a defective (Jordan) one."""
    rng = np.random.default_rng(3)
    for X in (rng.standard_normal((4, 4)) * 0.7, np.array([[-0.3, 1.0, 0.0], [0.0, -0.3, 1.0],
                                                            [0.0, 0.0, -0.3]])):
        E = rng.standard_normal(X.shape)
        got = linalg.expm_frechet_block(X, E)
        ref = sla.expm_frechet(X, E, compute_expm=False)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-13 * np.abs(ref).max())
        h = 1e-5
        fd = (sla.expm(X + h * E) - sla.expm(X - h * E)) / (2 * h)
        np.testing.assert_allclose(got, fd, rtol=1e-7, atol=1e-8)

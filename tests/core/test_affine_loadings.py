"""Loadings of the Gaussian affine model against an independent numerical ODE solution.

Reference: scipy ``solve_ivp`` (DOP853, rtol 1e-12, atol 1e-14) on the Riccati system
``u' = A*' u + delta1``, ``v' = -delta0 - a*' u + u'Vu/2`` (Duffie and Kan 1996), integrated
directly (no matrix exponential, no eigen-decomposition).
"""

import functools

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from bayesbond.core.affine import GaussianAffine
from bayesbond.core.affine_loadings import phi1, phi2, psi
from bayesbond.errors import DataError, ModelError

TAU = np.array([0.0, 1e-7, 1e-3, 1 / 12, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0])


def ode_loadings(m: GaussianAffine, tau: np.ndarray):
    n = m.n

    def rhs(_, y):
        u = y[:n]
        return np.concatenate(
            [m.A_star.T @ u + m.delta1, [-m.delta0 - m.a_star @ u + 0.5 * u @ m.V @ u]]
        )

    sol = solve_ivp(
        rhs, (0.0, tau.max()), np.zeros(n + 1), t_eval=tau, method="DOP853", rtol=1e-12, atol=1e-14
    )
    assert sol.success
    return sol.y[:n].T, sol.y[n]


def random_model(n: int, seed: int, kind: str = "random") -> GaussianAffine:
    rng = np.random.default_rng(seed)
    if kind == "random":
        B = rng.normal(size=(n, n)) * 0.5
        A_star = B - np.eye(n) * (np.max(np.linalg.eigvals(B).real) + rng.uniform(0.05, 0.5))
    elif kind == "defective":  # Jordan block: repeated eigenvalue with one eigenvector
        J = -0.4 * np.eye(n) + np.diag(np.full(n - 1, 0.7), 1)
        Q = np.linalg.qr(rng.normal(size=(n, n)))[0]
        A_star = Q @ J @ Q.T
    elif kind == "singular":  # one zero eigenvalue: a random-walk factor under P*
        D = np.diag(np.r_[0.0, -rng.uniform(0.1, 1.0, n - 1)])
        Q1, Q2 = (np.linalg.qr(rng.normal(size=(n, n)))[0] for _ in range(2))
        S = Q1 @ np.diag(rng.uniform(0.5, 2.0, n)) @ Q2  # eigenvectors with cond(S) <= 4
        A_star = S @ D @ np.linalg.inv(S)
    elif kind == "cascade_defective":  # EFM(2)-type cascade with k_r* = k_x* = k_y*
        k = 0.3
        A_star = np.array([[-k, k, 0.0], [0.0, -k, k], [0.0, 0.0, -k]])[:n, :n]
    else:
        raise ValueError(kind)
    Sigma = np.tril(rng.normal(size=(n, n))) * 0.01 + np.eye(n) * 0.01
    Lambda = rng.normal(size=(n, n)) * 0.05
    return GaussianAffine(
        A_star - Lambda,
        rng.normal(size=n) * 0.01,
        Sigma,
        Lambda=Lambda,
        lambda1=rng.normal(size=n) * 0.005,
        delta0=0.01,
        delta1=rng.normal(size=n) if kind == "random" else None,
    )


@functools.cache
def _ode_cached(n, seed, kind):
    return ode_loadings(random_model(n, seed, kind), TAU)


CASES = [
    (2, 0, "random"),
    (3, 1, "random"),
    (3, 2, "random"),
    (2, 3, "defective"),
    (3, 4, "defective"),
    (2, 5, "singular"),
    (3, 6, "singular"),
    (3, 7, "cascade_defective"),
]


@pytest.mark.parametrize(("n", "seed", "kind"), CASES)
@pytest.mark.parametrize("method", ["auto", "expm", "eigen"])
def test_loadings_match_ode(n, seed, kind, method):
    m = random_model(n, seed, kind)
    u_ref, v_ref = _ode_cached(n, seed, kind)
    if method == "eigen" and m.loadings_route == "expm":
        with pytest.raises(ModelError, match="defective"):
            m.loadings(TAU, method="eigen")
        return
    u, v = m.loadings(TAU, method=method)
    assert u.shape == (len(TAU), n) and v.shape == (len(TAU),)
    np.testing.assert_allclose(u, u_ref, rtol=0, atol=1e-10 * max(1.0, np.abs(u_ref).max()))
    np.testing.assert_allclose(v, v_ref, rtol=0, atol=1e-10 * max(1.0, np.abs(v_ref).max()))


def test_auto_route_choice():
    assert random_model(3, 1, "random").loadings_route == "eigen"
    assert random_model(3, 4, "defective").loadings_route == "expm"
    assert random_model(3, 7, "cascade_defective").loadings_route == "expm"
    # a zero eigenvalue with a full set of eigenvectors stays on the fast route
    assert random_model(3, 6, "singular").loadings_route == "eigen"


@pytest.mark.parametrize("gap", [1e-2, 3e-3, 1e-3, 1e-6, 1e-9])
def test_near_defective_routes_agree(gap):
    """Close to a Jordan block the eigen route must hand over before it loses accuracy."""
    k = 0.4
    A_star = np.array([[-k, k, 0.0], [0.0, -k - gap, k], [0.0, 0.0, -0.05]])
    m = GaussianAffine(A_star, [0.0, 0.0, 0.002], np.diag([0.01, 0.008, 0.006]))
    u_auto, v_auto = m.loadings(TAU)
    u_ref, v_ref = ode_loadings(m, TAU)
    np.testing.assert_allclose(u_auto, u_ref, rtol=0, atol=1e-10 * np.abs(u_ref).max())
    np.testing.assert_allclose(v_auto, v_ref, rtol=0, atol=1e-10 * max(1, np.abs(v_ref).max()))


def test_complex_eigenvalues():
    A_star = np.array([[-0.3, 1.0, 0.0], [-1.0, -0.3, 0.0], [0.2, 0.0, -0.05]])
    m = GaussianAffine(A_star, [0.001, 0.0, 0.002], np.diag([0.01, 0.008, 0.006]))
    assert m.loadings_route == "eigen"
    u, v = m.loadings(TAU)
    u_ref, v_ref = ode_loadings(m, TAU)
    np.testing.assert_allclose(u, u_ref, atol=1e-10)
    np.testing.assert_allclose(v, v_ref, atol=1e-10)


def test_K_integral_both_routes():
    """``K = int u u'`` (used for volatility sensitivities) against the ODE ``K' = u u'``."""
    m = random_model(3, 2, "random")
    tau = np.array([0.5, 4.0, 25.0])
    n = m.n

    def rhs(_, y):
        u = y[:n]
        return np.concatenate([m.A_star.T @ u + m.delta1, np.outer(u, u).ravel()])

    sol = solve_ivp(
        rhs, (0, tau[-1]), np.zeros(n + n * n), t_eval=tau, method="DOP853", rtol=1e-12, atol=1e-14
    )
    K_ref = sol.y[n:].T.reshape(-1, n, n)
    for method in ("eigen", "expm"):
        K = m.parts(tau, method=method, with_K=True).K
        np.testing.assert_allclose(K, K_ref, rtol=1e-10, atol=1e-12)


def _complex_quad(f):
    re = quad(lambda s: float(np.real(f(s))), 0, 1, epsabs=1e-15)[0]
    im = quad(lambda s: float(np.imag(f(s))), 0, 1, epsabs=1e-15)[0]
    return re + 1j * im


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_phi_functions_against_quadrature():
    """``phi_k(z) = int_0^1 e^{zs} (1-s)^{k-1} / (k-1)! ds`` (Hochbruck and Ostermann 2010)."""
    z = np.array([0.0, 1e-12, -1e-5, 0.3, -0.99, 1.01, -7.5, 3.0, 2.0 + 1.5j, -0.2 + 0.4j])
    ref1 = [_complex_quad(lambda s, zz=zz: np.exp(zz * s)) for zz in z]
    ref2 = [_complex_quad(lambda s, zz=zz: np.exp(zz * s) * (1 - s)) for zz in z]
    np.testing.assert_allclose(phi1(z), ref1, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(phi2(z), ref2, rtol=1e-13, atol=1e-15)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize(
    ("x", "y"),
    [
        (0.0, 0.0),
        (0.3, -0.7),
        (1e-8, -3.0),
        (-0.2, 5.0),
        (-0.6, -4.0),
        (-2.0, -30.0),
        (0.9, 0.95),
        (1e-10, 1e-10),
        (-0.4 + 1j, -0.4 - 1j),
        (0.7j, -0.7j),
    ],
)
def test_psi_against_quadrature(x, y):
    def f(s, part):
        val = s * s * phi1(np.array(x * s)) * phi1(np.array(y * s))
        return float(getattr(val, part))

    ref = quad(f, 0, 1, args=("real",), epsabs=1e-15, epsrel=1e-14)[0]
    if np.iscomplexobj(np.asarray(x + y)) and (np.imag(x) != 0 or np.imag(y) != 0):
        ref += 1j * quad(f, 0, 1, args=("imag",), epsabs=1e-15, epsrel=1e-14)[0]
    np.testing.assert_allclose(psi(x, y), ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(psi(y, x), ref, rtol=1e-12, atol=1e-15)


def test_bad_inputs():
    m = random_model(2, 0)
    with pytest.raises(DataError, match=r"tau\[1\]"):
        m.loadings([1.0, -1.0])
    with pytest.raises(DataError, match="tau"):
        m.loadings([1.0, np.nan])
    with pytest.raises(DataError, match="xi"):
        m.yields(np.zeros(3), 1.0)
    with pytest.raises(ModelError, match="Sigma"):
        GaussianAffine(-np.eye(2), [0, 0], np.eye(3))
    with pytest.raises(ModelError, match="lambda1"):
        GaussianAffine(-np.eye(2), [0, 0], np.eye(2), lambda1=[1.0])
    with pytest.raises(ModelError, match="A must be a square"):
        GaussianAffine(np.ones((2, 3)), [0, 0], np.eye(2))
    with pytest.raises(ValueError, match="method"):
        m.loadings(1.0, method="svd")


@pytest.mark.validate
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_loadings_sweep_against_ode(n):
    """Heavier sweep (``make validate``): many random models, both routes, long maturities."""
    tau = np.r_[TAU, 50.0]
    for seed in range(25):
        kind = ("random", "defective", "singular")[seed % 3] if n > 1 else "random"
        m = random_model(n, 100 + seed, kind)
        u_ref, v_ref = ode_loadings(m, tau)
        for method in ("auto", "expm"):
            u, v = m.loadings(tau, method=method)
            np.testing.assert_allclose(u, u_ref, atol=1e-10 * max(1.0, np.abs(u_ref).max()))
            np.testing.assert_allclose(v, v_ref, atol=1e-10 * max(1.0, np.abs(v_ref).max()))

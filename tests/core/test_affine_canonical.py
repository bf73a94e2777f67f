"""Canonical (JSZ) affine algebra: loadings against a numerical solution of the pricing ODEs."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from bayesbond.core.affine_canonical import canonical, eigen_from_raw, eigen_to_raw, eigenvalues

TAU = np.array([0.25, 0.5, 1, 2, 3, 5, 7, 10.0])


@pytest.mark.parametrize("D", [0.3, 0.0, -0.2])
def test_canonical_loadings_solve_the_pricing_odes(D):
    """y = d + Z P solves du/dt = A*'u + delta1, dv/dt = -delta0 - a*'u + u'Vu/2 (solve_ivp)."""
    rng = np.random.default_rng(0)
    tau = np.r_[TAU, 30.0]
    W = np.linalg.qr(rng.standard_normal((len(tau), 3)))[0].T
    L = np.array([[0.02, 0, 0], [-0.005, 0.01, 0], [0.002, 0.001, 0.004]])
    V = L @ L.T
    eig = eigen_from_raw(np, eigen_to_raw([-0.02], -0.9, D), 3)
    can = canonical(np, eig, 0.002, V, W, tau)

    def rhs(t, z):
        u = z[:3]
        return np.r_[can.A_star.T @ u + can.delta1, -can.delta0 - can.a_star @ u + 0.5 * u @ V @ u]

    sol = solve_ivp(rhs, [0, 30], np.zeros(4), t_eval=tau, rtol=1e-12, atol=1e-14, method="DOP853")
    np.testing.assert_allclose(sol.y[:3].T / tau[:, None], can.Z, atol=1e-10)
    np.testing.assert_allclose(-sol.y[3] / tau, can.d, atol=1e-12)
    # the portfolios are priced exactly by construction; A* has the canonical eigenvalues
    np.testing.assert_allclose(W @ can.Z, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(W @ can.d, 0, atol=1e-14)
    ev = np.sort_complex(np.linalg.eigvals(can.A_star))
    np.testing.assert_allclose(ev, np.sort_complex(eigenvalues(eig)), atol=1e-6)


@pytest.mark.parametrize(("m", "D"), [(-0.5, -25.0), (-0.1, -100.0), (-0.9, 0.0)])
def test_canonical_convexity_exact_for_oscillating_block(m, D):
    """Fast oscillating P* pairs (-0.5 +- 5i, -0.1 +- 10i): the 48-node quadrature was off by
    0.02 bp and 1 bp; against the pricing ODEs (solve_ivp) and GaussianAffine's expm route."""
    from bayesbond.core.affine import GaussianAffine
    from bayesbond.core.affine_canonical import Eigen

    rng = np.random.default_rng(0)
    tau = np.array([0.25, 1, 2, 5, 10, 20, 30.0])
    W = np.linalg.qr(rng.standard_normal((len(tau), 3)))[0].T
    L = np.array([[0.02, 0, 0], [-0.005, 0.01, 0], [0.002, 0.001, 0.004]])
    V = L @ L.T
    can = canonical(np, Eigen(np.array([-0.05]), m, D), 0.002, V, W, tau)

    def rhs(t, z):
        u = z[:3]
        return np.r_[can.A_star.T @ u + can.delta1, -can.delta0 - can.a_star @ u + 0.5 * u @ V @ u]

    sol = solve_ivp(rhs, [0, 30], np.zeros(4), t_eval=tau, rtol=1e-13, atol=1e-15, method="DOP853")
    np.testing.assert_allclose(-sol.y[3] / tau, can.d, rtol=0, atol=1e-12)
    g = GaussianAffine(np.zeros((3, 3)), np.zeros(3), L, Lambda=can.A_star, lambda1=can.a_star,
                       delta0=float(can.delta0), delta1=can.delta1)
    b, c = g.yield_coefficients(tau, method="expm")
    np.testing.assert_allclose(c, can.d, rtol=0, atol=1e-13)
    np.testing.assert_allclose(b, can.Z, rtol=0, atol=1e-11)

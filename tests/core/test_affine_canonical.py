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


@pytest.mark.parametrize(("m", "D"), [(-0.5, -25.0), (-0.1, -100.0), (-3.0, -400.0), (-10.0, 50.0)])
def test_pytensor_convexity_matches_the_expm_route(m, D):
    """The PyTensor path (composite Gauss-Legendre, half-year panels) against the latent model
    priced by GaussianAffine's augmented exponential, up to 30 years and 20 radians a year (one
    48-node rule was off by 1 bp)."""
    pt = pytest.importorskip("pytensor.tensor")
    import pytensor

    from bayesbond.core.affine import GaussianAffine
    from bayesbond.core.affine_canonical import Eigen, latent_drift, latent_loadings

    tau = np.array([0.25, 0.5, 1, 2, 3, 5, 7, 10, 20, 30.0])
    L = np.array([[0.02, 0, 0], [-0.005, 0.01, 0], [0.002, 0.001, 0.004]])
    lam, mm, DD, V = pt.dvector("lam"), pt.dscalar("m"), pt.dscalar("D"), pt.dmatrix("V")
    _, a_y = latent_loadings(pt, Eigen(lam, mm, DD), 0.002, V, tau, 3)
    f = pytensor.function([lam, mm, DD, V], [a_y, pytensor.grad(a_y.sum(), DD)])
    got, grad = f(np.array([-0.05]), m, D, L @ L.T)
    G, delta_X = latent_drift(np, Eigen(np.array([-0.05]), m, D), 3)
    latent = GaussianAffine(np.zeros((3, 3)), np.zeros(3), L, Lambda=G,
                            lambda1=[0.002, 0.0, 0.0], delta1=delta_X)
    ref = latent.yield_coefficients(tau, method="expm")[1]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-14)
    exact = latent_loadings(np, Eigen(np.array([-0.05]), m, D), 0.002, L @ L.T, tau, 3)[1]
    np.testing.assert_allclose(exact, ref, rtol=0, atol=1e-14)
    assert np.isfinite(grad)

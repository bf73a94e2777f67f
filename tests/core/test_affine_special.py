"""Named models (Vasicek, EFM1, EFM2): closed forms against the generic route and numpy, including
the defective limits of the EFM(2) cascade (k_r* = k_x*, k_x* = k_y*)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import bayesbond
from bayesbond.core.affine import EFM1, EFM2, GaussianAffine, Vasicek
from bayesbond.errors import ModelError

TAU = np.array([0.0, 1e-6, 0.1, 1.0, 5.0, 10.0, 30.0, 100.0])
S3 = np.array([[0.01, 0.0, 0.0], [0.003, 0.008, 0.0], [0.001, -0.002, 0.005]])


def generic(m) -> GaussianAffine:
    return GaussianAffine(m.A, m.a, m.Sigma, m.Lambda, m.lambda1, m.delta0, m.delta1)


def ode_u(A_star, tau):
    n = A_star.shape[0]
    e1 = np.eye(n)[0]
    sol = solve_ivp(
        lambda _, u: A_star.T @ u + e1,
        (0, tau.max()),
        np.zeros(n),
        t_eval=tau,
        method="DOP853",
        rtol=1e-13,
        atol=1e-15,
    )
    return sol.y.T


def test_public_names():
    for name in ("GaussianAffine", "Vasicek", "EFM1", "EFM2"):
        assert getattr(bayesbond, name) is getattr(bayesbond.core.affine, name)


def test_vasicek_parameters_and_closed_forms():
    v = Vasicek(kappa=0.1, theta=0.1, sigma=0.02)
    assert v.price(0.1, 10.0) == pytest.approx(0.380457, abs=5e-7)
    vl = Vasicek(kappa=0.5, theta=0.04, sigma=0.01, lambda_=0.3)
    assert vl.theta_star == pytest.approx(0.04 + 0.01 * 0.3 / 0.5)
    B, vv = vl.closed_form_loadings(TAU)
    u, v_gen = vl.loadings(TAU)
    np.testing.assert_allclose(u[:, 0], B, rtol=1e-14, atol=1e-18)
    np.testing.assert_allclose(v_gen, vv, rtol=1e-12, atol=1e-18)
    assert vl.yield_inf() == pytest.approx(vl.theta_star - 0.01**2 / (2 * 0.25), abs=1e-15)
    # positive lambda: positive term premium B(tau) sigma lambda
    np.testing.assert_allclose(vl.expected_excess_return(0.03, TAU), B * 0.01 * 0.3, rtol=1e-13)
    with pytest.raises(ModelError, match="kappa"):
        Vasicek(kappa=0.0, theta=0.04, sigma=0.01)
    with pytest.raises(ModelError, match="sigma"):
        Vasicek(kappa=0.2, theta=0.04, sigma=-0.01)


@pytest.mark.parametrize(
    "ks",
    [
        (1.0, 0.3, 0.05),  # distinct speeds (eigen route)
        (0.5, 0.5, 0.1),  # k_r* = k_x*: defective
        (0.8, 0.2, 0.2),  # k_x* = k_y*: defective
        (0.3, 0.3, 0.3),  # one Jordan block of size 3
        (0.5, 0.5 + 1e-9, 0.1),  # nearly defective
    ],
)
def test_efm2_closed_forms(ks):
    l = (0.1, 0.05, 0.01)
    k = tuple(ki + li for ki, li in zip(ks, l, strict=True))  # P speeds so that k* = ks
    m = EFM2(*k, theta=0.04, Sigma=S3, l_r=l[0], l_x=l[1], l_y=l[2], lambda1=[0, 0, -2e-4])
    np.testing.assert_allclose(m.k_star, ks, rtol=1e-14)
    # cascade under P*
    kr, kx, ky = ks
    np.testing.assert_allclose(
        m.A_star, [[-kr, kr, 0], [0, -kx, kx], [0, 0, -ky]], rtol=1e-13, atol=1e-16
    )
    np.testing.assert_allclose(m.A_star_T_inv(), np.linalg.inv(m.A_star.T), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(m.u_inf(), 1 / np.array(ks), rtol=1e-14)
    np.testing.assert_allclose(m.u_inf(), -np.linalg.solve(m.A_star.T, np.eye(3)[0]), rtol=1e-12)
    u_ref = ode_u(m.A_star, TAU)
    np.testing.assert_allclose(m.u_closed_form(TAU), u_ref, rtol=0, atol=1e-11)
    u_gen, v_gen = m.loadings(TAU)
    np.testing.assert_allclose(u_gen, u_ref, rtol=0, atol=1e-11)
    g = generic(m)
    assert m.yield_inf() == pytest.approx(
        g.delta0 + g.u_inf() @ g.a_star - 0.5 * g.u_inf() @ g.V @ g.u_inf(), abs=1e-15
    )
    np.testing.assert_allclose(m.mu_inf(), g.ou_P().stationary_mean(), rtol=1e-12)
    # the closed form and the generic route agree at long maturities too
    np.testing.assert_allclose(m.u_closed_form(1e3), m.u_inf(), rtol=1e-12)
    if len(set(ks)) < 3:
        assert m.loadings_route == "expm"
        with pytest.raises(ModelError, match="diagonalisable"):
            m.eigen_A_star_T()
    else:
        lam, W = m.eigen_A_star_T()
        np.testing.assert_allclose(m.A_star.T @ W, W * lam, atol=1e-14)


def test_efm2_eigen_decompositions():
    m = EFM2(1.0, 0.3, 0.05, 0.04, S3, l_r=0.1, l_x=0.05, l_y=0.01)
    lam, W = m.eigen_A_star_T()
    np.testing.assert_allclose(m.A_star.T @ W, W * lam, atol=1e-15)
    assert np.sort(lam) == pytest.approx(np.sort(np.linalg.eigvals(m.A_star).real))
    lam, W = m.eigen_A()
    np.testing.assert_allclose(m.A @ W, W * lam, atol=1e-15)


@pytest.mark.parametrize(
    "ks", [(1.0, 0.3, 0.05), (0.4, 0.4, 0.1), (0.4, 0.1, 0.4), (0.2, 0.2, 0.2)]
)
def test_efm1_closed_forms(ks):
    l = (0.1, 0.05, -0.02)
    k = tuple(ki + li for ki, li in zip(ks, l, strict=True))
    m = EFM1(
        *k, alpha_x=0.02, alpha_y=0.015, Sigma=[0.01, 0.008, 0.005], l_r=l[0], l_x=l[1], l_y=l[2]
    )
    kr = k[0]
    np.testing.assert_allclose(
        m.A_star.T, [[-ks[0], 0, 0], [kr, -ks[1], 0], [kr, 0, -ks[2]]], rtol=1e-13, atol=1e-16
    )
    np.testing.assert_allclose(m.A_star_T_inv(), np.linalg.inv(m.A_star.T), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(m.u_inf(), -np.linalg.solve(m.A_star.T, np.eye(3)[0]), rtol=1e-12)
    u_ref = ode_u(m.A_star, TAU)
    np.testing.assert_allclose(m.u_closed_form(TAU), u_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(m.loadings(TAU)[0], u_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(m.mu_inf(), generic(m).ou_P().stationary_mean(), rtol=1e-12)
    g = generic(m)
    assert m.yield_inf() == pytest.approx(
        g.u_inf() @ g.a_star - 0.5 * g.u_inf() @ g.V @ g.u_inf(), abs=1e-15
    )


def test_efm1_eigen_decompositions():
    m = EFM1(1.0, 0.3, 0.05, 0.02, 0.015, [0.01, 0.008, 0.005], l_r=0.1, l_x=0.05)
    lam, W = m.eigen_A_star_T()
    np.testing.assert_allclose(m.A_star.T @ W, W * lam, atol=1e-15)
    lam, W = m.eigen_A()
    np.testing.assert_allclose(m.A @ W, W * lam, atol=1e-15)
    assert np.sort(lam) == pytest.approx(np.sort(np.linalg.eigvals(m.A).real))
    with pytest.raises(ModelError, match="not diagonalisable"):
        EFM1(0.4, 0.4, 0.05, 0.02, 0.015, [0.01, 0.008, 0.005]).eigen_A_star_T()


def test_efm1_needs_independent_x_and_y():
    S = np.array([[0.01, 0, 0], [0.0, 0.008, 0], [0.0, 0.004, 0.005]])
    with pytest.raises(ModelError, match="independent x and y"):
        EFM1(1.0, 0.3, 0.05, 0.02, 0.015, S)


def test_efm2_bad_parameters():
    with pytest.raises(ModelError, match="k_x"):
        EFM2(1.0, np.nan, 0.05, 0.04, S3)
    with pytest.raises(ModelError, match="Sigma"):
        EFM2(1.0, 0.3, 0.05, 0.04, np.eye(2))
    m = EFM2(0.5, 0.3, 0.05, 0.04, S3, l_y=0.05)  # k_y* = 0: random walk under P*
    with pytest.raises(ModelError, match="positive risk-neutral"):
        m.u_inf()
    u, _ = m.loadings(TAU)
    np.testing.assert_allclose(u, ode_u(m.A_star, TAU), atol=1e-10)

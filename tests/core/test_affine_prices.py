"""Prices, yields and forwards of ``GaussianAffine`` against textbook closed forms, finite
differences and Monte Carlo.

References
----------
Vasicek (1977) closed form, e.g. Hull, *Options, Futures and Other Derivatives*, ch. 31:
``P = A e^{-B r}``, ``B = (1 - e^{-k tau})/k``,
``ln A = (B - tau)(k^2 theta - sigma^2/2)/k^2 - sigma^2 B^2/(4k)``.
G2++: Brigo and Mercurio (2006), *Interest Rate Models*, eq. (4.10) ff.
"""

import numpy as np
import pytest

from bayesbond.core.affine import GaussianAffine
from bayesbond.core.ou import OU
from bayesbond.errors import ModelError


def vasicek_closed_form(k, theta, sigma, r, tau):
    B = (1 - np.exp(-k * tau)) / k
    lnA = (B - tau) * (k**2 * theta - sigma**2 / 2) / k**2 - sigma**2 * B**2 / (4 * k)
    return np.exp(lnA - B * r)


def g2pp_V(a, b, sigma, eta, rho, T):
    """Brigo-Mercurio V(t, T) for t = 0 (variance of int (x + y))."""
    return (
        sigma**2
        / a**2
        * (T + 2 / a * np.exp(-a * T) - 1 / (2 * a) * np.exp(-2 * a * T) - 3 / (2 * a))
        + eta**2
        / b**2
        * (T + 2 / b * np.exp(-b * T) - 1 / (2 * b) * np.exp(-2 * b * T) - 3 / (2 * b))
        + 2
        * rho
        * sigma
        * eta
        / (a * b)
        * (
            T
            + (np.exp(-a * T) - 1) / a
            + (np.exp(-b * T) - 1) / b
            - (np.exp(-(a + b) * T) - 1) / (a + b)
        )
    )


def test_vasicek_hull_value():
    m = GaussianAffine(-0.1, 0.1 * 0.1, 0.02)
    assert m.price(0.1, 10.0) == pytest.approx(0.380457, abs=5e-7)


@pytest.mark.parametrize("method", ["eigen", "expm"])
def test_vasicek_closed_form_curve(method):
    k, theta, sigma, r0 = 0.5, 0.04, 0.01, 0.02
    m = GaussianAffine(-k, k * theta, sigma)
    tau = np.array([0.25, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0])
    np.testing.assert_allclose(
        m.price(r0, tau, method=method), vasicek_closed_form(k, theta, sigma, r0, tau), rtol=1e-13
    )
    y = m.yields(r0, [1.0, 10.0], method=method)
    np.testing.assert_allclose(y, [0.0242495777, 0.0358864137], atol=5e-11)
    assert m.yield_inf() == pytest.approx(theta - sigma**2 / (2 * k**2), abs=1e-15)
    assert m.yield_inf() == pytest.approx(0.0398, abs=1e-15)


def test_vasicek_market_price_of_risk_shifts_theta():
    """Constant lambda1 shifts the risk-neutral mean: theta* = theta + lambda1/k."""
    k, theta, sigma, l1 = 0.3, 0.05, 0.015, 0.003
    m = GaussianAffine(-k, k * theta, sigma, lambda1=l1)
    tau = np.linspace(0.5, 20, 9)
    np.testing.assert_allclose(
        m.price(0.03, tau), vasicek_closed_form(k, theta + l1 / k, sigma, 0.03, tau), rtol=1e-13
    )


def g2pp_model():
    a, b, sigma, eta, rho, phi = 0.7735, 0.08201, 0.02228, 0.01038, -0.7019, 0.04
    C = np.array([[sigma**2, rho * sigma * eta], [rho * sigma * eta, eta**2]])
    m = GaussianAffine(np.diag([-a, -b]), [0, 0], np.linalg.cholesky(C), delta0=phi, delta1=[1, 1])
    return m, (a, b, sigma, eta, rho, phi)


def test_g2pp_known_values():
    m, (a, b, sigma, eta, rho, phi) = g2pp_model()
    assert g2pp_V(a, b, sigma, eta, rho, 10.0) == pytest.approx(1.1362276941e-2, abs=1e-12)
    # V(tau)/2 = v(tau) + phi tau for this model
    _, v = m.loadings(10.0)
    assert v + phi * 10 == pytest.approx(0.5 * 1.1362276941e-2, abs=3e-13)  # 11 digits given
    assert m.price([0.0, 0.0], 10.0) == pytest.approx(0.6741390650, abs=1e-10)


def test_g2pp_closed_form_curve_and_states():
    m, (a, b, sigma, eta, rho, phi) = g2pp_model()
    tau = np.array([0.1, 1.0, 3.0, 7.0, 15.0, 40.0])
    xi = np.array([[0.01, -0.004], [-0.02, 0.013], [0.0, 0.0]])
    Ba = (1 - np.exp(-a * tau)) / a
    Bb = (1 - np.exp(-b * tau)) / b
    ref = np.exp(
        -phi * tau - Ba * xi[:, :1] - Bb * xi[:, 1:] + 0.5 * g2pp_V(a, b, sigma, eta, rho, tau)
    )
    for method in ("eigen", "expm"):
        np.testing.assert_allclose(m.price(xi, tau, method=method), ref, rtol=1e-12)


def model3():
    A = np.array([[-1.0, 1.0, 0.0], [0.0, -0.3, 0.3], [0.0, 0.0, -0.08]])
    Lambda = np.array([[0.2, -0.2, 0.0], [0.0, 0.05, -0.05], [0.0, 0.0, 0.02]])
    a = np.array([0.0, 0.0, 0.08 * 0.045])
    Sigma = np.array([[0.012, 0.0, 0.0], [0.004, 0.009, 0.0], [-0.002, 0.003, 0.006]])
    return GaussianAffine(A, a, Sigma, Lambda=Lambda, lambda1=[0.0, 0.0, -0.0004])


def test_shapes_and_short_limit():
    m = model3()
    xi = np.array([0.03, 0.035, 0.04])
    tau = np.array([0.0, 1e-9, 1.0, 10.0])
    y = m.yields(xi, tau)
    assert y.shape == (4,)
    assert y[0] == m.short_rate(xi) == pytest.approx(0.03, abs=0)
    assert y[1] == pytest.approx(0.03, abs=1e-10)
    batch = np.stack([xi, xi * 0.5, xi * 2])
    Y = m.yields(batch, tau)
    assert Y.shape == (3, 4)
    np.testing.assert_allclose(Y[1], m.yields(xi * 0.5, tau), rtol=1e-15)
    assert np.isscalar(m.yields(xi, 5.0)) and m.yields(batch, 5.0).shape == (3,)
    np.testing.assert_allclose(m.price(batch, tau), np.exp(-Y * tau), rtol=1e-14)
    # one-factor model: a vector of short rates is a batch of states
    v = GaussianAffine(-0.5, 0.02, 0.01)
    r = np.array([0.01, 0.02, 0.05])
    Yv = v.yields(r, tau)
    assert Yv.shape == (3, 4)
    np.testing.assert_allclose(Yv[:, 0], r, rtol=0)
    np.testing.assert_allclose(Yv[1], v.yields(0.02, tau), rtol=1e-15)
    assert v.yields([0.02], tau).shape == (4,)
    assert np.all(m.price(xi, 0.0) == 1.0)


def test_forward_matches_finite_difference():
    m = model3()
    xi = np.array([0.03, 0.035, 0.04])
    tau = np.array([0.0, 0.5, 2.0, 10.0, 30.0])
    h = 1e-5
    lp = lambda t: m.log_price(xi, t)  # noqa: E731
    fd = -(lp(tau + h) - lp(np.maximum(tau - h, 0))) / (tau + h - np.maximum(tau - h, 0))
    fd[0] = -(-3 * lp(0.0) + 4 * lp(h) - lp(2 * h)) / (2 * h)
    np.testing.assert_allclose(m.forward(xi, tau), fd, atol=1e-9)
    assert m.forward(xi, 0.0) == pytest.approx(m.short_rate(xi), abs=1e-15)


def test_short_slope_matches_finite_difference():
    m = model3()
    xi = np.array([[0.03, 0.035, 0.04], [0.05, 0.02, 0.03]])
    h = 1e-4
    y1, y2 = m.yields(xi, h), m.yields(xi, 2 * h)
    fd = (4 * y1 - y2 - 3 * m.short_rate(xi)) / (2 * h)  # one-sided, second order
    np.testing.assert_allclose(m.short_slope(xi), fd, atol=1e-8)


def test_yield_inf_matches_long_maturity_extrapolation():
    m = model3()
    xi = np.array([0.03, 0.035, 0.04])
    # tau y(tau) = tau y_inf + C + O(e^{-k tau}): the slope of tau y(tau) at long maturities
    t1, t2 = 600.0, 800.0
    y1, y2 = m.yields(xi, [t1, t2])
    assert (t2 * y2 - t1 * y1) / (t2 - t1) == pytest.approx(m.yield_inf(), abs=1e-12)
    np.testing.assert_allclose(m.u_inf(), m.loadings(1e4)[0], rtol=1e-12)


def test_yield_inf_needs_stable_A_star():
    m = GaussianAffine(np.array([[0.0, 0.0], [0.0, -0.5]]), [0, 0], np.eye(2) * 0.01)
    with pytest.raises(ModelError, match="stable"):
        m.yield_inf()


def test_instantaneous_yield_covariance():
    """Yields are affine in xi: a finite-difference Jacobian J gives the reference J V J'."""
    m = model3()
    tau = np.array([0.0, 1.0, 5.0, 20.0])
    xi = np.array([0.03, 0.035, 0.04])
    h = 1e-4
    J = np.stack(
        [(m.yields(xi + h * e, tau) - m.yields(xi - h * e, tau)) / (2 * h) for e in np.eye(3)], 1
    )
    np.testing.assert_allclose(m.yield_cov_inst(tau), J @ m.V @ J.T, rtol=1e-8, atol=1e-14)


def test_monte_carlo_discount_under_risk_neutral_measure():
    """E*[exp(-int_0^T r dt)] by simulation of the P* dynamics agrees within 3 standard errors."""
    m = model3()
    xi0 = np.array([0.02, 0.035, 0.05])
    T, n_steps, n_paths = 5.0, 250, 4000
    ou_star = OU(m.A_star, m.a_star, m.Sigma)  # exact transition of the P* dynamics
    paths = ou_star.simulate(xi0, n_steps=n_steps, dt=T / n_steps, n_paths=n_paths, rng=42)
    r = paths @ m.delta1 + m.delta0
    integral = (r[:, 1:] + r[:, :-1]).sum(axis=1) * (T / n_steps) / 2  # trapezoid, O(dt^2) bias
    disc = np.exp(-integral)
    # control variate: the mean of int r under P* is known exactly from the OU mean
    t_grid = np.linspace(0, T, n_steps + 1)
    mean_r = OU(m.A_star, m.a_star, m.Sigma).mean(xi0, t_grid) @ m.delta1 + m.delta0
    ci = (mean_r[1:] + mean_r[:-1]).sum() * (T / n_steps) / 2
    beta = np.cov(disc, integral)[0, 1] / np.var(integral, ddof=1)
    adj = disc - beta * (integral - ci)
    est, se = adj.mean(), adj.std(ddof=1) / np.sqrt(n_paths)
    assert abs(est - m.price(xi0, T)) < 3 * se
    assert se < 2e-4  # the test has power


@pytest.mark.parametrize("method", ["eigen", "expm"])
def test_random_walk_limit_closed_form(method):
    """A* = 0 (Merton: dr = mu dt + sigma dW*): u = tau, v = -mu tau^2/2 + sigma^2 tau^3/6."""
    mu, sigma = 0.002, 0.01
    m = GaussianAffine(0.0, mu, sigma)
    tau = np.array([0.0, 0.1, 1.0, 10.0, 50.0])
    u, v = m.loadings(tau, method=method)
    np.testing.assert_allclose(u[:, 0], tau, rtol=1e-14)
    np.testing.assert_allclose(v, -mu * tau**2 / 2 + sigma**2 * tau**3 / 6, rtol=1e-12, atol=1e-16)
    with pytest.raises(ModelError, match="stable"):
        m.yield_inf()


# ------------------------------------------------------ unit roots and the long end (issue 12)
def test_yield_inf_with_a_unit_root_that_r_does_not_load_on():
    # A* = diag(-1, 0), delta1 = e1: u(tau) = (1 - e^{-tau}, 0) -> (1, 0), so
    # y(inf) = delta0 + a*_1 - V_11 / 2 = 0.04 - 0.5e-4 = 0.03995 (was refused as "not stable")
    m = GaussianAffine(np.diag([-1.0, 0.0]), [0.04, 0.0], np.diag([0.01, 0.01]))
    assert m.yield_inf() == pytest.approx(0.04 - 0.5e-4, abs=1e-15)
    np.testing.assert_allclose(m.u_inf(), [1.0, 0.0], atol=1e-15)
    # the same model in rotated coordinates (A* no longer diagonal), against the rotated closed form
    R = np.array([[0.8, -0.6], [0.6, 0.8]])
    a_star = np.array([0.04, 0.01])
    V = np.diag([1e-4, 4e-4])
    g = GaussianAffine(R @ np.diag([-1.0, 0.0]) @ R.T, a_star, np.sqrt(V), delta1=R[:, 0])
    want = R[:, 0] @ a_star - 0.5 * R[:, 0] @ V @ R[:, 0]
    assert g.yield_inf() == pytest.approx(want, abs=1e-15)
    # and the curve tends to it (y(tau) - y(inf) = O(1/tau))
    assert g.yields([0.01, 0.02], 1e7) == pytest.approx(want, abs=1e-8)


def test_yield_inf_round_off_unit_root_is_refused():
    # an eigenvalue of -5e-17 that the short rate loads on: y(inf) was -2e28
    m = GaussianAffine(np.diag([-1.0, -5e-17]), [0.04, 0.0], np.diag([0.01, 0.01]),
                       delta1=[1.0, 1.0])
    with pytest.raises(ModelError, match=r"delta1\) loads on the unit-root or explosive"):
        m.yield_inf()
    with pytest.raises(ModelError, match="u\\(inf\\)"):
        m.u_inf()


def test_yields_at_absurd_maturity_raise():
    m = GaussianAffine(-1.0, 0.04, 0.01)
    with pytest.raises(ModelError, match=r"tau\[0\] = 1e\+300 years: the bond-price loadings"):
        m.yields(0.03, 1e300)

"""Yield dynamics under P, risk premia, sensitivities and linear curve inversion.

References are independent of the formulas under test: ODEs for the moments (``solve_ivp``),
a Kronecker-product linear solve for the Lyapunov equation, Ito's lemma with finite-difference
derivatives of the pricing function, finite differences in the parameters and Monte Carlo.
"""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from bayesbond.core.affine import GaussianAffine
from bayesbond.errors import DataError, ModelError

XI = np.array([0.03, 0.035, 0.04])


def model3(**kw):
    A = np.array([[-1.0, 1.0, 0.0], [0.0, -0.3, 0.3], [0.0, 0.0, -0.08]])
    Lambda = np.array([[0.2, -0.2, 0.0], [0.0, 0.05, -0.05], [0.0, 0.0, 0.02]])
    a = np.array([0.0, 0.0, 0.08 * 0.045])
    Sigma = np.array([[0.012, 0.0, 0.0], [0.004, 0.009, 0.0], [-0.002, 0.003, 0.006]])
    args = dict(Lambda=Lambda, lambda1=[0.0001, 0.0, -0.0004], delta0=0.002, delta1=[1.0, 0.1, 0])
    args.update(kw)
    return GaussianAffine(A, a, Sigma, **args)


def moment_odes(m, xi0, h):
    n = m.n

    def rhs(_, y):
        mu, C = y[:n], y[n:].reshape(n, n)
        return np.concatenate([m.A @ mu + m.a, (m.A @ C + C @ m.A.T + m.V).ravel()])

    sol = solve_ivp(
        rhs, (0, h), np.r_[xi0, np.zeros(n * n)], method="DOP853", rtol=1e-12, atol=1e-15
    )
    return sol.y[:n, -1], sol.y[n:, -1].reshape(n, n)


def test_conditional_yield_moments_match_moment_odes():
    m = model3()
    tau = np.array([0.0, 0.5, 2.0, 10.0])
    h = 1.5
    mean, cov = m.yield_moments(tau, horizon=h, xi0=XI)
    mu_ref, C_ref = moment_odes(m, XI, h)
    b, c = m.yield_coefficients(tau)
    np.testing.assert_allclose(mean, b @ mu_ref + c, rtol=1e-11)
    np.testing.assert_allclose(cov, b @ C_ref @ b.T, rtol=1e-9, atol=1e-16)
    # horizon 0: the current curve, no uncertainty
    mean0, cov0 = m.yield_moments(tau, horizon=0.0, xi0=XI)
    np.testing.assert_allclose(mean0, m.yields(XI, tau), rtol=1e-13)
    np.testing.assert_allclose(cov0, 0.0, atol=1e-18)


def test_stationary_yield_moments_match_kronecker_lyapunov():
    m = model3()
    tau = np.array([0.25, 5.0, 30.0])
    mean, cov = m.yield_moments(tau)
    n = m.n
    I = np.eye(n)
    P = np.linalg.solve(np.kron(I, m.A) + np.kron(m.A, I), -m.V.ravel()).reshape(n, n)
    mu = np.linalg.solve(m.A, -m.a)
    b, c = m.yield_coefficients(tau)
    np.testing.assert_allclose(mean, b @ mu + c, rtol=1e-12)
    np.testing.assert_allclose(cov, b @ P @ b.T, rtol=1e-10)
    with pytest.raises(DataError, match="xi0"):
        m.yield_moments(tau, horizon=1.0)


def test_instantaneous_excess_return_by_itos_lemma():
    """P-drift of log/price from the pricing function by finite differences (Ito's lemma)."""
    m = model3()
    tau = np.array([0.5, 2.0, 10.0])
    h = 1e-4
    for t, want in zip(tau, m.expected_excess_return(XI, tau), strict=True):
        p = lambda x, s: m.price(x, s)  # noqa: E731
        p0 = p(XI, t)
        dtau = (p(XI, t + h) - p(XI, t - h)) / (2 * h)
        grad = np.array([(p(XI + h * e, t) - p(XI - h * e, t)) / (2 * h) for e in np.eye(3)])
        hess = np.array(
            [
                [
                    (
                        p(XI + h * ei + h * ej, t)
                        - p(XI + h * ei - h * ej, t)
                        - p(XI - h * ei + h * ej, t)
                        + p(XI - h * ei - h * ej, t)
                    )
                    / (4 * h * h)
                    for ej in np.eye(3)
                ]
                for ei in np.eye(3)
            ]
        )
        drift = -dtau + grad @ (m.A @ XI + m.a) + 0.5 * np.sum(m.V * hess)
        assert drift / p0 - m.short_rate(XI) == pytest.approx(want, abs=1e-8)
    u, _ = m.loadings(tau)
    np.testing.assert_allclose(
        m.expected_excess_return(XI, tau, kind="log"),
        m.expected_excess_return(XI, tau) - 0.5 * np.einsum("ki,ij,kj->k", u, m.V, u),
        rtol=1e-14,
    )


def test_holding_period_excess_return():
    m = model3()
    tau = np.array([1.0, 3.0, 10.0])
    h = 1.0
    mu_ref, C_ref = moment_odes(m, XI, h)
    u_rem, v_rem = m.loadings(tau - h)
    log_ref = v_rem - u_rem @ mu_ref - m.log_price(XI, tau) + m.log_price(XI, h)
    np.testing.assert_allclose(
        m.expected_excess_return(XI, tau, horizon=h, kind="log"), log_ref, rtol=1e-10
    )
    # simple returns: Monte Carlo with the exact state law at h
    rng = np.random.default_rng(7)
    xs = rng.multivariate_normal(mu_ref, C_ref, size=200_000)
    gross = np.exp(m.log_price(xs, tau - h) - m.log_price(XI, tau))
    excess = gross - np.exp(-m.log_price(XI, h))
    se = excess.std(axis=0) / np.sqrt(len(xs))
    got = m.expected_excess_return(XI, tau, horizon=h)
    assert np.all(np.abs(excess.mean(axis=0) - got) < 3 * se + 1e-12)
    # a short holding period recovers the instantaneous rate
    eps = 1e-5
    np.testing.assert_allclose(
        m.expected_excess_return(XI, tau, horizon=eps) / eps,
        m.expected_excess_return(XI, tau),
        rtol=1e-3,
    )
    batch = m.expected_excess_return(np.stack([XI, XI]), tau, horizon=h)
    assert batch.shape == (2, 3)
    with pytest.raises(DataError, match="holding period"):
        m.expected_excess_return(XI, [0.5, 2.0], horizon=1.0)


@pytest.mark.parametrize("method", ["eigen", "expm"])
def test_sigma_sensitivities_by_finite_differences(method):
    m = model3()
    tau = np.array([0.0, 1.0, 7.0, 25.0])
    dy = m.dyields_dSigma(tau, method=method)
    dp = m.dprice_dSigma(XI, tau, method=method)
    eps = 1e-7
    for i in range(3):
        for j in range(3):
            S_up, S_dn = m.Sigma.copy(), m.Sigma.copy()
            S_up[i, j] += eps
            S_dn[i, j] -= eps
            up = GaussianAffine(m.A, m.a, S_up, m.Lambda, m.lambda1, m.delta0, m.delta1)
            dn = GaussianAffine(m.A, m.a, S_dn, m.Lambda, m.lambda1, m.delta0, m.delta1)
            fd_y = (up.yields(XI, tau) - dn.yields(XI, tau)) / (2 * eps)
            fd_p = (up.price(XI, tau) - dn.price(XI, tau)) / (2 * eps)
            np.testing.assert_allclose(dy[:, i, j], fd_y, atol=1e-9)
            np.testing.assert_allclose(dp[:, i, j], fd_p, atol=1e-8)


def test_lambda1_sensitivity_by_finite_differences():
    m = model3()
    tau = np.array([0.0, 0.5, 5.0, 30.0])
    d = m.dyields_dlambda1(tau)
    eps = 1e-6
    for i in range(3):
        l_up, l_dn = m.lambda1.copy(), m.lambda1.copy()
        l_up[i] += eps
        l_dn[i] -= eps
        fd = (model3(lambda1=l_up).yields(XI, tau) - model3(lambda1=l_dn).yields(XI, tau)) / (
            2 * eps
        )
        np.testing.assert_allclose(d[:, i], fd, atol=1e-8)


def test_partial_curve_inversion_recovers_lambda1_and_states():
    truth = model3()
    tau = np.array([0.25, 1.0, 2.0, 5.0, 10.0, 20.0])
    rng = np.random.default_rng(3)
    states = XI + rng.normal(scale=0.01, size=(12, 3))
    curves = truth.yields(states, tau)
    blank = model3(lambda1=None)  # same A, a, Sigma, Lambda; lambda1 unknown (zero)
    res = blank.implied_lambda1(curves, tau, states)
    np.testing.assert_allclose(res.lambda1, truth.lambda1, atol=1e-10)
    np.testing.assert_allclose(res.a_star, truth.a_star, atol=1e-10)
    assert res.rank == 3 and np.abs(res.residuals).max() < 1e-12
    # a single curve is enough with >= n maturities
    single = blank.implied_lambda1(curves[0], tau, states[0])
    np.testing.assert_allclose(single.lambda1, truth.lambda1, atol=1e-10)
    np.testing.assert_allclose(truth.implied_states(curves, tau), states, atol=1e-11)
    with pytest.raises(ModelError, match="not identified"):
        blank.implied_lambda1(curves[:, :2], tau[:2], states)
    with pytest.raises(DataError, match="curves"):
        blank.implied_lambda1(curves, tau, states[:3])
    bad = curves.copy()
    bad[2, 4] = np.nan
    with pytest.raises(DataError, match=r"yields\[2, 4\].*tau = 10"):
        blank.implied_lambda1(bad, tau, states)


def test_market_price_of_risk():
    m = model3()
    lam = m.market_price_of_risk(XI)
    np.testing.assert_allclose(m.Sigma @ lam, m.Lambda @ XI + m.lambda1, rtol=1e-12)


def test_sensitivities_with_more_shocks_than_factors():
    """Sigma of shape (n, m), m > n: the derivative has Sigma's shape."""
    A = np.array([[-0.5, 0.2], [0.0, -0.1]])
    S = np.array([[0.01, 0.002, 0.001], [0.0, 0.008, 0.003]])
    m = GaussianAffine(A, [0.0, 0.002], S)
    tau = np.array([2.0, 15.0])
    xi = np.array([0.03, 0.02])
    d = m.dyields_dSigma(tau)
    assert d.shape == (2, 2, 3)
    eps = 1e-7
    for i in range(2):
        for j in range(3):
            up, dn = S.copy(), S.copy()
            up[i, j] += eps
            dn[i, j] -= eps
            fd = (
                GaussianAffine(A, [0.0, 0.002], up).yields(xi, tau)
                - GaussianAffine(A, [0.0, 0.002], dn).yields(xi, tau)
            ) / (2 * eps)
            np.testing.assert_allclose(d[:, i, j], fd, atol=1e-9)

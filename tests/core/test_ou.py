"""OU moments, transition, ACF, spectrum and simulation against independent references.

References used: numerical quadrature of the mean and covariance integrals (scipy.integrate),
Monte Carlo of a fine Euler scheme, closed forms of the 1-D (Vasicek) process, the Brownian-motion
limit A = 0, and numerical Fourier transforms of the autocovariance.
"""

import numpy as np
import pytest
import scipy.integrate as si
import scipy.linalg as sla

from bayesbond.core.ou import OU, euler_error, exact_transition, phi1, transition_loglik
from bayesbond.errors import DataError, ModelError

SIGMA2 = np.array([[0.2, 0.0], [0.05, 0.15]])
V2 = SIGMA2 @ SIGMA2.T
A_CASES = {
    "stable": np.array([[-0.5, 0.3], [0.1, -1.2]]),
    "defective": np.array([[-0.7, 1.0], [0.0, -0.7]]),
    "singular": np.array([[0.0, 0.0], [0.4, -1.0]]),
    "explosive": np.array([[0.2, 0.0], [0.1, -0.3]]),
    "zero": np.zeros((2, 2)),
}
a2 = np.array([0.03, -0.02])


def _quad_cov(A, V, t):
    def f(s):
        E = sla.expm(s * A)
        return E @ V @ E.T

    return si.quad_vec(f, 0.0, t, epsabs=1e-14, epsrel=1e-12)[0]


def _quad_mean_const(A, a, t):
    return si.quad_vec(lambda s: sla.expm(s * A) @ a, 0.0, t, epsabs=1e-14, epsrel=1e-12)[0]


@pytest.mark.parametrize("name", list(A_CASES))
def test_transition_matches_quadrature(name):
    A = A_CASES[name]
    ou = OU(A, a2, SIGMA2)
    dts = np.array([0.01, 0.25, 2.0, 7.0])
    Phi, c, Q = ou.transition(dts)
    assert Phi.shape == (4, 2, 2) and c.shape == (4, 2) and Q.shape == (4, 2, 2)
    for k, d in enumerate(dts):
        np.testing.assert_allclose(Phi[k], sla.expm(d * A), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c[k], _quad_mean_const(A, a2, d), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(Q[k], _quad_cov(A, V2, d), rtol=1e-9, atol=1e-14)
        # scalar dt gives the same as the vectorised call
        P1, c1, Q1 = ou.transition(d)
        np.testing.assert_allclose(P1, Phi[k], rtol=1e-14)
        np.testing.assert_allclose(Q1, Q[k], rtol=1e-14)


def test_mean_and_cov_use_transition():
    ou = OU(A_CASES["defective"], a2, SIGMA2)
    x0 = np.array([0.1, -0.2])
    t = 1.7
    ref_mean = sla.expm(t * ou.A) @ x0 + _quad_mean_const(ou.A, a2, t)
    np.testing.assert_allclose(ou.mean(x0, t), ref_mean, rtol=1e-11)
    np.testing.assert_allclose(ou.cov(t), _quad_cov(ou.A, V2, t), rtol=1e-9)
    assert ou.mean(x0, [0.5, t]).shape == (2, 2)
    np.testing.assert_allclose(ou.mean(x0, 0.0), x0, atol=1e-15)
    np.testing.assert_allclose(ou.cov(0.0), 0.0, atol=1e-15)


@pytest.mark.parametrize("kappa", [0.8, 1e-12, 0.0, -0.3])
def test_one_dimensional_closed_form_matches_general_route(kappa):
    """The 1-D phi1 closed form equals the n-D matrix-exponential route (kappa of any sign, 0,
    and a near unit root, where the Lyapunov route would cancel catastrophically)."""
    dts = np.array([1e-6, 1 / 12, 1.0, 5.0])
    a, v = 0.03, 0.02**2
    Phi, c, Q = exact_transition(-kappa, a, v, dts)
    # general route via a block-diagonal 2-D embedding (forces the n-D code path)
    A2 = np.diag([-kappa, -1.0])
    P2, c2, Q2 = exact_transition(A2, [a, 0.0], np.diag([v, 1.0]), dts)
    np.testing.assert_allclose(Phi[:, 0, 0], P2[:, 0, 0], rtol=1e-13)
    np.testing.assert_allclose(c[:, 0], c2[:, 0], rtol=1e-11)
    np.testing.assert_allclose(Q[:, 0, 0], Q2[:, 0, 0], rtol=1e-10)


def test_phi1_limits():
    z = np.array([-1e-12, 0.0, 1e-12, 1e-3, -2.0])
    ref = np.array([1 - 5e-13, 1.0, 1 + 5e-13, np.expm1(1e-3) / 1e-3, (1 - np.exp(-2.0)) / 2.0])
    np.testing.assert_allclose(phi1(z), ref, rtol=1e-14)


def test_vasicek_closed_forms():
    k, th, s = 0.5, 0.04, 0.01
    ou = OU.vasicek(k, th, s)
    assert ou.scalar and ou.kappa == k and ou.theta == pytest.approx(th) and ou.sigma == s
    t = np.array([0.1, 1.0, 10.0])
    np.testing.assert_allclose(ou.mean(0.02, t), th + (0.02 - th) * np.exp(-k * t), rtol=1e-14)
    np.testing.assert_allclose(ou.cov(t), s**2 * (1 - np.exp(-2 * k * t)) / (2 * k), rtol=1e-13)
    assert ou.stationary_mean() == pytest.approx(th, rel=1e-14)
    assert ou.stationary_cov() == pytest.approx(s**2 / (2 * k), rel=1e-14)
    assert ou.half_life == pytest.approx(np.log(2) / k, rel=1e-14)
    assert ou.acf(ou.half_life) == pytest.approx(0.5, rel=1e-13)
    np.testing.assert_allclose(ou.acf([-2.0, 0.0, 3.0]), np.exp(-k * np.array([2.0, 0, 3])))
    w = np.array([0.0, 0.3, 4.0])
    np.testing.assert_allclose(ou.spectrum(w), s**2 / (w**2 + k**2), rtol=1e-13)


def test_brownian_motion_with_drift_is_the_zero_limit():
    ou = OU(np.zeros((2, 2)), a2, SIGMA2)
    x0 = np.array([1.0, 2.0])
    t = np.array([0.5, 3.0])
    np.testing.assert_allclose(ou.mean(x0, t), x0 + t[:, None] * a2, rtol=1e-14)
    np.testing.assert_allclose(ou.cov(t), t[:, None, None] * V2, rtol=1e-13)
    with pytest.raises(ModelError, match="not stable"):
        ou.stationary_mean()
    with pytest.raises(ModelError, match="not stable"):
        ou.stationary_cov()
    bm = OU(0.0, 0.01, 0.2)
    assert bm.mean(0.0, 4.0) == pytest.approx(0.04, rel=1e-14)
    assert bm.cov(4.0) == pytest.approx(0.16, rel=1e-14)
    with pytest.raises(ModelError, match="kappa = 0"):
        _ = bm.theta


@pytest.mark.parametrize("name", ["explosive", "singular"])
def test_stationary_quantities_raise_for_unstable(name):
    ou = OU(A_CASES[name], a2, SIGMA2)
    for method in (ou.stationary_mean, ou.stationary_cov, lambda: ou.acf(1.0),
                   lambda: ou.spectrum(1.0), lambda: ou.half_life):
        with pytest.raises(ModelError, match="not stable"):
            method()
    # finite horizon moments still exist
    assert np.all(np.isfinite(ou.cov(3.0)))


def test_stationary_moments_lyapunov_residual_and_limit():
    rng = np.random.default_rng(3)
    M = rng.normal(size=(3, 3))
    A = M - 3.5 * np.eye(3)
    S = np.tril(rng.normal(size=(3, 3)))
    a = rng.normal(size=3)
    ou = OU(A, a, S)
    P = ou.stationary_cov()
    assert np.max(np.abs(A @ P + P @ A.T + S @ S.T)) < 1e-14
    np.testing.assert_allclose(A @ ou.stationary_mean() + a, 0.0, atol=1e-14)
    # long-horizon conditional moments converge to the stationary ones
    np.testing.assert_allclose(ou.cov(60.0), P, rtol=1e-10)
    np.testing.assert_allclose(ou.mean(np.ones(3), 60.0), ou.stationary_mean(), rtol=1e-10)


def test_moments_match_fine_euler_monte_carlo():
    """Conditional mean and covariance at t = 1 vs a 400-step Euler scheme with 40,000 paths."""
    A = A_CASES["defective"]
    ou = OU(A, a2, SIGMA2)
    x0 = np.array([0.3, -0.1])
    t, n_steps, n_paths = 1.0, 400, 40_000
    h = t / n_steps
    rng = np.random.default_rng(11)
    x = np.tile(x0, (n_paths, 1))
    for _ in range(n_steps):
        x = x + (x @ A.T + a2) * h + np.sqrt(h) * rng.standard_normal((n_paths, 2)) @ SIGMA2.T
    mean, cov = ou.mean(x0, t), ou.cov(t)
    se_mean = np.sqrt(np.diag(cov) / n_paths)
    assert np.all(np.abs(x.mean(0) - mean) < 4 * se_mean)
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.04, atol=1e-4)


def test_euler_error_is_second_order():
    A, a = A_CASES["stable"], a2
    errs = [euler_error(A, a, V2, d) for d in (0.02, 0.01)]
    for comp in range(3):
        ratio = np.max(np.abs(errs[0][comp])) / np.max(np.abs(errs[1][comp]))
        assert 3.8 < ratio < 4.2
    d = 1e-3
    err = euler_error(A, a, V2, d)
    np.testing.assert_allclose(err.Phi, -A @ A * d**2 / 2, rtol=2e-3)
    np.testing.assert_allclose(err.c, -A @ a * d**2 / 2, rtol=2e-3)
    np.testing.assert_allclose(err.Q, -(A @ V2 + V2 @ A.T) * d**2 / 2, rtol=2e-3)
    ou = OU.vasicek(0.5, 0.04, 0.01)
    assert ou.euler_transition(0.1).Phi == pytest.approx(0.95)
    assert ou.euler_error(0.1).Phi == pytest.approx(0.95 - np.exp(-0.05), rel=1e-12)


def test_autocov_and_spectrum_match_fourier_pair():
    ou = OU(A_CASES["stable"], a2, SIGMA2)
    P = ou.stationary_cov()
    C = ou.autocov([0.0, 1.3, -1.3])
    np.testing.assert_allclose(C[0], P, rtol=1e-13)
    np.testing.assert_allclose(C[1], sla.expm(1.3 * ou.A) @ P, rtol=1e-12)
    np.testing.assert_allclose(C[2], C[1].T, rtol=1e-14)
    R = ou.acf(0.0)
    np.testing.assert_allclose(np.diag(R), 1.0, rtol=1e-14)
    # S(w) = int C(tau) e^{-i w tau} dtau (numerical), and int S dw / 2 pi = P
    w = 0.7

    def integrand(tau):
        Ct = sla.expm(abs(tau) * ou.A) @ P
        Ct = Ct if tau >= 0 else Ct.T
        return np.concatenate([(Ct * np.cos(w * tau)).ravel(), (-Ct * np.sin(w * tau)).ravel()])

    num = si.quad_vec(integrand, -60.0, 0.0, epsabs=1e-13)[0] + si.quad_vec(
        integrand, 0.0, 60.0, epsabs=1e-13)[0]
    S_num = num[:4].reshape(2, 2) + 1j * num[4:].reshape(2, 2)
    np.testing.assert_allclose(ou.spectrum(w), S_num, rtol=1e-8, atol=1e-12)
    tot = si.quad_vec(lambda f: ou.spectrum(f).real, -np.inf, np.inf, epsabs=1e-13)[0]
    np.testing.assert_allclose(tot / (2 * np.pi), P, rtol=1e-7)
    assert ou.spectrum([0.1, 0.2]).shape == (2, 2, 2)


def test_half_life_nd_is_slowest_mode():
    ou = OU(np.diag([-2.0, -0.25]), [0, 0], np.eye(2))
    assert ou.half_life == pytest.approx(np.log(2) / 0.25)


def test_simulate_irregular_grid_moments_and_shapes():
    ou = OU(A_CASES["defective"], a2, SIGMA2)
    x0 = np.array([0.3, -0.1])
    t = np.array([0.0, 0.05, 0.3, 0.31, 1.5])
    x = ou.simulate(x0, t, n_paths=40_000, rng=5)
    assert x.shape == (40_000, 5, 2)
    np.testing.assert_allclose(x[:, 0], np.broadcast_to(x0, (40_000, 2)))
    for k in (2, 4):
        m, c = ou.mean(x0, t[k]), ou.cov(t[k])
        assert np.all(np.abs(x[:, k].mean(0) - m) < 4 * np.sqrt(np.diag(c) / 40_000))
        np.testing.assert_allclose(np.cov(x[:, k].T), c, rtol=0.04, atol=1e-5)
    # the joint law: Cov(x_t4, x_t2) = e^{(t4 - t2) A} Cov(x_t2)
    cross = np.cov(x[:, 4].T, x[:, 2].T)[:2, 2:]
    np.testing.assert_allclose(cross, sla.expm(1.2 * ou.A) @ ou.cov(0.3), rtol=0.06, atol=2e-4)


def test_simulate_one_dimensional_regular_grid_stationary_start():
    k, th, s = 2.0, 0.05, 0.1
    ou = OU.vasicek(k, th, s)
    dt = 0.1
    x = ou.simulate(None, n_steps=3, dt=dt, n_paths=100_000, rng=7)
    assert x.shape == (100_000, 4)
    var = s**2 / (2 * k)
    assert np.all(np.abs(x.mean(0) - th) < 4 * np.sqrt(var / 100_000))
    np.testing.assert_allclose(x.var(0), var, rtol=0.02)
    # lag-1 autocorrelation e^{-k dt}
    r = np.corrcoef(x[:, 1], x[:, 2])[0, 1]
    assert r == pytest.approx(np.exp(-k * dt), abs=0.01)
    # regular 1-D grid (linear filter) agrees in law with the irregular route
    t = np.array([0.0, 0.1, 0.2, 0.3 + 1e-9])
    y = ou.simulate(0.0, t, n_paths=100_000, rng=8)
    z = ou.simulate(0.0, t[:3], n_paths=100_000, rng=8)
    np.testing.assert_allclose(y[:, 2].mean(), ou.mean(0.0, 0.2), rtol=0.01)
    np.testing.assert_allclose(z[:, 2].var(), ou.cov(0.2), rtol=0.02)


def test_simulate_singular_sigma():
    """A rank-deficient Sigma (one shock driving two states) still simulates exactly."""
    ou = OU(np.diag([-1.0, -1.0]), [0.0, 0.0], np.array([[0.1], [0.1]]))
    x = ou.simulate(np.zeros(2), n_steps=2, dt=0.5, n_paths=2000, rng=1)
    np.testing.assert_allclose(x[:, :, 0], x[:, :, 1], atol=1e-12)


def test_bad_input_errors():
    with pytest.raises(ModelError, match="square"):
        OU(np.ones((2, 3)), [0, 0], np.eye(2))
    with pytest.raises(ModelError, match="a must have shape"):
        OU(np.eye(2), [0, 0, 0], np.eye(2))
    with pytest.raises(ModelError, match="Sigma must have shape"):
        OU(np.eye(2), [0, 0], np.eye(3))
    ou = OU.vasicek(1.0, 0.0, 1.0)
    with pytest.raises(ModelError, match="increasing"):
        ou.simulate(0.0, [0.0, 1.0, 1.0])
    with pytest.raises(ModelError, match="n_steps"):
        ou.simulate(0.0)
    with pytest.raises(ModelError, match="1-D processes only"):
        _ = OU(np.eye(2) * -1, [0, 0], np.eye(2)).kappa


def test_transition_loglik_matches_scipy_densities():
    from scipy import stats

    ou = OU(A_CASES["stable"], a2, SIGMA2)
    x = ou.simulate(np.zeros(2), t=np.array([0.0, 0.1, 0.4, 0.5, 1.3]), rng=2)[0]
    dts = np.diff([0.0, 0.1, 0.4, 0.5, 1.3])
    ref = 0.0
    for k, d in enumerate(dts):
        Phi, c, Q = ou.transition(d)
        ref += stats.multivariate_normal(Phi @ x[k] + c, Q).logpdf(x[k + 1])
    assert ou.loglik(x, dts) == pytest.approx(ref, rel=1e-12)
    P, mu = ou.stationary_cov(), ou.stationary_mean()
    ref0 = ref + stats.multivariate_normal(mu, P).logpdf(x[0])
    assert ou.loglik(x, dts, stationary_init=True) == pytest.approx(ref0, rel=1e-12)
    # regular grid (scalar dt) and the 1-D irregular fast path
    Phi, c, Q = ou.transition(0.25)
    ref_r = sum(stats.multivariate_normal(Phi @ x[k] + c, Q).logpdf(x[k + 1]) for k in range(4))
    assert ou.loglik(x, 0.25) == pytest.approx(ref_r, rel=1e-12)
    v = OU.vasicek(0.7, 0.05, 0.02)
    y = np.array([0.04, 0.045, 0.05, 0.047])
    d1 = np.array([0.1, 0.5, 0.02])
    ref1 = sum(
        stats.norm(v.mean(y[k], d1[k]), np.sqrt(v.cov(d1[k]))).logpdf(y[k + 1]) for k in range(3)
    )
    assert v.loglik(y, d1) == pytest.approx(ref1, rel=1e-12)
    with pytest.raises(ModelError, match="one per step"):
        v.loglik(y, d1[:2])


@pytest.mark.parametrize("stationary_init", [False, True])
def test_transition_loglik_pointwise_sums_to_total(stationary_init):
    """``pointwise=True`` gives one log-density per transition (and x_0 first with
    ``stationary_init``) summing to the total: regular and irregular, 1-D and n-D."""
    ou = OU(A_CASES["stable"], a2, SIGMA2)
    t = np.array([0.0, 0.1, 0.4, 0.5, 1.3])
    x = ou.simulate(np.zeros(2), t=t, rng=2)[0]
    y = np.array([0.04, 0.045, 0.05, 0.047, 0.052])
    V2 = SIGMA2 @ SIGMA2.T
    for data, A, a, V in ((x, ou.A, ou.a, V2), (y, -0.7, 0.7 * 0.05, 0.02**2)):
        for dt in (0.25, np.diff(t)):
            pw = transition_loglik(data, dt, A, a, V, stationary_init, pointwise=True)
            assert pw.shape == (len(data) - 1 + stationary_init,)
            total = transition_loglik(data, dt, A, a, V, stationary_init)
            assert np.sum(pw) == pytest.approx(total, rel=1e-12)
            if stationary_init:
                rest = transition_loglik(data, dt, A, a, V, pointwise=True)
                np.testing.assert_allclose(pw[1:], rest, rtol=1e-12)
    bad = transition_loglik(x, 0.25, ou.A, ou.a, -np.eye(2), stationary_init, pointwise=True)
    assert bad.shape == (4 + stationary_init,) and np.all(bad == -np.inf)


# ------------------------------------------------- long horizons and bad inputs (issue 12, sec. 2)
_S = np.array([[1.0, 0.3], [0.2, 1.0]])
_A_SLOW_FAST = _S @ np.diag([-1e-6, -5.0]) @ np.linalg.inv(_S)
_SIG = np.array([[0.01, 0.0], [0.002, 0.02]])


def _cov_closed_form(lam, t):
    from bayesbond.core.affine_loadings import phi1

    Si = np.linalg.inv(_S)
    Vt = Si @ _SIG @ _SIG.T @ Si.T
    lam = np.asarray(lam)
    return _S @ (Vt * t * phi1((lam[:, None] + lam[None, :]) * t)) @ _S.T


@pytest.mark.parametrize("t", [10.0, 30.0, 100.0])
def test_cov_and_transition_slow_fast_long_horizon(t):
    ou = OU(_A_SLOW_FAST, [0.001, 0.0], _SIG)
    ref = _cov_closed_form([-1e-6, -5.0], t)
    tol = 1e-11 * np.max(np.abs(ref))
    np.testing.assert_allclose(ou.cov(t), ref, rtol=0, atol=tol)
    np.testing.assert_allclose(ou.transition(t).Q, ref, rtol=0, atol=tol)


def test_downstream_of_long_horizon_cov():
    from bayesbond.core.affine import GaussianAffine

    m = GaussianAffine(_A_SLOW_FAST, [0.001, 0.0], _SIG, lambda1=[0.001, -0.0005])
    x0 = np.array([0.03, 0.0])
    ref = _cov_closed_form([-1e-6, -5.0], 10.0)
    # yield moments: variances were negative (-26.5); exactly B C B' with the closed-form C
    _, C = m.yield_moments([1.0, 5.0, 10.0], horizon=10.0, xi0=x0)
    b, _ = m.yield_coefficients([1.0, 5.0, 10.0])
    np.testing.assert_allclose(C, b @ ref @ b.T, rtol=1e-10)
    assert np.all(np.diag(C) > 0)
    # holding-period excess return: was -1.5 (a negative premium from a positive lambda1);
    # the simple return of the closed form over ten years, given the exact mean and covariance
    tau = np.array([11.0, 20.0])
    got = m.expected_excess_return(x0, tau, horizon=10.0)
    Phi, c, _ = m.ou_P().transition(10.0)
    mh = Phi @ x0 + c
    u_rem, v_rem = m.loadings(tau - 10.0)
    var = np.einsum("ki,ij,kj->k", u_rem, ref, u_rem)
    want = np.exp(v_rem - u_rem @ mh + 0.5 * var - m.log_price(x0, tau)) - 1 / m.price(x0, 10.0)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert np.all(got > 0) and np.all(m.expected_excess_return(x0, tau) > 0)
    # a ten-year simulation step: was refused ("not positive semi-definite")
    x = m.ou_P().simulate(x0, n_steps=200, dt=10.0, n_paths=400, rng=3)
    assert x.shape == (400, 201, 2) and np.all(np.isfinite(x))


def test_bad_horizons_frequencies_and_complex_drift():
    ou = OU(_A_SLOW_FAST, [0.001, 0.0], _SIG)
    with pytest.raises(DataError, match=r"t = -1.0: a horizon must be finite and >= 0"):
        ou.cov(-1)
    with pytest.raises(DataError, match=r"t = -1.0: a horizon"):
        ou.mean([0.0, 0.0], -1)
    with pytest.raises(DataError, match=r"t = nan"):
        ou.cov(np.nan)
    with pytest.raises(DataError, match=r"dt = nan"):
        ou.transition(np.nan)
    with pytest.raises(DataError, match=r"t\[1\] = -2.0"):
        OU(-0.5, 0.02, 0.01).mean(0.03, [1.0, -2.0])
    with pytest.raises(DataError, match=r"freq\[0\] = nan: frequencies must be finite"):
        ou.spectrum(np.nan)
    with pytest.raises(DataError, match=r"lags\[0\] = nan"):
        ou.acf(np.nan)
    with pytest.raises(ModelError, match="A is complex"):
        OU(np.array([[-1.0 + 0.2j, 0.0], [0.0, -1.0]]), [0.0, 0.0], np.eye(2))
    with pytest.raises(ModelError, match="Sigma is complex"):
        OU(-1.0, 0.0, 0.01 + 0.01j)


def test_stationary_cov_tiny_drift_and_round_off_unit_root():
    # A = -1e-300 I: P = V / 2e-300 (was the wrong sign)
    np.testing.assert_allclose(
        OU(-1e-300 * np.eye(2), [0.0, 0.0], np.eye(2)).stationary_cov(), 5e299 * np.eye(2),
        rtol=1e-14,
    )
    # an eigenvalue -5e-17 beside -1 is a unit root, not a stable mode
    with pytest.raises(ModelError, match="not stable"):
        OU(np.diag([-5e-17, -1.0]), [0.0, 0.0], np.eye(2)).stationary_cov()

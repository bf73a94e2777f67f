"""Kalman filter and smoother against brute-force Gaussian algebra and statsmodels."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from bayesbond.core.kalman import kalman_filter, kalman_loglik, kalman_smoother
from bayesbond.errors import DataError, ModelError


def _model(n, p, rng):
    Phi = 0.3 * rng.standard_normal((n, n)) + 0.5 * np.eye(n)
    Phi /= max(1.0, 1.2 * np.max(np.abs(np.linalg.eigvals(Phi))))
    c = rng.standard_normal(n)
    B = rng.standard_normal((n, n))
    Q = 0.3 * B @ B.T + 0.1 * np.eye(n)
    Z = rng.standard_normal((p, n))
    d = rng.standard_normal(p)
    h = rng.uniform(0.1, 0.5, p)
    x0 = rng.standard_normal(n)
    C = rng.standard_normal((n, n))
    P0 = C @ C.T + 0.2 * np.eye(n)
    return Phi, c, Q, Z, d, h, x0, P0


def _joint(Phi, c, Q, Z, d, h, x0, P0, T):
    """Mean and covariance of the stacked states and observations (exact, by construction)."""
    n = Phi.shape[0]
    mx = np.zeros((T, n))
    Cx = np.zeros((T, n, T, n))
    mx[0] = x0
    Cx[0, :, 0, :] = P0
    for t in range(1, T):
        mx[t] = c + Phi @ mx[t - 1]
        for s in range(t):  # Cov(x_t, x_s) = Phi Cov(x_{t-1}, x_s)
            Cx[t, :, s, :] = Phi @ Cx[t - 1, :, s, :]
            Cx[s, :, t, :] = Cx[t, :, s, :].T
        Cx[t, :, t, :] = Phi @ Cx[t - 1, :, t - 1, :] @ Phi.T + Q
    Cx = Cx.reshape(T * n, T * n)
    Zb = np.kron(np.eye(T), Z)
    my = (mx @ Z.T + d).ravel()
    Cy = Zb @ Cx @ Zb.T + np.diag(np.tile(h, T))
    Cxy = Cx @ Zb.T
    return mx.ravel(), Cx, my, Cy, Cxy


@pytest.mark.parametrize("missing", [False, True])
def test_loglik_and_smoother_equal_brute_force(missing):
    rng = np.random.default_rng(1 + missing)
    n, p, T = 2, 3, 7
    Phi, c, Q, Z, d, h, x0, P0 = _model(n, p, rng)
    y = rng.standard_normal((T, p)) * 2 + d
    if missing:
        y[1, 0] = np.nan
        y[3, :] = np.nan  # a date with nothing observed
        y[5, [0, 2]] = np.nan
    obs = ~np.isnan(y.ravel())
    mx, Cx, my, Cy, Cxy = _joint(Phi, c, Q, Z, d, h, x0, P0, T)
    ref = multivariate_normal(my[obs], Cy[np.ix_(obs, obs)]).logpdf(y.ravel()[obs])
    res = kalman_filter(y, Phi, c, Q, Z, d, h, x0, P0)
    assert res.loglik == pytest.approx(ref, rel=1e-12, abs=1e-10)
    assert res.n_obs == obs.sum()
    assert kalman_loglik(y, Phi, c, Q, Z, d, np.diag(h), x0, P0) == pytest.approx(ref, rel=1e-12)
    # smoother = conditional mean/cov of all states given all observations
    K = np.linalg.solve(Cy[np.ix_(obs, obs)], Cxy[:, obs].T).T
    xs_ref = mx + K @ (y.ravel()[obs] - my[obs])
    Ps_ref = Cx - K @ Cxy[:, obs].T
    xs, Ps = kalman_smoother(res)
    np.testing.assert_allclose(xs.ravel(), xs_ref, rtol=1e-10, atol=1e-10)
    for t in range(T):
        blk = slice(t * n, (t + 1) * n)
        np.testing.assert_allclose(Ps[t], Ps_ref[blk, blk], rtol=1e-9, atol=1e-11)
    # filtered state at the last date equals the smoothed one; filter = conditional on the past
    past = obs & (np.arange(T * p) < 3 * p)
    Kp = np.linalg.solve(Cy[np.ix_(past, past)], Cxy[:, past].T).T
    xf_ref = (mx + Kp @ (y.ravel()[past] - my[past]))[2 * n : 3 * n]
    np.testing.assert_allclose(res.x_filt[2], xf_ref, rtol=1e-10, atol=1e-10)


def test_steady_state_path_matches_brute_force_and_statsmodels():
    """Long sample (the frozen steady-state gain is used) against statsmodels' filter."""
    sm = pytest.importorskip("statsmodels.tsa.statespace.kalman_smoother")
    rng = np.random.default_rng(7)
    n, p, T = 3, 8, 400
    Phi, c, Q, Z, d, h, _, _ = _model(n, p, rng)
    h = h * 1e-3  # precise measurements, as for yields
    x = np.zeros((T, n))
    x[0] = np.linalg.solve(np.eye(n) - Phi, c)
    for t in range(1, T):
        x[t] = c + Phi @ x[t - 1] + rng.multivariate_normal(np.zeros(n), Q)
    y = x @ Z.T + d + rng.standard_normal((T, p)) * np.sqrt(h)
    res = kalman_filter(y, Phi, c, Q, Z, d, h)
    assert res.steady_from is not None and res.steady_from < 50
    ks = sm.KalmanSmoother(k_endog=p, k_states=n, k_posdef=n)
    ks.bind(y.copy())
    ks["design"], ks["obs_intercept"], ks["obs_cov"] = Z, d, np.diag(h)
    ks["transition"], ks["state_intercept"], ks["selection"] = Phi, c, np.eye(n)
    ks["state_cov"] = Q
    ks.initialize_stationary()
    out = ks.smooth()
    assert res.loglik == pytest.approx(out.llf, rel=1e-9)
    np.testing.assert_allclose(res.x_filt, out.filtered_state.T, rtol=1e-7, atol=1e-9)
    xs, Ps = kalman_smoother(res)
    np.testing.assert_allclose(xs, out.smoothed_state.T, rtol=1e-7, atol=1e-9)
    Ps_sm = np.moveaxis(out.smoothed_state_cov, -1, 0)
    np.testing.assert_allclose(Ps, Ps_sm, rtol=1e-6, atol=1e-14)


def test_bad_input_is_named():
    rng = np.random.default_rng(0)
    Phi, c, Q, Z, d, h, x0, P0 = _model(2, 3, rng)
    y = rng.standard_normal((5, 3))
    with pytest.raises(ModelError, match="Z has 3 rows but y has 2"):
        kalman_filter(y[:, :2], Phi, c, Q, Z, d, h, x0, P0)
    with pytest.raises(ModelError, match="diagonal"):
        kalman_filter(y, Phi, c, Q, Z, d, np.ones((3, 3)), x0, P0)
    with pytest.raises(ModelError, match="bad rows \\[1\\]"):
        kalman_filter(y, Phi, c, Q, Z, d, [1.0, 0.0, 1.0], x0, P0)
    y[2, 1] = np.inf
    with pytest.raises(DataError, match="row 2, column 1"):
        kalman_filter(y, Phi, c, Q, Z, d, h, x0, P0)
    y[2, 1] = 0.0
    with pytest.raises(ModelError, match="spectral radius"):
        kalman_filter(y, 1.5 * np.eye(2), c, Q, Z, d, h)


@pytest.mark.parametrize("n, p, T", [(1, 3, 5), (2, 4, 12), (3, 8, 300)])
def test_compiled_loglik_equals_brute_force_and_the_filter(n, p, T):
    """kalman_loglik's compiled loop (every value observed): the exact joint Gaussian density
    (short panels, before and after the gain freezes) and the numpy filter to 1e-12; a gap in
    the data or a singular initial covariance falls back to the numpy filter."""
    from bayesbond.core import kalman_fast

    if not kalman_fast.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(n * 100 + T)
    Phi, c, Q, Z, d, h, x0, P0 = _model(n, p, rng)
    y = rng.standard_normal((T, p)) + d
    fast = kalman_fast.loglik_full(y - d, Phi, c, Q, Z, h, x0, P0)
    ref = kalman_filter(y, Phi, c, Q, Z, d, h, x0, P0)
    assert fast == pytest.approx(ref.loglik, rel=1e-12)
    assert kalman_loglik(y, Phi, c, Q, Z, d, h, x0, P0) == pytest.approx(ref.loglik, rel=1e-12)
    if T <= 12:
        _, _, my, Cy, _ = _joint(Phi, c, Q, Z, d, h, x0, P0, T)
        exact = multivariate_normal(my, Cy).logpdf(y.ravel())
        assert fast == pytest.approx(exact, rel=1e-10)
    else:
        assert ref.steady_from is not None and ref.steady_from < T  # the frozen-gain path ran
    y[T // 2, 0] = np.nan  # a gap: the numpy filter
    assert kalman_loglik(y, Phi, c, Q, Z, d, h, x0, P0) == pytest.approx(
        kalman_filter(y, Phi, c, Q, Z, d, h, x0, P0).loglik, rel=1e-12)
    y[T // 2, 0] = 0.0
    P0s = np.zeros((n, n))  # singular: the compiled loop refuses, the numpy one handles it
    assert kalman_loglik(y, Phi, c, Q, Z, d, h, x0, P0s) == pytest.approx(
        kalman_filter(y, Phi, c, Q, Z, d, h, x0, P0s).loglik, rel=1e-12)

"""Zero-bond portfolios: local moments, the local efficient frontier and finite-horizon values.

References: per-bond excess returns and the bond-return covariance built by finite differences of
log prices; a direct KKT solve of the mean-variance problem on the (singular) covariance; the norm
of the market price of risk; Monte Carlo of the P dynamics simulated by the OU class.
"""

import numpy as np
import pytest

from bayesbond.core.affine import GaussianAffine
from bayesbond.core.ou import OU
from bayesbond.errors import DataError

XI = np.array([0.03, 0.035, 0.04])
TAU = np.array([0.5, 1.0, 2.0, 5.0, 10.0, 30.0])


def model3():
    A = np.array([[-1.0, 1.0, 0.0], [0.0, -0.3, 0.3], [0.0, 0.0, -0.08]])
    Lambda = np.array([[0.2, -0.2, 0.0], [0.0, 0.05, -0.05], [0.0, 0.0, 0.02]])
    Sigma = np.array([[0.012, 0.0, 0.0], [0.004, 0.009, 0.0], [-0.002, 0.003, 0.006]])
    return GaussianAffine(A, [0, 0, 0.0036], Sigma, Lambda=Lambda, lambda1=[0.001, 0.0, -0.0004])


def return_covariance_fd(m, xi, tau, h=1e-6):
    """Covariance rate of bond returns: d log p = J dxi + ..., J by finite differences."""
    J = np.stack(
        [
            (m.log_price(xi + h * e, tau) - m.log_price(xi - h * e, tau)) / (2 * h)
            for e in np.eye(3)
        ],
        axis=1,
    )
    return J @ m.V @ J.T


def test_portfolio_moments():
    m = model3()
    w = np.array([0.3, -0.2, 0.5, 0.1, 0.4, -0.3])
    mean, var = m.portfolio_moments(XI, TAU, w)
    assert mean == pytest.approx(w @ m.expected_excess_return(XI, TAU), rel=1e-13)
    assert var == pytest.approx(w @ return_covariance_fd(m, XI, TAU) @ w, rel=1e-7)
    W = np.stack([w, -w, np.ones(6) / 6])
    means, vars_ = m.portfolio_moments(XI, TAU, W)
    assert (
        means.shape == (3,) and means[1] == pytest.approx(-mean) and vars_[1] == pytest.approx(var)
    )


def test_local_frontier_against_kkt_on_singular_covariance():
    m = model3()
    mu = m.expected_excess_return(XI, TAU)
    C = return_covariance_fd(m, XI, TAU)
    assert np.linalg.matrix_rank(C, tol=1e-10 * np.abs(C).max()) == 3  # singular: 6 bonds, 3 shocks
    targets = np.array([0.01, 0.02, -0.005])
    fr = m.efficient_frontier(XI, TAU, targets)
    # KKT of min w'Cw s.t. mu'w = target on the singular C: w = g C^+ mu
    Cp = np.linalg.pinv(C, rcond=1e-10)
    s2 = mu @ Cp @ mu
    for t, w, vol in zip(targets, fr.weights, fr.volatility, strict=True):
        np.testing.assert_allclose(w, t * Cp @ mu / s2, rtol=1e-6, atol=1e-8)
        mean, var = m.portfolio_moments(XI, TAU, w)
        assert mean == pytest.approx(t, rel=1e-10)
        assert np.sqrt(var) == pytest.approx(vol, rel=1e-10)
        assert vol == pytest.approx(abs(t) / np.sqrt(s2), rel=1e-6)
    assert fr.max_sharpe == pytest.approx(np.linalg.norm(m.market_price_of_risk(XI)), rel=1e-12)
    # no portfolio beats the frontier: random portfolios have Sharpe ratio <= max_sharpe
    W = np.random.default_rng(0).normal(size=(500, 6))
    means, vars_ = m.portfolio_moments(XI, TAU, W)
    assert np.all(np.abs(means) / np.sqrt(vars_) <= fr.max_sharpe * (1 + 1e-10))
    with pytest.raises(DataError, match="rank"):
        m.efficient_frontier(XI, TAU[:2], 0.01)


def test_portfolio_value_moments_monte_carlo():
    m = model3()
    tau = np.array([2.0, 5.0, 10.0])
    N = np.array([100.0, -40.0, 80.0])
    h = 1.0
    mean, var = m.portfolio_value_moments(XI, tau, N, h)
    # P dynamics simulated by the OU class on a grid (exact transitions), bonds repriced at h
    n_paths = 40_000
    paths = OU(m.A, m.a, m.Sigma).simulate(XI, n_steps=4, dt=h / 4, n_paths=n_paths, rng=11)
    values = np.exp(m.log_price(paths[:, -1], tau - h)) @ N
    se_mean = values.std() / np.sqrt(n_paths)
    assert abs(values.mean() - mean) < 3 * se_mean
    dev2 = (values - values.mean()) ** 2
    assert abs(dev2.mean() - var) < 3 * dev2.std() / np.sqrt(n_paths)
    # exact sampler of the model: same moments
    draws = m.sample_portfolio_value(XI, tau, N, h, size=n_paths, rng=5)
    assert abs(draws.mean() - mean) < 3 * draws.std() / np.sqrt(n_paths)
    # single bond: the log value is exactly Gaussian
    mu_l, S_l = m.holding_log_price_moments(XI, tau, h)
    logs = m.sample_portfolio_value(XI, tau[1:2], [1.0], h, size=n_paths, rng=6, log=True)
    assert abs(logs.mean() - mu_l[1]) < 3 * np.sqrt(S_l[1, 1] / n_paths)
    assert logs.var() == pytest.approx(S_l[1, 1], rel=0.05)
    with pytest.raises(DataError, match="matures before"):
        m.portfolio_value_moments(XI, [0.5, 2.0], [1.0, 1.0], 1.0)


def test_short_horizon_value_variance_is_local_variance():
    m = model3()
    w = np.array([0.3, -0.2, 0.5, 0.1, 0.4, -0.3])
    N = w / m.price(XI, TAU)  # holdings worth w now (total wealth 1 in bonds)
    h = 1e-6
    _, var_h = m.portfolio_value_moments(XI, TAU, N, h)
    _, var_local = m.portfolio_moments(XI, TAU, w)
    assert var_h / h == pytest.approx(var_local, rel=1e-4)

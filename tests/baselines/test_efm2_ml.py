"""EFM(2) by Kalman-filter ML: brute-force likelihood, identification, recovery, bad input."""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
from scipy.stats import multivariate_normal

import bayesbond as bb
from bayesbond.baselines.efm2_ml import (
    EFM2Spec,
    efm2_kalman_loglik,
    efm2_ml,
    k_star_from_raw,
    k_star_to_raw,
)
from bayesbond.core.affine_special import EFM2
from bayesbond.errors import DataError, ModelError, SpecError

TAU = np.array([0.25, 0.5, 1, 2, 3, 5, 7, 10.0])
DT = 1 / 12
TRUE = {
    "k": np.array([1.5, 0.5, 0.2]),
    "theta": 0.04,
    "l": np.array([0.3, 0.1, 0.1]),  # k* = (1.2, 0.4, 0.1)
    "Sigma": np.array([[0.012, 0, 0], [0.004, 0.008, 0], [0.001, 0.002, 0.006]]),
    "lambda1_y": -0.002,  # theta* = (k_y theta + lambda1_y) / k_y* = 0.06
    "sigma_e": 5e-4,
}


def true_model():
    t = TRUE
    return EFM2(*t["k"], t["theta"], t["Sigma"], *t["l"], lambda1=[0, 0, t["lambda1_y"]])


def simulate(T=400, seed=0):
    """Yields from EFM2 by the exact transition (independent of the estimator's code path)."""
    m = true_model()
    Phi = sla.expm(DT * m.A)
    c = (np.eye(3) - Phi) @ np.full(3, TRUE["theta"])  # stationary mean (theta, theta, theta)
    P = sla.solve_continuous_lyapunov(m.A, -m.V)
    Q = P - Phi @ P @ Phi.T
    rng = np.random.default_rng(seed)
    L = np.linalg.cholesky(Q)
    X = np.empty((T, 3))
    X[0] = TRUE["theta"] + np.linalg.cholesky(P) @ rng.standard_normal(3)
    for t in range(1, T):
        X[t] = c + Phi @ X[t - 1] + L @ rng.standard_normal(3)
    Z, d = m.yield_coefficients(TAU)
    Y = d + X @ Z.T + TRUE["sigma_e"] * rng.standard_normal((T, len(TAU)))
    dates = pd.date_range("1990-01-31", periods=T, freq="ME")
    return pd.DataFrame(Y, index=dates, columns=TAU), X


def true_theta(spec):
    m = true_model()
    ks = np.array(m.k_star)
    return spec.pack(
        TRUE["k"], ks, TRUE["theta"], m.a_star[2] / ks[2], TRUE["Sigma"], TRUE["sigma_e"]
    )


@pytest.fixture(scope="module")
def fit():
    """One fit shared by the tests, with a missing yield and a missing date (NaN-aware filter)."""
    Y, X = simulate()
    Y.iloc[10, 2] = np.nan
    Y.iloc[20] = np.nan
    return efm2_ml(Y, n_starts=2), Y, X


def test_kalman_loglik_equals_brute_force_gaussian_density():
    """Tiny case: the stacked observations are one Gaussian vector; NaN entries are dropped."""
    T, tau = 6, TAU[[0, 3, 5, 7]]
    Y, _ = simulate(T=T, seed=3)
    Y = Y[tau].to_numpy().copy()
    Y[2, 1] = np.nan
    spec = EFM2Spec(tau, DT)
    th = true_theta(spec)
    m = spec.model(th)["model"]
    Z, d = m.yield_coefficients(tau)
    Phi = sla.expm(DT * m.A)
    P = sla.solve_continuous_lyapunov(m.A, -m.V)
    # Cov(xi_s, xi_t) = Phi^(t-s) P for t >= s; Cov(y_s, y_t) = Z Cov Z' + 1{s=t} sigma_e^2 I
    p = len(tau)
    cov = np.empty((T * p, T * p))
    for s in range(T):
        for t in range(s, T):
            blk = Z @ np.linalg.matrix_power(Phi, t - s) @ P @ Z.T
            if s == t:
                blk = blk + TRUE["sigma_e"] ** 2 * np.eye(p)
            cov[t * p : (t + 1) * p, s * p : (s + 1) * p] = blk
            cov[s * p : (s + 1) * p, t * p : (t + 1) * p] = blk.T
    mean = np.tile(d + Z @ np.full(3, TRUE["theta"]), T)
    y = Y.ravel()
    ok = np.isfinite(y)
    ref = multivariate_normal(mean[ok], cov[np.ix_(ok, ok)]).logpdf(y[ok])
    assert efm2_kalman_loglik(th, spec, Y) == pytest.approx(ref, rel=1e-10, abs=1e-8)


def test_spec_pack_unpack_round_trip():
    spec = EFM2Spec(TAU, DT)
    par = spec.model(true_theta(spec))
    np.testing.assert_allclose(par["k"], TRUE["k"], rtol=1e-13)
    np.testing.assert_allclose([par["l_r"], par["l_x"], par["l_y"]], TRUE["l"], atol=1e-13)
    np.testing.assert_allclose(par["lambda1"], [0, 0, TRUE["lambda1_y"]], atol=1e-15)
    np.testing.assert_allclose(par["Sigma"], TRUE["Sigma"], atol=1e-15)
    assert par["theta"] == pytest.approx(TRUE["theta"]) and par["theta_star"] == pytest.approx(0.06)


def test_ordered_risk_neutral_speeds():
    """k_y* = e^c, k_x* = k_y* + e^b, k_r* = k_x* + e^a, and back."""
    np.testing.assert_allclose(k_star_from_raw(np.log([0.8, 0.3, 0.1])), [1.2, 0.4, 0.1])
    np.testing.assert_allclose(k_star_to_raw([1.2, 0.4, 0.1]), np.log([0.8, 0.3, 0.1]))
    with pytest.raises(ModelError, match="ordered"):
        k_star_to_raw([1.2, 0.1, 0.4])


def test_x_and_y_labels_share_the_cross_sectional_span():
    """Swapping k_x* and k_y* keeps the span of the yield loadings (why k* is ordered)."""
    t = TRUE
    m0 = true_model()
    k1 = t["k"][[0, 2, 1]]
    m1 = EFM2(*k1, t["theta"], t["Sigma"], *(k1 - np.array(m0.k_star)[[0, 2, 1]]))
    tau = np.r_[TAU, 20.0]
    B0, _ = m0.yield_coefficients(tau)
    B1, _ = m1.yield_coefficients(tau)
    M, *_ = np.linalg.lstsq(B0, B1, rcond=None)  # B1 = B0 M exactly
    np.testing.assert_allclose(B0 @ M, B1, atol=1e-12)
    assert np.max(np.abs(B1 - B0)) > 0.05  # though the loadings themselves differ


def test_constant_premia_on_r_and_x_are_state_shifts_in_the_cross_section():
    """y(tau; xi + s, lambda1 - A* s) = y(tau; xi, lambda1) for s = (0, s_x, s_y) (docstring)."""
    m0 = true_model()
    s = np.array([0.0, 0.004, -0.003])
    lam = np.array([0, 0, TRUE["lambda1_y"]]) - m0.A_star @ s
    assert abs(lam[0]) > 1e-3 and abs(lam[1]) > 1e-3  # premia on r and x
    t = TRUE
    m1 = EFM2(*t["k"], t["theta"], t["Sigma"], *t["l"], lambda1=lam)
    xi = np.array([[0.03, 0.035, 0.045], [0.05, 0.04, 0.02]])
    tau = np.r_[TAU, 20.0, 30.0]
    np.testing.assert_allclose(m1.yields(xi + s, tau), m0.yields(xi, tau), rtol=0, atol=1e-14)
    # a shift of r itself is not absorbed (r is the observed short end)
    s_r = np.array([0.004, 0.0, 0.0])
    m2 = EFM2(
        *t["k"],
        t["theta"],
        t["Sigma"],
        *t["l"],
        lambda1=np.array([0, 0, t["lambda1_y"]]) - m0.A_star @ s_r,
    )
    assert np.max(np.abs(m2.yields(xi + s_r, tau) - m0.yields(xi, tau))) > 1e-4


def test_recovers_simulated_parameters(fit):
    res, Y, X = fit
    assert res.converged
    spec = EFM2Spec(TAU, DT)
    # the maximum is at least as high as the likelihood at the truth
    assert res.loglik >= efm2_kalman_loglik(true_theta(spec), spec, Y.to_numpy())
    m = true_model()
    truth = {
        "k_r": TRUE["k"][0], "k_x": TRUE["k"][1], "k_y": TRUE["k"][2], "theta": TRUE["theta"],
        "k_star": np.array(m.k_star), "theta_star": 0.06, "sigma_e": TRUE["sigma_e"],
        "lambda1": np.array([0, 0, TRUE["lambda1_y"]]), "Sigma": TRUE["Sigma"],
        "l_r": TRUE["l"][0], "l_x": TRUE["l"][1], "l_y": TRUE["l"][2],
    }  # fmt: skip
    for name, value in truth.items():
        est, se = np.asarray(getattr(res, name)), np.asarray(res.se[name])
        free = se > 0
        z = np.abs(est - value)[free] / se[free]
        assert np.all(z < 3.5), (name, est, value, se)
    # well-identified risk-neutral quantities are tight
    np.testing.assert_allclose(res.k_star, m.k_star, rtol=0.15)
    assert res.sigma_e == pytest.approx(TRUE["sigma_e"], rel=0.05)
    # smoothed states track the simulated ones; fitted yields within a few sigma_e
    assert np.sqrt(np.mean((res.states["r"].to_numpy() - X[:, 0]) ** 2)) < 1e-3
    assert float(np.sqrt(np.nanmean(res.residuals.to_numpy() ** 2))) < 1.5 * TRUE["sigma_e"]
    # names shared with the canonical result and the affine form of the model
    np.testing.assert_allclose(res.A_star, res.A + res.Lambda, atol=1e-14)
    np.testing.assert_allclose(res.a_star, res.a + res.lambda1, atol=1e-14)
    assert res.Lambda[0, 1] == -res.l_r and res.lambda1[0] == 0 == res.lambda1[1]
    assert list(res.states.columns) == ["r", "x", "y"]
    assert res.fitted.shape == Y.shape and res.term_premia.shape == Y.shape
    tab = res.summary()
    assert {"k_r", "theta", "k_star[r]", "lambda1[y]", "Sigma[x,r]"} <= set(tab.index)
    assert "lambda1[r]" not in tab.index and tab["se"].gt(0).all()
    assert isinstance(res.to_model(), bb.EFM2) and "EFM2MLResult" in repr(res)


def test_public_name_and_missing_values(fit):
    res, Y, _ = fit
    assert bb.efm2_ml is efm2_ml
    assert res.n_obs == Y.size - 1 - len(TAU)
    assert res.states.notna().all().all() and res.fitted.notna().all().all()
    assert np.isnan(res.residuals.iloc[20]).all() and np.isnan(res.residuals.iloc[10, 2])


def test_bad_input_is_named():
    Y, _ = simulate(T=60)
    with pytest.raises(DataError, match="percent"):
        efm2_ml(100 * Y)
    with pytest.raises(DataError, match="at least 4 maturities"):
        efm2_ml(Y.iloc[:, :3])
    with pytest.raises(DataError, match="maturities"):
        efm2_ml(Y.to_numpy(), maturities=TAU[:5])
    with pytest.raises(DataError, match="dt"):
        efm2_ml(Y.to_numpy(), maturities=TAU)
    with pytest.raises(SpecError, match="n_starts"):
        efm2_ml(Y, n_starts=0)
    with pytest.raises(DataError, match="too few"):
        efm2_ml(Y.iloc[:10])

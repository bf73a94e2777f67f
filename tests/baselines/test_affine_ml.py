"""Canonical affine model and its ML fit: ODE references, simulated recovery and real curves."""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
from scipy.integrate import quad

from bayesbond.baselines.affine_ml import affine_ml, kalman_loglik, portfolio_loglik
from bayesbond.baselines.affine_result import eh_yields
from bayesbond.core.affine_canonical import canonical, eigen_from_raw, eigen_to_raw, eigenvalues
from bayesbond.core.ou import exact_transition
from bayesbond.errors import DataError, SpecError

TAU = np.array([0.25, 0.5, 1, 2, 3, 5, 7, 10.0])
DT = 1 / 12
TRUE = {
    "raw": eigen_to_raw([-0.03], -0.63, 0.1),  # eigenvalues -0.03, -0.63 +- 0.316
    "k_inf": 0.0015,
    "Sigma": np.array([[0.02, 0, 0], [-0.006, 0.01, 0], [0.001, -0.002, 0.004]]),
    "A": np.array([[-0.15, 0.3, 0.1], [0.05, -0.6, 0.2], [0.0, 0.1, -1.2]]),
    "mu": np.array([0.14, 0.03, 0.002]),
    "sigma_e": 5e-4,
}


def weights(tau, n=3):
    """Orthonormal level/slope/curvature weights (Legendre-like), fixed for the simulation."""
    x = (tau - tau.mean()) / tau.std()
    Q, _ = np.linalg.qr(np.vander(x, n, increasing=True))
    return Q.T * np.sign(Q.T[:, -1:])


def simulate(T=400, seed=0):
    rng = np.random.default_rng(seed)
    W = weights(TAU)
    V = TRUE["Sigma"] @ TRUE["Sigma"].T
    can = canonical(np, eigen_from_raw(np, TRUE["raw"], 3), TRUE["k_inf"], V, W, TAU)
    A = TRUE["A"]
    a = -A @ TRUE["mu"]
    Phi, c, Q = exact_transition(A, a, V, DT)
    L = np.linalg.cholesky(Q)
    X = np.empty((T, 3))
    X[0] = TRUE["mu"]
    for t in range(1, T):
        X[t] = c + Phi @ X[t - 1] + L @ rng.standard_normal(3)
    Y = can.d + X @ can.Z.T + TRUE["sigma_e"] * rng.standard_normal((T, len(TAU)))
    dates = pd.date_range("1990-01-31", periods=T, freq="ME")
    return pd.DataFrame(Y, index=dates, columns=TAU), X, W, can, a


def test_eh_yields_equal_quadrature_of_expected_short_rate():
    A = np.array([[-0.2, 0.1], [0.05, -0.8]])
    a = np.array([0.01, -0.004])
    d0, d1 = 0.001, np.array([0.7, 0.4])
    x = np.array([0.05, -0.01])
    tau = np.array([0.5, 3.0, 10.0])

    def er(s):
        M = np.zeros((3, 3))
        M[:2, :2], M[:2, 2] = A, a
        mean = (sla.expm(s * M) @ np.r_[x, 1.0])[:2]
        return d0 + d1 @ mean

    ref = [quad(er, 0, t, epsabs=1e-14, epsrel=1e-12)[0] / t for t in tau]
    np.testing.assert_allclose(eh_yields(A, a, d0, d1, x[None], tau)[0], ref, rtol=1e-10)


@pytest.fixture(scope="module")
def simulated_fits():
    Y, X, W, can, a = simulate()
    port = affine_ml(Y, n_starts=1, method="portfolio", weights=W, se=False)
    kal = affine_ml(Y, n_starts=1, method="kalman", weights=W)
    return Y, X, W, can, a, port, kal


def test_kalman_ml_recovers_simulated_parameters(simulated_fits):
    """Data simulated from the model (errors on all yields): estimates within 4 SE of the truth."""
    Y, X, W, can, a, port, res = simulated_fits
    assert res.converged
    truth = {
        "A": TRUE["A"],
        "a": a,
        "Sigma": TRUE["Sigma"],
        "A_star": can.A_star,
        "a_star": can.a_star,
        "Lambda": can.A_star - TRUE["A"],
        "lambda1": can.a_star - a,
        "delta1": can.delta1,
        "lam_star": eigenvalues(eigen_from_raw(np, TRUE["raw"], 3)).real,
        "k_inf": TRUE["k_inf"],
        "sigma_e": TRUE["sigma_e"],
    }
    zs = []
    for k, v in truth.items():
        est = np.asarray(getattr(res, k), float)
        se = np.asarray(res.se[k], float)
        if k == "sigma_e":
            est, se = est[0], se[0]
        ok = np.asarray(se) > 0
        zs.append(np.atleast_1d(((est - v) / np.where(ok, se, 1.0))[ok]))
    z = np.concatenate(zs)
    assert np.max(np.abs(z)) < 4.0, z
    assert np.mean(np.abs(z) < 2) > 0.8
    # P* side is sharply identified
    np.testing.assert_allclose(res.lam_star, truth["lam_star"], rtol=0.1)
    assert res.sigma_e[0] == pytest.approx(TRUE["sigma_e"], rel=0.05)
    # smoothed states track the true ones to a few basis points
    assert np.sqrt(np.mean((res.states.to_numpy() - X) ** 2)) < 5e-4
    # the fitted curve is the model's: GaussianAffine built from the result prices it identically
    m = res.to_model()
    np.testing.assert_allclose(
        m.yields(res.states.to_numpy(), TAU), res.fitted.to_numpy(), atol=1e-10
    )
    np.testing.assert_allclose(
        m.expected_excess_return(res.states.to_numpy(), TAU),
        res.expected_excess_returns.to_numpy(),
        atol=1e-10,
    )
    assert res.rmse.max() < 1.2 * TRUE["sigma_e"]


def test_kalman_and_portfolio_likelihoods_at_the_estimate(simulated_fits):
    """Each estimate maximises its own likelihood; both agree on the sharply identified P* side.

    (The portfolio likelihood is misspecified here, the simulated portfolios carry measurement
    error, so only its P* eigenvalues are compared.)
    """
    Y, X, W, can, a, port, kal = simulated_fits
    Yv = Y.to_numpy()
    Po = Yv @ W.T
    assert kalman_loglik(kal.theta, kal.spec, Yv, Po[0]) == pytest.approx(kal.loglik, rel=1e-12)
    assert kalman_loglik(port.theta, kal.spec, Yv, Po[0]) < kal.loglik
    assert portfolio_loglik(kal.theta, port.spec, Yv, Po) < port.loglik
    # the two estimators agree on the sharply identified P* side
    np.testing.assert_allclose(kal.lam_star, port.lam_star, rtol=0.05)
    s = kal.summary()
    assert {"estimate", "se", "z"} <= set(s.columns)
    assert port.se is None and np.isnan(port.summary()["se"]).all()
    assert "lam_star[1]" in s.index and "sigma_e" in s.index


def test_liuwu_treasury_fit_under_10bp(shared_data):
    from bayesbond.data.readers import read_liuwu

    curve = read_liuwu(shared_data / "liuwu_zcb_monthly_1to360m.csv")
    mats = [0.25, 0.5, 1, 2, 3, 5, 7, 10]
    cols = [c for c in curve.columns if any(abs(c - m) < 1e-9 for m in mats)]
    Y = curve.loc["1990":"2022", cols]
    assert Y.shape == (396, 8)
    res = affine_ml(Y, n_factors=3, n_starts=1, se=False)
    rmse_bp = 1e4 * np.sqrt(np.mean(res.residuals.to_numpy() ** 2))
    assert rmse_bp < 10.0
    assert (1e4 * res.rmse).max() < 10.0
    assert list(res.fitted.index) == list(Y.index)
    assert np.all(np.asarray(res.lam_star) < 0)
    tp = res.term_premia
    assert tp.shape == Y.shape and np.isfinite(tp.to_numpy()).all()


def test_bad_input_is_named():
    Y, *_ = simulate(T=60)
    with pytest.raises(DataError, match="percent"):
        affine_ml(Y * 100, n_starts=1, se=False)
    with pytest.raises(SpecError, match="identification"):
        affine_ml(Y, identification="efm")
    with pytest.raises(SpecError, match="n_factors"):
        affine_ml(Y, n_factors=8)
    with pytest.raises(DataError, match="maturities"):
        affine_ml(Y.to_numpy())
    Yn = Y.copy()
    Yn.iloc[5, 2] = np.nan
    with pytest.raises(DataError, match="complete rows"):
        affine_ml(Yn, method="portfolio")


def _equal_speed_curves(seed, k=0.3):
    """Two-factor curves whose risk-neutral speeds are equal (A* = -k I, r = x1 + x2)."""
    from bayesbond.core.affine import GaussianAffine

    rng = np.random.default_rng(seed)
    A = np.array([[-0.1, 0.0], [0.0, -0.6]])
    A_star = -k * np.eye(2)
    m = GaussianAffine(A, [0.004, 0.0], np.diag([0.01, 0.015]), Lambda=A_star - A,
                       delta1=[1.0, 1.0])
    x = m.ou_P().simulate([0.04, 0.0], n_steps=239, dt=DT, rng=rng)[0]
    return m.yields(x, TAU) + 5e-5 * rng.standard_normal((240, len(TAU)))


@pytest.mark.parametrize("seed", [3, 6, 10])
def test_equal_risk_neutral_speeds_do_not_kill_the_fit(seed):
    # these seeds raised LinAlgError (singular rotation after an unbounded least-squares step to
    # eigenvalues near -16,000, or a non-PD smoother covariance at an absurd estimate)
    import warnings

    from bayesbond.errors import ConvergenceWarning

    Y = _equal_speed_curves(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = affine_ml(Y, TAU, n_factors=2, dt=DT, se=False)
    assert isinstance(res.failed_starts, list)
    for f in res.failed_starts:
        assert {"start", "eig_start", "stage", "reason"} <= set(f)
    lam = np.asarray(res.lam_star)
    assert np.all(np.isfinite(lam)) and np.all(lam < 0) and np.all(lam > -51)
    # one of the speeds is the true 0.3 and the curves are fitted to the noise level (0.5 bp)
    assert np.min(np.abs(lam + 0.3)) < 0.02
    assert float(np.sqrt(np.mean(res.residuals.to_numpy() ** 2))) < 1e-4


def test_failed_start_is_dropped_and_reported(monkeypatch):
    # a start whose cross-sectional step raises is dropped, named in failed_starts and warned
    import bayesbond.baselines.affine_ml as mod
    from bayesbond.errors import ConvergenceWarning

    real = mod._cross_section
    calls = []

    def flaky(spec, Y, Po, L, raw0):
        calls.append(1)
        if len(calls) == 2:
            raise np.linalg.LinAlgError("Singular matrix")
        return real(spec, Y, Po, L, raw0)

    monkeypatch.setattr(mod, "_cross_section", flaky)
    Y, *_ = simulate(T=120)
    with pytest.warns(ConvergenceWarning, match=r"1 of 3 starting points failed"):
        res = affine_ml(Y, n_factors=3, n_starts=3, se=False)
    assert [f["start"] for f in res.failed_starts] == [1]
    assert res.failed_starts[0]["reason"] == "LinAlgError: Singular matrix"
    assert res.failed_starts[0]["stage"] == "cross-section"


def test_model_yields_at_other_maturities(simulated_fits):
    # model_yields(states, tau=...) raised a shape error for any maturities but the fitted ones;
    # reference: the pricing ODEs du/dt = A*'u + delta1, dv/dt = -delta0 - a*'u + u'Vu/2
    from scipy.integrate import solve_ivp

    *_, res = simulated_fits
    X = res.states.to_numpy()[:5]
    tau = np.array([0.1, 1.5, 4.0, 15.0, 30.0])
    got = res.model_yields(X, tau=tau)
    V = res.Sigma @ res.Sigma.T

    def rhs(t, z):
        u = z[:3]
        return np.r_[res.A_star.T @ u + res.delta1,
                     -res.delta0 - res.a_star @ u + 0.5 * u @ V @ u]

    sol = solve_ivp(rhs, [0, 30], np.zeros(4), t_eval=tau, rtol=1e-12, atol=1e-14,
                    method="DOP853")
    want = (X @ sol.y[:3] - sol.y[3]) / tau
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    # at the fitted maturities both routes agree with the fitted curve
    np.testing.assert_allclose(res.model_yields(X, tau=TAU), res.fitted.to_numpy()[:5], atol=1e-12)


def test_maturities_in_months_are_detected():
    # months read as years gave a converged fit (RMSE 3.78 bp) with nothing said
    Y, *_ = simulate(T=60)
    months = Y.set_axis(TAU * 12, axis=1)  # 3, 6, 12, ..., 120
    with pytest.raises(DataError, match=r"maturities look like months \(the longest is 120"):
        affine_ml(months, n_starts=1, se=False)
    with pytest.raises(DataError, match="all are whole multiples of 3.*maturity_units='mon"):
        affine_ml(Y.to_numpy()[:, :5], [3, 6, 12, 24, 36], n_starts=1, se=False)
    with pytest.raises(SpecError, match="maturity_units must be"):
        affine_ml(Y, maturity_units="days")
    # the explicit option converts: the same maturities and fit as the years
    from bayesbond.baselines.affine_ml import prepare_yields

    _, tau_m, _, dt_m = prepare_yields(months, maturity_units="months")
    np.testing.assert_allclose(tau_m, TAU, rtol=1e-15)
    assert dt_m == pytest.approx(DT)
    # whole-number years pass (5, 7 are no month grid), and can be confirmed explicitly
    _, tau_y, _, _ = prepare_yields(Y.to_numpy()[:, :3], [5, 7, 10], dt=DT)
    np.testing.assert_array_equal(tau_y, [5, 7, 10])
    _, tau_y, _, _ = prepare_yields(Y.to_numpy()[:, :3], [3, 6, 9], dt=DT, maturity_units="years")
    np.testing.assert_array_equal(tau_y, [3, 6, 9])


def test_irregular_dates_are_named():
    Y, *_ = simulate(T=60)
    with pytest.raises(DataError, match=r"not a regular grid \(a gap from 1990-03-31 to 1990-05"):
        affine_ml(Y.drop(Y.index[3]), n_starts=1, se=False)


@pytest.mark.parametrize(("raw0", "match"), [
    (np.log(1e-4), r"slowest P\* speed sits at the stationarity bound"),
    (np.log(0.05), None),
])
def test_estimate_at_the_stationarity_bound_is_named_as_such(raw0, match):
    """A slowest P* speed held at 1e-4 a year is a (near) unit root the curve asks for, not an
    unidentified speed (GSW 1990-2019 gives eigenvalue -0.0001 at ML, -3e-4 in the posterior)."""
    import re
    import types
    import warnings as w

    from bayesbond.baselines.affine_ml import AffineML
    from bayesbond.errors import ConvergenceWarning

    fake = types.SimpleNamespace(spec=types.SimpleNamespace(slices={"lam": slice(0, 3)}), n=3)
    theta = np.array([raw0, np.log(0.4), np.log(0.9)])
    with w.catch_warnings(record=True) as seen:
        w.simplefilter("always")
        AffineML.check_estimate(fake, theta)
    msgs = [str(x.message) for x in seen if issubclass(x.category, ConvergenceWarning)]
    if match is None:
        assert msgs == []
    else:
        assert len(msgs) == 1 and re.search(match, msgs[0]), msgs

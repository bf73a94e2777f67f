"""The shared Kalman-filter ML skeleton (baselines.kalman_ml) against statsmodels, and its users."""

import warnings

import numpy as np
import pandas as pd
import pytest

from bayesbond.baselines.affine_ml import affine_ml
from bayesbond.baselines.affine_result import AffineMLResult, CurveMLResult
from bayesbond.baselines.efm2_ml import EFM2ML, EFM2MLResult
from bayesbond.baselines.kalman_ml import KalmanML, filter_yields
from bayesbond.baselines.ou_ml import ou_from_var1
from bayesbond.errors import ConvergenceWarning, ModelError
from tests.baselines.test_affine_ml import simulate as simulate_affine


class AR1Spec:
    """One OU state seen with noise: ``theta = [log kappa, mu / 0.01, log s, log sigma_e]``."""

    size, tau, dt = 4, np.array([1.0]), 1.0

    def model(self, th):
        kappa, mu, s, se = np.exp(th[0]), 0.01 * th[1], np.exp(th[2]), np.exp(th[3])
        return {"A": np.array([[-kappa]]), "a": np.array([kappa * mu]), "V": np.array([[s * s]]),
                "Z": np.ones((1, 1)), "d": np.zeros(1), "sigma_e": np.array([se]),
                "kappa": kappa, "mu": mu, "phi": np.exp(-kappa * self.dt),
                "q": s * s * (1 - np.exp(-2 * kappa)) / (2 * kappa)}


class AR1ML(KalmanML):
    """The smallest subclass: a spec, a likelihood, a start and a result."""

    name, param_names, state_names = "ar1_ml", ("kappa", "mu", "phi", "q"), ("x",)

    def __init__(self, y, **kw):
        super().__init__(y[:, None], [1.0], pd.RangeIndex(len(y)), 1.0, **kw)
        self.spec = AR1Spec()

    def loglik(self, th):
        return filter_yields(self.Y, self.spec.model(th), self.dt).loglik

    def start_params(self):
        y = self.Y[:, 0]
        return [(np.array([np.log(0.2), 100 * y.mean(), np.log(y.std()), np.log(y.std() / 3)]),
                 {"start": 0})]

    def make_result(self, **fields):
        return fields


def ar1_data(T=800, seed=1):
    rng = np.random.default_rng(seed)
    phi, c, q, r = 0.9, 0.005, 0.01**2, 0.006**2
    x = np.empty(T)
    x[0] = c / (1 - phi)
    for t in range(1, T):
        x[t] = c + phi * x[t - 1] + np.sqrt(q) * rng.standard_normal()
    return x + np.sqrt(r) * rng.standard_normal(T)


def test_skeleton_fit_matches_statsmodels_sarimax():
    # AR(1) + measurement error: the same exact likelihood (stationary start) in statsmodels;
    # its 'approx' covariance is the inverse numerical Hessian, as here (then the delta method)
    sm = pytest.importorskip("statsmodels.tsa.statespace.sarimax")
    y = ar1_data()
    res = AR1ML(y).fit()
    ref = sm.SARIMAX(y, order=(1, 0, 0), trend="c", measurement_error=True).fit(
        disp=False, cov_type="approx", method="lbfgs", maxiter=2000
    )
    names = ref.model.param_names  # intercept, ar.L1, var.measurement_error, sigma2
    p = dict(zip(names, ref.params, strict=True))
    se = dict(zip(names, ref.bse, strict=True))
    assert res["loglik"] == pytest.approx(ref.llf, abs=1e-3)
    par = res["params"]
    assert par["phi"] == pytest.approx(p["ar.L1"], abs=1e-3)
    assert par["mu"] == pytest.approx(p["intercept"] / (1 - p["ar.L1"]), abs=1e-4)
    assert par["q"] == pytest.approx(p["sigma2"], rel=1e-2)
    assert par["sigma_e"][0] ** 2 == pytest.approx(p["var.measurement_error"], rel=1e-2)
    # standard errors: conditioning of the two numerical Hessians, a few per cent
    assert res["se"]["phi"] == pytest.approx(se["ar.L1"], rel=0.03)
    assert res["se"]["q"] == pytest.approx(se["sigma2"], rel=0.05)
    # the states at the same parameters: Rauch-Tung-Striebel here, statsmodels' smoother there
    at = ref.model.smooth([par["mu"] * (1 - par["phi"]), par["phi"], par["sigma_e"][0] ** 2,
                           par["q"]])
    np.testing.assert_allclose(res["states"]["x"], at.smoothed_state[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res["filtered_states"]["x"], at.filtered_state[0], rtol=1e-9,
                               atol=1e-12)


def test_every_failed_start_is_named():
    class Broken(AR1ML):
        def loglik(self, th):
            raise np.linalg.LinAlgError("Singular matrix")

    with pytest.raises(ModelError, match=r"ar1_ml: every starting point failed: start 0: "
                                         r"no admissible parameters"):
        Broken(ar1_data(T=50)).fit()


def test_curve_results_share_one_constructor():
    # EFM2MLResult used to bypass its parent's __init__ (vars(self).update); now both curve
    # fits run CurveMLResult.__init__ and carry the same fields
    assert issubclass(EFM2MLResult, CurveMLResult) and issubclass(AffineMLResult, CurveMLResult)
    assert "__init__" not in vars(EFM2MLResult) and "__init__" not in vars(AffineMLResult)
    assert issubclass(EFM2ML, KalmanML)


def test_one_error_per_maturity_with_the_kalman_filter():
    # measurement_error="maturity" raised KeyError('eig_raw') when the common-error estimate
    # was repacked for the final maximisation
    Y, *_ = simulate_affine(T=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        common = affine_ml(Y, n_factors=2, n_starts=1, se=False)
        mat = affine_ml(Y, n_factors=2, n_starts=1, se=False, measurement_error="maturity")
    s = np.asarray(mat.sigma_e)
    assert s.shape == (Y.shape[1],) and np.ptp(s) > 0
    assert mat.spec.n_sig == Y.shape[1]
    assert mat.loglik >= common.loglik - 1e-3  # the common error is a special case
    assert list(mat.summary().index[-Y.shape[1]:]) == [f"sigma_e[{t:g}]" for t in Y.columns]


def test_var1_start_fallback():
    # negative first-order autocorrelation: no real logarithm of Phi
    rng = np.random.default_rng(0)
    x = np.empty((300, 2))
    x[0] = 0.0
    for t in range(1, 300):
        x[t] = np.array([[-0.5, 0.0], [0.0, 0.8]]) @ x[t - 1] + 0.01 * rng.standard_normal(2)
    with pytest.raises(ModelError, match="no real matrix logarithm"):
        ou_from_var1(x, 1 / 12)
    A, a, L = ou_from_var1(x, 1 / 12, fallback=True)  # Euler map A = (Phi - I) / dt
    B, *_ = np.linalg.lstsq(np.column_stack([np.ones(299), x[:-1]]), x[1:], rcond=None)
    np.testing.assert_allclose(A, (B[1:].T - np.eye(2)) * 12, rtol=1e-12)
    assert np.all(np.diag(L) > 0)

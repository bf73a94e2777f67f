"""Maximum-likelihood estimation of the economic factor model EFM(2) by the Kalman filter.

:func:`efm2_ml` fits :class:`~bayesbond.core.affine_special.EFM2` (the cascade
``r -> x -> y -> theta``) to a panel of zero-coupon yields: the three states are latent, move by
the exact OU transition of the P dynamics, and every yield is observed with an i.i.d. error. The
data checks are those of :func:`bayesbond.affine_ml`, the fit is the shared skeleton
:class:`~bayesbond.baselines.kalman_ml.KalmanML`, and the result shares the curve methods
(fitted yields, term premia, expected excess returns) of
:class:`~bayesbond.baselines.affine_result.CurveMLResult`.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from bayesbond.baselines.affine_ml import prepare_yields
from bayesbond.baselines.affine_result import CurveMLResult
from bayesbond.baselines.kalman_ml import KalmanML, loglik_yields
from bayesbond.core.affine_special import EFM2
from bayesbond.core.linalg import chol_pack, chol_unpack
from bayesbond.core.ou import transition_loglik
from bayesbond.errors import DataError, ModelError, SpecError

__all__ = ["efm2_ml", "EFM2ML", "EFM2MLResult", "EFM2Spec", "efm2_kalman_loglik",
           "k_star_from_raw", "k_star_to_raw"]  # fmt: skip

_LEVEL_SCALE = 0.01  # theta = 0.01 * raw, theta* = 0.01 * raw
_OFF_SCALE = 0.01  # off-diagonal Sigma = 0.01 * raw
STATE_NAMES = ("r", "x", "y")

#: reported parameters (natural scale), in this order, with the standard errors of the same keys
PARAM_NAMES = ("k_r", "k_x", "k_y", "theta", "Sigma", "l_r", "l_x", "l_y", "lambda1", "k_star",
               "theta_star", "sigma_e", "A", "a", "A_star", "a_star", "Lambda")  # fmt: skip


class EFM2Spec:
    """Packing of the EFM(2) parameters into an unconstrained, well-scaled vector ``theta``.

    ``theta = [kappa (3), log k (3), theta / 0.01, theta* / 0.01, Sigma (lower triangle, log
    diagonal, off-diagonal / 0.01; 6), log sigma_e]`` (15 values), with ``k = (k_r, k_x, k_y)``
    the P speeds, ``k* = k - l`` the risk-neutral speeds, ordered ``k_r* > k_x* > k_y* > 0``
    through ``kappa`` (:func:`k_star_from_raw`), and ``theta* = a*_y / k_y*`` the
    risk-neutral long-run level. Positivity of ``k`` and ``k*`` holds by construction, and
    ``l = k - k*``, ``lambda1 = (0, 0, k_y* theta* - k_y theta)``.
    """

    size = 15
    slices = {"k_star_raw": slice(0, 3), "log_k": slice(3, 6), "theta": slice(6, 7),
              "theta_star": slice(7, 8), "L": slice(8, 14), "log_sigma_e": slice(14, 15)}

    def __init__(self, tau, dt):
        self.tau = np.asarray(tau, float)
        self.dt = float(dt)
        self.p = len(self.tau)

    def unpack(self, theta) -> dict:
        th = np.asarray(theta, float)
        k_star = k_star_from_raw(th[self.slices["k_star_raw"]])
        k = np.exp(th[self.slices["log_k"]])
        L = chol_unpack(th[self.slices["L"]], 3, _OFF_SCALE)
        return {"k": k, "k_star": k_star, "theta": _LEVEL_SCALE * th[self.slices["theta"]][0],
                "theta_star": _LEVEL_SCALE * th[self.slices["theta_star"]][0], "Sigma": L,
                "sigma_e": float(np.exp(th[self.slices["log_sigma_e"]][0]))}  # fmt: skip

    def pack(self, k, k_star, theta, theta_star, Sigma, sigma_e) -> np.ndarray:
        return np.concatenate([k_star_to_raw(k_star), np.log(np.asarray(k, float)),
                               [theta / _LEVEL_SCALE, theta_star / _LEVEL_SCALE],
                               chol_pack(Sigma, _OFF_SCALE), [np.log(sigma_e)]])  # fmt: skip

    def model(self, theta) -> dict:
        """Parameters, the :class:`EFM2` they define and the measurement ``y = d + Z xi``."""
        par = self.unpack(theta)
        k, ks = par["k"], par["k_star"]
        l_ = k - ks
        lambda1 = np.array([0.0, 0.0, ks[2] * par["theta_star"] - k[2] * par["theta"]])
        m = EFM2(*k, par["theta"], par["Sigma"], *l_, lambda1=lambda1)
        Z, d = m.yield_coefficients(self.tau)
        par.update(
            model=m, Z=Z, d=d, k_r=k[0], k_x=k[1], k_y=k[2], l_r=l_[0], l_x=l_[1], l_y=l_[2],
            lambda1=lambda1, A=np.array(m.A), a=np.array(m.a), A_star=np.array(m.A_star),
            a_star=np.array(m.a_star), Lambda=np.array(m.Lambda), V=np.array(m.V), delta0=0.0,
            delta1=np.eye(3)[0],
        )  # fmt: skip
        return par


# --------------------------------------------------------------------------- likelihood
def efm2_kalman_loglik(theta, spec: EFM2Spec, Y) -> float:
    """Exact Gaussian log-likelihood of the yields ``Y`` (T, p) under the parameters ``theta``.

    States ``xi_t = (r, x, y)_t`` follow ``xi_{t+1} = c + Phi xi_t + eta``, ``eta ~ N(0, Q)``,
    with ``(Phi, c, Q)`` the exact OU transition of the P dynamics over ``dt``; yields
    ``y_t = d + Z xi_t + eps_t``, ``eps ~ N(0, sigma_e^2 I)``; ``xi_0`` from the stationary
    distribution (all P speeds are positive).
    """
    return loglik_yields(Y, spec.model(theta), spec.dt)


def k_star_from_raw(kappa) -> np.ndarray:
    """Ordered risk-neutral speeds from free values: ``k_y* = e^kappa_3``,
    ``k_x* = k_y* + e^kappa_2``, ``k_r* = k_x* + e^kappa_1`` (so ``k_r* > k_x* > k_y* > 0``)."""
    return np.cumsum(np.exp(np.asarray(kappa, float))[::-1])[::-1]


def k_star_to_raw(k_star) -> np.ndarray:
    """Inverse of :func:`k_star_from_raw` (needs ``k_r* > k_x* > k_y* > 0``)."""
    ks = np.asarray(k_star, float)
    gaps = np.r_[ks[0] - ks[1], ks[1] - ks[2], ks[2]]
    if np.any(gaps <= 0):
        raise ModelError(f"risk-neutral speeds must be ordered k_r* > k_x* > k_y* > 0, got {ks}")
    return np.log(gaps)


# ------------------------------------------------------------------------ starting values
def _cross_section(spec, Y, x0, V):
    """Risk-neutral speeds and level from the cross-section, states free on every date.

    Variable projection: for given ``(k*, theta*)`` the states are the least-squares solution of
    ``y_t - d = Z xi_t`` on each date; the residuals are minimised over ``(kappa, theta*)``
    (``k* = k_star_from_raw(kappa)``). Returns ``(k*, theta*, states (T, 3), rmse)``.
    """
    ok = np.isfinite(Y).all(axis=1)
    Yc = Y[ok]
    Sigma = np.linalg.cholesky(V)

    def design(x):
        ks = k_star_from_raw(x[:3])
        m = EFM2(*ks, x[3] * _LEVEL_SCALE, Sigma)  # P = P* (l = 0) for the cross-section
        return m.yield_coefficients(spec.tau)

    def resid(x):
        try:
            Z, d = design(x)
        except (ModelError, np.linalg.LinAlgError, ValueError):
            return np.full(Yc.size, 1e3)
        X, *_ = np.linalg.lstsq(Z, (Yc - d).T, rcond=None)
        return 1e4 * ((Yc - d) - X.T @ Z.T).ravel()

    with np.errstate(all="ignore"):
        sol = optimize.least_squares(resid, x0, method="lm", xtol=1e-10, ftol=1e-10)
    Z, d = design(sol.x)
    states = np.full((len(Y), 3), np.nan)
    X, *_ = np.linalg.lstsq(Z, (Yc - d).T, rcond=None)
    states[ok] = X.T
    rmse = float(np.sqrt(np.mean(sol.fun**2)) / 1e4)
    return k_star_from_raw(sol.x[:3]), sol.x[3] * _LEVEL_SCALE, states, rmse


def _p_start(states, dt, k0):
    """P parameters ``(k, theta, Sigma)`` by exact OU ML of the cascade on given states."""
    X = states[np.isfinite(states).all(axis=1)]
    dX = np.diff(X, axis=0)
    L0 = np.linalg.cholesky(np.cov(dX.T) / dt + 1e-12 * np.eye(3))

    def unpack(x):
        k = np.exp(x[:3])
        A = np.array([[-k[0], k[0], 0.0], [0.0, -k[1], k[1]], [0.0, 0.0, -k[2]]])
        return k, x[3], A, chol_unpack(x[4:], 3)

    def nll(x):
        k, th, A, L = unpack(x)
        with np.errstate(all="ignore"):
            try:
                ll = transition_loglik(X, dt, A, [0.0, 0.0, k[2] * th], L @ L.T)
            except (ModelError, np.linalg.LinAlgError, ValueError):
                return 1e10
        return -ll / len(X) if np.isfinite(ll) else 1e10

    x0 = np.concatenate([np.log(k0), [X[:, 2].mean()], chol_pack(L0)])
    res = optimize.minimize(nll, x0, method="L-BFGS-B", options={"maxiter": 2000})
    k, th, _, L = unpack(res.x)
    return k, th, L


def _k_starts(n_starts):
    """Starting risk-neutral speeds ``(k_r*, k_x*, k_y*)`` (ordered), spread over the scales."""
    base = [(1.0, 0.3, 0.05), (2.0, 0.5, 0.1), (0.5, 0.15, 0.02), (1.0, 0.8, 0.3), (4.0, 0.8, 0.1)]
    return [np.array(base[i % len(base)]) * 1.1 ** (i // len(base)) for i in range(n_starts)]


# ------------------------------------------------------------------------------- result
class EFM2MLResult(CurveMLResult):
    """Maximum-likelihood fit of EFM(2) (see :func:`efm2_ml`).

    Attributes
    ----------
    k_r, k_x, k_y, theta : P speeds of the cascade and the long-run level.
    l_r, l_x, l_y : risk-premium speeds (``k_i* = k_i - l_i``); ``k_star`` the three ``k_i*``.
    lambda1 : ``(0, 0, lambda1_y)``, constant premium; ``theta_star = a*_y / k_y*``.
    Sigma : (3, 3) lower-triangular volatility matrix of ``(r, x, y)``.
    A, a, A_star, a_star, Lambda : the Gaussian affine form (``A* = A + Lambda``,
        ``a* = a + lambda1``); ``delta0 = 0``, ``delta1 = e1`` (``r`` is the first state).
    sigma_e : float, measurement-error standard deviation.
    states, filtered_states : DataFrame (date x state ``r, x, y``), smoothed and filtered.
    fitted, residuals, rmse, term_premia, expected_excess_returns : as for
        :class:`~bayesbond.baselines.affine_result.AffineMLResult`.
    loglik : float; se : dict of standard errors keyed as the parameters (``None`` without).
    theta_raw, cov_theta : the unconstrained estimate (:class:`EFM2Spec`) and its covariance.
    starts : list of dict, the starting speeds tried (``k_star0``), the likelihood each reached
        and its ``k_star``; failed_starts : those dropped (see :class:`CurveMLResult`).

    Notes
    -----
    The curve methods are those of :class:`CurveMLResult`; the parameters, the summary labels and
    :meth:`to_model` are those of EFM(2).
    """

    param_names = PARAM_NAMES

    def _repr_parts(self) -> list:
        return [f"k=({self.k_r:.4g}, {self.k_x:.4g}, {self.k_y:.4g})",
                f"k*=({', '.join(f'{v:.4g}' for v in self.k_star)})",
                f"theta={self.theta:.4g}", f"dates={len(self.states)}"]  # fmt: skip

    def model_yields(self, states, tau=None) -> np.ndarray:
        """Model yields ``y = d + Z xi`` at states ``xi = (r, x, y)`` (any maturities)."""
        tau = self.maturities if tau is None else np.asarray(tau, float)
        Z, d = self.to_model().yield_coefficients(tau)
        return d + np.asarray(states, float) @ Z.T

    def to_model(self) -> EFM2:
        """The fitted model as a :class:`bayesbond.EFM2`."""
        return self.params["model"]

    def _label(self, k, idx, value, se):
        """Structural zeros (e.g. ``A[r,y]``, ``lambda1[r]``, the upper triangle of ``Sigma``)
        are left out of :meth:`summary`."""
        if value == 0 and (self.se is None or se == 0):
            return None
        return super()._label(k, idx, value, se)


# ------------------------------------------------------------------------------ estimator
def efm2_ml(
    yields, maturities=None, dt: float | None = None, *, maturity_units: str | None = None,
    n_starts: int = 3, se: bool = True, maxiter: int = 3000,
) -> EFM2MLResult:  # fmt: skip
    r"""Kalman-filter maximum-likelihood estimate of the economic factor model EFM(2).

    Parameters
    ----------
    yields : DataFrame (dates x maturities in years) or array_like (T, p)
        Zero-coupon yields, decimals per year, continuously compounded; ``NaN`` = missing.
    maturities : array_like (p,), optional
        Maturities in years (default: the DataFrame's columns); at least 4.
    dt : float, optional
        Years between observations (inferred from a DatetimeIndex).
    maturity_units : {None, "years", "months"}
        Maturities are read in years; ``None`` raises when they look like months (see
        :func:`~bayesbond.baselines.affine_ml.prepare_yields`), ``"months"`` converts them.
    n_starts : int
        Number of starting risk-neutral speeds for the cross-sectional step; each distinct local
        optimum starts a full maximisation and the best likelihood is kept.
    se : bool
        Standard errors from the observed information (numerical Hessian), mapped to every
        reported parameter by the delta method.
    maxiter : int
        Maximum L-BFGS iterations per start.

    Returns
    -------
    EFM2MLResult

    Notes
    -----
    The model (:class:`~bayesbond.core.affine_special.EFM2`): under P ::

        dr = k_r (x - r) dt + (Sigma dW)_1
        dx = k_x (y - x) dt + (Sigma dW)_2
        dy = k_y (theta - y) dt + (Sigma dW)_3

    and under P* the same cascade with speeds ``k_i* = k_i - l_i`` and the constant
    ``a* = (0, 0, k_y theta + lambda1_y) = (0, 0, k_y* theta*)``; ``r`` is the short rate
    (``delta0 = 0``, ``delta1 = e1``), yields ``y(tau) = -v(tau)/tau + u(tau)'xi/tau`` with the
    exact loadings of :class:`EFM2`. The states are latent; the likelihood is the exact Kalman
    filter one (:func:`efm2_kalman_loglik`): exact OU transition of the P dynamics over ``dt``,
    i.i.d. ``N(0, sigma_e^2)`` errors on every yield, stationary initial state.

    Parameterisation (:class:`EFM2Spec`): ``log k`` and the ordered ``k_r* > k_x* > k_y* > 0``
    (log gaps; stable dynamics under P and P*), ``theta``, ``theta*``, ``Sigma`` lower
    triangular with log diagonal, ``log sigma_e``: 15 parameters.

    Why the ordering of ``k*``: the loadings of ``(k_r*, k_x*, k_y*)`` and ``(k_r*, k_y*, k_x*)``
    span the same space, so only the P dynamics (weakly) tell ``x`` from ``y``; speeds falling
    along the cascade pick one labelling (the P speeds ``k`` are not ordered).

    Why ``lambda1 = (0, 0, lambda1_y)``: for any ``s = (0, s_x, s_y)``, since
    ``u' = A*'u + e1`` gives ``u(tau)'s = U1(tau)' A* s`` with ``U1 = int_0^tau u``,

    .. math:: y(\tau; \xi + s, a^* - A^* s) = y(\tau; \xi, a^*),

    so a premium on ``r`` or ``x`` is a shift of the latent states, identified only weakly by
    the P restriction of one long-run mean ``theta``; the premium on the level alone keeps the
    cascade under P* and ``lambda1_y`` (equivalently ``theta*``) identified (tested).

    Starting values: the cross-section with the states free on each date (variable projection)
    gives ``k*``, ``theta*``, the states and ``sigma_e``; the P parameters come from exact OU ML
    of the cascade on those states; then :class:`~bayesbond.baselines.kalman_ml.KalmanML`
    (L-BFGS, Newton check, Rauch-Tung-Striebel smoother).

    References
    ----------
    Mayer, M. (2009). The economic factor model (EFM) notes.
    Tuckman, B. and Serrat, A. (2012). *Fixed Income Securities*, 3rd ed., ch. 14 (Gauss+).
    Durbin, J. and Koopman, S. J. (2012). *Time Series Analysis by State Space Methods*, ch. 7.
    """
    Y, tau, dates, dt = prepare_yields(yields, maturities, dt, maturity_units)
    T, p = Y.shape
    if p < 4:
        raise DataError(f"EFM(2) has 3 states: give at least 4 maturities, got {p}")
    complete = np.isfinite(Y).all(axis=1)
    if complete.sum() < 20:
        raise DataError(f"only {complete.sum()} complete dates: too few to estimate EFM(2)")
    if int(n_starts) < 1:
        raise SpecError(f"n_starts must be at least 1, got {n_starts}")
    return EFM2ML(Y, tau, dates, dt, n_starts=n_starts, maxiter=maxiter).fit(se=se)


class EFM2ML(KalmanML):
    """Maximum-likelihood estimator of EFM(2) (:func:`efm2_ml`), a
    :class:`~bayesbond.baselines.kalman_ml.KalmanML`.

    Notes
    -----
    ``log L = efm2_kalman_loglik``; the starts are the distinct cross-sectional fits
    (:func:`_cross_section`) with the P parameters from :func:`_p_start`, best first; the
    refinement is the base's Newton check.
    """

    name = "efm2_ml"
    param_names = PARAM_NAMES
    state_names = STATE_NAMES

    def __init__(self, Y, tau, dates, dt, **kw):
        super().__init__(Y, tau, dates, dt, **kw)
        self.spec = EFM2Spec(self.tau, self.dt)

    def loglik(self, theta):
        return efm2_kalman_loglik(theta, self.spec, self.Y)

    def start_params(self):
        V0 = np.diag([0.01, 0.01, 0.01]) ** 2
        level0 = np.nanmean(self.Y[:, -1]) / _LEVEL_SCALE
        cands = []
        for i, ks in enumerate(_k_starts(self.n_starts)):
            x0 = np.r_[k_star_to_raw(ks), level0]
            ks, th_s, states, rmse = _cross_section(self.spec, self.Y, x0, V0)
            if not any(np.allclose(ks, c[0], rtol=1e-3) for c in cands):
                cands.append((ks, th_s, states, rmse, i))
        cands.sort(key=lambda c: c[3])
        out = []
        for ks, th_s, states, rmse, i in cands:
            k, th_p, L = _p_start(states, self.dt, ks * 1.2)
            out.append((self.spec.pack(k, ks, th_p, th_s, L, max(rmse, 1e-5)),
                        {"start": i, "k_star0": ks}))  # fmt: skip
        return out

    def make_result(self, *, runs, **fields):
        starts = [{"k_star0": info["k_star0"], "loglik": -res.fun * self.T,
                   "k_star": k_star_from_raw(res.x[:3])} for info, res in runs]  # fmt: skip
        return EFM2MLResult(starts=starts, **fields)

"""Kalman filter and Rauch-Tung-Striebel smoother for linear Gaussian state-space models.

The model is time-invariant with a diagonal measurement covariance, the form of every affine
term-structure model with i.i.d. pricing errors::

    x[t+1] = c + Phi x[t] + eta[t],     eta[t] ~ N(0, Q)
    y[t]   = d + Z x[t]   + eps[t],     eps[t] ~ N(0, H),   H = diag(h)
    x[0]   ~ N(x0, P0)

with ``x`` the ``n`` states and ``y`` the ``p`` observations (``NaN`` marks a missing one).

Implementation (why it is fast and stable)
------------------------------------------
Because ``H`` is diagonal, the update runs in the ``n``-dimensional information form: with
``M_t = Z' H^-1 Z`` over the observed rows and the predicted covariance ``P = L L'`` (Cholesky),

    W = I + L' M_t L,   P_filt = L W^-1 L',   log det F_t = log det H + log det W,

(matrix determinant lemma and the push-through identity), so no ``p x p`` matrix is ever formed or
inverted, ``W`` has eigenvalues >= 1, and ``P_filt = (L R^-1)(L R^-1)'`` (``W = R'R``) is
symmetric positive semi-definite by construction (a square-root update: Joseph-form stability
without its cost). The covariance recursion does not depend on the data, so once it has converged
(steady state) and every later date is fully observed, the gain is frozen and the ``n``-vector mean
recursion runs as a vectorised doubling scan; innovations and the log-likelihood are then computed
for all dates at once.

References
----------
Durbin, J. and Koopman, S. J. (2012), *Time Series Analysis by State Space Methods*, 2nd ed., OUP:
ch. 4.3 (filter), 4.4 (smoother), 6.5 (univariate/diagonal treatment), 4.10 (missing observations).
Harvey, A. C. (1989), *Forecasting, Structural Time Series Models and the Kalman Filter*, ch. 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from bayesbond.errors import DataError, ModelError

__all__ = ["KalmanResult", "kalman_filter", "kalman_loglik", "kalman_smoother"]

_LOG2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class KalmanResult:
    """Output of :func:`kalman_filter`.

    Attributes
    ----------
    loglik : float
        Gaussian log-likelihood of the observed values.
    loglik_t : ndarray (T,)
        Contribution of each date (0 where nothing was observed).
    x_pred, P_pred : ndarray (T, n), (T, n, n)
        One-step predictions ``E[x_t | y_1..y_{t-1}]`` and their covariances.
    x_filt, P_filt : ndarray (T, n), (T, n, n)
        Filtered states ``E[x_t | y_1..y_t]`` and covariances.
    innovations : ndarray (T, p)
        ``y_t - d - Z x_pred_t`` (``NaN`` where ``y`` is missing).
    n_obs : int
        Number of observed (non-NaN) values.
    steady_from : int or None
        First date from which the frozen steady-state gain was used.
    Phi, Q : ndarray
        The transition used (kept for the smoother).
    """

    loglik: float
    loglik_t: np.ndarray
    x_pred: np.ndarray
    P_pred: np.ndarray
    x_filt: np.ndarray
    P_filt: np.ndarray
    innovations: np.ndarray
    n_obs: int
    steady_from: int | None
    Phi: np.ndarray
    Q: np.ndarray


def _as_model(y, Phi, c, Q, Z, d, H):
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise DataError(f"y must be (T, p), got shape {y.shape}")
    T, p = y.shape
    Z = np.atleast_2d(np.asarray(Z, dtype=float))
    if Z.shape[0] != p:
        raise ModelError(f"Z has {Z.shape[0]} rows but y has {p} columns")
    n = Z.shape[1]
    Phi = np.asarray(Phi, dtype=float).reshape(n, n) if np.size(Phi) == n * n else None
    if Phi is None:
        raise ModelError(f"Phi must be ({n}, {n})")
    Q = np.asarray(Q, dtype=float)
    if Q.shape != (n, n):
        raise ModelError(f"Q must be ({n}, {n}), got {Q.shape}")
    c = np.zeros(n) if c is None else np.broadcast_to(np.asarray(c, dtype=float), (n,)).copy()
    d = np.zeros(p) if d is None else np.broadcast_to(np.asarray(d, dtype=float), (p,)).copy()
    H = np.asarray(H, dtype=float)
    if H.ndim == 2:
        if H.shape != (p, p):
            raise ModelError(f"H must be ({p}, {p}) or ({p},), got {H.shape}")
        if np.any(H - np.diag(np.diag(H))):
            raise ModelError("H must be diagonal (i.i.d. measurement errors)")
        h = np.diag(H).copy()
    else:
        h = np.broadcast_to(H, (p,)).astype(float)
    if np.any(~np.isfinite(h)) or np.any(h <= 0):
        bad = np.flatnonzero(~(h > 0))
        raise ModelError(
            f"measurement variances must be positive and finite; bad rows {bad.tolist()}"
        )
    for name, arr in (("Phi", Phi), ("c", c), ("Q", Q), ("Z", Z), ("d", d)):
        if not np.all(np.isfinite(arr)):
            raise ModelError(f"{name} has non-finite entries")
    if np.any(np.isinf(y)):
        t, j = np.argwhere(np.isinf(y))[0]
        raise DataError(f"y has an infinite value at row {t}, column {j}")
    return y, Phi, c, Q, Z, d, h


def _initial(Phi, c, Q, x0, P0):
    n = Phi.shape[0]
    if x0 is None or P0 is None:
        rho = np.max(np.abs(np.linalg.eigvals(Phi)))
        if rho >= 1:
            raise ModelError(
                f"Phi has spectral radius {rho:.6g} >= 1: no stationary initial state; "
                "give x0 and P0"
            )
        if x0 is None:
            x0 = np.linalg.solve(np.eye(n) - Phi, c)
        if P0 is None:  # vec(P) = (I - Phi kron Phi)^-1 vec(Q)
            P0 = np.linalg.solve(np.eye(n * n) - np.kron(Phi, Phi), Q.ravel()).reshape(n, n)
    x0 = np.broadcast_to(np.asarray(x0, dtype=float), (n,)).copy()
    P0 = np.asarray(P0, dtype=float).reshape(n, n)
    return x0, 0.5 * (P0 + P0.T)


def _sqrt_psd(P):
    """Lower factor ``L`` with ``L L' = P`` (Cholesky; eigen-route for singular ``P``)."""
    try:
        return np.linalg.cholesky(P)
    except np.linalg.LinAlgError:
        w, U = np.linalg.eigh(0.5 * (P + P.T))
        if w.min() < -1e-10 * max(w.max(), 1e-300):
            raise ModelError("state covariance is not positive semi-definite") from None
        return U * np.sqrt(np.clip(w, 0.0, None))


def kalman_filter(y, Phi, c, Q, Z, d, H, x0=None, P0=None, *,
                  steady_tol: float = 1e-11) -> KalmanResult:
    """Kalman filter of a linear Gaussian state-space model with diagonal measurement noise.

    Parameters
    ----------
    y : array_like (T, p)
        Observations; ``NaN`` marks missing values (they add nothing to the likelihood and the
        update uses the observed rows only).
    Phi, c, Q : array_like (n, n), (n,), (n, n)
        Transition ``x[t+1] = c + Phi x[t] + eta``, ``eta ~ N(0, Q)``.
    Z, d : array_like (p, n), (p,)
        Measurement ``y[t] = d + Z x[t] + eps``.
    H : array_like (p,) or (p, p) diagonal, or scalar
        Measurement-error variances (must be positive).
    x0, P0 : array_like, optional
        Mean and covariance of the first state ``x[0]`` (before ``y[0]`` is seen). Default: the
        stationary distribution of the transition (needs spectral radius of ``Phi`` below 1).
    steady_tol : float
        Relative change of the predicted covariance below which the gain is frozen.

    Returns
    -------
    KalmanResult

    Notes
    -----
    Prediction error decomposition:
    ``log L = sum_t -1/2 (p_t log 2 pi + log det F_t + v_t' F_t^-1 v_t)``, ``F_t = Z P_t Z' + H``
    over the ``p_t`` observed rows. With ``M = Z'H^-1 Z`` and ``P_t = L L'``:
    ``log det F_t = log det H + log det(I + L'ML)``,
    ``P_filt = P_t - P_t Z'F^-1 Z P_t = L (I + L'ML)^-1 L'``, ``x_filt = x_pred + P_filt g`` and
    ``v'F^-1 v = v'H^-1 v - g' P_filt g`` with ``g = Z'H^-1 v`` (Durbin and Koopman 2012, ch. 4
    and 6.5).
    """
    y, Phi, c, Q, Z, d, h = _as_model(y, Phi, c, Q, Z, d, H)
    x0, P0 = _initial(Phi, c, Q, x0, P0)
    T, p = y.shape
    n = Z.shape[1]
    mask = ~np.isnan(y)
    yc = np.where(mask, y - d, 0.0)
    w = mask / h  # (T, p) inverse variances of the observed rows
    full = mask.all(axis=1)
    # information quantities for every date at once
    Zw = Z.T[None] * w[:, None, :]  # (T, n, p)
    b = np.einsum("tnp,tp->tn", Zw, yc)  # Z'H^-1 (y - d)
    M_full = (Z.T / h) @ Z
    M = None if full.all() else Zw @ Z  # (T, n, n) where rows are missing
    logdetH = mask @ np.log(h)

    x_pred = np.empty((T, n))
    x_filt = np.empty((T, n))
    logdetW = np.empty(T)
    P_pred = np.empty((T, n, n))
    P_filt_all = np.empty((T, n, n))
    # full_after[t]: every row from t on is fully observed (steady state may be frozen there)
    full_after = np.flip(np.cumprod(np.flip(full))).astype(bool)
    eye = np.eye(n)

    Pp = P0
    x = x0
    steady_from = None
    t = 0
    Pf = None
    while t < T:
        Mt = M_full if full[t] else M[t]
        L = _sqrt_psd(Pp)
        Wm = eye + L.T @ Mt @ L
        R = np.linalg.cholesky(Wm)  # lower: Wm = R R'
        S = L @ np.linalg.inv(R).T  # L R'^-1 : P_filt = S S'
        Pf = S @ S.T
        logdetW[t] = 2.0 * np.log(np.diag(R)).sum()
        x_pred[t] = x
        xf = x + Pf @ (b[t] - Mt @ x)
        x_filt[t] = xf
        P_pred[t] = Pp
        P_filt_all[t] = Pf
        Pn = Phi @ Pf @ Phi.T + Q
        Pn = 0.5 * (Pn + Pn.T)
        x = c + Phi @ xf
        t += 1
        if (
            full[t - 1]
            and t < T
            and np.max(np.abs(Pn - Pp)) <= steady_tol * np.max(np.abs(Pn))
            and full_after[t]
        ):
            steady_from = t
            Pp = Pn
            break
        Pp = Pn

    if steady_from is not None:
        # frozen gain: x_filt = (I - Pf M) x_pred + Pf b ; x_pred[t+1] = c + Phi x_filt
        L = _sqrt_psd(Pp)
        Wm = eye + L.T @ M_full @ L
        R = np.linalg.cholesky(Wm)
        S = L @ np.linalg.inv(R).T
        Pf = S @ S.T
        ldW = 2.0 * np.log(np.diag(R)).sum()
        G = eye - Pf @ M_full
        F = Phi @ G
        u = b[steady_from:] @ (Phi @ Pf).T + c  # (T - s, n)
        xs = x_pred[steady_from:]
        xs[0] = x
        xs[1:] = u[:-1]
        _linear_scan(F, xs)
        x_filt[steady_from:] = xs @ G.T + b[steady_from:] @ Pf.T
        logdetW[steady_from:] = ldW
        P_pred[steady_from:] = Pp
        P_filt_all[steady_from:] = Pf

    innov = np.where(mask, yc - x_pred @ Z.T, np.nan)
    v0 = np.where(mask, innov, 0.0)
    g = v0 @ (Z.T / h).T if full.all() else np.einsum("tnp,tp->tn", Zw, v0)
    gPg = np.einsum("ti,tij,tj->t", g, P_filt_all, g)
    q = (w * v0**2).sum(axis=1) - gPg
    p_t = mask.sum(axis=1)
    loglik_t = -0.5 * (p_t * _LOG2PI + logdetH + logdetW + q)
    loglik_t = np.where(p_t > 0, loglik_t, 0.0)
    return KalmanResult(loglik=float(loglik_t.sum()), loglik_t=loglik_t, x_pred=x_pred,
                        P_pred=P_pred, x_filt=x_filt, P_filt=P_filt_all, innovations=innov,
                        n_obs=int(mask.sum()), steady_from=steady_from, Phi=Phi, Q=Q)


def _linear_scan(F, e):
    """In place: ``e[k] <- sum_{j<=k} F^(k-j) e[j]``, i.e. the recursion ``x[k] = F x[k-1] + e[k]``.

    Hillis-Steele doubling: ``log2(K)`` vectorised steps instead of a Python loop over dates.
    """
    G = F
    shift = 1
    K = e.shape[0]
    while shift < K:
        e[shift:] += e[:-shift] @ G.T
        G = G @ G
        shift *= 2
    return e


def kalman_loglik(y, Phi, c, Q, Z, d, H, x0=None, P0=None) -> float:
    """Log-likelihood only (see :func:`kalman_filter`).

    With every value of ``y`` observed it runs the compiled loop of
    :mod:`bayesbond.core.kalman_fast` (the same recursion; numba), otherwise, or where a
    predicted covariance is singular, :func:`kalman_filter`.
    """
    from bayesbond.core import kalman_fast

    ym, Phi_, c_, Q_, Z_, d_, h = _as_model(y, Phi, c, Q, Z, d, H)
    if kalman_fast.available() and not np.isnan(ym).any():
        x0_, P0_ = _initial(Phi_, c_, Q_, x0, P0)
        try:
            return kalman_fast.loglik_full(ym - d_, Phi_, c_, Q_, Z_, h, x0_, P0_)
        except np.linalg.LinAlgError:
            pass
    return kalman_filter(y, Phi, c, Q, Z, d, H, x0, P0).loglik


def kalman_smoother(res: KalmanResult) -> tuple[np.ndarray, np.ndarray]:
    """Rauch-Tung-Striebel fixed-interval smoother.

    Parameters
    ----------
    res : KalmanResult
        From :func:`kalman_filter`.

    Returns
    -------
    x_smooth : ndarray (T, n)
        ``E[x_t | y_1..y_T]``.
    P_smooth : ndarray (T, n, n)
        ``Var[x_t | y_1..y_T]``.

    Notes
    -----
    ``J_t = P_filt,t Phi' P_pred,t+1^-1``, ``x_s,t = x_filt,t + J_t (x_s,t+1 - x_pred,t+1)``,
    ``P_s,t = P_filt,t + J_t (P_s,t+1 - P_pred,t+1) J_t'`` (Rauch, Tung and Striebel 1965; Durbin
    and Koopman 2012, ch. 4.4). With a frozen steady-state gain ``J`` is constant and computed once.
    """
    T, n = res.x_filt.shape
    Phi = res.Phi
    xs = np.empty_like(res.x_filt)
    Ps = np.empty_like(res.P_filt)
    xs[-1] = res.x_filt[-1]
    Ps[-1] = res.P_filt[-1]
    J_const = None
    for t in range(T - 2, -1, -1):
        steady = res.steady_from is not None and t >= res.steady_from
        if steady and J_const is not None:
            J = J_const
        else:
            Pp = res.P_pred[t + 1]
            c_and_lower = sla.cho_factor(Pp, lower=True, check_finite=False)
            J = sla.cho_solve(c_and_lower, Phi @ res.P_filt[t], check_finite=False).T
            if steady:
                J_const = J
        xs[t] = res.x_filt[t] + J @ (xs[t + 1] - res.x_pred[t + 1])
        Pt = res.P_filt[t] + J @ (Ps[t + 1] - res.P_pred[t + 1]) @ J.T
        Ps[t] = 0.5 * (Pt + Pt.T)
    return xs, Ps

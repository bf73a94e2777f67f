"""Ornstein-Uhlenbeck processes: exact moments, VAR(1) form, simulation, ACF and spectrum.

The process is ``dxi = (A xi + a) dt + Sigma dW`` in any dimension ``n`` (scalars in 1-D),
with ``V = Sigma Sigma'``. Everything is built on :mod:`bayesbond.core.linalg` (matrix exponential
and Van Loan's block exponential), so the moments are exact for defective and singular ``A`` (the
A = 0 limit is Brownian motion with drift) and for explosive ``A`` over finite horizons; only the
stationary quantities need a stable ``A`` and raise :class:`~bayesbond.errors.ModelError` otherwise.

References
----------
Van Loan, C. F. (1978), "Computing integrals involving the matrix exponential", IEEE TAC 23(3).
Gardiner, C. W. (2009), *Stochastic Methods*, 4th ed., ch. 4.5 (multivariate OU process).
Meucci, A. (2010), "Review of statistical arbitrage, cointegration, and multivariate
Ornstein-Uhlenbeck", SSRN 1404905.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.signal as ss

from bayesbond.core import linalg
from bayesbond.errors import DataError, ModelError

__all__ = ["OU", "Transition", "EulerError", "phi1", "exact_transition", "euler_transition",
           "euler_error", "psd_factor", "transition_loglik", "as_observations", "as_steps",
           "infer_dt"]


class Transition(NamedTuple):
    """Exact VAR(1) form ``xi(t + dt) = Phi xi(t) + c + eps``, ``eps ~ N(0, Q)``."""

    Phi: np.ndarray
    c: np.ndarray
    Q: np.ndarray


class EulerError(NamedTuple):
    """Euler transition minus the exact one, per component (same shapes as :class:`Transition`)."""

    Phi: np.ndarray
    c: np.ndarray
    Q: np.ndarray


def phi1(z):
    """``(e^z - 1) / z`` with its limit 1 at ``z = 0``, accurate for tiny ``|z|`` (``expm1``)."""
    z = np.asarray(z, dtype=float)
    small = np.abs(z) < 1e-8
    safe = np.where(small, 1.0, z)
    return np.where(small, 1.0 + 0.5 * z, np.expm1(safe) / safe)


def _as_vector(a, n: int, name: str) -> np.ndarray:
    a = np.atleast_1d(np.asarray(a, dtype=float))
    if a.shape != (n,):
        raise ModelError(f"{name} must have shape ({n},), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ModelError(f"{name} has non-finite entries")
    return a


def _parameters(A, a, V, dt):
    """Checked ``(A, a, V, n, steps, dt_is_scalar)`` of a transition."""
    A, V = linalg.as_square(A), linalg.as_square(V, "V")
    return (A, _as_vector(a, A.shape[0], "a"), V, A.shape[0], *linalg.as_horizons(dt, "dt"))


def exact_transition(A, a, V, dt) -> Transition:
    """Exact VAR(1) form of the OU process over the step(s) ``dt``.

    Parameters
    ----------
    A : array_like (n, n)
    a : array_like (n,)
    V : array_like (n, n)
        Instantaneous covariance ``Sigma Sigma'``.
    dt : float or array_like (k,)
        Step lengths (irregular grids: one per step).

    Returns
    -------
    Transition
        ``Phi`` (n, n), ``c`` (n,), ``Q`` (n, n), with a leading axis of length k for array ``dt``.

    Notes
    -----
    ``Phi = e^{dt A}``, ``c = (int_0^dt e^{sA} ds) a`` from the augmented exponential
    ``expm(dt [[A, I], [0, 0]])`` (valid for singular ``A``) and
    ``Q = int_0^dt e^{sA} V e^{sA'} ds`` from the augmented Kronecker-sum exponential, whose
    eigenvalues are ``lambda_i + lambda_j`` and 0 (:func:`bayesbond.core.linalg.integrated_cov`):
    accurate at any horizon, also when ``A`` mixes slow and fast modes, has a unit root or is
    explosive. Steps must be finite and ``>= 0`` (:class:`~bayesbond.errors.DataError` otherwise).
    No eigen-decomposition is used, so defective ``A`` is handled exactly.
    In 1-D the closed forms ``Phi = e^{A d}``, ``c = a d phi1(A d)`` and ``Q = V d phi1(2 A d)``
    with ``phi1(z) = (e^z - 1)/z`` are used (exact for any sign of ``A``, including 0).
    """
    A, a, V, n, ds, scalar = _parameters(A, a, V, dt)
    if n == 1:
        k, v, m = A[0, 0], V[0, 0], a[0]
        z = k * ds
        Phi = np.exp(z)[:, None, None]
        c = (m * ds * phi1(z))[:, None]
        Q = (v * ds * phi1(2.0 * z))[:, None, None]
    else:
        Phi, J = linalg.expm_and_integral(A, ds)
        c = J @ a
        Q = linalg.kron_cov(A, V, ds)
    return Transition(Phi[0], c[0], Q[0]) if scalar else Transition(Phi, c, Q)


def euler_transition(A, a, V, dt) -> Transition:
    """Euler (small-``dt``) approximation of the transition: ``(I + A dt, a dt, V dt)``.

    Notes
    -----
    Expanding the exact transition in ``dt`` gives ``Phi = I + A dt + A^2 dt^2/2 + O(dt^3)``,
    ``c = a dt + A a dt^2/2 + O(dt^3)`` and ``Q = V dt + (A V + V A') dt^2/2 + O(dt^3)``; the
    Euler scheme keeps the first-order terms, so its one-step error is ``O(dt^2)``
    (see :func:`euler_error`).
    Shapes as in :func:`exact_transition`.
    """
    A, a, V, n, ds, scalar = _parameters(A, a, V, dt)
    Phi = np.eye(n)[None] + ds[:, None, None] * A[None]
    c = ds[:, None] * a[None]
    Q = ds[:, None, None] * V[None]
    return Transition(Phi[0], c[0], Q[0]) if scalar else Transition(Phi, c, Q)


def euler_error(A, a, V, dt) -> EulerError:
    """Error of the Euler transition against the exact one, ``euler - exact``, per component.

    Notes
    -----
    To leading order (see :func:`euler_transition`) the error is
    ``-(A^2 dt^2/2, A a dt^2/2, (A V + V A') dt^2/2)``: it shrinks like ``dt^2`` per step, so the
    Euler scheme is accurate when ``dt`` is small against the fastest mean-reversion time
    ``1/max|eig(A)|`` (Kloeden & Platen 1992).
    """
    ex = exact_transition(A, a, V, dt)
    eu = euler_transition(A, a, V, dt)
    return EulerError(eu.Phi - ex.Phi, eu.c - ex.c, eu.Q - ex.Q)


def psd_factor(Q) -> np.ndarray:
    """A matrix ``L`` with ``L L' = Q`` for (stacks of) positive semi-definite ``Q``.

    Cholesky when ``Q`` is positive definite, otherwise the symmetric square root from ``eigh`` with
    tiny negative eigenvalues (round-off) clipped at zero (singular ``Sigma``).
    """
    Q = np.asarray(Q, dtype=float)
    try:
        return np.linalg.cholesky(Q)
    except np.linalg.LinAlgError:
        w, U = np.linalg.eigh(0.5 * (Q + np.swapaxes(Q, -1, -2)))
        scale = np.max(np.abs(w), axis=-1, keepdims=True)
        if np.any(w < -1e-10 * np.maximum(scale, 1e-300)):
            raise ModelError("covariance matrix is not positive semi-definite") from None
        return U * np.sqrt(np.clip(w, 0.0, None))[..., None, :]


def as_observations(x):
    """Validate OU observations: a float (T, n) array, state names and the time index.

    Accepts an array (T,) or (T, n), a pandas Series or DataFrame (column names become state names,
    the index labels the times). Missing or non-finite values raise :class:`DataError` naming the
    first offending row and column; fewer than 3 observations raise too.
    """
    if isinstance(x, pd.DataFrame):
        names = [str(c) for c in x.columns]
        index = x.index
        X = x.to_numpy(dtype=float)
    elif isinstance(x, pd.Series):
        names = [str(x.name) if x.name is not None else "x"]
        index = x.index
        X = x.to_numpy(dtype=float)[:, None]
    else:
        X = np.asarray(x, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise DataError(f"x must be 1-D (T,) or 2-D (T, n), got shape {X.shape}")
        names = ["x"] if X.shape[1] == 1 else [f"x{i}" for i in range(X.shape[1])]
        index = pd.RangeIndex(len(X))
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(
            f"x has {int(bad.sum())} missing/non-finite value(s); first at row {index[r]!r}, "
            f"column {names[c]!r}. Drop or fill them explicitly (irregular steps are supported "
            "through an array dt)"
        )
    if X.shape[0] < 3:
        raise DataError(f"x needs at least 3 observations, got {X.shape[0]}")
    return X, names, index


def as_steps(dt, T: int):
    """Validate steps: a positive float, or an array of T - 1 positive steps (a constant array is
    returned as a float, so regular grids take the fast routes)."""
    d = np.asarray(dt, dtype=float)
    if d.ndim == 0:
        if not (np.isfinite(d) and d > 0):
            raise DataError(f"dt must be a positive number of years, got {dt!r}")
        return float(d)
    if d.shape != (T - 1,):
        raise DataError(f"dt must be a scalar or have T - 1 = {T - 1} entries, got shape {d.shape}")
    if not np.all(np.isfinite(d) & (d > 0)):
        k = int(np.argmax(~(np.isfinite(d) & (d > 0))))
        raise DataError(f"dt must be positive and finite; step {k} is {d[k]!r}")
    if np.allclose(d, d[0], rtol=1e-12, atol=0):
        return float(d[0])
    return d


_SPACINGS = (("week", 7.0, 52.0), ("month", 30.44, 12.0), ("quarter", 91.31, 4.0),
             ("year", 365.25, 1.0))


def infer_dt(index, name: str = "x"):
    """Years between the observations of a dated series, from its :class:`pandas.DatetimeIndex`.

    Parameters
    ----------
    index : pandas.Index
        The time index (anything but a DatetimeIndex raises :class:`DataError`).
    name : str
        Name of the series in messages.

    Returns
    -------
    float or ndarray (T - 1,)
        ``1/52``, ``1/12``, ``1/4`` or ``1`` for weekly, monthly, quarterly or annual dates (the
        median spacing within 15% of 7, 30.44, 91.31 or 365.25 days); an array of steps when some
        steps are multiples of that unit (e.g. a missing month gives ``2/12``).

    Notes
    -----
    Monthly, quarterly and annual steps are counted in calendar months (so 28- and 31-day months
    are both ``1/12``), weekly steps in days / 7.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"cannot infer dt for {name}: its index is not a DatetimeIndex; give dt (years "
            "between observations, e.g. 1/12 for monthly data)"
        )
    if len(index) < 2:
        raise DataError(f"cannot infer dt for {name}: fewer than 2 dates")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise DataError(f"cannot infer dt for {name}: the dates are not strictly increasing")
    days = np.diff(index.values).astype("timedelta64[s]").astype(float) / 86400.0
    med = float(np.median(days))
    match = [sp for sp in _SPACINGS if abs(med - sp[1]) / sp[1] < 0.15]
    if not match:
        raise DataError(
            f"cannot infer dt for {name} from a median spacing of {med:.1f} days (not weekly, "
            "monthly, quarterly or annual); give dt"
        )
    unit, span, per_year = match[0]
    if unit == "week":
        k = np.rint(days / 7.0)
        ok = np.abs(days / 7.0 - k) < 0.3
    else:
        months = index.year.to_numpy() * 12 + index.month.to_numpy()
        k = np.diff(months).astype(float) / (12.0 / per_year)
        ok = np.abs(days / span - k) < 0.3 * np.maximum(k, 1.0)
        k = np.rint(k)
        ok &= np.abs(np.diff(months) / (12.0 / per_year) - k) < 1e-9
    ok &= k >= 1
    if not ok.all():
        i = int(np.argmax(~ok))
        raise DataError(
            f"cannot infer dt for {name}: the step from {index[i].date()} to "
            f"{index[i + 1].date()} is not a whole number of {unit}s; give dt"
        )
    steps = k / per_year
    return float(steps[0]) if np.all(k == k[0]) else steps


def transition_loglik(x, dt, A, a, V, stationary_init: bool = False, pointwise: bool = False):
    """Exact Gaussian log-likelihood of discretely observed OU data.

    Parameters
    ----------
    x : array_like (T,) or (T, n)
        Observations (rows are times).
    dt : float or array_like (T - 1,)
        Step between consecutive observations (one per step for irregular grids).
    A, a, V : OU parameters (``V = Sigma Sigma'``).
    stationary_init : bool
        Add the stationary density of the first observation (needs a stable ``A``); by default the
        likelihood is conditional on ``x[0]``.
    pointwise : bool
        Return the log-density of every transition, shape (T - 1,), instead of their sum; with
        ``stationary_init`` the first of (T,) entries is ``log N(x_0; mu, P)``.

    Returns
    -------
    float or ndarray
        ``sum_i log N(x_i; Phi_i x_{i-1} + c_i, Q_i)`` (+ ``log N(x_0; mu, P)``), ``-inf`` when a
        ``Q_i`` is not positive definite (every entry with ``pointwise``).

    Notes
    -----
    The exact discretisation makes the observations a Gaussian VAR(1) with step-dependent
    ``(Phi_i, c_i, Q_i)`` from :func:`exact_transition`, so there is no discretisation error
    (Lo 1988; Phillips & Yu 2009).
    """
    A = linalg.as_square(A)
    V = linalg.as_square(V, "V")
    n = A.shape[0]
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    if x.shape[1] != n:
        raise ModelError(f"x has {x.shape[1]} columns but the process has dimension {n}")
    d = np.asarray(dt, dtype=float)
    Phi, c, Q = exact_transition(A, a, V, d)
    x0, x1 = x[:-1], x[1:]
    N = len(x1)
    fail = np.full(N + int(stationary_init), -np.inf) if pointwise else -np.inf
    log2pi = np.log(2 * np.pi)
    if d.ndim == 0:
        e = x1 - x0 @ Phi.T - c
        try:
            L = np.linalg.cholesky(Q)
        except np.linalg.LinAlgError:
            return fail
        z = np.linalg.solve(L, e.T)
        if pointwise:
            ll = -0.5 * np.sum(z**2, axis=0) - np.sum(np.log(np.diag(L))) - 0.5 * n * log2pi
        else:
            ll = -0.5 * np.sum(z**2) - N * np.sum(np.log(np.diag(L))) - 0.5 * N * n * log2pi
    else:
        if d.shape != (N,):
            raise ModelError(f"dt must be a scalar or have {N} entries (one per step), "
                             f"got shape {d.shape}")
        e = x1 - np.einsum("kij,kj->ki", Phi, x0) - c
        if n == 1:
            q = Q[:, 0, 0]
            if np.any(q <= 0):
                return fail
            ll = -0.5 * (e[:, 0] ** 2 / q + np.log(2 * np.pi * q))
            ll = ll if pointwise else np.sum(ll)
        else:
            try:
                L = np.linalg.cholesky(Q)
            except np.linalg.LinAlgError:
                return fail
            z = np.linalg.solve(L, e[..., None])[..., 0]
            logd = np.log(np.diagonal(L, axis1=-2, axis2=-1))
            ll = (-0.5 * np.sum(z**2, axis=1) - np.sum(logd, axis=1) - 0.5 * n * log2pi
                  if pointwise else -0.5 * np.sum(z**2) - np.sum(logd) - 0.5 * N * n * log2pi)
    if stationary_init:
        if not linalg.is_stable(A):
            return fail
        mu = -np.linalg.solve(A, np.atleast_1d(np.asarray(a, dtype=float)))
        P = linalg.solve_lyapunov(A, V)
        try:
            L0 = np.linalg.cholesky(P)
        except np.linalg.LinAlgError:
            return fail
        z0 = np.linalg.solve(L0, x[0] - mu)
        first = -0.5 * z0 @ z0 - np.sum(np.log(np.diag(L0))) - 0.5 * n * log2pi
        ll = np.concatenate([[first], ll]) if pointwise else ll + first
    return ll if pointwise else float(ll)


class OU:
    """Ornstein-Uhlenbeck process ``dxi = (A xi + a) dt + Sigma dW`` in ``n`` dimensions.

    Parameters
    ----------
    A : float or array_like (n, n)
        Drift matrix (``-kappa`` in 1-D). Any matrix: defective, singular or explosive.
    a : float or array_like (n,)
        Drift constant (``kappa theta`` in 1-D).
    Sigma : float or array_like (n, m)
        Volatility loading; the instantaneous covariance is ``V = Sigma Sigma'``.

    Notes
    -----
    When ``A`` is given as a scalar the process is 1-D and every method returns scalars (or 1-D
    arrays over the time axis) instead of (1,)/(1, 1) arrays. Moments (Gardiner 2009, sec. 4.5):

    ``E[xi_t | xi_0] = e^{tA} xi_0 + (int_0^t e^{sA} ds) a``,
    ``Cov[xi_t | xi_0] = int_0^t e^{sA} V e^{sA'} ds``,

    and, for stable ``A``, ``mu = -A^{-1} a`` with ``A P + P A' + V = 0``.

    Examples
    --------
    >>> ou = OU.from_kappa_theta_sigma(0.5, 0.04, 0.01)
    >>> round(ou.stationary_mean(), 6), round(ou.half_life, 4)
    (0.04, 1.3863)
    """

    def __init__(self, A, a, Sigma):
        self.scalar = np.ndim(A) == 0
        self.A = linalg.as_square(A)
        self.n = self.A.shape[0]
        self.a = _as_vector(a, self.n, "a")
        self.Sigma = linalg.as_vol_matrix(Sigma, self.n)
        self.V = self.Sigma @ self.Sigma.T

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_kappa_theta_sigma(cls, kappa: float, theta: float, sigma: float) -> OU:
        """1-D (Vasicek) process ``dx = kappa (theta - x) dt + sigma dW``: ``A = -kappa``,
        ``a = kappa theta``, ``Sigma = sigma``."""
        kappa, theta, sigma = float(kappa), float(theta), float(sigma)
        return cls(-kappa, kappa * theta, sigma)

    vasicek = from_kappa_theta_sigma

    def __repr__(self) -> str:
        if self.scalar:
            return f"OU(A={self.A[0, 0]:.6g}, a={self.a[0]:.6g}, Sigma={self.Sigma[0, 0]:.6g})"
        return f"OU(n={self.n}, A={self.A.tolist()}, a={self.a.tolist()})"

    def _out(self, x, kind: str):
        """Squeeze the state axes for 1-D processes built from scalars."""
        if not self.scalar:
            return x
        x = np.asarray(x)
        x = x[..., 0, 0] if kind == "mat" else x[..., 0]
        return float(x) if x.ndim == 0 else x

    # ---------------------------------------------------------------- 1-D names
    def _need_1d(self, name: str):
        if self.n != 1:
            raise ModelError(f"{name} is defined for 1-D processes only (this one has n={self.n})")

    @property
    def kappa(self) -> float:
        """Mean-reversion speed ``-A`` (1-D only)."""
        self._need_1d("kappa")
        return float(-self.A[0, 0])

    @property
    def theta(self) -> float:
        """Long-run mean ``-a/A`` (1-D only; needs ``A != 0``)."""
        self._need_1d("theta")
        if self.A[0, 0] == 0:
            raise ModelError("theta is undefined for kappa = 0 (Brownian motion with drift)")
        return float(-self.a[0] / self.A[0, 0])

    @property
    def sigma(self) -> float:
        """Instantaneous volatility ``sqrt(V)`` (1-D only)."""
        self._need_1d("sigma")
        return float(np.sqrt(self.V[0, 0]))

    # ---------------------------------------------------------------- moments
    def mean(self, x0, t):
        """Conditional mean ``E[xi_t | xi_0 = x0]`` for horizon(s) ``t``.

        Returns shape (n,) for scalar ``t`` and (len(t), n) otherwise (scalar / (len(t),) in 1-D).

        Notes
        -----
        ``e^{tA} x0 + J(t) a`` with ``J(t) = int_0^t e^{sA} ds`` from the augmented exponential,
        valid for singular ``A`` (``A = 0``: ``x0 + a t``).
        """
        x0 = _as_vector(x0, self.n, "x0")
        linalg.as_horizons(t, "t")
        Phi, c, _ = exact_transition(self.A, self.a, self.V, t)
        return self._out(Phi @ x0 + c, "vec")

    def cov(self, t):
        """Conditional covariance ``int_0^t e^{sA} V e^{sA'} ds`` (independent of ``x0``).

        Shape (n, n) for scalar ``t``, (len(t), n, n) otherwise (scalar / (len(t),) in 1-D).
        Horizons must be finite and ``>= 0`` (:class:`~bayesbond.errors.DataError` otherwise).
        """
        linalg.as_horizons(t, "t")
        return self._out(exact_transition(self.A, self.a, self.V, t).Q, "mat")

    def transition(self, dt) -> Transition:
        """Exact VAR(1) form ``(Phi, c, Q)`` over the step(s) ``dt`` (see :func:`exact_transition`).

        For an array of steps (irregular grid) each component gets a leading axis of length len(dt).
        """
        Phi, c, Q = exact_transition(self.A, self.a, self.V, dt)
        return Transition(self._out(Phi, "mat"), self._out(c, "vec"), self._out(Q, "mat"))

    def euler_transition(self, dt) -> Transition:
        """Euler approximation ``(I + A dt, a dt, V dt)``; see :func:`euler_transition`."""
        Phi, c, Q = euler_transition(self.A, self.a, self.V, dt)
        return Transition(self._out(Phi, "mat"), self._out(c, "vec"), self._out(Q, "mat"))

    def euler_error(self, dt) -> EulerError:
        """Euler minus exact transition; ``O(dt^2)``, see :func:`euler_error`."""
        Phi, c, Q = euler_error(self.A, self.a, self.V, dt)
        return EulerError(self._out(Phi, "mat"), self._out(c, "vec"), self._out(Q, "mat"))

    # ---------------------------------------------------------------- stationary law
    def _check_stable(self, what: str):
        eig = np.linalg.eigvals(self.A)
        bad = linalg.unstable_eigenvalues(self.A)
        if bad.size:
            shown = ", ".join(f"{z.real:.3g}{z.imag:+.3g}j" for z in eig)
            raise ModelError(
                f"{what} does not exist: A is not stable (eigenvalues {shown} include real part "
                f">= 0, up to round-off {linalg.unit_root_tol(self.A):.2g})"
            )
        return eig

    @property
    def is_stationary(self) -> bool:
        """True when every eigenvalue of ``A`` has negative real part."""
        return linalg.is_stable(self.A)

    def stationary_mean(self):
        """Stationary mean ``mu = -A^{-1} a``; raises :class:`ModelError` unless ``A`` is stable."""
        self._check_stable("the stationary mean")
        return self._out(-np.linalg.solve(self.A, self.a), "vec")

    def stationary_cov(self):
        """Stationary covariance ``P`` solving ``A P + P A' + V = 0`` (Bartels-Stewart).

        Raises :class:`ModelError` unless ``A`` is stable.
        """
        self._check_stable("the stationary covariance")
        return self._out(linalg.solve_lyapunov(self.A, self.V), "mat")

    @property
    def half_life(self) -> float:
        """Half-life ``ln 2 / kappa`` of a deviation from the mean.

        In n-D, the half-life of the slowest mode, ``ln 2 / min_i(-Re eig_i(A))``.
        """
        eig = self._check_stable("the half-life")
        return float(np.log(2.0) / np.min(-eig.real))

    def _autocov(self, lags):
        self._check_stable("the stationary autocovariance")
        P = linalg.solve_lyapunov(self.A, self.V)
        tau = np.asarray(linalg.as_real(lags, "lags"))
        ts = np.atleast_1d(tau)
        if not np.all(np.isfinite(ts)):
            i = int(np.argmax(~np.isfinite(ts)))
            raise DataError(f"lags[{i}] = {float(ts[i])!r}: lags must be finite")
        C = linalg.expm_t(self.A, np.abs(ts)) @ P[None]
        neg = ts < 0
        C[neg] = np.swapaxes(C[neg], -1, -2)
        return (C[0] if tau.ndim == 0 else C), P

    def autocov(self, lags):
        """Stationary autocovariance ``C(tau) = Cov(xi_{t+tau}, xi_t) = e^{tau A} P``.

        Negative lags use ``C(-tau) = C(tau)'``. Shape as :meth:`cov`; needs a stable ``A``.
        """
        return self._out(self._autocov(lags)[0], "mat")

    def acf(self, lags):
        """Stationary autocorrelation ``D^{-1/2} e^{tau A} P D^{-1/2}`` with ``D = diag(P)``.

        Entry (i, j) is ``Corr(xi_i(t + tau), xi_j(t))``; ``e^{-kappa |tau|}`` in 1-D.
        Shape as :meth:`cov`; needs a stable ``A``.
        """
        C, P = self._autocov(lags)
        s = np.sqrt(np.diag(P))
        return self._out(C / np.outer(s, s), "mat")

    def spectrum(self, freq):
        """Power spectral density ``S(w) = (i w I - A)^{-1} V (-i w I - A')^{-1}``.

        Parameters
        ----------
        freq : float or array_like
            Angular frequency ``w`` (radians per unit of time).

        Returns
        -------
        Real scalar / array in 1-D (``V / (w^2 + kappa^2)``); complex Hermitian (n, n) matrices
        in n-D.

        Notes
        -----
        Fourier convention ``S(w) = int C(tau) e^{-i w tau} dtau``, so
        ``C(tau) = (1/2 pi) int S(w) e^{i w tau} dw`` and ``int S dw / (2 pi) = P`` (Gardiner 2009,
        sec. 4.5). Needs a stable ``A``.
        """
        self._check_stable("the stationary spectrum")
        w = np.asarray(linalg.as_real(freq, "freq"))
        ws = np.atleast_1d(w)
        if not np.all(np.isfinite(ws)):
            i = int(np.argmax(~np.isfinite(ws)))
            raise DataError(f"freq[{i}] = {float(ws[i])!r}: frequencies must be finite")
        M = 1j * ws[:, None, None] * np.eye(self.n)[None] - self.A[None]
        Minv = np.linalg.inv(M)
        S = Minv @ self.V[None] @ np.conj(np.swapaxes(Minv, -1, -2))
        S = S[0] if w.ndim == 0 else S
        if self.scalar:
            return self._out(S.real, "mat")
        return S

    def loglik(self, x, dt, stationary_init: bool = False) -> float:
        """Exact log-likelihood of ``x`` observed at steps ``dt``; see :func:`transition_loglik`."""
        return transition_loglik(x, dt, self.A, self.a, self.V, stationary_init)

    # ---------------------------------------------------------------- simulation
    def simulate(self, x0=None, t=None, *, n_steps=None, dt=None, n_paths=1, rng=None):
        """Exact simulation on a regular or irregular time grid.

        Parameters
        ----------
        x0 : array_like (n,) or None
            Starting state at ``t[0]``; ``None`` draws it from the stationary distribution
            (needs a stable ``A``).
        t : array_like, optional
            Increasing observation times (the first is the starting time). Either ``t`` or
            ``n_steps`` and ``dt`` must be given.
        n_steps, dt : int, float
            Regular grid ``0, dt, ..., n_steps dt`` (``n_steps + 1`` points).
        n_paths : int
        rng : numpy.random.Generator or int, optional

        Returns
        -------
        ndarray
            Shape (n_paths, n_times, n), or (n_paths, n_times) for a 1-D process built from scalars.

        Notes
        -----
        ``xi_{k+1} = Phi_k xi_k + c_k + L_k z_k`` with the exact transition of each step and
        ``L_k L_k' = Q_k`` (no discretisation error). A 1-D regular grid uses a linear filter
        (:func:`scipy.signal.lfilter`) instead of a Python loop.
        """
        rng = np.random.default_rng(rng)
        if t is None:
            if n_steps is None or dt is None:
                raise ModelError("give either t (time grid) or both n_steps and dt")
            t = np.arange(int(n_steps) + 1) * float(dt)
        t = np.asarray(t, dtype=float)
        if t.ndim != 1 or t.size < 1:
            raise ModelError("t must be a 1-D array of observation times")
        if not np.all(np.isfinite(t)):
            i = int(np.argmax(~np.isfinite(t)))
            raise DataError(f"t[{i}] = {float(t[i])!r}: observation times must be finite")
        steps = np.diff(t)
        if np.any(steps <= 0):
            raise ModelError(f"t must be strictly increasing (step {int(np.argmin(steps))} is not)")
        n, m = self.n, len(t)
        x = np.empty((n_paths, m, n))
        if x0 is None:
            mu = np.atleast_1d(self.stationary_mean())
            L0 = psd_factor(np.atleast_2d(self.stationary_cov()))
            x[:, 0] = mu + rng.standard_normal((n_paths, n)) @ L0.T
        else:
            x[:, 0] = _as_vector(x0, n, "x0")
        if m > 1:
            regular = np.allclose(steps, steps[0], rtol=1e-12, atol=0.0)
            if regular:
                Phi, c, Q = exact_transition(self.A, self.a, self.V, steps[0])
                L = psd_factor(Q)
                z = rng.standard_normal((n_paths, m - 1, n)) @ L.T + c
                if n == 1:
                    phi = Phi[0, 0]
                    zi = (phi * x[:, 0, 0])[:, None]
                    x[:, 1:, 0], _ = ss.lfilter([1.0], [1.0, -phi], z[..., 0], axis=1, zi=zi)
                else:
                    for k in range(m - 1):
                        x[:, k + 1] = x[:, k] @ Phi.T + z[:, k]
            else:
                Phi, c, Q = exact_transition(self.A, self.a, self.V, steps)
                L = psd_factor(Q)
                z = np.einsum("kij,pkj->pki", L, rng.standard_normal((n_paths, m - 1, n))) + c
                for k in range(m - 1):
                    x[:, k + 1] = x[:, k] @ Phi[k].T + z[:, k]
        return x[..., 0] if self.scalar else x

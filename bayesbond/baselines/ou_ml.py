"""Maximum-likelihood estimation of Ornstein-Uhlenbeck processes from discrete observations.

``ou_ml(x, dt)`` returns an :class:`OUMLResult` with the parameters of ``dxi = (A xi + a) dt +
Sigma dW`` (``kappa``, ``theta``, ``sigma`` in 1-D), their standard errors and the log-likelihood.

Routes
------
- 1-D, regular grid, conditional likelihood: closed form, the AR(1) least-squares fit mapped to
  ``(kappa, theta, sigma)`` (optionally through a known mean), delta-method standard errors.
- n-D, regular grid, conditional likelihood, no restriction: VAR(1) least squares mapped back
  through the matrix logarithm; standard errors from the observed information of the exact
  likelihood.
- Everything else (irregular steps, stationary first observation, fixed zeros or diagonal ``A``,
  known mean, diagonal ``Sigma``): numerical maximisation of the exact Gaussian likelihood
  (:func:`bayesbond.core.ou.transition_loglik`) started from the closed-form fit.

References
----------
Lo, A. W. (1988), "Maximum likelihood estimation of generalized Ito processes with discretely
sampled data", Econometric Theory 4.
Phillips, P. C. B. and Yu, J. (2009), "Maximum likelihood and Gaussian estimation of continuous
time models in finance", Handbook of Financial Time Series.
Tang, C. Y. and Chen, S. X. (2009), "Parameter estimation and bias correction for diffusion
processes", J. Econometrics 149.
Yu, J. (2012), "Bias in the estimation of the mean reversion parameter in continuous time models",
J. Econometrics 169.
Hamilton, J. D. (1994), *Time Series Analysis*, ch. 5 and 11.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.optimize as so
from threadpoolctl import threadpool_limits

from bayesbond.core import linalg
from bayesbond.core.numdiff import num_hessian
from bayesbond.core.ou import (
    OU,
    as_observations,
    as_steps,
    exact_transition,
    infer_dt,
    phi1,
    transition_loglik,
)
from bayesbond.errors import DataError, ModelError, SpecError

__all__ = ["ou_ml", "OUMLResult", "kappa_bias", "ou_from_var1", "real_logm", "v_from_q"]


# ---------------------------------------------------------------------------------------- result
@dataclass
class OUMLResult:
    """Result of :func:`ou_ml`.

    Attributes
    ----------
    A, a, Sigma : ndarray
        Estimates, shapes (n, n), (n,), (n, n); ``Sigma`` is the lower-triangular Cholesky factor of
        ``V = Sigma Sigma'`` (diagonal under ``Sigma_structure="diagonal"``).
    se : dict
        Standard errors with the same names and shapes (``kappa``, ``theta``, ``sigma`` in 1-D);
        ``nan`` marks entries that were fixed, not estimated.
    cov_params : pandas.DataFrame
        Asymptotic covariance of the estimated parameters (inverse observed information).
    loglik : float
        Maximised log-likelihood (of the ML estimate, before any bias correction).
    nobs : int
        Number of transitions used (``T - 1``).
    dt : float or ndarray
        Step(s) between observations, in years.
    method : str
        ``"closed_form"`` or ``"numerical"``.
    stationary_init : bool
        Whether the likelihood includes the stationary density of the first observation.
    state_names : list of str
    kappa_ml, kappa_bias : float or None
        1-D with ``bias_correction=True``: the uncorrected ML estimate and the estimated bias that
        was subtracted from it.
    """

    A: np.ndarray
    a: np.ndarray
    Sigma: np.ndarray
    se: dict
    cov_params: pd.DataFrame
    loglik: float
    nobs: int
    dt: float | np.ndarray
    method: str
    stationary_init: bool = False
    state_names: list = field(default_factory=list)
    restrictions: dict = field(default_factory=dict)
    kappa_ml: float | None = None
    kappa_bias: float | None = None

    @property
    def n(self) -> int:
        """Dimension of the process."""
        return self.A.shape[0]

    @property
    def V(self) -> np.ndarray:
        """Instantaneous covariance ``Sigma Sigma'``."""
        return self.Sigma @ self.Sigma.T

    @property
    def kappa(self) -> float:
        """Mean-reversion speed (1-D): ``-A``."""
        return self.to_ou().kappa

    @property
    def theta(self) -> float:
        """Long-run mean (1-D): ``-a / A``."""
        return self.to_ou().theta

    @property
    def sigma(self) -> float:
        """Instantaneous volatility (1-D)."""
        return self.to_ou().sigma

    @property
    def mu(self) -> np.ndarray:
        """Stationary mean ``-A^{-1} a`` (raises :class:`ModelError` for a non-stable ``A``)."""
        return np.atleast_1d(self.to_ou().stationary_mean())

    @property
    def half_life(self) -> float:
        """``ln 2 / kappa`` (slowest mode in n-D)."""
        return self.to_ou().half_life

    def to_ou(self) -> OU:
        """The fitted process as an :class:`~bayesbond.core.ou.OU` (scalar in 1-D)."""
        if self.n == 1:
            return OU(float(self.A[0, 0]), float(self.a[0]), float(self.Sigma[0, 0]))
        return OU(self.A, self.a, self.Sigma)

    def summary(self) -> pd.DataFrame:
        """Table of estimates and standard errors, one row per parameter (fixed entries included,
        with ``se`` NaN)."""
        s, n, se = self.state_names, self.n, self.se
        if n == 1:
            rows = [(name, getattr(self, name), se[name]) for name in ("kappa", "theta", "sigma")]
        else:
            rows = [(f"A[{s[i]},{s[j]}]", self.A[i, j], se["A"][i, j])
                    for i in range(n) for j in range(n)]
            rows += [(f"a[{s[i]}]", self.a[i], se["a"][i]) for i in range(n)]
            rows += [(f"Sigma[{s[i]},{s[j]}]", self.Sigma[i, j], se["Sigma"][i, j])
                     for i in range(n) for j in range(i + 1)]
        return pd.DataFrame(rows, columns=["parameter", "estimate", "se"]).set_index("parameter")

    def __str__(self) -> str:
        head = (
            f"OU maximum likelihood ({self.method}, n={self.n}, nobs={self.nobs}, "
            f"loglik={self.loglik:.6g})"
        )
        return head + "\n" + self.summary().to_string(float_format=lambda v: f"{v:.6g}")


# ---------------------------------------------------------------------------------------- helpers
def real_logm(Phi, dt: float) -> np.ndarray:
    """``A = logm(Phi) / dt``, the real principal matrix logarithm.

    Raises
    ------
    ModelError
        When ``Phi`` has an eigenvalue on the closed negative real axis ``(-inf, 0]``, where no real
        (principal) logarithm exists: the data are not the exact discretisation of a real OU process
        with this step (e.g. negative first-order autocorrelation).
    """
    Phi = np.asarray(Phi, dtype=float)
    eig = np.linalg.eigvals(Phi)
    bad = eig[(eig.real <= 0) & (np.abs(eig.imag) <= 1e-12 * max(1.0, np.max(np.abs(eig))))]
    if bad.size:
        raise ModelError(
            "the estimated transition matrix Phi has eigenvalue(s) "
            f"{np.round(bad.real, 6).tolist()} on (-inf, 0]: it has no real matrix logarithm, so "
            "no real OU process with this step reproduces the VAR(1) fit; use a restricted fit "
            "(e.g. diagonal_A=True or A_mask) or check the data"
        )
    L = sla.logm(Phi)
    if np.iscomplexobj(L):
        if np.max(np.abs(L.imag)) > 1e-8 * max(1.0, np.max(np.abs(L.real))):
            raise ModelError("matrix logarithm of Phi is not real")
        L = L.real
    return L / dt


def v_from_q(A, Q, dt: float) -> np.ndarray:
    """Invert ``Q = int_0^dt e^{sA} V e^{sA'} ds`` for ``V`` (any ``A``, no stationarity needed).

    Notes
    -----
    Row-major vectorisation gives ``vec(Q) = (int_0^dt e^{s (A (+) A)} ds) vec(V)`` with the
    Kronecker sum ``A (+) A = A x I + I x A``; the integral is the augmented exponential of
    :func:`bayesbond.core.linalg.expm_and_integral`. Exact for defective and singular ``A``.
    """
    A = linalg.as_square(A)
    n = A.shape[0]
    K = np.kron(A, np.eye(n)) + np.kron(np.eye(n), A)
    _, J = linalg.expm_and_integral(K, dt)
    V = np.linalg.solve(J, np.asarray(Q, dtype=float).ravel()).reshape(n, n)
    return 0.5 * (V + V.T)


def kappa_bias(kappa: float, dt: float, nobs: int, known_mean: bool = False) -> float:
    """Leading-order finite-sample bias of the ML estimate of ``kappa`` (1-D, regular grid).

    Parameters
    ----------
    kappa, dt : float
        Mean-reversion speed (the estimate, for a plug-in correction); years between observations.
    nobs : int
        Number of transitions ``N``; the sample spans ``T = N dt`` years.
    known_mean : bool
        Whether ``theta`` is known (regression through the known mean).

    Returns
    -------
    float
        ``E[kappa_hat] - kappa`` to order ``1/T``.

    Notes
    -----
    With ``b = e^{-kappa dt}``, the AR(1) least-squares bias is ``-(1 + 3b)/N`` (``-2b/N`` with a
    known mean; Kendall 1954) and ``Var(b_hat) = (1 - b^2)/N``; a second-order expansion of
    ``kappa_hat = -ln(b_hat)/dt`` gives (Tang & Chen 2009; Yu 2012)::

        unknown mean:  (5 + 2 e^{kappa dt} + e^{2 kappa dt}) / (2 T)
        known mean:    (3 + e^{2 kappa dt}) / (2 T)

    about ``4/T`` and ``2/T`` for small ``kappa dt`` (0.2 for 20 years of data).
    """
    T = nobs * dt
    e1, e2 = np.exp(kappa * dt), np.exp(2 * kappa * dt)
    if known_mean:
        return float((3.0 + e2) / (2.0 * T))
    return float((5.0 + 2.0 * e1 + e2) / (2.0 * T))


# ---------------------------------------------------------------------------------------- 1-D
def _ar1_closed_form(x: np.ndarray, dt: float, theta0):
    """AR(1) least squares mapped to (kappa, theta, sigma), with delta-method covariance.

    The moments come from the series shifted by its mean (or by ``theta0``), ``u``, in four passes:
    with ``y = u[1:]``, ``z = u[:-1]``: ``S_uu = u'u``, ``S_yz = y'z``, ``S_y = sum y``,
    ``S_z = sum z`` (end corrections of ``sum u``), then the centred OLS formulas
    ``b = (S_yz - S_y S_z/N) / (S_zz - S_z^2/N)``, ``RSS = Syy_c - b^2 Szz_c``.
    """
    N = len(x) - 1
    shift = float(x.mean()) if theta0 is None else float(theta0)
    u = x - shift
    S_uu = float(np.dot(u, u))
    S_yz = float(np.dot(u[1:], u[:-1]))
    S_u = float(u.sum())
    S_y, S_z = S_u - u[0], S_u - u[-1]
    S_yy, S_zz = S_uu - u[0] ** 2, S_uu - u[-1] ** 2
    if theta0 is None:
        zm, ym = S_z / N, S_y / N
        Szz = S_zz - N * zm * zm
        Syz = S_yz - N * zm * ym
        Syy = S_yy - N * ym * ym
        b = Syz / Szz
        c_u = ym - b * zm
        c = c_u + shift * (1.0 - b)
        rss = Syy - b * Syz
        zbar = zm + shift
    else:
        Szz = S_zz
        b = S_yz / Szz
        c = theta0 * (1 - b)
        rss = S_yy - b * S_yz
        zbar = None
    if not (0.0 < b < 1.0):
        raise ModelError(
            f"the AR(1) coefficient is b = {b:.6g}; the OU (mean-reverting) MLE needs 0 < b < 1 "
            "(b >= 1: no mean reversion in the sample, b <= 0: negative autocorrelation)"
        )
    s2 = rss / N
    kappa = -np.log(b) / dt
    theta = c / (1.0 - b) if theta0 is None else float(theta0)
    sigma = np.sqrt(s2 * 2.0 * kappa / (1.0 - b * b))
    # covariance of (c, b, s2) from the AR(1) information, then the delta method
    if theta0 is None:
        cov_cb = s2 * np.array([[1.0 / N + zbar**2 / Szz, -zbar / Szz], [-zbar / Szz, 1.0 / Szz]])
    else:
        cov_cb = np.array([[0.0, 0.0], [0.0, s2 / Szz]])
    cov = np.zeros((3, 3))
    cov[:2, :2] = cov_cb
    cov[2, 2] = 2.0 * s2**2 / N
    # rows: kappa, theta, sigma; columns: c, b, s2
    J = np.zeros((3, 3))
    J[0, 1] = -1.0 / (b * dt)
    if theta0 is None:
        J[1, 0] = 1.0 / (1.0 - b)
        J[1, 1] = c / (1.0 - b) ** 2
    J[2, 1] = 0.5 * sigma * (1.0 / (b * np.log(b)) + 2.0 * b / (1.0 - b * b))
    J[2, 2] = 0.5 * sigma / s2
    cov_k = J @ cov @ J.T
    return kappa, theta, sigma, cov_k


def _result_1d(kappa, theta, sigma, cov3, free, ll, nobs, dt, method, stat, names, restr,
               kappa_ml=None, bias=None):
    pn = ["kappa", "theta", "sigma"]
    se = {p: (float(np.sqrt(cov3[i, i])) if free[i] else np.nan) for i, p in enumerate(pn)}
    keep = [i for i in range(3) if free[i]]
    cov_df = pd.DataFrame(cov3[np.ix_(keep, keep)], index=[pn[i] for i in keep],
                          columns=[pn[i] for i in keep])
    return OUMLResult(
        A=np.array([[-kappa]]), a=np.array([kappa * theta]), Sigma=np.array([[sigma]]), se=se,
        cov_params=cov_df, loglik=float(ll), nobs=nobs, dt=dt, method=method,
        stationary_init=stat, state_names=names, restrictions=restr, kappa_ml=kappa_ml,
        kappa_bias=bias,
    )


# ---------------------------------------------------------------------------------------- n-D
class _Packer:
    """Map between a free-parameter vector and (A, a, L) under the restrictions.

    Free parameters: the entries of ``A`` where ``mask`` is True (others fixed at 0), ``a`` unless
    the mean is known (then ``a = -A mu``), and the lower-triangular (or diagonal) entries of the
    Cholesky factor ``L`` of ``V``; in the optimisation (``log_diag=True``) the diagonal of ``L``
    enters through its logarithm to keep it positive.
    """

    def __init__(self, n, mask, mu, sigma_structure):
        self.n = n
        self.mask = mask
        self.mu = mu
        self.structure = sigma_structure
        self.lidx = (np.diag_indices(n) if sigma_structure == "diagonal" else np.tril_indices(n))
        self.is_diag = self.lidx[0] == self.lidx[1]
        self.nA = int(mask.sum())
        self.na = 0 if mu is not None else n
        self.p = self.nA + self.na + len(self.lidx[0])

    def unpack(self, u, log_diag=False):
        n = self.n
        A = np.zeros((n, n))
        A[self.mask] = u[: self.nA]
        if self.mu is None:
            a = u[self.nA: self.nA + n].copy()
        else:
            a = -A @ self.mu
        lv = u[self.nA + self.na:].copy()
        if log_diag:
            lv[self.is_diag] = np.exp(lv[self.is_diag])
        L = np.zeros((n, n))
        L[self.lidx] = lv
        return A, a, L

    def pack(self, A, a, L, log_diag=False):
        lv = L[self.lidx].copy()
        if log_diag:
            lv[self.is_diag] = np.log(np.abs(lv[self.is_diag]))
        parts = [A[self.mask]]
        if self.mu is None:
            parts.append(a)
        parts.append(lv)
        return np.concatenate(parts)

    def names(self, s):
        n = self.n
        out = [f"A[{s[i]},{s[j]}]" for i in range(n) for j in range(n) if self.mask[i, j]]
        if self.mu is None:
            out += [f"a[{s[i]}]" for i in range(n)]
        out += [f"Sigma[{s[i]},{s[j]}]" for i, j in zip(*self.lidx, strict=True)]
        return out


def ou_from_var1(X, dt: float, *, fallback: bool = False):
    """OU parameters ``(A, a, L)`` from the VAR(1) least-squares fit of ``X`` (T, n).

    ``X`` (T, n): observations on a regular grid ``dt`` years apart, oldest first. With
    ``fallback`` (starting values) a ``Phi`` without a real logarithm gives the Euler map
    ``A = (Phi - I) / dt`` and a ``V`` that is not positive definite ``V = Q / dt``, instead of a
    :class:`~bayesbond.errors.ModelError`. Returns ``A, a`` and the Cholesky factor ``L`` of ``V``.

    Notes
    -----
    Regress ``x_i`` on ``(1, x_{i-1})``: ``x_i = c + Phi x_{i-1} + e_i``, ``Q = E'E / N``; then
    invert the exact discretisation: ``A = logm(Phi) / dt`` (:func:`real_logm`),
    ``a = (int_0^dt e^{sA} ds)^{-1} c`` and ``V`` from ``Q`` by :func:`v_from_q`. This is the
    conditional MLE when the map is one-to-one (invariance of ML).
    """
    Y, Z = X[1:], X[:-1]
    N, n = Y.shape
    Zc = np.column_stack([np.ones(N), Z])
    B, *_ = np.linalg.lstsq(Zc, Y, rcond=None)
    c, Phi = B[0], B[1:].T
    E = Y - Zc @ B
    Q = E.T @ E / N
    try:
        A = real_logm(Phi, dt)
    except (ModelError, np.linalg.LinAlgError):
        if not fallback:
            raise
        A = (Phi - np.eye(n)) / dt
    _, J = linalg.expm_and_integral(A, dt)
    a = np.linalg.solve(J, c)
    V = v_from_q(A, Q, dt)
    try:
        L = np.linalg.cholesky(V)
    except np.linalg.LinAlgError:
        if fallback:
            return A, a, np.linalg.cholesky(Q / dt)
        raise ModelError(
            "the covariance V implied by the VAR(1) residual covariance is not positive definite "
            f"(eigenvalues {np.round(np.linalg.eigvalsh(V), 10).tolist()}); use a restricted fit"
        ) from None
    return A, a, L


def _start_values(Y, dt_mean, packer):
    """Starting (A, a, L) on the standardised data: the unrestricted fit, restricted."""
    n = Y.shape[1]
    try:
        A0, a0, L0 = ou_from_var1(Y, dt_mean)
        if np.max(np.linalg.eigvals(A0).real) >= 0:
            raise ModelError("unstable start")
    except ModelError:
        kap = []
        for i in range(n):
            b = np.corrcoef(Y[1:, i], Y[:-1, i])[0, 1]
            kap.append(-np.log(b) / dt_mean if 0 < b < 1 else 1.0 / (len(Y) * dt_mean))
        A0 = -np.diag(kap)
        a0 = -A0 @ Y.mean(0)
        L0 = np.diag(np.std(np.diff(Y, axis=0), axis=0) / np.sqrt(dt_mean))
    A0 = np.where(packer.mask, A0, 0.0)
    if packer.structure == "diagonal":
        L0 = np.diag(np.sqrt(np.diag(L0 @ L0.T)))
    return A0, a0, L0


class _Scaling:
    """Standardisation ``y = D (x - m)`` and the induced (linear) map of OU parameters.

    With ``x = D^{-1} y + m``: ``A_x = D^{-1} A_y D``, ``a_x = D^{-1} a_y - A_x m`` and
    ``L_x = D^{-1} L_y``; diagonal ``D`` keeps zero patterns of ``A`` and the shape of ``L``.
    The log-likelihoods differ by the Jacobian ``sum(log D)`` per observed density.
    """

    def __init__(self, X):
        self.m = X.mean(0)
        sd = X.std(0)
        self.D = 1.0 / np.where(sd > 0, sd, 1.0)
        self.Y = (X - self.m) * self.D

    def to_y(self, A, a, L):
        D, m = self.D, self.m
        return D[:, None] * A / D[None, :], D * (a + A @ m), D[:, None] * L

    def to_x(self, A, a, L):
        D, m = self.D, self.m
        Ax = A * D[None, :] / D[:, None]
        return Ax, a / D - Ax @ m, L / D[:, None]


def _information_cov(sc, dt, pk_y, pk_x, Ay, ay, Ly, stationary_init):
    """Inverse observed information of the exact likelihood, in the x-space free parameters.

    The Hessian is taken by central differences in the well-scaled standardised problem and mapped
    to the original units with the exact Jacobian of the linear map :meth:`_Scaling.to_x`.
    """
    v = pk_y.pack(Ay, ay, Ly)

    def nll(w):
        A, a, L = pk_y.unpack(w)
        with np.errstate(all="ignore"):
            return -transition_loglik(sc.Y, dt, A, a, L @ L.T, stationary_init)

    H = num_hessian(nll, v, 1e-4 * np.maximum(np.abs(v), 1e-1))
    try:
        cov_y = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        cov_y = np.full_like(H, np.nan)

    def map_x(w):
        return pk_x.pack(*sc.to_x(*pk_y.unpack(w)))

    base = map_x(np.zeros_like(v))
    J = np.column_stack([map_x(e) - base for e in np.eye(len(v))])
    return J @ cov_y @ J.T


@threadpool_limits.wrap(limits=1, user_api="blas")  # tiny matrices: threads only contend
def _numerical_fit(X, dt, pk_x, stationary_init, start=None):
    """Maximise the exact likelihood on standardised data; returns (A, a, L, loglik, cov)."""
    n = X.shape[1]
    sc = _Scaling(X)
    mu_y = None if pk_x.mu is None else sc.D * (pk_x.mu - sc.m)
    pk_y = _Packer(n, pk_x.mask, mu_y, pk_x.structure)
    dt_mean = float(np.mean(dt))
    A0, a0, L0 = _start_values(sc.Y, dt_mean, pk_y) if start is None else sc.to_y(*start)
    N = len(X) - 1

    def nll(u):
        A, a, L = pk_y.unpack(u, log_diag=True)
        with np.errstate(all="ignore"):
            try:
                ll = transition_loglik(sc.Y, dt, A, a, L @ L.T, stationary_init)
            except (np.linalg.LinAlgError, ValueError):
                return 1e20
        return -ll / N if np.isfinite(ll) else 1e20

    u0 = pk_y.pack(A0, a0, L0, log_diag=True)
    res = so.minimize(nll, u0, method="BFGS", options={"gtol": 1e-8, "maxiter": 2000})
    gnorm = float(np.max(np.abs(so.approx_fprime(res.x, nll, 1e-8))))
    if not res.success or gnorm > 1e-6:
        polish = so.minimize(nll, res.x, method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 200 * len(u0)})
        res = so.minimize(nll, polish.x if polish.fun < res.fun else res.x, method="BFGS",
                          options={"gtol": 1e-8, "maxiter": 2000})
        gnorm = float(np.max(np.abs(so.approx_fprime(res.x, nll, 1e-8))))
    if res.fun >= 1e20:
        raise ModelError("the likelihood could not be evaluated at any tried parameter value")
    if gnorm > 1e-4:
        warnings.warn(f"ou_ml: the optimiser stopped with gradient {gnorm:.2g} ({res.message})",
                      RuntimeWarning, stacklevel=3)
    Ay, ay, Ly = pk_y.unpack(res.x, log_diag=True)
    cov = _information_cov(sc, dt, pk_y, pk_x, Ay, ay, Ly, stationary_init)
    A, a, L = sc.to_x(Ay, ay, Ly)
    ll = transition_loglik(X, dt, A, a, L @ L.T, stationary_init)
    return A, a, L, ll, cov


# ---------------------------------------------------------------------------------------- API
_UNITS = (None, "decimal", "percent", "level")
#: A rate series in percent whose largest |value| stays below this (0.25%) over the whole sample is
#: more likely decimals given as percent (5% = 0.05 read as 0.05%).
PERCENT_FLOOR = 0.25


def _check_units(X, names, units):
    """Apply ``units`` to the observations (see :func:`ou_ml`); returns the decimal data."""
    if units not in _UNITS:
        raise SpecError(f"units must be None, 'decimal', 'percent' or 'level', got {units!r}")
    if units == "level":
        return X
    big = np.max(np.abs(X), axis=0)
    if units == "percent":
        if np.max(big) < PERCENT_FLOOR:
            warnings.warn(
                f"units='percent' but |x| never exceeds {np.max(big):.4g} (in percent, a rate "
                f"that never rose above {PERCENT_FLOOR}%): the series may already be decimals; "
                "drop units='percent' if so", UserWarning, stacklevel=3)
        return X / 100.0
    j = int(np.argmax(big))
    if big[j] > 1.0:
        msg = (f"x looks like percent: |x| reaches {big[j]:.4g} in column {names[j]!r}, while "
               "rates are decimals per year in bayesbond (5% = 0.05); pass decimals, "
               "units='percent' to convert, or units='level' for a series that is not a rate")
        if units == "decimal":
            raise DataError(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)
    return X


def _resolve_dt(dt, index, T, names):
    """``dt`` as given (checked against a dated index) or inferred from the index."""
    label = names[0] if len(names) == 1 else "x"
    if dt is None:
        if not isinstance(index, pd.DatetimeIndex):
            raise DataError(
                "dt is not given and x has no DatetimeIndex to infer it from: pass dt (years "
                "between observations, e.g. 1/12 for monthly data) or a dated Series/DataFrame"
            )
        return as_steps(infer_dt(index, label), T)
    d = as_steps(dt, T)
    if isinstance(index, pd.DatetimeIndex):
        try:
            implied = infer_dt(index, label)
        except DataError:
            return d
        gap = np.max(np.abs(np.asarray(d) - implied) / np.asarray(implied))
        if gap > 0.02:
            shown = f"{float(np.median(implied)):.4g}"
            warnings.warn(
                f"dt = {dt if np.ndim(dt) == 0 else 'array'} does not match the dates of "
                f"{label!r} "
                f"(their spacing gives dt = {shown} years, e.g. 1/12 = 0.0833 for monthly data); "
                "the explicit dt is used -- check its units (years between observations)",
                UserWarning,
                stacklevel=3,
            )
    return d


def ou_ml(x, dt=None, *, units=None, known_mean=None, A_mask=None, diagonal_A: bool = False,
          Sigma_structure: str = "full", stationary_init: bool = False,
          bias_correction: bool = False, method: str = "auto") -> OUMLResult:
    """Maximum-likelihood estimate of an OU process ``dxi = (A xi + a) dt + Sigma dW``.

    Parameters
    ----------
    x : array_like (T,) or (T, n), pandas Series or DataFrame
        Observations, oldest first. Column names become state labels. Missing values raise.
    dt : float or array_like (T - 1,), optional
        Years between consecutive observations (1/12 for monthly data); an array gives irregular
        steps. Default: inferred from a dated ``x`` (:func:`~bayesbond.core.ou.infer_dt`). An
        explicit ``dt`` wins, with a ``UserWarning`` when it is more than 2% off the dates.
    units : {None, "decimal", "percent", "level"}
        Units of ``x`` (rates are decimals per year). ``None`` warns and ``"decimal"`` raises
        :class:`DataError` when ``|x| > 1``; ``"percent"`` divides ``x`` (and ``known_mean``) by
        100; ``"level"``: a series that is not a rate (no check).
    known_mean : float or array_like (n,), optional
        Known stationary mean ``theta`` / ``mu`` (then ``a = -A mu`` is not estimated).
    A_mask : array_like of bool (n, n), optional
        Free entries of ``A``; the others are fixed at zero.
    diagonal_A : bool
        Shortcut for ``A_mask = I``.
    Sigma_structure : {"full", "diagonal"}
        ``Sigma`` lower-triangular (any ``V``) or diagonal (independent shocks).
    stationary_init : bool
        Include the stationary density of the first observation (exact, unconditional likelihood);
        default is the likelihood conditional on ``x[0]``.
    bias_correction : bool
        1-D, regular steps: subtract the leading-order bias of ``kappa`` (:func:`kappa_bias`)
        and recompute ``sigma^2 = s^2 / (dt phi1(-2 kappa dt))``; ``theta``, ``se`` and
        ``loglik`` stay those of the ML estimate (stored: ``kappa_ml``, ``kappa_bias``).
    method : {"auto", "closed_form", "numerical"}
        ``"auto"``: the closed form where it is the exact MLE (regular steps, conditional
        likelihood, no restriction but a known mean in 1-D), numerical ML otherwise.

    Returns
    -------
    OUMLResult

    Raises
    ------
    DataError
        Missing values, fewer than 3 observations, bad ``dt`` (or none given for undated data),
        percent data with ``units="decimal"``.
    SpecError
        Inconsistent restrictions.
    ModelError
        1-D: AR coefficient outside (0, 1); n-D: no real logarithm of the fitted ``Phi``.

    Notes
    -----
    The exact discretisation is the VAR(1) ``xi_i = Phi xi_{i-1} + c + eps_i``, ``eps ~ N(0, Q)``
    with ``Phi = e^{dt A}``, ``c = (int_0^dt e^{sA} ds) a``, ``Q = int_0^dt e^{sA} V e^{sA'} ds``.
    The map ``(A, a, V) -> (Phi, c, Q)`` is one-to-one when ``Phi`` has a real principal logarithm,
    so the conditional MLE is the VAR(1) least-squares fit mapped back (invariance of ML):

    - 1-D: regress ``x_i`` on ``(1, x_{i-1})`` -> ``b, c``, ``s^2 = RSS/N``;
      ``kappa = -ln(b)/dt``, ``theta = c/(1 - b)``, ``sigma^2 = 2 kappa s^2/(1 - b^2)``.
      Standard errors: delta method from ``Cov(c, b) = s^2 (X'X)^{-1}``, ``Var(s^2) = 2 s^4/N``.
    - n-D: ``A = logm(Phi)/dt``, ``a = (int_0^dt e^{sA} ds)^{-1} c``, ``V`` from ``Q`` by
      :func:`v_from_q`; ``Sigma`` the Cholesky factor of ``V``. Standard errors: inverse
      numerical Hessian of the exact log-likelihood.

    Restricted fits maximise :func:`~bayesbond.core.ou.transition_loglik` with BFGS (and a
    Nelder-Mead polish) on standardised data, started from the unrestricted fit.
    """
    X, names, index = as_observations(x)
    T, n = X.shape
    X = _check_units(X, names, units)
    if units == "percent" and known_mean is not None:
        known_mean = np.asarray(known_mean, dtype=float) / 100.0
    dt = _resolve_dt(dt, index, T, names)
    regular = np.ndim(dt) == 0
    if Sigma_structure not in ("full", "diagonal"):
        raise SpecError(f"Sigma_structure must be 'full' or 'diagonal', got {Sigma_structure!r}")
    if method not in ("auto", "closed_form", "numerical"):
        raise SpecError(f"method must be 'auto', 'closed_form' or 'numerical', got {method!r}")
    if A_mask is not None and diagonal_A:
        raise SpecError("give either A_mask or diagonal_A, not both")
    mask = np.eye(n, dtype=bool) if diagonal_A else np.ones((n, n), dtype=bool)
    if A_mask is not None:
        mask = np.asarray(A_mask, dtype=bool)
        if mask.shape != (n, n):
            raise SpecError(f"A_mask must have shape ({n}, {n}), got {mask.shape}")
    mu = None
    if known_mean is not None:
        mu = np.atleast_1d(np.asarray(known_mean, dtype=float))
        if mu.shape != (n,):
            raise SpecError(f"known_mean must have {n} entries, got shape {mu.shape}")
    restr = {"known_mean": None if mu is None else mu.tolist(), "A_mask": mask.tolist(),
             "Sigma_structure": Sigma_structure}
    unrestricted = bool(mask.all()) and (Sigma_structure == "full" or n == 1)
    closed_ok = regular and not stationary_init and unrestricted and (mu is None or n == 1)
    if method == "closed_form" and not closed_ok:
        raise SpecError("the closed form needs regular steps, the conditional likelihood and no "
                        "restriction (other than a known mean in 1-D); use method='numerical'")
    use_closed = closed_ok and method != "numerical"
    if bias_correction and not (n == 1 and regular):
        raise SpecError("bias_correction is available for 1-D fits on a regular grid only")
    N = T - 1

    if n == 1:
        theta0 = None if mu is None else float(mu[0])
        free = (True, mu is None, True)
        if use_closed:
            kappa, theta, sigma, cov3 = _ar1_closed_form(X[:, 0], dt, theta0)
            how = "closed_form"
        else:
            pk = _Packer(1, mask, mu, "full")
            start = None
            try:
                k0, th0, s0, _ = _ar1_closed_form(X[:, 0], float(np.mean(dt)), theta0)
                start = (np.array([[-k0]]), np.array([k0 * th0]), np.array([[s0]]))
            except ModelError:
                pass
            A, a, L, _, cov = _numerical_fit(X, dt, pk, stationary_init, start)
            kappa, theta, sigma = -A[0, 0], -a[0] / A[0, 0], abs(L[0, 0])
            # delta method from (A, [a], L) to (kappa, theta, sigma)
            if mu is None:
                Jd = np.array([[-1.0, 0, 0], [a[0] / A[0, 0] ** 2, -1.0 / A[0, 0], 0], [0, 0, 1.0]])
                cov3 = Jd @ cov @ Jd.T
            else:
                cov3 = np.zeros((3, 3))
                cov3[0, 0], cov3[2, 2] = cov[0, 0], cov[1, 1]
                cov3[0, 2] = cov3[2, 0] = -cov[0, 1]
            how = "numerical"
        if kappa <= 0:
            raise ModelError(f"estimated kappa = {kappa:.6g} <= 0: no mean reversion in the data")
        if how == "closed_form":  # at the conditional MLE the residual variance is s^2 = RSS/N
            s2 = sigma**2 * dt * float(phi1(-2.0 * kappa * dt))
            ll = -0.5 * N * (np.log(2.0 * np.pi * s2) + 1.0)
        else:
            ll = transition_loglik(X, dt, -kappa, kappa * theta, sigma**2, stationary_init)
        k_ml = bias = None
        if bias_correction:
            k_ml = kappa
            bias = kappa_bias(kappa, dt, N, known_mean=mu is not None)
            kappa = kappa - bias
            if kappa <= 0:
                warnings.warn(f"bias-corrected kappa = {kappa:.4g} <= 0 (ML {k_ml:.4g}, bias "
                              f"{bias:.4g}): the sample shows no significant mean reversion",
                              RuntimeWarning, stacklevel=2)
            Phi, _, Qs = exact_transition(-k_ml, k_ml * theta, sigma**2, dt)
            s2 = float(Qs[0, 0])
            sigma = float(np.sqrt(s2 / (dt * phi1(-2.0 * kappa * dt))))
        return _result_1d(kappa, theta, sigma, cov3, free, ll, N, dt, how, stationary_init,
                          names, restr, k_ml, bias)

    pk = _Packer(n, mask, mu, Sigma_structure)
    if use_closed:
        A, a, L = ou_from_var1(X, dt)
        sc = _Scaling(X)
        with threadpool_limits(limits=1, user_api="blas"):
            cov = _information_cov(sc, dt, pk, pk, *sc.to_y(A, a, L), False)
        ll = transition_loglik(X, dt, A, a, L @ L.T)
        how = "closed_form"
    else:
        A, a, L, ll, cov = _numerical_fit(X, dt, pk, stationary_init)
        how = "numerical"
    pnames = pk.names(names)
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    seA = np.full((n, n), np.nan)
    seA[mask] = sd[: pk.nA]
    sea = np.full(n, np.nan)
    if mu is None:
        sea[:] = sd[pk.nA: pk.nA + n]
    seL = np.full((n, n), np.nan)
    seL[pk.lidx] = sd[pk.nA + pk.na:]
    return OUMLResult(
        A=A, a=a, Sigma=L, se={"A": seA, "a": sea, "Sigma": seL},
        cov_params=pd.DataFrame(cov, index=pnames, columns=pnames), loglik=float(ll), nobs=N,
        dt=dt, method=how, stationary_init=stationary_init, state_names=names, restrictions=restr,
    )

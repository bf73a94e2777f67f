"""Maximum-likelihood estimation of the Gaussian affine term-structure model under P and P*.

:func:`affine_ml` fits the canonical model of :mod:`bayesbond.core.affine_canonical` (JSZ 2011)
to a panel of zero-coupon yields, by the Kalman filter (all yields observed with i.i.d. error) or by
the portfolio likelihood (the first principal-component portfolios priced without error).
The result object :class:`AffineMLResult` lives in :mod:`bayesbond.baselines.affine_result`.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy import optimize

from bayesbond.baselines.affine_result import PARAM_NAMES, AffineMLResult, factor_names
from bayesbond.core import linalg
from bayesbond.core.affine_canonical import (
    canonical,
    eigen_from_raw,
    eigen_to_raw,
    eigenvalues,
    pca_weights,
)
from bayesbond.core.kalman import kalman_filter, kalman_smoother
from bayesbond.core.ou import exact_transition, infer_dt, transition_loglik
from bayesbond.errors import ConvergenceWarning, DataError, ModelError, SpecError

__all__ = ["affine_ml", "AffineMLResult", "AffineSpec", "prepare_yields"]

_K_SCALE = 0.01  # k_inf = 0.01 * raw
_OFF_SCALE = 0.01  # off-diagonal Sigma = 0.01 * raw
_A_SCALE = 0.01  # a = 0.01 * raw
_LOG2PI = float(np.log(2 * np.pi))
# bounds of the raw eigen-structure (log gaps between P* speeds, per year): a gap below 1e-4
# makes the latent loadings collinear (T = W B singular); speeds above 50 a year are not
# identified by maturities of a month or more and once sent the unbounded least-squares step
# to eigenvalues near -16,000 (and, from there, to a singular canonical rotation)
_RAW_LO, _RAW_HI = float(np.log(1e-4)), float(np.log(50.0))
_START_ERRORS = (np.linalg.LinAlgError, ModelError, ValueError, FloatingPointError, OverflowError)


def _one_blas_thread():
    """Limit BLAS to one thread: the matrices are tiny and threads only contend (10x slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with the scientific stack
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def _log(msg):
    import logging

    logging.getLogger("bayesbond.affine_ml").debug(msg)


# ----------------------------------------------------------------------------------- data
_MATURITY_UNITS = (None, "years", "months")


def prepare_yields(yields, maturities=None, dt=None, maturity_units=None):
    """Validate a yield panel: returns ``(Y (T, p), tau (p,), dates, dt)``.

    ``yields`` is a DataFrame (index dates, columns maturities in years) or an array with
    ``maturities`` given. ``dt`` (years between observations) is inferred from a monthly, weekly,
    quarterly or annual DatetimeIndex when not given (:func:`bayesbond.core.ou.infer_dt`; a
    missing date raises, since the filter needs a regular grid: insert a row of NaN for it).

    ``maturity_units``: ``None`` checks that the maturities are years and raises
    :class:`DataError` when they look like months (any maturity above 40, or all whole
    multiples of 3 months, such as 3, 6, 12, 24, 60, 120; whole years such as 5, 7, 10, 20, 30
    pass); ``"months"`` divides them by 12; ``"years"``
    accepts them as they are. Yields in percent (``|y| > 1``) raise likewise.
    """
    if maturity_units not in _MATURITY_UNITS:
        raise SpecError(
            f"maturity_units must be None, 'years' or 'months', got {maturity_units!r}"
        )
    if isinstance(yields, pd.DataFrame):
        dates = yields.index
        if maturities is None:
            try:
                maturities = np.asarray(yields.columns, dtype=float)
            except (TypeError, ValueError):
                raise DataError(
                    "yield columns must be maturities in years (floats) or pass `maturities`; "
                    f"got columns {list(yields.columns)[:5]}"
                ) from None
        for col in yields.columns:
            if not pd.api.types.is_numeric_dtype(yields[col]):
                raise DataError(f"yield column {col!r} is not numeric")
        Y = yields.to_numpy(dtype=float)
    else:
        Y = np.asarray(yields, dtype=float)
        dates = pd.RangeIndex(Y.shape[0], name="date")
    if Y.ndim != 2:
        raise DataError(f"yields must be a (dates x maturities) table, got shape {Y.shape}")
    if maturities is None:
        raise DataError("pass `maturities` (years) when `yields` is not a DataFrame")
    tau = np.asarray(maturities, dtype=float).ravel()
    if tau.shape[0] != Y.shape[1]:
        raise DataError(f"{tau.shape[0]} maturities for {Y.shape[1]} yield columns")
    if np.any(~np.isfinite(tau)) or np.any(tau <= 0):
        raise DataError(f"maturities must be positive years; got {tau.tolist()}")
    if maturity_units == "months":
        tau = tau / 12.0
    elif maturity_units is None:
        whole = bool(np.all(tau == np.round(tau)) and np.all(tau % 3 == 0))
        if tau.max() > 40 or whole:
            why = (f"the longest is {tau.max():g}" if tau.max() > 40
                   else "all are whole multiples of 3, as month grids are")
            raise DataError(
                f"maturities look like months ({why}: {tau.tolist()[:8]}); maturities are read "
                "in years: divide them by 12, pass maturity_units='months' to convert, or "
                "maturity_units='years' if they really are years"
            )
    if np.any(np.diff(tau) <= 0):
        raise DataError(f"maturities must be strictly increasing; got {tau.tolist()}")
    if np.isinf(Y).any():
        t, j = np.argwhere(np.isinf(Y))[0]
        raise DataError(f"infinite yield on date {dates[t]} at maturity {tau[j]}")
    finite = Y[np.isfinite(Y)]
    if finite.size and np.nanmax(np.abs(finite)) > 1.0:
        j = int(np.nanargmax(np.nanmax(np.abs(Y), axis=0)))
        raise DataError(
            f"yields look like percent (|y| > 1 at maturity {tau[j]}); pass decimals (5% = 0.05)"
        )
    if dt is None:
        if not isinstance(dates, pd.DatetimeIndex) or len(dates) < 3:
            raise DataError(
                "cannot infer dt: give `dt` (years between observations) or a DatetimeIndex"
            )
        dt = infer_dt(dates, "yields")
        if np.ndim(dt):
            i = int(np.argmax(dt != np.min(dt)))
            raise DataError(
                f"the yield dates are not a regular grid (a gap from {dates[i].date()} to "
                f"{dates[i + 1].date()}); insert a row of NaN for each missing date (the Kalman "
                "filter handles missing yields) or give dt"
            )
    dt = float(dt)
    if not (np.isfinite(dt) and dt > 0):
        raise DataError(f"dt must be positive, got {dt}")
    return Y, tau, dates, dt


# ----------------------------------------------------------------------------- parameters
class AffineSpec:
    """Packing of the canonical parameters into an unconstrained, well-scaled vector ``theta``.

    ``theta = [eig_raw (n), k_raw, Sigma (lower triangle, log diagonal), A (n x n), a_raw (n),
    log sigma_e (1 or p)]`` with the eigen-structure from
    :func:`~bayesbond.core.affine_canonical.eigen_from_raw`, ``k_inf = 0.01 k_raw``,
    off-diagonal Sigma and ``a`` scaled by 0.01.
    """

    def __init__(self, n, tau, W, dt, measurement_error="common"):
        if measurement_error not in ("common", "maturity"):
            raise SpecError(
                f"measurement_error must be 'common' or 'maturity', got {measurement_error!r}"
            )
        self.n, self.tau, self.W, self.dt = n, np.asarray(tau, float), np.asarray(W, float), dt
        self.p = len(self.tau)
        self.measurement_error = measurement_error
        self.n_sig = 1 if measurement_error == "common" else self.p
        self.tril = np.tril_indices(n)
        self.sizes = {
            "lam": n,
            "k": 1,
            "L": len(self.tril[0]),
            "A": n * n,
            "a": n,
            "sig": self.n_sig,
        }
        self.slices = {}
        i = 0
        for k, s in self.sizes.items():
            self.slices[k] = slice(i, i + s)
            i += s
        self.size = i

    def unpack(self, theta):
        th = np.asarray(theta, float)
        n = self.n
        eig = eigen_from_raw(np, th[self.slices["lam"]], n)
        k_inf = _K_SCALE * th[self.slices["k"]][0]
        L = np.zeros((n, n))
        L[self.tril] = th[self.slices["L"]]
        diag = np.diag_indices(n)
        off = np.tril(np.ones((n, n), bool), -1)
        L[off] *= _OFF_SCALE
        L[diag] = np.exp(L[diag])
        A = th[self.slices["A"]].reshape(n, n)
        a = _A_SCALE * th[self.slices["a"]]
        sig = np.exp(th[self.slices["sig"]])
        sig_e = np.full(self.p, sig[0]) if self.n_sig == 1 else sig
        return {"eig": eig, "k_inf": k_inf, "Sigma": L, "A": A, "a": a, "sigma_e": sig_e}

    def pack(self, eig_raw, k_inf, Sigma, A, a, sigma_e):
        n = self.n
        L = np.array(Sigma, float)
        L[np.diag_indices(n)] = np.log(np.diag(L))
        off = np.tril(np.ones((n, n), bool), -1)
        L[off] /= _OFF_SCALE
        sig = np.atleast_1d(np.asarray(sigma_e, float))
        sig = sig[:1] if self.n_sig == 1 else np.broadcast_to(sig, (self.p,))
        return np.concatenate(
            [
                np.asarray(eig_raw, float),
                [k_inf / _K_SCALE],
                L[self.tril],
                np.asarray(A, float).ravel(),
                np.asarray(a, float) / _A_SCALE,
                np.log(sig),
            ]
        )

    def model(self, theta):
        """Parameters plus the state-space matrices implied by ``theta``."""
        par = self.unpack(theta)
        V = par["Sigma"] @ par["Sigma"].T
        can = canonical(np, par["eig"], par["k_inf"], V, self.W, self.tau)
        par.update(
            Z=can.Z,
            d=can.d,
            A_star=can.A_star,
            a_star=can.a_star,
            delta0=float(can.delta0),
            delta1=can.delta1,
            V=V,
        )
        par["Lambda"] = par["A_star"] - par["A"]
        par["lambda1"] = par["a_star"] - par["a"]
        ev = eigenvalues(par["eig"])
        par["lam_star"] = ev.real  # real parts of the P* eigenvalues, ordered
        par["lam_star_imag"] = np.abs(ev.imag)
        par["eig_raw"] = np.asarray(theta, float)[self.slices["lam"]]
        return par


# --------------------------------------------------------------------------- likelihoods
def _init_state(Phi, c, Q, Po0):
    n = Phi.shape[0]
    if np.max(np.abs(np.linalg.eigvals(Phi))) < 1 - 1e-9:
        x0 = np.linalg.solve(np.eye(n) - Phi, c)
        P0 = np.linalg.solve(np.eye(n * n) - np.kron(Phi, Phi), Q.ravel()).reshape(n, n)
        return x0, 0.5 * (P0 + P0.T)
    return Po0, 1e-2 * np.eye(n)


def kalman_loglik(theta, spec: AffineSpec, Y, Po0):
    """Exact Gaussian log-likelihood of all yields (Kalman filter)."""
    par = spec.model(theta)
    Phi, c, Q = exact_transition(par["A"], par["a"], par["V"], spec.dt)
    x0, P0 = _init_state(Phi, c, Q, Po0)
    return kalman_filter(Y, Phi, c, Q, par["Z"], par["d"], par["sigma_e"] ** 2, x0, P0).loglik


def portfolio_loglik(theta, spec: AffineSpec, Y, Po):
    """Log-likelihood with the portfolios ``Po = Y W'`` priced without error (JSZ 2011).

    ``log L = sum_t log N(Po_t | c + Phi Po_{t-1}, Q) + sum_t log N_{p-n}(e_t | 0, s^2 I)``, where
    ``e_t = y_t - d - Z Po_t`` lies in the ``p - n``-dimensional complement of the portfolios
    (``W e_t = 0``); conditional on the first date. Only a common measurement-error
    standard deviation is defined in this likelihood.
    """
    if spec.n_sig != 1:
        raise SpecError("the portfolio likelihood needs measurement_error='common'")
    par = spec.model(theta)
    e = Y[1:] - par["d"] - Po[1:] @ par["Z"].T
    s2 = par["sigma_e"][0] ** 2
    m = (Y.shape[0] - 1) * (spec.p - spec.n)
    ll_cross = -0.5 * (m * (_LOG2PI + np.log(s2)) + np.sum(e * e) / s2)
    ll_var = transition_loglik(Po, spec.dt, par["A"], par["a"], par["V"])
    return ll_cross + ll_var


# ------------------------------------------------------------------------- starting values
def _var_start(Po, dt):
    """P parameters from a VAR(1) by least squares, mapped to continuous time exactly."""
    n = Po.shape[1]
    X = np.column_stack([np.ones(len(Po) - 1), Po[:-1]])
    coef, *_ = np.linalg.lstsq(X, Po[1:], rcond=None)
    c, Phi = coef[0], coef[1:].T
    resid = Po[1:] - X @ coef
    Omega = resid.T @ resid / len(resid)
    try:
        A = sla.logm(Phi)
        if np.iscomplexobj(A):
            if np.max(np.abs(A.imag)) > 1e-8:
                raise ValueError
            A = A.real
        A = A / dt
    except (ValueError, np.linalg.LinAlgError):
        A = (Phi - np.eye(n)) / dt
    _, J = linalg.expm_and_integral(A, dt)
    a = np.linalg.solve(J, c)
    K = np.kron(A, np.eye(n)) + np.kron(np.eye(n), A)
    _, JK = linalg.expm_and_integral(K, dt)
    V = np.linalg.solve(JK, Omega.ravel()).reshape(n, n)
    V = 0.5 * (V + V.T)
    try:
        L = np.linalg.cholesky(V)
    except np.linalg.LinAlgError:
        L = np.linalg.cholesky(Omega / dt)
    return A, a, L


def _eig_starts(n, n_starts):
    """Starting eigen-structures: geometric real spectra; the block starts at D = 0 (repeated)."""
    bases = [0.05, 0.02, 0.15, 0.01, 0.3, 0.08, 0.03, 0.5]
    ratios = [8.0, 12.0, 5.0, 20.0, 4.0, 6.0, 15.0, 3.0]
    out = []
    for k in range(n_starts):
        b, r = bases[k % len(bases)], ratios[k % len(ratios)] * (1 + 0.1 * (k // len(bases)))
        lam = -b * r ** np.arange(n)
        if n <= 2:
            out.append(eigen_to_raw(lam))
        else:
            g = -lam[n - 2] + lam[n - 3]
            out.append(eigen_to_raw(lam[: n - 2], lam[n - 3] - g, 0.0))
    return out


def _cross_section(spec, Y, Po, L, raw0):
    """Fit the P* eigen-structure and ``k_inf`` to the cross-section, portfolios priced exactly."""
    V = L @ L.T
    ok = np.isfinite(Y).all(axis=1)

    size = int(ok.sum()) * Y.shape[1]

    def resid(x):
        try:
            eig = eigen_from_raw(np, x[:-1], spec.n)
            can = canonical(np, eig, _K_SCALE * x[-1], V, spec.W, spec.tau)
            r = 1e4 * (Y[ok] - can.d - Po[ok] @ can.Z.T).ravel()
        except np.linalg.LinAlgError:
            return np.full(size, 1e6)  # a singular rotation: far from any fit
        return r if np.all(np.isfinite(r)) else np.full(size, 1e6)

    lo = np.r_[np.full(len(raw0), _RAW_LO), -np.inf]
    hi = np.r_[np.full(len(raw0), _RAW_HI), np.inf]
    x0 = np.r_[np.clip(raw0, _RAW_LO + 1e-6, _RAW_HI - 1e-6), 0.0]
    with np.errstate(all="ignore"):
        sol = optimize.least_squares(
            resid, x0, method="trf", bounds=(lo, hi), xtol=1e-12, ftol=1e-12
        )
    rmse = np.sqrt(np.mean(sol.fun**2)) / 1e4
    return sol.x[:-1], sol.x[-1], rmse


# --------------------------------------------------------------------------- numerics
def _safe_nll(loglik, th, T):
    """``-loglik / T``, with a large finite value where the parameters are not admissible."""
    with np.errstate(all="ignore"):
        try:
            v = loglik(th)
        except (ModelError, np.linalg.LinAlgError, ValueError):
            return 1e10
    return -v / T if np.isfinite(v) else 1e10


def _precond(H):
    """Factor ``C`` with ``C C' = H^-1`` (diagonal scaling when ``H`` is not positive definite)."""
    try:
        return np.linalg.cholesky(np.linalg.inv(H))
    except np.linalg.LinAlgError:
        return np.diag(1.0 / np.sqrt(np.clip(np.abs(np.diag(H)), 1e-8, None)))


def _num_hessian(f, x, h=1e-4):
    """Central-difference Hessian of a scalar function."""
    k = len(x)
    H = np.empty((k, k))
    f0 = f(x)
    E = np.eye(k) * h
    fp = np.array([f(x + E[i]) for i in range(k)])
    fm = np.array([f(x - E[i]) for i in range(k)])
    for i in range(k):
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h**2
        for j in range(i):
            v = (
                f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j]) + f(x - E[i] - E[j])
            ) / (4 * h * h)
            H[i, j] = H[j, i] = v
    return H


def inverse_information(info, who: str, stacklevel: int = 3):
    """Covariance of the estimates from the observed information matrix ``info``.

    Its inverse when ``info`` is positive definite; otherwise the pseudo-inverse, with a
    :class:`~bayesbond.errors.ConvergenceWarning` naming ``who``.
    """
    try:
        np.linalg.cholesky(info)
        return np.linalg.inv(info)
    except np.linalg.LinAlgError:
        warnings.warn(
            f"{who}: observed information is not positive definite; "
            "standard errors use its pseudo-inverse",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
        return np.linalg.pinv(info)


def _natural(spec, theta):
    """Flat vector of every reported parameter (for the delta method) and its layout."""
    par = spec.model(theta)
    names = list(PARAM_NAMES)
    vals = [np.atleast_1d(np.asarray(par[k], float)) for k in names]
    shapes = [np.shape(par[k]) for k in names]
    return np.concatenate([v.ravel() for v in vals]), list(zip(names, shapes, strict=True))


# ------------------------------------------------------------------------------ estimator
def affine_ml(
    yields,
    maturities=None,
    n_factors: int = 3,
    identification: str = "jsz",
    *,
    method: str = "kalman",
    measurement_error: str = "common",
    n_starts: int = 3,
    dt: float | None = None,
    maturity_units: str | None = None,
    weights=None,
    se: bool = True,
    maxiter: int = 3000,
) -> AffineMLResult:
    """Maximum-likelihood estimate of the Gaussian affine term-structure model.

    Parameters
    ----------
    yields : DataFrame (dates x maturities in years) or array_like (T, p)
        Zero-coupon yields, decimals per year, continuously compounded; ``NaN`` = missing (Kalman
        method only).
    maturities : array_like (p,), optional
        Maturities in years (default: the DataFrame's columns).
    n_factors : int
        Number of factors ``n`` (< number of maturities).
    identification : {"jsz"}
        Canonical form of Joslin, Singleton and Zhu (2011): the states are the first ``n``
        principal-component portfolios ``P = W y`` of the yields; ``A*`` is similar to a real
        canonical matrix with ordered negative eigenvalues (for ``n >= 3`` the two fastest form a
        2 x 2 block that may be real distinct, repeated or complex), so the risk-neutral
        dynamics are stable; ``Sigma`` is lower triangular with positive diagonal; ``A`` and ``a``
        are unrestricted. This makes every parameter unique
        (see :mod:`bayesbond.core.affine_canonical`).
    method : {"kalman", "portfolio"}
        ``"kalman"``: all yields observed with i.i.d. N(0, sigma_e^2) errors, exact Kalman-filter
        likelihood. ``"portfolio"``: the portfolios are priced without error, the errors live in the
        complement (the JSZ likelihood, no filter; also the Bayesian model's likelihood).
    measurement_error : {"common", "maturity"}
        One error standard deviation for all maturities, or one per maturity (Kalman only).
    n_starts : int
        Number of starting points (P* eigenvalues) for the cross-sectional step; the distinct
        local optima each start a full maximisation, the best likelihood is kept.
    dt : float, optional
        Years between observations (inferred from a DatetimeIndex).
    maturity_units : {None, "years", "months"}
        Maturities are read in years. ``None`` raises :class:`~bayesbond.errors.DataError` when
        they look like months (any above 40, or all whole multiples of 3);
        ``"months"`` converts them; ``"years"`` accepts them as given.
    weights : array_like (n, p), optional
        Portfolio weights defining the states (full row rank); default: the first ``n`` principal
        components of the yields (orthonormal rows, see :func:`pca_weights`).
    se : bool
        Compute standard errors from the observed information (numerical Hessian).
    maxiter : int
        Maximum L-BFGS iterations per start.

    Returns
    -------
    AffineMLResult

    Notes
    -----
    Under P, ``dP = (A P + a) dt + Sigma dW``; under P*, ``A* = A + Lambda``,
    ``a* = a + lambda1``; ``r = delta0 + delta1'P``; yields ``y = d + Z P`` with loadings from the
    canonical parameters (closed forms). The P dynamics enter through the exact OU transition
    ``(Phi, c, Q)`` (no Euler error). Starting values follow the fast route of JSZ: with the
    portfolios priced without error, ``A, a, Sigma`` come from a VAR(1) of ``P = W y`` by least
    squares (mapped to continuous time through the matrix logarithm), and the P* eigenvalues and
    ``k_inf`` from the
    cross-section by nonlinear least squares. The full likelihood is then maximised by L-BFGS with
    numerical gradients. Standard errors: inverse numerical Hessian of the log-likelihood in the
    unconstrained parameters, mapped to every reported parameter by the delta method. The Kalman
    filter starts from the stationary distribution of the portfolios (or ``N(W y_0, 0.01 I)`` when
    the P dynamics are not stationary).

    References
    ----------
    Joslin, S., Singleton, K. J. and Zhu, H. (2011), Review of Financial Studies 24(3), 926-970.
    Duffee, G. R. (2011), "Information in (and not in) the term structure", RFS 24(9) (Kalman ML).
    """
    if identification != "jsz":
        raise SpecError(f"identification must be 'jsz', got {identification!r}")
    if method not in ("kalman", "portfolio"):
        raise SpecError(f"method must be 'kalman' or 'portfolio', got {method!r}")
    Y, tau, dates, dt = prepare_yields(yields, maturities, dt, maturity_units)
    T, p = Y.shape
    n = int(n_factors)
    if not 1 <= n < p:
        raise SpecError(f"n_factors must be between 1 and {p - 1} (fewer than maturities), got {n}")
    complete = np.isfinite(Y).all(axis=1)
    if method == "portfolio" and not complete.all():
        bad = dates[np.flatnonzero(~complete)[:5]]
        raise DataError(
            f"the portfolio likelihood needs complete rows; missing yields on {list(bad)}"
        )
    if complete.sum() < 4 * n + 4:
        raise DataError(f"only {complete.sum()} complete dates: too few to estimate {n} factors")
    if weights is None:
        W = pca_weights(Y, n)
    else:
        W = np.asarray(weights, dtype=float)
        if W.shape != (n, p) or np.linalg.matrix_rank(W) < n:
            raise SpecError(f"weights must be a full-rank ({n}, {p}) array, got shape {W.shape}")
    with _one_blas_thread():
        return _fit(
            Y, tau, dates, dt, n, W, method, measurement_error, n_starts, se, maxiter, complete
        )


def _fit(Y, tau, dates, dt, n, W, method, measurement_error, n_starts, se, maxiter, complete):
    T = Y.shape[0]
    spec = AffineSpec(n, tau, W, dt, measurement_error)
    if method == "portfolio" and spec.n_sig != 1:
        raise SpecError("method='portfolio' needs measurement_error='common'")
    Po = Y @ W.T
    Po_c = Po[complete]
    # P from the VAR of the complete consecutive portfolios
    run = complete[1:] & complete[:-1]
    if run.all():
        A0, a0, L0 = _var_start(Po, dt)
    else:
        A0, a0, L0 = _var_start(Po_c, dt)
    # P* from the cross-section, several starts; a start that fails is dropped and reported
    cands, failed = [], []
    for i, raw0 in enumerate(_eig_starts(n, max(1, int(n_starts)))):
        ev0 = np.round(eigenvalues(eigen_from_raw(np, raw0, n)), 6).tolist()
        try:
            raw, k_raw, rmse = _cross_section(
                spec, Y, np.where(np.isfinite(Po), Po, 0.0), L0, raw0
            )
        except _START_ERRORS as e:
            failed.append({"start": i, "eig_start": ev0, "stage": "cross-section",
                           "reason": f"{type(e).__name__}: {e}"})
            continue
        if not np.isfinite(rmse) or rmse >= 1e2:
            failed.append({"start": i, "eig_start": ev0, "stage": "cross-section",
                           "reason": "no admissible cross-sectional fit (singular rotation)"})
            continue
        ev = np.sort_complex(eigenvalues(eigen_from_raw(np, raw, n)))
        if not any(np.allclose(ev, c[3], rtol=1e-3, atol=1e-6) for c in cands):
            cands.append((raw, k_raw * _K_SCALE, rmse, ev, i, ev0))
    if not cands:
        raise ModelError(
            "affine_ml: every starting point failed: "
            + "; ".join(f"start {f['start']} (P* eigenvalues {f['eig_start']}): {f['reason']}"
                        for f in failed)
        )
    cands.sort(key=lambda c: c[2])
    Po0 = Po_c[0]
    # stage 1: portfolio likelihood (complete dates) from every distinct cross-sectional start
    spec1 = spec if spec.n_sig == 1 else AffineSpec(n, tau, W, dt, "common")
    Yc = Y[complete]

    def nll1(th):
        return _safe_nll(lambda t: portfolio_loglik(t, spec1, Yc, Po_c), th, T)

    best = None
    lam_sl = spec1.slices["lam"]
    bounds1 = [(None, None)] * spec1.size
    bounds1[lam_sl] = [(_RAW_LO, _RAW_HI)] * (lam_sl.stop - lam_sl.start)
    for raw, k_inf, rmse, ev, i, ev0 in cands:
        th0 = spec1.pack(raw, k_inf, L0, A0, a0, max(rmse, 1e-5))
        try:
            res = optimize.minimize(
                nll1, th0, method="L-BFGS-B", bounds=bounds1,
                options={"maxiter": maxiter, "maxfun": 50 * maxiter},
            )
        except _START_ERRORS as e:
            failed.append({"start": i, "eig_start": ev0, "stage": "portfolio likelihood",
                           "reason": f"{type(e).__name__}: {e}"})
            continue
        if not np.isfinite(res.fun) or res.fun >= 1e10:
            failed.append({"start": i, "eig_start": ev0, "stage": "portfolio likelihood",
                           "reason": "no admissible parameters near this start"})
            continue
        _log(
            f"portfolio start eig={np.round(ev, 4).tolist()}: {res.message} nit={res.nit} "
            f"nfev={res.nfev} loglik={-res.fun * T:.3f}"
        )
        if best is None or res.fun < best.fun:
            best = res
    if best is None:
        raise ModelError(
            "affine_ml: every starting point failed: "
            + "; ".join(f"start {f['start']} (P* eigenvalues {f['eig_start']}, {f['stage']}): "
                        f"{f['reason']}" for f in failed)
        )
    if failed:
        warnings.warn(
            f"affine_ml: {len(failed)} of {max(1, int(n_starts))} starting points failed and were "
            "dropped (see result.failed_starts): "
            + "; ".join(f"start {f['start']}: {f['reason']}" for f in failed),
            ConvergenceWarning,
            stacklevel=3,
        )
    # one Hessian of the portfolio likelihood preconditions the final maximisation
    H1 = _num_hessian(nll1, best.x)
    C1 = _precond(H1)
    th1 = best.x
    if method == "portfolio":
        nll, C = nll1, C1
    else:

        def nll(th):
            return _safe_nll(lambda t: kalman_loglik(t, spec, Y, Po0), th, T)

        C = C1
        if spec.n_sig != 1:
            par1 = spec1.unpack(th1)
            th1 = spec.pack(
                par1["eig_raw"], par1["k_inf"], par1["Sigma"], par1["A"], par1["a"], par1["sigma_e"]
            )
            C = np.eye(spec.size) * 0.1
            k = spec.slices["sig"].start
            C[:k, :k] = C1[:k, :k]

    lam_f = spec.slices["lam"]

    def nll_z(z):
        th = th1 + C @ z
        raw = th[lam_f]
        if np.any(raw < _RAW_LO - 1e-9) or np.any(raw > _RAW_HI + 1e-9):
            return 1e10  # outside the admissible eigen-structure (see _RAW_LO, _RAW_HI)
        return nll(th)

    res = optimize.minimize(
        nll_z,
        np.zeros(spec.size),
        method="L-BFGS-B",
        options={"maxiter": maxiter, "maxfun": 50 * maxiter},
    )
    _log(f"{method}: {res.message} nit={res.nit} nfev={res.nfev} loglik={-res.fun * T:.3f}")
    res.x = th1 + C @ res.x
    best = res
    theta = best.x
    if not best.success:
        warnings.warn(
            f"affine_ml: optimiser stopped: {best.message}", ConvergenceWarning, stacklevel=2
        )
    raw_hat = theta[spec.slices["lam"]]
    at_bound = (raw_hat <= _RAW_LO + 1e-3) | (raw_hat >= _RAW_HI - 1e-3)
    if at_bound.any():
        warnings.warn(
            "affine_ml: the P* eigen-structure sits at a bound of its admissible range (a gap "
            f"between speeds of {np.exp(_RAW_LO):g} or {np.exp(_RAW_HI):g} a year; estimated "
            f"eigenvalues {np.round(eigenvalues(eigen_from_raw(np, raw_hat, n)), 4).tolist()}): "
            "the data do not identify that speed (fewer factors may fit as well)",
            ConvergenceWarning,
            stacklevel=3,
        )
    ll = -best.fun * T
    cov_theta = inverse_information(_num_hessian(nll, theta) * T, "affine_ml") if se else None
    par = spec.model(theta)
    ses = None
    if cov_theta is not None:
        vec0, layout = _natural(spec, theta)
        J = np.empty((len(vec0), len(theta)))
        for i in range(len(theta)):
            e = np.zeros(len(theta))
            e[i] = 1e-6
            J[:, i] = (_natural(spec, theta + e)[0] - _natural(spec, theta - e)[0]) / 2e-6
        sd = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", J, cov_theta, J), 0, None))
        ses, i = {}, 0
        for name, shape in layout:
            size = int(np.prod(shape)) if shape else 1
            ses[name] = sd[i : i + size].reshape(shape) if shape else float(sd[i])
            i += size
    # states: Kalman smoother (or the portfolios themselves, priced without error)
    Phi, c, Q = exact_transition(par["A"], par["a"], par["V"], dt)
    if method == "kalman":
        x0, P0 = _init_state(Phi, c, Q, Po0)
        kf = kalman_filter(Y, Phi, c, Q, par["Z"], par["d"], par["sigma_e"] ** 2, x0, P0)
        xs, _ = kalman_smoother(kf)
        xf = kf.x_filt
    else:
        xs = xf = Po
    names = factor_names(n)
    cols = pd.Index(tau, name="maturity")
    didx = dates.copy()
    didx.name = "date"
    return AffineMLResult(
        params=par,
        theta=theta,
        cov_theta=cov_theta,
        se=ses,
        loglik=ll,
        spec=spec,
        method=method,
        states=pd.DataFrame(xs, index=didx, columns=pd.Index(names, name="state")),
        filtered_states=pd.DataFrame(xf, index=didx, columns=pd.Index(names, name="state")),
        yields=pd.DataFrame(Y, index=didx, columns=cols),
        n_obs=int(np.isfinite(Y).sum()),
        converged=bool(best.success),
        failed_starts=failed,
    )

"""Maximum-likelihood estimation of the Gaussian affine term-structure model under P and P*.

:func:`affine_ml` fits the canonical model of :mod:`bayesbond.core.affine_canonical` (JSZ 2011)
to a panel of zero-coupon yields, by the Kalman filter (all yields observed with i.i.d. error) or by
the portfolio likelihood (the first principal-component portfolios priced without error).
The result object :class:`AffineMLResult` lives in :mod:`bayesbond.baselines.affine_result`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize

from bayesbond.baselines.affine_result import PARAM_NAMES, AffineMLResult, factor_names
from bayesbond.baselines.kalman_ml import (
    START_ERRORS,
    KalmanML,
    loglik_yields,
    precondition,
)
from bayesbond.baselines.ou_ml import ou_from_var1
from bayesbond.core.affine_canonical import (
    canonical,
    eigen_from_raw,
    eigen_to_raw,
    eigenvalues,
    pca_weights,
)
from bayesbond.core.linalg import chol_pack, chol_unpack
from bayesbond.core.numdiff import num_hessian
from bayesbond.core.ou import infer_dt, transition_loglik
from bayesbond.errors import ConvergenceWarning, DataError, SpecError

__all__ = ["affine_ml", "AffineML", "AffineMLResult", "AffineSpec", "prepare_yields", "K_SCALE",
           "OFF_SCALE", "A_SCALE", "risk_price_labels", "parse_risk_prices",
           "lr_test"]  # fmt: skip

K_SCALE = 0.01  #: k_inf = K_SCALE * raw
OFF_SCALE = 0.01  #: off-diagonal Sigma = OFF_SCALE * raw
A_SCALE = 0.01  #: a = A_SCALE * raw
_LOG2PI = float(np.log(2 * np.pi))
# bounds of the raw eigen-structure (log gaps between P* speeds, per year): a gap below 1e-4
# makes the latent loadings collinear (T = W B singular); speeds above 50 a year are not
# identified by maturities of a month or more and once sent the unbounded least-squares step
# to eigenvalues near -16,000 (and, from there, to a singular canonical rotation)
_RAW_LO, _RAW_HI = float(np.log(1e-4)), float(np.log(50.0))
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
        raise SpecError(f"maturity_units must be None, 'years' or 'months', got {maturity_units!r}")
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


# ----------------------------------------------------------------------------- risk prices
def risk_price_labels(n: int) -> list[str]:
    """Labels of the risk-price parameters: ``lambda1[i]`` then ``Lambda[i,j]`` (row major)."""
    return [f"lambda1[{i}]" for i in range(n)] + [f"Lambda[{i},{j}]" for i in range(n)
                                                  for j in range(n)]


def parse_risk_prices(risk_prices, n: int):
    """``(zero_lambda1 (n,), zero_Lambda (n, n))`` boolean masks of the elements fixed at zero.

    ``risk_prices``: ``"free"`` (none), or the labels of :func:`risk_price_labels` fixed at
    zero, as a list (``["lambda1[0]", "Lambda[1,0]"]``) or a dict with value 0 for each
    (``{"Lambda[1,0]": 0}``).
    """
    z1, zL = np.zeros(n, bool), np.zeros((n, n), bool)
    if isinstance(risk_prices, str):
        if risk_prices != "free":
            raise SpecError(f"risk_prices must be 'free' or restrictions, got {risk_prices!r}")
        return z1, zL
    items = risk_prices.items() if isinstance(risk_prices, dict) else \
        ((k, 0) for k in risk_prices)
    labels = risk_price_labels(n)
    for key, value in items:
        if key not in labels:
            raise SpecError(f"risk_prices: unknown element {key!r}; valid: {labels}")
        if value != 0:
            raise SpecError(f"risk_prices[{key!r}] = {value!r}: restrictions fix elements at 0")
        idx = labels.index(key)
        if idx < n:
            z1[idx] = True
        else:
            zL.flat[idx - n] = True
    return z1, zL


# ----------------------------------------------------------------------------- parameters
class AffineSpec:
    """Packing of the canonical parameters into an unconstrained, well-scaled vector ``theta``.

    ``theta = [eig_raw (n), k_raw, Sigma (lower triangle, log diagonal), A (n x n), a_raw (n),
    log sigma_e (1 or p)]`` with the eigen-structure from
    :func:`~bayesbond.core.affine_canonical.eigen_from_raw`, ``k_inf = 0.01 k_raw``,
    off-diagonal Sigma and ``a`` scaled by 0.01.
    """

    def __init__(self, n, tau, W, dt, measurement_error="common", risk_prices="free"):
        self.zero_lambda1, self.zero_Lambda = parse_risk_prices(risk_prices, n)
        self.risk_prices = risk_prices
        if measurement_error not in ("common", "maturity"):
            raise SpecError(
                f"measurement_error must be 'common' or 'maturity', got {measurement_error!r}"
            )
        self.n, self.tau, self.W, self.dt = n, np.asarray(tau, float), np.asarray(W, float), dt
        self.p = len(self.tau)
        self.measurement_error = measurement_error
        self.n_sig = 1 if measurement_error == "common" else self.p
        self.tril = np.tril_indices(n)
        self.sizes = {"lam": n, "k": 1, "L": len(self.tril[0]),
                      "A": n * n - int(self.zero_Lambda.sum()),
                      "a": n - int(self.zero_lambda1.sum()), "sig": self.n_sig}  # fmt: skip
        ends = np.cumsum(list(self.sizes.values())).tolist()
        self.slices = {k: slice(e - s, e) for (k, s), e in zip(self.sizes.items(), ends, strict=1)}
        self.size = ends[-1]

    def unpack(self, theta):
        th = np.asarray(theta, float)
        n = self.n
        eig = eigen_from_raw(np, th[self.slices["lam"]], n)
        k_inf = K_SCALE * th[self.slices["k"]][0]
        L = chol_unpack(th[self.slices["L"]], n, OFF_SCALE)
        A = np.zeros((n, n))
        A[~self.zero_Lambda] = th[self.slices["A"]]  # restricted: A = A* (set in model)
        a = np.zeros(n)
        a[~self.zero_lambda1] = A_SCALE * th[self.slices["a"]]
        sig = np.exp(th[self.slices["sig"]])
        sig_e = np.full(self.p, sig[0]) if self.n_sig == 1 else sig
        return {"eig": eig, "k_inf": k_inf, "Sigma": L, "A": A, "a": a, "sigma_e": sig_e}

    def pack(self, eig_raw, k_inf, Sigma, A, a, sigma_e):
        sig = np.atleast_1d(np.asarray(sigma_e, float))
        sig = sig[:1] if self.n_sig == 1 else np.broadcast_to(sig, (self.p,))
        return np.concatenate([np.asarray(eig_raw, float), [k_inf / K_SCALE],
                               chol_pack(Sigma, OFF_SCALE),
                               np.asarray(A, float)[~self.zero_Lambda],
                               np.asarray(a, float)[~self.zero_lambda1] / A_SCALE,
                               np.log(sig)])  # fmt: skip

    def model(self, theta):
        """Parameters plus the state-space matrices implied by ``theta``."""
        par = self.unpack(theta)
        V = par["Sigma"] @ par["Sigma"].T
        can = canonical(np, par["eig"], par["k_inf"], V, self.W, self.tau)
        par.update(Z=can.Z, d=can.d, A_star=can.A_star, a_star=can.a_star,
                   delta0=float(can.delta0), delta1=can.delta1, V=V)  # fmt: skip
        par["A"] = np.where(self.zero_Lambda, par["A_star"], par["A"])
        par["a"] = np.where(self.zero_lambda1, par["a_star"], par["a"])
        par["Lambda"] = par["A_star"] - par["A"]
        par["lambda1"] = par["a_star"] - par["a"]
        ev = eigenvalues(par["eig"])
        par["lam_star"] = ev.real  # real parts of the P* eigenvalues, ordered
        par["lam_star_imag"] = np.abs(ev.imag)
        par["eig_raw"] = np.asarray(theta, float)[self.slices["lam"]]
        return par


# --------------------------------------------------------------------------- likelihoods
def _init_state(Po0):
    """First state of the filter: stationary, or ``N(Po0, 0.01 I)`` when ``Phi`` is not stable."""

    def init(Phi, c, Q):
        if np.max(np.abs(np.linalg.eigvals(Phi))) < 1 - 1e-9:
            return None, None  # the filter's stationary start
        return Po0, 1e-2 * np.eye(len(c))

    return init


def kalman_loglik(theta, spec: AffineSpec, Y, Po0):
    """Exact Gaussian log-likelihood of all yields (Kalman filter, :func:`filter_yields`)."""
    return loglik_yields(Y, spec.model(theta), spec.dt, _init_state(Po0))


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
            can = canonical(np, eig, K_SCALE * x[-1], V, spec.W, spec.tau)
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


# ------------------------------------------------------------------------------ estimator
def affine_ml(
    yields, maturities=None, n_factors: int = 3, identification: str = "jsz", *,
    method: str = "kalman", measurement_error: str = "common", n_starts: int = 3,
    dt: float | None = None, maturity_units: str | None = None, weights=None, se: bool = True,
    maxiter: int = 3000, risk_prices="free",
) -> AffineMLResult:  # fmt: skip
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
        Canonical form of Joslin, Singleton and Zhu (2011): states the portfolios ``P = W y``;
        ``A*`` similar to a real canonical matrix with ordered negative eigenvalues; ``Sigma``
        lower triangular with positive diagonal; ``A``, ``a`` free: every parameter is unique
        (:mod:`bayesbond.core.affine_canonical`).
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
    risk_prices : "free" or list or dict
        ``"free"``: ``lambda1 = a* - a`` and ``Lambda = A* - A`` unrestricted. Otherwise the
        elements fixed at zero, by label (:func:`risk_price_labels`: ``"lambda1[0]"``,
        ``"Lambda[1,0]"``; states in the order of ``W``), as a list or a dict with value 0
        (the spelling of :class:`bayesbond.AffineModel`). A zero ``Lambda[i,j]`` sets
        ``A[i,j] = A*[i,j]`` (likewise ``a[i] = a*[i]``): the P drift shares that element with
        P*. Nested fits compare with :func:`lr_test`.

    Returns
    -------
    AffineMLResult

    Notes
    -----
    Under P, ``dP = (A P + a) dt + Sigma dW``; under P*, ``A* = A + Lambda``,
    ``a* = a + lambda1``; ``r = delta0 + delta1'P``; yields ``y = d + Z P`` (closed-form
    canonical loadings); the P dynamics enter through the exact OU transition ``(Phi, c, Q)``.
    Starting values as in JSZ: ``A, a, Sigma`` from the VAR(1) of ``P = W y`` (matrix
    logarithm), the P* eigenvalues and ``k_inf`` from the cross-section by nonlinear least
    squares; then L-BFGS on the full likelihood and delta-method standard errors
    (:class:`~bayesbond.baselines.kalman_ml.KalmanML`). The Kalman filter starts from the
    stationary distribution (``N(W y_0, 0.01 I)`` when the P dynamics are not stationary).

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
    fit = AffineML(Y, tau, dates, dt, n, W, method=method, measurement_error=measurement_error,
                   complete=complete, n_starts=n_starts, maxiter=maxiter,
                   risk_prices=risk_prices)  # fmt: skip
    return fit.fit(se=se)


class AffineML(KalmanML):
    """Maximum-likelihood estimator of the canonical affine model (:func:`affine_ml`).

    A :class:`~bayesbond.baselines.kalman_ml.KalmanML`: the starts are the distinct
    cross-sectional fits (:func:`_cross_section`) with ``A, a, Sigma`` from the VAR(1) of the
    portfolios (:func:`~bayesbond.baselines.ou_ml.ou_from_var1`); the multistart stage maximises
    the portfolio likelihood on the complete dates with the eigen-structure bounded; :meth:`refine`
    then maximises the chosen likelihood once, preconditioned by that stage's Hessian.

    Notes
    -----
    ``method="kalman"``: ``log L = kalman_loglik``; ``method="portfolio"``:
    ``log L = portfolio_loglik`` (see their docstrings). With one error per maturity the
    multistart stage uses the common-error spec and its estimate is repacked; the final pass is
    then preconditioned by the Hessian of the per-maturity likelihood at that point.
    """

    name = "affine_ml"
    param_names = PARAM_NAMES
    start_stage = "portfolio likelihood"

    def __init__(self, Y, tau, dates, dt, n, W, *, method, measurement_error, complete,
                 risk_prices="free", **kw):
        super().__init__(Y, tau, dates, dt, **kw)
        self.spec = AffineSpec(n, tau, W, dt, measurement_error, risk_prices)
        if method == "portfolio" and self.spec.n_sig != 1:
            raise SpecError("method='portfolio' needs measurement_error='common'")
        self.spec1 = self.spec if self.spec.n_sig == 1 else AffineSpec(n, tau, W, dt, "common",
                                                                    risk_prices)
        self.n, self.method, self.complete = n, method, complete
        self.state_names = tuple(factor_names(n))
        self.Po = self.Y @ W.T
        self.Po_c, self.Yc = self.Po[complete], self.Y[complete]
        self.Po0 = self.Po_c[0]
        self.initial_state = _init_state(self.Po0)

    def loglik(self, theta):
        if self.method == "portfolio":
            return portfolio_loglik(theta, self.spec, self.Yc, self.Po_c)
        return kalman_loglik(theta, self.spec, self.Y, self.Po0)

    def start_loglik(self, theta):
        return portfolio_loglik(theta, self.spec1, self.Yc, self.Po_c)

    @property
    def start_bounds(self):
        sl = self.spec1.slices["lam"]
        bounds = [(None, None)] * self.spec1.size
        bounds[sl] = [(_RAW_LO, _RAW_HI)] * (sl.stop - sl.start)
        return bounds

    def admissible(self, theta):
        raw = theta[self.spec.slices["lam"]]
        return not (np.any(raw < _RAW_LO - 1e-9) or np.any(raw > _RAW_HI + 1e-9))

    def describe_start(self, f):
        return f"start {f['start']} (P* eigenvalues {f['eig_start']}, {f['stage']})"

    def start_params(self):
        """Distinct cross-sectional fits, best first; a start that fails is dropped (none
        left: :meth:`multistart` raises, naming every failure)."""
        n, Y, Po = self.n, self.Y, self.Po
        run = self.complete[1:] & self.complete[:-1]  # VAR of the complete consecutive dates
        A0, a0, L0 = ou_from_var1(Po if run.all() else self.Po_c, self.dt, fallback=True)
        cands = []
        for i, raw0 in enumerate(_eig_starts(n, self.n_starts)):
            info = {"start": i,
                    "eig_start": np.round(eigenvalues(eigen_from_raw(np, raw0, n)), 6).tolist()}
            try:
                raw, k_raw, rmse = _cross_section(
                    self.spec, Y, np.where(np.isfinite(Po), Po, 0.0), L0, raw0
                )
                why = None if np.isfinite(rmse) and rmse < 1e2 else (
                    "no admissible cross-sectional fit (singular rotation)")  # fmt: skip
            except START_ERRORS as e:
                why = f"{type(e).__name__}: {e}"
            if why is not None:
                self.failed.append({**info, "stage": "cross-section", "reason": why})
                continue
            ev = np.sort_complex(eigenvalues(eigen_from_raw(np, raw, n)))
            if not any(np.allclose(ev, c[3], rtol=1e-3, atol=1e-6) for c in cands):
                cands.append((raw, k_raw * K_SCALE, rmse, ev, info))
        cands.sort(key=lambda c: c[2])
        return [(self.spec1.pack(raw, k_inf, L0, A0, a0, max(rmse, 1e-5)), info)
                for raw, k_inf, rmse, _, info in cands]  # fmt: skip

    def refine(self, best):
        """One maximisation of :meth:`loglik`, preconditioned by the Hessian of the multistart
        objective at its best point (the Hessian for the standard errors is taken anew)."""
        C, th1 = precondition(num_hessian(self.start_nll, best.x)), best.x
        if self.spec.n_sig != 1:
            par1 = self.spec1.model(th1)
            th1 = self.spec.pack(par1["eig_raw"], par1["k_inf"], par1["Sigma"], par1["A"],
                                 par1["a"], par1["sigma_e"])  # fmt: skip
            C = precondition(num_hessian(self.nll, th1))  # one error per maturity: a new H
        res = self.preconditioned(self.nll, th1, C)
        self.log.debug("%s: %s nit=%d loglik=%.3f", self.method, res.message, res.nit,
                       -res.fun * self.T)  # fmt: skip
        return res, None

    def check_estimate(self, theta):
        raw_hat = theta[self.spec.slices["lam"]]
        ev = np.round(eigenvalues(eigen_from_raw(np, raw_hat, self.n)), 4).tolist()
        if raw_hat[0] <= _RAW_LO + 1e-3:  # the slowest speed itself (its gap from zero)
            warnings.warn(
                f"affine_ml: the slowest P* speed sits at the stationarity bound "
                f"({np.exp(_RAW_LO):g} a year; estimated eigenvalues {ev}): the curve asks for "
                "a (near) unit root under P*, which the fit holds just inside stationarity; "
                "y(inf) and the long end of the loadings then hinge on that bound",
                ConvergenceWarning, stacklevel=5)  # fmt: skip
        elif np.any((raw_hat <= _RAW_LO + 1e-3) | (raw_hat >= _RAW_HI - 1e-3)):
            warnings.warn(
                "affine_ml: the P* eigen-structure sits at a bound of its admissible range (a gap "
                f"between speeds of {np.exp(_RAW_LO):g} or {np.exp(_RAW_HI):g} a year; estimated "
                f"eigenvalues {ev}): the data do not identify that speed (fewer factors may fit "
                "as well)", ConvergenceWarning, stacklevel=5)  # fmt: skip

    def smooth(self, par):
        if self.method == "kalman":
            return super().smooth(par)
        return self.Po, self.Po  # the portfolios, priced without error

    def make_result(self, *, runs, **fields):
        return AffineMLResult(method=self.method, **fields)


def lr_test(restricted: AffineMLResult, unrestricted: AffineMLResult) -> dict:
    """Likelihood-ratio test of risk-price restrictions between nested :func:`affine_ml` fits.

    Returns
    -------
    dict
        ``statistic = 2 (loglik_u - loglik_r)``, ``df`` (number of restrictions), ``p_value``
        (chi-square with ``df`` degrees of freedom) and ``restricted`` (labels fixed at zero in
        the restricted fit and not in the other).

    Notes
    -----
    Under the null that the restricted elements are zero, ``2 (l_u - l_r)`` is asymptotically
    ``chi2(df)`` (Wilks 1938). The fits must be to the same yields with the same method,
    weights and measurement error, the restricted set containing the other's.
    """
    from scipy import stats

    r, u = restricted.spec, unrestricted.spec
    for name, x, y in (("method", restricted.method, unrestricted.method),
                       ("measurement_error", r.measurement_error, u.measurement_error)):
        if x != y:
            raise SpecError(f"lr_test: the fits differ in {name} ({x!r} vs {y!r})")
    if r.W.shape != u.W.shape or not np.allclose(r.W, u.W) or \
            restricted.yields.shape != unrestricted.yields.shape or \
            not np.allclose(restricted.yields.to_numpy(), unrestricted.yields.to_numpy(),
                            equal_nan=True):
        raise SpecError("lr_test: the fits are not to the same yields and portfolio weights")
    zr = np.r_[r.zero_lambda1, r.zero_Lambda.ravel()]
    zu = np.r_[u.zero_lambda1, u.zero_Lambda.ravel()]
    if np.any(zu & ~zr):
        raise SpecError("lr_test: the models are not nested (the 'unrestricted' fit fixes an "
                        "element the restricted one leaves free)")
    df = int((zr & ~zu).sum())
    if df == 0:
        raise SpecError("lr_test: the two fits have the same restrictions")
    stat = 2.0 * (unrestricted.loglik - restricted.loglik)
    labels = [lab for lab, z in zip(risk_price_labels(r.n), zr & ~zu, strict=True) if z]
    return {"statistic": float(stat), "df": df, "p_value": float(stats.chi2.sf(max(stat, 0.0), df)),
            "restricted": labels}

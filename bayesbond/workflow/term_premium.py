"""Term premia and expected excess returns with bands, for ML and Bayesian affine fits.

:func:`term_premium` and :func:`expected_excess_returns` take an ML fit
(:func:`bayesbond.affine_ml`, its ``AffineMLResult``) or a Bayesian fit
(:meth:`bayesbond.AffineModel.fit`, a DataTree) and return per-date bands. Both quantities are
affine in the state for each parameter draw, so every draw is reduced to a coefficient vector
and a constant, and the dates are one matrix product.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesbond.baselines.affine_result import CurveMLResult, eh_yields
from bayesbond.core.affine import GaussianAffine
from bayesbond.errors import DataError, SpecError

__all__ = ["term_premium", "expected_excess_returns", "parameter_draws", "tp_coefficients"]

_NEEDED = ("A", "a", "Sigma", "Lambda", "lambda1", "delta0", "delta1")


# ------------------------------------------------------------------------- numerics (numpy)
def tp_coefficients(par: dict, tau) -> tuple[np.ndarray, np.ndarray]:
    """Term premium ``TP(tau) = b_tp' X + c_tp`` of one parameter set, shapes (k, n) and (k,).

    Parameters
    ----------
    par : dict
        ``A, a, Sigma, Lambda, lambda1, delta0, delta1`` (the P dynamics, the risk prices in drift
        units and the short rate ``r = delta0 + delta1'X``).
    tau : array_like (k,)
        Maturities in years (> 0).

    Notes
    -----
    ``y(tau) = b(tau)'X + c(tau)`` with ``b = u/tau``, ``c = -v/tau`` under P* (``A* = A + Lambda``,
    ``a* = a + lambda1``; :meth:`GaussianAffine.yield_coefficients`), and the
    expectations-hypothesis yield ``(1/tau) int_0^tau E^P_t[r_{t+s}] ds =
    delta0 + (J1'delta1)'X/tau + delta1'J2 a/tau``
    (:func:`~bayesbond.baselines.affine_result.eh_yields`), so both are affine in ``X`` and
    ``TP = y - EH`` is as well; its coefficients are read off at ``X = 0`` and ``X = e_i``.
    """
    t = np.atleast_1d(np.asarray(tau, float))
    if np.any(~np.isfinite(t)) or np.any(t <= 0):
        raise DataError(f"maturity must be positive years; got {t.tolist()}")
    m = _model(par)
    b, c = m.yield_coefficients(t)
    n = m.n
    basis = np.vstack([np.zeros(n), np.eye(n)])
    eh = eh_yields(par["A"], par["a"], float(par["delta0"]), par["delta1"], basis, t)
    return b - (eh[1:] - eh[0]).T, c - eh[0]


def _model(par) -> GaussianAffine:
    return GaussianAffine(par["A"], par["a"], par["Sigma"], Lambda=par["Lambda"],
                          lambda1=par["lambda1"], delta0=float(par["delta0"]),
                          delta1=par["delta1"])  # fmt: skip


# ------------------------------------------------------------------------------ draws
def parameter_draws(fit, n_draws: int = 1000, random_seed=0):
    """Parameter draws and states of a fit: ``(point, draws, X, dates, source)``.

    Parameters
    ----------
    fit : AffineMLResult or xarray.DataTree
        An ML fit with a parameter covariance (``se=True``) or a Bayesian ``AffineModel`` fit.
    n_draws : int
        ML: number of parameter draws. Bayesian: at most this many evenly spaced posterior draws.

    Returns
    -------
    point : dict or None
        ML: the estimate (the ``mean`` column of the bands); Bayesian: ``None`` (posterior mean).
    draws : list of dict
        Each with ``A, a, Sigma, Lambda, lambda1, delta0, delta1``.
    X : ndarray (T, n)
        States on the dates: the ML smoothed states; for the Bayesian fit the observed portfolios
        ``P_t = W y_t`` (priced without error in its likelihood, so they are the states).
    dates : Index
    source : str

    Notes
    -----
    ML: ``theta ~ N(theta_hat, cov_theta)`` on the unconstrained scale of the fit, mapped through
    the fit's own ``spec.model`` (simulation form of the delta method, Krinsky and Robb 1986: the
    same first-order accuracy, and it respects the nonlinear map to the eigenvalues). The states
    are held at their estimate: for ``method="portfolio"`` they are data; for the Kalman fit the
    smoothing uncertainty of ``P = W y`` (a few bp) is left out. Bayesian: the canonical loadings
    of each draw are recomputed from ``eig_raw, k_inf, Sigma`` and the stored weights ``W``
    (:mod:`bayesbond.core.affine_canonical`), as :meth:`AffineModel.bands` does.
    """
    if isinstance(fit, CurveMLResult):
        return _ml_draws(fit, n_draws, random_seed)
    post = _posterior(fit)
    if post is not None:
        return _bayes_draws(fit, post, n_draws)
    raise SpecError(
        f"term premia need an affine ML fit (bb.affine_ml) or an AffineModel fit (DataTree with "
        f"a posterior); got {type(fit).__name__}")


def _posterior(fit):
    try:
        return fit["posterior"].to_dataset() if "posterior" in fit.children else None
    except AttributeError:
        return None


def _ml_draws(fit, n_draws, random_seed):
    missing = [k for k in _NEEDED if k not in fit.params]
    if missing:
        raise SpecError(f"the ML fit has no parameter {missing[0]!r} of the affine model")
    if fit.cov_theta is None:
        raise SpecError("the ML fit has no parameter covariance: fit it with se=True for bands")
    rng = np.random.default_rng(random_seed)
    cov = 0.5 * (fit.cov_theta + fit.cov_theta.T)
    w, V = np.linalg.eigh(cov)
    L = V * np.sqrt(np.clip(w, 0.0, None))
    Z = rng.standard_normal((int(n_draws), len(fit.theta_raw)))
    draws = []
    for z in Z:
        try:
            par = fit.spec.model(fit.theta_raw + L @ z)
        except (np.linalg.LinAlgError, ValueError):
            continue  # a draw with a singular rotation: outside the model
        draws.append(par)
    if len(draws) < 0.9 * n_draws:
        raise DataError(f"only {len(draws)} of {n_draws} parameter draws define a model")
    return fit.params, draws, fit.states.to_numpy(), fit.states.index, "ML, delta-method draws"


def _bayes_draws(fit, post, n_draws):
    from bayesbond.bayes.affine_model import data_from_fit
    from bayesbond.core.affine_canonical import canonical, eigen_from_raw

    need = [k for k in ("eig_raw", "k_inf", "Sigma", "A", "a") if k not in post]
    if need:
        raise SpecError(f"the posterior has no {need[0]!r}: is it an AffineModel fit?")
    D = data_from_fit(fit)
    n = int(post["A"].sizes["state"])
    flat = post.stack(sample=("chain", "draw"))
    k = flat.sizes["sample"]
    idx = np.arange(k) if k <= n_draws else np.linspace(0, k - 1, int(n_draws)).astype(int)
    arrs = {v: flat[v].transpose("sample", ...).values[idx]
            for v in ("eig_raw", "k_inf", "Sigma", "A", "a")}  # fmt: skip
    draws = []
    for s in range(len(idx)):
        Sg = arrs["Sigma"][s]
        can = canonical(np, eigen_from_raw(np, arrs["eig_raw"][s], n), float(arrs["k_inf"][s]),
                        Sg @ Sg.T, D["W"], D["tau"])  # fmt: skip
        A, a = arrs["A"][s], arrs["a"][s]
        draws.append({"A": A, "a": a, "Sigma": Sg, "Lambda": can.A_star - A,
                      "lambda1": can.a_star - a, "delta0": float(can.delta0),
                      "delta1": can.delta1})  # fmt: skip
    return None, draws, D["Y"] @ D["W"].T, D["dates"], "posterior draws"


def _band(values, point, prob, index, attrs) -> pd.DataFrame:
    q = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    centre = values.mean(0) if point is None else point
    df = pd.DataFrame({"mean": centre, "lower": q[0], "upper": q[1]}, index=index)
    df.attrs.update(attrs)
    return df


def _check_prob(prob):
    if not 0 < prob < 1:
        raise SpecError(f"prob must be in (0, 1); got {prob}")


# ------------------------------------------------------------------------------ public
def term_premium(fit, maturity: float = 10.0, prob: float = 0.94, *, n_draws: int = 1000,
                 random_seed=0) -> pd.DataFrame:
    """Per-date term premium of a ``maturity``-year zero bond with a central band.

    Parameters
    ----------
    fit : AffineMLResult or xarray.DataTree
        :func:`bayesbond.affine_ml` fit (with ``se=True``) or :meth:`bayesbond.AffineModel.fit`.
    maturity : float
        Years (any positive value: the fitted model prices every maturity).
    prob : float
        Probability of the equal-tailed band.
    n_draws : int
        Parameter draws (ML) or at most this many posterior draws (Bayesian).
    random_seed : int, optional
        Seed of the ML parameter draws.

    Returns
    -------
    pandas.DataFrame
        Index the dates, columns ``mean, lower, upper`` (decimals per year). ``mean`` is the ML
        point estimate for an ML fit and the posterior mean for a Bayesian one. ``attrs`` hold
        ``prob``, ``maturity``, ``n_draws``, ``source`` and ``yield`` (the model yield at the
        point estimate or posterior mean, per date, for plotting next to the premium).

    Notes
    -----
    ``TP_t(tau) = y_t(tau) - (1/tau) int_0^tau E^P_t[r_{t+s}] ds``: the yield minus its
    expectations-hypothesis component, the average expected short rate under P over the life of
    the bond (:func:`tp_coefficients`). Bands: quantiles of ``TP`` over the parameter draws of
    :func:`parameter_draws` (delta-method draws for ML, posterior draws for Bayes).
    """
    _check_prob(prob)
    tau = float(maturity)
    point, draws, X, dates, source = parameter_draws(fit, n_draws, random_seed)
    tp, yl = [], []
    for par in draws:
        b, c = tp_coefficients(par, [tau])
        tp.append(X @ b[0] + c[0])
        if point is None:
            yb, yc = _model(par).yield_coefficients([tau])
            yl.append(X @ yb[0] + yc[0])
    if point is not None:
        b, c = tp_coefficients(point, [tau])
        centre = X @ b[0] + c[0]
        yb, yc = _model(point).yield_coefficients([tau])
        y = X @ yb[0] + yc[0]
    else:
        centre, y = None, np.mean(yl, axis=0)
    attrs = {"prob": prob, "maturity": tau, "n_draws": len(draws), "source": source,
             "yield": pd.Series(y, index=dates, name=f"y({tau:g})")}  # fmt: skip
    return _band(np.asarray(tp), centre, prob, dates, attrs)


def expected_excess_returns(fit, maturities=None, prob: float = 0.94, *, horizon=None,
                            kind: str = "simple", n_draws: int = 1000,
                            random_seed=0) -> pd.DataFrame:
    """Per-date expected excess returns of zero bonds under P, by maturity, with bands.

    Parameters
    ----------
    fit : AffineMLResult or xarray.DataTree
        As :func:`term_premium`.
    maturities : array_like, optional
        Years (default: the fitted maturities).
    prob : float
        Probability of the equal-tailed bands.
    horizon : float, optional
        Holding period in years (``<= min(maturities)``); ``None``: instantaneous, per year.
    kind : {"simple", "log"}
        See :meth:`bayesbond.GaussianAffine.expected_excess_return`.

    Returns
    -------
    pandas.DataFrame
        Index the dates; columns a MultiIndex ``(maturity, stat)``, ``stat`` in
        ``mean, lower, upper`` (decimals; per year when instantaneous, over the period otherwise).

    Notes
    -----
    Instantaneous: ``E_t[dp/p - r dt]/dt = u(tau)'(Lambda X_t + lambda1)``; holding period: the
    exact Gaussian moments of :meth:`GaussianAffine.expected_excess_return`, per parameter draw.
    """
    _check_prob(prob)
    point, draws, X, dates, source = parameter_draws(fit, n_draws, random_seed)
    if maturities is None:
        maturities = _fitted_maturities(fit)
    t = np.atleast_1d(np.asarray(maturities, float))
    if np.any(~np.isfinite(t)) or np.any(t <= 0):
        raise DataError(f"maturities must be positive years; got {t.tolist()}")

    def one(par):
        out = _model(par).expected_excess_return(X, t, horizon=horizon, kind=kind)
        return np.asarray(out).reshape(len(X), len(t))

    vals = np.stack([one(p) for p in draws])  # (S, T, k)
    centre = vals.mean(0) if point is None else one(point)
    q = np.quantile(vals, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    cols = pd.MultiIndex.from_product([t, ["mean", "lower", "upper"]], names=["maturity", "stat"])
    data = np.stack([centre, q[0], q[1]], axis=-1).reshape(len(X), -1)
    df = pd.DataFrame(data, index=dates, columns=cols)
    df.attrs.update({"prob": prob, "horizon": horizon, "kind": kind, "n_draws": len(draws),
                     "source": source})  # fmt: skip
    return df


def _fitted_maturities(fit):
    if isinstance(fit, CurveMLResult):
        return fit.maturities
    from bayesbond.bayes.affine_model import data_from_fit

    return data_from_fit(fit)["tau"]

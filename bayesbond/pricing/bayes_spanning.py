"""Bayesian spanning tests: the posterior of each test factor's alpha on base factors.

The Bayesian twin of :func:`bayesbond.spanning` (same labels: ``alpha``, ``beta_<base>``,
``R2``, ``nobs``): for each test factor ``f_i``, ``f_i,t = alpha + beta' x_t + e_t`` with a proper
prior on ``alpha`` stated as a prior Sharpe ratio (Barillas and Shanken 2018), the posterior of
``alpha`` in closed form (Student t), the posterior probability that ``|alpha|`` exceeds a
threshold and the Bayes factor of ``alpha = 0``. Pure numpy/scipy; no sampler.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from bayesbond.core.ols import collinear_columns
from bayesbond.data.coerce import as_factor_frame, non_numeric_columns
from bayesbond.errors import DataError, listing

__all__ = ["bayesian_spanning", "spanning_posterior"]


def _aligned(yi: pd.DataFrame, B: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(y, x)`` on the months of the test factor ``name``; the base must be complete there."""
    xb = B.reindex(yi.index)
    na = xb.isna()
    if na.to_numpy().any():
        col = na.any().idxmax()
        raise DataError(f"base factor {col!r} is missing on {int(na[col].sum())} months of the "
                        f"test factor {name!r} ({listing(xb.index[na[col].to_numpy()])})")
    y = yi.to_numpy(dtype=float)[:, 0]
    x = xb.to_numpy(dtype=float)
    T, L = x.shape
    if T < L + 3:
        raise DataError(f"test factor {name!r} has {T} months, too few for {L} base factors")
    dep = collinear_columns(np.column_stack([np.ones(T), x, y]))
    if dep.size:
        names = ["alpha (the constant)", *map(str, B.columns), name]
        raise DataError(f"spanning {name!r}: {listing([names[j] for j in dep])} are an exact "
                        f"linear combination of one another over its {T} months")
    return y, x


def spanning_posterior(y: np.ndarray, x: np.ndarray, k: float) -> dict:
    """Closed-form posterior and Bayes factor of one spanning regression.

    Parameters
    ----------
    y : ndarray (T,)
        Test factor.
    x : ndarray (T, L)
        Base factors.
    k : float
        Prior variance of ``alpha / sigma`` (``alpha | sigma ~ N(0, k sigma^2)``).

    Returns
    -------
    dict
        ``m`` (posterior mean of alpha), ``scale`` and ``dof`` (its Student-t posterior),
        ``beta`` (posterior mean, (L,)), ``log_bf10`` (log Bayes factor of ``alpha != 0``
        against ``alpha = 0``), ``Q0``, ``Q1``, ``a``, ``c`` (the sufficient statistics below).

    Notes
    -----
    See :func:`bayesian_spanning`.
    """
    T, L = x.shape
    coef, *_ = np.linalg.lstsq(x, np.column_stack([y, np.ones(T)]), rcond=None)
    My = y - x @ coef[:, 0]  # M y, M = I - x (x'x)^{-1} x'
    M1 = 1.0 - x @ coef[:, 1]  # M 1
    a = float(M1 @ M1)
    c = float(M1 @ y)
    Q0 = float(My @ My)
    prec = a + 1.0 / k
    m = c / prec
    Q1 = Q0 - c * c / prec
    dof = T - L
    scale = np.sqrt(Q1 / (dof * prec))
    beta = coef[:, 0] - m * coef[:, 1]  # (x'x)^{-1} x'(y - m 1)
    log_bf10 = -0.5 * np.log1p(k * a) - 0.5 * dof * (np.log(Q1) - np.log(Q0))
    return {"m": m, "scale": scale, "dof": dof, "beta": beta, "log_bf10": float(log_bf10),
            "Q0": Q0, "Q1": Q1, "a": a, "c": c}


def bayesian_spanning(test_factors: pd.DataFrame, base: pd.DataFrame | None = None,
                      prior_sharpe: float = 0.5, threshold: float = 0.001, prob: float = 0.94,
                      periods_per_year: int = 12, prior_null: float = 0.5) -> pd.DataFrame:
    """Posterior of each test factor's alpha on the base factors, with Bayes factors.

    Parameters
    ----------
    test_factors : pandas.DataFrame or Series
        Candidate factor (excess) returns, dates x factors; each uses its own complete months.
    base : pandas.DataFrame
        Base factors (e.g. ``CMKT``, ``TERM``), observed wherever a test factor is.
    prior_sharpe : float
        Prior root-mean-square of the annualised Sharpe ratio a test factor adds to the base,
        ``sqrt(periods_per_year E[alpha^2 / sigma^2])`` (0.5: the factor's hedged return is expected
        to have an annual Sharpe ratio of about 0.5 if it is not spanned).
    threshold : float
        ``|alpha|`` (decimals per period) that counts as economically relevant: the table gives
        ``P(|alpha| > threshold | data)``; default 0.001 (10 basis points a month).
    prob : float
        Mass of the equal-tailed credible interval.
    periods_per_year : int
        12 for monthly data.
    prior_null : float
        Prior probability of ``alpha = 0`` used for ``P(alpha=0)``.

    Returns
    -------
    pandas.DataFrame
        Test factors x ``alpha`` (posterior mean under ``alpha != 0``), ``sd(alpha)``, ``lower``,
        ``upper``, ``P(|alpha|>threshold)``, ``BF(alpha=0)`` (the Bayes factor of ``alpha = 0``
        against ``alpha != 0``; above 1 favours spanning), ``P(alpha=0)``, ``beta_<base>``
        (posterior means), ``R2`` (of the OLS fit), ``nobs``. ``attrs`` hold the settings.

    Notes
    -----
    Model ``y = alpha 1 + x beta + e``, ``e ~ N(0, sigma^2 I)``; priors ``p(beta, sigma) ~ 1/sigma``
    (common to both hypotheses, so the Bayes factor is well defined) and, under ``alpha != 0``,
    ``alpha | sigma ~ N(0, k sigma^2)`` with ``k = prior_sharpe^2 / periods_per_year``: the
    squared Sharpe ratio added by the test factor is ``alpha^2 / sigma^2`` (Gibbons, Ross and
    Shanken 1989), with prior mean ``k`` (Barillas, F. and Shanken, J. (2018), "Comparing asset
    pricing models", Journal of Finance 73(2), 715-754, Section II).

    With ``M = I - x(x'x)^{-1}x'``, ``a = 1'M1``, ``c = 1'My``, ``Q0 = y'My``, ``nu = T - L`` and
    ``q = a + 1/k``, integrating ``beta``, then ``alpha``, then ``sigma`` gives

    ``BF10 = p(y | alpha != 0) / p(y | alpha = 0) = (1 + k a)^{-1/2} (Q1 / Q0)^{-nu/2}``,
    ``Q1 = Q0 - c^2 / q``,

    and the posterior ``alpha | y ~ t_nu(c / q, Q1 / (nu q))`` (``sigma^2 | y ~ IG(nu/2, Q1/2)``,
    ``alpha | sigma, y ~ N(c/q, sigma^2/q)``); ``E[beta | y] = (x'x)^{-1} x'(y - E[alpha] 1)``.
    ``k -> infinity`` gives the OLS alpha ``c / a`` and Bayes factors that favour the null
    without bound (Lindley's paradox): the prior Sharpe ratio must be stated. ``P(alpha=0) =
    pi0 BF01 / (pi0 BF01 + 1 - pi0)``; ``P(|alpha| > threshold)`` is under ``alpha != 0``.
    The i.i.d. normal errors are an assumption: with autocorrelated or heteroskedastic
    residuals the posterior is too narrow (compare the Newey-West t of :func:`bayesbond.spanning`).
    """
    if not (np.isfinite(prior_sharpe) and prior_sharpe > 0):
        raise DataError(f"prior_sharpe must be positive, got {prior_sharpe!r}")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise DataError(f"threshold must be >= 0 (decimals per period), got {threshold!r}")
    if not 0 < prob < 1:
        raise DataError(f"prob must be in (0, 1), got {prob!r}")
    if not 0 < prior_null < 1:
        raise DataError(f"prior_null must be in (0, 1), got {prior_null!r}")
    if base is None:
        raise DataError("base factors are required (e.g. CMKT and TERM), dates x factors")
    test = as_factor_frame(test_factors, where="test_factors")
    B = as_factor_frame(base, where="base")
    for what, fr in (("test_factors", test), ("base", B)):
        bad = non_numeric_columns(fr)
        if bad:
            raise DataError(f"{what}: the columns {listing(bad)} are not numeric")
    test, B = test.astype(float), B.astype(float)
    clash = [str(c) for c in test.columns if c in B.columns]
    if clash:
        raise DataError(f"factor(s) {clash} are both test and base factors")
    k = prior_sharpe**2 / periods_per_year
    z = (1 - prob) / 2
    rows = {}
    for name in test.columns:
        yi = test[[name]].dropna()
        if yi.empty:
            raise DataError(f"test factor {name!r} has no observed month")
        y, x = _aligned(yi, B, str(name))
        post = spanning_posterior(y, x, k)
        t = stats.t(post["dof"], loc=post["m"], scale=post["scale"])
        lbf01 = -post["log_bf10"]
        log_odds = np.log(prior_null) - np.log1p(-prior_null) + lbf01
        X = np.column_stack([np.ones(len(y)), x])
        e = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        row = {"alpha": post["m"], "sd(alpha)": float(t.std()),
               "lower": float(t.ppf(z)), "upper": float(t.ppf(1 - z)),
               "P(|alpha|>threshold)": float(t.sf(threshold) + t.cdf(-threshold)),
               "BF(alpha=0)": float(np.exp(lbf01)),
               "P(alpha=0)": float(special.expit(log_odds))}
        for b, v in zip(B.columns, post["beta"], strict=True):
            row[f"beta_{b}"] = float(v)
        row["R2"] = float(1 - e @ e / np.sum((y - y.mean()) ** 2))
        row["nobs"] = len(y)
        rows[str(name)] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "factor"
    out.attrs.update(prior_sharpe=prior_sharpe, k=k, threshold=threshold, prob=prob,
                     prior_null=prior_null, periods_per_year=periods_per_year)
    return out

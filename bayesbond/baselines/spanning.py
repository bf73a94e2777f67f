"""Spanning regressions of candidate factors on base factors, and the GRS test.

``f_i,t = alpha_i + b_i' base_t + e_i,t`` for each test factor ``i``: a non-zero ``alpha_i`` means
the base factors do not span ``f_i``. Each test factor is also regressed on the base plus each
other test factor, and the alphas are tested jointly with the Gibbons-Ross-Shanken F-test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bayesbond.baselines.ols import OLSResult, _as_factors, _as_wide, ols
from bayesbond.errors import DataError

__all__ = ["SpanningResult", "grs_test", "spanning"]


@dataclass(frozen=True, eq=False)
class SpanningResult:
    """Spanning regressions of test factors on base factors.

    Attributes
    ----------
    alpha : pandas.Series
        Intercept per test factor (decimals per month).
    tvalues : pandas.Series
        t-statistic of alpha (Newey-West when ``hac_lags`` is given).
    beta : pandas.DataFrame
        Test factors x base factors.
    rsquared : pandas.Series
    nobs : pandas.Series
    variants : pandas.DataFrame
        One row per (``test``, ``added``) pair: the test factor regressed on the base plus the other
        test factor ``added``; columns ``alpha``, ``t(alpha)``, ``beta_added``, ``t(added)``,
        ``R2``, ``nobs``.
    grs : float
        Gibbons-Ross-Shanken statistic of all alphas (base regressions, common months).
    grs_pvalue : float
    grs_df : tuple of int
        ``(N, T - N - L)``.
    grs_nobs : int
        Months ``T`` where every test and base factor is observed.
    fit : OLSResult
        The base regressions.
    """

    alpha: pd.Series
    tvalues: pd.Series
    beta: pd.DataFrame
    rsquared: pd.Series
    nobs: pd.Series
    variants: pd.DataFrame
    grs: float
    grs_pvalue: float
    grs_df: tuple[int, int]
    grs_nobs: int
    fit: OLSResult

    def summary(self) -> pd.DataFrame:
        """Test factors x (alpha, t(alpha), betas, R2, nobs)."""
        out = pd.DataFrame({"alpha": self.alpha, "t(alpha)": self.tvalues})
        for b in self.beta.columns:
            out[f"beta_{b}"] = self.beta[b]
        out["R2"] = self.rsquared
        out["nobs"] = self.nobs
        return out

    def __repr__(self) -> str:
        return (
            f"SpanningResult({len(self.alpha)} test factors on {list(self.beta.columns)}; "
            f"GRS = {self.grs:.3f}, p = {self.grs_pvalue:.3g}, T = {self.grs_nobs})"
        )


def grs_test(test, base) -> tuple[float, float, tuple[int, int], int]:
    """Gibbons-Ross-Shanken test that all intercepts of ``test`` on ``base`` are zero.

    Parameters
    ----------
    test : pandas.DataFrame or ndarray (T, N)
        ``N`` test (excess-return) factors, dates x factors.
    base : pandas.DataFrame or ndarray (T, L)
        ``L`` base factors (traded, excess returns), dates x factors. DataFrames are aligned on
        their dates and months with a missing value are left out; arrays must be complete.

    Returns
    -------
    (stat, pvalue, (N, T - N - L), T)
        On the ``T`` months where all are observed.

    Notes
    -----
    ``GRS = (T / N) (T - N - L) / (T - L - 1) alpha' Sigma^{-1} alpha / (1 + mu' Omega^{-1} mu)``
    with ``Sigma`` the residual covariance (divided by ``T - L - 1``), ``mu`` the mean and
    ``Omega`` the covariance (divided by ``T``) of the base factors. Under i.i.d. normal errors it
    is ``F(N, T - N - L)`` exactly: ``Var(alpha) = (1 + mu' Omega^{-1} mu) Sigma / T``.
    Gibbons, M. R., Ross, S. A. and Shanken, J. (1989), "A test of the efficiency of a given
    portfolio", Econometrica 57(5), 1121-1152; Campbell, Lo and MacKinlay (1997), ch. 5-6.
    """
    if isinstance(test, pd.DataFrame | pd.Series) or isinstance(base, pd.DataFrame | pd.Series):
        test, base = pd.DataFrame(test), pd.DataFrame(base)
        both = pd.concat([test, base], axis=1, join="inner").dropna()
        Y = both.iloc[:, : test.shape[1]].to_numpy(dtype=float)
        F = both.iloc[:, test.shape[1] :].to_numpy(dtype=float)
    else:
        Y, F = np.asarray(test, dtype=float), np.asarray(base, dtype=float)
        Y, F = Y.reshape(len(Y), -1), F.reshape(len(F), -1)
        if len(Y) != len(F) or not (np.isfinite(Y).all() and np.isfinite(F).all()):
            raise DataError("GRS arrays need the same number of complete rows")
    T, N, L = Y.shape[0], Y.shape[1], F.shape[1]
    if T - N - L < 1:
        raise DataError(
            f"GRS needs more common months ({T}) than test plus base factors ({N} + {L})"
        )
    X = np.column_stack([np.ones(T), F])
    coef, *_ = np.linalg.lstsq(X, Y, rcond=None)
    alpha = coef[0]
    E = Y - X @ coef
    Sigma = E.T @ E / (T - L - 1)
    mu = F.mean(axis=0)
    Fc = F - mu
    Omega = Fc.T @ Fc / T
    q = 1.0 + mu @ np.linalg.solve(Omega, mu)
    stat = (T / N) * (T - N - L) / (T - L - 1) * (alpha @ np.linalg.solve(Sigma, alpha)) / q
    df = (N, T - N - L)
    return float(stat), float(stats.f.sf(stat, *df)), df, T


def spanning(
    test_factors: pd.DataFrame,
    base: pd.DataFrame,
    hac_lags: int | None = 6,
    use_correction: bool = True,
) -> SpanningResult:
    """Spanning regressions of each test factor on the base factors (and each other test factor).

    Parameters
    ----------
    test_factors : pandas.DataFrame or Series
        Candidate factor returns, dates x factors (``NaN`` where a factor is not available; each
        regression uses its factor's own months).
    base : pandas.DataFrame
        Base factor returns (e.g. ``CMKT``, ``TERM``), dates x factors, observed wherever a test
        factor is.
    hac_lags : int or None
        Newey-West lags of the t-statistics (classical when ``None``).
    use_correction : bool
        Small-sample factor ``n / (n - p)`` on the HAC covariance.

    Returns
    -------
    SpanningResult

    Notes
    -----
    ``f_i,t = alpha_i + b_i' base_t + e_i,t``; the variants add one other test factor ``f_j`` as a
    regressor: ``f_i,t = alpha_ij + b_ij' base_t + c_ij f_j,t + e``. The GRS test uses the base
    regressions on the months where all factors are observed (:func:`grs_test`).
    """
    test = _as_wide(test_factors)
    test.columns = pd.Index([str(c) for c in test.columns], name="factor")
    B = _as_factors(base)
    clash = [c for c in test.columns if c in B.columns]
    if clash:
        raise DataError(f"factor(s) {clash} are both test and base factors")
    fit = ols(test, B, hac_lags=hac_lags, use_correction=use_correction)
    t = fit.tvalues
    rows = []
    for i in test.columns:
        for j in test.columns:
            if i == j:
                continue
            Xj = pd.concat([B, test[[j]]], axis=1, join="inner")
            yi = test[[i]].loc[Xj.index]
            keep = Xj.notna().all(axis=1)  # months where the added factor exists
            r = ols(yi[keep], Xj[keep], hac_lags=hac_lags, use_correction=use_correction)
            rows.append(
                {
                    "test": i,
                    "added": j,
                    "alpha": r.params.iloc[0]["alpha"],
                    "t(alpha)": r.tvalues.iloc[0]["alpha"],
                    "beta_added": r.params.iloc[0][j],
                    "t(added)": r.tvalues.iloc[0][j],
                    "R2": r.rsquared.iloc[0],
                    "nobs": int(r.nobs.iloc[0]),
                }
            )
    variants = (
        pd.DataFrame(rows).set_index(["test", "added"])
        if rows
        else pd.DataFrame(
            columns=["alpha", "t(alpha)", "beta_added", "t(added)", "R2", "nobs"],
            index=pd.MultiIndex.from_tuples([], names=["test", "added"]),
        )
    )
    Bt = B.reindex(test.index)
    grs, pval, df, T = grs_test(test, Bt)
    return SpanningResult(
        alpha=fit.params["alpha"].rename("alpha"),
        tvalues=t["alpha"].rename("t(alpha)"),
        beta=fit.beta,
        rsquared=fit.rsquared,
        nobs=fit.nobs,
        variants=variants,
        grs=grs,
        grs_pvalue=pval,
        grs_df=df,
        grs_nobs=T,
        fit=fit,
    )

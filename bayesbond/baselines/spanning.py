"""Spanning regressions of candidate factors on base factors, the GRS test and a HAC Wald test.

``f_i,t = alpha_i + b_i' base_t + e_i,t`` for each test factor ``i``: a non-zero ``alpha_i`` means
the base factors do not span ``f_i``. Each test factor is also regressed on the base plus each
other test factor, and the alphas are tested jointly twice: with the Gibbons-Ross-Shanken F-test,
exact under i.i.d. normal errors (and oversized when the errors are autocorrelated), and with a
Wald test on the Newey-West covariance of the stacked moment conditions, robust to
heteroskedasticity and autocorrelation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bayesbond.baselines.ols import OLSResult, _as_factors, ols
from bayesbond.core.ols import collinear_columns, newey_west_meat
from bayesbond.data.coerce import as_wide_returns, check_return_units
from bayesbond.errors import DataError

__all__ = ["SpanningResult", "grs_test", "hac_wald_test", "spanning"]


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
        Gibbons-Ross-Shanken statistic of all alphas (base regressions, common months). It
        ASSUMES i.i.d. normal errors; with autocorrelated errors it rejects too often (about 25%
        at a nominal 5% with AR(1) errors of coefficient 0.3): use :attr:`wald` then.
    grs_pvalue : float
    grs_df : tuple of int
        ``(N, T - N - L)``.
    grs_nobs : int
        Months ``T`` where every test and base factor is observed.
    wald : float
        HAC-robust Wald statistic of all alphas = 0 (:func:`hac_wald_test`; same months as GRS).
    wald_pvalue : float
        From ``chi2(N)``.
    wald_lags : int
        Newey-West lags of the Wald test (``hac_lags``; 0, heteroskedasticity-robust only, when
        ``hac_lags`` is None).
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
    wald: float
    wald_pvalue: float
    wald_lags: int
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
            f"HAC Wald({self.wald_lags} lags) = {self.wald:.3f}, p = {self.wald_pvalue:.3g}; "
            f"GRS (assumes iid errors) = {self.grs:.3f}, p = {self.grs_pvalue:.3g}; "
            f"T = {self.grs_nobs})"
        )


def _names(obj, n: int, prefix: str) -> list[str]:
    if isinstance(obj, pd.DataFrame):
        return [str(c) for c in obj.columns]
    if isinstance(obj, pd.Series):
        return [str(obj.name) if obj.name is not None else f"{prefix}0"]
    return [f"{prefix}{i}" for i in range(n)]


def _common_months(test, base, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(Y, F)`` on the months where every test and base factor is observed, checked for exact
    collinearity of ``[1, base, test]`` (the factors named)."""
    if isinstance(test, pd.DataFrame | pd.Series) or isinstance(base, pd.DataFrame | pd.Series):
        test, base = pd.DataFrame(test), pd.DataFrame(base)
        both = pd.concat([test, base], axis=1, join="inner").dropna()
        Y = both.iloc[:, : test.shape[1]].to_numpy(dtype=float)
        F = both.iloc[:, test.shape[1] :].to_numpy(dtype=float)
    else:
        Y, F = np.asarray(test, dtype=float), np.asarray(base, dtype=float)
        Y, F = Y.reshape(len(Y), -1), F.reshape(len(F), -1)
        if len(Y) != len(F) or not (np.isfinite(Y).all() and np.isfinite(F).all()):
            raise DataError(f"{what} arrays need the same number of complete rows")
    names = ["alpha (the constant)"]
    names += _names(base, F.shape[1], "base") + _names(test, Y.shape[1], "test")
    _refuse_collinear(np.column_stack([np.ones(len(Y)), F, Y]), names, f"{what}: ")
    return Y, F


def _refuse_collinear(M: np.ndarray, names: list[str], what: str) -> None:
    """DataError naming the columns of ``M`` in an exact linear dependence (none: no error)."""
    if len(M) <= M.shape[1]:
        return  # too few months: the callers' own checks say so
    dep = collinear_columns(M)
    if dep.size:
        raise DataError(
            f"{what}the factors {', '.join(names[j] for j in dep)} are an exact linear "
            f"combination of one another over the {len(M)} common months (a test factor equal "
            "to another, or spanned exactly by the base factors, has nothing left to test)"
        )


def hac_wald_test(
    test, base, hac_lags: int = 6, use_correction: bool = True
) -> tuple[float, float, int, int]:
    """HAC-robust Wald test that all intercepts of ``test`` on ``base`` are zero.

    Parameters
    ----------
    test : pandas.DataFrame or ndarray (T, N)
        ``N`` test factors, dates x factors.
    base : pandas.DataFrame or ndarray (T, L)
        ``L`` base factors. DataFrames are aligned on their dates and months with a missing
        value are left out; arrays must be complete.
    hac_lags : int
        Newey-West (Bartlett) lags ``m``; 0 gives the heteroskedasticity-robust (White) test.
    use_correction : bool
        Small-sample factor ``T / (T - L - 1)`` on the covariance (statsmodels' ``use_correction``,
        as in :func:`~bayesbond.baselines.ols.ols`).

    Returns
    -------
    (stat, pvalue, N, T)
        Wald statistic, its ``chi2(N)`` p-value, the degrees of freedom and the common months.

    Notes
    -----
    With ``x_t = (1, base_t')'``, ``X'X = sum_t x_t x_t'`` and OLS residuals ``e_it``, the stacked
    moment conditions ``h_t = e_t (x) x_t`` (``N (L + 1)`` entries) have the Newey-West long-run
    covariance ``S = Gamma_0 + sum_{l=1}^{m} (1 - l/(m+1)) (Gamma_l + Gamma_l')``,
    ``Gamma_l = sum_t h_t h_{t-l}'``, and the coefficients the sandwich covariance
    ``V = (I_N (x) (X'X)^{-1}) S (I_N (x) (X'X)^{-1})`` (times ``T / (T - L - 1)`` with the
    correction). Its diagonal blocks are the per-equation Newey-West covariances; the off-diagonal
    blocks carry the cross-equation correlation. With ``V_alpha`` the ``N x N`` block of the
    intercepts, ``W = alpha' V_alpha^{-1} alpha`` is asymptotically ``chi2(N)`` under the null,
    whatever the (weakly stationary, mixing) dependence of the errors. Unlike GRS it is not exact
    in small samples: Newey-West long-run covariances are biased down, so it rejects somewhat too
    often (in a Monte Carlo with T = 240, AR(1) errors of coefficient 0.3 and 6 lags: 7% for one
    test factor, 8.5% for two, 9.5% for three, against 13%, 17% and 19% for GRS); more lags
    than needed make it worse for many test factors. Newey, W. K. and West, K. D. (1987),
    Econometrica 55(3), 703-708; Cochrane, Asset Pricing (2005), ch. 11-12 (GMM test of alphas).
    """
    if int(hac_lags) != hac_lags or hac_lags < 0:
        raise DataError(f"hac_lags must be a non-negative integer, got {hac_lags!r}")
    Y, F = _common_months(test, base, "HAC Wald")
    T, N, L = Y.shape[0], Y.shape[1], F.shape[1]
    p = L + 1
    if T - p < 1 or T <= N * p:
        raise DataError(
            f"the HAC Wald test needs more common months ({T}) than moment conditions ({N * p})"
        )
    X = np.column_stack([np.ones(T), F])
    Q, R = np.linalg.qr(X)
    coef = np.linalg.solve(R, Q.T @ Y)  # (p, N)
    E = Y - X @ coef
    H = (E[:, :, None] * X[:, None, :]).reshape(T, N * p)  # h_t = e_t (x) x_t
    S = newey_west_meat(H[None], int(hac_lags))[0]
    XtXi = np.linalg.solve(R, np.linalg.solve(R, np.eye(p)).T)  # (X'X)^{-1} = R^{-1} R^{-T}
    B = np.kron(np.eye(N), XtXi)
    V = B @ S @ B
    if use_correction:
        V *= T / (T - p)
    ia = np.arange(N) * p  # the intercepts
    Va = V[np.ix_(ia, ia)]
    alpha = coef[0]
    stat = float(alpha @ np.linalg.solve(Va, alpha))
    return stat, float(stats.chi2.sf(stat, N)), N, T


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
    is ``F(N, T - N - L)`` exactly: ``Var(alpha) = (1 + mu' Omega^{-1} mu) Sigma / T``. It ASSUMES
    serially uncorrelated, homoskedastic errors: with AR(1) errors of coefficient 0.3 its size is
    about 25% at a nominal 5%. :func:`hac_wald_test` is the robust alternative.
    Gibbons, M. R., Ross, S. A. and Shanken, J. (1989), "A test of the efficiency of a given
    portfolio", Econometrica 57(5), 1121-1152; Campbell, Lo and MacKinlay (1997), ch. 5-6.
    """
    Y, F = _common_months(test, base, "GRS")
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


def spanning(test_factors: pd.DataFrame, base: pd.DataFrame, hac_lags: int | None = 6,
             use_correction: bool = True, units: str = "decimal",
             check_units: bool = True) -> SpanningResult:
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
    units : {"decimal", "percent"}
        Units of both test and base factors (percent are divided by 100).
    check_units : bool
        Refuse factors that look like percent or gross returns
        (:func:`bayesbond.data.panel.check_return_units`).

    Returns
    -------
    SpanningResult

    Notes
    -----
    ``f_i,t = alpha_i + b_i' base_t + e_i,t``; the variants add one other test factor ``f_j`` as a
    regressor: ``f_i,t = alpha_ij + b_ij' base_t + c_ij f_j,t + e``. The joint tests use the base
    regressions on the months where all factors are observed: GRS (:func:`grs_test`), exact
    under i.i.d. normal errors only, and the Newey-West Wald test (:func:`hac_wald_test`, with
    ``hac_lags`` lags, 0 when ``None``), robust to autocorrelated and heteroskedastic errors,
    the one to read when the t-statistics are HAC.

    Raises
    ------
    DataError
        A factor both test and base; factors that are an exact linear combination of one another
        over the common months (named: a test factor spanned exactly by the base, two identical
        test factors, collinear base factors); factors that look like percent or gross returns.
    """
    values, dates, names = as_wide_returns(test_factors)
    test = pd.DataFrame(values, index=dates, columns=pd.Index(map(str, names), name="factor"))
    B = _as_factors(base)
    clash = [c for c in test.columns if c in B.columns]
    if clash:
        raise DataError(f"factor(s) {clash} are both test and base factors")
    if units not in ("decimal", "percent"):
        raise DataError(f"units must be 'decimal' or 'percent', got {units!r}")
    if units == "percent":
        test, B = test / 100.0, B / 100.0
    Bt = B.reindex(test.index)
    if check_units:
        check_return_units(test.to_numpy(), test.columns, "test factors", units, "factor")
        check_return_units(B.to_numpy(), B.columns, "base factors", units, "factor")
    _common_months(test, Bt, "spanning")  # exact collinearity, the factors named
    kw = {"hac_lags": hac_lags, "use_correction": use_correction, "check_units": False}
    fit = ols(test, B, **kw)
    t = fit.tvalues
    rows = []
    for i in test.columns:
        for j in test.columns:
            if i == j:
                continue
            Xj = pd.concat([B, test[[j]]], axis=1, join="inner")
            yi = test[[i]].loc[Xj.index]
            keep = Xj.notna().all(axis=1)  # months where the added factor exists
            yk, Xk = yi[keep], Xj[keep]
            ok = yk[i].notna().to_numpy()
            _refuse_collinear(
                np.column_stack([np.ones(ok.sum()), Xk.to_numpy()[ok], yk.to_numpy()[ok]]),
                ["alpha (the constant)", *map(str, Xk.columns), str(i)],
                f"spanning {i} on the base and {j}: ",
            )
            r = ols(yk, Xk, **kw)
            rows.append(
                {"test": i, "added": j, "alpha": r.params.iloc[0]["alpha"],
                 "t(alpha)": r.tvalues.iloc[0]["alpha"], "beta_added": r.params.iloc[0][j],
                 "t(added)": r.tvalues.iloc[0][j], "R2": r.rsquared.iloc[0],
                 "nobs": int(r.nobs.iloc[0])}
            )
    variants = (
        pd.DataFrame(rows).set_index(["test", "added"])
        if rows
        else pd.DataFrame(columns=["alpha", "t(alpha)", "beta_added", "t(added)", "R2", "nobs"],
                          index=pd.MultiIndex.from_tuples([], names=["test", "added"]))
    )
    grs, pval, df, T = grs_test(test, Bt)
    lags = 0 if hac_lags is None else int(hac_lags)
    wald, wald_p, _, _ = hac_wald_test(test, Bt, hac_lags=lags, use_correction=use_correction)
    return SpanningResult(alpha=fit.params["alpha"].rename("alpha"),
                          tvalues=t["alpha"].rename("t(alpha)"), beta=fit.beta,
                          rsquared=fit.rsquared, nobs=fit.nobs, variants=variants, grs=grs,
                          grs_pvalue=pval, grs_df=df, grs_nobs=T, wald=wald, wald_pvalue=wald_p,
                          wald_lags=lags, fit=fit)

"""Two-pass Fama-MacBeth risk premia and GMM risk prices of a linear SDF.

First pass: time-series OLS of each test asset on the factors, ``r_it = a_i + beta_i' f_t + e_it``.
Second pass: cross-sectional (G)LS of mean excess returns on the betas,
``E[r_i] = lambda_0 + beta_i' lambda`` (``lambda_0`` only with ``intercept=True``). Standard errors:
Shanken (1992), the plain Fama-MacBeth ones (time series of monthly cross-sectional estimates) and
the GMM sandwich of the two passes (heteroskedasticity-robust, or Newey-West with ``hac_lags``),
which are linearmodels' ``LinearFactorModel`` errors. :func:`sdf_gmm` estimates the prices of
risk ``b`` of ``m_t = 1 - b'(f_t - mu)`` by GMM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bayesbond.core.cross_section import cs_design, cs_lambda, cs_rsquared, shanken_cov
from bayesbond.core.ols import collinear_columns, newey_west_meat
from bayesbond.data.coerce import as_factor_frame, non_numeric_columns
from bayesbond.errors import DataError, listing

__all__ = ["FamaMacBethResult", "PricingData", "SDFGMMResult", "fama_macbeth", "pricing_data",
           "sdf_gmm"]

INTERCEPT = "intercept"


# ------------------------------------------------------------------------------ inputs
@dataclass(frozen=True, eq=False)
class PricingData:
    """Aligned, checked inputs of a cross-sectional pricing model.

    Attributes
    ----------
    R : ndarray (T, N)
        Test-asset excess returns.
    F : ndarray (T, K)
        Factors.
    dates : pandas.DatetimeIndex
    assets, factors : list of str
    """

    R: np.ndarray
    F: np.ndarray
    dates: pd.DatetimeIndex
    assets: list[str]
    factors: list[str]

    @property
    def T(self) -> int:
        return self.R.shape[0]


def _frame(obj, what: str) -> pd.DataFrame:
    fr = as_factor_frame(obj, where=what)
    names = [str(c) for c in fr.columns]
    if fr.shape[1] == 0:
        raise DataError(f"{what} has no columns")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{what}: duplicated columns {listing(dup)}")
    bad = non_numeric_columns(fr)
    if bad:
        raise DataError(f"{what}: the columns {listing(bad)} are not numeric")
    out = pd.DataFrame(fr.to_numpy(dtype=float, na_value=np.nan), index=fr.index, columns=names)
    inf = ~np.isfinite(out.to_numpy()) & out.notna().to_numpy()
    if inf.any():
        i, j = np.argwhere(inf)[0]
        raise DataError(f"{what}: infinite value in column {names[j]!r} at "
                        f"{out.index[i].date()}")
    return out


def pricing_data(test_assets, factors, min_assets: int = 1) -> PricingData:
    """Align test assets and factors on their common months and check them.

    Parameters
    ----------
    test_assets : pandas.DataFrame
        Excess returns, dates x assets (decimals per month).
    factors : pandas.DataFrame or Series
        Factor values, dates x factors.
    min_assets : int
        Fewest test assets accepted.

    Returns
    -------
    PricingData

    Raises
    ------
    DataError
        Not DataFrames, non-numeric or duplicated columns, no common months, a missing or
        infinite value on a common month (column and dates named), a factor called
        ``intercept``, factors that are exactly collinear (named), fewer months than factors
        plus two, fewer test assets than ``min_assets``.
    """
    R = _frame(test_assets, "test_assets")
    F = _frame(factors, "factors")
    if INTERCEPT in F.columns:
        raise DataError(f"a factor may not be called {INTERCEPT!r} (the cross-sectional "
                        "intercept's label)")
    common = R.index.intersection(F.index)
    if common.empty:
        raise DataError(
            "test_assets and factors have no month in common (test assets "
            f"{R.index[0].date()}..{R.index[-1].date()}, factors "
            f"{F.index[0].date()}..{F.index[-1].date()})")
    R, F = R.loc[common], F.loc[common]
    for what, fr in (("test_assets", R), ("factors", F)):
        na = fr.isna()
        if na.to_numpy().any():
            col = na.any().idxmax()
            when = fr.index[na[col].to_numpy()]
            raise DataError(
                f"{what}: column {col!r} is missing on {len(when)} of the {len(common)} common "
                f"months ({listing(when)}); select complete months first (e.g. .dropna())")
    T, N, K = len(common), R.shape[1], F.shape[1]
    if T < K + 2:
        raise DataError(f"{T} common months are too few for {K} factors (need at least K + 2)")
    if N < min_assets:
        raise DataError(f"{N} test assets are too few: this model needs at least {min_assets}")
    dep = collinear_columns(np.column_stack([np.ones(T), F.to_numpy()]))
    if dep.size:
        names = ["the constant", *F.columns]
        raise DataError(f"the factors {listing([names[j] for j in dep])} are an exact linear "
                        f"combination of one another over the {T} common months")
    return PricingData(R=R.to_numpy(), F=F.to_numpy(), dates=pd.DatetimeIndex(common),
                       assets=list(R.columns), factors=list(F.columns))


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True, eq=False)
class FamaMacBethResult:
    """Two-pass Fama-MacBeth estimates.

    Attributes
    ----------
    risk_premia : pandas.Series
        ``lambda`` per factor (decimals per month), preceded by ``intercept`` when estimated.
    se : pandas.Series
        Shanken (1992) errors-in-variables corrected standard errors.
    se_fm : pandas.Series
        Plain Fama-MacBeth standard errors: of the mean of the monthly cross-sectional
        estimates (Newey-West with ``hac_lags``); they ignore that the betas are estimated.
    se_gmm : pandas.Series
        GMM sandwich of the two passes (heteroskedasticity-robust; Newey-West with
        ``hac_lags``): linearmodels' ``LinearFactorModel(...).fit()`` errors.
    cov_shanken, cov_fm, cov_gmm : pandas.DataFrame
    beta : pandas.DataFrame
        Assets x factors (first pass).
    alpha : pandas.Series
        Pricing errors ``mean(r_i) - x_i' lambda`` per asset.
    rsquared : float
        Cross-sectional R2 (Kan, Robotti and Shanken 2013;
        :func:`bayesbond.core.cross_section.cs_rsquared`).
    lambda_t : pandas.DataFrame
        Monthly cross-sectional estimates, dates x premia (their mean is ``risk_premia``).
    shanken_c : float
        ``lambda_f' Sigma_f^{-1} lambda_f``, the Shanken correction is ``1 + c``.
    gls, intercept : bool
    hac_lags : int or None
    nobs : int
    """

    risk_premia: pd.Series
    se: pd.Series
    se_fm: pd.Series
    se_gmm: pd.Series
    cov_shanken: pd.DataFrame
    cov_fm: pd.DataFrame
    cov_gmm: pd.DataFrame
    beta: pd.DataFrame
    alpha: pd.Series
    rsquared: float
    lambda_t: pd.DataFrame
    shanken_c: float
    gls: bool
    intercept: bool
    hac_lags: int | None
    nobs: int

    @property
    def tvalues(self) -> pd.Series:
        """``risk_premia / se`` (Shanken)."""
        return self.risk_premia / self.se

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided normal p-values of :attr:`tvalues`."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=self.se.index)

    def conf_int(self, prob: float = 0.90, se: str = "shanken") -> pd.DataFrame:
        """Normal intervals ``lambda -/+ z se`` with ``se`` one of shanken, fm, gmm."""
        s = {"shanken": self.se, "fm": self.se_fm, "gmm": self.se_gmm}[se]
        z = stats.norm.ppf(0.5 + prob / 2)
        return pd.DataFrame({"lower": self.risk_premia - z * s,
                             "upper": self.risk_premia + z * s})

    def summary(self) -> pd.DataFrame:
        """Premia x (lambda, se (Shanken), t, se_fm, se_gmm)."""
        return pd.DataFrame({"lambda": self.risk_premia, "se": self.se, "t": self.tvalues,
                             "se_fm": self.se_fm, "se_gmm": self.se_gmm})

    def __repr__(self) -> str:
        kind = "GLS" if self.gls else "OLS"
        return (f"FamaMacBethResult({kind}, {len(self.alpha)} assets, T = {self.nobs}, "
                f"R2 = {self.rsquared:.3f}; lambda = {self.risk_premia.round(5).to_dict()})")


# ------------------------------------------------------------------------- estimators
def _check_lags(hac_lags) -> int | None:
    if hac_lags is None:
        return None
    if isinstance(hac_lags, bool) or int(hac_lags) != hac_lags or hac_lags < 0:
        raise DataError(f"hac_lags must be a non-negative integer or None, got {hac_lags!r}")
    return int(hac_lags)


def _long_run(H: np.ndarray, lags: int | None) -> np.ndarray:
    """``sum_t h_t h_t' / T`` plus Bartlett-weighted autocovariances (``lags``)."""
    return newey_west_meat(H[None], lags or 0)[0] / H.shape[0]


def _gmm_cov(R, F, X, W, lam, alpha, intercept, lags, debiased) -> np.ndarray:
    """GMM covariance of ``lambda`` from the just-identified moments of the two passes."""
    T, N = R.shape
    K = F.shape[1]
    q = K + 1
    p = X.shape[1]
    Fc = np.column_stack([np.ones(T), F])
    E = R - Fc @ np.linalg.lstsq(Fc, R, rcond=None)[0]
    Wm = np.eye(N) if W is None else W
    U = R - X @ lam  # (T, N) monthly pricing errors
    g1 = (E[:, :, None] * Fc[:, None, :]).reshape(T, N * q)
    g2 = U @ Wm @ X
    g3 = U - alpha
    G = np.column_stack([g1, g2, g3])
    s1, s2 = N * q, N * q + p
    J = np.eye(s2 + N)
    J[:s1, :s1] = np.kron(np.eye(N), Fc.T @ Fc / T)
    WX, Wa = Wm @ X, Wm @ alpha
    lam_f = lam[p - K:]
    for i in range(N):
        blk = np.zeros((p, q))
        blk[:, 1:] = np.outer(WX[i], lam_f)
        blk[p - K:, 1:] -= Wa[i] * np.eye(K)
        J[s1:s2, i * q:(i + 1) * q] = blk
    J[s1:s2, s1:s2] = X.T @ Wm @ X
    J[s2:, :s1] = np.kron(np.eye(N), np.r_[0.0, lam_f][None, :])
    J[s2:, s1:s2] = X
    S = _long_run(G, lags)
    Ji = np.linalg.inv(J)
    V = Ji @ S @ Ji.T / (T - (q if debiased else 0))
    V = V[s1:s2, s1:s2]
    return 0.5 * (V + V.T)


def fama_macbeth(test_assets: pd.DataFrame, factors: pd.DataFrame, gls: bool = False,
                 hac_lags: int | None = None, intercept: bool = True,
                 debiased: bool = True) -> FamaMacBethResult:
    """Two-pass Fama-MacBeth risk premia with Shanken, Fama-MacBeth and GMM standard errors.

    Parameters
    ----------
    test_assets : pandas.DataFrame
        Test-asset excess returns, dates x assets (decimals per month).
    factors : pandas.DataFrame or Series
        Factors, dates x factors (traded or not). The months common to both are used.
    gls : bool
        Weight the cross-section by ``Sigma_eps^{-1}``, the inverse residual covariance of the
        first pass (needs more months than test assets plus factors).
    hac_lags : int or None
        Newey-West (Bartlett) lags of ``se_fm`` and ``se_gmm``; ``None``: no autocorrelation
        correction (``se_gmm`` heteroskedasticity-robust). ``se`` (Shanken) assumes i.i.d. errors.
    intercept : bool
        Estimate a common cross-sectional intercept ``lambda_0`` (the default). With excess
        returns theory says ``lambda_0 = 0``, but a free intercept keeps a common pricing error
        (a mismeasured short rate, a level shift of all test assets) out of the factor premia,
        is what Kan, Robotti and Shanken (2013) and Bryzgalova, Huang and Julliard (2023) use, and
        makes the R2 the usual centred one. ``False`` imposes ``lambda_0 = 0`` (linearmodels'
        default, ``risk_free=False``).
    debiased : bool
        Scale the GMM covariance by ``1 / (T - K - 1)`` instead of ``1 / T`` (linearmodels'
        ``debiased=True``).

    Returns
    -------
    FamaMacBethResult

    Notes
    -----
    First pass, per asset: ``r_it = a_i + beta_i' f_t + e_it`` by OLS; ``Sigma_eps = E'E / T``,
    ``Sigma_f`` the factor covariance (divisor ``T``). Second pass with ``X = [1_N, B]`` (or
    ``B``) and ``W = I`` (OLS) or ``Sigma_eps^{-1}`` (GLS):
    ``lambda = (X'WX)^{-1} X'W rbar``, equal to the mean of the monthly
    ``lambda_t = (X'WX)^{-1} X'W r_t``; pricing errors ``alpha = rbar - X lambda``.

    * Shanken: ``[(1 + c) H Sigma_eps H' + Sigma_f^*] / T`` with ``H = (X'WX)^{-1} X'W``,
      ``c = lambda_f' Sigma_f^{-1} lambda_f`` (:func:`~bayesbond.core.cross_section.shanken_cov`).
    * Fama-MacBeth: the long-run covariance of ``lambda_t - lambda`` over ``T`` (divisor ``T``).
    * GMM: the two passes solve the just-identified moments
      ``[e_t (x) (1, f_t'), X'W(r_t - X lambda), r_t - X lambda - alpha]``; the covariance is
      ``J^{-1} S J^{-1}' / (T - K - 1)`` (``J`` the Jacobian, ``S`` the outer product of the
      moments, or its Newey-West version), as in Cochrane, Asset Pricing (2005), ch. 12.2 and
      linearmodels 7.1 ``LinearFactorModel`` (``risk_free`` = ``intercept``, ``sigma`` =
      ``Sigma_eps`` for GLS, ``cov_type="kernel", bandwidth=hac_lags``); GLS treats
      ``Sigma_eps`` as known in this covariance.

    GLS with ``Sigma_eps^{-1}`` gives the same ``lambda`` as GLS with ``Sigma_r^{-1}``:
    ``Sigma_r = B Sigma_f B' + Sigma_eps`` and, by the Woodbury identity, ``Sigma_r^{-1} X`` spans
    the same columns as ``Sigma_eps^{-1} X``. With a useless factor (betas that are pure noise)
    every one of these errors is invalid: the t-statistic diverges with ``T`` (Kan and Zhang
    1999); :func:`bayesbond.pricing.bayesian_fama_macbeth` is robust to it.
    Fama, E. F. and MacBeth, J. D. (1973), JPE 81(3), 607-636; Shanken, J. (1992), RFS 5(1),
    1-33; Kan, R. and Zhang, C. (1999), "Two-pass tests of asset pricing models with useless
    factors", Journal of Finance 54(1), 203-235.

    Raises
    ------
    DataError
        See :func:`pricing_data`; too few test assets for the premia; for GLS, too few months
        for an invertible residual covariance; betas that are exactly collinear.
    """
    lags = _check_lags(hac_lags)
    K = pd.DataFrame(factors).shape[1] if isinstance(factors, pd.DataFrame | pd.Series) else 0
    d = pricing_data(test_assets, factors, min_assets=K + int(bool(intercept)))
    R, F, T = d.R, d.F, d.T
    N, K = R.shape[1], F.shape[1]
    if gls and T - K - 1 < N:
        raise DataError(f"GLS needs more months than test assets plus factors to invert the "
                        f"residual covariance: T = {T}, N = {N}, K = {K} (need T > N + K)")
    Fc = np.column_stack([np.ones(T), F])
    coef = np.linalg.lstsq(Fc, R, rcond=None)[0]
    B = coef[1:].T
    E = R - Fc @ coef
    Sigma_eps = E.T @ E / T
    Fd = F - F.mean(axis=0)
    Sigma_f = Fd.T @ Fd / T
    X = cs_design(B, intercept)
    dep = collinear_columns(X)
    labels = ([INTERCEPT] if intercept else []) + d.factors
    if dep.size:
        raise DataError(f"the betas on {listing([labels[j] for j in dep])} are exactly "
                        "collinear across the test assets: their premia are not identified")
    W = np.linalg.inv(Sigma_eps) if gls else None
    if W is not None:
        W = 0.5 * (W + W.T)
    rbar = R.mean(axis=0)
    lam, alpha = cs_lambda(rbar, X, W)
    Xt = X.T if W is None else X.T @ W
    lam_t = np.linalg.solve(Xt @ X, Xt @ R.T).T  # (T, p)
    V_fm = _long_run(lam_t - lam, lags) / T
    lam_f = lam[len(lam) - K:]
    V_sh = shanken_cov(X, W, Sigma_eps, Sigma_f, lam_f, T)
    V_gmm = _gmm_cov(R, F, X, W, lam, alpha, intercept, lags, debiased)
    idx = pd.Index(labels, name="factor")

    def ser(v, name):
        return pd.Series(v, index=idx, name=name)

    def cov(V):
        return pd.DataFrame(V, index=idx, columns=idx)

    return FamaMacBethResult(
        risk_premia=ser(lam, "lambda"),
        se=ser(np.sqrt(np.diag(V_sh)), "se"),
        se_fm=ser(np.sqrt(np.diag(V_fm)), "se_fm"),
        se_gmm=ser(np.sqrt(np.diag(V_gmm)), "se_gmm"),
        cov_shanken=cov(V_sh), cov_fm=cov(V_fm), cov_gmm=cov(V_gmm),
        beta=pd.DataFrame(B, index=pd.Index(d.assets, name="asset"),
                          columns=pd.Index(d.factors, name="factor")),
        alpha=pd.Series(alpha, index=pd.Index(d.assets, name="asset"), name="alpha"),
        rsquared=float(cs_rsquared(rbar, alpha, W, intercept)),
        lambda_t=pd.DataFrame(lam_t, index=d.dates, columns=idx),
        shanken_c=float(lam_f @ np.linalg.solve(Sigma_f, lam_f)),
        gls=bool(gls), intercept=bool(intercept), hac_lags=lags, nobs=T,
    )


# ---------------------------------------------------------------------------- SDF GMM
@dataclass(frozen=True, eq=False)
class SDFGMMResult:
    """GMM risk prices of the linear SDF ``m_t = 1 - b'(f_t - mu)``.

    Attributes
    ----------
    risk_prices : pandas.Series
        ``b`` per factor, preceded by ``intercept`` (the zero-beta excess return ``lambda_c``)
        when estimated.
    se : pandas.Series
        Standard errors accounting for the estimated factor means.
    cov : pandas.DataFrame
    risk_premia : pandas.Series
        Implied ``lambda = Sigma_f b`` (factors only).
    alpha : pandas.Series
        Pricing errors per asset.
    rsquared : float
        Cross-sectional R2 under the weighting used.
    jstat, jstat_pvalue : float
        Hansen's J (``weighting="efficient"`` only, else NaN) and its ``chi2(N - p)`` p-value.
    weighting : str
    hac_lags : int or None
    nobs : int
    """

    risk_prices: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    risk_premia: pd.Series
    alpha: pd.Series
    rsquared: float
    jstat: float
    jstat_pvalue: float
    weighting: str
    hac_lags: int | None
    nobs: int

    @property
    def tvalues(self) -> pd.Series:
        return self.risk_prices / self.se

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame({"b": self.risk_prices, "se": self.se, "t": self.tvalues})

    def __repr__(self) -> str:
        return (f"SDFGMMResult({self.weighting}, T = {self.nobs}, R2 = {self.rsquared:.3f}; "
                f"b = {self.risk_prices.round(4).to_dict()})")


def _sdf_step(R, F, W1, intercept, lags):
    """One GMM step at a fixed weight ``W1``: ``theta``, its covariance, the moments."""
    T, N = R.shape
    fbar = F.mean(axis=0)
    Fd = F - fbar
    rbar = R.mean(axis=0)
    D = R.T @ Fd / T  # (N, K): E_T[r (f - fbar)']
    C = cs_design(D, intercept)
    CtW = C.T @ W1
    A = np.linalg.solve(CtW @ C, CtW)  # (p, N)
    theta = A @ rbar
    K = F.shape[1]
    b = theta[len(theta) - K:]
    lam_c = theta[0] if intercept else 0.0
    e = R - lam_c - R * (Fd @ b)[:, None]  # (T, N) moments at mu = fbar
    h = e + Fd @ np.outer(b, rbar)  # + d ebar/d mu (f_t - fbar): the estimated means
    h = h - h.mean(axis=0)
    S = _long_run(h, lags)
    V = A @ S @ A.T / T
    return theta, 0.5 * (V + V.T), S, rbar - C @ theta, C


def sdf_gmm(test_assets: pd.DataFrame, factors: pd.DataFrame, weighting: str = "identity",
            hac_lags: int | None = None, intercept: bool = True) -> SDFGMMResult:
    """GMM estimates of the prices of risk ``b`` of a linear SDF, with standard errors.

    Parameters
    ----------
    test_assets : pandas.DataFrame
        Excess returns, dates x assets.
    factors : pandas.DataFrame or Series
        Factors, dates x factors.
    weighting : {"identity", "gls", "efficient"}
        First-stage GMM with ``W = I`` (the default: it prices the test assets themselves, the
        OLS cross-section of covariances), ``W = Sigma_r^{-1}`` (inverse return covariance), or
        two-step efficient GMM (``W = S^{-1}`` from the identity-weighted first stage).
    hac_lags : int or None
        Newey-West lags of ``S`` (``None``: heteroskedasticity-robust only).
    intercept : bool
        A common zero-beta excess return ``lambda_c`` (as Bryzgalova, Huang and Julliard 2023's
        ``SDF_gmm``); ``False`` imposes ``E[r m] = 0`` exactly.

    Returns
    -------
    SDFGMMResult

    Notes
    -----
    With ``m_t = 1 - b'(f_t - mu)`` the moments are
    ``g_t = [r_t - lambda_c 1_N - r_t (f_t - mu)' b ; f_t - mu]``; the factor means are exactly
    identified, ``mu = fbar``, so that ``E_T[g] = rbar - C theta`` with ``C = [1_N, D]``,
    ``D = E_T[r_t (f_t - fbar)']`` (the covariance of returns and factors, divisor ``T``) and
    ``theta = (lambda_c, b')'``. Minimising ``g' W g`` gives
    ``theta = (C'WC)^{-1} C'W rbar``. The estimation of ``mu`` adds ``rbar b'(fbar - mu)`` to the
    average moment, so ``theta`` has the influence function ``A h_t`` with
    ``A = (C'WC)^{-1} C'W`` and ``h_t = e_t + rbar b'(f_t - fbar)``, and
    ``Var(theta) = A S A' / T``, ``S`` the (Newey-West) covariance of the centred ``h_t``. This is
    the limit of the BHJ ``SDF_gmm`` sandwich ``(G'WG)^{-1} G'WSWG (G'WG)^{-1} / T`` whose factor
    moments get an infinite weight. Implied premia: ``lambda = Sigma_f b``. Hansen's
    ``J = T gbar' S^{-1} gbar`` with the efficient weight. Cochrane, Asset Pricing (2005),
    ch. 13; Kan, R. and Robotti, C. (2008), "Specification tests of asset pricing models using
    excess returns", Journal of Empirical Finance 15(5), 816-838.
    """
    lags = _check_lags(hac_lags)
    if weighting not in ("identity", "gls", "efficient"):
        raise DataError(f"weighting must be 'identity', 'gls' or 'efficient', got {weighting!r}")
    K = pd.DataFrame(factors).shape[1] if isinstance(factors, pd.DataFrame | pd.Series) else 0
    d = pricing_data(test_assets, factors, min_assets=K + int(bool(intercept)))
    R, F, T = d.R, d.F, d.T
    N = R.shape[1]
    if weighting != "identity" and T <= N + 1:
        raise DataError(f"weighting={weighting!r} needs more months than test assets "
                        f"(T = {T}, N = {N}) to invert an N x N covariance")
    W1 = np.eye(N)
    if weighting == "gls":
        Rd = R - R.mean(axis=0)
        W1 = np.linalg.inv(Rd.T @ Rd / T)
    theta, V, S, alpha, C = _sdf_step(R, F, W1, intercept, lags)
    jstat = jp = np.nan
    if weighting == "efficient":
        W1 = np.linalg.inv(S)
        theta, V, S, alpha, C = _sdf_step(R, F, 0.5 * (W1 + W1.T), intercept, lags)
        jstat = float(T * alpha @ np.linalg.solve(S, alpha))
        dof = N - C.shape[1]
        jp = float(stats.chi2.sf(jstat, dof)) if dof > 0 else np.nan
    labels = ([INTERCEPT] if intercept else []) + d.factors
    idx = pd.Index(labels, name="factor")
    Fd = F - F.mean(axis=0)
    b = theta[len(theta) - K:]
    return SDFGMMResult(
        risk_prices=pd.Series(theta, index=idx, name="b"),
        se=pd.Series(np.sqrt(np.diag(V)), index=idx, name="se"),
        cov=pd.DataFrame(V, index=idx, columns=idx),
        risk_premia=pd.Series(Fd.T @ Fd / T @ b, index=pd.Index(d.factors, name="factor"),
                              name="lambda"),
        alpha=pd.Series(alpha, index=pd.Index(d.assets, name="asset"), name="alpha"),
        rsquared=float(cs_rsquared(R.mean(axis=0), alpha,
                                   None if weighting == "identity" else W1, intercept)),
        jstat=jstat, jstat_pvalue=jp, weighting=weighting, hac_lags=lags, nobs=T,
    )

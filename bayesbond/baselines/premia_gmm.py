r"""Efficient GMM estimates of risk premia in the beta representation (one-step, two-step,
iterated), the frequentist twin of the Bayesian Fama-MacBeth for traded or non-traded factors.

The moment conditions, weighting and covariance are those of linearmodels'
``LinearFactorModelGMM`` (excess returns, ``risk_free=False``), so the two agree to the precision
of their optimisers; here each step's minimum is found by Levenberg-Marquardt on the whitened
moments with their exact Jacobian, to about machine precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize, stats

from bayesbond.baselines.fama_macbeth import fama_macbeth, pricing_data
from bayesbond.errors import DataError, SpecError

__all__ = ["PremiaGMMResult", "premia_gmm"]


@dataclass(frozen=True, eq=False)
class PremiaGMMResult:
    """Efficient GMM estimates of a linear factor model.

    Attributes
    ----------
    risk_premia, se : pandas.Series
        ``lambda`` (decimals per period) and its standard errors.
    cov : pandas.DataFrame
        Covariance of ``lambda``.
    beta : pandas.DataFrame
        Assets x factors.
    mu : pandas.Series
        Factor means.
    jstat, jstat_pvalue : float
        Hansen's J (chi-square with ``N - K`` degrees of freedom) and its p-value.
    steps : int
        Weighting steps used.
    nobs : int
    """

    risk_premia: pd.Series
    se: pd.Series
    cov: pd.DataFrame
    beta: pd.DataFrame
    mu: pd.Series
    jstat: float
    jstat_pvalue: float
    steps: int
    nobs: int

    @property
    def tstats(self) -> pd.Series:
        return self.risk_premia / self.se


def _moments(theta, R, F):
    """``(T, N (K + 1) + K)`` moments ``[eps_t (x) (1, f_t), f_t - mu]`` and their mean's
    Jacobian ``(m, NK + 2K)``."""
    T, N = R.shape
    K = F.shape[1]
    B = theta[:N * K].reshape(N, K)
    lam, mu = theta[N * K:N * K + K], theta[N * K + K:]
    fe = F - mu
    eps = R - (lam + fe) @ B.T
    fa = np.column_stack([np.ones(T), F])
    g = np.column_stack([(eps[:, :, None] * fa[:, None, :]).reshape(T, -1), fe])
    J = np.zeros((N * (K + 1) + K, theta.size))
    A = fa.T @ (fe + lam) / T          # (K + 1, K)
    fbar = fa.mean(axis=0)
    for i in range(N):
        rows = slice(i * (K + 1), (i + 1) * (K + 1))
        J[rows, i * K:(i + 1) * K] = -A
        J[rows, N * K:N * K + K] = -np.outer(fbar, B[i])
        J[rows, N * K + K:] = np.outer(fbar, B[i])
    J[N * (K + 1):, N * K + K:] = -np.eye(K)
    return g, J


def _weight(g, center: bool):
    """Inverse of the (centred) moment covariance, symmetrised."""
    gc = g - g.mean(axis=0) if center else g
    S = gc.T @ gc / len(g)
    return 0.5 * (S + S.T)


def _minimise(theta, R, F, W):
    """``argmin T gbar' W gbar`` by Levenberg-Marquardt on ``sqrt(T) L' gbar``, ``W = L L'``."""
    T = len(R)
    L = linalg.cholesky(W, lower=True)
    scale = np.sqrt(T)

    def fun(th):
        return scale * (L.T @ _moments(th, R, F)[0].mean(axis=0))

    def jac(th):
        return scale * (L.T @ _moments(th, R, F)[1])

    res = optimize.least_squares(fun, theta, jac=jac, method="lm", xtol=1e-15, ftol=1e-15,
                                 gtol=1e-15, max_nfev=2000)
    return res.x, float(2.0 * res.cost)


def premia_gmm(test_assets: pd.DataFrame, factors: pd.DataFrame, steps: int = 2,
               center: bool = True, debiased: bool = True) -> PremiaGMMResult:
    r"""Risk premia by efficient GMM on the beta representation of excess returns.

    Parameters
    ----------
    test_assets : pandas.DataFrame
        Excess returns, dates x assets.
    factors : pandas.DataFrame
        Factors, dates x factors (traded or not); the months common to both are used.
    steps : int
        Weighting steps: 1 (weights from the two-pass start), 2 (efficient two-step, the
        default) or more (iterated until the objective changes by less than 1e-6).
    center : bool
        Centre the moments in the weighting and covariance matrices.
    debiased : bool
        Scale the covariance by ``1 / (T - K)`` instead of ``1 / T``.

    Returns
    -------
    PremiaGMMResult

    Raises
    ------
    DataError
        Fewer months than moment conditions (the weighting matrix is singular), fewer test
        assets than factors, or the input errors of :func:`bayesbond.pricing.fama_macbeth`.
    SpecError
        ``steps < 1``.

    Notes
    -----
    With ``theta = (vec beta, lambda, mu)`` and ``f^a_t = (1, f_t')'``,

    .. math:: g_t(\theta) = \begin{pmatrix} \epsilon_t \otimes f^a_t \\ f_t - \mu
              \end{pmatrix}, \qquad
              \epsilon_t = r_t - \beta\lambda - \beta(f_t - \mu),

    ``N (K + 1) + K`` moments for ``N K + 2 K`` parameters. Step ``s`` minimises
    ``T gbar' W_s gbar`` with ``W_1 = S(theta_0)^{-1}`` at the two-pass estimates
    (:func:`~bayesbond.pricing.fama_macbeth` without intercept) and ``W_{s+1} =
    S(theta_s)^{-1}``, ``S`` the (centred) covariance of ``g_t``. The covariance is
    ``(G' S^{-1} G)^{-1} / (T - K)`` at the estimates (``G = d gbar / d theta``) and
    ``J = T gbar' W gbar ~ chi2(N - K)`` (Cochrane 2005, ch. 11; linearmodels'
    ``LinearFactorModelGMM``).
    """
    if int(steps) < 1:
        raise SpecError(f"steps = {steps!r}: at least 1")
    d = pricing_data(test_assets, factors)
    R, F = d.R, d.F
    T, N = R.shape
    K = F.shape[1]
    if N < K:
        raise DataError(f"{N} test assets for {K} factors: the premia are not identified")
    m = N * (K + 1) + K
    if T <= m:
        raise DataError(f"{T} months for {m} moment conditions ({N} assets, {K} factors): the "
                        "weighting matrix is singular; use more months or fewer assets")
    frame = (pd.DataFrame(R, index=d.dates, columns=d.assets),
             pd.DataFrame(F, index=d.dates, columns=d.factors))
    start = fama_macbeth(*frame, intercept=False)
    theta = np.concatenate([start.beta.loc[d.assets, d.factors].to_numpy().ravel(),
                            start.risk_premia[d.factors].to_numpy(), F.mean(axis=0)])
    W = np.linalg.inv(_weight(_moments(theta, R, F)[0], center))
    theta, obj = _minimise(theta, R, F, W)
    used = 1
    while used < steps:
        used += 1
        W = np.linalg.inv(_weight(_moments(theta, R, F)[0], center))
        theta, new = _minimise(theta, R, F, W)
        done = abs(new - obj) < 1e-6
        obj = new
        if done:
            break
    g, G = _moments(theta, R, F)
    S = _weight(g, center)
    V = np.linalg.inv(G.T @ np.linalg.solve(S, G)) / (T - int(debiased) * K)
    V = 0.5 * (V + V.T)
    sel = slice(N * K, N * K + K)
    lam = pd.Series(theta[sel], index=d.factors, name="lambda")
    cov = pd.DataFrame(V[sel, sel], index=d.factors, columns=d.factors)
    jstat = float(T * g.mean(axis=0) @ W @ g.mean(axis=0))
    return PremiaGMMResult(
        risk_premia=lam, se=pd.Series(np.sqrt(np.diag(V[sel, sel])), index=d.factors,
                                      name="se"),
        cov=cov, beta=pd.DataFrame(theta[:N * K].reshape(N, K), index=d.assets,
                                   columns=d.factors),
        mu=pd.Series(theta[N * K + K:], index=d.factors, name="mu"), jstat=jstat,
        jstat_pvalue=float(stats.chi2.sf(jstat, N - K)), steps=used, nobs=T)

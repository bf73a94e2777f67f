"""Cross-sectional regressions of mean returns on betas, batched over leading axes (draws).

Pure numpy. Shared by the two-pass Fama-MacBeth estimator
(:mod:`bayesbond.baselines.fama_macbeth`) and its Bayesian twin (:mod:`bayesbond.pricing.bayes_fm`),
which applies the same formulas to every posterior draw of the mean and covariance.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cs_design", "cs_lambda", "cs_rsquared", "shanken_cov", "time_series_betas"]


def time_series_betas(Sigma: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Betas and residual covariance from the joint covariance of ``(f, r)`` (batched).

    Parameters
    ----------
    Sigma : ndarray (..., K + N, K + N)
        Covariance of the stacked vector ``(f_t', r_t')'``, factors first.
    K : int
        Number of factors.

    Returns
    -------
    beta : ndarray (..., N, K)
        ``beta = Sigma_rf Sigma_f^{-1}``.
    Sigma_eps : ndarray (..., N, N)
        ``Sigma_r - Sigma_rf Sigma_f^{-1} Sigma_fr`` (symmetrised).
    """
    Sf = Sigma[..., :K, :K]
    Srf = Sigma[..., K:, :K]
    beta = np.swapaxes(np.linalg.solve(Sf, np.swapaxes(Srf, -1, -2)), -1, -2)
    Se = Sigma[..., K:, K:] - beta @ np.swapaxes(Srf, -1, -2)
    return beta, 0.5 * (Se + np.swapaxes(Se, -1, -2))


def cs_design(beta: np.ndarray, intercept: bool) -> np.ndarray:
    """``X = [1_N, beta]`` (with the intercept) or ``beta``, batched."""
    if not intercept:
        return beta
    ones = np.ones((*beta.shape[:-1], 1))
    return np.concatenate([ones, beta], axis=-1)


def cs_lambda(mu: np.ndarray, X: np.ndarray, W: np.ndarray | None = None):
    """Cross-sectional (G)LS of mean returns on the design: ``lambda`` and pricing errors.

    Parameters
    ----------
    mu : ndarray (..., N)
        Mean excess returns.
    X : ndarray (..., N, p)
        Design (:func:`cs_design`).
    W : ndarray (..., N, N), optional
        Weighting matrix (``Sigma_eps^{-1}`` for GLS); identity when ``None`` (OLS).

    Returns
    -------
    lam : ndarray (..., p)
        ``lambda = (X'WX)^{-1} X'W mu``.
    alpha : ndarray (..., N)
        Pricing errors ``mu - X lambda``.
    """
    Xt = np.swapaxes(X, -1, -2)
    XtW = Xt if W is None else Xt @ W
    lam = np.linalg.solve(XtW @ X, (XtW @ mu[..., None]))[..., 0]
    alpha = mu - (X @ lam[..., None])[..., 0]
    return lam, alpha


def _quad(a: np.ndarray, W: np.ndarray | None) -> np.ndarray:
    if W is None:
        return np.einsum("...i,...i->...", a, a)
    return np.einsum("...i,...ij,...j->...", a, W, a)


def cs_rsquared(mu: np.ndarray, alpha: np.ndarray, W: np.ndarray | None = None,
                intercept: bool = True) -> np.ndarray:
    """Cross-sectional R2 of Kan, Robotti and Shanken (2013), batched.

    Notes
    -----
    ``R2 = 1 - alpha' W alpha / (e0' W e0)`` with ``alpha`` the pricing errors of the model and
    ``e0`` those of the benchmark: with an intercept, the (G)LS regression on the constant alone,
    ``e0 = mu - 1_N (1'W mu) / (1'W 1)`` (the plain demeaned ``mu`` for OLS); without one,
    ``e0 = mu`` (no premium at all). Because the model nests the benchmark, ``0 <= R2 <= 1``, for
    OLS and GLS alike. Kan, R., Robotti, C. and Shanken, J. (2013), "Pricing model performance
    and the two-pass cross-sectional regression methodology", Journal of Finance 68(6),
    2617-2649.
    """
    if intercept:
        if W is None:
            e0 = mu - mu.mean(axis=-1, keepdims=True)
        else:
            w1 = W.sum(axis=-1)  # W 1
            m = np.einsum("...i,...i->...", w1, mu) / w1.sum(axis=-1)
            e0 = mu - m[..., None]
    else:
        e0 = mu
    return 1.0 - _quad(alpha, W) / _quad(e0, W)


def shanken_cov(X: np.ndarray, W: np.ndarray | None, Sigma_eps: np.ndarray,
                Sigma_f: np.ndarray, lam_f: np.ndarray, T: int) -> np.ndarray:
    """Shanken (1992) errors-in-variables corrected covariance of the two-pass ``lambda``.

    Parameters
    ----------
    X : ndarray (N, p)
        Design ``[1, beta]`` or ``beta``; the factor columns are the last ``K``.
    W : ndarray (N, N) or None
        Weighting matrix of the cross-section (identity when ``None``).
    Sigma_eps : ndarray (N, N)
        Residual covariance of the time-series regressions.
    Sigma_f : ndarray (K, K)
        Factor covariance.
    lam_f : ndarray (K,)
        Factor premia (without the intercept).
    T : int
        Months.

    Returns
    -------
    ndarray (p, p)

    Notes
    -----
    With ``H = (X'WX)^{-1} X'W``,
    ``Var(lambda) = [ (1 + c) H Sigma_eps H' + Sigma_f^* ] / T``, ``c = lam_f' Sigma_f^{-1} lam_f``,
    where ``Sigma_f^*`` is ``Sigma_f`` bordered by zeros in the intercept's row and column. For
    GLS (``W = Sigma_eps^{-1}``) ``H Sigma_eps H' = (X' Sigma_eps^{-1} X)^{-1}``. The first term
    is the classical Fama-MacBeth variance scaled for the estimation error of the betas, the
    second the sampling error of the factor means. Shanken, J. (1992), "On the estimation of
    beta-pricing models", Review of Financial Studies 5(1), 1-33, Theorem 1(ii).
    """
    Xt = X.T
    XtW = Xt if W is None else Xt @ W
    H = np.linalg.solve(XtW @ X, XtW)
    K = Sigma_f.shape[0]
    c = float(lam_f @ np.linalg.solve(Sigma_f, lam_f))
    V = (1.0 + c) * (H @ Sigma_eps @ H.T)
    V[-K:, -K:] += Sigma_f
    return 0.5 * (V + V.T) / T

"""Batched least squares: many return series on one design, each on its own observed rows.

Pure numpy/scipy. Every series ``j`` is regressed on the rows of the common design ``X`` where
``y_j`` is observed. All series are fitted together:

1. one Householder QR of the column-scaled full design, ``X D^{-1} = Z R`` (``Z'Z = I``);
2. per series, the Gram matrix of its observed rows in these orthonormal coordinates,
   ``G_j = Z_j'Z_j``, for all series in one matrix product; ``G_j`` is close to the identity
   unless a series misses much of the sample, so solving ``G_j gamma_j = Z_j'y_j`` keeps the
   accuracy of QR (the squaring of the condition number of the normal equations applies to
   ``cond(G_j)``, not to ``cond(X)``); one step of iterative refinement follows;
3. series whose ``G_j`` is not well conditioned (they observe a short or unusual stretch) are
   refitted by their own Householder QR, batched over the distinct patterns of observed rows.

The Newey-West (Bartlett) long-run covariance of the scores is assembled lag by lag as matrix
products shared by all series, also when gaps make the lags of each series different.
No explicit inverse of ``X'X`` is ever used to solve for coefficients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular

from bayesbond.errors import DataError

__all__ = ["BatchedOLS", "bartlett_weights", "batched_ols", "newey_west_meat"]


@dataclass(frozen=True)
class BatchedOLS:
    """Raw arrays of a batched least-squares fit of ``N`` series on a ``T x p`` design.

    Attributes
    ----------
    params : ndarray (N, p)
    cov_classical : ndarray (N, p, p)
        ``s^2 (X_j'X_j)^{-1}`` with ``s^2 = RSS_j / (n_j - p)``.
    cov_hac : ndarray (N, p, p) or None
        Newey-West covariance (when lags were given).
    resid : ndarray (T, N)
        Residuals, ``NaN`` where the series is not observed.
    nobs : ndarray (N,)
    rss, tss : ndarray (N,)
        Residual and (centred) total sums of squares.
    """

    params: np.ndarray
    cov_classical: np.ndarray
    cov_hac: np.ndarray | None
    resid: np.ndarray
    nobs: np.ndarray
    rss: np.ndarray
    tss: np.ndarray


def bartlett_weights(lags: int) -> np.ndarray:
    """Bartlett kernel weights ``w_l = 1 - l / (L + 1)``, ``l = 0..L`` (Newey and West, 1987)."""
    return 1.0 - np.arange(lags + 1) / (lags + 1.0)


def newey_west_meat(H: np.ndarray, lags: int) -> np.ndarray:
    """Newey-West long-run covariance of scores, batched.

    Parameters
    ----------
    H : ndarray (N, T, p)
        Scores ``h_t = x_t u_t`` of ``N`` regressions, rows in time order (zero rows contribute
        nothing).
    lags : int
        Truncation lag ``L``.

    Returns
    -------
    ndarray (N, p, p)
        ``S = Gamma_0 + sum_{l=1}^{L} w_l (Gamma_l + Gamma_l')``, ``Gamma_l = sum_t h_t h_{t-l}'``,
        Bartlett weights ``w_l = 1 - l/(L+1)``.

    Notes
    -----
    Newey, W. K. and West, K. D. (1987), "A simple, positive semi-definite, heteroskedasticity and
    autocorrelation consistent covariance matrix", Econometrica 55(3), 703-708.
    """
    Ht = np.swapaxes(H, 1, 2)
    S = Ht @ H
    w = bartlett_weights(lags)
    for lag in range(1, min(lags, H.shape[1] - 1) + 1):
        G = Ht[:, :, lag:] @ H[:, :-lag, :]
        S += w[lag] * (G + np.swapaxes(G, 1, 2))
    return S


def _patterns(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct columns of a boolean (T, N) mask and the pattern index of each column."""
    packed = np.packbits(mask, axis=0)
    _, first, inverse = np.unique(packed, axis=1, return_index=True, return_inverse=True)
    return mask[:, first], inverse.reshape(-1)


def _pair_products(A: np.ndarray, B: np.ndarray, iu: tuple) -> np.ndarray:
    """Rows ``a_t b_t' + b_t a_t'`` (upper triangle, flattened) of two (n, p) arrays."""
    outer = A[:, :, None] * B[:, None, :]
    return (outer + np.swapaxes(outer, 1, 2))[:, iu[0], iu[1]]


def _unpack_sym(S_up: np.ndarray, p: int, iu: tuple) -> np.ndarray:
    """(m, N) upper-triangle entries -> (N, p, p) symmetric matrices."""
    out = np.empty((S_up.shape[1], p, p))
    out[:, iu[0], iu[1]] = S_up.T
    out[:, iu[1], iu[0]] = S_up.T
    return out


def _hac_meat_shared(
    Z: np.ndarray, U: np.ndarray, mask: np.ndarray, lags: int, hac_gaps: str
) -> np.ndarray:
    """Newey-West meat of the scores ``z_t u_tj`` of all series ``j`` (design rows ``Z`` shared).

    ``S_j = sum_t u_tj^2 z_t z_t' + sum_{g >= 1} sum_t w(l_j(t, g)) u_tj u_{t-g,j}
    (z_t z_{t-g}' + z_{t-g} z_t')``, where ``u`` is zero in unobserved months and ``l_j(t, g)`` is
    the lag between months ``t-g`` and ``t``: ``g`` itself for ``"zero"``, the number of observed
    months of series ``j`` in ``(t-g, t]`` for ``"compress"``; ``w(l) = max(0, 1 - l/(L+1))``.
    Each calendar gap ``g`` is one matrix product over all series, on the ``p(p+1)/2`` distinct
    entries.
    """
    T, p = Z.shape
    iu = np.triu_indices(p)
    P0 = (Z[:, :, None] * Z[:, None, :])[:, iu[0], iu[1]]
    S = P0.T @ (U * U)  # (m, N)
    if lags == 0:
        return _unpack_sym(S, p, iu)
    if hac_gaps == "compress" and mask.all():
        hac_gaps = "zero"  # no gaps: both conventions agree
    scale = 1.0 / (lags + 1.0)
    buf = np.empty_like(U)
    if hac_gaps == "compress":
        count = np.cumsum(mask, axis=0, dtype=float)
        wbuf = np.empty_like(U)
        cols = np.arange(U.shape[1])  # series that can still have pairs within L observed months
        full = True
    for g in range(1, T):
        W = buf[: T - g]
        if hac_gaps == "zero":
            if g > lags:
                break
            np.multiply(U[g:], U[:-g], out=W)
            W *= 1.0 - g * scale
        else:
            wgt = wbuf[: T - g]
            if full:
                np.subtract(count[g:], count[:-g], out=wgt)  # compressed lag
            else:
                wgt = count[g:, cols] - count[:-g, cols]
            alive = (wgt <= lags).any(axis=0)  # shrinks with g: the compressed lag grows
            if not alive.all():
                cols, wgt, full = cols[alive], wgt[:, alive], False
                if cols.size == 0:
                    break
            wgt *= -scale
            wgt += 1.0
            np.maximum(wgt, 0.0, out=wgt)  # Bartlett weight of the compressed lag
            if full:
                np.multiply(U[g:], U[:-g], out=W)
            else:
                W = U[g:, cols] * U[:-g, cols]
            W *= wgt
        Pg = _pair_products(Z[g:], Z[:-g], iu)
        if hac_gaps == "zero" or full:
            S += Pg.T @ W
        else:
            S[:, cols] += Pg.T @ W
    return _unpack_sym(S, p, iu)


def _qr_fit(
    Xs: np.ndarray, Y: np.ndarray, mask: np.ndarray, lags: int | None, hac_gaps: str, label
):
    """Per-pattern Householder QR fit of the columns of ``Y`` (the exact fallback route).

    Returns coefficients (n, p), ``(X_j'X_j)^{-1}`` (n, p, p), residuals zeroed where unobserved
    (T, n) and the HAC meat in the coordinates of ``Xs`` (or None).
    """
    T, p = Xs.shape
    y0 = np.where(mask, Y, 0.0)
    pat, inv = _patterns(mask)
    Q, R = np.linalg.qr(Xs[None, :, :] * pat.T[:, :, None])  # rows a pattern misses are zero
    diag = np.abs(np.diagonal(R, axis1=1, axis2=2))
    bad = diag.min(axis=1) <= max(T, p) * np.finfo(float).eps * diag.max(axis=1)
    if bad.any():
        js = np.flatnonzero(np.isin(inv, np.flatnonzero(bad)))
        shown = ", ".join(str(label(j)) for j in js[:10])
        raise DataError(
            "the factors are collinear (rank deficient) on the observed months of "
            f"{shown}{' ...' if js.size > 10 else ''}"
        )
    Rinv = solve_triangular(R, np.broadcast_to(np.eye(p), R.shape))
    Vg = Rinv @ np.swapaxes(Rinv, 1, 2)
    Qb, Rb = Q[inv], R[inv]
    b = solve_triangular(Rb, np.einsum("ntp,tn->np", Qb, y0)[:, :, None])[:, :, 0]
    u = (y0 - Xs @ b.T) * mask
    b += solve_triangular(Rb, np.einsum("ntp,tn->np", Qb, u)[:, :, None])[:, :, 0]
    u = (y0 - Xs @ b.T) * mask
    meat = None
    if lags is not None:
        H = Xs[None, :, :] * u.T[:, :, None]
        if hac_gaps == "compress":
            n = mask.shape[1]
            order = np.argsort(~mask, axis=0, kind="stable")  # observed rows first, in order
            flat = (order.T + (np.arange(n) * T)[:, None]).ravel()
            H = H.reshape(n * T, p)[flat].reshape(n, T, p)
        meat = newey_west_meat(H, lags)
    return b, Vg[inv], u, meat


def batched_ols(
    X: np.ndarray,
    Y: np.ndarray,
    hac_lags: int | None = None,
    use_correction: bool = True,
    hac_gaps: str = "compress",
    names: Sequence | None = None,
    max_cond: float = 1e4,
) -> BatchedOLS:
    """Least squares of every column of ``Y`` on ``X``, each on its own observed rows.

    Parameters
    ----------
    X : ndarray (T, p)
        Design common to all series (finite, full column rank); include the constant yourself.
    Y : ndarray (T, N)
        Responses, ``NaN`` where not observed.
    hac_lags : int or None
        Newey-West truncation lag ``L``; ``None`` skips the HAC covariance.
    use_correction : bool
        Multiply the HAC covariance by ``n / (n - p)`` (statsmodels' ``use_correction``).
    hac_gaps : {"compress", "zero"}
        How the HAC lags treat months a series is missing. ``"compress"`` (equal spacing): the
        observed months are taken as consecutive, as a per-series regression on the dropped-NaN
        data does (statsmodels). ``"zero"`` (amplitude modulated): missing months keep their place
        with a zero score, so lag ``l`` spans ``l`` calendar months (Datta and Du, 2012).
    names : sequence, optional
        Series labels used in error messages.
    max_cond : float
        Series whose Gram matrix ``G_j`` (see Notes) has a larger condition number are refitted
        by their own QR.

    Returns
    -------
    BatchedOLS

    Raises
    ------
    DataError
        A series with fewer than ``p + 1`` observations or whose observed rows make ``X`` rank
        deficient (named), a rank-deficient or non-finite design.

    Notes
    -----
    With ``D`` the column norms of ``X`` and ``X D^{-1} = Z R`` (thin Householder QR), series ``j``
    observing rows ``O_j`` has ``X_j D^{-1} = Z_j R``, so its coefficients are
    ``b_j = D^{-1} R^{-1} gamma_j`` with ``G_j gamma_j = Z_j'y_j``, ``G_j = Z_j'Z_j``; and
    ``(X_j'X_j)^{-1} = D^{-1} R^{-1} G_j^{-1} R^{-T} D^{-1}``. The classical covariance is
    ``s_j^2 (X_j'X_j)^{-1}``, ``s_j^2 = RSS_j / (n_j - p)``; the Newey-West covariance is
    ``(X_j'X_j)^{-1} S_j (X_j'X_j)^{-1}`` with ``S_j = sum_{|l| <= L} (1 - |l|/(L+1)) Gamma_l``
    of the scores ``x_t u_t``, times ``n_j / (n_j - p)`` with the correction.

    References: Golub, G. H. and Van Loan, C. F., Matrix Computations, 4th ed., sections 5.3
    (least squares by QR) and 3.5 (iterative refinement); Newey, W. K. and West, K. D. (1987),
    Econometrica 55(3), 703-708; Datta, D. D. and Du, W. (2012), "Nonparametric HAC estimation
    for time series data with missing observations", Fed. IFDP 1060.
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise DataError(f"design {X.shape} and responses {Y.shape} do not line up")
    if not np.isfinite(X).all():
        raise DataError("the design holds missing or non-finite values")
    if hac_gaps not in ("compress", "zero"):
        raise DataError(f"hac_gaps must be 'compress' or 'zero', got {hac_gaps!r}")
    if hac_lags is not None:
        if int(hac_lags) != hac_lags or hac_lags < 0:
            raise DataError(f"hac_lags must be a non-negative integer, got {hac_lags!r}")
        hac_lags = int(hac_lags)
    T, p = X.shape
    N = Y.shape[1]

    def label(j):
        return names[j] if names is not None else j

    mask = np.isfinite(Y)
    nobs = mask.sum(axis=0)
    few = np.flatnonzero(nobs <= p)
    if few.size:
        shown = ", ".join(f"{label(j)} ({nobs[j]})" for j in few[:10])
        more = f" ... ({few.size} in all)" if few.size > 10 else ""
        raise DataError(
            f"too few observed months for {p} coefficients (need at least {p + 1}): {shown}{more}"
        )

    d = np.linalg.norm(X, axis=0)
    d[d == 0] = 1.0
    Xs = X / d
    Z, R = np.linalg.qr(Xs)
    rdiag = np.abs(np.diag(R))
    if rdiag.min() <= max(T, p) * np.finfo(float).eps * rdiag.max():
        raise DataError("the design is rank deficient: some factors are collinear")
    y0 = np.where(mask, Y, 0.0)
    M = mask.astype(float)

    # Gram matrices of every series in the orthonormal coordinates, in one product
    iu = np.triu_indices(p)
    P0 = (Z[:, :, None] * Z[:, None, :])[:, iu[0], iu[1]]
    G = _unpack_sym(P0.T @ M, p, iu)
    eye = np.broadcast_to(np.eye(p), G.shape)
    try:
        Ginv = np.linalg.solve(G, eye)
        cond1 = np.abs(G).sum(axis=1).max(axis=1) * np.abs(Ginv).sum(axis=1).max(axis=1)
        good = np.isfinite(cond1) & (cond1 < max_cond)
    except np.linalg.LinAlgError:  # some G_j exactly singular: those go to the QR route
        ev = np.linalg.eigvalsh(G)
        good = ev[:, 0] > ev[:, -1] / max_cond
        Ginv = np.zeros_like(G)
        Ginv[good] = np.linalg.solve(G[good], eye[good])
    gi = np.flatnonzero(good)
    all_good = gi.size == N

    b_s = np.empty((N, p))  # coefficients of the scaled design X D^{-1}
    V_s = np.empty((N, p, p))  # (X_j'X_j)^{-1} in scaled coordinates
    U = np.zeros((T, N))  # residuals, zero where unobserved
    meat = np.empty((N, p, p)) if hac_lags is not None else None

    if gi.size:
        if all_good:
            Gg, Gig, Mg, yg = G, Ginv, M, y0
        else:
            Gg, Gig, Mg, yg = G[gi], Ginv[gi], M[:, gi], y0[:, gi]
        gam = np.linalg.solve(Gg, (Z.T @ yg).T[:, :, None])[:, :, 0]
        ug = (yg - Z @ gam.T) * Mg
        gam += np.linalg.solve(Gg, (Z.T @ ug).T[:, :, None])[:, :, 0]  # refinement
        ug = (yg - Z @ gam.T) * Mg
        Rinv = solve_triangular(R, np.eye(p))
        b_s[gi] = solve_triangular(R, gam.T).T
        V_s[gi] = Rinv @ Gig @ Rinv.T
        U[:, gi] = ug
        if hac_lags is not None:
            mg = mask if all_good else mask[:, gi]
            Sz = _hac_meat_shared(Z, ug, mg, hac_lags, hac_gaps)
            # scores in scaled coordinates: x_t = R' z_t, so S_x = R' S_z R
            meat[gi] = R.T @ Sz @ R
    bi = np.flatnonzero(~good)
    if bi.size:
        b, V, u, mt = _qr_fit(Xs, Y[:, bi], mask[:, bi], hac_lags, hac_gaps, lambda k: label(bi[k]))
        b_s[bi], V_s[bi], U[:, bi] = b, V, u
        if hac_lags is not None:
            meat[bi] = mt

    rss = (U * U).sum(axis=0)
    df = nobs - p
    dd = np.outer(d, d)
    cov = (rss / df)[:, None, None] * V_s / dd
    cov_hac = None
    if hac_lags is not None:
        cov_hac = V_s @ meat @ V_s
        if use_correction:
            cov_hac *= (nobs / df)[:, None, None]
        cov_hac /= dd
    Ynan = np.where(mask, Y, np.nan)
    tss = np.nansum((Ynan - np.nanmean(Ynan, axis=0)) ** 2, axis=0)
    return BatchedOLS(
        params=b_s / d,
        cov_classical=cov,
        cov_hac=cov_hac,
        resid=np.where(mask, U, np.nan),
        nobs=nobs,
        rss=rss,
        tss=tss,
    )

"""Batched least squares: many return series on one design, each on its own observed rows.

Pure numpy/scipy. Every series ``j`` is regressed on the rows of the common design ``X`` where
``y_j`` is observed. All series are fitted together:

1. one Householder QR of the column-scaled full design, ``X D^{-1} = Z R`` (``Z'Z = I``);
2. per series, the Gram matrix of its observed rows in these orthonormal coordinates,
   ``G_j = Z_j'Z_j``, for all series in one matrix product; ``G_j`` is close to the identity
   unless a series misses much of the sample, so solving ``G_j gamma_j = Z_j'y_j`` keeps the
   accuracy of QR (the squaring of the condition number of the normal equations applies to
   ``cond(G_j)``, not to ``cond(X)``); one step of iterative refinement follows when some
   ``G_j`` has a 1-norm condition number above 100;
3. series whose ``G_j`` is not well conditioned (they observe a short or unusual stretch) are
   refitted by their own Householder QR, batched over the distinct patterns of observed rows.

The Newey-West (Bartlett) long-run covariance of the scores is assembled lag by lag as matrix
products shared by all series when lags are calendar months; for series with gaps whose lags are
counted in observed months (what a per-series regression on dropped-NaN data does), from Bartlett
windows over the packed scores (:func:`_meat_compressed`). Series observed every month skip the
Gram step (``G_j = I``). No explicit inverse of ``X'X`` is ever used to solve for coefficients.
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


def _meat_calendar(Z: np.ndarray, U: np.ndarray, lags: int) -> np.ndarray:
    """Newey-West meat of the scores ``z_t u_tj`` of all series ``j``, lags in calendar months.

    ``S_j = sum_{|g| <= L} (1 - |g|/(L+1)) sum_t u_tj u_{t-g,j} z_t z_{t-g}'`` (``u`` zero in
    months a series misses). The design rows ``z_t`` are shared, so each lag ``g`` is one matrix
    product of the ``p(p+1)/2`` distinct entries of ``z_t z_{t-g}' + z_{t-g} z_t'`` with
    ``W_g = (u_t u_{t-g})`` over all series.
    """
    T, p = Z.shape
    iu = np.triu_indices(p)
    P0 = (Z[:, :, None] * Z[:, None, :])[:, iu[0], iu[1]]
    S = P0.T @ (U * U)  # (p(p+1)/2, N)
    scale = 1.0 / (lags + 1.0)
    W = np.empty_like(U)
    for g in range(1, min(lags, T - 1) + 1):
        Wg = W[: T - g]
        np.multiply(U[g:], U[:-g], out=Wg)
        Wg *= 1.0 - g * scale
        S += _pair_products(Z[g:], Z[:-g], iu).T @ Wg
    return _unpack_sym(S, p, iu)


def _meat_compressed(
    Z: np.ndarray, U: np.ndarray, mask: np.ndarray, lags: int, chunk: int = 64
) -> np.ndarray:
    """Newey-West meat with lags counted in observed months (equal spacing), for gappy series.

    The Bartlett kernel is the autocorrelation of a box of width ``L + 1``:
    ``sum_{k,k'} (1 - |k-k'|/(L+1))_+ h_k h_k'' = (1/(L+1)) sum_{m=-L}^{n-1} c_m c_m'`` with
    ``c_m = P_{m+L+1} - P_m`` the sum of ``L + 1`` consecutive scores and ``P_k = sum_{i<k} h_i``
    (``P_k = 0`` for ``k <= 0``, ``P_k = P_n`` for ``k >= n``). Expanding,
    ``(L+1) S = 2 sum_{k=0}^{n} P_k P_k' + (L-1) P_n P_n' - X - X' - P_n s' - s P_n'`` with
    ``X = sum_{k=0}^{n-L-1} P_{k+L+1} P_k'`` and ``s = sum_{k=n-L}^{n-1} P_k``; the scores of
    each series are first packed onto its observed months (padded with zeros to the longest
    series of the chunk: the sums do not depend on the padding length ``>= n``).
    """
    T, p = Z.shape
    N = U.shape[1]
    L = lags
    out = np.empty((N, p, p))
    # months of each series' observations in order, then padding (whose residual is zero)
    tau = np.ascontiguousarray(np.argsort(~mask, axis=0, kind="stable").T)  # (N, T)
    uc = U.ravel().take(tau * N + np.arange(N)[:, None])  # packed residuals
    Zt = np.ascontiguousarray(Z.T)
    nobs = mask.sum(axis=0)
    for a in range(0, N, chunk):
        sl = slice(a, min(a + chunk, N))
        n = sl.stop - sl.start
        Tc = int(nobs[sl].max())  # packed length: any padding beyond each n_j is exact
        P = np.empty((p, n, Tc + 1))  # cumulative packed scores, time last (contiguous)
        P[:, :, 0] = 0.0
        H = Zt.take(tau[sl, :Tc], axis=1)  # (p, n, Tc): z of each series' k-th observed month
        H *= uc[sl, :Tc]
        np.cumsum(H, axis=2, out=P[:, :, 1:])
        A = P.transpose(1, 0, 2)  # (n, p, Tc+1) view
        S = 2.0 * (A @ A.transpose(0, 2, 1))
        if L + 1 <= Tc:
            X = A[:, :, L + 1 :] @ A[:, :, : Tc - L].transpose(0, 2, 1)
            S -= X + np.swapaxes(X, 1, 2)
        PT = A[:, :, Tc]
        s = A[:, :, max(Tc - L, 0) : Tc].sum(axis=2)
        S += (L - 1) * PT[:, :, None] * PT[:, None, :]
        S -= PT[:, :, None] * s[:, None, :] + s[:, :, None] * PT[:, None, :]
        out[sl] = S
    return out / (L + 1.0)


def _meat(Z: np.ndarray, U: np.ndarray, mask: np.ndarray, lags: int, hac_gaps: str) -> np.ndarray:
    """Newey-West meat of all series: calendar products where lags are calendar months (zero
    scores in gaps, or series observed on one unbroken stretch), packed windows otherwise."""
    if lags == 0 or hac_gaps == "zero":
        return _meat_calendar(Z, U, lags)
    # a series is gappy when its observed months form more than one unbroken stretch
    starts = mask[0].astype(np.int64) + (mask[1:] & ~mask[:-1]).sum(axis=0)
    gappy = starts > 1
    if not gappy.any():
        return _meat_calendar(Z, U, lags)
    if gappy.all():
        return _meat_compressed(Z, U, mask, lags)
    out = np.empty((U.shape[1], Z.shape[1], Z.shape[1]))
    out[~gappy] = _meat_calendar(Z, U[:, ~gappy], lags)
    out[gappy] = _meat_compressed(Z, U[:, gappy], mask[:, gappy], lags)
    return out


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
    # batched back substitution (LU of an upper-triangular matrix needs no row exchange)
    Rinv = np.linalg.solve(R, np.broadcast_to(np.eye(p), R.shape))
    Vg = Rinv @ np.swapaxes(Rinv, 1, 2)
    Qb, Rb = Q[inv], R[inv]
    b = np.linalg.solve(Rb, np.einsum("ntp,tn->np", Qb, y0)[:, :, None])[:, :, 0]
    u = (y0 - Xs @ b.T) * mask
    b += np.linalg.solve(Rb, np.einsum("ntp,tn->np", Qb, u)[:, :, None])[:, :, 0]
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
    full = nobs == T  # series observed every month: G_j = Z'Z = I
    balanced = bool(full.all())
    y0 = Y if balanced else np.where(mask, Y, 0.0)
    M = None if balanced else mask.astype(float)

    # Gram matrices G_j = Z_j'Z_j of the gappy series in the orthonormal coordinates
    Ginv = np.broadcast_to(np.eye(p), (N, p, p)).copy()
    good = np.ones(N, dtype=bool)
    cond1 = np.ones(N)  # 1-norm condition numbers of G_j
    refine_above = 100.0
    part = np.flatnonzero(~full)
    if part.size:
        iu = np.triu_indices(p)
        P0 = (Z[:, :, None] * Z[:, None, :])[:, iu[0], iu[1]]
        G = _unpack_sym(P0.T @ (M if part.size == N else M[:, part]), p, iu)
        eye = np.broadcast_to(np.eye(p), G.shape)
        try:
            Gi = np.linalg.solve(G, eye)
            c1 = np.abs(G).sum(axis=1).max(axis=1) * np.abs(Gi).sum(axis=1).max(axis=1)
            ok = np.isfinite(c1) & (c1 < max_cond)
        except np.linalg.LinAlgError:  # some G_j exactly singular: those go to the QR route
            ev = np.linalg.eigvalsh(G)
            ok = ev[:, 0] > ev[:, -1] / max_cond
            Gi = np.zeros_like(G)
            Gi[ok] = np.linalg.solve(G[ok], eye[ok])
            c1 = np.where(ok, max_cond, np.inf)  # refine all of them
        Ginv[part] = Gi
        good[part] = ok
        cond1[part] = c1
    gi = np.flatnonzero(good)
    all_good = gi.size == N

    params = np.empty((N, p))
    cov = np.empty((N, p, p))
    cov_hac = np.empty((N, p, p)) if hac_lags is not None else None
    U = np.zeros((T, N))  # residuals, zero where unobserved
    df = nobs - p
    corr = nobs / df if use_correction else np.ones(N)

    if gi.size:
        if all_good:
            Gig, yg = Ginv, y0
        else:
            Gig, yg = Ginv[gi], y0[:, gi]
        Zty = Z.T @ yg
        if balanced:  # G = I: gamma = Z'y is the Householder QR solution itself
            gam = Zty.T
            ug = yg - Z @ Zty
        else:  # gamma_j = G_j^{-1} Z'y_j (refined once with the residual unless G_j ~ I)
            Mg = M if all_good else M[:, gi]
            gam = np.einsum("nij,jn->ni", Gig, Zty)
            ug = yg - Z @ gam.T
            ug *= Mg
            if (cond1[gi] > refine_above).any():
                gam += np.einsum("nij,jn->ni", Gig, Z.T @ ug)
                np.subtract(yg, Z @ gam.T, out=ug)
                ug *= Mg
        if all_good:
            U = ug
        else:
            U[:, gi] = ug
        # back to the original coefficients: b = K gamma, (X_j'X_j)^{-1} = K G_j^{-1} K'
        K = solve_triangular(R, np.eye(p)) / d[:, None]
        KK = np.kron(K, K)  # (K A K').ravel() = KK @ A.ravel()
        n = gi.size
        params[gi] = gam @ K.T
        s2 = np.einsum("tn,tn->n", ug, ug) / df[gi]
        cov[gi] = (Gig.reshape(n, p * p) @ KK.T).reshape(n, p, p) * s2[:, None, None]
        if hac_lags is not None:
            mg = mask if all_good else mask[:, gi]
            Cz = Gig @ _meat(Z, ug, mg, hac_lags, hac_gaps) @ Gig
            cov_hac[gi] = (Cz.reshape(n, p * p) @ KK.T).reshape(n, p, p) * corr[gi, None, None]
    bi = np.flatnonzero(~good)
    if bi.size:
        b_s, V_s, u, mt = _qr_fit(
            Xs, Y[:, bi], mask[:, bi], hac_lags, hac_gaps, lambda k: label(bi[k])
        )
        U[:, bi] = u
        dd = np.outer(d, d)
        params[bi] = b_s / d
        cov[bi] = ((u * u).sum(axis=0) / df[bi])[:, None, None] * V_s / dd
        if hac_lags is not None:
            cov_hac[bi] = (V_s @ mt @ V_s) * corr[bi, None, None] / dd

    rss = np.einsum("tn,tn->n", U, U)
    dev = y0 - y0.sum(axis=0) / nobs
    if not balanced:
        dev *= M
    tss = np.einsum("tn,tn->n", dev, dev)
    return BatchedOLS(
        params=params,
        cov_classical=cov,
        cov_hac=cov_hac,
        resid=U if balanced else np.where(mask, U, np.nan),
        nobs=nobs,
        rss=rss,
        tss=tss,
    )

"""Batched least squares: many return series on one design, each on its own observed rows.

Pure numpy/scipy. Every series ``j`` is regressed on the rows of the common design ``X`` where
``y_j`` is observed. All series are fitted together:

1. one Householder QR of the column-scaled full design, ``X D^{-1} = Z R`` (``Z'Z = I``);
2. per series, the Gram matrix of its observed rows in these orthonormal coordinates,
   ``G_j = Z_j'Z_j``, for all series in one matrix product; ``G_j`` is close to the identity
   unless a series misses much of the sample, so solving ``G_j gamma_j = Z_j'y_j`` keeps the
   accuracy of QR (the squaring of the condition number of the normal equations applies to
   ``cond(G_j)``, not to ``cond(X)``). The ``G_j`` are inverted together by Gauss-Jordan
   elimination vectorised over the series (:func:`_spd_inverse`), and one step of iterative
   refinement follows for the series whose ``G_j`` has a 1-norm condition number above 100;
3. series whose ``G_j`` is not well conditioned (they observe a short or unusual stretch) are
   refitted by their own Householder QR, batched over the distinct patterns of observed rows.

The Newey-West (Bartlett) long-run covariance of the scores is assembled lag by lag as matrix
products shared by all series when lags are calendar months; for series with gaps whose lags are
counted in observed months (what a per-series regression on dropped-NaN data does), from Bartlett
windows over the packed scores, the window sums being matrix products with a shared band of ones
(:func:`_meat_compressed`). Series observed every month skip the Gram step (``G_j = I``). No
explicit inverse of ``X'X`` is ever used to solve for coefficients.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular

from bayesbond.errors import DataError, listing

__all__ = ["BatchedOLS", "bartlett_weights", "batched_ols", "collinear_columns", "newey_west_meat"]


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


def collinear_columns(X: np.ndarray, rtol: float | None = None) -> np.ndarray:
    """Columns of ``X`` that take part in an exact linear dependence (empty when full rank).

    Parameters
    ----------
    X : ndarray (T, p)
        Finite design; columns that are all zero count as dependent.
    rtol : float, optional
        Singular values of the column-equilibrated ``X`` below ``rtol`` times the largest count
        as zero; default ``max(T, p) * eps`` (the rank test of :func:`batched_ols`).

    Returns
    -------
    ndarray of int
        Sorted indices of the columns with a non-negligible weight in a null vector.

    Notes
    -----
    With ``X D^{-1} = U S V'`` (``D`` the column norms), the null space is spanned by the columns
    ``v_k`` of ``V`` with ``s_k <= rtol s_1``; column ``j`` is involved when
    ``max_k |v_jk| > sqrt(rtol)`` (its coefficient in some exact combination is not zero).
    """
    X = np.asarray(X, dtype=float)
    T, p = X.shape
    d = np.linalg.norm(X, axis=0)
    zero = d == 0
    d[zero] = 1.0
    if rtol is None:
        rtol = max(T, p) * np.finfo(float).eps
    _, s, Vt = np.linalg.svd(X / d, full_matrices=False)
    null = Vt[s <= rtol * s[0]] if s.size and s[0] > 0 else Vt
    if T < p:  # more columns than rows: every column is in some dependence
        return np.arange(p)
    involved = zero.copy()
    if null.size:
        involved |= (np.abs(null) > np.sqrt(rtol)).any(axis=0)
    return np.flatnonzero(involved)


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
    product of the ``p(p+1)/2`` distinct entries of ``w_g (z_t z_{t-g}' + z_{t-g} z_t')`` with
    ``W_g = (u_t u_{t-g})`` over all series.
    """
    T, p = Z.shape
    iu = np.triu_indices(p)
    P0 = (Z[:, :, None] * Z[:, None, :])[:, iu[0], iu[1]]
    W = U * U
    S = P0.T @ W  # (p(p+1)/2, N)
    w = bartlett_weights(lags)
    for g in range(1, min(lags, T - 1) + 1):
        Wg = W[: T - g]
        np.multiply(U[g:], U[:-g], out=Wg)
        S += (w[g] * _pair_products(Z[g:], Z[:-g], iu)).T @ Wg
    return _unpack_sym(S, p, iu)


def _meat_compressed(
    Z: np.ndarray, U: np.ndarray, mask: np.ndarray, lags: int, chunk: int = 64, width: int = 32
) -> np.ndarray:
    """Newey-West meat with lags counted in observed months (equal spacing), for gappy series.

    Each series' scores ``h_k = u_k z_{t_k}`` are packed onto its observed months ``t_0 < t_1 <
    ...`` (padded with zero scores: ``U`` must be zero where ``mask`` is False). The Bartlett
    kernel is the autocorrelation of a box of width ``L + 1``,
    ``(1 - |k-k'|/(L+1))_+ = (1/(L+1)) #{m : k, k' in [m-L, m]}``, so
    ``S = (1/(L+1)) sum_m c_m c_m'`` with the window sums ``c_m = sum_{k=m-L}^{m} h_k``,
    ``m = 0..n+L-1``. The window sums of all series of a chunk are matrix products with the
    (shared) band of ones, a block of ``width`` windows at a time; ``S`` is then one small Gram
    matrix per series. Series are taken in order of their number of observations, so each chunk is
    padded only to its longest series.
    """
    T, p = Z.shape
    N = U.shape[1]
    L = lags
    if U.flags.f_contiguous and not U.flags.c_contiguous:  # column-major: gather along rows
        flat, row_step, col_step = U.T.ravel(), 1, T
    else:
        flat, row_step, col_step = np.ascontiguousarray(U).ravel(), N, 1
    mT = np.ascontiguousarray(mask.T)
    nobs = mT.sum(axis=1)
    unobserved = np.invert(mT).view(np.uint8)  # sort keys: observed months first
    order = np.argsort(nobs, kind="stable")
    Zt = np.ascontiguousarray(Z.T)
    out = np.empty((N, p, p))
    n_max = int(nobs[order[-1]])
    diff = np.arange(n_max)[:, None] - np.arange(n_max + L)[None, :]  # k - m
    band = ((diff <= 0) & (diff >= -L)).astype(float)  # band[k, m] = 1 if m - L <= k <= m
    chunk = min(chunk, N)
    Hbuf = np.empty(p * chunk * n_max)  # work space reused by every chunk
    Cbuf = np.empty(p * chunk * (n_max + L))
    Dbuf = np.empty_like(Cbuf)
    for a in range(0, N, chunk):
        idx = order[a : a + chunk]
        n = idx.size
        nc = int(nobs[idx[-1]])  # packed length of the chunk
        mc = nc + L  # number of windows
        # months of each series' observations in order (then missing months, whose u is zero)
        tau = np.argsort(unobserved[idx], axis=1, kind="stable")[:, :nc]
        H = Hbuf[: p * n * nc].reshape(p, n, nc)
        Zt.take(tau, axis=1, out=H, mode="clip")
        if row_step != 1:
            tau *= row_step
        tau += (idx * col_step)[:, None]
        H *= flat.take(tau)  # packed scores u_k z_{t_k}
        Hf = H.reshape(p * n, nc)
        C = Cbuf[: p * n * mc].reshape(p * n, mc)
        for m0 in range(0, mc, width):
            m1 = min(m0 + width, mc)
            k0, k1 = max(0, m0 - L), min(nc, m1)
            np.matmul(Hf[:, k0:k1], band[k0:k1, m0:m1], out=C[:, m0:m1])
        # Gram matrices of the windows; against a copy, so that the product is a general matrix
        # product (for these tiny matrices much faster in OpenBLAS than a symmetric rank-k update)
        D = Dbuf[: p * n * mc].reshape(p * n, mc)
        np.copyto(D, C)
        Cs = C.reshape(p, n, mc).transpose(1, 0, 2)  # (n, p, mc) views per series
        out[idx] = Cs @ D.reshape(p, n, mc).transpose(1, 2, 0)
    out /= L + 1.0
    return out


def _meat(Z: np.ndarray, U: np.ndarray, mask: np.ndarray, lags: int, hac_gaps: str) -> np.ndarray:
    """Newey-West meat of all series: calendar products where lags are calendar months (zero
    scores in gaps, or series observed on one unbroken stretch), packed windows otherwise."""
    if lags == 0 or hac_gaps == "zero":
        return _meat_calendar(Z, U, lags)
    # a series is gappy when its observed months form more than one unbroken stretch
    T = mask.shape[0]
    first = mask.argmax(axis=0)
    gappy = mask.sum(axis=0) < T - mask[::-1].argmax(axis=0) - first
    if not gappy.any():
        return _meat_calendar(Z, U, lags)
    if gappy.all():
        return _meat_compressed(Z, U, mask, lags)
    out = np.empty((U.shape[1], Z.shape[1], Z.shape[1]))
    out[~gappy] = _meat_calendar(Z, U[:, ~gappy], lags)
    out[gappy] = _meat_compressed(Z, U[:, gappy], mask[:, gappy], lags)
    return out


def _spd_inverse(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses of a stack of symmetric positive definite matrices, and their condition numbers.

    Gauss-Jordan elimination without pivoting, vectorised over the stack (stack index last, so
    every step is a few array operations): for SPD matrices the pivots are the positive
    diagonals of successive Schur complements and need no exchange (Higham, Accuracy and Stability
    of Numerical Algorithms, 2nd ed., sections 10.1 and 14.4).

    Parameters
    ----------
    A : ndarray (p, p, n)
        The matrices, stack index last.

    Returns
    -------
    Ai : ndarray (p, p, n)
        The inverses, stack index last.
    cond : ndarray (n,)
        1-norm condition numbers ``||A||_1 ||A^{-1}||_1``; ``inf`` where a pivot is not positive
        or the inverse is not finite (singular or indefinite matrix).
    """
    p, _, n = A.shape
    work = np.abs(A)
    norm1 = work.sum(axis=0).max(axis=0)
    Ai = A.copy()
    bad = np.zeros(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(p):
            piv = Ai[k, k].copy()
            bad |= ~(piv > 0)
            r = 1.0 / piv
            row = Ai[k] * r
            col = Ai[:, k].copy()
            np.multiply(col[:, None, :], row[None, :, :], out=work)
            Ai -= work
            Ai[k] = row
            np.multiply(col, -r, out=Ai[:, k])
            Ai[k, k] = r
        np.abs(Ai, out=work)
        cond = norm1 * work.sum(axis=0).max(axis=0)
    cond[bad | ~np.isfinite(cond)] = np.inf
    return Ai, cond


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
        raise DataError("the factors are collinear (rank deficient) on the observed months of "
                        f"{listing(label(j) for j in js)}")
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


def batched_ols(X: np.ndarray, Y: np.ndarray, hac_lags: int | None = None,
                use_correction: bool = True, hac_gaps: str = "compress",
                names: Sequence | None = None, max_cond: float = 1e4) -> BatchedOLS:
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

    With a constant column ``c`` in ``X``: ``Z r_0 = 1`` for ``r_0 = R e_c d_c / x_c``, so
    ``ybar_j = r_0' Z'y_j / n_j`` and ``TSS_j = RSS_j + v_j' G_j v_j``,
    ``v_j = gamma_j - ybar_j r_0`` (no pass over the data, no cancellation); otherwise
    ``TSS_j = sum_{t in O_j} (y_tj - ybar_j)^2``.

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
        raise DataError(f"too few observed months for {p} coefficients (need at least {p + 1}): "
                        f"{listing(f'{label(j)} ({nobs[j]})' for j in few)}")

    d = np.linalg.norm(X, axis=0)
    d[d == 0] = 1.0
    Xs = X / d
    Z, R = np.linalg.qr(Xs)
    rdiag = np.abs(np.diag(R))
    if rdiag.min() <= max(T, p) * np.finfo(float).eps * rdiag.max():
        raise DataError("the design is rank deficient: some factors are collinear")
    full = nobs == T  # series observed every month: G_j = Z'Z = I
    balanced = bool(full.all())
    # one (T, N) work array serves in turn as y with zeros where unobserved, the 0/1 mask, the
    # fitted values and the residuals (large fresh arrays cost page faults on every call); work
    # arrays follow the memory order of Y (column-major from pandas), so that no pass transposes
    fortran = Y.flags.f_contiguous and not Y.flags.c_contiguous
    U = np.empty((T, N), order="F" if fortran else "C")
    if balanced:
        Zty = Z.T @ Y  # (p, N)
    else:  # zeros where a series is not observed: bitwise and with all-ones / all-zeros words
        bits = np.negative(mask.view(np.int8))
        np.bitwise_and(Y.view(np.int64), bits, out=U.view(np.int64))
        Zty = Z.T @ U

    # Gram matrices G_j = Z_j'Z_j of the partly observed series, their inverses and conditions
    part = np.flatnonzero(~full)
    good = np.ones(N, dtype=bool)
    refine_above = 100.0
    gp = part  # partly observed series solved through G_j
    Gp = Gip = cond = None
    if part.size:
        iu = np.triu_indices(p)
        P0 = (Z[:, :, None] * Z[:, None, :])[:, iu[0], iu[1]]
        Mp = U[:, : part.size]
        np.copyto(Mp, mask if part.size == N else mask[:, part])
        G_up = P0.T @ Mp  # upper triangles of G_j, (p(p+1)/2, n)
        G = np.empty((p, p, part.size))  # stack index last
        G[iu] = G_up
        G[iu[1], iu[0]] = G_up
        Gi, c1 = _spd_inverse(G)
        Gi = Gi.transpose(2, 0, 1)
        ok = c1 < max_cond
        if ok.all():
            Gp, Gip, cond = G, np.ascontiguousarray(Gi), c1
        else:
            good[part[~ok]] = False
            gp, Gp, Gip, cond = part[ok], G[:, :, ok], Gi[ok], c1[ok]
    all_part = gp.size == N

    # coefficients gamma_j in the orthonormal coordinates: Z'y_j (complete series) or
    # G_j^{-1} Z_j'y_j, refined once with the residual where G_j is not close to the identity
    gam = np.ascontiguousarray(Zty.T)
    if gp.size:
        Ztyp = Zty if all_part else Zty[:, gp]
        gam_p = np.einsum("nij,jn->ni", Gip, Ztyp)
        if all_part:
            gam = gam_p
        else:
            gam[gp] = gam_p
    if fortran:
        np.matmul(gam, Z.T, out=U.T)  # fitted values
    else:
        np.matmul(Z, gam.T, out=U)
    np.subtract(Y, U, out=U)  # residuals
    if not balanced:  # zeros where a series is not observed (NaN there at the very end)
        np.bitwise_and(U.view(np.int64), bits, out=U.view(np.int64))
    if gp.size:
        rf = np.flatnonzero(cond > refine_above)
        if rf.size:
            js = gp[rf]
            gam[js] += np.einsum("nij,jn->ni", Gip[rf], Z.T @ U[:, js])
            U[:, js] = np.where(mask[:, js], Y[:, js] - Z @ gam[js].T, 0.0)

    params = np.empty((N, p))
    cov = np.empty((N, p, p))
    cov_hac = np.empty((N, p, p)) if hac_lags is not None else None
    df = nobs - p
    corr = nobs / df if use_correction else np.ones(N)
    bi = np.flatnonzero(~good)
    if bi.size:  # series whose G_j is not well conditioned: their own Householder QR
        b_s, V_s, u, mt = _qr_fit(
            Xs, Y[:, bi], mask[:, bi], hac_lags, hac_gaps, lambda k: label(bi[k])
        )
        U[:, bi] = u
    rss = np.einsum("tn,tn->n", U, U)
    s2 = rss / df

    # back to the original coefficients: b = K gamma, (X_j'X_j)^{-1} = K G_j^{-1} K'
    K = solve_triangular(R, np.eye(p)) / d[:, None]
    KK = np.kron(K, K)  # (K A K').ravel() = KK @ A.ravel()
    params[:] = gam @ K.T
    fi = np.flatnonzero(full)
    if fi.size:
        cov[fi] = (K @ K.T)[None] * s2[fi, None, None]
    if gp.size:
        covp = (Gip.reshape(gp.size, p * p) @ KK.T).reshape(gp.size, p, p)
        covp *= s2[gp, None, None]
        if all_part:
            cov = covp
        else:
            cov[gp] = covp
    if hac_lags is not None:
        gi = np.flatnonzero(good)
        all_good = gi.size == N
        S = _meat(Z, U if all_good else U[:, gi], mask if all_good else mask[:, gi], hac_lags,
                  hac_gaps)
        if gp.size:  # sandwich in the orthonormal coordinates: G_j^{-1} S_j G_j^{-1}
            if all_part:
                S = Gip @ S @ Gip
            else:
                at = np.searchsorted(gi, gp)
                S[at] = Gip @ S[at] @ Gip
        n = gi.size
        ch = (S.reshape(n, p * p) @ KK.T).reshape(n, p, p)
        ch *= corr[gi, None, None]
        if all_good:
            cov_hac = ch
        else:
            cov_hac[gi] = ch
    if bi.size:
        dd = np.outer(d, d)
        params[bi] = b_s / d
        cov[bi] = s2[bi, None, None] * V_s / dd
        if hac_lags is not None:
            cov_hac[bi] = (V_s @ mt @ V_s) * corr[bi, None, None] / dd

    # centred total sum of squares: with a constant column, tss = rss + ess where
    # ess = ||Z_j (gamma_j - ybar_j r0)||^2 = v' G_j v and Z r0 = 1 (no pass over the data)
    tss = np.empty(N)
    const = np.flatnonzero(np.all(X == X[0], axis=0) & (X[0] != 0))
    two_pass = np.arange(N) if not const.size else bi
    if const.size:
        c = const[0]
        r0 = R[:, c] * (d[c] / X[0, c])
        ybar = (r0 @ Zty) / nobs
        v = gam - ybar[:, None] * r0
        ess = np.einsum("ni,ni->n", v, v)  # G_j = I
        if gp.size:
            vp = v if all_part else v[gp]
            ess_p = np.einsum("ni,ijn,nj->n", vp, Gp, vp)
            if all_part:
                ess = ess_p
            else:
                ess[gp] = ess_p
        tss[:] = rss + ess
    if two_pass.size:
        mt_ = mask[:, two_pass]
        y0t = np.where(mt_, Y[:, two_pass], 0.0)
        dev = np.where(mt_, y0t - y0t.sum(axis=0) / nobs[two_pass], 0.0)
        tss[two_pass] = np.einsum("tn,tn->n", dev, dev)
    if not balanced:  # NaN where a series is not observed: set the exponent bits of the zeros
        A, m = (U.T, bits.T) if fortran else (U, bits)  # C-contiguous views
        hi = 3 if sys.byteorder == "little" else 0  # the 16 bits holding sign and exponent
        top = A.view(np.int16).reshape(*A.shape, 4)[..., hi]
        np.bitwise_or(top, np.bitwise_and(~m, np.int16(0x7FF8), dtype=np.int16), out=top)
    return BatchedOLS(params=params, cov_classical=cov, cov_hac=cov_hac, resid=U, nobs=nobs,
                      rss=rss, tss=tss)

"""A parameterisation of stable drift matrices for the P dynamics of the affine model.

``A = D (-(L L' + S)) D^-1`` with ``L`` lower triangular (positive diagonal, ``exp`` of raw
numbers), ``S`` skew-symmetric and ``D = diag(d)`` fixed positive scales (the standard deviations of
the portfolios). Written for a generic array namespace ``xp`` (``numpy`` or ``pytensor.tensor``).

Why it is stable: ``A`` is similar to ``B = -(L L' + S)``; for any complex ``x != 0``,
``Re(x* B x) = -x* L L' x < 0`` (the skew part contributes a purely imaginary number), so every
eigenvalue ``mu = x* B x / x* x`` of ``B`` (with ``x`` its eigenvector) has ``Re mu < 0``. The set
reached is every ``A`` whose scaled symmetric part ``(B + B')/2`` is negative definite (a subset
of the stable matrices that holds the ML estimates of Liu-Wu 1990-2022 and the simulated test
curves); ``n^2`` numbers for ``n^2`` entries, a smooth bijection onto that set, so NUTS sees no
wall.
"""

from __future__ import annotations

import numpy as np

__all__ = ["stable_drift", "stable_to_raw", "n_chol", "n_skew"]


def n_chol(n: int) -> int:
    return n * (n + 1) // 2


def n_skew(n: int) -> int:
    return n * (n - 1) // 2


def stable_drift(xp, chol_raw, skew, scale, n: int):
    """``A = D (-(L L' + S)) D^-1`` (see the module notes).

    Parameters
    ----------
    chol_raw : (n(n+1)/2,)
        Lower triangle of ``L`` by rows (``np.tril_indices``), the diagonal as logs.
    skew : (n(n-1)/2,) or None
        Strict lower triangle of ``S`` (``S' = -S``); ``None`` or empty for ``n = 1``.
    scale : (n,)
        Positive scales ``d``.
    """
    tril = np.tril_indices(n)
    diag = np.array([i == j for i, j in zip(*tril, strict=True)])
    vals = xp.where(diag, xp.exp(chol_raw), chol_raw)
    if xp is np:
        L = np.zeros((n, n))
        L[tril] = vals
        S = np.zeros((n, n))
        if n > 1:
            S[np.tril_indices(n, -1)] = skew
        S = S - S.T
    else:
        L = xp.set_subtensor(xp.zeros((n, n))[tril], vals)
        S = xp.zeros((n, n))
        if n > 1:
            S = xp.set_subtensor(S[np.tril_indices(n, -1)], skew)
        S = S - S.T
    B = -(xp.dot(L, L.T) + S)
    return B * scale[:, None] / scale[None, :]


def stable_to_raw(A, scale, floor: float = 1e-4):
    """Inverse of :func:`stable_drift` (numpy): ``(chol_raw, skew, moved)``.

    An ``A`` outside the set (scaled symmetric part not negative definite) is moved to it by
    flooring the eigenvalues of ``-(B + B')/2`` at ``floor`` per year; ``moved`` says so.
    """
    A = np.asarray(A, float)
    d = np.asarray(scale, float)
    n = A.shape[0]
    B = A * d[None, :] / d[:, None]
    M = -0.5 * (B + B.T)
    S = -0.5 * (B - B.T)
    w, V = np.linalg.eigh(M)
    moved = bool(w.min() < floor)
    M = (V * np.maximum(w, floor)) @ V.T
    L = np.linalg.cholesky(0.5 * (M + M.T))
    raw = L[np.tril_indices(n)].copy()
    diag = np.array([i == j for i, j in zip(*np.tril_indices(n), strict=True)])
    raw[diag] = np.log(raw[diag])
    return raw, S[np.tril_indices(n, -1)].copy(), moved

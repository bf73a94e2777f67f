"""Matrix-exponential integrals and Lyapunov equations shared by the OU and affine models.

Everything here is exact for defective and singular matrices: no eigen-decomposition is used.
All functions accept a scalar or vector of horizons ``t`` and broadcast over it (leading axis).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from bayesbond.errors import ModelError

__all__ = [
    "as_square",
    "as_vol_matrix",
    "expm_t",
    "expm_and_integral",
    "van_loan",
    "integrated_cov",
    "solve_lyapunov",
    "solve_discrete_lyapunov",
    "is_stable",
]


def as_square(A, name: str = "A") -> np.ndarray:
    """Return ``A`` as a float (n, n) array; scalars become (1, 1)."""
    A = np.atleast_2d(np.asarray(A, dtype=float))
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ModelError(f"{name} must be a square matrix, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ModelError(f"{name} has non-finite entries")
    return A


def as_vol_matrix(Sigma, n: int) -> np.ndarray:
    """Return the volatility matrix ``Sigma`` as a float (n, m) array; a scalar becomes (1, 1)."""
    S = np.asarray(Sigma, dtype=float)
    S = S.reshape(1, 1) if S.ndim == 0 else S
    if S.ndim != 2 or S.shape[0] != n:
        raise ModelError(f"Sigma must have shape ({n}, m), got {np.shape(Sigma)}")
    if not np.all(np.isfinite(S)):
        raise ModelError("Sigma has non-finite entries")
    return S


def _times(t) -> tuple[np.ndarray, bool]:
    t = np.asarray(t, dtype=float)
    return np.atleast_1d(t), t.ndim == 0


def expm_t(A, t) -> np.ndarray:
    """``e^{tA}`` for every horizon in ``t``: shape (len(t), n, n), or (n, n) for scalar ``t``."""
    A = as_square(A)
    ts, scalar = _times(t)
    out = sla.expm(ts[:, None, None] * A[None])
    return out[0] if scalar else out


def expm_and_integral(A, t):
    """``e^{tA}`` and ``int_0^t e^{sA} ds``, exact also for singular ``A``.

    Notes
    -----
    Van Loan's block exponential:
    ``expm(t [[A, I], [0, 0]]) = [[e^{tA}, int_0^t e^{sA} ds], [0, I]]``.
    """
    A = as_square(A)
    n = A.shape[0]
    ts, scalar = _times(t)
    M = np.zeros((2 * n, 2 * n))
    M[:n, :n] = A
    M[:n, n:] = np.eye(n)
    E = sla.expm(ts[:, None, None] * M[None])
    F, J = E[:, :n, :n], E[:, :n, n:]
    return (F[0], J[0]) if scalar else (F, J)


def van_loan(A, V, t):
    """``e^{tA}`` and ``G(t) = int_0^t e^{sA} V e^{sA'} ds`` by Van Loan's block exponential.

    Notes
    -----
    ``expm(t [[-A, V], [0, A']]) = [[F11, F12], [0, F22]]`` with ``F22 = e^{tA'}`` and
    ``G(t) = F22' F12`` (Van Loan 1978). Exact for any ``A`` but forms ``e^{-tA}``, which overflows
    for long horizons when ``A`` is stable; :func:`integrated_cov` switches to the Lyapunov route.
    """
    A = as_square(A)
    V = as_square(V, "V")
    n = A.shape[0]
    ts, scalar = _times(t)
    M = np.zeros((2 * n, 2 * n))
    M[:n, :n] = -A
    M[:n, n:] = V
    M[n:, n:] = A.T
    E = sla.expm(ts[:, None, None] * M[None])
    F22 = E[:, n:, n:]
    G = np.swapaxes(F22, -1, -2) @ E[:, :n, n:]
    G = 0.5 * (G + np.swapaxes(G, -1, -2))
    F = np.swapaxes(F22, -1, -2)
    return (F[0], G[0]) if scalar else (F, G)


def is_stable(A, tol: float = 0.0) -> bool:
    """True when every eigenvalue of ``A`` has real part below ``-tol``."""
    return bool(np.max(np.linalg.eigvals(as_square(A)).real) < -tol)


def solve_lyapunov(A, V) -> np.ndarray:
    """Solve ``A P + P A' + V = 0`` (the stationary covariance of an OU process).

    Raises
    ------
    ModelError
        If ``A`` is not stable, where no stationary solution exists.

    Notes
    -----
    Bartels-Stewart via :func:`scipy.linalg.solve_continuous_lyapunov`; the result is symmetrised.
    """
    A = as_square(A)
    V = as_square(V, "V")
    eig = np.linalg.eigvals(A)
    if np.max(eig.real) >= 0:
        raise ModelError(
            "A is not stable (eigenvalues with real part >= 0: "
            f"{np.round(eig[eig.real >= 0], 6).tolist()}); no stationary distribution exists"
        )
    P = sla.solve_continuous_lyapunov(A, -V)
    return 0.5 * (P + P.T)


def solve_discrete_lyapunov(Phi, Q) -> np.ndarray:
    """Solve ``P = Phi P Phi' + Q`` (stationary covariance of a VAR(1)); needs radius < 1."""
    Phi = as_square(Phi, "Phi")
    Q = as_square(Q, "Q")
    rho = np.max(np.abs(np.linalg.eigvals(Phi)))
    if rho >= 1:
        raise ModelError(
            f"Phi has spectral radius {rho:.6g} >= 1; no stationary distribution exists"
        )
    P = sla.solve_discrete_lyapunov(Phi, Q)
    return 0.5 * (P + P.T)


def integrated_cov(A, V, t, method: str = "auto"):
    """``e^{tA}`` and ``G(t) = int_0^t e^{sA} V e^{sA'} ds`` for every horizon in ``t``.

    Parameters
    ----------
    A, V : array_like (n, n)
    t : float or array_like
    method : {"auto", "van_loan", "lyapunov"}
        ``"lyapunov"`` uses ``G = X - e^{tA} X e^{tA'}`` with ``A X + X A' + V = 0`` (needs a
        stable ``A``); ``"auto"`` picks the accurate route per horizon (see Notes).

    Notes
    -----
    Both routes are exact in exact arithmetic. Van Loan loses accuracy like ``eps e^{t max|eig|}``
    (it forms ``e^{-tA}``); the Lyapunov route like ``eps / (t min|Re eig|)`` (cancellation in
    ``X - F X F'`` for short horizons or a mode close to a unit root). ``"auto"`` therefore uses the
    Lyapunov route only for stable ``A`` with ``t ||A|| >= 1`` and ``t min|Re eig| >= 1e-3``.
    """
    A = as_square(A)
    V = as_square(V, "V")
    ts, scalar = _times(t)
    if method not in ("auto", "van_loan", "lyapunov"):
        raise ValueError(f"method must be 'auto', 'van_loan' or 'lyapunov', got {method!r}")
    if method == "van_loan":
        lyap = np.zeros(ts.shape, dtype=bool)
    elif method == "lyapunov":
        lyap = np.ones(ts.shape, dtype=bool)
    else:
        eig = np.linalg.eigvals(A)
        stable = np.max(eig.real) < 0
        lyap = stable & (np.abs(ts) * np.linalg.norm(A, 2) >= 1.0)
        lyap &= stable and (np.abs(ts) * np.min(-eig.real) >= 1e-3)
    F = expm_t(A, ts)
    G = np.empty(ts.shape + A.shape)
    if lyap.any():
        X = solve_lyapunov(A, V)
        Fl = F[lyap]
        G[lyap] = X[None] - Fl @ X[None] @ np.swapaxes(Fl, -1, -2)
    if (~lyap).any():
        G[~lyap] = van_loan(A, V, ts[~lyap])[1]
    G = 0.5 * (G + np.swapaxes(G, -1, -2))
    return (F[0], G[0]) if scalar else (F, G)

"""Matrix-exponential integrals and Lyapunov equations shared by the OU and affine models.

Everything here is exact for defective and singular matrices: no eigen-decomposition is used.
All functions accept a scalar or vector of horizons ``t`` and broadcast over it (leading axis).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from bayesbond.errors import DataError, ModelError

__all__ = ["as_square", "as_vol_matrix", "as_horizons", "as_real", "expm_frechet_block",
           "expm_t", "expm_and_integral",
           "van_loan", "integrated_cov", "kron_cov", "lyapunov_operator", "solve_lyapunov",
           "solve_discrete_lyapunov", "is_stable", "unit_root_tol", "unstable_eigenvalues",
           "chol_pack", "chol_unpack"]


def as_real(x, name: str) -> np.ndarray:
    """``x`` as a float array; a complex input with a non-zero imaginary part is refused."""
    x = np.asarray(x)
    if np.iscomplexobj(x):
        if np.any(x.imag != 0):
            raise ModelError(
                f"{name} is complex (largest |imaginary part| {np.max(np.abs(x.imag)):.3g}); "
                "the model needs a real matrix"
            )
        x = x.real
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ModelError(f"{name} must be numeric, got {x!r}") from None


def as_square(A, name: str = "A") -> np.ndarray:
    """Return ``A`` as a float (n, n) array; scalars become (1, 1).

    Complex input with a non-zero imaginary part raises :class:`ModelError` (it is not dropped).
    """
    A = np.atleast_2d(as_real(A, name))
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ModelError(f"{name} must be a square matrix, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ModelError(f"{name} has non-finite entries")
    return A


def as_vol_matrix(Sigma, n: int) -> np.ndarray:
    """Return the volatility matrix ``Sigma`` as a float (n, m) array; a scalar becomes (1, 1)."""
    S = as_real(Sigma, "Sigma")
    S = S.reshape(1, 1) if S.ndim == 0 else S
    if S.ndim != 2 or S.shape[0] != n:
        raise ModelError(f"Sigma must have shape ({n}, m), got {np.shape(Sigma)}")
    if not np.all(np.isfinite(S)):
        raise ModelError("Sigma has non-finite entries")
    return S


def as_horizons(t, name: str = "t") -> tuple[np.ndarray, bool]:
    """Horizons as a 1-D float array (and whether a scalar was given); finite and >= 0."""
    t = as_real(t, name)
    ts = np.atleast_1d(t)
    if ts.ndim != 1:
        raise DataError(f"{name} must be a scalar or a 1-D array of horizons, got shape {t.shape}")
    bad = ~np.isfinite(ts) | (ts < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{name}[{i}] = {float(ts[i])!r}: horizons must be finite and >= 0 (years)"
            if t.ndim
            else f"{name} = {float(ts[i])!r}: a horizon must be finite and >= 0 (years)"
        )
    return ts, t.ndim == 0


def expm_t(A, t) -> np.ndarray:
    """``e^{tA}`` for every horizon in ``t``: shape (len(t), n, n), or (n, n) for scalar ``t``."""
    A = as_square(A)
    ts, scalar = as_horizons(t)
    out = sla.expm(ts[:, None, None] * A[None])
    return out[0] if scalar else out


def expm_frechet_block(X: np.ndarray, E: np.ndarray) -> np.ndarray:
    r"""Frechet derivative ``L_exp(X, E)`` of the matrix exponential, from one block exponential.

    Notes
    -----
    .. math:: \exp\begin{pmatrix} X & E \\ 0 & X \end{pmatrix}
              = \begin{pmatrix} e^X & L_{\exp}(X, E) \\ 0 & e^X \end{pmatrix}

    (Higham 2008, "Functions of Matrices", Theorem 3.6; exact for any ``X``, defective included).
    For the small matrices of the OU and affine models this is an order of magnitude faster than
    :func:`scipy.linalg.expm_frechet` (one ``2m x 2m`` Pade exponential against its Python-level
    scaling and squaring), at the same accuracy. The adjoint (reverse-mode) derivative of
    ``f(exp(X))`` is ``L_exp(X', df/dexp(X))``.
    """
    import scipy.linalg as sla

    m = X.shape[0]
    B = np.zeros((2 * m, 2 * m))
    B[:m, :m] = B[m:, m:] = X
    B[:m, m:] = E
    return sla.expm(B)[:m, m:]


def expm_and_integral(A, t):
    """``e^{tA}`` and ``int_0^t e^{sA} ds``, exact also for singular ``A``.

    Notes
    -----
    Van Loan's block exponential:
    ``expm(t [[A, I], [0, 0]]) = [[e^{tA}, int_0^t e^{sA} ds], [0, I]]``.
    """
    A = as_square(A)
    n = A.shape[0]
    ts, scalar = as_horizons(t)
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
    ``G(t) = F22' F12`` (Van Loan 1978). Exact in exact arithmetic but forms ``e^{-tA}``: when
    ``A`` mixes slow and fast (or explosive) modes and is not triangular, the result is wrong at
    long horizons (``F22' F12`` cancels); :func:`integrated_cov` uses the Kronecker-sum route.
    """
    A = as_square(A)
    V = as_square(V, "V")
    n = A.shape[0]
    ts, scalar = as_horizons(t)
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


def unit_root_tol(A) -> float:
    """Scale-aware tolerance below which an eigenvalue's real part counts as zero.

    Notes
    -----
    ``tol = 64 n eps ||A||_2``: the eigenvalues of ``A`` are computed with an absolute error of
    order ``eps ||A||`` (backward stability of the QR algorithm), so a real part of size
    ``-5e-17`` in a matrix of norm one is a unit root computed with round-off, not a stable mode.
    Zero for ``A = 0``.
    """
    A = as_square(A)
    return float(64 * A.shape[0] * np.finfo(float).eps * np.linalg.norm(A, 2))


def is_stable(A, tol: float | None = None) -> bool:
    """True when every eigenvalue of ``A`` has real part below ``-tol``.

    ``tol=None`` uses the scale-aware :func:`unit_root_tol` (real parts within round-off of zero
    are unit roots, not stable modes).
    """
    A = as_square(A)
    tol = unit_root_tol(A) if tol is None else float(tol)
    return bool(np.max(np.linalg.eigvals(A).real) < -tol)


def unstable_eigenvalues(A) -> np.ndarray:
    """Eigenvalues of ``A`` with real part ``>= -unit_root_tol(A)`` (unit roots and explosive)."""
    A = as_square(A)
    eig = np.linalg.eigvals(A)
    return eig[eig.real >= -unit_root_tol(A)]


def solve_lyapunov(A, V) -> np.ndarray:
    """Solve ``A P + P A' + V = 0`` (the stationary covariance of an OU process).

    Raises
    ------
    ModelError
        If ``A`` is not stable (an eigenvalue with real part ``>= -unit_root_tol(A)``), where no
        stationary solution exists, or if ``P`` overflows.

    Notes
    -----
    Bartels-Stewart via :func:`scipy.linalg.solve_continuous_lyapunov` on the scaled equation
    ``(A/s) P + P (A/s)' + V/s = 0`` with ``s = ||A||_2`` (same ``P``; without the scaling a tiny
    ``A`` such as ``-1e-300 I`` gives a wrong sign). The result is symmetrised.
    """
    A = as_square(A)
    V = as_square(V, "V")
    bad = unstable_eigenvalues(A)
    if bad.size:
        raise ModelError(
            "A is not stable (eigenvalues with real part >= 0, up to round-off: "
            f"{np.round(bad, 6).tolist()}); no stationary distribution exists"
        )
    s = np.linalg.norm(A, 2)
    with np.errstate(over="ignore"):
        Vs = V / s
    if not np.all(np.isfinite(Vs)):
        raise ModelError(
            f"the stationary covariance overflows (||V|| / ||A|| = {np.linalg.norm(V, 2)} / {s})"
        )
    P = sla.solve_continuous_lyapunov(A / s, -Vs)
    if not np.all(np.isfinite(P)):
        raise ModelError("the stationary covariance overflows")
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


def lyapunov_operator(A) -> np.ndarray:
    """Matrix of ``X -> A X + X A'`` on symmetric ``X``, in the half-vectorisation ``vech``.

    Returns
    -------
    ndarray (h, h), ``h = n (n + 1) / 2``
        ``vech(A X + X A') = L vech(X)``, with ``vech`` the upper triangle row by row
        (``numpy.triu_indices``). The eigenvalues of ``L`` are ``lambda_i + lambda_j``
        (``i <= j``) for the eigenvalues ``lambda`` of ``A``: it is the Kronecker sum
        ``A (+) A = A (x) I + I (x) A`` restricted to symmetric matrices.
    """
    A = as_square(A)
    n = A.shape[0]
    iu = np.triu_indices(n)
    h = len(iu[0])
    L = np.empty((h, h))
    for m, (i, j) in enumerate(zip(*iu, strict=True)):
        X = np.zeros((n, n))
        X[i, j] = X[j, i] = 1.0
        L[:, m] = (A @ X + X @ A.T)[iu]
    return L


def kron_cov(A, V, t) -> np.ndarray:
    """``G(t) = int_0^t e^{sA} V e^{sA'} ds`` alone, by the Kronecker-sum route of
    :func:`integrated_cov` (shape (len(t), n, n), or (n, n) for scalar ``t``)."""
    A = as_square(A)
    V = as_square(V, "V")
    ts, scalar = as_horizons(t)
    G = _kron_cov(A, V, ts)
    return G[0] if scalar else G


def _kron_cov(A, V, ts) -> np.ndarray:
    """``G(t)`` for every horizon by one exponential of the augmented Kronecker-sum generator."""
    n = A.shape[0]
    iu = np.triu_indices(n)
    h = len(iu[0])
    M = np.zeros((h + 1, h + 1))
    M[:h, :h] = lyapunov_operator(A)
    M[:h, h] = 0.5 * (V + V.T)[iu]
    g = sla.expm(ts[:, None, None] * M[None])[:, :h, h]
    G = np.empty((len(ts), n, n))
    G[:, iu[0], iu[1]] = g
    G[:, iu[1], iu[0]] = g
    return G


def integrated_cov(A, V, t, method: str = "auto"):
    """``e^{tA}`` and ``G(t) = int_0^t e^{sA} V e^{sA'} ds`` for every horizon in ``t``.

    Parameters
    ----------
    A, V : array_like (n, n)
    t : float or array_like
        Horizons, finite and ``>= 0`` (anything else raises :class:`DataError`).
    method : {"auto", "kron", "van_loan", "lyapunov"}
        ``"kron"`` (the default behind ``"auto"``): the augmented Kronecker-sum exponential (see
        Notes), accurate for any ``A`` and horizon. ``"van_loan"``: Van Loan's block exponential.
        ``"lyapunov"``: ``G = X - e^{tA} X e^{tA'}`` with ``A X + X A' + V = 0`` (needs a stable
        ``A``). The last two are kept for comparison.

    Notes
    -----
    ``G`` solves ``G' = A G + G A' + V``, ``G(0) = 0``: a linear ODE in ``vech G`` with the
    generator ``L = A (+) A`` (:func:`lyapunov_operator`). Hence

    ``expm(t [[L, vech V], [0, 0]]) = [[e^{tL}, vech G(t)], [0, 1]]``.

    The eigenvalues of this generator are ``lambda_i + lambda_j`` and 0, so only ``e^{+t(...)}``
    terms appear: nothing overflows when the exact answer does not, whether ``A`` mixes a very
    slow mode with a fast one, has a unit root or is explosive. Van Loan's block
    ``expm(t [[-A, V], [0, A']])`` forms ``e^{-tA}`` and loses accuracy like ``eps e^{t spread}``
    (relative error 1e4 at ten years for eigenvalues ``-1e-6`` and ``-5`` when ``A`` is not
    triangular); the Lyapunov route cancels for short horizons and near unit roots.
    """
    A = as_square(A)
    V = as_square(V, "V")
    ts, scalar = as_horizons(t)
    if method not in ("auto", "kron", "van_loan", "lyapunov"):
        raise ValueError(f"method must be 'auto', 'kron', 'van_loan' or 'lyapunov', got {method!r}")
    F = expm_t(A, ts)
    if method in ("auto", "kron"):
        G = _kron_cov(A, V, ts)
    elif method == "van_loan":
        G = van_loan(A, V, ts)[1]
    else:
        X = solve_lyapunov(A, V)
        G = X[None] - F @ X[None] @ np.swapaxes(F, -1, -2)
    G = 0.5 * (G + np.swapaxes(G, -1, -2))
    return (F[0], G[0]) if scalar else (F, G)


def chol_pack(L, off_scale: float = 1.0) -> np.ndarray:
    """Free vector of a lower-triangular ``L`` with positive diagonal (inverse of
    :func:`chol_unpack`).

    Notes
    -----
    Row-major lower triangle with ``log L_ii`` on the diagonal and ``L_ij / off_scale`` below
    it, so that ``L = chol_unpack(chol_pack(L, s), n, s)``; ``n (n + 1) / 2`` values.
    """
    L = np.array(L, float)
    n = L.shape[0]
    L[np.diag_indices(n)] = np.log(np.diag(L))
    L[np.tril(np.ones((n, n), bool), -1)] /= off_scale
    return L[np.tril_indices(n)]


def chol_unpack(raw, n: int, off_scale: float = 1.0) -> np.ndarray:
    """Lower-triangular ``L`` (positive diagonal) from a free vector of :func:`chol_pack`.

    Notes
    -----
    ``L_ii = exp(raw_ii)``, ``L_ij = off_scale raw_ij`` (``i > j``), zero above the diagonal:
    an unconstrained parameterisation of the Cholesky factor of ``V = L L'``.
    """
    L = np.zeros((n, n))
    L[np.tril_indices(n)] = raw
    L[np.tril(np.ones((n, n), bool), -1)] *= off_scale
    L[np.diag_indices(n)] = np.exp(np.diag(L))
    return L

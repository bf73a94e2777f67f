"""Bond-price loadings of a Gaussian affine model: the numerical kernels behind ``GaussianAffine``.

For ``dxi = (A* xi + a*) dt + Sigma dW*`` and ``r = delta0 + delta1' xi`` the zero-bond price is
``p(tau) = exp(-u(tau)' xi + v(tau))`` with ``du/dtau = A*' u + delta1`` and
``dv/dtau = -delta0 - a*' u + u' V u / 2``, ``u(0) = v(0) = 0``. Every quantity below follows from
three state-independent integrals, computed here for a whole vector of maturities at once:

* ``u(tau) = int_0^tau e^{s A*'} delta1 ds``,
* ``U1(tau) = int_0^tau u(s) ds`` (so ``v = -delta0 tau - a*' U1 + tr(V K) / 2``),
* ``K(tau) = int_0^tau u(s) u(s)' ds``.

Two routes, both exact in exact arithmetic:

``eigen``
    ``A*' = W diag(lam) W^-1``; the integrals are scalar functions of ``lam tau`` written with the
    phi-functions ``phi1(z) = (e^z - 1)/z``, ``phi2(z) = (e^z - 1 - z)/z^2`` and
    ``psi(x, y) = int_0^1 s^2 phi1(x s) phi1(y s) ds``, each evaluated without cancellation
    (power series near zero, rearranged closed forms elsewhere). Zero eigenvalues (the random-walk
    limit) are covered. Used when ``A*`` is diagonalisable with well-conditioned eigenvectors.
``expm``
    The integrals solve a linear ODE in the augmented state ``(u u', u, 1, q, U1)``; one matrix
    exponential of that augmented generator per maturity gives them exactly for any ``A*``,
    defective or singular. Its eigenvalues are ``lam_i + lam_j``, ``lam_i`` and 0, so for a stable
    ``A*`` nothing overflows at long maturities (unlike Van Loan's block exponential, which forms
    ``e^{-tau A*}``).

References
----------
Duffie, D. and Kan, R. (1996). A yield-factor model of interest rates. Math. Finance 6, 379-406.
Hochbruck, M. and Ostermann, A. (2010). Exponential integrators. Acta Numerica 19, 209-286.
Van Loan, C. (1978). Computing integrals involving the matrix exponential. IEEE TAC 23, 395-404.
"""

from __future__ import annotations

from math import factorial
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla

__all__ = ["LoadingParts", "phi1", "phi2", "psi", "parts_eigen", "parts_expm", "eigen_ok"]

_NSER = 18  # series terms: truncation error below 1/(NSER+1)! ~ 1e-17 for |z| <= 1
_FACT = np.array([float(factorial(k)) for k in range(_NSER + 3)])


class LoadingParts(NamedTuple):
    """State-independent integrals for a maturity vector of length ``k`` and ``n`` states.

    Attributes
    ----------
    u : ndarray (k, n)
        ``u(tau)``.
    U1 : ndarray (k, n)
        ``int_0^tau u(s) ds``.
    q : ndarray (k,)
        ``int_0^tau u(s)' V u(s) ds = tr(V K)``.
    K : ndarray (k, n, n) or None
        ``int_0^tau u(s) u(s)' ds`` when requested.
    """

    u: np.ndarray
    U1: np.ndarray
    q: np.ndarray
    K: np.ndarray | None


_COEF = {k: 1.0 / _FACT[k : _NSER + k] for k in (1, 2)}


def _powers(z: np.ndarray) -> np.ndarray:
    """``z^j`` for ``j = 0 .. NSER-1`` along a new last axis (cumulative product)."""
    P = np.empty(z.shape + (_NSER,), dtype=z.dtype)
    P[..., 0] = 1.0
    P[..., 1:] = z[..., None]
    return np.cumprod(P, axis=-1, out=P)


def _phi(z, k: int) -> np.ndarray:
    z = np.asarray(z)
    z = z.astype(np.result_type(z.dtype, float), copy=False)
    flat = z.ravel()
    out = np.empty(flat.shape, dtype=flat.dtype)
    small = np.abs(flat) < 1.0
    if small.any():  # power series sum_j z^j / (j + k)!
        out[small] = _powers(flat[small]) @ _COEF[k]
    big = ~small
    if big.any():
        zb = flat[big]
        em1 = np.exp(zb) - 1.0
        out[big] = em1 / zb if k == 1 else (em1 - zb) / (zb * zb)
    return out.reshape(z.shape)


def phi1(z) -> np.ndarray:
    """``phi1(z) = (e^z - 1)/z`` with ``phi1(0) = 1`` (real or complex), without cancellation."""
    return _phi(z, 1)


def phi2(z) -> np.ndarray:
    """``phi2(z) = (e^z - 1 - z)/z^2`` with ``phi2(0) = 1/2``, without cancellation."""
    return _phi(z, 2)


_PSI_C = 1.0 / (np.arange(_NSER)[:, None] + np.arange(_NSER)[None, :] + 3.0)
_PSI_F = 1.0 / _FACT[1 : _NSER + 1]


def psi(x, y) -> np.ndarray:
    """``psi(x, y) = int_0^1 s^2 phi1(x s) phi1(y s) ds`` (symmetric), without cancellation.

    Notes
    -----
    ``psi(x, y) = (phi1(x + y) - phi1(x) - phi1(y) + 1) / (x y)``. With ``|a| <= |b|`` the pair
    ``(a, b)`` is evaluated as

    * ``|b| <= 1``: the double series ``sum_{k,l} a^k b^l / ((k+1)! (l+1)! (k+l+3))``;
    * ``|a| >= 1/2``: the closed form above (no cancellation once both arguments are of order one);
    * otherwise ``(D - phi2(a)) / b`` with ``D = (e^b phi1(a) - phi1(b)) / (a + b)``, the closed
      form with the small divided difference ``(phi1(a + b) - phi1(b)) / a`` taken analytically.
    """
    x, y = np.asarray(x), np.asarray(y)
    dtype = np.result_type(x.dtype, y.dtype, float)
    x, y = np.broadcast_arrays(x.astype(dtype, copy=False), y.astype(dtype, copy=False))
    swap = np.abs(x) > np.abs(y)
    a = np.where(swap, y, x).ravel()
    b = np.where(swap, x, y).ravel()
    out = np.empty(a.shape, dtype=dtype)
    ser = np.abs(b) <= 1.0
    full = ~ser & (np.abs(a) >= 0.5)
    mixed = ~ser & ~full
    if ser.any():
        pa = _powers(a[ser]) * _PSI_F
        pb = _powers(b[ser]) * _PSI_F
        out[ser] = np.einsum("ik,kl,il->i", pa, _PSI_C, pb)
    if full.any():
        af, bf = a[full], b[full]
        out[full] = (phi1(af + bf) - phi1(af) - phi1(bf) + 1.0) / (af * bf)
    if mixed.any():
        am, bm = a[mixed], b[mixed]
        D = (np.exp(bm) * phi1(am) - phi1(bm)) / (am + bm)
        out[mixed] = (D - phi2(am)) / bm
    return out.reshape(x.shape)


def eigen_ok(A_star_T: np.ndarray, cond_max: float) -> tuple[bool, np.ndarray, np.ndarray]:
    """Eigen-decomposition of ``A*'`` and whether it is usable (finite, ``cond(W) <= cond_max``)."""
    lam, W = np.linalg.eig(A_star_T)
    ok = bool(np.all(np.isfinite(W)))
    if ok:
        with np.errstate(all="ignore"):
            c = np.linalg.cond(W)
        ok = bool(np.isfinite(c) and c <= cond_max)
    return ok, lam, W


def parts_eigen(lam: np.ndarray, W: np.ndarray, delta1: np.ndarray, V: np.ndarray, tau: np.ndarray,
                with_K: bool = False) -> LoadingParts:
    """Loadings integrals from ``A*' = W diag(lam) W^-1`` (see module notes).

    Notes
    -----
    With ``c = W^-1 delta1`` and ``x = lam tau``: ``u = W (tau phi1(x) c)``,
    ``U1 = W (tau^2 phi2(x) c)``, ``K = W (H o c c') W'`` with ``H_ij = tau^3 psi(x_i, x_j)``, and
    ``q = tr(V K) = sum_ij H_ij c_i c_j (W' V W)_ij``. Complex pairs give real results (imaginary
    parts are rounding and are dropped).
    """
    real = not np.iscomplexobj(lam) or bool(np.all(lam.imag == 0))
    if real:
        lam, W = lam.real, W.real
    c = np.linalg.solve(W, delta1)
    x = tau[:, None] * lam[None, :]  # (k, n)
    u = (tau[:, None] * phi1(x) * c) @ W.T
    U1 = (tau[:, None] ** 2 * phi2(x) * c) @ W.T
    H = tau[:, None, None] ** 3 * psi(x[:, :, None], x[:, None, :])  # (k, n, n)
    Hc = H * np.outer(c, c)
    q = np.einsum("kab,ab->k", Hc, W.T @ V @ W)
    K = None
    if with_K:
        K = np.einsum("ia,kab,jb->kij", W, Hc, W, optimize=True).real
        K = 0.5 * (K + np.swapaxes(K, -1, -2))
    return LoadingParts(np.real(u), np.real(U1), np.real(q), K)


def _sym_basis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``i <= j`` of the half-vectorisation and the basis matrices ``E_ij + E_ji``."""
    iu = np.triu_indices(n)
    B = np.zeros((len(iu[0]), n, n))
    for m, (i, j) in enumerate(zip(*iu, strict=True)):
        B[m, i, j] = B[m, j, i] = 1.0
    return iu, B


def _augmented_generator(
    A_star_T: np.ndarray, delta1: np.ndarray, V: np.ndarray, with_K: bool
) -> np.ndarray:
    """Generator of the linear ODE for ``s = (vech P, u, 1, q, U1[, vech K])`` with ``P = u u'``.

    ``dP = A*' P + P A* + delta1 u' + u delta1'``, ``du = A*' u + delta1``, ``d1 = 0``,
    ``dq = tr(V P)``, ``dU1 = u``, ``dK = P``. Built column by column from the (linear)
    right-hand side.
    """
    n = A_star_T.shape[0]
    iu, B = _sym_basis(n)
    h = len(iu[0])
    size = h + 2 * n + 2 + (h if with_K else 0)
    ip, iuu, i1, iq, iU = 0, h, h + n, h + n + 1, h + n + 2
    iK = h + 2 * n + 2
    M = np.zeros((size, size))
    for m in range(h):  # P = B[m]
        dP = A_star_T @ B[m] + B[m] @ A_star_T.T
        M[ip : ip + h, ip + m] = dP[iu]
        M[iq, ip + m] = np.sum(V * B[m])
        if with_K:
            M[iK + m, ip + m] = 1.0
    for m in range(n):  # u = e_m
        e = np.zeros(n)
        e[m] = 1.0
        dP = np.outer(delta1, e) + np.outer(e, delta1)
        M[ip : ip + h, iuu + m] = dP[iu]
        M[iuu : iuu + n, iuu + m] = A_star_T[:, m]
        M[iU + m, iuu + m] = 1.0
    M[iuu : iuu + n, i1] = delta1
    return M


def parts_expm(A_star_T: np.ndarray, delta1: np.ndarray, V: np.ndarray, tau: np.ndarray,
               with_K: bool = False) -> LoadingParts:
    """Loadings integrals from one augmented matrix exponential per maturity (any ``A*``).

    Notes
    -----
    Exact in exact arithmetic for every ``A*``; in floating point the error is that of
    :func:`scipy.linalg.expm` (scaling and squaring), which grows with the non-normality of ``A*``
    (``||A*|| tau`` far above ``max |eig(A*)| tau``). Realistic term-structure models are far from
    that regime; the sweep in the tests checks 1e-10 agreement with an ODE solver.
    """
    n = A_star_T.shape[0]
    iu, _ = _sym_basis(n)
    h = len(iu[0])
    M = _augmented_generator(A_star_T, delta1, V, with_K)
    col = h + n  # the state starts at s(0) = e_col (the constant 1)
    s = sla.expm(tau[:, None, None] * M[None])[:, :, col]
    u = s[:, h : h + n].copy()
    q = s[:, h + n + 1].copy()
    U1 = s[:, h + n + 2 : h + 2 * n + 2].copy()
    K = None
    if with_K:
        K = np.zeros((len(tau), n, n))
        K[:, iu[0], iu[1]] = s[:, h + 2 * n + 2 :]
        K[:, iu[1], iu[0]] = s[:, h + 2 * n + 2 :]
    return LoadingParts(u, U1, q, K)


# ---------------------------------------------------------------------- divided differences
_NTERM = 110
_FACT_BIG = np.array([float(factorial(k)) for k in range(_NTERM + 40)])


def _phi1_taylor_coeff(p: int, c: np.ndarray) -> np.ndarray:
    """``phi1^{(p)}(c) / p! = int_0^1 s^p e^{cs} ds / p!`` for real ``c``, without cancellation.

    Notes
    -----
    ``c <= 0``: ``e^c sum_i (-c)^i / (p+i+1)!`` (positive terms); ``c > 0``:
    ``sum_i c^i / (i! (p+i+1) p!)`` (positive terms); ``|c| > 30``: the upward recursion
    ``J_p = (e^c - p J_{p-1}) / c``, ``J_0 = phi1(c)``, stable for ``|c| > p``.
    """
    c = np.asarray(c, dtype=float)
    out = np.empty_like(c)
    big = np.abs(c) > 30.0
    neg = ~big & (c <= 0)
    pos = ~big & (c > 0)
    i = np.arange(_NTERM)
    if neg.any():
        cn = -c[neg, None]
        terms = np.exp(i * np.log(np.where(cn > 0, cn, 1.0)) - np.log(_FACT_BIG[p + 1 + i]))
        terms = np.where(cn > 0, terms, (i == 0) / _FACT_BIG[p + 1])
        out[neg] = np.exp(c[neg]) * terms.sum(axis=1)
    if pos.any():
        cp = c[pos, None]
        terms = np.exp(i * np.log(cp) - np.log(_FACT_BIG[i]) - np.log(p + i + 1.0))
        out[pos] = terms.sum(axis=1) / _FACT_BIG[p]
    if big.any():
        cb = c[big]
        J = phi1(cb).real
        for q in range(1, p + 1):
            J = (np.exp(cb) - q * J) / cb
        out[big] = J / _FACT_BIG[p]
    return out


def _complete_homogeneous(d: list[np.ndarray], kmax: int) -> list[np.ndarray]:
    """``h_k(d_0, ..., d_m)`` for ``k = 0..kmax`` (complete homogeneous symmetric polynomials)."""
    H = [d[0] ** k for k in range(kmax + 1)]
    for x in d[1:]:
        new = [H[0]]
        for k in range(1, kmax + 1):
            new.append(H[k] + x * new[k - 1])
        H = new
    return H


def _phi1_dd_cluster(z: list[np.ndarray]) -> np.ndarray:
    """Divided difference of ``phi1`` at close nodes: Taylor series about their mean.

    ``g[z_0..z_m] = sum_k g^{(m+k)}(c)/(m+k)! h_k(z_0 - c, ..., z_m - c)``.
    """
    m = len(z) - 1
    c = sum(z) / len(z)
    d = [zi - c for zi in z]
    kmax = 24
    H = _complete_homogeneous(d, kmax)
    return sum(_phi1_taylor_coeff(m + k, c) * H[k] for k in range(kmax + 1))


def phi1_divdiff(*z) -> np.ndarray:
    """Divided difference ``phi1[z_0, ..., z_m]`` (m <= 2) at real nodes, exact for coincident ones.

    Notes
    -----
    Nodes within distance 1 of each other use the Taylor series about their mean (confluent nodes
    give derivatives, so repeated eigenvalues need no special case); otherwise the recurrence
    ``g[z_0..z_m] = (g[z_1..z_m] - g[z_0..z_{m-1}]) / (z_m - z_0)`` divides by the largest gap.
    """
    z = [np.asarray(zi, dtype=float) for zi in np.broadcast_arrays(*z)]
    m = len(z) - 1
    if m == 0:
        return phi1(z[0]).real
    if m > 2:
        raise ValueError("phi1_divdiff supports at most three nodes")
    stack = np.stack(z)
    spread = stack.max(axis=0) - stack.min(axis=0)
    out = np.empty(spread.shape)
    close = spread <= 1.0
    if close.any():
        out[close] = _phi1_dd_cluster([zi[close] for zi in z])
    far = ~close
    if far.any():
        zf = np.sort(stack[:, far], axis=0)  # the extreme nodes carry the largest gap
        if m == 1:
            out[far] = (phi1(zf[1]).real - phi1(zf[0]).real) / (zf[1] - zf[0])
        else:
            right = phi1_divdiff(zf[1], zf[2])
            left = phi1_divdiff(zf[0], zf[1])
            out[far] = (right - left) / (zf[2] - zf[0])
    return out

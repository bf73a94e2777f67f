r"""The Gibbs sweeps of the continuous spike-and-slab SDF over one batch of moment draws.

Two implementations of one function, :func:`sweep_batch` (same inputs, same outputs up to
rounding): a numpy one vectorised over chains, and a numba-compiled one (numba ships with the
PyMC stack; compiled on first use and cached on disk) that runs the scalar loops, about two
orders of magnitude faster on small problems. Every random number is drawn beforehand by the
caller (per chain, from the chain's generator), so the draws do not depend on the engine.

One sweep (see :func:`bayesbond.pricing.sdf_kernels.continuous_ss`, Notes, for the formulas):
``lambda | gamma, sigma2`` jointly; then for each factor the blocked update
``(gamma_j, lambda_j) | lambda_{-j}, sigma2, omega`` with ``lambda_j`` integrated out of the
``gamma_j`` step; then ``omega | gamma`` and ``sigma2 | lambda, gamma``.

Arrays (``B`` moment draws, ``S = B * sweeps`` sweeps, ``C`` chains, ``k1 = n0 + K``):
``G0 (B, C, k1, k1)``, ``g (B, C, k1)``, ``c (B, C)``; random numbers ``z (S, C, k1)``
standard normal, ``u (S, C, K)`` uniform, ``zs (S, C, K)`` standard normal, ``w1, w0 (S, C,
K)`` Beta(aw + 1, bw) and Beta(aw, bw + 1), ``e (S, C)`` Gamma((N + k1) / 2 + a0, 1);
``s2_b0`` the scale ``b0`` of an inverse-gamma prior of ``sigma2`` (0 with ``a0 = 0``: the
Jeffreys prior); state
``gamma (C, K)`` bool, ``omega (C, K)``, ``sigma2 (C,)`` (updated in place); outputs of the last
sweep per moment draw ``lam (B, C, k1)``, ``gam (B, C, K)``, ``om (B, C, K)``, ``s2 (B, C)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

__all__ = ["sweep_batch", "sweep_batch_numpy", "numba_available"]

_NUMBA = {}


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def sweep_batch(*args, engine: str = "auto"):
    """Run :func:`sweep_batch_numpy` or its numba twin (``engine="auto"``: numba if present)."""
    if engine == "numpy" or (engine == "auto" and not numba_available()):
        return sweep_batch_numpy(*args)
    if "fn" not in _NUMBA:
        import numba

        _NUMBA["fn"] = numba.njit(cache=True, nogil=True)(_sweep_batch_loops)
    return _NUMBA["fn"](*args)


# ------------------------------------------------------------------------------ numpy engine
def sweep_batch_numpy(G0, g, c, z, u, zs, w1, w0, e, gamma, omega, sigma2, psi, r, d_c, n0,
                      sweeps, s2_b0, lam_out, gam_out, om_out, s2_out):
    """The sweeps vectorised over chains (module docstring for the arrays)."""
    chains, K = gamma.shape
    k1 = n0 + K
    eye = np.arange(k1)
    d = np.empty((chains, k1))
    d[:, :n0] = d_c
    g_state, o_state, s_state = gamma.copy(), omega.copy(), sigma2.copy()
    for t in range(z.shape[0]):
        i = t // sweeps
        d[:, n0:] = 1.0 / (np.where(g_state, 1.0, r) * psi)
        P = G0[i].copy()
        P[:, eye, eye] += d
        s = np.sqrt(P[:, eye, eye])
        Linv = np.linalg.inv(np.linalg.cholesky(P / (s[:, :, None] * s[:, None, :])))
        v = np.einsum("cij,cj->ci", Linv, g[i] / s) + np.sqrt(s_state)[:, None] * z[t]
        lam = np.einsum("cji,cj->ci", Linv, v) / s
        g_state, lam = _collapsed_numpy(g_state, lam, o_state, s_state, G0[i], g[i], psi, r, n0,
                                        u[t], zs[t])
        o_state = np.where(g_state, w1[t], w0[t])
        d[:, n0:] = 1.0 / (np.where(g_state, 1.0, r) * psi)
        ssr = (c[i] - 2 * np.einsum("ci,ci->c", lam, g[i])
               + np.einsum("ci,cij,cj->c", lam, G0[i], lam))
        pen = np.einsum("ci,ci->c", d * lam, lam)
        s_state = (0.5 * (np.maximum(ssr, 0.0) + pen) + s2_b0) / e[t]
        lam_out[i], gam_out[i], om_out[i], s2_out[i] = lam, g_state, o_state, s_state
    gamma[:], omega[:], sigma2[:] = g_state, o_state, s_state


def _collapsed_numpy(gamma, lam, omega, sigma2, G0, g, psi, r, n0, u, z):
    lam = lam.copy()
    gamma = gamma.copy()
    Glam = np.einsum("cij,cj->ci", G0, lam)
    logit_w = np.log(omega) - np.log1p(-omega)
    for j in range(psi.size):
        k = n0 + j
        gkk = G0[:, k, k]
        xe = g[:, k] - Glam[:, k] + gkk * lam[:, k]   # x_k' (a - X_{-k} lambda_{-k})
        v1, v0 = psi[j], r * psi[j]
        q1, q0 = 1.0 + v1 * gkk, 1.0 + v0 * gkk
        lo = (logit_w[:, j] - 0.5 * np.log(q1 / q0)
              + xe**2 / (2.0 * sigma2) * (v1 / q1 - v0 / q0))
        gamma[:, j] = u[:, j] < expit(lo)
        prec = gkk + 1.0 / np.where(gamma[:, j], v1, v0)
        new = xe / prec + np.sqrt(sigma2 / prec) * z[:, j]
        Glam += G0[:, :, k] * (new - lam[:, k])[:, None]
        lam[:, k] = new
    return gamma, lam


# ------------------------------------------------------------------------------ numba engine
def _sweep_batch_loops(G0, g, c, z, u, zs, w1, w0, e, gamma, omega, sigma2, psi, r, d_c, n0,
                       sweeps, s2_b0, lam_out, gam_out, om_out, s2_out):
    """The sweeps as scalar loops (compiled by numba; runs as plain Python too)."""
    chains, K = gamma.shape
    k1 = n0 + K
    d = np.empty(k1)
    P = np.empty((k1, k1))
    L = np.empty((k1, k1))
    s = np.empty(k1)
    v = np.empty(k1)
    lam = np.empty(k1)
    Glam = np.empty(k1)
    for ch in range(chains):
        for t in range(z.shape[0]):
            i = t // sweeps
            A = G0[i, ch]
            b = g[i, ch]
            s2 = sigma2[ch]
            for k in range(k1):
                d[k] = d_c if k < n0 else 1.0 / ((1.0 if gamma[ch, k - n0] else r) * psi[k - n0])
            for k in range(k1):
                s[k] = np.sqrt(A[k, k] + d[k])
            for a_ in range(k1):
                for b_ in range(k1):
                    P[a_, b_] = (A[a_, b_] + (d[a_] if a_ == b_ else 0.0)) / (s[a_] * s[b_])
            # Cholesky P = L L' (lower)
            for a_ in range(k1):
                for b_ in range(a_ + 1):
                    acc = P[a_, b_]
                    for m in range(b_):
                        acc -= L[a_, m] * L[b_, m]
                    if a_ == b_:
                        L[a_, a_] = np.sqrt(acc)
                    else:
                        L[a_, b_] = acc / L[b_, b_]
                for b_ in range(a_ + 1, k1):
                    L[a_, b_] = 0.0
            # v = L^{-1} (b / s) + sqrt(s2) z ; lam = L^{-T} v / s
            sq = np.sqrt(s2)
            for a_ in range(k1):
                acc = b[a_] / s[a_]
                for m in range(a_):
                    acc -= L[a_, m] * v[m]
                v[a_] = acc / L[a_, a_]
            for a_ in range(k1):
                v[a_] += sq * z[t, ch, a_]
            for a_ in range(k1 - 1, -1, -1):
                acc = v[a_]
                for m in range(a_ + 1, k1):
                    acc -= L[m, a_] * lam[m]
                lam[a_] = acc / L[a_, a_]
            for a_ in range(k1):
                lam[a_] /= s[a_]
            # blocked single-site (gamma_j, lambda_j)
            for a_ in range(k1):
                acc = 0.0
                for m in range(k1):
                    acc += A[a_, m] * lam[m]
                Glam[a_] = acc
            for j in range(K):
                k = n0 + j
                w = omega[ch, j]
                gkk = A[k, k]
                xe = b[k] - Glam[k] + gkk * lam[k]
                v1 = psi[j]
                v0 = r * psi[j]
                q1 = 1.0 + v1 * gkk
                q0 = 1.0 + v0 * gkk
                lo = (np.log(w) - np.log1p(-w) - 0.5 * np.log(q1 / q0)
                      + xe * xe / (2.0 * s2) * (v1 / q1 - v0 / q0))
                # u < expit(lo), computed without overflow
                if lo >= 0:
                    inc = u[t, ch, j] < 1.0 / (1.0 + np.exp(-lo))
                else:
                    el = np.exp(lo)
                    inc = u[t, ch, j] < el / (1.0 + el)
                gamma[ch, j] = inc
                prec = gkk + 1.0 / (v1 if inc else v0)
                new = xe / prec + np.sqrt(s2 / prec) * zs[t, ch, j]
                delta = new - lam[k]
                for m in range(k1):
                    Glam[m] += A[m, k] * delta
                lam[k] = new
            for j in range(K):
                omega[ch, j] = w1[t, ch, j] if gamma[ch, j] else w0[t, ch, j]
            ssr = c[i, ch]
            pen = 0.0
            for a_ in range(k1):
                ssr += lam[a_] * (Glam[a_] - 2.0 * b[a_])
                if a_ < n0:
                    pen += d_c * lam[a_] * lam[a_]
                else:
                    pen += lam[a_] * lam[a_] / ((1.0 if gamma[ch, a_ - n0] else r)
                                                * psi[a_ - n0])
            s2 = (0.5 * (max(ssr, 0.0) + pen) + s2_b0) / e[t, ch]
            sigma2[ch] = s2
            if (t + 1) % sweeps == 0:
                for a_ in range(k1):
                    lam_out[i, ch, a_] = lam[a_]
                for j in range(K):
                    gam_out[i, ch, j] = gamma[ch, j]
                    om_out[i, ch, j] = omega[ch, j]
                s2_out[i, ch] = s2

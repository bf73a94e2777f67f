"""The Kalman log-likelihood of a fully observed, time-invariant model as one compiled loop.

:func:`bayesbond.core.kalman.kalman_loglik` calls :func:`loglik_full` when every observation is
present and numba (a dependency of PyTensor) is importable; it is the same recursion as
:func:`bayesbond.core.kalman.kalman_filter` (information form, gain frozen once the predicted
covariance settles), written as scalar loops over the small state and measurement dimensions so
that a call costs microseconds per date instead of numpy's per-call overhead.
"""

from __future__ import annotations

import numpy as np

__all__ = ["available", "loglik_full"]

_LOG2PI = float(np.log(2.0 * np.pi))
_KERNEL = []


def available() -> bool:
    """Whether numba can be imported (the kernel compiles on first use, cached on disk)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _build():
    import numba

    @numba.njit(cache=True, nogil=True)
    def kernel(yc, Phi, c, Q, Z, h, x0, P0, steady_tol):
        T, p = yc.shape
        n = Phi.shape[0]
        M = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                s = 0.0
                for k in range(p):
                    s += Z[k, i] * Z[k, j] / h[k]
                M[i, j] = s
        Zh = np.empty((p, n))
        for k in range(p):
            for i in range(n):
                Zh[k, i] = Z[k, i] / h[k]
        logdetH = 0.0
        for k in range(p):
            logdetH += np.log(h[k])
        eye = np.eye(n)
        x = x0.copy()
        Pp = P0.copy()
        Pf = np.zeros((n, n))
        ldW = 0.0
        frozen = False
        total = 0.0
        b = np.zeros(n)
        g = np.zeros(n)
        v = np.zeros(p)
        r = np.zeros(n)
        xf = np.zeros(n)
        for t in range(T):
            if not frozen:
                L = np.linalg.cholesky(Pp)
                Wm = eye + L.T @ M @ L
                R = np.linalg.cholesky(Wm)
                S = L @ np.linalg.inv(R).T
                Pf = S @ S.T
                ldW = 0.0
                for i in range(n):
                    ldW += 2.0 * np.log(R[i, i])
            # innovation at the prediction, information vectors
            q = 0.0
            for k in range(p):
                s = yc[t, k]
                for i in range(n):
                    s -= Z[k, i] * x[i]
                v[k] = s
                q += s * s / h[k]
            for i in range(n):
                sb, sg = 0.0, 0.0
                for k in range(p):
                    sb += Zh[k, i] * yc[t, k]
                    sg += Zh[k, i] * v[k]
                b[i] = sb
                g[i] = sg
            gPg = 0.0
            for i in range(n):
                for j in range(n):
                    gPg += g[i] * Pf[i, j] * g[j]
            total += -0.5 * (p * _LOG2PI + logdetH + ldW + q - gPg)
            # update, then predict (scalar loops: no temporaries)
            for i in range(n):
                s = b[i]
                for j in range(n):
                    s -= M[i, j] * x[j]
                r[i] = s
            for i in range(n):
                s = x[i]
                for j in range(n):
                    s += Pf[i, j] * r[j]
                xf[i] = s
            for i in range(n):
                s = c[i]
                for j in range(n):
                    s += Phi[i, j] * xf[j]
                x[i] = s
            if not frozen:
                Pn = Phi @ Pf @ Phi.T + Q
                Pn = 0.5 * (Pn + Pn.T)
                diff, big = 0.0, 0.0
                for i in range(n):
                    for j in range(n):
                        diff = max(diff, abs(Pn[i, j] - Pp[i, j]))
                        big = max(big, abs(Pn[i, j]))
                Pp = Pn
                if t + 1 < T and diff <= steady_tol * big:
                    L = np.linalg.cholesky(Pp)
                    Wm = eye + L.T @ M @ L
                    R = np.linalg.cholesky(Wm)
                    S = L @ np.linalg.inv(R).T
                    Pf = S @ S.T
                    ldW = 0.0
                    for i in range(n):
                        ldW += 2.0 * np.log(R[i, i])
                    frozen = True
        return total

    return kernel


def loglik_full(yc, Phi, c, Q, Z, h, x0, P0, steady_tol: float = 1e-11) -> float:
    r"""Log-likelihood of ``y - d`` (``yc``, every value observed) under the transition
    ``x[t+1] = c + Phi x[t] + N(0, Q)`` and ``y[t] - d = Z x[t] + N(0, diag h)``.

    Raises
    ------
    numpy.linalg.LinAlgError
        A predicted covariance is not positive definite (the caller falls back to the numpy
        filter, which handles singular ones).

    Notes
    -----
    As :func:`bayesbond.core.kalman.kalman_filter`: ``P_t = L L'``, ``W = I + L'ML``
    (``M = Z'H^{-1}Z``), ``P_filt = L W^{-1} L'``, ``log det F_t = log det H + log det W`` and
    ``v'F^{-1}v = v'H^{-1}v - g'P_filt g``, ``g = Z'H^{-1}v``; the gain is frozen at the first
    step whose predicted covariance moved by at most ``steady_tol`` (relative, max norm).
    """
    if not _KERNEL:
        _KERNEL.append(_build())
    return float(_KERNEL[0](np.ascontiguousarray(yc, float), np.ascontiguousarray(Phi, float),
                            np.ascontiguousarray(c, float), np.ascontiguousarray(Q, float),
                            np.ascontiguousarray(Z, float), np.ascontiguousarray(h, float),
                            np.ascontiguousarray(x0, float), np.ascontiguousarray(P0, float),
                            float(steady_tol)))

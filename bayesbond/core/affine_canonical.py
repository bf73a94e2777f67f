"""Canonical (Joslin-Singleton-Zhu) form of the Gaussian affine term-structure model.

The algebra is written once for a generic array namespace ``xp`` (``numpy`` or
``pytensor.tensor``), so the ML estimator (:mod:`bayesbond.baselines.affine_ml`) and the PyMC model
(:mod:`bayesbond.bayes.affine_model`) evaluate the same formulas.

Identification (JSZ 2011, Proposition 1 and its real-Jordan extension, in continuous time)
-----------------------------------------------------------------------------------------
A latent state ``X`` with short rate ``r = delta_X' X`` and risk-neutral dynamics
``dX = (G X + k_inf e1) dt + Sigma_X dW*`` is rotated to the observable portfolios ``P = W y`` of
the yields (``W``: fixed ``n x p`` weights, by default the first principal components). ``G`` is
in real canonical form, block diagonal:

* ``n - 2`` real eigenvalues ``0 > lam_1 > lam_2 > ...`` (1 x 1 blocks, ``delta_X = 1``) -- all
  ``n`` of them when ``n <= 2``;
* for ``n >= 3`` the two fastest eigenvalues form the block ``[[m, 1], [D, m]]`` (``delta_X =
  (1, 0)``), eigenvalues ``m +- sqrt(D)``: real and distinct (``D > 0``), repeated (``D = 0``,
  Jordan block) or complex (``D < 0``). The parameterisation ``m = lam_{n-2} - g``,
  ``D = g^2 - h`` (``g, h > 0``) keeps every eigenvalue real part below ``lam_{n-2}``, so the
  ordering (hence the labelling) is unique and the dynamics are stable under P*. Real fits often sit
  at repeated or complex eigenvalues, where the distinct-real form of JSZ has no interior optimum.

In the ``P`` coordinates every parameter is then unique: under P*, ``lam`` (plus ``g, h``),
``k_inf``
and ``Sigma`` (lower triangular, positive diagonal: ``V = Sigma Sigma'`` is the covariance of the
portfolio innovations); under P, ``A`` and ``a`` are unrestricted.

Loadings in the latent coordinates
----------------------------------
``u(tau) = int_0^tau e^{s G'} delta_X ds`` in closed form: ``u_i = tau phi1(lam_i tau)`` for a real
eigenvalue (``phi1(z) = (e^z - 1)/z``) and, for the block,
``u/tau = ((e^{m tau}(m C - D S) - m), (e^{m tau}(m S - C) + 1)) / ((m^2 - D) tau)`` with
``C = cosh(sqrt(D) tau)``, ``S = sinh(sqrt(D) tau)/sqrt(D)`` (``cos``/``sin`` for ``D < 0``,
entire in ``D``). ``int_0^tau u_1 = tau^2 phi2(lam_1 tau)``, ``phi2(z) = (e^z - 1 - z)/z^2``.
The convexity term ``q(tau) = int_0^tau u' V_X u ds`` is exact with numpy (the closed forms of
:mod:`bayesbond.core.affine_loadings`, or its augmented matrix exponential at the defective block
``D = 0``); with PyTensor it uses composite Gauss-Legendre quadrature on panels of at most half
a year (:func:`composite_rule`; 16 nodes each), accurate to about 1e-13 relative for oscillations
up to 20 radians a year (one 48-node rule over ``[0, tau]`` was off by 1 bp at 10 years for
``-0.1 +- 10i``).
``v(tau) = -k_inf int u_1 + tr(V_X K)/2`` and ``y(tau) = (u'X - v)/tau`` (Duffie and Kan 1996;
REFERENCES.md).

Rotation: ``B = [u(tau)/tau]`` (p x n), ``a_y = -v/tau``, ``T = W B``; ``X = T^-1 (P - W a_y)``,
``y = d + Z P`` with ``Z = B T^-1``, ``d = (I - Z W) a_y``; ``A* = T G T^-1``,
``a* = k_inf T e1 - A* W a_y``, ``delta1 = T^-T delta_X``, ``delta0 = -delta1' W a_y``,
``V_X = T^-1 V T^-T``.

References
----------
Joslin, S., Singleton, K. J. and Zhu, H. (2011), "A new perspective on Gaussian dynamic term
structure models", Review of Financial Studies 24(3), 926-970.
Duffie, D. and Kan, R. (1996), "A yield-factor model of interest rates", Mathematical Finance 6.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bayesbond.core.affine_loadings import eigen_ok, parts_eigen, parts_expm
from bayesbond.errors import DataError

__all__ = ["Canonical", "Eigen", "canonical", "eigen_from_raw", "eigen_to_raw", "latent_loadings",
           "pca_weights"]

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
_PANEL = 0.5  # years: the longest panel of the composite rule (PyTensor path)
_SMALL = 1e-6
_COND_MAX = 1e3  # eigenvector conditioning above which the exact convexity uses the expm route


class Canonical(NamedTuple):
    """The canonical model in the portfolio coordinates (arrays of the namespace used)."""

    Z: object  # (p, n) yield loadings on the portfolios
    d: object  # (p,) yield intercepts
    A_star: object  # (n, n)
    a_star: object  # (n,)
    delta0: object  # scalar
    delta1: object  # (n,)
    T: object  # (n, n) = W B
    B: object  # (p, n) latent yield loadings


class Eigen(NamedTuple):
    """Risk-neutral eigen-structure: real eigenvalues ``lam``; for n >= 3 the block ``(m, D)``."""

    lam: object
    m: object
    D: object


def _xp_solve(xp):
    if xp is np:
        return np.linalg.solve
    import pytensor.tensor as pt

    return pt.linalg.solve


def _phi1(xp, z):
    return xp.expm1(z) / z


def _phi2(xp, z):
    return (xp.expm1(z) - z) / (z * z)


def n_real(n: int) -> int:
    """Number of 1 x 1 (real-eigenvalue) blocks for ``n`` factors."""
    return n if n <= 2 else n - 2


def eigen_from_raw(xp, raw, n: int) -> Eigen:
    """Map ``n`` unconstrained numbers to the ordered eigen-structure (see module notes)."""
    k = n_real(n)
    lam = -xp.cumsum(xp.exp(raw[:k]))
    if n <= 2:
        return Eigen(lam, None, None)
    g = xp.exp(raw[k])
    m = lam[k - 1] - g
    D = g * g - xp.exp(raw[k + 1])
    return Eigen(lam, m, D)


def eigen_to_raw(lam, m=None, D=None) -> np.ndarray:
    """Inverse of :func:`eigen_from_raw` (numpy)."""
    lam = np.asarray(lam, float)
    steps = -np.diff(np.r_[0.0, lam])
    raw = list(np.log(steps))
    if m is not None:
        g = lam[-1] - m
        h = g * g - D
        if g <= 0 or h <= 0:
            raise ValueError(f"block (m={m}, D={D}) is not below lam={lam[-1]}")
        raw += [np.log(g), np.log(h)]
    return np.asarray(raw)


def eigenvalues(eig: Eigen) -> np.ndarray:
    """All eigenvalues of ``A*`` (complex array, numpy)."""
    lam = np.asarray(eig.lam, float)
    if eig.m is None:
        return lam.astype(complex)
    r = np.sqrt(complex(eig.D))
    return np.r_[lam, eig.m + r, eig.m - r]


def _cosh_sinh(xp, x):
    """``cosh(sqrt(x))`` and ``sinh(sqrt(x))/sqrt(x)`` (``cos``, ``sin`` for ``x < 0``), entire."""
    pos = xp.sqrt(xp.maximum(x, _SMALL))
    neg = xp.sqrt(xp.maximum(-x, _SMALL))
    small = abs(x) < _SMALL
    ser_c = 1.0 + x / 2.0 + x * x / 24.0
    ser_s = 1.0 + x / 6.0 + x * x / 120.0
    where = xp.where if xp is np else _pt_switch()
    C = where(small, ser_c, where(x > 0, xp.cosh(pos), xp.cos(neg)))
    S = where(small, ser_s, where(x > 0, xp.sinh(pos) / pos, xp.sin(neg) / neg))
    return C, S


def _pt_switch():
    import pytensor.tensor as pt

    return pt.switch


def _latent_B(xp, eig: Eigen, t, n: int):
    """``u(t)/t`` for an array of horizons ``t`` (any shape): shape ``t.shape + (n,)``."""
    cols = [_phi1(xp, eig.lam[i] * t) for i in range(n_real(n))]
    if eig.m is not None:
        m, D = eig.m, eig.D
        C, S = _cosh_sinh(xp, D * t * t)
        S = S * t
        em = xp.exp(m * t)
        den = (m * m - D) * t
        cols.append((em * (m * C - D * S) - m) / den)
        cols.append((em * (m * S - C) + 1.0) / den)
    return xp.stack(cols, axis=-1)


def latent_drift(xp, eig: Eigen, n: int):
    """Latent ``G`` (n x n) and short-rate loading ``delta_X`` (numpy for delta_X)."""
    k = n_real(n)
    delta = np.ones(n)
    if n <= 2:
        return xp.diag(eig.lam) if xp is np else _pt_diag(eig.lam), delta
    delta[-1] = 0.0
    if xp is np:
        G = np.zeros((n, n))
        G[:k, :k] = np.diag(eig.lam)
        G[k:, k:] = [[eig.m, 1.0], [eig.D, eig.m]]
        return G, delta
    import pytensor.tensor as pt

    G = pt.zeros((n, n))
    G = pt.set_subtensor(G[:k, :k], pt.diag(eig.lam))
    G = pt.set_subtensor(G[k, k], eig.m)
    G = pt.set_subtensor(G[k, k + 1], 1.0)
    G = pt.set_subtensor(G[k + 1, k], eig.D)
    G = pt.set_subtensor(G[k + 1, k + 1], eig.m)
    return G, delta


def _pt_diag(v):
    import pytensor.tensor as pt

    return pt.diag(v)


def latent_loadings(xp, eig: Eigen, k_inf, V_X, tau, n: int):
    """Latent yield loadings ``B`` (p, n) and intercepts ``a_y`` (p,) of the canonical model.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``pytensor.tensor``.
    eig : Eigen
        Risk-neutral eigen-structure.
    k_inf : scalar, drift of the first latent factor under P*.
    V_X : (n, n) latent instantaneous covariance (``None``: no convexity term).
    tau : (p,) maturities in years (numpy).
    n : int, number of factors.
    """
    tau = np.asarray(tau, dtype=float)
    B = _latent_B(xp, eig, tau, n)
    I1 = tau**2 * _phi2(xp, eig.lam[0] * tau)
    v = -k_inf * I1
    if V_X is not None and xp is np:
        v = v + 0.5 * _convexity_exact(eig, V_X, tau, n)
    elif V_X is not None:
        s, Wq = composite_rule(tau)
        U = _latent_B(xp, eig, s, n) * s[:, None]  # u(s): (N, n)
        f = (U * xp.dot(U, V_X)).sum(axis=1)  # u'V_X u at the nodes
        v = v + 0.5 * xp.dot(Wq, f)
    return B, -v / tau


def composite_rule(tau, panel: float = _PANEL):
    """Nodes ``s`` (N,) and weights ``Wq`` (p, N) with ``Wq @ f(s) ~ int_0^tau_j f``.

    Composite 16-point Gauss-Legendre on panels of at most ``panel`` years whose breakpoints
    include every maturity, so all maturities share the nodes. For ``f = u'V u`` with oscillation
    frequency ``w`` (``|Im eig(A*)|``) the error per panel is about
    ``(w panel)^32 / 32!`` (Davis and Rabinowitz 1984, sec. 2.7): below 1e-13 relative for
    ``w <= 20`` a year. Used by the PyTensor path only (the numpy path is exact).
    """
    tau = np.asarray(tau, dtype=float)
    edges = [0.0]
    for t in np.unique(tau):
        m = max(1, int(np.ceil((t - edges[-1]) / panel - 1e-12)))
        edges.extend(np.linspace(edges[-1], t, m + 1)[1:])
    edges = np.asarray(edges)
    a, b = edges[:-1], edges[1:]
    s = (0.5 * (a + b)[:, None] + 0.5 * (b - a)[:, None] * _GL_NODES[None, :]).ravel()
    w = (0.5 * (b - a)[:, None] * _GL_WEIGHTS[None, :]).ravel()
    Wq = np.where(s[None, :] < tau[:, None], w[None, :], 0.0)
    return s, Wq


def _convexity_exact(eig: Eigen, V_X, tau, n: int) -> np.ndarray:
    """``q(tau) = int_0^tau u' V_X u ds`` exactly (numpy), from the core's loadings kernels.

    The latent model is an affine model with ``A*' = G'`` and ``delta1 = delta_X``, so ``q`` is
    :attr:`bayesbond.core.affine_loadings.LoadingParts.q`: the eigen route (closed forms in
    ``phi1``/``psi``, complex pairs included) when the eigenvectors of ``G`` are well conditioned,
    else the augmented matrix exponential (exact for the repeated, defective block ``D = 0``).
    """
    G, delta_X = latent_drift(np, eig, n)
    V_X = np.asarray(V_X, dtype=float)
    ok, lam, Wv = eigen_ok(G.T, _COND_MAX)
    if ok:
        return parts_eigen(lam, Wv, delta_X, V_X, tau).q
    return parts_expm(G.T, delta_X, V_X, tau).q


def canonical(xp, eig: Eigen, k_inf, V, W, tau, n: int | None = None) -> Canonical:
    """Map the canonical parameters to the portfolio-coordinate model (see module notes).

    Parameters
    ----------
    xp : module
    eig : Eigen
        Ordered risk-neutral eigen-structure (:func:`eigen_from_raw`).
    k_inf : scalar.
    V : (n, n) covariance ``Sigma Sigma'`` of the portfolio innovations.
    W : (n, p) portfolio weights (numpy, or a PyTensor variable when ``n`` is given).
    tau : (p,) maturities in years (numpy).
    n : int, optional
        Number of factors (default ``W.shape[0]`` of a numpy ``W``).
    """
    solve = _xp_solve(xp)
    if n is None:
        W = np.asarray(W, dtype=float)
        n = W.shape[0]
    B, _ = latent_loadings(xp, eig, k_inf, None, tau, n)
    T = xp.dot(W, B)
    V_X = solve(T, solve(T, V).T).T  # T^-1 V T^-T
    V_X = 0.5 * (V_X + V_X.T)
    _, a_y = latent_loadings(xp, eig, k_inf, V_X, tau, n)
    Z = solve(T.T, B.T).T  # B T^-1
    Way = xp.dot(W, a_y)
    d = a_y - xp.dot(Z, Way)
    G, delta_X = latent_drift(xp, eig, n)
    A_star = solve(T.T, xp.dot(T, G).T).T  # T G T^-1
    a_star = k_inf * T[:, 0] - xp.dot(A_star, Way)
    delta1 = solve(T.T, delta_X)
    delta0 = -xp.dot(delta1, Way)
    return Canonical(Z, d, A_star, a_star, delta0, delta1, T, B)


def pca_weights(Y, n: int) -> np.ndarray:
    """First ``n`` principal-component weights (n, p) of the yields, orthonormal rows.

    Signs are fixed so that every row has a positive weight on the longest maturity (the level
    factor then has all-positive weights).
    """
    Y = np.asarray(Y, dtype=float)
    if np.isnan(Y).any():
        rows = ~np.isnan(Y).any(axis=1)
        Y = Y[rows]
    if Y.shape[0] <= n:
        raise DataError(f"need more than {n} complete dates to compute {n} principal components")
    C = np.cov(Y, rowvar=False)
    w, U = np.linalg.eigh(C)
    Wt = U[:, ::-1][:, :n].T
    Wt = Wt * np.where(Wt[:, -1:] < 0, -1.0, 1.0)
    return np.ascontiguousarray(Wt)

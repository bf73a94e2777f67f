"""Gaussian likelihoods of the factor regression from per-bond sufficient statistics.

Two forms, each written once in numpy (reference, post-processing) and once in PyTensor (sampling):

* conditional: ``log p(y_b | theta_b, sigma_b)`` from ``(XtX_b, Xty_b, yty_b, n_b)``;
* collapsed: ``theta = m + S w`` with ``w ~ N(0, I_p)`` integrated out exactly, so the sampler
  only sees the hyper-parameters and the residual scales; ``theta`` is drawn afterwards from its
  exact conditional posterior (:func:`draw_theta`), which gives draws from the joint posterior.

Notes
-----
Let ``r = y - X m`` (so ``r'r = yty - 2 m'Xty + m'XtX m`` and ``X'r = Xty - XtX m``),
``Q = S'XtX S / sigma^2`` and ``c = S'X'r / sigma^2``. Completing the square in ``w``,

    log p(y | m, S, sigma) = -n/2 log(2 pi sigma^2) - r'r / (2 sigma^2)
                             - 1/2 log det(I + Q) + 1/2 c'(I + Q)^{-1} c,

which equals ``log N(y | X m, sigma^2 I + X S S'X')`` (matrix determinant lemma and Woodbury
identity;
e.g. Bishop, *Pattern Recognition and Machine Learning*, 2006, eqs. 2.113-2.117 and 3.86). ``I +
Q`` is
well conditioned even as ``S -> 0``, so no inverse of the prior covariance is formed. For a
coefficient
vector shared by several bonds (complete pooling) ``Q`` and ``c`` are the sums of the bonds' terms.
The conditional posterior is ``w | y ~ N((I + Q)^{-1} c, (I + Q)^{-1})``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "gaussian_loglik_np",
    "collapsed_terms_np",
    "collapsed_loglik_np",
    "draw_theta",
    "gaussian_loglik_pt",
    "collapsed_loglik_pt",
]

LOG_2PI = float(np.log(2.0 * np.pi))


# ----------------------------------------------------------------------------------------- numpy
def gaussian_loglik_np(XtX, Xty, yty, n, theta, sigma):
    """``sum_t log N(y_bt | x_t'theta_b, sigma_b^2)`` over each bond's observed months.

    Shapes broadcast: ``XtX (..., p, p)``, ``Xty (..., p)``, ``yty, n, sigma (...)``, ``theta
    (..., p)``.
    """
    quad = yty - 2.0 * np.einsum("...i,...i->...", theta, Xty) + np.einsum(
        "...i,...ij,...j->...", theta, XtX, theta
    )
    return -0.5 * n * (LOG_2PI + 2.0 * np.log(sigma)) - 0.5 * quad / sigma**2


def _check_scales(S, diag):
    """``S`` as a float array; full scales must be ``(..., p, p)``.

    The caller says which form ``S`` has: a stack of ``p`` vectors of length ``p`` cannot be told
    from a ``p x p`` matrix by its shape.
    """
    S = np.asarray(S, dtype=float)
    if not diag and (S.ndim < 2 or S.shape[-1] != S.shape[-2]):
        raise ValueError(f"full scale matrices must be (..., p, p), got shape {S.shape}")
    return S


def collapsed_terms_np(XtX, Xty, yty, n, sigma, m, S, *, diag):
    """Per-bond pieces ``(base, Q, c)`` of the collapsed likelihood (see module Notes).

    ``S`` is ``(..., p)`` diagonal scales (``diag=True``) or ``(..., p, p)`` matrices
    (``diag=False``).
    """
    S = _check_scales(S, diag)
    m = np.asarray(m, dtype=float)
    XtXm = (XtX @ m[..., None])[..., 0]
    Xtr = Xty - XtXm
    rtr = yty - 2.0 * (m * Xty).sum(-1) + (m * XtXm).sum(-1)
    s2 = np.asarray(sigma) ** 2
    base = -0.5 * n * (LOG_2PI + np.log(s2)) - 0.5 * rtr / s2
    if diag:
        Q = S[..., :, None] * XtX * S[..., None, :] / s2[..., None, None]
        c = S * Xtr / s2[..., None]
    else:
        St = np.swapaxes(S, -1, -2)
        Q = St @ XtX @ S / s2[..., None, None]
        c = (St @ Xtr[..., None])[..., 0] / s2[..., None]
    return base, Q, c


def collapsed_loglik_np(XtX, Xty, yty, n, sigma, m, S, *, diag, pooled=False):
    """Collapsed log-likelihood per bond (or, with ``pooled=True``, the total for a shared
    theta); ``diag`` as in :func:`collapsed_terms_np`."""
    base, Q, c = collapsed_terms_np(XtX, Xty, yty, n, sigma, m, S, diag=diag)
    if pooled:
        base, Q, c = base.sum(axis=-1), Q.sum(axis=-3), c.sum(axis=-2)
    p = Q.shape[-1]
    C = np.linalg.cholesky(np.eye(p) + Q)
    u = np.linalg.solve(C, c[..., None])[..., 0]
    return base - np.log(np.diagonal(C, axis1=-2, axis2=-1)).sum(-1) + 0.5 * (u * u).sum(-1)


def draw_theta(XtX, Xty, yty, n, sigma, m, S, rng, *, diag, pooled=False):
    """One draw of ``theta = m + S w`` from its exact conditional posterior, per leading index.

    Parameters
    ----------
    XtX, Xty, yty, n : sufficient statistics, bond axis last among the leading axes.
    sigma : (..., B)
    m, S : prior mean (..., B, p) and scale (..., B, p) (``diag=True``) or (..., B, p, p)
        (``diag=False``) of theta. With ``pooled=True`` the bond axis of ``m`` and ``S`` is absent
        and one theta is drawn.
    rng : numpy.random.Generator
    diag : bool
        Whether ``S`` holds diagonal scales or full matrices (explicit: shapes alone are ambiguous
        when the number of bonds or draws equals ``p``).
    """
    p = XtX.shape[-1]
    S = _check_scales(S, diag)
    if pooled:
        mb = np.broadcast_to(m[..., None, :], (*sigma.shape, p))
        if diag:
            Sb = np.broadcast_to(S[..., None, :], (*sigma.shape, p))
        else:
            Sb = np.broadcast_to(S[..., None, :, :], (*sigma.shape, p, p))
        _, Q, c = collapsed_terms_np(XtX, Xty, yty, n, sigma, mb, Sb, diag=diag)
        Q, c = Q.sum(axis=-3), c.sum(axis=-2)
    else:
        _, Q, c = collapsed_terms_np(XtX, Xty, yty, n, sigma, m, S, diag=diag)
    C = np.linalg.cholesky(np.eye(p) + Q)
    u = np.linalg.solve(C, c[..., None])  # C u = c
    z = rng.standard_normal(u.shape)
    Ct = np.swapaxes(C, -1, -2)
    w = np.linalg.solve(Ct, u + z)[..., 0]  # mean C^-T C^-1 c, covariance (C C')^-1
    return m + (S * w if diag else (S @ w[..., None])[..., 0])


# -------------------------------------------------------------------------------------- pytensor
def gaussian_loglik_pt(XtX, Xty, yty, n, theta, sigma):
    """PyTensor version of :func:`gaussian_loglik_np`; ``theta (B, p)``, ``sigma (B,)``."""
    import pytensor.tensor as pt

    quad = (
        yty
        - 2.0 * pt.sum(theta * Xty, axis=-1)
        + pt.sum(theta[:, :, None] * XtX * theta[:, None, :], axis=(-2, -1))
    )
    return -0.5 * n * (LOG_2PI + 2.0 * pt.log(sigma)) - 0.5 * quad / sigma**2


def _cholesky_unrolled(A):
    """Cholesky factor of small SPD matrices given as nested lists ``A[i][j]`` of batched tensors.

    Unrolled into elementwise operations so that the compiled graph (and its gradient) is a
    handful of
    fused loops over the batch, for the small ``p`` of a factor regression.
    """
    import pytensor.tensor as pt

    p = len(A)
    L = [[None] * p for _ in range(p)]
    for j in range(p):
        d = A[j][j]
        for k in range(j):
            d = d - L[j][k] ** 2
        L[j][j] = pt.sqrt(d)
        for i in range(j + 1, p):
            s = A[i][j]
            for k in range(j):
                s = s - L[i][k] * L[j][k]
            L[i][j] = s / L[j][j]
    return L


def collapsed_loglik_pt(XtX, Xty, yty, n, sigma, m, S, pooled=False):
    """PyTensor version of :func:`collapsed_loglik_np`.

    ``XtX (B, p, p)``, ``Xty (B, p)``, ``yty, n, sigma (B,)``; ``m (B, p)`` and ``S`` either ``(B,
    p)``
    (diagonal scales) or ``(B, p, p)``. With ``pooled=True``, ``m (p,)`` and ``S (p,)``/``(p, p)``
    are
    shared by all bonds and the scalar total is returned.
    """
    import pytensor.tensor as pt

    p = int(XtX.type.shape[-1]) if XtX.type.shape[-1] is not None else None
    if p is None:
        raise ValueError("the coefficient dimension of XtX must be static")
    diag = S.ndim == (1 if pooled else 2)
    if pooled:
        m_b = m[None, :]
        S_b = S[None, ...]
    else:
        m_b, S_b = m, S
    s2 = sigma**2
    XtXm = pt.sum(XtX * m_b[:, None, :], axis=-1)
    Xtr = Xty - XtXm
    rtr = yty - 2.0 * pt.sum(m_b * Xty, axis=-1) + pt.sum(m_b * XtXm, axis=-1)
    base = -0.5 * n * (LOG_2PI + pt.log(s2)) - 0.5 * rtr / s2
    if diag:
        Q = XtX * S_b[:, :, None] * S_b[:, None, :] / s2[:, None, None]
        c = S_b * Xtr / s2[:, None]
    else:
        SXtX = pt.sum(S_b[:, :, :, None] * XtX[:, :, None, :], axis=1)  # (B, p(i), p(l)) = S'XtX
        Q = pt.sum(SXtX[:, :, :, None] * S_b[:, None, :, :], axis=2) / s2[:, None, None]
        c = pt.sum(S_b * Xtr[:, :, None], axis=1) / s2[:, None]
    if pooled:
        base, Q, c = pt.sum(base), pt.sum(Q, axis=0), pt.sum(c, axis=0)
        A = [[Q[i, j] + (1.0 if i == j else 0.0) for j in range(p)] for i in range(p)]
        cv = [c[i] for i in range(p)]
    else:
        A = [[Q[:, i, j] + (1.0 if i == j else 0.0) for j in range(p)] for i in range(p)]
        cv = [c[:, i] for i in range(p)]
    L = _cholesky_unrolled(A)
    logdet_half = 0.0
    quad = 0.0
    u = [None] * p
    for i in range(p):
        s = cv[i]
        for k in range(i):
            s = s - L[i][k] * u[k]
        u[i] = s / L[i][i]
        quad = quad + u[i] ** 2
        logdet_half = logdet_half + pt.log(L[i][i])
    return base - logdet_half + 0.5 * quad


def centred_coefficients_pt(XtX, Xty, s2, m, S, w):
    """Coefficients ``theta (B, p)`` in data-centred coordinates ``w (B, p)``, and the log prior
    density of ``theta`` in those coordinates (per bond, Jacobian included).

    ``XtX (B, p, p)``, ``Xty (B, p)`` are each bond's sufficient statistics, ``s2 (B,)`` its
    working residual variance, ``m (B, p)`` and ``S`` ``(B, p)`` (diagonal scales) or
    ``(B, p, p)`` (lower-triangular) its prior ``theta ~ N(m, S S')``.

    Notes
    -----
    With ``theta = m + S gamma``, ``gamma ~ N(0, I)``, the Gaussian conditional posterior of
    ``gamma`` given ``(m, S, s2)`` has precision ``A = I + S'X'X S / s2 = L L'`` and mean
    ``gamma_hat = A^{-1} S'(X'y - X'X m) / s2``. The map

        gamma = gamma_hat + L^{-T} w

    is affine in ``w`` for fixed hyperparameters, with ``log |d theta / d w| = log|S| -
    sum_i log L_ii``, so the prior of ``theta`` in ``w`` coordinates is ``log p(w) = -|gamma|^2 / 2
    - sum_i log L_ii`` (+ const): the posterior is unchanged. Under a Gaussian likelihood with
    variance ``s2``, ``w | hyperparameters, y ~ N(0, I)`` whatever ``m`` and ``S``: no funnel
    when ``tau -> 0`` (non-centred limit) and no slow mixing when each bond's months identify
    its coefficients sharply (centred limit). This is the coefficient counterpart of the
    ``log sigma`` reparameterisation (:func:`~bayesbond.bayes.factor_priors.log_sigma_reparam`),
    a partially non-centred parameterisation in the sense of Papaspiliopoulos, Roberts and
    Skold (2007) with a data-dependent, matrix-valued weight.
    """
    import pytensor.tensor as pt

    p = int(XtX.type.shape[-1])
    diag = S.ndim == 2
    XtXm = pt.sum(XtX * m[:, None, :], axis=-1)
    Xtr = Xty - XtXm
    if diag:
        Q = XtX * S[:, :, None] * S[:, None, :] / s2[:, None, None]
        c = S * Xtr / s2[:, None]
    else:
        SXtX = pt.sum(S[:, :, :, None] * XtX[:, :, None, :], axis=1)
        Q = pt.sum(SXtX[:, :, :, None] * S[:, None, :, :], axis=2) / s2[:, None, None]
        c = pt.sum(S * Xtr[:, :, None], axis=1) / s2[:, None]
    L = _cholesky_unrolled([[Q[:, i, j] + (1.0 if i == j else 0.0) for j in range(p)]
                            for i in range(p)])
    u = [None] * p
    for i in range(p):  # u = L^{-1} c
        s = c[:, i]
        for k in range(i):
            s = s - L[i][k] * u[k]
        u[i] = s / L[i][i]
    g = [None] * p
    for i in reversed(range(p)):  # gamma = L^{-T} (u + w)
        s = u[i] + w[:, i]
        for k in range(i + 1, p):
            s = s - L[k][i] * g[k]
        g[i] = s / L[i][i]
    gamma = pt.stack(g, axis=1)
    logp = -0.5 * pt.sum(gamma**2, axis=1) - sum(pt.log(L[i][i]) for i in range(p))
    theta = m + (S * gamma if diag else pt.sum(S * gamma[:, None, :], axis=-1))
    return theta, logp

"""Numerical derivatives for maximum-likelihood inference: Hessian, gradient, delta method."""

from __future__ import annotations

import numpy as np

__all__ = ["num_hessian", "num_gradient", "delta_method_se"]


def num_hessian(f, x, h=1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function ``f`` at ``x``.

    Parameters
    ----------
    f : callable ``f(x) -> float``; x : array_like (k,), the point.
    h : float or array_like (k,), the step, one for all coordinates or one per coordinate.

    Returns
    -------
    ndarray (k, k), symmetric.

    Notes
    -----
    With ``e_i`` the ``i``-th unit vector scaled by ``h_i``:

    .. math::

        H_{ii} = \\frac{f(x + e_i) - 2 f(x) + f(x - e_i)}{h_i^2}, \\qquad
        H_{ij} = \\frac{f(x + e_i + e_j) - f(x + e_i - e_j) - f(x - e_i + e_j)
                 + f(x - e_i - e_j)}{4 h_i h_j},

    both with error ``O(h^2)``; ``1 + 2k^2`` evaluations of ``f``.
    """
    x = np.asarray(x, float)
    k = len(x)
    steps = np.broadcast_to(np.asarray(h, float), (k,))
    E = np.diag(steps)
    H = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        H[i, i] = (f(x + E[i]) - 2 * f0 + f(x - E[i])) / steps[i] ** 2
        for j in range(i):
            v = f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j]) + f(x - E[i] - E[j])
            H[i, j] = H[j, i] = v / (4 * steps[i] * steps[j])
    return H


def num_gradient(f, x, h=1e-4) -> np.ndarray:
    """Central-difference gradient ``g_i = (f(x + h e_i) - f(x - h e_i)) / (2 h)`` (error
    ``O(h^2)``)."""
    x = np.asarray(x, float)
    E = np.eye(len(x)) * h
    return np.array([(f(x + e) - f(x - e)) / (2 * h) for e in E])


def delta_method_se(g, theta, cov, h=1e-6) -> np.ndarray:
    """Standard errors of ``g(theta)`` by the delta method.

    Parameters
    ----------
    g : callable ``g(theta) -> ndarray (m,)``, the flat vector of derived quantities.
    theta, cov : the estimate (k,) and its covariance (k, k).
    h : float, the step of the central differences of the Jacobian.

    Returns
    -------
    ndarray (m,)

    Notes
    -----
    .. math:: \\operatorname{se}(g_i) = \\sqrt{(J \\Sigma_\\theta J')_{ii}}, \\qquad
              J_{:, j} = \\frac{g(\\theta + h e_j) - g(\\theta - h e_j)}{2 h},

    with tiny negative round-off variances clipped to zero.
    """
    theta = np.asarray(theta, float)
    E = h * np.eye(len(theta))
    J = np.column_stack([(g(theta + e) - g(theta - e)) / (2 * h) for e in E])
    return np.sqrt(np.clip(np.einsum("ij,jk,ik->i", J, cov, J), 0, None))

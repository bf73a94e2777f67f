"""Numerical derivatives of core.numdiff against closed forms; Cholesky packing round trips."""

import numpy as np
import pytest

from bayesbond.core.linalg import chol_pack, chol_unpack
from bayesbond.core.numdiff import delta_method_se, num_gradient, num_hessian


def f_test(x):
    """exp(x0) sin(x1) + x0^2 x1^3 / 3 + cosh(x2) x0: every second derivative non-zero."""
    return np.exp(x[0]) * np.sin(x[1]) + x[0] ** 2 * x[1] ** 3 / 3 + np.cosh(x[2]) * x[0]


def hess_exact(x):
    e, s, c = np.exp(x[0]), np.sin(x[1]), np.cos(x[1])
    return np.array([
        [e * s + 2 * x[1] ** 3 / 3, e * c + 2 * x[0] * x[1] ** 2, np.sinh(x[2])],
        [e * c + 2 * x[0] * x[1] ** 2, -e * s + 2 * x[0] ** 2 * x[1], 0.0],
        [np.sinh(x[2]), 0.0, np.cosh(x[2]) * x[0]],
    ])


def test_num_hessian_matches_the_closed_form():
    x = np.array([0.3, -0.7, 0.5])
    H = num_hessian(f_test, x)
    # central differences: error O(h^2 f'''') plus round-off O(eps f / h^2) ~ 1e-8
    np.testing.assert_allclose(H, hess_exact(x), atol=1e-6)
    np.testing.assert_array_equal(H, H.T)


def test_num_hessian_per_coordinate_steps_on_badly_scaled_coordinates():
    # g(u) = f(D u) with D = (1e-3, 1, 1e2): steps h / D keep every coordinate's curvature
    D = np.array([1e-3, 1.0, 1e2])
    x = np.array([0.3, -0.7, 0.5])
    y = x / D
    H = num_hessian(lambda u: f_test(D * u), y, 1e-4 / D)
    ref = D[:, None] * hess_exact(x) * D[None, :]
    h = 1e-4 / D
    # truncation O(h^2) relative, round-off ~ eps |f| / (h_i h_j) absolute
    assert np.all(np.abs(H - ref) <= 1e-5 * np.abs(ref) + 16 * np.finfo(float).eps / np.outer(h, h))


def test_num_gradient_matches_the_closed_form():
    x = np.array([0.3, -0.7, 0.5])
    g = np.array([
        np.exp(x[0]) * np.sin(x[1]) + 2 * x[0] * x[1] ** 3 / 3 + np.cosh(x[2]),
        np.exp(x[0]) * np.cos(x[1]) + x[0] ** 2 * x[1] ** 2,
        np.sinh(x[2]) * x[0],
    ])
    np.testing.assert_allclose(num_gradient(f_test, x), g, atol=1e-8)


def test_delta_method_matches_the_analytic_jacobian():
    theta = np.array([np.log(0.5), 0.2])
    cov = np.array([[0.04, 0.01], [0.01, 0.09]])

    def g(t):  # (exp t0, t0 t1, t1^2)
        return np.array([np.exp(t[0]), t[0] * t[1], t[1] ** 2])

    J = np.array([[np.exp(theta[0]), 0.0], [theta[1], theta[0]], [0.0, 2 * theta[1]]])
    ref = np.sqrt(np.diag(J @ cov @ J.T))
    np.testing.assert_allclose(delta_method_se(g, theta, cov), ref, rtol=1e-8)


@pytest.mark.parametrize("n, scale", [(1, 1.0), (3, 0.01), (4, 1.0)])
def test_chol_pack_round_trip(n, scale):
    rng = np.random.default_rng(n)
    M = rng.standard_normal((n, n))
    L = np.linalg.cholesky(M @ M.T + n * np.eye(n))
    raw = chol_pack(L, scale)
    assert raw.shape == (n * (n + 1) // 2,)
    np.testing.assert_allclose(chol_unpack(raw, n, scale), L, rtol=1e-14)
    # the diagonal enters through its logarithm, the rest scaled: any raw vector is admissible
    L2 = chol_unpack(rng.standard_normal(raw.size) * 5, n, scale)
    assert np.all(np.diag(L2) > 0) and np.all(np.triu(L2, 1) == 0)
    np.testing.assert_allclose(np.log(np.diag(L)), raw[[i * (i + 3) // 2 for i in range(n)]])

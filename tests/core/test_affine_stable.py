"""Stable drift parameterisation A = D(-(LL' + S))D^-1: stable for every input, invertible."""

import numpy as np
import pytest

from bayesbond.core.affine_stable import n_chol, n_skew, stable_drift, stable_to_raw


@pytest.mark.parametrize("n", [1, 2, 3])
def test_every_raw_vector_gives_a_stable_drift(n):
    rng = np.random.default_rng(n)
    scale = np.array([0.03, 0.008, 0.002])[:n]
    worst = -np.inf
    for _ in range(5000):
        c = 3.0 * rng.standard_normal(n_chol(n))
        s = 5.0 * rng.standard_normal(n_skew(n))
        ev = np.linalg.eigvals(stable_drift(np, c, s, scale, n))
        worst = max(worst, ev.real.max())
    assert worst < 0, worst


def test_round_trip_and_moved_flag():
    rng = np.random.default_rng(0)
    scale = np.array([0.03, 0.008, 0.002])
    for _ in range(50):
        c, s = 0.5 * rng.standard_normal(6), rng.standard_normal(3)
        c[[0, 2, 5]] += 0.5  # diagonal of L about e^0.5: eigenvalues of LL' well above the floor
        A = stable_drift(np, c, s, scale, 3)
        c2, s2, moved = stable_to_raw(A, scale)
        assert not moved
        np.testing.assert_allclose(stable_drift(np, c2, s2, scale, 3), A, rtol=1e-10, atol=1e-14)
    # a stable A outside the set (scaled symmetric part indefinite) is moved into it
    A = np.array([[-0.01, 5.0], [0.0, -1.0]])
    c, s, moved = stable_to_raw(A, np.ones(2))
    assert moved and np.all(np.linalg.eigvals(stable_drift(np, c, s, np.ones(2), 2)).real < 0)


def test_pytensor_matches_numpy():
    import pytensor
    import pytensor.tensor as pt

    c, s, d = pt.dvector("c"), pt.dvector("s"), pt.dvector("d")
    f = pytensor.function([c, s, d], stable_drift(pt, c, s, d, 3))
    rng = np.random.default_rng(1)
    cv, sv, dv = rng.standard_normal(6), rng.standard_normal(3), np.array([0.03, 0.008, 0.002])
    np.testing.assert_allclose(f(cv, sv, dv), stable_drift(np, cv, sv, dv, 3), rtol=1e-12)

"""Vectorised PSIS-LOO against arviz_stats' observation-by-observation implementation."""

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.special import logsumexp

from bayesbond.errors import DataError
from bayesbond.workflow.psis import _logsumexp_rows, psis_loo_pointwise, psis_tail_length

azs = pytest.importorskip("arviz_stats")

RTOL = 1e-10


def arviz_loo(ll3, r_eff):
    """``arviz_stats``' pointwise (elpd_i, pareto_k, p_loo_i) of a (chain, draw, obs) array."""
    da = xr.DataArray(ll3, dims=("chain", "draw", "obs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = da.azstats.loo(sample_dims=["chain", "draw"], r_eff=r_eff)
    return tuple(np.asarray(o.values, dtype=float) for o in out)


def ours(ll3, r_eff, **kw):
    C, D, N = ll3.shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning may escape
        return psis_loo_pointwise(ll3.reshape(C * D, N), r_eff, **kw)


def assert_matches_arviz(ll3, r_eff, rtol=RTOL, **kw):
    got = ours(ll3, r_eff, **kw)
    ref = arviz_loo(ll3, r_eff)
    for g, f, name in zip(got, ref, ("elpd_i", "pareto_k", "p_loo_i"), strict=True):
        assert g.shape == (ll3.shape[2],) and g.dtype == np.float64, name
        np.testing.assert_array_equal(np.isnan(g), np.isnan(f), err_msg=name)
        np.testing.assert_array_equal(np.isinf(g), np.isinf(f), err_msg=name)
        fin = np.isfinite(f)
        if name == "p_loo_i":
            # lppd_i - elpd_i cancels: its rounding is that of elpd_i, relative to |elpd_i|
            err = np.abs(g[fin] - f[fin]) / np.maximum(1.0, np.abs(ref[0][fin]))
            assert np.all(err <= rtol), (name, err.max())
        else:
            np.testing.assert_allclose(g[fin], f[fin], rtol=rtol, atol=0, err_msg=name)
        np.testing.assert_array_equal(g[np.isinf(f)], f[np.isinf(f)], err_msg=name)
    return got, ref


def normal_loglik(rng, chains, draws, y, scale=0.2):
    """log N(y_i | mu_s, sigma_s) for draws of (mu, sigma) around the data's mean and sd 1."""
    mu = rng.normal(0.0, scale, (chains, draws, 1))
    sig = np.exp(rng.normal(0.0, scale / 2, (chains, draws, 1)))
    return -0.5 * np.log(2 * np.pi) - np.log(sig) - 0.5 * ((y - mu) / sig) ** 2


@pytest.mark.parametrize("n_samples", [100, 1000, 4000])
@pytest.mark.parametrize("r_eff", [1.0, 0.7, 0.3])
def test_normal_model_equals_arviz(n_samples, r_eff):
    rng = np.random.default_rng(n_samples + int(10 * r_eff))
    y = rng.normal(size=40 if n_samples == 4000 else 80)
    ll = normal_loglik(rng, 4, n_samples // 4, y)
    # small blocks: several blocks, and the block boundaries must not matter
    (elpd, k, p), _ = assert_matches_arviz(ll, r_eff, block_bytes=300_000)
    big = psis_loo_pointwise(ll.reshape(n_samples, -1), r_eff)
    for a, b in zip((elpd, k, p), big, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(k))


@pytest.mark.parametrize("df", [1, 2, 3])
def test_heavy_tailed_observations_give_large_k_and_equal_arviz(df):
    rng = np.random.default_rng(df)
    y = rng.standard_t(df, size=60) * 3
    ll = normal_loglik(rng, 4, 500, y, scale=0.3)
    (_, k, _), (_, k_ref, _) = assert_matches_arviz(ll, 0.8)
    assert np.sum(k > 0.7) >= 3, k  # the high-k branch is exercised
    assert np.sum(k < 0.5) >= 3, k


def test_r_eff_above_one_and_tail_length():
    assert psis_tail_length(4000, 1.0) == 189
    assert psis_tail_length(4000, 0.3) == int(np.floor(3 * np.sqrt(4000 / 0.3)))
    assert psis_tail_length(200, 1.0) == 40  # S r_eff <= 225: S / 5
    assert psis_tail_length(200, 1.2) == int(np.floor(3 * np.sqrt(200 / 1.2)))
    rng = np.random.default_rng(5)
    assert_matches_arviz(normal_loglik(rng, 2, 100, rng.normal(size=30)), 1.2)


@pytest.mark.parametrize("draws", [25, 26, 30, 40, 60])
def test_tiny_tails_equal_arviz(draws):
    """5 to 12 tail draws: with 5 the first quartile is the minimum and k is NaN (no smoothing)."""
    rng = np.random.default_rng(draws)
    ll = normal_loglik(rng, 1, draws, rng.standard_t(2, size=50))
    (_, k, _), _ = assert_matches_arviz(ll, 1.0)
    if draws < 30:
        assert np.all(np.isnan(k))
    else:
        assert np.all(np.isfinite(k))


def test_fewer_than_five_tail_draws_raise_like_arviz():
    rng = np.random.default_rng(0)
    ll = rng.normal(size=(1, 24, 3))
    with pytest.raises(ValueError, match="at least 5"):
        arviz_loo(ll, 1.0)
    with pytest.raises(DataError, match="24 draws with r_eff=1 give 4"):
        psis_loo_pointwise(ll.reshape(24, 3), 1.0)


def test_constant_columns_are_named_where_arviz_raises():
    rng = np.random.default_rng(1)
    ll = normal_loglik(rng, 2, 200, rng.normal(size=12))
    ll[:, :, 9] = -1.3  # constant: every tail ratio equal
    ll[:, :50, 4] = -20.0  # 100 equal smallest values: the 60 largest ratios are equal
    with pytest.raises(ValueError, match="All tail values are the same"):
        arviz_loo(ll, 1.0)
    with pytest.raises(DataError, match=r"column\(s\) 4, 9:") as info:
        psis_loo_pointwise(ll.reshape(400, 12), 1.0, block_bytes=100_000)  # several blocks
    assert info.value.columns == [4, 9]
    ok = np.delete(ll, [4, 9], axis=2)
    assert_matches_arviz(ok, 1.0)


def test_ties_and_extreme_values_equal_arviz():
    """Ties (no GPD fit: NaN k), non-finite values and huge or tiny magnitudes: arviz's results,
    NaNs and infinities included."""
    rng = np.random.default_rng(2)
    base = rng.normal(-1.0, 0.3, (4, 250, 1))
    cols = []
    for fn in (
        lambda c: c.__setitem__((0, 3), -np.inf),
        lambda c: c.__setitem__((1, 7), np.inf),
        lambda c: c.__setitem__((2, 11), np.nan),
        lambda c: c.__setitem__((0, slice(0, 30)), -50.0),  # 30 influential draws
        lambda c: c.__setitem__((0, slice(0, 60)), -50.0),
    ):
        c = base[..., 0].copy()
        fn(c)
        cols.append(c)
    cols += [base[..., 0] * 1e300, base[..., 0] * 1e-300, np.round(base[..., 0], 1),
             base[..., 0] + 1e6]
    ll = np.stack(cols, axis=-1)
    (elpd, k, _), _ = assert_matches_arviz(ll, 1.0)
    assert np.isnan(elpd[:3]).all()  # -inf, +inf, NaN in a column
    assert np.isinf(k[2])  # NaN log-likelihood: k = inf, as arviz
    assert np.isfinite(k[1]) and k[3] > 1 and k[4] > 1
    assert np.isnan(k[5])  # exceedances that underflow to 0: no GPD fit, NaN k, as arviz


def test_float32_is_computed_in_float64():
    rng = np.random.default_rng(3)
    ll32 = normal_loglik(rng, 4, 250, rng.standard_t(3, size=30)).astype(np.float32)
    got = psis_loo_pointwise(ll32.reshape(1000, 30), 0.9)
    ref64 = psis_loo_pointwise(ll32.reshape(1000, 30).astype(np.float64), 0.9)
    for a, b in zip(got, ref64, strict=True):
        np.testing.assert_array_equal(a, b)
    assert_matches_arviz(ll32.astype(np.float64), 0.9)


def test_strided_input_and_no_observations():
    rng = np.random.default_rng(4)
    ll = normal_loglik(rng, 2, 300, rng.normal(size=20))
    full = np.empty((2, 300, 40))
    full[..., ::2] = ll
    got = psis_loo_pointwise(full.reshape(600, 40)[:, ::2], 1.0)
    ref = psis_loo_pointwise(np.ascontiguousarray(ll.reshape(600, 20)), 1.0)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    empty = psis_loo_pointwise(np.empty((600, 0)), 1.0)
    assert all(e.shape == (0,) for e in empty)


def test_input_errors():
    with pytest.raises(DataError, match="2-D"):
        psis_loo_pointwise(np.zeros(100), 1.0)
    with pytest.raises(DataError, match="real"):
        psis_loo_pointwise(np.zeros((100, 2), dtype=complex), 1.0)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="r_eff"):
            psis_loo_pointwise(np.zeros((100, 2)), bad)


def test_logsumexp_rows_equals_scipy():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(9, 500)) * 30
    a[1, :3] = a[1].max() + 1  # tied maxima
    a[2] = -np.inf
    a[3, 5] = np.inf
    a[4, 8] = np.nan
    a[5] = 800.0 + rng.normal(size=500)  # exp overflows without the shift
    a[6, :] = 0.0
    for b in (None, 1 / 500):
        got = _logsumexp_rows(a.copy(), b)
        ref = np.array([logsumexp(r) if b is None else logsumexp(r, b=b) for r in a])
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        fin = np.isfinite(ref)
        np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-13, atol=0)
        np.testing.assert_array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)])


def test_elpd_close_to_exact_leave_one_out_of_a_conjugate_normal_model():
    """Independent of arviz: normal mean with known sd 1 and a flat prior, exact posterior draws.

    The exact LOO predictive of y_i is N(mean of the others, 1 + 1/(n - 1)); PSIS with 20,000
    draws recovers each elpd_i to better than 0.01 and their sum to a few hundredths (Monte Carlo
    error: a wrong sign or normalisation of the weights is off by tenths).
    """
    rng = np.random.default_rng(7)
    n = 30
    y = rng.normal(size=n)
    mu = rng.normal(y.mean(), 1 / np.sqrt(n), size=20_000)
    ll = -0.5 * np.log(2 * np.pi) - 0.5 * (y[None, :] - mu[:, None]) ** 2
    elpd, k, p = psis_loo_pointwise(ll, 1.0)
    m = (y.sum() - y) / (n - 1)
    v = 1 + 1 / (n - 1)
    exact = -0.5 * np.log(2 * np.pi * v) - 0.5 * (y - m) ** 2 / v
    np.testing.assert_allclose(elpd, exact, rtol=0, atol=0.01)
    assert abs(elpd.sum() - exact.sum()) < 0.03
    assert np.all(k < 0.5)
    # p_loo = lppd - elpd with the exact posterior predictive N(mean(y), 1 + 1/n) in lppd
    lppd = -0.5 * np.log(2 * np.pi * (1 + 1 / n)) - 0.5 * (y - y.mean()) ** 2 / (1 + 1 / n)
    assert abs(p.sum() - (lppd.sum() - exact.sum())) < 0.03

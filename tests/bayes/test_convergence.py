"""Vectorised R-hat and bulk/tail ESS against arviz_stats' element-by-element implementation."""

import numpy as np
import pytest
import xarray as xr

from bayesbond.bayes.convergence import ess_bulk, ess_tail, rhat, rhat_ess

azs = pytest.importorskip("arviz_stats")

RTOL = 1e-10


def _reference(x, prob=None):
    """arviz_stats' rhat, bulk ESS and tail ESS of a (chain, draw, *elements) array."""
    dims = ("chain", "draw", *(f"elem{i}" for i in range(x.ndim - 2)))
    da = xr.DataArray(x, dims=dims)
    tail_kw = {} if prob is None else {"prob": prob}
    return (
        np.asarray(azs.rhat(da)),
        np.asarray(azs.ess(da, method="bulk")),
        np.asarray(azs.ess(da, method="tail", **tail_kw)),
    )


def _assert_matches_arviz(x, prob=None):
    ref_rhat, ref_bulk, ref_tail = _reference(x, prob)
    tail_kw = {} if prob is None else {"prob": prob}
    got = {"rhat": rhat(x), "ess_bulk": ess_bulk(x), "ess_tail": ess_tail(x, **tail_kw)}
    ref = {"rhat": ref_rhat, "ess_bulk": ref_bulk, "ess_tail": ref_tail}
    combined = rhat_ess(x, **tail_kw)
    for name, value in zip(got, combined, strict=True):
        np.testing.assert_array_equal(value, got[name], err_msg=f"rhat_ess {name}")
    for name in got:
        assert got[name].shape == x.shape[2:], name
        assert got[name].dtype == np.float64, name
        np.testing.assert_allclose(got[name], ref[name], rtol=RTOL, atol=0, err_msg=name)
    return got


def _ar1(rng, phi, n_chain, n_draw, n_elem):
    """AR(1) chains x_t = phi x_{t-1} + e_t started from the stationary distribution."""
    e = rng.normal(size=(n_chain, n_draw, n_elem))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, n_draw):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.95, -0.3])
def test_ar1_chains_with_different_scales(phi):
    rng = np.random.default_rng(10)
    x = _ar1(rng, phi, 4, 300, 12)
    x = x * np.geomspace(1e-4, 1e4, 12) + np.linspace(-50, 50, 12)
    got = _assert_matches_arviz(x)
    # iid draws: ESS near the 1200 draws; strong positive correlation: far fewer.
    if phi == 0.0:
        assert np.all((got["ess_bulk"] > 800) & (got["ess_bulk"] < 1700))
    if phi == 0.95:
        assert np.all(got["ess_bulk"] < 200)


def test_geyer_sequence_edge_cases():
    """Near-unit-root chains (no negative pair before the last lag), alternating chains
    (first pair sum <= 0) and strongly anti-correlated chains (ESS above the draw count)."""
    rng = np.random.default_rng(11)
    x = np.concatenate(
        [
            _ar1(rng, 0.999, 4, 60, 3),
            _ar1(rng, -0.9, 4, 60, 3),
            (-1.0) ** np.arange(60)[None, :, None] + 0.01 * rng.normal(size=(4, 60, 3)),
        ],
        axis=2,
    )
    got = _assert_matches_arviz(x)
    assert np.all(got["ess_bulk"][3:6] > 240)


def test_shifted_chain_means_give_large_rhat():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(4, 200, 6)) + np.array([0.0, 0.0, 1.0, 3.0])[:, None, None]
    got = _assert_matches_arviz(x)
    assert np.all(got["rhat"] > 1.1)


@pytest.mark.parametrize("n_draw", [4, 5, 6, 7, 8, 9, 10, 11])
def test_short_chains(n_draw):
    rng = np.random.default_rng(100 + n_draw)
    x = _ar1(rng, 0.3, 4, n_draw, 8) * np.arange(1, 9)
    _assert_matches_arviz(x)


def test_fewer_than_four_draws_gives_nan_like_arviz():
    x = np.random.default_rng(13).normal(size=(4, 3, 5))
    ref = _reference(x)
    for got, want in zip((rhat(x), ess_bulk(x), ess_tail(x)), ref, strict=True):
        assert np.all(np.isnan(want))
        assert np.all(np.isnan(got))


def test_single_chain_rhat_nan_ess_matches():
    x = _ar1(np.random.default_rng(14), 0.6, 1, 250, 5)
    got = _assert_matches_arviz(x)
    assert np.all(np.isnan(got["rhat"]))
    assert np.all(np.isfinite(got["ess_bulk"]) & np.isfinite(got["ess_tail"]))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_constant_and_degenerate_elements_beside_ordinary_ones():
    rng = np.random.default_rng(15)
    n_chain, n_draw = 4, 101
    x = rng.normal(size=(n_chain, n_draw, 6))
    x[:, :, 1] = 3.0  # constant: R-hat 0/0 = NaN, ESS = number of split draws
    x[:, :, 2] = np.arange(n_chain)[:, None]  # constant within chains: R-hat huge
    # +-1 in equal numbers in the split chains (the middle draw is dropped): the median is 0,
    # the folded draws are constant, tail R-hat is NaN and R-hat is the bulk R-hat.
    signs = np.repeat([-1.0, 1.0], n_chain * (n_draw // 2))
    x[:, :, 3] = 5.0
    x[:, np.r_[0 : n_draw // 2, n_draw - n_draw // 2 : n_draw], 3] = rng.permutation(
        signs
    ).reshape(n_chain, -1)
    x[:, :, 4] = 1e-300 * rng.normal(size=(n_chain, n_draw))  # range below resolution
    got = _assert_matches_arviz(x)
    n_split = n_chain * 2 * (n_draw // 2)
    assert np.isnan(got["rhat"][1]) and got["rhat"][2] > 1e6
    assert got["ess_bulk"][1] == n_split and got["ess_tail"][1] == n_split
    assert np.all(np.isfinite(got["rhat"][[0, 3, 5]]))


def test_heavy_tails_cauchy_and_infinite_draws():
    rng = np.random.default_rng(16)
    x = rng.standard_cauchy(size=(4, 400, 8)) * np.array([1, 1e3, 1e-3, 1, 1, 1, 1, 1])
    x[1, 7, 5] = np.inf
    x[2, 9, 6] = -np.inf
    _assert_matches_arviz(x)


@pytest.mark.parametrize("lam", [0.2, 3.0])
def test_discrete_draws_with_ties(lam):
    rng = np.random.default_rng(17)
    counts = rng.poisson(lam * np.array([1.0, 1.0, 2.0, 5.0]), size=(4, 300, 4))
    counts[3] += rng.poisson(1.0, size=(300, 4))  # one chain off
    _assert_matches_arviz(counts)  # int64
    _assert_matches_arviz(counts.astype(float))
    _assert_matches_arviz(counts.astype(np.float32))


def test_float32_input():
    rng = np.random.default_rng(18)
    x = (_ar1(rng, 0.7, 4, 301, 10) * np.geomspace(1e-3, 1e3, 10)).astype(np.float32)
    assert x.dtype == np.float32
    _assert_matches_arviz(x)


def test_nan_elements_are_nan_and_do_not_touch_others():
    rng = np.random.default_rng(19)
    x = rng.normal(size=(3, 120, 5))
    x[1, 17, 2] = np.nan
    x[:, :, 4] = np.nan
    got = _assert_matches_arviz(x)
    for name in got:
        assert np.all(np.isnan(got[name][[2, 4]])), name
        assert np.all(np.isfinite(got[name][[0, 1, 3]])), name


def test_multidimensional_elements_and_scalar_variable():
    rng = np.random.default_rng(20)
    _assert_matches_arviz(_ar1(rng, 0.4, 4, 150, 12).reshape(4, 150, 3, 4))
    scalar = _ar1(rng, 0.4, 3, 150, 1)[:, :, 0]
    got = _assert_matches_arviz(scalar)
    assert got["rhat"].shape == ()


@pytest.mark.parametrize("prob", [0.95, 0.1, 0.5, 1.0, (0.05, 0.9), (0.0, 0.8)])
def test_tail_probabilities(prob):
    x = _ar1(np.random.default_rng(21), 0.5, 4, 200, 6)
    _assert_matches_arviz(x, prob=prob)


def test_tail_default_is_arviz_default_ci_prob():
    from arviz_base import rcParams

    x = _ar1(np.random.default_rng(22), 0.5, 4, 200, 4)
    p = rcParams["stats.ci_prob"]
    np.testing.assert_array_equal(ess_tail(x), ess_tail(x, prob=p))
    assert not np.array_equal(ess_tail(x), ess_tail(x, prob=0.95))


def test_blocks_of_elements_agree_with_one_block(monkeypatch):
    import bayesbond.bayes.convergence as conv

    x = _ar1(np.random.default_rng(23), 0.5, 4, 100, 37)
    x[0, 3, 11] = np.nan
    whole = (rhat(x), ess_bulk(x), ess_tail(x), *rhat_ess(x))
    monkeypatch.setattr(conv, "_BLOCK_VALUES", 4 * 100 * 5)  # 5 elements per block
    blocked = (rhat(x), ess_bulk(x), ess_tail(x), *rhat_ess(x))
    for a, b in zip(whole, blocked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=0)


def test_invalid_input_is_rejected():
    with pytest.raises(ValueError, match="rhat: x must have shape"):
        rhat(np.zeros(10))
    with pytest.raises(TypeError, match="ess_bulk: x must be float64, float32 or integer"):
        ess_bulk(np.zeros((2, 10, 3), dtype=bool))
    with pytest.raises(TypeError, match="rhat: x must be float64, float32 or integer"):
        rhat(np.zeros((2, 10, 3), dtype=np.float16))
    with pytest.raises(ValueError, match="ess_tail: prob must lie in"):
        ess_tail(np.zeros((2, 10)), prob=1.5)
    with pytest.raises(ValueError, match="ess_tail: prob must be"):
        ess_tail(np.zeros((2, 10)), prob=(0.1, 0.5, 0.9))
    with pytest.raises(ValueError, match="rhat_ess: prob must lie in"):
        rhat_ess(np.zeros((2, 10)), prob=0.0)


def test_full_size_fit_4_chains_1000_draws_4000_elements():
    """A FactorModel-sized posterior runs; spot-check elements against arviz_stats."""
    rng = np.random.default_rng(24)
    x = rng.normal(size=(4, 1000, 4000))
    x[:, :, ::2] = _ar1(rng, 0.5, 4, 1000, 2000)
    r, b, t = rhat_ess(x)
    assert r.shape == b.shape == t.shape == (4000,)
    assert np.all(np.isfinite(r) & np.isfinite(b) & np.isfinite(t))
    # Converged chains: R-hat near 1. iid elements: ESS near 4000; AR(1) with phi = 0.5:
    # ESS near 4000 (1 - phi) / (1 + phi) = 1333.
    assert r.max() < 1.02
    assert 3700 < b[1::2].mean() < 4300
    assert 1150 < b[::2].mean() < 1500
    idx = np.r_[0:3, 1997:2003, 3995:4000]
    ref_rhat, ref_bulk, ref_tail = _reference(x[:, :, idx])
    np.testing.assert_allclose(r[idx], ref_rhat, rtol=RTOL, atol=0)
    np.testing.assert_allclose(b[idx], ref_bulk, rtol=RTOL, atol=0)
    np.testing.assert_allclose(t[idx], ref_tail, rtol=RTOL, atol=0)

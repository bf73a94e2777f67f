"""``bb.ols`` on Dask-backed returns chunked by bond: the numbers of the in-memory fit, computed
one chunk at a time."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesbond as bb
from bayesbond.errors import DataError

da = pytest.importorskip("dask.array")


def _factors(T, K, seed=0):
    """Factor returns; on months 10..10+K+1 (the short bond's) the first barely moves, so that
    bond's Gram matrix is ill conditioned and the kernel refits it by its own QR."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2000-01-31", periods=T, freq="ME")
    V = rng.normal(0.003, 0.02, (T, K))
    V[10:10 + K + 2, 0] = 0.01 + 1e-5 * rng.normal(size=K + 2)
    return pd.DataFrame(V, index=dates, columns=[f"f{k}" for k in range(K)])


def _lazy_returns(F, N, chunk, missing=0.2, seed=1, calls=None):
    """A lazy (date, bond) panel: each bond chunk drawn from its own seed when computed.

    AR(1) errors; bonds missing at random, late starters, early leavers, a bond observed on a
    stretch of p + 1 months only and a month nobody observes.
    """
    T, K = F.shape
    X = np.column_stack([np.ones(T), F.to_numpy()])

    def block(block_id=None):
        j = block_id[1]
        if calls is not None:
            calls.append(j)
        rng = np.random.default_rng([seed, j])
        n = min(chunk, N - j * chunk)
        e = rng.normal(0, 0.01, (T, n))
        for t in range(1, T):
            e[t] += 0.3 * e[t - 1]
        Y = 0.01 * (X @ rng.normal(0.5, 0.5, (K + 1, n)) + e)
        Y[rng.random((T, n)) < missing] = np.nan
        Y[: T // 3, 0] = np.nan  # late starter
        if n > 1:
            Y[T // 2:, 1] = np.nan  # early leaver
        if n > 2:
            Y[:, 2] = np.nan
            w = slice(10, 10 + K + 2)
            Y[w, 2] = X[w] @ np.full(K + 1, 0.01) + rng.normal(0, 1e-3, K + 2)
        Y[7] = np.nan  # a month with no observed return at all
        return Y

    sizes = tuple(min(chunk, N - a) for a in range(0, N, chunk))
    arr = da.map_blocks(block, chunks=((T,), sizes), dtype=float, meta=np.empty((0, 0)))
    return xr.DataArray(arr, dims=("date", "bond"),
                        coords={"date": F.index, "bond": [f"C{j:05d}" for j in range(N)]})


def _assert_same(a, b, tol=1e-12, loose=None, loose_tol=None):
    """Same labels and missing cells; numbers to ``tol`` of their scale, except the bonds at the
    positions ``loose`` (ill-conditioned), held to ``loose_tol`` of each bond's scale."""
    pd.testing.assert_index_equal(a.params.index, b.params.index)
    pd.testing.assert_index_equal(a.resid.index, b.resid.index)
    pd.testing.assert_frame_equal(a.factors, b.factors)
    pd.testing.assert_series_equal(a.nobs, b.nobs)
    pd.testing.assert_series_equal(a.dropped, b.dropped)
    assert np.array_equal(np.isnan(a.resid.to_numpy()), np.isnan(b.resid.to_numpy()))
    assert (a.cov_type, a.hac_lags) == (b.cov_type, b.hac_lags)
    n = len(b.params)
    sharp = np.setdiff1d(np.arange(n), [] if loose is None else loose)
    pairs = [(a.params, b.params), (a.bse, b.bse), (a.resid.T, b.resid.T), (a.rsquared, b.rsquared),
             (a.sigma, b.sigma), (a.cov_array, b.cov_array),
             (a.cov_classical_array, b.cov_classical_array)]
    for x, y in pairs:  # bonds along the first axis
        x, y = np.asarray(x)[sharp], np.asarray(y)[sharp]
        ok = np.isfinite(y)
        assert np.max(np.abs(x[ok] - y[ok])) <= tol * np.max(np.abs(y[ok]))
    if loose is not None:
        for x, y in pairs:
            for j in loose:  # each bond to its own scale
                xj, yj = np.asarray(x)[j], np.asarray(y)[j]
                ok = np.isfinite(yj)
                assert np.max(np.abs(xj[ok] - yj[ok])) <= loose_tol * np.max(np.abs(yj[ok]))


def _short_bonds(F, res):
    """Positions of the bonds observed on p + 1 months only, and ``eps cond(X_j)^2`` of the
    worst of them (the design's columns scaled to unit length, as the kernel does)."""
    pos = np.flatnonzero(res.nobs.to_numpy() == F.shape[1] + 2)
    X = np.column_stack([np.ones(len(F)), F.to_numpy()])[10:10 + F.shape[1] + 2]
    kappa = np.linalg.cond(X / np.linalg.norm(X, axis=0))
    return pos, np.finfo(float).eps * kappa**2


@pytest.mark.parametrize("hac_lags, hac_gaps", [(None, "compress"), (4, "compress"), (4, "zero")])
def test_chunked_equals_in_memory(hac_lags, hac_gaps, monkeypatch):
    import bayesbond.core.ols as core

    qr_fit, refits = core._qr_fit, []

    def spy(*a, **k):
        refits.append(a[1].shape[1])
        return qr_fit(*a, **k)

    monkeypatch.setattr(core, "_qr_fit", spy)
    F = _factors(60, 3)
    R = _lazy_returns(F, N=23, chunk=5)
    assert len(R.chunks[1]) == 5
    lazy = bb.ols(R, F, hac_lags=hac_lags, hac_gaps=hac_gaps)
    eager = bb.ols(R.compute(), F, hac_lags=hac_lags, hac_gaps=hac_gaps)
    assert refits == [1] * 5 + [5]  # the QR path: one bond per chunk, then five at once
    assert lazy.resid.shape == (60, 23)
    assert np.isnan(eager.resid.iloc[7]).all()
    assert eager.nobs.iloc[2] == 3 + 2  # the short bond is in the fit
    short, limit = _short_bonds(F, eager)
    assert list(short) == [2, 7, 12, 17, 22] and 1e-10 < limit < 1e-7
    # the ill-conditioned bonds agree to the conditioning's limit, the others to 1e-12
    _assert_same(lazy, eager, loose=short, loose_tol=10 * limit)


def test_chunked_min_obs_drops_the_same_bonds():
    F = _factors(60, 3)
    R = _lazy_returns(F, N=23, chunk=5)
    with pytest.warns(UserWarning, match="left out"):
        lazy = bb.ols(R, F, hac_lags=3, min_obs=20)
    with pytest.warns(UserWarning, match="left out"):
        eager = bb.ols(R.compute(), F, hac_lags=3, min_obs=20)
    assert len(eager.dropped) == 5  # the short bond of every chunk
    _assert_same(lazy, eager)  # no ill-conditioned bond left: all to 1e-12


def test_chunked_transposed_and_percent():
    F = _factors(48, 2)
    R = _lazy_returns(F, N=12, chunk=4)
    lazy = bb.ols((100 * R).transpose("bond", "date"), F, hac_lags=2, units="percent",
                  factor_units="decimal")
    eager = bb.ols(R.compute(), F, hac_lags=2)
    short, limit = _short_bonds(F, eager)
    _assert_same(lazy, eager, loose=short, loose_tol=10 * limit)


def test_one_chunk_at_a_time():
    """Each chunk is drawn once per pass (counts, fits), never the whole panel at once, and the
    traced peak memory is the outputs' plus a few chunks' (the in-memory fit's is several
    panels more)."""
    F = _factors(240, 4)
    N, chunk = 4000, 100
    calls = []
    R = _lazy_returns(F, N=N, chunk=chunk, calls=calls)
    tracemalloc.start()
    try:
        res = bb.ols(R, F, hac_lags=3)
        _, peak_lazy = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        eager = bb.ols(R.compute(), F, hac_lags=3)
        _, peak_eager = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n_blocks = N // chunk
    assert sorted(calls[: 2 * n_blocks]) == sorted(2 * list(range(n_blocks)))
    assert calls[:n_blocks] == list(range(n_blocks))  # pass 1, in bond order
    panel = 240 * N * 8  # bytes of the panel (and of the residual output)
    outputs = panel + N * 5 * 5 * 8 * 2 + N * 5 * 8 * 2
    block = 240 * chunk * 8
    # the outputs (residuals the size of the panel) plus the work arrays of a few chunks; the
    # in-memory fit holds the panel and its work arrays, several panels beyond the outputs
    assert peak_lazy < outputs + 30 * block, (peak_lazy, outputs, peak_eager)
    assert peak_eager > outputs + 3 * panel
    short, limit = _short_bonds(F, eager)
    _assert_same(res, eager, loose=short, loose_tol=10 * limit)


def test_chunked_along_date_is_refused():
    F = _factors(60, 3)
    R = _lazy_returns(F, N=10, chunk=5).compute()
    with pytest.raises(DataError, match="chunked along 'date'"):
        bb.ols(R.chunk({"date": 30, "bond": 5}), F)


def test_chunked_wrong_dims_are_refused():
    F = _factors(60, 3)
    R = _lazy_returns(F, N=10, chunk=5).rename(bond="isin")
    with pytest.raises(DataError, match=r"dims \(date, bond\)"):
        bb.ols(R, F)


def test_chunked_duplicated_bonds_are_refused():
    F = _factors(60, 3)
    R = _lazy_returns(F, N=10, chunk=5)
    R = R.assign_coords(bond=["A"] * 2 + [f"B{j}" for j in range(8)])
    with pytest.raises(DataError, match="duplicated bonds.*A"):
        bb.ols(R, F)

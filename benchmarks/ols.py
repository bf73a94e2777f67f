"""Benchmark: batched OLS with Newey-West SEs vs a statsmodels per-bond loop, same data, same run.

Workload (issue 2): 2,000 bonds x 240 months x 6 factors, HAC(6) with the small-sample
correction: balanced; 20% of bond-months missing at random (every bond has gaps, so its HAC lags
count observed months: the hardest case); and 20% missing as late issue / early maturity
(unbroken observation windows, as in real bond panels). The peer is what a
user would write: for each bond, drop its missing months and call
``statsmodels.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": 6, "use_correction": True})``.
Both sides produce params, standard errors, residuals and R^2; the script checks they agree
(max relative difference) and prints the times and the ratio, of wall-clock times and of process
CPU times (the latter does not count waiting for a CPU when other jobs load the machine).

BLAS runs single-threaded on both sides (set before numpy is imported; ``--threads N`` changes
it), so the ratio measures the algorithm, not the core count.

With ``--dask`` (issue 18, part 4): the panel is a lazy Dask-backed ``xarray.DataArray``
chunked by bond (``--chunk`` bonds a chunk, each chunk drawn from its own seed when computed, 20%
missing at random), fitted by ``bb.ols`` one chunk at a time; the script prints the wall and CPU
times and the peak resident memory (``resource.getrusage``), then fits the same panel in memory
and prints the largest difference (no statsmodels loop at this size).

Usage: python benchmarks/ols.py [--bonds 2000] [--months 240] [--factors 6] [--lags 6]
       [--repeat 5] [--threads 1]
       python benchmarks/ols.py --dask --bonds 20000 --months 300 [--chunk 1000]
"""

from __future__ import annotations

import argparse
import os
import sys


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bonds", type=int, default=2000)
    ap.add_argument("--months", type=int, default=240)
    ap.add_argument("--factors", type=int, default=6)
    ap.add_argument("--lags", type=int, default=6)
    ap.add_argument("--missing", type=float, default=0.2)
    ap.add_argument("--repeat", type=int, default=5, help="best of N runs for bayesbond")
    ap.add_argument("--peer-repeat", type=int, default=1, help="best of N runs for statsmodels")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads on both sides")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dask", action="store_true",
                    help="lazy Dask panel chunked by bond, fitted chunk by chunk")
    ap.add_argument("--chunk", type=int, default=1000, help="bonds per Dask chunk (--dask)")
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels.api as sm  # noqa: E402

import bayesbond as bb  # noqa: E402


def make_data(n_bonds, n_months, n_factors, missing, seed, pattern="random"):
    """Factor returns and a wide return table with AR(1) errors (so that HAC matters).

    ``pattern="random"``: each bond-month is missing with probability ``missing``;
    ``"staggered"``: each bond misses ``missing`` of the months, split at random between the
    start (late issue) and the end (early maturity), as in real bond panels.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2000-01-31", periods=n_months, freq="ME")
    F = pd.DataFrame(
        rng.normal(0.003, 0.02, (n_months, n_factors)),
        index=dates,
        columns=[f"F{k + 1}" for k in range(n_factors)],
    )
    X = np.column_stack([np.ones(n_months), F.to_numpy()])
    theta = np.vstack(
        [rng.normal(0.0005, 0.001, n_bonds), rng.normal(0.5, 0.4, (n_factors, n_bonds))]
    )
    e = rng.normal(0, 0.01, (n_months, n_bonds))
    for t in range(1, n_months):
        e[t] += 0.3 * e[t - 1]
    Y = X @ theta + e
    if missing > 0 and pattern == "random":
        Y[rng.random(Y.shape) < missing] = np.nan
    elif missing > 0:
        gone = int(round(missing * n_months))
        head = rng.integers(0, gone + 1, n_bonds)
        t = np.arange(n_months)[:, None]
        Y[(t < head) | (t >= n_months - (gone - head))] = np.nan
    R = pd.DataFrame(Y, index=dates, columns=[f"CUSIP{j:05d}" for j in range(n_bonds)])
    return R, F


def peer(R, F, lags):
    """The statsmodels per-bond loop (each bond on its own observed months)."""
    X = sm.add_constant(F.to_numpy(), prepend=True)
    Y = R.to_numpy()
    n, p = Y.shape[1], X.shape[1]
    params, bse, r2 = np.empty((n, p)), np.empty((n, p)), np.empty(n)
    resid = np.full(Y.shape, np.nan)
    for j in range(n):
        o = np.isfinite(Y[:, j])
        res = sm.OLS(Y[o, j], X[o]).fit(
            cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True}
        )
        params[j], bse[j], r2[j] = res.params, res.bse, res.rsquared
        resid[o, j] = res.resid
    return params, bse, resid, r2


def ours(R, F, lags):
    res = bb.ols(R, F, hac_lags=lags, use_correction=True)
    return res.params.to_numpy(), res.bse.to_numpy(), res.resid.to_numpy(), res.rsquared.to_numpy()


def best_time(fn, repeat):
    """Best wall-clock and best CPU time (process) over ``repeat`` calls, and the last output."""
    best, best_cpu, out = np.inf, np.inf, None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return (best, best_cpu), out


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    ok = np.isfinite(b)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-300)))


def lazy_data(n_bonds, n_months, n_factors, missing, seed, chunk):
    """:func:`make_data`'s model as a lazy (date, bond) DataArray chunked by bond."""
    import dask.array as da
    import xarray as xr

    rng = np.random.default_rng(seed)
    dates = pd.date_range("2000-01-31", periods=n_months, freq="ME")
    F = pd.DataFrame(rng.normal(0.003, 0.02, (n_months, n_factors)), index=dates,
                     columns=[f"F{k + 1}" for k in range(n_factors)])
    X = np.column_stack([np.ones(n_months), F.to_numpy()])
    sizes = tuple(min(chunk, n_bonds - a) for a in range(0, n_bonds, chunk))

    def block(block_id=None):
        r = np.random.default_rng([seed, block_id[1]])
        n = sizes[block_id[1]]
        theta = np.vstack([r.normal(0.0005, 0.001, n), r.normal(0.5, 0.4, (n_factors, n))])
        e = r.normal(0, 0.01, (n_months, n))
        for t in range(1, n_months):
            e[t] += 0.3 * e[t - 1]
        Y = X @ theta + e
        Y[r.random(Y.shape) < missing] = np.nan
        return Y

    arr = da.map_blocks(block, chunks=((n_months,), sizes), dtype=float, meta=np.empty((0, 0)))
    R = xr.DataArray(arr, dims=("date", "bond"),
                     coords={"date": dates, "bond": [f"CUSIP{j:06d}" for j in range(n_bonds)]})
    return R, F


def main_dask(args) -> int:
    import resource

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    warnings.simplefilter("ignore")
    R, F = lazy_data(args.bonds, args.months, args.factors, args.missing, args.seed, args.chunk)
    panel_mib = args.bonds * args.months * 8 / 2**20
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bayesbond {bb.__version__}, Dask-backed panel: {args.bonds} bonds x {args.months} "
          f"months x {args.factors} factors, {args.missing:.0%} missing at random, HAC({args.lags})"
          f", chunks of {args.chunk} bonds ({len(R.chunks[1])} chunks), BLAS threads = "
          f"{args.threads}")
    print(f"machine: {os.cpu_count()} CPUs, 1-minute load average {load:.1f} at start; panel "
          f"{panel_mib:.0f} MiB as float64, one chunk {args.months * args.chunk * 8 / 2**20:.1f} "
          "MiB")
    Rw, Fw = lazy_data(200, args.months, args.factors, args.missing, args.seed + 1, 100)
    bb.ols(Rw, Fw, hac_lags=args.lags)  # warm-up (imports, Dask's thread pool)
    rss0 = peak_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    res = bb.ols(R, F, hac_lags=args.lags, use_correction=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1 = peak_mib()
    print(f"chunked bb.ols: {wall:.2f} s wall, {cpu:.2f} s CPU (both passes, drawing the chunks "
          f"included); peak RSS {rss1:.0f} MiB (before the fit {rss0:.0f} MiB); {res!r}")
    c0, t0 = time.process_time(), time.perf_counter()
    Rm = R.compute()
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = bb.ols(Rm, F, hac_lags=args.lags, use_correction=True)
    wall_m = time.perf_counter() - t0
    print(f"in-memory bb.ols on the computed panel: {wall_m:.2f} s wall (drawing it {gen:.2f} s);"
          f" peak RSS of the process now {peak_mib():.0f} MiB")
    worst = 0.0
    for a, b in [(res.params, ref.params), (res.bse, ref.bse), (res.resid, ref.resid),
                 (res.rsquared, ref.rsquared)]:
        a, b = np.asarray(a), np.asarray(b)
        ok = np.isfinite(b)
        if not np.array_equal(ok, np.isfinite(a)):
            worst = np.inf
            continue
        worst = max(worst, float(np.max(np.abs(a[ok] - b[ok])) / np.max(np.abs(b[ok]))))
    ok = worst < 1e-12
    print(f"same numbers as in memory (params, bse, resid, R2 to 1e-12 of their scale): "
          f"{'yes' if ok else 'NO'} (worst {worst:.1e})")
    return 0 if ok else 1


def main(args) -> int:
    if args.dask:
        return main_dask(args)
    warnings.simplefilter("ignore")
    print(
        f"bayesbond {bb.__version__} vs statsmodels {sm.__version__} per-bond loop: "
        f"{args.bonds} bonds x {args.months} months x {args.factors} factors, HAC({args.lags}) "
        f"with small-sample correction, BLAS threads = {args.threads}"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, 1-minute load average {load:.1f} at start")
    print(
        f"{'panel':<26}{'statsmodels [s]':>16}{'bayesbond [s]':>15}{'ratio':>9}{'CPU ratio':>11}"
        f"{'max diff params/se':>20}{'bse':>10}{'resid':>10}{'R2':>10}"
    )
    worst = 0.0
    failed = False
    cases = (
        ("balanced", 0.0, "random"),
        (f"{args.missing:.0%} missing, random", args.missing, "random"),
        (f"{args.missing:.0%} missing, staggered", args.missing, "staggered"),
    )
    for label, miss, pattern in cases:
        R, F = make_data(args.bonds, args.months, args.factors, miss, args.seed, pattern)
        ours(R, F, args.lags)  # warm-up (imports, first-call costs)
        (t_ours, c_ours), (p1, b1, e1, r1) = best_time(
            lambda R=R, F=F: ours(R, F, args.lags), args.repeat
        )
        (t_peer, c_peer), (p0, b0, e0, r0) = best_time(
            lambda R=R, F=F: peer(R, F, args.lags), args.peer_repeat
        )
        # residuals relative to the residual scale (individual residuals can be ~0)
        d_resid = float(np.nanmax(np.abs(e1 - e0)) / np.nanstd(e0))
        # coefficients relative to their standard errors (alphas can be ~0)
        d_params = float(np.max(np.abs(p1 - p0) / b0))
        d = (d_params, rel(b1, b0), d_resid, rel(r1, r0))
        worst = max(worst, *d)
        failed |= not np.array_equal(np.isnan(e1), np.isnan(e0))
        print(
            f"{label:<26}{t_peer:>16.3f}{t_ours:>15.4f}{t_peer / t_ours:>8.1f}x"
            f"{c_peer / c_ours:>10.1f}x{d[0]:>20.1e}{d[1]:>10.1e}{d[2]:>10.1e}{d[3]:>10.1e}"
        )
    ok = worst < 1e-8 and not failed
    print(
        "identical results (params to 1e-8 standard errors, bse and R2 to 1e-8 relative, "
        f"residuals to 1e-8 of their scale): {'yes' if ok else 'NO'} (worst {worst:.1e})"
    )
    print(
        f"times: wall clock, best of {args.repeat} runs (bayesbond) and {args.peer_repeat} "
        "(statsmodels); CPU ratio: the same with process CPU times (waiting for a CPU on a loaded "
        "machine does not count)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(ARGS))

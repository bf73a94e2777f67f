"""Benchmark: many fits, one process vs a two-worker Dask ``LocalCluster`` (issue 18).

``bb.rolling_fit`` of a hierarchical ``FactorModel`` (2 factors) over a simulated panel of
``--bonds`` bonds: 24 windows of 60 months, 12 months apart (336 months), run

* serially in this process (one compile, then 23 reuses), and
* on a ``LocalCluster(n_workers=2, threads_per_worker=1)`` on loopback (one compile per worker),

with the same ``random_seed``; prints both wall times, the speed-up (the cluster's start-up
and the workers' imports timed apart, not in its wall time) and whether the draws are
bit-identical. The ideal on 2 cores is about 2x; nutpie samples the chains of one fit in up to
``min(4, cores, chains)`` threads, so the serial run already uses both cores while sampling and
the gain comes from the single-threaded phases (compile, build, redraw, convergence check).

Run: ``python benchmarks/scale.py [--bonds 300] [--windows 24] [--draws 1000] [--chains 4]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def _warm():
    """Import the heavy modules in a worker (timed apart from the fits)."""
    import nutpie  # noqa: F401
    import pymc  # noqa: F401

    import bayesbond.bayes.factor_model  # noqa: F401

    return os.getpid()


def _identical(a, b) -> tuple[bool, int]:
    n = 0
    for g in ("posterior", "sample_stats"):
        da, db = a[g].to_dataset(), b[g].to_dataset()
        if set(da.data_vars) != set(db.data_vars):
            return False, n
        for v in da.data_vars:
            x, y = da[v].values, db[v].values
            same = np.array_equal(x, y, equal_nan=x.dtype.kind == "f") if x.dtype != object \
                else x.astype(str).tolist() == y.astype(str).tolist()
            if not same:
                return False, n
            n += 1
    return True, n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bonds", type=int, default=300)
    ap.add_argument("--windows", type=int, default=24)
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--step", type=int, default=12)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=None, help="default: = draws")
    ap.add_argument("--chains", type=int, default=4)
    args = ap.parse_args(argv)
    tune = args.draws if args.tune is None else args.tune

    import distributed

    import bayesbond as bb

    n_dates = args.window + (args.windows - 1) * args.step
    sim = bb.datasets.simulate_panel(n_bonds=args.bonds, n_dates=n_dates, seed=18)
    model = bb.FactorModel(["CMKT", "TERM"], pooling="hierarchical")
    kw = dict(window=args.window, step=args.step, draws=args.draws, tune=tune,
              chains=args.chains, random_seed=2026, progressbar=False)
    print(f"rolling_fit: {args.windows} windows of {args.window} months (step {args.step}), "
          f"{args.bonds} bonds, hierarchical, {args.chains} chains x ({tune} + {args.draws}); "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        serial = bb.rolling_fit(model, sim.panel, sim.factors, **kw)
        t_serial = time.perf_counter() - t0
    st = serial["fit_stats"]
    print(f"serial:       {t_serial:7.1f} s  ({int((~st['compile_reused']).sum())} compile(s), "
          f"{float(st['compile_seconds'].sum()):.1f} s compiling, "
          f"{float(st['sampling_seconds'].sum()):.1f} s sampling)", flush=True)

    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
    client = distributed.Client(cluster)
    t_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    client.run(_warm)
    t_imports = time.perf_counter() - t0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            dist = bb.rolling_fit(model, sim.panel, sim.factors, client=client, **kw)
            t_dist = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()
    dt = dist["fit_stats"]
    per_worker = {w: int((dt["worker"].values == w).sum()) for w in set(dt["worker"].values)}
    print(f"2 workers:    {t_dist:7.1f} s  ({int((~dt['compile_reused']).sum())} compile(s), "
          f"fits per worker {sorted(per_worker.values())}; cluster start {t_start:.1f} s and "
          f"worker imports {t_imports:.1f} s not included)", flush=True)
    same, n = _identical(serial, dist)
    print(f"speed-up:     {t_serial / t_dist:.2f}x  (with start-up and imports: "
          f"{t_serial / (t_dist + t_start + t_imports):.2f}x; ideal about 2x on 2 cores)")
    print(f"bit-identical posterior and sample_stats ({n} variables): {same}")
    print(f"load after: {os.getloadavg()}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: exact blocked K-fold by date (``bb.kfold``) with compile-once refits.

Workload (issue 15, the one of ``benchmarks/bayes_factor.py``): 500 bonds x 240 months x 4
factors (CMKT, TERM, DEF, MKT), 3 rating buckets, 10% of the bond-months missing,
``bb.FactorModel(pooling="hierarchical")``, 4 chains x 1,000 draws after 1,000 tuning steps.

Printed, side by side:

* one full fit: wall, compile and sampling seconds;
* ``bb.kfold(k=10)`` with the same sampler settings (cold: every fold tunes from nutpie's
  default start): whether the folds after the first reuse the compiled sampler, wall time of
  the K-fold and its ratio to the sampling time of the full fit (target: at most 10x), the
  worst fold's R-hat and divergences, and the elpd;
* ``bb.kfold(k=10, warm_start=True, full_fit=...)`` with ``--warm-tune`` tuning steps: every
  fold starts at the full fit's posterior mean with its step size (nutpie accepts an initial
  point and step size but no initial mass matrix, so the mass matrix is adapted afresh).

Usage::

    python benchmarks/kfold.py                                  # full workload (~25 min here)
    python benchmarks/kfold.py --bonds 100 --dates 120 --draws 300 --tune 300 --warm-tune 100
"""

from __future__ import annotations

import argparse
import os
import re
import time
import warnings

import numpy as np

FACTORS = ["CMKT", "TERM", "DEF", "MKT"]


def _worst(folds):
    rh = [float(m.group(1)) for d in folds["diagnostics"]
          if (m := re.search(r"max R-hat ([0-9.]+)", d))]
    return (max(rh) if rh else float("nan")), int(folds["divergences"].max())


def _report(name, res, full_sampling):
    folds = res.folds
    reused = folds["compile_reused"].tolist()
    rhat, div = _worst(folds)
    print(f"{name}: wall {res.wall_seconds:7.1f} s = {res.wall_seconds / full_sampling:5.2f} x "
          f"the full fit's sampling; sampling {folds['sampling_seconds'].sum():7.1f} s, "
          f"compile {folds['compile_seconds'].sum():6.1f} s; folds that compiled: "
          f"{reused.count(False)} of {len(reused)} (the full fit compiled first); worst fold R-hat "
          f"{rhat:.4f}, max divergences {div}; elpd {res.elpd:.1f} (se {res.se:.1f})",
          flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bonds", type=int, default=500)
    ap.add_argument("--dates", type=int, default=240)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--warm-tune", type=int, default=300)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--skip-cold", action="store_true", help="run only the warm-started K-fold")
    args = ap.parse_args(argv)

    import bayesbond as bb

    sim = bb.datasets.simulate_panel(n_bonds=args.bonds, n_dates=args.dates,
                                     factor_names=FACTORS, seed=args.seed, missing=0.1)
    print(f"workload: {args.bonds} bonds x {args.dates} months x {len(FACTORS)} factors, "
          f"{int(sim.panel.observed.sum())} observed returns; {args.chains} chains x "
          f"{args.draws} draws after {args.tune} tune; k = {args.k}; {os.cpu_count()} CPU cores",
          flush=True)
    model = bb.FactorModel(FACTORS, pooling="hierarchical")
    kw = dict(draws=args.draws, chains=args.chains, random_seed=args.seed, progressbar=False)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bb.ConvergenceWarning)
        full = model.fit(sim.panel, sim.factors, tune=args.tune, log_likelihood=False, **kw)
    wall = time.perf_counter() - t0
    samp = float(full.attrs["sampling_seconds"])
    print(f"full fit: wall {wall:.1f} s, compile {full.attrs['compile_seconds']:.1f} s, "
          f"sampling {samp:.1f} s; {full.attrs['diagnostics']}", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not args.skip_cold:
            cold = bb.kfold(model, sim.panel, sim.factors, k=args.k, tune=args.tune, **kw)
            _report(f"kfold(k={args.k}), tune {args.tune}", cold, samp)
        warm = bb.kfold(model, sim.panel, sim.factors, k=args.k, tune=args.warm_tune,
                        full_fit=full, warm_start=True, **kw)
    _report(f"kfold(k={args.k}), warm start, tune {args.warm_tune}", warm, samp)
    if not args.skip_cold:
        d = warm.elpd_i.values - cold.elpd_i.values
        print(f"warm - cold elpd: {d.sum():.2f} (per date: mean {d.mean():.3f}, max |.| "
              f"{np.abs(d).max():.3f})")


if __name__ == "__main__":
    main()

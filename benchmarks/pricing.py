"""Benchmark: Bayesian SDF factor selection (``bb.pricing.select_factors``) against two-pass
Fama-MacBeth (linearmodels' ``LinearFactorModel``, the frequentist twin).

Workload (issue 16): K = 14 candidate factors, N = 25 test assets, T = 600 months, 50,000
posterior draws (4 chains x 12,500 after 1,000 burn-in sweeps), continuous spike-and-slab with
the prior Sharpe ratio at half the test assets' in-sample maximum. The economy: 4 priced
factors (SDF loading 0.15 per unit-variance factor), 2 useless (zero betas), 8 unpriced (betas,
zero price); Student-t(5) factors, normal noise, pricing errors of 0.03 in Sharpe units.

Printed: wall time of each (ours: from the DataFrames to the finished DataTree, the numba
compile counted only if not cached yet: a warm-up fit runs first unless ``--cold``), the ratio,
draws per second, R-hat/ESS, the largest difference of the posterior inclusion
probabilities between two seeds (issue 16: at most 0.02), and the largest difference from the
exact Dirac enumeration of all 2^14 models on the same data.

Usage::

    python benchmarks/pricing.py                 # full workload
    python benchmarks/pricing.py --draws 10000   # quicker (total draws)
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

import bayesbond as bb


def simulate(T: int, N: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    kinds = ["priced"] * 4 + ["useless"] * 2 + ["unpriced"] * 8
    K = len(kinds)
    f = rng.standard_t(5, (T, K)) / np.sqrt(5 / 3)
    B = np.where(np.array(kinds) == "useless", 0.0, rng.normal(0.0, 0.7, (N, K)))
    b = np.where(np.array(kinds) == "priced", 0.15, 0.0)
    sd_R = np.sqrt((B**2).sum(axis=1) + 1.0)
    mu = B @ b + sd_R * rng.normal(0.0, 0.03, N)
    R = mu + f @ B.T + rng.standard_normal((T, N))
    dates = pd.period_range("1970-01", periods=T, freq="M")
    names = [f"{k}{i}" for i, k in enumerate(kinds)]
    return (pd.DataFrame(R, index=dates, columns=[f"p{i:02d}" for i in range(N)]),
            pd.DataFrame(f, index=dates, columns=names))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=600)
    ap.add_argument("--N", type=int, default=25)
    ap.add_argument("--draws", type=int, default=50_000, help="total draws (all chains)")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--cold", action="store_true", help="no warm-up fit")
    args = ap.parse_args()
    R, f = simulate(args.T, args.N)
    from bayesbond.pricing.sdf_kernels import max_sharpe

    prior_sr = 0.5 * max_sharpe(R.to_numpy())
    per_chain = args.draws // args.chains
    kw = dict(prior_sharpe=prior_sr, draws=per_chain, tune=args.tune, chains=args.chains,
              progressbar=False)
    print(f"K = {f.shape[1]} factors, N = {R.shape[1]} test assets, T = {len(R)} months; "
          f"{args.chains} chains x {per_chain:,} draws (+{args.tune} burn-in); prior SR "
          f"{prior_sr:.3f} per month; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; load {os.getloadavg()}")
    if not args.cold:
        t = time.perf_counter()
        with warnings.catch_warnings():  # 50 draws: too few for the convergence check
            warnings.simplefilter("ignore")
            bb.pricing.select_factors(R, f, **{**kw, "draws": 50, "tune": 10}, random_seed=99)
        print(f"warm-up fit (numba compile or cache load): {time.perf_counter() - t:.1f} s")

    fits, times = [], []
    for seed in (1, 2):
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            fits.append(bb.pricing.select_factors(R, f, random_seed=seed, **kw))
        times.append(time.perf_counter() - t)
        print(f"seed {seed}: {times[-1]:.2f} s, {args.draws / times[-1]:,.0f} draws/s; "
              f"{fits[-1].attrs['diagnostics']}" + (f"; {len(w)} warning(s)" if w else ""))

    from linearmodels.asset_pricing import LinearFactorModel

    reps = 20
    t = time.perf_counter()
    for _ in range(reps):
        fm = LinearFactorModel(R, f).fit()
    t_fm = (time.perf_counter() - t) / reps
    print(f"linearmodels LinearFactorModel (two-pass, default covariance): {t_fm:.4f} s "
          f"per fit (mean of {reps})")
    print(f"ratio Bayesian selection / Fama-MacBeth: {times[0] / t_fm:,.0f}x "
          f"({times[0]:.2f} s vs {t_fm:.4f} s)")

    pip = [x["summary"]["inclusion_probability"].to_series() for x in fits]
    diff = (pip[0] - pip[1]).abs()
    table = pd.DataFrame({"pip_seed1": pip[0], "pip_seed2": pip[1],
                          "lambda_mean": fits[0]["summary"]["lambda_mean"].to_series(),
                          "fm_tstat": fm.risk_premia_tstats.reindex(pip[0].index)})
    print(table.round(3).to_string())
    print(f"max |PIP(seed 1) - PIP(seed 2)| = {diff.max():.4f} (target <= 0.02) "
          f"at {diff.idxmax()}")
    t = time.perf_counter()
    dirac = bb.pricing.select_factors(R, f, **{**kw, "draws": 500}, method="dirac",
                                      random_seed=3)
    t_d = time.perf_counter() - t
    pd_ = dirac["summary"]["inclusion_probability"].to_series()
    print(f"Dirac (exact 2^14 = 16,384 models per moment draw, {4 * 500:,} moment draws): "
          f"{t_d:.2f} s; max |PIP(continuous) - PIP(Dirac)| = {(pip[0] - pd_).abs().max():.4f}"
          f" (Dirac's own Monte Carlo sd over the moment draws <= {np.sqrt(0.25 / 2000):.3f})")
    post = fits[0]["posterior"]
    print(f"SDF Sharpe ratio (posterior mean) {float(post['sdf_sharpe'].mean()):.3f} per month; "
          f"mean number of factors {float(post['n_factors'].mean()):.2f}")


if __name__ == "__main__":
    main()

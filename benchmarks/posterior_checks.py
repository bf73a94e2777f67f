"""Post-sampling work on large fits: PSIS-LOO and convergence diagnostics vs arviz_stats.

    python benchmarks/posterior_checks.py [--bonds 300] [--dates 240] [--draws 1000]

* PSIS-LOO of a factor-model fit: ``bb.workflow.loglik.loo`` (chunked pointwise log-likelihood,
  PSIS vectorised over observations) vs ``arviz_stats.loo`` on the full pointwise array (its
  per-observation PSIS), on the same fit: exact posterior draws of the flat-prior unpooled
  regression (4 chains), so no sampling is needed;
* convergence diagnostics: ``bayesbond.bayes.sampling.diagnostics`` (vectorised rank-normalised
  R-hat, bulk and tail ESS) vs ``arviz_stats.rhat`` + ``ess(method="bulk")`` +
  ``ess(method="tail")`` on the same posterior (AR(1) chains, one element per bond and factor).

Both print wall times, the ratio and the largest difference between the two answers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import xarray as xr

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.workflow.test_loglik import conjugate_fit, simulate  # noqa: E402  (exact draws)


def bench_loo(args) -> None:
    import arviz_stats as azs

    from bayesbond.workflow.loglik import add_log_likelihood, loo

    y, F = simulate(T=args.dates, B=args.bonds, K=4, seed=3, missing=0.1)
    tree = conjugate_fit(y, F, ["CMKT", "TERM", "DEF", "MKT"], chains=4, draws=args.draws)
    n_obs = int(np.isfinite(y).sum())
    print(f"PSIS-LOO: {args.bonds} bonds x {args.dates} months ({n_obs} observed returns), "
          f"4 chains x {args.draws} draws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        ours = loo(tree)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        full = tree.copy()
        add_log_likelihood(full)
        ref = azs.loo(full, pointwise=True, var_name="returns")
        t_ref = time.perf_counter() - t
    d_elpd = abs(ours.elpd - ref.elpd)
    d_k = float(np.max(np.abs(ours.pareto_k.values - ref.pareto_k.values)))
    print(f"  bayesbond loo (chunked)          {t_ours:8.2f} s   elpd {ours.elpd:.3f}")
    print(f"  arviz_stats.loo (full array)     {t_ref:8.2f} s   elpd {ref.elpd:.3f}")
    print(f"  ratio {t_ref / t_ours:.1f}x; |elpd difference| {d_elpd:.2e}, "
          f"max |pareto k difference| {d_k:.2e}")


def bench_diagnostics(args) -> None:
    import arviz_stats as azs

    from bayesbond.bayes.sampling import diagnostics

    rng = np.random.default_rng(0)
    C, D, n = 4, args.draws, args.bonds * 5
    phi = rng.uniform(0.0, 0.9, n)
    x = np.empty((C, D, n))
    x[:, 0] = rng.standard_normal((C, n))
    for t in range(1, D):
        x[:, t] = phi * x[:, t - 1] + rng.standard_normal((C, n))
    post = xr.Dataset({"beta": (("chain", "draw", "bond", "coef"),
                                x.reshape(C, D, args.bonds, 5))})
    tree = xr.DataTree.from_dict({"posterior": post})
    print(f"\nconvergence diagnostics: {n} elements, {C} chains x {D} draws")
    t = time.perf_counter()
    d = diagnostics(tree)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    r = float(azs.rhat(post)["beta"].max())
    b = float(azs.ess(post, method="bulk")["beta"].min())
    tl = float(azs.ess(post, method="tail")["beta"].min())
    t_ref = time.perf_counter() - t
    print(f"  bayesbond diagnostics            {t_ours:8.2f} s   {d}")
    print(f"  arviz_stats rhat + ess x 2       {t_ref:8.2f} s   max R-hat {r:.4f}, "
          f"min bulk ESS {b:.0f}, min tail ESS {tl:.0f}")
    rel = max(abs(d.max_rhat - r) / r, abs(d.min_ess_bulk - b) / b, abs(d.min_ess_tail - tl) / tl)
    print(f"  ratio {t_ref / t_ours:.1f}x; largest relative difference {rel:.1e}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bonds", type=int, default=300)
    ap.add_argument("--dates", type=int, default=240)
    ap.add_argument("--draws", type=int, default=1000)
    args = ap.parse_args(argv)
    bench_loo(args)
    bench_diagnostics(args)


if __name__ == "__main__":
    main()

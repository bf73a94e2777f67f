"""Benchmark: one log density + gradient of the factor model, fused kernel vs the plain graph.

The hierarchical factor model on 500 bonds x 240 months x 4 factors (the ``bayes_factor.py``
workload), compiled by PyTensor's numba backend as nutpie compiles it, twice in one process:
with the collapsed likelihood as the fused kernel (``bayes.factor_kernel.CollapsedLoglik``, what
``FactorModel`` uses) and as the plain PyTensor graph of
``bayes.factor_likelihood.collapsed_loglik_pt`` differentiated by PyTensor (what it used
before). Timing rounds alternate between the two so that both meet the same load; prints the
median time per evaluation, the ratio, and the largest relative differences of the log density
and the gradient at random points.

Usage: ``.venv/bin/python benchmarks/gradient.py [--bonds 500] [--evals 1000]
[--pooling hierarchical] [--date-effects none]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

FACTORS = ["CMKT", "TERM", "DEF", "MKT"]


def plain_graph(XtX_t, Xty, yty, n, sigma, m, S, group=None, *, pooled=False,
                bonds_last=False):
    """The collapsed likelihood as the plain graph, in ``collapsed_loglik_fused``'s signature."""
    import pytensor.tensor as pt

    from bayesbond.bayes.factor_likelihood import collapsed_loglik_pt

    XtX = pt.transpose(XtX_t, (2, 0, 1)) if bonds_last else XtX_t
    if pooled:
        return collapsed_loglik_pt(XtX, Xty, yty, n, sigma, m, S, pooled=True)
    return pt.sum(collapsed_loglik_pt(XtX, Xty, yty, n, sigma, m[group], S[group]))


def main(argv=None):
    import bayesbond as bb
    import bayesbond.bayes.factor_model as fmod
    from bayesbond.bayes.sampling import ieee_compile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bonds", type=int, default=500)
    ap.add_argument("--dates", type=int, default=240)
    ap.add_argument("--evals", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--pooling", default="hierarchical")
    ap.add_argument("--date-effects", default="none")
    args = ap.parse_args(argv)
    de = None if args.date_effects == "none" else args.date_effects
    sim = bb.datasets.simulate_panel(n_bonds=args.bonds, n_dates=args.dates,
                                     factor_names=FACTORS, seed=2024, missing=0.1,
                                     group_shock=0.002)
    fm = bb.FactorModel(FACTORS, pooling=args.pooling, date_effects=de)
    data, pri = fm.prepare(sim.panel, sim.factors)
    fused = fmod.collapsed_loglik_fused
    rng = np.random.default_rng(0)
    res = {}
    try:
        for name, fn in (("plain graph", plain_graph), ("fused kernel", fused)):
            fmod.collapsed_loglik_fused = fn
            model = fm.build_model(data, pri)
            t0 = time.perf_counter()
            with ieee_compile():
                f = model.logp_dlogp_function(mode="NUMBA", ravel_inputs=True)
                f.set_extra_values({})
                ip = model.initial_point()
                x0 = np.concatenate([np.ravel(ip[v.name]) for v in f._grad_vars])
                f(x0)
            res[name] = {"f": f, "compile": time.perf_counter() - t0, "times": []}
    finally:
        fmod.collapsed_loglik_fused = fused
    points = [x0 + 0.3 * rng.standard_normal(x0.size) for _ in range(5)]
    for _ in range(args.rounds):
        for r in res.values():
            t0 = time.perf_counter()
            for _ in range(args.evals):
                r["f"](points[0])
            r["times"].append((time.perf_counter() - t0) / args.evals)
    print(f"{args.bonds} bonds x {args.dates} months x {len(FACTORS)} factors, {args.pooling}, "
          f"date_effects={de}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, r in res.items():
        print(f"{name:13s}: {1e3 * np.median(r['times']):.4f} ms per log density + gradient "
              f"(median of {args.rounds} x {args.evals}); compile {r['compile']:.1f} s")
    a, b = res["plain graph"], res["fused kernel"]
    dl = dg = 0.0
    for x in points:
        (la, ga), (lb, gb) = a["f"](x), b["f"](x)
        dl = max(dl, abs(la - lb) / abs(la))
        dg = max(dg, float(np.max(np.abs(ga - gb)) / np.max(np.abs(ga))))
    print(f"speed-up {np.median(a['times']) / np.median(b['times']):.2f}x; relative "
          f"differences at 5 random points: log density {dl:.1e}, gradient {dg:.1e}")


if __name__ == "__main__":
    main()

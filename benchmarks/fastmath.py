"""Cost of compiling without fastmath (bit-identical draws across processes, issue 12).

The factor model's log density and gradient on the 500-bond x 240-month x 2-factor hierarchical
workload, compiled by PyTensor's numba backend with ``numba__fastmath`` on (PyTensor's default) and
off (what ``bayesbond.bayes.sampling.ieee_compile`` uses), in one run; prints the time per
evaluation and the ratio, and checks that the two agree to rounding.

Usage: ``.venv/bin/python benchmarks/fastmath.py [--bonds 500] [--evals 3000]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pytensor

import bayesbond as bb


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bonds", type=int, default=500)
    p.add_argument("--evals", type=int, default=3000)
    args = p.parse_args(argv)
    sim = bb.datasets.simulate_panel(n_bonds=args.bonds, n_dates=240, seed=1)
    fm = bb.FactorModel(["CMKT", "TERM"], pooling="hierarchical")
    data, pri = fm.prepare(sim.panel, sim.factors)
    model = fm.build_model(data, pri)
    ip = model.initial_point()
    out, times = {}, {}
    for fast in (True, False):
        with pytensor.config.change_flags(numba__fastmath=fast):
            f = model.logp_dlogp_function(mode="NUMBA", ravel_inputs=True)
            f.set_extra_values({})
            x = np.concatenate([np.ravel(ip[v.name]) for v in f._grad_vars])
            out[fast] = f(x)
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(args.evals):
                    f(x)
                best = min(best, (time.perf_counter() - t0) / args.evals)
            times[fast] = best
    dl = abs(out[True][0] - out[False][0]) / abs(out[False][0])
    dg = np.max(np.abs(out[True][1] - out[False][1])) / np.max(np.abs(out[False][1]))
    print(f"{args.bonds} bonds x 240 months, hierarchical, 2 factors; load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"fastmath on : {1e3 * times[True]:.3f} ms per log density + gradient")
    print(f"fastmath off: {1e3 * times[False]:.3f} ms per log density + gradient")
    print(f"ratio off/on: {times[False] / times[True]:.2f}x; relative differences: logp {dl:.1e}, "
          f"gradient {dg:.1e}")


if __name__ == "__main__":
    main()

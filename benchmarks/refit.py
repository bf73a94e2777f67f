"""Benchmark: compile once, refit many.

Side by side in one run, for ``FactorModel`` (hierarchical, 500 bonds x 240 months, 2 factors)
and ``AffineModel`` (3 factors, 8 maturities, 300 months, Laplace-preconditioned):

* first fit in this process (compiles),
* refit on new data of the same shapes in the same process (other months and bonds: reuses the
  compiled sampler, ``sample(compile_key=...)``),
* first fit in a fresh Python process (``subprocess``; PyTensor's on-disk numba cache is warm).

Set-up is everything but sampling: wall time minus ``sampling_seconds`` (preparing, building,
compiling or reusing, post-processing). Targets (issue #14): a refit's set-up at most 5% of the
first fit's; a fresh-process AffineModel fit starts sampling within 30 s.

Run: ``python benchmarks/refit.py [--family factor|affine|both] [--draws 100]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def _factor_data(seed):
    import bayesbond as bb

    sim = bb.datasets.simulate_panel(n_bonds=500, n_dates=240, seed=seed)
    return (sim.panel, sim.factors[["CMKT", "TERM"]])


def _affine_data(seed):
    sys.path.insert(0, str(Path(__file__).parent))
    from affine_fit import _model

    y = _model(T=300, seed=seed)[0]
    tau = [0.25, 0.5, 1, 2, 3, 5, 7, 10.0]
    index = pd.date_range("1990-01-31", periods=len(y), freq="ME")
    return (pd.DataFrame(y, index=index, columns=tau),)


def _one(family, seed, draws):
    """One fit: (wall seconds, sampling seconds, compile seconds, reused)."""
    import bayesbond as bb

    if family == "factor":
        model, data = bb.FactorModel(["CMKT", "TERM"]), _factor_data(seed)
    else:
        model, data = bb.AffineModel(3), _affine_data(seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(*data, draws=draws, tune=draws, chains=2, random_seed=1,
                        progressbar=False, log_likelihood=False)
    wall = time.perf_counter() - t0
    return (wall, float(fit.attrs["sampling_seconds"]), float(fit.attrs["compile_seconds"]),
            bool(fit.attrs.get("compile_reused", False)))


def _fresh(family, seed, draws):
    here = str(Path(__file__).parent)
    code = (f"import json, sys; sys.path.insert(0, {here!r}); import refit; "
            f"print(json.dumps(refit._one({family!r}, {seed}, {draws})))")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total = time.perf_counter() - t0
    wall, samp, comp, reused = json.loads(out.stdout.strip().splitlines()[-1])
    return wall, samp, comp, reused, total


def bench(family, draws):
    rows = []
    first = _one(family, 1, draws)
    refit = _one(family, 2, draws)
    fresh = _fresh(family, 3, draws)
    for label, r in (("first fit (compiles)", first), ("refit, same process", refit),
                     ("first fit, fresh process", fresh)):
        setup = r[0] - r[1]
        rows.append({"run": label, "wall_s": r[0], "sampling_s": r[1], "compile_s": r[2],
                     "setup_s": setup, "setup / first setup": setup / (first[0] - first[1]),
                     "reused": r[3]})
    table = pd.DataFrame(rows).set_index("run")
    print(f"\n{family}: {draws} tuning + {draws} draws x 2 chains")
    print(table.round(3).to_string())
    print(f"fresh process: {fresh[4]:.1f} s including interpreter start and imports")
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="both", choices=["factor", "affine", "both"])
    ap.add_argument("--draws", type=int, default=100)
    args = ap.parse_args(argv)
    import nutpie
    import pymc
    import pytensor

    print(f"pymc {pymc.__version__}, pytensor {pytensor.__version__}, nutpie "
          f"{nutpie.__version__}; load {np.round(__import__('os').getloadavg(), 2).tolist()}")
    for fam in (["factor", "affine"] if args.family == "both" else [args.family]):
        bench(fam, args.draws)


if __name__ == "__main__":
    main()

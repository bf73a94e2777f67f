"""The same random_seed gives bit-identical posteriors across processes.

Two fresh Python processes with different ``PYTHONHASHSEED`` fit a small FactorModel and a 1-D
OUModel with the same seed. The first compiles into an empty PyTensor cache directory (every
numba function freshly compiled), the second finds them cached: the two paths that used to give
different draws (with numba's fastmath flags, a freshly compiled log density, inlined into one
LLVM module, rounds differently from the same graph linked from cached pieces).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys, warnings
import numpy as np
import pandas as pd
warnings.simplefilter("ignore")
import bayesbond as bb
sim = bb.datasets.simulate_panel(n_bonds=6, n_dates=48, seed=11, missing=0.1)
fit = bb.FactorModel(["CMKT", "TERM"], pooling="hierarchical").fit(
    sim.panel, sim.factors, draws=60, tune=60, chains=2, random_seed=7, log_likelihood=False)
x = 0.03 + 0.001 * np.cumsum(np.random.default_rng(1).normal(size=100))
ou = bb.OUModel().fit(x, 1 / 12, draws=60, tune=60, chains=2, random_seed=7,
                      log_likelihood=False)
out = {}
for tag, t in (("factor", fit), ("ou", ou)):
    post = t["posterior"].to_dataset()
    for v in post.data_vars:
        out[f"{tag}/{v}"] = post[v].values
np.savez(sys.argv[1], **out)
"""


def _run(tmp_path, name, hashseed, compiledir):
    env = {**os.environ, "PYTHONHASHSEED": str(hashseed), "PYTHONPATH": str(ROOT),
           "PYTENSOR_FLAGS": f"base_compiledir={compiledir}", "OPENBLAS_NUM_THREADS": "1"}
    out = tmp_path / f"{name}.npz"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out))


@pytest.mark.slow
def test_same_seed_gives_bit_identical_posteriors_across_processes(tmp_path):
    cache = tmp_path / "pytensor_cache"
    cold = _run(tmp_path, "cold", 0, cache)  # empty cache: everything compiled afresh
    warm = _run(tmp_path, "warm", 1, cache)  # another hash seed, compiled pieces cached
    assert cold.keys() == warm.keys() and any(k.startswith("ou/") for k in cold)
    differ = [k for k in cold if cold[k].tobytes() != warm[k].tobytes()]
    assert not differ, f"posterior arrays differ between the processes: {differ}"

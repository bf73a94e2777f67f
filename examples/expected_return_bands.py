"""Uncertainty bands on expected bond returns, E[R] = alpha + beta'E[F], from the posterior.

What it shows
-------------
* the posterior of each bond's expected return with ``bb.expected_returns``: mean and a 94%
  interval, first with the factor means fixed at their sample values, then also carrying the
  sampling uncertainty of E[F];
* the same number from OLS with delta-method standard errors (``OLSResult.expected_return``);
* a plot of the bands by rating bucket (``bb.plots.plot_expected_returns``).

Run ``python examples/expected_return_bands.py [--fast] [--out DIR]``.
"""

import argparse
from pathlib import Path

import bayesbond as bb

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--fast", action="store_true", help="tiny panel and short chains (< 1 min)")
parser.add_argument("--out", default="example-output", help="folder for the plot")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

if args.fast:
    sim = bb.datasets.simulate_panel(n_bonds=30, n_dates=60, seed=3)
    settings = {"draws": 200, "tune": 200, "chains": 2}
else:
    sim = bb.datasets.load_demo()
    settings = {"draws": 1000, "tune": 1000, "chains": 4}

idata = bb.FactorModel(factors=["CMKT", "TERM"], pooling="hierarchical").fit(
    sim.panel, sim.factors, random_seed=3, **settings)

er = bb.expected_returns(idata, prob=0.94)
print("posterior expected returns (decimal per month), E[F] fixed at the sample means:")
print(er.head())
er_f = bb.expected_returns(idata, prob=0.94, factor_uncertainty=True, random_seed=3)
print("... and carrying the uncertainty of E[F] (wider bands):")
print(er_f.head())
print("per rating bucket:")
print(bb.expected_returns(idata, by="rating_bucket", factor_uncertainty=True, random_seed=3))

ols = bb.ols(sim.panel, sim.factors).expected_return(sim.factors.mean())
print("OLS expected returns with delta-method standard errors, first bonds:")
print(ols.head())

groups = idata["constant_data"]["group"].to_pandas()
fig = bb.plots.plot_expected_returns(er_f, buckets=groups, ols=ols["mean"],
                                     title="Expected returns by rating bucket (annualised)")
print("wrote", bb.plots.save_png(fig, out / "expected_returns.png"))

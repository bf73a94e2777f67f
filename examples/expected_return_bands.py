"""Uncertainty bands on expected bond returns, E[R] = alpha + beta'E[F], from the posterior.

What it shows
-------------
* the posterior of each bond's expected return with ``bb.expected_returns``: mean and a 94%
  interval carrying the uncertainty of E[F] (the default, robust to autocorrelated factors),
  then, for comparison only, with the factor means fixed at their sample values (too narrow);
* bucket bands over the panel's bonds (equal- and value-weighted) and for a typical bond of the
  bucket (``level="population"``);
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

er_f = bb.expected_returns(idata, prob=0.94, random_seed=3)
print(f"posterior expected returns (decimal per month), {er_f.attrs['band']}:")
print(er_f.head())
er = bb.expected_returns(idata, prob=0.94, factor_uncertainty=False)
print("... and, for comparison only, with E[F] fixed at the sample means (too narrow):")
print(er.head())
for kw in ({}, {"weights": sim.panel}, {"level": "population"}):
    er_g = bb.expected_returns(idata, by="rating_bucket", random_seed=3, **kw)
    print(f"per rating bucket, {er_g.attrs['band']}:")
    print(er_g)

ols = bb.ols(sim.panel, sim.factors).expected_return(sim.factors.mean())
print("OLS expected returns with delta-method standard errors, first bonds:")
print(ols.head())

groups = idata["constant_data"]["group"].to_pandas()
fig = bb.plots.plot_expected_returns(er_f, buckets=groups, ols=ols["mean"],
                                     title="Expected returns by rating bucket (annualised)")
print("wrote", bb.plots.save_png(fig, out / "expected_returns.png"))

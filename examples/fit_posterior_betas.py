"""Fit posterior betas: a hierarchical Bayesian factor model of bond returns next to OLS.

What it shows
-------------
* building a bond panel (here the package's simulated demo panel, whose true betas are known);
* the OLS baseline, bond by bond (``bb.ols``);
* the Bayesian factor model with betas partially pooled within rating buckets
  (``bb.FactorModel(pooling="hierarchical")``), its convergence diagnostics, and the bucket-level
  betas it estimates next to the truth and to the OLS averages;
* the plot of every bond's posterior interval by rating bucket, with the OLS estimates
  (``bb.plots.plot_betas_by_bucket``), and saving the fit losslessly (``bb.save``).

Run ``python examples/fit_posterior_betas.py [--fast] [--out DIR]``.
"""

import argparse
from pathlib import Path

import bayesbond as bb

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--fast", action="store_true", help="tiny panel and short chains (< 1 min)")
parser.add_argument("--out", default="example-output", help="folder for the plot and the fit")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# data: returns (date x bond) with ratings, and factor returns (date x factor)
if args.fast:
    sim = bb.datasets.simulate_panel(n_bonds=30, n_dates=60, seed=1)
    settings = {"draws": 200, "tune": 200, "chains": 2}
else:
    sim = bb.datasets.load_demo()
    settings = {"draws": 1000, "tune": 1000, "chains": 4}
panel, factors = sim.panel, sim.factors
print(panel)

# frequentist baseline: one regression per bond
ols = bb.ols(panel, factors)

# Bayesian: bond betas ~ N(bucket mean, bucket dispersion), non-centred
model = bb.FactorModel(factors=list(factors.columns), pooling="hierarchical")
idata = model.fit(panel, factors, random_seed=1, **settings)
print("diagnostics:", idata.attrs["diagnostics"])

# bucket-level betas: truth, posterior mean, and the average OLS beta of the bucket's bonds
post = idata["posterior"]
groups = idata["constant_data"]["group"].to_pandas()
for bucket in ["IG+", "IG-", "HY"]:
    for f in factors.columns:
        true = float(sim.truth["beta"].sel(factor=f, bond=groups.index[groups == bucket]).mean())
        mu = post["mu_beta"].sel(rating_bucket=bucket, factor=f)
        ols_mean = ols.params.loc[groups.index[groups == bucket], f].mean()
        print(f"{bucket:>3} {f}: true {true:6.3f}  posterior {float(mu.mean()):6.3f} "
              f"(sd {float(mu.std()):.3f})  OLS average {ols_mean:6.3f}")

fig = bb.plots.plot_betas_by_bucket(idata, ols=ols, title="Posterior betas by rating bucket")
print("wrote", bb.plots.save_png(fig, out / "betas_by_bucket.png"))
print("wrote", bb.save(idata, out / "hierarchical.nc", overwrite=True))

"""Benchmark: hierarchical Bayesian factor regression, bayesbond vs naive PyMC vs Bambi.

Workload (issue 3): 500 bonds x 240 months x 4 factors (CMKT, TERM, DEF, MKT), 3 rating buckets,
4 chains x 1,000 draws after 1,000 tuning steps, simulated by ``bb.datasets.simulate_panel``.

* ours: ``bb.FactorModel(pooling="hierarchical")``: likelihood from exact per-bond sufficient
  statistics, alpha/beta integrated out and redrawn from their exact conditional posterior;
* naive PyMC: the same model and priors written the textbook way: non-centred bond coefficients
  and one ``pm.Normal`` likelihood node entry per observed (bond, month); residual log-scales
  centred (the same prior; FactorModel samples them in partially centred coordinates);
* Bambi: ``ret ~ 0 + F + (0 + F | bucket) + (1 + F | bond)`` (its default priors; one residual
  scale), bond betas = common + bucket + bond effects; sampled with ``inference_method="nutpie"``
  by default (Bambi's fastest NUTS on this machine; its default ``"pymc"`` runs PyMC's own sampler,
  much slower here).

Each is timed from model building to the finished posterior (compilation included) and scored by
the minimum bulk ESS over all bond betas per second of wall time. R-hat, divergences and the
agreement of the posterior means of the betas are printed. The panel carries a shock per rating
bucket and month (``--group-shock``, 0.2%), and ours is also fitted with
``date_effects="group"`` (``--date-effects``): its wall time over ours without date effects is
printed (issue 15: at most 2x, R-hat <= 1.01, no divergences).

Usage::

    python benchmarks/bayes_factor.py                      # full workload, all three
    python benchmarks/bayes_factor.py --peers naive        # skip Bambi
    python benchmarks/bayes_factor.py --bonds 100 --dates 120 --draws 500 --tune 500  # quick
    python benchmarks/bayes_factor.py --peer-bonds 100     # peers on a smaller panel (printed)
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

FACTORS = ["CMKT", "TERM", "DEF", "MKT"]


def min_ess_rhat(beta):
    """Minimum bulk ESS and maximum R-hat over a (chain, draw, ...) DataArray of betas."""
    import arviz_stats as azs

    ess = azs.ess(beta, method="bulk")
    rhat = azs.rhat(beta)
    return float(ess.min()), float(rhat.max())


def run_ours(sim, args, date_effects=None):
    import bayesbond as bb

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bb.ConvergenceWarning)
        warnings.simplefilter("ignore", bb.CrossSectionalDependenceWarning)
        fit = bb.FactorModel(FACTORS, pooling="hierarchical", date_effects=date_effects).fit(
            sim.panel, sim.factors, draws=args.draws, tune=args.tune, chains=args.chains,
            random_seed=args.seed, log_likelihood=False)
    wall = time.perf_counter() - t0
    beta = fit["posterior"]["beta"].transpose("chain", "draw", "bond", "factor")
    div = int(fit["sample_stats"]["diverging"].sum())
    if date_effects:
        from bayesbond.bayes.sampling import diagnostics

        print(f"  date effects ({date_effects}): all parameters {diagnostics(fit)}")
    return wall, beta, div


def naive_model(sim, bb_pri):
    """The same hierarchical model, non-centred, one likelihood entry per observation."""
    import pymc as pm
    import pytensor.tensor as pt

    R = sim.panel.returns.transpose("date", "bond")
    y = R.values
    F = sim.factors.loc[R["date"].values, FACTORS].to_numpy()
    groups = sim.panel.bond_bucket()
    names = [g for g in ("IG+", "IG-", "HY") if g in set(groups)]
    gi = np.array([names.index(g) for g in groups])
    t_idx, b_idx = np.nonzero(np.isfinite(y))
    coords = {"bond": list(R["bond"].values), "factor": FACTORS, "rating_bucket": names,
              "coef": ["alpha", *FACTORS]}
    with pm.Model(coords=coords) as model:
        mu_ls = pm.Normal("mu_log_sigma", bb_pri["log_sigma_mean"], bb_pri["log_sigma_sd"],
                          dims="rating_bucket")
        tau_ls = pm.HalfNormal("tau_log_sigma", bb_pri["tau_log_sigma"], dims="rating_bucket")
        log_sigma = pm.Normal("log_sigma", mu_ls[gi], tau_ls[gi], dims="bond")  # centred
        sigma = pt.exp(log_sigma)
        mu_a = pm.Normal("mu_alpha", 0, bb_pri["alpha_scale"], dims="rating_bucket")
        mu_b = pm.Normal("mu_beta", bb_pri["beta_mean"], bb_pri["beta_scale"],
                         dims=("rating_bucket", "factor"))
        tau_a = pm.HalfNormal("tau_alpha", bb_pri["tau_alpha"], dims="rating_bucket")
        tau_b = pm.HalfNormal("tau_beta", bb_pri["tau_beta"], dims=("rating_bucket", "factor"))
        z = pm.Normal("z_theta", 0, 1, dims=("bond", "coef"))
        alpha = mu_a[gi] + tau_a[gi] * z[:, 0]
        beta = pm.Deterministic("beta", mu_b[gi] + tau_b[gi] * z[:, 1:], dims=("bond", "factor"))
        mu = alpha[b_idx] + pt.sum(pt.as_tensor(F[t_idx]) * beta[b_idx], axis=1)
        pm.Normal("ret", mu=mu, sigma=sigma[b_idx], observed=y[t_idx, b_idx])
    return model


def run_naive(sim, args):
    import pymc as pm

    import bayesbond as bb

    _, pri = bb.FactorModel(FACTORS, pooling="hierarchical").prepare(sim.panel, sim.factors)
    t0 = time.perf_counter()
    model = naive_model(sim, pri)
    idata = pm.sample(draws=args.draws, tune=args.tune, chains=args.chains, model=model,
                      random_seed=args.seed, progressbar=False, compute_convergence_checks=False)
    wall = time.perf_counter() - t0
    beta = idata["posterior"]["beta"].transpose("chain", "draw", "bond", "factor")
    return wall, beta, int(idata["sample_stats"]["diverging"].sum())


def run_bambi(sim, args):
    import bambi as bmb
    import pandas as pd
    import xarray as xr

    df = sim.panel.returns.to_dataframe(name="ret").reset_index().dropna(subset=["ret"])
    buckets = sim.panel.bond_bucket()
    df["bucket"] = df["bond"].map(buckets).astype(str)
    df["bond"] = df["bond"].astype(str)
    F = sim.factors[FACTORS]
    df = df.join(F, on="date")
    df = pd.DataFrame(df)
    f = " + ".join(FACTORS)
    formula = f"ret ~ 0 + {f} + (0 + {f} | bucket) + (1 + {f} | bond)"
    t0 = time.perf_counter()
    model = bmb.Model(formula, df)
    idata = model.fit(draws=args.draws, tune=args.tune, chains=args.chains,
                      random_seed=args.seed, progressbar=False,
                      inference_method=args.bambi_sampler)
    wall = time.perf_counter() - t0
    post = idata["posterior"]
    bonds = [str(b) for b in sim.panel.bonds]
    parts = []
    for k in FACTORS:
        common = post[k]
        by_bucket = post[f"{k}|bucket"]
        by_bond = post[f"{k}|bond"]
        bdim = [d for d in by_bond.dims if d not in ("chain", "draw")][0]
        gdim = [d for d in by_bucket.dims if d not in ("chain", "draw")][0]
        bb_ = by_bond.sel({bdim: bonds})
        gb = by_bucket.sel({gdim: [buckets[b] for b in sim.panel.bonds]})
        total = common.values[..., None] + bb_.values + gb.values
        parts.append(xr.DataArray(total, dims=("chain", "draw", "bond"),
                                  coords={"bond": bonds}))
    beta = xr.concat(parts, dim="factor").assign_coords(factor=FACTORS)
    beta = beta.transpose("chain", "draw", "bond", "factor")
    return wall, beta, int(idata["sample_stats"]["diverging"].sum())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bonds", type=int, default=500)
    ap.add_argument("--dates", type=int, default=240)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--peers", default="naive,bambi",
                    help="comma-separated peers to run: naive, bambi (empty: ours only)")
    ap.add_argument("--bambi-sampler", default="nutpie",
                    help="Bambi's inference_method: nutpie (default, its fastest NUTS here: chains "
                         "in parallel) or pymc (PyMC's own sampler)")
    ap.add_argument("--peer-bonds", type=int, default=None,
                    help="bonds in the peers' panel (default: the same panel as ours)")
    ap.add_argument("--date-effects", default="group",
                    help="also fit ours with these random date effects (common, group; "
                         "'none' to skip) and print the wall-time ratio")
    ap.add_argument("--group-shock", type=float, default=0.002,
                    help="sd of the simulated shock per rating bucket and month")
    args = ap.parse_args(argv)

    import bayesbond as bb

    sim = bb.datasets.simulate_panel(n_bonds=args.bonds, n_dates=args.dates,
                                     factor_names=FACTORS, seed=args.seed, missing=0.1,
                                     group_shock=args.group_shock)
    n_obs = int(sim.panel.observed.sum())
    print(f"workload: {args.bonds} bonds x {args.dates} months x {len(FACTORS)} factors, "
          f"3 buckets, {n_obs} observed returns; {args.chains} chains x {args.draws} draws "
          f"after {args.tune} tune; bucket shocks sd {args.group_shock}; "
          f"{os.cpu_count()} CPU cores")
    results = {}
    wall, beta, div = run_ours(sim, args)
    ess, rhat = min_ess_rhat(beta)
    results["bayesbond"] = (wall, ess, rhat, div, beta, args.bonds)
    print(f"bayesbond : wall {wall:8.1f} s, min bulk ESS(beta) {ess:7.0f}, "
          f"ESS/s {ess / wall:8.2f}, max R-hat {rhat:.4f}, divergences {div}", flush=True)

    if args.date_effects != "none":
        w_d, beta_d, div_d = run_ours(sim, args, date_effects=args.date_effects)
        ess_d, rhat_d = min_ess_rhat(beta_d)
        print(f"bayesbond date_effects={args.date_effects!r}: wall {w_d:8.1f} s, min bulk "
              f"ESS(beta) {ess_d:7.0f}, max R-hat {rhat_d:.4f}, divergences {div_d}; "
              f"wall-time ratio to no date effects {w_d / wall:5.2f}x", flush=True)

    peers = [p for p in args.peers.split(",") if p]
    psim = sim
    if args.peer_bonds and args.peer_bonds != args.bonds:
        psim = bb.datasets.simulate_panel(n_bonds=args.peer_bonds, n_dates=args.dates,
                                          factor_names=FACTORS, seed=args.seed, missing=0.1)
        print(f"peers on a SMALLER panel: {args.peer_bonds} bonds x {args.dates} months "
              f"({int(psim.panel.observed.sum())} observed returns)")
        wall, beta, div = run_ours(psim, args)
        ess, rhat = min_ess_rhat(beta)
        results["bayesbond(peer panel)"] = (wall, ess, rhat, div, beta, args.peer_bonds)
        print(f"bayesbond on the peer panel: wall {wall:8.1f} s, min bulk ESS(beta) {ess:7.0f}, "
              f"ESS/s {ess / wall:8.2f}, max R-hat {rhat:.4f}, divergences {div}", flush=True)
    ref_key = "bayesbond(peer panel)" if "bayesbond(peer panel)" in results else "bayesbond"
    for peer in peers:
        fn = {"naive": run_naive, "bambi": run_bambi}[peer]
        wall, beta, div = fn(psim, args)
        ess, rhat = min_ess_rhat(beta)
        results[peer] = (wall, ess, rhat, div, beta, psim.panel.shape[1])
        ref_beta = results[ref_key][4]
        sd = ref_beta.std(("chain", "draw"))
        diff = float((np.abs(beta.mean(("chain", "draw")) - ref_beta.mean(("chain", "draw")))
                      / sd).max())
        print(f"{peer:10s}: wall {wall:8.1f} s, min bulk ESS(beta) {ess:7.0f}, "
              f"ESS/s {ess / wall:8.2f}, max R-hat {rhat:.4f}, divergences {div}; "
              f"max |mean beta - ours| = {diff:.2f} posterior sd", flush=True)
    print("\nratios (ours / peer, same panel):")
    w0, e0 = results[ref_key][0], results[ref_key][1]
    for peer in peers:
        w, e = results[peer][0], results[peer][1]
        print(f"  vs {peer:6s}: wall-time speed-up {w / w0:6.1f}x, "
              f"ESS/s ratio {(e0 / w0) / (e / w):6.1f}x")


if __name__ == "__main__":
    main()

"""``bayesbond demo``: the whole workflow on the built-in data, written to one folder.

On the embedded simulated bond panel (:func:`bayesbond.datasets.load_demo`, known true parameters)
the demo fits the OLS baseline and two Bayesian factor models (complete pooling and hierarchical by
rating bucket) and compares them by PSIS-LOO; on a simulated monthly short rate it fits the 1-D OU
model (ML and Bayesian); on a simulated zero-coupon curve it fits a 2-factor Gaussian affine model
by ML (Kalman filter). It writes::

    DIR/
      summary.md                  everything below in one page: comparison, bucket betas, OU, curve
      summary.csv                 model comparison (PSIS-LOO), timings and convergence diagnostics
      bucket_betas.csv            per rating bucket and factor: true beta, OLS average, posterior
      expected_returns.csv        per bond: posterior mean, sd and 94% interval of E[R], OLS value
      expected_returns_by_bucket.csv  per bucket: panel and population bands of E[R], truth
      data/panel.csv              the demo data in the command line's input formats: the panel
      data/factors.csv              (date, bond, ret, rating, weight, spread), factors (date, CMKT,
      data/short_rate.csv           TERM), short rate (date, rate in %), yields (date, m3 .. m120
      data/yields.csv               in %): try ``bayesbond fit`` on them
      fits/pooled.nc              posterior DataTrees (lossless netCDF: ``bb.load``); the pointwise
      fits/hierarchical.nc          log-likelihood is not stored, ``bb.compare`` recomputes it
      fits/ou_short_rate.nc
      plots/betas_by_bucket.png   bond betas: posterior intervals by bucket next to OLS estimates
      plots/expected_returns.png  expected returns with uncertainty bands, OLS estimates
      plots/ou_fit.png            short rate with one-step predictive bands; posteriors vs ML
      plots/yield_curve_fit.png   observed curves against the ML fit with measurement bands

``fast=True`` uses a 40-bond subset of the panel, to finish in about a minute; the full run uses
all 300 bonds. Both use 4 chains x 1,000 draws after 1,000 tuning steps (4 x 2,000 for the OU
model, whose mean reversion speed mixes slowly): sampling takes about a second per model, the time
goes into compiling, and fewer draws fail the R-hat <= 1.01 check by chance (2 chains x 300 draws
gave R-hat 1.02-1.03 on the factor models and a bulk ESS of 62 on the OU model). Both compare
the models by the exact PSIS-LOO, computed in bounded memory
(``bb.compare(..., method="chunked")``); on the full panel (~48,600 observed bond-months) that
step takes a few minutes per model.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DemoResult", "run_demo"]

FAST = {"draws": 1000, "tune": 1000, "chains": 4, "n_bonds": 40, "loo": {"method": "chunked"}}
FULL = {"draws": 1000, "tune": 1000, "chains": 4, "n_bonds": None, "loo": {"method": "chunked"}}
OU_SAMPLER = {"draws": 2000, "tune": 1000, "chains": 4}
SEED = 20240601

# 1-D OU short rate of the demo (annual decimals), close to US 3-month T-bill estimates
OU_TRUTH = {"kappa": 0.25, "theta": 0.04, "sigma": 0.015}


@dataclass
class DemoResult:
    """What the demo wrote (paths relative to ``out``) and its comparison table."""

    out: Path
    files: list[str] = field(default_factory=list)
    comparison: pd.DataFrame | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        lines = [f"demo finished in {self.seconds:.0f} s; wrote to {self.out}/:"]
        lines += [f"  {f}" for f in self.files]
        if self.comparison is not None:
            from bayesbond.workflow.report import markdown_table

            head = ("model comparison (PSIS-LOO):" if "elpd" in self.comparison.columns
                    else "models:")
            lines += ["", head, markdown_table(self.comparison)]
        return "\n".join(lines)


def _loo_text(loo_kw) -> str:
    if loo_kw["method"] == "subsample":
        return (f"subsampled: {loo_kw['observations']} observations, "
                "arviz_stats.loo_subsample")
    return "exact, computed in chunks"


def _subset(sim, n_bonds: int | None):
    """The demo panel, or its first ``n_bonds`` bonds of each bucket in proportion."""
    from bayesbond.data.panel import BondPanel

    if n_bonds is None or n_bonds >= sim.panel.shape[1]:
        return sim.panel
    frame = sim.panel.to_frame()
    bonds = list(sim.panel.bonds)
    keep = set(bonds[:: max(1, len(bonds) // n_bonds)][:n_bonds])
    return BondPanel.from_frame(frame[frame["bond"].isin(keep)].reset_index(drop=True))


def _bucket_betas(sim, panel, ols_params, fits, groups) -> pd.DataFrame:
    """Per bucket and factor: truth, OLS average over the bucket's bonds, posterior means."""
    truth = sim.truth
    rows = []
    factors = list(sim.factors.columns)
    for g in ("IG+", "IG-", "HY"):
        members = [b for b in panel.bonds if groups.get(str(b)) == g]
        for f in factors:
            row = {"rating_bucket": g, "factor": f, "n_bonds": len(members)}
            if "mu_beta" in truth:
                row["true_mu_beta"] = float(truth["mu_beta"].sel(rating_bucket=g, factor=f))
            row["true_mean_beta"] = float(truth["beta"].sel(bond=members, factor=f).mean())
            if ols_params is not None:
                row["ols_mean_beta"] = float(ols_params.loc[members, f].mean())
            for name, idata in fits.items():
                post = idata["posterior"]
                if "mu_beta" in post and "rating_bucket" in post["mu_beta"].dims:
                    row[f"{name}_mu_beta"] = float(
                        post["mu_beta"].sel(rating_bucket=g, factor=f).mean())
                elif "bond" not in post["beta"].dims:
                    row[f"{name}_beta"] = float(post["beta"].sel(factor=f).mean())
            rows.append(row)
    return pd.DataFrame(rows).set_index(["rating_bucket", "factor"])


def _bucket_expected_returns(sim, fit, groups: pd.Series) -> pd.DataFrame:
    """Per bucket: the panel and population bands of E[R] beside the simulator's truth."""
    import bayesbond as bb

    truth = sim.truth
    rows = []
    known = bb.expected_returns(fit, by="rating_bucket", factor_uncertainty=False)
    for level in ("panel", "population"):
        er = bb.expected_returns(fit, by="rating_bucket", level=level, random_seed=SEED)
        for g in er.index:
            if level == "panel":
                members = [b for b in groups.index if groups[b] == g]
                true = float(truth["expected_return"].sel(bond=members).mean())
            else:
                true = float(truth["mu_alpha"].sel(rating_bucket=g)
                             + truth["mu_beta"].sel(rating_bucket=g) @ truth["factor_mean"])
            row = {"rating_bucket": g, "level": level, "truth": true,
                   **er.loc[g, ["mean", "sd", "lower", "upper"]].to_dict()}
            if level == "panel":
                row["known_lower"], row["known_upper"] = known.loc[g, ["lower", "upper"]]
            row["covered"] = bool(row["lower"] <= true <= row["upper"])
            rows.append(row)
    return pd.DataFrame(rows).set_index(["rating_bucket", "level"])


def _available(module: str) -> bool:
    """Whether an optional part of the library is installed (the demo grows as they land)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run_demo(out, fast: bool = False, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Run the demo and write everything to ``out`` (see the module docstring for the layout).

    Files already in ``out`` with the same names are replaced; everything is first written to a
    temporary folder, so an interrupted demo leaves ``out`` as it was. ``progress`` receives
    the demo's steps and the phases of every fit (compile, tune, draw, post-process).
    """
    from bayesbond.bayes.sampling import progress_to

    with progress_to(progress) if progress is not None else contextlib.nullcontext():
        return _run_demo(out, fast, progress)


def _run_demo(out, fast: bool, progress) -> DemoResult:
    import bayesbond as bb
    from bayesbond.workflow import plots
    from bayesbond.workflow.io import hash_data
    from bayesbond.workflow.report import markdown_table, staging

    say = progress or (lambda msg: None)
    cfg = FAST if fast else FULL
    t0 = time.perf_counter()
    out = Path(out)
    result = DemoResult(out=out)
    files = result.files
    sample_kw = {"draws": cfg["draws"], "tune": cfg["tune"], "chains": cfg["chains"]}
    md: list[str] = ["# bayesbond demo\n"]

    with staging(out) as tmp:
        for sub in ("fits", "plots", "data"):
            (tmp / sub).mkdir()
        say("loading the built-in demo panel (bb.datasets.load_demo)")
        sim = bb.datasets.load_demo()
        panel = _subset(sim, cfg["n_bonds"])
        F = sim.factors
        say(f"panel: {panel.shape[0]} months x {panel.shape[1]} bonds, factors "
            f"{', '.join(F.columns)}")
        panel.to_frame().to_csv(tmp / "data" / "panel.csv", index=False)
        F.rename_axis("date").to_csv(tmp / "data" / "factors.csv")
        files += ["data/panel.csv", "data/factors.csv"]
        md.append(f"Built-in simulated panel (known truth): {panel.shape[1]} bonds x "
                  f"{panel.shape[0]} months, factors {', '.join(F.columns)}; {cfg['chains']} "
                  f"chains x {cfg['draws']} draws after {cfg['tune']} tuning steps. "
                  "`data/panel.csv` and `data/factors.csv` fit with e.g. `bayesbond fit "
                  "hierarchical --data data/panel.csv --factors data/factors.csv --out h.nc`.\n")

        say("OLS baseline, bond by bond")
        ols = bb.ols(panel, F)

        fits, timings = {}, {}
        for name in ("pooled", "hierarchical"):
            say(f"Bayesian factor model, {name}: {cfg['chains']} chains x {cfg['draws']} "
                f"draws after {cfg['tune']} tuning")
            t = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", bb.ConvergenceWarning)
                idata = bb.FactorModel(factors=list(F.columns), pooling=name).fit(
                    panel, F, random_seed=SEED, log_likelihood=False, **sample_kw)
            for w in caught:
                if issubclass(w.category, bb.ConvergenceWarning):
                    say(f"warning: {w.message}")
            timings[name] = time.perf_counter() - t
            fits[name] = idata
            bb.save(idata, tmp / "fits" / f"{name}.nc",
                    spec={"family": "factor_regression",
                          "model": {"factors": list(F.columns), "pooling": name},
                          "sampler": {**sample_kw, "seed": SEED}},
                    data_hash=hash_data(panel.returns, F))
            files.append(f"fits/{name}.nc")

        summary = pd.DataFrame({
            "seconds": pd.Series(timings),
            "compile_seconds": pd.Series({n: f.attrs["compile_seconds"] for n, f in fits.items()}),
            "sampling_seconds": pd.Series({n: f.attrs["sampling_seconds"]
                                           for n, f in fits.items()}),
        })
        if _available("bayesbond.workflow.compare"):
            loo_kw = cfg["loo"]
            say(f"comparing the Bayesian models by PSIS-LOO ({loo_kw['method']})")
            comparison = bb.compare(fits, **loo_kw)
            if loo_kw["method"] == "subsample":
                # stacking weights from subsampled pointwise elpd are not meaningful
                comparison = comparison.drop(columns=["weight"], errors="ignore")
            summary = comparison.join(summary)
            md.append(f"## Model comparison (PSIS-LOO, {_loo_text(loo_kw)}; higher elpd is "
                      "better)\n")
        else:
            md.append("## Models (PSIS-LOO comparison not available in this installation)\n")
        summary.index.name = "model"
        result.comparison = summary
        summary.assign(diagnostics=pd.Series({n: f.attrs.get("diagnostics", "")
                                              for n, f in fits.items()})).to_csv(
            tmp / "summary.csv")
        files.insert(0, "summary.csv")
        md += [markdown_table(summary),
               "Convergence (R-hat, ESS and divergences over the parameters each model "
               "checks):\n",
               *[f"- {n}: {f.attrs.get('diagnostics', '')}" for n, f in fits.items()], ""]

        const = fits["hierarchical"]["constant_data"]
        groups = pd.Series(const["group"].values, index=[str(b) for b in const["bond"].values])
        buckets = _bucket_betas(sim, panel, ols.params, fits, groups.to_dict())
        buckets.to_csv(tmp / "bucket_betas.csv")
        files.insert(1, "bucket_betas.csv")
        md += ["## Betas by rating bucket: truth, OLS average, posterior means\n",
               markdown_table(buckets.reset_index(), index=False)]

        say("plotting betas by rating bucket")
        plots.save_png(plots.plot_betas_by_bucket(
            fits["hierarchical"], ols=ols,
            title="Hierarchical model: bond betas by rating bucket vs OLS"),
            tmp / "plots" / "betas_by_bucket.png")
        files.append("plots/betas_by_bucket.png")

        if _available("bayesbond.workflow.expected"):
            say("expected returns with uncertainty bands")
            er = bb.expected_returns(fits["hierarchical"])
            ols_mean = ols.expected_return(F.mean())["mean"]
            er.assign(ols=ols_mean.reindex(er.index)).to_csv(tmp / "expected_returns.csv")
            plots.save_png(plots.plot_expected_returns(
                er, buckets=groups, ols=ols_mean,
                title="Expected returns, hierarchical model (annualised)"),
                tmp / "plots" / "expected_returns.png")
            files[2:2] = ["expected_returns.csv", "expected_returns_by_bucket.csv"]
            files.append("plots/expected_returns.png")
            by_bucket = _bucket_expected_returns(sim, fits["hierarchical"], groups)
            by_bucket.to_csv(tmp / "expected_returns_by_bucket.csv")
            md += ["## Expected returns by rating bucket (% per year): truth and 94% bands\n",
                   f"Bands carry the uncertainty of E[F] ({er.attrs['factor_dependence']}; "
                   "it is common to every bond, so it does not average away over a bucket). "
                   "`panel`: the equal-weighted mean of the bucket's bonds in the panel, whose "
                   "truth is the mean of their true E[R]; `population`: a typical bond of the "
                   "bucket, mu_alpha + mu_beta'E[F], whose truth is the simulator's. The "
                   "E[F]-known band (`known_lower`, `known_upper`) is shown for comparison "
                   "only: it conditions on the sample mean of the factors as if it were the "
                   "truth.\n",
                   markdown_table((by_bucket * 1200).round(3).reset_index()
                                  .assign(covered=by_bucket["covered"].to_numpy()),
                                  index=False), ""]

        if _available("bayesbond.bayes.ou_model"):
            md += _ou_part(tmp, cfg, sample_kw, say, files)
        if _available("bayesbond.baselines.affine_ml"):
            md += _curve_part(tmp, cfg, sample_kw, say, files)

        md += ["## Files\n", *[f"- `{f}`" for f in ["summary.md", *files]], ""]
        (tmp / "summary.md").write_text("\n".join(md))
        files.insert(0, "summary.md")
    result.seconds = time.perf_counter() - t0
    return result


def _ou_part(tmp: Path, cfg, sample_kw, say, files: list) -> list[str]:
    """Simulated short rate, ML and Bayesian OU fits; returns summary lines (empty if skipped)."""
    import bayesbond as bb
    from bayesbond.bayes.ou_model import OUModel
    from bayesbond.workflow import plots
    from bayesbond.workflow.report import markdown_table

    say("short rate: simulating a monthly 1-D OU path and fitting it (ML and Bayesian)")
    dt = 1.0 / 12.0
    n = 600 if cfg is FAST else 1200
    k, th, s = OU_TRUTH["kappa"], OU_TRUTH["theta"], OU_TRUTH["sigma"]
    ou = bb.OU(-k, k * th, s)
    path = np.asarray(ou.simulate(th, n_steps=n - 1, dt=dt, rng=np.random.default_rng(SEED)),
                      dtype=float).reshape(-1)
    dates = pd.date_range("1985-01-31", periods=len(path), freq="ME", name="date")
    x = pd.Series(path, index=dates, name="rate")
    x.mul(100).to_frame().to_csv(tmp / "data" / "short_rate.csv")
    ml = bb.ou_ml(x.to_numpy(), dt)
    idata = OUModel().fit(x, dt, random_seed=SEED, **OU_SAMPLER)
    bb.save(idata, tmp / "fits" / "ou_short_rate.nc",
            spec={"family": "ou", "model": {"n": 1, "dt": dt},
                  "sampler": {**OU_SAMPLER, "seed": SEED}})
    files += ["fits/ou_short_rate.nc", "data/short_rate.csv", "plots/ou_fit.png"]
    post = idata["posterior"]
    mlv = {"kappa": float(ml.kappa), "theta": float(ml.theta), "sigma": float(ml.sigma)}
    plots.save_png(plots.plot_ou_fit(x, post["kappa"].values, post["theta"].values,
                                     post["sigma"].values, dt, ml=mlv,
                                     title="Simulated short rate: Bayesian OU fit vs ML"),
                   tmp / "plots" / "ou_fit.png")
    table = pd.DataFrame({
        "truth": pd.Series(OU_TRUTH),
        "ML": pd.Series(mlv),
        "posterior mean": pd.Series({v: float(post[v].mean()) for v in OU_TRUTH}),
        "posterior sd": pd.Series({v: float(post[v].std()) for v in OU_TRUTH}),
    })
    table.index.name = "parameter"
    return ["## Short rate: 1-D OU on a simulated monthly path\n",
            f"{len(x)} months, dt = 1/12; `data/short_rate.csv` (percent) fits with "
            "`bayesbond fit ou_short_rate --data data/short_rate.csv --out ou.nc`.\n",
            markdown_table(table)]


# two-factor Gaussian affine model of the demo's yield curve: the short rate (first state) reverts
# to a slow second factor; a constant risk premium lambda1 tilts the curve upwards
CURVE_MODEL = {
    "A": [[-0.5, 0.5], [0.0, -0.1]],
    "a": [0.0, 0.004],
    "Sigma": [[0.010, 0.0], [0.0, 0.008]],
    "lambda1": [0.0, -0.002],
    "noise": 0.0003,
}
CURVE_MATURITIES = {"m3": 0.25, "m6": 0.5, "m12": 1.0, "m24": 2.0, "m36": 3.0, "m60": 5.0,
                    "m84": 7.0, "m120": 10.0}


def _curve_part(tmp: Path, cfg, sample_kw, say, files: list) -> list[str]:
    """Simulated zero-coupon curve from a Gaussian affine model, its ML (Kalman) fit and, in the
    full demo, the Bayesian fit (posterior bands); returns summary lines."""
    import bayesbond as bb
    from bayesbond.workflow import plots
    from bayesbond.workflow.report import markdown_table

    bayes = cfg is not FAST and _available("bayesbond.bayes.affine_model")
    say("yield curve: simulating a 2-factor Gaussian affine model and fitting it by ML (Kalman)"
        + (" and Bayesian (AffineModel; compiling the model takes a few minutes)" if bayes else ""))
    dt = 1.0 / 12.0
    n = 240 if cfg is FAST else 480
    p = CURVE_MODEL
    A, a, Sigma = (np.asarray(p[k], float) for k in ("A", "a", "Sigma"))
    ou = bb.OU(A, a, Sigma)
    xi = ou.simulate(np.array([0.03, 0.04]), n_steps=n - 1, dt=dt,
                     rng=np.random.default_rng(SEED))[0]
    model = bb.GaussianAffine(A, a, Sigma, lambda1=np.asarray(p["lambda1"], float))
    tau = np.array(list(CURVE_MATURITIES.values()))
    rng = np.random.default_rng(SEED + 1)
    Y = np.asarray(model.yields(xi, tau)) + p["noise"] * rng.standard_normal((n, len(tau)))
    dates = pd.date_range("1985-01-31", periods=n, freq="ME", name="date")
    yields = pd.DataFrame(Y, index=dates, columns=tau)
    (yields * 100).set_axis(list(CURVE_MATURITIES), axis=1).to_csv(tmp / "data" / "yields.csv")
    ml = bb.affine_ml(yields, tau, n_factors=2, se=False)
    fitted = ml.fitted.to_numpy(float)
    err = (fitted - Y) * 1e4
    table = pd.DataFrame({
        "maturity (years)": tau,
        "ML RMSE (bp)": np.sqrt((err**2).mean(0)),
        "ML mean error (bp)": err.mean(0),
    }).set_index("maturity (years)")
    if bayes:
        from bayesbond.bayes.affine_model import AffineModel

        am = AffineModel(n_factors=2)
        idata = am.fit(yields, tau, dt=dt, random_seed=SEED, **sample_kw)
        bands = am.bands(idata)
        bb.save(idata, tmp / "fits" / "affine2.nc",
                spec={"family": "affine", "model": {"kind": "gaussian", "n_factors": 2,
                                                    "dt": dt}, "sampler": sample_kw})
        fit = bands["fitted"]
        plots.save_png(plots.plot_yield_curve_fit(
            tau, yields,
            bands=tuple(fit.sel(stat=k).values for k in ("mean", "lower", "upper")),
            ml=ml.fitted,
            title="Simulated 2-factor Gaussian affine curve: posterior (94%) and ML fits"),
            tmp / "plots" / "yield_curve_fit.png")
        tp = bands["term_premium"].sel(maturity=10.0) * 1e4
        # the Bayesian fit conditions on the first date: both RMSEs over the later dates
        table["ML RMSE (bp)"] = np.sqrt((err[1:] ** 2).mean(0))
        table["posterior RMSE (bp)"] = np.sqrt(
            ((fit.sel(stat="mean").values[1:] - Y[1:]) ** 2).mean(0)) * 1e4
        files += ["fits/affine2.nc"]
        lines = [f"Bayesian fit: {idata.attrs['diagnostics']}. 10-year term premium, posterior "
                 f"mean over the sample {float(tp.sel(stat='mean').mean()):.0f} bp (average "
                 f"94% band {float(tp.sel(stat='lower').mean()):.0f} to "
                 f"{float(tp.sel(stat='upper').mean()):.0f} bp).\n"]
    else:
        sigma_e = np.broadcast_to(np.asarray(ml.sigma_e, float), fitted.shape)
        z = 1.8807936081512509  # 94% two-sided normal quantile
        plots.save_png(plots.plot_yield_curve_fit(
            tau, yields, bands=(fitted, fitted - z * sigma_e, fitted + z * sigma_e),
            center_label="ML fit (Kalman smoother)", band_label="ML fit ± 94% measurement error",
            title="Simulated 2-factor Gaussian affine curve: ML fit"),
            tmp / "plots" / "yield_curve_fit.png")
        lines = ["The full demo (without `--fast`) adds the Bayesian fit with posterior bands.\n"]
    files += ["data/yields.csv", "plots/yield_curve_fit.png"]
    return ["## Yield curve: 2-factor Gaussian affine model, simulated, fitted by ML"
            + (" and Bayesian\n" if bayes else "\n"),
            f"{n} months x {len(tau)} maturities with {p['noise'] * 1e4:.0f} bp measurement "
            f"noise; estimated measurement sd (ML) {float(np.mean(ml.sigma_e)) * 1e4:.2f} bp. "
            "`data/yields.csv` (percent, columns m3 .. m120) fits with "
            "`bayesbond fit affine3 --data data/yields.csv --out affine.nc`.\n",
            *lines,
            markdown_table(table)]

"""Reports of fits: parameter tables (markdown and CSV), diagnostics and the family's plots.

Used by ``bayesbond report`` and ``bayesbond demo``. Folders are written atomically: everything goes
to a hidden temporary folder next to the target and each file is moved into place only once all of
them were written, so a failure leaves no half-written report behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.errors import BayesBondError

__all__ = ["family_of", "is_ml_fit", "markdown_table", "ml_table", "staging", "summary_table",
           "write_report"]


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4g", index: bool = True) -> str:
    """A GitHub-flavoured markdown table of ``df`` (no extra dependency).

    Floats use ``floatfmt`` (4 significant digits by default), except that values of 10^4 and
    more keep every integer digit and one decimal (an elpd of 157712.3 is not printed 1.577e+05,
    which would hide differences of hundreds).
    """

    def fmt(v) -> str:
        if isinstance(v, float | np.floating):
            if math.isnan(v):
                return ""
            if floatfmt.endswith("g") and 1e4 <= abs(v) < 1e15:
                return f"{float(v):.1f}"
            return format(float(v), floatfmt)
        return str(v).replace("|", "\\|")

    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for label, row in df.iterrows():
        cells = ([fmt(label)] if index else []) + [fmt(v) for v in row.to_numpy()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def staging(out_dir, overwrite: bool = True):
    """Write into a temporary sibling of ``out_dir``; move the files into place on success.

    Yields
    ------
    pathlib.Path
        The temporary folder. On normal exit its files (and sub-folders) replace those of the
        same name in ``out_dir`` (created if needed); on error it is deleted and ``out_dir`` is
        left as it was.

    Raises
    ------
    FileExistsError
        ``overwrite=False`` and a file to be written already exists in ``out_dir``.
    """
    out_dir = Path(out_dir)
    parent = out_dir.resolve().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"folder {parent} does not exist")
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    tmp = parent / f".{out_dir.name}.{uuid.uuid4().hex[:10]}.tmp"
    tmp.mkdir()
    try:
        yield tmp
        items = _leaves(tmp)
        if not overwrite:
            clash = [out_dir / p.relative_to(tmp) for p in items
                     if (out_dir / p.relative_to(tmp)).exists()]
            if clash:
                raise FileExistsError(f"{clash[0]} already exists; use --overwrite to replace it")
        out_dir.mkdir(exist_ok=True)
        for p in items:
            target = out_dir / p.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            if p.is_dir():  # a zarr store: replaced as a whole
                if target.exists():
                    shutil.rmtree(target)
                os.rename(p, target)
            else:
                os.replace(p, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _leaves(folder: Path) -> list[Path]:
    """Files under ``folder``, with zarr stores (``*.zarr`` folders) as single items."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_dir() and p.suffix != ".zarr":
            out += _leaves(p)
        else:
            out.append(p)
    return out


def family_of(idata: xr.DataTree) -> str:
    """Registry key of a fit's family (``factor_regression``, ``ou``, ``affine``), or ``other``
    (see :func:`bayesbond.bayes.registry.family_of_fit`)."""
    from bayesbond.bayes.registry import family_of_fit

    return family_of_fit(idata) or "other"


def summary_table(idata: xr.DataTree, var_names=None, prob: float = 0.94,
                  max_rows: int | None = None) -> pd.DataFrame:
    """Posterior mean, sd, central interval, R-hat and ESS of each parameter element.

    Uses :func:`arviz_stats.summary`; parameters with more than ``max_rows`` elements (e.g. one
    per bond) are left out when ``max_rows`` is given.
    """
    import arviz_stats as azs

    post = idata["posterior"].to_dataset()
    names = list(var_names) if var_names is not None else list(post.data_vars)
    if max_rows is not None:
        names = [v for v in names
                 if math.prod(s for d, s in post[v].sizes.items() if d not in ("chain", "draw"))
                 <= max_rows]
    if not names:
        return pd.DataFrame()
    table = azs.summary(idata, var_names=names, ci_prob=prob)
    table.index.name = "parameter"
    return table


def write_report(idata: xr.DataTree, out_dir, name: str = "fit", ols=None, overwrite: bool = True,
                 progress: Callable[[str], None] | None = None, prob: float = 0.94,
                 ef_window=None) -> list[Path]:
    """Write a report of one fit to ``out_dir``: tables beside their baselines, diagnostics, plots.

    Files: ``<name>_summary.md`` (diagnostics, the parameter table beside its baseline and, for
    factor regressions, the expected-return table), ``<name>_summary.csv`` (all parameters:
    posterior summaries, or estimates and standard errors of an ML fit),
    ``<name>_baseline.csv`` (posterior next to OLS for factor regressions, next to ML for OU
    and affine fits), ``<name>_expected_returns.csv`` (factor regressions) and PNG plots:
    factor regressions ``<name>_betas_by_bucket.png`` (unpooled, hierarchical) or
    ``<name>_pooled_coefficients.png`` (pooled) and ``<name>_expected_returns.png``; a 1-D OU
    model ``<name>_ou_fit.png``; affine models ``<name>_yield_curve_fit.png`` and (Bayesian)
    ``<name>_term_premium.png``.

    Parameters
    ----------
    ols : OLSResult, optional
        Baseline of a factor regression (default: :func:`bayesbond.ols` on the fit's own
        ``observed_data.returns`` and ``constant_data.factor_returns``).
    prob : float
        Probability of the posterior intervals.
    ef_window : None, "panel", "bond" or (start, end)
        Months ``E[F]`` is averaged over in the expected-return table (see
        :func:`bayesbond.expected_returns`); stated in the table and the plot.

    Returns
    -------
    list of pathlib.Path
        The files written, inside ``out_dir``.
    """
    say = progress or (lambda msg: None)
    out_dir = Path(out_dir)
    fam = family_of(idata)
    written = []
    ml = is_ml_fit(idata)
    with staging(out_dir, overwrite=overwrite) as tmp:
        say(f"summarising {name} ({fam})")
        full = ml_table(idata) if ml else summary_table(idata, prob=prob)
        full.to_csv(tmp / f"{name}_summary.csv")
        short = ml_table(idata, max_rows=12) if ml else summary_table(idata, prob=prob, max_rows=12)
        lines = [f"# {name}\n", f"- family: {fam}"]
        for key in ("estimator", "loglik", "diagnostics", "bayesbond_version",
                    "bayesbond_data_hash"):
            if key in idata.attrs:
                lines.append(f"- {key.removeprefix('bayesbond_').replace('_', ' ')}: "
                             f"{idata.attrs[key]}")
        lines += ["", "## Parameters", "",
                  "Parameters with at most 12 elements (all of them in "
                  f"`{name}_summary.csv`):", "",
                  markdown_table(short) if len(short) else "(none)\n"]
        written += [f"{name}_summary.md", f"{name}_summary.csv"]
        ctx = {"ols": ols, "prob": prob, "ef_window": ef_window}
        if not ml:
            say("comparing with the baseline")
            base, text = _BASELINES.get(fam, lambda idata, ctx: (None, None))(idata, ctx)
            if base is not None:
                base.to_csv(tmp / f"{name}_baseline.csv")
                written.append(f"{name}_baseline.csv")
                lines += ["## Beside the baseline", "", text, "",
                          markdown_table(base.head(60).reset_index(), index=False)
                          if isinstance(base.index, pd.MultiIndex)
                          else markdown_table(base.head(60)), ""]
                if len(base) > 60:
                    lines += [f"({len(base)} rows; all in `{name}_baseline.csv`)", ""]
            er = ctx.get("er_table")
            if er is not None:
                er.to_csv(tmp / f"{name}_expected_returns.csv")
                written.append(f"{name}_expected_returns.csv")
                lines += ["## Expected returns", "", ctx["er_text"], "",
                          markdown_table(_er_display(er), floatfmt=".3g"), ""]
                if ctx.get("er_groups") is not None:
                    lines += ["By group, in % per year, with the uncertainty of E[F] (common to "
                              "every bond, it does not average away):", "",
                              markdown_table(_er_display(ctx["er_groups"]).reset_index(),
                                             index=False, floatfmt=".3g"), ""]
        figures = list(_family_figures(idata, fam, ctx, say))
        (tmp / f"{name}_summary.md").write_text("\n".join(lines))
        from bayesbond.workflow.plots import save_png

        for fname, fig in figures:
            save_png(fig, tmp / f"{name}_{fname}.png")
            written.append(f"{name}_{fname}.png")
    return [out_dir / w for w in written]


def _er_display(er: pd.DataFrame) -> pd.DataFrame:
    """The E[R] table in % per year for the markdown (the CSV keeps decimals per month)."""
    out = er.copy()
    for c in ("mean", "sd", "lower", "upper", "lower_known", "upper_known", "ols", "ols_se"):
        if c in out.columns:
            out[c] = out[c] * 1200.0
    for c in ("ef_start", "ef_end"):
        if c in out.columns:
            out[c] = pd.to_datetime(out[c]).dt.strftime("%Y-%m")
    return out


def _post_stats(draws: np.ndarray, prob: float):
    q = (1 - prob) / 2
    return (draws.mean(0), draws.std(0, ddof=1), *np.quantile(draws, [q, 1 - q], axis=0))


def _factor_baseline(idata, ctx):
    prob = ctx["prob"]
    post = idata["posterior"]
    if ctx["ols"] is None:
        ctx["ols"] = _ols_from_fit(idata)
    ols = ctx["ols"]
    factors = [str(f) for f in post["beta"]["factor"].values]
    S = post.sizes["chain"] * post.sizes["draw"]
    rows = []
    if "bond" in post["beta"].dims:
        bonds = [str(b) for b in post["beta"]["bond"].values]
        a = post["alpha"].transpose("chain", "draw", "bond").values.reshape(S, -1)
        b = post["beta"].transpose("chain", "draw", "bond", "factor").values.reshape(
            S, len(bonds), -1)
        coef = np.concatenate([a[..., None], b], axis=-1)  # (S, bond, 1 + K)
        stats = _post_stats(coef, prob)
        p, e = (None, None) if ols is None else (
            o.set_axis([str(x) for x in o.index], axis=0) for o in (ols.params, ols.bse))
        for i, bond in enumerate(bonds):
            for k, c in enumerate(["alpha", *factors]):
                est, se = ((float(p.loc[bond, c]), float(e.loc[bond, c]))
                           if ols is not None and c in ols.params.columns else (np.nan, np.nan))
                rows.append((bond, c, *(float(v[i, k]) for v in stats), est, se))
        table = pd.DataFrame(rows, columns=["bond", "parameter", "post_mean", "post_sd",
                                            "lower", "upper", "ols", "ols_se"])
        table = table.set_index(["bond", "parameter"])
        text = (f"Posterior mean, sd and {prob:.0%} interval of each bond's alpha (decimals per "
                "month) and betas, beside per-bond OLS estimates and their standard errors "
                "(`bb.ols` on the fit's own returns and factor returns).")
    else:
        coef = np.column_stack([post["alpha"].values.reshape(S),
                                post["beta"].transpose("chain", "draw", "factor").values
                                .reshape(S, -1)])
        stats = _post_stats(coef, prob)
        pooled = _pooled_ols(idata)
        ctx["pooled_ols"] = pooled
        for k, c in enumerate(["alpha", *factors]):
            est, se = ((float(pooled.loc[c, "estimate"]), float(pooled.loc[c, "se"]))
                       if pooled is not None else (np.nan, np.nan))
            rows.append((c, *(float(v[k]) for v in stats), est, se))
        table = pd.DataFrame(rows, columns=["parameter", "post_mean", "post_sd", "lower",
                                            "upper", "ols", "ols_se"]).set_index("parameter")
        text = (f"Pooled model: posterior mean, sd and {prob:.0%} interval of the common alpha "
                "(decimals per month) and betas, beside OLS on all bonds' observed months "
                "stacked (classical standard errors).")
    if _has_factor_data(idata):
        _expected_return_table(idata, ctx)
    else:
        text += (" (The fit holds no observed_data.returns / constant_data.factor_returns: no "
                 "OLS baseline and no expected-return table.)")
    return table, text


def _has_factor_data(idata) -> bool:
    return ("observed_data" in idata.children and "returns" in idata["observed_data"]
            and "constant_data" in idata.children
            and "factor_returns" in idata["constant_data"])


def _pooled_ols(idata):
    """OLS of every observed (date, bond) return on a constant and the factors, stacked."""
    if not _has_factor_data(idata):
        return None
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    F = idata["constant_data"]["factor_returns"].transpose("date", "factor")
    F = F.sel(date=y["date"])
    obs = np.isfinite(y.values)
    t_idx, _ = np.nonzero(obs)
    X = np.column_stack([np.ones(len(t_idx)), F.values[t_idx]])
    r = y.values[obs]
    coef, *_ = np.linalg.lstsq(X, r, rcond=None)
    resid = r - X @ coef
    s2 = resid @ resid / (len(r) - X.shape[1])
    se = np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))
    names = ["alpha", *[str(f) for f in F["factor"].values]]
    return pd.DataFrame({"estimate": coef, "se": se}, index=pd.Index(names, name="parameter"))


def _expected_return_table(idata, ctx):
    """E[R] per bond with the uncertainty of E[F] and with E[F] known, beside OLS, and per group
    (into ``ctx``)."""
    from bayesbond.workflow.expected import expected_returns

    prob, window = ctx["prob"], ctx["ef_window"]
    er = expected_returns(idata, prob=prob, window=window, random_seed=0)
    er_k = expected_returns(idata, prob=prob, window=window, factor_uncertainty=False)
    table = er[["mean", "sd", "lower", "upper"]].copy()
    table["lower_known"] = er_k["lower"]
    table["upper_known"] = er_k["upper"]
    ols = ctx["ols"]
    if ols is not None and hasattr(ols, "expected_return"):
        F = idata["constant_data"]["factor_returns"].transpose("date", "factor").to_pandas()
        if window == "bond":
            means = er_k.attrs["factor_means_by_bond"]
            o = pd.DataFrame([ols.expected_return(means.loc[str(b)]).loc[b]
                              for b in ols.params.index], index=ols.params.index)
        else:
            F = F.loc[er["ef_start"].iloc[0]:er["ef_end"].iloc[0]]
            o = ols.expected_return(F.mean())
        o.index = [str(b) for b in o.index]
        table["ols"] = o["mean"].reindex(table.index)
        table["ols_se"] = o["se"].reindex(table.index)
    for c in ("group", "ef_start", "ef_end", "ef_months", "ef_effective_months"):
        if c in er.columns:
            table[c] = er[c]
    ctx["er_table"] = table
    ctx["er_plot"] = er
    ctx["er_groups"] = None
    if "group" in er.columns:
        name = idata["constant_data"]["group"].attrs.get("name", "rating_bucket")
        rows = {"panel bonds (equal-weighted)": expected_returns(
            idata, prob=prob, window=window, by=name, random_seed=0)}
        if "mu_alpha" in idata["posterior"] and window != "bond":
            rows["typical bond (mu_alpha + mu_beta'E[F])"] = expected_returns(
                idata, prob=prob, window=window, by=name, level="population", random_seed=0)
        ctx["er_groups"] = pd.concat(
            {k: v[["mean", "sd", "lower", "upper"]] for k, v in rows.items()}, names=["band"])
    ctx["er_ols"] = table["ols"] if "ols" in table.columns else None
    from bayesbond.workflow.plots import _ef_window_text

    ctx["er_text"] = (
        f"E[R] = alpha + beta'E[F] per bond, in % per year (x 1200; the CSV keeps decimals per "
        f"month): posterior mean, sd and {prob:.0%} interval with the uncertainty of E[F] "
        f"(`lower`, `upper`: the posterior of the mean factor returns, "
        f"{er.attrs['factor_dependence']}; `ef_effective_months` is the number of independent "
        "months it is worth) and, for comparison only, with E[F] treated as known "
        "(`lower_known`, `upper_known`: too narrow, the sample mean of the factors is not the "
        "truth); `ols`, `ols_se`: OLS expected return and its standard error (E[F] known) "
        f"over the same months. {_ef_window_text(er)} ({er.attrs['ef_window']}).")


def _ou_baseline(idata, ctx):
    post = idata["posterior"]
    x = _ou_series(idata)
    if x is None or not {"kappa", "theta", "sigma"} <= set(post.data_vars):
        return None, None
    from bayesbond.baselines.ou_ml import ou_ml

    dt = _ou_dt(idata)
    ml = ou_ml(x.to_numpy(float), dt)
    ctx["ou_ml"] = {k: float(getattr(ml, k)) for k in ("kappa", "theta", "sigma")}
    rows = []
    for k in ("kappa", "theta", "sigma"):
        m, sd, lo, hi = _post_stats(post[k].values.reshape(-1), ctx["prob"])
        rows.append((k, float(m), float(sd), float(lo), float(hi), float(getattr(ml, k)),
                     float(ml.se[k])))
    table = pd.DataFrame(rows, columns=["parameter", "post_mean", "post_sd", "lower", "upper",
                                        "ml", "ml_se"]).set_index("parameter")
    table["z"] = (table["post_mean"] - table["ml"]) / table["ml_se"]
    return table, (f"Posterior mean, sd and {ctx['prob']:.0%} interval beside the exact "
                   "maximum-likelihood estimate (`bb.ou_ml`, same data and dt); z = (posterior "
                   "mean - ML) / ML se.")


def _ou_series(idata):
    if "observed_data" not in idata.children:
        return None
    obs = idata["observed_data"]
    x = obs[next(iter(obs.data_vars))]
    if "state" in x.dims and x.sizes["state"] == 1:
        x = x.isel(state=0, drop=True)
    return x.to_pandas() if x.ndim == 1 else None


def _ou_dt(idata) -> float:
    dt = _spec_value(idata, "model", "dt", None)
    if dt is None and "constant_data" in idata.children and "dt" in idata["constant_data"]:
        d = idata["constant_data"]["dt"]
        if d.ndim == 0:
            dt = float(d)
    if dt is None:
        dt = float(idata.attrs.get("dt", 1 / 12))
    return float(dt)


def _affine_baseline(idata, ctx):
    from bayesbond.baselines.affine_ml import affine_ml
    from bayesbond.bayes.affine_model import AffineModel, data_from_fit

    try:
        D = data_from_fit(idata)
    except BayesBondError:  # a fit made before the data were stored: no baseline
        return None, None
    n = int(idata["posterior"]["A"].sizes["state"])
    ml = affine_ml(D["Y"], D["tau"], n, method="portfolio", dt=D["dt"], weights=D["W"],
                   n_starts=1, se=True)
    table = AffineModel(n).side_by_side(ml, idata)
    return table, ("Posterior mean and sd beside the maximum-likelihood estimate of the same "
                   "(portfolio) likelihood, `bb.affine_ml(..., method='portfolio')`, with its "
                   "standard errors; z = (posterior mean - ML) / ML se.")


def _pricing_data(idata):
    obs = idata["observed_data"]
    return (obs["test_assets"].transpose("date", "asset").to_pandas(),
            obs["factors"].transpose("date", "factor").to_pandas())


def _bfm_baseline(idata, ctx):
    from bayesbond.pricing import fama_macbeth
    from bayesbond.workflow.pricing_plots import premia_table

    if "observed_data" not in idata.children or "test_assets" not in idata["observed_data"]:
        return None, None
    R, F = _pricing_data(idata)
    cd = idata["constant_data"] if "constant_data" in idata.children else {}
    gls = bool(cd["gls"]) if "gls" in cd else False
    intercept = bool(cd["intercept"]) if "intercept" in cd else True
    fm = fama_macbeth(R, F, gls=gls, intercept=intercept)
    table = premia_table(idata, fm, prob=ctx["prob"])
    ctx["premia"] = table
    r2 = idata["posterior"]["r2"].values.ravel()
    q = (1 - ctx["prob"]) / 2
    lo, hi = np.quantile(r2, [q, 1 - q])
    flagged = [f for f in table.index if table.loc[f, "fm_rejects_zero"]
               and table.loc[f, "zero_in_posterior"]]
    text = (f"Risk premia (decimals per month): posterior mean, sd and {ctx['prob']:.0%} "
            f"interval beside two-pass Fama-MacBeth ({'GLS' if gls else 'OLS'} cross-section, "
            f"`bb.pricing.fama_macbeth`) with its Shanken standard error and interval. "
            f"Cross-sectional R2: posterior mean {r2.mean():.3f}, {ctx['prob']:.0%} interval "
            f"[{lo:.3f}, {hi:.3f}]; two-pass {fm.rsquared:.3f}.")
    if flagged:
        text += (f" Fama-MacBeth calls {', '.join(flagged)} significant where the posterior "
                 "interval holds zero: the mark of a weak or useless factor (Kan and Zhang "
                 "1999).")
    return table, text


def _sdf_baseline(idata, ctx):
    s = idata["summary"] if "summary" in idata.children else None
    if s is None:
        return None, None
    cols = {"inclusion_probability": "inclusion_probability", "identified": "identified",
            "information_ratio": "information_ratio", "lambda_mean": "lambda_mean",
            "lambda_lower": "lambda_lower", "lambda_upper": "lambda_upper"}
    table = pd.DataFrame({k: s[v].to_series() for k, v in cols.items() if v in s})
    table.index.name = "factor"
    prob = float(s.attrs.get("prob", 0.9))
    sr = idata["posterior"]["sdf_sharpe"].values.ravel()
    q = (1 - prob) / 2
    lo, hi = np.quantile(sr, [q, 1 - q])
    nf = idata["posterior"]["n_factors"].values.ravel()
    text = (f"Posterior inclusion probability of each factor in the SDF; `identified` is false "
            "where the data carry less information about the factor's price than its prior "
            "(`information_ratio` < 1), so that its probability is the prior's and not "
            f"evidence. Risk prices per unit correlation: BMA mean and {prob:.0%} band. SDF "
            f"Sharpe ratio per period: posterior mean {sr.mean():.3f}, {prob:.0%} interval "
            f"[{lo:.3f}, {hi:.3f}]; number of factors: posterior mean {nf.mean():.2f}.")
    return table, text


#: family -> (table, text) of the posterior beside its baseline (families without one get the
#: generic report)
_BASELINES = {"factor_regression": _factor_baseline, "ou": _ou_baseline, "affine": _affine_baseline,
              "bayes_fm": _bfm_baseline, "sdf_selection": _sdf_baseline}


def is_ml_fit(idata: xr.DataTree) -> bool:
    """A maximum-likelihood fit: an ``ml`` group (estimates and standard errors), no posterior."""
    return "posterior" not in idata.children and "ml" in idata.children


def ml_table(idata: xr.DataTree, max_rows: int | None = None) -> pd.DataFrame:
    """Estimate, standard error and z-value of each element of an ML fit's ``ml`` group.

    Elements fixed by the model (estimate 0 with standard error 0) are left out; parameters with
    more than ``max_rows`` elements too when ``max_rows`` is given.
    """
    ml = idata["ml"].to_dataset()
    rows = []
    for name, var in ml.data_vars.items():
        est, se = var.sel(stat="estimate"), var.sel(stat="se")
        if max_rows is not None and est.size > max_rows:
            continue
        for idx in np.ndindex(est.shape):
            e, s = float(est.values[idx]), float(se.values[idx])
            if e == 0 and (s == 0 or np.isnan(s)):  # structural zero (fixed by the model)
                continue
            labels = [str(est[d].values[i]) for d, i in zip(est.dims, idx, strict=True)]
            rows.append((f"{name}[{','.join(labels)}]" if labels else name, e, s))
    table = pd.DataFrame(rows, columns=["parameter", "estimate", "se"]).set_index("parameter")
    table["z"] = table["estimate"] / table["se"]
    return table


def _family_figures(idata, fam, ctx, say):
    from bayesbond.workflow import plots

    if fam == "affine":
        from bayesbond.bayes.affine_model import AffineModel, data_from_fit

        bands = None
        if not is_ml_fit(idata):
            with contextlib.suppress(BayesBondError):  # a fit without constant_data: fitted_bands
                bands = AffineModel().bands(idata, prob=ctx["prob"], max_draws=200)
        if bands is not None:
            say("plotting the yield-curve fit")
            D = data_from_fit(idata)
            observed = pd.DataFrame(D["Y"], index=D["dates"], columns=D["tau"])
            yield "yield_curve_fit", plots.plot_yield_curve_fit(
                D["tau"], observed, bands=bands["fitted"], prob=ctx["prob"])
            say("plotting the term premium")
            yield "term_premium", plots.plot_term_premium(bands)
        elif (fitted := _fitted_yields(idata)) is not None:
            say("plotting the yield-curve fit")
            observed, band_arrays, tau = fitted
            labels = idata["fitted_bands"].attrs
            yield "yield_curve_fit", plots.plot_yield_curve_fit(
                tau, observed, bands=band_arrays, center_label=labels.get("center_label"),
                band_label=labels.get("band_label"))
    if fam == "affine" or is_ml_fit(idata):
        return
    post = idata["posterior"]
    prob = ctx["prob"]
    if fam == "factor_regression":
        ols = ctx.get("ols")
        if "bond" in post["beta"].dims:
            if ols is None:
                ols = ctx["ols"] = _ols_from_fit(idata)
            say("plotting betas by rating bucket")
            yield "betas_by_bucket", plots.plot_betas_by_bucket(idata, ols=ols, prob=prob)
        else:
            say("plotting the pooled coefficients")
            yield "pooled_coefficients", plots.plot_pooled_coefficients(
                idata, ols=ols, prob=prob, pooled_ols=ctx.get("pooled_ols"))
        if ctx.get("er_plot") is not None:
            say("plotting expected returns")
            yield "expected_returns", plots.plot_expected_returns(ctx["er_plot"],
                                                                  ols=ctx.get("er_ols"))
    elif fam == "bayes_fm" and ctx.get("premia") is not None:
        from bayesbond.workflow.pricing_plots import plot_risk_premia

        say("plotting the risk premia")
        yield "risk_premia", plot_risk_premia(ctx["premia"], prob=prob)
    elif fam == "sdf_selection" and "summary" in idata.children:
        from bayesbond.workflow.pricing_plots import (
            plot_inclusion_probabilities,
            plot_pricing_errors,
        )

        prior = _sdf_prior_mean(idata)
        say("plotting inclusion probabilities and pricing errors")
        summ = idata["summary"].to_dataset()
        yield "inclusion_probabilities", plot_inclusion_probabilities(summ, prior=prior)
        yield "pricing_errors", plot_pricing_errors(summ)
    elif fam == "ou" and {"kappa", "theta", "sigma"} <= set(post.data_vars):
        x = _ou_series(idata)
        if x is not None:
            say("plotting the OU fit")
            yield "ou_fit", plots.plot_ou_fit(
                x, post["kappa"].values, post["theta"].values, post["sigma"].values,
                _ou_dt(idata), prob=prob, ml=ctx.get("ou_ml"))


def _sdf_prior_mean(idata) -> float | None:
    """``aw / (aw + bw)`` of an SDF-selection fit (from its ``priors`` attribute)."""
    import json

    try:
        pri = json.loads(idata.attrs.get("priors", "{}"))
        return float(pri["aw"]) / (float(pri["aw"]) + float(pri["bw"]))
    except (ValueError, KeyError, TypeError):
        return None


def _spec_value(idata, table, key, default):
    spec = idata.attrs.get("bayesbond_spec")
    if isinstance(spec, Mapping):
        return spec.get(table, {}).get(key, default)
    return default


def _ols_from_fit(idata):
    """OLS on the fit's own data (``observed_data.returns``, ``constant_data.factor_returns``)."""
    if not _has_factor_data(idata):
        return None
    from bayesbond.baselines.ols import ols

    return ols(idata["observed_data"]["returns"].to_pandas(),
               idata["constant_data"]["factor_returns"].to_pandas())


def _fitted_yields(idata):
    """Observed yields and posterior bands of the fitted yields of an affine fit, if stored.

    Returns ``(observed DataFrame, (center, lower, upper), maturities)`` on the dates the bands
    cover (the ``fitted_bands`` group written by ``bayesbond fit``), or ``None``.
    """
    if "observed_data" not in idata.children or "fitted_bands" not in idata.children:
        return None
    obs = idata["observed_data"]
    if "yields" not in obs.data_vars or "fitted" not in idata["fitted_bands"].data_vars:
        return None
    fitted = idata["fitted_bands"]["fitted"]
    observed = obs["yields"].sel(date=fitted["date"]).transpose("date", "maturity").to_pandas()
    bands = tuple(fitted.sel(stat=s).transpose("date", "maturity").values
                  for s in ("mean", "lower", "upper"))
    return observed, bands, observed.columns.to_numpy(float)

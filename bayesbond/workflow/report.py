"""Reports of fits: parameter tables (markdown and CSV), diagnostics and the family's plots.

Used by ``bayesbond report`` and ``bayesbond demo``. Folders are written atomically: everything goes
to a hidden temporary folder next to the target and each file is moved into place only once all of
them were written, so a failure leaves no half-written report behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["family_of", "is_ml_fit", "markdown_table", "ml_table", "staging", "summary_table",
           "write_report"]


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4g", index: bool = True) -> str:
    """A GitHub-flavoured markdown table of ``df`` (no extra dependency)."""

    def fmt(v) -> str:
        if isinstance(v, float | np.floating):
            return "" if math.isnan(v) else format(float(v), floatfmt)
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
    """Model family of a fit (``factor_regression``, ``ou``, ``affine`` or ``other``)."""
    spec = idata.attrs.get("bayesbond_spec")
    if isinstance(spec, Mapping) and spec.get("family"):
        return str(spec["family"])
    model = idata.attrs.get("model")
    if isinstance(model, str) and model.startswith("{"):
        with contextlib.suppress(ValueError):
            fam = json.loads(model).get("family", "")
            if fam == "FactorModel":
                return "factor_regression"
            if fam in ("OUModel", "ou"):
                return "ou"
            if fam in ("AffineModel", "affine"):
                return "affine"
    post = idata["posterior"] if "posterior" in idata.children else xr.Dataset()
    names = set(post.data_vars)
    if "beta" in names and "alpha" in names:
        return "factor_regression"
    if {"A_star", "lambda1"} & names or "Lambda" in names:
        return "affine"
    if {"kappa", "theta"} <= names or {"A", "a", "Sigma"} <= names:
        return "ou"
    return "other"


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
                 progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write a report of one fit to ``out_dir``: tables, diagnostics and the family's plots.

    Files: ``<name>_summary.md`` (diagnostics and the parameter table), ``<name>_summary.csv``
    (all parameters: posterior summaries, or estimates and standard errors of an ML fit), and
    PNG plots: for factor regressions ``<name>_betas_by_bucket.png`` (with OLS estimates
    computed from the fit's own data unless ``ols`` is given) and
    ``<name>_expected_returns.png``; for a 1-D OU model ``<name>_ou_fit.png``; for affine models
    ``<name>_yield_curve_fit.png`` when the fit holds fitted yields.

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
        full = ml_table(idata) if ml else summary_table(idata)
        full.to_csv(tmp / f"{name}_summary.csv")
        short = ml_table(idata, max_rows=12) if ml else summary_table(idata, max_rows=12)
        lines = [f"# {name}\n", f"- family: {fam}"]
        for key in ("estimator", "loglik", "diagnostics", "bayesbond_version",
                    "bayesbond_data_hash"):
            if key in idata.attrs:
                lines.append(f"- {key.removeprefix('bayesbond_').replace('_', ' ')}: "
                             f"{idata.attrs[key]}")
        lines += ["", "Parameters with at most 12 elements (all of them in the CSV):", "",
                  markdown_table(short) if len(short) else "(none)\n"]
        (tmp / f"{name}_summary.md").write_text("\n".join(lines))
        written += [f"{name}_summary.md", f"{name}_summary.csv"]
        for fname, fig in _family_figures(idata, fam, ols, say):
            from bayesbond.workflow.plots import save_png

            save_png(fig, tmp / f"{name}_{fname}.png")
            written.append(f"{name}_{fname}.png")
    return [out_dir / w for w in written]


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


def _family_figures(idata, fam, ols, say):
    from bayesbond.workflow import plots

    if is_ml_fit(idata):
        fitted = _fitted_yields(idata) if fam == "affine" else None
        if fitted is not None:
            say("plotting the yield-curve fit")
            observed, bands, tau = fitted
            labels = idata["fitted_bands"].attrs
            yield "yield_curve_fit", plots.plot_yield_curve_fit(
                tau, observed, bands=bands, center_label=labels.get("center_label"),
                band_label=labels.get("band_label"))
        return
    post = idata["posterior"]
    if fam == "factor_regression" and "bond" in post["beta"].dims:
        if ols is None:
            ols = _ols_from_fit(idata)
        say("plotting betas by rating bucket")
        yield "betas_by_bucket", plots.plot_betas_by_bucket(idata, ols=ols)
        er = _expected_returns(idata)
        if er is not None:
            say("plotting expected returns")
            buckets = None
            if "constant_data" in idata.children and "group" in idata["constant_data"]:
                g = idata["constant_data"]["group"]
                buckets = pd.Series(g.values, index=[str(b) for b in g["bond"].values])
            ols_er = None
            if ols is not None and hasattr(ols, "expected_return"):
                with contextlib.suppress(Exception):
                    F = idata["constant_data"]["factor_returns"].to_pandas()
                    res = ols.expected_return(F.mean())
                    ols_er = res["mean"] if isinstance(res, pd.DataFrame) else res
            yield "expected_returns", plots.plot_expected_returns(er, buckets=buckets, ols=ols_er)
    elif fam == "ou" and {"kappa", "theta", "sigma"} <= set(post.data_vars) \
            and "observed_data" in idata.children:
        obs = idata["observed_data"]
        x = obs[next(iter(obs.data_vars))]
        if "state" in x.dims and x.sizes["state"] == 1:
            x = x.isel(state=0, drop=True)
        if x.ndim == 1:
            dt = _spec_value(idata, "model", "dt", None)
            if dt is None:
                dt = float(idata.attrs.get("dt", 1 / 12))
            say("plotting the OU fit")
            yield "ou_fit", plots.plot_ou_fit(
                x.to_pandas(), post["kappa"].values, post["theta"].values, post["sigma"].values,
                float(dt))
    elif fam == "affine":
        fitted = _fitted_yields(idata)
        if fitted is not None:
            say("plotting the yield-curve fit")
            observed, bands, tau = fitted
            yield "yield_curve_fit", plots.plot_yield_curve_fit(tau, observed, bands=bands)


def _spec_value(idata, table, key, default):
    spec = idata.attrs.get("bayesbond_spec")
    if isinstance(spec, Mapping):
        return spec.get(table, {}).get(key, default)
    return default


def _ols_from_fit(idata):
    """OLS on the fit's own data (``observed_data.returns``, ``constant_data.factor_returns``)."""
    try:
        from bayesbond.baselines.ols import ols
    except ImportError:
        return None
    if "observed_data" not in idata.children or "constant_data" not in idata.children:
        return None
    if "returns" not in idata["observed_data"] or \
            "factor_returns" not in idata["constant_data"]:
        return None
    y = idata["observed_data"]["returns"].to_pandas()
    F = idata["constant_data"]["factor_returns"].to_pandas()
    return ols(y, F)


def _expected_returns(idata):
    try:
        from bayesbond.workflow.expected import expected_returns
    except ImportError:
        return None
    table = expected_returns(idata)
    if isinstance(table, pd.DataFrame) and {"mean", "lower", "upper"} <= set(table.columns):
        if "bond" in table.columns:
            table = table.set_index("bond")
        return table
    return None


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

"""The ``bayesbond`` command line: ``demo``, ``fit``, ``compare``, ``report``.

Exit codes: 0 success; 1 a data, model or runtime error; 2 a usage error (bad arguments, a bad or
missing spec, a missing input file, an output that exists without ``--overwrite``). Errors are one
line on stderr naming the file, column, row or key; progress goes to stderr too, results to stdout.
Outputs are written atomically, so a failed command leaves nothing half-written. Set the
environment variable ``BAYESBOND_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import inspect
import os
import signal
import sys
import time
import warnings
from pathlib import Path

from bayesbond.errors import BayesBondError, DataError, ModelError, SpecError

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

_EPILOG = """exit codes: 0 success, 1 data/model/runtime error, 2 usage error
(bad arguments or spec, missing input file, output exists without --overwrite)."""


class UsageError(BayesBondError):
    """A command-line usage problem (exit code 2)."""


class _Progress:
    """Time-stamped progress lines on stderr."""

    def __init__(self, quiet: bool = False):
        self.t0 = time.perf_counter()
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[bayesbond {time.perf_counter() - self.t0:6.1f}s] {msg}", file=sys.stderr,
                  flush=True)


# --------------------------------------------------------------------------------- data files
def read_table(path: Path):
    """Read a CSV or Parquet file (:func:`bayesbond.data.coerce.read_table`: ``.`` and pandas'
    markers are missing values); errors name the file."""
    from bayesbond.data.coerce import read_table

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: file not found")
    df = read_table(path)
    if df.empty:
        raise DataError(f"{path}: the table has no rows")
    return df


def _in_file(path: Path, exc: Exception) -> DataError:
    msg = _one_line(exc)
    # the library's advice names Python keywords; on the command line they are spec keys
    for key in ("units", "unrated", "date_format"):
        msg = msg.replace(f"pass {key}=", f"set [data] {key} = ").replace(
            f"or {key}=", f"or [data] {key} = ")
    return DataError(f"{path}: {msg}")


def _dated_frame(df, date_col: str, columns, path: Path, date_format: str | None = None,
                 needed=None):
    """A DataFrame on increasing month-end dates (:func:`bayesbond.data.coerce.dated_frame`);
    a missing or non-finite value on the dates in ``needed`` (every date when ``None``) is
    refused, named by column and file line (line 1 is the header)."""
    import numpy as np
    import pandas as pd

    from bayesbond.data.coerce import dated_frame

    try:
        frame = dated_frame(df, date_col, columns, date_format=date_format)
    except DataError as exc:
        raise _in_file(path, exc) from None
    use = np.ones(len(frame), bool) if needed is None else frame.index.isin(needed)
    for c in columns:
        bad = np.flatnonzero(~np.isfinite(frame[c].to_numpy()) & use)
        if bad.size:
            i, raw = bad[0], df[c].iloc[bad[0]]
            what = "a missing value (empty or NA)" if pd.isna(raw) else (
                f"a non-finite value {str(raw)!r}")
            raise DataError(f"{path}: column {c!r} has {what} at line {df.index[i] + 2} (date "
                            f"{df[date_col].iloc[i]}); {bad.size} such line(s)")
    return frame.sort_index()


def load_factor_inputs(spec, data_path: Path, factors_path: Path | None):
    """Panel and factor returns for a factor-regression spec, validated against the files.

    Factor values may be missing (empty, ``NA``, ``.``) on dates without returns, as in
    :func:`bayesbond.ols` and :class:`bayesbond.FactorModel`."""
    from bayesbond.data.coerce import to_decimal
    from bayesbond.data.panel import BondPanel
    from bayesbond.workflow.specs import check_columns

    df = read_table(data_path)
    fdf = read_table(factors_path) if factors_path is not None else None
    check_columns(spec, list(df.columns), str(data_path),
                  None if fdf is None else list(fdf.columns), str(factors_path))
    d = spec.data
    factors = spec.model["factors"]
    rating = d["rating"] if d["rating"] in df.columns else None
    if rating is None and spec.model["pooling"] == "hierarchical":
        raise DataError(f"{data_path}: column {d['rating']!r} (ratings) is missing; the "
                        f"hierarchical model of {spec.source} groups bonds by rating bucket")
    weight = d["weight"] if d["weight"] in df.columns else None
    try:
        panel = BondPanel.from_frame(df, date=d["date"], bond=d["bond"], ret=d["ret"],
                                     rating=rating, weight=weight, signals=[],
                                     units=d["units"], unrated=d["unrated"],
                                     date_format=d["date_format"])
    except DataError as exc:
        raise _in_file(data_path, exc) from None
    needed = panel.dates[panel.observed.values.any(axis=1)]
    if fdf is None:  # factor columns in the panel file: one value per date
        sub = df[[d["date"], *factors]].drop_duplicates()
        F = _dated_frame(sub, d["date"], factors, data_path, d["date_format"], needed)
    else:
        F = _dated_frame(fdf, d["factor_date"], factors, factors_path, d["date_format"], needed)
    return panel, to_decimal(F, d["factor_units"], "factors")


def load_asset_inputs(spec, data_path: Path, factors_path: Path):
    """Test-asset excess returns and factors (wide files: a date column and one column per
    asset or factor), in decimals, for the pricing families (``bayes_fm``, ``sdf_selection``).

    Both are kept on the months the two files share, where every listed column must hold a
    finite value (a gap is refused, named by column and line)."""
    from bayesbond.data.coerce import to_decimal
    from bayesbond.workflow.specs import check_columns

    df, fdf = read_table(data_path), read_table(factors_path)
    check_columns(spec, list(df.columns), str(data_path), list(fdf.columns), str(factors_path))
    d, m = spec.data, spec.model
    assets = m["assets"] or [c for c in df.columns if c != d["date"]]
    factors = m["factors"] or [c for c in fdf.columns if c != d["factor_date"]]
    both = sorted(set(map(str, assets)) & set(map(str, factors)))
    if both:
        raise DataError(f"{data_path}, {factors_path}: column(s) {', '.join(map(repr, both))} "
                        "are both test assets and factors; list them in [model] assets and "
                        "factors")
    common = _dated_frame(df, d["date"], assets, data_path, d["date_format"], ()).index \
        .intersection(_dated_frame(fdf, d["factor_date"], factors, factors_path,
                                   d["date_format"], ()).index)
    if common.empty:
        raise DataError(f"{data_path}, {factors_path}: the two files share no month")
    R = _dated_frame(df, d["date"], assets, data_path, d["date_format"], common).loc[common]
    F = _dated_frame(fdf, d["factor_date"], factors, factors_path, d["date_format"],
                     common).loc[common]
    return to_decimal(R, d["units"], "test assets"), to_decimal(F, d["factor_units"], "factors")


def load_series_inputs(spec, data_path: Path):
    """Dated numeric columns (OU series or yields), in decimals, for ``ou``/``affine`` specs."""
    from bayesbond.baselines.ou_ml import PERCENT_FLOOR
    from bayesbond.data.coerce import to_decimal
    from bayesbond.workflow.specs import check_columns

    df = read_table(data_path)
    check_columns(spec, list(df.columns), str(data_path))
    d = spec.data
    cols = d["columns"] or [c for c in df.columns if c != d["date"]]
    if spec.family == "ou" and len(cols) != spec.model["n"]:
        raise DataError(f"{data_path}: {len(cols)} data columns ({', '.join(map(str, cols))}) for "
                        f"an {spec.model['n']}-dimensional OU model; list the series in "
                        f"{spec.source} [data] columns")
    frame = _dated_frame(df, d["date"], cols, data_path, d["date_format"])
    if d["units"] == "percent" and float(frame.abs().max().max()) < PERCENT_FLOOR:
        warnings.warn(f"{data_path}: [data] units = \"percent\" but no value exceeds "
                      f"{float(frame.abs().max().max()):.4g}%: the file may hold decimals "
                      "already; set [data] units = \"decimal\" if so", UserWarning, stacklevel=2)
    return to_decimal(frame, d["units"], "series")


# ----------------------------------------------------------------------------------- commands
def _check_output(path: Path, overwrite: bool) -> None:
    from bayesbond.workflow.io import SUFFIXES

    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(f"{path}: the output must end in .nc (netCDF) or .zarr")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; use --overwrite to replace it")
    if not path.resolve().parent.is_dir():
        raise UsageError(f"{path}: folder {path.parent} does not exist")


def fit_spec(spec, data_path: Path, factors_path: Path | None, progress=print):
    """Fit a spec to files; returns ``(DataTree, data_hash)``.

    The family's registry entry (:mod:`bayesbond.bayes.registry`) says which files it reads and
    which class fits it; the class's ``from_spec`` turns the spec into the model and its fit
    keywords.
    """
    from bayesbond.bayes import registry
    from bayesbond.workflow.io import hash_data

    family = registry.get(spec.family)
    kw = spec.sample_kwargs()
    kw["target_accept"] = spec.sampler["target_accept"]
    files = [data_path] + ([factors_path] if factors_path is not None else [])
    if family.inputs == "series" and factors_path is not None:
        raise UsageError("--factors applies to factor regressions and pricing models only")
    if family.inputs == "assets" and factors_path is None:
        raise UsageError(f"the {spec.family} family reads two files: --data the test-asset "
                         "returns, --factors the factors")
    progress(f"reading {', '.join(map(str, files))}")
    if family.inputs == "panel":
        panel, F = load_factor_inputs(spec, data_path, factors_path)
        inputs = (panel, F)
        names = {"returns_name": str(data_path), "factors_name": str(files[-1])}
        progress(f"validating: panel {panel.shape[0]} dates x {panel.shape[1]} bonds against "
                 f"the factors {', '.join(spec.model['factors'])}")
    elif family.inputs == "assets":
        R, F = load_asset_inputs(spec, data_path, factors_path)
        inputs, names = (R, F), {}
        progress(f"data: {R.shape[1]} test assets and the factors "
                 f"{', '.join(map(str, F.columns))} on the {len(R)} months both files hold "
                 f"({R.index[0]:%Y-%m} to {R.index[-1]:%Y-%m})")
    else:
        x = load_series_inputs(spec, data_path)
        inputs, names = (x,), {}
        progress(f"data: {len(x)} dates of {', '.join(map(str, x.columns))}")
        if spec.model.get("kind") == "efm2":  # EFM(2) has a maximum-likelihood estimator only
            return _efm2_ml(spec, x, progress), hash_data(*files)
    try:
        cls = family.load()
    except ImportError as exc:
        raise ModelError(f"{spec.source}: the {family.label} model is not available in this "
                         f"installation ({exc})") from None
    model, fit_kw = cls.from_spec(spec)
    # every check of the data (dates, factors, groups, priors) before any compiling
    params = inspect.signature(model.prepare).parameters
    prepared = model.prepare(*inputs, **names,
                             **{k: fit_kw.pop(k) for k in list(fit_kw) if k in params})
    progress(f"fitting {spec.name} ({kw['chains']} chains x {kw['draws']} draws after "
             f"{kw['tune']} tuning)")
    return model.fit(prepared, **fit_kw, **kw), hash_data(*files)


def _efm2_ml(spec, y, progress):
    from bayesbond.baselines.efm2_ml import efm2_ml

    tau = spec.data["maturities"]
    if tau is None:
        raise UsageError(f"{spec.source}: [data] needs 'columns' and 'maturities' (years)")
    unused = [t for t, v in (("[priors]", spec.priors), ("[sampler]", True)) if v]
    progress(f"yields: {len(y)} dates x {len(tau)} maturities; EFM(2) by Kalman-filter "
             f"maximum likelihood: the spec's {' and '.join(unused)} settings are not used "
             "(no Bayesian EFM(2) in this version)")
    return _ml_tree(efm2_ml(y, tau, dt=spec.model["dt"]), y, tau)


def _ml_tree(res, y, tau):
    """A maximum-likelihood fit as a DataTree: estimates and standard errors, states, yields.

    Groups: ``ml`` (one variable per parameter with a leading ``stat`` dimension, ``estimate``
    and ``se``; matrices over ``state``, ``state2``), ``ml_states`` (smoothed states),
    ``observed_data`` and ``fitted_bands`` (fitted yields at the smoothed states, band
    ``+- 1.96 sigma_e``). Root attributes say it is an ML fit (``estimator``) and give the
    log-likelihood; there is no ``posterior`` group.
    """
    import json

    import numpy as np
    import xarray as xr

    from bayesbond.baselines.efm2_ml import PARAM_NAMES, STATE_NAMES

    dims_of = {0: (), 1: ("state",), 2: ("state", "state2")}
    ml = {}
    for k in PARAM_NAMES:
        est = np.asarray(res.params[k], float)
        se = np.full(est.shape, np.nan) if res.se is None else np.asarray(res.se[k], float)
        ml[k] = xr.DataArray(np.stack([est, se]), dims=("stat", *dims_of[est.ndim]))
    ml = xr.Dataset(ml, coords={"stat": ["estimate", "se"], "state": list(STATE_NAMES),
                                "state2": list(STATE_NAMES)})
    dates = y.index.to_numpy()
    states = xr.Dataset({"states": xr.DataArray(
        res.states.to_numpy(float), dims=("date", "state"),
        coords={"date": dates, "state": list(STATE_NAMES)})})
    tau = np.asarray(tau, float)
    obs = xr.Dataset({"yields": xr.DataArray(y.to_numpy(float), dims=("date", "maturity"),
                                             coords={"date": dates, "maturity": tau})})
    tree = xr.DataTree.from_dict({"ml": ml, "ml_states": states, "observed_data": obs})
    fitted = res.fitted.to_numpy(float)
    half = 1.96 * float(res.sigma_e)
    bands = xr.DataArray(np.stack([fitted, fitted - half, fitted + half]),
                         dims=("stat", "date", "maturity"), coords={
                             "stat": ["mean", "lower", "upper"], "date": dates, "maturity": tau})
    tree["fitted_bands"] = xr.DataTree(xr.Dataset(
        {"fitted": bands}, attrs={"center_label": "ML fit (smoothed states)",
                                  "band_label": "ML fit +- 1.96 sigma_e"}))
    tree.attrs.update(
        estimator="maximum likelihood (Kalman filter)", loglik=float(res.loglik),
        converged=bool(res.converged), n_obs=int(res.n_obs),
        model=json.dumps({"family": "affine", "kind": "efm2", "estimator": "ml"}))
    return tree


def _check_input(path: Path, what: str) -> None:
    if not path.is_file():
        raise UsageError(f"{path}: file not found ({what})")


def cmd_fit(args) -> int:
    from bayesbond.bayes.sampling import progress_to
    from bayesbond.workflow.io import save
    from bayesbond.workflow.specs import load_spec

    say = _Progress(args.quiet)
    # every argument and path is checked before any file is read or any model is compiled
    spec = load_spec(args.spec)
    spec = spec.replace_sampler(draws=args.draws, tune=args.tune, chains=args.chains,
                                seed=args.seed, sampler=args.sampler,
                                target_accept=args.target_accept)
    out = Path(args.out)
    _check_output(out, args.overwrite)
    data = Path(args.data)
    factors = Path(args.factors) if args.factors else None
    _check_input(data, "--data names the data file (CSV or Parquet)")
    if factors is not None:
        _check_input(factors, "--factors names the factor file (CSV or Parquet)")
    with progress_to(None if args.quiet else say):
        idata, h = fit_spec(spec, data, factors, progress=say)
    if "diagnostics" in idata.attrs:
        say(f"diagnostics: {idata.attrs['diagnostics']}")
    if "sampling_seconds" in idata.attrs:
        say(f"timing: compiling {idata.attrs['compile_seconds']:.1f} s, sampling "
            f"{idata.attrs['sampling_seconds']:.1f} s")
    say(f"writing {out}")
    save(idata, out, overwrite=args.overwrite, spec=spec, data_hash=h)
    say("done")
    print(f"wrote {out}")
    if "sampling_seconds" in idata.attrs:
        print(f"{spec.name}: {idata.attrs.get('diagnostics', '')}; compiled in "
              f"{idata.attrs['compile_seconds']:.1f} s, sampled in "
              f"{idata.attrs['sampling_seconds']:.1f} s")
    return EXIT_OK


def cmd_compare(args) -> int:
    from bayesbond.workflow.io import load

    say = _Progress(args.quiet)
    if len(args.fits) < 2:
        raise UsageError("compare needs at least two fits")
    # every path first: the comparison (PSIS-LOO) can take minutes
    for f in args.fits:
        if not Path(f).exists():
            raise UsageError(f"{f}: file not found")
    if args.out:
        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise FileExistsError(f"{out} already exists; use --overwrite to replace it")
        if out.exists() and out.is_dir():
            raise UsageError(f"{out} is a folder; --out names the CSV file to write")
        if not out.resolve().parent.is_dir():
            raise UsageError(f"{out}: folder {out.parent} does not exist")
    fits = {}
    for f in args.fits:
        path = Path(f)
        name = path.stem
        while name in fits:
            name += "'"
        say(f"loading {path}")
        fits[name] = load(path)
    from bayesbond.workflow.compare import compare

    say(f"comparing by PSIS-LOO ({args.method}): {len(fits)} fits")
    t0 = time.perf_counter()
    table = compare(fits, method=args.method)
    say(f"PSIS-LOO done in {time.perf_counter() - t0:.1f} s")
    if args.out:
        out = Path(args.out)
        from bayesbond.workflow.report import staging

        with staging(out.parent if str(out.parent) else Path("."), overwrite=True) as tmp:
            table.to_csv(tmp / out.name)
    from bayesbond.workflow.report import markdown_table

    print(markdown_table(table), end="")
    if args.out:
        print(f"wrote {args.out}")
    return EXIT_OK


def _ef_window(text: str | None):
    """``--ef-window``: ``panel``, ``bond`` or ``START:END`` (either side may be empty)."""
    if text is None or text in ("panel", "bond"):
        return text
    if text.count(":") != 1:
        raise UsageError(f"--ef-window {text!r}: use 'panel', 'bond' or START:END "
                         "(e.g. 1997-01:2016-12)")
    start, end = (part.strip() or None for part in text.split(":"))
    return (start, end)


def _out_folder(text: str) -> Path:
    """``--out`` of ``report``/``demo``: a folder, or a new one in an existing folder."""
    out = Path(text)
    if not out.resolve().parent.is_dir():
        raise UsageError(f"{out}: folder {out.parent} does not exist")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    return out


def cmd_report(args) -> int:
    from bayesbond.workflow.io import load
    from bayesbond.workflow.report import write_report

    say = _Progress(args.quiet)
    path = Path(args.fit)
    if not path.exists():
        raise UsageError(f"{path}: file not found")
    out = _out_folder(args.out)  # first: loading the fit and drawing the plots take a while
    if out.is_dir() and not args.overwrite:
        clash = sorted(p for p in out.iterdir() if p.name.startswith(f"{path.stem}_"))
        if clash:
            raise FileExistsError(f"{clash[0]} already exists; use --overwrite to replace it")
    ef_window = _ef_window(args.ef_window)
    say(f"loading {path}")
    idata = load(path)
    files = write_report(idata, out, name=path.stem, overwrite=args.overwrite,
                         progress=say, prob=args.prob, ef_window=ef_window)
    for f in files:
        print(f"wrote {f}")
    return EXIT_OK


def cmd_demo(args) -> int:
    from bayesbond.workflow.demo import run_demo

    say = _Progress(args.quiet)
    result = run_demo(_out_folder(args.out), fast=args.fast, progress=None if args.quiet else say)
    print(result.describe())
    return EXIT_OK


# ------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bayesbond`` (all sub-commands)."""
    import bayesbond

    p = argparse.ArgumentParser(
        prog="bayesbond",
        description="Bayesian models of bond returns and of the term structure.",
        epilog=_EPILOG)
    p.add_argument("--version", action="version", version=f"bayesbond {bayesbond.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, help_, description):
        sp = sub.add_parser(name, help=help_, description=description, epilog=_EPILOG)
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
        return sp

    d = add("demo", "fit the models on the built-in data and write tables, fits and plots",
            "Fit the OLS baseline and the Bayesian factor models (pooled, hierarchical) on the "
            "built-in simulated bond panel, compare them by LOO, and write a summary table "
            "(markdown, CSV), the fits (netCDF), the demo data (CSV) and PNG plots to DIR.")
    d.add_argument("--out", default="demo-output", metavar="DIR",
                   help="output folder (default: %(default)s); files of the same name in it are "
                        "replaced")
    d.add_argument("--fast", action="store_true",
                   help="small samples and a smaller panel: about a minute")
    d.set_defaults(func=cmd_demo)

    f = add("fit", "fit a model spec to data files and save the posterior",
            "Fit the model of SPEC (a TOML file, or the name of a shipped spec in models/) to "
            "DATA and save the posterior (ArviZ DataTree) to OUT (.nc or .zarr). A panel file "
            "has one row per bond and month with columns date, bond, ret[, rating, weight] "
            "unless the spec's [data] table maps other names; a factor file has a date column "
            "and one column per factor.")
    f.add_argument("spec", metavar="SPEC", help="spec file (models/*.toml) or shipped spec name")
    f.add_argument("--data", required=True, metavar="FILE", help="data file (CSV or Parquet)")
    f.add_argument("--factors", metavar="FILE",
                   help="factor returns file (CSV or Parquet); default: factor columns of --data")
    f.add_argument("--out", required=True, metavar="FIT", help="output file, .nc or .zarr")
    f.add_argument("--overwrite", action="store_true", help="replace an existing output")
    f.add_argument("--draws", type=int, help="override the spec's draws per chain")
    f.add_argument("--tune", type=int, help="override the spec's tuning steps")
    f.add_argument("--chains", type=int, help="override the spec's number of chains")
    f.add_argument("--seed", type=int, help="override the spec's random seed")
    f.add_argument("--target-accept", type=float, metavar="P",
                   help="override the spec's NUTS target acceptance (0 < P < 1; higher, e.g. "
                        "0.99, takes smaller steps: the fix for a few divergences)")
    f.add_argument("--sampler", help="override the spec's NUTS sampler (nutpie, pymc, ...)")
    f.set_defaults(func=cmd_fit)

    c = add("compare", "compare fits by PSIS-LOO",
            "Compare two or more fits of the same data by PSIS-LOO expected log predictive "
            "density; prints the table (markdown) and optionally writes it as CSV.")
    c.add_argument("fits", nargs="+", metavar="FIT", help="fit files (.nc or .zarr)")
    c.add_argument("--method", choices=("chunked", "exact"), default="chunked",
                   help="PSIS-LOO route: computed from the posterior in bounded memory "
                        "(chunked, default) or from a stored log_likelihood group (exact)")
    c.add_argument("--out", metavar="CSV", help="also write the table to this CSV file")
    c.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    c.set_defaults(func=cmd_compare)

    r = add("report", "write tables and plots of one fit",
            "Write a summary of FIT to DIR: parameter table (markdown and CSV), convergence "
            "diagnostics, and the model family's plots (betas by rating bucket next to OLS, "
            "expected-return bands, OU fit or yield-curve fit).")
    r.add_argument("fit", metavar="FIT", help="fit file (.nc or .zarr)")
    r.add_argument("--out", required=True, metavar="DIR", help="output folder")
    r.add_argument("--overwrite", action="store_true", help="replace existing report files")
    r.add_argument("--ef-window", metavar="WHEN", default=None,
                   help="months E[F] is averaged over in the expected-return table: 'panel' "
                        "(the fit's span), 'bond' (each bond's own months) or START:END; "
                        "default: every month of the fitted factor returns")
    r.add_argument("--prob", type=float, default=0.94, metavar="P",
                   help="probability of the intervals (default 0.94)")
    r.set_defaults(func=cmd_report)
    return p


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"bayesbond: warning: {category.__name__}: {_one_line(message)}", file=sys.stderr)


def main(argv=None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code or 0)
    old = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with warnings.catch_warnings():
            # library deprecation notices are for developers, not for users of the command line
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return args.func(args)
    except (UsageError, SpecError, FileExistsError, FileNotFoundError) as exc:
        print(f"bayesbond {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (DataError, ModelError) as exc:
        print(f"bayesbond {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _ignore_sigint()  # a second Ctrl-C must not cut the clean-up short
        print(f"bayesbond {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI reports every failure in one line
        if os.environ.get("BAYESBOND_DEBUG"):
            raise
        print(f"bayesbond {args.command}: error: {type(exc).__name__}: {_one_line(exc)}",
              file=sys.stderr)
        return EXIT_ERROR
    finally:
        warnings.showwarning = old


def _ignore_sigint() -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (main() called from a thread): nothing to do
        pass


def run() -> None:
    """Console entry point: exit with the code of :func:`main`.

    After Ctrl-C (code 130) the process leaves at once, once stdout and stderr are flushed:
    the fit was abandoned before anything was written, and interpreter shutdown (joining the
    sampler's and compiler's threads, atexit hooks) is where a late ``KeyboardInterrupt``
    would otherwise turn exit code 130 into death by SIGINT.
    """
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    run()

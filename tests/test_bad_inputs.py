"""The bad-input catalogue: mistakes a user makes, driven through the Python API and the CLI.

Each case asserts the exception type (or the CLI's exit code), that the message names the culprit
(column, bond, date, key, argument or file), and that nothing was silently changed: the caller's
inputs are left as they were, and the CLI writes nothing.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

import bayesbond as bb
from bayesbond.errors import DataError, ModelError, SpecError

SIM = bb.datasets.simulate_panel(n_bonds=8, n_dates=36, seed=1)
DF = SIM.panel.to_frame()  # date, bond, ret, rating, weight, spread
F = SIM.factors  # CMKT, TERM by month-end date


def _load_corrupt():
    """bb.load of a truncated netCDF file (in a temporary folder removed afterwards)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bayesbond-corrupt-fit.nc")
        with open(path, "wb") as fh:
            fh.write(b"\x89HDF\r\n\x1a\n" + b"truncated" * 20)
        return bb.load(path)


def _with(df: pd.DataFrame, row: int, **values) -> pd.DataFrame:
    out = df.copy()
    for col, v in values.items():
        out[col] = out[col].astype(object) if isinstance(v, str) else out[col]
        out.loc[row, col] = v
    return out


def _ou2():
    A = np.array([[-0.5, 0.2], [0.0, -1.0]])
    return bb.OU(A, np.zeros(2), 0.01 * np.eye(2))


def _rate():
    x = bb.OU(-0.3, 0.3 * 0.04, 0.01).simulate(0.04, n_steps=119, dt=1 / 12, rng=1)
    return pd.Series(np.ravel(x), index=pd.date_range("2000-01-31", periods=120,
                                                            freq="ME"), name="r")


def _curve():
    m = bb.Vasicek(kappa=0.3, theta=0.04, sigma=0.01)
    dates = pd.date_range("2000-01-31", periods=24, freq="ME")
    r = np.linspace(0.02, 0.05, 24)
    tau = np.array([1.0, 2.0, 5.0, 10.0])
    return pd.DataFrame([m.yields(ri, tau) for ri in r], index=dates, columns=tau)


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[..., Any]  # called with deep copies of `inputs`
    inputs: tuple
    exc: type[BaseException]
    match: str  # regex the message must contain: it names the culprit


def _fit_factor(panel, factor_returns, names=("CMKT", "TERM"), pooling="pooled", **kw):
    model = bb.FactorModel(factors=list(names), pooling=pooling)
    return model.fit(panel, factor_returns, draws=kw.pop("draws", 20), tune=20, chains=1, **kw)


CASES = [
    # --- panels
    Case("duplicated rows", lambda df: bb.BondPanel.from_frame(df),
         (pd.concat([DF, DF.iloc[[3]]]),), DataError,
         r"duplicated \(bond, date\).*\(B0003, 2005-01-31\)"),
    Case("infinite return", lambda df: bb.BondPanel.from_frame(df), (_with(DF, 3, ret=np.inf),),
         DataError, r"non-finite returns in column 'ret'.*row 3 \(B0003, 2005-01-31\)"),
    Case("typo'd column", lambda df: bb.BondPanel.from_frame(df, ret="rett"), (DF,),
         DataError, r"missing column\(s\) 'rett'"),
    Case("negative weight", lambda df: bb.BondPanel.from_frame(df), (_with(DF, 2, weight=-1.0),),
         DataError, r"negative or infinite weights in column 'weight'.*row 2"),
    Case("missing bond id", lambda df: bb.BondPanel.from_frame(df), (_with(DF, 2, bond=None),),
         DataError, r"missing bond identifiers in column 'bond' at rows 2"),
    Case("unknown rating", lambda df: bb.BondPanel.from_frame(df), (_with(DF, 2, rating="ZZZ"),),
         DataError, r"unknown rating.*'ZZZ'"),
    Case("unparseable date", lambda df: bb.BondPanel.from_frame(df),
         (_with(DF.assign(date=DF["date"].dt.strftime("%Y-%m-%d")), 7, date="2019-13-45"),),
         DataError, r"unparseable or missing dates.*row 7.*2019-13-45"),
    Case("unknown rating string", lambda: bb.rating_bucket("Q+"), (), DataError, r"'Q\+'"),
    # --- factor construction
    Case("market on percent returns",
         lambda df: bb.factors.market(bb.BondPanel.from_frame(df.assign(ret=df["ret"] * 100),
                                                               check_units=False), rf=0.002),
         (DF,), DataError, r"percent"),
    Case("market with an annual risk-free rate", lambda p: bb.factors.market(p, rf=0.2),
         (SIM.panel,), DataError, r"rf.*0\.2"),
    Case("unknown breakpoint rule",
         lambda p: bb.factors.long_short(p, "spread", breakpoints="quantile"), (SIM.panel,),
         DataError, r"breakpoints.*'quantile'"),
    Case("holding period zero", lambda p: bb.factors.long_short(p, "spread", holding=0),
         (SIM.panel,), DataError, r"holding"),
    Case("unknown subsample", lambda p: bb.factors.long_short(p, "spread", subsample="junk"),
         (SIM.panel,), DataError, r"subsample.*'junk'"),
    Case("winsorising limits reversed",
         lambda p: bb.factors.long_short(p, "spread", winsorize=(99, 1)), (SIM.panel,),
         DataError, r"winsorize"),
    Case("return filter reversed",
         lambda p: bb.factors.long_short(p, "spread", return_filter=(0.1, -0.1)), (SIM.panel,),
         DataError, r"return_filter"),
    # --- OLS baselines
    Case("constant factor", lambda p, f: bb.ols(p, f.assign(C=0.01)), (SIM.panel, F),
         DataError, r"collinear.*\bC\b|\bC\b.*collinear"),
    Case("missing factor value on a return date",
         lambda p, f: bb.ols(p, f.mask((f.index == f.index[3])[:, None] & (f.columns == "TERM"))),
         (SIM.panel, F), DataError, r"TERM on 2005-04-30"),
    Case("duplicated factor columns", lambda p, f: bb.ols(p, pd.concat([f, f[["CMKT"]]], axis=1)),
         (SIM.panel, F), DataError, r"duplicated factor names.*CMKT"),
    Case("factor dates disjoint from returns",
         lambda p, f: bb.ols(p, f.set_axis(f.index + pd.DateOffset(years=10))), (SIM.panel, F),
         DataError, r"factors have no row for month\(s\).*2005-01-31"),
    Case("test factor also a base factor", lambda f: bb.spanning(f[["CMKT"]], f), (F,),
         DataError, r"\['CMKT'\] are both test and base factors"),
    Case("test factor a combination of the base factors",
         lambda f: bb.spanning(f[["CMKT"]].rename(columns={"CMKT": "LS"}).assign(
             C=0.5 * f["CMKT"] - f["TERM"]), f), (F,), DataError, r"CMKT.*TERM.*C|C.*CMKT"),
    Case("two identical test factors",
         lambda f: bb.spanning(pd.DataFrame({"LS0": f["CMKT"] * 0.3 + 0.001,
                                             "LS1": f["CMKT"] * 0.3 + 0.001}), f[["TERM"]]),
         (F,), DataError, r"LS0.*LS1"),
    Case("base factors collinear", lambda f: bb.spanning(f[["TERM"]], f[["CMKT"]].assign(
        X=2 * f["CMKT"])), (F,), DataError, r"CMKT.*X"),
    Case("collinear factors in ols", lambda p, f: bb.ols(p, f.assign(X=f.CMKT - 2 * f.TERM)),
         (SIM.panel, F), DataError, r"CMKT.*TERM.*X"),
    Case("returns in percent", lambda p, f: bb.ols(p.returns.to_pandas() * 100, f),
         (SIM.panel, F), DataError, r"B000\d.*units='percent'|units='percent'.*B000\d"),
    Case("gross returns", lambda p, f: bb.ols(1 + p.returns.to_pandas(), f), (SIM.panel, F),
         DataError, r"gross"),
    Case("factors in percent", lambda p, f: bb.ols(p, f * 100), (SIM.panel, F), DataError,
         r"CMKT.*TERM"),
    Case("unknown units", lambda p, f: bb.ols(p, f, units="bp"), (SIM.panel, F), DataError,
         r"'bp'"),
    Case("a bond with too few months",
         lambda p, f: bb.ols(p.returns.to_pandas().assign(B0002=lambda r: r["B0002"].where(
             r.index < r.index[3])), f), (SIM.panel, F), DataError, r"B0002.*min_obs"),
    Case("min_obs below K + 2", lambda p, f: bb.ols(p, f, min_obs=2), (SIM.panel, F), DataError,
         r"min_obs"),
    Case("panel returns in percent",
         lambda df: bb.BondPanel.from_frame(df.assign(ret=df["ret"] * 100)), (DF,), DataError,
         r"'ret'"),
    Case("panel gross returns", lambda df: bb.BondPanel.from_frame(df.assign(ret=1 + df["ret"])),
         (DF,), DataError, r"'ret'.*gross|gross.*'ret'"),
    Case("unrated bond", lambda df: bb.BondPanel.from_frame(_with(df, 0, rating="NR")), (DF,),
         DataError, r"'NR'.*unrated='missing'|unrated='missing'.*'NR'"),
    Case("blank rating", lambda df: bb.BondPanel.from_frame(_with(df, 0, rating="")), (DF,),
         DataError, r"''.*B0000|B0000.*''"),
    Case("unknown unrated policy", lambda df: bb.BondPanel.from_frame(df, unrated="drop"), (DF,),
         DataError, r"'drop'"),
    Case("ambiguous dates", lambda: bb.BondPanel.from_frame(pd.DataFrame(
        {"date": ["05/01/2020", "13/01/2020"], "bond": ["A", "B"], "ret": [0.01, 0.02]})), (),
         DataError, r"'date'.*05/01/2020.*date_format"),
    Case("mixed date orders", lambda: bb.BondPanel.from_frame(pd.DataFrame(
        {"date": ["13/01/2020", "01/13/2020"], "bond": ["A", "B"], "ret": [0.01, 0.02]})), (),
         DataError, r"13/01/2020.*01/13/2020"),
    Case("unrated rating string", lambda: bb.rating_bucket("NR"), (), DataError, r"'NR'"),
    # --- Bayesian factor model
    Case("unknown factor", lambda p, f: _fit_factor(p, f, names=["CMKT", "TERMX"]),
         (SIM.panel, F), DataError, r"TERMX"),
    Case("Bayesian fit on returns in percent",
         lambda p, f: bb.FactorModel(["CMKT", "TERM"]).prepare(p.returns * 100, f),
         (SIM.panel, F), DataError, r"percent.*B000\d"),
    Case("Bayesian fit on factors in percent",
         lambda p, f: bb.FactorModel(["CMKT", "TERM"]).prepare(p, f * 100), (SIM.panel, F),
         DataError, r"percent.*CMKT"),
    Case("unknown pooling", lambda: bb.FactorModel(factors=["CMKT"], pooling="partial"), (),
         SpecError, r"unknown pooling 'partial'"),
    Case("zero draws", lambda p, f: _fit_factor(p, f, draws=0), (SIM.panel, F), SpecError,
         r"draws"),
    Case("factor file misses months",
         lambda p, f: bb.FactorModel(["CMKT", "TERM"], pooling="unpooled").prepare(
             p, f.iloc[2:], returns_name="panel.csv", factors_name="factors.csv"), (SIM.panel, F),
         DataError, r"factors\.csv.*2005-01-31"),
    Case("constant factor in a Bayesian fit",
         lambda p, f: bb.FactorModel(["CMKT", "TERM"]).prepare(p, f.assign(TERM=0.01)),
         (SIM.panel, F), DataError, r"'TERM'"),
    # --- term structure
    Case("stationary moments of an unstable OU",
         lambda: bb.OU(np.array([[0.1]]), np.array([0.0]), np.array([[0.01]])).stationary_cov(), (),
         ModelError, r"not stable"),
    Case("negative horizon", lambda: _ou2().cov(-1), (), DataError, r"t = -1"),
    Case("negative horizon of the mean", lambda: _ou2().mean([0, 0], -1), (), DataError, r"\bt\b"),
    Case("NaN horizon", lambda: _ou2().cov(np.nan), (), DataError, r"t = nan"),
    Case("NaN step", lambda: _ou2().transition(np.nan), (), DataError, r"dt = nan"),
    Case("NaN frequency", lambda: _ou2().spectrum(np.nan), (), DataError, r"freq"),
    Case("complex drift matrix",
         lambda: bb.OU(np.array([[-1 + 0.2j, 0], [0, -1]]), [0, 0], np.eye(2)), (), ModelError,
         r"\bA\b.*complex|complex.*\bA\b"),
    Case("round-off unit root", lambda: bb.OU(np.diag([-5e-17, -1.0]), [0, 0],
                                              np.eye(2)).stationary_cov(), (), ModelError,
         r"5e-17"),
    Case("absurd maturity", lambda: bb.GaussianAffine(-1.0, 0.04, 0.01).yields(0.03, 1e300), (),
         ModelError, r"tau.*1e\+300"),
    Case("y(inf) through a round-off unit root",
         lambda: bb.GaussianAffine(np.diag([-1.0, -5e-17]), [0.04, 0], 0.01 * np.eye(2),
                                   delta1=[1, 1]).yield_inf(), (), ModelError, r"delta1"),
    Case("short rate in decimals declared, given percent",
         lambda r: bb.ou_ml(r * 100, units="decimal"), (_rate(),), DataError, r"'r'"),
    Case("no dt and no dates", lambda r: bb.ou_ml(r.to_numpy()), (_rate(),), DataError, r"dt"),
    Case("unknown OU units", lambda r: bb.ou_ml(r, 1 / 12, units="bp"), (_rate(),), SpecError,
         r"units"),
    Case("maturities in months", lambda y: bb.affine_ml(y.set_axis(y.columns * 12, axis=1)),
         (_curve(),), DataError, r"months.*maturity_units"),
    Case("a month missing from a yield panel", lambda y: bb.affine_ml(y.drop(y.index[3])),
         (_curve(),), DataError, r"gap from"),
    # --- storage
    Case("load a corrupt file", _load_corrupt, (), DataError,
         r"bayesbond-corrupt-.*\.nc.*corrupt or truncated"),
    Case("load a missing file", lambda: bb.load("/nonexistent/fit.nc"), (), FileNotFoundError,
         r"/nonexistent/fit\.nc"),
]


def _same(a, b) -> bool:
    if isinstance(a, pd.DataFrame | pd.Series):
        return a.equals(b)
    if hasattr(a, "returns") and hasattr(a, "to_frame"):  # BondPanel
        return a.to_frame().equals(b.to_frame())
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    return True


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_python_bad_input(case: Case):
    inputs = copy.deepcopy(case.inputs)
    with pytest.raises(case.exc, match=case.match):
        case.call(*inputs)
    for before, after in zip(case.inputs, inputs, strict=True):
        assert _same(before, after), f"{case.id}: the call changed its input"


def test_catalogue_is_large_enough():
    assert len(CASES) + len(CLI_CASES) >= 40


# --------------------------------------------------------------------------------- the CLI
def _cli(*args, cwd=None, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "bayesbond.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr


TINY = ["--draws", "30", "--tune", "30", "--chains", "1", "--seed", "3"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_cli")
    DF.to_csv(folder / "panel.csv", index=False)
    F.rename_axis("date").to_csv(folder / "factors.csv")
    return folder


def _write(folder, name, text_or_df):
    path = folder / name
    if isinstance(text_or_df, pd.DataFrame):
        text_or_df.to_csv(path, index=False)
    else:
        path.write_bytes(text_or_df if isinstance(text_or_df, bytes) else text_or_df.encode())
    return path


# (id, builder(folder, tmp) -> argv, exit code, regex on the error line)
CLI_CASES = [
    ("missing data file",
     lambda d, t: ["fit", "benchmark", "--data", t / "nope.csv", "--out", t / "x.nc"],
     2, r"nope\.csv: file not found"),
    ("unknown spec",
     lambda d, t: ["fit", t / "nope.toml", "--data", d / "panel.csv", "--out", t / "x.nc"],
     2, r"spec file not found"),
    ("spec key typo",
     lambda d, t: ["fit", _write(t, "s.toml", 'family = "factor_regression"\n[model]\n'
                                 'factors = ["CMKT"]\npoolin = "pooled"\n'),
                   "--data", d / "panel.csv", "--factors", d / "factors.csv", "--out", t / "x.nc"],
     2, r"unknown key 'poolin'; did you mean 'pooling'\?"),
    ("unsupported output suffix",
     lambda d, t: ["fit", "benchmark", "--data", d / "panel.csv", "--out", t / "x.pkl"],
     2, r"\.nc \(netCDF\) or \.zarr"),
    ("output folder does not exist",
     lambda d, t: ["fit", "benchmark", "--data", d / "panel.csv", "--factors", d / "factors.csv",
                   "--out", t / "no_such_dir" / "x.nc", *TINY],
     2, r"no_such_dir"),
    ("existing fit without --overwrite",
     lambda d, t: ["fit", "benchmark", "--data", d / "panel.csv", "--factors", d / "factors.csv",
                   "--out", _write(t, "old.nc", b"keep me"), *TINY],
     2, r"old\.nc.*exists.*--overwrite"),
    ("missing return column",
     lambda d, t: ["fit", "hierarchical", "--data", _write(t, "p.csv", DF.drop(columns="ret")),
                   "--factors", d / "factors.csv", "--out", t / "x.nc", *TINY],
     1, r"p\.csv: column 'ret'.*missing"),
    ("non-numeric factor value",
     lambda d, t: ["fit", "hierarchical", "--data", d / "panel.csv", "--factors",
                   _write(t, "f.csv", F.rename_axis("date").reset_index().astype({"TERM": object})
                          .pipe(lambda f: f.assign(TERM=f["TERM"].where(f.index != 4, "n/a")))),
                   "--out", t / "x.nc", *TINY],
     1, r"f\.csv: column 'TERM'.*line 6 \(date 2005-05-31\)"),
    ("factor not in the factor file",
     lambda d, t: ["fit", "hierarchical", "--data", d / "panel.csv", "--factors",
                   _write(t, "f.csv", F.rename_axis("date").reset_index()
                          .rename(columns={"TERM": "TERMS"})), "--out", t / "x.nc", *TINY],
     1, r"unknown factor 'TERM'.*'TERMS'"),
    ("duplicated rows in the panel file",
     lambda d, t: ["fit", "hierarchical", "--data", _write(t, "p.csv",
                                                           pd.concat([DF, DF.iloc[[3]]])),
                   "--factors", d / "factors.csv", "--out", t / "x.nc", *TINY],
     1, r"p\.csv: duplicated \(bond, date\)"),
    ("zero draws",
     lambda d, t: ["fit", "hierarchical", "--data", d / "panel.csv", "--factors", d / "factors.csv",
                   "--out", t / "x.nc", "--draws", "0"], 2, r"draws"),
    ("target_accept out of range",
     lambda d, t: ["fit", "hierarchical", "--data", d / "panel.csv", "--factors", d / "factors.csv",
                   "--out", t / "x.nc", "--target-accept", "1.5"], 2, r"target.accept"),
    ("constant factor in the factor file",
     lambda d, t: ["fit", "hierarchical", "--data", d / "panel.csv", "--factors",
                   _write(t, "const.csv", F.rename_axis("date").reset_index().assign(TERM=0.01)),
                   "--out", t / "x.nc", *TINY], 1, r"const\.csv.*'TERM'"),
    ("factor file misses the first months",
     lambda d, t: ["fit", "hierarchical", "--data", d / "panel.csv", "--factors",
                   _write(t, "late.csv", F.rename_axis("date").reset_index().iloc[3:]),
                   "--out", t / "x.nc", *TINY], 1, r"late\.csv.*2005-01-31"),
    ("compare output exists",
     lambda d, t: ["compare", _write(t, "a.nc", b"x"), _write(t, "b.nc", b"y"), "--out",
                   _write(t, "table.csv", "keep")], 2, r"table\.csv.*--overwrite"),
    ("compare output folder missing",
     lambda d, t: ["compare", _write(t, "a.nc", b"x"), _write(t, "b.nc", b"y"), "--out",
                   t / "nodir" / "table.csv"], 2, r"nodir"),
    ("compare a corrupt fit",
     lambda d, t: ["compare", _write(t, "cut.nc", b"\x89HDF\r\n\x1a\n" + b"cut" * 9),
                   _write(t, "b.nc", b"y")], 1, r"cut\.nc"),
    ("report output folder missing",
     lambda d, t: ["report", _write(t, "a.nc", b"x"), "--out", t / "nodir" / "rep"], 2, r"nodir"),
    ("report a corrupt fit",
     lambda d, t: ["report", _write(t, "cut.nc", b"\x89HDF\r\n\x1a\n" + b"cut" * 9), "--out",
                   t / "rep"], 1, r"cut\.nc"),
    ("demo output folder missing",
     lambda d, t: ["demo", "--out", t / "nodir" / "demo"], 2, r"nodir"),
]


@pytest.mark.parametrize(("cid", "argv", "code", "match"), CLI_CASES,
                         ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(files, tmp_path, cid, argv, code, match):
    import re

    args = argv(files, tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    rc, stderr = _cli(*args)
    assert rc == code, stderr[-2000:]
    lines = [ln for ln in stderr.splitlines() if ": error:" in ln]
    assert len(lines) == 1, stderr[-2000:]
    assert re.search(match, lines[0]), lines[0]
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, f"{cid}: the command wrote or changed files"


def test_yields_in_decimals_for_a_percent_spec_warn(tmp_path):
    """An affine spec reads yields as percent: a file in decimals is named, before any fit."""
    from bayesbond.cli import load_series_inputs
    from bayesbond.workflow.specs import load_spec

    spec = load_spec("affine3")
    dates = pd.date_range("2000-01-31", periods=24, freq="ME").strftime("%Y-%m-%d")
    y = pd.DataFrame({c: np.linspace(0.01, 0.05, 24) for c in spec.data["columns"]})
    y.insert(0, "date", dates)
    y.to_csv(tmp_path / "yields.csv", index=False)
    with pytest.warns(UserWarning, match=r"yields\.csv: \[data\] units = \"percent\""):
        frame = load_series_inputs(spec, tmp_path / "yields.csv")
    np.testing.assert_allclose(frame.to_numpy(), y.iloc[:, 1:].to_numpy() / 100)  # as declared


def _default_sigint():
    """In the child, before exec: Ctrl-C as a terminal gives it. A SIGINT ignored by the test
    process (some pytest-xdist runs leave it ignored) would be inherited through exec, and
    Python then installs no KeyboardInterrupt handler: the signal would be lost."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("phase", ["] compiling", "] tuning:"])
def test_sigint_during_fit_leaves_nothing(files, tmp_path, phase):
    """Ctrl-C while `bayesbond fit` compiles or samples: exit 130, no output, no temporary
    file."""
    out = tmp_path / "fit.nc"
    proc = subprocess.Popen([sys.executable, "-m", "bayesbond.cli", "fit", "hierarchical",
                             "--data", files / "panel.csv", "--factors", files / "factors.csv",
                             "--out", out, "--draws", "20000", "--tune", "2000", "--chains", "2"],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=_default_sigint)
    seen = ""
    deadline = time.monotonic() + 300
    # the sampler's own phase line, not any line that happens to say "sampling" (the
    # identification warning printed while the model is built does)
    while phase not in seen and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
    assert phase in seen, seen
    time.sleep(2.0 if "tuning" in phase else 0.5)
    os.kill(proc.pid, signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + rest
    assert list(tmp_path.iterdir()) == [], "an interrupted fit left files behind"

"""The `bayesbond` command line, driven as a user would: subprocesses in temporary folders."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.image import imread

import bayesbond as bb
from bayesbond.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--draws", "150", "--tune", "150", "--chains", "2", "--seed", "3"]


def run(*args, cwd=None, timeout=600):
    """Run ``python -m bayesbond.cli ARGS``; returns (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "bayesbond.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def error_line(stderr: str) -> str:
    """The error line: exactly one line of stderr starts with 'bayesbond <command>: error:'."""
    lines = [ln for ln in stderr.splitlines() if ": error:" in ln]
    assert len(lines) == 1, stderr
    return lines[0]


def assert_png(path: Path):
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE and len(raw) > 20_000, path
    img = imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 400
    assert (img[..., :3] < 0.9).any(axis=-1).mean() > 0.01


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    code, stdout, stderr = run("demo", "--fast", "--out", out)
    assert code == 0, stderr[-3000:]
    return out, stdout, stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small simulated panel written as a user's CSV files."""
    folder = tmp_path_factory.mktemp("tiny")
    sim = bb.datasets.simulate_panel(n_bonds=15, n_dates=48, seed=5)
    sim.panel.to_frame().to_csv(folder / "panel.csv", index=False)
    sim.factors.rename_axis("date").to_csv(folder / "factors.csv")
    return folder, sim


def test_help_everywhere():
    for cmd in ([], ["demo"], ["fit"], ["compare"], ["report"]):
        code, stdout, _ = run(*cmd, "--help")
        assert code == 0 and "usage: bayesbond" in stdout and "exit codes" in stdout
    assert main(["--version"]) == 0


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["fit", "benchmark"]) == 2  # --data and --out missing
    assert "required" in capsys.readouterr().err


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_demo_writes_what_it_promises(demo):
    out, stdout, stderr = demo
    promised = ["summary.md", "summary.csv", "bucket_betas.csv", "fits/pooled.nc",
                "fits/hierarchical.nc", "data/panel.csv", "data/factors.csv",
                "plots/betas_by_bucket.png"]
    if has("bayesbond.workflow.expected"):
        promised += ["expected_returns.csv", "expected_returns_by_bucket.csv",
                     "plots/expected_returns.png"]
    if has("bayesbond.bayes.ou_model"):
        promised += ["fits/ou_short_rate.nc", "data/short_rate.csv", "plots/ou_fit.png"]
    if has("bayesbond.baselines.affine_ml"):
        promised += ["data/yields.csv", "plots/yield_curve_fit.png"]
    for rel in promised:
        assert (out / rel).is_file(), rel
        assert rel in stdout  # it says where everything went
    assert "[bayesbond" in stderr  # progress on stderr
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left
    for png in (out / "plots").glob("*.png"):
        assert_png(png)
    for nc in (out / "fits").glob("*.nc"):
        fit = bb.load(nc)
        assert fit.attrs["bayesbond_spec"]["family"] in ("factor_regression", "ou")
    fit = bb.load(out / "fits" / "hierarchical.nc")
    assert fit["posterior"]["beta"].dims[-2:] == ("bond", "factor")
    assert fit.attrs["bayesbond_spec"]["model"]["pooling"] == "hierarchical"
    assert fit.attrs["bayesbond_data_hash"].startswith("sha256:")

    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert {"pooled", "hierarchical"} == set(summary.index)
    assert summary["diagnostics"].str.contains("R-hat").all()
    md = (out / "summary.md").read_text()
    assert "| model |" in md and "hierarchical" in md
    if has("bayesbond.workflow.compare"):
        assert "elpd" in summary.columns
        # the hierarchical model predicts this hierarchical panel better than complete pooling
        assert summary.index[0] == "hierarchical"
    # bucket betas: the hierarchical bucket means are near the truth (OLS averages too)
    buckets = pd.read_csv(out / "bucket_betas.csv", index_col=[0, 1])
    assert set(buckets.index.get_level_values(0)) == {"IG+", "IG-", "HY"}
    err = (buckets["hierarchical_mu_beta"] - buckets["true_mean_beta"]).abs()
    assert (err < 0.15).all(), buckets
    if has("bayesbond.workflow.expected"):
        er = pd.read_csv(out / "expected_returns.csv", index_col=0)
        assert (er["lower"] <= er["mean"]).all() and (er["mean"] <= er["upper"]).all()
        assert er["ols"].notna().all()
        # the bucket bands carry the uncertainty of E[F]: far wider than with E[F] known
        bk = pd.read_csv(out / "expected_returns_by_bucket.csv", index_col=[0, 1])
        panel = bk.xs("panel", level="level")
        assert ((panel["upper"] - panel["lower"])
                > 2 * (panel["known_upper"] - panel["known_lower"])).all(), bk
        assert "Expected returns by rating bucket" in md


def test_demo_converges_cleanly_and_shows_its_phases(demo):
    """`bayesbond demo --fast`: no convergence (or identification) warning; phase lines."""
    _, _, stderr = demo
    assert "did not converge" not in stderr and "Warning" not in stderr, stderr
    for phase in ("compiling FactorModel(pooled", "compiling FactorModel(hierarchical",
                  "compiling OUModel(n=1", "tuning: 4 chains", "drawing: 4 chains",
                  "sampled in", "post-processing", "comparing the Bayesian models by PSIS-LOO"):
        assert phase in stderr, phase


def test_demo_data_round_trips_through_fit_report_compare(demo, tiny, tmp_path):
    out, _, _ = demo
    folder, sim = tiny
    fit = tmp_path / "fit.nc"
    code, stdout, stderr = run("fit", "hierarchical", "--data", folder / "panel.csv",
                               "--factors", folder / "factors.csv", "--out", fit, *TINY)
    assert code == 0, stderr[-3000:]
    assert f"wrote {fit}" in stdout and "sampling" in stderr
    # the phases of the work, in order, and the timings in the attrs and on stdout
    phases = ["reading", "validating", "fitting hierarchical", "compiling", "tuning:",
              "drawing:", "sampled in", "post-processing", "writing", "] done"]
    at = [stderr.find(p) for p in phases]
    assert -1 not in at and at == sorted(at), stderr
    assert re.search(r"compiled in \d+\.\d s, sampled in \d+\.\d s", stdout), stdout
    tree = bb.load(fit)
    assert tree.attrs["compile_seconds"] > 0 and tree.attrs["sampling_seconds"] > 0
    spec = tree.attrs["bayesbond_spec"]
    assert spec["name"] == "hierarchical" and spec["sampler"]["draws"] == 150
    assert tree.attrs["bayesbond_data_hash"] == bb.workflow.io.hash_data(
        folder / "panel.csv", folder / "factors.csv")
    xr.testing.assert_allclose(
        tree["observed_data"]["returns"],
        sim.panel.returns.rename("returns").transpose(*tree["observed_data"]["returns"].dims),
    )
    # same command again: refuses to overwrite, says how, exit 2, file untouched
    before = fit.read_bytes()
    code, _, stderr = run("fit", "hierarchical", "--data", folder / "panel.csv",
                          "--factors", folder / "factors.csv", "--out", fit, *TINY)
    assert code == 2 and "--overwrite" in error_line(stderr)
    assert fit.read_bytes() == before

    rep = tmp_path / "report"
    code, stdout, stderr = run("report", fit, "--out", rep)
    assert code == 0, stderr[-3000:]
    assert (rep / "fit_summary.md").is_file() and (rep / "fit_summary.csv").is_file()
    table = pd.read_csv(rep / "fit_summary.csv", index_col=0)
    assert any(str(i).startswith("mu_beta") for i in table.index)
    assert_png(rep / "fit_betas_by_bucket.png")
    code, _, stderr = run("report", fit, "--out", rep)
    assert code == 2 and "--overwrite" in error_line(stderr)

    # a second model on the same data, compared with the first by PSIS-LOO
    pooled = tmp_path / "pooled.nc"
    code, _, stderr = run("fit", "benchmark_pooled", "--data", folder / "panel.csv",
                          "--factors", folder / "factors.csv", "--out", pooled, *TINY)
    assert code == 0, stderr[-3000:]
    code, stdout, stderr = run("compare", pooled, fit, "--out", tmp_path / "cmp.csv")
    assert code == 0, stderr[-3000:]
    assert "| fit |" in stdout and "| pooled |" in stdout
    cmp = pd.read_csv(tmp_path / "cmp.csv", index_col=0)
    assert set(cmp.index) == {"fit", "pooled"} and "elpd" in cmp.columns
    assert cmp["elpd_diff"].iloc[0] == 0 and cmp["elpd_diff"].iloc[1] < 0
    code, _, stderr = run("compare", pooled)
    assert code == 2 and "at least two" in error_line(stderr)



@pytest.fixture()
def frames(tiny):
    folder, _ = tiny
    return pd.read_csv(folder / "panel.csv"), folder / "factors.csv"


@pytest.mark.parametrize(
    ("mangle", "pattern"),
    [
        (lambda df: df.drop(columns="ret"), r"bad\.csv: column 'ret' named by .*hierarchical\.toml"
                                            r" \[data\] ret is missing"),
        (lambda df: df.assign(date=df["date"].where(df.index != 7, "2019-13-45")),
         r"bad\.csv: unparseable or missing dates in column 'date': row 7: '2019-13-45'"),
        (lambda df: pd.concat([df, df.iloc[[3]]], ignore_index=True),
         r"bad\.csv: duplicated \(bond, date\) rows .*\(B0003, 2005-01-31\)"),
        (lambda df: df.assign(rating=df["rating"].where(df.index != 2, "ZZZ")),
         r"bad\.csv: .*ZZZ"),
    ],
    ids=["missing column", "unparseable date", "duplicated rows", "unknown rating"],
)
def test_malformed_csv_one_line_error(tmp_path, frames, mangle, pattern):
    df, factors = frames
    bad = tmp_path / "bad.csv"
    mangle(df).to_csv(bad, index=False)
    out = tmp_path / "fit.nc"
    code, _, stderr = run("fit", "hierarchical", "--data", bad, "--factors", factors,
                          "--out", out, *TINY)
    assert code == 1
    line = error_line(stderr)
    assert line.startswith("bayesbond fit: error: ")
    assert re.search(pattern, line), line
    assert list(tmp_path.iterdir()) == [bad]  # nothing half-written


def test_bad_factor_file_and_unknown_factor(tmp_path, frames):
    df, factors = frames
    panel = tmp_path / "panel.csv"
    df.to_csv(panel, index=False)
    f = pd.read_csv(factors)
    f["TERM"] = f["TERM"].astype(object)
    f.loc[4, "TERM"] = "n/a"
    f.to_csv(tmp_path / "f1.csv", index=False)
    code, _, stderr = run("fit", "hierarchical", "--data", panel, "--factors",
                          tmp_path / "f1.csv", "--out", tmp_path / "x.nc")
    assert code == 1
    assert "f1.csv: column 'TERM' has a missing value (empty or NA) at line 6 (date 2005-05-31)" \
        in error_line(stderr)
    f = pd.read_csv(factors).rename(columns={"TERM": "TERMS"})
    f.to_csv(tmp_path / "f2.csv", index=False)
    code, _, stderr = run("fit", "hierarchical", "--data", panel, "--factors",
                          tmp_path / "f2.csv", "--out", tmp_path / "x.nc")
    assert code == 1
    assert "unknown factor 'TERM'" in error_line(stderr) and "'TERMS'" in error_line(stderr)
    assert not (tmp_path / "x.nc").exists()


def test_bad_spec_exit_2(tmp_path, frames):
    df, factors = frames
    panel = tmp_path / "panel.csv"
    df.to_csv(panel, index=False)
    spec = tmp_path / "mine.toml"
    spec.write_text('family = "factor_regression"\n[model]\nfactors = ["CMKT"]\n'
                    'poolin = "pooled"\n')
    code, _, stderr = run("fit", spec, "--data", panel, "--factors", factors,
                          "--out", tmp_path / "x.nc")
    assert code == 2
    assert error_line(stderr) == (f"bayesbond fit: error: {spec}: [model]: unknown key 'poolin'; "
                                  "did you mean 'pooling'?")
    code, _, stderr = run("fit", tmp_path / "nope.toml", "--data", panel, "--out",
                          tmp_path / "x.nc")
    assert code == 2 and "spec file not found" in error_line(stderr)
    code, _, stderr = run("fit", "benchmark", "--data", tmp_path / "nope.csv", "--out",
                          tmp_path / "x.nc")
    assert code == 2 and "nope.csv: file not found" in error_line(stderr)
    code, _, stderr = run("fit", "benchmark", "--data", panel, "--out", tmp_path / "x.pkl")
    assert code == 2 and ".nc (netCDF) or .zarr" in error_line(stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.toml", "panel.csv"]


def test_interrupted_report_leaves_nothing(tmp_path, monkeypatch):
    """A report that fails midway leaves no folder and no temporary files."""
    from bayesbond.workflow import report

    post = xr.Dataset({"beta": (("chain", "draw", "bond", "factor"), np.zeros((1, 5, 2, 1))),
                       "alpha": (("chain", "draw", "bond"), np.zeros((1, 5, 2)))},
                      coords={"bond": ["a", "b"], "factor": ["CMKT"]})
    tree = xr.DataTree.from_dict({"posterior": post})

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("bayesbond.workflow.plots.plot_betas_by_bucket", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        report.write_report(tree, tmp_path / "rep")
    assert list(tmp_path.iterdir()) == []


def test_term_structure_specs_fail_cleanly_before_sampling(tmp_path):
    tau = ["m3", "m6", "m12", "m24", "m36", "m60", "m84", "m120"]
    dates = pd.date_range("2000-01-31", periods=12, freq="ME").strftime("%Y-%m-%d")
    y = pd.DataFrame(np.linspace(1, 3, 12 * 8).reshape(12, 8), columns=tau)
    y.insert(0, "date", dates)
    y.to_csv(tmp_path / "yields.csv", index=False)
    # EFM(1) is specified (and validated) but has no estimator yet: a clear model error
    efm1 = (Path(__file__).parents[1] / "models" / "efm2.toml").read_text()
    (tmp_path / "efm1.toml").write_text(efm1.replace('kind = "efm2"', 'kind = "efm1"'))
    code, _, stderr = run("fit", tmp_path / "efm1.toml", "--data", tmp_path / "yields.csv",
                          "--out", tmp_path / "e.nc")
    assert code == 1 and "kind 'efm1' has no estimator" in error_line(stderr)
    # a yield column the spec names is missing
    y.drop(columns="m84").to_csv(tmp_path / "short.csv", index=False)
    code, _, stderr = run("fit", "affine3", "--data", tmp_path / "short.csv",
                          "--out", tmp_path / "a.nc")
    assert code == 1 and "column 'm84' named by" in error_line(stderr)
    # a 1-D OU spec on a two-column file
    y[["date", "m3", "m6"]].to_csv(tmp_path / "two.csv", index=False)
    code, _, stderr = run("fit", "ou_short_rate", "--data", tmp_path / "two.csv",
                          "--out", tmp_path / "o.nc")
    assert code == 1 and "2 data columns (m3, m6) for an 1-dimensional OU" in error_line(stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["efm1.toml", "short.csv", "two.csv",
                                                           "yields.csv"]


def test_efm2_fit_by_ml_and_report(tmp_path):
    """EFM(2) yields simulated by bb.EFM2 -> `fit efm2` (Kalman ML) -> a loadable tree, a report."""
    m = bb.EFM2(1.5, 0.5, 0.2, 0.04, [[0.012, 0, 0], [0.004, 0.008, 0], [0.001, 0.002, 0.006]],
                0.3, 0.1, 0.1, lambda1=[0, 0, -0.002])
    tau = np.array([0.25, 0.5, 1, 2, 3, 5, 7, 10.0])
    X = m.ou_P().simulate(np.full(3, 0.04), n_steps=239, dt=1 / 12, rng=np.random.default_rng(1))
    X = np.asarray(X).reshape(240, 3)
    Z, d = m.yield_coefficients(tau)
    Y = d + X @ Z.T + 5e-4 * np.random.default_rng(2).standard_normal((240, len(tau)))
    cols = ["m3", "m6", "m12", "m24", "m36", "m60", "m84", "m120"]
    df = pd.DataFrame(100 * Y, columns=cols)
    df.insert(0, "date", pd.date_range("2000-01-31", periods=240, freq="ME").strftime("%Y-%m-%d"))
    df.to_csv(tmp_path / "f.csv", index=False)
    code, stdout, stderr = run("fit", "models/efm2.toml", "--data", tmp_path / "f.csv", "--out",
                               tmp_path / "fit.nc", cwd=Path(__file__).parents[1])
    assert code == 0, stderr[-3000:]
    assert "[priors] and [sampler] settings are not used" in stdout + stderr  # said, not dropped
    tree = bb.load(tmp_path / "fit.nc")
    assert "posterior" not in tree.children and tree.attrs["estimator"].startswith("maximum")
    ml = tree["ml"]
    assert ml["k_star"].sel(stat="estimate").values == pytest.approx([1.2, 0.4, 0.1], rel=0.3)
    assert float(ml["sigma_e"].sel(stat="se")) > 0
    assert tree["observed_data"]["yields"].shape == (240, 8)
    code, _, stderr = run("report", tmp_path / "fit.nc", "--out", tmp_path / "rep")
    assert code == 0, stderr[-3000:]
    assert "k_star[r]" in (tmp_path / "rep" / "fit_summary.md").read_text()
    assert_png(tmp_path / "rep" / "fit_yield_curve_fit.png")


def test_factors_inside_the_panel_file_must_be_one_per_date(tmp_path, frames):
    df, factors = frames
    f = pd.read_csv(factors)
    merged = df.merge(f, on="date")
    merged.loc[5, "CMKT"] += 0.01  # two different CMKT values on the same date
    merged.to_csv(tmp_path / "panel.csv", index=False)
    code, _, stderr = run("fit", "hierarchical", "--data", tmp_path / "panel.csv",
                          "--out", tmp_path / "x.nc")
    assert code == 1
    assert re.search(r"panel\.csv: duplicated date 2005-01-31 in column 'date'",
                     error_line(stderr))


def test_data_errors_come_before_any_compiling_and_name_the_file(tmp_path, frames, capsys):
    """Factor dates and a constant factor are checked before "fitting"; exit 1 (data error);
    the factor file and the dates (YYYY-MM-DD) are named; nothing is written."""
    df, factors = frames
    panel = tmp_path / "panel.csv"
    df.to_csv(panel, index=False)
    f = pd.read_csv(factors)
    f.iloc[2:].to_csv(tmp_path / "late.csv", index=False)  # the first two months are missing
    f.assign(TERM=0.001).to_csv(tmp_path / "const.csv", index=False)
    code = main(["fit", "hierarchical", "--data", str(panel), "--factors",
                 str(tmp_path / "late.csv"), "--out", str(tmp_path / "x.nc")])
    err = capsys.readouterr().err
    assert code == 1
    line = error_line(err)
    assert f"{tmp_path / 'late.csv'} has no row for the return dates 2005-01-31, 2005-02-28" \
        in line and f"in {panel}" in line and "00:00:00" not in line
    assert "fitting" not in err and "compiling" not in err
    code = main(["fit", "hierarchical", "--data", str(panel), "--factors",
                 str(tmp_path / "const.csv"), "--out", str(tmp_path / "x.nc")])
    err = capsys.readouterr().err
    assert code == 1  # a data error, as the README says (was 2)
    assert f"{tmp_path / 'const.csv'}: factor(s) ['TERM'] constant over the sample" \
        in error_line(err)
    assert "compiling" not in err
    code = main(["fit", "hierarchical", "--data", str(panel), "--factors", str(factors),
                 "--out", str(tmp_path / "x.nc"), "--draws", "0"])
    assert code == 2 and "draws" in error_line(capsys.readouterr().err)
    code = main(["fit", "hierarchical", "--data", str(panel), "--factors", str(factors),
                 "--out", str(tmp_path / "x.nc"), "--target-accept", "1.5"])
    assert code == 2 and "target_accept" in error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["const.csv", "late.csv", "panel.csv"]


def test_outputs_checked_before_any_work(tmp_path, capsys):
    """A missing output folder, an existing --out of compare, an existing report: exit 2 before
    anything is read (the fit files here are not even valid: they are never opened)."""
    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    a.write_bytes(b"not netcdf")
    b.write_bytes(b"not netcdf")
    code = main(["fit", "benchmark", "--data", str(tmp_path / "p.csv"), "--out",
                 str(tmp_path / "nodir" / "x.nc")])
    err = capsys.readouterr().err
    assert code == 2 and "folder" in error_line(err) and "nodir does not exist" in error_line(err)
    assert "reading" not in err
    (tmp_path / "t.csv").write_text("old")
    code = main(["compare", str(a), str(b), "--out", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "t.csv already exists; use --overwrite" in error_line(err)
    assert "loading" not in err and (tmp_path / "t.csv").read_text() == "old"
    code = main(["compare", str(a), str(b), "--out", str(tmp_path / "nodir" / "t.csv")])
    assert code == 2 and "nodir does not exist" in error_line(capsys.readouterr().err)
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "a_summary.md").write_text("old")
    code = main(["report", str(a), "--out", str(rep)])
    err = capsys.readouterr().err
    assert code == 2 and "a_summary.md already exists; use --overwrite" in error_line(err)
    assert "loading" not in err and (rep / "a_summary.md").read_text() == "old"
    code = main(["report", str(a), "--out", str(tmp_path / "nodir" / "rep")])
    assert code == 2 and "nodir does not exist" in error_line(capsys.readouterr().err)
    code = main(["demo", "--out", str(tmp_path / "nodir" / "demo")])
    assert code == 2 and "nodir does not exist" in error_line(capsys.readouterr().err)


def test_corrupt_fit_file_one_line(tmp_path, capsys):
    """A truncated .nc: one line naming the file and the fix (was a bare h5py OSError)."""
    post = xr.Dataset({"x": (("chain", "draw"), np.zeros((2, 50)))})
    good = tmp_path / "good.nc"
    bb.save(xr.DataTree.from_dict({"posterior": post}), good)
    raw = good.read_bytes()
    (tmp_path / "cut.nc").write_bytes(raw[: len(raw) // 2])
    for args in (["report", str(tmp_path / "cut.nc"), "--out", str(tmp_path / "rep")],
                 ["compare", str(tmp_path / "cut.nc"), str(good)]):
        code = main(args)
        line = error_line(capsys.readouterr().err)
        assert code == 1, line
        assert f"{tmp_path / 'cut.nc'}: cannot be read as a netCDF-4 (HDF5) fit: the file is " \
               "corrupt or truncated" in line and "bayesbond fit" in line
    assert not (tmp_path / "rep").exists()


def _default_sigint():
    """In the child, before exec: Ctrl-C as a terminal gives it. A SIGINT ignored by the test
    process (some pytest-xdist runs leave it ignored) would be inherited through exec, and
    Python then installs no KeyboardInterrupt handler: the signal would be lost."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_during_fit_leaves_nothing(tmp_path, tiny):
    """Ctrl-C while the model compiles: exit 130, "interrupted", no output or temporary file."""
    import signal
    import time

    folder, _ = tiny
    out = tmp_path / "fit.nc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bayesbond.cli", "fit", "hierarchical", "--data",
         str(folder / "panel.csv"), "--factors", str(folder / "factors.csv"), "--out", str(out),
         *TINY], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path,
        preexec_fn=_default_sigint)
    seen = []
    t0 = time.monotonic()
    for line in proc.stderr:  # wait until the work has started
        seen.append(line)
        if "compiling" in line or time.monotonic() - t0 > 300:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=300)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "bayesbond fit: interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_data_table_sets_units_unrated_and_date_format(tmp_path):
    """[data] units / factor_units / unrated / date_format reach the panel and factor readers."""
    from bayesbond.cli import load_factor_inputs
    from bayesbond.workflow.specs import parse_spec

    sim = bb.datasets.simulate_panel(n_bonds=6, n_dates=24, seed=2)
    df = sim.panel.to_frame()
    df["date"] = df["date"].dt.strftime("%d/%m/%Y")  # day first: 31/01/2005 ...
    df.loc[0, "rating"] = "NR"
    pct = df.assign(ret=df["ret"] * 100)
    pct.to_csv(tmp_path / "p.csv", index=False)
    f = sim.factors.rename_axis("date").reset_index()
    f["date"] = f["date"].dt.strftime("%d/%m/%Y")
    (f.assign(CMKT=f["CMKT"] * 100, TERM=f["TERM"] * 100)).to_csv(tmp_path / "f.csv", index=False)
    raw = {"family": "factor_regression", "model": {"factors": ["CMKT", "TERM"]}}
    # the defaults refuse the percent panel, naming the file and the spec key to set
    with pytest.raises(bb.DataError, match=r"p\.csv: .*\[data\] units = "):
        load_factor_inputs(parse_spec(raw), tmp_path / "p.csv", tmp_path / "f.csv")
    spec = parse_spec({**raw, "data": {"units": "percent", "factor_units": "percent",
                                       "unrated": "missing", "date_format": "%d/%m/%Y"}})
    panel, F = load_factor_inputs(spec, tmp_path / "p.csv", tmp_path / "f.csv")
    np.testing.assert_allclose(panel.returns.values, sim.panel.returns.values, rtol=1e-12)
    np.testing.assert_allclose(F.to_numpy(), sim.factors.to_numpy(), rtol=1e-12)
    assert panel.returns.indexes["date"].equals(sim.panel.returns.indexes["date"])


def test_report_ef_window_and_prob_reach_the_report(tmp_path, monkeypatch):
    seen = {}

    def fake_report(idata, out, **kw):
        seen.update(kw)
        return []

    monkeypatch.setattr("bayesbond.workflow.report.write_report", fake_report)
    monkeypatch.setattr("bayesbond.workflow.io.load", lambda path: "a fit")
    fit = tmp_path / "a.nc"
    fit.write_bytes(b"x")
    assert main(["report", str(fit), "--out", str(tmp_path / "r"), "--ef-window",
                 "1997-01:2016-12", "--prob", "0.9", "--quiet"]) == 0
    assert seen["ef_window"] == ("1997-01", "2016-12") and seen["prob"] == 0.9
    assert main(["report", str(fit), "--out", str(tmp_path / "r"), "--ef-window", ":2016-12",
                 "--quiet"]) == 0
    assert seen["ef_window"] == (None, "2016-12")
    assert main(["report", str(fit), "--out", str(tmp_path / "r"), "--ef-window", "bond",
                 "--quiet"]) == 0
    assert seen["ef_window"] == "bond"
    seen.clear()
    assert main(["report", str(fit), "--out", str(tmp_path / "r"), "--ef-window", "1997",
                 "--quiet"]) == 2
    assert seen == {}  # refused before loading or writing


def test_ou_spec_in_percent_given_decimals_warns(tmp_path):
    from bayesbond.cli import load_series_inputs
    from bayesbond.workflow.specs import load_spec

    dates = pd.date_range("2000-01-31", periods=60, freq="ME")
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"),
                  "r": np.linspace(0.01, 0.06, 60)}).to_csv(tmp_path / "r.csv", index=False)
    spec = load_spec("ou_short_rate")
    assert spec.data["units"] == "percent"
    with pytest.warns(UserWarning, match=r"r\.csv: \[data\] units = \"percent\".*decimals"):
        load_series_inputs(spec, tmp_path / "r.csv")

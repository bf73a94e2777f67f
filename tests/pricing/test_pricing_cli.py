"""The pricing families end to end: ``bayesbond fit`` on wide CSV files, ``bayesbond report``
tables beside their baselines (recomputed here independently), plots, and the input errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

import bayesbond as bb
from bayesbond.cli import main
from bayesbond.workflow.io import load
from tests.pricing.sdf_economy import economy


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Simulated test assets and candidate factors (one useless) written as a user's CSVs."""
    folder = tmp_path_factory.mktemp("pricing")
    R, f, lam = economy(600, 1)
    idx = pd.period_range("1970-01", periods=len(R), freq="M").to_timestamp("M")
    R, f = R.set_axis(idx), f.set_axis(idx)
    R.rename_axis("date").to_csv(folder / "assets.csv")
    f.rename_axis("date").to_csv(folder / "factors.csv")
    return folder, R, f


def _spec(folder, family, body, name="spec.toml"):
    path = folder / name
    path.write_text(f'family = "{family}"\ndescription = "test"\n{body}')
    return path


def _png(path):
    img = imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 400
    assert (img[..., :3] < 0.9).any(axis=-1).mean() > 0.01


def test_sdf_selection_fit_and_report(files, tmp_path, capsys):
    folder, R, f = files
    fit_path = tmp_path / "sdf.nc"
    code = main(["fit", "sdf_selection", "--data", str(folder / "assets.csv"), "--factors",
                 str(folder / "factors.csv"), "--out", str(fit_path), "--draws", "600",
                 "--tune", "100", "--chains", "2", "--seed", "4", "--quiet"])
    assert code == 0, capsys.readouterr().err
    fit = load(fit_path)
    assert fit.attrs["family"] == "sdf_selection"
    # the same fit through the library on the same data and seed: identical draws
    again = bb.pricing.select_factors(R, f, prior_sharpe=0.15, draws=600, tune=100, chains=2,
                                      random_seed=4)
    np.testing.assert_array_equal(fit["posterior"]["gamma"].values,
                                  again["posterior"]["gamma"].values)
    out = tmp_path / "report"
    assert main(["report", str(fit_path), "--out", str(out), "--quiet"]) == 0
    base = pd.read_csv(out / "sdf_baseline.csv", index_col="factor")
    s = fit["summary"]
    np.testing.assert_allclose(base["inclusion_probability"],
                               s["inclusion_probability"].to_series()[base.index], rtol=1e-12)
    assert not base.loc["useless", "identified"] and base.loc["strong1", "identified"]
    md = (out / "sdf_summary.md").read_text()
    assert "SDF Sharpe ratio per period" in md and "identified" in md
    for png in ("inclusion_probabilities", "pricing_errors"):
        _png(out / f"sdf_{png}.png")


def test_bayes_fm_fit_and_report_beside_two_pass(files, tmp_path, capsys):
    folder, R, f = files
    spec = _spec(tmp_path, "bayes_fm", '[model]\nfactors = ["strong1", "strong2", "useless"]\n'
                 'assets = ["p00", "p01", "p02", "p03", "p04", "p05", "p06", "p07"]\n'
                 '[sampler]\ndraws = 800\ntune = 0\nchains = 2\nseed = 1\n')
    fit_path = tmp_path / "fm.nc"
    code = main(["fit", str(spec), "--data", str(folder / "assets.csv"), "--factors",
                 str(folder / "factors.csv"), "--out", str(fit_path), "--quiet"])
    assert code == 0, capsys.readouterr().err
    fit = load(fit_path)
    assert list(fit["observed_data"]["asset"].values) == [f"p0{i}" for i in range(8)]
    out = tmp_path / "report"
    assert main(["report", str(fit_path), "--out", str(out), "--quiet"]) == 0
    base = pd.read_csv(out / "fm_baseline.csv", index_col="factor")
    two = bb.pricing.fama_macbeth(R[[f"p0{i}" for i in range(8)]],
                                  f[["strong1", "strong2", "useless"]])
    np.testing.assert_allclose(base["fm"], two.risk_premia[base.index], rtol=1e-10)
    np.testing.assert_allclose(base["fm_se"], two.se[base.index], rtol=1e-10)
    lam = fit["posterior"]["lambda"].stack(s=("chain", "draw")).transpose("factor", "s")
    np.testing.assert_allclose(base["post_mean"], lam.values.mean(1), rtol=1e-10)
    z = 1.8807936081512509  # 94% (the report's default probability), two-sided
    np.testing.assert_allclose(base["fm_upper"] - base["fm"], z * base["fm_se"], rtol=1e-9)
    _png(out / "fm_risk_premia.png")


def test_pricing_input_errors(files, tmp_path, capsys):
    folder, R, f = files
    args = ["--data", str(folder / "assets.csv"), "--out", str(tmp_path / "x.nc"), "--quiet"]
    assert main(["fit", "sdf_selection", *args]) == 2  # the factor file is required
    assert "reads two files" in capsys.readouterr().err
    # a gap on a shared month is refused by column and line
    gap = R.copy()
    gap.iloc[10, 3] = np.nan
    gap.rename_axis("date").to_csv(tmp_path / "gap.csv")
    assert main(["fit", "sdf_selection", "--data", str(tmp_path / "gap.csv"), "--factors",
                 str(folder / "factors.csv"), "--out", str(tmp_path / "y.nc"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "column 'p03'" in err and "line 12" in err, err
    # an unknown asset column named by the spec
    spec = _spec(tmp_path, "bayes_fm", '[model]\nassets = ["p00", "p99"]\n')
    assert main(["fit", str(spec), "--factors", str(folder / "factors.csv"), *args]) == 1
    assert "'p99'" in capsys.readouterr().err
    # sdf_selection without its prior scale
    spec = _spec(tmp_path, "sdf_selection", "[priors]\naw = 1.0\n", "noprior.toml")
    assert main(["fit", str(spec), "--factors", str(folder / "factors.csv"), *args]) == 2
    assert "prior_sharpe" in capsys.readouterr().err
    # dirac with more than 20 listed factors is refused when the spec is read
    many = json.dumps([f"f{i}" for i in range(21)])
    spec = _spec(tmp_path, "sdf_selection", f'[model]\nmethod = "dirac"\nfactors = {many}\n'
                 "[priors]\nprior_sharpe = 0.1\n", "dirac.toml")
    assert main(["fit", str(spec), "--factors", str(folder / "factors.csv"), *args]) == 2
    assert "2^K" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()


def test_tertile_portfolios_within_buckets_as_test_assets():
    """bb.factors.sorted_portfolios of a simulated panel feed the pricing family: nine
    portfolios priced by the panel's own factors (traded, alpha-free at the bond level), whose
    two-pass premia equal the factors' sample means up to sampling error and whose Bayesian
    premia intervals hold the two-pass estimates."""
    import warnings

    sim = bb.datasets.simulate_panel(n_bonds=300, n_dates=240, seed=3, mu_alpha=0.0,
                                     tau_alpha=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        P = bb.factors.sorted_portfolios(sim.panel, "spread", min_bonds=3)
    assert P.shape[1] == 9 and P.columns[0] == "IG+ spread 1"
    P = P.dropna()
    fm = bb.pricing.fama_macbeth(P, sim.factors, intercept=False)
    z = (fm.risk_premia - sim.factors.loc[P.index].mean()) / fm.se
    assert (z.abs() < 4).all(), z
    fit = bb.pricing.bayesian_fama_macbeth(P, sim.factors, draws=500, intercept=False,
                                           random_seed=0)
    lam = fit["posterior"]["lambda"]
    lo, hi = lam.quantile(0.005, ("chain", "draw")), lam.quantile(0.995, ("chain", "draw"))
    assert ((lo.values <= fm.risk_premia.values) & (fm.risk_premia.values <= hi.values)).all()
    assert list(fit["observed_data"]["asset"].values) == list(P.columns)

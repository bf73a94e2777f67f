"""Reports: tables beside their baselines (recomputed independently), E[R] with its window, and
labelled plots for every family (factor unpooled/pooled, OU, affine)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesbond as bb
from bayesbond.workflow.report import write_report
from tests.workflow.test_loglik import conjugate_fit, simulate
from tests.workflow.test_plots import assert_png

FACTORS = ["CMKT", "TERM"]


@pytest.fixture(scope="module")
def unpooled():
    y, F = simulate(T=80, B=6, seed=7, missing=0.1)
    y[60:, 5] = np.nan  # one bond ends early: its own months differ from the panel's
    tree = conjugate_fit(y, F, FACTORS, chains=2, draws=1000, seed=7,
                         groups=["IG+", "IG+", "IG-", "IG-", "HY", "HY"])
    return y, F, tree


def _frames(tree):
    R = tree["observed_data"]["returns"].to_pandas()
    Fdf = tree["constant_data"]["factor_returns"].to_pandas()
    return R, Fdf


def test_factor_report_holds_ols_baseline_er_table_and_plots(unpooled, tmp_path):
    y, F, tree = unpooled
    files = write_report(tree, tmp_path / "rep", name="fit")
    names = sorted(p.name for p in files)
    assert names == ["fit_baseline.csv", "fit_betas_by_bucket.png", "fit_expected_returns.csv",
                     "fit_expected_returns.png", "fit_summary.csv", "fit_summary.md"]
    R, Fdf = _frames(tree)
    ols = bb.ols(R, Fdf)
    base = pd.read_csv(tmp_path / "rep" / "fit_baseline.csv", index_col=[0, 1])
    assert base.loc[("b03", "TERM"), "ols"] == pytest.approx(ols.params.loc["b03", "TERM"],
                                                             rel=1e-12)
    assert base.loc[("b03", "alpha"), "ols_se"] == pytest.approx(ols.bse.loc["b03", "alpha"],
                                                                 rel=1e-12)
    draws = tree["posterior"]["beta"].sel(bond="b03", factor="TERM").values.ravel()
    assert base.loc[("b03", "TERM"), "post_mean"] == pytest.approx(draws.mean(), rel=1e-12)
    assert base.loc[("b03", "TERM"), "lower"] == pytest.approx(np.quantile(draws, 0.03),
                                                               rel=1e-12)
    er = pd.read_csv(tmp_path / "rep" / "fit_expected_returns.csv", index_col=0)
    ref = ols.expected_return(Fdf.mean())
    np.testing.assert_allclose(er["ols"], ref["mean"].to_numpy(), rtol=1e-12)
    # the reported band carries the uncertainty of E[F]: wider than with E[F] known
    assert ((er["upper"] - er["lower"]) > (er["upper_known"] - er["lower_known"])).all()
    ref_band = bb.expected_returns(tree, random_seed=0)
    np.testing.assert_allclose(er["lower"], ref_band["lower"], rtol=1e-12)
    assert (er["ef_months"] == 80).all() and (er["ef_start"] == "2001-01-31").all()
    md = (tmp_path / "rep" / "fit_summary.md").read_text()
    assert "## Beside the baseline" in md and "## Expected returns" in md
    assert "E[F] averaged over 2001-01 to 2007-08 (80 months)" in md
    assert "with the uncertainty of E[F]" in md and "By group" in md
    for p in files:
        if p.suffix == ".png":
            assert_png(p, min_kb=10)


def test_report_on_the_bonds_own_months(unpooled, tmp_path):
    y, F, tree = unpooled
    write_report(tree, tmp_path / "rep", name="fit", ef_window="bond")
    er = pd.read_csv(tmp_path / "rep" / "fit_expected_returns.csv", index_col=0)
    obs = np.isfinite(y)
    assert list(er["ef_months"]) == list(obs.sum(0))
    R, Fdf = _frames(tree)
    ols = bb.ols(R, Fdf)
    own = Fdf[obs[:, 5]].mean()
    assert er.loc["b05", "ols"] == pytest.approx(
        ols.expected_return(own).loc["b05", "mean"], rel=1e-12)
    md = (tmp_path / "rep" / "fit_summary.md").read_text()
    assert "each bond's own months" in md


def test_pooled_report_has_baseline_and_plots(tmp_path):
    """Pooled fit: exact flat-prior posterior of the stacked regression; the baseline is OLS on
    the stacked cells (checked against bb.ols on the same stacked series)."""
    y, F = simulate(T=60, B=4, seed=3, missing=0.1)
    dates = pd.date_range("2001-01-31", periods=60, freq="ME")
    bonds = [f"b{i:02d}" for i in range(4)]
    obs = np.isfinite(y)
    t_idx, b_idx = np.nonzero(obs)
    stacked = pd.DataFrame({"all": y[obs]}, index=pd.date_range("1900-01-31",
                                                                periods=obs.sum(), freq="ME"))
    Fst = pd.DataFrame(F[t_idx], index=stacked.index, columns=FACTORS)
    ref = bb.ols(stacked, Fst)
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(len(t_idx)), F[t_idx]])
    cov = np.linalg.inv(X.T @ X) * ref.sigma.iloc[0] ** 2
    coef = ref.params.loc["all", ["alpha", *FACTORS]].to_numpy(float)
    th = rng.multivariate_normal(coef, cov, size=(2, 500))
    post = xr.Dataset({"alpha": (("chain", "draw"), th[..., 0]),
                       "beta": (("chain", "draw", "factor"), th[..., 1:])},
                      coords={"chain": [0, 1], "draw": np.arange(500), "factor": FACTORS})
    tree = xr.DataTree.from_dict({
        "posterior": post,
        "observed_data": xr.Dataset({"returns": xr.DataArray(
            y, dims=("date", "bond"), coords={"date": dates, "bond": bonds})}),
        "constant_data": xr.Dataset({"factor_returns": xr.DataArray(
            F, dims=("date", "factor"), coords={"date": dates, "factor": FACTORS})}),
    })
    files = write_report(tree, tmp_path / "rep", name="pooled")
    names = sorted(p.name for p in files)
    assert "pooled_pooled_coefficients.png" in names and "pooled_expected_returns.png" in names
    base = pd.read_csv(tmp_path / "rep" / "pooled_baseline.csv", index_col=0)
    np.testing.assert_allclose(base["ols"], coef, rtol=1e-10)
    np.testing.assert_allclose(base["ols_se"], np.sqrt(np.diag(cov)), rtol=1e-8)
    er = pd.read_csv(tmp_path / "rep" / "pooled_expected_returns.csv", index_col=0)
    assert list(er.index) == bonds
    for p in files:
        if p.suffix == ".png":
            assert_png(p, min_kb=10)


def test_ou_report_has_ml_baseline(tmp_path):
    rng = np.random.default_rng(1)
    n, dt, kappa, theta, sigma = 240, 1 / 12, 0.3, 0.04, 0.01
    phi = np.exp(-kappa * dt)
    sd = sigma * np.sqrt((1 - phi**2) / (2 * kappa))
    x = np.empty(n)
    x[0] = theta
    for t in range(1, n):
        x[t] = theta + (x[t - 1] - theta) * phi + sd * rng.standard_normal()
    dates = pd.date_range("2000-01-31", periods=n, freq="ME")
    ml = bb.ou_ml(x, dt)
    S = (2, 300)
    post = xr.Dataset({k: (("chain", "draw"), getattr(ml, k) + ml.se[k] * rng.standard_normal(S))
                       for k in ("kappa", "theta", "sigma")})
    tree = xr.DataTree.from_dict({
        "posterior": post,
        "observed_data": xr.Dataset({"x": xr.DataArray(x[:, None], dims=("date", "state"),
                                                       coords={"date": dates, "state": ["x"]})}),
        "constant_data": xr.Dataset({"dt": xr.DataArray(dt)}),
    })
    files = write_report(tree, tmp_path / "rep", name="ou")
    base = pd.read_csv(tmp_path / "rep" / "ou_baseline.csv", index_col=0)
    for k in ("kappa", "theta", "sigma"):
        assert base.loc[k, "ml"] == pytest.approx(getattr(ml, k), rel=1e-10)
        assert base.loc[k, "ml_se"] == pytest.approx(ml.se[k], rel=1e-10)
    assert base["z"].abs().max() < 0.3  # posterior draws centred on the ML estimate
    assert "ou_ou_fit.png" in [p.name for p in files]
    assert_png(tmp_path / "rep" / "ou_ou_fit.png")


def test_affine_report_from_a_loaded_fit(tmp_path):
    from bayesbond.baselines.affine_ml import affine_ml
    from bayesbond.bayes import sampling
    from tests.bayes.test_affine_model import _fake_sample
    from tests.bayes.test_affine_model import simulate as simulate_curve

    Y = simulate_curve(T=60, seed=3)[0]
    ml = affine_ml(Y, method="portfolio", n_starts=1, se=False)
    mp = pytest.MonkeyPatch()
    mp.setattr(sampling, "sample", _fake_sample(ml, 3))
    try:
        fit = bb.AffineModel(3).fit(Y, draws=10, chains=2, random_seed=1, precondition=False,
                                    log_likelihood=False)  # the stand-in has no raw draws
    finally:
        mp.undo()
    bb.save(fit, tmp_path / "fit.nc")
    files = write_report(bb.load(tmp_path / "fit.nc"), tmp_path / "rep", name="aff")
    names = sorted(p.name for p in files)
    assert "aff_yield_curve_fit.png" in names and "aff_term_premium.png" in names
    base = pd.read_csv(tmp_path / "rep" / "aff_baseline.csv", index_col=0)
    assert base.loc["k_inf", "ml"] == pytest.approx(float(ml.k_inf), rel=1e-4)
    assert base["ml_se"].notna().sum() > 20
    for p in files:
        if p.suffix == ".png":
            assert_png(p)


def test_markdown_table_keeps_the_digits_of_large_values():
    """elpd 157712.3 vs 153245.0: 4 significant digits would print 1.577e+05 and 1.532e+05."""
    from bayesbond.workflow.report import markdown_table

    df = pd.DataFrame({"elpd": [157712.34, 153245.0], "dse": [89.84, 0.0], "p": [0.123456, 1.0]},
                      index=pd.Index(["hier", "pooled"], name="model"))
    text = markdown_table(df)
    assert "| hier | 157712.3 | 89.84 | 0.1235 |" in text
    assert "| pooled | 153245.0 | 0 | 1 |" in text
    assert "e+05" not in text

"""Plots: valid, non-empty PNGs from synthetic fits with known intervals."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.image import imread

from bayesbond.workflow import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_kb=15):
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE
    assert len(raw) > min_kb * 1024, f"{path.name}: only {len(raw)} bytes"
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400
    # not a blank canvas: a good share of pixels differs from white
    assert (img[..., :3] < 0.9).any(axis=-1).mean() > 0.01


@pytest.fixture(scope="module")
def fake_fit():
    rng = np.random.default_rng(0)
    bonds = [f"B{i:03d}" for i in range(30)]
    groups = np.array(["IG+"] * 10 + ["IG-"] * 12 + ["HY"] * 8, dtype=object)
    factors = ["CMKT", "TERM"]
    true = rng.normal(1.0, 0.3, size=(30, 2))
    beta = true[None, None] + 0.1 * rng.standard_normal((2, 100, 30, 2))
    mu_beta = 1.0 + 0.05 * rng.standard_normal((2, 100, 3, 2))
    post = xr.Dataset(
        {"beta": (("chain", "draw", "bond", "factor"), beta),
         "mu_beta": (("chain", "draw", "rating_bucket", "factor"), mu_beta)},
        coords={"chain": [0, 1], "draw": np.arange(100), "bond": bonds, "factor": factors,
                "rating_bucket": ["IG+", "IG-", "HY"]},
    )
    const = xr.Dataset({"group": ("bond", groups)}, coords={"bond": bonds})
    return xr.DataTree.from_dict({"posterior": post, "constant_data": const}), true


def test_beta_intervals_are_the_posterior_quantiles(fake_fit):
    tree, _ = fake_fit
    t = plots.beta_intervals(tree, prob=0.9)
    row = t[(t.bond == "B005") & (t.factor == "TERM")].iloc[0]
    draws = tree["posterior"]["beta"].sel(bond="B005", factor="TERM").values.ravel()
    assert row["mean"] == pytest.approx(draws.mean())
    assert row["lower"] == pytest.approx(np.quantile(draws, 0.05))
    assert row["upper"] == pytest.approx(np.quantile(draws, 0.95))
    assert row["bucket"] == "IG+"
    assert len(t) == 60


def test_betas_by_bucket_png(tmp_path, fake_fit):
    tree, true = fake_fit
    bonds = tree["posterior"]["bond"].values
    ols = pd.DataFrame(true, index=bonds, columns=["CMKT", "TERM"])
    fig = plots.plot_betas_by_bucket(tree, ols=ols, title="test")
    assert len(fig.axes) == 2
    # the OLS crosses are drawn in bucket-sorted order: their values are the OLS betas
    offsets = [c for c in fig.axes[0].collections if c.get_label() == "OLS"][0].get_offsets()
    assert sorted(np.asarray(offsets)[:, 1]) == pytest.approx(sorted(true[:, 0]))
    path = plots.save_png(fig, tmp_path / "betas.png")
    assert_png(path)
    assert [p.name for p in tmp_path.iterdir()] == ["betas.png"]


def test_expected_returns_png(tmp_path):
    bonds = [f"B{i}" for i in range(20)]
    mean = np.linspace(0.001, 0.006, 20)
    table = pd.DataFrame({"mean": mean, "lower": mean - 0.002, "upper": mean + 0.002,
                          "bucket": ["IG+"] * 7 + ["IG-"] * 7 + ["HY"] * 6}, index=bonds)
    fig = plots.plot_expected_returns(table, ols=pd.Series(mean + 0.0005, index=bonds))
    ax = fig.axes[0]
    assert "% per year" in ax.get_ylabel()
    means = np.asarray(ax.collections[1].get_offsets())[:, 1]
    assert sorted(means) == pytest.approx(sorted(mean * 1200))
    assert_png(plots.save_png(fig, tmp_path / "er.png"), min_kb=10)
    with pytest.raises(ValueError, match="'upper'"):
        plots.plot_expected_returns(table.drop(columns="upper"))


def test_ou_fit_png(tmp_path):
    rng = np.random.default_rng(1)
    n, dt, kappa, theta, sigma = 240, 1 / 12, 0.3, 0.04, 0.01
    x = np.empty(n)
    x[0] = theta
    phi = np.exp(-kappa * dt)
    sd = sigma * np.sqrt((1 - phi**2) / (2 * kappa))
    for t in range(1, n):
        x[t] = theta + (x[t - 1] - theta) * phi + sd * rng.standard_normal()
    s = pd.Series(x, index=pd.date_range("2000-01-31", periods=n, freq="ME"))
    draws = 500
    fig = plots.plot_ou_fit(s, kappa + 0.05 * rng.standard_normal(draws) ** 2,
                            theta + 0.002 * rng.standard_normal(draws),
                            sigma * (1 + 0.05 * rng.standard_normal(draws)), dt,
                            ml={"kappa": kappa, "theta": theta, "sigma": sigma})
    assert len(fig.axes) == 4
    assert_png(plots.save_png(fig, tmp_path / "ou.png"))


def test_yield_curve_png(tmp_path):
    rng = np.random.default_rng(2)
    tau = np.array([0.25, 0.5, 1, 2, 5, 10])
    dates = pd.date_range("2010-01-31", periods=24, freq="ME")
    curve = 0.02 + 0.01 * (1 - np.exp(-tau / 3))
    obs = pd.DataFrame(curve + 0.001 * rng.standard_normal((24, 6)), index=dates, columns=tau)
    fitted = curve[None, None, :] + 0.0005 * rng.standard_normal((200, 24, 6))
    fig = plots.plot_yield_curve_fit(tau, obs, fitted)
    err = (fitted.mean(0) - obs.to_numpy()) * 1e4
    assert f"RMSE {np.sqrt((err**2).mean()):.1f} bp" in fig.axes[-1].get_title()
    assert_png(plots.save_png(fig, tmp_path / "curve.png"))
    with pytest.raises(ValueError, match="shape"):
        plots.plot_yield_curve_fit(tau, obs, fitted[:, :10])


def test_yield_curve_png_from_bands(tmp_path):
    tau = np.array([0.25, 1, 5, 10])
    dates = pd.date_range("2010-01-31", periods=12, freq="ME")
    obs = pd.DataFrame(0.02 + 0.001 * tau[None, :].repeat(12, 0), index=dates, columns=tau)
    center = obs.to_numpy() + 0.0002
    fig = plots.plot_yield_curve_fit(tau, obs, bands=(center, center - 0.001, center + 0.001))
    assert "RMSE 2.0 bp" in fig.axes[-1].get_title()
    assert_png(plots.save_png(fig, tmp_path / "curve.png"), min_kb=10)
    with pytest.raises(ValueError, match="either"):
        plots.plot_yield_curve_fit(tau, obs)


def test_expected_returns_plot_names_bonds_and_states_ef(tmp_path):
    bonds = [f"IDX{i}" for i in range(6)]
    mean = np.linspace(0.001, 0.004, 6)
    table = pd.DataFrame({"mean": mean, "lower": mean - 0.002, "upper": mean + 0.002,
                          "group": ["IG+"] * 3 + ["HY"] * 3,
                          "ef_start": pd.Timestamp("1997-01-31"),
                          "ef_end": pd.Timestamp("2016-12-31"), "ef_months": 240}, index=bonds)
    table.attrs.update(prob=0.94, factor_uncertainty=True)
    fig = plots.plot_expected_returns(table)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.get_xticklabels()) == bonds
    assert "with the uncertainty of E[F]" in ax.get_title()
    assert "1997-01 to 2016-12 (240 months)" in ax.get_title()
    fig = plots.plot_expected_returns(table, factor_uncertainty=False)
    assert "without the uncertainty of E[F]" in fig.axes[0].get_title()
    table.attrs.clear()
    assert "not stated" in plots.plot_expected_returns(
        table.drop(columns=["ef_start", "ef_end", "ef_months"])).axes[0].get_title()


def test_yield_curve_has_no_empty_panel_and_aligns_bands_by_date(tmp_path):
    tau = np.array([0.25, 1, 5, 10])
    dates = pd.date_range("2010-01-31", periods=12, freq="ME")
    obs = pd.DataFrame(0.02 + 0.001 * tau[None, :].repeat(12, 0), index=dates, columns=tau)
    center = obs.to_numpy()[1:] + 0.0002
    da = xr.DataArray(np.stack([center, center - 0.001, center + 0.001]),
                      dims=("stat", "date", "maturity"),
                      coords={"stat": ["mean", "lower", "upper"], "date": dates[1:],
                              "maturity": tau})
    fig = plots.plot_yield_curve_fit(tau, obs, bands=da)  # 11 band dates, 12 observed
    assert "RMSE 2.0 bp" in fig.axes[-1].get_title()
    assert len(fig.axes) == 6 and all(ax.axison and ax.has_data() for ax in fig.axes)
    fig = plots.plot_yield_curve_fit(tau, obs.iloc[1:], bands=da, dates=dates[1:4])
    assert len(fig.axes) == 4 and all(ax.has_data() for ax in fig.axes)
    assert_png(plots.save_png(fig, tmp_path / "curve.png"), min_kb=10)


def test_term_premium_png(tmp_path):
    tau = np.array([0.25, 1, 2, 5, 10])
    dates = pd.date_range("2000-01-31", periods=36, freq="ME")
    tp = 0.001 * tau[None, :] * np.ones((36, 1))
    da = xr.DataArray(np.stack([tp, tp - 0.0005, tp + 0.0005]), dims=("stat", "date", "maturity"),
                      coords={"stat": ["mean", "lower", "upper"], "date": dates,
                              "maturity": tau}, attrs={"prob": 0.9})
    fig = plots.plot_term_premium(da, maturities=[2, 9])
    assert [ax.get_title().split("-year")[0] for ax in fig.axes] == ["2", "10"]
    line = fig.axes[1].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), 100.0)  # 10 bp per year of maturity, in bp
    assert fig.axes[0].get_ylabel() == "term premium (bp)"
    assert "posterior 90% band" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert_png(plots.save_png(fig, tmp_path / "tp.png"), min_kb=10)

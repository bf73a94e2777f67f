"""Simulated panels: structure, determinism, magnitudes and recovery of the known truth."""

import numpy as np
import pandas as pd
import pytest

import bayesbond as bb
from bayesbond.errors import DataError


@pytest.fixture(scope="module")
def demo():
    return bb.datasets.load_demo()


def test_demo_structure_and_determinism(demo):
    p = demo.panel
    assert p.shape == (180, 300)
    assert list(demo.factors.columns) == ["CMKT", "TERM"]
    assert (demo.factors.index == p.dates).all()
    assert list(demo.truth.beta.dims) == ["bond", "factor"]
    assert list(demo.truth.mu_beta.coords["rating_bucket"].values) == ["IG+", "IG-", "HY"]
    assert "spread" in p.signals and p.weights is not None and p.ratings is not None
    again = bb.datasets.load_demo()
    np.testing.assert_array_equal(again.panel.returns.values, p.returns.values)
    # about 10% of bond-months absent
    frac = 1 - p.observed.values.mean()
    assert 0.08 < frac < 0.12


def test_demo_magnitudes(demo):
    R = demo.panel.returns
    bucket = demo.truth.bucket.values
    vols = {}
    for k in ("IG+", "IG-", "HY"):
        sel = R.sel(bond=bucket == k)
        m = float(sel.mean())
        vols[k] = float(sel.std("date").median())
        assert 0.002 < m < 0.009, (k, m)
        assert 0.01 < vols[k] < 0.035, (k, vols[k])
    assert vols["HY"] > vols["IG-"] > vols["IG+"]
    # the spread signal is ordered by bucket
    s = demo.panel.signals["spread"].mean("date")
    means = [float(s.sel(bond=bucket == k).mean()) for k in ("IG+", "IG-", "HY")]
    assert means[0] < means[1] < means[2]


def test_noise_free_panel_is_exactly_the_factor_model():
    sim = bb.datasets.simulate_panel(
        n_bonds=20, n_dates=40, sigma=0.0, seed=3, missing=0.2, min_obs=10
    )
    R = sim.panel.returns.values
    F = sim.factors.to_numpy()
    X = np.column_stack([np.ones(len(F)), F])
    for j, bond in enumerate(sim.panel.bonds):
        obs = np.isfinite(R[:, j])
        assert obs.sum() >= 10
        coef = np.linalg.lstsq(X[obs], R[obs, j], rcond=None)[0]
        np.testing.assert_allclose(coef[0], sim.truth.alpha.sel(bond=bond), atol=1e-12)
        np.testing.assert_allclose(coef[1:], sim.truth.beta.sel(bond=bond), rtol=1e-9)
    er = sim.truth.alpha + sim.truth.beta @ sim.truth.factor_mean
    np.testing.assert_allclose(sim.truth.expected_return, er)


def test_bond_parameters_follow_bucket_distribution():
    # Monte Carlo: bucket sample means of alpha and beta within 4 standard errors of the truth
    sim = bb.datasets.simulate_panel(n_bonds=3000, n_dates=3, seed=11)
    t = sim.truth
    for k in ("IG+", "IG-", "HY"):
        sel = t.bucket.values == k
        n = sel.sum()
        a = t.alpha.values[sel]
        z = (a.mean() - t.mu_alpha.sel(rating_bucket=k).item()) / (
            t.tau_alpha.sel(rating_bucket=k).item() / np.sqrt(n)
        )
        assert abs(z) < 4
        b = t.beta.values[sel]
        z = (b.mean(0) - t.mu_beta.sel(rating_bucket=k).values) / (
            t.tau_beta.sel(rating_bucket=k).values / np.sqrt(n)
        )
        assert np.all(np.abs(z) < 4)
        assert abs(b.std(0, ddof=1) / t.tau_beta.sel(rating_bucket=k).values - 1).max() < 0.15
    shares = pd.Series(t.bucket.values).value_counts(normalize=True)
    np.testing.assert_allclose(shares[["IG+", "IG-", "HY"]], [0.35, 0.40, 0.25], atol=0.03)
    # ratings agree with the bucket when nothing migrates
    assert (sim.panel.bond_bucket() == t.bucket.to_series()).all()


def test_given_factors_and_migration():
    dates = pd.date_range("2001-01-31", periods=36, freq="ME")
    rng = np.random.default_rng(0)
    F = pd.DataFrame(rng.normal(0, 0.01, (36, 3)), index=dates, columns=["a", "b", "c"])
    sim = bb.datasets.simulate_panel(n_bonds=30, factors=F, seed=2, migration=0.1)
    assert (sim.panel.dates == dates).all()
    assert list(sim.truth.factor.values) == ["a", "b", "c"]
    np.testing.assert_allclose(sim.truth.factor_mean, F.mean())
    ratings = sim.panel.ratings.values
    changed = (ratings[1:] != ratings[:-1]).mean()
    assert 0.05 < changed < 0.15  # one-notch moves with probability 0.1 a month
    static = bb.datasets.simulate_panel(n_bonds=30, factors=F, seed=2)
    assert (static.panel.ratings.values == static.panel.ratings.values[0]).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"missing": 1.0}, "missing"),
        ({"bucket_shares": (1, 2)}, "bucket_shares"),
        ({"factors": pd.DataFrame({"x": [0.0, np.nan]})}, "'x'"),
        ({"mu_alpha": {"IG+": 0.0}}, "mu_alpha"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        bb.datasets.simulate_panel(n_bonds=5, n_dates=10, **kwargs)


def test_hostile_features_have_the_stated_laws():
    """Common and bucket shocks, AR(1) factors and t errors: recovered from the returns."""
    from scipy import stats

    sim = bb.datasets.simulate_panel(n_bonds=400, n_dates=600, seed=11, common_shock=0.003,
                                     group_shock=0.002, factor_ar=(0.6, 0.0), error_df=5.0)
    tr = sim.truth
    R = sim.panel.returns.values  # (date, bond)
    F = sim.factors.to_numpy()
    fitted = tr["alpha"].values[None, :] + F @ tr["beta"].values.T
    g = np.array([list(tr["rating_bucket"].values).index(b) for b in tr["bucket"].values])
    shock = tr["common_shock"].values[:, None] + tr["group_shock"].values[:, g]
    e = (R - fitted - shock) / tr["sigma"].values[None, :]
    # the standardised errors are t5: variance 5/3, and a KS test does not reject t5
    assert abs(e.var() - 5 / 3) < 0.05
    assert stats.kstest(e.ravel()[::7], stats.t(5).cdf).pvalue > 1e-3
    # the shocks have the stated scales, and the residual cross-sectional mean tracks them
    assert abs(tr["common_shock"].std().item() / 0.003 - 1) < 0.15
    assert abs(tr["group_shock"].std().item() / 0.002 - 1) < 0.15
    m = (R - fitted).mean(axis=1)
    assert np.corrcoef(m, tr["common_shock"].values)[0, 1] > 0.8
    # AR(1) factors: lag-1 autocorrelation phi, stationary moments kept
    x = F[:, 0] - tr["factor_mean"].values[0]
    assert abs(np.corrcoef(x[1:], x[:-1])[0, 1] - 0.6) < 0.1
    assert abs(np.corrcoef(F[1:, 1], F[:-1, 1])[0, 1]) < 0.1
    assert abs(F[:, 0].std() / tr["factor_sd"].values[0] - 1) < 0.15


def test_hostile_features_off_leave_the_panel_unchanged_and_bad_values_are_refused():
    a = bb.datasets.simulate_panel(n_bonds=20, n_dates=30, seed=5)
    b = bb.datasets.simulate_panel(n_bonds=20, n_dates=30, seed=5, common_shock=0.0, factor_ar=0.0)
    assert a.panel.returns.equals(b.panel.returns)
    c = bb.datasets.simulate_panel(n_bonds=20, n_dates=30, seed=5, common_shock=0.004)
    assert not np.allclose(a.panel.returns.values, c.panel.returns.values)
    with pytest.raises(DataError, match="common_shock"):
        bb.datasets.simulate_panel(n_bonds=5, n_dates=30, common_shock=-1.0)
    with pytest.raises(DataError, match="factor_ar"):
        bb.datasets.simulate_panel(n_bonds=5, n_dates=30, factor_ar=1.0)
    with pytest.raises(DataError, match="factor_ar"):
        bb.datasets.simulate_panel(n_bonds=5, factors=a.factors, factor_ar=0.5)

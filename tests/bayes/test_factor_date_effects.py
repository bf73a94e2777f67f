"""Random date effects (FactorModel(date_effects=...)): the sufficient-statistic kernels against
direct sums, the sampler's coordinates against the model's prior (Monte Carlo) and likelihood
(dense multivariate normal), recovery of simulated common and bucket shocks, the pointwise
log-likelihood and held-out scoring with the effects, and the dependence check."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesbond as bb
from bayesbond.baselines.dependence import cross_sectional_dependence
from bayesbond.bayes.factor_data import sufficient_stats
from bayesbond.bayes.factor_date_effects import adjusted_stats, date_basis, q_perp, split_effects
from bayesbond.errors import CrossSectionalDependenceWarning, SpecError

FACTORS = ["CMKT", "TERM"]


def _y(rng, T=30, B=7, p=3):
    X = np.column_stack([np.ones(T), rng.normal(0, 0.02, (T, p - 1))])
    y = rng.normal(0, 0.01, (T, B))
    y[rng.random((T, B)) < 0.2] = np.nan
    return y, X


def test_adjusted_stats_are_the_statistics_of_y_minus_d():
    rng = np.random.default_rng(0)
    y, X = _y(rng)
    group = np.array([0, 1, 1, 0, 2, 2, 1])
    d = rng.normal(0, 0.01, (4, 3, len(X)))  # (draws, groups, dates)
    XtX, Xty, yty, n = sufficient_stats(y, X)
    basis = date_basis(y, X, group, 3)
    got_Xty, got_yty = adjusted_stats(Xty, yty, basis.y0, basis.mask, X, d, group)
    for s in range(4):
        _, want_Xty, want_yty, _ = sufficient_stats(y - d[s][group].T, X)
        np.testing.assert_allclose(got_Xty[s], want_Xty, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(got_yty[s], want_yty, rtol=1e-12)
    # the basis: an orthonormal complement of X and L L' = (X'X)^-1; the split is exact
    T, p = X.shape
    Q_perp = q_perp(basis.V, basis.tau, np.eye(T - p)).T   # (T, T - p)
    np.testing.assert_allclose(Q_perp.T @ Q_perp, np.eye(T - p), atol=1e-12)
    np.testing.assert_allclose(X.T @ Q_perp, 0, atol=1e-12)
    np.testing.assert_allclose(basis.L_coef @ basis.L_coef.T, np.linalg.inv(X.T @ X),
                               rtol=1e-10)
    c, d_perp = split_effects(d, X)
    np.testing.assert_allclose(c @ X.T + d_perp, d, atol=1e-15)
    np.testing.assert_allclose(d_perp @ X, 0, atol=1e-14)


def _sim(seed=1, n_bonds=30, n_dates=60, **kw):
    sim = bb.datasets.simulate_panel(n_bonds=n_bonds, n_dates=n_dates, seed=seed,
                                     factor_names=FACTORS, **kw)
    return sim


def _model(de, pooling="hierarchical", sim=None):
    sim = sim or _sim(common_shock=0.003, group_shock=0.002)
    model = bb.FactorModel(FACTORS, pooling=pooling, date_effects=de)
    prep = model.prepare(sim.panel, sim.factors)
    return model, prep, model.build(prep)


@pytest.mark.parametrize("de", ["common", "group"])
def test_the_coordinates_give_iid_normal_date_effects(de):
    """Draws of the model's prior: d_gt / sigma_date_g is iid N(0, 1) over dates and groups,
    whatever the centring (here at a panel with real shocks)."""
    import pymc as pm

    _, _, model = _model(de)
    d, s = pm.draw([model["date_effect"], model["sigma_date"]], draws=4000, random_seed=2)
    z = d / (s[:, None] if de == "common" else s[:, None, :])
    z = z.reshape(len(z), -1)  # (draws, dates x groups)
    n = len(z)
    assert np.abs(z.mean(0)).max() < 5 / np.sqrt(n)
    assert np.abs(z.var(0) - 1).max() < 6 * np.sqrt(2 / n)
    corr = np.corrcoef(z[:, :40].T)
    off = corr[~np.eye(len(corr), dtype=bool)]
    assert np.abs(off).max() < 5 / np.sqrt(n)


@pytest.mark.parametrize(("de", "pooling"), [("common", "hierarchical"), ("group", "hierarchical"),
                                             ("common", "pooled"), ("group", "unpooled")])
def test_the_likelihood_is_the_dense_normal_of_y_minus_d(de, pooling):
    """The model's likelihood term at random points equals, up to one constant, the sum over
    bonds of log N(y_b - d_b | X_b m_b, sigma_b^2 I + X_b S_b S_b' X_b') by scipy."""

    sim = _sim(seed=4, n_bonds=9, n_dates=24, common_shock=0.003, group_shock=0.002,
               missing=0.2)
    model, prep, pm_model = _model(de, pooling, sim)
    data, pri = prep
    ll_term = [p for p in pm_model.potentials if p.name == "loglik_returns"][0]
    names = ["date_effect", "sigma"] + (["mu_alpha", "mu_beta", "tau_alpha", "tau_beta"]
                                        if pooling == "hierarchical" else [])
    outs = pm_model.replace_rvs_by_values([ll_term, *[pm_model[v] for v in names]])
    f = pm_model.compile_fn(outs, inputs=pm_model.value_vars, point_fn=True)
    rng = np.random.default_rng(5)
    X = data.design()
    gi = data.group_idx
    got = []
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.3, np.shape(v))
                 for k, v in pm_model.initial_point().items()}
        ll, d, sigma, *hyper = f(point)
        d = d[:, None] if de == "common" else d  # (date, group)
        col = np.zeros(len(data.bonds), int) if de == "common" else gi
        want = 0.0
        for b in range(len(data.bonds)):
            ok = np.isfinite(data.y[:, b])
            Xb = X[ok]
            if pooling == "hierarchical":
                mu_a, mu_b, tau_a, tau_b = hyper
                m = np.r_[mu_a[gi[b]], mu_b[gi[b]]]
                S = np.r_[tau_a[gi[b]], tau_b[gi[b]]]
            else:
                m = np.r_[0.0, pri["beta_mean"]]
                S = np.r_[pri["alpha_scale"], pri["beta_scale"]]
            if pooling == "pooled":
                continue
            cov = sigma[b] ** 2 * np.eye(ok.sum()) + (Xb * S**2) @ Xb.T
            want += stats.multivariate_normal(Xb @ m, cov).logpdf(data.y[ok, b] - d[ok, col[b]])
        if pooling == "pooled":  # one theta for all bonds: the stacked dense normal
            ys, Xs, sig = [], [], []
            for b in range(len(data.bonds)):
                ok = np.isfinite(data.y[:, b])
                ys.append(data.y[ok, b] - d[ok, 0])
                Xs.append(X[ok])
                sig.append(np.full(ok.sum(), sigma[b]))
            Xs, sig = np.vstack(Xs), np.concatenate(sig)
            cov = np.diag(sig**2) + (Xs * S**2) @ Xs.T
            want = stats.multivariate_normal(Xs @ m, cov).logpdf(np.concatenate(ys))
        got.append(float(ll) - want)
    np.testing.assert_allclose(got, 0.0, atol=1e-7)


def test_spec_errors():
    with pytest.raises(SpecError, match="unknown date_effects"):
        bb.FactorModel(date_effects="bond")
    with pytest.raises(SpecError, match="collapsed Gaussian"):
        bb.FactorModel(errors="student_t", date_effects="common")
    with pytest.raises(SpecError, match="pooling='pooled'"):
        bb.FactorModel(pooling="pooled", date_effects="group")
    sim = _sim(n_dates=8)
    R = sim.panel.returns.to_pandas()
    with pytest.raises(SpecError, match="needs each bond's group"):
        bb.FactorModel(FACTORS, pooling="unpooled", date_effects="group").prepare(R, sim.factors)
    with pytest.raises(SpecError, match="more than 5 dates"):
        bb.FactorModel(FACTORS, date_effects="common").prepare(
            R.iloc[:5], sim.factors, groups=sim.panel.bond_bucket())
    assert bb.FactorModel(date_effects="none").date_effects is None


def test_cd_statistic_is_standard_normal_without_dependence_and_finds_a_common_shock():
    rng = np.random.default_rng(7)
    T, B = 60, 40
    X = np.column_stack([np.ones(T), rng.normal(0, 0.02, (T, 2))])
    cds = []
    for _ in range(300):
        y = X @ rng.normal(0, 0.5, (3, B)) + rng.standard_t(5, (T, B)) * 0.01
        y[rng.random((T, B)) < 0.3] = np.nan
        cds.append(cross_sectional_dependence(y, X).loc["all", "cd"])
    cds = np.array(cds)
    assert abs(cds.mean()) < 0.25 and 0.8 < cds.std() < 1.2
    # equicorrelated residuals: rho = c^2 / (c^2 + s^2)
    c, s = 0.005, 0.01
    y = X @ rng.normal(0, 0.5, (3, B)) + c * rng.normal(size=(T, 1)) + s * rng.normal(size=(T, B))
    tab = cross_sectional_dependence(y, X, np.arange(B) % 2, ["a", "b"])
    assert tab.loc["all", "rho"] == pytest.approx(c**2 / (c**2 + s**2), abs=0.04)
    assert tab.loc["all", "p_value"] < 1e-10 and list(tab.index) == ["all", "a", "b"]


def test_a_model_without_date_effects_warns_on_common_shocks():
    model = bb.FactorModel(FACTORS)
    quiet = _sim(seed=2, n_bonds=60, n_dates=60)
    shocked = _sim(seed=2, n_bonds=60, n_dates=60, common_shock=0.003)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CrossSectionalDependenceWarning)
        model.check(model.prepare(quiet.panel, quiet.factors), 1)
        bb.FactorModel(FACTORS, date_effects="common").check(
            bb.FactorModel(FACTORS, date_effects="common").prepare(shocked.panel,
                                                                   shocked.factors), 1)
    with pytest.warns(CrossSectionalDependenceWarning, match="date_effects='common'"):
        model.check(model.prepare(shocked.panel, shocked.factors), 1)
    tab = bb.residual_dependence(shocked.panel, shocked.factors)
    assert {"IG+", "IG-", "HY", "all"} <= set(tab.index) and tab.loc["all", "cd"] > 10


def _fit(model, sim, **kw):
    kw = {"draws": 300, "tune": 400, "chains": 2, "random_seed": 11, "progressbar": False,
          **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(sim.panel, sim.factors, **kw)


@pytest.mark.slow
def test_group_effects_recover_the_shocks_and_score_with_them():
    sim = _sim(seed=3, n_bonds=45, n_dates=72, common_shock=0.0, group_shock=0.003,
               missing=0.1)
    model = bb.FactorModel(FACTORS, date_effects="group")
    fit = _fit(model, sim)
    diag = fit.attrs["diagnostics"]
    assert "divergences 0" in diag
    post = fit["posterior"]
    # each bucket's shocks: 90% intervals cover the simulated truth (216 date x bucket values)
    truth = sim.truth["group_shock"]
    q = post["date_effect"].quantile([0.05, 0.95], ("chain", "draw"))
    inside = ((q.sel(quantile=0.05) <= truth) & (truth <= q.sel(quantile=0.95))).values
    print(f"date effects: 90% coverage {inside.mean():.3f} over {inside.size}")
    assert 0.82 <= inside.mean() <= 0.97
    lo, hi = post["sigma_date"].quantile([0.01, 0.99], ("chain", "draw"))
    assert ((lo <= 0.003) & (0.003 <= hi)).all()
    # the pointwise log-likelihood subtracts the draw's effects
    from bayesbond.bayes.factor_loglik import pointwise_loglik

    ll = pointwise_loglik(fit)
    y = fit["observed_data"]["returns"]
    cell = ll.isel(obs=5)
    b, t = str(cell["obs_bond"].values), cell["obs_date"].values
    g = str(fit["constant_data"]["group"].sel(bond=b).values)
    mu = (post["alpha"].sel(bond=b) + (post["beta"].sel(bond=b)
          * fit["constant_data"]["factor_returns"].sel(date=t)).sum("factor")
          + post["date_effect"].sel(date=t, rating_bucket=g))
    want = stats.norm.logpdf(float(y.sel(bond=b, date=t)), mu, post["sigma"].sel(bond=b))
    np.testing.assert_allclose(cell.values, want, rtol=1e-10)
    # held-out scoring integrates a new date's effects out: the dense normal by scipy
    from bayesbond.bayes.factor_predictive import heldout_date_logpdf

    R = sim.panel.returns.transpose("date", "bond")
    t = 10
    yt = R.isel(date=[t]).values
    Ft = sim.factors[FACTORS].iloc[[t]].values
    bonds = list(R["bond"].values)
    got = heldout_date_logpdf(fit, yt, Ft, bonds, FACTORS)[:50, 0]
    flat = post.to_dataset().stack(s=("chain", "draw")).isel(s=slice(0, 50))
    groups = fit["constant_data"]["group"].sel(bond=bonds).values
    ok = np.isfinite(yt[0])
    same = groups[ok][:, None] == groups[ok][None, :]
    for s in range(0, 50, 7):
        one = flat.isel(s=s)
        mu = one["alpha"].sel(bond=bonds).values + one["beta"].sel(bond=bonds).values @ Ft[0]
        sd = one["sigma_date"].sel(rating_bucket=list(groups[ok])).values
        cov = np.diag(one["sigma"].sel(bond=bonds).values[ok] ** 2) + same * np.outer(sd, sd)
        want = stats.multivariate_normal(mu[ok], cov).logpdf(yt[0, ok])
        assert got[s] == pytest.approx(want, rel=1e-10)


@pytest.mark.slow
def test_kfold_and_compare_with_date_effects():
    sim = _sim(seed=6, n_bonds=24, n_dates=36, common_shock=0.004)
    R = sim.panel
    kw = {"draws": 150, "tune": 200, "chains": 2, "random_seed": 3, "progressbar": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_d = bb.kfold(bb.FactorModel(FACTORS, date_effects="common"), R, sim.factors, k=3,
                          **kw)
        without = bb.kfold(bb.FactorModel(FACTORS), R, sim.factors, k=3, **kw)
    assert np.isfinite(with_d.elpd_i.values).all()
    assert with_d.folds["compile_reused"].tolist()[1:] == [True, True]
    table = bb.compare({"date effects": with_d, "independent": without})
    # a common shock of 0.4%/month across 24 bonds: the joint density of a date favours the
    # model that has it
    assert table.index[0] == "date effects"
    assert isinstance(table, pd.DataFrame)

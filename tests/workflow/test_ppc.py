"""bb.ppc: every statistic against a hand computation, p-values not extreme on data from the model
and extreme on data that break it (autocorrelated, cross-correlated, fat-tailed errors; OU jumps;
autocorrelated and heteroskedastic pricing errors); plots are figures."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
import xarray as xr
from matplotlib.figure import Figure
from scipy import stats

import bayesbond as bb
from bayesbond.core.ou import OU
from bayesbond.errors import SpecError
from bayesbond.workflow import plots
from bayesbond.workflow.predictive_checks import (
    COLUMNS,
    autocorr_lag1,
    cross_corr,
    cross_ratio,
    kurtosis,
    tail_share,
)

DT = 1 / 12
FIT_KW = {"draws": 300, "tune": 300, "chains": 2, "random_seed": 1, "progressbar": False}


# ----------------------------------------------------------------------- hand-made fits
def _factor_tree(y, F, alpha, beta, sigma, groups, *, nu=None, date_effect=None, pooled=False,
                 errors="normal"):
    """A factor-model fit made by hand: posterior (chain=1, draw=S)."""
    T, B = y.shape
    dates = pd.date_range("2000-01-31", periods=T, freq="ME", name="date")
    bonds = [f"b{i}" for i in range(B)]
    factors = [f"f{k}" for k in range(F.shape[1])]
    cd = {"chain": [0], "draw": np.arange(len(sigma))}
    post = {"sigma": (("chain", "draw", "bond"), sigma[None])}
    if pooled:
        post["alpha"] = (("chain", "draw"), alpha[None])
        post["beta"] = (("chain", "draw", "factor"), beta[None])
    else:
        post["alpha"] = (("chain", "draw", "bond"), alpha[None])
        post["beta"] = (("chain", "draw", "bond", "factor"), beta[None])
    coords = {**cd, "bond": bonds, "factor": factors, "date": dates}
    if nu is not None:
        post["nu"] = (("chain", "draw"), nu[None])
    if date_effect is not None:
        if date_effect.ndim == 2:
            post["date_effect"] = (("chain", "draw", "date"), date_effect[None])
        else:
            post["date_effect"] = (("chain", "draw", "date", "rating_bucket"), date_effect[None])
            coords["rating_bucket"] = sorted(set(groups))
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset(post, coords=coords),
        "observed_data": xr.Dataset({"returns": (("date", "bond"), y)},
                                    coords={"date": dates, "bond": bonds}),
        "constant_data": xr.Dataset({"factor_returns": (("date", "factor"), F),
                                     "group": (("bond",), np.asarray(groups))},
                                    coords={"date": dates, "factor": factors, "bond": bonds})})
    tree.attrs["family"] = "factor_regression"
    tree.attrs["model"] = json.dumps({"family": "FactorModel", "errors": errors})
    return tree


@pytest.fixture(scope="module")
def hand():
    rng = np.random.default_rng(0)
    T, B, K, S = 40, 7, 2, 25
    F = 0.02 * rng.standard_normal((T, K))
    alpha = 0.001 * rng.standard_normal((S, B))
    beta = 1.0 + 0.2 * rng.standard_normal((S, B, K))
    sigma = 0.01 * np.exp(0.2 * rng.standard_normal((S, B)))
    y = 0.001 + F @ np.ones((K, B)) + 0.01 * rng.standard_normal((T, B))
    y[rng.random((T, B)) < 0.15] = np.nan
    y[:, 3] = np.nan
    y[[5, 9, 20], 3] = 0.01  # a bond with no consecutive pair: left out of the autocorrelation
    groups = np.array(["IG+", "IG+", "HY", "IG+", "HY", "HY", "IG-"])
    return y, F, alpha, beta, sigma, groups


def _hand_stats(e, sig):
    """The factor-model statistics of residuals e (T, B) with scales sig (B,) by plain loops."""
    T, B = e.shape
    r = []
    for b in range(B):
        num = s1 = s0 = 0.0
        pairs = 0
        for t in range(1, T):
            if np.isfinite(e[t, b]) and np.isfinite(e[t - 1, b]):
                num += e[t, b] * e[t - 1, b]
                s1 += e[t, b] ** 2
                s0 += e[t - 1, b] ** 2
                pairs += 1
        r.append(num / np.sqrt(s1 * s0) if pairs >= 3 else np.nan)
    r = np.array(r)
    ratio_terms, num_c, den_c = [], 0.0, 0.0
    z_all = []
    for t in range(T):
        obs = [b for b in range(B) if np.isfinite(e[t, b])]
        z = [e[t, b] / sig[b] for b in obs]
        z_all += z
        if len(obs) >= 2:
            ratio_terms.append(sum(e[t, b] for b in obs) ** 2 / sum(sig[b] ** 2 for b in obs))
        # average pairwise correlation: sum over ordered pairs b != c of z_b z_c
        num_c += sum(z[i] * z[j] for i in range(len(z)) for j in range(len(z)) if i != j)
        den_c += (len(z) - 1) * sum(v**2 for v in z) if z else 0.0
    z_all = np.array(z_all)
    return {"autocorr_lag1": np.nanmean(r), "autocorr_lag1_sd": np.nanstd(r),
            "cross_ratio": np.mean(ratio_terms), "cross_corr": num_c / den_c,
            "kurtosis": np.mean(z_all**4) / np.mean(z_all**2) ** 2,
            "tail_share": np.mean(np.abs(z_all) > 3)}, r


def _residuals(y, F, alpha, beta, d=None):
    e = y - alpha[None, :] - F @ beta.T
    return e if d is None else e - d


def test_factor_statistics_match_hand_loops(hand):
    y, F, alpha, beta, sigma, groups = hand
    res = bb.ppc(_factor_tree(y, F, alpha, beta, sigma, groups), n_draws=1000, random_seed=3)
    assert res.family == "factor_regression" and res.n_draws == len(sigma)
    assert list(res.table.columns) == COLUMNS
    for s in (0, 7, 24):
        want, r = _hand_stats(_residuals(y, F, alpha[s], beta[s]), sigma[s])
        for k, v in want.items():
            assert res.draws[k][0][s] == pytest.approx(v, rel=1e-10), k
        np.testing.assert_allclose(res.extra["bond_draws"][0]["autocorr_lag1"][s], r,
                                   rtol=1e-10)
    # table: posterior mean of T(y), mean and interval of T(y_rep), p = Pr(T_rep >= T_obs)
    row = res.table.set_index(["statistic", "unit"]).loc[("kurtosis", "all")]
    o, rep = res.draws["kurtosis"]
    assert row["observed"] == pytest.approx(o.mean())
    assert row["replicated_mean"] == pytest.approx(rep.mean())
    assert row["replicated_lower"] == pytest.approx(np.quantile(rep, 0.05))
    assert row["p_value"] == pytest.approx(np.mean(rep >= o))
    # the group rows are the ratio within each group's bonds
    s = 4
    e = _residuals(y, F, alpha[s], beta[s])
    for g in ("IG+", "HY"):
        cols = groups == g
        want, _ = _hand_stats(e[:, cols], sigma[s][cols])
        sub = bb.ppc(_factor_tree(y, F, alpha, beta, sigma, groups), n_draws=1000)
        assert sub.p_values.index.isin([("cross_ratio", g)]).any()
        assert cross_ratio(e[None, :, cols], sigma[s][None, None, cols] ** 2)[0] == \
            pytest.approx(want["cross_ratio"])
    d = res.details.set_index("bond")
    assert d.loc["b3", "n_pairs"] == 0 and np.isnan(d.loc["b3", "autocorr_lag1_observed"])
    assert d.loc["b0", "n_obs"] == np.isfinite(y[:, 0]).sum()


def test_statistic_helpers_against_closed_forms():
    rng = np.random.default_rng(1)
    # AR(1) with phi = 0.6: the lag-1 autocorrelation estimate is about 0.6
    e = np.zeros((4000, 3))
    for t in range(1, 4000):
        e[t] = 0.6 * e[t - 1] + rng.standard_normal(3)
    assert autocorr_lag1(e)[0] == pytest.approx([0.6] * 3, abs=0.03)
    # equicorrelated cross-section: rho = 0.3, ratio = 1 + (N - 1) rho
    N, T, rho = 20, 5000, 0.3
    z = np.sqrt(rho) * rng.standard_normal((T, 1)) + np.sqrt(1 - rho) * rng.standard_normal((T, N))
    assert cross_corr(z) == pytest.approx(rho, abs=0.02)
    assert cross_ratio(z, np.ones(N)) == pytest.approx(1 + (N - 1) * rho, rel=0.05)
    # normal kurtosis 3, share beyond 3 sd 2 Phi(-3); t5 kurtosis 3 + 6 / (5 - 4) = 9
    g = rng.standard_normal((400, 500))
    assert kurtosis(g) == pytest.approx(3.0, abs=0.05)
    assert tail_share(g) == pytest.approx(2 * stats.norm.sf(3), abs=0.0006)
    t5 = rng.standard_t(5, (2000, 1000))
    assert kurtosis(t5) == pytest.approx(9.0, rel=0.25)


def test_replicated_residuals_follow_the_model(hand):
    """Replicated statistics have their known laws: normal errors, and t3 errors (nu in the
    posterior of a Student-t fit): share beyond 3 scales 2 P(t3 > 3)."""
    y, F, alpha, beta, sigma, groups = hand
    res = bb.ppc(_factor_tree(y, F, alpha, beta, sigma, groups), n_draws=1000, random_seed=5)
    rep = {k: v[1].mean() for k, v in res.draws.items()}
    n_cells = np.isfinite(y).sum()
    se = np.sqrt(2 / 40 / len(sigma))  # each draw's ratio has sd about sqrt(2 / T)
    assert rep["cross_ratio"] == pytest.approx(1.0, abs=4 * se)
    assert rep["kurtosis"] == pytest.approx(3.0, abs=0.15)
    assert abs(rep["cross_corr"]) < 0.02
    nu = np.full(len(sigma), 3.0)
    tt = bb.ppc(_factor_tree(y, F, alpha, beta, sigma, groups, nu=nu, errors="student_t"),
                n_draws=1000, random_seed=5)
    share = 2 * stats.t.sf(3, 3)
    assert tt.draws["tail_share"][1].mean() == pytest.approx(
        share, abs=4 * np.sqrt(share * (1 - share) / n_cells / len(sigma)))
    with pytest.raises(SpecError, match="nu"):
        bb.ppc(_factor_tree(y, F, alpha, beta, sigma, groups, errors="student_t"))


def test_date_effects_and_pooled_fits(hand):
    """A posterior date_effect (date) or (date, group) is part of the fitted mean; a pooled fit
    has one alpha and beta."""
    y, F, alpha, beta, sigma, groups = hand
    rng = np.random.default_rng(2)
    S, T = len(sigma), len(y)
    d_common = 0.005 * rng.standard_normal((S, T))
    res = bb.ppc(_factor_tree(y, F, alpha, beta, sigma, groups, date_effect=d_common),
                 n_draws=1000)
    want, _ = _hand_stats(_residuals(y, F, alpha[3], beta[3], d_common[3][:, None]), sigma[3])
    assert res.draws["cross_ratio"][0][3] == pytest.approx(want["cross_ratio"])
    labels = sorted(set(groups))  # the date_effect's group coordinate
    d_group = 0.005 * rng.standard_normal((S, T, len(labels)))
    res = bb.ppc(_factor_tree(y, F, alpha, beta, sigma, groups, date_effect=d_group),
                 n_draws=1000)
    col = [labels.index(g) for g in groups]
    want, _ = _hand_stats(_residuals(y, F, alpha[3], beta[3], d_group[3][:, col]), sigma[3])
    assert res.draws["kurtosis"][0][3] == pytest.approx(want["kurtosis"])
    a, b = alpha[:, 0], beta[:, 0]
    res = bb.ppc(_factor_tree(y, F, a, b, sigma, groups, pooled=True), n_draws=1000)
    e = y - a[5] - (F @ b[5])[:, None]
    want, _ = _hand_stats(e, sigma[5])
    assert res.draws["autocorr_lag1"][0][5] == pytest.approx(want["autocorr_lag1"])


def test_bad_inputs_are_named(hand):
    y, F, alpha, beta, sigma, groups = hand
    tree = _factor_tree(y, F, alpha, beta, sigma, groups)
    with pytest.raises(SpecError, match="n_draws"):
        bb.ppc(tree, n_draws=1)
    with pytest.raises(SpecError, match="prob"):
        bb.ppc(tree, prob=1.5)
    with pytest.raises(SpecError, match="DataTree"):
        bb.ppc(pd.DataFrame())
    anon = xr.DataTree.from_dict({"posterior": xr.Dataset({"q": (("chain", "draw"),
                                                                 np.zeros((1, 3)))})})
    with pytest.raises(SpecError, match="family"):
        bb.ppc(anon)
    no_f = tree.copy()
    no_f["constant_data"] = xr.DataTree(tree["constant_data"].to_dataset().drop_vars(
        "factor_returns"))
    with pytest.raises(SpecError, match="factor_returns"):
        bb.ppc(no_f)


# ------------------------------------------------------------------ factor model: real fits
def _fit(panel, factors, groups=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2 x 300 draws: the strict R-hat bar is not the point
        return bb.FactorModel(["CMKT"]).fit(panel, factors, groups=groups, **FIT_KW)


def _sim(**kw):
    return bb.datasets.simulate_panel(n_bonds=30, n_dates=60, factor_names=("CMKT",), **kw)


@pytest.mark.slow
@pytest.mark.parametrize("seed, missing", [(1, 0.0), (2, 0.0), (3, 0.1)])
def test_p_values_are_not_extreme_on_data_from_the_model(seed, missing):
    sim = _sim(seed=seed, missing=missing)
    res = bb.ppc(_fit(sim.panel, sim.factors))
    p = res.p_values
    assert len(p) == 6 + 3  # six statistics, and the cross ratio in each of three buckets
    assert ((p > 0.01) & (p < 0.99)).all(), res.table
    assert not res.table["extreme"].any()


@pytest.mark.slow
def test_autocorrelated_errors_are_flagged():
    sim = _sim(seed=6)
    t = sim.truth
    F = sim.factors.to_numpy()
    rng = np.random.default_rng(6)
    u = rng.standard_normal((60, 30))
    for i in range(1, 60):
        u[i] = 0.4 * u[i - 1] + np.sqrt(1 - 0.4**2) * u[i]
    R = t["alpha"].values + F @ t["beta"].values.T + t["sigma"].values * u
    bonds = list(t["bond"].values)
    panel = pd.DataFrame(R, index=sim.factors.index, columns=bonds)
    groups = dict(zip(bonds, t["bucket"].values, strict=True))
    res = bb.ppc(_fit(panel, sim.factors, groups))
    p = res.p_values
    assert p[("autocorr_lag1", "all")] < 0.005
    assert res.table.set_index(["statistic", "unit"]).loc[("autocorr_lag1", "all"),
                                                          "observed"] > 0.25
    # bond by bond: most bonds' own p-values are small
    assert (res.details["autocorr_lag1_p_value"] < 0.05).mean() > 0.4
    assert p[("kurtosis", "all")] > 0.01


@pytest.mark.slow
def test_common_shock_is_flagged():
    sim = _sim(seed=4, common_shock=0.004)
    res = bb.ppc(_fit(sim.panel, sim.factors))
    p = res.p_values
    assert p[("cross_ratio", "all")] < 0.005 and p[("cross_corr", "all")] < 0.005
    assert p[("autocorr_lag1", "all")] > 0.01 and p[("tail_share", "all")] > 0.01
    # the ratio of the observed data is the one of the posterior-mean residuals, not a model
    # quantity: about 1 + (N - 1) rho with rho = s_c^2 / (s_c^2 + sigma^2)
    row = res.table.set_index(["statistic", "unit"]).loc[("cross_ratio", "all")]
    assert row["observed"] > 3.0 and row["replicated_upper"] < 1.5


@pytest.mark.slow
def test_t3_errors_with_a_normal_model_flag_the_tails():
    sim = _sim(seed=5, error_df=3)
    res = bb.ppc(_fit(sim.panel, sim.factors))
    p = res.p_values
    assert p[("kurtosis", "all")] < 0.005 and p[("tail_share", "all")] < 0.005
    assert p[("cross_corr", "all")] > 0.01
    fig = res.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 6


# ------------------------------------------------------------------------------------- OU
def _ou_tree(X, dt, post, names=("r",)):
    T = len(X)
    dates = pd.date_range("1980-01-31", periods=T, freq="ME", name="date")
    tree = xr.DataTree.from_dict({
        "posterior": post,
        "observed_data": xr.Dataset({"x": (("date", "state"), X)},
                                    coords={"date": dates, "state": list(names)}),
        "constant_data": xr.Dataset({"dt": xr.DataArray(float(dt))})})
    tree.attrs["family"] = "ou"
    return tree


def test_ou_pit_matches_a_hand_mixture():
    """1-D (closed form in ppc) and 2-D (exact_transition) PIT values against the transitions
    of bayesbond.core.ou.OU, draw by draw."""
    rng = np.random.default_rng(7)
    S = 6
    k, th, s = 0.5 + 0.1 * rng.random(S), 0.04 + 0.002 * rng.random(S), 0.01 + 0.001 * rng.random(S)
    x = OU.vasicek(0.5, 0.04, 0.01).simulate(0.04, n_steps=49, dt=DT, rng=1)[0]
    post = xr.Dataset({"kappa": (("chain", "draw"), k[None]), "theta": (("chain", "draw"),
                                                                        th[None]),
                       "sigma": (("chain", "draw"), s[None])})
    res = bb.ppc(_ou_tree(x[:, None], DT, post))
    want = np.zeros(len(x) - 1)
    for i in range(S):
        Phi, c, Q = (float(np.ravel(v)[0]) for v in OU.vasicek(k[i], th[i], s[i]).transition(DT))
        want += stats.norm.cdf((x[1:] - (Phi * x[:-1] + c)) / np.sqrt(Q)) / S
    np.testing.assert_allclose(res.details["pit"], want, rtol=1e-10)
    row = res.table.set_index(["statistic", "unit"]).loc[("coverage_0.9", "r")]
    n_in = np.sum(np.abs(want - 0.5) <= 0.45)
    assert row["observed"] == pytest.approx(n_in / 49)
    assert row["p_value"] == pytest.approx(stats.binomtest(n_in, 49, 0.9).pvalue)
    ks = res.table.set_index(["statistic", "unit"]).loc[("pit_ks", "r")]
    assert ks["p_value"] == pytest.approx(stats.kstest(want, "uniform").pvalue)
    # irregular steps (constant_data.dt per step)
    dts = DT * (1 + rng.random(len(x) - 1))
    irregular = _ou_tree(x[:, None], DT, post)
    irregular["constant_data"] = xr.DataTree(xr.Dataset({"dt": (("step",), dts)}))
    want = np.zeros(len(x) - 1)
    for i in range(S):
        Phi, c, Q = OU.vasicek(k[i], th[i], s[i]).transition(dts)  # one value per step
        want += stats.norm.cdf((x[1:] - (Phi * x[:-1] + c)) / np.sqrt(Q)) / S
    np.testing.assert_allclose(bb.ppc(irregular).details["pit"], want, rtol=1e-10)

    A = np.array([[-0.8, 0.4], [0.1, -0.3]])
    a = np.array([0.02, 0.01])
    L = np.array([[0.02, 0.0], [0.005, 0.01]])
    X = OU(A, a, L).simulate(None, n_steps=39, dt=DT, rng=2)[0]
    draws = [(A + 0.02 * rng.standard_normal((2, 2)), a, L * (1 + 0.05 * rng.random()))
             for _ in range(4)]
    post2 = xr.Dataset({"A": (("chain", "draw", "state", "state2"), np.stack([d[0] for d in
                                                                             draws])[None]),
                        "a": (("chain", "draw", "state"), np.stack([d[1] for d in draws])[None]),
                        "Sigma": (("chain", "draw", "state", "state2"),
                                  np.stack([d[2] for d in draws])[None])})
    res2 = bb.ppc(_ou_tree(X, DT, post2, names=("r", "x")))
    want2 = np.zeros((len(X) - 1, 2))
    for Ad, ad, Ld in draws:
        # Van Loan (1978) by hand: expm([[A, V], [0, -A']] dt)
        V = Ld @ Ld.T
        E = sla.expm(np.block([[Ad, V], [np.zeros((2, 2)), -Ad.T]]) * DT)
        Phi = E[:2, :2]
        Q = E[:2, 2:] @ Phi.T
        c = np.linalg.solve(Ad, (Phi - np.eye(2)) @ ad)
        m = X[:-1] @ Phi.T + c
        want2 += stats.norm.cdf((X[1:] - m) / np.sqrt(np.diag(Q))) / len(draws)
    np.testing.assert_allclose(res2.extra["pit"], want2, rtol=1e-8)
    assert set(res2.table["unit"]) == {"r", "x"}
    assert len(res2.plot().axes) == 4


@pytest.fixture(scope="module")
def ou_fits():
    truth = OU.vasicek(0.5, 0.04, 0.01)
    x = truth.simulate(0.04, n_steps=479, dt=DT, rng=3)[0]
    idx = pd.date_range("1980-01-31", periods=len(x), freq="ME")
    kw = {**FIT_KW, "draws": 500, "tune": 600}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a slow kappa-theta ridge: a few hundred draws suffice
        ok = bb.OUModel().fit(pd.Series(x, index=idx, name="r"), DT, **kw)
    # misspecified: 5% of the steps have 8 times the volatility (jumps)
    rng = np.random.default_rng(4)
    e = 0.01 * np.sqrt(DT) * rng.standard_normal(len(x))
    e = np.where(rng.random(len(x)) < 0.05, 8 * e, e)
    xj = np.empty(len(x))
    xj[0] = 0.04
    for t in range(1, len(x)):
        xj[t] = 0.04 + np.exp(-0.5 * DT) * (xj[t - 1] - 0.04) + e[t]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bad = bb.OUModel().fit(pd.Series(xj, index=idx, name="r"), DT, **kw)
    return ok, bad


@pytest.mark.slow
def test_ou_coverage_is_nominal_on_ou_data_and_off_with_jumps(ou_fits):
    ok, bad = ou_fits
    good = bb.ppc(ok).table.set_index(["statistic", "unit"])
    assert good.loc[("coverage_0.9", "r"), "observed"] == pytest.approx(0.9, abs=0.025)
    assert good.loc[("coverage_0.5", "r"), "observed"] == pytest.approx(0.5, abs=0.05)
    assert (good["p_value"] > 0.05).all(), good
    res = bb.ppc(bad)
    t = res.table.set_index(["statistic", "unit"])
    assert t.loc[("coverage_0.5", "r"), "observed"] > 0.7  # a too wide centre: 82%
    assert t.loc[("coverage_0.9", "r"), "observed"] > 0.95  # and 90% intervals cover 97%
    assert t.loc[("coverage_0.9", "r"), "p_value"] < 1e-3
    assert t.loc[("pit_ks", "r"), "p_value"] < 1e-3
    fig = res.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2


# --------------------------------------------------------------------------------- affine
TAU = np.array([0.25, 0.5, 1, 2, 3, 5, 7, 10.0])


def _affine_case(T=200, seed=0, phi=0.0, het=None, S=8):
    """Yields from the canonical model with errors in the complement of the portfolios
    (W_perp' u_t, u ~ N(0, sigma_e^2 I)), and a posterior jittered around the truth (the P*
    parameters barely: a real posterior pins them down, and a jitter of the loadings is a
    pricing error of its own)."""
    from bayesbond.core.affine_canonical import canonical, eigen_from_raw, eigen_to_raw
    from bayesbond.core.ou import exact_transition

    rng = np.random.default_rng(seed)
    n = 3
    x = (TAU - TAU.mean()) / TAU.std()
    Qw, _ = np.linalg.qr(np.vander(x, n, increasing=True))
    W = Qw.T * np.sign(Qw.T[:, -1:])
    W_perp = sla.null_space(W).T
    raw = eigen_to_raw([-0.03], -0.63, 0.1)
    Sig = np.array([[0.02, 0, 0], [-0.006, 0.01, 0], [0.001, -0.002, 0.004]])
    A = np.array([[-0.15, 0.3, 0.1], [0.05, -0.6, 0.2], [0.0, 0.1, -1.2]])
    mu = np.array([0.14, 0.03, 0.002])
    can = canonical(np, eigen_from_raw(np, raw, n), 0.0015, Sig @ Sig.T, W, TAU)
    Phi, c, Q = exact_transition(A, -A @ mu, Sig @ Sig.T, DT)
    P = np.empty((T, n))
    P[0] = mu
    Lq = np.linalg.cholesky(Q)
    for t in range(1, T):
        P[t] = c + Phi @ P[t - 1] + Lq @ rng.standard_normal(n)
    u = rng.standard_normal((T, len(TAU) - n))
    for t in range(1, T):
        u[t] = phi * u[t - 1] + np.sqrt(1 - phi**2) * u[t]
    err = 5e-4 * u @ W_perp
    if het is not None:
        err = err * het[None, :]
    Y = can.d + P @ can.Z.T + err
    dates = pd.date_range("1990-01-31", periods=T, freq="ME", name="date")
    names = ["level", "slope", "curvature"]
    j = lambda v, sd: v[None, None] + sd * rng.standard_normal((1, S, *np.shape(v)))  # noqa: E731
    post = xr.Dataset(
        {"eig_raw": (("chain", "draw", "eig_param"), j(np.asarray(raw), 1e-5)),
         "k_inf": (("chain", "draw"), j(np.float64(0.0015), 1e-7)),
         "Sigma": (("chain", "draw", "state", "state2"), j(Sig, 1e-7) * np.tril(np.ones((3, 3)))),
         "A": (("chain", "draw", "state", "state2"), j(A, 0.01)),
         "a": (("chain", "draw", "state"), j(-A @ mu, 1e-4)),
         "sigma_e": (("chain", "draw"), j(np.float64(5e-4), 1e-5))},
        coords={"chain": [0], "draw": np.arange(S), "state": names, "state2": names})
    const = xr.Dataset({"yields": (("date", "maturity"), Y),
                        "portfolio_weights": (("state", "maturity"), W),
                        "dt": xr.DataArray(DT)},
                       coords={"date": dates, "maturity": TAU, "state": names})
    tree = xr.DataTree.from_dict({"posterior": post, "constant_data": const,
                                  "observed_data": xr.Dataset({"yields": const["yields"]})})
    tree.attrs["family"] = "affine"
    return tree, Y, W


def test_affine_residual_statistics_match_a_hand_computation():
    from bayesbond.core.affine_canonical import canonical, eigen_from_raw

    tree, Y, W = _affine_case(T=80, S=5)
    res = bb.ppc(tree)
    post = tree["posterior"]
    t = res.table.set_index(["statistic", "unit"])
    rmse, mean, ac, sd = [], [], [], []
    for s in range(5):
        can = canonical(np, eigen_from_raw(np, post["eig_raw"].values[0, s], 3),
                        float(post["k_inf"].values[0, s]),
                        post["Sigma"].values[0, s] @ post["Sigma"].values[0, s].T, W, TAU)
        e = Y[1:] - (can.d + (Y[1:] @ W.T) @ can.Z.T)
        np.testing.assert_allclose(e @ W.T, 0.0, atol=1e-12)  # priced portfolios: W e = 0
        rmse.append(np.sqrt(np.mean(e**2, axis=0)))
        mean.append(e.mean(axis=0))
        ac.append([np.sum(e[1:, j] * e[:-1, j]) / np.sqrt(np.sum(e[1:, j] ** 2)
                                                           * np.sum(e[:-1, j] ** 2))
                   for j in range(len(TAU))])
        # orthonormal W: the variance of e_j is sigma_e^2 (1 - sum_i W_ij^2)
        sd.append(float(post["sigma_e"].values[0, s]) * np.sqrt(1 - (W**2).sum(axis=0)))
    for j, lab in enumerate(f"{x:g}" for x in TAU):
        assert t.loc[("rmse", lab), "observed"] == pytest.approx(np.mean(rmse, axis=0)[j])
        assert t.loc[("mean", lab), "observed"] == pytest.approx(np.mean(mean, axis=0)[j],
                                                                 abs=1e-15)
        assert t.loc[("autocorr_lag1", lab), "observed"] == pytest.approx(
            np.mean(ac, axis=0)[j])
    np.testing.assert_allclose(res.details["predictive_sd"], np.mean(sd, axis=0), rtol=1e-10)
    # the mean residuals are the yields minus AffineModel.bands' fitted mean (same draws)
    fitted = bb.AffineModel(3).bands(tree, max_draws=5)["fitted"].sel(stat="mean").values
    np.testing.assert_allclose(res.extra["residuals"].to_numpy(), Y[1:] - fitted[1:],
                               atol=1e-13)
    fig = res.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2


def test_affine_checks_pass_on_model_data_and_flag_autocorrelated_or_uneven_errors():
    """At the truth (a posterior pinned there) the 26 p-values of a curve are about uniform:
    over three curves, few are extreme and the pooled ones never."""
    ps = []
    for seed in (1, 2, 3):
        good = bb.ppc(_affine_case(seed=seed, S=100)[0], random_seed=2)
        p = good.p_values
        assert ((p.xs("all", level=1) > 0.01) & (p.xs("all", level=1) < 0.99)).all()
        ps.append(p.to_numpy())
    ps = np.concatenate(ps)
    assert np.mean((ps < 0.01) | (ps > 0.99)) <= 0.05
    assert stats.kstest(ps, "uniform").pvalue > 0.01
    # replicated RMSE is the predictive sd of each maturity
    rep = good.table.set_index(["statistic", "unit"]).xs("rmse", level=0)["replicated_mean"]
    np.testing.assert_allclose(rep.drop("all").to_numpy(), good.details["predictive_sd"],
                               rtol=0.1)
    ar = bb.ppc(_affine_case(seed=1, phi=0.6)[0])
    assert ar.p_values[("autocorr_lag1", "all")] < 0.005
    het = np.where(TAU < 1, 3.0, 1.0)  # the short end is priced three times worse
    uneven = bb.ppc(_affine_case(seed=1, het=het)[0]).p_values
    assert uneven[("rmse", "0.25")] < 0.005 and uneven[("rmse", "0.5")] < 0.005


# ---------------------------------------------------------------------------------- plots
def test_plots_are_figures_and_take_axes(hand, tmp_path):
    y, F, alpha, beta, sigma, groups = hand
    res = bb.ppc(_factor_tree(y, F, alpha, beta, sigma, groups), n_draws=1000)
    fig = res.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    out = plots.save_png(fig, tmp_path / "ppc.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    host = Figure()
    axes = [host.add_subplot(2, 3, i + 1) for i in range(6)]
    assert res.plot(ax=axes) is host
    with pytest.raises(SpecError, match="6 panels"):
        res.plot(ax=axes[:2])


def test_exports():
    """bb.ppc is the function, also after its module is imported (bayesbond.workflow.ppc is
    not a module name, so nothing shadows it)."""
    import subprocess
    import sys

    from bayesbond.workflow import (
        ppc,
        predictive_checks,  # noqa: F401
    )

    assert callable(bb.ppc) and bb.ppc is ppc
    assert bb.ppc.__module__ == "bayesbond.workflow.predictive_checks"
    assert bb.PPCResult.__name__ == "PPCResult" and {"ppc", "PPCResult"} <= set(bb.__all__)
    code = ("import sys; from bayesbond.workflow import ppc, PPCResult; import bayesbond as bb; "
            "assert ppc is bb.ppc and PPCResult is bb.PPCResult; assert 'pymc' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)

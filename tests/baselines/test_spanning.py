"""Spanning regressions vs statsmodels; GRS vs statsmodels' multivariate test and its null size."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import signal, stats
from statsmodels.multivariate.multivariate_ols import _MultivariateOLS

import bayesbond as bb
from bayesbond.baselines.spanning import grs_test, hac_wald_test
from bayesbond.errors import DataError


def _factors(T=150, N=3, L=2, alpha=0.0, seed=0):
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2005-01-31", periods=T, freq="ME")
    base = pd.DataFrame(rng.normal(0.004, 0.02, (T, L)), index=dates, columns=["CMKT", "TERM"][:L])
    e = rng.normal(0, 0.01, (T, N))
    for t in range(1, T):
        e[t] += 0.2 * e[t - 1]
    test = pd.DataFrame(
        alpha + base.to_numpy() @ rng.normal(0.3, 0.3, (L, N)) + e,
        index=dates,
        columns=[f"LS{i}" for i in range(N)],
    )
    return test, base


def test_regressions_match_statsmodels():
    test, base = _factors(alpha=0.002)
    test.iloc[:12, 2] = np.nan  # a factor that starts later
    res = bb.spanning(test, base, hac_lags=6)
    kw = {"cov_type": "HAC", "cov_kwds": {"maxlags": 6, "use_correction": True}}
    for name in test.columns:
        y = test[name].dropna()
        s = sm.OLS(y, sm.add_constant(base.loc[y.index])).fit(**kw)
        assert res.alpha[name] == pytest.approx(s.params["const"], rel=1e-9)
        assert res.tvalues[name] == pytest.approx(s.tvalues["const"], rel=1e-9)
        np.testing.assert_allclose(res.beta.loc[name], s.params[["CMKT", "TERM"]], rtol=1e-9)
        assert res.rsquared[name] == pytest.approx(s.rsquared, rel=1e-9)
        for other in test.columns.drop(name):
            X = pd.concat([base, test[other]], axis=1).loc[y.index].dropna()
            s2 = sm.OLS(y.loc[X.index], sm.add_constant(X)).fit(**kw)
            row = res.variants.loc[(name, other)]
            assert row["alpha"] == pytest.approx(s2.params["const"], rel=1e-9)
            assert row["t(alpha)"] == pytest.approx(s2.tvalues["const"], rel=1e-9)
            assert row["beta_added"] == pytest.approx(s2.params[other], rel=1e-9)
            assert row["t(added)"] == pytest.approx(s2.tvalues[other], rel=1e-9)
            assert row["nobs"] == s2.nobs
    assert len(res.variants) == 6
    assert res.grs_nobs == 138 and res.grs_df == (3, 138 - 3 - 2)
    assert "GRS" in repr(res) and list(res.summary().columns)[:2] == ["alpha", "t(alpha)"]


def test_grs_equals_multivariate_intercept_test():
    test, base = _factors(T=120, N=4, seed=3, alpha=0.001)
    stat, p, df, T = grs_test(test, base)
    X = sm.add_constant(base).rename(columns={"const": "const"})
    mv = _MultivariateOLS(test, X).fit().mv_test(hypotheses=[("const", ["const"])])
    table = mv.results["const"]["stat"]
    assert stat == pytest.approx(float(table.loc["Hotelling-Lawley trace", "F Value"]), rel=1e-10)
    assert p == pytest.approx(float(table.loc["Hotelling-Lawley trace", "Pr > F"]), rel=1e-8)
    assert df == (4, 114) and T == 120


def test_grs_null_distribution_monte_carlo():
    # under the null with normal errors GRS ~ F(N, T-N-L): check size and the whole distribution
    rng = np.random.default_rng(11)
    T, N, L, reps = 60, 3, 2, 1500
    stats_ = np.empty(reps)
    for r in range(reps):
        F = rng.normal(0.005, 0.02, (T, L))
        Y = F @ rng.normal(0.5, 0.2, (L, N)) + rng.normal(0, 0.01, (T, N))
        stats_[r] = grs_test(Y, F)[0]
    size = np.mean(stats_ > stats.f.ppf(0.95, N, T - N - L))
    assert abs(size - 0.05) < 0.02
    assert stats.kstest(stats_, stats.f(N, T - N - L).cdf).pvalue > 0.001


def test_grs_rejects_real_alphas():
    test, base = _factors(T=240, N=3, seed=5, alpha=0.004)
    res = bb.spanning(test, base)
    assert res.grs_pvalue < 1e-6 and (res.tvalues > 3).all()


def test_spanning_errors():
    test, base = _factors()
    with pytest.raises(DataError, match="both test and base"):
        bb.spanning(test.assign(CMKT=1.0), base)
    b2 = base.copy()
    b2.iloc[10, 0] = np.nan
    with pytest.raises(DataError, match="CMKT on 2005-11-30"):
        bb.spanning(test, b2)


def test_hac_wald_against_hand_computation():
    # diagonal blocks: statsmodels' per-equation Newey-West covariance; off-diagonal blocks: the
    # cross-equation long-run covariance summed by hand, lag by lag
    test, base = _factors(T=200, N=3, seed=8, alpha=0.001)
    lags = 4
    stat, p, df, T = hac_wald_test(test, base, hac_lags=lags)
    X = sm.add_constant(base).to_numpy()
    Tn, k = X.shape
    XtXi = np.linalg.inv(X.T @ X)
    fits = [
        sm.OLS(test[c].to_numpy(), X).fit(
            cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True}
        )
        for c in test.columns
    ]
    E = np.column_stack([f.resid for f in fits])
    w = 1 - np.arange(lags + 1) / (lags + 1)
    Va = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            if i == j:
                Va[i, i] = fits[i].cov_params()[0, 0]
                continue
            S = np.zeros((k, k))
            for t in range(Tn):
                for s_ in range(Tn):
                    lag = abs(t - s_)
                    if lag <= lags:
                        S += w[lag] * E[t, i] * E[s_, j] * np.outer(X[t], X[s_])
            Va[i, j] = (XtXi @ S @ XtXi)[0, 0] * Tn / (Tn - k)
    alpha = np.array([f.params[0] for f in fits])
    ref = alpha @ np.linalg.solve(Va, alpha)
    assert stat == pytest.approx(ref, rel=1e-9)
    assert p == pytest.approx(stats.chi2.sf(ref, 3), rel=1e-9)
    assert (df, T) == (3, 200)
    res = bb.spanning(test, base, hac_lags=lags)
    assert res.wald == pytest.approx(ref, rel=1e-9) and res.wald_lags == lags
    assert "HAC Wald" in repr(res) and "assumes iid" in repr(res)
    # without lags: the heteroskedasticity-robust (White) version
    assert bb.spanning(test, base, hac_lags=None).wald == pytest.approx(
        hac_wald_test(test, base, hac_lags=0)[0], rel=1e-12
    )


def test_hac_wald_size_under_autocorrelated_errors():
    # AR(1) errors with coefficient 0.3: GRS (iid errors assumed) rejects far too often, the
    # Newey-West Wald test much less. The Wald test is asymptotic and over-rejects somewhat in
    # finite samples: in 1000 replications of this design its size was 9.4% (GRS 18.5%), so
    # with 300 replications (binomial SE about 1.7 points) the band is 5% +- 10 points at most
    # and GRS must be at least 6 points above it.
    rng = np.random.default_rng(2026)
    T, N, L, reps = 240, 3, 2, 300
    p_wald, p_grs = np.empty(reps), np.empty(reps)
    for r in range(reps):
        F = rng.normal(0.005, 0.02, (T, L))
        e = signal.lfilter([1.0], [1.0, -0.3], rng.normal(0, 0.01, (T + 50, N)), axis=0)[50:]
        Y = F @ rng.normal(0.5, 0.2, (L, N)) + e
        p_wald[r] = hac_wald_test(Y, F, hac_lags=6)[1]
        p_grs[r] = grs_test(Y, F)[1]
    size_wald, size_grs = np.mean(p_wald < 0.05), np.mean(p_grs < 0.05)
    assert 0.02 <= size_wald <= 0.15, size_wald
    assert size_grs >= 0.14 and size_grs - size_wald >= 0.06, (size_grs, size_wald)


def test_collinear_factors_are_named():
    test, base = _factors(T=120, N=2)
    combo = test.assign(C=0.5 * base["CMKT"] - base["TERM"])
    with pytest.raises(DataError, match="CMKT, TERM, C are an exact linear combination"):
        bb.spanning(combo, base)
    with pytest.raises(DataError, match="LS0, C are an exact"):
        bb.spanning(test.assign(C=test["LS0"]), base)
    with pytest.raises(DataError, match="CMKT, X are an exact"):
        bb.spanning(test, base.assign(X=2 * base["CMKT"]))
    with pytest.raises(DataError, match="LS0, C"):
        grs_test(test.assign(C=test["LS0"]), base)
    with pytest.raises(DataError, match="LS0, C"):
        hac_wald_test(test.assign(C=test["LS0"]), base)


def test_units_of_test_and_base_factors():
    test, base = _factors(T=120, N=2)
    with pytest.raises(DataError, match="test factors look like percent.*factors LS0, LS1"):
        bb.spanning(test * 100, base)
    with pytest.raises(DataError, match="base factors look like percent.*factors CMKT, TERM"):
        bb.spanning(test, base * 100)
    ref = bb.spanning(test, base)
    pct = bb.spanning(test * 100, base * 100, units="percent")
    np.testing.assert_allclose(pct.alpha, ref.alpha, rtol=1e-10)
    assert pct.wald == pytest.approx(ref.wald, rel=1e-10)

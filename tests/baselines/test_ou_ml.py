"""ou_ml against independent references: statsmodels AR(1)/VAR(1) least squares, scipy densities,
Monte Carlo of the estimator, separate 1-D fits, and recovery of known parameters."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
import statsmodels.api as sm
from scipy import stats

from bayesbond.baselines.ou_ml import kappa_bias, ou_ml, real_logm, v_from_q
from bayesbond.core import linalg
from bayesbond.core.ou import OU
from bayesbond.errors import DataError, ModelError, SpecError

DT = 1 / 12


@pytest.fixture(scope="module")
def tbill(shared_data):
    df = pd.read_csv(shared_data / "fred2017_shortrates_monthly.csv", parse_dates=["DATE"])
    return df.set_index("DATE")["TB3MS"].dropna() / 100.0


def _ar1_map(b, c, s2, dt):
    kappa = -np.log(b) / dt
    return kappa, c / (1 - b), np.sqrt(s2 * 2 * kappa / (1 - b**2))


def test_tbill_equals_statsmodels_ar1_mapping(tbill):
    x = tbill.to_numpy()
    ols = sm.OLS(x[1:], sm.add_constant(x[:-1])).fit()
    c, b = ols.params
    s2 = ols.ssr / ols.nobs
    kappa, theta, sigma = _ar1_map(b, c, s2, DT)
    res = ou_ml(tbill, DT)
    assert res.method == "closed_form" and res.nobs == len(x) - 1
    np.testing.assert_allclose([res.kappa, res.theta, res.sigma], [kappa, theta, sigma], rtol=1e-8)
    assert res.state_names == ["TB3MS"]
    # log-likelihood = Gaussian AR(1) likelihood with the ML residual variance
    ll = stats.norm(ols.fittedvalues, np.sqrt(s2)).logpdf(x[1:]).sum()
    assert res.loglik == pytest.approx(ll, rel=1e-10)
    # delta-method standard errors = inverse observed information of the exact likelihood,
    # computed by the numerical route (independent code path: optimiser + numerical Hessian)
    num = ou_ml(tbill, DT, method="numerical")
    np.testing.assert_allclose([num.kappa, num.theta, num.sigma], [kappa, theta, sigma], rtol=1e-5)
    for p in ("kappa", "theta", "sigma"):
        assert num.se[p] == pytest.approx(res.se[p], rel=2e-3)
    # the b standard error maps to kappa's through d kappa/d b = -1/(b dt)
    assert res.se["kappa"] == pytest.approx(ols.bse[1] * np.sqrt((ols.nobs - 2) / ols.nobs)
                                            / (b * DT), rel=1e-8)
    ou = res.to_ou()
    assert ou.scalar and ou.kappa == pytest.approx(res.kappa)
    assert list(res.summary().index) == ["kappa", "theta", "sigma"]
    assert "kappa" in str(res)


def test_known_mean_equals_regression_through_the_mean(tbill):
    x = tbill.to_numpy()
    th = 0.04
    ols = sm.OLS(x[1:] - th, x[:-1] - th).fit()
    b = ols.params[0]
    kappa, _, sigma = _ar1_map(b, th * (1 - b), ols.ssr / ols.nobs, DT)
    res = ou_ml(x, DT, known_mean=th)
    np.testing.assert_allclose([res.kappa, res.theta, res.sigma], [kappa, th, sigma], rtol=1e-8)
    assert np.isnan(res.se["theta"])
    num = ou_ml(x, DT, known_mean=th, method="numerical")
    np.testing.assert_allclose([num.kappa, num.sigma], [kappa, sigma], rtol=1e-5)
    assert num.se["kappa"] == pytest.approx(res.se["kappa"], rel=2e-3)
    assert num.se["sigma"] == pytest.approx(res.se["sigma"], rel=2e-3)


def test_standard_errors_match_monte_carlo_spread():
    ou = OU.vasicek(2.0, 0.05, 0.02)
    paths = ou.simulate(None, n_steps=1500, dt=DT, n_paths=400, rng=21)
    fits = [ou_ml(p, DT) for p in paths]
    for name in ("kappa", "theta", "sigma"):
        est = np.array([getattr(f, name) for f in fits])
        se = np.array([f.se[name] for f in fits])
        assert np.mean(se) == pytest.approx(np.std(est), rel=0.15), name


@pytest.mark.filterwarnings("ignore:bias-corrected kappa:RuntimeWarning")
def test_bias_correction_matches_monte_carlo():
    """Mean ML bias of kappa over 1,500 samples of 20 years ~ kappa_bias; correction removes it."""
    kappa, dt, N = 0.5, DT, 240
    ou = OU.vasicek(kappa, 0.05, 0.02)
    paths = ou.simulate(None, n_steps=N, dt=dt, n_paths=1500, rng=5)
    k_ml, k_bc = [], []
    for p in paths:
        try:
            f = ou_ml(p, dt, bias_correction=True)
        except ModelError:  # b outside (0, 1) in a rare sample
            continue
        k_ml.append(f.kappa_ml)
        k_bc.append(f.kappa)
        assert f.kappa == pytest.approx(f.kappa_ml - f.kappa_bias)
    k_ml, k_bc = np.array(k_ml), np.array(k_bc)
    mc_se = k_ml.std() / np.sqrt(len(k_ml))
    bias_mc = k_ml.mean() - kappa
    bias_th = kappa_bias(kappa, dt, N)
    assert bias_th == pytest.approx(bias_mc, abs=4 * mc_se + 0.1 * bias_th)
    assert abs(k_bc.mean() - kappa) < 0.35 * abs(bias_mc)
    # known mean: smaller bias, (3 + e^{2 kappa dt}) / (2T)
    assert kappa_bias(kappa, dt, N, known_mean=True) == pytest.approx(
        (3 + np.exp(2 * kappa * dt)) / (2 * N * dt))


def test_stationary_init_maximises_the_exact_likelihood(tbill):
    x = tbill.loc["1959":].to_numpy()
    res = ou_ml(x, DT, stationary_init=True)
    assert res.method == "numerical" and res.stationary_init

    def ll(k, th, s):  # independent: scipy densities with the closed-form Vasicek moments
        b = np.exp(-k * DT)
        q = s**2 * (1 - b**2) / (2 * k)
        out = stats.norm(th + (x[:-1] - th) * b, np.sqrt(q)).logpdf(x[1:]).sum()
        return out + stats.norm(th, s / np.sqrt(2 * k)).logpdf(x[0])

    p0 = np.array([res.kappa, res.theta, res.sigma])
    assert res.loglik == pytest.approx(ll(*p0), rel=1e-12)
    for i in range(3):
        for h in (1e-3, -1e-3):
            p = p0.copy()
            p[i] *= 1 + h
            assert ll(*p) < ll(*p0)
    cond = ou_ml(x, DT)
    assert res.loglik > cond.loglik + stats.norm(cond.theta, cond.sigma / np.sqrt(
        2 * cond.kappa)).logpdf(x[0]) - 1e-9


def test_irregular_steps_recovery_and_regular_limit():
    rng = np.random.default_rng(8)
    t = np.concatenate([[0.0], np.cumsum(rng.uniform(0.01, 0.3, size=4000))])
    truth = OU.vasicek(1.5, 0.04, 0.03)
    x = truth.simulate(0.04, t, rng=9)[0]
    res = ou_ml(x, np.diff(t))
    assert res.method == "numerical"
    for name in ("kappa", "theta", "sigma"):
        assert abs(getattr(res, name) - getattr(truth, name)) < 4 * res.se[name], name
    # an array of equal steps collapses to the closed form
    y = truth.simulate(0.04, n_steps=500, dt=DT, rng=1)[0]
    a = ou_ml(y, np.full(500, DT))
    b = ou_ml(y, DT)
    assert a.method == "closed_form" and a.kappa == b.kappa


@pytest.fixture(scope="module")
def sim2():
    A = np.array([[-0.8, 0.4], [0.1, -0.3]])
    a = np.array([0.02, 0.01])
    S = np.array([[0.02, 0.0], [0.005, 0.01]])
    ou = OU(A, a, S)
    x = ou.simulate(None, n_steps=6000, dt=DT, rng=1)[0]
    return ou, pd.DataFrame(x, columns=["r", "x"])


def _within(est, se, true, k=4.0):
    m = np.isfinite(se)
    return np.all(np.abs(est[m] - true[m]) < k * se[m])


def test_2d_unrestricted_matches_statsmodels_var_and_recovers(sim2):
    from statsmodels.tsa.api import VAR

    ou, df = sim2
    res = ou_ml(df, DT)
    assert res.method == "closed_form" and res.state_names == ["r", "x"]
    var = VAR(df.to_numpy()).fit(1, trend="c")
    Phi = var.coefs[0]
    c = var.intercept
    np.testing.assert_allclose(sla.expm(res.A * DT), Phi, rtol=1e-10, atol=1e-13)
    Phi_r, c_r, Q_r = res.to_ou().transition(DT)
    np.testing.assert_allclose(c_r, c, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(Q_r, var.sigma_u_mle, rtol=1e-9)
    assert res.loglik == pytest.approx(var.llf, rel=1e-10)
    assert _within(res.A, res.se["A"], ou.A)
    assert _within(res.a, res.se["a"], ou.a)
    assert _within(res.Sigma, res.se["Sigma"], np.linalg.cholesky(ou.V))
    # numerical maximisation of the exact likelihood lands on the closed form
    num = ou_ml(df, DT, method="numerical")
    np.testing.assert_allclose(num.A, res.A, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(num.Sigma, res.Sigma, rtol=1e-5, atol=1e-8)
    assert num.loglik == pytest.approx(res.loglik, abs=1e-6)
    np.testing.assert_allclose(num.se["A"], res.se["A"], rtol=1e-2)
    assert res.summary().shape == (9, 2)


def test_3d_unrestricted_recovery():
    A = np.array([[-1.0, 1.0, 0.0], [0.0, -0.5, 0.5], [0.0, 0.0, -0.25]])  # EFM(2)-type cascade
    a = np.array([0.0, 0.0, 0.25 * 0.05])
    S = np.array([[0.01, 0, 0], [0.004, 0.008, 0], [0.002, 0.003, 0.006]])
    ou = OU(A, a, S)
    x = ou.simulate(None, n_steps=12000, dt=DT, rng=3)[0]
    res = ou_ml(x, DT)
    assert _within(res.A, res.se["A"], A)
    assert _within(res.a, res.se["a"], a)
    assert _within(res.Sigma, res.se["Sigma"], S)
    np.testing.assert_allclose(res.mu, ou.stationary_mean(), atol=0.02)


def test_restricted_diagonal_equals_separate_1d_fits(sim2):
    _, df = sim2
    res = ou_ml(df, DT, diagonal_A=True, Sigma_structure="diagonal")
    assert res.method == "numerical"
    assert res.A[0, 1] == 0 and res.A[1, 0] == 0 and res.Sigma[1, 0] == 0
    assert np.isnan(res.se["A"][0, 1]) and np.isnan(res.se["Sigma"][1, 0])
    for i, col in enumerate(df.columns):
        one = ou_ml(df[col], DT)
        assert -res.A[i, i] == pytest.approx(one.kappa, rel=1e-5)
        assert res.Sigma[i, i] == pytest.approx(one.sigma, rel=1e-6)
        assert res.a[i] == pytest.approx(one.kappa * one.theta, rel=1e-5)
        assert res.se["A"][i, i] == pytest.approx(one.se["kappa"], rel=1e-2)
    assert res.summary().shape == (9, 2)


def test_restricted_fixed_zero_known_mean_recovery():
    A = np.array([[-1.0, 0.6], [0.0, -0.4]])
    mu = np.array([0.05, 0.03])
    S = np.array([[0.015, 0.0], [0.004, 0.01]])
    ou = OU(A, -A @ mu, S)
    x = ou.simulate(None, n_steps=5000, dt=DT, rng=12)[0]
    free = ou_ml(x, DT)
    res = ou_ml(x, DT, A_mask=[[True, True], [False, True]], known_mean=mu)
    assert res.A[1, 0] == 0.0
    np.testing.assert_allclose(res.mu, mu, rtol=1e-12)
    assert _within(res.A, res.se["A"], A)
    assert _within(res.Sigma, res.se["Sigma"], S)
    # nested model: lower likelihood, likelihood-ratio statistic consistent with chi2(3)
    lr = 2 * (free.loglik - res.loglik)
    assert 0 <= lr < stats.chi2(3).ppf(0.999)
    # exact (stationary first observation) variant runs and stays close
    ex = ou_ml(x, DT, A_mask=[[True, True], [False, True]], known_mean=mu, stationary_init=True)
    np.testing.assert_allclose(ex.A, res.A, atol=3 * np.nanmax(res.se["A"]))


def test_no_real_logarithm_raises():
    rng = np.random.default_rng(0)
    Phi = np.array([[-0.5, 0.0], [0.0, 0.6]])
    x = np.zeros((400, 2))
    for k in range(399):
        x[k + 1] = Phi @ x[k] + rng.normal(size=2)
    with pytest.raises(ModelError, match="no real matrix logarithm"):
        ou_ml(x, DT, units="level")
    with pytest.raises(ModelError, match="0 < b < 1"):
        ou_ml(x[:, 0], DT, units="level")
    with pytest.raises(ModelError, match="no real matrix logarithm"):
        real_logm(Phi, DT)


def test_v_from_q_inverts_transition_covariance():
    A = np.array([[-0.7, 1.0], [0.0, -0.7]])  # defective
    V = np.array([[0.04, 0.01], [0.01, 0.02]])
    _, Q = linalg.van_loan(A, V, 0.5)
    np.testing.assert_allclose(v_from_q(A, Q, 0.5), V, rtol=1e-11)
    # stationary route -(A P + P A') with P from the discrete Lyapunov equation
    Phi = sla.expm(0.5 * A)
    P = linalg.solve_discrete_lyapunov(Phi, Q)
    np.testing.assert_allclose(-(A @ P + P @ A.T), V, rtol=1e-10)
    np.testing.assert_allclose(v_from_q(np.zeros((2, 2)), 0.5 * V, 0.5), V, rtol=1e-12)


def test_bad_input_errors():
    x = np.array([0.01, 0.02, np.nan, 0.03, 0.02])
    s = pd.Series(x, index=pd.date_range("2000-01-31", periods=5, freq="ME"), name="TB3MS")
    with pytest.raises(DataError, match="2000-03-31.*TB3MS"):
        ou_ml(s, DT)
    with pytest.raises(DataError, match="T - 1 = 4"):
        ou_ml(np.arange(5.0), np.ones(3))
    with pytest.raises(DataError, match="positive"):
        ou_ml(np.arange(5.0), -1.0)
    with pytest.raises(DataError, match="at least 3"):
        ou_ml([1.0, 2.0], DT)
    y = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(SpecError, match="A_mask"):
        ou_ml(y, DT, A_mask=np.ones((3, 3)))
    with pytest.raises(SpecError, match="Sigma_structure"):
        ou_ml(y, DT, Sigma_structure="banded")
    with pytest.raises(SpecError, match="known_mean"):
        ou_ml(y, DT, known_mean=[0.0])
    with pytest.raises(SpecError, match="closed form"):
        ou_ml(y, DT, diagonal_A=True, method="closed_form")
    with pytest.raises(SpecError, match="bias_correction"):
        ou_ml(y, DT, bias_correction=True)


# ------------------------------------------------------------- units and dt (issue 12, sec. 3)
def _monthly_rate(seed=0, T=240):
    ou = OU.from_kappa_theta_sigma(0.5, 0.0428, 0.01)
    x = ou.simulate(0.04, n_steps=T - 1, dt=DT, rng=seed)[0]
    return pd.Series(x, index=pd.date_range("2000-01-31", periods=T, freq="ME"), name="r")


def test_percent_rates_are_detected():
    r = _monthly_rate()
    with pytest.warns(UserWarning, match=r"x looks like percent: .*column 'r'.*units='percent'"):
        ou_ml(r * 100, DT)
    with pytest.raises(DataError, match=r"x looks like percent: \|x\| reaches .* column 'r'"):
        ou_ml(r * 100, DT, units="decimal")
    # units="percent" converts: the same estimates as the decimal series
    a, b = ou_ml(r, DT), ou_ml(r * 100, DT, units="percent")
    assert b.theta == pytest.approx(a.theta, rel=1e-10)
    assert b.sigma == pytest.approx(a.sigma, rel=1e-10)
    assert b.kappa == pytest.approx(a.kappa, rel=1e-10)
    with pytest.raises(SpecError, match="units must be"):
        ou_ml(r, DT, units="bp")


def test_dt_inferred_from_dates_and_mismatch_warns():
    r = _monthly_rate()
    inferred = ou_ml(r)  # monthly DatetimeIndex -> dt = 1/12
    explicit = ou_ml(r, DT)
    assert inferred.dt == pytest.approx(DT, rel=1e-15)
    assert inferred.kappa == pytest.approx(explicit.kappa, rel=1e-12)
    # dt = 1 on a monthly series: the explicit dt wins, with a warning naming the dates' spacing
    with pytest.warns(UserWarning, match=r"dt = 1(\.0)? does not match the dates of .r. .*0.08333"):
        wrong = ou_ml(r, 1.0)
    assert wrong.kappa == pytest.approx(explicit.kappa * DT, rel=1e-10)
    # a missing month is a step of 2/12, not silently one month
    gap = r.drop(r.index[10])
    fit = ou_ml(gap)
    assert np.ndim(fit.dt) == 1 and fit.dt[9] == pytest.approx(2 * DT)
    # undated data without dt
    with pytest.raises(DataError, match="dt is not given and x has no DatetimeIndex"):
        ou_ml(r.to_numpy())
    daily = pd.Series(r.to_numpy()[:30], index=pd.bdate_range("2020-01-01", periods=30))
    with pytest.raises(DataError, match="median spacing of 1.0 days"):
        ou_ml(daily)


def test_decimals_declared_as_percent_warn():
    """units='percent' on a decimal series (0.05 for 5%) would give theta = 0.047%: warn."""
    x = OU(-0.3, 0.3 * 0.04, 0.01).simulate(0.04, n_steps=239, dt=1 / 12, rng=3)
    r = pd.Series(np.ravel(x), index=pd.date_range("2000-01-31", periods=240, freq="ME"), name="r")
    with pytest.warns(UserWarning, match=r"may already be decimals"):
        ou_ml(r, units="percent")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = ou_ml(r * 100, units="percent")  # the same series in percent: no warning
    assert 0.01 < float(res.theta) < 0.1

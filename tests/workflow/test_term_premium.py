"""bb.term_premium / bb.expected_excess_returns: closed form, Monte Carlo, coverage, ML = Bayes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesbond.baselines.affine_ml import affine_ml
from bayesbond.core.affine import GaussianAffine
from bayesbond.core.affine_canonical import canonical, eigen_from_raw, eigen_to_raw
from bayesbond.core.ou import OU, exact_transition
from bayesbond.errors import DataError, SpecError
from bayesbond.workflow.term_premium import (
    expected_excess_returns,
    term_premium,
    tp_coefficients,
)

TAU1 = np.array([0.5, 2, 5, 10.0])
DT = 1 / 12


def sim1(T, seed, lam=-0.1, k_inf=0.004, A=-0.4, mu=0.1, s=0.01, se=5e-4):
    """One-factor canonical model (level portfolio), portfolios priced with 5 bp errors."""
    rng = np.random.default_rng(seed)
    W = np.full((1, len(TAU1)), 0.5)
    V = np.array([[s * s]])
    can = canonical(np, eigen_from_raw(np, eigen_to_raw([lam]), 1), k_inf, V, W, TAU1)
    Am = np.array([[A]])
    a = -Am @ [mu]
    Phi, c, Q = exact_transition(Am, a, V, DT)
    X = np.empty((T, 1))
    X[0] = mu
    for t in range(1, T):
        X[t] = c + Phi @ X[t - 1] + np.sqrt(Q[0, 0]) * rng.standard_normal(1)
    Y = can.d + X @ can.Z.T + se * rng.standard_normal((T, len(TAU1)))
    truth = {"A": Am, "a": a, "Sigma": np.array([[s]]), "Lambda": can.A_star - Am,
             "lambda1": can.a_star - a, "delta0": float(can.delta0), "delta1": can.delta1}
    dates = pd.date_range("1990-01-31", periods=T, freq="ME")
    return pd.DataFrame(Y, index=dates, columns=TAU1), W, truth


def test_tp_coefficients_equal_the_vasicek_closed_form():
    """Vasicek (X = r): y from Hull's A(tau), B(tau) under P*, EH = theta + (r - theta) B/tau."""
    k, theta, s, lam = 0.3, 0.05, 0.012, 0.1  # P* speed k* = k - lam
    ks = k - lam
    theta_s = k * theta / ks + 0.0  # a* = a: a pure slope risk price
    par = {"A": np.array([[-k]]), "a": np.array([k * theta]), "Sigma": np.array([[s]]),
           "Lambda": np.array([[lam]]), "lambda1": np.zeros(1), "delta0": 0.0,
           "delta1": np.ones(1)}
    tau = np.array([0.5, 3.0, 10.0, 30.0])
    b, c = tp_coefficients(par, tau)
    r = np.array([0.02, 0.07])
    B = (1 - np.exp(-ks * tau)) / ks
    Acoef = (theta_s - s**2 / (2 * ks**2)) * (B - tau) - s**2 * B**2 / (4 * ks)
    y = (-Acoef[None] + B[None] * r[:, None]) / tau
    Bp = (1 - np.exp(-k * tau)) / k
    eh = theta + (r[:, None] - theta) * Bp / tau
    np.testing.assert_allclose(r[:, None] * b[:, 0] + c, y - eh, rtol=1e-10, atol=1e-14)


def test_eh_component_is_the_monte_carlo_average_short_rate():
    """2 factors: y - TP equals the mean over simulated P paths of (1/tau) int r ds."""
    A = np.array([[-0.2, 0.1], [0.05, -0.8]])
    a = np.array([0.01, -0.004])
    Sg = np.array([[0.01, 0.0], [0.003, 0.008]])
    par = {"A": A, "a": a, "Sigma": Sg, "Lambda": np.array([[0.05, 0.0], [0.1, -0.2]]),
           "lambda1": np.array([-0.002, 0.001]), "delta0": 0.001, "delta1": np.array([0.7, 0.4])}
    x0 = np.array([0.05, -0.01])
    tau = 5.0
    b, c = tp_coefficients(par, [tau])
    yb, yc = GaussianAffine(A, a, Sg, Lambda=par["Lambda"], lambda1=par["lambda1"],
                            delta0=0.001, delta1=par["delta1"]).yield_coefficients([tau])
    eh = x0 @ yb[0] + yc[0] - (x0 @ b[0] + c[0])
    paths = OU(A, a, Sg).simulate(x0, n_steps=600, dt=tau / 600, n_paths=4000, rng=5)
    r = 0.001 + paths @ par["delta1"]  # (paths, times)
    avg = 0.5 * (r[:, :-1] + r[:, 1:]).mean(axis=1)  # trapezoid, error O(dt^2)
    se = avg.std() / np.sqrt(len(avg))
    assert abs(avg.mean() - eh) < 4 * se + 1e-6, (avg.mean(), eh, se)
    assert se < 5e-4  # the check has power: a 10 bp error in EH would fail


@pytest.fixture(scope="module")
def ml1():
    Y, W, truth = sim1(240, 0)
    return Y, W, truth, affine_ml(Y, n_factors=1, n_starts=1, method="portfolio", weights=W)


def test_ml_point_equals_the_fits_term_premia_and_excess_returns(ml1):
    Y, W, truth, ml = ml1
    tp = term_premium(ml, 10, n_draws=200)
    assert list(tp.columns) == ["mean", "lower", "upper"] and (tp.index == Y.index).all()
    np.testing.assert_allclose(tp["mean"], ml.term_premia[10.0], atol=1e-12)
    assert (tp["lower"] < tp["mean"]).all() and (tp["mean"] < tp["upper"]).all()
    np.testing.assert_allclose(tp.attrs["yield"], ml.fitted[10.0], atol=1e-12)
    ex = expected_excess_returns(ml, [2.0, 10.0], n_draws=200)
    np.testing.assert_allclose(ex[(10.0, "mean")], ml.expected_excess_returns[10.0], atol=1e-12)
    lo, hi = (ex.xs(k, axis=1, level="stat") for k in ("lower", "upper"))
    assert (lo <= hi).all().all()
    # holding period: one-year log excess return against the model's own formula
    ex1 = expected_excess_returns(ml, [10.0], horizon=1.0, kind="log", n_draws=50)
    ref = ml.to_model().expected_excess_return(ml.states.to_numpy(), [10.0], horizon=1.0,
                                               kind="log")
    np.testing.assert_allclose(ex1[(10.0, "mean")], np.asarray(ref)[:, 0], atol=1e-12)


def test_bad_inputs_name_the_problem(ml1):
    ml = ml1[3]
    with pytest.raises(SpecError, match="prob"):
        term_premium(ml, 10, prob=1.5)
    with pytest.raises(DataError, match="maturity"):
        term_premium(ml, -1.0, n_draws=20)
    with pytest.raises(SpecError, match="affine ML fit"):
        term_premium(pd.DataFrame(), 10)
    noseml = affine_ml(ml1[0], n_factors=1, n_starts=1, method="portfolio", weights=ml1[1],
                       se=False)
    with pytest.raises(SpecError, match="se=True"):
        term_premium(noseml, 10)


def _coverage(seeds, T=240, n_draws=300):
    hits = []
    for seed in seeds:
        Y, W, truth = sim1(T, seed)
        ml = affine_ml(Y, n_factors=1, n_starts=1, method="portfolio", weights=W)
        tp = term_premium(ml, 10, prob=0.9, n_draws=n_draws, random_seed=seed)
        b, c = tp_coefficients(truth, [10.0])
        true = (Y.to_numpy() @ W.T) @ b[0] + c[0]
        hits.append(bool(tp["lower"].iloc[-1] <= true[-1] <= tp["upper"].iloc[-1]))
    return np.mean(hits)


def test_ml_band_covers_the_true_term_premium():
    """90% bands at the last date over 12 simulated 20-year curves (truth known)."""
    cov = _coverage(range(100, 112))
    assert cov >= 0.66, cov  # P(Bin(12, 0.9) <= 7) = 0.004


@pytest.mark.validate
def test_ml_band_coverage_many_seeds():
    cov = _coverage(range(200, 320))
    print(f"ML delta-method 90% band, 1 factor, 240 months: coverage {cov:.3f} (120 seeds)")
    assert 0.82 <= cov <= 0.97, cov  # +-2.5 binomial sd around 0.9


@pytest.mark.filterwarnings("ignore::bayesbond.errors.ConvergenceWarning")
def test_bayesian_fit_matches_bands_draw_by_draw():
    """A posterior (stand-in sampler) gives the term premium of AffineModel.bands at 10 years."""
    from bayesbond.bayes import sampling
    from bayesbond.bayes.affine_model import AffineModel
    from tests.baselines.test_affine_ml import simulate
    from tests.bayes.test_affine_model import _fake_sample

    Y = simulate(T=60, seed=3)[0]
    ml = affine_ml(Y, method="portfolio", n_starts=1, se=False)
    mp = pytest.MonkeyPatch()
    mp.setattr(sampling, "sample", _fake_sample(ml, 3))
    try:
        idata = AffineModel(3).fit(Y, draws=10, tune=10, chains=2, random_seed=1,
                                   precondition=False, log_likelihood=False)
    finally:
        mp.undo()
    tp = term_premium(idata, 10, prob=0.8)
    b = AffineModel().bands(idata, prob=0.8)["term_premium"].sel(maturity=10.0)
    np.testing.assert_allclose(tp["mean"], b.sel(stat="mean"), atol=1e-12)
    np.testing.assert_allclose(tp["lower"], b.sel(stat="lower"), atol=1e-12)
    assert tp.attrs["n_draws"] == 20
    ex = expected_excess_returns(idata, [10.0], prob=0.8)
    eb = AffineModel().bands(idata, prob=0.8)["expected_excess_return"].sel(maturity=10.0)
    np.testing.assert_allclose(ex[(10.0, "mean")], eb.sel(stat="mean"), atol=1e-12)


def test_plot_term_premium_band(ml1, tmp_path):
    from bayesbond.workflow import plots

    tp = term_premium(ml1[3], 10, n_draws=100)
    fig = plots.plot_term_premium_band(tp)
    ax1, ax2 = fig.axes
    np.testing.assert_allclose(ax2.get_lines()[0].get_ydata(), tp["mean"] * 100)
    np.testing.assert_allclose(ax1.get_lines()[0].get_ydata(), tp.attrs["yield"] * 100)
    assert "10-year" in ax2.get_ylabel()
    out = plots.save_png(fig, tmp_path / "tp.png")
    assert Path(out).stat().st_size > 10_000
    with pytest.raises(KeyError, match="upper"):
        plots.plot_term_premium_band(tp[["mean", "lower"]])


@pytest.mark.validate
def test_liuwu_ml_term_premium_band(shared_data):
    """Liu-Wu 1990-2022, 3 factors, portfolio ML: the 10-year term premium band at the last date."""
    df = pd.read_csv(shared_data / "liuwu_zcb_monthly_1to360m.csv")
    df.index = pd.to_datetime(df["yyyymm"])
    months = [3, 6, 12, 24, 36, 60, 84, 120]
    Y = df.loc["1990":"2022", [f"m{m}" for m in months]] / 100
    Y.columns = np.array(months) / 12
    ml = affine_ml(Y, n_factors=3, method="portfolio", n_starts=3)
    tp = term_premium(ml, 10, n_draws=1000)
    last = tp.iloc[-1]
    print(f"Liu-Wu ML 10y TP at {tp.index[-1].date()}: {100 * last['mean']:.2f}% "
          f"[{100 * last['lower']:.2f}, {100 * last['upper']:.2f}]")
    assert last["lower"] < last["mean"] < last["upper"]
    assert np.isfinite(tp.to_numpy()).all()

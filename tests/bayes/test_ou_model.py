"""Bayesian OU model: likelihood and gradient against the numpy core and finite differences,
posterior against ML on long simulated samples, 2-D recovery, convergence, DataTree layout."""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla

from bayesbond.baselines.ou_ml import ou_ml
from bayesbond.bayes.ou_model import OUModel, OUStats, ar1_loglik_pt, ou_loglik_grad
from bayesbond.bayes.sampling import diagnostics
from bayesbond.core import linalg
from bayesbond.core.ou import OU, transition_loglik
from bayesbond.errors import DataError, SpecError

DT = 1 / 12
A_DEF = np.array([[-0.7, 1.0], [0.0, -0.7]])  # defective (Jordan block)
a2 = np.array([0.02, 0.01])
S2 = np.array([[0.02, 0.0], [0.005, 0.01]])


def _fd_grad(f, x, h):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def test_pytensor_expm_gradient_on_defective_matrix():
    """PyTensor's expm gradient (wrong for defective matrices before mid-2026) vs finite
    differences of scipy's expm."""
    import pytensor
    import pytensor.tensor as pt

    A = np.array([[-0.7, 1.0, 0.0], [0.0, -0.7, 1.0], [0.0, 0.0, -0.7]])
    W = np.arange(9.0).reshape(3, 3) - 4.0
    At = pt.dmatrix("A")
    f = pt.sum(pt.linalg.expm(At) * W)
    fn = pytensor.function([At], pytensor.grad(f, At), mode="FAST_COMPILE")
    num = _fd_grad(lambda M: np.sum(sla.expm(M) * W), A, 1e-6)
    np.testing.assert_allclose(fn(A), num, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("stationary_init", [False, True])
def test_nd_loglik_and_gradient_match_core_and_finite_differences(stationary_init):
    X = OU(A_DEF, a2, S2).simulate(None, n_steps=300, dt=DT, rng=1)[0]
    st = OUStats(X)
    V = S2 @ S2.T
    ll, dA, da, dV = ou_loglik_grad(A_DEF, a2, V, st, DT, stationary_init)
    assert ll == pytest.approx(transition_loglik(X, DT, A_DEF, a2, V, stationary_init), rel=1e-12)
    f = lambda A_, a_, V_: transition_loglik(X, DT, A_, a_, V_, stationary_init)  # noqa: E731
    np.testing.assert_allclose(dA, _fd_grad(lambda M: f(M, a2, V), A_DEF, 1e-6), rtol=1e-5)
    np.testing.assert_allclose(da, _fd_grad(lambda v: f(A_DEF, v, V), a2, 1e-6), rtol=1e-5)
    np.testing.assert_allclose(dV, _fd_grad(lambda M: f(A_DEF, a2, M), V, 1e-8), rtol=1e-5)


@pytest.mark.parametrize("irregular", [False, True])
@pytest.mark.parametrize("stationary_init", [False, True])
def test_1d_loglik_graph_matches_core(irregular, stationary_init):
    import pytensor
    import pytensor.tensor as pt

    ou = OU.vasicek(0.5, 0.04, 0.01)
    x = ou.simulate(0.03, n_steps=200, dt=DT, rng=2)[0]
    dt = np.random.default_rng(0).uniform(0.01, 0.2, 200) if irregular else DT
    k, th, sg = pt.dscalars("k", "th", "sg")
    expr = ar1_loglik_pt(k, th, sg, x, dt, stationary_init)
    fn = pytensor.function([k, th, sg], [expr, *pytensor.grad(expr, [k, th, sg])],
                           mode="FAST_COMPILE")
    val, *grad = fn(0.5, 0.04, 0.01)
    f = lambda p: transition_loglik(x, dt, -p[0], p[0] * p[1], p[2] ** 2,  # noqa: E731
                                    stationary_init)
    p0 = np.array([0.5, 0.04, 0.01])
    assert val == pytest.approx(f(p0), rel=1e-12)
    np.testing.assert_allclose(grad, _fd_grad(f, p0, 1e-7), rtol=1e-5)


def test_full_A_parameterisation_reaches_any_stable_matrix():
    """A = (J - I/2) R R' with J skew, R lower triangular: recover (J, R) for a non-normal stable
    matrix whose symmetric part is indefinite (not reachable by A = -(LL' + skew))."""
    A = np.array([[-1.0, 3.0, 0.0], [0.0, -0.5, 2.0], [0.0, 0.0, -0.25]])
    assert np.max(np.linalg.eigvalsh(A + A.T)) > 0
    X = linalg.solve_lyapunov(A, np.eye(3))
    R = np.linalg.cholesky(np.linalg.inv(X))
    J = A @ X + 0.5 * np.eye(3)
    np.testing.assert_allclose(J, -J.T, atol=1e-12)
    np.testing.assert_allclose((J - 0.5 * np.eye(3)) @ R @ R.T, A, atol=1e-12)


# ---------------------------------------------------------------------------- posterior checks
@pytest.fixture(scope="module")
def fit_1d():
    truth = OU.vasicek(3.0, 0.05, 0.02)
    x = truth.simulate(0.05, n_steps=30_000, dt=DT, rng=3)[0]
    s = pd.Series(x, index=pd.date_range("1900-01-31", periods=len(x), freq="ME"), name="r")
    idata = OUModel().fit(s, DT, draws=1000, tune=600, chains=2, random_seed=11,
                          log_likelihood=False)
    return s, idata


def test_1d_posterior_means_match_ml_within_a_tenth_of_an_sd(fit_1d):
    s, idata = fit_1d
    ml = ou_ml(s, DT)
    post = idata["posterior"]
    for name in ("kappa", "theta", "sigma"):
        draws = post[name].values
        assert abs(draws.mean() - getattr(ml, name)) < 0.1 * draws.std(), name
        # the posterior SD reproduces the ML standard error (large sample)
        assert draws.std() == pytest.approx(ml.se[name], rel=0.15), name
    d = diagnostics(idata, ["kappa", "theta", "sigma"])
    assert d.max_rhat <= 1.01 and d.divergences == 0 and d.ok
    np.testing.assert_allclose(post["half_life"].values, np.log(2) / post["kappa"].values)
    np.testing.assert_allclose(post["stationary_var"].values,
                               post["sigma"].values ** 2 / (2 * post["kappa"].values))
    assert "log_likelihood" not in idata.children
    assert idata["observed_data"]["x"].dims == ("date", "state")
    assert str(idata["observed_data"]["date"].values[0])[:10] == "1900-01-31"
    assert '"family": "OUModel"' in idata.attrs["model"]


@pytest.fixture(scope="module")
def fit_2d():
    # the n-D likelihood Op runs in numba's object mode: several minutes on a loaded 2-core
    # machine, so the 2-D fits are validation tests
    truth = OU(np.array([[-0.8, 0.4], [0.1, -0.3]]), a2, S2)
    x = pd.DataFrame(truth.simulate(None, n_steps=3000, dt=DT, rng=1)[0], columns=["r", "x"])
    idata = OUModel(n=2).fit(x, DT, draws=500, tune=500, chains=2, random_seed=5)
    return truth, x, idata


@pytest.mark.validate
def test_2d_recovery_and_agreement_with_ml(fit_2d):
    truth, x, idata = fit_2d
    ml = ou_ml(x, DT)
    post = idata["posterior"]
    assert post["A"].dims == ("chain", "draw", "state", "state2")
    assert list(post["state"].values) == ["r", "x"]
    true = {"A": truth.A, "a": truth.a, "Sigma": np.linalg.cholesky(truth.V)}
    for name in ("A", "a", "Sigma"):
        m = post[name].mean(("chain", "draw")).values
        sd = post[name].std(("chain", "draw")).values
        free = sd > 0
        assert np.all(np.abs(m - true[name])[free] < 4 * sd[free]), name
        assert np.all(np.abs(m - getattr(ml, name))[free] < 0.5 * sd[free]), name
    assert np.all(np.linalg.eigvals(post["A"].values.reshape(-1, 2, 2)).real < 0)
    np.testing.assert_allclose(post["mu"].mean(("chain", "draw")).values, ml.mu, atol=0.01)
    d = diagnostics(idata, ["A_chol_diag", "A_chol_offdiag", "A_skew", "mu_std"])
    assert d.max_rhat <= 1.01 and d.divergences == 0


@pytest.mark.validate
def test_2d_pointwise_log_likelihood_sums_to_core(fit_2d):
    _, x, idata = fit_2d
    ll = idata["log_likelihood"]["x"]
    assert ll.dims == ("chain", "draw", "date") and ll.sizes["date"] == len(x) - 1
    post = idata["posterior"]
    for c, d in [(0, 0), (1, 17)]:
        A = post["A"].values[c, d]
        a = post["a"].values[c, d]
        L = post["Sigma"].values[c, d]
        ref = transition_loglik(x.to_numpy(), DT, A, a, L @ L.T)
        assert float(ll.values[c, d].sum()) == pytest.approx(ref, rel=1e-10)
    P = post["stationary_cov"].values[0, 0]
    A = post["A"].values[0, 0]
    L = post["Sigma"].values[0, 0]
    assert np.max(np.abs(A @ P + P @ A.T + L @ L.T)) < 1e-14


def test_spec_and_data_errors():
    with pytest.raises(SpecError, match="unknown restriction 'A'"):
        OUModel(n=1, restrictions={"A": "diagonal"})
    with pytest.raises(SpecError, match="restrictions\\['A'\\]"):
        OUModel(n=2, restrictions={"A": "banded"})
    with pytest.raises(SpecError, match="unknown prior key 'tau'"):
        OUModel(priors={"tau": 1.0})
    with pytest.raises(SpecError, match="mean"):
        OUModel(n=2, restrictions={"mean": [0.0]})
    with pytest.raises(DataError, match=r"n=2\) got data with 1 column"):
        OUModel(n=2).build(np.arange(10.0), DT)
    with pytest.raises(SpecError, match="regular grid"):
        OUModel(n=2).build(np.ones((10, 2)), np.full(9, 0.1) * np.arange(1, 10))


# ---------------------------------------------------------------------------- validation (slow)
@pytest.mark.validate
def test_1d_interval_coverage():
    """90% posterior intervals cover the truth in about 90% of 40 simulated 30-year samples."""
    truth = OU.vasicek(0.8, 0.05, 0.015)
    hits = np.zeros(3)
    R = 40
    for r in range(R):
        x = truth.simulate(None, n_steps=360, dt=DT, rng=100 + r)[0]
        post = OUModel(priors={"kappa": (np.log(0.8), 1.0)}).fit(
            x, DT, draws=500, tune=500, chains=2, random_seed=r, log_likelihood=False,
        )["posterior"]
        for i, name in enumerate(("kappa", "theta", "sigma")):
            lo, hi = np.quantile(post[name].values, [0.05, 0.95])
            hits[i] += lo <= getattr(truth, name) <= hi
    assert np.all(hits >= 0.75 * R) and np.all(hits <= R)


@pytest.mark.validate
@pytest.mark.parametrize("restrictions", [{"A": "upper"}, {"A": "diagonal", "Sigma": "diagonal"}])
def test_2d_restricted_recovery(restrictions):
    A = np.array([[-1.0, 0.5], [0.0, -0.3]]) if restrictions["A"] == "upper" else \
        np.diag([-1.0, -0.3])
    S = np.diag([0.02, 0.01]) if restrictions.get("Sigma") == "diagonal" else S2
    truth = OU(A, -A @ np.array([0.05, 0.03]), S)
    x = truth.simulate(None, n_steps=4000, dt=DT, rng=9)[0]
    idata = OUModel(n=2, restrictions=restrictions, stationary_init=True).fit(
        x, DT, draws=600, tune=600, chains=2, random_seed=2)
    post = idata["posterior"]
    for name, true in (("A", A), ("Sigma", S), ("mu", np.array([0.05, 0.03]))):
        m = post[name].mean(("chain", "draw")).values
        sd = post[name].std(("chain", "draw")).values
        free = sd > 0
        assert np.all(np.abs(m - true)[free] < 4 * sd[free]), name
    assert diagnostics(idata).max_rhat <= 1.01


def test_nd_model_samples_with_pymc_by_default():
    """The n-D likelihood is a Python Op, which nutpie's numba backend runs in object mode (about
    16x slower): fit(sampler=None) picks PyMC's sampler for n > 1 and nutpie for 1-D."""
    from bayesbond.bayes import base

    assert OUModel(2).default_sampler == "pymc" and OUModel(1).default_sampler == "nutpie"
    assert base.BayesianModel.default_sampler == "nutpie"
    seen = {}

    class Probe(OUModel):
        def draw(self, prepared, options, **kw):
            seen["sampler"] = kw["sampler"]
            raise RuntimeError("stop")

    x = np.cumsum(np.random.default_rng(0).standard_normal((60, 2)) * 0.01, axis=0)
    for n, want, data in ((2, "pymc", x), (1, "nutpie", x[:, 0])):
        with pytest.raises(RuntimeError, match="stop"):
            Probe(n).fit(data, dt=1 / 12, draws=10, tune=10, chains=1, progressbar=False)
        assert seen["sampler"] == want
    with pytest.raises(RuntimeError, match="stop"):
        Probe(2).fit(x, dt=1 / 12, draws=10, tune=10, chains=1, sampler="nutpie",
                     progressbar=False)
    assert seen["sampler"] == "nutpie"

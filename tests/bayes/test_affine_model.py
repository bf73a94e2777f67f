"""Bayesian affine model: PyTensor pieces against numpy, likelihood = ML's, simulated recovery."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sla

from bayesbond.baselines.affine_ml import affine_ml, portfolio_loglik
from bayesbond.bayes.affine_model import (
    AffineModel,
    _hurwitz_margins,
    _initvals,
    _laplace,
    expm_pt,
)
from bayesbond.bayes.sampling import diagnostics
from bayesbond.errors import SpecError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "baselines"))
from test_affine_ml import TRUE, simulate  # noqa: E402


def test_expm_pt_matches_scipy_and_has_exact_gradient():
    import pytensor
    import pytensor.tensor as pt

    M = pt.dmatrix("M")
    E = expm_pt(M)
    f = pytensor.function([M], [E, pytensor.grad(E[0, 1] + E[2, 0], M)], mode="FAST_COMPILE")
    rng = np.random.default_rng(3)
    for scale in (0.05, 0.3, 1.5):
        A = scale * rng.standard_normal((3, 3))
        val, grad = f(A)
        np.testing.assert_allclose(val, sla.expm(A), rtol=1e-11, atol=1e-14)
        # directional derivative by Frechet derivative (scipy.linalg.expm_frechet)
        Gm = np.zeros((3, 3))
        Gm[0, 1] = Gm[2, 0] = 1.0
        fd = np.array(
            [
                [
                    np.sum(
                        sla.expm_frechet(A, np.eye(3)[:, [i]] @ np.eye(3)[[j]], compute_expm=False)
                        * Gm
                    )
                    for j in range(3)
                ]
                for i in range(3)
            ]
        )
        np.testing.assert_allclose(grad, fd, rtol=1e-9, atol=1e-12)
    # defective matrix (Jordan block): still exact
    J = np.array([[-0.5, 1.0, 0.0], [0.0, -0.5, 1.0], [0.0, 0.0, -0.5]])
    np.testing.assert_allclose(f(J)[0], sla.expm(J), rtol=1e-12)


@pytest.fixture(scope="module")
def sim():
    Y, X, W, can, a = simulate(T=150, seed=3)
    return Y, W, can, a


def _scale(Y, W, stationary):
    return (Y.to_numpy() @ W.T).std(axis=0) if stationary else None


@pytest.mark.parametrize("stationary", [True, False])
def test_model_likelihood_equals_ml_portfolio_likelihood(sim, stationary):
    Y, W, can, a = sim
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=False)
    model = AffineModel(3, stationary=stationary).build(Y, weights=W)
    logp = model.compile_logp(vars=model.observed_RVs, sum=True, mode="FAST_COMPILE")
    point = {
        model.rvs_to_values[v].name: np.asarray(val, float)
        for v, val in ((model[k], x)
                       for k, x in _initvals(ml, 3, _scale(Y, W, stationary)).items())
    }
    Yv = Y.to_numpy()
    assert logp(point) == pytest.approx(
        portfolio_loglik(ml.theta, ml.spec, Yv, Yv @ W.T), rel=1e-10
    )
    assert ml.loglik == pytest.approx(logp(point), rel=1e-10)


def test_bad_spec():
    with pytest.raises(SpecError, match="1, 2 or 3"):
        AffineModel(4)
    with pytest.raises(SpecError, match="unknown prior keys"):
        AffineModel(3, priors={"sigma_ee": 1.0})
    with pytest.raises(SpecError, match="identification"):
        AffineModel(3, identification="efm")


def _flat(model_obj, point):
    return np.concatenate([np.ravel(point[k]) for k, _ in model_obj.free_])


@pytest.mark.parametrize("stationary", [True, False])
def test_laplace_preconditioner_is_the_hessian_of_the_model_log_posterior(sim, stationary):
    """The numpy Laplace precision (ML Hessian + prior precisions + stability factor) equals the
    Hessian of the PyMC model's log posterior (exact PyTensor gradient, central differences) at
    the ML point."""
    Y, W, can, a = sim
    m = AffineModel(3, stationary=stationary)
    model = m.build(Y, weights=W)
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=False)
    sc = _scale(Y, W, stationary)
    theta_hat, H = _laplace(ml, m.data_["Y"], m.prior_sd_, sc)
    np.testing.assert_allclose(theta_hat, _flat(m, _initvals(ml, 3, sc)), rtol=1e-12)
    names = [k for k, _ in m.free_]
    dlogp = model.compile_dlogp(vars=[model[k] for k in names], jacobian=False, mode="CVM")

    def point(x):
        out, off = {}, 0
        for k, sh in m.free_:
            size = int(np.prod(sh, dtype=int))
            out[k] = x[off : off + size].reshape(sh)
            off += size
        return out

    d = len(theta_hat)
    Hn = np.empty((d, d))
    for i in range(d):
        h = 1e-6 * max(1.0, abs(theta_hat[i]))
        e = np.zeros(d)
        e[i] = h
        Hn[:, i] = -(dlogp(point(theta_hat + e)) - dlogp(point(theta_hat - e))) / (2 * h)
    Hn = 0.5 * (Hn + Hn.T)
    # relative spectrum of H^-1 Hn: 1 up to the finite-difference error of the ML Hessian (second
    # differences of function values, step 1e-4: about 0.4%; 7.7% without the stability
    # factor)
    C = np.linalg.cholesky(H)
    rel = np.linalg.eigvalsh(np.linalg.solve(C, np.linalg.solve(C, Hn).T))
    assert rel.min() > 0.99 and rel.max() < 1.01, (rel.min(), rel.max())


@pytest.mark.parametrize("stationary", [True, False])
def test_preconditioned_model_has_the_same_log_posterior(sim, stationary):
    """theta = theta_hat + L z is an affine change of variables: logp(z) = logp(theta) + const,
    with the same constant at every point."""
    Y, W, can, a = sim
    m = AffineModel(3, stationary=stationary)
    raw = m.build(Y, weights=W)
    rng = np.random.default_rng(0)
    d = int(sum(np.prod(sh, dtype=int) for _, sh in m.free_))
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=False)
    theta_hat = _flat(m, _initvals(ml, 3, _scale(Y, W, stationary)))
    L = np.tril(0.01 * rng.standard_normal((d, d))) + 0.05 * np.eye(d)
    pre = m.build(Y, weights=W, precondition=(theta_hat, L))
    f_raw = raw.compile_logp(mode="FAST_COMPILE")
    f_pre = pre.compile_logp(mode="FAST_COMPILE")
    diffs = []
    for _ in range(3):
        z = rng.standard_normal(d)
        th = theta_hat + L @ z
        pt_raw, off = {}, 0
        for k, sh in m.free_:
            size = int(np.prod(sh, dtype=int))
            pt_raw[raw.rvs_to_values[raw[k]].name] = th[off : off + size].reshape(sh)
            off += size
        diffs.append(f_pre({"z_laplace": z}) - f_raw(pt_raw))
    np.testing.assert_allclose(diffs, 0.0, atol=1e-8)


@pytest.mark.validate
def test_bayesian_recovery_on_a_simulated_curve():
    """Posterior from a curve simulated by the model (400 months, the portfolios priced exactly,
    errors in their complement as the likelihood assumes): the true P* eigen-parameters, k_inf,
    Sigma, sigma_e and A, a lie in their 99% intervals (at most one of the 23 outside);
    posterior means agree with ML within 3 ML standard errors; R-hat <= 1.01 and no divergences
    (about 5 minutes)."""
    Y, X, W, can, a = simulate(T=400, seed=5)
    rng = np.random.default_rng(55)  # (one of the 23 values, Sigma[2, 0], falls just outside)
    P_perp = np.eye(W.shape[1]) - W.T @ W
    noise = TRUE["sigma_e"] * rng.standard_normal(Y.shape) @ P_perp
    Y = Y.copy()
    Y.iloc[:, :] = can.d + X @ can.Z.T + noise
    m = AffineModel(3)
    # the slowest P* eigenvalue and k_inf form a curved ridge on this curve (bulk ESS of about 100
    # per 1,000 draws at target_accept 0.95, 2 divergences): longer chains and smaller steps
    idata = m.fit(Y, weights=W, draws=1500, tune=1000, chains=4, random_seed=4,
                  target_accept=0.98)
    d = diagnostics(idata, [k for k, _ in m.free_])
    assert d.max_rhat <= 1.01 and d.divergences == 0, str(d)
    post = idata["posterior"]
    truth = {
        "eig_raw": TRUE["raw"],
        "k_inf": TRUE["k_inf"],
        "Sigma": TRUE["Sigma"],
        "A": TRUE["A"],
        "a": -TRUE["A"] @ TRUE["mu"],
        "sigma_e": TRUE["sigma_e"],
    }
    inside = []
    for k, v in truth.items():
        lo = post[k].quantile(0.005, dim=("chain", "draw")).values
        hi = post[k].quantile(0.995, dim=("chain", "draw")).values
        v = np.broadcast_to(v, lo.shape)
        free = hi > lo  # (the zeros above the diagonal of Sigma are not parameters)
        inside += list(((lo <= v) & (v <= hi))[free])
    # 23 free values at 99% each: P(2 or more outside | calibrated) is about 2.2%
    assert len(inside) == 23 and sum(not x for x in inside) <= 1, inside
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=True)
    table = m.side_by_side(ml, idata)
    table = table[table["ml_se"] > 0]  # (fixed values such as the zero imaginary part drop out)
    assert len(table) > 20
    assert table["z"].abs().max() < 3.0, table.sort_values("z")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_hurwitz_margins_are_positive_exactly_for_stable_matrices(n):
    import pytensor
    import pytensor.tensor as pt

    A_ = pt.dmatrix("A")
    f = pytensor.function([A_], pt.stack(_hurwitz_margins(A_, n)), mode="FAST_COMPILE")
    rng = np.random.default_rng(n)
    for _ in range(300):
        A = rng.standard_normal((n, n)) * rng.uniform(0.05, 2.0) - rng.uniform(0, 1) * np.eye(n)
        stable = np.linalg.eigvals(A).real.max() < 0
        assert (f(A).min() > 0) == stable, (A, np.linalg.eigvals(A))
    if n == 3:
        # a complex pair al +- i be next to the axis: third margin ~ -2 al / (2 width)
        for al in (-0.01, 0.01):
            T = rng.standard_normal((3, 3))
            A = T @ np.array([[-1.0, 0, 0], [0, al, 0.5], [0, -0.5, al]]) @ np.linalg.inv(T)
            assert f(A)[2] == pytest.approx(-2 * al / 0.04, rel=0.25)


@pytest.mark.validate
def test_liuwu_posterior_agrees_with_ml(shared_data):
    """Liu-Wu 1990-2022, 8 maturities, 3 factors, 4 chains x 1000 draws: R-hat <= 1.01, no
    divergences, and every posterior mean within one ML standard error of the ML estimate."""
    from bayesbond.data.readers import read_liuwu

    curve = read_liuwu(shared_data / "liuwu_zcb_monthly_1to360m.csv")
    mats = [0.25, 0.5, 1, 2, 3, 5, 7, 10]
    cols = [c for c in curve.columns if any(abs(c - m) < 1e-9 for m in mats)]
    Y = curve.loc["1990":"2022", cols]
    ml = affine_ml(Y, n_factors=3, method="portfolio", n_starts=3, se=True)
    m = AffineModel(3)
    idata = m.fit(Y, draws=1000, tune=1000, chains=4, random_seed=20261122)
    d = diagnostics(idata, [k for k, _ in m.free_])
    assert d.max_rhat <= 1.01 and d.divergences == 0, str(d)
    table = m.side_by_side(ml, idata)
    table = table[table["ml_se"] > 0]
    assert len(table) > 40
    assert table["z"].abs().max() < 1.0, table.sort_values("z")
    b = m.bands(idata, max_draws=200)
    rmse_bp = 1e4 * float(np.sqrt(((b["fitted"].sel(stat="mean").values - Y.to_numpy()) ** 2)
                                  .mean()))
    assert rmse_bp < 10.0


def _fake_sample(ml, n):
    """A stand-in for bayesbond.bayes.sampling.sample: 2 chains x 10 draws scattered around the ML
    estimate (compiling and running NUTS takes minutes on a shared machine; the real sampler is
    exercised by test_tiny_real_fit_round_trips below, marked validate)."""
    import xarray as xr

    from bayesbond.baselines.affine_result import factor_names

    def fake(model, *, draws, chains, random_seed=None, model_name="", **kw):
        rng = np.random.default_rng(random_seed)
        names = factor_names(n)
        C, D = chains, draws

        def jitter(x, sd):
            x = np.asarray(x, float)
            return x[None, None] + sd * rng.standard_normal((C, D, *x.shape))

        Sig = jitter(ml.Sigma, 1e-4) * np.tril(np.ones((n, n)))
        post = xr.Dataset(
            {"eig_raw": (("chain", "draw", "eig_param"), jitter(ml.params["eig_raw"], 0.01)),
             "k_inf": (("chain", "draw"), jitter(ml.k_inf, 1e-4)),
             "Sigma": (("chain", "draw", "state", "state2"), Sig),
             "A": (("chain", "draw", "state", "state2"), jitter(ml.A, 0.01)),
             "a": (("chain", "draw", "state"), jitter(ml.a, 1e-4))},
            coords={"chain": np.arange(C), "draw": np.arange(D), "state": names,
                    "state2": names})
        tree = xr.DataTree.from_dict({"posterior": post})
        tree.attrs["model"] = model_name
        return tree

    return fake


@pytest.fixture(scope="module")
def tiny_fit(sim, tmp_path_factory):
    """A fit of 60 months through AffineModel.fit (with a stand-in sampler), saved and loaded."""
    import bayesbond as bb
    from bayesbond.bayes import sampling

    Y, W, can, a = sim
    Y = Y.iloc[:60]
    ml = affine_ml(Y, method="portfolio", n_starts=1, se=False)
    m = AffineModel(3)
    mp = pytest.MonkeyPatch()
    mp.setattr(sampling, "sample", _fake_sample(ml, 3))
    try:
        idata = m.fit(Y, draws=10, tune=10, chains=2, random_seed=1, precondition=False,
                      log_likelihood=False)  # the stand-in draws no raw variables
    finally:
        mp.undo()
    path = tmp_path_factory.mktemp("affine") / "fit.nc"
    bb.save(idata, path)
    return Y, m, idata, bb.load(path)


@pytest.mark.validate
def test_tiny_real_fit_round_trips(sim, tmp_path):
    """The real sampler (1 chain x 20 draws, about 8 minutes on 2 shared cores, mostly compiling):
    bands of the loaded fit on every date."""
    import warnings

    import bayesbond as bb

    Y = sim[0].iloc[:60]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 20 draws do not pass the convergence check
        idata = AffineModel(3).fit(Y, draws=20, tune=20, chains=1, random_seed=1)
    bb.save(idata, tmp_path / "fit.nc")
    b = AffineModel().bands(bb.load(tmp_path / "fit.nc"), max_draws=20)
    assert (b["fitted"]["date"].to_index() == Y.index).all()
    err = b["fitted"].sel(stat="mean").values - Y.to_numpy()
    assert np.sqrt((err**2).mean()) < 5e-4  # the simulated curve has 5 bp pricing errors


def test_bands_from_a_loaded_fit_cover_every_observed_date(tiny_fit):
    """AffineModel().bands(bb.load(path)) works without fit()/build(), on all T observed dates,
    and equals the bands of the fitted object; the fitted yields of each draw are d + Z W y_t by
    the closed forms (checked against an independent draw-by-draw evaluation)."""
    from bayesbond.core.affine_canonical import canonical, eigen_from_raw

    Y, m, idata, loaded = tiny_fit
    b = AffineModel().bands(loaded)
    assert b["fitted"].sizes == {"stat": 3, "date": 60, "maturity": Y.shape[1]}
    assert (b["fitted"]["date"].to_index() == Y.index).all()
    np.testing.assert_allclose(b["fitted"]["maturity"], Y.columns.to_numpy(float))
    ref = m.bands(idata)
    for k in ("fitted", "term_premium", "expected_excess_return"):
        np.testing.assert_allclose(b[k].values, ref[k].values, rtol=1e-12, atol=1e-15)
    # the posterior mean of the fitted yields by an independent loop over the draws
    post = loaded["posterior"]
    W = loaded["constant_data"]["portfolio_weights"].values  # (the model object keeps no fit)
    tau = Y.columns.to_numpy(float)
    draws = []
    for c, d in np.ndindex(2, 10):
        p = post.isel(chain=c, draw=d)
        S = p["Sigma"].values
        c = canonical(np, eigen_from_raw(np, p["eig_raw"].values, 3), float(p["k_inf"]),
                      S @ S.T, W, tau)
        draws.append(c.d + Y.to_numpy() @ W.T @ c.Z.T)
    np.testing.assert_allclose(b["fitted"].sel(stat="mean").values, np.mean(draws, 0),
                               rtol=1e-10)
    lo, mid, hi = (b["term_premium"].sel(stat=s).values for s in ("lower", "mean", "upper"))
    assert (lo <= mid + 1e-15).all() and (mid <= hi + 1e-15).all()
    # the stored data
    const = loaded["constant_data"]
    np.testing.assert_allclose(const["yields"].values, Y.to_numpy(), rtol=0, atol=0)
    assert float(const["dt"]) == pytest.approx(1 / 12)
    # side_by_side from a loaded fit with a default-constructed object
    ml = affine_ml(Y, method="portfolio", weights=W, n_starts=1, se=False)
    table = AffineModel().side_by_side(ml, loaded)
    assert len(table) > 20 and "A[level,level]" in table.index


def test_bands_name_what_is_missing(tiny_fit):
    Y, m, idata, loaded = tiny_fit
    old = loaded.copy()
    del old["constant_data"]
    with pytest.raises(SpecError, match="constant_data.yields"):
        AffineModel().bands(old)
    with pytest.raises(SpecError, match="needs a fit"):
        AffineModel().bands()
    with pytest.raises(SpecError, match="prob"):
        AffineModel().bands(loaded, prob=94)


def _liuwu(shared_data, start="1990", end="2022"):
    import pandas as pd

    df = pd.read_csv(shared_data / "liuwu_zcb_monthly_1to360m.csv")
    df.index = pd.to_datetime(df["yyyymm"])
    months = [3, 6, 12, 24, 36, 60, 84, 120]
    Y = df.loc[start:end, [f"m{m}" for m in months]] / 100
    Y.columns = np.array(months) / 12
    return Y


def _check_stationary_fit(idata):
    lam = idata["posterior"]["lam_P"].values
    d = diagnostics(idata, var_names=["A", "a", "eig_raw", "k_inf", "Sigma"])
    return int((lam >= 0).sum()), d


@pytest.mark.validate
@pytest.mark.parametrize("case", ["liuwu", "near_unit_root"])
def test_stationary_fit_has_no_explosive_draws(case, request):
    """stationary=True: zero draws with a P eigenvalue >= 0, R-hat <= 1.01, no divergences, on
    Liu-Wu 1990-2022 and on a simulated curve whose slowest P speed is 0.005 a year."""
    if case == "liuwu":
        Y = _liuwu(request.getfixturevalue("shared_data"))
    else:
        import test_affine_ml as tam

        old = tam.TRUE["A"].copy()
        tam.TRUE["A"] = np.array([[-0.005, 0.3, 0.1], [0.0, -0.6, 0.2], [0.0, 0.1, -1.2]])
        try:
            Y = tam.simulate(T=300, seed=11)[0]
        finally:
            tam.TRUE["A"] = old
    idata = AffineModel(3).fit(Y, draws=500, tune=500, chains=4, random_seed=1)
    n_explosive, d = _check_stationary_fit(idata)
    lam = idata["posterior"]["lam_P"].sel(eigen=1).values.ravel()
    print(f"{case}: slowest P eigenvalue median {np.median(lam):.4f} "
          f"[{np.quantile(lam, 0.03):.4f}, {np.quantile(lam, 0.97):.4f}], explosive draws "
          f"{n_explosive}, max R-hat {d.max_rhat:.4f}, divergences {d.divergences}")
    assert n_explosive == 0
    assert d.max_rhat <= 1.01 and d.divergences == 0

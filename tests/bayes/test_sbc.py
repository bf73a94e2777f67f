"""Simulation-based calibration of every Bayesian family (runner: ``tests/sbc.py``).

Fast versions (few replicates) run in ``make test``: they check the plumbing (compile reuse,
ranks in range, no gross miscalibration); the ``validate`` versions run enough replicates for
the chi-square test of rank uniformity to have power, and print their figures.

Every case fixes its priors so that the prior drawn from is the prior the model uses (the
families' defaults are scaled by the data); see the notes of each case.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesbond as bb
from tests.sbc import run_sbc

# ------------------------------------------------------------------ hierarchical factor model
FACTOR_PRIORS = {"alpha_scale": 0.004, "beta_mean": [0.5, 0.0], "beta_scale": [0.5, 0.5],
                 "tau_alpha": 0.002, "tau_beta": [0.3, 0.3], "log_sigma_mean": float(np.log(0.01)),
                 "log_sigma_sd": 0.3, "tau_log_sigma": 0.3, "nu_alpha": 4.0, "nu_beta": 0.4}
GROUPS = ("IG+", "HY")
FACTORS = ("CMKT", "TERM")


def _factor_prior(rng):
    """Group parameters from the fixed priors (HalfNormal(s) = |N(0, s)|)."""
    p, G, K = FACTOR_PRIORS, len(GROUPS), len(FACTORS)
    return {
        "mu_alpha": rng.normal(0.0, p["alpha_scale"], G),
        "mu_beta": rng.normal(p["beta_mean"], p["beta_scale"], (G, K)),
        "tau_alpha": np.abs(rng.normal(0.0, p["tau_alpha"], G)),
        "tau_beta": np.abs(rng.normal(0.0, p["tau_beta"], (G, K))),
        "mu_log_sigma": rng.normal(p["log_sigma_mean"], p["log_sigma_sd"], G),
        "tau_log_sigma": np.abs(rng.normal(0.0, p["tau_log_sigma"], G)),
    }


def _factor_story(n_bonds, n_dates, errors="normal"):
    """The model's generative story given the group parameters: bond coefficients and log
    scales around their group's, then ``R = alpha + F beta + sigma eps`` (eps N(0, 1) or
    Student-t with ``nu`` from its Gamma prior). ``F`` is drawn afresh (the model is of R | F).
    Adds the bond-level truths (alpha, beta, sigma) to the ranked values."""
    dates = pd.date_range("2005-01-31", periods=n_dates, freq="ME", name="date")
    bonds = [f"B{j:02d}" for j in range(n_bonds)]
    gi = np.arange(n_bonds) % len(GROUPS)
    groups = pd.Series(np.array(GROUPS)[gi], index=bonds)

    def simulate(truth, rng):
        F = rng.normal([0.004, 0.001], [0.03, 0.02], (n_dates, len(FACTORS)))
        alpha = rng.normal(truth["mu_alpha"][gi], truth["tau_alpha"][gi])
        beta = rng.normal(truth["mu_beta"][gi], truth["tau_beta"][gi])
        sigma = np.exp(rng.normal(truth["mu_log_sigma"][gi], truth["tau_log_sigma"][gi]))
        if errors == "normal":
            eps = rng.normal(size=(n_dates, n_bonds))
        else:
            truth["nu"] = rng.gamma(FACTOR_PRIORS["nu_alpha"], 1.0 / FACTOR_PRIORS["nu_beta"])
            eps = rng.standard_t(truth["nu"], size=(n_dates, n_bonds))
        truth.update(alpha=alpha, beta=beta, sigma=sigma)
        R = pd.DataFrame(alpha + F @ beta.T + sigma * eps, index=dates, columns=bonds)
        return R, pd.DataFrame(F, index=dates, columns=list(FACTORS)), groups

    return simulate


def _factor_fit(errors="normal", draws=400, tune=400, target_accept=0.95):
    model = bb.FactorModel(list(FACTORS), errors=errors, priors=FACTOR_PRIORS)

    def fit(data, seed):
        R, F, groups = data
        return model.fit(R, F, groups=groups, draws=draws, tune=tune, chains=2,
                         random_seed=seed, target_accept=target_accept, progressbar=False,
                         log_likelihood=False)

    return fit


def _check(res, alpha=0.01, reuse=True):
    """Print the figures; every fit after the first reused the compile (nutpie's compile cache:
    ``reuse=False`` for a family sampled by PyMC, whose compiled functions come from PyTensor's
    own cache); ranks uniform (Bonferroni over the parameters)."""
    print("\n" + res.summary())
    assert not reuse or all(res.reused[1:]), res.reused
    ps = res.pvalues()
    assert min(ps.values()) > alpha / len(ps), ps


def _factor_sbc(reps, errors="normal", n_bonds=12, n_dates=60, seed=1, **kw):
    return run_sbc(f"FactorModel(hierarchical, {errors})", _factor_prior,
                   _factor_story(n_bonds, n_dates, errors), _factor_fit(errors, **kw), reps,
                   seed=seed)


@pytest.mark.slow
def test_sbc_hierarchical_factor_model_fast():
    res = _factor_sbc(4, draws=150, tune=250, n_dates=48)
    _check(res, alpha=0.001)


@pytest.mark.validate
def test_sbc_hierarchical_factor_model():
    res = _factor_sbc(100)
    _check(res)
    assert sum(res.divergences) <= 0.01 * res.reps * 800, res.divergences


# ------------------------------------------------------------------ Student-t factor model
# nu ~ Gamma(4, 0.4) (prior mean 10) instead of the default Gamma(2, 0.1): a fixed prior like
# any other; the default's mass below nu = 2 gives errors without a variance.
@pytest.mark.slow
def test_sbc_student_t_factor_model_fast():
    res = _factor_sbc(3, errors="student_t", n_bonds=8, n_dates=48, draws=150, tune=250)
    _check(res, alpha=0.001)


@pytest.mark.validate
def test_sbc_student_t_factor_model():
    res = _factor_sbc(60, errors="student_t", n_bonds=8, n_dates=60)
    _check(res)


# ------------------------------------------------------------------ OU 1-D
# The defaults scale theta's and sigma's priors by the data and give kappa LogNormal(log 0.5,
# 1.5); SBC fixes all three (kappa around 1 a year: 20 years of months identify it).
OU1_PRIORS = {"kappa": (0.0, 0.5), "theta": (0.03, 0.02), "sigma": 0.02}
OU_DT, OU_T = 1.0 / 12.0, 240


def _ou1_prior(rng):
    return {"kappa": rng.lognormal(*OU1_PRIORS["kappa"]),
            "theta": rng.normal(*OU1_PRIORS["theta"]),
            "sigma": abs(rng.normal(0.0, OU1_PRIORS["sigma"]))}


def _ou1_simulate(truth, rng):
    """Exact AR(1) discretisation of the OU process (the model conditions on x_0)."""
    k, th, s = truth["kappa"], truth["theta"], truth["sigma"]
    b = np.exp(-k * OU_DT)
    q = np.sqrt(s**2 * (1 - b**2) / (2 * k))
    x = np.empty(OU_T)
    x[0] = th + s / np.sqrt(2 * k) * rng.normal()
    for t in range(1, OU_T):
        x[t] = th + b * (x[t - 1] - th) + q * rng.normal()
    return (x,)


def _ou_fit(model, draws=500, tune=500, target_accept=None):
    def fit(data, seed):
        return model.fit(*data, dt=OU_DT, draws=draws, tune=tune, chains=2, random_seed=seed,
                         target_accept=target_accept, progressbar=False, log_likelihood=False)

    return fit


def _ou1_sbc(reps, seed=3, **kw):
    return run_sbc("OUModel(1)", _ou1_prior, _ou1_simulate,
                   _ou_fit(bb.OUModel(1, priors=OU1_PRIORS), **kw), reps, seed=seed)


@pytest.mark.slow
def test_sbc_ou_1d_fast():
    _check(_ou1_sbc(8, draws=200, tune=300), alpha=0.001)


@pytest.mark.validate
def test_sbc_ou_1d():
    _check(_ou1_sbc(100))


# ------------------------------------------------------------------ OU 2-D
# The n-D priors live in standardised coordinates y = (x - m) / s_v with m, s_x, s_v computed
# from the data (OUModel.scales): in data units the prior moves with the data, so SBC fits a
# subclass whose scales are fixed numbers, and draws (A, a, Sigma) from the prior in y.
OU2_SCALES = (np.array([0.03, 0.02]), np.array([0.01, 0.01]), np.array([0.01, 0.01]))
OU2_PRIORS = {"A_chol_diag": (float(np.log(np.sqrt(2.0))), 0.3), "A_offdiag": 0.3, "mu": 2.0,
              "Sigma": 1.0, "lkj_eta": 2.0}


class FixedScaleOU(bb.OUModel):
    """OUModel whose standardisation is fixed (so its prior does not depend on the data)."""

    def scales(self, X, dt):
        return OU2_SCALES


def _ou2_prior(rng):
    """The prior of OUModel(2) (full A, LKJ Sigma) in y, mapped to data units."""
    p = OU2_PRIORS
    m, s_x, s_v = OU2_SCALES
    R = np.diag(rng.lognormal(*p["A_chol_diag"], 2))
    R[1, 0] = rng.normal(0.0, p["A_offdiag"])
    j = rng.normal(0.0, p["A_offdiag"])
    J = np.array([[0.0, -j], [j, 0.0]])
    A_y = (J - 0.5 * np.eye(2)) @ R @ R.T
    mu_y = rng.normal(0.0, p["mu"] * s_x / s_v)
    r = 2.0 * rng.beta(p["lkj_eta"], p["lkj_eta"]) - 1.0  # LKJ(eta) in 2-D
    sd = np.abs(rng.normal(0.0, p["Sigma"], 2))
    L_y = np.diag(sd) @ np.linalg.cholesky(np.array([[1.0, r], [r, 1.0]]))
    A = A_y * s_v[:, None] / s_v[None, :]
    Sigma = s_v[:, None] * L_y
    Sigma[0, 1] = np.nan  # a structural zero of the Cholesky factor: not ranked
    return {"A": A, "mu": m + s_v * mu_y, "Sigma": Sigma}


def _ou2_simulate(truth, rng):
    A, mu = truth["A"], truth["mu"]
    L = np.nan_to_num(truth["Sigma"])
    ou = bb.OU(A, -A @ mu, L)
    Phi, c, Q = ou.transition(OU_DT)
    x = np.empty((OU_T, 2))
    x[0] = rng.multivariate_normal(mu, ou.stationary_cov())
    Lq = np.linalg.cholesky(Q)
    for t in range(1, OU_T):
        x[t] = c + Phi @ x[t - 1] + Lq @ rng.normal(size=2)
    return (x,)


def _ou2_sbc(reps, seed=5, **kw):
    return run_sbc("OUModel(2, full A, LKJ Sigma)", _ou2_prior, _ou2_simulate,
                   _ou_fit(FixedScaleOU(2, priors=OU2_PRIORS), **kw), reps, seed=seed,
                   check_vars=["A_chol_diag", "A_chol_offdiag", "A_skew", "mu_std"])


@pytest.mark.validate  # not in make test: about 55 s a fit (PyMC's sampler, the n-D OU default;
def test_sbc_ou_2d_fast():  # under nutpie the Python likelihood Op took 577 s)
    _check(_ou2_sbc(4, draws=200, tune=300), alpha=0.001, reuse=False)


@pytest.mark.validate
def test_sbc_ou_2d():
    _check(_ou2_sbc(60, target_accept=0.9), reuse=False)


# ------------------------------------------------------------------ affine, 1 factor
# The default priors scale A, a and the stable drift by the portfolio's mean and sd, and the
# weights are principal components of the data: SBC fixes the weights (a level portfolio) and the
# scales (FixedScaleAffine), and narrows the priors to curves of realistic magnitude so that the
# ML start (the preconditioner's centre) exists on every replicate. The generative story is the
# model's: the portfolio follows the exact OU transition under P (conditioning on P_0), the
# yields are priced by the canonical loadings, and the p - 1 residual directions carry iid
# N(0, sigma_e^2) pricing errors.
AFF_TAU = np.array([1.0, 3.0, 5.0, 10.0])
AFF_W = np.full((1, 4), 0.5)  # orthonormal row: P = sum(y) / 2
AFF_SCALES = (np.array([0.08]), np.array([0.02]))  # mean, sd of P (yields around 4%)
AFF_PRIORS = {"eig_raw": ([float(np.log(0.1))], [0.3]), "k_inf": 0.005,
              "log_sigma_diag": (float(np.log(0.02)), 0.2), "a_scale": 0.2,
              "log_sigma_e": (float(np.log(5e-4)), 0.2)}
AFF_T = 120


class FixedScaleAffine(bb.AffineModel):
    """AffineModel(1) with the data scales fixed and a narrower prior on the P speed."""

    def portfolio_scales(self, Po):
        return AFF_SCALES

    def _free(self, Po):
        return tuple((k, np.full(1, np.log(0.6)), np.full(1, 0.3), d) if k == "A_chol"
                     else (k, m, s, d) for k, m, s, d in super()._free(Po))


def _affine_prior(rng):
    free = FixedScaleAffine(1, priors=AFF_PRIORS)._free(None)
    return {k: rng.normal(m, s) for k, m, s, _ in free}


def _affine_simulate(truth, rng):
    from bayesbond.core.affine_canonical import canonical, eigen_from_raw
    from bayesbond.core.affine_stable import stable_drift

    n = 1
    A = stable_drift(np, truth["A_chol"], None, AFF_SCALES[1], n)[0, 0]
    a = float(truth["a"][0])
    sig = float(np.exp(truth["Sigma_raw"][0]))
    can = canonical(np, eigen_from_raw(np, truth["eig_raw"], n), truth["k_inf"],
                    np.array([[sig**2]]), AFF_W, AFF_TAU, n=n)
    dt = 1.0 / 12.0
    phi = np.exp(A * dt)
    c = (phi - 1.0) / A * a
    q = np.sqrt(sig**2 * (phi**2 - 1.0) / (2.0 * A))
    P = np.empty(AFF_T)
    P[0] = -a / A + sig / np.sqrt(-2.0 * A) * rng.normal()
    for t in range(1, AFF_T):
        P[t] = c + phi * P[t - 1] + q * rng.normal()
    import scipy.linalg as sla

    W_perp = sla.null_space(AFF_W).T
    e = rng.normal(0.0, np.exp(truth["log_sigma_e"]), (AFF_T, W_perp.shape[0]))
    Y = np.asarray(can.d)[None, :] + P[:, None] * np.asarray(can.Z)[:, 0][None, :] + e @ W_perp
    dates = pd.date_range("2000-01-31", periods=AFF_T, freq="ME", name="date")
    return (pd.DataFrame(Y, index=dates, columns=[f"y{t:g}" for t in AFF_TAU]),)


def _affine_fit(draws=400, tune=400):
    model = FixedScaleAffine(1, priors=AFF_PRIORS)

    def fit(data, seed):
        return model.fit(*data, maturities=AFF_TAU, dt=1.0 / 12.0, weights=AFF_W, draws=draws,
                         tune=tune, chains=2, random_seed=seed, progressbar=False,
                         log_likelihood=False)

    return fit


def _affine_sbc(reps, seed=7, **kw):
    return run_sbc("AffineModel(1), fixed scales", _affine_prior, _affine_simulate,
                   _affine_fit(**kw), reps, seed=seed)


def test_affine_sbc_story_prices_the_portfolio_exactly():
    """The simulated curve's level portfolio is the simulated state (W d = 0, W Z = 1)."""
    rng = np.random.default_rng(0)
    truth = _affine_prior(rng)
    (Y,) = _affine_simulate(truth, rng)
    P = Y.to_numpy() @ AFF_W.T
    assert np.all(np.abs(Y.to_numpy()) < 0.5)
    from bayesbond.core.affine_canonical import canonical, eigen_from_raw

    can = canonical(np, eigen_from_raw(np, truth["eig_raw"], 1), truth["k_inf"],
                    np.array([[np.exp(2 * truth["Sigma_raw"][0])]]), AFF_W, AFF_TAU, n=1)
    np.testing.assert_allclose(AFF_W @ np.asarray(can.d), 0.0, atol=1e-12)
    np.testing.assert_allclose(AFF_W @ np.asarray(can.Z), [[1.0]], rtol=1e-10)
    assert P.std() > 0


@pytest.mark.validate  # not in make test: the first compile takes 135 s on the loaded machine
def test_sbc_affine_1f_fast():  # (then 1.2 s of sampling per fit); 4 reps took 174 s
    _check(_affine_sbc(4, draws=200, tune=300), alpha=0.001)


@pytest.mark.validate
def test_sbc_affine_1f():
    _check(_affine_sbc(100))

r"""Posterior predictive checks of every Bayesian family: ``bb.ppc(fit)``.

A check compares a discrepancy ``T(y, theta)`` of the observed data with ``T(y_rep, theta)`` of
data replicated from the model at the same posterior draw ``theta_s`` (Gelman, Meng and Stern
1996), for an evenly thinned set of draws. The posterior predictive p-value is
``p = Pr(T(y_rep, theta) >= T(y, theta) | y)``, estimated by the share of draws where it holds;
values near 0 or near 1 say the model does not reproduce that feature of the data. Because the
same data fit ``theta`` and are checked, these p-values are conservative (concentrated towards
0.5 under the model; Meng 1994), so an extreme one is a strong signal and a moderate one is no
proof of fit.

The family of the fit is read from the fit itself (:func:`bayesbond.bayes.registry.family_of_fit`):

* factor model (``FactorModel``): lag-1 autocorrelation of the residuals, their
  cross-sectional dependence and their tails (see :func:`ppc`);
* OU (``OUModel``): one-step-ahead predictive PIT values and the coverage of central intervals;
* affine (``AffineModel``): pricing errors per maturity against their measurement-error law.

References
----------
Gelman, A., Meng, X.-L. and Stern, H. (1996). Posterior predictive assessment of model fitness
via realized discrepancies. *Statistica Sinica* 6, 733-807.
Meng, X.-L. (1994). Posterior predictive p-values. *Ann. Statist.* 22(3), 1142-1160.
Diebold, F. X., Gunther, T. A. and Tay, A. S. (1998). Evaluating density forecasts with
applications to financial risk management. *Int. Econ. Rev.* 39(4), 863-883.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayesbond.bayes.base import spec_of
from bayesbond.bayes.factor_loglik import fit_inputs
from bayesbond.bayes.registry import FAMILIES, family_of_fit
from bayesbond.errors import SpecError

__all__ = ["PPCResult", "ppc", "autocorr_lag1", "cross_ratio", "cross_corr", "kurtosis",
           "tail_share"]

#: columns of :attr:`PPCResult.table`
COLUMNS = ["statistic", "unit", "observed", "replicated_mean", "replicated_lower",
           "replicated_upper", "p_value", "reference", "extreme"]
_PPP = "posterior predictive"
_BLOCK_VALUES = 2**23  # float64 cells per block of draws (64 MB)


# ------------------------------------------------------------------------------- the result
@dataclass(frozen=True, eq=False)
class PPCResult:
    """Posterior predictive checks of one fit.

    Attributes
    ----------
    family : str
        Registry key of the fit (``"factor_regression"``, ``"ou"``, ``"affine"``).
    table : pandas.DataFrame
        One row per statistic and unit, columns :data:`COLUMNS`: ``statistic``, ``unit``
        (``"all"``, a group, state or maturity), ``observed`` (posterior mean of ``T(y, theta)``,
        or the statistic of the data for the OU checks), ``replicated_mean``,
        ``replicated_lower`` and ``replicated_upper`` (central ``prob`` interval of the
        replicated statistic), ``p_value``, ``reference`` (what the p-value is) and ``extreme``
        (``p_value < alpha / 2`` or ``> 1 - alpha / 2`` for posterior predictive p-values,
        ``p_value < alpha`` for the two-sided tests of the OU checks).
    details : pandas.DataFrame
        Per bond (factor model), per date and state (OU) or per maturity (affine).
    draws : dict
        ``statistic -> (observed, replicated)`` arrays over the thinned draws (factor model and
        affine; unit ``"all"``), for the plots and further checks.
    n_draws : int
        Number of posterior draws used.
    prob, alpha : float
    extra : dict
        Family-specific arrays used by :meth:`plot` (e.g. the OU PIT values, the affine mean
        residuals).
    """

    family: str
    table: pd.DataFrame
    details: pd.DataFrame
    draws: dict = field(default_factory=dict)
    n_draws: int = 0
    prob: float = 0.9
    alpha: float = 0.05
    extra: dict = field(default_factory=dict)

    @property
    def p_values(self) -> pd.Series:
        """``p_value`` indexed by ``(statistic, unit)``."""
        return self.table.set_index(["statistic", "unit"])["p_value"]

    def flagged(self) -> pd.DataFrame:
        """The rows of :attr:`table` whose p-value is extreme."""
        return self.table[self.table["extreme"]]

    def plot(self, ax=None):
        """Figure of the checks (see :func:`bayesbond.workflow.predictive_checks.plot_ppc`)."""
        return plot_ppc(self, ax=ax)

    def __repr__(self) -> str:
        label = FAMILIES[self.family].label if self.family in FAMILIES else self.family
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            return (f"PPCResult({label}, {self.n_draws} draws)\n"
                    + self.table.drop(columns="reference").to_string(index=False))


def ppc(fit: xr.DataTree, *, n_draws: int = 200, prob: float = 0.9, alpha: float = 0.05,
        levels=(0.5, 0.9), random_seed=0) -> PPCResult:
    r"""Posterior predictive checks of a fit of any Bayesian family.

    Parameters
    ----------
    fit : xarray.DataTree
        A fit of :class:`~bayesbond.FactorModel`, :class:`~bayesbond.OUModel` or
        :class:`~bayesbond.AffineModel` (also one saved and loaded). The family is read from the
        fit (:func:`~bayesbond.bayes.registry.family_of_fit`).
    n_draws : int
        Posterior draws used, evenly spaced over chains and draws (all when fewer).
    prob : float
        Probability of the replicated intervals of the table.
    alpha : float
        Level at which a p-value is marked ``extreme``.
    levels : sequence of float
        OU: probabilities of the central predictive intervals whose coverage is checked.
    random_seed : int or numpy.random.Generator
        Seed of the replicated data.

    Returns
    -------
    PPCResult

    Notes
    -----
    **Factor model.** At draw ``s`` the residuals are ``e_bt = R_bt - alpha_b - beta_b'F_t -
    d_{j(b)t}`` (``d``: the posterior ``date_effect`` when the fit has one, ``j(b)`` the bond's
    group for effects by group) on the observed cells, and the replicated ones
    ``e^rep_bt = sigma_b eps_bt`` with ``eps`` standard normal or ``t_nu`` (Student-t fits), on the
    same cells (``R^rep = alpha_b + beta_b'F_t + d_{j(b)t} + e^rep``: the date effects are those of
    the draw, as in the log-likelihood). With ``z = e / sigma_b``:

    * ``autocorr_lag1``: the mean over bonds of ``r_b = sum e_t e_{t-1} / sqrt(sum e_t^2 sum
      e_{t-1}^2)`` over the months ``t`` where the bond has both ``t`` and ``t - 1`` (bonds with
      fewer than 3 such pairs are left out of the mean and listed with ``n_pairs`` in
      :attr:`PPCResult.details`); ``autocorr_lag1_sd``: the standard deviation of ``r_b`` over
      bonds (heterogeneous autocorrelation);
    * ``cross_ratio``: the variance of the cross-sectional mean residual relative to independence,
      ``(1/T') sum_t (sum_b e_bt)^2 / sum_b sigma_b^2`` over the ``T'`` dates with at least two
      bonds; about ``1 + (N - 1) rho`` for an average pairwise correlation ``rho`` among ``N``
      bonds; also per group (``unit``);
    * ``cross_corr``: the average pairwise correlation,
      ``sum_t [(sum_b z_bt)^2 - sum_b z_bt^2] / sum_t (N_t - 1) sum_b z_bt^2``;
    * ``kurtosis``: ``mean(z^4) / mean(z^2)^2`` over all cells; ``tail_share``: the share of
      cells with ``|z| > 3``.

    **OU.** For each step ``t -> t + 1`` the posterior predictive of ``x_{t+1}`` given ``x_t`` is
    the mixture over draws of the exact transitions ``N(Phi x_t + c, Q)``
    (:func:`bayesbond.core.ou.exact_transition`); per state ``j``, the PIT value is
    ``u_tj = (1/S) sum_s Phi_N((x_{t+1,j} - m_stj) / sqrt(Q_sjj))``. ``x`` lies in the central
    ``level`` interval of the mixture exactly when ``|u - 1/2| <= level / 2``. Under the model
    (at the true parameters) the one-step PIT values are i.i.d. uniform (Diebold, Gunther and Tay
    1998), so the number of covered steps is ``Binomial(N, level)``: ``coverage_<level>`` is
    checked with the two-sided exact binomial test (the replicated interval is that of the
    binomial share), ``pit_ks`` with the Kolmogorov-Smirnov test against U(0, 1), and
    ``pit_autocorr`` (lag-1 autocorrelation of the normal scores ``Phi_N^{-1}(u)``, which
    catches dynamics the model misses) against ``N(0, 1/N)``. The posterior uses the same steps, so
    the tests are slightly conservative.

    **Affine.** At draw ``s`` the pricing errors on the likelihood's dates (all but the first) are
    ``e_t = y_t - d - Z W y_t`` (``d``, ``Z`` from the draw's canonical loadings); ``W e_t = 0``,
    so ``e_t = W_perp' u_t`` and the model says ``u_t ~ N(0, sigma_e^2 I)``, i.e.
    ``e_t ~ N(0, sigma_e^2 W_perp' W_perp)``: the predictive sd of maturity ``j`` is
    ``sigma_e sqrt((W_perp' W_perp)_jj)``. Replicated errors are drawn from that law. Per
    maturity (and ``"all"``): ``rmse`` (root mean square), ``mean`` and ``autocorr_lag1``
    (``sum e_t e_{t-1} / sqrt(sum e_t^2 sum e_{t-1}^2)``).

    A posterior predictive p-value from ``S`` draws moves in steps of ``1/S``: 0 means that no
    replicated statistic reached the observed one (use the default 200 draws or more before
    reading ``extreme``).
    """
    if not isinstance(fit, xr.DataTree):
        raise SpecError(f"ppc needs a fit (xarray.DataTree), got {type(fit).__name__}")
    if int(n_draws) != n_draws or n_draws < 2:
        raise SpecError(f"n_draws must be an integer of at least 2, got {n_draws!r}")
    for name, v in (("prob", prob), ("alpha", alpha)):
        if not 0 < v < 1:
            raise SpecError(f"{name} must be strictly between 0 and 1, got {v!r}")
    key = family_of_fit(fit)
    if key is None:
        raise SpecError("ppc cannot tell the family of this fit: it has no 'family' attribute, "
                        "no JSON 'model' attribute and none of the variables of a family "
                        f"({', '.join(FAMILIES)})")
    checks = {"factor_regression": _ppc_factor, "ou": _ppc_ou, "affine": _ppc_affine}
    if key not in checks:
        raise SpecError(f"ppc has no posterior predictive checks for family {key!r} "
                        f"(it has them for {', '.join(checks)})")
    for grp in ("posterior", "observed_data"):
        if grp not in fit.children:
            raise SpecError(f"the fit has no {grp!r} group: ppc needs the posterior and the "
                            "data of the fit")
    rng = random_seed if isinstance(random_seed, np.random.Generator) else \
        np.random.default_rng(random_seed)
    post = fit["posterior"].to_dataset()
    S = post.sizes["chain"] * post.sizes["draw"]
    idx = np.unique(np.linspace(0, S - 1, min(S, int(n_draws))).round().astype(int))
    kw = {"levels": tuple(levels)} if key == "ou" else {}
    table, details, draws, extra = checks[key](fit, post, idx, rng, prob, **kw)
    table = pd.DataFrame(table, columns=[c for c in COLUMNS if c != "extreme"])
    ppp = table["reference"] == _PPP
    p = table["p_value"]
    table["extreme"] = np.where(ppp, (p < alpha / 2) | (p > 1 - alpha / 2), p < alpha)
    return PPCResult(key, table, details, draws, len(idx), prob, alpha, extra)


# ------------------------------------------------------------------------------ statistics
def autocorr_lag1(e: np.ndarray, min_pairs: int = 3):
    """Lag-1 autocorrelation of each column of ``e`` (..., T, B) over consecutive observed pairs.

    ``r_b = sum_t e_t e_{t-1} / sqrt(sum_t e_t^2 sum_t e_{t-1}^2)`` over the ``t`` with both
    values finite (not centred: residuals have mean zero under the model); NaN for columns with
    fewer than ``min_pairs`` pairs. Returns ``(r, n_pairs)``.
    """
    e = np.asarray(e, dtype=float)
    a, b = e[..., 1:, :], e[..., :-1, :]
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    num = (a * b).sum(axis=-2)
    den = np.sqrt((a * a).sum(axis=-2) * (b * b).sum(axis=-2))
    n = ok.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    return np.where((n >= min_pairs) & (den > 0), r, np.nan), n


def cross_ratio(e: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``(1/T') sum_t (sum_b e_bt)^2 / sum_b var_bt`` over dates with at least two finite cells.

    ``e`` (..., T, B) with NaN where unobserved, ``var`` broadcastable to it (``sigma_b^2``).
    """
    ok = np.isfinite(e)
    s = np.where(ok, e, 0.0).sum(axis=-1)
    v = np.where(ok, np.broadcast_to(var, e.shape), 0.0).sum(axis=-1)
    use = (ok.sum(axis=-1) >= 2) & (v > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(use, s**2 / np.where(use, v, 1.0), 0.0)
    return terms.sum(axis=-1) / np.maximum(use.sum(axis=-1), 1)


def cross_corr(z: np.ndarray) -> np.ndarray:
    """Average pairwise correlation of standardised residuals ``z`` (..., T, B):
    ``sum_t [(sum_b z)^2 - sum_b z^2] / sum_t (N_t - 1) sum_b z^2``."""
    ok = np.isfinite(z)
    z0 = np.where(ok, z, 0.0)
    s, q, n = z0.sum(axis=-1), (z0**2).sum(axis=-1), ok.sum(axis=-1)
    return ((s**2 - q).sum(axis=-1)) / (np.maximum(n - 1, 0) * q).sum(axis=-1)


def kurtosis(z: np.ndarray) -> np.ndarray:
    """``mean(z^4) / mean(z^2)^2`` over the finite cells of the last two axes."""
    ok = np.isfinite(z)
    z0 = np.where(ok, z, 0.0)
    n = ok.sum(axis=(-2, -1))
    m2 = (z0**2).sum(axis=(-2, -1)) / n
    return (z0**4).sum(axis=(-2, -1)) / n / m2**2


def tail_share(z: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Share of the finite cells of the last two axes with ``|z| > k``."""
    ok = np.isfinite(z)
    return (np.abs(np.where(ok, z, 0.0)) > k).sum(axis=(-2, -1)) / ok.sum(axis=(-2, -1))


def _ppp_row(statistic, unit, obs, rep, prob):
    """A table row of a posterior predictive p-value from per-draw ``obs`` and ``rep``."""
    obs, rep = np.asarray(obs, float), np.asarray(rep, float)
    ok = np.isfinite(obs) & np.isfinite(rep)
    if not ok.any():
        return [statistic, unit, np.nan, np.nan, np.nan, np.nan, np.nan, _PPP]
    o, r = obs[ok], rep[ok]
    q = (1 - prob) / 2
    lo, hi = np.quantile(r, [q, 1 - q])
    return [statistic, unit, float(o.mean()), float(r.mean()), float(lo), float(hi),
            float(np.mean(r >= o)), _PPP]


def _flat(da: xr.DataArray, idx) -> np.ndarray:
    """Draws ``idx`` of ``da`` (chain, draw, ...) flattened to (S, ...)."""
    v = da.transpose("chain", "draw", ...).values
    return v.reshape(-1, *v.shape[2:])[idx]


# ---------------------------------------------------------------------------- factor model
def _factor_inputs(fit, post, idx):
    _, y, F, alpha, beta, sigma, nu, _, groups, effects = fit_inputs(fit)
    S, B = len(idx), y.sizes["bond"]
    alpha = np.broadcast_to(_flat(alpha, idx).reshape(S, -1), (S, B))  # pooled: one alpha
    beta = _flat(beta, idx)
    beta = np.broadcast_to(beta.reshape(S, -1, beta.shape[-1]), (S, B, beta.shape[-1]))
    nu = None if nu is None else _flat(nu, idx)
    d = None
    if effects is not None:  # the draws' date effects on the (date, bond) grid
        draws, cols = effects
        d = draws[idx] if cols is None else draws[idx][:, :, cols]
    return y, F.values, alpha, beta, _flat(sigma, idx), nu, groups, d


def _factor_stats(e, sig):
    """Per-draw statistics of residuals ``e`` (s, T, B) with scales ``sig`` (s, B)."""
    z = e / sig[:, None, :]
    r, n_pairs = autocorr_lag1(e)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {"autocorr_lag1": np.nanmean(r, axis=-1), "autocorr_lag1_sd": np.nanstd(r, axis=-1),
               "cross_ratio": cross_ratio(e, sig[:, None, :] ** 2),
               "cross_corr": cross_corr(z), "kurtosis": kurtosis(z), "tail_share": tail_share(z)}
        ok = np.isfinite(z)
        z0 = np.where(ok, z, 0.0)
        bond = {"autocorr_lag1": r,
                "kurtosis": (z0**4).sum(-2) / ok.sum(-2) / ((z0**2).sum(-2) / ok.sum(-2)) ** 2}
    return out, bond, n_pairs


def _ppc_factor(fit, post, idx, rng, prob):
    y, F, alpha, beta, sigma, nu, groups, d = _factor_inputs(fit, post, idx)
    yv = y.values
    mask = np.isfinite(yv)
    T, B = yv.shape
    S = len(idx)
    ug = [] if groups is None else list(dict.fromkeys(groups.tolist()))
    names = ["autocorr_lag1", "autocorr_lag1_sd", "cross_ratio", "cross_corr", "kurtosis",
             "tail_share"]
    obs = {k: np.empty(S) for k in names}
    rep = {k: np.empty(S) for k in names}
    g_obs = {g: np.empty(S) for g in ug}
    g_rep = {g: np.empty(S) for g in ug}
    b_obs = {k: np.empty((S, B)) for k in ("autocorr_lag1", "kurtosis")}
    b_rep = {k: np.empty((S, B)) for k in ("autocorr_lag1", "kurtosis")}
    n_pairs = None
    step = max(1, _BLOCK_VALUES // max(1, T * B))
    for lo in range(0, S, step):
        sl = slice(lo, min(lo + step, S))
        mu = alpha[sl, None, :] + np.einsum("tk,sbk->stb", F, beta[sl])
        if d is not None:
            mu = mu + d[sl]
        sig = sigma[sl]
        e = np.where(mask, yv[None] - mu, np.nan)
        shape = (sl.stop - sl.start, T, B)
        eps = rng.standard_normal(shape) if nu is None else \
            rng.standard_t(np.broadcast_to(nu[sl, None, None], shape))
        e_rep = np.where(mask, sig[:, None, :] * eps, np.nan)
        for src, o, bo, gd in ((e, obs, b_obs, g_obs), (e_rep, rep, b_rep, g_rep)):
            st, bst, n_pairs = _factor_stats(src, sig)
            for k in names:
                o[k][sl] = st[k]
            for k in bo:
                bo[k][sl] = bst[k]
            for g in ug:
                cols = groups == g
                gd[g][sl] = cross_ratio(src[..., cols], sig[:, None, cols] ** 2)
    table = [_ppp_row(k, "all", obs[k], rep[k], prob) for k in names]
    table += [_ppp_row("cross_ratio", g, g_obs[g], g_rep[g], prob) for g in ug]
    n_obs = mask.sum(axis=0)
    details = pd.DataFrame({"bond": [str(b) for b in y["bond"].values],
                            "group": groups if groups is not None else ["all"] * B,
                            "n_obs": n_obs, "n_pairs": n_pairs[0]})
    q = (1 - prob) / 2
    for k in b_obs:
        o, r = b_obs[k], b_rep[k]
        with warnings.catch_warnings():  # a bond without the statistic: NaN, counted in n_pairs
            warnings.simplefilter("ignore", RuntimeWarning)
            details[f"{k}_observed"] = np.nanmean(o, axis=0)
            details[f"{k}_replicated_lower"] = np.nanquantile(r, q, axis=0)
            details[f"{k}_replicated_upper"] = np.nanquantile(r, 1 - q, axis=0)
            details[f"{k}_p_value"] = np.where(np.isfinite(o).any(axis=0),
                                               np.mean(r >= o, axis=0), np.nan)
    draws = {k: (obs[k], rep[k]) for k in names}
    return table, details, draws, {"bond_draws": (b_obs, b_rep)}


# -------------------------------------------------------------------------------------- OU
def _ou_predictive(fit, post, idx):
    """``(x (T, n), names, dates, mean (S, T-1, n), sd (S, T-1, n))`` of the one-step
    predictives."""
    from bayesbond.core.ou import exact_transition

    x = fit["observed_data"]["x"].transpose("date", "state")
    X = x.values.astype(float)
    names = [str(s) for s in x["state"].values]
    dates = x["date"].to_index()
    if "constant_data" not in fit.children or "dt" not in fit["constant_data"].data_vars:
        raise SpecError("the fit has no constant_data.dt: ppc needs the steps of the OU fit")
    dt_da = fit["constant_data"]["dt"]
    dt = float(dt_da) if dt_da.ndim == 0 else dt_da.values.astype(float)
    n = X.shape[1]
    if n == 1:
        for v in ("kappa", "sigma"):
            if v not in post:
                raise SpecError(f"the posterior of this 1-D OU fit has no {v!r}")
        k = _flat(post["kappa"], idx)[:, None]
        s = _flat(post["sigma"], idx)[:, None]
        if "theta" in post:
            th = _flat(post["theta"], idx)[:, None]
        else:
            mean = (spec_of(fit).get("restrictions") or {}).get("mean")
            if mean is None:
                raise SpecError("the posterior of this 1-D OU fit has no 'theta' and its spec "
                                "no restricted mean")
            th = np.full_like(k, float(np.ravel(mean)[0]))
        d = np.asarray(dt, dtype=float)
        phi = np.exp(-k * d)
        m = th + phi * (X[None, :-1, 0] - th)
        q = s**2 * (-np.expm1(-2.0 * k * d)) / (2.0 * k)
        sd = np.broadcast_to(np.sqrt(q), m.shape)
        return X, names, dates, m[..., None], sd[..., None]
    for v in ("A", "a", "Sigma"):
        if v not in post:
            raise SpecError(f"the posterior of this {n}-D OU fit has no {v!r}")
    if np.ndim(dt) > 0:
        raise SpecError("ppc of an n-D OU fit needs a regular grid (scalar constant_data.dt)")
    A = _flat(post["A"].transpose("chain", "draw", "state", "state2"), idx)
    a = _flat(post["a"].transpose("chain", "draw", "state"), idx)
    L = _flat(post["Sigma"].transpose("chain", "draw", "state", "state2"), idx)
    m = np.empty((len(idx), len(X) - 1, n))
    sd = np.empty_like(m)
    for i in range(len(idx)):
        Phi, c, Q = exact_transition(A[i], a[i], L[i] @ L[i].T, dt)
        m[i] = X[:-1] @ Phi.T + c
        sd[i] = np.sqrt(np.diag(Q))[None, :]
    return X, names, dates, m, sd


def _ppc_ou(fit, post, idx, rng, prob, levels=(0.5, 0.9)):
    for lv in levels:
        if not 0 < lv < 1:
            raise SpecError(f"levels must be strictly between 0 and 1, got {lv!r}")
    X, names, dates, m, sd = _ou_predictive(fit, post, idx)
    x1 = X[1:]
    pit = stats.norm.cdf((x1[None] - m) / sd).mean(axis=0)  # (T-1, n)
    N = len(x1)
    q = (1 - prob) / 2
    table = []
    for j, name in enumerate(names):
        u = pit[:, j]
        for lv in levels:
            k = int(np.sum(np.abs(u - 0.5) <= lv / 2))
            lo, hi = stats.binom.ppf([q, 1 - q], N, lv) / N
            table.append([f"coverage_{lv:g}", name, k / N, lv, lo, hi,
                          stats.binomtest(k, N, lv).pvalue, f"Binomial({N}, {lv:g}), two-sided"])
        ks = stats.kstest(u, "uniform")
        table.append(["pit_ks", name, float(ks.statistic), np.nan, 0.0,
                      float(stats.kstwo.ppf(prob, N)), float(ks.pvalue),
                      "Kolmogorov-Smirnov vs U(0, 1)"])
        zs = stats.norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))
        zc = zs - zs.mean()
        r1 = float(np.sum(zc[1:] * zc[:-1]) / np.sum(zc**2))
        half = stats.norm.ppf(1 - q) / np.sqrt(N)
        table.append(["pit_autocorr", name, r1, -1.0 / N, -1.0 / N - half, -1.0 / N + half,
                      float(2 * stats.norm.sf(abs(r1 + 1.0 / N) * np.sqrt(N))),
                      "N(-1/N, 1/N), two-sided"])
    pm = m.mean(axis=0)
    psd = np.sqrt((sd**2).mean(axis=0) + m.var(axis=0))
    details = pd.DataFrame({
        "date": np.repeat(np.asarray(dates[1:]), len(names)),
        "state": np.tile(names, N),
        "observed": x1.ravel(), "predictive_mean": pm.ravel(), "predictive_sd": psd.ravel(),
        "pit": pit.ravel()})
    return table, details, {}, {"pit": pit, "states": names, "levels": tuple(levels)}


# ---------------------------------------------------------------------------------- affine
def _ppc_affine(fit, post, idx, rng, prob):
    import scipy.linalg as sla

    from bayesbond.core.affine_canonical import canonical, eigen_from_raw

    const = fit["constant_data"] if "constant_data" in fit.children else None
    need = ("yields", "portfolio_weights")
    if const is None or any(k not in const.data_vars for k in need):
        raise SpecError("the fit has no constant_data.yields and portfolio_weights (a fit made "
                        "before this version of bayesbond): call fit() again")
    for v in ("eig_raw", "k_inf", "Sigma", "sigma_e"):
        if v not in post:
            raise SpecError(f"the posterior of this affine fit has no {v!r}")
    Yda = const["yields"].transpose("date", "maturity")
    Y = Yda.values.astype(float)
    tau = Yda["maturity"].values.astype(float)
    dates = Yda["date"].to_index()
    W = const["portfolio_weights"].transpose("state", "maturity").values.astype(float)
    n = W.shape[0]
    W_perp = sla.null_space(W).T
    M = W_perp.T @ W_perp  # projection on the complement of the portfolios
    eig_raw = _flat(post["eig_raw"], idx)
    k_inf = _flat(post["k_inf"], idx)
    Sig = _flat(post["Sigma"].transpose("chain", "draw", "state", "state2"), idx)
    sig_e = _flat(post["sigma_e"], idx)
    Yl = Y[1:]  # the likelihood's dates
    Po = Yl @ W.T
    S, (T1, p) = len(idx), Yl.shape
    e = np.empty((S, T1, p))
    for i in range(S):
        can = canonical(np, eigen_from_raw(np, eig_raw[i], n), float(k_inf[i]),
                        Sig[i] @ Sig[i].T, W, tau)
        e[i] = Yl - can.d - Po @ can.Z.T
    u = rng.standard_normal((S, T1, p - n)) * sig_e[:, None, None]
    e_rep = u @ W_perp
    labels = [f"{t:g}" for t in tau]

    def per(x):
        r, _ = autocorr_lag1(x)
        return {"rmse": np.sqrt((x**2).mean(axis=-2)), "mean": x.mean(axis=-2),
                "autocorr_lag1": r}

    o, r = per(e), per(e_rep)
    table = []
    for k in ("rmse", "mean", "autocorr_lag1"):
        for j, lab in enumerate(labels):
            table.append(_ppp_row(k, lab, o[k][:, j], r[k][:, j], prob))
    pooled_o = {"rmse": np.sqrt((e**2).mean(axis=(-2, -1))),
                "autocorr_lag1": np.nanmean(o["autocorr_lag1"], axis=-1)}
    pooled_r = {"rmse": np.sqrt((e_rep**2).mean(axis=(-2, -1))),
                "autocorr_lag1": np.nanmean(r["autocorr_lag1"], axis=-1)}
    table += [_ppp_row(k, "all", pooled_o[k], pooled_r[k], prob) for k in pooled_o]
    pred_sd = sig_e[:, None] * np.sqrt(np.clip(np.diag(M), 0.0, None))[None, :]
    details = pd.DataFrame({
        "maturity": tau, "residual_mean": o["mean"].mean(0), "residual_rmse": o["rmse"].mean(0),
        "predictive_sd": pred_sd.mean(0), "autocorr_lag1": o["autocorr_lag1"].mean(0)})
    resid = pd.DataFrame(e.mean(axis=0), index=dates[1:], columns=tau)
    return table, details, {k: (pooled_o[k], pooled_r[k]) for k in pooled_o}, \
        {"residuals": resid, "autocorr": (o["autocorr_lag1"], r["autocorr_lag1"])}


# ----------------------------------------------------------------------------------- plots
def plot_ppc(result: PPCResult, ax=None):
    """Figure of a :class:`PPCResult`.

    Factor model: one panel per statistic, the histogram of the replicated statistic over the
    draws against that of the observed data (its posterior mean as a line). OU: the PIT
    histogram of each state and the coverage of each level against nominal (binomial interval).
    Affine: pricing errors by maturity (posterior mean over draws, bp) with the predictive
    ``+-1.96 sd``, and their lag-1 autocorrelation against the replicated interval.

    Parameters
    ----------
    result : PPCResult
    ax : matplotlib Axes or sequence of Axes, optional
        Axes to draw into, one per panel (as many as the figure made without ``ax`` has);
        default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Built without ``pyplot`` (as :mod:`bayesbond.workflow.plots`).
    """
    from matplotlib.figure import Figure

    n_panels = {"factor_regression": len(result.draws), "ou": 2 * len(result.extra.get(
        "states", [])), "affine": 2}.get(result.family, 0)
    if n_panels == 0:
        raise SpecError(f"nothing to plot for family {result.family!r}")
    if ax is None:
        if result.family == "factor_regression":
            ncols = 3
            nrows = -(-n_panels // ncols)
            fig = Figure(figsize=(11, 3.2 * nrows), layout="constrained")
            axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n_panels)]
        elif result.family == "ou":
            k = n_panels // 2
            fig = Figure(figsize=(10, 3.4 * k), layout="constrained")
            axes = [fig.add_subplot(k, 2, i + 1) for i in range(n_panels)]
        else:
            fig = Figure(figsize=(10, 6.4), layout="constrained")
            axes = [fig.add_subplot(2, 1, i + 1) for i in range(2)]
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != n_panels:
            raise SpecError(f"this check draws {n_panels} panels; got {len(axes)} axes")
        fig = axes[0].figure
    {"factor_regression": _plot_factor, "ou": _plot_ou, "affine": _plot_affine}[
        result.family](result, axes)
    return fig


_LABELS = {"autocorr_lag1": "lag-1 autocorrelation (mean over bonds)",
           "autocorr_lag1_sd": "sd over bonds of the lag-1 autocorrelation",
           "cross_ratio": "variance of the cross-sectional mean / independent",
           "cross_corr": "average pairwise correlation",
           "kurtosis": "kurtosis of standardised residuals",
           "tail_share": "share beyond 3 sd"}


def _plot_factor(result, axes):
    p = result.p_values
    for a, (k, (o, r)) in zip(axes, result.draws.items(), strict=True):
        ok = np.isfinite(o) & np.isfinite(r)
        lo, hi = np.quantile(np.r_[o[ok], r[ok]], [0.0, 1.0]) if ok.any() else (0, 1)
        a.hist(r[ok], bins=30, range=(lo, hi), color="#1f77b4", alpha=0.55, label="replicated")
        a.hist(o[ok], bins=30, range=(lo, hi), color="#d62728", alpha=0.35, label="observed")
        a.axvline(np.mean(o[ok]) if ok.any() else np.nan, color="#d62728", lw=1.5)
        a.set_title(f"{_LABELS.get(k, k)}\np = {p[(k, 'all')]:.3f}", fontsize=9)
        a.set_yticks([])
        a.grid(alpha=0.3)
    axes[0].legend(fontsize=8)


def _plot_ou(result, axes):
    pit, names, levels = result.extra["pit"], result.extra["states"], result.extra["levels"]
    t = result.table.set_index(["statistic", "unit"])
    for j, name in enumerate(names):
        a = axes[2 * j]
        N = pit.shape[0]
        bins = 10
        a.hist(pit[:, j], bins=bins, range=(0, 1), color="#1f77b4", alpha=0.7)
        lo, hi = stats.binom.ppf([0.025, 0.975], N, 1 / bins)
        a.axhspan(lo, hi, color="0.5", alpha=0.2, label="95% band under the model")
        a.axhline(N / bins, color="k", lw=1)
        a.set_xlim(0, 1)
        a.set_title(f"{name}: one-step-ahead PIT (KS p = {t.loc[('pit_ks', name), 'p_value']:.3f})",
                    fontsize=9)
        a.legend(fontsize=8)
        b = axes[2 * j + 1]
        x = np.arange(len(levels))
        rows = [t.loc[(f"coverage_{lv:g}", name)] for lv in levels]
        obs = np.array([r["observed"] for r in rows])
        b.bar(x, obs, width=0.5, color="#1f77b4", alpha=0.7, label="observed")
        b.vlines(x, [r["replicated_lower"] for r in rows], [r["replicated_upper"] for r in rows],
                 color="k", lw=2, label=f"{result.prob:.0%} binomial interval")
        b.scatter(x, levels, marker="_", s=400, color="k", zorder=4, label="nominal")
        b.set_xticks(x, [f"{lv:.0%} interval" for lv in levels])
        b.set_ylim(0, 1)
        b.set_title(f"{name}: coverage of the central predictive intervals", fontsize=9)
        b.legend(fontsize=8, loc="lower right")
        b.grid(alpha=0.3, axis="y")


def _plot_affine(result, axes):
    resid = result.extra["residuals"]
    det = result.details
    x = np.arange(resid.shape[1])
    a = axes[0]
    a.boxplot([resid[c].to_numpy() * 1e4 for c in resid.columns], positions=x, widths=0.5,
              showfliers=True, flierprops={"markersize": 2})
    sd = det["predictive_sd"].to_numpy() * 1e4
    a.fill_between(x, -1.96 * sd, 1.96 * sd, color="#1f77b4", alpha=0.2,
                   label="model: +-1.96 sd (measurement error)")
    a.axhline(0, color="k", lw=0.7)
    a.set_xticks(x, [f"{t:g}" for t in det["maturity"]])
    a.set_ylabel("pricing error (bp)")
    a.set_title("Pricing errors by maturity (posterior mean over draws)", fontsize=9)
    a.legend(fontsize=8)
    b = axes[1]
    o, r = result.extra["autocorr"]
    q = (1 - result.prob) / 2
    b.vlines(x, np.nanquantile(r, q, axis=0), np.nanquantile(r, 1 - q, axis=0), color="k",
             lw=3, alpha=0.4, label=f"replicated {result.prob:.0%}")
    b.scatter(x, np.nanmean(o, axis=0), color="#d62728", zorder=3, label="observed")
    b.axhline(0, color="k", lw=0.7)
    b.set_xticks(x, [f"{t:g}" for t in det["maturity"]])
    b.set_xlabel("maturity (years)")
    b.set_ylabel("lag-1 autocorrelation")
    b.legend(fontsize=8)
    b.grid(alpha=0.3)

"""Bayesian Fama-MacBeth: posterior of risk premia and cross-sectional R2.

After Bryzgalova, Huang and Julliard (2023, Journal of Finance 78(1), 487-557, "Bayesian solutions
for the factor zoo", Section I, the Bayesian Fama-MacBeth; R package ``BayesianFactorZoo``,
``BayesianFM``). The mean and covariance of ``Y_t = (f_t', r_t')'`` are drawn exactly from their
posterior under the diffuse (Jeffreys) prior; every draw is mapped to betas, premia and R2 by the
same cross-sectional formulas as the two-pass estimator (:mod:`bayesbond.core.cross_section`).
No MCMC: the draws are independent, so R-hat and ESS check only the arithmetic.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayesbond.baselines.fama_macbeth import INTERCEPT, pricing_data
from bayesbond.bayes.base import BayesianModel
from bayesbond.core.cross_section import cs_design, cs_lambda, cs_rsquared, time_series_betas
from bayesbond.errors import DataError, ModelError

__all__ = ["BFMPrepared", "BayesianFamaMacBeth", "bayesian_fama_macbeth", "bfm_draws"]

_BLOCK = 1000  # draws per vectorised block


class BFMPrepared(NamedTuple):
    """Checked data: ``R`` (T, N), ``F`` (T, K), dates, asset and factor names."""

    R: np.ndarray
    F: np.ndarray
    dates: pd.DatetimeIndex
    assets: list
    factors: list


def bfm_draws(R: np.ndarray, F: np.ndarray, n: int, rng: np.random.Generator, gls: bool = False,
              intercept: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``n`` independent posterior draws of ``lambda`` and the cross-sectional R2.

    Parameters
    ----------
    R : ndarray (T, N)
        Test-asset excess returns.
    F : ndarray (T, K)
        Factors.
    n : int
        Draws.
    rng : numpy.random.Generator
    gls, intercept : bool
        As :func:`bayesian_fama_macbeth`.

    Returns
    -------
    lam : ndarray (n, p)
        ``p = K + intercept``, the intercept first.
    r2 : ndarray (n,)

    Notes
    -----
    See :func:`bayesian_fama_macbeth`.
    """
    T, K = F.shape
    Y = np.column_stack([F, R])
    ybar = Y.mean(axis=0)
    D = Y - ybar
    S = D.T @ D
    P = Y.shape[1]
    lam_out, r2_out = [], []
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        Sig = stats.invwishart.rvs(df=T - 1, scale=S, size=m, random_state=rng)
        Sig = Sig.reshape(m, P, P)
        L = np.linalg.cholesky(Sig / T)
        mu = ybar + (L @ rng.standard_normal((m, P, 1)))[..., 0]
        beta, Se = time_series_betas(Sig, K)
        X = cs_design(beta, intercept)
        W = np.linalg.inv(Se) if gls else None
        mu_r = mu[:, K:]
        lam, alpha = cs_lambda(mu_r, X, W)
        lam_out.append(lam)
        r2_out.append(cs_rsquared(mu_r, alpha, W, intercept))
    return np.concatenate(lam_out), np.concatenate(r2_out)


class BayesianFamaMacBeth(BayesianModel):
    """Bayesian Fama-MacBeth under the model contract (exact draws, no sampler).

    Parameters
    ----------
    gls : bool
        GLS cross-section (weights ``Sigma_eps^{-1}`` of each draw) instead of OLS.
    intercept : bool
        Common cross-sectional intercept (label ``intercept``), as BHJ.

    Notes
    -----
    The template's hooks that belong to a PyMC graph do not apply: :meth:`draw` is overridden
    (the exact draws of :func:`bfm_draws`, ``model=None``), :meth:`build` refuses, and the
    pointwise log-likelihood is not stored (``fit(log_likelihood=False)`` by default): the
    premia are a deterministic map of ``(mu, Sigma)``, whose likelihood does not depend on the
    factors chosen for the cross-section in a way LOO could compare; :meth:`pointwise_loglik`
    raises :class:`~bayesbond.errors.ModelError`.
    """

    family = "bayes_fm"
    prepared_type = BFMPrepared
    loglik_var = "test_assets"
    data_label = "test assets and factors"

    def __init__(self, gls: bool = False, intercept: bool = True):
        self.gls = bool(gls)
        self.intercept = bool(intercept)

    @classmethod
    def from_spec(cls, spec):
        """``(model, fit_kwargs)`` of a validated spec: ``[model]`` cross_section, intercept."""
        return cls(gls=spec.model["cross_section"] == "gls",
                   intercept=spec.model["intercept"]), {}

    def spec(self) -> dict:
        return {"family": "BayesianFamaMacBeth", "gls": self.gls, "intercept": self.intercept}

    def prepare(self, test_assets, factors) -> BFMPrepared:
        K = pd.DataFrame(factors).shape[1] if isinstance(factors, pd.DataFrame | pd.Series) \
            else 0
        d = pricing_data(test_assets, factors, min_assets=K + int(self.intercept))
        N = d.R.shape[1]
        if d.T <= N + K:
            raise DataError(f"the posterior of the (N + K) x (N + K) covariance needs more "
                            f"months than test assets plus factors: T = {d.T}, N = {N}, K = {K}")
        return BFMPrepared(d.R, d.F, d.dates, d.assets, d.factors)

    def build(self, prepared):
        raise ModelError("the Bayesian Fama-MacBeth has exact posterior draws and no PyMC graph")

    def labels(self, prepared) -> list[str]:
        return ([INTERCEPT] if self.intercept else []) + list(prepared.factors)

    def draw(self, prepared, options, *, draws, tune, chains, random_seed, sampler,
             target_accept, progressbar, name, **kwargs):
        import bayesbond
        from bayesbond.bayes.sampling import report

        report(f"drawing {chains} x {draws} exact posterior draws of {name}")
        t0 = time.perf_counter()
        seeds = np.random.SeedSequence(random_seed).spawn(chains)
        lam, r2 = zip(*(bfm_draws(prepared.R, prepared.F, draws, np.random.default_rng(s),
                                  self.gls, self.intercept) for s in seeds), strict=True)
        coords = {"chain": np.arange(chains), "draw": np.arange(draws),
                  "factor": self.labels(prepared)}
        post = xr.Dataset(
            {"lambda": (("chain", "draw", "factor"), np.stack(lam)),
             "r2": (("chain", "draw"), np.stack(r2))}, coords=coords)
        post["lambda"].attrs["description"] = "risk premia, decimals per month"
        post["r2"].attrs["description"] = "cross-sectional R2 (Kan, Robotti and Shanken 2013)"
        ss = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))},
                        coords={"chain": coords["chain"], "draw": coords["draw"]})
        idata = xr.DataTree.from_dict({"posterior": post, "sample_stats": ss})
        idata.attrs.update(bayesbond_version=bayesbond.__version__, compile_seconds=0.0,
                           sampling_seconds=float(time.perf_counter() - t0),
                           sampler="exact (normal-inverse-Wishart)")
        return idata, None

    def data_groups(self, prepared) -> dict[str, xr.Dataset]:
        """``observed_data``: ``test_assets`` (date, asset), ``factors`` (date, factor)."""
        obs = xr.Dataset({
            "test_assets": xr.DataArray(prepared.R, dims=("date", "asset"),
                                        coords={"date": prepared.dates,
                                                "asset": list(prepared.assets)}),
            "factors": xr.DataArray(prepared.F, dims=("date", "factor"),
                                    coords={"date": prepared.dates,
                                            "factor": list(prepared.factors)}),
        })
        cd = xr.Dataset({"gls": xr.DataArray(self.gls), "intercept": xr.DataArray(self.intercept)})
        return {"observed_data": obs, "constant_data": cd}

    def loglik_size(self, prepared) -> int:
        return 0

    def pointwise_loglik(self, idata, *, dtype="float64", max_bytes=None, model=None):
        raise ModelError("the Bayesian Fama-MacBeth stores no pointwise log-likelihood (its "
                         "premia are a map of the posterior of the return moments)")

    def fit(self, *data, draws: int = 1000, chains: int = 4, log_likelihood: bool = False,
            **kwargs) -> xr.DataTree:
        """:meth:`BayesianModel.fit` with ``tune=0`` and no log-likelihood by default."""
        kwargs.setdefault("tune", 0)
        return super().fit(*data, draws=draws, chains=chains, log_likelihood=log_likelihood,
                           **kwargs)


def bayesian_fama_macbeth(test_assets: pd.DataFrame, factors: pd.DataFrame, draws: int = 1000,
                          gls: bool = False, intercept: bool = True, chains: int = 4,
                          random_seed=None, progressbar: bool | None = False) -> xr.DataTree:
    """Posterior draws of risk premia ``lambda`` and of the cross-sectional R2.

    Parameters
    ----------
    test_assets : pandas.DataFrame
        Excess returns, dates x assets (decimals per month).
    factors : pandas.DataFrame or Series
        Factors, dates x factors. The months common to both are used (none may be missing).
    draws : int
        Draws per chain (independent: no tuning, no autocorrelation).
    gls : bool
        GLS cross-section with each draw's ``Sigma_eps^{-1}``.
    intercept : bool
        Common intercept ``lambda_c`` (label ``intercept``; the default, as BHJ and
        :func:`bayesbond.pricing.fama_macbeth`).
    chains : int
    random_seed : int, optional
    progressbar : bool or None

    Returns
    -------
    xarray.DataTree
        ``posterior``: ``lambda`` (chain, draw, factor), ``r2`` (chain, draw);
        ``sample_stats``: ``diverging`` (all False); ``observed_data``: ``test_assets``
        (date, asset), ``factors`` (date, factor); attributes ``model``, ``family``
        (``bayes_fm``), ``priors``, ``data_hash``, ``bayesbond_version``, ``diagnostics``.

    Notes
    -----
    With ``Y_t = (f_t', r_t')' ~ N(mu, Sigma)`` i.i.d. and the Jeffreys prior
    ``p(mu, Sigma) ~ |Sigma|^{-(N+K+1)/2}``, the posterior is normal-inverse-Wishart:

    ``Sigma | Y ~ IW(T - 1, S)``, ``S = sum_t (Y_t - Ybar)(Y_t - Ybar)'``;
    ``mu | Sigma, Y ~ N(Ybar, Sigma / T)``.

    Each draw gives ``beta = Sigma_rf Sigma_f^{-1}``,
    ``Sigma_eps = Sigma_r - beta Sigma_f beta'``, ``X = [1_N, beta]`` and

    ``lambda = (X'WX)^{-1} X'W mu_r``, ``W = I`` (OLS) or ``Sigma_eps^{-1}`` (GLS),

    with ``R2 = 1 - a'Wa / e0'We0`` (``a = mu_r - X lambda``,
    :func:`~bayesbond.core.cross_section.cs_rsquared`). This is BHJ's Definition of the BFM and
    their ``BayesianFM``, except that the scale of the inverse Wishart is ``S`` (the Jeffreys
    posterior) where the R code uses ``T/(T-1) S``, and the R2 is not adjusted. With a flat
    prior and large ``T`` the posterior of ``lambda`` is centred on the two-pass estimate and
    its sd approaches the Shanken (1992) error: ``Var(mu_r) = (B Sigma_f B' + Sigma_eps) / T``
    gives ``H Sigma_eps H' + Sigma_f^*`` and the beta draws the factor ``c``. With a useless
    factor (``beta = 0``) the map is singular: the posterior of its premium does not
    concentrate, its credible interval keeps zero, where the two-pass t-statistic diverges
    (Kan and Zhang 1999). Independent draws: R-hat and ESS are checked as for any family.
    """
    model = BayesianFamaMacBeth(gls=gls, intercept=intercept)
    return model.fit(test_assets, factors, draws=draws, chains=chains, random_seed=random_seed,
                     progressbar=progressbar)

r"""Which factors belong in the SDF: Bayesian spike-and-slab selection over a factor zoo.

``select_factors(test_assets, factors, prior_sharpe=...)`` fits :class:`SDFSelection`, the
linear SDF of Bryzgalova, Huang and Julliard (2023, Journal of Finance, "Bayesian solutions for
the factor zoo") with a continuous spike-and-slab prior on the risk prices (a Gibbs sampler in
numpy) or a Dirac spike-and-slab with exact posterior probabilities of all ``2^K`` models. The
numerics are in :mod:`bayesbond.pricing.sdf_kernels`; this module checks the inputs, maps the
prior Sharpe ratio to the slab scales and writes the DataTree through the model contract
(:class:`bayesbond.bayes.base.BayesianModel`, its ``draw`` hook).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.baselines.fama_macbeth import pricing_data
from bayesbond.bayes.base import BayesianModel
from bayesbond.errors import DataError, ModelError, SpecError
from bayesbond.pricing import sdf_kernels as kern

__all__ = ["SDFPrepared", "SDFSelection", "select_factors"]

METHODS = ("continuous", "dirac")
#: below this information ratio (data over slab precision of lambda_j) a factor's inclusion
#: probability is its prior's (:func:`~bayesbond.pricing.sdf_kernels.information_ratio`)
IDENTIFIED = 1.0


class SDFPrepared(NamedTuple):
    """Checked inputs and the data-derived prior of one fit."""

    R: np.ndarray          # (T, N) test asset excess returns
    f: np.ndarray          # (T, K) factors
    assets: list
    factors: list
    dates: pd.Index
    psi: np.ndarray        # (K,) slab scales
    psi0: float
    sr_max: float


def prepare_data(test_assets, factors, prior_sharpe, *, aw=1.0, bw=1.0,
                 intercept=True) -> SDFPrepared:
    """Align the dates (:func:`bayesbond.baselines.fama_macbeth.pricing_data`: the common months,
    a gap on one of them refused with its column and months) and compute the slab scales.

    Raises
    ------
    DataError
        Not DataFrames, the errors of ``pricing_data``, a constant column, too few dates
        (``T - 1`` must reach the number of assets plus factors), at least as many factors as
        assets, or a column in both.
    SpecError
        ``prior_sharpe`` not positive or not below the test assets' maximal Sharpe ratio.
    """
    for what, x in (("test_assets", test_assets), ("factors", factors)):
        if not isinstance(x, pd.DataFrame | pd.Series):
            raise DataError(f"{what} must be a pandas DataFrame (dates x columns), got "
                            f"{type(x).__name__}")
    both = sorted(set(map(str, pd.DataFrame(test_assets).columns))
                  & set(map(str, pd.DataFrame(factors).columns)))
    if both:
        raise DataError(f"column(s) {', '.join(map(repr, both))} are both test assets and "
                        "factors; a "
                        "tradable factor priced as a test asset goes in test_assets only")
    d = pricing_data(test_assets, factors)  # common months; gaps refused, named
    Rv, fv = d.R, d.F
    T, N, K = d.T, Rv.shape[1], fv.shape[1]
    if N <= K:
        raise DataError(f"{N} test assets for {K} factors: need more test assets than factors")
    if T - 1 < N + K:
        raise DataError(f"{T} complete dates for {N} test assets and {K} factors: need at least "
                        f"{N + K + 1} (the posterior of their covariance matrix)")
    for name, col in zip([*d.assets, *d.factors], np.column_stack([Rv, fv]).T, strict=True):
        if not np.std(col) > 0:
            raise DataError(f"column {name!r} is constant on the {T} complete dates")
    if prior_sharpe is None or not np.isfinite(prior_sharpe) or prior_sharpe <= 0:
        raise SpecError(f"prior_sharpe = {prior_sharpe!r}: give the prior Sharpe ratio of the "
                        "SDF per period of the data (e.g. monthly), a positive number")
    psi, psi0, sr_max = kern.psi_from_prior_sharpe(Rv, fv, float(prior_sharpe), aw, bw,
                                                   intercept)
    if not prior_sharpe < sr_max:
        raise SpecError(f"prior_sharpe = {prior_sharpe:.4g} per period is not below the test "
                        f"assets' maximal in-sample Sharpe ratio {sr_max:.4g}; choose a "
                        f"fraction of it, e.g. {0.5 * sr_max:.3g}")
    return SDFPrepared(Rv, fv, d.assets, d.factors, d.dates, psi, psi0, sr_max)


class SDFSelection(BayesianModel):
    r"""Bayesian linear SDF with spike-and-slab selection of the factors (BHJ 2023).

    Parameters
    ----------
    prior_sharpe : float
        Prior Sharpe ratio of the SDF, per period of the data (monthly data: a monthly
        ratio); sets the slab scale ``psi0``
        (:func:`~bayesbond.pricing.sdf_kernels.psi_from_prior_sharpe`).
    method : {"continuous", "dirac"}
        Continuous spike ``N(0, r psi_j sigma2)`` (Gibbs sampler) or Dirac spike at zero with
        exact posterior model probabilities (``K <= 20``).
    r : float
        Relative variance of the continuous spike (default 0.001).
    aw, bw : float
        Beta prior of the prior inclusion probability ``omega_j`` (default 1, 1: uniform).
    cross_section : {"ols", "gls"}
        Pricing errors ``N(0, sigma2 I)`` or ``N(0, sigma2 Omega_R)``.
    intercept : bool
        Common intercept ``lambda_c`` (prior ``N(0, 10^5 sigma2)``) in the cross-section.
    prob : float
        Probability of the bands of the ``summary`` group (default 0.9).

    Notes
    -----
    Model (:mod:`bayesbond.pricing.sdf_kernels` has the formulas): ``(f_t, R_t)`` iid normal
    with the Jeffreys prior on its moments; ``mu_R / sigma_R = lambda_c + corr(R, f) lambda +
    alpha``; ``lambda_j | gamma_j ~ N(0, r(gamma_j) psi_j sigma2)``, ``psi_j = psi0 *
    rho_tilde_j' rho_tilde_j``; ``gamma_j ~ Bernoulli(omega_j)``, ``omega_j ~ Beta(aw, bw)``;
    ``p(sigma2) ∝ 1/sigma2``. ``lambda`` is the risk price per unit of correlation; the SDF is
    ``m_t = 1 - (f_t - mu_f)' b`` with ``b_j = lambda_j / sigma_f,j`` (``sdf_loading``).

    Posterior (chain, draw, ...): ``gamma`` (factor; inclusion), ``lambda`` (factor),
    ``lambda_c``, ``sigma2``, ``omega`` (continuous only), ``sdf_loading`` (factor),
    ``sdf_sharpe`` (``sqrt(lambda' corr_f lambda)``, per period), ``n_factors`` (sum of
    ``gamma``) and ``expected_return`` (asset; the SDF-implied ``sigma_R C lambda``, in the
    units of the returns). The ``summary`` group holds the posterior inclusion probabilities,
    the BMA risk prices with bands, the implied expected returns with bands next to the sample
    means, the BMA-SDF per date (``1 - (f_t - fbar)' E[b]``) and, for ``method="dirac"``, the
    exact ``model_probability`` (dim ``model``, bit ``j`` of the label set iff factor ``j``
    is in the model); there ``inclusion_probability`` is computed from the exact model
    probabilities.

    A factor the test assets barely load on (weak or useless) has a slab close to zero and
    carries almost no information about its price, so its inclusion probability stays at the
    prior mean ``aw / (aw + bw)`` (1/2 by default, as in BHJ): that number is the prior, not
    evidence. ``summary.information_ratio`` (``psi_j (X'WX)_jj``, see
    :func:`~bayesbond.pricing.sdf_kernels.information_ratio`) measures it and
    ``summary.identified`` flags factors with a ratio of at least 1; reports print "not
    identified" next to the others' probabilities. Its risk price is shrunk to zero either way.
    """

    family = "sdf_selection"
    prepared_type = SDFPrepared
    loglik_var = "test_assets"
    data_label = "test assets and factors"

    def __init__(self, prior_sharpe: float, method: str = "continuous", r: float = 1e-3,
                 aw: float = 1.0, bw: float = 1.0, cross_section: str = "ols",
                 intercept: bool = True, prob: float = 0.9):
        if method not in METHODS:
            raise SpecError(f"method = {method!r}: one of {', '.join(map(repr, METHODS))}")
        if cross_section not in ("ols", "gls"):
            raise SpecError(f"cross_section = {cross_section!r}: 'ols' or 'gls'")
        if not 0 < r < 1:
            raise SpecError(f"r = {r!r}: the spike's relative variance must lie in (0, 1)")
        if not (aw > 0 and bw > 0):
            raise SpecError(f"aw = {aw!r}, bw = {bw!r}: Beta parameters must be positive")
        if not 0 < prob < 1:
            raise SpecError(f"prob = {prob!r}: must lie in (0, 1)")
        self.prior_sharpe = prior_sharpe
        self.method, self.r, self.aw, self.bw = method, float(r), float(aw), float(bw)
        self.cross_section, self.intercept, self.prob = cross_section, bool(intercept), prob

    @classmethod
    def from_spec(cls, spec):
        """``(model, fit_kwargs)`` of a validated spec (``bayesbond.workflow.specs.Spec``):
        ``[model]`` method, cross_section, intercept, prob; ``[priors]`` prior_sharpe (no
        default: the prior's scale is the user's statement), r, aw, bw."""
        m, p = spec.model, spec.priors
        if "prior_sharpe" not in p:
            raise SpecError(f"{spec.source}: [priors] prior_sharpe: missing; give the prior "
                            "Sharpe ratio of the SDF per period of the data (e.g. 0.15 for "
                            "monthly returns)")
        kw = {k: float(p[k]) for k in ("r", "aw", "bw") if k in p}
        return cls(float(p["prior_sharpe"]), method=m["method"], cross_section=m["cross_section"],
                   intercept=m["intercept"], prob=m["prob"], **kw), {}

    def spec(self) -> dict:
        return {"family": "SDFSelection", "prior_sharpe": self.prior_sharpe,
                "method": self.method, "r": self.r, "aw": self.aw, "bw": self.bw,
                "cross_section": self.cross_section, "intercept": self.intercept,
                "prob": self.prob}

    def prepare(self, test_assets, factors) -> SDFPrepared:
        """Checked inputs (:func:`prepare_data`): DataFrames dates x assets, dates x factors."""
        return prepare_data(test_assets, factors, self.prior_sharpe, aw=self.aw, bw=self.bw,
                            intercept=self.intercept)

    def describe(self, prepared) -> str:
        T, N = prepared.R.shape
        return (f"{self.display(prepared)}: {len(prepared.factors)} factors, {N} test assets, "
                f"{T} dates")

    def priors_used(self, prepared) -> dict:
        return {"prior_sharpe": self.prior_sharpe, "sr_max": prepared.sr_max,
                "psi0": prepared.psi0, "psi": dict(zip(map(str, prepared.factors),
                                                       prepared.psi.tolist(), strict=True)),
                "r": self.r if self.method == "continuous" else 0.0, "aw": self.aw,
                "bw": self.bw, "intercept_precision": 1e-5 if self.intercept else None,
                "sigma2": "p(sigma2) ~ 1/sigma2", "moments": "Jeffreys |Sigma|^-(p+1)/2"}

    def check_vars(self, prepared, model) -> list[str]:
        return ["lambda", "sdf_sharpe", "sigma2"] + (["lambda_c"] if self.intercept else [])

    def build(self, prepared):
        raise ModelError("SDFSelection is sampled by a Gibbs sampler (continuous) or "
                         "enumerated exactly (dirac) in numpy and has no PyMC graph")

    # ------------------------------------------------------------------- the draws
    def draw(self, prepared, options, *, draws, tune, chains, random_seed, sampler=None,
             target_accept=None, progressbar=None, name="", **kwargs):
        """Gibbs (continuous) or exact (Dirac) draws in numpy; returns ``(idata, None)``."""
        import bayesbond
        from bayesbond.bayes import sampling

        if kwargs:
            raise SpecError(f"unknown keyword(s) {', '.join(sorted(kwargs))} for "
                            f"{type(self).__name__}.fit")
        R, f = prepared.R, prepared.f
        K, N = f.shape[1], R.shape[1]
        if self.method == "dirac" and K > kern.MAX_DIRAC_K:
            raise ModelError(f"method='dirac' enumerates all 2^K models and stops at K = "
                             f"{kern.MAX_DIRAC_K}; these data have K = {K} factors: use "
                             "method='continuous'")
        Y = np.column_stack([f, R])
        gls, n0 = self.cross_section == "gls", int(self.intercept)

        def moments(rng, n):
            mu, Sigma = kern.draw_moments(Y, n, rng)
            return kern.cross_section(mu, Sigma, K, gls=gls, intercept=self.intercept)

        seeds = np.random.SeedSequence(random_seed).spawn(chains)
        rngs = [np.random.default_rng(s) for s in seeds]
        sampling.report(f"sampling {self.describe(prepared)} ({self.method} spike-and-slab): "
                        f"{chains} chains x {draws} draws")
        t0 = time.perf_counter()
        if self.method == "continuous":
            s2 = _ols_sigma2(prepared, gls, self.intercept)  # start: sample-moment OLS
            out = kern.continuous_ss(moments, rngs, n_draws=draws, n_burn=tune, psi=prepared.psi,
                                     r=self.r, aw=self.aw, bw=self.bw, n0=n0, N=N,
                                     sigma2_start=s2)
        else:
            out = kern.dirac_ss(moments, rngs, n_draws=draws, psi=prepared.psi, aw=self.aw,
                                bw=self.bw, n0=n0, N=N)
        seconds = time.perf_counter() - t0
        idata = self._tree(prepared, out)
        idata.attrs.update(bayesbond_version=bayesbond.__version__, compile_seconds=0.0,
                           sampling_seconds=float(seconds), sampler=f"numpy {self.method} "
                           "spike-and-slab" + (" Gibbs" if self.method == "continuous" else ""),
                           random_seed=str(random_seed))
        sampling.report(f"sampled in {seconds:.1f} s")
        return idata, None

    def _tree(self, prepared, out) -> xr.DataTree:
        n0 = int(self.intercept)
        coords = {"factor": prepared.factors, "asset": prepared.assets}
        cd = ("chain", "draw")
        lam = out["lambda_all"]
        post = {"gamma": (cd + ("factor",), out["gamma"]),
                "lambda": (cd + ("factor",), lam[..., n0:]),
                "sigma2": (cd, out["sigma2"]),
                "sdf_loading": (cd + ("factor",), out["sdf_loading"]),
                "sdf_sharpe": (cd, out["sdf_sharpe"]),
                "n_factors": (cd, out["gamma"].sum(axis=-1, dtype=np.int64)),
                "expected_return": (cd + ("asset",), out["expected_return"])}
        if self.intercept:
            post["lambda_c"] = (cd, lam[..., 0])
        if "omega" in out:
            post["omega"] = (cd + ("factor",), out["omega"])
        chains, draws = out["sigma2"].shape
        ds = xr.Dataset(post, coords={**coords, "chain": np.arange(chains),
                                      "draw": np.arange(draws)})
        ds["lambda"].attrs["units"] = "Sharpe ratio per unit correlation (per period)"
        ds["sdf_sharpe"].attrs["units"] = "per period"
        stats = xr.Dataset({"n_factors": ds["n_factors"]})
        tree = xr.DataTree.from_dict({"posterior": ds, "sample_stats": stats})
        if "model_probability" in out:
            tree.attrs["_model_probability"] = out["model_probability"].mean(axis=0).tolist()
        return tree

    def postprocess(self, idata, prepared, options, random_seed) -> None:
        """The ``summary`` group (see the class Notes)."""
        post = idata["posterior"].to_dataset()
        q = [(1 - self.prob) / 2, (1 + self.prob) / 2]
        flat = post.stack(sample=("chain", "draw"))
        summ = {"inclusion_probability": flat["gamma"].astype(float).mean("sample"),
                "lambda_mean": flat["lambda"].mean("sample"),
                "expected_return_mean": flat["expected_return"].mean("sample"),
                "sample_mean_return": xr.DataArray(prepared.R.mean(axis=0), dims="asset"),
                "sdf_sharpe_mean": flat["sdf_sharpe"].mean("sample")}
        for v in ("lambda", "expected_return"):
            band = flat[v].quantile(q, dim="sample")
            summ[f"{v}_lower"] = band.isel(quantile=0, drop=True)
            summ[f"{v}_upper"] = band.isel(quantile=1, drop=True)
        b = flat["sdf_loading"].mean("sample").values
        fc = prepared.f - prepared.f.mean(axis=0)
        summ["bma_sdf"] = xr.DataArray(1.0 - fc @ b, dims="date")
        info = kern.information_ratio(prepared.R, prepared.f, prepared.psi,
                                      self.cross_section == "gls", self.intercept)
        summ["information_ratio"] = xr.DataArray(info, dims="factor")
        summ["identified"] = xr.DataArray(info >= IDENTIFIED, dims="factor")
        ds = xr.Dataset(summ, coords={"factor": prepared.factors, "asset": prepared.assets,
                                      "date": prepared.dates})
        mp = idata.attrs.pop("_model_probability", None)
        if mp is not None:
            K = len(prepared.factors)
            mp = np.asarray(mp)
            ds["model_probability"] = xr.DataArray(mp, dims="model",
                                                   coords={"model": np.arange(2**K)})
            ds["model_probability"].attrs["encoding"] = "bit j of model set: factor j included"
            ds["inclusion_probability"] = xr.DataArray(kern.model_bits(K).T @ mp, dims="factor")
        ds.attrs.update(prob=self.prob, method=self.method)
        idata["summary"] = xr.DataTree(ds)

    def data_groups(self, prepared) -> dict[str, xr.Dataset]:
        """``observed_data``: ``test_assets`` (date, asset), ``factors`` (date, factor);
        ``constant_data``: ``psi`` (factor), ``psi0``, ``sr_max``, ``prior_sharpe``."""
        c = {"date": prepared.dates, "asset": prepared.assets, "factor": prepared.factors}
        obs = xr.Dataset({"test_assets": (("date", "asset"), prepared.R),
                          "factors": (("date", "factor"), prepared.f)}, coords=c)
        const = xr.Dataset({"psi": ("factor", prepared.psi), "psi0": prepared.psi0,
                            "sr_max": prepared.sr_max,
                            "prior_sharpe": float(self.prior_sharpe)},
                           coords={"factor": prepared.factors})
        return {"observed_data": obs, "constant_data": const}

    def loglik_size(self, prepared) -> int:
        return prepared.R.shape[1]

    def pointwise_loglik(self, idata, *, dtype="float64", max_bytes=256 * 2**20, model=None):
        raise ModelError("SDFSelection has no pointwise log-likelihood: its cross-sectional "
                         "likelihood is conditional on each draw of the moments; compare "
                         "models through posterior model probabilities (method='dirac')")

    def fit(self, *data, log_likelihood=False, tune: int = 1000, **kwargs) -> xr.DataTree:
        """:meth:`BayesianModel.fit` without a log-likelihood group (see
        :meth:`pointwise_loglik`); ``tune`` is the Gibbs burn-in (unused by ``"dirac"``)."""
        return super().fit(*data, log_likelihood=log_likelihood, tune=tune, **kwargs)


def _ols_sigma2(prepared, gls: bool, intercept: bool) -> float:
    """Residual variance of the cross-section at the sample moments (the chains' start)."""
    Y = np.column_stack([prepared.f, prepared.R])
    K = prepared.f.shape[1]
    cs = kern.cross_section(Y.mean(axis=0)[None], np.cov(Y, rowvar=False)[None], K, gls=gls,
                            intercept=intercept)
    coef = np.linalg.lstsq(cs.G0[0], cs.g[0], rcond=None)[0]
    ssr = cs.c[0] - coef @ cs.g[0]
    return float(max(ssr, 1e-12) / prepared.R.shape[1])


def select_factors(test_assets, factors, *, prior_sharpe: float, method: str = "continuous",
                   draws: int = 5000, tune: int = 1000, chains: int = 4, random_seed=None,
                   r: float = 1e-3, aw: float = 1.0, bw: float = 1.0,
                   cross_section: str = "ols", intercept: bool = True, prob: float = 0.9,
                   progressbar=None) -> xr.DataTree:
    """Posterior inclusion probabilities and the BMA-SDF of the candidate ``factors``.

    Parameters
    ----------
    test_assets : pandas.DataFrame
        Excess returns, dates x assets (a tradable factor to be priced goes here).
    factors : pandas.DataFrame
        Candidate factors, dates x factors (the months common to both are used; a gap on one
        of them is refused).
    prior_sharpe : float
        Prior Sharpe ratio of the SDF per period of the data (see :class:`SDFSelection`).
    method : {"continuous", "dirac"}
    draws, tune, chains, random_seed
        Kept draws and burn-in per chain, chains (independent seeds spawned from
        ``random_seed``: the same seed gives the same draws).
    r, aw, bw, cross_section, intercept, prob
        See :class:`SDFSelection`.

    Returns
    -------
    xarray.DataTree
        ``posterior`` (``gamma``, ``lambda``, ``sdf_sharpe``, ``n_factors``,
        ``expected_return``, ...), ``sample_stats``, ``summary``, ``observed_data``,
        ``constant_data``; attributes ``diagnostics``, ``model``, ``family``, ``priors``,
        ``data_hash``, ``bayesbond_version``, ``sampling_seconds``.

    Examples
    --------
    >>> fit = bb.pricing.select_factors(ports, zoo, prior_sharpe=0.15)   # doctest: +SKIP
    >>> fit["summary"]["inclusion_probability"].to_series()              # doctest: +SKIP
    """
    model = SDFSelection(prior_sharpe, method=method, r=r, aw=aw, bw=bw,
                         cross_section=cross_section, intercept=intercept, prob=prob)
    return model.fit(test_assets, factors, draws=draws, tune=tune, chains=chains,
                     random_seed=random_seed, progressbar=progressbar)

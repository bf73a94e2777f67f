"""Pointwise log-likelihood of a factor-model fit, computed after sampling, in bounded memory.

The observations are the observed (bond, date) cells, in (date, bond) C order, on one dimension
``obs`` with coordinates ``obs_bond`` and ``obs_date``. The log-likelihood of cell ``(b, t)`` at
draw
``s`` is ``log N(R_bt | alpha_b + beta_b'F_t, sigma_b^2)`` (or the Student-t density with ``nu``).

:func:`loo` gives PSIS-LOO (Vehtari, Gelman and Gabry 2017; Vehtari et al. 2024) by one of three
routes:

* ``"chunked"`` (default): the log-likelihood of a block of bonds at a time (at most ``max_bytes``),
  Pareto-smoothed per observation with the same relative efficiency ``r_eff`` as
  :func:`arviz_stats.loo`. PSIS works observation by observation, so the result equals
  ``arviz_stats.loo`` on the full array, but the peak memory is one block (a 2,000-bond x 240-month
  panel with 4,000 draws: 15 GB as one float64 array, a few hundred MB in blocks);
* ``"exact"``: :func:`arviz_stats.loo` on the stored ``log_likelihood`` group (or on the full
  array);
* ``"subsample"``: :func:`arviz_stats.loo_subsample` (Magnusson et al. 2019) on the stored (or
  computed) full array, for a fast estimate with a subsampling standard error.

References
----------
Vehtari, A., Gelman, A. and Gabry, J. (2017). Practical Bayesian model evaluation using
leave-one-out
cross-validation and WAIC. *Stat. Comput.* 27(5).
Vehtari, A., Simpson, D., Gelman, A., Yao, Y. and Gabry, J. (2024). Pareto smoothed importance
sampling. *J. Mach. Learn. Res.* 25(72).
Magnusson, M., Andersen, M. R., Jonasson, J. and Vehtari, A. (2019). Bayesian leave-one-out
cross-validation for large data. *Proc. ICML*, PMLR 97.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy.special import gammaln

from bayesbond.errors import SpecError

__all__ = ["iter_loglik", "pointwise_loglik", "add_log_likelihood", "loo", "relative_eff"]

LOG_2PI = float(np.log(2.0 * np.pi))
VAR_NAME = "returns"


def _inputs(idata: xr.DataTree):
    for grp in ("posterior", "observed_data", "constant_data"):
        if grp not in idata.children:
            raise SpecError(f"the fit has no {grp!r} group: is it a FactorModel fit?")
    post = idata["posterior"].to_dataset()
    for v in ("alpha", "beta", "sigma"):
        if v not in post:
            raise SpecError(f"the posterior has no {v!r}: is it a FactorModel fit?")
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    F = idata["constant_data"]["factor_returns"].transpose("date", "factor")
    errors = idata.attrs.get("errors", "normal")
    return post, y, F, errors


def _chunk_bonds(n_samples: int, n_dates: int, n_bonds: int, max_bytes: int, itemsize: int):
    per_bond = max(1, n_samples * n_dates * itemsize * 3)  # mean, residual and output
    size = int(max(1, min(n_bonds, max_bytes // per_bond)))
    return [slice(i, min(i + size, n_bonds)) for i in range(0, n_bonds, size)]


def iter_loglik(idata: xr.DataTree, max_bytes: int = 256 * 2**20, dtype="float64"):
    """Yield the pointwise log-likelihood by blocks of bonds.

    Yields
    ------
    xarray.DataArray (chain, draw, obs)
        Observed cells of one block of bonds, in (date, bond) order inside the block, with
        ``obs_bond`` and ``obs_date`` coordinates. A block takes at most about ``max_bytes``.
    """
    post, y, F, errors = _inputs(idata)
    dtype = np.dtype(dtype)
    C, D = post.sizes["chain"], post.sizes["draw"]
    S = C * D
    yv = y.values
    Fv = F.values.astype(dtype)
    bonds = y["bond"].values
    dates = y["date"].values
    alpha = post["alpha"]
    beta = post["beta"]
    pooled = "bond" not in alpha.dims
    a_all = alpha.values.reshape(S, *alpha.shape[2:]).astype(dtype)
    b_all = beta.transpose("chain", "draw", ..., "factor").values
    b_all = b_all.reshape(S, *b_all.shape[2:]).astype(dtype)
    sig_all = post["sigma"].transpose("chain", "draw", "bond").values.reshape(S, -1).astype(dtype)
    if errors == "student_t":
        nu = post["nu"].values.reshape(S, 1).astype(dtype)
        const_t = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
    for sl in _chunk_bonds(S, len(dates), len(bonds), max_bytes, dtype.itemsize):
        yb = yv[:, sl]
        t_idx, j_idx = np.nonzero(np.isfinite(yb))
        if pooled:
            mu = a_all[:, None, None] + np.einsum("sk,tk->st", b_all, Fv)[:, :, None]
            mu = np.broadcast_to(mu, (S, len(dates), yb.shape[1]))
        else:
            mu = a_all[:, None, sl] + np.einsum("sbk,tk->stb", b_all[:, sl], Fv)
        mu_o = mu[:, t_idx, j_idx]
        del mu
        sig = sig_all[:, sl][:, j_idx]
        z = (yb[t_idx, j_idx].astype(dtype)[None, :] - mu_o) / sig
        del mu_o
        if errors == "student_t":
            ll = const_t - np.log(sig) - (nu + 1) / 2 * np.log1p(z * z / nu)
        else:
            ll = -0.5 * LOG_2PI - np.log(sig) - 0.5 * z * z
        ll = ll.astype(dtype, copy=False).reshape(C, D, -1)
        yield xr.DataArray(
            ll, dims=("chain", "draw", "obs"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values,
                    "obs_bond": ("obs", bonds[sl][j_idx]), "obs_date": ("obs", dates[t_idx])},
            name=VAR_NAME,
        )


def pointwise_loglik(idata: xr.DataTree, dtype="float64", max_bytes: int = 256 * 2**20):
    """Full pointwise log-likelihood (chain, draw, obs), observed cells in (date, bond) order."""
    parts = list(iter_loglik(idata, max_bytes=max_bytes, dtype=dtype))
    da = xr.concat(parts, dim="obs") if len(parts) > 1 else parts[0]
    # restore the global (date, bond) order of the observed cells
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    bonds = list(y["bond"].values)
    date_pos = {d: i for i, d in enumerate(y["date"].values)}
    key = np.array([date_pos[d] for d in da["obs_date"].values]) * len(bonds) + _positions(
        bonds, da["obs_bond"].values)
    order = np.argsort(key, kind="stable")
    return da.isel(obs=order).assign_coords(obs=np.arange(da.sizes["obs"]))


def _positions(labels, values) -> np.ndarray:
    pos = {b: i for i, b in enumerate(labels)}
    return np.array([pos[v] for v in values])


def add_log_likelihood(idata: xr.DataTree, dtype="float64") -> xr.DataTree:
    """Store the full pointwise log-likelihood as ``log_likelihood/returns`` (in place)."""
    idata["log_likelihood"] = xr.DataTree(pointwise_loglik(idata, dtype=dtype).to_dataset())
    return idata


def relative_eff(idata: xr.DataTree) -> float:
    """Relative efficiency ``r_eff``: mean ESS ("mean" method) over the posterior / draws.

    The same scalar :func:`arviz_stats.loo` uses by default.
    """
    import arviz_stats as azs

    post = idata["posterior"].to_dataset()
    n = post.sizes["chain"] * post.sizes["draw"]
    if post.sizes["chain"] == 1:
        return 1.0
    ess = azs.ess(post, method="mean")
    return float(np.hstack([ess[v].values.ravel() for v in ess.data_vars]).mean() / n)


def loo(
    idata: xr.DataTree,
    method: str = "chunked",
    *,
    observations: int | None = None,
    max_bytes: int = 256 * 2**20,
    dtype="float64",
    seed: int = 315,
):
    """PSIS-LOO of a factor-model fit.

    Parameters
    ----------
    idata : xarray.DataTree
        A :meth:`FactorModel.fit` result.
    method : {"chunked", "exact", "subsample"}
        See the module docstring. ``"exact"`` and ``"subsample"`` use the stored ``log_likelihood``
        group when present, otherwise compute the full array.
    observations : int, optional
        Subsample size for ``method="subsample"`` (default: 10% of the cells, at least 100, at most
        5,000). Drawn as :func:`arviz_stats.loo_subsample` draws it from ``seed``.
    max_bytes : int
        Memory bound of one block for ``"chunked"``.
    dtype : {"float64", "float32"}
        Precision of the computed log-likelihood.
    seed : int
        Seed of the subsample.

    Returns
    -------
    arviz_stats.ELPDDataLOO
        With pointwise ``elpd_i`` and ``pareto_k`` (dim ``obs``). High Pareto k values raise the
        usual ArviZ warning (never silenced).
    """
    import arviz_stats as azs
    from arviz_stats import ELPDDataLOO

    if method not in ("chunked", "exact", "subsample"):
        raise SpecError(f"unknown LOO method {method!r}; use 'chunked', 'exact' or 'subsample'")
    if method == "exact":
        data = idata
        if "log_likelihood" not in idata.children:
            data = idata.copy()
            add_log_likelihood(data, dtype=dtype)
        return azs.loo(data, pointwise=True, var_name=VAR_NAME)
    if method == "subsample":
        return _loo_subsample(idata, observations, max_bytes, dtype, seed)

    reff = relative_eff(idata)
    post = idata["posterior"]
    n_samples = post.sizes["chain"] * post.sizes["draw"]
    elpd_parts, k_parts, p_parts, bond_parts, date_parts = [], [], [], [], []
    for ll in iter_loglik(idata, max_bytes=max_bytes, dtype=dtype):
        ll64 = ll.astype("float64", copy=False)
        elpd_i, pareto_k, p_loo_i = ll64.azstats.loo(sample_dims=["chain", "draw"], r_eff=reff)
        elpd_parts.append(elpd_i.values)
        k_parts.append(pareto_k.values)
        p_parts.append(p_loo_i.values)
        bond_parts.append(ll["obs_bond"].values)
        date_parts.append(ll["obs_date"].values)
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    date_pos = {d: i for i, d in enumerate(y["date"].values)}
    obs_b = np.concatenate(bond_parts)
    obs_d = np.concatenate(date_parts)
    key = np.array([date_pos[d] for d in obs_d]) * y.sizes["bond"] + _positions(
        list(y["bond"].values), obs_b)
    order = np.argsort(key, kind="stable")
    coords = {"obs": np.arange(len(order)), "obs_bond": ("obs", obs_b[order]),
              "obs_date": ("obs", obs_d[order])}
    elpd_i = xr.DataArray(np.concatenate(elpd_parts)[order], dims="obs", coords=coords)
    pareto_k = xr.DataArray(np.concatenate(k_parts)[order], dims="obs", coords=coords)
    p_loo_i = xr.DataArray(np.concatenate(p_parts)[order], dims="obs", coords=coords)
    elpd, se, p_loo, _ = elpd_i.azstats.loo_summary(p_loo_i)
    good_k = min(1 - 1 / np.log10(n_samples), 0.7) if n_samples > 1 else 0.7
    warn = bool(np.any(pareto_k.values > good_k))
    if warn:
        n_bad = int((pareto_k.values > good_k).sum())
        warnings.warn(
            f"Pareto k > {good_k:.2f} for {n_bad} of {pareto_k.size} observations: the PSIS-LOO "
            "estimate is unreliable there (influential observations or a misspecified model).",
            UserWarning, stacklevel=2)
    return ELPDDataLOO(
        elpd=float(elpd), se=float(se), p=float(p_loo), n_samples=n_samples,
        n_data_points=int(elpd_i.size), scale="log", warning=warn, good_k=good_k,
        elpd_i=elpd_i, pareto_k=pareto_k, approx_posterior=False,
    )


def _loo_subsample(idata, observations, max_bytes, dtype, seed):
    """Difference-estimator subsampled PSIS-LOO computed block by block (see module docstring)."""
    from arviz_stats import ELPDDataLOOSubsample
    from scipy.special import logsumexp

    y = idata["observed_data"]["returns"].transpose("date", "bond")
    mask = np.isfinite(y.values)
    N = int(mask.sum())
    gpos = np.full(mask.shape, -1)
    gpos[mask] = np.arange(N)  # global (date, bond) C-order position of each observed cell
    m = observations or min(5000, max(100, N // 10))
    if not 1 <= m <= N:
        raise SpecError(f"observations must be between 1 and {N}; got {m}")
    idx = np.random.default_rng(seed).choice(N, size=m, replace=False)
    wanted = np.zeros(N, dtype=bool)
    wanted[idx] = True
    date_pos = {d: i for i, d in enumerate(y["date"].values)}
    bond_pos = {b: i for i, b in enumerate(y["bond"].values)}
    post = idata["posterior"]
    n_samples = post.sizes["chain"] * post.sizes["draw"]
    lpd_all = np.empty(N)
    parts, part_pos = [], []
    for ll in iter_loglik(idata, max_bytes=max_bytes, dtype=dtype):
        g = gpos[[date_pos[d] for d in ll["obs_date"].values],
                 [bond_pos[b] for b in ll["obs_bond"].values]]
        v = ll.values.astype("float64", copy=False)
        lpd_all[g] = logsumexp(v, axis=(0, 1)) - np.log(n_samples)
        sel = wanted[g]
        if sel.any():
            parts.append(v[:, :, sel])
            part_pos.append(g[sel])
    pos = np.concatenate(part_pos)
    ll_s = xr.DataArray(np.concatenate(parts, axis=2), dims=("chain", "draw", "obs"),
                        coords={"obs": pos})
    elpd_i, pareto_k, _ = ll_s.azstats.loo(sample_dims=["chain", "draw"],
                                           r_eff=relative_eff(idata))
    lpd_all_da = xr.DataArray(lpd_all, dims="obs", coords={"obs": np.arange(N)})
    lpd_s = lpd_all_da.sel(obs=pos)
    elpd, sub_se, se = elpd_i.azstats.diff_srs_estimator(
        lpd_approx_sample=lpd_s, lpd_approx_all=lpd_all_da, n_data_points=N)
    p_loo, _, _ = (lpd_s - elpd_i).azstats.srs_estimator(n_data_points=N)
    good_k = min(1 - 1 / np.log10(n_samples), 0.7) if n_samples > 1 else 0.7
    warn = bool(np.any(pareto_k.values > good_k))
    if warn:
        warnings.warn(
            f"Pareto k > {good_k:.2f} for {int((pareto_k.values > good_k).sum())} of {m} "
            "subsampled observations: the PSIS-LOO estimate is unreliable there.",
            UserWarning, stacklevel=3)
    return ELPDDataLOOSubsample(
        elpd=float(elpd), se=float(se), p=float(p_loo), n_samples=n_samples, n_data_points=N,
        scale="log", warning=warn, good_k=good_k, elpd_i=elpd_i, pareto_k=pareto_k,
        approx_posterior=False, subsampling_se=float(sub_se), subsample_size=m,
        loo_subsample_observations=np.sort(idx), elpd_loo_approx=lpd_all_da,
    )

"""PSIS-LOO of fits, with the factor model's pointwise log-likelihood computed in bounded memory.

The factor model's pointwise log-likelihood (observed (bond, date) cells on dimension ``obs``)
is computed from the fit by :mod:`bayesbond.bayes.factor_loglik`, block by block; the names
:func:`iter_loglik`, :func:`pointwise_loglik` and :func:`add_log_likelihood` are re-exported here.

:func:`loo` gives PSIS-LOO (Vehtari, Gelman and Gabry 2017; Vehtari et al. 2024) of one of two
units: a bond-month cell (``by="obs"``, the default) or a whole bond (``by="bond"``: the bond's
returns given the factors and its bucket's hyperparameters, its coefficients and residual scale
integrated out by :func:`bayesbond.bayes.factor_bond_loglik.bond_loglik`; how well the model
predicts a new bond of the bucket). Both score the returns given the factor returns (``R |
F``), not an asset-pricing model. The cells are cross-validated by one of three routes:

* ``"chunked"`` (default): the log-likelihood of a block of bonds at a time (at most about
  ``max_bytes``), Pareto-smoothed per observation with the same relative efficiency ``r_eff`` as
  :func:`arviz_stats.loo`. PSIS works observation by observation, so the result equals
  ``arviz_stats.loo`` on the full array, but the peak memory is one block plus arrays the size of
  the posterior (a 2,000-bond x 240-month panel with 4,000 draws: 15 GB as one float64 array,
  a few hundred MB in blocks). The smoothing is :func:`bayesbond.workflow.psis.psis_loo_pointwise`
  (``arviz_stats``' algorithm and numbers, vectorised over observations);
* ``"exact"``: :func:`arviz_stats.loo` on the stored ``log_likelihood`` group, or, when the fit
  has none, on the full array computed in memory;
* ``"subsample"``: the difference estimator of Magnusson et al. (2019), with the subsample drawn
  and the estimate computed as :func:`arviz_stats.loo_subsample` (``method="lpd"``) does, but
  block by block: every block gives the ``lpd`` approximation of its cells, and only the
  log-likelihood of the subsampled cells is kept for PSIS. It never reads a stored
  ``log_likelihood`` group; a fast estimate with a subsampling standard error.

References
----------
Vehtari, A., Gelman, A. and Gabry, J. (2017). Practical Bayesian model evaluation using
leave-one-out cross-validation and WAIC. *Stat. Comput.* 27(5).
Vehtari, A., Simpson, D., Gelman, A., Yao, Y. and Gabry, J. (2024). Pareto smoothed importance
sampling. *J. Mach. Learn. Res.* 25(72).
Magnusson, M., Andersen, M. R., Jonasson, J. and Vehtari, A. (2019). Bayesian leave-one-out
cross-validation for large data. *Proc. ICML*, PMLR 97.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from bayesbond.bayes.factor_loglik import (
    VAR_NAME,
    add_log_likelihood,
    global_positions,
    iter_loglik,
    loglik_blocks,
    pointwise_loglik,
)
from bayesbond.errors import DataError, SpecError, listing
from bayesbond.workflow.psis import psis_loo_pointwise

__all__ = ["iter_loglik", "pointwise_loglik", "add_log_likelihood", "loo", "relative_eff",
           "stored_loo"]

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


def _good_k(n_samples: int) -> float:
    return min(1 - 1 / np.log10(n_samples), 0.7) if n_samples > 1 else 0.7


def _extra_bytes(dtype) -> int:
    """Bytes a cell the subsample route adds to a block: a float64 copy of a float32 block."""
    return 0 if np.dtype(dtype) == np.float64 else 8


def _psis_work_bytes(max_bytes: int) -> int:
    """Bound on the temporaries of :func:`psis_loo_pointwise` for blocks of ``max_bytes``."""
    return max(int(max_bytes) // 16, 2**16)


def _cell_name(bond, date) -> str:
    if isinstance(date, np.datetime64):
        date = np.datetime_as_string(date, unit="D")
    return f"bond {bond} on {date}"


def _psis(ll2d: np.ndarray, r_eff: float, max_bytes: int, bonds, dates):
    """:func:`psis_loo_pointwise` of ``(draws, cells)``; errors name the bond and date of a cell.

    ``bonds`` and ``dates`` label the columns of ``ll2d``.
    """
    try:
        return psis_loo_pointwise(ll2d, r_eff, block_bytes=_psis_work_bytes(max_bytes))
    except DataError as err:
        cols = getattr(err, "columns", None)
        if not cols:
            raise
        names = [_cell_name(bonds[c], dates[c]) for c in cols]
        shown = listing(names, sep="; ")
        raise DataError(
            f"PSIS-LOO: the log-likelihood of {shown} has its largest importance ratios all equal "
            "(is it constant over the draws?): no Pareto tail can be fitted "
            "(arviz_stats.loo raises too)") from err


def loo(
    idata: xr.DataTree,
    method: str = "chunked",
    *,
    by: str = "obs",
    nodes: int = 32,
    observations: int | None = None,
    max_bytes: int = 256 * 2**20,
    dtype="float64",
    seed: int = 315,
):
    """PSIS-LOO of a factor-model fit: leave one cell (bond-month) or one bond out.

    Parameters
    ----------
    idata : xarray.DataTree
        A :meth:`FactorModel.fit` result; an OU or affine fit (no observed ``returns``) is
        cross-validated over its dates from its stored ``log_likelihood`` group
        (:func:`stored_loo`, whatever ``method``).
    method : {"chunked", "exact", "subsample"}
        See the module docstring. ``"exact"`` uses the stored ``log_likelihood`` group when
        present, otherwise computes the full array in memory; ``"chunked"`` and ``"subsample"``
        always compute the log-likelihood block by block and never read a stored group.
        Cells only (``by="obs"``).
    by : {"obs", "bond"}
        ``"obs"`` (default): leave one observed (bond, date) cell out. ``"bond"``: leave one
        whole bond out, scored by the log predictive density of all its returns given the
        factor returns and its bucket's hyperparameters, its own coefficients and residual
        scale integrated out (:func:`bayesbond.bayes.factor_bond_loglik.bond_loglik`): how
        well the model predicts a *new* bond of the bucket. Hierarchical or pooled Gaussian
        fits without date effects only.
    nodes : int
        Gauss-Hermite nodes over ``log sigma`` for ``by="bond"``.
    observations : int, optional
        Subsample size for ``method="subsample"`` (default: 10% of the observed cells, at least
        100 and at most 5,000, and never more than the number of cells). Drawn as
        :func:`arviz_stats.loo_subsample` draws it from ``seed``.
    max_bytes : int
        Memory of one block for ``"chunked"`` and ``"subsample"`` (see :func:`iter_loglik`;
        for ``"subsample"`` the float64 copy of a float32 block included). The PSIS temporaries
        (about ``max_bytes / 16``), arrays the size of the posterior, the pointwise results (a
        few float64 values per observed cell) and, for ``"subsample"``, the log-likelihood of the
        subsampled cells (``chains * draws * observations`` float64 values) come on top.
    dtype : {"float64", "float32"}
        Precision of the computed log-likelihood (PSIS itself runs in float64).
    seed : int
        Seed of the subsample.

    Returns
    -------
    arviz_stats.ELPDDataLOO or arviz_stats.ELPDDataLOOSubsample
        With the Python attributes ``unit`` (``"obs"``, ``"bond"``, or ``"date"`` for an OU or
        affine fit) and ``method`` (e.g. ``"psis-loo(by=obs)"``), read by
        :func:`bayesbond.compare`. With ``by="bond"``: ``elpd_i`` and ``pareto_k`` over dim
        ``bond`` (coordinate ``bond_group``: the bond's group). Otherwise with pointwise
        ``elpd_i`` and ``pareto_k`` (dim ``obs``, coordinates ``obs_bond`` and
        ``obs_date``). For ``"subsample"`` they hold the subsampled cells only, in increasing
        observation index, and their ``obs`` coordinate equals ``loo_subsample_observations``:
        the indices of those cells among all observed cells in (date, bond) order (the ``obs``
        index of :func:`pointwise_loglik` and of the other routes). High Pareto k values raise
        the usual ArviZ warning (never silenced).

    Notes
    -----
    ``by="bond"``: with ``ll_si = log p(y_i | F, phi_s)`` the bond's log predictive density at
    posterior draw ``s`` of the hyperparameters ``phi = (mu_alpha_g, mu_beta_g, tau_alpha_g,
    tau_beta_g[, corr_beta_g], mu_log_sigma_g, tau_log_sigma_g)`` of its group ``g``,

        p(y_i | F, phi) = integral N(y_i | X_i m_g, sigma^2 I + X_i S_g S_g' X_i')
                          N(log sigma; mu_log_sigma_g, tau_log_sigma_g) d log sigma,

    ``elpd_i = log sum_s w_si exp(ll_si) / sum_s w_si`` with the Pareto-smoothed weights of
    ``exp(-ll_si)`` (the same PSIS as the cells), which estimates ``log p(y_i | y_{-i})``: the
    density of bond ``i`` under the posterior fitted without it. For a pooled fit ``m`` is the
    shared ``(alpha, beta)`` and ``S = 0``.

    Raises
    ------
    SpecError
        Unknown method or ``by``, a subsample size outside ``1..N``, or a fit that does not
        match its data (see :func:`iter_loglik`); ``by="bond"`` on an unpooled, Student-t or
        date-effects fit (why is said).
    DataError
        ``"chunked"``/``"subsample"``: cells whose largest importance ratios are all equal (a
        log-likelihood constant over the draws), named by bond and date, where
        ``arviz_stats.loo`` raises a ValueError; or fewer than 25 draws.
    """
    import arviz_stats as azs
    from arviz_stats import ELPDDataLOO

    if method not in ("chunked", "exact", "subsample"):
        raise SpecError(f"unknown LOO method {method!r}; use 'chunked', 'exact' or 'subsample'")
    if by not in ("obs", "bond"):
        raise SpecError(f"unknown LOO unit by={by!r}; use 'obs' (one bond-month cell) or "
                        "'bond' (one whole bond)")
    if "observed_data" in idata.children and VAR_NAME not in idata["observed_data"].data_vars:
        if by == "bond":
            raise SpecError("by='bond' needs a FactorModel fit (observed 'returns' by bond); "
                            "this fit's units are its dates")
        return stored_loo(idata)  # an OU or affine fit: its per-date log-likelihood
    if by == "bond":
        return _loo_bond(idata, nodes, max_bytes)
    if method == "exact":
        data = idata
        if "log_likelihood" not in idata.children:
            data = idata.copy()
            add_log_likelihood(data, dtype=dtype)
        return _tag(azs.loo(data, pointwise=True, var_name=VAR_NAME), "obs",
                    "psis-loo(by=obs)")
    if method == "subsample":
        return _tag(_loo_subsample(idata, observations, max_bytes, dtype, seed), "obs",
                    f"psis-loo(by=obs, subsample={observations or 'default'})")

    reff = relative_eff(idata)
    post = idata["posterior"]
    n_samples = post.sizes["chain"] * post.sizes["draw"]
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    mask = np.isfinite(y.values)
    gpos = global_positions(mask)
    N = int(mask.sum())
    elpd_v, k_v, p_v = np.empty(N), np.empty(N), np.empty(N)
    bonds, dates = y["bond"].values, y["date"].values
    # PSIS converts a float32 block to float64 by sub-blocks: no float64 copy of the block
    for ll, t_idx, b_idx in loglik_blocks(idata, max_bytes, dtype):
        g = gpos[t_idx, b_idx]
        elpd_v[g], k_v[g], p_v[g] = _psis(ll.reshape(n_samples, -1), reff, max_bytes,
                                          bonds[b_idx], dates[t_idx])
        del ll
    t, b = np.nonzero(mask)
    coords = {"obs": np.arange(N), "obs_bond": ("obs", y["bond"].values[b]),
              "obs_date": ("obs", y["date"].values[t])}
    elpd_i = xr.DataArray(elpd_v, dims="obs", coords=coords)
    pareto_k = xr.DataArray(k_v, dims="obs", coords=coords)
    p_loo_i = xr.DataArray(p_v, dims="obs", coords=coords)
    elpd, se, p_loo, _ = elpd_i.azstats.loo_summary(p_loo_i)
    good_k = _good_k(n_samples)
    warn = bool(np.any(pareto_k.values > good_k))
    if warn:
        n_bad = int((pareto_k.values > good_k).sum())
        warnings.warn(
            f"Pareto k > {good_k:.2f} for {n_bad} of {pareto_k.size} observations: the PSIS-LOO "
            "estimate is unreliable there (influential observations or a misspecified model).",
            UserWarning, stacklevel=2)
    return _tag(ELPDDataLOO(
        elpd=float(elpd), se=float(se), p=float(p_loo), n_samples=n_samples,
        n_data_points=int(elpd_i.size), scale="log", warning=warn, good_k=good_k,
        elpd_i=elpd_i, pareto_k=pareto_k, approx_posterior=False,
    ), "obs", "psis-loo(by=obs)")


def _tag(result, unit: str, method: str):
    """``result`` with the Python attributes ``unit`` and ``method`` (read by compare)."""
    result.unit = unit
    result.method = method
    return result


def _loo_bond(idata: xr.DataTree, nodes: int, max_bytes: int):
    """Leave-one-bond-out PSIS-LOO from the collapsed per-bond marginal (see :func:`loo`)."""
    from arviz_stats import ELPDDataLOO

    from bayesbond.bayes.factor_bond_loglik import bond_loglik

    ll = bond_loglik(idata, nodes=nodes, max_bytes=max_bytes)
    C, D, B = ll.shape
    n_samples = C * D
    bonds = ll["bond"].values
    try:
        elpd_v, k_v, p_v = psis_loo_pointwise(ll.values.reshape(n_samples, B),
                                              relative_eff(idata),
                                              block_bytes=_psis_work_bytes(max_bytes))
    except DataError as err:
        cols = getattr(err, "columns", None)
        if not cols:
            raise
        raise DataError(
            f"leave-one-bond-out: the log predictive density of bonds "
            f"{listing([str(bonds[c]) for c in cols])} has its largest importance ratios all "
            "equal (constant over the draws?): no Pareto tail can be fitted") from err
    coords = {"bond": bonds}
    if "bond_group" in ll.coords:
        coords["bond_group"] = ("bond", ll["bond_group"].values)
    elpd_i = xr.DataArray(elpd_v, dims="bond", coords=coords)
    pareto_k = xr.DataArray(k_v, dims="bond", coords=coords)
    p_i = xr.DataArray(p_v, dims="bond", coords=coords)
    elpd, se, p_loo, _ = elpd_i.azstats.loo_summary(p_i)
    good_k = _good_k(n_samples)
    bad = pareto_k.values > good_k
    if bad.any():
        warnings.warn(
            f"leave-one-bond-out: Pareto k > {good_k:.2f} for {int(bad.sum())} of {B} bonds "
            f"({listing([str(b) for b in bonds[bad]])}): the PSIS estimate of their elpd is "
            "unreliable (a bond that moves the hyperparameters; refit without it to check)",
            UserWarning, stacklevel=3)
    return _tag(ELPDDataLOO(
        elpd=float(elpd), se=float(se), p=float(p_loo), n_samples=n_samples, n_data_points=B,
        scale="log", warning=bool(bad.any()), good_k=good_k, elpd_i=elpd_i, pareto_k=pareto_k,
        approx_posterior=False,
    ), "bond", f"psis-loo(by=bond, nodes={int(nodes)})")


def stored_loo(idata: xr.DataTree, what: str = "the fit"):
    """PSIS-LOO (:func:`arviz_stats.loo`) of the fit's stored ``log_likelihood`` group.

    The route of OU and affine fits, whose group holds one variable over ``date`` (the exact
    transition density of each date). A fit stored without the group has it computed by its
    family's :meth:`~bayesbond.bayes.base.BayesianModel.pointwise_loglik`. ``what`` names the
    fit in the errors.

    Raises
    ------
    SpecError
        No ``log_likelihood`` group (with the reason the fit recorded), or not one variable.
    """
    import arviz_stats as azs

    if "log_likelihood" not in idata.children:
        from bayesbond.bayes.registry import family_of_fit, get

        key = family_of_fit(idata)
        if key is None or "model" not in idata.attrs:
            note = idata.attrs.get("log_likelihood", "")
            why = "names no model family" if key is None else "records no model spec"
            raise SpecError(f"{what} has no 'log_likelihood' group"
                            f"{f' ({note})' if note else ''} and {why} to compute it from: "
                            "refit it with log_likelihood=True")
        model = get(key).load().from_fit(idata)  # the model contract computes it from the fit
        idata = idata.copy()
        idata["log_likelihood"] = xr.DataTree(xr.Dataset(
            {model.loglik_var: model.pointwise_loglik(idata)}))
    names = list(idata["log_likelihood"].data_vars)
    if len(names) != 1:
        raise SpecError(f"{what}: its 'log_likelihood' group has {names}, expected one variable")
    dims = [d for d in idata["log_likelihood"][names[0]].dims if d not in ("chain", "draw")]
    unit = "date" if dims == ["date"] else "obs"
    return _tag(azs.loo(idata, pointwise=True, var_name=names[0]), unit,
                f"psis-loo(by={unit})")


def _loo_subsample(idata, observations, max_bytes, dtype, seed):
    """Difference-estimator subsampled PSIS-LOO computed block by block (see module docstring)."""
    from arviz_stats import ELPDDataLOOSubsample

    y = idata["observed_data"]["returns"].transpose("date", "bond")
    mask = np.isfinite(y.values)
    N = int(mask.sum())
    gpos = global_positions(mask)
    if N == 0:
        raise SpecError("the observed data have no observed cell: nothing to cross-validate")
    if observations is None:
        m = min(N, 5000, max(100, N // 10))
    else:
        m = int(observations)
        if not 1 <= m <= N:
            raise SpecError(f"observations (the subsample size) must be between 1 and {N}, the "
                            f"number of observed cells; got {observations}")
    # the draw of arviz_stats.loo_subsample; the cells are then taken in increasing index
    idx = np.sort(np.random.default_rng(seed).choice(N, size=m, replace=False))
    wanted = np.zeros(N, dtype=bool)
    wanted[idx] = True
    post = idata["posterior"]
    C, D = post.sizes["chain"], post.sizes["draw"]
    n_samples = C * D
    log_s = np.log(n_samples)
    lpd_all = np.empty(N)
    ll_s = np.empty((C, D, m))
    for ll, t_idx, b_idx in loglik_blocks(idata, max_bytes, dtype, _extra_bytes(dtype)):
        v = ll.astype("float64", copy=False)  # the block itself when float64: ours to overwrite
        del ll
        g = gpos[t_idx, b_idx]
        sel = wanted[g]
        if sel.any():
            ll_s[:, :, np.searchsorted(idx, g[sel])] = v[:, :, sel]
        # lpd_i = log mean_s exp(ll_si), in place
        vmax = v.max(axis=(0, 1))
        vmax[~np.isfinite(vmax)] = 0.0
        v -= vmax
        np.exp(v, out=v)
        lpd_all[g] = np.log(v.sum(axis=(0, 1))) + vmax - log_s
        del v
    t, b = np.nonzero(mask)
    coords = {"obs": idx, "obs_bond": ("obs", y["bond"].values[b[idx]]),
              "obs_date": ("obs", y["date"].values[t[idx]])}
    elpd_v, k_v, _ = _psis(ll_s.reshape(n_samples, m), relative_eff(idata), max_bytes,
                           y["bond"].values[b[idx]], y["date"].values[t[idx]])
    del ll_s
    elpd_i = xr.DataArray(elpd_v, dims="obs", coords=coords)
    pareto_k = xr.DataArray(k_v, dims="obs", coords=coords)
    lpd_all_da = xr.DataArray(lpd_all, dims="obs", coords={"obs": np.arange(N)})
    lpd_s = xr.DataArray(lpd_all[idx], dims="obs", coords=coords)
    elpd, sub_se, se = elpd_i.azstats.diff_srs_estimator(
        lpd_approx_sample=lpd_s, lpd_approx_all=lpd_all_da, n_data_points=N)
    p_loo, _, _ = (lpd_s - elpd_i).azstats.srs_estimator(n_data_points=N)
    good_k = _good_k(n_samples)
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
        loo_subsample_observations=idx, elpd_loo_approx=lpd_all_da,
    )

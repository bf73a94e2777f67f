"""Pointwise log-likelihood of a factor-model fit, computed after sampling, in bounded memory.

The observations are the observed (bond, date) cells, in (date, bond) C order, on one dimension
``obs`` with coordinates ``obs_bond`` and ``obs_date``. The log-likelihood of cell ``(b, t)`` at
draw ``s`` is ``log N(R_bt | alpha_b + beta_b'F_t, sigma_b^2)`` (or the Student-t density with
``nu``). The posterior and the factor returns are matched to the observed cells by label (bond,
date and factor coordinates), whatever the order of their dimensions or labels.

:func:`loo` gives PSIS-LOO (Vehtari, Gelman and Gabry 2017; Vehtari et al. 2024) by one of three
routes:

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
from scipy.special import gammaln

from bayesbond.errors import DataError, SpecError, listing
from bayesbond.workflow.psis import psis_loo_pointwise

__all__ = ["iter_loglik", "pointwise_loglik", "add_log_likelihood", "loo", "relative_eff",
           "stored_loo"]

LOG_2PI = float(np.log(2.0 * np.pi))
VAR_NAME = "returns"
#: rows of the in-place compaction of a block, so that its temporary is at most 1/16 of the block
_COMPACT_PARTS = 16


def _by_label(da: xr.DataArray, dim: str, labels, what: str,
              source: str = "the observed data") -> xr.DataArray:
    """``da`` restricted to ``labels`` of ``dim`` in that order; a clear error if any is missing."""
    if dim not in da.dims:
        return da
    if dim not in da.coords:
        if da.sizes[dim] != len(labels):
            raise SpecError(f"{what} has {da.sizes[dim]} {dim!r} entries without labels, "
                            f"{source} {len(labels)}: cannot match them")
        return da
    have = da[dim].values
    if len(have) == len(labels) and np.array_equal(have, labels):
        return da
    missing = [str(v) for v in np.asarray(labels)[~np.isin(labels, have)]]
    if missing:
        shown = listing(missing)
        raise SpecError(f"{what} has no {dim} {shown}, which {source} has: is it the fit of "
                        "these data?")
    return da.sel({dim: np.asarray(labels)})


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
    F = _by_label(F, "date", y["date"].values, "constant_data.factor_returns",
                  "observed_data.returns")
    bonds = y["bond"].values
    alpha = _by_label(post["alpha"], "bond", bonds, "the posterior's 'alpha'")
    beta = _by_label(post["beta"], "bond", bonds, "the posterior's 'beta'")
    beta = _by_label(beta, "factor", F["factor"].values, "the posterior's 'beta'",
                     "constant_data.factor_returns")
    sigma = _by_label(post["sigma"], "bond", bonds, "the posterior's 'sigma'")
    if "bond" not in sigma.dims:
        raise SpecError("the posterior's 'sigma' has no 'bond' dimension: is it a FactorModel fit?")
    alpha = alpha.transpose("chain", "draw", ...)
    beta = beta.transpose("chain", "draw", ..., "factor")
    sigma = sigma.transpose("chain", "draw", "bond")
    errors = idata.attrs.get("errors", "normal")
    if errors == "student_t" and "nu" not in post:
        raise SpecError("a Student-t fit needs the degrees of freedom 'nu' in its posterior")
    nu = post["nu"].transpose("chain", "draw") if errors == "student_t" else None
    return post, y, F, alpha, beta, sigma, nu, errors


def _chunk_bonds(n_samples: int, n_dates: int, n_bonds: int, max_bytes: int,
                 bytes_per_cell: int):
    """Slices of at most ``max_bytes // (n_samples * n_dates * bytes_per_cell)`` bonds (>= 1)."""
    per_bond = max(1, n_samples * n_dates * bytes_per_cell)
    size = int(max(1, min(n_bonds, max_bytes // per_bond)))
    return [slice(i, min(i + size, n_bonds)) for i in range(0, n_bonds, size)]


def _compact(flat: np.ndarray, keep: np.ndarray) -> None:
    """Move columns ``keep`` (increasing) of ``flat`` to its first ``len(keep)`` columns, in place.

    By parts of rows, so that the temporary is at most ``1 / _COMPACT_PARTS`` of ``flat``.
    """
    step = max(1, -(-flat.shape[0] // _COMPACT_PARTS))
    for r in range(0, flat.shape[0], step):
        flat[r:r + step, :len(keep)] = flat[r:r + step, keep]


def _blocks(idata: xr.DataTree, max_bytes: int, dtype, extra_bytes_per_cell: int = 0):
    """Yield ``(ll, t_idx, b_idx)``: a block's log-likelihood (chain, draw, obs) and the date and
    bond positions (in ``observed_data``) of its cells.

    A block is one array of ``chain * draw * dates * bonds`` values of ``dtype``, filled in place
    and compacted in place to the observed cells (the yielded array is a view of it), so it takes
    ``itemsize`` bytes a (draw, date, bond) cell; the other temporaries are at most 1/16 of that
    or of size (draws, bonds of the block). ``extra_bytes_per_cell`` is what the caller adds for
    each cell while it holds the block (8 for a float64 copy of a float32 block). The blocks are
    sized so that the two together take at most ``max_bytes`` (at least one bond a block).
    """
    post, y, F, alpha, beta, sigma, nu, errors = _inputs(idata)
    dtype = np.dtype(dtype)
    C, D = post.sizes["chain"], post.sizes["draw"]
    S = C * D
    yv = y.values
    mask = np.isfinite(yv)
    T, B = yv.shape
    Fv = F.values.astype(dtype)
    pooled = "bond" not in alpha.dims
    a_all = alpha.values.reshape(S, *alpha.shape[2:]).astype(dtype, copy=False)
    b_all = beta.values.reshape(S, *beta.shape[2:]).astype(dtype, copy=False)
    sig_all = sigma.values.reshape(S, B).astype(dtype, copy=False)
    if pooled:  # (S, T) mean, computed once: the size of one bond of a block
        mu_pooled = np.einsum("sk,tk->st", b_all, Fv)
        mu_pooled += a_all[:, None]
    if errors == "student_t":
        nu_s = nu.values.reshape(S, 1).astype(dtype)
        const_t = gammaln((nu_s + 1) / 2) - gammaln(nu_s / 2) - 0.5 * np.log(nu_s * np.pi)
        half_nu1 = ((nu_s + 1) / 2)[:, :, None]
        nu_s = nu_s[:, :, None]
    per_cell = dtype.itemsize + int(extra_bytes_per_cell)
    for sl in _chunk_bonds(S, T, B, max_bytes, per_cell):
        nb = sl.stop - sl.start
        yb = yv[:, sl].astype(dtype)
        if pooled:
            grid = np.empty((S, T, nb), dtype=dtype)
            np.subtract(yb[None], mu_pooled[:, :, None], out=grid)
        else:  # grid = y - (alpha + beta'F), in place
            grid = np.empty((S, T, nb), dtype=dtype)  # C order: compacted by rows below
            np.einsum("sbk,tk->stb", b_all[:, sl], Fv, out=grid)
            grid += a_all[:, None, sl]
            np.subtract(yb[None], grid, out=grid)
        sig = sig_all[:, sl]
        grid /= sig[:, None, :]  # z
        np.square(grid, out=grid)
        if errors == "student_t":
            grid /= nu_s
            np.log1p(grid, out=grid)
            grid *= -half_nu1
            grid += (const_t - np.log(sig))[:, None, :]
        else:
            grid *= -0.5
            grid -= (0.5 * LOG_2PI + np.log(sig))[:, None, :]
        flat = grid.reshape(S, T * nb)
        t_idx, j_idx = np.nonzero(mask[:, sl])
        n_obs = len(t_idx)
        if n_obs < T * nb:
            _compact(flat, t_idx * nb + j_idx)
        ll = flat[:, :n_obs].reshape(C, D, n_obs)
        del grid, flat
        if n_obs:  # a block of bonds with no observed cell gives nothing
            yield ll, t_idx, j_idx + sl.start
        del ll


def iter_loglik(idata: xr.DataTree, max_bytes: int = 256 * 2**20, dtype="float64"):
    """Yield the pointwise log-likelihood by blocks of bonds.

    Parameters
    ----------
    idata : xarray.DataTree
        A :meth:`FactorModel.fit` result. The posterior is matched to the observed data by bond
        (and factor) label, whatever the order of its dimensions.
    max_bytes : int
        Memory of one block: the blocks hold ``floor(max_bytes / (chains * draws * dates *
        itemsize))`` bonds (at least one). A block is computed in place in one array of that size
        (the yielded array is a view of it); the other temporaries are at most 1/16 of it or of
        size (draws, bonds of the block). Arrays the size of the posterior (its float copies)
        come on top.
    dtype : {"float64", "float32"}
        Precision of the log-likelihood.

    Yields
    ------
    xarray.DataArray (chain, draw, obs)
        Observed cells of one block of bonds, in (date, bond) order inside the block, with
        ``obs_bond`` and ``obs_date`` coordinates. Drop it before asking for the next block for the
        bound above to hold.

    Raises
    ------
    SpecError
        If a group or variable is missing, or the posterior lacks a bond of the observed data
        (named).
    """
    chain = idata["posterior"]["chain"].values
    draw = idata["posterior"]["draw"].values
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    bonds, dates = y["bond"].values, y["date"].values
    for ll, t_idx, b_idx in _blocks(idata, max_bytes, dtype):
        yield xr.DataArray(
            ll, dims=("chain", "draw", "obs"),
            coords={"chain": chain, "draw": draw,
                    "obs_bond": ("obs", bonds[b_idx]), "obs_date": ("obs", dates[t_idx])},
            name=VAR_NAME,
        )
        del ll


def _global_positions(mask: np.ndarray) -> np.ndarray:
    """(date, bond) array: position of each observed cell among the observed cells in C order."""
    gpos = np.full(mask.shape, -1, dtype=np.int64)
    gpos[mask] = np.arange(int(mask.sum()))
    return gpos


def pointwise_loglik(idata: xr.DataTree, dtype="float64", max_bytes: int = 256 * 2**20):
    """Full pointwise log-likelihood (chain, draw, obs), observed cells in (date, bond) order.

    Holds the whole array (``chains * draws * observed cells * itemsize`` bytes).
    """
    chain = idata["posterior"]["chain"].values
    draw = idata["posterior"]["draw"].values
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    mask = np.isfinite(y.values)
    N = int(mask.sum())
    gpos = _global_positions(mask)
    out = np.empty((len(chain), len(draw), N), dtype=np.dtype(dtype))
    for ll, t_idx, b_idx in _blocks(idata, max_bytes, dtype):
        out[:, :, gpos[t_idx, b_idx]] = ll
        del ll
    t, b = np.nonzero(mask)
    return xr.DataArray(
        out, dims=("chain", "draw", "obs"),
        coords={"chain": chain, "draw": draw, "obs": np.arange(N),
                "obs_bond": ("obs", y["bond"].values[b]), "obs_date": ("obs", y["date"].values[t])},
        name=VAR_NAME,
    )


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
    observations: int | None = None,
    max_bytes: int = 256 * 2**20,
    dtype="float64",
    seed: int = 315,
):
    """PSIS-LOO of a factor-model fit.

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
        With pointwise ``elpd_i`` and ``pareto_k`` (dim ``obs``, coordinates ``obs_bond`` and
        ``obs_date``). For ``"subsample"`` they hold the subsampled cells only, in increasing
        observation index, and their ``obs`` coordinate equals ``loo_subsample_observations``:
        the indices of those cells among all observed cells in (date, bond) order (the ``obs``
        index of :func:`pointwise_loglik` and of the other routes). High Pareto k values raise
        the usual ArviZ warning (never silenced).

    Raises
    ------
    SpecError
        Unknown method, a subsample size outside ``1..N``, or a fit that does not match its data
        (see :func:`iter_loglik`).
    DataError
        ``"chunked"``/``"subsample"``: cells whose largest importance ratios are all equal (a
        log-likelihood constant over the draws), named by bond and date, where
        ``arviz_stats.loo`` raises a ValueError; or fewer than 25 draws.
    """
    import arviz_stats as azs
    from arviz_stats import ELPDDataLOO

    if method not in ("chunked", "exact", "subsample"):
        raise SpecError(f"unknown LOO method {method!r}; use 'chunked', 'exact' or 'subsample'")
    if "observed_data" in idata.children and VAR_NAME not in idata["observed_data"].data_vars \
            and "log_likelihood" in idata.children:
        return stored_loo(idata)  # an OU or affine fit: its stored per-date log-likelihood
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
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    mask = np.isfinite(y.values)
    gpos = _global_positions(mask)
    N = int(mask.sum())
    elpd_v, k_v, p_v = np.empty(N), np.empty(N), np.empty(N)
    bonds, dates = y["bond"].values, y["date"].values
    # PSIS converts a float32 block to float64 by sub-blocks: no float64 copy of the block
    for ll, t_idx, b_idx in _blocks(idata, max_bytes, dtype):
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
    return ELPDDataLOO(
        elpd=float(elpd), se=float(se), p=float(p_loo), n_samples=n_samples,
        n_data_points=int(elpd_i.size), scale="log", warning=warn, good_k=good_k,
        elpd_i=elpd_i, pareto_k=pareto_k, approx_posterior=False,
    )


def stored_loo(idata: xr.DataTree, what: str = "the fit"):
    """PSIS-LOO (:func:`arviz_stats.loo`) of the fit's stored ``log_likelihood`` group.

    The route of OU and affine fits, whose group holds one variable over ``date`` (the exact
    transition density of each date). ``what`` names the fit in the errors.

    Raises
    ------
    SpecError
        No ``log_likelihood`` group (with the reason the fit recorded), or not one variable.
    """
    import arviz_stats as azs

    if "log_likelihood" not in idata.children:
        note = idata.attrs.get("log_likelihood", "")
        raise SpecError(f"{what} has no 'log_likelihood' group{f' ({note})' if note else ''}: "
                        "refit it with log_likelihood=True")
    names = list(idata["log_likelihood"].data_vars)
    if len(names) != 1:
        raise SpecError(f"{what}: its 'log_likelihood' group has {names}, expected one variable")
    return azs.loo(idata, pointwise=True, var_name=names[0])


def _loo_subsample(idata, observations, max_bytes, dtype, seed):
    """Difference-estimator subsampled PSIS-LOO computed block by block (see module docstring)."""
    from arviz_stats import ELPDDataLOOSubsample

    y = idata["observed_data"]["returns"].transpose("date", "bond")
    mask = np.isfinite(y.values)
    N = int(mask.sum())
    gpos = _global_positions(mask)
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
    for ll, t_idx, b_idx in _blocks(idata, max_bytes, dtype, _extra_bytes(dtype)):
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

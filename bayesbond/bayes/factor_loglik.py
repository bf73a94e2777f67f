"""Pointwise log-likelihood of a factor-model fit, computed from the fit in bounded memory.

The observations are the observed (bond, date) cells, in (date, bond) C order, on one dimension
``obs`` with coordinates ``obs_bond`` and ``obs_date``. The log-likelihood of cell ``(b, t)`` at
draw ``s`` is ``log N(R_bt | alpha_b + beta_b'F_t + d_{g(b) t}, sigma_b^2)`` (or the Student-t
density with ``nu``), with the date effects ``d`` of a fit that has them (given the draw's effects:
PSIS-LOO of a cell then leaves out the cell, not its date). The posterior and the factor returns
are matched to the observed cells by label (bond, date and factor coordinates), whatever the
order of their dimensions or labels.

PSIS-LOO over these blocks is :func:`bayesbond.workflow.loglik.loo`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr
from scipy.special import gammaln

from bayesbond.bayes.base import spec_of
from bayesbond.bayes.factor_date_effects import effect_draws
from bayesbond.errors import SpecError, listing

__all__ = ["add_log_likelihood", "align_labels", "fit_inputs", "FitInputs", "global_positions",
           "iter_loglik", "loglik_blocks", "pointwise_loglik", "VAR_NAME"]

LOG_2PI = float(np.log(2.0 * np.pi))
VAR_NAME = "returns"
#: rows of the in-place compaction of a block, so that its temporary is at most 1/16 of the block
_COMPACT_PARTS = 16


def align_labels(da: xr.DataArray, dim: str, labels, what: str,
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


class FitInputs(NamedTuple):
    """A factor-model fit's posterior and data, matched by label (:func:`fit_inputs`)."""

    post: xr.Dataset
    y: xr.DataArray  # (date, bond) observed returns
    F: xr.DataArray  # (date, factor) on y's dates
    alpha: xr.DataArray  # (chain, draw[, bond])
    beta: xr.DataArray  # (chain, draw[, bond], factor)
    sigma: xr.DataArray  # (chain, draw, bond)
    nu: xr.DataArray | None  # (chain, draw), Student-t fits
    errors: str
    groups: np.ndarray | None  # (bond,) group labels
    effects: tuple | None  # effect_draws(...) of a fit with date effects


def fit_inputs(idata: xr.DataTree) -> FitInputs:
    """The posterior and data of a factor-model fit, every array matched to the observed
    (date, bond) grid and factor order by label; a :class:`~bayesbond.errors.SpecError` names
    what is missing."""
    for grp in ("posterior", "observed_data", "constant_data"):
        if grp not in idata.children:
            raise SpecError(f"the fit has no {grp!r} group: is it a FactorModel fit?")
    post = idata["posterior"].to_dataset()
    for v in ("alpha", "beta", "sigma"):
        if v not in post:
            raise SpecError(f"the posterior has no {v!r}: is it a FactorModel fit?")
    const = idata["constant_data"]
    if "factor_returns" not in const.data_vars:
        raise SpecError("the fit has no constant_data.factor_returns: is it a FactorModel fit?")
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    F = const["factor_returns"].transpose("date", "factor")
    F = align_labels(F, "date", y["date"].values, "constant_data.factor_returns",
                     "observed_data.returns")
    bonds = y["bond"].values
    alpha = align_labels(post["alpha"], "bond", bonds, "the posterior's 'alpha'")
    beta = align_labels(post["beta"], "bond", bonds, "the posterior's 'beta'")
    beta = align_labels(beta, "factor", F["factor"].values, "the posterior's 'beta'",
                        "constant_data.factor_returns")
    sigma = align_labels(post["sigma"], "bond", bonds, "the posterior's 'sigma'")
    if "bond" not in sigma.dims:
        raise SpecError("the posterior's 'sigma' has no 'bond' dimension: is it a FactorModel fit?")
    errors = idata.attrs.get("errors") or spec_of(idata).get("errors") or "normal"
    if errors == "student_t" and "nu" not in post:
        raise SpecError("a Student-t fit needs the degrees of freedom 'nu' in its posterior")
    nu = post["nu"].transpose("chain", "draw") if errors == "student_t" else None
    groups = None
    if "group" in const.data_vars:
        groups = np.asarray(align_labels(const["group"], "bond", bonds,
                                         "constant_data.group").values).astype(str)
    effects = None
    if "date_effect" in post:
        effects = effect_draws(post, "date_effect", y["date"].values, groups)
    return FitInputs(post, y, F, alpha.transpose("chain", "draw", ...),
                     beta.transpose("chain", "draw", ..., "factor"),
                     sigma.transpose("chain", "draw", "bond"), nu, errors, groups, effects)


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


def loglik_blocks(idata: xr.DataTree, max_bytes: int, dtype, extra_bytes_per_cell: int = 0):
    """Yield ``(ll, t_idx, b_idx)``: a block's log-likelihood (chain, draw, obs) and the date and
    bond positions (in ``observed_data``) of its cells.

    A block is one array of ``chain * draw * dates * bonds`` values of ``dtype``, filled in place
    and compacted in place to the observed cells (the yielded array is a view of it), so it takes
    ``itemsize`` bytes a (draw, date, bond) cell; the other temporaries are at most 1/16 of that
    or of size (draws, bonds of the block). ``extra_bytes_per_cell`` is what the caller adds for
    each cell while it holds the block (8 for a float64 copy of a float32 block). The blocks are
    sized so that the two together take at most ``max_bytes`` (at least one bond a block).
    """
    post, y, F, alpha, beta, sigma, nu, errors, _, effects = fit_inputs(idata)
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
        if effects is not None:  # y - mu - d_{g(b) t}, one group of the block at a time
            d, cols = effects
            cols = np.zeros(nb, dtype=int) if cols is None else cols[sl]
            for g in np.unique(cols):
                j = np.flatnonzero(cols == g)
                grid[:, :, j] -= d[:, :, g, None].astype(dtype, copy=False)
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
    for ll, t_idx, b_idx in loglik_blocks(idata, max_bytes, dtype):
        yield xr.DataArray(
            ll, dims=("chain", "draw", "obs"),
            coords={"chain": chain, "draw": draw,
                    "obs_bond": ("obs", bonds[b_idx]), "obs_date": ("obs", dates[t_idx])},
            name=VAR_NAME,
        )
        del ll


def global_positions(mask: np.ndarray) -> np.ndarray:
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
    gpos = global_positions(mask)
    out = np.empty((len(chain), len(draw), N), dtype=np.dtype(dtype))
    for ll, t_idx, b_idx in loglik_blocks(idata, max_bytes, dtype):
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

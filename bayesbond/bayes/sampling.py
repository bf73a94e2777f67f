"""Running the sampler and reporting convergence, shared by every Bayesian model.

Every ``Model.fit`` calls :func:`sample`, which runs PyMC's NUTS (nutpie by default), attaches the
model name and library version as attributes and checks R-hat, bulk/tail ESS and divergences.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from bayesbond.errors import ConvergenceWarning

__all__ = ["Diagnostics", "diagnostics", "check_convergence", "ieee_compile", "sample", "RHAT_MAX",
           "ESS_MIN_PER_CHAIN"]

RHAT_MAX = 1.01
ESS_MIN_PER_CHAIN = 100


@dataclass(frozen=True)
class Diagnostics:
    """Convergence summary of a fit: worst R-hat, smallest bulk and tail ESS, divergences."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    n_chains: int
    n_draws: int

    @property
    def ok(self) -> bool:
        """R-hat <= 1.01, no divergence and at least 100 effective draws per chain."""
        need = ESS_MIN_PER_CHAIN * self.n_chains
        return (
            self.max_rhat <= RHAT_MAX
            and self.divergences == 0
            and self.min_ess_bulk >= need
            and self.min_ess_tail >= need
        )

    def __str__(self) -> str:
        return (
            f"max R-hat {self.max_rhat:.4f}, min bulk ESS {self.min_ess_bulk:.0f}, "
            f"min tail ESS {self.min_ess_tail:.0f}, divergences {self.divergences} "
            f"({self.n_chains} chains x {self.n_draws} draws)"
        )


def diagnostics(idata: xr.DataTree, var_names=None) -> Diagnostics:
    """Compute :class:`Diagnostics` over ``var_names`` (default: every posterior variable).

    Rank-normalised split R-hat and bulk/tail ESS of every element, with
    :func:`bayesbond.bayes.convergence.rhat_ess` (arviz_stats' numbers, vectorised over
    elements); NaN values (e.g. of constant elements) are ignored in the extremes, infinite
    ones are kept.
    """
    from bayesbond.bayes.convergence import rhat_ess

    post = idata["posterior"].to_dataset()
    if var_names is not None:
        post = post[list(var_names)]
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    rhats, bulks, tails = [], [], []
    for v in post.data_vars:
        da = post[v]
        if not da.size:
            continue
        x = da.transpose("chain", "draw", ...).values
        r, b, t = (np.ravel(a) for a in rhat_ess(x))
        rhats.append(r)
        bulks.append(b)
        tails.append(t)

    def _extreme(parts, fn):
        vals = np.concatenate(parts) if parts else np.array([])
        vals = vals[~np.isnan(vals)]  # keep inf: chains stuck at different values
        return float(fn(vals)) if vals.size else np.nan

    div = 0
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"].data_vars:
        div = int(idata["sample_stats"]["diverging"].values.sum())
    return Diagnostics(_extreme(rhats, np.max), _extreme(bulks, np.min), _extreme(tails, np.min),
                       div, n_chains, n_draws)


def ieee_compile():
    """Context in which PyTensor compiles numba code without fastmath flags.

    With PyTensor's default flags (``reassoc``, ``contract``, ...) LLVM may reassociate sums and
    fuse multiply-adds, and it does so differently in a log density compiled afresh (one
    inlined module) and in the same graph linked from numba's on-disk cache, so the same seed
    gave different draws in another process (which depended on the cache state and, through
    the cache keys, on ``PYTHONHASHSEED``). Without them every compile rounds as IEEE
    arithmetic prescribes, and the draws repeat bit for bit. PyTensor keys its cache on the
    flag, so fastmath entries are not reused.
    """
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


def sample(
    model,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed=None,
    sampler: str = "nutpie",
    progressbar: bool = False,
    target_accept: float | None = None,
    model_name: str = "",
    var_names_check=None,
    check: bool = True,
    **kwargs,
) -> xr.DataTree:
    """Sample ``model`` with NUTS and return an ArviZ DataTree with convergence checked.

    Parameters
    ----------
    model : pymc.Model
    draws, tune, chains, random_seed : passed to :func:`pymc.sample`.
        The same ``random_seed`` gives bit-identical draws in any process on the same machine
        and library versions: the model is compiled without fastmath (:func:`ieee_compile`).
    sampler : {"nutpie", "pymc", "numpyro", "blackjax"}
        NUTS implementation; nutpie (numba-compiled) is PyMC 6's fastest CPU sampler.
    target_accept : float, optional
        Step-size adaptation target.
    model_name : str
        Stored in the ``model`` attribute of the tree.
    var_names_check : list of str, optional
        Variables whose R-hat/ESS are checked (default all posterior variables).
    check : bool
        Check convergence here (:func:`check_convergence`); a caller that adds variables to the
        posterior afterwards passes False and checks once at the end.

    Returns
    -------
    xarray.DataTree
        With attributes ``model``, ``bayesbond_version`` and ``diagnostics``; a
        :class:`~bayesbond.errors.ConvergenceWarning` is issued, with the numbers, when the fit
        fails R-hat <= 1.01, zero divergences or 100 effective draws per chain.
    """
    import pymc as pm

    import bayesbond

    nuts_kwargs = dict(kwargs.pop("nuts", {}) or {})
    if target_accept is not None:
        nuts_kwargs.setdefault("target_accept", target_accept)
    with warnings.catch_warnings(), ieee_compile():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            nuts_sampler=sampler,
            progressbar=progressbar,
            model=model,
            nuts=nuts_kwargs,
            compute_convergence_checks=False,
            **kwargs,
        )
    idata.attrs["model"] = model_name
    idata.attrs["bayesbond_version"] = bayesbond.__version__
    if check:
        check_convergence(idata, var_names_check, model_name, stacklevel=3)
    return idata


def check_convergence(idata: xr.DataTree, var_names=None, model_name: str = "",
                      stacklevel: int = 2) -> Diagnostics:
    """Compute :func:`diagnostics`, store them in ``attrs["diagnostics"]`` and warn on failure.

    The :class:`~bayesbond.errors.ConvergenceWarning` gives the numbers: worst R-hat, smallest
    bulk and tail ESS, divergences.
    """
    diag = diagnostics(idata, var_names)
    idata.attrs["diagnostics"] = str(diag)
    if not diag.ok:
        warnings.warn(f"{model_name or 'model'} did not converge cleanly: {diag}",
                      ConvergenceWarning, stacklevel=stacklevel + 1)
    return diag

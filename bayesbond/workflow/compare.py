"""LOO comparison of factor-model fits (a table from :func:`arviz_stats.compare`)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayesbond.errors import SpecError

__all__ = ["compare"]


def compare(models: dict, method: str = "chunked", *, weights: str = "stacking",
            round_to="auto", **loo_kwargs) -> pd.DataFrame:
    """Compare fits by PSIS-LOO expected log predictive density.

    Parameters
    ----------
    models : dict of {name: DataTree or ELPDData}
        :meth:`FactorModel.fit` results (their LOO is computed by
        :func:`bayesbond.workflow.loglik.loo`) or precomputed LOO objects. All must be fitted on the
        same observed cells.
    method : {"chunked", "exact"}
        LOO route for DataTrees (see :func:`bayesbond.workflow.loglik.loo`). The subsampled route
        is refused: :func:`arviz_stats.compare` indexes the subsample's pointwise elpd with global
        observation indices and fails; use ``loo(fit, method="subsample")`` per model instead.
    weights : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        Model weights of :func:`arviz_stats.compare`.
    round_to : int or {"auto", "none"}
        Rounding of the table, as :func:`arviz_stats.compare`.
    **loo_kwargs
        Passed to :func:`bayesbond.workflow.loglik.loo` (``max_bytes``, ``dtype``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``rank``, ``elpd``, ``p``, ``elpd_diff``, ``weight``, ``se``,
        ``dse``, ``warning``, ... as :func:`arviz_stats.compare`, plus ``n_high_k``, the number of
        observations whose Pareto k exceeds the reliability threshold. Models with such
        observations also raise a :class:`UserWarning` naming them (never hidden).
    """
    import arviz_stats as azs
    from arviz_stats import ELPDData

    from bayesbond.workflow.loglik import loo

    if method not in ("chunked", "exact"):
        raise SpecError(f"compare: method must be 'chunked' or 'exact', got {method!r} (subsampled "
                        "LOO cannot be compared by arviz_stats.compare; use loo(fit, "
                        "method='subsample') per model)")
    if not isinstance(models, dict) or len(models) < 2:
        raise SpecError("compare needs a dict of at least two named fits")
    elpds = {}
    cells = {}
    for name, fit in models.items():
        if isinstance(fit, ELPDData):
            elpds[name] = fit
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*Pareto.*")
                elpds[name] = loo(fit, method=method, **loo_kwargs)
            ll_obs = elpds[name].elpd_i
            if ll_obs is not None and "obs_bond" in ll_obs.coords:
                cells[name] = (ll_obs["obs_bond"].values, ll_obs["obs_date"].values)
        if elpds[name].elpd_i is None:
            raise SpecError(f"model {name!r} has no pointwise elpd (recompute with pointwise=True)")
    sizes = {name: e.n_data_points for name, e in elpds.items()}
    if len(set(sizes.values())) > 1:
        raise SpecError(f"the models were fitted on different numbers of observations: {sizes}")
    if cells:
        ref_name, (rb, rd) = next(iter(cells.items()))
        for name, (b, d) in cells.items():
            if not (np.array_equal(b, rb) and np.array_equal(d, rd)):
                raise SpecError(f"models {ref_name!r} and {name!r} were fitted on different "
                                "(bond, date) cells")
    high = {}
    for name, e in elpds.items():
        k = np.asarray(e.pareto_k) if e.pareto_k is not None else np.array([])
        high[name] = int(np.sum(k > e.good_k)) if e.good_k is not None else 0
        if high[name]:
            warnings.warn(
                f"model {name!r}: Pareto k > {e.good_k:.2f} for {high[name]} of {k.size} "
                "observations; its PSIS-LOO estimate is unreliable there",
                UserWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        table = azs.compare(elpds, method=weights, round_to=round_to)
    table["n_high_k"] = [high[name] for name in table.index]
    return table

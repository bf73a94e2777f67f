"""LOO comparison of Bayesian fits (a table from :func:`arviz_stats.compare`).

Every Bayesian family of the library compares: :class:`~bayesbond.FactorModel` fits (their
pointwise log-likelihood over the observed (bond, date) cells is computed in bounded memory by
:mod:`bayesbond.workflow.loglik`), :class:`~bayesbond.OUModel` fits (the stored exact transition
density of each date) and :class:`~bayesbond.AffineModel` fits (the stored portfolio
likelihood of each date). Fits are comparable only when they are of the same family and were
fitted on the same observed data; anything else is refused with a :class:`ModelError` that names
the fits and what differs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayesbond.errors import ModelError, SpecError

__all__ = ["compare", "fit_family"]

#: decimals of the "auto" table: log densities, their differences and SEs to one decimal
_DECIMALS = {"elpd": 1, "se": 1, "elpd_diff": 1, "dse": 1, "p": 1, "subsampling_dse": 1,
             "weight": 3, "p_worse": 2, "p_better": 2}


def fit_family(fit) -> str:
    """Model family of a Bayesian fit, as its class name (``"FactorModel"``, ``"OUModel"``,
    ``"AffineModel"``; see :func:`bayesbond.bayes.registry.family_of_fit`), ``"unknown"``
    when nothing names one."""
    from bayesbond.bayes.registry import FAMILIES, family_of_fit

    key = family_of_fit(fit)
    return FAMILIES[key].label if key is not None else "unknown"


def _label(v) -> str:
    if isinstance(v, np.datetime64):
        return np.datetime_as_string(v, unit="D")
    return str(v)


def _span(labels) -> str:
    return f"{_label(labels[0])}..{_label(labels[-1])}" if len(labels) else "none"


def _data_difference(a, b) -> str | None:
    """How the observed data of two fits differ (``None`` when they are identical)."""
    da, db = a["observed_data"].to_dataset(), b["observed_data"].to_dataset()
    if set(da.data_vars) != set(db.data_vars):
        return (f"different observed variables ({sorted(da.data_vars)} vs "
                f"{sorted(db.data_vars)})")
    for v in sorted(da.data_vars):
        xa, xb = da[v], db[v]
        if xa.dims != xb.dims:
            xb = xb.transpose(*xa.dims) if set(xa.dims) == set(xb.dims) else xb
        if xa.dims != xb.dims:
            return f"{v!r} has dimensions {xa.dims} vs {xb.dims}"
        for dim in xa.dims:
            la = xa[dim].values if dim in xa.coords else np.arange(xa.sizes[dim])
            lb = xb[dim].values if dim in xb.coords else np.arange(xb.sizes[dim])
            if len(la) != len(lb):
                return (f"{v!r} has {len(la)} vs {len(lb)} {dim!r} entries "
                        f"({_span(la)} vs {_span(lb)})")
            if not np.array_equal(la, lb):
                i = int(np.flatnonzero(la != lb)[0])
                return (f"{v!r} has different {dim} labels (first at position {i}: "
                        f"{_label(la[i])} vs {_label(lb[i])})")
        va, vb = np.asarray(xa.values), np.asarray(xb.values)
        same = (va == vb) | (pd.isna(va) & pd.isna(vb))
        if not same.all():
            pos = np.argwhere(~same)[0]
            where = ", ".join(f"{d} {_label(xa[d].values[p]) if d in xa.coords else p}"
                              for d, p in zip(xa.dims, pos, strict=True))
            n_bad = int((~same).sum())
            return (f"{v!r} differs in {n_bad} of {same.size} values (first at {where}: "
                    f"{va[tuple(pos)]!r} vs {vb[tuple(pos)]!r})")
    return None


def _round(table: pd.DataFrame, round_to) -> pd.DataFrame:
    """Round the table: ``"auto"`` keeps one decimal of elpd, differences and SEs."""
    if round_to in ("none", "None") or round_to is None:
        return table
    if round_to == "auto":
        dec = _DECIMALS
    elif isinstance(round_to, int | np.integer) and not isinstance(round_to, bool):
        dec = dict.fromkeys(_DECIMALS, int(round_to))
    else:
        raise SpecError(f"compare: round_to must be 'auto', 'none' or a number of decimals, "
                        f"got {round_to!r}")
    table = table.copy()
    for col, d in dec.items():
        if col in table.columns:
            table[col] = table[col].astype(float).round(d)
    return table


def compare(models: dict, method: str = "chunked", *, weights: str = "stacking",
            round_to="auto", **loo_kwargs) -> pd.DataFrame:
    """Compare fits by PSIS-LOO expected log predictive density.

    Parameters
    ----------
    models : dict of {name: DataTree or ELPDData}
        Bayesian fits of one family (:class:`~bayesbond.FactorModel`,
        :class:`~bayesbond.OUModel` or :class:`~bayesbond.AffineModel`) on the same observed
        data, or precomputed LOO objects. Factor-model LOO is computed by
        :func:`bayesbond.workflow.loglik.loo`; OU and affine fits use their stored pointwise
        ``log_likelihood`` group (one value per date: the exact transition density, for the
        affine model times the density of the pricing errors of that date).
    method : {"chunked", "exact"}
        LOO route for factor-model DataTrees (see :func:`bayesbond.workflow.loglik.loo`). The
        subsampled route is refused: :func:`arviz_stats.compare` indexes the subsample's
        pointwise elpd with global observation indices and fails; use
        ``loo(fit, method="subsample")`` per model instead.
    weights : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        Model weights of :func:`arviz_stats.compare`.
    round_to : int or {"auto", "none"}
        ``"auto"`` (default): ``elpd``, ``elpd_diff``, ``se``, ``dse`` and ``p`` to one decimal,
        ``weight`` to three and ``p_worse`` to two, so that differences between large log
        densities stay readable (``arviz_stats``' own "auto" rounds ``elpd`` to the two
        significant digits of its SE: 5400 / 5400 / 4900). An int: that many decimals
        everywhere; ``"none"``: raw numbers.
    **loo_kwargs
        Passed to :func:`bayesbond.workflow.loglik.loo` (``max_bytes``, ``dtype``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``rank``, ``elpd``, ``p``, ``elpd_diff``, ``weight``, ``se``,
        ``dse``, ``warning``, ... as :func:`arviz_stats.compare`, plus ``n_high_k``, the number of
        observations whose Pareto k exceeds the reliability threshold. Models with such
        observations also raise a :class:`UserWarning` naming them (never hidden).

    Raises
    ------
    SpecError
        Fewer than two fits, an unknown method or rounding, a fit without the pointwise
        log-likelihood it needs.
    ModelError
        Fits of different families (named with their families), or fitted on different observed
        data (named, with the first variable, label or value that differs), or with different
        numbers of observations.
    """
    import arviz_stats as azs
    from arviz_stats import ELPDData

    from bayesbond.workflow.loglik import loo, stored_loo

    if method not in ("chunked", "exact"):
        raise SpecError(f"compare: method must be 'chunked' or 'exact', got {method!r} (subsampled "
                        "LOO cannot be compared by arviz_stats.compare; use loo(fit, "
                        "method='subsample') per model)")
    if not isinstance(models, dict) or len(models) < 2:
        raise SpecError("compare needs a dict of at least two named fits")
    _round(pd.DataFrame(), round_to)  # a bad round_to fails before any LOO
    trees = {name: fit for name, fit in models.items() if not isinstance(fit, ELPDData)}
    families = {name: fit_family(fit) for name, fit in trees.items()}
    if len(set(families.values())) > 1:
        shown = ", ".join(f"{n!r} is a fit of {f}" for n, f in families.items())
        raise ModelError(f"compare: fits of different model families model different data and "
                         f"cannot be compared by LOO ({shown})")
    if trees:
        ref_name, ref = next(iter(trees.items()))
        for name, fit in trees.items():
            for grp in ("observed_data",):
                if grp not in fit.children:
                    raise SpecError(f"model {name!r} has no {grp!r} group: is it a Bayesian fit "
                                    "of this library?")
            if name != ref_name:
                diff = _data_difference(ref, fit)
                if diff:
                    raise ModelError(f"models {ref_name!r} and {name!r} were fitted on different "
                                     f"observed data: {diff}")
    elpds = {}
    for name, fit in models.items():
        if isinstance(fit, ELPDData):
            elpds[name] = fit
            continue
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Pareto.*")
            if families[name] == "FactorModel":
                elpds[name] = loo(fit, method=method, **loo_kwargs)
            else:
                elpds[name] = stored_loo(fit, f"model {name!r} ({families[name]} fit)")
    for name, e in elpds.items():
        if e.elpd_i is None:
            raise SpecError(f"model {name!r} has no pointwise elpd (recompute with pointwise=True)")
    sizes = {name: e.n_data_points for name, e in elpds.items()}
    if len(set(sizes.values())) > 1:
        raise ModelError(f"the models were fitted on different numbers of observations: {sizes}"
                         " (for OU fits: is the first date's stationary density in one of them?)")
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
        table = azs.compare(elpds, method=weights, round_to="none")
    table["n_high_k"] = [high[name] for name in table.index]
    return _round(table, round_to)

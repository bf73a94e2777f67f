"""Comparison of Bayesian fits by expected log predictive density (a table from
:func:`arviz_stats.compare`, with date-clustered standard errors by default).

The scores rank models of the returns given the factor returns (``R | F``): they say how much
of a bond's month a model explains given that month's factors, not whether the factors price
the bonds (:mod:`bayesbond.pricing`). :func:`compare` accepts fits and precomputed results of
:func:`bayesbond.loo` (a bond-month cell or a whole bond left out), :func:`bayesbond.kfold`
and :func:`bayesbond.lfo` (whole dates), and says in its table which unit and which SE it used.

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
import xarray as xr

from bayesbond.errors import ModelError, SpecError

__all__ = ["compare", "fit_family", "elpd_unit", "date_sums", "clustered_se"]

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



def elpd_unit(e) -> str:
    """Unit of an ELPD result's pointwise values: its ``unit`` attribute (set by
    :func:`bayesbond.loo`, :func:`bayesbond.kfold`, :func:`bayesbond.lfo`), otherwise the
    dimension of its ``elpd_i``: ``"obs"`` (cells), ``"bond"`` or ``"date"``."""
    unit = getattr(e, "unit", None)
    if unit in ("obs", "bond", "date"):
        return unit
    dims = () if e.elpd_i is None else tuple(e.elpd_i.dims)
    for u in ("bond", "date"):
        if dims == (u,):
            return u
    return "obs"


def _method_label(e) -> str:
    label = getattr(e, "method", None)
    if label:
        return str(label)
    return {"loo": "psis-loo", "loo_kfold": "kfold", "lfo_cv": "lfo"}.get(e.kind, str(e.kind))


def date_sums(e, name: str = "the model") -> pd.Series:
    """Pointwise elpd of an ELPD result summed within each date (index: the dates, sorted).

    Cells (unit ``"obs"``) are summed by their ``obs_date`` coordinate; a result over dates
    (unit ``"date"``: OU and affine fits, :func:`bayesbond.kfold`, :func:`bayesbond.lfo`) is
    returned as it is (one value per date). Bonds have no date: a :class:`SpecError`.
    """
    from arviz_stats import ELPDDataLOOSubsample

    unit = elpd_unit(e)
    if isinstance(e, ELPDDataLOOSubsample):
        raise SpecError(f"{name}: a subsampled LOO holds the elpd of a subsample of cells only, "
                        "so it has no per-date sums: use se='obs' or the full LOO")
    if unit == "bond":
        raise SpecError(f"{name}: leave-one-bond-out elpd is one value per bond over all its "
                        "dates, so it cannot be summed by date")
    da = e.elpd_i
    coord = "obs_date" if unit == "obs" else "date"
    if coord not in da.coords:
        raise SpecError(f"{name}: its pointwise elpd has no {coord!r} coordinate to sum by "
                        "date: recompute it with bayesbond.loo, or pass se='obs' for "
                        "pointwise SEs")
    v = np.asarray(da.values, dtype=float).ravel()
    dates = np.asarray(da[coord].values).ravel()
    return pd.Series(v).groupby(dates, sort=True).sum()


def clustered_se(values) -> float:
    """``sqrt(T var_t(values))`` of ``T`` per-cluster sums (``var`` with ``ddof=1``; 0 if T=1)."""
    v = np.asarray(values, dtype=float)
    return float(np.sqrt(v.size * np.var(v, ddof=1))) if v.size > 1 else 0.0


def _same_dates(sums: dict) -> None:
    ref_name, ref = next(iter(sums.items()))
    for name, s in sums.items():
        if len(s) != len(ref) or not np.array_equal(s.index.values, ref.index.values):
            a, b = ref.index.values, s.index.values
            extra = [_label(d) for d in b[~np.isin(b, a)]]
            missing = [_label(d) for d in a[~np.isin(a, b)]]
            what = "; ".join(x for x in (
                f"{name!r} lacks {_span(missing)} ({len(missing)} dates)" if missing else "",
                f"{name!r} has {_span(extra)} ({len(extra)} dates) that {ref_name!r} lacks"
                if extra else "") if x)
            raise ModelError(f"models {ref_name!r} and {name!r} score different dates "
                             f"({len(a)} vs {len(b)}: {what}); their elpd are over different "
                             "data and cannot be compared")


def _as_dates(e, s: pd.Series):
    """A copy of ``e`` whose pointwise elpd is ``s`` (per date): for arviz_stats.compare when
    the models' units differ."""
    import dataclasses

    da = xr.DataArray(s.to_numpy(), dims="date", coords={"date": s.index.values})
    out = dataclasses.replace(e, elpd_i=da, pareto_k=None, n_data_points=len(s))
    out.unit, out.method = "date", _method_label(e)
    return out


def compare(models: dict, method: str = "chunked", *, se: str = "date", by: str = "obs",
            weights: str = "stacking", round_to="auto", **loo_kwargs) -> pd.DataFrame:
    r"""Compare fits by their expected log predictive density, with date-clustered SEs.

    These scores rank models of the returns *given the factor returns* (``R | F``, a
    time-series fit): how well a factor set explains a bond's month given that month's
    factors. They do not rank asset-pricing models (whether the factors' premia price the
    bonds; see :mod:`bayesbond.pricing`), nor forecasts (the factors of the predicted month
    are known; leave-one-cell-out also uses the bond's later months): for forecasts use
    :func:`bayesbond.lfo`.

    Parameters
    ----------
    models : dict of {name: DataTree or ELPDData}
        Bayesian fits of one family (:class:`~bayesbond.FactorModel`,
        :class:`~bayesbond.OUModel` or :class:`~bayesbond.AffineModel`) on the same observed
        data, or precomputed results: :func:`bayesbond.loo` (``by="obs"`` or ``"bond"``),
        :func:`bayesbond.kfold`, :func:`bayesbond.lfo`, or any ``arviz_stats`` ELPD object
        with pointwise values. Factor-model LOO is computed by :func:`bayesbond.loo`; OU and
        affine fits use their stored pointwise ``log_likelihood`` group (one value per date:
        the exact transition density, for the affine model times the density of the pricing
        errors of that date).
    method : {"chunked", "exact"}
        LOO route for factor-model DataTrees (see :func:`bayesbond.loo`). The subsampled route
        is refused: :func:`arviz_stats.compare` indexes the subsample's pointwise elpd with
        global observation indices and fails; use ``loo(fit, method="subsample")`` per model
        and ``se="obs"`` instead.
    se : {"date", "obs"}
        ``"date"`` (default): the pointwise elpd (and the pointwise differences to the best
        model) are summed within each date and the SEs are those of sums of ``T`` independent
        dates (the cluster-robust SE, see Notes): bonds of one month share its shocks, so their
        cells are not independent. ``"obs"``: the SEs of :func:`arviz_stats.compare`, which
        treat every pointwise value (a bond-month for factor-model LOO) as independent. For OU
        and affine fits, and for :func:`bayesbond.kfold` / :func:`bayesbond.lfo` results, the
        pointwise values are already dates: ``se`` is the same either way and ``dse`` differs
        by ``sqrt(T / (T - 1))`` (``arviz_stats`` uses ``ddof=0`` for ``dse``). For bonds
        (``by="bond"``) the SEs are over bonds whatever ``se`` (a bond spans all dates).
    by : {"obs", "bond"}
        Unit of the LOO computed for factor-model DataTrees: a cell (default) or a whole bond
        (``bayesbond.loo(fit, by="bond")``: how well the model predicts a new bond of its
        bucket).
    weights : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        Model weights of :func:`arviz_stats.compare` (over the pointwise values; over the
        per-date sums when the models' units differ).
    round_to : int or {"auto", "none"}
        ``"auto"`` (default): ``elpd``, ``elpd_diff``, ``se``, ``dse`` and ``p`` to one decimal,
        ``weight`` to three and ``p_worse`` to two, so that differences between large log
        densities stay readable (``arviz_stats``' own "auto" rounds ``elpd`` to the two
        significant digits of its SE: 5400 / 5400 / 4900). An int: that many decimals
        everywhere; ``"none"``: raw numbers.
    **loo_kwargs
        Passed to :func:`bayesbond.loo` (``max_bytes``, ``dtype``, ``nodes``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``rank``, ``elpd``, ``p``, ``elpd_diff``, ``weight``,
        ``se``, ``dse``, ``p_worse`` (from ``elpd_diff`` and ``dse``, normal approximation),
        ``diag_diff``, ``diag_elpd``, ... as :func:`arviz_stats.compare`, plus ``n_high_k``
        (observations whose Pareto k exceeds the reliability threshold; such models also
        raise a :class:`UserWarning` naming them, never hidden), ``unit`` (what one pointwise
        elpd is: ``"obs"`` a bond-month cell, ``"bond"`` a whole bond, ``"date"`` a date),
        ``se_type`` (the units the SEs treat as independent: ``"date"``, ``"obs"`` or
        ``"bond"``) and ``method`` (how the elpd was estimated, e.g. ``"psis-loo(by=obs)"``,
        ``"kfold(k=10, by=date)"``).

    Raises
    ------
    SpecError
        Fewer than two fits, an unknown method, ``se``, ``by`` or rounding, a fit without the
        pointwise log-likelihood it needs, ``se="date"`` for a subsampled LOO.
    ModelError
        Fits of different families (named with their families), or fitted on different observed
        data (named, with the first variable, label or value that differs), with different
        numbers of observations or dates, or results over bonds compared with results over
        cells or dates (or, with ``se="obs"``, results over cells with results over dates).

    Warns
    -----
    UserWarning
        When results over cells are compared with results over dates (``se="date"``): they
        estimate different predictive tasks (e.g. leave-one-cell-out against K-fold by date).

    Notes
    -----
    With ``elpd_i`` the pointwise elpd and ``t(i)`` the date of cell ``i``, the per-date sums
    are ``e_t = sum_{i: t(i) = t} elpd_i`` and, against the best model ``b``,
    ``d_t = sum_{i: t(i) = t} (elpd_i - elpd_i^b)``. Over ``T`` dates,

        elpd = sum_t e_t,     se = sqrt(T var_t(e_t)),
        elpd_diff = sum_t d_t,     dse = sqrt(T var_t(d_t)),

    with the sample variance (``ddof = 1``): the cluster-robust standard error with dates as
    clusters, which allows any correlation between the cells of a date (and is the usual SE
    when each date is one value). It assumes the dates independent; the cell-level SEs of
    ``se="obs"`` are ``sqrt(N var_i(elpd_i))`` over the ``N`` cells, too small when the cells
    of a date are positively correlated (a common shock the model misses).
    ``p_worse = Phi(elpd_diff / dse)``: the normal approximation of Sivula et al. (2025).

    References
    ----------
    Vehtari, A., Gelman, A. and Gabry, J. (2017). Practical Bayesian model evaluation using
    leave-one-out cross-validation and WAIC. *Stat. Comput.* 27(5).
    Cameron, A. C. and Miller, D. L. (2015). A practitioner's guide to cluster-robust
    inference. *J. Human Resources* 50(2).
    Sivula, T., Magnusson, M., Matamoros, A. A. and Vehtari, A. (2025). Uncertainty in
    Bayesian leave-one-out cross-validation based model comparison. *Bayesian Analysis*.
    """
    import arviz_stats as azs
    from arviz_stats import ELPDData
    from scipy.stats import norm

    from bayesbond.workflow.loglik import loo, stored_loo

    if method not in ("chunked", "exact"):
        raise SpecError(f"compare: method must be 'chunked' or 'exact', got {method!r} (subsampled "
                        "LOO cannot be compared by arviz_stats.compare; use loo(fit, "
                        "method='subsample') per model)")
    if se not in ("date", "obs"):
        raise SpecError(f"compare: se must be 'date' (clustered by date) or 'obs' (pointwise), "
                        f"got {se!r}")
    if by not in ("obs", "bond"):
        raise SpecError(f"compare: by must be 'obs' (leave one cell out) or 'bond' (leave one "
                        f"bond out), got {by!r}")
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
                elpds[name] = loo(fit, method=method, by=by, **loo_kwargs)
            elif by == "bond":
                raise SpecError(f"model {name!r}: by='bond' needs FactorModel fits; a "
                                f"{families[name]} fit is scored by date")
            else:
                elpds[name] = stored_loo(fit, f"model {name!r} ({families[name]} fit)")
    for name, e in elpds.items():
        if e.elpd_i is None:
            raise SpecError(f"model {name!r} has no pointwise elpd (recompute with pointwise=True)")
    units = {name: elpd_unit(e) for name, e in elpds.items()}
    labels = {name: _method_label(e) for name, e in elpds.items()}
    mixed = len(set(units.values())) > 1
    shown_units = ", ".join(f"{n!r} over {u}" for n, u in units.items())
    if mixed and "bond" in units.values():
        raise ModelError(f"compare: results over bonds cannot be paired with results over cells "
                         f"or dates ({shown_units}): compare by='bond' results with each other")
    if mixed and se == "obs":
        raise ModelError(f"compare: the models' pointwise elpd are over different units "
                         f"({shown_units}); se='obs' pairs them one by one: use se='date'")
    sums = None
    if se == "date" and "bond" not in units.values():
        sums = {name: date_sums(e, f"model {name!r}") for name, e in elpds.items()}
        _same_dates(sums)
    if mixed:
        warnings.warn(f"compare: the models were scored on different units ({shown_units}, "
                      f"by {', '.join(sorted(set(labels.values())))}): their elpd estimate "
                      "different predictive tasks; compared on their per-date sums",
                      UserWarning, stacklevel=2)
        for_arviz = {name: _as_dates(e, sums[name]) for name, e in elpds.items()}
    else:
        for_arviz = elpds
    sizes = {name: e.n_data_points for name, e in for_arviz.items()}
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
                f"{ {'obs': 'observations', 'bond': 'bonds', 'date': 'dates'}[units[name]]}; "
                "its PSIS-LOO estimate is unreliable there",
                UserWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        try:
            table = azs.compare(for_arviz, method=weights, round_to="none")
        except ValueError as err:  # incompatible kinds (LFO with others, LFO settings)
            raise ModelError(f"compare: {err}") from err
    if sums is not None:
        best = table.index[0]
        for name in table.index:
            table.loc[name, "se"] = clustered_se(sums[name])
            if name == best:
                continue
            d = sums[name].to_numpy() - sums[best].to_numpy()
            dse = clustered_se(d)
            table.loc[name, "dse"] = dse
            table.loc[name, "p_worse"] = norm.cdf(0, float(d.sum()), dse + 1e-12)
    table["n_high_k"] = [high[name] for name in table.index]
    table["unit"] = [units[name] for name in table.index]
    table["se_type"] = [("date" if sums is not None else units[name]) for name in table.index]
    table["method"] = [labels[name] for name in table.index]
    return _round(table, round_to)

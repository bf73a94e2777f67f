r"""Many independent fits of one model: rolling windows and lists of data sets, here or on Dask.

:func:`fit_many` fits one model to each of several data sets and :func:`rolling_fit` to the
rolling windows of one panel. Both run the fits one after another in this process by default,
or on the workers of a ``dask.distributed`` cluster when given a ``Client``. A worker keeps the
samplers it compiled (:func:`bayesbond.bayes.sampling.sample` with the model's
``compile_key``), so data of the same shapes compile once per worker, not once per fit. Each
fit's seed derives from the base ``random_seed`` and the fit's key alone
(:func:`bayesbond.workflow.parallel.key_seed`), so serial and distributed runs give
bit-identical draws.

The result is one :class:`xarray.DataTree`:

* ``posterior``, ``sample_stats`` (and any other group of the fits): each variable that has the
  same dims and the same coordinate values in every fit, stacked over a new leading dimension
  (``window`` or ``dataset``);
* ``fits/<key>``: per fit, everything that did not stack (e.g. ``observed_data`` with its own
  ``date`` labels, a ``date_effect`` over the window's dates, per-bond variables when the
  windows hold different bonds) and the fit's attributes. Nothing is aligned by position or
  padded with NaN: a variable whose coordinates differ between fits stays with its fit;
  :func:`fit_of` reassembles one complete fit;
* ``fit_stats`` (over the same dimension): the seed, wall, compile and sampling seconds,
  ``compile_reused``, the worker and the convergence diagnostics of each fit.

A fit that fails is reported with its key; the others come back (``on_error``).
"""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.errors import BayesBondError, SpecError
from bayesbond.workflow.parallel import (
    Counter,
    base_entropy,
    check_client,
    key_seed,
    run_keyed,
    worker_name,
)

__all__ = ["FitsFailedError", "fit_many", "fit_of", "rolling_fit", "window_prepared"]

#: keywords of ``fit`` that fit_many sets itself unless given
_FIT_DEFAULTS = {"log_likelihood": False, "progressbar": False}
_ON_ERROR = ("raise", "keep")


class FitsFailedError(BayesBondError, RuntimeError):
    """Some fits of :func:`fit_many` / :func:`rolling_fit` failed.

    Attributes
    ----------
    failures : dict
        Key -> the exception the fit raised.
    tracebacks : dict
        Key -> the formatted traceback (from the worker when on a cluster).
    result : xarray.DataTree or None
        The tree of the fits that succeeded (None when none did).
    """

    def __init__(self, message, failures, tracebacks, result):
        super().__init__(message)
        self.failures, self.tracebacks, self.result = failures, tracebacks, result


# ------------------------------------------------------------------------------ one fit
def _fit_one(model, data, fit_kw, seed):
    """One fit (what a worker runs): the tree, the warnings it raised and where it ran."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # all recorded; the caller's filters decide later
        fit = model.fit(*data, random_seed=seed, **fit_kw)
    return {"fit": fit, "wall_seconds": time.perf_counter() - t0, "worker": worker_name(),
            "pid": os.getpid(),
            "warnings": [(w.category, str(w.message)) for w in caught]}


# ------------------------------------------------------------------------------ stacking
def _coords_equal(arrays) -> bool:
    first = arrays[0]
    for a in arrays[1:]:
        if a.dims != first.dims or a.shape != first.shape:
            return False
        if set(a.coords) != set(first.coords):
            return False
        for name in first.coords:
            if not a.coords[name].variable.equals(first.coords[name].variable):
                return False
    return True


def _common_attrs(dicts) -> dict:
    first = dicts[0]
    out = {}
    for k, v in first.items():
        try:
            if all(k in d and bool(np.all(d[k] == v)) for d in dicts[1:]):
                out[k] = v
        except (TypeError, ValueError):
            continue
    return out


def _assemble(fits: dict, dim: str, extra: dict | None = None) -> xr.DataTree:
    """One tree from ``key -> fit`` (see the module docstring)."""
    keys = list(fits)
    index = pd.Index(keys, name=dim)
    trees = [fits[k] for k in keys]
    groups = [g for g in trees[0].children if all(g in t.children for t in trees[1:])]
    root = xr.DataTree()
    leftovers = {k: {} for k in keys}
    for g in groups:
        dss = [t[g].to_dataset() for t in trees]
        names = [v for v in dss[0].data_vars if all(v in ds.data_vars for ds in dss[1:])]
        stack = [v for v in names if _coords_equal([ds[v] for ds in dss])]
        if stack:
            parts = [ds[stack].reset_coords(drop=False) for ds in dss]
            stacked = xr.concat(parts, dim=index, join="exact", coords="different",
                                compat="equals", combine_attrs="drop")
            stacked.attrs = _common_attrs([ds.attrs for ds in dss])
            if extra:
                stacked = stacked.assign_coords({n: (dim, v) for n, v in extra.items()})
            root[g] = xr.DataTree(stacked)
        for k, ds in zip(keys, dss, strict=True):
            rest = ds.drop_vars(stack)
            rest = rest.drop_vars([c for c in rest.coords
                                   if not any(c in rest[v].coords for v in rest.data_vars)
                                   and c not in rest.dims])
            if rest.data_vars:
                leftovers[k][g] = rest
    for k, t in zip(keys, trees, strict=True):
        for g in t.children:
            if g not in groups:
                leftovers[k][g] = t[g].to_dataset()
    fits_node = xr.DataTree()
    for k, t in zip(keys, trees, strict=True):
        node = xr.DataTree.from_dict(leftovers[k]) if leftovers[k] else xr.DataTree()
        node.attrs = dict(t.attrs)
        fits_node[str(k)] = node
    root["fits"] = fits_node
    return root


def fit_of(result: xr.DataTree, key) -> xr.DataTree:
    """One complete fit out of a :func:`fit_many` or :func:`rolling_fit` result.

    Parameters
    ----------
    result : xarray.DataTree
    key
        A label of the result's ``window`` or ``dataset`` dimension.

    Returns
    -------
    xarray.DataTree
        The fit's groups as :meth:`~bayesbond.bayes.base.BayesianModel.fit` returned them
        (stacked variables selected at ``key``, with the fit's own variables and attributes).

    Raises
    ------
    SpecError
        ``key`` not among the fits.
    """
    dim = result.attrs.get("dim")
    keys = [str(k) for k in result["fits"].children] if "fits" in result.children else []
    if dim is None or str(key) not in keys:
        raise SpecError(f"key {key!r}: not a fit of this result; the fits are "
                        f"{', '.join(keys) or 'none'}")
    node = result["fits"][str(key)]
    out = xr.DataTree()
    names = [g for g in result.children if g not in ("fits", "fit_stats")]
    names += [g for g in node.children if g not in names]
    for g in names:
        parts = []
        if g in result.children:
            ds = result[g].to_dataset()
            pos = [str(k) for k in ds[dim].values].index(str(key))
            sel = ds.isel({dim: pos})
            parts.append(sel.drop_vars([c for c in sel.coords
                                        if c == dim or dim in ds[c].dims]))
        if g in node.children:
            parts.append(node[g].to_dataset())
        merged = xr.merge(parts, join="exact", combine_attrs="override") if len(parts) > 1 \
            else parts[0]
        out[g] = xr.DataTree(merged)
    out.attrs = dict(node.attrs)
    return out


# ------------------------------------------------------------------------------ fit_many
def _check_keys(keys, what):
    if not keys:
        raise SpecError(f"{what}: no data sets given")
    for k in keys:
        if isinstance(k, bool) or not isinstance(k, str | int | np.integer):
            raise SpecError(f"{what}: key {k!r} ({type(k).__name__}): keys must be strings "
                            "or integers")
        if "/" in str(k):
            raise SpecError(f"{what}: key {k!r} contains '/' (a DataTree path separator)")
    labels = [str(k) for k in keys]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise SpecError(f"{what}: keys that read the same: {', '.join(dup)}")


def _run(model, items, dim, client, sample_kw, progressbar, on_error, describe, extra=None,
         stats_extra=None, seed_label=str):
    """Shared body of fit_many and rolling_fit: ``items`` is ``[(key, data_args)]``."""
    from bayesbond.bayes.base import BayesianModel

    if not isinstance(model, BayesianModel):
        raise SpecError(f"model: need a bayesbond model (e.g. bb.FactorModel); got "
                        f"{type(model).__name__}")
    if on_error not in _ON_ERROR:
        raise SpecError(f"on_error = {on_error!r}: use one of {_ON_ERROR}")
    check_client(client)
    kw = {**_FIT_DEFAULTS, **sample_kw}
    entropy = base_entropy(kw.pop("random_seed", None))
    seeds = {k: key_seed(entropy, seed_label(k)) for k, _ in items}
    tasks = [(k, (model, data, kw, seeds[k])) for k, data in items]
    counter = Counter(len(tasks), "fits", show=progressbar)
    t0 = time.perf_counter()
    outcomes = run_keyed(_fit_one, tasks, client, on_done=counter)
    wall = time.perf_counter() - t0

    ok = {k: o.value for k, o in outcomes.items() if o.ok}
    for k, res in ok.items():
        for cat, msg in res["warnings"]:
            warnings.warn(f"{describe(k)}: {msg}", cat, stacklevel=3)
    failed = {k: o for k, o in outcomes.items() if not o.ok}
    result = None
    if ok:
        keep = list(ok)
        ex = None if extra is None else {n: [v[k] for k in keep] for n, v in extra.items()}
        result = _assemble({k: ok[k]["fit"] for k in keep}, dim, ex)
        rows = {
            "seed": [seeds[k] for k in keep],
            "wall_seconds": [ok[k]["wall_seconds"] for k in keep],
            "compile_seconds": [float(ok[k]["fit"].attrs.get("compile_seconds", np.nan))
                                for k in keep],
            "sampling_seconds": [float(ok[k]["fit"].attrs.get("sampling_seconds", np.nan))
                                 for k in keep],
            "compile_reused": [bool(ok[k]["fit"].attrs.get("compile_reused", False))
                               for k in keep],
            "worker": [ok[k]["worker"] for k in keep],
            "pid": [ok[k]["pid"] for k in keep],
            "diagnostics": [str(ok[k]["fit"].attrs.get("diagnostics", "")) for k in keep],
        }
        for n, v in (stats_extra or {}).items():
            rows[n] = [v[k] for k in keep]
        coords = {dim: pd.Index(keep, name=dim), **(
            {n: (dim, v) for n, v in ex.items()} if ex else {})}
        result["fit_stats"] = xr.DataTree(xr.Dataset(
            {n: (dim, np.asarray(v)) for n, v in rows.items()}, coords=coords))
        result.attrs.update(
            dim=dim, random_seed=json.dumps(entropy), wall_seconds=wall,
            n_fits=len(outcomes), n_failed=len(failed),
            failed=json.dumps({str(k): f"{type(o.error).__name__}: {o.error}"
                               for k, o in failed.items()}),
            model=ok[keep[0]]["fit"].attrs.get("model", ""),
            family=ok[keep[0]]["fit"].attrs.get("family", ""),
            client="local" if client is None else "dask")
    if failed and on_error == "raise":
        shown = "; ".join(f"{describe(k)}: {type(o.error).__name__}: {o.error}"
                          for k, o in failed.items())
        raise FitsFailedError(
            f"{len(failed)} of {len(outcomes)} fits failed ({shown}); the others are in "
            "this error's .result", {k: o.error for k, o in failed.items()},
            {k: o.traceback for k, o in failed.items()}, result)
    if result is None:  # every fit failed, on_error="keep"
        result = xr.DataTree()
        result.attrs.update(dim=dim, n_fits=len(outcomes), n_failed=len(failed),
                            failed=json.dumps({str(k): f"{type(o.error).__name__}: {o.error}"
                                               for k, o in failed.items()}))
    return result


def fit_many(model, datasets, client=None, *, progressbar: bool | None = None,
             on_error: str = "raise", **sample_kw) -> xr.DataTree:
    r"""Fit one model to each of several data sets, here or on a Dask cluster.

    Parameters
    ----------
    model : BayesianModel
        E.g. :class:`bayesbond.FactorModel`; one object fits every data set (it keeps no
        fitted state).
    datasets : mapping key -> data, or sequence of data
        The data of each fit: a tuple is the positional data arguments of ``model.fit``
        (e.g. ``(panel, factors)``), any other value (e.g. a prepared value from
        ``model.prepare``) the single one. A sequence is keyed 0, 1, ... Keys are strings or
        integers, unique as strings and without ``/``.
    client : dask.distributed.Client, optional
        Run the fits on the cluster's workers (each worker compiles a model of given shapes
        once and reuses it; one thread per worker is advised, since the sampler runs its
        chains in threads). None: here, one after another.
    progressbar : bool, optional
        The count of fits done: None reports it when a progress callback is installed
        (:func:`bayesbond.bayes.sampling.progress_to`) or stderr is a terminal; True always
        (stderr); False never. The fits themselves report nothing.
    on_error : {"raise", "keep"}
        A fit that raises does not stop the others. "raise": after all have run, raise
        :class:`FitsFailedError` naming each failed key with its exception (its ``result``
        holds the others); "keep": return the others, the failures listed in the
        attribute ``failed`` (JSON key -> message).
    **sample_kw
        Keywords of ``model.fit``, the same for every fit (``draws``, ``tune``, ``chains``,
        ``target_accept``, ``groups``, ...); ``log_likelihood`` defaults to False and the
        per-fit ``progressbar`` to False. ``random_seed`` is the base seed of the per-key
        seeds (None: fresh entropy, stored in the attribute ``random_seed``).

    Returns
    -------
    xarray.DataTree
        Groups stacked over dim ``dataset`` (see :mod:`bayesbond.workflow.many`), ``fits/<key>``
        with what did not stack, ``fit_stats`` (dataset); attributes ``dim``, ``random_seed``,
        ``wall_seconds``, ``n_fits``, ``n_failed``, ``failed``, ``model``, ``family``.

    Raises
    ------
    SpecError
        No data sets, bad keys, not a bayesbond model, a bad ``client`` or ``on_error``.
    FitsFailedError
        With ``on_error="raise"``, when any fit failed (after all have run).

    Notes
    -----
    The fit of key ``k`` uses the seed ``key_seed(entropy, k)``
    (:func:`bayesbond.workflow.parallel.key_seed`), a function of the base seed and ``str(k)``
    only: the same draws here or on any worker, in any order, and whatever the other keys.
    Convergence and identification warnings of each fit are issued here, prefixed with its key.
    """
    if isinstance(datasets, dict):
        items = list(datasets.items())
    elif isinstance(datasets, list | tuple):
        items = list(enumerate(datasets))
    else:
        raise SpecError(f"datasets: need a mapping key -> data or a list of data; got "
                        f"{type(datasets).__name__}")
    _check_keys([k for k, _ in items], "datasets")
    prepared_type = getattr(model, "prepared_type", type(None))
    items = [(k, tuple(v) if isinstance(v, tuple) and not isinstance(v, prepared_type)
              else (v,)) for k, v in items]
    return _run(model, items, "dataset", client, sample_kw, progressbar, on_error,
                describe=lambda k: f"dataset {k!r}")


# ---------------------------------------------------------------------------- rolling_fit
def window_prepared(model, prepared, rows: slice):
    """The prepared inputs of a fit on the dates ``rows`` of ``prepared`` alone.

    Parameters
    ----------
    model : FactorModel
    prepared : FactorPrepared
        :meth:`FactorModel.prepare` of the full panel.
    rows : slice
        Positions of the window's dates in ``prepared.data.dates``.

    Returns
    -------
    FactorPrepared
        The window's dates, the bonds with at least one return in it (in the panel's order),
        the groups among them (each bond keeps the group the rule gave it over the full
        panel) and the default priors recomputed from the window's returns and factors, the
        user's overrides applied on top: what ``model.prepare`` gives for the window alone,
        except that the groups are those of the full panel.
    """
    import dataclasses

    from bayesbond.bayes.factor_model import FactorPrepared
    from bayesbond.bayes.factor_priors import default_priors, resolve_priors

    data = prepared.data
    y, F = data.y[rows], data.F[rows]
    seen = np.isfinite(y).any(axis=0)
    y = y[:, seen]
    group_names, group_idx = data.group_names, data.group_idx
    if group_idx is not None:
        gi = group_idx[seen]
        present = sorted(set(gi.tolist()))
        group_names = [data.group_names[i] for i in present]
        group_idx = np.array([present.index(i) for i in gi], dtype=int)
    win = dataclasses.replace(data, y=y, F=F, dates=data.dates[rows], bonds=data.bonds[seen],
                              group_names=group_names, group_idx=group_idx)
    defaults = default_priors(win.y, win.F, win.factors)
    return FactorPrepared(win, resolve_priors(defaults, model.priors, win.factors))


def _positive_int(value, name, low, high=None):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low or \
            (high is not None and value > high):
        rng = f">= {low}" if high is None else f"between {low} and {high}"
        raise SpecError(f"{name} = {value!r}: need an integer {rng}")
    return int(value)


def rolling_fit(model, panel, factors, window: int = 60, step: int = 12, client=None, *,
                groups=None, progressbar: bool | None = None, on_error: str = "raise",
                **sample_kw) -> xr.DataTree:
    r"""Fit a factor model on rolling windows of dates, here or on a Dask cluster.

    Parameters
    ----------
    model : FactorModel
    panel, factors
        As for :meth:`FactorModel.fit` (``groups=`` as there).
    window : int
        Dates per window (the dates with at least one return, in order): ``2 <= window <= T``.
    step : int
        Dates between the starts of consecutive windows, ``>= 1``. The windows start at
        positions ``0, step, 2 step, ...`` while they fit in the panel: the first window is the
        first ``window`` dates; dates after the last full window are not used.
    client : dask.distributed.Client, optional
        Run the windows on the cluster (see :func:`fit_many`); None: here, one after another.
    groups
        As for :meth:`FactorModel.prepare`: the groups are assigned once over the full panel.
    progressbar, on_error
        As for :func:`fit_many` (a failed window is named by its position and dates).
    **sample_kw
        As for :func:`fit_many` (``random_seed`` is the base seed).

    Returns
    -------
    xarray.DataTree
        As :func:`fit_many`, over dim ``window`` (labels 0, 1, ...) with the coordinates
        ``window_start`` and ``window_end`` (first and last date); ``fit_stats`` also counts
        ``bonds`` and ``dates`` per window. When every window holds the same bonds, the
        per-bond posterior (``alpha``, ``beta``, ``sigma``, ...) stacks over ``window``;
        ``observed_data`` and ``constant_data`` (their ``date`` labels differ) stay in
        ``fits/<window>``.

    Raises
    ------
    SpecError
        Not a FactorModel; ``window`` or ``step`` not an integer in range (named); a window
        too short for ``date_effects``.
    FitsFailedError
        With ``on_error="raise"``, when a window's fit failed (after all have run).

    Notes
    -----
    Window ``i`` holds the dates at positions ``i step, ..., i step + window - 1`` for
    ``i = 0, ..., floor((T - window) / step)`` and the bonds observed in them; its priors are
    the data-scaled defaults of those returns and factors (:func:`window_prepared`), as a fit
    of the window alone would have. Windows holding the same number of bonds and groups have
    the same shapes, so each worker compiles the model once. The seed of window ``i`` is
    ``key_seed(entropy, "<start>..<end>")`` of its dates, so a window's draws do not depend on
    the other windows.
    """
    from bayesbond.bayes.factor_model import FactorModel

    if not isinstance(model, FactorModel):
        raise SpecError(f"rolling_fit needs a bb.FactorModel; got {type(model).__name__}")
    prepared = model.prepare(panel, factors, groups=groups)
    dates = prepared.data.dates
    T = len(dates)
    if T < 2:
        raise SpecError(f"window: the panel has {T} date(s); need at least 2 for a window")
    window = _positive_int(window, "window", 2, T)
    step = _positive_int(step, "step", 1)
    p = prepared.data.n_coef
    if model.date_effects is not None and window <= p + 2:
        raise SpecError(f"window = {window}: date_effects={model.date_effects!r} needs more "
                        f"than {p + 2} dates per window")
    starts = range(0, T - window + 1, step)
    lab = [pd.Timestamp(d).strftime("%Y-%m-%d") for d in dates]
    items, start, end, nb, where = [], {}, {}, {}, {}
    for i, s in enumerate(starts):
        rows = slice(s, s + window)
        win = window_prepared(model, prepared, rows)
        items.append((i, (win,)))
        start[i], end[i] = pd.Timestamp(dates[s]), pd.Timestamp(dates[s + window - 1])
        nb[i] = len(win.data.bonds)
        where[i] = f"{lab[s]}..{lab[s + window - 1]}"
    # seeded by the window's dates (not its position): the same window, the same draws
    out = _run(model, items, "window", client, sample_kw, progressbar, on_error,
               describe=lambda i: f"window {i} ({where[i]})",
               extra={"window_start": start, "window_end": end},
               stats_extra={"bonds": nb, "dates": {i: window for i in nb}},
               seed_label=lambda i: where[i])
    out.attrs.update(window=window, step=step)
    return out

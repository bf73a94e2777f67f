r"""Cross-validation over time of factor-model fits: blocked K-fold by date and leave-future-out.

Both score whole dates: the unit is a date ``t`` and its score the exact log predictive density
of all the returns observed that month given the training data,

    elpd_t = log p(y_{.t} | y_train, F_t) ~= log (1/S) sum_s p(y_{.t} | theta_s, F_t),

with ``theta_s = (alpha_s, beta_s, sigma_s)`` the draws of a fit on the training data (the
collapsed model's exact redraw of alpha and beta makes them draws of the joint posterior) and
``p`` the joint density of the bonds of the date (:mod:`bayesbond.bayes.factor_predictive`).
The results rank models of ``R | F`` (the factor returns of a held-out month are given), not
asset-pricing models.

Every fit of a fold keeps the shapes of the full panel: the training data are the full panel
with the held-out cells set to NaN (the sufficient statistics of the factor model are per
bond, so no shape changes), and the priors are rescaled from the training cells exactly as
:meth:`~bayesbond.FactorModel.prepare` would scale them for the training panel alone. So the
fits after the first reuse the compiled sampler (``fit.attrs["compile_reused"]``, reported per
fold). A bond with too few training months is kept (the hierarchy or the prior informs it)
and named in one :class:`~bayesbond.errors.IdentificationWarning`; the ``folds`` table counts
them.

References
----------
Burkner, P.-C., Gabry, J. and Vehtari, A. (2020). Approximate leave-future-out
cross-validation for Bayesian time series models. *J. Stat. Comput. Simul.* 90(14), 2499-2523.
Vehtari, A., Gelman, A. and Gabry, J. (2017). Practical Bayesian model evaluation using
leave-one-out cross-validation and WAIC. *Stat. Comput.* 27(5) (K-fold CV, section 4).
Roberts, D. R. et al. (2017). Cross-validation strategies for data with temporal, spatial,
hierarchical, or phylogenetic structure. *Ecography* 40(8) (blocked CV with buffers).
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.errors import IdentificationWarning, SpecError
from bayesbond.workflow.parallel import check_client, have_distributed, run_in_order

__all__ = ["kfold", "lfo", "training_prepared", "warm_start_kwargs"]

#: keywords of ``fit`` that cross-validation sets itself unless given
_FIT_DEFAULTS = {"log_likelihood": False, "progressbar": False}


# ------------------------------------------------------------------------------------ helpers
def _check_model(model):
    from bayesbond.bayes.factor_model import FactorModel

    if not isinstance(model, FactorModel):
        raise SpecError(f"cross-validation over dates needs a bb.FactorModel; got "
                        f"{type(model).__name__}")


def training_prepared(model, prepared, train_rows):
    """The prepared inputs of a fit on the dates ``train_rows`` only, in the full shapes.

    Parameters
    ----------
    model : FactorModel
    prepared : FactorPrepared
        :meth:`FactorModel.prepare` of the full panel.
    train_rows : ndarray of bool (T,)
        Dates (rows of ``prepared.data.y``) whose returns the fit may see.

    Returns
    -------
    FactorPrepared
        The same dates, bonds and factors, the returns of the other dates set to NaN (not
        observed) and the default priors recomputed from the training cells (and the factor
        returns of the dates with a training return), as ``model.prepare`` computes them for
        the training panel alone; the user's prior overrides applied on top.
    """
    from bayesbond.bayes.factor_model import FactorPrepared
    from bayesbond.bayes.factor_priors import default_priors, resolve_priors

    data = prepared.data
    y = np.where(np.asarray(train_rows, dtype=bool)[:, None], data.y, np.nan)
    keep = np.isfinite(y).any(axis=1)
    if not keep.any():
        raise SpecError("a training set has no observed return")
    defaults = default_priors(y[keep], data.F[keep], data.factors)
    pri = resolve_priors(defaults, model.priors, data.factors)
    return FactorPrepared(dataclasses.replace(data, y=y), pri)


def warm_start_kwargs(model, prepared, full_fit) -> dict:
    """nutpie keywords that start every chain of a fold's fit where a full-data fit ended.

    Parameters
    ----------
    model : FactorModel
    prepared : FactorPrepared
        The full data (:meth:`FactorModel.prepare`), for the sampler's coordinates.
    full_fit : DataTree
        A fit of ``model`` on those data (nutpie).

    Returns
    -------
    dict
        ``{"nuts": {"init_mean": ..., "initial_step": ...}}`` for ``fit(**kwargs)``:
        ``init_mean`` the posterior mean of the free variables in the sampler's unconstrained
        coordinates (in the order of ``model.free_RVs``, log-transformed scales averaged on the
        log scale), around which nutpie jitters its starting points; ``initial_step`` the
        median of the full fit's adapted step sizes. nutpie takes no initial mass matrix, so
        its adaptation of the mass matrix starts afresh (from the gradient at the start).

    Raises
    ------
    SpecError
        A free variable the full fit lacks or with a transform other than none or log (e.g.
        the LKJ factor of ``correlated=True``).
    """
    pm_model = model.build(prepared)
    post = full_fit["posterior"].to_dataset()
    parts = []
    for rv in pm_model.free_RVs:
        name = rv.name
        if name not in post:
            raise SpecError(f"warm start: the full fit has no {name!r}: is it a fit of this model?")
        dims = pm_model.named_vars_to_dims.get(name, ())
        x = post[name].transpose("chain", "draw", *dims).values
        tr = pm_model.rvs_to_transforms.get(rv)
        if tr is not None:
            if type(tr).__name__ != "LogTransform":
                raise SpecError(f"warm start: {name!r} has the transform {type(tr).__name__}; "
                                "only untransformed and log-transformed variables are supported")
            x = np.log(x)
        parts.append(x.reshape(-1, *x.shape[2:]).mean(axis=0).ravel())
    nuts = {"init_mean": np.concatenate(parts)}
    if "sample_stats" in full_fit.children and \
            "step_size" in full_fit["sample_stats"].data_vars:
        nuts["initial_step"] = float(np.median(full_fit["sample_stats"]["step_size"].values))
    return {"nuts": nuts}


def _weak(model, train, label):
    """Identification messages of a training set (issued later as one warning) and the counts
    of bonds with fewer than ``p + 3`` and with no training month."""
    from bayesbond.bayes.factor_model import MIN_RESIDUAL_MONTHS, check_identification

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentificationWarning)
        msgs = check_identification(train.data, model.pooling, label)
    n = np.isfinite(train.data.y).sum(axis=0)
    p = train.data.n_coef
    return msgs, int((n - p < MIN_RESIDUAL_MONTHS).sum()), int((n == 0).sum())


def _fit_and_score(model, train, y_test, F_test, fit_kw, need_r_eff=False):
    """One training fit and the joint log density of each test date at its draws.

    Returns a small dict (what a worker sends back): ``ll`` (S, T_test) and the timings.
    """
    from bayesbond.bayes.factor_predictive import heldout_date_logpdf

    data = train.data
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentificationWarning)  # summarised by the caller
        fit = model.fit(train, **fit_kw)
    wall = time.perf_counter() - t0
    ll = heldout_date_logpdf(fit, y_test, F_test, list(data.bonds), list(data.factors))
    divs = 0
    if "sample_stats" in fit.children and "diverging" in fit["sample_stats"].data_vars:
        divs = int(fit["sample_stats"]["diverging"].values.sum())
    post = fit["posterior"]
    return {"ll": ll, "wall_seconds": wall,
            "sampling_seconds": float(fit.attrs.get("sampling_seconds", np.nan)),
            "compile_seconds": float(fit.attrs.get("compile_seconds", np.nan)),
            "compile_reused": bool(fit.attrs.get("compile_reused", False)),
            "divergences": divs, "diagnostics": str(fit.attrs.get("diagnostics", "")),
            "chains": int(post.sizes["chain"]), "draws": int(post.sizes["draw"]),
            "r_eff": _r_eff(fit) if need_r_eff else 1.0}


def _r_eff(fit) -> float:
    from bayesbond.workflow.loglik import relative_eff

    try:
        return float(relative_eff(fit))
    except Exception:  # pragma: no cover - a stand-in sampler without ESS
        return 1.0


def _have_distributed() -> bool:
    return have_distributed()


def _runner(client):
    """``run(fn, list_of_arg_tuples) -> list`` locally (in order) or on a dask client
    (:func:`bayesbond.workflow.parallel.run_in_order`)."""
    check_client(client, "the folds")
    return lambda fn, items: run_in_order(fn, items, client)


def _fit_kw(sample_kw):
    kw = {**_FIT_DEFAULTS, **sample_kw}
    for bad in ("groups",):
        if bad in kw:
            raise SpecError(f"pass {bad}= as a keyword of kfold/lfo, not among the sampler's")
    return kw


def _warn_weak(kind, msgs):
    """One warning for all training sets: each message once, with the sets it holds for."""
    if not msgs:
        return
    where: dict[str, list[str]] = {}
    for label, msg in msgs:
        text = msg[len(label) + 2:] if msg.startswith(f"{label}: ") else msg
        where.setdefault(text, []).append(label)
    shown = " | ".join(f"{', '.join(labels)}: {text}" for text, labels in where.items())
    warnings.warn(f"{kind}: weakly identified bonds or groups in training sets (kept, not "
                  f"dropped; their predictions lean on the hierarchy or the prior): {shown}",
                  IdentificationWarning, stacklevel=3)


def _date_labels(dates) -> list[str]:
    return [pd.Timestamp(d).strftime("%Y-%m-%d") for d in dates]


def _lpd_full(full_fit, data):
    """``log mean_s p(y_.t | theta_s)`` of every date under a fit on all the data (or None)."""
    if full_fit is None:
        return None
    from bayesbond.bayes.factor_predictive import heldout_date_logpdf, log_mean_exp

    return log_mean_exp(heldout_date_logpdf(full_fit, data.y, data.F, list(data.bonds),
                                            list(data.factors)), axis=0)


# -------------------------------------------------------------------------------------- kfold
def kfold(model, panel, factors, k: int = 10, by: str = "date", client=None, *, gap: int = 0,
          groups=None, full_fit=None, warm_start: bool = False, **sample_kw):
    r"""Exact blocked K-fold cross-validation of a factor model over dates.

    Parameters
    ----------
    model : FactorModel
        The model to cross-validate (refitted once per fold).
    panel, factors
        The data, as for :meth:`FactorModel.fit` (``groups=`` as there).
    k : int
        Number of folds: the dates (those with at least one return) are cut into ``k``
        contiguous blocks of sizes differing by at most one (``numpy.array_split``).
    by : {"date"}
        Unit of the folds and of the scores. ``"bond"`` (leave bonds out) is not offered:
        use the collapsed leave-one-bond-out of ``bb.loo(fit, by="bond")``.
    client : dask.distributed.Client, optional
        Runs the folds on the cluster (each worker compiles once and reuses); None runs them
        here one after another.
    gap : int
        Buffer of ``h`` dates on each side of a test block left out of its training set (and
        not scored in that fold), so that the training set holds no month within ``h`` of a
        scored one (blocked CV with buffers, Roberts et al. 2017). 0: plain blocked K-fold.
    full_fit : DataTree, optional
        A fit of ``model`` on all the data: gives ``p_kfold_i = lpd_t - elpd_t`` with
        ``lpd_t`` the in-sample log predictive density of date ``t`` (NaN without it).
    warm_start : bool
        Start every fold's chains at the posterior mean of ``full_fit`` with its step size
        (:func:`warm_start_kwargs`); pair it with a shorter ``tune``. Needs ``full_fit``.
    **sample_kw
        Keywords of :meth:`FactorModel.fit` (``draws``, ``tune``, ``chains``,
        ``random_seed``, ``target_accept``, ...), the same for every fold: the same
        ``random_seed`` for each fold. ``log_likelihood`` defaults to False and
        ``progressbar`` to False.

    Returns
    -------
    arviz_stats.ELPDDataLOOKFold
        ``elpd_i`` over dim ``date`` (every date scored once), ``elpd = sum_t elpd_t``,
        ``se = sqrt(T var_t(elpd_t))`` (the dates as the independent units, as
        :func:`arviz_stats.loo_kfold`), ``p`` and ``p_kfold_i`` (with ``full_fit``), and the
        Python attributes ``unit = "date"``, ``method = "kfold(k=10, by=date)"`` (``gap``
        named when not 0), ``folds`` (DataFrame, one row per fold: first and last test date,
        test and training dates, bonds with weak or no training data, wall, sampling and
        compile seconds, ``compile_reused``, divergences, diagnostics) and ``wall_seconds``.

    Raises
    ------
    SpecError
        Not a FactorModel, ``by`` other than "date", ``k`` outside ``2..T``, a negative gap or
        one that leaves a fold without training dates, ``client`` without dask.
    NotImplementedError
        A model with date effects (see :mod:`bayesbond.bayes.factor_predictive`).

    Notes
    -----
    Fold ``j`` holds out the dates ``D_j`` and trains on ``y`` with the dates within ``gap``
    of ``D_j`` removed; for ``t`` in ``D_j``

        elpd_t = log (1/S) sum_s prod_b p(y_bt | alpha_sb + beta_sb'F_t, sigma_sb)

    over the bonds observed at ``t``, with the ``S`` draws of fold ``j``'s fit: the exact
    K-fold estimate of the expected log predictive density of a new month of returns given
    its factors, up to Monte Carlo error. Its ``se`` treats the dates as independent, which
    the residuals' serial correlation (if any) would understate.
    """
    import arviz_stats as azs

    _check_model(model)
    if by != "date":
        raise SpecError(f"kfold(by={by!r}): only by='date' is available; leave-one-bond-out is "
                        "bb.loo(fit, by='bond') (the collapsed per-bond marginal likelihood)")
    gap = int(gap)
    if gap < 0:
        raise SpecError(f"gap = {gap}: need a number of dates >= 0")
    fit_kw = _fit_kw(sample_kw)
    prepared = model.prepare(panel, factors, groups=groups)
    data = prepared.data
    T = len(data.dates)
    if warm_start:
        if full_fit is None:
            raise SpecError("warm_start=True needs full_fit= (a fit on all the data)")
        if "nuts" in fit_kw:
            raise SpecError("warm_start=True sets the sampler's nuts= keywords itself")
        fit_kw.update(warm_start_kwargs(model, prepared, full_fit))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= T:
        raise SpecError(f"k = {k!r}: need an integer number of folds between 2 and {T} (the "
                        "number of dates)")
    labels = _date_labels(data.dates)
    blocks = np.array_split(np.arange(T), int(k))
    items, rows, msgs = [], [], []
    for j, test in enumerate(blocks):
        train_rows = np.ones(T, dtype=bool)
        train_rows[max(0, test[0] - gap):test[-1] + gap + 1] = False
        if not train_rows.any():
            raise SpecError(f"fold {j} (test {labels[test[0]]}..{labels[test[-1]]}): gap = {gap} "
                            "leaves no training date")
        train = training_prepared(model, prepared, train_rows)
        what = f"fold {j} (test {labels[test[0]]}..{labels[test[-1]]})"
        m, n_weak, n_none = _weak(model, train, what)
        msgs += [(what, x) for x in m]
        rows.append({"fold": j, "first_test": labels[test[0]], "last_test": labels[test[-1]],
                     "test_dates": len(test), "train_dates": int(train_rows.sum()),
                     "weak_bonds": n_weak, "untrained_bonds": n_none})
        items.append((model, train, data.y[test], data.F[test], fit_kw))
    _warn_weak("kfold", msgs)
    t0 = time.perf_counter()
    results = _runner(client)(_fit_and_score, items)
    wall = time.perf_counter() - t0

    from bayesbond.bayes.factor_predictive import log_mean_exp

    elpd_t = np.empty(T)
    for test, res, row in zip(blocks, results, rows, strict=True):
        elpd_t[test] = log_mean_exp(res["ll"], axis=0)
        row.update({key: res[key] for key in ("wall_seconds", "sampling_seconds",
                                              "compile_seconds", "compile_reused",
                                              "divergences", "diagnostics")})
    n_samples = results[0]["chains"] * results[0]["draws"]
    coords = {"date": pd.DatetimeIndex(data.dates, name="date")}
    elpd_i = xr.DataArray(elpd_t, dims="date", coords=coords)
    lpd = _lpd_full(full_fit, data)
    p_i = None if lpd is None else xr.DataArray(lpd - elpd_t, dims="date", coords=coords)
    out = azs.ELPDDataLOOKFold(
        elpd=float(elpd_t.sum()), se=float(np.sqrt(T * np.var(elpd_t))),
        p=float(p_i.sum()) if p_i is not None else np.nan, n_samples=n_samples,
        n_data_points=T, scale="log", warning=False, good_k=None, elpd_i=elpd_i,
        pareto_k=None, n_folds=int(k), p_kfold_i=p_i)
    out.unit = "date"
    out.method = f"kfold(k={int(k)}, by=date" + (f", gap={gap})" if gap else ")")
    out.warm_start = bool(warm_start)
    out.folds = pd.DataFrame(rows).set_index("fold")
    out.wall_seconds = wall
    return out


# ---------------------------------------------------------------------------------------- lfo
def _psis_log_weights(log_ratios: np.ndarray, r_eff: float):
    """Pareto-smoothed log weights of draws with log importance ratios ``log_ratios`` (S,)
    and the Pareto k; ``(None, inf)`` when PSIS cannot be applied (as
    :func:`arviz_stats.lfo_cv` does, which then refits)."""
    r = np.asarray(log_ratios, dtype=float)
    if np.any(np.isnan(r)) or np.any(np.isposinf(r)) or np.all(np.isneginf(r)):
        return None, np.inf
    da = xr.DataArray(-r, dims="sample")  # psislw takes the log-likelihood: ratios = -input
    try:
        lw, k = da.azstats.psislw(dim="sample", r_eff=r_eff)
    except ValueError:
        return None, np.inf
    lw, k = np.asarray(lw, dtype=float), float(np.asarray(k))
    if not np.isfinite(k) or np.any(np.isnan(lw)) or np.any(np.isposinf(lw)):
        return None, np.inf
    return lw, k


def lfo(model, panel, factors, min_train: int = 60, client=None, *, k_threshold: float = 0.7,
        groups=None, full_fit=None, **sample_kw):
    r"""Approximate leave-future-out cross-validation (1-step-ahead) of a factor model.

    Bürkner, Gabry and Vehtari (2020): PSIS-LFO-CV. Every date ``i >= min_train`` (0-based,
    over the dates with at least one return) is predicted from the dates before it; the
    posterior of a fit on the first ``L`` dates is carried forward by Pareto-smoothed
    importance sampling and the model is refitted on the first ``i`` dates when the Pareto k of
    the weights exceeds ``k_threshold``.

    Parameters
    ----------
    model : FactorModel
    panel, factors
        As for :meth:`FactorModel.fit` (``groups=`` as there).
    min_train : int
        Dates in the first training set; the first date predicted is the date at that
        position. ``1 <= min_train < T``.
    client : dask.distributed.Client, optional
        Runs each (re)fit on the cluster; the refits depend on each other, so they run one
        after another either way.
    k_threshold : float
        Refit when the Pareto k of the importance weights is above this (0.7, the paper's
        default); ``-inf`` refits at every date: exact LFO.
    full_fit : DataTree, optional
        A fit on all the data: gives ``p_lfo_i = lpd_i - elpd_i`` (NaN without it).
    **sample_kw
        Keywords of :meth:`FactorModel.fit`, the same for every fit (the same
        ``random_seed``); ``log_likelihood`` and ``progressbar`` default to False.

    Returns
    -------
    arviz_stats.ELPDDataLFO
        ``elpd_i`` over dim ``date`` (the predicted dates), ``pareto_k`` (NaN where the
        prediction came from a fresh fit), ``refits`` (positions of the dates at which the
        model was refitted, the initial fit not counted), ``n_refits``, ``forecast_horizon =
        1``, ``min_observations = min_train``, ``se = sqrt(N var(elpd_i))``; Python attributes
        ``unit = "date"``, ``method = "lfo(min_train=60, k_threshold=0.7)"``, ``folds``
        (DataFrame, one row per fit: training dates, dates predicted from it, timings,
        ``compile_reused``), ``n_fits`` and ``wall_seconds``.

    Notes
    -----
    With ``L`` the last refit (``L = min_train`` first) and ``ll_s(t) = log p(y_.t |
    theta_s)`` at the draws of the fit on dates ``< L``: for a date ``i`` the raw log ratios
    are ``r_s = sum_{L <= t < i} ll_s(t)`` (the dates since the refit), ``w`` their
    Pareto-smoothed normalised weights and, if their k is at most ``k_threshold``,

        elpd_i = log sum_s w_s exp(ll_s(i)) / sum_s w_s;

    otherwise the model is refitted on the dates ``< i`` (``L = i``) and ``elpd_i = log
    (1/S) sum_s exp(ll_s(i))`` (the ``i = L`` case). The returns of a date are independent of
    the past given the parameters and the factor returns, so ``p(y_.i | y_{<i}, theta) =
    p(y_.i | theta)``. A ratio PSIS cannot smooth (NaN or infinite) also triggers a refit (as
    :func:`arviz_stats.lfo_cv`).
    """
    import arviz_stats as azs

    from bayesbond.bayes.factor_predictive import log_mean_exp

    _check_model(model)
    fit_kw = _fit_kw(sample_kw)
    prepared = model.prepare(panel, factors, groups=groups)
    data = prepared.data
    T = len(data.dates)
    if isinstance(min_train, bool) or not isinstance(min_train, (int, np.integer)) or \
            not 1 <= min_train < T:
        raise SpecError(f"min_train = {min_train!r}: need an integer number of training dates "
                        f"between 1 and {T - 1} (there are {T} dates)")
    k_threshold = float(k_threshold)
    labels = _date_labels(data.dates)
    run = _runner(client)
    rows, msgs = [], []

    def refit(L):
        train_rows = np.arange(T) < L
        train = training_prepared(model, prepared, train_rows)
        what = f"fit on the {L} dates to {labels[L - 1]}"
        m, n_weak, n_none = _weak(model, train, what)
        msgs.extend((what, x) for x in m)
        res = run(_fit_and_score, [(model, train, data.y[L:], data.F[L:], fit_kw, True)])[0]
        rows.append({"train_dates": L, "last_train": labels[L - 1], "first_predicted":
                     labels[L], "predicted": 0, "weak_bonds": n_weak, "untrained_bonds": n_none,
                     **{key: res[key] for key in ("wall_seconds", "sampling_seconds",
                                                  "compile_seconds", "compile_reused",
                                                  "divergences", "diagnostics")}})
        return res

    t0 = time.perf_counter()
    origins = np.arange(int(min_train), T)
    L = int(min_train)
    res = refit(L)
    elpd, ks, refits = np.empty(len(origins)), np.full(len(origins), np.nan), []
    for pos, i in enumerate(origins):
        offset = i - L
        lw = None
        if offset > 0:
            lw, k = _psis_log_weights(res["ll"][:, :offset].sum(axis=1), res["r_eff"])
            if not k <= k_threshold:
                L, offset, lw = int(i), 0, None
                res = refit(L)
                refits.append(int(i))
            else:
                ks[pos] = k
        ll_i = res["ll"][:, offset]
        if lw is None:
            elpd[pos] = float(log_mean_exp(ll_i))
        else:
            from scipy.special import logsumexp

            elpd[pos] = float(logsumexp(lw + ll_i) - logsumexp(lw))
        rows[-1]["predicted"] += 1
    wall = time.perf_counter() - t0
    _warn_weak("lfo", msgs)

    coords = {"date": pd.DatetimeIndex(data.dates[origins], name="date")}
    elpd_i = xr.DataArray(elpd, dims="date", coords=coords)
    pareto_k = xr.DataArray(ks, dims="date", coords=coords)
    lpd = _lpd_full(full_fit, data)
    p_i = None if lpd is None else xr.DataArray(lpd[origins] - elpd, dims="date",
                                                coords=coords)
    N = len(origins)
    out = azs.ELPDDataLFO(
        elpd=float(elpd.sum()), se=float(np.sqrt(N * np.var(elpd))) if N > 1 else 0.0,
        p=float(p_i.sum()) if p_i is not None else np.nan,
        n_samples=res["chains"] * res["draws"], n_data_points=N, scale="log",
        warning=len(refits) > N / 2, good_k=k_threshold, elpd_i=elpd_i, pareto_k=pareto_k,
        forecast_horizon=1, min_observations=int(min_train),
        refits=np.asarray(refits, dtype=int), n_refits=len(refits), p_lfo_i=p_i)
    out.unit = "date"
    out.method = f"lfo(min_train={int(min_train)}, k_threshold={k_threshold:g})"
    out.folds = pd.DataFrame(rows)
    out.n_fits = len(rows)
    out.wall_seconds = wall
    return out

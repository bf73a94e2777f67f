"""Running the sampler and reporting convergence, shared by every Bayesian model.

Every ``Model.fit`` calls :func:`sample`, which runs PyMC's NUTS (nutpie by default), attaches the
model name, library version and timings as attributes and checks R-hat, bulk/tail ESS and
divergences. When the check fails, the warning names the parameters that failed and the likely
cause (:func:`explain`).

Progress: the phases of a fit (validate, compile, tune, draw, post-process) go to the callback
of :func:`progress_to` (the command line's time-stamped printer) or, on a terminal, to stderr
with a live progress bar and a time estimate.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import json
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from bayesbond.errors import ConvergenceWarning, SpecError

__all__ = ["Diagnostics", "diagnostics", "check_convergence", "check_sampler_args", "explain",
           "ieee_compile", "progress_to", "report", "sample", "RHAT_MAX", "ESS_MIN_PER_CHAIN"]

_REPORTER: contextvars.ContextVar = contextvars.ContextVar("bayesbond_progress", default=None)


@contextlib.contextmanager
def progress_to(callback: Callable[[str], None] | None):
    """Send the phase lines of every fit run inside the ``with`` block to ``callback(msg)``.

    ``None`` silences them. The progress bar of the sampler is drawn on stderr in addition when
    stderr is a terminal; otherwise the sampler reports the start of tuning and drawing and the
    half-way points as lines, with a time estimate.
    """
    token = _REPORTER.set(callback if callback is not None else _silent)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def _silent(msg: str) -> None:
    return None


def _stderr_line(msg: str) -> None:
    print(f"[bayesbond] {msg}", file=sys.stderr, flush=True)


def report(msg: str) -> None:
    """Send one phase line to the current progress callback (see :func:`progress_to`)."""
    cb = _REPORTER.get()
    if cb is None and sys.stderr.isatty():
        cb = _stderr_line
    if cb is not None:
        cb(msg)


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = max(0.0, s)
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


class _SamplerProgress:
    """nutpie ``progress_callback``: phase lines (tuning, drawing) and a bar with an estimate.

    Called from nutpie's background thread with one ``ChainProgress`` per chain.
    """

    def __init__(self, say, chains: int, draws: int, tune: int, live: bool):
        self.say, self.chains, self.draws, self.tune, self.live = say, chains, draws, tune, live
        self.phase, self.milestone, self.width, self.lock = "tuning", 0, 0, threading.Lock()
        say(f"tuning: {chains} chains x {tune} tuning steps")

    def __call__(self, cps) -> None:
        with self.lock:
            self._update(list(cps))

    def _update(self, cps) -> None:
        if not cps or not any(cp.started for cp in cps):
            return
        finished = sum(int(cp.finished_draws) for cp in cps)
        total = sum(int(cp.total_draws) for cp in cps) or 1
        divs = sum(len(cp.divergent_draws) for cp in cps)
        elapsed = max(cp.runtime_ms for cp in cps) / 1000.0
        phase = "tuning" if any(cp.tuning for cp in cps) else "drawing"
        left = elapsed * (total - finished) / finished if finished else math.nan
        if phase != self.phase:
            self._end_bar()
            self.phase = phase
            what = (f"{self.chains} chains x {self.tune} tuning steps" if phase == "tuning"
                    else f"{self.chains} chains x {self.draws} draws")
            est = "" if phase == "tuning" else f", about {_fmt_seconds(left)} left"
            self.say(f"{phase}: {what}{est}")
        frac = finished / total
        if self.live:
            n = 30
            full = int(n * frac)
            line = (f"  {phase:8s} [{'#' * full}{'.' * (n - full)}] {100 * frac:3.0f}%  "
                    f"{finished}/{total} draws, {divs} divergences, {_fmt_seconds(elapsed)}, "
                    f"~{_fmt_seconds(left)} left")
            self.width = max(self.width, len(line))
            sys.stderr.write("\r" + line.ljust(self.width))
            sys.stderr.flush()
        elif frac >= 0.5 and self.milestone < 1 and finished < total:
            self.milestone = 1
            self.say(f"{phase}: half of the draws done ({divs} divergences so far), about "
                     f"{_fmt_seconds(left)} left")

    def _end_bar(self) -> None:
        if self.live and self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.width = 0

    def close(self) -> None:
        with self.lock:
            self._end_bar()
            if self.phase != "drawing":  # finished between two callbacks
                self.phase = "drawing"
                self.say(f"drawing: {self.chains} chains x {self.draws} draws")

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
        return (self.max_rhat <= RHAT_MAX and self.divergences == 0
                and self.min_ess_bulk >= need and self.min_ess_tail >= need)

    def __str__(self) -> str:
        return (f"max R-hat {self.max_rhat:.4f}, min bulk ESS {self.min_ess_bulk:.0f}, "
                f"min tail ESS {self.min_ess_tail:.0f}, divergences {self.divergences} "
                f"({self.n_chains} chains x {self.n_draws} draws)")


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
    # (R-hat, bulk ESS, tail ESS) of every element, variable by variable
    stats = [[np.ravel(a) for a in rhat_ess(post[v].transpose("chain", "draw", ...).values)]
             for v in post.data_vars if post[v].size]

    def _extreme(i, fn):
        vals = np.concatenate([st[i] for st in stats]) if stats else np.array([])
        vals = vals[~np.isnan(vals)]  # keep inf: chains stuck at different values
        return float(fn(vals)) if vals.size else np.nan

    div = 0
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"].data_vars:
        div = int(idata["sample_stats"]["diverging"].values.sum())
    return Diagnostics(_extreme(0, np.max), _extreme(1, np.min), _extreme(2, np.min),
                       div, n_chains, n_draws)


def check_sampler_args(draws, tune, chains, target_accept=None) -> None:
    """Refuse sampler settings that cannot give a posterior, before any work is done.

    Raises
    ------
    SpecError
        ``draws`` or ``chains`` below 1, ``tune`` below 0 (or any of them not an integer),
        ``target_accept`` outside (0, 1). The message names the setting and its value.
    """
    for key, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SpecError(f"{key} = {value!r}: need an integer >= {low}"
                            + (" (draws per chain after tuning)" if key == "draws" else ""))
    if target_accept is not None and not 0.0 < float(target_accept) < 1.0:
        raise SpecError(f"target_accept = {target_accept!r}: need a number in (0, 1), e.g. 0.9")


def display_name(model_name: str) -> str:
    """A short name for messages: a JSON spec such as ``{"family": "OUModel", "n": 1, ...}``
    becomes ``OUModel(n=1, ...)`` (scalar settings only); other names are returned as given."""
    text = str(model_name or "")
    if not text.startswith("{"):
        return text or "model"
    try:
        spec = json.loads(text)
    except ValueError:
        return text
    if not isinstance(spec, dict):
        return text
    family = spec.get("family", "model")
    args = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in spec.items()
            if k != "family" and isinstance(v, (int, float, str, bool))]
    return f"{family}({', '.join(args)})"


def ieee_compile():
    """Context in which PyTensor compiles numba code without fastmath flags.

    With fastmath (``reassoc``, ``contract``, ...) LLVM rounds a log density compiled afresh
    differently from the same graph linked from numba's on-disk cache, so one seed gave other
    draws in another process; IEEE rounding makes them repeat bit for bit.
    """
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


def sample(model, *, draws: int = 1000, tune: int = 1000, chains: int = 4, random_seed=None,
           sampler: str = "nutpie", progressbar: bool | None = None,
           target_accept: float | None = None, model_name: str = "", var_names_check=None,
           check: bool = True, compile_key=None, **kwargs) -> xr.DataTree:
    """Sample ``model`` with NUTS and return an ArviZ DataTree with convergence checked.

    Parameters
    ----------
    model : pymc.Model
    draws, tune, chains, random_seed : passed to :func:`pymc.sample`.
        ``draws >= 1``, ``tune >= 0``, ``chains >= 1`` (:func:`check_sampler_args`).
        The same ``random_seed`` gives bit-identical draws in any process on the same machine
        and library versions: the model is compiled without fastmath (:func:`ieee_compile`).
    sampler : {"nutpie", "pymc", "numpyro", "blackjax"}
        NUTS implementation. nutpie is compiled and sampled as :func:`pymc.sample` does (same
        per-chain seeds), with compiling and sampling timed separately.
    progressbar : bool, optional
        Show the phases (compile, tune, draw) and a progress bar with a time estimate on stderr.
        ``None`` (default): when a :func:`progress_to` callback is installed or stderr is a
        terminal. The bar itself is drawn only on a terminal; elsewhere phase lines are sent.
    target_accept : float, optional
        Step-size adaptation target.
    model_name : str
        Stored in the ``model`` attribute of the tree (a JSON spec is shortened in messages,
        :func:`display_name`).
    var_names_check : list of str, optional
        Variables whose R-hat/ESS are checked (default all posterior variables).
    check : bool
        Check convergence here (:func:`check_convergence`); a caller that adds variables to the
        posterior afterwards passes False and checks once at the end.
    compile_key : hashable, optional
        With nutpie: the compiled sampler is kept under this key (the last
        :data:`COMPILED_CACHE_SIZE` keys) and reused by a later call with the same key and the
        same graph (:func:`_same_graph`), with the new model's data containers and coordinates
        swapped in; the draws equal those of a fresh compile with the same seed.

    Returns
    -------
    xarray.DataTree
        Attributes ``model``, ``bayesbond_version``, ``diagnostics``, ``compile_seconds`` and
        ``sampling_seconds`` (tuning and drawing, all chains); ``posterior.attrs
        ["sampled_variables"]`` lists the free variables (JSON). A failed check (R-hat <= 1.01,
        no divergence, 100 effective draws per chain) warns (:func:`check_convergence`).
    """
    import pymc as pm

    import bayesbond

    check_sampler_args(draws, tune, chains, target_accept)
    say = _REPORTER.get()
    if progressbar is None:
        progressbar = say is not None or sys.stderr.isatty()
    if not progressbar:
        say = None
    elif say is None:
        say = _stderr_line
    live = bool(progressbar) and sys.stderr.isatty()
    say = say or _silent

    nuts_kwargs = dict(kwargs.pop("nuts", {}) or {})
    if target_accept is not None:
        nuts_kwargs.setdefault("target_accept", target_accept)
    name = display_name(model_name)
    t0 = time.perf_counter()
    with warnings.catch_warnings(), ieee_compile():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        if sampler == "nutpie" and not kwargs:
            idata, compile_s, sampling_s = _sample_nutpie(
                model, draws, tune, chains, random_seed, nuts_kwargs, say, live, name,
                compile_key)
        else:
            say(f"compiling and sampling {name} with {sampler}: {chains} chains x {tune} "
                f"tuning steps + {draws} draws")
            idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                              nuts_sampler=sampler, progressbar=live, model=model,
                              nuts=nuts_kwargs, compute_convergence_checks=False, **kwargs)
            total = time.perf_counter() - t0
            sampling_s = float(idata["posterior"].attrs.get("sampling_time", total))
            compile_s = max(total - sampling_s, 0.0)
    idata["posterior"].attrs["sampled_variables"] = json.dumps([v.name for v in model.free_RVs])
    idata.attrs["model"] = model_name
    idata.attrs["bayesbond_version"] = bayesbond.__version__
    idata.attrs["compile_seconds"] = float(compile_s)
    idata.attrs["sampling_seconds"] = float(sampling_s)
    say(f"sampled in {_fmt_seconds(sampling_s)} (compiling took {_fmt_seconds(compile_s)})")
    if check:
        check_convergence(idata, var_names_check, model_name, stacklevel=3)
    return idata


#: compiled samplers kept for reuse (see ``sample(compile_key=...)``)
COMPILED_CACHE_SIZE = 8
_COMPILED: collections.OrderedDict = collections.OrderedDict()


def _graph_parts(m):
    """``(outputs, value variables, {name: shared variable}, number of shared inputs)`` of
    model ``m``: its log density and every traced variable."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    outs = [m.logp(), *m.unobserved_value_vars]
    shared = [v for v in graph_inputs(outs) if isinstance(v, SharedVariable)]
    return outs, list(m.value_vars), {v.name: v for v in shared}, len(shared)


def _snapshot(m):
    """:func:`_graph_parts` of ``m`` with the inner nodes copied (inputs kept): compiling
    with nutpie may rewrite a model's graph in place (e.g. an ``LKJCholeskyCov``), after which
    the cached model no longer computes what it did, and every refit would compile anew."""
    from pytensor.graph.basic import clone
    from pytensor.graph.traversal import graph_inputs

    outs, values, data, n = _graph_parts(m)
    _, outs = clone(list(graph_inputs(outs)), outs, copy_inputs=False, copy_orphans=False)
    return outs, values, data, n


def _same_graph(old, new) -> bool:
    """Whether model ``new`` computes what the snapshot ``old`` (:func:`_snapshot`) does (log
    density and every traced variable) up to the values of its data containers: same
    structure, constants, types and data shapes (checked by
    :func:`pytensor.graph.basic.equal_computations`), so that a too coarse ``compile_key``
    costs a compile, never a wrong posterior."""
    from pytensor.graph.basic import equal_computations

    outs, values, data, n = _graph_parts(new)
    old_outs, old_values, old_data, old_n = old
    if data.keys() != old_data.keys() or None in data or len(data) != n or n != old_n or \
            [v.name for v in values] != [v.name for v in old_values]:
        return False
    names = sorted(data)
    if any(data[k].type != old_data[k].type
           or np.shape(data[k].get_value()) != np.shape(old_data[k].get_value())
           for k in names):
        return False
    swapped = {v.name for v in new.data_vars}  # the others (e.g. lengths) must be equal
    if any(not np.array_equal(data[k].get_value(), old_data[k].get_value())
           for k in names if k not in swapped):
        return False
    return equal_computations(outs, old_outs, in_xs=[*values, *(data[k] for k in names)],
                              in_ys=[*old_values, *(old_data[k] for k in names)])


def _compiled(model, key, name, say):
    """``(compiled nutpie model, reused)`` for ``model``: from the cache under ``key`` with
    the model's data and coordinates swapped in, else compiled (and cached when ``key`` is
    given)."""
    import dataclasses

    import nutpie

    hit = _COMPILED.get(key) if key is not None else None
    if hit is not None and not _same_graph(hit[2], model):
        say(f"{name}: the model under this compile key has another graph: compiling anew")
        hit = None
    if hit is None:
        say(f"compiling {name} (numba: log density and gradient; often 10-60 s)")
        snap = _snapshot(model) if key is not None else None  # before nutpie rewrites it
        compiled = nutpie.compile_pymc_model(model, backend="numba")
        if key is not None:
            _COMPILED[key] = (compiled, model, snap)
            while len(_COMPILED) > COMPILED_CACHE_SIZE:
                _COMPILED.popitem(last=False)
        return compiled, False
    compiled, first, _ = hit
    _COMPILED.move_to_end(key)
    data = {v.name: np.asarray(v.get_value()) for v in model.data_vars}
    for v in first.data_vars:  # the cached initial-point function reads these
        v.set_value(data[v.name])
    used = {v.name for v in compiled.shared_var_keys}  # (a prior the graph does not use)
    data = {k: v for k, v in data.items() if k in used}
    import pandas as pd

    coords = {**(compiled.coords or {}),
              **{k: pd.Index(v) for k, v in model.coords.items() if v is not None}}
    say(f"reusing the compiled {name} (same graph, new data)")
    return dataclasses.replace(compiled.with_data(**data), _coords=coords), True


def _sample_nutpie(model, draws, tune, chains, random_seed, nuts_kwargs, say, live, name,
                   compile_key=None):
    """Compile with nutpie (or reuse a compiled sampler, see :func:`_compiled`) and sample, as
    ``pymc.sample(nuts_sampler="nutpie")`` does (the same per-chain seeds, cores and BLAS
    limits), timing each step and reporting progress."""
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata
    from pymc.util import get_random_generator
    from threadpoolctl import threadpool_limits

    nuts_kwargs = dict(nuts_kwargs)
    if "max_treedepth" in nuts_kwargs:
        nuts_kwargs["maxdepth"] = nuts_kwargs.pop("max_treedepth")
    rngs = get_random_generator(random_seed).spawn(chains)
    seeds = [rng.integers(2**30) for rng in rngs]
    cores = min(4, os.cpu_count() or 1, chains)
    t0 = time.perf_counter()
    compiled, reused = _compiled(model, compile_key, name, say)
    compile_s = time.perf_counter() - t0
    say(f"{'ready' if reused else 'compiled'} in {_fmt_seconds(compile_s)}; sampling {chains} "
        f"chains x {tune} tuning steps + {draws} draws")
    bar = _SamplerProgress(say, chains, draws, tune, live)
    t1 = time.perf_counter()
    try:
        with threadpool_limits(limits=min(4, os.cpu_count() or 1)):
            idata = nutpie.sample(compiled, draws=draws, tune=max(tune, 1), chains=chains,
                                  cores=cores, seed=int(seeds[0]), save_warmup=False,
                                  progress_bar=False, progress_callback=bar, **nuts_kwargs)
    finally:
        bar.close()
    sampling_s = time.perf_counter() - t1
    got = idata["posterior"].sizes.get("draw", 0)
    if got < draws:
        # nutpie answers Ctrl-C by returning the draws so far: never pass that off as a fit
        raise KeyboardInterrupt(f"sampling interrupted after {got} of {draws} draws per chain")
    patch_nutpie_idata(idata, model, sampling_time=sampling_s)
    idata.attrs["compile_reused"] = reused
    return idata, compile_s, sampling_s


def check_convergence(idata: xr.DataTree, var_names=None, model_name: str = "",
                      stacklevel: int = 2) -> Diagnostics:
    """Compute :func:`diagnostics`, store them in ``attrs["diagnostics"]`` and warn on failure.

    The :class:`~bayesbond.errors.ConvergenceWarning` names the model (:func:`display_name`),
    gives the numbers (worst R-hat, smallest bulk and tail ESS, divergences) and, from
    :func:`explain`, the parameters that failed, the likely cause and what to do.
    """
    report("post-processing: convergence diagnostics (R-hat, ESS, divergences)")
    diag = diagnostics(idata, var_names)
    idata.attrs["diagnostics"] = str(diag)
    if not diag.ok:
        warnings.warn(f"{display_name(model_name)} did not converge cleanly: {diag}. "
                      f"{explain(idata, var_names)}",
                      ConvergenceWarning, stacklevel=stacklevel + 1)
    return diag


_MAX_NAMED = 5


def _elements(post: xr.Dataset, var_names):
    """``(label, draws (chain, draw))`` for every element of the checked variables."""
    out = []
    for v in (list(var_names) if var_names is not None else list(post.data_vars)):
        da = post[v].transpose("chain", "draw", ...)
        extra = da.dims[2:]
        x = da.values
        if not extra:
            out.append((v, x))
            continue
        labels = [np.asarray(da[d].values) if d in da.coords else np.arange(da.sizes[d])
                  for d in extra]
        for idx in np.ndindex(*x.shape[2:]):
            lab = ", ".join(str(labels[k][i]) for k, i in enumerate(idx))
            out.append((f"{v}[{lab}]", x[(slice(None), slice(None), *idx)]))
    return out


def explain(idata: xr.DataTree, var_names=None) -> str:
    r"""Which parameters failed the convergence check, the likely cause and what to do.

    Parameters
    ----------
    idata : xarray.DataTree
        A fit with ``posterior`` (and ``sample_stats.diverging`` for divergences).
    var_names : list of str, optional
        The variables checked (default every posterior variable).

    Returns
    -------
    str
        ``"Failed: ...; likely cause: ...; fix: ..."`` naming at most five parameters (the
        worst first); empty when nothing failed.

    Notes
    -----
    An element fails when its rank-normalised R-hat exceeds 1.01 or its bulk or tail ESS is
    below 100 per chain. The causes, tested in this order:

    * **funnel**: divergent transitions concentrated at small values of a positive (scale)
      parameter: the median of the parameter over the divergent draws lies below its 25%
      posterior quantile. The hierarchy's spread is weakly identified (few members in a
      group), so the sampler cannot follow the neck of the funnel ``theta_b ~ N(mu, tau)`` as
      ``tau -> 0``.
    * **boundary**: a failing positive parameter whose posterior piles up at zero, its 5%
      quantile below 2% of its median (a half-normal posterior has 9%), e.g. a mean reversion
      speed near a unit root.
    * **weak identification**: low ESS or high R-hat without divergences, with a posterior
      correlation ``|r| > 0.9`` between a failing parameter and another sampled one (a ridge),
      (otherwise: slow mixing, with the number of draws that would reach the target).
    """
    from bayesbond.bayes.convergence import rhat_ess

    post = idata["posterior"].to_dataset()
    n_chains = post.sizes["chain"]
    need = ESS_MIN_PER_CHAIN * n_chains
    elems = [(lab, x) for lab, x in _elements(post, var_names) if x.size]
    failed = []
    if elems:  # one vectorised pass over every element (as diagnostics does)
        R, B, T = (np.ravel(a) for a in rhat_ess(np.stack([x for _, x in elems], axis=-1)))
        for (lab, x), r, b, t in zip(elems, R, B, T, strict=True):
            bad = (r > RHAT_MAX) or (b < need) or (t < need)
            if bad and not (np.isnan(r) and np.isnan(b)):
                failed.append((lab, x, float(r), float(b), float(t)))
    div = None
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"].data_vars:
        div = idata["sample_stats"]["diverging"].transpose("chain", "draw").values.astype(bool)
    n_div = int(div.sum()) if div is not None else 0
    if not failed and not n_div:
        return ""
    failed.sort(key=lambda f: (-(f[2] if np.isfinite(f[2]) else 1e300), min(f[3], f[4])))
    named = "; ".join(f"{lab} (R-hat {r:.3f}, bulk ESS {b:.0f}, tail ESS {t:.0f})"
                      for lab, _, r, b, t in failed[:_MAX_NAMED])
    more = f" and {len(failed) - _MAX_NAMED} more" if len(failed) > _MAX_NAMED else ""
    text = f"Failed: {named}{more}." if failed else ""

    positive = [(lab, x) for lab, x in elems if np.all(x > 0) and div is not None
                and x.shape == div.shape]
    if n_div and positive:
        funnel = []
        for lab, x in positive:
            q25 = np.quantile(x, 0.25)
            med_div = np.median(x[div])
            if med_div < q25:
                funnel.append((med_div / np.median(x), lab, med_div, np.median(x)))
        if funnel:
            funnel.sort()
            _, lab, md, m = funnel[0]
            return (f"{text} Likely cause: a funnel: the {n_div} divergences sit at small "
                    f"values of {lab} (median {md:.3g} in divergent draws, {m:.3g} overall), "
                    "a group spread the data barely identify. Fix: pool that group's spread "
                    "(merge the group with another, or fix its tau), use a pooled model, or "
                    "raise target_accept (e.g. 0.99).").strip()
    if n_div:
        return (f"{text} Likely cause: {n_div} divergent transitions (regions of high "
                "curvature). Fix: raise target_accept (e.g. 0.99) or reparameterise; do not "
                "trust the posterior until they are gone.").strip()
    at_zero = [lab for lab, x, *_ in failed
               if np.all(x > 0) and np.quantile(x, 0.05) < 0.02 * np.median(x)]
    if at_zero:
        return (f"{text} Likely cause: a boundary: the posterior of {', '.join(at_zero[:3])} "
                "piles up at zero. Fix: an informative prior that keeps it off the boundary, "
                "or a model without that parameter.").strip()
    # weak identification: ridges between a failing element and another sampled one
    sampled = post.attrs.get("sampled_variables")
    sampled = set(json.loads(sampled)) if isinstance(sampled, str) else None
    others = [(lab, x.ravel()) for lab, x in elems
              if sampled is None or lab.split("[")[0] in sampled]
    ridge = None
    if others and len(others) <= 5000:
        Z = np.stack([o[1] for o in others])
        Z = Z - Z.mean(axis=1, keepdims=True)
        sd = np.sqrt((Z**2).sum(axis=1))
        sd[sd == 0] = np.inf
        Z = Z / sd[:, None]
        for lab, x, *_ in [f for f in failed if sampled is None
                           or f[0].split("[")[0] in sampled][:20]:
            z = x.ravel() - x.mean()
            nz = np.sqrt(z @ z)
            if nz == 0:
                continue
            c = Z @ (z / nz)
            for k in np.argsort(-np.abs(c)):
                if others[k][0] != lab:
                    if abs(c[k]) > 0.9 and (ridge is None or abs(c[k]) > abs(ridge[2])):
                        ridge = (lab, others[k][0], float(c[k]))
                    break
    if ridge is not None:
        return (f"{text} Likely cause: weak identification: {ridge[0]} and {ridge[1]} have "
                f"posterior correlation {ridge[2]:.2f} (a ridge the sampler crawls along). "
                "Fix: more data per parameter, an informative prior, or a simpler model; "
                "more draws only treat the symptom.").strip()
    low = min(min(b, t) for _, _, _, b, t in failed) if failed else need
    if low >= need:  # enough effective draws, yet the chains disagree
        return (f"{text} Likely cause: the chains disagree (R-hat above {RHAT_MAX}) although "
                "each has enough effective draws: a warm-up too short to reach the typical set, "
                "or several modes. Fix: more tuning steps (and draws); if it persists, look at "
                "the chains of these parameters (several modes need a better model or prior)."
                ).strip()
    n_draws = post.sizes["draw"]
    more_draws = math.ceil(1.2 * n_draws * need / max(low, 1.0))
    return (f"{text} Likely cause: slow mixing: too few effective draws ({low:.0f} of the "
            f"{need} needed). Fix: more draws (about {more_draws} per chain) and tuning steps, "
            "or an informative prior on the slow parameters.").strip()

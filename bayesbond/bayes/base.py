"""The model contract: every Bayesian family is a :class:`BayesianModel`.

A family supplies four steps and inherits one :meth:`BayesianModel.fit` (in the manner of
statsmodels' ``MLEModel``: the subclass says what the model is, the base runs it):

1. :meth:`~BayesianModel.prepare` ``(*data, **options) -> prepared``: every check of the inputs
   and every data-derived number, before anything is compiled. ``prepared`` is an immutable
   value (a ``NamedTuple``) of the family's own type; the model object keeps no fitted state,
   so one model object fits many data sets, also concurrently.
2. :meth:`~BayesianModel.build` ``(prepared) -> pymc.Model``.
3. :meth:`~BayesianModel.data_groups` ``(prepared) -> {"observed_data": Dataset,
   "constant_data": Dataset}``: what the fit needs later (reports, bands, log-likelihood,
   comparison), attached to the result.
4. :meth:`~BayesianModel.pointwise_loglik` ``(idata, ...) -> DataArray (chain, draw, obs_dim)``:
   the log-likelihood of each observation at each draw, computed from a fit (also a saved and
   loaded one), in bounded memory; ``loglik_size(prepared)`` says how many observations.

Hooks with defaults: :meth:`~BayesianModel.display` (name in messages), ``check`` (warnings
before sampling, e.g. weak identification), ``start`` (initial point or a reparameterised
model, e.g. the affine model's Laplace preconditioning), ``postprocess`` (derived quantities
added to the posterior, e.g. the factor model's exact redraw of ``alpha`` and ``beta``),
``check_vars`` (the variables whose convergence is checked), ``priors_used``,
``sampling_context`` and ``compile_key`` (a hashable key under which the compiled sampler is
reused for data of the same shapes).

:meth:`BayesianModel.fit` then, in this order: checks the sampler arguments, prepares, warns,
builds, starts, samples (:func:`bayesbond.bayes.sampling.sample`; the :meth:`~BayesianModel.draw`
hook, which a family with exact Gibbs steps overrides), post-processes, checks
convergence once over the final posterior, attaches the data groups, stores the pointwise
log-likelihood under one policy, and stamps the provenance in one place (attributes
``model`` (JSON spec), ``family`` (registry key), ``priors`` (JSON, as resolved for these
data), ``data_hash`` (SHA-256 of the attached data), ``bayesbond_version``, timings and
``diagnostics``). The result is a plain :class:`xarray.DataTree`.

Adding a family: one module subclassing :class:`BayesianModel`, one entry in
:mod:`bayesbond.bayes.registry` (its spec keys and prior keys) and one TOML in ``models/``;
see "Adding a model family" in the README.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import xarray as xr

__all__ = ["BayesianModel", "LOGLIK_AUTO_BYTES", "data_hash", "spec_of", "to_json"]

#: ``log_likelihood="auto"`` stores the pointwise log-likelihood when it takes at most this much
LOGLIK_AUTO_BYTES = 512 * 2**20


def to_json(obj) -> str:
    """JSON of a spec or prior dict (numpy arrays and scalars as lists and numbers)."""
    def plain(v):
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, np.ndarray | np.generic):
            return v.tolist()
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        return v

    return json.dumps(plain(obj))


def spec_of(idata) -> dict:
    """The fit's JSON ``model`` attribute as a dict (``{}`` when absent or not JSON)."""
    model = idata.attrs.get("model")
    try:
        return dict(json.loads(model)) if str(model).startswith("{") else {}
    except ValueError:
        return {}


def data_hash(*datasets: xr.Dataset) -> str:
    """``"sha256:<hex>"`` of the variables, dims, coordinates and values of ``datasets``."""
    h = hashlib.sha256()
    for ds in datasets:
        for name in sorted(ds.variables, key=str):
            v = ds.variables[name]
            h.update(f"{name}{v.dims}{v.dtype}".encode())
            h.update(np.ascontiguousarray(v.values).tobytes() if v.dtype != object
                     else repr(v.values.tolist()).encode())
    return "sha256:" + h.hexdigest()


class BayesianModel:
    """Base class of the Bayesian model families (see the module docstring for the contract).

    Class attributes a family sets
    ------------------------------
    family : str
        Registry key (:mod:`bayesbond.bayes.registry`), stored as the fit's ``family``.
    loglik_var : str
        Name of the variable of the ``log_likelihood`` group.
    fit_options : dict
        Family keywords of :meth:`fit` with their defaults; passed to the hooks as ``options``.
    default_target_accept : float or None
        Used when ``fit(target_accept=None)``.
    prepared_type : type
        The type :meth:`prepare` returns (``fit(prepared)`` skips the preparation).
    """

    family: ClassVar[str] = ""
    loglik_var: ClassVar[str] = "y"
    fit_options: ClassVar[Mapping[str, Any]] = {}
    default_target_accept: ClassVar[float | None] = None
    prepared_type: ClassVar[type] = type(None)

    # the contract: every family defines spec() (JSON-able settings with key ``family``),
    # prepare, build, data_groups, pointwise_loglik(idata, *, dtype, max_bytes, model) and
    # loglik_size, as the module docstring describes

    @classmethod
    def from_fit(cls, idata: xr.DataTree) -> BayesianModel:
        """The model object of a fit, rebuilt from its JSON ``model`` attribute (the
        :meth:`spec` keys are the constructor's; a family whose are not overrides this)."""
        spec = dict(json.loads(idata.attrs["model"]))
        spec.pop("family", None)
        return cls(**spec)

    # ----------------------------------------------------------------------------- hooks
    def display(self, prepared) -> str:
        """Short name of the model in messages."""
        from bayesbond.bayes.sampling import display_name

        return display_name(to_json(self.spec()))

    def describe(self, prepared) -> str:
        """What is being built, for the progress line (sizes of the data)."""
        return self.display(prepared)

    def check(self, prepared, stacklevel: int) -> None:
        """Warnings before sampling (e.g. :class:`~bayesbond.errors.IdentificationWarning`)."""

    def start(self, prepared, model, options: Mapping):
        """``(model, initvals)`` to sample: by default the built model from its default start."""
        return model, None

    def postprocess(self, idata: xr.DataTree, prepared, options: Mapping, random_seed) -> None:
        """Add derived quantities to ``idata`` in place (default: nothing)."""

    def check_vars(self, prepared, model) -> list[str] | None:
        """Variables whose convergence is checked (default: every posterior variable)."""
        return None

    def priors_used(self, prepared) -> dict:
        """The priors of this fit (data-scaled defaults with the user's overrides applied)."""
        return dict(getattr(self, "priors", {}) or {})

    def fit_spec(self, prepared) -> dict:
        """The spec stamped on the fit (default :meth:`spec`; e.g. with the factors found)."""
        return self.spec()

    def sampling_context(self):
        """Context the sampler runs in (e.g. BLAS thread limits)."""
        return contextlib.nullcontext()

    def compile_key(self, prepared, model):
        """Hashable key under which the compiled sampler is reused (``None``: never)."""
        return None

    #: the sampler of ``fit(sampler=None)``
    default_sampler = "nutpie"

    def draw(self, prepared, options: Mapping, *, draws, tune, chains, random_seed, sampler,
             target_accept, progressbar, name, **kwargs):
        """``(idata, model)``: the posterior draws (groups ``posterior`` and ``sample_stats``).

        By default :meth:`build`, :meth:`start` and NUTS through
        :func:`bayesbond.bayes.sampling.sample` (compiled once per :meth:`compile_key`). A
        family with exact conjugate steps (a Gibbs sampler in numpy) overrides this and returns
        ``model=None``; everything after the draws (post-processing, the convergence check,
        data groups, log-likelihood, provenance) stays the template's.
        """
        from bayesbond.bayes import sampling

        sampling.report(f"building {self.describe(prepared)}")
        model, initvals = self.start(prepared, self.build(prepared), options)
        if initvals is not None:
            kwargs["initvals"] = initvals
        key = self.compile_key(prepared, model) if sampler == "nutpie" else None
        if key is not None:
            kwargs["compile_key"] = key
        with self.sampling_context():
            idata = sampling.sample(model, draws=draws, tune=tune, chains=chains,
                                    random_seed=random_seed, sampler=sampler,
                                    target_accept=target_accept, progressbar=progressbar,
                                    model_name=name, check=False, **kwargs)
        return idata, model

    # ------------------------------------------------------------------------- the template
    def fit(self, *data, draws: int = 1000, tune: int = 1000, chains: int = 4,
            random_seed=None, sampler: str | None = None, target_accept: float | None = None,
            log_likelihood: bool | str = "auto", loglik_dtype="float64",
            progressbar: bool | None = None, **kwargs) -> xr.DataTree:
        """Prepare, build, sample, post-process, check and stamp one fit.

        Parameters
        ----------
        *data
            The family's data arguments (see its :meth:`prepare`), or one value it returned.
        draws, tune, chains, random_seed, sampler, target_accept, progressbar
            Passed to :func:`bayesbond.bayes.sampling.sample` (checked first: ``draws >= 1``,
            ``tune >= 0``, ``chains >= 1``, ``0 < target_accept < 1``). ``sampler=None`` is
            the family's :attr:`default_sampler` (``"nutpie"`` unless it says otherwise).
            ``progressbar=None``
            shows the phases when a progress callback is installed or stderr is a terminal;
            ``False`` silences them.
        log_likelihood : bool or "auto"
            Store the pointwise log-likelihood (group ``log_likelihood``, variable
            :attr:`loglik_var`); ``"auto"``: when it takes at most 512 MB (otherwise the
            attribute ``log_likelihood`` says why not, and :func:`bayesbond.loo` computes it in
            blocks).
        loglik_dtype : {"float64", "float32"}
        **kwargs
            The keywords of the family's :meth:`prepare` (e.g. ``groups``, ``dt``), its
            :attr:`fit_options`, and any other sampler keyword.

        Returns
        -------
        xarray.DataTree
            ``posterior``, ``sample_stats``, ``observed_data``, ``constant_data`` and (per the
            policy) ``log_likelihood``; attributes ``model``, ``family``, ``priors``,
            ``data_hash``, ``bayesbond_version``, ``diagnostics``, ``compile_seconds``,
            ``sampling_seconds``.
        """
        from bayesbond.bayes import sampling

        sampling.check_sampler_args(draws, tune, chains, target_accept)
        sampler = self.default_sampler if sampler is None else sampler
        options = {k: kwargs.pop(k, v) for k, v in self.fit_options.items()}
        params = inspect.signature(self.prepare).parameters
        prep_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in params}
        quiet = sampling.progress_to(None) if progressbar is False else \
            contextlib.nullcontext()
        with quiet:
            if len(data) == 1 and not prep_kw and isinstance(data[0], self.prepared_type):
                prepared = data[0]  # prepared once (e.g. checked before a long compile)
            else:
                sampling.report(f"validating the {getattr(self, 'data_label', 'data')}")
                prepared = self.prepare(*data, **prep_kw)
            name = self.display(prepared)
            self.check(prepared, stacklevel=3)
            if target_accept is None:
                target_accept = self.default_target_accept
            idata, model = self.draw(prepared, options, draws=draws, tune=tune, chains=chains,
                                     random_seed=random_seed, sampler=sampler,
                                     target_accept=target_accept, progressbar=progressbar,
                                     name=name, **kwargs)
            self.postprocess(idata, prepared, options, random_seed)
            names = self.check_vars(prepared, model)
            if names is not None:  # (a stand-in sampler may leave some out)
                names = [v for v in names if v in idata["posterior"].data_vars]
            sampling.check_convergence(idata, names, name, stacklevel=2)
            groups = self.data_groups(prepared)
            for grp, ds in groups.items():
                idata[grp] = xr.DataTree(ds)
            self._store_loglik(idata, prepared, model, log_likelihood, loglik_dtype)
            idata.attrs.update(model=to_json(self.fit_spec(prepared)), family=self.family,
                               priors=to_json(self.priors_used(prepared)),
                               data_hash=data_hash(*groups.values()))
        return idata

    def _store_loglik(self, idata, prepared, model, policy, dtype) -> None:
        if not policy:
            return
        post = idata["posterior"]
        n_samples = post.sizes["chain"] * post.sizes["draw"]
        nbytes = self.loglik_size(prepared) * n_samples * np.dtype(dtype).itemsize
        if policy is True or nbytes <= LOGLIK_AUTO_BYTES:
            from bayesbond.bayes.sampling import report

            report("post-processing: pointwise log-likelihood")
            ll = self.pointwise_loglik(idata, dtype=dtype, model=model)
            idata["log_likelihood"] = xr.DataTree(xr.Dataset({self.loglik_var: ll}))
        else:
            idata.attrs["log_likelihood"] = (
                f"not stored ({nbytes / 2**20:.0f} MB > {LOGLIK_AUTO_BYTES // 2**20} MB): "
                "pass log_likelihood=True, or let bb.loo compute it in blocks")

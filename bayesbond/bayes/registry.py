"""The family registry: what the command line, specs, reports and comparison know of a family.

One :class:`Family` entry per Bayesian model family: its spec key, the class (imported only when
a fit needs it, so that validating a spec costs no sampler import), the kind of input files,
the keys of its ``[model]``, ``[data]`` and ``[priors]`` spec tables and the cross-table checks.
The prior keys live here and nowhere else: the models validate their ``priors=`` against them.

Each schema maps a key to ``(type, default, check)`` with ``check(value)`` returning an error
text or ``None``; ``type`` is ``int``, ``float``, ``bool``, ``str``, :data:`STR_LIST` or
:data:`NUM_LIST`.

Adding a family: append one entry to :data:`FAMILIES` (and see "Adding a model family" in the
README).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bayesbond.bayes.factor_priors import PRIOR_KEYS as FACTOR_PRIOR_KEYS
from bayesbond.errors import SpecError

__all__ = ["FAMILIES", "Family", "family_of_fit", "get", "NUM_LIST", "STR_LIST"]

STR_LIST = "list[str]"
NUM_LIST = "list[float]"


# ---------------------------------------------------------------------------- value checks
def positive(v):
    return None if v > 0 else "must be positive"


def unit_interval(v):
    return None if 0 < v < 1 else "must be strictly between 0 and 1"


def at_least(n):
    return lambda v: None if v >= n else f"must be at least {n}"


def one_of(*choices):
    return lambda v: None if v in choices else (
        "must be one of " + ", ".join(repr(c) for c in choices))


def unique_nonempty(v):
    if not v:
        return "must not be empty"
    dup = sorted({x for x in v if v.count(x) > 1})
    return f"repeats {', '.join(map(repr, dup))}" if dup else None


def increasing_positive(v):
    if not v:
        return "must not be empty"
    if any(x <= 0 for x in v):
        return "must all be positive (years)"
    if any(b <= a for a, b in zip(v, v[1:], strict=False)):
        return "must be strictly increasing"
    return None


# ------------------------------------------------------------------------------- the entry
@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes
    ----------
    key : str
        The spec's ``family`` and the fit's ``family`` attribute.
    label : str
        Class name; fits record it as the ``family`` of their JSON ``model`` attribute.
    model : str
        ``"module:Class"`` of the :class:`~bayesbond.bayes.base.BayesianModel` subclass, which
        has a classmethod ``from_spec(spec) -> (model, fit_kwargs)``.
    inputs : {"panel", "series", "assets"}
        What the command line reads: a long bond panel (and a factor file), columns of one
        dated file, or a wide file of test-asset returns and a wide factor file.
    observed : str
        The variable of the fits' ``observed_data`` (and ``log_likelihood``) group.
    posterior : tuple of str
        Posterior variables that mark a fit of the family when nothing else names it (a tree
        made by hand).
    model_keys, data_keys : mapping
        Schemas of the ``[model]`` and ``[data]`` tables.
    prior_keys : callable
        ``prior_keys(model_table) -> tuple of str``, the ``[priors]`` keys.
    prior_style : {"per_factor", "location_scale"}
        How prior values are written: a number, a list per factor or a table ``factor = x``;
        or a positive scale or a pair ``[location, scale]``.
    spec_check : callable, optional
        ``spec_check(model_table, data_table) -> (where, message) or None``.
    """

    key: str
    label: str
    model: str
    inputs: str
    observed: str
    posterior: tuple
    model_keys: Mapping
    data_keys: Mapping
    prior_keys: Callable[[Mapping], tuple]
    prior_style: str = "location_scale"
    spec_check: Callable | None = None

    def load(self) -> type:
        """The model class (imports its module)."""
        module, name = self.model.split(":")
        return getattr(importlib.import_module(module), name)


# ---------------------------------------------------------------------------- the families
OU_PRIOR_KEYS_1D = ("kappa", "theta", "sigma")
OU_PRIOR_KEYS_ND = ("kappa", "A_chol_diag", "A_offdiag", "mu", "Sigma", "lkj_eta")

#: the affine model's default priors (see :class:`~bayesbond.AffineModel`)
AFFINE_DEFAULT_PRIORS = {
    # eig_raw: log(-lam_1), log steps / log g, log h of the P* eigen-structure (normal mean, sd)
    "eig_raw": ([np.log(0.05), np.log(0.5), np.log(0.25)], [1.5, 1.0, 1.5]),
    "k_inf": 0.02,  # normal sd of k_inf
    "log_sigma_diag": (np.log(0.01), 1.5),  # log diagonal of Sigma
    "sigma_offdiag": 0.02,  # normal sd of the off-diagonal entries of Sigma
    "A_scale": 2.0,  # sd of A[i, j] is A_scale * sd(P_i) / sd(P_j)
    "a_scale": 2.0,  # sd of a[i] is a_scale * sd(P_i) * ||(|mean P| + sd P) / sd P||
    "log_sigma_e": (np.log(5e-4), 1.0),
}

_SERIES_DATA = {"date": (str, "date", None),
                "columns": (STR_LIST, None, unique_nonempty),
                "units": (str, "percent", one_of("percent", "decimal")),
                "date_format": (str, None, None)}


def _factor_check(model, data):
    if model["factors"] is None:
        return "[model] factors", ("missing: list the factor columns, "
                                   'e.g. factors = ["CMKT", "TERM"]')
    return None


def _ou_check(model, data):
    if data["columns"] is not None and len(data["columns"]) != model["n"]:
        return "[data] columns", (f"{len(data['columns'])} columns for an "
                                  f"{model['n']}-dimensional OU process ([model] n = "
                                  f"{model['n']})")
    return None


def _affine_check(model, data):
    if (data["columns"] is None) != (data["maturities"] is None):
        return "[data]", ("give both 'columns' and 'maturities' (one maturity in years per "
                          "yield column), or neither")
    if data["columns"] is not None and len(data["columns"]) != len(data["maturities"]):
        return "[data] maturities", (f"{len(data['maturities'])} maturities for "
                                     f"{len(data['columns'])} columns")
    return None


_ASSETS_DATA = {"date": (str, "date", None),
                "factor_date": (str, "date", None),
                "units": (str, "decimal", one_of("decimal", "percent")),
                "factor_units": (str, "decimal", one_of("decimal", "percent")),
                "date_format": (str, None, None)}

_PRICING_MODEL = {
    "assets": (STR_LIST, None, unique_nonempty),   # test-asset columns (default: every one)
    "factors": (STR_LIST, None, unique_nonempty),  # factor columns (default: every one)
    "cross_section": (str, "ols", one_of("ols", "gls")),
    "intercept": (bool, True, None),
}

#: the SDF selection's prior keys; ``prior_sharpe`` has no default (it is the prior's scale)
SDF_PRIOR_KEYS = ("prior_sharpe", "r", "aw", "bw")


def _sdf_check(model, data):
    if model["method"] == "dirac" and model["factors"] is not None \
            and len(model["factors"]) > 20:
        return "[model] method", (f"'dirac' enumerates 2^K models and stops at K = 20; "
                                  f"{len(model['factors'])} factors are listed: use "
                                  "'continuous'")
    return None


FAMILIES: dict[str, Family] = {f.key: f for f in (
    Family(
        key="factor_regression", label="FactorModel",
        model="bayesbond.bayes.factor_model:FactorModel", inputs="panel", observed="returns",
        posterior=("alpha", "beta"),
        model_keys={
            "factors": (STR_LIST, None, unique_nonempty),
            "pooling": (str, "hierarchical", one_of("pooled", "unpooled", "hierarchical")),
            "group": (str, "rating_bucket", None),
            "errors": (str, "normal", one_of("normal", "student_t")),
            "correlated": (bool, False, None),
            "date_effects": (str, "none", one_of("none", "common", "group")),
        },
        data_keys={
            "date": (str, "date", None),
            "bond": (str, "bond", None),
            "ret": (str, "ret", None),
            "rating": (str, "rating", None),
            "weight": (str, "weight", None),
            "factor_date": (str, "date", None),
            "units": (str, "decimal", one_of("decimal", "percent")),
            "factor_units": (str, "decimal", one_of("decimal", "percent")),
            "unrated": (str, "error", one_of("error", "missing")),
            "date_format": (str, None, None),
        },
        prior_keys=lambda model: tuple(FACTOR_PRIOR_KEYS), prior_style="per_factor",
        spec_check=_factor_check),
    Family(
        key="ou", label="OUModel", model="bayesbond.bayes.ou_model:OUModel", inputs="series",
        observed="x", posterior=("kappa", "theta"),
        model_keys={
            "n": (int, 1, at_least(1)),
            "dt": (float, 1.0 / 12.0, positive),
            "restrictions": (str, "none", one_of("none", "diagonal")),
        },
        data_keys=_SERIES_DATA,
        prior_keys=lambda model: OU_PRIOR_KEYS_ND if (model or {}).get("n", 1) > 1
        else OU_PRIOR_KEYS_1D,
        spec_check=_ou_check),
    Family(
        key="affine", label="AffineModel", model="bayesbond.bayes.affine_model:AffineModel",
        inputs="series", observed="yields", posterior=("A_star", "lambda1"),
        model_keys={
            "kind": (str, "gaussian", one_of("gaussian", "efm2", "efm1", "vasicek")),
            "n_factors": (int, 3, at_least(1)),
            "dt": (float, 1.0 / 12.0, positive),
            "stationary": (bool, True, None),
        },
        data_keys={**_SERIES_DATA, "maturities": (NUM_LIST, None, increasing_positive)},
        prior_keys=lambda model: tuple(AFFINE_DEFAULT_PRIORS),
        spec_check=_affine_check),
    Family(
        key="bayes_fm", label="BayesianFamaMacBeth",
        model="bayesbond.pricing.bayes_fm:BayesianFamaMacBeth", inputs="assets",
        observed="test_assets", posterior=("lambda", "r2"),
        model_keys=_PRICING_MODEL, data_keys=_ASSETS_DATA, prior_keys=lambda model: ()),
    Family(
        key="sdf_selection", label="SDFSelection",
        model="bayesbond.pricing.sdf_selection:SDFSelection", inputs="assets",
        observed="test_assets", posterior=("gamma", "lambda", "sdf_sharpe"),
        model_keys={**_PRICING_MODEL,
                    "method": (str, "continuous", one_of("continuous", "dirac")),
                    "prob": (float, 0.9, unit_interval)},
        data_keys=_ASSETS_DATA, prior_keys=lambda model: SDF_PRIOR_KEYS,
        spec_check=_sdf_check),
)}


def get(key: str) -> Family:
    """The entry of family ``key``; a :class:`~bayesbond.errors.SpecError` names the valid ones."""
    if key not in FAMILIES:
        near = difflib.get_close_matches(str(key), list(FAMILIES), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise SpecError(f"unknown family {key!r} (one of {', '.join(FAMILIES)}){hint}")
    return FAMILIES[key]


def family_of_fit(idata) -> str | None:
    """Registry key of a fit: its ``family`` attribute, the ``family`` of its spec, the class
    named by its ``model`` attribute, or (a tree made by hand or by an older version) the family
    whose observed or posterior variables it holds; ``None`` when nothing names a family."""
    import json

    attrs = idata.attrs
    if attrs.get("family") in FAMILIES:
        return attrs["family"]
    spec = attrs.get("bayesbond_spec")
    if isinstance(spec, Mapping) and spec.get("family") in FAMILIES:
        return spec["family"]
    model = attrs.get("model")
    label = None
    if isinstance(model, str) and model.startswith("{"):
        try:
            label = json.loads(model).get("family")
        except (ValueError, AttributeError):
            label = None
    elif isinstance(model, str) and "(" in model:  # fits stored before the JSON spec
        label = model.split("(", 1)[0].strip()
    for fam in FAMILIES.values():
        if label in (fam.label, fam.key):
            return fam.key
    observed = idata["observed_data"].data_vars if "observed_data" in idata.children else ()
    post = idata["posterior"].data_vars if "posterior" in idata.children else ()
    for fam in FAMILIES.values():  # the posterior first: two families observe test_assets
        if post and all(v in post for v in fam.posterior):
            return fam.key
    for fam in FAMILIES.values():
        if fam.observed in observed:
            return fam.key
    return None

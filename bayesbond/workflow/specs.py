"""Model specifications: the TOML files in ``models/``, loaded and validated.

A spec names one model variant (family, factors or series, pooling, priors, sampler settings and the
mapping of data columns) so that ``bayesbond fit models/X.toml --data ...`` runs it. Specs are data:
they are parsed with :mod:`tomllib` only, never executed.

Schema (every table but ``family`` is optional; omitted keys take the defaults shown)::

    name = "benchmark"                # default: the file name without .toml
    description = "..."
    family = "factor_regression"      # | "ou" | "affine" | "bayes_fm" | "sdf_selection"

    [model]                           # family-specific: its registry entry's model_keys
    factors = ["CMKT", "TERM"]        # factor_regression: factor columns (checked against the data)
    pooling = "hierarchical"          #   "pooled" | "unpooled" | "hierarchical"
    group = "rating_bucket"
    errors = "normal"                 #   | "student_t"

    [priors]                          # overrides of the model's default priors (keys: the model's
    alpha_scale = 0.01                #   PRIOR_KEYS); scales and shapes must be positive
    beta_scale = [2.0, 1.0]           # per-factor keys: one number, a list in factor order,
    beta_mean = { CMKT = 1.0 }        #   or a table factor = number
    # ou / affine: a positive scale, or a pair [location, scale], e.g. kappa = [-0.7, 1.5]
    # sdf_selection: prior_sharpe (required), r, aw, bw, positive numbers; bayes_fm: none

    [sampler]
    draws = 1000
    tune = 1000
    chains = 4
    target_accept = 0.9
    seed = 1
    sampler = "nutpie"                # | "pymc" | "numpyro" | "blackjax"

    [data]                            # column names of the user's files
    date = "date"
    bond = "bond"                     # factor_regression: the long panel
    ret = "ret"
    rating = "rating"
    weight = "weight"
    units = "decimal"                 # | "percent": returns (and factor_units: factors)
    factor_units = "decimal"
    unrated = "error"                 # | "missing": NR/WR/WD/blank ratings become unrated
    date_format = "%d/%m/%Y"          # optional: how ambiguous dates like 05/01/2020 are read

Validation happens on load and raises :class:`~bayesbond.errors.SpecError` with one line naming the
file, the table and the key: unknown keys (with the nearest valid key suggested), wrong types,
values outside their domain and impossible priors (non-positive scales or shapes). Factor
and column names can only be checked against the data, which :func:`check_columns` does at fit time.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayesbond.bayes import registry
from bayesbond.errors import DataError, SpecError

__all__ = ["FAMILIES", "MODELS_DIR", "Spec", "check_columns", "load_spec", "parse_spec",
           "shipped_specs"]

FAMILIES = tuple(registry.FAMILIES)
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")

TOP_KEYS = ("name", "description", "family", "model", "priors", "sampler", "data")

# (type, default, check) per key; check returns an error text or None. The [model], [data] and
# [priors] keys of each family are its registry entry's (bayesbond.bayes.registry).
_STR_LIST = registry.STR_LIST
_NUM_LIST = registry.NUM_LIST
MODEL_KEYS = {k: f.model_keys for k, f in registry.FAMILIES.items()}
DATA_KEYS = {k: f.data_keys for k, f in registry.FAMILIES.items()}

SAMPLER_KEYS: dict[str, tuple] = {
    "draws": (int, 1000, registry.at_least(1)),
    "tune": (int, 1000, registry.at_least(0)),
    "chains": (int, 4, registry.at_least(1)),
    "target_accept": (float, 0.9, registry.unit_interval),
    "seed": (int, None, registry.at_least(0)),
    "sampler": (str, "nutpie", registry.one_of(*SAMPLERS)),
}


def _suggest(key: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return "; valid keys: " + ", ".join(valid)


def _hint(key: str, valid: Sequence[str], other_tables: Mapping[str, Sequence[str]]) -> str:
    """Where an unknown key belongs (the last other table that has it), else the nearest key."""
    homes = [t for t, keys in other_tables.items() if key in keys]
    return f"; {key!r} belongs in [{homes[-1]}]" if homes else _suggest(key, valid)


@dataclass(frozen=True)
class Spec:
    """A validated model specification (see the module docstring for the schema).

    Attributes
    ----------
    name, description, family : str
    model : dict
        Family-specific model settings, defaults filled in.
    priors : dict
        Prior overrides ``{key: number | [numbers] | {factor: number}}`` passed to the model;
        empty means the model's defaults.
    sampler : dict
        ``draws``, ``tune``, ``chains``, ``target_accept``, ``seed``, ``sampler``.
    data : dict
        Column mapping of the user's files.
    source : str
        Where the spec came from (file path or ``"<dict>"``), used in error messages.
    """

    name: str
    family: str
    description: str = ""
    model: dict = field(default_factory=dict)
    priors: dict = field(default_factory=dict)
    sampler: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    source: str = "<dict>"

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/TOML-able), the form stored in a fit's attributes."""
        out: dict[str, Any] = {"name": self.name, "family": self.family}
        if self.description:
            out["description"] = self.description
        for key in ("model", "priors", "sampler", "data"):
            out[key] = {k: v for k, v in getattr(self, key).items() if v is not None}
        return out

    def replace_sampler(self, **settings) -> Spec:
        """A copy with sampler settings replaced (validated like the file's)."""
        raw = self.to_dict()
        raw["sampler"] = {**raw["sampler"], **{k: v for k, v in settings.items() if v is not None}}
        return parse_spec(raw, source=self.source)

    def sample_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a model's ``fit`` (``draws``, ``tune``, ``chains``, ...)."""
        s = self.sampler
        return {"draws": s["draws"], "tune": s["tune"], "chains": s["chains"],
                "random_seed": s["seed"], "sampler": s["sampler"]}


def _fail(source: str, where: str, msg: str) -> SpecError:
    return SpecError(f"{source}: {where}: {msg}")


def _check_type(value, typ, source: str, where: str):
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(source, where, f"must be an integer, got {value!r}")
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(source, where, f"must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise _fail(source, where, f"must be finite, got {value!r}")
    elif typ is bool:
        if not isinstance(value, bool):
            raise _fail(source, where, f"must be true or false, got {value!r}")
    elif typ is str:
        if not isinstance(value, str):
            raise _fail(source, where, f"must be a string, got {value!r}")
    elif typ == _STR_LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(source, where, f"must be a list of strings, got {value!r}")
        value = list(value)
    elif typ == _NUM_LIST:
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise _fail(source, where, f"must be a list of numbers, got {value!r}")
        value = [float(v) for v in value]
    return value


def _table(raw, schema: Mapping[str, tuple], source: str, table: str,
           other_tables: Mapping[str, Sequence[str]]) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _fail(source, f"[{table}]", f"must be a table, got {raw!r}")
    out = {}
    for key in raw:
        if key not in schema:
            raise _fail(source, f"[{table}]",
                        f"unknown key {key!r}{_hint(key, list(schema), other_tables)}")
    for key, (typ, default, check) in schema.items():
        if key not in raw:
            out[key] = list(default) if isinstance(default, list) else default
            continue
        value = _check_type(raw[key], typ, source, f"[{table}] {key}")
        if check is not None:
            msg = check(value)
            if msg:
                raise _fail(source, f"[{table}] {key}", f"{msg}, got {raw[key]!r}")
        out[key] = value
    return out


def _number(v, source: str, at: str, positive: bool) -> float:
    v = _check_type(v, float, source, at)
    if positive and v <= 0:
        raise _fail(source, at, f"impossible prior: a scale or shape must be positive, got {v!r}")
    return v


def _numbers(v, source: str, at: str, positive: bool):
    """A number or a list of numbers (checked element by element)."""
    if isinstance(v, list):
        return [_number(x, source, f"{at}[{i}]", positive) for i, x in enumerate(v)]
    return _number(v, source, at, positive)


def _priors(raw, family: str, model: Mapping, source: str,
            other_tables: Mapping[str, Sequence[str]]) -> dict:
    """Validate prior overrides.

    Factor regressions: a number, a list (one per factor) or a table ``factor = number``; every
    value positive except for the location keys ``*_mean``. OU and affine models: a positive
    number (a scale) or a pair ``[location, scale]`` (location any finite number or list, scale
    positive), as the models' ``priors`` arguments take them.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _fail(source, "[priors]", f"must be a table, got {raw!r}")
    names = registry.get(family).prior_keys(model)
    out = {}
    for name, value in raw.items():
        where = f"[priors] {name}"
        if name not in names:
            raise _fail(source, "[priors]", f"unknown prior {name!r} for family {family!r}"
                        f"{_hint(name, names, other_tables)}")
        if registry.get(family).prior_style == "per_factor":
            positive = not name.endswith("_mean")
            if isinstance(value, Mapping):  # per factor: {CMKT = 1.0, TERM = 2.0}
                out[name] = {str(k): _number(v, source, f"{where}[{k!r}]", positive)
                             for k, v in value.items()}
            elif isinstance(value, list | int | float) and not isinstance(value, bool):
                out[name] = _numbers(value, source, where, positive)
            else:
                raise _fail(source, where, "must be a number, a list of numbers (one per "
                            f"factor) or a table factor = number, got {value!r}")
        elif isinstance(value, list) and len(value) == 2:
            out[name] = [_numbers(value[0], source, f"{where} location", False),
                         _numbers(value[1], source, f"{where} scale", True)]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = _number(value, source, where, True)
        else:
            raise _fail(source, where, "must be a positive number (a scale) or a pair "
                        f"[location, scale], got {value!r}")
    return out


def parse_spec(raw: Mapping, source: str = "<dict>", name: str | None = None) -> Spec:
    """Validate a spec given as a (TOML-parsed) mapping; see the module docstring for the schema.

    Raises
    ------
    SpecError
        One line naming ``source``, the table and the key.
    """
    if not isinstance(raw, Mapping):
        raise SpecError(f"{source}: a spec must be a table, got {type(raw).__name__}")
    tables = {"model": [k for keys in MODEL_KEYS.values() for k in keys],
              "sampler": list(SAMPLER_KEYS),
              "data": [k for keys in DATA_KEYS.values() for k in keys]}
    for key in raw:
        if key not in TOP_KEYS:
            raise _fail(source, "top level", f"unknown key {key!r}{_hint(key, TOP_KEYS, tables)}")
    if "family" not in raw:
        raise _fail(source, "top level", "missing key 'family' (one of "
                    + ", ".join(map(repr, FAMILIES)) + ")")
    family = raw["family"]
    if family not in FAMILIES:
        raise _fail(source, "family", f"unknown family {family!r}"
                    f"{_suggest(str(family), FAMILIES)}")
    spec_name = raw.get("name", name or "spec")
    if not isinstance(spec_name, str) or not spec_name:
        raise _fail(source, "name", f"must be a non-empty string, got {spec_name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _fail(source, "description", f"must be a string, got {description!r}")
    model, sampler, data = (
        _table(raw.get(t), schema, source, t, {o: k for o, k in tables.items() if o != t})
        for t, schema in (("model", MODEL_KEYS[family]), ("sampler", SAMPLER_KEYS),
                          ("data", DATA_KEYS[family])))
    priors = _priors(raw.get("priors"), family, model, source, tables)

    check = registry.get(family).spec_check
    problem = check(model, data) if check is not None else None
    if problem:
        raise _fail(source, *problem)
    return Spec(name=spec_name, family=family, description=description, model=model,
                priors=priors, sampler=sampler, data=data, source=source)


def shipped_specs() -> dict[str, Path]:
    """The specs shipped in ``models/``: ``{name: path}`` (name = file name without ``.toml``)."""
    if not MODELS_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.toml"))}


def load_spec(path_or_name) -> Spec:
    """Read and validate a spec from a TOML file, or a shipped spec by name (e.g. ``"benchmark"``).

    Raises
    ------
    SpecError
        The file is missing or not valid TOML (with line and column), or the spec is invalid.
    """
    path = Path(path_or_name)
    if not path.exists() and path.suffix == "" and str(path_or_name) in shipped_specs():
        path = shipped_specs()[str(path_or_name)]
    if not path.is_file():
        shipped = ", ".join(shipped_specs()) or "none"
        raise SpecError(f"{path}: spec file not found (shipped specs: {shipped})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    return parse_spec(raw, source=str(path), name=path.stem)


def check_columns(spec: Spec, columns: Sequence[str], file: str = "the data",
                  factor_columns: Sequence[str] | None = None,
                  factor_file: str = "the factors") -> None:
    """Check at fit time that the columns a spec names exist in the data.

    Parameters
    ----------
    spec : Spec
    columns : sequence of str
        Columns of the data file (panel for factor regressions, series/yields otherwise).
    file : str
        Name of that file, for the message.
    factor_columns : sequence of str, optional
        Columns of the factor file, when the factors come from one.
    factor_file : str

    Raises
    ------
    DataError
        Naming the missing column, the file and the spec key that names it.
    """
    cols = [str(c) for c in columns]
    d = spec.data

    def missing(name, have, where, fname, key):
        if name not in have:
            near = difflib.get_close_matches(name, have, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (columns: {', '.join(have)})"
            raise DataError(f"{fname}: column {name!r} named by {spec.source} {where} {key} "
                            f"is missing{hint}")

    if spec.family == "factor_regression":
        for key in ("date", "bond", "ret"):
            missing(d[key], cols, "[data]", file, key)
        fcols = cols if factor_columns is None else [str(c) for c in factor_columns]
        fname = file if factor_columns is None else factor_file
        if factor_columns is not None:
            missing(d["factor_date"], fcols, "[data]", fname, "factor_date")
        for f in spec.model["factors"]:
            if f not in fcols:
                near = difflib.get_close_matches(f, fcols, n=1, cutoff=0.6)
                hint = (f"; did you mean {near[0]!r}?" if near
                        else f"; factor columns: {', '.join(fcols)}")
                raise DataError(f"{fname}: unknown factor {f!r} named by {spec.source} "
                                f"[model] factors{hint}")
    elif registry.get(spec.family).inputs == "assets":
        missing(d["date"], cols, "[data]", file, "date")
        for c in spec.model["assets"] or []:
            missing(c, cols, "[model]", file, "assets")
        if factor_columns is not None:
            fcols = [str(c) for c in factor_columns]
            missing(d["factor_date"], fcols, "[data]", factor_file, "factor_date")
            for c in spec.model["factors"] or []:
                missing(c, fcols, "[model]", factor_file, "factors")
    else:
        missing(d["date"], cols, "[data]", file, "date")
        for c in d["columns"] or []:
            missing(c, cols, "[data]", file, "columns")

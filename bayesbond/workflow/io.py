"""Lossless storage of fits: :func:`save` and :func:`load` for ``xarray.DataTree``.

The format follows the file suffix: ``.nc`` is netCDF-4 written with the ``h5netcdf`` engine,
``.zarr`` is a zarr store (a folder). Nothing is pickled: values go in as typed arrays and every
attribute that netCDF cannot hold natively is stored as tagged JSON text.

What survives exactly, in both formats: every group of the tree (in order), variable values (NaN
included), dims, coordinates with their dtypes (strings, ``object`` arrays of strings or of mixed
values, datetimes of any unit, booleans, unsigned integers), and attributes of the tree, its groups
and its variables with their Python types (``str``, ``int``, ``float``, ``bool``, ``None``, lists,
tuples, nested dicts, numpy scalars and arrays, timestamps).

Writes are atomic: the tree goes to a temporary file (or folder) next to the target, which is
renamed into place only once complete, so an interrupted write leaves any earlier file untouched
and no partial file behind. An existing file is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.errors import DataError

__all__ = ["save", "load", "hash_data", "SUFFIXES"]

SUFFIXES = (".nc", ".zarr")

# attribute values that are not plain strings are stored as this prefix + JSON
_JSON_PREFIX = "__bayesbond_json__:"
# variable attribute holding the in-memory dtype of a variable whose dtype the file format changes
_DTYPE_ATTR = "_bayesbond_dtype"
# ``_DTYPE_ATTR`` value for object arrays whose elements are stored one JSON text each
_JSON_ELEMENTS = "json-elements"
_TAG = "__bayesbond_type__"
# root attribute holding the order of the groups (zarr lists them alphabetically)
_ORDER_ATTR = "_bayesbond_group_order"


# --------------------------------------------------------------------------------------- attributes
def _to_jsonable(value, where: str):
    """Tagged JSON form of an attribute value; raises TypeError for types that need pickling."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64 | np.timedelta64):
            return {_TAG: "np.scalar", "dtype": value.dtype.str, "value": str(value)}
        return {_TAG: "np.scalar", "dtype": value.dtype.str, "value": value.item()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OMm":
            items = [_to_jsonable(v, where) for v in value.ravel().tolist()]
            if value.dtype.kind in "Mm":
                items = [str(v) for v in value.ravel()]
        else:
            items = value.ravel().tolist()
        return {_TAG: "ndarray", "dtype": value.dtype.str if value.dtype.kind != "O" else "object",
                "shape": list(value.shape), "values": items}
    if isinstance(value, pd.Timestamp):
        return {_TAG: "pd.Timestamp", "value": value.isoformat(), "unit": value.unit}
    if isinstance(value, _dt.datetime):
        return {_TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, _dt.date):
        return {_TAG: "date", "value": value.isoformat()}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "values": [_to_jsonable(v, where) for v in value]}
    if isinstance(value, list):
        return [_to_jsonable(v, where) for v in value]
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"attribute {where}: dict key {bad[0]!r} is not a string; "
                            "only string keys can be stored without pickling")
        out = {k: _to_jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
        if _TAG in out:  # a user dict that happens to use the tag key: wrap it
            return {_TAG: "dict", "values": out}
        return out
    raise TypeError(f"attribute {where} has type {type(value).__name__}, which cannot be stored "
                    "without pickling; convert it to str, a number, a list or a dict first")


def _from_jsonable(value):
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(_TAG)
    if kind is None:
        return {k: _from_jsonable(v) for k, v in value.items()}
    if kind == "dict":
        return {k: _from_jsonable(v) for k, v in value["values"].items()}
    if kind == "tuple":
        return tuple(_from_jsonable(v) for v in value["values"])
    if kind == "np.scalar":
        dtype = np.dtype(value["dtype"])
        if dtype.kind in "Mm":
            return dtype.type(value["value"], np.datetime_data(dtype)[0])
        return dtype.type(value["value"])
    if kind == "ndarray":
        shape = tuple(value["shape"])
        if value["dtype"] == "object":
            arr = np.empty(len(value["values"]), dtype=object)
            arr[:] = [_from_jsonable(v) for v in value["values"]]
            return arr.reshape(shape)
        return np.array(value["values"], dtype=np.dtype(value["dtype"])).reshape(shape)
    if kind == "pd.Timestamp":
        return pd.Timestamp(value["value"]).as_unit(value["unit"])
    if kind == "datetime":
        return _dt.datetime.fromisoformat(value["value"])
    if kind == "date":
        return _dt.date.fromisoformat(value["value"])
    raise ValueError(f"unknown stored attribute type {kind!r}")


def _encode_attrs(attrs: Mapping, where: str) -> dict:
    out = {}
    for key, value in attrs.items():
        if not isinstance(key, str):
            raise TypeError(f"attribute name {key!r} of {where} is not a string")
        if isinstance(value, str) and not value.startswith(_JSON_PREFIX):
            out[key] = value
        else:
            out[key] = _JSON_PREFIX + json.dumps(_to_jsonable(value, f"{key!r} of {where}"))
    return out


def _decode_attrs(attrs: Mapping) -> dict:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, str) and value.startswith(_JSON_PREFIX):
            value = _from_jsonable(json.loads(value[len(_JSON_PREFIX):]))
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------- variables
def _encode_variable(var: xr.Variable, where: str) -> xr.Variable:
    attrs = _encode_attrs(var.attrs, where)
    if _DTYPE_ATTR in var.attrs:
        raise ValueError(f"{where} uses the reserved attribute name {_DTYPE_ATTR!r}")
    data = var.values
    kind = data.dtype.kind
    if kind == "O":
        flat = data.ravel()
        if all(isinstance(v, str) for v in flat):
            attrs[_DTYPE_ATTR] = "object"
            data = np.array(flat.tolist(), dtype=str).reshape(data.shape) if flat.size else (
                np.zeros(data.shape, dtype="<U1"))
        else:
            try:
                texts = [json.dumps(_to_jsonable(v, where)) for v in flat]
            except TypeError as exc:
                raise TypeError(f"{where}: object array element cannot be stored without "
                                f"pickling ({exc})") from None
            attrs[_DTYPE_ATTR] = _JSON_ELEMENTS
            data = np.array(texts, dtype=str).reshape(data.shape) if flat.size else (
                np.zeros(data.shape, dtype="<U1"))
    elif kind in "UMmS":
        attrs[_DTYPE_ATTR] = data.dtype.str
    elif kind == "T":  # numpy StringDType
        attrs[_DTYPE_ATTR] = "StringDType"
        data = data.astype(str)
    return xr.Variable(var.dims, data, attrs=attrs)


def _decode_variable(var: xr.Variable) -> xr.Variable:
    attrs = _decode_attrs(var.attrs)
    stored = attrs.pop(_DTYPE_ATTR, None)
    data = var.values
    if stored in (_JSON_ELEMENTS, "object"):  # back to an object array, element by element
        flat = [_from_jsonable(json.loads(str(t))) if stored == _JSON_ELEMENTS else str(t)
                for t in data.ravel()]
        data = np.empty(len(flat), dtype=object)
        data[:] = flat
        data = data.reshape(var.shape)
    elif stored == "StringDType":
        data = data.astype(np.dtypes.StringDType())
    elif stored is not None:
        data = data.astype(np.dtype(stored))
    return xr.Variable(var.dims, data, attrs=attrs)


def _map_dataset(ds: xr.Dataset, fn, path: str) -> xr.Dataset:
    coords = {name: fn(ds.variables[name], f"coordinate {name!r} of {path}") for name in ds.coords}
    data_vars = {name: fn(ds.variables[name], f"variable {name!r} of {path}")
                 for name in ds.data_vars}
    return xr.Dataset(data_vars, coords=coords)


def _encode_tree(tree: xr.DataTree) -> xr.DataTree:
    nodes = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        enc = _map_dataset(ds, lambda v, w: _encode_variable(v, w), node.path)
        enc.attrs = _encode_attrs(ds.attrs, f"group {node.path}")
        nodes[node.path] = enc
    if _ORDER_ATTR in tree.attrs:
        raise ValueError(f"the tree uses the reserved attribute name {_ORDER_ATTR!r}")
    nodes["/"].attrs[_ORDER_ATTR] = _JSON_PREFIX + json.dumps(list(nodes))
    return xr.DataTree.from_dict(nodes, name=tree.name)


def _decode_tree(tree: xr.DataTree) -> xr.DataTree:
    nodes = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        dec = _map_dataset(ds, lambda v, w: _decode_variable(v), node.path)
        dec.attrs = _decode_attrs(ds.attrs)
        nodes[node.path] = dec
    order = nodes["/"].attrs.pop(_ORDER_ATTR, None) or []
    rank = {p: i for i, p in enumerate(order)}
    nodes = dict(sorted(nodes.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    return xr.DataTree.from_dict(nodes, name=tree.name)


# ----------------------------------------------------------------------------------- provenance
def hash_data(*objects) -> str:
    """SHA-256 hex digest of the input data of a fit, for the ``bayesbond_data_hash`` attribute.

    Parameters
    ----------
    *objects : path-like, pandas.DataFrame/Series, xarray.DataArray/Dataset, numpy array or bytes
        Files are hashed byte for byte; tables and arrays through their labels and values (the same
        numbers with the same labels give the same hash whatever their memory layout).

    Returns
    -------
    str
        ``"sha256:<64 hex digits>"``.
    """
    h = hashlib.sha256()
    for obj in objects:
        if isinstance(obj, str | os.PathLike):
            h.update(b"file")
            with open(obj, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        elif isinstance(obj, bytes):
            h.update(b"bytes" + obj)
        elif isinstance(obj, pd.Series | pd.DataFrame):
            frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
            h.update(b"frame" + frame.to_csv(float_format="%.17g").encode())
        elif isinstance(obj, xr.DataArray | xr.Dataset):
            ds = obj.to_dataset(name=obj.name or "_") if isinstance(obj, xr.DataArray) else obj
            for name in sorted(map(str, ds.variables)):
                v = ds.variables[name]
                h.update(f"{name}{v.dims}{v.dtype.str}".encode())
                h.update(_array_bytes(v.values))
        elif isinstance(obj, np.ndarray):
            h.update(_array_bytes(obj))
        else:
            raise TypeError(f"cannot hash data of type {type(obj).__name__}")
    return "sha256:" + h.hexdigest()


def _array_bytes(a: np.ndarray) -> bytes:
    if a.dtype.kind in "OUT":
        return json.dumps([str(v) for v in a.ravel()]).encode()
    return repr(a.shape).encode() + np.ascontiguousarray(a).tobytes()


def _spec_dict(spec):
    if spec is None:
        return None
    if hasattr(spec, "to_dict"):
        return spec.to_dict()
    if isinstance(spec, Mapping):
        return dict(spec)
    if isinstance(spec, str | os.PathLike):
        return str(spec)
    raise TypeError(f"spec must be a Spec, a dict or a path, not {type(spec).__name__}")


# ----------------------------------------------------------------------------------------- writing
def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown file type {path.suffix!r}; use .nc (netCDF) or .zarr")
    return suffix


def _write_netcdf(tree: xr.DataTree, target: Path) -> None:
    tree.to_netcdf(target, engine="h5netcdf")


def _write_zarr(tree: xr.DataTree, target: Path) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        tree.to_zarr(target, mode="w-", consolidated=True)


_WRITERS = {".nc": _write_netcdf, ".zarr": _write_zarr}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def save(idata: xr.DataTree, path, overwrite: bool = False, spec=None,
         data_hash: str | None = None) -> Path:
    """Write a fit to ``path`` (netCDF ``.nc`` or zarr ``.zarr``), losslessly and atomically.

    Parameters
    ----------
    idata : xarray.DataTree
        A fit (ArviZ schema) or any tree.
    path : path-like
        Target; the suffix picks the format.
    overwrite : bool, default False
        Replace an existing file. Without it an existing target raises :class:`FileExistsError`.
    spec : Spec, dict or path, optional
        Model specification, stored in the root attribute ``bayesbond_spec`` (a dict after loading).
    data_hash : str, optional
        Hash of the input data (see :func:`hash_data`), stored in ``bayesbond_data_hash``.

    Returns
    -------
    pathlib.Path
        The path written.

    Notes
    -----
    The root attribute ``bayesbond_version`` records the library version that produced the fit (kept
    when the tree already has one, as every ``Model.fit`` output does). The tree is first written to
    a hidden temporary sibling ``.<name>.<random>.tmp<suffix>`` and then renamed into place
    (``os.replace``/``os.rename`` are atomic within one file system), so readers never see a partial
    file and a failed write leaves the previous file as it was.
    """
    import bayesbond

    if not isinstance(idata, xr.DataTree):
        raise TypeError(f"save expects an xarray.DataTree, not {type(idata).__name__}")
    path = Path(path)
    suffix = _suffix(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) "
                              "to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")

    tree = idata.copy(deep=False)
    tree.attrs = dict(idata.attrs)
    tree.attrs.setdefault("bayesbond_version", bayesbond.__version__)
    spec_value = _spec_dict(spec)
    if spec_value is not None:
        tree.attrs["bayesbond_spec"] = spec_value
    if data_hash is not None:
        tree.attrs["bayesbond_data_hash"] = str(data_hash)
    encoded = _encode_tree(tree)

    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{suffix}"
    backup = None
    try:
        _WRITERS[suffix](encoded, tmp)
        if path.exists():
            if not overwrite:  # appeared while we were writing
                raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
            if path.is_dir() and not path.is_symlink():
                # a folder cannot be replaced in one step: move the old one aside first
                backup = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.old{suffix}"
                os.rename(path, backup)
        if overwrite:
            os.replace(tmp, path)
        elif suffix == ".nc":
            os.link(tmp, path)  # fails if the target appeared meanwhile: never clobbers
            tmp.unlink()
        else:
            os.rename(tmp, path)
    except BaseException:
        _remove(tmp)
        if backup is not None and not path.exists():
            os.rename(backup, path)
            backup = None
        raise
    if backup is not None:
        _remove(backup)
    return path


def load(path) -> xr.DataTree:
    """Read a tree written by :func:`save` (suffix ``.nc`` or ``.zarr``) fully into memory.

    Returns
    -------
    xarray.DataTree
        Identical to the tree that was saved (``xarray.testing.assert_identical``, dtypes included),
        plus the provenance attributes ``bayesbond_version`` and, when given, ``bayesbond_spec`` and
        ``bayesbond_data_hash``. The file is closed on return.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataError
        The file cannot be read (corrupt, truncated, not netCDF-4/zarr): the message names it.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        try:
            if suffix == ".nc":
                raw = xr.load_datatree(path, engine="h5netcdf")
            else:
                raw = xr.load_datatree(path, engine="zarr")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # h5py's "Unable to synchronously open file (truncated file ...)" names no file
            detail = " ".join(str(exc).split()) or type(exc).__name__
            kind = "netCDF-4 (HDF5)" if suffix == ".nc" else "zarr"
            raise DataError(
                f"{path}: cannot be read as a {kind} fit: the file is corrupt or truncated "
                f"(e.g. an interrupted copy) or is not a bayesbond fit ({type(exc).__name__}: "
                f"{detail}); write it again with bb.save or `bayesbond fit`") from exc
    return _decode_tree(raw)

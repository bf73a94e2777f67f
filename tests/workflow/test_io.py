"""save/load: exact round trips (netCDF, zarr), atomic writes, no silent overwrite, provenance."""

import datetime as dt
import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesbond
from bayesbond.workflow import io

SUFFIXES = [".nc", ".zarr"]


def assert_exact(a: xr.DataTree, b: xr.DataTree) -> None:
    """assert_identical plus equal dtypes and attribute types (which assert_identical ignores)."""
    xr.testing.assert_identical(a, b)
    for na, nb in zip(a.subtree, b.subtree, strict=True):
        assert na.path == nb.path
        assert _typed(na.attrs) == _typed(nb.attrs), na.path
        for name, var in na.to_dataset(inherit=False).variables.items():
            other = nb.to_dataset(inherit=False).variables[name]
            assert var.dtype == other.dtype, (na.path, name, var.dtype, other.dtype)
            assert _typed(var.attrs) == _typed(other.attrs), (na.path, name)


def _typed(value):
    """A comparable rendering that keeps Python/numpy types (so 1 != 1.0 != np.int64(1))."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_typed(v) for v in value])
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, repr(value.tolist()))
    if isinstance(value, float) and np.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, repr(value))


@pytest.fixture(scope="module")
def sampled_tree():
    """A real PyMC/nutpie fit with string and datetime coords, log-likelihood and sample stats."""
    pm = pytest.importorskip("pymc")
    dates = pd.date_range("2001-01-31", periods=6, freq="ME")
    bonds = ["912828AB", "38259PAB", "XS0001"]
    y = np.random.default_rng(0).normal(size=(6, 3))
    with pm.Model(coords={"bond": bonds, "date": dates}):
        mu = pm.Normal("mu", dims="bond")
        sigma = pm.HalfNormal("sigma")
        pm.Normal("ret", mu, sigma, observed=y, dims=("date", "bond"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = pm.sample(draws=30, tune=30, chains=2, random_seed=1, progressbar=False,
                             idata_kwargs={"log_likelihood": True})
    tree.attrs["model"] = "toy"
    tree.attrs["bayesbond_version"] = bayesbond.__version__
    return tree


def synthetic_tree() -> xr.DataTree:
    rng = np.random.default_rng(3)
    dates = pd.DatetimeIndex(["2000-01-31 00:00:00.000001", "2000-02-29 12:30:00.5",
                              "2000-03-31"]).as_unit("us")
    x = rng.normal(size=(2, 4, 3))
    x[0, 1, 2] = np.nan
    post = xr.Dataset(
        {
            "beta": (("chain", "draw", "bond"), x, {"units": "decimal", "level": 0.94,
                                                    "n": 3, "flag": True, "none": None}),
            "count": (("bond",), np.array([1, 2, 3], dtype=np.uint64)),
            "ok": (("date",), np.array([True, False, True])),
            "note": (("date",), np.array(["é", None, "x"], dtype=object)),
            "when": (("bond",), np.array(["2020-01-01", "NaT", "1999-12-31T23:59:59"],
                                         dtype="datetime64[ns]")),
            "gap": (("bond",), np.array([1, 2, 3], dtype="timedelta64[D]")),
            "f32": (("date",), np.array([1.5, np.inf, -np.inf], dtype=np.float32)),
        },
        coords={
            "chain": [0, 1], "draw": np.arange(4),
            "bond": np.array(["AAA1", "ß-2", "C"], dtype=object),
            "date": dates,
            "label": ("bond", np.array(["a", "bb", "ccc"])),
        },
        attrs={
            "nested": {"a": [1, 2.5, None], "b": {"c": "d", "t": (1, "x")}},
            "arr": np.arange(3, dtype=np.int16),
            "scalar": np.float32(1.25),
            "ts": pd.Timestamp("2020-05-31"),
            "day": dt.date(2020, 1, 2),
            "nan": float("nan"),
            "lst": ["chain", "draw"],
            "looks_tagged": io._JSON_PREFIX + "not json",
            "empty": "",
        },
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 4), bool))},
                       coords={"chain": [0, 1], "draw": np.arange(4)})
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats,
                                  "extra/inner": xr.Dataset({"z": ("k", [1.0, 2.0])})})
    tree.attrs = {"model": "synthetic", "bayesbond_version": bayesbond.__version__, "i": 7}
    return tree


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_synthetic_round_trip_is_exact(tmp_path, suffix):
    tree = synthetic_tree()
    path = io.save(tree, tmp_path / f"fit{suffix}")
    back = io.load(path)
    assert_exact(tree, back)
    assert pd.isna(back["posterior"]["note"].values[1])
    assert back["posterior"].attrs["nested"]["b"]["t"] == (1, "x")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_sampled_round_trip_is_exact(tmp_path, sampled_tree, suffix):
    path = io.save(sampled_tree, tmp_path / f"fit{suffix}")
    back = io.load(path)
    assert_exact(sampled_tree, back)
    # a loaded tree saves again (to the other format too) and is still identical
    other = ".zarr" if suffix == ".nc" else ".nc"
    again = io.load(io.save(back, tmp_path / f"again{other}"))
    assert_exact(sampled_tree, again)


def test_provenance_attrs(tmp_path, sampled_tree):
    df = pd.DataFrame({"a": [1.0, 2.0]})
    h = io.hash_data(df)
    spec = {"family": "factor_regression", "factors": ["CMKT", "TERM"], "sampler": {"draws": 10}}
    back = io.load(io.save(sampled_tree, tmp_path / "f.nc", spec=spec, data_hash=h))
    assert back.attrs["bayesbond_spec"] == spec
    assert back.attrs["bayesbond_data_hash"] == h
    assert back.attrs["bayesbond_version"] == bayesbond.__version__
    # the caller's tree is not modified
    assert "bayesbond_spec" not in sampled_tree.attrs
    # a tree without a version gets the current one
    bare = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": ("x", [1.0])})})
    assert io.load(io.save(bare, tmp_path / "b.nc")).attrs["bayesbond_version"] == \
        bayesbond.__version__


def test_hash_data_depends_on_values_and_labels(tmp_path):
    a = pd.DataFrame({"x": [1.0, 2.0]}, index=["p", "q"])
    assert io.hash_data(a) == io.hash_data(a.copy())
    assert io.hash_data(a) != io.hash_data(a.rename(index={"q": "r"}))
    b = a.copy()
    b.iloc[1, 0] = 2.0000000000000004
    assert io.hash_data(a) != io.hash_data(b)
    f = tmp_path / "d.csv"
    f.write_text("a,b\n1,2\n")
    assert io.hash_data(f) == io.hash_data(str(f))
    g = tmp_path / "e.csv"
    g.write_text("a,b\n1,3\n")
    assert io.hash_data(f) != io.hash_data(g)
    assert io.hash_data(f).startswith("sha256:") and len(io.hash_data(f)) == 7 + 64


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_no_silent_overwrite(tmp_path, suffix):
    tree = synthetic_tree()
    path = io.save(tree, tmp_path / f"fit{suffix}")
    changed = tree.copy()
    changed.attrs["model"] = "changed"
    with pytest.raises(FileExistsError, match="overwrite"):
        io.save(changed, path)
    assert io.load(path).attrs["model"] == "synthetic"
    io.save(changed, path, overwrite=True)
    assert io.load(path).attrs["model"] == "changed"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"fit{suffix}"]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_interrupted_write_leaves_old_file(tmp_path, monkeypatch, suffix):
    tree = synthetic_tree()
    path = io.save(tree, tmp_path / f"fit{suffix}")
    before = sorted(p.name for p in tmp_path.iterdir())
    real = io._WRITERS[suffix]

    def crashing(t, target):
        real(t, target)  # the temporary file is fully there ...
        assert os.path.exists(target)
        raise KeyboardInterrupt("killed mid-save")  # ... and then the process is interrupted

    monkeypatch.setitem(io._WRITERS, suffix, crashing)
    changed = tree.copy()
    changed.attrs["model"] = "changed"
    with pytest.raises(KeyboardInterrupt):
        io.save(changed, path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temp left
    assert_exact(tree, io.load(path))
    # a new target that fails midway leaves nothing at all
    with pytest.raises(KeyboardInterrupt):
        io.save(changed, tmp_path / f"new{suffix}")
    assert not (tmp_path / f"new{suffix}").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_paths_and_unpicklable_attrs(tmp_path):
    tree = synthetic_tree()
    with pytest.raises(ValueError, match=r"\.pkl.*\.nc.*\.zarr"):
        io.save(tree, tmp_path / "fit.pkl")
    with pytest.raises(FileNotFoundError, match="missing"):
        io.load(tmp_path / "missing.nc")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.save(tree, tmp_path / "no" / "dir" / "fit.nc")
    bad = tree.copy()
    bad.attrs["obj"] = object()
    with pytest.raises(TypeError, match="'obj'.*pickling"):
        io.save(bad, tmp_path / "fit.nc")
    assert list(tmp_path.iterdir()) == []


def test_files_hold_no_pickle(tmp_path):
    tree = synthetic_tree()
    path = io.save(tree, tmp_path / "fit.zarr")
    meta = [p for p in path.rglob("zarr.json")]
    assert meta
    for m in meta:
        json.loads(m.read_text())  # plain JSON metadata
    raw = (io.save(tree, tmp_path / "fit.nc")).read_bytes()
    assert b"\x80\x04\x95" not in raw and b"\x80\x05\x95" not in raw  # pickle protocol 4/5 frames


@pytest.mark.parametrize("cut", [0.5, 0.0])
def test_corrupt_or_truncated_file_names_itself(tmp_path, cut):
    """bb.load of a truncated or empty .nc: DataError naming the file and the fix (was h5py's
    OSError 'Unable to synchronously open file (truncated file ...)' without the name)."""
    from bayesbond.errors import DataError

    good = tmp_path / "good.nc"
    io.save(xr.DataTree.from_dict({"posterior": xr.Dataset({"x": (("chain", "draw"),
                                                                   np.zeros((2, 50)))})}), good)
    raw = good.read_bytes()
    bad = tmp_path / "bad.nc"
    bad.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(DataError, match=r"bad\.nc: cannot be read as a netCDF-4 \(HDF5\) fit: "
                                        r"the file is corrupt or truncated.*bb\.save"):
        io.load(bad)

"""One input coercion (bayesbond.data.coerce) for bb.ols, FactorModel, the readers and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesbond as bb
from bayesbond.cli import load_factor_inputs
from bayesbond.data.coerce import MISSING_MARKERS, listing, to_month_end
from bayesbond.errors import DataError
from bayesbond.workflow.specs import load_spec


def _first_of_month(T=36, B=4, seed=0):
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2000-01-01", periods=T, freq="MS")  # first of each month
    F = pd.DataFrame(rng.normal(0.004, 0.02, (T, 2)), index=dates, columns=["CMKT", "TERM"])
    R = pd.DataFrame(0.8 * F[["CMKT"]].to_numpy() + rng.normal(0, 0.01, (T, B)), index=dates,
                     columns=[f"b{i}" for i in range(B)])
    return R, F


def test_first_of_month_dates_are_month_ends_in_ols_and_factor_model():
    R, F = _first_of_month()
    res = bb.ols(R, F)
    data, _ = bb.FactorModel(["CMKT", "TERM"], pooling="unpooled").prepare(R, F)
    assert res.resid.index[0] == pd.Timestamp("2000-01-31")
    pd.testing.assert_index_equal(pd.DatetimeIndex(data.dates), pd.DatetimeIndex(res.resid.index))
    assert data.dates.name == "date"


def test_a_series_is_one_bond_in_ols_and_factor_model():
    R, F = _first_of_month()
    s = R["b1"]
    res = bb.ols(s, F["CMKT"])  # a factor Series is one factor too
    assert list(res.params.index) == ["b1"] and res.factor_names == ["CMKT"]
    data, _ = bb.FactorModel(["CMKT"], pooling="unpooled").prepare(s, F["CMKT"])
    assert list(data.bonds) == ["b1"] and data.factors == ["CMKT"]
    np.testing.assert_array_equal(data.y[:, 0], s.to_numpy())
    np.testing.assert_allclose(res.params.loc["b1", "CMKT"],
                               bb.ols(R[["b1"]], F[["CMKT"]]).params.loc["b1", "CMKT"])


def test_a_dot_for_missing_reads_the_same_in_the_readers_and_the_cli(tmp_path):
    sim = bb.datasets.simulate_panel(n_bonds=6, n_dates=24, seed=2)
    sim.panel.to_frame().to_csv(tmp_path / "panel.csv", index=False)
    F = sim.factors.rename_axis("date").reset_index()
    F["date"] = F["date"].dt.strftime("%Y-%m-%d")
    extra = pd.DataFrame({"date": ["2003-01-31"], "CMKT": ["."], "TERM": ["."]})
    before = F.iloc[[0]].assign(date="2004-12-31", TERM=".")  # a month before the returns
    pd.concat([before, F, extra]).to_csv(tmp_path / "factors.csv", index=False)
    assert "." in MISSING_MARKERS
    lib = bb.readers.read_factors(tmp_path / "factors.csv")
    spec = load_spec("hierarchical")
    panel, cli = load_factor_inputs(spec, tmp_path / "panel.csv", tmp_path / "factors.csv")
    cols = ["CMKT", "TERM"]
    pd.testing.assert_frame_equal(cli[cols], lib[cols], check_names=False)
    assert np.isnan(cli.loc["2004-12-31", "TERM"]) and np.isnan(cli.loc["2003-01-31", "CMKT"])
    bb.FactorModel(cols, pooling="unpooled").prepare(panel, cli)  # unused months may be missing
    # on a month with returns a missing factor is refused, naming the line of the file
    F = F.astype({"TERM": object})
    F.loc[3, "TERM"] = "."
    F.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad\.csv: column 'TERM' has a missing value .* at "
                                        r"line 5 \(date 2005-04-30\)"):
        load_factor_inputs(spec, tmp_path / "panel.csv", tmp_path / "bad.csv")


def test_listing():
    assert listing(["a", "b"]) == "a, b"
    assert listing(range(12)) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... (12 in all)"
    assert listing(range(3), n=2, sep="; ") == "0; 1; ... (3 in all)"
    assert listing([pd.Timestamp("2000-01-31"), pd.Timestamp("2000-02-29 12:00")]) == (
        "2000-01-31, 2000-02-29T12:00:00")


def test_to_month_end():
    want = pd.DatetimeIndex(["2000-01-31", "2000-02-29"], name="date").as_unit("ns")
    for idx in (pd.DatetimeIndex(["2000-01-01", "2000-02-15"]), pd.Index(["2000-01", "2000-02"]),
                pd.period_range("2000-01", periods=2, freq="M"), pd.Index([200001, 200002]),
                want):
        pd.testing.assert_index_equal(to_month_end(idx), want)
    with pytest.raises(DataError, match="row 1: 'x'"):
        to_month_end(pd.Index(["2000-01", "x"]))

"""LOO comparison: ranks the data-generating model first, equals arviz_stats.compare, warns on k."""

import warnings

import arviz_stats as azs
import numpy as np
import pytest

from bayesbond.errors import SpecError
from bayesbond.workflow.compare import compare
from bayesbond.workflow.loglik import add_log_likelihood
from tests.workflow.test_loglik import conjugate_fit, simulate


@pytest.fixture(scope="module")
def fits():
    y, F = simulate(T=80, B=10, seed=3)
    two = conjugate_fit(y, F, ["CMKT", "TERM"], seed=1)
    one = conjugate_fit(y, F[:, :1], ["CMKT"], seed=2)
    return y, F, two, one


def test_true_model_ranks_first_and_table_equals_arviz(fits):
    _, _, two, one = fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare({"CMKT+TERM": two, "CMKT": one})
    assert list(table.index) == ["CMKT+TERM", "CMKT"]
    assert abs(table.loc["CMKT", "elpd_diff"]) > 2 * table.loc["CMKT", "dse"]
    full = {}
    for name, t in (("CMKT+TERM", two), ("CMKT", one)):
        c = t.copy()
        add_log_likelihood(c)
        full[name] = c
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = azs.compare(full)
    for col in ("elpd", "p", "elpd_diff", "se", "dse", "weight"):
        np.testing.assert_allclose(table[col].astype(float), ref[col].astype(float), rtol=1e-8)
    for name, t in full.items():
        e = azs.loo(t, pointwise=True, var_name="returns")
        assert table.loc[name, "n_high_k"] == int((e.pareto_k > e.good_k).sum())


def test_high_pareto_k_is_warned_not_hidden(fits):
    y, F, two, one = fits
    y2 = y.copy()
    y2[np.isfinite(y2[:, 0]).nonzero()[0][0], 0] += 1.0  # a 100-sigma outlier
    bad = conjugate_fit(y2, F, ["CMKT", "TERM"], seed=4)
    good = conjugate_fit(y2, F[:, :1], ["CMKT"], seed=5)
    with pytest.warns(UserWarning, match="model 'outlier': Pareto k"):
        table = compare({"outlier": bad, "other": good})
    assert table.loc["outlier", "n_high_k"] >= 1


def test_compare_errors(fits):
    y, F, two, _ = fits
    with pytest.raises(SpecError, match="at least two"):
        compare({"a": two})
    other = conjugate_fit(y[:, :5], F, ["CMKT", "TERM"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SpecError, match="different"):
            compare({"a": two, "b": other})


def test_subsample_method_is_refused_with_a_clear_error():
    with pytest.raises(SpecError, match="subsample"):
        compare({"a": None, "b": None}, method="subsample")

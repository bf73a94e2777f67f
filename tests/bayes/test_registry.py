"""Every registered family implements the model contract and matches its registry entry."""

import pytest

from bayesbond.bayes import registry
from bayesbond.bayes.base import BayesianModel
from bayesbond.errors import SpecError

CONTRACT = ("spec", "prepare", "build", "data_groups", "pointwise_loglik", "loglik_size",
            "from_spec")


@pytest.mark.parametrize("key", list(registry.FAMILIES))
def test_family_implements_the_contract(key):
    entry = registry.FAMILIES[key]
    cls = entry.load()
    assert issubclass(cls, BayesianModel) and cls.__name__ == entry.label
    assert cls.family == key and cls.loglik_var == entry.observed
    assert cls.prepared_type is not type(None)
    for name in CONTRACT:
        assert getattr(cls, name) is not getattr(BayesianModel, name, None), (key, name)
    assert entry.inputs in ("panel", "series", "assets")
    keys = entry.prior_keys({})
    # the Bayesian Fama-MacBeth alone has no prior to set (Jeffreys on the moments)
    assert (keys or key == "bayes_fm") and all(isinstance(k, str) for k in keys)


def test_unknown_family_names_the_valid_ones():
    with pytest.raises(SpecError, match="unknown family 'factor_regresion'.*did you mean "
                                        "'factor_regression'"):
        registry.get("factor_regresion")

"""Which factors price corporate bonds: cross-sectional asset pricing.

``bb.pricing.fama_macbeth`` (two-pass, OLS/GLS cross-sections, Shanken and Newey-West errors) and
``bb.pricing.sdf_gmm`` (SDF risk prices) and ``bb.pricing.premia_gmm`` (efficient GMM of the beta
representation) are the frequentist baselines; ``bayesian_fama_macbeth``,
``bayesian_spanning`` and ``select_factors`` (spike-and-slab SDF selection, after Bryzgalova,
Huang and Julliard 2023) are the Bayesian family. Inputs are DataFrames dates x assets and
dates x factors; results use the dims ``factor``, ``asset``, ``chain`` and ``draw``.

Layer: this package sits with ``bayes`` (it imports ``core``, ``baselines`` and ``data``; the
workflow and the command line import it). Names load lazily.
"""

from importlib import import_module

# public name -> module that defines it
_EXPORTS = {
    "fama_macbeth": "bayesbond.baselines.fama_macbeth",
    "sdf_gmm": "bayesbond.baselines.fama_macbeth",
    "premia_gmm": "bayesbond.baselines.premia_gmm",
    "bayesian_fama_macbeth": "bayesbond.pricing.bayes_fm",
    "bayesian_spanning": "bayesbond.pricing.bayes_spanning",
    "select_factors": "bayesbond.pricing.sdf_selection",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'bayesbond.pricing' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__

"""bayesbond: Bayesian modelling of bond returns and of the term structure of interest rates.

The public names are loaded lazily (PEP 562), so ``import bayesbond`` and the command line start
fast and PyMC is imported only when a Bayesian model is used.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from bayesbond.errors import (
    BayesBondError,
    ConvergenceWarning,
    CrossSectionalDependenceWarning,
    DataError,
    ModelError,
    SpecError,
)

try:
    __version__ = version("bayesbond")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

# public name -> module that defines it
_EXPORTS = {
    # data
    "rating_bucket": "bayesbond.data.ratings",
    "BondPanel": "bayesbond.data.panel",
    "treasury_excess_returns": "bayesbond.data.treasury",
    # factors and baselines
    "spanning": "bayesbond.baselines.spanning",
    "ols": "bayesbond.baselines.ols",
    "OLSResult": "bayesbond.baselines.ols",
    "ou_ml": "bayesbond.baselines.ou_ml",
    "affine_ml": "bayesbond.baselines.affine_ml",
    "lr_test": "bayesbond.baselines.affine_ml",
    "efm2_ml": "bayesbond.baselines.efm2_ml",
    "residual_dependence": "bayesbond.baselines.dependence",
    # term-structure maths
    "OU": "bayesbond.core.ou",
    "GaussianAffine": "bayesbond.core.affine",
    "Vasicek": "bayesbond.core.affine",
    "EFM1": "bayesbond.core.affine",
    "EFM2": "bayesbond.core.affine",
    # Bayesian models
    "FactorModel": "bayesbond.bayes.factor_model",
    "OUModel": "bayesbond.bayes.ou_model",
    "AffineModel": "bayesbond.bayes.affine_model",
    # workflow
    "expected_returns": "bayesbond.workflow.expected",
    "compare": "bayesbond.workflow.compare",
    "ppc": "bayesbond.workflow.predictive_checks",
    "PPCResult": "bayesbond.workflow.predictive_checks",
    "kfold": "bayesbond.workflow.cv",
    "lfo": "bayesbond.workflow.cv",
    "loo": "bayesbond.workflow.loglik",
    "term_premium": "bayesbond.workflow.term_premium",
    "expected_excess_returns": "bayesbond.workflow.term_premium",
    "save": "bayesbond.workflow.io",
    "fit_many": "bayesbond.workflow.many",
    "rolling_fit": "bayesbond.workflow.many",
    "load": "bayesbond.workflow.io",
}
# public submodule name -> module
_SUBMODULES = {
    "datasets": "bayesbond.data.datasets",
    "factors": "bayesbond.data.factors",
    "readers": "bayesbond.data.readers",
    "plots": "bayesbond.workflow.plots",
    "pricing": "bayesbond.pricing",
    "specs": "bayesbond.workflow.specs",
}

__all__ = ["BayesBondError", "ConvergenceWarning", "CrossSectionalDependenceWarning", "DataError",
           "ModelError", "SpecError",
           "__version__", *sorted(_EXPORTS), *sorted(_SUBMODULES)]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = import_module(_SUBMODULES[name])
    else:
        raise AttributeError(f"module 'bayesbond' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__

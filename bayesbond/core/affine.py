"""Gaussian affine term-structure models (public entry point).

``GaussianAffine`` is the n-factor model; ``Vasicek``, ``EFM1`` and ``EFM2`` are named special
cases. The implementation is split over ``affine_loadings`` (numerical kernels), ``affine_model``
(prices, yields, forwards), ``affine_risk`` (P dynamics, risk premia, sensitivities, inversion),
``affine_portfolio`` (bond portfolios), ``affine_base`` (the class) and ``affine_special`` (named
models); everything public is re-exported here.
"""

from __future__ import annotations

from bayesbond.core.affine_base import GaussianAffine
from bayesbond.core.affine_loadings import LoadingParts
from bayesbond.core.affine_portfolio import Frontier
from bayesbond.core.affine_risk import CurveInversion
from bayesbond.core.affine_special import EFM1, EFM2, Vasicek

__all__ = ["GaussianAffine", "Vasicek", "EFM1", "EFM2", "LoadingParts", "Frontier",
           "CurveInversion"]

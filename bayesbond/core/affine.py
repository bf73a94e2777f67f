"""Gaussian affine term-structure models (public entry point).

``GaussianAffine`` is the n-factor model; ``Vasicek``, ``EFM1`` and ``EFM2`` are named special
cases. The implementation is split over ``affine_loadings`` (numerical kernels),
``affine_model`` (prices, yields, forwards) and further ``affine_*`` modules; everything public
is re-exported here.
"""

from __future__ import annotations

from bayesbond.core.affine_loadings import LoadingParts
from bayesbond.core.affine_model import GaussianAffineCore

__all__ = ["GaussianAffine", "LoadingParts"]


class GaussianAffine(GaussianAffineCore):
    __doc__ = GaussianAffineCore.__doc__

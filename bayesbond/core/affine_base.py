"""``GaussianAffine``: the core model class with its risk-premium and portfolio methods."""

from __future__ import annotations

from bayesbond.core.affine_model import GaussianAffineCore
from bayesbond.core.affine_portfolio import AffinePortfolioMixin
from bayesbond.core.affine_risk import AffineRiskMixin

__all__ = ["GaussianAffine"]


class GaussianAffine(AffineRiskMixin, AffinePortfolioMixin, GaussianAffineCore):
    __doc__ = GaussianAffineCore.__doc__

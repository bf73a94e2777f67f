"""``GaussianAffine``: the core model class with its risk-premium and portfolio methods."""

from __future__ import annotations

from bayesbond.core.affine_model import GaussianAffineCore
from bayesbond.core.affine_portfolio import AffinePortfolioMixin
from bayesbond.core.affine_risk import AffineRiskMixin

__all__ = ["GaussianAffine"]

_METHODS_DOC = """
    Methods (by topic)
    ------------------
    Loadings and curves
        :meth:`loadings`, :meth:`parts`, :meth:`yield_coefficients`, :meth:`price`,
        :meth:`log_price`, :meth:`yields`, :meth:`forward`, :meth:`short_rate`,
        :meth:`short_slope`, :meth:`u_inf`, :meth:`yield_inf`, :meth:`yield_cov_inst`.
    Dynamics under P and risk premia
        :meth:`ou_P`, :meth:`ou_star`, :meth:`state_moments`, :meth:`yield_moments`,
        :meth:`risk_premium_drift`, :meth:`market_price_of_risk`, :meth:`expected_excess_return`.
    Sensitivities and inversion
        :meth:`dyields_dSigma`, :meth:`dprice_dSigma`, :meth:`dyields_dlambda1`,
        :meth:`implied_states`, :meth:`implied_lambda1`.
    Portfolios of zero bonds
        :meth:`portfolio_moments`, :meth:`efficient_frontier`, :meth:`holding_log_price_moments`,
        :meth:`portfolio_value_moments`, :meth:`sample_portfolio_value`.

    Examples
    --------
    Vasicek as a one-factor model (Hull's textbook value ``P(0, 10) = 0.380457``):

    >>> m = GaussianAffine(A=-0.1, a=0.1 * 0.1, Sigma=0.02)
    >>> round(float(m.price(0.10, 10.0)), 6)
    0.380457
    >>> u, v = m.loadings([1.0, 10.0])   # u: (2, 1), v: (2,)
"""


class GaussianAffine(AffineRiskMixin, AffinePortfolioMixin, GaussianAffineCore):
    __doc__ = GaussianAffineCore.__doc__ + _METHODS_DOC

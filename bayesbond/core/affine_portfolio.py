"""Portfolios of zero-coupon bonds in a Gaussian affine model (a mixin of ``GaussianAffine``).

Instantaneous (local) moments and the local mean-variance frontier on the singular covariance of
bond returns, and the finite-horizon distribution of a buy-and-hold portfolio's value.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bayesbond.core.affine_model import as_tau
from bayesbond.errors import DataError

__all__ = ["AffinePortfolioMixin", "Frontier"]


class Frontier(NamedTuple):
    """Local mean-variance frontier of zero bonds plus the money-market account.

    Attributes
    ----------
    weights : ndarray (..., k)
        Value weights on the zero bonds (minimum-norm solution); ``1 - weights.sum(-1)`` sits in the
        money-market account.
    excess_return : ndarray
        Target instantaneous expected excess return (per year).
    volatility : ndarray
        Smallest attainable instantaneous volatility for that target (per sqrt(year)).
    max_sharpe : float
        Slope of the frontier, ``sqrt(m' V^- m)`` with ``m = Lambda xi + lambda1``
        (``|lambda(xi)|`` for invertible ``Sigma``).
    """

    weights: np.ndarray
    excess_return: np.ndarray
    volatility: np.ndarray
    max_sharpe: float


class AffinePortfolioMixin:
    """Bond-portfolio methods (see :class:`bayesbond.core.affine.GaussianAffine`)."""

    def _weights(self, weights, k: int, name: str = "weights") -> np.ndarray:
        w = np.asarray(weights, dtype=float)
        if w.ndim == 0 or w.shape[-1] != k:
            raise DataError(f"{name} must have last dimension len(tau) = {k}, got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise DataError(f"{name} has non-finite entries")
        return w

    def portfolio_moments(self, xi, tau, weights, method: str = "auto"):
        """Instantaneous expected excess return and variance of a portfolio of zero bonds.

        Parameters
        ----------
        xi : array_like (n,)
            State now.
        tau : array_like (k,)
            Maturities of the bonds.
        weights : array_like (k,) or (p, k)
            Value weights (fractions of wealth); the rest is in the money-market account.

        Returns
        -------
        mean, variance : float or ndarray (p,)
            Per year.

        Notes
        -----
        Bond returns are ``dp_i/p_i = (r + u_i'm) dt - u_i' Sigma dW`` with
        ``m = Lambda xi + lambda1``, so with ``U`` the stacked ``u(tau_i)'``: mean ``w'U m``,
        variance ``w'U V U'w`` (rank of ``U V U'`` at most ``n``).
        """
        x = self._state(xi)
        if x.ndim != 1:
            raise DataError(f"xi must be a single state of shape ({self.n},), got {x.shape}")
        t, _ = as_tau(tau)
        w = self._weights(weights, len(t))
        u, _ = self.loadings(t, method)
        expo = w @ u  # factor exposures U'w
        mean = expo @ self.risk_premium_drift(x)
        var = np.einsum("...i,ij,...j->...", expo, self.V, expo)
        return (float(mean), float(var)) if w.ndim == 1 else (mean, var)

    def efficient_frontier(self, xi, tau, excess_return, method: str = "auto") -> Frontier:
        """Local mean-variance frontier of zero bonds (maturities ``tau``) and the money market.

        Parameters
        ----------
        xi : array_like (n,)
            State now.
        tau : array_like (k,)
            Available maturities (at least ``n`` distinct ones for the full frontier).
        excess_return : float or array_like (p,)
            Target instantaneous expected excess returns (per year).

        Returns
        -------
        Frontier

        Notes
        -----
        Minimise ``w'Cw`` subject to ``w'mu = target`` with ``C = U V U'`` (singular: rank <= n < k
        in general) and ``mu = U m``. Every portfolio acts only through its factor exposure
        ``b = U'w``, so the problem is ``min b'Vb`` s.t. ``b'm = target``:
        ``b = target V^- m / (m'V^- m)``, variance ``target^2 / (m'V^- m)``; the minimum-norm
        weights with that exposure are ``w = (U')^+ b``, which equals
        ``target C^+ mu / (mu'C^+ mu)`` when ``U`` has full column rank. Portfolios with
        ``U'w = 0`` are riskless and earn no excess return (no arbitrage), so the frontier is the
        line ``vol = |target| / sqrt(m'V^- m)``. The maximal Sharpe ratio equals the norm of the
        market price of risk ``lambda(xi)``.
        """
        x = self._state(xi)
        if x.ndim != 1:
            raise DataError(f"xi must be a single state of shape ({self.n},), got {x.shape}")
        t, _ = as_tau(tau)
        u, _ = self.loadings(t, method)
        m = self.risk_premium_drift(x)
        Vinv_m = np.linalg.pinv(self.V) @ m
        s2 = float(m @ Vinv_m)
        if s2 <= 0:
            raise DataError(
                "the risk premium Lambda xi + lambda1 is zero at this state: no frontier"
            )
        target = np.asarray(excess_return, dtype=float)
        b = target[..., None] * Vinv_m / s2  # exposures (..., n)
        reach = u.T @ np.linalg.pinv(u.T) @ Vinv_m
        if not np.allclose(reach, Vinv_m, rtol=1e-8, atol=1e-12 * np.abs(Vinv_m).max()):
            raise DataError(
                f"the {len(t)} maturities cannot reach the efficient factor exposure "
                f"(loadings of rank {np.linalg.matrix_rank(u)} < n = {self.n})"
            )
        w = b @ np.linalg.pinv(u.T).T
        return Frontier(w, target, np.abs(target) / np.sqrt(s2), float(np.sqrt(s2)))

    # ------------------------------------------------------------------ finite horizon
    def holding_log_price_moments(self, xi0, tau, horizon, method: str = "auto"):
        """Exact Gaussian law of the log prices at ``horizon`` of the bonds bought now.

        Returns mean (k,) and covariance (k, k) of ``log p(tau_i - h, xi_h)`` under P given
        ``xi0``: ``-u(tau-h)' m_h + v(tau-h)`` and ``U C_h U'`` (``tau_i >= h``).
        """
        t, _ = as_tau(tau)
        h = float(horizon)
        if np.any(t < h):
            i = int(np.argmax(t < h))
            raise DataError(f"tau[{i}] = {t[i]} matures before the horizon {h}")
        m, C = self.state_moments(h, xi0)
        u, v = self.loadings(t - h, method)
        cov = u @ C @ u.T
        return v - u @ m, 0.5 * (cov + cov.T)

    def portfolio_value_moments(self, xi0, tau, holdings, horizon, method: str = "auto"):
        """Exact mean and variance under P of a buy-and-hold zero-bond portfolio's future value.

        Parameters
        ----------
        xi0 : array_like (n,)
            State now.
        tau : array_like (k,)
            Maturities now (each ``>= horizon``).
        holdings : array_like (k,)
            Numbers of bonds (face value 1) held.
        horizon : float
            Years ahead.

        Returns
        -------
        mean, variance : float

        Notes
        -----
        ``Pi_h = sum_i N_i exp(l_i)`` with ``l ~ N(mu, S)`` from :meth:`holding_log_price_moments`:
        ``E Pi_h = sum_i N_i e^{mu_i + S_ii/2}`` and
        ``E[Pi_h^2] = sum_ij N_i N_j e^{mu_i + mu_j + (S_ii + S_jj)/2 + S_ij}`` exactly. The value
        is a sum of correlated lognormals: its distribution is not lognormal (only a single
        bond's log value is exactly Gaussian); :meth:`sample_portfolio_value` draws it exactly.
        """
        t, _ = as_tau(tau)
        N = self._weights(holdings, len(t), "holdings")
        mu, S = self.holding_log_price_moments(xi0, t, horizon, method)
        d = np.diag(S)
        e = np.exp(mu + 0.5 * d)
        mean = float(N @ e)
        second = np.outer(N * e, N * e) * np.expm1(S)
        return mean, float(second.sum())

    def sample_portfolio_value(
        self, xi0, tau, holdings, horizon, size: int, rng=None, log: bool = False, method="auto"
    ):
        """Exact draws of a buy-and-hold portfolio's value (or log value) at ``horizon`` under P.

        ``xi_h`` is drawn from its exact Gaussian law and the bonds are repriced with the model, so
        the only error is Monte Carlo error.
        """
        rng = np.random.default_rng(rng)
        t, _ = as_tau(tau)
        N = self._weights(holdings, len(t), "holdings")
        h = float(horizon)
        if np.any(t < h):
            i = int(np.argmax(t < h))
            raise DataError(f"tau[{i}] = {t[i]} matures before the horizon {h}")
        m, C = self.state_moments(h, xi0)
        evals, evecs = np.linalg.eigh(C)
        L = evecs * np.sqrt(np.clip(evals, 0.0, None))
        xi_h = m + rng.standard_normal((int(size), self.n)) @ L.T
        value = np.exp(self.log_price(xi_h, t - h, method)) @ N
        return np.log(value) if log else value

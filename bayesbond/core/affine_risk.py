"""Yield dynamics under P, risk premia, sensitivities and linear curve inversion of a Gaussian
affine model (a mixin of :class:`bayesbond.core.affine.GaussianAffine`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bayesbond.core.affine_model import as_tau
from bayesbond.core.ou import OU
from bayesbond.errors import DataError, ModelError

__all__ = ["AffineRiskMixin", "CurveInversion"]

_KINDS = ("simple", "log")


class CurveInversion(NamedTuple):
    """Result of :meth:`AffineRiskMixin.implied_lambda1`.

    Attributes
    ----------
    lambda1 : ndarray (n,)
        Constant market price of risk (drift units) ``a* - a``.
    a_star : ndarray (n,)
        Risk-neutral drift constant.
    residuals : ndarray
        Observed minus fitted yields, the shape of the input curves.
    rank : int
        Rank of the design ``int_0^tau u ds / tau`` (``n`` when the parameters are identified).
    """

    lambda1: np.ndarray
    a_star: np.ndarray
    residuals: np.ndarray
    rank: int


class AffineRiskMixin:
    """Methods that need the P dynamics or parameter derivatives (see the class docstring)."""

    # ------------------------------------------------------------------ P dynamics
    def ou_P(self) -> OU:
        """The state process under P, ``dxi = (A xi + a) dt + Sigma dW``, as an :class:`OU`."""
        return OU(self.A, self.a, self.Sigma)

    def ou_star(self) -> OU:
        """The state process under P*, ``dxi = (A* xi + a*) dt + Sigma dW*``, as an :class:`OU`."""
        return OU(self.A_star, self.a_star, self.Sigma)

    def state_moments(self, horizon=None, xi0=None):
        """Mean and covariance of the state under P: at ``horizon`` given ``xi0``, or stationary.

        Notes
        -----
        ``E[xi_h] = e^{hA} xi0 + int_0^h e^{sA} ds a``, ``Cov = int_0^h e^{sA} V e^{sA'} ds``; the
        stationary law (``horizon=None``) needs a stable ``A`` (``mu = -A^{-1} a``,
        ``A P + P A' + V = 0``). Computed by :class:`bayesbond.core.ou.OU`.
        """
        ou = self.ou_P()
        if horizon is None:
            if xi0 is not None:
                raise DataError("xi0 is given but horizon is None (the stationary law ignores xi0)")
            return np.asarray(ou.stationary_mean()), np.asarray(ou.stationary_cov())
        h = float(horizon)
        if not np.isfinite(h) or h < 0:
            raise DataError(f"horizon = {horizon!r} must be finite and >= 0")
        if xi0 is None:
            raise DataError(
                "xi0 (the state now) is needed for the conditional moments at a horizon"
            )
        x0 = self._state(xi0, "xi0")
        if x0.ndim != 1:
            raise DataError(f"xi0 must be a single state of shape ({self.n},), got {x0.shape}")
        return np.asarray(ou.mean(x0, h)), np.asarray(ou.cov(h))

    def yield_moments(self, tau, horizon=None, xi0=None, method: str = "auto"):
        """Mean and covariance of the yield curve under P at ``horizon`` (or stationary).

        Parameters
        ----------
        tau : array_like (k,)
            Maturities of the curve.
        horizon : float, optional
            Years ahead; ``None`` gives the unconditional (stationary) law.
        xi0 : array_like (n,), optional
            State now (needed with ``horizon``).

        Returns
        -------
        mean : ndarray (k,)
        cov : ndarray (k, k)

        Notes
        -----
        The curve is affine in the state, ``y = B xi + c``, and ``xi_h`` is Gaussian, so the curve
        at ``h`` is exactly ``N(B m_h + c, B C_h B')``.
        """
        m, C = self.state_moments(horizon, xi0)
        b, c = self.yield_coefficients(tau, method)
        cov = b @ C @ b.T
        return b @ m + c, 0.5 * (cov + cov.T)

    # ------------------------------------------------------------------ risk premia
    def risk_premium_drift(self, xi):
        """``Lambda xi + lambda1``: the drift change from P to P* (per unit of time)."""
        x = self._state(xi)
        return x @ self.Lambda.T + self.lambda1

    def market_price_of_risk(self, xi):
        """``lambda(xi) = Sigma^-(Lambda xi + lambda1)`` (Moore-Penrose inverse of ``Sigma``)."""
        return self.risk_premium_drift(xi) @ np.linalg.pinv(self.Sigma).T

    def expected_excess_return(self, xi, tau, horizon=None, kind: str = "simple", method="auto"):
        """Expected excess return of zero bonds under P, instantaneous or over a holding period.

        Parameters
        ----------
        xi : array_like (n,) or (m, n)
            State now.
        tau : float or array_like (k,)
            Maturities of the bonds bought now.
        horizon : float, optional
            Holding period ``h`` in years (``h <= tau``). ``None``: the instantaneous rate per year.
        kind : {"simple", "log"}
            Arithmetic or logarithmic returns.

        Returns
        -------
        ndarray
            Shape of ``yields(xi, tau)``. Instantaneous: per year. Holding period: over the period
            (not annualised), in excess of the ``h``-maturity zero bond (riskless over the period).

        Notes
        -----
        Instantaneous: ``dp/p = (r + u'(Lambda xi + lambda1)) dt - u' Sigma dW``, so the simple
        excess return rate is ``u(tau)'(Lambda xi + lambda1)`` and the log one subtracts ``u'Vu/2``.
        Holding period ``h``: ``log p(tau - h, xi_h) = -u(tau-h)' xi_h + v(tau-h)`` is Gaussian
        given ``xi0`` (mean ``m_h``, covariance ``C_h`` of the P dynamics), hence exactly

        * log: ``-u(tau-h)' m_h + v(tau-h) - log p(tau, xi0) + log p(h, xi0)``;
        * simple: ``exp(-u(tau-h)' m_h + v(tau-h) + u' C_h u / 2) / p(tau, xi0) - 1 / p(h, xi0)``.
        """
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        x = self._state(xi)
        t, scalar = as_tau(tau)
        if horizon is None:
            u, _ = self.loadings(t, method)
            out = self.risk_premium_drift(x) @ u.T
            if kind == "log":
                out = out - 0.5 * np.einsum("ki,ij,kj->k", u, self.V, u)
            return self._finish(out, scalar)
        h = float(horizon)
        if not np.isfinite(h) or h < 0:
            raise DataError(f"horizon = {horizon!r} must be finite and >= 0")
        short = t < h
        if short.any():
            i = int(np.argmax(short))
            raise DataError(f"tau[{i}] = {t[i]} is shorter than the holding period {h}")
        Phi, c, C = self.ou_P().transition(h)
        x2 = np.atleast_2d(x)
        m = x2 @ np.atleast_2d(Phi).T + c  # E[xi_h | xi_0], (M, n)
        C = np.atleast_2d(C)
        u_rem, v_rem = self.loadings(t - h, method)
        log_now = self.log_price(x2, t, method)  # (M, k)
        log_h = self.log_price(x2, h, method)  # (M,)
        mean_log_later = v_rem - m @ u_rem.T
        if kind == "log":
            out = mean_log_later - log_now + log_h[:, None]
        else:
            var = np.einsum("ki,ij,kj->k", u_rem, C, u_rem)
            out = np.exp(mean_log_later + 0.5 * var - log_now) - np.exp(-log_h)[:, None]
        out = out.reshape(x.shape[:-1] + (len(t),))
        return self._finish(out, scalar)

    # ------------------------------------------------------------------ sensitivities
    def dyields_dSigma(self, tau, method: str = "auto") -> np.ndarray:
        """Derivative of the yields with respect to every entry of ``Sigma``, shape (k, n, m).

        Notes
        -----
        Only ``v`` depends on ``Sigma``: ``v = ... + tr(V K)/2`` with ``K = int_0^tau u u' ds``, so
        ``dv/dSigma = K Sigma`` and ``dy/dSigma = -K Sigma / tau`` (zero at ``tau = 0``),
        independent of the state. ``A*`` and ``a*`` are held fixed (``Lambda``, ``lambda1`` are in
        drift units).
        """
        t, _ = as_tau(tau)
        K = self.parts(t, method, with_K=True).K
        out = np.zeros((len(t),) + self.Sigma.shape)
        pos = t > 0
        out[pos] = -(K[pos] @ self.Sigma) / t[pos, None, None]
        return out

    def dprice_dSigma(self, xi, tau, method: str = "auto") -> np.ndarray:
        """Derivative of bond prices with respect to ``Sigma``: ``p K Sigma``, (..., k, n, m)."""
        t, _ = as_tau(tau)
        K = self.parts(t, method, with_K=True).K
        p = np.asarray(self.price(xi, t, method))
        return p[..., None, None] * (K @ self.Sigma)

    def dyields_dlambda1(self, tau, method: str = "auto") -> np.ndarray:
        """Derivative of the yields with respect to ``lambda1`` (equally ``a``), shape (k, n).

        Notes
        -----
        ``v = -delta0 tau - (a + lambda1)' U1 + ...`` with ``U1 = int_0^tau u``, so
        ``dy/dlambda1 = U1 / tau`` (zero at ``tau = 0``): yields are affine in ``lambda1``.
        """
        t, _ = as_tau(tau)
        U1 = self.parts(t, method).U1
        out = np.zeros_like(U1)
        pos = t > 0
        out[pos] = U1[pos] / t[pos, None]
        return out

    # ------------------------------------------------------------------ linear inversion
    def implied_states(self, yields, tau, method: str = "auto") -> np.ndarray:
        """States that best fit observed curves (least squares), shape ``yields.shape[:-1] + (n,)``.

        Notes
        -----
        ``y = B xi + c`` is linear in ``xi``; with at least ``n`` maturities and ``B`` of full
        column rank the fit is unique (exact for curves generated by the model).
        """
        Y = self._curves(yields, tau)
        b, c = self.yield_coefficients(tau, method)
        self._check_rank(b, "the state xi")
        sol = np.linalg.lstsq(b, (Y - c).reshape(-1, len(c)).T, rcond=None)[0]
        return sol.T.reshape(Y.shape[:-1] + (self.n,))

    def implied_lambda1(self, yields, tau, xi, method: str = "auto") -> CurveInversion:
        """Constant risk premium ``lambda1`` (and ``a* = a + lambda1``) from observed curves.

        Parameters
        ----------
        yields : array_like (k,) or (T, k)
            Observed zero yields at maturities ``tau`` (one curve per row).
        tau : array_like (k,)
            Maturities (> 0).
        xi : array_like (n,) or (T, n)
            The states on the observation dates (e.g. filtered, or observed factors).

        Returns
        -------
        CurveInversion

        Notes
        -----
        ``tau y = u' xi + delta0 tau + U1' a* - q/2`` is linear in ``a*`` (all else fixed by ``A*``,
        ``V`` and ``delta``), so ``a*`` is the least-squares solution of the stacked system
        ``U1 a* = tau (y - delta0) - u' xi + q/2`` (weighted per yield by ``1/tau``, i.e. in yield
        units). With unknown states as well only combinations of ``a*`` are identified (``U1`` lies
        in the span of ``u`` and ``tau``), which is why the states are inputs here.
        """
        Y = self._curves(yields, tau)
        t, _ = as_tau(tau)
        if np.any(t <= 0):
            raise DataError("implied_lambda1 needs maturities > 0")
        X = self._state(xi)
        Y2 = Y.reshape(-1, len(t))
        X2 = X.reshape(-1, self.n)
        if X2.shape[0] != Y2.shape[0]:
            raise DataError(f"{Y2.shape[0]} curves but {X2.shape[0]} states in xi")
        p = self.parts(t, method)
        design = p.U1 / t[:, None]  # (k, n): dy/da*
        self._check_rank(design, "lambda1")
        base = self.delta0 + (X2 @ p.u.T - 0.5 * p.q) / t  # yields with a* = 0
        rhs = (Y2 - base).ravel()
        D = np.tile(design, (Y2.shape[0], 1))
        a_star, *_ = np.linalg.lstsq(D, rhs, rcond=None)
        resid = (Y2 - base - design @ a_star).reshape(Y.shape)
        rank = int(np.linalg.matrix_rank(design))
        return CurveInversion(a_star - self.a, a_star, resid, rank)

    # ------------------------------------------------------------------ helpers
    def _curves(self, yields, tau) -> np.ndarray:
        t, _ = as_tau(tau)
        Y = np.asarray(yields, dtype=float)
        if Y.ndim == 0 or Y.shape[-1] != len(t):
            raise DataError(f"yields must have last dimension len(tau) = {len(t)}, got {Y.shape}")
        bad = ~np.isfinite(Y)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"yields{list(idx)} is not finite (maturity tau = {t[idx[-1]]})")
        return Y

    def _check_rank(self, design: np.ndarray, what: str):
        rank = int(np.linalg.matrix_rank(design))
        if rank < self.n:
            raise ModelError(
                f"{what} is not identified: the {design.shape[0]} maturities give a design of rank "
                f"{rank} < n = {self.n} (use at least n distinct maturities)"
            )

"""The n-factor Gaussian affine term-structure model: loadings, prices, yields and forwards.

Risk premia, yield dynamics under P, portfolios, sensitivities and curve inversion are added in
further ``affine_*`` modules; :mod:`bayesbond.core.affine` is the public entry point.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from bayesbond.core import linalg
from bayesbond.core.affine_loadings import (
    LoadingParts,
    eigen_ok,
    parts_eigen,
    parts_expm,
)
from bayesbond.errors import DataError, ModelError

__all__ = ["GaussianAffineCore"]

_METHODS = ("auto", "eigen", "expm")


def _vector(x, n: int, name: str, default=None) -> np.ndarray:
    if x is None:
        return np.array(default, dtype=float)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    if x.shape != (n,):
        raise ModelError(f"{name} must have shape ({n},), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ModelError(f"{name} has non-finite entries: {x.tolist()}")
    return x


def _matrix(X, n: int, name: str) -> np.ndarray:
    X = linalg.as_square(X, name)
    if X.shape != (n, n):
        raise ModelError(f"{name} must have shape ({n}, {n}), got {X.shape}")
    return X


def _frozen(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=float)
    x.flags.writeable = False
    return x


def as_tau(tau, name: str = "tau") -> tuple[np.ndarray, bool]:
    """Maturities as a 1-D float array (and whether a scalar was given); all finite and >= 0."""
    t = np.asarray(tau, dtype=float)
    scalar = t.ndim == 0
    t = np.atleast_1d(t)
    if t.ndim != 1:
        raise DataError(
            f"{name} must be a scalar or a 1-D array of maturities, got shape {t.shape}"
        )
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{name}[{i}] = {t[i]!r}: maturities must be finite and >= 0 (in years)")
    return t, scalar


class GaussianAffineCore:
    r"""Gaussian affine term-structure model with ``n`` factors.

    Parameters
    ----------
    A : array_like (n, n)
        Drift matrix under P (scalar in 1-D).
    a : array_like (n,)
        Drift constant under P.
    Sigma : array_like (n, m)
        Volatility matrix (usually square, e.g. a Cholesky factor); ``V = Sigma Sigma'``.
    Lambda : array_like (n, n), optional
        State-dependent part of the market price of risk (default zero).
    lambda1 : array_like (n,), optional
        Constant part of the market price of risk (default zero).
    delta0 : float, default 0
        Short-rate intercept.
    delta1 : array_like (n,), optional
        Short-rate loadings; default ``e1`` (the short rate is the first state).

    Notes
    -----
    Under P, ``dxi = (A xi + a) dt + Sigma dW``; the market price of risk is
    ``lambda(xi) = Sigma^-(Lambda xi + lambda1)``, so that under the risk-neutral measure P*

    .. math:: d\xi = (A^* \xi + a^*)\,dt + \Sigma\,dW^*, \quad A^* = A + \Lambda,
              \ a^* = a + \lambda_1,

    and ``r = delta0 + delta1' xi``. The zero-coupon bond with maturity ``tau`` costs
    ``p(tau) = E*[exp(-int_0^tau r ds)] = exp(-u(tau)' xi + v(tau))`` where

    .. math:: u' = A^{*\prime} u + \delta_1, \quad v' = -\delta_0 - a^{*\prime} u + \tfrac12 u' V u,
              \quad u(0) = v(0) = 0,

    i.e. ``u(tau) = int_0^tau e^{s A*'} delta1 ds`` and
    ``v = -delta0 tau - a*' int_0^tau u + 1/2 int_0^tau u'Vu`` (Duffie and Kan 1996). For
    invertible ``A*``, ``u = (A*')^{-1} (e^{tau A*'} - I) delta1``; the implementation does not
    need the inverse (see :mod:`bayesbond.core.affine_loadings`), so singular ``A*`` (a random-walk
    factor) and defective ``A*`` (repeated mean-reversion speeds) are exact too.

    References
    ----------
    Duffie, D. and Kan, R. (1996). A yield-factor model of interest rates. Math. Finance 6, 379-406.
    Mayer, M. (2009). The economic factor model (EFM) notes.
    """

    #: eigenvector condition number above which the eigen route hands over to the expm route
    cond_max: float = 1e3

    def __init__(self, A, a, Sigma, Lambda=None, lambda1=None, delta0=0.0, delta1=None):
        A = linalg.as_square(A, "A")
        n = A.shape[0]
        self.n = n
        self.A = _frozen(A)
        self.a = _frozen(_vector(a, n, "a"))
        self.Sigma = _frozen(linalg.as_vol_matrix(Sigma, n))
        self.Lambda = _frozen(np.zeros((n, n)) if Lambda is None else _matrix(Lambda, n, "Lambda"))
        self.lambda1 = _frozen(_vector(lambda1, n, "lambda1", np.zeros(n)))
        delta0 = float(delta0)
        if not np.isfinite(delta0):
            raise ModelError(f"delta0 must be finite, got {delta0!r}")
        self.delta0 = delta0
        self.delta1 = _frozen(_vector(delta1, n, "delta1", np.eye(n)[0]))
        self.A_star = _frozen(self.A + self.Lambda)
        self.a_star = _frozen(self.a + self.lambda1)
        V = self.Sigma @ self.Sigma.T
        self.V = _frozen(0.5 * (V + V.T))
        self._eig = None
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={self.n}, A_star eigenvalues="
            f"{np.round(np.linalg.eigvals(self.A_star), 6).tolist()})"
        )

    # ------------------------------------------------------------------ loadings
    def _eigen(self):
        if self._eig is None:
            self._eig = eigen_ok(self.A_star.T, self.cond_max)
        return self._eig

    @property
    def loadings_route(self) -> str:
        """``"eigen"`` or ``"expm"``: the route ``method="auto"`` takes for this ``A*``."""
        return "eigen" if self._eigen()[0] else "expm"

    def parts(self, tau, method: str = "auto", with_K: bool = False) -> LoadingParts:
        """State-independent integrals ``u``, ``U1 = int u``, ``q = int u'Vu``, ``K = int u u'``.

        Parameters
        ----------
        tau : array_like
            Maturities (years), shape (k,).
        method : {"auto", "eigen", "expm"}
            ``"eigen"`` diagonalises ``A*'`` (fast); ``"expm"`` exponentiates an augmented generator
            (exact for defective and singular ``A*``); ``"auto"`` takes the eigen route when the
            eigenvector matrix has condition number at most :attr:`cond_max`.
        with_K : bool
            Also return ``K(tau)`` (needed for volatility sensitivities).

        Returns
        -------
        LoadingParts
        """
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        t, _ = as_tau(tau)
        key = (t.tobytes(), method, with_K)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        ok, lam, W = self._eigen()
        if method == "eigen" and not ok:
            raise ModelError(
                "A* is defective or too close to it for the eigen route "
                f"(eigenvalues {np.round(lam, 8).tolist()}); use method='expm' or 'auto'"
            )
        with np.errstate(all="ignore"):
            if method == "eigen" or (method == "auto" and ok):
                out = parts_eigen(lam, W, self.delta1, self.V, t, with_K)
            else:
                out = parts_expm(self.A_star.T, self.delta1, self.V, t, with_K)
        finite = np.ones(len(t), dtype=bool)
        for arr in out:
            if arr is not None:
                finite &= np.isfinite(arr).reshape(len(t), -1).all(axis=1)
        if not finite.all():
            i = int(np.argmax(~finite))
            raise ModelError(
                f"tau[{i}] = {float(t[i])!r} years: the bond-price loadings overflow in floating "
                "point at this maturity; use a shorter maturity (or yield_inf() for the limit)"
            )
        for arr in out:
            if arr is not None:
                arr.flags.writeable = False  # shared through the cache
        if len(self._cache) > 8:
            self._cache.clear()
        self._cache[key] = out
        return out

    def loadings(self, tau, method: str = "auto"):
        """Bond-price loadings: ``p(tau) = exp(-u(tau)' xi + v(tau))``.

        Parameters
        ----------
        tau : float or array_like (k,)
            Maturities in years (>= 0).
        method : {"auto", "eigen", "expm"}
            See :meth:`parts`.

        Returns
        -------
        u : ndarray (k, n)
        v : ndarray (k,)
            Shapes (n,) and scalar for scalar ``tau``.

        Notes
        -----
        ``v = -delta0 tau - a*' U1 + 1/2 q`` with ``U1 = int_0^tau u``, ``q = int_0^tau u'Vu``.
        """
        t, scalar = as_tau(tau)
        p = self.parts(t, method)
        v = -self.delta0 * t - p.U1 @ self.a_star + 0.5 * p.q
        if scalar:
            return p.u[0].copy(), float(v[0])
        return p.u.copy(), v

    def yield_coefficients(self, tau, method: str = "auto"):
        """Yields are affine in the state: ``y(tau) = b(tau)' xi + c(tau)``.

        Returns
        -------
        b : ndarray (k, n)
            ``u / tau`` (``delta1`` at ``tau = 0``).
        c : ndarray (k,)
            ``-v / tau`` (``delta0`` at ``tau = 0``).
        """
        t, _ = as_tau(tau)
        u, v = self.loadings(t, method)
        pos = t > 0
        b = np.empty_like(u)
        c = np.empty_like(v)
        b[pos] = u[pos] / t[pos, None]
        c[pos] = -v[pos] / t[pos]
        b[~pos] = self.delta1
        c[~pos] = self.delta0
        return b, c

    # ------------------------------------------------------------------ state helpers
    def _state(self, xi, name: str = "xi") -> np.ndarray:
        x = np.asarray(xi, dtype=float)
        if self.n == 1 and x.ndim == 0:
            x = x[None]
        elif self.n == 1 and x.ndim == 1 and x.shape[0] != 1:
            x = x[:, None]  # one-factor model: a vector of short rates is a batch of states
        if x.ndim == 0 or x.shape[-1] != self.n:
            raise DataError(f"{name} must have last dimension n = {self.n}, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise DataError(f"{name} has non-finite entries")
        return x

    @staticmethod
    def _finish(out: np.ndarray, scalar_tau: bool):
        out = out[..., 0] if scalar_tau else out
        return float(out) if np.ndim(out) == 0 else out

    def short_rate(self, xi):
        """``r = delta0 + delta1' xi`` (batched over leading axes of ``xi``)."""
        x = self._state(xi)
        r = self.delta0 + x @ self.delta1
        return float(r) if np.ndim(r) == 0 else r

    # ------------------------------------------------------------------ prices and yields
    def log_price(self, xi, tau, method: str = "auto"):
        """``log p(tau) = -u(tau)' xi + v(tau)``; shape ``xi.shape[:-1] + (k,)``."""
        x = self._state(xi)
        t, scalar = as_tau(tau)
        u, v = self.loadings(t, method)
        return self._finish(v - x @ u.T, scalar)

    def price(self, xi, tau, method: str = "auto"):
        """Zero-coupon bond price ``p(tau) = exp(-u(tau)' xi + v(tau))``.

        ``xi`` of shape (n,) gives (k,), a batch (m, n) gives (m, k); a scalar ``tau`` drops the
        maturity axis.
        """
        return np.exp(self.log_price(xi, tau, method))

    def yields(self, xi, tau, method: str = "auto"):
        """Continuously compounded zero yields ``y(tau) = (u' xi - v) / tau``.

        Parameters
        ----------
        xi : array_like (n,) or (m, n)
            State vector(s). In a one-factor model a scalar is one state and a vector of length
            ``m != 1`` is a batch of ``m`` states.
        tau : float or array_like (k,)
            Maturities in years; ``tau = 0`` gives the limit ``y(0) = r``.

        Returns
        -------
        ndarray
            Shape (k,) or (m, k) (maturity axis dropped for scalar ``tau``).

        Notes
        -----
        The loadings are computed once per maturity grid; the yields of a batch of states are then
        one matrix product ``xi B' + c``.
        """
        x = self._state(xi)
        t, scalar = as_tau(tau)
        b, c = self.yield_coefficients(t, method)
        # one pass over the output: [xi, 1] @ [B'; c]
        x2 = x.reshape(-1, self.n)
        Xa = np.empty((x2.shape[0], self.n + 1))
        Xa[:, : self.n] = x2
        Xa[:, self.n] = 1.0
        Ba = np.empty((self.n + 1, len(t)))
        Ba[: self.n] = b.T
        Ba[self.n] = c
        out = (Xa @ Ba).reshape(x.shape[:-1] + (len(t),))
        return self._finish(out, scalar)

    def forward(self, xi, tau, method: str = "auto"):
        """Instantaneous forward rate ``f(tau) = -d log p / d tau``.

        Notes
        -----
        ``f = u'(tau) xi - v'(tau) = delta0 + delta1' e^{tau A*} xi + a*' u - 1/2 u'Vu`` with
        ``u' = A*' u + delta1 = e^{tau A*'} delta1``; ``f(0) = r``.
        """
        x = self._state(xi)
        t, scalar = as_tau(tau)
        u, _ = self.loadings(t, method)
        du = u @ self.A_star + self.delta1  # rows: (A*' u + delta1)'
        conv = np.einsum("ki,ij,kj->k", u, self.V, u)
        out = x @ du.T + (self.delta0 + u @ self.a_star - 0.5 * conv)
        return self._finish(out, scalar)

    def short_slope(self, xi):
        """Slope of the yield curve at the short end, ``dy/dtau`` at ``tau = 0``.

        Notes
        -----
        ``u = delta1 tau + A*' delta1 tau^2/2 + O(tau^3)`` and
        ``v = -delta0 tau - a*' delta1 tau^2/2 + O(tau^3)``, so
        ``y(tau) = r + tau/2 delta1'(A* xi + a*) + O(tau^2)``: half the risk-neutral drift of ``r``.
        """
        x = self._state(xi)
        out = 0.5 * (x @ (self.A_star.T @ self.delta1) + self.delta1 @ self.a_star)
        return float(out) if np.ndim(out) == 0 else out

    def u_inf(self) -> np.ndarray:
        """``u(inf) = lim u(tau)``: the limit of the bond-price loadings, when it exists.

        Raises
        ------
        ModelError
            When ``delta1`` loads on a unit-root or explosive mode of ``A*`` (then ``u(tau)``
            grows without bound), naming those eigenvalues.

        Notes
        -----
        With the ordered real Schur form ``A*' = Z [[T11, T12], [0, T22]] Z'`` whose leading block
        ``T11`` holds the stable eigenvalues (real part below ``-tol``, the scale-aware
        :func:`bayesbond.core.linalg.unit_root_tol`), ``w = Z'u`` solves
        ``w2' = T22 w2 + Z2'delta1`` and ``w1' = T11 w1 + T12 w2 + Z1'delta1``. So ``u(tau)``
        converges exactly when ``Z2'delta1 = 0`` (the short rate does not load on the unit-root or
        explosive modes; checked to ``1e-10 ||delta1||``), and then
        ``u(inf) = -Z1 T11^{-1} Z1' delta1`` (``-(A*')^{-1} delta1`` for a stable ``A*``).
        """
        At = self.A_star.T
        tol = linalg.unit_root_tol(At)
        T, Z, k = sla.schur(At, output="real", sort=lambda re, im: re < -tol)
        eig = np.linalg.eigvals(self.A_star)
        c2 = Z[:, k:].T @ self.delta1
        if np.linalg.norm(c2) > 1e-10 * np.linalg.norm(self.delta1):
            bad = ", ".join(f"{z.real:.3g}{z.imag:+.3g}j" for z in eig[eig.real >= -tol])
            raise ModelError(
                "u(inf) and y(inf) do not exist: they need A* stable in the modes the short rate "
                "loads on, but the short rate (delta1) loads on the unit-root or explosive mode(s) "
                f"of A* (eigenvalues {bad} with real part >= 0 up to round-off {tol:.2g}), so "
                "u(tau) grows without bound"
            )
        if k == 0:
            return np.zeros(self.n)
        Z1 = Z[:, :k]
        return -Z1 @ np.linalg.solve(T[:k, :k], Z1.T @ self.delta1)

    def yield_inf(self) -> float:
        """Long-maturity limit of the yield curve (independent of the state).

        Raises
        ------
        ModelError
            When the limit does not exist (see :meth:`u_inf`).

        Notes
        -----
        ``y(inf) = delta0 + u_inf' a* - 1/2 u_inf' V u_inf`` with ``u_inf`` from :meth:`u_inf`
        (``-(A*')^{-1} delta1`` for a stable ``A*``). The limit exists whenever ``u(tau)``
        converges, also with a unit root in ``A*`` that the short rate does not load on (then
        ``v(tau)/tau`` still converges, by Cesaro).
        """
        ui = self.u_inf()
        return float(self.delta0 + ui @ self.a_star - 0.5 * ui @ self.V @ ui)

    def yield_cov_inst(self, tau, method: str = "auto") -> np.ndarray:
        """Instantaneous covariance rate of yield changes across maturities, ``B V B'`` (k, k).

        Notes
        -----
        ``dy(tau_i) = b_i' dxi + ...`` with ``b = u/tau``, so ``d<y_i, y_j>/dt = b_i' V b_j``
        (per year). The matrix has rank at most ``n``.
        """
        b, _ = self.yield_coefficients(tau, method)
        C = b @ self.V @ b.T
        return 0.5 * (C + C.T)

"""Named Gaussian affine models with economically named parameters: Vasicek, EFM(1), EFM(2).

Each is a :class:`~bayesbond.core.affine_base.GaussianAffine` (every generic method applies) that
adds the closed forms its structure admits. The generic loadings switch automatically to the
matrix-exponential route in the defective limits (equal risk-neutral speeds), and the closed forms
here are written with divided differences, which stay exact there too.

References
----------
Vasicek, O. (1977). An equilibrium characterization of the term structure. J. Financ. Econ. 5.
Mayer, M. (2009). The economic factor model (EFM) notes.
Tuckman, B. and Serrat, A. (2012). *Fixed Income Securities*, 3rd ed., ch. 14 (the Gauss+ cascade).
Opitz, G. (1964). Steigungsmatrizen. ZAMM 44 (functions of bidiagonal matrices are divided
differences).
"""

from __future__ import annotations

import numpy as np

from bayesbond.core.affine_base import GaussianAffine
from bayesbond.core.affine_loadings import phi1, phi1_divdiff
from bayesbond.core.affine_model import as_tau
from bayesbond.errors import ModelError

__all__ = ["Vasicek", "EFM1", "EFM2"]


def _positive(name: str, value) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ModelError(f"{name} must be positive and finite, got {value!r}")
    return value


def _finite(name: str, value) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise ModelError(f"{name} must be finite, got {value!r}")
    return value


def _sigma3(Sigma) -> np.ndarray:
    S = np.asarray(Sigma, dtype=float)
    if S.shape == (3,):
        S = np.diag(S)
    if S.shape != (3, 3):
        raise ModelError(f"Sigma must be a 3x3 matrix (or 3 volatilities), got shape {S.shape}")
    return S


class Vasicek(GaussianAffine):
    r"""One-factor Vasicek model.

    Parameters
    ----------
    kappa, theta, sigma : float
        Mean-reversion speed (> 0), long-run mean and volatility (> 0) of the short rate under P.
    lambda_ : float, default 0
        Constant market price of risk (per unit of volatility).

    Notes
    -----
    Under P, ``dr = kappa (theta - r) dt + sigma dW``; with ``dW* = dW - lambda dt`` under P*,
    ``dr = kappa (theta* - r) dt + sigma dW*`` with ``theta* = theta + sigma lambda / kappa``
    (``A = -kappa``, ``a = kappa theta``, ``lambda1 = sigma lambda``). Closed forms (Vasicek 1977):

    * ``u(tau) = B(tau) = (1 - e^{-kappa tau}) / kappa``;
    * ``v(tau) = (theta* - sigma^2/(2 kappa^2)) (B - tau) - sigma^2 B^2 / (4 kappa)``;
    * ``y(inf) = theta* - sigma^2 / (2 kappa^2)``;
    * instantaneous expected excess return of the ``tau``-bond ``B(tau) sigma lambda``.
    """

    def __init__(self, kappa, theta, sigma, lambda_=0.0):
        self.kappa = _positive("kappa", kappa)
        self.theta = _finite("theta", theta)
        self.sigma = _positive("sigma", sigma)
        self.lambda_ = _finite("lambda_", lambda_)
        super().__init__(
            -self.kappa, self.kappa * self.theta, self.sigma, lambda1=self.sigma * self.lambda_
        )

    @property
    def theta_star(self) -> float:
        """Risk-neutral long-run mean ``theta + sigma lambda / kappa``."""
        return self.theta + self.sigma * self.lambda_ / self.kappa

    def closed_form_loadings(self, tau):
        """``(B(tau), v(tau))`` from the closed forms in the class notes."""
        t, scalar = as_tau(tau)
        k, s = self.kappa, self.sigma
        B = t * phi1(-k * t).real
        v = (self.theta_star - s**2 / (2 * k**2)) * (B - t) - s**2 * B**2 / (4 * k)
        return (float(B[0]), float(v[0])) if scalar else (B, v)

    def __repr__(self) -> str:
        return (
            f"Vasicek(kappa={self.kappa:g}, theta={self.theta:g}, sigma={self.sigma:g}, "
            f"lambda_={self.lambda_:g})"
        )


class _Cascade3(GaussianAffine):
    """Shared closed forms of the three-factor models whose ``A*'`` is lower triangular."""

    def _check_star(self, what: str):
        ks = np.array(self.k_star)
        if np.any(ks <= 0):
            raise ModelError(
                f"{what} needs positive risk-neutral speeds, got k* = {ks.round(10).tolist()}"
            )

    def u_closed_form(self, tau) -> np.ndarray:
        """``u(tau)`` in closed form (divided differences of ``F(l) = (e^{l tau} - 1)/l``).

        Exact for coincident speeds (defective ``A*``): the divided differences become
        derivatives. Shape (k, 3).
        """
        t, scalar = as_tau(tau)
        out = self._u_dd(t)
        return out[0] if scalar else out

    @staticmethod
    def _F(t: np.ndarray, *nodes: float) -> np.ndarray:
        """``F[l_0..l_m](tau) = tau^{m+1} phi1[l_0 tau, ..., l_m tau]``."""
        m = len(nodes) - 1
        return t ** (m + 1) * phi1_divdiff(*(ln * t for ln in nodes))


class EFM2(_Cascade3):
    r"""Economic factor model EFM(2): a three-state cascade ``r -> x -> y -> theta``.

    Parameters
    ----------
    k_r, k_x, k_y : float
        Speeds under P: ``r`` reverts to ``x``, ``x`` to ``y``, ``y`` to ``theta``.
    theta : float
        Long-run level of ``y`` (and of ``r`` and ``x``) under P.
    Sigma : array_like (3, 3) or (3,)
        Volatility matrix of ``(r, x, y)``, full (correlated shocks); 3 values give a diagonal.
    l_r, l_x, l_y : float, default 0
        Risk-premium speeds: ``Lambda = [[l_r, -l_r, 0], [0, l_x, -l_x], [0, 0, l_y]]``.
    lambda1 : array_like (3,), optional
        Constant part of the risk premium (drift units).

    Notes
    -----
    Under P (Mayer 2009; the Gauss+ cascade of Tuckman and Serrat)::

        dr = k_r (x - r) dt + (Sigma dW)_1
        dx = k_x (y - x) dt + (Sigma dW)_2
        dy = k_y (theta - y) dt + (Sigma dW)_3

    ``A = [[-k_r, k_r, 0], [0, -k_x, k_x], [0, 0, -k_y]]``, ``a = (0, 0, k_y theta)``. The chosen
    ``Lambda`` keeps the cascade under P*, with speeds ``k_i* = k_i - l_i``::

        dr = (k_r* (x - r) + lambda1_r) dt + (Sigma dW*)_1
        dx = (k_x* (y - x) + lambda1_x) dt + (Sigma dW*)_2
        dy = (k_y theta + lambda1_y - k_y* y) dt + (Sigma dW*)_3

    Closed forms:

    * ``A*'`` is lower bidiagonal with eigenvalues ``-k_r*, -k_x*, -k_y*`` and eigenvectors
      ``(1, k_r*/(k_x*-k_r*), k_r* k_x*/((k_x*-k_r*)(k_y*-k_r*)))``, ``(0, 1, k_x*/(k_y*-k_x*))``,
      ``e3``; it is defective when ``k_r* = k_x*`` or ``k_x* = k_y*`` (:meth:`eigen_A_star_T`).
    * ``(A*')^{-1} = -[[1/k_r*, 0, 0], [1/k_x*, 1/k_x*, 0], [1/k_y*, 1/k_y*, 1/k_y*]]``, so
      ``u(inf) = (1/k_r*, 1/k_x*, 1/k_y*)`` and
      ``y(inf) = delta0 + u_inf'a* - u_inf'V u_inf / 2``.
    * ``u(tau) = (F[l_r], k_r* F[l_r, l_x], k_r* k_x* F[l_r, l_x, l_y])`` with ``l_i = -k_i*`` and
      the divided differences of ``F(l) = (e^{l tau} - 1)/l`` (Opitz 1964), exact in the
      defective limits.
    * Stationary mean under P: ``mu_inf = (theta, theta, theta)``.
    """

    def __init__(self, k_r, k_x, k_y, theta, Sigma, l_r=0.0, l_x=0.0, l_y=0.0, lambda1=None):
        self.k_r, self.k_x, self.k_y = (
            _finite(n, v) for n, v in zip(("k_r", "k_x", "k_y"), (k_r, k_x, k_y), strict=True)
        )
        self.theta = _finite("theta", theta)
        self.l_r, self.l_x, self.l_y = (
            _finite(n, v) for n, v in zip(("l_r", "l_x", "l_y"), (l_r, l_x, l_y), strict=True)
        )
        kr, kx, ky = self.k_r, self.k_x, self.k_y
        A = np.array([[-kr, kr, 0.0], [0.0, -kx, kx], [0.0, 0.0, -ky]])
        Lambda = np.array(
            [[self.l_r, -self.l_r, 0.0], [0.0, self.l_x, -self.l_x], [0.0, 0.0, self.l_y]]
        )
        super().__init__(
            A, [0.0, 0.0, ky * self.theta], _sigma3(Sigma), Lambda=Lambda, lambda1=lambda1
        )

    @property
    def k_star(self) -> tuple[float, float, float]:
        """Risk-neutral speeds ``(k_r*, k_x*, k_y*) = (k_r - l_r, k_x - l_x, k_y - l_y)``."""
        return (self.k_r - self.l_r, self.k_x - self.l_x, self.k_y - self.l_y)

    def A_star_T_inv(self) -> np.ndarray:
        """``(A*')^{-1} = -[[1/k_r*, 0, 0], [1/k_x*, 1/k_x*, 0], [1/k_y*, 1/k_y*, 1/k_y*]]``."""
        kr, kx, ky = self.k_star
        if 0.0 in (kr, kx, ky):
            raise ModelError(f"A* is singular (k* = {self.k_star})")
        return -np.array([[1 / kr, 0.0, 0.0], [1 / kx, 1 / kx, 0.0], [1 / ky, 1 / ky, 1 / ky]])

    def u_inf(self) -> np.ndarray:
        """``u(inf) = (1/k_r*, 1/k_x*, 1/k_y*)`` (needs positive risk-neutral speeds)."""
        self._check_star("u(inf)")
        return 1.0 / np.array(self.k_star)

    def mu_inf(self) -> np.ndarray:
        """Stationary mean under P, ``(theta, theta, theta)`` (needs positive P speeds)."""
        if min(self.k_r, self.k_x, self.k_y) <= 0:
            raise ModelError("the stationary mean needs positive speeds k_r, k_x, k_y")
        return np.full(3, self.theta)

    def eigen_A_star_T(self):
        """Eigenvalues and eigenvectors (columns) of ``A*'`` in closed form.

        Raises :class:`ModelError` in the defective limits ``k_r* = k_x*`` or ``k_x* = k_y*``.
        """
        kr, kx, ky = self.k_star
        if kr == kx or kx == ky or kr == ky:
            raise ModelError(f"A*' is not diagonalisable in closed form for k* = {self.k_star}")
        W = np.array(
            [[1.0, 0.0, 0.0], [kr / (kx - kr), 1.0, 0.0],
             [kr * kx / ((kx - kr) * (ky - kr)), kx / (ky - kx), 1.0]]
        )
        return -np.array([kr, kx, ky]), W

    def eigen_A(self):
        """Eigenvalues and eigenvectors (columns) of the P drift ``A`` in closed form."""
        kr, kx, ky = self.k_r, self.k_x, self.k_y
        if kr == kx or kx == ky or kr == ky:
            raise ModelError(f"A is not diagonalisable in closed form for k = {(kr, kx, ky)}")
        c2 = kx / (kx - ky)
        W = np.array([[1.0, kr / (kr - kx), kr * c2 / (kr - ky)], [0.0, 1.0, c2], [0, 0, 1.0]])
        return -np.array([kr, kx, ky]), W

    def _u_dd(self, t: np.ndarray) -> np.ndarray:
        kr, kx, ky = self.k_star
        lr, lx, ly = -kr, -kx, -ky
        return np.stack(
            [self._F(t, lr), kr * self._F(t, lr, lx), kr * kx * self._F(t, lr, lx, ly)], axis=-1
        )

    def __repr__(self) -> str:
        return (
            f"EFM2(k_r={self.k_r:g}, k_x={self.k_x:g}, k_y={self.k_y:g}, theta={self.theta:g}, "
            f"k*={tuple(round(k, 6) for k in self.k_star)})"
        )


class EFM1(_Cascade3):
    r"""Economic factor model EFM(1): ``r`` reverts to ``x + y``, two independent OU factors.

    Parameters
    ----------
    k_r, k_x, k_y : float
        Speeds under P.
    alpha_x, alpha_y : float
        Long-run means of ``x`` and ``y`` under P.
    Sigma : array_like (3, 3) or (3,)
        Volatility matrix of ``(r, x, y)``; the shocks of ``x`` and ``y`` must be uncorrelated
        (``V[1, 2] = 0``). Three values give a diagonal matrix.
    l_r, l_x, l_y : float, default 0
        Diagonal ``Lambda = diag(l_r, l_x, l_y)``.
    lambda1 : array_like (3,), optional

    Notes
    -----
    Under P (Mayer 2009)::

        dr = k_r (x + y - r) dt + (Sigma dW)_1
        dx = k_x (alpha_x - x) dt + (Sigma dW)_2
        dy = k_y (alpha_y - y) dt + (Sigma dW)_3

    ``A = [[-k_r, k_r, k_r], [0, -k_x, 0], [0, 0, -k_y]]``, ``a = (0, k_x alpha_x, k_y alpha_y)``.
    Under P*, with ``k_i* = k_i - l_i``::

        dr = (k_r (x + y) - k_r* r + lambda1_r) dt + (Sigma dW*)_1
        dx = (k_x alpha_x + lambda1_x - k_x* x) dt + (Sigma dW*)_2
        dy = (k_y alpha_y + lambda1_y - k_y* y) dt + (Sigma dW*)_3

    Closed forms: ``A*' = [[-k_r*, 0, 0], [k_r, -k_x*, 0], [k_r, 0, -k_y*]]`` with eigenvalues
    ``-k_r*, -k_x*, -k_y*`` (defective when ``k_r* = k_x*`` or ``k_r* = k_y*``; eigenvectors in
    :meth:`eigen_A_star_T`, those of ``A`` in :meth:`eigen_A`);
    ``u(inf) = (1/k_r*, k_r/(k_r* k_x*), k_r/(k_r* k_y*))``;
    ``u(tau) = (F[l_r], k_r F[l_r, l_x], k_r F[l_r, l_y])`` with ``l_i = -k_i*``;
    ``mu_inf = (alpha_x + alpha_y, alpha_x, alpha_y)``.
    """

    def __init__(
        self, k_r, k_x, k_y, alpha_x, alpha_y, Sigma, l_r=0.0, l_x=0.0, l_y=0.0, lambda1=None
    ):
        names = ("k_r", "k_x", "k_y", "alpha_x", "alpha_y", "l_r", "l_x", "l_y")
        vals = [
            _finite(n, v)
            for n, v in zip(names, (k_r, k_x, k_y, alpha_x, alpha_y, l_r, l_x, l_y), strict=True)
        ]
        self.k_r, self.k_x, self.k_y, self.alpha_x, self.alpha_y, self.l_r, self.l_x, self.l_y = (
            vals
        )
        S = _sigma3(Sigma)
        V = S @ S.T
        if abs(V[1, 2]) > 1e-14 * np.sqrt(V[1, 1] * V[2, 2]):
            raise ModelError(
                f"EFM1 needs independent x and y: Sigma gives Cov(dx, dy) = {V[1, 2]:.3g} != 0"
            )
        kr, kx, ky = self.k_r, self.k_x, self.k_y
        A = np.array([[-kr, kr, kr], [0.0, -kx, 0.0], [0.0, 0.0, -ky]])
        a = [0.0, kx * self.alpha_x, ky * self.alpha_y]
        super().__init__(A, a, S, Lambda=np.diag([self.l_r, self.l_x, self.l_y]), lambda1=lambda1)

    @property
    def k_star(self) -> tuple[float, float, float]:
        """Risk-neutral speeds ``(k_r - l_r, k_x - l_x, k_y - l_y)``."""
        return (self.k_r - self.l_r, self.k_x - self.l_x, self.k_y - self.l_y)

    def A_star_T_inv(self) -> np.ndarray:
        """``(A*')^{-1}`` in closed form.

        ``-[[1/k_r*, 0, 0], [k_r/(k_r* k_x*), 1/k_x*, 0], [k_r/(k_r* k_y*), 0, 1/k_y*]]``.
        """
        kr_s, kx_s, ky_s = self.k_star
        if 0.0 in (kr_s, kx_s, ky_s):
            raise ModelError(f"A* is singular (k* = {self.k_star})")
        kr = self.k_r
        return -np.array(
            [[1 / kr_s, 0.0, 0.0], [kr / (kr_s * kx_s), 1 / kx_s, 0.0],
             [kr / (kr_s * ky_s), 0.0, 1 / ky_s]]
        )

    def u_inf(self) -> np.ndarray:
        """``u(inf) = (1/k_r*, k_r/(k_r* k_x*), k_r/(k_r* k_y*))``."""
        self._check_star("u(inf)")
        kr_s, kx_s, ky_s = self.k_star
        return np.array([1 / kr_s, self.k_r / (kr_s * kx_s), self.k_r / (kr_s * ky_s)])

    def eigen_A_star_T(self):
        """Eigenvalues and eigenvectors (columns) of ``A*'`` in closed form.

        Eigenvectors ``(1, k_r/(k_x*-k_r*), k_r/(k_y*-k_r*))``, ``e2``, ``e3``; raises
        :class:`ModelError` in the defective limits ``k_r* = k_x*`` or ``k_r* = k_y*``.
        """
        kr_s, kx_s, ky_s = self.k_star
        if kr_s in (kx_s, ky_s):
            raise ModelError(f"A*' is not diagonalisable for k* = {self.k_star} (k_r* repeated)")
        kr = self.k_r
        W = np.array([[1.0, 0.0, 0.0], [kr / (kx_s - kr_s), 1.0, 0.0], [kr / (ky_s - kr_s), 0, 1]])
        return -np.array([kr_s, kx_s, ky_s]), W

    def eigen_A(self):
        """Eigenvalues and eigenvectors (columns) of the P drift ``A`` in closed form.

        Eigenvectors ``e1``, ``(k_r/(k_r-k_x), 1, 0)``, ``(k_r/(k_r-k_y), 0, 1)``.
        """
        kr, kx, ky = self.k_r, self.k_x, self.k_y
        if kr in (kx, ky):
            raise ModelError(f"A is not diagonalisable for k = {(kr, kx, ky)} (k_r repeated)")
        W = np.array([[1.0, kr / (kr - kx), kr / (kr - ky)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        return -np.array([kr, kx, ky]), W

    def mu_inf(self) -> np.ndarray:
        """Stationary mean under P, ``(alpha_x + alpha_y, alpha_x, alpha_y)``."""
        if min(self.k_r, self.k_x, self.k_y) <= 0:
            raise ModelError("the stationary mean needs positive speeds k_r, k_x, k_y")
        return np.array([self.alpha_x + self.alpha_y, self.alpha_x, self.alpha_y])

    def _u_dd(self, t: np.ndarray) -> np.ndarray:
        kr_s, kx_s, ky_s = self.k_star
        lr, lx, ly = -kr_s, -kx_s, -ky_s
        kr = self.k_r
        return np.stack([self._F(t, lr), kr * self._F(t, lr, lx), kr * self._F(t, lr, ly)], axis=-1)

    def __repr__(self) -> str:
        return (
            f"EFM1(k_r={self.k_r:g}, k_x={self.k_x:g}, k_y={self.k_y:g}, "
            f"alpha_x={self.alpha_x:g}, alpha_y={self.alpha_y:g})"
        )

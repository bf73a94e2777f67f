"""Result of :func:`bayesbond.affine_ml` and the derived curves (term premia, excess returns)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg as sla

__all__ = ["AffineMLResult", "CurveMLResult", "eh_yields", "factor_names", "PARAM_NAMES"]

PARAM_NAMES = ("A", "a", "Sigma", "A_star", "a_star", "Lambda", "lambda1", "delta0", "delta1",
               "lam_star", "lam_star_imag", "k_inf", "sigma_e")  # fmt: skip


def factor_names(n: int) -> list[str]:
    """Labels of the portfolio states: level, slope, curvature, then pc4, pc5, ..."""
    base = ["level", "slope", "curvature"]
    return [base[i] if i < 3 else f"pc{i + 1}" for i in range(n)]


def eh_yields(A, a, delta0, delta1, X, tau):
    """Expectations-hypothesis yields ``(1/tau) int_0^tau E^P_t[r_{t+s}] ds`` for states ``X``.

    Parameters
    ----------
    A, a : P drift of the states; delta0, delta1 : short rate ``r = delta0 + delta1'X``.
    X : array (T, n) of states.
    tau : array (m,) maturities in years.

    Returns
    -------
    ndarray (T, m)

    Notes
    -----
    ``E^P_t[X_{t+s}] = e^{sA} X_t + (int_0^s e^{wA} dw) a``, so
    ``int_0^tau E[X_{t+s}] ds = J1(tau) X_t + J2(tau) a`` with ``J1 = int_0^tau e^{sA} ds`` and
    ``J2 = int_0^tau int_0^s e^{wA} dw ds``, read off the block exponential
    ``expm(tau [[A, I, 0], [0, 0, I], [0, 0, 0]])`` (Van Loan 1978; exact for singular ``A``).
    """
    A = np.asarray(A, float)
    n = A.shape[0]
    tau = np.asarray(tau, float)
    M = np.zeros((3 * n, 3 * n))
    M[:n, :n] = A
    M[:n, n : 2 * n] = np.eye(n)
    M[n : 2 * n, 2 * n :] = np.eye(n)
    E = sla.expm(tau[:, None, None] * M[None])
    J1 = E[:, :n, n : 2 * n]
    J2 = E[:, :n, 2 * n :]
    d1 = np.asarray(delta1, float)
    slope = np.einsum("i,mij->mj", d1, J1)  # (m, n)
    const = np.einsum("i,mij,j->m", d1, J2, np.asarray(a, float))
    X = np.asarray(X, float)
    return delta0 + (X @ slope.T + const) / tau


class CurveMLResult:
    """Base of the maximum-likelihood fits of a term-structure model to a yield panel.

    Holds what every curve fit reports (the parameters ``param_names`` as attributes, the
    unconstrained estimate ``theta_raw`` and its covariance, standard errors, states) and derives
    the curves from them: fitted yields, residuals, term premia and expected excess returns.
    A subclass names its parameters (``param_names``) and may override :meth:`model_yields`,
    :meth:`to_model` (the fitted model, with ``yields(states, tau)``) and :meth:`_label`.

    Notes
    -----
    With states ``X_t``, loadings ``y(tau) = d + Z X``, P drift ``A X + a`` and short rate
    ``r = delta0 + delta1'X``: term premium ``y(tau) - (1/tau) int_0^tau E^P_t[r_{t+s}] ds``
    (:func:`eh_yields`); expected excess return ``u(tau)'(Lambda X_t + lambda1)`` with
    ``u(tau) = tau Z(tau)'``.

    Attributes
    ----------
    params : dict, every parameter and state-space matrix of ``spec.model(theta_raw)``.
    theta_raw, cov_theta : the unconstrained estimate and its covariance (``None`` without SE).
    se : dict of standard errors with the keys and shapes of the parameters (``None`` without).
    loglik : float; n_obs : number of observed yields; converged : bool.
    states, filtered_states : DataFrame (date x state), smoothed and filtered.
    yields : DataFrame (date x maturity), the data.
    maturities, dt : fitted maturities and the step in years; W : portfolio weights or ``None``.
    starts : list of dict, the starting points tried and the likelihood each reached.
    failed_starts : list of dict, starting points that failed and were dropped (keys ``start``,
        ``stage``, ``reason`` and the start's own keys); empty when all succeeded.
    """

    param_names: tuple = ()

    def __init__(
        self, *, params, theta, cov_theta, se, loglik, spec, states, filtered_states, yields,
        n_obs, converged, method="kalman", starts=(), failed_starts=(),
    ):  # fmt: skip
        vars(self).update(
            params=params, theta_raw=theta, cov_theta=cov_theta, se=se, loglik=float(loglik),
            spec=spec, method=method, states=states, filtered_states=filtered_states,
            yields=yields, n_obs=n_obs, converged=converged, starts=list(starts),
            failed_starts=list(failed_starts), maturities=np.asarray(spec.tau), dt=spec.dt,
            W=getattr(spec, "W", None),
            **{k: params[k] for k in ("delta0", "delta1", *self.param_names)},
        )  # fmt: skip

    def _repr_parts(self) -> list:
        return [f"dates={len(self.states)}"]

    def __repr__(self) -> str:
        rmse = 1e4 * float(np.sqrt(np.nanmean(self.residuals.to_numpy() ** 2)))
        parts = [*self._repr_parts(), f"loglik={self.loglik:.2f}", f"rmse_bp={rmse:.2f}"]
        return f"{type(self).__name__}({', '.join(parts)})"

    # ---------------------------------------------------------------- curves
    def model_yields(self, states, tau=None) -> np.ndarray:
        """Model yields at the given states, at the fitted or any other maturities.

        Parameters
        ----------
        states : array_like (n,) or (m, n)
            States (the portfolios ``P`` of the canonical model).
        tau : array_like (k,), optional
            Maturities in years (>= 0); default the fitted ones.

        Returns
        -------
        ndarray (k,) or (m, k)

        Notes
        -----
        At the fitted maturities ``y = d + Z P``. Elsewhere the portfolio-coordinate model
        (``A*``, ``a*``, ``Sigma``, ``delta0``, ``delta1``, see :meth:`to_model`) prices the bonds
        exactly, ``y(tau) = (u(tau)' P - v(tau)) / tau`` (the portfolio weights ``W`` belong to the
        fitted maturities, so the canonical rotation cannot be re-evaluated at others).
        """
        X = np.asarray(states, float)
        if tau is None:
            return self.params["d"] + X @ self.params["Z"].T
        return self.to_model().yields(X, np.asarray(tau, float))

    @property
    def fitted(self) -> pd.DataFrame:
        """Fitted yields (date x maturity) at the smoothed states."""
        return pd.DataFrame(self.model_yields(self.states.to_numpy()), index=self.states.index,
                            columns=self.yields.columns)  # fmt: skip

    @property
    def residuals(self) -> pd.DataFrame:
        """Observed minus fitted yields."""
        return self.yields - self.fitted

    @property
    def rmse(self) -> pd.Series:
        """Root-mean-square fitting error per maturity (decimals)."""
        r = self.residuals
        return np.sqrt((r**2).mean(axis=0)).rename("rmse")

    @property
    def term_premia(self) -> pd.DataFrame:
        """Model yield minus the expectations-hypothesis yield under P (date x maturity)."""
        X = self.states.to_numpy()
        eh = eh_yields(self.A, self.a, self.delta0, self.delta1, X, self.maturities)
        return pd.DataFrame(
            self.model_yields(X) - eh, index=self.states.index, columns=self.yields.columns
        )

    @property
    def expected_excess_returns(self) -> pd.DataFrame:
        """Instantaneous expected excess return of zero bonds, ``u(tau)'(Lambda P + lambda1)``."""
        X = self.states.to_numpy()
        U = self.maturities[:, None] * self.params["Z"]  # u(tau) in the portfolio coordinates
        prem = X @ self.Lambda.T + self.lambda1
        return pd.DataFrame(prem @ U.T, index=self.states.index, columns=self.yields.columns)

    def to_model(self):
        """The fitted model as a :class:`bayesbond.GaussianAffine` (states = its own)."""
        from bayesbond.core.affine import GaussianAffine

        return GaussianAffine(self.A, self.a, self.Sigma, Lambda=self.Lambda,
                              lambda1=self.lambda1, delta0=self.delta0, delta1=self.delta1)

    # ---------------------------------------------------------------- tables
    def _label(self, k, idx, value, se):
        """Row label of ``params[k][idx]`` in :meth:`summary` (``None``: left out)."""
        if len(idx) == 0:
            return k
        names = [str(s) for s in self.states.columns]
        return f"{k}[{','.join(names[i] for i in idx)}]"

    def summary(self) -> pd.DataFrame:
        """One row per scalar parameter: estimate, standard error and z-value."""
        rows = []
        for k in self.param_names:
            val = np.asarray(self.params[k], float)
            se = None if self.se is None else np.asarray(self.se[k], float)
            for idx in np.ndindex(val.shape):
                s = np.nan if se is None else float(se[idx])
                label = self._label(k, idx, val[idx], s)
                if label is not None:
                    rows.append((label, float(val[idx]), s))
        df = pd.DataFrame(rows, columns=["parameter", "estimate", "se"]).set_index("parameter")
        df["z"] = df["estimate"] / df["se"]
        return df


class AffineMLResult(CurveMLResult):
    """Maximum-likelihood fit of the canonical Gaussian affine model (see :func:`affine_ml`).

    Attributes
    ----------
    A, a, Sigma : P dynamics ``dP = (A P + a) dt + Sigma dW`` of the portfolio states.
    A_star, a_star : risk-neutral dynamics; ``Lambda = A_star - A``, ``lambda1 = a_star - a``.
    delta0, delta1 : short rate ``r = delta0 + delta1'P``.
    lam_star, lam_star_imag : real parts and absolute imaginary parts of the eigenvalues of
        ``A_star`` (ordered; the two fastest may be a complex pair or repeated).
    k_inf : canonical P* drift of the slowest latent factor.
    sigma_e : (p,) measurement-error standard deviations.
    W : (n, p) portfolio weights defining the states.
    theta : the unconstrained estimate (:class:`~bayesbond.baselines.affine_ml.AffineSpec`).
    states, filtered_states, fitted, residuals, rmse, term_premia, expected_excess_returns,
    loglik, se, starts, failed_starts : see :class:`CurveMLResult` (``failed_starts`` carries
        ``eig_start``, the P* eigenvalues a failed start began from).
    """

    param_names = PARAM_NAMES

    @property
    def theta(self) -> np.ndarray:
        """The unconstrained estimate (same as ``theta_raw``)."""
        return self.theta_raw

    def _repr_parts(self) -> list:
        return [f"n_factors={self.spec.n}", f"maturities={len(self.maturities)}",
                f"dates={len(self.states)}", f"method={self.method!r}"]  # fmt: skip

    def _label(self, k, idx, value, se):
        if k == "sigma_e":
            if self.spec.n_sig == 1:
                return "sigma_e" if idx[0] == 0 else None
            return f"{k}[{self.maturities[idx[0]]:g}]"
        if k.startswith("lam_star"):
            return f"{k}[{idx[0] + 1}]"
        return super()._label(k, idx, value, se)

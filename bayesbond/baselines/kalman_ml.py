"""Shared maximum-likelihood skeleton (:class:`KalmanML`) of the Kalman-filter estimators
(:func:`~bayesbond.baselines.affine_ml.affine_ml`, :func:`~bayesbond.baselines.efm2_ml.efm2_ml`)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from scipy import optimize
from threadpoolctl import threadpool_limits

from bayesbond.core.kalman import kalman_filter, kalman_loglik, kalman_smoother
from bayesbond.core.numdiff import delta_method_se, num_gradient, num_hessian
from bayesbond.core.ou import exact_transition
from bayesbond.errors import ConvergenceWarning, ModelError

__all__ = ["KalmanML", "filter_yields", "inverse_information", "loglik_yields", "safe_nll",
           "precondition"]

#: errors that make a starting point fail (it is dropped and reported) rather than the fit
START_ERRORS = (np.linalg.LinAlgError, ModelError, ValueError, FloatingPointError, OverflowError)
#: value of the scaled negative log-likelihood at inadmissible parameters
BAD_NLL = 1e10


def safe_nll(loglik, theta, T) -> float:
    """``-loglik(theta) / T``, or ``BAD_NLL`` where the parameters are not admissible (the
    likelihood raises or is not finite)."""
    with np.errstate(all="ignore"):
        try:
            v = loglik(theta)
        except (ModelError, np.linalg.LinAlgError, ValueError):
            return BAD_NLL
    return -v / T if np.isfinite(v) else BAD_NLL


def precondition(H) -> np.ndarray:
    """Factor ``C`` with ``C C' = H^-1`` (diagonal scaling when ``H`` is not positive definite).

    Notes
    -----
    In ``z = C^-1 (theta - theta_1)`` a quadratic objective with Hessian ``H`` has Hessian
    ``C' H C = I``: L-BFGS then sees a well-conditioned problem.
    """
    try:
        return np.linalg.cholesky(np.linalg.inv(H))
    except np.linalg.LinAlgError:
        return np.diag(1.0 / np.sqrt(np.clip(np.abs(np.diag(H)), 1e-8, None)))


def inverse_information(info, who: str, stacklevel: int = 3):
    """Covariance of the estimates from the observed information matrix ``info``.

    Its inverse when ``info`` is positive definite; otherwise the pseudo-inverse, with a
    :class:`~bayesbond.errors.ConvergenceWarning` naming ``who``.
    """
    try:
        np.linalg.cholesky(info)
        return np.linalg.inv(info)
    except np.linalg.LinAlgError:
        warnings.warn(f"{who}: observed information is not positive definite; standard errors "
                      "use its pseudo-inverse", ConvergenceWarning, stacklevel=stacklevel)
        return np.linalg.pinv(info)


def loglik_yields(Y, par, dt, initial_state=None) -> float:
    """The log-likelihood of :func:`filter_yields` alone (:func:`~bayesbond.core.kalman.
    kalman_loglik`: a compiled loop when every yield is observed), for the optimiser."""
    Phi, c, Q = exact_transition(par["A"], par["a"], par["V"], dt)
    x0, P0 = (None, None) if initial_state is None else initial_state(Phi, c, Q)
    return kalman_loglik(Y, Phi, c, Q, par["Z"], par["d"], par["sigma_e"] ** 2, x0, P0)


def filter_yields(Y, par, dt, initial_state=None):
    """Kalman filter of the yields ``Y`` at the parameters ``par`` (a ``spec.model`` dict).

    Notes
    -----
    ``xi_{t+1} = c + Phi xi_t + eta``, ``eta ~ N(0, Q)``, with ``(Phi, c, Q)`` the exact OU
    transition of ``dxi = (A xi + a) dt + chol(V) dW`` over ``dt``;
    ``y_t = d + Z xi_t + eps_t``, ``eps ~ N(0, diag(sigma_e^2))``; the first state from
    ``initial_state(Phi, c, Q) -> (x0, P0)`` (default: the stationary distribution).
    """
    Phi, c, Q = exact_transition(par["A"], par["a"], par["V"], dt)
    x0, P0 = (None, None) if initial_state is None else initial_state(Phi, c, Q)
    return kalman_filter(Y, Phi, c, Q, par["Z"], par["d"], par["sigma_e"] ** 2, x0, P0)


class KalmanML:
    """Base of the Kalman-filter maximum-likelihood estimators (one fit per instance).

    A subclass describes one model; the base fits it. The subclass supplies:

    - ``name`` (for messages) and ``param_names``: the reported parameters, keys of
      ``spec.model(theta)``, in the order of the result and of its standard errors;
    - ``spec``: an object with ``size`` and ``model(theta) -> dict`` (the parameters on their
      natural scale plus the state-space matrices ``A, a, V`` of the P dynamics
      ``dxi = (A xi + a) dt + chol(V) dW`` and the measurement ``y = d + Z xi``), built from an
      unconstrained, well-scaled vector ``theta`` (its ``pack``/``unpack`` are the transform and
      untransform of statsmodels' ``MLEModel``);
    - :meth:`loglik` (``theta -> float``, the exact log-likelihood);
    - :meth:`start_params`: a list of ``(theta_0, info)`` starting points, ``info`` a dict
      describing the start (kept in the result's ``starts``, and in ``failed_starts`` when the
      start fails);
    - :meth:`make_result` (the fields below -> the result object).

    It may override :meth:`start_loglik` and ``start_bounds`` (a cheaper likelihood and bounds
    for the multistart stage), :meth:`refine`, :meth:`admissible`, ``initial_state(Phi, c, Q)
    -> (x0, P0)`` (default ``None``: stationary), :meth:`smooth` and :meth:`check_estimate`.
    ``Model(...).fit(se=True)`` then runs, with BLAS on one thread:

    1. every start: L-BFGS-B on ``-start_loglik / T`` (a start whose likelihood raises or is
       inadmissible everywhere is dropped, reported in ``failed_starts`` and warned about);
    2. :meth:`refine` from the best start (default: a Newton check, see there);
    3. the observed information ``I = T H`` (``H`` the numerical Hessian of ``-loglik / T``)
       and ``cov(theta) = I^-1``; standard errors of every reported parameter by the delta
       method (:func:`~bayesbond.core.numdiff.delta_method_se`);
    4. the smoothed and filtered states (Rauch-Tung-Striebel) at the estimate.

    Parameters
    ----------
    Y, tau, dates, dt : yields (T, p) with ``NaN`` = missing, maturities (p,) and dates (T,),
        years between observations (see :func:`~bayesbond.baselines.affine_ml.prepare_yields`).
    n_starts, maxiter : number of starting points asked for; L-BFGS iterations per maximisation.

    Notes
    -----
    The objective is ``f(theta) = -log L(theta) / T`` (of order one). The preconditioned pass
    minimises ``f(theta_1 + C z)`` from ``z = 0`` with ``C C' = H^-1`` (:func:`precondition`):
    the Hessian in ``z`` is the identity at ``theta_1``. The delta method gives
    ``se(g(theta)) = sqrt(diag(J cov J'))``, ``J`` the Jacobian of ``g = spec.model`` by
    central differences.
    """

    name, initial_state, start_bounds = "kalman_ml", None, None
    start_stage = "likelihood"
    param_names: tuple = ()
    state_names: tuple = ()
    spec = None

    def __init__(self, Y, tau, dates, dt, *, n_starts=3, maxiter=3000):
        self.Y, self.tau = np.asarray(Y, float), np.asarray(tau, float)
        self.dates, self.dt = dates, float(dt)
        self.T, self.n_starts, self.maxiter = self.Y.shape[0], max(1, int(n_starts)), int(maxiter)
        self.failed, self.log = [], logging.getLogger(f"bayesbond.{self.name}")

    # supplied by the subclass: loglik(theta) -> float (exact log-likelihood of the data),
    # start_params() -> [(theta_0, info dict)] (best first), make_result(**fields of fit())
    # optional hooks (defaults: as below)
    def start_loglik(self, theta) -> float:  # log-likelihood of the multistart stage
        return self.loglik(theta)

    def admissible(self, theta) -> bool:  # region of the preconditioned pass
        return True

    def check_estimate(self, theta) -> None:  # warnings about the estimate
        pass

    def describe_start(self, f) -> str:  # label of a failed start in messages
        return f"start {f['start']}"

    def nll(self, theta) -> float:
        """``-loglik(theta) / T`` (``BAD_NLL`` where inadmissible)."""
        return safe_nll(self.loglik, theta, self.T)

    def start_nll(self, theta) -> float:
        return safe_nll(self.start_loglik, theta, self.T)

    def minimize(self, f, x0, bounds=None):
        """L-BFGS-B (numerical gradients) with ``maxiter`` iterations and ``50 maxiter``
        evaluations."""
        return optimize.minimize(
            f, x0, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": self.maxiter, "maxfun": 50 * self.maxiter},
        )  # fmt: skip

    def preconditioned(self, f, x1, C):
        """Minimise ``f(x1 + C z)`` from ``z = 0`` (``BAD_NLL`` outside :meth:`admissible`);
        returns the optimiser result with ``x`` mapped back to ``theta``."""

        def fz(z):
            th = x1 + C @ z
            return f(th) if self.admissible(th) else BAD_NLL

        res = self.minimize(fz, np.zeros(len(x1)))
        res.x = x1 + C @ res.x
        return res

    # ------------------------------------------------------------------------- stages
    def multistart(self, starts):
        """Maximise :meth:`start_loglik` from every start; returns the best optimiser result and
        the list of ``(info, result)`` of the starts that succeeded."""
        bounds, best, runs = self.start_bounds, None, []
        for th0, info in starts:
            try:
                res = self.minimize(self.start_nll, th0, bounds)
                why = None if np.isfinite(res.fun) and res.fun < BAD_NLL else (
                    "no admissible parameters near this start")  # fmt: skip
            except START_ERRORS as e:
                why = f"{type(e).__name__}: {e}"
            if why is not None:
                self.failed.append({**info, "stage": self.start_stage, "reason": why})
                continue
            self.log.debug("start %s: %s nit=%d nfev=%d loglik=%.3f",
                           info, res.message, res.nit, res.nfev, -res.fun * self.T)  # fmt: skip
            runs.append((info, res))
            if best is None or res.fun < best.fun:
                best = res
        if best is None:
            raise ModelError(f"{self.name}: every starting point failed: " + "; ".join(
                f"{self.describe_start(f)}: {f['reason']}" for f in self.failed))  # fmt: skip
        if self.failed:
            warnings.warn(
                f"{self.name}: {len(self.failed)} of {self.n_starts} starting points failed and "
                "were dropped (see result.failed_starts): "
                + "; ".join(f"start {f['start']}: {f['reason']}" for f in self.failed),
                ConvergenceWarning, stacklevel=4)  # fmt: skip
        return best, runs

    def refine(self, best):
        """Newton check at the best start, and a preconditioned pass when it promises a gain.

        Returns ``(result, H)``: the final optimiser result and the Hessian of :meth:`nll` at
        its ``x`` (``None``: to be computed).

        Notes
        -----
        With ``g`` and ``H`` the numerical gradient and Hessian of ``f = -log L / T``, a Newton
        step would raise ``log L`` by ``T g'H^-1 g / 2``. When that exceeds ``1e-3`` (or ``H``
        is not positive definite) :meth:`preconditioned` runs from the best start with
        ``C C' = H^-1``, and its result is kept when it is no worse.
        """
        H = num_hessian(self.nll, best.x)
        try:
            z = np.linalg.solve(np.linalg.cholesky(H), num_gradient(self.nll, best.x))
            gain = 0.5 * float(z @ z) * self.T
        except np.linalg.LinAlgError:
            gain = np.inf
        self.log.debug("Newton gain at the optimum: %.3g", gain)
        if gain > 1e-3:
            res = self.preconditioned(self.nll, best.x, precondition(H))
            self.log.debug("preconditioned pass: %s nit=%d loglik=%.3f (was %.3f)",
                           res.message, res.nit, -res.fun * self.T, -best.fun * self.T)  # fmt: skip
            if res.fun <= best.fun:
                return res, None
        return best, H

    def standard_errors(self, theta, cov_theta) -> dict:
        """Delta-method standard errors of ``param_names``, each with its parameter's shape."""
        par = self.spec.model(theta)

        def flat(th):
            p = self.spec.model(th)
            return np.concatenate([np.ravel(p[k]) for k in self.param_names])

        sd = delta_method_se(flat, theta, cov_theta)
        parts = np.split(sd, np.cumsum([np.size(par[k]) for k in self.param_names])[:-1])
        return {
            k: float(v[0]) if np.ndim(par[k]) == 0 else v.reshape(np.shape(par[k]))
            for k, v in zip(self.param_names, parts, strict=True)
        }

    def smooth(self, par):
        """Smoothed and filtered states ``(T, n)`` at the parameters ``par``."""
        kf = filter_yields(self.Y, par, self.dt, self.initial_state)
        return kalman_smoother(kf)[0], kf.x_filt

    def fit(self, se: bool = True):
        """Estimate: multistart, :meth:`refine`, information, delta method, smoother.

        Returns :meth:`make_result` of the fields ``params, theta, cov_theta, se, loglik,
        spec, states, filtered_states, yields, n_obs, converged, starts, failed_starts``.
        """
        # tiny matrices: BLAS threads only contend (10x slower)
        with threadpool_limits(1, user_api="blas"):
            best, runs = self.multistart(self.start_params())
            best, H = self.refine(best)
            theta = best.x
            if not best.success:
                warnings.warn(f"{self.name}: optimiser stopped: {best.message}",
                              ConvergenceWarning, stacklevel=3)  # fmt: skip
            self.check_estimate(theta)
            cov_theta = ses = None
            if se:
                H = num_hessian(self.nll, theta) if H is None else H
                cov_theta = inverse_information(H * self.T, self.name, stacklevel=4)
                ses = self.standard_errors(theta, cov_theta)
            par = self.spec.model(theta)
            xs, xf = self.smooth(par)
        idx = self.dates.rename("date")
        cols = pd.Index(list(self.state_names), name="state")
        return self.make_result(
            params=par, theta=theta, cov_theta=cov_theta, se=ses, loglik=-best.fun * self.T,
            spec=self.spec, states=pd.DataFrame(xs, index=idx, columns=cols),
            filtered_states=pd.DataFrame(xf, index=idx, columns=cols),
            yields=pd.DataFrame(self.Y, index=idx, columns=pd.Index(self.tau, name="maturity")),
            n_obs=int(np.isfinite(self.Y).sum()), converged=bool(best.success), runs=runs,
            failed_starts=self.failed,
        )  # fmt: skip

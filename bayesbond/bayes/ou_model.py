"""Bayesian Ornstein-Uhlenbeck model in PyMC with the exact transition likelihood.

``dxi = (A xi + a) dt + Sigma dW`` observed at discrete times. The likelihood is the exact Gaussian
VAR(1) of the discretisation (no Euler error), written without a per-step node or scan:

- 1-D, regular steps: the AR(1) likelihood through five sufficient statistics (O(1) per gradient);
- 1-D, irregular steps: one vectorised expression over the steps;
- n-D, regular steps: ``Phi``, ``c`` and ``Q`` from two matrix exponentials (augmented and Van
  Loan) and the likelihood through the second-moment sufficient statistics (O(n^3) per gradient),
  with an analytic gradient (adjoint Frechet derivative of the exponential) in one compact Op, so
  the sampler compiles no matrix-exponential graph.

Parameter names follow :func:`bayesbond.ou_ml`: ``kappa``, ``theta``, ``sigma`` in 1-D and ``A``,
``a``, ``Sigma`` (lower Cholesky factor of ``V``) in n-D, so ML and posterior line up.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.bayes.base import BayesianModel
from bayesbond.bayes.registry import OU_PRIOR_KEYS_1D, OU_PRIOR_KEYS_ND
from bayesbond.core import linalg
from bayesbond.core.ou import as_observations, as_steps, phi1, transition_loglik
from bayesbond.errors import DataError, SpecError

__all__ = ["OUModel", "OUStats", "ar1_loglik_pt", "ou_loglik_grad", "ou_loglik_op"]

A_STRUCTURES = ("full", "diagonal", "lower", "upper")
PRIOR_KEYS_1D = OU_PRIOR_KEYS_1D
PRIOR_KEYS_ND = OU_PRIOR_KEYS_ND


# ----------------------------------------------------------------------------- pytensor likelihoods
def ar1_loglik_pt(kappa, theta, sigma, u, dt, stationary_init=False, wrap=None):
    """Exact 1-D OU log-likelihood as a PyTensor expression.

    Parameters
    ----------
    kappa, theta, sigma : scalar tensors
        ``theta`` in the units of ``u`` (the caller centres the data).
    u : ndarray (T,)
        Observations (numpy; a regular grid is reduced to sufficient statistics).
    dt : float or ndarray (T - 1,)
    stationary_init : bool
        Add ``log N(u_0; theta, sigma^2 / (2 kappa))``.
    wrap : callable ``(name, value) -> tensor``, optional
        Turns each data-derived number (statistics, increments, steps) into a tensor, e.g. a
        named ``pm.Data`` container so that a refit on new data reuses the compile (default:
        constants).

    Notes
    -----
    With ``g = 1 - e^{-kappa dt}``, ``Delta_i = u_i - u_{i-1}`` and ``z_i = u_{i-1}``, the residual
    of the exact AR(1) is ``e_i = Delta_i + g (z_i - theta)`` and its variance
    ``q = sigma^2 (1 - e^{-2 kappa dt}) / (2 kappa)``. On a regular grid
    ``sum e_i^2 = S_DD + 2 g (S_Dz - theta S_D) + g^2 (S_zz - 2 theta S_z + N theta^2)``, so the
    likelihood needs only ``S_DD, S_Dz, S_zz, S_D, S_z`` (written in increments to avoid the
    cancellation of ``sum y^2 - ...`` when ``kappa dt`` is small).
    """
    import pytensor.tensor as pt

    if wrap is None:
        def wrap(name, value):
            return value
    u = np.asarray(u, dtype=float)
    D, z = np.diff(u), u[:-1]
    N = len(D)
    d0 = np.asarray(dt, dtype=float)
    d = wrap("dt", d0)
    g = -pt.expm1(-kappa * d)
    q = sigma**2 * (-pt.expm1(-2.0 * kappa * d)) / (2.0 * kappa)
    if d0.ndim == 0:
        S_DD, S_Dz, S_zz, S_D, S_z = (
            wrap(k, np.asarray(v)) for k, v in zip(
                ("S_DD", "S_Dz", "S_zz", "S_D", "S_z"),
                (D @ D, D @ z, z @ z, D.sum(), z.sum()), strict=True))
        rss = S_DD + 2.0 * g * (S_Dz - theta * S_D) + g**2 * (S_zz - 2.0 * theta * S_z
                                                               + N * theta**2)
        ll = -0.5 * N * pt.log(2.0 * np.pi * q) - 0.5 * rss / q
    else:
        e = wrap("D", D) + g * (wrap("z", z) - theta)
        ll = pt.sum(-0.5 * pt.log(2.0 * np.pi * q) - 0.5 * e**2 / q)
    if stationary_init:
        p = sigma**2 / (2.0 * kappa)
        ll = ll - 0.5 * pt.log(2.0 * np.pi * p) - 0.5 * (wrap("u0", u[0]) - theta) ** 2 / p
    return ll


class OUStats:
    """Second-moment sufficient statistics of a regularly observed n-D series.

    With ``Delta_i = x_i - x_{i-1}`` and ``z_i = x_{i-1}`` (i = 1..N): ``S_DD = sum Delta Delta'``,
    ``S_Dz = sum Delta z'``, ``S_zz = sum z z'``, ``s_D = sum Delta``, ``s_z = sum z``, and ``x0``.
    """

    def __init__(self, X):
        X = np.asarray(X, dtype=float)
        D, Z = np.diff(X, axis=0), X[:-1]
        self.N = len(D)
        self.n = X.shape[1]
        self.S_DD, self.S_Dz, self.S_zz = D.T @ D, D.T @ Z, Z.T @ Z
        self.s_D, self.s_z = D.sum(0), Z.sum(0)
        self.x0 = X[0].copy()


def ou_loglik_grad(A, a, V, stats: OUStats, dt: float, stationary_init: bool = False):
    """Exact n-D OU log-likelihood on a regular grid and its gradient with respect to (A, a, V).

    Parameters
    ----------
    A, a, V : ndarray (n, n), (n,), (n, n)
    stats : OUStats
    dt : float
    stationary_init : bool
        Add ``log N(x_0; mu, P)``, ``mu = -A^{-1} a``, ``A P + P A' + V = 0``.

    Returns
    -------
    (ll, dA, da, dV)
        ``-inf`` and zero gradients where ``Q`` (or ``P``) is not positive definite.

    Notes
    -----
    Value: ``e_i = Delta_i - G z_i - c`` with ``G = Phi - I`` has the cross-product
    ``S = S_DD - S_Dz G' - G S_Dz' + G S_zz G' - r c' - c r' + N c c'``, ``r = s_D - G s_z``, and
    ``ll = -N/2 (n log 2 pi + log det Q) - tr(Q^{-1} S)/2`` (Hamilton 1994, ch. 11).
    ``Phi, c`` come from ``E1 = expm(dt [[A, a], [0, 0]])``, ``Q = F22' F12`` from Van Loan's
    ``E2 = expm(dt [[-A, V], [0, A']])``.

    Gradient (reverse mode): with ``W = -Q^{-1}/2``, ``dll/dG = 2 W (G S_zz - S_Dz + c s_z')``,
    ``dll/dc = 2 W (N c - r)``, ``dll/dQ = (Q^{-1} S Q^{-1} - N Q^{-1})/2``; through ``Q`` to
    ``dll/dF12 = F22 G_Q`` and ``dll/dF22 = F12 G_Q``; through each exponential with the adjoint
    Frechet derivative ``dll/dX = L_exp(X', dll/dE)`` (one block exponential,
    :func:`bayesbond.core.linalg.expm_frechet_block`), exact for defective matrices. The
    stationary term uses the adjoint Lyapunov equation ``A' Lam + Lam A + dll/dP = 0``:
    ``dll/dA += 2 Lam P``, ``dll/dV += Lam``, and ``dll/dmu`` through ``mu = -A^{-1} a``.
    """
    import scipy.linalg as sla

    n, N = stats.n, stats.N
    zero = (np.zeros((n, n)), np.zeros(n), np.zeros((n, n)))
    X1 = np.zeros((n + 1, n + 1))
    X1[:n, :n], X1[:n, n] = A * dt, a * dt
    X2 = np.zeros((2 * n, 2 * n))
    X2[:n, :n], X2[:n, n:], X2[n:, n:] = -A * dt, V * dt, A.T * dt
    E1, E2 = sla.expm(X1), sla.expm(X2)
    Phi, c = E1[:n, :n], E1[:n, n]
    F12, F22 = E2[:n, n:], E2[n:, n:]
    Q = 0.5 * (F22.T @ F12 + F12.T @ F22)
    try:
        Lq = np.linalg.cholesky(Q)
    except np.linalg.LinAlgError:
        return -np.inf, *zero
    G = Phi - np.eye(n)
    r = stats.s_D - G @ stats.s_z
    S = (stats.S_DD - stats.S_Dz @ G.T - G @ stats.S_Dz.T + G @ stats.S_zz @ G.T
         - np.outer(r, c) - np.outer(c, r) + N * np.outer(c, c))
    Qi = sla.cho_solve((Lq, True), np.eye(n))
    ll = -0.5 * N * (n * np.log(2 * np.pi) + 2 * np.sum(np.log(np.diag(Lq)))) \
        - 0.5 * np.sum(Qi * S)
    W = -0.5 * Qi
    gG = 2 * W @ (G @ stats.S_zz - stats.S_Dz + np.outer(c, stats.s_z))
    gc = 2 * W @ (N * c - r)
    GQ = 0.5 * (Qi @ S @ Qi - N * Qi)
    GE1 = np.zeros_like(E1)
    GE1[:n, :n], GE1[:n, n] = gG, gc
    GE2 = np.zeros_like(E2)
    GE2[:n, n:], GE2[n:, n:] = F22 @ GQ, F12 @ GQ
    GX1 = linalg.expm_frechet_block(X1.T, GE1) * dt
    GX2 = linalg.expm_frechet_block(X2.T, GE2) * dt
    dA = GX1[:n, :n] - GX2[:n, :n] + GX2[n:, n:].T
    da = GX1[:n, n].copy()
    dV = GX2[:n, n:].copy()
    if stationary_init:
        if np.max(np.linalg.eigvals(A).real) >= 0:
            return -np.inf, *zero
        P = sla.solve_continuous_lyapunov(A, -V)
        P = 0.5 * (P + P.T)
        try:
            Lp = np.linalg.cholesky(P)
        except np.linalg.LinAlgError:
            return -np.inf, *zero
        mu = -np.linalg.solve(A, a)
        Pi = sla.cho_solve((Lp, True), np.eye(n))
        dev = stats.x0 - mu
        w = Pi @ dev
        ll += -0.5 * n * np.log(2 * np.pi) - np.sum(np.log(np.diag(Lp))) - 0.5 * dev @ w
        GP = 0.5 * (np.outer(w, w) - Pi)
        Lam = sla.solve_continuous_lyapunov(A.T, -GP)
        Lam = 0.5 * (Lam + Lam.T)
        dA += 2 * Lam @ P
        dV += Lam
        gmu = w
        h = np.linalg.solve(A.T, gmu)
        da += -h
        dA += -np.outer(h, mu)
    return float(ll), dA, da, dV


def _make_loglik_op_class():
    """Build the :class:`OULogLik` Op class (PyTensor is imported lazily)."""
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class OULogLik(Op):
        """``(A, a, V, stats...) -> (ll, dll/dA, dll/da, dll/dV)`` around :func:`ou_loglik_grad`.

        The gradient of the first output is read from the other outputs, so one evaluation (two
        small matrix exponentials and their Frechet derivatives) serves value and gradient. The
        sufficient statistics enter as constant inputs, so the Op itself is stateless and cheap
        to serialise (the numba backend runs it in object mode).
        """

        __props__ = ("N", "dt", "stationary_init")

        def __init__(self, N: int, dt: float, stationary_init: bool):
            self.N, self.dt, self.stationary_init = int(N), float(dt), bool(stationary_init)

        def make_node(self, A, a, V, S_DD, S_Dz, S_zz, s_D, s_z, x0):
            ins = [pt.as_tensor_variable(v).astype("float64")
                   for v in (A, a, V, S_DD, S_Dz, S_zz, s_D, s_z, x0)]
            outs = [pt.dscalar(), pt.dmatrix(), pt.dvector(), pt.dmatrix()]
            return Apply(self, ins, outs)

        def perform(self, node, inputs, outputs):
            A, a, V, S_DD, S_Dz, S_zz, s_D, s_z, x0 = inputs
            st = OUStats.__new__(OUStats)
            st.N, st.n = self.N, A.shape[0]
            st.S_DD, st.S_Dz, st.S_zz, st.s_D, st.s_z, st.x0 = S_DD, S_Dz, S_zz, s_D, s_z, x0
            ll, dA, da, dV = ou_loglik_grad(A, a, V, st, self.dt, self.stationary_init)
            outputs[0][0] = np.asarray(ll)
            outputs[1][0], outputs[2][0], outputs[3][0] = dA, da, dV

        def grad(self, inputs, output_grads):
            _, dA, da, dV = self(*inputs)
            g = output_grads[0]
            return [g * dA, g * da, g * dV] + [pt.zeros_like(v) for v in inputs[3:]]

    return OULogLik


_OP_CLASS = []


def ou_loglik_op(A, a, V, stats: OUStats, dt: float, stationary_init: bool = False):
    """PyTensor scalar: the exact n-D OU log-likelihood (value and gradient from
    :func:`ou_loglik_grad`) of the data summarised in ``stats``."""
    if not _OP_CLASS:
        _OP_CLASS.append(_make_loglik_op_class())
    op = _OP_CLASS[0](stats.N, dt, stationary_init)
    return op(A, a, V, stats.S_DD, stats.S_Dz, stats.S_zz, stats.s_D, stats.s_z, stats.x0)[0]


# ------------------------------------------------------------------------------ model
class OUPrepared(NamedTuple):
    """Prepared inputs of one OU fit: observations ``X`` (T, n), state ``names``, ``dates``
    (the ``date`` coordinate) and the steps ``dt`` (years; scalar or (T - 1,))."""

    X: np.ndarray
    names: list
    dates: pd.Index
    dt: object


def _dates(index) -> pd.Index:
    idx = pd.Index(index)
    if isinstance(idx, pd.DatetimeIndex):
        return pd.DatetimeIndex(idx, name="date")
    return pd.Index(np.asarray(idx), name="date")


class OUModel(BayesianModel):
    """Bayesian OU process ``dxi = (A xi + a) dt + Sigma dW`` with the exact likelihood.

    Parameters
    ----------
    n : int
        Dimension.
    restrictions : dict, optional
        ``"mean"``: known stationary mean (``theta`` in 1-D, ``mu`` in n-D), not sampled;
        ``"A"``: ``"full"`` (default, any stable matrix), ``"diagonal"``, ``"lower"`` or ``"upper"``
        triangular; ``"Sigma"``: ``"full"`` (default, lower Cholesky factor) or ``"diagonal"``.
    priors : dict, optional
        Overrides of the default hyperparameters (keys below). Unknown keys raise
        :class:`~bayesbond.errors.SpecError`.
    stationary_init : bool
        Include the stationary density of the first observation (default: condition on it).

    Notes
    -----
    **1-D** (``kappa``, ``theta``, ``sigma``; data in decimals, ``dt`` in years; ``m``, ``s_x`` the
    sample mean and standard deviation, ``s_v = sd(Delta x)/sqrt(dt)`` the volatility scale):

    * ``kappa ~ LogNormal(log 0.5, 1.5)`` (``priors["kappa"] = (mu, sigma)``): positive, so the
      process is stationary; median half-life 1.4 years, 95% between 0.07 and 27 years;
    * ``theta ~ Normal(m, 10 s_x)`` (``priors["theta"] = (mean, sd)``);
    * ``sigma ~ HalfNormal(5 s_v)`` (``priors["sigma"] = scale``).

    A slow mean reversion is weakly identified (``kappa`` and ``theta`` trade off when ``kappa T``
    is small): then inform ``kappa``.

    **n-D** in standardised coordinates ``y = (x - m) / s_v`` (per state), where the priors are
    unit-free, mapped back to data units as deterministics (``A = S^{-1} A_y S``,
    ``a = S^{-1} a_y - A m``, ``Sigma = S^{-1} Sigma_y`` with ``S = diag(1/s_v)``):

    * ``"full"`` ``A``: ``A_y = (J - I/2) R R'`` with ``J`` skew-symmetric and ``R`` lower
      triangular with positive diagonal, one-to-one onto the stable matrices (``X = (R R')^{-1}``
      solves ``A_y X + X A_y' = -I``; Gillis & Sharma 2017, Automatica 85).
      Priors: ``diag(R) ~ LogNormal(0, 1)`` (``"A_chol_diag"``),
      ``R`` below the diagonal and the ``J`` entries ``~ Normal(0, 1)`` (``"A_offdiag"``);
      for ``A_y = -kappa I`` this puts ``kappa = R_ii^2 / 2`` around 0.5.
    * ``"diagonal"``/``"lower"``/``"upper"``: ``diag(A) = -kappa``, ``kappa ~ LogNormal(log 0.5,
      1.5)`` (``"kappa"``), other free entries of ``A_y ~ Normal(0, 1)`` (``"A_offdiag"``); the
      eigenvalues are the diagonal, so ``A`` is stable.
    * ``mu ~ Normal(m, 10 s_x)`` per state (``"mu"`` = multiplier 10), ``a = -A mu``;
    * ``Sigma_y``: LKJ Cholesky with ``eta = 2`` (``"lkj_eta"``) and ``HalfNormal(3)`` scales
      (``"Sigma"``), or diagonal ``HalfNormal(3)``.

    Derived quantities, computed from each draw with the numpy core: 1-D ``stationary_var``
    ``= sigma^2/(2 kappa)`` and ``half_life = ln 2 / kappa``; n-D ``mu`` (state),
    ``stationary_cov`` (state, state2) and ``half_life`` (slowest mode).

    Fitting: ``fit(x, dt, *, draws=1000, ...)`` is :meth:`bayesbond.bayes.base.BayesianModel.fit`
    (data as :meth:`prepare`); the tree has ``observed_data.x`` (date, state),
    ``constant_data.dt`` and ``log_likelihood.x`` (chain, draw, date): the exact transition
    densities, which :func:`bayesbond.compare` uses.
    """

    family = "ou"
    prepared_type = OUPrepared
    loglik_var = "x"
    data_label = "series"

    def __init__(self, n: int = 1, restrictions=None, priors=None, stationary_init: bool = False):
        if int(n) != n or n < 1:
            raise SpecError(f"n must be a positive integer, got {n!r}")
        self.n = int(n)
        restrictions = dict(restrictions or {})
        allowed = ("mean",) if self.n == 1 else ("mean", "A", "Sigma")
        for k in restrictions:
            if k not in allowed:
                raise SpecError(f"unknown restriction {k!r} for n={self.n}; allowed: {allowed}")
        self.A_structure = restrictions.get("A", "full")
        if self.A_structure not in A_STRUCTURES:
            raise SpecError(f"restrictions['A'] must be one of {A_STRUCTURES}, "
                            f"got {self.A_structure!r}")
        self.Sigma_structure = restrictions.get("Sigma", "full")
        if self.Sigma_structure not in ("full", "diagonal"):
            raise SpecError("restrictions['Sigma'] must be 'full' or 'diagonal', "
                            f"got {self.Sigma_structure!r}")
        mean = restrictions.get("mean")
        if mean is not None:
            mean = np.atleast_1d(np.asarray(mean, dtype=float))
            if mean.shape != (self.n,):
                raise SpecError(f"restrictions['mean'] must have {self.n} entries, "
                                f"got shape {mean.shape}")
        self.mean = mean
        keys = PRIOR_KEYS_1D if self.n == 1 else PRIOR_KEYS_ND
        self.priors = dict(priors or {})
        for k in self.priors:
            if k not in keys:
                raise SpecError(f"unknown prior key {k!r}; allowed for n={self.n}: {keys}")
        self.stationary_init = bool(stationary_init)

    @classmethod
    def from_spec(cls, spec):
        """``(model, fit_kwargs)`` of a validated spec (``bayesbond.workflow.specs.Spec``)."""
        m = spec.model
        restrictions = {"A": "diagonal"} if m["restrictions"] == "diagonal" and m["n"] > 1 \
            else None  # a 1-D A is diagonal anyway
        return cls(n=m["n"], restrictions=restrictions, priors=spec.priors or None), \
            {"dt": m["dt"]}

    @classmethod
    def from_fit(cls, idata):
        spec = json.loads(idata.attrs["model"])
        keep = ("mean",) if spec["n"] == 1 else ("mean", "A", "Sigma")
        restrictions = {k: v for k, v in spec["restrictions"].items()
                        if k in keep and v is not None}
        return cls(spec["n"], restrictions, spec["priors"], spec["stationary_init"])

    @property
    def default_sampler(self) -> str:
        """``"pymc"`` for ``n > 1``, ``"nutpie"`` for 1-D.

        The n-D likelihood is a Python Op (:func:`ou_loglik_grad`): nutpie's numba backend can
        only call it in object mode, which measured 517 s of sampling against 31 s with PyMC's
        sampler on the same 2-D fit (2 chains x (300 + 200), one process, loaded machine). The
        1-D likelihood is a plain PyTensor graph, which nutpie compiles."""
        return "pymc" if self.n > 1 else "nutpie"

    # ------------------------------------------------------------------ spec
    def spec(self) -> dict:
        """JSON-able description of the model (stored in the DataTree attributes)."""
        return {
            "family": "OUModel",
            "n": self.n,
            "restrictions": {"A": self.A_structure, "Sigma": self.Sigma_structure,
                             "mean": None if self.mean is None else self.mean.tolist()},
            "priors": {k: (list(v) if isinstance(v, tuple | list) else v)
                       for k, v in self.priors.items()},
            "stationary_init": self.stationary_init,
        }

    def prepare(self, x, dt) -> OUPrepared:
        """Checked observations and steps.

        Parameters
        ----------
        x : array_like (T,) or (T, n), pandas Series or DataFrame
            Observations, oldest first (index labels become the ``date`` coordinate, column
            names the ``state`` coordinate).
        dt : float or array_like (T - 1,)
            Years between observations (arrays: irregular steps, 1-D only).
        """
        X, names, index = as_observations(x)
        if X.shape[1] != self.n:
            raise DataError(f"OUModel(n={self.n}) got data with {X.shape[1]} column(s) {names}")
        dt = as_steps(dt, len(X))
        if self.n > 1 and np.ndim(dt) > 0:
            raise SpecError("the n-D Bayesian OU model needs a regular grid (scalar dt); "
                            "irregular steps are supported in 1-D and by ou_ml")
        return OUPrepared(X, list(names), _dates(index), dt)

    # ------------------------------------------------------------------ graph
    def build(self, x, dt=None):
        """The PyMC model of ``x`` (an :class:`OUPrepared`, or observations with steps ``dt``)."""
        prepared = x if isinstance(x, OUPrepared) else self.prepare(x, dt)
        coords = {"state": prepared.names, "state2": prepared.names}
        if self.n == 1:
            return self._build_1d(prepared.X[:, 0], prepared.dt, coords)
        return self._build_nd(prepared.X, prepared.dt, coords)

    def scales(self, X, dt):
        """``(m, s_x, s_v)`` per state: the sample mean and standard deviation and the
        volatility scale ``sd(Delta x) / sqrt(dt)`` that scale the default priors (1-D) and
        the standardised coordinates (n-D). The n-D priors are set in those coordinates, so
        the prior in data units depends on the data through these three; a subclass may fix
        them (simulation-based calibration does)."""
        X = np.asarray(X, dtype=float).reshape(len(X), -1)
        m, s_x = X.mean(0), X.std(0)
        s_v = np.std(np.diff(X, axis=0), axis=0) / np.sqrt(np.mean(dt))
        return m, s_x, np.where(s_v > 0, s_v, 1.0)

    @staticmethod
    def _data(name, value):
        """A named ``pm.Data`` container (inside a model context): a refit on data of the same
        shapes swaps the values into the compiled sampler (:meth:`compile_key`)."""
        import pymc as pm

        value = np.asarray(value, dtype=float)
        return pm.Data(name, value, shape=value.shape)

    def compile_key(self, prepared, model):
        """The spec, the data's shape and the steps' shape: every data-derived number enters
        the graph as a data container."""
        from bayesbond.bayes.base import to_json

        dt = prepared.dt
        return (to_json(self.spec()), type(self).__qualname__, prepared.X.shape,
                np.shape(dt), float(dt) if np.ndim(dt) == 0 else None)

    def _build_1d(self, x, dt, coords):
        import pymc as pm

        m, s_x, s_v = (float(v[0]) for v in self.scales(x[:, None], dt))
        k_mu, k_sd = self.priors.get("kappa", (np.log(0.5), 1.5))
        th_mean, th_sd = self.priors.get("theta", (m, 10.0 * s_x))
        sig_scale = self.priors.get("sigma", 5.0 * s_v)
        data = self._data
        with pm.Model(coords=coords) as model:
            kappa = pm.LogNormal("kappa", mu=data("prior_kappa_mu", k_mu),
                                 sigma=data("prior_kappa_sd", k_sd))
            if self.mean is None:
                theta = pm.Normal("theta", mu=data("prior_theta_mean", th_mean),
                                  sigma=data("prior_theta_sd", th_sd))
            else:
                theta = float(self.mean[0])
            sigma = pm.HalfNormal("sigma", sigma=data("prior_sigma", sig_scale))
            m_t = data("x_mean", m)
            ll = ar1_loglik_pt(kappa, theta - m_t, sigma, x - m, dt, self.stationary_init,
                               wrap=data)
            pm.Potential("loglik", ll)
        return model

    def _build_nd(self, X, dt, coords):
        import pymc as pm
        import pytensor.tensor as pt

        n = self.n
        m0, s_x0, s_v0 = self.scales(X, dt)
        Y = (X - m0) / s_v0
        pr = self.priors
        off_sd = float(pr.get("A_offdiag", 1.0))
        data = self._data
        with pm.Model(coords=coords) as model:
            m, s_v = data("x_mean", m0), data("x_vol_scale", s_v0)
            if self.A_structure == "full":
                cd_mu, cd_sd = pr.get("A_chol_diag", (0.0, 1.0))
                r_diag = pm.LogNormal("A_chol_diag", mu=cd_mu, sigma=cd_sd, dims="state")
                il = np.tril_indices(n, -1)
                R = pt.diag(r_diag)
                J = pt.zeros((n, n))
                if len(il[0]):
                    r_off = pm.Normal("A_chol_offdiag", 0.0, off_sd, shape=len(il[0]))
                    j_up = pm.Normal("A_skew", 0.0, off_sd, shape=len(il[0]))
                    R = pt.set_subtensor(R[il], r_off)
                    J = pt.set_subtensor(J[il], j_up)
                    J = J - J.T
                A_y = (J - 0.5 * pt.eye(n)) @ (R @ R.T)
            else:
                k_mu, k_sd = pr.get("kappa", (np.log(0.5), 1.5))
                kappa = pm.LogNormal("kappa", mu=k_mu, sigma=k_sd, dims="state")
                A_y = -pt.diag(kappa)
                if self.A_structure != "diagonal":
                    idx = np.tril_indices(n, -1) if self.A_structure == "lower" else \
                        np.triu_indices(n, 1)
                    off = pm.Normal("A_offdiag", 0.0, off_sd, shape=len(idx[0]))
                    A_y = pt.set_subtensor(A_y[idx], off)
            if self.mean is None:
                mu_mult = float(pr.get("mu", 10.0))
                mu_y = pm.Normal("mu_std", 0.0, data("prior_mu_std_sd", mu_mult * s_x0 / s_v0),
                                 dims="state")
            else:
                mu_y = (self.mean - m) / s_v
            a_y = -(A_y @ mu_y)
            sig_scale = float(pr.get("Sigma", 3.0))
            if self.Sigma_structure == "full":
                L_y, _, _ = pm.LKJCholeskyCov(
                    "Sigma_std", eta=float(pr.get("lkj_eta", 2.0)), n=n,
                    sd_dist=pm.HalfNormal.dist(sig_scale, shape=n), compute_corr=True,
                    store_in_trace=False)
            else:
                sd = pm.HalfNormal("Sigma_std_diag", sig_scale, dims="state")
                L_y = pt.diag(sd)
            V_y = L_y @ L_y.T
            st = OUStats(Y)
            for k in ("S_DD", "S_Dz", "S_zz", "s_D", "s_z", "x0"):
                setattr(st, k, data(f"stats_{k}", getattr(st, k)))
            ll = ou_loglik_op(A_y, a_y, V_y, st, float(dt), self.stationary_init)
            pm.Potential("loglik", ll)
            # data units: x = m + S y with S = diag(s_v)
            S_inv = 1.0 / s_v
            A = pm.Deterministic("A", A_y * s_v[:, None] * S_inv[None, :], dims=("state", "state2"))
            pm.Deterministic("a", s_v * a_y - A @ m, dims="state")
            pm.Deterministic("Sigma", s_v[:, None] * L_y, dims=("state", "state2"))
        return model

    # ----------------------------------------------------- the model contract (BayesianModel)
    def check_vars(self, prepared, model) -> list[str]:
        return [v.name for v in model.free_RVs]

    def sampling_context(self):
        from threadpoolctl import threadpool_limits

        # every matrix here is tiny: BLAS threads only add overhead and contention
        return threadpool_limits(limits=1, user_api="blas")

    def postprocess(self, idata, prepared, options, random_seed) -> None:
        self._add_derived(idata, prepared.names)

    def data_groups(self, prepared) -> dict[str, xr.Dataset]:
        """``observed_data``: ``x`` (date, state); ``constant_data``: ``dt`` (years)."""
        X, names, dates, dt = prepared
        obs = xr.Dataset({"x": xr.DataArray(X, dims=("date", "state"),
                                            coords={"date": dates, "state": names})})
        if np.ndim(dt) == 0:
            dt_da = xr.DataArray(float(dt), attrs={"units": "years"})
        else:
            dt_da = xr.DataArray(np.asarray(dt), dims=("step",),
                                 coords={"step": dates[1:]}, attrs={"units": "years"})
        return {"observed_data": obs, "constant_data": xr.Dataset({"dt": dt_da})}

    def loglik_size(self, prepared) -> int:
        return len(prepared.X) - 1 + int(self.stationary_init)

    # ------------------------------------------------------------------ post-processing
    def _params(self, post, names):
        """Per-draw (A, a, V) arrays of shape (S, n, n), (S, n), (S, n, n)."""
        if self.n == 1:
            k = post["kappa"].values.reshape(-1)
            if "theta" in post:
                th = post["theta"].values.reshape(-1)
            else:
                th = np.full_like(k, float(self.mean[0]))
            s = post["sigma"].values.reshape(-1)
            return -k[:, None, None], (k * th)[:, None], (s**2)[:, None, None]
        A = post["A"].transpose("chain", "draw", "state", "state2").values
        a = post["a"].transpose("chain", "draw", "state").values
        L = post["Sigma"].transpose("chain", "draw", "state", "state2").values
        n = self.n
        A, a, L = A.reshape(-1, n, n), a.reshape(-1, n), L.reshape(-1, n, n)
        return A, a, L @ np.swapaxes(L, -1, -2)

    def _add_derived(self, idata, names):
        post = idata["posterior"].to_dataset()
        C, Dn = post.sizes["chain"], post.sizes["draw"]
        cd = {"chain": post["chain"].values, "draw": post["draw"].values}
        if self.n == 1:
            k, s = post["kappa"], post["sigma"]
            post = post.assign(stationary_var=s**2 / (2 * k), half_life=np.log(2.0) / k)
        else:
            A, a, V = self._params(post, names)
            n = self.n
            mu = np.empty((len(A), n))
            P = np.empty((len(A), n, n))
            hl = np.empty(len(A))
            for i in range(len(A)):
                mu[i] = -np.linalg.solve(A[i], a[i])
                P[i] = linalg.solve_lyapunov(A[i], V[i])
                hl[i] = np.log(2.0) / np.min(-np.linalg.eigvals(A[i]).real)
            s2 = {"state": names, "state2": names}
            post = post.assign(
                mu=xr.DataArray(mu.reshape(C, Dn, n), dims=("chain", "draw", "state"),
                                coords={**cd, "state": names}),
                stationary_cov=xr.DataArray(P.reshape(C, Dn, n, n),
                                            dims=("chain", "draw", "state", "state2"),
                                            coords={**cd, **s2}),
                half_life=xr.DataArray(hl.reshape(C, Dn), dims=("chain", "draw"), coords=cd),
            )
        idata["posterior"] = xr.DataTree(post)

    def pointwise_loglik(self, idata, *, dtype="float64", max_bytes: int = 256 * 2**20,
                         model=None) -> xr.DataArray:
        """Exact log-density of each transition (and of ``x_0`` with ``stationary_init``),
        ``(chain, draw, date)``, from the fit's posterior, ``observed_data.x`` and
        ``constant_data.dt``."""
        x = idata["observed_data"]["x"].transpose("date", "state")
        X, dates = x.values, x["date"].to_index()
        dt_da = idata["constant_data"]["dt"]
        dt = float(dt_da) if dt_da.ndim == 0 else dt_da.values
        post = idata["posterior"].to_dataset()
        C, Dn = post.sizes["chain"], post.sizes["draw"]
        A, a, V = self._params(post, None)
        if self.n > 1:
            out = np.stack([transition_loglik(X, dt, A[i], a[i], V[i], self.stationary_init,
                                              pointwise=True) for i in range(len(A))])
        else:  # vectorised over draws (blocks of 256 bound the memory)
            x0, x1, d = X[:-1, 0], X[1:, 0], np.asarray(dt, dtype=float)
            out = np.empty((C * Dn, len(x1)))
            for lo in range(0, len(A), 256):
                k = -A[lo:lo + 256, 0, 0][:, None]
                kd = k * d
                b = np.exp(-kd)
                th = a[lo:lo + 256, 0][:, None] / k
                q = V[lo:lo + 256, 0, 0][:, None] * d * phi1(-2.0 * kd)
                e = x1[None] - th - b * (x0[None] - th)
                out[lo:lo + 256] = -0.5 * (np.log(2 * np.pi * q) + e**2 / q)
            if self.stationary_init:  # x_0 ~ N(theta, P), P = sigma^2 / (2 kappa)
                th, P = a[:, 0] / -A[:, 0, 0], V[:, 0, 0] / (-2.0 * A[:, 0, 0])
                out = np.column_stack([-0.5 * (np.log(2 * np.pi * P) + (X[0, 0] - th) ** 2 / P),
                                       out])
        d = dates if self.stationary_init else dates[1:]
        return xr.DataArray(out.reshape(C, Dn, -1).astype(dtype, copy=False),
                            dims=("chain", "draw", "date"),
                            coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                    "date": d})


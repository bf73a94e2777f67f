"""Bayesian Gaussian affine term-structure model under P and P* (PyMC).

The likelihood is the portfolio likelihood of Joslin, Singleton and Zhu (2011): the first ``n``
principal-component portfolios ``P = W y`` are priced without error, so no filter is needed:

* P dynamics: ``P_t | P_{t-1} ~ N(c + Phi P_{t-1}, Q)`` with the exact OU transition of
  ``dP = (A P + a) dt + Sigma dW`` (matrix exponential and Van Loan's integral, written in
  PyTensor below);
* cross-section: ``y_t = d + Z P_t + e_t`` with ``e_t`` in the ``(p - n)``-dim. complement of the
  portfolios, ``W_perp e_t ~ N(0, sigma_e^2 I)``; ``(Z, d)`` from the canonical parameters through
  the closed forms of :mod:`bayesbond.core.affine_canonical` (the same code as the ML fit).

Both parts are conditional on the first date and vectorised over dates (no scan). It is exactly
the likelihood of ``affine_ml(..., method="portfolio")``, so posterior and ML line up.

Priors keep the dynamics stable: under P* by construction (ordered negative eigenvalue
parameterisation); under P by a smooth prior factor on ``A``, the product of logistic functions of
its Routh-Hurwitz margins (``n <= 3``), which makes unstable ``A`` exponentially unlikely (a slowest
eigenvalue of ``+0.05`` per year costs a factor of about ``e^-2.5``) without the hard wall that
makes NUTS diverge when a slow level factor puts posterior mass near a unit root.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.baselines.affine_ml import prepare_yields
from bayesbond.baselines.affine_result import PARAM_NAMES, eh_yields, factor_names
from bayesbond.bayes.base import BayesianModel, to_json
from bayesbond.bayes.registry import AFFINE_DEFAULT_PRIORS
from bayesbond.core.affine_canonical import canonical, eigen_from_raw, n_real, pca_weights
from bayesbond.core.affine_stable import n_chol, n_skew, stable_drift, stable_to_raw
from bayesbond.errors import DataError, ModelError, SpecError

__all__ = ["AffineModel", "AffinePrepared", "DEFAULT_PRIORS", "data_from_fit", "date_loglik",
           "p_eigenvalues",
           "expm_pt"]

#: default priors (keys and values: :data:`bayesbond.bayes.registry.AFFINE_DEFAULT_PRIORS`)
DEFAULT_PRIORS = AFFINE_DEFAULT_PRIORS


def expm_pt(M, squarings: int = 4, order: int = 10):
    """Matrix exponential in PyTensor: Taylor polynomial with scaling and squaring.

    Notes
    -----
    ``e^M = (T_k(M / 2^s))^(2^s)`` with ``T_k`` the degree-``k`` Taylor polynomial (Horner form).
    The truncation error is below ``(||M|| / 2^s)^(k+1) / (k+1)!``: with ``s = 4``, ``k = 10`` it is
    below 1e-16 relative for ``||M|| <= 2`` and 1e-11 for ``||M|| <= 8`` (a monthly step of any
    plausible drift). Only products and
    sums, so it compiles natively with numba and differentiates exactly (Moler and Van Loan 2003).
    """
    import pytensor.tensor as pt

    n = M.shape[-1]
    eye = pt.eye(n)
    X = M / (2.0**squarings)
    E = eye + X / order
    for k in range(order - 1, 0, -1):
        E = eye + pt.dot(X, E) / k
    for _ in range(squarings):
        E = pt.dot(E, E)
    return E


def _hurwitz_margins(A, n: int, width: float = 0.02, xp=None):
    """Routh-Hurwitz margins of ``A`` in units of ``width`` per year (all > 0 iff ``A`` is stable).

    With ``det(sI - A) = s^3 + c2 s^2 + c1 s + c0`` the conditions are ``c2 > 0``, ``c0 > 0`` and
    ``c2 c1 - c0 > 0`` (``n = 3``); ``c1 = -tr A > 0``, ``c0 = det A > 0`` (``n = 2``); ``A < 0``
    (``n = 1``). Each is divided by a positive scale that makes it a speed, so that crossing the
    boundary is gradual: ``c2 / 3`` is the mean speed; ``c0 / (|c1| + c2^2 / 4)`` is below the
    slowest real speed when one is small (``c0 / c1``) and stays smooth near saddles, where ``c1``
    passes through zero; for roots ``g`` and ``al +- i be``,
    ``c2 c1 - c0 = -2 al ((al + g)^2 + be^2)`` with ``(al + g)^2 + be^2 ~ c2^2 + c1`` when ``al``
    is small, so the third margin is about ``-2 al``. For ``n = 2``,
    ``c0 / sqrt(c1^2 + 4 |c0|)`` is the slow speed when ``c0`` is small and ``-lam / 2`` at a
    saddle ``(lam, -lam)``. ``xp``: ``pytensor.tensor`` (default) or ``numpy``.
    """
    if xp is None:
        import pytensor.tensor as xp
    if n == 1:
        return [-A[0, 0] / width]
    tr = xp.trace(A)
    det = xp.linalg.det(A)
    if n == 2:
        c1, c0 = -tr, det
        scale = xp.sqrt(c1 * c1 + 4.0 * xp.sqrt(c0 * c0 + 1e-12) + 1e-8)
        return [c1 / (2 * width), c0 / (width * scale)]
    if n == 3:
        m2 = (
            A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
            + A[0, 0] * A[2, 2] - A[0, 2] * A[2, 0]
            + A[1, 1] * A[2, 2] - A[1, 2] * A[2, 1]
        )  # fmt: skip
        c2, c1, c0 = -tr, m2, -det
        abs_c1 = xp.sqrt(c1 * c1 + 1e-8)
        return [c2 / (3 * width), c0 / (width * (abs_c1 + c2 * c2 / 4 + 1e-4)),
                (c2 * c1 - c0) / (2 * width * (c2 * c2 + abs_c1 + 1e-4))]
    raise SpecError(f"the Bayesian affine model supports 1 to 3 factors, got {n}")


class AffinePrepared(NamedTuple):
    """Prepared inputs of one affine fit: yields ``Y`` (T, p), maturities ``tau``, ``dates``,
    step ``dt`` (years), portfolio weights ``W`` (n, p) and ``W_perp`` (p - n, p), the free
    parameters ``free`` ((name, prior mean, prior sd, dims), in the order of theta) and their
    flat prior sds ``prior_sd``."""

    Y: np.ndarray
    tau: np.ndarray
    dates: object
    dt: float
    W: np.ndarray
    W_perp: np.ndarray
    free: tuple
    prior_sd: np.ndarray


class AffineModel(BayesianModel):
    """Bayesian canonical Gaussian affine model (JSZ identification, portfolios priced exactly).

    Parameters
    ----------
    n_factors : int
        Number of factors (1 to 3).
    identification : {"jsz"}
        See :func:`bayesbond.affine_ml`: states are the principal-component portfolios, ``A*`` in
        real canonical form with ordered eigenvalues, ``Sigma`` lower triangular.
    priors : dict, optional
        Overrides of :data:`DEFAULT_PRIORS` (same keys).
    stationary : bool
        ``True`` (default): every draw has stable P dynamics, by construction. ``A`` is written
        ``A = D (-(L L' + S)) D^-1`` (:mod:`bayesbond.core.affine_stable`; ``D`` the standard
        deviations of the portfolios, ``L`` lower triangular with positive diagonal, ``S``
        skew), whose eigenvalues all have negative real parts; the free parameters ``A_chol``
        (log diagonal) and ``A_skew`` replace ``A``, with normal priors
        ``log L_ii ~ N(log 0.5, 1.5)``, ``L_ij ~ N(0, 1)``, ``S_ij ~ N(0, 2)`` (scaled speeds per
        year), and no wall for NUTS. The posterior also holds ``lam_P`` / ``lam_P_imag``, the
        real and absolute imaginary parts of the eigenvalues of ``A``, slowest first.
        ``False``: ``A`` free with elementwise normal priors times a smooth stability factor
        (explosive draws are unlikely, not excluded).

    Notes
    -----
    Posterior variables (dims ``state``, ``state2``, ``maturity``, ``date``): ``A``, ``a``,
    ``Sigma``, ``A_star``, ``a_star``, ``Lambda``, ``lambda1``, ``delta0``, ``delta1``, ``k_inf``,
    ``lam_star``/``lam_star_imag`` (eigenvalues of ``A_star``), ``sigma_e`` and the raw
    eigen-parameters ``eig_raw``. Fitted yields, term premia and expected excess returns with
    posterior bands: :meth:`bands`; the table next to an ML fit: :meth:`side_by_side`.

    Priors (:data:`DEFAULT_PRIORS`, scaled to the portfolios ``P = W y``): ``eig_raw`` normal
    (slowest P* eigenvalue around ``-0.05``, steps of about a factor of 10), ``k_inf ~ N(0, 0.02)``,
    log diagonal of ``Sigma ~ N(log 0.01, 1.5)``, off-diagonal ``N(0, 0.02)``,
    ``A_ij ~ N(0, (2 sd(P_i) / sd(P_j))^2)``, ``a_i ~ N(0, s_i^2)`` with
    ``s_i = 2 sd(P_i) ||(|mean P| + sd P) / sd P||``, ``log sigma_e ~ N(log 5 bp, 1)``, times a
    smooth factor that makes an unstable ``A`` exponentially unlikely (P* is stable by
    construction).

    Sampling: by default the free vector ``theta`` (``eig_raw, k_inf, Sigma_raw, A, a,
    log_sigma_e``) is written ``theta = theta_hat + H^(-1/2) z`` with ``theta_hat`` the ML
    estimate and ``H`` the Hessian of the negative log posterior there (the ML Hessian plus the
    prior precisions), and NUTS samples ``z``: a fixed dense preconditioner, which matters because
    the sharply identified P* parameters are strongly correlated with each other while ``A`` is
    weakly identified (without it the chains did not mix: R-hat 2.2 on a simulated curve).
    """

    family = "affine"
    prepared_type = AffinePrepared
    loglik_var = "yields"
    data_label = "yields"
    fit_options = {"init_ml": True, "precondition": True}
    #: the P* eigen-parameters and ``k_inf`` can form a curved ridge (weakly identified slowest
    #: P* eigenvalue) that the linear preconditioner does not straighten; at 0.9 a simulated
    #: 400-month curve gave divergences there
    default_target_accept = 0.95

    def __init__(self, n_factors: int = 3, identification: str = "jsz", priors=None,
                 stationary: bool = True):
        if identification != "jsz":
            raise SpecError(f"identification must be 'jsz', got {identification!r}")
        if not 1 <= int(n_factors) <= 3:
            raise SpecError(f"n_factors must be 1, 2 or 3 in the Bayesian model, got {n_factors}")
        self.n = int(n_factors)
        self.identification = identification
        if not isinstance(stationary, bool | np.bool_):
            raise SpecError(f"stationary must be True or False, got {stationary!r}")
        self.stationary = bool(stationary)
        priors = dict(priors or {})
        unknown = set(priors) - set(DEFAULT_PRIORS)
        if unknown:
            raise SpecError(
                f"unknown prior keys {sorted(unknown)}; valid keys: {sorted(DEFAULT_PRIORS)}"
            )
        self.priors = {**DEFAULT_PRIORS, **priors}

    @classmethod
    def from_fit(cls, idata):
        """The model of a fit; a fit stored before ``stationary`` existed used the soft
        stability factor, i.e. ``stationary=False``."""
        import json

        spec = dict(json.loads(idata.attrs["model"]))
        spec.pop("family", None)
        spec.setdefault("stationary", False)
        return cls(**spec)

    @classmethod
    def from_spec(cls, spec):
        """``(model, fit_kwargs)`` of a validated spec (``bayesbond.workflow.specs.Spec``)."""
        if spec.model["kind"] != "gaussian":
            raise ModelError(f"{spec.source}: [model] kind {spec.model['kind']!r} has no "
                             "estimator in this version; the canonical Gaussian model "
                             "(kind = \"gaussian\", e.g. models/affine3.toml) can be sampled and "
                             "EFM(2) (kind = \"efm2\", models/efm2.toml) fitted by ML")
        if spec.data["maturities"] is None:
            raise SpecError(f"{spec.source}: [data] needs 'columns' and 'maturities' (years)")
        return cls(n_factors=spec.model["n_factors"], priors=spec.priors or None,
                   stationary=spec.model["stationary"]), \
            {"maturities": spec.data["maturities"], "dt": spec.model["dt"]}

    @property
    def free_(self) -> list[tuple[str, tuple]]:
        """Names and shapes of the free parameters, in the order of the flat vector theta."""
        n = self.n
        drift = [("A", (n, n))]
        if self.stationary:
            drift = [("A_chol", (n_chol(n),))] + ([("A_skew", (n_skew(n),))] if n > 1 else [])
        return [("eig_raw", (n,)), ("k_inf", ()), ("Sigma_raw", (n * (n + 1) // 2,)),
                *drift, ("a", (n,)), ("log_sigma_e", ())]

    def spec(self) -> dict:
        """JSON-able description of the model (stored in the fit's ``model`` attribute)."""
        return {"family": "AffineModel", "n_factors": self.n,
                "identification": self.identification, "stationary": self.stationary,
                "priors": {k: np.asarray(v, dtype=object).tolist() if isinstance(v, tuple)
                           else v for k, v in self.priors.items()}}

    # ----------------------------------------------------------------------------- building
    def prepare(self, yields, maturities=None, dt=None, weights=None) -> AffinePrepared:
        """Checked yields, portfolio weights and the data-scaled priors of the free parameters.

        Parameters
        ----------
        yields, maturities, dt, weights : as :func:`bayesbond.affine_ml` (complete rows only:
            the portfolio likelihood needs every yield of a date).
        """
        Y, tau, dates, dt = prepare_yields(yields, maturities, dt)
        if not np.isfinite(Y).all():
            t, j = np.argwhere(~np.isfinite(Y))[0]
            raise DataError(
                f"missing yield on date {dates[t]} at maturity {tau[j]}: the Bayesian "
                "(portfolio) likelihood needs complete rows"
            )
        n, p = self.n, Y.shape[1]
        if n >= p:
            raise SpecError(f"n_factors={n} must be below the number of maturities {p}")
        W = pca_weights(Y, n) if weights is None else np.asarray(weights, float)
        if W.shape != (n, p) or np.linalg.matrix_rank(W) < n:
            raise SpecError(f"weights must be a full-rank ({n}, {p}) array, got {W.shape}")
        import scipy.linalg as sla

        W_perp = sla.null_space(W).T  # orthonormal basis of the complement
        didx = pd.DatetimeIndex(dates) if isinstance(dates, pd.DatetimeIndex) else dates
        free = self._free(Y @ W.T)
        prior_sd = np.concatenate([np.broadcast_to(sd, np.shape(m)).ravel()
                                   for _, m, sd, _ in free])
        return AffinePrepared(Y, tau, didx, dt, W, W_perp, free, prior_sd)

    def portfolio_scales(self, Po):
        """``(mean, sd)`` of each portfolio: the data scales of the priors of ``A`` and ``a``
        and the scales ``D`` of the stable drift. A subclass may fix them (simulation-based
        calibration needs a prior that does not move with the data)."""
        Po = np.asarray(Po, float)
        return Po.mean(axis=0), Po.std(axis=0)

    def _free(self, Po):
        """Free parameters in the order of the flat vector theta: (name, prior mean, prior sd,
        dims), the scales set by the portfolios ``Po``."""
        n, pr = self.n, self.priors
        meanP, sdP = self.portfolio_scales(Po)
        A_sd = pr["A_scale"] * sdP[:, None] / sdP[None, :]
        a_sd = pr["a_scale"] * sdP * np.linalg.norm((np.abs(meanP) + sdP) / sdP)
        eig_mu = np.asarray(pr["eig_raw"][0], float)[:n]
        eig_sd = np.asarray(pr["eig_raw"][1], float)[:n]
        if n <= 2:  # only real eigenvalues: steps of about a factor of 10
            eig_mu = np.r_[np.log(0.05), np.log(0.5)][:n]
            eig_sd = np.r_[1.5, 1.0][:n]
        tril = np.tril_indices(n)
        diag_pos = np.array([i == j for i, j in zip(*tril, strict=True)])
        ld_mu, ld_sd = pr["log_sigma_diag"]
        se_mu, se_sd = pr["log_sigma_e"]
        drift = (("A", np.zeros((n, n)), A_sd, ("state", "state2")),)
        if self.stationary:
            drift = (("A_chol", np.where(diag_pos, np.log(0.5), 0.0),
                      np.where(diag_pos, 1.5, 1.0), ("tril",)),)
            if n > 1:
                drift += (("A_skew", np.zeros(n_skew(n)), np.full(n_skew(n), 2.0),
                           ("skew",)),)
        return (
            ("eig_raw", eig_mu, eig_sd, ("eig_param",)),
            ("k_inf", np.float64(0.0), np.float64(pr["k_inf"]), ()),
            ("Sigma_raw", np.where(diag_pos, ld_mu, 0.0),
             np.where(diag_pos, ld_sd, pr["sigma_offdiag"]), ("tril",)),
            *drift,
            ("a", np.zeros(n), a_sd, ("state",)),
            ("log_sigma_e", np.float64(se_mu), np.float64(se_sd), ()),
        )  # fmt: skip

    def build(self, yields, maturities=None, dt=None, weights=None, precondition=None):
        """The PyMC model (without sampling).

        Parameters
        ----------
        yields : AffinePrepared or the yields
            Prepared data (:meth:`prepare`), or the arguments of :meth:`prepare`. A build from
            raw arguments also records ``data_`` and ``prior_sd_`` on the object, for
            interactive use; the contract path (``fit``) records nothing.
        precondition : (theta_hat, L), optional
            Sample ``z`` with ``theta = theta_hat + L z`` instead of the free parameters
            ``theta`` (``eig_raw, k_inf, Sigma_raw, A, a, log_sigma_e`` flattened in that order);
            the priors are unchanged. See the class Notes.
        """
        import pymc as pm
        import pytensor.tensor as pt

        if isinstance(yields, AffinePrepared):
            D = yields
        else:
            D = self.prepare(yields, maturities, dt, weights)
            self.data_ = D._asdict()
            self.prior_sd_ = D.prior_sd
        Y, tau, W, W_perp, dt, free = D.Y, D.tau, D.W, D.W_perp, D.dt, D.free
        n, p = self.n, len(tau)
        Po = Y @ W.T
        names = factor_names(n)
        tril = np.tril_indices(n)
        diag_pos = np.array([i == j for i, j in zip(*tril, strict=True)])
        coords = {"state": names, "state2": names, "maturity": tau, "date": D.dates[1:],
                  "residual": [f"resid{i + 1}" for i in range(p - n)],
                  "eig_param": [f"eig_raw{i + 1}" for i in range(n)],
                  "tril": [f"{names[i]},{names[j]}" for i, j in zip(*tril, strict=True)]}
        if self.stationary and n > 1:
            coords["skew"] = [f"{names[i]},{names[j]}" for i, j in zip(*np.tril_indices(n, -1),
                                                                     strict=True)]
        with pm.Model(coords=coords) as model:
            # every data-derived array is a data container, so that data of the same shapes give
            # the same graph and the compiled sampler is reused (see compile_key)
            free = [(k, pm.Data(f"prior_mean_{k}", np.asarray(m, float)),
                     pm.Data(f"prior_sd_{k}", np.broadcast_to(s, np.shape(m)).astype(float)),
                     np.shape(m), d) for k, m, s, d in free]
            if precondition is None:
                x = {k: pm.Normal(k, m, s, shape=sh, dims=d or None) for k, m, s, sh, d in free}
            else:
                # theta = theta_hat + L z with z ~ flat and the same priors as potentials: an
                # affine change of variables (constant Jacobian), so the posterior is unchanged
                theta_hat, L = (np.asarray(v, float) for v in precondition)
                model.add_coord("laplace_param", np.arange(len(theta_hat)))
                z = pm.Flat("z_laplace", dims="laplace_param")
                theta = pm.Data("laplace_center", theta_hat) + pt.dot(pm.Data("laplace_L", L), z)
                x, off = {}, 0
                for k, m, s, sh, d in free:
                    size = int(np.prod(sh, dtype=int))
                    piece = theta[off : off + size].reshape(sh)
                    off += size
                    x[k] = pm.Deterministic(k, piece, dims=d or None)
                    pm.Potential(f"prior_{k}", pm.logp(pm.Normal.dist(m, s), piece).sum())
            W = pm.Data("portfolio_weights", W)
            dt = pm.Data("dt", np.float64(dt))
            P_prev = pm.Data("portfolios_prev", Po[:-1])
            P_next = pm.Data("portfolios_next", Po[1:])
            eig_raw, k_inf, L_raw, a, log_sig = (x[k] for k in ("eig_raw", "k_inf", "Sigma_raw",
                                                                 "a", "log_sigma_e"))
            if self.stationary:  # stable by construction (core.affine_stable)
                D_scale = pm.Data("A_scale", self.portfolio_scales(Po)[1])
                A = pm.Deterministic("A", stable_drift(pt, x["A_chol"], x.get("A_skew"),
                                                       D_scale, n), dims=("state", "state2"))
            else:
                A = x["A"]
            L_vals = pt.where(diag_pos, pt.exp(L_raw), L_raw)
            Sigma = pt.zeros((n, n))
            Sigma = pm.Deterministic(
                "Sigma", pt.set_subtensor(Sigma[tril], L_vals), dims=("state", "state2")
            )
            sigma_e = pm.Deterministic("sigma_e", pt.exp(log_sig))
            # smooth prior favouring stable P dynamics: sum of log-sigmoids of the Routh-Hurwitz
            # margins (a hard wall where the posterior has mass would make NUTS diverge)
            if not self.stationary:
                pm.Potential("stable_P",
                             -sum(pt.softplus(-m) for m in _hurwitz_margins(A, n)))

            # P* side: canonical loadings (same code as the ML fit)
            eig = eigen_from_raw(pt, eig_raw, n)
            V = pt.dot(Sigma, Sigma.T)
            can = canonical(pt, eig, k_inf, V, W, tau, n=n)
            pm.Deterministic("A_star", can.A_star, dims=("state", "state2"))
            pm.Deterministic("a_star", can.a_star, dims="state")
            pm.Deterministic("Lambda", can.A_star - A, dims=("state", "state2"))
            pm.Deterministic("lambda1", can.a_star - a, dims="state")
            pm.Deterministic("delta0", can.delta0)
            pm.Deterministic("delta1", can.delta1, dims="state")
            lam_re, lam_im = _eig_parts(pt, eig, n)
            pm.Deterministic("lam_star", lam_re, dims="state")
            pm.Deterministic("lam_star_imag", lam_im, dims="state")

            # P side: exact OU transition of the portfolios, Van Loan exponentials:
            # expm(dt [[-A, V], [0, A']]) = [[., F12], [0, F22]] gives Phi = F22', Q = Phi F12;
            # expm(dt [[A, a], [0, 0]]) = [[Phi, c], [0, 1]] gives c = int_0^dt e^(As) ds a
            # (drift in (A, a), not the stationary mean: a near-unit-root A leaves the mean
            # unidentified, a banana for the sampler, while (A, a) enter the transition smoothly)
            M2 = pt.zeros((2 * n, 2 * n))
            M2 = pt.set_subtensor(M2[:n, :n], -A * dt)
            M2 = pt.set_subtensor(M2[:n, n:], V * dt)
            M2 = pt.set_subtensor(M2[n:, n:], A.T * dt)
            E2 = expm_pt(M2)
            Phi = E2[n:, n:].T
            Q = pt.dot(Phi, E2[:n, n:])
            Q = 0.5 * (Q + Q.T)
            Ma = pt.zeros((n + 1, n + 1))
            Ma = pt.set_subtensor(Ma[:n, :n], A * dt)
            Ma = pt.set_subtensor(Ma[:n, n], a * dt)
            c = expm_pt(Ma)[:n, n]
            pm.MvNormal("portfolios", mu=c + pt.dot(P_prev, Phi.T), chol=pt.linalg.cholesky(Q),
                        observed=P_next, dims=("date", "state"))
            fitted = can.d + pt.dot(P_next, can.Z.T)  # (T-1, p)
            pm.Normal("pricing_errors", mu=pt.dot(fitted, pm.Data("W_perp", W_perp).T),
                      sigma=sigma_e, observed=pm.Data("residual_yields", Y[1:] @ W_perp.T),
                      dims=("date", "residual"))
        return model

    # ----------------------------------------------------- the model contract (BayesianModel)
    def display(self, prepared) -> str:
        return f"AffineModel(n_factors={self.n}, identification={self.identification!r})"

    def describe(self, prepared) -> str:
        return (f"{self.display(prepared)}: {len(prepared.Y)} dates x {len(prepared.tau)} "
                "maturities")

    def start(self, prepared, model, options):
        """ML start and Laplace preconditioning (``fit(init_ml=True, precondition=True)``).

        ``init_ml``: start the chains at the portfolio-likelihood ML estimate (a few seconds),
        inside the stable region. ``precondition``: sample ``z`` with ``theta = theta_hat +
        H^(-1/2) z``, ``H`` the Hessian of the negative log posterior at the ML point; the
        posterior is unchanged (an affine change of variables), NUTS sees a nearly isotropic
        target (without it: R-hat 2.2 on a 150-month simulated curve).
        """
        from bayesbond.baselines.affine_ml import affine_ml

        if not (options["init_ml"] or options["precondition"]):
            return model, None
        D = prepared
        ml = affine_ml(D.Y, D.tau, self.n, method="portfolio", dt=D.dt, weights=D.W,
                       n_starts=1, se=False)
        scale = self.portfolio_scales(D.Y @ D.W.T)[1] if self.stationary else None
        if not options["precondition"]:
            return model, _initvals(ml, self.n, scale)
        theta_hat, H = _laplace(ml, D.Y, D.prior_sd, scale)
        # z = 0 is the ML point; the sampler jitters each chain's start
        return self.build(prepared, precondition=(theta_hat, _inv_sqrt(H))), None

    def check_vars(self, prepared, model) -> list[str]:
        names = [k for k, *_ in prepared.free if k not in ("A_chol", "A_skew")]
        return names if "A" in names else [*names[:3], "A", *names[3:]]

    def compile_key(self, prepared, model):
        """The spec, the sizes and the maturities (a graph constant); the yields, weights, step,
        priors and preconditioner are data containers swapped in on a reuse."""
        return (to_json(self.spec()), prepared.Y.shape, tuple(np.asarray(prepared.tau).tolist()),
                "z_laplace" in model.named_vars)

    def postprocess(self, idata, prepared, options, random_seed) -> None:
        idata.attrs["portfolio_weights"] = prepared.W.ravel().tolist()
        idata.attrs["dt"] = prepared.dt
        post = idata["posterior"]
        if "A" in post.data_vars:
            re, im = p_eigenvalues(post["A"].transpose("chain", "draw", "state", "state2").values)
            dims = ("chain", "draw", "eigen")
            idata["posterior"] = post.to_dataset().assign(
                lam_P=(dims, re), lam_P_imag=(dims, im)).assign_coords(
                eigen=np.arange(1, re.shape[-1] + 1))

    def data_groups(self, prepared) -> dict[str, xr.Dataset]:
        """``observed_data.yields`` (date, maturity) and :func:`fit_data` as ``constant_data``."""
        const = _fit_data(prepared, self.n)
        return {"observed_data": xr.Dataset({"yields": const["yields"]}), "constant_data": const}

    def loglik_size(self, prepared) -> int:
        return len(prepared.Y) - 1

    def pointwise_loglik(self, idata, *, dtype="float64", max_bytes: int = 256 * 2**20,
                         model=None) -> xr.DataArray:
        """:func:`date_loglik` with ``model`` (the sampled model), or with the model rebuilt
        from the fit's ``constant_data`` (a saved and loaded fit)."""
        if model is None:
            D = data_from_fit(idata)
            n = int(idata["posterior"]["A"].sizes["state"])
            model = AffineModel(n, self.identification, self.priors, self.stationary).build(
                pd.DataFrame(D["Y"], index=D["dates"]), D["tau"], D["dt"], D["W"])
        return date_loglik(model, idata).astype(dtype, copy=False)

    # ----------------------------------------------------------------------------- outputs
    def _draws(self, idata, max_draws: int, rng=None):
        post = idata["posterior"].to_dataset()
        flat = post.stack(sample=("chain", "draw"))
        k = flat.sizes["sample"]
        idx = np.arange(k) if k <= max_draws else np.linspace(0, k - 1, max_draws).astype(int)
        return flat.isel(sample=idx)

    def bands(self, idata=None, prob: float = 0.94, max_draws: int = 500) -> xr.Dataset:
        """Posterior mean and equal-tailed bands of fitted yields, term premia, excess returns.

        Parameters
        ----------
        idata : xarray.DataTree, optional
            A fit (default: the last :meth:`fit` of this object). A fit saved and loaded with
            :func:`bayesbond.save` / :func:`bayesbond.load` carries what is needed (the yields,
            maturities, dates, portfolio weights and ``dt`` in ``constant_data``), so
            ``AffineModel().bands(bb.load(path))`` works; the number of factors is read from the
            fit.
        prob : float
            Probability of the central bands.
        max_draws : int
            Number of evenly spaced posterior draws used.

        Returns
        -------
        xarray.Dataset
            Variables ``fitted``, ``term_premium`` (model yield minus the expectations-hypothesis
            yield under P), ``expected_excess_return`` (instantaneous, per year,
            ``u(tau)'(Lambda P + lambda1)``), each with dims ``(stat, date, maturity)`` and
            ``stat`` in ``mean, lower, upper``, on every observed date (the same dates as the
            yields; the likelihood conditions on the first date, but the fitted yields, term
            premia and expected returns at it are defined all the same); computed at the
            observed portfolios for ``max_draws`` evenly spaced posterior draws.
        """
        if idata is None:
            raise SpecError("bands() needs a fit: pass idata (e.g. bb.load(path))")
        if not 0 < prob < 1:
            raise SpecError(f"prob must be in (0, 1); got {prob}")
        D = data_from_fit(idata)
        n = int(idata["posterior"]["A"].sizes["state"])
        flat = self._draws(idata, max_draws)
        tau, W = D["tau"], D["W"]
        Po = D["Y"] @ W.T
        out = {"fitted": [], "term_premium": [], "expected_excess_return": []}
        for s in range(flat.sizes["sample"]):
            d = flat.isel(sample=s)
            eig = eigen_from_raw(np, d["eig_raw"].values, n)
            Sg = d["Sigma"].values
            can = canonical(np, eig, float(d["k_inf"]), Sg @ Sg.T, W, tau)
            A, a = d["A"].values, d["a"].values
            y = can.d + Po @ can.Z.T
            eh = eh_yields(A, a, float(can.delta0), can.delta1, Po, tau)
            Lam, l1 = can.A_star - A, can.a_star - a
            U = tau[:, None] * can.Z
            out["fitted"].append(y)
            out["term_premium"].append(y - eh)
            out["expected_excess_return"].append((Po @ Lam.T + l1) @ U.T)
        q = [(1 - prob) / 2, (1 + prob) / 2]
        coords = {"stat": ["mean", "lower", "upper"], "date": D["dates"], "maturity": tau}
        ds = {}
        for k, v in out.items():
            arr = np.stack(v)
            stats = np.stack([arr.mean(0), *np.quantile(arr, q, axis=0)])
            ds[k] = xr.DataArray(stats, dims=("stat", "date", "maturity"), coords=coords)
        return xr.Dataset(ds, attrs={"prob": prob, "n_draws": int(flat.sizes["sample"]),
                                     "units": "decimals per year"})

    def side_by_side(self, ml, idata=None) -> pd.DataFrame:
        """Table of ML estimates (with SEs) next to posterior means and sds, same labels.

        Columns: ``ml``, ``ml_se``, ``post_mean``, ``post_sd`` and ``z = (post_mean - ml) / ml_se``.
        """
        if idata is None:
            raise SpecError("side_by_side() needs a fit: pass idata (e.g. bb.load(path))")
        post = idata["posterior"].to_dataset()
        names = factor_names(int(post["A"].sizes["state"]))
        summ = ml.summary()
        rows = []
        for k in PARAM_NAMES:
            if k not in post:
                continue
            x = post[k].values.reshape(-1, *post[k].shape[2:])
            mean, sd = x.mean(0), x.std(0)
            for idx in np.ndindex(mean.shape):
                if k == "sigma_e":
                    label = "sigma_e"
                elif not idx:
                    label = k
                elif k.startswith("lam_star"):
                    label = f"{k}[{idx[0] + 1}]"
                else:
                    label = f"{k}[{','.join(names[i] for i in idx)}]"
                if label in summ.index:
                    rows.append(
                        (label, summ.loc[label, "estimate"], summ.loc[label, "se"],
                         float(mean[idx]), float(sd[idx]))
                    )
        df = pd.DataFrame(rows, columns=["parameter", "ml", "ml_se", "post_mean", "post_sd"])
        df = df.set_index("parameter")
        df["z"] = (df["post_mean"] - df["ml"]) / df["ml_se"]
        return df


def _fit_data(D: AffinePrepared, n) -> xr.Dataset:
    """``constant_data`` of a fit: what :meth:`AffineModel.bands` needs after saving/loading.

    ``yields`` (date, maturity) on every date, ``portfolio_weights`` (state, maturity) and
    ``dt`` (years between observations).
    """
    dates = D.dates
    # unnamed: a named index (e.g. "yyyymm") would become a second dimension in xarray and
    # leave `date` without coordinates
    date_index = pd.DatetimeIndex(dates, name=None) if isinstance(dates, pd.DatetimeIndex) \
        else np.asarray(dates)
    tau = np.asarray(D.tau, float)
    return xr.Dataset(
        {"yields": xr.DataArray(D.Y, dims=("date", "maturity"),
                                attrs={"units": "decimals per year, continuously compounded"}),
         "portfolio_weights": xr.DataArray(np.asarray(D.W, float), dims=("state", "maturity")),
         "dt": xr.DataArray(float(D.dt), attrs={"units": "years"})},
        coords={"date": date_index, "maturity": tau, "state": factor_names(n)})


def data_from_fit(idata) -> dict:
    """The data behind an affine fit, from its ``constant_data`` (see :func:`_fit_data`):
    ``{"Y", "tau", "dates", "dt", "W"}``."""
    const = idata["constant_data"] if "constant_data" in idata.children else None
    need = ("yields", "portfolio_weights", "dt")
    if const is not None and all(k in const.data_vars for k in need):
        Y = const["yields"].transpose("date", "maturity")
        dates = Y["date"].to_index()
        return {"Y": Y.values.astype(float), "tau": Y["maturity"].values.astype(float),
                "dates": dates, "dt": float(const["dt"]),
                "W": const["portfolio_weights"].transpose("state", "maturity").values}
    missing = [k for k in need if const is None or k not in const.data_vars]
    raise SpecError(
        f"the fit holds no constant_data.{missing[0]} (a fit made before this version of "
        "bayesbond): call fit() again")


def date_loglik(model, idata) -> xr.DataArray:
    """Pointwise log-likelihood of each date, ``(chain, draw, date)``, of an affine fit.

    Parameters
    ----------
    model : pymc.Model
        The model that was sampled (:meth:`AffineModel.build`, preconditioned or not).
    idata : xarray.DataTree
        Its posterior (the free variables are read by name).

    Notes
    -----
    The portfolio likelihood factorises over dates ``t = 2..T`` (conditional on the first):
    ``l_t = log N(P_t | c + Phi P_{t-1}, Q) + sum_j log N((W_perp y_t)_j | (W_perp (d + Z P_t))_j,
    sigma_e^2)``, the exact transition density of the portfolios times the density of the
    pricing errors of that date, so ``sum_t l_t`` is the model's log-likelihood (and that of
    ``affine_ml(..., method="portfolio")``). Evaluated with the model's own graph, draw by draw.
    """
    post = idata["posterior"].to_dataset()
    obs = [model["portfolios"], model["pricing_errors"]]
    lp = model.logp(vars=obs, sum=False)
    fn = model.compile_fn(outs=lp[0] + lp[1].sum(axis=-1), inputs=model.value_vars,
                          on_unused_input="ignore", point_fn=False)
    names = [model.rvs_to_values[v].name for v in model.free_RVs]
    C, Dn = post.sizes["chain"], post.sizes["draw"]
    vals = {k: post[k].transpose("chain", "draw", ...).values for k in names}
    out = np.empty((C, Dn, len(model.coords["date"])))
    for c in range(C):
        for d in range(Dn):
            out[c, d] = fn(*(vals[k][c, d] for k in names))
    return xr.DataArray(out, dims=("chain", "draw", "date"),
                        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                "date": np.asarray(model.coords["date"])})


def _eig_parts(pt, eig, n):
    """Real and absolute imaginary parts of the P* eigenvalues (ordered), in PyTensor."""
    k = n_real(n)
    if n <= 2:
        return eig.lam, pt.zeros(n)
    r_re = pt.sqrt(pt.maximum(eig.D, 0.0) + 1e-300)
    r_im = pt.sqrt(pt.maximum(-eig.D, 0.0) + 1e-300)
    re = pt.concatenate([eig.lam, pt.stack([eig.m + r_re, eig.m - r_re])])
    im = pt.concatenate([pt.zeros(k), pt.stack([r_im, r_im])])
    return re, im


def p_eigenvalues(A):
    """Real and absolute imaginary parts of the eigenvalues of ``A`` (..., n, n), slowest first
    (largest real part first)."""
    ev = np.linalg.eigvals(np.asarray(A, float))
    order = np.argsort(-ev.real, axis=-1, kind="stable")
    ev = np.take_along_axis(ev, order, axis=-1)
    return ev.real, np.abs(ev.imag)


def _laplace(ml, Y, prior_sd, stable_scale=None):
    """Centre and precision of the Laplace preconditioner, on the model's free vector.

    The ML portfolio fit's ``theta`` is the free vector up to a diagonal scaling ``D``
    (``k_inf``, off-diagonal ``Sigma`` and ``a`` are scaled in ``AffineSpec``), so with the
    numerical Hessian ``H_ml`` of the negative log-likelihood at the ML estimate,
    ``theta_hat = D theta_ml`` and ``H = D^-1 H_ml D^-1 + diag(1 / prior_sd^2) + H_stab``, with
    ``H_stab`` the Hessian of the stability prior factor in ``A`` (see :func:`_hurwitz_margins`).

    With ``stable_scale`` (``stationary=True``) the ``A`` block of the free vector is
    ``(A_chol, A_skew)`` of :func:`~bayesbond.core.affine_stable.stable_drift` (the same ``n^2``
    places): the centre maps the ML ``A`` there (moved into the stable set if needed) and the
    likelihood Hessian is carried over by the Jacobian, ``J' H J`` (exact at a mode; any
    positive definite preconditioner leaves the posterior unchanged).
    """
    from bayesbond.baselines import affine_ml as aml
    from bayesbond.core.numdiff import num_hessian

    spec, th = ml.spec, np.asarray(ml.theta, float)
    Y = np.asarray(Y, float)
    D = np.ones(spec.size)
    D[spec.slices["k"]] = aml.K_SCALE
    off = np.array([i != j for i, j in zip(*spec.tril, strict=True)])
    D[spec.slices["L"]] = np.where(off, aml.OFF_SCALE, 1.0)
    D[spec.slices["a"]] = aml.A_SCALE
    Po = Y @ spec.W.T
    H_ml = num_hessian(lambda x: -aml.portfolio_loglik(x, spec, Y, Po), th)
    H = H_ml / np.outer(D, D) + np.diag(1.0 / np.asarray(prior_sd, float) ** 2)
    # the smooth stability factor of the prior: -log factor = sum softplus(-margins(A))
    n = spec.n
    iA = np.arange(spec.slices["A"].start, spec.slices["A"].stop)
    if stable_scale is not None:
        H_ml = H_ml / np.outer(D, D)
        c_raw, s_raw = stable_to_raw(ml.A, stable_scale)[:2]
        q = np.r_[c_raw, s_raw]
        k_c = len(c_raw)

        def drift(v):
            return stable_drift(np, v[:k_c], v[k_c:], stable_scale, n).ravel()

        J = np.eye(spec.size)
        h = 1e-6
        J[np.ix_(iA, iA)] = np.column_stack(
            [(drift(q + h * e) - drift(q - h * e)) / (2 * h) for e in np.eye(len(q))])
        H = J.T @ H_ml @ J + np.diag(1.0 / np.asarray(prior_sd, float) ** 2)
        centre = D * th
        centre[iA] = q
        return centre, 0.5 * (H + H.T)
    H[np.ix_(iA, iA)] += num_hessian(
        lambda x: sum(np.logaddexp(0.0, -m) for m in _hurwitz_margins(x.reshape(n, n), n, xp=np)),
        th[iA], h=1e-5)
    return D * th, 0.5 * (H + H.T)


def _inv_sqrt(H, floor: float = 1e-10):
    """Symmetric ``H^(-1/2)`` (eigenvalues floored at ``floor`` times the largest)."""
    w, V = np.linalg.eigh(H)
    w = np.maximum(w, floor * w.max())
    return (V / np.sqrt(w)) @ V.T


def _initvals(ml, n, stable_scale=None):
    """Starting point of the chains from an ML fit (on the model's unconstrained scale); with
    ``stable_scale`` (``stationary=True``) ``A`` as ``A_chol, A_skew``."""
    L = np.asarray(ml.Sigma)
    tril = np.tril_indices(n)
    raw = L[tril].copy()
    diag = np.array([i == j for i, j in zip(*tril, strict=True)])
    raw[diag] = np.log(raw[diag])
    A = np.asarray(ml.A)
    out = {"eig_raw": np.asarray(ml.params["eig_raw"]), "k_inf": float(ml.k_inf), "Sigma_raw": raw,
           "A": A, "a": np.asarray(ml.a, float), "log_sigma_e": float(np.log(ml.sigma_e[0]))}
    if stable_scale is not None:
        c_raw, s_raw, _ = stable_to_raw(A, stable_scale)
        del out["A"]
        out["A_chol"] = c_raw
        if n > 1:
            out["A_skew"] = s_raw
    return out

"""Bayesian factor regression of bond returns: pooled, unpooled or hierarchical by rating bucket.

``R_bt = alpha_b + beta_b'F_t + eps_bt`` for every bond ``b`` and month ``t`` where ``R_bt`` is
observed.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.baselines.dependence import cross_sectional_dependence
from bayesbond.bayes.base import BayesianModel, to_json
from bayesbond.bayes.factor_data import FactorData, ols_log_scale, prepare_factor_data
from bayesbond.bayes.factor_date_effects import (
    DATE_EFFECTS,
    DateBasis,
    adjusted_stats,
    date_basis,
    q_perp,
    split_effects,
)
from bayesbond.bayes.factor_likelihood import (
    centred_coefficients_pt,
    collapsed_loglik_pt,
    draw_theta,
    gaussian_loglik_pt,
)
from bayesbond.bayes.factor_priors import default_priors, log_sigma_reparam, resolve_priors
from bayesbond.errors import (
    CrossSectionalDependenceWarning,
    DataError,
    IdentificationWarning,
    SpecError,
    listing,
)

__all__ = ["FactorModel", "FactorPrepared", "check_dependence", "check_identification"]

MIN_BONDS_PER_GROUP = 3
MIN_RESIDUAL_MONTHS = 3
#: warn when the residuals' CD test rejects independence at this level ...
DEPENDENCE_P = 1e-3
#: ... and the variance of the mean residual of a date is this many times what independence says
DEPENDENCE_INFLATION = 1.5

POOLINGS = ("pooled", "unpooled", "hierarchical")
ERRORS = ("normal", "student_t")


def _redraw_rng(random_seed) -> np.random.Generator:
    """Generator for the (alpha, beta) redraw, derived from the sampler's ``random_seed``.

    An int or a sequence of ints (one per chain) is extended by a constant so that the redraw
    does not reuse the sampler's stream; a ``Generator`` is split with ``spawn``; ``None`` gives
    fresh entropy.
    """
    if random_seed is None:
        return np.random.default_rng()
    if isinstance(random_seed, np.random.Generator):
        return random_seed.spawn(1)[0]
    seeds = [int(x) for x in np.atleast_1d(np.asarray(random_seed, dtype=np.int64))]
    return np.random.default_rng(np.random.SeedSequence([*seeds, 7]))


class FactorPrepared(NamedTuple):
    """Prepared inputs of one factor-model fit (unpacks as ``data, priors``)."""

    data: FactorData
    priors: dict


class FactorModel(BayesianModel):
    r"""Bayesian linear factor model of bond returns.

    Parameters
    ----------
    factors : list of str, optional
        Columns of the factor-return table to use (default: all of them, in their order).
    pooling : {"hierarchical", "unpooled", "pooled"}
        How alpha and beta are shared across bonds:

        * ``"hierarchical"``: ``theta_b = (alpha_b, beta_b) ~ N(m_g, S_g S_g')`` around the mean of
          the bond's group ``g`` (partial pooling), ``m_g = (mu_alpha_g, mu_beta_g)``,
          ``S_g = diag(tau_alpha_g, tau_beta_g)`` or, with ``correlated=True``,
          ``blockdiag(tau_alpha_g, diag(tau_beta_g) L_g)`` with ``L_g`` the Cholesky factor of an
          LKJ
          correlation matrix of the betas;
        * ``"unpooled"``: independent ``alpha_b ~ N(0, alpha_scale)``,
          ``beta_bk ~ N(beta_mean_k, beta_scale_k)`` per bond;
        * ``"pooled"``: one ``alpha`` and one ``beta`` for all bonds (same priors as unpooled).

        In every case the residual scale is bond-specific and partially pooled on the log scale,
        ``log sigma_b ~ N(mu_log_sigma_g, tau_log_sigma_g)`` (one group unless hierarchical),
        sampled in partially centred coordinates ``z_log_sigma`` (see Notes).
    group : str
        Name of the grouping dimension (``"rating_bucket"``): with a :class:`BondPanel` each bond's
        group is its rating bucket by ``group_rule`` unless ``groups=`` overrides it in ``fit``.
    errors : {"normal", "student_t"}
        Gaussian errors (likelihood from exact per-bond sufficient statistics) or Student-t errors
        with a common ``nu ~ Gamma(nu_alpha, nu_beta)`` (one likelihood term per observed cell).
    priors : dict, optional
        Overrides of the defaults below (keys of :data:`~bayesbond.bayes.factor_priors.PRIOR_KEYS`;
        per-factor keys take a scalar, a sequence or a mapping factor -> value). Unknown keys raise
        :class:`~bayesbond.errors.SpecError`.
    correlated : bool
        LKJ-correlated betas inside a group (hierarchical only).
    marginalize : bool, optional
        Integrate alpha and beta out of the Gaussian likelihood exactly and draw them afterwards
        from
        their conditional posterior (default for ``errors="normal"``); not available for Student-t.
    group_rule : {"mode", "last"}
        Rule giving a migrating bond one group: the bucket it holds in most months (default) or its
        last bucket.
    check_units : bool
        Refuse returns or factors whose magnitude says they are in percent or gross returns
        (median ``|r|`` above 0.3, or values near 1); set False for non-return factors.

    Notes
    -----
    Default priors, with ``sd_y`` the standard deviation of all observed returns and ``sd_F`` that
    of
    each factor (weakly informative, in the data's units; Gelman et al. 2008):

    * ``mu_alpha_g`` (or ``alpha``) ``~ N(0, sd_y)``; ``mu_beta_gk`` (or ``beta``)
      ``~ N(0, 2.5 sd_y / sd_Fk)``;
    * ``tau_alpha_g ~ HalfNormal(sd_y / 2)``; ``tau_beta_gk ~ HalfNormal(sd_y / sd_Fk)``;
    * ``mu_log_sigma ~ N(log sd_y, 1)``; ``tau_log_sigma ~ HalfNormal(0.5)``; LKJ ``eta = 2``;
      ``nu ~ Gamma(2, 0.1)``.

    Gaussian likelihood of bond ``b`` from its own observed months only (exact):
    ``-n_b/2 log(2 pi sigma_b^2) - (y'y - 2 theta'X'y + theta'X'X theta) / (2 sigma_b^2)``. With
    ``marginalize=True`` the coefficients are integrated out in closed form
    (``y_b ~ N(X_b m_g, sigma_b^2 I + X_b S_g S_g' X_b')`` evaluated from the same statistics, see
    :mod:`bayesbond.bayes.factor_likelihood`), so NUTS explores only the group-level parameters
    and the
    residual scales; each posterior draw is completed by one exact draw of ``theta_b`` from its
    conditional posterior, which yields draws from the joint posterior. Otherwise (Student-t
    errors, or ``marginalize=False``) the hierarchical coefficients are sampled in data-centred
    coordinates ``w_b``: ``theta_b = m_g + S_g (gamma_hat_b + L_b^{-T} w_b)`` with ``gamma_hat_b``
    and ``L_b L_b' = I + S_g'X_b'X_b S_g / s_b^2`` the mean and precision of the Gaussian
    conditional posterior of the whitened coefficients (working variance ``s_b^2 = sigma_b^2``,
    or ``sigma_b^2 (nu + 3) / (nu + 1)`` for Student-t, the inverse Fisher information of a t
    location), Jacobian included
    (:func:`~bayesbond.bayes.factor_likelihood.centred_coefficients_pt`): neither the funnel of
    centred coefficients when ``tau`` is small nor the slow mixing of non-centred ones when each
    bond's months identify its coefficients (R-hat 1.05, bulk ESS 56 for ``tau_beta`` on 60
    bonds x 120 months of t5 errors).

    The log residual scales ``u_b = log sigma_b`` are neither centred (a funnel when a bucket's
    spread ``tau = tau_log_sigma_g`` is comparable to the likelihood's uncertainty about
    ``u_b``, e.g. ten bonds of ten years with similar volatilities) nor non-centred (slow mixing
    when each bond's months identify ``u_b`` sharply, as in large panels). With ``log s_b`` the
    bond's OLS log residual scale and ``prec_b = 2 (n_b - p)`` the Fisher information of ``u_b``
    (:func:`~bayesbond.bayes.factor_data.ols_log_scale`),

        w_b = tau^2 prec_b / (1 + tau^2 prec_b),   c_b = tau / sqrt(1 + tau^2 prec_b),
        u_b = mu + w_b (log s_b - mu) + c_b z_b,   z_b ~ N(-w_b (log s_b - mu) / c_b,
                                                          sqrt(1 + tau^2 prec_b)),

    which gives ``u_b ~ N(mu, tau)`` exactly given ``(mu, tau)`` (the map is affine in ``z_b``;
    :func:`~bayesbond.bayes.factor_priors.log_sigma_reparam`), so the posterior is unchanged. It
    centres and scales ``u_b`` at its Gaussian-approximate conditional posterior, under which
    ``z_b | mu, tau, y ~ N(0, 1)`` does not depend on the hyperparameters: the partially
    non-centred parameterisation of Papaspiliopoulos, Roberts and Skold (2003, 2007) with weight
    ``w_b = tau^2 / (tau^2 + 1 / prec_b)``, evaluated at the current ``tau`` rather than at a
    plug-in, which moves from the non-centred form (``w_b -> 0``: ``tau -> 0`` or a bond with few
    months) to the centred one (``w_b -> 1``) as the data identify the bond's scale. A fixed
    per-bond weight at a plug-in ``tau_hat`` (Gorinova, Moore and Hoffman 2020) leaves the funnel's
    neck below ``tau_hat``; scaling by ``tau^(1 - w)`` instead of ``c_b`` mixes badly.
    With Student-t errors ``log s_b`` and ``prec_b`` are still the Gaussian ones: a cruder centring,
    the same posterior.

    Fitting: ``fit(panel, factor_returns, *, groups=None, draws=1000, ...)`` is
    :meth:`bayesbond.bayes.base.BayesianModel.fit` (data arguments as :meth:`prepare`). Its
    tree: ``posterior``: ``alpha`` (bond; scalar when pooled), ``beta`` (bond, factor; (factor)
    when pooled), ``sigma`` and ``log_sigma`` (bond), the sampler's coordinates ``z_log_sigma``
    (bond), group parameters ``mu_alpha``, ``mu_beta``, ``tau_alpha``, ``tau_beta``
    (rating_bucket[, factor]), ``mu_log_sigma``, ``tau_log_sigma``, ``nu`` (Student-t),
    ``corr_beta`` (correlated); ``observed_data``: ``returns`` (date, bond); ``constant_data``:
    ``factor_returns`` (date, factor), ``group`` (bond); ``log_likelihood``: ``returns``
    (chain, draw, obs) with ``obs_bond``/``obs_date`` labels (large panels: computed in blocks
    by :func:`bayesbond.loo` instead). Before sampling an
    :class:`~bayesbond.errors.IdentificationWarning` names groups with fewer than 3 bonds
    (hierarchical) and bonds with fewer than ``p + 3`` months (:func:`check_identification`).

    References
    ----------
    Gelman, A., Jakulin, A., Pittau, M. G. and Su, Y.-S. (2008). A weakly informative default prior
    distribution for logistic and other regression models. *Ann. Appl. Stat.* 2(4).
    Papaspiliopoulos, O., Roberts, G. O. and Skold, M. (2003). Non-centered parameterisations for
    hierarchical models and data augmentation. *Bayesian Statistics 7*, 307-326.
    Papaspiliopoulos, O., Roberts, G. O. and Skold, M. (2007). A general framework for the
    parametrization of hierarchical models. *Statist. Sci.* 22(1) (non-centred parameterisation).
    Gorinova, M. I., Moore, D. and Hoffman, M. D. (2020). Automatic reparameterisation of
    probabilistic programs. *ICML 2020*, PMLR 119.
    Lewandowski, D., Kurowicka, D. and Joe, H. (2009). Generating random correlation matrices
    based on
    vines and extended onion method. *J. Multivariate Anal.* 100(9).
    """

    family = "factor_regression"
    prepared_type = FactorPrepared
    loglik_var = "returns"
    data_label = "returns and factors"

    def __init__(
        self,
        factors=None,
        pooling: str = "hierarchical",
        group: str = "rating_bucket",
        errors: str = "normal",
        priors: dict | None = None,
        correlated: bool = False,
        marginalize: bool | None = None,
        group_rule: str = "mode",
        check_units: bool = True,
        date_effects: str | None = None,
    ):
        if date_effects == "none":
            date_effects = None
        if pooling not in POOLINGS:
            raise SpecError(f"unknown pooling {pooling!r}; use one of {POOLINGS}")
        if errors not in ERRORS:
            raise SpecError(f"unknown errors {errors!r}; use one of {ERRORS}")
        if correlated and pooling != "hierarchical":
            raise SpecError("correlated=True needs pooling='hierarchical'")
        if marginalize is None:
            marginalize = errors == "normal"
        if marginalize and errors != "normal":
            raise SpecError("marginalize=True needs errors='normal' (Student-t is not conjugate)")
        if group_rule not in ("mode", "last"):
            raise SpecError(f"unknown group_rule {group_rule!r}; use 'mode' or 'last'")
        if date_effects not in DATE_EFFECTS:
            raise SpecError(f"unknown date_effects {date_effects!r}; use None, 'common' or "
                            "'group'")
        if date_effects is not None and not marginalize:
            raise SpecError(
                f"date_effects={date_effects!r} needs the collapsed Gaussian likelihood "
                "(errors='normal', marginalize=True): with Student-t errors the effects would "
                "enter every cell's density, and no exact date-level predictive exists")
        if date_effects == "group" and pooling == "pooled":
            raise SpecError("date_effects='group' with pooling='pooled': one shared alpha "
                            "cannot absorb a different shock mean per group; use "
                            "pooling='hierarchical' or date_effects='common'")
        if priors is not None and not isinstance(priors, dict):
            raise SpecError(f"priors must be a dict; got {type(priors).__name__}")
        self.factors = None if factors is None else [str(f) for f in factors]
        self.pooling = pooling
        self.group = str(group)
        self.errors = errors
        self.priors = dict(priors or {})
        self.correlated = bool(correlated)
        self.marginalize = bool(marginalize)
        self.group_rule = group_rule
        self.check_units = bool(check_units)
        self.date_effects = date_effects

    @classmethod
    def from_spec(cls, spec):
        """``(model, fit_kwargs)`` of a validated spec (``bayesbond.workflow.specs.Spec``).

        The pointwise log-likelihood is not stored (it can take GBs): :func:`bayesbond.compare`
        recomputes it from the posterior in bounded memory.
        """
        m = spec.model
        return cls(factors=m["factors"], pooling=m["pooling"], group=m["group"],
                   errors=m["errors"], priors=spec.priors or None,
                   correlated=m["correlated"],
                   date_effects=m.get("date_effects")), {"log_likelihood": False}

    def __repr__(self) -> str:
        return (f"FactorModel(factors={self.factors}, pooling={self.pooling!r}, "
                f"group={self.group!r}, errors={self.errors!r}, correlated={self.correlated}, "
                f"marginalize={self.marginalize}"
                + (f", date_effects={self.date_effects!r})" if self.date_effects else ")"))

    # ------------------------------------------------------------------------------ building
    def spec(self) -> dict:
        """The model specification as a JSON-serialisable dict (stored in the fit's attributes)."""
        return {
            "family": "FactorModel",
            "factors": self.factors,
            "pooling": self.pooling,
            "group": self.group,
            "errors": self.errors,
            "correlated": self.correlated,
            "marginalize": self.marginalize,
            "group_rule": self.group_rule,
            "date_effects": self.date_effects,
            "priors": {k: np.asarray(v).tolist() for k, v in self.priors.items()},
        }

    def prepare(self, panel, factor_returns, groups=None, *, returns_name: str = "returns",
                factors_name: str = "factor_returns") -> FactorPrepared:
        """Aligned data and resolved priors (see :func:`prepare_factor_data`).

        Every check of the inputs happens here, before any model is built: ``returns_name`` and
        ``factors_name`` are what the messages call the two inputs (e.g. their file names).

        Parameters
        ----------
        panel : BondPanel, xarray.DataArray (date, bond) or DataFrame (dates x bonds)
            Monthly returns, NaN where not observed.
        factor_returns : DataFrame (dates x factors)
        groups : Series or mapping bond -> group, optional
            Group of each bond (required for plain arrays when hierarchical). For a BondPanel,
            ratings or buckets that override the rating rule for the bonds named; for a
            DataFrame or DataArray, any labels (e.g. sectors). Pooled and unpooled fits record
            the groups (``constant_data.group``) for per-group summaries when they are known.

        Returns
        -------
        FactorPrepared
            ``(data, priors)``: the :class:`~bayesbond.bayes.factor_data.FactorData` and the
            resolved priors.
        """
        data = prepare_factor_data(panel, factor_returns, self.factors, pooling=self.pooling,
                                   groups=groups, group_rule=self.group_rule,
                                   returns_name=returns_name, factors_name=factors_name,
                                   check_units=self.check_units)
        if self.correlated and len(data.factors) < 2:
            raise SpecError("correlated=True needs at least two factors")
        if self.date_effects == "group" and data.group_idx is None:
            raise SpecError("date_effects='group' needs each bond's group: pass a BondPanel "
                            "with ratings or groups= (a mapping bond -> group)")
        if self.date_effects is not None and len(data.dates) <= data.n_coef + 2:
            raise SpecError(f"date_effects={self.date_effects!r} needs more than "
                            f"{data.n_coef + 2} dates; {returns_name} has {len(data.dates)}")
        try:
            defaults = default_priors(data.y, data.F, data.factors)
        except DataError as exc:
            where = factors_name if "factor" in str(exc) else returns_name
            raise DataError(f"{where}: {exc}") from None
        pri = resolve_priors(defaults, self.priors, data.factors)
        return FactorPrepared(data, pri)

    def build_model(self, data: FactorData, pri: dict):
        """The PyMC model for prepared ``data`` and resolved priors ``pri``.

        Every data-derived value (sufficient statistics, OLS log scales, group index, priors and,
        for Student-t, the long-format returns and design) enters as a named ``pm.Data``
        container, not as a constant: two panels of the same shape give the same graph, so a
        refit swaps the data into the compiled sampler (``sample(..., compile_key=...)``) and a
        new process finds the graph in PyTensor's on-disk numba cache.
        """
        import pymc as pm
        import pytensor.tensor as pt

        g_dim = self.group
        hier = self.pooling == "hierarchical"
        K = len(data.factors)
        p = K + 1
        de = self.date_effects
        coords = {"bond": list(data.bonds), "factor": list(data.factors),
                  "date": data.dates}
        if hier or de == "group":
            coords[g_dim] = list(data.group_names)
        if de is not None or (hier and not self.marginalize):
            coords["coef"] = ["alpha", *data.factors]
        if de is not None:
            coords["date_perp"] = np.arange(len(data.dates) - p)
            gd = data.group_idx if de == "group" else np.zeros(len(data.bonds), dtype=int)
            basis = date_basis(data.y, data.design(), gd,
                               len(data.group_names) if de == "group" else 1)
        if self.correlated:
            coords["factor2"] = list(data.factors)
        gdims = (g_dim,) if hier else ()
        stats = data.stats()
        log_s, prec, _ = ols_log_scale(*stats)

        with pm.Model(coords=coords) as model:
            def shared(name, value):
                if pt.as_tensor(value).dtype == "float32":
                    # a Python number exact in float32 (a fixed default such as 0.5): PyTensor
                    # types it float32; kept a constant, so the draws stay as they were
                    return pt.as_tensor(value)
                value = np.asarray(value)
                return pm.Data(name, value, shape=value.shape)

            XtX, Xty, yty, n = (shared(k, v) for k, v in zip(("XtX", "Xty", "yty", "n_obs"),
                                                              stats, strict=True))
            pri = {k: shared(f"prior_{k}", v) for k, v in pri.items()
                   if k != "date_scale" or de is not None}
            gi = shared("group_idx", data.group_idx) if hier else None
            log_s, prec = shared("log_s_ols", log_s), shared("prec_ols", prec)
            # residual scales: partially pooled on the log scale, sampled in coordinates centred
            # at each bond's approximate conditional posterior (see the class Notes)
            mu_ls = pm.Normal("mu_log_sigma", pri["log_sigma_mean"], pri["log_sigma_sd"],
                              dims=gdims)
            tau_ls = pm.HalfNormal("tau_log_sigma", pri["tau_log_sigma"], dims=gdims)
            mu_lb, tau_lb = (mu_ls[gi], tau_ls[gi]) if hier else (mu_ls, tau_ls)
            loc, scale, shift, slope = log_sigma_reparam(mu_lb, tau_lb, log_s, prec)
            z_ls = pm.Normal("z_log_sigma", loc, scale, dims="bond")
            log_sigma = pm.Deterministic("log_sigma", shift + slope * z_ls, dims="bond")
            sigma = pm.Deterministic("sigma", pt.exp(log_sigma), dims="bond")

            c_b = None
            if de is not None:  # see bayesbond.bayes.factor_date_effects
                c, c_b, Xty, yty = self._date_effects_pt(basis, shared, pri, Xty, yty)

            m_b, S_b = None, None
            m_shared = pt.concatenate([pt.zeros(1), pri["beta_mean"]])
            S_shared = pt.concatenate([pri["alpha_scale"][None], pri["beta_scale"]])
            if hier:
                if de is None:
                    mu_a = pm.Normal("mu_alpha", 0.0, pri["alpha_scale"], dims=g_dim)
                    mu_b = pm.Normal("mu_beta", pri["beta_mean"], pri["beta_scale"],
                                     dims=(g_dim, "factor"))
                else:  # the data identify m*_g = m_g + c_g: sampled, with the prior of m_g
                    m_star = pm.Flat("mu_theta_star", dims=(g_dim, "coef"))
                    m_true = m_star - (c if de == "group" else c[0][None, :])
                    mu_a = pm.Deterministic("mu_alpha", m_true[:, 0], dims=g_dim)
                    mu_b = pm.Deterministic("mu_beta", m_true[:, 1:], dims=(g_dim, "factor"))
                    pm.Potential("prior_mu", pt.sum(pm.logp(
                        pm.Normal.dist(m_shared[None, :], S_shared[None, :]),
                        pt.concatenate([mu_a[:, None], mu_b], axis=1))))
                tau_a = pm.HalfNormal("tau_alpha", pri["tau_alpha"], dims=g_dim)
                tau_b = pm.HalfNormal("tau_beta", pri["tau_beta"], dims=(g_dim, "factor"))
                m_g = pt.concatenate([mu_a[:, None], mu_b], axis=1)  # (G, p)
                if self.correlated:
                    G = len(data.group_names)
                    L = pm.LKJCorr("chol_corr_beta", n=K, eta=pri["lkj_eta"], shape=(G, K, K),
                                   dims=(g_dim, "factor", "factor2"))
                    pm.Deterministic("corr_beta", L @ pt.swapaxes(L, -1, -2),
                                     dims=(g_dim, "factor", "factor2"))
                    S_g = pt.zeros((G, p, p))
                    S_g = pt.set_subtensor(S_g[:, 0, 0], tau_a)
                    S_g = pt.set_subtensor(S_g[:, 1:, 1:], tau_b[:, :, None] * L)
                else:
                    S_g = pt.concatenate([tau_a[:, None], tau_b], axis=1)  # (G, p) diagonal
                if de is not None:
                    m_g = m_star
                m_b, S_b = m_g[gi], S_g[gi]
            elif self.pooling == "unpooled":
                m_b = pt.broadcast_to(m_shared, (len(data.bonds), p))
                S_b = pt.broadcast_to(S_shared, (len(data.bonds), p))
                if de is not None:
                    m_b = m_b + c_b
            elif de is not None:  # pooled, common effects: theta* = theta + c
                m_shared = m_shared + c[0]

            if self.marginalize:
                ll = collapsed_loglik_pt(
                    XtX, Xty, yty, n, sigma,
                    m_shared if self.pooling == "pooled" else m_b,
                    S_shared if self.pooling == "pooled" else S_b,
                    pooled=self.pooling == "pooled",
                )
                pm.Potential("loglik_returns", pt.sum(ll))
                return model

            # explicit coefficients
            if self.pooling == "pooled":
                alpha = pm.Normal("alpha", 0.0, pri["alpha_scale"])
                beta = pm.Normal("beta", pri["beta_mean"], pri["beta_scale"], dims="factor")
                theta = pt.concatenate([alpha[None], beta])[None, :]
                theta = pt.broadcast_to(theta, (len(data.bonds), p))
            elif self.pooling == "unpooled":
                alpha = pm.Normal("alpha", 0.0, pri["alpha_scale"], dims="bond")
                beta = pm.Normal("beta", pri["beta_mean"], pri["beta_scale"],
                                 dims=("bond", "factor"))
                theta = pt.concatenate([alpha[:, None], beta], axis=1)
            else:
                if self.errors == "normal":
                    s2 = sigma**2
                else:  # the Fisher information of a t location is (nu + 1) / ((nu + 3) sigma^2)
                    nu = pm.Gamma("nu", alpha=pri["nu_alpha"], beta=pri["nu_beta"])
                    s2 = sigma**2 * (nu + 3.0) / (nu + 1.0)
                w = pm.Flat("w_theta", dims=("bond", "coef"))
                theta, logp_theta = centred_coefficients_pt(XtX, Xty, s2, m_b, S_b, w)
                pm.Potential("prior_theta", pt.sum(logp_theta))
                pm.Deterministic("alpha", theta[:, 0], dims="bond")
                pm.Deterministic("beta", theta[:, 1:], dims=("bond", "factor"))

            if self.errors == "normal":
                ll = gaussian_loglik_pt(pt.as_tensor(XtX), pt.as_tensor(Xty), pt.as_tensor(yty),
                                        pt.as_tensor(n), theta, sigma)
                pm.Potential("loglik_returns", pt.sum(ll))
            else:
                if not hier:
                    nu = pm.Gamma("nu", alpha=pri["nu_alpha"], beta=pri["nu_beta"])
                t_idx, b_idx, y_long = data.long()
                X = data.design()
                # data containers (as the statistics above), so a refit reuses the compile
                X_obs, b_obs = shared("X_obs", X[t_idx]), shared("obs_bond_idx", b_idx)
                mu = pt.sum(X_obs * theta[b_obs], axis=-1)
                model.add_coord("obs", np.arange(len(y_long)))
                pm.StudentT("returns", nu=nu, mu=mu, sigma=sigma[b_obs],
                            observed=shared("y_obs", y_long), dims="obs")
        return model

    def _date_effects_pt(self, basis: DateBasis, shared, pri, Xty, yty):
        """The date effects' variables (:mod:`bayesbond.bayes.factor_date_effects`).

        Returns ``c`` (G, p), each bond's ``c_b`` (B, p) and the sufficient statistics of
        ``y - d_perp`` (``Xty``, ``yty``).
        """
        import pymc as pm
        import pytensor.tensor as pt

        b = DateBasis(*(shared(f"date_{k}", v) for k, v in zip(DateBasis._fields, basis,
                                                                strict=True)))
        by_group = self.date_effects == "group"
        s_d = pm.HalfNormal("sigma_date", pri["date_scale"],
                            dims=(self.group,) if by_group else ())
        s_g = s_d[:, None] if by_group else pt.reshape(s_d, (1, 1))    # (G, 1)
        loc, scale, shift, slope = log_sigma_reparam(0.0, s_g, b.z_hat, b.prec[:, None])
        if by_group:
            z = pm.Normal("z_date", loc, scale, dims=(self.group, "date_perp"))
            u = pm.Normal("z_date_coef", 0.0, 1.0, dims=(self.group, "coef"))
        else:
            z = pm.Normal("z_date", loc[0], scale[0], dims="date_perp")[None, :]
            u = pm.Normal("z_date_coef", 0.0, 1.0, dims="coef")[None, :]
        c = s_g * (u @ b.L_coef.T)                                     # rows sigma_g L u_g
        d_perp = q_perp(b.V, b.tau, shift + slope * z, pt.concatenate,
                        p=basis.X.shape[1])                            # (G, T)
        d = c @ b.X.T + d_perp
        if by_group:
            pm.Deterministic("date_effect", d.T, dims=("date", self.group))
        else:
            pm.Deterministic("date_effect", d[0], dims="date")
        Xty, yty = adjusted_stats(Xty, yty, b.y0, b.mask, b.X, d_perp, b.group)
        return c, c[b.group], Xty, yty

    # ----------------------------------------------------- the model contract (BayesianModel)
    def build(self, prepared: FactorPrepared):
        """The PyMC model of ``prepared`` (:meth:`prepare`); see :meth:`build_model`."""
        return self.build_model(prepared.data, prepared.priors)

    def display(self, prepared) -> str:
        return f"FactorModel({self.pooling}, {self.errors} errors)"

    def describe(self, prepared) -> str:
        data = prepared.data
        return (f"{self.display(prepared)}: {len(data.bonds)} bonds x {len(data.dates)} months, "
                f"factors {', '.join(data.factors)}")

    def check(self, prepared, stacklevel: int) -> None:
        check_identification(prepared.data, self.pooling, self.display(prepared),
                             stacklevel=stacklevel)
        if self.date_effects is None:
            check_dependence(prepared.data, self.display(prepared), stacklevel=stacklevel)

    def postprocess(self, idata, prepared, options, random_seed) -> None:
        """The exact redraw of ``alpha``, ``beta`` (collapsed models) and the error attributes."""
        from bayesbond.bayes.sampling import report

        if self.marginalize:
            report("post-processing: drawing alpha and beta from their exact conditional "
                   "posterior")
            self._add_coefficients(idata, prepared.data, prepared.priors, random_seed)
        idata.attrs["errors"] = self.errors
        idata.attrs["pooling"] = self.pooling

    def priors_used(self, prepared) -> dict:
        return dict(prepared.priors)

    def compile_key(self, prepared, model):
        """The spec and the sizes (bonds, dates, factors, groups, observed cells for Student-t):
        the data enter :meth:`build_model` as data containers, swapped in on a reuse."""
        data = prepared.data
        n_groups = 0 if data.group_idx is None else len(data.group_names)
        cells = int(np.isfinite(data.y).sum()) if self.errors == "student_t" else 0
        return (to_json(self.fit_spec(prepared)), data.y.shape, len(data.factors), n_groups,
                cells)

    def fit_spec(self, prepared) -> dict:
        return {**self.spec(), "factors": list(prepared.data.factors)}

    def data_groups(self, prepared) -> dict[str, xr.Dataset]:
        """``observed_data``: returns (date, bond); ``constant_data``: factor returns (date,
        factor) and the bonds' groups (bond)."""
        data = prepared.data
        dates = pd.DatetimeIndex(data.dates, name="date")
        obs = xr.Dataset({"returns": xr.DataArray(
            data.y, dims=("date", "bond"), coords={"date": dates, "bond": list(data.bonds)})})
        const = xr.Dataset({"factor_returns": xr.DataArray(
            data.F, dims=("date", "factor"),
            coords={"date": dates, "factor": list(data.factors)})})
        if data.group_idx is not None:
            const["group"] = xr.DataArray(
                np.array([data.group_names[i] for i in data.group_idx], dtype=str),
                dims=("bond",), coords={"bond": list(data.bonds)}, attrs={"name": self.group})
        return {"observed_data": obs, "constant_data": const}

    def loglik_size(self, prepared) -> int:
        return int(np.isfinite(prepared.data.y).sum())

    def pointwise_loglik(self, idata, *, dtype="float64", max_bytes: int = 256 * 2**20,
                         model=None) -> xr.DataArray:
        """Log-likelihood of each observed cell (dim ``obs``), from the fit alone
        (:func:`bayesbond.bayes.factor_loglik.pointwise_loglik`)."""
        from bayesbond.bayes.factor_loglik import pointwise_loglik

        return pointwise_loglik(idata, dtype=dtype, max_bytes=max_bytes)

    def _date_groups(self, data: FactorData) -> np.ndarray:
        """Group of each bond's date effects (all 0 for common effects)."""
        if self.date_effects == "group":
            return data.group_idx
        return np.zeros(len(data.bonds), dtype=int)

    def _date_effect_draws(self, post, data: FactorData, max_bytes: int = 64 * 2**20):
        """``effects(chain) -> (Xty, yty, c)``: the statistics of ``y - d_perp`` per draw,
        (draw, bond, p) and (draw, bond), and the projections ``c`` (draw, G, p) of the chain's
        date effects (in blocks of draws of at most ``max_bytes`` of temporaries)."""
        d = post["date_effect"]
        if self.date_effects == "group":
            d = d.transpose("chain", "draw", self.group, "date").values
        else:
            d = d.transpose("chain", "draw", "date").values[:, :, None, :]
        X = data.design()
        c_all, d_perp = split_effects(d, X)
        basis = date_basis(data.y, X, self._date_groups(data), d.shape[2])
        XtX, Xty, yty, n = data.stats()
        B, T = basis.y0.shape
        step = max(1, max_bytes // (16 * B * T))

        def effects(chain):
            parts = [adjusted_stats(Xty, yty, basis.y0, basis.mask, X, d_perp[chain, s:s + step],
                                    basis.group) for s in range(0, d.shape[1], step)]
            return (np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts]),
                    c_all[chain])

        return effects

    def _add_coefficients(self, idata, data: FactorData, pri: dict, random_seed) -> None:
        """Complete each posterior draw with a draw of (alpha, beta) from its exact conditional."""
        post = idata["posterior"].to_dataset()
        rng = _redraw_rng(random_seed)
        XtX, Xty, yty, n = data.stats()
        sigma = post["sigma"].transpose("chain", "draw", "bond").values
        C, D, B = sigma.shape
        K = len(data.factors)
        p = K + 1
        m_shared = np.concatenate([[0.0], pri["beta_mean"]])
        S_shared = np.concatenate([[pri["alpha_scale"]], pri["beta_scale"]])
        effects = self._date_effect_draws(post, data) if self.date_effects else None
        thetas = []
        for c in range(C):  # one chain at a time bounds the memory
            Xty_c, yty_c, shift = Xty, yty, 0.0
            if effects is not None:  # theta* = theta + c_g given d_perp (module notes)
                Xty_c, yty_c, shift = effects(c)
            if self.pooling == "pooled":
                m = m_shared + (shift[:, 0] if effects is not None else np.zeros((D, p)))
                th = draw_theta(XtX, Xty_c, yty_c, n, sigma[c], m,
                                np.broadcast_to(S_shared, (D, p)), rng, diag=True, pooled=True)
                thetas.append(th - (shift[:, 0] if effects is not None else 0.0))
                continue
            if self.pooling == "unpooled":
                m_b = np.broadcast_to(m_shared, (D, B, p))
                S_b = np.broadcast_to(S_shared, (D, B, p))
            else:
                g = self.group
                gi = data.group_idx
                mu_a = post["mu_alpha"].transpose("chain", "draw", g).values[c]
                mu_b = post["mu_beta"].transpose("chain", "draw", g, "factor").values[c]
                tau_a = post["tau_alpha"].transpose("chain", "draw", g).values[c]
                tau_b = post["tau_beta"].transpose("chain", "draw", g, "factor").values[c]
                m_g = np.concatenate([mu_a[..., None], mu_b], axis=-1)
                if self.correlated:
                    L = post["chol_corr_beta"].values[c]
                    S_g = np.zeros((D, len(data.group_names), p, p))
                    S_g[..., 0, 0] = tau_a
                    S_g[..., 1:, 1:] = tau_b[..., :, None] * L
                else:
                    S_g = np.concatenate([tau_a[..., None], tau_b], axis=-1)
                m_b, S_b = m_g[:, gi], S_g[:, gi]
            shift_b = 0.0 if effects is None else shift[:, self._date_groups(data)]
            th = draw_theta(XtX, Xty_c, yty_c, n, sigma[c], m_b + shift_b, S_b, rng,
                            diag=not self.correlated)
            thetas.append(th - shift_b)
        theta = np.stack(thetas)
        chain = post["chain"].values
        draw = post["draw"].values
        if self.pooling == "pooled":
            alpha = xr.DataArray(theta[..., 0], dims=("chain", "draw"),
                                 coords={"chain": chain, "draw": draw})
            beta = xr.DataArray(theta[..., 1:], dims=("chain", "draw", "factor"),
                                coords={"chain": chain, "draw": draw, "factor": data.factors})
        else:
            alpha = xr.DataArray(theta[..., 0], dims=("chain", "draw", "bond"),
                                 coords={"chain": chain, "draw": draw, "bond": list(data.bonds)})
            beta = xr.DataArray(theta[..., 1:], dims=("chain", "draw", "bond", "factor"),
                                coords={"chain": chain, "draw": draw, "bond": list(data.bonds),
                                        "factor": data.factors})
        ds = post.assign(alpha=alpha, beta=beta)
        idata["posterior"] = xr.DataTree(ds)


def check_dependence(data: FactorData, model_name: str = "FactorModel",
                     stacklevel: int = 2) -> str | None:
    """Warn when the bonds' OLS residuals share shocks (a model without date effects).

    Returns the message issued as :class:`~bayesbond.errors.CrossSectionalDependenceWarning`
    (None if none): when the CD statistic of all bonds or of a group has a p-value below
    :data:`DEPENDENCE_P` and the variance of a date's mean residual is more than
    :data:`DEPENDENCE_INFLATION` times what independence says
    (:func:`bayesbond.baselines.dependence.cross_sectional_dependence`).
    """
    table = cross_sectional_dependence(data.y, data.design(), data.group_idx,
                                       None if data.group_idx is None else data.group_names)
    hit = table[(table["p_value"] < DEPENDENCE_P)
                & (table["variance_inflation"] > DEPENDENCE_INFLATION)]
    if hit.empty:
        return None
    shown = "; ".join(f"{name}: rho {r.rho:.3f}, CD {r.cd:.1f}, "
                      f"variance x{r.variance_inflation:.1f}" for name, r in hit.iterrows())
    msg = (f"{model_name}: the residuals share shocks across bonds ({shown}; average pairwise "
           "correlation of OLS residuals, Pesaran CD statistic, and the factor by which "
           "independence understates the variance of a date's mean residual): bucket alphas, "
           "bucket expected returns and date-level comparisons would be too precise. Fix: "
           "FactorModel(..., date_effects='common') or 'group' (one shock per bucket); "
           "bb.residual_dependence(panel, factors) shows the table")
    warnings.warn(msg, CrossSectionalDependenceWarning, stacklevel=stacklevel + 1)
    return msg


def check_identification(data: FactorData, pooling: str, model_name: str = "FactorModel",
                         stacklevel: int = 2) -> list[str]:
    """Warn, before sampling, about parts of the model the data barely identify.

    Parameters
    ----------
    data : FactorData
        Prepared inputs (:meth:`FactorModel.prepare`).
    pooling : str
        ``"hierarchical"`` checks the bonds per group; every pooling checks months per bond.

    Returns
    -------
    list of str
        The messages issued as :class:`~bayesbond.errors.IdentificationWarning` (empty if none).

    Notes
    -----
    A group's spreads ``tau_alpha_g``, ``tau_beta_g`` and ``tau_log_sigma_g`` are the standard
    deviations of its bonds' coefficients around the group mean: with ``m_g`` bonds they are
    estimated from ``m_g`` values, so for ``m_g < 3`` (one bond: none to compare; two: a single
    difference) the prior alone shapes them, and the posterior of the bond coefficients given
    ``tau -> 0`` is a funnel NUTS cannot follow (divergences). A bond with ``n_b`` months and
    ``p = K + 1`` coefficients has ``n_b - p`` residual degrees of freedom for its ``sigma_b``;
    fewer than 3 leave ``sigma_b`` (and, unpooled, ``alpha_b``, ``beta_b``) to the prior.
    """
    out = []
    p = len(data.factors) + 1
    if pooling == "hierarchical" and data.group_idx is not None:
        small = []
        for g, gname in enumerate(data.group_names):
            members = [str(b) for b, i in zip(data.bonds, data.group_idx, strict=True) if i == g]
            if len(members) < MIN_BONDS_PER_GROUP:
                small.append(f"{gname} has {len(members)} bond{'s' * (len(members) != 1)} "
                             f"({', '.join(members)})")
        if small:
            out.append(
                f"{model_name}: {'; '.join(small)}: a group's spreads (tau_alpha, tau_beta, "
                f"tau_log_sigma) need at least {MIN_BONDS_PER_GROUP} bonds to be estimated; "
                "with fewer only the prior identifies them and sampling meets a funnel "
                "(divergences). Fix: merge the small group into another (groups= a mapping "
                "bond -> group), use pooling='pooled' (or 'unpooled'), or raise target_accept "
                "(e.g. 0.99).")
    n = np.isfinite(data.y).sum(axis=0)
    few = [(str(b), int(k)) for b, k in zip(data.bonds, n, strict=True)
           if k - p < MIN_RESIDUAL_MONTHS]
    if few:
        listed = listing(f"{b} ({k} months)" for b, k in few)
        out.append(
            f"{model_name}: bonds {listed} have fewer than {p + MIN_RESIDUAL_MONTHS} "
            f"observed months for {p} coefficients: their residual scale"
            + (" and coefficients are" if pooling == "unpooled" else " is")
            + " identified mostly by the prior. Fix: drop them, or use pooling='hierarchical' "
            "or 'pooled' so that other bonds inform them.")
    for msg in out:
        warnings.warn(msg, IdentificationWarning, stacklevel=stacklevel + 1)
    return out

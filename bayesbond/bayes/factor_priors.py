"""Default priors of the factor regression, scaled to the data's units, and user overrides.

Scales follow the weakly-informative "auto-scaling" rule of Gelman et al. (2008, *Ann. Appl. Stat.*
2(4)) and rstanarm (Goodrich et al., 2024, "Prior distributions for rstanarm models"): a slope prior
of scale ``2.5 sd(y) / sd(x)``, so the priors mean the same thing whether returns are in decimals or
percent.
"""

from __future__ import annotations

import numpy as np

from bayesbond.errors import DataError, SpecError

__all__ = ["PRIOR_KEYS", "default_priors", "log_sigma_reparam", "resolve_priors"]

#: key -> (description, per-factor?)
PRIOR_KEYS = {
    "alpha_scale": ("sd of the Normal prior of alpha (or of its bucket mean mu_alpha)", False),
    "beta_mean": ("mean of the Normal prior of beta (or of mu_beta), per factor", True),
    "beta_scale": ("sd of the Normal prior of beta (or of mu_beta), per factor", True),
    "tau_alpha": ("scale of the HalfNormal prior of tau_alpha (bond dispersion of alpha)", False),
    "tau_beta": ("scale of the HalfNormal prior of tau_beta (bond dispersion of beta), per factor",
                 True),
    "log_sigma_mean": ("mean of the Normal prior of mu_log_sigma", False),
    "log_sigma_sd": ("sd of the Normal prior of mu_log_sigma", False),
    "tau_log_sigma": ("scale of the HalfNormal prior of tau_log_sigma", False),
    "lkj_eta": ("shape of the LKJ prior of the beta correlations (correlated=True)", False),
    "nu_alpha": ("shape of the Gamma prior of the Student-t degrees of freedom nu", False),
    "nu_beta": ("rate of the Gamma prior of the Student-t degrees of freedom nu", False),
    "date_scale": ("scale of the HalfNormal prior of sigma_date (sd of the random date effects)",
                   False),
}


def default_priors(y: np.ndarray, F: np.ndarray, factors=None) -> dict:
    """Weakly-informative defaults from the return scale ``sd_y`` and the factor scales ``sd_F``.

    Returns
    -------
    dict
        ``alpha_scale = sd_y``; ``beta_mean = 0``; ``beta_scale = 2.5 sd_y / sd_F``;
        ``tau_alpha = sd_y / 2``; ``tau_beta = sd_y / sd_F``; ``log_sigma_mean = log sd_y``;
        ``log_sigma_sd = 1``; ``tau_log_sigma = 0.5``; ``lkj_eta = 2``; ``nu ~ Gamma(2, 0.1)``.
    """
    yo = y[np.isfinite(y)]
    sd_y = float(np.std(yo))
    sd_f = np.std(F, axis=0)
    if not np.isfinite(sd_y) or sd_y <= 0:
        raise DataError("returns have no variation (every observed return is the same): "
                        "cannot scale the default priors")
    constant = (np.ptp(F, axis=0) == 0) | ~(sd_f > 0)  # np.std of equal values may be 1e-18
    if np.any(constant):
        names = list(factors) if factors is not None else [str(k) for k in range(F.shape[1])]
        const = [names[k] for k in np.flatnonzero(constant)]
        raise DataError(f"factor(s) {const} constant over the sample: their betas cannot be "
                        "estimated (and their priors not scaled); drop them from the factors")
    return {
        "alpha_scale": sd_y,
        "beta_mean": np.zeros(F.shape[1]),
        "beta_scale": 2.5 * sd_y / sd_f,
        "tau_alpha": 0.5 * sd_y,
        "tau_beta": sd_y / sd_f,
        "log_sigma_mean": float(np.log(sd_y)),
        "log_sigma_sd": 1.0,
        "tau_log_sigma": 0.5,
        "lkj_eta": 2.0,
        "nu_alpha": 2.0,
        "nu_beta": 0.1,
        "date_scale": 0.5 * sd_y,
    }


def resolve_priors(defaults: dict, priors: dict | None, factors: list) -> dict:
    """Merge user ``priors`` into ``defaults``.

    Per-factor keys accept a scalar (all factors), a sequence in factor order or a mapping
    factor -> value (unnamed factors keep their default).

    Raises
    ------
    SpecError
        Unknown keys (listing the valid ones), unknown factors, wrong lengths, non-positive scales.
    """
    out = {k: (np.array(v, dtype=float) if PRIOR_KEYS[k][1] else float(v))
           for k, v in defaults.items()}
    if not priors:
        return out
    unknown = sorted(set(priors) - set(PRIOR_KEYS))
    if unknown:
        raise SpecError(f"unknown prior keys {unknown}; valid keys: {sorted(PRIOR_KEYS)}")
    K = len(factors)
    for key, value in priors.items():
        per_factor = PRIOR_KEYS[key][1]
        if per_factor:
            vec = out[key].copy()
            if isinstance(value, dict):
                bad = [f for f in value if f not in factors]
                if bad:
                    raise SpecError(f"prior {key!r} names unknown factors {bad}; "
                                    f"factors: {factors}")
                for f, v in value.items():
                    vec[factors.index(f)] = float(v)
            else:
                arr = np.asarray(value, dtype=float)
                if arr.ndim == 0:
                    vec[:] = float(arr)
                elif arr.shape == (K,):
                    vec = arr.copy()
                else:
                    raise SpecError(
                        f"prior {key!r} needs a scalar, {K} values (one per factor {factors}) or "
                        f"a mapping factor -> value; got shape {arr.shape}"
                    )
            out[key] = vec
        else:
            try:
                out[key] = float(value)
            except (TypeError, ValueError) as exc:
                raise SpecError(f"prior {key!r} must be a number; got {value!r}") from exc
    for key, value in out.items():
        if key in ("beta_mean", "log_sigma_mean"):
            if not np.all(np.isfinite(value)):
                raise SpecError(f"prior {key!r} must be finite; got {value}")
        elif not np.all(np.asarray(value) > 0):
            raise SpecError(f"prior {key!r} must be positive; got {value}")
    return out


def log_sigma_reparam(mu, tau, log_s, prec):
    r"""Partial centring of ``log sigma_b ~ N(mu, tau)`` at its approximate conditional posterior.

    Works elementwise on numpy arrays and PyTensor tensors alike.

    Parameters
    ----------
    mu, tau
        Group mean and spread of the log residual scales, broadcast to the bonds.
    log_s, prec : ndarray (B,)
        Each bond's OLS log residual scale and the likelihood precision of ``log sigma_b``
        (:func:`~bayesbond.bayes.factor_data.ols_log_scale`; ``prec = 0``: no information).

    Returns
    -------
    loc, scale
        Prior of the sampled coordinate: ``z_b ~ N(loc_b, scale_b)``.
    shift, slope
        ``log sigma_b = shift_b + slope_b z_b``.

    Notes
    -----
    Approximating the likelihood of ``u_b = log sigma_b`` by ``N(log s_b, 1 / prec_b)``, the
    conditional posterior of ``u_b`` given ``(mu, tau)`` is ``N(a_b, c_b^2)`` with

        w_b = tau^2 prec_b / (1 + tau^2 prec_b),   a_b = mu + w_b (log s_b - mu),
        c_b = tau / sqrt(1 + tau^2 prec_b),

    and ``u_b = a_b + c_b z_b``. For fixed ``(mu, tau)`` the map is affine, so

        z_b ~ N((mu - a_b) / c_b, tau / c_b) = N(-w_b (log s_b - mu) / c_b, sqrt(1 + tau^2 prec_b))

    makes ``u_b ~ N(mu, tau)`` exactly, whatever the data (the density of ``z_b`` is that of
    ``u_b`` times the Jacobian ``c_b``); only the sampler's coordinates change. Under the Gaussian
    approximation ``z_b | mu, tau, y ~ N(0, 1)``: the coordinate is a posteriori independent of the
    hyperparameters, which removes the funnel between ``tau`` and the bond scales. ``w_b`` is the
    weight of Papaspiliopoulos, Roberts and Skold's (2003, 2007) partially non-centred
    parameterisation ``u_b = (1 - w_b) mu + u~_b``, evaluated at the current ``tau`` rather than a
    plug-in: ``tau^2 prec_b -> 0`` (little data, or ``tau -> 0``) gives the non-centred
    ``u_b = mu + tau z_b``; ``tau^2 prec_b -> infinity`` the centred form up to the fixed affine map
    ``u_b = log s_b + z_b / sqrt(prec_b)``.
    """
    q = 1.0 + tau**2 * prec
    w = tau**2 * prec / q
    slope = tau / q**0.5
    shift = mu + w * (log_s - mu)
    return (mu - shift) / slope, q**0.5, shift, slope

"""Default priors of the factor regression, scaled to the data's units, and user overrides.

Scales follow the weakly-informative "auto-scaling" rule of Gelman et al. (2008, *Ann. Appl. Stat.*
2(4)) and rstanarm (Goodrich et al., 2024, "Prior distributions for rstanarm models"): a slope prior
of scale ``2.5 sd(y) / sd(x)``, so the priors mean the same thing whether returns are in decimals or
percent.
"""

from __future__ import annotations

import numpy as np

from bayesbond.errors import SpecError

__all__ = ["PRIOR_KEYS", "default_priors", "resolve_priors"]

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
}


def default_priors(y: np.ndarray, F: np.ndarray) -> dict:
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
        raise SpecError("returns have no variation: cannot scale the default priors")
    if np.any(sd_f <= 0):
        raise SpecError("a factor is constant over the sample: cannot scale its prior")
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

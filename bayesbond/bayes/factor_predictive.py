r"""Joint predictive log density of the returns of whole dates under a factor-model fit.

The scoring kernel of time-series cross-validation (:func:`bayesbond.kfold`,
:func:`bayesbond.lfo`): for every posterior draw ``s`` and every held-out date ``t`` the log
density of all the returns observed at that date,

    log p(y_{.t} | theta_s, F_t) = sum_b m_tb log p(y_bt | alpha_sb + beta_sb'F_t, sigma_sb),

a product over bonds because the errors are independent given the parameters (Gaussian or
Student-t). With random date effects shared by the bonds of a group ``g``
(``R_bt = alpha_b + beta_b'F_t + d_{g(b)t} + eps_bt``, ``d_gt ~ N(0, s_g^2)``), the date
effect of a held-out date is a fresh draw from its prior, and integrating it out makes the bonds
of a group jointly normal with covariance ``diag(sigma^2) + s_g^2 11'``: evaluated in closed
form (:func:`date_logpdf`, Notes). The predictive density of the date is then
``log mean_s exp(.)`` over the draws (:func:`log_mean_exp`).

:func:`date_logpdf` is pure numpy; :func:`heldout_date_logpdf` reads the draws from a fit.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, logsumexp

from bayesbond.errors import SpecError

__all__ = ["date_logpdf", "heldout_date_logpdf", "log_mean_exp", "posterior_arrays"]

LOG_2PI = float(np.log(2.0 * np.pi))


def log_mean_exp(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """``log(mean(exp(a), axis))`` computed stably (``scipy.special.logsumexp``)."""
    a = np.asarray(a, dtype=float)
    return logsumexp(a, axis=axis) - np.log(a.shape[axis])


def date_logpdf(y, F, alpha, beta, sigma, *, nu=None, date_scale=None, date_group=None,
                max_bytes: int = 64 * 2**20) -> np.ndarray:
    r"""Joint log density of the observed returns of each date, at each draw.

    Parameters
    ----------
    y : ndarray (T, B)
        Returns of the dates scored, NaN where not observed (not scored).
    F : ndarray (T, K)
        Factor returns of those dates.
    alpha : ndarray (S, B) or (S,)
        Intercepts per draw (``(S,)``: one shared by all bonds, complete pooling).
    beta : ndarray (S, B, K) or (S, K)
        Factor loadings per draw.
    sigma : ndarray (S, B)
        Residual scales per draw.
    nu : ndarray (S,), optional
        Student-t degrees of freedom (independent Student-t errors); None: Gaussian.
    date_scale : ndarray (S, G), optional
        Scales ``s_g`` of the random date effects of the ``G`` groups (Gaussian errors only).
    date_group : ndarray of int (B,), optional
        Group of each bond (``0..G-1``), with ``date_scale``.
    max_bytes : int
        Bound on the temporaries: the draws are processed in chunks of about
        ``max_bytes / (8 T B)``.

    Returns
    -------
    ndarray (S, T)
        ``log p(y_{.t} | theta_s)``; 0 for a date without any observed return.

    Notes
    -----
    With ``mu_sbt = alpha_sb + beta_sb'F_t``, residuals ``r = y - mu`` and the observed cells
    ``m_tb``: Gaussian, ``sum_b m_tb [-1/2 log(2 pi sigma_b^2) - r_b^2 / (2 sigma_b^2)]``;
    Student-t, ``sum_b m_tb [lgamma((nu+1)/2) - lgamma(nu/2) - 1/2 log(nu pi sigma_b^2)
    - (nu+1)/2 log(1 + r_b^2 / (nu sigma_b^2))]``. With date effects, for the observed bonds
    ``O`` of group ``g`` at date ``t`` (``n = |O|``, ``a_b = 1 / sigma_b^2``,
    ``A = sum_O a_b``, ``u = sum_O a_b r_b``), by the matrix determinant lemma and the
    Sherman-Morrison formula,

        log N(r_O | 0, diag(sigma^2) + s^2 11') = -1/2 [n log 2 pi + sum_O log sigma_b^2
            + log(1 + s^2 A) + sum_O a_b r_b^2 - s^2 u^2 / (1 + s^2 A)],

    summed over the groups.
    """
    y = np.asarray(y, dtype=float)
    F = np.asarray(F, dtype=float)
    if y.ndim != 2 or F.ndim != 2 or F.shape[0] != y.shape[0]:
        raise SpecError(f"y must be (T, B) and F (T, K) on the same dates; got {y.shape} and "
                        f"{F.shape}")
    T, B = y.shape
    sigma = np.asarray(sigma, dtype=float)
    S = sigma.shape[0]
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    if alpha.ndim == 1:
        alpha = np.broadcast_to(alpha[:, None], (S, B))
    if beta.ndim == 2:
        beta = np.broadcast_to(beta[:, None, :], (S, B, beta.shape[-1]))
    if sigma.shape != (S, B) or alpha.shape != (S, B) or beta.shape != (S, B, F.shape[1]):
        raise SpecError(f"draws of alpha {alpha.shape}, beta {beta.shape}, sigma {sigma.shape} "
                        f"do not match {B} bonds and {F.shape[1]} factors")
    if date_scale is not None and nu is not None:
        raise SpecError("date effects with Student-t errors have no closed-form predictive")
    m = np.isfinite(y)
    y0 = np.where(m, y, 0.0)
    mf = m.astype(float)
    out = np.empty((S, T))
    step = int(max(1, min(S, max_bytes // max(1, 8 * T * B * 3))))
    if date_scale is not None:
        date_scale = np.asarray(date_scale, dtype=float)
        g = np.asarray(date_group, dtype=int)
        G = date_scale.shape[1]
        onehot = np.zeros((B, G))
        onehot[np.arange(B), g] = 1.0
    for s0 in range(0, S, step):
        s1 = min(S, s0 + step)
        mu = alpha[s0:s1, None, :] + np.einsum("tk,sbk->stb", F, beta[s0:s1])
        r = (y0[None] - mu) * mf[None]                       # (s, T, B), 0 where unobserved
        sig = sigma[s0:s1, None, :]
        if nu is not None:
            v = np.asarray(nu, dtype=float)[s0:s1, None, None]
            const = gammaln((v + 1) / 2) - gammaln(v / 2) - 0.5 * np.log(v * np.pi) - np.log(sig)
            lp = const - (v + 1) / 2 * np.log1p(r**2 / (v * sig**2))
            out[s0:s1] = (lp * mf[None]).sum(-1)
            continue
        a = 1.0 / sig**2                                       # (s, 1, B)
        base = -0.5 * (mf @ (LOG_2PI + np.log(sigma[s0:s1]).T * 2.0)).T  # (s, T)
        quad = (a * r**2).sum(-1)                              # (s, T)
        if date_scale is None:
            out[s0:s1] = base - 0.5 * quad
            continue
        s2 = date_scale[s0:s1, None, :] ** 2                   # (s, 1, G)
        A = (mf[None] * a) @ onehot                            # (s, T, G)
        u = (a * r) @ onehot                                   # (s, T, G)
        one = 1.0 + s2 * A
        out[s0:s1] = base - 0.5 * (quad + (np.log(one) - s2 * u**2 / one).sum(-1))
    return out


def posterior_arrays(fit, bonds, factors):
    """Draws ``(alpha, beta, sigma, nu)`` of a factor-model fit as flat ``(S, ...)`` arrays.

    Parameters
    ----------
    fit : xarray.DataTree
        A :meth:`bayesbond.FactorModel.fit` result (``alpha``, ``beta``, ``sigma`` in its
        posterior: the collapsed model's exact redraw included).
    bonds, factors : sequence of str
        The labels, in the order of the columns of the data to score.

    Returns
    -------
    alpha : (S, B) or (S,) (pooled); beta : (S, B, K) or (S, K); sigma : (S, B);
    nu : (S,) or None
        Chains stacked chain after chain.
    """
    post = fit["posterior"].to_dataset()
    for v in ("alpha", "beta", "sigma"):
        if v not in post:
            raise SpecError(f"the posterior has no {v!r}: is it a FactorModel fit?")
    missing = [str(b) for b in bonds if b not in set(post["bond"].values)]
    if missing:
        raise SpecError(f"the fit has no bonds {missing[:5]}: is it the fit of these data?")

    def flat(da, *dims):
        if "bond" in da.dims:
            da = da.sel(bond=list(bonds))
        if "factor" in da.dims:
            da = da.sel(factor=list(factors))
        da = da.transpose("chain", "draw", *[d for d in dims if d in da.dims])
        x = da.values
        return x.reshape(-1, *x.shape[2:])

    alpha = flat(post["alpha"], "bond")
    beta = flat(post["beta"], "bond", "factor")
    sigma = flat(post["sigma"], "bond")
    nu = flat(post["nu"]) if fit.attrs.get("errors") == "student_t" else None
    return alpha, beta, sigma, nu


def heldout_date_logpdf(fit, y, F, bonds, factors, *, max_bytes: int = 64 * 2**20):
    """:func:`date_logpdf` of held-out dates at the draws of ``fit``.

    Parameters
    ----------
    fit : xarray.DataTree
        A factor-model fit (trained without these dates).
    y : ndarray (T, B)
        Held-out returns (NaN where not observed), columns labelled ``bonds``.
    F : ndarray (T, K)
        Their factor returns, columns labelled ``factors``.

    Returns
    -------
    ndarray (S, T)

    Notes
    -----
    A fit with random date effects (``sigma_date`` in its posterior) is scored with the held-out
    dates' effects integrated out: the returns of a group's bonds at a date are jointly normal
    with covariance ``diag(sigma_b^2) + sigma_date_g^2 11'`` (:func:`date_logpdf`).
    """
    from bayesbond.bayes.factor_date_effects import effect_draws

    post = fit["posterior"]
    scale = group = None
    if "sigma_date" in post.data_vars:
        groups = None
        const = fit["constant_data"] if "constant_data" in fit.children else None
        if const is not None and "group" in const.data_vars:
            groups = const["group"].sel(bond=list(bonds)).values
        scale, group = effect_draws(post.to_dataset(), "sigma_date", None, groups)
        group = np.zeros(len(bonds), dtype=int) if group is None else group
    alpha, beta, sigma, nu = posterior_arrays(fit, bonds, factors)
    return date_logpdf(y, F, alpha, beta, sigma, nu=nu, date_scale=scale, date_group=group,
                       max_bytes=max_bytes)

r"""Random date effects of the factor regression: shocks shared by all bonds, or by a bucket's.

``R_bt = alpha_b + beta_b'F_t + d_{g(b) t} + eps_bt`` with ``d_gt ~ N(0, sigma_date_g^2)``
independent over dates and groups (``date_effects="common"``: one group). The returns are
independent across bonds given the date effects, so the per-bond sufficient statistics stay
exact once the effects are subtracted (:func:`adjusted_stats`), and the collapsed likelihood of
the coefficients is unchanged.

Notes
-----
**Sampler coordinates.** With ``X`` the ``(T, p)`` design ``[1, F]`` over all dates, split each
group's effects into their projection on ``X`` and the rest,

    d_g = X c_g + Q_perp z_g,   c_g = (X'X)^{-1} X'd_g ~ N(0, sigma_g^2 (X'X)^{-1}),
    z_g = Q_perp'd_g ~ N(0, sigma_g^2 I_{T-p}),

independent (``Q_perp`` an orthonormal basis of the complement of the columns of ``X``), which
is ``d_g ~ N(0, sigma_g^2 I_T)`` exactly. ``X c_g`` moves every bond of the group as a shift of
its coefficients would: ``theta*_b = theta_b + c_g(b) ~ N(m_g + c_g, S_g)``, so the data identify
``m*_g = m_g + c_g`` and the likelihood sees only ``z_g`` (``Q_perp z`` applied as the ``p``
Householder reflections of the QR decomposition of ``X``: O(pT) a group). The sampler runs on
``m*_g`` (with the prior of ``m_g = m*_g - c_g`` as a potential), ``c_g = sigma_g L u_g``
(``L L' = (X'X)^{-1}``, ``u_g ~ N(0, I)``: a posteriori close to its prior) and ``z_g`` partially
centred at the OLS residuals' precision-weighted cross-sectional means ``z^_g`` with the
group's mean precision ``prec_g`` (:func:`~bayesbond.bayes.factor_priors.log_sigma_reparam`,
exact for any centring; the centring is exact for a balanced panel). The posterior of ``m_g``
keeps the uncertainty of ``c_g``: a bucket's mean alpha is only known up to the sample mean of
its shocks, ``sigma_g / sqrt(T)``, which no number of bonds removes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

__all__ = ["DATE_EFFECTS", "DateBasis", "adjusted_stats", "date_basis", "effect_draws",
           "q_perp",
           "split_effects"]

DATE_EFFECTS = (None, "common", "group")


class DateBasis(NamedTuple):
    """Data of the date effects of one panel (all arrays; :func:`date_basis`)."""

    X: np.ndarray        # (T, p) design over all dates
    L_coef: np.ndarray   # (p, p) Cholesky factor of (X'X)^{-1}
    V: np.ndarray        # (p, T) Householder vectors of the QR of X ...
    tau: np.ndarray      # (p,) ... and their factors: Q = H_0 ... H_{p-1}, H_k = I - tau_k v_k v_k'
    z_hat: np.ndarray    # (G, T - p) centring of z_g
    prec: np.ndarray     # (G,) mean precision of the group's date effects
    y0: np.ndarray       # (B, T) returns, 0 where not observed
    mask: np.ndarray     # (B, T) 1.0 where observed
    group: np.ndarray    # (B,) group of each bond's effects (0..G-1)


def date_basis(y: np.ndarray, X: np.ndarray, group: np.ndarray, n_groups: int) -> DateBasis:
    """The date-effect data of returns ``y`` (T, B) on design ``X`` (T, p).

    ``z_hat_g`` and ``prec_g`` come from the bonds' OLS residuals ``e_bt`` and scales ``s_b``:
    per date, ``prec_gt = sum_b m_bt / s_b^2`` and ``d^_gt = sum_b m_bt e_bt / s_b^2 / prec_gt``
    over the group's observed bonds; ``z_hat_g = Q_perp' d^_g`` and ``prec_g`` the mean of
    ``prec_gt`` over dates.
    """
    T, p = X.shape
    if T <= p:
        raise ValueError(f"date effects need more dates ({T}) than coefficients ({p})")
    m = np.isfinite(y)
    y0 = np.where(m, y, 0.0)
    mf = m.astype(float)
    XtX = np.einsum("tb,ti,tj->bij", mf, X, X)
    Xty = np.einsum("tb,ti->bi", y0, X)
    theta = (np.linalg.pinv(XtX) @ Xty[..., None])[..., 0]   # (B, p); pinv: few months
    e = (y0 - X @ theta.T) * mf
    dof = np.maximum(mf.sum(0) - p, 1.0)
    s2 = np.maximum((e**2).sum(0) / dof, 1e-300)
    a = mf / s2                                           # (T, B)
    onehot = np.zeros((len(group), n_groups))
    onehot[np.arange(len(group)), group] = 1.0
    prec_t = a @ onehot                                   # (T, G)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_hat = np.where(prec_t > 0, ((a * e) @ onehot) / prec_t, 0.0)
    (qr, tau), _ = scipy.linalg.qr(X, mode="raw")
    V = np.tril(qr)[:, :p].T.copy()
    V[np.arange(p), np.arange(p)] = 1.0
    x = d_hat.T                                           # (G, T): Q' d^ = H_{p-1} ... H_0 d^
    for k in range(p):
        x = x - tau[k] * (x @ V[k])[:, None] * V[k][None, :]
    L_coef = np.linalg.cholesky(np.linalg.inv(X.T @ X))
    return DateBasis(X=X, L_coef=L_coef, V=V, tau=tau, z_hat=x[:, p:], prec=prec_t.mean(0),
                     y0=y0.T, mask=mf.T, group=np.asarray(group))


def q_perp(V, tau, z, concatenate=np.concatenate, p: int | None = None):
    """``Q_perp z``: coordinates ``z`` (..., T - p) in the orthogonal complement of ``X``, mapped
    to dates (..., T) by the ``p`` Householder reflections of :class:`DateBasis` (O(pT), not the
    O(T^2) of a dense basis). ``concatenate``: ``numpy.concatenate`` or PyTensor's (then ``p``,
    the number of reflections, must be given)."""
    p = V.shape[0] if p is None else p
    x = concatenate([z[..., :1] * 0.0] * p + [z], axis=-1)
    for k in reversed(range(p)):
        x = x - tau[k] * (x @ V[k])[..., None] * V[k]
    return x


def adjusted_stats(Xty, yty, y0, mask, X, d, group):
    """Sufficient statistics of ``y - d``: ``(Xty - X'd_b, yty - 2 y'd_b + d_b'd_b)``.

    ``d`` is ``(..., G, T)`` (numpy, leading axes broadcast) or a ``(G, T)`` PyTensor tensor; the
    bond ``b`` uses ``d_b = m_b * d_{group_b}`` on its observed months (``y0``, ``mask`` are
    ``(B, T)``, ``X`` is ``(T, p)``). Written once for numpy and PyTensor (operators only).
    """
    D = d[..., group, :]                      # (..., B, T)
    Md = mask * D
    return Xty - Md @ X, yty - 2.0 * (y0 * D).sum(axis=-1) + (Md * D).sum(axis=-1)


def split_effects(d, X):
    """``(c, d_perp)``: the projection coefficients ``c = (X'X)^{-1} X'd`` (..., G, p) of date
    effects ``d`` (..., G, T) on ``X`` and the remainder ``d_perp = d - c X'`` (numpy)."""
    c = d @ X @ np.linalg.inv(X.T @ X)
    return c, d - c @ X.T


def effect_draws(post, name: str, dates, groups):
    """Draws of a fit's date-effect variable and each bond's column of it.

    Parameters
    ----------
    post : xarray.Dataset
        The posterior (``date_effect`` (date[, group]) and ``sigma_date`` ([group])).
    name : {"date_effect", "sigma_date"}
    dates : array or None
        The dates of the columns (``date_effect``), matched by label.
    groups : array of str (B,) or None
        Each bond's group (``constant_data.group``).

    Returns
    -------
    draws : ndarray (S, T, G) for ``date_effect``, (S, G) for ``sigma_date``
        Chains stacked; ``G = 1`` for common effects.
    cols : ndarray of int (B,)
        The column of each bond (``None`` when ``groups`` is None and the effects are common).

    Raises
    ------
    SpecError
        A group the effects do not have, or group effects without the bonds' groups.
    """
    from bayesbond.errors import SpecError, listing

    da = post[name]
    if dates is not None:
        missing = [str(v) for v in np.asarray(dates)[~np.isin(dates, da["date"].values)]]
        if missing:
            raise SpecError(f"the posterior's {name!r} has no dates {listing(missing)}")
        da = da.sel(date=np.asarray(dates))
    lead = ("chain", "draw") + (("date",) if "date" in da.dims else ())
    extra = [k for k in da.dims if k not in lead]
    n = None if groups is None else len(groups)
    if not extra:
        x = da.transpose(*lead).values[..., None]
        return x.reshape(-1, *x.shape[2:]), (None if n is None else np.zeros(n, dtype=int))
    if len(extra) > 1 or groups is None:
        raise SpecError(f"the posterior's {name!r} has dimensions {list(da.dims)}: group "
                        "effects need the bonds' groups (constant_data.group)")
    labels = [str(v) for v in da[extra[0]].values]
    lost = sorted(set(map(str, groups)) - set(labels))
    if lost:
        raise SpecError(f"the posterior's {name!r} has no {extra[0]} {listing(lost)}")
    x = da.transpose(*lead, extra[0]).values
    return x.reshape(-1, *x.shape[2:]), np.array([labels.index(str(g)) for g in groups])

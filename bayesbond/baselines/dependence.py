r"""Cross-sectional dependence of factor-regression residuals (a CD test for unbalanced panels).

A model that treats bonds as independent given the factors understates the uncertainty of
every average over bonds (bucket alphas, bucket expected returns) when the residuals share
shocks: with an average pairwise correlation ``rho`` among ``n`` bonds, the variance of their
mean residual is ``1 + (n - 1) rho`` times what independence says.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["cross_sectional_dependence", "residual_dependence"]


def cross_sectional_dependence(y: np.ndarray, X: np.ndarray, group=None, names=None
                               ) -> pd.DataFrame:
    r"""Pesaran-type CD statistics of per-bond OLS residuals, overall and within groups.

    Parameters
    ----------
    y : ndarray (T, B)
        Returns, NaN where not observed.
    X : ndarray (T, p)
        Design ``[1, F]``.
    group : ndarray of int (B,), optional
        Group of each bond (``0..G-1``): adds one row per group (pairs within the group).
    names : sequence of str, optional
        Group names.

    Returns
    -------
    DataFrame
        Index ``"all"`` and the group names; columns ``n_bonds``, ``pairs`` (bond pairs
        observed on the same date, summed over dates), ``rho`` (average pairwise correlation),
        ``cd`` (standard normal under independence), ``p_value`` (one-sided, positive
        dependence) and ``variance_inflation`` ``1 + (n - 1) rho`` with ``n`` the mean number
        of bonds a date (the factor by which independence understates the variance of the
        bonds' mean residual).

    Notes
    -----
    With standardised residuals ``z_bt = e_bt / s_b`` (OLS on each bond's own observed months,
    ``s_b^2 = e_b'e_b / (n_b - p)``), ``S_t = sum_b z_bt`` and ``Q_t = sum_b z_bt^2`` over the
    bonds observed at ``t`` (``n_t`` of them),

        U = sum_t (S_t^2 - Q_t) / 2 = sum_t sum_{i<j} z_it z_jt,   P = sum_t n_t (n_t - 1) / 2,

    ``rho = U / P`` and ``CD = U / sqrt(P)``, which is approximately N(0, 1) when the residuals
    are independent across bonds (each cross product has mean 0 and variance 1, and they are
    uncorrelated): Pesaran's (2004, 2015) CD statistic with the pairwise correlations pooled
    over dates, so that it needs neither a balanced panel nor the ``B^2`` pairs.

    References
    ----------
    Pesaran, M. H. (2015). Testing weak cross-sectional dependence in large panels.
    *Econometric Reviews* 34(6-10), 1089-1117.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    T, B = y.shape
    p = X.shape[1]
    m = np.isfinite(y)
    y0 = np.where(m, y, 0.0)
    mf = m.astype(float)
    XtX = np.einsum("tb,ti,tj->bij", mf, X, X)
    Xty = np.einsum("tb,ti->bi", y0, X)
    theta = (np.linalg.pinv(XtX) @ Xty[..., None])[..., 0]
    e = (y0 - X @ theta.T) * mf
    dof = mf.sum(0) - p
    ok = dof >= 1
    s = np.sqrt(np.where(ok, (e**2).sum(0) / np.maximum(dof, 1), 1.0))
    z = np.where(ok, e / s, 0.0)
    mf = mf * ok
    rows = {"all": np.ones(B, dtype=bool)}
    if group is not None:
        group = np.asarray(group)
        labels = list(names) if names is not None else [str(g) for g in np.unique(group)]
        for g, name in enumerate(labels):
            rows[str(name)] = group == g
    out = {}
    for name, cols in rows.items():
        zs, ms = z[:, cols], mf[:, cols]
        n_t = ms.sum(1)
        U = float((zs.sum(1) ** 2 - (zs**2).sum(1)).sum() / 2)
        P = float((n_t * (n_t - 1) / 2).sum())
        rho = U / P if P > 0 else np.nan
        cd = U / np.sqrt(P) if P > 0 else np.nan
        n_bar = float(n_t[n_t > 0].mean()) if (n_t > 0).any() else 0.0
        out[name] = {"n_bonds": int(cols.sum()), "pairs": P, "rho": rho, "cd": cd,
                     "p_value": float(stats.norm.sf(cd)) if P > 0 else np.nan,
                     "variance_inflation": 1 + (n_bar - 1) * rho if P > 0 else np.nan}
    return pd.DataFrame.from_dict(out, orient="index")


def residual_dependence(returns, factors, groups=None) -> pd.DataFrame:
    """:func:`cross_sectional_dependence` of a panel's per-bond OLS residuals on ``factors``.

    Parameters
    ----------
    returns : BondPanel, xarray.DataArray (date, bond) or DataFrame (dates x bonds)
    factors : DataFrame (dates x factors)
        Every month of the returns must have factor returns.
    groups : Series or mapping bond -> group, optional
        Rows by group (default for a BondPanel: each bond's modal rating bucket).

    Returns
    -------
    DataFrame
        As :func:`cross_sectional_dependence`.
    """
    from bayesbond.data.coerce import as_factor_frame, as_wide_returns
    from bayesbond.errors import DataError, listing

    if groups is None and hasattr(returns, "bond_bucket"):
        groups = returns.bond_bucket()
    y, dates, bonds = as_wide_returns(returns)
    fr = as_factor_frame(factors)
    missing = dates[~dates.isin(fr.index)]
    if len(missing):
        raise DataError(f"factors have no returns for the months {listing(missing.date)}")
    X = np.column_stack([np.ones(len(dates)), fr.loc[dates].to_numpy(dtype=float)])
    if groups is None:
        return cross_sectional_dependence(y, X)
    g = pd.Series(dict(groups) if not isinstance(groups, pd.Series) else groups)
    lost = [b for b in bonds if b not in g.index]
    if lost:
        raise DataError(f"groups has no group for the bonds {listing(lost)}")
    names = list(dict.fromkeys(g.loc[bonds].astype(str)))
    code = np.array([names.index(str(g[b])) for b in bonds])
    return cross_sectional_dependence(y, X, code, names)

"""Inputs of the Bayesian factor regression: aligned returns and factors, groups, sufficient
statistics.

The regression of bond ``b`` on ``K`` factors, ``R_bt = alpha_b + beta_b'F_t + eps_bt``, is
written with
the design row ``x_t = (1, F_t')`` and coefficients ``theta_b = (alpha_b, beta_b')'`` of length
``p = K + 1``. For Gaussian errors the likelihood of a bond depends on its data only through the
exact
sufficient statistics of its own observed months,

    XtX_b = sum_t x_t x_t',   Xty_b = sum_t x_t R_bt,   yty_b = sum_t R_bt^2,   n_b,

so the model never needs one node per observation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesbond.data.coerce import (
    as_factor_frame,
    as_wide_returns,
    check_return_units,
    listing,
    non_numeric_columns,
)
from bayesbond.errors import DataError

__all__ = ["FactorData", "ols_log_scale", "prepare_factor_data", "sufficient_stats"]

@dataclass(frozen=True)
class FactorData:
    """Aligned inputs of a factor regression (numpy arrays plus labels).

    Attributes
    ----------
    y : ndarray (date, bond)
        Returns, NaN where not observed.
    F : ndarray (date, factor)
        Factor returns on the same dates.
    dates, bonds : pandas.Index
    factors : list of str
    group_names : list of str
        Labels of the ``rating_bucket`` dimension (groups that have at least one bond); empty
        when the bonds have no groups (pooled or unpooled fits without ratings or ``groups``).
    group_idx : ndarray of int (bond,) or None
        Position of each bond's group in ``group_names``.
    """

    y: np.ndarray
    F: np.ndarray
    dates: pd.Index
    bonds: pd.Index
    factors: list
    group_names: list
    group_idx: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """Observed cells, (date, bond)."""
        return np.isfinite(self.y)

    @property
    def n_coef(self) -> int:
        """Number of coefficients per bond, ``p = 1 + K``."""
        return 1 + len(self.factors)

    def design(self) -> np.ndarray:
        """Design matrix ``X`` (date, 1 + K) with the intercept first."""
        return np.column_stack([np.ones(len(self.dates)), self.F])

    def stats(self):
        """Exact per-bond sufficient statistics, see :func:`sufficient_stats`."""
        return sufficient_stats(self.y, self.design())

    def long(self):
        """Observed cells in long form: ``(t_idx, b_idx, y)`` in (date, bond) C order."""
        t_idx, b_idx = np.nonzero(self.mask)
        return t_idx, b_idx, self.y[t_idx, b_idx]


def sufficient_stats(y: np.ndarray, X: np.ndarray):
    """Per-bond Gaussian sufficient statistics on each bond's own observed months.

    Parameters
    ----------
    y : ndarray (T, B)
        Returns with NaN where not observed.
    X : ndarray (T, p)
        Design matrix shared by all bonds.

    Returns
    -------
    XtX : ndarray (B, p, p)
    Xty : ndarray (B, p)
    yty : ndarray (B,)
    n : ndarray (B,)

    Notes
    -----
    With the observation mask ``m_tb``: ``XtX_b = sum_t m_tb x_t x_t'``, ``Xty_b = sum_t m_tb x_t
    y_tb``,
    ``yty_b = sum_t m_tb y_tb^2``, ``n_b = sum_t m_tb``. Then for any ``theta`` and ``sigma``,
    ``sum_t m_tb log N(y_tb | x_t'theta, sigma^2) = -n_b/2 log(2 pi sigma^2)
    - (yty_b - 2 theta'Xty_b + theta'XtX_b theta) / (2 sigma^2)`` exactly.
    """
    m = np.isfinite(y)
    y0 = np.where(m, y, 0.0)
    mf = m.astype(float)
    XtX = np.einsum("tb,ti,tj->bij", mf, X, X)
    Xty = np.einsum("tb,ti->bi", y0, X)
    yty = np.einsum("tb,tb->b", y0, y0)
    n = mf.sum(axis=0)
    return XtX, Xty, yty, n


def ols_log_scale(XtX, Xty, yty, n):
    """Per-bond OLS log residual scale and the likelihood precision of ``log sigma_b``.

    Parameters
    ----------
    XtX, Xty, yty, n
        As returned by :func:`sufficient_stats` (``(B, p, p)``, ``(B, p)``, ``(B,)``, ``(B,)``).

    Returns
    -------
    log_s : ndarray (B,)
        ``log s_b`` with ``s_b^2 = SSR_b / df_b``; 0 where it is undefined (``prec_b = 0``).
    prec : ndarray (B,)
        ``2 df_b``; 0 where ``df_b <= 0`` or the fit is exact (``SSR_b = 0``).
    df : ndarray of int (B,)
        Residual degrees of freedom ``df_b = n_b - rank(XtX_b)``.

    Notes
    -----
    ``SSR_b = yty_b - Xty_b' XtX_b^+ Xty_b`` (Moore-Penrose inverse, so bonds with fewer months than
    coefficients are handled). In ``u = log sigma_b`` the bond's Gaussian log-likelihood with the
    coefficients integrated out under a flat prior (the restricted, REML likelihood; profiling
    would give ``n_b`` in place of ``df_b``) is ``-df_b u - SSR_b e^{-2u} / 2``: maximal at
    ``u = log s_b``, with
    curvature ``2 df_b`` there, so ``prec_b = 2 df_b`` is the Fisher information of ``log sigma_b``
    (also the inverse large-``df`` variance of ``log s_b``, ``trigamma(df_b / 2) / 4``, since
    ``SSR_b / sigma_b^2 ~ chi2(df_b)``).
    """
    XtX = np.asarray(XtX, dtype=float)
    Xty = np.asarray(Xty, dtype=float)
    yty = np.asarray(yty, dtype=float)
    coef = np.einsum("bij,bj->bi", np.linalg.pinv(XtX, hermitian=True), Xty)
    ssr = yty - np.einsum("bi,bi->b", Xty, coef)
    df = np.rint(np.asarray(n, dtype=float)).astype(int) - np.linalg.matrix_rank(XtX,
                                                                                 hermitian=True)
    ok = (df > 0) & (ssr > 1e-12 * yty)
    log_s = np.where(ok, 0.5 * np.log(np.where(ok, ssr, 1.0) / np.where(ok, df, 1)), 0.0)
    prec = np.where(ok, 2.0 * df, 0.0)
    return log_s, prec, df


def _bond_groups(panel_obj, groups, rule: str, required: bool) -> pd.Series | None:
    """Bond -> group label: ``groups`` (through the rating rule for a BondPanel), else the
    panel's rating buckets, else None (an error when ``required``)."""
    if panel_obj is not None and (groups is not None or panel_obj.buckets is not None):
        mapping = None if groups is None else pd.Series(groups)
        try:
            g = panel_obj.bond_bucket(rule=rule, mapping=mapping)
        except DataError:
            if required or groups is not None:
                raise
            return None  # partly rated panel, groups not needed: store none rather than guess
    elif groups is not None:
        g = pd.Series(groups)
    elif required:
        raise DataError(
            "pooling='hierarchical' needs a group per bond: pass groups= (bond -> group) or a "
            "BondPanel with ratings"
        )
    else:
        return None
    g.index = pd.Index([str(b) for b in g.index])
    return g


def prepare_factor_data(
    panel,
    factor_returns,
    factors,
    *,
    pooling: str,
    groups=None,
    group_rule: str = "mode",
    returns_name: str = "returns",
    factors_name: str = "factor_returns",
    check_units: bool = True,
) -> FactorData:
    """Align a panel with factor returns and assign one group per bond.

    Parameters
    ----------
    panel : BondPanel, xarray.DataArray (date, bond), DataFrame (dates x bonds) or Series
        A Series is one bond (:func:`bayesbond.data.coerce.as_wide_returns`). Dates are moved to
        their month-end, as everywhere in the library (:mod:`bayesbond.data.coerce`).
    factor_returns : DataFrame (dates x factors) or Series (one factor)
        Must hold every factor in ``factors`` with finite values on every date with an observed
        return; other dates and columns are not used.
    factors : list of str or None
        Factor names (columns of ``factor_returns``); None uses all columns.
    pooling : str
        Only ``"hierarchical"`` needs groups; the others record them (for per-group summaries)
        when the panel has ratings or ``groups`` is given.
    groups : Series or mapping bond -> group, optional
        For a BondPanel: ratings or buckets that override the panel's rule for the bonds named
        (the values go through :func:`bayesbond.rating_bucket`); for a DataFrame or DataArray:
        any labels (e.g. sectors), one per bond. Required for plain arrays when
        ``pooling="hierarchical"``.
    group_rule : {"mode", "last"}
        Rule of :meth:`BondPanel.bond_bucket` (default: the bucket a bond holds in most months).
    returns_name, factors_name : str
        What the messages call the returns and the factor table (the command line passes the
        file names); dates in messages are written YYYY-MM-DD.
    check_units : bool
        Refuse returns or factors whose magnitude says they are in percent or gross
        (:func:`bayesbond.data.coerce.check_return_units`); False for non-return factors.

    Raises
    ------
    DataError
        Missing factor columns, dates with returns but no (finite) factor value, bonds with no
        observed return, duplicated labels, non-numeric data, bonds without a group.
    """
    panel_obj = panel if hasattr(panel, "returns") and hasattr(panel, "bond_bucket") else None
    y, dates, bonds = as_wide_returns(panel, where=returns_name)
    fr = as_factor_frame(factor_returns, where=factors_name)
    if factors is None:
        factors = [str(c) for c in fr.columns]
    factors = list(factors)
    if not factors:
        raise DataError("no factors given")
    missing = [f for f in factors if f not in fr.columns]
    if missing:
        raise DataError(
            f"{factors_name} lacks the factor columns {listing(missing)}; "
            f"it has {listing(fr.columns)}"
        )
    if len(set(factors)) != len(factors):
        raise DataError(f"factors listed twice: {listing(sorted(set(factors)))}")
    if "alpha" in factors:
        raise DataError("a factor may not be called 'alpha' (the intercept's name)")
    dup_cols = sorted({str(c) for c in fr.columns[fr.columns.duplicated()]} & set(factors))
    if dup_cols:
        raise DataError(f"{factors_name} has duplicated columns {listing(dup_cols)}")
    has_obs_date = np.isfinite(y).any(axis=1)
    absent = [d for d, h in zip(dates, has_obs_date, strict=True) if h and d not in fr.index]
    if absent:
        raise DataError(f"{factors_name} has no row for the return dates {listing(absent)} "
                        f"({len(absent)} date(s) with returns in {returns_name}; the factors "
                        f"cover {fr.index.min().date() if len(fr.index) else 'no date'} .. "
                        f"{fr.index.max().date() if len(fr.index) else ''})")
    F_df = fr.reindex(dates)[factors]
    try:
        F = F_df.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{factors_name}: factor returns are not numeric in the columns "
                        f"{listing(non_numeric_columns(F_df))}: {exc}") from exc
    bad = ~np.isfinite(F) & has_obs_date[:, None]
    if bad.any():
        t, k = np.nonzero(bad)
        cells = [f"{factors[j]} at {dates[i].date()}" for i, j in zip(t, k, strict=True)]
        raise DataError(f"{factors_name}: non-finite factor returns on dates with returns: "
                        f"{listing(cells)}")
    # dates without any return carry no information: drop them from the regression inputs
    keep = has_obs_date
    y, F = y[keep], F[keep]
    if check_units:
        check_return_units(y, [str(b) for b in bonds], returns_name, kind="bond")
        check_return_units(F, factors, factors_name, kind="factor")
    dates = dates[keep]
    bonds = pd.Index([str(b) for b in bonds], name="bond")
    n_b = np.isfinite(y).sum(axis=0)
    if (n_b == 0).any():
        raise DataError(f"{returns_name}: bonds without any observed return: "
                        f"{listing(bonds[n_b == 0])}")
    if y.size == 0:
        raise DataError(f"{returns_name}: empty panel: no observed return")

    g = _bond_groups(panel_obj, groups, group_rule, required=pooling == "hierarchical")
    if g is None:  # pooled/unpooled without ratings or groups: no group labels are stored
        group_names, group_idx = [], None
    else:
        absent_b = [b for b in bonds if b not in g.index or pd.isna(g.get(b))]
        if absent_b:
            raise DataError(f"bonds without a group: {listing(absent_b)}")
        labels = [str(g[b]) for b in bonds]
        order = [k for k in ("IG+", "IG-", "HY") if k in labels]
        order += sorted(set(labels) - set(order))
        group_idx = np.array([order.index(lab) for lab in labels], dtype=int)
        group_names = order
    return FactorData(y=y, F=F, dates=dates, bonds=bonds, factors=factors,
                      group_names=group_names, group_idx=group_idx)

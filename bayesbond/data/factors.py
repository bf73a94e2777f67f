"""Corporate-bond factors from a bond panel: sorted long-short portfolios and the bond market.

Following Dick-Nielsen, Feldhutter, Pedersen and Stolborg (corporate-bond factors): each month
bonds are sorted on a signal known at the end of the previous month, within rating buckets
(``IG+``, ``IG-``, ``HY``) if asked, into ``n_groups`` groups; the factor is the value-weighted
return of the top group minus that of the bottom group, averaged with equal weights over the
buckets. Nothing looks ahead: signals, weights and buckets all come from month ``t-1``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayesbond.data.panel import BondPanel, to_month_end
from bayesbond.data.ratings import BUCKETS
from bayesbond.errors import DataError

__all__ = ["long_short", "market"]


def _calendar(panel: BondPanel) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Full monthly calendar over the panel and the position of each panel date in it."""
    dates = panel.dates
    full = pd.date_range(dates[0], dates[-1], freq="ME", name="date").as_unit("ns")
    return full, full.get_indexer(dates)


def _on_calendar(values: np.ndarray, full_len: int, pos: np.ndarray, fill) -> np.ndarray:
    out = np.full((full_len, values.shape[1]), fill, dtype=values.dtype)
    out[pos] = values
    return out


def _lagged(values: np.ndarray, fill) -> np.ndarray:
    """Value at calendar month t-1 for each month t (``fill`` for the first month)."""
    out = np.empty_like(values)
    out[0] = fill
    out[1:] = values[:-1]
    return out


def long_short(
    panel: BondPanel,
    signal: str,
    n_groups: int = 3,
    weighting: str = "value",
    within: str | None = None,
    min_bonds: int = 10,
) -> pd.Series:
    """Long-short factor from sorting bonds on a lagged signal.

    Parameters
    ----------
    panel : BondPanel
        Returns, signals, weights (for value weighting) and ratings (for ``within``).
    signal : str
        Name of a signal in ``panel.signals``; high values go long.
    n_groups : int
        Number of groups (3: tertiles).
    weighting : {"value", "equal"}
        Leg returns weighted by the weights at ``t-1`` or equally.
    within : None or "rating_bucket"
        Sort inside each rating bucket (the bond's bucket at ``t-1``) and average the bucket
        factors with equal weights.
    min_bonds : int
        Fewest bonds a leg may hold; a month where a leg (of any bucket) holds fewer is ``NaN``.

    Returns
    -------
    pandas.Series
        Factor returns indexed by month-end ``date`` (from the second calendar month of the panel
        on). ``attrs["thin_months"]`` lists the months set to ``NaN`` and ``attrs["counts"]`` holds
        the number of bonds in each leg per month.

    Warns
    -----
    UserWarning
        Naming the months set to ``NaN`` because a leg was too thin.

    Notes
    -----
    For month ``t`` the universe (per bucket ``b``) holds the bonds with a return at ``t`` and a
    signal (and a positive weight, and a bucket) at calendar month ``t-1``. Sorted ascending on
    the signal (ties by bond label), the bond at position ``k`` of ``n`` belongs to group
    ``floor(k n_groups / n)``. With ``w_i`` the weights at ``t-1``,
    ``r_leg = sum w_i r_it / sum w_i`` and ``f_t = mean_b (r_high,b,t - r_low,b,t)``.
    Dick-Nielsen, J., Feldhutter, P., Pedersen, L. H. and Stolborg, C., "Corporate bond factors:
    replication failures and a new framework".
    """
    if signal not in panel.signals:
        raise DataError(
            f"no signal {signal!r} in the panel; it has {list(panel.signals.data_vars)}"
        )
    if weighting not in ("value", "equal"):
        raise DataError(f"weighting must be 'value' or 'equal', got {weighting!r}")
    if within not in (None, "rating_bucket"):
        raise DataError(f"within must be None or 'rating_bucket', got {within!r}")
    if int(n_groups) != n_groups or n_groups < 2:
        raise DataError(f"n_groups must be an integer >= 2, got {n_groups!r}")
    if weighting == "value" and panel.weights is None:
        raise DataError("value weighting needs weights in the panel (or use weighting='equal')")
    if within == "rating_bucket" and panel.buckets is None:
        raise DataError("within='rating_bucket' needs ratings in the panel")

    full, pos = _calendar(panel)
    n_t = len(full)
    R = _on_calendar(panel.returns.values, n_t, pos, np.nan)
    S = _lagged(_on_calendar(panel.signals[signal].values, n_t, pos, np.nan), np.nan)
    if weighting == "value":
        W = _lagged(_on_calendar(panel.weights.values, n_t, pos, np.nan), np.nan)
    else:
        W = np.ones_like(R)
    if within == "rating_bucket":
        codes = np.full(panel.buckets.shape, -1, dtype=np.int64)
        b = panel.buckets.values
        for k, name in enumerate(BUCKETS):
            codes[b == name] = k
        G = _lagged(_on_calendar(codes, n_t, pos, -1), -1)
        groups = list(BUCKETS)
    else:
        G = np.zeros(R.shape, dtype=np.int64)
        groups = ["all"]

    valid = np.isfinite(R) & np.isfinite(S) & np.isfinite(W) & (W > 0) & (G >= 0)
    order_label = np.argsort(np.argsort(np.asarray(panel.bonds).astype(str), kind="stable"))
    months = full[1:]
    values = np.full(len(months), np.nan)
    cols = pd.MultiIndex.from_product([groups, ["low", "high"]], names=["group", "leg"])
    counts = np.zeros((len(months), len(cols)), dtype=np.int64)
    thin = []
    for i, t in enumerate(range(1, n_t)):
        spreads = []
        ok = True
        for k, _ in enumerate(groups):
            members = np.flatnonzero(valid[t] & (G[t] == k))
            n = members.size
            # ascending signal, ties by bond label
            srt = members[np.lexsort((order_label[members], S[t, members]))]
            grp = (np.arange(n) * n_groups) // n if n else np.zeros(0, dtype=np.int64)
            low, high = srt[grp == 0], srt[grp == n_groups - 1]
            counts[i, 2 * k], counts[i, 2 * k + 1] = low.size, high.size
            if low.size < min_bonds or high.size < min_bonds:
                ok = False
                continue
            r_low = np.sum(W[t, low] * R[t, low]) / np.sum(W[t, low])
            r_high = np.sum(W[t, high] * R[t, high]) / np.sum(W[t, high])
            spreads.append(r_high - r_low)
        if ok:
            values[i] = np.mean(spreads)
        else:
            thin.append(months[i])
    out = pd.Series(values, index=months, name=f"LS_{signal}")
    out.attrs["thin_months"] = list(thin)
    out.attrs["counts"] = pd.DataFrame(counts, index=months, columns=cols)
    if thin:
        shown = ", ".join(str(d.date()) for d in thin[:8])
        more = f" ... ({len(thin)} in all)" if len(thin) > 8 else ""
        warnings.warn(
            f"long_short({signal!r}): a leg has fewer than {min_bonds} bonds in "
            f"{len(thin)} month(s), set to NaN: {shown}{more}",
            UserWarning,
            stacklevel=2,
        )
    return out


def market(panel: BondPanel, rf, weighting: str = "value") -> pd.Series:
    """Value-weighted corporate-bond market excess return (CMKT).

    Parameters
    ----------
    panel : BondPanel
        Returns and weights (amount outstanding or market value).
    rf : pandas.Series or float
        Risk-free return per month (decimal), indexed by date, or a constant.
    weighting : {"value", "equal"}
        Weights at ``t-1``, or equal weights.

    Returns
    -------
    pandas.Series
        ``CMKT_t = sum_i w_{i,t-1} (r_it - rf_t) / sum_i w_{i,t-1}`` over bonds with a return at
        ``t`` and a positive weight at ``t-1``, indexed by month-end ``date`` from the second
        calendar month on (``NaN`` in a month without such bonds).

    Raises
    ------
    DataError
        No weights (for value weighting), or ``rf`` missing in months with returns (named).
    """
    if weighting not in ("value", "equal"):
        raise DataError(f"weighting must be 'value' or 'equal', got {weighting!r}")
    if weighting == "value" and panel.weights is None:
        raise DataError("value weighting needs weights in the panel (or use weighting='equal')")
    full, pos = _calendar(panel)
    n_t = len(full)
    R = _on_calendar(panel.returns.values, n_t, pos, np.nan)
    if weighting == "value":
        W = _lagged(_on_calendar(panel.weights.values, n_t, pos, np.nan), np.nan)
    else:
        W = np.ones_like(R)
    months = full[1:]
    valid = (np.isfinite(R) & np.isfinite(W) & (W > 0))[1:]
    Wv = np.where(valid, W[1:], 0.0)
    den = Wv.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vw = np.where(den > 0, (Wv * np.where(valid, R[1:], 0.0)).sum(axis=1) / den, np.nan)
    if np.isscalar(rf):
        rf_t = np.full(len(months), float(rf))
    else:
        rf_s = pd.Series(rf)
        rf_s.index = to_month_end(rf_s.index, where="the rf index")
        rf_t = rf_s.reindex(months).to_numpy(dtype=float)
        need = np.isfinite(vw) & ~np.isfinite(rf_t)
        if need.any():
            miss = ", ".join(str(d.date()) for d in months[need][:8])
            raise DataError(f"rf has no value for month(s) with bond returns: {miss}")
    return pd.Series(vw - rf_t, index=months, name="CMKT")

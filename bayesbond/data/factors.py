"""Corporate-bond factors from a bond panel: sorted long-short portfolios and the bond market.

Following Dick-Nielsen, Feldhutter, Pedersen and Stolborg (corporate-bond factors): each month
bonds are sorted on a signal known at the end of the previous month, within rating buckets
(``IG+``, ``IG-``, ``HY``) if asked, into ``n_groups`` groups; the factor is the value-weighted
return of the top group minus that of the bottom group, averaged with equal weights over the
buckets. Nothing looks ahead: the universe, the breakpoints, the signals, the weights and the
buckets all come from the formation month ``t-1``; a bond that then has no return in the holding
month ``t`` (defaulted, matured, called, or missing) is counted and reported, not re-sorted away.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.data.coerce import listing, to_month_end
from bayesbond.data.panel import BondPanel
from bayesbond.data.ratings import BUCKETS
from bayesbond.errors import DataError

__all__ = ["long_short", "market", "sorted_portfolios"]

#: subsamples by the bond's rating bucket at formation
_SUBSAMPLES: dict[str, tuple[str, ...]] = {"IG": ("IG+", "IG-"), "HY": ("HY",), "IG+": ("IG+",),
                                           "IG-": ("IG-",)}


def _calendar(panel: BondPanel) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Full monthly calendar over the panel and the position of each panel date in it."""
    dates = panel.dates
    full = pd.date_range(dates[0], dates[-1], freq="ME", name="date").as_unit("ns")
    return full, full.get_indexer(dates)


def _on_calendar(values: np.ndarray, full_len: int, pos: np.ndarray, fill) -> np.ndarray:
    out = np.full((full_len, values.shape[1]), fill, dtype=values.dtype)
    out[pos] = values
    return out


def _check_return_units(R: np.ndarray, where: str) -> float:
    """Refuse returns that are not decimals per month; return the typical ``|r|``.

    Percent returns (``1.5`` for 1.5%) and gross returns (``1 + r``) both have a median absolute
    size far above what any decimal monthly bond return has (0.5 is a 50% move every month).
    """
    r = R[np.isfinite(R)]
    if r.size == 0:
        return np.nan
    typical = float(np.median(np.abs(r)))
    if typical > 0.5:
        med = float(np.median(r))
        if abs(med - 1.0) < 0.2 and float(np.mean(r > 0)) > 0.99:
            raise DataError(
                f"{where}: the returns look like gross returns (1 + r): their median is "
                f"{med:.4g} and {100 * np.mean(r > 0):.1f}% are positive; returns must be net "
                "decimals per month (subtract 1)"
            )
        raise DataError(
            f"{where}: the returns look like percent: their typical absolute size (median |r|) "
            f"is {typical:.3g} per month, implausible for decimals; returns must be decimals per "
            "month (divide percent by 100 when building the panel)"
        )
    return typical


def _breakpoint_mask(mask, panel: BondPanel) -> np.ndarray:
    """A boolean (date, bond) mask aligned to the panel's grid."""
    if isinstance(mask, pd.DataFrame):
        mask = xr.DataArray(
            mask.to_numpy(),
            coords={"date": to_month_end(mask.index, where="breakpoint_universe index"),
                    "bond": mask.columns},
            dims=("date", "bond"),
        )
    if not isinstance(mask, xr.DataArray) or set(mask.dims) != {"date", "bond"}:
        raise DataError(
            "breakpoint_universe must be a boolean xarray.DataArray with dims (date, bond) or a "
            f"DataFrame (dates x bonds), got {type(mask).__name__}"
        )
    mask = mask.transpose("date", "bond")
    dates = pd.DatetimeIndex(mask.indexes["date"])
    bonds = pd.Index(mask.indexes["bond"])
    if dates.has_duplicates or bonds.has_duplicates:
        raise DataError("breakpoint_universe has duplicated dates or bonds")
    missing_b = panel.bonds.difference(bonds)
    extra_b = bonds.difference(panel.bonds)
    missing_d = panel.dates.difference(dates)
    if len(missing_b) or len(extra_b) or len(missing_d):
        parts = []
        if len(missing_b):
            parts.append(f"panel bonds it lacks: {', '.join(map(str, missing_b[:10]))}")
        if len(extra_b):
            parts.append(f"bonds not in the panel: {', '.join(map(str, extra_b[:10]))}")
        if len(missing_d):
            parts.append(f"panel dates it lacks: {listing(missing_d)}")
        raise DataError(f"breakpoint_universe does not match the panel ({'; '.join(parts)})")
    values = mask.reindex(date=panel.dates, bond=panel.bonds).values
    if values.dtype != bool:
        raise DataError(
            f"breakpoint_universe must hold booleans (True: in the breakpoint universe), got "
            f"dtype {values.dtype}"
        )
    return values


def _groups_rank(s: np.ndarray, n_groups: int) -> np.ndarray:
    """Rank rule with tied values kept together (the group of their average position).

    Sorted ascending, a block of equal values occupies positions ``first..last`` (0-based);
    each of its bonds goes to group ``floor((first + last) / 2 * n_groups / n)``.
    """
    n = s.size
    v = np.sort(s)
    first = np.searchsorted(v, s, side="left")
    last = np.searchsorted(v, s, side="right") - 1
    return ((first + last) * n_groups) // (2 * n)


def _groups_percentile(s: np.ndarray, s_bp: np.ndarray, n_groups: int) -> np.ndarray:
    """PyBondLab's rule: linear-interpolated percentiles of ``s_bp``, bins closed on the right.

    Edges ``e_j = percentile(s_bp, 100 j / n_groups)``, ``j = 1..n_groups-1``; group ``g`` holds
    ``e_g < s <= e_{g+1}`` (``e_0 = -inf``, ``e_n = +inf``). ``-1`` for every bond when
    ``s_bp`` is empty.
    """
    if s_bp.size == 0:
        return np.full(s.size, -1, dtype=np.int64)
    edges = np.percentile(s_bp, np.linspace(0.0, 100.0, n_groups + 1)[1:-1])
    return np.searchsorted(edges, s, side="left").astype(np.int64)


def long_short(panel: BondPanel, signal: str, n_groups: int = 3, weighting: str = "value",
               within: str | None = None, min_bonds: int = 10, *, breakpoints: str = "rank",
               breakpoint_universe=None, holding: int = 1, subsample: str | None = None,
               return_filter: tuple[float, float] | None = None,
               winsorize: tuple[float, float] | None = None) -> pd.Series:
    """Long-short factor from sorting bonds on a lagged signal.

    Parameters
    ----------
    panel : BondPanel
        Returns (decimals per month), signals, weights (for value weighting) and ratings (for
        ``within`` and ``subsample``).
    signal : str
        Name of a signal in ``panel.signals``; high values go long.
    n_groups : int
        Number of groups (3: tertiles).
    weighting : {"value", "equal"}
        Leg returns weighted by the weights at formation or equally.
    within : None or "rating_bucket"
        Sort inside each rating bucket (the bond's bucket at formation) and average the bucket
        factors with equal weights.
    min_bonds : int
        Fewest bonds with a holding-month return a leg may hold; a month where a leg (of any
        bucket or cohort) holds fewer is ``NaN``.
    breakpoints : {"rank", "percentile"}
        ``"rank"``: groups by sorted position (equal signals kept together, see Notes).
        ``"percentile"``: value breakpoints at the ``100 j / n_groups`` percentiles of the
        signal, as in PyBondLab.
    breakpoint_universe : xarray.DataArray or pandas.DataFrame of bool, optional
        With ``breakpoints="percentile"``: a (date, bond) mask, on the panel's dates and bonds,
        of the bonds whose signals at formation set the breakpoints; every bond is still sorted.
    holding : int
        Holding period ``K`` in months: ``K`` overlapping cohorts (Jegadeesh and Titman).
    subsample : {None, "IG", "HY", "IG+", "IG-"}
        Only bonds whose rating bucket at formation is in this subsample (``"IG"``: ``IG+`` and
        ``IG-``). With ``within="rating_bucket"`` only the subsample's buckets are averaged.
    return_filter : (float, float), optional
        Ex-ante filter ``(lo, hi)``: leave out at formation the bonds whose return in the
        formation month lies outside ``[lo, hi]`` (decimals). A bond without a formation-month
        return is kept.
    winsorize : (float, float), optional
        Percentiles ``(p_lo, p_hi)``, e.g. ``(1, 99)``: holding-month returns are clipped to the
        percentiles of all returns before the holding month (PyBondLab's ex-ante winsorising).

    Returns
    -------
    pandas.Series
        Factor returns indexed by month-end ``date``, from calendar month ``K`` of the panel on
        (the first month in which all ``K`` cohorts exist). Its ``attrs`` hold:

        ``counts``, ``vanished``
            DataFrames (date x (group, leg)): bonds held in each leg (over the live cohorts)
            with, and without, a return in the holding month (the latter are left out of that
            month's leg return, the other weights renormalised).
        ``turnover``
            Same shape: ``0.5 sum_i |w_i,new - w_i,old| / K`` between the leg formed at ``t-1``
            and the one it replaces (formed at ``t-1-K``), formation weights, no price drift.
        ``portfolios``
            DataFrame (date x (group, portfolio ``1..n_groups``, low to high signal)): the
            return of every sorted portfolio, cohort-averaged like the factor; ``NaN`` in a
            month where one of its cohorts holds fewer than ``min_bonds`` bonds with a return.
            :func:`sorted_portfolios` returns them as test assets.
        ``thin_months``, ``missing_months``, ``gap_months``
            Months set to ``NaN`` for a too thin leg; calendar months absent from the panel;
            holding months set to ``NaN`` because they or a formation month are absent.
        ``settings``
            The sort's settings.

    Raises
    ------
    DataError
        Unknown signal or option, missing weights or ratings, returns that are not decimals
        (percent or gross), a breakpoint universe that does not match the panel.

    Warns
    -----
    UserWarning
        Naming the months set to ``NaN``: missing calendar months, and months where a leg was
        too thin.

    Notes
    -----
    Formation month ``s = t-1`` (per bucket ``b``): the universe holds every bond with a signal
    (and, for value weighting, a positive weight; and a bucket, for ``within``/``subsample``) at
    ``s``, whether or not it has a return at ``t``: a return at ``t`` is not known at ``s``.

    Rank rule: sorted ascending, the bond at position ``k`` of ``n`` goes to group
    ``floor(k G / n)``; a block of equal signals at positions ``first..last`` goes, whole, to
    ``floor((first + last) G / (2 n))``, so the factor does not depend on bond labels. Without
    ties the low leg holds ``ceil(n / G)`` bonds and the high leg ``floor(n / G)``; ties make a
    leg larger or smaller (even empty).

    Percentile rule (PyBondLab's ``compute_thresholds`` and ``assign_bond_bins``): edges
    ``e_j = np.percentile(x, 100 j / G)`` (linear interpolation) over the breakpoint universe's
    signals ``x``; group ``g`` holds ``e_g < s <= e_{g+1}``. Without ties and subset the low leg
    holds ``floor((n - 1) / G) + 1`` bonds and the high leg
    ``n - floor((n - 1)(G - 1) / G) - 1``. Unlike PyBondLab, a bond above the breakpoint
    universe's largest signal goes to the top group (PyBondLab leaves it unassigned).

    With ``w_i`` the weights at formation, ``r_leg = sum w_i r_it / sum w_i`` over the leg's
    bonds with a return at ``t``, ``f_t,s = mean_b (r_high,b - r_low,b)`` and
    ``f_t = (1/K) sum_{j=1..K} f_t,t-j``.
    Dick-Nielsen, J., Feldhutter, P., Pedersen, L. H. and Stolborg, C., "Corporate bond factors:
    replication failures and a new framework"; Jegadeesh, N. and Titman, S. (1993), "Returns to
    buying winners and selling losers", Journal of Finance 48(1).
    """
    if signal not in panel.signals:
        raise DataError(
            f"no signal {signal!r} in the panel; it has {list(panel.signals.data_vars)}"
        )
    if weighting not in ("value", "equal"):
        raise DataError(f"weighting must be 'value' or 'equal', got {weighting!r}")
    if within not in (None, "rating_bucket"):
        raise DataError(f"within must be None or 'rating_bucket', got {within!r}")
    if isinstance(n_groups, bool) or int(n_groups) != n_groups or n_groups < 2:
        raise DataError(f"n_groups must be an integer >= 2, got {n_groups!r}")
    n_groups = int(n_groups)
    if isinstance(min_bonds, bool) or int(min_bonds) != min_bonds or min_bonds < 1:
        raise DataError(f"min_bonds must be an integer >= 1, got {min_bonds!r}")
    if breakpoints not in ("rank", "percentile"):
        raise DataError(f"breakpoints must be 'rank' or 'percentile', got {breakpoints!r}")
    if breakpoint_universe is not None and breakpoints != "percentile":
        raise DataError(
            "breakpoint_universe sets value breakpoints: use it with breakpoints='percentile'"
        )
    if isinstance(holding, bool) or int(holding) != holding or holding < 1:
        raise DataError(f"holding must be an integer >= 1 (months), got {holding!r}")
    K = int(holding)
    if subsample is not None and subsample not in _SUBSAMPLES:
        raise DataError(f"subsample must be None or one of {list(_SUBSAMPLES)}, got {subsample!r}")
    if weighting == "value" and panel.weights is None:
        raise DataError("value weighting needs weights in the panel (or use weighting='equal')")
    if within == "rating_bucket" and panel.buckets is None:
        raise DataError("within='rating_bucket' needs ratings in the panel")
    if subsample is not None and panel.buckets is None:
        raise DataError(f"subsample={subsample!r} needs ratings in the panel")
    if return_filter is not None:
        lo_hi = np.asarray(return_filter, dtype=float)
        if lo_hi.shape != (2,) or not np.isfinite(lo_hi).all() or lo_hi[0] >= lo_hi[1]:
            raise DataError(f"return_filter must be (lo, hi) with lo < hi, got {return_filter!r}")
    if winsorize is not None:
        p = np.asarray(winsorize, dtype=float)
        if p.shape != (2,) or not (0.0 <= p[0] < p[1] <= 100.0):
            raise DataError(
                f"winsorize must be percentiles (p_lo, p_hi) with 0 <= p_lo < p_hi <= 100, got "
                f"{winsorize!r}"
            )

    full, pos = _calendar(panel)
    n_t, n_b = len(full), panel.shape[1]
    _check_return_units(panel.returns.values, f"long_short({signal!r})")
    if n_t <= K:
        raise DataError(
            f"long_short({signal!r}): holding={K} needs more than {K} months, the panel spans "
            f"{n_t}"
        )
    in_panel = np.zeros(n_t, dtype=bool)
    in_panel[pos] = True
    missing_months = list(full[~in_panel])

    R = _on_calendar(panel.returns.values, n_t, pos, np.nan)
    S = _on_calendar(panel.signals[signal].values, n_t, pos, np.nan)
    if weighting == "value":
        W = _on_calendar(panel.weights.values, n_t, pos, np.nan)
    else:
        W = np.ones_like(R)
    if panel.buckets is not None:
        codes = np.full(panel.buckets.shape, -1, dtype=np.int64)
        b = panel.buckets.values
        for k, name in enumerate(BUCKETS):
            codes[b == name] = k
        G = _on_calendar(codes, n_t, pos, -1)
    else:
        G = np.zeros(R.shape, dtype=np.int64)
    allowed = list(_SUBSAMPLES[subsample]) if subsample is not None else list(BUCKETS)
    if within == "rating_bucket":
        groups = allowed
    else:
        groups = ["all"]
    bucket_code = {name: k for k, name in enumerate(BUCKETS)}
    U = None
    if breakpoint_universe is not None:
        U = _on_calendar(_breakpoint_mask(breakpoint_universe, panel), n_t, pos, False)

    # ---- formation: the universe and legs at every month s (None where s is not in the panel)
    universe = np.isfinite(S) & np.isfinite(W) & (W > 0)
    if within == "rating_bucket" or subsample is not None:
        universe &= np.isin(G, [bucket_code[a] for a in allowed])
    if return_filter is not None:
        outside = np.isfinite(R) & ((R < lo_hi[0]) | (R > lo_hi[1]))
        universe &= ~outside
    legs: list[list[tuple[np.ndarray, np.ndarray]] | None] = [None] * n_t
    for s in range(n_t - 1):
        if not in_panel[s]:
            continue
        per_group = []
        for name in groups:
            sel = universe[s] if name == "all" else universe[s] & (G[s] == bucket_code[name])
            members = np.flatnonzero(sel)
            if members.size == 0:
                grp = np.zeros(0, dtype=np.int64)
            elif breakpoints == "rank":
                grp = _groups_rank(S[s, members], n_groups)
            else:
                bp = members if U is None else members[U[s, members]]
                grp = _groups_percentile(S[s, members], S[s, bp], n_groups)
            per_group.append(tuple(members[grp == j] for j in range(n_groups)))
        legs[s] = per_group

    # ---- holding-month returns, winsorised ex ante
    R_hold = R
    if winsorize is not None:
        R_hold = R.copy()
        for t in range(1, n_t):
            past = R[:t][np.isfinite(R[:t])]
            if past.size:
                lo, hi = np.percentile(past, [p[0], p[1]])
                R_hold[t] = np.clip(R[t], lo, hi)

    months = full[K:]
    values = np.full(len(months), np.nan)
    cols = pd.MultiIndex.from_product([groups, ["low", "high"]], names=["group", "leg"])
    counts = np.zeros((len(months), len(cols)), dtype=np.int64)
    vanished = np.zeros_like(counts)
    turnover = np.full((len(months), len(cols)), np.nan)
    thin, gap = [], []
    pcols = pd.MultiIndex.from_product([groups, range(1, n_groups + 1)],
                                       names=["group", "portfolio"])
    port = np.full((len(months), len(pcols)), np.nan)

    def leg_weights(idx: np.ndarray, s: int) -> np.ndarray:
        w = np.zeros(n_b)
        w[idx] = W[s, idx] / W[s, idx].sum()
        return w

    for i, t in enumerate(range(K, n_t)):
        cohorts = [t - j for j in range(1, K + 1)]
        if not in_panel[t] or any(legs[s] is None for s in cohorts):
            gap.append(months[i])
            continue
        have = np.isfinite(R_hold[t])
        f_cohorts, ok = [], True
        held = np.zeros((len(cols), n_b), dtype=bool)
        port_c = np.full((K, len(pcols)), np.nan)
        for c, s in enumerate(cohorts):
            spreads = []
            for k in range(len(groups)):
                for q, idx in enumerate(legs[s][k]):
                    live = idx[have[idx]]
                    if live.size >= min_bonds:
                        port_c[c, k * n_groups + q] = (np.sum(W[s, live] * R_hold[t, live])
                                                       / np.sum(W[s, live]))
                leg_ret = []
                for j, idx in enumerate((legs[s][k][0], legs[s][k][-1])):
                    held[2 * k + j, idx] = True
                    live = idx[have[idx]]
                    if live.size < min_bonds:
                        ok = False
                        continue
                    leg_ret.append(np.sum(W[s, live] * R_hold[t, live]) / np.sum(W[s, live]))
                if len(leg_ret) == 2:
                    spreads.append(leg_ret[1] - leg_ret[0])
            f_cohorts.append(np.mean(spreads) if spreads else np.nan)
        counts[i] = (held & have).sum(axis=1)
        vanished[i] = (held & ~have).sum(axis=1)
        port[i] = port_c.mean(axis=0)  # NaN where a cohort's portfolio is too thin
        s_new, s_old = t - 1, t - 1 - K
        if s_old >= 0 and legs[s_old] is not None:
            for k in range(len(groups)):
                for j, q in enumerate((0, -1)):
                    new, old = legs[s_new][k][q], legs[s_old][k][q]
                    if new.size and old.size:
                        dw = leg_weights(new, s_new) - leg_weights(old, s_old)
                        turnover[i, 2 * k + j] = 0.5 * np.abs(dw).sum() / K
        if ok:
            values[i] = np.mean(f_cohorts)
        else:
            thin.append(months[i])

    out = pd.Series(values, index=months, name=f"LS_{signal}")
    out.attrs["counts"] = pd.DataFrame(counts, index=months, columns=cols)
    out.attrs["vanished"] = pd.DataFrame(vanished, index=months, columns=cols)
    out.attrs["turnover"] = pd.DataFrame(turnover, index=months, columns=cols)
    out.attrs["portfolios"] = pd.DataFrame(port, index=months, columns=pcols)
    out.attrs["thin_months"] = list(thin)
    out.attrs["missing_months"] = missing_months
    out.attrs["gap_months"] = list(gap)
    out.attrs["settings"] = {
        "signal": signal,
        "n_groups": n_groups,
        "weighting": weighting,
        "within": within,
        "min_bonds": int(min_bonds),
        "breakpoints": breakpoints,
        "breakpoint_universe": breakpoint_universe is not None,
        "holding": K,
        "subsample": subsample,
        "return_filter": None if return_filter is None else tuple(map(float, lo_hi)),
        "winsorize": None if winsorize is None else tuple(map(float, p)),
    }
    if missing_months:
        warnings.warn(
            f"long_short({signal!r}): month(s) {listing(missing_months)} missing from the "
            f"panel (no bond has a row); holding month(s) {listing(gap)} set to NaN (no "
            "returns, or no formation date)",
            UserWarning,
            stacklevel=2,
        )
    if thin:
        warnings.warn(
            f"long_short({signal!r}): a leg has fewer than {min_bonds} bonds in "
            f"{len(thin)} month(s), set to NaN: {listing(thin)}",
            UserWarning,
            stacklevel=2,
        )
    return out


def sorted_portfolios(panel: BondPanel, signal: str, n_groups: int = 3,
                      weighting: str = "value", within: str | None = "rating_bucket",
                      **kwargs) -> pd.DataFrame:
    """Returns of the portfolios sorted on a lagged signal (within rating buckets by default),
    as test assets for cross-sectional pricing (:mod:`bayesbond.pricing`).

    Parameters
    ----------
    panel, signal, n_groups, weighting, within, **kwargs
        As :func:`long_short` (``within="rating_bucket"`` by default here: tertiles inside
        IG+, IG- and HY give nine portfolios).

    Returns
    -------
    pandas.DataFrame
        Month-end dates x portfolios named ``"<group> <signal> <j>"`` (``j = 1`` lowest signal,
        group ``"all"`` without ``within``), decimals per month; ``NaN`` where a portfolio is
        too thin (see :func:`long_short`, whose warnings it raises).

    Notes
    -----
    The portfolios are the legs of :func:`long_short` with every middle group kept: the mean
    over buckets of (portfolio ``n_groups`` minus portfolio 1) is the long-short factor.
    """
    ls = long_short(panel, signal, n_groups=n_groups, weighting=weighting, within=within,
                    **kwargs)
    port = ls.attrs["portfolios"]
    port.columns = [f"{g} {signal} {j}" for g, j in port.columns]
    return port


def market(panel: BondPanel, rf, weighting: str = "value") -> pd.Series:
    """Value-weighted corporate-bond market excess return (CMKT).

    Parameters
    ----------
    panel : BondPanel
        Returns (decimals per month) and weights (amount outstanding or market value).
    rf : pandas.Series or float
        Risk-free return per month (decimal, like the returns), indexed by date, or a constant.
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
        No weights (for value weighting), ``rf`` missing in months with returns (named), or
        mixed or implausible units: returns in percent or gross (typical ``|r|`` above 0.5 a
        month), an ``rf`` above 0.05 a month (percent, gross or annual), or an ``rf`` whose
        typical size is more than twice the typical absolute bond return.
    """
    if weighting not in ("value", "equal"):
        raise DataError(f"weighting must be 'value' or 'equal', got {weighting!r}")
    if weighting == "value" and panel.weights is None:
        raise DataError("value weighting needs weights in the panel (or use weighting='equal')")
    typical_r = _check_return_units(panel.returns.values, "market")
    full, pos = _calendar(panel)
    n_t = len(full)
    R = _on_calendar(panel.returns.values, n_t, pos, np.nan)
    if weighting == "value":
        W = _on_calendar(panel.weights.values, n_t, pos, np.nan)
        W = np.vstack([np.full((1, W.shape[1]), np.nan), W[:-1]])
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
    used = np.isfinite(vw) & np.isfinite(rf_t)
    if used.any():
        big = used & (np.abs(rf_t) > 0.05)
        if big.any():
            first = months[big][0]
            raise DataError(
                f"rf is {rf_t[big][0]:.4g} in {first.date()} ({int(big.sum())} month(s) above "
                "0.05): rf must be a decimal return per month like the bond returns, not "
                "percent, gross (1 + rf) or an annual rate"
            )
        typical_rf = float(np.median(np.abs(rf_t[used])))
        if typical_rf > 2.0 * typical_r:
            raise DataError(
                f"rf (typical |rf| {typical_rf:.3g} a month) is larger than twice the bonds' "
                f"typical absolute return ({typical_r:.3g}): rf and returns must both be "
                "decimals per month (is rf annual?)"
            )
    return pd.Series(vw - rf_t, index=months, name="CMKT")

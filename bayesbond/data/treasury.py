"""Holding-period excess returns of zero-coupon Treasury bonds from a zero curve.

Test assets for cross-sectional pricing (:mod:`bayesbond.pricing`): the return of buying the
``n``-year zero at month ``t`` and selling it ``h`` months later, when it is an
``n - h/12``-year zero, over the ``h``-month rate known at ``t``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayesbond.data.coerce import to_month_end
from bayesbond.errors import DataError, listing

__all__ = ["treasury_excess_returns"]


def _curve(yields) -> pd.DataFrame:
    if not isinstance(yields, pd.DataFrame):
        raise DataError("yields must be a DataFrame, dates x maturities in years (as returned by "
                        f"bb.readers.read_liuwu / read_gsw); got {type(yields).__name__}")
    try:
        tau = np.asarray(yields.columns, dtype=float)
    except (TypeError, ValueError):
        raise DataError("the columns of yields must be maturities in years (floats), got "
                        f"{listing(list(yields.columns))}") from None
    if not (np.all(np.isfinite(tau)) and np.all(tau > 0)):
        raise DataError(f"maturities must be positive years, got {listing(tau.tolist())}")
    if len(set(tau)) != len(tau):
        raise DataError("yields has two columns with the same maturity")
    try:
        Y = yields.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError("yields must be numeric") from None
    dates = to_month_end(yields.index, where="the dates of yields")
    if dates.has_duplicates:
        raise DataError(f"duplicated months in yields: {listing(dates[dates.duplicated()])}")
    out = pd.DataFrame(Y, index=dates, columns=pd.Index(tau, name="maturity"))
    return out.sort_index().sort_index(axis=1)


def _interp(Y: np.ndarray, tau: np.ndarray, at: float) -> np.ndarray:
    """Yields at maturity ``at`` on every date, linear in maturity between neighbours."""
    near = np.flatnonzero(np.abs(tau - at) <= 1e-9)
    if near.size:
        return Y[:, near[0]]
    j = np.searchsorted(tau, at)
    if j == 0 or j == len(tau):
        raise DataError(
            f"maturity {at:.6g} years is outside the curve ({tau[0]:.6g}..{tau[-1]:.6g} years): "
            "no extrapolation; choose other maturities or give short_rate")
    w = (at - tau[j - 1]) / (tau[j] - tau[j - 1])
    return (1 - w) * Y[:, j - 1] + w * Y[:, j]


def treasury_excess_returns(yields: pd.DataFrame, maturities: Sequence[float] | None = None,
                            horizon: int = 1, kind: str = "log",
                            short_rate: pd.Series | None = None) -> pd.DataFrame:
    """Excess holding-period returns of zero-coupon bonds by maturity.

    Parameters
    ----------
    yields : pandas.DataFrame
        Zero-coupon yields, month-end dates x maturities in years, continuously compounded
        decimals per year (``bb.readers.read_liuwu``, ``read_gsw``, ``read_yields_csv``).
    maturities : sequence of float, optional
        Maturities (years) of the bonds bought; default every curve maturity longer than the
        horizon whose ``n - h/12`` lies on or inside the curve.
    horizon : int
        Holding period ``h`` in months.
    kind : {"log", "simple"}
        Log excess returns ``rx`` or simple ones ``exp(hpr) - exp(h/12 y_t(h))``.
    short_rate : pandas.Series, optional
        The ``h``-month rate at ``t`` (continuously compounded decimals per year), for curves
        that do not reach down to ``h/12`` (GSW starts at one year); default the curve's yield
        at ``h/12`` years.

    Returns
    -------
    pandas.DataFrame
        Dates ``t + h`` (month-end, the month the return is realised) x maturities ``n`` bought
        (years, columns named ``maturity``), decimals per ``h`` months. ``NaN`` where a yield
        is missing or month ``t + h`` is not in the curve.

    Notes
    -----
    With log prices ``p_t(n) = -n y_t(n)`` (``n`` in years), the log holding-period return is
    ``hpr_{t+h}(n) = p_{t+h}(n - h/12) - p_t(n)`` and the log excess return
    ``rx_{t+h}(n) = hpr_{t+h}(n) - (h/12) y_t(h/12)``
    (Campbell and Shiller 1991; Cochrane and Piazzesi 2005 with ``h = 12``). The yield
    ``y_{t+h}(n - h/12)`` is read from the curve when the maturity is on it (Liu-Wu's monthly
    grid, ``h = 1``) and otherwise interpolated LINEARLY IN MATURITY between the two
    neighbouring maturities of the curve (no extrapolation: an error names the maturity).
    Linear interpolation of yields is exact for a curve linear in maturity and, on the Liu-Wu
    grid, errs by under a basis point; for GSW use its own Nelson-Siegel-Svensson parameters
    where such precision matters.
    """
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise DataError(f"horizon must be a positive whole number of months, got {horizon!r}")
    h = int(horizon)
    if kind not in ("log", "simple"):
        raise DataError(f"kind must be 'log' or 'simple', got {kind!r}")
    curve = _curve(yields)
    tau = curve.columns.to_numpy()
    Y = curve.to_numpy()
    hy = h / 12.0
    if maturities is None:
        mats = [n for n in tau if n > hy + 1e-9 and n - hy >= tau[0] - 1e-9]
        if not mats:
            raise DataError(f"no maturity of the curve is longer than the {h}-month horizon "
                            "plus its shortest maturity")
    else:
        mats = [float(n) for n in maturities]
        short = [n for n in mats if n <= hy + 1e-9]
        if short:
            raise DataError(f"maturities {listing(short)} are not longer than the {h}-month "
                            "holding period")
    if short_rate is None:
        rf = _interp(Y, tau, hy)
    else:
        s = pd.Series(short_rate)
        s.index = to_month_end(s.index, where="the dates of short_rate")
        rf = s.reindex(curve.index).to_numpy(dtype=float)
    dates = curve.index
    later = dates + pd.offsets.MonthEnd(h)
    pos = pd.Index(dates).get_indexer(later)  # row of t + h, -1 if absent
    ok = pos >= 0
    out = np.full((len(dates), len(mats)), np.nan)
    for k, n in enumerate(mats):
        y_now = _interp(Y, tau, n)
        y_next = _interp(Y, tau, n - hy)
        hpr = -(n - hy) * y_next[pos[ok]] + n * y_now[ok]
        rx = hpr - hy * rf[ok]
        out[ok, k] = rx if kind == "log" else np.exp(hpr) - np.exp(hy * rf[ok])
    res = pd.DataFrame(out[ok], index=pd.DatetimeIndex(later[ok], name="date"),
                       columns=pd.Index(mats, name="maturity"))
    return res

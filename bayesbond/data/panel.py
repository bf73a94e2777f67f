"""The bond panel: monthly returns, ratings, weights and signals on a (date, bond) grid.

A long table (one row per bond and month) becomes labelled ``xarray`` arrays with dimensions
``date`` (month-end timestamps) and ``bond`` (the user's bond identifiers, e.g. CUSIPs). Unbalanced
panels are normal: months without a return are ``NaN``, counted in :attr:`BondPanel.n_obs` and
never filled.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.data.ratings import BUCKETS, rating_buckets
from bayesbond.errors import DataError

__all__ = [
    "UNITS",
    "BondPanel",
    "check_return_units",
    "parse_dates",
    "to_decimal",
    "to_month_end",
]

_MAX_LISTED = 10


def _listing(items: Sequence, limit: int = _MAX_LISTED) -> str:
    items = list(items)
    text = ", ".join(str(i) for i in items[:limit])
    if len(items) > limit:
        text += f", ... ({len(items)} in all)"
    return text


_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?"
_YEAR_FIRST = re.compile(rf"^(\d{{4}})[-/.](\d{{1,2}})(?:[-/.](\d{{1,2}}))?{_TIME}$")  # 2020-01-31
_DAY_MONTH = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?:[ T].*)?$")  # 05/01/2020


def _shown(rows, s: pd.Series) -> str:
    rows = list(rows)
    text = "; ".join(f"row {i}: {s.iloc[i]!r}" for i in rows[:_MAX_LISTED])
    return text + (f" ... ({len(rows)} in all)" if len(rows) > _MAX_LISTED else "")


def parse_dates(values, where: str = "date column", date_format: str | None = None) -> pd.Series:
    """Parse dates, refusing day/month orders that a row cannot settle.

    Parameters
    ----------
    values : array-like
        Dates as timestamps, ISO-like strings (``"2020-01-31"``, ``"2020-01"``,
        ``"2020/01/31"``), integers or strings in ``yyyymm`` / ``yyyymmdd`` form, month names
        (``"Jan 2020"``), or day/month strings (``"31/01/2020"``, ``"01/31/2020"``).
    where : str
        Text naming the origin, used in error messages.
    date_format : str, optional
        A ``strftime`` format (e.g. ``"%d/%m/%Y"``) used for every row instead of the inference.

    Returns
    -------
    pandas.Series of datetime64[ns]
        Positionally indexed like ``values``.

    Raises
    ------
    DataError
        Naming the rows (positions) and values that are missing or cannot be parsed; for
        ``dd/mm/yyyy``-or-``mm/dd/yyyy`` strings, the rows whose order is ambiguous (both fields
        12 or less, e.g. ``05/01/2020``) and, when rows of one column need different orders
        (``13/01/2020`` day first beside ``01/13/2020`` month first), both sets. Pass
        ``date_format`` to settle them.

    Notes
    -----
    A ``a/b/yyyy`` row is read day first when ``a > 12``, month first when ``b > 12``, either way
    when ``a == b``; otherwise it is ambiguous. Nothing is guessed from the other rows: a column
    that mixes orders, or holds one ambiguous row, is refused.
    """
    s = pd.Series(np.asarray(values, dtype=object) if not isinstance(values, pd.Series) else values)
    s = s.reset_index(drop=True)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        parsed = pd.to_datetime(s)
    else:
        # parse each distinct value once (a panel repeats every date once per bond); messages
        # name the rows of the input
        codes, uniques = pd.factorize(s.astype(object), use_na_sentinel=True)
        u = pd.Series(np.asarray(uniques, dtype=object))

        def show(ks) -> str:
            return _shown(np.flatnonzero(np.isin(codes, ks)), s)

        text = u.map(
            lambda v: (
                str(int(v))
                if isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                or (isinstance(v, float) and float(v).is_integer())
                else v
            )
        )
        as_str = text.map(lambda v: v.strip() if isinstance(v, str) else v)
        parsed = pd.Series(pd.NaT, index=u.index, dtype="datetime64[ns]")
        if date_format is not None:
            sel = as_str.notna()
            parsed[sel] = pd.to_datetime(
                as_str[sel].astype(str), format=date_format, errors="coerce"
            ).to_numpy()
        else:
            is_str = as_str.map(lambda v: isinstance(v, str))
            digits = as_str.map(lambda v: isinstance(v, str) and v.isdigit())
            for n, fmt in ((6, "%Y%m"), (8, "%Y%m%d")):
                sel = digits & as_str.map(lambda v, n=n: isinstance(v, str) and len(v) == n)
                if sel.any():
                    parsed[sel] = pd.to_datetime(as_str[sel], format=fmt, errors="coerce")
            dm = as_str.map(lambda v: _DAY_MONTH.match(v) if isinstance(v, str) else None)
            has_dm = dm.notna() & is_str
            if has_dm.any():
                parts = dm[has_dm].map(lambda m: m.groups()).tolist()
                a = np.array([int(g[0]) for g in parts])
                b = np.array([int(g[1]) for g in parts])
                y = np.array([int(g[2]) if len(g[2]) == 4 else -int(g[2]) for g in parts])
                y = np.where(y < 0, np.where(-y <= 68, 2000 - y, 1900 - y), y)  # %y's rule
                rows = np.flatnonzero(has_dm.to_numpy())
                day_first, month_first = (a > 12) & (b <= 12), (b > 12) & (a <= 12)
                ambiguous = (a <= 12) & (b <= 12) & (a != b)
                hint = "pass date_format='%d/%m/%Y' (day first) or '%m/%d/%Y' (month first)"
                if day_first.any() and month_first.any():
                    raise DataError(
                        f"mixed date formats in {where}: day first in "
                        f"{show(rows[day_first])}, but month first in "
                        f"{show(rows[month_first])}; {hint}"
                    )
                if ambiguous.any():
                    other = (
                        " (other rows read day first)"
                        if day_first.any()
                        else " (other rows read month first)"
                        if month_first.any()
                        else ""
                    )
                    raise DataError(
                        f"ambiguous dates in {where}, day/month or month/day: "
                        f"{show(rows[ambiguous])}{other}; {hint}"
                    )
                day, month = np.where(day_first, a, b), np.where(day_first, b, a)
                parsed[has_dm] = pd.to_datetime(
                    pd.DataFrame({"year": y, "month": month, "day": day}), errors="coerce"
                ).to_numpy()
            rest = ~digits & ~has_dm & as_str.notna()
            if rest.any():
                rs = as_str[rest].astype(object)
                ymd = rs.map(lambda v: _YEAR_FIRST.match(v) if isinstance(v, str) else None)
                year_first = ymd.notna()
                out = pd.Series(pd.NaT, index=rs.index, dtype="datetime64[ns]")
                if year_first.any():  # year, month, day: never read as year, day, month
                    g = ymd[year_first].map(lambda m: m.groups()).tolist()
                    parts = {
                        "year": [int(x[0]) for x in g],
                        "month": [int(x[1]) for x in g],
                        "day": [int(x[2] or 1) for x in g],  # "2020-01": the month itself
                    }  # the clock time (and its zone) is dropped: dates only
                    out[year_first] = pd.to_datetime(
                        pd.DataFrame(parts), errors="coerce"
                    ).to_numpy()
                if (~year_first).any():  # timestamps, month names
                    out[~year_first] = pd.to_datetime(
                        rs[~year_first], errors="coerce", format="mixed"
                    ).to_numpy()
                parsed[rest] = out.to_numpy()
        vals = np.append(pd.to_datetime(parsed).to_numpy(), np.datetime64("NaT", "ns"))
        parsed = pd.Series(vals[codes], index=s.index)  # code -1 (missing) -> the NaT
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        fmt = f" with date_format={date_format!r}" if date_format is not None else ""
        raise DataError(f"unparseable or missing dates in {where}{fmt}: {_shown(bad, s)}")
    return parsed


def to_month_end(
    values, where: str = "date column", date_format: str | None = None
) -> pd.DatetimeIndex:
    """Parse dates (:func:`parse_dates`) and move each to its month-end (midnight, ``ns``).

    Parameters
    ----------
    values : array-like
        Dates as strings (``"2020-01-15"``, ``"2020-01"``, ``"31/01/2020"``), timestamps, or
        integers/strings in ``yyyymm`` or ``yyyymmdd`` form.
    where : str
        Text naming the origin, used in error messages.
    date_format : str, optional
        ``strftime`` format for every row (needed for ambiguous day/month strings).

    Returns
    -------
    pandas.DatetimeIndex
        Month-end dates named ``"date"``.

    Raises
    ------
    DataError
        Naming the rows (positions) and values that are missing, cannot be parsed, or whose
        day/month order is ambiguous or mixed.
    """
    if isinstance(values, pd.DatetimeIndex) and values.tz is None:
        parsed = values
    else:
        parsed = pd.DatetimeIndex(parse_dates(values, where=where, date_format=date_format))
    if parsed.isna().any():
        bad = np.flatnonzero(parsed.isna())
        raise DataError(
            f"unparseable or missing dates in {where}: "
            f"{'; '.join(f'row {i}: NaT' for i in bad[:_MAX_LISTED])}"
        )
    idx = pd.DatetimeIndex(parsed).normalize() + pd.offsets.MonthEnd(0)
    return pd.DatetimeIndex(idx.as_unit("ns"), name="date")


#: units a return (or factor return) may be given in; inside the library returns are decimals
UNITS: tuple[str, ...] = ("decimal", "percent")

# magnitudes of monthly returns (see check_return_units)
_PERCENT_ABOVE = 0.3  # median |r| above this: not decimals (30% a month is a typical move)
_BORDERLINE_ABOVE = 0.1  # median |r| in (0.1, 0.3]: suspicious, warned
_DECIMAL_BELOW = 5e-4  # after converting percent: median |r| below this looks like decimals / 100
_MIN_MONTHS = 12  # months a single series needs for a verdict of its own


def to_decimal(values, units: str, what: str = "returns"):
    """``values`` in decimals: unchanged for ``units="decimal"``, divided by 100 for ``"percent"``.

    Raises
    ------
    DataError
        For any other ``units``.
    """
    if units not in UNITS:
        raise DataError(f"units of the {what} must be one of {list(UNITS)}, got {units!r}")
    return values / 100.0 if units == "percent" else values


def check_return_units(
    values: np.ndarray,
    labels: Sequence,
    where: str,
    units: str = "decimal",
    kind: str = "bond",
) -> None:
    """Refuse returns whose magnitude says they are not decimals per month.

    Parameters
    ----------
    values : ndarray (T, N)
        Returns in decimals (after any conversion), dates x series, ``NaN`` where missing.
    labels : sequence
        The ``N`` series names, for the message.
    where : str
        What the values are (e.g. ``"column 'ret'"``, ``"factors"``), for the message.
    units : {"decimal", "percent"}
        The units the user declared (only the advice in the message depends on it).
    kind : str
        What a series is (``"bond"``, ``"factor"``), for the message.

    Raises
    ------
    DataError
        Gross returns (``1 + r``), or returns in percent (median ``|r|`` above 0.3), over all
        values or over a series with at least 12 months (named).

    Warns
    -----
    UserWarning
        Median ``|r|`` in (0.1, 0.3] (borderline), or, with ``units="percent"``, a converted
        median ``|r|`` below 5e-4 (the values may have been decimals already).

    Notes
    -----
    A monthly decimal return has median ``|r|`` of about 0.005-0.03; the same in percent is 100
    times larger, and a gross return ``1 + r`` is close to 1 and positive. The tests are counts:
    ``median |r| > c`` exactly when more than half the observed ``|r|`` exceed ``c``; a series
    looks gross when more than half its values lie within 0.1 of 1 and 95% exceed 0.5. Each is
    judged over all observed values and for every series with at least 12 of them.
    """
    V = np.asarray(values, dtype=float)
    V = V.reshape(len(V), -1)
    ok = np.isfinite(V)
    n = ok.sum(axis=0)
    if not n.sum():
        return
    N = n.sum()
    with np.errstate(invalid="ignore"):
        A = np.abs(V)
        big = (A > _PERCENT_ABOVE).sum(axis=0)
        mid = (A > _BORDERLINE_ABOVE).sum(axis=0)
        # gross returns are mostly above 0.3 in size: only such series need the gross counts
        cand = (2 * big > n) | (2 * big.sum() > N)
        near1, pos = np.zeros_like(n), np.zeros_like(n)
        if cand.any():
            Vc = V[:, cand]
            near1[cand] = (np.abs(Vc - 1.0) < 0.1).sum(axis=0)
            pos[cand] = (Vc > 0.5).sum(axis=0)
        small = (A < _DECIMAL_BELOW).sum(axis=0) if units == "percent" else None
    own = n >= _MIN_MONTHS
    labels = list(labels)
    plural = f"{kind}s"

    def med(sel) -> float:  # median over the flagged series only (few; the tests are counts)
        return float(np.nanmedian(V[:, sel]))

    def medabs(sel) -> float:
        return float(np.nanmedian(np.abs(V[:, sel])))

    def named(sel) -> str:
        names = [labels[j] for j in np.flatnonzero(sel)]
        return f" ({plural} {_listing(names)})" if names else ""

    gross_s = own & (2 * near1 > n) & (pos > 0.95 * n)
    if (2 * near1.sum() > N and pos.sum() > 0.95 * N) or gross_s.any():
        sel = gross_s if gross_s.any() else np.ones(len(n), bool)
        raise DataError(
            f"{where} look like gross returns 1 + r (median {med(sel):.4g}){named(gross_s)}: "
            "pass net returns r (decimals per month; subtract 1)"
        )
    fix = (
        "pass units='percent' to convert them"
        if units == "decimal"
        else "percent were declared, so these are not monthly percent returns either"
    )
    pct_s = own & (2 * big > n)
    if 2 * big.sum() > N or pct_s.any():
        sel = pct_s if pct_s.any() else np.ones(len(n), bool)
        raise DataError(
            f"{where} look like percent, not decimals: median |r| = "
            f"{medabs(sel):.3g}{named(pct_s)}, while a monthly "
            "decimal return has median |r| of about 0.005-0.03; "
            f"{fix}, or check_units=False if they are right"
        )
    border_s = own & (2 * mid > n)
    if 2 * mid.sum() > N or border_s.any():
        sel = border_s if border_s.any() else np.ones(len(n), bool)
        warnings.warn(
            f"{where} are large for monthly decimal returns: median |r| = "
            f"{medabs(sel):.3g}{named(border_s)}; if they are in "
            "percent pass units='percent'",
            UserWarning,
            stacklevel=3,
        )
    if units == "percent":
        tiny_s = own & (2 * small > n)
        if 2 * small.sum() > N or tiny_s.any():
            sel = tiny_s if tiny_s.any() else np.ones(len(n), bool)
            warnings.warn(
                f"{where} were declared in percent but are tiny after conversion: median |r| = "
                f"{medabs(sel):.3g}{named(tiny_s)}; if they were "
                "decimals already, pass units='decimal'",
                UserWarning,
                stacklevel=3,
            )


def _as_float(col: pd.Series, name: str) -> np.ndarray:
    try:
        out = pd.to_numeric(col, errors="raise")
    except (ValueError, TypeError) as exc:
        raw = col.astype(object)
        coerced = pd.to_numeric(raw, errors="coerce")
        bad = raw[coerced.isna() & raw.notna()]
        raise DataError(
            f"column {name!r} is not numeric: rows {_listing(bad.index)} hold "
            f"{_listing(repr(v) for v in bad.to_numpy())}"
        ) from exc
    return np.asarray(out, dtype=float)


class BondPanel:
    """Monthly bond returns with ratings, weights and signals on a labelled (date, bond) grid.

    Build it with :meth:`from_frame`. All arrays share the coordinates ``date`` (month-end
    ``DatetimeIndex``) and ``bond`` (the bond identifiers, sorted).

    Attributes
    ----------
    returns : xarray.DataArray
        Returns (decimals per month), dims ``(date, bond)``; ``NaN`` where not observed.
    ratings : xarray.DataArray or None
        Raw rating labels as given (object; missing entries are ``NaN``).
    buckets : xarray.DataArray or None
        Buckets ``"IG+"``, ``"IG-"``, ``"HY"`` (object; ``NaN`` where the rating is missing).
    weights : xarray.DataArray or None
        Non-negative weights, e.g. amount outstanding or market value; ``NaN`` where missing.
    signals : xarray.Dataset
        One float variable per signal, dims ``(date, bond)``.
    unrated : {"error", "missing"}
        How unrated labels (``NR``, ``WR``, ``WD``, blank) in ``ratings`` were read: refused, or
        kept as given in ``ratings`` with a missing bucket.
    """

    def __init__(
        self,
        returns: xr.DataArray,
        ratings: xr.DataArray | None = None,
        weights: xr.DataArray | None = None,
        signals: xr.Dataset | None = None,
        present: xr.DataArray | None = None,
        unrated: str = "error",
    ):
        if not isinstance(returns, xr.DataArray) or returns.dims != ("date", "bond"):
            raise DataError("BondPanel needs returns as an xarray.DataArray with dims (date, bond)")
        if returns.sizes["date"] == 0 or returns.sizes["bond"] == 0:
            raise DataError("empty panel: no dates or no bonds")
        values = np.asarray(returns.values, dtype=float)
        if np.isinf(values).any():
            d, b = np.nonzero(np.isinf(values))
            cells = [
                f"({returns.bond.values[j]}, {returns.date.values[i]})"
                for i, j in zip(d, b, strict=True)
            ]
            raise DataError(f"non-finite returns at (bond, date): {_listing(cells)}")
        if not np.isfinite(values).any():
            raise DataError("empty panel: no finite return")
        self.returns = returns.astype(float).rename("ret")
        self.ratings = ratings
        self.weights = weights
        self.signals = signals if signals is not None else xr.Dataset(coords=self.returns.coords)
        self.buckets = None
        self.unrated = unrated
        if ratings is not None:
            b = rating_buckets(ratings.values, where="ratings", unrated=unrated)
            self.buckets = xr.DataArray(b, coords=self.returns.coords, name="rating_bucket")
        if weights is not None:
            w = np.asarray(weights.values, dtype=float)
            neg = (w < 0) | np.isinf(w)
            if neg.any():
                d, bidx = np.nonzero(neg)
                cells = [
                    f"({returns.bond.values[j]}, {pd.Timestamp(returns.date.values[i]).date()})"
                    for i, j in zip(d, bidx, strict=True)
                ]
                raise DataError(f"negative or infinite weights at (bond, date): {_listing(cells)}")
        self._present = present if present is not None else self.returns.notnull()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        date: str = "date",
        bond: str = "bond",
        ret: str = "ret",
        rating: str | None = "rating",
        weight: str | None = "weight",
        signals: Sequence[str] | None = None,
        *,
        unrated: str = "error",
        units: str = "decimal",
        check_units: bool = True,
        date_format: str | None = None,
    ) -> BondPanel:
        """Build a panel from a long table (one row per bond and month).

        Parameters
        ----------
        df : pandas.DataFrame
            The long panel.
        date, bond, ret : str
            Column names of the date, bond identifier and return (decimal per month).
        rating, weight : str or None
            Column names of the rating and the (non-negative) weight. ``None``, or the default
            name when that column is absent, means the panel has none.
        signals : sequence of str, optional
            Signal columns. By default every further column is a signal.
        unrated : {"error", "missing"}
            Unrated labels in the rating column (``NR``, ``WR``, ``WD``, blank, a bare watch
            mark): an error listing them (default), or months without a rating (``"missing"``:
            the raw label is kept in :attr:`ratings`, the bucket is missing, and
            :meth:`bond_bucket` ignores those months). Qualifiers such as ``(P)Baa3``,
            ``A-(sf)``, ``Baa3u`` and watch marks (``BBB+ *-``, ``A- (CW Negative)``) are
            stripped either way (:func:`bayesbond.data.ratings.clean_rating`).
        units : {"decimal", "percent"}
            Units of the return column; percent are divided by 100.
        check_units : bool
            Refuse returns whose magnitude says they are percent or gross returns ``1 + r``
            (:func:`check_return_units`); ``False`` to take them as they are.
        date_format : str, optional
            ``strftime`` format of the date column (e.g. ``"%d/%m/%Y"``); needed when day/month
            strings are ambiguous (:func:`parse_dates`).

        Returns
        -------
        BondPanel

        Raises
        ------
        DataError
            A missing column, an empty panel, unparseable, ambiguous or mixed-order dates (rows
            named), duplicated (bond, date) rows (listed), non-finite returns, returns that look
            like percent or gross returns (bonds named), negative weights, unknown ratings or,
            with ``unrated="error"``, unrated labels (listed with rows and bonds).

        Notes
        -----
        Dates are moved to their month-end, so ``2020-01-15`` and ``2020-01-31`` are the same month
        (and, for the same bond, a duplicate). Missing returns (``NaN``) are allowed and counted;
        rows with a missing return still carry their rating, weight and signals (needed for sorts).
        """
        if not isinstance(df, pd.DataFrame):
            raise DataError(
                f"BondPanel.from_frame needs a pandas DataFrame, got {type(df).__name__}"
            )
        if rating is not None and rating not in df.columns and rating == "rating":
            rating = None
        if weight is not None and weight not in df.columns and weight == "weight":
            weight = None
        needed = [c for c in (date, bond, ret, rating, weight) if c is not None]
        if signals is not None:
            needed += list(signals)
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise DataError(
                f"missing column(s) {_listing(repr(c) for c in missing)}; the table has "
                f"{_listing(repr(c) for c in df.columns)}"
            )
        if len(df) == 0:
            raise DataError("empty panel: the table has no rows")
        used = {date, bond, ret, rating, weight} - {None}
        signal_cols = (
            list(signals) if signals is not None else [c for c in df.columns if c not in used]
        )

        df = df.reset_index(drop=True)
        if units not in UNITS:
            raise DataError(f"units must be one of {list(UNITS)}, got {units!r}")
        if unrated not in ("error", "missing"):
            raise DataError(f"unrated must be 'error' or 'missing', got {unrated!r}")
        dates = to_month_end(df[date], where=f"column {date!r}", date_format=date_format)
        if df[bond].isna().any():
            rows = np.flatnonzero(df[bond].isna().to_numpy())
            raise DataError(f"missing bond identifiers in column {bond!r} at rows {_listing(rows)}")
        d_codes, d_uniques = pd.factorize(dates, sort=True)
        b_codes, b_uniques = pd.factorize(df[bond], sort=True)
        n_d, n_b = len(d_uniques), len(b_uniques)

        key = d_codes.astype(np.int64) * n_b + b_codes
        dup = pd.Series(key).duplicated(keep=False).to_numpy()
        if dup.any():
            pairs = sorted(
                {
                    (str(b_uniques[b]), str(d_uniques[d].date()))
                    for d, b in zip(d_codes[dup], b_codes[dup], strict=True)
                }
            )
            raise DataError(
                f"duplicated (bond, date) rows after moving dates to month-end: "
                f"{_listing(f'({b}, {d})' for b, d in pairs)}"
            )

        date_index = pd.DatetimeIndex(d_uniques, name="date")
        bond_index = pd.Index(b_uniques, name="bond")
        coords = {"date": date_index, "bond": bond_index}

        def grid(values: np.ndarray, fill, dtype) -> np.ndarray:
            out = np.full((n_d, n_b), fill, dtype=dtype)
            out[d_codes, b_codes] = values
            return out

        r = to_decimal(_as_float(df[ret], ret), units, f"column {ret!r}")
        inf = np.isinf(r)
        if inf.any():
            rows = np.flatnonzero(inf)
            cells = [f"row {i} ({df[bond].iloc[i]}, {dates[i].date()}): {r[i]}" for i in rows]
            raise DataError(f"non-finite returns in column {ret!r}: {_listing(cells)}")
        if not np.isfinite(r).any():
            raise DataError(f"empty panel: column {ret!r} has no finite return")
        r_grid = grid(r, np.nan, float)
        if check_units:
            check_return_units(r_grid, bond_index, f"returns in column {ret!r}", units, "bond")
        returns = xr.DataArray(r_grid, coords=coords, dims=("date", "bond"))
        present = xr.DataArray(grid(True, False, bool), coords=coords, dims=("date", "bond"))

        ratings = None
        if rating is not None:
            try:
                rating_buckets(
                    df[rating].astype(object).to_numpy(),
                    where=f"column {rating!r}",
                    unrated=unrated,
                )
            except DataError as exc:
                codes, uniques = pd.factorize(df[rating].astype(object), use_na_sentinel=True)

                def refused(v) -> bool:
                    try:
                        rating_buckets([v], unrated=unrated)
                    except DataError:
                        return True
                    return False

                bad_codes = [k for k, v in enumerate(uniques) if refused(v)]
                rows = np.flatnonzero(np.isin(codes, bad_codes))
                cells = [f"row {i} ({df[bond].iloc[i]}, {dates[i].date()})" for i in rows]
                raise DataError(f"{exc}; at {_listing(cells)}" if cells else str(exc)) from exc
            raw = np.asarray(
                df[rating].astype(object).where(df[rating].notna(), None), dtype=object
            )
            ratings = xr.DataArray(grid(raw, None, object), coords=coords, dims=("date", "bond"))
            ratings.name = "rating"

        weights = None
        if weight is not None:
            w = _as_float(df[weight], weight)
            bad = (w < 0) | np.isinf(w)
            if bad.any():
                rows = np.flatnonzero(bad)
                cells = [f"row {i} ({df[bond].iloc[i]}, {dates[i].date()}): {w[i]}" for i in rows]
                raise DataError(
                    f"negative or infinite weights in column {weight!r}: {_listing(cells)}"
                )
            weights = xr.DataArray(grid(w, np.nan, float), coords=coords, dims=("date", "bond"))
            weights.name = "weight"

        sig = {}
        for c in signal_cols:
            try:
                v = _as_float(df[c], c)
            except DataError as exc:
                if signals is not None:
                    raise
                raise DataError(
                    f"{exc} (every column besides date, bond, ret, rating and weight is read as a "
                    "signal: pass signals=[...] to choose them)"
                ) from exc
            if np.isinf(v).any():
                rows = np.flatnonzero(np.isinf(v))
                raise DataError(
                    f"non-finite values in signal column {c!r} at rows {_listing(rows)}"
                )
            sig[str(c)] = (("date", "bond"), grid(v, np.nan, float))
        signals_ds = xr.Dataset(sig, coords=coords)
        return cls(
            returns,
            ratings=ratings,
            weights=weights,
            signals=signals_ds,
            present=present,
            unrated=unrated,
        )

    # ------------------------------------------------------------------ views
    @property
    def dates(self) -> pd.DatetimeIndex:
        """Month-end dates of the grid."""
        return pd.DatetimeIndex(self.returns.indexes["date"], name="date")

    @property
    def bonds(self) -> pd.Index:
        """Bond identifiers of the grid."""
        return pd.Index(self.returns.indexes["bond"], name="bond")

    @property
    def observed(self) -> xr.DataArray:
        """Boolean (date, bond) mask of observed (finite) returns."""
        return self.returns.notnull().rename("observed")

    @property
    def n_obs(self) -> pd.Series:
        """Number of observed returns per bond."""
        return pd.Series(
            self.observed.values.sum(axis=0), index=self.bonds, name="n_obs", dtype=np.int64
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(number of dates, number of bonds)."""
        return self.returns.shape

    def __repr__(self) -> str:
        n_d, n_b = self.shape
        parts = [
            f"{n_d} months ({self.dates[0].date()} .. {self.dates[-1].date()})",
            f"{n_b} bonds",
            f"{int(self.observed.values.sum())} observed returns",
        ]
        extra = [
            name
            for name, v in (("ratings", self.ratings), ("weights", self.weights))
            if v is not None
        ]
        extra += [f"signal {s!r}" for s in self.signals.data_vars]
        return f"BondPanel({', '.join(parts)}; {', '.join(extra) if extra else 'returns only'})"

    def bond_bucket(
        self, rule: str = "mode", mapping: Mapping | pd.Series | None = None
    ) -> pd.Series:
        """One rating bucket per bond.

        Parameters
        ----------
        rule : {"mode", "last"}
            ``"mode"``: the bucket the bond holds in the most *observed* months (months with
            both a return and a rating; rows whose return is missing do not count); ties go to
            the tied bucket the bond held most recently among them. A bond with no observed
            rated month falls back to all its rated rows. ``"last"``: the bucket of its last
            rated row (observed or not).
        mapping : mapping or Series, optional
            Bond -> bucket (or rating) overrides; they win over the rule. Bonds it names must be in
            the panel.

        Returns
        -------
        pandas.Series
            Bond -> ``"IG+"``/``"IG-"``/``"HY"``, indexed like :attr:`bonds`.

        Raises
        ------
        DataError
            Unknown rule, unknown bonds or buckets in ``mapping``, or bonds without any rating and
            no override.
        """
        if rule not in ("mode", "last"):
            raise DataError(f"unknown rule {rule!r}: use 'mode' or 'last'")
        out = pd.Series(None, index=self.bonds, dtype=object, name="rating_bucket")
        if self.buckets is not None:
            b = self.buckets.values  # (date, bond) object, None where unrated
            n_d = b.shape[0]
            rows = np.arange(n_d)[:, None]
            counts = np.stack([(b == k).sum(axis=0) for k in BUCKETS])  # (bucket, bond)
            last = np.stack([np.where(b == k, rows, -1).max(axis=0) for k in BUCKETS])
            rated = counts.sum(axis=0) > 0
            if rule == "last":
                choice = last.argmax(axis=0)
            else:
                # months with an observed return only; bonds without any fall back to all rows
                obs = self.observed.values
                c_obs = np.stack([((b == k) & obs).sum(axis=0) for k in BUCKETS])
                l_obs = np.stack([np.where((b == k) & obs, rows, -1).max(axis=0) for k in BUCKETS])
                use_obs = c_obs.sum(axis=0) > 0
                counts = np.where(use_obs, c_obs, counts)
                last = np.where(use_obs, l_obs, last)
                # most months; among ties the bucket seen most recently
                score = np.where(counts == counts.max(axis=0), last, -2)
                choice = score.argmax(axis=0)
            labels = np.asarray(BUCKETS, dtype=object)[choice]
            out[:] = np.where(rated, labels, None)
        if mapping is not None:
            m = pd.Series(mapping)
            unknown_bonds = [k for k in m.index if k not in self.bonds]
            if unknown_bonds:
                raise DataError(
                    f"bucket mapping names bonds not in the panel: {_listing(unknown_bonds)}"
                )
            for k, v in m.items():
                if v in BUCKETS:
                    out.loc[k] = v
                else:
                    out.loc[k] = rating_buckets(
                        [v], missing_ok=False, where=f"mapping for bond {k}"
                    )[0]
        if out.isna().any():
            missing = list(out.index[out.isna()])
            raise DataError(
                f"bonds without any rating (give them in mapping=): {_listing(missing)}"
            )
        return out

    def to_frame(self) -> pd.DataFrame:
        """Long table, one row per bond and month present in the input (what `from_frame` reads).

        Columns: ``date``, ``bond``, ``ret``, then ``rating`` and ``weight`` when present, then
        the signals.
        """
        mask = self._present.values
        d_idx, b_idx = np.nonzero(mask)
        out = {
            "date": self.dates[d_idx],
            "bond": np.asarray(self.bonds)[b_idx],
            "ret": self.returns.values[d_idx, b_idx],
        }
        if self.ratings is not None:
            out["rating"] = self.ratings.values[d_idx, b_idx]
        if self.weights is not None:
            out["weight"] = self.weights.values[d_idx, b_idx]
        for name, var in self.signals.data_vars.items():
            out[str(name)] = var.values[d_idx, b_idx]
        return pd.DataFrame(out)

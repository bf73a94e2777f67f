"""One input coercion for the whole library: dates, Series vs DataFrame, missing values, units.

:func:`bayesbond.ols`, every Bayesian model's data preparation, :class:`BondPanel`, the file
readers (:mod:`bayesbond.data.readers`) and the command line all coerce their inputs here, so a
table means the same thing whichever of them reads it.

Rules
-----
Dates
    Returns and factor returns are monthly: their dates go through :func:`to_month_end`
    (``2000-01-01``, ``2000-01-15`` and ``2000-01-31`` are all ``2000-01-31``). Rates and yields
    (OU, affine models) keep their dates, from which the step is measured
    (:func:`bayesbond.core.ou.infer_dt`); ``read_fred`` keeps a daily file's days.
Series or DataFrame
    A :class:`pandas.Series` of returns is one bond, of factor returns one factor: a one-column
    table whose column is the Series name (:func:`as_wide_returns`, :func:`as_factor_frame`).
Missing values
    In a file, :data:`MISSING_MARKERS` (and pandas' own markers: empty, ``NA``, ``NaN``,
    ``n/a``, ...) are missing (:func:`read_table`); in memory only ``NaN`` is. Anything else that
    is not a number is refused, naming the column, row and date (:func:`as_float`). A missing
    value is refused only where a model needs one: a factor on a date with a return, an OU
    observation.
Units
    Returns are decimals per month inside the library; :func:`to_decimal` converts declared
    percent and :func:`check_return_units` refuses values whose size says otherwise.

Messages list at most ten items (:func:`bayesbond.errors.listing`, re-exported here).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.errors import DataError, listing

__all__ = ["MISSING_MARKERS", "UNITS", "as_factor_frame", "as_float", "as_wide_returns",
           "check_return_units", "dated_frame", "listing", "non_numeric_columns", "parse_dates",
           "read_table", "to_decimal", "to_month_end"]

#: strings read as a missing value in a file, besides pandas' defaults (FRED writes ``.``)
MISSING_MARKERS: tuple[str, ...] = (".",)

_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?"
_YEAR_FIRST = re.compile(rf"^(\d{{4}})[-/.](\d{{1,2}})(?:[-/.](\d{{1,2}}))?{_TIME}$")  # 2020-01-31
_DAY_MONTH = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?:[ T].*)?$")  # 05/01/2020


def _shown(rows, s: pd.Series) -> str:
    return listing((f"row {i}: {s.iloc[i]!r}" for i in rows), sep="; ")


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

    Parameters and errors as :func:`parse_dates`; returns a :class:`pandas.DatetimeIndex` of
    month-end dates named ``"date"``.
    """
    if isinstance(values, pd.PeriodIndex):
        values = values.to_timestamp(how="start")
    if isinstance(values, pd.DatetimeIndex) and values.tz is None:
        parsed = values
    else:
        parsed = pd.DatetimeIndex(parse_dates(values, where=where, date_format=date_format))
    if parsed.isna().any():
        bad = np.flatnonzero(parsed.isna())
        raise DataError(
            f"unparseable or missing dates in {where}: "
            f"{listing((f'row {i}: NaT' for i in bad), sep='; ')}"
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


def check_return_units(values: np.ndarray, labels: Sequence, where: str, units: str = "decimal",
                       kind: str = "bond") -> None:
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

    def flagged(count):
        """Series with more than half their values counted (None: neither the pooled values
        nor any series with a verdict of its own), and the series the median is taken over."""
        s = own & (2 * count > n)
        return (None, None) if not (2 * count.sum() > N or s.any()) else (
            s, s if s.any() else np.ones(len(n), bool))

    def named(sel) -> str:
        names = [labels[j] for j in np.flatnonzero(sel)]
        return f" ({kind}s {listing(names)})" if names else ""

    gross_s = own & (2 * near1 > n) & (pos > 0.95 * n)
    if (2 * near1.sum() > N and pos.sum() > 0.95 * N) or gross_s.any():
        sel = gross_s if gross_s.any() else np.ones(len(n), bool)
        raise DataError(
            f"{where} look like gross returns 1 + r (median {np.nanmedian(V[:, sel]):.4g})"
            f"{named(gross_s)}: pass net returns r (decimals per month; subtract 1)"
        )
    fix = (
        "pass units='percent' to convert them"
        if units == "decimal"
        else "percent were declared, so these are not monthly percent returns either"
    )
    cases = [  # (count, what they look like, advice, refused)
        (big, "look like percent, not decimals", ", while a monthly decimal return has median "
         f"|r| of about 0.005-0.03; {fix}, or check_units=False if they are right", True),
        (mid, "are large for monthly decimal returns", "; if they are in percent pass "
         "units='percent'", False),
    ]
    if units == "percent":
        cases.append((small, "were declared in percent but are tiny after conversion",
                      "; if they were decimals already, pass units='decimal'", False))
    for count, what, advice, refused in cases:
        s, sel = flagged(count)
        if s is None:
            continue
        msg = (f"{where} {what}: median |r| = {np.nanmedian(np.abs(V[:, sel])):.3g}"
               f"{named(s)}{advice}")
        if refused:
            raise DataError(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)




def as_float(values, name, dates=None) -> np.ndarray:
    """A column as floats; a value that is not a number is refused with its row (and date).

    Parameters
    ----------
    values : pandas.Series or array-like
        ``NaN`` (or ``None``, ``pd.NA``) is missing; any other non-number is an error.
    name : str
        The column's name, for the message.
    dates : sequence, optional
        The date of each row, named in the message.

    Returns
    -------
    ndarray of float

    Raises
    ------
    DataError
        Naming the column and the rows (positions from 0), values and dates that are not numbers.
    """
    raw = pd.Series(values).reset_index(drop=True)
    try:
        return np.asarray(pd.to_numeric(raw, errors="raise"), dtype=float)
    except (ValueError, TypeError) as exc:
        obj = raw.astype(object)
        rows = np.flatnonzero((pd.to_numeric(obj, errors="coerce").isna() & obj.notna()).to_numpy())
        cells = [f"row {i}: {obj.iloc[i]!r}"
                 + (f" on {pd.Timestamp(dates[i]).date()}" if dates is not None else "")
                 for i in rows]
        raise DataError(f"column {name!r} is not numeric: {listing(cells, sep='; ')}") from exc


def dated_frame(df: pd.DataFrame, date, columns=None, where: str | None = None,
                date_format: str | None = None, monthly: bool = True) -> pd.DataFrame:
    """The numeric columns of a table with a date column, indexed by its dates (file order).

    Parameters
    ----------
    df : pandas.DataFrame
        As read (:func:`read_table`).
    date : str
        The date column.
    columns : sequence of str, optional
        The value columns (default: all but ``date``), each read by :func:`as_float`.
    where : str, optional
        What the messages call the table (e.g. its file name); they start with it.
    date_format : str, optional
        ``strftime`` format of the dates (:func:`parse_dates`).
    monthly : bool
        Move the dates to month-end (:func:`to_month_end`); ``False`` keeps the days.

    Returns
    -------
    pandas.DataFrame
        Float columns on a DatetimeIndex named ``date``, in the rows' order.

    Raises
    ------
    DataError
        Dates that do not parse, two rows on one date (or month), values that are not numbers.
    """
    pre = f"{where}: " if where else ""
    col = f"{where}, column {date!r}" if where else f"column {date!r}"
    if monthly:
        dates = to_month_end(df[date], where=col, date_format=date_format)
    else:
        parsed = parse_dates(df[date], where=col, date_format=date_format)
        dates = pd.DatetimeIndex(parsed, name="date").normalize().as_unit("ns")
    dup = dates.duplicated(keep=False)
    if dup.any():
        raise DataError(f"{pre}duplicated date {dates[dup][0].date()} in column {date!r} "
                        f"(rows {listing(np.flatnonzero(dup))})")
    columns = [c for c in df.columns if c != date] if columns is None else list(columns)
    try:
        return pd.DataFrame({c: as_float(df[c], c, dates) for c in columns}, index=dates)
    except DataError as exc:
        raise DataError(f"{pre}{exc}") from None


def non_numeric_columns(df: pd.DataFrame) -> list:
    """Columns of ``df`` holding a value that is not a number (missing values are numbers)."""
    return [c for c in df.columns
            if (pd.to_numeric(df[c].astype(object), errors="coerce").isna() & df[c].notna()).any()]


def as_wide_returns(returns, where: str | None = None):
    """Returns of any accepted shape as ``(values, dates, bonds)``, dates sorted, month-end.

    Parameters
    ----------
    returns : BondPanel, xarray.DataArray (date, bond), DataFrame (dates x bonds) or Series
        A Series is one bond, named by the Series name (``"y"`` when it has none).
    where : str, optional
        What the messages call the returns (e.g. a file name); they start with it.

    Returns
    -------
    values : ndarray (T, N) of float
        ``NaN`` where a bond is not observed.
    dates : pandas.DatetimeIndex
        Month-end dates (:func:`to_month_end`), increasing.
    bonds : pandas.Index
        The bond labels as given, named ``bond``.

    Raises
    ------
    DataError
        Another type, a DataArray with other dims, non-numeric bonds (named), no values,
        dates that do not parse, duplicated months or bonds, infinite returns (cells named).
    """
    pre = f"{where}: " if where else ""
    if hasattr(returns, "returns") and hasattr(returns, "bond_bucket"):  # a BondPanel
        returns = returns.returns
    if isinstance(returns, xr.DataArray):
        if returns.ndim != 2 or set(returns.dims) != {"date", "bond"}:
            raise DataError(f"{pre}a returns DataArray needs dims (date, bond), got {returns.dims}")
        da = returns.transpose("date", "bond")
        values = np.asarray(da.values, dtype=float)
        index, columns = da.get_index("date"), da.get_index("bond")
    else:
        if isinstance(returns, pd.Series):
            returns = returns.to_frame(name=returns.name if returns.name is not None else "y")
        if not isinstance(returns, pd.DataFrame):
            raise DataError(
                f"{pre}returns must be a BondPanel, a wide DataFrame (dates x bonds), a Series "
                f"(one bond) or a DataArray (date, bond); got {type(returns).__name__}"
            )
        try:
            values = returns.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{pre}returns are not numeric for the bonds "
                            f"{listing(non_numeric_columns(returns))}") from exc
        index, columns = returns.index, returns.columns
    if values.size == 0:
        raise DataError(f"{pre}returns are empty")
    dates = to_month_end(index, where=f"the dates of {where}" if where else "the returns index")
    bonds = pd.Index(columns, name="bond")
    for what, idx in (("months", dates), ("bonds", bonds)):
        if idx.has_duplicates:
            raise DataError(f"{pre}duplicated {what} in the returns: "
                            f"{listing(idx[idx.duplicated()].unique())}")
    inf = np.isinf(values)
    if inf.any():
        cells = [f"({bonds[j]}, {dates[i].date()})" for i, j in zip(*np.nonzero(inf), strict=True)]
        raise DataError(f"{pre}infinite returns at (bond, date): {listing(cells)}")
    if not dates.is_monotonic_increasing:
        order = np.argsort(dates.to_numpy(), kind="stable")
        dates, values = dates[order], values[order]
    return values, dates, bonds


def as_factor_frame(factors, where: str | None = None) -> pd.DataFrame:
    """Factor returns as a DataFrame on increasing month-end dates (the values as given).

    Parameters
    ----------
    factors : DataFrame (dates x factors) or Series
        A Series is one factor, named by the Series name (``"factor"`` when it has none).
    where : str, optional
        What the messages call the factors (e.g. a file name); they start with it.

    Returns
    -------
    pandas.DataFrame
        Index: month-end dates named ``date`` (:func:`to_month_end`); columns as given.

    Raises
    ------
    DataError
        Another type, dates that do not parse, duplicated months.
    """
    pre = f"{where}: " if where else ""
    if isinstance(factors, pd.Series):
        factors = factors.to_frame(name=factors.name if factors.name is not None else "factor")
    if not isinstance(factors, pd.DataFrame):
        raise DataError(f"{where or 'factors'} must be a DataFrame (dates x factors) or a Series "
                        f"(one factor); got {type(factors).__name__}")
    dates = to_month_end(factors.index,
                            where=f"the dates of {where}" if where else "the factors index")
    if dates.has_duplicates:
        raise DataError(f"{pre}duplicated months in the factors: "
                        f"{listing(dates[dates.duplicated()].unique())}")
    out = factors.set_axis(dates, axis=0)
    return out if dates.is_monotonic_increasing else out.sort_index(kind="stable")


def read_table(path) -> pd.DataFrame:
    """Read a CSV (any suffix but Parquet's) or Parquet file, with the library's missing markers.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    pandas.DataFrame
        As in the file; :data:`MISSING_MARKERS` and pandas' default markers are ``NaN``.

    Raises
    ------
    DataError
        The file cannot be parsed as a table (named).
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, na_values=list(MISSING_MARKERS), keep_default_na=True)
    except (ValueError, OSError, ImportError) as exc:  # pandas' ParserError is a ValueError
        text = " ".join(str(exc).split())
        raise DataError(f"{path}: cannot be read as a table: {text}") from None

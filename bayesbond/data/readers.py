"""Readers for the file formats bond researchers have.

* a long bond panel (CSV or Parquet) -> :class:`~bayesbond.data.panel.BondPanel`;
* a factor file (``date`` column + one column per factor, decimals);
* FRED-style CSV (``DATE``/``observation_date`` column, rates in percent, ``.`` for missing);
* Ken French data-library CSV (percent per month, with or without the library's header lines);
* zero-coupon curves: Liu and Wu (2021) (``yyyymm`` + ``m1``..``m360``), Gurkaynak, Sack and
  Wright (2007) (``SVENY01``..``SVENY30``), and any CSV whose columns are maturities.

Library conventions: returns are decimals per month; yields are decimals per year, continuously
compounded; maturities are in years; dates are month-end timestamps in an index named ``date``.
Every error names the file and the column or row at fault.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bayesbond.data.coerce import MISSING_MARKERS, dated_frame, parse_dates, read_table
from bayesbond.data.panel import BondPanel
from bayesbond.errors import DataError

__all__ = ["read_factors", "read_fred", "read_french", "read_gsw", "read_liuwu", "read_panel",
           "read_yields_csv"]

_DATE_NAMES = ("date", "DATE", "Date", "observation_date", "yyyymm", "sasdate", "dates")

# FRED mnemonics of interest rates quoted in percent per year
_FRED_RATE = re.compile(
    r"^(TB\d+MS|DTB\d+|DTB\d+MS|TB\d+SMFFM|GS\d+M?|DGS\d+(MO)?|FEDFUNDS|DFF|EFFR|AAA|BAA|DAAA|DBAA|"
    r"CP\d+Mx?|DCP\d+M|T\d+Y\d*FF?M?|DFII\d+|FII\d+|TEDRATE|MORTGAGE\d+US|PRIME|DPRIME|"
    r"SOFR|IORB|IOER|DSWP\d+|BAMLC.*EY|BAMLH.*EY|BAMLC\d.*|BAMLH\d.*|cmt_\w+)$"
)


def _path(path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    return p


def _date_column(df: pd.DataFrame, path: Path, date: str | None) -> str:
    if date is not None:
        if date not in df.columns:
            raise DataError(f"{path}: no date column {date!r}; columns are {list(df.columns)[:12]}")
        return date
    for name in _DATE_NAMES:
        if name in df.columns:
            return name
    first = df.columns[0]
    if str(first).startswith("Unnamed") or str(first).strip() == "":
        return first
    raise DataError(
        f"{path}: no date column (looked for {', '.join(_DATE_NAMES)}); columns are "
        f"{list(df.columns)[:12]}"
    )


def _indexed(df: pd.DataFrame, path: Path, date: str | None, monthly: bool = True,
             date_format: str | None = None) -> pd.DataFrame:
    col = _date_column(df, path, date)
    return dated_frame(df, col, where=str(path), date_format=date_format,
                       monthly=monthly).sort_index()


# --------------------------------------------------------------------------- panels and factors
def read_panel(path, **colmap) -> BondPanel:
    """Read a long bond panel (CSV or Parquet: one row per bond and month).

    Parameters
    ----------
    path : str or Path
        ``.csv`` (any other suffix is read as CSV) or ``.parquet``.
    **colmap
        Passed to :meth:`BondPanel.from_frame`: ``date``, ``bond``, ``ret``, ``rating``,
        ``weight``, ``signals`` (column names; defaults ``date``, ``bond``, ``ret``, ``rating``,
        ``weight``) and ``unrated``, ``units``, ``check_units``, ``date_format``.

    Returns
    -------
    BondPanel
    """
    p = _path(path)
    df = read_table(p)
    try:
        return BondPanel.from_frame(df, **colmap)
    except DataError as exc:
        raise DataError(f"{p}: {exc}") from exc


def read_factors(
    path, date: str | None = None, percent: bool = False, date_format: str | None = None
) -> pd.DataFrame:
    """Read a factor file: a date column and one column per factor (decimals per month).

    Parameters
    ----------
    path : str or Path
        CSV or Parquet.
    date : str, optional
        Name of the date column (default: ``date`` or another usual name).
    percent : bool
        Divide values by 100 (for files in percent).
    date_format : str, optional
        ``strftime`` format of the dates (needed for ambiguous ``dd/mm/yyyy`` strings; see
        :func:`bayesbond.data.panel.parse_dates`).

    Returns
    -------
    pandas.DataFrame
        Month-end dates (index ``date``) x factors (columns named ``factor``).
    """
    p = _path(path)
    out = _indexed(read_table(p), p, date, date_format=date_format)
    if percent:
        out = out / 100.0
    out.columns = pd.Index([str(c) for c in out.columns], name="factor")
    return out


def read_fred(
    path, rates: str | Sequence[str] | None = None, date_format: str | None = None
) -> pd.DataFrame:
    """Read a FRED-style CSV (``DATE`` or ``observation_date`` column, ``.`` for missing).

    Parameters
    ----------
    path : str or Path
    rates : None, "all", "none" or sequence of str
        Columns quoted in percent per year, converted to decimals. ``None`` recognises FRED
        interest-rate mnemonics (``TB3MS``, ``DGS10``, ``FEDFUNDS``, ``AAA``, ``BAA``, ``GS10``,
        ...); other columns (e.g. ``S&P 500``) are kept as they are.
    date_format : str, optional
        ``strftime`` format of the dates (for ambiguous day/month strings).

    Returns
    -------
    pandas.DataFrame
        Index ``date``: month-end dates for monthly files; the days themselves for daily files.
        ``attrs["converted"]`` lists the columns divided by 100.
    """
    p = _path(path)
    raw = read_table(p)
    col = _date_column(raw, p, None)
    parsed = parse_dates(raw[col], where=f"{p}, column {col!r}", date_format=date_format)
    monthly = not parsed.dt.to_period("M").duplicated().any()
    out = _indexed(raw, p, col, monthly=monthly, date_format=date_format)
    if rates is None:
        conv = [c for c in out.columns if _FRED_RATE.match(str(c))]
    elif rates == "all":
        conv = list(out.columns)
    elif rates == "none":
        conv = []
    else:
        conv = list(rates)
        missing = [c for c in conv if c not in out.columns]
        if missing:
            raise DataError(f"{p}: no column(s) {missing}")
    out[conv] = out[conv] / 100.0
    out.attrs["converted"] = conv
    return out


def read_french(path) -> pd.DataFrame:
    """Read a Ken French data-library CSV (monthly factors in percent) into decimals.

    Accepts the library's own files (description lines, a header starting with a comma,
    ``yyyymm`` dates, then an annual section, which is left out) and cleaned files with a date
    column. ``-99.99`` and ``-999`` (the library's missing codes) become ``NaN``.

    Returns
    -------
    pandas.DataFrame
        Month-end dates x factors (``Mkt-RF``, ``SMB``, ``HML``, ..., ``RF``), decimals per month.
    """
    p = _path(path)
    text = p.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) > 1 and any(re.search(r"[A-Za-z]", c) for c in cells[1:]):
            nxt = lines[i + 1].split(",")[0].strip() if i + 1 < len(lines) else ""
            if re.fullmatch(r"\d{6}|\d{4}-\d{2}(-\d{2})?", nxt):
                start = i
                break
    if start is None:
        raise DataError(f"{p}: no header line followed by monthly (yyyymm) rows")
    body = [lines[start]]
    for line in lines[start + 1 :]:
        first = line.split(",")[0].strip()
        if not re.fullmatch(r"\d{6}|\d{4}-\d{2}(-\d{2})?", first):
            break  # blank line or the annual section
        body.append(line)
    df = pd.read_csv(io.StringIO("\n".join(body)), dtype={0: str})
    df.columns = ["date", *[str(c).strip() for c in df.columns[1:]]]
    out = _indexed(df, p, "date")
    out = out.mask(out.isin([-99.99, -999.0]))
    out.columns = pd.Index(list(out.columns), name="factor")
    return out / 100.0


# --------------------------------------------------------------------------- zero curves
def _maturity_of(name: str, unit: str | None) -> float | None:
    """Maturity in years from a column name (``m3``, ``3m``, ``y10``, ``10y``, ``SVENY05``,
    ``cmt_3m``, ``r12``, ``0.5``)."""
    s = str(name).strip()
    m = re.fullmatch(r"SVENY(\d+)", s)
    if m:
        return float(m.group(1))
    m = re.fullmatch(r"(?:[A-Za-z]+_)?(\d+(?:\.\d+)?)\s*([mMyY])", s)  # 3m, 10y, cmt_3m
    if m:
        v = float(m.group(1))
        return v / 12.0 if m.group(2) in "mM" else v
    m = re.fullmatch(r"([mMyYrR])(\d+(?:\.\d+)?)", s)  # m3, y10, r12
    if m:
        v = float(m.group(2))
        letter = m.group(1).lower()
        if letter == "m" or (letter == "r" and unit != "years"):
            return v / 12.0 if unit != "years" else v
        return v / 12.0 if unit == "months" else v
    m = re.fullmatch(r"\d+(?:\.\d+)?", s)
    if m:
        v = float(s)
        return v / 12.0 if unit == "months" else v
    return None


def _curve(out: pd.DataFrame, path: Path, unit: str | None, percent: bool) -> pd.DataFrame:
    mats = []
    for c in out.columns:
        tau = _maturity_of(c, unit)
        if tau is None or tau <= 0:
            raise DataError(f"{path}: column {c!r} is not a maturity (e.g. m3, 10y, SVENY05, 0.5)")
        mats.append(tau)
    if len(set(mats)) != len(mats):
        raise DataError(f"{path}: two columns give the same maturity")
    out = out.copy()
    out.columns = pd.Index(np.asarray(mats, dtype=float), name="maturity")
    out = out.sort_index(axis=1)
    if percent:
        out = out / 100.0
    return out


def read_yields_csv(path, date: str = "date", unit: str | None = None, percent: bool = True,
                    columns: Sequence[str] | None = None,
                    date_format: str | None = None) -> pd.DataFrame:
    """Read a CSV of zero-coupon yields whose columns are maturities.

    Parameters
    ----------
    path : str or Path
    date : str
        Name of the date column (when the default ``date`` is absent, a usual date name or an
        unnamed first column is used).
    unit : {None, "years", "months"}
        Unit of bare numbers in column names (``None``: letters decide, ``m3`` months and ``y10``
        years; bare numbers are years; ``r12`` is months).
    percent : bool
        Yields in percent (divided by 100); ``False`` for decimals.
    columns : sequence of str, optional
        Only these maturity columns (others, e.g. fitted parameters, are ignored).
    date_format : str, optional
        ``strftime`` format of the dates (for ambiguous day/month strings).

    Returns
    -------
    pandas.DataFrame
        Month-end dates (index ``date``) x maturities in years (float columns named
        ``maturity``, ascending), yields as decimals per year.
    """
    p = _path(path)
    raw = read_table(p)
    date = _date_column(raw, p, None if (date == "date" and date not in raw.columns) else date)
    if columns is not None:
        missing = [c for c in columns if c not in raw.columns]
        if missing:
            raise DataError(f"{p}: no column(s) {missing}")
        raw = raw[[date, *columns]]
    return _curve(_indexed(raw, p, date, date_format=date_format), p, unit, percent)


def read_liuwu(path) -> pd.DataFrame:
    """Read the Liu and Wu (2021) zero-coupon Treasury curve (``yyyymm``, ``m1``..``m360``, %).

    Returns
    -------
    pandas.DataFrame
        Month-end dates x maturities 1/12 .. 30 years, continuously compounded decimals.

    Notes
    -----
    Liu, Y. and Wu, J. C. (2021), "Reconstructing the yield curve", Journal of Financial Economics
    142(3), 1395-1425. Yields are continuously compounded, in percent.
    """
    p = _path(path)
    raw = read_table(p)
    date = "yyyymm" if "yyyymm" in raw.columns else _date_column(raw, p, None)
    cols = [c for c in raw.columns if re.fullmatch(r"m\d+", str(c))]
    if not cols:
        raise DataError(f"{p}: no maturity columns m1 .. m360")
    return _curve(_indexed(raw[[date, *cols]], p, date), p, "months", True)


def read_gsw(path) -> pd.DataFrame:
    """Read the Gurkaynak-Sack-Wright curve (``SVENY01``..``SVENY30``, % continuously compounded).

    Accepts the Federal Reserve's ``feds200628.csv`` (description lines first; daily rows are
    sampled at the last business day of each month) and month-end extracts with a ``date`` column.
    Other columns (``BETA0``, ``SVENPY``, ``SVENF``...) are ignored.

    Returns
    -------
    pandas.DataFrame
        Month-end dates x maturities 1..30 years, continuously compounded decimals.

    Notes
    -----
    Gurkaynak, R. S., Sack, B. and Wright, J. H. (2007), "The U.S. Treasury yield curve: 1961 to
    the present", Journal of Monetary Economics 54(8), 2291-2304.
    """
    p = _path(path)
    text = p.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()

    def _is_header(i: int) -> bool:
        if "SVENY" not in lines[i] or i + 1 >= len(lines):
            return False
        return re.match(r"\s*\d{4}-?\d{2}", lines[i + 1].split(",")[0]) is not None

    start = next((i for i in range(len(lines)) if _is_header(i)), None)
    if start is None:
        raise DataError(f"{p}: no header line with SVENY columns followed by dated rows")
    raw = pd.read_csv(io.StringIO("\n".join(lines[start:])), na_values=list(MISSING_MARKERS))
    date = _date_column(raw, p, None)
    cols = [c for c in raw.columns if re.fullmatch(r"SVENY\d+", str(c))]
    parsed = parse_dates(raw[date], where=f"{p}, column {date!r}")
    raw = raw.assign(**{date: parsed.to_numpy()}).sort_values(date)
    month = raw[date].dt.to_period("M")
    raw = raw[~month.duplicated(keep="last")]  # the last day of each month
    return _curve(_indexed(raw[[date, *cols]], p, date), p, None, True)

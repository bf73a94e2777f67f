"""Credit ratings -> rating buckets ``IG+``, ``IG-``, ``HY``.

The three buckets follow Dick-Nielsen, Feldhutter, Pedersen and Stolborg (corporate-bond factors):
``IG+`` is AAA..A- (Moody's Aaa..A3), ``IG-`` is BBB+..BBB- (Baa1..Baa3) and ``HY`` is BB+ (Ba1)
and below, default included.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Real

import numpy as np
import pandas as pd

from bayesbond.errors import DataError

__all__ = ["BUCKETS", "RATING_SCALE", "rating_bucket", "rating_buckets", "rating_number"]

#: the three buckets, from safest to riskiest
BUCKETS: tuple[str, ...] = ("IG+", "IG-", "HY")

#: S&P / Fitch notches in order; the numeric scale 1..22 is the position in this tuple plus one
RATING_SCALE: tuple[str, ...] = (
    "AAA", "AA+", "AA", "AA-", "A+", "A", "A-",
    "BBB+", "BBB", "BBB-",
    "BB+", "BB", "BB-", "B+", "B", "B-", "CCC+", "CCC", "CCC-", "CC", "C", "D",
)  # fmt: skip

_MOODYS: tuple[str, ...] = (
    "Aaa", "Aa1", "Aa2", "Aa3", "A1", "A2", "A3",
    "Baa1", "Baa2", "Baa3",
    "Ba1", "Ba2", "Ba3", "B1", "B2", "B3", "Caa1", "Caa2", "Caa3", "Ca", "C",
)  # fmt: skip


def _build_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for i, r in enumerate(RATING_SCALE, start=1):
        table[r] = i
    # Moody's: Aaa..Caa3 map notch for notch onto AAA..CCC-; Ca -> CC (20), C -> C (21).
    for i, r in enumerate(_MOODYS, start=1):
        table.setdefault(r, i)
        table.setdefault(r.upper(), i)  # "AA1", "BAA2": Moody's written in capitals
    # selective / restricted default (S&P "SD", Fitch "RD") are default states
    table["SD"] = 22
    table["RD"] = 22
    return table


_TABLE = _build_table()


def _bucket_of_number(n: int) -> str:
    if n <= 7:
        return "IG+"
    if n <= 10:
        return "IG-"
    return "HY"


def rating_number(x) -> int:
    """Position of a rating on the 1 (AAA) .. 22 (D) scale.

    Parameters
    ----------
    x : str or int
        S&P/Fitch (``"AAA"`` .. ``"D"``, with ``+``/``-``), Moody's (``"Aaa"`` .. ``"C"``, with
        ``1``/``2``/``3``) or a number 1..22 (also as a string such as ``"8"``).

    Returns
    -------
    int

    Raises
    ------
    DataError
        When ``x`` is not a rating.
    """
    n = _lookup(x)
    if n is None:
        raise DataError(f"unknown rating {x!r}: expected S&P/Fitch AAA..D, Moody's Aaa..C or 1..22")
    return n


def _lookup(x) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, Real):
        if not np.isfinite(x) or float(x) != int(x):
            return None
        n = int(x)
        return n if 1 <= n <= 22 else None
    if isinstance(x, str):
        s = x.strip()
        if s in _TABLE:
            return _TABLE[s]
        if s.upper() in _TABLE and not s.isdigit():
            return _TABLE[s.upper()]
        if s.isdigit():
            n = int(s)
            return n if 1 <= n <= 22 else None
    return None


def rating_bucket(x) -> str:
    """Rating bucket ``"IG+"``, ``"IG-"`` or ``"HY"`` of one rating.

    Parameters
    ----------
    x : str or int
        S&P/Fitch (``AAA`` .. ``D`` with ``+``/``-``; ``SD``/``RD`` count as default), Moody's
        (``Aaa`` .. ``C`` with ``1``/``2``/``3``) or numeric 1..22 (1 = AAA, 22 = D).

    Returns
    -------
    str
        ``"IG+"`` for AAA..A- (Aaa..A3, 1..7), ``"IG-"`` for BBB+..BBB- (Baa1..Baa3, 8..10),
        ``"HY"`` for BB+ (Ba1, 11) and below.

    Raises
    ------
    DataError
        For an unknown rating.

    Examples
    --------
    >>> rating_bucket("BBB+"), rating_bucket("Ba1"), rating_bucket(3)
    ('IG-', 'HY', 'IG+')
    """
    return _bucket_of_number(rating_number(x))


def rating_buckets(values: Iterable, *, missing_ok: bool = True, where: str = "") -> np.ndarray:
    """Vectorised :func:`rating_bucket`.

    Parameters
    ----------
    values : array-like
        Ratings; missing entries (``None``, ``NaN``, ``pd.NA``) stay missing when ``missing_ok``.
    missing_ok : bool
        Whether missing entries are allowed (they give ``None``).
    where : str
        Text naming the origin (e.g. ``"column 'rating'"``) for the error message.

    Returns
    -------
    numpy.ndarray of object
        Bucket labels (``None`` where missing).

    Raises
    ------
    DataError
        Listing every distinct unknown rating.
    """
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object)
    flat = arr.ravel()
    codes, uniques = pd.factorize(pd.Series(flat, dtype=object), use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)  # last slot: missing (code -1)
    unknown: list = []
    for i, v in enumerate(uniques):
        n = _lookup(v)
        mapped[i] = None if n is None else _bucket_of_number(n)
        if n is None:
            unknown.append(v)
    mapped[-1] = None
    if not missing_ok and (codes == -1).any():
        unknown.append(None)
    out = mapped[codes]
    if unknown:
        distinct = sorted({repr(u) for u in unknown})
        loc = f" in {where}" if where else ""
        raise DataError(
            f"unknown rating(s){loc}: {', '.join(distinct)}; expected S&P/Fitch AAA..D, "
            "Moody's Aaa..C or 1..22"
        )
    return out.reshape(arr.shape)

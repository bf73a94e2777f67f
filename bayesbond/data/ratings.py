"""Credit ratings -> rating buckets ``IG+``, ``IG-``, ``HY``.

The three buckets follow Dick-Nielsen, Feldhutter, Pedersen and Stolborg (corporate-bond factors):
``IG+`` is AAA..A- (Moody's Aaa..A3), ``IG-`` is BBB+..BBB- (Baa1..Baa3) and ``HY`` is BB+ (Ba1)
and below, default included.

Ratings as data vendors write them carry qualifiers that do not change the notch; they are
stripped before the look-up (:func:`clean_rating`): Moody's provisional ``(P)Baa3``, structured
finance ``A-(sf)``/``Asf``, Fitch expected ``AA-(EXP)``, unsolicited/unsupported ``Baa3u``, S&P
public-information ``BBBpi``, and watch or outlook marks (``BBB+ *-``, ``A *+``,
``A- (CW Negative)``, ``BBB /Watch Neg``, ``A+ RWN``). ``NR``, ``WR``, ``WD`` (not rated,
withdrawn) and blank are *unrated*: refused by default, missing with ``unrated="missing"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from numbers import Real

import numpy as np
import pandas as pd

from bayesbond.errors import DataError

__all__ = ["BUCKETS", "RATING_SCALE", "UNRATED", "clean_rating", "rating_bucket", "rating_buckets",
           "rating_number"]

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


#: labels meaning "no rating" (not rated, withdrawn, withdrawn/suspended), after cleaning
UNRATED: frozenset[str] = frozenset({"NR", "N.R.", "N/R", "WR", "WD", "NOT RATED", ""})

_PARENS = re.compile(r"\([^()]*\)")  # (P), (sf), (EXP), (CW Negative), ...
_WATCH = re.compile(
    r"(\s*/?\s*\*\s*[-+]?\s*[A-Za-z]*$)"  # *-, *+, * , *E (Bloomberg watch marks)
    r"|(\s*/\s*(Watch|WATCH|Wtch)\s*(Neg|Pos|Dev|NEG|POS|DEV)\w*$)"  # S&P "/Watch Neg"
    r"|(\s+(RWN|RWP|RWE|RWU)$)"  # Fitch rating watch
    r"|(\s+(Watch|WATCH)\s*(Neg|Pos|Dev|NEG|POS|DEV)\w*$)"
)
_TRAILING = re.compile(r"(?<=[0-9A-Z+\-])(sf|pi|u|p|e|q|t|r)$")  # Baa3u, Asf, BBBpi, AAp


def clean_rating(x) -> str | None:
    """A rating string without qualifiers, or ``None`` when it is not a string.

    Strips surrounding space, parenthesised qualifiers (``(P)Baa3``, ``A-(sf)``, ``AA-(EXP)``,
    ``A- (CW Negative)``), watch marks (``BBB+ *-``, ``*+``, ``/Watch Neg``, ``RWN``) and the
    lowercase suffixes ``sf``, ``pi``, ``u``, ``p``, ``e``, ``q``, ``t``, ``r`` after a notch
    (``Baa3u``, ``Asf``). An unrated label (``NR``, ``WR``, ``WD``) or a bare watch mark gives a
    string in :data:`UNRATED` (upper-cased); ``"*+"`` alone gives ``""``.
    """
    if not isinstance(x, str):
        return None
    s = _PARENS.sub("", x).strip()
    for _ in range(2):
        s = _WATCH.sub("", s).strip()
    s = _TRAILING.sub("", s).strip()
    return s.upper() if s.upper() in UNRATED else s


def _is_unrated(x) -> bool:
    return isinstance(x, str) and clean_rating(x) in UNRATED


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
        what = " (an unrated label: not rated, withdrawn or blank)" if _is_unrated(x) else ""
        raise DataError(
            f"unknown rating {x!r}{what}: expected S&P/Fitch AAA..D, Moody's Aaa..C or 1..22"
        )
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
        for s in dict.fromkeys((x.strip(), clean_rating(x))):  # as written, then cleaned
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
        (``Aaa`` .. ``C`` with ``1``/``2``/``3``) or numeric 1..22 (1 = AAA, 22 = D). Qualifiers
        and watch marks are ignored (:func:`clean_rating`).

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


def rating_buckets(
    values: Iterable, *, missing_ok: bool = True, where: str = "", unrated: str = "error"
) -> np.ndarray:
    """Vectorised :func:`rating_bucket`.

    Parameters
    ----------
    values : array-like
        Ratings; missing entries (``None``, ``NaN``, ``pd.NA``) stay missing when ``missing_ok``.
    missing_ok : bool
        Whether missing entries are allowed (they give ``None``).
    where : str
        Text naming the origin (e.g. ``"column 'rating'"``) for the error message.
    unrated : {"error", "missing"}
        What unrated labels (``NR``, ``WR``, ``WD``, blank, a bare watch mark) do: refused with
        the list of them (``"error"``), or treated as missing (``"missing"``; needs
        ``missing_ok``).

    Returns
    -------
    numpy.ndarray of object
        Bucket labels (``None`` where missing or, with ``unrated="missing"``, unrated).

    Raises
    ------
    DataError
        Listing every distinct unknown rating, and every unrated label unless
        ``unrated="missing"``.
    """
    if unrated not in ("error", "missing"):
        raise DataError(f"unrated must be 'error' or 'missing', got {unrated!r}")
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object)
    flat = arr.ravel()
    codes, uniques = pd.factorize(pd.Series(flat, dtype=object), use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)  # last slot: missing (code -1)
    unknown: list = []
    unrated_seen: list = []
    for i, v in enumerate(uniques):
        n = _lookup(v)
        mapped[i] = None if n is None else _bucket_of_number(n)
        if n is None:
            (unrated_seen if _is_unrated(v) else unknown).append(v)
    mapped[-1] = None
    if not missing_ok and ((codes == -1).any() or unrated_seen):
        unknown.append(None)
    out = mapped[codes]
    loc = f" in {where}" if where else ""
    if unknown:
        distinct = sorted({repr(u) for u in unknown})
        also = (
            f" (and unrated label(s) {', '.join(sorted({repr(u) for u in unrated_seen}))})"
            if unrated_seen and unrated == "error"
            else ""
        )
        raise DataError(
            f"unknown rating(s){loc}: {', '.join(distinct)}{also}; expected S&P/Fitch AAA..D, "
            "Moody's Aaa..C or 1..22"
        )
    if unrated_seen and unrated == "error":
        distinct = sorted({repr(u) for u in unrated_seen})
        raise DataError(
            f"unrated label(s){loc}: {', '.join(distinct)} (not rated, withdrawn or blank); "
            "pass unrated='missing' to treat them as months without a rating"
        )
    return out.reshape(arr.shape)

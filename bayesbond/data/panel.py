"""The bond panel: monthly returns, ratings, weights and signals on a (date, bond) grid.

A long table (one row per bond and month) becomes labelled ``xarray`` arrays with dimensions
``date`` (month-end timestamps) and ``bond`` (the user's bond identifiers, e.g. CUSIPs). Unbalanced
panels are normal: months without a return are ``NaN``, counted in :attr:`BondPanel.n_obs` and
never filled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.data.coerce import (
    UNITS,
    as_float,
    check_return_units,
    listing,
    parse_dates,
    to_decimal,
    to_month_end,
)
from bayesbond.data.ratings import BUCKETS, rating_buckets
from bayesbond.errors import DataError

__all__ = [
    "UNITS",
    "BondPanel",
    "check_return_units",
    "parse_dates",
    "to_decimal",
    "to_month_end",
]  # the coercion functions live in bayesbond.data.coerce; re-exported here



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

    def __init__(self, returns: xr.DataArray, ratings: xr.DataArray | None = None,
                 weights: xr.DataArray | None = None, signals: xr.Dataset | None = None,
                 present: xr.DataArray | None = None, unrated: str = "error"):
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
            raise DataError(f"non-finite returns at (bond, date): {listing(cells)}")
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
                raise DataError(f"negative or infinite weights at (bond, date): {listing(cells)}")
        self._present = present if present is not None else self.returns.notnull()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(cls, df: pd.DataFrame, date: str = "date", bond: str = "bond", ret: str = "ret",
                   rating: str | None = "rating", weight: str | None = "weight",
                   signals: Sequence[str] | None = None, *, unrated: str = "error",
                   units: str = "decimal", check_units: bool = True,
                   date_format: str | None = None) -> BondPanel:
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
            Unrated labels (``NR``, ``WR``, ``WD``, blank, a bare watch mark): an error listing
            them, or months without a bucket (the raw label kept in :attr:`ratings`).
            Qualifiers and watch marks are stripped either way
            (:func:`bayesbond.data.ratings.clean_rating`).
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
            A missing column, an empty panel, bad dates (rows named), duplicated (bond, month)
            rows, non-finite, percent or gross returns, negative weights, unknown or (with
            ``unrated="error"``) unrated ratings; each listed.

        Notes
        -----
        Dates move to their month-end (``2020-01-15`` and ``2020-01-31`` are one month). Rows with
        a missing return still carry their rating, weight and signals (needed for sorts).
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
                f"missing column(s) {listing(repr(c) for c in missing)}; the table has "
                f"{listing(repr(c) for c in df.columns)}"
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
            raise DataError(f"missing bond identifiers in column {bond!r} at rows {listing(rows)}")
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
                f"{listing(f'({b}, {d})' for b, d in pairs)}"
            )

        date_index = pd.DatetimeIndex(d_uniques, name="date")
        bond_index = pd.Index(b_uniques, name="bond")
        coords = {"date": date_index, "bond": bond_index}

        def grid(values: np.ndarray, fill, dtype) -> np.ndarray:
            out = np.full((n_d, n_b), fill, dtype=dtype)
            out[d_codes, b_codes] = values
            return out

        r = to_decimal(as_float(df[ret], ret), units, f"column {ret!r}")
        inf = np.isinf(r)
        if inf.any():
            rows = np.flatnonzero(inf)
            cells = [f"row {i} ({df[bond].iloc[i]}, {dates[i].date()}): {r[i]}" for i in rows]
            raise DataError(f"non-finite returns in column {ret!r}: {listing(cells)}")
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
                rating_buckets(df[rating].astype(object).to_numpy(), where=f"column {rating!r}",
                               unrated=unrated)
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
                raise DataError(f"{exc}; at {listing(cells)}" if cells else str(exc)) from exc
            raw = np.asarray(
                df[rating].astype(object).where(df[rating].notna(), None), dtype=object
            )
            ratings = xr.DataArray(grid(raw, None, object), coords=coords, dims=("date", "bond"))
            ratings.name = "rating"

        weights = None
        if weight is not None:
            w = as_float(df[weight], weight)
            bad = (w < 0) | np.isinf(w)
            if bad.any():
                rows = np.flatnonzero(bad)
                cells = [f"row {i} ({df[bond].iloc[i]}, {dates[i].date()}): {w[i]}" for i in rows]
                raise DataError(
                    f"negative or infinite weights in column {weight!r}: {listing(cells)}"
                )
            weights = xr.DataArray(grid(w, np.nan, float), coords=coords, dims=("date", "bond"))
            weights.name = "weight"

        sig = {}
        for c in signal_cols:
            try:
                v = as_float(df[c], c)
            except DataError as exc:
                if signals is not None:
                    raise
                raise DataError(
                    f"{exc} (every column besides date, bond, ret, rating and weight is read as a "
                    "signal: pass signals=[...] to choose them)"
                ) from exc
            if np.isinf(v).any():
                rows = np.flatnonzero(np.isinf(v))
                raise DataError(f"non-finite values in signal column {c!r} at rows {listing(rows)}")
            sig[str(c)] = (("date", "bond"), grid(v, np.nan, float))
        signals_ds = xr.Dataset(sig, coords=coords)
        return cls(returns, ratings=ratings, weights=weights, signals=signals_ds, present=present,
                   unrated=unrated)

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
        parts = [f"{n_d} months ({self.dates[0].date()} .. {self.dates[-1].date()})",
                 f"{n_b} bonds", f"{int(self.observed.values.sum())} observed returns"]
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
                    f"bucket mapping names bonds not in the panel: {listing(unknown_bonds)}"
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
            raise DataError(f"bonds without any rating (give them in mapping=): {listing(missing)}")
        return out

    def to_frame(self) -> pd.DataFrame:
        """Long table, one row per bond and month present in the input (what `from_frame` reads).

        Columns: ``date``, ``bond``, ``ret``, then ``rating`` and ``weight`` when present, then
        the signals.
        """
        mask = self._present.values
        d_idx, b_idx = np.nonzero(mask)
        out = {"date": self.dates[d_idx], "bond": np.asarray(self.bonds)[b_idx],
               "ret": self.returns.values[d_idx, b_idx]}
        if self.ratings is not None:
            out["rating"] = self.ratings.values[d_idx, b_idx]
        if self.weights is not None:
            out["weight"] = self.weights.values[d_idx, b_idx]
        for name, var in self.signals.data_vars.items():
            out[str(name)] = var.values[d_idx, b_idx]
        return pd.DataFrame(out)

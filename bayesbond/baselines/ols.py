"""Time-series OLS of every bond's return on factor returns, fitted in one batch.

``r_it = alpha_i + beta_i' F_t + e_it`` for each bond ``i`` on the months it is observed. The
numerics live in :mod:`bayesbond.core.ols`; this module aligns labelled inputs and wraps the
arrays in :class:`OLSResult`, whose names (``alpha``, ``beta``, ``sigma``) line up with the
Bayesian factor model.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayesbond.core.ols import batched_ols, collinear_columns
from bayesbond.data.chunked import bond_blocks, is_chunked
from bayesbond.data.coerce import (
    as_factor_frame,
    as_wide_returns,
    check_return_units,
    listing,
    to_decimal,
)
from bayesbond.errors import DataError

__all__ = ["OLSResult", "ols"]


def _as_factors(factors) -> pd.DataFrame:
    fr = as_factor_frame(factors)
    if fr.shape[1] == 0:
        raise DataError("factors has no columns")
    names = [str(c) for c in fr.columns]
    if "alpha" in names:
        raise DataError("a factor may not be called 'alpha' (the intercept's name)")
    if len(set(names)) != len(names):
        raise DataError(f"duplicated factor names: {names}")
    try:
        values = fr.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError("factors must be numeric") from exc
    return pd.DataFrame(values, index=fr.index, columns=pd.Index(names, name="factor"))


@dataclass(frozen=True, eq=False)
class OLSResult:
    """Per-bond time-series OLS: ``r_it = alpha_i + beta_i' F_t + e_it``.

    Attributes
    ----------
    params : pandas.DataFrame
        Bonds x ``["alpha", *factors]``.
    bse : pandas.DataFrame
        Standard errors of the covariance in use (``cov_type``).
    resid : pandas.DataFrame
        Residual returns, dates x bonds, ``NaN`` where a bond is not observed.
    rsquared : pandas.Series
    nobs : pandas.Series
    sigma : pandas.Series
        Residual standard deviation ``sqrt(RSS / (n - p))``.
    factors : pandas.DataFrame
        The factor returns on the fitted months.
    cov_type : str
        ``"classical"`` or ``"HAC"`` (Newey-West, Bartlett kernel).
    hac_lags : int or None
    use_correction : bool
        Whether the HAC covariance carries the ``n / (n - p)`` factor.
    cov_array, cov_classical_array : numpy.ndarray
        (bonds, p, p) arrays behind :attr:`cov_params` and :attr:`cov_classical` (labelled
        ``xarray.DataArray`` views with dims ``(bond, coef, coef2)``).
    dropped : pandas.Series
        Bonds left out for having fewer than ``min_obs`` observed months -> their number of
        months (empty unless ``min_obs`` was given).
    """

    params: pd.DataFrame
    bse: pd.DataFrame
    resid: pd.DataFrame
    rsquared: pd.Series
    nobs: pd.Series
    sigma: pd.Series
    factors: pd.DataFrame
    cov_type: str
    hac_lags: int | None
    use_correction: bool
    cov_array: np.ndarray = field(repr=False)
    cov_classical_array: np.ndarray = field(repr=False)
    dropped: pd.Series = field(
        default_factory=lambda: pd.Series([], dtype=np.int64, index=pd.Index([], name="bond"))
    )

    def _cov_da(self, values: np.ndarray, name: str) -> xr.DataArray:
        coefs = list(self.params.columns)
        return xr.DataArray(values, dims=("bond", "coef", "coef2"),
                            coords={"bond": self.params.index, "coef": coefs, "coef2": coefs},
                            name=name)

    @property
    def cov_params(self) -> xr.DataArray:
        """Covariance in use (``cov_type``), dims ``(bond, coef, coef2)``."""
        return self._cov_da(self.cov_array, "cov_params")

    @property
    def cov_classical(self) -> xr.DataArray:
        """``s^2 (X'X)^{-1}`` (always available), dims ``(bond, coef, coef2)``."""
        return self._cov_da(self.cov_classical_array, "cov_classical")

    @property
    def factor_names(self) -> list[str]:
        """Names of the factors (the columns of ``params`` after ``alpha``)."""
        return list(self.params.columns[1:])

    @property
    def alpha(self) -> pd.Series:
        """Intercepts per bond."""
        return self.params["alpha"]

    @property
    def beta(self) -> pd.DataFrame:
        """Factor loadings, bonds x factors."""
        return self.params[self.factor_names]

    @property
    def df_resid(self) -> pd.Series:
        """Residual degrees of freedom ``n - p`` per bond."""
        return self.nobs - self.params.shape[1]

    @property
    def rsquared_adj(self) -> pd.Series:
        """Adjusted R^2, ``1 - (1 - R^2)(n - 1)/(n - p)``."""
        return 1 - (1 - self.rsquared) * (self.nobs - 1) / self.df_resid

    @property
    def bse_classical(self) -> pd.DataFrame:
        """Classical standard errors (whatever ``cov_type``)."""
        v = np.sqrt(np.diagonal(self.cov_classical_array, axis1=1, axis2=2))
        return pd.DataFrame(v, index=self.params.index, columns=self.params.columns)

    @property
    def tvalues(self) -> pd.DataFrame:
        """``params / bse``."""
        return self.params / self.bse

    @property
    def pvalues(self) -> pd.DataFrame:
        """Two-sided p-values: Student t with ``n - p`` degrees of freedom for the classical
        covariance, standard normal for HAC (as statsmodels' defaults)."""
        t = self.tvalues.to_numpy()
        if self.cov_type == "classical":
            p = 2 * stats.t.sf(np.abs(t), self.df_resid.to_numpy()[:, None])
        else:
            p = 2 * stats.norm.sf(np.abs(t))
        return pd.DataFrame(p, index=self.params.index, columns=self.params.columns)

    def expected_return(self, factor_means=None, factor_cov=None,
                        n_obs_factors: int | None = None) -> pd.DataFrame:
        """Expected return ``E[R_i] = alpha_i + beta_i' E[F]`` with delta-method standard errors.

        Parameters
        ----------
        factor_means : mapping, Series or array, optional
            ``E[F]`` per factor (decimals per month). By default the sample means of the factors on
            the fitted months.
        factor_cov : DataFrame, array or "sample", optional
            Uncertainty of ``E[F]``. With ``n_obs_factors``: the covariance of the factor returns,
            so that ``Var(E[F]) = factor_cov / n_obs_factors``; without: ``Var(E[F])`` itself.
            ``"sample"``: the sample covariance of the fitted months divided by their number.
            ``None`` treats ``E[F]`` as known.
        n_obs_factors : int, optional
            Number of months behind the factor means (see ``factor_cov``).

        Returns
        -------
        pandas.DataFrame
            Bonds x ``["mean", "se"]``.

        Notes
        -----
        With ``c = (1, E[F]')'`` and ``theta_i = (alpha_i, beta_i')'``,
        ``Var = c' Cov(theta_i) c + beta_i' Var(E[F]) beta_i``: the first-order (delta-method)
        variance, taking the estimation error of ``theta_i`` (which given the factors comes from
        the bond's residuals only) independent of that of ``E[F]``. ``Cov(theta_i)`` is
        :attr:`cov_params` (HAC when the fit used lags).
        """
        names = self.factor_names
        if factor_means is None:
            m = self.factors.mean().to_numpy()
        elif isinstance(factor_means, (Mapping, pd.Series)):
            fm = pd.Series(factor_means)
            missing = [f for f in names if f not in fm.index]
            if missing:
                raise DataError(f"factor_means lacks factor(s) {missing}")
            m = fm[names].to_numpy(dtype=float)
        else:
            m = np.asarray(factor_means, dtype=float).reshape(-1)
            if m.shape != (len(names),):
                raise DataError(f"factor_means needs {len(names)} values ({names}), got {m.size}")
        if not np.isfinite(m).all():
            raise DataError("factor_means holds non-finite values")
        c = np.concatenate([[1.0], m])
        V = self.cov_array
        mean = self.params.to_numpy() @ c
        var = np.einsum("i,nij,j->n", c, V, c)
        if factor_cov is not None:
            if isinstance(factor_cov, str):
                if factor_cov != "sample":
                    raise DataError(f"factor_cov must be a matrix or 'sample', got {factor_cov!r}")
                Sm = self.factors.cov().to_numpy() / len(self.factors)
            else:
                if isinstance(factor_cov, pd.DataFrame):
                    missing = [f for f in names if f not in factor_cov.index]
                    if missing:
                        raise DataError(f"factor_cov lacks factor(s) {missing}")
                    factor_cov = factor_cov.loc[names, names]
                Sm = np.asarray(factor_cov, dtype=float)
                if Sm.shape != (len(names), len(names)):
                    raise DataError(
                        f"factor_cov must be {len(names)} x {len(names)}, got {Sm.shape}"
                    )
                if n_obs_factors is not None:
                    if n_obs_factors < 1:
                        raise DataError(f"n_obs_factors must be positive, got {n_obs_factors}")
                    Sm = Sm / n_obs_factors
            B = self.beta.to_numpy()
            var = var + np.einsum("ni,ij,nj->n", B, Sm, B)
        return pd.DataFrame(
            {"mean": mean, "se": np.sqrt(var)}, index=self.params.index.rename("bond")
        )

    def summary(self) -> pd.DataFrame:
        """One row per bond: alpha, its t-statistic, the betas, R^2, sigma and nobs."""
        t = self.tvalues
        out = pd.DataFrame(index=self.params.index)
        out["alpha"] = self.params["alpha"]
        out["t(alpha)"] = t["alpha"]
        for f in self.factor_names:
            out[f"beta_{f}"] = self.params[f]
            out[f"t({f})"] = t[f]
        out["R2"] = self.rsquared
        out["sigma"] = self.sigma
        out["nobs"] = self.nobs
        return out

    def __repr__(self) -> str:
        lags = f", HAC({self.hac_lags})" if self.cov_type == "HAC" else ""
        drop = f"; {len(self.dropped)} dropped (min_obs)" if len(self.dropped) else ""
        return (
            f"OLSResult({len(self.params)} bonds on {self.factor_names}{lags}; "
            f"median R2 {self.rsquared.median():.3f}, median nobs {int(self.nobs.median())}{drop})"
        )


def ols(returns, factors: pd.DataFrame, hac_lags: int | None = None, use_correction: bool = True,
        hac_gaps: str = "compress", min_obs: int | None = None, units: str = "decimal",
        factor_units: str | None = None, check_units: bool = True) -> OLSResult:
    """Time-series OLS of every bond on the factors, all bonds at once.

    Parameters
    ----------
    returns : BondPanel, pandas.DataFrame, pandas.Series or xarray.DataArray
        Returns (decimals per month): a panel, a wide table (month-end dates x bonds; ``NaN`` where
        not observed), one series, or a DataArray with dims ``(date, bond)``. A Dask-backed
        DataArray chunked along ``bond`` only is fitted one chunk at a time (two passes over
        the chunks: observation counts, then fits), with the numbers of the in-memory fit; only
        one chunk and the outputs are in memory. Its unit check judges every bond as in memory
        and pools values over each chunk (not the whole panel).
    factors : pandas.DataFrame
        Factor returns, dates x factors. Dates move to month-end on both sides before alignment.
    hac_lags : int, optional
        Newey-West (Bartlett) lags for the standard errors; classical ones when omitted.
    use_correction : bool
        Scale the HAC covariance by ``n / (n - p)``.
    hac_gaps : {"compress", "zero"}
        Lags over missing months: consecutive observed months (``"compress"``, what a per-bond
        regression on its dropped-NaN data does) or calendar lags with zero scores in missing months
        (``"zero"``). See :func:`bayesbond.core.ols.batched_ols`.
    min_obs : int, optional
        Bonds with fewer observed months are left out, with a warning naming them, and listed in
        :attr:`OLSResult.dropped`. At least ``K + 2`` (the ``K + 1`` coefficients plus one). By
        default (``None``) a bond with too few months is an error.
    units : {"decimal", "percent"}
        Units of the returns; percent are divided by 100.
    factor_units : {"decimal", "percent"}, optional
        Units of the factors (default: ``units``).
    check_units : bool
        Refuse returns and factors whose magnitudes say they are not monthly decimals (percent,
        or gross returns ``1 + r``); see :func:`bayesbond.data.panel.check_return_units`.
        ``False`` for series that are not returns.

    Returns
    -------
    OLSResult

    Raises
    ------
    DataError
        A chunked DataArray with several chunks along ``date``,
        months with observed returns but no factor values (named), missing factor values on such
        months (named), a bond with too few observed months (named, unless ``min_obs`` drops it),
        factors collinear over the fitted months (named) or on one bond's months (the bond named),
        returns or factors that look like percent or gross returns (named).

    Notes
    -----
    Bond ``i`` is fitted on its own observed months ``O_i``:
    ``theta_i = argmin sum_{t in O_i} (r_it - alpha_i - beta_i' F_t)^2``, solved through a QR
    factorisation (never an explicit inverse); the classical covariance is ``s_i^2 (X_i'X_i)^{-1}``
    and the Newey-West one ``(X_i'X_i)^{-1} S_i (X_i'X_i)^{-1}`` (Newey and West, 1987), times
    ``n_i / (n_i - p)`` with ``use_correction``. Results equal statsmodels'
    ``OLS(r_i, X_i).fit(cov_type="HAC", cov_kwds={"maxlags": L, "use_correction": ...})`` bond by
    bond.

    Examples
    --------
    >>> import bayesbond as bb
    >>> demo = bb.datasets.load_demo()
    >>> res = bb.ols(demo.panel, demo.factors, hac_lags=6)
    >>> list(res.params.columns)
    ['alpha', 'CMKT', 'TERM']
    """
    chunked = is_chunked(returns)
    if chunked:
        blocks = bond_blocks(returns)
    else:
        Rv, dates, bonds = as_wide_returns(returns)
        Rv = to_decimal(Rv, units, "returns")
    F = _as_factors(factors)
    fu = units if factor_units is None else factor_units
    F = to_decimal(F, fu, "factors")
    p = F.shape[1] + 1
    if chunked:
        if check_units:
            check_return_units(F.to_numpy(), F.columns, "factors", units=fu, kind="factor")
        return _ols_chunked(blocks, returns, F, p, hac_lags, use_correction, hac_gaps, min_obs,
                            units, check_units)
    nobs_all = np.isfinite(Rv).sum(axis=0)
    keep, dropped = _select_bonds(nobs_all, bonds, p, min_obs)
    if keep is not None:
        Rv, bonds = Rv[:, keep], bonds[keep]
    if check_units:
        check_return_units(Rv, bonds, "returns", units=units, kind="bond")
        check_return_units(F.to_numpy(), F.columns, "factors", units=fu, kind="factor")
    has_obs = np.isfinite(Rv).any(axis=1)
    design = _design(F, dates, has_obs, hac_lags, hac_gaps)
    arrays = _fit_block(design, Rv, bonds, hac_lags, use_correction, hac_gaps)
    return _result(arrays, design, F, dates, bonds, hac_lags, use_correction, dropped)


@dataclass(frozen=True)
class _Design:
    """The common design: ``X`` on the fitted rows, the months behind them and their layout."""

    X: np.ndarray  # (rows, p), calendar placeholders (zeros) included with hac_gaps="zero"
    Fv: np.ndarray  # factor values on the months with returns
    used: pd.DatetimeIndex  # months with at least one observed return
    has_obs: np.ndarray  # (T,) bool over all dates of the returns
    take: np.ndarray | None  # rows of X that are the months in ``used`` (calendar layout)


def _select_bonds(nobs_all: np.ndarray, bonds: pd.Index, p: int, min_obs):
    """The bonds to keep (``None``: all) and the ``dropped`` Series (``None`` without min_obs)."""
    if min_obs is None:
        few = np.flatnonzero(nobs_all <= p)
        if few.size:
            raise DataError(
                f"too few observed months for {p} coefficients (need at least {p + 1}): "
                f"{listing(f'{bonds[j]} ({nobs_all[j]})' for j in few)}; pass min_obs= to "
                "leave such bonds out"
            )
        return None, None
    if int(min_obs) != min_obs or min_obs < p + 1:
        raise DataError(
            f"min_obs must be an integer of at least {p + 1} (the {p} coefficients plus one), "
            f"got {min_obs!r}"
        )
    short = nobs_all < min_obs
    dropped = pd.Series(nobs_all[short], index=bonds[short], name="nobs", dtype=np.int64)
    if short.all():
        raise DataError(
            f"every bond has fewer than min_obs={min_obs} observed months (most: "
            f"{int(nobs_all.max())})"
        )
    if short.any():
        warnings.warn(
            f"ols: left out {int(short.sum())} bond(s) with fewer than min_obs={min_obs} "
            f"observed months: {listing(f'{b} ({n})' for b, n in dropped.items())}",
            UserWarning,
            stacklevel=3,
        )
        return ~short, dropped
    return None, dropped


def _design(F: pd.DataFrame, dates: pd.DatetimeIndex, has_obs: np.ndarray, hac_lags,
            hac_gaps: str) -> _Design:
    """Align the factors on the months with observed returns and build ``[1, F]``."""
    if not has_obs.any():
        raise DataError("no observed return at all")
    used = dates if has_obs.all() else dates[has_obs]
    fpos = F.index.get_indexer(used)
    if (fpos < 0).any():
        raise DataError(
            "factors have no row for month(s) with observed returns: "
            f"{listing(used[fpos < 0].date)}"
        )
    Fv = F.to_numpy()[fpos]
    bad = ~np.isfinite(Fv)
    if bad.any():
        cells = [
            f"{F.columns[j]} on {used[i].date()}" for i, j in zip(*np.nonzero(bad), strict=True)
        ]
        raise DataError(f"missing or non-finite factor values: {listing(cells)}")
    X = np.column_stack([np.ones(len(used)), Fv])
    dep = collinear_columns(X)
    if dep.size:
        names = ["alpha (the constant)" if j == 0 else str(F.columns[j - 1]) for j in dep]
        raise DataError(
            f"the factors are collinear over the {len(used)} fitted months "
            f"({used[0].date()} .. {used[-1].date()}): {', '.join(names)} are an exact linear "
            "combination of one another (a constant factor is collinear with alpha)"
        )
    take = None
    if hac_gaps == "zero" and hac_lags is not None:
        # calendar lags: every month between the first and last observation keeps its place
        # (months without any observed return are placeholders with no observation and no weight)
        rows = pd.date_range(used[0], used[-1], freq="ME", name="date").as_unit("ns")
        take = rows.get_indexer(used)
        Xc = np.zeros((len(rows), X.shape[1]))
        Xc[take] = X
        X = Xc
    return _Design(X=X, Fv=Fv, used=used, has_obs=has_obs, take=take)


def _fit_block(design: _Design, Rv: np.ndarray, bonds: pd.Index, hac_lags, use_correction,
               hac_gaps):
    """Fit the bonds (columns) of ``Rv`` (all dates x bonds) on the design.

    Returns ``(params, cov, cov_classical, resid, nobs, rss)`` with ``resid`` on all dates
    (``NaN`` where a bond is not observed) and ``cov`` the covariance in use.
    """
    all_rows = bool(design.has_obs.all())
    Ru = Rv if all_rows else Rv[design.has_obs]
    if design.take is not None:
        Yc = np.full((design.X.shape[0], Ru.shape[1]), np.nan)
        Yc[design.take] = Ru
        Ru = Yc
    fit = batched_ols(design.X, Ru, hac_lags=hac_lags, use_correction=use_correction,
                      hac_gaps=hac_gaps, names=bonds)
    cov = fit.cov_classical if hac_lags is None else fit.cov_hac
    fitted_resid = fit.resid if design.take is None else fit.resid[design.take]
    if all_rows:
        resid = fitted_resid
    else:
        resid = np.full(Rv.shape, np.nan)
        resid[design.has_obs] = fitted_resid
    return fit.params, cov, fit.cov_classical, resid, fit.nobs, fit.rss, fit.tss


def _result(arrays, design: _Design, F: pd.DataFrame, dates: pd.DatetimeIndex, bonds: pd.Index,
            hac_lags, use_correction, dropped) -> OLSResult:
    params_a, cov, cov_classical, resid_a, nobs, rss, tss = arrays
    coefs = pd.Index(["alpha", *F.columns], name="coef")
    params = pd.DataFrame(params_a, index=bonds, columns=coefs)
    bse = pd.DataFrame(np.sqrt(np.diagonal(cov, axis1=1, axis2=2)), index=bonds, columns=coefs)
    resid = pd.DataFrame(resid_a, index=dates, columns=bonds, copy=False)
    df = nobs - params_a.shape[1]
    return OLSResult(params=params, bse=bse, resid=resid,
                     rsquared=pd.Series(1.0 - rss / tss, index=bonds, name="rsquared"),
                     nobs=pd.Series(nobs, index=bonds, name="nobs"),
                     sigma=pd.Series(np.sqrt(rss / df), index=bonds, name="sigma"),
                     factors=pd.DataFrame(design.Fv, index=design.used, columns=F.columns),
                     cov_type="classical" if hac_lags is None else "HAC",
                     hac_lags=None if hac_lags is None else int(hac_lags),
                     use_correction=bool(use_correction), cov_array=cov,
                     cov_classical_array=cov_classical,
                     **({} if dropped is None else {"dropped": dropped}))


def _ols_chunked(blocks, returns, F, p, hac_lags, use_correction, hac_gaps, min_obs, units,
                 check_units) -> OLSResult:
    """:func:`ols` on a Dask-backed DataArray chunked by bond, one chunk in memory at a time.

    Two passes over the chunks: the first counts each bond's observed months and the months
    observed by any (kept) bond, which fix the common design as in memory; the second fits each
    chunk with the same kernel on the same design. Bonds are independent given the design, so the
    numbers are those of the in-memory fit. The unit check judges every bond as in memory; its
    pooled test runs over each chunk's values.
    """
    bonds = pd.Index(returns.get_index("bond"), name="bond")
    if bonds.has_duplicates:
        raise DataError(f"duplicated bonds in the returns: "
                        f"{listing(bonds[bonds.duplicated()].unique())}")
    dates = None
    nobs_parts, has_obs = [], None
    for da in blocks:  # pass 1: observation counts
        Rv, d, b = as_wide_returns(da)
        dates = d if dates is None else dates
        ok = np.isfinite(Rv)
        n = ok.sum(axis=0)
        nobs_parts.append(n)
        k = slice(None) if min_obs is None else n >= min_obs
        obs = ok[:, k].any(axis=1)
        has_obs = obs if has_obs is None else has_obs | obs
        if check_units:
            check_return_units(to_decimal(Rv[:, k], units, "returns"), b[k], "returns",
                               units=units, kind="bond")
        del Rv, ok
    nobs_all = np.concatenate(nobs_parts)
    keep, dropped = _select_bonds(nobs_all, bonds, p, min_obs)
    design = _design(F, dates, has_obs, hac_lags, hac_gaps)
    kept = bonds if keep is None else bonds[keep]
    N, q = len(kept), design.X.shape[1]
    params = np.empty((N, q))
    cov = np.empty((N, q, q))
    cov_classical = np.empty((N, q, q))
    resid = np.empty((len(dates), N), order="F")
    nobs, rss, tss = np.empty(N, np.int64), np.empty(N), np.empty(N)
    at = 0
    for da, k in zip(blocks, _split(keep, blocks), strict=True):  # pass 2: fits
        if k is not None and not k.any():
            continue
        Rv, _, b = as_wide_returns(da)
        Rv = to_decimal(Rv, units, "returns")
        if k is not None:
            Rv, b = Rv[:, k], b[k]
        out = _fit_block(design, Rv, b, hac_lags, use_correction, hac_gaps)
        sl = slice(at, at + Rv.shape[1])
        for dst, src in zip((params, cov, cov_classical), out[:3], strict=True):
            dst[sl] = src
        resid[:, sl] = out[3]
        nobs[sl], rss[sl], tss[sl] = out[4:]
        at = sl.stop
        del Rv, out
    return _result((params, cov, cov_classical, resid, nobs, rss, tss), design, F, dates,
                   kept, hac_lags, use_correction, dropped)


def _split(keep, blocks):
    """``keep`` cut at the block boundaries (``None`` for every block when ``keep`` is None)."""
    if keep is None:
        return [None] * len(blocks)
    edges = np.cumsum([0, *(b.sizes["bond"] for b in blocks)])
    return [keep[a:z] for a, z in zip(edges[:-1], edges[1:], strict=True)]

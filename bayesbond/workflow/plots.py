"""Figures of fits: betas by rating bucket against OLS, expected-return bands, OU fit, yield curves.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot`` (no global
state, no display needed: works headless and in notebooks alike); :func:`save_png` writes one to a
PNG atomically. Inputs are plain labelled arrays and tables, so the same functions serve the demo,
the ``report`` command and user scripts; the ``*_from_fit`` helpers extract them from fits.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["BUCKET_COLORS", "beta_intervals", "plot_betas_by_bucket", "plot_expected_returns",
           "plot_ou_fit", "plot_pooled_coefficients", "plot_term_premium", "plot_term_premium_band",
           "plot_yield_curve_fit",
           "save_png"]

BUCKET_COLORS = {"IG+": "#1f77b4", "IG-": "#2ca02c", "HY": "#d62728"}
_OTHER = "#7f7f7f"
_BUCKET_ORDER = ("IG+", "IG-", "HY")
_MAX_NAMED = 60  # bonds named on the x-axis of the caterpillar plots


def save_png(fig: Figure, path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` as PNG via a temporary sibling renamed into place."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp.png"
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def _bucket_rank(b) -> int:
    return _BUCKET_ORDER.index(b) if b in _BUCKET_ORDER else len(_BUCKET_ORDER)


def beta_intervals(idata: xr.DataTree, prob: float = 0.94) -> pd.DataFrame:
    """Posterior mean and central ``prob`` interval of every bond's beta, with the bond's bucket.

    Returns
    -------
    pandas.DataFrame
        Columns ``bond``, ``factor``, ``bucket``, ``mean``, ``lower``, ``upper``.
    """
    beta = idata["posterior"]["beta"]
    if "bond" not in beta.dims:
        raise ValueError("the fit has no bond-level betas (pooled model)")
    q = (1 - prob) / 2
    flat = beta.stack(sample=("chain", "draw")).transpose("bond", "factor", "sample").values
    mean = flat.mean(-1)
    lo, hi = np.quantile(flat, [q, 1 - q], axis=-1)
    bonds = beta["bond"].values
    factors = [str(f) for f in beta["factor"].values]
    groups = _bond_groups(idata, bonds)
    rows = [
        (str(b), f, groups[i], mean[i, k], lo[i, k], hi[i, k])
        for i, b in enumerate(bonds) for k, f in enumerate(factors)
    ]
    return pd.DataFrame(rows, columns=["bond", "factor", "bucket", "mean", "lower", "upper"])


def _bond_groups(idata, bonds) -> list:
    if "constant_data" in idata.children and "group" in idata["constant_data"].data_vars:
        g = idata["constant_data"]["group"]
        return [str(v) for v in g.sel(bond=bonds).values]
    return ["all"] * len(bonds)


def _caterpillar(ax, table: pd.DataFrame, ref=None, ref_label="OLS", group_means=None,
                 ylabel="", title=""):
    """Intervals sorted by bucket then by mean, one colour per bucket, optional reference points."""
    t = table.assign(_rank=table["bucket"].map(_bucket_rank)).sort_values(["_rank", "mean"])
    x = np.arange(len(t))
    colors = [BUCKET_COLORS.get(b, _OTHER) for b in t["bucket"]]
    ax.vlines(x, t["lower"], t["upper"], colors=colors, alpha=0.45, lw=1.2)
    ax.scatter(x, t["mean"], c=colors, s=6, zorder=3)
    if ref is not None:
        r = ref.reindex(t.index)
        ax.scatter(x, r, marker="x", c="k", s=10, lw=0.7, zorder=4, label=ref_label)
    start = 0
    for _, part in t.groupby("_rank", sort=True):
        name = part["bucket"].iloc[0]
        stop = start + len(part)
        ax.axvspan(start - 0.5, stop - 0.5, color=BUCKET_COLORS.get(name, _OTHER), alpha=0.05)
        ax.text((start + stop) / 2, 1.0, f"{name} ({len(part)})",
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=9,
                color=BUCKET_COLORS.get(name, _OTHER))
        if group_means is not None and name in group_means:
            gm = group_means[name]
            ax.hlines(gm[0], start - 0.5, stop - 0.5, colors="k", lw=1.5, zorder=5)
            if len(gm) == 3:
                ax.fill_between([start - 0.5, stop - 0.5], gm[1], gm[2], color="k", alpha=0.12,
                                zorder=2)
        if start:
            ax.axvline(start - 0.5, color="0.6", lw=0.6)
        start = stop
    ax.set_xlim(-1, len(t))
    if len(t) <= _MAX_NAMED:
        ax.set_xticks(x, [str(b) for b in t.index], rotation=90, fontsize=8 if len(t) <= 30 else 6)
        ax.set_xlabel("bond (sorted by rating bucket and posterior mean)")
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(t)} bonds, sorted by rating bucket and posterior mean (too many to "
                      "name; see the table)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, pad=16, fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def plot_betas_by_bucket(idata: xr.DataTree, ols=None, prob: float = 0.94,
                         factors: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Bond betas per factor: posterior intervals by rating bucket next to the OLS estimates.

    Parameters
    ----------
    idata : xarray.DataTree
        A :class:`~bayesbond.FactorModel` fit (unpooled or hierarchical) with ``beta(bond, factor)``
        and the bond groups in ``constant_data``.
    ols : OLSResult or pandas.DataFrame, optional
        OLS estimates (``.params``: one column per factor, rows = bonds), drawn as black crosses.
    prob : float
        Probability of the central posterior intervals (vertical lines; dots are posterior means).
    factors : sequence of str, optional
        Factors to draw (default all).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per factor; for hierarchical fits the bucket means ``mu_beta`` (line) and their
        interval (grey band) are drawn across each bucket.
    """
    table = beta_intervals(idata, prob)
    names = list(factors) if factors is not None else list(dict.fromkeys(table["factor"]))
    params = getattr(ols, "params", ols)
    post = idata["posterior"]
    fig = Figure(figsize=(10, 3.4 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    q = (1 - prob) / 2
    for ax, f in zip(axes, names, strict=True):
        t = table[table["factor"] == f].set_index("bond")
        ref = None
        if params is not None and f in params.columns:
            ref = params[f].reindex(t.index.astype(params.index.dtype, copy=False))
            ref.index = t.index
        gm = None
        if "mu_beta" in post.data_vars and "rating_bucket" in post["mu_beta"].dims:
            mb = post["mu_beta"].sel(factor=f).stack(s=("chain", "draw"))
            gm = {str(g): (float(mb.sel(rating_bucket=g).mean()),
                           *np.quantile(mb.sel(rating_bucket=g).values, [q, 1 - q]))
                  for g in mb["rating_bucket"].values}
        _caterpillar(ax, t, ref=ref, group_means=gm, ylabel=f"beta on {f}",
                     title=f"{f}: posterior {prob:.0%} intervals (dots: means)"
                           + (", OLS estimates (x)" if ref is not None else "")
                           + (", bucket means (black line, grey band)" if gm else ""))
        if ref is not None:
            ax.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_expected_returns(table: pd.DataFrame, buckets=None, ols: pd.Series | None = None,
                          annualise: int = 12, title: str | None = None,
                          factor_uncertainty: bool | None = None) -> Figure:
    """Expected returns per bond with their uncertainty bands, by rating bucket.

    Parameters
    ----------
    table : pandas.DataFrame
        Index: bonds; columns ``mean``, ``lower``, ``upper`` (decimals per month), as returned by
        :func:`bayesbond.expected_returns`; a ``bucket`` (or ``rating_bucket`` or ``group``) column
        is used when present.
    buckets : mapping or Series bond -> bucket, optional
        Buckets when ``table`` has none.
    ols : pandas.Series, optional
        OLS point estimates per bond (crosses).
    annualise : int
        Multiply by this (12: percent per year); 1 keeps monthly.
    factor_uncertainty : bool, optional
        Whether the bands include the uncertainty of ``E[F]`` (default: ``table.attrs``, as set
        by :func:`bayesbond.expected_returns`); stated in the title, with the months ``E[F]``
        is averaged over (``ef_start``, ``ef_end``, ``ef_months`` columns).

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = table.copy()
    if factor_uncertainty is None:
        factor_uncertainty = table.attrs.get("factor_uncertainty")
    for col in ("mean", "lower", "upper"):
        if col not in t.columns:
            raise ValueError(f"expected-return table needs a {col!r} column; has {list(t.columns)}")
    if "bucket" not in t.columns:
        if "rating_bucket" in t.columns or "group" in t.columns:
            t["bucket"] = t["rating_bucket" if "rating_bucket" in t.columns else "group"]
        elif buckets is not None:
            t["bucket"] = pd.Series(buckets).reindex(t.index).astype(object).values
        else:
            t["bucket"] = "all"
    scale = 100.0 * annualise
    for col in ("mean", "lower", "upper"):
        t[col] = t[col].astype(float) * scale
    ref = None if ols is None else pd.Series(ols).reindex(t.index).astype(float) * scale
    unit = "% per year" if annualise == 12 else ("% per month" if annualise == 1 else
                                                  f"% per {annualise} months")
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.subplots()
    prob = table.attrs.get("prob")
    band = f"{prob:.0%} interval" if prob else "interval"
    if factor_uncertainty is None:
        unc = "E[F] uncertainty: not stated"
    else:
        unc = "with" if factor_uncertainty else "without"
        unc = f"{unc} the uncertainty of E[F]"
    ef = _ef_window_text(table)
    _caterpillar(ax, t, ref=ref, ylabel=f"expected return ({unit})",
                 title="Expected return E[R] = alpha + beta'E[F]: posterior mean and " + band
                       + (", OLS (x)" if ref is not None else "") + f"\n{unc}; {ef}")
    ax.axhline(0, color="k", lw=0.6)
    if ref is not None:
        ax.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _ef_window_text(table: pd.DataFrame) -> str:
    """'E[F] over 1997-01 to 2016-12 (240 months)' from the ef_* columns of an E[R] table."""
    if not {"ef_start", "ef_end", "ef_months"} <= set(table.columns):
        return ("E[F] given by the user" if table.attrs.get("ef_window") ==
                "user-given factor_means" else "E[F] window not stated")
    start, end = pd.to_datetime(table["ef_start"]), pd.to_datetime(table["ef_end"])
    if start.nunique() == 1 and end.nunique() == 1 and table["ef_months"].nunique() == 1:
        return (f"E[F] averaged over {start.iloc[0]:%Y-%m} to {end.iloc[0]:%Y-%m} "
                f"({int(table['ef_months'].iloc[0])} months)")
    return (f"E[F] averaged over each bond's own months ({start.min():%Y-%m} to "
            f"{end.max():%Y-%m}, {int(table['ef_months'].min())} to "
            f"{int(table['ef_months'].max())} months)")


def plot_pooled_coefficients(idata: xr.DataTree, ols=None, prob: float = 0.94,
                             pooled_ols: pd.DataFrame | None = None,
                             title: str | None = None) -> Figure:
    """Posterior of the common ``alpha`` and ``beta`` of a pooled factor fit, against OLS.

    Parameters
    ----------
    idata : xarray.DataTree
        A pooled :class:`~bayesbond.FactorModel` fit (``alpha`` (chain, draw), ``beta``
        (chain, draw, factor)).
    ols : OLSResult or pandas.DataFrame, optional
        Per-bond OLS estimates (``.params``: bonds x ``alpha``, factors): drawn as a rug, so the
        spread that pooling assumes away is visible.
    pooled_ols : pandas.DataFrame, optional
        OLS on all bonds' stacked months (rows ``alpha`` and the factors, columns ``estimate``,
        ``se``): a vertical line with a +- 1.96 se band.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per coefficient: histogram of the posterior draws, its central ``prob``
        interval (shaded), the per-bond OLS rug and the pooled OLS estimate. ``alpha`` in % per
        month.
    """
    post = idata["posterior"]
    if "bond" in post["beta"].dims:
        raise ValueError("plot_pooled_coefficients needs a pooled fit (beta without a bond "
                         "dimension); use plot_betas_by_bucket")
    factors = [str(f) for f in post["beta"]["factor"].values]
    names = ["alpha", *factors]
    params = getattr(ols, "params", ols)
    fig = Figure(figsize=(3.3 * len(names) + 0.5, 3.6), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    q = (1 - prob) / 2
    for ax, name in zip(axes, names, strict=True):
        draws = (post["alpha"] if name == "alpha" else post["beta"].sel(factor=name)).values
        mult = 100.0 if name == "alpha" else 1.0
        draws = draws.ravel() * mult
        lo, hi = np.quantile(draws, [q, 1 - q])
        ax.hist(draws, bins=40, density=True, color="#1f77b4", alpha=0.6, label="posterior")
        ax.axvspan(lo, hi, color="#1f77b4", alpha=0.12, label=f"{prob:.0%} interval")
        if params is not None and name in params.columns:
            v = params[name].to_numpy(float) * mult
            ax.plot(v, np.zeros_like(v), "|", color="k", ms=14, mew=1,
                    label=f"OLS per bond ({len(v)})")
        if pooled_ols is not None and name in pooled_ols.index:
            e, se = (float(pooled_ols.loc[name, c]) * mult for c in ("estimate", "se"))
            ax.axvline(e, color="#d62728", lw=1.3, label="pooled OLS")
            ax.axvspan(e - 1.96 * se, e + 1.96 * se, color="#d62728", alpha=0.1)
        ax.set_title("alpha (% per month)" if name == "alpha" else f"beta on {name}", fontsize=10)
        ax.set_yticks([])
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title or "Pooled factor model: one alpha and beta for every bond", fontsize=11)
    return fig


def plot_ou_fit(x: pd.Series, kappa, theta, sigma, dt: float, prob: float = 0.94,
                ml: dict | None = None, units: float = 100.0, title: str | None = None) -> Figure:
    """Short-rate path against the fitted OU model: one-step-ahead and stationary bands.

    Parameters
    ----------
    x : pandas.Series
        Observed rates (decimals per year) indexed by date.
    kappa, theta, sigma : array_like
        Posterior draws (1-D arrays of equal length) of the 1-D OU parameters
        ``dx = kappa (theta - x) dt + sigma dW``.
    dt : float
        Years between observations.
    prob : float
        Probability of the bands.
    ml : dict, optional
        ML point estimates ``{"kappa", "theta", "sigma"}`` shown in the legend for comparison.
    units : float
        Display multiplier (100: percent).

    Returns
    -------
    matplotlib.figure.Figure
        Top: the path, the posterior band of the one-step-ahead conditional mean
        ``theta + (x_{t-1} - theta) exp(-kappa dt)``, the same widened by the conditional sd
        (predictive band), and the stationary mean ``theta``. Bottom: posterior densities of
        kappa, theta and sigma.

    Notes
    -----
    Exact transition: ``x_t | x_{t-1} ~ N(theta + (x_{t-1} - theta) e^{-kappa dt},
    sigma^2 (1 - e^{-2 kappa dt}) / (2 kappa))`` (Vasicek 1977).
    """
    kappa, theta, sigma = (np.asarray(v, float).ravel() for v in (kappa, theta, sigma))
    rng = np.random.default_rng(0)
    take = rng.choice(kappa.size, size=min(kappa.size, 400), replace=False)
    k, th, s = kappa[take, None], theta[take, None], sigma[take, None]
    xv = x.to_numpy(float)
    phi = np.exp(-k * dt)
    mean = th + (xv[None, :-1] - th) * phi
    sd = s * np.sqrt((1 - phi**2) / (2 * k))
    pred = mean + sd * rng.standard_normal(mean.shape)
    q = (1 - prob) / 2
    lo, hi = np.quantile(pred, [q, 1 - q], axis=0)
    lo_m, hi_m = np.quantile(mean, [q, 1 - q], axis=0)
    dates = x.index[1:]
    fig = Figure(figsize=(10, 6.4), layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=[2.2, 1])
    ax = fig.add_subplot(grid[0, :])
    ax.fill_between(dates, lo * units, hi * units, color="#1f77b4", alpha=0.2,
                    label=f"{prob:.0%} one-step predictive band")
    ax.fill_between(dates, lo_m * units, hi_m * units, color="#1f77b4", alpha=0.45,
                    label=f"{prob:.0%} band of the conditional mean")
    ax.plot(x.index, xv * units, color="k", lw=0.9, label="observed")
    tq = np.quantile(theta, [q, 0.5, 1 - q])
    ax.axhline(tq[1] * units, color="#d62728", lw=1, ls="--",
               label=f"theta (median {tq[1] * units:.2f}, {prob:.0%} "
                     f"[{tq[0] * units:.2f}, {tq[2] * units:.2f}])")
    ax.set_ylabel("rate (%)" if units == 100 else "rate")
    ax.set_title("Short rate and the fitted Ornstein-Uhlenbeck model", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    for j, (name, draws, mult) in enumerate([("kappa", kappa, 1.0), ("theta", theta, units),
                                             ("sigma", sigma, units)]):
        a = fig.add_subplot(grid[1, j])
        lo_d, hi_d = np.quantile(draws * mult, [0.005, 0.995])  # keep stray tails off-axis
        a.hist(draws * mult, bins=40, range=(lo_d, hi_d), color="#1f77b4", alpha=0.7, density=True)
        if ml is not None and name in ml:
            a.axvline(ml[name] * mult, color="k", lw=1.2, label="ML")
            a.legend(fontsize=8)
        a.set_title(f"posterior of {name}" + (" (%)" if mult != 1 else ""), fontsize=9)
        a.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig


def plot_yield_curve_fit(maturities: Sequence[float], observed: pd.DataFrame,
                         fitted: np.ndarray | None = None, dates: Sequence | None = None,
                         prob: float = 0.94, units: float = 100.0, ml: pd.DataFrame | None = None,
                         title: str | None = None, bands=None,
                         center_label: str | None = None,
                         band_label: str | None = None) -> Figure:
    """Observed zero-coupon curves on a few dates against the model's posterior bands.

    Parameters
    ----------
    maturities : sequence of float
        Maturities in years (columns of ``observed``, in order).
    observed : pandas.DataFrame
        Yields (decimals per year), dates x maturities.
    fitted : ndarray (samples, dates, maturities), optional
        Posterior draws of the model-implied yields on the same dates and maturities.
    bands : tuple of three arrays (dates, maturities), optional
        Instead of ``fitted``: the posterior ``(center, lower, upper)`` of the fitted yields (e.g.
        :meth:`bayesbond.AffineModel.bands`), each aligned with ``observed``.
    center_label, band_label : str, optional
        Legend labels (default: posterior median or mean, and the posterior band).
    dates : sequence, optional
        Dates to draw (default: four spread over the sample).
    ml : pandas.DataFrame, optional
        ML fitted yields (dates x maturities), dashed.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per date plus a panel of the fitting error (posterior mean minus observed, basis
        points) by maturity over all dates.
    """
    tau = np.asarray(maturities, float)
    if (fitted is None) == (bands is None):
        raise ValueError("give either fitted draws or bands")
    if isinstance(bands, xr.Dataset):
        bands = bands["fitted"]
    if isinstance(bands, xr.DataArray):  # (stat, date, maturity): align the yields by date
        missing = pd.DatetimeIndex(bands["date"].values).difference(observed.index) \
            if isinstance(observed.index, pd.DatetimeIndex) else []
        if len(missing):
            raise ValueError(f"bands cover {missing[0]}, a date without observed yields")
        observed = observed.loc[bands["date"].values]
        bands = tuple(bands.sel(stat=k).transpose("date", "maturity").values
                      for k in ("mean", "lower", "upper"))
    if fitted is not None:
        fitted = np.asarray(fitted, float)
        if fitted.shape[1:] != observed.shape:
            raise ValueError(f"fitted draws have shape {fitted.shape[1:]} per draw, observed "
                             f"yields {observed.shape}")
        q = (1 - prob) / 2
        lower, center, upper = np.quantile(fitted, [q, 0.5, 1 - q], axis=0)
        mean = fitted.mean(0)
        default_center = "posterior median"
    else:
        center, lower, upper = (np.asarray(b, float) for b in bands)
        if not center.shape == lower.shape == upper.shape == observed.shape:
            raise ValueError(f"bands have shape {center.shape}, observed yields {observed.shape}")
        mean = center
        default_center = "posterior mean"
    idx = observed.index
    if dates is None:
        pos = np.unique(np.linspace(0, len(idx) - 1, min(5, len(idx))).round().astype(int))
    else:
        pos = [idx.get_loc(pd.Timestamp(d)) for d in dates]
    ncols = 3
    nrows = -(-(len(pos) + 1) // ncols)
    fig = Figure(figsize=(11, 3.3 * nrows), layout="constrained")
    grid = fig.add_gridspec(nrows, ncols)
    flat = [fig.add_subplot(grid[i // ncols, i % ncols]) for i in range(len(pos))]
    k = len(pos)  # the error panel takes the rest of the last row (no empty panel)
    flat.append(fig.add_subplot(grid[k // ncols, k % ncols:]))
    for ax, p in zip(flat[: len(pos)], pos, strict=False):
        ax.fill_between(tau, lower[p] * units, upper[p] * units, color="#1f77b4", alpha=0.3,
                        label=band_label or f"posterior {prob:.0%} band")
        ax.plot(tau, center[p] * units, color="#1f77b4", lw=1.2,
                label=center_label or default_center)
        ax.plot(tau, observed.iloc[p].to_numpy(float) * units, "ko", ms=3.5, label="observed")
        if ml is not None:
            ax.plot(tau, ml.iloc[p].to_numpy(float) * units, "k--", lw=0.8, label="ML fit")
        ax.set_title(str(pd.Timestamp(idx[p]).date()) if isinstance(idx, pd.DatetimeIndex)
                     else f"date {idx[p]}", fontsize=9)
        ax.set_xlabel("maturity (years)")
        ax.set_ylabel("yield (%)" if units == 100 else "yield")
        ax.grid(alpha=0.3)
    flat[0].legend(fontsize=7)
    err = (mean - observed.to_numpy(float)) * 1e4
    ax = flat[-1]
    ax.boxplot([e[np.isfinite(e)] for e in err.T], positions=np.arange(len(tau)), widths=0.6,
               showfliers=False)
    ax.set_xticks(np.arange(len(tau)), [f"{t:g}" for t in tau], fontsize=7)
    ax.axhline(0, color="k", lw=0.6)
    rmse = np.sqrt(np.nanmean(err**2))
    ax.set_title(f"fitting error (bp), RMSE {rmse:.1f} bp", fontsize=9)
    ax.set_xlabel("maturity (years)")
    ax.set_ylabel("fitted minus observed (bp)")
    if title:
        fig.suptitle(title)
    return fig


def plot_term_premium(term_premium, maturities: Sequence[float] | None = None,
                      ml: pd.DataFrame | None = None, title: str | None = None) -> Figure:
    """Term premia over time with their posterior bands, one panel per maturity.

    Parameters
    ----------
    term_premium : xarray.DataArray or Dataset
        ``(stat, date, maturity)`` with ``stat`` in ``mean, lower, upper`` (decimals per year),
        e.g. ``AffineModel().bands(fit)["term_premium"]`` (a Dataset: its ``term_premium``).
    maturities : sequence of float, optional
        Maturities to draw (years; the nearest available is used); default: up to three spread
        over the available ones, the longest included.
    ml : pandas.DataFrame, optional
        ML term premia (dates x maturities, decimals per year), dashed.

    Returns
    -------
    matplotlib.figure.Figure
        In basis points; the band probability is read from ``attrs["prob"]`` when present.
    """
    tp = term_premium
    prob = tp.attrs.get("prob")
    if isinstance(tp, xr.Dataset):
        tp = tp["term_premium"]
    tau = tp["maturity"].values.astype(float)
    if maturities is None:
        pick = tau[np.unique(np.linspace(0, len(tau) - 1, min(4, len(tau))).round()
                             .astype(int))[1:]] if len(tau) > 1 else tau
    else:
        pick = np.array([tau[np.argmin(np.abs(tau - m))] for m in maturities])
    fig = Figure(figsize=(10, 2.6 * len(pick) + 0.6), layout="constrained")
    axes = fig.subplots(len(pick), 1, squeeze=False, sharex=True)[:, 0]
    dates = tp["date"].values
    band = f"posterior {prob:.0%} band" if prob else "posterior band"
    for ax, m in zip(axes, pick, strict=True):
        t = tp.sel(maturity=m)
        ax.fill_between(dates, t.sel(stat="lower") * 1e4, t.sel(stat="upper") * 1e4,
                        color="#1f77b4", alpha=0.3, label=band)
        ax.plot(dates, t.sel(stat="mean") * 1e4, color="#1f77b4", lw=1.1, label="posterior mean")
        if ml is not None:
            col = ml.columns[np.argmin(np.abs(ml.columns.to_numpy(float) - m))]
            ax.plot(ml.index, ml[col] * 1e4, "k--", lw=0.8, label="ML")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_ylabel("term premium (bp)")
        ax.set_title(f"{m:g}-year term premium: model yield minus expectations-hypothesis "
                     "yield", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("date")
    if title:
        fig.suptitle(title)
    return fig


def plot_term_premium_band(tp: pd.DataFrame, yields: pd.Series | None = None,
                           title: str | None = None) -> Figure:
    """The yield, its expectations-hypothesis component and the term premium with its band.

    Parameters
    ----------
    tp : pandas.DataFrame
        :func:`bayesbond.term_premium` output: index dates, columns ``mean, lower, upper``
        (decimals per year); ``attrs`` ``maturity``, ``prob``, ``source`` and ``yield`` are used
        when present.
    yields : pandas.Series, optional
        The yield of that maturity (decimals; default ``tp.attrs["yield"]``, the model yield).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels in percent: top, the yield and the expectations component ``yield - TP``;
        bottom, the term premium with its band.
    """
    for col in ("mean", "lower", "upper"):
        if col not in tp.columns:
            raise KeyError(f"term premium table has no column {col!r} (need mean, lower, upper)")
    y = tp.attrs.get("yield") if yields is None else yields
    m = tp.attrs.get("maturity")
    prob = tp.attrs.get("prob")
    name = f"{m:g}-year " if m is not None else ""
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    dates = tp.index
    if y is not None:
        y = pd.Series(y).reindex(dates)
        ax1.plot(dates, y * 100, color="k", lw=1.1, label=f"{name}yield")
        ax1.plot(dates, (y - tp["mean"]) * 100, color="#2ca02c", lw=1.0,
                 label="expectations component (yield - TP)")
        ax1.fill_between(dates, (y - tp["upper"]) * 100, (y - tp["lower"]) * 100,
                         color="#2ca02c", alpha=0.25)
        ax1.legend(fontsize=8, loc="upper right")
    ax1.set_ylabel("percent per year")
    ax1.grid(alpha=0.3)
    band = f"{prob:.0%} band" if prob else "band"
    ax2.fill_between(dates, tp["lower"] * 100, tp["upper"] * 100, color="#1f77b4", alpha=0.3,
                     label=f"{band} ({tp.attrs.get('source', 'draws')})")
    ax2.plot(dates, tp["mean"] * 100, color="#1f77b4", lw=1.1, label="term premium")
    ax2.axhline(0, color="k", lw=0.6)
    ax2.set_ylabel(f"{name}term premium (%)")
    ax2.set_xlabel("date")
    ax2.legend(fontsize=8, loc="upper right")
    ax2.grid(alpha=0.3)
    last = tp.iloc[-1]
    ax2.set_title(f"last date: {last['mean'] * 100:.2f}% [{last['lower'] * 100:.2f}, "
                  f"{last['upper'] * 100:.2f}]", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig

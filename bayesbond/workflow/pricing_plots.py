"""Figures of factor-pricing fits: inclusion probabilities, risk premia beside Fama-MacBeth, and
the pricing errors of the BMA-SDF.

Like :mod:`bayesbond.workflow.plots`, every function returns a :class:`matplotlib.figure.Figure`
built without ``pyplot`` and takes plain tables or the fit's ``summary`` group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["plot_inclusion_probabilities", "plot_pricing_errors", "plot_risk_premia",
           "premia_table"]

_POST, _FREQ, _GREY = "#1f77b4", "#d62728", "#7f7f7f"


def plot_inclusion_probabilities(summary: xr.Dataset, prior: float | None = None) -> Figure:
    """Posterior inclusion probability of each factor, highest first, with the prior's mean.

    Factors the data do not identify (``summary.identified`` false: their probability is the
    prior's) are drawn hatched in grey and labelled "not identified".
    """
    pip = summary["inclusion_probability"].to_series().sort_values()
    ident = (summary["identified"].to_series().reindex(pip.index)
             if "identified" in summary else pd.Series(True, index=pip.index))
    fig = Figure(figsize=(7, 0.9 + 0.35 * len(pip)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(pip))
    colors = [_POST if ok else _GREY for ok in ident]
    bars = ax.barh(y, pip.to_numpy(), color=colors)
    for bar, ok in zip(bars, ident, strict=True):
        if not ok:
            bar.set_hatch("//")
            ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2,
                    "not identified (prior)", va="center", fontsize=8, color=_GREY)
    if prior is not None:
        ax.axvline(prior, color="black", ls=":", lw=1, label=f"prior mean {prior:.2f}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(y, [str(f) for f in pip.index])
    ax.set_xlim(0, 1)
    ax.set_xlabel("posterior probability that the factor is in the SDF")
    ax.set_title("Factor selection: inclusion probabilities")
    return fig


def premia_table(idata: xr.DataTree, fm, prob: float = 0.9) -> pd.DataFrame:
    """Posterior of the risk premia beside two-pass Fama-MacBeth with its Shanken interval.

    Parameters
    ----------
    idata : DataTree
        A Bayesian Fama-MacBeth fit (``posterior.lambda`` over ``factor``).
    fm : FamaMacBethResult
        :func:`bayesbond.pricing.fama_macbeth` on the same data and cross-section.
    prob : float
        Probability of both intervals.

    Returns
    -------
    pandas.DataFrame
        Index factor (the intercept first); columns ``post_mean``, ``post_sd``, ``lower``,
        ``upper``, ``fm``, ``fm_se`` (Shanken), ``fm_lower``, ``fm_upper`` (``fm +- z se``),
        ``zero_in_posterior``, ``fm_rejects_zero``.
    """
    from scipy.stats import norm

    lam = idata["posterior"]["lambda"].stack(sample=("chain", "draw")).transpose("factor", ...)
    draws = lam.values
    q = (1 - prob) / 2
    lo, hi = np.quantile(draws, [q, 1 - q], axis=1)
    names = [str(f) for f in lam["factor"].values]
    z = float(norm.ppf(1 - q))
    est = fm.risk_premia.reindex(names).to_numpy(float)
    se = fm.se.reindex(names).to_numpy(float)
    out = pd.DataFrame({"post_mean": draws.mean(1), "post_sd": draws.std(1, ddof=1),
                        "lower": lo, "upper": hi, "fm": est, "fm_se": se,
                        "fm_lower": est - z * se, "fm_upper": est + z * se},
                       index=pd.Index(names, name="factor"))
    out["zero_in_posterior"] = (out["lower"] <= 0) & (0 <= out["upper"])
    out["fm_rejects_zero"] = (out["fm_lower"] > 0) | (out["fm_upper"] < 0)
    return out


def plot_risk_premia(table: pd.DataFrame, prob: float = 0.9, scale: float = 1200.0,
                     units: str = "% per year") -> Figure:
    """Posterior intervals of the risk premia next to Fama-MacBeth estimates with their
    Shanken intervals (a :func:`premia_table`), in ``units`` (monthly decimals x ``scale``)."""
    fig = Figure(figsize=(7, 1.0 + 0.5 * len(table)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(table))[::-1]
    for cols, off, color, label in ((("post_mean", "lower", "upper"), 0.12, _POST,
                                     f"Bayesian FM: posterior mean, {prob:.0%} interval"),
                                    (("fm", "fm_lower", "fm_upper"), -0.12, _FREQ,
                                     f"two-pass FM: estimate, {prob:.0%} Shanken interval")):
        c, lo, hi = (table[k].to_numpy(float) * scale for k in cols)
        ax.errorbar(c, y + off, xerr=[c - lo, hi - c], fmt="o", color=color, capsize=3,
                    label=label)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [str(f) for f in table.index])
    ax.set_xlabel(f"risk premium ({units})")
    ax.set_title("Risk premia: Bayesian Fama-MacBeth beside two-pass Fama-MacBeth")
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_pricing_errors(summary: xr.Dataset, scale: float = 1200.0,
                        units: str = "% per year") -> Figure:
    """Sample mean excess return of each test asset against the expected return the BMA-SDF
    implies (posterior mean and band); the distance to the 45-degree line is the pricing error."""
    m = summary["expected_return_mean"].to_series() * scale
    lo = summary["expected_return_lower"].to_series() * scale
    hi = summary["expected_return_upper"].to_series() * scale
    realised = summary["sample_mean_return"].to_series() * scale
    prob = float(summary.attrs.get("prob", 0.9))
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.add_subplot()
    ax.errorbar(m, realised, xerr=[m - lo, hi - m], fmt="o", color=_POST, capsize=2,
                label=f"BMA-SDF implied E[R]: posterior mean, {prob:.0%} band")
    for name in m.index[: 40]:
        ax.annotate(str(name), (m[name], realised[name]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    span = np.array([min(lo.min(), realised.min()), max(hi.max(), realised.max())])
    ax.plot(span, span, color="black", lw=0.8, ls="--", label="no pricing error")
    ax.set_xlabel(f"expected return implied by the BMA-SDF ({units})")
    ax.set_ylabel(f"sample mean excess return ({units})")
    ax.set_title("Pricing errors of the Bayesian-model-averaged SDF")
    ax.legend(loc="upper left", fontsize=8)
    return fig

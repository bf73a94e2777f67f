"""Simulated bond panels with known parameters, and the embedded demo data set.

The data-generating process is a linear factor model with rating-bucket level means and bond-level
dispersion (the hierarchical structure the Bayesian factor model estimates)::

    F_t ~ N(mu_F, diag(s_F^2))                                (unless factor returns are given)
    alpha_i ~ N(mu_alpha[g_i], tau_alpha[g_i]^2)
    beta_ik ~ N(mu_beta[g_i, k], tau_beta[g_i, k]^2)
    sigma_i = sigma_bucket[g_i] * exp(0.25 z_i),  z_i ~ N(0, 1)
    r_it = alpha_i + beta_i' F_t + c_t + d_{g_i, t} + sigma_i e_it,  e_it ~ N(0, 1) or t_nu

with optional hostile features, all off by default: a common shock ``c_t ~ N(0, common_shock^2)``
shared by every bond and a bucket shock ``d_gt ~ N(0, group_shock^2)`` (the industry, issuer and
liquidity shocks real residuals share), AR(1) factor returns (``factor_ar``) and Student-t errors
(``error_df``).

with g_i the bond's rating bucket (``IG+``, ``IG-``, ``HY``). The signal ``spread`` (decimal per
year) is the bucket's typical spread plus a persistent bond-level part that rises with alpha and
AR(1) noise, so sorting on it earns a premium. Weights are amounts outstanding (USD million).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.data.coerce import to_month_end
from bayesbond.data.panel import BondPanel
from bayesbond.data.ratings import BUCKETS, RATING_SCALE
from bayesbond.errors import DataError

__all__ = ["SimulatedPanel", "load_demo", "simulate_panel"]

# Monthly factor means and volatilities (decimals), loosely matching US data 1990-2020.
_FACTOR_MOMENTS: dict[str, tuple[float, float]] = {
    "CMKT": (0.0030, 0.0150),  # corporate bond market excess return
    "TERM": (0.0020, 0.0200),  # long government minus bill
    "DEF": (0.0005, 0.0120),
    "MKT": (0.0060, 0.0450),  # equity market excess return
}
_GENERIC_MOMENTS = (0.0020, 0.0150)

# bucket-level means of alpha and beta, their bond-level dispersion, and idiosyncratic volatility
_MU_ALPHA = {"IG+": 0.0000, "IG-": 0.0003, "HY": 0.0010}
_TAU_ALPHA = {"IG+": 0.0004, "IG-": 0.0006, "HY": 0.0015}
_MU_BETA = {
    "CMKT": {"IG+": 0.80, "IG-": 1.00, "HY": 1.40},
    "TERM": {"IG+": 0.55, "IG-": 0.40, "HY": 0.10},
    "DEF": {"IG+": 0.30, "IG-": 0.60, "HY": 1.20},
    "MKT": {"IG+": 0.02, "IG-": 0.05, "HY": 0.20},
}
_GENERIC_MU_BETA = {"IG+": 0.40, "IG-": 0.50, "HY": 0.70}
_TAU_BETA_SCALE = {"IG+": 0.10, "IG-": 0.15, "HY": 0.25}  # relative to max(|mu_beta|, 0.5)
_SIGMA = {"IG+": 0.006, "IG-": 0.009, "HY": 0.020}
_SPREAD = {"IG+": 0.008, "IG-": 0.015, "HY": 0.045}
# notches (1 = AAA .. 22 = D) a bond of each bucket starts in, with probabilities
_NOTCHES = {
    "IG+": ([1, 2, 3, 4, 5, 6, 7], [0.04, 0.04, 0.10, 0.14, 0.18, 0.25, 0.25]),
    "IG-": ([8, 9, 10], [0.35, 0.35, 0.30]),
    "HY": ([11, 12, 13, 14, 15, 16, 17], [0.18, 0.18, 0.17, 0.16, 0.14, 0.10, 0.07]),
}

DEMO_SEED = 20240601


@dataclass(frozen=True)
class SimulatedPanel:
    """A simulated panel with the factor returns and the true parameters that generated it.

    Attributes
    ----------
    panel : BondPanel
        Returns, ratings (S&P notation), weights (amount outstanding) and the signal ``spread``.
    factors : pandas.DataFrame
        Factor returns, month-end dates x factor names, decimals per month.
    truth : xarray.Dataset
        ``alpha(bond)``, ``beta(bond, factor)``, ``sigma(bond)``, ``bucket(bond)`` (the bucket whose
        parameters the bond drew), ``expected_return(bond)`` = alpha + beta' mu_F,
        ``mu_alpha(rating_bucket)``, ``tau_alpha(rating_bucket)``, ``mu_beta(rating_bucket,
        factor)``, ``tau_beta(rating_bucket, factor)``, ``sigma_bucket(rating_bucket)`` and
        ``factor_mean(factor)``, ``factor_sd(factor)`` (the population moments when the factors
        were simulated, the sample moments of the given factors otherwise), and the realised
        shocks ``common_shock(date)`` and ``group_shock(date, rating_bucket)`` (zeros when off).
    """

    panel: BondPanel
    factors: pd.DataFrame
    truth: xr.Dataset


def _bucket_table(value, default: Mapping, name: str) -> dict[str, float]:
    if value is None:
        return dict(default)
    if isinstance(value, (int, float)):
        return dict.fromkeys(BUCKETS, float(value))
    table = dict(value)
    missing = [b for b in BUCKETS if b not in table]
    if missing:
        raise DataError(f"{name} needs a value for bucket(s) {missing}")
    return {b: float(table[b]) for b in BUCKETS}


def simulate_panel(
    n_bonds: int = 300,
    n_dates: int = 180,
    factors: pd.DataFrame | None = None,
    factor_names: Sequence[str] = ("CMKT", "TERM"),
    bucket_shares: Sequence[float] = (0.35, 0.40, 0.25),
    seed: int | None = 0,
    missing: float = 0.0,
    migration: float = 0.0,
    start: str = "2005-01-31",
    mu_alpha: Mapping[str, float] | float | None = None,
    tau_alpha: Mapping[str, float] | float | None = None,
    mu_beta: pd.DataFrame | None = None,
    tau_beta: pd.DataFrame | None = None,
    sigma: Mapping[str, float] | float | None = None,
    min_obs: int = 24,
    common_shock: float = 0.0,
    group_shock: float = 0.0,
    factor_ar: float | Sequence[float] = 0.0,
    error_df: float | None = None,
) -> SimulatedPanel:
    """Draw a bond panel from a hierarchical linear factor model with known parameters.

    Parameters
    ----------
    n_bonds : int
        Number of bonds (labelled ``B0000``, ``B0001``, ...).
    n_dates : int
        Number of months (ignored when ``factors`` is given: its dates are used).
    factors : pandas.DataFrame, optional
        Factor returns (dates x factors, decimals per month). Simulated when omitted.
    factor_names : sequence of str
        Names of the simulated factors (``CMKT``, ``TERM``, ``DEF``, ``MKT`` have realistic
        moments; other names get a mean of 0.2% and volatility of 1.5% per month).
    bucket_shares : sequence of 3 floats
        Shares of ``IG+``, ``IG-``, ``HY`` bonds.
    seed : int or None
        Seed of ``numpy.random.default_rng``.
    missing : float
        Probability that a bond-month is absent (independent; bonds keep at least ``min_obs``
        months). Absent rows are left out of the panel, as in real data.
    migration : float
        Monthly probability that a bond's rating moves one notch (up or down with equal chance).
        A bond's parameters stay those of its first bucket (``truth.bucket``).
    start : str
        First month-end date when factors are simulated.
    mu_alpha, tau_alpha, sigma : mapping bucket -> float, or float, optional
        Bucket means and dispersions of alpha and the bucket idiosyncratic volatilities.
    mu_beta, tau_beta : pandas.DataFrame, optional
        Bucket x factor means and dispersions of the betas.
    min_obs : int
        Minimum number of observed months per bond when ``missing > 0``.
    common_shock : float
        Standard deviation of a monthly shock ``c_t`` added to every bond's return (decimals per
        month; real IG residuals share about 0.003). Not in the model of
        :class:`~bayesbond.FactorModel` without ``date_effects``.
    group_shock : float
        Standard deviation of a monthly shock ``d_gt`` shared by the bonds of one rating bucket.
    factor_ar : float or sequence of float
        AR(1) coefficient of each simulated factor, ``F_t - mu = phi (F_{t-1} - mu) + s sqrt(1 -
        phi^2) u_t``, which keeps the stationary mean and volatility (``F_0`` is drawn from the
        stationary law). The variance of the sample mean is then about ``(1 + phi) / (1 - phi)``
        times the i.i.d. one. Needs simulated factors.
    error_df : float, optional
        Degrees of freedom of Student-t errors ``e_it ~ t_nu`` (``sigma_i`` is then their
        scale); normal errors when omitted.

    Returns
    -------
    SimulatedPanel
        The panel, the factor returns and the truth.

    Notes
    -----
    ``r_it = alpha_i + beta_i' F_t + sigma_i e_it``, ``alpha_i ~ N(mu_alpha[g], tau_alpha[g]^2)``,
    ``beta_ik ~ N(mu_beta[g, k], tau_beta[g, k]^2)``, ``sigma_i = sigma_bucket[g] exp(0.25 z_i)``,
    plus ``c_t + d_{g,t}`` when ``common_shock`` or ``group_shock`` is positive. The extra
    random numbers are drawn only when a feature is on, so the default panel of a seed does not
    change. The shocks have mean zero: ``truth.expected_return`` is unchanged.
    Default magnitudes: mean monthly returns of about 0.4-0.6%, volatilities of 1.5-3% (HY the
    riskiest).
    """
    rng = np.random.default_rng(seed)
    if n_bonds < 1:
        raise DataError(f"n_bonds must be positive, got {n_bonds}")
    if not 0.0 <= missing < 1.0:
        raise DataError(f"missing must be in [0, 1), got {missing}")
    if not 0.0 <= migration <= 1.0:
        raise DataError(f"migration must be in [0, 1], got {migration}")
    shares = np.asarray(bucket_shares, dtype=float)
    if shares.shape != (3,) or (shares < 0).any() or shares.sum() <= 0:
        raise DataError(f"bucket_shares needs 3 non-negative numbers, got {bucket_shares}")
    shares = shares / shares.sum()
    for name, v in (("common_shock", common_shock), ("group_shock", group_shock)):
        if not (np.isfinite(v) and v >= 0):
            raise DataError(f"{name} must be a non-negative standard deviation, got {v}")
    if error_df is not None and not error_df > 0:
        raise DataError(f"error_df must be positive, got {error_df}")

    # ---- factor returns
    if factors is None:
        if n_dates < 2:
            raise DataError(f"n_dates must be at least 2, got {n_dates}")
        names = [str(f) for f in factor_names]
        moments = np.array([_FACTOR_MOMENTS.get(f, _GENERIC_MOMENTS) for f in names])
        dates = pd.date_range(to_month_end([start])[0], periods=n_dates, freq="ME", name="date")
        u = rng.standard_normal((n_dates, len(names)))
        phi = np.broadcast_to(np.asarray(factor_ar, dtype=float), (len(names),))
        if not (np.abs(phi) < 1).all():
            raise DataError(f"factor_ar must be in (-1, 1) for every factor, got {factor_ar}")
        if (phi != 0).any():
            for t in range(1, n_dates):
                u[t] = phi * u[t - 1] + np.sqrt(1 - phi**2) * u[t]
        F = moments[:, 0] + moments[:, 1] * u
        factors = pd.DataFrame(F, index=dates, columns=pd.Index(names, name="factor"))
        factor_mean, factor_sd = moments[:, 0], moments[:, 1]
    else:
        if not isinstance(factors, pd.DataFrame) or factors.shape[1] == 0:
            raise DataError("factors must be a DataFrame with one column per factor")
        if np.any(np.asarray(factor_ar) != 0):
            raise DataError("factor_ar applies to simulated factors; the given factors are used "
                            "as they are")
        bad = [c for c in factors.columns if not np.isfinite(factors[c].to_numpy(float)).all()]
        if bad:
            raise DataError(f"factor column(s) {bad} hold missing or non-finite values")
        names = [str(c) for c in factors.columns]
        dates = to_month_end(factors.index, where="factors index")
        factors = pd.DataFrame(
            factors.to_numpy(float), index=dates, columns=pd.Index(names, name="factor")
        )
        F = factors.to_numpy()
        n_dates = len(dates)
        factor_mean, factor_sd = F.mean(axis=0), F.std(axis=0, ddof=1)
    K = len(names)

    # ---- bucket-level parameters
    mu_a = _bucket_table(mu_alpha, _MU_ALPHA, "mu_alpha")
    tau_a = _bucket_table(tau_alpha, _TAU_ALPHA, "tau_alpha")
    sig_b = _bucket_table(sigma, _SIGMA, "sigma")
    default_mu_beta = pd.DataFrame(
        {f: _MU_BETA.get(f, _GENERIC_MU_BETA) for f in names}, index=list(BUCKETS)
    )
    mb = default_mu_beta if mu_beta is None else pd.DataFrame(mu_beta).reindex(BUCKETS)[names]
    if tau_beta is None:
        tb = mb.abs().clip(lower=0.5).mul(pd.Series(_TAU_BETA_SCALE), axis=0)
    else:
        tb = pd.DataFrame(tau_beta).reindex(BUCKETS)[names]
    if mb.isna().any().any() or tb.isna().any().any():
        raise DataError(
            "mu_beta and tau_beta need a value for every bucket (IG+, IG-, HY) and factor"
        )

    # ---- bonds
    bonds = pd.Index([f"B{j:04d}" for j in range(n_bonds)], name="bond")
    g = rng.choice(3, size=n_bonds, p=shares)
    bucket = np.asarray(BUCKETS, dtype=object)[g]
    alpha = np.array([mu_a[b] for b in bucket]) + np.array(
        [tau_a[b] for b in bucket]
    ) * rng.standard_normal(n_bonds)
    beta = mb.loc[bucket].to_numpy() + tb.loc[bucket].to_numpy() * rng.standard_normal((n_bonds, K))
    sig = np.array([sig_b[b] for b in bucket]) * np.exp(0.25 * rng.standard_normal(n_bonds))

    eps = rng.standard_normal((n_dates, n_bonds))
    if error_df is not None:  # t_nu = N(0, 1) / sqrt(chi2_nu / nu)
        eps = eps / np.sqrt(rng.chisquare(error_df, (n_dates, n_bonds)) / error_df)
    R = alpha[None, :] + F @ beta.T + sig[None, :] * eps
    c = np.zeros(n_dates)
    d = np.zeros((n_dates, len(BUCKETS)))
    if common_shock > 0:
        c = common_shock * rng.standard_normal(n_dates)
    if group_shock > 0:
        d = group_shock * rng.standard_normal((n_dates, len(BUCKETS)))
    R += c[:, None] + d[:, g]

    # ---- ratings (notches), possibly migrating
    notch0 = np.array([rng.choice(_NOTCHES[b][0], p=_NOTCHES[b][1]) for b in bucket])
    notches = np.tile(notch0, (n_dates, 1))
    if migration > 0:
        moves = rng.random((n_dates, n_bonds)) < migration
        steps = np.where(rng.random((n_dates, n_bonds)) < 0.5, -1, 1) * moves
        steps[0] = 0
        notches = np.clip(notch0[None, :] + np.cumsum(steps, axis=0), 1, 21)
    ratings = np.asarray(RATING_SCALE, dtype=object)[notches - 1]

    # ---- weights (amount outstanding, USD million) and the spread signal
    amt = np.round(np.exp(rng.normal(np.log(500.0), 0.6, n_bonds)), 1)
    # persistent part: the bucket's spread plus the bond's annualised alpha in excess of its bucket
    spread_level = np.array([_SPREAD[b] + 12.0 * (-mu_a[b]) for b in bucket]) + 12.0 * alpha
    spread_level += 0.002 * rng.standard_normal(n_bonds)
    noise = np.zeros((n_dates, n_bonds))
    shocks = 0.001 * rng.standard_normal((n_dates, n_bonds))
    noise[0] = shocks[0] / np.sqrt(1 - 0.9**2)
    for t in range(1, n_dates):
        noise[t] = 0.9 * noise[t - 1] + shocks[t]
    spread = np.maximum(spread_level[None, :] + noise, 0.0005)

    # ---- missing months
    present = np.ones((n_dates, n_bonds), dtype=bool)
    if missing > 0:
        present = rng.random((n_dates, n_bonds)) >= missing
        need = min(min_obs, n_dates)
        for j in np.flatnonzero(present.sum(axis=0) < need):
            present[rng.choice(n_dates, size=need, replace=False), j] = True

    d_idx, b_idx = np.nonzero(present)
    long = pd.DataFrame(
        {
            "date": dates[d_idx],
            "bond": np.asarray(bonds)[b_idx],
            "ret": R[d_idx, b_idx],
            "rating": ratings[d_idx, b_idx],
            "weight": np.broadcast_to(amt, (n_dates, n_bonds))[d_idx, b_idx],
            "spread": spread[d_idx, b_idx],
        }
    )
    panel = BondPanel.from_frame(long)

    fcoord = pd.Index(names, name="factor")
    bcoord = pd.Index(list(BUCKETS), name="rating_bucket")
    truth = xr.Dataset(
        {
            "alpha": (("bond",), alpha),
            "beta": (("bond", "factor"), beta),
            "sigma": (("bond",), sig),
            "bucket": (("bond",), bucket),
            "expected_return": (("bond",), alpha + beta @ factor_mean),
            "mu_alpha": (("rating_bucket",), [mu_a[b] for b in BUCKETS]),
            "tau_alpha": (("rating_bucket",), [tau_a[b] for b in BUCKETS]),
            "mu_beta": (("rating_bucket", "factor"), mb.to_numpy(float)),
            "tau_beta": (("rating_bucket", "factor"), tb.to_numpy(float)),
            "sigma_bucket": (("rating_bucket",), [sig_b[b] for b in BUCKETS]),
            "factor_mean": (("factor",), np.asarray(factor_mean, float)),
            "factor_sd": (("factor",), np.asarray(factor_sd, float)),
            "common_shock": (("date",), c),
            "group_shock": (("date", "rating_bucket"), d),
        },
        coords={"bond": bonds, "factor": fcoord, "rating_bucket": bcoord, "date": dates},
        attrs={
            "seed": -1 if seed is None else int(seed),
            "missing": missing,
            "migration": migration,
            "common_shock": float(common_shock),
            "group_shock": float(group_shock),
            "factor_ar": [float(v) for v in np.broadcast_to(np.asarray(factor_ar, float), (K,))],
            "error_df": 0.0 if error_df is None else float(error_df),
        },
    )
    return SimulatedPanel(panel=panel, factors=factors, truth=truth)


def load_demo() -> SimulatedPanel:
    """The embedded demo data set behind ``bayesbond demo``.

    300 bonds over 180 months (2005-01 .. 2019-12) with factors ``CMKT`` and ``TERM``, 10% of
    bond-months missing, bucket shares 35% ``IG+``, 40% ``IG-``, 25% ``HY``; generated
    deterministically by :func:`simulate_panel` (seed ``20240601``) in well under a second.

    Returns
    -------
    SimulatedPanel
    """
    return simulate_panel(
        n_bonds=300, n_dates=180, factor_names=("CMKT", "TERM"), seed=DEMO_SEED, missing=0.10
    )

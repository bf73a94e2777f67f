"""Expected-return bands from a factor-model fit: E[R_b] = alpha_b + beta_b'E[F], and residual
returns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.errors import SpecError

__all__ = ["expected_returns", "factor_mean_draws", "residual_returns"]


def _factor_table(idata: xr.DataTree) -> xr.DataArray:
    if "constant_data" not in idata.children or "factor_returns" not in idata["constant_data"]:
        raise SpecError("the fit has no constant_data/factor_returns: is it a FactorModel fit?")
    return idata["constant_data"]["factor_returns"].transpose("date", "factor")


def factor_mean_draws(F: np.ndarray, n_draws: int, rng) -> np.ndarray:
    """Draws of the mean of the factor returns from its posterior under a noninformative prior.

    Parameters
    ----------
    F : ndarray (T, K)
        Factor returns.
    n_draws : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray (n_draws, K)

    Notes
    -----
    With i.i.d. ``F_t ~ N(mu, Sigma)`` and ``p(mu, Sigma) ~ |Sigma|^{-(K+1)/2}``, the marginal
    posterior of the mean is multivariate t, ``mu | F ~ t_{T-K}(Fbar, S / (T (T - K)))`` with
    ``S = sum_t (F_t - Fbar)(F_t - Fbar)'`` (Gelman et al., *Bayesian Data Analysis*, 3rd ed., 2013,
    sec. 3.6). Drawn as ``Fbar + L z sqrt((T - K) / chi2_{T-K})``.
    """
    T, K = F.shape
    if T - K < 1:
        raise SpecError(f"{T} dates are too few to carry the uncertainty of the mean of "
                        f"{K} factors")
    Fbar = F.mean(axis=0)
    dev = F - Fbar
    scale = dev.T @ dev / (T * (T - K))
    L = np.linalg.cholesky(scale)
    z = rng.standard_normal((n_draws, K))
    w = np.sqrt((T - K) / rng.chisquare(T - K, size=n_draws))
    return Fbar + (z @ L.T) * w[:, None]


def _parse_means(factor_means, factors: list) -> np.ndarray:
    if isinstance(factor_means, dict | pd.Series):
        m = pd.Series(factor_means, dtype=float)
        missing = [f for f in factors if f not in m.index]
        extra = [f for f in m.index if f not in factors]
        if missing or extra:
            raise SpecError(f"factor_means must name exactly the factors {factors}; "
                            f"missing {missing}, unknown {extra}")
        arr = m[factors].to_numpy()
    else:
        arr = np.asarray(factor_means, dtype=float)
        if arr.shape != (len(factors),):
            raise SpecError(f"factor_means needs {len(factors)} values (factors {factors}); "
                            f"got shape {arr.shape}")
    bad = [f for f, v in zip(factors, arr, strict=True) if not np.isfinite(v)]
    if bad:
        raise SpecError(f"factor_means are not finite for {bad}")
    return arr


def expected_returns(
    idata: xr.DataTree,
    factor_means=None,
    prob: float = 0.94,
    *,
    factor_uncertainty: bool = False,
    factor_cov=None,
    by: str = "bond",
    random_seed=None,
) -> pd.DataFrame:
    """Posterior mean and central interval of each bond's (or group's) expected return.

    Parameters
    ----------
    idata : xarray.DataTree
        A :meth:`FactorModel.fit` result (posterior ``alpha``, ``beta``; ``constant_data``).
    factor_means : mapping factor -> value, Series or sequence, optional
        ``E[F]``; default: the sample means of the factor returns the model was fitted on.
    prob : float
        Probability of the central (equal-tailed) interval.
    factor_uncertainty : bool
        Carry the uncertainty of ``E[F]``: each posterior draw gets its own draw of the factor
        means, from their posterior given the fitted factor returns (see :func:`factor_mean_draws`),
        or from ``N(factor_means, factor_cov)`` when both are given.
    factor_cov : array (K, K), optional
        Covariance of user-given ``factor_means`` (with ``factor_uncertainty=True``).
    by : {"bond", "rating_bucket"}
        Per bond, or per group: the equal-weighted average over the group's bonds, draw by draw
        (``"rating_bucket"``, or the fit's group dimension name).
    random_seed : int, optional
        Seed of the factor-mean draws.

    Returns
    -------
    pandas.DataFrame
        Indexed by bond (or group), columns ``mean``, ``sd``, ``lower``, ``upper`` and (per bond)
        ``group``.

    Notes
    -----
    ``E[R_b] = alpha_b + beta_b'E[F]`` evaluated draw by draw, so the bands carry the joint
    posterior
    uncertainty of ``alpha_b`` and ``beta_b`` (and, optionally, of ``E[F]``).
    """
    if not 0 < prob < 1:
        raise SpecError(f"prob must be in (0, 1); got {prob}")
    post = idata["posterior"]
    if "alpha" not in post or "beta" not in post:
        raise SpecError("the posterior has no alpha/beta: is it a FactorModel fit?")
    Fda = _factor_table(idata)
    factors = [str(f) for f in Fda["factor"].values]
    const = idata["constant_data"]
    group_da = const["group"] if "group" in const else None
    group_name = group_da.attrs.get("name", "rating_bucket") if group_da is not None else None
    if by not in ("bond", "rating_bucket") and by != group_name:
        raise SpecError(f"by must be 'bond' or 'rating_bucket'; got {by!r}")
    alpha = post["alpha"]
    beta = post["beta"].transpose("chain", "draw", ..., "factor")
    C, D = alpha.sizes["chain"], alpha.sizes["draw"]
    S = C * D
    a = alpha.values.reshape(S, *alpha.shape[2:])
    b = beta.values.reshape(S, *beta.shape[2:])
    bonds = list(idata["observed_data"]["returns"]["bond"].values)
    if a.ndim == 1:  # pooled: one alpha/beta for every bond
        a = np.repeat(a[:, None], len(bonds), axis=1)
        b = np.repeat(b[:, None, :], len(bonds), axis=1)
    else:
        bonds = list(alpha["bond"].values)

    rng = np.random.default_rng(random_seed)
    if factor_means is None:
        if factor_cov is not None:
            raise SpecError("factor_cov needs factor_means")
        if factor_uncertainty:
            mF = factor_mean_draws(Fda.values, S, rng)
        else:
            mF = np.broadcast_to(Fda.values.mean(axis=0), (S, len(factors)))
    else:
        mean = _parse_means(factor_means, factors)
        if factor_uncertainty:
            if factor_cov is None:
                raise SpecError("factor_uncertainty=True with factor_means needs factor_cov")
            cov = np.asarray(factor_cov, dtype=float)
            if cov.shape != (len(factors), len(factors)):
                raise SpecError(f"factor_cov must be {len(factors)} x {len(factors)}; "
                                f"got {cov.shape}")
            mF = rng.multivariate_normal(mean, cov, size=S)
        else:
            mF = np.broadcast_to(mean, (S, len(factors)))
    er = a + np.einsum("sbk,sk->sb", b, mF)  # (draws, bond)

    groups = None
    if group_da is not None:
        groups = pd.Series(group_da.values, index=list(group_da["bond"].values)).reindex(bonds)
    if by != "bond":
        if groups is None:
            raise SpecError(
                f"by={by!r}: the fit has no bond groups; fit a BondPanel with ratings or pass "
                "groups= to FactorModel.fit"
            )
        labels = list(dict.fromkeys(groups.values))
        er = np.stack([er[:, (groups.values == g)].mean(axis=1) for g in labels], axis=1)
        index = pd.Index(labels, name=group_name)
    else:
        index = pd.Index(bonds, name="bond")
    q = np.quantile(er, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    out = pd.DataFrame({"mean": er.mean(axis=0), "sd": er.std(axis=0, ddof=1),
                        "lower": q[0], "upper": q[1]}, index=index)
    if by == "bond" and groups is not None:
        out["group"] = groups.values
    out.attrs["prob"] = prob
    out.attrs["factor_means"] = dict(zip(factors, np.asarray(mF).mean(axis=0), strict=True))
    return out


def residual_returns(idata: xr.DataTree) -> xr.DataArray:
    """Posterior mean residual returns ``R_bt - E[alpha_b + beta_b'F_t | data]`` (date, bond).

    NaN where the return is not observed. The fitted value is linear in the coefficients, so this is
    also the posterior mean of the residual.
    """
    post = idata["posterior"]
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    F = _factor_table(idata)
    a = post["alpha"].mean(("chain", "draw"))
    b = post["beta"].mean(("chain", "draw"))
    fitted = a + (b * F).sum("factor")
    res = (y - fitted).transpose("date", "bond")
    return res.where(np.isfinite(y)).rename("residual")

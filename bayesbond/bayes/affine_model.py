"""Bayesian Gaussian affine term-structure model under P and P* (PyMC).

The likelihood is the portfolio likelihood of Joslin, Singleton and Zhu (2011): the first ``n``
principal-component portfolios ``P = W y`` are priced without error, so no filter is needed:

* P dynamics: ``P_t | P_{t-1} ~ N(c + Phi P_{t-1}, Q)`` with the exact OU transition of
  ``dP = (A P + a) dt + Sigma dW`` (matrix exponential and Van Loan's integral, written in
  PyTensor below);
* cross-section: ``y_t = d + Z P_t + e_t`` with ``e_t`` in the ``(p - n)``-dim. complement of the
  portfolios, ``W_perp e_t ~ N(0, sigma_e^2 I)``; ``(Z, d)`` from the canonical parameters through
  the closed forms of :mod:`bayesbond.baselines.affine_canonical` (the same code as the ML fit).

Both parts are conditional on the first date and vectorised over dates (no scan). It is exactly
the likelihood of ``affine_ml(..., method="portfolio")``, so posterior and ML line up.

Priors keep the dynamics stable: under P* by construction (ordered negative eigenvalue
parameterisation); under P by a smooth prior factor on ``A``, the product of logistic functions of
its Routh-Hurwitz margins (``n <= 3``), which makes unstable ``A`` exponentially unlikely (a slowest
eigenvalue of ``+0.05`` per year costs a factor ``e^-5``) without the hard wall that makes NUTS
diverge when a slow level factor puts posterior mass near a unit root.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayesbond.baselines.affine_canonical import canonical, eigen_from_raw, n_real, pca_weights
from bayesbond.baselines.affine_ml import prepare_yields
from bayesbond.baselines.affine_result import PARAM_NAMES, eh_yields, factor_names
from bayesbond.errors import DataError, SpecError

__all__ = ["AffineModel", "expm_pt", "DEFAULT_PRIORS"]

DEFAULT_PRIORS = {
    # eig_raw: log(-lam_1), log steps / log g, log h of the P* eigen-structure (normal mean, sd)
    "eig_raw": ([np.log(0.05), np.log(0.5), np.log(0.25)], [1.5, 1.0, 1.5]),
    "k_inf": 0.02,  # normal sd of k_inf
    "log_sigma_diag": (np.log(0.01), 1.5),  # log diagonal of Sigma
    "sigma_offdiag": 0.02,  # normal sd of the off-diagonal entries of Sigma
    "A_scale": 2.0,  # sd of A[i, j] is A_scale * sd(P_i) / sd(P_j)
    "mu": 0.5,  # normal sd of the stationary mean of the portfolios
    "log_sigma_e": (np.log(5e-4), 1.0),
}


def expm_pt(M, squarings: int = 4, order: int = 10):
    """Matrix exponential in PyTensor: Taylor polynomial with scaling and squaring.

    Notes
    -----
    ``e^M = (T_k(M / 2^s))^(2^s)`` with ``T_k`` the degree-``k`` Taylor polynomial (Horner form).
    The truncation error is below ``(||M|| / 2^s)^(k+1) / (k+1)!``: with ``s = 4``, ``k = 10`` it is
    below 1e-16 relative for ``||M|| <= 2`` and 1e-11 for ``||M|| <= 8`` (a monthly step of any
    plausible drift). Only products and
    sums, so it compiles natively with numba and differentiates exactly (Moler and Van Loan 2003).
    """
    import pytensor.tensor as pt

    n = M.shape[-1]
    eye = pt.eye(n)
    X = M / (2.0**squarings)
    E = eye + X / order
    for k in range(order - 1, 0, -1):
        E = eye + pt.dot(X, E) / k
    for _ in range(squarings):
        E = pt.dot(E, E)
    return E


def _hurwitz_margins(A, n: int, width: float = 0.01):
    """Routh-Hurwitz margins of ``A``, scaled to eigenvalue units (all > 0 iff ``A`` is stable).

    With ``det(sI - A) = s^3 + c2 s^2 + c1 s + c0`` the conditions are ``c2 > 0``, ``c0 > 0`` and
    ``c2 c1 - c0 > 0`` (``n = 3``); ``-tr A > 0``, ``det A > 0`` (``n = 2``); ``A < 0`` (``n = 1``).
    Each is divided by ``width`` times the size it has when the slowest eigenvalue is near zero
    (``c0 ~ |lam_min| c1``), so a margin of 1 means the slowest eigenvalue is about ``-width``.
    """
    import pytensor.tensor as pt

    if n == 1:
        return [-A[0, 0] / width]
    tr = pt.trace(A)
    det = pt.linalg.det(A)
    if n == 2:
        return [-tr / width, det / (width * (pt.abs(tr) + 1e-3))]
    if n == 3:
        m2 = (
            A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
            + A[0, 0] * A[2, 2] - A[0, 2] * A[2, 0]
            + A[1, 1] * A[2, 2] - A[1, 2] * A[2, 1]
        )  # fmt: skip
        c2, c1, c0 = -tr, m2, -det
        return [
            c2 / width,
            c0 / (width * (pt.abs(c1) + 1e-3)),
            (c2 * c1 - c0) / (width * (pt.abs(c2 * c1) + 1e-4)),
        ]
    raise SpecError(f"the Bayesian affine model supports 1 to 3 factors, got {n}")


class AffineModel:
    """Bayesian canonical Gaussian affine model (JSZ identification, portfolios priced exactly).

    Parameters
    ----------
    n_factors : int
        Number of factors (1 to 3).
    identification : {"jsz"}
        See :func:`bayesbond.affine_ml`: states are the principal-component portfolios, ``A*`` in
        real canonical form with ordered eigenvalues, ``Sigma`` lower triangular.
    priors : dict, optional
        Overrides of :data:`DEFAULT_PRIORS` (same keys).

    Notes
    -----
    Posterior variables (dims ``state``, ``state2``, ``maturity``, ``date``): ``A``, ``a``,
    ``Sigma``, ``A_star``, ``a_star``, ``Lambda``, ``lambda1``, ``delta0``, ``delta1``, ``k_inf``,
    ``lam_star``/``lam_star_imag`` (eigenvalues of ``A_star``), ``sigma_e``, the stationary mean
    ``mu`` and the raw eigen-parameters ``eig_raw``. Fitted yields, term premia and expected excess
    returns with posterior bands: :meth:`bands`; the table next to an ML fit: :meth:`side_by_side`.

    Status: the likelihood is tested to equal the ML portfolio likelihood exactly, but NUTS has not
    yet been shown to converge on it: a simulated 150-month problem with 2 chains x 300 draws
    (400 tuning) gave R-hat 2.2 and 11 divergences (P* parameters sharply identified next to a
    weakly identified ``A``). Check ``idata.attrs["diagnostics"]`` (a ConvergenceWarning is issued).
    """

    def __init__(self, n_factors: int = 3, identification: str = "jsz", priors=None):
        if identification != "jsz":
            raise SpecError(f"identification must be 'jsz', got {identification!r}")
        if not 1 <= int(n_factors) <= 3:
            raise SpecError(f"n_factors must be 1, 2 or 3 in the Bayesian model, got {n_factors}")
        self.n = int(n_factors)
        self.identification = identification
        priors = dict(priors or {})
        unknown = set(priors) - set(DEFAULT_PRIORS)
        if unknown:
            raise SpecError(
                f"unknown prior keys {sorted(unknown)}; valid keys: {sorted(DEFAULT_PRIORS)}"
            )
        self.priors = {**DEFAULT_PRIORS, **priors}
        self.data_ = None

    # ----------------------------------------------------------------------------- building
    def _data(self, yields, maturities, dt, weights):
        Y, tau, dates, dt = prepare_yields(yields, maturities, dt)
        if not np.isfinite(Y).all():
            t, j = np.argwhere(~np.isfinite(Y))[0]
            raise DataError(
                f"missing yield on date {dates[t]} at maturity {tau[j]}: the Bayesian "
                "(portfolio) likelihood needs complete rows"
            )
        n, p = self.n, Y.shape[1]
        if n >= p:
            raise SpecError(f"n_factors={n} must be below the number of maturities {p}")
        W = pca_weights(Y, n) if weights is None else np.asarray(weights, float)
        if W.shape != (n, p) or np.linalg.matrix_rank(W) < n:
            raise SpecError(f"weights must be a full-rank ({n}, {p}) array, got {W.shape}")
        import scipy.linalg as sla

        W_perp = sla.null_space(W).T  # orthonormal basis of the complement
        didx = pd.DatetimeIndex(dates) if isinstance(dates, pd.DatetimeIndex) else dates
        return {"Y": Y, "tau": tau, "dates": didx, "dt": dt, "W": W, "W_perp": W_perp}

    def build(self, yields, maturities=None, dt=None, weights=None):
        """The PyMC model (without sampling)."""
        import pymc as pm
        import pytensor.tensor as pt

        D = self._data(yields, maturities, dt, weights)
        self.data_ = D
        Y, tau, W, W_perp, dt = D["Y"], D["tau"], D["W"], D["W_perp"], D["dt"]
        n, p = self.n, len(tau)
        Po = Y @ W.T
        names = factor_names(n)
        pr = self.priors
        coords = {
            "state": names,
            "state2": names,
            "maturity": tau,
            "date": D["dates"][1:],
            "residual": [f"resid{i + 1}" for i in range(p - n)],
            "eig_param": [f"eig_raw{i + 1}" for i in range(n)],
            "tril": [f"{names[i]},{names[j]}" for i, j in zip(*np.tril_indices(n), strict=True)],
        }
        sdP = Po.std(axis=0)
        A_sd = pr["A_scale"] * sdP[:, None] / sdP[None, :]
        eig_mu = np.asarray(pr["eig_raw"][0], float)[:n]
        eig_sd = np.asarray(pr["eig_raw"][1], float)[:n]
        if n <= 2:  # only real eigenvalues: steps of about a factor of 10
            eig_mu = np.r_[np.log(0.05), np.log(0.5)][:n]
            eig_sd = np.r_[1.5, 1.0][:n]
        tril = np.tril_indices(n)
        diag_pos = np.array([i == j for i, j in zip(*tril, strict=True)])
        with pm.Model(coords=coords) as model:
            eig_raw = pm.Normal("eig_raw", eig_mu, eig_sd, dims="eig_param")
            k_inf = pm.Normal("k_inf", 0.0, pr["k_inf"])
            ld_mu, ld_sd = pr["log_sigma_diag"]
            off_sd = pr["sigma_offdiag"]
            L_raw = pm.Normal(
                "Sigma_raw",
                np.where(diag_pos, ld_mu, 0.0),
                np.where(diag_pos, ld_sd, off_sd),
                dims="tril",
            )
            L_vals = pt.where(diag_pos, pt.exp(L_raw), L_raw)
            Sigma = pt.zeros((n, n))
            Sigma = pm.Deterministic(
                "Sigma", pt.set_subtensor(Sigma[tril], L_vals), dims=("state", "state2")
            )
            A = pm.Normal("A", 0.0, A_sd, dims=("state", "state2"))
            mu = pm.Normal("mu", 0.0, pr["mu"], dims="state")
            a = pm.Deterministic("a", -pt.dot(A, mu), dims="state")
            se_mu, se_sd = pr["log_sigma_e"]
            log_sig = pm.Normal("log_sigma_e", se_mu, se_sd)
            sigma_e = pm.Deterministic("sigma_e", pt.exp(log_sig))
            # smooth prior favouring stable P dynamics: sum of log-sigmoids of the Routh-Hurwitz
            # margins (a hard wall where the posterior has mass would make NUTS diverge)
            pm.Potential("stable_P", -sum(pt.softplus(-m) for m in _hurwitz_margins(A, n)))

            # P* side: canonical loadings (same code as the ML fit)
            eig = eigen_from_raw(pt, eig_raw, n)
            V = pt.dot(Sigma, Sigma.T)
            can = canonical(pt, eig, k_inf, V, W, tau)
            pm.Deterministic("A_star", can.A_star, dims=("state", "state2"))
            pm.Deterministic("a_star", can.a_star, dims="state")
            pm.Deterministic("Lambda", can.A_star - A, dims=("state", "state2"))
            pm.Deterministic("lambda1", can.a_star - a, dims="state")
            pm.Deterministic("delta0", can.delta0)
            pm.Deterministic("delta1", can.delta1, dims="state")
            lam_re, lam_im = _eig_parts(pt, eig, n)
            pm.Deterministic("lam_star", lam_re, dims="state")
            pm.Deterministic("lam_star_imag", lam_im, dims="state")

            # P side: exact OU transition of the portfolios, one Van Loan exponential:
            # expm(dt [[-A, V], [0, A']]) = [[., F12], [0, F22]], Phi = F22', Q = F22' F12,
            # and c = (I - Phi) mu (A is stable, hence invertible, and a = -A mu)
            M2 = pt.zeros((2 * n, 2 * n))
            M2 = pt.set_subtensor(M2[:n, :n], -A * dt)
            M2 = pt.set_subtensor(M2[:n, n:], V * dt)
            M2 = pt.set_subtensor(M2[n:, n:], A.T * dt)
            E2 = expm_pt(M2)
            Phi = E2[n:, n:].T
            c = mu - pt.dot(Phi, mu)
            Q = pt.dot(Phi, E2[:n, n:])
            Q = 0.5 * (Q + Q.T)
            pm.MvNormal(
                "portfolios",
                mu=c + pt.dot(Po[:-1], Phi.T),
                chol=pt.linalg.cholesky(Q),
                observed=Po[1:],
                dims=("date", "state"),
            )
            fitted = can.d + pt.dot(Po[1:], can.Z.T)  # (T-1, p)
            pm.Normal(
                "pricing_errors",
                mu=pt.dot(fitted, W_perp.T),
                sigma=sigma_e,
                observed=Y[1:] @ W_perp.T,
                dims=("date", "residual"),
            )
        self.model_ = model
        return model

    # ----------------------------------------------------------------------------- fitting
    def fit(
        self,
        yields,
        maturities=None,
        *,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed=None,
        sampler: str = "nutpie",
        dt=None,
        weights=None,
        target_accept: float | None = None,
        init_ml: bool = True,
        **kwargs,
    ) -> xr.DataTree:
        """Sample the posterior; returns an ArviZ DataTree (convergence checked).

        Parameters
        ----------
        yields, maturities, dt, weights : as :func:`bayesbond.affine_ml`.
        draws, tune, chains, random_seed, sampler, target_accept : passed to
            :func:`bayesbond.bayes.sampling.sample`.
        init_ml : bool
            Start the chains at the portfolio-likelihood ML estimate (a few seconds), which keeps
            the start inside the stable region.
        """
        from bayesbond.baselines.affine_ml import affine_ml
        from bayesbond.bayes.sampling import sample

        model = self.build(yields, maturities, dt, weights)
        D = self.data_
        initvals = None
        if init_ml:
            ml = affine_ml(
                D["Y"],
                D["tau"],
                self.n,
                method="portfolio",
                dt=D["dt"],
                weights=D["W"],
                n_starts=1,
                se=False,
            )
            self.ml_start_ = ml
            initvals = _initvals(ml, self.n)
        idata = sample(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            sampler=sampler,
            target_accept=target_accept,
            model_name=f"AffineModel(n_factors={self.n}, identification={self.identification!r})",
            var_names_check=["eig_raw", "k_inf", "Sigma_raw", "A", "mu", "log_sigma_e"],
            initvals=initvals,
            **kwargs,
        )
        idata.attrs["portfolio_weights"] = D["W"].ravel().tolist()
        idata.attrs["dt"] = D["dt"]
        self.idata_ = idata
        return idata

    # ----------------------------------------------------------------------------- outputs
    def _draws(self, idata, max_draws: int, rng=None):
        post = idata["posterior"].to_dataset()
        flat = post.stack(sample=("chain", "draw"))
        k = flat.sizes["sample"]
        idx = np.arange(k) if k <= max_draws else np.linspace(0, k - 1, max_draws).astype(int)
        return flat.isel(sample=idx)

    def bands(self, idata=None, prob: float = 0.94, max_draws: int = 500) -> xr.Dataset:
        """Posterior mean and equal-tailed bands of fitted yields, term premia, excess returns.

        Returns
        -------
        xarray.Dataset
            Variables ``fitted``, ``term_premium`` (model yield minus the expectations-hypothesis
            yield under P), ``expected_excess_return`` (instantaneous, per year,
            ``u(tau)'(Lambda P + lambda1)``), each with dims ``(stat, date, maturity)`` and
            ``stat`` in ``mean, lower, upper``; computed at the observed portfolios for
            ``max_draws`` evenly spaced posterior draws.
        """
        idata = self.idata_ if idata is None else idata
        D = self.data_
        if D is None:
            raise SpecError("call fit() (or build()) before bands()")
        flat = self._draws(idata, max_draws)
        tau, W = D["tau"], D["W"]
        Po = D["Y"][1:] @ W.T
        out = {"fitted": [], "term_premium": [], "expected_excess_return": []}
        for s in range(flat.sizes["sample"]):
            d = flat.isel(sample=s)
            eig = eigen_from_raw(np, d["eig_raw"].values, self.n)
            Sg = d["Sigma"].values
            can = canonical(np, eig, float(d["k_inf"]), Sg @ Sg.T, W, tau)
            A, a = d["A"].values, d["a"].values
            y = can.d + Po @ can.Z.T
            eh = eh_yields(A, a, float(can.delta0), can.delta1, Po, tau)
            Lam, l1 = can.A_star - A, can.a_star - a
            U = tau[:, None] * can.Z
            out["fitted"].append(y)
            out["term_premium"].append(y - eh)
            out["expected_excess_return"].append((Po @ Lam.T + l1) @ U.T)
        q = [(1 - prob) / 2, (1 + prob) / 2]
        coords = {"stat": ["mean", "lower", "upper"], "date": D["dates"][1:], "maturity": tau}
        ds = {}
        for k, v in out.items():
            arr = np.stack(v)
            stats = np.stack([arr.mean(0), *np.quantile(arr, q, axis=0)])
            ds[k] = xr.DataArray(stats, dims=("stat", "date", "maturity"), coords=coords)
        return xr.Dataset(ds, attrs={"prob": prob, "n_draws": int(flat.sizes["sample"])})

    def side_by_side(self, ml, idata=None) -> pd.DataFrame:
        """Table of ML estimates (with SEs) next to posterior means and sds, same labels.

        Columns: ``ml``, ``ml_se``, ``post_mean``, ``post_sd`` and ``z = (post_mean - ml) / ml_se``.
        """
        idata = self.idata_ if idata is None else idata
        post = idata["posterior"].to_dataset()
        names = factor_names(self.n)
        summ = ml.summary()
        rows = []
        for k in PARAM_NAMES:
            if k not in post:
                continue
            x = post[k].values.reshape(-1, *post[k].shape[2:])
            mean, sd = x.mean(0), x.std(0)
            for idx in np.ndindex(mean.shape):
                if k == "sigma_e":
                    label = "sigma_e"
                elif not idx:
                    label = k
                elif k.startswith("lam_star"):
                    label = f"{k}[{idx[0] + 1}]"
                else:
                    label = f"{k}[{','.join(names[i] for i in idx)}]"
                if label in summ.index:
                    rows.append(
                        (
                            label,
                            summ.loc[label, "estimate"],
                            summ.loc[label, "se"],
                            float(mean[idx]),
                            float(sd[idx]),
                        )
                    )
        df = pd.DataFrame(rows, columns=["parameter", "ml", "ml_se", "post_mean", "post_sd"])
        df = df.set_index("parameter")
        df["z"] = (df["post_mean"] - df["ml"]) / df["ml_se"]
        return df


def _eig_parts(pt, eig, n):
    """Real and absolute imaginary parts of the P* eigenvalues (ordered), in PyTensor."""
    k = n_real(n)
    if n <= 2:
        return eig.lam, pt.zeros(n)
    r_re = pt.sqrt(pt.maximum(eig.D, 0.0) + 1e-300)
    r_im = pt.sqrt(pt.maximum(-eig.D, 0.0) + 1e-300)
    re = pt.concatenate([eig.lam, pt.stack([eig.m + r_re, eig.m - r_re])])
    im = pt.concatenate([pt.zeros(k), pt.stack([r_im, r_im])])
    return re, im


def _initvals(ml, n):
    """Starting point of the chains from an ML fit (on the model's unconstrained scale)."""
    L = np.asarray(ml.Sigma)
    tril = np.tril_indices(n)
    raw = L[tril].copy()
    diag = np.array([i == j for i, j in zip(*tril, strict=True)])
    raw[diag] = np.log(raw[diag])
    A = np.asarray(ml.A)
    try:
        mu = np.linalg.solve(A, -np.asarray(ml.a))
    except np.linalg.LinAlgError:
        mu = np.zeros(n)
    return {
        "eig_raw": np.asarray(ml.params["eig_raw"]),
        "k_inf": float(ml.k_inf),
        "Sigma_raw": raw,
        "A": A,
        "mu": mu,
        "log_sigma_e": float(np.log(ml.sigma_e[0])),
    }

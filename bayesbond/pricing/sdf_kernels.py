r"""Numerics of the Bayesian SDF with spike-and-slab factor selection (pure numpy).

Bryzgalova, Huang and Julliard (2023, "Bayesian solutions for the factor zoo", Journal of
Finance), section II: the linear SDF ``m_t = 1 - (f_t - mu_f)' b`` prices the test assets,
``E[R] = Cov(R, f) b``. In units of correlations and Sharpe ratios the cross-section is

.. math::

    a = \lambda_c 1_N + C \lambda + \alpha, \qquad a_i = \mu_{R,i} / \sigma_{R,i},
    \quad C_{ij} = \operatorname{corr}(R_i, f_j), \quad \lambda_j = \sigma_{f,j} b_j,

with pricing errors ``alpha ~ N(0, sigma2 I)`` (OLS) or ``N(0, sigma2 Omega_R)`` (GLS, ``Omega_R``
the correlation matrix of the returns). The moments ``(mu, Sigma)`` of ``Y_t = (f_t, R_t)`` come
from their posterior under the Jeffreys prior; given one draw of them, the risk prices follow
from the Gibbs steps below. This module holds the moment draws (:func:`draw_moments`), the
cross-sectional statistics of a draw (:func:`cross_section`), the continuous spike-and-slab
Gibbs sampler (:func:`continuous_ss`), the exact enumeration of all ``2^K`` models under the
Dirac spike-and-slab (:func:`dirac_log_marginals`) and the prior Sharpe ratio mapping
(:func:`psi_from_prior_sharpe`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.special import gammaln

from bayesbond.pricing.sdf_gibbs import sweep_batch

__all__ = ["CrossSection", "continuous_ss", "cross_section", "dirac_log_marginals",
           "draw_moments", "max_sharpe", "psi_from_prior_sharpe", "rho_tilde", "MAX_DIRAC_K"]

#: the exact enumeration stops here (2^20 models per moment draw)
MAX_DIRAC_K = 20


class CrossSection(NamedTuple):
    """Cross-sectional statistics of ``n`` moment draws (``k1 = n0 + K`` regressors).

    ``G0 = X' W X``, ``g = X' W a`` and ``c = a' W a`` with ``X = [1_N, C]`` (``n0 = 1``) or
    ``C`` (``n0 = 0``) and ``W = I`` (OLS) or ``Omega_R^{-1}`` (GLS); ``C``, ``sd_f``, ``sd_R``
    and ``corr_f`` give the derived quantities (SDF loadings, SDF Sharpe ratio, implied expected
    returns).
    """

    G0: np.ndarray      # (n, k1, k1)
    g: np.ndarray       # (n, k1)
    c: np.ndarray       # (n,)
    C: np.ndarray       # (n, N, K)
    sd_f: np.ndarray    # (n, K)
    sd_R: np.ndarray    # (n, N)
    corr_f: np.ndarray  # (n, K, K)


# ---------------------------------------------------------------------------- first stage
def draw_moments(Y: np.ndarray, n: int, rng: np.random.Generator):
    r"""``n`` draws of ``(mu, Sigma)`` of ``Y_t ~ N(mu, Sigma)`` (iid) under the Jeffreys prior.

    Parameters
    ----------
    Y : ndarray (T, p)
    n : int
    rng : numpy.random.Generator

    Returns
    -------
    mu : ndarray (n, p)
    Sigma : ndarray (n, p, p)

    Notes
    -----
    With ``p(mu, Sigma) ∝ |Sigma|^{-(p+1)/2}``, ``S = sum_t (Y_t - Ybar)(Y_t - Ybar)'``:

    .. math:: \Sigma \mid Y \sim \mathcal{IW}(T - 1, S), \qquad
              \mu \mid \Sigma, Y \sim N(\bar Y, \Sigma / T).

    Bartlett: with ``S = U U'`` (lower Cholesky) and ``A`` lower triangular,
    ``A_ii^2 ~ chi2(T - 1 - i)`` (``i = 0..p-1``), ``A_ij ~ N(0, 1)`` below the diagonal,
    ``W = U^{-T} A A' U^{-1} ~ Wishart(T - 1, S^{-1})``, so ``Sigma = W^{-1} = G G'`` with
    ``G = U A^{-T}``, and ``mu = Ybar + G z / sqrt(T)``. Needs ``T - 1 >= p``.
    """
    T, p = Y.shape
    ybar = Y.mean(axis=0)
    E = Y - ybar
    U = np.linalg.cholesky(E.T @ E)
    A = np.zeros((n, p, p))
    lo = np.tril_indices(p, -1)
    A[:, lo[0], lo[1]] = rng.standard_normal((n, lo[0].size))
    diag = np.arange(p)
    A[:, diag, diag] = np.sqrt(rng.chisquare(T - 1 - diag, size=(n, p)))
    G = U @ np.swapaxes(np.linalg.inv(A), 1, 2)
    Sigma = G @ np.swapaxes(G, 1, 2)
    mu = ybar + np.einsum("nij,nj->ni", G, rng.standard_normal((n, p))) / np.sqrt(T)
    return mu, Sigma


def cross_section(mu: np.ndarray, Sigma: np.ndarray, K: int, *, gls: bool = False,
                  intercept: bool = True) -> CrossSection:
    """:class:`CrossSection` of moment draws ``mu (n, K + N)``, ``Sigma (n, K + N, K + N)``
    (factors first)."""
    sd = np.sqrt(np.einsum("nii->ni", Sigma))
    corr = Sigma / (sd[:, :, None] * sd[:, None, :])
    C = corr[:, K:, :K]
    a = mu[:, K:] / sd[:, K:]
    n, N = a.shape
    X = np.concatenate([np.ones((n, N, 1)), C], axis=2) if intercept else C
    if gls:
        L = np.linalg.cholesky(corr[:, K:, K:])
        Z = np.linalg.solve(L, np.concatenate([X, a[:, :, None]], axis=2))
        X, a = Z[:, :, :-1], Z[:, :, -1]
    Xt = np.swapaxes(X, 1, 2)
    return CrossSection(Xt @ X, np.einsum("nkj,nj->nk", Xt, a), np.einsum("ni,ni->n", a, a),
                        C, sd[:, :K], sd[:, K:], corr[:, :K, :K])


# ----------------------------------------------------------------------------- the prior
def rho_tilde(R: np.ndarray, f: np.ndarray, intercept: bool = True) -> np.ndarray:
    """Sample correlations ``corr(R_i, f_j)`` (N, K), cross-sectionally demeaned when the
    cross-section has an intercept (the demeaned part is what the slopes must explain)."""
    rho = np.corrcoef(np.column_stack([f, R]), rowvar=False)[f.shape[1]:, :f.shape[1]]
    return rho - rho.mean(axis=0) if intercept else rho


def max_sharpe(R: np.ndarray) -> float:
    """In-sample maximal Sharpe ratio of the test assets, ``sqrt(mu' Sigma^{-1} mu)``."""
    mu = R.mean(axis=0)
    S = np.cov(R, rowvar=False).reshape(R.shape[1], R.shape[1])
    return float(np.sqrt(mu @ np.linalg.solve(S, mu)))


def psi_from_prior_sharpe(R: np.ndarray, f: np.ndarray, prior_sharpe: float, aw: float = 1.0,
                          bw: float = 1.0, intercept: bool = True):
    r"""Slab scales ``psi_j`` implied by a prior Sharpe ratio of the SDF.

    Returns
    -------
    psi : ndarray (K,)
        ``psi_j = psi0 * rho_tilde_j' rho_tilde_j``.
    psi0 : float
    sr_max : float
        In-sample maximal Sharpe ratio of the test assets (per period).

    Notes
    -----
    BHJ (2023), eq. (27): with ``lambda_j | gamma_j, sigma2 ~ N(0, r(gamma_j) psi_j sigma2)``,

    .. math:: \frac{E_\pi[SR_f^2 \mid \sigma^2]}{E_\pi[SR_\alpha^2 \mid \sigma^2]}
              \approx \psi_0 \eta, \qquad
              \eta = \frac{a_\omega}{a_\omega + b_\omega}
                     \frac{\sum_j \tilde\rho_j'\tilde\rho_j}{N},

    and splitting the maximal squared Sharpe ratio ``SR_max^2 = SR_f^2 + SR_alpha^2`` gives the
    prior Sharpe ratio of the factors ``SR_f = SR_max sqrt(psi0 eta / (1 + psi0 eta))``, so

    .. math:: \psi_0 = \frac{SR_f^2}{(SR_{\max}^2 - SR_f^2)\, \eta}.

    A factor barely correlated with the test assets (small ``rho_tilde_j' rho_tilde_j``) gets a
    slab close to zero: a useless factor is shrunk to a zero price.
    """
    rt = rho_tilde(R, f, intercept)
    rr = np.einsum("nk,nk->k", rt, rt)
    eta = aw / (aw + bw) * rr.sum() / R.shape[1]
    sr_max = max_sharpe(R)
    psi0 = prior_sharpe**2 / ((sr_max**2 - prior_sharpe**2) * eta)
    return psi0 * rr, float(psi0), sr_max


def information_ratio(R: np.ndarray, f: np.ndarray, psi: np.ndarray, gls: bool = False,
                      intercept: bool = True) -> np.ndarray:
    r"""What the data say about each risk price relative to its slab prior, at the sample moments.

    Returns
    -------
    ndarray (K,)
        ``psi_j (X' W X)_jj``: the precision of ``lambda_j`` in the cross-section (given the
        other prices) over the precision of its slab ``N(0, psi_j sigma2)``; ``sigma2`` cancels.

    Notes
    -----
    With ``v = psi_j (X'WX)_jj`` and the t-ratio ``z`` of ``lambda_j``, the Bayes factor of
    slab against a point spike is ``(1 + v)^{-1/2} exp(z^2 v / (2 (1 + v)))``, which is about 1
    whenever ``v << 1``: the data cannot move the inclusion probability away from its prior
    ``aw / (aw + bw)``. A useless factor (no correlation with the test assets) has both a small
    ``(X'WX)_jj`` and a small ``psi_j``, so ``v`` is of order ``(N/T)^2``.
    """
    K = f.shape[1]
    Y = np.column_stack([f, R])
    cs = cross_section(Y.mean(axis=0)[None], np.cov(Y, rowvar=False)[None], K, gls=gls,
                       intercept=intercept)
    return np.asarray(psi, float) * np.diagonal(cs.G0[0])[int(intercept):]


# ------------------------------------------------------------------- continuous spike-and-slab
def continuous_ss(moments: Callable[[np.random.Generator, int], CrossSection],
                  rngs: list[np.random.Generator], *, n_draws: int, n_burn: int,
                  psi: np.ndarray, r: float = 1e-3, aw: float = 1.0, bw: float = 1.0,
                  n0: int = 1, d_c: float = 1e-5, N: int, batch: int = 250,
                  sigma2_start: float = 1.0, sweeps: int = 1,
                  sigma2_prior: tuple[float, float] = (0.0, 0.0),
                  engine: str = "auto") -> dict[str, np.ndarray]:
    r"""Gibbs sampler of the continuous spike-and-slab SDF, one chain per generator.

    Parameters
    ----------
    moments : callable ``(rng, n) -> CrossSection``
        ``n`` cross-sections from the posterior of the moments (:func:`draw_moments` and
        :func:`cross_section`), one per iteration; a fixed cross-section repeated makes the
        sampler the exact Gibbs sampler of the second stage alone.
    rngs : list of numpy.random.Generator
        One per chain (independent streams).
    n_draws, n_burn : int
        Kept iterations and burn-in per chain.
    psi : ndarray (K,)
        Slab scales; ``r`` the spike's relative scale; ``aw, bw`` the Beta prior of ``omega``.
    n0 : {0, 1}
        Intercept ``lambda_c`` (prior ``N(0, sigma2 / d_c)``) or none.
    N : int
        Number of test assets.
    sigma2_prior : (a0, b0)
        ``sigma2 ~ IG(a0, b0)``; ``(0, 0)`` (default) is the paper's ``p(sigma2) ∝ 1/sigma2``
        (a proper prior is for simulation-based calibration).

    Returns
    -------
    dict of ndarray (chains, n_draws, ...)
        ``lambda_all`` (k1), ``gamma`` (K), ``omega`` (K), ``sigma2``, ``sdf_sharpe``,
        ``sdf_loading`` (K), ``expected_return`` (N).

    Notes
    -----
    Prior: ``lambda_j | gamma_j, sigma2 ~ N(0, r(gamma_j) psi_j sigma2)``, ``r(1) = 1``,
    ``r(0) = r``; ``gamma_j | omega_j ~ Bernoulli(omega_j)``, ``omega_j ~ Beta(aw, bw)``;
    ``p(sigma2) ∝ 1 / sigma2``. With ``D = diag(d_c, 1 / (r(gamma) psi))``, ``v_j(gamma) =
    r(gamma) psi_j`` and ``G0, g, c`` of the iteration's moment draw one sweep draws
    (BHJ 2023, Propositions 3 and 4, with the ``gamma`` step blocked as below)

    .. math::

        \lambda &\sim N\big((G_0 + D)^{-1} g,\ \sigma^2 (G_0 + D)^{-1}\big), \\
        \log\frac{P(\gamma_j = 1 \mid \lambda_{-j})}{P(\gamma_j = 0 \mid \lambda_{-j})}
            &= \log\frac{\omega_j}{1 - \omega_j} - \frac12\log\frac{1 + v_j(1) G_{0,jj}}
            {1 + v_j(0) G_{0,jj}} + \frac{e_j^2}{2\sigma^2}\Big(\frac{v_j(1)}{1 + v_j(1)
            G_{0,jj}} - \frac{v_j(0)}{1 + v_j(0) G_{0,jj}}\Big), \\
        \lambda_j \mid \gamma_j, \lambda_{-j} &\sim N\Big(\frac{e_j}{G_{0,jj} + 1/v_j},
            \frac{\sigma^2}{G_{0,jj} + 1/v_j}\Big), \qquad
            e_j = g_j - \sum_{l \ne j} G_{0,jl} \lambda_l, \\
        \omega_j &\sim \mathrm{Beta}(a_\omega + \gamma_j, b_\omega + 1 - \gamma_j), \\
        \sigma^2 &\sim \mathcal{IG}\Big(\frac{N + k_1}{2} + a_0,
            \frac{c - 2\lambda' g + \lambda' G_0 \lambda + \lambda' D \lambda}{2} + b_0\Big),

    the ``(gamma_j, lambda_j)`` pairs in turn, ``sigma2`` with ``D`` of the new ``gamma``. The
    paper draws ``gamma_j | lambda_j`` instead, whose log-odds
    ``log(omega/(1-omega)) + log(r)/2 + lambda_j^2 (1/r - 1) / (2 psi_j sigma2)`` let a factor
    in the spike enter with probability about ``sqrt(r)`` per sweep whatever the data say;
    since every iteration also takes a new moment draw, such a slow ``gamma`` chain does not
    average the conditional posteriors ``p(gamma | moments)`` but a posterior given an average
    of many moment draws (on the five-factor test economy at T = 600: 0.70 against the exact
    0.85 for a priced factor). With ``lambda_j`` integrated out of the ``gamma_j`` step the
    sampler matches the exact Dirac enumeration (:func:`dirac_ss`) for small ``r``.
    ``sweeps > 1`` reuses each moment draw for that many sweeps (keeping the last). Derived
    per draw: SDF loadings
    ``b_j = lambda_j / sigma_f,j``, the SDF's Sharpe ratio
    ``sd(m) / E(m) = sqrt(lambda' corr_f lambda)`` and the implied expected excess returns
    ``E[R_i] = sigma_R,i C_i' lambda``.

    The Cholesky factor of ``G0 + D`` is taken after scaling to unit diagonal (the spike's
    precision ``1 / (r psi_j)`` of a useless factor can exceed ``10^7``). ``engine``: see
    :func:`bayesbond.pricing.sdf_gibbs.sweep_batch`.
    """
    chains = len(rngs)
    K = psi.size
    k1 = n0 + K
    total = n_burn + n_draws
    a0, b0 = (float(x) for x in sigma2_prior)
    shape_s = 0.5 * (N + k1) + a0
    out = {"lambda_all": np.empty((chains, n_draws, k1)),
           "gamma": np.empty((chains, n_draws, K), dtype=np.int8),
           "omega": np.empty((chains, n_draws, K)), "sigma2": np.empty((chains, n_draws)),
           "sdf_sharpe": np.empty((chains, n_draws)), "sdf_loading": np.empty((chains, n_draws, K)),
           "expected_return": np.empty((chains, n_draws, N))}
    # chain state: gamma dispersed across chains, omega = 1/2, sigma2 given
    gamma = np.stack([rng.random(K) < 0.5 for rng in rngs])
    omega = np.full((chains, K), 0.5)
    sigma2 = np.full(chains, float(sigma2_start))
    done = 0
    while done < total:
        B = min(batch, total - done)
        cs = [moments(rng, B) for rng in rngs]                       # per chain, B draws
        G0, g, c = (np.ascontiguousarray(np.stack([getattr(x, k) for x in cs], axis=1))
                    for k in ("G0", "g", "c"))                       # (B, chains, ...)
        S = B * sweeps  # the random numbers of every sweep, drawn per chain

        z, u, zs, w1, w0, e = (np.ascontiguousarray(np.stack(x, axis=1)) for x in zip(
            *[(rng.standard_normal((S, k1)), rng.random((S, K)), rng.standard_normal((S, K)),
               rng.beta(aw + 1, bw, (S, K)), rng.beta(aw, bw + 1, (S, K)),
               rng.standard_gamma(shape_s, S)) for rng in rngs], strict=True))
        lam_b = np.empty((B, chains, k1))
        gam_b = np.empty((B, chains, K), dtype=np.bool_)
        om_b = np.empty((B, chains, K))
        s2_b = np.empty((B, chains))
        sweep_batch(G0, g, c, z, u, zs, w1, w0, e, gamma, omega, sigma2, psi, float(r),
                    float(d_c), int(n0), int(sweeps), b0, lam_b, gam_b, om_b, s2_b, engine=engine)
        keep = slice(max(n_burn - done, 0), B)
        j0, j1 = max(done - n_burn, 0), done + B - n_burn
        if j1 > j0:
            for ch in range(chains):
                sl = (ch, slice(j0, j1))
                lam = lam_b[keep, ch]
                out["lambda_all"][sl] = lam
                out["gamma"][sl] = gam_b[keep, ch]
                out["omega"][sl] = om_b[keep, ch]
                out["sigma2"][sl] = s2_b[keep, ch]
                for k, v in derived(cs[ch], lam[:, n0:], keep).items():
                    out[k][sl] = v
        done += B
    return out


def derived(cs: CrossSection, lam_f: np.ndarray, keep=slice(None)) -> dict[str, np.ndarray]:
    """SDF loadings, SDF Sharpe ratio and implied expected returns of draws ``lam_f (n, K)``
    at the cross-sections ``cs[keep]`` (see :func:`continuous_ss`, Notes)."""
    corr_f = cs.corr_f[keep]
    sr2 = np.einsum("ni,nij,nj->n", lam_f, corr_f, lam_f)
    return {"sdf_sharpe": np.sqrt(np.maximum(sr2, 0.0)),
            "sdf_loading": lam_f / cs.sd_f[keep],
            "expected_return": cs.sd_R[keep] * np.einsum("nik,nk->ni", cs.C[keep], lam_f)}


# ------------------------------------------------------------------------ Dirac spike-and-slab
def dirac_log_marginals(G0: np.ndarray, g: np.ndarray, c: np.ndarray, d: np.ndarray, N: int,
                        n0: int = 1) -> np.ndarray:
    r"""Log marginal likelihood of every one of the ``2^K`` models, for each cross-section.

    Parameters
    ----------
    G0, g, c : ndarray (n, k1, k1), (n, k1), (n,)
        ``X'WX``, ``X'Wa``, ``a'Wa`` (:class:`CrossSection`); the first ``n0`` regressors (the
        intercept) are in every model.
    d : ndarray (k1,)
        Prior precisions (in units of ``1 / sigma2``) of the coefficients when included:
        ``d_c`` for the intercept, ``1 / psi_j`` for the factors.
    N : int
        Number of test assets.

    Returns
    -------
    ndarray (n, 2^K)
        Column ``m`` is the model including factor ``j`` iff bit ``j`` of ``m`` is set.

    Notes
    -----
    Under model ``S`` (Dirac spike: ``lambda_j = 0`` for ``j`` not in ``S``),
    ``a = X_S lambda_S + alpha``, ``lambda_S | sigma2 ~ N(0, sigma2 D_S^{-1})``,
    ``alpha ~ N(0, sigma2 I)`` (after whitening by ``W``) and ``p(sigma2) ∝ 1/sigma2``, so
    ``a | sigma2, S ~ N(0, sigma2 V_S)`` with ``V_S = I + X_S D_S^{-1} X_S'`` and

    .. math::

        \log p(a \mid S) = \log\Gamma(N/2) - \tfrac N2 \log(\pi\, SSR_S)
            - \tfrac12 \log|V_S|, \qquad
        |V_S| = \frac{|G_{SS}|}{|D_S|}, \quad
        SSR_S = c - g_S' G_{SS}^{-1} g_S,

    with ``G = G0 + D``. All subsets are enumerated at once by sweeping one index at a time
    (Schur complements): the table after step ``j`` holds, for each subset ``S`` of the first
    ``j`` factors, ``log|G_SS|``, ``g_S' G_SS^{-1} g_S`` and the Schur complement of ``G_SS``
    on the factors ``j..K-1`` (and of ``g``); including factor ``j`` pivots on its diagonal
    entry ``h = H_jj``: ``log|G| += log h``, ``q += g_j^2 / h``,
    ``H <- H - H_{.j} H_{j.} / h``. Work and memory: ``sum_j 2^j (K - j)^2`` per cross-section.
    """
    n, k1 = g.shape
    K = k1 - n0
    if K > MAX_DIRAC_K:
        raise ValueError(f"{K} factors: the exact enumeration of 2^K models stops at K = "
                         f"{MAX_DIRAC_K}; use method='continuous'")
    H = G0 + np.diag(d)
    h = g.copy()
    q = np.zeros(n)
    ld = np.zeros(n)  # log|G_SS| - log|D_S|
    for j in range(n0):  # the intercept: in every model
        piv = H[:, 0, 0]
        q = q + h[:, 0] ** 2 / piv
        ld = ld + np.log(piv) - np.log(d[j])
        col = H[:, 1:, 0]
        H = H[:, 1:, 1:] - col[:, :, None] * col[:, None, :] / piv[:, None, None]
        h = h[:, 1:] - col * (h[:, :1] / piv[:, None])
    H, h, q, ld = H[:, None], h[:, None], q[:, None], ld[:, None]  # (n, subsets, ...)
    for j in range(K):
        piv = H[..., 0, 0]
        h0 = h[..., 0]
        col = H[..., 1:, 0]
        H_out, h_out = H[..., 1:, 1:], h[..., 1:]
        H_in = H_out - col[..., :, None] * col[..., None, :] / piv[..., None, None]
        h_in = h_out - col * (h0 / piv)[..., None]
        q = np.concatenate([q, q + h0**2 / piv], axis=1)
        ld = np.concatenate([ld, ld + np.log(piv) - np.log(d[n0 + j])], axis=1)
        H = np.concatenate([H_out, H_in], axis=1)
        h = np.concatenate([h_out, h_in], axis=1)
    ssr = np.maximum(c[:, None] - q, np.finfo(float).tiny)
    return gammaln(N / 2) - N / 2 * np.log(np.pi * ssr) - 0.5 * ld


def log_model_prior(K: int, aw: float = 1.0, bw: float = 1.0) -> np.ndarray:
    """Log prior of the ``2^K`` models (bit order of :func:`dirac_log_marginals`): with
    ``omega_j ~ Beta(aw, bw)`` integrated out the ``gamma_j`` are independent
    ``Bernoulli(aw / (aw + bw))``."""
    bits = (np.arange(2**K)[:, None] >> np.arange(K)) & 1
    p = aw / (aw + bw)
    return bits.sum(axis=1) * np.log(p) + (K - bits.sum(axis=1)) * np.log1p(-p)


def model_bits(K: int) -> np.ndarray:
    """``(2^K, K)`` 0/1 membership of the models in the order of :func:`dirac_log_marginals`."""
    return ((np.arange(2**K)[:, None] >> np.arange(K)) & 1).astype(np.int8)


def dirac_ss(moments: Callable[[np.random.Generator, int], CrossSection],
             rngs: list[np.random.Generator], *, n_draws: int, psi: np.ndarray,
             aw: float = 1.0, bw: float = 1.0, n0: int = 1, d_c: float = 1e-5, N: int,
             batch: int | None = None) -> dict[str, np.ndarray]:
    r"""Exact draws of the Dirac spike-and-slab SDF, one stream per generator.

    For each moment draw the posterior probabilities of all ``2^K`` models are computed exactly
    (:func:`dirac_log_marginals` plus :func:`log_model_prior`); one model is drawn from them,
    then ``sigma2 | S ~ IG(N / 2, SSR_S / 2)`` and
    ``lambda_S | sigma2, S ~ N(G_SS^{-1} g_S, sigma2 G_SS^{-1})``, ``lambda_j = 0`` outside
    ``S``. The draws are independent (no Markov chain).

    Returns
    -------
    dict of ndarray (chains, n_draws, ...)
        As :func:`continuous_ss` (without ``omega``), plus ``model_probability`` (2^K): the
        exact model probabilities averaged over the moment draws of each chain (the
        Rao-Blackwellised posterior model probabilities).
    """
    chains = len(rngs)
    K = psi.size
    k1 = n0 + K
    d = np.concatenate([np.full(n0, d_c), 1.0 / psi])
    prior = log_model_prior(K, aw, bw)
    bits = model_bits(K).astype(bool)
    if batch is None:  # bound the enumeration's memory to about 64 MB a batch
        work = sum(2**j * (K - j + 1) ** 2 for j in range(K + 1))
        batch = int(np.clip(2**23 // max(work, 1), 1, 500))
    out = {"lambda_all": np.zeros((chains, n_draws, k1)),
           "gamma": np.empty((chains, n_draws, K), dtype=np.int8),
           "sigma2": np.empty((chains, n_draws)), "sdf_sharpe": np.empty((chains, n_draws)),
           "sdf_loading": np.empty((chains, n_draws, K)),
           "expected_return": np.empty((chains, n_draws, N)),
           "model_probability": np.zeros((chains, 2**K))}
    for ch, rng in enumerate(rngs):
        done = 0
        while done < n_draws:
            B = min(batch, n_draws - done)
            cs = moments(rng, B)
            lp = dirac_log_marginals(cs.G0, cs.g, cs.c, d, N, n0) + prior
            lp -= lp.max(axis=1, keepdims=True)
            p = np.exp(lp)
            p /= p.sum(axis=1, keepdims=True)
            out["model_probability"][ch] += p.sum(axis=0)
            u = rng.random(B)
            m = np.minimum((np.cumsum(p, axis=1) < u[:, None]).sum(axis=1), 2**K - 1)
            z = rng.standard_normal((B, k1))
            e = rng.standard_gamma(N / 2, B)
            lam = np.zeros((B, k1))
            for i in range(B):
                idx = np.concatenate([np.arange(n0), n0 + np.flatnonzero(bits[m[i]])])
                Gs = cs.G0[i][np.ix_(idx, idx)] + np.diag(d[idx])
                L = np.linalg.cholesky(Gs)
                w = np.linalg.solve(L, cs.g[i, idx])
                s2 = 0.5 * max(cs.c[i] - w @ w, np.finfo(float).tiny) / e[i]
                lam[i, idx] = np.linalg.solve(L.T, w + np.sqrt(s2) * z[i, :idx.size])
                out["sigma2"][ch, done + i] = s2
            sl = (ch, slice(done, done + B))
            out["lambda_all"][sl] = lam
            out["gamma"][sl] = bits[m]
            for k, v in derived(cs, lam[:, n0:]).items():
                out[k][sl] = v
            done += B
        out["model_probability"][ch] /= n_draws
    return out

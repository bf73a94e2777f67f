"""Simulated economies with a known linear SDF, for the checks of ``bb.pricing.select_factors``.

Five factors, monthly-like units (unit factor variance):

* ``strong1``, ``strong2``: priced (SDF loadings ``b = 0.15``), with dispersed betas;
* ``useless``: no covariance with the test assets (zero betas, independent of the noise), an
  AR(1) with coefficient 0.3;
* ``weak``: priced (``b = 0.15``) but with betas of size 0.05 (barely identified);
* ``unpriced``: dispersed betas but a zero SDF loading.

Factors are Student-t with 5 degrees of freedom scaled to unit variance (heavy tails). Test
asset returns are ``R_t = mu + B f_t + e_t`` with ``e_t ~ N(0, I)`` and expected returns set by
the SDF plus small pricing errors: ``mu_i = (B Sigma_f b)_i + sigma_R,i alpha_i``,
``alpha_i ~ N(0, alpha_sd^2)`` in Sharpe-ratio units (the cross-section's ``sigma2``). The true
risk prices per unit correlation are ``lambda_j = sigma_f,j b_j``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FACTORS = ["strong1", "strong2", "useless", "weak", "unpriced"]
B_TRUE = np.array([0.2, 0.2, 0.0, 0.2, 0.0])


def economy(T: int, seed: int, N: int = 25, alpha_sd: float = 0.05, ar: float = 0.3,
            beta_sd: float = 0.8, implied: bool = False):
    """``(test_assets, factors, lambda_true)``: DataFrames dates x assets / factors; with
    ``implied=True`` also the SDF-implied expected returns ``B Sigma_f b`` (asset,)."""
    rng = np.random.default_rng(seed)
    K = len(FACTORS)
    f = rng.standard_t(5, (T, K)) / np.sqrt(5 / 3)
    for t in range(1, T):  # AR(1) useless factor with unit variance
        f[t, 2] = ar * f[t - 1, 2] + np.sqrt(1 - ar**2) * f[t, 2]
    B = np.column_stack([rng.normal(0.5, beta_sd, N), rng.normal(0.0, beta_sd, N), np.zeros(N),
                         rng.normal(0.0, 0.05, N), rng.normal(0.0, beta_sd, N)])
    sd_R = np.sqrt((B**2).sum(axis=1) + 1.0)
    mu = B @ B_TRUE + sd_R * rng.normal(0.0, alpha_sd, N)
    R = mu + f @ B.T + rng.standard_normal((T, N))
    dates = pd.period_range("1970-01", periods=T, freq="M")
    out = (pd.DataFrame(R, index=dates, columns=[f"p{i:02d}" for i in range(N)]),
           pd.DataFrame(f, index=dates, columns=FACTORS), B_TRUE.copy())
    return (*out, B @ B_TRUE) if implied else out

"""A simulated economy with known premia for the pricing tests (hostile: heavy tails,
autocorrelated factors, pricing errors)."""

import numpy as np
import pandas as pd

NAMES = ["strong1", "strong2", "useless", "weak", "unpriced"]
PREMIA = ["intercept", "strong1", "strong2", "weak", "unpriced"]


def economy(seed, T=600, N=25, ar=0.1, df=5, alpha_sd=0.002):
    """Returns ``(test_assets, factors, truth)``.

    Two priced strong factors (premia 0.5% and 0.4% a month), a useless one (zero covariance with
    every test asset), a weak one (betas N(0, 0.08^2), premium 0.2%) and an unpriced strong one.
    Factors are AR(1) with coefficient ``ar`` and t(``df``) innovations; residuals are t(``df``);
    each asset has a pricing error N(0, ``alpha_sd``^2) (a misspecified model, where two-pass
    inference on a useless factor fails most: Kan and Zhang 1999). ``truth`` holds the
    pseudo-true premia: the population OLS cross-section of mean returns on ``[1, betas]``
    without the useless factor, whose premium is not identified.
    """
    rng = np.random.default_rng(seed)
    sd_f = np.array([0.03, 0.02, 0.02, 0.02, 0.02])
    e = rng.standard_t(df, (T + 100, 5)) / np.sqrt(df / (df - 2))
    f = np.zeros((T + 100, 5))
    for t in range(1, T + 100):
        f[t] = ar * f[t - 1] + np.sqrt(1 - ar**2) * e[t]
    f = f[100:] * sd_f
    B = np.column_stack([rng.normal(1, 0.5, N), rng.normal(0.5, 0.5, N), np.zeros(N),
                         rng.normal(0, 0.08, N), rng.normal(1, 0.5, N)])
    lam = np.array([0.005, 0.004, 0.0, 0.002, 0.0])
    mu = B @ lam + rng.normal(0, alpha_sd, N)
    eps = rng.standard_t(df, (T, N)) / np.sqrt(df / (df - 2)) * 0.02
    R = mu + f @ B.T + eps
    X = np.column_stack([np.ones(N), np.delete(B, 2, axis=1)])
    truth = dict(zip(PREMIA, np.linalg.lstsq(X, mu, rcond=None)[0], strict=True))
    dates = pd.date_range("1900-01-31", periods=T, freq="ME")
    return (pd.DataFrame(R, index=dates, columns=[f"a{i}" for i in range(N)]),
            pd.DataFrame(f, index=dates, columns=NAMES), truth)

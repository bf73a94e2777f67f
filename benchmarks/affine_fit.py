"""Benchmark: affine term-structure estimation.

1. Kalman-filter log-likelihood of a 3-factor Gaussian affine model, 400 months x 8 maturities,
   bayesbond (``bayesbond.core.kalman.kalman_filter``) against statsmodels' state-space Kalman
   filter (``statsmodels.tsa.statespace.kalman_filter.KalmanFilter``) on the same model, same run;
   the two log-likelihoods must agree (statsmodels with its steady-state tolerance 0; its default
   1e-19 freezes the gain early and is off by ~1e-8 relative). Target: at most 5 ms.
2. ML fit (``affine_ml``) on the Liu-Wu Treasury curve 1990-2022, 8 maturities (wall time, RMSE).
3. With ``--bayes``: the Bayesian fit (``AffineModel``, 4 chains x 1000 draws by default) on the
   same data: wall time, diagnostics and the largest |posterior mean - ML| / ML SE.
   Target: 15 minutes.

Run: ``python benchmarks/affine_fit.py [--bayes] [--draws 1000] [--chains 4] [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _best_of(fn, repeat=7, number=20):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def _model(T=400, seed=0):
    from bayesbond.core.affine_canonical import canonical, eigen_from_raw, eigen_to_raw
    from bayesbond.core.ou import exact_transition

    tau = np.array([0.25, 0.5, 1, 2, 3, 5, 7, 10.0])
    x = (tau - tau.mean()) / tau.std()
    W = np.linalg.qr(np.vander(x, 3, increasing=True))[0].T
    Sigma = np.array([[0.02, 0, 0], [-0.006, 0.01, 0], [0.001, -0.002, 0.004]])
    V = Sigma @ Sigma.T
    can = canonical(np, eigen_from_raw(np, eigen_to_raw([-0.03], -0.63, 0.1), 3), 0.0015, V, W, tau)
    A = np.array([[-0.15, 0.3, 0.1], [0.05, -0.6, 0.2], [0.0, 0.1, -1.2]])
    a = -A @ np.array([0.14, 0.03, 0.002])
    Phi, c, Q = exact_transition(A, a, V, 1 / 12)
    rng = np.random.default_rng(seed)
    X = np.empty((T, 3))
    X[0] = np.linalg.solve(np.eye(3) - Phi, c)
    L = np.linalg.cholesky(Q)
    for t in range(1, T):
        X[t] = c + Phi @ X[t - 1] + L @ rng.standard_normal(3)
    h = np.full(len(tau), 5e-4**2)
    y = can.d + X @ can.Z.T + np.sqrt(h) * rng.standard_normal((T, len(tau)))
    return y, Phi, c, Q, can.Z, can.d, h


def bench_kalman():
    from statsmodels.tsa.statespace.kalman_filter import KalmanFilter

    from bayesbond.core.kalman import kalman_filter, kalman_loglik

    y, Phi, c, Q, Z, d, h = _model()
    T, p = y.shape
    n = Phi.shape[0]
    ours = kalman_filter(y, Phi, c, Q, Z, d, h).loglik

    def sm_filter(tolerance):
        kf = KalmanFilter(k_endog=p, k_states=n, k_posdef=n, tolerance=tolerance)
        kf.bind(np.asfortranarray(y.T))
        kf["design"], kf["obs_intercept"], kf["obs_cov"] = Z, d, np.diag(h)
        kf["transition"], kf["state_intercept"], kf["selection"] = Phi, c, np.eye(n)
        kf["state_cov"] = Q
        kf.initialize_stationary()
        return kf

    kf_default, kf_exact = sm_filter(1e-19), sm_filter(0.0)
    theirs = kf_exact.loglike()
    fast = kalman_loglik(y, Phi, c, Q, Z, d, h)
    t_ours = _best_of(lambda: kalman_loglik(y, Phi, c, Q, Z, d, h))
    t_full = _best_of(lambda: kalman_filter(y, Phi, c, Q, Z, d, h))
    t_sm = _best_of(lambda: kf_default.loglike())
    t_sm0 = _best_of(lambda: kf_exact.loglike())
    print(f"Kalman log-likelihood, {T} months x {p} maturities x {n} factors")
    print(f"  bayesbond kalman_loglik         {1e3 * t_ours:8.3f} ms   loglik {fast:.8f}")
    print(f"  bayesbond kalman_filter (all)   {1e3 * t_full:8.3f} ms   loglik {ours:.8f}")
    print(
        f"  statsmodels (default tolerance) {1e3 * t_sm:8.3f} ms   loglik "
        f"{kf_default.loglike():.8f}"
    )
    print(f"  statsmodels (tolerance 0)       {1e3 * t_sm0:8.3f} ms   loglik {theirs:.8f}")
    print(
        f"  ratio statsmodels/bayesbond {t_sm / t_ours:.2f}x (default), {t_sm0 / t_ours:.2f}x "
        f"(exact); |bayesbond - statsmodels exact| {abs(ours - theirs):.2e}"
    )
    assert abs(ours - theirs) < 1e-6 * abs(theirs), "log-likelihoods differ"
    assert abs(fast - ours) < 1e-10 * abs(ours), "kalman_loglik and kalman_filter differ"


def _liuwu(data_dir: Path):
    from bayesbond.data.readers import read_liuwu

    curve = read_liuwu(data_dir / "liuwu_zcb_monthly_1to360m.csv")
    mats = [0.25, 0.5, 1, 2, 3, 5, 7, 10]
    cols = [col for col in curve.columns if any(abs(col - m) < 1e-9 for m in mats)]
    return curve.loc["1990":"2022", cols]


def bench_ml(Y):
    from bayesbond.baselines.affine_ml import affine_ml

    t0 = time.perf_counter()
    res = affine_ml(Y, n_factors=3, n_starts=3)
    dt = time.perf_counter() - t0
    rmse = 1e4 * np.sqrt(np.mean(res.residuals.to_numpy() ** 2))
    print(
        f"affine_ml (Kalman, 3 starts, SEs) on Liu-Wu 1990-2022, {Y.shape[0]} x {Y.shape[1]}: "
        f"{dt:.1f} s, RMSE {rmse:.2f} bp, loglik {res.loglik:.2f}"
    )
    t0 = time.perf_counter()
    port = affine_ml(Y, n_factors=3, n_starts=3, method="portfolio")
    print(f"affine_ml (portfolio likelihood, 3 starts, SEs): {time.perf_counter() - t0:.1f} s")
    return port


def bench_bayes(Y, ml, draws, chains):
    from bayesbond.bayes.affine_model import AffineModel
    from bayesbond.bayes.sampling import diagnostics

    model = AffineModel(n_factors=3)
    t0 = time.perf_counter()
    idata = model.fit(Y, draws=draws, tune=draws, chains=chains, random_seed=20261122)
    dt = time.perf_counter() - t0
    print(
        f"AffineModel.fit {chains} chains x {draws} draws (+{draws} tune): {dt / 60:.2f} min "
        f"(compile included)"
    )
    print(f"  {diagnostics(idata)}")
    tab = model.side_by_side(ml, idata)
    print(
        f"  max |posterior mean - ML| / ML se = {np.nanmax(np.abs(tab['z'])):.2f} "
        f"over {len(tab)} parameters"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bayes", action="store_true", help="also time the Bayesian fit")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = ap.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1, user_api="blas")
    except ImportError:  # pragma: no cover
        limits = None
    bench_kalman()
    if limits is not None:
        limits.restore_original_limits()
    if not args.data_dir.is_dir():
        print(f"no data folder {args.data_dir}: skipping the real-data fits")
        return
    Y = _liuwu(args.data_dir)
    ml = bench_ml(Y)
    if args.bayes:
        bench_bayes(Y, ml, args.draws, args.chains)


if __name__ == "__main__":
    main()

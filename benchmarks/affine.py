"""Benchmark: yields of a 3-factor Gaussian affine model for many states and maturities.

Workload: 10,000 state vectors x 360 monthly maturities (1 month .. 30 years) of an EFM(2)-type
3-factor model. Ours: ``GaussianAffine(...).yields(X, tau)`` -- closed-form loadings for the whole
maturity grid (eigen / phi-function route; the exact augmented-expm route is timed too), then one
matrix product. Peer: the Riccati ODEs for ``(u, v)`` integrated with ``scipy.integrate.solve_ivp``
once per maturity (DOP853, rtol 1e-10, atol 1e-13), followed by the same matrix product. The
per-maturity peer is timed on every ``--peer-every``-th maturity and scaled to the full grid (the
printout says so); a single dense ``solve_ivp`` run with ``t_eval`` on all maturities is shown as a
second, stronger peer. Everything runs on one thread (BLAS/OpenMP pinned before numpy is imported).

Run: ``python benchmarks/affine.py [--states 10000] [--maturities 360] [--peer-every 10]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

from bayesbond.core.affine import GaussianAffine  # noqa: E402

try:  # belt and braces: also limit an already-initialised BLAS pool
    from threadpoolctl import threadpool_limits  # noqa: E402
except ImportError:  # pragma: no cover
    threadpool_limits = None


def make_model() -> GaussianAffine:
    A = np.array([[-1.0, 1.0, 0.0], [0.0, -0.3, 0.3], [0.0, 0.0, -0.08]])
    Lambda = np.array([[0.2, -0.2, 0.0], [0.0, 0.05, -0.05], [0.0, 0.0, 0.02]])
    Sigma = np.array([[0.012, 0.0, 0.0], [0.004, 0.009, 0.0], [-0.002, 0.003, 0.006]])
    return GaussianAffine(A, [0.0, 0.0, 0.0036], Sigma, Lambda=Lambda, lambda1=[0.001, 0.0, -4e-4])


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def ours(X, tau, method="auto"):
    m = make_model()  # a fresh object each call: no cached loadings
    return m.yields(X, tau, method=method)


def riccati_one(m: GaussianAffine, t: float):
    n = m.n

    def rhs(_, y):
        u = y[:n]
        return np.concatenate(
            [m.A_star.T @ u + m.delta1, [-m.delta0 - m.a_star @ u + 0.5 * u @ m.V @ u]]
        )

    sol = solve_ivp(rhs, (0.0, t), np.zeros(n + 1), method="DOP853", rtol=1e-10, atol=1e-13)
    return sol.y[:n, -1], sol.y[n, -1]


def peer_per_maturity(X, tau):
    m = make_model()
    uv = [riccati_one(m, t) for t in tau]
    u = np.array([p[0] for p in uv])
    v = np.array([p[1] for p in uv])
    return (X @ u.T - v) / tau


def peer_dense(X, tau):
    m = make_model()
    n = m.n

    def rhs(_, y):
        u = y[:n]
        return np.concatenate(
            [m.A_star.T @ u + m.delta1, [-m.delta0 - m.a_star @ u + 0.5 * u @ m.V @ u]]
        )

    sol = solve_ivp(
        rhs, (0.0, tau[-1]), np.zeros(n + 1), t_eval=tau, method="DOP853", rtol=1e-10, atol=1e-13
    )
    return (X @ sol.y[:n] - sol.y[n]) / tau


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=10_000)
    ap.add_argument("--maturities", type=int, default=360)
    ap.add_argument("--peer-every", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    if threadpool_limits is not None:
        threadpool_limits(1)

    rng = np.random.default_rng(0)
    X = 0.04 + rng.normal(scale=0.01, size=(args.states, 3))
    tau = np.arange(1, args.maturities + 1) / 12.0
    sub = tau[:: args.peer_every]

    t_ours, Y = best_time(lambda: ours(X, tau), args.repeat)
    t_expm, Y_expm = best_time(lambda: ours(X, tau, "expm"), max(2, args.repeat // 3))
    m = make_model()
    t_load, _ = best_time(lambda: make_model().loadings(tau), args.repeat)
    m.yields(X[:1], tau)  # warm the loadings cache: what remains is the product [X, 1] [B'; c]
    t_prod, _ = best_time(lambda: m.yields(X, tau), args.repeat)

    t_peer_sub, Y_peer = best_time(lambda: peer_per_maturity(X, sub), 1)
    t_peer = t_peer_sub * len(tau) / len(sub)
    t_dense, Y_dense = best_time(lambda: peer_dense(X, tau), 2)

    idx = np.arange(0, len(tau), args.peer_every)
    err_peer = np.max(np.abs(Y[:, idx] - Y_peer))
    err_dense = np.max(np.abs(Y - Y_dense))
    err_expm = np.max(np.abs(Y - Y_expm))

    print(
        f"3-factor Gaussian affine yields: {args.states} states x {len(tau)} maturities, 1 thread"
    )
    print(f"  ours (eigen route, loadings + product)     {t_ours * 1e3:9.2f} ms  (target <= 50 ms)")
    print(f"     of which loadings                        {t_load * 1e3:9.2f} ms")
    print(f"     of which matrix product [X, 1] [B'; c]   {t_prod * 1e3:9.2f} ms")
    print(f"  ours (exact augmented-expm route)          {t_expm * 1e3:9.2f} ms")
    print(
        f"  peer solve_ivp per maturity (timed on {len(sub)} maturities, scaled x"
        f"{len(tau) / len(sub):g})  {t_peer * 1e3:9.1f} ms"
    )
    print(f"  peer solve_ivp once with t_eval (dense)    {t_dense * 1e3:9.2f} ms")
    print(f"  speed-up vs per-maturity solve_ivp         {t_peer / t_ours:9.1f}x  (target >= 100x)")
    print(f"  speed-up vs dense solve_ivp                {t_dense / t_ours:9.1f}x")
    print(
        f"  max |yield difference|: vs per-maturity {err_peer:.2e}, vs dense {err_dense:.2e}, "
        f"eigen vs expm {err_expm:.2e}"
    )
    ok = max(err_peer, err_dense, err_expm) < 1e-9
    print(f"  results agree to 1e-9: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""OU estimation speed: ``bb.ou_ml`` vs statsmodels AR(1), and the Bayesian 1-D OU vs a naive
PyMC AR(1) whose likelihood walks the series step by step (``pytensor.scan``).

    python benchmarks/ou.py [--n-ml 1000000] [--n-bayes 10000] [--draws 500]

Both comparisons run on the same simulated data in one run and print side-by-side ratios;
estimates are checked to agree.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import bayesbond as bb


def best_of(fn, repeat=3):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def bench_ml(n: int, dt: float) -> None:
    from statsmodels.tsa.ar_model import AutoReg

    x = bb.OU.vasicek(0.5, 0.04, 0.01).simulate(0.04, n_steps=n - 1, dt=dt, rng=1)[0]
    t_ours, res = best_of(lambda: bb.ou_ml(x, dt))
    t_sm, fit = best_of(lambda: AutoReg(x, lags=1, trend="c").fit())
    c, b = fit.params
    s2 = fit.sigma2  # ML residual variance RSS / N
    kappa = -np.log(b) / dt
    theta = c / (1 - b)
    sigma = np.sqrt(s2 * 2 * kappa / (1 - b * b))
    ref = np.array([kappa, theta, sigma])
    ours = np.array([res.kappa, res.theta, res.sigma])
    rel = np.max(np.abs(ours / ref - 1))
    print(f"\n[ML] 1-D OU, {n:,} observations (dt = {dt:.4g})")
    print(f"{'':28s}{'kappa':>12s}{'theta':>12s}{'sigma':>12s}{'time [s]':>12s}")
    print(f"{'bb.ou_ml (closed form + se)':28s}" + "".join(f"{v:12.6g}" for v in ours)
          + f"{t_ours:12.4f}")
    print(f"{'statsmodels AutoReg(1)':28s}" + "".join(f"{v:12.6g}" for v in ref) + f"{t_sm:12.4f}")
    print(f"max relative difference {rel:.1e}; speed-up {t_sm / t_ours:.1f}x (target >= 20x)")
    assert rel < 1e-8, "estimates differ"


def naive_model(x: np.ndarray, dt: float, m, s_x, s_v):
    """The AR(1)/OU likelihood written the way one would first try: a scan over the steps."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    with pm.Model() as model:
        kappa = pm.LogNormal("kappa", mu=np.log(0.5), sigma=1.5)
        theta = pm.Normal("theta", mu=m, sigma=10 * s_x)
        sigma = pm.HalfNormal("sigma", sigma=5 * s_v)
        b = pt.exp(-kappa * dt)
        q = sigma**2 * (1 - pt.exp(-2 * kappa * dt)) / (2 * kappa)
        xs = pt.as_tensor_variable(x)

        def step(y, z, b, theta, q):
            e = y - theta - b * (z - theta)
            return -0.5 * pt.log(2 * np.pi * q) - 0.5 * e**2 / q

        terms = pytensor.scan(step, sequences=[xs[1:], xs[:-1]], non_sequences=[b, theta, q],
                              return_updates=False)
        pm.Potential("loglik", pt.sum(terms))
    return model


def bench_bayes(n: int, dt: float, draws: int) -> None:
    from bayesbond.bayes.sampling import diagnostics, sample

    x = bb.OU.vasicek(0.5, 0.04, 0.01).simulate(0.04, n_steps=n - 1, dt=dt, rng=2)[0]
    kw = dict(draws=draws, tune=draws, chains=2, random_seed=3)
    names = ["kappa", "theta", "sigma"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        ours = bb.OUModel().fit(x, dt, log_likelihood=False, **kw)
        t_ours_total = time.perf_counter() - t
        naive = naive_model(x, dt, x.mean(), x.std(), np.std(np.diff(x)) / np.sqrt(dt))
        t = time.perf_counter()
        peer = sample(naive, **kw)
        t_peer_total = time.perf_counter() - t
    rows = []
    for label, idata, total in (("bb.OUModel (suff. stats)", ours, t_ours_total),
                                ("naive PyMC scan AR(1)", peer, t_peer_total)):
        d = diagnostics(idata, names)
        t_s = float(idata["posterior"].attrs.get("sampling_time", total))
        means = [float(idata["posterior"][v].mean()) for v in names]
        rows.append((label, means, d.min_ess_bulk, t_s, total, d.min_ess_bulk / t_s))
    print(f"\n[Bayes] 1-D OU, {n:,} observations, 2 chains x {draws} draws (+{draws} tune)")
    print(f"{'':26s}{'kappa':>10s}{'theta':>10s}{'sigma':>10s}{'min ESS':>9s}"
          f"{'sample s':>10s}{'total s':>9s}{'ESS/s':>9s}")
    for label, means, ess, t_s, total, rate in rows:
        print(f"{label:26s}" + "".join(f"{v:10.4g}" for v in means)
              + f"{ess:9.0f}{t_s:10.2f}{total:9.1f}{rate:9.0f}")
    print(f"ESS/s ratio (sampling only) {rows[0][5] / rows[1][5]:.1f}x (target >= 5x); "
          f"wall-clock ratio including compilation {rows[1][4] / rows[0][4]:.1f}x")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-ml", type=int, default=1_000_000)
    p.add_argument("--n-bayes", type=int, default=10_000)
    p.add_argument("--draws", type=int, default=500)
    args = p.parse_args(argv)
    bench_ml(args.n_ml, 1 / 252)
    bench_bayes(args.n_bayes, 1 / 12, args.draws)


if __name__ == "__main__":
    main()

"""Gaussian affine term-structure model on the US Treasury curve: ML (Kalman filter) and Bayesian.

Fits a 3-factor model in the canonical form of Joslin, Singleton and Zhu (2011) to the Liu-Wu
zero-coupon curve (maturities 3m .. 10y), prints the parameters under P and P*, the fitting error
and the term premia; with ``--bayes`` also the PyMC posterior next to the ML estimates and the
posterior bands of the 10-year term premium.

Run::

    python examples/affine_treasury.py [--fast] [--bayes] [--data-dir ../shared/data]

``--fast`` uses 2000-2022 without standard errors (well under a minute) and a short Bayesian run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import bayesbond as bb
from bayesbond.data.readers import read_liuwu

MATURITIES = [0.25, 0.5, 1, 2, 3, 5, 7, 10]


def load(data_dir: Path, start: str, end: str):
    curve = read_liuwu(data_dir / "liuwu_zcb_monthly_1to360m.csv")
    cols = [c for c in curve.columns if any(abs(c - m) < 1e-9 for m in MATURITIES)]
    return curve.loc[start:end, cols]


def main(argv=None):
    ap = argparse.ArgumentParser(description="Affine term-structure model on Treasury yields")
    ap.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    ap.add_argument("--fast", action="store_true", help="short sample, no SEs, short sampling")
    ap.add_argument("--bayes", action="store_true", help="also fit the Bayesian model")
    args = ap.parse_args(argv)

    start = "2000" if args.fast else "1990"
    Y = load(args.data_dir, start, "2022")
    print(
        f"Liu-Wu curve {Y.index[0]:%Y-%m} .. {Y.index[-1]:%Y-%m}: {Y.shape[0]} months x "
        f"{Y.shape[1]} maturities"
    )

    t0 = time.perf_counter()
    ml = bb.affine_ml(Y, n_factors=3, n_starts=1 if args.fast else 3, se=not args.fast)
    print(f"\nKalman-filter ML ({time.perf_counter() - t0:.1f} s): {ml}")
    print("fitting RMSE by maturity (bp):")
    print((1e4 * ml.rmse).round(2).to_string())
    print(
        "\nP* eigenvalues (real, |imag|):", np.round(ml.lam_star, 4), np.round(ml.lam_star_imag, 4)
    )
    print("A (P drift of level, slope, curvature):\n", np.round(ml.A, 3))
    print("A_star:\n", np.round(ml.A_star, 3))
    tp = ml.term_premia
    print("\n10-year term premium (%), last 6 months:")
    print((100 * tp[10.0].tail(6)).round(3).to_string())
    model = ml.to_model()  # a bb.GaussianAffine in the portfolio coordinates
    y_model = model.yields(ml.states.to_numpy()[-1], [1.0, 10.0, 20.0])
    print("model yields 1y, 10y, 20y at the last date (%):", np.round(100 * y_model, 3))

    if args.bayes:
        draws, chains = (200, 2) if args.fast else (1000, 4)
        port = bb.affine_ml(Y, n_factors=3, method="portfolio", n_starts=1)
        am = bb.AffineModel(n_factors=3)
        t0 = time.perf_counter()
        idata = am.fit(Y, draws=draws, tune=draws, chains=chains, random_seed=1)
        print(
            f"\nBayesian fit ({chains} x {draws} draws, {time.perf_counter() - t0:.0f} s): "
            f"{idata.attrs['diagnostics']}"
        )
        print(am.side_by_side(port, idata).round(5).head(20).to_string())
        bands = am.bands(idata, max_draws=200)
        tp10 = bands["term_premium"].sel(maturity=10.0).isel(date=-1)
        print(
            "10-year term premium, last month (%): mean {:.3f}, 94% band [{:.3f}, {:.3f}]".format(
                *(100 * tp10.sel(stat=s).item() for s in ("mean", "lower", "upper"))
            )
        )


if __name__ == "__main__":
    main()

"""Which factors price US corporate and Treasury bonds? Factor selection over a small bond zoo.

Data (``../shared/data``, internal use only):

* test assets: excess returns of the ICE BofA corporate indices AAA, BBB, 10-15y, 15y+ and the
  high-yield master (``corp_tr_returns_monthly.csv`` minus the bill), and of Treasury zero-coupon
  bonds of 1..30 years held for one month, from the Liu-Wu curve
  (``liuwu_zcb_monthly_1to360m.csv`` through ``bb.treasury_excess_returns``, simple returns);
* candidate factors: CMKT (ICE IG master minus the bill), TERM and DEF (Goyal-Welch), the AQR
  fixed-income Value, Momentum, Carry and Defensive premia, and the equity MKT, SMB and HML
  (Fama-French).

It runs, on the months every series covers:

1. two-pass Fama-MacBeth (``bb.pricing.fama_macbeth``, Shanken errors) and the Bayesian
   Fama-MacBeth (``bb.pricing.bayesian_fama_macbeth``): risk premia with 90% intervals;
2. the Bayesian SDF with spike-and-slab selection (``bb.pricing.select_factors``, BHJ 2023), by
   Gibbs sampling and exactly over all 2^10 models (``method="dirac"``), with the zero-beta
   intercept free (BHJ's default) and set to zero: posterior inclusion probabilities, which of
   them the data identify, the BMA-SDF's Sharpe ratio and its pricing errors;

and states its findings, computed from the numbers. The prior Sharpe ratio of the SDF is half
the test assets' maximal in-sample Sharpe ratio.

Usage::

    python examples/bond_factor_zoo.py [--fast] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesbond as bb
from bayesbond.pricing.sdf_kernels import max_sharpe

FILES = ("corp_tr_returns_monthly.csv", "goyal_welch_bond_factors_monthly.csv",
         "aqr_century_factor_premia_monthly.csv", "ff3_monthly.csv",
         "liuwu_zcb_monthly_1to360m.csv")
ICE = {"BAMLCC0A1AAATRIV": "AAA", "BAMLCC0A4BBBTRIV": "BBB", "BAMLCC7A01015YTRIV": "IG 10-15y",
       "BAMLCC8A015PYTRIV": "IG 15y+", "BAMLHYH0A0HYM2TRIV": "HY"}
MARKET = "BAMLCC0A0CMTRIV"
AQR = {"Fixed income Value": "FI_VAL", "Fixed income Momentum": "FI_MOM",
       "Fixed income Carry": "FI_CARRY", "Fixed income Defensive": "FI_DEF"}
ZERO_YEARS = [1, 2, 3, 4, 5, 7, 10, 15, 20, 30]


def check_data_dir(data_dir: Path) -> None:
    """Stop with one line naming the missing folder or file and ``--data-dir``."""
    if not data_dir.is_dir():
        sys.exit(f"bond_factor_zoo.py: error: data folder {data_dir} not found; pass "
                 "--data-dir FOLDER holding the files of ../shared/data")
    for name in FILES:
        if not (data_dir / name).is_file():
            sys.exit(f"bond_factor_zoo.py: error: {data_dir / name} not found; pass --data-dir "
                     "FOLDER holding the files of ../shared/data")


def _monthly(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, index_col=0)
    df.index = pd.to_datetime(df.index) + pd.offsets.MonthEnd(0)
    return df


def load(data_dir: Path):
    """Test-asset excess returns and candidate factors (decimals per month), complete months."""
    ret = _monthly(data_dir / "corp_tr_returns_monthly.csv")
    gw = _monthly(data_dir / "goyal_welch_bond_factors_monthly.csv")
    aqr = _monthly(data_dir / "aqr_century_factor_premia_monthly.csv")
    ff = bb.readers.read_french(data_dir / "ff3_monthly.csv")
    ff.index = ff.index + pd.offsets.MonthEnd(0)
    curve = bb.readers.read_liuwu(data_dir / "liuwu_zcb_monthly_1to360m.csv")
    zeros = bb.treasury_excess_returns(curve, maturities=ZERO_YEARS, kind="simple")
    zeros.columns = [f"UST {n:g}y" for n in zeros.columns]
    corp = ret[list(ICE)].sub(gw["rf"], axis=0).rename(columns=ICE)
    assets = corp.join(zeros, how="inner")
    factors = pd.DataFrame({"CMKT": ret[MARKET] - gw["rf"], "TERM": gw["TERM"],
                            "DEF": gw["DEF"]})
    factors = factors.join(aqr[list(AQR)].rename(columns=AQR), how="inner")
    factors = factors.join(ff[["Mkt-RF", "SMB", "HML"]].rename(columns={"Mkt-RF": "MKT"}),
                           how="inner")
    both = assets.join(factors, how="inner").dropna()  # the months every series covers
    return both[assets.columns], both[factors.columns]


def interval(lo: float, hi: float) -> str:
    return "excludes zero" if lo > 0 or hi < 0 else "holds zero"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fast", action="store_true", help="short chains")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    args = ap.parse_args(argv)
    check_data_dir(args.data_dir)
    draws, tune = (500, 100) if args.fast else (5000, 1000)
    R, F = load(args.data_dir)
    T, N, K = len(R), R.shape[1], F.shape[1]
    print(f"{N} test assets x {K} candidate factors, {T} months "
          f"({R.index[0]:%Y-%m} .. {R.index[-1]:%Y-%m}, every series complete)")
    print("  assets: " + ", ".join(R.columns))
    print("  factors: " + ", ".join(F.columns))

    # 1. risk premia: two-pass against Bayesian Fama-MacBeth
    fm = bb.pricing.fama_macbeth(R, F)
    bfm = bb.pricing.bayesian_fama_macbeth(R, F, draws=draws, random_seed=1)
    lam = bfm["posterior"]["lambda"].stack(s=("chain", "draw")).transpose("factor", "s")
    lo, hi = np.quantile(lam.values, [0.05, 0.95], axis=1)
    z = 1.6448536269514722
    table = pd.DataFrame({"FM": fm.risk_premia, "FM lo": fm.risk_premia - z * fm.se,
                          "FM hi": fm.risk_premia + z * fm.se,
                          "BFM mean": lam.values.mean(1), "BFM lo": lo, "BFM hi": hi},
                         index=[str(f) for f in lam["factor"].values]) * 1200
    print(f"\nRisk premia, % per year: two-pass FM with 90% Shanken intervals beside the "
          f"Bayesian FM's 90% posterior intervals ({bfm.attrs['diagnostics']})")
    print(table.round(2).to_string())
    r2 = bfm["posterior"]["r2"].values.ravel()
    print(f"cross-sectional R2: two-pass {fm.rsquared:.2f}; posterior mean {r2.mean():.2f}, "
          f"90% [{np.quantile(r2, 0.05):.2f}, {np.quantile(r2, 0.95):.2f}]")

    # 2. factor selection in the SDF
    sr = max_sharpe(R.to_numpy())
    prior = 0.5 * sr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bb.ConvergenceWarning)
        fits = {m: bb.pricing.select_factors(R, F, prior_sharpe=prior, method=m, draws=draws,
                                             tune=tune, random_seed=2)
                for m in ("continuous", "dirac")}
        # excess returns: theory sets the zero-beta intercept to zero; impose it (exact)
        fits["no intercept"] = bb.pricing.select_factors(R, F, prior_sharpe=prior,
                                                         method="dirac", intercept=False,
                                                         draws=draws, random_seed=3)
    s = fits["continuous"]["summary"]
    sel = pd.DataFrame({
        "PIP (Gibbs)": s["inclusion_probability"].to_series(),
        "PIP (exact)": fits["dirac"]["summary"]["inclusion_probability"].to_series(),
        "PIP (no icpt)": fits["no intercept"]["summary"]["inclusion_probability"].to_series(),
        "identified": s["identified"].to_series(),
        "info ratio": s["information_ratio"].to_series(),
        "price lo": s["lambda_lower"].to_series(), "price hi": s["lambda_upper"].to_series()})
    print(f"\nSDF selection (prior Sharpe ratio {prior:.3f} a month = half the maximal "
          f"{sr:.3f}; prior inclusion 1/2; {fits['continuous'].attrs['diagnostics']}):")
    print(sel.sort_values("PIP (exact)", ascending=False).round(3).to_string())
    ssr = fits["continuous"]["posterior"]["sdf_sharpe"].values.ravel() * np.sqrt(12)
    nf = fits["continuous"]["posterior"]["n_factors"].values.ravel()
    err = (s["sample_mean_return"] - s["expected_return_mean"]).to_series() * 1200  # factor part
    print(f"BMA-SDF Sharpe ratio (annualised): mean {ssr.mean():.2f}, 90% "
          f"[{np.quantile(ssr, 0.05):.2f}, {np.quantile(ssr, 0.95):.2f}]; factors in the SDF: "
          f"mean {nf.mean():.1f}; pricing errors (mean minus factor-implied, % a year): RMS "
          f"{np.sqrt((err**2).mean()):.2f}, largest {err.abs().idxmax()} {err.abs().max():.2f}")

    # findings, from the numbers
    print("\nFindings:")
    pip = sel["PIP (exact)"]
    ident = sel["identified"]
    for label, mask in (("evidence for (PIP >= 0.75)", ident & (pip >= 0.75)),
                        ("evidence against (PIP <= 0.25)", ident & (pip <= 0.25)),
                        ("undecided (identified, 0.25 < PIP < 0.75)",
                         ident & (pip > 0.25) & (pip < 0.75))):
        names = [f"{f} ({pip[f]:.2f})" for f in sel.index[mask]]
        print(f"- {label}: {', '.join(names) or 'none'}.")
    weak = sel.index[~ident].tolist()
    print(f"- not identified (information ratio < 1: the test assets barely load on them, the "
          f"probability is the prior's): {', '.join(weak) or 'none'}.")
    gap = float((sel["PIP (Gibbs)"] - sel["PIP (exact)"]).abs().max())
    print(f"- the Gibbs sampler's inclusion probabilities are within {gap:.3f} of the exact "
          "enumeration (continuous spike r = 0.001 against a point mass).")
    lc = fits["continuous"]["posterior"]["lambda_c"].values.ravel()
    lc_lo, lc_hi = np.quantile(lc, [0.05, 0.95])
    print(f"- the common cross-sectional intercept lambda_c (a Sharpe ratio a month that every "
          f"test asset earns whatever its factor exposure) is {lc.mean():.3f}, 90% "
          f"[{lc_lo:.3f}, {lc_hi:.3f}]: it {interval(lc_lo, lc_hi)}.")
    for key, what in (("continuous", "with the intercept free"),
                      ("no intercept", "with lambda_c = 0 imposed")):
        band = fits[key]["summary"]
        inside = ((band["expected_return_lower"] <= band["sample_mean_return"])
                  & (band["sample_mean_return"] <= band["expected_return_upper"])).to_series()
        print(f"- {what}, the BMA-SDF's 90% band of the factor-implied expected return holds "
              f"the sample mean of {int(inside.sum())} of {N} test assets (outside: "
              f"{', '.join(inside.index[~inside]) or 'none'}).")
    top0 = sel["PIP (no icpt)"].idxmax()
    print(f"- with lambda_c = 0 imposed the most likely factor is {top0} (exact PIP "
          f"{sel.loc[top0, 'PIP (no icpt)']:.2f}, against {sel.loc[top0, 'PIP (exact)']:.2f} "
          "with the intercept free).")
    fm_only = [f for f in table.index if f != "intercept"
               and interval(table.loc[f, "FM lo"], table.loc[f, "FM hi"]) == "excludes zero"
               and interval(table.loc[f, "BFM lo"], table.loc[f, "BFM hi"]) == "holds zero"]
    both = [f for f in table.index if f != "intercept"
            and interval(table.loc[f, "BFM lo"], table.loc[f, "BFM hi"]) == "excludes zero"]
    print(f"- premia whose 90% Bayesian interval excludes zero: {', '.join(both) or 'none'}; "
          f"significant for two-pass FM only: {', '.join(fm_only) or 'none'}.")
    print(f"- the cross-sectional R2 ({fm.rsquared:.2f}) says little: {N} test assets against "
          f"{K + 1} cross-sectional coefficients leave {N - K - 1} degrees of freedom.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

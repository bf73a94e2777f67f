"""Bayesian Fama-MacBeth: the two-pass limit, a known-truth economy, the DataTree contract."""

import warnings

import numpy as np
import pytest

import bayesbond as bb
from bayesbond.errors import ConvergenceWarning, DataError

from ._economy import PREMIA, economy
from .test_fama_macbeth import _simulate


@pytest.mark.parametrize("gls", [False, True])
def test_flat_prior_large_T_gives_two_pass_and_shanken(gls):
    """T = 5000: posterior mean = two-pass lambda and posterior sd = Shanken SE, up to the
    Monte Carlo error of 4000 independent draws (1.6% of an sd for the mean, 1.1% for the sd)
    and the O(1/sqrt(T)) = 1.4% difference between the posterior and the sampling distribution."""
    R, F = _simulate(T=5000, N=10, K=3, seed=1, start="1800-01-31")
    idata = bb.pricing.bayesian_fama_macbeth(R, F, draws=1000, chains=4, gls=gls, random_seed=2)
    fm = bb.pricing.fama_macbeth(R, F, gls=gls)
    lam = idata["posterior"]["lambda"]
    z = (lam.mean(("chain", "draw")).values - fm.risk_premia.values) / fm.se.values
    ratio = lam.std(("chain", "draw")).values / fm.se.values
    print(f"gls={gls}: (post. mean - FM)/SE {z.round(3)}; post. sd / Shanken SE {ratio.round(3)}")
    assert np.all(np.abs(z) < 0.1)
    assert np.all(np.abs(ratio - 1) < 0.06)
    r2 = idata["posterior"]["r2"].values
    assert abs(np.median(r2) - fm.rsquared) < 0.02


def test_datatree_contract():
    R, F = _simulate(T=120, N=8, K=2, seed=4)
    a = bb.pricing.bayesian_fama_macbeth(R, F, draws=300, chains=2, random_seed=5)
    b = bb.pricing.bayesian_fama_macbeth(R, F, draws=300, chains=2, random_seed=5)
    post = a["posterior"]
    assert post["lambda"].dims == ("chain", "draw", "factor")
    assert list(post["factor"].values) == ["intercept", "f0", "f1"]
    assert post["r2"].dims == ("chain", "draw")
    assert np.all((post["r2"].values >= 0) & (post["r2"].values <= 1))
    np.testing.assert_array_equal(post["lambda"].values, b["posterior"]["lambda"].values)
    assert a.attrs["family"] == "bayes_fm" and "R-hat" in a.attrs["diagnostics"]
    assert a.attrs["data_hash"].startswith("sha256:") and "bayesbond_version" in a.attrs
    assert a["observed_data"]["test_assets"].dims == ("date", "asset")
    assert "log_likelihood" not in a.children
    c = bb.pricing.bayesian_fama_macbeth(R, F, draws=200, chains=2, intercept=False,
                                         random_seed=1)
    assert list(c["posterior"]["factor"].values) == ["f0", "f1"]
    with pytest.raises(DataError, match="T = 9, N = 8, K = 2"):
        bb.pricing.bayesian_fama_macbeth(R.iloc[:9], F.iloc[:9], draws=10)


def _rates(seeds, draws):
    """Coverage of the 90% intervals, useless-factor zero rates (Bayes vs two-pass FM)."""
    cover = {k: [] for k in PREMIA}
    cover_fm = {k: [] for k in PREMIA}
    zero_bayes, reject_fm = [], []
    for s in seeds:
        R, F, truth = economy(s)
        with warnings.catch_warnings():  # independent draws: an R-hat of 1.011 is chance
            warnings.simplefilter("ignore", ConvergenceWarning)
            idata = bb.pricing.bayesian_fama_macbeth(R, F, draws=draws, chains=2,
                                                     random_seed=s)
        lam = idata["posterior"]["lambda"]
        lo = lam.quantile(0.05, dim=("chain", "draw"))
        hi = lam.quantile(0.95, dim=("chain", "draw"))
        fm = bb.pricing.fama_macbeth(R, F)
        ci = fm.conf_int(0.90)
        for k in PREMIA:
            cover[k].append(float(lo.sel(factor=k)) <= truth[k] <= float(hi.sel(factor=k)))
            cover_fm[k].append(ci.loc[k, "lower"] <= truth[k] <= ci.loc[k, "upper"])
        zero_bayes.append(float(lo.sel(factor="useless")) <= 0 <= float(hi.sel(factor="useless")))
        reject_fm.append(abs(fm.tvalues["useless"]) > 1.6449)
    out = ({k: float(np.mean(v)) for k, v in cover.items()},
           {k: float(np.mean(v)) for k, v in cover_fm.items()},
           float(np.mean(zero_bayes)), float(np.mean(reject_fm)))
    print(f"\n{len(seeds)} seeds; 90% coverage, Bayes: {out[0]}\n  two-pass (Shanken): {out[1]}"
          f"\n  useless factor: Bayes interval contains 0 in {out[2]:.3f} of seeds; two-pass FM "
          f"rejects 0 at 10% in {out[3]:.3f}")
    return out


def test_useless_factor_fast():
    cover, _, zero_bayes, reject_fm = _rates(range(50), draws=400)
    assert zero_bayes >= 0.8
    assert reject_fm >= (1 - zero_bayes) + 0.15
    assert min(cover[k] for k in ("strong1", "strong2")) >= 0.65


@pytest.mark.validate
def test_useless_factor_and_coverage_many_seeds():
    """200 seeds: coverage within the binomial band 0.9 +/- 3 sd (0.836..0.964)."""
    cover, _, zero_bayes, reject_fm = _rates(range(200), draws=1000)
    for k in ("intercept", "strong1", "strong2", "weak", "unpriced"):
        assert 0.836 <= cover[k] <= 0.964, (k, cover[k])
    assert zero_bayes >= 0.9
    assert reject_fm >= 2 * (1 - zero_bayes) + 0.2

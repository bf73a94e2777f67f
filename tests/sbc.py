"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari and Gelman 2018).

One SBC replicate: draw ``theta ~ p(theta)`` from the prior the model uses, simulate data from
the model's own generative story ``y ~ p(y | theta)``, fit, and rank the true value of every
scalar element among ``L`` thinned posterior draws. If the sampler computes the posterior the
model defines, each rank is uniform on ``0..L`` (the data-averaged posterior is the prior).

The runner fits through the model contract (:meth:`bayesbond.bayes.base.BayesianModel.fit`),
so every replicate after the first reuses the compiled sampler (the family's ``compile_key``):
the runner asserts it.

Notes
-----
With ``r`` the rank of ``theta_true`` among ``L`` posterior draws (``r = #{draws < true}``),
ranks are grouped into ``J`` bins of equal width over ``0..L`` and compared with the uniform
counts ``reps / J`` by Pearson's chi-square with ``J - 1`` degrees of freedom (Talts et al.,
section 4.1); ``J`` is chosen so that every expected count is at least 5. The ranks of one
parameter's elements (e.g. one per rating bucket) are pooled into one test: they are
exchangeable. Posterior draws are thinned to ``L`` evenly spaced draws (chains concatenated) so
that autocorrelation does not make the ranks too peaked. Data-dependent default priors would
break the identity (the prior would move with the data the model is fitted to), so every SBC
here fixes its priors explicitly (or, where the family scales its priors by the data, fits a
test-side subclass whose scales are fixed).

Reference: Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018).
Validating Bayesian inference algorithms with simulation-based calibration. arXiv:1804.06788.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.stats as st

from bayesbond.bayes import sampling


@dataclass
class SBCResult:
    """Ranks and figures of one SBC run."""

    name: str
    reps: int
    L: int
    ranks: dict[str, np.ndarray]            # parameter -> (reps, n_elements) ints in 0..L
    divergences: list[int] = field(default_factory=list)
    max_rhat: list[float] = field(default_factory=list)
    min_ess_bulk: list[float] = field(default_factory=list)
    reused: list[bool] = field(default_factory=list)
    compile_s: list[float] = field(default_factory=list)
    sampling_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def pvalues(self) -> dict[str, float]:
        """Chi-square p-value of rank uniformity per parameter (its elements pooled)."""
        return {k: rank_uniformity_pvalue(r.ravel(), self.L) for k, r in self.ranks.items()}

    def min_p(self) -> float:
        return min(self.pvalues().values())

    def summary(self) -> str:
        ps = self.pvalues()
        lines = [f"SBC {self.name}: {self.reps} reps, L = {self.L} thinned draws, "
                 f"wall {self.wall_s:.0f} s, compile reused in "
                 f"{sum(self.reused)}/{len(self.reused)} fits (first compile "
                 f"{self.compile_s[0]:.0f} s, then at most {max(self.compile_s[1:], default=0):.1f}"
                 f" s; sampling {np.median(self.sampling_s):.1f} s per fit)",
                 f"  divergences: total {sum(self.divergences)} (reps with any: "
                 f"{sum(d > 0 for d in self.divergences)}); max R-hat {max(self.max_rhat):.3f}"
                 f" (median {np.median(self.max_rhat):.3f}); min bulk ESS "
                 f"{min(self.min_ess_bulk):.0f}"]
        for k, p in ps.items():
            r = self.ranks[k].ravel()
            lines.append(f"  {k:<16} p = {p:.3f}  (n = {r.size}, mean rank / L = "
                         f"{r.mean() / self.L:.3f})")
        return "\n".join(lines)


def rank_uniformity_pvalue(ranks: np.ndarray, L: int) -> float:
    """Pearson chi-square p-value of ranks in ``0..L`` against the discrete uniform.

    Bins: ``J = min(L + 1, max(2, n // 5))`` rounded down to a divisor of ``L + 1`` (equal
    widths, so equal expected counts ``n / J >= 5`` where possible).
    """
    ranks = np.asarray(ranks, dtype=int).ravel()
    if ranks.size == 0 or ranks.min() < 0 or ranks.max() > L:
        raise ValueError(f"ranks must lie in 0..{L}")
    J = min(L + 1, max(2, ranks.size // 5))
    while (L + 1) % J:
        J -= 1
    counts = np.bincount(ranks * J // (L + 1), minlength=J)
    return float(st.chisquare(counts).pvalue)


def thin(draws: np.ndarray, L: int) -> np.ndarray:
    """``L`` evenly spaced draws of ``draws`` (chain, draw, ...), chains concatenated."""
    flat = draws.reshape(-1, *draws.shape[2:])
    if flat.shape[0] < L:
        raise ValueError(f"{flat.shape[0]} posterior draws, fewer than L = {L}")
    idx = np.linspace(0, flat.shape[0] - 1, L).round().astype(int)
    return flat[idx]


def _replicate(fit, truth, data, seed, L, check_vars):
    """One replicate's fit, ranks and figures (what a worker runs with ``client=``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = fit(data, seed)
    post = idata["posterior"]
    ranks = {}
    for k, v in truth.items():
        d = post[k].transpose("chain", "draw", ...).values
        t = thin(d, L)
        v = np.asarray(v, dtype=float)
        r = (t < v[None]).sum(axis=0)  # NaN truths: elements not ranked (e.g. zeros)
        ranks[k] = np.ravel(r)[np.isfinite(np.ravel(v))]
    diag = sampling.diagnostics(idata, list(check_vars or truth))
    return {"ranks": ranks, "divergences": int(diag.divergences),
            "max_rhat": float(diag.max_rhat), "min_ess_bulk": float(diag.min_ess_bulk),
            "reused": bool(idata.attrs.get("compile_reused", False)),
            "compile_s": float(idata.attrs.get("compile_seconds", np.nan)),
            "sampling_s": float(idata.attrs.get("sampling_seconds", np.nan))}


def run_sbc(name: str, draw_prior: Callable, simulate: Callable, fit: Callable, reps: int,
            L: int = 99, seed: int = 0, check_vars=None, client=None) -> SBCResult:
    """Run ``reps`` SBC replicates and return their ranks and figures.

    Parameters
    ----------
    draw_prior : callable ``rng -> {name: ndarray}``
        True values, keyed by posterior variable name (shapes as the posterior's trailing dims;
        NaN marks an element not to rank, e.g. a structural zero).
    simulate : callable ``(truth, rng) -> data``
        Data from the model's generative story (a tuple of ``fit``'s data arguments).
    fit : callable ``(data, seed) -> DataTree``
        One fit through the model contract (warnings are silenced and counted here).
    reps, L, seed
        Replicates, thinned posterior draws per rank, master seed.
    check_vars : list of str, optional
        Variables whose R-hat/ESS are recorded (default: the ranked ones).
    client : dask.distributed.Client, optional
        Run the replicates' fits on the cluster (each worker compiles once); the truths and
        data are drawn here first, in the same order, so the ranks equal the serial run's.
    """
    from bayesbond.workflow.parallel import run_in_order

    rng = np.random.default_rng(seed)
    res = SBCResult(name, reps, L, {})
    t0 = time.perf_counter()
    items = []
    for i in range(reps):
        truth = draw_prior(rng)
        data = simulate(truth, rng)
        items.append((fit, truth, data, seed * 100_003 + i, L, check_vars))
    for out in run_in_order(_replicate, items, client):
        for k, r in out["ranks"].items():
            res.ranks.setdefault(k, []).append(r)
        res.divergences.append(out["divergences"])
        res.max_rhat.append(out["max_rhat"])
        res.min_ess_bulk.append(out["min_ess_bulk"])
        res.reused.append(out["reused"])
        res.compile_s.append(out["compile_s"])
        res.sampling_s.append(out["sampling_s"])
    res.wall_s = time.perf_counter() - t0
    res.ranks = {k: np.stack(v) for k, v in res.ranks.items()}
    return res

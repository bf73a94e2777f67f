"""The fused collapsed-likelihood kernel against the plain PyTensor graph it replaces.

The reference is :func:`bayesbond.bayes.factor_likelihood.collapsed_loglik_pt` (the unrolled
Cholesky the factor model sampled with before the kernel) differentiated by PyTensor; the
kernel must give the same log density and gradient to 1e-12, per Op and for whole models.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import bayesbond as bb
import bayesbond.bayes.factor_model as fmod
from bayesbond.bayes.factor_kernel import CollapsedLoglik, collapsed_loglik_fused
from bayesbond.bayes.factor_likelihood import collapsed_loglik_np, collapsed_loglik_pt

RTOL = 1e-12


def _stats(rng, B, p, T=40):
    X = np.concatenate([np.ones((B, T, 1)), 0.05 * rng.standard_normal((B, T, p - 1))], axis=2)
    theta = rng.normal(0, 0.5, (B, p))
    y = np.einsum("btk,bk->bt", X, theta) + 0.02 * rng.standard_normal((B, T))
    keep = rng.random((B, T)) > 0.2  # each bond its own months
    X, y = X * keep[..., None], y * keep
    return (np.einsum("bti,btj->bij", X, X), np.einsum("bti,bt->bi", X, y), (y**2).sum(1),
            keep.sum(1).astype(float))


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b)))


@pytest.mark.parametrize("pooled", [False, True])
@pytest.mark.parametrize("diag", [True, False])
@pytest.mark.parametrize("mode", ["NUMBA", "FAST_RUN"])
def test_op_value_and_gradient_equal_the_graph(pooled, diag, mode):
    rng = np.random.default_rng(11 + 2 * pooled + diag)
    B, p, G = 9, 3, 2
    XtX, Xty, yty, n = _stats(rng, B, p)
    group = rng.integers(0, G, B)
    sig = pt.tensor("sig", shape=(B,))
    xty = pt.tensor("xty", shape=(B, p))
    yy = pt.tensor("yy", shape=(B,))
    lead = () if pooled else (G,)
    m = pt.tensor("m", shape=(*lead, p))
    S = pt.tensor("S", shape=(*lead, p) if diag else (*lead, p, p))
    # prior scales of the size the data imply (alpha ~ sd_y, betas ~ sd_y / sd_F): I + Q then
    # has a condition number of tens, as in the models; the tolerance is for that conditioning
    unit = np.array([0.02] + [0.4] * (p - 1))
    s_val = unit * np.exp(0.3 * rng.standard_normal((*lead, p)))
    if not diag:
        s_val = (np.tril(0.3 * rng.standard_normal((*lead, p, p)), -1) + np.eye(p)) * s_val[
            ..., None, :]
    vals = [0.02 * np.exp(0.3 * rng.standard_normal(B)), Xty, yty,
            rng.normal(0, 0.3, (*lead, p)), s_val]
    ins = [sig, xty, yy, m, S]
    if pooled:
        ref = collapsed_loglik_pt(pt.as_tensor(XtX), xty, yy, pt.as_tensor(n), sig, m, S,
                                  pooled=True)
        got = collapsed_loglik_fused(XtX, xty, yy, n, sig, m, S, pooled=True)
    else:
        ref = pt.sum(collapsed_loglik_pt(pt.as_tensor(XtX), xty, yy, pt.as_tensor(n), sig,
                                         m[group], S[group]))
        got = collapsed_loglik_fused(XtX, xty, yy, n, sig, m, S, group)
    out_ref = pytensor.function(ins, [ref, *pytensor.grad(ref, ins)], mode="FAST_RUN")(*vals)
    out_got = pytensor.function(ins, [got, *pytensor.grad(got, ins)], mode=mode)(*vals)
    for name, a, b in zip(["logp", "sigma", "Xty", "yty", "m", "S"], out_got, out_ref,
                          strict=True):
        assert _rel(a, b) < RTOL, name
    # and the value against the numpy formula (an independent implementation)
    if pooled:
        np_ll = collapsed_loglik_np(XtX, Xty, yty, n, vals[0], vals[3], vals[4], diag=diag,
                                    pooled=True)
    else:
        np_ll = collapsed_loglik_np(XtX, Xty, yty, n, vals[0], vals[3][group],
                                    vals[4][group], diag=diag).sum()
    assert abs(out_got[0] - np_ll) < RTOL * abs(np_ll)


def test_per_bond_output_and_errors():
    rng = np.random.default_rng(3)
    B, p = 6, 2
    XtX, Xty, yty, n = _stats(rng, B, p)
    sig, m, S = np.full(B, 0.02), np.zeros((1, p)), np.full((1, p), 0.3)
    op = CollapsedLoglik(diag=True, pooled=False)
    total, ll = pytensor.function([], op(XtX.transpose(1, 2, 0), Xty, yty, n, sig, m, S,
                                         np.zeros(B, dtype=int))[:2])()
    ref = collapsed_loglik_np(XtX, Xty, yty, n, sig, np.zeros((B, p)), np.full((B, p), 0.3),
                              diag=True)
    np.testing.assert_allclose(ll, ref, rtol=RTOL)
    np.testing.assert_allclose(total[0], ref.sum(), rtol=RTOL)
    with pytest.raises(ValueError, match="S must have 2 dimensions"):
        op(XtX.transpose(1, 2, 0), Xty, yty, n, sig, m, S[0], np.zeros(B, dtype=int))
    x = pt.tensor("x", shape=(B,))
    lp = collapsed_loglik_fused(XtX, Xty, yty, n, x, m, S, np.zeros(B, dtype=int))
    g = pytensor.grad(lp, x)
    with pytest.raises(NotImplementedError, match="first derivatives"):
        pytensor.grad(pt.sum(g), x)


def _reference(XtX_t, Xty, yty, n, sigma, m, S, group=None, *, pooled=False, bonds_last=False):
    """Today's graph, in the fused function's signature (monkeypatched into the model)."""
    XtX = pt.transpose(XtX_t, (2, 0, 1)) if bonds_last else XtX_t
    if pooled:
        return collapsed_loglik_pt(XtX, Xty, yty, n, sigma, m, S, pooled=True)
    return pt.sum(collapsed_loglik_pt(XtX, Xty, yty, n, sigma, m[group], S[group]))


@pytest.fixture(scope="module")
def panel():
    return bb.datasets.simulate_panel(n_bonds=24, n_dates=48, factor_names=["CMKT", "TERM"],
                                      seed=5, missing=0.1, group_shock=0.002)


@pytest.mark.parametrize("kw", [
    {"pooling": "pooled"},
    {"pooling": "unpooled"},
    {"pooling": "hierarchical"},
    pytest.param({"pooling": "hierarchical", "correlated": True}, marks=pytest.mark.slow),
    pytest.param({"pooling": "pooled", "date_effects": "common"}, marks=pytest.mark.slow),
    pytest.param({"pooling": "unpooled", "date_effects": "group"}, marks=pytest.mark.slow),
    {"pooling": "hierarchical", "date_effects": "group"},
], ids=lambda kw: "-".join(map(str, kw.values())))
def test_model_logp_and_gradient_equal_todays_graph(panel, kw, monkeypatch):
    fm = bb.FactorModel(["CMKT", "TERM"], **kw)
    data, pri = fm.prepare(panel.panel, panel.factors)
    model = fm.build_model(data, pri)
    nodes = pytensor.graph.traversal.applys_between(model.free_RVs, [model.logp()])
    assert any(isinstance(node.op, CollapsedLoglik) for node in nodes)
    monkeypatch.setattr(fmod, "collapsed_loglik_fused", _reference)
    ref_model = fm.build_model(data, pri)
    monkeypatch.undo()
    fns = []
    for mdl in (model, ref_model):
        # Python mode: no C or numba compile of two graphs per case (the Op's perform runs the
        # same numba kernel; the numba backend's linking is checked above)
        f = mdl.logp_dlogp_function(ravel_inputs=True, mode="FAST_COMPILE")
        f.set_extra_values({})
        fns.append(f)
    ip = model.initial_point()
    x0 = np.concatenate([np.ravel(ip[v.name]) for v in fns[0]._grad_vars])
    rng = np.random.default_rng(7)
    for _ in range(4):
        x = x0 + 0.5 * rng.standard_normal(x0.size)
        (lp, g), (lp_ref, g_ref) = fns[0](x), fns[1](x)
        assert np.isfinite(lp_ref)
        assert abs(lp - lp_ref) <= RTOL * abs(lp_ref)
        assert _rel(g, g_ref) < RTOL

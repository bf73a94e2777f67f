r"""The collapsed Gaussian likelihood of the factor regression and its gradient as one fused kernel.

:class:`CollapsedLoglik` is a PyTensor ``Op`` whose numba kernel loops once over the bonds and
returns each bond's collapsed log-likelihood together with its partial derivatives; its gradient
(``pullback``) only scales those by the incoming gradient. PyTensor's numba backend (what nutpie
compiles) calls the kernel natively (:func:`numba_funcify_collapsed`), so one log density and
gradient is a single pass over ``B`` small ``p x p`` problems instead of the hundreds of
elementwise operations of an unrolled Cholesky and their reverse-mode graph.

Notes
-----
Per bond (see :mod:`bayesbond.bayes.factor_likelihood` for the formula), with ``s2 = sigma^2``,
``Xtr = X'y - X'X m``, ``r'r = y'y - 2 m'X'y + m'X'X m``, ``Q = S'X'X S / s2``, ``c = S'Xtr / s2``,
``A = I + Q = L L'``,

    l = -n/2 log(2 pi s2) - r'r / (2 s2) - 1/2 log det A + 1/2 c'A^{-1}c.

With ``v = A^{-1} c`` and ``G = dl/dA = -(A^{-1} + v v') / 2`` (symmetric),

    dl/dc = v,   dl/dXtr = S v / s2,   dl/d(r'r) = -1 / (2 s2),
    dl/dX'y = S v / s2 + m / s2,   dl/dy'y = -1 / (2 s2),
    dl/dm = Xtr / s2 - X'X S v / s2,
    dl/dS = 2 X'X S G / s2 + Xtr v' / s2        (diagonal S: the diagonal of each term),
    dl/ds2 = -n / (2 s2) + r'r / (2 s2^2) - (tr(G Q) + v'c) / s2,   dl/dsigma = 2 sigma dl/ds2.

For a coefficient vector shared by all bonds (``pooled``) ``Q``, ``c`` and the constant terms are
summed over bonds before the one Cholesky factorisation; ``G`` and ``v`` are then shared and the
derivatives in ``m`` and ``S`` are summed over bonds. The kernel follows the operation order of
:func:`~bayesbond.bayes.factor_likelihood.collapsed_loglik_pt` (the plain graph, which stays the
reference and the path of backends other than numba's), so the two agree to rounding.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numba
import numpy as np
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

__all__ = ["CollapsedLoglik", "collapsed_kernel", "collapsed_loglik_fused", "kernel_source"]

LOG_2PI = float(np.log(2.0 * np.pi))
#: changes with this file's source, so PyTensor's on-disk numba cache never links a stale kernel
KERNEL_VERSION = zlib.crc32(Path(__file__).read_bytes())


def _sum(terms) -> str:
    """``"(a + b + ...)"``, or ``"0.0"`` for no terms (left-to-right: IEEE order is kept)."""
    return "(" + " + ".join(terms) + ")" if terms else "0.0"


class _Names:
    """Names of the per-bond scalars in the generated kernel (symmetric matrices by their lower
    triangle)."""

    def __init__(self, p: int, diag: bool, pooled: bool):
        self.p, self.diag = p, diag
        q = 1 if diag else p
        # rows of the packed per-bond inputs P (prior rows only when not pooled) ...
        k = 0 if pooled else p + p * q
        self.rows = {"m": 0, "S": p, "Xty": k, "yty": k + p, "n": k + p + 1,
                     "sigma": k + p + 2, "size": k + p + 3}
        # ... and outputs OUT: one array each, so the compiler sees two streams, not twenty
        self.outs = {"ll": 0, "det": 1, "d_sigma": 2, "d_yty": 3, "d_Xty": 4, "d_m": 4 + p,
                     "d_S": 4 + 2 * p, "size": 4 + 2 * p + p * q}

    @staticmethod
    def X(i, j):
        return f"X{max(i, j)}_{min(i, j)}"

    @staticmethod
    def Q(i, j):
        return f"Q{max(i, j)}_{min(i, j)}"

    @staticmethod
    def G(i, j):
        return f"G{max(i, j)}_{min(i, j)}"

    def S(self, k, i):
        """Element (k, i) of the scale matrix (diagonal: only k == i is nonzero)."""
        if self.diag:
            return f"S{k}" if k == i else None
        return f"S{k}_{i}"


def _terms_lines(nm: _Names) -> list[str]:
    """Per-bond ``s2, r2, Xtr, rtr, base`` (without the logarithm), ``Q`` (lower) and ``c``."""
    p, X = nm.p, nm.X
    r = nm.rows
    out = [f"sig = P[{r['sigma']}, b]", "s2 = sig * sig", "r2 = 1.0 / s2",
           f"nb = P[{r['n']}, b]"]
    out += [f"{X(i, j)} = XX[{i}, {j}, b]" for i in range(p) for j in range(i + 1)]
    out += [f"Y{i} = P[{r['Xty'] + i}, b]" for i in range(p)]
    for i in range(p):
        out.append(f"xm{i} = " + _sum([f"{X(i, j)} * m{j}" for j in range(p)]))
        out.append(f"Xtr{i} = Y{i} - xm{i}")
    out.append(f"rtr = P[{r['yty']}, b] - 2.0 * " + _sum([f"m{i} * Y{i}" for i in range(p)]) + " + "
               + _sum([f"m{i} * xm{i}" for i in range(p)]))
    out.append("base = -0.5 * nb * LOG_2PI - 0.5 * rtr * r2")
    if nm.diag:
        for i in range(p):
            out += [f"Q{i}_{j} = {X(i, j)} * S{i} * S{j} * r2" for j in range(i + 1)]
            out.append(f"c{i} = S{i} * Xtr{i} * r2")
    else:
        for i in range(p):
            for li in range(p):
                out.append(f"SX{i}_{li} = " + _sum([f"S{k}_{i} * {X(k, li)}" for k in range(p)]))
        for i in range(p):
            for j in range(i + 1):
                out.append(f"Q{i}_{j} = " + _sum([f"SX{i}_{li} * S{li}_{j}" for li in range(p)])
                           + " * r2")
            out.append(f"c{i} = " + _sum([f"S{k}_{i} * Xtr{k}" for k in range(p)]) + " * r2")
    return out


def _solve_lines(p: int) -> list[str]:
    """``L L' = I + Q``, ``det = det(I + Q)``, ``u = L^{-1} c``, ``quad = u'u``,
    ``v = L^{-T} u`` and ``G = -(A^{-1} + v v') / 2`` with ``A^{-1} = M'M``, ``M = L^{-1}``."""
    out = []
    for j in range(p):
        out.append(f"d{j} = Q{j}_{j} + 1.0" + "".join(f" - L{j}_{k} * L{j}_{k}"
                                                     for k in range(j)))
        out += [f"L{j}_{j} = np.sqrt(d{j})", f"ri{j} = 1.0 / L{j}_{j}"]
        for i in range(j + 1, p):
            out.append(f"L{i}_{j} = (Q{i}_{j}" + "".join(f" - L{i}_{k} * L{j}_{k}"
                                                         for k in range(j)) + f") * ri{j}")
    out.append("det = " + " * ".join(f"d{j}" for j in range(p)))
    for i in range(p):
        out.append(f"u{i} = (c{i}" + "".join(f" - L{i}_{k} * u{k}" for k in range(i))
                   + f") * ri{i}")
    out.append("quad = " + _sum([f"u{i} * u{i}" for i in range(p)]))
    for i in reversed(range(p)):
        out.append(f"v{i} = (u{i}" + "".join(f" - L{k}_{i} * v{k}" for k in range(i + 1, p))
                   + f") * ri{i}")
    for j in range(p):
        out.append(f"M{j}_{j} = ri{j}")
        for i in range(j + 1, p):
            out.append(f"M{i}_{j} = -" + _sum([f"L{i}_{k} * M{k}_{j}" for k in range(j, i)])
                       + f" * ri{i}")
    for i in range(p):
        for j in range(i + 1):
            out.append(f"G{i}_{j} = -0.5 * (" + _sum([f"M{k}_{i} * M{k}_{j}"
                                                     for k in range(i, p)])
                       + f" + v{i} * v{j})")
    return out


def _grad_lines(nm: _Names) -> list[str]:
    """Bond ``b``'s derivatives (module Notes) into ``d_sigma, d_yty`` (B,) and the bond-last
    ``dXty, dm`` (p, B), ``dS`` (p, q, B)."""
    p, X, S, G, Q = nm.p, nm.X, nm.S, nm.G, nm.Q
    o = nm.outs
    out = ["trGQ = " + _sum([f"{G(i, i)} * {Q(i, i)}" for i in range(p)]
                            + [f"2.0 * {G(i, j)} * {Q(i, j)}"
                               for i in range(p) for j in range(i)]),
           "vc = " + _sum([f"v{i} * c{i}" for i in range(p)]),
           "ds2 = -0.5 * nb * r2 + 0.5 * rtr * r2 * r2 - (trGQ + vc) * r2",
           f"OUT[{o['d_sigma']}, b] = 2.0 * sig * ds2",
           f"OUT[{o['d_yty']}, b] = -0.5 * r2"]
    for k in range(p):
        terms = [f"{S(k, i)} * v{i}" for i in range(p) if S(k, i) is not None]
        out.append(f"gX{k} = " + _sum(terms) + " * r2")
    for k in range(p):
        out.append(f"OUT[{o['d_Xty'] + k}, b] = gX{k} + m{k} * r2")
        out.append(f"OUT[{o['d_m'] + k}, b] = Xtr{k} * r2 - " + _sum([f"{X(k, j)} * gX{j}"
                                                          for j in range(p)]))
    if nm.diag:
        for k in range(p):
            out.append(f"OUT[{o['d_S'] + k}, b] = (2.0 * " + _sum([f"{G(k, j)} * {X(k, j)} * S{j}"
                                                          for j in range(p)])
                       + f" + v{k} * Xtr{k}) * r2")
    else:
        for li in range(p):
            for i in range(p):
                out.append(f"SG{li}_{i} = " + _sum([f"S{li}_{j} * {G(j, i)}"
                                                    for j in range(p)]))
        for k in range(p):
            for i in range(p):
                acc = _sum([f"{X(k, li)} * SG{li}_{i}" for li in range(p)])
                out.append(f"OUT[{o['d_S'] + k * p + i}, b] = (2.0 * {acc}"
                           f" + Xtr{k} * v{i}) * r2")
    return out


def _prior_reads(nm: _Names, row: str) -> list[str]:
    """Read ``m{i}`` and the scales from row ``row`` of the bond-last prior copies."""
    p = nm.p
    out = [f"m{i} = P[{i}, {row}]" for i in range(p)]
    if nm.diag:
        out += [f"S{i} = P[{p + i}, {row}]" for i in range(p)]
    else:
        out += [f"S{k}_{i} = P[{p + k * p + i}, {row}]" for k in range(p) for i in range(p)]
    return out


def _flat(lines, nm: _Names, nb: str) -> list[str]:
    """Map ``P[r, b]`` and ``OUT[k, b]`` to the one flat work array ``W``, ``XX[i, j, b]`` to the
    flat ``X'X`` (bonds last) ``XF``.

    ``W`` holds every other per-bond input and output as a row of ``nb`` bonds; with ``nb`` a
    literal
    the offsets are constants, which lets the compiler prove that the loop's loads and stores do
    not overlap and vectorise it (with separate arrays, or a bond count known only at run time,
    it needs more run-time overlap checks than it will insert, and stays scalar)."""
    import re

    p, ro = nm.p, nm.rows["size"]

    def at(row, arr="W"):
        return f"{arr}[{row * int(nb)} + b]" if nb.isdigit() else f"{arr}[{row} * {nb} + b]"

    out = []
    for ln in lines:
        ln = re.sub(r"P\[(\d+), b\]", lambda m: at(int(m.group(1))), ln)
        ln = re.sub(r"XX\[(\d+), (\d+), b\]",
                    lambda m: at(int(m.group(1)) * p + int(m.group(2)), "XF"), ln)
        ln = re.sub(r"OUT\[(\d+), b\]", lambda m: at(ro + int(m.group(1))), ln)
        out.append(ln)
    return out


def kernel_source(p: int, diag: bool, pooled: bool, n_bonds: int | None = None) -> str:
    """Source of the numba kernel for ``p`` coefficients (see :class:`CollapsedLoglik`).

    Everything per bond is straight-line code on scalars inside one loop over the bonds, which
    reads and writes rows of one flat work array (bonds last, :func:`_flat`), so that the
    compiler keeps the work in registers and vectorises the loop across bonds when the number
    of bonds ``n_bonds`` is fixed (a model's is); the logarithms (library calls) and the sums
    over bonds get loops of their own.
    """
    nm = _Names(p, diag, pooled)
    r, o = nm.rows, nm.outs
    ro = r["size"]
    n_rows = ro + o["size"]
    nb = "B" if n_bonds is None else str(int(n_bonds))
    ind = " " * 8

    def at(row, var="b"):
        return f"W[{row} * {nb} + {var}]"

    def block(lines, depth=2):
        return "\n".join(" " * (4 * depth) + ln for ln in _flat(lines, nm, nb))

    src = ["def collapsed_kernel(XtX, Xty, yty, n, sigma, m, S, gi):",
           "    B = Xty.shape[0]",
           "    XF = np.ascontiguousarray(XtX).ravel()  # (p, p, B) read in place"]
    if n_bonds is not None:
        src += [f"    if B != {nb}:",
                f"        raise ValueError('this kernel was compiled for {nb} bonds')"]
    src += [
        f"    W = np.empty({n_rows} * {nb})",
        "    for b in range(B):",
        ind + f"{at(r['yty'])} = yty[b]",
        ind + f"{at(r['n'])} = n[b]",
        ind + f"{at(r['sigma'])} = sigma[b]",
        ind + f"for i in range({p}):",
        ind + f"    W[({r['Xty']} + i) * {nb} + b] = Xty[b, i]",
    ]
    if not pooled:
        src += [ind + "g = gi[b]", ind + f"for i in range({p}):",
                ind + f"    W[i * {nb} + b] = m[g, i]"]
        src += ([ind + f"    W[({p} + i) * {nb} + b] = S[g, i]"] if diag else
                [ind + f"    for j in range({p}):",
                 ind + f"        W[({p} + i * {p} + j) * {nb} + b] = S[g, i, j]"])
        src += [f"    for b in range({nb}):",
                block(_prior_reads(nm, "b") + _terms_lines(nm) + _solve_lines(p)
                      + [f"OUT[{o['ll']}, b] = base + 0.5 * quad", f"OUT[{o['det']}, b] = det"]
                      + _grad_lines(nm)),
                "    ll = np.empty(B)",
                "    total = np.zeros(1)",
                "    for b in range(B):",
                ind + f"ll[b] = {at(ro + o['ll'])} - 0.5 * n[b] * np.log(sigma[b] * sigma[b])"
                f" - 0.5 * np.log({at(ro + o['det'])})",
                ind + "total[0] += ll[b]",
                f"    d_m = np.zeros((m.shape[0], {p}))",
                "    d_S = np.zeros(S.shape)",
                "    for b in range(B):",
                ind + "g = gi[b]",
                ind + f"for k in range({p}):",
                ind + f"    d_m[g, k] += W[({ro + o['d_m']} + k) * {nb} + b]"]
        src += ([ind + f"    d_S[g, k] += W[({ro + o['d_S']} + k) * {nb} + b]"] if diag else
                [ind + f"    for i in range({p}):",
                 ind + f"        d_S[g, k, i] += W[({ro + o['d_S']} + k * {p} + i) * {nb} + b]"])
    else:
        lower = [(i, j) for i in range(p) for j in range(i + 1)]
        src += [f"    m{i} = m[{i}]" for i in range(p)]
        src += ([f"    S{i} = S[{i}]" for i in range(p)] if diag else
                [f"    S{k}_{i} = S[{k}, {i}]" for k in range(p) for i in range(p)])
        nq = len(lower)
        src += [f"    T = np.empty(({nq + p + 1}, B))", "    for b in range(B):",
                block(_terms_lines(nm))]
        src += [ind + f"T[{k}, b] = Q{i}_{j}" for k, (i, j) in enumerate(lower)]
        src += [ind + f"T[{nq + i}, b] = c{i}" for i in range(p)]
        src += [ind + f"T[{nq + p}, b] = base"]
        src += [f"    Ts = np.zeros({nq + p + 1})",
                "    for b in range(B):",
                ind + f"T[{nq + p}, b] -= 0.5 * n[b] * np.log(sigma[b] * sigma[b])",
                ind + f"for k in range({nq + p + 1}):",
                ind + "    Ts[k] += T[k, b]"]
        src += [f"    Q{i}_{j} = Ts[{k}]" for k, (i, j) in enumerate(lower)]
        src += [f"    c{i} = Ts[{nq + i}]" for i in range(p)]
        src += [block(_solve_lines(p), 1)]
        src += ["    total = np.zeros(1)",
                f"    total[0] = Ts[{nq + p}] - 0.5 * np.log(det) + 0.5 * quad",
                "    ll = total",
                "    for b in range(B):",
                block(_terms_lines(nm) + _grad_lines(nm)),
                f"    d_m = np.zeros({p})",
                "    d_S = np.zeros(S.shape)",
                "    for b in range(B):",
                ind + f"for k in range({p}):",
                ind + f"    d_m[k] += W[({ro + o['d_m']} + k) * {nb} + b]"]
        src += ([ind + f"    d_S[k] += W[({ro + o['d_S']} + k) * {nb} + b]"] if diag else
                [ind + f"    for i in range({p}):",
                 ind + f"        d_S[k, i] += W[({ro + o['d_S']} + k * {p} + i) * {nb} + b]"])
    src += [f"    d_Xty = np.empty((B, {p}))",
            "    d_yty = np.empty(B)",
            "    d_sigma = np.empty(B)",
            "    for b in range(B):",
            ind + f"d_yty[b] = {at(ro + o['d_yty'])}",
            ind + f"d_sigma[b] = {at(ro + o['d_sigma'])}",
            ind + f"for k in range({p}):",
            ind + f"    d_Xty[b, k] = W[({ro + o['d_Xty']} + k) * {nb} + b]",
            "    return total, ll, d_Xty, d_yty, d_sigma, d_m, d_S"]
    return "\n".join(src) + "\n"


#: compiled kernels by (p, diag, pooled, n_bonds, wrapped for Python)
_KERNELS: dict = {}


def collapsed_kernel(p: int, diag: bool, pooled: bool, n_bonds: int | None = None, *,
                     python: bool = True):
    """The numba kernel of :func:`kernel_source` (``python``: callable from Python, else a
    jitted function for PyTensor's numba backend to call)."""
    key = (p, diag, pooled, n_bonds, python)
    if key not in _KERNELS:
        from pytensor.link.utils import compile_function_src

        fn = compile_function_src(kernel_source(p, diag, pooled, n_bonds), "collapsed_kernel",
                                  {"np": np, "LOG_2PI": LOG_2PI})
        opts = {"fastmath": False, "boundscheck": False, "error_model": "numpy"}
        _KERNELS[key] = (numba.njit(**opts) if python
                         else numba_basic.numba_njit(fastmath=False, boundscheck=False,
                                                     error_model="numpy"))(fn)
    return _KERNELS[key]


def _static_p(ins):
    """The number of coefficients from the static shapes of the Op's inputs (None: unknown)."""
    XtX, Xty, _, _, _, m, S = ins[:7]
    for d in (XtX.type.shape[0], XtX.type.shape[1], Xty.type.shape[1], m.type.shape[-1],
              S.type.shape[-1]):
        if d is not None:
            return int(d)
    return None


class CollapsedLoglik(Op):
    """Collapsed log-likelihood of the factor regression with its partial derivatives as extra
    outputs (module Notes).

    Inputs ``(XtX, Xty, yty, n, sigma, m, S, group)``: ``XtX`` bonds last, ``(p, p, B)``;
    ``Xty (B, p)``; ``yty, n, sigma (B,)``; prior rows ``m (G, p)`` and ``S (G, p)`` (``diag``)
    or ``(G, p, p)``, bond ``b`` using row ``group[b]`` (``pooled``: one shared ``m (p,)``,
    ``S (p,)``/``(p, p)``, and ``group`` is ignored).

    Outputs ``(total, ll, d_Xty, d_yty, d_sigma, d_m, d_S)``: ``total (1,)`` the summed
    log-likelihood, ``ll`` each bond's term ``(B,)`` (pooled: ``(1,)``, the total), and the
    derivatives of ``total`` shaped as their inputs. The gradient of ``total`` is the incoming
    gradient times these, so one kernel pass gives the value and the gradient; only ``total``
    is differentiable, and only once. ``XtX`` and ``n`` are data (no gradient). ``n_bonds``:
    the number of bonds the kernel is compiled for (fast: vectorised over bonds), or None
    (any number, scalar code).
    """

    __props__ = ("diag", "pooled", "n_bonds")

    def __init__(self, diag: bool, pooled: bool, n_bonds: int | None = None):
        self.diag = bool(diag)
        self.pooled = bool(pooled)
        self.n_bonds = None if n_bonds is None else int(n_bonds)
        super().__init__()

    def make_node(self, XtX, Xty, yty, n, sigma, m, S, group):
        import pytensor.tensor as pt

        ins = [pt.cast(pt.as_tensor(x), "float64") for x in (XtX, Xty, yty, n, sigma, m, S)]
        ins.append(pt.cast(pt.as_tensor(group), "int64"))
        nd_prior = 1 if self.pooled else 2
        want = {"XtX": 3, "Xty": 2, "yty": 1, "n": 1, "sigma": 1, "m": nd_prior,
                "S": nd_prior + (not self.diag), "group": 1}
        for x, (name, nd) in zip(ins, want.items(), strict=True):
            if x.ndim != nd:
                raise ValueError(f"CollapsedLoglik(diag={self.diag}, pooled={self.pooled}): "
                                 f"{name} must have {nd} dimensions, got {x.ndim}")
        p = _static_p(ins)
        if p is None:
            raise ValueError("CollapsedLoglik: the number of coefficients must be static (in "
                             "the shape of XtX, Xty, m or S)")
        n_ll = 1 if self.pooled else ins[1].type.shape[0]
        outs = [pt.tensor(dtype="float64", shape=(1,)), pt.tensor(dtype="float64", shape=(n_ll,))]
        outs += [pt.tensor(dtype="float64", shape=x.type.shape) for x in ins[1:3] + ins[4:7]]
        return Apply(self, ins, outs)

    def perform(self, node, inputs, output_storage):
        res = collapsed_kernel(_static_p(node.inputs), self.diag, self.pooled,
                               self.n_bonds)(*inputs)
        for store, r in zip(output_storage, res, strict=True):
            store[0] = np.asarray(r)

    def pullback(self, inputs, outputs, cotangents):
        from pytensor.gradient import disconnected_type

        for og in cotangents[1:]:
            if not isinstance(og.type, DisconnectedType):
                raise NotImplementedError("CollapsedLoglik: only the first derivatives of the "
                                          "total log-likelihood are implemented")
        g = cotangents[0][0]
        _, _, d_Xty, d_yty, d_sigma, d_m, d_S = outputs
        return [grad_not_implemented(self, 0, inputs[0], "XtX is data"),
                g * d_Xty, g * d_yty,
                grad_not_implemented(self, 3, inputs[3], "n is data"),
                g * d_sigma, g * d_m, g * d_S, disconnected_type()]


    def connection_pattern(self, node):
        # the group index is an integer: it selects rows, nothing flows back to it
        return [[True] * 7 for _ in range(7)] + [[False] * 7]


@register_funcify_default_op_cache_key(CollapsedLoglik)
def numba_funcify_collapsed(op, node=None, **kwargs):
    """The kernel for PyTensor's numba backend (and so for nutpie)."""
    kernel = collapsed_kernel(_static_p(node.inputs), op.diag, op.pooled, op.n_bonds,
                              python=False)
    return kernel, KERNEL_VERSION


def collapsed_loglik_fused(XtX, Xty, yty, n, sigma, m, S, group=None, *, pooled=False,
                           bonds_last=False):
    """The total collapsed log-likelihood (a scalar) by :class:`CollapsedLoglik`.

    Arguments as :func:`~bayesbond.bayes.factor_likelihood.collapsed_loglik_pt`, except that
    ``m`` and ``S`` may hold one row per group with ``group (B,)`` each bond's row (``None``:
    one row per bond); ``bonds_last``: ``XtX`` is already ``(p, p, B)`` (the layout the kernel
    reads; a data container can hold it so).
    """
    import pytensor.tensor as pt

    XtX = pt.as_tensor(XtX)
    Xty = pt.as_tensor(Xty)
    S = pt.as_tensor(S)
    diag = S.ndim == (1 if pooled else 2)
    if not bonds_last:
        XtX = pt.transpose(XtX, (1, 2, 0))
    if group is None:
        group = pt.arange(Xty.shape[0]) if not pooled else pt.zeros(Xty.shape[0], dtype="int64")
    op = CollapsedLoglik(diag=diag, pooled=pooled, n_bonds=Xty.type.shape[0])
    return op(XtX, Xty, yty, n, sigma, m, S, group)[0][0]

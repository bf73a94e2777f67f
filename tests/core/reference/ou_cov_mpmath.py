"""High-precision reference for ``int_0^t e^{sA} V e^{sA'} ds`` (run outside the suite).

Writes ``ou_cov_mpmath.json`` next to this file. Needs ``mpmath`` (not a project dependency):

    python -m venv /tmp/mp && /tmp/mp/bin/pip install mpmath numpy
    /tmp/mp/bin/python tests/core/reference/ou_cov_mpmath.py

Each drift matrix is ``A = S diag(lam) S^-1`` (or ``S J S^-1`` with a Jordan block), rounded to
doubles; the reference uses those doubles exactly (``mpf(float)``), at 60 significant digits:

* diagonalisable ``A``: eigen-decomposition in mpmath, ``G_ij = sum_kl S_ik S_jl Vt_kl
  (e^{(l_k + l_l) t} - 1) / (l_k + l_l)`` with ``Vt = S^-1 V S^-T`` (limit ``t`` at
  ``l_k + l_l = 0``);
* defective ``A``: adaptive Gauss-Legendre quadrature of ``mp.expm(s A) V mp.expm(s A)'``.
"""

import json
import pathlib

import mpmath as mp
import numpy as np

mp.mp.dps = 60
S = np.array([[1.0, 0.3], [0.2, 1.0]])  # cond(S) = 1.67, not triangular
S2 = np.array([[1.0, -0.6], [0.5, 1.0]])
V = np.array([[1e-4, 2e-5], [2e-5, 4e-4]])
CASES = {
    "slow_fast": (S, [-1e-6, -5.0]),
    "slow_fast_2": (S2, [-1e-4, -20.0]),
    "unit_root": (S, [0.0, -2.0]),
    "explosive": (S, [0.05, -3.0]),
    "explosive_both": (S2, [0.02, 0.01]),
    "defective": (S, "jordan"),
}
TIMES = [0.5, 10.0, 30.0, 100.0]


def drift(S, lam):
    if lam == "jordan":
        J = np.array([[-0.4, 1.0], [0.0, -0.4]])
        return S @ J @ np.linalg.inv(S)
    return S @ np.diag(lam) @ np.linalg.inv(S)


def cov_eig(A, t):
    Am, Vm = mp.matrix(A.tolist()), mp.matrix(V.tolist())
    E, R = mp.eig(Am)
    Ri = mp.inverse(R)
    Vt = Ri * Vm * Ri.T
    n = len(E)
    H = mp.matrix(n, n)
    for k in range(n):
        for m in range(n):
            s = E[k] + E[m]
            H[k, m] = Vt[k, m] * (t if abs(s) < mp.mpf(10) ** -50 else mp.expm1(s * t) / s)
    G = R * H * R.T
    return [[float(mp.re(G[i, j])) for j in range(n)] for i in range(n)]


def cov_quad(A, t):
    Am, Vm = mp.matrix(A.tolist()), mp.matrix(V.tolist())
    n = A.shape[0]
    pts = [0, min(t, 1)] + [x for x in (5, 20, 50) if x < t] + [t]
    pts = sorted(set(mp.mpf(p) for p in pts))
    out = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            def f(s, i=i, j=j):
                E = mp.expm(s * Am)
                return (E * Vm * E.T)[i, j]
            out[i][j] = out[j][i] = float(mp.quad(f, pts))
    return out


ref = {}
for name, (Sm, lam) in CASES.items():
    A = drift(Sm, lam)
    rows = []
    for t in TIMES:
        G = cov_quad(A, t) if lam == "jordan" else cov_eig(A, t)
        rows.append(G)
    ref[name] = {"A": A.tolist(), "V": V.tolist(), "t": TIMES, "G": rows}
    print(name, rows[-1])
path = pathlib.Path(__file__).with_suffix(".json")
path.write_text(json.dumps(ref, indent=1))

"""Log predictive density of a whole bond given the factor model's population parameters.

The leave-one-bond-out unit of :func:`bayesbond.loo` (``by="bond"``): how well the model
predicts the returns of a *new* bond of a bucket, given the factor returns and the bucket's
hyperparameters, with the bond's own coefficients and residual scale integrated out against
their population distribution.

Notes
-----
For bond ``i`` of group ``g`` with returns ``y_i`` on its ``n_i`` observed months (design
``X_i = [1, F_t]``) and one posterior draw of the hyperparameters ``m_g = (mu_alpha_g,
mu_beta_g)``, ``S_g`` (``diag(tau_alpha_g, tau_beta_g)``, or ``blockdiag(tau_alpha_g,
diag(tau_beta_g) L_g)`` with correlated betas), ``mu = mu_log_sigma_g`` and ``tau =
tau_log_sigma_g``,

    log p(y_i | F, hyper) = log  integral  p_c(y_i | e^u) N(u; mu, tau) du,

    p_c(y_i | sigma) = N(y_i | X_i m_g, sigma^2 I + X_i S_g S_g' X_i')

(``theta_i = (alpha_i, beta_i) ~ N(m_g, S_g S_g')`` integrated out in closed form,
:func:`bayesbond.bayes.factor_likelihood.collapsed_loglik_np`). With ``r = y_i - X_i m_g``,
``A = S_g' X_i'X_i S_g = V diag(lambda) V'`` and ``z = V' S_g' X_i' r`` (one ``p x p``
eigendecomposition per bond and draw, independent of ``sigma``), and ``q = e^{2u}``,

    log p_c = -n_i/2 log(2 pi) - n_i u - r'r / (2 q) - 1/2 sum_k log(1 + lambda_k / q)
              + 1/2 sum_k z_k^2 / (q (q + lambda_k)),

the same value as the determinant lemma / Woodbury form of the collapsed likelihood, but a
cheap function of ``u``. The integral over ``u`` is done by Gauss-Hermite quadrature adapted
to the integrand (Liu and Pierce 1994): with ``h(u) = log p_c(y_i | e^u) + log N(u; mu, tau)``,
its mode ``u*`` (Newton's method with the analytic derivatives) and ``v = (-h''(u*))^{-1/2}``,

    log p(y_i | F, hyper) ~ log(sqrt(2) v) + log sum_j w_j exp(x_j^2 + h(u* + sqrt(2) v x_j)),

with the nodes ``x_j`` and weights ``w_j`` of :func:`numpy.polynomial.hermite.hermgauss`. It
is exact when ``h`` is quadratic; ``h`` is close to quadratic in ``u`` (a bond's months
identify its log scale to about ``1 / sqrt(2 n_i)``), and 32 nodes agree with 128 to about
1e-12 on the test problems (``tests/bayes/test_factor_bond_loglik.py``).

For a pooled fit the coefficients are shared, so ``m`` is the draw of ``(alpha, beta)`` and
``S = 0``; only the residual scale is integrated out. An unpooled fit has no population of
coefficients to predict a new bond from.

References
----------
Liu, Q. and Pierce, D. A. (1994). A note on Gauss-Hermite quadrature. *Biometrika* 81(3),
624-629.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesbond.bayes.base import spec_of
from bayesbond.bayes.factor_data import sufficient_stats
from bayesbond.bayes.factor_likelihood import collapsed_terms_np
from bayesbond.bayes.factor_loglik import align_labels
from bayesbond.errors import SpecError, listing

__all__ = ["collapsed_in_log_sigma", "collapsed_loglik_u", "bond_marginal_loglik",
           "bond_loglik"]

LOG_2PI = float(np.log(2.0 * np.pi))
#: Newton iterations for the mode of the integrand in ``u = log sigma`` (quadratic convergence
#: from the Gaussian start; the iterations stop earlier once every step is below 1e-12)
_NEWTON_STEPS = 50


def collapsed_in_log_sigma(XtX, Xty, yty, n, m, S, *, diag):
    """The pieces ``(rtr, lam, zsq)`` of the collapsed log-likelihood as a function of
    ``u = log sigma`` (see the module Notes).

    Parameters
    ----------
    XtX, Xty, yty, n
        Per-bond sufficient statistics (``(..., p, p)``, ``(..., p)``, ``(...)``, ``(...)``).
    m : (..., p)
        Prior mean of ``theta``.
    S : (..., p) or (..., p, p)
        Prior scales (``diag=True``) or scale matrices.

    Returns
    -------
    rtr : ndarray (...)
        ``r'r`` with ``r = y - X m``.
    lam : ndarray (..., p)
        Eigenvalues of ``S'X'X S`` (clipped at 0).
    zsq : ndarray (..., p)
        Squared coordinates of ``S'X'r`` in the eigenvectors.
    """
    m = np.asarray(m, dtype=float)
    shape = np.broadcast_shapes(np.shape(yty), m.shape[:-1])
    _, Q1, c1 = collapsed_terms_np(XtX, Xty, yty, n, np.ones(shape), m, S, diag=diag)
    XtXm = (np.asarray(XtX) @ m[..., None])[..., 0]
    rtr = yty - 2.0 * (m * Xty).sum(-1) + (m * XtXm).sum(-1)
    lam, V = np.linalg.eigh(Q1)
    z = np.einsum("...ji,...j->...i", V, c1)
    return np.maximum(rtr, 0.0), np.maximum(lam, 0.0), z * z


def collapsed_loglik_u(u, n, rtr, lam, zsq):
    """``log p_c(y | sigma = e^u)`` from :func:`collapsed_in_log_sigma`'s pieces.

    ``u``, ``n`` and ``rtr`` broadcast together to a shape ``(...)``; ``lam`` and ``zsq`` are
    ``(..., p)`` (their last axis is the eigen-axis, summed over).

    Notes
    -----
    ``-n/2 log(2 pi) - n u - r'r e^{-2u} / 2 - 1/2 sum_k log(1 + lambda_k e^{-2u})
    + 1/2 sum_k z_k^2 / (e^{2u} (e^{2u} + lambda_k))`` (module Notes).
    """
    a = np.exp(-2.0 * u)
    la = lam * a[..., None]  # lambda / q
    # z^2 / (q (q + lambda)) = z^2 a^2 / (1 + lambda a)
    quad = (zsq / (1.0 + la)).sum(-1) * (a * a)
    return (-0.5 * n * LOG_2PI - n * u - 0.5 * rtr * a
            - 0.5 * np.log1p(la).sum(-1) + 0.5 * quad)


def _derivatives(u, n, rtr, lam, zsq, mu, tau):
    """First and second derivatives in ``u`` of ``h(u) = log p_c + log N(u; mu, tau)``."""
    q = np.exp(2.0 * u)[..., None]
    a = np.exp(-2.0 * u)
    ql = q + lam
    f = (2.0 * q + lam) / (q * ql * ql)
    g = (-n + rtr * a + (lam / ql).sum(-1) - (zsq * f).sum(-1) - (u - mu) / tau**2)
    dg = (-2.0 * rtr * a - (2.0 * q * lam / (ql * ql)).sum(-1)
          - (2.0 * zsq * f * (2.0 * q / (2.0 * q + lam) - 1.0 - 2.0 * q / ql)).sum(-1)
          - 1.0 / tau**2)
    return g, dg


def bond_marginal_loglik(XtX, Xty, yty, n, m, S, mu_log_sigma, tau_log_sigma, *, diag,
                         nodes: int = 32):
    """``log integral p_c(y | e^u, m, S) N(u; mu_log_sigma, tau_log_sigma) du`` per bond.

    Parameters
    ----------
    XtX, Xty, yty, n
        Per-bond sufficient statistics of the bond's observed months
        (:func:`bayesbond.bayes.factor_data.sufficient_stats`), shapes ``(..., p, p)``,
        ``(..., p)``, ``(...)``, ``(...)``.
    m, S
        Prior mean ``(..., p)`` and scales ``(..., p)`` (``diag=True``) or ``(..., p, p)`` of
        the bond's coefficients (``S = 0``: coefficients known, as in a pooled fit).
    mu_log_sigma, tau_log_sigma : (...)
        Population mean and standard deviation of the bond's log residual scale (``tau > 0``).
    diag : bool
        Whether ``S`` holds diagonal scales.
    nodes : int
        Gauss-Hermite nodes of the adapted quadrature (see the module Notes).

    Returns
    -------
    ndarray (...)
        The log marginal density of each bond's returns.

    Notes
    -----
    ``log p(y | F, m, S, mu, tau) = log(sqrt(2) v) + log sum_j w_j exp(x_j^2 + h(u* + sqrt(2) v
    x_j))`` with ``h(u) = log p_c(y | e^u) + log N(u; mu, tau)``, ``u*`` the mode of ``h`` and
    ``v = (-h''(u*))^(-1/2)`` (module Notes).
    """
    if int(nodes) < 1:
        raise SpecError(f"nodes must be a positive number of quadrature nodes, got {nodes}")
    rtr, lam, zsq = collapsed_in_log_sigma(XtX, Xty, yty, n, m, S, diag=diag)
    shape = rtr.shape
    n = np.broadcast_to(np.asarray(n, dtype=float), shape)
    mu = np.broadcast_to(np.asarray(mu_log_sigma, dtype=float), shape)
    tau = np.broadcast_to(np.asarray(tau_log_sigma, dtype=float), shape)
    if np.any(~(tau > 0)):
        raise SpecError("tau_log_sigma must be positive (a posterior draw has tau <= 0)")
    # Gaussian start: the likelihood of u is about N(log sqrt(r'r / n), 1 / sqrt(2 n))
    prec_l = 2.0 * n
    u_l = 0.5 * np.log(np.where(n > 0, np.maximum(rtr, 1e-300) / np.maximum(n, 1), 1.0))
    u = (prec_l * u_l + mu / tau**2) / (prec_l + 1.0 / tau**2)
    for _ in range(_NEWTON_STEPS):
        g, dg = _derivatives(u, n, rtr, lam, zsq, mu, tau)
        step = np.where(dg < 0, -g / np.where(dg < 0, dg, -1.0), np.sign(g) * tau)
        step = np.clip(step, -1.0, 1.0)
        u = u + step
        if np.all(np.abs(step) < 1e-12):
            break
    _, dg = _derivatives(u, n, rtr, lam, zsq, mu, tau)
    v = np.where(dg < 0, 1.0 / np.sqrt(np.where(dg < 0, -dg, 1.0)), tau)
    x, w = np.polynomial.hermite.hermgauss(int(nodes))
    uj = u[..., None] + np.sqrt(2.0) * v[..., None] * x
    ex = (..., None)
    h = (collapsed_loglik_u(uj, n[ex], rtr[ex], lam[..., None, :], zsq[..., None, :])
         - 0.5 * ((uj - mu[ex]) / tau[ex]) ** 2 - np.log(tau[ex]) - 0.5 * LOG_2PI)
    t = np.log(w) + x**2 + h
    tmax = t.max(-1)
    return np.log(np.sqrt(2.0) * v) + tmax + np.log(np.exp(t - tmax[..., None]).sum(-1))


# ----------------------------------------------------------------------------- from a fit
def _pooling(idata, post) -> str:
    pooling = idata.attrs.get("pooling") or spec_of(idata).get("pooling")
    if pooling:
        return str(pooling)
    if "mu_alpha" in post:
        return "hierarchical"
    return "pooled" if "bond" not in post["alpha"].dims else "unpooled"


def _hyper_blocks(idata, post, pooling):
    """``(m, S, mu, tau, diag, group_of_bond)`` over (draw, group) of the fit's posterior.

    ``m (S, G, p)``, ``S (S, G, p)`` or ``(S, G, p, p)``, ``mu``/``tau (S, G)``; a pooled fit
    has one "group" (``G = 1``) and ``S = 0``.
    """
    Sd = post.sizes["chain"] * post.sizes["draw"]

    def flat(name, *dims):
        if name not in post:
            raise SpecError(f"the posterior has no {name!r}: is it a {pooling} FactorModel fit?")
        da = post[name].transpose("chain", "draw", *dims)
        return da.values.reshape(Sd, *da.shape[2:])

    factors = idata["constant_data"]["factor_returns"]["factor"].values
    if pooling == "pooled":
        alpha = flat("alpha")
        beta = align_labels(post["beta"], "factor", factors, "the posterior's 'beta'")
        beta = beta.transpose("chain", "draw", "factor").values.reshape(Sd, len(factors))
        m = np.concatenate([alpha[:, None], beta], axis=1)[:, None, :]
        mu = flat("mu_log_sigma")[:, None]
        tau = flat("tau_log_sigma")[:, None]
        return m, np.zeros_like(m), mu, tau, True, None
    g_dim = post["mu_alpha"].dims[-1]
    if g_dim in ("chain", "draw"):
        raise SpecError("the posterior's 'mu_alpha' has no group dimension")
    mu_beta = align_labels(post["mu_beta"], "factor", factors, "the posterior's 'mu_beta'")
    tau_beta = align_labels(post["tau_beta"], "factor", factors, "the posterior's 'tau_beta'")
    mu_a = flat("mu_alpha", g_dim)
    mu_b = mu_beta.transpose("chain", "draw", g_dim, "factor").values
    mu_b = mu_b.reshape(Sd, *mu_b.shape[2:])
    tau_a = flat("tau_alpha", g_dim)
    tau_b = tau_beta.transpose("chain", "draw", g_dim, "factor").values
    tau_b = tau_b.reshape(Sd, *tau_b.shape[2:])
    m = np.concatenate([mu_a[..., None], mu_b], axis=-1)
    G, p = m.shape[1], m.shape[2]
    correlated = "chol_corr_beta" in post or "corr_beta" in post
    if correlated:
        if "chol_corr_beta" in post:
            L = post["chol_corr_beta"].values
            L = L.reshape(Sd, *L.shape[2:])
        else:
            C = post["corr_beta"].values
            L = np.linalg.cholesky(C.reshape(Sd, *C.shape[2:]))
        S = np.zeros((Sd, G, p, p))
        S[..., 0, 0] = tau_a
        S[..., 1:, 1:] = tau_b[..., :, None] * L
    else:
        S = np.concatenate([tau_a[..., None], tau_b], axis=-1)
    mu = flat("mu_log_sigma", g_dim)
    tau = flat("tau_log_sigma", g_dim)
    return m, S, mu, tau, not correlated, post[g_dim].values


def bond_loglik(idata: xr.DataTree, *, nodes: int = 32,
                max_bytes: int = 64 * 2**20) -> xr.DataArray:
    """Per-draw log predictive density of each bond's returns given the hyperparameters.

    Parameters
    ----------
    idata : xarray.DataTree
        A hierarchical or pooled Gaussian :class:`~bayesbond.FactorModel` fit (its posterior,
        ``observed_data.returns`` and ``constant_data.factor_returns`` / ``group``).
    nodes : int
        Gauss-Hermite nodes over ``log sigma`` (:func:`bond_marginal_loglik`).
    max_bytes : int
        Memory of the temporaries of one block of bonds (at least one bond a block).

    Returns
    -------
    xarray.DataArray (chain, draw, bond)
        ``log p(y_i | F, m_g, S_g, mu_log_sigma_g, tau_log_sigma_g)`` at each posterior draw.
        For a pooled fit ``m`` is the draw of the shared ``(alpha, beta)`` and ``S = 0``.

    Raises
    ------
    SpecError
        An unpooled fit (no population to draw a new bond from), Student-t errors (the
        coefficients do not integrate out in closed form), date effects (bonds are not
        independent given the hyperparameters), a missing posterior variable, or bonds whose
        group the posterior lacks (named).
    """
    for grp in ("posterior", "observed_data", "constant_data"):
        if grp not in idata.children:
            raise SpecError(f"the fit has no {grp!r} group: is it a FactorModel fit?")
    post = idata["posterior"].to_dataset()
    pooling = _pooling(idata, post)
    if pooling == "unpooled":
        raise SpecError(
            "leave-one-bond-out (by='bond') needs a population of bonds to predict a new bond "
            "from: an unpooled fit gives every bond its own coefficients with no hyperparameters "
            "shared across bonds, so a left-out bond's returns are predicted by the prior alone. "
            "Use pooling='hierarchical' (or 'pooled'), or by='obs'")
    errors = idata.attrs.get("errors", spec_of(idata).get("errors", "normal"))
    if errors != "normal":
        raise SpecError(
            f"leave-one-bond-out (by='bond') needs Gaussian errors (the fit has errors="
            f"{errors!r}): a bond's coefficients are integrated out in closed form only under "
            "Gaussian errors. Use by='obs'")
    if "date_effect" in post or spec_of(idata).get("date_effects"):
        raise SpecError(
            "leave-one-bond-out (by='bond') is not available for fits with date effects: the "
            "bonds share the date effects, so a bond's returns are not independent of the "
            "others' given the hyperparameters. Use by='obs' or bb.kfold(..., by='date')")
    y = idata["observed_data"]["returns"].transpose("date", "bond")
    F = idata["constant_data"]["factor_returns"].transpose("date", "factor")
    F = align_labels(F, "date", y["date"].values, "constant_data.factor_returns")
    bonds = y["bond"].values
    m, S, mu, tau, diag, gnames = _hyper_blocks(idata, post, pooling)
    if gnames is None:
        gi = np.zeros(len(bonds), dtype=int)
    else:
        if "group" not in idata["constant_data"].data_vars:
            raise SpecError("a hierarchical fit needs constant_data.group (each bond's group)")
        grp = align_labels(idata["constant_data"]["group"], "bond", bonds, "constant_data.group")
        labels = np.asarray(grp.values).astype(str)
        pos = {str(g): i for i, g in enumerate(gnames)}
        absent = sorted({g for g in labels if g not in pos})
        if absent:
            who = [str(b) for b, g in zip(bonds, labels, strict=True) if g in absent]
            raise SpecError(f"bonds {listing(who)} are in groups {listing(absent)}, which the "
                            "posterior's hyperparameters do not have")
        gi = np.array([pos[g] for g in labels])
    X = np.column_stack([np.ones(len(y["date"])), F.values])
    XtX, Xty, yty, n = sufficient_stats(y.values, X)
    Sd, p = m.shape[0], m.shape[-1]
    per_bond = 8 * Sd * (4 * p * p + 8 * p + 6 * int(nodes) + 16)
    size = int(max(1, min(len(bonds), max_bytes // per_bond)))
    out = np.empty((Sd, len(bonds)))
    for start in range(0, len(bonds), size):
        sl = slice(start, min(start + size, len(bonds)))
        g = gi[sl]
        out[:, sl] = bond_marginal_loglik(XtX[sl], Xty[sl], yty[sl], n[sl], m[:, g], S[:, g],
                                          mu[:, g], tau[:, g], diag=diag, nodes=nodes)
    C, D = post.sizes["chain"], post.sizes["draw"]
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "bond": bonds}
    da = xr.DataArray(out.reshape(C, D, len(bonds)), dims=("chain", "draw", "bond"),
                      coords=coords, name="returns")
    if gnames is not None:
        da = da.assign_coords(bond_group=("bond", np.asarray(gnames)[gi].astype(str)))
    return da

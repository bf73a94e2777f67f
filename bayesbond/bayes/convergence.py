"""Rank-normalised split R-hat and bulk/tail ESS, vectorised over all posterior elements.

The numbers of ``arviz_stats`` 1.3 (``azs.rhat`` with ``method="rank"``, ``azs.ess`` with
``method="bulk"`` and ``"tail"``) to floating-point rounding, for every element of a
``(chain, draw, *elements)`` array at once (sorts and FFTs over blocks of elements, bounding the
FFTs' memory) instead of one Python call per element and statistic (milliseconds each in
``arviz_stats``: tens of seconds for a few thousand elements). :func:`rhat_ess` returns all three,
sharing the sort and the normal scores between R-hat and bulk ESS. The algorithms (split chains,
rank normalisation, Geyer's initial sequences) are those of Vehtari et al. (2021), see the Notes
of :func:`rhat` and :func:`ess_bulk`. An element with a NaN draw gets NaN for every statistic; an
array with fewer than 4 draws gives NaN everywhere, and R-hat is NaN with a single chain.

References
----------
Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
Rank-normalization, folding, and localization: an improved R-hat for assessing convergence of
MCMC (with discussion). *Bayesian Analysis* 16(2), 667-718. doi:10.1214/20-BA1221
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from scipy.fftpack import next_fast_len

__all__ = ["rhat", "ess_bulk", "ess_tail", "rhat_ess"]

_MIN_DRAWS = 4
_BLOM_C = 3.0 / 8.0
# Number of (chain x draw) values per vectorised block of elements.
_BLOCK_VALUES = 1 << 20


# -------------------------------------------------------------------------------- input handling


def _prepare(x, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """Check ``x`` and view it as ``(chain, draw, n_elements)``; return it and the element shape."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{name}: x must have shape (chain, draw, *elements); got shape {x.shape}")
    if not (x.dtype.kind in "iu" or x.dtype in (np.float32, np.float64)):
        raise TypeError(f"{name}: x must be float64, float32 or integer; got dtype {x.dtype}")
    element_shape = x.shape[2:]
    n_elements = int(np.prod(element_shape, dtype=np.int64))
    return x.reshape(x.shape[0], x.shape[1], n_elements), element_shape


def _blocks(x3: np.ndarray):
    """Yield ``(slice, block)`` with ``block`` a contiguous ``(element, chain, draw)`` array."""
    n_chain, n_draw, n_elements = x3.shape
    step = max(1, _BLOCK_VALUES // max(1, n_chain * n_draw))
    for start in range(0, n_elements, step):
        sl = slice(start, min(start + step, n_elements))
        yield sl, np.ascontiguousarray(np.moveaxis(x3[:, :, sl], 2, 0))


def _apply(x, name: str, min_chains: int, block_fn, n_out: int = 1) -> np.ndarray:
    """Run ``block_fn`` on every valid element of ``x``; return ``(n_out, *elements)`` results.

    ``block_fn`` maps an ``(element, chain, draw)`` block to ``(n_out, element)`` values.
    Elements containing a NaN, and every element when there are fewer than ``min_chains`` chains
    or fewer than 4 draws, get NaN (``arviz_stats``' ``not_valid`` rule).
    """
    x3, element_shape = _prepare(x, name)
    n_chain, n_draw, n_elements = x3.shape
    out = np.full((n_out, n_elements), np.nan)
    if n_chain < min_chains or n_draw < _MIN_DRAWS or n_elements == 0:
        return out.reshape(n_out, *element_shape)
    for sl, block in _blocks(x3):
        if block.dtype.kind == "f":
            bad = np.isnan(block).any(axis=(1, 2))
            if bad.any():
                block = block.copy()
                block[bad] = 0
        else:
            bad = np.zeros(block.shape[0], dtype=bool)
        with np.errstate(invalid="ignore", divide="ignore"):
            res = block_fn(block)
        out[:, sl] = np.where(bad, np.nan, res)
    return out.reshape(n_out, *element_shape)


# -------------------------------------- building blocks, each on an (element, chain, draw) array


def _split_chains(a: np.ndarray) -> np.ndarray:
    """Split each chain in half: ``(E, C, D) -> (E, 2C, D // 2)``, first halves first."""
    half = a.shape[-1] // 2
    return np.concatenate((a[..., :half], a[..., a.shape[-1] - half:]), axis=1)


def _z_scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Rank-normalise each element over all its chains' draws pooled (average ranks for ties).

    Returns the normal scores, shaped like ``a`` (float64), and each element's median (as
    :func:`numpy.median` computes it, in ``a``'s dtype rules), read off the same sort.

    The average rank of a draw is :math:`r = (i + j)/2 + 1` for a tie group occupying the
    0-based sorted positions :math:`i..j`, so :math:`2r - 2 = i + j` is an integer in
    :math:`[0, 2n - 2]`: the normal scores are looked up in a table of
    :math:`\Phi^{-1}((r - c)/(n - 2c + 1))` over those half-integer ranks, the same numbers
    as ``scipy.stats.rankdata(method="average")`` followed by ``scipy.stats.norm.ppf``.
    """
    n_el = a.shape[0]
    size = a[0].size
    flat = a.reshape(n_el, size)
    # Flat indices of each element's values in sorted order (cheaper than *_along_axis).
    order = np.argsort(flat, axis=-1)
    order += (np.arange(n_el) * size)[:, None]
    srt = flat.ravel()[order]
    half = size // 2
    if size % 2 == 0:
        median = np.mean(srt[:, half - 1:half + 1], axis=-1)
    else:
        median = np.mean(srt[:, half:half + 1], axis=-1)

    pos = np.arange(size)
    starts = np.ones((n_el, size), dtype=bool)
    np.not_equal(srt[:, 1:], srt[:, :-1], out=starts[:, 1:])
    if starts.all():  # no ties: the sorted position is the rank - 1
        twice = np.broadcast_to(2 * pos, (n_el, size))
    else:
        first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
        ends = np.ones((n_el, size), dtype=bool)
        ends[:, :-1] = starts[:, 1:]
        last = np.minimum.accumulate(np.where(ends, pos, size - 1)[:, ::-1], axis=1)[:, ::-1]
        twice = first + last
    # scipy's rankdata returns ranks in the result dtype of the data and a Python float
    # (float32 for float32 draws), and arviz back-transforms them in that dtype.
    ranks = (np.arange(2 * size - 1) / 2 + 1).astype(np.result_type(a.dtype, 1.0))
    table = stats.norm.ppf((ranks - _BLOM_C) / (size - 2 * _BLOM_C + 1))
    z = np.empty(a.shape)
    z.ravel()[order] = table[twice]
    return z, median


def _rhat_basic(a: np.ndarray) -> np.ndarray:
    """Potential scale reduction of ``(E, C, N)`` chains (no splitting, no ranking)."""
    a = np.asarray(a, dtype=float)
    n = a.shape[-1]
    chain_mean = a.mean(axis=-1)
    chain_var = a.var(axis=-1, ddof=1)
    between = n * chain_mean.var(axis=-1, ddof=1)
    within = chain_var.mean(axis=-1)
    return np.sqrt((between / within + n - 1) / n)


def _autocov(a: np.ndarray) -> np.ndarray:
    """Autocovariance at every lag along the last axis (biased, divided by the length), by FFT."""
    n = a.shape[-1]
    m = next_fast_len(2 * n)
    a = a - a.mean(axis=-1, keepdims=True)
    f = np.fft.rfft(a, n=m, axis=-1)
    f *= np.conjugate(f)
    cov = np.fft.irfft(f, n=m, axis=-1)[..., :n]
    cov /= n
    return cov


def _ess_basic(a: np.ndarray) -> np.ndarray:
    """Effective sample size of ``(E, C, N)`` chains (already split/transformed as required).

    Vectorised form of ``arviz_stats``' ``_ess``; see :func:`ess_bulk` for the formulas.
    """
    a = np.asarray(a, dtype=float)
    n_el, n_chain, n = a.shape
    size = n_chain * n
    constant = (a.max(axis=(1, 2)) - a.min(axis=(1, 2))) < np.finfo(float).resolution

    acov = _autocov(a)
    mean_var = acov[..., 0].mean(axis=-1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if n_chain > 1:
        var_plus = var_plus + a.mean(axis=-1).var(axis=-1, ddof=1)
    rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]

    # Pair sums S_0 = 1 + rho_1, S_j = rho_2j + rho_2j+1 for j = 1..j_max. arviz's loop visits
    # pair j (j >= 1) while j <= j_max and S_0..S_{j-1} are all > 0; j_last is the last visited.
    j_max = (n - 3) // 2
    n_pairs = max(j_max, 0) + 1
    pair = np.empty((n_el, n_pairs))
    pair[:, 0] = 1.0 + rho[:, 1]
    if j_max >= 1:
        pair[:, 1:] = rho[:, 2:2 * j_max + 1:2] + rho[:, 3:2 * j_max + 2:2]
        stop = ~(pair[:, :j_max] > 0)
        j_last = np.where(stop.any(axis=1), stop.argmax(axis=1), j_max)
    else:
        j_last = np.zeros(n_el, dtype=np.intp)

    # Initial monotone sequence: pair sums 0..j_last-1 replaced by their running minimum.
    mono = np.minimum.accumulate(pair, axis=1)
    head = np.where(np.arange(n_pairs) < j_last[:, None], mono, 0.0).sum(axis=1)

    # Last term rho_{2 j_last}: kept if its pair sum was >= 0 or if it is > 0 itself
    # (arviz's "improve estimation" step); rho_0 = 1 when no pair was visited, so that
    # tau = 0 and the floor below applies.
    rho_even = np.take_along_axis(rho, 2 * j_last[:, None], axis=1)[:, 0]
    pair_last = np.take_along_axis(pair, j_last[:, None], axis=1)[:, 0]
    last = np.where((pair_last >= 0) | (rho_even > 0), rho_even, 0.0)
    last = np.where(j_last == 0, 1.0, last)

    tau = -1.0 + 2.0 * head + last
    floor = 1.0 / np.log10(size)
    tau = np.where(floor > tau, floor, tau)
    # arviz also returns NaN when rho_1 is NaN; that needs var_plus = 0, i.e. a constant
    # element, which is caught by the resolution check above.
    ess = size / tau
    return np.where(constant, float(size), ess)


def _rhat_from_split(split: np.ndarray, z: np.ndarray, median: np.ndarray) -> np.ndarray:
    """Rank R-hat from split chains, their normal scores and their medians."""
    bulk = _rhat_basic(z)
    tail = _rhat_basic(_z_scale(np.abs(split - median[:, None, None]))[0])
    # Python's max(bulk, tail): bulk unless tail is strictly larger (so NaN bulk stays NaN).
    return np.where(tail > bulk, tail, bulk)


def _ess_tail_block(a: np.ndarray, low: float, high: float) -> np.ndarray:
    flat = a.reshape(a.shape[0], -1)
    ess = []
    for prob in (low, high):
        q = np.quantile(flat, prob, axis=-1)
        ess.append(_ess_basic(_split_chains(a <= q[:, None, None])))
    # Python's min(low, high): low unless high is strictly smaller.
    return np.where(ess[1] < ess[0], ess[1], ess[0])


def _rhat_block(a: np.ndarray) -> np.ndarray:
    split = _split_chains(a)
    return _rhat_from_split(split, *_z_scale(split))


def _ess_bulk_block(a: np.ndarray) -> np.ndarray:
    return _ess_basic(_z_scale(_split_chains(a))[0])


def _tail_probs(prob, name: str) -> tuple[float, float]:
    """Resolve ``prob`` the way ``arviz_stats``' DataArray ``ess(method="tail")`` does."""
    if prob is None:
        from arviz_base import rcParams

        prob = rcParams["stats.ci_prob"]
    if isinstance(prob, Sequence) and not isinstance(prob, str):
        if len(prob) != 2:
            raise ValueError(f"{name}: prob must be a float or two floats; got {prob!r}")
        low, high = float(prob[0]), float(prob[1])
        if not (0 <= low <= 1 and 0 < high <= 1):
            raise ValueError(
                f"{name}: prob must be (low, high) with 0 <= low <= 1 and 0 < high <= 1; "
                f"got {prob!r}"
            )
        return low, high
    prob = float(prob)
    if not 0 < prob <= 1:
        raise ValueError(f"{name}: prob must lie in (0, 1]; got {prob}")
    low, high = sorted((prob, 1 - prob))
    return low, high


# ------------------------------------------------------------------------------ public functions


def rhat(x) -> np.ndarray:
    r"""Rank-normalised split R-hat of every element, as ``arviz_stats.rhat(method="rank")``.

    Parameters
    ----------
    x : array_like, shape (chain, draw, \*elements)
        Posterior draws: float64, float32 or integer dtype.

    Returns
    -------
    numpy.ndarray, shape elements
        :math:`\max(\hat R_{\text{bulk}}, \hat R_{\text{tail}})` per element (float64). NaN where
        the element has a NaN draw or is constant (0/0), everywhere if there are fewer than
        2 chains or fewer than 4 draws. When every split chain is constant but they differ,
        the within-chain variance is 0 up to rounding and R-hat is huge or ``inf``.

    Raises
    ------
    ValueError
        If ``x`` has fewer than 2 dimensions.
    TypeError
        If ``x`` is not float64, float32 or integer (float16 ranks would be rounded).

    Notes
    -----
    Each of the :math:`C` chains of :math:`D` draws is split into two halves of
    :math:`N = \lfloor D/2 \rfloor` draws (the middle draw dropped when :math:`D` is odd),
    giving :math:`M = 2C` chains. With :math:`\bar\theta_m` and :math:`s_m^2` the mean and
    (ddof 1) variance of split chain :math:`m`,

    .. math::

        B = N \operatorname{var}_m(\bar\theta_m), \quad W = \frac{1}{M}\sum_m s_m^2, \quad
        \hat R = \sqrt{\frac{B/W + N - 1}{N}}.

    :math:`\hat R_{\text{bulk}}` applies this to the rank-normalised draws
    :math:`z = \Phi^{-1}\big((r - 3/8)/(MN + 1/4)\big)`, :math:`r` the average rank of a draw
    among all :math:`MN` split draws of the element; :math:`\hat R_{\text{tail}}` to the
    rank-normalised folded draws :math:`|\theta - \operatorname{median}(\theta)|`.
    If :math:`\hat R_{\text{tail}}` is NaN while :math:`\hat R_{\text{bulk}}` is not (e.g. draws
    symmetric around the median, whose folded values are constant), the result is
    :math:`\hat R_{\text{bulk}}`, as with Python's ``max`` in ``arviz_stats``.

    References
    ----------
    Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021), *Bayesian Analysis* 16(2), 667-718.
    """
    return _apply(x, "rhat", 2, _rhat_block)[0]


def ess_bulk(x) -> np.ndarray:
    r"""Bulk effective sample size of every element, as ``arviz_stats.ess(method="bulk")``.

    Parameters
    ----------
    x : array_like, shape (chain, draw, \*elements)
        As in :func:`rhat`.

    Returns
    -------
    numpy.ndarray, shape elements
        Bulk ESS per element (float64). A constant element gets the number of split draws
        :math:`2C\lfloor D/2 \rfloor`; NaN where the element has a NaN draw and everywhere if
        there are fewer than 4 draws.

    Raises
    ------
    ValueError, TypeError
        As :func:`rhat`.

    Notes
    -----
    The draws are split into :math:`M = 2C` chains of :math:`N = \lfloor D/2 \rfloor` draws and
    rank-normalised as in :func:`rhat`. With :math:`\hat\gamma_{m,t}` the (biased, FFT)
    autocovariance of split chain :math:`m` at lag :math:`t`,

    .. math::

        \hat W = \frac{N}{N-1}\,\overline{\hat\gamma_{\cdot,0}}, \quad
        \widehat{\operatorname{var}}^+ = \frac{N-1}{N}\hat W + \operatorname{var}_m(\bar z_m),
        \quad \hat\rho_t = 1 - \frac{\hat W - \overline{\hat\gamma_{\cdot,t}}}
        {\widehat{\operatorname{var}}^+},

    with :math:`\hat\rho_0 := 1`. Geyer's initial positive sequence uses the pair sums
    :math:`P_0 = 1 + \hat\rho_1`, :math:`P_j = \hat\rho_{2j} + \hat\rho_{2j+1}`: pairs
    :math:`j = 1, 2, \dots` are visited while :math:`j \le \lfloor (N-3)/2 \rfloor` and all
    earlier pair sums are :math:`> 0`; :math:`J` is the last pair visited (0 if none). The
    initial monotone sequence replaces :math:`P_0, \dots, P_{J-1}` by their running minimum
    :math:`\tilde P_j`. Then

    .. math::

        \hat\tau = -1 + 2\sum_{j<J}\tilde P_j + \hat\rho_{2J}^\ast, \quad
        \hat\tau \leftarrow \max\big(\hat\tau, 1/\log_{10}(MN)\big), \quad
        \widehat{\text{ESS}} = MN / \hat\tau,

    where :math:`\hat\rho_{2J}^\ast = \hat\rho_{2J}` if :math:`P_J \ge 0` or
    :math:`\hat\rho_{2J} > 0`, else 0 (and 1 when :math:`J = 0`). Elements whose split draws
    span less than ``numpy.finfo(float).resolution`` get :math:`MN`.

    References
    ----------
    Vehtari et al. (2021), see the module docstring.
    """
    return _apply(x, "ess_bulk", 1, _ess_bulk_block)[0]


def ess_tail(x, prob=None) -> np.ndarray:
    r"""Tail effective sample size of every element, as ``arviz_stats.ess(method="tail")``.

    Parameters
    ----------
    x : array_like, shape (chain, draw, \*elements)
        As in :func:`rhat`.
    prob : float or (float, float), optional
        A float :math:`p \in (0, 1]` uses the quantiles :math:`\min(p, 1-p)` and
        :math:`\max(p, 1-p)`; a pair ``(low, high)`` uses those two quantiles. The default
        ``None`` is ``arviz_stats``' default: ``arviz_base.rcParams["stats.ci_prob"]``
        (0.89 unless changed, i.e. the 0.11 and 0.89 quantiles, not 0.05 and 0.95).

    Returns
    -------
    numpy.ndarray, shape elements
        Tail ESS per element (float64); NaN where the element has a NaN draw and everywhere if
        there are fewer than 4 draws.

    Raises
    ------
    ValueError, TypeError
        As :func:`rhat`, and ``ValueError`` if ``prob`` is out of range.

    Notes
    -----
    For each probability :math:`p`, the quantile :math:`q_p` of all :math:`CD` draws of the
    element (unsplit; numpy's "linear" method, computed in the input dtype) gives the
    indicator :math:`I = \mathbb 1\{\theta \le q_p\}`, whose ESS is computed exactly as in
    :func:`ess_bulk` but without rank normalisation (split chains, FFT autocovariance, Geyer's
    initial positive and monotone sequences; a constant indicator gives :math:`MN`). The tail
    ESS is :math:`\min(\widehat{\text{ESS}}_{\text{low}}, \widehat{\text{ESS}}_{\text{high}})`.

    References
    ----------
    Vehtari et al. (2021), see the module docstring.
    """
    low, high = _tail_probs(prob, "ess_tail")
    return _apply(x, "ess_tail", 1, lambda a: _ess_tail_block(a, low, high))[0]


def rhat_ess(x, prob=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""R-hat, bulk ESS and tail ESS of every element in one pass.

    The same numbers as ``(rhat(x), ess_bulk(x), ess_tail(x, prob))``, sharing the split chains,
    their sort and their normal scores between R-hat and bulk ESS.

    Parameters
    ----------
    x : array_like, shape (chain, draw, \*elements)
        As in :func:`rhat`.
    prob : float or (float, float), optional
        Tail probabilities, as in :func:`ess_tail`.

    Returns
    -------
    rhat, ess_bulk, ess_tail : numpy.ndarray, shape elements
        See :func:`rhat`, :func:`ess_bulk` and :func:`ess_tail`.

    Raises
    ------
    ValueError, TypeError
        As :func:`rhat`, and ``ValueError`` if ``prob`` is out of range.
    """
    low, high = _tail_probs(prob, "rhat_ess")
    n_chain = np.shape(x)[0] if np.ndim(x) else 0

    def block_fn(a):
        split = _split_chains(a)
        z, median = _z_scale(split)
        if n_chain >= 2:
            r = _rhat_from_split(split, z, median)
        else:
            r = np.full(a.shape[0], np.nan)
        return np.stack([r, _ess_basic(z), _ess_tail_block(a, low, high)])

    out = _apply(x, "rhat_ess", 1, block_fn, n_out=3)
    return out[0], out[1], out[2]

r"""Running independent tasks here or on a ``dask.distributed`` cluster, with per-key seeds.

One job: map a module-level function over argument tuples, either in this process one after
another (``client=None``) or on the workers of a :class:`distributed.Client` (a
``LocalCluster`` on one machine, or any scheduler address). Nothing here knows about models:
a worker process keeps the samplers it compiled (the cache of
:func:`bayesbond.bayes.sampling.sample` lives in the worker's memory), so a task of the same
graph and shapes compiles once per worker, not once per task.

Seeds: :func:`key_seed` derives the seed of a task from a base seed and the task's key alone,
so a task gets the same seed whichever process runs it, in whatever order, and whichever other
tasks run with it: serial and distributed results are bit-identical (the samplers compile
without fastmath, :func:`bayesbond.bayes.sampling.ieee_compile`).
"""

from __future__ import annotations

import hashlib
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesbond.errors import SpecError

__all__ = ["Counter", "Outcome", "base_entropy", "check_client", "have_distributed", "key_seed",
           "run_in_order", "run_keyed", "worker_name"]


def have_distributed() -> bool:
    """Whether ``dask.distributed`` can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def check_client(client, what: str = "the fits") -> None:
    """Refuse a ``client`` that cannot run tasks (:class:`~bayesbond.errors.SpecError`).

    Parameters
    ----------
    client : dask.distributed.Client or None
    what : str
        What would run (for the message).
    """
    if client is None:
        return
    if not have_distributed():
        raise SpecError("client= needs dask.distributed, which is not installed in this "
                        f"environment (pip install bayesbond[dask]); pass client=None to run "
                        f"{what} here one after another")
    if not (callable(getattr(client, "submit", None)) and
            callable(getattr(client, "gather", None))):
        raise SpecError(f"client = {type(client).__name__}: need a dask.distributed.Client "
                        "(with submit and gather) or None")


def run_in_order(fn, items, client=None) -> list:
    """``[fn(*args) for args in items]``, here or on ``client``; the first error is raised.

    Parameters
    ----------
    fn : callable
        A module-level function (workers import it by name).
    items : list of tuple
        Positional arguments of each call.
    client : dask.distributed.Client, optional

    Returns
    -------
    list
        The results in the order of ``items``.
    """
    if client is None:
        return [fn(*args) for args in items]
    check_client(client)
    futures = [client.submit(fn, *args, pure=False) for args in items]
    return client.gather(futures)


@dataclass
class Outcome:
    """What became of one task of :func:`run_keyed`: its ``value`` or its ``error``."""

    key: Any
    value: Any = None
    error: BaseException | None = None
    traceback: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def run_keyed(fn, items, client=None, *, on_done=None) -> dict:
    """Run ``fn(*args)`` for every ``(key, args)`` of ``items``, keeping every outcome.

    Parameters
    ----------
    fn : callable
        A module-level function.
    items : list of (key, tuple)
    client : dask.distributed.Client, optional
        None: here, in the order of ``items``. Otherwise every task is submitted at once and
        collected as it completes.
    on_done : callable ``(Outcome) -> None``, optional
        Called here as each task ends (e.g. a counter of fits done).

    Returns
    -------
    dict
        ``key -> Outcome`` in the order of ``items``. A task that raises (here or on a
        worker, or whose worker died) gives an :class:`Outcome` with ``error`` set; the other
        tasks are not affected. ``KeyboardInterrupt`` stops the run.
    """
    out: dict = {}
    if client is None:
        for key, args in items:
            try:
                res = Outcome(key, value=fn(*args))
            except Exception as exc:  # reported with its key; the other tasks go on
                res = Outcome(key, error=exc, traceback=traceback.format_exc())
            out[key] = res
            if on_done is not None:
                on_done(res)
        return out
    check_client(client)
    from distributed import as_completed

    futures = {client.submit(fn, *args, pure=False): key for key, args in items}
    try:
        for fut in as_completed(list(futures)):
            key = futures[fut]
            if fut.status == "error":
                exc = fut.exception()
                tb = "".join(traceback.format_tb(fut.traceback())) if fut.traceback() else ""
                res = Outcome(key, error=exc, traceback=tb)
            else:
                try:
                    res = Outcome(key, value=fut.result())
                except Exception as exc:  # cancelled, lost worker, ...
                    res = Outcome(key, error=exc, traceback=traceback.format_exc())
            out[key] = res
            fut.release()
            if on_done is not None:
                on_done(res)
    except BaseException:
        client.cancel(list(futures))
        raise
    return {key: out[key] for key, _ in items}


def worker_name() -> str:
    """Address of the dask worker running the caller, or ``"local"``."""
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return str(get_worker().address)
        except ValueError:  # not on a worker
            pass
    return "local"


def base_entropy(random_seed) -> int | list[int]:
    """The entropy from which the per-key seeds derive (:func:`key_seed`).

    Parameters
    ----------
    random_seed : int, sequence of int, numpy.random.Generator or None
        None draws fresh entropy (returned, so that the run can be repeated); a Generator
        gives one 63-bit draw from it.

    Returns
    -------
    int or list of int
    """
    if random_seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_seed, np.random.Generator):
        return int(random_seed.integers(2**63))
    if isinstance(random_seed, bool):
        raise SpecError(f"random_seed = {random_seed!r}: need an int, a sequence of ints, a "
                        "numpy Generator or None")
    try:
        arr = np.asarray(random_seed)
        if arr.dtype.kind not in "iu" or arr.ndim > 1 or (arr < 0).any():
            raise TypeError
    except (TypeError, ValueError):
        raise SpecError(f"random_seed = {random_seed!r}: need a non-negative int, a sequence "
                        "of them, a numpy Generator or None") from None
    return int(arr) if arr.ndim == 0 else [int(x) for x in arr]


def key_seed(entropy, key) -> int:
    r"""The seed of the task ``key``: a function of the base entropy and ``str(key)`` only.

    Parameters
    ----------
    entropy : int or list of int
        From :func:`base_entropy`.
    key : object
        The task's key (its ``str`` is hashed).

    Returns
    -------
    int
        In ``[0, 2^63)``.

    Notes
    -----
    ``seed = SeedSequence(entropy, spawn_key=(h,)).generate_state(1, uint64)[0] >> 1`` with
    ``h`` the first 8 bytes of SHA-256 of ``str(key)`` (little-endian): numpy's seed
    sequences decorrelate the streams of different spawn keys, and the seed of a key does not
    depend on the other keys or on their order.
    """
    h = int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "little")
    ss = np.random.SeedSequence(entropy, spawn_key=(h,))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


class Counter:
    """``on_done`` callback of :func:`run_keyed` that reports ``fits done: k/n``.

    Lines go to :func:`bayesbond.bayes.sampling.report` (the progress callback, or stderr on a
    terminal); ``force=True`` writes them to stderr otherwise.
    """

    def __init__(self, total: int, what: str = "fits", *, show: bool | None = None):
        self.total, self.what, self.done, self.failed = total, what, 0, 0
        self.show, self.t0 = show, time.perf_counter()

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += not outcome.ok
        if self.show is False:
            return
        elapsed = time.perf_counter() - self.t0
        left = elapsed * (self.total - self.done) / self.done
        msg = (f"{self.what} done: {self.done}/{self.total}"
               + (f" ({self.failed} failed)" if self.failed else "")
               + f", {elapsed:.0f} s elapsed, about {left:.0f} s left")
        from bayesbond.bayes.sampling import report

        if self.show:
            print(f"[bayesbond] {msg}", file=sys.stderr, flush=True)
        else:
            report(msg)

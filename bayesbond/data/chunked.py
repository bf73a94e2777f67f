"""Returns held as a Dask-backed ``xarray.DataArray`` (date, bond), cut into bond chunks.

A chunk along ``bond`` holds every month of its bonds, so any per-bond computation (a batched
time-series regression, a count of observed months) runs on one chunk at a time and only that
chunk is ever in memory. Chunks along ``date`` would split a bond's series and are refused.
"""

from __future__ import annotations

import xarray as xr

from bayesbond.errors import DataError

__all__ = ["bond_blocks", "is_chunked"]


def is_chunked(returns) -> bool:
    """Whether ``returns`` is an ``xarray.DataArray`` backed by a chunked (Dask) array."""
    return isinstance(returns, xr.DataArray) and returns.chunks is not None


def bond_blocks(returns: xr.DataArray, where: str | None = None) -> list[xr.DataArray]:
    """The lazy bond chunks of a chunked DataArray with dims ``(date, bond)``, in bond order.

    Parameters
    ----------
    returns : xarray.DataArray
        Dims ``(date, bond)`` in either order, chunked along ``bond`` only (one chunk along
        ``date``).
    where : str, optional
        What the messages call the returns.

    Returns
    -------
    list of xarray.DataArray
        Views ``returns.isel(bond=slice(a, b))`` over the chunk boundaries, transposed to
        ``(date, bond)``; nothing is computed.

    Raises
    ------
    DataError
        Other dims, or more than one chunk along ``date`` (the number of chunks named).
    """
    pre = f"{where}: " if where else ""
    if returns.ndim != 2 or set(returns.dims) != {"date", "bond"}:
        raise DataError(f"{pre}a returns DataArray needs dims (date, bond), got {returns.dims}")
    da = returns.transpose("date", "bond")
    date_chunks, bond_chunks = da.chunks
    if len(date_chunks) > 1:
        raise DataError(
            f"{pre}the returns are chunked along 'date' ({len(date_chunks)} chunks of "
            f"{max(date_chunks)} months at most); chunk them along 'bond' only, e.g. "
            "returns.chunk({'date': -1, 'bond': 2000}), so that each chunk holds whole series"
        )
    out, a = [], 0
    for size in bond_chunks:
        out.append(da.isel(bond=slice(a, a + size)))
        a += size
    return out

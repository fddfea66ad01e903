"""Blockwise functions with halos: neighbours share copied strips, never whole chunks.

:func:`map_halo` does what :func:`dask.array.map_overlap` does for the CNN, the
mode filter and the terrain kernels, with one difference that bounds memory:
the halo a block takes from each neighbour is *copied* out of the neighbour in a
task of its own.  ``map_overlap`` slices neighbours into views, and a NumPy view
keeps its whole parent chunk alive; on a wide scene the workers then hold a full
row of input chunks (every band) until the row below has been processed, so peak
memory grew with the scene's width (4 GiB on a 10,000-pixel-wide scene with
512-pixel chunks).  With copied strips a chunk is released as soon as its own
block and its strips are done; what stays behind is one row of thin strips.

Examples
--------
>>> import dask.array as da, numpy as np
>>> x = da.arange(36, chunks=4).reshape(6, 6).rechunk(3)
>>> box = map_halo(lambda b: b[:-2, :-2] + b[1:-1, :-2] + b[2:, :-2], x, {0: 1, 1: 1},
...                boundary=0, trim=False, chunks=x.chunks, dtype=x.dtype)
>>> bool(box.compute()[2, 2] == x.compute()[1:4, 1].sum())
True
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal

import numpy as np

from xfacies.errors import XfaciesWarning

__all__ = ["map_halo", "min_chunks", "ChunkWarning", "block_windows", "from_block_tasks"]


class ChunkWarning(XfaciesWarning):
    """Chunks were changed to fit a halo."""


def min_chunks(arr: Any, depth: Mapping[int, int], *, warn: str | None = None) -> Any:
    """Merge chunks smaller than the halo along each axis of ``depth``.

    A halo is taken from the adjacent chunk only, so every chunk must be at
    least ``depth`` long (an axis shorter than ``depth`` becomes one chunk).

    Parameters
    ----------
    arr
        A dask array.
    depth
        Halo width per axis.
    warn
        If given, a :class:`ChunkWarning` naming this (e.g. "the model's 28 px
        halo") is issued when chunks change.

    Examples
    --------
    >>> import dask.array as da
    >>> min_chunks(da.zeros((10, 10), chunks=(4, 10)), {0: 3}).chunks[0]
    (4, 6)
    """
    from dask.array.overlap import ensure_minimum_chunksize

    chunks = list(arr.chunks)
    for ax, d in depth.items():
        if d and min(chunks[ax]) < d:
            total = sum(chunks[ax])
            chunks[ax] = (total,) if total <= d else ensure_minimum_chunksize(d, chunks[ax])
    if tuple(chunks) == arr.chunks:
        return arr
    if warn:
        shown = ", ".join(f"axis {ax}: {chunks[ax][:4]}..." for ax in sorted(depth) if depth[ax])
        warnings.warn(
            f"chunks smaller than {warn} were merged into chunks of at least that size ({shown}). "
            "For speed use chunks of 512-2048 px, e.g. features.chunk(y=1024, x=1024).",
            ChunkWarning, stacklevel=3,
        )
    return arr.rechunk(tuple(chunks))


def _strip(block: np.ndarray, index: tuple[slice, ...]) -> np.ndarray:
    """A copy (not a view: a view would keep the whole neighbour chunk alive)."""
    return np.array(block[index], copy=True)


def _apply(centre: np.ndarray, pieces: list[np.ndarray], *, func: Callable, offsets: list,
           depth: dict[int, int], edges: dict[int, tuple[bool, bool]],
           boundary: Any, trim: bool, kwargs: dict) -> np.ndarray:
    nearest = isinstance(boundary, str)
    shape = list(centre.shape)
    for ax, d in depth.items():
        shape[ax] += 2 * d
    # "nearest" overwrites every halo cell below; a constant fills what has no neighbour
    out = np.empty(shape, centre.dtype) if nearest else np.full(shape, boundary, centre.dtype)

    def region(off: tuple[int, ...]) -> tuple[slice, ...]:
        sl = [slice(None)] * centre.ndim
        for (ax, d), o in zip(depth.items(), off):
            n = centre.shape[ax]
            sl[ax] = slice(0, d) if o < 0 else slice(d + n, 2 * d + n) if o > 0 else slice(d, d + n)
        return tuple(sl)

    out[region((0,) * len(depth))] = centre
    for off, piece in zip(offsets, pieces):
        out[region(off)] = piece
    if nearest:  # np.pad(mode="edge") of the whole array, axis by axis
        for ax, d in depth.items():
            lo, hi = edges[ax]
            n = centre.shape[ax]
            if lo:
                out[(slice(None),) * ax + (slice(0, d),)] = out[(slice(None),) * ax + (slice(d, d + 1),)]
            if hi:
                out[(slice(None),) * ax + (slice(d + n, None),)] = \
                    out[(slice(None),) * ax + (slice(d + n - 1, d + n),)]
    res = func(out, **kwargs)
    if trim:
        sl = [slice(None)] * res.ndim
        for ax, d in depth.items():
            sl[ax] = slice(d, res.shape[ax] - d)
        res = res[tuple(sl)]
    return res


def map_halo(
    func: Callable[..., np.ndarray],
    arr: Any,
    depth: Mapping[int, int],
    *,
    boundary: float | Literal["nearest"],
    trim: bool = True,
    dtype: Any = None,
    chunks: tuple[tuple[int, ...], ...] | None = None,
    name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Apply ``func`` to every chunk of ``arr`` extended by a halo from its neighbours.

    Parameters
    ----------
    func
        ``func(block, **kwargs) -> array``; ``block`` is the chunk with
        ``depth[ax]`` extra elements on both sides of each halo axis.
    arr
        A dask array; chunks shorter than the halo are merged first
        (:func:`min_chunks`).
    depth
        Halo width per axis, e.g. ``{1: 28, 2: 28}``.
    boundary
        What lies beyond the array's edges: a constant (``np.nan``, a nodata
        value) or ``"nearest"`` (the edge value repeated, as
        ``np.pad(mode="edge")``).
    trim
        Remove the halo from ``func``'s result (which then has the block's
        padded shape on the halo axes).  With ``trim=False`` ``func`` returns
        the output block itself and ``chunks`` gives the output chunks.
    dtype
        Output dtype (default: ``arr``'s).
    chunks
        Output chunks (default: ``arr``'s after merging).
    name
        Prefix of the task names.

    Returns
    -------
    dask.array.Array
        Equal to ``dask.array.map_overlap(func, arr, depth, boundary=...)``.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> x = da.from_array(np.arange(10.0), chunks=4)
    >>> map_halo(lambda b: b[:-2] + b[2:], x, {0: 1}, boundary="nearest", trim=False,
    ...          chunks=x.chunks).compute()
    array([ 1.,  2.,  4.,  6.,  8., 10., 12., 14., 16., 17.])
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    depth = {int(ax) % arr.ndim: int(d) for ax, d in sorted(depth.items()) if d}
    arr = min_chunks(arr, depth)
    dtype = np.dtype(dtype if dtype is not None else arr.dtype)
    out_chunks = tuple(chunks) if chunks is not None else arr.chunks
    token = tokenize(func, arr.name, depth, str(boundary), trim, dtype.str, out_chunks, kwargs)
    base = name or getattr(func, "__name__", "halo").strip("<>_")
    out_name, strip_name = f"{base}-{token}", f"{base}-strip-{token}"
    axes = list(depth)
    offsets_all = [o for o in itertools.product((-1, 0, 1), repeat=len(axes)) if any(o)]
    dsk: dict = {}
    for idx in np.ndindex(*arr.numblocks):
        offsets, keys = [], []
        for k, off in enumerate(offsets_all):
            nb = list(idx)
            for ax, o in zip(axes, off):
                nb[ax] += o
            if any(not 0 <= nb[ax] < arr.numblocks[ax] for ax in axes):
                continue  # beyond the array's edge: _apply fills it from ``boundary``
            index = [slice(None)] * arr.ndim
            for ax, o in zip(axes, off):
                size = arr.chunks[ax][nb[ax]]
                if o:
                    index[ax] = slice(size - depth[ax], size) if o < 0 else slice(0, depth[ax])
            key = (strip_name, *idx, k)
            dsk[key] = (_strip, (arr.name, *nb), tuple(index))
            offsets.append(off)
            keys.append(key)
        edges = {ax: (idx[ax] == 0, idx[ax] == arr.numblocks[ax] - 1) for ax in axes}
        fn = partial(_apply, func=func, offsets=offsets, depth=depth, edges=edges,
                     boundary=boundary, trim=trim, kwargs=kwargs)
        dsk[(out_name, *idx)] = (fn, (arr.name, *idx), keys)
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=[arr])
    meta = np.empty((0,) * len(out_chunks), dtype=dtype)
    return da.Array(graph, out_name, chunks=out_chunks, dtype=dtype, meta=meta)


def block_windows(ychunks: tuple[int, ...], xchunks: tuple[int, ...]):
    """Every block of a 2-D chunking with its pixel window, row by row.

    Yields ``(i, j, (y0, y1, x0, x1))``: block indices and the half-open pixel
    ranges the block covers.

    Examples
    --------
    >>> [w for _, _, w in block_windows((2, 1), (3,))]
    [(0, 2, 0, 3), (2, 3, 0, 3)]
    """
    ys = np.cumsum((0,) + tuple(ychunks))
    xs = np.cumsum((0,) + tuple(xchunks))
    for i, j in itertools.product(range(len(ychunks)), range(len(xchunks))):
        yield i, j, (int(ys[i]), int(ys[i + 1]), int(xs[j]), int(xs[j + 1]))


def from_block_tasks(make: Callable[[tuple[int, int, int, int]], Any], ychunks: tuple[int, ...],
                     xchunks: tuple[int, ...], dtype: Any) -> Any:
    """A 2-D dask array whose block over window ``(y0, y1, x0, x1)`` is ``make(window)``.

    ``make`` returns a :func:`dask.delayed` value that computes the block's array
    (shape ``(y1 - y0, x1 - x0)``): one task per block, each made with only what
    its window needs (the outlines that touch it, say).

    Examples
    --------
    >>> import dask, numpy as np
    >>> a = from_block_tasks(lambda w: dask.delayed(np.full)((w[1] - w[0], w[3] - w[2]), w[0]),
    ...                      (2, 1), (2,), np.int64)
    >>> a.compute().tolist()
    [[0, 0], [0, 0], [2, 2]]
    """
    import dask.array as da

    dtype = np.dtype(dtype)
    rows: list[list[Any]] = [[None] * len(xchunks) for _ in ychunks]
    for i, j, (y0, y1, x0, x1) in block_windows(ychunks, xchunks):
        rows[i][j] = da.from_delayed(make((y0, y1, x0, x1)), (y1 - y0, x1 - x0), dtype,
                                     meta=np.empty((0, 0), dtype))
    return da.block(rows)

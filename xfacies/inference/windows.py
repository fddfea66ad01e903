"""Storage windows: features backed by storage (``xr.open_zarr(store, chunks=None)``), read
block by block.

Each block reads its own window plus halo from storage, one row of storage chunks at a
time, so no worker holds a neighbour and memory is bounded by the block size whatever
the scene size.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from xfacies.outlines import glacier_mask
from xfacies.halo import block_windows
from xfacies.inference.blocks import proba_block

__all__ = ["is_lazy", "storage_chunks", "predict_windows"]


def is_lazy(obj: xr.DataArray) -> bool:
    """Backed by storage and not loaded (opened with ``chunks=None``): neither NumPy nor dask."""
    import dask.array as da

    data = obj.variable._data  # not .data: for a lazily indexed variable that loads everything
    return not obj.variable._in_memory and not isinstance(data, da.Array)


def storage_chunks(obj: xr.DataArray | xr.Dataset) -> dict[str, int]:
    """The storage's own y/x chunking (Zarr/netCDF encoding), else 1024 x 1024."""
    if isinstance(obj, xr.Dataset):
        obj = obj["features"] if "features" in obj.data_vars else next(iter(obj.data_vars.values()))
    enc = obj.encoding.get("preferred_chunks") or {}
    return {d: int(enc.get(d, 1024)) for d in ("y", "x")}


def predict_windows(feats: xr.DataArray, m: Any, path: str, outlines: Any, *, method: str,
                     halo: int, batch_size: int | None, chunks: dict[str, int]) -> xr.DataArray:
    """Every block reads its own window plus halo from storage: no neighbour is held in
    memory, so memory is bounded by the block size whatever the scene size (the halo is read
    twice, 1.2x the reads for 512 px blocks and a 28 px halo)."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    lead = feats.dims[:-3]
    ny, nx = feats.sizes["y"], feats.sizes["x"]
    ychunks, xchunks = da.core.normalize_chunks((chunks["y"], chunks["x"]), (ny, nx))
    template = xr.DataArray(
        da.zeros((ny, nx), dtype=np.int8, chunks=(ychunks, xchunks)), dims=("y", "x"),
        coords={k: v for k, v in feats.coords.items() if set(v.dims) <= {"y", "x"}},
    )
    if isinstance(outlines, xr.DataArray) and {"y", "x"} <= set(outlines.dims):
        # a raster: read (or rechunked) block by block too; glacier_mask checks the rest
        outlines = outlines.chunk({"y": ychunks, "x": xchunks})
    mask = glacier_mask(outlines, template)  # on the blocks' chunks, like the template
    mdata = None if mask is None else mask.data
    C = len(m.classes)
    source = _Source(feats.variable, feats.dims, chunks["y"])  # tokenises by identity: storage cannot be hashed
    token = tokenize(source, path, method, halo, batch_size, chunks, None if mdata is None else mdata.name)
    name, src = f"xfacies-proba-{method}-{token}", f"xfacies-source-{token}"
    dsk: dict = {src: source}
    for lidx in np.ndindex(*feats.shape[:-3]):
        for i, j, window in block_windows(ychunks, xchunks):
            fn = partial(_window_block, lead=lidx, window=window, model_path=path, method=method,
                         halo=halo, n_classes=C, batch_size=batch_size)
            mkey = None if mdata is None else (mdata.name, i, j)
            dsk[(name, *lidx, 0, i, j)] = (fn, src, mkey)
    deps = [] if mdata is None else [mdata]
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    out_chunks = tuple((1,) * n for n in feats.shape[:-3]) + ((C,), ychunks, xchunks)
    probs = da.Array(graph, name, chunks=out_chunks, dtype=np.float32,
                     meta=np.empty((0,) * (len(lead) + 3), np.float32))
    return probs


class _Source:
    """A picklable handle on a lazily indexed (storage-backed) variable, opaque to dask so
    that nothing tokenises, sizes or converts (and thereby loads) the whole array."""

    def __init__(self, variable: xr.Variable, dims: tuple[str, ...], row_chunk: int):
        self.variable, self.dims, self.row_chunk = variable, dims, row_chunk

    def __dask_tokenize__(self) -> tuple:
        return ("xfacies-source", id(self))

    def __sizeof__(self) -> int:
        return 1024

    def window(self, index: dict[str, Any]) -> np.ndarray:
        """The window ``index`` (y/x slices), read one storage row of chunks at a time: a
        window that crosses rows of chunks would otherwise decode all its chunks at once."""
        ydim = self.dims[-2]
        ys = index[ydim]
        out = np.empty(self.variable.isel(index).shape, dtype=np.float32)
        edges = list(range(ys.start - ys.start % self.row_chunk + self.row_chunk, ys.stop, self.row_chunk))
        for a, b in zip([ys.start] + edges, edges + [ys.stop]):
            part = self.variable.isel({**index, ydim: slice(a, b)}).values
            out[..., a - ys.start:b - ys.start, :] = part
        return out


def _window_block(src: _Source, mask: np.ndarray | None, *, lead: tuple[int, ...],
                  window: tuple[int, int, int, int], model_path: str, method: str, halo: int,
                  n_classes: int, batch_size: int | None) -> np.ndarray:
    """Read one block plus its halo from storage (NaN beyond the scene) and classify it."""
    y0, y1, x0, x1 = window
    ny, nx = src.variable.shape[-2:]
    h = halo
    ya, yb, xa, xb = max(y0 - h, 0), min(y1 + h, ny), max(x0 - h, 0), min(x1 + h, nx)
    index: dict[str, Any] = dict(zip(src.dims[:-3], lead))
    index.update({src.dims[-2]: slice(ya, yb), src.dims[-1]: slice(xa, xb)})
    win = src.window(index)
    F = win.shape[0]
    block = np.full((F + 1, y1 - y0 + 2 * h, x1 - x0 + 2 * h), np.nan, dtype=np.float32)
    block[:F, ya - y0 + h:yb - y0 + h, xa - x0 + h:xb - x0 + h] = win
    block[F, h:h + y1 - y0, h:h + x1 - x0] = 1 if mask is None else np.asarray(mask, dtype=np.float32)
    out = proba_block(block, model_path=model_path, method=method, halo=h,
                       n_classes=n_classes, batch_size=batch_size)
    return out.reshape((1,) * len(lead) + out.shape)

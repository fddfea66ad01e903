"""Chunk-by-chunk CNN inference over xarray/dask feature cubes.

Two methods, same weights:

``"dense"``
    The fully convolutional form (see :mod:`xfacies.model.architecture`),
    ~0.2 M multiply-adds per pixel.  Halo = receptive field (28 px for the
    reference), so chunked output equals unchunked output.
``"exact"``
    The reference semantics: each pixel inside the outlines is classified from
    its own 33 x 33 patch; patches reaching past the scene edge are zero-padded
    (in normalised feature space, as the network's own padding is).  Halo = 16.

Scene edges are padded with "missing" (NaN) features, which the network sees as
zeros after normalisation; missing features inside the scene (clouds masked by
a provider, gaps) are treated the same way, and pixels whose own features are
missing get nodata.

Halos come from :func:`xfacies.halo.map_halo` (copied strips, never whole
neighbour chunks).  Features backed by storage and not dask-chunked
(``xr.open_zarr(store, chunks=None)``) are read window by window instead: each
block reads its own window plus halo, so memory is bounded by the block size.

The model never travels inside the task graph: tasks carry the bundle's *path*
and each process loads it once (:func:`xfacies.model.bundle._load_cached`).

Examples
--------
>>> import xfacies
>>> scene = xfacies.synthetic.scene(size=128)                      # doctest: +SKIP
>>> facies = scene.features.facies.classify("demo", outlines=xfacies.synthetic.outlines(128))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from xfacies import catalog
from xfacies.halo import ChunkWarning, block_windows, map_halo, min_chunks
from xfacies.validation import require_float

__all__ = ["predict_proba", "classify", "smooth_mode", "prepare_features", "ChunkWarning"]

Method = Literal["dense", "exact"]


# --------------------------------------------------------------------------- inputs
def prepare_features(obj: xr.DataArray | xr.Dataset, features: tuple[str, ...], *,
                     cast: bool = True) -> xr.DataArray:
    """Validate a feature cube and select ``features`` (in that order) along ``band``.

    Accepts a DataArray with a ``band`` dimension labelled by feature names, or
    a Dataset holding such a DataArray as ``features`` or one variable per
    feature.  Extra bands are ignored; the model's bands must all be present
    and in the model's order.

    Raises
    ------
    ValueError
        Non-spatial input, missing or misordered features.
    TypeError
        Integer input (digital numbers instead of reflectance).
    """
    if isinstance(obj, xr.Dataset):
        if "features" in obj.data_vars:
            obj = obj["features"]
        else:
            present = [f for f in features if f in obj.data_vars]
            if not present:
                raise ValueError(
                    f"the Dataset has neither a 'features' variable nor variables named after "
                    f"features; variables: {list(obj.data_vars)}; the model needs {list(features)}"
                )
            names = [v for v in obj.data_vars if v in {f.name for f in catalog.FEATURES}]
            obj = obj[names].to_dataarray(dim="band")
    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"expected an xarray DataArray or Dataset of features, got {type(obj).__name__}")
    if "y" not in obj.dims or "x" not in obj.dims:
        raise ValueError(
            f"features must be spatial with dims 'y' and 'x' (got dims {obj.dims}); rename "
            "them, e.g. da.rename(lat='y', lon='x'), or reproject to a projected grid"
        )
    if "band" not in obj.dims:
        raise ValueError(
            f"features need a 'band' dimension labelled with feature names (got dims {obj.dims}); "
            f"e.g. da.expand_dims(band=['blue']) or xr.concat([...], dim='band')"
        )
    require_float(obj, "features")
    labels = [str(b) for b in obj["band"].values] if "band" in obj.coords else []
    missing = [f for f in features if f not in labels]
    if missing:
        raise ValueError(
            f"features {missing} needed by the model are missing; the input's bands are {labels}. "
            f"The model needs, in order: {list(features)}"
        )
    pos = [labels.index(f) for f in features]
    if pos != sorted(pos):
        raise ValueError(
            f"the input's bands are in a different order ({labels}) than the model's features "
            f"({list(features)}). Select them explicitly: da.sel(band={list(features)})"
        )
    dims = [d for d in obj.dims if d not in ("band", "y", "x")] + ["band", "y", "x"]
    out = obj.sel(band=list(features)).transpose(*dims)
    if cast and out.dtype != np.float32:
        out = out.astype(np.float32)
    return out


def _mask_for(outlines: Any, like: xr.DataArray) -> xr.DataArray | None:
    """Boolean (y, x) glacier mask from outlines (GeoDataFrame, path, or a raster)."""
    if outlines is None:
        return None
    if isinstance(outlines, xr.DataArray):
        if set(outlines.dims) != {"y", "x"}:
            raise ValueError(f"an outline raster must have dims (y, x), got {outlines.dims}")
        if outlines.sizes["y"] != like.sizes["y"] or outlines.sizes["x"] != like.sizes["x"]:
            raise ValueError(
                f"outline raster grid {dict(outlines.sizes)} does not match the features' grid "
                f"(y={like.sizes['y']}, x={like.sizes['x']}); rasterise the outlines on the "
                "features' grid (xfacies.outlines.rasterize(outlines, like=features))"
            )
        return outlines.transpose("y", "x") > 0
    from xfacies.outlines import rasterize

    return rasterize(outlines, like) > 0


def _model_path(model: Any) -> tuple[str, Any]:
    """A path that workers can load the bundle from, and the model itself."""
    from xfacies.model.bundle import BUILTIN, Model, _load_cached, cache_dir

    if isinstance(model, (str, os.PathLike)):
        s = str(model)
        path = str(BUILTIN[s]) if s in BUILTIN else s
        if s.startswith(("http://", "https://")):
            raise ValueError("load URL models with xfacies.load_model(url, sha256=...) first")
        return path, _load_cached(path)
    if isinstance(model, Model):
        if model.path is not None and Path(model.path).exists():
            return str(model.path), model
        # An in-memory model: save it once, content-addressed, so tasks carry a path.
        d = cache_dir() / "models"
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            d = Path(tempfile.gettempdir()) / "xfacies-models"
            d.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256((model.sha256 + repr(model._metadata_dict())).encode()).hexdigest()[:20]
        path = d / f"{key}.xfacies"
        if not path.exists():
            model.save(path)
        else:
            model.path = path
        return str(path), model
    raise TypeError(f"model must be an xfacies.Model, a bundle path or 'demo'; got {type(model).__name__}")


# --------------------------------------------------------------------------- blocks
def _proba_block(block: np.ndarray, *, model_path: str, method: str, halo: int,
                 n_classes: int, batch_size: int | None) -> np.ndarray:
    """(…, F+1, H+2h, W+2h) features + mask band -> (…, C, H, W) probabilities (NaN = nodata)."""
    from xfacies.model.bundle import _load_cached

    h = halo
    lead = block.shape[:-3]
    F = block.shape[-3] - 1
    H, W = block.shape[-2] - 2 * h, block.shape[-1] - 2 * h
    out = np.full(lead + (n_classes, H, W), np.nan, dtype=np.float32)
    for idx in np.ndindex(*lead):
        b = block[idx]
        feats, mask = b[:F], b[F]
        inner = (slice(h, h + H), slice(h, h + W))
        valid = (mask[inner] == 1) & np.all(np.isfinite(feats[(slice(None),) + inner]), axis=0)
        if not valid.any():
            continue  # all-nodata chunk: no model call
        model = _load_cached(model_path)
        if method == "dense":
            # Only the bounding box of the valid pixels (+ the halo) goes through the network:
            # outputs there depend on inputs within the receptive field only, so cropping is exact.
            # The box grows to a bucketed size (few distinct shapes: see _crop).
            rows = np.flatnonzero(valid.any(axis=1))
            cols = np.flatnonzero(valid.any(axis=0))
            r0, r1 = _crop(rows[0], rows[-1] + 1, H, h)
            c0, c1 = _crop(cols[0], cols[-1] + 1, W, h)
            x = model.normalise(np.moveaxis(feats[:, r0:r1 + 2 * h, c0:c1 + 2 * h], 0, -1))
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            p = model.predict_dense_normalised(x)[h:h + r1 - r0, h:h + c1 - c0]  # (h', w', C)
            v = valid[r0:r1, c0:c1]
            out[idx][:, r0:r1, c0:c1] = np.where(v[None], np.moveaxis(p, -1, 0), np.nan)
        else:
            x = model.normalise(np.moveaxis(feats, 0, -1))
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            rows, cols = np.nonzero(valid)
            res = model.predict_exact_normalised(x, rows, cols, batch_size)
            o = out[idx]
            o[:, rows, cols] = res.T
    return out


def _crop(a: int, b: int, n: int, h: int) -> tuple[int, int]:
    """Grow the output range ``[a, b)`` of a block side of ``n`` pixels (halo ``h``) so that the
    network's input side, ``b - a + 2h``, takes one of a few bucketed sizes or the whole side.

    Every distinct input shape costs memory that TensorFlow never gives back (≈ 0.5 MB per
    shape for the demo model: kernels and buffers kept per shape), so cropping each block
    to its own box made a worker grow with the number of blocks it met.  Bucketed, a side of
    a 512-px block with a 28-px halo takes one of 12 sizes (72 ... 480, 568), so a worker
    meets at most 144 shapes.  Growing the box is exact (more real pixels, same outputs).

    Examples
    --------
    >>> _crop(100, 150, 512, 28)   # 50 + 56 = 106 input rows -> 120
    (100, 164)
    >>> _crop(480, 500, 512, 28)   # 76 -> 96 input rows, shifted back inside the block
    (472, 512)
    >>> _crop(0, 500, 512, 28)     # near the whole side: the whole side
    (0, 512)
    """
    from xfacies.model.bundle import _bucket

    length = min(_bucket(b - a + 2 * h), n + 2 * h) - 2 * h
    start = min(a, n - length)
    return int(start), int(start + length)


def _labels_block(p: np.ndarray) -> np.ndarray:
    """(…, C, y, x) probabilities -> (…, y, x) int8 labels, NODATA where NaN."""
    nodata = np.isnan(p).any(axis=-3)
    lab = np.argmax(np.nan_to_num(p, nan=-1.0), axis=-3).astype(np.int8)
    lab[nodata] = catalog.NODATA
    return lab


def smooth_mode(labels: np.ndarray, n_classes: int = len(catalog.CLASSES),
                nodata: int = catalog.NODATA) -> np.ndarray:
    """3 x 3 mode filter over the last two axes that ignores nodata.

    Each valid pixel takes the most frequent class among the valid pixels of
    its 3 x 3 neighbourhood (itself included); ties go to the lowest class id
    (the reference's rule); nodata pixels stay nodata.  Vectorised: one box
    count per class.

    Examples
    --------
    >>> import numpy as np
    >>> smooth_mode(np.array([[0, 0, 0], [0, 1, 0], [0, 0, -1]], dtype=np.int8))
    array([[ 0,  0,  0],
           [ 0,  0,  0],
           [ 0,  0, -1]], dtype=int8)
    """
    lab = np.asarray(labels)
    counts = np.zeros((n_classes,) + lab.shape, dtype=np.int16)
    pad = [(0, 0)] * (lab.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(lab, pad, constant_values=nodata)
    H, W = lab.shape[-2:]
    for dy in range(3):
        for dx in range(3):
            shifted = padded[..., dy:dy + H, dx:dx + W]
            for c in range(n_classes):
                counts[c] += shifted == c
    out = np.argmax(counts, axis=0).astype(lab.dtype)  # first max = lowest id
    out[lab == nodata] = nodata
    return out


def _smooth_block(block: np.ndarray, n_classes: int) -> np.ndarray:
    return smooth_mode(block, n_classes)[..., 1:-1, 1:-1]


def _confidence_block(p: np.ndarray, *, model_path: str, calibrate: bool) -> np.ndarray:
    """(…, C, y, x) probabilities -> (…, y, x) confidence (:meth:`Model.confidence`), NaN = nodata."""
    from xfacies.model.bundle import _load_cached

    nodata = np.isnan(p).any(axis=-3)
    conf = _load_cached(model_path).confidence(np.nan_to_num(p, nan=0.0), axis=-3, calibrate=calibrate)
    conf[nodata] = np.nan
    return conf


# --------------------------------------------------------------------------- public
def predict_proba(
    features: xr.DataArray | xr.Dataset,
    model: Any,
    outlines: Any = None,
    *,
    method: Method = "dense",
    batch_size: int | None = None,
) -> xr.DataArray:
    """Class probabilities for every pixel, lazily, chunk by chunk.

    Parameters
    ----------
    features
        ``(…, band, y, x)`` float features labelled by name along ``band``
        (extra bands are ignored).  Numpy-backed input is processed as one chunk.
    model
        A :class:`xfacies.Model`, a bundle path, or ``"demo"``.
    outlines
        Glacier outlines (GeoDataFrame or file) or a glacier raster on the same
        grid; only pixels inside are classified (others are NaN).  ``None``
        classifies every pixel with complete features.
    method
        ``"dense"`` (fast, approximate global-max term) or ``"exact"`` (the
        reference's per-patch semantics).
    batch_size
        Patches per batch for ``"exact"``; default 1024 on CPU, fitted to free memory on a GPU.

    Returns
    -------
    xarray.DataArray
        float32 ``(…, class, y, x)``, NaN where nothing was classified.

    Examples
    --------
    >>> p = predict_proba(scene.features, "demo", outlines)   # doctest: +SKIP
    >>> p.sum("class").max().item()                          # doctest: +SKIP
    1.0
    """
    import dask.array as da

    from xfacies.model.bundle import warn_unnormalised

    from xfacies.cluster import ship_model

    path, m = _model_path(model)
    ship_model(path)  # under a distributed.Client: workers get the bundle once, not via the graph
    if method not in ("dense", "exact"):
        raise ValueError(f"method must be 'dense' or 'exact', got {method!r}")
    feats = prepare_features(features, m.features, cast=False)
    warn_unnormalised(m, "an xarray feature cube")
    halo = m.halo(method)
    if _is_lazy(feats):
        return _predict_windows(feats, m, path, outlines, method=method, halo=halo,
                                batch_size=batch_size, chunks=_storage_chunks(features))
    if feats.dtype != np.float32:
        feats = feats.astype(np.float32)
    mask = _mask_for(outlines, feats)
    data = feats.data if isinstance(feats.data, da.Array) else da.from_array(feats.data, chunks=-1)
    nd = data.ndim
    if mask is None:
        mband = da.ones(data.shape[:-3] + (1,) + data.shape[-2:], dtype=np.float32,
                        chunks=data.chunks[:-3] + ((1,),) + data.chunks[-2:])
    else:
        mdata = mask.data if isinstance(mask.data, da.Array) else da.from_array(mask.values)
        mdata = mdata.astype(np.float32)
        mband = da.broadcast_to(mdata, data.shape[:-3] + (1,) + data.shape[-2:])
        mband = mband.rechunk(data.chunks[:-3] + ((1,),) + data.chunks[-2:])
    stacked = da.concatenate([data, mband], axis=nd - 3).rechunk({nd - 3: -1})
    depth = {nd - 2: halo, nd - 1: halo}
    stacked = min_chunks(stacked, depth, warn=f"the model's {halo} px halo")
    C = len(m.classes)
    probs = map_halo(
        _proba_block, stacked, depth, boundary=np.nan, trim=False, dtype=np.float32,
        chunks=stacked.chunks[:-3] + ((C,),) + stacked.chunks[-2:], name=f"xfacies-proba-{method}",
        model_path=path, method=method, halo=halo, n_classes=C, batch_size=batch_size,
    )
    return _proba_array(probs, feats, m, path, method)


def _proba_array(probs: Any, feats: xr.DataArray, m: Any, path: str, method: str) -> xr.DataArray:
    coords = {k: v for k, v in feats.coords.items() if "band" not in v.dims}
    coords["class"] = list(m.classes)
    return xr.DataArray(
        probs, dims=feats.dims[:-3] + ("class", "y", "x"), coords=coords,
        name="probability",
        attrs={"long_name": "class probability", "units": "1", "method": method,
               "model": Path(path).name},
    )


# --------------------------------------------------------------------------- storage windows
def _is_lazy(obj: xr.DataArray) -> bool:
    """Backed by storage and not loaded (opened with ``chunks=None``): neither NumPy nor dask."""
    import dask.array as da

    data = obj.variable._data  # not .data: for a lazily indexed variable that loads everything
    return not obj.variable._in_memory and not isinstance(data, da.Array)


def _storage_chunks(obj: xr.DataArray | xr.Dataset) -> dict[str, int]:
    """The storage's own y/x chunking (Zarr/netCDF encoding), else 1024 x 1024."""
    if isinstance(obj, xr.Dataset):
        obj = obj["features"] if "features" in obj.data_vars else next(iter(obj.data_vars.values()))
    enc = obj.encoding.get("preferred_chunks") or {}
    return {d: int(enc.get(d, 1024)) for d in ("y", "x")}


def _predict_windows(feats: xr.DataArray, m: Any, path: str, outlines: Any, *, method: str,
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
        # a raster: read (or rechunked) block by block too; _mask_for checks the rest
        outlines = outlines.chunk({"y": ychunks, "x": xchunks})
    mask = _mask_for(outlines, template)  # on the blocks' chunks, like the template
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
    return _proba_array(probs, feats, m, path, method)


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
    out = _proba_block(block, model_path=model_path, method=method, halo=h,
                       n_classes=n_classes, batch_size=batch_size)
    return out.reshape((1,) * len(lead) + out.shape)


def classify(
    features: xr.DataArray | xr.Dataset,
    model: Any,
    outlines: Any = None,
    *,
    method: Method = "dense",
    smooth: bool = True,
    confidence: bool = False,
    calibrate: bool = True,
    batch_size: int | None = None,
) -> xr.DataArray | xr.Dataset:
    """Classify glacier facies, lazily, chunk by chunk.

    Parameters
    ----------
    features, model, outlines, method
        As in :func:`predict_proba`.
    smooth
        Apply the reference's 3 x 3 mode filter (ignores nodata; ties to the
        lowest class id).
    confidence
        Also return the confidence (max probability, calibrated by the bundle's
        calibrator when it has one and ``calibrate``; clipped to [0, 1]).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        int8 ``(…, y, x)`` class map with CF flag attributes and nodata
        :data:`xfacies.NODATA`; with ``confidence=True`` a Dataset with
        ``classes`` and float32 ``confidence``.

    Examples
    --------
    >>> facies = classify(scene.features, "demo", outlines)          # doctest: +SKIP
    >>> facies.attrs["flag_meanings"].split()[1]                     # doctest: +SKIP
    'ice'
    """
    import dask.array as da

    path, m = _model_path(model)  # resolve once (an in-memory model is saved and hashed here)
    probs = predict_proba(features, m, outlines, method=method, batch_size=batch_size)
    p = probs.data
    nd = p.ndim
    labels = da.map_blocks(_labels_block, p, drop_axis=nd - 3, dtype=np.int8,
                           meta=np.empty((0,) * (nd - 1), dtype=np.int8), name="xfacies-labels")
    if smooth:
        labels = map_halo(_smooth_block, labels, {nd - 3: 1, nd - 2: 1}, boundary=catalog.NODATA,
                          trim=False, name="xfacies-smooth", n_classes=len(catalog.CLASSES))
    dims = probs.dims[:-3] + ("y", "x")
    coords = {k: v for k, v in probs.coords.items() if "class" not in v.dims}
    attrs = catalog.class_flag_attrs()
    attrs.update(method=method, smoothed=int(smooth), model=probs.attrs["model"])
    facies = xr.DataArray(labels, dims=dims, coords=coords, name="classes", attrs=attrs)
    if not confidence:
        return facies
    conf = da.map_blocks(_confidence_block, p, drop_axis=nd - 3, dtype=np.float32,
                         meta=np.empty((0,) * (nd - 1), dtype=np.float32),
                         model_path=path, calibrate=calibrate, name="xfacies-confidence")
    conf_da = xr.DataArray(conf, dims=dims, coords=coords, name="confidence",
                           attrs={"long_name": "classification confidence", "units": "1",
                                  "calibrated": int(calibrate and m.calibrator is not None)})
    return xr.Dataset({"classes": facies, "confidence": conf_da})

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
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from xfacies import catalog
from xfacies.validation import require_float

__all__ = ["predict_proba", "classify", "smooth_mode", "prepare_features", "ChunkWarning"]

Method = Literal["dense", "exact"]


# --------------------------------------------------------------------------- inputs
def prepare_features(obj: xr.DataArray | xr.Dataset, features: tuple[str, ...]) -> xr.DataArray:
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
    if out.dtype != np.float32:
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


class ChunkWarning(UserWarning):
    """Chunks were changed to fit the model's halo."""


def _ensure_min_chunks(arr, halo: int):
    """Merge spatial chunks smaller than the halo (dask needs chunks >= depth)."""
    from dask.array.overlap import ensure_minimum_chunksize

    chunks = list(arr.chunks)
    changed = False
    for ax in (arr.ndim - 2, arr.ndim - 1):
        if halo and min(chunks[ax]) < halo:
            if sum(chunks[ax]) < halo:
                continue  # one chunk smaller than the halo: fine, it is the whole axis
            chunks[ax] = ensure_minimum_chunksize(halo, chunks[ax])
            changed = True
    if changed:
        import warnings

        warnings.warn(
            f"spatial chunks smaller than the model's {halo} px halo were merged into chunks of "
            f"at least {halo} px (y: {chunks[-2][:4]}..., x: {chunks[-1][:4]}...). For speed use "
            "chunks of 512-2048 px, e.g. features.chunk(y=1024, x=1024).",
            ChunkWarning, stacklevel=4,
        )
        arr = arr.rechunk(tuple(chunks))
    return arr


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
            rows = np.flatnonzero(valid.any(axis=1))
            cols = np.flatnonzero(valid.any(axis=0))
            r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
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
    feats = prepare_features(features, m.features)
    warn_unnormalised(m, "an xarray feature cube")
    halo = m.halo(method)
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
    stacked = _ensure_min_chunks(stacked, halo)
    C = len(m.classes)
    depth = {i: 0 for i in range(nd)}
    boundary: dict[int, Any] = {i: "none" for i in range(nd)}
    for ax in (nd - 2, nd - 1):
        if stacked.shape[ax] > halo:
            depth[ax], boundary[ax] = halo, np.nan
        else:  # axis shorter than the halo: one chunk, padded here (dask cannot overlap it)
            widths = [(0, 0)] * nd
            widths[ax] = (halo, halo)
            stacked = da.pad(stacked.rechunk({ax: -1}), widths, constant_values=np.nan).rechunk({ax: -1})
    out_chunks = stacked.chunks[:-3] + ((C,),) + tuple(
        c if depth[ax] else (c[0] - 2 * halo,) for ax, c in ((nd - 2, stacked.chunks[-2]),
                                                             (nd - 1, stacked.chunks[-1])))
    probs = da.map_overlap(
        _proba_block, stacked, depth=depth, boundary=boundary, trim=False,
        chunks=out_chunks, dtype=np.float32, meta=np.empty((0,) * nd, dtype=np.float32),
        model_path=path, method=method, halo=halo, n_classes=C, batch_size=batch_size,
        name=f"xfacies-proba-{method}",
    )
    coords = {k: v for k, v in feats.coords.items() if "band" not in v.dims}
    coords["class"] = list(m.classes)
    return xr.DataArray(
        probs, dims=feats.dims[:-3] + ("class", "y", "x"), coords=coords,
        name="probability",
        attrs={"long_name": "class probability", "units": "1", "method": method,
               "model": Path(path).name},
    )


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
        depth = {i: 0 for i in range(nd - 1)}
        depth[nd - 3] = depth[nd - 2] = 1
        labels = da.map_overlap(
            _smooth_block, labels, depth=depth, boundary=catalog.NODATA, trim=False,
            dtype=np.int8, meta=np.empty((0,) * (nd - 1), dtype=np.int8),
            n_classes=len(catalog.CLASSES), name="xfacies-smooth",
        )
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

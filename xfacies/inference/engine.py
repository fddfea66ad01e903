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
and each process loads it once (:func:`xfacies.inference.distribute.worker_model`).

Examples
--------
>>> import xfacies
>>> scene = xfacies.synthetic.scene(size=128)                      # doctest: +SKIP
>>> facies = scene.features.facies.classify("demo", outlines=xfacies.synthetic.outlines(128))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from xfacies.errors import GridError, InputError
from xfacies import catalog, spatial
from xfacies.outlines import glacier_mask
from xfacies.halo import ChunkWarning, map_halo, min_chunks
from xfacies.inference import distribute
from xfacies.inference.blocks import (
    classify_block, confidence_block, labels_block, proba_block, smooth_block, smooth_mode,
)
from xfacies.inference.windows import is_lazy, predict_windows, storage_chunks
from xfacies.model.runtime import DEFAULT_PRECISION, check_precision
from xfacies.validation import check_reflectance, reflectance_checked, require_float, require_unique_times

__all__ = ["predict_proba", "classify", "smooth_mode", "prepare_features", "ChunkWarning"]

Method = Literal["dense", "exact"]
Precision = Literal["float32", "tf32", "bfloat16"]


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
                raise InputError(
                    f"the Dataset has neither a 'features' variable nor variables named after "
                    f"features; variables: {list(obj.data_vars)}; the model needs {list(features)}"
                )
            obj = obj[present].to_dataarray(dim="band")
    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"expected an xarray DataArray or Dataset of features, got {type(obj).__name__}")
    if "y" not in obj.dims or "x" not in obj.dims:
        raise GridError(
            f"features must be spatial with dims 'y' and 'x' (got dims {obj.dims}); rename "
            "them, e.g. da.rename(lat='y', lon='x'), or reproject to a projected grid"
        )
    if "band" not in obj.dims:
        raise InputError(
            f"features need a 'band' dimension labelled with feature names (got dims {obj.dims}); "
            f"e.g. da.expand_dims(band=['blue']) or xr.concat([...], dim='band')"
        )
    require_float(obj, "features")
    spatial.require_north_up(obj, "the features", "features", why=(
        ": the model sees its patches mirrored and gives different classes (on a synthetic scene 95 % "
        "of dense and 81 % of exact labels agreed)"))
    if "time" in obj.dims:
        require_unique_times(obj, "the features")
    labels = [str(b) for b in obj["band"].values] if "band" in obj.coords else []
    missing = [f for f in features if f not in labels]
    if missing:
        raise InputError(
            f"features {missing} needed by the model are missing; the input's bands are {labels}. "
            f"The model needs, in order: {list(features)}"
        )
    pos = [labels.index(f) for f in features]
    if pos != sorted(pos):
        raise InputError(
            f"the input's bands are in a different order ({labels}) than the model's features "
            f"({list(features)}). Select them explicitly: da.sel(band={list(features)})"
        )
    dims = [d for d in obj.dims if d not in ("band", "y", "x")] + ["band", "y", "x"]
    out = obj.sel(band=list(features)).transpose(*dims)
    if cast and out.dtype != np.float32:
        out = out.astype(np.float32)
    return out


# --------------------------------------------------------------------------- public
def _checked_reflectance(feats: xr.DataArray, model: Any, given: Any) -> xr.DataArray:
    """The optical bands of ``feats`` checked as surface reflectance when the model reads them so
    (percent or digital numbers are refused with the fix): at once for NumPy input, block by block
    in the graph for dask input.  Storage-backed input (read window by window) is not read here, nor
    ``given`` as :func:`xfacies.features` returned it (checked there: same dask array)."""
    import dask.array as dsa

    if is_lazy(feats) or not model.expects_reflectance():
        return feats  # storage-backed: reading it here would load it all
    if isinstance(given, xr.DataArray) and reflectance_checked(given.data):
        return feats
    if not isinstance(feats.data, (np.ndarray, dsa.Array)):
        return feats
    optical = [b for b in catalog.OPTICAL_FEATURES if b in set(feats["band"].values.tolist())]
    return check_reflectance(feats, "the features' optical bands", bands=optical) if optical else feats


def predict_proba(
    features: xr.DataArray | xr.Dataset,
    model: Any,
    outlines: Any = None,
    *,
    method: Method = "dense",
    batch_size: int | None = None,
    precision: Precision = DEFAULT_PRECISION,
    tta: str | None = None,
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
    precision
        Arithmetic of the network for ``"dense"``: ``"float32"`` (default: full IEEE float32 on
        every backend and device, GPUs' TF32 switched off for the call), ``"tf32"`` (TF32 matrix
        units on GPUs that have them; on CPUs the same numbers as float32) or ``"bfloat16"``
        (bfloat16 activations, float32 weights and softmax; on the demo model the labels agree
        with float32 on over 99 % of pixels).  ``"exact"`` always runs in float32 (the
        reference's numbers to 1e-5) and refuses the others.  Storage-backed features
        (``chunks=None``) with another precision are read through dask chunks of the
        storage's size instead of windows.
    tta
        Test-time augmentation: ``"flips"`` averages the softmax over 4 flipped views, ``"d4"``
        over the 8 rotations and flips (``None``: the image as is).  Models that are not
        translation-exact (``"unet"``) run each chunk, with a halo of the bundle's tile overlap,
        whole when it fits the bundle's tile and otherwise as overlapping tiles merged with a
        Hann weight (:mod:`xfacies.inference.tiles`); ``method="exact"`` needs a
        windowed model.  With ``tta`` a windowed model runs each chunk (with its halo) whole.

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
    from xfacies.model.bundle import warn_out_of_domain, warn_unnormalised

    path, m = distribute.model_path(model)
    distribute.ship_model(path)  # under a distributed.Client: workers get the bundle once, not via the graph
    if method not in ("dense", "exact"):
        raise InputError(f"method must be 'dense' or 'exact', got {method!r}")
    check_precision(precision, method)
    from xfacies.inference.tiles import check_tta

    check_tta(tta)
    if method == "exact" and m.tiling is not None:
        raise InputError(f"method='exact' needs a windowed model (patch form); {m!r} ({m.architecture}) runs on "
                         "whole images or tiles: use method='dense' (see xfacies.inference.tiles)")
    tiled = tta is not None or m.tiling is not None
    feats = _checked_reflectance(prepare_features(features, m.features, cast=False), m, features)
    warn_unnormalised(m, "an xarray feature cube")
    warn_out_of_domain(m, _imagery(features), "features")
    halo = m.halo(method)
    if is_lazy(feats) and precision == DEFAULT_PRECISION and not tiled:
        probs = predict_windows(feats, m, path, outlines, method=method, halo=halo,
                                batch_size=batch_size, chunks=storage_chunks(features))
        return _proba_array(probs, feats, m, path, method)
    stacked = _stacked(features, feats, outlines)
    stacked = min_chunks(stacked, _depth(stacked, halo), warn=f"the model's {halo} px halo")
    C = len(m.classes)
    # the default precision is not passed on: the same tasks (and task names) as before it existed
    kw = {} if precision == DEFAULT_PRECISION else {"precision": precision}
    if tiled:
        kw["tta"] = tta
    probs = map_halo(
        proba_block, stacked, _depth(stacked, halo), boundary=np.nan, trim=False, dtype=np.float32,
        chunks=stacked.chunks[:-3] + ((C,),) + stacked.chunks[-2:], name=f"xfacies-proba-{method}",
        model_path=path, method=method, halo=halo, n_classes=C, batch_size=batch_size, **kw,
    )
    return _proba_array(probs, feats, m, path, method)


def _depth(stacked: Any, halo: int) -> dict[int, int]:
    nd = stacked.ndim
    return {nd - 2: halo, nd - 1: halo}


def _stacked(features: Any, feats: xr.DataArray, outlines: Any) -> Any:
    """The features with the glacier mask as one more band, one chunk along ``band`` (a dask
    array).  Storage-backed features (``chunks=None``) are chunked as the storage is."""
    import dask.array as da

    if is_lazy(feats):
        feats = feats.chunk(storage_chunks(features))
    if feats.dtype != np.float32:
        feats = feats.astype(np.float32)
    mask = glacier_mask(outlines, feats)
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
    return da.concatenate([data, mband], axis=nd - 3).rechunk({nd - 3: -1})


def _imagery(obj: xr.DataArray | xr.Dataset) -> str | None:
    """Where the features' imagery came from (``xfacies_imagery``: "synthetic" for
    :mod:`xfacies.synthetic`), from the array's or the Dataset's attributes."""
    if isinstance(obj, xr.Dataset):
        if "features" in obj.data_vars and "xfacies_imagery" in obj["features"].attrs:
            return obj["features"].attrs["xfacies_imagery"]
        return obj.attrs.get("xfacies_imagery")
    return obj.attrs.get("xfacies_imagery")


def _proba_array(probs: Any, feats: xr.DataArray, m: Any, path: str, method: str) -> xr.DataArray:
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
    precision: Precision = DEFAULT_PRECISION,
    device_blocks: bool = False,
) -> xr.DataArray | xr.Dataset:
    """Classify glacier facies, lazily, chunk by chunk.

    Parameters
    ----------
    features, model, outlines, method, batch_size, precision
        As in :func:`predict_proba`.
    smooth
        Apply the reference's 3 x 3 mode filter (ignores nodata; ties to the
        lowest class id).
    confidence
        Also return the confidence (max probability, calibrated by the bundle's
        calibrator when it has one and ``calibrate``; clipped to [0, 1]).
    device_blocks
        ``method="dense"`` only: one compiled call per block takes the raw features and the
        glacier mask and returns the int8 labels (and the maximum probability), normalisation,
        nodata and the 3 x 3 mode filter included, so no probabilities cross from the device
        nor go through the task graph (the calibrator then runs on the host on the maximum
        probability).  Same labels and confidence as the default path (which computes
        probabilities, then labels, smoothing and confidence in tasks of their own); with
        ``smooth`` the halo grows by one pixel.  Storage-backed features (``chunks=None``) are
        then read through dask chunks of the storage's size.

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

    path, m = distribute.model_path(model)  # resolve once (an in-memory model is saved and hashed here)
    if device_blocks:
        if method != "dense":
            raise InputError(f"device_blocks=True runs the dense form; got method={method!r}: use "
                             "method='dense' or leave device_blocks=False")
        return _classify_device(features, m, path, outlines, smooth=smooth, confidence=confidence,
                                calibrate=calibrate, precision=precision)
    kw = {} if precision == DEFAULT_PRECISION else {"precision": precision}
    probs = predict_proba(features, m, outlines, method=method, batch_size=batch_size, **kw)
    p = probs.data
    nd = p.ndim
    labels = da.map_blocks(labels_block, p, drop_axis=nd - 3, dtype=np.int8,
                           meta=np.empty((0,) * (nd - 1), dtype=np.int8), token="xfacies-labels")
    if smooth:
        labels = map_halo(smooth_block, labels, {nd - 3: 1, nd - 2: 1}, boundary=catalog.NODATA,
                          trim=False, name="xfacies-smooth", n_classes=len(m.classes))
    dims = probs.dims[:-3] + ("y", "x")
    coords = {k: v for k, v in probs.coords.items() if "class" not in v.dims}
    attrs = catalog.class_flag_attrs(classes=m.classes)
    attrs.update(method=method, smoothed=int(smooth), model=probs.attrs["model"])
    facies = xr.DataArray(labels, dims=dims, coords=coords, name="classes", attrs=attrs)
    if not confidence:
        return facies
    conf = da.map_blocks(confidence_block, p, drop_axis=nd - 3, dtype=np.float32,
                         meta=np.empty((0,) * (nd - 1), dtype=np.float32),
                         model_path=path, calibrate=calibrate, token="xfacies-confidence")
    conf_da = xr.DataArray(conf, dims=dims, coords=coords, name="confidence",
                           attrs={"long_name": "classification confidence", "units": "1",
                                  "calibrated": int(calibrate and m.calibrator is not None)})
    return xr.Dataset({"classes": facies, "confidence": conf_da})


def _classify_device(features: Any, m: Any, path: str, outlines: Any, *, smooth: bool, confidence: bool,
                     calibrate: bool, precision: str) -> xr.DataArray | xr.Dataset:
    """:func:`classify` with ``device_blocks=True``: one :func:`classify_block` task per block."""
    from xfacies.model.bundle import warn_out_of_domain, warn_unnormalised

    distribute.ship_model(path)
    check_precision(precision, "dense")
    feats = _checked_reflectance(prepare_features(features, m.features, cast=False), m, features)
    warn_unnormalised(m, "an xarray feature cube")
    warn_out_of_domain(m, _imagery(features), "features")
    halo = m.halo("dense")
    g = halo + int(smooth)  # the mode filter reads labels one pixel around the block
    stacked = _stacked(features, feats, outlines)
    stacked = min_chunks(stacked, _depth(stacked, g), warn=f"the model's {g} px halo")
    yx = stacked.chunks[-2:]
    out = map_halo(
        classify_block, stacked, _depth(stacked, g), boundary=np.nan, trim=False,
        dtype=np.float32 if confidence else np.int8,
        chunks=stacked.chunks[:-3] + ((2 if confidence else 1,),) + yx, name="xfacies-classify-dense",
        model_path=path, halo=halo, smooth=smooth, confidence=confidence, calibrate=calibrate,
        precision=precision,
    )
    labels = out[..., 0, :, :].astype(np.int8) if confidence else out[..., 0, :, :]
    dims = feats.dims[:-3] + ("y", "x")
    coords = {k: v for k, v in feats.coords.items() if "band" not in v.dims}
    attrs = catalog.class_flag_attrs(classes=m.classes)
    attrs.update(method="dense", smoothed=int(smooth), model=Path(path).name)
    facies = xr.DataArray(labels, dims=dims, coords=coords, name="classes", attrs=attrs)
    if not confidence:
        return facies
    conf_da = xr.DataArray(out[..., 1, :, :], dims=dims, coords=coords, name="confidence",
                           attrs={"long_name": "classification confidence", "units": "1",
                                  "calibrated": int(calibrate and m.calibrator is not None)})
    return xr.Dataset({"classes": facies, "confidence": conf_da})

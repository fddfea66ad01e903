"""Zone segmentation of SAR images through xfacies' inference engine.

:func:`segment` turns a SAR image (8-bit grey values, 0 = no data) into CaFFe zone class ids
(:data:`xfacies.catalog.ZONES`) with a zone model such as the shipped ``"caffe-zones"``.  It
runs lazily, chunk by chunk with the model's halo, through :func:`xfacies.predict_proba`, the
engine the facies models use, so it scales to images of any size and to Dask clusters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xfacies.errors import InputError
from xfacies import catalog

__all__ = ["segment", "sar_features"]

#: The shipped zone model (see ``xfacies.load_model("caffe-zones")``).
DEFAULT_MODEL = "caffe-zones"


def sar_features(sar: xr.DataArray) -> xr.DataArray:
    """The engine's feature cube for a SAR image: float32 grey values on a ``band`` = ``["sar"]``
    axis, NaN where the image has no data (grey value 0).

    Raises
    ------
    TypeError
        For float input (the benchmark's images are 8-bit grey values: pass them unscaled).
    ValueError
        For values outside 0..255 or an image without ``y``/``x`` dims.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = sar_features(xr.DataArray(np.array([[0, 255]], np.uint8), dims=("y", "x")))
    >>> f.dims, f.values.tolist()
    (('band', 'y', 'x'), [[[nan, 255.0]]])
    """
    if not isinstance(sar, xr.DataArray):
        raise TypeError(f"sar must be an xarray.DataArray of 8-bit grey values, got {type(sar).__name__}")
    if sar.dims[-2:] != ("y", "x"):
        raise InputError(f"sar must have dims (..., 'y', 'x'), got {sar.dims}: rename them first, "
                         "e.g. sar.rename(row='y', col='x')")
    if not np.issubdtype(sar.dtype, np.integer):
        raise TypeError(
            f"sar has dtype {sar.dtype}; zone models take the benchmark's 8-bit grey values "
            "(uint8, 0 = no data), not rescaled floats. Pass the image as read, e.g. "
            "open_dataset(root)[stem]['sar']")
    if np.iinfo(sar.dtype).max > 255 and not _is_lazy(sar):
        lo, hi = int(sar.min()), int(sar.max())
        if lo < 0 or hi > 255:
            raise InputError(f"sar values span {lo}..{hi}; 8-bit grey values 0..255 are expected "
                             "(0 = no data): rescale to 8 bits first")
    f = sar.where(sar != 0).astype(np.float32)
    return f.expand_dims(band=["sar"], axis=-3)


def _is_lazy(a: xr.DataArray) -> bool:
    import dask

    return dask.is_dask_collection(a.data)


def _zones_block(p: np.ndarray) -> np.ndarray:
    """Argmax class ids of a ``(…, class, y, x)`` probability block; NaN (no data) -> 0 (NA)."""
    nan = np.isnan(p[..., 0, :, :])
    z = np.argmax(np.nan_to_num(p, nan=-1.0), axis=-3).astype(np.int8)
    z[nan] = 0
    return z


def segment(sar: Any, model: Any = DEFAULT_MODEL, *, method: str = "dense",
            chunks: int | dict | None = None, tta: str | None = None) -> Any:
    """Zone class ids (0 NA, 1 rock, 2 glacier, 3 ocean) of SAR images, lazily, chunk by chunk.

    Parameters
    ----------
    sar
        A SAR image as an ``(…, y, x)`` integer DataArray of 8-bit grey values (0 = no data), a
        Dataset with a ``sar`` variable, or a DataTree from :func:`xfacies.caffe.open_dataset`
        (every node with a ``sar`` variable is segmented).
    model
        A zone model (:class:`xfacies.Model` with the ``"sar"`` feature and the four zone
        classes), a bundle path, or a built-in name; default ``"caffe-zones"``.
    method
        ``"dense"`` or ``"exact"``, as in :func:`xfacies.predict_proba`.  The shipped model is a
        U-Net (not translation-exact): ``"dense"`` runs each image whole when it fits the
        bundle's tile (512 px) and otherwise as overlapping tiles merged with a Hann weight;
        ``"exact"`` is for translation-exact models (``"dilated-fcn"``).
    chunks
        Rechunk the image first (e.g. ``{"y": 1024, "x": 1024}``); by default its own chunks
        (a NumPy-backed image is one chunk).
    tta
        ``"flips"`` averages the softmax over 4 flipped views, ``"d4"`` over 8 rotations and
        flips; ``None`` (default) the image as is.

    Returns
    -------
    xarray.DataArray, or xarray.DataTree for DataTree input
        int8 zone ids named ``zones`` with CF flag attributes
        (:func:`xfacies.catalog.zone_flag_attrs`); pixels without data are 0 (NA).  For a
        DataTree, a tree of the same node names, each holding ``zones``, ready for
        :func:`xfacies.caffe.evaluate`.

    Raises
    ------
    ValueError
        A model that is not a zone model (wrong features or classes).

    Examples
    --------
    >>> import xfacies.caffe as caffe                                   # doctest: +SKIP
    >>> ds = caffe.open_dataset("data_raw", split="test")               # doctest: +SKIP
    >>> pred = caffe.segment(ds)                                        # doctest: +SKIP
    >>> caffe.evaluate(pred, ds).query("breakdown == 'all'")            # doctest: +SKIP
    """
    from xfacies.inference import distribute
    from xfacies.inference.engine import predict_proba

    path, m = distribute.model_path(model)
    want = tuple(z.name for z in catalog.ZONES)
    if tuple(m.features) != ("sar",) or tuple(m.classes) != want:
        raise InputError(
            f"{m!r} is not a zone model: it takes {list(m.features)} and predicts "
            f"{list(m.classes)}; segment needs features ['sar'] and classes {list(want)} "
            "(e.g. xfacies.load_model('caffe-zones') or one from xfacies.caffe.train_zone_model)")
    if isinstance(sar, xr.DataTree):
        out = {}
        for node in sar.subtree:
            if "sar" in node.ds.data_vars:
                z = segment(node.ds["sar"], path, method=method, chunks=chunks, tta=tta)
                out[node.relative_to(sar) if node is not sar else "/"] = xr.Dataset({"zones": z}, attrs=dict(node.attrs))
        return xr.DataTree.from_dict(out, name=sar.name)
    if isinstance(sar, xr.Dataset):
        if "sar" not in sar.data_vars:
            raise InputError(f"the Dataset has no 'sar' variable (variables: {list(sar.data_vars)})")
        sar = sar["sar"]
    if chunks is not None:
        sar = sar.chunk(chunks)
    probs = predict_proba(sar_features(sar), path, method=method, tta=tta)
    import dask.array as da

    p = probs.data
    nd = p.ndim
    z = da.map_blocks(_zones_block, p, drop_axis=nd - 3, dtype=np.int8,
                      meta=np.empty((0,) * (nd - 1), dtype=np.int8), token="xfacies-zones")
    coords = {k: v for k, v in probs.coords.items() if "class" not in v.dims}
    attrs = catalog.zone_flag_attrs()
    attrs.update(method=method, model=probs.attrs["model"])
    if tta is not None:
        attrs["tta"] = tta
    return xr.DataArray(z, dims=probs.dims[:-3] + ("y", "x"), coords=coords, name="zones", attrs=attrs)

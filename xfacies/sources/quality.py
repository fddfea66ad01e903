"""Scene quality: which dates of a reflectance cube are fit to enter a time series.

A fully clouded scene, a scene that covers only part of the glaciers, a
saturated scene or one whose values are not surface reflectance must not
poison a series of facies fractions.  :func:`scene_quality` measures, per date
and over the glacier pixels only, the shares that decide it (lazily, one small
reduction per date); :func:`rejected_scenes` turns them into ``{date: reason}``
with configurable thresholds.  ``xfacies run`` uses both before it classifies
(``[quality]`` in the run configuration), skips the rejected dates and records
why in the store (:func:`xfacies.io.recorded_dates`) and in
``report/scenes.csv``.

Examples
--------
>>> import xfacies.synthetic as syn
>>> season = syn.season(["2021-07-01", "2021-08-01"], size=64)
>>> cube = season["features"].sel(band=["blue", "green", "red", "nir", "swir1", "swir2"])
>>> q = scene_quality(cube, syn.outlines(64)).compute()
>>> sorted(q.data_vars)
['glacier_pixels', 'implausible', 'saturated', 'valid']
>>> bool((q.valid >= 0).all()), int(q.glacier_pixels[0]) > 0
(True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.errors import GridError, InputError
from xfacies.catalog import OPTICAL_FEATURES
from xfacies.validation import REFLECTANCE_RANGE

__all__ = ["scene_quality", "rejected_scenes", "DEFAULT_SATURATION", "DEFAULT_MARGIN"]

#: Pixels around the glaciers that the reference models see (33 x 33 patches: radius 16).
DEFAULT_MARGIN = 16

#: Reflectance at or above which an optical value counts as saturated (bright fresh snow stays
#: below it; a clipped or saturated detector reads at or above it once scaled).
DEFAULT_SATURATION = 1.2


def scene_quality(cube: xr.DataArray, outlines: Any = None, *, saturation: float = DEFAULT_SATURATION,
                  plausible: tuple[float, float] = REFLECTANCE_RANGE, margin: int = DEFAULT_MARGIN) -> xr.Dataset:
    """Per-date shares of valid glacier pixels, and of saturated and implausible pixels in what the
    model sees of them.

    A CNN classifies a glacier pixel from the patch around it, so a saturated or fill-valued pixel
    just outside an outline spoils the glacier pixels near it: ``saturated`` and ``implausible``
    are counted over the glacier pixels *and* the ``margin`` pixels around them (the receptive
    field), ``valid`` over the glacier pixels.

    Parameters
    ----------
    cube
        Reflectance ``(time, band, y, x)`` (optical bands named as in
        :data:`xfacies.catalog.OPTICAL_FEATURES`; other bands, like
        ``open_stac``'s ``valid``, are ignored), NaN for nodata and masked
        cloud.  Dask-backed stays lazy.
    outlines
        Glacier outlines (GeoDataFrame, path or raster on the cube's grid);
        ``None`` measures every pixel.
    saturation
        A valid pixel whose optical value reaches this is saturated.
    plausible
        ``(low, high)``: a valid pixel with a value outside is implausible
        (percent, or digital numbers without scale and offset, or fill such as -9999).
    margin
        Pixels around the glaciers counted for ``saturated`` and ``implausible``: the model's
        receptive-field radius (16 for the 33 x 33 patches of the reference models; a bundle's
        :meth:`xfacies.Model.halo`).

    Returns
    -------
    xarray.Dataset
        Over ``time``: ``valid`` (share of glacier pixels with every optical
        band finite: not cloud, not nodata), ``saturated`` and ``implausible``
        (shares of the *valid* pixels of the glaciers and their margin; NaN
        without any) and ``glacier_pixels``.

    Raises
    ------
    ValueError
        A cube without ``time``/``band`` dimensions or optical bands; the
        outlines do not touch the cube.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> v = np.full((1, 6, 2, 2), 0.4); v[0, :, 0, 0] = np.nan; v[0, 0, 1, 1] = 1.5
    >>> cube = xr.DataArray(v, dims=("time", "band", "y", "x"), coords={
    ...     "time": pd.to_datetime(["2021-08-01"]),
    ...     "band": ["blue", "green", "red", "nir", "swir1", "swir2"]})
    >>> q = scene_quality(cube)
    >>> float(q.valid[0]), round(float(q.saturated[0]), 3), float(q.implausible[0])
    (0.75, 0.333, 0.0)
    """
    from xfacies import spatial
    from xfacies.outlines import glacier_mask

    if not isinstance(cube, xr.DataArray) or not {"time", "band"} <= set(cube.dims):
        raise InputError("scene_quality needs a reflectance DataArray with 'time' and 'band' dimensions, e.g. "
                         "the cube of xfacies.open_stac")
    optical = [b for b in cube["band"].values.tolist() if b in OPTICAL_FEATURES]
    if not optical:
        raise InputError(f"the cube has no optical band (bands {cube['band'].values.tolist()}); name them as in "
                         f"xfacies.catalog.OPTICAL_FEATURES: {list(OPTICAL_FEATURES)}")
    refl = cube.sel(band=optical)
    ydim, xdim = spatial.spatial_dims(refl)
    mask = glacier_mask(outlines, refl.isel(time=0, band=0, drop=True)) if outlines is not None else None
    if mask is not None:
        # once, here, without the cluster: the same lazy mask is part of the classification's graph,
        # and a key sent to the scheduler twice with different task specs can deadlock it
        mask = mask.drop_vars([c for c in mask.coords if c not in mask.dims]).compute(scheduler="synchronous")
        if not bool(mask.any()):
            raise GridError("the outlines do not cover any pixel of the cube: check their CRS and the area "
                             "searched")
    lo, hi = plausible
    if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
        raise InputError(f"margin must be a whole number of pixels >= 0 (the model's receptive-field radius), "
                         f"got {margin!r}")
    refl = refl.transpose("time", "band", ydim, xdim)
    if mask is None:
        glacier = np.ones((refl.sizes[ydim], refl.sizes[xdim]), dtype=bool)
        seen = glacier
    else:
        glacier = np.asarray(mask.values, dtype=bool)
        seen = _dilate(glacier, int(margin))
    n = int(glacier.sum())
    counts = _count(refl.data, glacier, seen, lo, hi, float(saturation))
    t = refl["time"]
    nvalid = xr.DataArray(counts[:, 0], dims="time", coords={"time": t})
    nseen = xr.DataArray(counts[:, 3], dims="time", coords={"time": t})
    per = nseen.where(nseen > 0)
    out = xr.Dataset({
        "valid": (nvalid / n).assign_attrs(long_name="share of glacier pixels with valid reflectance"),
        "saturated": (xr.DataArray(counts[:, 1], dims="time", coords={"time": t}) / per).assign_attrs(
            long_name=f"share of valid pixels of the glaciers and {margin} px around them with an optical "
                      f"value >= {saturation:g}"),
        "implausible": (xr.DataArray(counts[:, 2], dims="time", coords={"time": t}) / per).assign_attrs(
            long_name=f"share of valid pixels of the glaciers and {margin} px around them with an optical "
                      f"value outside [{lo:g}, {hi:g}]"),
    })
    out["glacier_pixels"] = xr.full_like(out["valid"], n, dtype=np.int64).assign_attrs(
        long_name="glacier pixels in the cube")
    return out.drop_vars([c for c in out.coords if c != "time"])


def _dilate(mask: np.ndarray, margin: int) -> np.ndarray:
    """``mask`` grown by ``margin`` pixels in x and y (a square window, as a patch is square)."""
    if margin == 0:
        return mask
    from scipy import ndimage

    return ndimage.maximum_filter(mask.astype(np.uint8), size=2 * margin + 1, mode="constant") > 0


def _block_counts(block: np.ndarray, glacier: np.ndarray, seen: np.ndarray, lo: float, hi: float,
                  sat: float) -> np.ndarray:
    """``(time, 4, 1, 1)`` counts in one block: valid glacier pixels, then saturated, implausible and
    valid pixels among the pixels the model sees (glaciers and margin)."""
    v = block[:, :, seen]  # (time, band, seen pixels of the block)
    on = glacier[seen]
    valid = np.isfinite(v).all(axis=1)
    with np.errstate(invalid="ignore"):
        bad = ((v < lo) | (v > hi)).any(axis=1) & valid
        hot = (v >= sat).any(axis=1) & valid
    out = np.stack([(valid & on).sum(axis=1), hot.sum(axis=1), bad.sum(axis=1), valid.sum(axis=1)], axis=1)
    return out[:, :, None, None].astype(np.int64)


def _count(data: Any, glacier: np.ndarray, seen: np.ndarray, lo: float, hi: float, sat: float) -> Any:
    """Per-date counts (time, 4): one task per block (named for this check), summed over blocks."""
    if not hasattr(data, "dask"):
        return _block_counts(np.asarray(data), glacier, seen, lo, hi, sat)[:, :, 0, 0]
    import dask.array as da
    from dask.base import tokenize

    data = data.rechunk({1: -1})
    ych, xch = data.chunks[2], data.chunks[3]
    g = da.from_array(glacier, chunks=(ych, xch))
    m = da.from_array(seen, chunks=(ych, xch))
    name = "xfacies-scene-quality-" + tokenize(data, glacier, seen, lo, hi, sat)
    per_block = da.blockwise(
        _block_counts, "tcyx", data, "tbyx", g, "yx", m, "yx", lo=lo, hi=hi, sat=sat, name=name,
        dtype=np.int64, new_axes={"c": 4}, concatenate=True, meta=np.empty((0, 0, 0, 0), np.int64),
        adjust_chunks={"y": (1,) * len(ych), "x": (1,) * len(xch)})
    return per_block.sum(axis=(2, 3))


def rejected_scenes(quality: xr.Dataset, *, min_valid: float = 0.3, max_saturated: float = 0.5,
                    max_implausible: float = 0.01) -> dict[pd.Timestamp, str]:
    """The dates to leave out of a series, each with the reason.

    Parameters
    ----------
    quality
        :func:`scene_quality` (computed or lazy; it is computed here).
    min_valid
        Least share of glacier pixels that must be valid: below it the scene
        is clouded, or covers only part of the glaciers.
    max_saturated, max_implausible
        Largest shares of the valid pixels on and around the glaciers (what the
        model sees) that may be saturated, or
        outside plausible reflectance.

    Returns
    -------
    dict
        ``{date: reason}`` for the rejected dates (in time order).

    Examples
    --------
    >>> import pandas as pd, xarray as xr
    >>> t = pd.to_datetime(["2021-07-01", "2021-08-01"])
    >>> q = xr.Dataset({"valid": ("time", [0.0, 0.9]), "saturated": ("time", [float("nan"), 0.0]),
    ...                 "implausible": ("time", [float("nan"), 0.0])}, coords={"time": t})
    >>> rejected_scenes(q)
    {Timestamp('2021-07-01 00:00:00'): 'clouded or no data: 0.0 % of glacier pixels valid (min_valid 30 %)'}
    """
    for name, v in (("min_valid", min_valid), ("max_saturated", max_saturated),
                    ("max_implausible", max_implausible)):
        if not 0 <= v <= 1:
            raise InputError(f"{name} must be a share within 0..1, got {v!r}")
    q = quality.compute()
    out: dict[pd.Timestamp, str] = {}
    for i, t in enumerate(pd.DatetimeIndex(q["time"].values)):
        valid = float(q["valid"][i])
        sat = float(q["saturated"][i])
        bad = float(q["implausible"][i])
        if valid <= 0:
            out[t] = f"clouded or no data: 0.0 % of glacier pixels valid (min_valid {100 * min_valid:g} %)"
        elif valid < min_valid:
            out[t] = (f"partly covered: {100 * valid:.1f} % of glacier pixels valid (cloud, nodata or outside "
                      f"the scene; min_valid {100 * min_valid:g} %)")
        elif bad > max_implausible:
            out[t] = (f"implausible reflectance on {100 * bad:.1f} % of valid pixels on and around the glaciers "
                      f"(max_implausible {100 * max_implausible:g} %): values in percent or digital numbers, "
                      "or undeclared fill?")
        elif sat > max_saturated:
            out[t] = (f"saturated on {100 * sat:.1f} % of valid pixels on and around the glaciers "
                      f"(max_saturated {100 * max_saturated:g} %)")
    return out

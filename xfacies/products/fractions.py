"""Facies fractions per glacier and date, and the AAR proxy derived from them.

:func:`fractions` counts, for every date and glacier, the pixels of each class
in one dask pass, so a scene-sized class map is never held in memory.
:func:`aar_proxy` sums the accumulation-area classes of those fractions.
Examples
--------
>>> import geopandas as gpd, numpy as np, xarray as xr, rioxarray  # noqa: F401
>>> from shapely.geometry import box
>>> classes = xr.DataArray(np.array([[1, 1, 0, 7], [3, 0, 0, -1]], "int8"), dims=("y", "x"),
...                        coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]}
...                        ).rio.write_crs("EPSG:32632")
>>> gdf = gpd.GeoDataFrame({"rgi_id": ["A"]}, geometry=[box(0, 0, 40, 20)], crs="EPSG:32632")
>>> frac = fractions(classes, gdf)
>>> frac["fraction"].sel(glacier="A", **{"class": "ice"}).item()  # 3 of 6 observed
0.5
>>> float(frac["coverage"].sel(glacier="A"))  # cloud and nodata are not observed
0.75
>>> float(aar_proxy(frac).sel(glacier="A"))  # snow (2) + firn (1) of 6
0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xfacies import spatial
from xfacies.validation import class_codes as validation_class_codes
from xfacies.outlines import as_outlines, glacier_index
from xfacies.catalog import CLASSES, NODATA, map_classes
from xfacies.errors import GridError, InputError, InputWarning
from xfacies.validation import require_unique_times

__all__ = ["fractions", "aar_proxy", "CLOUD", "REFROZEN"]

#: Class id of cloud (not observed surface) in the catalogue.
CLOUD: int = next(c.id for c in CLASSES if c.name == "cloud")

_NCLS = max(c.id for c in CLASSES) + 1  # catalogue class ids 0 .. _NCLS-1


def _block_counts(cls: np.ndarray, idx: np.ndarray, n_glaciers: int, n_classes: int = _NCLS) -> np.ndarray:
    """Counts of (glacier index, class) pairs in one block.

    ``cls`` is (t, y, x), ``idx`` is (y, x).  Returns (t, 1, 1, (G+1) * (C+1))
    int64, bin ``g * (C+1) + (class + 1)`` (class -1 = NODATA in bin 0).
    """
    cls = np.asarray(cls)
    idx = np.asarray(idx)
    nbin = n_classes + 1
    nb = (n_glaciers + 1) * nbin
    out = np.zeros((cls.shape[0], 1, 1, nb), dtype=np.int64)
    if cls.size == 0:
        return out
    c = class_codes(cls, n_classes).astype(np.int64, copy=False)
    bad = (c < NODATA) | (c >= n_classes)
    if bad.any():
        raise InputError(
            f"class map holds values outside its classes {sorted(set(np.unique(c[bad]).tolist()))[:10]}; "
            f"valid values are {NODATA} (nodata) and 0..{n_classes - 1} (its flag_values, or the catalogue's "
            "for a map without them)"
        )
    g = idx.astype(np.int64, copy=False)
    if g.size and (g.min() < 0 or g.max() > n_glaciers):
        raise InputError(
            f"glacier index holds values outside 0..{n_glaciers}; pass the index made by "
            "xfacies.outlines.rasterize together with its attrs['glacier_ids']"
        )
    base = (g * nbin + 1)[None]  # (1, y, x)
    codes = (base + c).reshape(c.shape[0], -1)
    for t in range(c.shape[0]):
        out[t, 0, 0] = np.bincount(codes[t], minlength=nb)
    return out


def class_codes(cls: np.ndarray, n_classes: int = _NCLS) -> np.ndarray:
    """Class codes of a block (:func:`xfacies.validation.class_codes`): a float map's NaN becomes
    NODATA; float values that are not whole numbers (1.5, inf) are refused rather than truncated
    into another class."""
    return validation_class_codes(
        cls, nodata=NODATA, what="the class map",
        fix=(f"valid values are {NODATA} (nodata), NaN (nodata) and the class ids 0..{n_classes - 1}. Pass the "
             "map from xfacies.classify, or round it first: classes.round().astype('int8')"))


def glacier_index_like(classes: xr.DataArray, outlines: Any, all_touched: bool) -> xr.DataArray:
    return glacier_index(outlines, classes.isel({d: 0 for d in classes.dims[:-2]}, drop=True),
                                 all_touched=all_touched)


def with_time(classes: xr.DataArray) -> tuple[xr.DataArray, bool]:
    """A (time, y, x) view of a (y, x) or (time, y, x) class map, and whether time was added.

    A 2-D map with a scalar ``time`` coordinate gets a length-1 ``time``; without one a
    temporary dim that callers squeeze away again.
    """
    if classes.ndim == 2:
        if "time" in classes.coords and classes["time"].ndim == 0:
            return classes.expand_dims("time"), False
        return classes.expand_dims("__t"), True
    if classes.ndim != 3:
        raise InputError(f"classes must be (y, x) or (time, y, x); got dims {classes.dims}")
    return classes, False


def fractions(
    classes: xr.DataArray,
    outlines: Any,
    *,
    all_touched: bool = False,
) -> xr.Dataset:
    """Share of each glacier's observed area in each facies class, per date.

    Parameters
    ----------
    classes
        Class map, int8 ``(y, x)`` or ``(time, y, x)`` with a rioxarray CRS
        (values ``NODATA`` = -1 and the catalogue ids), numpy- or dask-backed.
        A float map is accepted with NaN read as nodata.
    outlines
        Glacier outlines (GeoDataFrame or path, see
        :func:`xfacies.outlines.read_outlines`), or a glacier index made by
        :func:`xfacies.outlines.rasterize` on the same grid (reuse it for many
        maps).
    all_touched
        Passed to :func:`~xfacies.outlines.rasterize` when outlines are given.

    Returns
    -------
    xarray.Dataset
        With coordinates ``glacier`` (the glacier ids, str), ``class`` (the
        class names except cloud, with ``class_id``) and ``time`` when present:

        - ``fraction(time, glacier, class)`` float32: pixels of the class over
          the glacier's *observed* pixels (not cloud and not nodata); NaN where
          nothing was observed.  Sums to 1 over ``class`` where observed.
        - ``n_valid(time, glacier)`` int64: observed pixels.
        - ``coverage(time, glacier)`` float32: ``n_valid`` over the glacier's
          pixel count (NaN for a glacier that covers no pixel).
        - ``area(glacier)`` float64: rasterised glacier area in m² (pixel count
          times pixel area).

        For a 2-D map the ``time`` dimension is absent; if the map has a scalar
        ``time`` coordinate it becomes a length-1 ``time`` dimension.  The
        result is lazy (dask-backed) when ``classes`` is: one pass over the map,
        a per-chunk bincount of (glacier, class) pairs combined by a sum; call
        ``.compute()`` to run it.

    Raises
    ------
    ValueError
        Map and index on different grids, outlines missing the grid (see
        :func:`~xfacies.outlines.rasterize`), duplicated dates (two maps of
        one day would be counted as two observations), or class values outside the
        catalogue (raised when the counts are computed).

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> from shapely.geometry import box
    >>> classes = xr.DataArray(np.array([[[0, 7], [7, 7]], [[0, 1], [1, 1]]], "int8"),
    ...                        dims=("time", "y", "x"),
    ...                        coords={"time": np.array(["2024-07-01", "2024-08-01"], "M8[ns]"),
    ...                                "y": [15.0, 5.0], "x": [5.0, 15.0]}).rio.write_crs("EPSG:32632")
    >>> gdf = gpd.GeoDataFrame({"rgi_id": ["A"]}, geometry=[box(0, 0, 20, 20)], crs="EPSG:32632")
    >>> f = fractions(classes, gdf)
    >>> f["fraction"].sel(glacier="A", **{"class": "snow"}).values
    array([0.  , 0.75], dtype=float32)
    >>> f["coverage"].sel(glacier="A").values
    array([0.25, 1.  ], dtype=float32)
    >>> float(f["area"].sel(glacier="A"))
    400.0
    """
    import dask.array as dsa

    if not isinstance(classes, xr.DataArray):
        raise TypeError(
            f"classes must be an xarray.DataArray class map, got {type(classes).__name__}; "
            "for a Dataset pass ds['classes']"
        )
    classes, squeeze_time = with_time(classes)
    tdim = classes.dims[0]
    require_unique_times(classes, "the class map", tdim)
    ydim, xdim = classes.dims[1], classes.dims[2]

    index = glacier_index_like(classes, outlines, all_touched)
    ids = [str(i) for i in index.attrs["glacier_ids"]]
    n_glaciers = len(ids)
    table = map_classes(classes)  # the map's own classes (its model's), else the catalogue
    n_cls = max(i for i, _, _ in table) + 1
    nbin = n_cls + 1

    cdata = classes.data
    idata = index.data
    lazy = isinstance(cdata, dsa.Array) or isinstance(idata, dsa.Array)
    if lazy:
        cdata = dsa.asarray(cdata)
        idata = dsa.asarray(idata)
        nb = (n_glaciers + 1) * nbin
        per_block = dsa.blockwise(
            _block_counts,
            "tyxk",
            cdata,
            "tyx",
            idata,
            "yx",
            n_glaciers=n_glaciers,
            n_classes=n_cls,
            new_axes={"k": nb},
            adjust_chunks={"y": 1, "x": 1},
            dtype=np.int64,
            meta=np.empty((0, 0, 0, 0), dtype=np.int64),
        )
        counts = per_block.sum(axis=(1, 2))
    else:
        counts = _block_counts(np.asarray(cdata), np.asarray(idata), n_glaciers, n_cls)[:, 0, 0]
    counts = counts.reshape(counts.shape[0], n_glaciers + 1, nbin)[:, 1:]  # drop "no glacier"

    kept = [(i, name) for i, name, _ in table if name != "cloud"]  # cloud is not observed surface
    cols = [i + 1 for i, _ in kept]  # bin of class id
    per_class = counts[:, :, cols]  # (t, g, k)
    n_pix = counts[0].sum(axis=-1)  # (g,) every pixel is nodata or a class
    n_valid = per_class.sum(axis=-1)  # (t, g)

    res = _pixel_area(classes, xdim, ydim)
    # a glacier partly beyond the map: the part outside counts as not observed
    outside = _outside_pixels(classes, outlines, ids, res)
    xp = dsa if lazy else np
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = xp.where(
            n_valid[..., None] > 0,
            per_class / xp.maximum(n_valid, 1)[..., None],
            np.nan,
        ).astype(np.float32)
        whole = n_pix + outside
        coverage = xp.where(whole > 0, n_valid / xp.maximum(whole, 1e-12), np.nan).astype(np.float32)

    row_area = _geographic_row_area(classes, ydim)
    if row_area is None:
        area = (n_pix * res).astype(np.float64)
    else:  # degrees: each row's pixels have their own area on the ellipsoid
        weights = np.broadcast_to(row_area[:, None], (classes.sizes[ydim], classes.sizes[xdim]))
        flat = idata.ravel() if lazy else np.asarray(idata).ravel()
        if lazy:
            w = dsa.from_array(np.ascontiguousarray(weights), chunks=idata.chunks).ravel()
            area = dsa.bincount(flat.astype(np.int64), weights=w, minlength=n_glaciers + 1)[1:]
        else:
            area = np.bincount(flat.astype(np.int64), weights=weights.ravel(), minlength=n_glaciers + 1)[1:]

    glacier = np.array(ids, dtype=object)
    coords: dict[str, Any] = {
        "glacier": ("glacier", glacier, {"long_name": "glacier id"}),
        "class": ("class", np.array([name for _, name in kept], dtype=object),
                  {"long_name": "surface facies class"}),
        "class_id": ("class", np.array([i for i, _ in kept], dtype=np.int8),
                     {"long_name": "class id in the class map (its flag_values)"}),
    }
    if not squeeze_time and tdim in classes.coords:
        coords[tdim] = classes[tdim].variable
    ds = xr.Dataset(
        {
            "fraction": (
                (tdim, "glacier", "class"),
                frac,
                {"long_name": "fraction of the observed glacier area in each class",
                 "units": "1",
                 "comment": "observed = neither cloud nor nodata; NaN where nothing observed"},
            ),
            "n_valid": (
                (tdim, "glacier"),
                n_valid.astype(np.int64),
                {"long_name": "number of observed glacier pixels", "units": "1"},
            ),
            "coverage": (
                (tdim, "glacier"),
                coverage,
                {"long_name": "observed fraction of the glacier",
                 "comment": "observed pixels / (rasterised pixels + the outline's area beyond the map, in "
                            "pixels): a glacier partly outside the map is not fully observed", "units": "1"},
            ),
            "area": (
                ("glacier",),
                area,
                {"long_name": "rasterised glacier area", "units": "m2",
                 "comment": "pixel count x pixel area; on a geographic grid, each pixel's area on the CRS's "
                            "ellipsoid"},
            ),
        },
        coords=coords,
        attrs={
            "title": "glacier surface facies fractions",
            "source": "xfacies.products.fractions",
            "all_touched": int(bool(all_touched)) if not isinstance(outlines, xr.DataArray)
            else int(index.attrs.get("all_touched", 0)),
        },
    )
    if squeeze_time:
        ds = ds.isel({tdim: 0}, drop=True)
    return ds


#: Share of a glacier's outline beyond the class map above which fractions warns.
MAX_OUTSIDE_SHARE = 0.01


def _outside_pixels(classes: xr.DataArray, outlines: Any, ids: list[str], pixel_area: float) -> np.ndarray:
    """Per glacier (in ``ids`` order), the area of its outline beyond the map's extent, in pixels
    (0 for a glacier raster, which has no outline beyond the map)."""
    out = np.zeros(len(ids))
    if isinstance(outlines, (xr.DataArray, xr.Dataset)) or not ids:
        return out
    import warnings

    from shapely.geometry import box

    gdf = as_outlines(outlines)
    crs = spatial.crs_of(classes)
    if crs is not None:
        gdf = gdf.to_crs(crs)
    extent = box(*spatial.bounds(classes))
    where = {str(g): k for k, g in enumerate(ids)}
    whole = np.zeros(len(ids))
    for gid, geom in zip(gdf["glacier_id"].astype(str), gdf.geometry):
        k = where.get(gid)
        if k is None or geom is None or geom.is_empty:
            continue
        whole[k] = geom.area
        if not extent.contains(geom):
            out[k] = geom.difference(extent).area / pixel_area
    share = np.divide(out * pixel_area, whole, out=np.zeros_like(whole), where=whole > 0)
    cut = [(ids[k], share[k]) for k in np.flatnonzero(share > MAX_OUTSIDE_SHARE)]
    if cut:
        shown = ", ".join(f"{g} ({100 * v:.0f} %)" for g, v in cut[:5]) + (" ..." if len(cut) > 5 else "")
        warnings.warn(
            f"{len(cut)} glacier(s) extend beyond the class map: {shown} of their outline lies outside it. "
            "Their coverage counts that part as not observed (so end_of_season's min_coverage can drop them); "
            "their fractions and AAR proxy describe the visible part only. Use a scene or grid that covers "
            "the whole glacier (xfacies.grid(outlines), or open_stac(outlines, ...)).",
            InputWarning, stacklevel=3)
    return out


def _geographic_row_area(classes: xr.DataArray, ydim: str) -> np.ndarray | None:
    """m² of one pixel in each row of a grid in degrees (on its CRS's ellipsoid); ``None`` for a
    projected grid or one without a CRS (pixel area = the transform's, in the CRS's metres)."""
    crs = spatial.crs_of(classes)
    if crs is None:
        return None
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    if not c.is_geographic:
        return None
    t = spatial.transform(classes)
    dx, dy = abs(t.a), abs(t.e)
    lat = np.asarray(classes[ydim].values, dtype=np.float64)
    geod = c.get_geod()
    out = np.empty(lat.size)
    for k, phi in enumerate(lat):
        lo, hi = max(phi - dy / 2, -90.0), min(phi + dy / 2, 90.0)
        a, _ = geod.polygon_area_perimeter([0.0, dx, dx, 0.0], [lo, lo, hi, hi])
        out[k] = abs(a)
    return out


def _pixel_area(classes: xr.DataArray, xdim: str, ydim: str) -> float:
    try:
        t = spatial.transform(classes)
    except Exception as err:
        raise GridError(
            f"cannot work out the pixel size of the class map ({err}); it needs x/y "
            "coordinates in metres"
        ) from None
    return abs(t.a * t.e - t.b * t.d)



# --------------------------------------------------------------------------- glaciology
_BY_NAME = {c.name: c for c in CLASSES}
#: Name of the refrozen / superimposed-ice-like class (optionally accumulation).
REFROZEN: str = _BY_NAME["refrozen-like"].name


def accumulation_names(accumulation: Sequence[str] | str, include_refrozen: bool) -> tuple[str, ...]:
    names = (accumulation,) if isinstance(accumulation, str) else tuple(accumulation)
    if include_refrozen and REFROZEN not in names:
        names = names + (REFROZEN,)
    if not names:
        raise InputError("accumulation is empty; give catalogue class names such as ('snow', 'firn')")
    return names


def aar_proxy(
    frac: xr.Dataset | xr.DataArray,
    accumulation: Sequence[str] = ("snow", "firn"),
    include_refrozen: bool = False,
) -> xr.DataArray:
    """Accumulation-area-ratio proxy: the summed fractions of accumulation facies.

    A simple proxy: the share of the observed glacier area classified as
    ``accumulation`` facies (by default snow and firn, optionally the
    refrozen-like class).  It equals the AAR only late in the ablation season,
    on a well observed glacier (look at ``coverage``; see
    :func:`end_of_season`), and counts shadow, water and debris in the
    denominator (cloud and nodata are not observed and are excluded).

    Parameters
    ----------
    frac
        The Dataset from :func:`fractions` or its ``fraction`` variable.
    accumulation
        Class names to sum (catalogue names).
    include_refrozen
        Also count the ``refrozen-like`` class (superimposed-ice-like
        surfaces, which belong to the accumulation area in the glaciological
        sense) as accumulation.

    Returns
    -------
    xarray.DataArray
        ``aar_proxy(time, glacier)`` (no ``time`` for a 2-D map); NaN where
        nothing was observed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = xr.DataArray([[0.5, 0.25, 0.125, 0.125]], dims=("glacier", "class"),
    ...                  coords={"glacier": ["A"], "class": ["ice", "snow", "firn", "refrozen-like"]})
    >>> float(aar_proxy(f).sel(glacier="A"))
    0.375
    >>> float(aar_proxy(f, include_refrozen=True).sel(glacier="A"))
    0.5
    """
    da = frac["fraction"] if isinstance(frac, xr.Dataset) else frac
    if "class" not in da.dims:
        raise InputError(
            f"expected fractions with a 'class' dimension (from xfacies.products.fractions); "
            f"got dims {da.dims}"
        )
    accumulation = accumulation_names(accumulation, include_refrozen)
    available = [str(c) for c in da["class"].values]
    missing = [a for a in accumulation if a not in available]
    if missing:
        raise InputError(
            f"accumulation classes {missing} are not in the fractions; available: {available}"
        )
    out = da.sel({"class": list(accumulation)}).sum("class", skipna=False)
    out = out.drop_vars([c for c in ("class_id",) if c in out.coords])
    out.name = "aar_proxy"
    out.attrs = {
        "long_name": "accumulation area ratio proxy (" + " + ".join(accumulation)
        + " fraction of the observed glacier area)",
        "units": "1",
    }
    return out



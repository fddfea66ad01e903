"""Per-glacier products from class maps: facies fractions, AAR proxy, snowline.

:func:`fractions` counts, for every date and glacier, the pixels of each class
in one dask pass (a per-chunk ``bincount`` of ``(glacier, class)`` pairs summed
over chunks), so a scene-sized class map is never held in memory.
:func:`aar_proxy` sums the accumulation-area classes of those fractions.
:func:`snowline_altitude` gives the elevation of the boundary between
accumulation facies and ice per glacier and date, and :func:`end_of_season`
picks one value per hydrological year (e.g. the late-season minimum AAR proxy
among well observed dates, or within WGMS survey periods) for comparison with
mass balances (:mod:`xfacies.massbalance`, :mod:`xfacies.wgms`).

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
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.catalog import CLASSES, NODATA

__all__ = ["fractions", "aar_proxy", "snowline_altitude", "end_of_season", "CLOUD"]

#: Class id of cloud (not observed surface) in the catalogue.
CLOUD: int = next(c.id for c in CLASSES if c.name == "cloud")

_NCLS = max(c.id for c in CLASSES) + 1  # class ids 0 .. _NCLS-1
_NBIN = _NCLS + 1  # plus NODATA in bin 0


def _block_counts(cls: np.ndarray, idx: np.ndarray, n_glaciers: int) -> np.ndarray:
    """Counts of (glacier index, class) pairs in one block.

    ``cls`` is (t, y, x), ``idx`` is (y, x).  Returns (t, 1, 1, (G+1) * _NBIN)
    int64, bin ``g * _NBIN + (class + 1)`` (class -1 = NODATA in bin 0).
    """
    cls = np.asarray(cls)
    idx = np.asarray(idx)
    nb = (n_glaciers + 1) * _NBIN
    out = np.zeros((cls.shape[0], 1, 1, nb), dtype=np.int64)
    if cls.size == 0:
        return out
    if np.issubdtype(cls.dtype, np.floating):
        cls = np.where(np.isnan(cls), NODATA, cls)
    c = cls.astype(np.int64, copy=False)
    bad = (c < NODATA) | (c >= _NCLS)
    if bad.any():
        raise ValueError(
            f"class map holds values outside the catalogue {sorted(set(np.unique(c[bad]).tolist()))[:10]}; "
            f"valid values are {NODATA} (nodata) and 0..{_NCLS - 1}"
        )
    g = idx.astype(np.int64, copy=False)
    if g.size and (g.min() < 0 or g.max() > n_glaciers):
        raise ValueError(
            f"glacier index holds values outside 0..{n_glaciers}; pass the index made by "
            "xfacies.outlines.rasterize together with its attrs['glacier_ids']"
        )
    base = (g * _NBIN + 1)[None]  # (1, y, x)
    codes = (base + c).reshape(c.shape[0], -1)
    for t in range(c.shape[0]):
        out[t, 0, 0] = np.bincount(codes[t], minlength=nb)
    return out


def _glacier_index(classes: xr.DataArray, outlines: Any, all_touched: bool) -> xr.DataArray:
    ydim, xdim = classes.dims[-2], classes.dims[-1]
    if isinstance(outlines, xr.DataArray):
        index = outlines
        if "glacier_ids" not in index.attrs:
            raise ValueError(
                "a glacier-index DataArray needs attrs['glacier_ids'] (the ids in index "
                "order); make it with xfacies.outlines.rasterize(outlines, classes)"
            )
        if set(index.dims) != {ydim, xdim}:
            raise ValueError(
                f"the glacier index has dims {index.dims}, the class map {classes.dims}; "
                "both need the same spatial dims"
            )
        index = index.transpose(ydim, xdim)
        for d in (ydim, xdim):
            if index.sizes[d] != classes.sizes[d] or (
                d in index.coords
                and d in classes.coords
                and not np.array_equal(index[d].values, classes[d].values)
            ):
                raise ValueError(
                    f"the glacier index and the class map are on different grids (dim {d!r}); "
                    "rasterize the outlines on the class map: rasterize(outlines, classes)"
                )
        return index
    from xfacies.outlines import rasterize

    return rasterize(outlines, classes, all_touched=all_touched)


def _with_time(classes: xr.DataArray) -> tuple[xr.DataArray, bool]:
    """A (time, y, x) view of a (y, x) or (time, y, x) class map, and whether time was added.

    A 2-D map with a scalar ``time`` coordinate gets a length-1 ``time``; without one a
    temporary dim that callers squeeze away again.
    """
    if classes.ndim == 2:
        if "time" in classes.coords and classes["time"].ndim == 0:
            return classes.expand_dims("time"), False
        return classes.expand_dims("__t"), True
    if classes.ndim != 3:
        raise ValueError(f"classes must be (y, x) or (time, y, x); got dims {classes.dims}")
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
        :func:`~xfacies.outlines.rasterize`), or class values outside the
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
    classes, squeeze_time = _with_time(classes)
    tdim = classes.dims[0]
    ydim, xdim = classes.dims[1], classes.dims[2]

    index = _glacier_index(classes, outlines, all_touched)
    ids = [str(i) for i in index.attrs["glacier_ids"]]
    n_glaciers = len(ids)

    cdata = classes.data
    idata = index.data
    lazy = isinstance(cdata, dsa.Array) or isinstance(idata, dsa.Array)
    if lazy:
        cdata = dsa.asarray(cdata)
        idata = dsa.asarray(idata)
        nb = (n_glaciers + 1) * _NBIN
        per_block = dsa.blockwise(
            _block_counts,
            "tyxk",
            cdata,
            "tyx",
            idata,
            "yx",
            n_glaciers=n_glaciers,
            new_axes={"k": nb},
            adjust_chunks={"y": 1, "x": 1},
            dtype=np.int64,
            meta=np.empty((0, 0, 0, 0), dtype=np.int64),
        )
        counts = per_block.sum(axis=(1, 2))
    else:
        counts = _block_counts(np.asarray(cdata), np.asarray(idata), n_glaciers)[:, 0, 0]
    counts = counts.reshape(counts.shape[0], n_glaciers + 1, _NBIN)[:, 1:]  # drop "no glacier"

    kept = [c for c in CLASSES if c.id != CLOUD]
    cols = [c.id + 1 for c in kept]  # bin of class id
    per_class = counts[:, :, cols]  # (t, g, k)
    n_pix = counts[0].sum(axis=-1)  # (g,) every pixel is nodata or a class
    n_valid = per_class.sum(axis=-1)  # (t, g)

    xp = dsa if lazy else np
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = xp.where(
            n_valid[..., None] > 0,
            per_class / xp.maximum(n_valid, 1)[..., None],
            np.nan,
        ).astype(np.float32)
        coverage = xp.where(n_pix > 0, n_valid / xp.maximum(n_pix, 1), np.nan).astype(np.float32)

    res = _pixel_area(classes, xdim, ydim)
    area = (n_pix * res).astype(np.float64)

    glacier = np.array(ids, dtype=object)
    coords: dict[str, Any] = {
        "glacier": ("glacier", glacier, {"long_name": "glacier id"}),
        "class": ("class", np.array([c.name for c in kept], dtype=object),
                  {"long_name": "surface facies class"}),
        "class_id": ("class", np.array([c.id for c in kept], dtype=np.int8),
                     {"long_name": "class id in the xfacies catalogue"}),
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
                {"long_name": "observed fraction of the rasterised glacier", "units": "1"},
            ),
            "area": (
                ("glacier",),
                area,
                {"long_name": "rasterised glacier area", "units": "m2"},
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


def _pixel_area(classes: xr.DataArray, xdim: str, ydim: str) -> float:
    from xfacies.outlines import grid_transform

    try:
        t = grid_transform(classes)
    except Exception as err:
        raise ValueError(
            f"cannot work out the pixel size of the class map ({err}); it needs x/y "
            "coordinates in metres"
        ) from None
    return abs(t.a * t.e - t.b * t.d)



# --------------------------------------------------------------------------- glaciology
_BY_NAME = {c.name: c for c in CLASSES}
#: Name of the refrozen / superimposed-ice-like class (optionally accumulation).
REFROZEN: str = _BY_NAME["refrozen-like"].name
#: Class ids that are never observed surface for the snowline: shadow and cloud
#: (plus NODATA).
_UNOBSERVED_IDS: tuple[int, ...] = (_BY_NAME["shadow"].id, CLOUD)


def _accumulation_names(accumulation: Sequence[str] | str, include_refrozen: bool) -> tuple[str, ...]:
    names = (accumulation,) if isinstance(accumulation, str) else tuple(accumulation)
    if include_refrozen and REFROZEN not in names:
        names = names + (REFROZEN,)
    if not names:
        raise ValueError("accumulation is empty; give catalogue class names such as ('snow', 'firn')")
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
        raise ValueError(
            f"expected fractions with a 'class' dimension (from xfacies.products.fractions); "
            f"got dims {da.dims}"
        )
    accumulation = _accumulation_names(accumulation, include_refrozen)
    available = [str(c) for c in da["class"].values]
    missing = [a for a in accumulation if a not in available]
    if missing:
        raise ValueError(
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


def _class_ids(names: Sequence[str]) -> list[int]:
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown:
        raise ValueError(f"unknown class name(s) {unknown}; catalogue classes are {list(_BY_NAME)}")
    bad = [n for n in names if _BY_NAME[n].id in _UNOBSERVED_IDS]
    if bad:
        raise ValueError(
            f"{bad} cannot be accumulation or ablation classes: shadow and cloud are not "
            "observed surface"
        )
    return [_BY_NAME[n].id for n in names]


def _boundary_stat(cls: np.ndarray, z: np.ndarray, inside: np.ndarray, acc: np.ndarray,
                   abl: np.ndarray, min_edges: int) -> tuple[np.ndarray, np.ndarray]:
    """Median elevation of accumulation/ablation 4-neighbour edges, per date.

    ``cls`` (t, h, w); ``z`` and ``inside`` (h, w); ``acc``/``abl`` class-id arrays.
    An edge's elevation is the mean of its two pixel elevations.
    """
    a = np.isin(cls, acc) & inside
    b = np.isin(cls, abl) & inside
    zf = np.where(np.isfinite(z), z, np.nan)
    out = np.full(cls.shape[0], np.nan)
    count = np.zeros(cls.shape[0], dtype=np.int64)
    zv = 0.5 * (zf[:-1, :] + zf[1:, :])  # edges between rows i and i+1
    zh = 0.5 * (zf[:, :-1] + zf[:, 1:])  # edges between columns j and j+1
    for t in range(cls.shape[0]):
        ev = (a[t, :-1, :] & b[t, 1:, :]) | (b[t, :-1, :] & a[t, 1:, :])
        eh = (a[t, :, :-1] & b[t, :, 1:]) | (b[t, :, :-1] & a[t, :, 1:])
        e = np.concatenate([zv[ev], zh[eh]])
        e = e[np.isfinite(e)]
        count[t] = e.size
        if e.size >= min_edges:
            out[t] = float(np.median(e))
    return out, count


def _bands_stat(cls: np.ndarray, z: np.ndarray, inside: np.ndarray, acc: np.ndarray,
                abl: np.ndarray, band_width: float, min_edges: int) -> tuple[np.ndarray, np.ndarray]:
    """Band-edge altitude that best separates ablation (below) from accumulation (above)."""
    out = np.full(cls.shape[0], np.nan)
    count = np.zeros(cls.shape[0], dtype=np.int64)
    ok = inside & np.isfinite(z)
    if not ok.any():
        return out, count
    lo = np.floor(np.nanmin(z[ok]) / band_width) * band_width
    hi = np.ceil(np.nanmax(z[ok]) / band_width) * band_width + band_width
    edges = np.arange(lo, hi + band_width / 2, band_width)
    zz = z[ok]
    for t in range(cls.shape[0]):
        c = cls[t][ok]
        za, zb = zz[np.isin(c, acc)], zz[np.isin(c, abl)]
        count[t] = za.size + zb.size
        if za.size == 0 or zb.size == 0 or count[t] < min_edges:
            continue
        ha, _ = np.histogram(za, edges)
        hb, _ = np.histogram(zb, edges)
        # misclassified pixels if the snowline were at edges[k]: accumulation
        # below it plus ablation above it
        acc_below = np.concatenate([[0], np.cumsum(ha)])
        abl_above = hb.sum() - np.concatenate([[0], np.cumsum(hb)])
        cost = acc_below + abl_above
        best = np.flatnonzero(cost == cost.min())
        out[t] = float(edges[best].mean())
    return out, count


def _windows(index: xr.DataArray) -> list[tuple[slice, slice] | None]:
    from scipy import ndimage

    arr = np.asarray(index.values)
    n = len(index.attrs["glacier_ids"])
    objs = ndimage.find_objects(arr, max_label=n) if arr.size else [None] * n
    return list(objs) + [None] * (n - len(objs))


def snowline_altitude(
    classes: xr.DataArray,
    dem: xr.DataArray,
    outlines: Any,
    *,
    accumulation: Sequence[str] = ("snow", "firn"),
    include_refrozen: bool = False,
    ablation: Sequence[str] | None = None,
    method: Literal["boundary", "bands"] = "boundary",
    band_width: float = 20.0,
    min_pixels: int = 10,
    all_touched: bool = False,
) -> xr.DataArray:
    """Altitude of the boundary between accumulation facies and ice, per glacier and date.

    Pixels are sorted into three groups: *accumulation* (the ``accumulation``
    classes, by default snow and firn, plus ``refrozen-like`` if
    ``include_refrozen``), *ablation* (by default ice, and refrozen-like
    unless it is accumulation) and *ignored* (everything else: shadow, cloud,
    nodata, and by default debris and water -- debris cover and melt ponds do
    not locate the snowline: a debris-covered tongue next to snow would put
    the "snowline" at the upper edge of the debris).  Two methods:

    ``"boundary"`` (default)
        Every 4-neighbour pair of pixels inside the same glacier with one
        accumulation and one ablation pixel is a boundary edge, located at the
        mean elevation of its two pixels; the snowline altitude is the
        **median** edge elevation.  The median makes it robust to isolated
        snow patches and bare-ice windows; edges next to clouds and shadows do
        not count.  This is the transient snowline (TSL) when ``accumulation``
        is snow, and the snow/firn-to-ice line otherwise.
    ``"bands"``
        Elevation bands of ``band_width`` metres; the snowline is the band edge
        ``h`` that minimises (accumulation pixels below ``h``) + (ablation
        pixels above ``h``), i.e. the best step-function split of the
        hypsometry (ties: their mean).  Less sensitive to patchy boundaries,
        resolution limited to ``band_width``.

    NaN where fewer than ``min_pixels`` boundary edges (``"boundary"``) or
    observed pixels (``"bands"``) exist, or where the glacier is all
    accumulation or all ablation (snowline below or above the glacier).

    Parameters
    ----------
    classes
        Class map ``(time, y, x)`` or ``(y, x)`` with a rioxarray CRS (numpy or
        dask); NODATA and catalogue ids.
    dem
        Elevation (m) ``(y, x)`` on the same grid.
    outlines
        Glacier outlines (GeoDataFrame or path) or a glacier index from
        :func:`xfacies.outlines.rasterize` on the same grid.
    accumulation, include_refrozen
        Accumulation classes, as in :func:`aar_proxy`.
    ablation
        Ablation classes (catalogue names); default ``("ice",)`` plus
        ``refrozen-like`` when it is not accumulation.  Pass e.g.
        ``("ice", "refrozen-like", "debris", "water")`` to count debris and
        ponds too.
    method
        ``"boundary"`` or ``"bands"``.
    band_width
        Band height (m) of the ``"bands"`` method.
    min_pixels
        Minimum number of boundary edges / observed pixels for a value.
    all_touched
        Passed to :func:`~xfacies.outlines.rasterize` when outlines are given.

    Returns
    -------
    xarray.DataArray
        float64 ``snowline_altitude(time, glacier)`` in metres (no ``time``
        for a 2-D map), with coordinate ``n_pixels(time, glacier)``: the
        number of boundary edges (``"boundary"``) or observed pixels
        (``"bands"``) behind each value.

    Notes
    -----
    The glacier index is computed eagerly (one int32 raster), then each
    glacier's bounding box is cut from the class map and the DEM and computed
    for all dates at once, so memory is bounded by the largest glacier box
    times the number of dates, not by the scene.  Loop over time slices for
    very long series of very large glaciers.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> from shapely.geometry import box
    >>> cls = np.zeros((6, 4), "int8"); cls[:3] = 1          # snow in the upper three rows
    >>> dem = np.repeat(np.arange(3050.0, 2990.0, -10.0)[:, None], 4, axis=1)
    >>> c = {"y": 55.0 - 10 * np.arange(6), "x": 5.0 + 10 * np.arange(4)}
    >>> classes = xr.DataArray(cls, dims=("y", "x"), coords=c).rio.write_crs("EPSG:32632")
    >>> gdf = gpd.GeoDataFrame({"rgi_id": ["A"]}, geometry=[box(0, 0, 40, 60)], crs="EPSG:32632")
    >>> sla = snowline_altitude(classes, xr.DataArray(dem, dims=("y", "x"), coords=c), gdf,
    ...                         min_pixels=1)
    >>> float(sla.sel(glacier="A"))   # halfway between 3030 m (snow) and 3020 m (ice)
    3025.0
    """
    if method not in ("boundary", "bands"):
        raise ValueError(f"method must be 'boundary' or 'bands', got {method!r}")
    if band_width <= 0:
        raise ValueError(f"band_width must be positive, got {band_width}")
    if not isinstance(classes, xr.DataArray) or not isinstance(dem, xr.DataArray):
        raise TypeError("classes and dem must be xarray.DataArrays")
    names = _accumulation_names(accumulation, include_refrozen)
    acc = np.array(_class_ids(names))
    if ablation is None:
        ablation = ("ice",) + (() if REFROZEN in names else (REFROZEN,))
    ablation = (ablation,) if isinstance(ablation, str) else tuple(ablation)
    abl = np.array(_class_ids(ablation))
    both = sorted(set(names) & set(ablation))
    if both:
        raise ValueError(f"classes {both} are both accumulation and ablation; choose one")

    classes, squeeze_time = _with_time(classes)
    tdim, ydim, xdim = classes.dims
    if dem.ndim != 2 or set(dem.dims) != {ydim, xdim}:
        raise ValueError(
            f"dem must be 2-D on the class map's spatial dims ({ydim}, {xdim}); got dims {dem.dims}"
        )
    dem = dem.transpose(ydim, xdim)
    for d in (ydim, xdim):
        if dem.sizes[d] != classes.sizes[d] or (
            d in dem.coords and d in classes.coords
            and not np.allclose(dem[d].values, classes[d].values)
        ):
            raise ValueError(
                f"the DEM and the class map are on different grids (dim {d!r}); resample the DEM "
                "onto the class map first, e.g. dem.rio.reproject_match(classes)"
            )

    index = _glacier_index(classes, outlines, all_touched)
    ids = [str(i) for i in index.attrs["glacier_ids"]]
    idx_np = np.asarray(index.values)
    nt = classes.sizes[tdim]
    values = np.full((nt, len(ids)), np.nan)
    counts = np.zeros((nt, len(ids)), dtype=np.int64)
    for k, win in enumerate(_windows(index)):
        if win is None:
            continue
        ys, xs = win
        cw = np.asarray(classes.isel({ydim: ys, xdim: xs}).values)
        if np.issubdtype(cw.dtype, np.floating):
            cw = np.where(np.isnan(cw), NODATA, cw)
        cw = cw.astype(np.int16)
        zw = np.asarray(dem.isel({ydim: ys, xdim: xs}).values, dtype=np.float64)
        inside = idx_np[ys, xs] == k + 1
        if method == "boundary":
            values[:, k], counts[:, k] = _boundary_stat(cw, zw, inside, acc, abl, min_pixels)
        else:
            values[:, k], counts[:, k] = _bands_stat(cw, zw, inside, acc, abl, band_width, min_pixels)

    coords: dict[str, Any] = {"glacier": ("glacier", np.array(ids, dtype=object),
                                          {"long_name": "glacier id"})}
    if not squeeze_time and tdim in classes.coords:
        coords[tdim] = classes[tdim].variable
    coords["n_pixels"] = ((tdim, "glacier"), counts, {
        "long_name": "boundary edges" if method == "boundary" else "observed pixels",
        "units": "1"})
    out = xr.DataArray(
        values, dims=(tdim, "glacier"), coords=coords, name="snowline_altitude",
        attrs={
            "long_name": "altitude of the boundary between " + " + ".join(names)
            + " and ablation facies",
            "units": "m",
            "method": method,
            "accumulation": ", ".join(names),
            "ablation": ", ".join(ablation),
        },
    )
    if squeeze_time:
        out = out.isel({tdim: 0}, drop=True)
    return out


def _parse_md(s: str) -> int:
    try:
        m, d = (int(p) for p in str(s).split("-"))
        pd.Timestamp(year=2000, month=m, day=d)  # validates (leap year allows 02-29)
    except Exception:
        raise ValueError(f"window bounds must be 'MM-DD' strings, got {s!r}") from None
    return m * 100 + d


def end_of_season(
    values: xr.DataArray,
    coverage: xr.DataArray | None = None,
    *,
    min_coverage: float = 0.7,
    window: tuple[str, str] = ("08-01", "10-15"),
    periods: pd.DataFrame | None = None,
    hydrological_year_start_month: int = 10,
    stat: Literal["min", "max", "last"] = "min",
) -> xr.DataArray:
    """One end-of-season value per glacier and hydrological year.

    Among the dates of each glacier-year that are *eligible* -- inside the
    window, value not NaN, and ``coverage >= min_coverage`` -- take the
    minimum (``stat="min"``, e.g. the AAR proxy: the end-of-summer AAR is the
    season's lowest), the maximum (``"max"``, e.g. the snowline altitude) or
    the latest date (``"last"``).

    Years are **hydrological years labelled by the calendar year in which
    they end** (the WGMS balance-year convention): with
    ``hydrological_year_start_month=10`` the year 2021 runs from 1 Oct 2020 to
    30 Sep 2021.  A window is the same ``MM-DD`` span every year; it is
    labelled with the hydrological year in which it *starts*, so the default
    ``("08-01", "10-15")`` of 2021 is year 2021 even though it runs into the
    first two weeks of hydrological year 2022 (late-season scenes after the
    balance-year end are common).  Windows may wrap over New Year
    (``("12-01", "03-31")``).

    Parameters
    ----------
    values
        ``(time, glacier)`` product, e.g. :func:`aar_proxy` or
        :func:`snowline_altitude`.
    coverage
        ``(time, glacier)`` observed share of the glacier (``fractions(...)
        ["coverage"]``); ``None`` skips the coverage test.
    min_coverage
        Minimum coverage of an eligible date (0-1).
    window
        ``(start, end)`` as ``"MM-DD"``, inclusive.  Ignored when ``periods``
        is given.
    periods
        Per glacier-year survey periods instead of a fixed window: a DataFrame
        with columns ``glacier``, ``year``, ``begin``, ``end`` (dates,
        inclusive), e.g. :func:`xfacies.wgms.periods_for`.  Glacier-years absent
        from it get NaN.
    hydrological_year_start_month
        First month of the hydrological year (10 for the northern hemisphere,
        4 for the southern; 1 for calendar years).
    stat
        ``"min"``, ``"max"`` or ``"last"``.

    Returns
    -------
    xarray.DataArray
        ``(year, glacier)`` float64, NaN where no date was eligible, with
        coordinates ``time(year, glacier)`` (the date picked, NaT if none) and
        ``n_dates(year, glacier)`` (eligible dates).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.to_datetime(["2021-07-15", "2021-08-20", "2021-09-10", "2021-09-25"])
    >>> aar = xr.DataArray([[0.8], [0.55], [0.4], [0.3]], dims=("time", "glacier"),
    ...                    coords={"time": t, "glacier": ["A"]})
    >>> cov = xr.DataArray([[1.0], [1.0], [0.95], [0.5]], dims=("time", "glacier"),
    ...                    coords={"time": t, "glacier": ["A"]})
    >>> eos = end_of_season(aar, cov)   # 09-25 is too cloudy, 07-15 outside the window
    >>> float(eos.sel(year=2021, glacier="A")), str(eos.time.sel(year=2021, glacier="A").values)[:10]
    (0.4, '2021-09-10')
    """
    if stat not in ("min", "max", "last"):
        raise ValueError(f"stat must be 'min', 'max' or 'last', got {stat!r}")
    if not 1 <= int(hydrological_year_start_month) <= 12:
        raise ValueError(f"hydrological_year_start_month must be 1-12, got {hydrological_year_start_month}")
    if not isinstance(values, xr.DataArray) or set(values.dims) != {"time", "glacier"}:
        raise ValueError(
            "values must be a (time, glacier) DataArray, e.g. aar_proxy(fractions(...)); got "
            f"{getattr(values, 'dims', type(values).__name__)}"
        )
    values = values.transpose("time", "glacier")
    df = values.drop_vars([c for c in values.coords if c not in ("time", "glacier")]).to_series()
    df = df.rename("value").reset_index()
    df["glacier"] = df["glacier"].astype(str)
    if coverage is not None:
        if not isinstance(coverage, xr.DataArray) or set(coverage.dims) != {"time", "glacier"}:
            raise ValueError("coverage must be a (time, glacier) DataArray like fractions(...)['coverage']")
        cov = coverage.transpose("time", "glacier")
        cov = cov.drop_vars([c for c in cov.coords if c not in ("time", "glacier")])
        cov = cov.reindex_like(values)
        df["coverage"] = cov.values.ravel()
        ok = df["coverage"].to_numpy() >= min_coverage
    else:
        ok = np.ones(len(df), bool)
    ok &= df["value"].notna().to_numpy()
    t = pd.DatetimeIndex(df["time"])
    start_month = int(hydrological_year_start_month)

    def hydro_year(year: np.ndarray, month: np.ndarray) -> np.ndarray:
        if start_month == 1:
            return year
        return np.where(month >= start_month, year + 1, year)

    if periods is None:
        s, e = _parse_md(window[0]), _parse_md(window[1])
        md = (t.month * 100 + t.day).to_numpy()
        yr = t.year.to_numpy()
        if s <= e:
            inside = (md >= s) & (md <= e)
            wyear = yr
        else:
            inside = (md >= s) | (md <= e)
            wyear = np.where(md >= s, yr, yr - 1)
        label = hydro_year(wyear, np.full_like(wyear, s // 100))
        df["year"] = label
        cand = df[ok & inside]
    else:
        need = {"glacier", "year", "begin", "end"}
        if not isinstance(periods, pd.DataFrame) or not need <= set(periods.columns):
            raise ValueError(
                f"periods must be a DataFrame with columns {sorted(need)} (see "
                "xfacies.wgms.periods_for)"
            )
        p = periods[list(need)].copy()
        p["glacier"] = p["glacier"].astype(str)
        unknown = sorted(set(p["glacier"]) - set(df["glacier"]))
        if unknown and not (set(p["glacier"]) & set(df["glacier"])):
            raise ValueError(
                f"none of the glaciers in periods {unknown[:10]} is in values "
                f"{sorted(set(df['glacier']))[:10]}; use the same glacier ids"
            )
        p = p.dropna(subset=["begin", "end"])
        p["begin"] = pd.to_datetime(p["begin"]).dt.normalize()
        p["end"] = pd.to_datetime(p["end"]).dt.normalize() + pd.Timedelta(days=1)
        m = df[ok].reset_index().merge(p, on="glacier", how="inner")
        m = m[(m["time"] >= m["begin"]) & (m["time"] < m["end"])]
        cand = m.drop(columns=["begin", "end"]).set_index("index")
        cand.index.name = None

    glaciers = [str(g) for g in values["glacier"].values]
    if len(cand):
        g = cand.groupby(["year", "glacier"])
        if stat == "min":
            pick = cand.loc[g["value"].idxmin()]
        elif stat == "max":
            pick = cand.loc[g["value"].idxmax()]
        else:
            pick = cand.loc[g["time"].idxmax()]
        pick = pick.set_index(["year", "glacier"])
        n = g.size()
        years = np.arange(int(pick.index.get_level_values(0).min()),
                          int(pick.index.get_level_values(0).max()) + 1)
    else:
        pick = pd.DataFrame(columns=["value", "time"],
                            index=pd.MultiIndex.from_tuples([], names=["year", "glacier"]))
        n = pd.Series(dtype=int)
        years = np.zeros(0, dtype=int)
    full = pd.MultiIndex.from_product([years, glaciers], names=["year", "glacier"])
    val = pick["value"].reindex(full).to_numpy(dtype=float).reshape(len(years), len(glaciers))
    tim = pd.to_datetime(pick["time"].reindex(full)).to_numpy(dtype="datetime64[ns]")
    tim = tim.reshape(len(years), len(glaciers))
    cnt = n.reindex(full).fillna(0).to_numpy(dtype=np.int64).reshape(len(years), len(glaciers))
    attrs = dict(values.attrs)
    attrs["end_of_season"] = (
        f"stat={stat} over dates with coverage >= {min_coverage if coverage is not None else 'n/a'}"
        + (f" in window {window[0]}..{window[1]}" if periods is None else " in the given periods")
        + f"; hydrological years starting in month {start_month}, labelled by the year they end"
    )
    return xr.DataArray(
        val,
        dims=("year", "glacier"),
        coords={
            "year": ("year", years, {"long_name": "hydrological year (year in which it ends)"}),
            "glacier": ("glacier", np.array(glaciers, dtype=object)),
            "time": (("year", "glacier"), tim, {"long_name": "date picked"}),
            "n_dates": (("year", "glacier"), cnt, {"long_name": "eligible dates"}),
        },
        name=values.name,
        attrs=attrs,
    )

"""Snowline altitude: the elevation of the boundary between accumulation facies and ice.

:func:`snowline_altitude` gives, per glacier and date, the median elevation of
the 4-neighbour edges between accumulation and ablation facies (or of the
elevation band where they balance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from xfacies.errors import InputError
from xfacies import spatial
from xfacies.catalog import map_classes
from xfacies.products.fractions import (
    REFROZEN, accumulation_names, class_codes, glacier_index_like, with_time,
)

__all__ = ["snowline_altitude"]

#: Most elevation bands of the ``"bands"`` method (a guard against a band width in the wrong units).
_MAX_BANDS = 1_000_000


def _class_ids(names: Sequence[str], classes: xr.DataArray | None = None) -> list[int]:
    """Ids of ``names`` in the class map's own classes (its flags; the catalogue without them)."""
    by_name = {name: i for i, name, _ in map_classes(classes)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InputError(f"unknown class name(s) {unknown}; the class map's classes are {list(by_name)}")
    bad = [n for n in names if n in ("shadow", "cloud")]
    if bad:
        raise InputError(
            f"{bad} cannot be accumulation or ablation classes: shadow and cloud are not "
            "observed surface"
        )
    return [by_name[n] for n in names]


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
    # candidate edges: from the highest edge at or below the glacier's lowest pixel to the first edge
    # strictly above its highest pixel, whatever the alignment of the extremes with the edges
    lo = np.floor(np.nanmin(z[ok]) / band_width) * band_width
    hi = (np.floor(np.nanmax(z[ok]) / band_width) + 1) * band_width
    if (hi - lo) / band_width > _MAX_BANDS:
        raise InputError(
            f"band_width={band_width:g} m cuts the glacier's {np.nanmax(z[ok]) - np.nanmin(z[ok]):g} m of "
            f"elevation into more than {_MAX_BANDS:,} bands; use bands of metres (the default is 20) "
            "or check that the DEM is in metres"
        )
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
        pixels at or above ``h``), i.e. the best step-function split of the
        hypsometry.  The candidate edges are multiples of ``band_width`` from the
        highest one at or below the glacier's lowest pixel to the first one above
        its highest pixel; ties: their mean.  Less sensitive to patchy
        boundaries, resolution limited to ``band_width``.

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
        raise InputError(f"method must be 'boundary' or 'bands', got {method!r}")
    if not (np.isfinite(band_width) and band_width > 0):
        raise InputError(f"band_width must be a positive number of metres, got {band_width}")
    if not isinstance(classes, xr.DataArray) or not isinstance(dem, xr.DataArray):
        raise TypeError("classes and dem must be xarray.DataArrays")
    names = accumulation_names(accumulation, include_refrozen)
    acc = np.array(_class_ids(names, classes))
    if ablation is None:
        ablation = ("ice",) + (() if REFROZEN in names else (REFROZEN,))
    ablation = (ablation,) if isinstance(ablation, str) else tuple(ablation)
    abl = np.array(_class_ids(ablation, classes))
    both = sorted(set(names) & set(ablation))
    if both:
        raise InputError(f"classes {both} are both accumulation and ablation; choose one")

    classes, squeeze_time = with_time(classes)
    tdim, ydim, xdim = classes.dims
    if dem.ndim != 2 or set(dem.dims) != {ydim, xdim}:
        raise InputError(
            f"dem must be 2-D on the class map's spatial dims ({ydim}, {xdim}); got dims {dem.dims}"
        )
    dem = dem.transpose(ydim, xdim)
    spatial.check_same_grid(dem, classes, "the DEM", like_name="the class map")

    index = glacier_index_like(classes, outlines, all_touched)
    ids = [str(i) for i in index.attrs["glacier_ids"]]
    idx_np = np.asarray(index.values)
    nt = classes.sizes[tdim]
    values = np.full((nt, len(ids)), np.nan)
    counts = np.zeros((nt, len(ids)), dtype=np.int64)
    for k, win in enumerate(_windows(index)):
        if win is None:
            continue
        ys, xs = win
        cw = class_codes(np.asarray(classes.isel({ydim: ys, xdim: xs}).values))
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



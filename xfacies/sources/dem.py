"""DEMs on the working grid: Copernicus DEM tiles from STAC, or any DEM raster, reprojected lazily.

Examples
--------
>>> dem = open_dem(cube)                                       # doctest: +SKIP
>>> dem = open_dem(cube, "my_lidar_dem.tif")                   # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from xfacies.errors import InputWarning
from xfacies.outlines import DEFAULT_BUFFER, geobox_around

from xfacies.sources.sensors import PROVIDERS, CollectionSpec
from xfacies.sources.stac import (
    DEFAULT_CHUNKS, SigningDriver, area_of, lonlat_bbox, resolve_catalog, search_items,
)

__all__ = ["open_dem", "reproject_dem", "crop_to", "WARP_WINDOW"]


def open_dem(
    like: Any,
    source: str | os.PathLike = "cop-dem-glo-30",
    *,
    catalog: str = "earth-search",
    provider: str | None = None,
    collections: Mapping[str, CollectionSpec] | None = None,
    resampling: str = "bilinear",
    chunks: Mapping[str, int] | None = None,
    signer: Callable[[str], str] | None = None,
    resolution: float = 10.0,
    crs: Any = "utm",
    buffer: float = DEFAULT_BUFFER,
) -> xr.DataArray:
    """Elevation on a working grid: Copernicus DEM from STAC, or a DEM file.

    Parameters
    ----------
    like
        The grid: a cube or any xarray object with a CRS and grid (e.g. :func:`xfacies.grid`),
        an odc-geo ``GeoBox``, or glacier outlines (then the grid is
        ``xfacies.grid(outlines, resolution, crs, buffer=buffer)``).
    source
        A DEM collection of the catalogue's table (``"cop-dem-glo-30"``,
        ``"cop-dem-glo-90"``), or the path/URL of a DEM raster (any CRS),
        which is reprojected lazily.
    catalog, provider, collections, signer
        As in :func:`open_stac`.
    resampling
        Resampling onto the grid (``"bilinear"``).
    chunks
        Dask chunks (``y``, ``x``) of the result, default those of :data:`DEFAULT_CHUNKS`.
    resolution, crs, buffer
        The grid built around outlines given as ``like`` (see :func:`xfacies.grid`).

    Warns
    -----
    UserWarning
        A DEM more than 4 times coarser than the grid (e.g. 90 m SRTM on a 10 m grid): slope,
        hillshade and shadows then show the DEM's pixels.

    Returns
    -------
    xarray.DataArray
        ``elevation`` (y, x) float32 metres, dask-backed, NaN where no tile
        covers the grid; CRS written.

    Examples
    --------
    >>> dem = open_dem(cube)                                       # doctest: +SKIP
    >>> dem = open_dem(cube, "my_lidar_dem.tif")                   # doctest: +SKIP
    """
    import odc.geo.xr  # noqa: F401

    geom, gbox = area_of(like)
    if gbox is None:  # outlines or a geometry: the working grid around them
        gbox = geobox_around(geom, resolution=resolution, crs=crs, buffer=buffer)
    ch = {k: v for k, v in {**DEFAULT_CHUNKS, **(chunks or {})}.items() if k in ("y", "x")}
    src = str(source)
    is_table = src in {k for p in PROVIDERS.values() for k, v in p.collections.items() if v.sensor == "dem"} \
        or (collections is not None and src in collections)
    if not is_table:
        if "://" not in src and not Path(src).exists():
            raise FileNotFoundError(
                f"DEM source {src!r} is neither a DEM collection (cop-dem-glo-30, cop-dem-glo-90) nor an "
                "existing file")

        dem = rioxarray.open_rasterio(src, chunks=ch, masked=True).squeeze("band", drop=True)
        warn_if_coarse(dem.odc.geobox, gbox, src)
        out = reproject_dem(dem, gbox, resampling=resampling).rename("elevation")
    else:
        cols = {src: collections[src]} if collections and src in collections else [src]
        cat = resolve_catalog(catalog, provider, ("dem",), cols, signer, kinds=("dem",))
        items = search_items(cat, lonlat_bbox(None, gbox), None, None)
        spec = cat.specs[src]
        import odc.stac

        ds = odc.stac.load(items, bands=list(spec.assets()), geobox=gbox, chunks={"time": 1, **ch},
                           groupby=lambda *a: 0, stac_cfg=spec.stac_cfg(),
                           resampling=spec.resampling_cfg(resampling), driver=SigningDriver(cat.signer),
                           dtype="float32", fail_on_error=True)
        out = ds[spec.bands["elevation"]].isel(time=0, drop=True).rename("elevation")
    out = out.chunk({"y": ch["y"], "x": ch["x"]})
    out.attrs = {"units": "m", "long_name": "surface elevation", "source": src}
    return out.rio.write_crs(str(gbox.crs))


#: Largest destination window (pixels) of one GDAL warp when a DEM is reprojected.  GDAL
#: approximates the coordinate transform linearly along each row of a window (error up to
#: 1/8 of a source pixel, ~11 m for SRTM): whole-scene warps gave stripes of metres of
#: elevation error; 256-px windows keep it to centimetres.
WARP_WINDOW = 256


def crop_to(dem: xr.DataArray, gbox: Any, margin: int = 4) -> xr.DataArray:
    """The part of ``dem`` under the GeoBox ``gbox`` plus ``margin`` DEM pixels (index selection)."""
    bb = gbox.extent.to_crs(dem.rio.crs).boundingbox
    sel = {}
    for d, lo, hi in (("x", bb.left, bb.right), ("y", bb.bottom, bb.top)):
        v = np.asarray(dem[d].values, dtype=float)
        inside = np.flatnonzero((v >= lo) & (v <= hi))
        if inside.size == 0:  # the grid falls between DEM pixel centres: keep the nearest ones
            inside = np.array([int(np.argmin(np.abs(v - (lo + hi) / 2)))])
        sel[d] = slice(max(int(inside.min()) - margin, 0), min(int(inside.max()) + margin + 1, v.size))
    return dem.isel(sel)


def reproject_dem(dem: xr.DataArray, gbox: Any, *, resampling: str = "bilinear") -> xr.DataArray:
    """``dem`` (float, NaN nodata, with a CRS) reprojected onto ``gbox``, lazily.

    Only the DEM under the grid (plus a margin for the kernel) is used, as ONE source chunk:
    odc-geo's dask reprojection gives each destination window the source chunks under it
    without the margin bilinear needs (wrong values along source-chunk seams).  The destination
    is warped in windows of at most :data:`WARP_WINDOW` pixels.
    """
    import odc.geo.xr

    crs = dem.rio.crs
    src = crop_to(dem, gbox).astype(np.float32).chunk({"y": -1, "x": -1})
    src = src.rio.write_nodata(np.nan, encoded=False).rio.write_crs(crs)
    win = (min(WARP_WINDOW, gbox.shape.y), min(WARP_WINDOW, gbox.shape.x))
    return odc.geo.xr.xr_reproject(src, gbox, resampling=resampling, dst_nodata=np.nan, chunks=win)


def _metres(gbox: Any) -> float:
    """Pixel size of a GeoBox in metres (degrees converted at the box's centre latitude)."""
    rx, ry = abs(float(gbox.resolution.x)), abs(float(gbox.resolution.y))
    if not gbox.crs.geographic:
        return max(rx, ry)
    lat = float(gbox.extent.centroid.to_crs("EPSG:4326").points[0][1])
    return max(rx * 111_320.0 * np.cos(np.radians(lat)), ry * 111_320.0)


def warn_if_coarse(src: Any, dst: Any, what: str, factor: float = 4.0) -> None:
    if src is None:
        return
    s, d = _metres(src), _metres(dst)
    if s > factor * d:
        warnings.warn(
            f"the DEM {what} has pixels of about {s:.0f} m, {s / d:.0f} times coarser than the {d:g} m grid: "
            "elevation is interpolated, so slope, hillshade and cast shadows show the DEM's pixels. "
            "Use a finer DEM where you have one (e.g. source='cop-dem-glo-30', or a national lidar DEM).",
            InputWarning, stacklevel=3)

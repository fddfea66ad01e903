"""DEMs on the working grid: Copernicus DEM tiles from STAC, or any DEM raster, reprojected lazily.

Examples
--------
>>> dem = open_dem(cube)                                       # doctest: +SKIP
>>> dem = open_dem(cube, "my_lidar_dem.tif")                   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import rioxarray  # noqa: F401  (registers .rio)

from xfacies.sources.sensors import PROVIDERS, CollectionSpec
from xfacies.sources.stac import (
    DEFAULT_CHUNKS, SigningDriver, _area, _lonlat_bbox, _resolve_catalog, _search,
)

__all__ = ["open_dem"]


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
) -> xr.DataArray:
    """Elevation on the grid of a cube: Copernicus DEM from STAC, or a DEM file.

    Parameters
    ----------
    like
        The cube (any xarray object with a CRS and grid) or an odc-geo ``GeoBox``.
    source
        A DEM collection of the catalogue's table (``"cop-dem-glo-30"``,
        ``"cop-dem-glo-90"``), or the path/URL of a DEM raster (any CRS),
        which is reprojected lazily.
    catalog, provider, collections, signer
        As in :func:`open_stac`.
    resampling
        Resampling onto the grid (``"bilinear"``).
    chunks
        Dask chunks (``y``, ``x``), default those of :data:`DEFAULT_CHUNKS`.

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

    _, gbox = _area(like)
    ch = {k: v for k, v in {**DEFAULT_CHUNKS, **(chunks or {})}.items() if k in ("y", "x")}
    src = str(source)
    is_table = src in {k for p in PROVIDERS.values() for k, v in p.collections.items() if v.sensor == "dem"} \
        or (collections is not None and src in collections)
    if not is_table:
        if "://" not in src and not Path(src).exists():
            raise FileNotFoundError(
                f"DEM source {src!r} is neither a DEM collection (cop-dem-glo-30, cop-dem-glo-90) nor an "
                "existing file")
        import rioxarray

        dem = rioxarray.open_rasterio(src, chunks=ch, masked=True).squeeze("band", drop=True)
        out = odc.geo.xr.xr_reproject(dem.astype(np.float32), gbox, resampling=resampling, dst_nodata=np.nan)
        out = out.rename("elevation")
    else:
        cols = {src: collections[src]} if collections and src in collections else [src]
        cat = _resolve_catalog(catalog, provider, ("dem",), cols, signer, kinds=("dem",))
        items = _search(cat, _lonlat_bbox(None, gbox), None, None)
        spec = cat.specs[src]
        import odc.stac

        ds = odc.stac.load(items, bands=list(spec.assets()), geobox=gbox, chunks={"time": 1, **ch},
                           groupby=lambda *a: 0, stac_cfg=spec.stac_cfg(),
                           resampling=spec.resampling_cfg(resampling), driver=SigningDriver(cat.signer),
                           dtype="float32", fail_on_error=True)
        out = ds[spec.bands["elevation"]].isel(time=0, drop=True).rename("elevation")
    out.attrs = {"units": "m", "long_name": "surface elevation", "source": src}
    return out.rio.write_crs(str(gbox.crs))

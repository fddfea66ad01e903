"""The DEM on the cube's grid: a raster file or a DataArray on any grid, voids masked, cropped
and reprojected with odc-geo (bilinear) in small warp windows, as :func:`xfacies.open_dem` does."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from xfacies import spatial
from xfacies.errors import GridError, InputError, XfaciesWarning

__all__ = ["DEM_VOID_VALUES", "DemVoidWarning"]

#: Void values of common DEMs (SRTM, ASTER, many GIS exports), masked as nodata when the DEM
#: declares no nodata value of its own (with a :class:`DemVoidWarning`).
DEM_VOID_VALUES: tuple[float, ...] = (-32768.0, -9999.0, float(np.finfo(np.float32).min))


class DemVoidWarning(XfaciesWarning):
    """The DEM declares no nodata value but holds common void values, which are masked."""


def _bounds_str(b: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in b) + ")"


def _open_dem_file(path: str | os.PathLike) -> xr.DataArray:
    """A DEM raster as a (y, x) DataArray with its declared nodata masked (clear errors)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"DEM file {str(path)!r} does not exist")
    try:
        dem = rioxarray.open_rasterio(path, masked=True)
    except Exception as err:  # rasterio's RasterioIOError and friends: name the file
        raise InputError(f"cannot read the DEM file {str(path)!r} as a raster ({err}); check that it is a "
                         "complete GeoTIFF (or another GDAL raster)") from None
    if "band" in dem.dims:
        dem = dem.isel(band=0, drop=True)
    return dem


def _mask_voids(dem: xr.DataArray, what: str, voids: list | None) -> xr.DataArray:
    """float32 DEM with nodata as NaN: the declared nodata, else :data:`DEM_VOID_VALUES`.

    Appends ``(lazy count, what)`` of undeclared void values to ``voids`` (reported later,
    in the one pass over the DEM)."""
    src = dem.astype(np.float32)
    nod = dem.rio.nodata
    if nod is not None and not (isinstance(nod, (float, np.floating)) and np.isnan(nod)):
        return src.where(dem != nod)
    if nod is not None or dem.rio.encoded_nodata is not None:
        return src  # declared and already masked (NaN) when read
    if not np.issubdtype(dem.dtype, np.number) or np.issubdtype(dem.dtype, np.unsignedinteger):
        return src
    # block by block (dask's isin adds a reduction whose keys, recomputed for every batch of a run,
    # collide on a cluster with the same keys fused into the batch's graph)
    sentinel = xr.apply_ufunc(np.isin, dem, kwargs={"test_elements": np.asarray(DEM_VOID_VALUES)},
                              dask="parallelized", output_dtypes=[bool])
    if voids is not None:
        voids.append((sentinel.sum().data, what))
    return src.where(~sentinel)


def dem_on_grid(dem: Any, cube: xr.DataArray, crs: Any, res: float, ych: tuple, xch: tuple,
                 voids: list | None = None) -> Any:
    """The DEM as a float32 dask array on the cube grid with the cube's y/x chunks.

    Nodata (declared, or :data:`DEM_VOID_VALUES` when none is declared) is NaN, masked before
    any resampling.  A DEM on another grid is cropped to the cube (plus a margin) and
    reprojected now with odc-geo's ``xr_reproject`` (bilinear, NaN nodata), as
    :func:`xfacies.sources.dem.open_dem` does."""
    import dask.array as da

    what, name = "the DEM", "given as a DataArray"
    if isinstance(dem, (str, os.PathLike)):
        what, name = f"the DEM file {str(dem)!r}", str(dem)
        dem = _open_dem_file(dem)
    if not isinstance(dem, xr.DataArray):
        raise TypeError(f"dem must be a DataArray or a GeoTIFF path, got {type(dem).__name__}")
    dem = dem.squeeze(drop=True) if dem.ndim > 2 else dem
    if set(dem.dims) != {"y", "x"}:
        raise InputError(f"dem must have dims (y, x), got {dem.dims}")
    dem = dem.transpose("y", "x")
    dcrs = dem.rio.crs
    if not spatial.same_grid(dem, cube):
        if dcrs is None or crs is None:
            raise GridError(
                "the DEM is on another grid than the cube and "
                + ("the DEM" if dcrs is None else "the cube")
                + " has no CRS, so it cannot be reprojected; attach one with .rio.write_crs('EPSG:....')"
            )
        cb = spatial.bounds(cube)
        db = dem.rio.transform_bounds(crs) if dcrs != crs else spatial.bounds(dem)
        tol = 1e-6 * res
        if db[0] > cb[0] + tol or db[1] > cb[1] + tol or db[2] < cb[2] - tol or db[3] < cb[3] - tol:
            raise GridError(
                f"the DEM does not cover the cube: DEM bounds {_bounds_str(db)} vs cube bounds "
                f"{_bounds_str(cb)} (minx, miny, maxx, maxy in {crs.to_string()}); use a DEM that "
                "extends over the whole scene (or crop the cube to the DEM)"
            )
        import dask

        from xfacies.sources.dem import warn_if_coarse, reproject_dem

        gbox = spatial.geobox(cube)
        warn_if_coarse(dem.odc.geobox, gbox, name)
        masked = _mask_voids(dem, what, voids).rio.write_crs(dcrs)
        # computed now, in this thread: no concurrent rasterio warps
        with dask.config.set(scheduler="synchronous"):
            dem = reproject_dem(masked, gbox).compute()
        dem = dem.assign_coords(y=cube["y"].values, x=cube["x"].values)
    else:
        dem = _mask_voids(dem, what, voids)
    data = dem.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(ych, xch))
    return data.astype(np.float32).rechunk((ych, xch))

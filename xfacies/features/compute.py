"""Glacier context features: the reference's 11 input channels, lazily and exactly.

:func:`features` turns a reflectance cube, a DEM and glacier outlines into the
feature cube a facies model reads (:data:`xfacies.catalog.FEATURE_SETS`), with
the conventions of the reference pipeline and of :mod:`xfacies.synthetic`:

============  ===============================================================
feature       definition
============  ===============================================================
optical       the cube's own reflectance bands (float, 0..1)
elevation     ``(dem - lo) / (hi - lo)`` with ``lo``/``hi`` the DEM minimum and
              maximum over the pixels inside the outlines, all glaciers of the
              scene together (``per_glacier_elevation=True``: each glacier's
              own extremes; off-glacier pixels keep the joint ones).  Where
              ``hi - lo`` is below :data:`MIN_ELEVATION_RANGE` (1 m: a glacier
              of one pixel, a flat or void DEM) the elevation is **0.5**, with
              an :class:`ElevationRangeWarning` naming the glaciers
slope         degrees, Horn (1981) on the DEM (:func:`xfacies.features.terrain.slope_horn`)
shadow_mask   cast shadow by line of sight over the DEM towards the sun:
              **1 = sunlit, 0 = cast shadow** (the reference's convention; its
              first BatchNorm layer says the training mean is ~0.93)
hillshade     ``max(0, cos(incidence))`` for the acquisition's sun, 0..1
proximity     Euclidean distance (m) from the pixel centre to the nearest
              outline edge (exterior and interior rings; inside and outside
              the glaciers alike) divided by its maximum over the raster
============  ===============================================================

Everything is blockwise (:func:`xfacies.halo.map_halo` or per-block tasks) on
the cube's own y/x chunks, and every value is independent of the chunking:

* slope and hillshade: halo 1 pixel; at the scene border the DEM is padded with
  its nearest value (``boundary="nearest"``), which is exactly the edge rule of
  :func:`xfacies.features.terrain.slope_horn`, so chunked == unchunked bit for bit;
* cast shadow: halo ``ceil(L / res) + 2`` pixels with
  ``L = min(relief / tan(sun elevation), shadow_cap)`` and ``relief`` the DEM
  maximum minus minimum over the whole grid (no terrain can shade a point
  farther away than ``L``; the rays are stopped at ``L`` in every block, so
  the result never depends on the chunks).  Terrain beyond the scene is
  absent (never shades).  When the bound exceeds ``shadow_cap`` a
  :class:`ShadowCapWarning` says that shadows longer than the cap are cut;
* proximity: no halo at all.  Each block measures the exact distance from its
  pixel centres to the outline segments that can possibly be the nearest for
  them: tiles of 64 x 64 pixels take their candidates from a k-d tree of
  segment pieces, and are split down to 8 x 8 pixels, each keeping only the
  candidates that the triangle inequality cannot rule out
  (:mod:`xfacies.features.proximity`), so the distance is exact at any distance
  from the outlines, never truncated.  The raster maximum is exact too (branch
  and bound over the pixel lattice: distance is 1-Lipschitz), one small task
  that every block waits for and divides by at once, so no block has to be
  kept in memory for a global reduction;
* elevation: the min/max of the DEM inside the outlines (joint, and per glacier
  with ``per_glacier_elevation``) are computed at graph-construction time, in
  one pass over the DEM together with the relief that sizes the shadow halo
  and the count of DEM voids, so that a degenerate range or voids are reported
  (warnings naming the glaciers) when :func:`features` is called, not inside a
  worker.  The numbers are in ``attrs["elevation_min_max"]`` (joint).

Input checks (errors name the input and the fix): integer or implausible
reflectance (percent, digital numbers: :func:`xfacies.validation.check_reflectance`,
checked block by block for dask input, when computed), duplicated dates, sun
angles in radians or a sun at or below the horizon, DEM voids (the DEM's nodata,
or -32768 / -9999 / the float32 minimum (GDAL's fill) when it declares none: masked to NaN, so terrain features are
NaN there).  A DEM on another grid (a file, or a DataArray in another CRS or
resolution) is reprojected with odc-geo's ``xr_reproject`` (bilinear), the call
of :func:`xfacies.open_dem`, once, when :func:`features` is called.

Terrain (elevation, slope, proximity) is built once per grid and shared by all
acquisitions (one task per spatial block, whatever the number of dates); hillshade
and shadow once per acquisition.  :func:`static_features` returns those
date-independent bands alone, so that they can be stored (e.g. in Zarr, once per
grid) and handed back with ``features(..., static=...)``, which then takes them
as they are instead of computing them: the same numbers.

Examples
--------
>>> from xfacies import synthetic
>>> from xfacies.catalog import OPTICAL_FEATURES
>>> ds = synthetic.scene("2021-08-15", size=128, seed=1)
>>> cube = ds.features.sel(band=list(OPTICAL_FEATURES))
>>> feats = features(cube, dem=ds.dem, outlines=synthetic.outlines(128, seed=1))
>>> feats.dims, feats.band.values[-1], str(feats.dtype)
(('band', 'y', 'x'), np.str_('proximity'), 'float32')
>>> import numpy as np
>>> bool(np.allclose(feats.values, ds.features.values, atol=1e-6))
True
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
import rioxarray  # noqa: F401  (registers .rio)
from numpy.typing import NDArray

from xfacies.compat import renamed_keywords
from xfacies import catalog, spatial
from xfacies.outlines import as_outlines, glacier_index
from xfacies.errors import GridError, InputError, XfaciesWarning
from xfacies.features import terrain
from xfacies.features.assemble import stack_features
from xfacies.features.proximity import proximity_block, edge_distance
from xfacies.halo import map_halo
from xfacies.validation import (check_reflectance, mark_reflectance_checked, mask_fill, require_float,
                                require_unique_times)

__all__ = ["features", "terrain_features", "static_features", "STATIC_FEATURES", "DEFAULT_SHADOW_CAP",
           "ShadowCapWarning", "edge_distance", "MIN_ELEVATION_RANGE", "DEM_VOID_VALUES", "ElevationRangeWarning",
           "DemVoidWarning", "normalise_elevation", "check_sun_angles"]

# (re-exported: they were defined here; their homes are the modules named)
from xfacies.features.dem_input import DEM_VOID_VALUES, DemVoidWarning, dem_on_grid  # noqa: E402
from xfacies.features.elevation import (  # noqa: E402
    MIN_ELEVATION_RANGE, ElevationRangeWarning, combine_minmax, elevation_block, glacier_minmax,
    normalise_elevation,
)
from xfacies.features.sun import sun_angles, check_sun_angles  # noqa: E402

#: Default longest cast shadow searched for (metres): 5 km is the shadow of a
#: 1000 m wall under a 11.3 degree sun, or of 2500 m of relief under 26.6
#: degrees; longer shadows are cut (with a :class:`ShadowCapWarning`).  It
#: also bounds the cast-shadow halo (``cap / res + 2`` pixels: 502 at 10 m).
DEFAULT_SHADOW_CAP = 5000.0

_TERRAIN_METRIC = ("slope", "shadow_mask", "hillshade", "proximity")
_NEEDS_DEM = ("elevation", "slope", "shadow_mask", "hillshade")
_NEEDS_SUN = ("shadow_mask", "hillshade")
_NEEDS_OUTLINES = ("elevation", "proximity")

#: The features that do not depend on the date (no sun, no imagery): :func:`static_features`.
STATIC_FEATURES = ("elevation", "slope", "proximity")



class ShadowCapWarning(XfaciesWarning):
    """The longest possible shadow exceeds ``shadow_cap``: longer shadows are cut."""


# --------------------------------------------------------------------------- public
def features(
    cube: xr.DataArray,
    dem: xr.DataArray | str | os.PathLike | None = None,
    outlines: Any = None,
    *,
    feature_set: int | str | Sequence[str] = 4,
    sun_azimuth: float | Sequence[float] | None = None,
    sun_elevation: float | Sequence[float] | None = None,
    per_glacier_elevation: bool = False,
    shadow_cap: float = DEFAULT_SHADOW_CAP,
    all_touched: bool = False,
    static: xr.DataArray | xr.Dataset | None = None,
) -> xr.DataArray:
    """Compute a facies feature cube (optical bands + glacier context) lazily.

    Parameters
    ----------
    cube
        Surface reflectance, dims ``(band, y, x)`` or ``(time, band, y, x)``,
        float, ``band`` labelled with the optical feature names (``blue``,
        ``green``, ``red``, ``nir``, ``swir1``, ``swir2``; other bands such as a
        validity mask are ignored), x/y pixel centres in metres of a projected
        CRS (``cube.rio.crs``).  Sun angles are read from the coordinates
        ``sun_azimuth`` and ``sun_elevation`` (degrees; scalar, or one per time).
        Its y/x chunks are the output's (unchunked: one chunk).
    dem
        Elevation in metres: a ``(y, x)`` DataArray on the cube grid, or on any
        other grid/CRS (e.g. SRTM in EPSG:4326), which is then reprojected onto
        the cube grid (bilinear, odc-geo ``xr_reproject`` as in
        :func:`xfacies.open_dem`; the part of the DEM under the cube is read
        and reprojected when :func:`features` is called), or a path to a GeoTIFF.  Its nodata value
        (or, when it declares none, the void values :data:`DEM_VOID_VALUES`,
        with a :class:`DemVoidWarning`) becomes NaN before resampling.
        Needed for ``elevation``, ``slope``, ``shadow_mask``, ``hillshade``.
    outlines
        Glacier outlines (GeoDataFrame or vector file: RGI 6, RGI 7, GLIMS; see
        :func:`xfacies.outlines.read_outlines`), reprojected to the cube CRS.
        Needed for ``elevation`` and ``proximity``.
    feature_set
        1-4 (reference feature sets) or a list of feature names, in the order
        wanted (:func:`xfacies.catalog.feature_set`).
    sun_azimuth, sun_elevation
        Degrees (azimuth clockwise from north, in [0, 360]; elevation above
        the horizon, in (0, 90]); a number or one per time.  Override the
        cube's coordinates.  Elevations that are all at most pi/2 are taken
        for radians and refused; azimuths that are all at most 2 pi (not all
        whole numbers) give a warning.
    per_glacier_elevation
        Normalise elevation by each glacier's own DEM min/max instead of the
        joint min/max of all glaciers of the scene (the reference's choice).
        Pixels outside every glacier keep the joint normalisation.
    shadow_cap
        Longest cast shadow searched for, metres (see the module docstring).
    all_touched
        Rasterise the outlines with all touched pixels (affects only which DEM
        pixels count as inside the glaciers for the elevation min/max).
    static
        The date-independent features precomputed on the cube's grid
        (:func:`static_features`, possibly read back from a Zarr store): a
        ``(band, y, x)`` DataArray, or a Dataset holding one (or one variable per
        feature).  The requested features among :data:`STATIC_FEATURES` that it
        holds are taken from it (rechunked to the cube's chunks) instead of being
        computed, so the DEM and the outlines are only needed for the others;
        it must have been computed with the same ``per_glacier_elevation`` and
        ``all_touched`` (checked on its ``elevation_normalisation`` attribute).

    Returns
    -------
    xarray.DataArray
        float32, dims ``(band, y, x)`` or ``(time, band, y, x)`` with ``band``
        = the requested feature names in order, lazy (dask) on the cube's y/x
        chunks (band in one chunk, time chunks of 1).  All features are NaN
        where any optical band of the cube is NaN (missing observation).
        ``attrs`` document the conventions, the elevation min/max are in the
        graph (``attrs["elevation_normalisation"]`` says which).

    Raises
    ------
    TypeError
        Integer (digital-number) reflectance, or a cube that is not a DataArray.
    ValueError
        Unknown feature names; missing optical bands, DEM, outlines or sun
        angles that the requested features need; a geographic (degrees) cube
        with metric terrain features; non-square pixels; a DEM that does not
        cover the cube; outlines that miss the cube; duplicated dates; sun
        angles out of range or in radians; reflectance that is not plausible
        (more than 1 % of the finite optical values outside [-0.05, 1.6]:
        percent, or digital numbers without scale/offset) -- for a NumPy cube
        at once, for a dask cube when the offending block is computed;
        ``static`` on another grid, with a time dim, or computed with another
        elevation normalisation.

    Warns
    -----
    ElevationRangeWarning
        The DEM range inside the outlines (joint, or of some glaciers with
        ``per_glacier_elevation``) is below :data:`MIN_ELEVATION_RANGE`.
    DemVoidWarning
        The DEM declares no nodata value but holds -32768, -9999 or the float32 minimum.
    ShadowCapWarning
        Shadows longer than ``shadow_cap`` are possible.

    Examples
    --------
    >>> from xfacies import synthetic
    >>> ds = synthetic.season(2, size=96, seed=3, chunks=48)
    >>> cube = ds.features.sel(band=["blue", "green", "red", "nir", "swir1", "swir2"])
    >>> f = features(cube, dem=ds.dem, outlines=synthetic.outlines(96, seed=3), feature_set=3)
    >>> f.dims, f.sizes["band"], f.chunks[-1]
    (('time', 'band', 'y', 'x'), 10, (48, 48))

    The date-independent bands computed once (per grid) and reused:

    >>> st = static_features(ds.dem, synthetic.outlines(96, seed=3), cube, feature_set=3)
    >>> g = features(cube, dem=ds.dem, outlines=synthetic.outlines(96, seed=3), feature_set=3, static=st)
    >>> bool(g.equals(f))
    True
    """
    import dask.array as da

    names = catalog.feature_set(feature_set)
    if not isinstance(cube, xr.DataArray):
        raise TypeError(
            f"cube must be an xarray DataArray of reflectance with a 'band' dimension, got "
            f"{type(cube).__name__}; for a Dataset use ds.to_dataarray(dim='band')"
        )
    for d in ("band", "y", "x"):
        if d not in cube.dims:
            raise InputError(
                f"cube needs dims 'band', 'y' and 'x' (got {cube.dims}); rename them, e.g. "
                "cube.rename(lat='y', lon='x'), and label bands with feature names"
            )
    extra = [d for d in cube.dims if d not in ("band", "y", "x")]
    if len(extra) > 1:
        raise InputError(f"cube may have at most one dim besides band/y/x (e.g. time), got {extra}")
    tdim = extra[0] if extra else None
    require_float(cube, "cube")
    if tdim:
        require_unique_times(cube, "the cube", tdim)
    labels = [str(b) for b in cube["band"].values] if "band" in cube.coords else []
    wanted_optical = [n for n in names if n in catalog.OPTICAL_FEATURES]
    missing = [n for n in wanted_optical if n not in labels]
    if missing:
        raise InputError(
            f"optical band(s) {missing} are not in the cube (its bands: {labels}); the requested "
            f"features are {list(names)}"
        )
    given = _static_bands(static, names) if static is not None else None
    taken = [n for n in names if given is not None and n in given.band.values]
    need_dem = [n for n in names if n in _NEEDS_DEM and n not in taken]
    need_outl = [n for n in names if n in _NEEDS_OUTLINES and n not in taken]
    need_sun = [n for n in names if n in _NEEDS_SUN]
    if need_dem and dem is None:
        raise InputError(f"features {need_dem} need a DEM: pass dem=<DataArray or GeoTIFF path>")
    if need_outl and outlines is None:
        raise InputError(f"features {need_outl} need glacier outlines: pass outlines=<GeoDataFrame or file>")

    cube = cube.transpose(*(([tdim] if tdim else []) + ["band", "y", "x"]))
    # fill values (declared, or the usual -9999 / -32768 / 65535 / float32 extremes) become nodata
    # before any feature sees them: a CNN would carry them into every patch around them
    cube = mask_fill(cube)
    # reflectance units, date by date: NumPy now, dask block by block when computed
    cube = check_reflectance(cube, "the cube", bands=[b for b in catalog.OPTICAL_FEATURES if b in labels],
                             time_dim=tdim or "time")
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    crs = cube.rio.crs
    metric = [n for n in names if n in _TERRAIN_METRIC]
    if metric and crs is not None and crs.is_geographic:
        raise GridError(
            f"the cube is on a geographic grid ({crs.to_string()}, degrees) but {metric} need "
            "distances in metres; reproject the cube to a projected CRS such as UTM first, e.g. "
            "cube.rio.reproject('EPSG:32632', resolution=10)"
        )
    res = _square_res(cube) if (metric or need_dem) else 1.0

    # spatial chunks of the output
    if cube.chunks is not None:
        ych, xch = cube.chunks[-2], cube.chunks[-1]
    else:
        ych, xch = (ny,), (nx,)

    sun_az, sun_el = sun_angles(cube, tdim, sun_azimuth, sun_elevation) if need_sun else (None, None)

    # ---- time-invariant layers
    shared: dict[str, Any] = {}
    elevation_minmax = None
    if taken:
        shared, elevation_minmax = _take_static(given, taken, cube, ych, xch, per_glacier_elevation, all_touched)
    dem_arr = None
    voids: list[tuple[Any, str]] = []
    if need_dem:
        dem_arr = dem_on_grid(dem, cube, crs, res, ych, xch, voids=voids)  # dask float32 (y, x)
    gid = None
    outl = None
    if need_outl:
        if crs is None:
            raise GridError(
                "the cube has no CRS, so outlines cannot be placed on it; attach one with "
                "cube = cube.rio.write_crs('EPSG:....')"
            )
        outl = as_outlines(outlines)
        if outl.crs != crs:
            outl = outl.to_crs(crs)
        # on the cube's grid and y/x chunks; raises if they miss the cube
        gid = glacier_index(outl, cube, all_touched=all_touched, chunks=(ych, xch)).data
    # ---- one pass over the DEM now: voids, relief (shadow halo), elevation min/max
    relief, table = _dem_statistics(
        dem_arr, gid, len(outl) if outl is not None else 0, voids,
        relief="shadow_mask" in names, elevation="elevation" in need_outl)
    if "elevation" in need_outl:
        ids = [str(i) for i in outl["glacier_id"]]
        shared["elevation"], elevation_minmax = elevation_block(dem_arr, gid, ids, table, per_glacier_elevation)
    if "slope" in need_dem:
        shared["slope"] = _overlap1(terrain.slope_horn, dem_arr, res)
    if "proximity" in need_outl:
        shared["proximity"] = proximity_block(outl, cube, ych, xch)

    # ---- per acquisition
    ntime = cube.sizes[tdim] if tdim else 1
    stacks = []
    shadow_info = []
    for t in range(ntime):
        ct = cube.isel({tdim: t}) if tdim else cube
        data = ct.data if ct.chunks is not None else da.from_array(ct.values, chunks=(-1, ych, xch))
        data = data.rechunk((-1, ych, xch))
        layers = []
        computed = []
        for n in names:
            if n in catalog.OPTICAL_FEATURES:
                continue
            computed.append(n)
            if n in shared:
                layers.append(shared[n])
            elif n == "hillshade":
                layers.append(_overlap1(terrain.hillshade, dem_arr, res, float(sun_az[t]), float(sun_el[t])))
            elif n == "shadow_mask":
                lit, info = _shadow(dem_arr, res, float(sun_az[t]), float(sun_el[t]), relief, shadow_cap)
                layers.append(lit)
                shadow_info.append(info)
        # one task per block writes all the bands into the output (no stacked copies)
        stack = da.blockwise(
            _assemble, "byx", data, "cyx", *(x for layer in layers for x in (layer, "yx")),
            new_axes={"b": len(names)}, concatenate=True, dtype=np.float32,
            meta=np.empty((0, 0, 0), np.float32), labels=tuple(labels), computed=tuple(computed),
            names=tuple(names))
        stacks.append(stack)
    out_data = da.stack(stacks, axis=0) if tdim else stacks[0]

    coords: dict[str, Any] = {k: v for k, v in cube.coords.items() if "band" not in v.dims}
    coords["band"] = ("band", list(names))
    out = xr.DataArray(
        out_data,
        dims=cube.dims,
        coords=coords,
        name="features",
        attrs=_attrs(names, per_glacier_elevation, shadow_cap, shadow_info, all_touched, elevation_minmax),
    )
    if need_sun:
        if tdim:
            out = out.assign_coords(
                sun_azimuth=(tdim, np.asarray(sun_az, float), {"units": "degree"}),
                sun_elevation=(tdim, np.asarray(sun_el, float), {"units": "degree"}),
            )
        else:
            out = out.assign_coords(
                sun_azimuth=((), float(sun_az[0]), {"units": "degree"}),
                sun_elevation=((), float(sun_el[0]), {"units": "degree"}),
            )
    if "xfacies_imagery" in cube.attrs:  # provenance (see xfacies.inference.engine)
        out.attrs["xfacies_imagery"] = cube.attrs["xfacies_imagery"]
    if crs is not None:
        out = out.rio.write_crs(crs)
    # the optical bands were checked above: classify need not add the check to the graph again.  The
    # mark names this very dask array, so edited features (x 100: a new array) are checked there.
    mark_reflectance_checked(out.data)
    return out


@renamed_keywords(grid="like")
def terrain_features(
    dem: xr.DataArray | str | os.PathLike,
    outlines: Any,
    like: xr.DataArray | xr.Dataset,
    *,
    sun_azimuth: float | Sequence[float] | None = None,
    sun_elevation: float | Sequence[float] | None = None,
    time: Any = None,
    feature_set: Sequence[str] | None = None,
    per_glacier_elevation: bool = False,
    shadow_cap: float = DEFAULT_SHADOW_CAP,
    all_touched: bool = False,
) -> xr.DataArray:
    """The terrain features alone (elevation, slope, proximity; with a sun, hillshade and cast
    shadow) on a grid, without an optical cube.

    Parameters
    ----------
    dem
        Elevation (a DataArray on any grid, or a raster path), e.g. from :func:`xfacies.open_dem`.
    outlines
        Glacier outlines (GeoDataFrame or vector file).
    like
        The working grid (e.g. :func:`xfacies.grid`), or any xarray object on it: its y/x
        coordinates, CRS and chunks are the output's.
    sun_azimuth, sun_elevation
        Degrees; one number, or one per date (then the result has a ``time`` dim, labelled by
        ``time``).  Without them only the features that need no sun are computed.
    time
        Dates labelling the sun angles when there are several.
    feature_set
        Terrain feature names, in order; default all that the inputs allow, in catalogue order.
    per_glacier_elevation, shadow_cap, all_touched
        As in :func:`features`.

    Returns
    -------
    xarray.DataArray
        float32 ``(band, y, x)`` or ``(time, band, y, x)``, lazy, as :func:`features` returns.

    Examples
    --------
    >>> from xfacies import synthetic
    >>> ds = synthetic.scene(size=96, seed=3)
    >>> t = terrain_features(ds.dem, synthetic.outlines(96, seed=3), ds.dem, sun_azimuth=150.0,
    ...                      sun_elevation=40.0)
    >>> [str(b) for b in t.band.values]
    ['elevation', 'slope', 'shadow_mask', 'hillshade', 'proximity']
    >>> f = features(ds.features.sel(band=list(catalog.OPTICAL_FEATURES)), ds.dem,
    ...              synthetic.outlines(96, seed=3), feature_set=list(t.band.values),
    ...              sun_azimuth=150.0, sun_elevation=40.0)
    >>> bool(np.allclose(t.values, f.values, equal_nan=True))   # the same numbers as with a cube
    True
    """
    import dask.array as da

    ydim, xdim = spatial.spatial_dims(like)
    if (sun_azimuth is None) != (sun_elevation is None):
        raise InputError("give both sun_azimuth and sun_elevation (degrees), or neither")
    has_sun = sun_azimuth is not None
    terrain_names = [f.name for f in catalog.FEATURES if f.name not in catalog.OPTICAL_FEATURES]
    if feature_set is None:
        names = [n for n in terrain_names if has_sun or n not in _NEEDS_SUN]
    else:
        names = list(catalog.feature_set(tuple(feature_set)))
        optical = [n for n in names if n in catalog.OPTICAL_FEATURES]
        if optical:
            raise InputError(f"{optical} are optical bands: terrain_features computes {terrain_names}; "
                             "use xfacies.features.features(cube, ...) with a reflectance cube for those")
    ny, nx = like.sizes[ydim], like.sizes[xdim]
    chunks = like.chunksizes if isinstance(like, xr.DataArray) else {}
    ych = tuple(chunks.get(ydim, (ny,)))
    xch = tuple(chunks.get(xdim, (nx,)))
    coords = {"band": ("band", np.array([], dtype=object)), "y": like[ydim].values, "x": like[xdim].values}
    cube = xr.DataArray(da.zeros((0, ny, nx), dtype=np.float32, chunks=(-1, ych, xch)), dims=("band", "y", "x"),
                        coords=coords)
    crs = spatial.crs_of(like)
    if crs is not None:
        cube = cube.rio.write_crs(crs)
    if has_sun:
        az = np.atleast_1d(np.asarray(sun_azimuth, dtype=float))
        el = np.atleast_1d(np.asarray(sun_elevation, dtype=float))
        if az.shape != el.shape:
            raise InputError(f"sun_azimuth and sun_elevation differ in length ({az.size} vs {el.size})")
        if az.size > 1 or time is not None:
            t = np.asarray(time if time is not None else np.arange(az.size))
            if t.size != az.size:
                raise InputError(f"time has {t.size} values for {az.size} sun positions")
            cube = cube.expand_dims(time=t).chunk({"time": 1})
            sun = dict(sun_azimuth=az.tolist(), sun_elevation=el.tolist())
        else:
            sun = dict(sun_azimuth=float(az[0]), sun_elevation=float(el[0]))
    else:
        sun = {}
    return features(cube, dem, outlines, feature_set=names, per_glacier_elevation=per_glacier_elevation,
                    shadow_cap=shadow_cap, all_touched=all_touched, **sun)


@renamed_keywords(grid="like")
def static_features(
    dem: xr.DataArray | str | os.PathLike,
    outlines: Any,
    like: xr.DataArray | xr.Dataset,
    *,
    feature_set: int | str | Sequence[str] = 4,
    per_glacier_elevation: bool = False,
    all_touched: bool = False,
) -> xr.DataArray:
    """The date-independent features of a feature set on a grid, lazily: to compute (and store)
    once per grid and hand to ``features(..., static=...)`` for every acquisition on it.

    These are the features of ``feature_set`` among :data:`STATIC_FEATURES` (elevation, slope,
    proximity: no sun, no imagery), computed as :func:`terrain_features` computes them without a
    sun, so ``features(cube, dem, outlines, static=static_features(dem, outlines, cube))`` equals
    ``features(cube, dem, outlines)``.

    Parameters
    ----------
    dem
        Elevation (a DataArray on any grid, or a raster path), as for :func:`features`.
    outlines
        Glacier outlines (GeoDataFrame or vector file).
    like
        The working grid, or any xarray object on it (the cube itself): its y/x coordinates,
        CRS and chunks are the output's.
    feature_set
        1-4 or a list of feature names (:func:`xfacies.catalog.feature_set`); only its
        date-independent ones are computed, in its order.
    per_glacier_elevation, all_touched
        As in :func:`features` (pass the same values there).

    Returns
    -------
    xarray.DataArray
        float32 ``(band, y, x)``, lazy, with the attributes :func:`features` writes for those
        bands (``elevation_min_max``, ``elevation_normalisation``, ...).

    Raises
    ------
    ValueError
        The feature set has no date-independent feature; and as :func:`terrain_features`.

    Examples
    --------
    >>> from xfacies import synthetic
    >>> ds = synthetic.scene(size=96, seed=3)
    >>> outl = synthetic.outlines(96, seed=3)
    >>> st = static_features(ds.dem, outl, ds.dem)
    >>> [str(b) for b in st.band.values]
    ['elevation', 'slope', 'proximity']
    >>> cube = ds.features.sel(band=list(catalog.OPTICAL_FEATURES))
    >>> bool(features(cube, ds.dem, outl, static=st).equals(features(cube, ds.dem, outl)))
    True
    """
    names = [n for n in catalog.feature_set(feature_set) if n in STATIC_FEATURES]
    if not names:
        raise InputError(f"feature set {feature_set!r} ({list(catalog.feature_set(feature_set))}) has no "
                         f"date-independent feature; those are {list(STATIC_FEATURES)}")
    return terrain_features(dem, outlines, like, feature_set=names, per_glacier_elevation=per_glacier_elevation,
                            all_touched=all_touched)


def _static_bands(static: Any, names: Sequence[str]) -> xr.DataArray:
    """``static`` as a ``(band, ...)`` DataArray (a Dataset: its one variable with a band dim, or
    one variable per feature), checked to be date-independent."""
    if isinstance(static, xr.Dataset):
        banded = [k for k, v in static.data_vars.items() if "band" in v.dims]
        if len(banded) == 1:
            da_ = static[banded[0]]
            da_.attrs = {**static.attrs, **da_.attrs}
        elif not banded:
            da_ = static.to_dataarray(dim="band")
            da_.attrs = dict(static.attrs)
        else:
            raise InputError(f"static holds several variables with a band dim ({banded}); pass the one "
                             "that static_features returned, e.g. static=ds['static']")
    elif isinstance(static, xr.DataArray):
        da_ = static
    else:
        raise TypeError(f"static must be the DataArray (or a Dataset holding it) that static_features returns, "
                        f"got {type(static).__name__}")
    if "band" not in da_.dims:
        raise InputError(f"static needs a 'band' dim labelled with feature names, got dims {da_.dims}; "
                         "use xfacies.features.static_features(dem, outlines, grid)")
    extra = [d for d in da_.dims if d not in ("band", "y", "x")]
    if extra:
        raise InputError(f"static features do not depend on the date: static must have dims (band, y, x), "
                         f"it has {extra} besides; select one, e.g. static.isel({extra[0]}=0)")
    da_ = da_.assign_coords(band=[str(b) for b in da_["band"].values])
    dated = [n for n in da_.band.values if n not in STATIC_FEATURES]
    if dated:
        raise InputError(f"static holds {dated}, which are not date-independent (those are "
                         f"{list(STATIC_FEATURES)}); compute it with static_features(dem, outlines, grid)")
    return da_


def _take_static(given: xr.DataArray, taken: Sequence[str], cube: xr.DataArray, ych: tuple, xch: tuple,
                 per_glacier: bool, all_touched: bool) -> tuple[dict[str, Any], tuple[float, float] | None]:
    """The bands ``taken`` of the precomputed static features as float32 dask arrays on the
    cube's chunks, and the elevation min/max they were normalised with."""
    import dask.array as da

    spatial.check_same_grid(given, cube, "static", like_name="the cube")
    minmax = None
    if "elevation" in taken:
        want = _elevation_rule(per_glacier, all_touched)
        rule = given.attrs.get("elevation_normalisation")
        if rule is not None and rule != want:
            raise InputError(
                f"static's elevation was normalised as {rule!r}, this call asks for {want!r}; compute "
                "static with the same per_glacier_elevation and all_touched, or leave static out")
        if "elevation_min_max" in given.attrs:
            minmax = tuple(float(v) for v in np.asarray(given.attrs["elevation_min_max"]).ravel()[:2])
    given = given.transpose("band", "y", "x")
    out = {}
    for n in taken:
        arr = given.sel(band=n).data
        if not isinstance(arr, da.Array):
            arr = da.from_array(np.asarray(arr), chunks=(ych, xch))
        out[n] = arr.astype(np.float32).rechunk((ych, xch))
    return out, minmax  # type: ignore[return-value]


# --------------------------------------------------------------------------- inputs
def _square_res(cube: xr.DataArray) -> float:
    if cube.sizes["x"] < 2 or cube.sizes["y"] < 2:
        raise InputError(f"the cube needs at least 2 x 2 pixels for terrain features, got {dict(cube.sizes)}")
    t = spatial.transform(cube)
    rx, ry = abs(float(t.a)), abs(float(t.e))
    if not math.isclose(rx, ry, rel_tol=1e-6):
        raise GridError(
            f"terrain features need square pixels, the cube has {rx} x {ry}; resample it, e.g. "
            f"cube.rio.reproject(cube.rio.crs, resolution={min(rx, ry)})"
        )
    spatial.require_north_up(cube, "the cube", "cube", dims=("y",))
    return rx


def _assemble(refl: NDArray, *layers: NDArray, labels: tuple[str, ...], computed: tuple[str, ...],
              names: tuple[str, ...]) -> NDArray:
    """The output bands of a block (:func:`xfacies.features.assemble.stack_features`): the cube's
    bands ``labels`` and the computed ``layers`` named ``computed``, NaN where an optical band is."""
    return stack_features(names, {**dict(zip(labels, refl)), **dict(zip(computed, layers))})


# --------------------------------------------------------------------------- terrain layers
def _overlap1(kernel: Any, dem: Any, res: float, *args: float) -> Any:
    """A 3x3 Horn kernel blockwise: halo 1 with nearest-value padding at the scene edge."""
    return map_halo(_kernel_block, dem, {0: 1, 1: 1}, boundary="nearest", dtype=np.float32,
                    name=f"xfacies-{kernel.__name__}", kernel=kernel, res=res, args=args)


def _kernel_block(block: NDArray, *, kernel: Any, res: float, args: tuple) -> NDArray:
    return kernel(block, res, *args).astype(np.float32)


def _relief(dem: Any) -> float:
    """DEM maximum minus minimum over the grid (computed now: it sizes the shadow halo)."""
    return _dem_statistics(dem, None, 0, [], relief=True, elevation=False)[0]


_STATS: dict[str, Any] = {}


def _once(todo: dict[str, Any]) -> Any:
    """``dask.compute(todo)``, remembered by its token (a few recent ones): a run that builds one graph
    per batch of dates on the same DEM computes its statistics once, and does not send the same DEM
    keys to a cluster again while an earlier batch's graph holds them (a key submitted twice with
    different task specs can deadlock the scheduler)."""
    from dask.base import tokenize

    from xfacies import graphs

    key = tokenize(todo)
    if key not in _STATS:
        if len(_STATS) > 16:
            _STATS.pop(next(iter(_STATS)))
        _STATS[key] = graphs.compute(todo)
    return _STATS[key]


def _dem_statistics(dem: Any, gid: Any, n_glaciers: int, voids: list[tuple[Any, str]], *,
                    relief: bool, elevation: bool
                    ) -> tuple[float | None, NDArray | None]:
    """One pass over the DEM, now: void counts (warned about), the relief (shadow halo) and the
    elevation min/max inside the outlines, ``(2, n + 1)``: column 0 all glaciers together,
    column ``k`` glacier ``k`` (NaN without a finite DEM value)."""
    import dask
    import dask.array as da

    todo: dict[str, Any] = {"voids": [v for v, _ in voids]}
    if dem is not None and relief:
        todo["relief"] = (da.nanmax(dem), da.nanmin(dem))
    if dem is not None and elevation:
        parts = [dask.delayed(glacier_minmax, pure=True)(d, g, n_glaciers)
                 for d, g in zip(dem.to_delayed().ravel(), gid.to_delayed().ravel())]
        todo["table"] = dask.delayed(combine_minmax, pure=True)(parts)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All-NaN (slice|axis) encountered")
        (got,) = _once(todo)
    for n, (_, what) in zip(got["voids"], voids):
        if int(n):
            warnings.warn(
                f"{what} declares no nodata value but holds {int(n)} pixel(s) of the common void values "
                f"{' / '.join(f'{v:g}' for v in DEM_VOID_VALUES)}: they are masked as nodata, so the "
                "terrain features are NaN there (and around them for slope and hillshade). Declare its "
                "nodata (dem.rio.write_nodata(-32768), or gdal_edit.py -a_nodata) or fill the voids "
                "(e.g. with another DEM) to silence this.", DemVoidWarning, stacklevel=4)
    rel = None
    if "relief" in got:
        hi, lo = (float(v) for v in got["relief"])
        rel = hi - lo if (math.isfinite(hi) and math.isfinite(lo)) else 0.0
    table = np.asarray(got["table"], dtype=np.float64) if "table" in got else None
    return rel, table


def _shadow(dem: Any, res: float, az: float, el: float, relief: float, cap: float) -> tuple[Any, dict]:
    """Cast-shadow mask (float32, 1 = sunlit) with a halo of the longest possible shadow."""
    import dask.array as da

    if not (cap > 0):
        raise InputError(f"shadow_cap must be a positive distance in metres, got {cap}")
    if el <= 0:
        lit = da.zeros(dem.shape, chunks=dem.chunks, dtype=np.float32)
        return da.where(da.isnan(dem), np.float32(np.nan), lit), {"halo": 0, "max_distance": 0.0}
    if el >= 90 or relief <= 0:
        lit = da.ones(dem.shape, chunks=dem.chunks, dtype=np.float32)
        return da.where(da.isnan(dem), np.float32(np.nan), lit), {"halo": 0, "max_distance": 0.0}
    bound = float(terrain.shadow_length_bound(relief, el))
    maxd = bound
    if bound > cap:
        warnings.warn(
            f"the longest possible cast shadow ({bound:.0f} m: relief {relief:.0f} m under a "
            f"{el:.1f} degree sun) exceeds shadow_cap={cap:.0f} m; shadows longer than "
            f"{cap:.0f} m are cut (pixels shaded only by terrain farther away count as sunlit). "
            "Raise shadow_cap for exact shadows at the cost of a larger halo.",
            ShadowCapWarning,
            stacklevel=3,
        )
        maxd = float(cap)
    halo = int(math.ceil(maxd / res)) + 2
    ny, nx = dem.shape
    depth = {0: min(halo, ny), 1: min(halo, nx)}
    lit = map_halo(_shadow_block, dem, depth, boundary=np.nan, dtype=np.float32,
                   name="xfacies-cast-shadow", res=res, az=az, el=el, maxd=maxd)
    return lit.rechunk(dem.chunks), {"halo": halo, "max_distance": maxd}


def _shadow_block(block: NDArray, *, res: float, az: float, el: float, maxd: float) -> NDArray:
    lit = terrain.cast_shadow(block, res, az, el, max_distance=maxd).astype(np.float32)
    lit[np.isnan(block)] = np.nan
    return lit


# --------------------------------------------------------------------------- attrs
def _elevation_rule(per_glacier: bool, all_touched: bool) -> str:
    return ("(dem - min) / (max - min), min/max of the DEM inside the outlines, "
            + ("per glacier (off-glacier pixels: all glaciers jointly)" if per_glacier else "all glaciers jointly")
            + (" (all-touched rasterisation)" if all_touched else "")
            + f"; 0.5 where max - min < {MIN_ELEVATION_RANGE:g} m")


def _attrs(names: Sequence[str], per_glacier: bool, cap: float, shadow_info: list[dict], all_touched: bool,
           elevation_minmax: tuple[float, float] | None = None) -> dict:
    attrs: dict[str, Any] = {
        "long_name": "facies model features",
        "feature_names": " ".join(names),
        "feature_units": " ".join({f.name: f.units for f in catalog.FEATURES}[n] for n in names),
        "missing": "all features are NaN where any optical band of the input cube is NaN",
    }
    if "elevation" in names:
        attrs["elevation_normalisation"] = _elevation_rule(per_glacier, all_touched)
        if elevation_minmax is not None:
            attrs["elevation_min_max"] = [float(v) for v in elevation_minmax]
    if "slope" in names or "hillshade" in names:
        attrs["terrain_method"] = "Horn (1981) 3x3 gradient; scene border: nearest-value padding"
    if "hillshade" in names:
        attrs["hillshade_convention"] = "max(0, cos(incidence)); flat ground = sin(sun elevation)"
    if "shadow_mask" in names:
        attrs["shadow_mask_convention"] = "1 = sunlit, 0 = cast shadow (line of sight over the DEM)"
        attrs["shadow_cap_m"] = float(cap)
        if shadow_info:
            attrs["shadow_max_distance_m"] = [float(i["max_distance"]) for i in shadow_info]
    if "proximity" in names:
        attrs["proximity_convention"] = (
            "distance from the pixel centre to the nearest outline edge, divided by its maximum over the raster"
        )
    return attrs

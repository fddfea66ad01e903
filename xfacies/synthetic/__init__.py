"""Synthetic valley glaciers: deterministic scenes for demos, tests and benchmarks.

The generator builds a physically plausible alpine landscape on a 10 m grid
in a real UTM CRS (by default near the Ötztal Alps, EPSG:32632): east-west
mountain ranges whose crests (about 3500 m) lie at the southern edge of each
range, with north-flowing valley glaciers in U-shaped troughs that descend
from cirques under steep head walls to tongues at about 2300-2450 m.  For a
given date it draws the true facies map (snow, firn, superimposed
"refrozen-like" ice, bare ice, debris-covered tongues, melt ponds, cast
shadows, clouds) and the surface reflectance that a Sentinel-2-like sensor
would see, plus the 11 reference features of :data:`xfacies.catalog.FEATURES`.

Everything is a function of ``(seed, global row, global column, band, date)``:
white noise comes from a splitmix64-style integer hash and smooth fields from
hashed-lattice value noise, and the terrain is an analytic function of the
pixel position.  A pixel's value therefore never depends on how the scene is
chunked: a dask-backed scene (``chunks=...``, or automatically above
2048 x 2048 pixels) is identical to the eager one, block by block.  Blocks
get their halos (for slope, hillshade and cast shadows) by evaluating the
analytic terrain on a larger window, never by moving data between blocks.

The layout is designed for 10 m pixels; other resolutions keep the layout in
pixels (so slopes scale with ``10 / resolution``).

Examples
--------
>>> from xfacies import synthetic
>>> ds = synthetic.scene("2021-08-15", size=128, seed=1)
>>> ds.features.dims, ds.features.sizes["band"]
(('band', 'y', 'x'), 11)
>>> int(ds.glacier.max()) == len(synthetic.outlines(128, seed=1))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from xfacies.catalog import FEATURE_SETS, OPTICAL_FEATURES
from xfacies.errors import InputError
from xfacies.features.assemble import stack_features
from xfacies.features.proximity import normalise_proximity
from xfacies.synthetic.acquisition import (
    D_HILL, D_REFL, D_SUNLIT, D_TRUTH, N_D, N_T, SHADOW_DISTANCE_CAP, T_DEM, T_DIST, T_ELEV, T_GLACIER,
    T_SLOPE, DateInfo, date_block, date_info, scene_latitude, terrain_block, to_datetime64,
)
from xfacies.synthetic.landscape import Landscape, make_landscape

__all__ = ["GENERATOR_VERSION", "SHADOW_DISTANCE_CAP", "labelled_points", "outlines", "scene", "season", "season_dates"]

#: Version of the generator; bumped whenever the same arguments give different data.
GENERATOR_VERSION = "1.0"
#: Attribute (and, as ``xfacies:imagery``, STAC item property) naming where imagery came from.
IMAGERY_ATTR = "xfacies_imagery"

_LAZY_PIXELS = 2048 * 2048  # scenes larger than this are dask-backed by default
_DEFAULT_CHUNK = 1024

# --------------------------------------------------------------------------
# Dataset assembly
# --------------------------------------------------------------------------


def _resolve_chunks(chunks: Any, ny: int, nx: int) -> tuple[int, int] | None:
    if chunks is None:
        return (_DEFAULT_CHUNK, _DEFAULT_CHUNK) if ny * nx > _LAZY_PIXELS else None
    if isinstance(chunks, dict):
        cy, cx = chunks.get("y", -1), chunks.get("x", -1)
    elif isinstance(chunks, (int, np.integer)):
        cy = cx = int(chunks)
    else:
        cy, cx = (int(c) for c in chunks)
    cy = ny if cy in (-1, None) else int(cy)
    cx = nx if cx in (-1, None) else int(cx)
    if cy <= 0 or cx <= 0:
        raise InputError(f"chunks must be positive, got {chunks!r}")
    return min(cy, ny), min(cx, nx)


def _chunk_tuple(n: int, c: int) -> tuple[int, ...]:
    return tuple([c] * (n // c) + ([n % c] if n % c else []))


def _loc(block_info: dict) -> tuple[int, int, int, int]:
    (_, _), (r0, r1), (c0, c1) = block_info[None]["array-location"][-3:]
    return r0, r1, c0, c1


class _Builder:
    """Evaluates the terrain and the per-date layers eagerly or as dask arrays."""

    def __init__(self, lay: Landscape, chunks: tuple[int, int] | None):
        self.lay = lay
        self.chunks = chunks
        self._tstack: Any = None
        # dask names from the arguments that define the scene (never from the objects)
        from dask.base import tokenize

        self.token = tokenize(
            "xfacies.synthetic", GENERATOR_VERSION, lay.ny, lay.nx, lay.seed, lay.res, lay.crs,
            lay.x0, lay.y0, lay.gband.size, chunks,
        )

    @property
    def lazy(self) -> bool:
        return self.chunks is not None

    def tstack(self) -> Any:
        if self._tstack is None:
            lay = self.lay
            if not self.lazy:
                self._tstack = terrain_block(lay, 0, lay.ny, 0, lay.nx)
            else:
                import dask.array as da

                def fn(block_info: dict | None = None) -> NDArray:
                    return terrain_block(lay, *_loc(block_info))  # type: ignore[arg-type]

                ch = ((N_T,), _chunk_tuple(lay.ny, self.chunks[0]), _chunk_tuple(lay.nx, self.chunks[1]))  # type: ignore[index]
                self._tstack = da.map_blocks(
                    fn, chunks=ch, dtype=np.float64, meta=np.empty((0, 0, 0)), name=f"synthetic-terrain-{self.token}"
                )
        return self._tstack

    def dstack(self, info: DateInfo) -> Any:
        lay = self.lay
        ts = self.tstack()
        if not self.lazy:
            return date_block(lay, info, ts, 0, lay.ny, 0, lay.nx)
        import dask.array as da
        from dask.base import tokenize

        def fn(tblock: NDArray, block_info: dict | None = None) -> NDArray:
            return date_block(lay, info, tblock, *_loc(block_info))  # type: ignore[arg-type]

        ch = ((N_D,),) + ts.chunks[1:]
        name = f"synthetic-date-{tokenize(self.token, info)}"
        return da.map_blocks(fn, ts, chunks=ch, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32), name=name)

    def distance_max(self) -> Any:
        if not self.lazy:
            return float(self.tstack()[T_DIST].max())
        import dask
        import dask.array as da

        task = dask.delayed(self.lay.edge_distance_max, name=f"synthetic-edge-max-{self.token}")()
        return da.from_delayed(task, (), np.float64)


def _coords(lay: Landscape) -> dict[str, Any]:
    x, y = lay.xy(np.arange(lay.ny), np.arange(lay.nx))
    return {
        "y": ("y", y, {"units": "metre", "standard_name": "projection_y_coordinate", "axis": "Y"}),
        "x": ("x", x, {"units": "metre", "standard_name": "projection_x_coordinate", "axis": "X"}),
    }


def _attrs(lay: Landscape, kind: str) -> dict[str, Any]:
    return {
        "title": f"xfacies synthetic valley glaciers ({kind})",
        "description": (
            "Synthetic north-flowing valley glaciers under crests near 3500 m: true facies map, "
            "surface reflectance and the 11 reference features, generated deterministically from the seed."
        ),
        "seed": lay.seed,
        "generator": "xfacies.synthetic",
        "generator_version": GENERATOR_VERSION,
        "resolution": lay.res,
        "n_glaciers": int(lay.gband.size),
    }


def _static_vars(b: _Builder) -> dict[str, Any]:
    ts = b.tstack()
    dem = ts[T_DEM].astype(np.float32)
    gl = ts[T_GLACIER].astype(np.int32)
    return {
        "dem": (("y", "x"), dem, {"long_name": "surface elevation", "units": "m"}),
        "glacier": (
            ("y", "x"),
            gl,
            {"long_name": "glacier id (1-based row of synthetic.outlines(); 0 = off-glacier)", "units": "1"},
        ),
    }


def _date_vars(b: _Builder, info: DateInfo, pmax: Any) -> dict[str, Any]:
    ts = b.tstack()
    ds_ = b.dstack(info)
    layers = {
        **{name: ds_[i] for i, name in enumerate(OPTICAL_FEATURES)},
        "elevation": ts[T_ELEV], "slope": ts[T_SLOPE], "shadow_mask": ds_[D_SUNLIT],
        "hillshade": ds_[D_HILL], "proximity": normalise_proximity(ts[T_DIST], pmax),
    }
    # the simulated reflectance is never missing: no NaN mask to add to the graph
    feats = stack_features(FEATURE_SETS[4], layers, nodata_from=())
    if b.lazy:
        feats = feats.rechunk({0: -1})
    return {
        "reflectance": ds_[D_REFL],
        "truth": ds_[D_TRUTH].astype(np.int8),
        "features": feats,
    }


_VAR_ATTRS = {
    "features": {"long_name": "reference facies features (feature set 4)"},
}


def outlines(
    size: int | Sequence[int] = 512,
    *,
    seed: int = 0,
    n_glaciers: int | None = None,
    resolution: float = 10.0,
    crs: str = "EPSG:32632",
    origin: tuple[float, float] | None = None,
) -> Any:
    """Outlines of the synthetic glaciers of a scene.

    Parameters
    ----------
    size
        Scene size in pixels: ``n`` (square) or ``(ny, nx)``.
    seed
        Random seed; the same arguments always give the same glaciers.
    n_glaciers
        Number of glaciers.  Default: one per ~170 pixels of scene width in
        every ~700-pixel-high mountain range (3 in a 512 x 512 scene).
    resolution
        Pixel size in metres.
    crs
        Coordinate reference system of the grid (a projected CRS in metres).
    origin
        ``(x, y)`` of the scene's top-left corner in ``crs``; default near
        the Ötztal Alps (630000, 5190000).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per glacier with ``rgi_id`` (``"SYN60-00.00001"`` style),
        ``name``, ``area_km2``, ``zmin`` and ``zmax`` (the exact extremes of
        the scene DEM over the pixels whose centres lie inside the outline),
        and a ``geometry`` of Polygons in ``crs``.  Row ``k`` (0-based) is
        glacier id ``k + 1`` in :func:`scene`'s ``glacier`` raster.

    Examples
    --------
    >>> gdf = outlines(512, seed=0)
    >>> len(gdf), gdf.rgi_id.iloc[0], gdf.crs.to_epsg()
    (3, 'SYN60-00.00001', 32632)
    >>> bool((gdf.zmax > gdf.zmin).all())
    True
    """
    lay = make_landscape(size, seed, n_glaciers, resolution, crs, origin)
    return _outlines_frame(lay)


def _outlines_frame(lay: Landscape) -> Any:
    import geopandas as gpd

    n = lay.gband.size
    ids = [f"SYN60-00.{k + 1:05d}" for k in range(n)]
    names = [f"Synthetic Ferner {k + 1}" for k in range(n)]
    areas = np.array([p.area for p in lay.polygons]) / 1e6 if n else np.zeros(0)
    return gpd.GeoDataFrame(
        {
            "rgi_id": ids,
            "name": names,
            "area_km2": areas,
            "zmin": lay.zmin.astype(np.float64),
            "zmax": lay.zmax.astype(np.float64),
        },
        geometry=gpd.GeoSeries(list(lay.polygons), crs=lay.crs),
        crs=lay.crs,
    )


def _finish(ds: xr.Dataset, lay: Landscape) -> xr.Dataset:
    from xfacies.catalog import class_flag_attrs

    ds["truth"].attrs.update(class_flag_attrs("true glacier surface facies"))
    for k, a in _VAR_ATTRS.items():
        ds[k].attrs.update(a)
    for k in ds.data_vars:  # provenance that models trained on synthetic glaciers check
        ds[k].attrs[IMAGERY_ATTR] = "synthetic"
    ds.attrs[IMAGERY_ATTR] = "synthetic"
    import rioxarray  # noqa: F401  (registers .rio)

    ds = ds.rio.write_crs(lay.crs)
    return ds


def _per_date_coords(infos: list[DateInfo], lay: Landscape) -> dict[str, tuple[np.ndarray, dict]]:
    return {
        "sun_azimuth": (np.array([i.sun_azimuth for i in infos]), {"units": "degree", "long_name": "sun azimuth, clockwise from north"}),
        "sun_elevation": (np.array([i.sun_elevation for i in infos]), {"units": "degree", "long_name": "sun elevation"}),
        "snowline_altitude": (np.array([i.snowline for i in infos]), {"units": "m", "long_name": "true transient snow-line altitude"}),
        "firnline_altitude": (np.full(len(infos), lay.firnline), {"units": "m", "long_name": "true firn-line altitude"}),
        "cloud_fraction": (np.array([i.cloud_fraction for i in infos]), {"units": "1", "long_name": "nominal cloud cover used to draw the clouds"}),
    }


def scene(
    date: Any = "2021-08-15",
    *,
    size: int | Sequence[int] = 512,
    seed: int = 0,
    n_glaciers: int | None = None,
    resolution: float = 10.0,
    crs: str = "EPSG:32632",
    origin: tuple[float, float] | None = None,
    chunks: int | tuple[int, int] | dict[str, int] | None = None,
    clouds: bool = True,
) -> xr.Dataset:
    """One synthetic acquisition over synthetic valley glaciers.

    Parameters
    ----------
    date
        Acquisition date (anything :class:`pandas.Timestamp` reads).  It
        sets the sun position (10:30 local solar time at the scene centre),
        the snow line and the clouds.
    size, seed, n_glaciers, resolution, crs, origin
        As in :func:`outlines`.
    chunks
        Dask chunk size in pixels (int, ``(cy, cx)`` or ``{"y": cy, "x": cx}``).
        Default: eager NumPy up to 2048 x 2048 pixels, 1024 x 1024 chunks
        above.  The values never depend on the chunking.
    clouds
        Whether to draw clouds (cloud cover varies by date and is zero on
        about a third of the dates).

    Returns
    -------
    xarray.Dataset
        On dims ``y`` (descending), ``x`` (pixel centres, metres) with the CRS
        written by rioxarray:

        * ``features`` (band, y, x) float32, the 11 features of feature set 4
          (the first six are the surface reflectances: ``ds.features.sel(band=OPTICAL_FEATURES)``);
        * ``dem`` (y, x) float32 metres; ``glacier`` (y, x) int32 ids (0 off-glacier);
        * ``truth`` (y, x) int8 catalogue class ids, ``NODATA`` off-glacier;
        * scalar coordinates ``time``, ``sun_azimuth``, ``sun_elevation``,
          ``snowline_altitude``, ``firnline_altitude``, ``cloud_fraction``.

    Examples
    --------
    >>> ds = scene("2021-08-15", size=256, seed=0)
    >>> ds.features.band.values[-3:].tolist()
    ['shadow_mask', 'hillshade', 'proximity']
    >>> 40 < float(ds.sun_elevation) < 60 and 120 < float(ds.sun_azimuth) < 170
    True
    """
    lay = make_landscape(size, seed, n_glaciers, resolution, crs, origin)
    return _dataset(lay, [date_info(lay, date, scene_latitude(lay), clouds)], chunks, "scene")


def season_dates(dates: int | Sequence[Any], year: int) -> list[np.datetime64]:
    """``dates`` acquisition days spread over June-September of ``year``, or the given dates as datetime64."""
    if isinstance(dates, (int, np.integer)):
        if dates < 1:
            raise InputError(f"dates must be >= 1 or a list of dates, got {dates}")
        start = pd.Timestamp(year=year, month=6, day=1)
        end = pd.Timestamp(year=year, month=9, day=30)
        span = (end - start).days
        days = [0] if dates == 1 else np.round(np.linspace(0, span, int(dates))).astype(int)
        return [to_datetime64(start + pd.Timedelta(days=int(d))) for d in days]
    out = [to_datetime64(d) for d in dates]
    if not out:
        raise InputError("dates is empty; give a number of dates or a list of dates")
    return out


def season(
    dates: int | Sequence[Any] = 6,
    *,
    year: int = 2021,
    size: int | Sequence[int] = 512,
    seed: int = 0,
    n_glaciers: int | None = None,
    resolution: float = 10.0,
    crs: str = "EPSG:32632",
    origin: tuple[float, float] | None = None,
    chunks: int | tuple[int, int] | dict[str, int] | None = None,
    clouds: bool = True,
) -> xr.Dataset:
    """A melt season of synthetic acquisitions over the same glaciers.

    Parameters
    ----------
    dates
        Number of dates spread evenly over 1 June - 30 September of ``year``,
        or a list of dates.
    year
        Year of the generated dates (when ``dates`` is a number).
    size, seed, n_glaciers, resolution, crs, origin, chunks, clouds
        As in :func:`scene`.

    Returns
    -------
    xarray.Dataset
        As :func:`scene` with a leading ``time`` dim (datetime64[ns]) on
        ``features`` and ``truth`` and per-time coordinates
        ``sun_azimuth``, ``sun_elevation``, ``snowline_altitude``,
        ``firnline_altitude`` and ``cloud_fraction``.  ``season(...).isel(time=i)``
        equals ``scene(date_i, ...)`` (same seed and size).

    Examples
    --------
    >>> ds = season(3, size=128, seed=2)
    >>> ds.truth.dims, ds.sizes["time"]
    (('time', 'y', 'x'), 3)
    >>> bool((ds.snowline_altitude.diff("time") > 0).all())
    True
    """
    lay = make_landscape(size, seed, n_glaciers, resolution, crs, origin)
    lat = scene_latitude(lay)
    infos = [date_info(lay, d, lat, clouds) for d in season_dates(dates, year)]
    return _dataset(lay, infos, chunks, "season")


def _dataset(lay: Landscape, infos: list[DateInfo], chunks: Any, kind: str) -> xr.Dataset:
    """The scene (one date, no time dim) or season Dataset of ``infos`` over ``lay``."""
    b = _Builder(lay, _resolve_chunks(chunks, lay.ny, lay.nx))
    pmax = b.distance_max()
    per = [_date_vars(b, i, pmax) for i in infos]
    v = _static_vars(b)
    if kind == "scene":
        tdim: tuple[str, ...] = ()
        feats, truth = per[0]["features"], per[0]["truth"]
        times: dict[str, Any] = {"time": ((), infos[0].date)}
        times.update({k: ((), val[0], a) for k, (val, a) in _per_date_coords(infos, lay).items()})
    else:
        stack: Any = np.stack
        if b.lazy:
            import dask.array as da

            stack = da.stack
        tdim = ("time",)
        feats, truth = stack([p["features"] for p in per]), stack([p["truth"] for p in per])
        times = {"time": ("time", np.array([i.date for i in infos], dtype="datetime64[ns]"))}
        times.update({k: ("time", val, a) for k, (val, a) in _per_date_coords(infos, lay).items()})
    ds = xr.Dataset(
        {
            "features": (tdim + ("band", "y", "x"), feats),
            "dem": v["dem"],
            "glacier": v["glacier"],
            "truth": (tdim + ("y", "x"), truth, {"long_name": "true facies"}),
        },
        coords={**_coords(lay), "band": ("band", list(FEATURE_SETS[4])), **times},
        attrs=_attrs(lay, kind),
    )
    return _finish(ds, lay)


def labelled_points(ds: xr.Dataset, *, n_per_class: int = 100, flip: float = 0.0, seed: int = 0,
                    crs: Any = None):
    """Labelled points on a synthetic season, as a field campaign or an analyst would give them.

    Parameters
    ----------
    ds
        A :func:`season` or :func:`scene` Dataset (``truth``, ``glacier``, x/y and its CRS).
    n_per_class
        At most this many points per class (fewer where a class is rarer), drawn over all dates.
    flip
        Fraction of the facies points (ice, snow, debris, firn, refrozen-like) whose label is
        replaced by another facies class: label noise for confident-learning tests.  The true
        class stays in ``true_class``.
    seed
        Seeds the draw and the flips.
    crs
        Reproject the points to this CRS (default: the season's).

    Returns
    -------
    geopandas.GeoDataFrame
        ``class`` (name), ``true_class``, ``flipped``, ``date``, ``glacier`` and point geometry
        at pixel centres.

    Examples
    --------
    >>> pts = labelled_points(season(2, size=96, seed=1), n_per_class=5, seed=0)   # doctest: +SKIP
    >>> sorted(pts.columns)                                                         # doctest: +SKIP
    ['class', 'date', 'flipped', 'geometry', 'glacier', 'true_class']
    """
    import geopandas as gpd

    from xfacies import catalog

    truth = np.asarray(ds["truth"].values)
    if truth.ndim == 2:
        truth = truth[None]
    times = np.atleast_1d(np.asarray(ds["time"].values))
    glacier = np.asarray(ds["glacier"].values)
    xs, ys = np.asarray(ds["x"].values), np.asarray(ds["y"].values)
    rng = np.random.default_rng(seed)
    rows = []
    for c in catalog.CLASSES:
        t, r, q = np.nonzero(truth == c.id)
        if t.size == 0:
            continue
        pick = rng.choice(t.size, size=min(n_per_class, t.size), replace=False)
        rows += [(c.id, t[i], r[i], q[i]) for i in pick]
    cls = np.array([r[0] for r in rows], dtype=np.int64)
    given = cls.copy()
    facies = np.asarray(catalog.FACIES_CLASSES)
    is_facies = np.isin(cls, facies)
    n_flip = int(round(flip * is_facies.sum()))
    flipped = np.zeros(cls.size, bool)
    if n_flip:
        idx = rng.choice(np.flatnonzero(is_facies), size=n_flip, replace=False)
        for i in idx:
            given[i] = rng.choice(facies[facies != cls[i]])
        flipped[idx] = True
    names = catalog.class_names()
    gdf = gpd.GeoDataFrame(
        {"class": [names[i] for i in given], "true_class": [names[i] for i in cls], "flipped": flipped,
         "date": times[[r[1] for r in rows]],
         "glacier": [f"{ds.attrs.get('seed', 0)}-{int(glacier[r[2], r[3]])}" for r in rows]},
        geometry=gpd.points_from_xy(xs[[r[3] for r in rows]], ys[[r[2] for r in rows]]),
        crs=ds.rio.crs)
    return gdf if crs is None else gdf.to_crs(crs)

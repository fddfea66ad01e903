"""Glacier outlines: reading, checking, rasterising, and the grid around them.

A foundation module, next to :mod:`xfacies.spatial` (the grid primitives it builds on): every
stage that takes outlines (features, inference, products, STAC searches, training labels) goes
through :func:`as_outlines` and :func:`glacier_index` / :func:`glacier_mask` here, so outlines
in another CRS, without ids, overlapping or off the grid give the same clear error everywhere.
The GDAL stack (geopandas, rasterio, rioxarray, odc-geo) is imported only when vectors are
used: :func:`glacier_mask` given an outline raster needs numpy and xarray only.

Outlines are :class:`geopandas.GeoDataFrame` objects of glacier polygons (RGI 6,
RGI 7, GLIMS or anything with polygons and a CRS).  :func:`read_outlines`
normalises them (a string ``glacier_id`` column, valid polygonal geometries,
optionally reprojected); :func:`rasterize` burns them onto the grid of a raster
as a glacier *index* (0 = no glacier, ``k`` = the ``k``-th glacier), lazily per
chunk when the raster is dask-backed; :func:`glacier_bboxes` gives per-glacier
bounding boxes, e.g. to cut scenes.

Examples
--------
>>> import geopandas as gpd, numpy as np, xarray as xr, rioxarray  # noqa: F401
>>> from shapely.geometry import box
>>> gdf = gpd.GeoDataFrame({"rgi_id": ["A", "B"]},
...                        geometry=[box(0, 0, 40, 40), box(60, 0, 100, 30)],
...                        crs="EPSG:32632")
>>> outlines = read_outlines(gdf)
>>> list(outlines["glacier_id"])
['A', 'B']
>>> grid = xr.DataArray(np.zeros((5, 10)), dims=("y", "x"),
...                     coords={"y": 45.0 - 10 * np.arange(5), "x": 5.0 + 10 * np.arange(10)}
...                     ).rio.write_crs("EPSG:32632")
>>> idx = rasterize(outlines, grid)
>>> idx.values[2]
array([1, 1, 1, 1, 0, 0, 2, 2, 2, 2], dtype=int32)
>>> idx.attrs["glacier_ids"]
['A', 'B']
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies import spatial
from xfacies.errors import GridError, InputError, InputWarning, XfaciesWarning

if TYPE_CHECKING:  # pragma: no cover
    from odc.geo.geobox import GeoBox

__all__ = ["ID_COLUMNS", "DEFAULT_BUFFER", "read_outlines", "as_outlines", "rasterize", "glacier_index",
           "glacier_mask", "grid", "geobox_around", "glacier_bboxes", "crop", "OverlapWarning", "overlaps",
           "outlines_from_mask"]

#: Columns tried, in order, as the glacier id when ``id_column`` is not given
#: (``glacier_id`` first so that normalised outlines stay as they are).
ID_COLUMNS: tuple[str, ...] = ("glacier_id", "RGIId", "rgi_id", "RGIID", "glac_id", "GLIMSId", "id")

_POLYGONAL = ("Polygon", "MultiPolygon")
_BURN_LOCK = threading.Lock()


class OverlapWarning(XfaciesWarning):
    """Outlines overlap: where they do, :func:`rasterize` gives the pixels to the later row."""


# --------------------------------------------------------------------------- reading
def read_outlines(
    src: Any,
    *,
    crs: Any = None,
    id_column: str | None = None,
) -> Any:
    """Read and normalise glacier outlines.

    Parameters
    ----------
    src
        A :class:`geopandas.GeoDataFrame`, or a path to a vector file that
        geopandas can read (shapefile, GeoPackage, GeoJSON, ...).
    crs
        Reproject the outlines to this CRS (anything :mod:`pyproj` understands,
        e.g. ``"EPSG:32632"`` or ``da.rio.crs``).  ``None`` keeps the source CRS.
    id_column
        Column holding the glacier id.  By default the first present of
        :data:`ID_COLUMNS` (``glacier_id``, ``RGIId`` (RGI 6), ``rgi_id`` (RGI 7),
        ``RGIID``, ``glac_id`` / ``GLIMSId`` (GLIMS), ``id``) is used; when none is
        present, ids ``"G0001"``, ``"G0002"``, ... are made in row order.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with a string column ``glacier_id`` (the original id column is
        kept), only polygonal geometries (invalid ones repaired with
        :func:`shapely.make_valid`, non-polygonal parts dropped, rows left empty
        dropped with a warning), a fresh ``RangeIndex``, in ``crs`` if given.

    Raises
    ------
    FileNotFoundError
        ``src`` is a path that does not exist.
    ValueError
        The file cannot be read (malformed, truncated, not a vector format), the
        outlines are empty, hold no polygons, have no CRS, or the id column has
        duplicates.
    KeyError
        ``id_column`` is not a column.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Polygon
    >>> bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])  # self-intersecting
    >>> gdf = gpd.GeoDataFrame({"RGIId": ["RGI60-11.00001"]}, geometry=[bowtie], crs="EPSG:32632")
    >>> out = read_outlines(gdf)
    >>> out.loc[0, "glacier_id"], bool(out.geometry.is_valid.all()), float(out.area[0])
    ('RGI60-11.00001', True, 50.0)
    """
    import geopandas as gpd

    if isinstance(src, gpd.GeoDataFrame):
        gdf = src.copy()
        where = "the GeoDataFrame"
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise FileNotFoundError(
                f"outline file {str(path)!r} does not exist; pass the path of a shapefile, "
                "GeoPackage or GeoJSON, or a GeoDataFrame"
            )
        where = f"outline file {str(path)!r}"
        try:
            gdf = gpd.read_file(path)
        except Exception as err:  # pyogrio or fiona errors: malformed, truncated, unsupported
            raise InputError(
                f"{where} cannot be read as vector outlines ({type(err).__name__}: {err}); check that "
                "it is a complete, valid shapefile (with its .shx/.dbf/.prj), GeoPackage or GeoJSON, "
                "e.g. by opening it in QGIS or with ogrinfo"
            ) from None
    else:
        raise TypeError(
            f"read_outlines expects a GeoDataFrame or a path, got {type(src).__name__}"
        )

    if len(gdf) == 0:
        raise InputError(f"{where} has no features (rows); it must hold glacier polygons")
    if gdf.crs is None:
        raise GridError(
            f"{where} has no CRS, so it cannot be matched to imagery; set it with "
            "gdf = gdf.set_crs('EPSG:....') (RGI and GLIMS files are in EPSG:4326)"
        )

    # ---- glacier id
    if id_column is None:
        id_column = next((c for c in ID_COLUMNS if c in gdf.columns), None)
        if id_column is None:  # case-insensitive second chance
            lower = {str(c).lower(): c for c in gdf.columns}
            id_column = next((lower[c.lower()] for c in ID_COLUMNS if c.lower() in lower), None)
    elif id_column not in gdf.columns:
        raise KeyError(
            f"id_column={id_column!r} is not a column of {where}; columns are "
            f"{[c for c in gdf.columns if c != gdf.geometry.name]}"
        )
    if id_column is None:
        ids = pd.Series([f"G{i:04d}" for i in range(1, len(gdf) + 1)], index=gdf.index)
    else:
        col = gdf[id_column]
        if col.isna().any():
            raise InputError(
                f"id column {id_column!r} of {where} has {int(col.isna().sum())} missing "
                "value(s); fill them or pass another id_column"
            )
        ids = col.astype(str)
    gdf["glacier_id"] = ids.astype(object).to_numpy()

    # ---- geometries: keep polygonal parts of valid geometries, in 2-D (RGI 7 ships Z coordinates)
    import shapely

    raw = shapely.force_2d(gdf.geometry.to_numpy())
    xy, row = shapely.get_coordinates(raw, return_index=True)
    bad_rows = np.unique(row[~np.isfinite(xy).all(axis=1)])
    if bad_rows.size:
        ids_bad = list(gdf["glacier_id"].iloc[bad_rows])
        raise InputError(
            f"{len(ids_bad)} outline(s) of {where} have non-finite (NaN or infinite) vertex coordinates: "
            f"{ids_bad[:10]}{' ...' if len(ids_bad) > 10 else ''}; fix those geometries or drop the rows")
    geoms = np.array([_polygonal(g) for g in raw], dtype=object)
    empty = np.array([g is None for g in geoms])
    if empty.all():
        kinds = sorted({g.geom_type for g in gdf.geometry if g is not None and not g.is_empty})
        raise InputError(
            f"{where} holds no polygons (geometry types: {kinds or ['empty']}); glacier "
            "outlines must be Polygon or MultiPolygon"
        )
    if empty.any():
        dropped = list(gdf["glacier_id"][empty])
        warnings.warn(
            f"dropped {int(empty.sum())} outline(s) without a polygonal geometry: "
            f"{dropped[:10]}{' ...' if len(dropped) > 10 else ''}",
            InputWarning,
            stacklevel=2,
        )
    gdf = gdf.loc[~empty].copy()
    gdf = gdf.set_geometry(gpd.GeoSeries(list(geoms[~empty]), index=gdf.index, crs=gdf.crs))

    dup = gdf["glacier_id"].duplicated(keep=False)
    if dup.any():
        raise InputError(
            f"glacier ids are not unique in {where} (column {id_column!r}): "
            f"{sorted(set(gdf['glacier_id'][dup]))[:10]}; merge the parts first, e.g. "
            f"gdf.dissolve(by={id_column!r}).reset_index(), or pass another id_column"
        )

    if crs is not None:
        gdf = gdf.to_crs(crs)
    return gdf.reset_index(drop=True)


def _polygonal(geom: Any) -> Any:
    """Valid polygonal part of ``geom`` (Polygon or MultiPolygon), or ``None``."""
    import shapely
    from shapely.geometry import MultiPolygon

    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if geom.geom_type in _POLYGONAL:
        return geom
    parts = [
        p
        for g in getattr(geom, "geoms", [geom])
        for p in (getattr(g, "geoms", [g]) if g.geom_type == "MultiPolygon" else [g])
        if p.geom_type == "Polygon" and not p.is_empty
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


# --------------------------------------------------------------------------- grids
def _grid_crs(like: xr.DataArray | xr.Dataset) -> Any:
    """The grid's CRS as a pyproj CRS (what GeoPandas and rioxarray take)."""
    from pyproj import CRS

    return CRS.from_wkt(spatial.geobox(like).crs.to_wkt())


def _spatial_chunks(like: xr.DataArray | xr.Dataset, ydim: str, xdim: str) -> tuple | None:
    """(y chunks, x chunks) when ``like`` is dask-backed, else None."""
    try:
        chunks = like.chunksizes
    except ValueError as err:  # Dataset with inconsistent chunks
        raise InputError(
            f"`like` has inconsistent chunks between variables ({err}); pass one "
            "variable or unify them with like.unify_chunks()"
        ) from None
    if not chunks:
        return None
    if ydim in chunks and xdim in chunks:
        return tuple(chunks[ydim]), tuple(chunks[xdim])
    return None


# --------------------------------------------------------------------------- overlaps
def overlaps(outlines: Any, *, min_area: float = 0.0) -> pd.DataFrame:
    """Pairs of outlines whose interiors overlap, with the shared area.

    Parameters
    ----------
    outlines
        Glacier outlines (normalised with :func:`read_outlines` if needed), in a projected CRS
        for areas in m² (areas are in the units of the outlines' CRS).
    min_area
        Leave out pairs sharing at most this area (numerical slivers).

    Returns
    -------
    pandas.DataFrame
        One row per overlapping pair: ``first``, ``second`` (glacier ids, ``first`` is the
        earlier row), ``area`` (shared area), ``second_inside_first`` / ``first_inside_second``
        (one lies wholly inside the other).  Touching outlines (shared edges) do not overlap.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> gdf = gpd.GeoDataFrame({"rgi_id": ["A", "B", "C"]}, crs="EPSG:32632",
    ...                        geometry=[box(0, 0, 100, 100), box(20, 20, 40, 40), box(100, 0, 150, 50)])
    >>> overlaps(gdf).to_dict("records")  # C only touches A
    [{'first': 'A', 'second': 'B', 'area': 400.0, 'second_inside_first': True, 'first_inside_second': False}]
    """
    import shapely

    outlines = as_outlines(outlines)
    geoms = outlines.geometry.to_numpy()
    ids = [str(i) for i in outlines["glacier_id"]]
    cols = ["first", "second", "area", "second_inside_first", "first_inside_second"]
    if len(geoms) < 2:
        return pd.DataFrame(columns=cols)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if a.size:
        inner = shapely.relate_pattern(geoms[a], geoms[b], "T********")  # interiors meet
        a, b = a[inner], b[inner]
    area = shapely.area(shapely.intersection(geoms[a], geoms[b])) if a.size else np.zeros(0)
    big = area > min_area
    a, b, area = a[big], b[big], area[big]
    return pd.DataFrame({
        "first": [ids[i] for i in a], "second": [ids[j] for j in b], "area": area.astype(float),
        "second_inside_first": shapely.contains(geoms[a], geoms[b]).astype(bool) if a.size else np.zeros(0, bool),
        "first_inside_second": shapely.contains(geoms[b], geoms[a]).astype(bool) if a.size else np.zeros(0, bool),
    }, columns=cols)


def _warn_overlaps(outlines: Any, pixel_area: float, units: str) -> None:
    """Warn (:class:`OverlapWarning`) about overlapping outlines: the later row wins the pixels."""
    pairs = overlaps(outlines, min_area=0.01 * pixel_area)  # below 1 % of a pixel: slivers
    if pairs.empty:
        return
    shown = []
    for r in pairs.head(10).itertuples():
        how = (f" ({r.second!r} lies inside {r.first!r})" if r.second_inside_first
               else f" ({r.first!r} lies inside {r.second!r})" if r.first_inside_second else "")
        shown.append(f"{r.first!r} and {r.second!r} share {r.area:,.0f} {units}{how}")
    more = f"; and {len(pairs) - 10} more pair(s)" if len(pairs) > 10 else ""
    warnings.warn(
        f"glacier outlines overlap: {'; '.join(shown)}{more}. Where outlines overlap, the later row "
        "wins: those pixels count only for the glacier of the later row, so the earlier glacier's "
        "rasterised area, fractions and elevation range leave them out (a glacier nested in another "
        "is cut out of it). If that is not what you want, make the outlines disjoint first, e.g. "
        "outer.difference(inner) or gdf.overlay(...), or order the rows so that the glacier that "
        "should keep the shared pixels comes last (xfacies.outlines.overlaps(gdf) lists "
        "the pairs).", OverlapWarning, stacklevel=3)


# --------------------------------------------------------------------------- rasterising
def _burn(
    shapes: Sequence[tuple[bytes, int]],
    transform: Any,
    shape: tuple[int, int],
    all_touched: bool,
) -> np.ndarray:
    """Burn (WKB, value) pairs onto a block; later pairs overwrite earlier ones."""
    from rasterio.features import rasterize as _rio_rasterize
    import shapely

    out = np.zeros(shape, dtype=np.int32)
    if not shapes or 0 in shape:
        return out
    geoms = shapely.from_wkb([s for s, _ in shapes])
    # Concurrent rasterio.features.rasterize calls from dask threads now and then
    # emit a spurious NotGeoreferencedWarning (the result is right: the tests
    # compare every chunking with the eager burn).  One burn at a time keeps the
    # local warning filter from racing with itself; burning is cheap.
    with _BURN_LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no geotransform.*")
        return _rio_rasterize(
            zip(geoms, [int(v) for _, v in shapes]),
            out_shape=shape,
            transform=transform,
            fill=0,
            out=out,
            all_touched=all_touched,
            dtype="int32",
        )


def outlines_from_mask(mask: xr.DataArray, id: str | Mapping[int, str] | None = None, *,
                       min_pixels: int = 1) -> Any:
    """Glacier outlines from a raster mask: one glacier per connected region, or per id.

    The pixels' edges are traced exactly (rasterio's ``shapes``), so the outlines rasterise back
    to the same pixels (:func:`rasterize`, pixel centres).

    Parameters
    ----------
    mask
        ``(y, x)`` raster with a CRS: boolean (or 0/1; NaN counts as outside), each connected
        region (4-connected: pixels sharing an edge) becomes a glacier; or integer glacier ids
        (0 / negative outside), each id becomes a glacier (its parts a MultiPolygon).  A mask with
        more dims (e.g. ``time``) is refused: pick one, e.g. ``cube.isel(time=0, band=0).notnull()``.
    id
        Glacier ids: ``None`` numbers regions ``G0001``, ``G0002`` ... in the reading order of the mask's rows (an id
        raster keeps its values as text); a string is a prefix (``"silvretta"`` gives
        ``silvretta-1`` ...); a mapping gives the id of each value of an id raster.
    min_pixels
        Regions with fewer pixels are left out (with a warning counting them).

    Returns
    -------
    geopandas.GeoDataFrame
        ``glacier_id`` and ``n_pixels`` columns, polygons in the mask's CRS, ready for every
        stage (:func:`read_outlines`'s checks passed).

    Raises
    ------
    ValueError
        No CRS, not 2-D, nothing inside the mask, an id mapping that misses a value.

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> m = xr.DataArray(np.array([[1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 1]], bool), dims=("y", "x"),
    ...                  coords={"y": [25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]}).rio.write_crs(32632)
    >>> gdf = outlines_from_mask(m)
    >>> gdf["glacier_id"].tolist(), gdf["n_pixels"].tolist(), gdf.area.tolist()
    (['G0001', 'G0002'], [3, 2], [300.0, 200.0])
    """
    import geopandas as gpd
    import shapely
    from rasterio.features import shapes
    from scipy import ndimage

    if not isinstance(mask, xr.DataArray):
        raise TypeError(f"mask must be an xarray.DataArray (y, x) with a CRS, got {type(mask).__name__}")
    ydim, xdim = spatial.spatial_dims(mask)
    if mask.ndim != 2:
        raise InputError(f"the mask must be 2-D ({ydim}, {xdim}), got dims {mask.dims}: pick one layer, e.g. "
                         "cube.isel(time=0, band=0).notnull()")
    crs = spatial.crs_of(mask)
    if crs is None:
        raise GridError("the mask has no CRS; attach one with mask.rio.write_crs('EPSG:....')")
    mask = mask.transpose(ydim, xdim)
    t = spatial.transform(mask)
    v = np.asarray(mask.values)
    if v.dtype == bool or np.issubdtype(v.dtype, np.floating):
        inside = np.nan_to_num(v.astype(np.float64), nan=0.0) > 0
        labels, n = ndimage.label(inside)  # 4-connected
        values = list(range(1, n + 1))
        by_value = False
    elif np.issubdtype(v.dtype, np.integer):
        labels = np.where(v > 0, v, 0).astype(np.int64)
        values = sorted(int(u) for u in np.unique(labels) if u > 0)
        by_value = True
    else:
        raise TypeError(f"the mask must be boolean, 0/1 or integer glacier ids, got dtype {v.dtype}")
    if not values:
        raise InputError("the mask holds no pixel inside (no True / id > 0): nothing to outline")
    counts = np.bincount(labels.ravel(), minlength=max(values) + 1)
    small = [u for u in values if counts[u] < min_pixels]
    values = [u for u in values if counts[u] >= min_pixels]
    if small:
        warnings.warn(f"left out {len(small)} region(s) of fewer than {min_pixels} pixel(s)", InputWarning,
                      stacklevel=2)
    if not values:
        raise InputError(f"every region of the mask has fewer than min_pixels={min_pixels} pixels")
    polys: dict[int, list[Any]] = {u: [] for u in values}
    for geom, val in shapes(labels.astype(np.int32), mask=labels > 0, transform=t, connectivity=4):
        u = int(val)
        if u in polys:
            polys[u].append(shapely.geometry.shape(geom))
    if isinstance(id, Mapping):
        missing = [u for u in values if u not in id]
        if missing:
            raise InputError(f"id gives no glacier id for the mask value(s) {missing[:10]}")
        ids = [str(id[u]) for u in values]
    elif by_value:
        ids = [f"{id}-{u}" if isinstance(id, str) else str(u) for u in values]
    else:
        ids = [f"{id}-{k}" if isinstance(id, str) else f"G{k:04d}" for k in range(1, len(values) + 1)]
    geoms = [shapely.union_all(polys[u]) for u in values]
    gdf = gpd.GeoDataFrame({"glacier_id": ids, "n_pixels": [int(counts[u]) for u in values]},
                           geometry=geoms, crs=crs)
    return as_outlines(gdf)


def rasterize(
    outlines: Any,
    like: xr.DataArray | xr.Dataset,
    *,
    all_touched: bool = False,
    chunks: tuple[Sequence[int], Sequence[int]] | None = None,
) -> xr.DataArray:
    """Burn glacier outlines onto the grid of ``like`` as a glacier index.

    Parameters
    ----------
    outlines
        Glacier outlines (GeoDataFrame or path; normalised with
        :func:`read_outlines` unless they already have ``glacier_id``).  They
        are reprojected to the CRS of ``like``.
    like
        DataArray or Dataset with x/y pixel-centre coordinates and a rioxarray
        CRS (``like.rio.crs``).  When it is dask-backed the result is lazy with
        the same y/x chunks, one :func:`rasterio.features.rasterize` call per
        chunk with that chunk's own affine transform; the result is identical to
        the eager one whatever the chunks.
    all_touched
        Burn every pixel a polygon touches, not only those whose centre lies
        inside it.
    chunks
        ``(y chunks, x chunks)`` of a lazy result (e.g. a cube's ``chunks[-2:]``); default:
        those of ``like`` when it is dask-backed, else an eager result.

    Returns
    -------
    xarray.DataArray
        int32 ``(y, x)``: 0 outside every glacier, ``k`` inside the ``k``-th
        glacier (1-based, in row order of the normalised outlines).  Where
        polygons overlap, **later rows win** (an :class:`OverlapWarning` names
        the pairs and the shared area; :func:`overlaps` lists them).
        ``attrs["glacier_ids"]`` lists the ids in index order
        (``glacier_ids[k - 1]`` is glacier ``k``); the CRS is written with rioxarray.

    Warns
    -----
    OverlapWarning
        Outlines whose interiors overlap by more than 1 % of a pixel (touching
        outlines are fine).

    Raises
    ------
    ValueError
        ``like`` has no CRS, or the outlines do not overlap the grid (the
        message gives both bounds in the grid CRS).

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> from shapely.geometry import box
    >>> gdf = gpd.GeoDataFrame({"rgi_id": ["A", "B"]},
    ...                        geometry=[box(0, 0, 30, 20), box(20, 0, 40, 20)], crs="EPSG:32632")
    >>> grid = xr.DataArray(np.zeros((2, 4), "int8"), dims=("y", "x"),
    ...                     coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]}
    ...                     ).rio.write_crs("EPSG:32632").chunk({"x": 3})
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     idx = rasterize(gdf, grid)   # lazy: dask-backed like
    >>> str(w[0].message)[:58]
    "glacier outlines overlap: 'A' and 'B' share 200 m2. Where "
    >>> idx.values                   # the overlap (x = 25) goes to the later row
    array([[1, 1, 2, 2],
           [1, 1, 2, 2]], dtype=int32)
    """
    import dask
    import shapely

    outlines = as_outlines(outlines)
    crs = _grid_crs(like)
    ydim, xdim = spatial.spatial_dims(like)
    if outlines.crs != crs:
        outlines = outlines.to_crs(crs)
    ny, nx = like.sizes[ydim], like.sizes[xdim]
    transform = spatial.transform(like)
    ids = [str(i) for i in outlines["glacier_id"]]

    gbounds = spatial.bounds(like)
    obounds = tuple(float(b) for b in outlines.total_bounds)
    if (
        obounds[0] >= gbounds[2]
        or obounds[2] <= gbounds[0]
        or obounds[1] >= gbounds[3]
        or obounds[3] <= gbounds[1]
    ):
        raise GridError(
            f"the outlines do not overlap the grid: outline bounds {_fmt(obounds)} vs grid "
            f"bounds {_fmt(gbounds)} (minx, miny, maxx, maxy in {crs.to_string()}); check that "
            "the outlines and the imagery cover the same region and that both CRSs are right"
        )

    _warn_overlaps(outlines, abs(transform.a * transform.e - transform.b * transform.d),
                   "m2" if crs.is_projected else "square units of the CRS")
    geoms = outlines.geometry.to_numpy()
    values = np.arange(1, len(outlines) + 1)
    wkb = shapely.to_wkb(geoms)
    if chunks is None:
        chunks = _spatial_chunks(like, ydim, xdim)
    else:
        chunks = (tuple(int(c) for c in chunks[0]), tuple(int(c) for c in chunks[1]))
        if (sum(chunks[0]), sum(chunks[1])) != (ny, nx):
            raise InputError(f"chunks {chunks} do not add up to the grid's {ny} x {nx} pixels")

    if chunks is None:
        data: Any = _burn(list(zip(wkb, values)), transform, (ny, nx), all_touched)
    else:
        from xfacies.halo import from_block_tasks

        tree = shapely.STRtree(geoms)

        def block(window: tuple[int, int, int, int]) -> Any:
            y0, y1, x0, x1 = window
            t = transform @ transform.translation(x0, y0)
            (ax, ay), (bx, by) = t @ (0, 0), t @ (x1 - x0, y1 - y0)
            hit = np.sort(tree.query(shapely.box(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))))
            shapes = [(wkb[i], int(values[i])) for i in hit]  # keep row order: later rows win
            return dask.delayed(_burn, pure=True)(shapes, t, (y1 - y0, x1 - x0), all_touched)

        data = from_block_tasks(block, *chunks, np.int32)

    coords = {ydim: like[ydim].variable, xdim: like[xdim].variable}
    out = xr.DataArray(
        data,
        dims=(ydim, xdim),
        coords=coords,
        name="glacier_index",
        attrs={
            "long_name": "glacier index (0 = no glacier, k = glacier_ids[k-1])",
            "units": "1",
            "glacier_ids": ids,
            "all_touched": int(bool(all_touched)),
        },
    )
    import rioxarray  # noqa: F401  (registers .rio)

    return out.rio.write_crs(crs)


def _fmt(b: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in b) + ")"


# --------------------------------------------------------------------------- bboxes
def glacier_bboxes(
    outlines: Any,
    like: xr.DataArray | xr.Dataset | None = None,
    buffer: float = 0,
) -> pd.DataFrame:
    """Per-glacier bounding boxes.

    Parameters
    ----------
    outlines
        Glacier outlines (normalised with :func:`read_outlines` if needed).
    like
        Optional raster (with a rioxarray CRS): boxes are then given in its CRS.
    buffer
        Grow every box by this distance on each side (in CRS units, metres for
        a projected CRS).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``glacier_id`` with columns ``minx, miny, maxx, maxy``, in the
        outlines' CRS (or ``like``'s); ``attrs["crs"]`` holds the CRS string.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> gdf = gpd.GeoDataFrame({"rgi_id": ["A"]}, geometry=[box(0, 0, 30, 20)], crs="EPSG:32632")
    >>> glacier_bboxes(gdf, buffer=5).loc["A"].tolist()
    [-5.0, -5.0, 35.0, 25.0]
    """
    outlines = as_outlines(outlines)
    if like is not None:
        outlines = outlines.to_crs(_grid_crs(like))
    b = outlines.geometry.bounds
    df = pd.DataFrame(
        {
            "minx": b["minx"].to_numpy(dtype=float) - buffer,
            "miny": b["miny"].to_numpy(dtype=float) - buffer,
            "maxx": b["maxx"].to_numpy(dtype=float) + buffer,
            "maxy": b["maxy"].to_numpy(dtype=float) + buffer,
        },
        index=pd.Index(outlines["glacier_id"].to_numpy(dtype=object), name="glacier_id"),
    )
    df.attrs["crs"] = outlines.crs.to_string()
    return df


# --------------------------------------------------------------------------- cropping
def crop(
    obj: xr.DataArray | xr.Dataset,
    outlines: Any,
    buffer: float = 0,
) -> xr.DataArray | xr.Dataset:
    """Cut a raster (cube) to the bounding box of the outlines plus ``buffer``.

    Parameters
    ----------
    obj
        DataArray or Dataset with x/y pixel-centre coordinates and a rioxarray
        CRS.  Lazy objects stay lazy (this is index selection only).
    outlines
        Glacier outlines (normalised with :func:`read_outlines` if needed); they
        are reprojected to the CRS of ``obj``.  Select rows first to crop to
        one glacier, e.g. ``crop(cube, gdf[gdf.rgi_id == "RGI60-11.00897"], 500)``.
    buffer
        Grow the box by this distance on each side (CRS units, metres for a
        projected CRS).  Keep it at least as large as the terrain halos you need
        (cast shadows come from up to ``relief / tan(sun elevation)`` away).

    Returns
    -------
    Same type as ``obj``: every pixel whose centre lies in the buffered box.

    Raises
    ------
    ValueError
        The buffered box does not overlap ``obj`` (both bounds are given).

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> from shapely.geometry import box
    >>> grid = xr.DataArray(np.zeros((10, 10)), dims=("y", "x"),
    ...                     coords={"y": 95.0 - 10 * np.arange(10), "x": 5.0 + 10 * np.arange(10)}
    ...                     ).rio.write_crs("EPSG:32632")
    >>> gdf = gpd.GeoDataFrame({"rgi_id": ["A"]}, geometry=[box(20, 30, 40, 50)], crs="EPSG:32632")
    >>> c = crop(grid, gdf, buffer=10)
    >>> c.x.values.tolist(), c.y.values.tolist()
    ([15.0, 25.0, 35.0, 45.0], [55.0, 45.0, 35.0, 25.0])
    """
    outlines = as_outlines(outlines)
    crs = _grid_crs(obj)
    ydim, xdim = spatial.spatial_dims(obj)
    if outlines.crs != crs:
        outlines = outlines.to_crs(crs)
    minx, miny, maxx, maxy = (float(v) for v in outlines.total_bounds)
    minx, miny, maxx, maxy = minx - buffer, miny - buffer, maxx + buffer, maxy + buffer
    x = np.asarray(obj[xdim].values, dtype=float)
    y = np.asarray(obj[ydim].values, dtype=float)
    xs = np.flatnonzero((x >= minx) & (x <= maxx))
    ys = np.flatnonzero((y >= miny) & (y <= maxy))
    if xs.size == 0 or ys.size == 0:
        raise GridError(
            f"the outlines (buffered by {buffer}) do not overlap the raster: box "
            f"{_fmt((minx, miny, maxx, maxy))} vs raster bounds {_fmt(spatial.bounds(obj))} "
            f"(minx, miny, maxx, maxy in {crs.to_string()})"
        )
    return obj.isel({xdim: slice(int(xs[0]), int(xs[-1]) + 1), ydim: slice(int(ys[0]), int(ys[-1]) + 1)})


# --------------------------------------------------------------------------- coercion and grids
#: Default margin (metres) of :func:`grid` around the outlines: room for the terrain that casts
#: shadows on the glaciers and for the halos of the features.
DEFAULT_BUFFER = 500.0


def geobox_around(geom: Any, *, resolution: float = 10.0, crs: Any = "utm",
                  buffer: float = DEFAULT_BUFFER) -> "GeoBox":
    """An odc-geo GeoBox covering the odc ``Geometry`` ``geom`` plus ``buffer`` metres, with
    square pixels of ``resolution`` metres aligned to multiples of the resolution, in ``crs``
    (``"utm"``: the UTM zone of the geometry's centre; an EPSG code; any CRS string)."""
    from odc.geo.geobox import GeoBox

    if isinstance(crs, str) and crs.lower() == "utm":
        c = geom.centroid.to_crs("EPSG:4326").points[0]
        crs = spatial.utm_crs(c[0], c[1])
    elif isinstance(crs, (int, np.integer)):
        crs = f"EPSG:{int(crs)}"
    if not resolution or resolution <= 0:
        raise InputError(f"resolution must be a positive number of metres, got {resolution!r}")
    g = geom.to_crs(crs)
    if g.crs.geographic:
        raise GridError(f"crs {crs!r} is geographic (degrees); the working grid needs metres: "
                         "use crs='utm' or a projected EPSG code")
    if buffer:
        g = g.buffer(buffer)
    return GeoBox.from_geopolygon(g, resolution=resolution)


def grid(outlines: Any, resolution: float = 10.0, crs: Any = "utm", *, buffer: float = DEFAULT_BUFFER,
         chunks: int | None = 1024) -> xr.DataArray:
    """The working grid around glacier outlines: ``resolution``-metre pixels in ``crs`` (the
    UTM zone of the outlines by default), ``buffer`` metres beyond them.

    The result is a lazy ``(y, x)`` DataArray of zeros with the grid's coordinates and CRS
    (``spatial_ref``), usable as ``like=`` everywhere: :func:`xfacies.open_dem`,
    :func:`xfacies.open_stac` (``where=``), :func:`xfacies.terrain_features`,
    :func:`xfacies.outlines.rasterize`.

    Parameters
    ----------
    outlines
        Glacier outlines (a GeoDataFrame in any CRS, or a vector file).
    resolution
        Pixel size in metres (10 for Sentinel-2).
    crs
        ``"utm"`` (the UTM zone of the outlines' centre), an EPSG code or a CRS string.
    buffer
        Margin in metres around the outlines (shadows are cast from outside the glaciers).
    chunks
        y/x chunk size of the dask-backed template (``None``: NumPy).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> hef = gpd.GeoDataFrame({"rgi_id": ["RGI60-11.00897"]}, crs="EPSG:4326",
    ...                        geometry=[box(10.73, 46.78, 10.80, 46.82)])
    >>> g = grid(hef, resolution=10)
    >>> g.rio.crs.to_epsg(), float(g.x[1] - g.x[0]), float(g.y[1] - g.y[0])
    (32632, 10.0, -10.0)
    >>> bool(g.x.min() % 10 == 5)     # pixel centres on the half-resolution lattice
    True
    """
    import odc.geo.xr  # noqa: F401
    import rioxarray  # noqa: F401
    from odc.geo.geom import Geometry

    gdf = as_outlines(outlines)
    if len(gdf) == 0:
        raise InputError("the outlines are empty: there is no glacier to build a grid around")
    gbox = geobox_around(Geometry(gdf.geometry.union_all(), crs=gdf.crs), resolution=resolution,
                         crs=crs, buffer=buffer)
    template = odc.geo.xr.xr_zeros(gbox, dtype="uint8", chunks=None if chunks is None else (chunks, chunks))
    template = template.rename("grid").assign_attrs(resolution=float(resolution), units="1",
                                                    long_name="xfacies working grid")
    return template


def as_outlines(outlines: Any) -> Any:
    """Outlines as a normalised GeoDataFrame (``glacier_id`` column, polygons, a CRS):
    returned as they are when already normalised, else read with
    :func:`xfacies.outlines.read_outlines`."""
    import geopandas as gpd

    if isinstance(outlines, gpd.GeoDataFrame) and "glacier_id" in outlines.columns and (
            len(outlines) == 0 or outlines.attrs.get(_CHECKED) == _checked_key(outlines)):
        if outlines.crs is None:
            raise GridError("the outlines have no CRS; set it with gdf = gdf.set_crs('EPSG:....')")
        return outlines.reset_index(drop=True)  # checked already, or empty (each stage says so)
    # a glacier_id column of the user's own is checked like any other: unique, no missing ids,
    # polygons only (invalid ones repaired, empty and None geometries dropped with a warning)
    out = read_outlines(outlines, id_column="glacier_id" if isinstance(outlines, gpd.GeoDataFrame)
                        and "glacier_id" in outlines.columns else None)
    out.attrs[_CHECKED] = _checked_key(out)
    return out


#: ``GeoDataFrame.attrs`` key marking outlines that :func:`as_outlines` has checked (and for which rows).
_CHECKED = "xfacies_checked_outlines"


def _checked_key(gdf: Any) -> tuple[int, str, int]:
    """What a check was made for: the rows, the CRS and the geometries' identity (an edit afterwards,
    a new row or another CRS, means checking again)."""
    return (len(gdf), str(gdf.crs), id(gdf.geometry.values))


def glacier_index(outlines: Any, like: xr.DataArray | xr.Dataset, *,
                  all_touched: bool = False,
                  chunks: tuple[Sequence[int], Sequence[int]] | None = None) -> xr.DataArray:
    """Outlines as a glacier index on the grid of ``like`` (0 outside, ``k`` in glacier ``k``).

    ``outlines`` are vectors (rasterised with :func:`xfacies.outlines.rasterize`, with its
    ``all_touched`` and ``chunks``) or an index raster made that way (``attrs["glacier_ids"]``),
    which must lie on the grid of ``like`` (:func:`check_same_grid`).
    """
    if isinstance(outlines, xr.DataArray):
        if "glacier_ids" not in outlines.attrs:
            raise InputError(
                "a glacier-index DataArray needs attrs['glacier_ids'] (the ids in index "
                "order); make it with xfacies.outlines.rasterize(outlines, like)")
        ydim, xdim = spatial.spatial_dims(like)
        spatial.check_same_grid(outlines, like, "the glacier index", like_name="the class map")
        out = outlines.transpose(ydim, xdim)
        return out if chunks is None else out.chunk({ydim: tuple(chunks[0]), xdim: tuple(chunks[1])})
    return rasterize(outlines, like, all_touched=all_touched, chunks=chunks)


def glacier_mask(outlines: Any, like: xr.DataArray) -> xr.DataArray | None:
    """Boolean ``(y, x)`` glacier mask on the grid of ``like``, or ``None`` without outlines.

    ``outlines`` are vectors, or a raster (mask or index, > 0 inside) on the grid of ``like``;
    a raster is checked (:func:`check_same_grid`) and needs no GDAL stack.
    """
    if outlines is None:
        return None
    if isinstance(outlines, xr.DataArray):
        ydim, xdim = spatial.spatial_dims(like)
        if set(outlines.dims) != {ydim, xdim}:
            raise InputError(f"an outline raster must have dims ({ydim}, {xdim}), got {outlines.dims}")
        spatial.check_same_grid(outlines, like, "the outline raster")
        return outlines.transpose(ydim, xdim) > 0
    return glacier_index(outlines, like) > 0

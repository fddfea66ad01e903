"""Labels from your own polygons: a label raster on a cube's grid, and labelled points from it.

:func:`rasterize_labels`
    Hand-drawn polygons (one class per polygon, or a class column; a date column for polygons
    drawn on one scene) burnt onto a grid as an int8 label raster with CF flags, e.g. "snow
    inside the polygon, ice elsewhere inside the outline".
:func:`sample_points`
    A stratified sample of labelled pixels, as the point table :func:`patches_from_points`
    reads (class, date, scene, glacier, the pixel centre as geometry).

Examples
--------
>>> import numpy as np, geopandas as gpd, xarray as xr, rioxarray  # noqa: F401
>>> from shapely.geometry import box
>>> like = xr.DataArray(np.zeros((4, 5)), dims=("y", "x"),
...                     coords={"y": [35.0, 25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0, 45.0]}
...                     ).rio.write_crs("EPSG:32632")
>>> snow = gpd.GeoDataFrame(geometry=[box(0, 20, 30, 40)], crs="EPSG:32632")
>>> glacier = gpd.GeoDataFrame({"glacier_id": ["A"]}, geometry=[box(0, 0, 40, 40)], crs="EPSG:32632")
>>> lab = rasterize_labels(snow, like, value="snow", background="ice", within=glacier)
>>> lab.values.tolist()
[[1, 1, 1, 0, -1], [1, 1, 1, 0, -1], [0, 0, 0, 0, -1], [0, 0, 0, 0, -1]]
>>> lab.attrs["flag_meanings"].split()[:3]
['no_data', 'ice', 'snow']
>>> pts = sample_points(lab, n_per_class=2, seed=0)
>>> pts["class"].value_counts().sort_index().to_dict()
{'ice': 2, 'snow': 2}
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies import catalog, spatial
from xfacies.outlines import glacier_index, glacier_mask
from xfacies.errors import GridError, InputError, InputWarning

__all__ = ["rasterize_labels", "sample_points", "DATE_COLUMNS"]

#: Columns read as a polygon's date (the scene it was drawn on), in this order.
DATE_COLUMNS = ("date", "time", "datetime", "acquired")


def _class_list(names: list[str], classes: Sequence[str] | None) -> list[str]:
    """The label raster's classes in id order: given, or the catalogue's when every name is in it
    (ids = catalogue ids), else the names in order of appearance."""
    if classes is not None:
        classes = [str(c) for c in classes]
        missing = [n for n in names if n not in classes]
        if missing:
            raise InputError(f"classes={classes} misses {missing}, which the polygons or background use")
        return classes
    known = catalog.class_names()
    if all(n in known for n in names):
        return known
    return list(dict.fromkeys(names))


def _date_column(gdf: Any) -> str | None:
    return next((c for c in DATE_COLUMNS if c in gdf.columns), None)


def _burn(geoms: list[Any], values: list[int], shape: tuple[int, int], transform: Any,
          all_touched: bool) -> np.ndarray:
    from rasterio.features import rasterize

    if not geoms:
        return np.zeros(shape, np.int16)
    return rasterize(list(zip(geoms, values)), out_shape=shape, transform=transform, fill=0,
                     all_touched=all_touched, dtype="int16")


def rasterize_labels(
    polygons: Any,
    like: xr.DataArray | xr.Dataset,
    column: str | None = None,
    value: str | None = None,
    background: str | None = None,
    within: Any = None,
    *,
    classes: Sequence[str] | None = None,
    all_touched: bool = False,
) -> xr.DataArray:
    """Burn labelled polygons onto the grid of ``like`` as an int8 label raster.

    Parameters
    ----------
    polygons
        Label polygons (GeoDataFrame or a file GeoPandas reads), any CRS (reprojected to the
        grid's).  A ``date`` (or ``time``) column says which scene each polygon was drawn on.
    like
        The grid: a cube or any xarray object with a CRS.  With a ``time`` dimension the labels
        are ``(time, y, x)``: each date gets the polygons of that date (and the undated ones);
        a date without any polygon is all nodata.
    column, value
        The class of each polygon: a column of class names, or one class name for all.  Without
        either, a ``class`` column is used.
    background
        Class of the pixels in ``within`` (or everywhere, without ``within``) that no polygon
        covers, e.g. ``"ice"`` for "ice elsewhere on the glacier".  ``None``: nodata.
    within
        Glacier outlines (GeoDataFrame, file or a mask raster on the grid): pixels outside are
        nodata, polygons included.
    classes
        The class names in id order.  Default: the catalogue's (:data:`xfacies.CLASSES`, ids as
        the catalogue's) when every name is in it, else the names in order of appearance.
    all_touched
        Burn every pixel a polygon touches (default: pixels whose centre lies inside).

    Returns
    -------
    xarray.DataArray
        int8 ``labels``, ``-1`` = nodata, with CF ``flag_values`` / ``flag_meanings`` /
        ``flag_colors`` for ``classes`` (so :func:`xfacies.catalog.map_classes`, the plots and
        :func:`sample_points` read the names) and the grid's CRS.

    Raises
    ------
    ValueError
        Polygons of different classes that overlap (counted, with the classes), a class name
        not in ``classes``, polygons that miss the grid, no class given.
    """
    import geopandas as gpd

    if isinstance(polygons, (str, os.PathLike)):
        polygons = gpd.read_file(polygons)
    if not isinstance(polygons, gpd.GeoDataFrame):
        raise TypeError(f"polygons must be a GeoDataFrame or a file, got {type(polygons).__name__}")
    if polygons.crs is None:
        raise GridError("the label polygons have no CRS; set it with gdf = gdf.set_crs('EPSG:....')")
    if column is not None and value is not None:
        raise InputError("give column= (a class per polygon) or value= (one class for all), not both")
    if column is None and value is None:
        if "class" not in polygons.columns:
            raise InputError("say which class the polygons are: value='snow' (all of them) or column=<name of "
                             f"a class column>; the polygons' columns are {list(polygons.columns)}")
        column = "class"
    if column is not None and column not in polygons.columns:
        raise InputError(f"column {column!r} is not in the polygons (columns {list(polygons.columns)})")
    poly = polygons[polygons.geometry.notna() & ~polygons.geometry.is_empty]
    kinds = set(poly.geometry.geom_type)
    if kinds - {"Polygon", "MultiPolygon"}:
        raise InputError(f"label polygons must be Polygon or MultiPolygon, got {sorted(kinds)}; buffer lines or "
                         "points first (gdf.buffer(10)) or use them as points")
    names_of = [str(value)] * len(poly) if value is not None else [str(v) for v in poly[column]]
    if column is not None and poly[column].isna().any():
        raise InputError(f"{int(poly[column].isna().sum())} polygon(s) have no class in column {column!r}")
    names = list(dict.fromkeys(names_of + ([str(background)] if background is not None else [])))
    cls = _class_list(names, classes)
    ids = {n: i for i, n in enumerate(cls)}

    grid = like if isinstance(like, xr.DataArray) else next(iter(like.data_vars.values()))
    ydim, xdim = spatial.spatial_dims(grid)
    plane = grid.isel({d: 0 for d in grid.dims if d not in (ydim, xdim)}, drop=True).transpose(ydim, xdim)
    spatial.geobox(plane)  # a regular grid with a CRS, or a clear error
    crs = spatial.crs_of(plane)
    poly = poly.to_crs(crs)
    shape = (plane.sizes[ydim], plane.sizes[xdim])
    transform = spatial.transform(plane)
    from shapely.geometry import box

    extent = box(*spatial.bounds(plane))
    if not poly.empty and not poly.geometry.intersects(extent).any():
        raise GridError(f"none of the {len(poly)} label polygons touches the grid (bounds {extent.bounds}); "
                         "check their CRS and the area of the cube")
    inside = None
    if within is not None:
        inside = np.asarray(glacier_mask(within, plane).values, dtype=bool)

    tcol = _date_column(poly)
    dated = pd.to_datetime(poly[tcol]).dt.normalize() if tcol is not None else pd.Series(pd.NaT, index=poly.index)
    times = pd.DatetimeIndex(grid["time"].values).normalize() if "time" in grid.dims else None

    def one(day: pd.Timestamp | None) -> np.ndarray:
        if day is None:
            sel = np.ones(len(poly), bool)
        else:
            sel = (dated.isna() | (dated == day)).to_numpy()
            if tcol is not None and not (dated == day).any() and dated.notna().all():
                return np.full(shape, catalog.NODATA, np.int8)  # no polygon drawn on this date
        geoms = list(poly.geometry[sel])
        cls_here = [names_of[k] for k in np.flatnonzero(sel)]
        out = np.full(shape, catalog.NODATA, np.int8)
        if background is not None:
            out[:] = ids[str(background)]
        seen = np.zeros(shape, np.int16)
        for name in dict.fromkeys(cls_here):
            burnt = _burn([g for g, c in zip(geoms, cls_here) if c == name], [1] * cls_here.count(name),
                          shape, transform, all_touched) > 0
            clash = burnt & (seen > 0)
            if clash.any():
                raise InputError(f"label polygons of class {name!r} overlap polygons of another class on "
                                 f"{int(clash.sum())} pixel(s){'' if day is None else f' on {day.date()}'}; "
                                 "fix the polygons (one class per pixel)")
            seen[burnt] = 1
            out[burnt] = ids[name]
        if inside is not None:
            out[~inside] = catalog.NODATA
        return out

    attrs = catalog.class_flag_attrs("training labels", classes=cls)
    coords = {ydim: plane[ydim], xdim: plane[xdim]}
    if times is None:
        if tcol is not None and dated.notna().any() and dated.dropna().nunique() > 1:
            warnings.warn(f"the polygons were drawn on {dated.dropna().nunique()} dates but the grid has no time "
                          "dimension: all of them are burnt into one label raster (pass the cube to get labels "
                          "per date)", InputWarning, stacklevel=2)
        lab = xr.DataArray(one(None), dims=(ydim, xdim), coords=coords, name="labels", attrs=attrs)
    else:
        if tcol is not None and dated.notna().any():
            missing = sorted(set(dated.dropna()) - set(times))
            if missing:
                warnings.warn(f"{len(missing)} polygon date(s) have no scene in the grid and are left out: "
                              f"{[str(d.date()) for d in missing[:10]]}", InputWarning, stacklevel=2)
        stack = np.stack([one(day) for day in times])
        lab = xr.DataArray(stack, dims=("time", ydim, xdim), coords={"time": grid["time"].values, **coords},
                           name="labels", attrs=attrs)
    return lab.rio.write_crs(crs)


def sample_points(
    labels: xr.DataArray,
    n_per_class: int | Mapping[str, int] = 500,
    seed: int = 0,
    *,
    outlines: Any = None,
) -> Any:
    """A stratified random sample of labelled pixels, as a point table for training.

    Parameters
    ----------
    labels
        An int8 label raster ``(y, x)`` or ``(time, y, x)`` with CF flags
        (:func:`rasterize_labels`), ``-1`` = nodata.
    n_per_class
        Pixels per class (or ``{class: n}``); a class with fewer pixels gives all of them, with a
        warning.
    seed
        Seed of the draw (the same seed gives the same points).
    outlines
        Glacier outlines: each point gets the ``glacier`` it lies on (for folds by glacier).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per point: ``class`` (name), ``class_id``, ``date`` and ``scene`` (the date as
        text, the unit of folds by scene) when the labels have ``time``, ``glacier`` with
        ``outlines``, ``row`` / ``col`` (pixel indices) and the pixel centre as geometry, in the
        labels' CRS.  :func:`xfacies.train.patches_from_points` reads it as it is.
    """
    import geopandas as gpd

    if not isinstance(labels, xr.DataArray):
        raise TypeError(f"labels must be an xarray.DataArray label raster, got {type(labels).__name__}")
    ydim, xdim = spatial.spatial_dims(labels)
    has_t = "time" in labels.dims
    lab = labels.transpose(*(("time",) if has_t else ()), ydim, xdim)
    if lab.ndim != (3 if has_t else 2):
        raise InputError(f"labels must be (y, x) or (time, y, x), got dims {labels.dims}")
    v = np.asarray(lab.values)
    if not np.issubdtype(v.dtype, np.integer):
        raise TypeError(f"labels must hold integer class ids (-1 = nodata), got dtype {v.dtype}")
    table = catalog.map_classes(labels)
    rng = np.random.default_rng(seed)
    flat = v.reshape(-1)
    rows = []
    short = []
    for cid, name, _ in table:
        where = np.flatnonzero(flat == cid)
        if where.size == 0:
            continue
        n = int(n_per_class.get(name, 0) if isinstance(n_per_class, Mapping) else n_per_class)
        if n < 0:
            raise InputError(f"n_per_class must be >= 0, got {n} for {name!r}")
        if where.size < n:
            short.append(f"{name} ({where.size} < {n})")
        pick = np.sort(rng.choice(where, size=min(n, where.size), replace=False))
        rows.append((cid, name, pick))
    if short:
        warnings.warn(f"fewer labelled pixels than asked for: {', '.join(short)}; all of them are taken",
                      InputWarning, stacklevel=2)
    if not rows:
        raise InputError("the labels hold no labelled pixel (every value is nodata)")
    cid = np.concatenate([np.full(p.size, c, np.int16) for c, _, p in rows])
    name = np.concatenate([np.full(p.size, n, dtype=object) for _, n, p in rows])
    idx = np.concatenate([p for _, _, p in rows])
    shape = v.shape
    pos = np.unravel_index(idx, shape)
    r, c = pos[-2], pos[-1]
    x = np.asarray(lab[xdim].values)[c]
    y = np.asarray(lab[ydim].values)[r]
    data: dict[str, Any] = {"class": name, "class_id": cid, "row": r, "col": c}
    if has_t:
        days = pd.DatetimeIndex(lab["time"].values)[pos[0]]
        data["date"] = days
        data["scene"] = [str(d.date()) for d in days]
    pts = gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(x, y), crs=spatial.crs_of(labels))
    if outlines is not None:
        index = glacier_index(outlines, lab.isel(time=0, drop=True) if has_t else lab)
        ids = np.asarray([""] + [str(i) for i in index.attrs["glacier_ids"]], dtype=object)
        pts["glacier"] = ids[np.asarray(index.values)[r, c]]
    return pts.sort_values(["class_id", "row", "col"] + (["date"] if has_t else []), kind="stable").reset_index(
        drop=True)

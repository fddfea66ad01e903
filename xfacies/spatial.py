"""Grids, checked in one place: the grid primitives every stage shares.

Features, inference, products and STAC all take a grid (an xarray object with
``y``/``x`` pixel-centre coordinates and a CRS).  They go through these functions, so a raster
on another grid or a missing CRS give the same clear error everywhere.  Outlines (reading,
checking, rasterising, and the working grid around them) live one floor up, in
:mod:`xfacies.outlines`, which builds on these.

- :func:`geobox`, :func:`transform`, :func:`bounds`: the grid of an xarray object,
  from odc-geo (``obj.odc.geobox``) and rioxarray (one-pixel sides, where the
  coordinates alone give no pixel size);
- :func:`check_same_grid`: two rasters on the same grid (CRS and coordinates,
  not only the shape);
- :func:`utm_crs`: the UTM zone of a point.

The raster checks (:func:`check_same_grid`) need only numpy and xarray, so the inference core
runs without the GDAL stack; geoboxes need odc-geo and rioxarray.

Examples
--------
>>> import numpy as np, xarray as xr
>>> a = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"),
...                  coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]})
>>> check_same_grid(a.assign_coords(x=a.x + 1000.0), a, "the outline raster")
Traceback (most recent call last):
...
xfacies.errors.GridError: the outline raster is not on the grid of the features: its x coordinates differ (1005.0 .. 1025.0 vs 5.0 .. 25.0); put it on that grid first: rasterize the outlines on the features (xfacies.outlines.rasterize(outlines, like)) or reproject the raster (raster.rio.reproject_match(like))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xfacies.errors import GridError, MovedWarning

if TYPE_CHECKING:  # pragma: no cover
    from odc.geo.geobox import GeoBox

__all__ = ["utm_crs", "epsg_code", "geobox_differences", "geobox", "transform", "bounds", "crs_of", "require_north_up", "same_grid",
           "check_same_grid", "spatial_dims"]

def utm_crs(lon: float, lat: float) -> str:
    """The WGS 84 / UTM zone CRS of a point, e.g. ``"EPSG:32632"``, from the PROJ database
    (``pyproj.database.query_utm_crs_info``, which GeoPandas' ``estimate_utm_crs`` uses too).

    Examples
    --------
    >>> utm_crs(10.8, 46.8), utm_crs(-73.5, -49.3)
    ('EPSG:32632', 'EPSG:32718')
    """
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    found = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    if not found:
        raise GridError(f"no UTM zone contains lon {lon}, lat {lat} (UTM covers -80..84 degrees of latitude); "
                        "pass a projected crs= (e.g. a polar stereographic EPSG code)")
    south = lat < 0
    # a point on a zone border lies in two zones: the hemisphere's, lowest zone number first
    codes = sorted(int(c.code) for c in found if (int(c.code) >= 32700) == south) or [int(found[0].code)]
    return f"EPSG:{codes[0]}"


def spatial_dims(obj: xr.DataArray | xr.Dataset) -> tuple[str, str]:
    """``(y, x)`` dimension names of ``obj`` (``y``/``x``, or rioxarray's detection)."""
    if "y" in obj.dims and "x" in obj.dims:
        return "y", "x"
    try:
        import rioxarray  # noqa: F401

        return obj.rio.y_dim, obj.rio.x_dim
    except Exception:  # rioxarray's MissingSpatialDimensionError, or no rioxarray
        raise GridError(
            f"expected spatial dimensions named y and x, got dims {tuple(obj.dims)}; rename them, "
            "e.g. da.rename(lat='y', lon='x'), or reproject to a projected grid"
        ) from None


def crs_of(obj: xr.DataArray | xr.Dataset) -> str | None:
    """The CRS of ``obj`` as WKT (from its grid-mapping variable, as rioxarray and odc-geo
    write it), or ``None``.  Needs no GDAL stack."""
    for name in (obj.attrs.get("grid_mapping"), getattr(obj, "encoding", {}).get("grid_mapping"),
                 "spatial_ref"):
        if name and name in obj.coords:
            attrs = obj.coords[name].attrs
            wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
            if wkt:
                return str(wkt)
    return None


def same_crs(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        from pyproj import CRS
    except ImportError:  # no GDAL stack: WKT strings that differ are treated as different
        return False
    return CRS.from_user_input(a) == CRS.from_user_input(b)


def epsg_code(crs: Any) -> int | None:
    """The EPSG code of a CRS (anything pyproj understands), or ``None`` when it has none.

    Examples
    --------
    >>> epsg_code("EPSG:32632"), epsg_code("+proj=utm +zone=32 +datum=WGS84 +units=m +no_defs")
    (32632, 32632)
    >>> epsg_code(None) is None
    True
    """
    if crs is None:
        return None
    from pyproj import CRS

    code = CRS.from_user_input(crs).to_epsg()
    return int(code) if code else None


def geobox(obj: xr.DataArray | xr.Dataset) -> "GeoBox":
    """The odc-geo :class:`~odc.geo.geobox.GeoBox` (CRS, shape, affine) of ``obj``.

    Raises
    ------
    ValueError
        No ``y``/``x`` dims, no CRS, or coordinates that are not a regular grid.

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> g = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"),
    ...                  coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]}).rio.write_crs(32632)
    >>> geobox(g).shape, geobox(g).crs.epsg
    (Shape2d(x=3, y=2), 32632)
    """
    import odc.geo.xr  # noqa: F401  (registers .odc)
    from odc.geo.geobox import GeoBox

    ydim, xdim = spatial_dims(obj)
    crs = crs_of(obj)
    if crs is None:
        raise GridError(
            "the grid has no CRS; attach one with obj = obj.rio.write_crs('EPSG:....') "
            "(x/y must be projected coordinates in metres)"
        )
    for d in (ydim, xdim):
        _check_regular(obj, d)
    gbox = obj.odc.geobox if (ydim, xdim) == ("y", "x") else None
    if gbox is None or gbox.crs is None:
        import rioxarray  # noqa: F401

        # a one-pixel side: the coordinates give no pixel size, the stored transform does
        t = obj.rio.transform(recalc=False)
        _check_centres(obj, t, ydim, xdim)
        gbox = GeoBox((obj.sizes[ydim], obj.sizes[xdim]), t, crs)
    return gbox


def _check_regular(obj: xr.DataArray | xr.Dataset, dim: str) -> None:
    """Refuse coordinates along ``dim`` that are not a regular grid: a gap, a shuffled or repeated
    coordinate (a transform from the first two would place every other pixel wrongly)."""
    if dim not in obj.coords or obj.sizes[dim] < 3:
        return
    v = np.asarray(obj[dim].values, dtype=np.float64)
    step = np.diff(v)
    d0 = step[0]
    bad = np.flatnonzero(~np.isfinite(step) | (np.abs(step - d0) > 1e-6 * max(abs(d0), 1e-12) + 1e-9))
    if d0 == 0 or bad.size:
        k = int(bad[0]) if bad.size else 0
        raise GridError(
            f"the {dim!r} coordinates are not a regular grid: the first step is {d0:g} but "
            f"{dim}[{k}] = {v[k]:g} -> {dim}[{k + 1}] = {v[k + 1]:g} steps {step[k]:g} ({bad.size} irregular "
            "step(s): a gap, or shuffled or repeated coordinates). xfacies needs evenly spaced, sorted pixel "
            f"centres: sort with obj.sortby({dim!r}) (then obj.isel({dim}=slice(None, None, -1)) for north-up "
            "y), or resample onto a regular grid (obj.rio.reproject(...) / xfacies.grid(...))")


def _check_centres(obj: xr.DataArray | xr.Dataset, t: Any, ydim: str, xdim: str) -> None:
    """Refuse a transform whose first pixel centre is not the first x/y coordinate: with a
    one-pixel side and no stored transform (``spatial_ref`` ``GeoTransform``) rioxarray falls
    back to the identity, which would place the grid at (0, 0) in 1 m pixels."""
    cx, cy = t @ (0.5, 0.5)
    for d, c, step in ((xdim, cx, abs(t.a)), (ydim, cy, abs(t.e))):
        if d in obj.coords and obj.sizes[d] >= 1:
            v = float(np.asarray(obj[d].values)[0])
            if not np.isclose(v, c, rtol=0.0, atol=max(1e-6 * step, 1e-9)):
                one = [n for n in (ydim, xdim) if obj.sizes[n] == 1]
                raise GridError(
                    f"the grid has one pixel along {' and '.join(one) or d} and no stored transform, so "
                    "its pixel size is unknown (the coordinates of one pixel do not give it). Write the "
                    "transform before selecting the pixels, e.g. obj = full.rio.write_transform("
                    "full.rio.transform()).isel(y=[i]), or keep at least 2 pixels along each axis"
                )


def transform(obj: xr.DataArray | xr.Dataset) -> Any:
    """Affine transform (pixel corners) of the grid of ``obj``, from its coordinates.

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray  # noqa: F401
    >>> g = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"),
    ...                  coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]}).rio.write_crs(32632)
    >>> tuple(transform(g))[:6]
    (10.0, 0.0, 0.0, 0.0, -10.0, 20.0)
    """
    return geobox(obj).transform


def bounds(obj: xr.DataArray | xr.Dataset) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of the grid of ``obj`` (pixel edges, in its CRS)."""
    bb = geobox(obj).extent.boundingbox
    return float(bb.left), float(bb.bottom), float(bb.right), float(bb.top)


def require_north_up(obj: xr.DataArray | xr.Dataset, what: str, name: str, *,
                     dims: tuple[str, ...] = ("y", "x"), why: str = "") -> None:
    """Refuse a grid that is south-up (``y`` increasing) or mirrored east-west (``x`` decreasing).
    Needs no GDAL stack.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"), coords={"y": [5.0, 15.0], "x": [5.0, 15.0]})
    >>> require_north_up(a, "the cube", "cube")
    Traceback (most recent call last):
    ...
    xfacies.errors.GridError: the cube's y coordinate must decrease (north-up: row 0 is the north), but it runs the other way. Flip the cube first, cube.isel(y=slice(None, None, -1))
    """
    rules = {"y": "decrease (north-up: row 0 is the north)", "x": "increase (west to east)"}
    owner = what + ("'" if what.endswith("s") else "'s")
    for d in dims:
        if d in obj.coords and obj.sizes[d] > 1:
            v = np.asarray(obj[d].values[:2], dtype=float)
            if (v[1] > v[0]) if d == "y" else (v[1] < v[0]):
                raise GridError(
                    f"{owner} {d} coordinate must {rules[d]}, but it runs the other way{why}. Flip "
                    f"{what} first, {name}.isel({d}=slice(None, None, -1))"
                    + (", and any outline raster with it" if what == "the features" else ""))


def _span(v: np.ndarray) -> str:
    return f"{v[0]:.1f} .. {v[-1]:.1f}" if v.size else "empty"


def _grid_mismatch(obj: xr.DataArray | xr.Dataset, like: xr.DataArray | xr.Dataset,
                   what: str, like_name: str) -> str | None:
    """Why ``obj`` is not on the grid of ``like`` (an error message), or ``None``."""
    fix = (f"put it on that grid first: rasterize the outlines on {like_name} "
           "(xfacies.outlines.rasterize(outlines, like)) or reproject the raster "
           "(raster.rio.reproject_match(like))")
    ydim, xdim = spatial_dims(like)
    if ydim not in obj.dims or xdim not in obj.dims:
        return f"{what} needs the spatial dims ({ydim}, {xdim}) of {like_name}, got {tuple(obj.dims)}"
    for d in (ydim, xdim):
        if obj.sizes[d] != like.sizes[d]:
            return (f"{what} is not on the grid of {like_name}: {obj.sizes[d]} pixels along {d} vs "
                    f"{like.sizes[d]}; {fix}")
        if d in obj.coords and d in like.coords:
            a = np.asarray(obj[d].values, dtype=float)
            b = np.asarray(like[d].values, dtype=float)
            step = abs(float(b[1] - b[0])) if b.size > 1 else 1.0
            if not np.allclose(a, b, rtol=0.0, atol=1e-6 * max(step, 1e-9)):
                return (f"{what} is not on the grid of {like_name}: its {d} coordinates differ "
                        f"({_span(a)} vs {_span(b)}); {fix}")
    ca, cb = crs_of(obj), crs_of(like)
    if ca is not None and cb is not None and not same_crs(ca, cb):
        return f"{what} is in another CRS than {like_name}; reproject it: raster.rio.reproject_match(features)"
    return None


def _crs_label(crs: Any) -> str:
    """``EPSG:nnnn`` where the CRS has a code, else its text (``None`` for none)."""
    code = epsg_code(str(crs)) if crs is not None else None
    return f"EPSG:{code}" if code else str(crs)


def geobox_differences(gbox: "GeoBox", like: "GeoBox") -> list[str]:
    """How the odc-geo GeoBox ``gbox`` differs from ``like`` (size, CRS, pixel grid), one phrase
    each; empty when they are the same grid (transforms equal within 1e-6 of a pixel).  For files
    whose headers are compared before any pixel is read (``xfacies apply``).

    Examples
    --------
    >>> from affine import Affine
    >>> from odc.geo.geobox import GeoBox
    >>> a = GeoBox((3, 4), Affine(10, 0, 0, 0, -10, 30), "EPSG:32632")
    >>> geobox_differences(GeoBox((3, 4), Affine(10, 0, 5, 0, -10, 30), "EPSG:32633"), a)
    ['CRS EPSG:32633 instead of EPSG:32632', 'transform (10.0, 0.0, 5.0, 0.0, -10.0, 30.0) instead of (10.0, 0.0, 0.0, 0.0, -10.0, 30.0)']
    """
    problems = []
    (h0, w0), (h1, w1) = like.shape, gbox.shape
    if (h0, w0) != (h1, w1):
        problems.append(f"size {w1} x {h1} px instead of {w0} x {h0}")
    c0, c1 = like.crs, gbox.crs
    if (c0 is None) != (c1 is None) or (c0 is not None and not same_crs(str(c0), str(c1))):
        problems.append(f"CRS {_crs_label(c1)} instead of {_crs_label(c0)}")
    t0, t1 = like.affine, gbox.affine
    if not t0.almost_equals(t1, precision=1e-6 * max(abs(t0.a), abs(t0.e), 1e-12)):
        problems.append(f"transform {tuple(t1)[:6]} instead of {tuple(t0)[:6]}")
    return problems


def same_grid(obj: xr.DataArray | xr.Dataset, like: xr.DataArray | xr.Dataset) -> bool:
    """Whether ``obj`` lies on the grid of ``like`` (the test of :func:`check_same_grid`)."""
    return _grid_mismatch(obj, like, "obj", "like") is None


def check_same_grid(obj: xr.DataArray | xr.Dataset, like: xr.DataArray | xr.Dataset,
                    what: str, *, like_name: str = "the features") -> None:
    """Refuse ``obj`` unless it lies on the grid of ``like``: same y/x sizes and
    coordinates, and the same CRS where both declare one.  Needs no GDAL stack.

    Raises
    ------
    ValueError
        Naming ``what``, what differs, and how to put it on the grid.
    """
    why = _grid_mismatch(obj, like, what, like_name)
    if why is not None:
        raise GridError(why)


#: Names that moved to :mod:`xfacies.outlines` (kept here for one release, with a
#: :class:`~xfacies.errors.MovedWarning`, a FutureWarning).
_MOVED = ("grid", "geobox_around", "as_outlines", "glacier_index", "glacier_mask", "DEFAULT_BUFFER")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(f"xfacies.spatial.{name} moved to xfacies.outlines.{name}; the old name goes in "
                      "the next release", MovedWarning, stacklevel=2)
        return getattr(importlib.import_module("xfacies.outlines"), name)
    raise AttributeError(f"module 'xfacies.spatial' has no attribute {name!r}")

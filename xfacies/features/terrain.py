"""Terrain kernels: slope, aspect, hillshade, cast shadows and edge distance.

Pure NumPy functions (array in, array out) applied block by block with halos
(:func:`xfacies.halo.map_halo`) by :mod:`xfacies.features.compute`.  Conventions shared by all
of them:

* arrays are north-up like GeoTIFFs: row 0 is the northern edge, rows run
  south, columns run east;
* ``res`` is the (square) pixel size in metres;
* azimuths are in degrees clockwise from north, sun elevations in degrees
  above the horizon;
* elevations are in metres.

Examples
--------
>>> import numpy as np
>>> from xfacies.features import terrain
>>> dem = np.add.outer(-10.0 * np.arange(5), np.zeros(5))  # drops 10 m per 10 m south
>>> float(terrain.slope_horn(dem, 10.0)[2, 2])
45.0
>>> float(terrain.aspect_horn(dem, 10.0)[2, 2])  # faces (and drains) south
180.0
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from xfacies.compat import renamed_keywords
from xfacies.errors import InputError

__all__ = [
    "horn_gradient",
    "slope_horn",
    "aspect_horn",
    "hillshade",
    "cast_shadow",
    "shadow_length_bound",
    "distance_to_edge",
]

# Value standing in for "no terrain" beyond the array when marching rays.
_NO_TERRAIN = -1.0e30
# Elements per row strip marched through all the steps of :func:`cast_shadow` (cache-sized).
_STRIP = 1 << 15


def _as_dem(dem: ArrayLike) -> NDArray[np.floating]:
    arr = np.asarray(dem)
    if arr.ndim != 2:
        raise InputError(f"dem must be a 2-D (rows, columns) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


@renamed_keywords(res="resolution")
def horn_gradient(dem: ArrayLike, resolution: float) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Terrain gradient by Horn's (1981) 3x3 weighted differences.

    Parameters
    ----------
    dem
        2-D elevation array (metres), row 0 = north.
    resolution
        Pixel size in metres.

    Returns
    -------
    dz_deast, dz_dnorth
        Elevation change per metre towards east and towards north (same dtype
        as ``dem`` for floating input).  Edges use nearest-value padding, so a
        border pixel sees its own row/column repeated outside the array.

    Examples
    --------
    >>> import numpy as np
    >>> dem = np.tile(np.arange(4.0) * 2.0, (4, 1))  # rises 2 m per 10 m to the east
    >>> gx, gy = horn_gradient(dem, 10.0)
    >>> float(gx[1, 1]), float(gy[1, 1])
    (0.2, 0.0)
    """
    z = _as_dem(dem)
    p = np.pad(z, 1, mode="edge")
    a, b, c = p[:-2, :-2], p[:-2, 1:-1], p[:-2, 2:]
    d, f = p[1:-1, :-2], p[1:-1, 2:]
    g, h, i = p[2:, :-2], p[2:, 1:-1], p[2:, 2:]
    scale = 1.0 / (8.0 * float(resolution))
    dz_deast = ((c + 2 * f + i) - (a + 2 * d + g)) * scale
    dz_dnorth = ((a + 2 * b + c) - (g + 2 * h + i)) * scale  # row 0 is north
    return dz_deast, dz_dnorth


@renamed_keywords(res="resolution")
def slope_horn(dem: ArrayLike, resolution: float) -> NDArray[np.floating]:
    """Slope in degrees (0 = flat) by Horn's method.

    Parameters
    ----------
    dem
        2-D elevation array in metres, row 0 = north.
    resolution
        Pixel size in metres.

    Returns
    -------
    numpy.ndarray
        Slope in degrees, same shape as ``dem``; edges by nearest-value padding.

    Examples
    --------
    >>> import numpy as np
    >>> dem = np.tile(np.arange(5.0) * 10.0, (5, 1))  # 10 m rise per 10 m pixel
    >>> float(slope_horn(dem, 10.0)[2, 2])
    45.0
    """
    gx, gy = horn_gradient(dem, resolution)
    return np.degrees(np.arctan(np.hypot(gx, gy)))


@renamed_keywords(res="resolution")
def aspect_horn(dem: ArrayLike, resolution: float) -> NDArray[np.floating]:
    """Aspect: the downslope direction in degrees clockwise from north.

    0 = the slope faces (drains towards) north, 90 = east, 180 = south,
    270 = west; values lie in ``[0, 360)``.  Perfectly flat cells (zero
    gradient) have no aspect and are ``NaN``.

    Parameters
    ----------
    dem
        2-D elevation array in metres, row 0 = north.
    resolution
        Pixel size in metres.

    Examples
    --------
    >>> import numpy as np
    >>> dem = np.tile(np.arange(5.0)[::-1] * 5.0, (5, 1))  # falls towards the east
    >>> float(aspect_horn(dem, 10.0)[2, 2])
    90.0
    """
    gx, gy = horn_gradient(dem, resolution)
    asp = np.degrees(np.arctan2(-gx, -gy)) % 360.0
    return np.where((gx == 0) & (gy == 0), np.nan, asp)


def _sun_vector(azimuth: float, elevation: float) -> tuple[float, float, float]:
    az, el = math.radians(azimuth), math.radians(elevation)
    return math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)


@renamed_keywords(res="resolution")
def hillshade(dem: ArrayLike, resolution: float, azimuth: float, elevation: float) -> NDArray[np.floating]:
    """Hillshade = ``max(0, cos(incidence angle))`` for a given sun position.

    The incidence angle is the angle between the (Horn) surface normal and
    the direction to the sun.  The result is **not** divided or multiplied by
    ``cos(zenith)``: a flat surface gets ``sin(elevation)``, a slope facing
    the sun squarely gets 1, a slope facing away steeper than the sun
    elevation gets 0.  Cast shadows from surrounding terrain are not included
    (see :func:`cast_shadow`).

    Parameters
    ----------
    dem
        2-D elevation array in metres, row 0 = north.
    resolution
        Pixel size in metres.
    azimuth
        Sun azimuth, degrees clockwise from north.
    elevation
        Sun elevation above the horizon, degrees.

    Returns
    -------
    numpy.ndarray
        Values in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.zeros((4, 4))
    >>> round(float(hillshade(flat, 10.0, 150.0, 30.0)[0, 0]), 6)
    0.5
    """
    gx, gy = horn_gradient(dem, resolution)
    se, sn, su = _sun_vector(azimuth, elevation)
    cos_i = (su - gx * se - gy * sn) / np.sqrt(1.0 + gx * gx + gy * gy)
    return np.clip(cos_i, 0.0, 1.0)


def shadow_length_bound(relief: ArrayLike, elevation: ArrayLike) -> NDArray[np.floating] | float:
    """Longest possible cast shadow (metres) for a terrain relief and sun elevation.

    ``relief / tan(elevation)``: no terrain of that relief can shade a point
    farther away than this, so it is the halo a block-wise cast-shadow
    computation needs.

    Examples
    --------
    >>> round(shadow_length_bound(1000.0, 45.0), 6)
    1000.0
    """
    out = np.asarray(relief, dtype=np.float64) / np.tan(np.radians(np.asarray(elevation, dtype=np.float64)))
    return float(out) if out.ndim == 0 else out


@renamed_keywords(res="resolution")
def cast_shadow(
    dem: ArrayLike,
    resolution: float,
    azimuth: float,
    elevation: float,
    max_distance: float | None = None,
) -> NDArray[np.uint8]:
    """Cast-shadow mask by line of sight towards the sun: 1 = sunlit, 0 = shadow.

    A pixel is in shadow if the terrain anywhere along the ray from its
    centre towards the sun (up to ``max_distance`` metres) rises above the
    ray.  All pixels are marched at once: at step ``k`` the ray has advanced
    exactly ``k`` pixels along the dominant axis of the sun direction (so it
    crosses every row or every column on its way once) and the DEM is
    sampled there by linear interpolation between the two cells straddling
    the ray across that axis.  Each step is a shifted view of the whole DEM,
    so the cost is ``O(steps x pixels)`` NumPy work with no per-pixel Python
    loop.  The march ends at ``max_distance``, at the array edge (terrain
    beyond the array is taken as absent, i.e. never shading) or when the ray
    has climbed above the array's relief, whichever comes first.

    Self-shadowing: a pixel on a slope facing away from the sun is counted
    as shadow only when this ray test says so (its up-slope neighbour
    towards the sun rises above the ray, i.e. the slope along the sun
    direction is steeper than the sun elevation).  Use :func:`hillshade`
    (0 where the slope faces away) for the local illumination term.

    Parameters
    ----------
    dem
        2-D elevation array in metres, row 0 = north.
    resolution
        Pixel size in metres.
    azimuth
        Sun azimuth, degrees clockwise from north.
    elevation
        Sun elevation, degrees.  ``<= 0`` gives all shadow.
    max_distance
        Longest shadow to look for, metres (default: unbounded, i.e. the
        array relief divided by ``tan(elevation)``).  A block-wise caller
        needs a halo of at least ``max_distance / res + 2`` pixels for
        results identical to a whole-array computation.

    Returns
    -------
    numpy.ndarray of uint8

    Examples
    --------
    A 95 m wall on flat ground with the sun in the south at 45 degrees
    shades the ground up to 95 m to its north (9 pixels of 10 m):

    >>> import numpy as np
    >>> dem = np.zeros((40, 5)); dem[30, :] = 95.0
    >>> lit = cast_shadow(dem, 10.0, azimuth=180.0, elevation=45.0)
    >>> lit[18:31, 2].tolist()
    [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    """
    z = _as_dem(dem)
    ny, nx = z.shape
    if elevation <= 0:
        return np.zeros(z.shape, dtype=np.uint8)
    if elevation >= 90 or z.size == 0:
        return np.ones(z.shape, dtype=np.uint8)
    zf = z.astype(np.float32) if z.dtype != np.float64 else z
    finite = np.isfinite(zf)
    if not finite.all():
        zf = np.where(finite, zf, _NO_TERRAIN).astype(zf.dtype)
        relief = float(np.nanmax(np.where(finite, z, np.nan)) - np.nanmin(np.where(finite, z, np.nan)))
    else:
        relief = float(zf.max() - zf.min())

    az = math.radians(azimuth)
    se, sn = math.sin(az), math.cos(az)  # towards the sun: east, north components
    dominant = max(abs(se), abs(sn))
    step_px = 1.0 / dominant  # ray length per step, pixels (1 .. sqrt(2))
    rise = step_px * float(resolution) * math.tan(math.radians(elevation))  # metres per step
    n = max(ny, nx) + 1
    if relief > 0:
        n = min(n, math.ceil(relief / rise))
    else:
        n = 0
    if max_distance is not None:
        n = min(n, int(math.floor(max_distance / (step_px * float(resolution)) + 1e-9)))
    if n <= 0:
        return np.ones(z.shape, dtype=np.uint8)

    k = np.arange(1, n + 1)
    # Offsets per step, rows positive southwards, columns positive eastwards.
    dcol = k * (se / dominant)
    drow = k * (-sn / dominant)
    col_major = abs(se) >= abs(sn)
    if col_major:
        dcol = np.rint(dcol)
    else:
        drow = np.rint(drow)
    r_lo = np.floor(drow).astype(np.int64)
    c_lo = np.floor(dcol).astype(np.int64)
    pad_top = max(0, -int(r_lo.min()))
    pad_bottom = max(0, int(r_lo.max()) + 1)
    pad_left = max(0, -int(c_lo.min()))
    pad_right = max(0, int(c_lo.max()) + 1)
    padded = np.pad(
        zf, ((pad_top, pad_bottom), (pad_left, pad_right)), mode="constant", constant_values=_NO_TERRAIN
    )
    # per step: the offset of the ray's two straddling cells, the interpolation weight and the drop
    steps = []
    for kk in range(n):
        ri, ci = int(r_lo[kk]) + pad_top, int(c_lo[kk]) + pad_left
        w = float(drow[kk] - r_lo[kk]) if col_major else float(dcol[kk] - c_lo[kk])
        ri1, ci1 = (ri + 1, ci) if col_major else (ri, ci + 1)
        steps.append((ri, ci, ri1, ci1, w, (kk + 1) * rise))
    best = np.full(z.shape, _NO_TERRAIN, dtype=zf.dtype)
    # strips of rows small enough to stay in the cache through all the steps; the arithmetic is
    # the whole-array one, ((1 - w) * s0 + w * s1) - (k + 1) * rise, element by element
    rows = max(1, _STRIP // max(nx, 1))
    t0 = np.empty((rows, nx), dtype=zf.dtype)
    t1 = np.empty((rows, nx), dtype=zf.dtype)
    for i0 in range(0, ny, rows):
        i1 = min(ny, i0 + rows)
        b, a0, a1 = best[i0:i1], t0[: i1 - i0], t1[: i1 - i0]
        for ri, ci, ri1, ci1, w, drop in steps:
            s0 = padded[ri + i0 : ri + i1, ci : ci + nx]
            if w == 0.0:
                np.subtract(s0, drop, out=a0)
            else:
                np.multiply(s0, 1.0 - w, out=a0)
                np.multiply(padded[ri1 + i0 : ri1 + i1, ci1 : ci1 + nx], w, out=a1)
                a0 += a1
                a0 -= drop
            np.maximum(b, a0, out=b)
    return (best <= zf).astype(np.uint8)


@renamed_keywords(res="resolution")
def distance_to_edge(mask: ArrayLike, resolution: float | tuple[float, float]) -> NDArray[np.float64]:
    """Exact Euclidean distance (metres) to the nearest pixel of the other class.

    For a pixel inside ``mask`` this is the distance from its centre to the
    centre of the nearest pixel outside, and vice versa (an exact Euclidean
    distance transform, :func:`scipy.ndimage.distance_transform_edt`, run on
    the mask and on its complement).  Neighbouring pixels of different
    classes are therefore ``resolution`` apart, never 0.  If the mask holds a single
    class the distance is ``inf`` everywhere.

    Parameters
    ----------
    mask
        2-D boolean (or 0/non-zero) array.
    resolution
        Pixel size in metres, or ``(row_size, column_size)``.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 5), bool); m[0, :2] = True
    >>> distance_to_edge(m, 10.0).tolist()
    [[20.0, 10.0, 10.0, 20.0, 30.0]]
    """
    m = np.asarray(mask).astype(bool)
    if m.all() or not m.any():
        return np.full(m.shape, np.inf)
    sampling = (float(resolution), float(resolution)) if np.ndim(resolution) == 0 else tuple(float(r) for r in resolution)  # type: ignore[union-attr]
    inside = ndimage.distance_transform_edt(m, sampling=sampling)
    outside = ndimage.distance_transform_edt(~m, sampling=sampling)
    return np.where(m, inside, outside)

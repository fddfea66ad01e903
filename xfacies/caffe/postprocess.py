"""From a zone map to a calving front: the CaFFe benchmark's post-processing.

:func:`zones_to_front` turns a zone map (class ids of :data:`xfacies.catalog.ZONES`: 0 NA,
1 rock, 2 glacier, 3 ocean) into a one-pixel-wide calving front in exactly the benchmark's
five steps:

1. :func:`fill_ocean_holes`: label the 8-connected components of the non-ocean pixels; every
   component but the largest becomes ocean;
2. :func:`keep_largest_ocean`: keep only the largest 8-connected ocean component; the other
   ocean pixels become glacier (steps 1 and 2 together: :func:`clean_zones`);
3. :func:`front_from_zones`: the front is every ocean pixel with at least one 4-neighbour
   glacier pixel (outside the image counts as not glacier);
4. :func:`remove_short_fronts`: delete the 8-connected front pieces of at most
   ``750 m / resolution`` pixels (:func:`min_front_pixels`);
5. :func:`clip_to_bbox`: set everything outside the image's bounding box to ``False``.

Ties: where two components are equally large "the largest" is the one whose first pixel comes
first in row-major scan order (the lowest label of :func:`scipy.ndimage.label`), so the result
is deterministic.

The step functions take and return 2-D NumPy arrays; :func:`zones_to_front` also takes xarray
(lazy dask arrays are computed image by image).

Examples
--------
>>> import numpy as np
>>> zones = np.array([[2, 2, 3, 3],
...                   [2, 2, 3, 3],
...                   [2, 2, 3, 3]])
>>> zones_to_front(zones, resolution=500.0).astype(int)
array([[0, 0, 1, 0],
       [0, 0, 1, 0],
       [0, 0, 1, 0]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from xfacies.errors import InputError, UnitsError
from xfacies.catalog import ZONES

__all__ = [
    "MIN_FRONT_LENGTH",
    "zones_to_front",
    "clean_zones",
    "fill_ocean_holes",
    "keep_largest_ocean",
    "front_from_zones",
    "remove_short_fronts",
    "clip_to_bbox",
    "bbox_limits",
    "min_front_pixels",
    "check_zones",
]

_IDS = {z.name: z.id for z in ZONES}
GLACIER: int = _IDS["glacier"]
OCEAN: int = _IDS["ocean"]
_N_CLASSES = len(ZONES)

#: Front pieces up to this length (metres, counted as pixels x resolution) are deleted (step 4).
MIN_FRONT_LENGTH: float = 750.0

_EIGHT = np.ones((3, 3), dtype=bool)
_FOUR = ndimage.generate_binary_structure(2, 1)


# --------------------------------------------------------------------------- checks
def check_zones(zones: Any, what: str = "zones") -> np.ndarray:
    """The zone map as a NumPy integer array, or an error naming the values that are not class ids.

    Parameters
    ----------
    zones
        Zone class ids 0..3 (:data:`xfacies.catalog.ZONES`), any shape, NumPy or xarray.
        Floating-point input is accepted when every value is one of the ids.
    what
        Name of the input in error messages.

    Returns
    -------
    numpy.ndarray
        ``int8`` class ids.

    Examples
    --------
    >>> check_zones(np.array([[0, 3], [2, 1]])).dtype
    dtype('int8')
    >>> check_zones(np.array([[0, 64], [127, 254]]))
    Traceback (most recent call last):
    ...
    xfacies.errors.InputError: zones must hold zone class ids 0..3 (0 NA, 1 rock, 2 glacier, 3 ocean); found 64, 127, 254. Benchmark PNGs store grey values (0, 64, 127, 254): read them with xfacies.caffe.open_dataset, which maps them to class ids.
    """
    arr = np.asarray(zones)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{what} must hold integer zone class ids 0..{_N_CLASSES - 1}, "
                        f"got dtype {arr.dtype}")
    if arr.size == 0:
        return arr.astype(np.int8)
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = arr.min(), arr.max()
        bad_mask = None if (lo >= 0 and hi < _N_CLASSES) else (arr < 0) | (arr >= _N_CLASSES)
    else:
        bad_mask = ~np.isin(arr, np.arange(_N_CLASSES))
        if not bad_mask.any():
            bad_mask = None
    if bad_mask is not None:
        bad = np.unique(arr[bad_mask])
        shown = ", ".join(f"{v:g}" for v in bad[:8]) + (", ..." if bad.size > 8 else "")
        legend = ", ".join(f"{z.id} {z.name}" for z in ZONES)
        greys = ", ".join(str(z.grey) for z in ZONES)
        raise InputError(
            f"{what} must hold zone class ids 0..{_N_CLASSES - 1} ({legend}); found {shown}. "
            f"Benchmark PNGs store grey values ({greys}): read them with "
            "xfacies.caffe.open_dataset, which maps them to class ids.")
    return arr.astype(np.int8, copy=False)


def check_resolution(resolution: Any, what: str = "resolution") -> float:
    """``resolution`` as a finite number of metres per pixel > 0, or a TypeError/ValueError naming ``what``."""
    try:
        res = float(resolution)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number of metres per pixel, got {resolution!r}") from None
    if not (math.isfinite(res) and res > 0):
        raise UnitsError(f"{what} must be a finite number of metres per pixel > 0, got {resolution!r}")
    return res


def _require_2d(arr: np.ndarray, what: str) -> None:
    if arr.ndim != 2:
        raise InputError(f"{what} must be a 2-D (y, x) image, got shape {arr.shape}")


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Pixels of the largest 8-connected component of ``mask`` (first in scan order on ties)."""
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    return labels == int(np.argmax(sizes))  # argmax: lowest label on ties


# --------------------------------------------------------------------------- steps
def fill_ocean_holes(zones: np.ndarray) -> np.ndarray:
    """Step 1: every 8-connected non-ocean component but the largest becomes ocean.

    Parameters
    ----------
    zones
        2-D zone class ids 0..3.

    Returns
    -------
    numpy.ndarray
        A new ``int8`` zone map.

    Examples
    --------
    >>> z = np.array([[2, 2, 3, 3, 3],
    ...               [2, 2, 3, 1, 3],
    ...               [2, 2, 3, 3, 3]])
    >>> fill_ocean_holes(z)[1]
    array([2, 2, 3, 3, 3], dtype=int8)
    """
    out = check_zones(zones).copy()
    _require_2d(out, "zones")
    non_ocean = out != OCEAN
    if non_ocean.any():
        out[non_ocean & ~_largest_component(non_ocean)] = OCEAN
    return out


def keep_largest_ocean(zones: np.ndarray) -> np.ndarray:
    """Step 2: ocean pixels outside the largest 8-connected ocean component become glacier.

    Examples
    --------
    >>> z = np.array([[3, 3, 2, 2, 3],
    ...               [3, 3, 2, 2, 2]])
    >>> keep_largest_ocean(z)
    array([[3, 3, 2, 2, 2],
           [3, 3, 2, 2, 2]], dtype=int8)
    """
    out = check_zones(zones).copy()
    _require_2d(out, "zones")
    ocean = out == OCEAN
    if ocean.any():
        out[ocean & ~_largest_component(ocean)] = GLACIER
    return out


def clean_zones(zones: np.ndarray) -> np.ndarray:
    """Steps 1 and 2: holes in the ocean filled, then only the largest ocean component kept.

    Examples
    --------
    >>> z = np.array([[2, 2, 3, 3, 3],
    ...               [2, 2, 3, 1, 3],
    ...               [2, 2, 3, 3, 3],
    ...               [2, 2, 2, 2, 2],
    ...               [2, 3, 2, 2, 2]])
    >>> clean_zones(z)
    array([[2, 2, 3, 3, 3],
           [2, 2, 3, 3, 3],
           [2, 2, 3, 3, 3],
           [2, 2, 2, 2, 2],
           [2, 2, 2, 2, 2]], dtype=int8)

    The rock island in the ocean became ocean (step 1), the lone ocean pixel at the bottom,
    cut off from the large ocean, became glacier (step 2).
    """
    return keep_largest_ocean(fill_ocean_holes(zones))


def front_from_zones(zones: np.ndarray) -> np.ndarray:
    """Step 3: ocean pixels with at least one 4-neighbour glacier pixel.

    Pixels outside the image count as not glacier (the benchmark pads with 0 = NA).

    Examples
    --------
    >>> z = np.array([[2, 3, 3],
    ...               [1, 3, 3],
    ...               [2, 2, 3]])
    >>> front_from_zones(z).astype(int)
    array([[0, 1, 0],
           [0, 1, 0],
           [0, 0, 1]])
    """
    z = check_zones(zones)
    _require_2d(z, "zones")
    glacier = np.pad(z == GLACIER, 1, constant_values=False)
    near_glacier = (glacier[:-2, 1:-1] | glacier[2:, 1:-1] | glacier[1:-1, :-2] | glacier[1:-1, 2:])
    return (z == OCEAN) & near_glacier


def min_front_pixels(resolution: float) -> float:
    """The step-4 threshold ``750 m / resolution`` in pixels (pieces of at most this size go).

    Examples
    --------
    >>> min_front_pixels(6)
    125.0
    >>> min_front_pixels(7)  # pieces of up to 107 pixels are deleted
    107.14285714285714
    """
    return MIN_FRONT_LENGTH / check_resolution(resolution)


def remove_short_fronts(front: np.ndarray, resolution: float) -> np.ndarray:
    """Step 4: delete 8-connected front pieces of at most ``750 m / resolution`` pixels.

    Parameters
    ----------
    front
        2-D boolean front mask.
    resolution
        Metres per pixel (> 0).

    Examples
    --------
    >>> f = np.zeros((3, 40), bool)
    >>> f[0, :15] = True          # 15 pixels = 750 m at 50 m/px: deleted
    >>> f[2, 20:36] = True        # 16 pixels: kept
    >>> remove_short_fronts(f, 50.0).sum(axis=1)
    array([ 0,  0, 16])
    """
    threshold = min_front_pixels(resolution)
    front = np.asarray(front, dtype=bool)
    _require_2d(front, "front")
    labels, n = ndimage.label(front, structure=_EIGHT)
    if n == 0:
        return front.copy()
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes > threshold
    keep[0] = False
    return keep[labels]


def bbox_limits(bbox: Any) -> tuple[float, float, float, float]:
    """``(xmin, xmax, ymin, ymax)`` of bounding-box corners, in pixels (inclusive).

    Parameters
    ----------
    bbox
        ``(n, 2)`` corner positions ``(x, y)`` = (column, row), as in the benchmark's
        ``bounding_boxes/*.txt`` after the header (upper-left, lower-left, lower-right,
        upper-right), or an xarray DataArray with dims ``("corner", "xy")`` holding the same
        (an ``xy`` coordinate labelled ``"x"``/``"y"`` is honoured).

    Examples
    --------
    >>> bbox_limits([[10, 5], [10, 80], [60, 80], [60, 5]])
    (10.0, 60.0, 5.0, 80.0)
    """
    if isinstance(bbox, xr.DataArray):
        if set(bbox.dims) != {"corner", "xy"}:
            raise InputError(f"bbox must have dims ('corner', 'xy'), got {bbox.dims}")
        if "xy" in bbox.coords and set(np.asarray(bbox["xy"]).astype(str)) == {"x", "y"}:
            bbox = bbox.sel(xy=["x", "y"])
        bbox = bbox.transpose("corner", "xy").values
    arr = np.asarray(bbox, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise InputError(f"bbox must be (4, 2) corner positions (x, y), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"bbox corners must be finite, got {arr.tolist()}")
    xmin, ymin = arr.min(axis=0)
    xmax, ymax = arr.max(axis=0)
    return float(xmin), float(xmax), float(ymin), float(ymax)


def clip_to_bbox(front: np.ndarray, bbox: Any) -> np.ndarray:
    """Step 5: everything outside the axis-aligned hull of the box corners becomes ``False``.

    Pixel ``(row, col)`` is kept when ``xmin <= col <= xmax`` and ``ymin <= row <= ymax``
    (:func:`bbox_limits`). ``bbox=None`` keeps everything.

    Examples
    --------
    >>> clip_to_bbox(np.ones((3, 4), bool), [[1, 0], [1, 1], [2, 1], [2, 0]]).astype(int)
    array([[0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]])
    """
    front = np.array(front, dtype=bool)
    _require_2d(front, "front")
    if bbox is None:
        return front
    xmin, xmax, ymin, ymax = bbox_limits(bbox)
    rows = np.arange(front.shape[0])
    cols = np.arange(front.shape[1])
    inside = ((rows >= ymin) & (rows <= ymax))[:, None] & ((cols >= xmin) & (cols <= xmax))[None, :]
    front &= inside
    return front


# --------------------------------------------------------------------------- all steps
def _front_2d(zones: np.ndarray, resolution: float, limits: tuple[float, float, float, float] | None
              ) -> np.ndarray:
    front = remove_short_fronts(front_from_zones(clean_zones(zones)), resolution)
    if limits is not None:
        xmin, xmax, ymin, ymax = limits
        box = np.array([[xmin, ymin], [xmax, ymax]])
        front = clip_to_bbox(front, box)
    return front


def _front_nd(zones: np.ndarray, resolution: float, limits) -> np.ndarray:
    """Vectorised over leading dims (each (y, x) slice is one image)."""
    zones = check_zones(zones)
    out = np.zeros(zones.shape, dtype=bool)
    for idx in np.ndindex(zones.shape[:-2]):
        out[idx] = _front_2d(zones[idx], resolution, limits)
    return out


def zones_to_front(zones: np.ndarray | xr.DataArray, resolution: float,
                   bbox: np.ndarray | Sequence[Sequence[float]] | xr.DataArray | None = None,
                   ) -> np.ndarray | xr.DataArray:
    """The benchmark's calving front of a zone map (the five steps of this module's docstring).

    Parameters
    ----------
    zones
        Zone class ids 0..3 (0 NA, 1 rock, 2 glacier, 3 ocean): a 2-D NumPy array ``(y, x)``,
        or an xarray DataArray whose last two dims are the image (``(y, x)``; leading dims,
        e.g. a stack of images, are processed image by image; dask input stays lazy with one
        chunk per image).
    resolution
        Metres per pixel (> 0); front pieces of at most ``750 / resolution`` pixels are deleted.
    bbox
        ``None`` (no clipping), ``(4, 2)`` corner positions ``(x, y)`` in pixels (upper-left,
        lower-left, lower-right, upper-right, as in the benchmark's ``bounding_boxes/*.txt``),
        or a DataArray with dims ``("corner", "xy")``. The axis-aligned min/max of the corners
        are used, inclusive.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Boolean front mask, same shape. For xarray input: a DataArray named ``"front"`` with
        the same dims and coords and attrs describing the post-processing. No ocean, or no
        ocean next to glacier, gives an empty (all ``False``) front.

    Examples
    --------
    A vertical glacier/ocean boundary gives a straight front in the first ocean column:

    >>> zones = np.full((4, 6), 2, np.int8)
    >>> zones[:, 3:] = 3
    >>> np.argwhere(zones_to_front(zones, 200.0))[:, 1]
    array([3, 3, 3, 3])

    Step 4 deletes pieces of at most ``750 / resolution`` pixels: 3.75 pixels at 200 m/px
    (the 4-pixel front stays), 4 pixels at 187.5 m/px (it goes):

    >>> int(zones_to_front(zones, 200.0).sum()), int(zones_to_front(zones, 187.5).sum())
    (4, 0)

    xarray in, xarray out:

    >>> da = xr.DataArray(zones, dims=("y", "x"), coords={"x": np.arange(6) * 10.0})
    >>> front = zones_to_front(da, 200.0, bbox=[[0, 1], [0, 2], [5, 2], [5, 1]])
    >>> front.name, front.dims, int(front.sum())
    ('front', ('y', 'x'), 2)
    """
    res = check_resolution(resolution)
    limits = None if bbox is None else bbox_limits(bbox)
    if not isinstance(zones, xr.DataArray):
        arr = check_zones(zones)
        _require_2d(arr, "zones")
        return _front_2d(arr, res, limits)

    if zones.ndim < 2:
        raise InputError(f"zones must have at least 2 dims (y, x), got {zones.dims}")
    ydim, xdim = zones.dims[-2:]
    data = zones
    if data.chunks is not None:
        data = data.chunk({ydim: -1, xdim: -1})
    else:
        check_zones(data.values)  # fail early, with the bad values, for in-memory input
    out = xr.apply_ufunc(
        _front_nd, data, kwargs={"resolution": res, "limits": limits},
        input_core_dims=[[ydim, xdim]], output_core_dims=[[ydim, xdim]],
        dask="parallelized", output_dtypes=[bool],
    )
    out = out.transpose(*zones.dims)
    out.name = "front"
    attrs: dict[str, Any] = {
        "long_name": "calving front",
        "description": (
            "CaFFe benchmark post-processing of the zone map: ocean holes filled (8-connected), "
            "largest 8-connected ocean kept, ocean pixels with a 4-neighbour glacier pixel, "
            f"8-connected pieces of at most {MIN_FRONT_LENGTH:g} m / resolution pixels "
            "deleted, clipped to the bounding box"),
        "resolution": res,
        "resolution_units": "m",
        "min_front_pixels": MIN_FRONT_LENGTH / res,
    }
    if limits is not None:
        attrs["bbox_limits"] = np.array(limits)  # xmin, xmax, ymin, ymax in pixels
        attrs["bbox_limits_order"] = "xmin xmax ymin ymax"
    out.attrs = attrs
    return out

"""The elevation feature: the DEM normalised by the min/max inside the glacier outlines (jointly,
or per glacier), with a floor on the range (:data:`MIN_ELEVATION_RANGE`) for one-pixel glaciers
and flat DEMs."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xfacies.errors import XfaciesWarning


__all__ = ["MIN_ELEVATION_RANGE", "ElevationRangeWarning", "elevation_block", "elevation_inside", "normalise_elevation",
           "warn_elevation_range"]

#: Smallest DEM range (metres) inside the outlines that the elevation feature divides by.  A
#: smaller range (a glacier of one pixel, a flat DEM, voids) carries no elevation information:
#: the elevation feature is then 0.5, the middle of its 0..1 range (the reference's training
#: mean of the normalised elevation is ~0.50), with an :class:`ElevationRangeWarning`.
#: ``xfacies apply`` follows the same rule.
MIN_ELEVATION_RANGE = 1.0


class ElevationRangeWarning(XfaciesWarning):
    """The DEM range inside some outlines is below :data:`MIN_ELEVATION_RANGE`: elevation 0.5 there."""


def normalise_elevation(z: NDArray, lo: Any, hi: Any) -> NDArray:
    """``(z - lo) / (hi - lo)`` as float32, and 0.5 where the range ``hi - lo`` is below
    :data:`MIN_ELEVATION_RANGE` or undefined (NaN ``z`` stays NaN).  ``lo``/``hi`` are numbers
    or arrays broadcasting with ``z``.  The rule of :func:`features` and ``xfacies apply``.

    Examples
    --------
    >>> normalise_elevation(np.array([2000.0, 2500.0, 3000.0]), 2000.0, 3000.0).tolist()
    [0.0, 0.5, 1.0]
    >>> normalise_elevation(np.array([1500.0, 2000.0, np.nan]), 2000.0, 2000.0).tolist()  # one pixel
    [0.5, 0.5, nan]
    """
    z = np.asarray(z, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    rng = np.asarray(hi, dtype=np.float64) - lo
    ok = np.isfinite(rng) & (rng >= MIN_ELEVATION_RANGE)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ok, (z - lo) / np.where(ok, rng, 1.0), 0.5)
    out = np.where(np.isnan(z), np.nan, out)
    return out.astype(np.float32)


def warn_elevation_range(ids: Sequence[str], ranges: Sequence[float], *, joint_range: float | None = None,
                         stacklevel: int = 3) -> None:
    """Warn that the elevation feature is 0.5 on some glaciers, or on the whole scene.

    Parameters
    ----------
    ids
        The glaciers concerned.
    ranges
        Their own DEM ranges inside their outlines, metres (NaN: no DEM value).
    joint_range
        The range of all glaciers together when *it* is below :data:`MIN_ELEVATION_RANGE`
        (the scene-joint normalisation: elevation 0.5 everywhere); ``None``: per-glacier
        normalisation, elevation 0.5 on ``ids`` only.
    stacklevel
        Passed to :func:`warnings.warn`.

    Warns
    -----
    ElevationRangeWarning
        Naming the glaciers, their ranges, the rule and what to check.
    """
    if not len(ids):
        return

    def m(r: float) -> str:
        return f"{r:.2f} m" if math.isfinite(r) else "no DEM value"

    shown = ", ".join(f"{i!r} ({m(r)})" for i, r in zip(list(ids)[:10], list(ranges)[:10]))
    more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
    if joint_range is not None:
        head = (f"the DEM range inside the outlines of all glaciers together is {m(joint_range)}, below "
                f"{MIN_ELEVATION_RANGE:g} m (glaciers and their own ranges: {shown}{more})")
        where, fix = "on the whole scene", ("check the outlines (a glacier smaller than a few pixels?) "
                                           "and the DEM (flat, or voids inside the outlines)")
    else:
        head = f"the DEM range inside the outlines of glacier(s) {shown}{more} is below {MIN_ELEVATION_RANGE:g} m"
        where, fix = "on those glaciers", ("check those outlines and the DEM there, or use "
                                          "per_glacier_elevation=False (all glaciers together)")
    warnings.warn(
        f"{head}: a glacier of one or a few pixels, a flat DEM or DEM voids. Dividing by such a range "
        f"would give meaningless elevations, so the elevation feature is 0.5 (the middle of its 0..1 "
        f"range) {where}; {fix}.", ElevationRangeWarning, stacklevel=stacklevel)


def _normaliser(table: NDArray, ids: Sequence[str], per_glacier: bool, stacklevel: int) -> Any:
    """``f(z, g)``: the elevation of DEM values ``z`` with glacier indices ``g`` from the ``(2, n + 1)``
    min/max ``table`` (column 0 all glaciers together), warning now about ranges below
    :data:`MIN_ELEVATION_RANGE`."""
    lo, hi = float(table[0, 0]), float(table[1, 0])
    rng = table[1] - table[0]
    joint_ok = bool(np.isfinite(rng[0]) and rng[0] >= MIN_ELEVATION_RANGE)
    if not joint_ok:
        warn_elevation_range(list(ids), [float(r) for r in rng[1:]], joint_range=float(rng[0]),
                             stacklevel=stacklevel)
    if not per_glacier:
        def joint(z: NDArray, g: Any = None) -> NDArray:
            return normalise_elevation(z, lo, hi)

        return joint
    bad = [k for k in range(1, table.shape[1]) if not (np.isfinite(rng[k]) and rng[k] >= MIN_ELEVATION_RANGE)]
    if bad and joint_ok:
        warn_elevation_range([ids[k - 1] for k in bad], [float(rng[k]) for k in bad], stacklevel=stacklevel)
    lo_k, hi_k = table[0].copy(), table[1].copy()  # index 0 (off-glacier): the joint normalisation

    def each(z: NDArray, g: NDArray) -> NDArray:
        return normalise_elevation(z, lo_k[g], hi_k[g])

    return each


def elevation_block(dem: Any, gid: Any, ids: Sequence[str], table: NDArray,
                    per_glacier: bool) -> tuple[Any, tuple[float, float]]:
    """Elevation min-max normalised by the DEM extremes inside the outlines, lazily (``table``: the
    computed ``(2, n + 1)`` min/max of :func:`glacier_minmax` over the blocks)."""
    import dask.array as da

    f = _normaliser(table, ids, per_glacier, stacklevel=5)
    meta = np.empty((0, 0), np.float32)
    out = (da.map_blocks(f, dem, gid, dtype=np.float32, meta=meta) if per_glacier
           else da.map_blocks(f, dem, dtype=np.float32, meta=meta))
    return out, (float(table[0, 0]), float(table[1, 0]))


def elevation_inside(z: NDArray, glaciers: NDArray, ids: Sequence[str], *,
                     per_glacier: bool = False, stacklevel: int = 2) -> NDArray:
    """The elevation feature of a DEM held in memory: min-max normalised inside the outlines.

    The rule of :func:`xfacies.features` (all glaciers together, or each glacier on its own with
    ``per_glacier``; 0.5 with an :class:`ElevationRangeWarning` where the range is below
    :data:`MIN_ELEVATION_RANGE`), for a NumPy DEM such as the one ``xfacies apply`` reads.

    Parameters
    ----------
    z
        DEM, metres, 2-D (NaN: void).
    glaciers
        Glacier index of each pixel (0 outside, ``k`` inside glacier ``ids[k - 1]``).
    ids
        The glacier names, for the warnings.
    per_glacier
        Each glacier's own min/max instead of all glaciers' together.
    stacklevel
        Of the warning, as in :func:`warnings.warn` (2: the caller of this function).

    Examples
    --------
    >>> z = np.array([[2000.0, 2500.0], [3000.0, 4000.0]])
    >>> elevation_inside(z, np.array([[1, 1], [1, 0]]), ["A"]).tolist()   # 4000 m is off-glacier
    [[0.0, 0.5], [1.0, 2.0]]
    """
    g = np.asarray(glaciers).astype(np.int64)
    table = combine_minmax([glacier_minmax(np.asarray(z), g, len(ids))])
    return _normaliser(table, ids, per_glacier, stacklevel=stacklevel + 2)(np.asarray(z), g)


def glacier_minmax(z: NDArray, g: NDArray, n: int) -> NDArray:
    """(2, n + 1) min/max of ``z`` per glacier index in a block; column 0 = inside any glacier."""
    out = np.empty((2, n + 1))
    out[0], out[1] = np.inf, -np.inf
    ok = (g > 0) & np.isfinite(z)
    if ok.any():
        zz = z[ok].astype(np.float64)
        np.minimum.at(out[0], g[ok], zz)
        np.maximum.at(out[1], g[ok], zz)
        out[0, 0], out[1, 0] = zz.min(), zz.max()
    return out


def combine_minmax(parts: list[NDArray]) -> NDArray:
    a = np.stack(parts)
    out = np.stack([a[:, 0].min(axis=0), a[:, 1].max(axis=0)])
    out[:, ~np.isfinite(out[0])] = np.nan  # glaciers without a pixel
    return out

"""Sun angles of the acquisitions: read from the cube or given, and checked as degrees
(an elevation at or below the horizon, or values that look like radians, are refused)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from xfacies.errors import InputError, InputWarning


__all__ = ["check_sun_angles"]


def sun_angles(cube: xr.DataArray, tdim: str | None, az: Any, el: Any) -> tuple[NDArray, NDArray]:
    n = cube.sizes[tdim] if tdim else 1
    out = []
    for name, val in (("sun_azimuth", az), ("sun_elevation", el)):
        if val is None:
            if name not in cube.coords:
                raise InputError(
                    f"hillshade and shadow_mask need the sun position: the cube has no {name!r} "
                    f"coordinate; pass {name}=<degrees> (a number or one per time)"
                )
            val = cube.coords[name].values
        arr = np.atleast_1d(np.asarray(val, dtype=float))
        if arr.size == 1:
            arr = np.repeat(arr, n)
        if arr.size != n:
            raise InputError(f"{name} has {arr.size} values but the cube has {n} time step(s)")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name} has non-finite values {arr.tolist()}")
        out.append(arr)
    labels = _time_labels(cube, tdim, n)
    check_sun_angles(out[0], out[1], labels)
    return out[0], out[1]


def _time_labels(cube: xr.DataArray, tdim: str | None, n: int) -> list[str]:
    if tdim and tdim in cube.coords:
        v = cube[tdim].values
        if np.issubdtype(v.dtype, np.datetime64):
            return [str(np.datetime_as_string(t, unit="D")) for t in v]
        return [str(t) for t in v]
    if "time" in cube.coords and cube["time"].ndim == 0:
        v = cube["time"].values
        return [str(np.datetime_as_string(v, unit="D")) if np.issubdtype(v.dtype, np.datetime64) else str(v)]
    return [f"#{i}" for i in range(n)]


def check_sun_angles(azimuth: NDArray, elevation: NDArray, labels: Sequence[str] | None = None) -> None:
    """Refuse sun angles that are not degrees of a sun above the horizon.

    Rules (degrees): elevation in (0, 90], azimuth in [0, 360].  Elevations that are *all* at
    most pi/2 look like radians and are refused (in degrees such a sun is too low for
    reflectance anyway); azimuths that are all at most 2 pi, not all whole numbers, give a
    :class:`UserWarning` (radians, or a sun just east or west of due north).

    Parameters
    ----------
    azimuth, elevation
        One value per acquisition.
    labels
        The acquisitions' names (dates) for the messages.

    Raises
    ------
    ValueError
        Naming the offending values, their dates and the fix.

    Examples
    --------
    >>> check_sun_angles(np.array([150.0]), np.array([-5.0]), ["2021-12-21"])
    Traceback (most recent call last):
    ...
    xfacies.errors.InputError: sun_elevation must be degrees above the horizon in (0, 90]; got -5 at 2021-12-21: the sun is at or below the horizon, so hillshade and cast shadows are undefined (everything would be shadow). Drop those acquisitions (night, polar winter) or check the sun angles in the metadata
    """
    az = np.asarray(azimuth, dtype=float)
    el = np.asarray(elevation, dtype=float)
    labels = list(labels) if labels is not None else [f"#{i}" for i in range(el.size)]

    def at(mask: NDArray, values: NDArray) -> str:
        idx = np.flatnonzero(mask)
        shown = ", ".join(f"{values[i]:g} at {labels[i]}" for i in idx[:5])
        return shown + (f" and {idx.size - 5} more" if idx.size > 5 else "")

    if el.size and np.all(np.abs(el) <= math.pi / 2) and np.any(el != 0):
        raise InputError(
            f"sun_elevation values {[float(v) for v in el[:5]]} are all within +-pi/2: they look like "
            "radians, but xfacies expects degrees above the horizon in (0, 90]; convert them with "
            "numpy.degrees(...) (a sun below 1.6 degrees would be useless for reflectance anyway)")
    low = el <= 0
    if low.any():
        raise InputError(
            f"sun_elevation must be degrees above the horizon in (0, 90]; got {at(low, el)}: the sun "
            "is at or below the horizon, so hillshade and cast shadows are undefined (everything "
            "would be shadow). Drop those acquisitions (night, polar winter) or check the sun angles "
            "in the metadata")
    high = el > 90
    if high.any():
        raise InputError(
            f"sun_elevation must be degrees above the horizon in (0, 90]; got {at(high, el)}. If these "
            "are sun zenith angles, use 90 - zenith")
    bad = (az < 0) | (az > 360)
    if bad.any():
        raise InputError(
            f"sun_azimuth must be degrees clockwise from north in [0, 360]; got {at(bad, az)}; wrap "
            "them with azimuth % 360 (or convert radians with numpy.degrees)")
    if az.size and np.all(az <= 2 * math.pi) and np.any(az != np.round(az)):
        warnings.warn(
            f"sun_azimuth values {[float(v) for v in az[:5]]} are all within 0..2 pi: if they are "
            "radians, convert them with numpy.degrees(...) (xfacies expects degrees clockwise from "
            "north); a sun due north (as in the southern hemisphere) is fine and can be left as is",
            InputWarning, stacklevel=4)

"""Input checks shared by the stages (errors that say what is wrong and how to fix it).

- :func:`require_float`: no integer digital numbers where reflectance is expected;
- :func:`check_reflectance` / :func:`check_reflectance_values`: the values *are* plausible
  surface reflectance (not percent, not unscaled digital numbers);
- :func:`require_unique_times`: no duplicated dates on a time axis.

The reflectance check is applied at the edges: by :func:`xfacies.features.features` (the cube)
and by ``xfacies apply`` (the optical GeoTIFF).

Examples
--------
>>> import numpy as np
>>> check_reflectance_values(np.array([0.1, 0.5, 0.9]), "cube")      # plausible: nothing happens
>>> check_reflectance_values(np.array([10.0, 50.0, 99.0]), "cube")
Traceback (most recent call last):
...
xfacies.errors.UnitsError: cube does not look like surface reflectance (0..1): 100.0 % of its finite optical values lie outside [-0.05, 1.6] (min 10, max 99). A maximum near 100 means reflectance in percent: divide by 100.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.errors import InputError, UnitsError

__all__ = ["class_codes", "require_float", "check_reflectance", "check_reflectance_values", "require_unique_times",
           "REFLECTANCE_RANGE", "MAX_IMPLAUSIBLE_SHARE", "mark_reflectance_checked",
           "reflectance_checked", "mask_fill", "FILL_VALUES"]

#: Plausible surface reflectance.  Landsat C2 L2 spans -0.2 .. 1.6 by construction, but values
#: below -0.05 (deep noise over dark water, or fill that was not masked) are rare in valid data.
REFLECTANCE_RANGE: tuple[float, float] = (-0.05, 1.6)

#: Names of the dask arrays whose optical bands :func:`xfacies.features` has put through
#: :func:`check_reflectance` in this process (a dask name identifies its computation: edited features
#: are a new array and are checked again).  Bounded, oldest first out.
_CHECKED: OrderedDict[str, None] = OrderedDict()
_MAX_CHECKED = 4096

#: Fill values of common rasters that are never reflectance (GDAL/ENVI -9999, int16 and uint16
#: extremes, the float32 extremes): :func:`mask_fill` masks them, with the input's declared nodata.
FILL_VALUES: tuple[float, ...] = (-9999.0, -32768.0, -32767.0, 32767.0, 65535.0,
                                  float(np.finfo(np.float32).min), float(np.finfo(np.float32).max))

#: Largest share of finite values outside :data:`REFLECTANCE_RANGE` that is accepted as noise.
MAX_IMPLAUSIBLE_SHARE: float = 0.01

_SCALE_HINT = ("apply the sensor's scale and offset first, e.g. Sentinel-2 L2A: (DN - 1000) * 1e-4 "
               "for processing baseline 04.00 and later (DN * 1e-4 before), Landsat Collection 2 "
               "Level-2: DN * 2.75e-5 - 0.2 (xfacies.open_stac applies them for you)")


def require_float(obj: xr.DataArray, what: str) -> None:
    """Refuse integer (digital-number) input where reflectance is expected.

    Examples
    --------
    >>> require_float(xr.DataArray(np.zeros(2, "uint16")), "cube")
    Traceback (most recent call last):
    ...
    TypeError: cube has integer dtype uint16; xfacies expects floating-point reflectance (0..1) and physical features. Apply the sensor's scale/offset first (e.g. Landsat C2: DN * 2.75e-5 - 0.2; Sentinel-2 L2A: (DN - offset) * 1e-4).
    """
    if np.issubdtype(obj.dtype, np.integer) or obj.dtype == bool:
        raise TypeError(
            f"{what} has integer dtype {obj.dtype}; xfacies expects floating-point "
            "reflectance (0..1) and physical features. Apply the sensor's scale/offset first "
            "(e.g. Landsat C2: DN * 2.75e-5 - 0.2; Sentinel-2 L2A: (DN - offset) * 1e-4)."
        )


# --------------------------------------------------------------------------- reflectance
def mark_reflectance_checked(data: Any) -> None:
    """Remember that the dask array ``data`` carries its own reflectance check (NumPy: nothing).

    The record lives in this process, not in the attributes, so it neither changes what
    ``assert_identical`` sees nor travels to other arrays with ``keep_attrs``.
    """
    name = getattr(data, "name", None)
    if isinstance(name, str) and hasattr(data, "dask"):
        _CHECKED[name] = None
        _CHECKED.move_to_end(name)
        while len(_CHECKED) > _MAX_CHECKED:
            _CHECKED.popitem(last=False)


def reflectance_checked(data: Any) -> bool:
    """Whether ``data`` is a dask array marked by :func:`mark_reflectance_checked`."""
    name = getattr(data, "name", None)
    return isinstance(name, str) and hasattr(data, "dask") and name in _CHECKED


def _reflectance_message(what: str, share: float, vmin: float, vmax: float) -> str:
    lo, hi = REFLECTANCE_RANGE
    head = (f"{what} does not look like surface reflectance (0..1): {100 * share:.1f} % of its finite "
            f"optical values lie outside [{lo:g}, {hi:g}] (min {vmin:.4g}, max {vmax:.4g}). ")
    if 1.6 < vmax <= 110.0 and vmin >= -5.5:
        return head + "A maximum near 100 means reflectance in percent: divide by 100."
    if vmax > 110.0:
        return (head + "A maximum in the hundreds or thousands means digital numbers (DN) without "
                f"scale and offset: {_SCALE_HINT}.")
    return (head + "Check the units of the input: xfacies expects surface reflectance as a fraction "
            f"(0..1); {_SCALE_HINT}.")


def _implausible(arrays: Any) -> tuple[float, float, float] | None:
    """``(share, min, max)`` of the finite values when more than the allowed share is implausible.

    ``arrays``: one array or an iterable of arrays, counted together slab by slab (no copy of
    the whole input in float64)."""
    lo, hi = REFLECTANCE_RANGE
    n = bad = 0
    vmin, vmax = np.inf, -np.inf
    parts = [arrays] if isinstance(arrays, np.ndarray) else arrays
    for part in parts:
        part = np.asarray(part)
        slabs = part.reshape(-1, part.shape[-1]) if part.ndim > 1 else part.reshape(1, -1)
        step = max(1, (1 << 22) // max(slabs.shape[1], 1))  # ~4 M values at a time
        for i in range(0, slabs.shape[0], step):
            v = slabs[i:i + step]
            if np.issubdtype(v.dtype, np.floating):
                v = v[np.isfinite(v)]
            if v.size == 0:
                continue
            n += v.size
            bad += int(np.count_nonzero((v < lo) | (v > hi)))
            vmin, vmax = min(vmin, float(v.min())), max(vmax, float(v.max()))
    if n == 0 or bad / n <= MAX_IMPLAUSIBLE_SHARE:
        return None
    return bad / n, vmin, vmax


def check_reflectance_values(values: Any, what: str) -> None:
    """Refuse values that are not plausible surface reflectance (eager, NumPy).

    More than :data:`MAX_IMPLAUSIBLE_SHARE` (1 %) of the finite values outside
    :data:`REFLECTANCE_RANGE` ([-0.05, 1.6]) is refused; NaN (nodata) is ignored.

    Parameters
    ----------
    values
        Reflectance values (any shape; integers are checked by value too).
    what
        The input's name in the message (e.g. ``"cube"`` or the file name).

    Raises
    ------
    ValueError
        Naming the likely cause (percent: maximum up to ~100; digital numbers without
        scale and offset: maximum in the thousands) and the fix.

    Examples
    --------
    >>> check_reflectance_values(np.array([[0.2, np.nan], [1.2, -0.01]]), "scene.tif")
    >>> check_reflectance_values(np.array([500.0, 8000.0, 12000.0]), "scene.tif")
    Traceback (most recent call last):
    ...
    xfacies.errors.UnitsError: scene.tif does not look like surface reflectance (0..1): 100.0 % of its finite optical values lie outside [-0.05, 1.6] (min 500, max 1.2e+04). A maximum in the hundreds or thousands means digital numbers (DN) without scale and offset: apply the sensor's scale and offset first, e.g. Sentinel-2 L2A: (DN - 1000) * 1e-4 for processing baseline 04.00 and later (DN * 1e-4 before), Landsat Collection 2 Level-2: DN * 2.75e-5 - 0.2 (xfacies.open_stac applies them for you).
    """
    bad = _implausible(np.asarray(values))
    if bad is not None:
        raise UnitsError(_reflectance_message(what, *bad))


def _date_label(dates: tuple[str, ...] | None, i: int) -> str:
    return f" on {dates[i]}" if dates is not None and 0 <= i < len(dates) else ""


def _check_block(block: np.ndarray, *, what: str, band_axis: int, bands: tuple[int, ...],
                 time_axis: int | None = None, dates: tuple[str, ...] | None = None,
                 block_info: Any = None) -> np.ndarray:
    """The dask block kernel of :func:`check_reflectance`: raise on implausible values, else pass.
    With a time axis every date of the block is judged on its own."""
    if block_info is not None and block.size:
        loc = block_info[0]["array-location"]
        start, stop = loc[band_axis]
        local = [b - start for b in bands if start <= b < stop]
        if not local:
            return block
        sel = np.take(block, local, axis=band_axis)
        if time_axis is None:
            check_reflectance_values(sel, f"{what} (checked block by block; this block)")
            return block
        t0 = loc[time_axis][0]
        for k in range(sel.shape[time_axis]):
            check_reflectance_values(np.take(sel, k, axis=time_axis),
                                     f"{what}{_date_label(dates, t0 + k)} (checked block by block; this block)")
    return block


def check_reflectance(obj: xr.DataArray, what: str, *, bands: list[str] | None = None,
                      band_dim: str = "band", time_dim: str = "time") -> xr.DataArray:
    """Check that ``obj`` holds plausible surface reflectance; return it (checked).

    NumPy-backed input is checked at once, over all its values.  **Dask-backed input is not
    read here**: the check is added to its graph, block by block, and a block that fails it
    raises the :class:`ValueError` when it is computed (so opening a large lazy cube costs
    nothing; the error comes with the first computation).  Each block is judged on its own
    finite values, with the same threshold.  Along ``time_dim`` every date is judged on its own
    (one bad date among many clean ones is not diluted below the threshold).

    Parameters
    ----------
    obj
        Reflectance, any dims.
    what
        Its name in the message.
    bands
        Labels along ``band_dim`` to check (e.g. the optical bands; other bands, such as a
        validity mask, are skipped).  ``None``: every value.
    band_dim
        The band dimension.
    time_dim
        The time dimension, when ``obj`` has it.

    Returns
    -------
    xarray.DataArray
        ``obj`` itself (NumPy) or with the check in its dask graph.

    Raises
    ------
    ValueError
        NumPy input that fails :func:`check_reflectance_values`.

    Examples
    --------
    >>> cube = xr.DataArray(np.full((2, 3, 3), 42.0), dims=("band", "y", "x"),
    ...                     coords={"band": ["red", "nir"]}).chunk({"x": 2})
    >>> checked = check_reflectance(cube, "cube")      # lazy: nothing is read yet
    >>> checked.compute()
    Traceback (most recent call last):
    ...
    xfacies.errors.UnitsError: cube (checked block by block; this block) does not look like surface reflectance (0..1): 100.0 % of its finite optical values lie outside [-0.05, 1.6] (min 42, max 42). A maximum near 100 means reflectance in percent: divide by 100.
    """
    import dask.array as da

    if bands is not None and band_dim in obj.dims:
        labels = [str(b) for b in obj[band_dim].values] if band_dim in obj.coords else []
        idx = tuple(i for i, b in enumerate(labels) if b in set(map(str, bands)))
        if not idx:
            return obj
        axis = obj.dims.index(band_dim)
    else:
        idx, axis = None, 0
    data = obj.data
    taxis = obj.dims.index(time_dim) if time_dim in obj.dims and time_dim != band_dim else None
    dates = None
    if taxis is not None and time_dim in obj.coords:
        dates = tuple(str(v)[:10] if np.issubdtype(np.asarray(obj[time_dim].values).dtype, np.datetime64)
                      else str(v) for v in obj[time_dim].values)
    if not isinstance(data, da.Array):
        values = np.asarray(data)
        slices = [values] if taxis is None else [np.take(values, k, axis=taxis) for k in range(values.shape[taxis])]
        baxis = axis if taxis is None or axis < taxis else axis - 1
        for k, v in enumerate(slices):
            parts = [v] if idx is None else (np.take(v, [i], axis=baxis) for i in idx)
            bad = _implausible(parts)
            if bad is not None:
                label = _date_label(dates, k) if taxis is not None else ""
                raise UnitsError(_reflectance_message(what + label, *bad))
        return obj
    if idx is None:  # every value: treat axis 0 as the band axis, all of it
        axis, idx = 0, tuple(range(data.shape[0])) if data.ndim else (0,)
        if data.ndim == 0:
            data = data[None]
    if taxis is not None and taxis == axis:
        taxis = None
    checked = da.map_blocks(_check_block, data, what=what, band_axis=axis, bands=tuple(idx),
                            time_axis=taxis, dates=dates,
                            dtype=data.dtype, meta=getattr(data, "_meta", None),
                            token="xfacies-check-reflectance")
    if obj.ndim == 0:
        checked = checked[0]
    return obj.copy(data=checked)


# --------------------------------------------------------------------------- fill values
def _declared_nodata(obj: xr.DataArray) -> list[float]:
    out = []
    for v in (obj.attrs.get("_FillValue"), obj.attrs.get("nodata"), obj.encoding.get("_FillValue"),
              obj.attrs.get("missing_value")):
        if v is not None and np.ndim(v) == 0:
            try:
                f = float(v)
            except (TypeError, ValueError):
                continue
            if np.isfinite(f):
                out.append(f)
    try:  # rioxarray's record (attrs or encoding), when the object is georeferenced
        nd = obj.rio.nodata
        if nd is not None and np.isfinite(float(nd)):
            out.append(float(nd))
    except Exception:  # noqa: BLE001 - no rioxarray or no record: the attributes above suffice
        pass
    return sorted(set(out))


def mask_fill(obj: xr.DataArray, nodata: float | list[float] | None = None) -> xr.DataArray:
    """``obj`` with fill values as NaN: its declared nodata, ``nodata`` and :data:`FILL_VALUES`.

    Fill that stays in a reflectance cube is not only wrong where it lies: a CNN sees it from
    every pixel within its receptive field (a 33 x 33 patch), so 20 pixels of -9999 change the
    classes of hundreds of glacier pixels around them.  As NaN the model treats them as nodata,
    like masked cloud.  Infinities are masked too.  Lazy input stays lazy.

    Parameters
    ----------
    obj
        Floating-point values (e.g. a reflectance cube).
    nodata
        Further fill value(s) to mask besides the declared ones (``_FillValue``, ``nodata``,
        ``missing_value``, rioxarray's ``nodata``).

    Returns
    -------
    xarray.DataArray
        Same shape, coordinates and attributes.

    Examples
    --------
    >>> v = xr.DataArray(np.array([0.2, -9999.0, 0.4, np.inf, 0.05]), dims="x", attrs={"nodata": 0.05})
    >>> mask_fill(v).values
    array([0.2, nan, 0.4, nan, nan])
    """
    if not np.issubdtype(obj.dtype, np.floating):
        return obj
    fills = list(FILL_VALUES) + _declared_nodata(obj)
    if nodata is not None:
        fills += [float(v) for v in np.atleast_1d(nodata)]
    fills_arr = np.asarray(sorted(set(fills)), dtype=obj.dtype)
    bad = xr.apply_ufunc(lambda a: np.isin(a, fills_arr) | np.isinf(a), obj, dask="parallelized",
                         output_dtypes=[bool])
    with xr.set_options(keep_attrs=True):
        return obj.where(~bad)


# --------------------------------------------------------------------------- time axes
def require_unique_times(obj: xr.DataArray | xr.Dataset, what: str, dim: str = "time") -> None:
    """Refuse a ``dim`` axis with missing (NaT) or duplicated dates, listing them and the fix.

    Used by :func:`xfacies.features.features`, :func:`xfacies.products.fractions`,
    :func:`xfacies.products.end_of_season` and :func:`xfacies.io.to_zarr`: two maps of one day
    would be counted twice, picked arbitrarily or written over each other.

    Parameters
    ----------
    obj
        Any xarray object; nothing is checked without a ``dim`` coordinate.
    what
        Its name in the message.
    dim
        The time dimension.

    Raises
    ------
    ValueError
        Naming the positions of missing dates (NaT: a date that could not be parsed), or
        listing the duplicated values (up to 10) with their counts.

    Examples
    --------
    >>> t = pd.to_datetime(["2021-08-01", "2021-08-01", "2021-09-01"])
    >>> require_unique_times(xr.DataArray([1, 2, 3], dims="time", coords={"time": t}), "the class map")
    Traceback (most recent call last):
    ...
    xfacies.errors.InputError: the class map has duplicated time values: 2021-08-01 (2 times); one value per date is expected (two scenes of one day, e.g. adjacent tiles or two sensors, must be merged first). Keep one of each with obj.drop_duplicates('time'), or mosaic them, e.g. obj.groupby('time').first() (first valid pixel) or obj.groupby('time').mean()
    """
    if dim not in obj.dims or dim not in obj.coords:
        return
    index = pd.Index(obj[dim].values)
    if index.hasnans:
        where = np.flatnonzero(pd.isna(index)).tolist()
        raise InputError(
            f"{what} has {len(where)} missing {dim} value(s) (NaT, e.g. a date that could not be parsed) at "
            f"position(s) {where[:10]}{' ...' if len(where) > 10 else ''} of {index.size}; every map needs its "
            f"date. Fix the dates where they were read, or drop those: obj.isel({dim}=~obj[{dim!r}].isnull())")
    if not index.has_duplicates:
        return
    counts = index.value_counts()
    dup = [v for v in pd.unique(index[index.duplicated(keep=False)])]
    shown = []
    for v in dup[:10]:
        label = str(np.datetime_as_string(np.datetime64(v, "ns"), unit="auto")) \
            if isinstance(v, (np.datetime64, pd.Timestamp)) else str(v)
        if isinstance(v, (np.datetime64, pd.Timestamp)) and label.endswith("T00:00:00"):
            label = label[:10]
        shown.append(f"{label} ({int(counts[v])} times)")
    more = f" and {len(dup) - 10} more" if len(dup) > 10 else ""
    raise InputError(
        f"{what} has duplicated {dim} values: {', '.join(shown)}{more}; one value per date is "
        "expected (two scenes of one day, e.g. adjacent tiles or two sensors, must be merged "
        f"first). Keep one of each with obj.drop_duplicates({dim!r}), or mosaic them, e.g. "
        f"obj.groupby({dim!r}).first() (first valid pixel) or obj.groupby({dim!r}).mean()"
    )


# --------------------------------------------------------------------------- class maps
def class_codes(block: np.ndarray, *, nodata: int, valid: Any = None, what: str = "the class map",
                fix: str = "round it first: classes.round().astype('int8')") -> np.ndarray:
    """A class-map block as integer class codes: a float map's NaN becomes ``nodata``; float values
    that are not whole numbers (1.5, inf), or not in ``valid`` when given, are refused rather than
    truncated into another class.  Integer maps are returned as they are; boolean maps (a mask?)
    are refused.

    Examples
    --------
    >>> class_codes(np.array([0.0, 2.0, np.nan]), nodata=-1)
    array([ 0.,  2., -1.])
    >>> class_codes(np.array([0.0, 1.5]), nodata=-1)
    Traceback (most recent call last):
    ...
    xfacies.errors.InputError: the class map is a float class map with values that are not class codes [1.5]; round it first: classes.round().astype('int8')
    """
    b = np.asarray(block)
    if b.dtype == bool:
        raise TypeError(f"{what} is boolean (a mask?); a class map holds class ids ({nodata} = nodata), "
                        "e.g. from xfacies.classify")
    if not np.issubdtype(b.dtype, np.floating):
        return b
    nan = np.isnan(b)
    with np.errstate(invalid="ignore"):
        bad = ~nan & ~(np.isfinite(b) & (b == np.round(b)))
        if valid is not None:
            bad |= ~nan & ~np.isin(b, np.asarray(valid, dtype=float))
    if bad.any():
        vals = sorted(set(b[bad].tolist()))
        raise InputError(f"{what} is a float class map with values that are not class codes {vals[:10]}"
                         f"{' ...' if len(vals) > 10 else ''}; {fix}")
    return np.where(nan, nodata, b)

"""Zarr storage of class maps, confidence maps and fraction tables.

The date records a run keeps in a store (complete, failed, rejected dates) live in
:mod:`xfacies.zarr_dates`; their functions are also here (``xfacies.io.complete_dates`` ...).

:func:`to_zarr` writes a DataArray or Dataset to a Zarr store on disk and, when
the store already exists and the data has a ``time`` dimension, *updates* it:
dates already in the store are replaced in place (region writes), new dates
are appended.  :func:`open_zarr` reads a store back so that
``open_zarr(to_zarr(ds, path))`` is identical to ``ds``.

Class maps stay int8: ``NODATA`` (-1) is a listed flag value and the
array's fill value (chunks never written read as nodata), not a CF
``_FillValue``, so :func:`open_zarr` masks nothing to float (nor does plain
``xr.open_zarr`` for Zarr v3; for Zarr v2 it reads the fill value as a mask).  A float class map
(NaN = nodata) added to an integer class-map store is converted: NaN becomes
the store's ``nodata`` flag, other values must be its flag values.

Refused with an error that names the inputs: duplicated dates, data in another
CRS than the store (even with the same coordinates), a class map that cannot be
converted to the store's codes.  Time-zone aware times are converted to UTC and
stored without a time zone (with a warning), the convention of xarray and CF.

Examples
--------
>>> import tempfile, numpy as np, pandas as pd, xarray as xr
>>> from xfacies.catalog import class_flag_attrs
>>> classes = xr.DataArray(np.zeros((2, 3, 4), "int8"), dims=("time", "y", "x"), name="classes",
...                        coords={"time": pd.to_datetime(["2024-07-01", "2024-08-01"]),
...                                "y": [25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]},
...                        attrs=class_flag_attrs())
>>> path = to_zarr(classes, tempfile.mkdtemp() + "/maps.zarr")
>>> ds = open_zarr(path)
>>> ds["classes"].dtype, ds["classes"].encoding["chunks"]
(dtype('int8'), (1, 3, 4))
>>> later = classes.assign_coords(time=pd.to_datetime(["2024-08-01", "2024-09-01"])) + np.int8(1)
>>> _ = to_zarr(later.rename("classes"), path)  # replaces 2024-08-01, appends 2024-09-01
>>> open_zarr(path)["classes"].isel(y=0, x=0).values
array([0, 1, 1], dtype=int8)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.compat import renamed_keywords
from xfacies.catalog import NODATA as _NODATA
from xfacies.errors import GridError, InputError, InputWarning
from xfacies.spatial import same_crs, crs_of
from xfacies.validation import class_codes, require_unique_times
from xfacies.zarr_dates import (
    COMPLETE_ATTR, FAILED_ATTR, REJECTED_ATTR, RECORDS, complete_dates, consolidate, group_attrs, iso_dates,
    mark_complete, quiet, record_dates, recorded_dates, zarr_format_of,
)

__all__ = ["to_zarr", "open_zarr", "zarr_format_of", "layout_regions", "region_writes",
           "complete_dates", "mark_complete", "COMPLETE_ATTR", "record_dates", "recorded_dates",
           "FAILED_ATTR", "REJECTED_ATTR"]

_SPATIAL_CHUNK = 2048

_KEEP_ENCODING = ("grid_mapping",)


# --------------------------------------------------------------------------- preparing
def _as_dataset(obj: xr.DataArray | xr.Dataset) -> xr.Dataset:
    if isinstance(obj, xr.Dataset):
        return obj
    if isinstance(obj, xr.DataArray):
        if obj.name is None:
            raise InputError(
                "the DataArray has no name, which becomes the Zarr variable name; name it, "
                "e.g. to_zarr(da.rename('classes'), store)"
            )
        return obj.to_dataset(promote_attrs=False)
    raise TypeError(f"to_zarr expects an xarray DataArray or Dataset, got {type(obj).__name__}")


def _naive_utc_times(ds: xr.Dataset) -> xr.Dataset:
    """Time-zone aware ``time`` converted to UTC without a time zone (with a warning)."""
    if "time" not in ds.coords:
        return ds
    try:
        idx = pd.DatetimeIndex(np.atleast_1d(ds["time"].to_index() if "time" in ds.indexes
                                             else pd.to_datetime(np.atleast_1d(ds["time"].values))))
    except (TypeError, ValueError):
        return ds
    if idx.tz is None:
        return ds
    warnings.warn(
        f"the time coordinate is time-zone aware ({idx.tz}); it is converted to UTC and stored "
        "without a time zone (datetime64, the xarray/CF convention): convert it yourself to "
        "silence this, e.g. obj.assign_coords(time=obj.indexes['time'].tz_convert('UTC')"
        ".tz_localize(None))", InputWarning, stacklevel=4)
    naive = idx.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
    attrs = dict(ds["time"].attrs)
    if ds["time"].ndim == 0:
        return ds.assign_coords(time=((), naive[0], attrs))
    return ds.assign_coords(time=(ds["time"].dims, naive, attrs))


def _is_class_map(var: xr.Variable) -> bool:
    return "flag_meanings" in var.attrs and np.issubdtype(var.dtype, np.integer)


def _prepare(ds: xr.Dataset) -> xr.Dataset:
    """Copy with clean encodings, object strings and no _FillValue on class maps."""
    ds = ds.copy(deep=False)
    for name in list(ds.variables):
        var = ds.variables[name]
        keep = {k: v for k, v in var.encoding.items() if k in _KEEP_ENCODING}
        attrs = dict(var.attrs)
        if _is_class_map(var):
            attrs.pop("_FillValue", None)
            if "flag_values" in attrs:
                attrs["flag_values"] = np.asarray(attrs["flag_values"]).astype(var.dtype)
        if var.dtype.kind in ("U", "T"):
            new = xr.Variable(var.dims, np.asarray(var.values).astype(object), attrs)
        else:
            new = var.copy(deep=False)
            new.attrs = attrs
        new.encoding = keep
        if name in ds.indexes:
            ds = ds.assign_coords({name: new})
        else:
            ds[name] = new
    return ds


def _regular_chunks(ds: xr.Dataset) -> xr.Dataset:
    """Make dask chunks regular (equal but the last) with time chunk 1 preferred."""
    chunks = ds.chunksizes if ds.chunks else {}
    fix = {}
    for dim, c in chunks.items():
        if len(c) > 1 and (len(set(c[:-1])) > 1 or c[-1] > c[0]):
            fix[dim] = c[0]
    return ds.chunk(fix) if fix else ds


def _encoding(ds: xr.Dataset, zarr_format: int = 3) -> dict[str, dict[str, Any]]:
    enc: dict[str, dict[str, Any]] = {}
    dchunks = dict(ds.chunksizes) if ds.chunks else {}
    for name, var in ds.variables.items():
        e: dict[str, Any] = {k: v for k, v in var.encoding.items() if k in _KEEP_ENCODING}
        if var.ndim:
            chunks = []
            for dim, n in zip(var.dims, var.shape):
                if dim == "time":
                    chunks.append(1)
                elif dim in dchunks and var.chunks is not None:
                    chunks.append(max(1, dchunks[dim][0]))
                elif dim in ("x", "y") and var.ndim > 1:
                    chunks.append(max(1, min(n, _SPATIAL_CHUNK)))
                else:
                    chunks.append(max(1, n))
            e["chunks"] = tuple(chunks)
        if _is_class_map(var):
            if zarr_format == 3:
                # the array's fill value (what a chunk never written reads as) is NODATA, not 0 (ice),
                # also with plain xr.open_zarr; no CF _FillValue, so the map stays int8 and -1 stays
                # a listed flag value
                e["_FillValue"] = None
                e["fill_value"] = _NODATA
            else:
                # Zarr v2 has one fill value, which xarray also reads as a CF mask: plain
                # xr.open_zarr gives float with NaN for nodata and for chunks never written (not 0,
                # ice); xfacies.io.open_zarr does not mask it, so the map stays int8 with -1
                e["_FillValue"] = _NODATA
        if name == "time" and np.issubdtype(var.dtype, np.datetime64):
            ns = var.values.astype("datetime64[ns]").astype(np.int64)
            fine = bool(np.any(ns % 1000))
            e["units"] = ("nanoseconds" if fine else "microseconds") + " since 1970-01-01"
            e["calendar"] = "proleptic_gregorian"
            e["dtype"] = np.dtype("int64")
        enc[name] = e
    return enc


# --------------------------------------------------------------------------- checks
def _flags(var: xr.Variable | xr.DataArray) -> tuple[str, tuple[int, ...]] | None:
    if "flag_meanings" not in var.attrs:
        return None
    meanings = " ".join(str(var.attrs["flag_meanings"]).split())
    values = tuple(int(v) for v in np.atleast_1d(np.asarray(var.attrs.get("flag_values", []))))
    return meanings, values


def _check_catalogue(existing: xr.Dataset, ds: xr.Dataset, store: Path) -> None:
    for name in ds.data_vars:
        if name not in existing.variables:
            continue
        new, old = _flags(ds[name]), _flags(existing[name])
        if new != old and (new is not None or old is not None):
            raise InputError(
                f"class catalogue mismatch for variable {name!r}: the store {str(store)!r} has "
                f"flag_meanings={old[0] if old else None!r} flag_values={list(old[1]) if old else None}, "
                f"the data has flag_meanings={new[0] if new else None!r} "
                f"flag_values={list(new[1]) if new else None}; write to a new store "
                "(or mode='w' to overwrite this one) instead of mixing catalogues"
            )


def _crs_name(wkt: str) -> str:
    try:
        from pyproj import CRS

        return CRS.from_user_input(wkt).to_string()
    except Exception:  # no pyproj, or a WKT it cannot read
        return wkt[:80]


def _check_crs(existing: xr.Dataset, ds: xr.Dataset, store: Path) -> None:
    """The data's CRS (its grid-mapping variable) must be the store's where both declare one."""
    old, new = crs_of(existing), crs_of(ds)
    if old is not None and new is not None and not same_crs(old, new):
        raise GridError(
            f"the data is in {_crs_name(new)} but the store {str(store)!r} is in {_crs_name(old)}: "
            "with equal x/y numbers they are still different places, and mixing them would be "
            "silently wrong. Reproject the data onto the store's grid first (e.g. "
            "data.rio.reproject_match(xfacies.io.open_zarr(store))) or write it to a new store "
            "(or mode='w')"
        )


def _class_codes(block: np.ndarray, *, nodata: int, valid: tuple[int, ...], dtype: Any, name: str,
                 store: str) -> np.ndarray:
    """A float class-map block as the store's integer codes: NaN -> ``nodata``; refuse others."""
    return class_codes(block, nodata=nodata, valid=valid, what=f"variable {name!r}",
                       fix=(f"the store {store!r} holds the flag_values {list(valid)}; write class ids (NaN for "
                            "nodata) or convert the map first")).astype(dtype)


def _to_store_dtypes(existing: xr.Dataset, ds: xr.Dataset, store: Path, *, eager: bool = False) -> xr.Dataset:
    """Float class maps (NaN = nodata) added to an integer class-map variable of the store get the
    store's integer codes, NaN becoming its ``nodata`` flag (cast to int as they are, NaN would be
    written as 0 = ice).  ``eager``: convert (and check) dask data now, so that values that are
    not class codes are refused before anything is appended to the store."""
    for name in list(ds.data_vars):
        if name not in existing.variables or not np.issubdtype(ds[name].dtype, np.floating):
            continue
        old = existing.variables[name]
        if not _is_class_map(old):
            continue
        flags = _flags(old)
        assert flags is not None
        meanings, values = flags
        by_name = {m.lower().replace("_", ""): v for m, v in zip(meanings.split(), values)}
        nodata = by_name.get("nodata")  # the catalogue's "no_data" (NODATA, -1)
        if nodata is None:
            raise InputError(
                f"variable {name!r} is a float class map (NaN = nodata) but the store {str(store)!r} holds "
                f"it as {old.dtype} without a 'no_data' flag (flag_meanings={meanings!r}), so NaN has no "
                "code to become; write integer class ids, or write to a new store"
            )
        new = xr.apply_ufunc(
            _class_codes, ds[name], dask="parallelized", output_dtypes=[old.dtype], keep_attrs=True,
            kwargs=dict(nodata=int(nodata), valid=tuple(values), dtype=old.dtype, name=name, store=str(store)),
        )
        new.attrs["flag_values"] = np.asarray(new.attrs.get("flag_values", values)).astype(old.dtype)
        new.attrs.pop("_FillValue", None)
        if eager and new.chunks is not None:
            new = new.compute()
        ds = ds.assign({name: new})
    return ds


def _check_static(existing: xr.Dataset, ds: xr.Dataset, store: Path) -> None:
    """Variables without time must match the store (same grid, same glaciers, same CRS)."""
    _check_crs(existing, ds, store)
    for name, var in ds.variables.items():
        if "time" in var.dims or name not in existing.variables:
            continue
        old = existing.variables[name]
        if old.dims != var.dims or old.shape != var.shape:
            raise GridError(
                f"variable {name!r} has dims {dict(zip(var.dims, var.shape))} in the data but "
                f"{dict(zip(old.dims, old.shape))} in the store {str(store)!r}; only data on the "
                "same grid (same glaciers, classes) can be added; use a new store or mode='w'"
            )
        if name in ds.indexes or name in ("x", "y"):
            a, b = np.asarray(var.values), np.asarray(old.values)
            same = np.array_equal(a.astype(object) if a.dtype.kind in "OUT" else a,
                                  b.astype(object) if b.dtype.kind in "OUT" else b)
            if not same:
                raise GridError(
                    f"coordinate {name!r} differs between the data and the store "
                    f"{str(store)!r}; only data on the same grid can be added; use a new "
                    "store or mode='w'"
                )
    time_vars = {n for n, v in ds.variables.items() if "time" in v.dims}
    store_time_vars = {n for n, v in existing.variables.items() if "time" in v.dims}
    if time_vars != store_time_vars:
        raise InputError(
            f"the data's time-dependent variables {sorted(time_vars)} differ from the store's "
            f"{sorted(store_time_vars)} ({str(store)!r}); write the same variables, or use a "
            "new store or mode='w'"
        )


# --------------------------------------------------------------------------- writing
@renamed_keywords(store="out")
def to_zarr(
    obj: xr.DataArray | xr.Dataset,
    out: str | os.PathLike,
    *,
    zarr_format: Literal[2, 3] = 3,
    mode: Literal["auto", "w", "w-"] = "auto",
    skip_existing: bool = False,
) -> Path:
    """Write (or update) a class map, confidence map or fraction table as Zarr.

    Parameters
    ----------
    obj
        A named DataArray (its name becomes the variable name) or a Dataset,
        numpy- or dask-backed (dask arrays are written chunk by chunk).
    out
        Path of the Zarr store (a directory).
    zarr_format
        3 (default) or 2, for a new store; an existing store keeps its format.
    mode
        ``"auto"``: create the store, or update it when it exists and the data
        has a ``time`` dimension (see Notes).  ``"w"``: overwrite the store.
        ``"w-"``: fail if it exists.
    skip_existing
        When updating, write only dates missing from the store and leave the
        others untouched (resume an interrupted run).

    Returns
    -------
    pathlib.Path
        The store path.

    Notes
    -----
    - Integer variables with ``flag_meanings`` (class maps) are written
      without ``_FillValue`` and keep their dtype and CF flag attributes.
    - Variables with a ``time`` dimension are chunked 1 along ``time``; y/x
      chunks follow the dask chunks (made regular), else at most 2048.
    - Updating a store: its time-independent variables (x, y, glacier, ...)
      must equal the data's and both must hold the same time-dependent
      variables.  Dates already in the store are **replaced** in place (no
      duplicates); new dates are **appended** in time order after the
      existing ones.  Appending dates earlier than the store's last date leaves
      the store's time axis unsorted; :func:`open_zarr` returns it sorted.
    - A store whose class catalogue (``flag_meanings`` / ``flag_values``)
      differs from the data's is refused; so is data in another CRS than the
      store (both grid mappings are compared, not only the coordinates).
    - A float class map (NaN = nodata, e.g. after ``.where``) added to a store
      that holds the variable as an integer class map is converted to the
      store's codes: NaN becomes the ``nodata`` flag (-1), other values must be
      flag values (else an error, before anything is written: a dask-backed
      float class map is computed first).
    - Time-zone aware times are converted to UTC without a time zone, with a
      warning; duplicated dates are refused (listing them and the fix).
    - Strings (glacier ids, class names) are stored as variable-length
      strings; zarr's notes about them are silenced.

    Raises
    ------
    ValueError
        Unnamed DataArray, an existing store with ``mode="w-"`` or with data
        without ``time``, a catalogue, grid or CRS mismatch, duplicated dates,
        a float class map that is not class codes.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> da = xr.DataArray(np.full((2, 2), 3, "int8"), dims=("y", "x"), name="classes",
    ...                   coords={"y": [15.0, 5.0], "x": [5.0, 15.0]})
    >>> p = to_zarr(da, tempfile.mkdtemp() + "/one.zarr", zarr_format=2)
    >>> open_zarr(p)["classes"].values.tolist()
    [[3, 3], [3, 3]]
    """
    if zarr_format not in (2, 3):
        raise InputError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    if mode not in ("auto", "a", "w", "w-"):
        raise InputError(f"mode must be 'auto', 'w' or 'w-', got {mode!r}")
    path = Path(out)
    ds = _naive_utc_times(_as_dataset(obj))
    require_unique_times(ds, f"the data for {str(path)!r}")
    ds = _regular_chunks(_prepare(ds))
    fmt = zarr_format_of(path)

    if fmt is not None and mode == "w-":
        raise InputError(f"the Zarr store {str(path)!r} exists (mode='w-'); use mode='w' to overwrite")
    if path.exists() and fmt is None and mode != "w":
        raise InputError(
            f"{str(path)!r} exists but is not a Zarr store; choose another path or pass "
            "mode='w' to overwrite it"
        )
    if fmt is None or mode == "w":
        _write_new(ds, path, zarr_format)
        consolidate(path)
        return path
    if "time" not in ds.dims:
        raise InputError(
            f"the Zarr store {str(path)!r} exists and the data has no 'time' dimension to "
            "add; pass mode='w' to overwrite it or write to a new path"
        )
    _update(ds, path, fmt, skip_existing)
    consolidate(path)
    return path


def _write_new(ds: xr.Dataset, path: Path, zarr_format: int) -> None:
    enc = _encoding(ds, zarr_format)
    with quiet():
        ds.to_zarr(
            path,
            mode="w",
            zarr_format=zarr_format,
            consolidated=(zarr_format == 2),
            encoding=enc,
        )


def _store_chunks(existing: xr.Dataset) -> dict[str, int]:
    out: dict[str, int] = {}
    for var in existing.variables.values():
        for dim, c in zip(var.dims, var.encoding.get("chunks") or ()):
            out.setdefault(dim, int(c))
    return out


def _on_store_chunks(payload: xr.Dataset, existing: xr.Dataset) -> xr.Dataset:
    """The dask-backed variables of ``payload`` rechunked to the store's chunks.  Per-date
    coordinates (the sun angles, platform, item ids: no y/x dim) are held in memory -- loaded
    once if lazy -- so that writing them costs no task (``Dataset.chunk`` would turn each into a
    dask array, and a write task per coordinate and date)."""
    if not payload.chunks:
        return payload
    import dask

    # small lazy coordinates (no y/x dim: one value per date) are loaded, together, once
    small = [n for n, v in payload.coords.items()
             if v.chunks is not None and n not in payload.indexes and not {"y", "x"} & set(v.dims)]
    if small:
        values = dask.compute(*(payload[n].variable for n in small))
        payload = payload.assign_coords(dict(zip(small, values)))
    sc = _store_chunks(existing)
    lazy = {n: v.chunk({d: sc.get(d, -1) for d in v.dims}) for n, v in payload.variables.items()
            if v.chunks is not None and n not in payload.indexes}
    coords = {n: v for n, v in lazy.items() if n in payload.coords}
    out = payload.assign_coords(coords) if coords else payload
    return out.assign({n: v for n, v in lazy.items() if n not in coords})


def _update(ds: xr.Dataset, path: Path, fmt: int, skip_existing: bool) -> None:
    existing = _open_raw(path, fmt, chunks=None)
    _check_catalogue(existing, ds, path)
    _check_static(existing, ds, path)
    ds = _to_store_dtypes(existing, ds, path, eager=True)

    store_times = pd.DatetimeIndex(existing["time"].values) if existing.sizes.get("time") else pd.DatetimeIndex([])
    times = pd.DatetimeIndex(ds["time"].values)
    present = times.isin(store_times)
    static = [n for n, v in ds.variables.items() if "time" not in v.dims]
    payload = ds.drop_vars(static)
    payload = _on_store_chunks(payload, existing)
    consolidated = fmt == 2

    with quiet():
        if not skip_existing:
            positions = store_times.get_indexer(times[present])
            for i, t in zip(positions, times[present]):
                one = payload.sel(time=[t])
                one.to_zarr(path, region={"time": slice(int(i), int(i) + 1)}, consolidated=consolidated)
        if (~present).any():
            new = payload.isel(time=np.flatnonzero(~present)).sortby("time")
            new.to_zarr(path, append_dim="time", consolidated=consolidated)


# --------------------------------------------------------------------------- parallel region writes
def layout_regions(
    obj: xr.DataArray | xr.Dataset,
    store: str | os.PathLike,
    *,
    zarr_format: Literal[2, 3] = 3,
) -> pd.DatetimeIndex:
    """Create or extend a store for all dates of ``obj`` without computing its data.

    The first step of parallel writing: the metadata, the coordinates and the
    time axis (existing dates kept, new dates appended) are written now, the
    data of dask-backed variables is **not** computed.  Then
    :func:`region_writes` gives one independent write per date (disjoint
    regions of the store: safe to run in parallel on any Dask scheduler,
    including a distributed cluster whose workers write the chunks
    themselves), and :func:`mark_complete` records each date once its write
    finished, so an interrupted run can be resumed (:func:`complete_dates`).

    Until a date is marked complete, its chunks may be unwritten (class maps
    then read as 0, confidence as NaN): trust only :func:`complete_dates`.

    Parameters
    ----------
    obj
        DataArray (named) or Dataset with a ``time`` dimension, usually lazy.
    store
        Path of the Zarr store (created, or extended when it exists; the same
        checks as :func:`to_zarr` apply: same grid, catalogue and variables).
    zarr_format
        Format of a new store.

    Returns
    -------
    pandas.DatetimeIndex
        The store's time axis after the layout, in store order.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd, xarray as xr, dask
    >>> t = pd.to_datetime(["2024-07-01", "2024-08-01"])
    >>> da_ = xr.DataArray(np.arange(8.0).reshape(2, 2, 2), dims=("time", "y", "x"), name="v",
    ...                    coords={"time": t, "y": [15.0, 5.0], "x": [5.0, 15.0]}).chunk({"time": 1})
    >>> path = tempfile.mkdtemp() + "/r.zarr"
    >>> list(layout_regions(da_, path).strftime("%m"))
    ['07', '08']
    >>> writes = region_writes(da_, path)
    >>> _ = dask.compute(*writes.values())
    >>> mark_complete(path, list(writes))
    >>> len(complete_dates(path)), float(open_zarr(path)["v"].sum())
    (2, 28.0)
    """
    path = Path(store)
    ds = _naive_utc_times(_as_dataset(obj))
    if "time" not in ds.dims:
        raise InputError("layout_regions needs data with a 'time' dimension (one region per date)")
    require_unique_times(ds, f"the data for {str(path)!r}")
    ds = _regular_chunks(_prepare(ds))
    fmt = zarr_format_of(path)
    if path.exists() and fmt is None:
        raise InputError(f"{str(path)!r} exists but is not a Zarr store; choose another path")
    with quiet():
        if fmt is None:
            ds.to_zarr(path, mode="w", zarr_format=zarr_format, consolidated=(zarr_format == 2),
                       encoding=_encoding(ds, zarr_format), compute=False)
            import zarr

            zarr.open_group(str(path), mode="r+").attrs[COMPLETE_ATTR] = []
        else:
            existing = _open_raw(path, fmt, chunks=None)
            _check_catalogue(existing, ds, path)
            _check_static(existing, ds, path)
            ds = _to_store_dtypes(existing, ds, path)
            store_times = pd.DatetimeIndex(existing["time"].values)
            new = ~pd.DatetimeIndex(ds["time"].values).isin(store_times)
            # a store written by to_zarr has no record: all its dates are complete
            record = complete_dates(path)
            record = store_times if record is None else record
            kept = {k: v for k, v in group_attrs(path).items() if k in RECORDS.values()}
            if new.any():
                static = [n for n, v in ds.variables.items() if "time" not in v.dims]
                payload = ds.drop_vars(static).isel(time=np.flatnonzero(new)).sortby("time")
                payload = _on_store_chunks(payload, existing)
                payload.to_zarr(path, append_dim="time", consolidated=(fmt == 2), compute=False)
            # (re)write the records after the append, which rewrites the group's attributes
            import zarr

            zarr.open_group(str(path), mode="r+").attrs.update(
                {COMPLETE_ATTR: iso_dates(record.sort_values()), **kept})
    consolidate(path)
    return pd.DatetimeIndex(_open_raw(path, zarr_format_of(path), chunks=None)["time"].values)


def region_writes(
    obj: xr.DataArray | xr.Dataset,
    store: str | os.PathLike,
) -> dict[pd.Timestamp, Any]:
    """One delayed region write per date of ``obj`` into a store laid out by :func:`layout_regions`.

    Each value is a :class:`dask.delayed.Delayed`; computing it writes that
    date's chunks (and per-date coordinates) into its own time slot of the
    store and nothing else, so the writes of different dates -- and the chunk
    writes inside one date, which xarray aligns with the store's chunks -- are
    disjoint and run in parallel.  On a distributed cluster the workers
    compute and write the chunks; nothing travels back to the client.

    Parameters
    ----------
    obj
        The same variables as the store, for dates already in its time axis.
    store
        Path of the Zarr store.

    Returns
    -------
    dict
        ``{date: Delayed}`` in the order of ``obj``'s time axis.

    Raises
    ------
    ValueError
        A date that is not in the store's time axis (lay it out first).

    Examples
    --------
    See :func:`layout_regions`.
    """
    path = Path(store)
    fmt = zarr_format_of(path)
    if fmt is None:
        raise FileNotFoundError(f"no Zarr store at {str(path)!r}; create it with layout_regions first")
    ds = _naive_utc_times(_as_dataset(obj))
    require_unique_times(ds, f"the data for {str(path)!r}")
    ds = _regular_chunks(_prepare(ds))
    existing = _open_raw(path, fmt, chunks=None)
    _check_crs(existing, ds, path)
    ds = _to_store_dtypes(existing, ds, path)
    store_times = pd.DatetimeIndex(existing["time"].values)
    times = pd.DatetimeIndex(ds["time"].values)
    pos = store_times.get_indexer(times)
    if (pos < 0).any():
        raise InputError(
            f"dates {list(times[pos < 0].strftime('%Y-%m-%d'))} are not in the store {str(path)!r}; "
            "call layout_regions(obj, store) first")
    static = [n for n, v in ds.variables.items() if "time" not in v.dims]
    payload = ds.drop_vars(static)
    payload = _on_store_chunks(payload, existing)
    out: dict[pd.Timestamp, Any] = {}
    with quiet():
        for k, (t, i) in enumerate(zip(times, pos)):
            one = payload.isel(time=[k])
            out[t] = one.to_zarr(path, region={"time": slice(int(i), int(i) + 1)},
                                 consolidated=(fmt == 2), compute=False)
    return out


# --------------------------------------------------------------------------- reading
def _open_raw(path: Path, fmt: int, chunks: Any) -> xr.Dataset:
    consolidated = fmt == 2 and (path / ".zmetadata").exists()
    with quiet():
        ds = xr.open_zarr(
            path,
            chunks=chunks,
            consolidated=consolidated,
            zarr_format=fmt,
            # Zarr v2 keeps a class map's NODATA as its fill value, which xarray reads as a CF
            # mask (float, NaN): read v2 unmasked, then mask every variable but the class maps
            mask_and_scale=fmt != 2,
            use_zarr_fill_value_as_mask=False,
            decode_coords="all",
        )
        if fmt == 2:
            other = [n for n, v in ds.variables.items()
                     if not _is_class_map(v) and ({"_FillValue", "missing_value", "scale_factor", "add_offset"}
                                                  & (set(v.attrs) | set(v.encoding)))]
            if other:
                decoded = xr.decode_cf(ds[other], decode_times=False, decode_coords=False)
                ds = ds.assign({n: decoded[n] for n in other if n in ds.data_vars})
                ds = ds.assign_coords({n: decoded[n] for n in other if n in ds.coords})
            for n, v in ds.variables.items():
                if _is_class_map(v):
                    v.attrs.pop("_FillValue", None)
                    v.encoding["_FillValue"] = _NODATA
    return ds


def open_zarr(store: str | os.PathLike, *, chunks: Any = {}) -> xr.Dataset:  # noqa: B006
    """Open a store written by :func:`to_zarr` (lazily, dask-backed).

    Opens without consolidated metadata for format 3 (with it for format 2
    when present), never turns the Zarr ``fill_value`` into a mask (so int8
    class maps stay int8), restores ``flag_values`` to the variable's dtype,
    strings to object dtype, and sorts by ``time`` when the store's time axis
    is unsorted (dates appended out of order).  In a store written by regions
    (:func:`layout_regions`), only the dates recorded as complete are shown
    (a run in progress or interrupted never exposes unwritten chunks).

    Parameters
    ----------
    store
        Path of the Zarr store.
    chunks
        Passed to :func:`xarray.open_zarr`; ``{}`` (default) uses the store's
        chunks, ``None`` opens without dask.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    FileNotFoundError
        No Zarr store at ``store``.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> from xfacies.catalog import class_flag_attrs
    >>> da = xr.DataArray(np.array([[-1, 0], [1, 7]], "int8"), dims=("y", "x"), name="classes",
    ...                   coords={"y": [15.0, 5.0], "x": [5.0, 15.0]}, attrs=class_flag_attrs())
    >>> back = open_zarr(to_zarr(da, tempfile.mkdtemp() + "/c.zarr"))
    >>> xr.testing.assert_identical(back.compute(), da.to_dataset())
    >>> back["classes"].attrs["flag_values"].dtype
    dtype('int8')
    """
    path = Path(store)
    fmt = zarr_format_of(path)
    if fmt is None:
        raise FileNotFoundError(
            f"no Zarr store at {str(path)!r} (no zarr.json or .zgroup); write one with "
            "xfacies.io.to_zarr"
        )
    ds = _open_raw(path, fmt, chunks)
    for name in list(ds.variables):
        var = ds.variables[name]
        if "flag_values" in var.attrs and np.issubdtype(var.dtype, np.integer):
            var.attrs["flag_values"] = np.asarray(var.attrs["flag_values"]).astype(var.dtype)
        if var.dtype.kind == "T" or (var.dtype.kind == "U"):
            new = xr.Variable(var.dims, np.asarray(var.values).astype(object), var.attrs, var.encoding)
            if name in ds.indexes:
                ds = ds.assign_coords({name: new})
            else:
                ds[name] = new
    done = ds.attrs.pop(COMPLETE_ATTR, None)
    if done is not None and "time" in ds.indexes:
        # a store written in parallel by regions: show only the dates whose write finished
        keep = ds.indexes["time"].isin(pd.to_datetime(list(done)))
        if not keep.all():
            ds = ds.isel(time=np.flatnonzero(keep))
    if "time" in ds.indexes and not ds.indexes["time"].is_monotonic_increasing:
        ds = ds.sortby("time")
    return ds

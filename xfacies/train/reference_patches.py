"""The reference study's patch folders: one 11-band 33 x 33 GeoTIFF per labelled pixel, named
``{fold}_{glacier}_{date}_..._{class}.tif`` (:func:`read_reference_patches`,
:func:`write_reference_patches`, :func:`parse_reference_name`, :func:`reference_name`).

Reading streams the files in batches and keeps a one-time Zarr cache, so the second open of the
same folder reads the Zarr instead.  The result is the same patch set as
:func:`xfacies.train.data.patches_from_points` gives (its schema is described there).

Examples
--------
>>> parse_reference_name("2_RGI60-11.00897_2019-08-15_x_snow.tif")["class"]
1
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xfacies import catalog
from xfacies.errors import GridError, InputError
from xfacies.train.data import CLASS_IDS, class_ids, epsg_or_zero, patch_set

__all__ = ["REFERENCE_PATTERN", "REFERENCE_FEATURES", "REFERENCE_PATCH_SIZE", "parse_reference_name", "reference_name",
           "read_reference_patches", "write_reference_patches"]

#: The reference layout's file-name pattern (``...`` = any further ``_``-separated fields).
REFERENCE_PATTERN = "{fold}_{glacier}_{date}_..._{class}.tif"
#: Side of a reference patch in pixels.
REFERENCE_PATCH_SIZE = 33
_CACHE_VERSION = "1"
_BATCH = 1024  # files per read task (and Zarr chunk along ``sample``)
_TIF = re.compile(r"\.tiff?$", re.IGNORECASE)
_NAME_HELP = (
    f"expected {REFERENCE_PATTERN}, e.g. 0_hintereisferner_20190815_1234_snow.tif: fold an "
    "integer, glacier without '_', date YYYYMMDD or YYYY-MM-DD, class one of "
    + ", ".join(catalog.class_names())
)

#: Bands of a reference patch file, in order (feature set 4).
REFERENCE_FEATURES: tuple[str, ...] = catalog.FEATURE_SETS[4]


# --------------------------------------------------------------------------- the reference layout
def parse_reference_name(name: str | os.PathLike[str]) -> dict[str, Any]:
    """Fields of a reference patch file name ``{fold}_{glacier}_{date}_..._{class}.tif``.

    Returns
    -------
    dict
        ``fold`` (int), ``glacier`` (str), ``date`` (:class:`numpy.datetime64`, day), ``class``
        (int id), ``class_name`` and ``extra`` (the ``...`` fields, a list of str).

    Raises
    ------
    ValueError
        A name that does not fit the pattern, an unreadable date or an unknown class; the
        message names the file and shows the expected pattern.

    Examples
    --------
    >>> parse_reference_name("3_hintereisferner_20190815_p17_refrozen-like.tif")["class"]
    5
    >>> parse_reference_name("hef_20190815_snow.tif")
    Traceback (most recent call last):
    ...
    xfacies.errors.InputError: hef_20190815_snow.tif: not a reference patch name (expected {fold}_{glacier}_{date}_..._{class}.tif, e.g. 0_hintereisferner_20190815_1234_snow.tif: fold an integer, glacier without '_', date YYYYMMDD or YYYY-MM-DD, class one of ice, snow, debris, firn, shadow, refrozen-like, water, cloud)
    """
    fname = os.path.basename(os.fspath(name))
    stem = _TIF.sub("", fname)
    parts = stem.split("_")
    if len(parts) < 4 or not parts[0].isdigit() or not all(parts[:3]) or not parts[-1]:
        raise InputError(f"{fname}: not a reference patch name ({_NAME_HELP})")
    date = parts[2]
    iso = (f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 and date.isdigit()
           else date if re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) else "")
    try:
        day = np.datetime64(iso, "D")
    except ValueError:
        day = np.datetime64("NaT")
    if np.isnat(day):
        raise InputError(f"{fname}: {date!r} is not a date YYYYMMDD or YYYY-MM-DD ({_NAME_HELP})")
    cls = parts[-1]
    if cls not in CLASS_IDS and not (cls.isdigit() and int(cls) < len(catalog.CLASSES)):
        raise InputError(f"{fname}: unknown class {cls!r}; classes are {', '.join(catalog.class_names())} "
                         f"(or their ids 0..{len(catalog.CLASSES) - 1}) ({_NAME_HELP})")
    cid = CLASS_IDS[cls] if cls in CLASS_IDS else int(cls)
    return {"fold": int(parts[0]), "glacier": parts[1], "date": day,
            "class": cid, "class_name": catalog.CLASSES[cid].name, "extra": parts[3:-1]}


def reference_name(fold: int, glacier: str, date: Any, class_: int | str, *extra: str) -> str:
    """The reference layout's file name for one patch.

    Examples
    --------
    >>> reference_name(0, "hintereisferner", "2019-08-15", 5, "17")
    '0_hintereisferner_20190815_17_refrozen-like.tif'
    """
    name = catalog.CLASSES[int(class_ids([class_], "class_")[0])].name
    fields = [str(int(fold)), str(glacier), pd.Timestamp(date).strftime("%Y%m%d"), *map(str, extra), name]
    bad = [f for f in fields[1:] if not f or "_" in f or os.sep in f or "/" in f]
    if bad:
        raise InputError(f"file-name fields must be non-empty and contain no '_' or '/': {bad!r}")
    return "_".join(fields) + ".tif"


def _listing(folder: Path) -> list[os.DirEntry[str]]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of reference patches ({REFERENCE_PATTERN})")
    entries = sorted((e for e in os.scandir(folder) if _TIF.search(e.name) and e.is_file()),
                     key=lambda e: e.name)
    if not entries:
        raise FileNotFoundError(f"{folder} holds no .tif files; expected patch files named {REFERENCE_PATTERN}")
    return entries


def _listing_key(entries: Sequence[os.DirEntry[str]]) -> str:
    h = hashlib.sha256(f"xfacies-reference-patches/{_CACHE_VERSION}\n".encode())
    for e in entries:
        st = e.stat()
        h.update(f"{e.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _geokeys(keys: tuple) -> dict[int, int]:
    out = {}
    for k in range(keys[3]):
        kid, loc, _n, value = keys[4 + 4 * k: 8 + 4 * k]
        if loc == 0:
            out[kid] = value
    return out


def _read_tiff_fast(path: str) -> tuple[np.ndarray, float, float, float, float, int, float | None] | None:
    """``(bands, h, w)`` data, ``x0, dx, y0, dy`` (pixel corners), EPSG and nodata read with tifffile
    (several times faster than opening each small file with GDAL), or ``None`` for what GDAL
    should decide (no EPSG code, a transformation matrix, pixel-is-point)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages.first
            tags = page.tags
            if 33550 not in tags or 33922 not in tags or 34264 in tags or 34735 not in tags:
                return None
            keys = _geokeys(tuple(tags[34735].value))
            if keys.get(1025, 1) != 1:  # PixelIsPoint: GDAL shifts by half a pixel; let it
                return None
            model = keys.get(1024)
            epsg = keys.get(3072) if model == 1 else keys.get(2048) if model == 2 else None
            if not epsg or epsg == 32767:
                return None  # user-defined or no CRS: rasterio names it
            arr = page.asarray()
            axes = page.axes
            sx, sy = tags[33550].value[:2]
            ti, tj, _tk, tx, ty = tags[33922].value[:5]
            nod = tags[42113].value if 42113 in tags else None
    except (tifffile.TiffFileError, KeyError, IndexError, ValueError, OSError):
        return None
    if axes == "YXS":
        arr = arr.transpose(2, 0, 1)
    elif axes == "YX":
        arr = arr[None]
    elif axes != "SYX":
        return None
    nodata = float(nod) if nod not in (None, "") else None
    return arr, tx - ti * sx, sx, ty + tj * sy, -sy, int(epsg), nodata


_EPSG_OF_WKT: dict[str, int] = {}


def _read_tiff_rasterio(path: str) -> tuple[np.ndarray, float, float, float, float, int, float | None]:
    import rasterio
    import rasterio.errors

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(path) as src:
            arr = src.read()
            a = src.transform
            wkt = src.crs.to_wkt() if src.crs else ""
            nodata = src.nodata
            georef = bool(src.crs) or not a.is_identity
    if wkt not in _EPSG_OF_WKT:
        _EPSG_OF_WKT[wkt] = epsg_or_zero(wkt) if wkt else 0
    if a.b or a.d:
        raise GridError(f"{Path(path).name}: a rotated grid; reference patches are north-up")
    if not georef:  # no map coordinates: NaN centre
        return arr, np.nan, 1.0, np.nan, -1.0, 0, nodata
    return arr, a.c, a.a, a.f, a.e, _EPSG_OF_WKT[wkt], nodata


def _read_batch(paths: tuple[str, ...], n_bands: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read reference patch files: ``(n, size, size, bands)`` float32, centre x, centre y, EPSG."""
    out = np.empty((len(paths), size, size, n_bands), dtype=np.float32)
    cx = np.empty(len(paths))
    cy = np.empty(len(paths))
    epsg = np.empty(len(paths), dtype=np.int32)
    h = size // 2
    for i, p in enumerate(paths):
        got = _read_tiff_fast(p)
        arr, x0, dx, y0, dy, code, nodata = got if got is not None else _read_tiff_rasterio(p)
        if arr.shape != (n_bands, size, size):
            raise InputError(
                f"{Path(p).name}: {arr.shape[0]} band(s) of {arr.shape[1]} x {arr.shape[2]} pixels; the "
                f"reference layout has {n_bands} bands ({', '.join(REFERENCE_FEATURES)}) of {size} x {size}")
        band_last = np.moveaxis(arr, 0, -1)
        out[i] = band_last
        if nodata is not None and not np.isnan(nodata):
            out[i][band_last == nodata] = np.nan
        cx[i] = x0 + (h + 0.5) * dx
        cy[i] = y0 + (h + 0.5) * dy
        epsg[i] = code
    return out, cx, cy, epsg


def _lazy_reference(folder: Path, entries: Sequence[os.DirEntry[str]], key: str) -> xr.Dataset:
    import dask
    import dask.array as da

    names = [e.name for e in entries]
    fields, bad = [], []
    for nm in names:
        try:
            fields.append(parse_reference_name(nm))
        except ValueError as err:
            bad.append(str(err))
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise InputError(f"{len(bad)} file(s) in {folder} do not fit the reference layout{more}:\n  "
                         + "\n  ".join(bad[:5]))
    size, nb = REFERENCE_PATCH_SIZE, len(REFERENCE_FEATURES)
    parts = {k: [] for k in ("p", "x", "y", "e")}
    for b0 in range(0, len(names), _BATCH):
        batch = tuple(os.path.join(folder, nm) for nm in names[b0:b0 + _BATCH])
        n = len(batch)
        task = dask.delayed(_read_batch, pure=True, nout=4)(batch, nb, size,
                                                            dask_key_name=f"read-reference-{key[:16]}-{b0}")
        parts["p"].append(da.from_delayed(task[0], (n, size, size, nb), np.float32))
        parts["x"].append(da.from_delayed(task[1], (n,), np.float64))
        parts["y"].append(da.from_delayed(task[2], (n,), np.float64))
        parts["e"].append(da.from_delayed(task[3], (n,), np.int32))
    cat = {k: da.concatenate(v) for k, v in parts.items()}
    attrs = {"features": list(REFERENCE_FEATURES), "patch_size": size,
             "source": f"reference patch files in {folder}", "crs": "", "dropped": "[]"}
    return patch_set(cat["p"], REFERENCE_FEATURES, np.array([f["class"] for f in fields]),
                    np.array([f["glacier"] for f in fields]), np.array([f["date"] for f in fields]),
                    np.array([f["fold"] for f in fields]), np.array([_TIF.sub("", nm) for nm in names]),
                    cat["x"], cat["y"], cat["e"], attrs)


def _default_cache_dir() -> Path:
    from xfacies.model.registry import cache_dir

    return cache_dir() / "patches"


def read_reference_patches(folder: str | os.PathLike[str], *, cache: bool = True,
                           cache_dir: str | os.PathLike[str] | None = None) -> xr.Dataset:
    """Open a folder of reference patch GeoTIFFs ``{fold}_{glacier}_{date}_..._{class}.tif``.

    Every ``.tif`` in ``folder`` (not its sub-folders) must be an 11-band 33 x 33 patch of
    feature set 4 (:data:`REFERENCE_FEATURES`), named after the pattern: ``fold`` an integer,
    ``glacier`` any text without ``_``, ``date`` ``YYYYMMDD`` or ``YYYY-MM-DD``, ``class`` a
    catalogue class name (e.g. ``refrozen-like``) or id; fields between date and class are
    ignored.  Other files are ignored.  Values equal to a file's nodata become NaN.

    Parameters
    ----------
    folder
        The folder of patch files.
    cache
        Write a Zarr copy once and read it on later calls.  The cache is keyed by the folder
        listing (names, sizes and modification times of the ``.tif`` files), so adding,
        removing or rewriting a file makes a new one.  Without the cache the Dataset is lazy
        (dask): files are read, in batches of 1024, when the patches are computed.
    cache_dir
        Folder of the caches (default: ``patches/`` under the xfacies cache,
        :func:`xfacies.model.registry.cache_dir`).

    Returns
    -------
    xarray.Dataset
        As :func:`patches_from_points`, sorted by file name; ``label_id`` is the file name
        without ``.tif``.  ``patches`` is dask-backed (from the Zarr cache, or from the files):
        call ``.load()`` to hold them in memory.

    Raises
    ------
    FileNotFoundError
        No such folder, or no ``.tif`` in it.
    ValueError
        File names that do not fit the pattern (all are checked before anything is read; up to
        five are named), unknown classes, and (when read) a file with another band count or
        size.

    Examples
    --------
    >>> ds = read_reference_patches("patches/")                                  # doctest: +SKIP
    >>> train = ds.isel(sample=~ds.fold.isin([0, 5])).load()                     # doctest: +SKIP
    """
    folder = Path(folder)
    entries = _listing(folder)
    key = _listing_key(entries)
    if not cache:
        return _lazy_reference(folder, entries, key)
    root = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    store = root / f"reference-{key[:24]}.zarr"
    if not (store / ".complete").exists():
        ds = _lazy_reference(folder, entries, key)
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{store.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            # a local, one-time cache, written uncompressed: compressing costs more time than it saves
            ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True,
                       encoding={"patches": {"compressors": None}})
            (tmp / ".complete").write_text(json.dumps({"folder": str(folder.resolve()), "files": len(entries)}))
            try:
                os.replace(tmp, store)
            except OSError:  # another process finished first: use its copy
                if not (store / ".complete").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    import dask

    out = xr.open_zarr(store, consolidated=True)
    small = [c for c in out.coords if c not in out.indexes]
    values = dask.compute(*[out[c].data for c in small])
    out = out.assign_coords({c: (out[c].dims, v, out[c].attrs) for c, v in zip(small, values)})
    out.attrs["cache"] = str(store)
    return out


def write_reference_patches(ds: xr.Dataset, folder: str | os.PathLike[str], *, resolution: float = 10.0,
                            compress: str | None = None) -> list[Path]:
    """Write patches as reference patch GeoTIFFs ``{fold}_{glacier}_{YYYYMMDD}_{i}_{class}.tif``.

    The inverse of :func:`read_reference_patches` (e.g. to share patches cut with
    :func:`patches_from_points` in the study's layout): one 11-band 33 x 33 float32 GeoTIFF per
    sample, bands in :data:`REFERENCE_FEATURES` order (band descriptions = feature names), the
    ``...`` field the sample number.  Georeferenced when ``center_x``/``center_y`` and ``epsg``
    are known (``resolution`` = pixel size in metres).

    Parameters
    ----------
    ds
        A Dataset as returned by :func:`patches_from_points` with the 11 reference bands and
        ``patch_size`` 33; every sample needs a ``glacier`` without ``_``.
    folder
        Output folder (created; existing files of the same name are overwritten).
    resolution
        Pixel size of the patches in map units.
    compress
        GDAL compression (e.g. ``"deflate"``), default none.

    Returns
    -------
    list of pathlib.Path
        The files written, in sample order.

    Examples
    --------
    >>> write_reference_patches(ds, "patches/")                                  # doctest: +SKIP
    """
    import rasterio
    import rasterio.errors
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    bands = [str(b) for b in ds["band"].values]
    size = ds.sizes["y"]
    if bands != list(REFERENCE_FEATURES) or size != REFERENCE_PATCH_SIZE or ds.sizes["x"] != size:
        raise InputError(
            f"the reference layout has {len(REFERENCE_FEATURES)} bands {list(REFERENCE_FEATURES)} of "
            f"{REFERENCE_PATCH_SIZE} x {REFERENCE_PATCH_SIZE}; got bands {bands} of {size} x {ds.sizes['x']}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = ds.sizes["sample"]
    get = {c: (ds[c].values if c in ds.coords else None) for c in ("center_x", "center_y", "epsg")}
    meta = {c: ds[c].values for c in ("fold", "glacier", "date", "class")}
    h = size // 2
    out = []
    profile = {"driver": "GTiff", "width": size, "height": size, "count": len(bands), "dtype": "float32"}
    if compress:
        profile["compress"] = compress
    crs_cache: dict[int, Any] = {}
    patches = ds["patches"].transpose("sample", "band", "y", "x")
    for i0 in range(0, n, _BATCH):
        block = np.asarray(patches[i0:i0 + _BATCH].values, dtype=np.float32)
        for j in range(block.shape[0]):
            i = i0 + j
            name = reference_name(int(meta["fold"][i]), str(meta["glacier"][i]), meta["date"][i],
                                  int(meta["class"][i]), str(i))
            extra: dict[str, Any] = {}
            cx = get["center_x"][i] if get["center_x"] is not None else np.nan
            cy = get["center_y"][i] if get["center_y"] is not None else np.nan
            if np.isfinite(cx) and np.isfinite(cy):
                extra["transform"] = from_origin(cx - (h + 0.5) * resolution, cy + (h + 0.5) * resolution,
                                                 resolution, resolution)
                code = int(get["epsg"][i]) if get["epsg"] is not None else 0
                if code:
                    crs_cache.setdefault(code, CRS.from_epsg(code))
                    extra["crs"] = crs_cache[code]
            path = folder / name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                with rasterio.open(path, "w", **profile, **extra) as dst:
                    dst.write(block[j])
                    dst.descriptions = tuple(bands)
            out.append(path)
    return out

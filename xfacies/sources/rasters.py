"""Your own rasters as a reflectance cube: a folder of GeoTIFFs (any CRS GDAL reads) in, a lazy
``(time, band, y, x)`` cube like :func:`xfacies.open_stac`'s out.

Each file is one date: either a multi-band file (its bands in ``bands`` order) or, with ``bands``
given as ``{name: token}``, one single-band file per band whose name holds the token
(``S2_20210815_B03.tif``).  The date comes from the file name (an ISO or compact date, or a
regex/callable of yours) or from the file's tags.  Values are scaled to reflectance
(``value * scale + offset``); the files' own nodata and any ``nodata=`` values (e.g. 0 outside a
clipped glacier) become NaN.  Files on another grid than the first are reprojected (bilinear)
onto it, or onto ``like=``.

Examples
--------
>>> cube = open_rasters("crops/*.tif", ["blue", "green", "red"], scale=1e-4, nodata=0)  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.errors import GridError, InputError
from xfacies.validation import require_unique_times

__all__ = ["open_rasters", "DATE_PATTERN", "RASTER_SUFFIXES"]

#: Dates found in file names when ``time=None``: ``2021-08-15``, ``2021_08_15`` or ``20210815``
#: (not inside a longer run of digits).
DATE_PATTERN = r"(?<!\d)(\d{4})[-_]?(\d{2})[-_]?(\d{2})(?!\d)"

#: File suffixes a folder is listed for.
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img", ".nc")

#: Tags that may hold a file's acquisition date.
_DATE_TAGS = ("ACQUISITION_DATE", "DATE_ACQUIRED", "SENSING_TIME", "DATETIME", "TIFFTAG_DATETIME", "time", "date")


def _list(paths: Any) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in RASTER_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"the folder {str(p)!r} holds no rasters ({', '.join(RASTER_SUFFIXES)})")
            return files
        if any(c in str(paths) for c in "*?["):
            files = sorted(Path(f) for f in glob.glob(str(paths)))
            if not files:
                raise FileNotFoundError(f"no file matches {str(paths)!r}; check the pattern and the folder")
            return files
        if not p.exists():
            raise FileNotFoundError(f"{str(p)!r} does not exist; give a folder, a glob such as 'crops/*.tif' or "
                                    "a list of files")
        return [p]
    files = [Path(f) for f in paths]
    if not files:
        raise InputError("paths is empty; give a folder, a glob such as 'crops/*.tif' or a list of files")
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} file(s) do not exist: {missing[:5]}")
    return files


def _date_from_name(path: Path, time: str | Callable[[Path], Any] | None) -> pd.Timestamp | None:
    if callable(time):
        return pd.Timestamp(time(path))
    pattern = DATE_PATTERN if time is None else time
    m = re.search(pattern, path.name)
    if m is None:
        return None
    named = m.groupdict()
    if {"year", "month", "day"} <= set(named):
        text = f"{named['year']}-{named['month']}-{named['day']}"
    else:
        groups = [g for g in m.groups() if g is not None]
        text = "-".join(groups) if len(groups) == 3 else (groups[0] if groups else m.group(0))
    try:
        return pd.Timestamp(text)
    except ValueError:
        raise InputError(f"{path.name}: {text!r} (matched by {pattern!r}) is not a date") from None


def _date_from_tags(tags: Mapping[str, str]) -> pd.Timestamp | None:
    for key in _DATE_TAGS:
        if key in tags:
            text = str(tags[key]).strip()
            m = re.match(r"(\d{4})[-:_]?(\d{2})[-:_]?(\d{2})", text)
            if m:
                return pd.Timestamp("-".join(m.groups()))
    return None


def _open_one(path: Path, chunks: Any) -> tuple[xr.DataArray, Mapping[str, str]]:
    import rasterio
    import rioxarray

    from rasterio.windows import Window

    try:
        with rasterio.open(path) as src:
            tags = {**src.tags(), **src.tags(1)}
            # the last pixel of every band: a file cut short fails here, not in the middle of a run
            src.read(window=Window(src.width - 1, src.height - 1, 1, 1))
        da = rioxarray.open_rasterio(path, chunks=chunks, masked=False, lock=False)
    except rasterio.errors.RasterioError as err:
        raise InputError(f"{path} cannot be read as a raster ({err}); the file is damaged, truncated or not "
                         "a raster GDAL reads") from None
    if da.rio.crs is None:
        raise GridError(f"{path} has no CRS; set one, e.g. gdal_edit.py -a_srs EPSG:32632 {path.name}")
    return da, tags


def open_rasters(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    bands: Sequence[str] | Mapping[str, str],
    time: str | Callable[[Path], Any] | None = None,
    scale: float = 1.0,
    offset: float = 0.0,
    nodata: float | Sequence[float] | None = None,
    chunks: Mapping[str, int] | None = None,
    *,
    like: xr.DataArray | xr.Dataset | None = None,
) -> xr.DataArray:
    """Open your own rasters as a lazy ``(time, band, y, x)`` reflectance cube.

    Parameters
    ----------
    paths
        A folder (its ``.tif``/``.tiff``/``.vrt``/``.jp2``/``.img``/``.nc`` files), a glob such as
        ``"crops/*.tif"``, or a list of files.
    bands
        Band names in your words, e.g. ``["green", "red", "nir"]``: a multi-band file's bands in
        file order (every file must have exactly these many).  Or ``{name: token}`` for
        single-band files, one per band and date, told apart by the token in the file name, e.g.
        ``{"green": "B03", "red": "B04", "nir": "B08"}``.
    time
        The date of each file: ``None`` finds an ISO (``2021-08-15``) or compact (``20210815``)
        date in the file name, else reads the file's tags (``ACQUISITION_DATE``,
        ``TIFFTAG_DATETIME``, ...); a regex on the file name whose groups are year, month, day
        (or named ``year``/``month``/``day`` in any order, or one group with the date); or a
        callable ``path -> date``.
    scale, offset
        Reflectance = ``value * scale + offset`` (e.g. Sentinel-2 L2A digital numbers:
        ``scale=1e-4, offset=-0.1`` from processing baseline 04.00).
    nodata
        Values to mask besides each file's own nodata (e.g. ``0`` outside a glacier clipped by
        its outline).  Compared with the values as stored, before scaling.
    chunks
        Dask chunks of ``y``/``x`` (default 1024 x 1024); one date per chunk.
    like
        A grid (any xarray object with a CRS) to put the cube on; default: the grid of the first
        file.  Files on another grid are reprojected (bilinear) lazily.

    Returns
    -------
    xarray.DataArray
        float32 ``(time, band, y, x)``, sorted by time, NaN for nodata, with the CRS written, the
        file of each date in the ``source`` coordinate, and ``attrs["scale"]`` /
        ``attrs["offset"]``.

    Raises
    ------
    FileNotFoundError
        Nothing matches ``paths``.
    ValueError
        A file with another number of bands than ``bands``, a single-band file without one of
        the tokens (or with two), a file without a CRS, a damaged file, a date found neither in
        the name nor in the tags, two files of one date.

    Examples
    --------
    >>> import tempfile, numpy as np, rasterio
    >>> from rasterio.transform import from_origin
    >>> folder = Path(tempfile.mkdtemp())
    >>> for day, v in (("20210815", 1200), ("20210701", 3000)):
    ...     with rasterio.open(folder / f"silvretta_{day}.tif", "w", driver="GTiff", width=4, height=3,
    ...                        count=2, dtype="uint16", crs="EPSG:32632", nodata=0,
    ...                        transform=from_origin(560000, 5190000, 10, 10)) as dst:
    ...         dst.write(np.full((2, 3, 4), v, "uint16"))
    >>> cube = open_rasters(folder, ["red", "nir"], scale=1e-4)
    >>> cube.dims, [str(t)[:10] for t in cube.time.values], round(float(cube.isel(time=0, band=0, y=0, x=0)), 4)
    (('time', 'band', 'y', 'x'), ['2021-07-01', '2021-08-15'], 0.3)
    """
    files = _list(paths)
    chunk_yx = {"y": 1024, "x": 1024, **dict(chunks or {})}
    ask = {"band": -1, "y": chunk_yx["y"], "x": chunk_yx["x"]}
    if isinstance(bands, Mapping):
        names, tokens = [str(b) for b in bands], [str(v) for v in bands.values()]
    else:
        names, tokens = [str(b) for b in bands], None
    if not names or len(set(names)) != len(names):
        raise InputError(f"bands must be distinct names, got {list(names)}")
    extra = [float(v) for v in np.atleast_1d(nodata)] if nodata is not None else []

    # ---- group files into dates (and bands)
    groups: dict[pd.Timestamp, dict[str, tuple[Path, xr.DataArray, float | None]]] = {}
    for f in files:
        da, tags = _open_one(f, ask)
        when = _date_from_name(f, time)
        if when is None and time is None:
            when = _date_from_tags(tags)
        if when is None:
            how = "a date in its name (e.g. 2021-08-15 or 20210815) or in its tags" if time is None else \
                f"a match of time={time!r} in its name"
            raise InputError(f"{f}: found no date: it needs {how}; or pass time= (a regex or a callable)")
        when = pd.Timestamp(when)
        if when.tz is not None:
            when = when.tz_convert("UTC").tz_localize(None)
        slot = groups.setdefault(when, {})
        own = da.rio.nodata
        if tokens is None:
            if da.sizes["band"] != len(names):
                raise InputError(f"{f} has {da.sizes['band']} band(s) but bands names {len(names)}: {names}; give "
                                 "one name per band of the file, in file order")
            if "*" in slot:
                raise InputError(f"two files of {when.date()}: {slot['*'][0].name} and {f.name}; mosaic them first "
                                 "(e.g. gdalbuildvrt) or keep one")
            slot["*"] = (f, da.assign_coords(band=names), own)
        else:
            hit = [n for n, tok in zip(names, tokens) if re.search(rf"(?<![0-9A-Za-z]){re.escape(tok)}(?![0-9A-Za-z])",
                                                                   f.stem)]
            if len(hit) != 1:
                raise InputError(f"{f.name} names {'none' if not hit else 'several'} of the band tokens "
                                 f"{dict(zip(names, tokens))}; each single-band file must name exactly one")
            if da.sizes["band"] != 1:
                raise InputError(f"{f} has {da.sizes['band']} bands; with bands given as {{name: token}} each file "
                                 "holds one band (give a list of names for multi-band files)")
            if hit[0] in slot:
                raise InputError(f"two files of {when.date()} for band {hit[0]!r}: {slot[hit[0]][0].name} and {f.name}")
            slot[hit[0]] = (f, da.assign_coords(band=[hit[0]]), own)

    # ---- one grid
    dates = sorted(groups)
    from xfacies import spatial

    first = next(iter(groups[dates[0]].values()))[1]
    grid = like if like is not None else first
    target = spatial.geobox(grid)
    layers = []
    sources = []
    for when in dates:
        slot = groups[when]
        if tokens is not None:
            missing = [n for n in names if n not in slot]
            if missing:
                raise InputError(f"{when.date()} has no file for band(s) {missing} (tokens "
                                 f"{[bands[n] for n in missing]}); every date needs every band")
            parts = [slot[n] for n in names]
        else:
            parts = [slot["*"]]
        arrays = []
        for f, da, own in parts:
            x = da.astype(np.float32)
            bad = [v for v in ([own] if own is not None else []) + extra if v is not None and np.isfinite(v)]
            if bad:
                x = x.where(~x.isin(np.asarray(bad, dtype=np.float32)))
            x = x * np.float32(scale) + np.float32(offset)
            x = x.rio.write_crs(da.rio.crs)
            if not spatial.same_grid(da, grid):
                from xfacies.sources.dem import reproject_dem

                x = xr.concat([reproject_dem(x.sel(band=b), target) for b in x["band"].values], dim="band")
                x = x.assign_coords(band=list(da["band"].values))
            arrays.append(x)
        layer = arrays[0] if len(arrays) == 1 else xr.concat(arrays, dim="band")
        layers.append(layer.drop_vars([c for c in layer.coords if c not in ("band", "y", "x", "spatial_ref")]))
        sources.append(";".join(str(p[0]) for p in parts))
    cube = xr.concat(layers, dim="time", join="override")  # every layer is on the target grid now
    cube = cube.assign_coords(time=pd.DatetimeIndex(dates), source=("time", np.array(sources, dtype=object)))
    cube = cube.transpose("time", "band", "y", "x").chunk({"time": 1, "band": -1, "y": chunk_yx["y"],
                                                         "x": chunk_yx["x"]})
    require_unique_times(cube, "the rasters")
    cube = cube.rio.write_crs(target.crs.to_wkt())
    cube.name = "reflectance"
    cube.attrs = {"long_name": "surface reflectance", "units": "1", "scale": float(scale), "offset": float(offset),
                  "source": "xfacies.open_rasters"}
    return cube

"""A local STAC API over your own GeoTIFFs: pystac items served by ``rustac serve``.

:func:`xfacies.open_stac` reads STAC APIs.  This module builds STAC Items and
Collections with :mod:`pystac` for GeoTIFFs on your disk and serves them on
loopback with ``rustac serve`` (the ``rustac`` package, an in-memory STAC API),
so the same code reads Earth Search, Planetary Computer or your own files.
Asset keys, dtypes, nodata, scale/offset and quality-mask assets come from the
tables of :mod:`xfacies.sources.sensors`, so ``open_stac`` reads an item built
here exactly as it reads the provider's own.

:func:`item_from_files` (your GeoTIFFs -> ``pystac.Item``), :func:`make_collection`
and :func:`serve` are the user-facing part; :func:`make_s2_item`,
:func:`make_landsat_item` and :func:`synthetic_catalog` build item dicts from
known grids and a synthetic season (``xfacies demo``, tests).

Serving your own files
----------------------
One single-band GeoTIFF per asset of the collection: the six bands (cube names
``blue`` ... ``swir2``, or the provider's asset keys) and the quality mask
(``scl`` for Sentinel-2, ``qa_pixel`` for Landsat), holding the provider's
digital numbers (DN) with the table's dtype and nodata:

>>> import tempfile, numpy as np, xfacies
>>> from affine import Affine
>>> from odc.geo.geobox import GeoBox
>>> from xfacies.sources import stac_server
>>> from xfacies.sources.sensors import PROVIDERS
>>> spec = PROVIDERS["earth-search"].collections["sentinel-2-c1-l2a"]
>>> folder, grid = tempfile.mkdtemp(), Affine(10, 0, 630000, 0, -10, 5190000)  # UTM 32N, 10 m
>>> files = {b: stac_server.write_cog(f"{folder}/{b}.tif", np.full((32, 32), 3000, "uint16"),
...                                   grid, "EPSG:32632") for b in spec.bands}
>>> files["scl"] = stac_server.write_cog(f"{folder}/scl.tif", np.full((32, 32), 11, "uint8"),
...                                      grid, "EPSG:32632")
>>> item = stac_server.item_from_files(files, "2021-08-01T10:20:00Z", "sentinel-2-c1-l2a",
...                                    platform="sentinel-2a",
...                                    properties={"s2:processing_baseline": "05.00"})
>>> sorted(item.assets)
['blue', 'green', 'nir', 'red', 'scl', 'swir16', 'swir22']
>>> with stac_server.serve(stac_server.make_collection([item]), [item]) as url:
...     cube = xfacies.open_stac(GeoBox((32, 32), grid, "EPSG:32632"), "2021-08", ("sentinel-2",),
...                              catalog=url, provider="earth-search").compute()
>>> round(float(cube.sel(band="nir").mean()), 4)          # (3000 DN - 1000) * 1e-4
0.2

One item per scene (``open_stac`` fuses the tiles of a day); JSON files written
with :func:`write_collection` and :func:`write_items` can be served instead.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from pystac.extensions.eo import EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.extensions.view import ViewExtension

from xfacies import spatial
from xfacies.compat import renamed_keywords
from xfacies.errors import GridError, InputError
from xfacies.catalog import OPTICAL_FEATURES
from xfacies.sources.sensors import PROVIDERS, SENSORS, UNSUPPORTED, CollectionSpec

__all__ = ["item_from_files", "make_collection", "serve", "write_cog", "make_s2_item",
           "make_landsat_item", "write_collection", "write_items", "rustac_executable",
           "synthetic_catalog"]

ItemLike = Any  #: a ``pystac.Item`` or its dict
_GDAL_FIX = "convert it with `gdal_translate -of COG in.xxx out.tif` or write_cog(...)"
_SPEC_FIX = "or pass collection=xfacies.sources.sensors.CollectionSpec(...) describing your files"


# --------------------------------------------------------------------------- COGs
@renamed_keywords(path="out")
def write_cog(out: str | Path, array: np.ndarray, transform: Any, crs: Any,
              nodata: float | None = 0) -> str:
    """Write a ``(y, x)`` (or ``(band, y, x)``) array, in its dtype, as a Cloud-Optimised GeoTIFF.

    Parameters
    ----------
    out
        Output file (parent folders are created); the absolute path is returned.
    array, transform, crs, nodata
        Pixels, affine transform of the top-left corner, CRS (``"EPSG:32632"``)
        and nodata value (``None`` for none).

    Examples
    --------
    >>> import numpy as np, tempfile, rasterio
    >>> from affine import Affine
    >>> p = write_cog(tempfile.mkdtemp() + "/a.tif", np.ones((4, 4), "uint16"),
    ...               Affine(10, 0, 600000, 0, -10, 5200000), "EPSG:32632")
    >>> rasterio.open(p).profile["dtype"]
    'uint16'
    """
    import rasterio

    arr = np.asarray(array)
    arr = arr[None] if arr.ndim == 2 else arr
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(out, "w", driver="COG", width=arr.shape[-1], height=arr.shape[-2],
                       count=arr.shape[0], dtype=arr.dtype.name, crs=crs, transform=transform,
                       nodata=nodata, compress="deflate", blocksize=256) as dst:
        dst.write(arr)
    return str(out)


# --------------------------------------------------------------------------- tables, grids, pystac
def _table(collection: str | CollectionSpec, provider: str) -> CollectionSpec:
    if isinstance(collection, CollectionSpec):
        return collection
    if provider not in PROVIDERS:
        raise InputError(f"unknown provider {provider!r}; known providers: {sorted(PROVIDERS)}")
    known = PROVIDERS[provider].collections
    if collection not in known:
        why = UNSUPPORTED.get((provider, collection))
        raise InputError(f"xfacies has no table for collection {collection!r} of provider {provider!r}"
                         + (f" ({why})" if why else "") + f"; known collections: {sorted(known)}, "
                         + _SPEC_FIX)
    return known[collection]


def _sensor_table(provider: str, sensor: str) -> CollectionSpec:
    specs = PROVIDERS[provider].for_sensors((sensor,)) if provider in PROVIDERS else {}
    if not specs:
        raise InputError(f"provider {provider!r} has no {sensor} table; known providers: {sorted(PROVIDERS)}")
    return next(iter(specs.values()))


def _asset_key(spec: CollectionSpec, name: str) -> str:
    """Cube band name, asset key or mask name (any case) -> the table's asset key."""
    alias = {**{a: a for a in spec.assets()}, **{m.asset.lower(): m.asset for m in spec.mask},
             **dict(spec.bands)}
    if name not in alias:
        raise InputError(f"{name!r} is not an asset of collection {spec.collection!r}: use the cube "
                         f"band names {list(spec.bands)} or the asset keys {list(spec.assets())}")
    return alias[name]


def _raster_band(spec: CollectionSpec, key: str, properties: Mapping[str, Any],
                 resolution: float) -> RasterBand | None:
    """``raster:bands`` of an asset from the table (dtype, nodata, scale/offset); ``None`` where the
    provider publishes none (a baseline rule without ``use_raster_bands``: Planetary Computer S2)."""
    if spec.baseline_property and not spec.use_raster_bands:
        return None
    bands = {a: b for b, a in spec.bands.items()}
    if key in bands:
        scale, offset = spec.radiometry(properties, None, bands[key])
        return RasterBand.create(nodata=spec.nodata, data_type=DataType(spec.dtype),
                                 spatial_resolution=resolution, scale=scale, offset=offset,
                                 unit="1" if spec.sensor in SENSORS else None)
    rule = next(m for m in spec.mask if m.asset == key)
    return RasterBand.create(nodata=rule.nodata, data_type=DataType(rule.dtype),
                             spatial_resolution=resolution, unit="bit index" if rule.invalid_bits else None)


def _footprint(transform: Any, shape: tuple[int, int], crs: Any, n: int = 4) -> tuple[dict, list[float]]:
    """GeoJSON polygon (counter-clockwise, edges densified) and bbox in lon/lat of a grid."""
    from pyproj import Transformer

    (ny, nx), (a, b, c, d, e, f) = shape, tuple(transform)[:6]
    s = np.linspace(0.0, 1.0, n, endpoint=False)
    col = np.concatenate([0 * s, s * nx, nx + 0 * s, nx - s * nx, [0.0]])   # down, right, up, left
    row = np.concatenate([s * ny, ny + 0 * s, ny - s * ny, 0 * s, [0.0]])
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        c + a * col + b * row, f + d * col + e * row)
    ring = [[float(x), float(y)] for x, y in zip(lon, lat)]
    if a * e - b * d > 0:  # south-up grid: the ring above runs clockwise
        ring = ring[::-1]
    return ({"type": "Polygon", "coordinates": [ring]},
            [float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))])


def _epsg(crs: Any, what: str = "") -> str:
    code = spatial.epsg_code(crs)
    if code is None:
        raise GridError(f"CRS {crs!r}{what} has no EPSG code (STAC proj:code needs one); reproject "
                         "the data to an EPSG CRS, e.g. `gdalwarp -t_srs EPSG:32632`")
    return f"EPSG:{code}"


def _utc(t: Any) -> _dt.datetime:
    import pandas as pd

    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("us").to_pydatetime()


def _new_item(item_id: str, datetime: Any, collection: str, crs: Any, transform: Any,
              shape: tuple[int, int], properties: Mapping[str, Any], *, cloud_cover: float | None = None,
              sun_azimuth: float | None = None, sun_elevation: float | None = None) -> pystac.Item:
    geom, bbox = _footprint(transform, shape, crs)
    item = pystac.Item(item_id, geom, bbox, _utc(datetime), dict(properties), collection=collection)
    # STAC needs a collection link next to "collection"; a STAC API rewrites links with its URLs
    item.add_link(pystac.Link(pystac.RelType.COLLECTION, "./collection.json", pystac.MediaType.JSON))
    ProjectionExtension.ext(item, add_if_missing=True).code = _epsg(crs)
    if cloud_cover is not None:
        EOExtension.ext(item, add_if_missing=True).cloud_cover = float(cloud_cover)
    if sun_azimuth is not None or sun_elevation is not None:
        ViewExtension.ext(item, add_if_missing=True).apply(
            sun_azimuth=None if sun_azimuth is None else float(sun_azimuth),
            sun_elevation=None if sun_elevation is None else float(sun_elevation))
    return item


def _make_asset(href: str | Path, shape: tuple[int, int], transform: Any, *,
                roles: Sequence[str] = ("data",), title: str | None = None,
                raster: RasterBand | None = None, media_type: str = pystac.MediaType.COG,
                item: pystac.Item | None = None, key: str = "") -> pystac.Asset:
    """A pystac Asset with ``proj:shape``/``proj:transform`` (and ``raster:bands``), added to ``item``."""
    uri = str(href) if "://" in str(href) else Path(href).resolve().as_uri()
    asset = pystac.Asset(uri, title=title or None, media_type=media_type, roles=list(roles))
    if item is not None:
        item.add_asset(key, asset)
    proj = ProjectionExtension.ext(asset, add_if_missing=item is not None)
    proj.shape = [int(shape[0]), int(shape[1])]
    proj.transform = [float(v) for v in tuple(transform)[:6]]
    if raster is not None:
        RasterExtension.ext(asset, add_if_missing=item is not None).bands = [raster]
    return asset


def _asset(href: str, shape: tuple[int, int], transform: Any, **kw: Any) -> dict:
    """The dict of a COG asset (for callers that assemble item dicts by hand)."""
    return _make_asset(href, shape, transform, **kw).to_dict()


def _add_assets(item: pystac.Item, spec: CollectionSpec, hrefs: Mapping[str, str], shape: Any,
                transform: Any, shapes: Mapping[str, Any] | None = None,
                transforms: Mapping[str, Any] | None = None, media: Mapping[str, str] | None = None) -> None:
    """Assets of ``item`` from ``{name: href}`` (grid and media type per name, or the defaults)."""
    for name, href in hrefs.items():
        key, tr = _asset_key(spec, name), (transforms or {}).get(name, transform)
        band = key in spec.bands.values() and spec.sensor in SENSORS
        _make_asset(href, (shapes or {}).get(name, shape), tr, item=item, key=key, title=name,
                    media_type=(media or {}).get(name, pystac.MediaType.COG),
                    roles=("data", "reflectance") if band else ("data",),
                    raster=_raster_band(spec, key, item.properties, abs(float(tr[0]))))


def _as_dict(obj: Any) -> dict:
    if isinstance(obj, pystac.STACObject):
        return obj.to_dict(include_self_link=False, transform_hrefs=False)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"expected a pystac.Item/Collection or its dict, got {type(obj).__name__}")


# --------------------------------------------------------------------------- item dicts from known grids
def make_s2_item(item_id: str, datetime: Any, hrefs: Mapping[str, str], *, transform: Any,
                 shape: tuple[int, int], crs: Any, provider: str = "earth-search",
                 collection: str | None = None, platform: str = "sentinel-2a",
                 processing_baseline: str = "05.00", sun_azimuth: float = 150.0,
                 sun_elevation: float = 50.0, cloud_cover: float = 0.0, mgrs_tile: str = "32TPS",
                 shapes: Mapping[str, tuple[int, int]] | None = None,
                 transforms: Mapping[str, Any] | None = None) -> dict:
    """A Sentinel-2 L2A item dict (``pystac.Item.from_dict`` for an Item); no file is opened.

    Parameters
    ----------
    hrefs
        Cube band name (``blue`` ... ``swir2``), asset key or ``"scl"`` -> COG
        path or URL, any subset.  Asset keys and ``raster:bands`` follow the
        provider's Sentinel-2 table in :data:`~xfacies.sources.sensors.PROVIDERS`:
        Earth Search common names with scale 1e-4 and offset -0.1 (baseline >=
        04.00), Planetary Computer B-names and ``SCL`` without ``raster:bands``.
    transform, shape, crs
        Grid of the COGs; per-asset overrides in ``transforms`` / ``shapes``,
        keyed like ``hrefs`` (e.g. 20 m bands).
    provider, collection
        Conventions; the collection id written (default the provider's).
    item_id, datetime, platform, processing_baseline, sun_azimuth, sun_elevation, cloud_cover, mgrs_tile
        Item id and properties.

    Examples
    --------
    >>> from affine import Affine
    >>> it = make_s2_item("S2A_1", "2021-08-01T10:20:00", {"blue": "/tmp/b.tif", "scl": "/tmp/s.tif"},
    ...                   transform=Affine(10, 0, 630000, 0, -10, 5190000), shape=(8, 8),
    ...                   crs="EPSG:32632", provider="planetary-computer")
    >>> sorted(it["assets"]), it["properties"]["s2:processing_baseline"]
    (['B02', 'SCL'], '05.00')
    """
    spec = _sensor_table(provider, "sentinel-2")
    es = provider == "earth-search"
    props = {"platform": platform if es else "Sentinel-2" + platform[-1].upper(),
             "constellation": "sentinel-2", "instruments": [spec.instrument(platform) or "msi"],
             spec.baseline_property or "s2:processing_baseline": processing_baseline,
             "s2:mgrs_tile": mgrs_tile, **({"earthsearch:boa_offset_applied": False} if es else {})}
    item = _new_item(item_id, datetime, collection or spec.collection, crs, transform, shape, props,
                     cloud_cover=cloud_cover, sun_azimuth=sun_azimuth, sun_elevation=sun_elevation)
    _add_assets(item, spec, hrefs, shape, transform, shapes, transforms)
    return _as_dict(item)


def make_landsat_item(item_id: str, datetime: Any, hrefs: Mapping[str, str], *, transform: Any,
                      shape: tuple[int, int], crs: Any, platform: str = "landsat-8",
                      provider: str = "earth-search", collection: str = "landsat-c2-l2",
                      sun_azimuth: float = 145.0, sun_elevation: float = 52.0,
                      cloud_cover: float = 0.0) -> dict:
    """A Landsat Collection 2 Level-2 item dict; no file is opened.

    ``hrefs``: cube band name, asset key or ``"qa_pixel"`` -> COG path or URL
    (e.g. ``s3://usgs-landsat/...``), with the asset keys (``nir08`` ...) and
    ``raster:bands`` (scale 2.75e-5, offset -0.2) of the provider's Landsat
    table; ``platform`` (``landsat-4`` ... ``landsat-9``) sets ``instruments``;
    the other parameters are those of :func:`make_s2_item`.

    Examples
    --------
    >>> from affine import Affine
    >>> it = make_landsat_item("LC08_1", "2021-08-01", {"nir": "/tmp/n.tif"},
    ...                        transform=Affine(30, 0, 630000, 0, -30, 5190000),
    ...                        shape=(4, 4), crs="EPSG:32632", platform="landsat-5")
    >>> list(it["assets"]), it["properties"]["instruments"]
    (['nir08'], ['tm'])
    """
    spec = _sensor_table(provider, "landsat")
    inst = spec.instrument(platform)
    props = {"platform": platform, "instruments": [inst] + (["tirs"] if inst == "oli" else []),
             "landsat:collection_category": "T1", "landsat:collection_number": "02",
             "landsat:correction": "L2SP"}
    item = _new_item(item_id, datetime, collection, crs, transform, shape, props,
                     cloud_cover=cloud_cover, sun_azimuth=sun_azimuth, sun_elevation=sun_elevation)
    _add_assets(item, spec, hrefs, shape, transform)
    return _as_dict(item)


# --------------------------------------------------------------------------- items from your files
def _inspect(path: str, key: str, spec: CollectionSpec) -> dict[str, Any]:
    """Grid, CRS and layout of one file, checked against the table's dtype and nodata."""
    import rasterio

    where = f"asset {key!r}: {path!r}"
    if "://" not in path and not Path(path).is_file():
        raise FileNotFoundError(f"{where} does not exist")
    try:
        with rasterio.open(path) as src:
            info = {"driver": src.driver, "count": src.count, "crs": src.crs, "dtype": src.dtypes[0],
                    "nodata": src.nodata, "shape": (src.height, src.width), "transform": src.transform,
                    "cog": src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"}
    except rasterio.errors.RasterioIOError as e:
        raise InputError(f"{where} is not a GeoTIFF that GDAL can read ({e}); {_GDAL_FIX}") from None
    rule = next((m for m in spec.mask if m.asset == key), None)
    dtype, nodata = (rule.dtype, rule.nodata) if rule else (spec.dtype, spec.nodata)
    if info["driver"] != "GTiff":
        raise InputError(f"{where} is a {info['driver']} file, not a GeoTIFF; {_GDAL_FIX}")
    if info["count"] != 1:
        raise InputError(f"{where} has {info['count']} bands; each asset of collection {spec.collection!r} "
                         "is one single-band file (open_stac reads band 1): write one file per band, "
                         "e.g. write_cog(path, array[k], transform, crs)")
    if info["crs"] is None:
        raise GridError(f"{where} has no CRS; set one, e.g. `gdal_edit.py -a_srs EPSG:32632 file.tif`")
    if info["dtype"] != dtype:
        raise InputError(f"{where} is {info['dtype']} but collection {spec.collection!r} stores {dtype} "
                         f"(the provider's DN, scaled when read); convert the file to {dtype} DN " + _SPEC_FIX)
    if info["nodata"] is not None and nodata is not None and info["nodata"] != nodata:
        raise InputError(f"{where} declares nodata {info['nodata']:g} but collection {spec.collection!r} "
                         f"uses {nodata:g}; rewrite it with nodata {nodata:g} " + _SPEC_FIX)
    return info


def item_from_files(files: Mapping[str, str | os.PathLike], datetime: Any,
                    collection: str | CollectionSpec = "sentinel-2-c1-l2a", provider: str = "earth-search",
                    *, item_id: str | None = None, platform: str | None = None,
                    cloud_cover: float | None = None, sun_azimuth: float | None = None,
                    sun_elevation: float | None = None,
                    properties: Mapping[str, Any] | None = None) -> pystac.Item:
    """A STAC Item for one scene of your own GeoTIFFs, in a provider's conventions.

    Each file's metadata (no pixels) is read with rasterio: the item gets
    ``proj:code``, per-asset ``proj:shape``/``proj:transform`` (resolutions
    may differ), a lon/lat footprint and bbox and, where the provider
    publishes them, ``raster:bands`` with the table's dtype, nodata and
    scale/offset.

    Parameters
    ----------
    files
        Cube band name (``blue`` ... ``swir2``), asset key (``B02``, ``nir08``)
        or mask (``scl``, ``qa_pixel``) -> path or URL of a single-band GeoTIFF,
        for every asset of the collection (``spec.assets()``).
    datetime
        Acquisition time (UTC when naive).
    collection, provider
        A collection of :data:`~xfacies.sources.sensors.PROVIDERS` (e.g.
        ``"landsat-c2-l2"`` or ``"cop-dem-glo-30"`` of ``"earth-search"``), or
        your own :class:`~xfacies.sources.sensors.CollectionSpec`, read with
        ``open_stac(..., collections={spec.collection: spec})``.
    item_id
        Default ``"<collection>_<YYYYMMDDTHHMMSS>"``; one per tile when tiles share a time.
    platform, cloud_cover, sun_azimuth, sun_elevation
        ``platform`` (sets ``instruments``) must be in the table, or
        ``open_stac`` drops the item; ``eo:cloud_cover`` (%), ``view:sun_*`` (deg).
    properties
        More item properties.  Sentinel-2 needs ``{"s2:processing_baseline":
        "05.00"}``: from 04.00 on, DN carry an offset of 1000 the reader removes.

    Returns
    -------
    pystac.Item
        For :func:`make_collection`, :func:`write_items` and :func:`serve`.

    Raises
    ------
    ValueError
        Unknown collection or provider, unknown or missing assets, a file that
        is not a single-band GeoTIFF or whose dtype, nodata or CRS does not
        fit, a platform not in the table, Sentinel-2 without baseline.
    FileNotFoundError
        A file does not exist.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from affine import Affine
    >>> d, grid = tempfile.mkdtemp(), Affine(30, 0, 630000, 0, -30, 5190000)
    >>> files = {b: write_cog(f"{d}/{b}.tif", np.full((8, 8), 9000, "uint16"), grid, "EPSG:32632")
    ...          for b in ("blue", "green", "red", "nir", "swir1", "swir2")}
    >>> files["qa_pixel"] = write_cog(f"{d}/qa.tif", np.full((8, 8), 21824, "uint16"), grid,
    ...                               "EPSG:32632", nodata=1)
    >>> it = item_from_files(files, "2021-08-03", "landsat-c2-l2", platform="landsat-7")
    >>> it.id, it.properties["instruments"], it.properties["proj:code"]
    ('landsat-c2-l2_20210803T000000', ['etm+'], 'EPSG:32632')
    >>> it.assets["nir08"].extra_fields["raster:bands"][0]["scale"]
    2.75e-05
    """
    spec = _table(collection, provider)
    if not isinstance(files, Mapping):
        raise TypeError(f"files must map asset names to paths, e.g. {{'blue': 'B02.tif', ...}}, not a "
                        f"{type(files).__name__}; the assets are {list(spec.assets())}")
    hrefs: dict[str, str] = {}
    for name, path in files.items():
        if _asset_key(spec, str(name)) in hrefs:
            raise InputError(f"asset {_asset_key(spec, str(name))!r} is given twice in files")
        hrefs[_asset_key(spec, str(name))] = str(path)
    missing = [a for a in spec.assets() if a not in hrefs]
    if missing:
        raise InputError(f"collection {spec.collection!r} needs one file per asset {list(spec.assets())}; "
                         f"missing {missing} (files may be keyed by cube band names {list(spec.bands)})")
    props: dict[str, Any] = dict(properties or {})
    if platform is not None:
        if spec.platforms and platform.lower() not in spec.platforms:
            raise InputError(f"platform {platform!r} is not in the table of {spec.collection!r} (open_stac "
                             f"would drop the item); use one of {sorted(spec.platforms)}")
        props["platform"] = platform
        if spec.instrument(platform):
            props.setdefault("instruments", [spec.instrument(platform)])
    if spec.baseline_property and spec.baseline_property not in props:
        raise InputError(f"collection {spec.collection!r} scales DN by the processing baseline: pass "
                         f"properties={{{spec.baseline_property!r}: '05.00'}} with your files' baseline "
                         f"(from {spec.baseline_min} on, DN carry an offset of {-spec.baseline_offset_dn:g})")
    info = {k: _inspect(h, k, spec) for k, h in hrefs.items()}
    crs = {k: _epsg(v["crs"], f" of asset {k!r} ({hrefs[k]})") for k, v in info.items()}
    if len(set(crs.values())) > 1:
        raise GridError(f"the files of one item must share a CRS; got {crs}; reproject them to one")
    first, t = info[spec.assets()[0]], _utc(datetime)
    item = _new_item(item_id or f"{spec.collection}_{t:%Y%m%dT%H%M%S}", t, spec.collection,
                     first["crs"], first["transform"], first["shape"], props, cloud_cover=cloud_cover,
                     sun_azimuth=sun_azimuth, sun_elevation=sun_elevation)
    _add_assets(item, spec, hrefs, None, None, {k: v["shape"] for k, v in info.items()},
                {k: v["transform"] for k, v in info.items()},
                {k: pystac.MediaType.COG if v["cog"] else pystac.MediaType.GEOTIFF for k, v in info.items()})
    return item


# --------------------------------------------------------------------------- collections, JSON files
def make_collection(items: Sequence[ItemLike] = (), collection_id: str | None = None,
                    description: str = "", license: str = "other") -> pystac.Collection:
    """A ``pystac.Collection`` whose extent covers ``items`` (pystac Items or dicts; none: global).

    ``collection_id`` defaults to the items' ``collection`` (an error when they have several).

    Examples
    --------
    >>> make_collection([], "sentinel-2-c1-l2a").extent.spatial.bboxes
    [[-180.0, -90.0, 180.0, 90.0]]
    """
    dicts = [_as_dict(it) for it in items]
    ids = sorted({d.get("collection") for d in dicts} - {None})
    if collection_id is None and len(ids) != 1:
        raise InputError(f"the items belong to collections {ids}; pass collection_id=")
    bbox: list[float] = [-180.0, -90.0, 180.0, 90.0]
    interval: list[_dt.datetime | None] = [None, None]
    if dicts:
        b = np.array([d["bbox"][:2] + d["bbox"][-2:] for d in dicts], dtype=float)
        bbox = [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())]
        p = [d["properties"] for d in dicts]
        interval = [min(_utc(q.get("datetime") or q["start_datetime"]) for q in p),
                    max(_utc(q.get("datetime") or q["end_datetime"]) for q in p)]
    cid = collection_id or ids[0]
    extent = pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([interval]))
    return pystac.Collection(cid, description or f"xfacies collection {cid}", extent, license=license)


@renamed_keywords(path="out")
def write_collection(out: str | Path, collection_id: str, items: Sequence[ItemLike] = (),
                     description: str = "") -> str:
    """Write a STAC Collection JSON (:func:`make_collection`) covering ``items``; returns the path.

    Examples
    --------
    >>> import tempfile, json
    >>> p = write_collection(tempfile.mkdtemp() + "/c.json", "sentinel-2-c1-l2a")
    >>> json.loads(Path(p).read_text())["id"]
    'sentinel-2-c1-l2a'
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_as_dict(make_collection(items, collection_id, description))))
    return str(out)


@renamed_keywords(path="out")
def write_items(out: str | Path, items: Sequence[ItemLike]) -> str:
    """Write items (``pystac.Item`` objects or dicts) as the GeoJSON FeatureCollection that
    ``rustac serve`` loads; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"type": "FeatureCollection", "features": [_as_dict(it) for it in items]}))
    return str(out)


# --------------------------------------------------------------------------- server
def rustac_executable() -> str:
    """Path of the ``rustac`` program (``pip install rustac``); ``FileNotFoundError`` without it."""
    cand = Path(sys.executable).parent / ("rustac.exe" if os.name == "nt" else "rustac")
    if cand.exists():
        return str(cand)
    found = shutil.which("rustac")
    if found:
        return found
    raise FileNotFoundError("the 'rustac' program was not found next to the Python interpreter or on "
                            "PATH; install it with `pip install rustac` (xfacies[test])")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_files(objs: Any, tmp: Path, stem: str) -> list[str]:
    """Paths, dicts and pystac objects -> JSON files; loose items go into one FeatureCollection."""
    if isinstance(objs, (str, os.PathLike, Mapping, pystac.STACObject, pystac.ItemCollection)):
        objs = [objs]
    out, features = [], []
    for k, o in enumerate(objs):
        if isinstance(o, pystac.Item) or (isinstance(o, Mapping) and o.get("type") == "Feature"):
            features.append(_as_dict(o))
        elif isinstance(o, (Mapping, pystac.STACObject, pystac.ItemCollection)):
            d = o.to_dict(transform_hrefs=False) if isinstance(o, pystac.ItemCollection) else _as_dict(o)
            out.append(str(tmp / f"{stem}{k}.json"))
            Path(out[-1]).write_text(json.dumps(d))
        elif isinstance(o, (str, os.PathLike)):
            if not Path(o).is_file():
                raise FileNotFoundError(f"serve(): {stem} file {str(o)!r} does not exist")
            out.append(str(Path(o).resolve()))
        else:
            raise TypeError(f"serve(): cannot serve a {type(o).__name__}; pass JSON paths, dicts or "
                            "pystac Collections, Items or ItemCollections")
    if features:
        out.append(str(tmp / f"{stem}-items.json"))
        Path(out[-1]).write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return out


@contextlib.contextmanager
def serve(collection_json: Any, items_json: Any, port: int | None = None,
          timeout: float = 20.0) -> Iterator[str]:
    """Serve collections and items as a STAC API on loopback with ``rustac serve``.

    Parameters
    ----------
    collection_json
        Collection(s): JSON path(s), dict(s) or ``pystac.Collection``.
    items_json
        FeatureCollection JSON path(s) or dict(s), pystac Items or item dicts
        (a list of them), or a ``pystac.ItemCollection``.
    port, timeout
        TCP port on 127.0.0.1 (default a free one); seconds to wait for it.

    Yields
    ------
    str
        The API root URL (``"http://127.0.0.1:41234"``); the server stops with
        the block.  ``RuntimeError`` (showing its output) when it exits or does
        not answer in time; ``FileNotFoundError`` for a missing JSON path.

    Examples
    --------
    >>> import pystac_client
    >>> with serve(make_collection([], "my-collection"), []) as url:
    ...     [c.id for c in pystac_client.Client.open(url).get_collections()]
    ['my-collection']
    """
    with tempfile.TemporaryDirectory(prefix="xfacies-rustac-") as tmp:
        hrefs = _as_files(collection_json, Path(tmp), "collection") + _as_files(items_json, Path(tmp), "items")
        port = port or _free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(Path(tmp) / "rustac.log", "w+")
        proc = subprocess.Popen([rustac_executable(), "serve", *hrefs, "--addr", f"127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                failed = (f"exited with code {proc.returncode}" if proc.poll() is not None else
                          f"did not answer at {url} within {timeout} s" if time.monotonic() > deadline else "")
                if failed:
                    log.seek(0)
                    raise RuntimeError(f"rustac serve {failed}:\n{log.read()}")
                with contextlib.suppress(OSError), urllib.request.urlopen(url + "/collections", timeout=1) as r:
                    if r.status == 200:
                        break
                time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


# --------------------------------------------------------------------------- synthetic season
def _scl_from_truth(truth: np.ndarray) -> np.ndarray:
    from xfacies.catalog import CLASSES

    ids = {c.name: c.id for c in CLASSES}
    scl = np.full(truth.shape, 5, dtype=np.uint8)  # SCL classes: 5 not vegetated
    scl[np.isin(truth, [ids["snow"], ids["firn"]])] = 11
    scl[truth == ids["water"]] = 6
    scl[truth == ids["cloud"]] = 9
    return scl


@renamed_keywords(outdir="out")
def synthetic_catalog(season: Any, out: str | Path, provider: str = "earth-search",
                      baseline: str = "05.00") -> tuple[str, str]:
    """Write a synthetic season as COGs plus a STAC collection and items.

    The reflectance of :func:`xfacies.synthetic.season` becomes COGs of the
    provider's Sentinel-2 table (dtype, nodata) holding ``DN = round((refl -
    offset) / scale)`` with the table's scale/offset for ``baseline`` (1e-4,
    -0.1 from 04.00 on), plus SCL (9 where the truth is cloud, 11 snow/firn,
    6 water, 5 elsewhere).  Items (:func:`make_s2_item`, ``provider``'s
    conventions) alternate Sentinel-2A/B and carry the season's sun angles.
    Returns the paths of ``outdir/collection.json`` and ``outdir/items.json``.

    Examples
    --------
    >>> from xfacies import synthetic
    >>> coll, items = synthetic_catalog(synthetic.season(2, size=16), "cat")
    >>> [it["properties"]["platform"] for it in json.loads(Path(items).read_text())["features"]]
    ['sentinel-2a', 'sentinel-2b']
    """
    spec = _sensor_table(provider, "sentinel-2")
    scale, offset = spec.radiometry({spec.baseline_property or "": baseline})
    nodata = 0 if spec.nodata is None else int(spec.nodata)
    lim = np.iinfo(np.dtype(spec.dtype))
    out, crs, transform = Path(out), season.rio.crs, season.rio.transform()
    ny, nx = season.sizes["y"], season.sizes["x"]
    refl = season["features"].sel(band=list(OPTICAL_FEATURES))
    truth = season["truth"] if "truth" in season else None
    items = []
    for t in range(season.sizes["time"]):
        ts = season["time"].values[t]
        day = str(np.datetime_as_string(ts, unit="D")).replace("-", "")
        platform = "sentinel-2a" if t % 2 == 0 else "sentinel-2b"
        item_id = f"S2{platform[-1].upper()}_SYN_{day}_{t:03d}"
        r = np.asarray(refl.isel(time=t).values, dtype=np.float64)
        dn = np.clip(np.round((r - offset) / scale), max(lim.min, nodata + 1), lim.max)
        dn = np.where(np.isfinite(r).all(axis=0), dn, nodata).astype(spec.dtype)
        folder = out / "cogs" / item_id
        hrefs = {b: write_cog(folder / f"{b}.tif", dn[k], transform, crs, nodata)
                 for k, b in enumerate(OPTICAL_FEATURES)}
        scl = _scl_from_truth(truth.isel(time=t).values if truth is not None else np.full((ny, nx), -1))
        hrefs["scl"] = write_cog(folder / "scl.tif", scl, transform, crs, spec.mask[0].nodata)
        items.append(make_s2_item(
            item_id, ts, hrefs, transform=transform, shape=(ny, nx), crs=crs, provider=provider,
            platform=platform, processing_baseline=baseline, cloud_cover=float(100.0 * (scl == 9).mean()),
            sun_azimuth=float(season["sun_azimuth"].values[t]),
            sun_elevation=float(season["sun_elevation"].values[t])))
        items[-1]["properties"]["xfacies:imagery"] = "synthetic"  # open_stac passes it on
    coll = write_collection(out / "collection.json", items[0]["collection"], items,
                            "xfacies synthetic season")
    return coll, write_items(out / "items.json", items)

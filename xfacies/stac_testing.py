"""Offline STAC: write COGs and STAC items, and serve them with ``rustac serve``.

Used by the test-suite and by ``xfacies demo``: a real STAC API on loopback
(``rustac serve`` from the ``rustac`` package, an in-memory STAC API server)
answering real searches for items whose assets are local Cloud-Optimised
GeoTIFFs, in the conventions of Earth Search or Planetary Computer.

Examples
--------
>>> import numpy as np, xfacies
>>> from xfacies import stac_testing as st, synthetic
>>> season = synthetic.season(2, size=64, seed=1)
>>> coll, items = st.synthetic_catalog(season, "cat")          # doctest: +SKIP
>>> with st.serve(coll, items) as url:                           # doctest: +SKIP
...     cube = xfacies.open_stac(season, time="2021", catalog=url,
...                              provider="earth-search", sensors=("sentinel-2",))
"""

from __future__ import annotations

import contextlib
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

from xfacies.catalog import OPTICAL_FEATURES

__all__ = [
    "write_cog",
    "make_s2_item",
    "make_landsat_item",
    "write_collection",
    "write_items",
    "serve",
    "rustac_executable",
    "synthetic_catalog",
]

_PROJ = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
_VIEW = "https://stac-extensions.github.io/view/v1.0.0/schema.json"
_RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"

_ES_S2_KEYS = dict(zip(OPTICAL_FEATURES, ("blue", "green", "red", "nir", "swir16", "swir22")))
_PC_S2_KEYS = dict(zip(OPTICAL_FEATURES, ("B02", "B03", "B04", "B08", "B11", "B12")))
_LANDSAT_KEYS = dict(zip(OPTICAL_FEATURES, ("blue", "green", "red", "nir08", "swir16", "swir22")))


# --------------------------------------------------------------------------- COGs
def write_cog(path: str | Path, array: np.ndarray, transform: Any, crs: Any,
              nodata: float | None = 0) -> str:
    """Write a single-band (or ``(band, y, x)``) Cloud-Optimised GeoTIFF.

    Parameters
    ----------
    path
        Output file (parent folders are created).
    array
        ``(y, x)`` or ``(band, y, x)`` array; its dtype is the file's dtype.
    transform
        Affine transform of the top-left pixel corner (``rasterio``/``affine``).
    crs
        Anything rasterio understands (``"EPSG:32632"``).
    nodata
        Nodata value written in the file (``None`` for none).

    Returns
    -------
    str
        The absolute path written.

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
    if arr.ndim == 2:
        arr = arr[None]
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "COG", "width": arr.shape[-1], "height": arr.shape[-2], "count": arr.shape[0],
        "dtype": arr.dtype.name, "crs": crs, "transform": transform, "nodata": nodata,
        "compress": "deflate", "blocksize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    return str(path)


# --------------------------------------------------------------------------- items
def _footprint(transform: Any, shape: tuple[int, int], crs: Any) -> tuple[dict, list[float]]:
    from pyproj import Transformer

    ny, nx = shape
    a, b, c, d, e, f = tuple(transform)[:6]
    x0, y0 = c, f
    x1, y1 = c + a * nx + b * ny, f + d * nx + e * ny
    xs = np.array([x0, x1, x1, x0, x0])
    ys = np.array([y0, y0, y1, y1, y0])
    t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = t.transform(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat)]
    return ({"type": "Polygon", "coordinates": [ring]},
            [float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat))])


def _epsg(crs: Any) -> int:
    from pyproj import CRS

    code = CRS.from_user_input(crs).to_epsg()
    if code is None:
        raise ValueError(f"CRS {crs!r} has no EPSG code; STAC proj:code needs one")
    return int(code)


def _iso(dt: Any) -> str:
    import pandas as pd

    ts = pd.Timestamp(dt)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _asset(href: str, shape: tuple[int, int], transform: Any, *, roles: Sequence[str] = ("data",),
           raster: dict | None = None, title: str = "") -> dict:
    a: dict[str, Any] = {
        "href": Path(href).resolve().as_uri() if "://" not in str(href) else str(href),
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": list(roles),
        "proj:shape": [int(shape[0]), int(shape[1])],
        "proj:transform": [float(v) for v in tuple(transform)[:6]],
    }
    if title:
        a["title"] = title
    if raster is not None:
        a["raster:bands"] = [raster]
    return a


def _item(item_id: str, collection: str, datetime: Any, transform: Any, shape: tuple[int, int],
          crs: Any, assets: dict, properties: dict, extensions: list[str]) -> dict:
    geom, bbox = _footprint(transform, shape, crs)
    props = {"datetime": _iso(datetime), "proj:code": f"EPSG:{_epsg(crs)}", **properties}
    return {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": extensions,
        "id": item_id, "collection": collection, "geometry": geom, "bbox": bbox,
        "properties": props, "assets": assets, "links": [],
    }


def make_s2_item(
    item_id: str,
    datetime: Any,
    hrefs: Mapping[str, str],
    *,
    transform: Any,
    shape: tuple[int, int],
    crs: Any,
    provider: str = "earth-search",
    collection: str | None = None,
    platform: str = "sentinel-2a",
    processing_baseline: str = "05.00",
    sun_azimuth: float = 150.0,
    sun_elevation: float = 50.0,
    cloud_cover: float = 0.0,
    mgrs_tile: str = "32TPS",
    shapes: Mapping[str, tuple[int, int]] | None = None,
    transforms: Mapping[str, Any] | None = None,
) -> dict:
    """A Sentinel-2 L2A STAC item (a dict) in a provider's conventions.

    Parameters
    ----------
    item_id, datetime
        Item id and acquisition time.
    hrefs
        Cube band name (``blue`` ... ``swir2``) or ``"scl"`` -> COG path.  The
        asset keys are the provider's: common names with ``raster:bands``
        (scale 1e-4, offset -0.1 for baseline >= 04.00) for ``"earth-search"``,
        B-names and ``SCL`` without ``raster:bands`` for ``"planetary-computer"``.
    transform, shape, crs
        Grid of the COGs (``proj:*``); per-asset overrides in ``transforms`` /
        ``shapes`` (e.g. 20 m bands).
    provider, collection
        Conventions and collection id (default ``sentinel-2-c1-l2a`` or
        ``sentinel-2-l2a``).
    platform, processing_baseline, sun_azimuth, sun_elevation, cloud_cover, mgrs_tile
        Item properties.

    Examples
    --------
    >>> from affine import Affine
    >>> it = make_s2_item("S2A_1", "2021-08-01T10:20:00", {"blue": "/tmp/b.tif", "scl": "/tmp/s.tif"},
    ...                   transform=Affine(10, 0, 630000, 0, -10, 5190000), shape=(8, 8),
    ...                   crs="EPSG:32632", provider="planetary-computer")
    >>> sorted(it["assets"]), it["properties"]["s2:processing_baseline"]
    (['B02', 'SCL'], '05.00')
    """
    es = provider == "earth-search"
    keys = {**(_ES_S2_KEYS if es else _PC_S2_KEYS), "scl": "scl" if es else "SCL"}
    collection = collection or ("sentinel-2-c1-l2a" if es else "sentinel-2-l2a")
    shapes, transforms = dict(shapes or {}), dict(transforms or {})
    harmonised_offset = -0.1 if float(processing_baseline) >= 4.0 else 0.0
    assets = {}
    for band, href in hrefs.items():
        key = keys[band]
        raster = None
        if es:
            if band == "scl":
                raster = {"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}
            else:
                raster = {"nodata": 0, "data_type": "uint16", "scale": 0.0001,
                          "offset": harmonised_offset, "unit": "1"}
        roles = ("data",) if band == "scl" else ("data", "reflectance")
        assets[key] = _asset(href, shapes.get(band, shape), transforms.get(band, transform),
                             roles=roles, raster=raster, title=band)
    props = {
        "platform": platform if es else "Sentinel-2" + platform[-1].upper(),
        "constellation": "sentinel-2", "instruments": ["msi"],
        "eo:cloud_cover": float(cloud_cover),
        "view:sun_azimuth": float(sun_azimuth), "view:sun_elevation": float(sun_elevation),
        "s2:processing_baseline": processing_baseline, "s2:mgrs_tile": mgrs_tile,
    }
    if es:
        props["earthsearch:boa_offset_applied"] = False
    exts = [_PROJ, _EO, _VIEW] + ([_RASTER] if es else [])
    return _item(item_id, collection, datetime, transform, shape, crs, assets, props, exts)


def make_landsat_item(
    item_id: str,
    datetime: Any,
    hrefs: Mapping[str, str],
    *,
    transform: Any,
    shape: tuple[int, int],
    crs: Any,
    platform: str = "landsat-8",
    provider: str = "earth-search",
    collection: str = "landsat-c2-l2",
    sun_azimuth: float = 145.0,
    sun_elevation: float = 52.0,
    cloud_cover: float = 0.0,
) -> dict:
    """A Landsat Collection 2 Level-2 STAC item (a dict).

    Parameters
    ----------
    hrefs
        Cube band name or ``"qa_pixel"`` -> COG path (or any URL, e.g.
        ``s3://usgs-landsat/...`` for requester-pays tests).  Asset keys are
        blue, green, red, nir08, swir16, swir22, qa_pixel with ``raster:bands``
        (scale 2.75e-5, offset -0.2) as both providers publish them.
    platform
        ``landsat-4`` ... ``landsat-9``; sets ``instruments`` (TM, ETM+, OLI).
    transform, shape, crs, sun_azimuth, sun_elevation, cloud_cover
        As in :func:`make_s2_item`.

    Examples
    --------
    >>> from affine import Affine
    >>> it = make_landsat_item("LC08_1", "2021-08-01", {"nir": "/tmp/n.tif"},
    ...                        transform=Affine(30, 0, 630000, 0, -30, 5190000),
    ...                        shape=(4, 4), crs="EPSG:32632", platform="landsat-5")
    >>> list(it["assets"]), it["properties"]["instruments"]
    (['nir08'], ['tm'])
    """
    from xfacies.sensors import PROVIDERS

    instrument = PROVIDERS["earth-search"].collections["landsat-c2-l2"].instrument(platform)
    keys = {**_LANDSAT_KEYS, "qa_pixel": "qa_pixel"}
    assets = {}
    for band, href in hrefs.items():
        if band == "qa_pixel":
            raster = {"nodata": 1, "data_type": "uint16", "unit": "bit index"}
            roles: tuple[str, ...] = ("cloud", "cloud-shadow", "snow-ice", "water-mask")
        else:
            raster = {"nodata": 0, "data_type": "uint16", "scale": 2.75e-05, "offset": -0.2,
                      "unit": "1"}
            roles = ("data", "reflectance")
        assets[keys[band]] = _asset(href, shape, transform, roles=roles, raster=raster, title=band)
    props = {
        "platform": platform, "instruments": [instrument] + (["tirs"] if instrument == "oli" else []),
        "eo:cloud_cover": float(cloud_cover),
        "view:sun_azimuth": float(sun_azimuth), "view:sun_elevation": float(sun_elevation),
        "landsat:collection_category": "T1", "landsat:collection_number": "02",
        "landsat:correction": "L2SP",
    }
    return _item(item_id, collection, datetime, transform, shape, crs, assets, props,
                 [_PROJ, _EO, _VIEW, _RASTER])


def _union_bbox(items: Sequence[dict]) -> list[float]:
    b = np.array([it["bbox"] for it in items]) if items else np.array([[-180, -90, 180, 90]])
    return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())]


def write_collection(path: str | Path, collection_id: str, items: Sequence[dict] = (),
                     description: str = "") -> str:
    """Write a STAC Collection JSON whose extent covers ``items``; returns the path.

    Examples
    --------
    >>> import tempfile, json
    >>> p = write_collection(tempfile.mkdtemp() + "/c.json", "sentinel-2-c1-l2a")
    >>> json.load(open(p))["id"]
    'sentinel-2-c1-l2a'
    """
    times = sorted(it["properties"]["datetime"] for it in items) or [None]
    coll = {
        "type": "Collection", "stac_version": "1.1.0", "id": collection_id,
        "description": description or f"xfacies test collection {collection_id}",
        "license": "proprietary", "links": [],
        "extent": {"spatial": {"bbox": [_union_bbox(items)]},
                   "temporal": {"interval": [[times[0], times[-1]]]}},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coll))
    return str(path)


def write_items(path: str | Path, items: Sequence[dict]) -> str:
    """Write items as a GeoJSON FeatureCollection (what ``rustac serve`` loads); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(items)}))
    return str(path)


# --------------------------------------------------------------------------- server
def rustac_executable() -> str:
    """Path of the ``rustac`` command-line program (installed by the ``rustac`` package).

    Raises
    ------
    FileNotFoundError
        When the ``rustac`` package is not installed (``pip install rustac``).
    """
    cand = Path(sys.executable).parent / ("rustac.exe" if os.name == "nt" else "rustac")
    if cand.exists():
        return str(cand)
    found = shutil.which("rustac")
    if found:
        return found
    raise FileNotFoundError(
        "the 'rustac' program was not found next to the Python interpreter or on PATH; "
        "install it with `pip install rustac` (xfacies[test])"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_files(objs: Any, tmp: Path, stem: str) -> list[str]:
    if isinstance(objs, (str, os.PathLike, dict)):
        objs = [objs]
    out = []
    for k, o in enumerate(objs):
        if isinstance(o, dict):
            p = tmp / f"{stem}{k}.json"
            p.write_text(json.dumps(o))
            out.append(str(p))
        else:
            out.append(str(Path(o).resolve()))
    return out


@contextlib.contextmanager
def serve(collection_json: Any, items_json: Any, port: int | None = None,
          timeout: float = 20.0) -> Iterator[str]:
    """Serve collections and items as a STAC API on loopback with ``rustac serve``.

    Parameters
    ----------
    collection_json
        Collection JSON path(s) or dict(s).
    items_json
        Item-collection JSON path(s) (FeatureCollection) or dict(s).
    port
        TCP port on 127.0.0.1; default a free one.
    timeout
        Seconds to wait for the server to answer.

    Yields
    ------
    str
        The API root URL, e.g. ``"http://127.0.0.1:41234"``.

    Raises
    ------
    RuntimeError
        When the server exits or does not answer in time (its output is shown).

    Examples
    --------
    >>> with serve("collection.json", "items.json") as url:   # doctest: +SKIP
    ...     pystac_client.Client.open(url).search(collections=["x"]).item_collection()
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
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"rustac serve exited with code {proc.returncode}:\n{log.read()}")
                try:
                    with urllib.request.urlopen(url + "/collections", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"rustac serve did not answer at {url} within {timeout} s:\n{log.read()}")
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
    scl = np.full(truth.shape, 5, dtype=np.uint8)  # not vegetated
    scl[np.isin(truth, [ids["snow"], ids["firn"]])] = 11
    scl[truth == ids["water"]] = 6
    scl[truth == ids["cloud"]] = 9
    return scl


def synthetic_catalog(season: Any, outdir: str | Path, provider: str = "earth-search",
                      baseline: str = "05.00") -> tuple[str, str]:
    """Write a synthetic season as COGs plus a STAC collection and items.

    The six reflectance bands become uint16 COGs with
    ``DN = round(reflectance * 1e4) + 1000`` (baseline >= 04.00 conventions,
    so the offset path is exercised), and an SCL COG (9 = cloud where the
    synthetic truth is cloud, 11 snow/firn, 6 water, 5 elsewhere).  Items
    carry datetime, platform (alternating Sentinel-2A/B),
    ``s2:processing_baseline``, ``view:sun_azimuth``/``view:sun_elevation``
    from the season's coordinates, ``eo:cloud_cover``, ``proj:*`` and, for
    Earth Search, ``raster:bands`` with scale 1e-4 and offset -0.1.

    Parameters
    ----------
    season
        :func:`xfacies.synthetic.season` output (``features`` (time, band, y, x)).
    outdir
        Folder for ``cogs/``, ``collection.json`` and ``items.json``.
    provider
        ``"earth-search"`` or ``"planetary-computer"`` conventions.
    baseline
        ``s2:processing_baseline`` of the items (>= ``"04.00"``).

    Returns
    -------
    (str, str)
        Paths of the collection JSON and of the items JSON, ready for :func:`serve`.

    Examples
    --------
    >>> from xfacies import synthetic
    >>> coll, items = synthetic_catalog(synthetic.season(2, size=32), "cat")  # doctest: +SKIP
    """
    outdir = Path(outdir)
    feats = season["features"]
    crs = season.rio.crs
    transform = season.rio.transform()
    ny, nx = season.sizes["y"], season.sizes["x"]
    refl = feats.sel(band=list(OPTICAL_FEATURES))
    truth = season["truth"] if "truth" in season else None
    items = []
    for t in range(season.sizes["time"]):
        ts = season["time"].values[t]
        day = str(np.datetime_as_string(ts, unit="D")).replace("-", "")
        platform = "sentinel-2a" if t % 2 == 0 else "sentinel-2b"
        item_id = f"S2{platform[-1].upper()}_SYN_{day}_{t:03d}"
        r = np.asarray(refl.isel(time=t).values, dtype=np.float64)
        dn = np.clip(np.round(r * 1e4) + 1000, 1, 65535).astype(np.uint16)
        dn[:, ~np.isfinite(r).all(axis=0)] = 0
        hrefs = {}
        for k, band in enumerate(OPTICAL_FEATURES):
            hrefs[band] = write_cog(outdir / "cogs" / item_id / f"{band}.tif", dn[k], transform, crs, 0)
        tr = truth.isel(time=t).values if truth is not None else np.full((ny, nx), -1)
        scl = _scl_from_truth(tr)
        hrefs["scl"] = write_cog(outdir / "cogs" / item_id / "scl.tif", scl, transform, crs, 0)
        cloud = float(100.0 * (scl == 9).mean())
        items.append(make_s2_item(
            item_id, ts, hrefs, transform=transform, shape=(ny, nx), crs=crs, provider=provider,
            platform=platform, processing_baseline=baseline,
            sun_azimuth=float(season["sun_azimuth"].values[t]),
            sun_elevation=float(season["sun_elevation"].values[t]), cloud_cover=cloud,
        ))
    cid = items[0]["collection"]
    coll = write_collection(outdir / "collection.json", cid, items, "xfacies synthetic season")
    return coll, write_items(outdir / "items.json", items)

"""Lazy Landsat and Sentinel-2 reflectance cubes (and DEMs) from STAC APIs.

:func:`open_stac` searches a STAC API (pystac-client), loads the items lazily
with :func:`odc.stac.load` (``chunks=...``, ``groupby="solar_day"``) onto one
grid and applies xfacies' own radiometry and masks, per chunk, with dask:

* band names are :data:`xfacies.catalog.OPTICAL_FEATURES`, asset keys, dtype,
  nodata, scale/offset, the Sentinel-2 processing-baseline offset and the mask
  rules come from the tables of :mod:`xfacies.sources.sensors`;
* invalid pixels (nodata, saturated, cloud, cloud shadow, cirrus; never snow)
  are NaN in every reflectance band, and the cube has one more band,
  ``"valid"`` (1.0 valid, 0.0 invalid), so the mask travels with the data;
* per-time coordinates ``platform``, ``instrument``, ``collection``,
  ``item_ids``, ``sun_azimuth``, ``sun_elevation`` (degrees) and
  ``cloud_cover`` (percent).

Nothing is read before ``.compute()``: only STAC JSON is fetched.

:func:`open_dem` mosaics Copernicus DEM tiles from STAC (or reprojects a DEM
file) onto a cube's grid.

Radiometry and same-day fusion
------------------------------
odc-stac fuses the tiles of one solar day pixel by pixel but cannot apply a
different scale/offset to each tile.  Items are therefore loaded in groups of
identical radiometry (collection, scale and offset of every band, which
includes the processing-baseline rule); a day whose tiles fall into
different groups (e.g. one tile processed with baseline 03.01, its neighbour
with 04.00) is fused *after* the radiometry, keeping the first valid pixel,
exactly like odc-stac's own fuser.  Different sensors are never fused: a
Landsat and a Sentinel-2 acquisition on the same day are two time steps.

URL signing (Planetary Computer)
--------------------------------
``odc.stac.load(patch_url=...)`` signs URLs when the graph is built, so a
graph computed after the token expired (about 45 min) fails.  xfacies passes
a reader driver (:class:`SigningDriver`) that calls the signer on every read
inside the dask task instead; ``planetary_computer.sign`` caches its tokens
and renews them when they expire, so long cluster jobs keep working.

Examples
--------
>>> import xfacies
>>> cube = xfacies.open_stac(outlines, time="2022-06/2022-09",
...                          catalog="planetary-computer")          # doctest: +SKIP
>>> cube.sel(band="valid").mean(("y", "x")).compute()               # doctest: +SKIP
>>> dem = xfacies.open_dem(like=cube)                               # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import rioxarray  # noqa: F401  (registers .rio)

from xfacies import spatial
from xfacies.errors import GridError, InputError, MissingAssetError, RequesterPaysError
from xfacies.outlines import geobox_around, read_outlines
from xfacies.catalog import OPTICAL_FEATURES
from xfacies.sources.retry import http_retry, retrying
from xfacies.sources.retry import settings as retry_settings
from xfacies.sources.sensors import PROVIDERS, SENSORS, UNSUPPORTED, CollectionSpec, Provider

__all__ = [
    "open_stac",
    "search",
    "SigningDriver",
    "MissingAssetError",
    "RequesterPaysError",
    "VALID_BAND",
    "DEFAULT_CHUNKS",
]

#: Name of the validity band of :func:`open_stac` cubes (1.0 valid, 0.0 invalid).
VALID_BAND = "valid"

#: (connect, read) timeouts of STAC API requests, in seconds; a timeout is retried like a 5xx
HTTP_TIMEOUT = (10.0, 60.0)
#: GDAL's timeouts for asset reads (unless the rasterio environment sets its own)
GDAL_TIMEOUTS = {"GDAL_HTTP_CONNECTTIMEOUT": "10", "GDAL_HTTP_TIMEOUT": "60"}

#: Default dask chunks of :func:`open_stac` (one time step per chunk).
DEFAULT_CHUNKS: dict[str, int] = {"time": 1, "y": 2048, "x": 2048}

_PER_TIME = ("platform", "instrument", "collection", "item_ids", "sun_azimuth",
             "sun_elevation", "cloud_cover")


# --------------------------------------------------------------------------- signing
def _no_sign(url: str) -> str:
    return url


def local_path(uri: str) -> str:
    """A ``file://`` URI as the local path GDAL opens; any other URI unchanged.

    STAC hrefs of local files are URIs (``Path.as_uri()``), where a space is ``%20`` and a
    non-ASCII letter is percent-encoded UTF-8; GDAL takes the URI's path literally and finds no
    such file, so every read of a catalogue under "My Glaciers/" failed.

    Examples
    --------
    >>> local_path("file:///data/My%20Glaciers/%C3%96tztal/B02.tif")
    '/data/My Glaciers/Ötztal/B02.tif'
    >>> local_path("https://example.com/a%20b.tif")
    'https://example.com/a%20b.tif'
    """
    if not uri.startswith("file:"):
        return uri
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(uri)
    return url2pathname(parsed.path if not parsed.netloc or parsed.netloc == "localhost"
                        else f"//{parsed.netloc}{parsed.path}")


class _SigningReader:
    """Rasterio reader that signs its source URL immediately before reading."""

    def __init__(self, src: Any, ctx: Any, signer: Callable[[str], str], retries: int, wait: float) -> None:
        self._src, self._ctx, self._signer = src, ctx, signer
        self.retries, self.wait = retries, wait

    def read(self, cfg: Any, dst_geobox: Any, *, dst: Any = None, selection: Any = None) -> Any:
        from odc.loader import RioReader

        def once() -> Any:  # signed anew on every attempt: a retry may follow an expired token
            src = self._src.patch(uri=self._signer(local_path(self._src.uri)))
            return RioReader(src, self._ctx).read(cfg, dst_geobox, dst=dst, selection=selection)

        return retrying(once, what=f"reading {self._src.uri}", retries=self.retries, wait=self.wait)


class SigningDriver:
    """odc-loader reader driver: rasterio reads, each URL signed at read time.

    ``odc.stac.load(patch_url=sign)`` freezes signed URLs (and their expiring
    tokens) into the dask graph when it is built.  This driver keeps the
    unsigned URL in the graph and calls ``signer(url)`` inside every read
    task, so a token that expired while the job ran is renewed by the signer
    (``planetary_computer.sign`` caches tokens until they expire).

    Parameters
    ----------
    signer
        ``url -> signed url``; must be picklable (a module-level function)
        to run on a distributed cluster.  ``None`` signs nothing.
    retries, wait
        Transient read errors are retried this many times with exponential
        backoff from ``wait`` seconds: HTTP 429/5xx of remote assets by GDAL
        (``GDAL_HTTP_MAX_RETRY``/``GDAL_HTTP_RETRY_DELAY``, unless the
        rasterio environment sets them), every other I/O error by
        :func:`xfacies.sources.retry.retrying`.  Defaults: the
        ``retries``/``retry_wait`` options where the graph is built; they
        travel with the graph to the workers.

    Examples
    --------
    >>> drv = SigningDriver(str.strip)
    >>> drv.signer(" file.tif ")
    'file.tif'
    """

    def __init__(self, signer: Callable[[str], str] | None = None, *, retries: int | None = None,
                 wait: float | None = None) -> None:
        from odc.loader import RioDriver

        self.signer = signer or _no_sign
        self.retries, self.wait = retry_settings(retries, wait)
        self._rio = RioDriver()

    def new_load(self, geobox: Any, *, chunks: Any = None) -> Any:
        return self._rio.new_load(geobox, chunks=chunks)

    def finalise_load(self, load_state: Any) -> Any:
        return self._rio.finalise_load(load_state)

    def capture_env(self) -> dict[str, Any]:
        import rasterio.env

        env = self._rio.capture_env()
        # GDAL retries HTTP 429/5xx of remote assets itself (and remembers a failed URL for the rest of
        # the process, so it must be GDAL that retries those): with xfacies' retries and first wait,
        # unless the rasterio environment sets its own.  A stalled server ends as a timeout.
        ours = {"GDAL_HTTP_MAX_RETRY": str(self.retries), "GDAL_HTTP_RETRY_DELAY": f"{self.wait:g}",
                **GDAL_TIMEOUTS}
        user = rasterio.env.getenv() if rasterio.env.hasenv() else {}  # what the user's rasterio.Env sets
        env.update({k: v for k, v in ours.items() if k not in user})
        return env

    @contextlib.contextmanager
    def restore_env(self, env: dict[str, Any], load_state: Any) -> Iterator[Any]:
        with self._rio.restore_env(env, load_state) as ctx:
            yield ctx

    def open(self, src: Any, ctx: Any) -> _SigningReader:
        return _SigningReader(src, ctx, self.signer, self.retries, self.wait)

    md_parser = None
    dask_reader = None
    aux_reader = None


def _default_signer(kind: str | None) -> Callable[[str], str] | None:
    if kind != "planetary-computer":
        return None
    try:
        import planetary_computer
    except ImportError as e:
        raise ImportError(
            "Planetary Computer assets must be signed: install the optional package with "
            "`pip install planetary-computer` (or `pip install xfacies[planetary-computer]`), "
            "or pass signer=<function url -> signed url>"
        ) from e
    return planetary_computer.sign


# --------------------------------------------------------------------------- catalogue resolution
@dataclass(frozen=True)
class _Catalog:
    url: str
    provider: Provider | None
    specs: dict[str, CollectionSpec]
    signer: Callable[[str], str] | None


def _how_to_supply() -> str:
    return ("supply a table with collections={'<collection-id>': xfacies.sources.sensors.CollectionSpec("
            "'<collection-id>', 'sentinel-2', bands={'blue': '<asset>', ...}, scale=..., offset=..., "
            "mask=(xfacies.sources.sensors.S2_SCL_MASK,))} (see xfacies.sources.sensors)")


def resolve_catalog(catalog: str, provider: str | None, sensors: Sequence[str],
                     collections: Mapping[str, CollectionSpec] | Sequence[str] | None,
                     signer: Callable[[str], str] | None, kinds: Sequence[str] | None = None) -> _Catalog:
    if isinstance(sensors, str):
        sensors = (sensors,)
    kinds = tuple(kinds) if kinds is not None else tuple(sensors)
    unknown_sensors = [s for s in kinds if s not in SENSORS + ("dem",)]
    if unknown_sensors:
        raise InputError(f"unknown sensor(s) {unknown_sensors}; use any of {list(SENSORS)}")
    if catalog in PROVIDERS:
        prov: Provider | None = PROVIDERS[catalog]
        url = prov.url
    else:
        url = catalog
        if provider is not None and provider not in PROVIDERS:
            raise InputError(f"unknown provider {provider!r}; known providers: {sorted(PROVIDERS)} "
                             "(or pass your own collections= table)")
        prov = PROVIDERS[provider] if provider else None
        if prov is None:
            prov = next((p for p in PROVIDERS.values() if url.rstrip("/") == p.url), None)
    if "://" not in url:
        raise InputError(f"catalog={catalog!r} is neither a known provider ({sorted(PROVIDERS)}) "
                         "nor a STAC API URL")
    known = dict(prov.collections) if prov else {}
    if collections is None:
        if prov is None:
            raise InputError(
                f"xfacies has no collection table for the STAC API {url}; pass provider="
                f"{sorted(PROVIDERS)} if it follows one of those conventions, or " + _how_to_supply())
        specs = {k: v for k, v in known.items() if v.sensor in kinds}
    elif isinstance(collections, Mapping):
        specs = {}
        for k, v in collections.items():
            if not isinstance(v, CollectionSpec):
                raise TypeError(f"collections[{k!r}] must be an xfacies.sources.sensors.CollectionSpec, "
                                f"got {type(v).__name__}")
            specs[k] = v
    else:
        specs = {}
        for k in ([collections] if isinstance(collections, str) else collections):
            if k not in known:
                raise _unknown_collection(k, prov, known)
            specs[k] = known[k]
    if not specs:
        raise InputError(f"no collection of sensors {list(kinds)} in the table of "
                         f"{prov.name if prov else url}; known: {sorted(known)}")
    sign = signer if signer is not None else _default_signer(prov.signing if prov else None)
    return _Catalog(url, prov, specs, sign)


def _unknown_collection(name: str, prov: Provider | None, known: Mapping[str, Any]) -> ValueError:
    where = prov.name if prov else "this STAC API"
    why = UNSUPPORTED.get((prov.name, name)) if prov else None
    msg = f"xfacies has no collection table for {name!r} on {where}"
    if why:
        msg += f": {why}"
    return ValueError(f"{msg}. Known collections: {sorted(known)}. To read another collection, "
                      + _how_to_supply())


# --------------------------------------------------------------------------- area and grid
def area_of(where: Any, like: Any = None) -> tuple[Any, Any]:
    """``where`` (an area) or ``like`` (a grid) -> (odc Geometry or None, GeoBox or None)."""
    from odc.geo.geobox import GeoBox
    from odc.geo.geom import Geometry, box

    if like is not None:
        if where is not None:
            raise InputError("give the area as where= or the grid as like=, not both: like= loads the "
                             "imagery on exactly that grid (its footprint is the area searched)")
        if not isinstance(like, (GeoBox, xr.DataArray, xr.Dataset)):
            raise GridError(f"like= must be a grid: an xarray object with y/x coordinates and a CRS (e.g. "
                            f"xfacies.grid(outlines)) or an odc-geo GeoBox; got {type(like).__name__}; pass "
                            "outlines, a geometry or a bbox as where=")
        where = like
    if where is None:
        raise InputError("say where to search: where= (glacier outlines, a geometry, a lon/lat bbox) or "
                         "like= (a grid, e.g. xfacies.grid(outlines))")
    if isinstance(where, GeoBox):
        return None, where
    if isinstance(where, (xr.DataArray, xr.Dataset)):
        try:
            return None, spatial.geobox(where)
        except ValueError as err:
            raise GridError(f"the xarray object given as the grid has no usable grid ({err}); "
                            "or pass outlines, a geometry or a bbox as where=") from None
    if isinstance(where, (str, os.PathLike)):  # a vector file, read and checked as outlines
        where = read_outlines(where)
    if isinstance(where, Geometry):
        return where, None
    if hasattr(where, "geometry") and hasattr(where, "crs"):  # GeoDataFrame / GeoSeries
        if len(where) == 0:
            raise InputError("the outlines given as `where` are empty")
        if where.crs is None:
            raise GridError("the outlines given as `where` have no CRS; set one with .set_crs(...)")
        geoms = where.geometry if hasattr(where, "geometry") else where
        return Geometry(geoms.union_all(), crs=where.crs), None
    if isinstance(where, (tuple, list, np.ndarray)) and len(where) == 4:
        x0, y0, x1, y1 = map(float, where)
        return box(x0, y0, x1, y1, "EPSG:4326"), None
    if hasattr(where, "__geo_interface__"):
        from shapely.geometry import shape

        return Geometry(shape(where), crs="EPSG:4326"), None
    if isinstance(where, dict) and "type" in where:
        from shapely.geometry import shape

        return Geometry(shape(where), crs="EPSG:4326"), None
    raise TypeError(
        f"`where` must be glacier outlines (GeoDataFrame or a path), a geometry (lon/lat), a "
        f"(lon_min, lat_min, lon_max, lat_max) bbox or an xarray object with a grid; got {type(where).__name__}")


def lonlat_bbox(geom: Any, gbox: Any) -> tuple[float, float, float, float]:
    g = gbox.extent if gbox is not None else geom
    bb = g.to_crs("EPSG:4326").boundingbox
    return (float(bb.left), float(bb.bottom), float(bb.right), float(bb.top))


def _target_geobox(geom: Any, gbox: Any, crs: Any, resolution: float, buffer: float,
                   items: Sequence[Any]) -> Any:
    if gbox is not None:
        return gbox
    if crs is None:
        codes = sorted({_item_crs(it) for it in items} - {None})
        if len(codes) > 1:
            raise GridError(
                f"the items are in different CRSs {codes} and crs=None asks for their native CRS; "
                "pass a target CRS: crs='utm' (the UTM zone of the area) or crs='EPSG:xxxxx'")
        if not codes:
            raise GridError("the items declare no CRS (proj:code / proj:epsg); pass crs='utm' or an EPSG code")
        crs = codes[0]
    return geobox_around(geom, resolution=resolution, crs=crs, buffer=buffer)


def _item_crs(item: Any) -> str | None:
    p = item.properties
    if p.get("proj:code"):
        return str(p["proj:code"])
    if p.get("proj:epsg"):
        return f"EPSG:{int(p['proj:epsg'])}"
    for a in item.assets.values():
        ed = a.extra_fields
        if ed.get("proj:code"):
            return str(ed["proj:code"])
        if ed.get("proj:epsg"):
            return f"EPSG:{int(ed['proj:epsg'])}"
    return None


# --------------------------------------------------------------------------- search
def _client(url: str) -> Any:
    import pystac_client

    from pystac_client.stac_api_io import StacApiIO

    try:
        # 5xx/429, dropped connections and timeouts are retried with backoff (xfacies.sources.retry)
        return pystac_client.Client.open(url, stac_io=StacApiIO(max_retries=http_retry(), timeout=HTTP_TIMEOUT))
    except Exception as e:  # requests/urllib3 errors, APIError, JSON errors
        raise ConnectionError(
            f"could not reach the STAC API at {url} ({type(e).__name__}: {e}); check the URL, "
            "your network or proxy settings, and whether the service is up") from e


def _query_text(url: str, collections: Sequence[str], bbox: Any, time: Any, max_cloud: Any) -> str:
    bb = "[" + ", ".join(f"{v:.5f}" for v in bbox) + "]"
    return (f"catalog={url}, collections={list(collections)}, bbox={bb}, datetime={time!r}, "
            f"max_cloud={max_cloud!r}")


def search(
    where: Any = None,
    time: Any = None,
    sensors: Sequence[str] = ("sentinel-2", "landsat"),
    catalog: str = "earth-search",
    *,
    provider: str | None = None,
    collections: Mapping[str, CollectionSpec] | Sequence[str] | None = None,
    max_cloud: float | None = None,
    like: Any = None,
) -> list[Any]:
    """Search a STAC API for the items :func:`open_stac` would load.

    Parameters are those of :func:`open_stac`.  Items are filtered on the
    client side (``eo:cloud_cover <= max_cloud``, platforms of the table,
    all needed assets present), so servers without the query extension work.

    Returns
    -------
    list of pystac.Item
        Sorted by datetime.

    Examples
    --------
    >>> items = search((10.7, 46.7, 10.9, 46.9), "2022-08", ("sentinel-2",),
    ...                "planetary-computer")                            # doctest: +SKIP
    """
    cat = resolve_catalog(catalog, provider, sensors, collections, signer=_no_sign)
    geom, gbox = area_of(where, like)
    return search_items(cat, lonlat_bbox(geom, gbox), time, max_cloud)


def search_items(cat: _Catalog, bbox: tuple[float, ...], time: Any, max_cloud: float | None) -> list[Any]:
    client = _client(cat.url)
    names = list(cat.specs)
    kwargs: dict[str, Any] = {"collections": names, "bbox": list(bbox)}
    if time is not None:
        kwargs["datetime"] = _datetime_arg(time)
    try:
        found = list(client.search(**kwargs).items())
    except Exception as e:
        if isinstance(e, (ValueError, TypeError)) and "datetime" in str(e):
            raise
        raise ConnectionError(f"the STAC search at {cat.url} failed ({type(e).__name__}: {e}); "
                              f"query: {_query_text(cat.url, names, bbox, time, max_cloud)}") from e
    kept, dropped = [], {"cloud": 0, "platform": 0, "collection": 0}
    for it in found:
        spec = cat.specs.get(it.collection_id)
        if spec is None:
            dropped["collection"] += 1
            continue
        plat = str(it.properties.get("platform", "")).lower()
        if spec.platforms and plat and plat not in spec.platforms:
            dropped["platform"] += 1
            continue
        cc = it.properties.get("eo:cloud_cover")
        if max_cloud is not None and cc is not None and float(cc) > float(max_cloud):
            dropped["cloud"] += 1
            continue
        missing = [a for a in spec.assets() if a not in it.assets]
        if missing:
            raise MissingAssetError(
                f"STAC item {it.id!r} (collection {it.collection_id!r}) has no asset(s) {missing}; "
                f"its assets are {sorted(it.assets)}. If the provider uses other keys, "
                + _how_to_supply())
        kept.append(it)
    if not kept:
        why = "" if not found else (
            f" ({len(found)} item(s) found, dropped: {dropped['cloud']} above max_cloud, "
            f"{dropped['platform']} of platforms without a table, {dropped['collection']} of other collections)")
        raise InputError("no STAC items matched the query " + _query_text(cat.url, names, bbox, time, max_cloud)
                         + why + "; widen the time range or the area, raise max_cloud, or check the collections")
    kept.sort(key=lambda it: (it.datetime or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc), it.id))
    return kept


def _datetime_arg(time: Any) -> Any:
    if isinstance(time, slice):
        return [_iso(time.start), _iso(time.stop)]
    if isinstance(time, (tuple, list)) and len(time) == 2:
        return [_iso(time[0]), _iso(time[1])]
    if isinstance(time, (np.datetime64, _dt.date)):
        return _iso(time)
    return time


def _iso(t: Any) -> str | None:
    if t is None:
        return None
    if isinstance(t, str):
        return t
    import pandas as pd

    return pd.Timestamp(t).isoformat()


# --------------------------------------------------------------------------- requester pays
def _aws_credentials_configured() -> bool:
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if env.get("AWS_PROFILE") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or \
            env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return True
    cred = Path(env.get("AWS_SHARED_CREDENTIALS_FILE", Path.home() / ".aws" / "credentials"))
    return cred.is_file()


def _is_remote(href: str) -> bool:
    return "://" in href and not href.startswith("file://")


def _prefer_s3(items: Sequence[Any], spec: CollectionSpec) -> list[Any]:
    """Copies of the items whose assets point at their ``alternate.s3.href`` (requester-pays buckets)."""
    out = []
    for it in items:
        alt = {k: it.assets[k].extra_fields.get("alternate", {}).get("s3", {}).get("href")
               for k in spec.assets()}
        if not any(alt.values()):
            out.append(it)
            continue
        it = it.clone()
        for k, href in alt.items():
            if href:
                it.assets[k].href = href
        out.append(it)
    return out


def _check_requester_pays(spec: CollectionSpec, items: Sequence[Any]) -> None:
    if not spec.requester_pays:
        return
    if not any(_is_remote(it.assets[a].href) for it in items for a in spec.assets()):
        return
    if not _aws_credentials_configured():
        raise RequesterPaysError(
            f"the {spec.collection!r} assets are in a requester-pays S3 bucket (you pay AWS for the "
            "transfer) and no AWS credentials are configured: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or ~/.aws/credentials). Alternatively read Landsat "
            "from catalog='planetary-computer', or use sensors=('sentinel-2',)")
    import odc.stac

    odc.stac.configure_s3_access(requester_pays=True)


# --------------------------------------------------------------------------- loading
def _solar_day(item: Any, lon: float) -> _dt.date:
    t = item.datetime
    if t is None:
        t = _dt.datetime.fromisoformat(str(item.properties["start_datetime"]).replace("Z", "+00:00"))
    return (t + _dt.timedelta(hours=lon / 15.0)).date()


class _GroupBy:
    """odc-stac groupby callable: the solar day at a fixed longitude."""

    def __init__(self, lon: float) -> None:
        self.lon = lon

    def __call__(self, item: Any, parsed: Any, idx: int) -> _dt.date:
        return _solar_day(item, self.lon)


def _raster_bands(item: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for k, a in item.assets.items():
        rb = a.extra_fields.get("raster:bands")
        if rb:
            out[k] = dict(rb[0])
    return out


def _radiometry_key(spec: CollectionSpec, item: Any) -> tuple[tuple[float, float], ...]:
    rb = _raster_bands(item)
    return tuple(spec.radiometry(item.properties, rb, b) for b in spec.bands)


def _meta(items: Sequence[Any], spec: CollectionSpec) -> dict[str, Any]:
    def joined(vals: Sequence[str]) -> str:
        return ",".join(dict.fromkeys(v for v in vals if v))

    plats = [str(it.properties.get("platform", "")).lower() for it in items]

    def mean(key: str) -> float:
        v = [float(it.properties[key]) for it in items if it.properties.get(key) is not None]
        return float(np.mean(v)) if v else float("nan")

    return {
        "platform": joined(plats),
        "instrument": joined([spec.instrument(p) or ",".join(it.properties.get("instruments", []))
                              for p, it in zip(plats, items)]),
        "collection": spec.collection,
        "item_ids": ",".join(it.id for it in items),
        "sun_azimuth": mean("view:sun_azimuth"),
        "sun_elevation": mean("view:sun_elevation"),
        "cloud_cover": mean("eo:cloud_cover"),
    }


def _apply_radiometry(ds: xr.Dataset, spec: CollectionSpec,
                      radiometry: tuple[tuple[float, float], ...]) -> xr.DataArray:
    """DN Dataset (one variable per asset) -> float32 (time, band, y, x) reflectance + valid band."""
    names = list(spec.bands)
    dn = xr.concat([ds[spec.bands[b]] for b in names], dim="band").assign_coords(band=names)
    if dn.chunks:  # one block of all bands: the radiometry, the masks and the checks per block, not per band
        dn = dn.copy(data=dn.data.rechunk({dn.dims.index("band"): -1}))
    valid = None
    if spec.nodata is not None:
        valid = ~(dn == spec.nodata).any("band")
    for rule in spec.mask:
        ok = ~rule.invalid(ds[rule.asset])
        valid = ok if valid is None else valid & ok
    scale = xr.DataArray(np.array([r[0] for r in radiometry], np.float32), dims="band", coords={"band": names})
    offset = xr.DataArray(np.array([r[1] for r in radiometry], np.float32), dims="band", coords={"band": names})
    refl = dn.astype(np.float32) * scale + offset
    if valid is None:
        valid = refl.notnull().all("band")
    refl = refl.where(valid)
    vband = valid.astype(np.float32).expand_dims(band=[VALID_BAND])
    out = xr.concat([refl, vband], dim="band", coords="minimal", compat="override")
    return out.transpose("time", "band", "y", "x")


def _load_group(items: Sequence[Any], spec: CollectionSpec, gbox: Any, chunks: Mapping[str, int],
                lon: float, driver: SigningDriver, resampling: str | None) -> xr.Dataset:
    import odc.stac

    return odc.stac.load(
        items, bands=list(spec.assets()), geobox=gbox, chunks=dict(chunks), groupby=_GroupBy(lon),
        stac_cfg=spec.stac_cfg(), resampling=spec.resampling_cfg(resampling), driver=driver,
        fail_on_error=True,
    )


def _fuse_first_valid(parts: Sequence[xr.DataArray]) -> xr.DataArray:
    out = parts[0]
    for p in parts[1:]:
        ok = out.sel(band=VALID_BAND, drop=True) > 0
        out = xr.where(ok, out, p.assign_coords(time=out["time"].values), keep_attrs=True)
    return out


def open_stac(
    where: Any = None,
    time: Any = None,
    sensors: Sequence[str] = ("sentinel-2", "landsat"),
    catalog: str = "earth-search",
    *,
    provider: str | None = None,
    collections: Mapping[str, CollectionSpec] | Sequence[str] | None = None,
    resolution: float = 10,
    crs: Any = "utm",
    max_cloud: float | None = None,
    chunks: Mapping[str, int] | None = None,
    buffer: float = 0.0,
    resampling: str | None = None,
    signer: Callable[[str], str] | None = None,
    like: Any = None,
) -> xr.DataArray:
    """A lazy surface-reflectance cube ``(time, band, y, x)`` from a STAC API.

    Parameters
    ----------
    where
        The area: glacier outlines (GeoDataFrame, e.g. RGI rows already
        selected, or a path to a vector file), an odc-geo ``Geometry``, a
        shapely geometry or GeoJSON dict in lon/lat, a
        ``(lon_min, lat_min, lon_max, lat_max)`` bbox, or a grid as for ``like``.
    time
        STAC datetime: ``"2022-06/2022-09"``, ``"2022"``, a ``(start, end)``
        pair or a ``slice``; ``None`` for all.
    sensors
        Sensor families, any of ``"sentinel-2"`` and ``"landsat"``; a cube
        mixes them, one time step per sensor and solar day.
    catalog
        ``"earth-search"``, ``"planetary-computer"`` or the URL of any STAC API.
    provider
        For a URL: whose conventions (collection table) it follows, e.g. a
        mirror of Earth Search.  Known URLs are recognised.
    collections
        Collection ids to use from the provider's table, or a mapping
        ``{collection id: CollectionSpec}`` adding or replacing tables (see
        :mod:`xfacies.sources.sensors`).  Default: the provider's collections of ``sensors``.
    resolution
        Pixel size in units of ``crs`` (metres); Landsat is resampled onto it.
    crs
        ``"utm"`` (the UTM zone of the area's centroid), an EPSG code or
        string, or ``None`` for the items' own CRS (an error when they differ).
    max_cloud
        Keep items with ``eo:cloud_cover`` <= this percentage (filtered on the
        client, so it also works on servers without the query extension).
    chunks
        Dask chunks, default :data:`DEFAULT_CHUNKS`.
    buffer
        Grow the area by this many metres (context around the glaciers).
    resampling
        Resampling of the reflectance bands (default from the table,
        ``"nearest"``); quality masks are always resampled with ``"nearest"``.
    signer
        ``url -> signed url`` called at read time; default
        ``planetary_computer.sign`` for Planetary Computer, none otherwise.
    like
        Instead of ``where``: a grid to load the imagery on exactly, an xarray object with y/x
        coordinates and a CRS (e.g. :func:`xfacies.grid`, or the DEM or cube of another run) or
        an odc-geo ``GeoBox``; its footprint is the area searched, and ``crs``,
        ``resolution`` and ``buffer`` are not used.  (A grid given as ``where`` is taken the
        same way.)

    Returns
    -------
    xarray.DataArray
        ``reflectance``, float32, dask-backed, dims ``(time, band, y, x)``.
        ``band`` is ``OPTICAL_FEATURES + ("valid",)``: surface reflectance
        (NaN where invalid) and the validity mask (1.0 valid, 0.0 invalid:
        nodata, saturated, cloud, cloud shadow, cirrus; snow is valid).
        Per-time coordinates: ``platform``, ``instrument``, ``collection``,
        ``item_ids`` (comma-joined), ``sun_azimuth``, ``sun_elevation``
        (degrees), ``cloud_cover`` (percent); CRS written (``.rio.crs``).

    Raises
    ------
    ValueError
        Empty search (the query is echoed), unknown collection (how to supply
        a table), mixed CRSs with ``crs=None``.
    MissingAssetError
        An item lacks an asset of the table (names the item and its assets).
    ConnectionError
        The STAC API cannot be reached (names the URL).
    RequesterPaysError
        Earth Search Landsat without AWS credentials.

    Examples
    --------
    >>> import xfacies
    >>> rgi = xfacies.read_outlines("RGI2000-v7.0-G-11_central_europe.shp")  # doctest: +SKIP
    >>> cube = xfacies.open_stac(rgi[rgi.glac_name == "Hintereisferner"],
    ...                          time="2022-06/2022-09", max_cloud=60,
    ...                          catalog="planetary-computer")              # doctest: +SKIP
    >>> cube.sel(band=list(xfacies.catalog.OPTICAL_FEATURES))               # doctest: +SKIP
    """
    cat = resolve_catalog(catalog, provider, sensors, collections, signer)
    geom, gbox = area_of(where, like)
    items = search_items(cat, lonlat_bbox(geom, gbox), time, max_cloud)
    gbox = _target_geobox(geom, gbox, crs, resolution, buffer, items)
    chunks = {**DEFAULT_CHUNKS, **(chunks or {})}
    lon = float(gbox.extent.centroid.to_crs("EPSG:4326").points[0][0])
    driver = SigningDriver(cat.signer)

    # Load groups of identical radiometry (one odc-stac load each).
    groups: dict[tuple[str, Any], list[Any]] = {}
    for it in items:
        spec = cat.specs[it.collection_id]
        if spec.requester_pays:
            (it,) = _prefer_s3([it], spec)
        groups.setdefault((spec.collection, _radiometry_key(spec, it)), []).append(it)
    for cid in {k[0] for k in groups}:
        _check_requester_pays(cat.specs[cid], [it for k, v in groups.items() if k[0] == cid for it in v])

    steps: dict[tuple[str, _dt.date], list[tuple[xr.DataArray, list[Any]]]] = {}
    for (cid, radiometry), its in groups.items():
        spec = cat.specs[cid]
        ds = _load_group(its, spec, gbox, chunks, lon, driver, resampling)
        days = sorted({_solar_day(it, lon) for it in its})
        if ds.sizes["time"] != len(days):  # pragma: no cover - guards odc-stac grouping changes
            raise RuntimeError("odc-stac grouped the items differently from xfacies' solar days")
        cube = _apply_radiometry(ds, spec, radiometry)
        for k, day in enumerate(days):
            members = sorted((it for it in its if _solar_day(it, lon) == day), key=lambda i: (i.datetime, i.id))
            steps.setdefault((cid, day), []).append((cube.isel(time=[k]), members))

    layers, metas = [], []
    for (cid, _day), parts in steps.items():
        layers.append(_fuse_first_valid([p for p, _ in parts]))
        members = [it for _, m in parts for it in m]
        metas.append(_meta(members, cat.specs[cid]))
    out = xr.concat(layers, dim="time", coords="minimal", compat="override", join="override")
    for name in _PER_TIME:
        vals = [m[name] for m in metas]
        arr = np.array(vals, dtype=object if isinstance(vals[0], str) else np.float64)
        out = out.assign_coords({name: ("time", arr)})
    # all bands of a block in one chunk: every consumer (radiometry checks, features, the
    # scene check) takes several bands at once, so one task per block and date, not one per band
    out = out.sortby("time")
    out = out.copy(data=out.data.rechunk({out.dims.index("band"): -1}))  # the data only, not the coords
    out = out.assign_coords(band=list(OPTICAL_FEATURES) + [VALID_BAND])
    out.name = "reflectance"
    out.attrs = {
        "long_name": "surface reflectance (NaN where invalid) and validity mask",
        "units": "1",
        "valid_band": f"band '{VALID_BAND}': 1.0 valid, 0.0 nodata/saturated/cloud/cloud shadow/cirrus",
        "stac_catalog": cat.url,
    }
    kinds = {str(it.properties.get("xfacies:imagery", "")) for it in items}
    if kinds == {"synthetic"}:  # served by xfacies.sources.stac_server.synthetic_catalog
        out.attrs["xfacies_imagery"] = "synthetic"
    out["sun_azimuth"].attrs.update(units="degree", long_name="sun azimuth, clockwise from north")
    out["sun_elevation"].attrs.update(units="degree", long_name="sun elevation")
    out["cloud_cover"].attrs.update(units="percent", long_name="scene cloud cover (eo:cloud_cover)")
    return out.rio.write_crs(str(gbox.crs))

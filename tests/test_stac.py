"""open_stac / open_dem against a real STAC API (``rustac serve`` on loopback) over COGs written here.

One module-scoped server holds:

* Earth Search conventions: ``sentinel-2-c1-l2a`` (common-name keys, raster:bands,
  offset -0.1, 20 m SWIR) with two tiles on 2021-07-10 and a cloudy scene on
  2021-08-20; ``landsat-c2-l2`` (Landsat 8 and 7, 30 m, QA_PIXEL) in 2021, an
  s3:// (requester-pays) item in 2019; broken items in 2017 (mixed CRS) and
  2018 (missing asset);
* Planetary Computer conventions: ``sentinel-2-l2a`` (B-names, SCL, no
  raster:bands) with baselines 03.01 and 04.00, also fused on one day, whose
  hrefs only become readable once signed (the fake signer maps them to files);
* ``cop-dem-glo-30``: a float32 EPSG:4326 tile.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from affine import Affine

import xfacies
from xfacies.sources import stac, stac_server as st
from xfacies.sources.dem import open_dem
from xfacies.catalog import OPTICAL_FEATURES
from xfacies.sources.sensors import PROVIDERS, CollectionSpec

# odc-geo 0.5 / affine / shapely deprecation chatter, not ours
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use `@` matmul:PendingDeprecationWarning",
    "ignore:The 'shapely.ops.transform:DeprecationWarning",
)

CRS = "EPSG:32632"
X0, Y0 = 630000.0, 5190000.0
NY, NX = 48, 64                       # the 10 m area
T10 = Affine(10, 0, X0, 0, -10, Y0)
AREA_UTM = (X0, Y0 - 10 * NY, X0 + 10 * NX, Y0)
PC_PREFIX = "https://pcfake.blob.core.windows.net/sentinel2-l2/"

SCL_CLEAR, SCL_SHADOW, SCL_CLOUD, SCL_SNOW = 5, 3, 9, 11
QA_CLEAR, QA_CLOUD, QA_SNOW, QA_FILL = 21824, 22280, 30048, 1


def _area_geom():
    from odc.geo.geom import box

    return box(*AREA_UTM, CRS)


# --------------------------------------------------------------------------- catalogue fixture
def _s2_tile(root: Path, item_id: str, date: str, dn: np.ndarray, scl: np.ndarray, col0: int, *,
             provider: str, baseline: str, platform: str = "sentinel-2a", cloud: float = 5.0,
             href_prefix: str | None = None) -> dict:
    """One S2 tile at columns col0.. of the area; dn (6,) DN per band; scl (ny, nx) at 10 m."""
    ny, nx = scl.shape
    t10 = Affine(10, 0, X0 + 10 * col0, 0, -10, Y0)
    t20 = Affine(20, 0, X0 + 10 * col0, 0, -20, Y0)
    hrefs, shapes, transforms = {}, {}, {}
    for k, band in enumerate(OPTICAL_FEATURES):
        twenty = band in ("swir1", "swir2")
        shape = (ny // 2, nx // 2) if twenty else (ny, nx)
        arr = np.full(shape, dn[k], np.uint16)
        p = st.write_cog(root / item_id / f"{band}.tif", arr, t20 if twenty else t10, CRS, 0)
        hrefs[band] = p if href_prefix is None else href_prefix + f"{item_id}/{band}.tif"
        if twenty:
            shapes[band], transforms[band] = shape, t20
    p = st.write_cog(root / item_id / "scl.tif", scl.astype(np.uint8), t10, CRS, 0)
    hrefs["scl"] = p if href_prefix is None else href_prefix + f"{item_id}/scl.tif"
    return st.make_s2_item(item_id, date, hrefs, transform=t10, shape=(ny, nx), crs=CRS,
                           provider=provider, platform=platform, processing_baseline=baseline,
                           cloud_cover=cloud, shapes=shapes, transforms=transforms,
                           sun_azimuth=150.0 + col0, sun_elevation=55.0)


def _landsat(root: Path, item_id: str, date: str, platform: str, dn: int, qa: np.ndarray,
             hrefs_override: dict | None = None, crs: str = CRS) -> dict:
    t30 = Affine(30, 0, X0, 0, -30, Y0)
    hrefs = {}
    for band in OPTICAL_FEATURES:
        arr = np.full(qa.shape, dn, np.uint16)
        arr[qa == QA_FILL] = 0
        hrefs[band] = st.write_cog(root / item_id / f"{band}.tif", arr, t30, crs, 0)
    hrefs["qa_pixel"] = st.write_cog(root / item_id / "qa_pixel.tif", qa.astype(np.uint16), t30, crs, 1)
    if hrefs_override:
        hrefs = {k: hrefs_override.get(k, v) for k, v in hrefs.items()}
    return st.make_landsat_item(item_id, date, hrefs, transform=t30, shape=qa.shape, crs=crs,
                                platform=platform, cloud_cover=10.0)


def _dem_plane(lon, lat):
    return 2000.0 + 1000.0 * (lon - 10.0) + 500.0 * (lat - 46.0)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("stac")
    es_s2, ls, pc_s2, dem = [], [], [], []
    dn_w = np.array([1000 + 500 * (b + 1) for b in range(6)])   # west tile: refl 0.05 * (b + 1)
    dn_e = np.array([1000 + 700 * (b + 1) for b in range(6)])   # east tile: refl 0.07 * (b + 1)
    scl_w = np.full((NY, 40), SCL_CLEAR)
    scl_w[:8, :8] = SCL_CLOUD
    scl_w[8:16, :8] = SCL_SHADOW
    scl_w[16:24, :8] = SCL_SNOW
    scl_e = np.full((NY, 40), SCL_CLEAR)
    scl_e[:8, -8:] = SCL_CLOUD
    es_s2.append(_s2_tile(root, "S2A_T32TPS_20210710_W", "2021-07-10T10:20:00Z", dn_w, scl_w, 0,
                          provider="earth-search", baseline="05.00"))
    es_s2.append(_s2_tile(root, "S2A_T32TQS_20210710_E", "2021-07-10T10:20:05Z", dn_e, scl_e, 24,
                          provider="earth-search", baseline="05.00"))
    es_s2.append(_s2_tile(root, "S2B_T32TPS_20210820", "2021-08-20T10:20:00Z", dn_w,
                          np.full((NY, NX), SCL_CLOUD), 0, provider="earth-search", baseline="05.00",
                          platform="sentinel-2b", cloud=80.0))
    # 2018: an item without swir22
    bad = _s2_tile(root, "S2A_BROKEN_20180801", "2018-08-01T10:20:00Z", dn_w, np.full((NY, NX), 5), 0,
                   provider="earth-search", baseline="05.00")
    del bad["assets"]["swir22"]
    es_s2.append(bad)
    # 2017: the same area in two UTM zones (hrefs never read)
    for k, code in enumerate((32632, 32633)):
        it = _s2_tile(root, f"S2A_ZONE{code}_20170801", "2017-08-01T10:20:00Z", dn_w,
                      np.full((NY, NX), 5), 0, provider="earth-search", baseline="05.00")
        it["id"] = f"S2A_ZONE{code}_20170801"
        it["properties"]["proj:code"] = f"EPSG:{code}"
        it["properties"]["datetime"] = f"2017-08-0{k + 1}T10:20:00.000000Z"
        es_s2.append(it)

    qa8 = np.full((NY // 3, 22), QA_CLEAR)
    qa8[:4, :4] = QA_CLOUD
    qa8[4:8, :4] = QA_SNOW
    ls.append(_landsat(root, "LC08_L2SP_193027_20210726", "2021-07-26T10:05:00Z", "landsat-8", 20000, qa8))
    qa7 = np.full((NY // 3, 22), QA_CLEAR)
    qa7[:, 10] = QA_FILL  # an SLC-off stripe
    ls.append(_landsat(root, "LE07_L2SP_193027_20210803", "2021-08-03T09:50:00Z", "landsat-7", 16000, qa7))
    s3 = {b: f"s3://usgs-landsat/collection02/level-2/LC08_2019/{b}.TIF" for b in (*OPTICAL_FEATURES, "qa_pixel")}
    ls.append(_landsat(root, "LC08_L2SP_193027_20190726", "2019-07-26T10:05:00Z", "landsat-8", 20000, qa8, s3))

    dn_pc = np.full(6, 3000)
    scl_full = np.full((NY, NX), SCL_CLEAR)
    pc_s2.append(_s2_tile(root / "pc", "S2A_MSIL2A_20210705_N0301", "2021-07-05T10:20:00Z", dn_pc, scl_full, 0,
                          provider="planetary-computer", baseline="03.01", href_prefix=PC_PREFIX))
    pc_s2.append(_s2_tile(root / "pc", "S2A_MSIL2A_20220705_N0400", "2022-07-05T10:20:00Z", dn_pc, scl_full, 0,
                          provider="planetary-computer", baseline="04.00", href_prefix=PC_PREFIX))
    scl_half = np.full((NY, 32), SCL_CLEAR)
    pc_s2.append(_s2_tile(root / "pc", "S2A_MSIL2A_20220125_W_N0301", "2022-01-25T10:20:00Z", dn_pc, scl_half, 0,
                          provider="planetary-computer", baseline="03.01", href_prefix=PC_PREFIX))
    pc_s2.append(_s2_tile(root / "pc", "S2A_MSIL2A_20220125_E_N0400", "2022-01-25T10:20:09Z", dn_pc, scl_half, 32,
                          provider="planetary-computer", baseline="04.00", href_prefix=PC_PREFIX))

    # Copernicus DEM tile (EPSG:4326, 1 arc-second) covering the area
    res = 1 / 3600
    lon0, lat0 = 10.69, 46.86
    ny, nx = 200, 300
    lon = lon0 + (np.arange(nx) + 0.5) * res
    lat = lat0 - (np.arange(ny) + 0.5) * res
    z = _dem_plane(lon[None, :], lat[:, None]).astype(np.float32)
    tdem = Affine(res, 0, lon0, 0, -res, lat0)
    dem_path = st.write_cog(root / "dem" / "Copernicus_DSM_10_N46_00_E010_00_DEM.tif", z, tdem, "EPSG:4326", None)
    d = st.make_landsat_item("Copernicus_DSM_COG_10_N46_00_E010_00_DEM", "2021-04-22T00:00:00Z", {},
                             transform=tdem, shape=(ny, nx), crs="EPSG:4326", collection="cop-dem-glo-30")
    d["assets"] = {"data": {**st._asset(dem_path, (ny, nx), tdem), "roles": ["data"]}}
    d["properties"] = {"datetime": d["properties"]["datetime"], "proj:code": "EPSG:4326", "gsd": 30}
    dem.append(d)

    colls = [st.write_collection(root / f"{name}.json", name, its)
             for name, its in (("sentinel-2-c1-l2a", es_s2), ("landsat-c2-l2", ls),
                               ("sentinel-2-l2a", pc_s2), ("cop-dem-glo-30", dem))]
    items = st.write_items(root / "items.json", es_s2 + ls + pc_s2 + dem)
    with st.serve(colls, items) as url:
        yield {"url": url, "root": root, "dem_path": dem_path, "pc_root": root / "pc"}


@pytest.fixture()
def fake_signer(catalog):
    """A picklable-enough signer that maps the fake blob URLs to the COGs and counts calls."""
    calls = []
    pc_root = str(catalog["pc_root"])

    def sign(url: str) -> str:
        calls.append(url)
        return url.replace(PC_PREFIX, pc_root + "/")

    sign.calls = calls
    return sign


@pytest.fixture()
def count_reads(monkeypatch):
    """Count rasterio.open calls (every pixel read of odc-stac goes through it)."""
    import rasterio

    calls = []
    real = rasterio.open

    def counting_open(fp, *a, **k):
        calls.append(str(fp))
        return real(fp, *a, **k)

    monkeypatch.setattr(rasterio, "open", counting_open)
    return calls


def _es(catalog, time, **kw):
    kw.setdefault("sensors", ("sentinel-2",))
    return xfacies.sources.stac.open_stac(_area_geom(), time, catalog=catalog["url"], provider="earth-search", **kw)


def _pc(catalog, time, signer, **kw):
    return xfacies.sources.stac.open_stac(_area_geom(), time, ("sentinel-2",), catalog["url"],
                                  provider="planetary-computer", signer=signer, **kw)


# --------------------------------------------------------------------------- behaviour
def test_earth_search_s2_reflectance_masks_and_fused_tiles(catalog):
    cube = _es(catalog, "2021-07")
    assert cube.dims == ("time", "band", "y", "x") and cube.dtype == np.float32
    assert list(cube.band.values) == [*OPTICAL_FEATURES, "valid"]
    assert cube.sizes == {"time": 1, "band": 7, "y": NY, "x": NX}
    assert cube.rio.crs.to_epsg() == 32632
    assert float(cube.x[0]) == X0 + 5 and float(cube.y[0]) == Y0 - 5
    v = cube.isel(time=0).compute()
    refl = v.sel(band=list(OPTICAL_FEATURES)).values
    expect_w = 0.05 * np.arange(1, 7)
    expect_e = 0.07 * np.arange(1, 7)
    np.testing.assert_allclose(refl[:, 30, 20], expect_w, atol=1e-6)   # west tile (20 m SWIR too)
    np.testing.assert_allclose(refl[:, 30, 50], expect_e, atol=1e-6)   # east tile, same day
    np.testing.assert_allclose(refl[:, 30, 30], expect_w, atol=1e-6)   # overlap: first item wins
    valid = v.sel(band="valid").values
    assert (valid[:8, :8] == 0).all() and np.isnan(refl[:, :8, :8]).all()        # cloud
    assert (valid[8:16, :8] == 0).all()                                           # cloud shadow
    assert (valid[16:24, :8] == 1).all() and np.isfinite(refl[:, 16:24, :8]).all()  # snow kept
    assert (valid[:8, -8:] == 0).all()                                            # east tile cloud
    assert valid.sum() == NY * NX - 3 * 64  # cloud, shadow (west), cloud (east)
    assert cube.item_ids.values[0] == "S2A_T32TPS_20210710_W,S2A_T32TQS_20210710_E"
    assert cube.platform.values[0] == "sentinel-2a" and cube.instrument.values[0] == "msi"
    assert float(cube.sun_elevation[0]) == 55.0 and float(cube.sun_azimuth[0]) == pytest.approx(162.0)
    assert float(cube.cloud_cover[0]) == 5.0


def test_time_filter_and_max_cloud(catalog):
    assert _es(catalog, "2021").sizes["time"] == 2
    cube = _es(catalog, "2021", max_cloud=50)
    assert cube.sizes["time"] == 1 and str(cube.time.values[0])[:10] == "2021-07-10"
    cloudy = _es(catalog, ("2021-08-01", "2021-08-31")).isel(time=0)
    assert float(cloudy.sel(band="valid").sum()) == 0 and cloudy.platform.item() == "sentinel-2b"


def test_landsat_qa_pixel_scaling_and_10m_grid(catalog):
    cube = _es(catalog, "2021", sensors=("landsat",))
    assert cube.sizes["time"] == 2 and cube.sizes["y"] == NY and cube.sizes["x"] == NX
    assert list(cube.platform.values) == ["landsat-8", "landsat-7"]
    assert list(cube.instrument.values) == ["oli", "etm+"]
    v = cube.compute()
    l8 = v.isel(time=0)
    np.testing.assert_allclose(l8.sel(band="nir").values[20, 20], 20000 * 2.75e-5 - 0.2, atol=1e-6)
    valid = l8.sel(band="valid").values
    assert (valid[:12, :12] == 0).all()           # 4x4 cloudy 30 m pixels -> 12x12 at 10 m
    assert (valid[12:24, :12] == 1).all()         # snow kept
    assert valid.sum() == NY * NX - 144
    l7 = v.isel(time=1)
    assert (l7.sel(band="valid").values[:, 30:33] == 0).all()     # fill stripe, 30 m column 10
    assert np.isnan(l7.sel(band="red").values[:, 30:33]).all()
    np.testing.assert_allclose(l7.sel(band="red").values[0, 0], 16000 * 2.75e-5 - 0.2, atol=1e-6)


def test_mixed_sensors_in_one_cube(catalog):
    cube = _es(catalog, "2021", sensors=("sentinel-2", "landsat"))
    assert cube.sizes["time"] == 4
    assert bool((np.diff(cube.time.values) > np.timedelta64(0)).all())
    assert list(cube.collection.values) == ["sentinel-2-c1-l2a", "landsat-c2-l2", "landsat-c2-l2",
                                            "sentinel-2-c1-l2a"]
    assert list(cube.platform.values) == ["sentinel-2a", "landsat-8", "landsat-7", "sentinel-2b"]
    means = cube.sel(band="nir").mean(("y", "x")).compute()
    assert np.isfinite(means.values[:3]).all()


def test_planetary_computer_baseline_offset_and_signing_at_read_time(catalog, fake_signer, count_reads):
    cube = _pc(catalog, ("2021-07-01", "2022-07-31"), fake_signer)
    assert cube.sizes["time"] == 3
    assert fake_signer.calls == [] and count_reads == []       # nothing signed or read before compute
    v = cube.compute()
    assert len(fake_signer.calls) > 0 and len(count_reads) > 0
    assert all(c.startswith(PC_PREFIX) for c in fake_signer.calls)   # the graph holds unsigned URLs
    blue = v.sel(band="blue").values
    np.testing.assert_allclose(blue[0], 0.3, atol=1e-6)                 # 2021-07-05, baseline 03.01
    np.testing.assert_allclose(blue[2], 0.2, atol=1e-6)                 # 2022-07-05, baseline 04.00
    # 2022-01-25: west tile 03.01, east tile 04.00, same day -> one fused time step
    np.testing.assert_allclose(blue[1][:, :32], 0.3, atol=1e-6)
    np.testing.assert_allclose(blue[1][:, 32:], 0.2, atol=1e-6)
    assert (v.sel(band="valid").values == 1).all()
    assert set(cube.item_ids.values[1].split(",")) == {"S2A_MSIL2A_20220125_W_N0301", "S2A_MSIL2A_20220125_E_N0400"}
    assert cube.platform.values[0] == "sentinel-2a"


def test_signing_happens_in_each_read_task_not_when_building(catalog, fake_signer):
    cube = _pc(catalog, "2021-07", fake_signer, chunks={"x": 32, "y": 32})
    assert fake_signer.calls == []
    cube.sel(band="blue").compute()
    first = len(fake_signer.calls)
    cube.sel(band="blue").compute()      # a later compute (e.g. after token expiry) signs again
    assert first >= 4 and len(fake_signer.calls) == 2 * first


def test_laziness_no_file_read_before_compute(catalog, count_reads):
    cube = _es(catalog, "2021", sensors=("sentinel-2", "landsat"), chunks={"x": 32, "y": 32})
    assert cube.chunks is not None
    assert count_reads == []
    cube.isel(time=0, x=slice(0, 8), y=slice(0, 8)).compute()
    # only the chunk's sources are opened: 7 assets of each of the two tiles of 2021-07-10
    assert len(count_reads) == 14 and all("20210710" in r for r in count_reads)


def test_all_bands_of_a_block_are_one_chunk(catalog):
    """One task per block and date downstream (radiometry, masks, checks, features), not one per
    band: the band axis is a single chunk."""
    cube = _es(catalog, "2021", sensors=("sentinel-2", "landsat"), chunks={"x": 32, "y": 32})
    assert cube.chunksizes["band"] == (cube.sizes["band"],)
    blocks = len(cube.chunksizes["y"]) * len(cube.chunksizes["x"])
    assert blocks > 1 and cube.isel(time=0).data.npartitions == blocks


def test_graph_pickles_for_distributed_workers(catalog):
    import pickle

    cube = _es(catalog, "2021", sensors=("sentinel-2", "landsat"))
    pickle.loads(pickle.dumps(dict(cube.__dask_graph__())))


def test_synthetic_season_round_trip(tmp_path):
    from xfacies import synthetic

    season = synthetic.season(3, size=48, seed=3)
    coll, items = st.synthetic_catalog(season, tmp_path)
    with st.serve(coll, items) as url:
        cube = xfacies.sources.stac.open_stac(season, ("2021-01-01", "2021-12-31"), ("sentinel-2",), url,
                                      provider="earth-search").compute()
    assert cube.sizes["time"] == 3 and cube.rio.crs == season.rio.crs
    np.testing.assert_array_equal(cube.x.values, season.x.values)
    np.testing.assert_array_equal(cube.y.values, season.y.values)
    np.testing.assert_array_equal(cube.time.values.astype("datetime64[D]"), season.time.values.astype("datetime64[D]"))
    np.testing.assert_allclose(cube.sun_azimuth.values, season.sun_azimuth.values)
    truth_cloud = season.truth.values == 7
    valid = cube.sel(band="valid").values == 1
    np.testing.assert_array_equal(valid, ~truth_cloud)
    refl = cube.sel(band=list(OPTICAL_FEATURES)).transpose("time", "band", "y", "x").values
    ref = season.features.sel(band=list(OPTICAL_FEATURES)).values
    m = np.broadcast_to(valid[:, None], refl.shape)
    assert np.abs(refl[m] - ref[m]).max() <= 1e-4 / 2 + 1e-6

    # glacier outlines (plus a buffer) as the area: a window of the same 10 m grid
    out = synthetic.outlines(48, seed=3)
    with st.serve(coll, items) as url:
        sub = xfacies.sources.stac.open_stac(out, None, ("sentinel-2",), url, provider="earth-search", buffer=50)
    assert sub.rio.crs.to_epsg() == 32632 and sub.sizes["y"] < 48 + 10
    xs = np.intersect1d(sub.x.values, season.x.values)
    ys = np.intersect1d(sub.y.values, season.y.values)
    assert len(xs) > 10 and len(ys) > 10                      # pixel centres on the same grid
    xr.testing.assert_allclose(sub.sel(x=xs, y=ys).compute(), cube.sel(x=xs, y=ys), atol=0)


def test_planetary_computer_convention_synthetic_round_trip(tmp_path, monkeypatch):
    from xfacies import synthetic

    season = synthetic.season(1, size=32, seed=4, clouds=False)
    coll, items = st.synthetic_catalog(season, tmp_path, provider="planetary-computer", baseline="04.00")
    with st.serve(coll, items) as url:
        cube = xfacies.sources.stac.open_stac(season, None, ("sentinel-2",), url, provider="planetary-computer",
                                      signer=str).compute()
    ref = season.features.sel(band=list(OPTICAL_FEATURES)).values
    assert np.abs(cube.sel(band=list(OPTICAL_FEATURES)).values - ref).max() <= 0.5e-4 + 1e-6


def test_dem_from_stac_mosaicked_onto_cube_grid(catalog):
    from pyproj import Transformer

    cube = _es(catalog, "2021-07")
    dem = open_dem(cube, catalog=catalog["url"], provider="earth-search")
    assert dem.dims == ("y", "x") and dem.dtype == np.float32 and dem.chunks is not None
    xx, yy = np.meshgrid(cube.x.values, cube.y.values)
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(xx, yy)
    np.testing.assert_allclose(dem.values, _dem_plane(lon, lat), atol=0.5)
    np.testing.assert_array_equal(dem.x.values, cube.x.values)


def test_dem_from_file_reprojected(catalog):
    cube = _es(catalog, "2021-07")
    a = open_dem(cube, catalog["dem_path"])
    b = open_dem(cube, catalog=catalog["url"], provider="earth-search")
    assert a.chunks is not None
    np.testing.assert_allclose(a.values, b.values, atol=0.5)


# --------------------------------------------------------------------------- errors
def test_empty_search_echoes_the_query(catalog):
    echo = r"no STAC items.*sentinel-2-c1-l2a.*bbox=\[10\.7.*datetime='2010'.*max_cloud=20"
    with pytest.raises(ValueError, match=echo):
        _es(catalog, "2010", max_cloud=20)


def test_all_items_above_max_cloud_says_so(catalog):
    with pytest.raises(ValueError, match="1 above max_cloud"):
        _es(catalog, "2021-08", max_cloud=10)


def test_missing_asset_names_item_and_assets(catalog):
    with pytest.raises(KeyError, match=r"S2A_BROKEN_20180801.*\['swir22'\].*'blue'") as e:
        _es(catalog, "2018")
    assert isinstance(e.value, stac.MissingAssetError) and "CollectionSpec" in str(e.value)


def test_mixed_crs_needs_a_target_crs(catalog):
    with pytest.raises(ValueError, match=r"different CRSs.*32632.*32633.*crs='utm'"):
        _es(catalog, "2017", crs=None)
    assert _es(catalog, "2017", crs="utm").rio.crs.to_epsg() == 32632       # default: no error


def test_unreachable_server_names_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        xfacies.sources.stac.open_stac((10.7, 46.8, 10.8, 46.9), "2021", catalog=url, provider="earth-search")


def test_unknown_collection_says_how_to_supply_a_table():
    with pytest.raises(ValueError, match=r"sentinel-2-c1-l2a.*collections=\{.*CollectionSpec"):
        xfacies.sources.stac.open_stac((10.7, 46.8, 10.8, 46.9), "2021", catalog="earth-search",
                               collections=["sentinel-2-l2a"])
    with pytest.raises(ValueError, match="no collection table for the STAC API http://example.invalid"):
        xfacies.sources.stac.open_stac((10.7, 46.8, 10.8, 46.9), "2021", catalog="http://example.invalid/stac")


def test_user_collection_table_on_any_url(catalog):
    pc = PROVIDERS["planetary-computer"].collections["sentinel-2-l2a"]
    mine = CollectionSpec("sentinel-2-l2a", "sentinel-2", dict(pc.bands), scale=1e-4, mask=pc.mask)
    cube = xfacies.sources.stac.open_stac(_area_geom(), "2022-07", catalog=catalog["url"],
                                  collections={"sentinel-2-l2a": mine},
                                  signer=lambda u: u.replace(PC_PREFIX, str(catalog["pc_root"]) + "/"))
    np.testing.assert_allclose(cube.sel(band="blue").values, 0.3, atol=1e-6)   # no baseline rule in mine


def test_requester_pays_without_credentials_is_a_clear_error(catalog, monkeypatch, tmp_path):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
              "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
              "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(stac.RequesterPaysError, match="AWS_ACCESS_KEY_ID.*planetary-computer"):
        _es(catalog, "2019", sensors=("landsat",))
    calls = []
    import odc.stac

    monkeypatch.setattr(odc.stac, "configure_s3_access", lambda **kw: calls.append(kw))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    cube = _es(catalog, "2019", sensors=("landsat",))      # lazily built; never computed here
    assert calls == [{"requester_pays": True}] and cube.sizes["time"] == 1


def test_planetary_computer_without_package_or_signer(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pc(name, *a, **k):
        if name == "planetary_computer":
            raise ImportError("no module")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pc)
    with pytest.raises(ImportError, match="pip install planetary-computer"):
        xfacies.sources.stac.open_stac((10.7, 46.8, 10.8, 46.9), "2021", catalog="planetary-computer")


def test_table_radiometry_rules():
    es = PROVIDERS["earth-search"].collections["sentinel-2-c1-l2a"]
    pc = PROVIDERS["planetary-computer"].collections["sentinel-2-l2a"]
    assert pc.radiometry({"s2:processing_baseline": "04.00"}) == (1e-4, -0.1)
    assert pc.radiometry({"s2:processing_baseline": "02.14"}) == (1e-4, 0.0)
    # Earth Search without raster:bands falls back to the baseline rule
    assert es.radiometry({"s2:processing_baseline": "05.09"}) == (1e-4, -0.1)
    declared = {"blue": {"scale": 1e-4, "offset": 0.0}}     # raster:bands win over the baseline rule
    assert es.radiometry({"s2:processing_baseline": "05.09"}, declared) == (1e-4, 0.0)
    for p in PROVIDERS.values():
        for spec in p.collections.values():
            if spec.sensor != "dem":
                assert tuple(spec.bands) == OPTICAL_FEATURES

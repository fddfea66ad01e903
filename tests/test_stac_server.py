"""xfacies.sources.stac_server: pystac items from real GeoTIFFs, served by the real ``rustac serve``.

Items are built from COGs written here, validated against the STAC core JSON schema that pystac
ships (offline; extension schemas would need the network, so their fields are checked against
the sensors table instead), served on loopback, searched with pystac-client and read back with
``open_stac`` / ``open_dem``, whose pixels are compared with the digital numbers written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pystac_client
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from pyproj import Transformer
from pystac.validation.stac_validator import JsonSchemaSTACValidator

from xfacies.catalog import OPTICAL_FEATURES
from xfacies.sources import stac_server as st
from xfacies.sources.sensors import PROVIDERS, CollectionSpec
from xfacies.sources.stac import open_stac

pytestmark = pytest.mark.filterwarnings(
    "ignore:Use `@` matmul:PendingDeprecationWarning",
    "ignore:The 'shapely.ops.transform:DeprecationWarning",
)

CRS = "EPSG:32632"
X0, Y0 = 630000.0, 5190000.0
NY = NX = 40
T10 = Affine(10, 0, X0, 0, -10, Y0)
T20 = Affine(20, 0, X0, 0, -20, Y0)
T30 = Affine(30, 0, X0, 0, -30, Y0)
GRID = GeoBox((NY, NX), T10, CRS)
ES_S2 = PROVIDERS["earth-search"].collections["sentinel-2-c1-l2a"]
PC_S2 = PROVIDERS["planetary-computer"].collections["sentinel-2-l2a"]
LANDSAT = PROVIDERS["earth-search"].collections["landsat-c2-l2"]

SCL_CLOUD, SCL_SHADOW, SCL_SNOW, SCL_CLEAR = 9, 3, 11, 5
QA_CLEAR, QA_CLOUD = 21824, 22280


def _validate_core(obj) -> None:
    """Validate against pystac's bundled STAC 1.1 core schemas (no network)."""
    d = obj if isinstance(obj, dict) else obj.to_dict(include_self_link=False, transform_hrefs=False)
    kind = pystac.STACObjectType.COLLECTION if d["type"] == "Collection" else pystac.STACObjectType.ITEM
    JsonSchemaSTACValidator().validate_core(d, kind, "1.1.0")


def _s2_dn(k: int, shape: tuple[int, int]) -> np.ndarray:
    """A distinct uint16 DN pattern per band (all >= 1000, the baseline offset)."""
    r, c = np.indices(shape)
    return (1500 + 400 * k + 7 * r + 3 * c).astype(np.uint16)


def _s2_files(root: Path, names: dict[str, str], scl: np.ndarray) -> dict[str, str]:
    """COGs of one scene: SWIR at 20 m, the rest at 10 m; ``names`` maps cube band -> file key."""
    files = {}
    for k, band in enumerate(OPTICAL_FEATURES):
        twenty = band in ("swir1", "swir2")
        dn = _s2_dn(k, (NY // 2, NX // 2) if twenty else (NY, NX))
        files[names[band]] = st.write_cog(root / f"{band}.tif", dn, T20 if twenty else T10, CRS, 0)
    files[names["scl"]] = st.write_cog(root / "scl.tif", scl.astype(np.uint8), T10, CRS, 0)
    return files


def _scl() -> np.ndarray:
    scl = np.full((NY, NX), SCL_CLEAR)
    scl[:5, :5] = SCL_CLOUD
    scl[5:10, :5] = SCL_SHADOW
    scl[10:15, :5] = SCL_SNOW
    return scl


def _expected_reflectance(offset_dn: float) -> np.ndarray:
    """(band, y, x) reflectance on the 10 m grid: 20 m pixels repeated, DN * 1e-4 plus offset."""
    out = []
    for k, band in enumerate(OPTICAL_FEATURES):
        if band in ("swir1", "swir2"):
            dn = np.repeat(np.repeat(_s2_dn(k, (NY // 2, NX // 2)), 2, 0), 2, 1)
        else:
            dn = _s2_dn(k, (NY, NX))
        out.append((dn.astype(np.float64) + offset_dn) * 1e-4)
    return np.stack(out)


# --------------------------------------------------------------------------- items from files
def test_item_from_files_earth_search_s2_fields_follow_the_sensors_table(tmp_path):
    names = {b: b for b in OPTICAL_FEATURES} | {"scl": "scl"}
    files = _s2_files(tmp_path, names, _scl())
    item = st.item_from_files(files, "2021-08-01T10:20:00Z", "sentinel-2-c1-l2a", "earth-search",
                              item_id="S2A_MINE", platform="sentinel-2a", cloud_cover=12.5,
                              sun_azimuth=150.0, sun_elevation=48.0,
                              properties={"s2:processing_baseline": "05.00"})
    assert isinstance(item, pystac.Item)
    _validate_core(item)
    assert item.collection_id == "sentinel-2-c1-l2a" and item.id == "S2A_MINE"
    assert str(item.datetime) == "2021-08-01 10:20:00+00:00"
    # asset keys are the provider's (swir1 -> swir16, ...), all of them
    assert set(item.assets) == set(ES_S2.bands.values()) | {ES_S2.mask[0].asset}
    assert {"swir16", "swir22", "nir", "scl"} <= set(item.assets)
    p = item.properties
    assert p["proj:code"] == CRS and p["platform"] == "sentinel-2a" and p["instruments"] == ["msi"]
    assert p["eo:cloud_cover"] == 12.5 and p["view:sun_elevation"] == 48.0
    assert {u.split("/")[3] for u in item.stac_extensions} == {"projection", "eo", "view", "raster"}
    # radiometry: the table's scale and the baseline offset, computed here from its fields
    offset = ES_S2.offset + ES_S2.baseline_offset_dn * ES_S2.scale
    for band, key in ES_S2.bands.items():
        a = item.assets[key].to_dict()
        (rb,) = a["raster:bands"]
        assert rb["scale"] == ES_S2.scale and rb["offset"] == pytest.approx(offset) == pytest.approx(-0.1)
        assert rb["data_type"] == "uint16" and rb["nodata"] == ES_S2.nodata
        twenty = band in ("swir1", "swir2")
        assert a["proj:shape"] == ([NY // 2, NX // 2] if twenty else [NY, NX])
        assert a["proj:transform"] == list(T20 if twenty else T10)[:6]
        assert a["href"] == Path(files[band]).as_uri()
        assert a["type"] == pystac.MediaType.COG and "data" in a["roles"]
    (rb,) = item.assets["scl"].to_dict()["raster:bands"]
    assert rb["data_type"] == "uint8" and rb["nodata"] == 0 and "scale" not in rb
    # footprint: the corners of the grid, transformed here, lie on the bbox
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(
        [X0, X0 + 400, X0, X0 + 400], [Y0, Y0, Y0 - 400, Y0 - 400])
    w, s, e, n = item.bbox
    assert w == pytest.approx(min(lon)) and e == pytest.approx(max(lon))
    assert s == pytest.approx(min(lat)) and n == pytest.approx(max(lat))
    ring = np.array(item.geometry["coordinates"][0])
    assert (ring[0] == ring[-1]).all()
    signed_area = np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1]) / 2
    assert signed_area > 0                                           # counter-clockwise (RFC 7946)


def test_own_files_served_searched_and_read_back(tmp_path):
    """Earth Search S2 (20 m SWIR, SCL) and Landsat from one server: search, then exact pixels."""
    names = {b: b for b in OPTICAL_FEATURES} | {"scl": "scl"}
    s2 = st.item_from_files(_s2_files(tmp_path / "s2", names, _scl()),
                            "2021-08-01T10:20:00Z", platform="sentinel-2b",
                            properties={"s2:processing_baseline": "05.00"})
    qa = np.full((NY * 10 // 30 + 1, NX * 10 // 30 + 1), QA_CLEAR, np.uint16)
    qa[:2, :2] = QA_CLOUD
    ls_files = {b: st.write_cog(tmp_path / "ls" / f"{b}.tif", np.full(qa.shape, 10000 + 1000 * k, np.uint16),
                                T30, CRS, 0) for k, b in enumerate(OPTICAL_FEATURES)}
    ls_files["qa_pixel"] = st.write_cog(tmp_path / "ls" / "qa.tif", qa, T30, CRS, 1)
    ls = st.item_from_files(ls_files, "2021-08-05T10:00:00Z", "landsat-c2-l2", platform="landsat-8",
                            item_id="LC08_MINE")
    assert ls.properties["instruments"] == ["oli"]
    assert set(ls.assets) == set(LANDSAT.assets())
    (rb,) = ls.assets["nir08"].to_dict()["raster:bands"]
    assert (rb["scale"], rb["offset"]) == (LANDSAT.scale, LANDSAT.offset)
    colls = [st.make_collection([s2]), st.make_collection([ls])]
    for c in colls:
        _validate_core(c)
    with st.serve(colls, [s2, ls]) as url:
        assert url.startswith("http://127.0.0.1:")
        client = pystac_client.Client.open(url)
        found = client.search(collections=["sentinel-2-c1-l2a", "landsat-c2-l2"], bbox=s2.bbox,
                              datetime="2021-08").item_collection()
        assert sorted(i.id for i in found) == sorted([s2.id, "LC08_MINE"])
        assert list(client.search(collections=["landsat-c2-l2"], datetime="2022").items()) == []
        served = next(i for i in found if i.id == s2.id)
        assert served.assets["swir16"].extra_fields["raster:bands"] == \
            s2.assets["swir16"].extra_fields["raster:bands"]
        cube = open_stac(GRID, "2021-08", ("sentinel-2", "landsat"), url, provider="earth-search").compute()
    assert list(cube.collection.values) == ["sentinel-2-c1-l2a", "landsat-c2-l2"]
    assert list(cube.platform.values) == ["sentinel-2b", "landsat-8"]
    refl = cube.isel(time=0).sel(band=list(OPTICAL_FEATURES)).values
    valid = cube.isel(time=0).sel(band="valid").values
    scl = _scl()
    expect_valid = ~np.isin(scl, [SCL_CLOUD, SCL_SHADOW])
    np.testing.assert_array_equal(valid == 1, expect_valid)
    expected = _expected_reflectance(-1000.0)
    np.testing.assert_allclose(refl[:, expect_valid], expected[:, expect_valid], atol=1e-6)
    assert np.isnan(refl[:, ~expect_valid]).all() and (valid[10:15, :5] == 1).all()   # snow stays valid
    l8 = cube.isel(time=1)
    lvalid = l8.sel(band="valid").values
    assert (lvalid[:6, :6] == 0).all() and lvalid.sum() == NY * NX - 36      # 2x2 cloudy 30 m pixels
    np.testing.assert_allclose(l8.sel(band="nir").values[20, 20], (10000 + 3000) * 2.75e-5 - 0.2, atol=1e-6)


def test_planetary_computer_asset_keys_and_baseline_rule(tmp_path):
    """PC conventions: B-names and SCL as file keys, no raster:bands, the reader's baseline offset."""
    names = dict(PC_S2.bands) | {"scl": "SCL"}
    files = _s2_files(tmp_path, names, np.full((NY, NX), SCL_CLEAR))
    old = st.item_from_files(files, "2021-07-05T10:20:00Z", "sentinel-2-l2a", "planetary-computer",
                             platform="Sentinel-2A", properties={"s2:processing_baseline": "03.01"})
    assert set(old.assets) == set(PC_S2.assets()) == {"B02", "B03", "B04", "B08", "B11", "B12", "SCL"}
    assert all("raster:bands" not in a.extra_fields for a in old.assets.values())
    assert not any("raster" in u for u in old.stac_extensions)
    new = st.item_from_files(files, "2022-07-05T10:20:00Z", "sentinel-2-l2a", "planetary-computer",
                             properties={"s2:processing_baseline": "04.00"})
    assert new.id == "sentinel-2-l2a_20220705T102000" and "platform" not in new.properties
    items_json = st.write_items(tmp_path / "items.json", [old, new.to_dict()])   # objects and dicts mix
    coll_json = st.write_collection(tmp_path / "collection.json", "sentinel-2-l2a", [old, new])
    assert json.loads(Path(coll_json).read_text())["extent"]["temporal"]["interval"] == \
        [["2021-07-05T10:20:00Z", "2022-07-05T10:20:00Z"]]
    with st.serve(coll_json, items_json) as url:
        cube = open_stac(GRID, None, ("sentinel-2",), url, provider="planetary-computer", signer=str).compute()
    assert cube.sizes["time"] == 2
    blue = cube.sel(band="blue").values
    np.testing.assert_allclose(blue[0], _expected_reflectance(0.0)[0], atol=1e-6)       # 03.01
    np.testing.assert_allclose(blue[1], _expected_reflectance(-1000.0)[0], atol=1e-6)   # 04.00


def test_own_collection_spec_and_dem(tmp_path):
    spec = CollectionSpec("my-optical", "sentinel-2", {b: f"band{k}" for k, b in enumerate(OPTICAL_FEATURES)},
                          dtype="uint16", nodata=0, scale=1e-3)
    files = {b: st.write_cog(tmp_path / f"{b}.tif", np.full((NY, NX), 100 + k, np.uint16), T10, CRS, 0)
             for k, b in enumerate(OPTICAL_FEATURES)}
    mine = st.item_from_files(files, "2020-06-01", spec)
    assert mine.collection_id == "my-optical" and set(mine.assets) == {f"band{k}" for k in range(6)}
    z = (2000 + np.arange(NY * NX, dtype=np.float32).reshape(NY, NX))
    dem = st.item_from_files({"elevation": st.write_cog(tmp_path / "dem.tif", z, T10, CRS, None)},
                             "2021-04-22", "cop-dem-glo-30", item_id="DEM_TILE")
    assert list(dem.assets) == ["data"]
    colls = [st.make_collection([mine]), st.make_collection([dem])]
    with st.serve(colls, pystac.ItemCollection([mine, dem])) as url:
        cube = open_stac(GRID, None, ("sentinel-2",), url, collections={"my-optical": spec}).compute()
        from xfacies.sources.dem import open_dem

        elevation = open_dem(GRID, catalog=url, provider="earth-search").compute()
    np.testing.assert_allclose(cube.isel(time=0).sel(band=list(OPTICAL_FEATURES)).values[:, 3, 4],
                               (100 + np.arange(6)) * 1e-3, atol=1e-7)
    np.testing.assert_array_equal(elevation.values, z)


# --------------------------------------------------------------------------- provider-convention dicts
@pytest.mark.parametrize("provider", ["earth-search", "planetary-computer"])
def test_make_s2_item_dicts_validate_and_use_the_table(provider):
    spec = next(iter(PROVIDERS[provider].for_sensors(("sentinel-2",)).values()))
    hrefs = {b: f"/data/{b}.tif" for b in OPTICAL_FEATURES} | {"scl": "/data/scl.tif"}
    it = st.make_s2_item("S2A_X", "2021-08-01T10:20:00", hrefs, transform=T10, shape=(NY, NX), crs=CRS,
                         provider=provider, processing_baseline="04.00")
    _validate_core(it)
    assert isinstance(it, dict) and it["collection"] == spec.collection
    assert set(it["assets"]) == set(spec.assets())
    has_rb = ["raster:bands" in a for a in it["assets"].values()]
    assert all(has_rb) if provider == "earth-search" else not any(has_rb)
    if provider == "earth-search":
        assert it["assets"][spec.bands["swir1"]]["raster:bands"][0]["offset"] == pytest.approx(-0.1)
    pystac.Item.from_dict(it)                      # a pystac Item on demand


def test_make_landsat_item_instruments_and_radiometry():
    it = st.make_landsat_item("LE07_X", "2021-08-03", {"red": "/d/r.tif", "qa_pixel": "/d/q.tif"},
                              transform=T30, shape=(5, 5), crs=CRS, platform="landsat-7")
    _validate_core(it)
    assert list(it["assets"]) == [LANDSAT.bands["red"], LANDSAT.mask[0].asset]
    assert it["properties"]["instruments"] == ["etm+"]
    rb = it["assets"]["red"]["raster:bands"][0]
    assert (rb["scale"], rb["offset"], rb["nodata"]) == (2.75e-5, -0.2, 0)
    assert it["assets"]["qa_pixel"]["raster:bands"][0]["nodata"] == 1


def test_make_collection_extent_and_ids(tmp_path):
    a = st.make_s2_item("A", "2021-07-01T10:00:00Z", {}, transform=T10, shape=(NY, NX), crs=CRS)
    b = st.make_s2_item("B", "2021-09-01T10:00:00Z", {}, transform=Affine(10, 0, X0 + 5000, 0, -10, Y0),
                        shape=(NY, NX), crs=CRS)
    c = st.make_collection([a, pystac.Item.from_dict(b)])
    _validate_core(c)
    assert c.id == "sentinel-2-c1-l2a"
    assert c.extent.spatial.bboxes[0] == [a["bbox"][0], min(a["bbox"][1], b["bbox"][1]), b["bbox"][2],
                                          max(a["bbox"][3], b["bbox"][3])]
    assert [t.isoformat() for t in c.extent.temporal.intervals[0]] == \
        ["2021-07-01T10:00:00+00:00", "2021-09-01T10:00:00+00:00"]
    ls = st.make_landsat_item("L", "2021-08-01", {}, transform=T30, shape=(5, 5), crs=CRS)
    with pytest.raises(ValueError,
                       match=r"collections \['landsat-c2-l2', 'sentinel-2-c1-l2a'\]; pass collection_id"):
        st.make_collection([a, ls])


# --------------------------------------------------------------------------- errors
@pytest.fixture()
def landsat_files(tmp_path):
    files = {b: st.write_cog(tmp_path / f"{b}.tif", np.full((4, 4), 9000, np.uint16), T30, CRS, 0)
             for b in OPTICAL_FEATURES}
    files["qa_pixel"] = st.write_cog(tmp_path / "qa.tif", np.full((4, 4), QA_CLEAR, np.uint16), T30, CRS, 1)
    return files


def _ls(files, **kw):
    return st.item_from_files(files, "2021-08-01", "landsat-c2-l2", **kw)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_error_not_a_geotiff(tmp_path, landsat_files):
    text = tmp_path / "notes.tif"
    text.write_text("not an image")
    with pytest.raises(ValueError, match=r"asset 'nir08': '.*notes.tif' is not a GeoTIFF.*gdal_translate"):
        _ls({**landsat_files, "nir": str(text)})
    png = tmp_path / "band.png"
    with rasterio.open(png, "w", driver="PNG", width=4, height=4, count=1, dtype="uint16") as dst:
        dst.write(np.ones((1, 4, 4), np.uint16))
    with pytest.raises(ValueError, match=r"'.*band.png' is a PNG file, not a GeoTIFF"):
        _ls({**landsat_files, "red": str(png)})
    with pytest.raises(FileNotFoundError, match=r"asset 'swir16'.*missing.tif"):
        _ls({**landsat_files, "swir1": str(tmp_path / "missing.tif")})


def test_error_band_counts_and_assets(tmp_path, landsat_files):
    stack = st.write_cog(tmp_path / "stack.tif", np.ones((6, 4, 4), np.uint16), T30, CRS, 0)
    with pytest.raises(ValueError, match=r"'.*stack.tif' has 6 bands; each asset .* single-band file"):
        _ls({**landsat_files, "blue": stack})
    few = {k: v for k, v in landsat_files.items() if k in ("blue", "green")}
    with pytest.raises(ValueError, match=r"needs one file per asset \['blue', 'green', 'red', 'nir08', "
                                         r"'swir16', 'swir22', 'qa_pixel'\]; missing \['red', 'nir08'"):
        _ls(few)
    with pytest.raises(ValueError, match=r"'B08' is not an asset of collection 'landsat-c2-l2'.*'nir08'"):
        _ls({**landsat_files, "B08": landsat_files["nir"]})
    with pytest.raises(ValueError, match=r"asset 'nir08' .* given twice"):
        _ls({**landsat_files, "nir08": landsat_files["nir"]})
    with pytest.raises(TypeError, match=r"files must map asset names to paths"):
        st.item_from_files(landsat_files["blue"], "2021-08-01", "landsat-c2-l2")


def test_error_dtype_nodata_crs(tmp_path, landsat_files):
    f32 = st.write_cog(tmp_path / "f.tif", np.ones((4, 4), np.float32), T30, CRS, 0)
    with pytest.raises(ValueError, match=r"'.*f.tif' is float32 but collection 'landsat-c2-l2' stores uint16"):
        _ls({**landsat_files, "red": f32})
    nd = st.write_cog(tmp_path / "nd.tif", np.ones((4, 4), np.uint16), T30, CRS, 65535)
    with pytest.raises(ValueError, match=r"declares nodata 65535 but collection 'landsat-c2-l2' uses 0"):
        _ls({**landsat_files, "red": nd})
    other = st.write_cog(tmp_path / "z33.tif", np.ones((4, 4), np.uint16), T30, "EPSG:32633", 0)
    with pytest.raises(ValueError, match=r"share a CRS.*EPSG:32633"):
        _ls({**landsat_files, "red": other})


def test_error_collection_platform_baseline(landsat_files):
    with pytest.raises(ValueError, match=r"no table for collection 'sentinel-2-l2a' of provider 'earth-search' "
                                         r"\(.*boa_offset_applied.*\).*sentinel-2-c1-l2a"):
        st.item_from_files(landsat_files, "2021-08-01", "sentinel-2-l2a", "earth-search")
    with pytest.raises(ValueError, match=r"unknown provider 'usgs'.*earth-search"):
        st.item_from_files(landsat_files, "2021-08-01", "landsat-c2-l2", "usgs")
    with pytest.raises(ValueError, match=r"platform 'landsat-3' .*landsat-c2-l2.*'landsat-4'"):
        _ls(landsat_files, platform="landsat-3")
    s2 = {b: landsat_files[b] for b in OPTICAL_FEATURES} | {"scl": landsat_files["qa_pixel"]}
    with pytest.raises(ValueError, match=r"pass properties=\{'s2:processing_baseline': '05.00'\}"):
        st.item_from_files(s2, "2021-08-01")


def test_serve_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"collection file '.*nope.json' does not exist"):
        with st.serve(str(tmp_path / "nope.json"), []):
            pass
    with pytest.raises(TypeError, match=r"cannot serve a int"):
        with st.serve(st.make_collection([], "x"), [3]):
            pass
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RuntimeError, match=r"rustac serve exited"):
        with st.serve(str(bad), []):
            pass

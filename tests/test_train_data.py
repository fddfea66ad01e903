"""Training data: patches cut around point labels, and the reference study's patch-file layout.

The cube is a closed-form ramp, ``value = 100000 t + 10000 band + 100 row + col``, so every
patch value says which scene, band and pixel it came from.
"""

from __future__ import annotations

import os
import re
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

gpd = pytest.importorskip("geopandas")
rasterio = pytest.importorskip("rasterio")
pytest.importorskip("rioxarray")  # registers .rio
from pyproj import Transformer  # noqa: E402

from xfacies import catalog  # noqa: E402
from xfacies.train import data as td  # noqa: E402
from xfacies.train import reference_patches as rp  # noqa: E402

NT, NY, NX = 3, 40, 50
BANDS = list(catalog.FEATURE_SETS[4])
NB = len(BANDS)
DATES = np.array(["2021-07-01T10:30", "2021-08-15T10:31", "2021-09-20T10:29"], dtype="datetime64[ns]")
X0, Y0, RES = 630000.0, 5190000.0, 10.0  # top-left corner, EPSG:32632
TO_LONLAT = Transformer.from_crs(32632, 4326, always_xy=True)


def ramp(t, b, r, c):
    return 100000.0 * t + 10000.0 * b + 100.0 * r + c


def _ramp_block(block_info=None, record=None):
    info = block_info[None]
    if record is not None:
        record.append(tuple(info["chunk-location"]))
    idx = np.ix_(*(np.arange(a, b) for a, b in info["array-location"]))
    return ramp(*idx).astype(np.float32)


def ramp_cube(chunks=None, record=None) -> xr.DataArray:
    """The ramp as a (time, band, y, x) cube in EPSG:32632; dask-backed when chunks are given."""
    shape = (NT, NB, NY, NX)
    if chunks is None:
        data = np.fromfunction(ramp, shape).astype(np.float32)
    else:
        import dask.array as da
        from dask.array.core import normalize_chunks

        data = da.map_blocks(_ramp_block, record=record, chunks=normalize_chunks(chunks, shape),
                             dtype=np.float32, meta=np.empty((0,) * 4, np.float32))
    coords = {"time": DATES, "band": BANDS, "y": Y0 - RES * (np.arange(NY) + 0.5),
              "x": X0 + RES * (np.arange(NX) + 0.5)}
    return xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords).rio.write_crs("EPSG:32632")


def lonlat_points(t, r, c, *, seed=0, **columns) -> "gpd.GeoDataFrame":
    """Points inside pixels (row r, col c) of scene t, given in EPSG:4326."""
    rng = np.random.default_rng(seed)
    t, r, c = (np.asarray(v) for v in (t, r, c))
    x = X0 + RES * (c + 0.5) + rng.uniform(-4, 4, c.size)
    y = Y0 - RES * (r + 0.5) + rng.uniform(-4, 4, r.size)
    lon, lat = TO_LONLAT.transform(x, y)
    names = catalog.class_names()
    cols = {"class": [names[i % len(names)] for i in range(t.size)],
            "date": [str(DATES[i])[:10] for i in t], "glacier": [f"g{i // 10}" for i in r]}
    cols.update(columns)
    return gpd.GeoDataFrame(cols, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def expected_patches(t, r, c, p) -> np.ndarray:
    """The closed-form patches, NaN beyond the scene."""
    h = p // 2
    off = np.arange(-h, h + 1)
    rr = np.asarray(r)[:, None, None, None] + off[None, :, None, None]
    cc = np.asarray(c)[:, None, None, None] + off[None, None, :, None]
    out = ramp(np.asarray(t)[:, None, None, None], np.arange(NB)[None, None, None, :], rr, cc)
    out = np.broadcast_to(out, (len(t), p, p, NB)).astype(np.float32).copy()
    out[np.broadcast_to((rr < 0) | (rr >= NY) | (cc < 0) | (cc >= NX), out.shape)] = np.nan
    return out


def sample_pixels(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, NT, n), rng.integers(0, NY, n), rng.integers(0, NX, n)


# --------------------------------------------------------------------------- patches_from_points
def test_points_in_lonlat_land_on_their_pixels_of_a_utm_cube():
    t, r, c = sample_pixels(80)
    pts = lonlat_points(t, r, c)
    pts.index = pd.Index([f"p{i}" for i in range(len(pts))])
    ds = td.patches_from_points(ramp_cube(), pts, patch_size=9, glacier_column="glacier")
    assert ds.patches.dims == ("sample", "y", "x", "band") and ds.patches.dtype == np.float32
    np.testing.assert_array_equal(ds.patches.values, expected_patches(t, r, c, 9))
    assert ds["band"].values.tolist() == BANDS and ds["y"].values.tolist() == list(range(-4, 5))
    assert ds["class"].dtype == np.int8
    assert ds["class_name"].values.tolist() == [catalog.CLASSES[i].name for i in ds["class"].values]
    np.testing.assert_array_equal(ds["date"].values, DATES[t].astype("datetime64[D]").astype("datetime64[ns]"))
    np.testing.assert_array_equal(ds["center_x"].values, X0 + RES * (c + 0.5))
    np.testing.assert_array_equal(ds["center_y"].values, Y0 - RES * (r + 0.5))
    assert set(ds["epsg"].values) == {32632}
    assert ds["label_id"].values.tolist() == list(pts.index)
    assert ds["point"].values.tolist() == list(range(len(pts)))
    assert ds["glacier"].values.tolist() == pts["glacier"].tolist()
    assert ds.attrs["features"] == BANDS and ds.attrs["patch_size"] == 9 and ds.attrs["dropped"] == "[]"


@pytest.mark.parametrize("chunks", [
    ((1, 2), (3, 8), (7, 13, 20), (9, 1, 40)),
    ((3,), (11,), (1,) * NY, (50,)),
    ((2, 1), (5, 6), (40,), (16, 17, 17)),
])
def test_a_dask_cube_with_odd_chunks_gives_the_numpy_patches(chunks):
    t, r, c = sample_pixels(60, seed=2)
    pts = lonlat_points(t, r, c)
    ref = td.patches_from_points(ramp_cube(), pts, patch_size=11)
    lazy = td.patches_from_points(ramp_cube(chunks), pts, patch_size=11)
    xr.testing.assert_identical(lazy, ref)


@pytest.mark.parametrize("limit", [None, 1])
def test_only_the_chunks_under_the_windows_are_computed(limit, monkeypatch):
    """Each touched chunk once, untouched chunks never; also when the gather is split into one
    compute per chunk (limit=1 byte of pieces per compute)."""
    if limit is not None:
        monkeypatch.setattr(td, "_MAX_PIECES_BYTES", limit)
    chunks = ((1, 1, 1), (4, 7), (10, 10, 10, 10), (10, 10, 10, 10, 10))
    record: list[tuple[int, ...]] = []
    lock = threading.Lock()

    class Record(list):
        def append(self, item):
            with lock:
                record.append(item)

    t = np.array([0, 0, 2, 2, 1])
    r = np.array([5, 15, 39, 20, 0])
    c = np.array([5, 5, 49, 25, 9])
    ds = td.patches_from_points(ramp_cube(chunks, Record()), lonlat_points(t, r, c), patch_size=7)
    np.testing.assert_array_equal(ds.patches.values, expected_patches(t, r, c, 7))
    expected = set()
    for ti, ri, ci in zip(t, r, c):
        for yc in {max(ri - 3, 0) // 10, min(ri + 3, NY - 1) // 10}:
            for xc in {max(ci - 3, 0) // 10, min(ci + 3, NX - 1) // 10}:
                expected |= {(ti, 0, yc, xc), (ti, 1, yc, xc)}
    assert set(record) == expected
    assert len(record) == len(expected), "a chunk was computed more than once"
    assert len(expected) < 3 * 2 * 4 * 5 / 4


def test_a_cube_read_back_from_zarr_keeps_its_crs(tmp_path):
    t, r, c = sample_pixels(20, seed=6)
    pts = lonlat_points(t, r, c)
    ramp_cube().to_dataset(name="features").chunk(y=16, x=16).to_zarr(tmp_path / "cube.zarr", zarr_format=2)
    stored = xr.open_zarr(tmp_path / "cube.zarr")  # spatial_ref comes back as a data variable
    ds = td.patches_from_points(stored, pts, patch_size=5)
    np.testing.assert_array_equal(ds.patches.values, expected_patches(t, r, c, 5))


def test_windows_reaching_past_the_scene_edge_are_nan_there():
    t, r, c = np.array([0, 1]), np.array([0, NY - 1]), np.array([0, NX - 2])
    ds = td.patches_from_points(ramp_cube(), lonlat_points(t, r, c), patch_size=5)
    p = ds.patches.values
    assert np.isnan(p[0, :2]).all() and np.isnan(p[0, :, :2]).all()
    assert not np.isnan(p[0, 2:, 2:]).any()
    assert p[0, 2, 2, 3] == ramp(0, 3, 0, 0) and p[0, 4, 4, 0] == ramp(0, 0, 2, 2)
    assert np.isnan(p[1, 3:]).all() and np.isnan(p[1, :, 4]).all() and not np.isnan(p[1, :3, :4]).any()


def test_each_drop_reason_is_counted_in_the_warning_and_listed():
    cube = ramp_cube()
    cube.values[1, 4, 20, 20] = np.nan  # nodata in one band at two points' pixel
    cube.values[2, 0, 30, 30] = np.nan
    good = lonlat_points([0, 1, 2, 0, 1], [10, 11, 12, 13, 14], [10, 11, 12, 13, 14])
    nodata = lonlat_points([1, 1, 2], [20, 20, 30], [20, 20, 30])
    outside = lonlat_points([0, 0], [-3, 10], [10, NX + 5])
    no_scene = lonlat_points([0, 0, 0], [5, 6, 7], [5, 6, 7], date=["2021-07-02", "2020-07-01", "2021-08-14"])
    no_date = lonlat_points([0], [5], [5], date=["sometime"])
    no_geom = lonlat_points([0], [5], [5])
    no_geom.geometry = [None]
    pts = pd.concat([good, nodata, outside, no_scene, no_date, no_geom], ignore_index=True)
    with pytest.warns(td.DroppedPointsWarning) as rec:
        ds = td.patches_from_points(cube, pts, patch_size=3)
    msg = str(rec[0].message)
    assert "dropped 10 of 15 points" in msg
    for phrase in ("1 without a point geometry", "2 outside the cube", "1 without a readable date",
                   "3 on dates the cube lacks (same calendar day", "3 on nodata"):
        assert phrase in msg, msg
    assert ds.sizes["sample"] == 5 and ds["label_id"].values.tolist() == ["0", "1", "2", "3", "4"]
    assert ds["point"].values.tolist() == [0, 1, 2, 3, 4]
    table = td.dropped_points(ds)
    assert table.set_index("label_id")["reason"].to_dict() == {
        "5": "nodata", "6": "nodata", "7": "nodata", "8": "outside", "9": "outside", "10": "no_scene",
        "11": "no_scene", "12": "no_scene", "13": "no_date", "14": "no_geometry"}
    assert table["point"].tolist() == list(range(5, 15))
    row = table.set_index("label_id").loc["10"]
    assert row["date"] == "2021-07-02" and 5 < row["x"] < 15 and 40 < row["y"] < 50  # lon/lat, as given


def test_without_drops_nothing_is_warned():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = td.patches_from_points(ramp_cube(), lonlat_points([0], [5], [5]), patch_size=3)
    assert td.dropped_points(ds).empty


def test_time_tolerance_takes_the_nearest_scene_within_it():
    pts = lonlat_points([1, 1], [5, 6], [5, 6], date=["2021-08-17", "2021-08-13T23:00:00-02:00"])
    ds = td.patches_from_points(ramp_cube(), pts, patch_size=3, time_tolerance=2)
    assert ds.sizes["sample"] == 2 and (ds.patches.values[:, 1, 1, 0] == ramp(1, 0, np.array([5, 6]),
                                                                               np.array([5, 6]))).all()
    assert (ds["date"].values == np.datetime64("2021-08-15", "ns")).all()
    # the zoned date is 2021-08-14 in UTC: one day off, kept; 2021-08-17 is two days off
    with pytest.warns(td.DroppedPointsWarning, match=r"1 on dates the cube lacks \(within 1 day"):
        one = td.patches_from_points(ramp_cube(), pts, patch_size=3, time_tolerance="1D")
    assert one["label_id"].values.tolist() == ["1"] and one["point"].values.tolist() == [1]


def test_classes_are_names_or_ids_and_unknown_ones_are_refused():
    pts = lonlat_points([0] * 4, [5] * 4, [5] * 4)
    pts["class"] = ["Refrozen_like", "SNOW", 7, 3.0]
    ds = td.patches_from_points(ramp_cube(), pts, patch_size=3)
    assert ds["class"].values.tolist() == [5, 1, 7, 3]
    pts["class"] = ["slush", "ice", 9, None]
    with pytest.raises(ValueError, match=r"3 unknown class value\(s\).*'slush'.*refrozen-like"):
        td.patches_from_points(ramp_cube(), pts, patch_size=3)


def test_folds_keep_glaciers_together_and_do_not_depend_on_the_cube():
    t, r, c = sample_pixels(200, seed=3)
    pts = lonlat_points(t, r, c)
    ds = td.patches_from_points(ramp_cube(), pts, patch_size=3, glacier_column="glacier", folds=3)
    per_glacier = pd.Series(ds["fold"].values).groupby(ds["glacier"].values).nunique()
    assert (per_glacier == 1).all() and set(ds["fold"].values) == {0, 1, 2}
    small = ramp_cube().isel(x=slice(0, 30))  # a smaller cube drops points but keeps their folds
    with pytest.warns(td.DroppedPointsWarning):
        part = td.patches_from_points(small, pts, patch_size=3, glacier_column="glacier", folds=3)
    folds = dict(zip(ds["label_id"].values, ds["fold"].values))
    assert all(folds[k] == f for k, f in zip(part["label_id"].values, part["fold"].values))
    pts["my_fold"] = np.arange(len(pts)) % 4
    given = td.patches_from_points(ramp_cube(), pts, patch_size=3, fold_column="my_fold")
    assert given["fold"].values.tolist() == pts["my_fold"].tolist()
    single = td.patches_from_points(ramp_cube(), pts, patch_size=3, folds=5, seed=1)
    assert np.bincount(single["fold"].values).tolist() == [40] * 5


def test_bad_inputs_get_clear_errors():
    pts = lonlat_points([0], [5], [5])
    with pytest.raises(ValueError, match="odd"):
        td.patches_from_points(ramp_cube(), pts, patch_size=4)
    with pytest.raises(ValueError, match="points have no CRS"):
        td.patches_from_points(ramp_cube(), pts.set_crs(None, allow_override=True), patch_size=3)
    with pytest.raises(ValueError, match="glacier_column='name' is not a column"):
        td.patches_from_points(ramp_cube(), pts, glacier_column="name")
    with pytest.raises(ValueError, match="Point geometries"):
        td.patches_from_points(ramp_cube(), pts.set_geometry(pts.to_crs(32632).buffer(5.0).to_crs(4326)), patch_size=3)
    with pytest.raises(ValueError, match="give the points' dates"):
        td.patches_from_points(ramp_cube(), pts, time_column=None)


def test_a_synthetic_scene_without_time_dimension():
    from xfacies import synthetic

    scene = synthetic.scene("2021-08-15", size=96, seed=3, chunks=40)
    ys, xs = np.array([10, 50, 90]), np.array([20, 60, 5])
    pts = gpd.GeoDataFrame({"class": ["ice", "snow", "firn"]},
                           geometry=gpd.points_from_xy(scene.x.values[xs], scene.y.values[ys]), crs=32632)
    ds = td.patches_from_points(scene.features, pts, patch_size=33, time_column=None)
    assert ds.patches.shape == (3, 33, 33, 11)
    np.testing.assert_array_equal(ds.patches.values[:, 16, 16, :],
                                  scene.features.values[:, ys, xs].T)
    assert (ds["date"].values == np.datetime64("2021-08-15", "ns")).all()


# --------------------------------------------------------------------------- the reference layout
def random_patches(n, seed=0) -> xr.Dataset:
    """n reference-layout samples with random values (some NaN) and metadata."""
    rng = np.random.default_rng(seed)
    p = rp.REFERENCE_PATCH_SIZE
    vals = rng.normal(0.3, 0.2, (n, p, p, NB)).astype(np.float32)
    vals[rng.random(vals.shape) < 0.01] = np.nan
    cls = rng.integers(0, len(catalog.CLASSES), n)
    day = np.datetime64("2019-07-01") + rng.integers(0, 90, n).astype("timedelta64[D]")
    return td.patch_set(
        vals, BANDS, cls, np.array([f"glacier{g}" for g in rng.integers(0, 5, n)]), day,
        rng.integers(0, 6, n), np.array([str(i) for i in range(n)]),
        X0 + RES * rng.integers(0, 1000, n) + 5, Y0 - RES * rng.integers(0, 1000, n) - 5,
        np.full(n, 32632, np.int32), {"features": BANDS, "patch_size": p})


def _by_number(ds: xr.Dataset) -> xr.Dataset:
    """Reference reads are sorted by file name; put them back in sample order (the `...` field)."""
    number = [int(rp.parse_reference_name(s + ".tif")["extra"][0]) for s in ds["label_id"].values]
    return ds.isel(sample=np.argsort(number))


def assert_same_samples(read: xr.Dataset, orig: xr.Dataset) -> None:
    read = _by_number(read)
    np.testing.assert_array_equal(read.patches.values, orig.patches.values)
    for c in ("class", "class_name", "glacier", "date", "fold", "center_x", "center_y", "epsg"):
        np.testing.assert_array_equal(read[c].values, orig[c].values, err_msg=c)
    assert read["band"].values.tolist() == BANDS


def test_written_files_follow_the_reference_layout(tmp_path):
    orig = random_patches(12)
    files = rp.write_reference_patches(orig, tmp_path)
    assert len(files) == 12 and sorted(os.listdir(tmp_path)) == sorted(f.name for f in files)
    pattern = re.compile(r"^[0-5]_glacier[0-4]_2019\d{4}_\d+_(" + "|".join(catalog.class_names()) + r")\.tif$")
    assert all(pattern.match(f.name) for f in files), [f.name for f in files]
    with rasterio.open(files[3]) as src:
        assert (src.count, src.width, src.height, src.dtypes[0]) == (11, 33, 33, "float32")
        assert src.crs.to_epsg() == 32632 and src.descriptions == tuple(BANDS)
        assert src.xy(16, 16) == (orig.center_x.values[3], orig.center_y.values[3])
        np.testing.assert_array_equal(src.read(), orig.patches.values[3].transpose(2, 0, 1))


def test_reference_patches_round_trip_values_and_metadata(tmp_path):
    orig = random_patches(40)
    rp.write_reference_patches(orig, tmp_path / "patches")
    lazy = rp.read_reference_patches(tmp_path / "patches", cache=False)
    assert lazy.patches.chunks is not None  # nothing read yet
    assert_same_samples(lazy, orig)
    cached = rp.read_reference_patches(tmp_path / "patches", cache_dir=tmp_path / "cache")
    xr.testing.assert_identical(cached.load().drop_attrs(), lazy.load().drop_attrs())


def test_patches_from_points_survive_the_reference_layout(tmp_path):
    """Patches cut from a cube (NaN beyond its edge) written and read back are the same."""
    t, r, c = sample_pixels(30, seed=5)
    cut = td.patches_from_points(ramp_cube(), lonlat_points(t, r, c), glacier_column="glacier")
    rp.write_reference_patches(cut, tmp_path)
    back = rp.read_reference_patches(tmp_path, cache=False)
    assert_same_samples(back, cut)


def _sabotage(folder):
    """Overwrite every tif with garbage of the same size, keeping its modification time."""
    for f in folder.iterdir():
        st = f.stat()
        f.write_bytes(b"\xff" * st.st_size)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_the_cache_is_written_once_and_the_second_read_does_not_touch_the_files(tmp_path, monkeypatch):
    n = 600
    orig = random_patches(n, seed=1)
    folder, cache = tmp_path / "patches", tmp_path / "cache"
    rp.write_reference_patches(orig, folder)
    t0 = time.perf_counter()
    first = rp.read_reference_patches(folder, cache_dir=cache).load()
    t1 = time.perf_counter()
    stores = sorted(p.name for p in cache.iterdir())
    assert len(stores) == 1 and stores[0].endswith(".zarr")
    _sabotage(folder)

    def no_reading(*args, **kwargs):
        raise AssertionError("the patch files were read again")

    monkeypatch.setattr(rp, "_read_batch", no_reading)
    t2 = time.perf_counter()
    second = rp.read_reference_patches(folder, cache_dir=cache).load()
    t3 = time.perf_counter()
    print(f"\nreference patches: first read {n / (t1 - t0):,.0f} patches/s, "
          f"cached read {n / (t3 - t2):,.0f} patches/s")
    xr.testing.assert_identical(second, first)
    assert sorted(p.name for p in cache.iterdir()) == stores
    assert_same_samples(first, orig)
    monkeypatch.undo()
    # a changed folder (one file rewritten) is a new listing: read again, into a second store
    one = random_patches(1, seed=9).assign_coords(fold=("sample", [0]))
    for f in folder.iterdir():
        f.unlink()
    rp.write_reference_patches(one, folder)
    third = rp.read_reference_patches(folder, cache_dir=cache)
    np.testing.assert_array_equal(third.patches.values, one.patches.values)
    assert len(list(cache.iterdir())) == 2


def test_the_default_cache_lives_under_the_xfacies_cache(tmp_path):
    rp.write_reference_patches(random_patches(3), tmp_path / "p")
    ds = rp.read_reference_patches(tmp_path / "p")
    assert ds.attrs["cache"].startswith(os.environ["XFACIES_CACHE"])


@pytest.mark.parametrize("options,fast", [
    ({}, True),
    ({"interleave": "band"}, True),
    ({"compress": "deflate"}, True),
    ({"compress": "deflate", "interleave": "band", "nodata": -9999.0}, True),
    ({"ENDIANNESS": "BIG"}, True),
    ({"compress": "lzw"}, False),  # tifffile needs imagecodecs for LZW: GDAL reads it
    ({"compress": "deflate", "predictor": 3}, False),  # floating-point predictor: imagecodecs; GDAL reads it
    ({"tiled": True, "blockxsize": 16, "blockysize": 16}, True),
    ({"dtype": "int16", "nodata": -1}, True),
])
def test_the_tifffile_reader_agrees_with_gdal(tmp_path, options, fast):
    from rasterio.transform import from_origin

    rng = np.random.default_rng(4)
    options = dict(options)
    dtype = options.pop("dtype", "float32")
    arr = (rng.normal(0, 100, (11, 33, 33))).astype(dtype)
    arr[0, :3, :3] = options.get("nodata", 0)
    path = tmp_path / "0_hef_20190815_1_ice.tif"
    with rasterio.open(path, "w", driver="GTiff", width=33, height=33, count=11, dtype=dtype, crs="EPSG:32633",
                       transform=from_origin(500000.0, 5200000.0, 10.0, 10.0), **options) as dst:
        dst.write(arr)
    assert (rp._read_tiff_fast(str(path)) is not None) == fast
    got = rp._read_tiff_rasterio(str(path))
    patches, cx, cy, epsg = rp._read_batch((str(path),), 11, 33)
    want = np.moveaxis(got[0], 0, -1).astype(np.float32)
    if "nodata" in options:
        want[want == options["nodata"]] = np.nan
        assert np.isnan(patches[0, :3, :3, 0]).all()
    np.testing.assert_array_equal(patches[0], want)
    assert (cx[0], cy[0], epsg[0]) == (500165.0, 5199835.0, 32633)


def _tif(path, count=11, size=33):
    """A patch file without georeferencing (read through GDAL, centre coordinates NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        _write_tif(path, count, size)


def _write_tif(path, count, size):
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=count, dtype="float32") as dst:
        dst.write(np.zeros((count, size, size), np.float32))


def test_layout_errors_name_the_file_and_the_pattern(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        rp.read_reference_patches(tmp_path / "nowhere")
    (tmp_path / "README.txt").write_text("not a patch")
    with pytest.raises(FileNotFoundError, match="holds no .tif"):
        rp.read_reference_patches(tmp_path)
    for name in ("0_hef_20190815_1_ice.tif", "hef_20190815_1_ice.tif", "1_hef_2019-8-15_1_snow.tif",
                 "2_hef_20190815_7_slush.tif"):
        _tif(tmp_path / name)
    with pytest.raises(ValueError) as err:
        rp.read_reference_patches(tmp_path, cache=False)
    msg = str(err.value)
    assert msg.startswith("3 file(s)") and rp.REFERENCE_PATTERN in msg
    assert "hef_20190815_1_ice.tif: not a reference patch name" in msg
    assert "'2019-8-15' is not a date" in msg and "unknown class 'slush'" in msg


@pytest.mark.parametrize("count,size,what", [(6, 33, r"6 band\(s\) of 33 x 33"), (11, 32, r"11 band\(s\) of 32 x 32")])
def test_a_file_of_the_wrong_shape_is_named(tmp_path, count, size, what):
    _tif(tmp_path / "0_hef_20190815_1_ice.tif")
    _tif(tmp_path / "0_hef_20190815_2_snow.tif", count=count, size=size)
    with pytest.raises(ValueError, match=f"0_hef_20190815_2_snow.tif: {what}.*reference layout has 11 bands"):
        rp.read_reference_patches(tmp_path, cache_dir=tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("*.zarr")), "a failed read left a cache behind"


def test_writing_needs_the_reference_bands_and_glacier_names(tmp_path):
    ds = random_patches(2)
    with pytest.raises(ValueError, match="11 bands"):
        rp.write_reference_patches(ds.isel(band=slice(0, 6)), tmp_path)
    with pytest.raises(ValueError, match="contain no '_'"):
        rp.write_reference_patches(ds.assign_coords(glacier=("sample", ["a_b", "c"])), tmp_path)


def test_reference_names_parse_to_their_fields():
    f = rp.parse_reference_name("12_RGI60-11.00897_2019-08-15_a_b_4.tiff")
    assert f == {"fold": 12, "glacier": "RGI60-11.00897", "date": np.datetime64("2019-08-15"),
                 "class": 4, "class_name": "shadow", "extra": ["a", "b"]}
    assert rp.reference_name(1, "hef", np.datetime64("2019-08-15T10:00"), "water") == "1_hef_20190815_water.tif"


def test_large_patch_reads_show_progress_unless_quiet(monkeypatch, capsys):
    """A read of several compute groups shows a bar counting the chunks read (stderr), the same
    patches either way; ``xfacies.set_options(progress=False)`` and ``XFACIES_PROGRESS=0`` silence it."""
    from xfacies import options

    monkeypatch.setattr(td, "_MAX_PIECES_BYTES", 1)  # one compute per chunk: a "large" read
    chunks = ((1, 1, 1), (11,), (10, 10, 10, 10), (25, 25))
    t, r, c = np.array([0, 1, 2]), np.array([5, 15, 35]), np.array([5, 30, 45])
    pts = lonlat_points(t, r, c)
    ds = td.patches_from_points(ramp_cube(chunks), pts, patch_size=5)
    err = capsys.readouterr().err
    assert "patches: chunks read" in err and "3/3" in err
    np.testing.assert_array_equal(ds.patches.values, expected_patches(t, r, c, 5))
    with options.set_options(progress=False):
        td.patches_from_points(ramp_cube(chunks), pts, patch_size=5)
    assert "chunks read" not in capsys.readouterr().err
    monkeypatch.setenv("XFACIES_PROGRESS", "0")
    td.patches_from_points(ramp_cube(chunks), pts, patch_size=5)
    assert "chunks read" not in capsys.readouterr().err
    monkeypatch.setenv("XFACIES_PROGRESS", "maybe")
    with pytest.raises(ValueError, match="XFACIES_PROGRESS"):
        options.get("progress")

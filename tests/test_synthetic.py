"""The synthetic glacier generator: determinism, chunk independence, physics."""

from __future__ import annotations


import numpy as np
import pytest
import xarray as xr

from xfacies import synthetic
from xfacies.catalog import CLASSES, FEATURE_SETS, NODATA, OPTICAL_FEATURES

ID = {c.name: c.id for c in CLASSES}


@pytest.fixture(scope="module")
def scene512() -> xr.Dataset:
    return synthetic.scene("2021-09-10", size=512, seed=0)


@pytest.fixture(scope="module")
def clear_season() -> xr.Dataset:
    return synthetic.season(6, size=256, seed=0, clouds=False)


def test_same_seed_same_scene_other_seed_differs():
    a = synthetic.scene(size=96, seed=1)
    b = synthetic.scene(size=96, seed=1)
    xr.testing.assert_identical(a, b)
    c = synthetic.scene(size=96, seed=2)
    assert not np.array_equal(a.dem.values, c.dem.values)
    assert not np.array_equal(a.features.values, c.features.values)


@pytest.mark.parametrize("chunks", [(64, 50), 90])
def test_lazy_scene_equals_eager_whatever_the_chunks(chunks):
    eager = synthetic.scene("2021-09-25", size=(150, 170), seed=5)
    lazy = synthetic.scene("2021-09-25", size=(150, 170), seed=5, chunks=chunks)
    assert all(lazy[v].chunks is not None for v in lazy.data_vars)
    xr.testing.assert_identical(eager, lazy.compute())


def test_lazy_season_equals_eager():
    dates = ["2021-06-20", "2021-08-30"]
    eager = synthetic.season(dates, size=(120, 140), seed=3)
    lazy = synthetic.season(dates, size=(120, 140), seed=3, chunks=(50, 70))
    xr.testing.assert_identical(eager, lazy.compute())


def test_season_slices_are_scenes():
    se = synthetic.season(["2021-07-01", "2021-08-20"], size=96, seed=4)
    sc = synthetic.scene("2021-08-20", size=96, seed=4)
    one = se.isel(time=1)
    for v in ("features", "truth", "dem", "glacier"):
        np.testing.assert_array_equal(one[v].values, sc[v].values)
    assert float(one.sun_elevation) == float(sc.sun_elevation)


def test_dims_dtypes_names_and_crs(scene512):
    ds = scene512
    assert ds.features.dims == ("band", "y", "x") and ds.features.dtype == np.float32
    assert tuple(ds.band.values) == FEATURE_SETS[4]
    assert ds.dem.dtype == np.float32 and ds.glacier.dtype == np.int32 and ds.truth.dtype == np.int8
    assert ds.rio.crs.to_epsg() == 32632
    assert float(ds.x[1] - ds.x[0]) == 10.0 and float(ds.y[1] - ds.y[0]) == -10.0
    assert float(ds.x[0]) == 630005.0 and float(ds.y[0]) == 5189995.0
    assert ds.truth.attrs["flag_values"][0] == NODATA
    assert ds.attrs["seed"] == 0 and ds.attrs["generator_version"] == synthetic.GENERATOR_VERSION
    refl = ds.features.sel(band=list(OPTICAL_FEATURES)).values
    assert refl.min() >= 0 and refl.max() <= 1


def test_outlines_default_count_and_columns():
    gdf = synthetic.outlines(512, seed=0)
    assert len(gdf) >= 3
    assert list(gdf.columns) == ["rgi_id", "name", "area_km2", "zmin", "zmax", "geometry"]
    assert gdf.rgi_id.tolist()[:2] == ["SYN60-00.00001", "SYN60-00.00002"]
    assert (gdf.geom_type == "Polygon").all() and gdf.is_valid.all()
    assert len(synthetic.outlines((256, 1700), seed=0)) == 10  # scales with the width
    assert len(synthetic.outlines(512, seed=0, n_glaciers=5)) == 5


def test_glacier_raster_matches_polygons(scene512):
    gdf = synthetic.outlines(512, seed=0)
    gl = scene512.glacier.values
    assert set(np.unique(gl)) == set(range(len(gdf) + 1))
    for k, row in enumerate(gdf.itertuples(), start=1):
        raster_km2 = (gl == k).sum() * 100.0 / 1e6
        assert raster_km2 == pytest.approx(row.area_km2, rel=0.02)
        dem_k = scene512.dem.values[gl == k]
        assert dem_k.min() == np.float32(row.zmin) and dem_k.max() == np.float32(row.zmax)
    # rasterised independently with shapely at the pixel centres
    import shapely

    xx, yy = np.meshgrid(scene512.x.values, scene512.y.values)
    inside = shapely.contains_xy(gdf.geometry.iloc[1], xx, yy)
    np.testing.assert_array_equal(inside, gl == 2)


def test_terrain_is_alpine(scene512):
    ds = scene512
    slope = ds.features.sel(band="slope").values
    gl = ds.glacier.values > 0
    assert 5 < np.median(slope[gl]) < 25
    walls = (~gl) & (slope > 15)
    assert 25 < np.median(slope[walls]) < 45
    gdf = synthetic.outlines(512, seed=0)
    assert 3150 < gdf.zmax.max() < 3700 and 2250 < gdf.zmin.min() < 2550
    # glaciers lie in valleys: their edges are lower than the terrain 20 px beside them
    dem = ds.dem.values
    rows = np.flatnonzero(gl.any(axis=1))[50:300:25]
    for r in rows:
        cols = np.flatnonzero(gl[r])
        assert dem[r, cols].mean() < dem[r, max(cols.min() - 20, 0)]
        assert dem[r, cols].mean() < dem[r, min(cols.max() + 20, 511)]


def test_feature_normalisations(scene512):
    f = scene512.features
    gl = scene512.glacier.values > 0
    elev = f.sel(band="elevation").values
    assert elev[gl].min() == 0.0 and elev[gl].max() == 1.0
    prox = f.sel(band="proximity").values
    assert prox.min() >= 0 and prox.max() == 1.0
    shadow = f.sel(band="shadow_mask").values
    assert set(np.unique(shadow)) <= {0.0, 1.0}
    hs = f.sel(band="hillshade").values
    assert hs.min() >= 0 and hs.max() <= 1


def test_truth_follows_snowline_and_firnline(clear_season):
    ds = clear_season
    dem = ds.dem.values
    for t in range(ds.sizes["time"]):
        truth = ds.truth.values[t]
        sla = float(ds.snowline_altitude[t])
        fl = float(ds.firnline_altitude[t])
        assert not np.any((truth == ID["snow"]) & (dem < sla - 100))
        assert not np.any((truth == ID["firn"]) & (dem < fl - 100))
        assert not np.any((truth == ID["ice"]) & (dem > max(sla, fl) + 100))
        assert np.all((truth == NODATA) == (ds.glacier.values == 0))
    # on the glacier pixels that are sunlit on every date, snow only ever shrinks
    always_lit = (ds.glacier.values > 0) & (ds.truth.values != ID["shadow"]).all(axis=0)
    snow = np.array([(ds.truth.values[t][always_lit] == ID["snow"]).mean() for t in range(ds.sizes["time"])])
    assert np.all(np.diff(snow) <= 0), snow
    assert snow[0] > 0.45 and snow[-1] < 0.1 and snow[2] > snow[3] > snow[4]
    assert np.all(np.diff(ds.snowline_altitude.values) >= 0)


def test_debris_on_the_tongues(scene512):
    truth = scene512.truth.values
    gl = scene512.glacier.values
    for k in np.unique(gl[gl > 0]):
        rows = np.flatnonzero((gl == k).any(axis=1))  # tongue = northern (top) rows
        n = rows.size
        top = truth[rows[: n // 10]][gl[rows[: n // 10]] == k]
        head = truth[rows[-n // 3 :]][gl[rows[-n // 3 :]] == k]
        assert (top == ID["debris"]).mean() > 0.5
        assert (head == ID["debris"]).mean() == 0


def test_shadows_face_away_from_the_sun(scene512):
    f = scene512.features
    lit = f.sel(band="shadow_mask").values == 1
    hs = f.sel(band="hillshade").values
    assert 0.001 < (~lit).mean() < 0.3
    assert hs[~lit].mean() < hs[lit].mean() - 0.15
    truth = scene512.truth.values
    assert np.all(truth[(~lit) & (scene512.glacier.values > 0) & (truth != ID["cloud"])] == ID["shadow"])


def test_clouds_vary_by_date_and_some_dates_are_clear():
    ds = synthetic.season(6, size=128, seed=0)
    cf = ds.cloud_fraction.values
    assert (cf == 0).any() and (cf > 0).any()
    assert np.all(cf <= 0.3)
    clear = int(np.flatnonzero(cf == 0)[0])
    assert not (ds.truth.values[clear] == ID["cloud"]).any()
    assert np.allclose(synthetic.season(6, size=128, seed=0, clouds=False).cloud_fraction, 0)
    big = synthetic.scene("2021-08-15", size=512, seed=0)
    share = (big.truth.values == ID["cloud"]).sum() / (big.glacier.values > 0).sum()
    assert float(big.cloud_fraction) > 0 and share > 0


def test_spectra_are_plausible(scene512):
    r = scene512.features.sel(band=list(OPTICAL_FEATURES))
    truth = scene512.truth.values
    lit = scene512.features.sel(band="shadow_mask").values == 1
    def mean(cls, band):
        return float(r.sel(band=band).values[(truth == ID[cls]) & lit].mean())
    assert mean("ice", "swir1") < 0.08 and 0.2 < mean("ice", "blue") < 0.6
    assert mean("firn", "blue") > mean("ice", "blue")
    assert mean("debris", "swir1") > mean("ice", "swir1")
    if (truth == ID["water"]).any():
        assert mean("water", "nir") < 0.1


def test_sun_position_is_alpine():
    ds = synthetic.season(["2021-06-21", "2021-08-15", "2021-09-30"], size=64)
    el, az = ds.sun_elevation.values, ds.sun_azimuth.values
    assert 60 < el[0] < 68 and 47 < el[1] < 56 and 33 < el[2] < 42
    assert np.all((az > 120) & (az < 165))
    assert ds.time.dtype == np.dtype("datetime64[ns]")


def test_large_lazy_scene_builds_without_computing():
    """A 10,000 x 10,000 scene (400 MB per float32 layer) is built lazily: no dask task runs and
    Python allocates next to nothing while building it (tracemalloc traces numpy's buffers)."""
    import tracemalloc

    from dask.callbacks import Callback

    ran = []
    tracemalloc.start()
    try:
        with Callback(pretask=lambda key, dsk, state: ran.append(key)):
            ds = synthetic.scene(size=10_000, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not ran, f"{len(ran)} dask tasks ran while building the scene"
    assert peak < 50e6, f"building the lazy scene allocated {peak / 1e6:.0f} MB"
    import dask.array as da

    for v in ds.data_vars:
        assert isinstance(ds[v].data, da.Array)
    assert ds.features.data.chunksize[1:] == (1024, 1024)
    assert ds.sizes["y"] == ds.sizes["x"] == 10_000


def test_bad_arguments_raise_helpful_errors():
    with pytest.raises(ValueError, match="size"):
        synthetic.scene(size=4)
    with pytest.raises(ValueError, match="date"):
        synthetic.scene("not a date", size=32)
    with pytest.raises(ValueError, match="dates"):
        synthetic.season(0, size=32)


def test_cloud_quantile_table_matches_the_cloud_field():
    """The thresholds in synthetic.acquisition.CLOUD_QUANTILES give the cloud cover they stand for: on cloud fields
    of several dates (fBm, 3 octaves, scale 96 px), the share of pixels above the threshold for
    cover c is c, to the sampling spread of a 1024 x 1024 scene."""
    from xfacies.synthetic.acquisition import CLOUD_QUANTILES
    from xfacies.synthetic.noise import S_CLOUD, fbm

    rows = np.arange(1024)
    covers = np.linspace(0, 0.5, CLOUD_QUANTILES.size)
    shares = np.mean([[np.mean(field > q) for q in CLOUD_QUANTILES]
                      for field in (fbm(seed, S_CLOUD * 1000 + day, rows, rows, 96.0, 3)
                                    for seed, day in ((7, 150), (3, 200), (11, 230), (5, 260)))], axis=0)
    np.testing.assert_allclose(shares, covers, atol=0.03)

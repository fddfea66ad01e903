"""Per-glacier fractions vs a slow numpy loop; coverage, NaN, AAR proxy."""

from __future__ import annotations

import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import shapely
import shapely.affinity
import xarray as xr
from shapely.geometry import box

from xfacies.catalog import CLASSES, NODATA, class_flag_attrs
from xfacies.outlines import rasterize
from xfacies.products import aar_proxy, fractions

CRS = "EPSG:32632"
X0, Y0, RES = 600_000.0, 5_100_000.0, 10.0
NY, NX, NT = 29, 41, 4
CLOUD = [c.id for c in CLASSES if c.name == "cloud"][0]
KEPT = [c for c in CLASSES if c.name != "cloud"]


def class_map(seed: int = 0, nt: int = NT) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    values = rng.integers(NODATA, len(CLASSES), size=(nt, NY, NX)).astype("int8")
    x = X0 + RES / 2 + RES * np.arange(NX)
    y = Y0 - RES / 2 - RES * np.arange(NY)
    time = pd.date_range("2024-06-01", periods=nt, freq="16D")
    da = xr.DataArray(values, dims=("time", "y", "x"), coords={"time": time, "y": y, "x": x},
                      name="classes", attrs=class_flag_attrs())
    return da.rio.write_crs(CRS)


def outlines() -> gpd.GeoDataFrame:
    """Three disjoint glaciers (one a multipolygon) inside the grid.

    Shifted off the 5 m lattice so that no pixel centre lies exactly on an edge
    (where GDAL and shapely legitimately disagree).
    """
    geoms = [
        box(X0 + 15, Y0 - 140, X0 + 180, Y0 - 12),
        shapely.Polygon([(X0 + 200, Y0 - 20), (X0 + 400, Y0 - 60), (X0 + 260, Y0 - 270)]),
        shapely.MultiPolygon([box(X0 + 20, Y0 - 280, X0 + 90, Y0 - 200),
                              box(X0 + 120, Y0 - 285, X0 + 190, Y0 - 220)]),
    ]
    geoms = [shapely.affinity.translate(g, 1.3, -2.7) for g in geoms]
    return gpd.GeoDataFrame({"RGIId": ["RGI60-11.00001", "RGI60-11.00002", "RGI60-11.00003"]},
                            geometry=geoms, crs=CRS)


def slow_reference(classes: xr.DataArray, gdf: gpd.GeoDataFrame):
    """Loop over glaciers/dates/classes with point-in-polygon masks on pixel centres."""
    xx, yy = np.meshgrid(classes.x.values, classes.y.values)
    vals = classes.values
    G, T, K = len(gdf), vals.shape[0], len(KEPT)
    frac = np.full((T, G, K), np.nan)
    n_valid = np.zeros((T, G), dtype=np.int64)
    coverage = np.zeros((T, G))
    npix = np.zeros(G)
    for g, geom in enumerate(gdf.geometry):
        inside = shapely.contains_xy(geom, xx, yy)
        npix[g] = inside.sum()
        for t in range(T):
            v = vals[t][inside]
            observed = (v != NODATA) & (v != CLOUD)
            n_valid[t, g] = observed.sum()
            coverage[t, g] = observed.sum() / inside.sum()
            if observed.sum():
                for k, c in enumerate(KEPT):
                    frac[t, g, k] = (v == c.id).sum() / observed.sum()
    return frac, n_valid, coverage, npix * RES * RES


def check_against_reference(ds: xr.Dataset, classes: xr.DataArray, gdf: gpd.GeoDataFrame) -> None:
    frac, n_valid, coverage, area = slow_reference(classes, gdf)
    np.testing.assert_allclose(ds["fraction"].values, frac, rtol=1e-6)
    np.testing.assert_array_equal(ds["n_valid"].values, n_valid)
    np.testing.assert_allclose(ds["coverage"].values, coverage, rtol=1e-6)
    np.testing.assert_allclose(ds["area"].values, area)


def test_fractions_eager_match_slow_loop():
    classes, gdf = class_map(), outlines()
    ds = fractions(classes, gdf)
    assert ds["fraction"].dims == ("time", "glacier", "class")
    assert ds["fraction"].dtype == np.float32 and ds["coverage"].dtype == np.float32
    assert ds["n_valid"].dtype == np.int64 and ds["area"].dtype == np.float64
    assert list(ds["glacier"].values) == list(gdf["RGIId"])
    assert list(ds["class"].values) == [c.name for c in KEPT]
    assert "cloud" not in list(ds["class"].values)
    assert ds["fraction"].attrs["units"] == "1" and ds["area"].attrs["units"] == "m2"
    np.testing.assert_array_equal(ds["time"].values, classes["time"].values)
    check_against_reference(ds, classes, gdf)


@pytest.mark.parametrize("chunks", [{"time": 1, "y": 7, "x": 11}, {"time": 3, "y": 29, "x": 5},
                                    {"time": 4, "y": (3, 20, 6), "x": (40, 1)}])
def test_fractions_dask_any_chunking_match_slow_loop(chunks):
    classes, gdf = class_map(1), outlines()
    lazy = fractions(classes.chunk(chunks), gdf)
    assert isinstance(lazy["fraction"].data, dsa.Array)  # lazy until computed
    check_against_reference(lazy.compute(), classes, gdf)


def test_fractions_graph_is_one_bincount_per_chunk():
    classes = class_map(2).chunk({"time": 1, "y": 10, "x": 10})
    ds = fractions(classes, outlines())
    graph = dict(ds["fraction"].data.__dask_graph__())
    names = {k[0] if isinstance(k, tuple) else k for k in graph}
    assert not any("rechunk" in n for n in names)  # no regridding of the map
    assert sum(1 for k in graph if isinstance(k, tuple) and "block_counts" in k[0]) == classes.data.npartitions


def test_fractions_with_precomputed_index_equals_outlines():
    classes, gdf = class_map(3), outlines()
    index = rasterize(gdf, classes)
    xr.testing.assert_identical(fractions(classes, index), fractions(classes, gdf))
    lazy_index = rasterize(gdf, classes.chunk({"y": 8, "x": 8}))
    xr.testing.assert_allclose(fractions(classes.chunk({"y": 5, "x": 9}), lazy_index).compute(),
                               fractions(classes, gdf))


def test_fractions_sum_to_one_where_observed_and_nan_when_fully_clouded():
    classes, gdf = class_map(4), outlines()
    xx, yy = np.meshgrid(classes.x.values, classes.y.values)
    inside = shapely.contains_xy(gdf.geometry.iloc[1], xx, yy)
    v = classes.values.copy()
    v[2][inside] = CLOUD  # glacier 2 fully clouded on date 3
    v[3][inside] = NODATA  # and no data on date 4
    classes = classes.copy(data=v)
    ds = fractions(classes, gdf)
    g = gdf["RGIId"].iloc[1]
    assert ds["fraction"].sel(glacier=g).isel(time=[2, 3]).isnull().all()
    assert (ds["n_valid"].sel(glacier=g).isel(time=[2, 3]) == 0).all()
    assert (ds["coverage"].sel(glacier=g).isel(time=[2, 3]) == 0).all()
    total = ds["fraction"].sum("class", skipna=False)
    observed = ds["n_valid"] > 0
    np.testing.assert_allclose(total.where(observed).values[observed.values], 1.0, rtol=1e-5)
    check_against_reference(ds, classes, gdf)


def test_fractions_2d_map_drops_time_or_keeps_scalar_time():
    classes, gdf = class_map(5), outlines()
    one = classes.isel(time=1)
    ds_scalar = fractions(one, gdf)  # scalar time coordinate -> length-1 time
    assert ds_scalar["fraction"].dims == ("time", "glacier", "class")
    assert ds_scalar.sizes["time"] == 1
    ds_2d = fractions(one.drop_vars("time"), gdf)
    assert ds_2d["fraction"].dims == ("glacier", "class") and "time" not in ds_2d.dims
    full = fractions(classes, gdf)
    np.testing.assert_allclose(ds_2d["fraction"].values, full["fraction"].isel(time=1).values)


def test_area_close_to_polygon_area():
    ds = fractions(class_map(6), outlines())
    for geom, a in zip(outlines().geometry, ds["area"].values):
        assert abs(a - geom.area) <= 0.5 * geom.length * RES


def test_aar_proxy_is_snow_plus_firn():
    ds = fractions(class_map(7), outlines())
    aar = aar_proxy(ds)
    expect = ds["fraction"].sel({"class": "snow"}) + ds["fraction"].sel({"class": "firn"})
    np.testing.assert_allclose(aar.values, expect.values, rtol=1e-6)
    assert aar.dims == ("time", "glacier") and aar.attrs["units"] == "1"
    np.testing.assert_allclose(aar_proxy(ds["fraction"], accumulation=("snow",)).values,
                               ds["fraction"].sel({"class": "snow"}).values)
    with pytest.raises(ValueError, match="cloud"):
        aar_proxy(ds, accumulation=("snow", "cloud"))


def test_errors_are_explicit():
    classes, gdf = class_map(8), outlines()
    bad = classes.copy(data=np.where(classes.values == 3, 42, classes.values).astype("int8"))
    with pytest.raises(ValueError, match="outside its classes"):
        fractions(bad, gdf)
    index = rasterize(gdf, classes)
    with pytest.raises(ValueError, match="glacier_ids"):
        fractions(classes, index.assign_attrs(glacier_ids=None).drop_attrs())
    with pytest.raises(ValueError, match="not on the grid of the class map"):
        fractions(classes.isel(x=slice(1, None)), index)

"""Bad input never gives a plausible-looking wrong answer: a right result, or an error/warning that
names the input and the fix.  One section per reported case; each test fails on the code before
the fix (the old wrong value is asserted away, or the old raw traceback was not a ValueError)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from shapely.geometry import box

import xfacies
from xfacies import synthetic
from xfacies.app.apply import apply_scene, scene_features
from xfacies.app.cli import main
from xfacies.catalog import NODATA, OPTICAL_FEATURES, class_flag_attrs
from xfacies.features import features
from xfacies.features import DemVoidWarning, ElevationRangeWarning
from xfacies.io import open_zarr, to_zarr
from xfacies.products import end_of_season, fractions
from xfacies.outlines import OverlapWarning, rasterize, read_outlines

from conftest import make_tiny_model

RES = 10.0
X0, Y0 = 630000.0, 5190000.0
CRS = "EPSG:32632"


def grid(dem: np.ndarray, nt: int | None = None, refl: float = 0.3, bands=OPTICAL_FEATURES):
    """A reflectance cube and a DEM DataArray on a 10 m UTM grid (row 0 = north)."""
    ny, nx = dem.shape
    coords = {"y": Y0 - RES * (np.arange(ny) + 0.5), "x": X0 + RES * (np.arange(nx) + 0.5)}
    shape = ((nt,) if nt else ()) + (len(bands), ny, nx)
    dims = (("time",) if nt else ()) + ("band", "y", "x")
    cube = xr.DataArray(np.full(shape, refl, np.float32), dims=dims,
                        coords={**coords, "band": list(bands)}).rio.write_crs(CRS)
    d = xr.DataArray(dem.astype(np.float32), dims=("y", "x"), coords=coords).rio.write_crs(CRS)
    return cube, d


def tilted(n: int = 30, m: int = 40) -> np.ndarray:
    rows, cols = np.mgrid[0:n, 0:m].astype(float)
    return 2000.0 + 5.0 * rows + 2.0 * cols  # 5 m per row, 2 m per column


def outl(*geoms, ids=None) -> gpd.GeoDataFrame:
    ids = ids or [f"G{i}" for i in range(1, len(geoms) + 1)]
    return gpd.GeoDataFrame({"glacier_id": ids}, geometry=list(geoms), crs=CRS)


def pixel(row: int, col: int, half: float = 3.0):
    """A tiny polygon around the centre of one pixel: rasterises to exactly that pixel."""
    x, y = X0 + RES * (col + 0.5), Y0 - RES * (row + 0.5)
    return box(x - half, y - half, x + half, y + half)


# =========================================================================== 2. reflectance units
@pytest.mark.parametrize("scale, cause", [
    (100.0, r"reflectance in percent: divide by 100"),
    (10000.0, r"digital numbers \(DN\) without scale and offset: .*Sentinel-2 L2A: \(DN - 1000\) \* 1e-4 .*"
              r"Landsat Collection 2 Level-2: DN \* 2.75e-5 - 0.2"),
])
def test_percent_and_dn_reflectance_are_refused_by_features(scale, cause):
    cube, dem = grid(tilted())
    rng = np.random.default_rng(0)
    cube = cube.copy(data=(rng.random(cube.shape) * 0.9 * scale).astype(np.float32))
    with pytest.raises(ValueError, match=r"the cube does not look like surface reflectance .*" + cause):
        features(cube, feature_set=1)


def test_reflectance_check_tolerates_one_percent_of_outliers_and_ignores_nan():
    cube, _ = grid(tilted(20, 50))
    v = cube.values.copy()
    v[:, :5, :] = np.nan                        # nodata is not judged
    flat = v.reshape(-1)
    finite = np.flatnonzero(np.isfinite(flat))
    flat[finite[: int(0.005 * finite.size)]] = 3.0   # 0.5 %: saturated pixels, noise
    ok = features(cube.copy(data=v), feature_set=1).values
    np.testing.assert_array_equal(ok, v)        # passed through unchanged
    flat[finite[: int(0.02 * finite.size)]] = 3.0    # 2 %: refused
    with pytest.raises(ValueError, match=r"2\.0 % of its finite optical values lie outside \[-0.05, 1.6\]"):
        features(cube.copy(data=v), feature_set=1)


def test_dask_cube_is_checked_block_by_block_when_computed():
    cube, _ = grid(tilted(), refl=0.3)
    v = cube.values.copy()
    v[:, 16:, :] *= 100.0                       # the southern half is in percent
    lazy = cube.copy(data=v).chunk({"y": 16, "x": 20})
    f = features(lazy, feature_set=1)           # graph building reads nothing and does not raise
    np.testing.assert_array_equal(f.isel(y=slice(0, 16)).values, v[:, :16])  # valid blocks compute
    with pytest.raises(ValueError, match="checked block by block.*percent: divide by 100"):
        f.compute()


def _write_tif(path, arr, profile, dtype="float32", nodata=None):
    arr = np.asarray(arr)
    arr = arr[None] if arr.ndim == 2 else arr
    with rasterio.open(path, "w", driver="GTiff", count=arr.shape[0], dtype=dtype, height=arr.shape[1],
                       width=arr.shape[2], nodata=nodata, **profile) as dst:
        dst.write(arr.astype(dtype))
    return str(path)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-apply")
    ds = synthetic.scene("2021-08-15", size=48, seed=2)
    prof = {"crs": ds.rio.crs, "transform": ds.rio.transform()}
    refl = ds.features.sel(band=list(OPTICAL_FEATURES)).values
    files = {
        "reflectance": _write_tif(d / "refl.tif", refl, prof, nodata=np.nan),
        "dn_float": _write_tif(d / "dn_float.tif", refl * 10000.0 + 1000.0, prof),
        "dn_uint16": _write_tif(d / "dn_uint16.tif", np.round(refl * 10000.0 + 1000.0), prof, "uint16", 0),
        "percent": _write_tif(d / "percent.tif", refl * 100.0, prof),
        "dem": _write_tif(d / "dem.tif", ds.dem.values, prof),
        "slope": _write_tif(d / "slope.tif", ds.features.sel(band="slope").values, prof),
    }
    o = synthetic.outlines(48, seed=2)
    files["outlines"] = str(d / "outlines.geojson")
    o.to_file(files["outlines"])
    model = make_tiny_model(6, seed=1)         # normalisation min -0.1, max 1.2: reads reflectance
    model.save(d / "tiny6.xfacies")
    return ds, files, xfacies.load_model(d / "tiny6.xfacies"), d


@pytest.mark.parametrize("which, cause", [("dn_float", "digital numbers"), ("dn_uint16", "digital numbers"),
                                          ("percent", "percent")])
def test_apply_refuses_dn_and_percent_rasters(scene, tmp_path, capsys, which, cause):
    _, files, model, _ = scene
    out = tmp_path / "classes.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no "integers are used as they are" warning first
        with pytest.raises(ValueError, match=rf"--optical .*{which}.tif does not look like surface "
                                             rf"reflectance .*{cause}"):
            apply_scene(files[which], files["outlines"], out, model=model)
    assert not out.exists()
    rc = main(["apply", "--optical", files[which], "--outlines", files["outlines"], "--output", str(out),
               "--model", str(model.path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{which}.tif does not look like surface reflectance" in err and not out.exists()


def test_apply_accepts_dn_for_a_model_trained_on_dn(scene, tmp_path):
    """The check follows the model: optical min/max in DN means the model reads DN."""
    import dataclasses

    _, files, model, _ = scene
    dn_model = dataclasses.replace(model, path=None,
                                   normalisation={"min": [0.0] * 6, "max": [12000.0] * 6})
    with pytest.warns(UserWarning, match="holds integers"):
        res = apply_scene(files["dn_uint16"], files["outlines"], tmp_path / "c.tif", model=dn_model,
                          method="dense")
    assert res.n_classified > 0
    res = apply_scene(files["reflectance"], files["outlines"], tmp_path / "r.tif", model=model, method="dense")
    assert res.n_classified == res.n_glacier_pixels > 0


# =========================================================================== 1. one-pixel glaciers
def test_one_pixel_glacier_gives_elevation_one_half_and_a_warning():
    cube, dem = grid(tilted())
    one = outl(pixel(10, 12), ids=["RGI60-11.99999"])
    with pytest.warns(ElevationRangeWarning, match=r"all glaciers together is 0.00 m.*'RGI60-11.99999' "
                                                   r"\(0.00 m\).*elevation feature is 0.5"):
        e = features(cube, dem=dem, outlines=one, feature_set=["elevation"]).values[0]
    assert np.abs(e).max() <= 1.0               # the old code gave up to ~1e8 here
    np.testing.assert_array_equal(e, np.float32(0.5))


def test_one_pixel_glacier_per_glacier_keeps_the_others_and_matches_apply(tmp_path):
    z = tilted()
    cube, dem = grid(z)
    big = box(X0 + 50, Y0 - 200, X0 + 250, Y0 - 60)
    gl = outl(big, pixel(25, 35), ids=["BIG", "TINY"])
    with pytest.warns(ElevationRangeWarning, match=r"glacier\(s\) 'TINY' \(0.00 m\) is below 1 m") as rec:
        e = features(cube, dem=dem, outlines=gl, feature_set=["elevation"], per_glacier_elevation=True)
    assert not any("BIG" in str(w.message) for w in rec)
    e = e.values[0]
    gid = rasterize(gl, dem).values
    zin = z[gid == 1]
    np.testing.assert_allclose(e[gid == 1], (z[gid == 1] - zin.min()) / (zin.max() - zin.min()), atol=1e-6)
    assert (gid == 2).sum() == 1 and e[gid == 2][0] == np.float32(0.5)

    # xfacies apply: the same rule for the same case (scene-joint normalisation, one glacier)
    prof = {"crs": CRS, "transform": rasterio.transform.from_origin(X0, Y0, RES, RES)}
    opt = _write_tif(tmp_path / "o.tif", cube.values, prof)
    d = _write_tif(tmp_path / "d.tif", z, prof)
    s = _write_tif(tmp_path / "s.tif", np.zeros_like(z), prof)
    tiny = outl(pixel(25, 35), ids=["TINY"])
    with pytest.warns(ElevationRangeWarning, match="'TINY' .0.00 m."):
        feats, _ = scene_features(opt, tiny, dem=d, slope=s)
    with pytest.warns(ElevationRangeWarning):
        ours = features(cube, dem=dem, outlines=tiny, feature_set=["elevation"]).values[0]
    np.testing.assert_array_equal(feats.sel(band="elevation").values, ours)
    assert float(ours[0, 0]) == 0.5             # apply gave 0 before, features ~1e9


# =========================================================================== 4. DEM voids
def test_dem_voids_are_masked_not_turned_into_cliffs(tmp_path):
    z = tilted()
    z[12:14, 20:23] = -32768.0                  # an SRTM void, nodata not declared
    cube, dem = grid(z)
    with pytest.warns(DemVoidWarning, match=r"declares no nodata value but holds 6 pixel\(s\) of the common "
                                            r"void values -32768 / -9999.*rio.write_nodata"):
        s = features(cube.chunk({"y": 10, "x": 15}), dem=dem, feature_set=["slope"]).values[0]
    around = np.zeros(z.shape, bool)
    around[11:15, 19:24] = True                 # the void and its 3 x 3 neighbourhood
    assert np.isnan(s[around]).all()
    interior = np.zeros(z.shape, bool)
    interior[1:-1, 1:-1] = True                 # (the scene border is padded with its nearest values)
    expect = math.degrees(math.atan(math.hypot(5.0, 2.0) / RES))
    np.testing.assert_allclose(s[interior & ~around], expect, atol=1e-3)
    assert np.isfinite(s[~around]).all() and np.nanmax(s) < 30  # the old code: ~90 degrees

    # a declared nodata value is masked without a warning; so is a file's nodata
    with warnings.catch_warnings():
        warnings.simplefilter("error", DemVoidWarning)
        declared = dem.where(dem > -30000, -5000.0).rio.write_nodata(-5000.0)
        s2 = features(cube, dem=declared, feature_set=["slope"]).values[0]
        np.testing.assert_array_equal(np.isnan(s2), np.isnan(s))
        prof = {"crs": CRS, "transform": rasterio.transform.from_origin(X0, Y0, RES, RES)}
        path = _write_tif(tmp_path / "srtm.tif", np.where(z < -30000, -32767, z), prof, "int16", -32767)
        s3 = features(cube, dem=path, feature_set=["slope"]).values[0]
        np.testing.assert_array_equal(np.isnan(s3), np.isnan(s))
    # an undeclared -9999 in an int16 file: masked with the warning
    path = _write_tif(tmp_path / "dem9999.tif", np.where(z < -30000, -9999, z), prof, "int16")
    with pytest.warns(DemVoidWarning, match="dem9999.tif"):
        s4 = features(cube, dem=path, feature_set=["slope"]).values[0]
    np.testing.assert_array_equal(np.isnan(s4), np.isnan(s))


# =========================================================================== 7. duplicated dates
DUP = r"duplicated time values: 2021-08-01 \(2 times\).*drop_duplicates\('time'\).*groupby\('time'\)"


def test_duplicated_dates_are_refused_everywhere(tmp_path):
    t = pd.to_datetime(["2021-07-15", "2021-08-01", "2021-08-01"])
    cube, _ = grid(tilted(), nt=3)
    cube = cube.assign_coords(time=t)
    with pytest.raises(ValueError, match="the cube has " + DUP):
        features(cube, feature_set=1)

    classes = xr.DataArray(np.zeros((3, 4, 4), "int8"), dims=("time", "y", "x"),
                           coords={"time": t, "y": Y0 - RES * (np.arange(4) + 0.5),
                                   "x": X0 + RES * (np.arange(4) + 0.5)}).rio.write_crs(CRS)
    gl = outl(box(X0, Y0 - 40, X0 + 40, Y0))
    with pytest.raises(ValueError, match="the class map has " + DUP):
        fractions(classes, gl)

    aar = xr.DataArray([[0.5], [0.4], [0.3]], dims=("time", "glacier"), coords={"time": t, "glacier": ["A"]})
    with pytest.raises(ValueError, match="values has " + DUP):
        end_of_season(aar)
    ok = aar.drop_duplicates("time")
    with pytest.raises(ValueError, match="coverage has " + DUP):
        end_of_season(ok, aar)

    with pytest.raises(ValueError, match="has " + DUP):
        to_zarr(classes.rename("classes"), tmp_path / "dup.zarr")
    assert not (tmp_path / "dup.zarr").exists()


def test_a_missing_date_nat_is_refused_everywhere(tmp_path, tiny_model):
    """A date that could not be parsed (NaT) used to pass features, classify, fractions and to_zarr
    and fail later with a KeyError naming nothing."""
    t = pd.to_datetime(["2021-07-15", None, "2021-08-20"])
    nat = r"has 1 missing time value\(s\) \(NaT.*at position\(s\) \[1\] of 3"
    cube, _ = grid(tilted(), nt=3)
    cube = cube.assign_coords(time=t)
    with pytest.raises(ValueError, match="the cube " + nat):
        features(cube, feature_set=1)
    with pytest.raises(ValueError, match=nat):
        xfacies.classify(cube, tiny_model)
    classes = xr.DataArray(np.zeros((3, 4, 4), "int8"), dims=("time", "y", "x"),
                           coords={"time": t, "y": Y0 - RES * (np.arange(4) + 0.5),
                                   "x": X0 + RES * (np.arange(4) + 0.5)}).rio.write_crs(CRS)
    with pytest.raises(ValueError, match="the class map " + nat):
        fractions(classes, outl(box(X0, Y0 - 40, X0 + 40, Y0)))
    with pytest.raises(ValueError, match=nat):
        to_zarr(classes.rename("classes"), tmp_path / "nat.zarr")
    assert not (tmp_path / "nat.zarr").exists()


# =========================================================================== 8-10. Zarr stores
def class_map(dates, crs=CRS, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.integers(NODATA, 8, size=(len(dates), 12, 17)).astype("int8")
    return xr.DataArray(v, dims=("time", "y", "x"), name="classes", attrs=class_flag_attrs(),
                        coords={"time": pd.to_datetime(dates), "y": Y0 - 5 - RES * np.arange(12),
                                "x": X0 + 5 + RES * np.arange(17)}).rio.write_crs(crs)


@pytest.mark.parametrize("lazy", [False, True])
def test_float_class_map_keeps_its_nodata_in_an_int8_store(tmp_path, lazy):
    path = to_zarr(class_map(["2024-07-01"]), tmp_path / "s.zarr")
    cm = class_map(["2024-08-01"], seed=1)
    f = cm.astype("float32").where(cm != NODATA)   # a float map, NaN = nodata (as after .where)
    f.attrs.update(class_flag_attrs())
    n_nodata = int(f.isnull().sum())
    assert n_nodata > 0
    to_zarr(f.chunk({"y": 5}) if lazy else f, path)
    back = open_zarr(path)["classes"].sel(time="2024-08-01")
    assert back.dtype == np.int8
    np.testing.assert_array_equal(back.values, cm.values[0])  # nodata stayed nodata, not 0 = ice
    assert int((back == NODATA).sum()) == n_nodata

    bad = (f + 0.5).assign_coords(time=pd.to_datetime(["2024-09-01"]))
    bad.attrs.update(class_flag_attrs())
    with pytest.raises(ValueError, match=r"float class map with values that are not class codes"):
        to_zarr(bad.chunk() if lazy else bad, path)
    assert list(open_zarr(path).time.dt.month.values) == [7, 8]  # nothing half-appended


def test_another_crs_with_the_same_coordinates_is_refused(tmp_path):
    path = to_zarr(class_map(["2024-07-01"]), tmp_path / "s.zarr")
    with pytest.raises(ValueError, match=r"the data is in EPSG:32633 but the store .*s.zarr' is in EPSG:32632.*"
                                         r"reproject_match"):
        to_zarr(class_map(["2024-08-01"], crs="EPSG:32633"), path)
    assert list(open_zarr(path).time.dt.month.values) == [7]


def test_time_zone_aware_times_are_stored_as_utc(tmp_path):
    cm = class_map(["2024-07-01", "2024-08-01"])
    local = pd.DatetimeIndex(["2024-07-01 12:00", "2024-08-01 12:00"]).tz_localize("Europe/Zurich")
    with pytest.warns(UserWarning, match=r"time-zone aware \(Europe/Zurich\); it is converted to UTC"):
        path = to_zarr(cm.assign_coords(time=local), tmp_path / "tz.zarr")
    back = open_zarr(path)
    np.testing.assert_array_equal(back.time.values,
                                  np.array(["2024-07-01T10:00", "2024-08-01T10:00"], "datetime64[ns]"))
    np.testing.assert_array_equal(back["classes"].values, cm.values)


# =========================================================================== 6. nested outlines
def test_nested_outlines_warn_with_ids_area_and_the_rule():
    outer = box(X0, Y0 - 400, X0 + 400, Y0)                   # 160,000 m2
    inner = box(X0 + 100, Y0 - 300, X0 + 310, Y0 - 100)       # 42,000 m2, inside
    side = box(X0 + 400, Y0 - 200, X0 + 500, Y0)              # touches the outer edge only
    gl = outl(outer, inner, side, ids=["A", "B", "C"])
    _, like = grid(np.zeros((50, 60)))
    with pytest.warns(OverlapWarning, match=r"'A' and 'B' share 42,000 m2 \('B' lies inside 'A'\).*later row "
                                            r"wins") as rec:
        idx = rasterize(gl, like).values
    assert len(rec) == 1 and "'C'" not in str(rec[0].message)
    # the documented rule still holds: B's pixels are B's, A keeps the rest
    assert (idx == 2).sum() * RES ** 2 == inner.area
    assert (idx == 1).sum() * RES ** 2 == outer.area - inner.area
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverlapWarning)
        rasterize(outl(outer, side), like)                     # touching: no warning


# =========================================================================== 3. sun angles
@pytest.mark.parametrize("az, el, match", [
    (150.0, -5.0, r"sun_elevation must be degrees above the horizon in \(0, 90\]; got -5 at 2021-12-21: "
                  r"the sun is at or below the horizon"),
    (2.6, 0.7, r"sun_elevation values \[0.7\] are all within \+-pi/2: they look like radians.*numpy.degrees"),
    (150.0, 95.0, r"got 95 at 2021-12-21. If these are sun zenith angles, use 90 - zenith"),
    (400.0, 40.0, r"sun_azimuth must be degrees clockwise from north in \[0, 360\]; got 400 at 2021-12-21"),
])
def test_sun_angles_out_of_range_are_refused(az, el, match):
    cube, dem = grid(tilted())
    cube = cube.assign_coords(time=np.datetime64("2021-12-21"))
    with pytest.raises(ValueError, match=match):
        features(cube, dem=dem, feature_set=["hillshade"], sun_azimuth=az, sun_elevation=el)


def test_azimuth_in_radians_warns():
    cube, dem = grid(tilted())
    with pytest.warns(UserWarning, match=r"sun_azimuth values \[2.6\] are all within 0..2 pi: if they are radians"):
        features(cube, dem=dem, feature_set=["hillshade"], sun_azimuth=2.6, sun_elevation=40.0)


# =========================================================================== 5. DEM reprojection
@pytest.fixture(scope="module")
def smooth_geo_dem():
    """A smooth DEM in EPSG:4326 at 3 arc-seconds (~90 m, as SRTM) around an 800 x 800 10 m grid."""
    from pyproj import Transformer

    n = 800
    to_geo = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lons, lats = to_geo.transform([X0 - 500, X0 + n * RES + 500], [Y0 + 500, Y0 - n * RES - 500])
    step = 1 / 1200
    lon = np.arange(min(lons), max(lons), step)
    lat = np.arange(max(lats), min(lats), -step)
    lo, la = np.meshgrid(lon, lat)
    z = (2500 + 600 * np.sin((lo - lon[0]) * 300) * np.cos((la - lat[0]) * 250)
         + 5000 * (la - lat[0]) + 3000 * (lo - lon[0])).astype(np.float32)
    geo = xr.DataArray(z, dims=("y", "x"), coords={"y": lat, "x": lon}).rio.write_crs("EPSG:4326")
    return geo, n


def test_dem_reprojection_equals_bilinear_interpolation(smooth_geo_dem, tmp_path):
    from pyproj import Transformer
    from scipy.interpolate import RegularGridInterpolator

    geo, n = smooth_geo_dem
    cube, _ = grid(np.zeros((n, n)), bands=["blue"])
    cube = cube.chunk({"y": 300, "x": 300})
    # independent oracle: bilinear interpolation of the DEM at the pixel centres, transformed exactly
    xx, yy = np.meshgrid(cube.x.values, cube.y.values)
    plon, plat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(xx, yy)
    interp = RegularGridInterpolator((geo.y.values[::-1], geo.x.values),
                                     geo.values[::-1].astype(np.float64), method="linear")
    exact = interp(np.stack([plat.ravel(), plon.ravel()], axis=-1)).reshape(n, n)
    whole = outl(box(X0, Y0 - n * RES, X0 + n * RES, Y0))
    path = tmp_path / "geo.tif"
    geo.rio.to_raster(path)
    for dem in (geo, geo.chunk({"y": 16, "x": 16}), path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "the DEM is 9 times coarser than the grid"
            f = features(cube, dem=dem, outlines=whole, feature_set=["elevation"])
        lo, hi = f.attrs["elevation_min_max"]
        z = lo + f.values[0].astype(np.float64) * (hi - lo)
        err = np.abs(z - exact)
        assert err.max() < 0.5, (type(dem).__name__, err.max())  # rioxarray's reproject_match: 1.85 m


# =========================================================================== 11. unreadable files
def test_truncated_geotiff_and_malformed_geojson_name_the_file(scene, tmp_path, capsys):
    _, files, model, _ = scene
    data = Path(files["reflectance"]).read_bytes()
    cut = tmp_path / "truncated.tif"
    cut.write_bytes(data[: len(data) // 2])
    head = tmp_path / "header_only.tif"
    head.write_bytes(data[:100])
    for bad, what in ((cut, "cannot be read"), (head, "cannot be opened as a raster")):
        with pytest.raises(ValueError, match=rf"--optical .*{bad.name} {what}"):
            apply_scene(str(bad), files["outlines"], tmp_path / "x.tif", model=model)
        rc = main(["apply", "--optical", str(bad), "--outlines", files["outlines"], "--output",
                   str(tmp_path / "x.tif"), "--model", str(model.path), "--no-progress"])
        assert rc == 2 and f"{bad.name} {what}" in capsys.readouterr().err
    dem_bytes = Path(files["dem"]).read_bytes()
    cut_dem = tmp_path / "dem_cut.tif"
    cut_dem.write_bytes(dem_bytes[: len(dem_bytes) // 2])
    with pytest.raises(ValueError, match=r"--dem .*dem_cut.tif cannot be read"):
        apply_scene(files["reflectance"], files["outlines"], tmp_path / "x.tif", dem=str(cut_dem),
                    slope=files["slope"], model=model)
    broken = tmp_path / "outlines.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
                      '{"id": "A"}, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0]')
    with pytest.raises(ValueError, match=r"outline file '.*outlines.geojson' cannot be read as vector "
                                         r"outlines .*Unterminated array"):
        read_outlines(broken)
    rc = main(["apply", "--optical", files["reflectance"], "--outlines", str(broken), "--output",
               str(tmp_path / "x.tif"), "--model", str(model.path), "--no-progress"])
    assert rc == 2 and "outlines.geojson' cannot be read" in capsys.readouterr().err


def test_regression_leaves_out_infinite_values_with_a_warning():
    """+inf in the predictor made r, slope and RMSE NaN; only finite pairs are used (as documented)."""
    from scipy.stats import linregress

    rng = np.random.default_rng(0)
    years, ids = np.arange(2000, 2020), ["A", "B", "C"]
    aar = xr.DataArray(rng.uniform(0.1, 0.8, (20, 3)), dims=("year", "glacier"),
                       coords={"year": years, "glacier": ids}, name="aar")
    balance = (2.3 * aar - 1.5 + 0.2 * rng.standard_normal(aar.shape)).rename("balance")
    bad = aar.copy()
    bad[3, 1] = np.inf
    with pytest.warns(UserWarning, match=r"predictor holds 1 infinite value\(s\) \(B 2003\)"):
        fit = xfacies.regress(bad, balance)
    keep = np.isfinite(bad.values.ravel())
    ref = linregress(bad.values.ravel()[keep], balance.values.ravel()[keep])
    assert fit.n == 59
    np.testing.assert_allclose([fit.slope, fit.r], [ref.slope, ref.rvalue], rtol=1e-10)


def test_classify_refuses_south_up_or_mirrored_features_and_duplicated_dates(tiny_model):
    from conftest import random_features

    feats = random_features((30, 28), time=2)
    for flipped, dim in ((feats.isel(y=slice(None, None, -1)), "y"), (feats.isel(x=slice(None, None, -1)), "x")):
        for method in ("dense", "exact"):
            with pytest.raises(ValueError, match=rf"features' {dim} coordinate must .* Flip the features first"):
                xfacies.classify(flipped, tiny_model, method=method)
    twice = xr.concat([feats.isel(time=[0]), feats.isel(time=[0])], dim="time")
    with pytest.raises(ValueError, match="duplicated time values"):
        xfacies.classify(twice, tiny_model)
    xfacies.classify(feats, tiny_model)  # north-up, distinct dates: fine


# =========================================================================== percent reflectance at classify
@pytest.mark.parametrize("lazy", [False, True])
def test_percent_reflectance_straight_into_classify_is_refused(lazy):
    """The units check is not only in ``features`` and ``xfacies apply``: ``classify`` and
    ``predict_proba`` refuse optical bands x 100 too (at once, or when a dask block is computed)."""
    ds = synthetic.scene("2021-08-15", size=64, seed=3)
    feats = ds.features.copy()
    optical = list(OPTICAL_FEATURES)
    feats.loc[{"band": optical}] = feats.sel(band=optical) * 100
    feats = feats.chunk(y=32, x=32) if lazy else feats
    for fn in (xfacies.classify, xfacies.predict_proba):
        with pytest.raises(ValueError, match=r"the features' optical bands.* does not look like surface "
                                             r"reflectance.*A maximum near 100 means reflectance in percent: "
                                             r"divide by 100"):
            out = fn(feats, "demo", ds.glacier)
            if lazy:
                out.compute()
    # the same features in reflectance classify
    assert (xfacies.classify(ds.features, "demo", ds.glacier).values >= 0).any()


# =========================================================================== grids that are not regular
@pytest.mark.parametrize("how", ["gap", "shuffled", "repeated"])
def test_a_class_map_that_is_not_a_regular_grid_is_refused_by_every_stage(how):
    """One check (xfacies.spatial.geobox) for every stage: fractions, snowlines, classify."""
    import geopandas as gpd
    from shapely.geometry import box

    from xfacies.catalog import class_flag_attrs

    x = 630005.0 + 10 * np.arange(12)
    if how == "gap":
        x[6:] += 30.0
    elif how == "shuffled":
        x[[3, 7]] = x[[7, 3]]
    else:
        x[5] = x[4]
    y = 5190095.0 - 10 * np.arange(10)
    classes = xr.DataArray(np.zeros((10, 12), "int8"), dims=("y", "x"), coords={"y": y, "x": x},
                           attrs=class_flag_attrs()).rio.write_crs("EPSG:32632")
    gdf = gpd.GeoDataFrame({"rgi_id": ["a"]}, geometry=[box(630000, 5190000, 630060, 5190100)], crs="EPSG:32632")
    msg = r"the 'x' coordinates are not a regular grid.*sortby\('x'\)"
    with pytest.raises(ValueError, match=msg):
        xfacies.fractions(classes, gdf)
    with pytest.raises(ValueError, match=msg):
        xfacies.snowline_altitude(classes.expand_dims(time=[np.datetime64("2021-08-01", "ns")]),
                                  xr.full_like(classes, 3000.0, dtype="float32"), gdf)
    feats = xr.DataArray(np.full((11, 10, 12), 0.3, "float32"), dims=("band", "y", "x"),
                         coords={"band": list(xfacies.FEATURE_SETS[4]), "y": y, "x": x},
                         attrs={"xfacies_imagery": "synthetic"}).rio.write_crs("EPSG:32632")
    with pytest.raises(ValueError, match=msg):
        xfacies.classify(feats, "demo", gdf)


# =========================================================================== glaciers partly outside the scene
def test_a_glacier_half_outside_the_map_has_half_coverage_and_a_warning():
    """Coverage is the observed share of the whole outline (area, shapely), not of its visible part."""
    import geopandas as gpd
    from shapely.geometry import box

    from xfacies.catalog import class_flag_attrs
    from xfacies.errors import InputWarning

    x, y = 630005.0 + 10 * np.arange(20), 5190195.0 - 10 * np.arange(20)
    snow = next(c.id for c in xfacies.CLASSES if c.name == "snow")
    classes = xr.DataArray(np.full((20, 20), snow, "int8"), dims=("y", "x"), coords={"y": y, "x": x},
                           attrs=class_flag_attrs()).rio.write_crs("EPSG:32632")
    inside, half = box(630000, 5190000, 630100, 5190100), box(630100, 5190100, 630300, 5190200)  # half beyond x
    gdf = gpd.GeoDataFrame({"rgi_id": ["in", "half"]}, geometry=[inside, half], crs="EPSG:32632")
    with pytest.warns(InputWarning, match=r"1 glacier\(s\) extend beyond the class map: half \(50 %\)"):
        frac = xfacies.fractions(classes, gdf)
    assert frac["coverage"].sel(glacier="in").item() == pytest.approx(1.0)
    assert frac["coverage"].sel(glacier="half").item() == pytest.approx(0.5)
    assert frac["fraction"].sel(glacier="half", **{"class": "snow"}).item() == 1.0  # of the visible part
    # end of season: min_coverage drops it
    aar = xfacies.aar_proxy(frac.expand_dims(time=[np.datetime64("2021-09-01", "ns")]))
    eos = xfacies.end_of_season(aar, frac["coverage"].expand_dims(time=[np.datetime64("2021-09-01", "ns")]),
                                min_coverage=0.7)
    assert np.isnan(eos.sel(glacier="half").values).all() and (eos.sel(glacier="in").values == 1.0).all()


# =========================================================================== outlines with their own glacier_id
def test_outlines_with_a_glacier_id_column_are_checked_like_any_other():
    """A glacier_id column used to skip every check: duplicated ids merged glaciers, NaN ids and
    None or line geometries gave NaN fractions without a word."""
    import geopandas as gpd
    from shapely.geometry import LineString, box

    from xfacies.catalog import class_flag_attrs
    from xfacies.errors import InputWarning

    x, y = 630005.0 + 10 * np.arange(20), 5190195.0 - 10 * np.arange(20)
    classes = xr.DataArray(np.zeros((20, 20), "int8"), dims=("y", "x"), coords={"y": y, "x": x},
                           attrs=class_flag_attrs()).rio.write_crs("EPSG:32632")
    a, b = box(630000, 5190000, 630100, 5190100), box(630100, 5190100, 630200, 5190200)

    def gdf(ids, geoms):
        return gpd.GeoDataFrame({"glacier_id": ids}, geometry=geoms, crs="EPSG:32632")

    with pytest.raises(ValueError, match=r"glacier ids are not unique .*\['g1'\]"):
        xfacies.fractions(classes, gdf(["g1", "g1"], [a, b]))
    with pytest.raises(ValueError, match=r"id column 'glacier_id' .* has 1 missing value"):
        xfacies.fractions(classes, gdf(["g1", None], [a, b]))
    with pytest.warns(InputWarning, match=r"dropped 2 outline\(s\) without a polygonal geometry: \['line', 'none'\]"):
        frac = xfacies.fractions(classes, gdf(["g1", "line", "none"], [a, LineString([(0, 0), (1, 1)]), None]))
    assert list(frac["glacier"].values) == ["g1"] and frac["coverage"].item() == 1.0


# =========================================================================== config values the schema let through
@pytest.mark.parametrize("section, key, value, match", [
    ("stac", "resolution", 0, r"\[stac\] resolution must be > 0.0, got 0"),
    ("stac", "resolution", float("nan"), r"\[stac\] resolution must be a number, got nan"),
    ("stac", "buffer", -50.0, r"\[stac\] buffer must be >= 0.0, got -50.0"),
    ("stac", "max_cloud", 150, r"\[stac\] max_cloud must be <= 100.0, got 150"),
    ("model", "batch_size", 0, r"\[model\] batch_size must be >= 1, got 0"),
    ("products", "hydrological_year_start_month", 13, r"\[products\] hydrological_year_start_month"),
    ("products", "window", ["13-45", "10-15"], r"\[products\] window: '13-45' is not a day of the year"),
])
def test_config_values_out_of_range_are_refused_when_the_config_is_read(section, key, value, match):
    from xfacies.app.config import RunConfig

    cfg = {"area": {"synthetic": {"size": 64}}, "time": {"start": 2021, "end": 2021},
           "stac": {"catalog": "synthetic"}, "dem": {"source": "synthetic"}, "output": {"dir": "out"}}
    cfg.setdefault(section, {})[key] = value
    with pytest.raises(ValueError, match=match):
        RunConfig.from_dict(cfg)


def test_a_negative_synthetic_size_is_refused():
    from xfacies.app.config import RunConfig

    with pytest.raises(ValueError, match=r"\[area\] synthetic.size must be >= 16, got -5"):
        RunConfig.from_dict({"area": {"synthetic": {"size": -5}}, "time": {"start": 2021, "end": 2021},
                             "output": {"dir": "out"}})


# =========================================================================== raw tracebacks become messages
def test_an_outline_with_a_nan_vertex_names_the_glacier():
    import geopandas as gpd
    from shapely.geometry import Polygon, box

    with warnings.catch_warnings():  # shapely itself notes the NaN while building the test's polygon
        warnings.simplefilter("ignore", RuntimeWarning)
        bad = Polygon([(0, 0), (10, 0), (float("nan"), 10), (0, 10)])
    gdf = gpd.GeoDataFrame({"rgi_id": ["ok", "nan-vertex"]}, geometry=[box(0, 0, 5, 5), bad], crs="EPSG:32632")
    with pytest.raises(ValueError, match=r"1 outline\(s\) of the GeoDataFrame have non-finite .* \['nan-vertex'\]"):
        xfacies.read_outlines(gdf)


def test_an_output_folder_that_is_a_file_or_not_writable_is_named(tmp_path):
    import os
    import stat

    from xfacies.app.pipeline import run
    from test_pipeline import config

    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match=r"\[output\] dir .*afile is a file, not a folder"):
        run(config(tmp_path / "afile"), progress=False, verbose=False)
    with pytest.raises(ValueError, match=r"\[output\] dir .*afile/below cannot be created: a part of that path is a file"):
        run(config(tmp_path / "afile" / "below"), progress=False, verbose=False)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        with pytest.raises(ValueError, match=r"\[output\] dir .*ro/out is not writable"):
            run(config(ro / "out"), progress=False, verbose=False)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(features=7), r"model.json is not what xfacies writes \(TypeError"),
    (lambda m: m.update(config=[1, 2]), r"'config' and 'metadata' must be JSON objects"),
    (lambda m: m.pop("architecture"), r"model.json is not what xfacies writes \(KeyError: 'architecture'"),
    (lambda m: m.update(classes=[1, 2]), r"'architecture', 'features' and 'classes' must be strings"),
])
def test_bundle_metadata_of_the_wrong_type_is_a_bundle_error(tmp_path, edit, match):
    import json
    import zipfile

    from conftest import make_tiny_model
    from xfacies.model.bundle import BundleError

    good = make_tiny_model(6).save(tmp_path / "good.xfacies")
    with zipfile.ZipFile(good) as zin:
        meta, weights = json.loads(zin.read("model.json")), zin.read("weights.npz")
    edit(meta)
    bad = tmp_path / "bad.xfacies"
    with zipfile.ZipFile(bad, "w") as zout:
        zout.writestr("model.json", json.dumps(meta))
        zout.writestr("weights.npz", weights)
    with pytest.raises(BundleError, match=match):
        xfacies.load_model(bad)


def test_features_times_100_are_checked_again_at_classify():
    """``features()`` marks its output as checked (classify then adds no second check to the graph);
    arithmetic on it drops the mark, so features edited into percent are refused at classify."""
    from xfacies.features import features
    from xfacies.validation import reflectance_checked

    ds = synthetic.season(["2021-08-15"], size=64, seed=3)
    cube = ds["features"].sel(band=list(OPTICAL_FEATURES))
    feats = features(cube, dem=ds["dem"], outlines=synthetic.outlines(64, seed=3))
    assert reflectance_checked(feats.data) and not feats.attrs.keys() & {"xfacies_reflectance_checked"}
    optical = list(OPTICAL_FEATURES)
    scale = xr.DataArray([100.0 if b in optical else 1.0 for b in feats["band"].values], dims="band",
                         coords={"band": feats["band"]})
    with xr.set_options(keep_attrs=True):  # attributes travel; the mark names the old array only
        scaled = feats * scale
    assert not reflectance_checked(scaled.data)
    with pytest.raises(ValueError, match="reflectance in percent: divide by 100"):
        xfacies.classify(scaled, "demo", ds["glacier"]).compute()
    assert (xfacies.classify(feats, "demo", ds["glacier"]).values >= 0).any()


# --------------------------------------------------------------------------- fill values (#27 item 1)
@pytest.mark.parametrize("fill", [-9999.0, 65535.0, "declared"])
def test_fill_values_in_the_cube_are_nodata_not_reflectance(fill):
    """20 pixels of fill near a glacier: the map equals the map of the same scene with those pixels
    as NaN (masked cloud), instead of carrying -9999 into every 33 x 33 patch around them."""
    ds = synthetic.season(["2021-08-15"], size=64, seed=3)
    cube = ds["features"].sel(band=list(OPTICAL_FEATURES)).astype(np.float32)
    outlines = synthetic.outlines(64, seed=3)
    rows, cols = np.nonzero(ds["glacier"].values > 0)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(rows), 20, replace=False)
    value = 0.987654 if fill == "declared" else fill
    dirty = cube.copy(data=cube.values.copy())
    dirty.values[:, :, rows[pick], cols[pick]] = value
    if fill == "declared":
        dirty = dirty.rio.write_nodata(value)
    clean = cube.copy(data=cube.values.copy())
    clean.values[:, :, rows[pick], cols[pick]] = np.nan
    want = xfacies.classify(features(clean, ds["dem"], outlines), "demo", ds["glacier"]).values
    got = xfacies.classify(features(dirty, ds["dem"], outlines), "demo", ds["glacier"]).values
    np.testing.assert_array_equal(got, want)
    # the case matters: a value of -9 (not a fill value, within the 1 % tolerance) spoils many pixels
    if fill == -9999.0:
        raw = dirty.copy(data=dirty.values.copy())
        raw.values[:, :, rows[pick], cols[pick]] = -9.0
        spoiled = xfacies.classify(features(raw, ds["dem"], outlines), "demo", ds["glacier"]).values
        assert (spoiled != want).sum() > 100


@pytest.mark.parametrize("lazy", [False, True])
def test_one_date_in_percent_among_many_is_refused_by_date(lazy):
    """Ten dates, one of them x 100 on 5 % of its pixels: pooled that is 0.5 % (< 1 %), judged per
    date it is 5 %; the error names the date."""
    cube, _ = grid(tilted(30, 40), nt=10)
    cube = cube.assign_coords(time=pd.date_range("2021-07-01", periods=10, freq="5D"))
    cube.values[6, :, :2, :30] = 30.0  # 60 of 1,200 pixels of 2021-07-31
    if lazy:
        cube = cube.chunk({"time": 4, "y": 30, "x": 40})
    with pytest.raises(ValueError, match=r"the cube on 2021-07-31 .*does not look like surface reflectance.*5\.0 %"):
        features(cube, feature_set=1).compute()
    cube2 = cube.copy(data=cube.data.copy()) if lazy else cube.copy(data=cube.values.copy())
    cube2 = cube2.compute()
    cube2.values[6, :, :2, :30] = 0.3
    cube2.values[6, :, 0, :5] = 30.0  # 5 of 1,200: 0.4 % in that date is tolerated noise
    assert features(cube2, feature_set=1).compute().notnull().any()


# --------------------------------------------------------------------------- a bundle's classes (#27 item 2)
def test_a_bundle_with_its_classes_in_another_order_gives_the_same_named_facies(tmp_path):
    """The demo model with its softmax outputs permuted (and its class list with them) is the same
    model: every pixel must get the same class *name*, and fractions, snowlines and plots follow the
    bundle's classes, not the catalogue's order."""
    import dataclasses

    from xfacies.catalog import map_classes
    from xfacies.products import snowline_altitude

    demo = xfacies.load_model("demo")
    perm = np.array([7, 5, 3, 1, 0, 2, 4, 6])  # new output k is demo output perm[k]
    w = [a.copy() for a in demo.weights]
    w[-2], w[-1] = w[-2][:, perm], w[-1][perm]
    other = dataclasses.replace(demo, weights=w, classes=tuple(demo.classes[i] for i in perm))
    other.save(tmp_path / "permuted.xfacies")
    other = xfacies.load_model(tmp_path / "permuted.xfacies")

    ds = synthetic.season(["2021-08-15"], size=64, seed=3)
    cube = ds["features"].sel(band=list(OPTICAL_FEATURES))
    outlines = synthetic.outlines(64, seed=3)
    feats = features(cube, ds["dem"], outlines)
    a = xfacies.classify(feats, demo, ds["glacier"]).compute()
    b = xfacies.classify(feats, other, ds["glacier"]).compute()
    name_a = {i: n for i, n, _ in map_classes(a)}
    name_b = {i: n for i, n, _ in map_classes(b)}
    assert name_b[0] == "cloud" and name_a[0] == "ice"
    va, vb = a.values.ravel(), b.values.ravel()
    assert (va >= 0).sum() > 500 and np.array_equal(va < 0, vb < 0)
    assert [name_a[int(x)] for x in va[va >= 0]] == [name_b[int(x)] for x in vb[vb >= 0]]
    assert (va != vb).any()  # the ids do differ: only the names agree

    fa = fractions(a, outlines)["fraction"]
    fb = fractions(b, outlines)["fraction"].sel({"class": fa["class"].values})
    np.testing.assert_allclose(fb.values, fa.values, rtol=0, atol=1e-6)
    sa = snowline_altitude(a, ds["dem"], outlines, min_pixels=1)
    sb = snowline_altitude(b, ds["dem"], outlines, min_pixels=1)
    np.testing.assert_array_equal(sa.values, sb.values)

    # the quicklook draws each pixel in its class's colour either way
    import matplotlib
    matplotlib.use("Agg")
    from xfacies.plot import facies_cmap

    ca, na = facies_cmap(a)
    cb, nb = facies_cmap(b)
    rgba_a = ca(na(np.where(va >= 0, va, 0)))[va >= 0]
    rgba_b = cb(nb(np.where(vb >= 0, vb, 0)))[vb >= 0]
    np.testing.assert_array_equal(rgba_a, rgba_b)


# --------------------------------------------------------------------------- area in degrees (#27 item 10)
@pytest.mark.parametrize("lazy", [False, True])
def test_area_of_a_class_map_in_degrees_is_in_square_metres(lazy):
    """A 0.01 deg x 0.01 deg glacier at 46.8 N on a 0.0005 deg grid: its area is the geodesic
    area of the box (pyproj's Geod, WGS84), about 0.85 km², not 400 x 2.5e-7 'm²'."""
    from pyproj import Geod

    n = 40
    lon = 9.995 + 0.0005 * (np.arange(n) + 0.5)
    lat = 46.815 - 0.0005 * (np.arange(n) + 0.5)
    cls = xr.DataArray(np.zeros((n, n), np.int8), dims=("y", "x"), coords={"y": lat, "x": lon},
                       attrs=xfacies.catalog.class_flag_attrs()).rio.write_crs("EPSG:4326")
    if lazy:
        cls = cls.chunk({"y": 16, "x": 16})
    g = gpd.GeoDataFrame({"glacier_id": ["A"]}, geometry=[box(10.0, 46.80, 10.01, 46.81)], crs="EPSG:4326")
    f = fractions(cls, g)
    want = abs(Geod(ellps="WGS84").geometry_area_perimeter(g.geometry[0])[0])
    assert 0.8e6 < want < 0.9e6
    assert float(f["area"].sel(glacier="A")) == pytest.approx(want, rel=1e-4)
    assert f["area"].attrs["units"] == "m2"
    assert float(f["fraction"].sel(glacier="A", **{"class": "ice"})) == 1.0

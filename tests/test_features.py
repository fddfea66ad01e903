"""features(): closed forms, chunk invariance, synthetic reproduction, errors."""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

import xfacies
from xfacies import synthetic
from xfacies.features import terrain
from xfacies.catalog import FEATURE_SETS, OPTICAL_FEATURES
from xfacies.errors import InputError
from xfacies.features import ShadowCapWarning, edge_distance, features, static_features
from xfacies.features.elevation import ElevationRangeWarning

RES = 10.0
X0, Y0 = 630000.0, 5190000.0
CRS = "EPSG:32632"
FEW = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def grid(dem: np.ndarray, nt: int | None = None, refl: float = 0.3) -> tuple[xr.DataArray, xr.DataArray]:
    """A 6-band reflectance cube and a DEM DataArray on a 10 m UTM grid (row 0 = north)."""
    ny, nx = dem.shape
    coords = {"y": Y0 - RES * (np.arange(ny) + 0.5), "x": X0 + RES * (np.arange(nx) + 0.5)}
    shape = ((nt,) if nt else ()) + (6, ny, nx)
    dims = (("time",) if nt else ()) + ("band", "y", "x")
    cube = xr.DataArray(np.full(shape, refl, np.float32), dims=dims,
                        coords={**coords, "band": list(OPTICAL_FEATURES)}).rio.write_crs(CRS)
    d = xr.DataArray(dem.astype(np.float32), dims=("y", "x"), coords=coords).rio.write_crs(CRS)
    return cube, d


def chunked(cube: xr.DataArray, cy: int, cx: int) -> xr.DataArray:
    return cube.chunk({"y": cy, "x": cx})


def plane(angle: float, facing: float, n: int = 24, m: int = 30) -> np.ndarray:
    rows, cols = np.mgrid[0:n, 0:m].astype(float)
    f = math.radians(facing)
    return 2500.0 - math.tan(math.radians(angle)) * (cols * RES * math.sin(f) - rows * RES * math.cos(f))


def square_outlines(*boxes) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"rgi_id": [f"G{i}" for i in range(len(boxes))]}, geometry=list(boxes), crs=CRS)


chunk_sizes = st.tuples(st.integers(3, 30), st.integers(3, 30))


# --------------------------------------------------------------------------- slope, aspect, hillshade
@FEW
@given(cs=chunk_sizes, plane_def=st.sampled_from([(5.0, 0.0), (30.0, 135.0), (55.0, 250.0)]))
def test_slope_of_planes_any_chunks(cs, plane_def):
    angle, facing = plane_def
    cube, dem = grid(plane(angle, facing))
    f = features(chunked(cube, *cs), dem=dem, feature_set=["slope"]).values[0]
    np.testing.assert_allclose(f[1:-1, 1:-1], angle, atol=2e-3)  # float32 DEM
    # nearest-value padding at the border, exactly as terrain.slope_horn
    np.testing.assert_array_equal(f, terrain.slope_horn(dem.values, RES).astype(np.float32))


def test_slope_and_aspect_of_a_cone():
    n, h, radius = 121, 600.0, 450.0
    rows, cols = np.mgrid[0:n, 0:n].astype(float)
    r = np.hypot(rows - 60, cols - 60) * RES
    dem = np.maximum(h - r * h / radius, 0.0) + 2000.0
    cube, d = grid(dem)
    s = features(chunked(cube, 17, 23), dem=d, feature_set=["slope"]).values[0]
    ring = (r > 60) & (r < radius - 60)
    np.testing.assert_allclose(s[ring], math.degrees(math.atan(h / radius)), atol=0.3)
    assert np.all(s[r > radius + 20] == 0)
    # aspect (a terrain kernel, not a feature): the cone drains away from its apex
    asp = terrain.aspect_horn(dem, RES)
    outward = np.degrees(np.arctan2(cols - 60, -(rows - 60))) % 360.0
    diff = (asp - outward + 180.0) % 360.0 - 180.0
    assert np.abs(diff[ring]).max() < 3.0


@pytest.mark.parametrize("az,el", [(150.0, 50.0), (90.0, 30.0), (300.0, 20.0)])
@pytest.mark.parametrize("angle,facing", [(25.0, 180.0), (40.0, 0.0)])
def test_hillshade_of_a_plane(az, el, angle, facing):
    cube, dem = grid(plane(angle, facing))
    f = features(chunked(cube, 7, 9), dem=dem, feature_set=["hillshade"],
                 sun_azimuth=az, sun_elevation=el).values[0]
    # cos(incidence) between the plane's normal and the sun
    s, fa, a, e = (math.radians(v) for v in (angle, facing, az, el))
    normal = np.array([math.sin(s) * math.sin(fa), math.sin(s) * math.cos(fa), math.cos(s)])
    sun = np.array([math.sin(a) * math.cos(e), math.cos(a) * math.cos(e), math.sin(e)])
    np.testing.assert_allclose(f[1:-1, 1:-1], max(0.0, float(normal @ sun)), atol=2e-5)


def test_xarray_spatial_oracle_interior():
    xrs = pytest.importorskip("xrspatial", reason="xarray-spatial (test oracle) is not installed")
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    z = gaussian_filter(rng.random((40, 50)) * 3000.0, 3) + 1500.0
    cube, dem = grid(z)
    ours = features(chunked(cube, 11, 13), dem=dem, feature_set=["slope"]).values[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = xrs.slope(dem.astype(np.float64)).values  # Horn, planar, metres
    np.testing.assert_allclose(ours[1:-1, 1:-1], ref[1:-1, 1:-1], atol=1e-3)
    # xarray-spatial 0.5.3's hillshade is (cos(incidence) + 1) / 2 on a unit cell (it ignores the
    # coordinate spacing) with central differences, so compare on planes in elevation per pixel
    for angle, facing, az, el in [(25.0, 200.0, 150.0, 40.0), (30.0, 90.0, 225.0, 25.0)]:
        p = plane(angle, facing)
        cube, dem = grid(p)
        ours = features(chunked(cube, 8, 8), dem=dem, feature_set=["hillshade"],
                        sun_azimuth=az, sun_elevation=el).values[0]
        unit = xr.DataArray(p / RES, dims=("y", "x"),
                            coords={"y": np.arange(p.shape[0])[::-1] * 1.0, "x": np.arange(p.shape[1]) * 1.0})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = np.clip(2 * xrs.hillshade(unit, azimuth=az, angle_altitude=el).values - 1, 0, 1)
        np.testing.assert_allclose(ours[1:-1, 1:-1], ref[1:-1, 1:-1], atol=1e-4)


# --------------------------------------------------------------------------- cast shadow
def wall_dem(n: int = 80, m: int = 60, height: float = 153.0, axis: str = "row", at: int = 40) -> np.ndarray:
    dem = np.full((n, m), 2000.0)
    if axis == "row":
        dem[at, :] += height
    else:
        dem[:, at] += height
    return dem


@FEW
@given(cs=chunk_sizes)
@pytest.mark.parametrize("az,el", [(180.0, 45.0), (160.0, 30.0), (0.0, 60.0), (200.0, 35.0),
                                   (90.0, 40.0), (250.0, 25.0)])
def test_wall_shadow_closed_form(cs, az, el):
    h = 153.0
    ew = abs(math.cos(math.radians(az))) >= abs(math.sin(math.radians(az)))
    dem = wall_dem(n=80, m=80, height=h, axis="row" if ew else "col", at=40)
    cube, d = grid(dem)
    lit = features(chunked(cube, *cs), dem=d, feature_set=["shadow_mask"],
                   sun_azimuth=az, sun_elevation=el).values[0]
    # perpendicular shadow length of an infinite wall: h * |cos(angle to the wall's normal)| / tan(el)
    a = math.radians(az)
    lperp = h * (abs(math.cos(a)) if ew else abs(math.sin(a))) / math.tan(math.radians(el))
    k = np.arange(80) - 40  # rows (south positive) or columns (east positive) from the wall
    towards_sun = (-math.cos(a)) if ew else math.sin(a)  # +1: sun lies at positive k
    away = -k * np.sign(towards_sun)  # distance (px) on the side away from the sun
    expect = ~((away > 0) & (away * RES < lperp))
    got = lit[:, 30] if ew else lit[30, :]
    np.testing.assert_array_equal(got.astype(bool), expect)
    # chunk invariance: identical to the whole-array kernel
    np.testing.assert_array_equal(lit, terrain.cast_shadow(d.values, RES, az, el).astype(np.float32))


@pytest.mark.parametrize("az,el", [(180.0, 30.0), (135.0, 25.0), (300.0, 35.0)])
def test_cone_shadow_closed_form(az, el):
    n, h, radius = 101, 400.0, 300.0  # cone slope 53 deg: steeper than the sun
    rows, cols = np.mgrid[0:n, 0:n].astype(float)
    xe, yn = (cols - 50) * RES, -(rows - 50) * RES
    r = np.hypot(xe, yn)
    dem = np.maximum(h - r * h / radius, 0.0) + 1800.0
    cube, d = grid(dem)
    lit1 = features(cube, dem=d, feature_set=["shadow_mask"], sun_azimuth=az, sun_elevation=el).values[0]
    lit2 = features(chunked(cube, 13, 29), dem=d, feature_set=["shadow_mask"],
                    sun_azimuth=az, sun_elevation=el).values[0]
    np.testing.assert_array_equal(lit1, lit2)
    # ground shadow = convex hull of the base circle and the apex's shadow tip, minus the base
    a = math.radians(az)
    L = h / math.tan(math.radians(el))
    tip = (-L * math.sin(a), -L * math.cos(a))
    hull = shapely.Point(0, 0).buffer(radius, 256).union(shapely.Point(tip)).convex_hull
    pts = shapely.points(xe, yn)
    inside = shapely.contains(hull, pts)
    margin = shapely.distance(hull.exterior, pts) > 1.5 * RES
    ground = (r > radius + 1.5 * RES) & margin
    np.testing.assert_array_equal(lit1[ground] == 0, inside[ground])
    assert (lit1[ground] == 0).sum() > 50
    # the cone's face towards the sun is lit
    face = (r < radius - 2 * RES) & (r > 2 * RES) & ((xe * math.sin(a) + yn * math.cos(a)) / np.maximum(r, 1) > 0.3)
    assert np.all(lit1[face] == 1)


def test_shadow_cap_warns_and_stays_chunk_invariant():
    dem = wall_dem(n=90, m=20, height=400.0, axis="row", at=80)
    cube, d = grid(dem)
    with pytest.warns(ShadowCapWarning, match="shadow_cap"):
        f1 = features(cube, dem=d, feature_set=["shadow_mask"], sun_azimuth=180.0, sun_elevation=20.0,
                      shadow_cap=300.0)
    with pytest.warns(ShadowCapWarning):
        f2 = features(chunked(cube, 9, 7), dem=d, feature_set=["shadow_mask"], sun_azimuth=180.0,
                      sun_elevation=20.0, shadow_cap=300.0)
    np.testing.assert_array_equal(f1.values, f2.values)
    col = f1.values[0, :, 10]
    assert (col[:80] == 0).sum() == 30  # cut at 300 m (walls up to 300 m away still count)


# --------------------------------------------------------------------------- proximity
def brute_distance(outl: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    bnd = shapely.union_all(outl.geometry.boundary.to_numpy())
    return shapely.distance(bnd, shapely.points(x, y))


@FEW
@given(cs=chunk_sizes)
def test_proximity_is_exact_euclidean_any_chunks(cs):
    ny, nx = 64, 90
    cube, dem = grid(np.zeros((ny, nx)))
    ring = Polygon([(X0 + 100, Y0 - 500), (X0 + 330, Y0 - 480), (X0 + 260, Y0 - 120), (X0 + 140, Y0 - 60)],
                   holes=[[(X0 + 180, Y0 - 300), (X0 + 220, Y0 - 300), (X0 + 200, Y0 - 250)]])
    outl = square_outlines(ring, box(X0 + 600, Y0 - 200, X0 + 700, Y0 - 100))
    f = features(chunked(cube, *cs), dem=dem, outlines=outl, feature_set=["proximity"])
    xx, yy = np.meshgrid(cube.x.values, cube.y.values)
    d = brute_distance(outl, xx, yy)
    np.testing.assert_allclose(f.values[0], (d / d.max()).astype(np.float32), rtol=1e-6, atol=0)
    unchunked = features(cube, dem=dem, outlines=outl, feature_set=["proximity"]).values
    np.testing.assert_array_equal(f.values, unchunked)


def test_edge_distance_certified_against_brute_force():
    rng = np.random.default_rng(3)
    pts = rng.random((300, 2)) * 1000
    a = rng.random((200, 2)) * 1000
    b = a + rng.normal(0, 30, (200, 2))
    got = edge_distance(pts[:, 0], pts[:, 1], a, b)
    lines = shapely.linestrings(np.stack([a, b], axis=1))
    want = shapely.distance(lines[None, :], shapely.points(pts)[:, None]).min(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


# --------------------------------------------------------------------------- elevation
def test_elevation_joint_and_per_glacier():
    rows, cols = np.mgrid[0:40, 0:50].astype(float)
    dem = 2000.0 + 10.0 * rows + 3.0 * cols
    cube, d = grid(dem)
    b1 = box(X0 + 50, Y0 - 150, X0 + 150, Y0 - 50)
    b2 = box(X0 + 300, Y0 - 350, X0 + 450, Y0 - 250)
    outl = square_outlines(b1, b2)
    gid = xfacies.outlines.rasterize(outl, d).values
    for per in (False, True):
        e = features(chunked(cube, 9, 11), dem=d, outlines=outl, feature_set=["elevation"],
                     per_glacier_elevation=per).values[0]
        if not per:
            inside = dem[gid > 0]
            np.testing.assert_allclose(e, (dem - inside.min()) / (inside.max() - inside.min()), rtol=1e-5)
        else:
            for k in (1, 2):
                assert float(e[gid == k].min()) == 0.0 and float(e[gid == k].max()) == 1.0


# --------------------------------------------------------------------------- synthetic reproduction
@pytest.mark.parametrize("chunks", [None, (37, 53)])
def test_reproduces_the_synthetic_features(chunks):
    ds = synthetic.season(["2021-07-01", "2021-09-20"], size=160, seed=4)
    cube = ds.features.sel(band=list(OPTICAL_FEATURES))
    if chunks:
        cube = cube.chunk({"y": chunks[0], "x": chunks[1]})
    f = features(cube, dem=ds.dem, outlines=synthetic.outlines(160, seed=4))
    assert f.dims == ("time", "band", "y", "x") and f.dtype == np.float32
    assert tuple(f.band.values) == FEATURE_SETS[4]
    # identical, border included: the generator pads its DEM like terrain.slope_horn, treats
    # terrain beyond the scene as absent for cast shadows, and measures proximity and normalises
    # elevation with features()' own functions (xfacies.features.proximity / .elevation)
    np.testing.assert_array_equal(f.values, ds.features.values)
    assert 0 < float((f.sel(band="shadow_mask") == 0).mean()) < 0.5


def test_time_invariant_layers_are_shared_and_nan_follows_optical():
    cube, dem = grid(plane(20.0, 180.0, 20, 20), nt=3)
    cube = cube.copy(data=cube.values.copy())
    cube[1, 2, 5, 5] = np.nan
    cube = cube.assign_coords(sun_azimuth=("time", [150.0, 160.0, 170.0]),
                              sun_elevation=("time", [40.0, 45.0, 50.0]))
    f = features(chunked(cube, 8, 8), dem=dem, feature_set=3,
                 outlines=square_outlines(box(X0 + 40, Y0 - 120, X0 + 120, Y0 - 40)))
    v = f.values
    assert np.isnan(v[1, :, 5, 5]).all() and np.isfinite(v[[0, 2], :, 5, 5]).all()
    np.testing.assert_array_equal(v[0, 6:8], v[2, 6:8])  # elevation, slope: same every time
    assert not np.array_equal(v[0, 9], v[2, 9])  # hillshade follows the sun
    layers = list(f.data.dask.layers)
    assert sum(n.startswith("xfacies-slope_horn") for n in layers) == 1  # once per grid
    assert sum(n.startswith("xfacies-hillshade") for n in layers) == 3  # once per acquisition


def _tasks(f: xr.DataArray, *words: str) -> int:
    """Tasks of the graph whose key names one of ``words``."""
    names = (k[0] if isinstance(k, tuple) else k for k in dict(f.data.__dask_graph__()))
    return sum(any(w in str(n) for w in words) for n in names)


def test_static_terrain_is_computed_once_per_block_whatever_the_number_of_dates():
    cube, dem = grid(plane(20.0, 180.0, 32, 40), nt=3)
    cube = cube.assign_coords(sun_azimuth=("time", [150.0, 160.0, 170.0]),
                              sun_elevation=("time", [40.0, 45.0, 50.0]))
    outl = square_outlines(box(X0 + 40, Y0 - 200, X0 + 300, Y0 - 40))
    counts = {}
    for nt in (1, 3):
        f = features(chunked(cube.isel(time=slice(0, nt)), 16, 20), dem=dem, outlines=outl, feature_set=4)
        counts[nt] = {w: _tasks(f, w) for w in ("proximity", "slope_horn", "hillshade")}
    blocks = 2 * 2
    assert counts[1]["proximity"] == counts[3]["proximity"] == blocks + 2  # + the k-d tree and the maximum
    assert counts[1]["slope_horn"] == counts[3]["slope_horn"]
    assert counts[3]["hillshade"] == 3 * counts[1]["hillshade"]  # the sun-dependent ones per date


def test_static_features_given_back_from_zarr_give_the_same_features(tmp_path):
    ds = synthetic.season(["2021-07-01", "2021-09-20"], size=96, seed=5)
    outl = synthetic.outlines(96, seed=5)
    cube = ds.features.sel(band=list(OPTICAL_FEATURES)).chunk({"y": 40, "x": 56})
    st_ = static_features(ds.dem, outl, cube)
    assert [str(b) for b in st_.band.values] == ["elevation", "slope", "proximity"]
    assert st_.dims == ("band", "y", "x") and st_.chunks[1:] == ((40, 40, 16), (56, 40))
    st_.to_dataset(name="static").to_zarr(tmp_path / "static.zarr", mode="w")
    back = xr.open_zarr(tmp_path / "static.zarr")  # a Dataset, other chunks: both accepted
    want = features(cube, ds.dem, outl)
    for static in (st_, back, back["static"].chunk({"y": 32, "x": 32}).compute()):
        got = features(cube, ds.dem, outl, static=static)
        xr.testing.assert_identical(got, want)  # values, coords and attributes
        assert got.chunks == want.chunks
    # only what the static bands do not hold is computed: no proximity, slope or outline tasks
    got = features(cube, ds.dem, None, static=back)
    assert _tasks(got, "proximity", "slope_horn") == 0
    np.testing.assert_array_equal(got.values, want.values)
    part = features(cube, ds.dem, outl, static=st_.sel(band=["proximity"]), feature_set=3)
    np.testing.assert_array_equal(part.values, features(cube, ds.dem, outl, feature_set=3).values)


def test_static_features_refused_when_they_do_not_fit():
    ds = synthetic.scene(size=48, seed=2)
    outl = synthetic.outlines(48, seed=2)
    cube = ds.features.sel(band=list(OPTICAL_FEATURES))
    st_ = static_features(ds.dem, outl, cube)
    with pytest.raises(ValueError, match="per_glacier_elevation"):
        features(cube, ds.dem, outl, static=st_, per_glacier_elevation=True)
    with pytest.raises(ValueError, match="not on the grid of the cube"):
        features(cube.isel(x=slice(1, None)), ds.dem, outl, static=st_)
    with pytest.raises(ValueError, match="do not depend on the date"):
        features(cube, ds.dem, outl, static=st_.expand_dims(time=[0]))
    with pytest.raises(ValueError, match="no date-independent feature"):
        static_features(ds.dem, outl, cube, feature_set=["blue", "hillshade"])
    with pytest.raises(TypeError, match="static must be"):
        features(cube, ds.dem, outl, static=st_.values)


# --------------------------------------------------------------------------- errors
def test_errors_name_the_input_and_the_fix(tmp_path):
    cube, dem = grid(plane(10.0, 0.0, 20, 20))
    with pytest.raises(ValueError, match="valid features are"):
        features(cube, dem=dem, feature_set=["slope", "curvature"])
    with pytest.raises(TypeError, match="integer dtype"):
        features(cube.astype(np.int16), dem=dem, feature_set=1)
    with pytest.raises(ValueError, match="need a DEM"):
        features(cube, feature_set=2)
    with pytest.raises(ValueError, match="sun_elevation"):
        features(cube, dem=dem, feature_set=["hillshade"], sun_azimuth=150.0)
    # DEM that does not cover the cube (bounds in the message)
    small = dem.isel(y=slice(0, 10)).rio.write_crs(CRS)
    with pytest.raises(ValueError, match=r"DEM does not cover the cube: DEM bounds \("):
        features(cube, dem=small, feature_set=["slope"])
    # geographic cube: slope needs metres
    geo = cube.assign_coords(x=np.linspace(10.7, 10.8, 20), y=np.linspace(46.9, 46.8, 20)).rio.write_crs("EPSG:4326")
    with pytest.raises(ValueError, match="projected CRS such as UTM"):
        features(geo, dem=dem, feature_set=["slope"])
    # outlines that miss the cube
    far = square_outlines(box(X0 + 1e5, Y0 - 1e5, X0 + 1e5 + 100, Y0 - 1e5 + 100))
    with pytest.raises(ValueError, match="do not overlap the grid"):
        features(cube, dem=dem, outlines=far, feature_set=2)


def test_dem_in_degrees_is_reprojected_onto_the_cube(tmp_path):
    # a linear DEM in EPSG:4326 covering the cube: slope in metres after reprojection
    from pyproj import Transformer

    cube, _ = grid(np.zeros((30, 30)))
    lon_c, lat_c = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(X0 + 150, Y0 - 150)
    lon = np.linspace(lon_c - 0.02, lon_c + 0.02, 200)
    lat = np.linspace(lat_c + 0.02, lat_c - 0.02, 200)
    lo, la = np.meshgrid(lon, lat)
    z = 2000.0 + (la.max() - la) * 111_195.0 * math.tan(math.radians(20))  # 20 degrees, rises southwards
    geo = xr.DataArray(z.astype(np.float32), dims=("y", "x"), coords={"y": lat, "x": lon}).rio.write_crs("EPSG:4326")
    s = features(cube, dem=geo, feature_set=["slope"]).values[0]
    assert abs(float(np.median(s[2:-2, 2:-2])) - 20.0) < 1.0
    path = tmp_path / "dem.tif"
    geo.rio.to_raster(path)
    s2 = features(cube, dem=path, feature_set=["slope"]).values[0]
    np.testing.assert_allclose(s2, s, atol=1e-4)


# --------------------------------------------------------------------------- the one assembly
def test_stack_features_orders_the_layers_and_masks_missing_observations():
    """Against a stack built by hand: the feature set's order, float32, every band NaN where an
    optical band is NaN (and only there), NumPy and dask alike."""
    import dask.array as da

    from xfacies.features.assemble import stack_features

    rng = np.random.default_rng(0)
    names = list(FEATURE_SETS[4])
    layers = {n: rng.random((6, 7)) for n in names}
    layers["green"][2, 3] = np.nan
    layers["slope"][4, 4] = np.nan                       # a terrain NaN masks only its own band
    want = np.array([layers[n] for n in reversed(names)], dtype=np.float32)
    want[:, 2, 3] = np.nan
    got = stack_features(list(reversed(names)), layers)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    lazy = stack_features(list(reversed(names)), {k: da.from_array(v, chunks=3) for k, v in layers.items()})
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), want)
    with pytest.raises(InputError, match=r"no layer for feature\(s\) \['proximity'\]"):
        stack_features(names, {k: v for k, v in layers.items() if k != "proximity"})


def test_elevation_inside_is_the_rule_of_features():
    """The NumPy elevation of ``xfacies apply`` against the slow obvious loop, and against
    features() on the same DEM and outlines, per glacier too."""
    from xfacies.features.elevation import elevation_inside

    rng = np.random.default_rng(3)
    z = 2000.0 + 1000.0 * rng.random((30, 40))
    g = np.zeros((30, 40), int)
    g[2:12, 3:15], g[15:28, 20:38] = 1, 2
    joint = elevation_inside(z, g, ["A", "B"])
    lo, hi = z[g > 0].min(), z[g > 0].max()
    np.testing.assert_allclose(joint, (z - lo) / (hi - lo), rtol=1e-6)
    each = elevation_inside(z, g, ["A", "B"], per_glacier=True)
    for k in (1, 2):
        zk = z[g == k]
        np.testing.assert_allclose(each[g == k], (zk - zk.min()) / (zk.max() - zk.min()), rtol=1e-6)
    np.testing.assert_allclose(each[g == 0], joint[g == 0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flat = elevation_inside(np.full((5, 5), 2500.0), np.ones((5, 5), int), ["flat"])
    assert (flat == 0.5).all()
    assert any(issubclass(w.category, ElevationRangeWarning) and "'flat'" in str(w.message) for w in caught)

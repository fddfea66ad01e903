"""A glaciologist's first hour: a working grid from outlines, a DEM on it, terrain features without
an optical cube, honest models, outputs that plain xarray reads right, plots in grid coordinates."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from shapely.geometry import box

import xfacies
from xfacies import synthetic
from xfacies.sources.stac_server import write_cog

from conftest import SHARED, needs_shared, random_features

HEF = box(10.73, 46.78, 10.80, 46.82)  # around Hintereisferner, lon/lat


def _outlines(geom=HEF, crs="EPSG:4326"):
    return gpd.GeoDataFrame({"rgi_id": ["RGI60-11.00897"]}, geometry=[geom], crs=crs)


# --------------------------------------------------------------------------- grid
def test_grid_around_outlines_is_aligned_utm_and_covers_them():
    g = xfacies.grid(_outlines(), resolution=10, buffer=500)
    assert g.rio.crs.to_epsg() == 32632 and g.dims == ("y", "x") and g.dtype == np.uint8
    assert float(g.x[1] - g.x[0]) == 10.0 and float(g.y[1] - g.y[0]) == -10.0
    assert np.all(np.mod(g.x.values, 10) == 5) and np.all(np.mod(g.y.values, 10) == 5)
    # the outlines plus 500 m lie inside the grid (independently: pyproj via GeoPandas)
    minx, miny, maxx, maxy = _outlines().to_crs(32632).total_bounds
    # (1 m: the buffer's round corners are polygons)
    assert g.x.min() - 5 <= minx - 499 and g.x.max() + 5 >= maxx + 499
    assert g.y.min() - 5 <= miny - 499 and g.y.max() + 5 >= maxy + 499
    assert g.x.min() - 5 > minx - 520 and g.y.max() + 5 < maxy + 520    # and not much more
    assert g.chunks == ((1024,) * (g.sizes["y"] // 1024) + ((g.sizes["y"] % 1024,) if g.sizes["y"] % 1024 else ()),
                        (1024,) * (g.sizes["x"] // 1024) + ((g.sizes["x"] % 1024,) if g.sizes["x"] % 1024 else ()))
    # usable as like= for rasterising and for STAC searches
    idx = xfacies.outlines.rasterize(_outlines(), g)
    assert idx.shape == g.shape and (idx.values == 1).sum() > 0
    from xfacies.sources.stac import area_of

    assert area_of(g)[1].resolution.x == 10.0
    g2 = xfacies.grid(_outlines(), resolution=20, crs=32633, chunks=None)
    assert g2.rio.crs.to_epsg() == 32633 and isinstance(g2.data, np.ndarray)
    with pytest.raises(ValueError, match="geographic"):
        xfacies.grid(_outlines(), crs="EPSG:4326")


def _dem_file(tmp_path, res_deg=0.000833, size=(80, 120)):
    """An SRTM-like DEM in lon/lat (a plane tilted to the north) covering the HEF box."""
    ny, nx = size
    lon0, lat0 = 10.70, 46.84
    lat = lat0 - res_deg * (np.arange(ny) + 0.5)
    z = (3000.0 + (lat - 46.8) * 20000.0)[:, None] * np.ones((1, nx))
    path = write_cog(tmp_path / "dem.tif", z.astype(np.float32), Affine(res_deg, 0, lon0, 0, -res_deg, lat0),
                     "EPSG:4326", nodata=-32768)
    return path, (lon0, lat0, res_deg)


def test_open_dem_takes_outlines_or_a_grid_honours_chunks_and_warns_when_coarse(tmp_path):
    path, _ = _dem_file(tmp_path)
    with pytest.warns(UserWarning, match=r"about 93 m, 9 times coarser than the 10 m grid"):
        dem = xfacies.open_dem(_outlines(), path, chunks={"y": 256, "x": 256})
    g = xfacies.grid(_outlines())
    assert dem.sizes == g.sizes and np.array_equal(dem.x, g.x) and np.array_equal(dem.y, g.y)
    assert set(dem.chunks[0][:-1]) == {256} and set(dem.chunks[1][:-1]) == {256}
    # bilinear on a plane is exact: compare with the plane at each pixel's latitude (pyproj)
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(32632, 4326, always_xy=True).transform(
        *np.meshgrid(dem.x.values[::97], dem.y.values[::89]))
    want = 3000.0 + (lat - 46.8) * 20000.0
    np.testing.assert_allclose(dem.values[::89, ::97], want, atol=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a 10 m grid from a 30 m-like DEM: no warning
        fine, _ = _dem_file(tmp_path / "fine", res_deg=0.00025, size=(260, 400))
        xfacies.open_dem(g, fine)


# --------------------------------------------------------------------------- terrain features
def test_terrain_features_without_a_cube_equal_those_with_one():
    ds = synthetic.season(2, size=96, seed=3, chunks=48)
    outl = synthetic.outlines(96, seed=3)
    t = xfacies.terrain_features(ds.dem, outl, ds.dem.chunk(48), sun_azimuth=ds.sun_azimuth.values,
                                 sun_elevation=ds.sun_elevation.values, time=ds.time.values)
    names = [str(b) for b in t.band.values]
    assert names == ["elevation", "slope", "shadow_mask", "hillshade", "proximity"]
    f = xfacies.features.features(ds.features.sel(band=list(xfacies.catalog.OPTICAL_FEATURES)), ds.dem, outl,
                                  feature_set=names)
    # with a cube, cloudy pixels are NaN; the terrain itself is the same everywhere else
    ok = np.isfinite(f.values)
    assert ok.mean() > 0.5
    np.testing.assert_allclose(t.values[ok], f.values[ok], rtol=0, atol=1e-6)
    assert t.chunks[-1] == (48, 48) and list(t.time.values) == list(ds.time.values)
    no_sun = xfacies.terrain_features(ds.dem, outl, ds.dem)
    assert [str(b) for b in no_sun.band.values] == ["elevation", "slope", "proximity"]
    with pytest.raises(ValueError, match="optical bands"):
        xfacies.terrain_features(ds.dem, outl, ds.dem, feature_set=["blue", "slope"])
    with pytest.raises(ValueError, match="both sun_azimuth and sun_elevation"):
        xfacies.terrain_features(ds.dem, outl, ds.dem, sun_azimuth=150.0)


# --------------------------------------------------------------------------- honest models
def test_synthetic_model_warns_on_imagery_not_from_xfacies_synthetic():
    demo = xfacies.load_model("demo")
    assert demo.training_domain["imagery"] == "synthetic"
    scene = synthetic.scene(size=64, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", xfacies.model.bundle.DomainWarning)
        xfacies.classify(scene.features, demo)                # synthetic: no warning
        xfacies.classify(scene, demo)                         # the Dataset too
    real_like = scene.features.copy()
    real_like.attrs = {}
    with pytest.warns(xfacies.model.bundle.DomainWarning, match="trained on synthetic glaciers only"):
        xfacies.classify(real_like, demo)
    other = xfacies.Model(demo.architecture, demo.config, demo.weights, demo.features, demo.classes,
                          normalisation=demo.normalisation,
                          metadata={"training_domain": {"imagery": "real", "sensors": ["sentinel-2"]}})
    with warnings.catch_warnings():
        warnings.simplefilter("error", xfacies.model.bundle.DomainWarning)
        xfacies.classify(real_like, other)                    # a model trained on real imagery: quiet


def test_cli_info_shows_the_training_domain(capsys):
    from xfacies.app.cli import main

    assert main(["info", "demo"]) == 0
    assert "trained on: synthetic imagery" in capsys.readouterr().out


# --------------------------------------------------------------------------- plain xarray
def test_cli_demo_outputs_read_right_with_plain_xarray_and_print_no_tensorflow_banner(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "XFACIES_QUIET_TF")}
    proc = subprocess.run([sys.executable, "-m", "xfacies.app.cli", "demo", "--out", str(tmp_path / "d"),
                           "--size", "96", "--dates", "2", "--chunks", "64", "--no-progress"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for banner in ("oneDNN", "absl::InitializeLog", "cpu_feature_guard"):
        assert banner not in proc.stderr, proc.stderr[:2000]
    assert "DomainWarning" not in proc.stderr   # the demo's imagery comes from xfacies.synthetic
    for store in ("facies.zarr", "fractions.zarr", "products.zarr"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for category in (DeprecationWarning, PendingDeprecationWarning):  # third-party notes
                warnings.simplefilter("ignore", category)
            ds = xr.open_zarr(tmp_path / "d" / store)
        assert ds.sizes
    maps = xr.open_zarr(tmp_path / "d" / "facies.zarr")
    assert maps.classes.dtype == np.int8 and "_FillValue" not in maps.classes.attrs
    assert -1 in maps.classes.attrs["flag_values"] and maps.classes.attrs["flag_meanings"].startswith("no_data ice")
    ours = xfacies.io.open_zarr(tmp_path / "d" / "facies.zarr")
    np.testing.assert_array_equal(maps.classes.values, ours.classes.values)
    # ice (0) stays ice: 0 is a listed class, never a fill value that reads back as NaN
    assert 0 in maps.classes.attrs["flag_values"] and maps.classes.encoding.get("_FillValue") not in (0, 0.0)


# --------------------------------------------------------------------------- plots
def test_facies_map_axes_are_the_grid_coordinates_so_outlines_overlay(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    ds = synthetic.scene(size=128, seed=7)
    outl = synthetic.outlines(128, seed=7)
    ax = xfacies.plot.facies_map(ds.truth, outlines=outl)
    x0, x1 = ax.get_xlim()
    assert (x0, x1) == (float(ds.x.min()) - 5.0, float(ds.x.max()) + 5.0)      # metres, not km
    minx, _, maxx, _ = outl.to_crs(32632).total_bounds
    assert x0 <= minx <= maxx <= x1
    assert "km" in ax.get_xlabel() and "EPSG:32632" in ax.get_xlabel()
    assert len(ax.collections) == 1     # the outlines drawn on top
    ax.figure.savefig(tmp_path / "map.png", dpi=60)
    fig = xfacies.plot.features_map(ds.features, outlines=outl)
    assert [a.get_title() for a in fig.axes if a.get_title()] == list(xfacies.FEATURE_SETS[4])
    fig.savefig(tmp_path / "features.png", dpi=50)
    ax = xfacies.plot.dem_map(ds.dem, outlines=outl, title="DEM")
    assert ax.get_xlim() == (x0, x1)
    ax.figure.savefig(tmp_path / "dem.png", dpi=60)
    for p in ("map.png", "features.png", "dem.png"):
        assert (tmp_path / p).read_bytes()[:4] == b"\x89PNG"


@needs_shared("data", "oetztal", "dem", "srtm_oetztal.tif")
def test_real_oetztal_dem_on_the_grid_of_rgi7_outlines():
    outl = xfacies.read_outlines(SHARED / "data" / "oetztal" / "outlines" / "rgi7g_hef_complex.shp")
    g = xfacies.grid(outl, resolution=20)
    with pytest.warns(UserWarning, match="5 times coarser than the 20 m grid"):
        dem = xfacies.open_dem(outl, SHARED / "data" / "oetztal" / "dem" / "srtm_oetztal.tif", resolution=20)
    assert dem.sizes == g.sizes and float(dem.isnull().mean()) == 0.0
    inside = xfacies.outlines.rasterize(outl, g).values > 0
    z = dem.values[inside]
    # independently: the SRTM pixels inside the outlines, on the SRTM's own grid (rasterio)
    import rasterio
    from rasterio.features import geometry_mask

    with rasterio.open(SHARED / "data" / "oetztal" / "dem" / "srtm_oetztal.tif") as src:
        srtm = src.read(1).astype(float)
        mask = ~geometry_mask(outl.to_crs(src.crs).geometry, srtm.shape, src.transform)
    ref = srtm[mask]
    assert abs(z.min() - ref.min()) < 60 and abs(z.max() - ref.max()) < 60
    assert abs(z.mean() - ref.mean()) < 10


def test_threads_that_load_keras_together_leave_standard_error_working():
    """Two threads of a threaded Dask run that find Keras unimported used to mute standard error
    one after the other; the second saved the muted descriptor and restored it for good, so the
    CLI's "interrupted ... run the same command again" never reached the user.  A slow ``dup2``
    (0.2 s) widens the window so that the race happens every time without the lock."""
    code = textwrap.dedent("""
        import os, sys, threading, time
        real = os.dup2
        def slow(a, b):
            real(a, b)
            time.sleep(0.2)
        os.dup2 = slow
        from xfacies.model import runtime
        gate = threading.Barrier(4)
        def load():
            gate.wait()
            runtime.import_keras()
        threads = [threading.Thread(target=load) for _ in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print("standard error still reaches the user", file=sys.stderr)
    """)
    env = {**os.environ, "XFACIES_QUIET_TF": "1", "KERAS_BACKEND": "numpy"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "standard error still reaches the user" in proc.stderr

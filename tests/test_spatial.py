"""One grid/outline coercion (xfacies.spatial) for features, inference, products and STAC: it checks
the CRS and the coordinates, not only the shape; options; the pydantic run configuration."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from shapely.geometry import box

import xfacies
from xfacies import options, spatial
from xfacies.app.config import RunConfig

from conftest import random_features


def _grid(ny=20, nx=30, res=10.0, x0=630000.0, y0=5190000.0, crs="EPSG:32632", north_up=True):
    y = y0 - res * (np.arange(ny) + 0.5) if north_up else y0 - res * ny + res * (np.arange(ny) + 0.5)
    return xr.DataArray(np.zeros((ny, nx), np.float32), dims=("y", "x"),
                        coords={"y": y, "x": x0 + res * (np.arange(nx) + 0.5)}).rio.write_crs(crs)


def test_transform_and_bounds_match_the_closed_form():
    g = _grid(res=20.0)
    assert spatial.transform(g) == Affine(20.0, 0.0, 630000.0, 0.0, -20.0, 5190000.0)
    assert spatial.bounds(g) == (630000.0, 5190000.0 - 400.0, 630000.0 + 600.0, 5190000.0)
    # a one-pixel side: the coordinates give no pixel size, rioxarray's stored transform does
    one = g.isel(y=[3]).rio.write_transform(Affine(20.0, 0.0, 630000.0, 0.0, -20.0, 5190000.0 - 60.0))
    assert spatial.transform(one) == Affine(20.0, 0.0, 630000.0, 0.0, -20.0, 5190000.0 - 60.0)


def test_grid_without_crs_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"no CRS; attach one with obj = obj.rio.write_crs"):
        spatial.geobox(_grid().drop_vars("spatial_ref"))


@pytest.mark.parametrize("method", ["dense", "exact"])
def test_outline_raster_on_another_grid_is_refused_by_classify(tiny_model, method):
    feats = random_features((40, 36))
    mask = xr.ones_like(feats.isel(band=0, drop=True), dtype=np.int8)
    shifted = mask.assign_coords(x=mask.x + 1000.0)          # right shape, 1 km east
    flipped = mask.isel(y=slice(None, None, -1))             # right shape, south-up
    other_crs = mask.rio.write_crs("EPSG:32633")              # right coordinates, other CRS
    for raster, why in ((shifted, "x coordinates differ"), (flipped, "y coordinates differ"),
                        (other_crs, "another CRS")):
        with pytest.raises(ValueError, match=why):
            xfacies.classify(feats, tiny_model, raster, method=method)
    # the same raster on the right grid is accepted, and equals the vector outlines' burn
    gdf = gpd.GeoDataFrame({"rgi_id": ["A"]}, geometry=[box(630050, 5189750, 630300, 5189900)],
                           crs="EPSG:32632")
    burnt = xfacies.outlines.rasterize(gdf, feats)
    a = xfacies.classify(feats, tiny_model, burnt, method=method).values
    b = xfacies.classify(feats, tiny_model, gdf, method=method).values
    np.testing.assert_array_equal(a, b)
    assert (a >= 0).sum() == (burnt.values > 0).sum() > 0


def test_glacier_index_on_another_grid_is_refused_by_fractions_and_snowline():
    classes = _grid().astype(np.int8)
    gdf = gpd.GeoDataFrame({"rgi_id": ["A"]}, geometry=[box(630050, 5189850, 630250, 5189950)],
                           crs="EPSG:32632")
    index = xfacies.outlines.rasterize(gdf, classes)
    bad = index.assign_coords(y=index.y - 1000.0)
    with pytest.raises(ValueError, match="not on the grid of the class map"):
        xfacies.fractions(classes, bad)
    dem = classes.astype(np.float32) + 2500.0
    with pytest.raises(ValueError, match="not on the grid of the class map"):
        xfacies.snowline_altitude(classes, dem, bad)


def test_same_crs_written_differently_is_accepted():
    a = _grid()
    b = a.rio.write_crs("+proj=utm +zone=32 +datum=WGS84 +units=m +no_defs")
    spatial.check_same_grid(b, a, "the raster")  # pyproj says they are the same CRS


def test_open_stac_takes_the_grid_of_an_xarray_object():
    from xfacies.sources.stac import area_of

    geom, gbox = area_of(_grid(res=20.0))
    assert geom is None and gbox.resolution.x == 20.0 and gbox.crs.epsg == 32632
    with pytest.raises(ValueError, match="no usable grid"):
        area_of(_grid().drop_vars("spatial_ref"))


def test_options_context_and_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("XFACIES_GPU_MEMORY", "80e9")
    assert options.get("gpu_memory") == 80_000_000_000
    with xfacies.set_options(gpu_memory=16 << 30, cache_dir=tmp_path / "c"):
        assert options.get("gpu_memory") == 16 << 30
        assert xfacies.model.registry.cache_dir() == tmp_path / "c"
    assert options.get("gpu_memory") == 80_000_000_000
    monkeypatch.setenv("XFACIES_GPU_MEMORY", "lots")
    with pytest.raises(ValueError, match="not a number of bytes"):
        options.get("gpu_memory")
    with pytest.raises(ValueError, match="valid options: cache_dir, gpu_memory"):
        xfacies.set_options(gpu=1)


def test_tensorflow_batch_size_follows_the_gpu_memory_option():
    from xfacies.model.runtime import default_batch_size

    m = xfacies.load_model("demo")
    assert default_batch_size(m, "exact", free_bytes=None) == 1024        # unknown: the CPU size
    big = default_batch_size(m, "exact", free_bytes=80 << 30)
    small = default_batch_size(m, "exact", free_bytes=4 << 30)
    assert big > small >= 1024 and big & (big - 1) == 0


def _cfg(**sections):
    cfg = {"area": {"synthetic": {"size": 128}}, "time": {"start": 2021, "end": 2021}}
    cfg.update(sections)
    return cfg


@pytest.mark.parametrize("sections, message", [
    ({"stac": {"max_cloud": "60"}}, r"\[stac\] max_cloud must be a number or absent, got '60' \(str\)"),
    ({"model": {"smooth": 1}}, r"\[model\] smooth must be true/false, got 1 \(int\)"),
    ({"cluster": {"n_workers": 2.5}}, r"\[cluster\] n_workers must be an integer, got 2.5"),
    ({"output": {"zarr_format": 4}}, r"\[output\] zarr_format must be one of 2, 3, got 4"),
    ({"products": {"window": "08-01"}}, r"\[products\] window must be a list of a string"),
    ({"area": {"synthetic": {"size": 128}, "outline": "x.shp"}},
     r"unknown key 'outline' in \[area\]; valid keys: outlines, synthetic, glaciers, id_column"),
    ({"model": []}, r"\[model\] must be a table"),
])
def test_config_schema_errors_name_the_key_and_what_it_must_be(sections, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(_cfg(**sections))


def test_config_accepts_toml_types_and_round_trips(tmp_path):
    import datetime

    cfg = RunConfig.from_dict(_cfg(time={"start": 2020, "end": datetime.date(2021, 10, 31)},
                                   stac={"max_cloud": 60, "crs": 32632}), base=tmp_path)
    assert cfg.stac.max_cloud == 60.0 and isinstance(cfg.stac.max_cloud, float)
    assert cfg.time_range[1] == np.datetime64("2021-10-31T23:59:59")
    again = RunConfig.from_dict(cfg.to_dict(), base=tmp_path)  # the JSON written as run-config.json
    assert again.to_dict() == cfg.to_dict() and again.time_range == cfg.time_range

"""Typed errors and renamed keywords: a caller can tell the kinds of bad input apart by type (and
older code that catches ``ValueError`` still works), and old keywords and module paths keep working
for one release with a ``FutureWarning`` that names the new spelling."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xfacies
from xfacies import errors
from xfacies.errors import (BundleError, GridError, InputError, MovedWarning, UnitsError, XfaciesError,
                            XfaciesWarning)


def _grid(nx: int = 4, ny: int = 3, x0: float = 5.0) -> xr.DataArray:
    import rioxarray  # noqa: F401

    return xr.DataArray(np.zeros((ny, nx), "float32"), dims=("y", "x"),
                        coords={"y": 100.0 - 10 * np.arange(ny) - 5, "x": x0 + 10 * np.arange(nx)}
                        ).rio.write_crs("EPSG:32632")


def test_the_hierarchy_keeps_the_builtin_types():
    for cls, builtin in [(InputError, ValueError), (GridError, ValueError), (UnitsError, ValueError),
                         (BundleError, ValueError), (errors.CorruptFileError, OSError),
                         (errors.MissingAssetError, KeyError), (errors.RunLockedError, RuntimeError),
                         (errors.NoWorkersError, RuntimeError), (errors.RequesterPaysError, PermissionError)]:
        assert issubclass(cls, XfaciesError) and issubclass(cls, builtin), cls
    assert issubclass(GridError, InputError) and issubclass(UnitsError, InputError)
    assert not issubclass(GridError, UnitsError) and not issubclass(BundleError, InputError)
    assert issubclass(MovedWarning, FutureWarning) and issubclass(MovedWarning, XfaciesWarning)
    # one home: the old module paths give the same class objects
    from xfacies.app.pipeline import NoWorkersError, RunLockedError
    from xfacies.model.bundle import BundleError as FromBundle
    from xfacies.sources.stac import MissingAssetError
    assert (FromBundle, RunLockedError, NoWorkersError, MissingAssetError) == (
        BundleError, errors.RunLockedError, errors.NoWorkersError, errors.MissingAssetError)


def test_a_grid_mismatch_is_a_grid_error():
    a = _grid()
    with pytest.raises(GridError, match="x coordinates differ"):
        xfacies.spatial.check_same_grid(a.assign_coords(x=a.x + 1000.0), a, "the outline raster")
    with pytest.raises(GridError, match="must decrease"):
        xfacies.spatial.require_north_up(a.isel(y=slice(None, None, -1)), "the cube", "cube")
    with pytest.raises(GridError, match="no CRS"):
        xfacies.spatial.geobox(a.drop_vars("spatial_ref"))


def test_reflectance_in_percent_is_a_units_error():
    from xfacies.validation import check_reflectance_values

    with pytest.raises(UnitsError, match="divide by 100"):
        check_reflectance_values(np.array([10.0, 50.0, 99.0]), "cube")
    check_reflectance_values(np.array([0.1, 0.5, 0.9]), "cube")  # plausible: nothing raised


def test_a_damaged_bundle_is_a_bundle_error(tmp_path):
    path = tmp_path / "bad.xfacies"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", '{"format_version": 1, "n_weights": -3}')
    with pytest.raises((BundleError, errors.CorruptFileError)) as err:
        xfacies.Model.load(path)
    assert isinstance(err.value, XfaciesError) and str(path) in str(err.value)


def test_other_bad_input_is_an_input_error_and_still_a_value_error():
    with pytest.raises(InputError, match="unknown option 'colour'"):
        xfacies.set_options(colour="red")
    with pytest.raises(ValueError):  # what older callers catch
        xfacies.set_options(colour="red")


def test_the_package_raises_no_plain_value_error():
    """Every ``raise ValueError(...)`` of the package became a typed error (an ``InputError`` at
    least); found by reading the source."""
    root = Path(xfacies.__file__).parent
    plain = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                    and getattr(node.exc.func, "id", None) == "ValueError"):
                plain.append(f"{path.relative_to(root)}:{node.lineno}")
    assert plain == []


# --------------------------------------------------------------------------- renamed keywords
def _moved(call):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = call()
    moved = [w for w in seen if issubclass(w.category, MovedWarning)]
    return out, moved


@pytest.mark.parametrize("kernel", ["slope_horn", "aspect_horn", "horn_gradient"])
def test_terrain_kernels_take_resolution_and_the_old_res_with_a_warning(kernel):
    from xfacies.features import terrain

    dem = np.add.outer(np.arange(8.0) * 3.0, np.arange(9.0) * 1.5)
    func = getattr(terrain, kernel)
    new = func(dem, resolution=10.0)
    old, moved = _moved(lambda: func(dem, res=10.0))
    assert len(moved) == 1 and f"{kernel}(res=...) is now {kernel}(resolution=...)" in str(moved[0].message)
    for a, b in zip(np.atleast_1d(new) if not isinstance(new, tuple) else new,
                    np.atleast_1d(old) if not isinstance(old, tuple) else old):
        np.testing.assert_array_equal(a, b)
    # closed form: a plane rising 3 m per 10 m row and 1.5 m per 10 m column
    if kernel == "slope_horn":
        want = np.degrees(np.arctan(np.hypot(0.3, 0.15)))
        np.testing.assert_allclose(new[1:-1, 1:-1], want, rtol=1e-6)
    with pytest.raises(InputError, match="got both resolution= and its old name res="):
        func(dem, res=10.0, resolution=10.0)


def test_terrain_features_take_like_and_the_old_grid(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    like = _grid(12, 10)
    dem = like.copy(data=np.add.outer(np.arange(10.0), np.arange(12.0)).astype("float32") * 5 + 2000)
    gl = gpd.GeoDataFrame({"glacier_id": ["A"]}, geometry=[box(25, 15, 95, 85)], crs="EPSG:32632")
    new = xfacies.terrain_features(dem, gl, like=like, feature_set=["slope", "elevation"])
    old, moved = _moved(lambda: xfacies.terrain_features(dem, gl, grid=like, feature_set=["slope", "elevation"]))
    assert len(moved) == 1 and "terrain_features(grid=...) is now terrain_features(like=...)" in str(moved[0].message)
    xr.testing.assert_identical(new.compute(), old.compute())


def test_figures_and_stores_take_out(tmp_path):
    from xfacies.train.evaluation import confusion_figure

    y = np.array([0, 1, 1, 2, 2, 2])
    p = np.array([0, 1, 2, 2, 2, 1])
    confusion_figure(y, p, out=tmp_path / "new.png")
    _, moved = _moved(lambda: confusion_figure(y, p, path=tmp_path / "old.png"))
    assert len(moved) == 1
    assert (tmp_path / "new.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "old.png").stat().st_size > 1000
    ds = xr.Dataset({"classes": _grid().astype("int8").expand_dims(time=[np.datetime64("2021-08-01")])})
    xfacies.to_zarr(ds, out=tmp_path / "a.zarr")
    _, moved = _moved(lambda: xfacies.to_zarr(ds, store=tmp_path / "b.zarr"))
    assert len(moved) == 1
    a, b = xr.open_zarr(tmp_path / "a.zarr"), xr.open_zarr(tmp_path / "b.zarr")
    np.testing.assert_array_equal(a["classes"].values, b["classes"].values)


def test_renamed_keywords_keep_the_new_signature():
    import inspect

    from xfacies.features import terrain

    assert "resolution" in inspect.signature(terrain.slope_horn).parameters
    assert "res" not in inspect.signature(terrain.slope_horn).parameters
    assert list(inspect.signature(xfacies.terrain_features).parameters)[:3] == ["dem", "outlines", "like"]


def test_open_stac_takes_a_grid_as_like():
    from xfacies.sources.stac import area_of

    like = _grid(6, 5)
    geom, gbox = area_of(None, like)
    assert geom is None and gbox == xfacies.spatial.geobox(like)
    assert area_of(like)[1] == gbox  # a grid given as where is taken the same way
    with pytest.raises(InputError, match="not both"):
        area_of((10.7, 46.8, 10.8, 46.9), like)
    with pytest.raises(GridError, match="like= must be a grid"):
        area_of(None, (10.7, 46.8, 10.8, 46.9))
    with pytest.raises(InputError, match="say where to search"):
        area_of(None)


# --------------------------------------------------------------------------- moved modules and names
def test_moved_names_warn_and_give_the_new_objects():
    import xfacies.outlines as outlines

    with pytest.warns(MovedWarning, match="xfacies.spatial.as_outlines moved to xfacies.outlines.as_outlines"):
        f = xfacies.spatial.as_outlines
    assert f is outlines.as_outlines
    assert xfacies.grid is outlines.grid and xfacies.read_outlines is outlines.read_outlines
    code = ("import warnings; warnings.simplefilter('error'); import xfacies.outlines as o\n"
            "try:\n    import xfacies.sources.outlines\nexcept FutureWarning as w:\n    print('warned:', w)\n"
            "warnings.simplefilter('ignore'); import xfacies.sources.outlines as s\n"
            "print(s.read_outlines is o.read_outlines, s.rasterize is o.rasterize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "warned: xfacies.sources.outlines moved to xfacies.outlines" in out.stdout
    assert out.stdout.strip().endswith("True True")


def test_wgms_is_one_facade_over_the_readers_and_the_matching():
    from xfacies.massbalance import matching, records, wgms

    for name in records.__all__:
        assert getattr(wgms, name) is getattr(records, name)
    for name in matching.__all__:
        assert getattr(wgms, name) is getattr(matching, name)
    assert xfacies.wgms is wgms


def test_features_is_what_users_call(tmp_path):
    """``xfacies.features(...)`` runs the feature function (as ``xfacies.fractions(...)`` does), with its
    signature; ``import xfacies.features.terrain`` and ``import xfacies.synthetic`` load no GDAL stack."""
    import inspect

    from xfacies.features.compute import features

    assert callable(xfacies.features)
    assert inspect.signature(xfacies.features) == inspect.signature(features)
    cube = xr.DataArray(np.random.default_rng(0).uniform(0.05, 0.9, (6, 10, 12)).astype("float32"),
                        dims=("band", "y", "x"),
                        coords={"band": ["blue", "green", "red", "nir", "swir1", "swir2"],
                                "y": 100.0 - 10 * np.arange(10) - 5, "x": 5.0 + 10 * np.arange(12)})
    xr.testing.assert_identical(xfacies.features(cube, feature_set=["blue", "nir", "swir1"]),
                                features(cube, feature_set=["blue", "nir", "swir1"]))
    code = ("import sys, xfacies.features.terrain, xfacies.synthetic; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'rasterio', 'rioxarray', 'pyproj', "
            "'geopandas', 'odc'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_public_error_type_is_documented_in_the_module():
    doc = errors.__doc__
    for name in errors.__all__:
        obj = getattr(errors, name)
        assert obj.__doc__, name
        if issubclass(obj, Exception) and obj is not XfaciesError:
            assert name in doc, name
    assert importlib.import_module("xfacies.errors") is errors


def test_the_moved_tiled_prediction_warns_and_gives_the_same(tmp_path):
    from conftest import make_tiny_model

    from xfacies.inference.tiles import predict_image

    model = make_tiny_model(n_features=3)
    x = np.random.default_rng(0).uniform(0, 1, (20, 24, 3)).astype("float32")
    with pytest.warns(MovedWarning, match="predict_image"):
        old = model.predict_tiled_normalised(x)
    np.testing.assert_array_equal(old, predict_image(model, x))

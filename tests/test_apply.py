"""``xfacies apply``: the reference's single-scene command, from GeoTIFFs to GeoTIFFs, defects fixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

import xfacies
from xfacies import synthetic
from xfacies.app.apply import NODATA_OUT, apply_scene, scene_features
from xfacies.app.cli import main

from conftest import make_tiny_model

SIZE = 64
SEED = 4


def _write(path, arr, profile):
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    with rasterio.open(path, "w", driver="GTiff", count=arr.shape[0], dtype="float32",
                       height=arr.shape[1], width=arr.shape[2], **profile) as dst:
        dst.write(arr)
    return str(path)


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    """A synthetic scene as the reference's inputs: optical, DEM, slope, shadow, hillshade, proximity."""
    d = tmp_path_factory.mktemp("apply")
    ds = synthetic.scene("2021-08-15", size=SIZE, seed=SEED)
    prof = {"crs": ds.rio.crs, "transform": ds.rio.transform(), "nodata": np.nan}
    f = ds.features
    files = {
        "optical": _write(d / "optical.tif", f.sel(band=list(xfacies.catalog.OPTICAL_FEATURES)).values, prof),
        "dem": _write(d / "dem.tif", ds.dem.values, prof),
        "slope": _write(d / "slope.tif", f.sel(band="slope").values, prof),
        "shadow": _write(d / "shadow.tif", f.sel(band="shadow_mask").values, prof),
        "hillshade": _write(d / "hillshade.tif", f.sel(band="hillshade").values, prof),
        # raw distances: apply divides by the raster maximum, as the reference does
        "proximity": _write(d / "proximity.tif", f.sel(band="proximity").values * 1234.5, prof),
    }
    outl = synthetic.outlines(SIZE, seed=SEED)
    files["outlines"] = str(d / "outlines.geojson")
    outl.to_file(files["outlines"])
    return d, ds, outl, files, prof


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    out = {}
    for n in (6, 11):
        m = make_tiny_model(n, seed=n)
        m.save(d / f"tiny{n}.xfacies")
        out[n] = xfacies.load_model(d / f"tiny{n}.xfacies")
    return out


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.profile


def test_scene_features_follow_the_reference_conventions(scene_files):
    _, ds, outl, files, _ = scene_files
    aux = {k: files[k] for k in ("dem", "slope", "shadow", "hillshade", "proximity")}
    feats, glaciers = scene_features(files["optical"], files["outlines"], **aux)
    assert list(feats.band.values) == list(xfacies.FEATURE_SETS[4])
    # elevation min-max inside the outlines, proximity over its raster maximum: the synthetic
    # scene's own features follow the same conventions
    np.testing.assert_allclose(feats.values, ds.features.values, atol=2e-6)
    assert int((glaciers > 0).sum()) == int((ds.glacier > 0).sum())


def test_apply_equals_classify_and_writes_the_reference_format(scene_files, models, tmp_path):
    _, ds, outl, files, _ = scene_files
    aux = {k: files[k] for k in ("dem", "slope", "shadow", "hillshade", "proximity")}
    res = apply_scene(files["optical"], files["outlines"], tmp_path / "classes.tif", **aux,
                      model=models[11], confidence=tmp_path / "conf.tif")
    assert res.feature_set == 4 and res.confidence is not None
    cls, prof = _read(res.output)
    assert prof["dtype"] == "int16" and prof["nodata"] == NODATA_OUT
    assert prof["crs"] == rasterio.crs.CRS.from_user_input(ds.rio.crs)
    inside = ds.glacier.values > 0
    assert (cls[~inside] == NODATA_OUT).all()
    assert (cls[inside] >= 0).all() and res.n_classified == inside.sum()
    # the same arrays through xfacies.classify (exact method, no smoothing)
    ref = xfacies.classify(ds.features, models[11], outl, method="exact", smooth=False,
                           confidence=True).compute()
    expect = np.where(ref.classes.values >= 0, ref.classes.values.astype(np.int16), np.int16(NODATA_OUT))
    np.testing.assert_array_equal(cls, expect)
    conf, cprof = _read(res.confidence)
    assert cprof["dtype"] == "float32" and cprof["nodata"] == NODATA_OUT
    assert (conf[~inside] == NODATA_OUT).all()
    np.testing.assert_allclose(conf[inside], ref.confidence.values[inside], rtol=1e-6)


def test_apply_without_confidence_smoothing_and_edge_pixels(scene_files, models, tmp_path):
    """No confidence path needed; pixels at the raster edge are classified (zero padding)."""
    import geopandas as gpd
    from shapely.geometry import box

    _, ds, _, files, prof = scene_files
    x0, y0, x1, y1 = rasterio.transform.array_bounds(SIZE, SIZE, prof["transform"])
    whole = gpd.GeoDataFrame({"glacier_id": ["ALL"]}, geometry=[box(x0 - 50, y0 - 50, x1 + 50, y1 + 50)],
                             crs=ds.rio.crs)
    res = apply_scene(files["optical"], whole, tmp_path / "c.tif", model=models[6], smooth=True)
    assert res.confidence is None and not (tmp_path / "conf.tif").exists()
    cls, _ = _read(res.output)
    edges = np.concatenate([cls[0], cls[-1], cls[:, 0], cls[:, -1]])
    assert (edges >= 0).all() and (cls >= 0).all()
    feats = ds.features.sel(band=list(xfacies.FEATURE_SETS[1]))
    ref = xfacies.classify(feats, models[6], whole, method="exact", smooth=True).values
    np.testing.assert_array_equal(cls, ref)
    dense = apply_scene(files["optical"], whole, tmp_path / "d.tif", model=models[6], method="dense")
    assert (_read(dense.output)[0] >= 0).all()


@pytest.mark.parametrize("given, message", [
    (("slope",), "--slope was given without --dem"),
    (("dem",), "--dem was given without --slope"),
    (("dem", "slope", "shadow"), "--shadow was given without --hillshade"),
    (("shadow", "hillshade"), "--shadow was given without --dem and --slope"),
    (("dem", "slope", "proximity"), "--proximity was given without --shadow and --hillshade"),
])
def test_paired_input_checks_fire(scene_files, models, tmp_path, given, message):
    _, _, _, files, _ = scene_files
    with pytest.raises(ValueError, match=message):
        apply_scene(files["optical"], files["outlines"], tmp_path / "x.tif", model=models[6],
                    **{k: files[k] for k in given})
    assert not (tmp_path / "x.tif").exists()


def test_grid_and_model_mismatches_name_the_files(scene_files, models, tmp_path):
    from affine import Affine

    _, ds, _, files, prof = scene_files
    shifted = _write(tmp_path / "dem_shifted.tif", ds.dem.values,
                     {**prof, "transform": prof["transform"] @ Affine.translation(1, 0)})
    with pytest.raises(ValueError, match=r"--dem .*dem_shifted.tif is not on the grid of the optical "
                                         r"raster .*optical.tif: transform"):
        apply_scene(files["optical"], files["outlines"], tmp_path / "x.tif", dem=shifted,
                    slope=files["slope"], model=models[11])
    other_crs = _write(tmp_path / "slope_crs.tif", ds.dem.values, {**prof, "crs": "EPSG:32633"})
    with pytest.raises(ValueError, match=r"slope_crs.tif is not on the grid.*CRS EPSG:32633"):
        apply_scene(files["optical"], files["outlines"], tmp_path / "x.tif", dem=files["dem"],
                    slope=other_crs, model=models[11])
    with pytest.raises(ValueError, match="the model reads 11 features .feature set 4. but the inputs make "
                                         "feature set 1"):
        apply_scene(files["optical"], files["outlines"], tmp_path / "x.tif", model=models[11])
    with pytest.raises(ValueError, match="--minmax is for reference .h5"):
        apply_scene(files["optical"], files["outlines"], tmp_path / "x.tif", model=models[6],
                    minmax=files["dem"])
    five = _write(tmp_path / "five.tif", np.zeros((5, 8, 8)), prof)
    with pytest.raises(ValueError, match="has 5 band.s.; it must have 6"):
        apply_scene(five, files["outlines"], tmp_path / "x.tif", model=models[6])
    with pytest.raises(FileNotFoundError, match="--hillshade .*nope.tif does not exist"):
        apply_scene(files["optical"], files["outlines"], tmp_path / "x.tif", hillshade=tmp_path / "nope.tif")


def test_cli_apply(scene_files, models, tmp_path, capsys):
    _, _, _, files, _ = scene_files
    out = tmp_path / "cli.tif"
    assert main(["apply", "--optical", files["optical"], "--outlines", files["outlines"], "--output", str(out),
                 "--model", str(models[6].path), "--method", "dense", "--no-progress"]) == 0
    assert "feature set 1" in capsys.readouterr().out and out.exists()
    assert main(["apply", "--optical", files["optical"], "--outlines", files["outlines"], "--output", str(out),
                 "--slope", files["slope"], "--model", str(models[6].path)]) == 2
    assert "--slope was given without --dem" in capsys.readouterr().err


def test_an_output_that_is_an_input_is_refused_and_the_input_is_untouched(scene_files, models, tmp_path, capsys):
    _, _, _, files, _ = scene_files
    before = {k: Path(v).read_bytes() for k, v in files.items() if k in ("optical", "dem")}
    for flag, target in (("--output", files["optical"]), ("--output", files["dem"]),
                         ("--confidence", files["optical"])):
        argv = ["apply", "--optical", files["optical"], "--outlines", files["outlines"], "--dem", files["dem"],
                "--output", str(tmp_path / "ok.tif"), "--model", str(models[6].path), "--no-progress"]
        if flag == "--output":
            argv[argv.index("--output") + 1] = target
        else:
            argv += ["--confidence", target]
        assert main(argv) == 2, argv
        assert "would overwrite that input" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--confidence .* is also --output"):
        apply_scene(files["optical"], files["outlines"], tmp_path / "same.tif", confidence=tmp_path / "same.tif",
                    model=models[6])
    assert {k: Path(v).read_bytes() for k, v in files.items() if k in ("optical", "dem")} == before

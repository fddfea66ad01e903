"""Your own files, bands and labels (#24): rasters → cube, mask → outlines, polygons → labels →
points.  Each result is checked against something outside xfacies: rasterio's own read, GDAL's
warp through rioxarray, shapely's point-in-polygon test, pixel counts."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401
import shapely
import xarray as xr
from rasterio.transform import from_origin
from shapely.geometry import Polygon, box

import xfacies
from xfacies.errors import InputWarning
from xfacies.train import patches_from_points, rasterize_labels, sample_points

CRS = "EPSG:32632"
X0, Y0, RES = 560000.0, 5190000.0, 10.0


def write(path: Path, data: np.ndarray, *, crs=CRS, x0=X0, y0=Y0, res=RES, nodata=None, tags=None) -> Path:
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, nodata=nodata, transform=from_origin(x0, y0, res, res)) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)
    return path


def dn(seed: int, bands: int = 3, ny: int = 20, nx: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 10000, (bands, ny, nx)).astype("uint16")


# --------------------------------------------------------------------------- open_rasters
def test_a_folder_of_multiband_files_is_a_cube_with_rasterios_values(tmp_path):
    days = {"2021-09-02": 1, "20210715": 2, "2021_08_10": 3}
    for day, seed in days.items():
        d = dn(seed)
        d[:, 0, :3] = 0            # the files' own nodata
        d[:, 1, :2] = 65000        # clipped-away area, to be masked with nodata=
        write(tmp_path / f"S2_{day}_silvretta.tif", d, nodata=0)
    cube = xfacies.open_rasters(tmp_path, ["green", "red", "nir"], scale=1e-4, offset=-0.1, nodata=65000)
    assert cube.dims == ("time", "band", "y", "x") and cube.dtype == np.float32 and cube.chunks is not None
    assert [str(t)[:10] for t in cube.time.values] == ["2021-07-15", "2021-08-10", "2021-09-02"]
    assert cube.band.values.tolist() == ["green", "red", "nir"] and cube.rio.crs.to_epsg() == 32632
    for k, t in enumerate(cube.time.values):
        src = Path(str(cube.source.values[k]))
        with rasterio.open(src) as f:
            raw = f.read().astype(np.float64)
            want = np.where((raw == 0) | (raw == 65000), np.nan, raw * 1e-4 - 0.1)
            assert cube.x.values[0] == pytest.approx(f.transform.c + RES / 2)
        np.testing.assert_allclose(cube.isel(time=k).values, want, rtol=1e-6, atol=1e-6)
    assert np.isnan(cube.values[:, :, 0, :3]).all() and np.isnan(cube.values[:, :, 1, :2]).all()


def test_single_band_files_by_token_dates_from_tags_regex_or_callable(tmp_path):
    for day, seed in (("20210801", 4), ("20210820", 5)):
        for k, tok in enumerate(("B03", "B04", "B8A")):
            write(tmp_path / f"T32TNS_{day}_{tok}.tif", dn(seed + 10 * k, bands=1))
    cube = xfacies.open_rasters(sorted(tmp_path.glob("*.tif")), {"green": "B03", "red": "B04", "nir08": "B8A"},
                                scale=1e-4)
    assert cube.sizes == {"time": 2, "band": 3, "y": 20, "x": 24}
    with rasterio.open(tmp_path / "T32TNS_20210820_B8A.tif") as f:
        np.testing.assert_allclose(cube.sel(band="nir08").isel(time=1).values, f.read(1) * 1e-4, rtol=1e-6)

    tagged = tmp_path / "tagged"
    tagged.mkdir()
    write(tagged / "scene_a.tif", dn(1), tags={"ACQUISITION_DATE": "2020-08-30T10:15:00Z"})
    write(tagged / "scene_b.tif", dn(2), tags={"TIFFTAG_DATETIME": "2020:09:12 10:20:00"})
    c = xfacies.open_rasters(str(tagged / "*.tif"), ["g", "r", "n"])
    assert [str(t)[:10] for t in c.time.values] == ["2020-08-30", "2020-09-12"]

    odd = tmp_path / "odd"
    odd.mkdir()
    write(odd / "scene-doy2021-227.tif", dn(3))
    c = xfacies.open_rasters(odd, ["g", "r", "n"], time=lambda p: pd.to_datetime(p.stem[-8:], format="%Y-%j"))
    assert str(c.time.values[0])[:10] == "2021-08-15"
    swiss = tmp_path / "swiss"
    swiss.mkdir()
    write(swiss / "silvretta_15.08.2021.tif", dn(3))
    c = xfacies.open_rasters(swiss, ["g", "r", "n"], time=r"(?P<day>\d{2})\.(?P<month>\d{2})\.(?P<year>\d{4})")
    assert str(c.time.values[0])[:10] == "2021-08-15"


def test_a_file_on_another_grid_is_reprojected_as_gdal_would(tmp_path):
    """The second date lies on a grid shifted by 3.7 m and 5.2 m, at 20 m: it is put on the first
    file's grid, bilinear, equal to rioxarray's reproject_match (GDAL) inside the overlap."""
    ny, nx = 30, 36
    yy, xx = np.mgrid[0:ny, 0:nx]
    smooth = (3000 + 40 * yy + 25 * xx).astype("float32")[None]
    write(tmp_path / "a_2021-07-01.tif", smooth)
    coarse = (3000 + 40 * np.mgrid[0:16, 0:19][0] * 2 + 25 * np.mgrid[0:16, 0:19][1] * 2).astype("float32")[None]
    write(tmp_path / "b_2021-08-01.tif", coarse, x0=X0 - 3.7, y0=Y0 + 5.2, res=20.0)
    cube = xfacies.open_rasters(tmp_path, ["nir"], scale=1e-4)
    assert cube.sizes == {"time": 2, "band": 1, "y": ny, "x": nx}
    first = rioxarray.open_rasterio(tmp_path / "a_2021-07-01.tif")
    other = rioxarray.open_rasterio(tmp_path / "b_2021-08-01.tif").astype("float32")
    from rasterio.enums import Resampling

    gdal = other.rio.reproject_match(first, resampling=Resampling.bilinear, nodata=np.nan).values[0] * 1e-4
    got = cube.isel(time=1, band=0).values
    both = np.isfinite(gdal) & np.isfinite(got)
    assert both.sum() > 0.8 * ny * nx
    np.testing.assert_allclose(got[both], gdal[both], rtol=0, atol=2e-4)

    # like= puts every file on a given grid
    like = first.isel(band=0, drop=True).isel(y=slice(5, 25), x=slice(4, 30))
    on = xfacies.open_rasters(tmp_path, ["nir"], scale=1e-4, like=like)
    assert on.sizes["y"] == 20 and on.sizes["x"] == 26
    np.testing.assert_allclose(on.isel(time=0, band=0).values, smooth[0, 5:25, 4:30] * 1e-4, rtol=1e-5)


@pytest.mark.parametrize("case, match", [
    ("bands", r"has 3 band\(s\) but bands names 2"),
    ("nodate", r"found no date: it needs a date in its name"),
    ("twice", r"two files of 2021-08-01"),
    ("token", r"names none of the band tokens"),
    ("missing_band", r"2021-08-01 has no file for band\(s\) \['red'\]"),
    ("nocrs", r"has no CRS; set one"),
    ("damaged", r"cannot be read as a raster .*damaged"),
    ("empty", r"no file matches"),
])
def test_own_rasters_that_cannot_be_a_cube_say_why(tmp_path, case, match):
    bands: list[str] | dict[str, str] = ["g", "r"]
    if case == "bands":
        write(tmp_path / "x_20210801.tif", dn(1, bands=3))
    elif case == "nodate":
        write(tmp_path / "scene.tif", dn(1, bands=2))
    elif case == "twice":
        write(tmp_path / "x_20210801.tif", dn(1, bands=2))
        write(tmp_path / "y_2021-08-01.tif", dn(2, bands=2))
    elif case in ("token", "missing_band"):
        bands = {"g": "B03", "red": "B04"}
        write(tmp_path / "x_20210801_B03.tif", dn(1, bands=1))
        if case == "token":
            write(tmp_path / "x_20210801_B05.tif", dn(1, bands=1))
    elif case == "nocrs":
        write(tmp_path / "x_20210801.tif", dn(1, bands=2), crs=None)
    elif case == "damaged":
        p = write(tmp_path / "x_20210801.tif", dn(1, bands=2))
        p.write_bytes(p.read_bytes()[:300])
    exc = FileNotFoundError if case == "empty" else ValueError
    with pytest.raises(exc, match=match):
        xfacies.open_rasters(str(tmp_path / "*.tif"), bands)


# --------------------------------------------------------------------------- outlines_from_mask
def test_outlines_from_a_mask_rasterise_back_to_the_same_pixels():
    rng = np.random.default_rng(3)
    m = np.zeros((25, 30), bool)
    m[2:9, 3:11] = True
    m[5:7, 11:20] = True          # joined to the first: one glacier
    m[15:23, 18:27] = rng.random((8, 9)) < 0.8
    m[20, 2] = True               # a one-pixel glacier
    y = Y0 - RES * (np.arange(25) + 0.5)
    x = X0 + RES * (np.arange(30) + 0.5)
    mask = xr.DataArray(m, dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs(CRS)
    from scipy import ndimage

    _, n = ndimage.label(m)
    gdf = xfacies.outlines_from_mask(mask)
    assert len(gdf) == n and gdf["glacier_id"].is_unique
    assert (gdf.area.values == gdf["n_pixels"].values * RES * RES).all()
    index = xfacies.outlines.rasterize(gdf, mask)
    np.testing.assert_array_equal(index.values > 0, m)
    xx, yy = np.meshgrid(x, y)
    for k, geom in enumerate(gdf.geometry):  # shapely agrees: centres inside = that glacier's pixels
        np.testing.assert_array_equal(shapely.contains_xy(geom, xx, yy), index.values == k + 1)

    ids = xr.zeros_like(mask, dtype=np.int32)
    ids.values[m] = 7
    ids.values[20, 2] = 3
    by_id = xfacies.outlines_from_mask(ids, id={3: "small", 7: "big"})
    assert by_id["glacier_id"].tolist() == ["small", "big"] and by_id["n_pixels"].tolist() == [1, int(m.sum()) - 1]
    assert xfacies.outlines_from_mask(mask, id="silvretta")["glacier_id"].iloc[0] == "silvretta-1"
    with pytest.raises(ValueError, match="holds no pixel inside"):
        xfacies.outlines_from_mask(xr.zeros_like(mask))
    with pytest.raises(ValueError, match="must be 2-D"):
        xfacies.outlines_from_mask(mask.expand_dims(time=2))


# --------------------------------------------------------------------------- labels and points
def grid_like(nt: int = 2, ny: int = 30, nx: int = 40) -> xr.DataArray:
    return xr.DataArray(np.zeros((nt, ny, nx), "float32"), dims=("time", "y", "x"), coords={
        "time": pd.to_datetime(["2021-08-01", "2021-08-20", "2021-09-05"][:nt]),
        "y": Y0 - RES * (np.arange(ny) + 0.5), "x": X0 + RES * (np.arange(nx) + 0.5)}).rio.write_crs(CRS)


def test_label_raster_equals_a_point_in_polygon_test_per_date():
    like = grid_like(3)
    glacier = gpd.GeoDataFrame({"glacier_id": ["A"]}, crs=CRS, geometry=[
        Polygon([(X0 + 23, Y0 - 17), (X0 + 370, Y0 - 41), (X0 + 352, Y0 - 288), (X0 + 31, Y0 - 263)])])
    snow = gpd.GeoDataFrame({"date": ["2021-08-01", "2021-08-20"]}, crs="EPSG:4326", geometry=[
        box(X0 + 5, Y0 - 150, X0 + 250, Y0 - 7), box(X0 + 100, Y0 - 120, X0 + 390, Y0 - 3)]).set_crs(
        CRS, allow_override=True).to_crs("EPSG:4326")  # drawn in another CRS
    lab = rasterize_labels(snow, like, value="snow", background="ice", within=glacier)
    assert lab.dims == ("time", "y", "x") and lab.dtype == np.int8
    xx, yy = np.meshgrid(like.x.values, like.y.values)
    in_glacier = shapely.contains_xy(glacier.geometry[0], xx, yy)
    ids = {n: i for i, n in enumerate(xfacies.catalog.class_names())}
    for k, geom in enumerate(snow.to_crs(CRS).geometry):
        want = np.where(in_glacier, np.where(shapely.contains_xy(geom, xx, yy), ids["snow"], ids["ice"]), -1)
        # the polygon went to degrees and back: pixels within a millimetre of its edge may differ
        assert (lab.values[k] != want).sum() <= 2
    assert (lab.values[2] == -1).all()  # no polygon drawn on 2021-09-05: no labels that day
    assert [n for _, n, _ in xfacies.catalog.map_classes(lab)][:2] == ["ice", "snow"]

    own = rasterize_labels(snow.to_crs(CRS), like, value="wet_snow", background="clean_ice", within=glacier)
    assert [n for _, n, _ in xfacies.catalog.map_classes(own)] == ["wet_snow", "clean_ice"]

    clash = gpd.GeoDataFrame({"class": ["snow", "firn"]}, crs=CRS, geometry=[
        box(X0, Y0 - 100, X0 + 100, Y0), box(X0 + 50, Y0 - 100, X0 + 150, Y0)])
    with pytest.raises(ValueError, match=r"class 'firn' overlap polygons of another class on 50 pixel"):
        rasterize_labels(clash, like.isel(time=0))


def test_sampled_points_carry_their_pixels_class_and_cut_into_patches():
    like = grid_like(2)
    glacier = gpd.GeoDataFrame({"glacier_id": ["A", "B"]}, crs=CRS, geometry=[
        box(X0 + 10, Y0 - 290, X0 + 190, Y0 - 10), box(X0 + 210, Y0 - 290, X0 + 390, Y0 - 10)])
    snow = gpd.GeoDataFrame(geometry=[box(X0, Y0 - 120, X0 + 400, Y0)], crs=CRS)
    lab = rasterize_labels(snow, like, value="snow", background="ice", within=glacier)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pts = sample_points(lab, n_per_class=60, seed=1, outlines=glacier)
    assert pts["class"].value_counts().to_dict() == {"ice": 60, "snow": 60}
    t = {d: k for k, d in enumerate(pd.DatetimeIndex(like.time.values))}
    for _, p in pts.iterrows():
        assert lab.values[t[p["date"]], p["row"], p["col"]] == p["class_id"]
        assert lab.x.values[p["col"]] == p.geometry.x and lab.y.values[p["row"]] == p.geometry.y
        assert p["glacier"] == ("A" if p.geometry.x < X0 + 200 else "B")
    again = sample_points(lab, n_per_class=60, seed=1, outlines=glacier)
    pd.testing.assert_frame_equal(pd.DataFrame(pts.drop(columns="geometry")),
                                  pd.DataFrame(again.drop(columns="geometry")))
    with pytest.warns(InputWarning, match=r"fewer labelled pixels than asked for: .*snow"):
        sample_points(lab, n_per_class={"snow": 10**6, "ice": 5})

    cube = like.expand_dims(band=["green", "red"], axis=1).copy(data=np.random.default_rng(0).random(
        (2, 2, 30, 40)).astype("float32"))
    patches = patches_from_points(cube, pts, patch_size=5, glacier_column="glacier")
    assert patches.sizes["sample"] == 120
    centre = patches.patches.isel(y=2, x=2).sel(band="red").values
    want = [cube.sel(band="red").values[t[d], r, c] for d, r, c in zip(pts["date"], pts["row"], pts["col"])]
    np.testing.assert_array_equal(np.sort(centre), np.sort(np.asarray(want, dtype="float32")))


# --------------------------------------------------------------------------- real files
from conftest import SHARED, needs_shared  # noqa: E402


@needs_shared("data", "silvretta", "index.csv")
def test_real_silvretta_crops_and_hand_drawn_polygons_give_the_published_snow_fractions():
    """The Silvretta Sentinel-2 crops (3 bands x 10,000, 0 outside the glacier, 65535 nodata) and the
    hand-drawn snow polygons, in ≤ 10 lines: glacier pixels and snow fractions equal those listed
    in the data's own index.csv (counted by whoever drew the polygons, not by xfacies)."""
    root = SHARED / "data" / "silvretta"
    cube = xfacies.open_rasters(root, ["blue", "nir08", "nir"], scale=1e-4, nodata=0)
    outlines = xfacies.outlines_from_mask(cube.isel(time=0, band=0).notnull(), id="silvretta")
    polygons = pd.concat([gpd.read_file(p).assign(date=pd.Timestamp(p.stem.split("_")[-1]))
                          for p in sorted(root.glob("*.shp"))], ignore_index=True)
    labels = rasterize_labels(gpd.GeoDataFrame(polygons), cube, value="snow", background="ice", within=outlines)
    points = sample_points(labels, n_per_class=200, seed=0, outlines=outlines)

    index = pd.read_csv(root / "index.csv", parse_dates=["date"]).set_index("date")
    assert len(outlines) == 1 and outlines["n_pixels"].iloc[0] == index["glacier_px"].iloc[0] == 27489
    snow = xfacies.catalog.class_names().index("snow")
    for k, day in enumerate(pd.DatetimeIndex(cube.time.values)):
        v = labels.values[k]
        if index.loc[day, "has_snow_polygon"]:
            assert (v >= 0).sum() == 27489
            assert (v == snow).sum() / 27489 == pytest.approx(index.loc[day, "snow_frac_manual"], abs=5e-4)
        else:
            assert (v == -1).all()
    assert points["class"].value_counts().to_dict() == {"ice": 200, "snow": 200}
    assert set(points["scene"]) <= {str(d.date()) for d in index.index[index["has_snow_polygon"]]}


# --------------------------------------------------------------------------- folds that do not leak
def _two_cubes_and_points():
    """Two glaciers on two grids (another origin and size), two dates each, labelled points."""
    out = []
    for g, (x0, ny, nx) in enumerate(((X0, 30, 40), (X0 + 5000.0, 26, 34))):
        rng = np.random.default_rng(g)
        t = pd.to_datetime(["2021-08-01", "2021-08-20"])
        cube = xr.DataArray(rng.random((2, 2, ny, nx)).astype("float32"), dims=("time", "band", "y", "x"),
                            coords={"time": t, "band": ["green", "nir"], "y": Y0 - RES * (np.arange(ny) + 0.5),
                                    "x": x0 + RES * (np.arange(nx) + 0.5)}).rio.write_crs(CRS)
        glacier = gpd.GeoDataFrame({"glacier_id": [f"G{g}"]}, crs=CRS,
                                   geometry=[box(x0 + 20, Y0 - RES * ny + 20, x0 + RES * nx - 20, Y0 - 20)])
        snow = gpd.GeoDataFrame(geometry=[box(x0, Y0 - 110, x0 + RES * nx, Y0)], crs=CRS)
        lab = rasterize_labels(snow, cube.isel(band=0), value="snow", background="ice", within=glacier)
        pts = sample_points(lab, n_per_class=40, seed=g, outlines=glacier)
        out.append((cube, pts))
    return out


def test_patch_sets_of_two_grids_concatenate_and_fold_by_scene_or_glacier_without_leaks():
    from xfacies.train import concat_patches, cross_validate

    sets = [patches_from_points(cube, pts, patch_size=5, glacier_column="glacier")
            for cube, pts in _two_cubes_and_points()]
    both = concat_patches(sets[0], sets[1].isel(band=[1, 0]))
    assert both.sizes["sample"] == sets[0].sizes["sample"] + sets[1].sizes["sample"] == 160
    assert both["band"].values.tolist() == ["green", "nir"] and both["sample"].values.tolist() == list(range(160))
    np.testing.assert_array_equal(both.patches.isel(sample=slice(80, None)).values, sets[1].patches.values)
    assert sorted(set(both["glacier"].values.tolist())) == ["G0", "G1"]

    # folds by scene: 4 scenes (2 glaciers x 2 dates) in 4 folds, no scene in two folds
    cv = cross_validate(both, fold_by="scene", k=4, test_folds=[], progress=False)
    folds = cv.probabilities["fold"].values
    scene = [f"{g} {str(d)[:10]}" for g, d in zip(both["glacier"].values, both["date"].values)]
    per_scene = pd.Series(folds).groupby(scene).nunique()
    assert len(per_scene) == 4 and (per_scene == 1).all() and len(set(folds.tolist())) == 4
    with pytest.raises(ValueError, match=r"at least 3 folds \(a test fold, a validation fold and one to train"):
        cross_validate(both, fold_by="glacier", k=2, progress=False)
    with pytest.raises(ValueError, match=r"fold_by='glacier' gives 2 group\(s\), fewer than k=3 folds"):
        cross_validate(both, fold_by="glacier", k=3, progress=False)
    with pytest.raises(ValueError, match=r"fold_by='region' is neither"):
        cross_validate(both, fold_by="region", progress=False)
    with pytest.raises(ValueError, match=r"lacks the band\(s\) \['nir'\]"):
        concat_patches(sets[0], sets[1].sel(band=["green"]))


def test_the_training_domain_counts_what_the_patches_hold():
    """Sensors from each cube's per-scene ``platform`` (only the scenes that gave patches), glaciers,
    dates and labels per class: counted here from the points themselves."""
    from xfacies.train import concat_patches
    from xfacies.train.fitting import training_domain

    sets = []
    for (cube, pts), platforms in zip(_two_cubes_and_points(), (["sentinel-2a", "sentinel-2b"], ["landsat-8", "landsat-8"])):
        cube = cube.assign_coords(platform=("time", platforms))
        if platforms[0] == "landsat-8":
            pts = pts[pd.to_datetime(pts["date"]) == pd.Timestamp("2021-08-01")]  # one scene only
        sets.append(patches_from_points(cube, pts, patch_size=5, glacier_column="glacier"))
    assert sets[0].attrs["sensors"] == '["sentinel-2a", "sentinel-2b"]' and sets[1].attrs["sensors"] == '["landsat-8"]'
    both = concat_patches(*sets)
    dom = training_domain(both, ["snow", "ice"])
    assert dom["sensors"] == ["landsat-8", "sentinel-2a", "sentinel-2b"]
    assert dom["glaciers"] == ["G0", "G1"]
    assert dom["dates"] == {"first": "2021-08-01", "last": "2021-08-20", "n": 2}
    names = pd.Series(np.concatenate([s["class_name"].values for s in sets]))
    assert dom["labels"] == {"snow": int((names == "snow").sum()), "ice": int((names == "ice").sum())}
    assert sum(dom["labels"].values()) == both.sizes["sample"]


def test_cross_validation_shows_a_bar_over_the_folds(capsys):
    from xfacies.train import concat_patches, cross_validate

    both = concat_patches([patches_from_points(cube, pts, patch_size=9, glacier_column="glacier")
                           for cube, pts in _two_cubes_and_points()])
    with pytest.raises(ValueError, match=r"the patches are 9 x 9 px but the 'reference-cnn' model reads 33 x 33"):
        cross_validate(both, fold_by="scene", k=4, test_folds=[0], epochs=1, architecture="reference-cnn",
                       features=["green", "nir"], verbose=0, progress=False)
    capsys.readouterr()
    cross_validate(both, fold_by="scene", k=4, test_folds=[0], epochs=1, batch_size=64,
                   architecture="reference-cnn", config={"filters": 2, "patch_size": 9, "dense_units": 4},
                   features=["green", "nir"], verbose=0)
    err = capsys.readouterr().err
    assert "cross-validation" in err and "1/1" in err and "test fold 0, validation 3" in err


# --------------------------------------------------------------------------- your own classes and bands (#24 items 4-5)
def _synthetic_glacier_files(folder: Path, seed: int):
    """Two dates of a synthetic glacier as 6-band uint16 GeoTIFFs (reflectance x 10,000, 0 = nodata), its
    snow drawn as polygons (one per date, from the synthetic truth) and its truth."""
    from xfacies import synthetic

    folder.mkdir()
    ds = synthetic.season(["2021-07-20", "2021-08-25"], size=96, seed=seed)
    bands = list(xfacies.catalog.OPTICAL_FEATURES)
    crs = ds.rio.crs or CRS
    polygons = []
    for k, t in enumerate(ds.time.values):
        v = ds["features"].isel(time=k).sel(band=bands).values
        dn = np.where(np.isfinite(v), np.clip(v * 10000, 1, 65000), 0).astype("uint16")
        with rasterio.open(folder / f"g{seed}_{str(t)[:10]}.tif", "w", driver="GTiff", width=96, height=96, count=6,
                           dtype="uint16", crs=crs, transform=ds["features"].rio.transform(), nodata=0) as dst:
            dst.write(dn)
        snow = (ds["truth"].isel(time=k) == 1).astype("int32").rio.write_crs(crs)
        if snow.any():  # a date without snow has no polygon
            polygons.append(xfacies.outlines_from_mask(snow).assign(date=pd.Timestamp(str(t)[:10])))
    return ds, gpd.GeoDataFrame(pd.concat(polygons, ignore_index=True), crs=crs)


def _labelled(folder: Path, seed: int, classes: list[str]):
    ds, snow = _synthetic_glacier_files(folder, seed)
    cube = xfacies.open_rasters(folder, list(xfacies.catalog.OPTICAL_FEATURES), scale=1e-4, nodata=0)
    outlines = xfacies.outlines_from_mask((ds["glacier"] > 0).rio.write_crs(cube.rio.crs), id=folder.name)
    labels = rasterize_labels(snow, cube, value=classes[0], background=classes[1], within=outlines, classes=classes)
    # the exercise is snow against ice: pixels the truth calls neither are left unlabelled
    labels = labels.where(ds["truth"].isin([0, 1]).values, -1).astype("int8").assign_attrs(labels.attrs)
    return cube, outlines, labels


@pytest.mark.slow
def test_a_two_class_model_of_your_own_classes_holds_on_an_unseen_glacier(tmp_path):
    """GeoTIFFs -> cube -> outlines -> labels -> points -> patches -> fit(classes=2) -> classify an
    unseen glacier: macro F1 (scikit-learn, against the synthetic truth) >= 0.9; the head has 2 units
    and the class map names the 2 classes."""
    from sklearn.metrics import f1_score

    from xfacies.train import fit

    own = ["wet_snow", "clean_ice"]
    cube_a, outl_a, lab_a = _labelled(tmp_path / "A", 11, own)
    cube_b, outl_b, lab_b = _labelled(tmp_path / "B", 12, own)
    with pytest.warns(InputWarning, match="fewer labelled pixels than asked for"):
        points = sample_points(lab_a, n_per_class=400, seed=0, outlines=outl_a)
    patches = patches_from_points(cube_a, points, patch_size=9, glacier_column="glacier", classes=own)
    assert patches["class_name"].values.tolist()[:1] == [points["class"].iloc[0]]
    model = fit(patches, epochs=20, batch_size=64, architecture="reference-cnn", classes=own,
                config={"filters": 8, "patch_size": 9, "dense_units": 16}, verbose=0)
    assert model.classes == tuple(own) and model.weights[-1].shape == (2,) and model.config["n_classes"] == 2
    classes = xfacies.classify(cube_b, model, outl_b, method="exact").compute()
    names = {i: n for i, n, _ in xfacies.catalog.map_classes(classes)}
    assert list(names.values()) == own
    truth = lab_b.values
    sel = truth >= 0
    f1 = f1_score(np.asarray(own)[truth[sel]], [names.get(int(v), "none") for v in classes.values[sel]],
                  average="macro")
    assert f1 >= 0.9, f1
    frac = xfacies.fractions(classes, outl_b)
    assert frac["class"].values.tolist() == own


def test_training_on_classes_the_model_does_not_have_is_refused(tmp_path):
    from xfacies.train import fit, new_model

    m = new_model("reference-cnn", features=["blue", "nir08"], classes=["snow", "ice"], filters=2, patch_size=9,
                  dense_units=4)
    assert m.features == ("blue", "nir08") and m.weights[-1].shape == (2,)
    patches = xr.Dataset({"patches": (("sample", "y", "x", "band"), np.zeros((3, 9, 9, 2), "float32"))},
                         coords={"band": ["blue", "nir08"], "class": ("sample", [1, 0, 2]),
                                 "class_name": ("sample", ["snow", "ice", "debris"]),
                                 "glacier": ("sample", ["A"] * 3),
                                 "date": ("sample", pd.to_datetime(["2021-08-01"] * 3))})
    with pytest.raises(ValueError, match=r"hold classes \['debris'\] \(debris: 1 samples\) that are not among"):
        fit(patches, classes=["snow", "ice"], epochs=1, architecture="reference-cnn",
            config={"filters": 2, "patch_size": 9, "dense_units": 4}, verbose=0)
    with pytest.raises(ValueError, match=r"not among classes=\['snow', 'ice'\]: 'firn'"):
        pts = gpd.GeoDataFrame({"class": ["firn"], "date": ["2021-08-01"]},
                               geometry=gpd.points_from_xy([X0 + 5], [Y0 - 5]), crs=CRS)
        cube = grid_like(1).expand_dims(band=["blue", "nir08"], axis=1)
        patches_from_points(cube, pts, patch_size=9, classes=["snow", "ice"])


def test_evaluate_label_issues_and_confusion_use_your_own_classes(tmp_path):
    """A 2-class model: evaluate reports rows for its 2 classes only (no NaN rows of 6 absent
    catalogue classes, no 'facies' aggregate), macro F1 equal to scikit-learn's; the confusion
    figure is 2 x 2; label_issues flags labels of both classes by default."""
    from sklearn.metrics import f1_score

    from xfacies.train import new_model
    from xfacies.train.cleaning import label_issues
    from xfacies.train.evaluation import confusion, evaluate, predict_probabilities

    own = ["snow", "ice"]
    m = new_model("reference-cnn", features=["blue", "nir08"], classes=own, filters=2, patch_size=9,
                  dense_units=4, seed=1)
    rng = np.random.default_rng(0)
    n = 40
    patches = xr.Dataset({"patches": (("sample", "y", "x", "band"), rng.random((n, 9, 9, 2), dtype=np.float32))},
                         coords={"band": ["blue", "nir08"], "class": ("sample", rng.integers(0, 2, n)),
                                 "glacier": ("sample", np.repeat(["A", "B"], n // 2))})
    table = evaluate(m, patches, confusion_png=tmp_path / "cm.png")
    per_class = table[(table.metric == "f1") & (table.glacier == "all")]
    assert per_class["class"].tolist() == own
    assert not (table["class"] == "facies").any()
    pred = predict_probabilities(m, patches).argmax(1)
    y = patches["class"].values
    macro = table.query("metric == 'macro_f1' and glacier == 'all' and `class` == 'all'").value.item()
    assert macro == pytest.approx(f1_score(y, pred, average="macro", labels=np.unique(np.r_[y, pred])))
    assert confusion(y, pred, classes=own).shape == (2, 2)
    assert (tmp_path / "cm.png").stat().st_size > 1000
    # five own classes: id 4 is "shadow" in the catalogue (trusted there), but here it is one of
    # yours, so its wrong labels are flagged too
    truth = np.arange(100) % 5
    probs = np.full((100, 5), 0.01)
    probs[np.arange(100), truth] = 0.96
    given = truth.copy()
    given[[4, 9, 0, 1]] = [0, 0, 4, 4]  # two class-4 samples labelled 0, two others labelled 4
    assert set(label_issues(given, probs)) == {0, 1, 4, 9}
    assert set(label_issues(given, probs, classes=[0, 1, 2, 3])) == {4, 9}


def test_scenes_of_two_glaciers_on_one_day_are_two_scenes():
    """A point table's ``scene`` names the day; joined patch sets of two glaciers imaged the same
    day are still two scenes for fold_by="scene" (one image each)."""
    from xfacies.train.fitting import fold_groups

    ds = xr.Dataset(coords={"glacier": ("sample", ["east", "east", "west", "west"]),
                            "scene": ("sample", ["2021-07-22", "2021-07-29", "2021-07-22", "2021-07-22"])})
    assert fold_groups(ds, "scene").tolist() == ["east 2021-07-22", "east 2021-07-29", "west 2021-07-22",
                                                 "west 2021-07-22"]

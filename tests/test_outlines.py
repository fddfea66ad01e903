"""Outlines: reading/normalising, rasterising (vs shapely point-in-polygon), bboxes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import shapely
import xarray as xr
from shapely.geometry import Point, Polygon, box

from xfacies.errors import InputError
from xfacies.outlines import glacier_bboxes, rasterize, read_outlines

CRS = "EPSG:32632"
X0, Y0, RES = 600_000.0, 5_100_000.0, 10.0


def make_grid(ny: int = 37, nx: int = 53, chunks: dict | None = None) -> xr.DataArray:
    x = X0 + RES / 2 + RES * np.arange(nx)
    y = Y0 - RES / 2 - RES * np.arange(ny)
    da = xr.DataArray(np.zeros((ny, nx), "int8"), dims=("y", "x"), coords={"y": y, "x": x})
    da = da.rio.write_crs(CRS)
    return da.chunk(chunks) if chunks else da


def random_polygons(rng: np.random.Generator, n: int, ny: int = 37, nx: int = 53) -> list:
    polys = []
    for _ in range(n):
        cx = X0 + rng.uniform(0.1, 0.9) * nx * RES
        cy = Y0 - rng.uniform(0.1, 0.9) * ny * RES
        k = rng.integers(5, 12)
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(20, 140, k)
        polys.append(Polygon(np.c_[cx + r * np.cos(ang), cy + r * np.sin(ang)]))
    return polys


def centre_reference(polys: list, grid: xr.DataArray) -> np.ndarray:
    """Glacier index by point-in-polygon on pixel centres, later polygons win."""
    xx, yy = np.meshgrid(grid.x.values, grid.y.values)
    ref = np.zeros(xx.shape, dtype=np.int32)
    for k, p in enumerate(polys, start=1):
        ref[shapely.contains_xy(p, xx, yy)] = k
    return ref


@pytest.fixture
def outlines() -> gpd.GeoDataFrame:
    polys = random_polygons(np.random.default_rng(0), 6)
    return gpd.GeoDataFrame({"rgi_id": [f"RGI2000-v7.0-G-11-{i:05d}" for i in range(6)]},
                            geometry=polys, crs=CRS)


# ----------------------------------------------------------------- read_outlines
@pytest.mark.parametrize("column", ["RGIId", "rgi_id", "glac_id", "GLIMSId", "id"])
def test_read_outlines_detects_id_column_and_keeps_it(column):
    gdf = gpd.GeoDataFrame({column: [11, 12], "area_km2": [1.0, 2.0]},
                           geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10)], crs=CRS)
    out = read_outlines(gdf)
    assert list(out["glacier_id"]) == ["11", "12"]
    assert column in out.columns and "area_km2" in out.columns
    assert out["glacier_id"].map(type).eq(str).all()


def test_read_outlines_makes_ids_when_none_present():
    gdf = gpd.GeoDataFrame({"name": ["a", "b", "c"]},
                           geometry=[box(i * 20, 0, i * 20 + 10, 10) for i in range(3)], crs=CRS)
    assert list(read_outlines(gdf)["glacier_id"]) == ["G0001", "G0002", "G0003"]


def test_read_outlines_explicit_id_column_and_missing_one():
    gdf = gpd.GeoDataFrame({"RGIId": ["a"], "other": ["z"]}, geometry=[box(0, 0, 1, 1)], crs=CRS)
    assert read_outlines(gdf, id_column="other")["glacier_id"].tolist() == ["z"]
    with pytest.raises(KeyError, match="nope"):
        read_outlines(gdf, id_column="nope")


def test_read_outlines_repairs_invalid_and_drops_non_polygons():
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    assert not bowtie.is_valid
    gdf = gpd.GeoDataFrame({"rgi_id": ["bow", "pt", "ok"]},
                           geometry=[bowtie, Point(5, 5), box(20, 0, 30, 10)], crs=CRS)
    with pytest.warns(UserWarning, match="pt"):
        out = read_outlines(gdf)
    assert list(out["glacier_id"]) == ["bow", "ok"]
    assert out.geometry.is_valid.all()
    assert set(out.geom_type) <= {"Polygon", "MultiPolygon"}
    assert out.area.iloc[0] == pytest.approx(50.0)  # two triangles of 25 m²
    assert list(out.index) == [0, 1]


def test_read_outlines_reprojects_and_reads_files(tmp_path, outlines):
    path = tmp_path / "o.gpkg"
    outlines.to_crs("EPSG:4326").to_file(path)
    out = read_outlines(path, crs=CRS)
    assert out.crs.to_epsg() == 32632
    assert list(out["glacier_id"]) == list(outlines["rgi_id"])
    np.testing.assert_allclose(out.area, outlines.area, rtol=1e-6)


def test_read_outlines_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_outlines(tmp_path / "missing.shp")
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(ValueError, match="no features"):
        read_outlines(empty)
    with pytest.raises(ValueError, match="no CRS"):
        read_outlines(gpd.GeoDataFrame({"rgi_id": ["a"]}, geometry=[box(0, 0, 1, 1)]))
    with pytest.raises(ValueError, match="no polygons"):
        read_outlines(gpd.GeoDataFrame({"rgi_id": ["a"]}, geometry=[Point(0, 0)], crs=CRS))
    with pytest.raises(ValueError, match="not unique"):
        read_outlines(gpd.GeoDataFrame({"rgi_id": ["a", "a"]},
                                       geometry=[box(0, 0, 1, 1), box(2, 0, 3, 1)], crs=CRS))


@pytest.mark.filterwarnings("ignore::xfacies.outlines.OverlapWarning")  # overlapping on purpose
# ----------------------------------------------------------------- rasterize
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rasterize_matches_point_in_polygon_on_pixel_centres(seed):
    polys = random_polygons(np.random.default_rng(seed), 7)  # overlapping ones too
    gdf = gpd.GeoDataFrame({"rgi_id": [f"g{i}" for i in range(7)]}, geometry=polys, crs=CRS)
    grid = make_grid()
    idx = rasterize(gdf, grid)
    assert idx.dtype == np.int32 and idx.dims == ("y", "x")
    assert idx.attrs["glacier_ids"] == [f"g{i}" for i in range(7)]
    assert idx.rio.crs.to_epsg() == 32632
    np.testing.assert_array_equal(idx.values, centre_reference(polys, grid))
    assert (idx.values > 0).sum() > 100  # the test is not vacuous


@pytest.mark.filterwarnings("ignore::xfacies.outlines.OverlapWarning")  # overlapping on purpose
@pytest.mark.parametrize("chunks", [{"y": 7, "x": 11}, {"y": 37, "x": 5}, {"y": 1, "x": 53},
                                    {"y": (10, 3, 24), "x": (20, 1, 32)}])
@pytest.mark.parametrize("all_touched", [False, True])
def test_rasterize_is_chunk_invariant(outlines, chunks, all_touched):
    eager = rasterize(outlines, make_grid(), all_touched=all_touched)
    lazy = rasterize(outlines, make_grid(chunks=chunks), all_touched=all_touched)
    assert lazy.chunks is not None  # stays lazy
    assert lazy.data.chunks == make_grid(chunks=chunks).data.chunks
    np.testing.assert_array_equal(lazy.values, eager.values)
    assert lazy.attrs == eager.attrs


@pytest.mark.filterwarnings("ignore::xfacies.outlines.OverlapWarning")  # overlapping on purpose
def test_rasterize_takes_the_chunks_it_is_given(outlines):
    """``chunks=`` (what features() passes: the cube's) gives the lazy result of a grid chunked that
    way, from an eager grid, and refuses chunks that do not tile the grid."""
    chunks = ((10, 3, 24), (20, 1, 32))
    eager = rasterize(outlines, make_grid())
    lazy = rasterize(outlines, make_grid(), chunks=chunks)
    assert lazy.data.chunks == chunks
    np.testing.assert_array_equal(lazy.values, eager.values)
    assert lazy.data.chunks == make_grid(chunks={"y": chunks[0], "x": chunks[1]}).data.chunks
    with pytest.raises(InputError, match="do not add up"):
        rasterize(outlines, make_grid(), chunks=((10,), (53,)))


def test_rasterize_all_touched_is_a_superset():
    poly = random_polygons(np.random.default_rng(5), 1)[0]
    gdf = gpd.GeoDataFrame({"rgi_id": ["a"]}, geometry=[poly], crs=CRS)
    centre = rasterize(gdf, make_grid()).values > 0
    touched = rasterize(gdf, make_grid(), all_touched=True).values > 0
    assert (touched >= centre).all() and touched.sum() > centre.sum()


def test_rasterized_area_is_close_to_polygon_area(outlines):
    disjoint = outlines.iloc[[0]]
    for k in range(1, len(outlines)):
        if not outlines.geometry.iloc[k].intersects(disjoint.union_all()):
            disjoint = outlines.iloc[list(disjoint.index) + [k]]
    idx = rasterize(disjoint, make_grid()).values
    for k, geom in enumerate(disjoint.geometry, start=1):
        area = (idx == k).sum() * RES * RES
        # error bounded by about one pixel row along the perimeter
        assert abs(area - geom.area) <= 0.5 * geom.length * RES


@pytest.mark.filterwarnings("ignore::xfacies.outlines.OverlapWarning")  # overlapping on purpose
def test_rasterize_reprojects_outlines(outlines):
    grid = make_grid()
    a = rasterize(outlines, grid).values
    b = rasterize(outlines.to_crs("EPSG:4326"), grid).values
    assert (a != b).mean() < 0.01  # only pixel centres within mm of an edge may differ


def test_rasterize_errors(outlines):
    far = outlines.set_geometry(outlines.translate(xoff=1e6))
    with pytest.raises(ValueError, match="do not overlap") as info:
        rasterize(far, make_grid())
    assert "600000.0" in str(info.value) and "EPSG:32632" in str(info.value)
    with pytest.raises(ValueError, match="no CRS"):
        rasterize(outlines, make_grid().drop_vars("spatial_ref"))


@pytest.mark.filterwarnings("ignore::xfacies.outlines.OverlapWarning")  # overlapping on purpose
def test_rasterize_accepts_a_dataset_and_south_up_grid(outlines):
    grid = make_grid()
    ref = rasterize(outlines, grid).values
    ds = xr.Dataset({"a": grid.astype("float32")}).chunk({"y": 9, "x": 13})
    np.testing.assert_array_equal(rasterize(outlines, ds).values, ref)
    flipped = grid.isel(y=slice(None, None, -1))
    np.testing.assert_array_equal(rasterize(outlines, flipped).values, ref[::-1])


# ----------------------------------------------------------------- bboxes
def test_glacier_bboxes(outlines):
    bb = glacier_bboxes(outlines, buffer=15)
    np.testing.assert_allclose(bb.to_numpy(), outlines.bounds.to_numpy() + [-15, -15, 15, 15])
    assert list(bb.index) == list(outlines["rgi_id"])
    ll = outlines.to_crs("EPSG:4326")
    bb2 = glacier_bboxes(ll, like=make_grid())
    np.testing.assert_allclose(bb2.to_numpy(), ll.to_crs(CRS).bounds.to_numpy())
    assert bb2.attrs["crs"] == "EPSG:32632"

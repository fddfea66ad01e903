"""The reading side of xfacies.caffe: file names, the synthetic benchmark, the lazy DataTree
(raw and resized layouts), index/select, georeferencing from the metadata CSV, and the real
256-px derivative in ../shared (skipped when absent)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import subprocess
import sys
import warnings
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

import xfacies.caffe as caffe
from xfacies.caffe.names import GLACIER_EXTENT_KM
from xfacies.caffe import dataset as caffe_dataset
from xfacies.caffe.names import Stem, parse_stem

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CAFFE256 = SHARED / "data" / "caffe-256"

# Honest oracles, written out here rather than read from xfacies.catalog.
GREY_TO_ID = {0: 0, 64: 1, 127: 2, 254: 3}
RESIZED_TO_ID = {1: 0, 2: 1, 3: 2, 4: 3}
EPSG = {"COL": 32606, "JAC": 32622}  # all other glaciers: 3031
INDEX_COLUMNS = ["glacier", "date", "satellite", "sensor", "resolution", "quality", "orbit", "split",
                 "hemisphere", "season", "height", "width", "pixel_size", "has_bbox"]


def png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def files(root: Path, folder: str, split: str | None = None) -> list[Path]:
    base = root / "data_raw" / folder / split if split else root / folder
    return sorted(base.glob("*.png"))


def raw_images(root: Path) -> dict[str, tuple[str, Path]]:
    """{stem: (split, sar path)} of a raw synthetic benchmark, listed independently."""
    return {p.stem: (split, p) for split in ("train", "test")
            for p in files(root, "sar_images", split)}


def mapped(values: np.ndarray, table: dict[int, int]) -> np.ndarray:
    out = np.full(values.shape, -1, dtype=np.int8)
    for code, zone_id in table.items():
        out[values == code] = zone_id
    assert (out >= 0).all()
    return out


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    return caffe.make_synthetic(tmp_path_factory.mktemp("raw"), n=12, seed=0, metadata=True)


@pytest.fixture(scope="module")
def resized_root(tmp_path_factory) -> Path:
    return caffe.make_synthetic(tmp_path_factory.mktemp("resized"), layout="resized", n=8, seed=3,
                                metadata=True)


@pytest.fixture(scope="module")
def raw_tree(raw_root) -> xr.DataTree:
    return caffe.open_dataset(raw_root)


@pytest.fixture
def counted_reads(monkeypatch) -> list[str]:
    """Every PNG decode by the dataset's reader (patched before open_dataset)."""
    calls: list[str] = []
    original = caffe_dataset._read_png

    def counting(path, *args, **kwargs):
        calls.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(caffe_dataset, "_read_png", counting)
    return calls


# ---------------------------------------------------------------------------------------------
# file names


def test_parse_stem_reads_every_field():
    s = parse_stem("JAC_2009-09-01_TSX_6_1_005")
    assert s == Stem("JAC", dt.date(2009, 9, 1), "TSX", 6, 1, "005")
    assert (s.glacier, s.date, s.satellite, s.resolution, s.quality, s.orbit) == (
        "JAC", dt.date(2009, 9, 1), "TSX", 6, 1, "005")
    assert isinstance(s.resolution, int) and isinstance(s.quality, int) and isinstance(s.orbit, str)
    assert s.stem == str(s) == "JAC_2009-09-01_TSX_6_1_005"
    assert (s.hemisphere, s.season, s.sensor) == ("north", "winter", "TSX/TDX")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.glacier = "COL"  # type: ignore[misc]


@pytest.mark.parametrize("name", [
    "Mapple_2008-10-02_ENVISAT_20_3_158",
    "Mapple_2008-10-02_ENVISAT_20_3_158.png",
    "Mapple_2008-10-02_ENVISAT_20_3_158_zones.png",
    "Mapple_2008-10-02_ENVISAT_20_3_158_front.png",
    "Mapple_2008-10-02_ENVISAT_20_3_158_front",
    "data_raw/fronts/test/Mapple_2008-10-02_ENVISAT_20_3_158_front.png",
    Path("/data/caffe/sar_images/test/Mapple_2008-10-02_ENVISAT_20_3_158.png"),
])
def test_parse_stem_accepts_names_files_and_paths(name):
    s = parse_stem(name)
    assert s.stem == "Mapple_2008-10-02_ENVISAT_20_3_158"
    assert (s.glacier, s.satellite, s.resolution, s.quality, s.orbit) == ("Mapple", "ENVISAT", 20, 3, "158")
    assert (s.hemisphere, s.season, s.sensor) == ("south", "summer", "ENVISAT")


@pytest.mark.parametrize("glacier", ["COL", "JAC"])
@pytest.mark.parametrize("month, season", [(1, "winter"), (3, "winter"), (4, "summer"), (8, "summer"),
                                           (9, "winter"), (12, "winter")])
def test_northern_season_boundaries(glacier, month, season):
    s = parse_stem(f"{glacier}_2015-{month:02d}-15_S1_20_2_010")
    assert s.hemisphere == "north"
    assert s.season == season


@pytest.mark.parametrize("glacier", ["Mapple", "Crane", "Jorum", "DBE", "SI"])
@pytest.mark.parametrize("month, season", [(1, "summer"), (3, "summer"), (4, "winter"), (8, "winter"),
                                           (9, "summer"), (12, "summer")])
def test_southern_season_boundaries(glacier, month, season):
    s = parse_stem(f"{glacier}_2015-{month:02d}-15_S1_20_2_010")
    assert s.hemisphere == "south"
    assert s.season == season


@pytest.mark.parametrize("satellite, sensor", [("TSX", "TSX/TDX"), ("TDX", "TSX/TDX"), ("S1", "S1"),
                                               ("ERS", "ERS"), ("RSAT", "RSAT"), ("PALSAR", "PALSAR"),
                                               ("ENVISAT", "ENVISAT")])
def test_sensor_merges_terrasar_and_tandem(satellite, sensor):
    assert parse_stem(f"DBE_2012-02-01_{satellite}_7_2_100").sensor == sensor


@pytest.mark.parametrize("name, token, expected", [
    ("JAC_2009-13-01_TSX_6_1_005", "'2009-13-01'", "YYYY-MM-DD"),
    ("JAC_2009-02-30_TSX_6_1_005", "'2009-02-30'", "YYYY-MM-DD"),
    ("JAC_20090901_TSX_6_1_005", "'20090901'", "YYYY-MM-DD"),
    ("JAC_2009-09-01_LANDSAT_6_1_005", "'LANDSAT'", "ERS, RSAT, ENVISAT, PALSAR, TSX, TDX, S1"),
    ("JAC_2009-09-01_TSX_six_1_005", "'six'", "resolution"),
    ("JAC_2009-09-01_TSX_0_1_005", "'0'", "resolution"),
    ("JAC_2009-09-01_TSX_6_0_005", "'0'", "quality factor 1-6"),
    ("JAC_2009-09-01_TSX_6_7_005", "'7'", "quality factor 1-6"),
    ("JAC_2009-09-01_TSX_6_1_05", "'05'", "3-digit orbit"),
    ("JAC_2009-09-01_TSX_6_1_0051", "'0051'", "3-digit orbit"),
    ("JAC_2009-09-01_TSX_6_1", "5 '_'-separated token(s)", "expected 6"),
    ("JAC_2009-09-01_TSX_6_1_005_extra.png", "7 '_'-separated token(s)", "expected 6"),
    ("scene.png", "1 '_'-separated token(s)", "expected 6"),
])
def test_parse_stem_errors_name_the_token_and_what_was_expected(name, token, expected):
    with pytest.raises(ValueError) as err:
        parse_stem(name)
    msg = str(err.value)
    assert token in msg and expected in msg
    assert "<glacier>_<YYYY-MM-DD>_<satellite>_<resolution>_<quality>_<orbit>" in msg


def test_parse_stem_refuses_non_strings():
    with pytest.raises(TypeError, match="string or a path"):
        parse_stem(20090901)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# the synthetic benchmark


def test_synthetic_raw_files_follow_the_benchmark(raw_root):
    images = raw_images(raw_root)
    assert len(images) == 12
    sizes = set()
    for stem, (split, sar_path) in images.items():
        s = parse_stem(stem)
        assert s.stem == stem
        assert split == ("test" if s.glacier in ("COL", "Mapple") else "train")
        sar = png(sar_path)
        zones = png(raw_root / "data_raw" / "zones" / split / f"{stem}_zones.png")
        front = png(raw_root / "data_raw" / "fronts" / split / f"{stem}_front.png")
        assert sar.dtype == zones.dtype == front.dtype == np.uint8
        assert sar.shape == zones.shape == front.shape and sar.shape[0] != sar.shape[1]
        assert all(40 <= n <= 120 for n in sar.shape)
        sizes.add(sar.shape)
        assert (sar == 0).any() and (sar > 0).mean() > 0.5
        assert set(np.unique(zones)) == {0, 64, 127, 254}
        assert set(np.unique(front)) == {0, 255}
        # the front is the 1-pixel line of ocean pixels next to the glacier
        ocean, glacier = zones == 254, np.pad(zones == 127, 1)
        near = glacier[:-2, 1:-1] | glacier[2:, 1:-1] | glacier[1:-1, :-2] | glacier[1:-1, 2:]
        np.testing.assert_array_equal(front == 255, ocean & near)
        box = (raw_root / "data_raw" / "bounding_boxes" / f"{stem}_bbox.txt").read_text().splitlines()
        assert len(box) == 5
        corners = np.array([[int(v) for v in line.split(",")] for line in box[1:]])
        (x0, y0), (x0b, y1), (x1, y1b), (x1b, y0b) = corners
        assert (x0, y1, x1, y0) == (x0b, y1b, x1b, y0b) and x0 < x1 and y0 < y1
        rows, cols = np.nonzero(front)
        assert x0 <= cols.min() and cols.max() <= x1 and y0 <= rows.min() and rows.max() <= y1
    assert len(sizes) == 12  # every image has its own size
    satellites = {parse_stem(s).satellite for s in images}
    assert satellites == {"ERS", "RSAT", "ENVISAT", "PALSAR", "TSX", "TDX", "S1"}


def test_synthetic_resized_files_use_class_ids(resized_root):
    sars = files(resized_root, "sar_images")
    assert len(sars) == 8
    assert {parse_stem(p).glacier for p in sars} == {"Crane", "DBE", "JAC", "Jorum"}
    for p in sars:
        zones = png(resized_root / "zones" / f"{p.stem}_zones.png")
        assert set(np.unique(zones)) <= {1, 2, 3, 4} and {3, 4} <= set(np.unique(zones))
        assert set(np.unique(png(resized_root / "fronts" / f"{p.stem}_front.png"))) == {0, 255}
    assert not (resized_root / "bounding_boxes").exists()


def test_synthetic_is_deterministic(tmp_path):
    a = caffe.make_synthetic(tmp_path / "a", n=12, seed=5, metadata=True)
    b = caffe.make_synthetic(tmp_path / "b", n=12, seed=5, metadata=True)
    c = caffe.make_synthetic(tmp_path / "c", n=12, seed=6)
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert sorted(p.name for p in c.rglob("*.png")) != sorted(p.name for p in a.rglob("*.png"))


def test_synthetic_refuses_to_mix_with_existing_files(tmp_path):
    caffe.make_synthetic(tmp_path, n=3)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        caffe.make_synthetic(tmp_path, n=2)
    caffe.make_synthetic(tmp_path, n=2, overwrite=True)
    assert len(caffe.open_dataset(tmp_path).children) == 2


def test_synthetic_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="'raw'.*'resized'"):
        caffe.make_synthetic(tmp_path, layout="flat")
    with pytest.raises(ValueError, match="positive number"):
        caffe.make_synthetic(tmp_path, n=0)
    with pytest.raises(ValueError, match="glacier tokens"):
        caffe.make_synthetic(tmp_path, glaciers=["Jakob_shavn"])


def test_synthetic_metadata_csv_is_latin1_semicolon(raw_root):
    text = (raw_root / "meta_data.csv").read_bytes()
    assert "Isbr\u00e6".encode("latin-1") in text  # latin-1, not UTF-8
    table = pd.read_csv(raw_root / "meta_data.csv", sep=";", encoding="latin-1")
    assert list(table.columns) == ["image_name", "date", "glacier_name", "sensor", "resolution (m)",
                                   "Coordinate system", "Bounding box coordinates"]
    assert sorted(table.image_name) == sorted(raw_images(raw_root))
    assert table.date.str.fullmatch(r"\d{2}\.\d{2}\.\d{4}").all()
    assert table["Bounding box coordinates"].str.startswith("left=").all()


# ---------------------------------------------------------------------------------------------
# open_dataset: raw layout


def test_open_raw_has_one_node_per_image_with_the_files_values(raw_root, raw_tree):
    images = raw_images(raw_root)
    assert sorted(raw_tree.children) == sorted(images)
    for stem, (split, sar_path) in images.items():
        node = raw_tree[stem]
        assert set(node.data_vars) == {"sar", "zones", "front", "bbox"}
        ds = node.to_dataset().compute()
        sar = png(sar_path)
        assert ds.sar.dims == ds.zones.dims == ds.front.dims == ("y", "x")
        assert (ds.sar.dtype, ds.zones.dtype, ds.front.dtype) == (np.uint8, np.int8, np.bool_)
        assert ds.sar.shape == sar.shape
        np.testing.assert_array_equal(ds.sar.values, sar)
        zones = png(raw_root / "data_raw" / "zones" / split / f"{stem}_zones.png")
        np.testing.assert_array_equal(ds.zones.values, mapped(zones, GREY_TO_ID))
        front = png(raw_root / "data_raw" / "fronts" / split / f"{stem}_front.png")
        np.testing.assert_array_equal(ds.front.values, front == 255)
        lines = (raw_root / "data_raw" / "bounding_boxes" / f"{stem}_bbox.txt").read_text().split()
        corners = [[int(v) for v in line.split(",")] for line in lines[1:]]
        assert ds.bbox.dims == ("corner", "xy")
        assert ds.bbox["corner"].values.tolist() == ["upper_left", "lower_left", "lower_right",
                                                     "upper_right"]
        assert ds.bbox["xy"].values.tolist() == ["x", "y"]
        assert np.issubdtype(ds.bbox.dtype, np.integer)
        assert ds.bbox.values.tolist() == corners
        assert "x" not in ds.coords and "y" not in ds.coords  # not georeferenced
    shapes = {raw_tree[s]["sar"].shape for s in images}
    assert len(shapes) == len(images) and all(h != w for h, w in shapes)


def test_open_raw_node_attributes(raw_tree):
    stem = next((s for s in raw_tree.children if "_TSX_" in s), next(iter(raw_tree.children)))
    node = raw_tree[stem]
    s = parse_stem(stem)
    a = node.attrs
    expected = {"stem": stem, "glacier": s.glacier, "date": s.date.isoformat(), "satellite": s.satellite,
                "sensor": s.sensor, "resolution": s.resolution, "quality": s.quality, "orbit": s.orbit,
                "hemisphere": s.hemisphere, "season": s.season, "layout": "raw",
                "pixel_size": float(s.resolution), "pixel_size_x": float(s.resolution),
                "pixel_size_y": float(s.resolution)}
    assert {k: a[k] for k in expected} == expected
    assert a["split"] in ("train", "test")
    assert Path(a["source"]).is_absolute() and Path(a["source"]).name == f"{stem}.png"
    assert node["zones"].attrs["flag_meanings"] == "NA rock glacier ocean"
    assert node["zones"].attrs["flag_values"].tolist() == [0, 1, 2, 3]
    assert node["zones"].attrs["source"].endswith(f"{stem}_zones.png")
    assert node["front"].attrs["source"].endswith(f"{stem}_front.png")
    assert node["sar"].attrs["nodata"] == 0 and "no data" in node["sar"].attrs["comment"]
    root = raw_tree.attrs
    assert root["layout"] == "raw" and Path(root["root"]).name == "data_raw"
    assert "10.5194/essd-14-4287-2022" in root["citation"] and "PANGAEA.940950" in root["citation"]
    assert "CC BY 4.0" in root["citation"] and root["license"] == "CC BY 4.0"
    assert root["n_images"] == 12


def test_open_raw_from_root_or_data_raw(raw_root, raw_tree):
    again = caffe.open_dataset(raw_root / "data_raw")
    assert list(again.children) == list(raw_tree.children)
    assert again.attrs["root"] == raw_tree.attrs["root"]


@pytest.mark.parametrize("split", ["train", "test"])
def test_split_filter(raw_root, split):
    tree = caffe.open_dataset(raw_root, split=split)
    expected = {s for s, (sp, _) in raw_images(raw_root).items() if sp == split}
    assert set(tree.children) == expected and expected
    assert {tree[s].attrs["split"] for s in tree.children} == {split}
    only_test_glaciers = {tree[s].attrs["glacier"] for s in tree.children} <= {"COL", "Mapple"}
    assert only_test_glaciers == (split == "test")
    assert tree.attrs["split"] == split


@pytest.mark.parametrize("split", ["validation", "Train", "all", ""])
def test_bad_split_is_refused(raw_root, split):
    with pytest.raises(ValueError, match=r"'train', 'test' or None"):
        caffe.open_dataset(raw_root, split=split)


# ---------------------------------------------------------------------------------------------
# open_dataset: resized layout


def test_open_resized(resized_root):
    tree = caffe.open_dataset(resized_root)
    sars = files(resized_root, "sar_images")
    assert sorted(tree.children) == sorted(p.stem for p in sars)
    assert tree.attrs["layout"] == "resized"
    for p in sars:
        node = tree[p.stem]
        assert set(node.data_vars) == {"sar", "zones", "front"}  # no bounding boxes
        assert node.attrs["split"] == "train" and node.attrs["layout"] == "resized"  # training glaciers
        # each glacier's images cover one fixed area: the pixel size follows from the image size
        w_km, h_km = GLACIER_EXTENT_KM[node.attrs["glacier"]]
        h, w = node["sar"].shape
        assert node.attrs["pixel_size_x"] == pytest.approx(1000 * w_km / w)
        assert node.attrs["pixel_size_y"] == pytest.approx(1000 * h_km / h)
        assert node.attrs["resolution"] == parse_stem(p).resolution
        ds = node.to_dataset().compute()
        np.testing.assert_array_equal(ds.sar.values, png(p))
        zones = png(resized_root / "zones" / f"{p.stem}_zones.png")
        np.testing.assert_array_equal(ds.zones.values, mapped(zones, RESIZED_TO_ID))
        front = png(resized_root / "fronts" / f"{p.stem}_front.png")
        np.testing.assert_array_equal(ds.front.values, front == 255)
    assert len({tree[s]["sar"].shape for s in tree.children}) == len(sars)
    assert len(caffe.open_dataset(resized_root, split="train").children) == len(sars)
    with pytest.raises(ValueError, match="no CaFFe images for split='test'"):
        caffe.open_dataset(resized_root, split="test")  # Crane, DBE, JAC, Jorum: no test glacier


# ---------------------------------------------------------------------------------------------
# laziness


def test_open_reads_no_pixels(raw_root, counted_reads):
    tree = caffe.open_dataset(raw_root)
    df = caffe.index(tree)
    sub = caffe.select(tree, df[df.split == "test"])
    assert counted_reads == []
    for stem in tree.children:
        for name in ("sar", "zones", "front"):
            assert dask.is_dask_collection(tree[stem][name].data)
            assert tree[stem][name].chunks == tuple((n,) for n in tree[stem][name].shape)
    assert dask.is_dask_collection(sub[df.index[df.split == "test"][0]]["zones"].data)
    stem = df.index[0]
    tree[stem].to_dataset().compute()
    assert sorted(Path(p).name for p in counted_reads) == sorted(
        [f"{stem}.png", f"{stem}_zones.png", f"{stem}_front.png"])


def test_a_file_deleted_or_corrupted_after_open_fails_only_at_compute(tmp_path):
    root = caffe.make_synthetic(tmp_path, n=4, seed=2)
    tree = caffe.open_dataset(root)
    first, second, third = list(tree.children)[:3]
    sar = Path(tree[first].attrs["source"])
    sar.unlink()
    zones = Path(tree[second]["zones"].attrs["source"])
    zones.write_bytes(b"\x89PNG not really")
    with pytest.raises(FileNotFoundError, match=sar.name):
        tree[first]["sar"].compute()
    with pytest.raises(OSError, match=zones.name):
        tree[second]["zones"].compute()
    tree[first]["zones"].compute()  # the others still read
    tree[third].to_dataset().compute()


def test_chunks_are_passed_on(raw_root, raw_tree):
    tree = caffe.open_dataset(raw_root, chunks={"y": 16})
    stem = next(iter(tree.children))
    arr = tree[stem]["zones"]
    assert arr.chunks[0][0] == 16 and len(arr.chunks[1]) == 1
    np.testing.assert_array_equal(arr.values, raw_tree[stem]["zones"].values)
    tree = caffe.open_dataset(raw_root, chunks=20)
    assert tree[stem]["sar"].chunks[1][0] == 20
    with pytest.raises(ValueError, match="'y' and 'x'"):
        caffe.open_dataset(raw_root, chunks={"row": 16})


# ---------------------------------------------------------------------------------------------
# index and select


def test_index_lists_every_image_without_reading_pixels(raw_root, counted_reads):
    tree = caffe.open_dataset(raw_root)
    df = caffe.index(tree)
    assert counted_reads == []
    images = raw_images(raw_root)
    assert list(df.columns) == INDEX_COLUMNS
    assert df.index.name == "stem" and sorted(df.index) == sorted(images)
    assert df["date"].dtype.kind == "M"
    assert all(df[c].dtype == np.int64 for c in ("resolution", "quality", "height", "width"))
    assert df["pixel_size"].dtype == np.float64 and df["has_bbox"].dtype == bool
    for stem, row in df.iterrows():
        s = parse_stem(stem)
        split, path = images[stem]
        with Image.open(path) as im:
            width, height = im.size
        assert (row.glacier, row.date, row.satellite, row.sensor, row.resolution, row.quality, row.orbit,
                row.split, row.hemisphere, row.season, row.height, row.width, row.pixel_size,
                row.has_bbox) == (s.glacier, pd.Timestamp(s.date), s.satellite, s.sensor, s.resolution,
                                  s.quality, s.orbit, split, s.hemisphere, s.season, height, width,
                                  float(s.resolution), True)
    expected = sorted(s for s, (split, _) in images.items()
                      if split == "test" and parse_stem(s).satellite == "S1")
    assert expected  # the synthetic benchmark has a Sentinel-1 test image
    assert sorted(df[(df.split == "test") & (df.satellite == "S1")].index) == expected


def test_index_of_resized_layout(resized_root):
    df = caffe.index(caffe.open_dataset(resized_root))
    assert not df.has_bbox.any() and (df.split == "train").all()  # Crane, DBE, JAC, Jorum: training glaciers
    ext = df.glacier.map(GLACIER_EXTENT_KM)
    np.testing.assert_allclose(df.pixel_size, [1000 * np.sqrt(w * h / (W * H)) for (w, h), W, H
                                               in zip(ext, df.width, df.height)])


def test_select_by_frame_series_and_stems(raw_root, counted_reads):
    tree = caffe.open_dataset(raw_root)
    df = caffe.index(tree)
    test_s1 = df[(df.split == "test") & (df.satellite == "S1")]
    sub = caffe.select(tree, test_s1)
    assert list(sub.children) == list(test_s1.index)
    assert caffe.index(sub).equals(test_s1)
    assert sub.attrs["citation"] == tree.attrs["citation"] and sub.attrs["n_images"] == len(test_s1)

    north = caffe.select(tree, df.hemisphere == "north")
    assert sorted(north.children) == sorted(df.index[df.glacier.isin(["COL", "JAC"])])

    order = list(df.index[::-1][:3])
    assert list(caffe.select(tree, order).children) == order
    assert list(caffe.select(tree, order[0]).children) == [order[0]]
    assert list(caffe.select(tree, pd.Index(order)).children) == order
    assert counted_reads == []
    node = caffe.select(tree, order[:1])[order[0]]
    np.testing.assert_array_equal(node["zones"].values, tree[order[0]]["zones"].values)


def test_select_unknown_stems_lists_valid_ones(raw_tree):
    with pytest.raises(KeyError) as err:
        caffe.select(raw_tree, ["JAC_1999-01-01_ERS_20_1_001", next(iter(raw_tree.children))])
    msg = str(err.value)
    assert "JAC_1999-01-01_ERS_20_1_001" in msg and "valid stems include" in msg
    assert list(raw_tree.children)[0] in msg and "12 images" in msg


def test_index_refuses_other_trees():
    tree = xr.DataTree.from_dict({"a": xr.Dataset({"v": ("x", [1])})})
    with pytest.raises(ValueError, match="not a CaFFe image node"):
        caffe.index(tree)


# ---------------------------------------------------------------------------------------------
# georeferencing


def _bounds(root: Path) -> dict[str, tuple[float, ...]]:
    table = pd.read_csv(root / "meta_data.csv", sep=";", encoding="latin-1")
    out = {}
    for name, text in zip(table.image_name, table["Bounding box coordinates"]):
        parts = dict(p.strip().split("=") for p in text.split(","))
        out[name] = tuple(float(parts[k]) for k in ("left", "bottom", "right", "top"))
    return out


@pytest.mark.parametrize("layout", ["raw", "resized"])
def test_metadata_georeferences_north_up(layout, raw_root, resized_root):
    root = raw_root if layout == "raw" else resized_root
    tree = caffe.open_dataset(root, metadata=root / "meta_data.csv")
    bounds = _bounds(root)
    assert tree.attrs["metadata"].endswith("meta_data.csv")
    for stem in tree.children:
        node = tree[stem]
        left, bottom, right, top = bounds[stem]
        h, w = node["sar"].shape
        x, y = node["x"].values, node["y"].values
        assert len(x) == w and len(y) == h
        dx, dy = (right - left) / w, (top - bottom) / h
        np.testing.assert_allclose(np.diff(x), dx)
        np.testing.assert_allclose(np.diff(y), -dy)  # y decreasing: north-up
        np.testing.assert_allclose([x[0], y[0]], [left + dx / 2, top - dy / 2])
        for name in ("sar", "zones", "front"):
            assert node[name].rio.crs.to_epsg() == EPSG.get(node.attrs["glacier"], 3031)
        np.testing.assert_allclose(node["sar"].rio.bounds(), (left, bottom, right, top))
        if layout == "raw":
            assert node.attrs["pixel_size"] == node.attrs["resolution"]
        else:
            assert node.attrs["pixel_size_x"] == pytest.approx(dx)
            assert node.attrs["pixel_size_y"] == pytest.approx(dy)
            assert node.attrs["pixel_size"] == pytest.approx(np.sqrt(dx * dy))
            assert dx > node.attrs["resolution"]  # resized: coarser than the original pixels
        assert dask.is_dask_collection(node["sar"].data)
    df = caffe.index(tree)
    if layout == "resized":
        assert df.pixel_size.notna().all()


def test_images_missing_from_the_metadata_stay_plain(tmp_path, raw_root):
    table = pd.read_csv(raw_root / "meta_data.csv", sep=";", encoding="latin-1", dtype=str)
    table.iloc[2:].to_csv(tmp_path / "meta.csv", sep=";", encoding="latin-1", index=False)
    with pytest.warns(caffe_dataset.MissingGeoreferenceWarning, match="2 of 12 images"):
        tree = caffe.open_dataset(raw_root, metadata=tmp_path / "meta.csv")
    missing = set(table.image_name[:2])
    for stem in tree.children:
        assert ("x" in tree[stem].coords) == (stem not in missing)


@pytest.mark.parametrize("crs", ["EPSG:3031", "3031", "epsg:3031", "WGS 84 / Antarctic Polar Stereographic"])
def test_metadata_crs_spellings(tmp_path, raw_root, crs):
    table = pd.read_csv(raw_root / "meta_data.csv", sep=";", encoding="latin-1", dtype=str)
    table["Coordinate system"] = crs
    table.to_csv(tmp_path / "meta.csv", sep=";", encoding="latin-1", index=False)
    tree = caffe.open_dataset(raw_root, metadata=tmp_path / "meta.csv")
    assert {tree[s]["zones"].rio.crs.to_epsg() for s in tree.children} == {3031}


@pytest.mark.parametrize("column, value, match", [
    ("Coordinate system", "Mercator-ish", r"line 4 .*coordinate system 'Mercator-ish' is not a CRS"),
    ("Bounding box coordinates", "left=1, bottom=2", r"line 4 .*is not 'left=..., bottom=..., right=..., top=...'"),
    ("Bounding box coordinates", "left=10, bottom=2, right=5, top=8", r"line 4 .*right > left"),
    ("image_name", "not-an-image", r"line 4 .*not a CaFFe file name"),
])
def test_bad_metadata_rows_are_named(tmp_path, raw_root, column, value, match):
    table = pd.read_csv(raw_root / "meta_data.csv", sep=";", encoding="latin-1", dtype=str)
    table.loc[2, column] = value
    table.to_csv(tmp_path / "meta.csv", sep=";", encoding="latin-1", index=False)
    with pytest.raises(ValueError, match=match):
        caffe.open_dataset(raw_root, metadata=tmp_path / "meta.csv")


def test_metadata_without_the_columns_is_refused(tmp_path, raw_root):
    (tmp_path / "meta.csv").write_text("name,crs\nx,3031\n")
    with pytest.raises(ValueError, match="lacks column"):
        caffe.open_dataset(raw_root, metadata=tmp_path / "meta.csv")


# ---------------------------------------------------------------------------------------------
# errors


def _save(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.mark.parametrize("layout, bad, allowed", [("raw", 5, "[0, 64, 127, 254]"),
                                                  ("raw", 1, "[0, 64, 127, 254]"),
                                                  ("resized", 0, "[1, 2, 3, 4]"),
                                                  ("resized", 64, "[1, 2, 3, 4]")])
def test_zone_values_outside_the_set_fail_at_compute(tmp_path, layout, bad, allowed):
    root = caffe.make_synthetic(tmp_path, layout=layout, n=2)
    tree = caffe.open_dataset(root)
    stem = next(iter(tree.children))
    path = Path(tree[stem]["zones"].attrs["source"])
    zones = png(path).copy()
    zones[0, :3] = bad
    _save(zones, path)
    tree = caffe.open_dataset(root)  # opening does not look at the values
    with pytest.raises(ValueError) as err:
        tree[stem]["zones"].compute()
    msg = str(err.value)
    assert str(path) in msg and f"[{bad}]" in msg and allowed in msg and layout in msg


def test_front_values_outside_0_255_fail_at_compute(tmp_path):
    root = caffe.make_synthetic(tmp_path, n=2)
    tree = caffe.open_dataset(root)
    stem = next(iter(tree.children))
    path = Path(tree[stem]["front"].attrs["source"])
    front = png(path).copy()
    front[1, 1] = 128
    _save(front, path)
    with pytest.raises(ValueError, match=rf"{path.name}: front values \[128\].*\[0, 255\]"):
        caffe.open_dataset(root)[stem]["front"].compute()


def test_mask_of_another_size_fails_at_open(tmp_path):
    root = caffe.make_synthetic(tmp_path, n=2)
    stem, (split, sar) = next(iter(raw_images(root).items()))
    h, w = png(sar).shape
    _save(np.full((h + 3, w), 127), root / "data_raw" / "zones" / split / f"{stem}_zones.png")
    with pytest.raises(ValueError) as err:
        caffe.open_dataset(root)
    msg = str(err.value)
    assert stem in msg and f"{w} x {h + 3} px" in msg and f"{w} x {h} px" in msg


def test_missing_mask_file_is_named_but_a_missing_folder_is_allowed(tmp_path):
    import shutil

    root = caffe.make_synthetic(tmp_path, n=4)
    stem, (split, _) = next(iter(raw_images(root).items()))
    front = root / "data_raw" / "fronts" / split / f"{stem}_front.png"
    front.unlink()
    with pytest.raises(FileNotFoundError, match=f"front mask of image '{stem}' is missing.*{front.name}"):
        caffe.open_dataset(root)
    shutil.rmtree(root / "data_raw" / "fronts")
    shutil.rmtree(root / "data_raw" / "zones" / "test")
    tree = caffe.open_dataset(root)
    for s in tree.children:
        assert "front" not in tree[s].data_vars
        assert ("zones" in tree[s].data_vars) == (tree[s].attrs["split"] == "train")


def test_badly_named_png_is_named(tmp_path):
    root = caffe.make_synthetic(tmp_path, n=2)
    _save(np.zeros((4, 5)), root / "data_raw" / "sar_images" / "train" / "scene_01.png")
    with pytest.raises(ValueError, match=r"scene_01\.png.*not a CaFFe file name.*rename or remove"):
        caffe.open_dataset(root)


def test_bad_bbox_file_is_named(tmp_path):
    root = caffe.make_synthetic(tmp_path, n=2)
    path = next((root / "data_raw" / "bounding_boxes").iterdir())
    path.write_text("x,y\n1,2\n3,4\n")
    with pytest.raises(ValueError, match=rf"{path.name}: a bounding-box file holds 1 header line then 4"):
        caffe.open_dataset(root)


def test_unknown_layout_says_what_was_expected_and_found(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError) as err:
        caffe.open_dataset(tmp_path)
    msg = str(err.value)
    assert "neither CaFFe layout" in msg and "sar_images/{train,test}" in msg
    assert "images/" in msg and "notes.txt" in msg
    (tmp_path / "sar_images").mkdir()
    with pytest.raises(ValueError, match="sar_images/ holds: nothing"):
        caffe.open_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        caffe.open_dataset(tmp_path / "absent")


def test_empty_split_is_refused(tmp_path):
    root = caffe.make_synthetic(tmp_path, n=2, glaciers=["Crane"])
    with pytest.raises(ValueError, match="no CaFFe images for split='test'"):
        caffe.open_dataset(root, split="test")


# ---------------------------------------------------------------------------------------------
# the package


def test_import_is_lazy():
    code = ("import sys, xfacies.caffe as c; before = sorted(m for m in ('PIL', 'keras', 'tensorflow', "
            "'rioxarray', 'xfacies.caffe.dataset') if m in sys.modules); c.parse_stem; "
            "print(before, 'xfacies.caffe.dataset' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] False"


def test_public_names():
    for name in ("parse_stem", "Stem", "open_dataset", "index", "select", "make_synthetic"):
        assert callable(getattr(caffe, name)) and name in caffe.__all__ and name in dir(caffe)
    for name in ("zones_to_front", "front_errors", "evaluate", "segment", "thumbnail", "overlay",
                 "gallery", "to_fiftyone"):
        assert name in caffe.__all__  # their modules are imported on first use
    assert caffe.names.parse_stem is caffe.parse_stem  # submodules as attributes
    with pytest.raises(AttributeError):
        caffe.no_such_name


# ---------------------------------------------------------------------------------------------
# the real 256-px derivative (../shared, skipped when absent)


@pytest.fixture(scope="module")
def real_tree() -> xr.DataTree:
    if not (CAFFE256 / "sar_images").is_dir():
        pytest.skip(f"../shared/data/caffe-256 absent ({CAFFE256}): the real CaFFe images are only on "
                    "the project's development machines")
    return caffe.open_dataset(CAFFE256)


@pytest.mark.shared
def test_real_resized_index(real_tree):
    df = caffe.index(real_tree)
    assert len(real_tree.children) == len(df) == 438
    assert df.glacier.value_counts().to_dict() == {"JAC": 159, "DBE": 133, "Jorum": 77, "Crane": 69}
    assert (df.height == 256).all() and (df.width == 256).all()
    assert (df.split == "train").all() and not df.has_bbox.any()
    # pixel sizes from each glacier's fixed extent (caffe.md): e.g. Crane 19 x 25 km at 256 px
    crane = real_tree[df.index[df.glacier == "Crane"][0]].attrs
    assert (crane["pixel_size_x"], crane["pixel_size_y"]) == pytest.approx((19000 / 256, 25000 / 256))
    assert set(df.resolution) <= {6, 7, 12, 17, 20}
    jac = df[df.glacier == "JAC"]
    assert (jac.hemisphere == "north").all() and (df[df.glacier != "JAC"].hemisphere == "south").all()
    assert set(df.season) == {"winter", "summer"}
    assert real_tree.attrs["layout"] == "resized"


@pytest.mark.shared
def test_real_resized_sample_values(real_tree):
    stems = list(real_tree.children)[::37]
    for stem in stems:
        ds = real_tree[stem].to_dataset().compute()
        assert ds.zones.dtype == np.int8 and set(np.unique(ds.zones.values)) <= {0, 1, 2, 3}
        assert ds.front.dtype == bool and ds.sar.dtype == np.uint8
        zones = png(CAFFE256 / "zones" / f"{stem}_zones.png")
        np.testing.assert_array_equal(ds.zones.values, mapped(zones, RESIZED_TO_ID))
        np.testing.assert_array_equal(ds.sar.values, png(CAFFE256 / "sar_images" / f"{stem}.png"))


@pytest.mark.shared
@pytest.mark.slow
def test_real_resized_all_pixels(real_tree):
    stems = list(real_tree.children)
    zones = dask.compute(*[real_tree[s]["zones"].data for s in stems])
    fronts = dask.compute(*[real_tree[s]["front"].data for s in stems])
    assert all(z.shape == (256, 256) and z.min() >= 0 and z.max() <= 3 for z in zones)
    assert all(f.dtype == bool for f in fronts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classes = np.bincount(np.concatenate([z.ravel() for z in zones]), minlength=4)
    assert (classes > 0).all()  # every zone class occurs


@pytest.mark.parametrize("when", ["open", "compute"])
def test_a_truncated_png_is_named_in_the_error(tmp_path, when):
    """A PNG cut short (a failed copy): PIL's 'image file is truncated' names no file; ours does."""
    from xfacies.errors import CorruptFileError

    root = caffe.make_synthetic(tmp_path, n=3, seed=2)
    tree = caffe.open_dataset(root)
    stem = list(tree.children)[1]
    sar = Path(tree[stem].attrs["source"])
    data = sar.read_bytes()
    if when == "open":
        sar.write_bytes(data[:20])  # not even a whole header
        with pytest.raises(CorruptFileError, match=re.escape(str(sar)) + r" is not a readable PNG .*damaged or "
                                                                        r"truncated"):
            caffe.open_dataset(root)
    else:
        sar.write_bytes(data[: len(data) // 2])  # header intact, pixels cut
        with pytest.raises(CorruptFileError, match=re.escape(str(sar)) + r" cannot be decoded .*truncated"):
            tree[stem]["sar"].compute()

"""CaFFe post-processing (zone map -> front) and metrics, against slow, obviously correct versions.

The reference implementations below use only Python lists, sets and loops: flood fills with
explicit neighbour lists, all-pairs distances and per-class pixel sets.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xfacies.caffe.metrics import BREAKDOWNS, evaluate, front_errors, season, summarize, zone_scores
from xfacies.caffe.postprocess import (
    bbox_limits,
    clean_zones,
    clip_to_bbox,
    fill_ocean_holes,
    front_from_zones,
    keep_largest_ocean,
    min_front_pixels,
    remove_short_fronts,
    zones_to_front,
)

NA, ROCK, GLACIER, OCEAN = 0, 1, 2, 3
RESOLUTIONS = [6, 7, 12, 17, 20, 50, 75, 100, 150, 187.5, 250, 375, 750, 1000]

# --------------------------------------------------------------------------- slow references
NEIGHBOURS_8 = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
NEIGHBOURS_4 = [(-1, 0), (1, 0), (0, -1), (0, 1)]


def slow_components(mask, neighbours):
    """Connected components (sets of (row, col)), in the order of their first pixel in a
    row-major scan."""
    ny, nx = len(mask), len(mask[0]) if len(mask) else 0
    seen = set()
    comps = []
    for r in range(ny):
        for c in range(nx):
            if not mask[r][c] or (r, c) in seen:
                continue
            comp = set()
            todo = [(r, c)]
            seen.add((r, c))
            while todo:
                y, x = todo.pop()
                comp.add((y, x))
                for dy, dx in neighbours:
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < ny and 0 <= xx < nx and mask[yy][xx] and (yy, xx) not in seen:
                        seen.add((yy, xx))
                        todo.append((yy, xx))
            comps.append(comp)
    return comps


def slow_largest(comps):
    """The largest component; the first one (scan order) on ties."""
    best = None
    for comp in comps:
        if best is None or len(comp) > len(best):
            best = comp
    return best


def slow_clean(zones):
    z = [[int(v) for v in row] for row in zones]
    ny, nx = len(z), len(z[0])
    non_ocean = [[z[r][c] != OCEAN for c in range(nx)] for r in range(ny)]
    comps = slow_components(non_ocean, NEIGHBOURS_8)
    if comps:
        keep = slow_largest(comps)
        for comp in comps:
            if comp is not keep:
                for r, c in comp:
                    z[r][c] = OCEAN
    ocean = [[z[r][c] == OCEAN for c in range(nx)] for r in range(ny)]
    comps = slow_components(ocean, NEIGHBOURS_8)
    if comps:
        keep = slow_largest(comps)
        for comp in comps:
            if comp is not keep:
                for r, c in comp:
                    z[r][c] = GLACIER
    return z


def slow_raw_front(z):
    ny, nx = len(z), len(z[0])
    front = [[False] * nx for _ in range(ny)]
    for r in range(ny):
        for c in range(nx):
            if z[r][c] != OCEAN:
                continue
            for dy, dx in NEIGHBOURS_4:
                yy, xx = r + dy, c + dx
                if 0 <= yy < ny and 0 <= xx < nx and z[yy][xx] == GLACIER:
                    front[r][c] = True
    return front


def slow_zones_to_front(zones, resolution, bbox=None):
    z = slow_clean(zones)
    front = slow_raw_front(z)
    ny, nx = len(z), len(z[0])
    out = np.zeros((ny, nx), bool)
    for comp in slow_components(front, NEIGHBOURS_8):
        if len(comp) <= 750 / resolution:  # pieces of at most 750 m are deleted
            continue
        for r, c in comp:
            out[r, c] = True
    if bbox is not None:
        xs = [float(p[0]) for p in bbox]
        ys = [float(p[1]) for p in bbox]
        for r in range(ny):
            for c in range(nx):
                if not (min(xs) <= c <= max(xs) and min(ys) <= r <= max(ys)):
                    out[r, c] = False
    return out


def slow_front_errors(pred, true, resolution):
    p = [(r, c) for r in range(pred.shape[0]) for c in range(pred.shape[1]) if pred[r, c]]
    g = [(r, c) for r in range(true.shape[0]) for c in range(true.shape[1]) if true[r, c]]
    if not p or not g:
        return []
    there = [min(math.hypot(a[0] - b[0], a[1] - b[1]) for b in g) for a in p]
    back = [min(math.hypot(a[0] - b[0], a[1] - b[1]) for b in p) for a in g]
    return [d * resolution for d in there + back]


def slow_zone_scores(pred, true):
    """IoU per class, and macro precision/recall/F1 over the classes in either map."""
    names = ["NA", "rock", "glacier", "ocean"]
    out = {}
    ious, precisions, recalls, f1s = [], [], [], []
    for k, name in enumerate(names):
        P = {(r, c) for r in range(pred.shape[0]) for c in range(pred.shape[1]) if pred[r, c] == k}
        T = {(r, c) for r in range(true.shape[0]) for c in range(true.shape[1]) if true[r, c] == k}
        if not P and not T:
            out[f"iou_{name}"] = float("nan")
            continue
        inter = len(P & T)
        iou = inter / len(P | T)
        out[f"iou_{name}"] = iou
        ious.append(iou)
        prec = inter / len(P) if P else 0.0
        rec = inter / len(T) if T else 0.0
        precisions.append(prec)
        recalls.append(rec)
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0)
    out["iou"] = sum(ious) / len(ious)
    out["precision"] = sum(precisions) / len(precisions)
    out["recall"] = sum(recalls) / len(recalls)
    out["f1"] = sum(f1s) / len(f1s)
    return out


# --------------------------------------------------------------------------- random zone maps
def random_zones(rng):
    """Zone maps with several ocean and non-ocean components, holes, islands, thin fronts."""
    ny, nx = (int(v) for v in rng.integers(1, 24, size=2))
    kind = rng.integers(4)
    if kind == 0:  # speckle: many tiny components
        z = rng.choice(4, size=(ny, nx), p=rng.dirichlet(np.ones(4)))
    elif kind == 1:  # blocks
        b = int(rng.integers(1, 6))
        coarse = rng.choice(4, size=(ny // b + 1, nx // b + 1), p=[0.1, 0.15, 0.4, 0.35])
        z = np.kron(coarse, np.ones((b, b), int))[:ny, :nx]
    elif kind == 2:  # glacier | ocean along a wavy line, with islands and holes
        edge = np.clip(np.cumsum(rng.integers(-1, 2, size=ny)) + nx // 2, 0, nx)
        z = np.where(np.arange(nx)[None, :] < edge[:, None], GLACIER, OCEAN)
        sprinkle = rng.random((ny, nx)) < rng.uniform(0, 0.15)
        z[sprinkle] = rng.choice(4, size=int(sprinkle.sum()))
    else:  # rectangles on a background
        z = np.full((ny, nx), rng.choice([GLACIER, OCEAN]))
        for _ in range(int(rng.integers(1, 8))):
            r0, c0 = rng.integers(0, ny), rng.integers(0, nx)
            r1, c1 = r0 + rng.integers(1, 8), c0 + rng.integers(1, 8)
            z[r0:r1, c0:c1] = rng.integers(0, 4)
    return z.astype(np.int8)


def random_bbox(rng, shape):
    if rng.random() < 0.3:
        return None
    ny, nx = shape
    x0, x1 = sorted(rng.integers(-2, nx + 2, size=2))
    y0, y1 = sorted(rng.integers(-2, ny + 2, size=2))
    return np.array([[x0, y0], [x0, y1], [x1, y1], [x1, y0]])  # UL, LL, LR, UR


# --------------------------------------------------------------------------- zones_to_front
def test_zones_to_front_matches_slow_reference_on_random_maps():
    rng = np.random.default_rng(42)
    n_front = n_removed = 0
    for _ in range(400):
        z = random_zones(rng)
        res = float(rng.choice(RESOLUTIONS))
        bbox = random_bbox(rng, z.shape)
        expected = slow_zones_to_front(z, res, bbox)
        got = zones_to_front(z, res, bbox)
        assert got.dtype == bool and got.shape == z.shape
        np.testing.assert_array_equal(got, expected, err_msg=f"{z}\nres={res} bbox={bbox}")
        np.testing.assert_array_equal(clean_zones(z), np.array(slow_clean(z)))
        raw = np.array(slow_raw_front(slow_clean(z)), bool)
        np.testing.assert_array_equal(front_from_zones(clean_zones(z)), raw)
        n_front += bool(expected.any())
        n_removed += bool((raw & ~remove_short_fronts(raw, res)).any())
    # the random maps do exercise non-empty fronts and step 4
    assert n_front > 50 and n_removed > 20, (n_front, n_removed)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(z=arrays(np.int8, st.tuples(st.integers(1, 12), st.integers(1, 12)),
                elements=st.integers(0, 3)),
       res=st.sampled_from(RESOLUTIONS))
def test_zones_to_front_property(z, res):
    np.testing.assert_array_equal(zones_to_front(z, res), slow_zones_to_front(z, res))


@settings(max_examples=60, deadline=None)
@given(z=arrays(np.int8, st.tuples(st.integers(1, 10), st.integers(1, 10)),
                elements=st.integers(0, 3)))
def test_clean_zones_properties(z):
    cleaned = clean_zones(z)
    ocean = cleaned == OCEAN
    # at most one ocean component is left
    assert len(slow_components(ocean.tolist(), NEIGHBOURS_8)) <= 1
    # pixels only ever change to ocean (step 1) or from ocean to glacier (step 2)
    changed = cleaned != z
    assert np.isin(cleaned[changed], [GLACIER, OCEAN]).all()
    # the front is always on ocean pixels next to glacier
    front = front_from_zones(cleaned)
    assert (cleaned[front] == OCEAN).all()


def test_vertical_boundary_gives_straight_front():
    z = np.full((30, 17), GLACIER, np.int8)
    z[:, 9:] = OCEAN
    front = zones_to_front(z, 20.0)  # 750 / 20 = 37.5 px threshold: the 30-px front goes
    assert not front.any()
    front = zones_to_front(z, 30.0)  # 25 px threshold: 30 px kept
    assert front.sum() == 30 and front[:, 9].all()


def test_rock_and_na_are_not_glacier():
    z = np.full((20, 6), ROCK, np.int8)
    z[:, 3:] = OCEAN
    assert not zones_to_front(z, 1000.0).any()
    z[:, :3] = NA
    assert not zones_to_front(z, 1000.0).any()


@pytest.mark.parametrize("resolution, length, kept", [
    (50.0, 15, False), (50.0, 16, True),    # exactly 750 / 50 = 15 pixels: deleted
    (25.0, 30, False), (25.0, 31, True),
    (6.0, 125, False), (6.0, 126, True),
    (7.0, 107, False), (7.0, 108, True),    # 750 / 7 = 107.1
])
def test_threshold_piece(resolution, length, kept):
    z = np.full((length, 5), GLACIER, np.int8)
    z[:, 2:] = OCEAN
    front = zones_to_front(z, resolution)
    assert front.sum() == (length if kept else 0)
    assert (min_front_pixels(resolution) >= length) is (not kept)


def test_several_pieces_diagonal_connection():
    # two pieces touching only diagonally are one 8-connected piece
    f = np.zeros((6, 6), bool)
    f[0, 0] = f[1, 1] = f[2, 2] = True
    f[5, 0] = f[5, 1] = True
    out = remove_short_fronts(f, 750 / 2.5)  # threshold 2.5 px
    assert out.sum() == 3 and out[:3, :3].trace() == 3


def test_holes_filled_and_small_oceans_removed():
    z = np.full((12, 12), GLACIER, np.int8)
    z[:, 6:] = OCEAN
    z[5, 9] = ROCK             # island in the ocean -> ocean (step 1)
    z[2:4, 1:3] = OCEAN        # lake in the glacier -> glacier (step 2)
    cleaned = clean_zones(z)
    assert cleaned[5, 9] == OCEAN and (cleaned[2:4, 1:3] == GLACIER).all()
    np.testing.assert_array_equal(fill_ocean_holes(z)[2:4, 1:3], OCEAN)
    np.testing.assert_array_equal(keep_largest_ocean(z)[5, 9], ROCK)
    front = zones_to_front(z, 100.0)
    assert front.sum() == 12 and front[:, 6].all()


def test_ties_keep_first_component_in_scan_order():
    # two ocean components of 4 pixels; the one whose first pixel comes first (row 0) stays
    z = np.full((6, 6), GLACIER, np.int8)
    z[0:2, 4:6] = OCEAN
    z[3:5, 0:2] = OCEAN
    out = keep_largest_ocean(z)
    assert (out[0:2, 4:6] == OCEAN).all() and (out[3:5, 0:2] == GLACIER).all()
    # equal non-ocean components: the first stays, the other becomes ocean
    z = np.full((3, 7), OCEAN, np.int8)
    z[:, 0:2] = ROCK
    z[:, 5:7] = GLACIER
    out = fill_ocean_holes(z)
    assert (out[:, 0:2] == ROCK).all() and (out[:, 5:7] == OCEAN).all()


def test_no_ocean_or_all_ocean_gives_empty_front():
    for value in (NA, ROCK, GLACIER, OCEAN):
        assert not zones_to_front(np.full((9, 7), value, np.int8), 1.0).any()
    z = np.full((9, 7), GLACIER, np.int8)
    z[:, 0] = ROCK
    assert not zones_to_front(z, 1.0).any()


def test_bbox_clipping_inclusive_and_forms():
    z = np.full((40, 10), GLACIER, np.int8)
    z[:, 4:] = OCEAN
    corners = np.array([[4, 10], [4, 19], [8, 19], [8, 10]])  # UL, LL, LR, UR
    front = zones_to_front(z, 50.0, corners)
    assert front.sum() == 10 and front[10:20, 4].all()
    # any corner order, list input, same hull
    np.testing.assert_array_equal(zones_to_front(z, 50.0, corners[::-1].tolist()), front)
    assert bbox_limits(corners) == (4.0, 8.0, 10.0, 19.0)
    # a box right of the front column clips it all away
    assert not zones_to_front(z, 50.0, [[5, 0], [5, 39], [9, 39], [9, 0]]).any()
    # xarray bbox, with and without labelled xy, in either xy order
    da = xr.DataArray(corners, dims=("corner", "xy"))
    np.testing.assert_array_equal(zones_to_front(z, 50.0, da), front)
    da_yx = xr.DataArray(corners[:, ::-1], dims=("corner", "xy"), coords={"xy": ["y", "x"]})
    np.testing.assert_array_equal(zones_to_front(z, 50.0, da_yx), front)
    np.testing.assert_array_equal(zones_to_front(z, 50.0, da.T), front)
    assert clip_to_bbox(np.ones((2, 2), bool), None).all()
    with pytest.raises(ValueError, match="corner"):
        zones_to_front(z, 50.0, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="dims"):
        zones_to_front(z, 50.0, xr.DataArray(corners, dims=("a", "b")))


def test_xarray_in_xarray_out():
    z = np.full((30, 8), GLACIER, np.int8)
    z[:, 5:] = OCEAN
    da = xr.DataArray(z, dims=("y", "x"), coords={"y": np.arange(30) * -7.0, "x": np.arange(8) * 7.0},
                      name="zones")
    out = zones_to_front(da, 7.0)
    assert isinstance(out, xr.DataArray) and out.dtype == bool and out.name == "front"
    assert out.dims == ("y", "x")
    xr.testing.assert_equal(out.x, da.x)
    xr.testing.assert_equal(out.y, da.y)
    assert out.attrs["resolution"] == 7.0 and "description" in out.attrs
    np.testing.assert_array_equal(out.values, zones_to_front(z, 7.0))
    assert out.values.sum() == 0  # 30 px < 107 at 7 m
    kept = zones_to_front(da, 30.0).values  # 25 px threshold
    assert kept.sum() == 30 and kept[:, 5].all()


def test_dask_and_stacked_images():
    rng = np.random.default_rng(3)
    stack = np.stack([random_zones_fixed(rng, (14, 11)) for _ in range(3)])
    da = xr.DataArray(stack, dims=("image", "y", "x")).chunk({"image": 1, "y": 7})
    bbox = [[1, 1], [1, 12], [9, 12], [9, 1]]
    out = zones_to_front(da, 100.0, bbox)
    assert out.chunks is not None and out.dims == ("image", "y", "x")
    got = out.compute().values
    for i in range(3):
        np.testing.assert_array_equal(got[i], slow_zones_to_front(stack[i], 100.0, bbox))


def random_zones_fixed(rng, shape):
    z = np.where(np.arange(shape[1])[None, :] < rng.integers(2, shape[1] - 2), GLACIER, OCEAN)
    z = np.broadcast_to(z, shape).copy()
    z[rng.random(shape) < 0.1] = ROCK
    return z.astype(np.int8)


def test_bad_inputs():
    z = np.full((4, 4), GLACIER, np.int8)
    with pytest.raises(ValueError, match=r"found 64, 127, 254.*open_dataset"):
        zones_to_front(np.array([[0, 64], [127, 254]], np.uint8), 7.0)
    with pytest.raises(ValueError, match="found -1"):
        zones_to_front(np.array([[-1, 2]]), 7.0)
    with pytest.raises(ValueError, match="found nan"):
        zones_to_front(np.array([[np.nan, 2.0]]), 7.0)
    np.testing.assert_array_equal(zones_to_front(z.astype(float), 7.0), zones_to_front(z, 7.0))
    with pytest.raises(ValueError, match="open_dataset"):
        zones_to_front(xr.DataArray(np.full((3, 3), 254, np.uint8), dims=("y", "x")), 7.0)
    with pytest.raises(TypeError, match="dtype bool"):
        zones_to_front(z > 0, 7.0)
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="resolution"):
            zones_to_front(z, bad)
    with pytest.raises(TypeError, match="resolution"):
        zones_to_front(z, "7 m")
    with pytest.raises(ValueError, match="2-D"):
        zones_to_front(z[None], 7.0)


# --------------------------------------------------------------------------- front_errors
def test_front_errors_match_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 15, size=2))
        pred = rng.random(shape) < rng.uniform(0, 0.3)
        true = rng.random(shape) < rng.uniform(0, 0.3)
        res = float(rng.choice([1.0, 6.0, 20.0]))
        got = front_errors(pred, true, res)
        expected = slow_front_errors(pred, true, res)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
        if not pred.any() or not true.any():
            assert got.shape == (0,)


@settings(max_examples=60, deadline=None)
@given(pred=arrays(bool, (6, 9)), true=arrays(bool, (6, 9)), res=st.sampled_from([1.0, 7.0, 20.0]))
def test_front_errors_property(pred, true, res):
    np.testing.assert_allclose(front_errors(pred, true, res), slow_front_errors(pred, true, res),
                               atol=1e-9)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_parallel_fronts(k):
    pred = np.zeros((20, 12), bool)
    true = np.zeros((20, 12), bool)
    pred[:, 2] = True
    true[:, 2 + k] = True
    errors = front_errors(pred, true, 7.0)
    assert errors.shape == (40,)
    np.testing.assert_allclose(errors, k * 7.0)


def test_front_errors_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        front_errors(np.zeros((3, 3), bool), np.zeros((3, 4), bool), 1.0)
    with pytest.raises(ValueError, match="resolution"):
        front_errors(np.zeros((3, 3), bool), np.zeros((3, 3), bool), 0.0)
    # 0/255 front PNG values count as a front
    f = np.zeros((3, 3), np.uint8)
    f[1, 1] = 255
    np.testing.assert_array_equal(front_errors(f, f, 1.0), [0.0, 0.0])
    # xarray works too
    np.testing.assert_array_equal(front_errors(xr.DataArray(f > 0), xr.DataArray(f > 0), 1.0), [0, 0])


# --------------------------------------------------------------------------- zone scores
def test_zone_scores_match_slow_and_sklearn():
    from sklearn.metrics import f1_score, jaccard_score, precision_score, recall_score

    rng = np.random.default_rng(11)
    for _ in range(150):
        shape = tuple(int(v) for v in rng.integers(1, 12, size=2))
        true = random_zones(rng)[: shape[0], : shape[1]]
        pred = rng.choice(4, size=true.shape, p=rng.dirichlet(np.ones(4))).astype(np.int8)
        got = zone_scores(pred, true)
        want = slow_zone_scores(pred, true)
        assert got.keys() == want.keys() | {"iou"}
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-12, err_msg=key)
        yt, yp = true.ravel(), pred.ravel()
        np.testing.assert_allclose(got["iou"], jaccard_score(yt, yp, average="macro"))
        np.testing.assert_allclose(got["precision"],
                                   precision_score(yt, yp, average="macro", zero_division=0))
        np.testing.assert_allclose(got["recall"],
                                   recall_score(yt, yp, average="macro", zero_division=0))
        np.testing.assert_allclose(got["f1"], f1_score(yt, yp, average="macro", zero_division=0))


def test_season_rule():
    assert season("COL", "2011-03-31") == "winter" and season("COL", "2011-04-01") == "summer"
    assert season("JAC", "2011-08-31") == "summer" and season("JAC", "2011-09-01") == "winter"
    assert season("Mapple", "2011-04-01") == "winter" and season("SI", "2011-08-31") == "winter"
    assert season("DBE", "2011-09-01") == "summer" and season("Crane", "2011-03-31") == "summer"


# --------------------------------------------------------------------------- evaluate
STEM_A = "JAC_2015-02-11_TSX_6_1_104"     # winter (north, Feb)
STEM_B = "JAC_2016-07-01_TDX_6_2_010"     # summer (north, Jul)
STEM_C = "Mapple_2010-06-05_ERS_20_3_005"  # winter (south, Jun)
STEM_D = "COL_2011-07-07_S1_20_1_007"     # summer, no front predicted


def _vertical(shape, col):
    f = np.zeros(shape, bool)
    f[:, col] = True
    return f


def _split(shape, col):
    z = np.full(shape, GLACIER, np.int8)
    z[:, col:] = OCEAN
    return z


def _node(zones, front, attrs, bbox=None):
    ds = xr.Dataset({"zones": (("y", "x"), zones), "front": (("y", "x"), front)}, attrs=attrs)
    if bbox is not None:
        ds["bbox"] = (("corner", "xy"), np.asarray(bbox))
        ds = ds.assign_coords(xy=["x", "y"])
    return ds


def _attrs(stem, **extra):
    glacier, date, sat, res, _, _ = stem.split("_")
    attrs = {"glacier": glacier, "date": date, "satellite": sat,
             "sensor": "TSX/TDX" if sat in ("TSX", "TDX") else sat,
             "resolution": int(res), "season": season(glacier, date), "pixel_size": float(res)}
    attrs.update(extra)
    return attrs


C_BBOX = [[0, 0], [0, 29], [11, 29], [11, 0]]  # rows 0..29 of 40


@pytest.fixture
def bench():
    """Dataset (DataTree) and predictions with closed-form distances."""
    truth = {
        # A: 10-pixel front, prediction 1 px off -> 20 distances of 6 m
        STEM_A: _node(_split((10, 8), 4), _vertical((10, 8), 4), _attrs(STEM_A)),
        # B: 4-pixel front, 3 px off -> 8 distances of 18 m; pixel_size NaN -> resolution; no
        # sensor attr (merged from the satellite)
        STEM_B: _node(_split((4, 9), 3), _vertical((4, 9), 3),
                      {k: v for k, v in _attrs(STEM_B, pixel_size=float("nan")).items()
                       if k != "sensor"}),
        # C: front from the predicted zones (column 5, 40 px > 37.5), clipped to rows 0..29
        STEM_C: _node(_split((40, 12), 7), _vertical((40, 12), 7), _attrs(STEM_C), C_BBOX),
        # D: the prediction has no ocean -> no front
        STEM_D: _node(_split((6, 6), 3), _vertical((6, 6), 3), _attrs(STEM_D)),
    }
    preds = {
        STEM_A: xr.Dataset({"zones": (("y", "x"), _split((10, 8), 5)),
                            "front": (("y", "x"), _vertical((10, 8), 5))}),
        STEM_B: xr.Dataset({"zones": (("y", "x"), _split((4, 9), 6)),
                            "front": (("y", "x"), _vertical((4, 9), 6))}),
        STEM_C: xr.Dataset({"zones": (("y", "x"), _split((40, 12), 5))}),
        STEM_D: xr.DataArray(np.full((6, 6), GLACIER, np.int8), dims=("y", "x")),
    }
    return truth, preds


def _c_errors(scale=20.0):
    pred = _vertical((40, 12), 5)
    pred[30:] = False
    return slow_front_errors(pred, _vertical((40, 12), 7), scale)


def test_evaluate_closed_form(bench):
    truth, preds = bench
    tree = xr.DataTree.from_dict(truth)
    table = evaluate(preds, tree)
    assert list(table.columns) == [
        "breakdown", "group", "n_images", "n_no_front", "mde", "mean_of_image_means", "hd95", "units",
        "iou", "iou_NA", "iou_rock", "iou_glacier", "iou_ocean", "precision", "recall", "f1"]
    assert list(dict.fromkeys(table["breakdown"])) == list(BREAKDOWNS)
    row = table.set_index(["breakdown", "group"])
    groups = {b: set(g["group"]) for b, g in table.groupby("breakdown")}
    assert groups == {
        "all": {"all"}, "season": {"winter", "summer"}, "glacier": {"JAC", "Mapple", "COL"},
        "sensor": {"TSX/TDX", "ERS", "S1"}, "resolution": {"6", "20"},
        "glacier×season": {"JAC / winter", "JAC / summer", "Mapple / winter", "COL / summer"},
        "glacier×sensor": {"JAC / TSX/TDX", "Mapple / ERS", "COL / S1"},
        "glacier×resolution": {"JAC / 6", "Mapple / 20", "COL / 20"},
    }
    # JAC: pooled (20 x 6 + 8 x 18) / 28 differs from the mean of the image means (6 + 18) / 2
    jac = row.loc[("glacier", "JAC")]
    assert jac.n_images == 2 and jac.n_no_front == 0
    assert jac.mde == pytest.approx(264 / 28)
    assert jac.mean_of_image_means == pytest.approx(12.0)
    assert jac.hd95 == pytest.approx(12.0)
    tsx = row.loc[("sensor", "TSX/TDX")]
    assert tsx.n_images == 2 and tsx.mde == pytest.approx(264 / 28)
    # C's front computed from its zones, clipped to the box; D has no front
    c = _c_errors()
    allrow = row.loc[("all", "all")]
    assert allrow.n_images == 4 and allrow.n_no_front == 1
    assert allrow.mde == pytest.approx((120 + 144 + sum(c)) / (28 + len(c)))
    assert allrow.mean_of_image_means == pytest.approx((6 + 18 + np.mean(c)) / 3)
    assert allrow.hd95 == pytest.approx((6 + 18 + np.percentile(c, 95)) / 3)
    col = row.loc[("glacier", "COL")]
    assert col.n_no_front == 1 and math.isnan(col.mde) and math.isnan(col.hd95)
    assert col.iou == pytest.approx(slow_zone_scores(np.full((6, 6), GLACIER), _split((6, 6), 3))["iou"])
    winter = row.loc[("season", "winter")]  # A and C
    assert winter.n_images == 2 and winter.mde == pytest.approx((120 + sum(c)) / (20 + len(c)))
    assert row.loc[("resolution", "20")].n_images == 2
    assert row.loc[("glacier×season", "Mapple / winter")].mde == pytest.approx(np.mean(c))


def test_evaluate_zone_scores_and_per_image(bench):
    truth, preds = bench
    tree = xr.DataTree.from_dict(truth)
    per = evaluate(preds, tree, per_image=True)
    assert list(per["image"]) == [STEM_A, STEM_B, STEM_C, STEM_D]
    per = per.set_index("image")
    assert per.loc[STEM_B, "sensor"] == "TSX/TDX" and per.loc[STEM_B, "pixel_size"] == 6.0
    assert per.loc[STEM_C, "n_pred_front"] == 30 and per.loc[STEM_C, "n_true_front"] == 40
    assert list(per["no_front"]) == [False, False, False, True]
    assert list(per["season"]) == ["winter", "summer", "winter", "summer"]
    pred_zones = {STEM_A: _split((10, 8), 5), STEM_B: _split((4, 9), 6),
                  STEM_C: _split((40, 12), 5), STEM_D: np.full((6, 6), GLACIER)}
    slow = {stem: slow_zone_scores(pred_zones[stem], truth[stem]["zones"].values) for stem in truth}
    for stem in truth:
        for key in ("iou", "iou_glacier", "iou_ocean", "precision", "recall", "f1"):
            assert per.loc[stem, key] == pytest.approx(slow[stem][key]), (stem, key)
        assert math.isnan(per.loc[stem, "iou_NA"]) and math.isnan(per.loc[stem, "iou_rock"])
    table = summarize(per.reset_index())
    allrow = table.iloc[0]
    assert allrow.iou == pytest.approx(np.mean([s["iou"] for s in slow.values()]))
    assert allrow.iou_ocean == pytest.approx(np.mean([s["iou_ocean"] for s in slow.values()]))
    assert allrow.f1 == pytest.approx(np.mean([s["f1"] for s in slow.values()]))
    assert math.isnan(allrow.iou_NA)
    pd.testing.assert_frame_equal(table, evaluate(preds, tree))


def test_evaluate_pixel_size_and_prediction_forms(bench):
    truth, preds = bench
    tree = xr.DataTree.from_dict(truth)
    in_pixels = evaluate(preds, tree, pixel_size=1.0).set_index(["breakdown", "group"])
    assert in_pixels.loc[("glacier", "JAC"), "mde"] == pytest.approx(44 / 28)
    # the post-processing still uses the physical pixel size: C keeps its 30-pixel front
    c = _c_errors(1.0)
    assert in_pixels.loc[("glacier", "Mapple"), "mde"] == pytest.approx(np.mean(c))
    by_map = evaluate(preds, tree, pixel_size={s: 2.0 for s in truth}, per_image=True)
    by_fun = evaluate(preds, tree, pixel_size=lambda stem: 2.0, per_image=True)
    pd.testing.assert_frame_equal(by_map, by_fun)
    assert (by_map["pixel_size"] == 2.0).all()
    with pytest.raises(KeyError, match=f"no entry for image '{STEM_B}'"):
        evaluate(preds, tree, pixel_size={STEM_A: 2.0})
    # predictions as a DataTree give the same table
    pred_tree = xr.DataTree.from_dict({
        s: (p if isinstance(p, xr.Dataset) else p.to_dataset(name="zones")) for s, p in preds.items()})
    pd.testing.assert_frame_equal(evaluate(pred_tree, tree), evaluate(preds, tree))


def test_evaluate_missing_and_extra_images(bench):
    truth, preds = bench
    tree = xr.DataTree.from_dict(truth)
    partial = {k: v for k, v in preds.items() if k != STEM_C}
    with pytest.raises(ValueError, match=rf"1 of the dataset's 4 images have no prediction: {STEM_C}"):
        evaluate(partial, tree)
    with pytest.raises(ValueError, match="not in the dataset: JAC_2099"):
        evaluate({**preds, "JAC_2099-01-01_S1_20_1_001": preds[STEM_A]}, tree)
    bad = dict(preds)
    bad[STEM_A] = xr.Dataset({"zones": (("y", "x"), np.full((3, 3), GLACIER, np.int8))})
    with pytest.raises(ValueError, match="shape"):
        evaluate(bad, tree)
    bad[STEM_A] = xr.Dataset({"zones": (("y", "x"), np.full((10, 8), 127, np.uint8))})
    with pytest.raises(ValueError, match="open_dataset"):
        evaluate(bad, tree)
    with pytest.raises(TypeError, match="DataTree"):
        evaluate(preds, [1, 2])

"""Chunked inference: exact vs a slow per-patch loop, dense chunk invariance, smoothing, errors."""

from __future__ import annotations

import warnings
from collections import Counter

import dask
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xfacies
from xfacies.inference import smooth_mode

from conftest import make_tiny_model, random_features

# Chunks smaller than the halo are part of what these tests vary on purpose (the engine merges
# them, with a ChunkWarning that test_chunks_smaller_than_the_halo_are_merged_with_a_note checks).
pytestmark = pytest.mark.filterwarnings("ignore::xfacies.halo.ChunkWarning")


def _mask(shape, seed=0):
    rng = np.random.default_rng(seed)
    m = np.zeros(shape, bool)
    ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx]
    for _ in range(3):
        cy, cx, r = rng.integers(0, ny), rng.integers(0, nx), rng.integers(5, 12)
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
    return xr.DataArray(m.astype(np.int32), dims=("y", "x"))


def slow_exact(model, feats: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The reference semantics written plainly: one zero-padded patch per glacier pixel."""
    F, H, W = feats.shape
    x = model.normalise(np.moveaxis(feats, 0, -1))
    x = np.nan_to_num(x, nan=0.0)
    km = model.keras_model(dense=False)
    out = np.full((len(model.classes), H, W), np.nan, np.float32)
    for r in range(H):
        for c in range(W):
            if not mask[r, c] or not np.isfinite(feats[:, r, c]).all():
                continue
            patch = np.zeros((33, 33, F), np.float32)
            for i in range(33):
                for j in range(33):
                    rr, cc = r - 16 + i, c - 16 + j
                    if 0 <= rr < H and 0 <= cc < W:
                        patch[i, j] = x[rr, cc]
            out[:, r, c] = np.asarray(km(patch[None], training=False))[0]
    return out


def test_exact_equals_slow_per_patch_evaluation(tiny_model):
    feats = random_features((30, 26), seed=1)
    feats[:, 3, 4] = np.nan  # a pixel with missing inputs -> nodata
    mask = _mask((30, 26), seed=2)
    mask[:, :2] = 1  # pixels on the scene edge: zero-padded patches, no crash
    got = xfacies.predict_proba(feats.chunk(y=13, x=17), tiny_model, mask, method="exact").values
    want = slow_exact(tiny_model, feats.values, mask.values.astype(bool))
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.isnan(got[:, 3, 4]).all()
    assert np.isnan(got[:, ~mask.values.astype(bool)]).all()


def _assert_close_labels(a: np.ndarray, b: np.ndarray, probs: np.ndarray):
    """Labels equal except where the top-2 probabilities are within float noise."""
    s = np.sort(np.nan_to_num(probs, nan=0), axis=-3)
    tie = (s[..., -1, :, :] - s[..., -2, :, :]) < 1e-5
    assert np.array_equal(a[~tie], b[~tie])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cy=st.integers(3, 45), cx=st.integers(3, 45), method=st.sampled_from(["dense", "exact"]))
def test_chunked_equals_unchunked(tiny_model, cy, cx, method):
    """Any chunking, including chunks smaller than the halo, gives the unchunked result."""
    feats = random_features((47, 41), seed=5)
    mask = _mask((47, 41), seed=6)
    whole = xfacies.predict_proba(feats, tiny_model, mask, method=method).values
    chunked = xfacies.predict_proba(feats.chunk(y=cy, x=cx), tiny_model, mask, method=method)
    np.testing.assert_allclose(chunked.values, whole, atol=1e-5, equal_nan=True)
    lab_w = xfacies.classify(feats, tiny_model, mask, method=method).values
    lab_c = xfacies.classify(feats.chunk(y=cy, x=cx), tiny_model, mask, method=method).values
    _assert_close_labels(lab_c, lab_w, whole)


def test_dense_with_time_dimension_and_no_outlines(tiny_model):
    feats = random_features((30, 30), seed=2, time=3)
    p = xfacies.predict_proba(feats.chunk(time=1, y=15, x=15), tiny_model)
    assert p.dims == ("time", "class", "y", "x") and p.dtype == np.float32
    v = p.values
    np.testing.assert_allclose(v.sum(axis=1), 1.0, atol=1e-5)
    for t in range(3):  # each date equals that date alone
        np.testing.assert_allclose(v[t], xfacies.predict_proba(feats.isel(time=t), tiny_model).values,
                                   atol=1e-5)


def test_inference_is_lazy_and_graph_size_is_independent_of_model_size(tiny_model, tmp_path):
    import pickle

    big = make_tiny_model(6, filters=64, dense_units=32)
    big.save(tmp_path / "big.xfacies")
    feats = random_features((40, 40)).chunk(y=20, x=20)
    sizes = {}
    for name, m in (("tiny", tiny_model), ("big", big)):
        out = xfacies.classify(feats, m, confidence=True)
        assert isinstance(out.classes.data, dask.array.Array)
        graph = dict(out.classes.data.__dask_graph__())
        assert "xfacies.Model" not in repr(graph)
        sizes[name] = len(pickle.dumps(graph))
    big_bytes = sum(w.nbytes for w in big.weights)
    tiny_bytes = sum(w.nbytes for w in tiny_model.weights)
    assert big_bytes - tiny_bytes > 500_000
    assert abs(sizes["big"] - sizes["tiny"]) < 200, sizes


def test_classify_outputs_cf_flags_nodata_and_confidence(tiny_model):
    feats = random_features((30, 30))
    mask = _mask((30, 30), seed=4)
    ds = xfacies.classify(feats, tiny_model, mask, confidence=True, smooth=False).compute()
    fac, conf = ds["classes"], ds["confidence"]
    assert fac.dtype == np.int8 and conf.dtype == np.float32
    assert list(fac.attrs["flag_values"]) == [-1, 0, 1, 2, 3, 4, 5, 6, 7]
    assert fac.attrs["flag_meanings"].split()[0] == "no_data"
    outside = mask.values == 0
    assert (fac.values[outside] == xfacies.NODATA).all() and np.isnan(conf.values[outside]).all()
    p = xfacies.predict_proba(feats, tiny_model, mask).values
    np.testing.assert_array_equal(fac.values[~outside], np.argmax(p[:, ~outside], axis=0))
    np.testing.assert_allclose(conf.values[~outside], p[:, ~outside].max(axis=0), atol=1e-6)
    assert fac.rio.crs.to_epsg() == 32632


def test_confidence_is_calibrated_and_clipped(tmp_path):
    from xfacies.model.calibration import KernelCalibrator

    m = make_tiny_model(6)
    m.calibrator = KernelCalibrator([0.0, 1.0], [2.0, 0.5])  # exceeds 1: must be clipped
    m.save(tmp_path / "cal.xfacies")
    feats = random_features((20, 20))
    ds = xfacies.classify(feats, m, confidence=True).compute()
    raw = xfacies.predict_proba(feats, m).values.max(axis=0)
    np.testing.assert_allclose(ds.confidence.values, np.clip(m.calibrator.predict_unclipped(raw), 0, 1),
                               atol=1e-6)
    assert ds.confidence.max() <= 1.0


def slow_mode(lab: np.ndarray, nodata: int = -1) -> np.ndarray:
    H, W = lab.shape
    out = lab.copy()
    for r in range(H):
        for c in range(W):
            if lab[r, c] == nodata:
                continue
            cnt = Counter(int(lab[i, j]) for i in range(max(r - 1, 0), min(r + 2, H))
                          for j in range(max(c - 1, 0), min(c + 2, W)) if lab[i, j] != nodata)
            best = max(cnt.values())
            out[r, c] = min(k for k, v in cnt.items() if v == best)
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 4))
def test_smooth_mode_equals_slow_implementation(seed, n_classes):
    rng = np.random.default_rng(seed)
    lab = rng.integers(-1, n_classes, size=(9, 11)).astype(np.int8)
    np.testing.assert_array_equal(smooth_mode(lab), slow_mode(lab))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 8), st.booleans())
def test_labels_are_the_argmax_with_ties_to_the_lowest_class_and_nodata_where_nan(seed, n_classes, batched):
    """The running-maximum labels equal a pixel-by-pixel argmax (first maximum; NaN anywhere ->
    nodata), on probabilities rounded to one decimal so that ties are common."""
    from xfacies.inference.blocks import labels_block

    rng = np.random.default_rng(seed)
    shape = ((2,) if batched else ()) + (n_classes, 7, 9)
    p = rng.random(shape).round(1).astype(np.float32)
    p[rng.random(shape) < 0.03] = np.nan
    got = labels_block(p)
    flat = p.reshape((-1, n_classes, 7 * 9))
    want = np.empty((flat.shape[0], 7 * 9), np.int8)
    for b in range(flat.shape[0]):
        for i in range(7 * 9):
            v = [float(x) for x in flat[b, :, i]]
            want[b, i] = -1 if any(np.isnan(v)) else v.index(max(v))
    np.testing.assert_array_equal(got, want.reshape(got.shape))


def test_smoothing_is_chunk_invariant(tiny_model):
    feats = random_features((40, 40), seed=9, smooth=1)  # noisy -> smoothing changes things
    mask = _mask((40, 40), seed=3)
    a = xfacies.classify(feats, tiny_model, mask, smooth=True).values
    b = xfacies.classify(feats.chunk(y=7, x=9), tiny_model, mask, smooth=True).values
    raw = xfacies.classify(feats, tiny_model, mask, smooth=False).values
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, slow_mode(raw))


@pytest.mark.parametrize("method", ["dense", "exact"])
def test_the_halo_reaches_exactly_the_pixel_at_the_receptive_field_edge(tiny_model, method):
    """First prove, on the whole unchunked image, that a pixel exactly ``halo`` columns away
    changes the output and one ``halo + 1`` away never does (so the halo is the receptive field,
    not one pixel more or less); then cut a chunk boundary between the two pixels: the chunked
    result must still see that pixel."""
    R = tiny_model.halo(method)
    c0 = R + 2                                   # the output pixel, last column of the first chunk
    H, W = 7, c0 + 1 + R + 4
    base = random_features((H, W), seed=4)
    mask = xr.DataArray(np.ones((H, W), np.int32), dims=("y", "x"))

    def at_c0(feats):
        return xfacies.predict_proba(feats, tiny_model, mask, method=method).values[:, 3, c0]

    ref = at_c0(base)
    changed_at, values = {}, (-5.0, -0.1, 1.2, 5.0, 20.0)  # the max-pools pass an edge pixel that stands out
    for dist in (R, R + 1):
        moved = []
        for value in values:
            f = base.copy()
            f[:, 3, c0 + dist] = value
            moved.append(float(np.abs(at_c0(f) - ref).max()))
        changed_at[dist] = max(moved)
        if dist == R:
            strongest = values[int(np.argmax(moved))]
    assert changed_at[R] > 1e-4, f"the output does not depend on the pixel {R} px away: halo too large?"
    assert changed_at[R + 1] == 0.0, f"the output depends on a pixel {R + 1} px away: halo too small"
    f = base.copy()
    f[:, 3, c0 + R] = strongest
    whole = xfacies.predict_proba(f, tiny_model, mask, method=method).values
    chunked = xfacies.predict_proba(f.chunk(x=(c0 + 1, W - c0 - 1)), tiny_model, mask, method=method)
    assert chunked.chunks[-1] == (c0 + 1, W - c0 - 1)  # the boundary really lies between the two pixels
    np.testing.assert_allclose(chunked.values, whole, atol=1e-5)


def test_all_nodata_chunk_skips_the_model(tiny_model, monkeypatch):
    from xfacies.model import bundle

    calls = []
    orig = bundle.Model.predict_dense_normalised
    monkeypatch.setattr(bundle.Model, "predict_dense_normalised",
                        lambda self, x: calls.append(x.shape) or orig(self, x))
    feats = random_features((60, 30))
    mask = np.zeros((60, 30), np.int32)
    mask[:30] = 1  # only the top chunk has glacier
    out = xfacies.classify(feats.chunk(y=30, x=30), tiny_model, xr.DataArray(mask, dims=("y", "x"))).values
    assert len(calls) == 1
    assert (out[30:] == xfacies.NODATA).all() and (out[:30] >= 0).all()


# ----------------------------------------------------------------- bad input
def test_missing_features_are_named(tiny_model):
    feats = random_features((20, 20)).sel(band=["blue", "green", "red", "nir", "swir1"])
    with pytest.raises(ValueError, match=r"\['swir2'\] needed by the model are missing"):
        xfacies.classify(feats, tiny_model)


def test_misordered_features_say_how_to_fix(tiny_model):
    feats = random_features((20, 20))
    swapped = feats.isel(band=[1, 0, 2, 3, 4, 5])
    with pytest.raises(ValueError, match=r"different order.*da.sel\(band="):
        xfacies.classify(swapped, tiny_model)
    # Extra bands are fine and ignored.
    extra = xr.concat([feats, feats.isel(band=[0]).assign_coords(band=["elevation"])], dim="band")
    np.testing.assert_array_equal(xfacies.classify(extra, tiny_model).values,
                                  xfacies.classify(feats, tiny_model).values)


def test_integer_input_is_refused(tiny_model):
    feats = (random_features((20, 20)) * 10000).astype(np.uint16)
    with pytest.raises(TypeError, match="scale/offset"):
        xfacies.classify(feats, tiny_model)


def test_non_spatial_input_is_refused(tiny_model):
    feats = random_features((20, 20)).rename(y="row", x="col")
    with pytest.raises(ValueError, match="dims 'y' and 'x'"):
        xfacies.classify(feats, tiny_model)
    with pytest.raises(ValueError, match="'band' dimension"):
        xfacies.classify(random_features((20, 20)).isel(band=0), tiny_model)


def test_mismatched_outline_raster_is_refused(tiny_model):
    with pytest.raises(ValueError, match="is not on the grid of the features"):
        xfacies.classify(random_features((20, 20)), tiny_model,
                         xr.DataArray(np.ones((10, 20), np.int32), dims=("y", "x")))


def test_unnormalised_model_warns_loudly(tmp_path):
    m = make_tiny_model(6, normalised=False)
    m.save(tmp_path / "raw.xfacies")
    with pytest.warns(xfacies.NormalisationWarning, match="no stored normalisation"):
        xfacies.classify(random_features((20, 20)), m)


def test_accessor_forwards_to_functions(tiny_model):
    feats = random_features((20, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = feats.facies.classify(tiny_model, method="dense").values
    np.testing.assert_array_equal(a, xfacies.classify(feats, tiny_model).values)
    ds = feats.to_dataset(dim="band")  # one variable per feature
    np.testing.assert_array_equal(ds.facies.classify(tiny_model).values, a)


def test_chunks_smaller_than_the_halo_are_merged_with_a_note(tiny_model):
    feats = random_features((80, 80), seed=2)
    with pytest.warns(xfacies.inference.ChunkWarning, match="smaller than the model's 28 px halo"):
        small = xfacies.predict_proba(feats.chunk(y=10, x=10), tiny_model)
    assert min(small.chunks[-1]) >= 28 or len(small.chunks[-1]) == 1
    np.testing.assert_allclose(small.values, xfacies.predict_proba(feats, tiny_model).values, atol=1e-5)


_BACKEND_SCRIPT = r"""
import sys, numpy as np, keras, xfacies
sys.path.insert(0, sys.argv[2])
from conftest import random_features
assert keras.backend.backend() == sys.argv[3], keras.backend.backend()
m = xfacies.load_model(sys.argv[1])
feats = random_features((40, 36), seed=1)
mask = np.zeros((40, 36), np.int32); mask[5:30, 3:33] = 1
import xarray as xr
mask = xr.DataArray(mask, dims=("y", "x"))
d = xfacies.predict_proba(feats.chunk(y=20, x=18), m, mask, method="dense").values
e = xfacies.predict_proba(feats.chunk(y=20, x=18), m, mask, method="exact").values
np.save(sys.argv[4], np.stack([d, e]))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_inference_is_identical_on_other_keras_backends(backend, tiny_model, tmp_path, backend_worker):
    """keras.ops-only model code: dense and exact inference agree with TensorFlow to 1e-5."""
    from conftest import REPO

    out = tmp_path / "p.npy"
    r = backend_worker(backend).run(_BACKEND_SCRIPT, tiny_model.path, REPO / "tests", backend, out)
    assert r.returncode == 0, r.stderr[-3000:]
    other = np.load(out)
    feats = random_features((40, 36), seed=1)
    mask = np.zeros((40, 36), np.int32)
    mask[5:30, 3:33] = 1
    mask = xr.DataArray(mask, dims=("y", "x"))
    d = xfacies.predict_proba(feats, tiny_model, mask, method="dense").values
    e = xfacies.predict_proba(feats, tiny_model, mask, method="exact").values
    np.testing.assert_allclose(other[0], d, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(other[1], e, atol=1e-5, equal_nan=True)


# --------------------------------------------------------------------------- storage windows
@pytest.fixture
def zarr_scene(tmp_path, tiny_model):
    feats = random_features((70, 90), seed=8).rio.write_crs("EPSG:32632")
    ds = xr.Dataset({"features": feats, "glacier": _mask((70, 90), seed=9)})
    store = tmp_path / "inputs.zarr"
    ds.chunk({"y": 32, "x": 40}).to_zarr(store, mode="w", consolidated=False)
    return store


@pytest.mark.parametrize("method", ["dense", "exact"])
def test_storage_backed_features_read_windows_equal_to_chunked_path(tiny_model, zarr_scene, method):
    """Opened with chunks=None, every block reads its own window + halo; same numbers."""
    lazy = xr.open_zarr(zarr_scene, consolidated=False, chunks=None)
    chunked = xr.open_zarr(zarr_scene, consolidated=False)
    p_lazy = xfacies.predict_proba(lazy.features, tiny_model, lazy.glacier, method=method)
    assert p_lazy.chunks[-2:] == ((32, 32, 6), (40, 40, 10))  # the store's chunks
    assert not lazy.features.variable._in_memory  # building the graph read nothing
    whole = xfacies.predict_proba(chunked.features.compute(), tiny_model, chunked.glacier.compute(),
                                  method=method).values
    np.testing.assert_allclose(p_lazy.values, whole, atol=1e-5, equal_nan=True)
    lab = xfacies.classify(lazy.features, tiny_model, lazy.glacier, method=method).values
    np.testing.assert_array_equal(
        lab, xfacies.classify(chunked.features, tiny_model, chunked.glacier, method=method).values)


def test_storage_windows_graph_holds_no_data_and_has_no_neighbour_edges(tiny_model, zarr_scene):
    import pickle

    lazy = xr.open_zarr(zarr_scene, consolidated=False, chunks=None)
    p = xfacies.predict_proba(lazy.features, tiny_model, None)
    g = dict(p.data.__dask_graph__())
    assert len(pickle.dumps(g)) < 100_000  # handles and windows, not pixels
    blocks = [k for k in g if isinstance(k, tuple) and k[0] == p.data.name]
    assert len(blocks) == 3 * 3


def test_storage_windows_run_on_a_local_cluster(tiny_model, zarr_scene, local_cluster):
    from distributed import Client

    lazy = xr.open_zarr(zarr_scene, consolidated=False, chunks=None)
    expected = xfacies.classify(lazy.features, tiny_model, lazy.glacier).compute(scheduler="sync")
    with Client(local_cluster):
        got = xfacies.classify(lazy.features, tiny_model, lazy.glacier).compute()
    np.testing.assert_array_equal(got.values, expected.values)


def test_storage_source_reads_windows_row_of_chunks_by_row(zarr_scene):
    """Windows that start mid-chunk, cross one or two rows of chunks or end at the scene edge
    read the same pixels as one slice."""
    from xfacies.inference.windows import _Source

    var = xr.open_zarr(zarr_scene, consolidated=False, chunks=None).features.variable
    src = _Source(var, ("band", "y", "x"), row_chunk=32)
    whole = var.values
    for y0, y1 in [(0, 70), (5, 31), (30, 34), (31, 65), (63, 64), (40, 70), (32, 64)]:
        got = src.window({"y": slice(y0, y1), "x": slice(7, 55)})
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, whole[:, y0:y1, 7:55])


# --------------------------------------------------------------------------- crop buckets
@given(n=st.integers(1, 700), h=st.integers(0, 40), a=st.integers(0, 699), length=st.integers(1, 700))
def test_crop_contains_the_box_stays_in_the_block_and_takes_a_bucketed_size(n, h, a, length):
    from xfacies.inference.blocks import _crop
    from xfacies.model.runtime import bucket as _bucket

    a = min(a, n - 1)
    b = min(a + length, n)
    r0, r1 = _crop(a, b, n, h)
    assert 0 <= r0 <= a and b <= r1 <= n
    side = r1 - r0 + 2 * h
    assert side == n + 2 * h or side == _bucket(b - a + 2 * h)


def test_dense_blocks_feed_the_network_few_distinct_shapes(tiny_model, monkeypatch):
    """Each distinct input shape costs TensorFlow memory it keeps: 40 blocks with glacier boxes
    of random sizes must reach the network in a few bucketed shapes, with unchanged outputs."""
    from xfacies.inference.blocks import proba_block
    from xfacies.model.bundle import Model

    shapes = []
    original = Model.predict_dense_normalised

    def record(self, x):
        shapes.append(x.shape[:2])
        return original(self, x)

    monkeypatch.setattr(Model, "predict_dense_normalised", record)
    h = tiny_model.halo("dense")
    rng = np.random.default_rng(3)
    feats = random_features((96 + 2 * h, 96 + 2 * h), seed=4).values
    for _ in range(40):
        mask = np.zeros(feats.shape[1:], np.float32)
        y0, x0 = rng.integers(h, h + 90, 2)
        mask[y0:y0 + rng.integers(1, 40), x0:x0 + rng.integers(1, 40)] = 1
        mask[:h], mask[-h:], mask[:, :h], mask[:, -h:] = 0, 0, 0, 0
        block = np.concatenate([feats, mask[None]]).astype(np.float32)
        got = proba_block(block, model_path=str(tiny_model.path), method="dense", halo=h,
                           n_classes=len(tiny_model.classes), batch_size=None)
        # the uncropped block gives the same probabilities where the glacier is
        full = original(tiny_model, tiny_model.normalise(np.moveaxis(np.nan_to_num(feats), 0, -1)))
        inside = mask[h:-h, h:-h] == 1
        np.testing.assert_allclose(np.moveaxis(got, 0, -1)[inside], full[h:-h, h:-h][inside], atol=1e-5)
    assert len(shapes) == 40
    assert len(set(shapes)) <= 10, Counter(shapes)


def test_two_scenes_computed_together_keep_their_own_labels():
    """Every task name carries a hash of its inputs: classifying two scenes and computing them
    in one graph (dask.compute, one Dataset, one to_zarr) gives each its own labels and
    confidence (fixed task names made the second scene silently repeat the first)."""
    import dask

    from xfacies import synthetic

    a = synthetic.season(1, size=96, seed=3).features.chunk(y=48, x=48)
    b = synthetic.season(1, size=96, seed=4).features.chunk(y=48, x=48)
    ca = xfacies.classify(a, "demo", confidence=True, smooth=True)
    cb = xfacies.classify(b, "demo", confidence=True, smooth=True)
    together = dask.compute(ca, cb)
    for one, both in zip((ca.compute(), cb.compute()), together):
        np.testing.assert_array_equal(one["classes"].values, both["classes"].values)
        np.testing.assert_array_equal(one["confidence"].values, both["confidence"].values)
    assert not np.array_equal(together[0]["classes"].values, together[1]["classes"].values)

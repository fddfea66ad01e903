"""GPU execution, checked on CPUs: the precision policy, device-resident dense blocks, the
window-max form of the dense model's lattice max, and ``benchmarks/gpu.py``.

TensorFlow (the default backend) runs in this process; JAX runs once in a subprocess
(``KERAS_BACKEND`` is fixed when Keras loads) whose results several tests read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xfacies
from xfacies.model.calibration import KernelCalibrator

from conftest import REF_WEIGHTS, REPO, random_features

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="JAX is a test extra: pip install -e '.[test]'")


def _mask(shape, seed=0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx]
    m = np.zeros(shape, bool)
    for _ in range(3):
        cy, cx, r = rng.integers(0, ny), rng.integers(0, nx), rng.integers(6, 14)
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
    return xr.DataArray(m.astype(np.int32), dims=("y", "x"))


@pytest.fixture(scope="module")
def calibrated_model(tmp_path_factory):
    """The demo model (its labels vary on random features, unlike a tiny random model's) with a
    calibrator that leaves [0, 1], so that clipping is exercised too."""
    from xfacies.model.registry import BUILTIN

    m = xfacies.Model.load(BUILTIN["demo"])  # a copy of its own, not the cached one
    m.calibrator = KernelCalibrator([0.0, 0.4, 1.0], [1.5, -0.4, 0.6])
    m.save(tmp_path_factory.mktemp("models") / "cal.xfacies")
    return m


def _scene(shape=(60, 70), time=2, seed=7) -> xr.DataArray:
    """Random 11-feature scene (the demo model's domain, so no DomainWarning)."""
    feats = random_features(shape, n_features=11, seed=seed, time=time, smooth=2)
    feats.attrs["xfacies_imagery"] = "synthetic"
    return feats


# --------------------------------------------------------------------------- precision policy
def test_precision_scope_restores_tensorflow_tf32_switch():
    import tensorflow as tf

    from xfacies.model.runtime import precision_scope

    enabled = tf.config.experimental.tensor_float_32_execution_enabled
    before = enabled()
    with precision_scope("float32"):
        assert enabled() is False
        with precision_scope("tf32"):  # nested scopes restore their own entry state
            assert enabled() is True
        assert enabled() is False
    assert enabled() == before
    with pytest.raises(RuntimeError, match="inside"):
        with precision_scope("float32"):
            raise RuntimeError("inside")
    assert enabled() == before  # restored after an error too


def test_invalid_precisions_are_refused_with_the_valid_ones(tiny_model):
    feats = random_features((20, 20))
    with pytest.raises(ValueError, match=r"precision='fp16' is not one of 'float32', 'tf32', 'bfloat16'"):
        xfacies.classify(feats, tiny_model, precision="fp16")
    with pytest.raises(ValueError, match=r"method='exact' always runs in full float32.*method='dense'"):
        xfacies.predict_proba(feats, tiny_model, method="exact", precision="bfloat16")
    with pytest.raises(ValueError, match=r"precision='half'"):
        tiny_model.predict_dense_normalised(np.zeros((30, 30, 6), np.float32), precision="half")
    with pytest.raises(ValueError, match=r"device_blocks=True runs the dense form; got method='exact'"):
        xfacies.classify(feats, tiny_model, method="exact", device_blocks=True)
    # exact with the (only) float32 precision is fine
    xfacies.predict_proba(feats, tiny_model, method="exact", precision="float32")


def test_exact_under_the_float32_policy_equals_the_plain_patch_model(tiny_model):
    """The exact path (patches gathered in the backend, compiled in the float32 scope) gives the
    probabilities of the plain Keras patch model called on the same zero-padded patches."""
    feats = random_features((20, 18), seed=3)
    got = xfacies.predict_proba(feats, tiny_model, method="exact").values
    x = np.pad(tiny_model.normalise(np.moveaxis(feats.values, 0, -1)), ((16, 16), (16, 16), (0, 0)))
    patches = np.stack([x[r:r + 33, c:c + 33] for r in range(20) for c in range(18)])
    want = np.asarray(tiny_model.keras_model(dense=False)(patches, training=False))
    np.testing.assert_allclose(np.moveaxis(got, 0, -1).reshape(-1, 8), want, atol=1e-6)


def _gpu_bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", REPO / "benchmarks" / "gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_exact_equals_an_independent_float64_numpy_forward(calibrated_model):
    """The exact path against the patch network written in float64 NumPy (benchmarks/gpu.py uses
    the same forward to check parity on GPUs): no Keras, no backend, no device."""
    feats = _scene((14, 12), time=None)
    feats[3, 5, 6] = np.nan
    got = xfacies.predict_proba(feats, calibrated_model, method="exact").values
    x = np.nan_to_num(calibrated_model.normalise(np.moveaxis(feats.values, 0, -1)))
    x = np.pad(x, ((16, 16), (16, 16), (0, 0)))
    patches = np.stack([x[r:r + 33, c:c + 33] for r in range(14) for c in range(12)])
    want = _gpu_bench().numpy_patch_forward(calibrated_model, patches).reshape(14, 12, 8)
    want[5, 6] = np.nan
    np.testing.assert_allclose(np.moveaxis(got, 0, -1), want, atol=1e-5)
    assert np.abs(np.nan_to_num(np.moveaxis(got, 0, -1) - want)).max() < 1e-6  # float32 rounding only


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _agreement(model, precision: str, seeds=(200, 201)) -> tuple[float, float, int]:
    """Label agreement with float32 (glacier pixels, no smoothing) and max |probability change|."""
    from xfacies import synthetic

    same = n = 0
    dmax = 0.0
    for seed in seeds:
        ds = synthetic.season(2, size=128, seed=seed)
        f = ds.features.chunk(y=64, x=64)
        p32 = xfacies.predict_proba(f, model, ds.glacier).values
        p = xfacies.predict_proba(f, model, ds.glacier, precision=precision).values
        ok = ~np.isnan(p32[..., 0, :, :])
        same += int((p.argmax(-3)[ok] == p32.argmax(-3)[ok]).sum())
        n += int(ok.sum())
        dmax = max(dmax, float(np.nanmax(np.abs(p - p32))))
    return same / n, dmax, n


def test_reduced_precisions_on_tensorflow_cpu():
    """bfloat16 really computes in bfloat16 (probabilities move) and keeps > 95 % of the demo
    model's labels; tf32 is float32 on a CPU (no TF32 units)."""
    demo = xfacies.load_model("demo")
    agree, dmax, n = _agreement(demo, "bfloat16")
    assert n > 5000
    assert agree > 0.95 and 1e-4 < dmax < 0.1, (agree, dmax)
    if not _gpu_visible():
        agree, dmax, _ = _agreement(demo, "tf32")
        assert agree == 1.0 and dmax == 0.0
    km = demo.keras_model(dense=True, fused=True, precision="bfloat16")
    assert km.get_layer("s1_0_conv").compute_dtype == "bfloat16"
    assert km.get_layer("probabilities").compute_dtype == "float32"


# --------------------------------------------------------------------------- device blocks
@pytest.mark.parametrize("chunks", [None, {"y": 23, "x": 31}, {"y": 30, "x": 35}])
@pytest.mark.parametrize("smooth", [False, True])
def test_device_blocks_equal_the_default_path(calibrated_model, chunks, smooth):
    """Labels, smoothing and calibrated confidence of the one-call device path equal the
    default path (probabilities, then labels, mode filter and confidence as tasks of their own):
    missing features, pixels outside the outlines, chunks smaller than the halo, a time axis."""
    feats = _scene()
    feats[0, :, 10:13, 20:24] = np.nan  # a cloud on one date: nodata there, zeros in neighbours' input
    feats[1, 2, 30, 40] = np.inf
    mask = _mask((60, 70), seed=8)
    if chunks:
        feats = feats.chunk(chunks)
    kw = dict(smooth=smooth, confidence=True)
    merged = chunks == {"y": 23, "x": 31}  # smaller than the halo: merged, with a note
    with pytest.warns(xfacies.inference.ChunkWarning) if merged else warnings.catch_warnings():
        if not merged:
            warnings.simplefilter("error")
        want = xfacies.classify(feats, calibrated_model, mask, **kw).compute()
        got = xfacies.classify(feats, calibrated_model, mask, device_blocks=True, **kw).compute()
        # labels only (no confidence): the int8 map itself
        only = xfacies.classify(feats, calibrated_model, mask, smooth=smooth, device_blocks=True)
    np.testing.assert_array_equal(got.classes.values, want.classes.values)
    np.testing.assert_array_equal(got.confidence.values, want.confidence.values)
    xr.testing.assert_identical(got, want)  # and the same coordinates and attributes
    assert got.classes.dtype == np.int8 and got.confidence.dtype == np.float32
    lab = got.classes.values
    assert (lab[0, 10:13, 20:24] == xfacies.NODATA).all() and lab[1, 30, 40] == xfacies.NODATA
    assert (lab[:, mask.values == 0] == xfacies.NODATA).all() and (lab >= 0).sum() > 1000
    assert len(np.unique(lab[lab >= 0])) >= 4  # labels that vary, so equality means something
    assert got.confidence.max() <= 1.0 and np.nanmin(got.confidence.values) < 0.9
    assert only.dtype == np.int8
    np.testing.assert_array_equal(only.values, want.classes.values)


def test_device_blocks_smoothing_equals_the_slow_mode_filter():
    """Independent check of the on-device mode filter: the smoothed map is the slow mode filter
    (a Counter per pixel) of the unsmoothed map, across chunk borders."""
    from test_inference import slow_mode

    demo = xfacies.load_model("demo")
    feats = random_features((80, 70), n_features=11, seed=9, smooth=1)  # noisy labels
    feats.attrs["xfacies_imagery"] = "synthetic"  # the demo model's domain: no DomainWarning
    mask = _mask((80, 70), seed=3)
    raw = xfacies.classify(feats, demo, mask, smooth=False).values
    got = xfacies.classify(feats.chunk(y=40, x=35), demo, mask, device_blocks=True)
    assert got.chunks == ((40, 40), (35, 35))  # chunk borders inside, no merging
    got = got.values
    assert (got != raw).sum() > 100  # smoothing changes many pixels here
    np.testing.assert_array_equal(got, slow_mode(raw))


def test_device_blocks_skip_all_nodata_chunks_and_check_their_input(tiny_model, monkeypatch):
    from xfacies.model import bundle

    calls = []
    orig = bundle.Model.predict_dense_block
    monkeypatch.setattr(bundle.Model, "predict_dense_block",
                        lambda self, b, h, **kw: calls.append(b.shape) or orig(self, b, h, **kw))
    feats = random_features((60, 30))
    mask = np.zeros((60, 30), np.int32)
    mask[:30] = 1
    out = xfacies.classify(feats.chunk(y=30, x=30), tiny_model, xr.DataArray(mask, dims=("y", "x")),
                           device_blocks=True).values
    assert len(calls) == 1
    assert (out[30:] == xfacies.NODATA).all() and (out[:30] >= 0).all()
    h = tiny_model.dense_radius
    with pytest.raises(ValueError, match=r"halo=28 is too small.*28 px \+ 1 for smoothing = 29"):
        orig(tiny_model, np.zeros((7, 70, 70), np.float32), h, smooth=True)
    with pytest.raises(ValueError, match=r"F = 6 features and a mask band; got shape \(6, 70, 70\)"):
        orig(tiny_model, np.zeros((6, 70, 70), np.float32), h)


def test_storage_backed_features_with_a_precision_or_device_blocks(calibrated_model, tmp_path):
    """Features opened lazily (``chunks=None``) go through dask chunks of the storage's size when
    a reduced precision or device blocks are asked for: the numbers of in-memory features."""
    feats = _scene((70, 90), time=None)
    ds = xr.Dataset({"features": feats, "glacier": _mask((70, 90), seed=9)})
    ds.chunk({"y": 35, "x": 45}).to_zarr(tmp_path / "in.zarr", mode="w", consolidated=False)
    lazy = xr.open_zarr(tmp_path / "in.zarr", consolidated=False, chunks=None)
    mem = xr.open_zarr(tmp_path / "in.zarr", consolidated=False).compute()
    p = xfacies.predict_proba(lazy.features, calibrated_model, lazy.glacier, precision="bfloat16")
    assert p.chunks[-2:] == ((35, 35), (45, 45))
    want = xfacies.predict_proba(mem.features, calibrated_model, mem.glacier, precision="bfloat16").values
    np.testing.assert_allclose(p.values, want, atol=1e-5, equal_nan=True)
    got = xfacies.classify(lazy.features, calibrated_model, lazy.glacier, device_blocks=True).values
    np.testing.assert_array_equal(got, xfacies.classify(mem.features, calibrated_model, mem.glacier).values)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_classes=st.integers(2, 8))
def test_mode3x3_in_keras_ops_equals_smooth_mode(seed, n_classes):
    """Ties (frequent with few classes) go to the lowest id; nodata is never counted."""
    import keras

    from xfacies.inference import smooth_mode
    from xfacies.model.runtime import mode3x3

    lab = np.random.default_rng(seed).integers(-1, n_classes, size=(9, 12)).astype(np.int32)
    got = keras.ops.convert_to_numpy(mode3x3(keras.ops.convert_to_tensor(lab), 8))
    np.testing.assert_array_equal(got, smooth_mode(lab.astype(np.int8)))
    # ids beyond the counted classes are not counted (as smooth_mode's n_classes)
    got = keras.ops.convert_to_numpy(mode3x3(keras.ops.convert_to_tensor(lab), n_classes - 1))
    np.testing.assert_array_equal(got, smooth_mode(lab.astype(np.int8), n_classes - 1))


# --------------------------------------------------------------------------- lattice max
@pytest.mark.parametrize("shape", [(40, 37), (5, 9), (31, 31), (1, 1)])
def test_window_max_lattice_max_equals_brute_force(shape):
    """Step 1 (the fused dense form's global max, on sub-lattices) runs as two stride-1
    max pools; the numbers are the brute-force max over the 11 x 11 neighbourhood, outside
    ignored, bit for bit."""
    from xfacies.model.architecture import _make_layers

    _, LatticeMax, _, _ = _make_layers()
    H, W = shape
    x = np.random.default_rng(H * W).random((2, H, W, 3)).astype(np.float32) - 2.0  # all negative
    got = np.asarray(LatticeMax(5, 1)(x))
    p = np.pad(x, ((0, 0), (5, 5), (5, 5), (0, 0)), constant_values=-np.inf)
    want = np.max([p[:, dy:dy + H, dx:dx + W] for dy in range(11) for dx in range(11)], axis=0)
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- JAX (subprocess)
_JAX_SCRIPT = textwrap.dedent(r"""
    import json, re, sys
    import numpy as np, jax, keras, xarray as xr, xfacies
    sys.path.insert(0, sys.argv[1])
    from test_precision import _agreement, _mask, _scene
    from xfacies.model.architecture import _make_layers
    from xfacies.model.runtime import mode3x3, precision_scope
    from xfacies.inference import smooth_mode
    assert keras.backend.backend() == "jax", keras.backend.backend()
    out = {}
    # the precision scope: thread-local, applied when tracing, restored after
    before = jax.config.jax_default_matmul_precision
    x, k = np.ones((1, 8, 8, 3), np.float32), np.ones((3, 3, 3, 4), np.float32)
    conv = lambda a: keras.ops.conv(a, k, padding="same")
    seen = {}
    for p in ("float32", "tf32", "bfloat16"):
        with precision_scope(p):
            seen[p] = [jax.config.jax_default_matmul_precision,
                       sorted(set(re.findall(r"precision (\w+)", jax.jit(conv).lower(x).as_text())))]
    try:
        with precision_scope("float32"):
            raise KeyError("inside")
    except KeyError:
        pass
    out["scope"] = {"before": before, "after": jax.config.jax_default_matmul_precision, "seen": seen}
    # device blocks vs the default path, calibrated confidence and smoothing
    m = xfacies.load_model(sys.argv[2])
    feats = _scene()
    feats[0, :, 10:13, 20:24] = np.nan
    mask = _mask((60, 70), seed=8)
    eq = {}
    for chunks in (None, {"y": 23, "x": 31}):
        f = feats.chunk(chunks) if chunks else feats
        for smooth in (False, True):
            a = xfacies.classify(f, m, mask, smooth=smooth, confidence=True).compute()
            b = xfacies.classify(f, m, mask, smooth=smooth, confidence=True, device_blocks=True).compute()
            lab = b.classes.values
            eq[f"{chunks}-{smooth}"] = [bool(np.array_equal(a.classes.values, lab)),
                                        bool(np.array_equal(a.confidence.values, b.confidence.values,
                                                            equal_nan=True)),
                                        int((lab >= 0).sum()), len(np.unique(lab[lab >= 0]))]
    out["device_blocks"] = eq
    # precision on the demo model
    demo = xfacies.load_model("demo")
    out["agreement"] = {p: _agreement(demo, p) for p in ("tf32", "bfloat16")}
    out["bf16_dtype"] = demo.keras_model(dense=True, fused=True, precision="bfloat16").get_layer(
        "s1_0_conv").compute_dtype
    # lattice max as window max, mode filter
    _, LatticeMax, _, _ = _make_layers()
    xs = np.random.default_rng(1).random((2, 40, 37, 3)).astype(np.float32) - 2.0
    pad = np.pad(xs, ((0, 0), (5, 5), (5, 5), (0, 0)), constant_values=-np.inf)
    want = np.max([pad[:, dy:dy + 40, dx:dx + 37] for dy in range(11) for dx in range(11)], axis=0)
    out["lattice_max"] = bool(np.array_equal(np.asarray(LatticeMax(5, 1)(xs)), want))
    labs = np.random.default_rng(2).integers(-1, 3, size=(30, 9, 12)).astype(np.int32)
    out["mode3x3"] = all(np.array_equal(keras.ops.convert_to_numpy(mode3x3(keras.ops.convert_to_tensor(l), 8)),
                                        smooth_mode(l.astype(np.int8))) for l in labs)
    print("JSON" + json.dumps(out))
""")


@pytest.fixture(scope="module")
def jax_results(calibrated_model, backend_worker):
    r = backend_worker("jax").run(_JAX_SCRIPT, REPO / "tests", calibrated_model.path)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.split("JSON", 1)[1])


@needs_jax
def test_jax_precision_scope_applies_when_tracing_and_restores(jax_results):
    s = jax_results["scope"]
    assert s["before"] is None and s["after"] is None  # the process's setting is untouched
    assert s["seen"]["float32"] == ["highest", ["HIGHEST"]]  # in the convolution's HLO
    assert s["seen"]["tf32"] == ["tensorfloat32", ["HIGH"]]
    assert s["seen"]["bfloat16"] == ["bfloat16", ["DEFAULT"]]


@needs_jax
def test_jax_device_blocks_equal_the_default_path(jax_results):
    for case, (labels_equal, conf_equal, n_valid, n_classes) in jax_results["device_blocks"].items():
        assert labels_equal and conf_equal, case
        assert n_valid > 1000 and n_classes >= 4, case


@needs_jax
def test_jax_bfloat16_keeps_the_demo_models_labels(jax_results):
    agree, dmax, n = jax_results["agreement"]["bfloat16"]
    assert n > 5000 and agree > 0.95 and 1e-4 < dmax < 0.1, jax_results["agreement"]
    agree, dmax, _ = jax_results["agreement"]["tf32"]
    assert agree == 1.0 and dmax == 0.0  # a CPU has no TF32 units (JAX_PLATFORMS=cpu)
    assert jax_results["bf16_dtype"] == "bfloat16"


@needs_jax
def test_jax_window_max_and_mode_filter(jax_results):
    assert jax_results["lattice_max"] and jax_results["mode3x3"]


# --------------------------------------------------------------------------- benchmarks/gpu.py
@needs_jax
def test_gpu_benchmark_runs_without_the_gdal_stack(tmp_path):
    """``benchmarks/gpu.py --smoke`` (the --quick run at its smallest) with the JAX backend and
    rasterio, rioxarray, pyproj, geopandas, shapely, odc and pystac blocked: here by the blocker
    of test_layout, in the backend's subprocess by the script's own (``--block-gdal``, the
    same list)."""
    from test_layout import BLOCKER, GDAL_STACK

    assert _gpu_bench().GDAL_STACK == GDAL_STACK
    # JAX carries the checks; torch's inference is checked against TensorFlow in test_inference (its
    # smoke run here would add 80 s on 2 cores), so torch is named only to test the "not installed" report
    backends = "jax,torch" if importlib.util.find_spec("torch") is None else "jax"
    script = BLOCKER + textwrap.dedent(f"""
        import runpy
        sys.argv = ["gpu.py", "--smoke", "--backends", {backends!r}, "--block-gdal",
                    "--json", {str(tmp_path / "r.json")!r}]
        try:
            runpy.run_path({str(REPO / "benchmarks" / "gpu.py")!r}, run_name="__main__")
        except SystemExit as e:
            assert not e.code, e.code
        assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cwd=REPO)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = json.loads((tmp_path / "r.json").read_text())
    res = out["jax"]
    assert res["blocked_gdal_stack"] is True and res["gdal_modules_loaded"] == []
    assert set(res["ceiling"]) == {"float32", "tf32", "bfloat16"} and min(res["ceiling"].values()) > 0
    assert {(row["precision"], row["path"].split()[0]) for row in res["dense"]} == {
        (p, k) for p in ("float32", "tf32", "bfloat16") for k in ("network", "device")}
    assert all(row["of_ceiling"] > 0 for row in res["dense"] + res["exact"] + res["pipeline"])
    assert {row["device_blocks"] for row in res["pipeline"]} == {False, True}
    par = res["parity"]
    assert par["exact_vs_float64"] < 1e-5 and par["patches_vs_float64"] < 1e-5
    assert par["dense_labels"]["float32"] == 1.0 and par["dense_labels"]["bfloat16"] > 0.95
    if (REF_WEIGHTS / "reference_outputs.json").exists():
        assert par["reference_outputs"] < 1e-5
    if importlib.util.find_spec("torch") is None:  # reported, never silently absent
        assert out["torch"] == {"skipped": "not installed"} and "torch: not installed, skipped" in r.stdout

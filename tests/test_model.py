"""Model bundles, the reference CNN, reference weights and calibration."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import xfacies
from xfacies.errors import UnsafeFileError
from xfacies.model.bundle import BundleError
from xfacies.model.calibration import KernelCalibrator, calibrator_from_sklearn

from conftest import REF_WEIGHTS, REPO, make_tiny_model, needs_shared

WEIGHT_FILES = [f"fs{s}/0_cnn_{st}confidentlearning_weights.h5" for s in (1, 2, 3, 4)
                for st in ("after", "before")]


def _reference_outputs():
    return json.loads((REF_WEIGHTS / "reference_outputs.json").read_text())


# ----------------------------------------------------------------- architecture
def test_reference_architecture_has_published_size():
    from xfacies.model.architecture import CNNConfig, reference_cnn

    # 197k-200k parameters for 6..11 features (facts of the reference).
    for n in (6, 11):
        assert 197_000 <= reference_cnn(n).count_params() <= 200_500
    assert CNNConfig(n_features=11).dense_radius == 28
    assert CNNConfig(n_features=11).patch_radius == 16


def test_dense_form_taps_equal_patch_form_on_constant_scene():
    """On a constant scene far from edges every patch is identical except for the patch-border
    zero padding, which only the global max sees. With the global-max term taken from the
    centre of a constant field, dense and patch agree exactly when the scene is a single patch."""
    from xfacies.model.architecture import reference_cnn

    m = make_tiny_model(6)
    patch = m.keras_model(dense=False)
    dense = m.keras_model(dense=True)
    assert [w.shape for w in patch.get_weights()] == [w.shape for w in dense.get_weights()]
    x = np.random.default_rng(3).random((1, 33, 33, 6)).astype(np.float32)
    # For a 33x33 scene the dense output at the centre sees the same zero padding at the
    # scene border as the patch does at the patch border for taps 1 and 2, and the lattice max
    # covers exactly the 11x11 pooled cells: identical result.
    p_patch = patch.predict_on_batch(x)[0]
    p_dense = dense.predict_on_batch(x)[0, 16, 16]
    np.testing.assert_allclose(p_dense, p_patch, atol=1e-5)
    assert reference_cnn(6, dense=True).output_shape == (None, None, None, 8)


# ----------------------------------------------------------------- bundles
def test_bundle_round_trip(tmp_path):
    m = make_tiny_model(8)
    m.calibrator = KernelCalibrator([0.0, 0.5, 1.0], [0.1, 0.2, 0.3])
    m.metadata = {"note": "test"}
    p = m.save(tmp_path / "m.xfacies")
    m2 = xfacies.load_model(p)
    assert m2.features == xfacies.FEATURE_SETS[2]
    assert m2.classes == tuple(c.name for c in xfacies.CLASSES)
    assert m2.normalisation == m.normalisation
    assert m2.calibrator == m.calibrator
    assert m2.metadata == {"note": "test"}
    assert m2.xfacies_version == xfacies.__version__
    x = np.random.default_rng(0).random((5, 33, 33, 8)).astype(np.float32)
    np.testing.assert_array_equal(m.predict_patches(x), m2.predict_patches(x))
    with zipfile.ZipFile(p) as zf:  # pickle-free, self-describing
        assert sorted(zf.namelist()) == ["model.json", "weights.npz"]
        meta = json.loads(zf.read("model.json"))
    assert meta["architecture"] == "reference-cnn" and meta["inputs_normalised"] is False


def test_predict_patches_normalises_with_stored_minmax():
    m = make_tiny_model(6)
    raw = np.random.default_rng(1).random((3, 33, 33, 6)).astype(np.float32) * 5
    lo, hi = np.array(m.normalisation["min"]), np.array(m.normalisation["max"])
    expected = m.keras_model().predict_on_batch(((raw - lo) / (hi - lo)).astype(np.float32))
    np.testing.assert_allclose(m.predict_patches(raw), expected, atol=1e-6)
    assert m.predict_patches(raw).shape == (3, 8)


def test_corrupted_bundle_is_refused(tmp_path):
    m = make_tiny_model(6)
    p = m.save(tmp_path / "m.xfacies")
    data = p.read_bytes()
    (tmp_path / "truncated.xfacies").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="not a readable xfacies model bundle"):
        xfacies.load_model(tmp_path / "truncated.xfacies")
    # Edit one weight inside an otherwise valid archive: the checksum catches it.
    with zipfile.ZipFile(p) as zf:
        meta, weights = zf.read("model.json"), zf.read("weights.npz")
    import io

    arrays = dict(np.load(io.BytesIO(weights)))
    arrays["w000"] = arrays["w000"] + 1e-3
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(tmp_path / "edited.xfacies", "w") as zf:
        zf.writestr("model.json", meta)
        zf.writestr("weights.npz", buf.getvalue())
    with pytest.raises(BundleError, match="checksum mismatch"):
        xfacies.load_model(tmp_path / "edited.xfacies")
    (tmp_path / "garbage.xfacies").write_bytes(b"not a zip at all")
    with pytest.raises(BundleError, match="re-download it or save it again"):
        xfacies.load_model(tmp_path / "garbage.xfacies")


def test_bundle_refuses_inconsistent_contents():
    m = make_tiny_model(6)
    with pytest.raises(BundleError, match="one value per feature"):
        xfacies.Model(m.architecture, m.config, m.weights, m.features, m.classes,
                      normalisation={"min": [0] * 5, "max": [1] * 5})
    # any band name of the user's is a model input (#24); a name given twice is not
    own = xfacies.Model(m.architecture, m.config, m.weights, ("blue", "ultraviolet") + m.features[2:], m.classes)
    assert own.features[1] == "ultraviolet"
    with pytest.raises(ValueError, match="band names must be distinct"):
        xfacies.Model(m.architecture, m.config, m.weights, ("blue", "blue") + m.features[2:], m.classes)
    with pytest.raises(BundleError, match="architecture expects 6 features"):
        xfacies.Model(m.architecture, m.config, m.weights, xfacies.FEATURE_SETS[2], m.classes)


def test_predict_patches_rejects_bad_input():
    m = make_tiny_model(6)
    with pytest.raises(ValueError, match=r"\(N, 33, 33, 6\)"):
        m.predict_patches(np.zeros((2, 33, 33, 8), np.float32))
    with pytest.raises(TypeError, match="integer dtype"):
        m.predict_patches(np.zeros((2, 33, 33, 6), np.uint16))


def test_load_model_demo_is_shipped():
    model = xfacies.load_model("demo")
    assert model.features == xfacies.FEATURE_SETS[4]
    assert model.normalisation is not None
    assert "macro_f1_dense" in model.metadata


def test_load_model_url_needs_pinned_hash():
    with pytest.raises(ValueError, match="needs its sha256"):
        xfacies.load_model("http://127.0.0.1:9/x.xfacies")


# ----------------------------------------------------------------- calibration
def test_kernel_calibrator_equals_sklearn_kernel_ridge():
    from sklearn.kernel_ridge import KernelRidge

    rng = np.random.default_rng(0)
    x = np.r_[0.0, np.sort(rng.random(15)), 1.0][:, None]
    y = np.clip(x[:, 0] + rng.normal(0, 0.05, len(x)), 0, 1)
    kr = KernelRidge(kernel="laplacian", gamma=1.0, alpha=rng.random(len(x)) * 0.01).fit(x, y)
    cal = calibrator_from_sklearn(kr)
    grid = np.linspace(0, 1, 101)
    np.testing.assert_allclose(cal.predict_unclipped(grid), kr.predict(grid[:, None]), atol=1e-12)
    out = cal(np.array([np.nan, 0.3, 5.0]))
    assert np.isnan(out[0]) and 0 <= out[1] <= 1 and out[2] <= 1


@needs_shared("weights", "reference", "calibration")
@pytest.mark.parametrize("fold", range(6))
def test_reference_calibrators_reproduce_published_outputs(fold, tmp_path):
    from xfacies.model.calibration import read_reference_calibrator

    ref = _reference_outputs()["calibration"][f"{fold}_calibration_model.pickle"]
    # the reference's own pickle (as reference_model reads it after checking its sha256) ...
    cal = read_reference_calibrator(REF_WEIGHTS / "calibration" / f"{fold}_calibration_model.pickle",
                                    trust_pickle=True)
    # ... and its one-time JSON conversion, what users pass everywhere else: the same curve
    from xfacies.model.calibration import read_calibrator
    from xfacies.model.reference import convert_reference_file

    js = convert_reference_file(REF_WEIGHTS / "calibration" / f"{fold}_calibration_model.pickle",
                                tmp_path / "cal.json", trust_pickle=True)
    np.testing.assert_array_equal(read_calibrator(js).predict_unclipped(np.array(ref["confidence"])),
                                  cal.predict_unclipped(np.array(ref["confidence"])))
    np.testing.assert_allclose(cal.predict_unclipped(np.array(ref["confidence"])),
                               ref["calibrated_unclipped"], atol=1e-6)
    # Stored pickle-free in a bundle and back.
    m = make_tiny_model(6)
    m.calibrator = cal
    m2 = xfacies.load_model(m.save(tmp_path / "c.xfacies"))
    np.testing.assert_allclose(m2.calibrator(np.array(ref["confidence"])),
                               np.clip(ref["calibrated_unclipped"], 0, 1), atol=1e-6)


# ----------------------------------------------------------------- reference weights
@needs_shared("weights", "reference", "reference_outputs.json")
@pytest.mark.parametrize("name", WEIGHT_FILES)
def test_import_reference_reproduces_published_outputs(name, tmp_path):
    ref = _reference_outputs()["models"][name]
    model = xfacies.import_reference(REF_WEIGHTS / name)
    F = ref["n_features"]
    assert len(model.features) == F
    assert model.features == xfacies.FEATURE_SETS[{6: 1, 8: 2, 10: 3, 11: 4}[F]]
    assert model.normalisation is None
    x = np.random.default_rng(0).random((4, 33, 33, F), dtype=np.float32)
    np.testing.assert_allclose(model.predict_patches(x), ref["probabilities"], atol=1e-5)
    # ...and again after a save/load round trip through a bundle.
    m2 = xfacies.load_model(model.save(tmp_path / "ref.xfacies"))
    np.testing.assert_allclose(m2.predict_patches(x), ref["probabilities"], atol=1e-5)


@needs_shared("weights", "reference", "reference_outputs.json")
def test_reference_weights_load_unchanged_into_keras_model():
    """The legacy .h5 files load with plain keras ``load_weights`` (by layer order)."""
    from xfacies.model.architecture import reference_cnn

    km = reference_cnn(11)
    km.load_weights(str(REF_WEIGHTS / WEIGHT_FILES[6]))
    x = np.random.default_rng(0).random((4, 33, 33, 11), dtype=np.float32)
    ref = _reference_outputs()["models"][WEIGHT_FILES[6]]["probabilities"]
    np.testing.assert_allclose(km.predict_on_batch(x), ref, atol=1e-5)


_JAX_SCRIPT = r"""
import json, sys
import numpy as np, keras, xfacies
assert keras.backend.backend() == "jax", keras.backend.backend()
root = sys.argv[1]
ref = json.load(open(root + "/reference_outputs.json"))
worst = 0.0
for name, r in ref["models"].items():
    m = xfacies.import_reference(root + "/" + name)
    x = np.random.default_rng(0).random((4, 33, 33, r["n_features"]), dtype=np.float32)
    worst = max(worst, float(np.abs(m.predict_patches(x) - np.array(r["probabilities"])).max()))
print("WORST", worst, len(ref["models"]))
"""


@needs_shared("weights", "reference", "reference_outputs.json")
def test_reference_weights_on_jax_backend(backend_worker):
    out = backend_worker("jax").run(_JAX_SCRIPT, REF_WEIGHTS)
    assert out.returncode == 0, out.stderr[-3000:]
    worst, n = out.stdout.split("WORST")[1].split()
    assert int(n) == 8 and float(worst) < 1e-5, out.stdout


def test_import_reference_rejects_wrong_feature_count(tmp_path):
    import h5py

    bad = tmp_path / "seven.h5"
    with h5py.File(bad, "w") as f:
        f.attrs["layer_names"] = np.array([b"conv2d"])
        g = f.create_group("conv2d")
        g.attrs["weight_names"] = np.array([b"conv2d/kernel:0", b"conv2d/bias:0"])
        g.create_dataset("conv2d/kernel:0", data=np.zeros((3, 3, 7, 64), np.float32))
        g.create_dataset("conv2d/bias:0", data=np.zeros(64, np.float32))
    with pytest.raises(BundleError, match="7 input channels, which matches no reference feature set"):
        xfacies.import_reference(bad)
    (tmp_path / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n broken")
    with pytest.raises(BundleError, match="not a readable Keras .h5"):
        xfacies.import_reference(tmp_path / "broken.h5")
    with pytest.raises(BundleError, match="Keras .h5 weight file, not an xfacies bundle"):
        xfacies.load_model(bad)


@needs_shared("weights", "reference", "fs2")
def test_import_reference_with_minmax_and_mismatched_features(tmp_path):
    h5 = REF_WEIGHTS / "fs2" / "0_cnn_afterconfidentlearning_weights.h5"
    with pytest.raises(BundleError, match="expects 8 input features but 6 were named"):
        xfacies.import_reference(h5, features=xfacies.FEATURE_SETS[1])
    mins, maxs = np.zeros(11), np.arange(1, 12, dtype=float)
    import pickle

    pkl = tmp_path / "globalminmax.pickle"
    pkl.write_bytes(pickle.dumps((mins, maxs)))
    with pytest.raises(UnsafeFileError, match="convert-reference"):
        xfacies.import_reference(h5, pkl)
    from xfacies.model.reference import convert_reference_file

    js = convert_reference_file(pkl, tmp_path / "globalminmax.json", trust_pickle=True)
    m = xfacies.import_reference(h5, js)
    assert m.normalisation == {"min": [0.0] * 8, "max": list(maxs[:8])}
    with pytest.raises(ValueError, match="expected 11"):
        xfacies.import_reference(h5, (np.zeros(5), np.ones(5)))


@pytest.fixture()
def reference_server(tmp_path):
    """A loopback HTTP server laid out like the reference repository (files from ../shared)."""
    root = tmp_path / "repo"
    (root / "weights" / "4").mkdir(parents=True)
    (root / "confidence_calibration_models").mkdir()
    shutil.copy(REF_WEIGHTS / "fs4" / "0_cnn_afterconfidentlearning_weights.h5", root / "weights" / "4")
    shutil.copy(REF_WEIGHTS / "calibration" / "0_calibration_model.pickle",
                root / "confidence_calibration_models")
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            hits.append(self.path)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}", hits, root
    srv.shutdown()


@needs_shared("weights", "reference", "fs4")
def test_reference_model_downloads_once_with_pinned_hashes(reference_server):
    url, hits, root = reference_server
    m = xfacies.reference_model(4, fold=0, stage="after", base_url=url)
    assert m.calibrator is not None and len(m.features) == 11
    n = len(hits)
    assert n == 2
    xfacies.reference_model(4, fold=0, stage="after", base_url=url)
    assert len(hits) == n  # cached: no second download
    ref = _reference_outputs()["models"][WEIGHT_FILES[6]]["probabilities"]
    x = np.random.default_rng(0).random((4, 33, 33, 11), dtype=np.float32)
    np.testing.assert_allclose(m.predict_patches(x), ref, atol=1e-5)
    with pytest.raises(ValueError, match="no pinned sha256"):
        xfacies.reference_model(4, fold=3, base_url=url)


@needs_shared("weights", "reference", "fs4")
def test_reference_model_refuses_a_file_with_the_wrong_hash(reference_server):
    url, hits, root = reference_server
    (root / "weights" / "4" / "0_cnn_afterconfidentlearning_weights.h5").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="does not match sha256"):
        xfacies.reference_model(4, base_url=url, calibrate=False)


def test_reference_model_names_an_unreachable_server():
    with pytest.raises(ConnectionError, match="127.0.0.1:9"):
        xfacies.reference_model(4, base_url="http://127.0.0.1:9", calibrate=False)


@pytest.mark.parametrize("shape", [(40, 37), (5, 9), (31, 31), (1, 1)])
def test_lattice_max_equals_brute_force(shape):
    """The dense form's global-max term: max over offsets -15..15 step 3, outside ignored."""
    from xfacies.model.architecture import _make_layers

    _, LatticeMax, _, _ = _make_layers()
    H, W = shape
    x = np.random.default_rng(H * W).random((2, H, W, 3)).astype(np.float32)
    got = np.asarray(LatticeMax(5, 3)(x))
    p = np.pad(x, ((0, 0), (15, 15), (15, 15), (0, 0)), constant_values=-np.inf)
    want = np.max([p[:, 15 + dy:15 + dy + H, 15 + dx:15 + dx + W]
                   for dy in range(-15, 16, 3) for dx in range(-15, 16, 3)], axis=0)
    np.testing.assert_array_equal(got, want)


def test_batchnorm_folding_preserves_outputs():
    from xfacies.model.architecture import fold_batchnorm

    m = make_tiny_model(11, seed=2)
    x = np.random.default_rng(5).random((3, 33, 33, 11)).astype(np.float32)
    plain = m.keras_model(fused=False).predict_on_batch(x)
    fused = m.keras_model(fused=True).predict_on_batch(x)
    np.testing.assert_allclose(fused, plain, atol=1e-5)
    assert len(fold_batchnorm(m.weights, m.cnn_config)) == len(m.weights) - 4 * 6
    # the fused dense form runs scale 2 on the pool's sub-lattices: sides multiples of the pool
    img = np.random.default_rng(6).random((1, 51, 45, 11)).astype(np.float32)
    np.testing.assert_allclose(m.keras_model(dense=True, fused=True).predict_on_batch(img),
                               m.keras_model(dense=True).predict_on_batch(img), atol=1e-5)


def test_dense_prediction_pads_to_the_lattice_and_keeps_the_pixels_callers_keep():
    """Other sides are zero-padded beyond the far edges: every output at least the receptive
    field away from them equals the dilated dense form's; sides that fit give every pixel."""
    m = make_tiny_model(11, seed=2)
    r = m.cnn_config.dense_radius
    for shape in [(50, 46), (52, 47), (49, 48)]:
        img = np.random.default_rng(7).random(shape + (11,)).astype(np.float32)
        got = m.predict_dense_normalised(img)
        want = m.keras_model(dense=True).predict_on_batch(img[None])[0]
        assert got.shape == want.shape
        k = m.cnn_config.pool
        keep_y = shape[0] if shape[0] % k == 0 else shape[0] - r
        keep_x = shape[1] if shape[1] % k == 0 else shape[1] - r
        np.testing.assert_allclose(got[:keep_y, :keep_x], want[:keep_y, :keep_x], atol=1e-5)


def test_load_model_from_url_is_hash_pinned_and_cached(tmp_path):
    import hashlib

    m = make_tiny_model(6, seed=9)
    served = tmp_path / "srv"
    served.mkdir()
    p = m.save(served / "tiny.xfacies")
    sha = hashlib.sha256(p.read_bytes()).hexdigest()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(served), **k)

        def log_message(self, *a):
            hits.append(self.path)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_port}/tiny.xfacies"
    try:
        got = xfacies.load_model(url, sha256=sha)
        assert got.sha256 == m.sha256
        xfacies.load_model(url, sha256=sha)
        assert len(hits) == 1  # second call from the cache
        (served / "tampered.xfacies").write_bytes(b"not the pinned file")
        with pytest.raises(BundleError, match="does not match sha256"):
            xfacies.load_model(url.replace("tiny", "tampered"), sha256=sha)
    finally:
        srv.shutdown()

"""Zone segmentation through the inference engine, the translation-exact dilated network, the
zone trainer, the shipped ``caffe-zones`` model and the ``xfacies caffe`` commands."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xfacies
import xfacies.caffe as caffe
from xfacies import catalog
from xfacies.model.architecture import build
from xfacies.model.bundle import Model
from xfacies.model.dilated import DilatedConfig

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "data" / "caffe-256"
ZONE_NAMES = tuple(z.name for z in catalog.ZONES)
SMALL = {"n_features": 1, "n_classes": 4, "filters": 5, "dilations": [1, 2, 3, 1]}


def _random_model(cfg=SMALL, seed=0) -> Model:
    import keras

    keras.utils.set_random_seed(seed)
    km = build("dilated-fcn", cfg, dense=True)
    # random biases too (Keras starts them at zero), so the zero padding is visible
    rng = np.random.default_rng(seed)
    km.set_weights([w if w.ndim > 1 else rng.normal(0, 0.3, w.shape).astype(np.float32)
                    for w in km.get_weights()])
    return Model("dilated-fcn", cfg, km.get_weights(), ("sar",), ZONE_NAMES,
                 normalisation={"min": [0.0], "max": [255.0]},
                 metadata={"training_domain": {"imagery": "real"}})


def _numpy_forward(model: Model, sar: np.ndarray) -> np.ndarray:
    """The network written out in NumPy: zero padding by R around the image, then each unpadded
    dilated 3 x 3 convolution as nine shifted multiply-adds, ReLU, a 1 x 1 softmax.  NaN (no
    data) pixels are zero in normalised space, as the engine's halo is."""
    cfg = DilatedConfig(**model.config)
    R = cfg.patch_radius
    x = np.nan_to_num(sar.astype(np.float64) / 255.0)[..., None]
    h = np.pad(x, ((R, R), (R, R), (0, 0)))
    w = [np.asarray(a, np.float64) for a in model.weights]
    for i, d in enumerate(cfg.dilations):
        k, b = w[2 * i], w[2 * i + 1]
        H, W = h.shape[0] - 2 * d, h.shape[1] - 2 * d
        out = np.zeros((H, W, k.shape[-1])) + b
        for dy in range(3):
            for dx in range(3):
                out += h[dy * d:dy * d + H, dx * d:dx * d + W] @ k[dy, dx]
        h = np.maximum(out, 0.0)
    logits = h @ w[-2][0, 0] + w[-1]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_dilated_geometry_and_cost():
    c = DilatedConfig(n_features=1, n_classes=4, filters=8, dilations=(1, 2, 4))
    assert (c.patch_radius, c.dense_radius, c.patch_size, c.pool) == (7, 7, 15, 1)
    # closed form: first layer 9*F*f, then 9*f*f per layer, then the 1x1 classifier
    assert c.macs_per_pixel(dense=True) == 9 * 1 * 8 + 2 * 9 * 8 * 8 + 8 * 4
    km = build("dilated-fcn", c.to_dict(), dense=False)
    assert km.input_shape == (None, 15, 15, 1) and km.output_shape == (None, 4)
    with pytest.raises(ValueError, match="dilations"):
        DilatedConfig(dilations=(1, 0))


def test_engine_is_translation_exact_against_numpy():
    """Dense probabilities through the engine, on a dask image cut into small chunks (halos
    across chunk borders, zero padding at the image edges), equal the NumPy network on the
    whole image at every pixel, and method='exact' (33x33-style patches) gives the same."""
    m = _random_model()
    rng = np.random.default_rng(1)
    img = rng.integers(1, 256, (61, 47)).astype(np.uint8)
    img[:5, :9] = 0  # no data
    ref = _numpy_forward(m, np.where(img == 0, np.nan, img)).transpose(2, 0, 1)
    sar = xr.DataArray(da.from_array(img, chunks=(25, 20)), dims=("y", "x"))
    feats = caffe.sar_features(sar)
    dense = xfacies.predict_proba(feats, m, method="dense").values
    exact = xfacies.predict_proba(feats, m, method="exact").values
    valid = img > 0
    assert np.isnan(dense[:, ~valid]).all()
    np.testing.assert_allclose(dense[:, valid], ref[:, valid], atol=1e-5)
    np.testing.assert_allclose(exact[:, valid], ref[:, valid], atol=1e-5)
    # segment: the argmax, NA where there is no data, the same for every chunking
    z_chunked = caffe.segment(sar, m).values
    z_whole = caffe.segment(xr.DataArray(img, dims=("y", "x")), m).values
    expect = np.where(valid, ref.argmax(0), 0)
    close = np.sort(ref, axis=0)[-1] - np.sort(ref, axis=0)[-2] < 1e-5  # argmax ties: skip
    assert np.array_equal(z_chunked[~close], expect[~close])
    assert np.array_equal(z_chunked, z_whole)
    assert z_chunked.dtype == np.int8


def test_segment_output_and_errors():
    m = _random_model()
    sar = xr.DataArray(np.full((12, 9), 100, np.uint8), dims=("y", "x"))
    z = caffe.segment(sar, m)
    assert z.name == "zones" and z.attrs["flag_meanings"] == "NA rock glacier ocean"
    with pytest.raises(TypeError, match="8-bit grey values"):
        caffe.segment(sar.astype("float32") / 255, m)
    with pytest.raises(ValueError, match="not a zone model"):
        caffe.segment(sar, "demo")
    with pytest.raises(ValueError, match="0..255"):
        caffe.segment(sar.astype("int16") * 3, m)


def test_segment_a_tree_and_evaluate(tmp_path):
    root = caffe.make_synthetic(tmp_path / "c", layout="raw", n=5, seed=3)
    ds = caffe.open_dataset(root)
    m = _random_model()
    pred = caffe.segment(ds, m)
    stems = sorted(n.name for n in ds.children.values())
    assert sorted(pred.children) == stems
    node = ds[stems[0]]
    assert pred[stems[0]]["zones"].shape == node["sar"].shape
    table = caffe.evaluate(pred, ds)
    assert set(table.breakdown) >= {"all", "glacier", "season", "sensor"}


def _iou(pred: np.ndarray, truth: np.ndarray) -> float:
    out = []
    for c in range(4):
        u = ((pred == c) | (truth == c)).sum()
        if u:
            out.append(((pred == c) & (truth == c)).sum() / u)
    return float(np.mean(out))


@pytest.mark.slow
def test_train_zone_model_learns_is_deterministic_and_logs(tmp_path):
    root = caffe.make_synthetic(tmp_path / "c", layout="resized", n=10, seed=1, size=(64, 80))
    ds = caffe.open_dataset(root)
    cfg = {"filters": 8, "dilations": [1, 2, 4, 8, 1]}
    kw = dict(epochs=10, crop=64, batch_size=8, steps_per_epoch=16, learning_rate=5e-3, architecture="dilated-fcn",
              config=cfg, seed=5, verbose=0)
    caffe.train_zone_model(ds, log=tmp_path / "log.csv", out=tmp_path / "z.xfacies", **kw)
    # determinism on a short run (the quality is checked once, on the long one)
    short = {**kw, "epochs": 1, "steps_per_epoch": 4}
    m1, m2 = caffe.train_zone_model(ds, **short), caffe.train_zone_model(ds, **short)
    for a, b in zip(m1.weights, m2.weights):
        np.testing.assert_array_equal(a, b)
    log = pd.read_csv(tmp_path / "log.csv")
    assert list(log.epoch) == list(range(10)) and log.loss.iloc[-1] < log.loss.iloc[0]
    back = xfacies.load_model(tmp_path / "z.xfacies")
    assert back.classes == ZONE_NAMES and "CC BY 4.0" in back.metadata["citation"]
    assert back.metadata["training"]["images"] == sorted(ds.children)
    # held-out synthetic images: far above chance (4 classes)
    test = caffe.open_dataset(caffe.make_synthetic(tmp_path / "t", layout="resized", n=4, seed=9,
                                                   size=(64, 80)))
    pred = caffe.segment(test, back)
    ious = [_iou(pred[s]["zones"].values, test[s]["zones"].values) for s in test.children]
    assert np.mean(ious) > 0.5, ious


@pytest.mark.slow
def test_cli_train_and_evaluate(tmp_path, capsys):
    from xfacies.app.cli import main

    root = caffe.make_synthetic(tmp_path / "c", layout="raw", n=6, seed=2)
    out = tmp_path / "z.xfacies"
    # the command's plumbing on a tiny budget (the trainer's quality is tested above)
    assert main(["caffe", "train", str(root), "--epochs", "1", "--steps", "3", "--crop", "64", "--batch-size", "4",
                 "--out", str(out), "--quiet"]) == 0
    assert xfacies.load_model(out).architecture == "unet"
    assert main(["caffe", "evaluate", str(root), "--model", str(out), "--csv", str(tmp_path / "t.csv")]) == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert (table.breakdown == "all").sum() == 1
    assert main(["caffe", "train", str(tmp_path / "nothing")]) == 2


def test_shipped_model_attribution():
    m = xfacies.load_model("caffe-zones")
    assert m.architecture == "unet" and m.classes == ZONE_NAMES and m.features == ("sar",)
    assert "10.5194/essd-14-4287-2022" in m.metadata["citation"]
    assert "CC BY 4.0" in m.metadata["citation"]
    assert m.training_domain["imagery"] == "real"
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "CaFFe" in readme and "CC BY 4.0" in readme


@pytest.mark.shared
def test_shipped_model_on_real_images():
    """On real images the engine's zones are the bundle's Keras network applied to the whole image
    (argmax; no-data pixels NA), and they beat the best constant answer (the most common zone of
    the training images) by a wide margin.  Held-out scores are in the README (leave one glacier out)."""
    if not REAL.exists():
        pytest.skip(f"{REAL} absent: the real CaFFe images live in ../shared (not shipped)")
    ds = caffe.open_dataset(REAL)
    idx = caffe.index(ds)
    sub = caffe.select(ds, idx.groupby("glacier").head(3))
    m = xfacies.load_model("caffe-zones")
    pred = caffe.segment(sub, m)
    net = m.keras_model(dense=True)
    ours, constant = [], []
    sample = list(ds.children)[::20]  # the most common zone of (a sample of) the training images
    prior = int(np.argmax(np.bincount(np.concatenate([ds[s]["zones"].values.ravel() for s in sample]),
                                      minlength=4)))
    for s in sub.children:
        sar = sub[s]["sar"].values
        truth = sub[s]["zones"].values
        direct = net.predict((sar.astype("float32") / 255.0)[None, ..., None], verbose=0)[0].argmax(-1)
        direct[sar == 0] = 0
        z = pred[s]["zones"].values
        assert (z == direct).mean() > 0.999, s  # argmax ties aside
        ours.append(_iou(z, truth))
        constant.append(_iou(np.full_like(truth, prior), truth))
    assert np.mean(ours) > np.mean(constant) + 0.15, (np.mean(ours), np.mean(constant))

"""The U-Net zone model: its architecture, tiled and test-time-augmented inference through the
engine, the trainer's checkpoints, resume and output rules, and units you can trust (metres from
each glacier's fixed extent, pixels where unknown) in the table, the CSV, the CLI and the gallery."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xfacies
import xfacies.caffe as caffe
from xfacies import catalog
from xfacies.errors import InputError
from xfacies.caffe.names import GLACIER_EXTENT_KM
from xfacies.inference.tiles import hann_weight, predict_image, tile_starts
from xfacies.model.architecture import build
from xfacies.model.bundle import Model
from xfacies.model.unet import UNetConfig

ZONE_NAMES = tuple(z.name for z in catalog.ZONES)
TINY = {"n_features": 1, "n_classes": 4, "base_filters": 4, "depth": 3, "aspp_rates": [1, 2],
        "tile": 256, "overlap": 64}


def _unet(cfg=TINY, seed=0) -> Model:
    import keras

    keras.utils.set_random_seed(seed)
    km = build("unet", cfg)
    rng = np.random.default_rng(seed)
    # random biases and batch-norm statistics, so every part of the network shows in the output
    w = [a if a.ndim > 1 else rng.normal(0.0, 0.3, a.shape).astype(np.float32) for a in km.get_weights()]
    w = [np.abs(a) + 0.5 if "moving_variance" in v.path else a for a, v in zip(w, km.weights)]
    return Model("unet", cfg, w, ("sar",), ZONE_NAMES, normalisation={"min": [0.0], "max": [255.0]},
                 metadata={"training_domain": {"imagery": "real"}})


def _smooth_image(n: int, seed: int = 0) -> np.ndarray:
    """uint8 grey values 1..255 with structure on several scales (no no-data pixels)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    img = sum(gaussian_filter(rng.normal(size=(n, n)), s) * s for s in (2, 8, 32))
    img = (img - img.min()) / (img.max() - img.min())
    return (1 + img * 254).astype(np.uint8)


# --------------------------------------------------------------------------- architecture
@pytest.mark.parametrize("cfg", [TINY, {**TINY, "downsample": 2},
                                 {"base_filters": 16, "depth": 4, "downsample": 2}])
def test_unet_parameter_count_and_shapes_agree_with_keras(cfg):
    c = UNetConfig(**cfg)
    km = build("unet", cfg)
    assert c.n_params() == km.count_params()  # the closed form against Keras' own count
    x = np.zeros((1, 2 * c.pool, 3 * c.pool, c.n_features), np.float32)
    assert km.predict(x, verbose=0).shape == (1, 2 * c.pool, 3 * c.pool, c.n_classes)
    assert not c.translation_exact and c.patch_radius == c.overlap


def test_shipped_recipe_is_in_the_asked_size():
    from xfacies.caffe.train import DEFAULT_CONFIG

    c = UNetConfig(**DEFAULT_CONFIG)
    assert 1_000_000 <= c.n_params() <= 8_000_000
    assert c.n_params() * 4 < 25e6  # float32 weights: the bundle stays under 25 MB


def test_unet_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="multiple of 2"):
        UNetConfig(tile=100)
    with pytest.raises(ValueError, match="overlap"):
        UNetConfig(tile=256, overlap=200)
    with pytest.raises(ValueError, match="downsample"):
        UNetConfig(downsample=3)
    with pytest.raises(ValueError, match="normalise must be 'none' or 'image'"):
        UNetConfig(normalise="percentile")


def test_image_normalisation_standardises_each_image_over_its_valid_pixels():
    """``normalise="image"``: the network sees ``(x - mean) / std`` of each image's valid pixels
    (a NumPy computation of the same), so a brighter or higher-contrast copy of a scene gives the
    same zones; no-data pixels stay 0 and add no parameter."""
    cfg = {**TINY, "normalise": "image"}
    km = build("unet", cfg)
    assert UNetConfig(**cfg).n_params() == km.count_params() == build("unet", TINY).count_params()
    x = (_smooth_image(64, seed=3)[None, ..., None] / 255.0).astype(np.float32)
    x[0, :10, :20] = 0.0  # no data
    layer = km.get_layer("standardise")
    got = np.asarray(layer(x))[0, ..., 0]
    v = x[0, ..., 0][x[0, ..., 0] > 0]
    want = np.where(x[0, ..., 0] > 0, (x[0, ..., 0] - v.mean()) / np.sqrt(v.var() + 1e-6), 0.0)
    np.testing.assert_allclose(got, want, atol=1e-5)
    a = km.predict(x, verbose=0)
    b = km.predict(np.where(x > 0, 1.8 * x + 0.05, 0.0).astype(np.float32), verbose=0)
    np.testing.assert_allclose(a, b, atol=1e-4)
    plain = build("unet", TINY)
    plain.set_weights(km.get_weights())
    assert np.abs(plain.predict(x, verbose=0) - a).max() > 1e-3  # the layer does something


# --------------------------------------------------------------------------- tiles
def test_tile_starts_cover_with_the_overlap():
    for n, tile, overlap in [(1000, 512, 128), (1024, 256, 64), (300, 256, 64), (256, 256, 64)]:
        starts = tile_starts(n, tile, overlap)
        assert starts[0] == 0 and starts[-1] + min(tile, n) == n
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    w = hann_weight(256, 64)
    assert w[64:192].min() == 1.0 and w[0] < 0.01 and np.allclose(w[:64], w[::-1][:64])


def test_unet_in_tiles_matches_the_whole_image_without_seams():
    """A 1024 x 1024 image in 256-px tiles overlapping by 64 px: the Hann-merged probabilities
    match the whole-image output within 1e-3 (max over pixels and classes), and no seam: the
    step across every tile border (neighbouring pixels on either side) is the whole image's step
    within 1e-3, while one tile's own unmerged edge is off by far more."""
    m = _unet()
    img = _smooth_image(1024)
    x = (img.astype(np.float32) / 255.0)[..., None]
    net = m.keras_model(dense=True)
    whole = net.predict(x[None], verbose=0)[0]
    tiled = predict_image(m, x)
    assert tiled.shape == whole.shape
    np.testing.assert_allclose(tiled.sum(-1), 1.0, atol=1e-5)
    diff = np.abs(tiled - whole)
    assert diff.max() < 1e-3, diff.max()
    starts = tile_starts(1024, 256, 64)
    lines = sorted({e for s in starts for e in (s, s + 256) if 0 < e < 1024})
    for e in lines:
        for axis in (0, 1):
            t = np.take(tiled, [e - 1, e], axis=axis)
            w = np.take(whole, [e - 1, e], axis=axis)
            step_t = np.diff(t, axis=axis)
            step_w = np.diff(w, axis=axis)
            assert np.abs(step_t - step_w).max() < 1e-3, (e, axis)
    raw = net.predict(x[None, :256, :256], verbose=0)[0]  # a tile alone: its edge sees zero padding
    assert np.abs(raw[:, 250:] - whole[:256, 250:256]).max() > 10 * diff[:256, 250:256].max()


def test_engine_runs_the_unet_lazily_chunk_by_chunk(tmp_path):
    """Through ``segment`` on a dask image cut in 512-px chunks: each chunk with its halo (the
    bundle's 64-px overlap) runs tiled, and the zones agree with the whole-image argmax on
    > 99 % of pixels; no-data pixels are NA.  A Dask LocalCluster gives the same zones."""
    m = _unet()
    path = m.save(tmp_path / "u.xfacies")
    img = _smooth_image(1024, seed=3)
    img[:40, :40] = 0
    whole = m.keras_model(dense=True).predict((img.astype(np.float32) / 255)[None, ..., None],
                                              verbose=0)[0].argmax(-1)
    sar = xr.DataArray(da.from_array(img, chunks=512), dims=("y", "x"))
    z = caffe.segment(sar, path)
    assert z.chunks == ((512, 512), (512, 512))
    zv = z.values
    assert (zv[:40, :40] == 0).all()
    agree = (zv == whole)[40:, 40:].mean()
    assert agree > 0.99, agree
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as lc, \
            Client(lc):
        np.testing.assert_array_equal(caffe.segment(sar, path).values, zv)


def test_tta_averages_the_flipped_views():
    """``tta="flips"`` is the mean of the network on the 4 flipped images, flipped back; ``"d4"`` the
    mean over the 8 rotations and flips (written out here with NumPy)."""
    m = _unet()
    x = (_smooth_image(128, seed=1).astype(np.float32) / 255)[..., None]
    net = m.keras_model(dense=True)

    def f(a):
        return net.predict(np.ascontiguousarray(a)[None], verbose=0)[0]

    flips = [f(x), f(x[:, ::-1])[:, ::-1], f(x[::-1])[::-1], f(x[::-1, ::-1])[::-1, ::-1]]
    np.testing.assert_allclose(predict_image(m, x, tta="flips"), np.mean(flips, 0), atol=1e-5)
    d4 = []
    for k in range(4):
        for flip in (False, True):
            a = np.rot90(x, k)
            a = a[:, ::-1] if flip else a
            p = f(a)
            p = p[:, ::-1] if flip else p
            d4.append(np.rot90(p, -k))
    np.testing.assert_allclose(predict_image(m, x, tta="d4"), np.mean(d4, 0), atol=1e-5)
    with pytest.raises(ValueError, match="flips"):
        predict_image(m, x, tta="rot")
    sar = xr.DataArray((x[..., 0] * 255).astype(np.uint8), dims=("y", "x"))
    z = caffe.segment(sar, m, tta="flips")
    assert z.attrs["tta"] == "flips"
    np.testing.assert_array_equal(z.values, np.mean(flips, 0).argmax(-1))
    with pytest.raises(ValueError, match="windowed model"):
        caffe.segment(sar, m, method="exact")


# --------------------------------------------------------------------------- trainer
def test_trainer_checkpoints_resumes_and_never_overwrites(tmp_path):
    """One run interrupted after its first epoch and resumed gives the uninterrupted run's
    weights; the CSV log continues; an existing bundle is refused without overwrite; the
    installed package is refused as a destination."""
    import keras

    root = caffe.make_synthetic(tmp_path / "c", layout="resized", n=6, seed=1, size=(64, 64))
    ds = caffe.open_dataset(root)
    # no dropout: its random masks are the one state a backup does not keep
    kw = dict(epochs=2, crop=64, batch_size=2, steps_per_epoch=2, config={**TINY, "dropout": 0.0}, seed=3,
              verbose=0)
    full = caffe.train_zone_model(ds, **kw)

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise RuntimeError("power cut")

    out = tmp_path / "z.xfacies"
    with pytest.raises(RuntimeError, match="power cut"):
        caffe.train_zone_model(ds, out=out, log=tmp_path / "log.csv", callbacks=[Stop()], **kw)
    assert not out.exists() and (tmp_path / "z.xfacies.checkpoints" / "backup").is_dir()
    resumed = caffe.train_zone_model(ds, out=out, log=tmp_path / "log.csv", resume=True, **kw)
    for a, b in zip(full.weights, resumed.weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert list(pd.read_csv(tmp_path / "log.csv").epoch) == [0, 1]
    assert xfacies.load_model(out).metadata["training"]["kept"] == "last"
    with pytest.raises(FileExistsError, match="overwrite"):
        caffe.train_zone_model(ds, out=out, **kw)
    with pytest.raises(FileNotFoundError, match="resume"):
        caffe.train_zone_model(ds, out=tmp_path / "new.xfacies", resume=True, **kw)
    inside = Path(xfacies.__file__).resolve().parent / "data" / "caffe-zones.xfacies"
    with pytest.raises(PermissionError, match="installed xfacies package"):
        caffe.train_zone_model(ds, out=inside, overwrite=True, **kw)


def test_trainer_keeps_the_best_validation_epoch(tmp_path):
    """Validation runs each held-out image at its own size (96 px, larger than the 64-px training
    crops), as the engine does: the kept epoch's score is the engine's zone IoU."""
    root = caffe.make_synthetic(tmp_path / "c", layout="resized", n=6, seed=2, size=(96, 96))
    ds = caffe.open_dataset(root)
    idx = caffe.index(ds)
    val = caffe.select(ds, idx.iloc[:2])
    train = caffe.select(ds, idx.iloc[2:])
    m = caffe.train_zone_model(train, validation=val, epochs=3, crop=64, batch_size=2, steps_per_epoch=2,
                               config=TINY, checkpoints=tmp_path / "ck", loss="focal", verbose=0)
    hist = m.metadata["history"]["val_zone_iou"]
    assert len(hist) == 3 and m.metadata["training"]["kept"] == "best validation zone IoU"
    assert m.metadata["training"]["loss"] == "categorical focal cross-entropy (gamma 2)"
    # the kept weights score the best epoch's validation IoU, computed here with the benchmark's
    # zone scores (xfacies.caffe.evaluate) on the engine's zones
    pred = caffe.segment(val, m)
    table = caffe.evaluate(pred, val)
    assert table.loc[0, "iou"] == pytest.approx(max(hist), abs=1e-6), (table.loc[0, "iou"], hist)


def test_zone_losses_are_their_closed_forms():
    """The trainer's losses against NumPy: cross-entropy, focal cross-entropy (Keras' alpha 0.25,
    gamma 2) and cross-entropy + Dice per class over the batch; an unknown name is refused."""
    from xfacies.caffe.train import zone_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 6, 4))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y = np.eye(4)[rng.integers(0, 4, size=(2, 5, 6))]
    ce = float(np.mean(-(y * np.log(p)).sum(-1)))
    focal = float(np.mean(-(0.25 * y * (1 - p) ** 2 * np.log(p)).sum(-1)))
    inter, total = (y * p).sum(axis=(0, 1, 2)), (y + p).sum(axis=(0, 1, 2))
    dice = float(np.mean(1 - 2 * inter / total))
    for name, want in (("ce", ce), ("focal", focal), ("dice_ce", ce + dice)):
        got = float(np.asarray(zone_loss(name)(y.astype("float32"), p.astype("float32"))))
        assert got == pytest.approx(want, rel=1e-4), name
    with pytest.raises(InputError, match="loss='dice' is not one of"):
        zone_loss("dice")


def _tree_state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_cli_train_never_touches_the_package(tmp_path):
    """``xfacies caffe train`` from a read-only copy of the package: the bundle lands in the
    working directory as ./caffe-zones.xfacies, the package copy is byte for byte unchanged, and
    a second run without --overwrite is refused."""
    pkg = tmp_path / "site" / "xfacies"
    shutil.copytree(Path(xfacies.__file__).resolve().parent, pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = _tree_state(pkg)
    for p in [pkg, *pkg.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    root = caffe.make_synthetic(tmp_path / "c", layout="resized", n=4, seed=1, size=(64, 64))
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(pkg.parent), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-c", "import sys, xfacies.app.cli as c; sys.exit(c.main(sys.argv[1:]))",
           "caffe", "train", str(root), "--epochs", "1", "--steps", "1", "--crop", "64", "--batch-size", "2",
           "--loss", "ce", "--quiet"]
    try:
        r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert (work / "caffe-zones.xfacies").is_file()
        assert "caffe-zones.xfacies" in r.stdout
        trained = xfacies.load_model(work / "caffe-zones.xfacies").metadata["training"]
        assert trained["loss"] == "categorical cross-entropy"
        r2 = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert r2.returncode != 0 and "--overwrite" in r2.stderr
    finally:
        for p in [pkg, *pkg.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    assert _tree_state(pkg) == before
    import importlib.util

    spec = importlib.util.find_spec("xfacies")
    assert Path(spec.origin).resolve().parent != pkg  # the test's own import is the real package


# --------------------------------------------------------------------------- units
def _shifted_prediction(ds: xr.DataTree, shift: int) -> dict[str, xr.Dataset]:
    """The true zones and fronts moved ``shift`` pixels along x (rows unchanged): every front
    distance is exactly ``shift`` columns."""
    out = {}
    for stem in ds.children:
        z = ds[stem]["zones"].values
        f = ds[stem]["front"].values
        out[stem] = xr.Dataset({"zones": (("y", "x"), np.roll(z, shift, axis=1)),
                                "front": (("y", "x"), np.roll(f, shift, axis=1))})
    return out


def _resized_copy(tmp_path: Path, glacier_map: dict[str, str], size=(64, 96)) -> Path:
    """A resized-layout folder whose images are renamed to other glacier tokens."""
    src = caffe.make_synthetic(tmp_path / "src", layout="resized", n=4, seed=5, size=size)
    dst = tmp_path / "renamed"
    for p in src.rglob("*.png"):
        glacier = p.name.split("_")[0]
        q = dst / p.parent.relative_to(src) / p.name.replace(glacier + "_", glacier_map.get(glacier, glacier) + "_", 1)
        q.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, q)
    return dst


def _brute_mde(pred: np.ndarray, true: np.ndarray, sy: float, sx: float) -> tuple[float, int]:
    """Sum and count of both-direction nearest distances in metres, by brute force."""
    p, g = np.argwhere(pred) * [sy, sx], np.argwhere(true) * [sy, sx]
    d = np.sqrt(((p[:, None, :] - g[None, :, :]) ** 2).sum(-1))
    both = np.concatenate([d.min(1), d.min(0)])
    return float(both.sum()), both.size


def test_metres_come_from_each_glaciers_extent(tmp_path):
    """Resized images of benchmark glaciers get per-axis pixel sizes from each glacier's fixed
    extent.  Square pixels (64 x 64 images of 8 x 8 km Mapple): MDE in metres = MDE in pixels x
    125 m.  Non-square pixels (64 x 96 images): the pooled MDE equals a brute-force nearest-point
    search in metres."""
    sub = caffe.open_dataset(caffe.make_synthetic(tmp_path / "sq", layout="resized", n=3, seed=5, size=(64, 64),
                                                  glaciers=["Mapple"]))
    pred = _shifted_prediction(sub, 3)
    m = caffe.evaluate(pred, sub, per_image=True)
    p = caffe.evaluate(pred, sub, pixel_size=1.0, per_image=True)
    assert (m.pixel_size == 125.0).all()
    np.testing.assert_allclose(m.mde, p.mde * 125.0, rtol=1e-12)
    assert (set(m.units), set(p.units)) == ({"m"}, {"px"})

    root = caffe.make_synthetic(tmp_path / "c", layout="resized", n=4, seed=5, size=(64, 96))
    ds = caffe.open_dataset(root)
    total, count = 0.0, 0
    pred = _shifted_prediction(ds, 3)
    for stem in ds.children:
        a = ds[stem].attrs
        w_km, h_km = GLACIER_EXTENT_KM[a["glacier"]]
        assert a["pixel_size_x"] == pytest.approx(1000 * w_km / 96)
        assert a["pixel_size_y"] == pytest.approx(1000 * h_km / 64)
        t, n = _brute_mde(pred[stem]["front"].values, ds[stem]["front"].values, a["pixel_size_y"], a["pixel_size_x"])
        total, count = total + t, count + n
    table = caffe.evaluate(pred, ds)
    assert table.loc[0, "units"] == "m"
    assert table.loc[0, "mde"] == pytest.approx(total / count, rel=1e-9)


def test_unknown_extent_stays_in_pixels_everywhere(tmp_path, capsys):
    """Images of a glacier whose extent is unknown: the table, the CSV, the CLI and the gallery
    all say px, with the same numbers."""

    root = _resized_copy(tmp_path, {g: "Unknown" + g for g in GLACIER_EXTENT_KM})
    ds = caffe.open_dataset(root)
    assert set(caffe.index(ds).split) == {"unknown"}
    pred = _shifted_prediction(ds, 2)
    with pytest.warns(UserWarning, match="pixels"):
        table = caffe.evaluate(pred, ds)
    assert set(table.units) == {"px"}
    expect = caffe.evaluate(pred, ds, pixel_size=1.0)
    np.testing.assert_allclose(table.mde, expect.mde)
    # the gallery card prints the same value with its unit
    per = caffe.evaluate(pred, ds, pixel_size=1.0, per_image=True)
    page = caffe.gallery(ds, tmp_path / "g", scores=per)
    text = Path(page).read_text()
    row = per[~per.no_front].iloc[0]
    assert f"{row.mde:.1f} px" in text and " m</dd>" not in text.split("MDE")[1][:40]


def test_cli_evaluate_prints_and_writes_one_unit(tmp_path, capsys):
    from xfacies.app.cli import main

    root = caffe.make_synthetic(tmp_path / "c", layout="resized", n=4, seed=5, size=(64, 96))
    m = _unet({**TINY, "tile": 64, "overlap": 16})
    path = m.save(tmp_path / "u.xfacies")
    assert main(["caffe", "evaluate", str(root), "--model", str(path), "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "t.csv")
    assert "front distances in m" in out and set(table.units) == {"m"}
    ds = caffe.open_dataset(root)
    direct = caffe.evaluate(caffe.segment(ds, path), ds)
    np.testing.assert_allclose(table.mde, direct.mde, equal_nan=True)
    assert main(["caffe", "evaluate", str(root), "--model", str(path), "--resolution", "1",
                 "--csv", str(tmp_path / "p.csv")]) == 0
    assert "front distances in px" in capsys.readouterr().out
    assert set(pd.read_csv(tmp_path / "p.csv").units) == {"px"}


# --------------------------------------------------------------------------- the derivative's folders
def test_open_dataset_reads_the_derivatives_own_folder_names_and_true_splits(tmp_path):
    root = caffe.make_synthetic(tmp_path / "c", layout="resized", n=6, seed=4, size=(32, 32),
                                glaciers=["COL", "Mapple", "Crane", "JAC"])
    plain = caffe.open_dataset(root)
    derived = tmp_path / "derivative"
    for src, dst in (("sar_images", "sar_256"), ("zones", "zones_processed_256"), ("fronts", "fronts_256")):
        shutil.copytree(root / src, derived / dst)
    ds = caffe.open_dataset(derived)
    assert sorted(ds.children) == sorted(plain.children)
    for stem in ds.children:
        for v in ("sar", "zones", "front"):
            np.testing.assert_array_equal(ds[stem][v].values, plain[stem][v].values)
    idx = caffe.index(ds)
    expected = {s: ("test" if ds[s].attrs["glacier"] in ("COL", "Mapple") else "train") for s in ds.children}
    assert idx["split"].to_dict() == expected
    test_only = caffe.open_dataset(derived, split="test")
    assert sorted(test_only.children) == sorted(s for s, v in expected.items() if v == "test")
    (derived / "sar_images").mkdir()
    with pytest.raises(ValueError, match="keep one"):
        caffe.open_dataset(derived)


def test_overlay_draws_the_front_that_was_scored(tmp_path):
    """For a resized image the overlay's predicted front is the one ``evaluate`` scores: the same
    post-processing with the same pixel size (the glacier's extent, not the file name's
    resolution, which would delete every front piece under 750 m / 20 m = 37.5 px)."""
    from xfacies.caffe.explore import predicted_pair as _prediction
    from xfacies.caffe.postprocess import zones_to_front

    root = caffe.make_synthetic(tmp_path / "c", layout="resized", n=3, seed=6, size=(64, 64))
    ds = caffe.open_dataset(root)
    pred = _shifted_prediction(ds, 2)
    per = caffe.evaluate({s: p[["zones"]] for s, p in pred.items()}, ds, per_image=True).set_index("image")
    for stem in ds.children:
        node = ds[stem].to_dataset()
        zones = pred[stem]["zones"]
        _, drawn = _prediction(xr.Dataset({"zones": zones}), node, zones.shape)
        assert int(drawn.sum()) == per.loc[stem, "n_pred_front"]
        np.testing.assert_array_equal(drawn, zones_to_front(zones.values, node.attrs["pixel_size"]))
        assert node.attrs["pixel_size"] != node.attrs["resolution"]


def test_inversion_augmentation_flips_grey_values_and_keeps_no_data():
    """``invert_p=1`` with every other change off: the sample is ``1 + 1/255 - x`` of the plain
    sample (same seed, same crop, rotation and flip), no-data pixels stay 0, zones unchanged."""
    from xfacies.caffe.train import AUGMENT, augment_pair

    assert AUGMENT["invert_p"] == 0.0
    sar = _smooth_image(64, seed=5)
    sar[:8, :12] = 0
    zones = (np.arange(64)[:, None] // 16 + np.zeros((1, 64), int)).astype(np.int8)
    off = {"zoom_p": 0.0, "gamma": 0.0, "contrast": 0.0, "brightness": 0.0, "speckle_p": 0.0}
    x0, y0 = augment_pair(sar, zones, 64, np.random.default_rng(7), off)
    x1, y1 = augment_pair(sar, zones, 64, np.random.default_rng(7), {**off, "invert_p": 1.0})
    np.testing.assert_array_equal(y0, y1)
    valid = x0 > 0
    assert (~valid).sum() == 8 * 12 and (x1[~valid] == 0).all()
    np.testing.assert_allclose(x1[valid], np.clip(1 + 1 / 255 - x0[valid], 1 / 255, 1.0), atol=1e-6)


def test_zone_gain_augmentation_gives_each_zone_its_own_brightness():
    """``zone_p=1`` with every other change off: inside each zone (away from its boundary) the
    sample is the plain sample times one gain per zone, the gains differ between zones, no-data
    pixels stay 0 and the zones are unchanged; off by default."""
    from scipy.ndimage import maximum_filter, minimum_filter

    from xfacies.caffe.train import AUGMENT, augment_pair

    assert AUGMENT["zone_p"] == 0.0
    sar = (_smooth_image(128, seed=6) * 0.5).astype(np.uint8) + 20   # grey 20..147: no clipping at 1
    sar[:8, :12] = 0
    zones = (np.arange(128)[:, None] // 32 + np.zeros((1, 128), int)).astype(np.int8)
    off = {"zoom_p": 0.0, "gamma": 0.0, "contrast": 0.0, "brightness": 0.0, "speckle_p": 0.0}
    x0, y0 = augment_pair(sar, zones, 128, np.random.default_rng(3), off)
    x1, y1 = augment_pair(sar, zones, 128, np.random.default_rng(3), {**off, "zone_p": 1.0, "zone_gain": 0.4})
    np.testing.assert_array_equal(y0, y1)
    valid = x0 > 0
    assert (x1[~valid] == 0).all()
    # 9 px from any other zone: beyond the blur of the gains (sigma 2, truncated at 4 sigma)
    interior = (minimum_filter(y0, 19) == maximum_filter(y0, 19)) & valid & (x1 < 1.0) & (x1 > 1 / 255)
    gains = []
    for z in np.unique(y0):
        ratio = x1[interior & (y0 == z)] / x0[interior & (y0 == z)]
        assert ratio.size > 50
        np.testing.assert_allclose(ratio, ratio.mean(), rtol=1e-4)
        gains.append(ratio.mean())
    assert len(gains) == 4 and np.ptp(np.log(gains)) > 0.1


def _runs(labels: np.ndarray) -> list[int]:
    """Lengths of the runs of equal, non-zero labels along the rows of ``labels``, without the
    first and last run of each row (they may be cut by the sample's edge or the padding)."""
    out = []
    for row in labels:
        edges = np.flatnonzero(np.diff(row) != 0) + 1
        bounds = np.r_[0, edges, row.size]
        for a, b in zip(bounds[1:-2], bounds[2:-1]):
            if row[a] != 0:
                out.append(int(b - a))
    return out


@pytest.mark.parametrize("f", [0.5, 1.0, 1.5])
def test_scale_jitter_shows_the_scene_at_the_drawn_scale(f):
    """``zoom=(f, f)``: a checkerboard of 16-px squares appears with squares of ``16 f`` pixels
    (one axis within a pixel, the other within the +-10 % aspect jitter), whatever the rotation;
    f = 0.5 shrinks, 1.5 enlarges."""
    from xfacies.caffe.train import augment_pair

    n, side = 256, 16
    board = ((np.arange(n)[:, None] // side + np.arange(n)[None, :] // side) % 2 + 1).astype(np.int8)
    sar = np.where(board == 1, 60, 180).astype(np.uint8)
    off = {"zoom": (f, f), "zoom_p": 1.0, "gamma": 0.0, "contrast": 0.0, "brightness": 0.0, "speckle_p": 0.0}
    for seed in range(4):
        x, y = augment_pair(sar, board, 128, np.random.default_rng(seed), off)
        assert x.shape == y.shape == (128, 128)
        med = [float(np.median(_runs(y))), float(np.median(_runs(y.T)))]
        assert min(abs(m - side * f) for m in med) <= 1.0, (f, med)
        for m in med:
            assert side * f / 1.1 - 1 <= m <= side * f / 0.9 + 1, (f, med)


def test_scale_jitter_pads_a_small_image_with_no_data():
    """Shrinking a 64-px image by 0.5 into a 64-px sample: the image fills a (32 x 32 / aspect)
    block, the rest is no data (grey 0, zone 0 = NA), and the image's own pixels keep their zones."""
    from xfacies.caffe.train import augment_pair

    sar = np.full((64, 64), 120, np.uint8)
    zones = np.full((64, 64), 2, np.int8)
    zones[:, 32:] = 3
    off = {"zoom": (0.5, 0.5), "zoom_p": 1.0, "gamma": 0.0, "contrast": 0.0, "brightness": 0.0,
           "speckle_p": 0.0}
    for seed in range(4):
        x, y = augment_pair(sar, zones, 64, np.random.default_rng(seed), off)
        valid = x > 0
        np.testing.assert_array_equal(valid, y > 0)
        assert 0.25 / 1.1 - 0.03 <= valid.mean() <= 0.25 / 0.9 + 0.03, valid.mean()
        assert set(np.unique(y[valid])) == {2, 3}


def test_an_epoch_covers_each_images_256_px_view_once(tmp_path):
    """``steps_per_epoch=None``: (256 / crop)**2 crops per image, in batches."""
    from xfacies.caffe.train import EPOCH_SIDE

    root = caffe.make_synthetic(tmp_path / "c", layout="resized", n=6, seed=4, size=(64, 64))
    m = caffe.train_zone_model(caffe.open_dataset(root), epochs=1, crop=128, batch_size=4, config=TINY, verbose=0)
    assert EPOCH_SIDE == 256
    assert m.metadata["training"]["steps_per_epoch"] == 6  # 6 images x (256 / 128)**2 / 4
    with pytest.raises(InputError, match=r"crop=100 must be a multiple of 16.*crop=96"):
        caffe.train_zone_model(caffe.open_dataset(root), epochs=1, crop=100, config=TINY, verbose=0)

"""Train and score zone-segmentation models on CaFFe images.

:func:`train_zone_model` fits a U-Net (:mod:`xfacies.model.unet`; or the translation-exact dilated
network, :mod:`xfacies.model.dilated`) to the zones of a :func:`xfacies.caffe.open_dataset` tree with
Keras 3's own pieces: cross-entropy + Dice (or focal) losses, Adam with
``keras.optimizers.schedules.CosineDecay`` (:func:`xfacies.train.fitting.cosine_adam`, as the facies
recipe), ``keras.metrics.OneHotMeanIoU``, a ``keras.utils.PyDataset`` of 128-px windows scaled by
0.5-1.5 with flips, 90-degree rotations and intensity changes (:func:`augment_pair`), checkpoints,
a ``CSVLogger`` and Keras' progress bar.
:func:`leave_one_glacier_out` scores the recipe on every glacier with a model that never saw it.
The result is an :class:`xfacies.Model` bundle that :func:`xfacies.caffe.segment` runs through the
inference engine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.errors import InputError
from xfacies import catalog

__all__ = ["AUGMENT", "CITATION", "DEFAULT_FIT", "EPOCH_SIDE", "LOSSES", "augment_pair", "leave_one_glacier_out",
           "train_zone_model", "zone_loss"]

#: Attribution carried by every zone model trained on CaFFe (CC BY 4.0).
CITATION = ("Gourmelon, N., Seehaus, T., Braun, M., Maier, A. and Christlein, V. (2022): Calving fronts "
            "and where to find them: a benchmark dataset and methodology for automatic glacier "
            "calving front extraction from synthetic aperture radar imagery, Earth Syst. Sci. Data 14, "
            "4287-4313, doi:10.5194/essd-14-4287-2022; data doi:10.1594/PANGAEA.940950, CC BY 4.0")

#: Default architecture of the zone model: a U-Net of 5 levels (16..256 channels) with an ASPP
#: bottleneck on the input averaged 2 x 2, 2.2 M parameters; images up to 512 px run whole (it is
#: trained on 128-px windows), larger ones in 512-px tiles.
DEFAULT_ARCHITECTURE = "unet"
DEFAULT_CONFIG: dict[str, Any] = {"n_features": 1, "n_classes": len(catalog.ZONES), "base_filters": 16,
                                  "depth": 4, "aspp_rates": [1, 2, 4], "dropout": 0.1,
                                  "tile": 512, "overlap": 128, "downsample": 2}
#: The previous, translation-exact zone model (receptive field 133 px).
DILATED_CONFIG: dict[str, Any] = {"n_features": 1, "n_classes": len(catalog.ZONES), "filters": 12,
                                  "dilations": [1, 2, 4, 8, 16, 32, 2]}
#: The shipped model's training budget (``xfacies caffe train`` defaults).
DEFAULT_FIT: dict[str, Any] = {"epochs": 14, "batch_size": 8, "crop": 128, "steps_per_epoch": None,
                               "learning_rate": 2e-3}
#: Side (pixels) of the view of an image that one epoch covers once: with ``steps_per_epoch=None``
#: an epoch draws ``(EPOCH_SIDE / crop)**2`` crops per image (4 of 128 px: the pixels of one pass
#: over the 256-px images).
EPOCH_SIDE = 256
#: Augmentation strengths: with probability ``zoom_p`` a sample shows its image scaled by a factor
#: drawn from ``zoom`` (min, max): a window of ``crop / factor`` pixels resized to ``crop``, so
#: factors below 1 shrink the scene (an image smaller than the window is padded with no data) and
#: factors above 1 enlarge it; gamma is
#: ``exp(N(0, gamma))``, contrast a factor in ``1 ± contrast``, speckle a multiplicative
#: Gamma(L, 1/L) noise with ``L`` looks in ``speckle``; with probability ``invert_p`` the grey
#: values are inverted (``1 - x`` on valid pixels), so that bright ice melange and dark open
#: water both look like ocean to the network; with probability ``zone_p`` each zone's grey
#: values get their own gain ``exp(N(0, zone_gain))`` (smoothed across zone boundaries), so that
#: no zone is recognised by its brightness alone.
AUGMENT: dict[str, Any] = {"zoom": (0.5, 1.5), "zoom_p": 0.8, "gamma": 0.25, "contrast": 0.25,
                           "brightness": 0.08, "speckle": (3.0, 30.0), "speckle_p": 0.5, "invert_p": 0.0,
                           "zone_p": 0.0, "zone_gain": 0.5}


def _images(tree: xr.DataTree) -> list[tuple[str, dict, np.ndarray, np.ndarray]]:
    """(stem, attrs, sar uint8, zones int8) of every image node, computed."""
    out = []
    for node in tree.subtree:
        ds = node.ds
        if "sar" in ds.data_vars and "zones" in ds.data_vars:
            out.append((node.name, dict(node.attrs), np.asarray(ds["sar"].values),
                        np.asarray(ds["zones"].values)))
    if not out:
        raise InputError("the dataset has no image with both 'sar' and 'zones': open it with "
                         "xfacies.caffe.open_dataset(root) (training needs the zone masks)")
    return out


def _class_weights(images: list, n_classes: int) -> np.ndarray:
    """Per-class pixel weights, inverse square root of the class frequency, mean 1 over pixels."""
    counts = np.zeros(n_classes, dtype=np.float64)
    for _, _, _, z in images:
        counts += np.bincount(z.ravel().astype(np.int64), minlength=n_classes)[:n_classes]
    freq = counts / counts.sum()
    w = np.where(freq > 0, 1.0 / np.sqrt(np.maximum(freq, 1e-12)), 0.0)
    return (w / (w * freq).sum()).astype(np.float32)


def _resize(a: np.ndarray, shape: tuple[int, int], nearest: bool) -> np.ndarray:
    from PIL import Image

    mode = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    im = Image.fromarray(a.astype(np.uint8) if nearest else a.astype(np.float32), mode="L" if nearest else "F")
    return np.asarray(im.resize((shape[1], shape[0]), mode))


def augment_pair(sar: np.ndarray, zones: np.ndarray, size: int, rng: np.random.Generator,
                 strength: dict[str, Any] | None = None, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One training sample: a ``size x size`` view of an image and its zones, augmented.

    A random window of ``size / f`` pixels resized to ``size`` (scale jitter: the scene scaled by
    a factor ``f`` drawn from ``zoom``, shrunk or enlarged; an image smaller than the window is
    padded with no data), a random rotation by 90 degrees and flip,
    then on the 0..1 grey values a gamma, contrast and brightness change and multiplicative
    speckle noise.  No-data pixels (grey value 0) stay 0, so the model keeps seeing them as
    no data.  ``train=False`` returns the image resized to ``size`` with nothing random.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float32 ``(size, size)`` grey values in 0..1 and int32 zone ids.
    """
    a = dict(AUGMENT if strength is None else {**AUGMENT, **strength})
    if train:
        lo, hi = a["zoom"]
        f = rng.uniform(lo, hi) if rng.random() < a["zoom_p"] else 1.0
        # a window of size / f rows and (aspect +- 10 %) columns, resized to size: the scene
        # scaled by f; where the window is larger than the image, the image is padded with no data
        side_r = max(8, int(round(size / f)))
        side_c = max(8, int(round(size / f * (rng.uniform(0.9, 1.1) if f != 1.0 else 1.0))))
        H, W = sar.shape
        if side_r > H or side_c > W:
            pr, pc = max(0, side_r - H), max(0, side_c - W)
            r, c = int(rng.integers(pr + 1)), int(rng.integers(pc + 1))
            pad = ((r, pr - r), (c, pc - c))
            sar, zones = np.pad(sar, pad), np.pad(zones, pad)
            H, W = sar.shape
        r0 = int(rng.integers(H - side_r + 1))
        c0 = int(rng.integers(W - side_c + 1))
        sar = sar[r0:r0 + side_r, c0:c0 + side_c]
        zones = zones[r0:r0 + side_r, c0:c0 + side_c]
    if sar.shape != (size, size):
        valid = _resize((sar > 0).astype(np.uint8), (size, size), nearest=True) > 0
        # no data stays no data: the bilinear resize would blend it into its valid neighbours
        sar = np.where(valid, _resize(sar, (size, size), nearest=False), 0.0)
        zones = _resize(zones, (size, size), nearest=True)
    x = sar.astype(np.float32) / 255.0
    y = zones.astype(np.int32)
    if not train:
        return x, y
    k = int(rng.integers(4))
    x, y = np.rot90(x, k), np.rot90(y, k)
    if rng.random() < 0.5:
        x, y = x[:, ::-1], y[:, ::-1]
    nodata = x <= 0
    if a["invert_p"] and rng.random() < a["invert_p"]:
        x = np.where(nodata, 0.0, 1.0 + 1.0 / 255.0 - x)
    if a["zone_p"] and rng.random() < a["zone_p"]:
        # each zone its own brightness (ice melange brighter than the glacier, dark rock, ...):
        # a gain exp(N(0, zone_gain)) per zone, blurred over ~2 px so that no sharp step marks
        # the zone boundaries
        from scipy.ndimage import gaussian_filter

        gains = np.exp(rng.normal(0.0, a["zone_gain"], size=len(catalog.ZONES)))
        x = np.where(nodata, 0.0, x * gaussian_filter(gains[np.clip(y, 0, len(gains) - 1)], sigma=2.0))
    x = np.clip(x, 1e-4, 1.0) ** np.exp(rng.normal(0.0, a["gamma"]))
    m = float(x[~nodata].mean()) if (~nodata).any() else 0.5
    x = (x - m) * rng.uniform(1 - a["contrast"], 1 + a["contrast"]) + m + rng.uniform(-a["brightness"], a["brightness"])
    if rng.random() < a["speckle_p"]:
        L = rng.uniform(*a["speckle"])
        x = x * rng.gamma(L, 1.0 / L, size=x.shape)
    x = np.clip(x, 1.0 / 255.0, 1.0)
    x[nodata] = 0.0
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)


def _dataset_class():
    from xfacies.model.runtime import load_keras

    keras = load_keras()

    class Samples(keras.utils.PyDataset):
        """Batches of augmented ``size x size`` samples with one-hot zones (:func:`augment_pair`);
        every epoch visits the images in a new seeded order."""

        def __init__(self, images, size, batch_size, n_classes, seed, augment, steps, strength=None):
            super().__init__()
            self.images, self.size, self.bs, self.nc = images, size, batch_size, n_classes
            self.seed, self.augment, self.steps, self.strength = seed, augment, steps, strength
            self.epoch = 0

        def __len__(self):
            return self.steps

        def __getitem__(self, i):
            n = len(self.images)
            order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.augment
                     else np.arange(n))
            rng = np.random.default_rng([self.seed, self.epoch, i])
            x = np.zeros((self.bs, self.size, self.size, 1), np.float32)
            y = np.zeros((self.bs, self.size, self.size, self.nc), np.float32)
            for b in range(self.bs):
                _, _, sar, z = self.images[order[(i * self.bs + b) % n]]
                xs, ys = augment_pair(sar, z, self.size, rng, self.strength, train=self.augment)
                x[b, ..., 0] = xs
                y[b] = np.eye(self.nc, dtype=np.float32)[np.clip(ys, 0, self.nc - 1)]
            return x, y

    class EpochOf(keras.callbacks.Callback):
        """Tells the samples which epoch runs (also after ``BackupAndRestore`` resumes), so that
        epoch ``e`` draws the same samples in a resumed run as in an uninterrupted one."""

        def __init__(self, samples):
            super().__init__()
            self.samples = samples

        def on_epoch_begin(self, epoch, logs=None):
            self.samples.epoch = int(epoch)

    class ValidationIoU(keras.callbacks.Callback):
        """``val_zone_iou`` in the epoch's logs: the benchmark's zone IoU (per image the mean over
        the classes present, then the mean over images) of the held-out images, each at its own
        size through the network in inference mode, whole or in tiles as the engine runs it
        (:func:`xfacies.inference.tiles.predict_tiled`)."""

        def __init__(self, images, tiling, n_classes):
            super().__init__()
            self.images, self.tiling, self.nc = images, tiling, n_classes

        def on_epoch_end(self, epoch, logs=None):
            from xfacies.inference.tiles import predict_tiled

            scores = []
            for _, _, sar, y in self.images:
                x = sar.astype(np.float32) / 255.0
                tile = self.tiling["tile"] or max(x.shape)
                p = predict_tiled(lambda v: np.asarray(self.model(v, training=False)), x[..., None], tile=tile,
                                  overlap=self.tiling["overlap"], pool=self.tiling["pool"]).argmax(-1)
                p[x <= 0] = 0
                ious = [((p == c) & (y == c)).sum() / u for c in range(self.nc)
                        if (u := ((p == c) | (y == c)).sum())]
                scores.append(float(np.mean(ious)))
            if logs is not None:
                logs["val_zone_iou"] = float(np.mean(scores))

    return Samples, EpochOf, ValidationIoU


#: Losses of :func:`train_zone_model` by name (all Keras 3 losses on one-hot zones).
LOSSES = {
    "dice_ce": "categorical cross-entropy + Dice per class over the batch",
    "ce": "categorical cross-entropy",
    "focal": "categorical focal cross-entropy (gamma 2)",
}


def dice_ce_loss():
    """Categorical cross-entropy plus Keras' Dice loss per class over the batch (mean over
    classes): the Dice term weighs rare zones (rock, narrow ocean) as much as common ones."""
    from xfacies.model.runtime import load_keras

    keras = load_keras()

    class DiceCE(keras.losses.Loss):
        def __init__(self, name: str = "dice_ce", **kw):
            super().__init__(name=name, **kw)
            self.ce = keras.losses.CategoricalCrossentropy()
            self.dice = keras.losses.Dice(axis=(0, 1, 2))

        def call(self, y_true, y_pred):
            return self.ce(y_true, y_pred) + self.dice(y_true, y_pred)

    return DiceCE()


def zone_loss(name: str = "dice_ce"):
    """The Keras loss called ``name`` in :data:`LOSSES`.

    Examples
    --------
    >>> type(zone_loss("focal")).__name__
    'CategoricalFocalCrossentropy'
    """
    from xfacies.model.runtime import load_keras

    if name not in LOSSES:
        raise InputError(f"loss={name!r} is not one of {sorted(LOSSES)}")
    keras = load_keras()
    if name == "ce":
        return keras.losses.CategoricalCrossentropy()
    if name == "focal":
        return keras.losses.CategoricalFocalCrossentropy(gamma=2.0)
    return dice_ce_loss()


def train_zone_model(
    dataset: xr.DataTree,
    *,
    epochs: int = DEFAULT_FIT["epochs"],
    batch_size: int = DEFAULT_FIT["batch_size"],
    crop: int = DEFAULT_FIT["crop"],
    steps_per_epoch: int | None = DEFAULT_FIT["steps_per_epoch"],
    learning_rate: float = DEFAULT_FIT["learning_rate"],
    architecture: str = DEFAULT_ARCHITECTURE,
    config: dict[str, Any] | None = None,
    augment: dict[str, Any] | None = None,
    loss: str = "dice_ce",
    seed: int = 0,
    validation: xr.DataTree | None = None,
    patience: int | None = None,
    checkpoints: str | Path | None = None,
    resume: bool = False,
    log: str | Path | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    callbacks: list | None = None,
    verbose: int = 1,
):
    """Train a zone-segmentation model on CaFFe images.

    Parameters
    ----------
    dataset
        Training images: a tree from :func:`xfacies.caffe.open_dataset` (nodes with ``sar`` and
        ``zones``), e.g. ``caffe.select(ds, index[index.glacier != "JAC"])``.
    epochs, batch_size, crop
        Passes, samples per batch, sample side (pixels): every sample is a random window of one
        image, scaled by a random factor (:func:`augment_pair`).  The default 128-px crops of
        256-px images never show a whole scene, so the network cannot learn the layout of the
        training glaciers' scenes, and the scale jitter (``zoom``, 0.5-1.5) lets it recognise
        ice, rock and ocean at sizes it has not seen.
    steps_per_epoch
        Batches per epoch; ``None`` covers every image's 256-px view once: ``(256 / crop)**2``
        crops per image (:data:`EPOCH_SIDE`).
    learning_rate
        Start of Adam's cosine decay to 0 over all steps.
    architecture, config
        A registered architecture (``"unet"``, or ``"dilated-fcn"`` for the translation-exact
        network) and its config fields; default :data:`DEFAULT_CONFIG`.
    augment
        Overrides of :data:`AUGMENT` (e.g. ``{"speckle_p": 0}``).
    loss
        ``"dice_ce"`` (default), ``"ce"`` or ``"focal"`` (:data:`LOSSES`, :func:`zone_loss`).
    seed
        Seeds weights, sample order and augmentation: the same seed gives the same model.
    validation
        Held-out images (e.g. one glacier) scored after every epoch: the epoch with the best
        validation zone IoU is kept (``keras.callbacks.ModelCheckpoint``); with ``patience``,
        training stops after that many epochs without improvement (``EarlyStopping``).
    checkpoints
        Folder for the per-epoch backup (``keras.callbacks.BackupAndRestore``) and the best
        weights; default a folder next to ``out`` (``<out>.checkpoints``), else none.
    resume
        Continue from the last epoch saved in ``checkpoints`` (weights, optimizer and schedule);
        without it an old backup there is cleared first.
    log
        CSV log of the loss and metrics per epoch (``keras.callbacks.CSVLogger``).
    out
        Save the bundle there (``*.xfacies``); never inside the installed package, and an existing
        file only with ``overwrite=True``.
    callbacks
        More ``keras.callbacks.Callback`` objects for ``fit``.
    verbose
        Keras' progress bar with an ETA from the first batch (1), one line per epoch (2) or
        silent (0).

    Returns
    -------
    xfacies.Model
        The bundle: feature ``sar`` normalised by 0..255, the four zone classes, the CaFFe
        citation, the training stems, the recipe and the per-epoch history in its metadata.

    Examples
    --------
    >>> import xfacies.caffe as caffe
    >>> root = caffe.make_synthetic(tmp_path / "caffe", layout="resized", n=6)   # doctest: +SKIP
    >>> m = caffe.train_zone_model(caffe.open_dataset(root), epochs=1, verbose=0)  # doctest: +SKIP
    >>> m.classes                                                                 # doctest: +SKIP
    ('NA', 'rock', 'glacier', 'ocean')
    """
    import shutil

    from xfacies.model.architecture import ARCHITECTURES, build
    from xfacies.model.runtime import load_keras
    from xfacies.model.bundle import Model
    from xfacies.train.fitting import cosine_adam

    from xfacies.model.registry import check_output, inside_package

    if out is not None:
        out = check_output(out, overwrite)
    keras = load_keras()
    loss_fn = zone_loss(loss)
    defaults = DEFAULT_CONFIG if architecture == DEFAULT_ARCHITECTURE else (
        DILATED_CONFIG if architecture == "dilated-fcn" else {})
    cfg = dict({**defaults, **(config or {})})
    n_classes = int(cfg["n_classes"])
    conf = ARCHITECTURES[architecture][0](**cfg) if architecture in ARCHITECTURES else None
    pool = int(getattr(conf, "pool", 1))
    if crop < pool or crop % pool:
        raise InputError(f"crop={crop} must be a multiple of {pool}, the {architecture} network's input step "
                         f"(downsample x 2**depth); e.g. crop={max(pool, crop // pool * pool)}")
    images = _images(dataset)
    for stem, _, _, z in images:
        bad = np.setdiff1d(np.unique(z), np.arange(n_classes))
        if bad.size:
            raise InputError(f"{stem}: zone ids {bad.tolist()} outside 0..{n_classes - 1}")
    steps = steps_per_epoch or max(1, int(np.ceil(len(images) * max(1.0, (EPOCH_SIDE / crop) ** 2) / batch_size)))
    keras.utils.set_random_seed(seed)
    net = build(architecture, cfg, dense=True)
    iou = keras.metrics.OneHotMeanIoU(num_classes=n_classes, name="zone_iou")
    net.compile(optimizer=cosine_adam(learning_rate, epochs * steps), loss=loss_fn, metrics=[iou])
    Samples, EpochOf, ValidationIoU = _dataset_class()
    train = Samples(images, crop, batch_size, n_classes, seed, True, steps, augment)
    val = None
    if validation is not None:
        tiling = {"tile": int(getattr(conf, "tile", 0)), "overlap": int(getattr(conf, "overlap", 0)), "pool": pool}
        val = ValidationIoU(_images(validation), tiling, n_classes)
    if checkpoints is None and out is not None:
        checkpoints = Path(str(out) + ".checkpoints")
    user_callbacks = list(callbacks or [])
    callbacks = [EpochOf(train)] + ([val] if val is not None else [])
    best = None
    if checkpoints is not None:
        ck = Path(checkpoints)
        if inside_package(ck):
            raise PermissionError(f"checkpoints={ck} is inside the installed xfacies package; choose another folder")
        backup = ck / "backup"
        if not resume and backup.exists():
            shutil.rmtree(backup)
        elif resume and not backup.exists():
            raise FileNotFoundError(f"resume=True but {backup} holds no backup to resume from: train without "
                                    "--resume first (with the same --out or --checkpoints)")
        ck.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup)))
        if val is not None:
            best = ck / "best.weights.h5"
            callbacks.append(keras.callbacks.ModelCheckpoint(str(best), monitor="val_zone_iou", mode="max",
                                                             save_best_only=True, save_weights_only=True))
    if val is not None and patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_zone_iou", mode="max", patience=patience,
                                                       restore_best_weights=best is None))
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.CSVLogger(str(log), append=resume))
    callbacks += user_callbacks
    t0 = time.perf_counter()
    hist = net.fit(train, epochs=epochs, callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    kept = "last"
    if best is not None and best.exists():
        net.load_weights(str(best))
        kept = "best validation zone IoU"
    attrs = [a for _, a, _, _ in images]
    model = Model(
        architecture=architecture, config=cfg, weights=net.get_weights(), features=("sar",),
        classes=tuple(z.name for z in catalog.ZONES),
        normalisation={"min": [0.0], "max": [255.0]},
        metadata={
            "task": "caffe-zones",
            "citation": CITATION,
            "licence": "trained on CaFFe data (CC BY 4.0); attribute the citation",
            "training_domain": {"imagery": "real", "sensors": sorted({str(a.get("satellite")) for a in attrs}),
                                "region": "CaFFe: " + ", ".join(sorted({str(a.get("glacier")) for a in attrs}))},
            "training": {"images": [s for s, _, _, _ in images], "epochs": epochs, "steps_per_epoch": steps,
                         "batch_size": batch_size, "crop": crop, "learning_rate": learning_rate,
                         "augment": {k: list(v) if isinstance(v, tuple) else v
                                     for k, v in {**AUGMENT, **(augment or {})}.items()},
                         "loss": LOSSES[loss], "kept": kept,
                         "validation": None if validation is None else [s for s, _, _, _ in _images(validation)],
                         "seed": seed, "seconds": round(seconds, 1), "keras_backend": keras.backend.backend()},
            "history": history,
        },
    )
    if out is not None:
        model.save(out)
    return model


def leave_one_glacier_out(dataset: xr.DataTree, *, pixel_size: Any = None, resolution: Any = None,
                          models_dir: str | Path | None = None, tta: str | None = None,
                          **fit: Any) -> pd.DataFrame:
    """Train one model per glacier on all the others and score it on that glacier.

    Parameters
    ----------
    dataset
        A tree from :func:`xfacies.caffe.open_dataset` with at least two glaciers.
    pixel_size, resolution
        Metres per pixel for the reported front errors and for the post-processing, as in
        :func:`xfacies.caffe.evaluate`; default each image's own.
    models_dir
        Save each held-out glacier's model there as ``without-<glacier>.xfacies``.
    tta
        Test-time augmentation of the scoring (:func:`xfacies.caffe.segment`).
    **fit
        Passed to :func:`train_zone_model`.

    Returns
    -------
    pandas.DataFrame
        One row per held-out glacier, and ``"all"`` pooled over them: the columns of
        :func:`xfacies.caffe.evaluate`'s ``"all"`` row (distances in its ``units``: metres where
        every image's pixel size is known, else pixels), the same distances in pixels
        (``mde_px``, ``mean_of_image_means_px``, ``hd95_px``) and the training seconds.
    """
    import warnings

    from xfacies.caffe import index, select
    from xfacies.caffe.metrics import evaluate
    from xfacies.caffe.segmentation import segment

    idx = index(dataset)
    glaciers = sorted(idx["glacier"].unique())
    if len(glaciers) < 2:
        raise InputError(f"leave-one-glacier-out needs two glaciers or more; the dataset has {glaciers}")

    def score(pred: xr.DataTree, truth: xr.DataTree) -> dict[str, Any]:
        row = evaluate(pred, truth, pixel_size=pixel_size, resolution=resolution).iloc[0].to_dict()
        with warnings.catch_warnings():  # one warning (above) is enough
            warnings.simplefilter("ignore")
            px = evaluate(pred, truth, pixel_size=1.0, resolution=resolution).iloc[0]
        row.update({f"{k}_px": float(px[k]) for k in ("mde", "mean_of_image_means", "hd95")})
        return row

    rows, preds = [], {}
    for g in glaciers:
        train = select(dataset, idx[idx.glacier != g])
        test = select(dataset, idx[idx.glacier == g])
        model = train_zone_model(train, **fit)
        if models_dir is not None:
            Path(models_dir).mkdir(parents=True, exist_ok=True)
            model.save(Path(models_dir) / f"without-{g}.xfacies")
        pred = segment(test, model, tta=tta).compute()
        row = score(pred, test)
        row.update(held_out=g, seconds=model.metadata["training"]["seconds"])
        rows.append(row)
        preds.update({name: node.ds for name, node in pred.children.items()})
    row = score(xr.DataTree.from_dict(preds), dataset)
    row.update(held_out="all", seconds=sum(r["seconds"] for r in rows))
    rows.append(row)
    out = pd.DataFrame(rows).drop(columns=["breakdown", "group"])
    return out[["held_out"] + [c for c in out.columns if c != "held_out"]]

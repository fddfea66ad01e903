"""Train and score zone-segmentation models on CaFFe images.

:func:`train_zone_model` fits the translation-exact dilated network
(:mod:`xfacies.model.dilated`) to the zones of a :func:`xfacies.caffe.open_dataset` tree with
Keras 3's own pieces: sparse categorical cross-entropy with per-pixel weights, Adam with
``keras.optimizers.schedules.CosineDecay`` (:func:`xfacies.train.fitting.cosine_adam`, as the facies
recipe), ``keras.metrics.MeanIoU``, a ``keras.utils.PyDataset``
of random crops with flips and 90-degree rotations, a ``CSVLogger`` and Keras' progress bar.
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

from xfacies import catalog

__all__ = ["train_zone_model", "leave_one_glacier_out", "CITATION"]

#: Attribution carried by every zone model trained on CaFFe (CC BY 4.0).
CITATION = ("Gourmelon, N., Seehaus, T., Braun, M., Maier, A. and Christlein, V. (2022): Calving fronts "
            "and where to find them: a benchmark dataset and methodology for automatic glacier "
            "calving front extraction from synthetic aperture radar imagery, Earth Syst. Sci. Data 14, "
            "4287-4313, doi:10.5194/essd-14-4287-2022; data doi:10.1594/PANGAEA.940950, CC BY 4.0")

#: Default architecture of the zone model (receptive field 133 px).
DEFAULT_CONFIG: dict[str, Any] = {"n_features": 1, "n_classes": len(catalog.ZONES), "filters": 12,
                                  "dilations": [1, 2, 4, 8, 16, 32, 2]}
#: The shipped model's training budget (``xfacies caffe train`` defaults).
DEFAULT_FIT: dict[str, Any] = {"epochs": 25, "batch_size": 8, "crop": 160, "steps_per_epoch": 40}


def _images(tree: xr.DataTree) -> list[tuple[str, dict, np.ndarray, np.ndarray]]:
    """(stem, attrs, sar uint8, zones int8) of every image node, computed."""
    out = []
    for node in tree.subtree:
        ds = node.ds
        if "sar" in ds.data_vars and "zones" in ds.data_vars:
            out.append((node.name, dict(node.attrs), np.asarray(ds["sar"].values),
                        np.asarray(ds["zones"].values)))
    if not out:
        raise ValueError("the dataset has no image with both 'sar' and 'zones': open it with "
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


def _dataset_class():
    from xfacies.model.architecture import _keras

    keras = _keras()

    class Crops(keras.utils.PyDataset):
        """Batches of random ``size x size`` crops (zero-padded with weight 0 where an image is
        smaller), flipped and rotated by multiples of 90 degrees, with per-pixel class weights."""

        def __init__(self, images, size, batch_size, class_weights, seed, augment, steps):
            super().__init__()
            self.images, self.size, self.bs = images, size, batch_size
            self.cw, self.seed, self.augment, self.steps = class_weights, seed, augment, steps
            self.epoch = 0

        def __len__(self):
            return self.steps

        def on_epoch_end(self):
            self.epoch += 1

        def __getitem__(self, i):
            rng = np.random.default_rng([self.seed, self.epoch, i])
            S = self.size
            x = np.zeros((self.bs, S, S, 1), np.float32)
            y = np.zeros((self.bs, S, S), np.int32)
            w = np.zeros((self.bs, S, S), np.float32)
            for b in range(self.bs):
                _, _, sar, z = self.images[rng.integers(len(self.images))]
                H, W = sar.shape
                r0 = rng.integers(H - S + 1) if H > S else 0
                c0 = rng.integers(W - S + 1) if W > S else 0
                s = sar[r0:r0 + S, c0:c0 + S].astype(np.float32) / 255.0
                zz = z[r0:r0 + S, c0:c0 + S].astype(np.int32)
                ww = self.cw[zz]
                if self.augment:
                    k = int(rng.integers(4))
                    flip = bool(rng.integers(2))
                    s, zz, ww = (np.rot90(a, k) for a in (s, zz, ww))
                    if flip:
                        s, zz, ww = (a[:, ::-1] for a in (s, zz, ww))
                h, wd = s.shape
                x[b, :h, :wd, 0], y[b, :h, :wd], w[b, :h, :wd] = s, zz, ww
            return x, y, w

    return Crops


def train_zone_model(
    dataset: xr.DataTree,
    *,
    epochs: int = DEFAULT_FIT["epochs"],
    batch_size: int = DEFAULT_FIT["batch_size"],
    crop: int = DEFAULT_FIT["crop"],
    steps_per_epoch: int | None = DEFAULT_FIT["steps_per_epoch"],
    learning_rate: float = 1e-3,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    validation: xr.DataTree | None = None,
    log: str | Path | None = None,
    out: str | Path | None = None,
    verbose: int = 1,
):
    """Train a zone-segmentation model on CaFFe images.

    Parameters
    ----------
    dataset
        Training images: a tree from :func:`xfacies.caffe.open_dataset` (nodes with ``sar`` and
        ``zones``), e.g. ``caffe.select(ds, index[index.glacier != "JAC"])``.
    epochs, batch_size, crop
        Passes, crops per batch, crop side (pixels; smaller images are padded with weight 0).
    steps_per_epoch
        Batches per epoch; ``None`` is one pass over the images' pixels.
    learning_rate
        Start of Adam's cosine decay to 0 over all steps.
    config
        :class:`xfacies.model.dilated.DilatedConfig` fields; default :data:`DEFAULT_CONFIG`.
    seed
        Seeds weights, crops and augmentation: the same seed gives the same model.
    validation
        Optional images scored after every epoch (``val_mean_io_u`` in the log).
    log
        CSV log of the loss and metrics per epoch (``keras.callbacks.CSVLogger``).
    out
        Save the bundle there (``*.xfacies``).
    verbose
        Keras' progress bar (1), one line per epoch (2) or silent (0).

    Returns
    -------
    xfacies.Model
        The ``"dilated-fcn"`` bundle: feature ``sar`` normalised by 0..255, the four zone classes,
        the CaFFe citation, the training stems and the per-epoch history in its metadata.

    Examples
    --------
    >>> import xfacies.caffe as caffe
    >>> root = caffe.make_synthetic(tmp_path / "caffe", layout="resized", n=6)   # doctest: +SKIP
    >>> m = caffe.train_zone_model(caffe.open_dataset(root), epochs=1, verbose=0)  # doctest: +SKIP
    >>> m.classes                                                                 # doctest: +SKIP
    ('NA', 'rock', 'glacier', 'ocean')
    """
    from xfacies.model.architecture import _keras, build
    from xfacies.model.bundle import Model
    from xfacies.train.fitting import cosine_adam

    keras = _keras()
    cfg = dict(DEFAULT_CONFIG if config is None else {**DEFAULT_CONFIG, **config})
    n_classes = int(cfg["n_classes"])
    images = _images(dataset)
    for stem, _, _, z in images:
        bad = np.setdiff1d(np.unique(z), np.arange(n_classes))
        if bad.size:
            raise ValueError(f"{stem}: zone ids {bad.tolist()} outside 0..{n_classes - 1}")
    cw = _class_weights(images, n_classes)
    pixels = sum(s.size for _, _, s, _ in images)
    steps = steps_per_epoch or max(1, int(np.ceil(pixels / (batch_size * crop * crop))))
    keras.utils.set_random_seed(seed)
    net = build("dilated-fcn", cfg, dense=True)
    net.compile(
        optimizer=cosine_adam(learning_rate, epochs * steps),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.MeanIoU(num_classes=n_classes, sparse_y_true=True, sparse_y_pred=False)],
        weighted_metrics=[],
    )
    Crops = _dataset_class()
    train = Crops(images, crop, batch_size, cw, seed, True, steps)
    val = None
    if validation is not None:
        vimg = _images(validation)
        val = Crops(vimg, crop, batch_size, np.ones(n_classes, np.float32), seed + 1, False,
                    max(1, int(np.ceil(len(vimg) / batch_size))))
    callbacks = []
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.CSVLogger(str(log)))
    t0 = time.perf_counter()
    hist = net.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - t0
    attrs = [a for _, a, _, _ in images]
    model = Model(
        architecture="dilated-fcn", config=cfg, weights=net.get_weights(), features=("sar",),
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
                         "seed": seed, "class_weights": cw.tolist(), "seconds": round(seconds, 1),
                         "keras_backend": keras.backend.backend()},
            "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
        },
    )
    if out is not None:
        model.save(out)
    return model


def leave_one_glacier_out(dataset: xr.DataTree, *, pixel_size: Any = None, resolution: Any = None,
                          models_dir: str | Path | None = None, **fit: Any) -> pd.DataFrame:
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
    **fit
        Passed to :func:`train_zone_model`.

    Returns
    -------
    pandas.DataFrame
        One row per held-out glacier, and ``"all"`` pooled over them: the columns of
        :func:`xfacies.caffe.evaluate`'s ``"all"`` row (distances in metres, or the units of
        ``pixel_size``), the same distances in pixels (``mde_px``, ``mean_of_image_means_px``,
        ``hd95_px``) and the training seconds.
    """
    from xfacies.caffe import index, select
    from xfacies.caffe.metrics import evaluate
    from xfacies.caffe.segmentation import segment

    idx = index(dataset)
    glaciers = sorted(idx["glacier"].unique())
    if len(glaciers) < 2:
        raise ValueError(f"leave-one-glacier-out needs two glaciers or more; the dataset has {glaciers}")

    def score(pred: xr.DataTree, truth: xr.DataTree) -> dict[str, Any]:
        row = evaluate(pred, truth, pixel_size=pixel_size, resolution=resolution).iloc[0].to_dict()
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
        pred = segment(test, model).compute()
        row = score(pred, test)
        row.update(held_out=g, seconds=model.metadata["training"]["seconds"])
        rows.append(row)
        preds.update({name: node.ds for name, node in pred.children.items()})
    row = score(xr.DataTree.from_dict(preds), dataset)
    row.update(held_out="all", seconds=sum(r["seconds"] for r in rows))
    rows.append(row)
    out = pd.DataFrame(rows).drop(columns=["breakdown", "group"])
    return out[["held_out"] + [c for c in out.columns if c != "held_out"]]

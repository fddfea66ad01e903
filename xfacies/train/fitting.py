"""Fit facies models by the reference recipe, and cross-validate them fold by fold.

The recipe (the reference study's, ``facies-reference.md`` §"Training recipe"), built from
Keras 3's own pieces:

* ``keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=2.0)`` -- focal loss without
  the class-balancing alpha (Keras' default ``alpha=0.25`` would silently scale it);
* label smoothing 0.1 on the *training* targets only (the validation loss and metrics see the
  true labels);
* sample weights = (N / n_class) x (N / n_scene), a scene being a (glacier, date) pair, from
  the training data, not normalised;
* augmentation of the training batches: horizontal and vertical flips, ``rot90`` x k, contrast
  x U(0.95, 1.05) about each patch's channel means, brightness + U(-0.01, 0.01);
* ``keras.optimizers.Adam`` with ``keras.optimizers.schedules.CosineDecay`` from 1e-3 to 0 over
  all steps; batch 512;
* ``keras.metrics.MeanIoU`` and ``keras.metrics.F1Score``; ``keras.callbacks.ModelCheckpoint``
  (weights only, a ``.weights.h5`` path) keeps the best validation mIoU, which the returned
  model carries; ``keras.callbacks.CSVLogger`` and Keras' progress bar.

Inputs are patch Datasets, ``patches`` ``(sample, y, x, band)`` float32 raw features (NaN
beyond scene edges) with per-sample ``class``, ``glacier``, ``date`` and ``fold`` coordinates
(:func:`xfacies.train.data.patches_from_points`, :func:`xfacies.train.reference_patches.read_reference_patches`).
The global per-feature min/max of the training patches is the model's normalisation; NaN
becomes 0 after it (the reference's zero padding in normalised space).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.errors import InputError
from xfacies import catalog

__all__ = ["new_model", "fit", "cross_validate", "CrossValidation", "focal_loss", "cosine_adam",
           "sample_weights", "fold_groups", "class_index", "training_domain", "RECIPE"]

#: The reference recipe's hyper-parameters (defaults of :func:`fit`).
RECIPE: dict[str, Any] = {"epochs": 1000, "batch_size": 512, "learning_rate": 1e-3, "gamma": 2.0,
                          "label_smoothing": 0.1, "contrast": 0.05, "brightness": 0.01}


def focal_loss(gamma: float = RECIPE["gamma"]):
    """The recipe's loss: ``keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=gamma)``.

    ``alpha=1.0`` because the recipe has no alpha (Keras defaults to 0.25).  Per sample
    ``-sum_c y_c (1 - p_c)^gamma log p_c`` with ``p`` clipped to ``[1e-7, 1 - 1e-7]``.
    """
    from xfacies.model.runtime import load_keras

    keras = load_keras()
    return keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=gamma, from_logits=False)


def cosine_adam(learning_rate: float, total_steps: int):
    """``keras.optimizers.Adam`` on a ``CosineDecay`` from ``learning_rate`` to 0 over ``total_steps``."""
    from xfacies.model.runtime import load_keras

    keras = load_keras()
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, int(total_steps)),
                                                      alpha=0.0)
    return keras.optimizers.Adam(schedule)


def new_model(architecture: str = "translation-exact", features: Any = 4, seed: int = 0,
              classes: Sequence[str] | None = None, **config: Any):
    """An untrained :class:`xfacies.Model` of a registered architecture.

    Parameters
    ----------
    architecture
        ``"translation-exact"`` (the reference family with unpadded convolutions: dense ==
        exact), ``"reference-cnn"`` (the published architecture) or another registered name.
    features
        A reference feature set (1-4) or band names (any, in your words).
    seed
        Seeds Keras' initialisers: the same seed gives the same weights.
    classes
        The output classes, e.g. ``["snow", "ice"]`` (a head of that size); default the
        catalogue's 8.
    **config
        Architecture fields (e.g. ``filters=16``).

    Examples
    --------
    >>> m = new_model("translation-exact", features=4, seed=0, filters=16)
    >>> m.architecture, m.dense_radius, m.patch_radius, len(m.features)
    ('translation-exact', 16, 16, 11)
    """
    from xfacies.model.architecture import build
    from xfacies.model.runtime import load_keras
    from xfacies.model.bundle import Model

    keras = load_keras()
    names = catalog.band_names(features)
    cls = _classes(classes)
    cfg = {"n_features": len(names), "n_classes": len(cls), **config}
    keras.utils.set_random_seed(seed)
    net = build(architecture, cfg, dense=False)
    return Model(architecture=architecture, config=cfg, weights=net.get_weights(), features=names,
                 classes=cls,
                 metadata={"trained": False, "seed": seed})


def _classes(classes: Sequence[str] | None) -> tuple[str, ...]:
    """The output classes of a model: given (1 to 127 distinct names), or the catalogue's."""
    if classes is None:
        return tuple(catalog.class_names())
    out = tuple(str(c) for c in ([classes] if isinstance(classes, str) else classes))
    if len(out) < 2 or len(set(out)) != len(out):
        raise InputError(f"classes must be 2 or more distinct names, got {list(out)}")
    catalog.class_flag_attrs(classes=out)  # valid CF flag words, or a clear error
    return out


def class_index(ds: xr.Dataset, classes: Sequence[str] | None = None, what: str = "the patches") -> np.ndarray:
    """Class index (in ``classes``, default the catalogue's) of each patch: by its ``class_name``
    (else its catalogue id).  A class outside ``classes`` is an error that names it and its count.

    Examples
    --------
    >>> ds = xr.Dataset(coords={"class_name": ("sample", ["ice", "snow", "ice"])})
    >>> class_index(ds, ["snow", "ice"]).tolist()
    [1, 0, 1]
    """
    classes = _classes(classes)
    if "class_name" in ds.coords:
        names = np.asarray([str(v) for v in ds["class_name"].values], dtype=object)
    else:
        ids = np.asarray(ds["class"].values).astype(int)
        known = catalog.class_names()
        bad = sorted(set(ids.tolist()) - set(range(len(known))))
        if bad:
            raise InputError(f"{what}: class ids {bad} are not catalogue ids; give a 'class_name' coordinate")
        names = np.asarray([known[i] for i in ids], dtype=object)
    index = {c: i for i, c in enumerate(classes)}
    other = sorted(set(names.tolist()) - set(index))
    if other:
        counts = pd.Series(names).value_counts()
        raise InputError(f"{what} hold classes {other} ({', '.join(f'{c}: {int(counts[c])}' for c in other)} "
                         f"samples) that are not among the model's classes {list(classes)}: add them to classes=, "
                         "or leave those samples out, e.g. patches.isel(sample=patches.class_name.isin([...]))")
    return np.asarray([index[n] for n in names], dtype=np.int64)


# --------------------------------------------------------------------------- data
def _check_patches(ds: xr.Dataset, what: str) -> None:
    if not isinstance(ds, xr.Dataset) or "patches" not in ds.data_vars:
        raise TypeError(f"{what} must be a patch Dataset with a 'patches' variable (sample, y, x, band), "
                        "e.g. from xfacies.train.data.patches_from_points or read_reference_patches")
    need = [c for c in ("class", "glacier", "date") if c not in ds.coords]
    if need:
        raise InputError(f"{what} lacks the per-sample coordinates {need}")
    if ds["patches"].dims != ("sample", "y", "x", "band"):
        raise InputError(f"{what}['patches'] must have dims (sample, y, x, band), got {ds['patches'].dims}")


def _minmax(x: np.ndarray) -> dict[str, list[float]]:
    """Global per-feature min/max over the training patches (NaN ignored)."""
    lo = np.nanmin(x, axis=(0, 1, 2)).astype(np.float64)
    hi = np.nanmax(x, axis=(0, 1, 2)).astype(np.float64)
    hi = np.where(hi > lo, hi, lo + 1.0)  # a constant feature: any positive range maps it to 0
    return {"min": lo.tolist(), "max": hi.tolist()}


def _normalised(ds: xr.Dataset, features: tuple[str, ...], norm: dict[str, list[float]]) -> np.ndarray:
    x = np.asarray(ds["patches"].sel(band=list(features)).values, dtype=np.float32)
    lo = np.asarray(norm["min"], np.float32)
    hi = np.asarray(norm["max"], np.float32)
    return np.nan_to_num((x - lo) / (hi - lo), nan=0.0)


def sample_weights(ds: xr.Dataset) -> np.ndarray:
    """The recipe's weights (N / n_class) x (N / n_scene), scene = (glacier, date), not normalised.

    Examples
    --------
    >>> ds = xr.Dataset(coords={"class": ("sample", [0, 0, 1]), "glacier": ("sample", ["a", "a", "b"]),
    ...                         "date": ("sample", pd.to_datetime(["2020-01-01"] * 3))})
    >>> sample_weights(ds).tolist()
    [2.25, 2.25, 9.0]
    """
    labels = np.asarray(ds["class"].values)
    scenes = pd.Series(list(zip(np.asarray(ds["glacier"].values).astype(str),
                                pd.to_datetime(ds["date"].values).strftime("%Y-%m-%d"))))
    n = labels.size
    per_class = pd.Series(labels).map(pd.Series(labels).value_counts()).to_numpy(np.float64)
    per_scene = scenes.map(scenes.value_counts()).to_numpy(np.float64)
    return (n / per_class) * (n / per_scene)


def _batches_class():
    from xfacies.model.runtime import load_keras

    keras = load_keras()

    class Batches(keras.utils.PyDataset):
        """Shuffled, augmented, label-smoothed training batches (or plain ordered ones)."""

        def __init__(self, x, y, w, batch_size, n_classes, *, seed, train, smoothing, contrast,
                     brightness):
            super().__init__()
            self.x, self.y, self.w = x, y, w
            self.bs, self.C, self.seed, self.train = batch_size, n_classes, seed, train
            self.smoothing, self.contrast, self.brightness = smoothing, contrast, brightness
            self.epoch = 0
            self.order = self._order()

        def _order(self):
            n = self.x.shape[0]
            return np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.train else np.arange(n)

        def __len__(self):
            return int(np.ceil(self.x.shape[0] / self.bs))

        def on_epoch_end(self):
            self.epoch += 1
            self.order = self._order()

        def __getitem__(self, i):
            idx = np.sort(self.order[i * self.bs:(i + 1) * self.bs])
            x = self.x[idx]
            y = np.eye(self.C, dtype=np.float32)[self.y[idx]]
            if not self.train:
                return x, y
            rng = np.random.default_rng([self.seed, self.epoch, i, 1])
            x = _augment(x, rng, self.contrast, self.brightness)
            if self.smoothing:
                y = y * (1.0 - self.smoothing) + self.smoothing / self.C
            return x, y, self.w[idx].astype(np.float32)

    return Batches


def _augment(x: np.ndarray, rng: np.random.Generator, contrast: float, brightness: float) -> np.ndarray:
    """Per patch: flips, rot90 x k, contrast about the channel means, brightness shift."""
    n = x.shape[0]
    out = np.empty_like(x)
    k = rng.integers(0, 4, n)
    fh = rng.integers(0, 2, n).astype(bool)
    fv = rng.integers(0, 2, n).astype(bool)
    for j in range(n):
        p = np.rot90(x[j], k[j])
        if fh[j]:
            p = p[:, ::-1]
        if fv[j]:
            p = p[::-1]
        out[j] = p
    if contrast:
        f = rng.uniform(1 - contrast, 1 + contrast, (n, 1, 1, 1)).astype(np.float32)
        mean = out.mean(axis=(1, 2), keepdims=True)
        out = (out - mean) * f + mean
    if brightness:
        out = out + rng.uniform(-brightness, brightness, (n, 1, 1, 1)).astype(np.float32)
    return out


# --------------------------------------------------------------------------- fit
def fit(
    train: xr.Dataset,
    validation: xr.Dataset | None = None,
    *,
    model: Any = None,
    architecture: str = "translation-exact",
    features: Any = None,
    config: dict[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    epochs: int = RECIPE["epochs"],
    batch_size: int = RECIPE["batch_size"],
    learning_rate: float = RECIPE["learning_rate"],
    gamma: float = RECIPE["gamma"],
    label_smoothing: float = RECIPE["label_smoothing"],
    augment: bool = True,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    log: str | Path | None = None,
    verbose: int = 1,
):
    """Train a facies model on patches by the reference recipe (module docstring).

    Parameters
    ----------
    train, validation
        Patch Datasets; the validation patches choose the checkpoint (best ``val_miou``); without
        them the last epoch is kept.
    model
        Start from this :class:`xfacies.Model` (e.g. :func:`new_model`); default a new
        ``architecture`` model with ``config`` on ``features`` (default: the patches' bands, any
        names).
    classes
        The classes to learn, e.g. ``["snow", "ice"]``: the head, the label smoothing and the
        metrics cover these only; samples are matched by ``class_name``.  Default: the
        catalogue's 8 (or ``model``'s classes).
    epochs, batch_size, learning_rate, gamma, label_smoothing
        The recipe's 1000, 512, 1e-3, 2 and 0.1 by default.
    augment
        Flips, rot90, contrast and brightness of the training batches.
    seed
        Seeds the weights, the shuffling and the augmentation: the same seed gives the same model
        (on the same backend and machine).
    checkpoint
        Where the best weights go (``<path>.weights.h5``); default a temporary file.
    log
        CSV log of the loss and metrics per epoch.
    verbose
        Keras' progress bar (1), one line per epoch (2), silent (0).

    Returns
    -------
    xfacies.Model
        With the training patches' global min/max as its normalisation and the recipe, the
        history and the best epoch in its metadata.

    Examples
    --------
    >>> model = fit(patches.isel(sample=train), patches.isel(sample=val), epochs=50)  # doctest: +SKIP
    """
    from xfacies.model.architecture import build
    from xfacies.model.runtime import load_keras
    from xfacies.model.bundle import Model

    keras = load_keras()
    _check_patches(train, "train")
    if validation is not None:
        _check_patches(validation, "validation")
    if model is not None:
        base = model
        names = tuple(base.features)
        if classes is not None and tuple(classes) != tuple(base.classes):
            raise InputError(f"classes={list(classes)} differ from the model's {list(base.classes)}; start from "
                             "new_model(..., classes=...) instead")
        classes = tuple(base.classes)
    else:
        names = catalog.band_names(features if features is not None
                                    else tuple(str(b) for b in train["band"].values))
        base = None
    missing = [f for f in names if f not in [str(b) for b in train["band"].values]]
    if missing:
        raise InputError(f"the training patches lack the features {missing}; their bands are "
                         f"{[str(b) for b in train['band'].values]}")
    cls = _classes(classes)
    C = len(cls)
    x_raw = np.asarray(train["patches"].sel(band=list(names)).values, dtype=np.float32)
    norm = _minmax(x_raw)
    del x_raw
    x = _normalised(train, names, norm)
    y = class_index(train, cls, "the training patches")
    w = sample_weights(train)
    keras.utils.set_random_seed(seed)
    if base is None:
        cfg = {"n_features": len(names), "n_classes": C, **(config or {})}
        arch = architecture
        net = build(arch, cfg, dense=False)
    else:
        cfg, arch = dict(base.config), base.architecture
        net = build(arch, cfg, dense=False)
        net.set_weights(base.weights)
    want = tuple(net.inputs[0].shape[1:3])
    if want != tuple(x.shape[1:3]) and None not in want:
        raise InputError(f"the patches are {x.shape[1]} x {x.shape[2]} px but the {arch!r} model reads "
                         f"{want[0]} x {want[1]} px patches: cut them with patch_size={want[0]}, or give the "
                         f"model config patch_size={x.shape[1]}")
    steps = int(np.ceil(x.shape[0] / batch_size))
    net.compile(
        optimizer=cosine_adam(learning_rate, epochs * steps),
        loss=focal_loss(gamma),
        metrics=[keras.metrics.MeanIoU(num_classes=C, sparse_y_true=False, sparse_y_pred=False, name="miou"),
                 keras.metrics.F1Score(average="macro", name="f1"),
                 keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    Batches = _batches_class()
    data = Batches(x, y, w, batch_size, C, seed=seed, train=True, smoothing=label_smoothing,
                   contrast=RECIPE["contrast"] if augment else 0.0,
                   brightness=RECIPE["brightness"] if augment else 0.0)
    val = None
    if validation is not None:
        xv = _normalised(validation, names, norm)
        yv = class_index(validation, cls, "the validation patches")
        val = Batches(xv, yv, None, batch_size, C, seed=seed, train=False, smoothing=0.0,
                      contrast=0.0, brightness=0.0)
    tmp = None
    if checkpoint is None:
        tmp = tempfile.TemporaryDirectory(prefix="xfacies-fit-")
        checkpoint = Path(tmp.name) / "best"
    ckpt = Path(checkpoint)
    if not ckpt.name.endswith(".weights.h5"):  # ModelCheckpoint(save_weights_only=True) needs it
        ckpt = ckpt.with_name(ckpt.name + ".weights.h5")
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [keras.callbacks.ModelCheckpoint(
        str(ckpt), monitor="val_miou" if val is not None else "miou", mode="max",
        save_best_only=True, save_weights_only=True)]
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.CSVLogger(str(log)))
    t0 = time.perf_counter()
    hist = net.fit(data, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - t0
    net.load_weights(str(ckpt))
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    key = "val_miou" if val is not None else "miou"
    best = int(np.argmax(history[key]))
    if tmp is not None:
        tmp.cleanup()
    return Model(
        architecture=arch, config=cfg, weights=net.get_weights(), features=names,
        classes=cls, normalisation=norm,
        metadata={
            "trained": True,
            "training_domain": training_domain(train, cls),
            "recipe": {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                       "loss": f"CategoricalFocalCrossentropy(alpha=1.0, gamma={gamma})",
                       "label_smoothing": label_smoothing, "augment": augment, "seed": seed,
                       "sample_weights": "(N / n_class) x (N / n_scene)",
                       "keras_backend": keras.backend.backend()},
            "n_train": int(x.shape[0]), "n_validation": 0 if validation is None else int(validation.sizes["sample"]),
            "best_epoch": best, f"best_{key}": history[key][best], "seconds": round(seconds, 1),
            "history": history,
        },
    )


def training_domain(patches: xr.Dataset, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """What a model trained on ``patches`` has seen, as the bundle records it
    (``metadata["training_domain"]``, printed by ``xfacies info``): the imagery (``"synthetic"``,
    ``"real"`` or ``"unknown"``), the sensors (the cube's ``platform`` per scene, where it had
    one), the glaciers, the first and last date and the number of distinct dates, and the labels
    per class.

    Examples
    --------
    >>> ds = xr.Dataset(coords={"class_name": ("sample", ["ice", "snow", "ice"]),
    ...                         "glacier": ("sample", ["A", "A", "B"]),
    ...                         "date": ("sample", np.array(["2020-08-01", "2020-08-01", "2021-09-02"],
    ...                                                     "datetime64[ns]"))})
    >>> d = training_domain(ds, ["snow", "ice"])
    >>> d["glaciers"], d["dates"], d["labels"]
    (['A', 'B'], {'first': '2020-08-01', 'last': '2021-09-02', 'n': 2}, {'snow': 1, 'ice': 2})
    """
    import json

    cls = _classes(classes)
    attrs = {**patches.attrs, **(patches["patches"].attrs if "patches" in patches else {})}
    out: dict[str, Any] = {"imagery": attrs.get("xfacies_imagery") or "unknown"}
    sensors = attrs.get("sensors")
    if sensors:
        out["sensors"] = json.loads(sensors) if isinstance(sensors, str) else [str(v) for v in sensors]
    if "glacier" in patches.coords:
        names = sorted({str(v) for v in np.asarray(patches["glacier"].values).ravel()} - {""})
        if names:
            out["glaciers"] = names
    if "date" in patches.coords:
        days = np.asarray(patches["date"].values).astype("datetime64[D]")
        days = days[~np.isnat(days)]
        if days.size:
            out["dates"] = {"first": str(days.min()), "last": str(days.max()), "n": int(np.unique(days).size)}
    y = class_index(patches, cls, "the patches")
    out["labels"] = {c: int((y == i).sum()) for i, c in enumerate(cls)}
    return out


# --------------------------------------------------------------------------- cross-validation
@dataclass
class CrossValidation:
    """Result of :func:`cross_validate`.

    Attributes
    ----------
    models
        Test fold -> the model trained on the other folds but its validation fold.
    probabilities
        ``(sample, class)`` out-of-fold probabilities: each sample predicted by the model whose
        test fold holds it.
    folds
        Test fold -> ``{"validation": v, "train": [...]}``.
    """

    models: dict[int, Any]
    probabilities: xr.DataArray
    folds: dict[int, dict[str, Any]] = field(default_factory=dict)

    def predictions(self) -> np.ndarray:
        """Out-of-fold class ids (argmax)."""
        return np.asarray(self.probabilities.values.argmax(axis=1))


def fold_groups(patches: xr.Dataset, fold_by: str) -> np.ndarray:
    """The group of each sample for folds ``fold_by``: ``"scene"`` (glacier and date: the pixels
    of one image never straddle train and test), ``"glacier"`` (leave glaciers out), or the name
    of any per-sample coordinate (e.g. ``"region"``, a point table's ``"scene"`` column).

    Examples
    --------
    >>> ds = xr.Dataset(coords={"glacier": ("sample", ["A", "A", "B"]),
    ...                         "date": ("sample", np.array(["2021-08-01", "2021-09-01", "2021-08-01"],
    ...                                                     "M8[ns]"))})
    >>> fold_groups(ds, "scene").tolist()
    ['A 2021-08-01', 'A 2021-09-01', 'B 2021-08-01']
    """
    if fold_by == "scene":
        # a scene is one image: the glacier (or grid) and the day; a point table's "scene" column
        # names the day only, so patch sets of several glaciers joined by concat_patches keep apart
        if "scene" in patches.coords:
            days = np.asarray([str(v) for v in patches["scene"].values])
        else:
            days = pd.DatetimeIndex(patches["date"].values).strftime("%Y-%m-%d")
        if "glacier" not in patches.coords:
            return np.asarray(days, dtype=object)
        return np.asarray([f"{g} {d}" for g, d in zip(patches["glacier"].values, days)], dtype=object)
    if fold_by not in patches.coords or patches[fold_by].dims != ("sample",):
        known = [c for c in patches.coords if patches[c].dims == ("sample",)]
        raise InputError(f"fold_by={fold_by!r} is neither 'scene', 'glacier' nor a per-sample coordinate of the "
                         f"patches ({known})")
    return np.asarray([str(v) for v in patches[fold_by].values], dtype=object)


def cross_validate(patches: xr.Dataset, *, k: int | None = None, test_folds: list[int] | None = None,
                   fold_by: str | None = None, progress: bool = True, **fit_kw: Any) -> CrossValidation:
    """k-fold cross-validation by the patches' ``fold`` coordinate, the reference's way.

    For test fold ``t`` the validation fold is ``(t - 1) mod k`` and the others train.  Every
    sample gets out-of-fold probabilities from the model of its own test fold (the input of
    :func:`xfacies.train.cleaning.label_issues`).

    Parameters
    ----------
    patches
        A patch Dataset with a ``fold`` coordinate holding 0..k-1 (or give ``fold_by``).
    k
        Number of folds (default: the number of distinct folds, 6 in the reference; with
        ``fold_by``, 6 or the number of groups if fewer).
    test_folds
        Only these test folds (default all); samples of the others get NaN probabilities.
    fold_by
        Assign the folds here, whole groups per fold (:func:`fold_groups`): ``"scene"``,
        ``"glacier"`` or a per-sample coordinate; balanced by size, seeded by ``fit``'s ``seed``.
        Neighbouring pixels of one scene in train and test inflate every score: folds by point
        are for data whose points are far apart.
    progress
        A bar over the folds with an ETA (tqdm; ``False``: quiet).
    **fit_kw
        Passed to :func:`fit` (``epochs``, ``seed``, ``architecture``, ...).

    Returns
    -------
    CrossValidation

    Raises
    ------
    ValueError
        Fewer than 3 folds (a test fold, a validation fold and at least one to train on), or
        fewer groups than folds.
    """
    from tqdm.auto import tqdm

    from xfacies.train.data import assign_folds
    from xfacies.train.evaluation import predict_probabilities

    _check_patches(patches, "patches")
    if fold_by is not None:
        groups = fold_groups(patches, fold_by)
        n_groups = len(set(groups.tolist()))
        k = int(k or min(6, n_groups))
        if n_groups < k:
            raise InputError(f"fold_by={fold_by!r} gives {n_groups} group(s), fewer than k={k} folds: each fold "
                             "needs at least one whole group; lower k, or fold by a finer unit (e.g. 'scene')")
        folds = assign_folds(groups, folds=k, seed=int(fit_kw.get("seed", 0)))
        patches = patches.assign_coords(fold=("sample", folds))
    if "fold" not in patches.coords:
        raise InputError("patches need a 'fold' coordinate for cross-validation, or pass fold_by='scene' / "
                         "'glacier' / a per-sample coordinate")
    folds = np.asarray(patches["fold"].values).astype(int)
    k = int(k or len(np.unique(folds)))
    if k < 3:
        raise InputError(f"cross-validation needs at least 3 folds (a test fold, a validation fold and one to "
                         f"train on); the patches have {k}: {sorted(np.unique(folds).tolist())}. Give more "
                         "folds (fold_by= with k=3 or more) or more scenes/glaciers")
    if folds.min() < 0 or folds.max() >= k:
        raise InputError(f"fold ids must be 0..{k - 1}; got {sorted(np.unique(folds).tolist())}")
    cls = _classes(fit_kw.get("classes")) if fit_kw.get("model") is None else tuple(fit_kw["model"].classes)
    C = len(cls)
    probs = np.full((folds.size, C), np.nan, dtype=np.float32)
    models, plan = {}, {}
    todo = list(range(k) if test_folds is None else test_folds)
    bar = tqdm(todo, desc="cross-validation", unit="fold", disable=not progress)
    for t in bar:
        v = (t - 1) % k
        tr = [f for f in range(k) if f not in (t, v)]
        plan[t] = {"validation": v, "train": tr}
        bar.set_postfix_str(f"test fold {t}, validation {v}")
        train = patches.isel(sample=np.flatnonzero(np.isin(folds, tr)))
        val = patches.isel(sample=np.flatnonzero(folds == v))
        m = fit(train, val, **fit_kw)
        m.metadata["fold"] = {"test": t, **plan[t]}
        models[t] = m
        test_idx = np.flatnonzero(folds == t)
        if test_idx.size:
            probs[test_idx] = predict_probabilities(m, patches.isel(sample=test_idx))
    bar.close()
    da_ = xr.DataArray(probs, dims=("sample", "class"),
                       coords={"sample": patches["sample"].values, "class": list(cls),
                               "fold": ("sample", folds)},
                       name="probability", attrs={"long_name": "out-of-fold class probability"})
    return CrossValidation(models=models, probabilities=da_, folds=plan)

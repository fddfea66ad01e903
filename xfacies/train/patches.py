"""Training patch classifiers: patch sampling, normalisation, a Keras fit loop, scores.

This is the part of the training recipe the demo model needs (balanced patch
sampling, global min/max normalisation, flips/rot90 augmentation, label
smoothing, Adam with cosine decay).  The full reference recipe (focal loss,
scene weights, six folds, confident learning) builds on these functions.

Examples
--------
>>> from xfacies.train import patches as train
>>> X, y = train.sample_patches(scene.features, scene.truth, n_per_class=200)  # doctest: +SKIP
>>> model = train.fit(X, y, features=xfacies.FEATURE_SETS[4], epochs=5)        # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr

from xfacies import catalog

__all__ = ["sample_patches", "minmax_of", "fit", "macro_f1", "confusion"]


def sample_patches(
    features: xr.DataArray,
    labels: xr.DataArray,
    *,
    n_per_class: int = 500,
    patch_size: int = 33,
    seed: int = 0,
    feature_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw class-balanced ``patch_size`` x ``patch_size`` patches centred on labelled pixels.

    Parameters
    ----------
    features
        ``(band, y, x)`` or ``(time, band, y, x)`` features.
    labels
        ``(y, x)`` or ``(time, y, x)`` int class ids; :data:`xfacies.NODATA` is ignored.
    n_per_class
        At most this many patches per class (fewer when a class is rarer).

    Returns
    -------
    patches, labels
        float32 ``(N, P, P, F)`` raw features (NaN = missing; zero-padded
        beyond the scene edge is done later, in normalised space) and int
        labels ``(N,)``.
    """
    from xfacies.inference import prepare_features

    names = tuple(feature_names) if feature_names else tuple(str(b) for b in features["band"].values)
    f = prepare_features(features, names).values
    lab = np.asarray(labels.values)
    if f.ndim == 3:
        f, lab = f[None], lab[None]
    if lab.shape != (f.shape[0],) + f.shape[2:]:
        raise ValueError(f"labels shape {lab.shape} does not match features {f.shape} (time, band, y, x)")
    rng = np.random.default_rng(seed)
    h = patch_size // 2
    padded = np.pad(f, ((0, 0), (0, 0), (h, h), (h, h)), constant_values=np.nan)
    X, Y = [], []
    for c in range(len(catalog.CLASSES)):
        t, r, q = np.nonzero(lab == c)
        if t.size == 0:
            continue
        pick = rng.choice(t.size, size=min(n_per_class, t.size), replace=False)
        for i in pick:
            X.append(padded[t[i], :, r[i]:r[i] + patch_size, q[i]:q[i] + patch_size])
            Y.append(c)
    if not X:
        raise ValueError("no labelled pixels to sample patches from")
    X = np.moveaxis(np.stack(X), 1, -1).astype(np.float32)
    return X, np.asarray(Y, dtype=np.int64)


def minmax_of(patches: np.ndarray) -> dict[str, list[float]]:
    """Global per-feature min/max (the reference's normalisation) ignoring NaN."""
    flat = patches.reshape(-1, patches.shape[-1])
    lo = np.nanmin(flat, axis=0)
    hi = np.nanmax(flat, axis=0)
    hi = np.where(hi > lo, hi, lo + 1.0)
    return {"min": lo.astype(float).tolist(), "max": hi.astype(float).tolist()}


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random flips and rot90 per patch (all channels), as in the reference recipe."""
    out = np.empty_like(x)
    k = rng.integers(0, 4, size=len(x))
    fl = rng.integers(0, 2, size=len(x)).astype(bool)
    for kk in range(4):
        for f in (False, True):
            sel = (k == kk) & (fl == f)
            if sel.any():
                v = np.rot90(x[sel], kk, axes=(1, 2))
                out[sel] = v[:, :, ::-1] if f else v
    return out


def fit(
    patches: np.ndarray,
    labels: np.ndarray,
    *,
    features: Sequence[str],
    config: dict[str, Any] | None = None,
    epochs: int = 10,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    label_smoothing: float = 0.1,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    verbose: int = 0,
    metadata: dict[str, Any] | None = None,
):
    """Train a reference-architecture CNN on raw patches and return an :class:`xfacies.Model`.

    The bundle's normalisation is the global min/max of the training patches.
    """
    from xfacies.model.runtime import import_keras

    keras = import_keras()

    from xfacies.model.architecture import CNNConfig, reference_cnn
    from xfacies.model.bundle import Model

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = CNNConfig(n_features=len(features), **(config or {}))
    norm = minmax_of(patches)
    proto = Model("reference-cnn", cfg.to_dict(), reference_cnn(config=cfg).get_weights(),
                  tuple(features), tuple(catalog.class_names()), normalisation=norm)
    X = np.nan_to_num(proto.normalise(patches), nan=0.0)
    Y = keras.utils.to_categorical(labels, cfg.n_classes)
    km = reference_cnn(config=cfg)
    steps = epochs * int(np.ceil(len(X) / batch_size))
    sched = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(steps, 1), alpha=0.0)
    km.compile(optimizer=keras.optimizers.Adam(sched),
               loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
               metrics=["accuracy"])
    for epoch in range(epochs):
        order = rng.permutation(len(X))
        km.fit(_augment(X[order], rng), Y[order], batch_size=batch_size, epochs=1,
               verbose=verbose, shuffle=False)
    meta = {"trained_by": "xfacies.train.patches.fit", "epochs": epochs, "n_patches": int(len(X)),
            "seed": seed}
    meta.update(metadata or {})
    model = Model("reference-cnn", cfg.to_dict(), km.get_weights(), tuple(features),
                  tuple(catalog.class_names()), normalisation=norm, metadata=meta)
    return model


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int = len(catalog.CLASSES)) -> np.ndarray:
    """Confusion matrix (rows truth, columns prediction), ignoring NODATA in either."""
    t = np.asarray(truth).ravel()
    p = np.asarray(pred).ravel()
    ok = (t >= 0) & (p >= 0)
    return np.bincount(t[ok] * n_classes + p[ok], minlength=n_classes ** 2).reshape(n_classes, n_classes)


def macro_f1(truth: np.ndarray, pred: np.ndarray, n_classes: int = len(catalog.CLASSES)) -> tuple[float, np.ndarray]:
    """Macro F1 over the classes present in ``truth``, and per-class F1 (NaN for absent classes).

    Examples
    --------
    >>> macro_f1(np.array([0, 1, 1]), np.array([0, 1, 0]))[0]
    0.6666666666666666
    """
    cm = confusion(truth, pred, n_classes).astype(float)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    denom = cm.sum(axis=0) + support
    f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), np.nan)
    f1[support == 0] = np.nan
    return float(np.nanmean(f1)), f1

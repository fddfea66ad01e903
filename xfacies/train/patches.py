"""Class-balanced patches from labelled rasters, and confusion/macro-F1 scores of label arrays.

:func:`sample_patches` draws patches where a whole label raster is known (synthetic truth);
:mod:`xfacies.train.data` builds patch Datasets from labelled points and the reference layout,
and :func:`xfacies.train.fit` trains on them.

Examples
--------
>>> from xfacies.train import patches as train
>>> X, y = train.sample_patches(scene.features, scene.truth, n_per_class=200)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr

from xfacies.errors import InputError
from xfacies import catalog

__all__ = ["sample_patches", "patch_dataset", "macro_f1", "confusion"]


def sample_patches(
    features: xr.DataArray,
    labels: xr.DataArray,
    *,
    n_per_class: int = 500,
    patch_size: int = 33,
    seed: int = 0,
    feature_names: Sequence[str] | None = None,
    return_time: bool = False,
) -> tuple[np.ndarray, ...]:
    """Draw class-balanced ``patch_size`` x ``patch_size`` patches centred on labelled pixels.

    Parameters
    ----------
    features
        ``(band, y, x)`` or ``(time, band, y, x)`` features.
    labels
        ``(y, x)`` or ``(time, y, x)`` int class ids; :data:`xfacies.NODATA` is ignored.
    n_per_class
        At most this many patches per class (fewer when a class is rarer).
    return_time
        Also return each patch's time index (its scene), e.g. for its date and scene weight.

    Returns
    -------
    patches, labels[, time]
        float32 ``(N, P, P, F)`` raw features (NaN = missing; zero-padded
        beyond the scene edge is done later, in normalised space), int
        labels ``(N,)`` and, with ``return_time``, int time indices ``(N,)``.
    """
    from xfacies.inference import prepare_features

    names = tuple(feature_names) if feature_names else tuple(str(b) for b in features["band"].values)
    f = prepare_features(features, names).values
    lab = np.asarray(labels.values)
    if f.ndim == 3:
        f, lab = f[None], lab[None]
    if lab.shape != (f.shape[0],) + f.shape[2:]:
        raise InputError(f"labels shape {lab.shape} does not match features {f.shape} (time, band, y, x)")
    rng = np.random.default_rng(seed)
    h = patch_size // 2
    padded = np.pad(f, ((0, 0), (0, 0), (h, h), (h, h)), constant_values=np.nan)
    X, Y, T = [], [], []
    for c in range(len(catalog.CLASSES)):
        t, r, q = np.nonzero(lab == c)
        if t.size == 0:
            continue
        pick = rng.choice(t.size, size=min(n_per_class, t.size), replace=False)
        for i in pick:
            X.append(padded[t[i], :, r[i]:r[i] + patch_size, q[i]:q[i] + patch_size])
            Y.append(c)
            T.append(t[i])
    if not X:
        raise InputError("no labelled pixels to sample patches from")
    X = np.moveaxis(np.stack(X), 1, -1).astype(np.float32)
    if return_time:
        return X, np.asarray(Y, dtype=np.int64), np.asarray(T, dtype=np.int64)
    return X, np.asarray(Y, dtype=np.int64)


def patch_dataset(patches: np.ndarray, labels: np.ndarray, features: Sequence[str], *,
                  glacier: Any, date: Any, fold: Any = 0, imagery: str | None = None) -> xr.Dataset:
    """Raw patch arrays as the patch Dataset :func:`xfacies.train.fit` trains on.

    ``glacier``, ``date`` and ``fold`` are one value for all samples or one per sample.

    Examples
    --------
    >>> ds = patch_dataset(np.zeros((2, 33, 33, 1), "float32"), np.array([0, 1]), ["blue"],
    ...                    glacier="g1", date="2020-08-01")
    >>> dict(ds.sizes), ds["class"].values.tolist()
    ({'sample': 2, 'y': 33, 'x': 33, 'band': 1}, [0, 1])
    """
    n = len(labels)
    full = (lambda v: np.asarray(v) if np.ndim(v) else np.repeat(np.asarray(v), n))
    ds = xr.Dataset(
        {"patches": (("sample", "y", "x", "band"), np.asarray(patches, dtype=np.float32))},
        coords={"sample": np.arange(n), "band": list(features),
                "class": ("sample", np.asarray(labels).astype(np.int8)),
                "glacier": ("sample", full(glacier).astype(str)),
                "date": ("sample", np.asarray(full(date), dtype="datetime64[ns]")),
                "fold": ("sample", full(fold).astype(np.int64))})
    if imagery:
        ds["patches"].attrs["xfacies_imagery"] = imagery
    return ds


def _valid_pairs(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(truth).ravel()
    p = np.asarray(pred).ravel()
    ok = (t >= 0) & (p >= 0)
    return t[ok], p[ok]


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int = len(catalog.CLASSES)) -> np.ndarray:
    """Confusion counts (rows truth, columns prediction) of the ids ``0..n_classes-1``, ignoring
    NODATA in either: scikit-learn's ``confusion_matrix`` (the labelled, normalisable table is
    :func:`xfacies.train.evaluation.confusion`).

    Examples
    --------
    >>> confusion(np.array([0, 1, 1, -1]), np.array([0, 1, 0, 1]), n_classes=2)
    array([[1, 0],
           [1, 1]])
    """
    from sklearn.metrics import confusion_matrix

    t, p = _valid_pairs(truth, pred)
    return confusion_matrix(t, p, labels=list(range(n_classes)))


def macro_f1(truth: np.ndarray, pred: np.ndarray, n_classes: int = len(catalog.CLASSES)) -> tuple[float, np.ndarray]:
    """Macro F1 over the classes present in ``truth``, and per-class F1 (NaN for absent classes):
    scikit-learn's ``f1_score`` per class, NODATA in either ignored.

    Examples
    --------
    >>> macro_f1(np.array([0, 1, 1]), np.array([0, 1, 0]))[0]
    0.6666666666666666
    """
    from sklearn.metrics import f1_score

    t, p = _valid_pairs(truth, pred)
    f1 = np.full(n_classes, np.nan)
    present = np.unique(t[t < n_classes])
    if present.size:
        f1[present] = f1_score(t, p, labels=present, average=None, zero_division=0)
    return float(np.nanmean(f1)) if present.size else float("nan"), f1

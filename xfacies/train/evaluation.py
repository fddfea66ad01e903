"""Scoring a patch classifier on labelled patches, as the reference study reports it.

:func:`evaluate` applies a model to a patch dataset and returns a tidy table of scores;
:func:`scores` is the same table for arrays of true and predicted class ids, and
:func:`confusion` the confusion matrix.

Definitions (scikit-learn's ``precision_recall_fscore_support`` and ``jaccard_score``):

- per class: precision, recall, F1, IoU (Jaccard) and support (number of true labels);
- ``macro_f1`` / ``miou`` with ``class="all"``: the mean over *all* classes that have true
  labels.  This is the reference's headline macro F1: its 81.6 % is the mean of its eight
  per-class F1s (ice 92.2, snow 92.4, debris 91.1, firn 80.8, shadow 95.2, refrozen-like 78.3,
  water 54.6, cloud 68.3), shadow, water and cloud included;
- ``macro_f1`` / ``miou`` with ``class="facies"``: the mean over the five facies classes
  (ice, snow, debris, firn, refrozen-like; :data:`xfacies.catalog.FACIES_CLASSES`) that have
  true labels (for the reference's per-class F1s this would be 87.0 %);
- ``accuracy``: overall fraction correct; ``n``: number of samples;
- glacier-wise: the macro F1 of each glacier's samples (``glacier=<id>`` rows), and their mean
  and sample standard deviation (``ddof=1``) over glaciers (``glacier_macro_f1_mean`` /
  ``glacier_macro_f1_sd``; the reference reports 82.3 +- 10.5 %).  Glaciers without a
  class of the set (e.g. no facies labels) are left out of that set's mean.

Classes without true labels have NaN recall and are left out of every macro average; their
precision, F1 and IoU are 0 when the model predicts them (false positives), NaN otherwise.
A class that is never predicted has NaN precision.

Examples
--------
>>> import numpy as np
>>> t = scores(np.array([0, 0, 1, 4]), np.array([0, 1, 1, 4]))
>>> t.query("metric == 'macro_f1'")[["class", "value"]].round(3)
     class  value
40     all  0.778
41  facies  0.667
>>> confusion(np.array([0, 0, 1]), np.array([0, 1, 1])).sel(truth="ice").values[:2]
array([0.5, 0.5])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.compat import renamed_keywords
from xfacies.errors import InputError
from xfacies import catalog
from xfacies.catalog import FACIES_CLASSES
from xfacies.train.cleaning import check_labels

__all__ = ["evaluate", "scores", "confusion", "predict_probabilities", "confusion_figure", "METHODS"]

METHODS = ("patches",)
_N = len(catalog.CLASSES)


def _names(classes: Sequence[str] | None) -> list[str]:
    """Class names: the given ones (a model's own classes), else the catalogue's."""
    return list(catalog.class_names()) if classes is None else [str(c) for c in classes]


def _is_catalogue(names: Sequence[str]) -> bool:
    return tuple(names) == tuple(catalog.class_names())


def _pair(y_true: Any, y_pred: Any, n: int = _N) -> tuple[np.ndarray, np.ndarray]:
    t = check_labels(y_true, n)
    p = check_labels(y_pred, n)
    if t.shape != p.shape:
        raise InputError(f"y_true and y_pred must have the same length; got {t.size} and {p.size}")
    if t.size == 0:
        raise InputError("cannot score zero samples")
    return t, p


def _macro(per_class: np.ndarray, support: np.ndarray, ids: tuple[int, ...]) -> float:
    sel = np.array([i for i in ids if support[i] > 0], dtype=np.int64)
    return float(np.mean(per_class[sel])) if sel.size else float("nan")


def scores(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-class and aggregate scores of predicted against true class ids, as a tidy table.

    Parameters
    ----------
    y_true, y_pred
        ``(N,)`` class ids ``0 .. C-1``.
    classes
        The class names of the ids (a model's own, e.g. ``model.classes``); default the
        catalogue's 8 (:data:`xfacies.CLASSES`).

    Returns
    -------
    pandas.DataFrame
        Columns ``metric``, ``class``, ``value``: ``precision``, ``recall``, ``f1``, ``iou``,
        ``support`` per class name; ``macro_f1`` and ``miou`` for ``class`` ``"all"`` (and
        ``"facies"`` with the catalogue's classes); ``accuracy`` and ``n`` for ``"all"``
        (definitions: module docstring).

    Examples
    --------
    >>> t = scores([0, 0, 1, 1], [0, 1, 1, 1], classes=["snow", "ice"])
    >>> t[t.metric == "f1"][["class", "value"]].round(3).values.tolist()
    [['snow', 0.667], ['ice', 0.8]]
    """
    from sklearn.metrics import jaccard_score, precision_recall_fscore_support

    names = _names(classes)
    n_cls = len(names)
    t, p = _pair(y_true, y_pred, n_cls)
    ids = list(range(n_cls))
    prec, rec, f1, support = precision_recall_fscore_support(t, p, labels=ids, zero_division=np.nan)
    iou = jaccard_score(t, p, labels=ids, average=None, zero_division=0.0)
    seen = np.bincount(t, minlength=n_cls) + np.bincount(p, minlength=n_cls)
    iou = np.where(seen > 0, iou, np.nan)  # neither true nor predicted: undefined
    rows = []
    for k, name in enumerate(names):
        rows += [("precision", name, prec[k]), ("recall", name, rec[k]), ("f1", name, f1[k]),
                 ("iou", name, iou[k]), ("support", name, float(support[k]))]
    all_ids = tuple(ids)
    rows += [("macro_f1", "all", _macro(f1, support, all_ids))]
    if _is_catalogue(names):
        rows += [("macro_f1", "facies", _macro(f1, support, FACIES_CLASSES))]
    rows += [("miou", "all", _macro(iou, support, all_ids))]
    if _is_catalogue(names):
        rows += [("miou", "facies", _macro(iou, support, FACIES_CLASSES))]
    rows += [("accuracy", "all", float(np.mean(t == p))),
             ("n", "all", float(t.size))]
    out = pd.DataFrame(rows, columns=["metric", "class", "value"])
    out["value"] = out["value"].astype(float)
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, *, normalize: bool = True,
              classes: Sequence[str] | None = None) -> xr.DataArray:
    """Confusion matrix ``(truth, predicted)`` over all classes, row-normalised by default.

    With ``normalize=True`` each row (true class) sums to 1; rows of classes without true labels
    are NaN.  With ``normalize=False`` the counts.  ``classes``: the names of the ids (a model's
    own), default the catalogue's.
    """
    from sklearn.metrics import confusion_matrix

    names = _names(classes)
    t, p = _pair(y_true, y_pred, len(names))
    cm = confusion_matrix(t, p, labels=list(range(len(names)))).astype(np.float64)
    if normalize:
        n = cm.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            cm = np.where(n > 0, cm / np.where(n > 0, n, 1.0), np.nan)
    return xr.DataArray(cm, dims=("truth", "predicted"), coords={"truth": names, "predicted": names},
                        name="confusion", attrs={"normalize": "true (rows)" if normalize else "none"})


def _patch_array(model: Any, patches: xr.Dataset | xr.DataArray) -> xr.DataArray:
    da = patches["patches"] if isinstance(patches, xr.Dataset) else patches
    want = ("sample", "y", "x", "band")
    if set(da.dims) != set(want):
        raise InputError(f"patches must have dims {want}; got {da.dims}")
    da = da.transpose(*want)
    feats = list(model.features)
    if "band" in da.coords and da["band"].dtype.kind in "UO":
        missing = [f for f in feats if f not in set(da["band"].values.tolist())]
        if missing:
            raise InputError(f"patches lack the model's features {missing} (band coordinate: "
                             f"{da['band'].values.tolist()})")
        da = da.sel(band=feats)
    elif da.sizes["band"] != len(feats):
        raise InputError(f"patches have {da.sizes['band']} bands but the model needs {len(feats)}: {feats}")
    return da


def predict_probabilities(model: Any, patches: xr.Dataset | xr.DataArray, *, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities ``(N, C)`` of raw feature patches, ``batch_size`` samples at a time.

    ``patches`` is a dataset with a ``patches`` variable (or that variable) with dims
    ``(sample, y, x, band)`` of raw features, NaN beyond scene edges; bands named as
    :data:`xfacies.FEATURES` are put in the model's order.  :meth:`xfacies.Model.predict_patches`
    normalises with the bundle's min/max and then sets NaN to 0: the reference's zero padding
    in normalised space.  Dask-backed patches are loaded one batch at a time.
    """
    da = _patch_array(model, patches)
    n = da.sizes["sample"]
    out = np.empty((n, len(model.classes)), dtype=np.float32)
    for i in range(0, n, batch_size):
        x = np.asarray(da.isel(sample=slice(i, i + batch_size)).values, dtype=np.float32)
        out[i:i + batch_size] = model.predict_patches(x, batch_size=batch_size)
    return out


def evaluate(
    model: Any,
    patches: xr.Dataset,
    *,
    method: str = "patches",
    batch_size: int = 1024,
    confusion_png: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Score ``model`` on labelled patches: per-class, macro and glacier-wise scores in a tidy table.

    Parameters
    ----------
    model
        An :class:`xfacies.Model` (e.g. ``xfacies.load_model("demo")``).
    patches
        Dataset with variable ``patches`` ``(sample, y, x, band)`` float32 raw features (NaN
        beyond scene edges) and per-sample coordinates ``class`` (int class id) and, optionally,
        ``glacier`` (for the glacier-wise scores), ``date`` and ``fold``.  Class ids are the
        model's own classes (``model.classes``: the catalogue's 8, or yours, e.g. snow/ice).
    method
        ``"patches"``: one patch-exact prediction per sample (:func:`predict_probabilities`).
    batch_size
        Patches per forward pass.
    confusion_png
        Optional path of a PNG with the row-normalised confusion matrix.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric``, ``class``, ``glacier``, ``value``: :func:`scores` of all samples
        (``glacier="all"``), ``macro_f1`` per glacier (``class`` ``"all"`` and ``"facies"``), and
        ``glacier_macro_f1_mean`` / ``glacier_macro_f1_sd`` over glaciers.

    Examples
    --------
    >>> table = evaluate(xfacies.load_model("demo"), patches)                    # doctest: +SKIP
    >>> table.query("metric == 'macro_f1' and glacier == 'all'")                 # doctest: +SKIP
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS} (patch-exact scoring of labelled patches); "
                         f"got {method!r}")
    if not isinstance(patches, xr.Dataset) or "patches" not in patches or "class" not in patches.coords:
        raise InputError("patches must be an xarray.Dataset with a 'patches' variable (sample, y, x, band) "
                         "and a per-sample 'class' coordinate")
    names = list(model.classes)
    groups = ("all", "facies") if _is_catalogue(names) else ("all",)
    y_true = check_labels(patches["class"].values, len(names))
    y_pred = predict_probabilities(model, patches, batch_size=batch_size).argmax(axis=1)
    table = scores(y_true, y_pred, names)
    table.insert(2, "glacier", "all")
    parts = [table]
    if "glacier" in patches.coords:
        g = np.asarray(patches["glacier"].values)
        rows = []
        for gid in pd.unique(g):
            sel = g == gid
            s = scores(y_true[sel], y_pred[sel], names).set_index(["metric", "class"])["value"]
            key = gid.item() if hasattr(gid, "item") else gid
            rows += [("macro_f1", cls, key, s[("macro_f1", cls)]) for cls in groups]
        per = pd.DataFrame(rows, columns=["metric", "class", "glacier", "value"])
        summary = []
        for cls in groups:
            v = per.loc[per["class"] == cls, "value"].dropna()
            summary += [("glacier_macro_f1_mean", cls, "all", v.mean()),
                        ("glacier_macro_f1_sd", cls, "all", v.std(ddof=1))]
        parts += [per, pd.DataFrame(summary, columns=per.columns)]
    out = pd.concat(parts, ignore_index=True)
    out["value"] = out["value"].astype(float)
    if confusion_png is not None:
        confusion_figure(y_true, y_pred, confusion_png, classes=names)
    return out


@renamed_keywords(path="out")
def confusion_figure(y_true: np.ndarray, y_pred: np.ndarray, out: str | os.PathLike,
                     classes: Sequence[str] | None = None) -> Path:
    """Draw the row-normalised confusion matrix (PNG, matplotlib Agg); returns ``out``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    cm = confusion(y_true, y_pred, classes=classes)
    counts = confusion(y_true, y_pred, normalize=False, classes=classes).sum("predicted").values.astype(int)
    t = scores(y_true, y_pred, classes).set_index(["metric", "class"])["value"]
    names = list(cm["truth"].values)
    fig = Figure(figsize=(7.4, 6.4), dpi=110, layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(cm.values), cmap="Blues", vmin=0, vmax=1)
    ax.set_facecolor("0.92")
    for i in range(len(names)):
        for j in range(len(names)):
            v = cm.values[i, j]
            if np.isfinite(v) and v >= 0.005:
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if v > 0.6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), [f"{n} ({c})" for n, c in zip(names, counts)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (number of samples)")
    facies = (f"(facies {100 * t[('macro_f1', 'facies')]:.1f} %), " if ("macro_f1", "facies") in t.index else "")
    ax.set_title(f"Confusion, % of each true class; macro F1 {100 * t[('macro_f1', 'all')]:.1f} % "
                 f"{facies}accuracy {100 * t[('accuracy', 'all')]:.1f} %", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of the true class")
    out = Path(out)
    fig.savefig(out)
    return out

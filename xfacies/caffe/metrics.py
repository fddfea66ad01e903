"""Scores of the CaFFe calving-front benchmark: front distances and zone overlap.

- :func:`front_errors`: the distances between a predicted and a true front, both directions;
- :func:`zone_scores`: IoU, precision, recall and F1 of one zone map;
- :func:`evaluate`: the benchmark table over a whole dataset, with the benchmark's breakdowns
  (:data:`BREAKDOWNS`); ``per_image=True`` gives the per-image table it is built from, and
  :func:`summarize` builds the benchmark table from a (filtered) per-image table.

Definitions
-----------
Front distances (per image, P = predicted front pixels, G = true front pixels): the Euclidean
distance in pixels from every p to its nearest g, concatenated with the distance from every g to
its nearest p, times the image's metres per pixel. An image where P or G is empty counts as
"no front" (``n_no_front``) and is left out of every distance metric (the benchmark's rule).

- ``mde``: the benchmark's mean distance error: the mean of the *pooled* distances of all the
  group's images (a long front weighs more than a short one);
- ``mean_of_image_means``: the mean over images of each image's mean distance;
- ``hd95``: the mean over images of each image's 95th percentile (linear interpolation,
  :func:`numpy.percentile`) of its concatenated both-direction distances (the MedPy ``hd95``
  convention; not the maximum of the two one-directional percentiles).

Zones (per image, on the raw argmax prediction before any post-processing, every pixel, the four
classes of :data:`xfacies.catalog.ZONES` including NA), from the confusion counts TP, FP, FN of
each class:

- IoU of a class ``TP / (TP + FP + FN)``; NaN when the class is absent from both maps;
  ``iou`` is the unweighted mean over the classes that are not NaN;
- precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)`` (0 where the denominator is 0),
  F1 ``2 TP / (2 TP + FP + FN)``; each averaged without weights over the classes present in the
  true or the predicted map (scikit-learn's ``average="macro"`` with ``zero_division=0``).

Group values are the mean over the group's images (NaN skipped); every image counts for the zone
scores, with or without a front.

Examples
--------
>>> import numpy as np
>>> pred = np.zeros((5, 5), bool); pred[:, 1] = True
>>> true = np.zeros((5, 5), bool); true[:, 3] = True
>>> front_errors(pred, true, resolution=7.0)
array([14., 14., 14., 14., 14., 14., 14., 14., 14., 14.])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from xfacies.caffe import names
from xfacies.caffe.postprocess import check_resolution, check_zones, zones_to_front
from xfacies.catalog import ZONES
from xfacies.errors import GridError, InputError, InputWarning, UnitsError

__all__ = ["BREAKDOWNS", "front_errors", "zone_scores", "season", "evaluate", "summarize"]

#: Breakdowns of the benchmark table: name -> per-image columns that form the groups.
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "all": (),
    "season": ("season",),
    "glacier": ("glacier",),
    "sensor": ("sensor",),
    "resolution": ("resolution",),
    "glacier×season": ("glacier", "season"),
    "glacier×sensor": ("glacier", "sensor"),
    "glacier×resolution": ("glacier", "resolution"),
}

_N_CLASSES = len(ZONES)
_IOU_COLUMNS = [f"iou_{z.name}" for z in ZONES]
_SUMMARY_COLUMNS = ["breakdown", "group", "n_images", "n_no_front", "mde", "mean_of_image_means",
                    "hd95", "units", "iou", *_IOU_COLUMNS, "precision", "recall", "f1"]

PixelSize = float | Mapping[str, float] | Callable[[str], float] | None


# --------------------------------------------------------------------------- single images
def _as_mask(obj: Any, what: str) -> np.ndarray:
    arr = np.asarray(obj)
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{what} must be a boolean front mask, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise InputError(f"{what} must be a boolean front mask, it holds NaN or infinite values")
    return arr != 0




def front_errors(pred_front: np.ndarray | xr.DataArray, true_front: np.ndarray | xr.DataArray,
                 resolution: float | tuple[float, float]) -> np.ndarray:
    """Distances between two fronts: every predicted pixel to the nearest true one, then back.

    Parameters
    ----------
    pred_front, true_front
        Boolean front masks of the same shape (non-zero counts as front).
    resolution
        Metres per pixel (> 0), or a ``(y, x)`` pair for non-square pixels (a resized image of a
        non-square original: distances are Euclidean in metres); 1.0 gives distances in pixels.

    Returns
    -------
    numpy.ndarray
        ``float64``: the Euclidean distance of each predicted front pixel to its nearest true
        front pixel, followed by that of each true front pixel to its nearest predicted one,
        times ``resolution``. Empty when either front is empty.

    Examples
    --------
    >>> pred = np.zeros((3, 4), bool); pred[0, 0] = True
    >>> true = np.zeros((3, 4), bool); true[2, 0] = true[2, 3] = True
    >>> front_errors(pred, true, 10.0).round(2)
    array([20.  , 20.  , 36.06])
    >>> front_errors(pred, np.zeros((3, 4), bool), 10.0)
    array([], dtype=float64)
    >>> front_errors(pred, true, (10.0, 5.0)).round(2)   # 10 m rows, 5 m columns
    array([20., 20., 25.])
    """
    if isinstance(resolution, tuple | list | np.ndarray) and np.ndim(resolution) == 1:
        if len(resolution) != 2:
            raise UnitsError(f"resolution must be a number or a (y, x) pair of metres per pixel, got {resolution!r}")
        ry = check_resolution(resolution[0], "resolution[0] (y)")
        rx = check_resolution(resolution[1], "resolution[1] (x)")
    else:
        ry = rx = check_resolution(resolution, "resolution")
    pred = _as_mask(pred_front, "pred_front")
    true = _as_mask(true_front, "true_front")
    if pred.shape != true.shape:
        raise InputError(f"pred_front and true_front must have the same shape, got {pred.shape} "
                         f"and {true.shape}")
    scale = np.array([ry, rx], dtype=np.float64)
    p = np.argwhere(pred) * scale
    g = np.argwhere(true) * scale
    if len(p) == 0 or len(g) == 0:
        return np.empty(0, dtype=np.float64)
    d_pg, _ = cKDTree(g).query(p, k=1)
    d_gp, _ = cKDTree(p).query(g, k=1)
    return np.concatenate([d_pg, d_gp]).astype(np.float64)


def zone_scores(pred_zones: np.ndarray | xr.DataArray,
                true_zones: np.ndarray | xr.DataArray) -> dict[str, float]:
    """IoU (per class and mean), precision, recall and F1 of one zone map (module docstring).

    Parameters
    ----------
    pred_zones, true_zones
        Zone class ids 0..3 of the same shape (the raw argmax prediction and the truth).

    Returns
    -------
    dict
        ``iou``, ``iou_NA``, ``iou_rock``, ``iou_glacier``, ``iou_ocean``, ``precision``,
        ``recall``, ``f1``.

    Examples
    --------
    >>> true = np.array([[2, 2, 3, 3]])
    >>> pred = np.array([[2, 3, 3, 3]])
    >>> {k: round(v, 3) for k, v in zone_scores(pred, true).items()}  # doctest: +NORMALIZE_WHITESPACE
    {'iou': 0.583, 'iou_NA': nan, 'iou_rock': nan, 'iou_glacier': 0.5, 'iou_ocean': 0.667,
     'precision': 0.833, 'recall': 0.75, 'f1': 0.733}
    """
    pred = check_zones(pred_zones, "pred_zones")
    true = check_zones(true_zones, "true_zones")
    if pred.shape != true.shape:
        raise InputError(f"pred_zones and true_zones must have the same shape, got {pred.shape} "
                         f"and {true.shape}")
    cm = np.bincount(true.ravel().astype(np.int64) * _N_CLASSES + pred.ravel(),
                     minlength=_N_CLASSES ** 2).reshape(_N_CLASSES, _N_CLASSES)
    tp = np.diag(cm).astype(float)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    union = tp + fp + fn
    present = union > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(present, tp / union, np.nan)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(present, 2 * tp / (2 * tp + fp + fn), 0.0)
    out: dict[str, float] = {"iou": _mean(iou[present])}
    out.update({col: float(v) for col, v in zip(_IOU_COLUMNS, iou)})
    out["precision"] = _mean(precision[present])
    out["recall"] = _mean(recall[present])
    out["f1"] = _mean(f1[present])
    return out


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def season(glacier: str, date: str | np.datetime64 | pd.Timestamp) -> str:
    """The benchmark's season of an acquisition date (:func:`xfacies.caffe.names.season`).

    Examples
    --------
    >>> season("JAC", "2015-02-11"), season("Mapple", "2015-02-11")
    ('winter', 'summer')
    """
    return names.season(glacier, pd.Timestamp(date).month)


# --------------------------------------------------------------------------- inputs
def _images(obj: Any, what: str) -> dict[str, xr.Dataset]:
    """stem -> Dataset for a DataTree (every node holding ``zones``) or a Mapping."""
    if isinstance(obj, xr.DataTree):
        out: dict[str, xr.Dataset] = {}
        for node in obj.subtree:
            if "zones" in node.data_vars:
                name = str(node.name)
                if name in out:
                    raise InputError(f"{what} holds two images named {name!r} (in different groups)")
                out[name] = node.to_dataset()
        return out
    if isinstance(obj, Mapping):
        out = {}
        for stem, value in obj.items():
            if isinstance(value, xr.DataTree):
                value = value.to_dataset()
            elif isinstance(value, xr.DataArray):
                value = value.to_dataset(name="zones")
            elif isinstance(value, np.ndarray):
                value = xr.Dataset({"zones": (("y", "x"), value)})
            if not isinstance(value, xr.Dataset):
                raise TypeError(f"{what}[{stem!r}] must be an xarray Dataset or DataArray of zones, "
                                f"got {type(value).__name__}")
            if "zones" not in value.data_vars:
                raise InputError(f"{what}[{stem!r}] has no 'zones' variable (has "
                                 f"{sorted(map(str, value.data_vars))})")
            out[str(stem)] = value
        return out
    raise TypeError(f"{what} must be an xarray.DataTree (one child per image) or a mapping "
                    f"stem -> Dataset, got {type(obj).__name__}")


def _few(names: Iterable[Hashable], n: int = 5) -> str:
    names = sorted(map(str, names))
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def finite_or_none(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _own_size(attrs: Mapping[str, Any]) -> float | tuple[float, float] | None:
    """The image's own metres per pixel: ``(y, x)`` when both axes are known and differ, else a
    number; ``None`` when unknown (a resized image of an unknown glacier)."""
    py, px = finite_or_none(attrs.get("pixel_size_y")), finite_or_none(attrs.get("pixel_size_x"))
    if py is not None and px is not None:
        return py if py == px else (py, px)
    value = finite_or_none(attrs.get("pixel_size"))
    if value is None and attrs.get("layout") != "resized":
        value = finite_or_none(attrs.get("resolution"))
    return value


def _geometric(size: float | tuple[float, float]) -> float:
    return math.sqrt(size[0] * size[1]) if isinstance(size, tuple) else float(size)


def _scale(stem: str, attrs: Mapping[str, Any], pixel_size: PixelSize) -> float | tuple[float, float]:
    if pixel_size is None:
        value = _own_size(attrs)
        if value is None:
            raise GridError(f"image {stem!r} has no known pixel size (neither a finite 'pixel_size' nor, "
                             "outside the resized layout, a 'resolution' attribute): pass pixel_size= "
                             "to evaluate (1.0 for pixels)")
        return value
    if callable(pixel_size):
        return check_resolution(pixel_size(stem), f"pixel_size({stem!r})")
    if isinstance(pixel_size, Mapping):
        if stem not in pixel_size:
            raise KeyError(f"pixel_size has no entry for image {stem!r}")
        return check_resolution(pixel_size[stem], f"pixel_size[{stem!r}]")
    return check_resolution(pixel_size, "pixel_size")


def _metadata(stem: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Image metadata from the attrs; the file-name stem fills what is missing."""
    try:
        parsed = names.parse_stem(stem)
    except (ValueError, TypeError):
        parsed = None
    glacier = attrs.get("glacier", parsed and parsed.glacier)
    date = attrs.get("date", parsed and parsed.date.isoformat())
    satellite = attrs.get("satellite", parsed and parsed.satellite)
    sensor = attrs.get("sensor", satellite)
    if sensor is not None:
        sensor = names.sensor_group(str(sensor))
    resolution = attrs.get("resolution", parsed and parsed.resolution)
    if resolution is not None:
        r = float(resolution)
        resolution = int(r) if r.is_integer() else r
    seas = attrs.get("season")
    if seas is None and glacier is not None and date is not None:
        seas = season(str(glacier), str(date))
    return {"glacier": glacier, "date": None if date is None else str(date), "satellite": satellite,
            "sensor": sensor, "resolution": resolution, "season": seas}


# --------------------------------------------------------------------------- evaluation
def _image_row(stem: str, truth: xr.Dataset, pred: xr.Dataset, pixel_size: PixelSize,
               resolution: PixelSize = None, units: str = "m") -> dict[str, Any]:
    attrs = truth.attrs
    scale = _scale(stem, attrs, pixel_size)
    true_zones = check_zones(truth["zones"].values, f"dataset[{stem!r}].zones")
    pred_zones = check_zones(pred["zones"].values, f"predictions[{stem!r}].zones")
    if pred_zones.shape != true_zones.shape:
        raise InputError(f"image {stem!r}: predicted zones have shape {pred_zones.shape}, the "
                         f"dataset's {true_zones.shape}")
    true_front = _as_mask(truth["front"].values, f"dataset[{stem!r}].front")
    if "front" in pred.data_vars:
        pred_front = _as_mask(pred["front"].values, f"predictions[{stem!r}].front")
    else:
        # The 750 m of step 4 are physical: use the image's metres per pixel, not the
        # reporting scale (pixel_size=1.0 reports in pixels).
        if resolution is not None:
            physical = _geometric(_scale(stem, attrs, resolution))
        else:
            own = _own_size(attrs)
            physical = _geometric(own) if own is not None else (
                finite_or_none(attrs.get("resolution")) or _geometric(scale))
        bbox = truth["bbox"] if "bbox" in truth.data_vars else None
        pred_front = zones_to_front(pred_zones, physical, bbox)
    if pred_front.shape != true_front.shape:
        raise InputError(f"image {stem!r}: predicted front has shape {pred_front.shape}, the "
                         f"dataset's {true_front.shape}")
    errors = front_errors(pred_front, true_front, scale)
    no_front = errors.size == 0
    row: dict[str, Any] = {"image": stem, **_metadata(stem, attrs), "pixel_size": _geometric(scale),
                           "units": units,
                           "n_pred_front": int(pred_front.sum()),
                           "n_true_front": int(true_front.sum()), "no_front": no_front,
                           "n_errors": int(errors.size), "sum_errors": float(errors.sum()),
                           "mde": float("nan") if no_front else float(errors.mean()),
                           "hd95": float("nan") if no_front else float(np.percentile(errors, 95))}
    row.update(zone_scores(pred_zones, true_zones))
    return row


def evaluate(predictions: xr.DataTree | Mapping[str, xr.Dataset | xr.DataArray],
             dataset: xr.DataTree, *, pixel_size: PixelSize = None,
             resolution: PixelSize = None, per_image: bool = False) -> pd.DataFrame:
    """The benchmark table: front distances and zone scores, overall and by breakdown.

    Parameters
    ----------
    predictions
        Per image (named by its file stem): ``zones``, the raw argmax class ids 0..3, and
        optionally ``front`` (bool). A DataTree with one node per image, or a mapping stem ->
        Dataset (or DataArray of zones). Where ``front`` is missing it is
        :func:`~xfacies.caffe.postprocess.zones_to_front` of the zones with the image's metres
        per pixel (its ``pixel_size`` attr if finite, else ``resolution``) and its ``bbox``.
    dataset
        The truth, an :class:`xarray.DataTree` with one node per image: ``zones``, ``front``,
        optionally ``bbox``, and attrs glacier, date, satellite, sensor, resolution, season,
        pixel_size (:func:`xfacies.caffe.open_dataset`). Missing metadata attrs are read from
        the stem ``<glacier>_<date>_<satellite>_<resolution>_<quality>_<orbit>``; TSX and TDX
        are merged into the sensor "TSX/TDX".
    pixel_size
        Metres per pixel that scale the distances: a number (1.0 reports pixels), a mapping
        stem -> number or a callable stem -> number.  Default: each image's own size, per axis
        (``pixel_size_y``, ``pixel_size_x``: resized images of non-square originals have
        non-square pixels), else its ``pixel_size``, else (raw layout) its ``resolution``.  When
        any image's size is unknown (a resized image of a glacier whose extent is unknown), every
        distance is reported in pixels, with a warning.  The ``units`` column says which.
        It does not change the post-processing.
    resolution
        Metres per pixel for the post-processing of predicted zones (its 750 m minimum front
        length): a number, mapping or callable as ``pixel_size``.  Default: the image's own
        size (the geometric mean of its axes), as for ``pixel_size``; for a resized image of
        unknown size the file name's resolution, with a warning that it is the original's.
    per_image
        Return the per-image table instead of the summary (columns: image, glacier, date,
        satellite, sensor, resolution, season, pixel_size, n_pred_front, n_true_front,
        no_front, n_errors, sum_errors, mde and hd95 of the image, then the zone scores);
        :func:`summarize` turns it, or a filtered part of it, into the summary.

    Returns
    -------
    pandas.DataFrame
        One row per (breakdown, group), :data:`BREAKDOWNS` in order, groups sorted: columns
        breakdown, group, n_images, n_no_front, mde, mean_of_image_means, hd95, units, iou, iou_NA,
        iou_rock, iou_glacier, iou_ocean, precision, recall, f1 (module docstring), and
        ``units`` of the distances: ``"m"``, or ``"px"`` (``pixel_size=1.0``, or sizes unknown).

    Raises
    ------
    ValueError
        When images of the dataset have no prediction or predictions name images that are
        not in the dataset (subset the dataset first), or shapes disagree.

    Examples
    --------
    >>> zones = np.full((4, 8), 2, np.int8); zones[:, 4:] = 3
    >>> front = np.zeros((4, 8), bool); front[:, 4] = True
    >>> node = xr.Dataset({"zones": (("y", "x"), zones), "front": (("y", "x"), front)},
    ...                   attrs={"glacier": "JAC", "date": "2015-02-11", "satellite": "TDX",
    ...                          "sensor": "TSX/TDX", "resolution": 6, "season": "winter",
    ...                          "pixel_size": 6.0})
    >>> truth = xr.DataTree.from_dict({"JAC_2015-02-11_TDX_6_1_104": node})
    >>> pred = {"JAC_2015-02-11_TDX_6_1_104": xr.Dataset(
    ...     {"zones": (("y", "x"), np.roll(zones, 1, axis=1)), "front": (("y", "x"), np.roll(front, 1, axis=1))})}
    >>> table = evaluate(pred, truth)
    >>> table[["breakdown", "group", "n_images", "mde", "units"]].iloc[[0, 3, 5]]
            breakdown         group  n_images  mde units
    0             all           all         1  6.0     m
    3          sensor       TSX/TDX         1  6.0     m
    5  glacier×season  JAC / winter         1  6.0     m
    >>> round(float(table["iou"].iloc[0]), 3)
    0.6
    """
    truths = _images(dataset, "dataset")
    preds = _images(predictions, "predictions")
    if not truths:
        raise InputError("dataset holds no images (no node with a 'zones' variable)")
    missing = truths.keys() - preds.keys()
    if missing:
        raise InputError(f"{len(missing)} of the dataset's {len(truths)} images have no "
                         f"prediction: {_few(missing)}. Evaluate a subset by passing only "
                         "those images of the dataset")
    extra = preds.keys() - truths.keys()
    if extra:
        raise InputError(f"{len(extra)} predictions name images that are not in the dataset: "
                         f"{_few(extra)}")
    if resolution is None:
        unknown = [s for s, t in truths.items() if t.attrs.get("layout") == "resized"
                   and finite_or_none(t.attrs.get("pixel_size")) is None and "front" not in preds[s].data_vars]
        if unknown:
            import warnings

            warnings.warn(
                f"{len(unknown)} resized images (e.g. {unknown[0]}) have no known pixel size: their "
                "predicted fronts are post-processed with the file name's resolution, which is the "
                "ORIGINAL image's, so the 750 m minimum front length spans too many pixels. Pass "
                "resolution= (metres per pixel of the resized image), or the metadata CSV to "
                "open_dataset", InputWarning, stacklevel=2)
    units = "m"
    if pixel_size is None:
        unsized = [s for s, t in truths.items() if _own_size(t.attrs) is None]
        if unsized:
            import warnings

            warnings.warn(
                f"{len(unsized)} of {len(truths)} images (e.g. {unsized[0]}) have no known pixel size (resized "
                "images of a glacier whose extent is unknown): every distance is reported in pixels "
                "(units 'px'). Pass pixel_size= (metres per pixel) or open the dataset with its metadata "
                "CSV for metres", InputWarning, stacklevel=2)
            pixel_size, units = 1.0, "px"
    elif not callable(pixel_size) and not isinstance(pixel_size, Mapping) and float(pixel_size) == 1.0:
        units = "px"
    rows = [_image_row(stem, truths[stem], preds[stem], pixel_size, resolution, units) for stem in truths]
    table = pd.DataFrame(rows)
    return table if per_image else summarize(table)


def summarize(per_image: pd.DataFrame) -> pd.DataFrame:
    """The benchmark table (see :func:`evaluate`) from a per-image table.

    Examples
    --------
    >>> rows = pd.DataFrame({"glacier": ["JAC", "JAC"], "season": ["winter", "summer"],
    ...     "sensor": ["S1", "S1"], "resolution": [20, 20], "no_front": [False, False],
    ...     "n_errors": [2, 6], "sum_errors": [20.0, 120.0], "mde": [10.0, 20.0],
    ...     "hd95": [10.0, 20.0], "iou": [0.5, 0.7], "iou_NA": [np.nan, np.nan],
    ...     "iou_rock": [np.nan, np.nan], "iou_glacier": [0.5, 0.7], "iou_ocean": [0.5, 0.7],
    ...     "precision": [0.6, 0.8], "recall": [0.6, 0.8], "f1": [0.6, 0.8]})
    >>> summarize(rows).loc[0, ["mde", "mean_of_image_means"]].tolist()  # pooled 140 / 8
    [17.5, 15.0]
    """
    records = []
    for name, keys in BREAKDOWNS.items():
        if keys:
            groups = per_image.groupby(list(keys), sort=True, dropna=False)
        else:
            groups = [("all", per_image)]
        for key, part in groups:
            key = key if isinstance(key, tuple) else (key,)
            label = " / ".join(_label(k) for k in key)
            records.append({"breakdown": name, "group": label, **_group_scores(part)})
    return pd.DataFrame.from_records(records, columns=_SUMMARY_COLUMNS)


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _group_scores(part: pd.DataFrame) -> dict[str, Any]:
    fronted = part[~part["no_front"].astype(bool)]
    n_errors = fronted["n_errors"].sum()
    out: dict[str, Any] = {
        "n_images": int(len(part)),
        "n_no_front": int(part["no_front"].astype(bool).sum()),
        "mde": float(fronted["sum_errors"].sum() / n_errors) if n_errors > 0 else float("nan"),
        "mean_of_image_means": float(fronted["mde"].mean()),
        "hd95": float(fronted["hd95"].mean()),
        "units": "/".join(sorted(set(part["units"]))) if "units" in part.columns else "m",
    }
    for col in ["iou", *_IOU_COLUMNS, "precision", "recall", "f1"]:
        out[col] = float(part[col].mean())
    return out

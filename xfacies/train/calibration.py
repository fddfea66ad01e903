"""Confidence calibration: fit a calibrator, measure calibration error, draw reliability diagrams.

A facies map's confidence is the maximum softmax probability.  Trained with label
smoothing and focal loss, the reference CNN's confidence stays within about
[0.2, 0.81] and does not match its accuracy; the study therefore maps it through a
per-fold calibration curve fitted on the validation fold.  :func:`calibrate` fits such
a curve and returns a copy of the model that carries it (stored pickle-free, see
:mod:`xfacies.model.calibration`), with a report of the calibration error before and after.

Two methods:

``"kernel"`` (the reference's)
    The 25-bin reliability curve (per equal-width confidence bin of ``[0, 1]``: mean
    confidence -> accuracy; empty bins left out) plus the anchors (0, 0) and (1, 1) is fitted
    with a Laplacian kernel ridge, ``f(c) = sum_i a_i exp(-|c - x_i|)``.  The study computes
    bin weights ``w = (count / max count) ** 0.1`` (1 for the anchors) and passes the per-point
    array ``alpha = (1 - w) * 0.01`` to scikit-learn's ``KernelRidge``.  But ``KernelRidge``
    reads an array ``alpha`` as one penalty *per target*, and with one target it uses only
    ``alpha[0]`` -- the (0, 0) anchor's, which is 0.  The reference curves (all six published
    pickles, checked) therefore interpolate the bin accuracies exactly: ``(K a)_i = y_i``.
    ``ridge="reference"`` (default) reproduces that; ``ridge="per-sample"`` solves
    ``(K + diag(alpha)) a = y``, the regularisation the weights were evidently meant to give
    (sparse bins are smoothed, the anchors and the fullest bin are still interpolated).
``"isotonic"``
    scikit-learn ``IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)`` on
    (confidence, correct): a monotone curve.

Calibration error
    ``ece``: expected calibration error of the top label with 100 equal-width bins of
    ``[0, 1]`` (bin ``b`` holds ``b / 100 <= c < (b + 1) / 100``, the last bin also ``c = 1``):
    ``sum_b n_b |mean confidence_b - accuracy_b| / N``, the study's definition (its test-fold
    ECE: 0.116 before, 0.040 after).  ``classwise_ece``: the mean over all ``C`` classes of the
    same ECE computed on the one-vs-rest probability ``p_k`` against ``label == k`` (Kull et
    al. 2019); for a calibrated model the probability vectors are
    :func:`calibrated_probabilities` (the top class gets the calibrated confidence, the other
    classes share the rest in proportion to their probabilities).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> logits = rng.normal(size=(4000, 8)) * 2
>>> truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
>>> labels = (truth.cumsum(1) > rng.random((4000, 1))).argmax(1)      # labels drawn from truth
>>> sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)  # over-confident
>>> cal = fit_kernel(sharp.max(1), sharp.argmax(1) == labels)
>>> round(ece(sharp, labels), 2), round(ece(sharp, labels, calibrator=cal), 2)
(0.25, 0.07)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from xfacies.compat import renamed_keywords
from xfacies.errors import InputError
from xfacies.model.calibration import (
    Calibrator, IsotonicCalibrator, KernelCalibrator, calibrator_from_sklearn,
)
from xfacies.train.cleaning import check_labels, check_probs

__all__ = [
    "calibrate", "fit_kernel", "fit_isotonic", "reliability_points", "binned", "ece", "ece_of",
    "classwise_ece", "calibrated_probabilities", "reliability_diagram", "KERNEL_BINS", "ECE_BINS",
    "KERNEL_ALPHA",
]

#: Bins of the reliability curve the reference's kernel calibrator is fitted on.
KERNEL_BINS = 25
#: Bins of the expected calibration error (the study's).
ECE_BINS = 100
#: Scale of the reference's per-point ridge penalty ``alpha = (1 - w) * KERNEL_ALPHA``.
KERNEL_ALPHA = 1e-2
_WEIGHT_POWER = 0.1  # w = (count / max count) ** 0.1
METHODS = ("kernel", "isotonic")
RIDGES = ("reference", "per-sample")


# ---------------------------------------------------------------------------- binning, ECE
def _check_confidence(confidence: np.ndarray, correct: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidence, dtype=np.float64)
    if c.ndim != 1:
        raise InputError(f"confidence must be one-dimensional; got shape {c.shape}")
    if not np.all(np.isfinite(c)) or (c < 0).any() or (c > 1).any():
        raise InputError("confidence must be finite and within [0, 1]")
    ok = np.asarray(correct if correct is not None else np.zeros(c.shape), dtype=np.float64)
    if ok.shape != c.shape:
        raise InputError(f"correct must have one value per confidence ({c.shape}); got {ok.shape}")
    if ((ok != 0) & (ok != 1)).any():
        raise InputError("correct must be boolean (or 0/1)")
    return c, ok


def _edges(bins: int) -> np.ndarray:
    """Bin edges ``b / bins`` (computed by division, so that e.g. ``29 / 100 == 0.29`` exactly)."""
    if int(bins) != bins or bins < 1:
        raise InputError(f"bins must be a positive integer; got {bins!r}")
    return np.arange(int(bins) + 1) / int(bins)


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each confidence: ``edges[b] <= c < edges[b + 1]``, ``c = 1`` in the last."""
    edges = _edges(bins)
    return np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, int(bins) - 1)


def binned(confidence: np.ndarray, correct: np.ndarray, bins: int = KERNEL_BINS) -> pd.DataFrame:
    """The reliability curve: per equal-width confidence bin, count, mean confidence and accuracy.

    Returns one row per bin (``bin``, ``lo``, ``hi``, ``count``, ``confidence``, ``accuracy``);
    empty bins have NaN means.

    Examples
    --------
    >>> binned([0.1, 0.15, 0.9], [0, 1, 1], bins=2)[["count", "confidence", "accuracy"]]
       count  confidence  accuracy
    0      2       0.125       0.5
    1      1       0.900       1.0
    """
    c, ok = _check_confidence(confidence, correct)
    b = _bin_index(c, bins)
    n = np.bincount(b, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(b, weights=c, minlength=bins) / n
        acc = np.bincount(b, weights=ok, minlength=bins) / n
    edges = _edges(bins)
    return pd.DataFrame({"bin": np.arange(bins), "lo": edges[:-1], "hi": edges[1:], "count": n,
                         "confidence": conf, "accuracy": acc})


def ece_of(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of confidences against 0/1 outcomes: ``sum_b n_b |conf_b - acc_b| / N``.

    Examples
    --------
    >>> ece_of([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 1])   # bins: 0.9 vs 0.5 and 0.6 vs 1.0
    0.4
    """
    c, ok = _check_confidence(confidence, correct)
    if c.size == 0:
        raise InputError("cannot compute a calibration error without samples")
    b = _bin_index(c, bins)
    gap = np.bincount(b, weights=c - ok, minlength=bins)  # n_b (conf_b - acc_b)
    return float(np.abs(gap).sum() / c.size)


def _probs_labels(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs)
    if p.ndim != 2:
        raise InputError(f"probs must have shape (n_samples, n_classes); got {p.shape}")
    y = check_labels(labels, n_classes=p.shape[1])
    return check_probs(p, y.size).astype(np.float64), y


def ece(probs: np.ndarray, labels: np.ndarray, *, bins: int = ECE_BINS,
        calibrator: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """Top-label ECE of probabilities ``(N, C)`` against class ids ``(N,)``.

    The confidence is the maximum probability, mapped through ``calibrator`` when given; a
    sample is correct when the most probable class is its label.
    """
    p, y = _probs_labels(probs, labels)
    conf = p.max(axis=1)
    if calibrator is not None:
        conf = np.asarray(calibrator(conf), dtype=np.float64)
    return ece_of(conf, p.argmax(axis=1) == y, bins)


def classwise_ece(probs: np.ndarray, labels: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Class-wise ECE: mean over all ``C`` classes of the ECE of ``probs[:, k]`` against ``labels == k``.

    Classes without labels still count (their ECE measures how much probability they get).

    Examples
    --------
    >>> classwise_ece(np.array([[1.0, 0.0], [0.5, 0.5]]), [0, 1])   # class 0: 0.25, class 1: 0.25
    0.25
    """
    p, y = _probs_labels(probs, labels)
    return float(np.mean([ece_of(p[:, k], y == k, bins) for k in range(p.shape[1])]))


def calibrated_probabilities(probs: np.ndarray, calibrator: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Probability vectors whose top class has the calibrated confidence.

    The most probable class gets ``f(max p)``; the others share ``1 - f(max p)`` in proportion to
    their probabilities (equally when they had none).  Rows still sum to 1.

    Examples
    --------
    >>> calibrated_probabilities(np.array([[0.8, 0.15, 0.05]]), lambda c: c - 0.2).round(6)
    array([[0.6, 0.3, 0.1]])
    """
    p = np.asarray(probs, dtype=np.float64)
    top = p.argmax(axis=1)
    rows = np.arange(p.shape[0])
    c = p[rows, top]
    f = np.clip(np.asarray(calibrator(c), dtype=np.float64), 0.0, 1.0)
    rest = p.sum(axis=1) - c  # the others' total (1 - c up to rounding): rows then sum to 1 exactly
    tiny = rest <= 1e-12
    out = p * np.where(tiny, 0.0, (1.0 - f) / np.where(tiny, 1.0, rest))[:, None]
    if tiny.any() and p.shape[1] > 1:
        out[tiny] = ((1.0 - f[tiny]) / (p.shape[1] - 1))[:, None]
    out[rows, top] = f
    return out


# ---------------------------------------------------------------------------- fitting
def reliability_points(confidence: np.ndarray, correct: np.ndarray, bins: int = KERNEL_BINS) -> pd.DataFrame:
    """The points the kernel calibrator is fitted on, in the reference's order.

    Anchor (0, 0), the non-empty bins of :func:`binned` (mean confidence ``x``, accuracy ``y``),
    anchor (1, 1).  ``weight`` is ``(count / max count) ** 0.1`` (1 for the anchors) and
    ``alpha = (1 - weight) * 0.01``.  A bin whose mean confidence is exactly 0 or 1 (every
    sample of it at that value) coincides with an anchor and is left out, so the kernel matrix
    stays invertible.
    """
    curve = binned(confidence, correct, bins)
    curve = curve[curve["count"] > 0]
    curve = curve[(curve["confidence"] > 0.0) & (curve["confidence"] < 1.0)]
    n = curve["count"].to_numpy()
    w = (n / n.max()) ** _WEIGHT_POWER if n.size else n.astype(float)
    out = pd.DataFrame({
        "kind": ["anchor"] + ["bin"] * len(curve) + ["anchor"],
        "x": np.r_[0.0, curve["confidence"].to_numpy(), 1.0],
        "y": np.r_[0.0, curve["accuracy"].to_numpy(), 1.0],
        "count": np.r_[0, n, 0],
        "weight": np.r_[1.0, w, 1.0],
    })
    out["alpha"] = (1.0 - out["weight"]) * KERNEL_ALPHA
    return out


def fit_kernel(confidence: np.ndarray, correct: np.ndarray, *, bins: int = KERNEL_BINS,
               ridge: str = "reference") -> KernelCalibrator:
    """The reference's Laplacian kernel-ridge calibration curve (see the module docstring).

    ``ridge="reference"`` fits scikit-learn ``KernelRidge(kernel="laplacian", gamma=1)`` with the
    penalty the study's call effectively used (``alpha[0] = 0``: exact interpolation of the
    reliability points); ``ridge="per-sample"`` solves ``(K + diag(alpha)) a = y``.
    """
    if ridge not in RIDGES:
        raise InputError(f"ridge must be one of {RIDGES}; got {ridge!r}")
    pts = reliability_points(confidence, correct, bins)
    x = pts["x"].to_numpy()
    y = pts["y"].to_numpy()
    alpha = pts["alpha"].to_numpy()
    if ridge == "reference":
        from sklearn.kernel_ridge import KernelRidge

        # The study passed the whole per-point array; KernelRidge takes alpha per *target* and,
        # with one target, uses alpha[0] (the (0, 0) anchor's, i.e. 0).  Say so explicitly.
        kr = KernelRidge(kernel="laplacian", gamma=1.0, alpha=float(alpha[0])).fit(x[:, None], y)
        return calibrator_from_sklearn(kr)
    K = np.exp(-np.abs(x[:, None] - x[None, :]))
    return KernelCalibrator(x_fit=x, dual_coef=np.linalg.solve(K + np.diag(alpha), y), gamma=1.0)


def fit_isotonic(confidence: np.ndarray, correct: np.ndarray) -> IsotonicCalibrator:
    """scikit-learn ``IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)``, stored pickle-free."""
    from sklearn.isotonic import IsotonicRegression

    c, ok = _check_confidence(confidence, correct)
    if c.size == 0:
        raise InputError("cannot fit a calibrator without samples")
    ir = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(c, ok)
    return IsotonicCalibrator(x=ir.X_thresholds_, y=ir.y_thresholds_)


def calibrate(
    model: Any,
    probs: np.ndarray,
    labels: np.ndarray,
    method: str = "kernel",
    *,
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
    bins: int = KERNEL_BINS,
    ridge: str = "reference",
    plot: str | os.PathLike | None = None,
) -> tuple[Any, pd.DataFrame]:
    """Fit a confidence calibrator and return a calibrated copy of ``model`` and a report.

    Parameters
    ----------
    model
        The :class:`xfacies.Model` whose probabilities ``probs`` are; it is not changed.
    probs, labels
        ``(N, C)`` predicted probabilities (e.g. on the validation fold) and ``(N,)`` class ids.
    method
        ``"kernel"`` (the reference's) or ``"isotonic"`` (see the module docstring).
    held_out
        Optional ``(probs, labels)`` of other samples (e.g. the test fold) on which the
        calibration error is also reported (the fit-set numbers are optimistic).
    bins
        Bins of the kernel method's reliability curve (the reference: 25).
    ridge
        Kernel method only: ``"reference"`` or ``"per-sample"`` (see :func:`fit_kernel`).
    plot
        Optional PNG path for a :func:`reliability_diagram` (of ``held_out`` when given).

    Returns
    -------
    model, report
        A copy of the model with ``calibrator`` set (and ``metadata["calibration"]`` recording
        the fit), and a tidy table with columns ``metric`` (``"ece"``, ``"classwise_ece"``),
        ``set`` (``"fit"``, ``"held_out"``), ``calibration`` (``"before"``, ``"after"``),
        ``n_samples``, ``value`` (100-bin ECEs).

    Examples
    --------
    >>> m, report = calibrate(xfacies.load_model("demo"), val_probs, val_labels)   # doctest: +SKIP
    >>> report.pivot_table("value", ["metric", "set"], "calibration")              # doctest: +SKIP
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}; got {method!r}")
    p, y = _probs_labels(probs, labels)
    n_classes = len(getattr(model, "classes", ())) or p.shape[1]
    if p.shape[1] != n_classes:
        raise InputError(f"probs have {p.shape[1]} classes but the model has {n_classes}: {list(model.classes)}")
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    if method == "kernel":
        cal: Calibrator = fit_kernel(conf, correct, bins=bins, ridge=ridge)
    else:
        cal = fit_isotonic(conf, correct)
    sets = [("fit", p, y)]
    if held_out is not None:
        hp, hy = _probs_labels(*held_out)
        if hp.shape[1] != p.shape[1]:
            raise InputError(f"held-out probs have {hp.shape[1]} classes, the fit probs {p.shape[1]}")
        sets.append(("held_out", hp, hy))
    rows = []
    for name, sp, sy in sets:
        cp = calibrated_probabilities(sp, cal)
        rows += [("ece", name, "before", sy.size, ece(sp, sy)),
                 ("ece", name, "after", sy.size, ece(sp, sy, calibrator=cal)),
                 ("classwise_ece", name, "before", sy.size, classwise_ece(sp, sy)),
                 ("classwise_ece", name, "after", sy.size, classwise_ece(cp, sy))]
    report = pd.DataFrame(rows, columns=["metric", "set", "calibration", "n_samples", "value"])
    record = {"method": method, "n_samples": int(y.size), "bins": int(bins) if method == "kernel" else None,
              "ridge": ridge if method == "kernel" else None, "fitted_by": "xfacies.train.calibration.calibrate",
              "ece": {f"{r.set}_{r.calibration}": float(r.value) for r in report.itertuples() if r.metric == "ece"}}
    out = dataclasses.replace(model, calibrator=cal, path=None,
                              metadata={**dict(getattr(model, "metadata", {}) or {}), "calibration": record})
    if plot is not None:
        _, dp, dy = sets[-1]
        reliability_diagram(dp, dy, plot, calibrated=cal)
    return out, report


# ---------------------------------------------------------------------------- plotting
@renamed_keywords(path="out")
def reliability_diagram(
    probs: np.ndarray,
    labels: np.ndarray,
    out: str | os.PathLike,
    *,
    calibrated: Any = None,
    bins: int = KERNEL_BINS,
) -> Path:
    """Draw a reliability diagram (PNG) before and, with ``calibrated``, after calibration.

    Top: accuracy against mean confidence per bin, the diagonal (perfect calibration) and the
    calibration curve itself; the legend gives the 100-bin ECEs.  Bottom: samples per bin.
    ``calibrated`` is a calibrator (any callable on confidences) or a model with one.
    Returns ``out``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    p, y = _probs_labels(probs, labels)
    cal = getattr(calibrated, "calibrator", calibrated)
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    curves = [("before", conf, "#d95f02", "o")]
    if cal is not None:
        curves.append(("after", np.asarray(cal(conf), dtype=np.float64), "#1b9e77", "s"))

    fig = Figure(figsize=(6.0, 6.6), dpi=110, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfect calibration")
    if cal is not None:
        grid = np.linspace(0, 1, 401)
        top.plot(grid, cal(grid), color="k", lw=0.8, alpha=0.8, zorder=5,
                 label="calibration curve: after = f(before)")
    width = 1.0 / bins
    for name, c, color, marker in curves:
        curve = binned(c, correct, bins)
        full = curve[curve["count"] > 0]
        top.plot(full["confidence"], full["accuracy"], marker=marker, ms=4, color=color, lw=1.5,
                 label=f"{name} (ECE {ece_of(c, correct):.3f}, {ECE_BINS} bins)")
        if name == "before":
            bottom.bar(curve["lo"] + width / 2, curve["count"], width=width * 0.9, color=color, alpha=0.6,
                       label=name)
        else:
            bottom.stairs(curve["count"], np.r_[curve["lo"], 1.0], color=color, lw=1.5, label=name)
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy",
            title=f"Reliability ({bins} bins, {y.size} samples)")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.set(xlabel="confidence (maximum probability)", ylabel="samples")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left", fontsize=8)
    out = Path(out)
    fig.savefig(out)
    return out

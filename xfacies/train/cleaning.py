"""Label cleaning with confident learning, as in the reference study.

The study takes out-of-fold predicted probabilities of the "before" models for
every label, calls ``cleanlab.filter.find_label_issues(labels, pred_probs,
filter_by="confident_learning", return_indices_ranked_by="self_confidence")``
and keeps only the issues whose given label is a facies class (ice, snow,
debris, firn, refrozen-like): shadow, water and cloud labels are trusted.  The
flagged samples are removed from train, validation and test sets and the
"after" models are retrained on the rest (16.45 % of 137,592 labels pruned).

:func:`label_issues` is exactly that call and that restriction;
:func:`pruning_report` counts what was pruned, per class and per fold.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> labels = rng.integers(0, 8, 400)
>>> probs = np.full((400, 8), 0.02)
>>> probs[np.arange(400), labels] = 0.86            # a confident model that agrees ...
>>> labels[:10] = (labels[:10] + 1) % 8             # ... with all but ten flipped labels
>>> issues = label_issues(labels, probs)
>>> bool(np.isin(labels[issues], FACIES_CLASSES).all()), set(issues) <= set(range(10))
(True, True)
>>> pruning_report(labels, issues).query("fold == 'all' and `class` == 'all'")["n_pruned"].item() == len(issues)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from xfacies.errors import InputError
from xfacies import catalog
from xfacies.catalog import FACIES_CLASSES

__all__ = ["label_issues", "pruning_report", "FACIES_CLASSES"]

#: Tolerance on the row sums of ``pred_probs`` (float32 softmax rows sum to 1 within ~1e-6).
PROB_SUM_ATOL = 1e-3


def check_labels(labels: np.ndarray | Sequence[int], n_classes: int | None = None) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise InputError(f"labels must be one-dimensional (one class id per sample); got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise InputError(f"labels must be integer class ids; got dtype {y.dtype} with non-integer values")
    y = y.astype(np.int64)
    hi = len(catalog.CLASSES) if n_classes is None else n_classes
    bad = (y < 0) | (y >= hi)
    if bad.any():
        raise InputError(
            f"labels must be class ids in 0..{hi - 1}; {int(bad.sum())} are not (e.g. {y[bad][:5].tolist()}). "
            f"Drop unlabelled samples (xfacies.NODATA = {catalog.NODATA}) first.")
    return y


def check_probs(pred_probs: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(pred_probs)
    if p.ndim != 2 or p.shape[0] != n:
        raise InputError(f"pred_probs must have shape (n_samples, n_classes) = ({n}, C) to match the "
                         f"labels; got {p.shape}")
    if p.shape[1] < 2:
        raise InputError(f"pred_probs needs at least two classes (columns); got {p.shape[1]}")
    if not np.all(np.isfinite(p)) or (p < 0).any() or (p > 1).any():
        raise InputError("pred_probs must be probabilities: finite and within [0, 1]")
    sums = p.sum(axis=1)
    off = np.abs(sums - 1.0) > PROB_SUM_ATOL
    if off.any():
        i = int(np.argmax(off))
        raise InputError(
            f"every row of pred_probs must sum to 1 (within {PROB_SUM_ATOL}); {int(off.sum())} rows do not "
            f"(row {i} sums to {sums[i]:.6g}). Pass softmax probabilities, not logits or scores.")
    return p


def label_issues(
    labels: np.ndarray | Sequence[int],
    pred_probs: np.ndarray,
    classes: Sequence[int] | None = None,
) -> np.ndarray:
    """Indices of likely label errors among labels of ``classes``, worst first (confident learning).

    Exactly ``cleanlab.filter.find_label_issues(labels=labels, pred_probs=pred_probs,
    filter_by="confident_learning", return_indices_ranked_by="self_confidence")`` (computed on
    *all* samples, so the per-class thresholds see every class), then restricted to the samples
    whose given label is in ``classes``, keeping cleanlab's ranking (lowest self-confidence
    first).

    Parameters
    ----------
    labels
        ``(N,)`` given class ids, ``0 .. C-1``.
    pred_probs
        ``(N, C)`` out-of-fold predicted probabilities (each row sums to 1), e.g. from the
        "before" models of the fold that held each sample out.
    classes
        Class ids whose labels may be flagged.  Default: with the catalogue's 8 classes
        (``pred_probs`` of 8 columns) the five facies classes
        (:data:`xfacies.catalog.FACIES_CLASSES`): shadow, water and cloud are trusted, as in the
        reference study; with your own classes (any other number of columns) every class.

    Returns
    -------
    numpy.ndarray
        int64 sample indices, ranked.

    Examples
    --------
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.95, 0.05]])
    >>> label_issues([0, 0, 1, 1, 1], probs, classes=[0, 1])
    array([4])
    >>> label_issues([0, 0, 1, 1, 1], probs, classes=[0])
    array([], dtype=int64)
    """
    from cleanlab.filter import find_label_issues

    y = check_labels(labels, n_classes=None if np.ndim(pred_probs) != 2 else np.shape(pred_probs)[1])
    p = check_probs(pred_probs, y.size)
    if classes is None:
        classes = FACIES_CLASSES if p.shape[1] == len(catalog.CLASSES) else range(p.shape[1])
    keep = np.asarray(list(classes), dtype=np.int64).ravel()
    if ((keep < 0) | (keep >= p.shape[1])).any():
        raise InputError(f"classes must be class ids in 0..{p.shape[1] - 1}; got {keep.tolist()}")
    ranked = find_label_issues(labels=y, pred_probs=p, filter_by="confident_learning",
                               return_indices_ranked_by="self_confidence")
    ranked = np.asarray(ranked, dtype=np.int64)
    return ranked[np.isin(y[ranked], keep)]


def pruning_report(
    labels: np.ndarray | Sequence[int],
    issues: np.ndarray | Sequence[int],
    folds: np.ndarray | Sequence | None = None,
) -> pd.DataFrame:
    """How many labels were pruned, per class and per fold (a tidy table).

    Parameters
    ----------
    labels
        ``(N,)`` given class ids.
    issues
        Indices of the pruned samples (e.g. from :func:`label_issues`).
    folds
        Optional ``(N,)`` fold of each sample.

    Returns
    -------
    pandas.DataFrame
        One row per (fold, class) with columns ``fold`` (the fold, or ``"all"`` for every fold
        together), ``class_id`` (-1 for ``"all"``), ``class`` (name from
        :data:`xfacies.CLASSES`, or ``"all"``), ``n_labels``, ``n_pruned`` and
        ``fraction_pruned`` (``n_pruned / n_labels``, NaN without labels).  Every class of the
        catalogue is listed, also when it has no labels.

    Examples
    --------
    >>> rep = pruning_report([0, 0, 1, 4], [1], folds=[0, 1, 1, 1])
    >>> cols = ["fold", "class", "n_labels", "n_pruned", "fraction_pruned"]
    >>> print(rep.query("n_labels > 0 and `class` != 'all'")[cols].to_string(index=False))
    fold  class  n_labels  n_pruned  fraction_pruned
       0    ice         1         0              0.0
       1    ice         1         1              1.0
       1   snow         1         0              0.0
       1 shadow         1         0              0.0
     all    ice         2         1              0.5
     all   snow         1         0              0.0
     all shadow         1         0              0.0
    """
    y = check_labels(labels)
    idx = np.asarray(issues)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise InputError(f"issues must be a one-dimensional array of sample indices; got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= y.size):
        raise InputError(f"issues must index the {y.size} labels (0..{y.size - 1}); got "
                         f"values in {int(idx.min())}..{int(idx.max())}")
    if np.unique(idx).size != idx.size:
        raise InputError("issues contains repeated indices")
    pruned = np.zeros(y.size, dtype=bool)
    pruned[idx.astype(np.int64)] = True
    if folds is None:
        groups: list[tuple[object, np.ndarray]] = []
    else:
        f = np.asarray(folds)
        if f.shape != y.shape:
            raise InputError(f"folds must have one value per label ({y.size}); got shape {f.shape}")
        groups = [(v.item() if hasattr(v, "item") else v, f == v) for v in np.unique(f)]
    groups.append(("all", np.ones(y.size, dtype=bool)))
    rows = []
    for fold, sel in groups:
        for c in catalog.CLASSES:
            m = sel & (y == c.id)
            rows.append((fold, c.id, c.name, int(m.sum()), int((m & pruned).sum())))
        rows.append((fold, -1, "all", int(sel.sum()), int((sel & pruned).sum())))
    out = pd.DataFrame(rows, columns=["fold", "class_id", "class", "n_labels", "n_pruned"])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["fraction_pruned"] = np.where(out["n_labels"] > 0, out["n_pruned"] / out["n_labels"].clip(lower=1),
                                          np.nan)
    return out

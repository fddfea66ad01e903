"""Make facies models: training data, the reference recipe, confident learning, calibration, scores.

=============================================  ==================================================
:func:`rasterize_labels`                       label polygons burnt onto a grid (int8, CF flags)
:func:`sample_points`                          a stratified sample of labelled pixels (points)
:func:`patches_from_points`                    patches from labelled points on any feature cube
:func:`concat_patches`                         patch sets of several cubes/grids as one
:func:`read_reference_patches`                 the reference study's patch folders (Zarr-cached)
:func:`new_model`                              an untrained model (e.g. ``"translation-exact"``)
:func:`fit`                                    the reference recipe (focal loss, scene weights, ...)
:func:`cross_validate`                         k folds, validation fold (t - 1) mod k, out-of-fold
                                               probabilities; ``fold_by="scene"``/``"glacier"``
:func:`label_issues`, :func:`pruning_report`   confident learning with cleanlab
:func:`calibrate`                              kernel (the study's) or isotonic confidence
                                               calibration, ECE before/after
:func:`evaluate`                               per-class and macro scores, confusion matrix
=============================================  ==================================================

Each name is imported on first use (importing ``xfacies.train`` loads neither Keras nor cleanlab).
Modules: :mod:`~xfacies.train.data`, :mod:`~xfacies.train.reference_patches`, :mod:`~xfacies.train.fitting`, :mod:`~xfacies.train.cleaning`,
:mod:`~xfacies.train.calibration`, :mod:`~xfacies.train.evaluation`, :mod:`~xfacies.train.patches`
(balanced patches from label rasters) and :mod:`~xfacies.train.demo_model` (the shipped demo model).
"""

from __future__ import annotations

from xfacies._lazy import names as _lazy_names

_LAZY: dict[str, str] = {
    "rasterize_labels": "xfacies.train.labels",
    "sample_points": "xfacies.train.labels",
    "patches_from_points": "xfacies.train.data",
    "concat_patches": "xfacies.train.data",
    "read_reference_patches": "xfacies.train.reference_patches",
    "write_reference_patches": "xfacies.train.reference_patches",
    "new_model": "xfacies.train.fitting",
    "fit": "xfacies.train.fitting",
    "cross_validate": "xfacies.train.fitting",
    "CrossValidation": "xfacies.train.fitting",
    "label_issues": "xfacies.train.cleaning",
    "pruning_report": "xfacies.train.cleaning",
    "calibrate": "xfacies.train.calibration",
    "reliability_diagram": "xfacies.train.calibration",
    "evaluate": "xfacies.train.evaluation",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = _lazy_names(__name__, _LAZY, globals())

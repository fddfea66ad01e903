"""Confidence calibration, stored pickle-free.

The reference calibrates the raw confidence (max softmax probability) with a
scikit-learn ``KernelRidge(kernel="laplacian", gamma=1)``.  Its prediction has
the closed form ``f(c) = sum_i a_i * exp(-gamma * |c - x_i|)`` over the fit
points ``x_i`` with dual coefficients ``a_i``; :class:`KernelCalibrator` stores
just those numbers (JSON-safe), so bundles never contain pickles.
:class:`IsotonicCalibrator` stores a monotone piecewise-linear curve (scikit-learn
``IsotonicRegression`` thresholds).  Both have ``to_dict`` with a ``"kind"`` key;
:func:`calibrator_from_dict` reads either back.  :mod:`xfacies.train.calibration` fits them.

Examples
--------
>>> import numpy as np
>>> cal = KernelCalibrator(x_fit=[0.0, 1.0], dual_coef=[0.0, 1.0])
>>> float(np.round(cal.predict_unclipped(np.array([1.0]))[0], 3))
1.0
>>> iso = calibrator_from_dict({"kind": "isotonic", "x": [0.2, 0.8], "y": [0.1, 0.9]})
>>> iso(np.array([0.0, 0.5, 1.0]))
array([0.1, 0.5, 0.9])
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

__all__ = ["KernelCalibrator", "IsotonicCalibrator", "Calibrator", "calibrator_from_dict",
           "calibrator_from_sklearn", "read_reference_calibrator"]


@dataclass(frozen=True)
class KernelCalibrator:
    """Laplacian-kernel calibration curve ``f(c) = sum a_i exp(-gamma |c - x_i|)``."""

    x_fit: tuple[float, ...]
    dual_coef: tuple[float, ...]
    gamma: float = 1.0
    kind: str = field(default="laplacian-kernel-ridge")

    def __post_init__(self) -> None:
        object.__setattr__(self, "x_fit", tuple(float(v) for v in np.ravel(self.x_fit)))
        object.__setattr__(self, "dual_coef", tuple(float(v) for v in np.ravel(self.dual_coef)))
        if len(self.x_fit) != len(self.dual_coef) or not self.x_fit:
            raise ValueError(
                f"calibrator needs as many fit points as dual coefficients "
                f"(got {len(self.x_fit)} and {len(self.dual_coef)})"
            )

    def predict_unclipped(self, confidence: np.ndarray) -> np.ndarray:
        """The kernel-ridge curve itself (may leave [0, 1])."""
        c = np.asarray(confidence, dtype=np.float64)
        x = np.asarray(self.x_fit)
        a = np.asarray(self.dual_coef)
        flat = c.reshape(-1, 1)
        out = np.exp(-self.gamma * np.abs(flat - x[None, :])) @ a
        return out.reshape(c.shape)

    def __call__(self, confidence: np.ndarray) -> np.ndarray:
        """Calibrated confidence, clipped to [0, 1]; NaN stays NaN."""
        c = np.asarray(confidence)
        out = np.clip(self.predict_unclipped(c), 0.0, 1.0)
        return out.astype(c.dtype if np.issubdtype(c.dtype, np.floating) else np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "gamma": self.gamma,
                "x_fit": list(self.x_fit), "dual_coef": list(self.dual_coef)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "KernelCalibrator":
        if d.get("kind", "laplacian-kernel-ridge") != "laplacian-kernel-ridge":
            raise ValueError(f"unknown calibrator kind {d.get('kind')!r}")
        return cls(x_fit=d["x_fit"], dual_coef=d["dual_coef"], gamma=float(d.get("gamma", 1.0)))


@dataclass(frozen=True)
class IsotonicCalibrator:
    """Monotone calibration curve: linear interpolation between thresholds ``(x_i, y_i)``.

    The stored form of a fitted scikit-learn ``IsotonicRegression(out_of_bounds="clip")``
    (its ``X_thresholds_`` and ``y_thresholds_``): confidences outside ``[x_0, x_-1]`` get the
    end values, exactly as that model's ``predict``.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    kind: str = field(default="isotonic")

    def __post_init__(self) -> None:
        x = np.ravel(np.asarray(self.x, dtype=np.float64))
        y = np.ravel(np.asarray(self.y, dtype=np.float64))
        if x.size != y.size or x.size == 0:
            raise ValueError(f"isotonic calibrator needs as many x as y thresholds, at least one "
                             f"(got {x.size} and {y.size})")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("isotonic calibrator thresholds must be finite")
        if np.any(np.diff(x) < 0):
            raise ValueError("isotonic calibrator x thresholds must be sorted ascending")
        object.__setattr__(self, "x", tuple(float(v) for v in x))
        object.__setattr__(self, "y", tuple(float(v) for v in y))

    def predict_unclipped(self, confidence: np.ndarray) -> np.ndarray:
        """The interpolated curve (NaN stays NaN)."""
        c = np.asarray(confidence, dtype=np.float64)
        return np.interp(c, np.asarray(self.x), np.asarray(self.y))

    def __call__(self, confidence: np.ndarray) -> np.ndarray:
        """Calibrated confidence, clipped to [0, 1]; NaN stays NaN."""
        c = np.asarray(confidence)
        out = np.clip(self.predict_unclipped(c), 0.0, 1.0)
        return out.astype(c.dtype if np.issubdtype(c.dtype, np.floating) else np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "IsotonicCalibrator":
        if d.get("kind") != "isotonic":
            raise ValueError(f"not an isotonic calibrator: kind {d.get('kind')!r}")
        return cls(x=d["x"], y=d["y"])


#: Any confidence calibrator a bundle can hold.
Calibrator = KernelCalibrator | IsotonicCalibrator

_KINDS: dict[str, Any] = {"laplacian-kernel-ridge": KernelCalibrator, "isotonic": IsotonicCalibrator}


def calibrator_from_dict(d: dict[str, Any]) -> Calibrator:
    """Rebuild a calibrator from its ``to_dict()`` form, dispatching on ``d["kind"]``.

    A dict without ``"kind"`` is a kernel calibrator (bundles written before isotonic ones existed).
    """
    kind = d.get("kind", "laplacian-kernel-ridge")
    if kind not in _KINDS:
        raise ValueError(f"unknown calibrator kind {kind!r}; known kinds: {sorted(_KINDS)}")
    return _KINDS[kind].from_dict(d)


def calibrator_from_sklearn(obj: Any) -> KernelCalibrator:
    """Convert a fitted scikit-learn ``KernelRidge`` (laplacian kernel) to a :class:`KernelCalibrator`."""
    kernel = getattr(obj, "kernel", None)
    if kernel != "laplacian" or not hasattr(obj, "dual_coef_"):
        raise ValueError(
            f"expected a fitted sklearn KernelRidge with kernel='laplacian', got "
            f"{type(obj).__name__} with kernel={kernel!r}"
        )
    x = np.asarray(obj.X_fit_, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 1:
        raise ValueError(f"calibrator must be fitted on one feature (confidence); X_fit_ has shape {x.shape}")
    gamma = 1.0 if obj.gamma is None else float(obj.gamma)
    return KernelCalibrator(x_fit=x[:, 0], dual_coef=np.ravel(obj.dual_coef_), gamma=gamma)


def read_reference_calibrator(path: str | PathLike) -> KernelCalibrator:
    """Read one of the reference's ``*_calibration_model.pickle`` files.

    Only unpickle files you trust (the reference's are pinned by sha256 in
    :func:`xfacies.reference_model`).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # InconsistentVersionWarning (written with sklearn 1.5)
        try:
            with open(path, "rb") as f:
                obj = pickle.load(f)  # noqa: S301 - trusted, hash-pinned input
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
            raise ValueError(f"{path}: not a readable calibration pickle ({err})") from err
    return calibrator_from_sklearn(obj)

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

from xfacies.errors import InputError

__all__ = ["KernelCalibrator", "IsotonicCalibrator", "Calibrator", "calibrator_from_dict",
           "calibrator_from_sklearn", "read_calibrator", "read_reference_calibrator", "unpickle_trusted"]


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
            raise InputError(
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
            raise InputError(f"unknown calibrator kind {d.get('kind')!r}")
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
            raise InputError(f"isotonic calibrator needs as many x as y thresholds, at least one "
                             f"(got {x.size} and {y.size})")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise InputError("isotonic calibrator thresholds must be finite")
        if np.any(np.diff(x) < 0):
            raise InputError("isotonic calibrator x thresholds must be sorted ascending")
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
            raise InputError(f"not an isotonic calibrator: kind {d.get('kind')!r}")
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
        raise InputError(f"unknown calibrator kind {kind!r}; known kinds: {sorted(_KINDS)}")
    return _KINDS[kind].from_dict(d)


def calibrator_from_sklearn(obj: Any) -> KernelCalibrator:
    """Convert a fitted scikit-learn ``KernelRidge`` (laplacian kernel) to a :class:`KernelCalibrator`."""
    kernel = getattr(obj, "kernel", None)
    if kernel != "laplacian" or not hasattr(obj, "dual_coef_"):
        raise InputError(
            f"expected a fitted sklearn KernelRidge with kernel='laplacian', got "
            f"{type(obj).__name__} with kernel={kernel!r}"
        )
    x = np.asarray(obj.X_fit_, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 1:
        raise InputError(f"calibrator must be fitted on one feature (confidence); X_fit_ has shape {x.shape}")
    gamma = 1.0 if obj.gamma is None else float(obj.gamma)
    return KernelCalibrator(x_fit=x[:, 0], dual_coef=np.ravel(obj.dual_coef_), gamma=gamma)


def unpickle_trusted(path: str | PathLike, *, trust_pickle: bool = False) -> Any:
    """Unpickle ``path`` -- which runs whatever code the file holds -- only when ``trust_pickle``.

    The one place xfacies unpickles: the opt-in conversion of the reference's files
    (:func:`xfacies.model.reference.convert_reference_file`) and the reference's own hash-pinned
    downloads (:func:`xfacies.reference_model`).

    Raises
    ------
    xfacies.errors.UnsafeFileError
        Without ``trust_pickle``, before the file is opened.
    """
    from xfacies.errors import UnsafeFileError

    if not trust_pickle:
        raise UnsafeFileError(
            f"{path} is not JSON: it looks like a pickle, and unpickling runs whatever code the file "
            "holds, so xfacies does not read it. xfacies reads calibrators and min/max files as JSON. "
            f"Convert a file you trust once: `xfacies convert-reference {path} OUT.json --trust-pickle` "
            "(xfacies.model.reference.convert_reference_file(..., trust_pickle=True))")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # InconsistentVersionWarning (written with sklearn 1.5)
        try:
            with open(path, "rb") as f:
                return pickle.load(f)  # noqa: S301 - the caller trusts this file (trust_pickle=True)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as err:
            raise InputError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err


def read_json_file(path: str | PathLike, what: str) -> Any:
    """The JSON document in ``path``, or a :class:`~xfacies.errors.UnsafeFileError` when the file is
    a pickle (sniffed from its first bytes, never unpickled) and a ``ValueError`` naming the file
    when it is neither."""
    import json
    from pathlib import Path

    from xfacies.errors import UnsafeFileError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {p} does not exist")
    if p.stat().st_size > 16 * 2**20:
        raise InputError(f"{what} {p} is {p.stat().st_size / 2**20:.0f} MiB; a {what} is a few kB of JSON")
    raw = p.read_bytes()
    if raw[:1] == b"\x80" or p.suffix.lower() in (".pickle", ".pkl"):
        unpickle_trusted(p)  # raises UnsafeFileError: never unpickled here
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as err:
        raise UnsafeFileError(f"{what} {p} is not JSON ({err}); xfacies reads {what}s as JSON (a pickle "
                              f"of the reference: `xfacies convert-reference {p} OUT.json --trust-pickle`)"
                              ) from err


def read_calibrator(path: str | PathLike) -> Calibrator:
    """A calibrator from its JSON form (``to_dict()``, as :func:`xfacies.model.reference.convert_reference_file`
    writes it); a pickle is refused unread (:class:`~xfacies.errors.UnsafeFileError`)."""
    d = read_json_file(path, "calibrator")
    if not isinstance(d, dict):
        raise InputError(f"calibrator {path} holds a JSON {type(d).__name__}, not a calibrator object")
    try:
        return calibrator_from_dict(d)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"calibrator {path} is not a calibrator's JSON ({type(err).__name__}: {err})") from err


def read_reference_calibrator(path: str | PathLike, *, trust_pickle: bool = False) -> Calibrator:
    """A reference calibrator: its JSON form, or -- only with ``trust_pickle`` -- the reference's own
    ``*_calibration_model.pickle`` (unpickling runs the file's code: hash-pinned files only, as
    :func:`xfacies.reference_model` downloads them)."""
    if trust_pickle:
        return calibrator_from_sklearn(unpickle_trusted(path, trust_pickle=True))
    return read_calibrator(path)

"""Models: architectures (Keras 3, ``keras.ops``), bundles, reference import, calibration, training.

Nothing here imports Keras at module import time; the backend is loaded when a
model is first built.
"""

from xfacies.model.bundle import BundleError, Model, NormalisationWarning, load_model
from xfacies.model.calibration import KernelCalibrator
from xfacies.model.reference import import_reference, reference_model

__all__ = [
    "Model", "load_model", "BundleError", "NormalisationWarning", "KernelCalibrator",
    "import_reference", "reference_model",
]

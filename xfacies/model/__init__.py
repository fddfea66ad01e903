"""Models: bundles, backend runtime, registry and cache, architectures, calibration, reference import.

==================  =============================================================
module              concern
==================  =============================================================
``bundle``          the bundle file format and :class:`Model` (pickle-free, checked on load)
``runtime``         compiled forwards per Keras backend, shape buckets, device memory
``registry``        built-in names, files, hash-pinned downloads, the per-process cache
``architecture``    the reference CNN family in ``keras.ops`` (patch and dense forms)
``calibration``     confidence calibrators in closed form
``reference``       importing the reference study's ``.h5`` weights
==================  =============================================================

Nothing here imports Keras at module import time; the backend is loaded when a
model is first built.
"""

from xfacies.model.bundle import BundleError, Model, NormalisationWarning
from xfacies.model.calibration import KernelCalibrator
from xfacies.model.reference import import_reference, reference_model
from xfacies.model.registry import load_model

__all__ = [
    "Model", "load_model", "BundleError", "NormalisationWarning", "KernelCalibrator",
    "import_reference", "reference_model",
]

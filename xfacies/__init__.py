"""xfacies: glacier surface facies from Landsat and Sentinel-2, the xarray way.

Importing xfacies registers the ``.facies`` accessor on xarray objects.  Heavy
frameworks (Keras and its backend) are imported only when a model is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from xfacies.catalog import CLASSES, FEATURE_SETS, FEATURES, NODATA

__version__ = "0.1.0"

_LAZY = {
    "Model": "xfacies.model.bundle",
    "BundleError": "xfacies.model.bundle",
    "NormalisationWarning": "xfacies.model.bundle",
    "load_model": "xfacies.model.bundle",
    "import_reference": "xfacies.model.reference",
    "reference_model": "xfacies.model.reference",
    "predict_proba": "xfacies.inference",
    "classify": "xfacies.inference",
    "fractions": "xfacies.products",
    "to_zarr": "xfacies.io",
    "read_outlines": "xfacies.outlines",
    "aar_proxy": "xfacies.products",
    "snowline_altitude": "xfacies.products",
    "end_of_season": "xfacies.products",
    "open_stac": "xfacies.stac",
    "open_dem": "xfacies.stac",
    "regress": "xfacies.massbalance",
    "crop": "xfacies.outlines",
    "apply_scene": "xfacies.apply",
    "run_config": "xfacies.pipeline",
    "load_config": "xfacies.pipeline",
    "RunConfig": "xfacies.pipeline",
}
_SUBMODULES = {
    "catalog", "synthetic", "terrain", "outlines", "inference", "products", "io", "plot",
    "model", "demo", "cli", "accessor", "cluster", "wgms", "massbalance", "features", "stac",
    "sensors", "stac_testing", "pipeline", "apply", "validation",
}

__all__ = ["CLASSES", "FEATURES", "FEATURE_SETS", "NODATA", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"xfacies.{name}")
    raise AttributeError(f"module 'xfacies' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


# Register the .facies accessor (cheap: no heavy imports at module level).
import rioxarray as _rioxarray  # noqa: E402,F401  (registers .rio, used on every output)

from xfacies import accessor as _accessor  # noqa: E402,F401

"""xfacies: glacier surface facies from Landsat and Sentinel-2, the xarray way.

The package follows the data flow, one sub-package per stage:

==================  ==========================================================
``sources``         STAC cubes, sensors and radiometry, DEMs, rasters, a local STAC server
``features``        the reference's features, blockwise (terrain kernels, proximity)
``model``           bundles, backend runtime, registry and cache, architectures, calibration
``inference``       the chunk-by-chunk engine and model distribution to Dask workers
``products``        fractions, AAR proxy, snowlines, end of season
``massbalance``     WGMS readers and the mass-balance regression
``io``, ``plot``    Zarr stores; figures
``train``           patch sampling and fitting (the demo model's recipe)
``app``             run configuration, pipeline, report, demo, apply, command line
==================  ==========================================================

Shared by every stage: :mod:`~xfacies.catalog` (classes and features),
:mod:`~xfacies.spatial` (grids), :mod:`~xfacies.outlines` (outlines), :mod:`~xfacies.halo` (halo exchange),
:mod:`~xfacies.options` and :mod:`~xfacies.validation`.

Importing xfacies registers the ``.facies`` accessor on xarray objects and imports
neither Keras nor the GDAL stack (rasterio, rioxarray, pyproj, geopandas, shapely, odc,
pystac): each stage imports what it needs when it is used, so the model and inference
core run on machines that have only numpy, xarray, dask and Keras.
"""

from __future__ import annotations

import importlib
from typing import Any

from xfacies.catalog import CLASSES, FEATURE_SETS, FEATURES, NODATA
from xfacies.options import set_options

__version__ = "0.1.0"

_LAZY = {
    "Model": "xfacies.model.bundle",
    "BundleError": "xfacies.errors",
    "NormalisationWarning": "xfacies.model.bundle",
    "load_model": "xfacies.model.registry",
    "import_reference": "xfacies.model.reference",
    "reference_model": "xfacies.model.reference",
    "grid": "xfacies.outlines",
    "terrain_features": "xfacies.features.compute",
    "predict_proba": "xfacies.inference.engine",
    "classify": "xfacies.inference.engine",
    "fractions": "xfacies.products.fractions",
    "aar_proxy": "xfacies.products.fractions",
    "snowline_altitude": "xfacies.products.snowline",
    "end_of_season": "xfacies.products.season",
    "to_zarr": "xfacies.io",
    "read_outlines": "xfacies.outlines",
    "crop": "xfacies.outlines",
    "open_stac": "xfacies.sources.stac",
    "open_rasters": "xfacies.sources.rasters",
    "outlines_from_mask": "xfacies.outlines",
    "scene_quality": "xfacies.sources.quality",
    "open_dem": "xfacies.sources.dem",
    "regress": "xfacies.massbalance.regression",
    "apply_scene": "xfacies.app.apply",
    "run_config": "xfacies.app.pipeline",
    "load_config": "xfacies.app.config",
    "RunConfig": "xfacies.app.config",
}
#: Sub-packages and modules reachable as attributes (``xfacies.synthetic``, ``xfacies.wgms``).
_SUBMODULES = {
    **{name: f"xfacies.{name}" for name in (
        "catalog", "errors", "spatial", "outlines", "halo", "options", "validation", "accessor", "synthetic", "io", "plot",
        "sources", "features", "model", "inference", "products", "massbalance", "train", "app",
        "caffe")},
    "wgms": "xfacies.massbalance.wgms",
}

__all__ = ["CLASSES", "FEATURES", "FEATURE_SETS", "NODATA", "__version__", "set_options", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'xfacies' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


# Register the .facies accessor (cheap: it imports no stage until a method is called).
from xfacies import accessor as _accessor  # noqa: E402,F401

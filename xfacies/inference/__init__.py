"""Inference: the chunk-by-chunk engine and how models reach Dask workers.

:mod:`xfacies.inference.engine` holds :func:`predict_proba` and :func:`classify`
(dense and exact, halos, smoothing, confidence); :mod:`xfacies.inference.windows`
reads storage-backed inputs window by window; :mod:`xfacies.inference.distribute`
ships bundles to workers (tasks carry a path, never the model).

This core needs numpy, xarray, dask and Keras only: no GDAL stack (outlines as
vectors need rasterio, and are rasterised by :mod:`xfacies.outlines`
only when given).
"""

from xfacies.halo import ChunkWarning
from xfacies.inference.engine import classify, predict_proba, prepare_features, smooth_mode

__all__ = ["predict_proba", "classify", "smooth_mode", "prepare_features", "ChunkWarning"]

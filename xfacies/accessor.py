"""The ``.facies`` accessor on DataArrays and Datasets (registered by ``import xfacies``).

The accessor only forwards to plain functions (as odc-geo's ``.odc`` and
rioxarray's ``.rio`` do); every method is also available as a function:

=========================  ==========================================
accessor                   function
=========================  ==========================================
``.facies.features``       :func:`xfacies.features.features`
``.facies.predict_proba``  :func:`xfacies.inference.predict_proba`
``.facies.classify``       :func:`xfacies.inference.classify`
``.facies.fractions``      :func:`xfacies.products.fractions`
``.facies.plot``           :func:`xfacies.plot.facies_map`
=========================  ==========================================

Examples
--------
>>> import xfacies
>>> scene = xfacies.synthetic.scene(size=128)                                   # doctest: +SKIP
>>> facies = scene.features.facies.classify("demo", outlines=xfacies.synthetic.outlines(128))  # doctest: +SKIP
>>> facies.facies.fractions(xfacies.synthetic.outlines(128))                    # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import xarray as xr

__all__ = ["FaciesAccessor", "FaciesDatasetAccessor"]


def _forward(module: str, name: str) -> Callable[..., Any]:
    """A method that calls ``module.name(self._obj, *args, **kwargs)``."""

    def method(self: "_Base", *args: Any, **kwargs: Any) -> Any:
        func = getattr(importlib.import_module(module), name)
        return func(self._obj, *args, **kwargs)

    method.__name__ = name
    method.__qualname__ = f"FaciesAccessor.{name}"
    method.__doc__ = f"Forwarded to :func:`{module}.{name}` with this object as first argument."
    return method


class _Base:
    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    predict_proba = _forward("xfacies.inference", "predict_proba")
    classify = _forward("xfacies.inference", "classify")
    fractions = _forward("xfacies.products", "fractions")


@xr.register_dataarray_accessor("facies")
class FaciesAccessor(_Base):
    """``DataArray.facies``: features -> probabilities/classes; class maps -> fractions, plots."""

    features = _forward("xfacies.features", "features")
    plot = _forward("xfacies.plot", "facies_map")


@xr.register_dataset_accessor("facies")
class FaciesDatasetAccessor(_Base):
    """``Dataset.facies``: a Dataset of features (``features`` variable or one variable per
    feature), or the output of ``classify(confidence=True)`` (its ``classes`` variable is used
    for fractions)."""

    def fractions(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        from xfacies.products import fractions

        obj = self._obj["classes"] if "classes" in self._obj.data_vars else self._obj
        return fractions(obj, *args, **kwargs)



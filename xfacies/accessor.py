"""The ``.facies`` accessor on DataArrays and Datasets (registered by ``import xfacies``).

The accessor only forwards to plain functions (as odc-geo's ``.odc`` and
rioxarray's ``.rio`` do), and each method carries the signature and docstring of
its function, so ``help(da.facies.classify)`` and tab completion show the real
parameters.  The function's module is imported when the method is first looked
up, so ``import xfacies`` stays light.

=========================  ==================================================
accessor                   function
=========================  ==================================================
``.facies.features``       :func:`xfacies.features.compute.features`
``.facies.predict_proba``  :func:`xfacies.inference.engine.predict_proba`
``.facies.classify``       :func:`xfacies.inference.engine.classify`
``.facies.fractions``      :func:`xfacies.products.fractions.fractions`
``.facies.plot``           :func:`xfacies.plot.facies_map`
=========================  ==================================================

Examples
--------
>>> import inspect, xarray as xr, xfacies
>>> list(inspect.signature(xr.DataArray([0]).facies.classify).parameters)[:3]
['model', 'outlines', 'method']
>>> scene = xfacies.synthetic.scene(size=128)                                   # doctest: +SKIP
>>> facies = scene.features.facies.classify("demo", outlines=xfacies.synthetic.outlines(128))  # doctest: +SKIP
>>> facies.facies.fractions(xfacies.synthetic.outlines(128))                    # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from typing import Any, Callable

import xarray as xr

__all__ = ["FaciesAccessor", "FaciesDatasetAccessor"]


class _Forward:
    """A method that calls ``module.name(obj, *args, **kwargs)`` with the function's own
    signature (less its first parameter) and docstring; ``select`` picks what of the
    accessor's object is passed (e.g. a Dataset's ``classes`` variable)."""

    def __init__(self, module: str, name: str, select: Callable[[Any], Any] | None = None) -> None:
        self.module, self.name, self.select = module, name, select
        self._method: Callable[..., Any] | None = None

    def __set_name__(self, owner: type, attr: str) -> None:
        self.owner = owner.__name__

    def method(self) -> Callable[..., Any]:
        if self._method is None:
            func = getattr(importlib.import_module(self.module), self.name)
            select = self.select

            @functools.wraps(func)
            def method(acc: _Base, *args: Any, **kwargs: Any) -> Any:
                obj = acc._obj if select is None else select(acc._obj)
                return func(obj, *args, **kwargs)

            sig = inspect.signature(func)
            params = list(sig.parameters.values())
            method.__signature__ = sig.replace(  # type: ignore[attr-defined]
                parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *params[1:]])
            method.__qualname__ = f"{self.owner}.{self.name}"
            method.__doc__ = (
                f"Accessor form of :func:`{self.module}.{self.name}`: ``obj.facies.{self.name}(...)`` "
                f"is ``{self.name}(obj, ...)``, this object being ``{params[0].name}``.\n\n"
                + inspect.cleandoc(func.__doc__ or ""))
            self._method = method
        return self._method

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        m = self.method()
        return m if obj is None else types.MethodType(m, obj)


class _Base:
    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    predict_proba = _Forward("xfacies.inference.engine", "predict_proba")
    classify = _Forward("xfacies.inference.engine", "classify")


@xr.register_dataarray_accessor("facies")
class FaciesAccessor(_Base):
    """``DataArray.facies``: features -> probabilities/classes; class maps -> fractions, plots."""

    features = _Forward("xfacies.features.compute", "features")
    fractions = _Forward("xfacies.products.fractions", "fractions")
    plot = _Forward("xfacies.plot", "facies_map")


def _classes(ds: xr.Dataset) -> Any:
    return ds["classes"] if "classes" in ds.data_vars else ds


@xr.register_dataset_accessor("facies")
class FaciesDatasetAccessor(_Base):
    """``Dataset.facies``: a Dataset of features (``features`` variable or one variable per
    feature), or the output of ``classify(confidence=True)`` (its ``classes`` variable is used
    for fractions)."""

    fractions = _Forward("xfacies.products.fractions", "fractions", select=_classes)

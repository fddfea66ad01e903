"""Features: the reference's glacier context features, computed blockwise.

=============  ==================================================================
module         concern
=============  ==================================================================
``compute``    :func:`features` (a reflectance cube + DEM + outlines),
               :func:`terrain_features` (the terrain ones on a grid, no imagery) and
               :func:`static_features` (the date-independent ones, to store per grid)
``terrain``    Horn slope, aspect, hillshade, line-of-sight cast shadow (NumPy kernels)
``proximity``  the exact distance to the outline edges
``elevation``  the DEM normalised inside the outlines
``sun``        sun angles read and checked (degrees, above the horizon)
``dem_input``  a DEM on the cube's grid (voids masked, reprojected with odc-geo)
=============  ==================================================================

``xfacies.features`` is also what users call: ``xfacies.features(cube, dem, outlines)`` is
:func:`xfacies.features.compute.features` (same signature and docstring).  Importing the
package imports none of its modules, so ``import xfacies.features.terrain`` (NumPy kernels)
loads no GDAL stack.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from xfacies._lazy import names as _lazy_names

#: Public name -> module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "features": "xfacies.features.compute",
    "terrain_features": "xfacies.features.compute",
    "static_features": "xfacies.features.compute",
    "STATIC_FEATURES": "xfacies.features.compute",
    "DEFAULT_SHADOW_CAP": "xfacies.features.compute",
    "ShadowCapWarning": "xfacies.features.compute",
    "ElevationRangeWarning": "xfacies.features.elevation",
    "DemVoidWarning": "xfacies.features.dem_input",
    "edge_distance": "xfacies.features.proximity",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = _lazy_names(__name__, _LAZY, globals())


class _FeaturesPackage(types.ModuleType):
    """The ``xfacies.features`` package, callable as :func:`xfacies.features.compute.features`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from xfacies.features.compute import features

        return features(*args, **kwargs)

    @property
    def __signature__(self) -> Any:
        import inspect

        from xfacies.features.compute import features

        return inspect.signature(features)


sys.modules[__name__].__class__ = _FeaturesPackage

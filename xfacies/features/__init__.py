"""Features: the reference's glacier context features, computed blockwise.

:func:`features` (in :mod:`xfacies.features.compute`) assembles reflectance,
elevation, slope, hillshade, cast shadow and proximity; the terrain kernels
live in :mod:`xfacies.features.terrain`, the exact edge distance in
:mod:`xfacies.features.proximity`.
"""

from xfacies.features.compute import DEFAULT_SHADOW_CAP, ShadowCapWarning, features
from xfacies.features.proximity import edge_distance

__all__ = ["features", "DEFAULT_SHADOW_CAP", "ShadowCapWarning", "edge_distance"]

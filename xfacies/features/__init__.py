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
"""

from xfacies.features.compute import (
    DEFAULT_SHADOW_CAP, STATIC_FEATURES, ShadowCapWarning, features, static_features, terrain_features,
)
from xfacies.features.dem_input import DemVoidWarning
from xfacies.features.elevation import ElevationRangeWarning
from xfacies.features.proximity import edge_distance

__all__ = ["features", "terrain_features", "static_features", "STATIC_FEATURES", "DEFAULT_SHADOW_CAP",
           "ShadowCapWarning", "ElevationRangeWarning", "DemVoidWarning", "edge_distance"]

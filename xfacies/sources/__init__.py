"""Sources: where pixels and outlines come from.

=================  ==========================================================
module             concern
=================  ==========================================================
``sensors``        the sensor / collection / radiometry table (asset keys, scale and offset, masks)
``stac``           lazy reflectance cubes from STAC APIs (:func:`open_stac`)
``rasters``        lazy reflectance cubes from your own files (:func:`open_rasters`)
``dem``            DEMs on the working grid (:func:`open_dem`)
``outlines``       moved to :mod:`xfacies.outlines` (an alias for one release)
``stac_server``    a local STAC API (``rustac``) over your own COGs, items built with pystac
=================  ==========================================================

Nothing here is imported by the model or inference core (this stage needs the
GDAL stack: rasterio, rioxarray, pyproj, geopandas, shapely, odc, pystac).
"""

from xfacies._lazy import submodules as _submodules

__getattr__ = _submodules(__name__)  # xfacies.sources.<module>, imported on first access

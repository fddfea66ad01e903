"""Sources: where pixels and outlines come from.

=================  ==========================================================
module             concern
=================  ==========================================================
``sensors``        the sensor / collection / radiometry table (asset keys, scale and offset, masks)
``stac``           lazy reflectance cubes from STAC APIs (:func:`open_stac`)
``dem``            DEMs on the working grid (:func:`open_dem`)
``outlines``       glacier outlines: reading, rasterising, cropping
``stac_server``    a local STAC API (``rustac``) over your own COGs, items built with pystac
=================  ==========================================================

Nothing here is imported by the model or inference core (this stage needs the
GDAL stack: rasterio, rioxarray, pyproj, geopandas, shapely, odc, pystac).
"""

import importlib as _importlib


def __getattr__(name: str):  # submodules on first access (xfacies.sources.<module>), imported lazily
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None

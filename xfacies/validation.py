"""Input checks shared by the features and inference modules (errors that say how to fix)."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["require_float"]


def require_float(obj: xr.DataArray, what: str) -> None:
    """Refuse integer (digital-number) input where reflectance is expected.

    Examples
    --------
    >>> require_float(xr.DataArray(np.zeros(2, "uint16")), "cube")
    Traceback (most recent call last):
    ...
    TypeError: cube has integer dtype uint16; xfacies expects floating-point reflectance (0..1) and physical features. Apply the sensor's scale/offset first (e.g. Landsat C2: DN * 2.75e-5 - 0.2; Sentinel-2 L2A: (DN - offset) * 1e-4).
    """
    if np.issubdtype(obj.dtype, np.integer) or obj.dtype == bool:
        raise TypeError(
            f"{what} has integer dtype {obj.dtype}; xfacies expects floating-point "
            "reflectance (0..1) and physical features. Apply the sensor's scale/offset first "
            "(e.g. Landsat C2: DN * 2.75e-5 - 0.2; Sentinel-2 L2A: (DN - offset) * 1e-4)."
        )

"""The feature stack: named layers put in a feature set's order, the one assembly of the package.

:func:`xfacies.features` (block by block), :mod:`xfacies.synthetic` (its simulated scenes) and
``xfacies apply`` (rasters given as files) each produce the layers their own way, and all three
stack them here: the order is the feature set's (:data:`xfacies.catalog.FEATURE_SETS`), the dtype
float32, and every band is NaN where an optical band is NaN (a missing observation must not
reach a model as terrain alone).  The normalisations are shared too:
:func:`xfacies.features.elevation.normalise_elevation` and
:func:`xfacies.features.proximity.normalise_proximity`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xfacies import catalog
from xfacies.errors import InputError

__all__ = ["stack_features"]


def _is_dask(x: Any) -> bool:
    return hasattr(x, "dask") and hasattr(x, "chunks")


def stack_features(names: Sequence[str], layers: Mapping[str, Any], *,
                   nodata_from: Sequence[str] | None = None) -> Any:
    """Stack 2-D layers into a ``(band, y, x)`` float32 feature array in the order of ``names``.

    Parameters
    ----------
    names
        The features wanted, in order (e.g. ``xfacies.FEATURE_SETS[4]``).
    layers
        One 2-D array per name (NumPy or dask, all of one shape); extra entries are ignored.
    nodata_from
        The layers whose NaN marks a missing observation: every output band is NaN where any of
        them is.  Default: the optical bands among ``layers``.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float32 ``(len(names), y, x)``; dask when any layer used is.

    Raises
    ------
    InputError
        A name without a layer.

    Examples
    --------
    >>> refl = {b: np.full((2, 2), 0.5) for b in ("blue", "green", "red", "nir", "swir1", "swir2")}
    >>> refl["red"][0, 0] = np.nan
    >>> x = stack_features(["red", "slope"], {**refl, "slope": np.array([[10.0, 20.0], [30.0, 40.0]])})
    >>> x.dtype, x.shape, x[1].tolist()
    (dtype('float32'), (2, 2, 2), [[nan, 20.0], [30.0, 40.0]])
    """
    missing = [n for n in names if n not in layers]
    if missing:
        raise InputError(f"no layer for feature(s) {missing} (given: {sorted(layers)}); the feature set "
                         f"{list(names)} needs one 2-D array each")
    if nodata_from is None:
        nodata_from = [b for b in catalog.OPTICAL_FEATURES if b in layers]
    used = [layers[n] for n in names]
    masks = [layers[n] for n in nodata_from]
    if any(_is_dask(x) for x in used + masks):
        import dask.array as da

        out = da.stack([da.asarray(x).astype(np.float32) for x in used])
        if masks:
            gone = da.stack([da.isnan(da.asarray(m)) for m in masks]).any(axis=0)
            out = da.where(gone[None], np.float32(np.nan), out)
        return out
    first = np.asarray(used[0]) if used else np.asarray(masks[0])
    out = np.empty((len(used),) + first.shape[-2:], dtype=np.float32)
    for i, x in enumerate(used):
        out[i] = x
    if masks:
        gone = np.zeros(out.shape[1:], bool)
        for m in masks:
            gone |= np.isnan(m)
        out[:, gone] = np.nan
    return out

"""Sensors and radiometry as data: one table per STAC provider and collection.

Everything that :func:`xfacies.sources.stac.open_stac` needs to turn the raw digital
numbers (DN) of a STAC collection into surface reflectance lives here, as
frozen dataclasses rather than ``if`` chains:

* :class:`CollectionSpec` - asset keys of the cube's bands, dtype, nodata,
  scale/offset, the Sentinel-2 processing-baseline rule, the mask rules,
  the platforms (and their instruments) and the resampling;
* :class:`MaskRule` - which values or bits of a quality asset (SCL,
  QA_PIXEL) make a pixel invalid;
* :class:`Provider` - a STAC API (URL, URL signing, requester-pays) and its
  collections;
* :data:`PROVIDERS` - Earth Search and Planetary Computer.

The cube's band names are :data:`xfacies.catalog.OPTICAL_FEATURES`; the
tables map them to each provider's asset keys.

Radiometry (odc-stac applies none)::

    reflectance = (DN + baseline_offset_dn) * scale + offset

where ``baseline_offset_dn`` is only added for Sentinel-2 items whose
``s2:processing_baseline`` is at least ``04.00`` and whose provider does not
declare the offset itself.  When :attr:`CollectionSpec.use_raster_bands` is
true and an item's asset carries ``raster:bands`` ``scale``/``offset``, those
are used as they are (the provider declares the harmonisation, as Earth
Search's ``sentinel-2-c1-l2a`` does with offset -0.1) and no baseline rule is
applied on top.

Supplying a table for another collection or API::

    >>> from xfacies.sources.sensors import CollectionSpec, MaskRule, S2_SCL_MASK
    >>> spec = CollectionSpec(
    ...     "my-s2", "sentinel-2",
    ...     bands={"blue": "B02", "green": "B03", "red": "B04",
    ...            "nir": "B08", "swir1": "B11", "swir2": "B12"},
    ...     scale=1e-4, baseline_property="s2:processing_baseline",
    ...     baseline_offset_dn=-1000, mask=(S2_SCL_MASK.for_asset("SCL"),))
    >>> spec.assets()
    ('B02', 'B03', 'B04', 'B08', 'B11', 'B12', 'SCL')

and ``xfacies.open_stac(..., catalog=URL, collections={"my-s2": spec})``.

Examples
--------
>>> from xfacies.sources.sensors import PROVIDERS
>>> sorted(PROVIDERS)
['earth-search', 'planetary-computer']
>>> s2 = PROVIDERS["planetary-computer"].collections["sentinel-2-l2a"]
>>> s2.bands["swir1"], s2.baseline_offset_dn
('B11', -1000.0)
>>> s2.radiometry({"s2:processing_baseline": "04.00"})
(0.0001, -0.1)
>>> s2.radiometry({"s2:processing_baseline": "03.01"})
(0.0001, 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from xfacies.catalog import OPTICAL_FEATURES

__all__ = [
    "MaskRule",
    "CollectionSpec",
    "Provider",
    "PROVIDERS",
    "S2_SCL_MASK",
    "LANDSAT_QA_MASK",
    "SENSORS",
    "UNSUPPORTED",
    "baseline_at_least",
]

#: Sensor families understood by ``open_stac(sensors=...)``.
SENSORS: tuple[str, ...] = ("sentinel-2", "landsat")


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class MaskRule:
    """Invalid pixels from one quality asset.

    Parameters
    ----------
    asset
        Asset key of the quality band (``"scl"``, ``"SCL"``, ``"qa_pixel"``).
    invalid_values
        Class values that make a pixel invalid (categorical masks such as SCL).
    invalid_bits
        Bit positions that, when set, make a pixel invalid (bit masks such as
        QA_PIXEL).
    dtype, nodata
        Stored dtype and nodata value of the asset (given to odc-stac, which
        needs them when the item has no ``raster:bands``).
    description
        What is masked, for humans.

    Examples
    --------
    >>> import numpy as np
    >>> S2_SCL_MASK.invalid(np.array([0, 4, 8, 11], dtype=np.uint8)).tolist()
    [True, False, True, False]
    >>> LANDSAT_QA_MASK.invalid(np.array([1, 21824, 22280, 30048], dtype=np.uint16)).tolist()
    [True, False, True, False]
    """

    asset: str
    invalid_values: tuple[int, ...] = ()
    invalid_bits: tuple[int, ...] = ()
    dtype: str = "uint16"
    nodata: int | None = None
    description: str = ""

    def for_asset(self, asset: str) -> MaskRule:
        """The same rule for another asset key (e.g. ``"SCL"`` instead of ``"scl"``)."""
        return replace(self, asset=asset)

    def invalid(self, q: Any) -> Any:
        """Boolean invalid mask for quality values ``q`` (NumPy, dask or xarray)."""
        out = None
        if self.invalid_values:
            out = q == self.invalid_values[0]
            for v in self.invalid_values[1:]:
                out = out | (q == v)
        if self.invalid_bits:
            bits = int(np.bitwise_or.reduce([1 << b for b in self.invalid_bits]))
            hit = (q & np.asarray(bits, dtype=np.dtype(self.dtype))) != 0
            out = hit if out is None else out | hit
        if out is None:
            out = q != q  # nothing masked: all False, same shape/type
        return out


#: Sentinel-2 scene classification: mask no data (0), saturated/defective (1),
#: cloud shadow (3), cloud medium/high probability (8, 9) and thin cirrus (10);
#: keep dark/topographic shadow (2) and snow/ice (11), which are glacier surfaces.
S2_SCL_MASK = MaskRule(
    "scl", invalid_values=(0, 1, 3, 8, 9, 10), dtype="uint8", nodata=0,
    description="SCL 0 no data, 1 saturated/defective, 3 cloud shadow, 8/9 cloud, 10 cirrus",
)

#: Landsat Collection 2 QA_PIXEL: mask fill (bit 0), dilated cloud (1),
#: cirrus (2), cloud (3) and cloud shadow (4); never snow (bit 5), a facies.
#: Landsat saturation (``qa_radsat``) is deliberately *not* masked: TM/ETM+
#: visible bands saturate over fresh snow, and masking them would remove snow.
LANDSAT_QA_MASK = MaskRule(
    "qa_pixel", invalid_bits=(0, 1, 2, 3, 4), dtype="uint16", nodata=1,
    description="QA_PIXEL bits 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow",
)


def baseline_at_least(value: Any, minimum: str) -> bool:
    """Whether a processing baseline such as ``"04.00"`` (or ``4.0``) is >= ``minimum``.

    Examples
    --------
    >>> baseline_at_least("05.09", "04.00"), baseline_at_least("02.14", "04.00")
    (True, False)
    >>> baseline_at_least(None, "04.00")
    False
    """
    if value is None:
        return False
    try:
        return float(str(value)) >= float(minimum)
    except ValueError:
        return False


@dataclass(frozen=True)
class CollectionSpec:
    """How to read one STAC collection of one provider.

    Parameters
    ----------
    collection
        Collection id in the STAC API.
    sensor
        Sensor family: ``"sentinel-2"``, ``"landsat"`` or ``"dem"``.
    bands
        Cube band name (:data:`xfacies.catalog.OPTICAL_FEATURES`, or
        ``"elevation"`` for DEMs) -> asset key, in cube order.
    dtype, nodata
        Stored dtype and nodata of the band assets.
    scale, offset
        Default radiometric scaling, ``DN * scale + offset``.
    use_raster_bands
        Prefer per-item ``raster:bands`` ``scale``/``offset`` when present
        (the provider then owns the harmonisation; no baseline rule on top).
    baseline_property, baseline_min, baseline_offset_dn
        Sentinel-2 harmonisation: when the item property ``baseline_property``
        is >= ``baseline_min``, add ``baseline_offset_dn`` to the DN before
        scaling (-1000 for ESA baseline 04.00 and later).
    mask
        Mask rules (quality assets) combined with OR.
    platforms
        Platform name (lower case) -> instrument, for the platforms this
        table is valid for.  Empty: any platform.
    resampling
        odc-stac resampling for the bands (masks always use ``"nearest"``).
    requester_pays
        Assets are in a requester-pays bucket (AWS credentials needed).
    notes
        Free text shown in ``repr`` tables and error messages.

    Examples
    --------
    >>> spec = PROVIDERS["earth-search"].collections["landsat-c2-l2"]
    >>> spec.bands["nir"], spec.scale, spec.offset, spec.requester_pays
    ('nir08', 2.75e-05, -0.2, True)
    >>> spec.platforms["landsat-7"]
    'etm+'
    """

    collection: str
    sensor: str
    bands: Mapping[str, str]
    dtype: str = "uint16"
    nodata: float | None = 0
    scale: float = 1.0
    offset: float = 0.0
    use_raster_bands: bool = False
    baseline_property: str | None = None
    baseline_min: str = "04.00"
    baseline_offset_dn: float = 0.0
    mask: tuple[MaskRule, ...] = ()
    platforms: Mapping[str, str] = field(default_factory=dict)
    resampling: str = "nearest"
    requester_pays: bool = False
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", _frozen(self.bands))
        object.__setattr__(self, "platforms", _frozen({k.lower(): v for k, v in self.platforms.items()}))
        object.__setattr__(self, "mask", tuple(self.mask))
        object.__setattr__(self, "baseline_offset_dn", float(self.baseline_offset_dn))

    def __hash__(self) -> int:  # mappings are not hashable; identity of the content
        return hash((self.collection, self.sensor, tuple(self.bands.items()), self.mask))

    def assets(self) -> tuple[str, ...]:
        """All asset keys read: bands in cube order, then the mask assets."""
        return tuple(self.bands.values()) + tuple(m.asset for m in self.mask)

    def stac_cfg(self) -> dict[str, Any]:
        """odc-stac ``stac_cfg`` for this collection (dtype/nodata of every asset read)."""
        assets: dict[str, Any] = {
            a: {"data_type": self.dtype, "nodata": self.nodata, "unit": "1"} for a in self.bands.values()
        }
        for m in self.mask:
            assets[m.asset] = {"data_type": m.dtype, "nodata": m.nodata, "unit": "1"}
        return {self.collection: {"assets": assets}, "*": {"warnings": "ignore"}}

    def resampling_cfg(self, resampling: str | None = None) -> dict[str, str]:
        """Per-asset resampling: ``resampling`` (or the table's) for bands, nearest for masks."""
        r = resampling or self.resampling
        out = {a: r for a in self.bands.values()}
        out.update({m.asset: "nearest" for m in self.mask})
        return out

    def radiometry(self, properties: Mapping[str, Any],
                   raster_bands: Mapping[str, Mapping[str, Any]] | None = None,
                   band: str | None = None) -> tuple[float, float]:
        """``(scale, offset)`` to apply to the DN of one item (and band).

        Parameters
        ----------
        properties
            The item's properties (for the processing baseline).
        raster_bands
            Asset key -> the first ``raster:bands`` entry of that asset.
        band
            Cube band name; default the first band.

        Examples
        --------
        >>> es = PROVIDERS["earth-search"].collections["sentinel-2-c1-l2a"]
        >>> es.radiometry({"s2:processing_baseline": "05.00"},
        ...               {"blue": {"scale": 0.0001, "offset": -0.1}}, "blue")
        (0.0001, -0.1)
        """
        band = band or next(iter(self.bands))
        asset = self.bands[band]
        rb = (raster_bands or {}).get(asset) or {}
        if self.use_raster_bands and ("scale" in rb or "offset" in rb):
            return float(rb.get("scale", 1.0)), float(rb.get("offset", 0.0))
        offset = self.offset
        if self.baseline_property and baseline_at_least(properties.get(self.baseline_property),
                                                        self.baseline_min):
            offset = offset + self.baseline_offset_dn * self.scale
        return float(self.scale), float(round(offset, 12))

    def instrument(self, platform: str) -> str:
        """Instrument of a platform (``""`` when unknown)."""
        return self.platforms.get(platform.lower(), "")


@dataclass(frozen=True)
class Provider:
    """A STAC API and the collections xfacies knows how to read from it.

    Parameters
    ----------
    name
        Short name (``catalog=`` argument of :func:`xfacies.open_stac`).
    url
        STAC API root.
    collections
        Collection id -> :class:`CollectionSpec`.
    signing
        ``"planetary-computer"`` when asset URLs need SAS signing, else ``None``.
    """

    name: str
    url: str
    collections: Mapping[str, CollectionSpec]
    signing: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "collections", _frozen(self.collections))

    def for_sensors(self, sensors: tuple[str, ...]) -> dict[str, CollectionSpec]:
        """Collections of the given sensor families, in table order."""
        return {k: v for k, v in self.collections.items() if v.sensor in sensors}


_S2_PLATFORMS = {"sentinel-2a": "msi", "sentinel-2b": "msi", "sentinel-2c": "msi"}
_LANDSAT_PLATFORMS = {"landsat-4": "tm", "landsat-5": "tm", "landsat-7": "etm+",
                      "landsat-8": "oli", "landsat-9": "oli"}
_LANDSAT_KEYS = ("blue", "green", "red", "nir08", "swir16", "swir22")
_ES_S2_KEYS = ("blue", "green", "red", "nir", "swir16", "swir22")
_PC_S2_KEYS = ("B02", "B03", "B04", "B08", "B11", "B12")


def _landsat(requester_pays: bool) -> CollectionSpec:
    return CollectionSpec(
        "landsat-c2-l2", "landsat", dict(zip(OPTICAL_FEATURES, _LANDSAT_KEYS)),
        dtype="uint16", nodata=0, scale=2.75e-5, offset=-0.2, use_raster_bands=False,
        mask=(LANDSAT_QA_MASK,), platforms=_LANDSAT_PLATFORMS, resampling="nearest",
        requester_pays=requester_pays,
        notes="Landsat 4/5 TM, 7 ETM+, 8/9 OLI Collection 2 Level-2; 30 m, resampled to the cube grid",
    )


def _cop_dem(name: str) -> CollectionSpec:
    return CollectionSpec(name, "dem", {"elevation": "data"}, dtype="float32", nodata=None,
                          resampling="bilinear", notes="Copernicus DEM, float32 metres, 1x1 degree tiles")


PROVIDERS: Mapping[str, Provider] = _frozen({
    "earth-search": Provider(
        "earth-search", "https://earth-search.aws.element84.com/v1",
        {
            "sentinel-2-c1-l2a": CollectionSpec(
                "sentinel-2-c1-l2a", "sentinel-2", dict(zip(OPTICAL_FEATURES, _ES_S2_KEYS)),
                dtype="uint16", nodata=0, scale=1e-4, offset=0.0, use_raster_bands=True,
                baseline_property="s2:processing_baseline", baseline_offset_dn=-1000,
                mask=(S2_SCL_MASK,), platforms=_S2_PLATFORMS, resampling="nearest",
                notes="offset declared in raster:bands (-0.1 for baseline >= 04.00); never applied in the pixels",
            ),
            "landsat-c2-l2": _landsat(requester_pays=True),
            "cop-dem-glo-30": _cop_dem("cop-dem-glo-30"),
            "cop-dem-glo-90": _cop_dem("cop-dem-glo-90"),
        },
    ),
    "planetary-computer": Provider(
        "planetary-computer", "https://planetarycomputer.microsoft.com/api/stac/v1",
        {
            "sentinel-2-l2a": CollectionSpec(
                "sentinel-2-l2a", "sentinel-2", dict(zip(OPTICAL_FEATURES, _PC_S2_KEYS)),
                dtype="uint16", nodata=0, scale=1e-4, offset=0.0, use_raster_bands=False,
                baseline_property="s2:processing_baseline", baseline_offset_dn=-1000,
                mask=(S2_SCL_MASK.for_asset("SCL"),),
                platforms=_S2_PLATFORMS, resampling="nearest",
                notes="no raster:bands; not harmonised: -1000 DN for s2:processing_baseline >= 04.00",
            ),
            "landsat-c2-l2": _landsat(requester_pays=False),
            "cop-dem-glo-30": _cop_dem("cop-dem-glo-30"),
            "cop-dem-glo-90": _cop_dem("cop-dem-glo-90"),
        },
        signing="planetary-computer",
    ),
})

#: Collections that exist but that xfacies refuses, with the reason.
UNSUPPORTED: Mapping[tuple[str, str], str] = _frozen({
    ("earth-search", "sentinel-2-l2a"): (
        "Earth Search's v1 'sentinel-2-l2a' has the baseline offset already subtracted in some "
        "COGs (earthsearch:boa_offset_applied, itself wrong for some scenes), which is unsafe for "
        "time series; use 'sentinel-2-c1-l2a'"
    ),
})

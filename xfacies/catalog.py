"""The one catalogue: classes, features and feature sets.

Every other module reads class ids, names, colours, feature names and feature
sets from here; nothing else in xfacies spells them out.  The order of
:data:`CLASSES` is the softmax order of the reference CNN, the order of
:data:`FEATURES` is its input-channel order.

Examples
--------
>>> import xfacies
>>> [c.name for c in xfacies.CLASSES][:3]
['ice', 'snow', 'debris']
>>> xfacies.FEATURE_SETS[4][-1]
'proximity'
>>> xfacies.catalog.class_flag_attrs()["flag_meanings"].split()[:2]
['no_data', 'ice']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xfacies.errors import InputError

__all__ = [
    "CLASSES",
    "FEATURES",
    "FEATURE_SETS",
    "NODATA",
    "FaciesClass",
    "Feature",
    "class_names",
    "class_colors",
    "class_flag_attrs",
    "class_color",
    "map_classes",
    "feature_set",
    "band_names",
    "FACIES_CLASSES",
    "SAR_FEATURES",
    "ZONES",
    "ZoneClass",
    "zone_flag_attrs",
]

#: Value of an int8 class map where nothing was classified (outside outlines,
#: missing inputs).  It is listed in ``flag_values`` so that it is a real,
#: documented value rather than a ``_FillValue`` (which would turn int8 maps
#: into float32 on reading).
NODATA: int = -1


@dataclass(frozen=True)
class FaciesClass:
    """One output class of a facies classifier."""

    id: int
    name: str
    color: str
    kind: str  # "facies" or "miscellaneous"
    description: str

    @property
    def flag_meaning(self) -> str:
        """CF ``flag_meanings`` word (letters, digits and underscores only)."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Feature:
    """One input feature (channel) of a facies classifier."""

    index: int
    name: str
    units: str
    description: str


CLASSES: tuple[FaciesClass, ...] = (
    FaciesClass(0, "ice", "#4f9bd9", "facies", "bare glacier ice"),
    FaciesClass(1, "snow", "#b99cf2", "facies", "seasonal snow"),
    FaciesClass(2, "debris", "#8c6d46", "facies", "supraglacial debris"),
    FaciesClass(3, "firn", "#b7d3e8", "facies", "firn (multi-year snow)"),
    FaciesClass(4, "shadow", "#2e3440", "miscellaneous", "cast or deep topographic shadow"),
    FaciesClass(5, "refrozen-like", "#7fd1c7", "facies", "refrozen / superimposed-like ice"),
    FaciesClass(6, "water", "#1f3fbf", "miscellaneous", "supraglacial water, melt ponds"),
    FaciesClass(7, "cloud", "#c9c9c9", "miscellaneous", "cloud"),
)

#: Ids of the glaciological facies (ice, snow, debris, firn, refrozen-like).
FACIES_CLASSES: tuple[int, ...] = tuple(c.id for c in CLASSES if c.kind == "facies")

FEATURES: tuple[Feature, ...] = (
    Feature(0, "blue", "reflectance", "surface reflectance, blue band"),
    Feature(1, "green", "reflectance", "surface reflectance, green band"),
    Feature(2, "red", "reflectance", "surface reflectance, red band"),
    Feature(3, "nir", "reflectance", "surface reflectance, near infrared"),
    Feature(4, "swir1", "reflectance", "surface reflectance, shortwave infrared 1.6 um"),
    Feature(5, "swir2", "reflectance", "surface reflectance, shortwave infrared 2.2 um"),
    Feature(6, "elevation", "1", "elevation min-max normalised inside the glacier outlines"),
    Feature(7, "slope", "degree", "terrain slope (Horn)"),
    Feature(8, "shadow_mask", "1", "cast-shadow mask, 1 = sunlit, 0 = cast shadow"),
    Feature(9, "hillshade", "1", "hillshade for the acquisition's sun position, 0..1"),
    Feature(10, "proximity", "1", "distance to the outline edge divided by its scene maximum"),
)

#: Input channels of SAR models (the CaFFe zone segmentation, :mod:`xfacies.caffe`).  They are
#: not facies features: :data:`FEATURES` stays the reference CNN's channel order.
SAR_FEATURES: tuple[Feature, ...] = (
    Feature(0, "sar", "1", "SAR backscatter amplitude, 8-bit grey value 1..255 (NaN = no data)"),
)


@dataclass(frozen=True)
class ZoneClass:
    """One zone class of the CaFFe calving-front benchmark.

    ``grey`` is the benchmark's grey value in its zone PNGs (the contract: class-index
    orders differ between implementations); ``id`` is xfacies' int8 class id.
    """

    id: int
    name: str
    grey: int
    color: str
    description: str


#: The CaFFe zone classes, id = softmax order of xfacies' zone models.
ZONES: tuple[ZoneClass, ...] = (
    ZoneClass(0, "NA", 0, "#303030", "no information: radar shadow, layover"),
    ZoneClass(1, "rock", 64, "#a0785a", "rock outcrop"),
    ZoneClass(2, "glacier", 127, "#dbe9f6", "glacier ice"),
    ZoneClass(3, "ocean", 254, "#1f4e9c", "ocean including ice melange"),
)


def zone_flag_attrs(long_name: str = "CaFFe zone") -> dict[str, Any]:
    """CF categorical attributes for an int8 zone map (0 = NA is a class, not nodata).

    Examples
    --------
    >>> zone_flag_attrs()["flag_meanings"]
    'NA rock glacier ocean'
    """
    return {
        "long_name": long_name,
        "flag_values": np.array([z.id for z in ZONES], dtype=np.int8),
        "flag_meanings": " ".join(z.name for z in ZONES),
        "flag_colors": " ".join(z.color for z in ZONES),
        "grey_values": np.array([z.grey for z in ZONES], dtype=np.uint8),
    }


_OPTICAL = tuple(f.name for f in FEATURES[:6])

#: The reference feature sets (1-4), each a tuple of feature names in order.
FEATURE_SETS: dict[int, tuple[str, ...]] = {
    1: _OPTICAL,
    2: _OPTICAL + ("elevation", "slope"),
    3: _OPTICAL + ("elevation", "slope", "shadow_mask", "hillshade"),
    4: _OPTICAL + ("elevation", "slope", "shadow_mask", "hillshade", "proximity"),
}

#: The optical (reflectance) features.
OPTICAL_FEATURES: tuple[str, ...] = _OPTICAL


def class_names() -> list[str]:
    """Class names in class-id order.

    Examples
    --------
    >>> class_names()[5]
    'refrozen-like'
    """
    return [c.name for c in CLASSES]


def class_colors() -> list[str]:
    """Class colours (hex) in class-id order."""
    return [c.color for c in CLASSES]


def band_names(which: int | str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A model's input bands: a reference feature set (1-4), or any band names of yours.

    Unlike :func:`feature_set` (the features xfacies can *compute*), a model may read any bands a
    cube has, in your names (``"nir08"``, ``"ndsi"``, ``"B11"``); the catalogue's names keep
    their meaning (optical ones are reflectance, checked as such).

    Raises
    ------
    ValueError
        An unknown set number, an empty list, or a name given twice or that is not text.

    Examples
    --------
    >>> band_names(1)[:2], band_names(["blue", "nir08"])
    (('blue', 'green'), ('blue', 'nir08'))
    """
    if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
        return feature_set(which)
    names = (which,) if isinstance(which, str) else tuple(which)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise InputError(f"band names must be non-empty text, got {list(names)!r}")
    if len(set(names)) != len(names):
        raise InputError(f"band names must be distinct, got {list(names)}")
    return names


def feature_set(which: int | str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Resolve a feature-set number or a list of feature names to validated names.

    Parameters
    ----------
    which
        1-4 for a reference feature set, or an iterable of feature names.

    Raises
    ------
    ValueError
        For an unknown set number or unknown feature names (the message lists
        the valid ones).

    Examples
    --------
    >>> feature_set(2)
    ('blue', 'green', 'red', 'nir', 'swir1', 'swir2', 'elevation', 'slope')
    """
    if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
        if int(which) not in FEATURE_SETS:
            raise InputError(
                f"feature_set={which!r} is not a reference feature set; use one of "
                f"{sorted(FEATURE_SETS)} or a list of feature names"
            )
        return FEATURE_SETS[int(which)]
    names = (which,) if isinstance(which, str) else tuple(which)
    known = [f.name for f in FEATURES + SAR_FEATURES]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown feature name(s) {unknown}; valid features are {known}")
    return names


#: Colours for classes that are not in the catalogue (a user's own classes), in their order.
_OTHER_COLORS: tuple[str, ...] = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                                  "#a6761d", "#666666", "#8dd3c7", "#fb8072", "#80b1d3", "#fdb462")


def _flag_word(name: str) -> str:
    """CF ``flag_meanings`` word of a class name (letters, digits and underscores)."""
    import re

    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def class_color(name: str, index: int = 0) -> str:
    """Hex colour of a class: the catalogue's for its classes, else one of a fixed palette by
    ``index`` (the class's position among a model's classes).

    Examples
    --------
    >>> class_color("snow"), class_color("clean_ice", 1)
    ('#b99cf2', '#d95f02')
    """
    for c in CLASSES:
        if name in (c.name, c.flag_meaning):
            return c.color
    return _OTHER_COLORS[index % len(_OTHER_COLORS)]


def class_flag_attrs(long_name: str = "glacier surface facies",
                     classes: "tuple[str, ...] | list[str] | None" = None) -> dict[str, Any]:
    """CF categorical attributes for an int8 class map (nodata listed as a flag).

    Parameters
    ----------
    long_name
        The map's ``long_name``.
    classes
        The class names in id order (a model's :attr:`xfacies.Model.classes`: class ``i`` is its
        ``i``-th softmax output).  ``None``: the catalogue's :data:`CLASSES`.

    Examples
    --------
    >>> a = class_flag_attrs()
    >>> a["flag_values"][:3].tolist()
    [-1, 0, 1]
    >>> class_flag_attrs(classes=["snow", "ice"])["flag_meanings"]
    'no_data snow ice'
    """
    names = [c.name for c in CLASSES] if classes is None else [str(n) for n in classes]
    if not names or len(set(names)) != len(names) or len(names) > 127:
        raise InputError(f"classes must be 1..127 distinct names, got {names!r}")
    words = [_flag_word(n) for n in names]
    if len(set(words)) != len(words):
        raise InputError(f"class names {names!r} give the same CF flag word twice ({words}); rename one")
    return {
        "long_name": long_name,
        "flag_values": np.array([NODATA] + list(range(len(names))), dtype=np.int8),
        "flag_meanings": " ".join(["no_data"] + words),
        "flag_colors": " ".join(["#00000000"] + [class_color(n, i) for i, n in enumerate(names)]),
        "nodata": NODATA,
    }


def map_classes(obj: Any = None) -> tuple[tuple[int, str, str], ...]:
    """``(id, name, colour)`` of each class of a class map, read from its CF flags.

    A map from :func:`xfacies.classify` carries the classes of the model that made it (its
    ``flag_values`` / ``flag_meanings`` / ``flag_colors``): they, not the catalogue, say what each
    id means.  Catalogue names come back in their catalogue spelling (``refrozen-like``); a map
    without flags is read with the catalogue.

    Examples
    --------
    >>> import xarray as xr
    >>> m = xr.DataArray(np.zeros((2, 2), "int8"), dims=("y", "x"),
    ...                  attrs=class_flag_attrs(classes=["snow", "refrozen-like", "clean_ice"]))
    >>> [(i, n) for i, n, _ in map_classes(m)]
    [(0, 'snow'), (1, 'refrozen-like'), (2, 'clean_ice')]
    >>> map_classes(None)[1][:2]
    (1, 'snow')
    """
    attrs = getattr(obj, "attrs", None) or {}
    if "flag_meanings" not in attrs or "flag_values" not in attrs:
        return tuple((c.id, c.name, c.color) for c in CLASSES)
    words = str(attrs["flag_meanings"]).split()
    values = [int(v) for v in np.atleast_1d(np.asarray(attrs["flag_values"]))]
    if len(words) != len(values):
        raise InputError(f"the class map's flag_meanings ({len(words)} words) and flag_values ({len(values)} "
                         "values) do not match; repair its attributes or drop both to use the catalogue")
    colours = str(attrs.get("flag_colors", "")).split()
    colours = colours if len(colours) == len(words) else [""] * len(words)
    by_word = {c.flag_meaning: c.name for c in CLASSES}
    out = []
    for k, (v, w, col) in enumerate(zip(values, words, colours)):
        if v == NODATA or w == "no_data":
            continue
        if v < 0:
            raise InputError(f"the class map's flag_values hold {v} for {w!r}; class ids are 0 or more")
        name = by_word.get(w, w)
        out.append((v, name, col or class_color(name, len(out))))
    return tuple(sorted(out))

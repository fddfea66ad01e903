"""CaFFe file names: ``<glacier>_<YYYY-MM-DD>_<satellite>_<resolution>_<quality>_<orbit>``.

Every file of the benchmark is named after its SAR image's *stem*; the masks add ``_zones`` or
``_front``.  :func:`parse_stem` turns a stem, a file name or a path into a :class:`Stem`, whose
properties give the groupings of the benchmark's breakdowns (hemisphere, season, sensor).

Examples
--------
>>> from xfacies.caffe.names import parse_stem
>>> s = parse_stem("data_raw/zones/test/COL_2011-11-05_TSX_7_2_022_zones.png")
>>> s.glacier, s.date.isoformat(), s.sensor, s.resolution, s.season
('COL', '2011-11-05', 'TSX/TDX', 7, 'winter')
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import PurePath

from xfacies.errors import InputError

__all__ = [
    "Stem",
    "parse_stem",
    "SATELLITES",
    "GLACIERS",
    "NORTHERN_GLACIERS",
    "TEST_GLACIERS",
    "GLACIER_EXTENT_KM",
    "benchmark_split",
    "MASK_SUFFIXES",
]

#: Satellite tokens of the benchmark's file names.
SATELLITES: tuple[str, ...] = ("ERS", "RSAT", "ENVISAT", "PALSAR", "TSX", "TDX", "S1")

#: The benchmark's glaciers (file-name token -> name).  Other glacier tokens are accepted.
GLACIERS: dict[str, str] = {
    "COL": "Columbia Glacier, Alaska",
    "JAC": "Jakobshavn Isbrae, Greenland",
    "Mapple": "Mapple Glacier, Antarctic Peninsula",
    "Crane": "Crane Glacier, Antarctic Peninsula",
    "Jorum": "Jorum Glacier, Antarctic Peninsula",
    "DBE": "Dinsmoor-Bombardier-Edgeworth glacier system, Antarctic Peninsula",
    "SI": "Sjogren-Inlet glacier system, Antarctic Peninsula",
}

#: The fixed area (width, height in km) that each glacier's images cover, whatever the sensor (the
#: nnU-Net calving-front study's dataset figure): a 256 x 256 resized image of it has pixels of
#: ``(width / 256, height / 256)`` km.
GLACIER_EXTENT_KM: dict[str, tuple[float, float]] = {
    "COL": (32.0, 15.0), "Mapple": (8.0, 8.0), "Crane": (19.0, 25.0), "Jorum": (20.0, 13.0),
    "DBE": (22.0, 20.0), "SI": (23.0, 19.0), "JAC": (16.0, 19.0),
}

#: Glaciers of the northern hemisphere (all others are southern).
NORTHERN_GLACIERS: frozenset[str] = frozenset({"COL", "JAC"})

#: Glaciers of the benchmark's test split (they never appear in training).
TEST_GLACIERS: frozenset[str] = frozenset({"COL", "Mapple"})

def benchmark_split(glacier: str) -> str:
    """The benchmark split of a glacier's images: ``"test"`` (COL, Mapple), ``"train"`` (the
    other five), ``"unknown"`` for any other glacier token.

    >>> benchmark_split("Mapple"), benchmark_split("JAC"), benchmark_split("Helheim")
    ('test', 'train', 'unknown')
    """
    if glacier in TEST_GLACIERS:
        return "test"
    return "train" if glacier in GLACIERS else "unknown"


#: Suffixes that the mask files add to the image stem.
MASK_SUFFIXES: tuple[str, ...] = ("_zones", "_front")

#: Sensor groups of the benchmark's breakdowns (TerraSAR-X and TanDEM-X merged).
_SENSOR_GROUPS: dict[str, str] = {"TSX": "TSX/TDX", "TDX": "TSX/TDX"}

_FORMAT = "<glacier>_<YYYY-MM-DD>_<satellite>_<resolution>_<quality>_<orbit>"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Stem:
    """The fields of a CaFFe file name.

    Attributes
    ----------
    glacier
        Glacier token (``COL``, ``JAC``, ``Mapple``, ``Crane``, ``Jorum``, ``DBE``, ``SI``).
    date
        Acquisition date.
    satellite
        Satellite token, one of :data:`SATELLITES`.
    resolution
        Metres per pixel of the original image.
    quality
        Annotation quality factor, 1 (best) to 6.
    orbit
        Orbit, three digits kept as a string (``"005"``).

    Examples
    --------
    >>> import datetime
    >>> s = Stem("JAC", datetime.date(2009, 9, 1), "TSX", 6, 1, "005")
    >>> s.stem, s.hemisphere, s.season, s.sensor
    ('JAC_2009-09-01_TSX_6_1_005', 'north', 'winter', 'TSX/TDX')
    >>> str(s) == s.stem
    True
    """

    glacier: str
    date: _dt.date
    satellite: str
    resolution: int
    quality: int
    orbit: str

    @property
    def stem(self) -> str:
        """The canonical stem, ``<glacier>_<YYYY-MM-DD>_<satellite>_<resolution>_<quality>_<orbit>``."""
        return "_".join([self.glacier, self.date.isoformat(), self.satellite, str(self.resolution),
                         str(self.quality), self.orbit])

    @property
    def hemisphere(self) -> str:
        """``"north"`` for COL and JAC, else ``"south"``."""
        return "north" if self.glacier in NORTHERN_GLACIERS else "south"

    @property
    def season(self) -> str:
        """``"winter"`` or ``"summer"`` by the benchmark's rule.

        North: winter if the month is before April or after August.  South: winter from April
        to August (both included).
        """
        return season(self.glacier, self.date.month)

    @property
    def sensor(self) -> str:
        """Sensor group of the breakdowns: TSX and TDX merged as ``"TSX/TDX"``, others as is."""
        return sensor_group(self.satellite)

    def __str__(self) -> str:
        return self.stem


def sensor_group(satellite: str) -> str:
    """The sensor of the benchmark's breakdowns: TSX and TDX merged as ``"TSX/TDX"``.

    Examples
    --------
    >>> sensor_group("TDX"), sensor_group("S1")
    ('TSX/TDX', 'S1')
    """
    return _SENSOR_GROUPS.get(satellite, satellite)


def season(glacier: str, month: int) -> str:
    """The benchmark's season of a glacier in a month: ``"winter"`` or ``"summer"``.

    COL and JAC (northern): winter when the month is before April or after August; all other
    glaciers (southern): winter from April to August (both included).

    Examples
    --------
    >>> season("JAC", 2), season("Mapple", 2), season("Mapple", 8)
    ('winter', 'summer', 'winter')
    """
    southern_winter = 4 <= int(month) <= 8
    winter = (not southern_winter) if glacier in NORTHERN_GLACIERS else southern_winter
    return "winter" if winter else "summer"


def _bad(name: str, token: str, what: str, expected: str) -> ValueError:
    return ValueError(
        f"{name!r} is not a CaFFe file name: {what} {token!r} is not {expected} "
        f"(expected {_FORMAT}, e.g. 'JAC_2009-09-01_TSX_6_1_005')")


def parse_stem(name: str | os.PathLike[str]) -> Stem:
    """Parse a CaFFe stem, file name or path.

    Parameters
    ----------
    name
        ``<glacier>_<YYYY-MM-DD>_<satellite>_<resolution>_<quality>_<orbit>``, optionally
        with a directory, the mask suffix ``_zones`` or ``_front`` and the ``.png`` extension.

    Returns
    -------
    Stem

    Raises
    ------
    ValueError
        When the name has not exactly six ``_``-separated tokens or a token is invalid; the
        message names the token and what was expected.

    Examples
    --------
    >>> s = parse_stem("Mapple_2008-10-02_ENVISAT_20_3_158.png")
    >>> s.glacier, s.satellite, s.resolution, s.quality, s.orbit, s.hemisphere, s.season
    ('Mapple', 'ENVISAT', 20, 3, '158', 'south', 'summer')
    >>> parse_stem("fronts/train/DBE_2014-05-17_TDX_7_2_136_front.png").stem
    'DBE_2014-05-17_TDX_7_2_136'
    >>> parse_stem("JAC_2009-13-01_TSX_6_1_005")
    Traceback (most recent call last):
    ...
    ValueError: 'JAC_2009-13-01_TSX_6_1_005' is not a CaFFe file name: date '2009-13-01' is not a valid date YYYY-MM-DD (expected <glacier>_<YYYY-MM-DD>_<satellite>_<resolution>_<quality>_<orbit>, e.g. 'JAC_2009-09-01_TSX_6_1_005')
    """
    if isinstance(name, Stem):
        return name
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a string or a path, got {type(name).__name__}")
    base = PurePath(os.fspath(name)).name
    if base.lower().endswith(".png"):
        base = base[:-4]
    for suffix in MASK_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    tokens = base.split("_")
    if len(tokens) != 6:
        raise InputError(
            f"{os.fspath(name)!r} is not a CaFFe file name: {base!r} has {len(tokens)} '_'-separated "
            f"token(s) {tokens}, expected 6: {_FORMAT} (e.g. 'JAC_2009-09-01_TSX_6_1_005', "
            "optionally with '_zones' or '_front' and '.png')")
    glacier, date_s, satellite, res_s, quality_s, orbit = tokens
    if not glacier or not glacier.isalnum():
        raise _bad(base, glacier, "glacier", "a non-empty alphanumeric glacier name")
    if not _DATE.fullmatch(date_s):
        raise _bad(base, date_s, "date", "a date YYYY-MM-DD")
    try:
        date = _dt.date.fromisoformat(date_s)
    except ValueError:
        raise _bad(base, date_s, "date", "a valid date YYYY-MM-DD") from None
    if satellite not in SATELLITES:
        raise _bad(base, satellite, "satellite", f"one of {', '.join(SATELLITES)}")
    if not _DIGITS.fullmatch(res_s) or int(res_s) == 0:
        raise _bad(base, res_s, "resolution", "a positive whole number of metres per pixel")
    if not _DIGITS.fullmatch(quality_s) or not 1 <= int(quality_s) <= 6:
        raise _bad(base, quality_s, "quality", "a quality factor 1-6")
    if not (len(orbit) == 3 and _DIGITS.fullmatch(orbit)):
        raise _bad(base, orbit, "orbit", "a 3-digit orbit number")
    return Stem(glacier, date, satellite, int(res_s), int(quality_s), orbit)

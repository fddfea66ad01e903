"""One synthetic acquisition: the sun, the snow line and clouds of a date, the true facies and
the reflectance a Sentinel-2-like sensor would see, block by block."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from xfacies.catalog import CLASSES, NODATA
from xfacies.errors import GridError, InputError
from xfacies.features import terrain
from xfacies.features.elevation import normalise_elevation
from xfacies.synthetic.landscape import Landscape
from xfacies.synthetic.noise import (
    S_ALB1, S_ALB2, S_CLOUD, S_CLOUDDATE, S_DEBRIS, S_FIRN, S_MEADOW, S_NOISE, S_POND1, S_POND2, S_SNOW1,
    S_SNOW2, fbm, hash_key, hash_uniform, value_noise, white_noise,
)

__all__ = ["CLOUD_QUANTILES", "D_HILL", "D_REFL", "D_SUNLIT", "D_TRUTH", "DateInfo", "N_D", "N_T",
           "SHADOW_DISTANCE_CAP", "T_DEM", "T_DIST", "T_ELEV", "T_GLACIER", "T_SLOPE", "cloud_alpha",
           "date_block", "date_info", "scene_latitude", "shadow_distance", "snowline", "sun_position",
           "terrain_block", "to_datetime64"]

#: Longest cast shadow (metres) that is searched for (and so the largest
#: block halo, ``cap / resolution`` pixels).  The synthetic relief (< 1700 m)
#: never casts longer shadows for sun elevations above 30 degrees, so within
#: June-September the cap is never reached and lazy scenes stay exact.
SHADOW_DISTANCE_CAP = 3000.0

_SOLAR_HOUR = 10.5  # local solar time of the acquisitions

_ID = {c.name: c.id for c in CLASSES}
_ICE, _SNOW, _DEBRIS, _FIRN = _ID["ice"], _ID["snow"], _ID["debris"], _ID["firn"]
_SHADOW, _REFROZEN, _WATER, _CLOUD = _ID["shadow"], _ID["refrozen-like"], _ID["water"], _ID["cloud"]

# Surface spectra (blue, green, red, nir, swir1, swir2), surface reflectance.
# Rows 0..7 follow the class ids of the catalogue (shadow is never used as a
# surface: shaded pixels keep their surface and lose the direct sunlight).
_N_CLS = len(CLASSES)
_SPECTRA = np.zeros((_N_CLS + 3, 6))
_SPECTRA[_ICE] = (0.42, 0.40, 0.35, 0.22, 0.030, 0.025)
_SPECTRA[_SNOW] = (0.92, 0.90, 0.86, 0.72, 0.100, 0.070)
_SPECTRA[_DEBRIS] = (0.12, 0.14, 0.16, 0.22, 0.260, 0.220)
_SPECTRA[_FIRN] = (0.72, 0.70, 0.65, 0.50, 0.070, 0.050)
_SPECTRA[_SHADOW] = (0.05, 0.05, 0.05, 0.05, 0.050, 0.050)
_SPECTRA[_REFROZEN] = (0.58, 0.56, 0.50, 0.34, 0.050, 0.035)
_SPECTRA[_WATER] = (0.12, 0.10, 0.05, 0.03, 0.010, 0.008)
_SPECTRA[_CLOUD] = (0.72, 0.71, 0.70, 0.68, 0.500, 0.400)
_ROCK, _SCREE, _MEADOW = _N_CLS, _N_CLS + 1, _N_CLS + 2
_SPECTRA[_ROCK] = (0.10, 0.12, 0.14, 0.20, 0.250, 0.200)
_SPECTRA[_SCREE] = (0.16, 0.18, 0.20, 0.26, 0.300, 0.250)
_SPECTRA[_MEADOW] = (0.04, 0.08, 0.06, 0.35, 0.200, 0.100)



# Quantiles of the cloud field (:func:`cloud_alpha`) for cover 0, 0.05, ..., 0.5: the threshold above
# which that share of an (infinite) scene is cloud.  Recomputed from the field itself by
# tests/test_synthetic.py::test_cloud_quantile_table_matches_the_cloud_field.
CLOUD_QUANTILES = np.array(
    [0.9238, 0.4553, 0.3656, 0.3018, 0.2487, 0.2013, 0.1575, 0.1157, 0.0758, 0.0357, -0.0045]
)

# --------------------------------------------------------------------------
# Dates: sun position, snow line, clouds
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DateInfo:
    """The date-wide parameters of one acquisition (:func:`date_info`)."""

    date: np.datetime64
    ordinal: int
    doy: int
    sun_azimuth: float
    sun_elevation: float
    snowline: float
    cloud_fraction: float


def to_datetime64(date: Any) -> np.datetime64:
    """A date as ``datetime64[ns]`` at midnight, or an error naming it."""
    try:
        return np.datetime64(pd.Timestamp(date).normalize().to_datetime64(), "ns")
    except (ValueError, TypeError) as err:
        raise InputError(f"cannot read {date!r} as a date; use e.g. '2021-08-15'") from err


def sun_position(lat_deg: float, doy: int, hour: float = _SOLAR_HOUR) -> tuple[float, float]:
    """Sun (azimuth clockwise from north, elevation), degrees, at local solar ``hour``."""
    decl = math.radians(23.44) * math.sin(2.0 * math.pi * (284 + doy) / 365.0)
    lat = math.radians(lat_deg)
    ha = math.radians(15.0 * (hour - 12.0))
    sin_e = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(ha)
    elev = math.asin(max(-1.0, min(1.0, sin_e)))
    az = math.atan2(math.sin(ha), math.cos(ha) * math.sin(lat) - math.tan(decl) * math.cos(lat)) + math.pi
    return math.degrees(az) % 360.0, math.degrees(elev)


def scene_latitude(lay: Landscape) -> float:
    """Latitude (degrees) of the scene centre, for the sun position."""
    from pyproj import Transformer

    tr = Transformer.from_crs(lay.crs, "EPSG:4326", always_xy=True)
    _, lat = tr.transform(lay.x0 + lay.nx * lay.res / 2.0, lay.y0 - lay.ny * lay.res / 2.0)
    if not np.isfinite(lat):  # pragma: no cover - exotic CRS
        raise GridError(f"cannot locate the scene centre of crs={lay.crs!r} on the globe")
    return float(lat)


def snowline(lay: Landscape, doy: int) -> float:
    """Transient snow-line altitude: below the tongues in early June, above the firn line by late August."""
    s = np.clip((doy - 152.0) / (250.0 - 152.0), 0.0, 1.0)
    return float(2150.0 + s * (lay.firnline + 280.0 - 2150.0))


def date_info(lay: Landscape, date: Any, lat: float, clouds: bool) -> DateInfo:
    """What one date fixes: sun position (10:30 local solar time), snow line and cloud cover."""
    d64 = to_datetime64(date)
    ts = pd.Timestamp(d64)
    doy = int(ts.day_of_year)
    ordinal = int(ts.toordinal())
    az, el = sun_position(lat, doy)
    u = hash_uniform(hash_key(lay.seed, S_CLOUDDATE, ordinal, np.arange(2)))
    cover = 0.0 if (not clouds or u[0] < 0.35) else float(np.round(0.03 + 0.27 * u[1], 4))
    return DateInfo(d64, ordinal, doy, round(az, 4), round(el, 4), round(snowline(lay, doy), 2), cover)


def cloud_alpha(lay: Landscape, info: DateInfo, rows: NDArray, cols: NDArray) -> NDArray:
    """Cloud opacity 0..1 (0 everywhere on clear dates)."""
    if info.cloud_fraction <= 0:
        return np.zeros((rows.size, cols.size))
    f = fbm(lay.seed, S_CLOUD * 1000 + info.ordinal % 1000, rows, cols, 96.0, 3)
    thr = float(np.interp(info.cloud_fraction, np.linspace(0, 0.5, CLOUD_QUANTILES.size), CLOUD_QUANTILES))
    return np.clip((f - thr) / 0.08 + 0.5, 0.0, 1.0)


def shadow_distance(lay: Landscape, info: DateInfo) -> float:
    """Longest cast shadow (m) on this date: the relief bound over tan(sun elevation), capped."""
    if info.sun_elevation <= 0:
        return 0.0
    return float(min(terrain.shadow_length_bound(lay.relief_bound(), info.sun_elevation), SHADOW_DISTANCE_CAP))

# --------------------------------------------------------------------------
# Block generators (the same code runs eagerly on the whole scene)
# --------------------------------------------------------------------------

T_DEM, T_GLACIER, T_SLOPE, T_ELEV, T_DIST = range(5)
N_T = 5
D_REFL = slice(0, 6)
D_SUNLIT, D_HILL, D_TRUTH = 6, 7, 8
N_D = 9


def terrain_block(lay: Landscape, r0: int, r1: int, c0: int, c1: int) -> NDArray[np.float64]:
    """Stacked terrain layers of one block: dem, glacier, slope, elevation (normalised), edge distance."""
    dem1, _ = lay.dem_window(r0 - 1, r1 + 1, c0 - 1, c1 + 1, pad=True)
    dem = dem1[1:-1, 1:-1]
    slope = terrain.slope_horn(dem1, lay.res)[1:-1, 1:-1].astype(np.float32)
    gid = lay.glacier(r0, r1, c0, c1)
    if lay.zmin.size:  # the DEM extremes inside the outlines, known in closed form
        elev = normalise_elevation(dem, float(lay.zmin.min()), float(lay.zmax.max()))
    else:
        elev = np.full(dem.shape, np.nan, np.float32)
    dist = lay.edge_distance(r0, r1, c0, c1)
    out = np.empty((N_T, r1 - r0, c1 - c0))
    out[T_DEM], out[T_GLACIER], out[T_SLOPE], out[T_ELEV], out[T_DIST] = dem, gid, slope, elev, dist
    return out


def date_block(lay: Landscape, info: DateInfo, tstack: NDArray, r0: int, r1: int, c0: int, c1: int) -> NDArray[np.float32]:
    """Stacked per-date layers of one block: 6 reflectances, sunlit, hillshade, truth."""
    rows, cols = np.arange(r0, r1), np.arange(c0, c1)
    dem = tstack[T_DEM]
    gid = tstack[T_GLACIER].astype(np.int32)
    slope = tstack[T_SLOPE]
    az, el = info.sun_azimuth, info.sun_elevation

    # illumination: hillshade (1 px halo) and cast shadows (halo = longest shadow)
    dem1, _ = lay.dem_window(r0 - 1, r1 + 1, c0 - 1, c1 + 1, pad=True)
    hill = terrain.hillshade(dem1, lay.res, az, el)[1:-1, 1:-1].astype(np.float32)
    maxd = shadow_distance(lay, info)
    halo = int(math.ceil(maxd / lay.res)) + 2
    demh, (ra, _, ca, _) = lay.dem_window(r0 - halo, r1 + halo, c0 - halo, c1 + halo, pad=False)
    lit_h = terrain.cast_shadow(demh, lay.res, az, el, max_distance=maxd)
    sunlit = lit_h[r0 - ra : r1 - ra, c0 - ca : c1 - ca]

    # surface classes
    z = dem.astype(np.float64)
    on = gid > 0
    snow_thr = info.snowline + 35.0 * value_noise(lay.seed, S_SNOW1, rows, cols, 25.0) + 12.0 * value_noise(
        lay.seed, S_SNOW2, rows, cols, 6.0
    )
    firn_thr = lay.firnline + 25.0 * value_noise(lay.seed, S_FIRN, rows, cols, 20.0)
    cls = np.full(z.shape, _ICE, dtype=np.int16)
    cls[z > firn_thr] = _FIRN
    cls[(z <= snow_thr) & (z > snow_thr - 35.0)] = _REFROZEN
    cls[z > snow_thr] = _SNOW
    if lay.gband.size:
        q = lay.along(gid, rows)
        k = np.maximum(gid, 1) - 1
        deb = on & (q > 1.0 - lay.fdebris[k] + 0.06 * value_noise(lay.seed, S_DEBRIS, rows, cols, 7.0))
        cls[deb] = _DEBRIS
    progress = np.clip((info.doy - 185.0) / 60.0, 0.0, 1.0)
    if progress > 0:
        pond = value_noise(lay.seed, S_POND1, rows, cols, 4.0) + 0.4 * value_noise(lay.seed, S_POND2, rows, cols, 2.0)
        wet = (pond > 1.05 - 0.15 * progress) & ((cls == _ICE) | (cls == _DEBRIS)) & (z < snow_thr - 60.0)
        cls[wet] = _WATER
    # off the glaciers: meadow low down, scree on moderate slopes, rock on steep ones, seasonal snow
    off = np.where(slope < 33.0, _SCREE, _ROCK).astype(np.int16)
    meadow = (z < 2450.0 + 80.0 * value_noise(lay.seed, S_MEADOW, rows, cols, 30.0)) & (slope < 35.0)
    off[meadow] = _MEADOW
    off[(z > snow_thr + 120.0) & (slope < 40.0)] = _SNOW
    surface = np.where(on, cls, off)

    # reflectance = spectrum x smooth albedo variability x illumination x (1 + noise), then clouds
    sin_e = max(math.sin(math.radians(el)), 0.05)
    direct = np.minimum(hill / sin_e, 3.0) * sunlit
    illum = 0.82 * direct + 0.18
    albedo = 1.0 + 0.06 * value_noise(lay.seed, S_ALB1, rows, cols, 30.0) + 0.03 * value_noise(
        lay.seed, S_ALB2, rows, cols, 6.0
    )
    alpha = cloud_alpha(lay, info, rows, cols)
    out = np.empty((N_D, r1 - r0, c1 - c0), dtype=np.float32)
    base = albedo * illum
    for i in range(6):
        noise = 0.04 * white_noise(lay.seed, S_NOISE, info.ordinal * 8 + i, rows, cols)
        refl = _SPECTRA[surface, i] * base * (1.0 + noise)
        if info.cloud_fraction > 0:
            cloud = _SPECTRA[_CLOUD, i] * (1.0 + 0.5 * noise)
            refl = refl * (1.0 - alpha) + cloud * alpha
        out[i] = np.clip(refl, 0.0, 1.0)

    truth = cls.copy()
    truth[sunlit == 0] = _SHADOW
    truth[alpha >= 0.5] = _CLOUD
    truth[~on] = NODATA
    out[D_SUNLIT] = sunlit
    out[D_HILL] = hill
    out[D_TRUTH] = truth
    return out

"""Synthetic valley glaciers: deterministic scenes for demos, tests and benchmarks.

The generator builds a physically plausible alpine landscape on a 10 m grid
in a real UTM CRS (by default near the Ötztal Alps, EPSG:32632): east-west
mountain ranges whose crests (about 3500 m) lie at the southern edge of each
range, with north-flowing valley glaciers in U-shaped troughs that descend
from cirques under steep head walls to tongues at about 2300-2450 m.  For a
given date it draws the true facies map (snow, firn, superimposed
"refrozen-like" ice, bare ice, debris-covered tongues, melt ponds, cast
shadows, clouds) and the surface reflectance that a Sentinel-2-like sensor
would see, plus the 11 reference features of :data:`xfacies.catalog.FEATURES`.

Everything is a function of ``(seed, global row, global column, band, date)``:
white noise comes from a splitmix64-style integer hash and smooth fields from
hashed-lattice value noise, and the terrain is an analytic function of the
pixel position.  A pixel's value therefore never depends on how the scene is
chunked: a dask-backed scene (``chunks=...``, or automatically above
2048 x 2048 pixels) is identical to the eager one, block by block.  Blocks
get their halos (for slope, hillshade and cast shadows) by evaluating the
analytic terrain on a larger window, never by moving data between blocks.

The layout is designed for 10 m pixels; other resolutions keep the layout in
pixels (so slopes scale with ``10 / resolution``).

Examples
--------
>>> from xfacies import synthetic
>>> ds = synthetic.scene("2021-08-15", size=128, seed=1)
>>> ds.features.dims, ds.features.sizes["band"]
(('band', 'y', 'x'), 11)
>>> int(ds.glacier.max()) == len(synthetic.outlines(128, seed=1))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from xfacies.errors import GridError, InputError
from xfacies.features import terrain
from xfacies.catalog import CLASSES, FEATURE_SETS, NODATA, OPTICAL_FEATURES

__all__ = ["outlines", "scene", "season", "labelled_points", "GENERATOR_VERSION", "SHADOW_DISTANCE_CAP"]

#: Version of the generator; bumped whenever the same arguments give different data.
GENERATOR_VERSION = "1.0"
#: Attribute (and, as ``xfacies:imagery``, STAC item property) naming where imagery came from.
IMAGERY_ATTR = "xfacies_imagery"

#: Longest cast shadow (metres) that is searched for (and so the largest
#: block halo, ``cap / resolution`` pixels).  The synthetic relief (< 1700 m)
#: never casts longer shadows for sun elevations above 30 degrees, so within
#: June-September the cap is never reached and lazy scenes stay exact.
SHADOW_DISTANCE_CAP = 3000.0

_DEFAULT_ORIGIN = (630000.0, 5190000.0)  # top-left corner, EPSG:32632, Ötztal Alps
_LAZY_PIXELS = 2048 * 2048  # scenes larger than this are dask-backed by default
_DEFAULT_CHUNK = 1024
_BAND_HEIGHT = 700.0  # pixels per mountain range (north-south)
_GLACIER_SPACING = 170.0  # pixels of scene width per glacier
_TAIL = 10.0 * math.tan(math.radians(8.0))  # valley-floor drop below a tongue, m per pixel
_WALL = 0.47  # valley walls reach the ridge line this far (fraction of a glacier cell) from the axis
_BACK = 0.25  # fraction of a range taken by the slope up to the next crest north
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

# Salts separating the independent random fields.
_S_LAYOUT, _S_DEM1, _S_DEM2, _S_SNOW1, _S_SNOW2, _S_FIRN = 1, 2, 3, 4, 5, 6
_S_DEBRIS, _S_POND1, _S_POND2, _S_ALB1, _S_ALB2, _S_MEADOW = 7, 8, 9, 10, 11, 12
_S_NOISE, _S_CLOUD, _S_CLOUDDATE, _S_CLOUDN = 13, 14, 15, 16

# Quantiles of the cloud field (_cloud_field) for cover 0, 0.05, ..., 0.5: the threshold above
# which that share of an (infinite) scene is cloud.  Recomputed from the field itself by
# tests/test_synthetic.py::test_cloud_quantile_table_matches_the_cloud_field.
_CLOUD_Q = np.array(
    [0.9238, 0.4553, 0.3656, 0.3018, 0.2487, 0.2013, 0.1575, 0.1157, 0.0758, 0.0357, -0.0045]
)


# --------------------------------------------------------------------------
# Hashing and noise: pure functions of integer keys (chunk independent)
# --------------------------------------------------------------------------

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finaliser (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        return x ^ (x >> np.uint64(31))


def _key(*keys: Any) -> NDArray[np.uint64]:
    """Hash a sequence of integer keys (arrays broadcast) into uint64."""
    h = np.zeros((), dtype=np.uint64)
    for k in keys:
        k64 = np.asarray(k, dtype=np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            h = _mix(h + _GOLD + k64)
    return np.asarray(h)


def _uniform(h: NDArray[np.uint64]) -> NDArray[np.float64]:
    """uint64 hash -> uniform [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _white(seed: int, salt: int, extra: int, rows: NDArray, cols: NDArray) -> NDArray[np.float64]:
    """Per-pixel uniform noise in [-1, 1) for global rows x cols."""
    hr = _key(seed, salt, extra, rows)
    with np.errstate(over="ignore"):
        h = _mix(hr[:, None] + _GOLD + cols.astype(np.int64).astype(np.uint64)[None, :])
    return 2.0 * _uniform(h) - 1.0


def _value_noise(seed: int, salt: int, rows: NDArray, cols: NDArray, scale: float) -> NDArray[np.float64]:
    """Hashed-lattice value noise in [-1, 1] (smoothstep interpolation), lattice step ``scale`` px."""
    fr = (rows + 0.5) / scale
    fc = (cols + 0.5) / scale
    i0 = np.floor(fr).astype(np.int64)
    j0 = np.floor(fc).astype(np.int64)
    tr, tc = fr - i0, fc - j0
    sr, sc = tr * tr * (3.0 - 2.0 * tr), tc * tc * (3.0 - 2.0 * tc)
    ia, ja = int(i0.min()), int(j0.min())
    il = np.arange(ia, int(i0.max()) + 2)
    jl = np.arange(ja, int(j0.max()) + 2)
    g = 2.0 * _uniform(_key(seed, salt, il[:, None], jl[None, :])) - 1.0
    a, b = g[i0 - ia], g[i0 - ia + 1]
    r = a + (b - a) * sr[:, None]
    c0, c1 = r[:, j0 - ja], r[:, j0 - ja + 1]
    return c0 + (c1 - c0) * sc[None, :]


def _fbm(seed: int, salt: int, rows: NDArray, cols: NDArray, scale: float, octaves: int = 3) -> NDArray[np.float64]:
    out = np.zeros((rows.size, cols.size))
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        out += amp * _value_noise(seed, salt * 16 + o, rows, cols, scale / 2.0**o)
        norm += amp
        amp *= 0.5
    return out / norm


def _smoothstep(t: NDArray) -> NDArray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# --------------------------------------------------------------------------
# Layout: ranges and glaciers (small, computed eagerly)
# --------------------------------------------------------------------------


@dataclass
class _Layout:
    """Geometry of a synthetic scene (pixel units unless noted)."""

    ny: int
    nx: int
    seed: int
    res: float
    crs: str
    x0: float
    y0: float
    nb: int
    hb: float
    crest: NDArray  # (nb,) col elevation at each range's crest, m
    relief: NDArray  # (nb,) ridge height above the highest valley floor, m
    wc: NDArray  # (nb,) width of a glacier cell, px
    firnline: float
    gband: NDArray = field(default_factory=lambda: np.zeros(0, int))
    xc: NDArray = field(default_factory=lambda: np.zeros(0))
    amp: NDArray = field(default_factory=lambda: np.zeros(0))
    lam: NDArray = field(default_factory=lambda: np.zeros(0))
    phi: NDArray = field(default_factory=lambda: np.zeros(0))
    v0: NDArray = field(default_factory=lambda: np.zeros(0))
    vend: NDArray = field(default_factory=lambda: np.zeros(0))
    wmax: NDArray = field(default_factory=lambda: np.zeros(0))
    zh: NDArray = field(default_factory=lambda: np.zeros(0))
    zt: NDArray = field(default_factory=lambda: np.zeros(0))
    cprof: NDArray = field(default_factory=lambda: np.zeros(0))
    fdebris: NDArray = field(default_factory=lambda: np.zeros(0))
    polygons: list = field(default_factory=list)
    zmin: NDArray = field(default_factory=lambda: np.zeros(0, np.float32))
    zmax: NDArray = field(default_factory=lambda: np.zeros(0, np.float32))
    _tree: Any = None

    # -- coordinates ------------------------------------------------------
    def xy(self, rows: NDArray, cols: NDArray) -> tuple[NDArray, NDArray]:
        """Pixel-centre map coordinates (metres) of global rows and columns."""
        return self.x0 + (cols + 0.5) * self.res, self.y0 - (rows + 0.5) * self.res

    def band_of(self, rows: NDArray) -> NDArray:
        return np.clip(np.floor((rows + 0.5) / self.hb).astype(np.int64), 0, self.nb - 1)

    def v_of(self, rows: NDArray, band: NDArray | int) -> NDArray:
        """Distance (px) north of the crest of ``band`` for global rows."""
        return (np.asarray(band) + 1) * self.hb - (rows + 0.5)

    # -- along-valley profiles --------------------------------------------
    def floor(self, j: int, v: NDArray) -> NDArray:
        """Valley-floor (glacier surface) elevation of glacier j at distances v."""
        v0, vend, zh, zt, c = self.v0[j], self.vend[j], self.zh[j], self.zt[j], self.cprof[j]
        crest = self.crest[self.gband[j]]
        q = (v - v0) / (vend - v0)
        inside = zt + (zh - zt) * ((1.0 - q) * (1.0 + c * q))
        head = zh + (crest - zh) * np.clip((v0 - v) / v0, 0.0, 1.0) ** 1.8  # concave head wall
        tail = zt - (v - vend) * _TAIL
        return np.where(q < 0, head, np.where(q > 1, tail, inside))

    def floor_width(self, j: int, v: NDArray) -> NDArray:
        """Half-width (px) of the flat trough floor of glacier j's valley."""
        v0 = self.v0[j]
        length = self.vend[j] - v0
        q = (v - v0) / length
        # the trough closes into a cirque bowl towards the crest
        bowl = np.sqrt(np.clip((v - 0.3 * v0) / (0.7 * v0 + 0.15 * length), 0.02, 1.0))
        return self.wmax[j] * (1.0 - 0.55 * np.clip(q, 0.0, 1.4)) * bowl

    def centre(self, j: int, v: NDArray) -> NDArray:
        return self.xc[j] + self.amp[j] * np.sin(2.0 * np.pi * v / self.lam[j] + self.phi[j])

    def ridge(self, b: int, v: NDArray) -> NDArray:
        """Elevation of the ridges between the valleys of range b."""
        idx = np.flatnonzero(self.gband == b)
        if idx.size:
            top = np.max([self.floor(j, v) for j in idx], axis=0)
        else:
            top = self.crest[b] - 250.0 - np.clip(v, 0, None) * 2.5
        return top + self.relief[b]

    # -- terrain ------------------------------------------------------------
    def _range_surface(self, b: int, v: NDArray, cols: NDArray) -> tuple[NDArray, NDArray]:
        """Terrain of range b (no small-scale noise) and the wall coordinate t (<= 0 on trough floors)."""
        u = cols + 0.5
        rz = self.ridge(b, v)
        z = np.repeat(rz[:, None], u.size, axis=1)
        tmin = np.ones_like(z)
        wall = _WALL * self.wc[b]
        for j in np.flatnonzero(self.gband == b):
            reach = wall + self.amp[j] + 1.0
            sel = np.flatnonzero(np.abs(u - self.xc[j]) < reach)
            if sel.size == 0:
                continue
            fj = self.floor(j, v)
            a = self.floor_width(j, v)
            d = np.abs(u[sel][None, :] - self.centre(j, v)[:, None])
            t = (d - a[:, None]) / (wall - a)[:, None]
            zj = fj[:, None] + (rz - fj)[:, None] * _smoothstep(t)
            z[:, sel] = np.minimum(z[:, sel], zj)
            tmin[:, sel] = np.minimum(tmin[:, sel], t)
        return z, tmin

    def dem(self, r0: int, r1: int, c0: int, c1: int) -> NDArray[np.float32]:
        """DEM (float32, metres) of global rows r0:r1 and columns c0:c1 (inside the scene)."""
        rows = np.arange(r0, r1)
        cols = np.arange(c0, c1)
        z = np.empty((rows.size, cols.size))
        tmin = np.empty_like(z)
        bands = self.band_of(rows)
        for b in np.unique(bands):
            rsel = np.flatnonzero(bands == b)
            v = self.v_of(rows[rsel], b)
            zb, tb = self._range_surface(int(b), v, cols)
            back = v > (1.0 - _BACK) * self.hb
            if b > 0 and back.any():
                # blend up to the crest of the range to the north
                zc, tc = self._range_surface(int(b) - 1, np.zeros(1), cols)
                w = _smoothstep((v[back] - (1.0 - _BACK) * self.hb) / (_BACK * self.hb))[:, None]
                zb[back] = zb[back] * (1.0 - w) + zc * w
                tb[back] = tb[back] * (1.0 - w) + np.maximum(tc, 1.0) * w
            z[rsel] = zb
            tmin[rsel] = tb
        rough = 45.0 * _fbm(self.seed, _S_DEM1, rows, cols, 64.0) + 10.0 * _value_noise(
            self.seed, _S_DEM2, rows, cols, 9.0
        )
        z = z + _smoothstep(tmin / 0.35) * rough
        return z.astype(np.float32)

    def dem_window(self, r0: int, r1: int, c0: int, c1: int, *, pad: bool) -> tuple[NDArray, tuple[int, int, int, int]]:
        """DEM of a window clipped to the scene; with ``pad`` edge-padded back to the full window."""
        ra, rb, ca, cb = max(r0, 0), min(r1, self.ny), max(c0, 0), min(c1, self.nx)
        z = self.dem(ra, rb, ca, cb)
        if pad:
            z = np.pad(z, ((ra - r0, r1 - rb), (ca - c0, c1 - cb)), mode="edge")
            return z, (r0, r1, c0, c1)
        return z, (ra, rb, ca, cb)

    # -- glaciers -----------------------------------------------------------
    def glacier(self, r0: int, r1: int, c0: int, c1: int) -> NDArray[np.int32]:
        """Glacier ids (1-based outline rows) at pixel centres, 0 elsewhere."""
        import shapely

        out = np.zeros((r1 - r0, c1 - c0), dtype=np.int32)
        for k, poly in enumerate(self.polygons):
            minx, miny, maxx, maxy = poly.bounds
            ca = max(c0, int(math.floor((minx - self.x0) / self.res - 0.5)))
            cb = min(c1, int(math.ceil((maxx - self.x0) / self.res + 0.5)))
            ra = max(r0, int(math.floor((self.y0 - maxy) / self.res - 0.5)))
            rb = min(r1, int(math.ceil((self.y0 - miny) / self.res + 0.5)))
            if ca >= cb or ra >= rb:
                continue
            x, y = self.xy(np.arange(ra, rb), np.arange(ca, cb))
            inside = shapely.contains_xy(poly, x[None, :], y[:, None])
            sub = out[ra - r0 : rb - r0, ca - c0 : cb - c0]
            sub[inside] = k + 1
        return out

    def along(self, gid: NDArray, rows: NDArray) -> NDArray[np.float64]:
        """Relative position 0 (head) .. 1 (snout) of glacier pixels along their glacier."""
        k = np.maximum(gid, 1) - 1
        v = self.v_of(rows[:, None], self.gband[k])
        q = (v - self.v0[k]) / (self.vend[k] - self.v0[k])
        return np.where(gid > 0, q, np.nan)

    # -- proximity ------------------------------------------------------------
    def _segments(self) -> tuple[Any, NDArray, NDArray, float]:
        if self._tree is None:
            from scipy.spatial import cKDTree

            if not self.polygons:
                self._tree = (None, np.zeros((0, 2)), np.zeros((0, 2)), 0.0)
            else:
                rings = [np.asarray(p.exterior.coords) for p in self.polygons]
                a = np.concatenate([r[:-1] for r in rings])
                b = np.concatenate([r[1:] for r in rings])
                # split long segments so that midpoints certify nearest-segment queries well
                n = np.maximum(1, np.ceil(np.hypot(*(b - a).T) / (1.5 * self.res))).astype(int)
                rep = np.repeat(np.arange(len(a)), n)
                frac = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
                t0 = (frac / n[rep])[:, None]
                t1 = ((frac + 1) / n[rep])[:, None]
                a, b = a[rep] + t0 * (b[rep] - a[rep]), a[rep] + t1 * (b[rep] - a[rep])
                half = 0.5 * float(np.max(np.hypot(*(b - a).T)))
                self._tree = (cKDTree(0.5 * (a + b)), a, b, half)
        return self._tree

    def edge_distance(self, px: NDArray, py: NDArray) -> NDArray[np.float64]:
        """Exact distance (m) from points to the nearest outline boundary.

        The outline rings are split into segments; a KD-tree of the segment
        midpoints proposes the ``k`` nearest candidates, and the result is
        accepted only where it is certified (every other segment is at least
        ``distance to its midpoint - half its length`` away), else ``k`` grows
        and finally all segments are checked.  Each point's value depends on
        that point alone, so it never depends on the chunking.
        """
        tree, a, b, half = self._segments()
        shape = np.shape(px)
        p = np.column_stack([np.ravel(px), np.ravel(py)])
        out = np.full(len(p), np.inf)
        if tree is None:
            return out.reshape(shape)
        todo = np.arange(len(p))
        for k in (12, 40, 160):
            if todo.size == 0:
                break
            if k >= len(a):
                break
            for s in range(0, todo.size, 65536):
                sel = todo[s : s + 65536]
                dk, idx = tree.query(p[sel], k=k, workers=-1)
                out[sel] = _seg_distance(p[sel], a, b, idx).min(axis=1)
                ok = out[sel] <= dk[:, -1] - half
                out[sel[~ok]] = np.inf
            todo = todo[~np.isfinite(out[todo])]
        for s in range(0, todo.size, 64):
            sel = todo[s : s + 64]
            idx = np.broadcast_to(np.arange(len(a)), (sel.size, len(a)))
            out[sel] = _seg_distance(p[sel], a, b, idx).min(axis=1)
        return out.reshape(shape)

    def edge_distance_max(self) -> float:
        """Exact maximum over all pixel centres of :meth:`edge_distance` (branch and bound)."""
        step = 16
        if self.ny * self.nx <= 1024 * 1024:
            x, y = self.xy(np.arange(self.ny), np.arange(self.nx))
            return float(self.edge_distance(*np.meshgrid(x, y)).max())
        rs = np.arange(step // 2, self.ny, step)
        cs = np.arange(step // 2, self.nx, step)
        x, y = self.xy(rs, cs)
        f = self.edge_distance(*np.meshgrid(x, y))
        best = float(f.max())
        bound = (step / 2.0) * math.sqrt(2.0) * self.res * (1 + 1e-9) + 1e-6
        ci, cj = np.nonzero(f + bound >= best)
        px, py = [], []
        for i, j in zip(ci, cj):
            x, y = self.xy(np.arange(i * step, min((i + 1) * step, self.ny)), np.arange(j * step, min((j + 1) * step, self.nx)))
            gx, gy = np.meshgrid(x, y)
            px.append(gx.ravel())
            py.append(gy.ravel())
        return max(best, float(self.edge_distance(np.concatenate(px), np.concatenate(py)).max()))

    # -- relief bound -----------------------------------------------------------
    def relief_bound(self) -> float:
        """An upper bound of the DEM relief (m), for the shadow halo."""
        top = float(self.crest.max() + self.relief.max() + 60.0)
        if self.zt.size:
            low = float(self.zt.min() - _TAIL * self.hb - 60.0)
        else:
            low = float(self.crest.min() - 250.0 - 2.5 * self.hb - 60.0)
        return top - low


def _seg_distance(p: NDArray, a: NDArray, b: NDArray, idx: NDArray) -> NDArray:
    """Distance from points ``p`` (n, 2) to the segments ``a[idx]``-``b[idx]`` (idx: (n, k))."""
    ax, ay = a[idx, 0], a[idx, 1]
    abx, aby = b[idx, 0] - ax, b[idx, 1] - ay
    apx, apy = p[:, :1] - ax, p[:, 1:] - ay
    den = np.maximum(abx * abx + aby * aby, 1e-300)
    t = np.clip((apx * abx + apy * aby) / den, 0.0, 1.0)
    dx, dy = apx - t * abx, apy - t * aby
    return np.sqrt(dx * dx + dy * dy)


def _normalise_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        ny = nx = int(size)
    else:
        ny, nx = (int(s) for s in size)
    if ny < 16 or nx < 16:
        raise InputError(f"size must be at least 16 x 16 pixels, got {(ny, nx)}")
    return ny, nx


def _layout(
    size: int | Sequence[int],
    seed: int,
    n_glaciers: int | None,
    resolution: float,
    crs: str,
    origin: tuple[float, float] | None,
) -> _Layout:
    import shapely

    ny, nx = _normalise_size(size)
    if resolution <= 0:
        raise InputError(f"resolution must be positive (metres), got {resolution}")
    x0, y0 = _DEFAULT_ORIGIN if origin is None else (float(origin[0]), float(origin[1]))
    nb = max(1, int(round(ny / _BAND_HEIGHT)))
    hb = ny / nb
    if n_glaciers is None:
        counts = [max(1, int(round(nx / _GLACIER_SPACING)))] * nb
    else:
        if n_glaciers < 0:
            raise InputError(f"n_glaciers must be >= 0, got {n_glaciers}")
        counts = [n_glaciers // nb + (1 if b < n_glaciers % nb else 0) for b in range(nb)]
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _S_LAYOUT])
    crest = 3560.0 + rng.uniform(-40.0, 60.0, nb)
    relief = rng.uniform(280.0, 330.0, nb)
    wc = np.array([nx / max(c, 1) for c in counts], dtype=float)
    lay = _Layout(
        ny=ny, nx=nx, seed=int(seed), res=float(resolution), crs=str(crs), x0=x0, y0=y0,
        nb=nb, hb=hb, crest=crest, relief=relief, wc=wc,
        firnline=float(2880.0 + rng.uniform(-60.0, 60.0)),
    )
    g: dict[str, list[float]] = {k: [] for k in ("gband", "xc", "amp", "lam", "phi", "v0", "vend", "wmax", "zh", "zt", "cprof", "fdebris")}
    for b, cnt in enumerate(counts):
        top_band = b == 0
        for j in range(cnt):
            u = rng.uniform(size=12)
            g["gband"].append(b)
            g["xc"].append((j + 0.5 + 0.1 * (u[0] - 0.5)) * wc[b])
            g["amp"].append(0.06 * wc[b] * u[1])
            g["lam"].append(hb * (0.8 + 0.5 * u[2]))
            g["phi"].append(2 * np.pi * u[3])
            g["v0"].append(hb * (0.06 + 0.03 * u[4]))
            g["vend"].append(hb * ((0.74 if top_band else 0.58) + 0.08 * u[5]))
            g["wmax"].append(wc[b] * (0.20 + 0.06 * u[6]))
            g["zh"].append(crest[b] - 330.0 - 100.0 * u[7])
            g["zt"].append(2330.0 + 130.0 * u[8])
            g["cprof"].append(0.2 + 0.25 * u[9])
            g["fdebris"].append(0.15 + 0.10 * u[10])
    lay.gband = np.array(g["gband"], dtype=np.int64)
    for k in ("xc", "amp", "lam", "phi", "v0", "vend", "wmax", "zh", "zt", "cprof", "fdebris"):
        setattr(lay, k, np.array(g[k], dtype=float))

    polys, zmin, zmax = [], [], []
    for j in range(lay.gband.size):
        b = int(lay.gband[j])
        length = lay.vend[j] - lay.v0[j]
        n = max(48, int(length / 1.5))
        sq = np.linspace(0.0, 1.0, n)
        q = sq - 0.6 * np.sin(2.0 * np.pi * sq) / (2.0 * np.pi)  # a little denser at the rounded ends
        v = lay.v0[j] + q * length
        a = lay.floor_width(j, v)
        qh = 0.08
        head = np.sqrt(np.clip(1.0 - (1.0 - np.minimum(q / qh, 1.0)) ** 2, 0.0, 1.0))
        ls = min(0.25, 1.3 * float(a[-1]) / length)
        snout = np.sqrt(np.clip(1.0 - (np.maximum(q - (1.0 - ls), 0.0) / ls) ** 2, 0.0, 1.0))
        hw = 0.92 * a * head * snout
        c = lay.centre(j, v)
        w = (b + 1) * hb - v
        ring_u = np.concatenate([c - hw, (c + hw)[::-1][1:-1]])
        ring_w = np.concatenate([w, w[::-1][1:-1]])
        poly = shapely.Polygon(np.column_stack([x0 + ring_u * lay.res, y0 - ring_w * lay.res]))
        shapely.prepare(poly)
        polys.append(poly)
        # Glacier surfaces are flat across and fall monotonically down-glacier, so the
        # extreme DEM values inside an outline sit on its first and last pixel rows.
        ca = int(math.floor(float((c - hw).min()) - 0.5))
        cb = int(math.ceil(float((c + hw).max()) + 0.5))
        rows_n = _edge_rows(lay, poly, float(w.min()), ca, cb, +1)
        rows_s = _edge_rows(lay, poly, float(w.max()), ca, cb, -1)
        zz = [lay.floor(j, lay.v_of(np.array([r], dtype=np.int64), b)).astype(np.float32)[0] for r in (rows_n, rows_s)]
        zmin.append(min(zz))
        zmax.append(max(zz))
    lay.polygons = polys
    lay.zmin = np.array(zmin, dtype=np.float32)
    lay.zmax = np.array(zmax, dtype=np.float32)
    return lay


def _edge_rows(lay: _Layout, poly: Any, w_edge: float, ca: int, cb: int, direction: int) -> int:
    """First (direction=+1: northernmost) or last pixel row with a centre inside ``poly``."""
    import shapely

    start = int(math.ceil(w_edge - 0.5)) if direction > 0 else int(math.floor(w_edge - 0.5))
    cols = np.arange(ca, cb + 1)
    for block in range(0, 4096, 8):
        rows = start + direction * np.arange(block, block + 8)
        x, y = lay.xy(rows, cols)
        hit = shapely.contains_xy(poly, x[None, :], y[:, None]).any(axis=1)
        if hit.any():
            return int(rows[np.argmax(hit)])
    raise RuntimeError("synthetic glacier outline contains no pixel centre")  # pragma: no cover


# --------------------------------------------------------------------------
# Dates: sun position, snow line, clouds
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _DateInfo:
    date: np.datetime64
    ordinal: int
    doy: int
    sun_azimuth: float
    sun_elevation: float
    snowline: float
    cloud_fraction: float


def _to_datetime64(date: Any) -> np.datetime64:
    try:
        return np.datetime64(pd.Timestamp(date).normalize().to_datetime64(), "ns")
    except (ValueError, TypeError) as err:
        raise InputError(f"cannot read {date!r} as a date; use e.g. '2021-08-15'") from err


def _sun_position(lat_deg: float, doy: int, hour: float = _SOLAR_HOUR) -> tuple[float, float]:
    """Sun (azimuth clockwise from north, elevation), degrees, at local solar ``hour``."""
    decl = math.radians(23.44) * math.sin(2.0 * math.pi * (284 + doy) / 365.0)
    lat = math.radians(lat_deg)
    ha = math.radians(15.0 * (hour - 12.0))
    sin_e = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(ha)
    elev = math.asin(max(-1.0, min(1.0, sin_e)))
    az = math.atan2(math.sin(ha), math.cos(ha) * math.sin(lat) - math.tan(decl) * math.cos(lat)) + math.pi
    return math.degrees(az) % 360.0, math.degrees(elev)


def _scene_latitude(lay: _Layout) -> float:
    from pyproj import Transformer

    tr = Transformer.from_crs(lay.crs, "EPSG:4326", always_xy=True)
    _, lat = tr.transform(lay.x0 + lay.nx * lay.res / 2.0, lay.y0 - lay.ny * lay.res / 2.0)
    if not np.isfinite(lat):  # pragma: no cover - exotic CRS
        raise GridError(f"cannot locate the scene centre of crs={lay.crs!r} on the globe")
    return float(lat)


def _snowline(lay: _Layout, doy: int) -> float:
    """Transient snow-line altitude: below the tongues in early June, above the firn line by late August."""
    s = np.clip((doy - 152.0) / (250.0 - 152.0), 0.0, 1.0)
    return float(2150.0 + s * (lay.firnline + 280.0 - 2150.0))


def _date_info(lay: _Layout, date: Any, lat: float, clouds: bool) -> _DateInfo:
    d64 = _to_datetime64(date)
    ts = pd.Timestamp(d64)
    doy = int(ts.day_of_year)
    ordinal = int(ts.toordinal())
    az, el = _sun_position(lat, doy)
    u = _uniform(_key(lay.seed, _S_CLOUDDATE, ordinal, np.arange(2)))
    cover = 0.0 if (not clouds or u[0] < 0.35) else float(np.round(0.03 + 0.27 * u[1], 4))
    return _DateInfo(d64, ordinal, doy, round(az, 4), round(el, 4), round(_snowline(lay, doy), 2), cover)


def _cloud_alpha(lay: _Layout, info: _DateInfo, rows: NDArray, cols: NDArray) -> NDArray:
    """Cloud opacity 0..1 (0 everywhere on clear dates)."""
    if info.cloud_fraction <= 0:
        return np.zeros((rows.size, cols.size))
    f = _fbm(lay.seed, _S_CLOUD * 1000 + info.ordinal % 1000, rows, cols, 96.0, 3)
    thr = float(np.interp(info.cloud_fraction, np.linspace(0, 0.5, _CLOUD_Q.size), _CLOUD_Q))
    return np.clip((f - thr) / 0.08 + 0.5, 0.0, 1.0)


def _shadow_distance(lay: _Layout, info: _DateInfo) -> float:
    if info.sun_elevation <= 0:
        return 0.0
    return float(min(terrain.shadow_length_bound(lay.relief_bound(), info.sun_elevation), SHADOW_DISTANCE_CAP))


# --------------------------------------------------------------------------
# Block generators (the same code runs eagerly on the whole scene)
# --------------------------------------------------------------------------

_T_DEM, _T_GLACIER, _T_SLOPE, _T_ELEV, _T_DIST = range(5)
_N_T = 5
_D_REFL = slice(0, 6)
_D_SUNLIT, _D_HILL, _D_TRUTH = 6, 7, 8
_N_D = 9


def _terrain_block(lay: _Layout, r0: int, r1: int, c0: int, c1: int) -> NDArray[np.float64]:
    """Stacked terrain layers of one block: dem, glacier, slope, elevation (normalised), edge distance."""
    dem1, _ = lay.dem_window(r0 - 1, r1 + 1, c0 - 1, c1 + 1, pad=True)
    dem = dem1[1:-1, 1:-1]
    slope = terrain.slope_horn(dem1, lay.res)[1:-1, 1:-1].astype(np.float32)
    gid = lay.glacier(r0, r1, c0, c1)
    if lay.zmin.size:
        lo, hi = float(lay.zmin.min()), float(lay.zmax.max())
        elev = ((dem.astype(np.float64) - lo) / max(hi - lo, 1e-6)).astype(np.float32)
    else:
        elev = np.full(dem.shape, np.nan, np.float32)
    x, y = lay.xy(np.arange(r0, r1), np.arange(c0, c1))
    dist = lay.edge_distance(*np.meshgrid(x, y))
    out = np.empty((_N_T, r1 - r0, c1 - c0))
    out[_T_DEM], out[_T_GLACIER], out[_T_SLOPE], out[_T_ELEV], out[_T_DIST] = dem, gid, slope, elev, dist
    return out


def _date_block(lay: _Layout, info: _DateInfo, tstack: NDArray, r0: int, r1: int, c0: int, c1: int) -> NDArray[np.float32]:
    """Stacked per-date layers of one block: 6 reflectances, sunlit, hillshade, truth."""
    rows, cols = np.arange(r0, r1), np.arange(c0, c1)
    dem = tstack[_T_DEM]
    gid = tstack[_T_GLACIER].astype(np.int32)
    slope = tstack[_T_SLOPE]
    az, el = info.sun_azimuth, info.sun_elevation

    # illumination: hillshade (1 px halo) and cast shadows (halo = longest shadow)
    dem1, _ = lay.dem_window(r0 - 1, r1 + 1, c0 - 1, c1 + 1, pad=True)
    hill = terrain.hillshade(dem1, lay.res, az, el)[1:-1, 1:-1].astype(np.float32)
    maxd = _shadow_distance(lay, info)
    halo = int(math.ceil(maxd / lay.res)) + 2
    demh, (ra, _, ca, _) = lay.dem_window(r0 - halo, r1 + halo, c0 - halo, c1 + halo, pad=False)
    lit_h = terrain.cast_shadow(demh, lay.res, az, el, max_distance=maxd)
    sunlit = lit_h[r0 - ra : r1 - ra, c0 - ca : c1 - ca]

    # surface classes
    z = dem.astype(np.float64)
    on = gid > 0
    snow_thr = info.snowline + 35.0 * _value_noise(lay.seed, _S_SNOW1, rows, cols, 25.0) + 12.0 * _value_noise(
        lay.seed, _S_SNOW2, rows, cols, 6.0
    )
    firn_thr = lay.firnline + 25.0 * _value_noise(lay.seed, _S_FIRN, rows, cols, 20.0)
    cls = np.full(z.shape, _ICE, dtype=np.int16)
    cls[z > firn_thr] = _FIRN
    cls[(z <= snow_thr) & (z > snow_thr - 35.0)] = _REFROZEN
    cls[z > snow_thr] = _SNOW
    if lay.gband.size:
        q = lay.along(gid, rows)
        k = np.maximum(gid, 1) - 1
        deb = on & (q > 1.0 - lay.fdebris[k] + 0.06 * _value_noise(lay.seed, _S_DEBRIS, rows, cols, 7.0))
        cls[deb] = _DEBRIS
    progress = np.clip((info.doy - 185.0) / 60.0, 0.0, 1.0)
    if progress > 0:
        pond = _value_noise(lay.seed, _S_POND1, rows, cols, 4.0) + 0.4 * _value_noise(lay.seed, _S_POND2, rows, cols, 2.0)
        wet = (pond > 1.05 - 0.15 * progress) & ((cls == _ICE) | (cls == _DEBRIS)) & (z < snow_thr - 60.0)
        cls[wet] = _WATER
    # off the glaciers: meadow low down, scree on moderate slopes, rock on steep ones, seasonal snow
    off = np.where(slope < 33.0, _SCREE, _ROCK).astype(np.int16)
    meadow = (z < 2450.0 + 80.0 * _value_noise(lay.seed, _S_MEADOW, rows, cols, 30.0)) & (slope < 35.0)
    off[meadow] = _MEADOW
    off[(z > snow_thr + 120.0) & (slope < 40.0)] = _SNOW
    surface = np.where(on, cls, off)

    # reflectance = spectrum x smooth albedo variability x illumination x (1 + noise), then clouds
    sin_e = max(math.sin(math.radians(el)), 0.05)
    direct = np.minimum(hill / sin_e, 3.0) * sunlit
    illum = 0.82 * direct + 0.18
    albedo = 1.0 + 0.06 * _value_noise(lay.seed, _S_ALB1, rows, cols, 30.0) + 0.03 * _value_noise(
        lay.seed, _S_ALB2, rows, cols, 6.0
    )
    alpha = _cloud_alpha(lay, info, rows, cols)
    out = np.empty((_N_D, r1 - r0, c1 - c0), dtype=np.float32)
    base = albedo * illum
    for i in range(6):
        noise = 0.04 * _white(lay.seed, _S_NOISE, info.ordinal * 8 + i, rows, cols)
        refl = _SPECTRA[surface, i] * base * (1.0 + noise)
        if info.cloud_fraction > 0:
            cloud = _SPECTRA[_CLOUD, i] * (1.0 + 0.5 * noise)
            refl = refl * (1.0 - alpha) + cloud * alpha
        out[i] = np.clip(refl, 0.0, 1.0)

    truth = cls.copy()
    truth[sunlit == 0] = _SHADOW
    truth[alpha >= 0.5] = _CLOUD
    truth[~on] = NODATA
    out[_D_SUNLIT] = sunlit
    out[_D_HILL] = hill
    out[_D_TRUTH] = truth
    return out


# --------------------------------------------------------------------------
# Dataset assembly
# --------------------------------------------------------------------------


def _resolve_chunks(chunks: Any, ny: int, nx: int) -> tuple[int, int] | None:
    if chunks is None:
        return (_DEFAULT_CHUNK, _DEFAULT_CHUNK) if ny * nx > _LAZY_PIXELS else None
    if isinstance(chunks, dict):
        cy, cx = chunks.get("y", -1), chunks.get("x", -1)
    elif isinstance(chunks, (int, np.integer)):
        cy = cx = int(chunks)
    else:
        cy, cx = (int(c) for c in chunks)
    cy = ny if cy in (-1, None) else int(cy)
    cx = nx if cx in (-1, None) else int(cx)
    if cy <= 0 or cx <= 0:
        raise InputError(f"chunks must be positive, got {chunks!r}")
    return min(cy, ny), min(cx, nx)


def _chunk_tuple(n: int, c: int) -> tuple[int, ...]:
    return tuple([c] * (n // c) + ([n % c] if n % c else []))


def _loc(block_info: dict) -> tuple[int, int, int, int]:
    (_, _), (r0, r1), (c0, c1) = block_info[None]["array-location"][-3:]
    return r0, r1, c0, c1


class _Builder:
    """Evaluates the terrain and the per-date layers eagerly or as dask arrays."""

    def __init__(self, lay: _Layout, chunks: tuple[int, int] | None):
        self.lay = lay
        self.chunks = chunks
        self._tstack: Any = None
        # dask names from the arguments that define the scene (never from the objects)
        from dask.base import tokenize

        self.token = tokenize(
            "xfacies.synthetic", GENERATOR_VERSION, lay.ny, lay.nx, lay.seed, lay.res, lay.crs,
            lay.x0, lay.y0, lay.gband.size, chunks,
        )

    @property
    def lazy(self) -> bool:
        return self.chunks is not None

    def tstack(self) -> Any:
        if self._tstack is None:
            lay = self.lay
            if not self.lazy:
                self._tstack = _terrain_block(lay, 0, lay.ny, 0, lay.nx)
            else:
                import dask.array as da

                def fn(block_info: dict | None = None) -> NDArray:
                    return _terrain_block(lay, *_loc(block_info))  # type: ignore[arg-type]

                ch = ((_N_T,), _chunk_tuple(lay.ny, self.chunks[0]), _chunk_tuple(lay.nx, self.chunks[1]))  # type: ignore[index]
                self._tstack = da.map_blocks(
                    fn, chunks=ch, dtype=np.float64, meta=np.empty((0, 0, 0)), name=f"synthetic-terrain-{self.token}"
                )
        return self._tstack

    def dstack(self, info: _DateInfo) -> Any:
        lay = self.lay
        ts = self.tstack()
        if not self.lazy:
            return _date_block(lay, info, ts, 0, lay.ny, 0, lay.nx)
        import dask.array as da
        from dask.base import tokenize

        def fn(tblock: NDArray, block_info: dict | None = None) -> NDArray:
            return _date_block(lay, info, tblock, *_loc(block_info))  # type: ignore[arg-type]

        ch = ((_N_D,),) + ts.chunks[1:]
        name = f"synthetic-date-{tokenize(self.token, info)}"
        return da.map_blocks(fn, ts, chunks=ch, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32), name=name)

    def distance_max(self) -> Any:
        if not self.lazy:
            return float(self.tstack()[_T_DIST].max())
        import dask
        import dask.array as da

        task = dask.delayed(self.lay.edge_distance_max, name=f"synthetic-edge-max-{self.token}")()
        return da.from_delayed(task, (), np.float64)


def _coords(lay: _Layout) -> dict[str, Any]:
    x, y = lay.xy(np.arange(lay.ny), np.arange(lay.nx))
    return {
        "y": ("y", y, {"units": "metre", "standard_name": "projection_y_coordinate", "axis": "Y"}),
        "x": ("x", x, {"units": "metre", "standard_name": "projection_x_coordinate", "axis": "X"}),
    }


def _attrs(lay: _Layout, kind: str) -> dict[str, Any]:
    return {
        "title": f"xfacies synthetic valley glaciers ({kind})",
        "description": (
            "Synthetic north-flowing valley glaciers under crests near 3500 m: true facies map, "
            "surface reflectance and the 11 reference features, generated deterministically from the seed."
        ),
        "seed": lay.seed,
        "generator": "xfacies.synthetic",
        "generator_version": GENERATOR_VERSION,
        "resolution": lay.res,
        "n_glaciers": int(lay.gband.size),
    }


def _static_vars(b: _Builder) -> dict[str, Any]:
    ts = b.tstack()
    dem = ts[_T_DEM].astype(np.float32)
    gl = ts[_T_GLACIER].astype(np.int32)
    return {
        "dem": (("y", "x"), dem, {"long_name": "surface elevation", "units": "m"}),
        "glacier": (
            ("y", "x"),
            gl,
            {"long_name": "glacier id (1-based row of synthetic.outlines(); 0 = off-glacier)", "units": "1"},
        ),
    }


def _date_vars(b: _Builder, info: _DateInfo, pmax: Any) -> dict[str, Any]:
    ts = b.tstack()
    ds_ = b.dstack(info)
    if b.lazy:
        import dask.array as da

        stack, concat = da.stack, da.concatenate
    else:
        stack, concat = np.stack, np.concatenate
    prox = (ts[_T_DIST] / pmax).astype(np.float32)
    feats = concat(
        [
            ds_[_D_REFL],
            stack(
                [
                    ts[_T_ELEV].astype(np.float32),
                    ts[_T_SLOPE].astype(np.float32),
                    ds_[_D_SUNLIT],
                    ds_[_D_HILL],
                    prox,
                ]
            ),
        ],
        axis=0,
    )
    if b.lazy:
        feats = feats.rechunk({0: -1})
    return {
        "reflectance": ds_[_D_REFL],
        "truth": ds_[_D_TRUTH].astype(np.int8),
        "features": feats,
    }


_VAR_ATTRS = {
    "features": {"long_name": "reference facies features (feature set 4)"},
}


def outlines(
    size: int | Sequence[int] = 512,
    *,
    seed: int = 0,
    n_glaciers: int | None = None,
    resolution: float = 10.0,
    crs: str = "EPSG:32632",
    origin: tuple[float, float] | None = None,
) -> Any:
    """Outlines of the synthetic glaciers of a scene.

    Parameters
    ----------
    size
        Scene size in pixels: ``n`` (square) or ``(ny, nx)``.
    seed
        Random seed; the same arguments always give the same glaciers.
    n_glaciers
        Number of glaciers.  Default: one per ~170 pixels of scene width in
        every ~700-pixel-high mountain range (3 in a 512 x 512 scene).
    resolution
        Pixel size in metres.
    crs
        Coordinate reference system of the grid (a projected CRS in metres).
    origin
        ``(x, y)`` of the scene's top-left corner in ``crs``; default near
        the Ötztal Alps (630000, 5190000).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per glacier with ``rgi_id`` (``"SYN60-00.00001"`` style),
        ``name``, ``area_km2``, ``zmin`` and ``zmax`` (the exact extremes of
        the scene DEM over the pixels whose centres lie inside the outline),
        and a ``geometry`` of Polygons in ``crs``.  Row ``k`` (0-based) is
        glacier id ``k + 1`` in :func:`scene`'s ``glacier`` raster.

    Examples
    --------
    >>> gdf = outlines(512, seed=0)
    >>> len(gdf), gdf.rgi_id.iloc[0], gdf.crs.to_epsg()
    (3, 'SYN60-00.00001', 32632)
    >>> bool((gdf.zmax > gdf.zmin).all())
    True
    """
    lay = _layout(size, seed, n_glaciers, resolution, crs, origin)
    return _outlines_frame(lay)


def _outlines_frame(lay: _Layout) -> Any:
    import geopandas as gpd

    n = lay.gband.size
    ids = [f"SYN60-00.{k + 1:05d}" for k in range(n)]
    names = [f"Synthetic Ferner {k + 1}" for k in range(n)]
    areas = np.array([p.area for p in lay.polygons]) / 1e6 if n else np.zeros(0)
    return gpd.GeoDataFrame(
        {
            "rgi_id": ids,
            "name": names,
            "area_km2": areas,
            "zmin": lay.zmin.astype(np.float64),
            "zmax": lay.zmax.astype(np.float64),
        },
        geometry=gpd.GeoSeries(list(lay.polygons), crs=lay.crs),
        crs=lay.crs,
    )


def _finish(ds: xr.Dataset, lay: _Layout) -> xr.Dataset:
    from xfacies.catalog import class_flag_attrs

    ds["truth"].attrs.update(class_flag_attrs("true glacier surface facies"))
    for k, a in _VAR_ATTRS.items():
        ds[k].attrs.update(a)
    for k in ds.data_vars:  # provenance that models trained on synthetic glaciers check
        ds[k].attrs[IMAGERY_ATTR] = "synthetic"
    ds.attrs[IMAGERY_ATTR] = "synthetic"
    import rioxarray  # noqa: F401  (registers .rio)

    ds = ds.rio.write_crs(lay.crs)
    return ds


def _per_date_coords(infos: list[_DateInfo], lay: _Layout) -> dict[str, tuple[np.ndarray, dict]]:
    return {
        "sun_azimuth": (np.array([i.sun_azimuth for i in infos]), {"units": "degree", "long_name": "sun azimuth, clockwise from north"}),
        "sun_elevation": (np.array([i.sun_elevation for i in infos]), {"units": "degree", "long_name": "sun elevation"}),
        "snowline_altitude": (np.array([i.snowline for i in infos]), {"units": "m", "long_name": "true transient snow-line altitude"}),
        "firnline_altitude": (np.full(len(infos), lay.firnline), {"units": "m", "long_name": "true firn-line altitude"}),
        "cloud_fraction": (np.array([i.cloud_fraction for i in infos]), {"units": "1", "long_name": "nominal cloud cover used to draw the clouds"}),
    }


def scene(
    date: Any = "2021-08-15",
    *,
    size: int | Sequence[int] = 512,
    seed: int = 0,
    n_glaciers: int | None = None,
    resolution: float = 10.0,
    crs: str = "EPSG:32632",
    origin: tuple[float, float] | None = None,
    chunks: int | tuple[int, int] | dict[str, int] | None = None,
    clouds: bool = True,
) -> xr.Dataset:
    """One synthetic acquisition over synthetic valley glaciers.

    Parameters
    ----------
    date
        Acquisition date (anything :class:`pandas.Timestamp` reads).  It
        sets the sun position (10:30 local solar time at the scene centre),
        the snow line and the clouds.
    size, seed, n_glaciers, resolution, crs, origin
        As in :func:`outlines`.
    chunks
        Dask chunk size in pixels (int, ``(cy, cx)`` or ``{"y": cy, "x": cx}``).
        Default: eager NumPy up to 2048 x 2048 pixels, 1024 x 1024 chunks
        above.  The values never depend on the chunking.
    clouds
        Whether to draw clouds (cloud cover varies by date and is zero on
        about a third of the dates).

    Returns
    -------
    xarray.Dataset
        On dims ``y`` (descending), ``x`` (pixel centres, metres) with the CRS
        written by rioxarray:

        * ``features`` (band, y, x) float32, the 11 features of feature set 4
          (the first six are the surface reflectances: ``ds.features.sel(band=OPTICAL_FEATURES)``);
        * ``dem`` (y, x) float32 metres; ``glacier`` (y, x) int32 ids (0 off-glacier);
        * ``truth`` (y, x) int8 catalogue class ids, ``NODATA`` off-glacier;
        * scalar coordinates ``time``, ``sun_azimuth``, ``sun_elevation``,
          ``snowline_altitude``, ``firnline_altitude``, ``cloud_fraction``.

    Examples
    --------
    >>> ds = scene("2021-08-15", size=256, seed=0)
    >>> ds.features.band.values[-3:].tolist()
    ['shadow_mask', 'hillshade', 'proximity']
    >>> 40 < float(ds.sun_elevation) < 60 and 120 < float(ds.sun_azimuth) < 170
    True
    """
    lay = _layout(size, seed, n_glaciers, resolution, crs, origin)
    b = _Builder(lay, _resolve_chunks(chunks, lay.ny, lay.nx))
    info = _date_info(lay, date, _scene_latitude(lay), clouds)
    pmax = b.distance_max()
    v = _static_vars(b)
    dv = _date_vars(b, info, pmax)
    ds = xr.Dataset(
        {
            "features": (("band", "y", "x"), dv["features"]),
            "dem": v["dem"],
            "glacier": v["glacier"],
            "truth": (("y", "x"), dv["truth"], {"long_name": "true facies"}),
        },
        coords={
            **_coords(lay),
            "band": ("band", list(FEATURE_SETS[4])),
            "time": ((), info.date),
            **{k: ((), val[0], a) for k, (val, a) in _per_date_coords([info], lay).items()},
        },
        attrs=_attrs(lay, "scene"),
    )
    return _finish(ds, lay)


def season_dates(dates: int | Sequence[Any], year: int) -> list[np.datetime64]:
    if isinstance(dates, (int, np.integer)):
        if dates < 1:
            raise InputError(f"dates must be >= 1 or a list of dates, got {dates}")
        start = pd.Timestamp(year=year, month=6, day=1)
        end = pd.Timestamp(year=year, month=9, day=30)
        span = (end - start).days
        days = [0] if dates == 1 else np.round(np.linspace(0, span, int(dates))).astype(int)
        return [_to_datetime64(start + pd.Timedelta(days=int(d))) for d in days]
    out = [_to_datetime64(d) for d in dates]
    if not out:
        raise InputError("dates is empty; give a number of dates or a list of dates")
    return out


def season(
    dates: int | Sequence[Any] = 6,
    *,
    year: int = 2021,
    size: int | Sequence[int] = 512,
    seed: int = 0,
    n_glaciers: int | None = None,
    resolution: float = 10.0,
    crs: str = "EPSG:32632",
    origin: tuple[float, float] | None = None,
    chunks: int | tuple[int, int] | dict[str, int] | None = None,
    clouds: bool = True,
) -> xr.Dataset:
    """A melt season of synthetic acquisitions over the same glaciers.

    Parameters
    ----------
    dates
        Number of dates spread evenly over 1 June - 30 September of ``year``,
        or a list of dates.
    year
        Year of the generated dates (when ``dates`` is a number).
    size, seed, n_glaciers, resolution, crs, origin, chunks, clouds
        As in :func:`scene`.

    Returns
    -------
    xarray.Dataset
        As :func:`scene` with a leading ``time`` dim (datetime64[ns]) on
        ``features`` and ``truth`` and per-time coordinates
        ``sun_azimuth``, ``sun_elevation``, ``snowline_altitude``,
        ``firnline_altitude`` and ``cloud_fraction``.  ``season(...).isel(time=i)``
        equals ``scene(date_i, ...)`` (same seed and size).

    Examples
    --------
    >>> ds = season(3, size=128, seed=2)
    >>> ds.truth.dims, ds.sizes["time"]
    (('time', 'y', 'x'), 3)
    >>> bool((ds.snowline_altitude.diff("time") > 0).all())
    True
    """
    lay = _layout(size, seed, n_glaciers, resolution, crs, origin)
    b = _Builder(lay, _resolve_chunks(chunks, lay.ny, lay.nx))
    lat = _scene_latitude(lay)
    infos = [_date_info(lay, d, lat, clouds) for d in season_dates(dates, year)]
    pmax = b.distance_max()
    per = [_date_vars(b, i, pmax) for i in infos]
    if b.lazy:
        import dask.array as da

        stack: Any = da.stack
    else:
        stack = np.stack
    v = _static_vars(b)
    ds = xr.Dataset(
        {
            "features": (("time", "band", "y", "x"), stack([p["features"] for p in per])),
            "dem": v["dem"],
            "glacier": v["glacier"],
            "truth": (("time", "y", "x"), stack([p["truth"] for p in per]), {"long_name": "true facies"}),
        },
        coords={
            **_coords(lay),
            "band": ("band", list(FEATURE_SETS[4])),
            "time": ("time", np.array([i.date for i in infos], dtype="datetime64[ns]")),
            **{k: ("time", val, a) for k, (val, a) in _per_date_coords(infos, lay).items()},
        },
        attrs=_attrs(lay, "season"),
    )
    return _finish(ds, lay)



def labelled_points(ds: xr.Dataset, *, n_per_class: int = 100, flip: float = 0.0, seed: int = 0,
                    crs: Any = None):
    """Labelled points on a synthetic season, as a field campaign or an analyst would give them.

    Parameters
    ----------
    ds
        A :func:`season` or :func:`scene` Dataset (``truth``, ``glacier``, x/y and its CRS).
    n_per_class
        At most this many points per class (fewer where a class is rarer), drawn over all dates.
    flip
        Fraction of the facies points (ice, snow, debris, firn, refrozen-like) whose label is
        replaced by another facies class: label noise for confident-learning tests.  The true
        class stays in ``true_class``.
    seed
        Seeds the draw and the flips.
    crs
        Reproject the points to this CRS (default: the season's).

    Returns
    -------
    geopandas.GeoDataFrame
        ``class`` (name), ``true_class``, ``flipped``, ``date``, ``glacier`` and point geometry
        at pixel centres.

    Examples
    --------
    >>> pts = labelled_points(season(2, size=96, seed=1), n_per_class=5, seed=0)   # doctest: +SKIP
    >>> sorted(pts.columns)                                                         # doctest: +SKIP
    ['class', 'date', 'flipped', 'geometry', 'glacier', 'true_class']
    """
    import geopandas as gpd

    from xfacies import catalog

    truth = np.asarray(ds["truth"].values)
    if truth.ndim == 2:
        truth = truth[None]
    times = np.atleast_1d(np.asarray(ds["time"].values))
    glacier = np.asarray(ds["glacier"].values)
    xs, ys = np.asarray(ds["x"].values), np.asarray(ds["y"].values)
    rng = np.random.default_rng(seed)
    rows = []
    for c in catalog.CLASSES:
        t, r, q = np.nonzero(truth == c.id)
        if t.size == 0:
            continue
        pick = rng.choice(t.size, size=min(n_per_class, t.size), replace=False)
        rows += [(c.id, t[i], r[i], q[i]) for i in pick]
    cls = np.array([r[0] for r in rows], dtype=np.int64)
    given = cls.copy()
    facies = np.asarray(catalog.FACIES_CLASSES)
    is_facies = np.isin(cls, facies)
    n_flip = int(round(flip * is_facies.sum()))
    flipped = np.zeros(cls.size, bool)
    if n_flip:
        idx = rng.choice(np.flatnonzero(is_facies), size=n_flip, replace=False)
        for i in idx:
            given[i] = rng.choice(facies[facies != cls[i]])
        flipped[idx] = True
    names = catalog.class_names()
    gdf = gpd.GeoDataFrame(
        {"class": [names[i] for i in given], "true_class": [names[i] for i in cls], "flipped": flipped,
         "date": times[[r[1] for r in rows]],
         "glacier": [f"{ds.attrs.get('seed', 0)}-{int(glacier[r[2], r[3]])}" for r in rows]},
        geometry=gpd.points_from_xy(xs[[r[3] for r in rows]], ys[[r[2] for r in rows]]),
        crs=ds.rio.crs)
    return gdf if crs is None else gdf.to_crs(crs)

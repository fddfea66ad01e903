"""The synthetic landscape: east-west ranges, north-flowing valley glaciers in U-shaped troughs,
their analytic DEM, outlines and edge distances (small, computed eagerly; evaluated on any window)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xfacies.errors import InputError
from xfacies.features import proximity
from xfacies.synthetic.noise import S_DEM1, S_DEM2, S_LAYOUT, fbm, smoothstep, value_noise

__all__ = ["Landscape", "make_landscape", "normalise_size"]

_DEFAULT_ORIGIN = (630000.0, 5190000.0)  # top-left corner, EPSG:32632, Ötztal Alps
_BAND_HEIGHT = 700.0  # pixels per mountain range (north-south)
_GLACIER_SPACING = 170.0  # pixels of scene width per glacier
_TAIL = 10.0 * math.tan(math.radians(8.0))  # valley-floor drop below a tongue, m per pixel
_WALL = 0.47  # valley walls reach the ridge line this far (fraction of a glacier cell) from the axis
_BACK = 0.25  # fraction of a range taken by the slope up to the next crest north

# --------------------------------------------------------------------------
# Layout: ranges and glaciers (small, computed eagerly)
# --------------------------------------------------------------------------


@dataclass
class Landscape:
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
    _edges: Any = None  # the EdgeIndex of the outlines, built on first use

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
            zj = fj[:, None] + (rz - fj)[:, None] * smoothstep(t)
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
                w = smoothstep((v[back] - (1.0 - _BACK) * self.hb) / (_BACK * self.hb))[:, None]
                zb[back] = zb[back] * (1.0 - w) + zc * w
                tb[back] = tb[back] * (1.0 - w) + np.maximum(tc, 1.0) * w
            z[rsel] = zb
            tmin[rsel] = tb
        rough = 45.0 * fbm(self.seed, S_DEM1, rows, cols, 64.0) + 10.0 * value_noise(
            self.seed, S_DEM2, rows, cols, 9.0
        )
        z = z + smoothstep(tmin / 0.35) * rough
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
    @property
    def grid(self) -> tuple[float, float, float, float]:
        """``(x0, dx, y0, dy)`` of the pixel centres, as :mod:`xfacies.features.proximity` takes it."""
        return (self.x0 + self.res / 2.0, self.res, self.y0 - self.res / 2.0, -self.res)

    def edges(self) -> Any:
        """The outline segments and their k-d tree (:class:`xfacies.features.proximity.EdgeIndex`)."""
        if self._edges is None:
            self._edges = proximity.EdgeIndex(*proximity.ring_segments(self.polygons), 2.0 * self.res)
        return self._edges

    def edge_distance(self, r0: int, r1: int, c0: int, c1: int) -> NDArray[np.float64]:
        """Exact distance (m) from the pixel centres of a window to the nearest outline boundary:
        :func:`xfacies.features.proximity.distance_window`, the computation of :func:`xfacies.features`."""
        if not self.polygons:
            return np.full((r1 - r0, c1 - c0), np.inf)
        return proximity.distance_window(self.grid, (r0, r1, c0, c1), self.edges())

    def edge_distance_max(self) -> float:
        """Exact maximum over all pixel centres of :meth:`edge_distance`."""
        if not self.polygons:
            return float("inf")
        return proximity.distance_max(self.grid, (self.ny, self.nx), self.edges())

    # -- relief bound -----------------------------------------------------------
    def relief_bound(self) -> float:
        """An upper bound of the DEM relief (m), for the shadow halo."""
        top = float(self.crest.max() + self.relief.max() + 60.0)
        if self.zt.size:
            low = float(self.zt.min() - _TAIL * self.hb - 60.0)
        else:
            low = float(self.crest.min() - 250.0 - 2.5 * self.hb - 60.0)
        return top - low


def normalise_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``(ny, nx)`` from one number or two; refuses scenes under 16 x 16 pixels."""
    if isinstance(size, (int, np.integer)):
        ny = nx = int(size)
    else:
        ny, nx = (int(s) for s in size)
    if ny < 16 or nx < 16:
        raise InputError(f"size must be at least 16 x 16 pixels, got {(ny, nx)}")
    return ny, nx


def make_landscape(
    size: int | Sequence[int],
    seed: int,
    n_glaciers: int | None,
    resolution: float,
    crs: str,
    origin: tuple[float, float] | None,
) -> Landscape:
    """The geometry of a scene: ranges, glaciers (parameters, outlines, DEM extremes inside them)."""
    import shapely

    ny, nx = normalise_size(size)
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
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, S_LAYOUT])
    crest = 3560.0 + rng.uniform(-40.0, 60.0, nb)
    relief = rng.uniform(280.0, 330.0, nb)
    wc = np.array([nx / max(c, 1) for c in counts], dtype=float)
    lay = Landscape(
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


def _edge_rows(lay: Landscape, poly: Any, w_edge: float, ca: int, cb: int, direction: int) -> int:
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

"""Hashing and noise of the synthetic scenes: pure functions of integer keys, so that a pixel's
value never depends on the chunking (splitmix64-style hashes, hashed-lattice value noise)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["S_ALB1", "S_ALB2", "S_CLOUD", "S_CLOUDDATE", "S_CLOUDN", "S_DEBRIS", "S_DEM1", "S_DEM2", "S_FIRN",
           "S_LAYOUT", "S_MEADOW", "S_NOISE", "S_POND1", "S_POND2", "S_SNOW1", "S_SNOW2", "fbm", "hash_key",
           "hash_uniform", "smoothstep", "value_noise", "white_noise"]



# Salts separating the independent random fields.
S_LAYOUT, S_DEM1, S_DEM2, S_SNOW1, S_SNOW2, S_FIRN = 1, 2, 3, 4, 5, 6
S_DEBRIS, S_POND1, S_POND2, S_ALB1, S_ALB2, S_MEADOW = 7, 8, 9, 10, 11, 12
S_NOISE, S_CLOUD, S_CLOUDDATE, S_CLOUDN = 13, 14, 15, 16


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


def hash_key(*keys: Any) -> NDArray[np.uint64]:
    """Hash a sequence of integer keys (arrays broadcast) into uint64."""
    h = np.zeros((), dtype=np.uint64)
    for k in keys:
        k64 = np.asarray(k, dtype=np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            h = _mix(h + _GOLD + k64)
    return np.asarray(h)


def hash_uniform(h: NDArray[np.uint64]) -> NDArray[np.float64]:
    """uint64 hash -> uniform [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def white_noise(seed: int, salt: int, extra: int, rows: NDArray, cols: NDArray) -> NDArray[np.float64]:
    """Per-pixel uniform noise in [-1, 1) for global rows x cols."""
    hr = hash_key(seed, salt, extra, rows)
    with np.errstate(over="ignore"):
        h = _mix(hr[:, None] + _GOLD + cols.astype(np.int64).astype(np.uint64)[None, :])
    return 2.0 * hash_uniform(h) - 1.0


def value_noise(seed: int, salt: int, rows: NDArray, cols: NDArray, scale: float) -> NDArray[np.float64]:
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
    g = 2.0 * hash_uniform(hash_key(seed, salt, il[:, None], jl[None, :])) - 1.0
    a, b = g[i0 - ia], g[i0 - ia + 1]
    r = a + (b - a) * sr[:, None]
    c0, c1 = r[:, j0 - ja], r[:, j0 - ja + 1]
    return c0 + (c1 - c0) * sc[None, :]


def fbm(seed: int, salt: int, rows: NDArray, cols: NDArray, scale: float, octaves: int = 3) -> NDArray[np.float64]:
    """Fractal sum of ``octaves`` value-noise fields (each half the scale and amplitude), in [-1, 1]."""
    out = np.zeros((rows.size, cols.size))
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        out += amp * value_noise(seed, salt * 16 + o, rows, cols, scale / 2.0**o)
        norm += amp
        amp *= 0.5
    return out / norm


def smoothstep(t: NDArray) -> NDArray:
    """``3 t^2 - 2 t^3`` of ``t`` clipped to [0, 1]."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)

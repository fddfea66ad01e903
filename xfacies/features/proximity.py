"""Proximity: the exact distance of every pixel centre to the nearest outline edge.

:func:`edge_distance` is the closed form (point-to-segment distance over every
ring segment, exterior and interior) for scattered points.  The blockwise form
used by :func:`xfacies.features.features` works on square tiles of pixel centres:

1. a 64 x 64 tile takes as candidates every segment with a piece (the rings cut
   into pieces of two pixels, in a k-d tree) within ``u0 + 2 r + half`` of its
   centre (``u0``: the distance to the segment of the nearest piece, ``r``: the
   tile's half-diagonal);
2. a tile keeps a candidate ``s`` only if ``dist(centre, s) <= U + r``, with ``U``
   the largest distance from a tile corner to the candidate nearest to the
   centre (no pixel of the tile is farther than ``U`` from its nearest segment,
   the distance to a segment being convex), then splits in four, down to 8 x 8;
3. the pixels of an 8 x 8 tile are measured against its remaining candidates
   (some 30 in a mountain scene), with the point-to-segment formula of
   :func:`edge_distance`, all tiles of a batch at once.

The result is the minimum over all segments, bit for bit what the brute force
gives.  The raster maximum (the normalisation) is a branch and bound: one pixel
per 32 x 32 cell, then every pixel of the cells that may hold the maximum (the
distance is 1-Lipschitz).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from xfacies.errors import InputError
from xfacies import spatial
from xfacies.halo import from_block_tasks

__all__ = ["EdgeIndex", "distance_max", "distance_window", "edge_distance", "normalise_proximity",
           "proximity_block", "ring_segments"]

def ring_segments(outlines: Any) -> tuple[NDArray, NDArray]:
    """All ring segments (exterior and interior rings) of polygons: ``(m, 2)`` start and end points.

    Parameters
    ----------
    outlines
        A GeoDataFrame or GeoSeries of glacier outlines, or a sequence of shapely polygons
        (map coordinates).

    Examples
    --------
    >>> import shapely
    >>> a, b = ring_segments([shapely.box(0, 0, 2, 1)])
    >>> len(a), float(np.hypot(*(b - a).T).sum())   # four edges, perimeter 6
    (4, 6.0)
    """
    import shapely

    geoms = outlines.geometry.to_numpy() if hasattr(outlines, "geometry") else np.asarray(list(outlines), object)
    polys = shapely.get_parts(geoms)
    rings = shapely.get_rings(polys)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    keep = np.any(a != b, axis=1)
    return np.ascontiguousarray(a[keep]), np.ascontiguousarray(b[keep])


def _pieces(a: NDArray, b: NDArray, length: float) -> tuple[NDArray, NDArray, float]:
    """Split segments into pieces no longer than ``length``: midpoints, parent segment, max half-length."""
    seg_len = np.hypot(*(b - a).T)
    n = np.maximum(1, np.ceil(seg_len / length)).astype(np.int64)
    parent = np.repeat(np.arange(len(a)), n)
    start = np.repeat(np.cumsum(n) - n, n)
    frac = (np.arange(n.sum()) - start + 0.5) / n[parent]
    mid = a[parent] + frac[:, None] * (b[parent] - a[parent])
    half = float(np.max(seg_len / n)) / 2.0 if len(a) else 0.0
    return mid, parent, half


def _seg_dist(px: NDArray, py: NDArray, a: NDArray, b: NDArray) -> NDArray:
    """Distance from points (n,) to segments a-b given per point: a, b shaped (n, k, 2)."""
    ax, ay = a[..., 0], a[..., 1]
    ex, ey = b[..., 0] - ax, b[..., 1] - ay
    qx, qy = px[:, None] - ax, py[:, None] - ay
    den = np.maximum(ex * ex + ey * ey, 1e-300)
    t = np.clip((qx * ex + qy * ey) / den, 0.0, 1.0)
    dx, dy = qx - t * ex, qy - t * ey
    return np.sqrt(dx * dx + dy * dy)


def edge_distance(px: ArrayLike, py: ArrayLike, a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """Exact Euclidean distance from points to the nearest of the segments ``a[i]``-``b[i]``.

    Candidates come from a KD-tree of segment pieces (the segments split into
    pieces of about the median segment length); a point's result is accepted
    when it is *certified* (no unexamined piece can be closer: each is at least
    its midpoint distance minus half its length away), else more candidates
    are examined, finally all segments.  The value for a point is the minimum
    of exact point-segment distances, so it never depends on which other
    points are asked at the same time.

    Parameters
    ----------
    px, py
        Point coordinates (any matching shapes).
    a, b
        ``(m, 2)`` segment start and end points.

    Returns
    -------
    numpy.ndarray
        float64 distances shaped like ``px`` (``inf`` without segments).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[0.0, 0.0]]); b = np.array([[10.0, 0.0]])
    >>> edge_distance(np.array([5.0, 13.0]), np.array([2.0, 4.0]), a, b).tolist()
    [2.0, 5.0]
    """
    from scipy.spatial import cKDTree

    px = np.asarray(px, dtype=np.float64)
    py = np.asarray(py, dtype=np.float64)
    shape = px.shape
    x, y = px.ravel(), py.ravel()
    out = np.full(x.size, np.inf)
    m = len(a)
    if m == 0 or x.size == 0:
        return out.reshape(shape)
    todo = np.arange(x.size)
    if m > 16:
        seg_len = np.hypot(*(b - a).T)
        mid, parent, half = _pieces(a, b, max(float(np.median(seg_len)), 1e-9))
        tree = cKDTree(mid)
        for k in (16, 48, 160):
            if todo.size == 0 or k >= len(mid):
                break
            left = []
            for s in range(0, todo.size, 32768):
                sel = todo[s : s + 32768]
                dk, ik = tree.query(np.column_stack([x[sel], y[sel]]), k=k)
                segs = parent[ik]
                d = _seg_dist(x[sel], y[sel], a[segs], b[segs]).min(axis=1)
                ok = d <= dk[:, -1] - half
                out[sel[ok]] = d[ok]
                left.append(sel[~ok])
            todo = np.concatenate(left)
    if todo.size:  # not certified (or few segments): all segments, a few points at a time
        step = max(1, 1_000_000 // m)
        for s in range(0, todo.size, step):
            sel = todo[s : s + step]
            idx = np.broadcast_to(np.arange(m), (sel.size, m))
            out[sel] = _seg_dist(x[sel], y[sel], a[idx], b[idx]).min(axis=1)
    return out.reshape(shape)




#: Leaf tiles (pixels a side) whose pixels are measured against their own candidate segments.
_LEAF = 8
#: Top tiles (pixels a side; ``_LEAF`` times a power of two) whose candidates come from the k-d tree.
_TOP = 64
#: float64 elements per temporary array in the leaf measurement (2 MiB: stays in the cache).
_BATCH = 1 << 18
#: Top tiles measured together (bounds the memory of the candidate lists).
_TOP_BATCH = 64
#: Cells (pixels a side; ``_LEAF`` times a power of two) of the branch and bound for the maximum.
_MAX_CELL = 32


class EdgeIndex:
    """The outline segments ``a[i]``-``b[i]`` and a k-d tree of their pieces (the candidate search
    of :func:`distance_window` and :func:`distance_max`).

    Parameters
    ----------
    a, b
        ``(m, 2)`` segment start and end points (:func:`ring_segments`).
    piece
        Length the segments are cut into for the k-d tree, map units (two pixels is a good choice).
    """

    def __init__(self, a: NDArray, b: NDArray, piece: float) -> None:
        from scipy.spatial import cKDTree

        self.a = np.ascontiguousarray(a, dtype=np.float64)
        self.b = np.ascontiguousarray(b, dtype=np.float64)
        self.mid, self.parent, self.half = _pieces(self.a, self.b, max(float(piece), 1e-9))
        self.tree = cKDTree(self.mid)
        # per segment, as in _seg_dist: start, direction, squared length
        self.ax, self.ay = self.a[:, 0].copy(), self.a[:, 1].copy()
        self.ex, self.ey = self.b[:, 0] - self.ax, self.b[:, 1] - self.ay
        self.den = np.maximum(self.ex * self.ex + self.ey * self.ey, 1e-300)

    def dist2(self, px: NDArray, py: NDArray, seg: NDArray) -> NDArray:
        """Squared distance from points ``(n,)`` to the segments ``seg`` ``(n,)``, one each."""
        ax, ay, ex, ey = self.ax[seg], self.ay[seg], self.ex[seg], self.ey[seg]
        qx, qy = px - ax, py - ay
        t = qx * ex
        t += qy * ey
        t /= self.den[seg]
        np.clip(t, 0.0, 1.0, out=t)
        ex *= t
        ey *= t
        qx -= ex
        qy -= ey
        qx *= qx
        qy *= qy
        qx += qy
        return qx


def _group_starts(tile: NDArray, n: int) -> tuple[NDArray, NDArray]:
    counts = np.bincount(tile, minlength=n)
    return counts, np.cumsum(counts) - counts


def _prune(X: NDArray, Y: NDArray, tile: NDArray, seg: NDArray, ix: EdgeIndex, tol: float
           ) -> tuple[NDArray, NDArray]:
    """Keep, per tile, the candidate segments that can be the nearest for one of its pixels.

    ``tile``/``seg``: candidate pairs grouped by tile (every tile has one).  With ``c`` the centre
    of a tile's pixel box, ``r`` its half-diagonal and ``s*`` the candidate nearest to ``c``,
    every pixel ``p`` has ``D(p) <= dist(p, s*) <= U`` = the largest distance from a box corner
    to ``s*`` (the distance to a segment is convex), so a segment ``s`` can be nearest to ``p``
    only if ``dist(c, s) <= dist(p, s) + r <= U + r``."""
    x_lo, x_hi, y_lo, y_hi = X[:, 0], X[:, -1], Y[:, 0], Y[:, -1]
    cx, cy = (x_lo + x_hi) / 2.0, (y_lo + y_hi) / 2.0
    r = 0.5 * np.hypot(x_hi - x_lo, y_hi - y_lo)
    d2 = ix.dist2(cx[tile], cy[tile], seg)
    counts, starts = _group_starts(tile, len(X))
    dmin = np.minimum.reduceat(d2, starts)
    hit = np.flatnonzero(d2 == dmin[tile])
    th = tile[hit]
    best = seg[hit[np.concatenate(([True], th[1:] != th[:-1]))]]
    u2 = np.maximum.reduce([ix.dist2(x, y, best) for x in (x_lo, x_hi) for y in (y_lo, y_hi)])
    keep = d2 <= ((np.sqrt(u2) + r + tol) ** 2)[tile]
    return tile[keep], seg[keep]


def _tile_distance(X: NDArray, Y: NDArray, ix: EdgeIndex) -> NDArray[np.float64]:
    """Exact edge distance on square tiles of pixel centres: ``(T, S, S)`` for the centres
    ``(X[t, j], Y[t, i])``; ``X``, ``Y`` ``(T, S)`` monotonic, ``S`` = ``_LEAF`` times a power of 2.

    Candidates per tile: the segments with a piece within reach (k-d tree), then pruned tile by
    tile while the tiles are split in four down to ``_LEAF`` pixels (:func:`_prune`); each leaf's
    pixels are measured against its few remaining candidates, the same point-to-segment formula
    as :func:`edge_distance`, so the values are the exact minimum over all segments."""
    ntile, S = X.shape
    a = ix.a
    m = len(a)
    if ntile == 0:
        return np.empty((0, S, S))
    if ntile > _TOP_BATCH:
        return np.concatenate([_tile_distance(X[i:i + _TOP_BATCH], Y[i:i + _TOP_BATCH], ix)
                               for i in range(0, ntile, _TOP_BATCH)])
    scale = float(np.max(np.abs(X)) + np.max(np.abs(Y)) + np.max(np.abs(a)) + 1.0)
    tol = 1e-9 * scale  # far above the rounding of the distances (~1e-15 of the coordinates)
    # ---- top tiles: every segment with a piece within u0 + 2 r + half of the centre, where
    # u0 = distance to the segment of the nearest piece (D(p) <= u0 + r for every pixel p)
    x_lo, x_hi, y_lo, y_hi = X[:, 0], X[:, -1], Y[:, 0], Y[:, -1]
    cx, cy = (x_lo + x_hi) / 2.0, (y_lo + y_hi) / 2.0
    r = 0.5 * np.hypot(x_hi - x_lo, y_hi - y_lo)
    centres = np.column_stack([cx, cy])
    _, inn = ix.tree.query(centres)
    nn = ix.parent[inn]
    u0 = np.sqrt(ix.dist2(cx, cy, nn))
    lists = ix.tree.query_ball_point(centres, r=u0 + 2 * r + ix.half + tol, return_sorted=False)
    counts = np.fromiter(map(len, lists), np.int64, ntile)
    pieces = np.fromiter(itertools.chain.from_iterable(lists), np.int64, int(counts.sum()))
    key = np.unique(np.repeat(np.arange(ntile, dtype=np.int64), counts) * m + ix.parent[pieces])
    tile, seg = key // m, key % m
    # ---- prune, split in four, prune ... down to the leaves
    while True:
        tile, seg = _prune(X, Y, tile, seg, ix, tol)
        if S <= _LEAF:
            break
        h = S // 2
        counts, starts = _group_starts(tile, len(X))
        # child 4 t + q (q = 2 qy + qx) inherits the candidates of tile t
        ccount = np.repeat(counts, 4)
        cstart = np.cumsum(ccount) - ccount
        child = np.repeat(np.arange(4 * len(X), dtype=np.int64), ccount)
        j = np.arange(child.size, dtype=np.int64) - cstart[child]
        seg = seg[starts[child // 4] + j]
        tile = child
        X = X.reshape(-1, 2, h)[:, [0, 1, 0, 1]].reshape(-1, h)
        Y = Y.reshape(-1, 2, h)[:, [0, 0, 1, 1]].reshape(-1, h)
        S = h
    return _leaf_distance(X, Y, tile, seg, ix)


def _leaf_distance(X: NDArray, Y: NDArray, tile: NDArray, seg: NDArray, ix: EdgeIndex) -> NDArray[np.float64]:
    """Minimum point-to-segment distance over each leaf tile's candidates, all pixels at once
    (tiles batched by candidate count, short lists padded with their last candidate)."""
    ntile, L = X.shape
    counts, starts = _group_starts(tile, ntile)
    order = np.argsort(counts, kind="stable")
    out = np.empty((ntile, L, L))
    i = 0
    while i < ntile:
        j = min(ntile, i + max(1, _BATCH // (L * L * int(counts[order[i]]))))
        j = min(j, i + max(1, _BATCH // (L * L * int(counts[order[j - 1]]))))
        sel = order[i:j]
        cm = int(counts[sel[-1]])
        k = np.minimum(np.arange(cm), (counts[sel] - 1)[:, None])
        ids = seg[starts[sel][:, None] + k]                       # (B, C)
        ax, ay, ex, ey, den = ix.ax[ids], ix.ay[ids], ix.ex[ids], ix.ey[ids], ix.den[ids]
        qx = X[sel][:, None, :] - ax[..., None]                   # (B, C, L): columns
        qy = Y[sel][:, None, :] - ay[..., None]                   # (B, C, L): rows
        t = (qx * ex[..., None])[:, :, None, :] + (qy * ey[..., None])[:, :, :, None]
        t /= den[..., None, None]
        np.clip(t, 0.0, 1.0, out=t)
        u = t * ex[..., None, None]
        np.subtract(qx[:, :, None, :], u, out=u)                  # dx
        t *= ey[..., None, None]
        np.subtract(qy[:, :, :, None], t, out=t)                  # dy
        u *= u
        t *= t
        u += t
        out[sel] = u.min(axis=1)
        i = j
    return np.sqrt(out, out=out)


def _lattice_distance(xs: NDArray, ys: NDArray, ix: EdgeIndex) -> NDArray[np.float64]:
    """Exact edge distance at the pixel centres ``(ys[i], xs[j])`` (monotonic coordinates)."""
    ny, nx = len(ys), len(xs)
    if len(ix.a) == 0 or ny == 0 or nx == 0:
        return np.full((ny, nx), np.inf)
    S = _TOP
    ty, tx = -(-ny // S), -(-nx // S)
    # pad with the last coordinate: the phantom pixels repeat a real one (cropped below)
    xp = np.asarray(xs, dtype=np.float64)[np.minimum(np.arange(tx * S), nx - 1)].reshape(tx, S)
    yp = np.asarray(ys, dtype=np.float64)[np.minimum(np.arange(ty * S), ny - 1)].reshape(ty, S)
    X = np.broadcast_to(xp[None], (ty, tx, S)).reshape(-1, S)
    Y = np.broadcast_to(yp[:, None], (ty, tx, S)).reshape(-1, S)
    tiles = _tile_distance(X, Y, ix)                              # (ty * tx * (S/L)^2, L, L)
    q = S // _LEAF
    # leaf order: top tile (row, col), then the quadrant digits (qy, qx) from coarse to fine
    levels = int(round(math.log2(q)))
    tiles = tiles.reshape((ty, tx) + (2, 2) * levels + (_LEAF, _LEAF))
    ry = [2 + 2 * k for k in range(levels)]
    rx = [3 + 2 * k for k in range(levels)]
    axes = [0] + ry + [2 + 2 * levels, 1] + rx + [3 + 2 * levels]
    full = tiles.transpose(axes).reshape(ty * S, tx * S)
    return np.ascontiguousarray(full[:ny, :nx])


def distance_window(grid: tuple[float, float, float, float], loc: tuple[int, int, int, int],
                    ix: EdgeIndex) -> NDArray[np.float64]:
    """Exact edge distance at the pixel centres of window ``loc = (r0, r1, c0, c1)`` of ``grid``.

    Parameters
    ----------
    grid
        ``(x0, dx, y0, dy)``: the centre of pixel (0, 0) and the pixel steps (``dy`` negative
        on a north-up grid), map units.
    loc
        Rows ``r0:r1`` and columns ``c0:c1``.
    ix
        The outline segments (:class:`EdgeIndex`).

    Returns
    -------
    numpy.ndarray
        float64 ``(r1 - r0, c1 - c0)``; the same values as :func:`edge_distance` at those points.

    Examples
    --------
    >>> import shapely
    >>> ix = EdgeIndex(*ring_segments([shapely.box(0, 0, 40, 40)]), piece=20.0)
    >>> distance_window((5.0, 10.0, 35.0, -10.0), (0, 4, 0, 4), ix).tolist()[1]
    [5.0, 15.0, 15.0, 5.0]
    """
    x0, dx, y0, dy = grid
    r0, r1, c0, c1 = loc
    return _lattice_distance(x0 + dx * np.arange(c0, c1), y0 + dy * np.arange(r0, r1), ix)


def distance_max(grid: tuple[float, float, float, float], shape: tuple[int, int], ix: EdgeIndex) -> float:
    """Exact maximum of the edge distance over all pixel centres of a ``shape`` grid (branch and
    bound over cells of 32 x 32 pixels: the distance is 1-Lipschitz).

    Examples
    --------
    >>> import shapely
    >>> ix = EdgeIndex(*ring_segments([shapely.box(0, 0, 40, 40)]), piece=20.0)
    >>> distance_max((5.0, 10.0, 35.0, -10.0), (4, 4), ix)
    15.0
    """
    ny, nx = shape
    x0, dx, y0, dy = grid
    if ny * nx <= 512 * 512:
        return float(np.max(distance_window(grid, (0, ny, 0, nx), ix)))
    s = _MAX_CELL
    rs = np.minimum(np.arange(ny // s + (ny % s > 0)) * s + s // 2, ny - 1)
    cs = np.minimum(np.arange(nx // s + (nx % s > 0)) * s + s // 2, nx - 1)
    # one pixel per cell (scattered points: the k-d tree query of edge_distance)
    f = edge_distance(*np.meshgrid(x0 + dx * cs, y0 + dy * rs), ix.a, ix.b)
    best = float(f.max())
    # every pixel of a cell is within s/2 pixels (per axis) of its sample; distance is 1-Lipschitz
    bound = (s / 2.0) * math.hypot(dx, dy) * (1 + 1e-9) + 1e-9
    ci, cj = np.nonzero(f + bound >= best)
    top = best
    for k in range(0, len(ci), 1024):  # the cells that may hold the maximum, as tiles of s x s
        rows = np.minimum(ci[k:k + 1024, None] * s + np.arange(s), ny - 1)
        cols = np.minimum(cj[k:k + 1024, None] * s + np.arange(s), nx - 1)
        top = max(top, float(_tile_distance(x0 + dx * cols, y0 + dy * rows, ix).max()))
    return top


def proximity_block(outl: Any, cube: xr.DataArray, ych: tuple, xch: tuple) -> Any:
    """Edge distance / its raster maximum, block by block (exact, no halo)."""
    import dask
    from dask.base import tokenize

    t = spatial.transform(cube)
    dx, dy = float(t.a), float(t.e)
    grid = (float(t.c) + dx / 2, dx, float(t.f) + dy / 2, dy)
    a, b = ring_segments(outl)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    if len(a) == 0:
        raise InputError("the outlines are empty (no glacier polygon with a boundary), so there is no edge to "
                         "measure proximity to: pass at least one glacier outline, or leave 'proximity' out "
                         "of the feature set")
    token = tokenize(grid, (ny, nx), a, b)
    # the segments and their k-d tree: one task, shared by the blocks and the maximum
    ix = dask.delayed(EdgeIndex, pure=True)(a, b, 2.0 * max(abs(dx), abs(dy)),
                                         dask_key_name=f"xfacies-proximity-index-{token}")
    pmax = dask.delayed(distance_max, pure=True)(grid, (ny, nx), ix,
                                                  dask_key_name=f"xfacies-proximity-max-{token}")

    # each block waits for the maximum and is normalised at once: no float64 block is kept
    # in memory until the maximum is known
    def block(window: tuple[int, int, int, int]) -> Any:
        return dask.delayed(_proximity_block, pure=True)(
            grid, window, ix, pmax, dask_key_name=f"xfacies-proximity-{token}-{window[0]}-{window[2]}")

    return from_block_tasks(block, ych, xch, np.float32)


def normalise_proximity(distance: Any, maximum: Any) -> Any:
    """The proximity feature: edge distances over their maximum over the raster, float32.

    The one rule of :func:`xfacies.features`, :mod:`xfacies.synthetic` and ``xfacies apply``
    (a maximum of 0 or NaN, no edge at all, leaves the distances as they are).  NumPy or dask.

    Examples
    --------
    >>> normalise_proximity(np.array([0.0, 15.0, 30.0]), 30.0).tolist()
    [0.0, 0.5, 1.0]
    """
    if not hasattr(maximum, "dask") and not float(maximum) > 0:  # a lazy maximum is divided by as it is
        return distance.astype(np.float32)
    return (distance / maximum).astype(np.float32)


def _proximity_block(grid: tuple[float, float, float, float], loc: tuple[int, int, int, int], ix: EdgeIndex,
                     dmax: float) -> NDArray[np.float32]:
    """The proximity feature of one block: its edge distances over the raster maximum."""
    return normalise_proximity(distance_window(grid, loc, ix), dmax)

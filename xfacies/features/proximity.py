"""Proximity: the exact distance of every pixel centre to the nearest outline edge.

:func:`edge_distance` is the closed form (point-to-segment distance over every
ring segment, exterior and interior); the blockwise form used by
:func:`xfacies.features.features` only measures, per block, the segments that
can be nearest (a k-d tree over short pieces of the rings), and normalises by the
largest distance in the raster.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from xfacies import spatial
from xfacies.halo import from_block_tasks

__all__ = ["edge_distance"]

def _segments(outlines: Any) -> tuple[NDArray, NDArray]:
    """All ring segments (exterior and interior rings) of the outlines: (m, 2) start and end points."""
    import shapely

    polys = shapely.get_parts(outlines.geometry.to_numpy())
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




def _centres(x0: float, dx: float, y0: float, dy: float, r0: int, r1: int, c0: int, c1: int) -> tuple[NDArray, NDArray]:
    xs = x0 + dx * np.arange(c0, c1)
    ys = y0 + dy * np.arange(r0, r1)
    return np.meshgrid(xs, ys)


def _distance_block(grid: tuple[float, float, float, float], loc: tuple[int, int, int, int],
                    a: NDArray, b: NDArray) -> NDArray[np.float64]:
    px, py = _centres(*grid, *loc)
    return edge_distance(px, py, a, b)


def _distance_max(grid: tuple[float, float, float, float], shape: tuple[int, int],
                  a: NDArray, b: NDArray) -> float:
    """Exact maximum of the edge distance over all pixel centres (branch and bound)."""
    ny, nx = shape
    x0, dx, y0, dy = grid
    if ny * nx <= 512 * 512:
        return float(np.max(_distance_block(grid, (0, ny, 0, nx), a, b)))
    s = 16
    rs = np.minimum(np.arange(ny // s + (ny % s > 0)) * s + s // 2, ny - 1)
    cs = np.minimum(np.arange(nx // s + (nx % s > 0)) * s + s // 2, nx - 1)
    gx, gy = np.meshgrid(x0 + dx * cs, y0 + dy * rs)
    f = edge_distance(gx, gy, a, b)
    best = float(f.max())
    # every pixel of a cell is within s/2 pixels (per axis) of its sample; distance is 1-Lipschitz
    bound = (s / 2.0) * math.hypot(dx, dy) * (1 + 1e-9) + 1e-9
    ci, cj = np.nonzero(f + bound >= best)
    vals = [best]
    for i, j in zip(ci, cj):
        loc = (i * s, min((i + 1) * s, ny), j * s, min((j + 1) * s, nx))
        vals.append(float(_distance_block(grid, loc, a, b).max()))
    return max(vals)


def _proximity(outl: Any, cube: xr.DataArray, ych: tuple, xch: tuple) -> Any:
    """Edge distance / its raster maximum, per block with only the segments that can be nearest."""
    import dask
    import dask.array as da
    from dask.base import tokenize
    from scipy.spatial import cKDTree

    t = spatial.transform(cube)
    dx, dy = float(t.a), float(t.e)
    grid = (float(t.c) + dx / 2, dx, float(t.f) + dy / 2, dy)
    a, b = _segments(outl)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    if len(a) == 0:
        raise ValueError("the outlines have no boundary segments")
    mid, parent, half = _pieces(a, b, abs(dx))
    tree = cKDTree(mid)
    token = tokenize(grid, (ny, nx), a, b)
    pmax = da.from_delayed(
        dask.delayed(_distance_max, pure=True)(grid, (ny, nx), a, b, dask_key_name=f"xfacies-proximity-max-{token}"),
        (), np.float64,
    )
    def block(window: tuple[int, int, int, int]) -> Any:
        r0, r1, c0, c1 = window
        cy, cx = r1 - r0, c1 - c0
        # centre and half-diagonal of the block's pixel centres
        cxm = grid[0] + dx * (c0 + (cx - 1) / 2.0)
        cym = grid[2] + dy * (r0 + (cy - 1) / 2.0)
        rad = 0.5 * math.hypot(dx * (cx - 1), dy * (cy - 1))
        d0, _ = tree.query([cxm, cym])
        # nearest distance for any block pixel <= d0 + half + rad; its nearest point lies in a
        # piece whose midpoint is within that + rad + half of the block centre
        cand = tree.query_ball_point([cxm, cym], r=d0 + 2 * half + 2 * rad + 1e-6 * abs(dx))
        segs = np.unique(parent[np.asarray(cand, dtype=np.int64)])
        return dask.delayed(_distance_block, pure=True)(grid, window, a[segs], b[segs])

    dist = from_block_tasks(block, ych, xch, np.float64)

    def norm(d: NDArray, m: NDArray) -> NDArray:
        return (d / float(m)).astype(np.float32)

    return da.blockwise(norm, "ij", dist, "ij", pmax, "", dtype=np.float32, meta=np.empty((0, 0), np.float32))

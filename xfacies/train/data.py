"""Training data: patches from point labels, and the patch set every training step takes.

Two ways to a training set, one result: :func:`patches_from_points` here and the reference
study's patch folders (:mod:`xfacies.train.reference_patches`).  Both return an
:class:`xarray.Dataset` with

``patches`` (sample, y, x, band) float32
    Raw (not normalised) feature values; NaN = missing.  ``y``/``x`` are pixel offsets
    ``-r .. r`` from the labelled pixel (``r = patch_size // 2``; ``y`` grows southwards, ``x``
    eastwards); ``band`` holds the feature names.
per-sample coordinates
    ``class`` (int8 id of :data:`xfacies.catalog.CLASSES`), ``class_name``, ``glacier`` (text),
    ``date`` (datetime64, the scene's calendar day), ``fold`` (int), ``label_id`` (the point's
    index label in the label table, or the patch file's name), ``point`` (the label's row
    position in the table, or the file's in the sorted listing), ``center_x`` / ``center_y`` (map
    coordinates of the centre pixel) and ``epsg`` (their CRS, 0 where it has no EPSG code).
attributes
    ``features`` (names), ``patch_size``, ``source`` (where the patches came from) and
    ``dropped`` (a JSON list of the labels that gave no patch, and why; see
    :func:`dropped_points`).

:func:`patches_from_points`
    Cuts a patch around every labelled point of a GeoDataFrame from a feature cube
    ``(time, band, y, x)``, lazily: of a dask-backed cube only the chunks that the windows
    touch are computed.
:func:`xfacies.train.reference_patches.read_reference_patches` / ``write_reference_patches``
    The reference study's layout: one 11-band 33 x 33 GeoTIFF per labelled pixel, named
    ``{fold}_{glacier}_{date}_..._{class}.tif`` (its own module).

Dropped labels and folds
------------------------
A label gives no patch when it has no point geometry, lies outside the cube, has no readable
date, falls on a day the cube has no scene for (exact calendar day by default,
``time_tolerance=`` for the nearest scene within some days), or sits on nodata.  Nothing is
dropped silently: a :class:`DroppedPointsWarning` counts each reason and ``attrs["dropped"]``
lists the labels.  Folds come from a fold column, or else from :func:`assign_folds` on the
whole label table: whole glaciers per fold when a glacier column is given, balanced by count.

Scene edges and missing values
------------------------------
Pixels of a window beyond the scene edge are NaN, like missing values inside the scene.  The
trainer normalises the patches and then sets NaN to 0: the reference's "zero padding in
normalised space" (the value the network's own ``'same'`` padding also uses).  A point whose
own (centre) pixel is NaN in any band gives no patch.

Examples
--------
>>> import numpy as np, geopandas as gpd, xarray as xr, rioxarray  # noqa: F401
>>> cube = xr.DataArray(np.arange(2 * 5 * 5, dtype="float32").reshape(1, 2, 5, 5),
...                     dims=("time", "band", "y", "x"),
...                     coords={"time": [np.datetime64("2021-08-15")], "band": ["blue", "green"],
...                             "y": [45.0, 35.0, 25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0, 45.0]}
...                     ).rio.write_crs("EPSG:32632")
>>> pts = gpd.GeoDataFrame({"class": ["snow", "ice"], "date": ["2021-08-15", "2021-08-15"]},
...                        geometry=gpd.points_from_xy([25.0, 6.0], [25.0, 44.0]), crs="EPSG:32632")
>>> ds = patches_from_points(cube, pts, patch_size=3)
>>> ds.patches.sel(band="blue").values[0].tolist()
[[6.0, 7.0, 8.0], [11.0, 12.0, 13.0], [16.0, 17.0, 18.0]]
>>> ds["class_name"].values.tolist(), int(np.isnan(ds.patches[1]).sum())  # the 2nd: at a corner
(['snow', 'ice'], 10)
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Hashable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies import catalog, spatial
from xfacies.errors import GridError, InputError, XfaciesWarning

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

__all__ = [
    "patches_from_points",
    "concat_patches",
    "assign_folds",
    "dropped_points",
    "extract_windows",
    "DroppedPointsWarning",
    "DROP_REASONS",
]


#: Why a label gave no patch (the ``reason`` of :func:`dropped_points`), in checking order.
DROP_REASONS: dict[str, str] = {
    "no_geometry": "without a point geometry",
    "outside": "outside the cube",
    "no_date": "without a readable date",
    "no_scene": "on dates the cube lacks",
    "nodata": "on nodata (NaN in a band at the point)",
}

# Bumped when the cache's content changes for the same files.
_MAX_PIECES_BYTES = 256 * 2**20  # pieces gathered per dask compute in patches_from_points
CLASS_IDS = {c.name: c.id for c in catalog.CLASSES}


class DroppedPointsWarning(XfaciesWarning):
    """Some labels gave no patch (outside the cube, on missing dates or on nodata)."""


# --------------------------------------------------------------------------- classes and folds
def class_ids(values: Iterable[Any], where: str, classes: Sequence[str] | None = None) -> np.ndarray:
    """Class ids (int8) of class names or ids: catalogue ids, or positions in ``classes`` (your own
    class names); a clear error for anything else."""
    if classes is not None:
        names = [str(c) for c in classes]
        index = {n: i for i, n in enumerate(names)}
        out_own, bad_own = [], []
        for v in values:
            key = str(v).strip() if isinstance(v, str) else v
            if isinstance(key, str) and key in index:
                out_own.append(index[key])
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= int(key) < len(names):
                out_own.append(int(key))
            else:
                bad_own.append(v)
                out_own.append(-1)
        if bad_own:
            shown = sorted({repr(b) for b in bad_own})[:10]
            raise InputError(f"{len(bad_own)} class value(s) in {where} are not among classes={names}: "
                             f"{', '.join(shown)}; add them to classes= or leave those labels out")
        return np.asarray(out_own, dtype=np.int8)
    by_name = {**CLASS_IDS, **{c.flag_meaning: c.id for c in catalog.CLASSES}}
    out, bad = [], []
    for v in values:
        cid: int | None = None
        if isinstance(v, str):
            key = v.strip().lower().replace(" ", "-")
            cid = by_name.get(key, by_name.get(key.replace("_", "-")))
            if cid is None and key.isdigit():
                cid = int(key)
        elif isinstance(v, (int, np.integer, float, np.floating)) and not isinstance(v, bool):
            if np.isfinite(v) and float(v) == int(v):
                cid = int(v)
        if cid is None or not 0 <= cid < len(catalog.CLASSES):
            bad.append(v)
            cid = -1
        out.append(cid)
    if bad:
        shown = sorted({repr(b) for b in bad})[:10]
        raise InputError(
            f"{len(bad)} unknown class value(s) in {where}: {', '.join(shown)}; use a class name "
            f"({', '.join(catalog.class_names())}) or its id 0..{len(catalog.CLASSES) - 1}, or name your own "
            "classes with classes=[...]"
        )
    return np.asarray(out, dtype=np.int8)


def concat_patches(*sets: xr.Dataset) -> xr.Dataset:
    """Patch sets cut from several cubes (other grids, glaciers, sensors) as one training set.

    The bands are put in the first set's order (every set must have them all), the samples are
    numbered again ``0 .. N-1``, and every per-sample coordinate is kept; ``attrs["sources"]``
    lists where each set came from, and ``dropped`` joins their dropped labels.

    Parameters
    ----------
    *sets
        Patch Datasets (:func:`patches_from_points`, :func:`read_reference_patches`), or one list
        of them.

    Raises
    ------
    ValueError
        Different patch sizes, a set without one of the first set's bands, or no set at all.

    Examples
    --------
    >>> a = xr.Dataset({"patches": (("sample", "y", "x", "band"), np.zeros((2, 3, 3, 2), "float32"))},
    ...                coords={"band": ["red", "nir"], "class": ("sample", [0, 1])}, attrs={"patch_size": 3})
    >>> b = a.isel(band=[1, 0], sample=[0])
    >>> both = concat_patches(a, b)
    >>> both.sizes["sample"], both["band"].values.tolist(), both["sample"].values.tolist()
    (3, ['red', 'nir'], [0, 1, 2])
    """
    if len(sets) == 1 and isinstance(sets[0], (list, tuple)):
        sets = tuple(sets[0])
    if not sets:
        raise InputError("concat_patches needs at least one patch set")
    for k, ds in enumerate(sets):
        if not isinstance(ds, xr.Dataset) or "patches" not in ds.data_vars:
            raise TypeError(f"set {k} is not a patch Dataset (with a 'patches' variable)")
    bands = [str(b) for b in sets[0]["band"].values]
    sizes = {int(ds.sizes["y"]) for ds in sets} | {int(ds.sizes["x"]) for ds in sets}
    if len(sizes) != 1:
        raise InputError(f"the patch sets have different patch sizes {sorted(sizes)}; cut them with one patch_size")
    parts = []
    for k, ds in enumerate(sets):
        have = [str(b) for b in ds["band"].values]
        missing = [b for b in bands if b not in have]
        if missing:
            raise InputError(f"patch set {k} lacks the band(s) {missing} of the first set (its bands: {have})")
        part = ds.sel(band=bands)
        parts.append(part.drop_vars("sample") if "sample" in part.coords else part)
    out = xr.concat(parts, dim="sample", data_vars="minimal", coords="minimal", compat="override",
                    combine_attrs="override")
    out = out.assign_coords(sample=np.arange(out.sizes["sample"]))
    dropped = []
    for ds in sets:
        dropped += json.loads(ds.attrs.get("dropped", "[]") or "[]")
    out.attrs["sources"] = json.dumps([str(ds.attrs.get("source", "")) for ds in sets])
    out.attrs["dropped"] = json.dumps(dropped)
    sensors = sorted({v for ds in sets for v in json.loads(ds.attrs.get("sensors", "[]") or "[]")})
    if sensors:
        out.attrs["sensors"] = json.dumps(sensors)
    else:
        out.attrs.pop("sensors", None)
    return out


def assign_folds(groups: Sequence[Hashable] | np.ndarray | None, n: int | None = None, *,
                 folds: int = 6, seed: int = 0) -> np.ndarray:
    """Deterministic, balanced cross-validation folds, whole groups (glaciers) per fold.

    The groups are put in a seeded random order, then taken largest first, each into the fold
    that has the fewest samples so far (ties: the lowest fold).  All samples of a group share
    a fold, so a fold's glaciers are unseen in training ("leave glaciers out"); fold sizes are
    as equal as the group sizes allow.  Without groups every sample is its own group: a seeded
    permutation dealt round-robin.

    Parameters
    ----------
    groups
        One group key (e.g. glacier id) per sample, or ``None`` (then give ``n``).
    n
        Number of samples, when ``groups`` is ``None``.
    folds
        Number of folds.
    seed
        Seed of the order (the same inputs always give the same folds).

    Returns
    -------
    numpy.ndarray
        int64 fold ``0 .. folds - 1`` per sample.

    Examples
    --------
    >>> assign_folds(["a", "a", "b", "c", "c", "c"], folds=2).tolist()
    [1, 1, 1, 0, 0, 0]
    >>> np.bincount(assign_folds(None, 12, folds=3)).tolist()
    [4, 4, 4]
    """
    if folds < 1:
        raise InputError(f"folds must be >= 1, got {folds}")
    rng = np.random.default_rng(seed)
    if groups is None:
        if n is None:
            raise InputError("give groups or the number of samples n")
        out = np.empty(n, dtype=np.int64)
        out[rng.permutation(n)] = np.arange(n) % folds
        return out
    keys = np.asarray([str(g) for g in groups], dtype=object)
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = rng.permutation(len(uniq))
    order = order[np.argsort(-counts[order], kind="stable")]
    load = np.zeros(folds, dtype=np.int64)
    fold_of = np.empty(len(uniq), dtype=np.int64)
    for g in order:
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += counts[g]
    return fold_of[inverse.reshape(-1)]


def _folds_from(values: Any, where: str) -> np.ndarray:
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(v) | (v < 0) | (v != np.round(v))
    if bad.any():
        raise InputError(f"{where} must hold non-negative integer folds; {int(bad.sum())} value(s) are not "
                         f"(e.g. {pd.Series(values)[bad].iloc[0]!r})")
    return v.astype(np.int64)


# --------------------------------------------------------------------------- window gathering
def extract_windows(cube: np.ndarray, t: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                    patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a NumPy ``(time, band, y, x)`` array around pixels, NaN beyond its edges.

    Parameters
    ----------
    cube
        ``(time, band, y, x)`` array.
    t, rows, cols
        Integer time index and centre row/column per window (rows and columns may lie
        outside the array: those pixels become NaN).
    patch_size
        Odd window side.

    Returns
    -------
    patches, inside
        float32 ``(n, patch_size, patch_size, band)`` and bool ``(n, patch_size, patch_size)``,
        True where the window lies on the array.

    Examples
    --------
    >>> cube = np.arange(16, dtype="float32").reshape(1, 1, 4, 4)
    >>> p, inside = extract_windows(cube, np.array([0]), np.array([0]), np.array([3]), 3)
    >>> p[0, ..., 0].tolist()
    [[nan, nan, nan], [2.0, 3.0, nan], [6.0, 7.0, nan]]
    """
    h = patch_size // 2
    off = np.arange(-h, h + 1)
    rr = np.asarray(rows, dtype=np.int64)[:, None] + off
    cc = np.asarray(cols, dtype=np.int64)[:, None] + off
    ny, nx = cube.shape[-2:]
    rin = (rr >= 0) & (rr < ny)
    cin = (cc >= 0) & (cc < nx)
    inside = rin[:, :, None] & cin[:, None, :]
    tt = np.asarray(t, dtype=np.int64)[:, None, None]
    vals = cube[tt, :, np.clip(rr, 0, ny - 1)[:, :, None], np.clip(cc, 0, nx - 1)[:, None, :]]
    vals = vals.astype(np.float32, copy=False)  # (n, P, P, band): advanced indices go first
    vals[~inside] = np.nan
    return vals, inside


def _block_task(block: np.ndarray, t: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch_size: int,
                whole: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One dask block's share of its windows (block-local t, rows, cols): the windows that lie
    on this block alone (``whole``; complete, NaN beyond the scene) and the others' pieces."""
    block = np.asarray(block)
    alone = extract_windows(block, t[whole], rows[whole], cols[whole], patch_size)[0]
    part, inside = extract_windows(block, t[~whole], rows[~whole], cols[~whole], patch_size)
    return alone, part, inside


def _chunk_of(bounds: np.ndarray, i: np.ndarray) -> np.ndarray:
    return np.searchsorted(bounds, i, side="right") - 1


def _expand(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (k, a[k] .. b[k]) for every k: the window index and each chunk in its range."""
    span = b - a + 1
    k = np.repeat(np.arange(len(a)), span)
    start = np.repeat(np.cumsum(span) - span, span)
    return k, a[k] + (np.arange(k.size) - start)


def _gather(data: Any, t: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch_size: int) -> np.ndarray:
    """Windows of a NumPy or dask ``(time, band, y, x)`` array; of dask, only touched chunks."""
    nt, nb, ny, nx = data.shape
    if not hasattr(data, "dask"):
        return extract_windows(np.asarray(data), t, rows, cols, patch_size)[0]
    import dask

    h = patch_size // 2
    out = np.empty((len(t), patch_size, patch_size, nb), dtype=np.float32)
    if not len(t):
        return out
    tb, bb, yb, xb = (np.concatenate([[0], np.cumsum(c)]) for c in data.chunks)
    tc = _chunk_of(tb, t)
    ya, yz = _chunk_of(yb, np.clip(rows - h, 0, ny - 1)), _chunk_of(yb, np.clip(rows + h, 0, ny - 1))
    xa, xz = _chunk_of(xb, np.clip(cols - h, 0, nx - 1)), _chunk_of(xb, np.clip(cols + h, 0, nx - 1))
    alone = (ya == yz) & (xa == xz)              # the window (on the scene) lies on one chunk
    out[~alone] = np.nan                         # the others are assembled from pieces
    k1, yc = _expand(ya, yz)                     # (window, y chunk) pairs
    k2, xc = _expand(xa[k1], xz[k1])             # ... times the x chunks of each window
    win, yc = k1[k2], yc[k2]
    key = np.stack([tc[win], yc, xc], axis=1)
    blocks, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(len(blocks) + 1))
    delayed = data.to_delayed()
    bytes_per_window = patch_size * patch_size * (4 * nb + 1)
    # Compute in groups of blocks (in chunk order, so neighbours share a compute; all band
    # chunks of a block together) to bound the memory held by the gathered pieces.
    group: list[tuple[np.ndarray, np.ndarray, int, int, Any]] = []
    size = 0
    from tqdm.auto import tqdm

    from xfacies import options

    # a bar only for reads of more than one group (small reads stay silent); xfacies.set_options(progress=False)
    big = len(win) * bytes_per_window > _MAX_PIECES_BYTES
    bar = tqdm(total=len(blocks), desc="patches: chunks read", unit="chunk", file=sys.stderr,
               disable=not (big and options.get("progress")))
    for j, (ti, yi, xi) in enumerate(blocks):
        w = win[order[starts[j]:starts[j + 1]]]
        whole = alone[w]
        lt, lr, lc = t[w] - tb[ti], rows[w] - yb[yi], cols[w] - xb[xi]
        for bi in range(len(bb) - 1):
            task = dask.delayed(_block_task, pure=True)(delayed[ti, bi, yi, xi], lt, lr, lc, patch_size, whole)
            group.append((w, whole, int(bb[bi]), int(bb[bi + 1]), task))
        size += len(w) * bytes_per_window
        if size >= _MAX_PIECES_BYTES or j == len(blocks) - 1:
            results = dask.compute(*[g[4] for g in group])
            for (w, whole, b0, b1, _), (vals, part, inside) in zip(group, results):
                if whole.any():
                    out[w[whole], :, :, b0:b1] = vals
                if not whole.all():
                    wp = w[~whole]
                    sub = out[wp, :, :, b0:b1]
                    np.copyto(sub, part, where=inside[..., None])
                    out[wp, :, :, b0:b1] = sub
            bar.update(j + 1 - bar.n)
            group, size = [], 0
    bar.close()
    return out


# --------------------------------------------------------------------------- patches from points
def _cube(features: xr.DataArray | xr.Dataset, names: Sequence[str] | None) -> xr.DataArray:
    from xfacies.inference.engine import prepare_features

    obj = features
    if isinstance(features, xr.Dataset) and "features" in features:
        obj = features["features"]
        if spatial.crs_of(obj) is None and "spatial_ref" in features.variables:  # e.g. from to_zarr
            obj = obj.assign_coords(spatial_ref=features["spatial_ref"])
    if names is None:
        if not isinstance(obj, xr.DataArray) or "band" not in obj.coords:
            raise InputError("features need a 'band' coordinate with feature names (or pass feature_names=)")
        names = [str(b) for b in obj["band"].values]
    cube = prepare_features(obj, tuple(names), cast=False)
    if "time" not in cube.dims:
        cube = cube.expand_dims("time") if "time" in cube.coords else cube.expand_dims("time", 0)
    extra = [d for d in cube.dims if d not in ("time", "band", "y", "x")]
    if extra:
        raise InputError(f"features must have dims (time, band, y, x); {extra} are extra: select one value "
                         f"of each, e.g. features.isel({extra[0]}=0)")
    return cube.transpose("time", "band", "y", "x")


def _pixel_index(cube: xr.DataArray, dim: str, v: np.ndarray) -> np.ndarray:
    """Index of the pixel containing map coordinate ``v`` along a regular ``dim`` (-1 if none)."""
    c = np.asarray(cube[dim].values, dtype=float)
    if c.size > 1:
        step = (c[-1] - c[0]) / (c.size - 1)
        if not np.allclose(np.diff(c), step, rtol=1e-6, atol=1e-9 * abs(step)):
            raise GridError(f"the cube's {dim} coordinates are not evenly spaced; patches need a regular grid")
    else:
        aff = spatial.transform(cube)
        step = aff.a if dim == "x" else aff.e
    with np.errstate(invalid="ignore"):
        i = np.floor((v - (c[0] - step / 2)) / step)
    return np.where(np.isfinite(i), i, -1).astype(np.int64)


def epsg_or_zero(crs: Any) -> int:
    """The EPSG code of a CRS, 0 when none (the patch folders' convention)."""
    return spatial.epsg_code(crs) or 0


def _day(values: Any) -> np.ndarray:
    """Calendar days (datetime64[D]) of dates; unreadable -> NaT; time zones -> UTC."""
    s = pd.to_datetime(pd.Series(values), errors="coerce", utc=True, format="mixed")
    return s.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")


def _tolerance_days(tol: Any) -> int:
    if tol is None:
        return 0
    if isinstance(tol, (int, np.integer)) and not isinstance(tol, bool):
        days = int(tol)
    else:
        td = pd.Timedelta(tol)
        days = int(td / pd.Timedelta(days=1))
    if days < 0:
        raise InputError(f"time_tolerance must not be negative, got {tol!r}")
    return days


def _match_days(point_day: np.ndarray, cube_days: np.ndarray, tol: int) -> np.ndarray:
    """Index of the nearest cube time within ``tol`` calendar days (earlier on ties), or -1."""
    uniq, first = np.unique(cube_days, return_index=True)  # the first time step of each day
    out = np.full(point_day.shape, -1, dtype=np.int64)
    ok = ~np.isnat(point_day)
    if not uniq.size or not ok.any():
        return out
    p = point_day[ok].astype(np.int64)
    u = uniq.astype(np.int64)
    j = np.searchsorted(u, p)
    lo, hi = np.clip(j - 1, 0, u.size - 1), np.clip(j, 0, u.size - 1)
    pick = np.where(np.abs(u[hi] - p) < np.abs(u[lo] - p), hi, lo)
    dist = np.abs(u[pick] - p)
    out[ok] = np.where(dist <= tol, first[pick], -1)
    return out


def patches_from_points(
    features: xr.DataArray | xr.Dataset,
    points: "gpd.GeoDataFrame",
    patch_size: int = 33,
    *,
    class_column: str = "class",
    time_column: str | None = "date",
    glacier_column: str | None = None,
    fold_column: str | None = None,
    folds: int = 6,
    seed: int = 0,
    time_tolerance: int | str | timedelta | None = None,
    feature_names: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
) -> xr.Dataset:
    """Cut a ``patch_size`` x ``patch_size`` patch around every labelled point of a cube.

    Parameters
    ----------
    features
        ``(time, band, y, x)`` feature cube (or ``(band, y, x)`` for one scene; or a Dataset with
        a ``features`` variable), NumPy- or dask-backed with any chunking, north-up on a regular
        projected grid with its CRS written (rioxarray).  NaN = nodata.  A dask cube is not
        computed as a whole: only the chunks that the windows touch are (in groups, so memory
        stays bounded by the chunk size and the patches).
    points
        A GeoDataFrame of point labels in any CRS (reprojected to the cube's): a class column
        (class name from :data:`xfacies.catalog.CLASSES`, or its id), a date column and,
        optionally, glacier and fold columns.
    patch_size
        Odd side of the patches in pixels (33 for the reference CNN).
    class_column, time_column, glacier_column, fold_column
        Column names.  ``time_column=None`` uses the cube's only scene for every point.
    folds, seed
        Without ``fold_column``: the number of cross-validation folds and the seed of
        :func:`assign_folds`, which puts whole glaciers in a fold when ``glacier_column`` is
        given (else single points).  Folds are assigned on the whole label table, before any
        point is dropped, so they do not depend on the cube's coverage.
    time_tolerance
        How far (calendar days; an int, or anything :class:`pandas.Timedelta` reads, e.g.
        ``"2D"``) a point's date may lie from a scene of the cube.  Default ``None``: the same
        calendar day (times of day and time zones are ignored; zoned dates count in UTC).  The
        nearest scene is used, the earlier one on ties; of several scenes on one day the first.
    feature_names
        Bands to cut, in cube order (default: all bands of the cube).  Any band names: a band
        the cube lacks is named here, before any training.
    classes
        Your own class names (e.g. ``["wet_snow", "clean_ice"]``): the class column holds them
        (or their positions), ``class`` is the position.  Default: the catalogue's classes.

    Returns
    -------
    xarray.Dataset
        ``patches`` (sample, y, x, band) float32 and the per-sample coordinates described in
        :mod:`xfacies.train.data`, in the order of ``points``.  ``date`` is the calendar day of
        the scene used; ``center_x`` / ``center_y`` are the centre pixel's coordinates in the
        cube's CRS (``attrs["crs"]``, WKT).  Pixels beyond the scene edge are NaN.

    Warns
    -----
    DroppedPointsWarning
        When points give no patch: without a geometry, outside the cube, without a date, on
        dates the cube lacks, or on nodata (NaN in any band at the point); the message counts
        each reason and ``ds.attrs["dropped"]`` lists the points (:func:`dropped_points`).

    Raises
    ------
    ValueError
        Unknown class values, missing columns, non-point geometries, an even ``patch_size``, or
        a cube and points of which only one has a CRS.

    Examples
    --------
    >>> import geopandas as gpd, xfacies                                          # doctest: +SKIP
    >>> season = xfacies.synthetic.season(3, size=256, chunks=128)               # doctest: +SKIP
    >>> ds = patches_from_points(season.features, labels.to_crs(4326),           # doctest: +SKIP
    ...                          glacier_column="glacier")
    >>> ds.patches.sizes                                                         # doctest: +SKIP
    Frozen({'sample': 500, 'y': 33, 'x': 33, 'band': 11})
    """
    if int(patch_size) != patch_size or patch_size < 1 or patch_size % 2 == 0:
        raise InputError(f"patch_size must be a positive odd number of pixels, got {patch_size!r}")
    patch_size = int(patch_size)
    if not hasattr(points, "geometry"):
        raise TypeError(f"points must be a geopandas GeoDataFrame, got {type(points).__name__}")
    columns = {"class_column": class_column, "time_column": time_column,
               "glacier_column": glacier_column, "fold_column": fold_column}
    for arg, col in columns.items():
        if col is not None and col not in points.columns:
            hint = " (for a single-scene cube, time_column=None)" if arg == "time_column" else ""
            raise InputError(f"{arg}={col!r} is not a column of points{hint}; its columns are "
                             f"{list(points.columns)}")

    cube = _cube(features, feature_names)
    names = [str(b) for b in cube["band"].values]
    n = len(points)
    geom = points.geometry
    has_geom = ~(geom.isna() | geom.is_empty).to_numpy()
    kinds = set(geom[has_geom].geom_type)
    if kinds - {"Point"}:
        raise InputError(f"points must be Point geometries, got {sorted(kinds)}; use e.g. "
                         "points.set_geometry(points.representative_point())")

    cube_crs = spatial.crs_of(cube)
    if (points.crs is None) != (cube_crs is None):
        raise GridError(
            "the points have no CRS; set it with points.set_crs('EPSG:....')" if points.crs is None
            else "the cube has no CRS; write it with cube.rio.write_crs('EPSG:....')")
    proj = points if cube_crs is None else points.to_crs(cube_crs)
    px = np.full(n, np.nan)
    py = np.full(n, np.nan)
    px[has_geom] = proj.geometry[has_geom].x.to_numpy()
    py[has_geom] = proj.geometry[has_geom].y.to_numpy()
    col = _pixel_index(cube, "x", px)
    row = _pixel_index(cube, "y", py)
    inside = has_geom & (row >= 0) & (row < cube.sizes["y"]) & (col >= 0) & (col < cube.sizes["x"])

    cls = class_ids(points[class_column].tolist(), f"column {class_column!r}", classes)
    glacier = (points[glacier_column].astype(str).to_numpy() if glacier_column
               else np.full(n, "", dtype=object))
    fold = (_folds_from(points[fold_column], f"column {fold_column!r}") if fold_column
            else assign_folds(glacier if glacier_column else None, n, folds=folds, seed=seed))

    has_time = "time" in cube.coords and np.issubdtype(cube["time"].dtype, np.datetime64)
    cube_days = (np.asarray(cube["time"].values).astype("datetime64[D]") if has_time
                 else np.array([], dtype="datetime64[D]"))
    if time_column is None:
        if cube.sizes["time"] != 1:
            raise InputError(f"the cube has {cube.sizes['time']} scenes: give the points' dates "
                             "(time_column=) to pick one per point")
        point_day = np.full(n, cube_days[0] if cube_days.size else np.datetime64("NaT"), "datetime64[D]")
        tidx = np.zeros(n, dtype=np.int64)
        no_date = np.zeros(n, dtype=bool)
    else:
        point_day = _day(points[time_column].to_numpy())
        no_date = np.isnat(point_day)
        if has_time:
            tidx = _match_days(point_day, cube_days, _tolerance_days(time_tolerance))
        elif cube.sizes["time"] == 1:  # a single scene without a date: every point is on it
            tidx = np.zeros(n, dtype=np.int64)
        else:
            raise InputError("the cube's time axis has no dates; give it a datetime64 'time' coordinate")

    reason = np.full(n, "", dtype=object)
    for mask, why in ((~has_geom, "no_geometry"), (~inside, "outside"), (no_date, "no_date"),
                      (tidx < 0, "no_scene")):
        reason[(reason == "") & mask] = why
    keep = np.flatnonzero(reason == "")
    patches = _gather(cube.data, tidx[keep], row[keep], col[keep], patch_size)
    h = patch_size // 2
    nodata = np.isnan(patches[:, h, h, :]).any(axis=1)
    if nodata.any():
        reason[keep[nodata]] = "nodata"
        patches, keep = patches[~nodata], keep[~nodata]

    labels = points.index.to_numpy()
    dropped = _dropped_table(points, reason, labels, cls, point_day, has_geom)
    if dropped:
        counts = pd.Series([d["reason"] for d in dropped]).value_counts()
        tol = ("same calendar day" if time_tolerance is None
               else f"within {_tolerance_days(time_tolerance)} day(s)")
        parts = [f"{counts[r]} {DROP_REASONS[r]}" + (f" ({tol}; see time_tolerance=)" if r == "no_scene" else "")
                 for r in DROP_REASONS if r in counts]
        warnings.warn(
            f"patches_from_points dropped {len(dropped)} of {n} points: {'; '.join(parts)}. They are "
            "listed in ds.attrs['dropped'] (xfacies.train.data.dropped_points(ds))",
            DroppedPointsWarning, stacklevel=2)

    if has_time:
        day = np.asarray(cube_days)[tidx[keep]]
    else:
        day = point_day[keep]
    xs = np.asarray(cube["x"].values, dtype=float)
    ys = np.asarray(cube["y"].values, dtype=float)
    src = features.attrs.get("source") if hasattr(features, "attrs") else None
    attrs = {
        "features": names,
        "patch_size": patch_size,
        "source": "xfacies.train.data.patches_from_points" + (f" from {src}" if src else ""),
        "crs": cube_crs or "",
        "time_tolerance_days": _tolerance_days(time_tolerance) if time_column else 0,
        "dropped": json.dumps(dropped),
    }
    if "platform" in cube.coords and cube["platform"].dims == ("time",) and keep.size:
        sensors = sorted({str(v) for v in np.asarray(cube["platform"].values)[tidx[keep]]} - {"", "nan", "None"})
        if sensors:
            attrs["sensors"] = json.dumps(sensors)  # the training domain a model records
    return patch_set(patches, names, cls[keep], glacier[keep], day, fold[keep],
                    np.asarray([str(v) for v in labels[keep]], dtype=object),
                    xs[col[keep]], ys[row[keep]], np.full(len(keep), epsg_or_zero(cube_crs), np.int32), attrs,
                    point=keep, classes=classes)


def _dropped_table(points: Any, reason: np.ndarray, labels: np.ndarray, cls: np.ndarray,
                   day: np.ndarray, has_geom: np.ndarray) -> list[dict[str, Any]]:
    idx = np.flatnonzero(reason != "")
    if not idx.size:
        return []
    geom = points.geometry
    out = []
    names = catalog.class_names()
    for i in idx:
        g = geom.iloc[i] if has_geom[i] else None
        out.append({
            "label_id": str(labels[i]), "point": int(i), "reason": str(reason[i]),
            "class_name": names[int(cls[i])],
            "date": None if np.isnat(day[i]) else str(day[i]),
            "x": None if g is None else float(g.x), "y": None if g is None else float(g.y),
        })
    return out


def dropped_points(ds: xr.Dataset) -> pd.DataFrame:
    """The labels that gave no patch, as a table (``label_id, point, reason, class_name, date, x, y``).

    ``x``/``y`` are in the CRS of the label table given to :func:`patches_from_points`.

    Examples
    --------
    >>> dropped_points(xr.Dataset(attrs={"dropped": '[{"label_id": "7", "reason": "outside"}]'}))
      label_id   reason
    0        7  outside
    """
    table = json.loads(ds.attrs.get("dropped", "[]") or "[]")
    cols = ["label_id", "point", "reason", "class_name", "date", "x", "y"]
    return pd.DataFrame(table) if table else pd.DataFrame(columns=cols)


def patch_set(patches: Any, names: Sequence[str], cls: np.ndarray, glacier: np.ndarray, day: np.ndarray,
             fold: np.ndarray, label_id: np.ndarray, cx: Any, cy: Any, epsg: Any,
             attrs: dict[str, Any], point: np.ndarray | None = None,
             classes: Sequence[str] | None = None) -> xr.Dataset:
    """The patch Dataset of both sources (one place for the contract)."""
    patch_size = patches.shape[1]
    h = patch_size // 2
    class_names = np.asarray(catalog.class_names() if classes is None else list(classes), dtype=object)
    flags = catalog.class_flag_attrs(classes=None if classes is None else list(classes))
    off = np.arange(-h, h + 1)
    s = ("sample",)
    coords = {
        "band": ("band", np.asarray(list(names), dtype=str)),
        "y": ("y", off, {"long_name": "row offset from the labelled pixel (positive = south)", "units": "pixel"}),
        "x": ("x", off, {"long_name": "column offset from the labelled pixel (positive = east)", "units": "pixel"}),
        "class": (s, np.asarray(cls, dtype=np.int8), {
            "long_name": "labelled class",
            "flag_values": flags["flag_values"][1:],
            "flag_meanings": " ".join(flags["flag_meanings"].split()[1:])}),
        "class_name": (s, _text(class_names[np.asarray(cls, dtype=np.int64)] if len(cls) else [])),
        "glacier": (s, _text(glacier)),
        "date": (s, np.asarray(day).astype("datetime64[ns]")),
        "fold": (s, np.asarray(fold, dtype=np.int64)),
        "label_id": (s, _text(label_id)),
        "point": (s, np.arange(len(cls), dtype=np.int64) if point is None else np.asarray(point, np.int64),
                  {"long_name": "row of the label in the label table (or of the file in the sorted listing)"}),
        "center_x": (s, cx, {"long_name": "map x of the centre pixel", "units": "m"}),
        "center_y": (s, cy, {"long_name": "map y of the centre pixel", "units": "m"}),
        "epsg": (s, epsg, {"long_name": "EPSG code of center_x/center_y (0 = none)"}),
    }
    var = xr.Variable(("sample", "y", "x", "band"), patches,
                      {"long_name": "raw feature values around labelled pixels (NaN = missing)"})
    return xr.Dataset({"patches": var}, coords=coords, attrs=attrs)


def _text(values: Any) -> np.ndarray:
    """Fixed-width unicode (Zarr- and netCDF-friendly), also when empty."""
    a = np.asarray([str(v) for v in values])
    return a if a.size else np.array([], dtype="<U1")

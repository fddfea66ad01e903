"""Quick-look plots: facies maps and fraction time series, in catalogue colours.

matplotlib is imported inside the functions (never at import of xfacies); with
no display and no Jupyter kernel the Agg backend is chosen.

Examples
--------
>>> import numpy as np, xarray as xr
>>> classes = xr.DataArray(np.array([[0, 1], [3, -1]], "int8"), dims=("y", "x"),
...                        coords={"y": [15.0, 5.0], "x": [5.0, 15.0]})
>>> ax = facies_map(classes, title="demo")
>>> ax.get_title()
'demo'
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xfacies.compat import renamed_keywords
from xfacies.errors import GridError, InputError
from xfacies.catalog import CLASSES, NODATA, class_color, map_classes

__all__ = ["facies_map", "dem_map", "features_map", "fraction_timeseries", "save_quicklooks", "facies_cmap"]


def _pyplot() -> Any:
    """Import pyplot, choosing Agg when there is no display and no notebook."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        headless = sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        )
        if headless and "ipykernel" not in sys.modules and not os.environ.get("MPLBACKEND"):
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def facies_cmap(classes: xr.DataArray | None = None) -> tuple[Any, Any]:
    """ListedColormap of a class map's colours (NODATA transparent) and its norm.

    Parameters
    ----------
    classes
        A class map: its own classes (the model's, from its CF flags) are drawn;
        ``None`` or a map without flags: the catalogue's.

    Examples
    --------
    >>> cmap, norm = facies_cmap()
    >>> cmap.N == len(CLASSES), int(norm(3))
    (True, 3)
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    table = map_classes(classes)
    n = max(i for i, _, _ in table) + 1
    colours = ["#00000000"] * n
    for i, _, col in table:
        colours[i] = col
    clear = (0, 0, 0, 0)
    cmap = ListedColormap(colours, name="xfacies").with_extremes(bad=clear, under=clear, over=clear)
    norm = BoundaryNorm(np.arange(n + 1) - 0.5, cmap.N)
    return cmap, norm


def _legend_handles(present: list[int], classes: xr.DataArray | None = None) -> list[Any]:
    from matplotlib.patches import Patch

    return [
        Patch(facecolor=col, edgecolor="0.4", linewidth=0.5, label=name)
        for i, name, col in map_classes(classes)
        if i in present
    ]


def _spatial(classes: xr.DataArray) -> tuple[str, str]:
    dims = [d for d in classes.dims if classes.sizes[d] > 1 or d in ("y", "x")]
    if "y" in classes.dims and "x" in classes.dims:
        return "y", "x"
    if len(classes.dims) >= 2:
        return classes.dims[-2], classes.dims[-1]
    raise InputError(f"a facies map needs two spatial dims, got {dims}")


def _raster(da: xr.DataArray, ydim: str, xdim: str) -> tuple[tuple[float, float, float, float], str]:
    """imshow ``extent`` (pixel edges, in the grid's own units) and ``origin`` of a (y, x) raster."""
    x = np.asarray(da[xdim].values, dtype=float) if xdim in da.coords else np.arange(da.sizes[xdim], dtype=float)
    y = np.asarray(da[ydim].values, dtype=float) if ydim in da.coords else np.arange(da.sizes[ydim], dtype=float)
    dx = (x[1] - x[0]) if x.size > 1 else 1.0
    dy = (y[1] - y[0]) if y.size > 1 else -1.0
    left, right = x[0] - dx / 2, x[-1] + dx / 2
    first, last = y[0] - dy / 2, y[-1] + dy / 2
    # row 0 is y[0]: on top when y decreases (north-up), at the bottom otherwise
    return (left, right, min(first, last), max(first, last)), ("upper" if dy < 0 else "lower")


def _grid_axes(ax: Any, da: xr.DataArray, extent: tuple[float, float, float, float]) -> None:
    """Axes in the grid's own coordinates (so GeoDataFrames in its CRS overlay), with tick labels
    in km for projected coordinates or spans of 2 km or more."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    span = max(extent[1] - extent[0], extent[3] - extent[2])
    big = max(abs(v) for v in extent) >= 1e4
    km = span >= 2000 or big
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=5))
        if km:
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}"))
        else:
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    crs = _crs_name(da)
    unit = "km" if km else "m"
    ax.set_xlabel(f"x ({unit}{', ' + crs if crs else ''})")
    ax.set_ylabel(f"y ({unit})")


def _crs_name(da: xr.DataArray) -> str | None:
    from xfacies.spatial import crs_of

    wkt = crs_of(da)
    if wkt is None:
        return None
    try:
        from pyproj import CRS

        c = CRS.from_wkt(wkt)
        return f"EPSG:{c.to_epsg()}" if c.to_epsg() else c.name
    except Exception:  # pragma: no cover - no pyproj: no label
        return None


def _overlay(ax: Any, outlines: Any, like: xr.DataArray) -> None:
    """Draw glacier outlines (reprojected to the raster's CRS) as lines on ``ax``."""
    if outlines is None:
        return
    from xfacies.outlines import as_outlines
    from xfacies.spatial import crs_of

    gdf = as_outlines(outlines)
    wkt = crs_of(like)
    if wkt is not None and gdf.crs is not None:
        gdf = gdf.to_crs(wkt)
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    gdf.boundary.plot(ax=ax, color="black", linewidth=0.8)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)


def facies_map(
    classes: xr.DataArray,
    *,
    ax: Any = None,
    title: str | None = None,
    legend: bool = True,
    outlines: Any = None,
    background: xr.DataArray | None = None,
    alpha: float = 0.75,
) -> Any:
    """Plot a class map in its classes' colours, optionally over a hillshade or an RGB quicklook.

    Parameters
    ----------
    classes
        Class map ``(y, x)`` (or ``(time, y, x)`` with one date; select one with
        ``classes.sel(time=...)`` otherwise).  NODATA is transparent.
    ax
        Matplotlib Axes to draw on; a new figure when ``None``.
    title
        Axes title; by default the date when the map has a scalar ``time``.
    legend
        Add a legend of the classes present in the map.
    outlines
        Glacier outlines to draw on top (any CRS; reprojected to the map's).
    background
        Context under the facies, on the map's grid: a DEM ``(y, x)`` (drawn as a grey
        hillshade from the north-west) or reflectance with ``red``/``green``/``blue`` bands
        ``(band, y, x)`` (a true-colour quicklook, 2-98 % stretch; one date).  ``None``: none.
    alpha
        Opacity of the facies over a ``background``.

    The axes are in the map's own coordinates (metres of its CRS), so a GeoDataFrame in that
    CRS overlays with ``gdf.plot(ax=ax)``; tick labels are in km for projected (UTM-like)
    coordinates or spans of 2 km or more.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> classes = xr.DataArray(np.array([[0, 2], [7, -1]], "int8"), dims=("y", "x"),
    ...                        coords={"y": [15.0, 5.0], "x": [5.0, 15.0]})
    >>> ax = facies_map(classes)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['ice', 'debris', 'cloud']
    >>> ax.get_xlim()                       # the grid's own coordinates: pixel edges in metres
    (np.float64(0.0), np.float64(20.0))
    """
    if "time" in classes.dims:
        if classes.sizes["time"] != 1:
            raise InputError(
                f"facies_map draws one date but the map has {classes.sizes['time']}; pick one "
                "with classes.isel(time=0) or classes.sel(time='2024-08-01'), or use "
                "save_quicklooks for all dates"
            )
        classes = classes.isel(time=0)
    if classes.ndim != 2:
        raise InputError(f"facies_map needs a 2-D (y, x) map, got dims {classes.dims}")
    ydim, xdim = _spatial(classes)
    classes = classes.transpose(ydim, xdim)
    values = np.asarray(classes.values)
    if np.issubdtype(values.dtype, np.floating):
        values = np.where(np.isnan(values), NODATA, values)
    values = values.astype(np.int16)
    n_classes = max(i for i, _, _ in map_classes(classes)) + 1
    masked = np.ma.masked_where((values == NODATA) | (values < 0) | (values >= n_classes), values)

    if ax is None:
        plt = _pyplot()
        _, ax = plt.subplots(figsize=(6, 5))
    extent, origin = _raster(classes, ydim, xdim)
    cmap, norm = facies_cmap(classes)
    if background is not None:
        ax.imshow(_background(background, classes, ydim, xdim), origin=origin, extent=extent, aspect="equal",
                  interpolation="nearest")
    ax.imshow(masked, cmap=cmap, norm=norm, interpolation="nearest", origin=origin,
              extent=extent, aspect="equal", alpha=None if background is None else float(alpha))
    _grid_axes(ax, classes, extent)
    _overlay(ax, outlines, classes)
    if title is None and "time" in classes.coords and classes["time"].ndim == 0:
        title = str(pd.Timestamp(classes["time"].values).date())
    if title:
        ax.set_title(title)
    if legend:
        present = sorted(int(v) for v in np.unique(masked.compressed()))
        if present:
            ax.legend(handles=_legend_handles(present, classes), loc="upper left",
                      bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    return ax


def _background(bg: xr.DataArray, classes: xr.DataArray, ydim: str, xdim: str) -> np.ndarray:
    """RGBA image of a hillshade (DEM) or a true-colour quicklook (reflectance), on the map's grid."""
    from matplotlib.colors import LightSource

    from xfacies import spatial

    if not isinstance(bg, xr.DataArray):
        raise TypeError(f"background must be a DEM or a reflectance DataArray, got {type(bg).__name__}")
    if "time" in bg.dims:
        if bg.sizes["time"] != 1:
            raise InputError("the background has several dates: pick the map's, e.g. cube.sel(time=classes.time)")
        bg = bg.isel(time=0)
    if not spatial.same_grid(bg, classes):
        raise GridError("the background is not on the class map's grid; put it there first, e.g. "
                         "xfacies.open_dem(classes) or cube.rio.reproject_match(classes)")
    if "band" in bg.dims:
        bands = [str(b) for b in bg["band"].values]
        if not {"red", "green", "blue"} <= set(bands):
            raise InputError(f"a reflectance background needs 'red', 'green' and 'blue' bands, has {bands}")
        rgb = np.stack([np.asarray(bg.sel(band=b).transpose(ydim, xdim).values, dtype=np.float64)
                        for b in ("red", "green", "blue")], axis=-1)
        finite = np.isfinite(rgb).all(axis=-1)
        if finite.any():
            lo, hi = np.nanpercentile(rgb[finite], [2, 98])
            rgb = np.clip((rgb - lo) / max(hi - lo, 1e-9), 0, 1)
        out = np.ones(rgb.shape[:2] + (4,))
        out[..., :3] = np.where(finite[..., None], rgb, 1.0)
        out[~finite, 3] = 0.0
        return out
    z = np.asarray(bg.transpose(ydim, xdim).values, dtype=np.float64)
    finite = np.isfinite(z)
    dx = abs(float(spatial.transform(classes).a)) or 1.0
    shade = LightSource(azdeg=315, altdeg=45).hillshade(np.where(finite, z, np.nanmean(z) if finite.any() else 0),
                                                         vert_exag=1.0, dx=dx, dy=dx)
    grey = 0.35 + 0.6 * shade
    out = np.stack([grey, grey, grey, np.where(finite, 1.0, 0.0)], axis=-1)
    return out


def dem_map(dem: xr.DataArray, *, outlines: Any = None, ax: Any = None, title: str | None = None) -> Any:
    """A DEM quicklook: elevation in a terrain colour map, shaded from the north-west, with a
    colour bar in metres and optional glacier outlines; axes as in :func:`facies_map`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> dem = xr.DataArray(np.add.outer(np.arange(3000.0, 2900.0, -10.0), np.arange(10.0)),
    ...                    dims=("y", "x"), coords={"y": np.arange(95.0, 0, -10), "x": np.arange(5.0, 100, 10)})
    >>> ax = dem_map(dem, title="DEM")
    >>> ax.get_title(), ax.images[0].get_array().shape
    ('DEM', (10, 10, 4))
    """
    from matplotlib.colors import LightSource

    ydim, xdim = _spatial(dem)
    dem = dem.squeeze(drop=True).transpose(ydim, xdim)
    if dem.ndim != 2:
        raise InputError(f"dem_map needs a 2-D (y, x) DEM, got dims {dem.dims}")
    z = np.asarray(dem.values, dtype=float)
    if ax is None:
        plt = _pyplot()
        _, ax = plt.subplots(figsize=(6, 5), constrained_layout=True)
    extent, origin = _raster(dem, ydim, xdim)
    plt = _pyplot()
    cmap = plt.get_cmap("terrain")
    finite = np.isfinite(z)
    lo, hi = (np.nanmin(z), np.nanmax(z)) if finite.any() else (0.0, 1.0)
    res = abs(extent[1] - extent[0]) / max(z.shape[1], 1)
    shaded = LightSource(azdeg=315, altdeg=45).shade(np.where(finite, z, lo), cmap=cmap, blend_mode="soft",
                                                      vmin=lo, vmax=hi, dx=res, dy=res)
    shaded[~finite] = (1, 1, 1, 0)
    ax.imshow(shaded, origin=origin, extent=extent, aspect="equal", interpolation="nearest")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(lo, hi))
    ax.figure.colorbar(sm, ax=ax, shrink=0.8, label="elevation (m)")
    _grid_axes(ax, dem, extent)
    _overlay(ax, outlines, dem)
    if title:
        ax.set_title(title)
    return ax


def features_map(features: xr.DataArray, *, outlines: Any = None, ncols: int = 4,
                 time: Any = None) -> Any:
    """Small multiples of a feature cube, one panel per band (reflectance and terrain), each
    with its own colour bar; axes as in :func:`facies_map`.

    Parameters
    ----------
    features
        ``(band, y, x)``, or ``(time, band, y, x)`` with ``time`` selecting one date (default: the first).
    outlines
        Glacier outlines drawn on every panel.
    ncols
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = xr.DataArray(np.random.default_rng(0).random((3, 8, 8)), dims=("band", "y", "x"),
    ...                  coords={"band": ["blue", "slope", "proximity"], "y": np.arange(75.0, 0, -10),
    ...                          "x": np.arange(5.0, 80, 10)})
    >>> fig = features_map(f)
    >>> [ax.get_title() for ax in fig.axes if ax.get_title()]
    ['blue', 'slope', 'proximity']
    """
    if "band" not in features.dims:
        raise InputError(f"features_map needs a 'band' dimension, got dims {features.dims}")
    extra = [d for d in features.dims if d not in ("band", "y", "x")]
    if extra:
        d = extra[0]
        features = features.isel({d: 0}) if time is None else features.sel({d: time})
    features = features.compute() if hasattr(features.data, "dask") else features
    plt = _pyplot()
    names = [str(b) for b in features["band"].values]
    ncols = max(1, min(ncols, len(names)))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.0 * nrows), squeeze=False,
                             constrained_layout=True)
    ydim, xdim = _spatial(features.isel(band=0))
    for ax, name in zip(axes.ravel(), names):
        band = features.sel(band=name).transpose(ydim, xdim)
        extent, origin = _raster(band, ydim, xdim)
        v = np.asarray(band.values, dtype=float)
        lo, hi = (np.nanpercentile(v, [2, 98]) if np.isfinite(v).any() else (0.0, 1.0))
        im = ax.imshow(v, origin=origin, extent=extent, aspect="equal", interpolation="nearest",
                       cmap="gray" if name in ("shadow_mask", "hillshade") else "viridis", vmin=lo, vmax=hi)
        fig.colorbar(im, ax=ax, shrink=0.8)
        _grid_axes(ax, band, extent)
        _overlay(ax, outlines, band)
        ax.set_title(name)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    return fig


def _fraction_array(frac: xr.Dataset | xr.DataArray) -> xr.DataArray:
    da = frac["fraction"] if isinstance(frac, xr.Dataset) else frac
    if "class" not in da.dims:
        raise InputError(
            f"expected fractions with a 'class' dim (from xfacies.products.fractions), got {da.dims}"
        )
    if "time" not in da.dims:
        da = da.expand_dims("time")
    return da


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of the runs of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0]))
    return list(zip(edges[::2], edges[1::2]))


def _draw_fractions(da: xr.DataArray, ax: Any, title: str | None) -> None:
    """Stacked areas over runs of observed dates; unobserved dates as grey crosses."""
    names = [str(n) for n in da["class"].values]
    vals = np.asarray(da.transpose("class", "time").values, dtype=float)
    times = np.asarray(da["time"].values) if "time" in da.coords else np.arange(da.sizes["time"])
    cols = [class_color(n, i) for i, n in enumerate(names)]
    observed = ~np.isnan(vals).all(axis=0)
    vals = np.nan_to_num(vals)
    is_time = np.issubdtype(times.dtype, np.datetime64)
    if is_time and times.size > 1:
        width = np.min(np.diff(np.sort(times))) / np.timedelta64(1, "D") * 0.3
    else:
        width = 0.6
    for start, stop in _runs(observed):
        if stop - start > 1:
            ax.stackplot(times[start:stop], vals[:, start:stop], colors=cols,
                         edgecolor="0.4", linewidth=0.3)
        else:  # a lone observed date: a stacked bar
            bottom = 0.0
            for v, c in zip(vals[:, start], cols):
                ax.bar(times[start:stop], [v], bottom=bottom, width=width, color=c,
                       edgecolor="0.4", linewidth=0.3)
                bottom += v
    if (~observed).any():
        ax.plot(times[~observed], np.zeros((~observed).sum()), "x", color="0.5",
                clip_on=False, label="not observed")
    if times.size == 1 and is_time:
        ax.set_xticks(times, [str(pd.Timestamp(times[0]).date())])
    elif is_time:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        locator = AutoDateLocator(maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of observed area")
    if title:
        ax.set_title(title)


def _fraction_legend(target: Any, names: list[str], unobserved: bool, **kw: Any) -> Any:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=class_color(n, i), edgecolor="0.4", linewidth=0.5, label=n)
               for i, n in enumerate(names)]
    if unobserved:
        handles.append(Line2D([], [], marker="x", color="0.5", linestyle="none",
                              label="not observed"))
    return target.legend(handles=handles, fontsize="small", frameon=False, **kw)


def fraction_timeseries(
    frac: xr.Dataset | xr.DataArray,
    *,
    glacier: str | None = None,
    ax: Any = None,
) -> Any:
    """Stacked-area plot of facies fractions through time, in catalogue colours.

    Parameters
    ----------
    frac
        Dataset from :func:`xfacies.products.fractions` (or its ``fraction``).
    glacier
        Glacier id to plot.  ``None``: the only glacier, or one panel per
        glacier when there are several.
    ax
        Axes to draw on (one glacier only); a new figure when ``None``.

    Returns
    -------
    matplotlib.axes.Axes or matplotlib.figure.Figure
        The Axes for one glacier, the Figure (one panel per glacier) for
        several.  Dates with nothing observed are gaps in the stacked areas,
        marked with grey crosses; a lone observed date is a stacked bar.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> f = xr.DataArray([[[0.6, 0.4]], [[0.3, 0.7]]], dims=("time", "glacier", "class"),
    ...                  coords={"time": pd.to_datetime(["2024-07-01", "2024-08-01"]),
    ...                          "glacier": ["A"], "class": ["ice", "snow"]})
    >>> ax = fraction_timeseries(f)
    >>> ax.get_title()
    'A'
    """
    da = _fraction_array(frac)
    if "glacier" in da.dims:
        ids = [str(g) for g in da["glacier"].values]
        if glacier is not None:
            if glacier not in ids:
                raise InputError(f"glacier {glacier!r} is not in the fractions; ids: {ids[:10]}")
            da = da.sel(glacier=glacier)
            ids = [glacier]
        elif len(ids) == 1:
            da = da.isel(glacier=0)
        else:
            if ax is not None:
                raise InputError(
                    f"{len(ids)} glaciers do not fit on one Axes; pass glacier='...' or ax=None"
                )
            plt = _pyplot()
            fig, axes = plt.subplots(len(ids), 1, figsize=(8, 2.2 * len(ids) + 0.6),
                                     sharex=True, squeeze=False)
            for a, gid in zip(axes[:, 0], ids):
                _draw_fractions(da.sel(glacier=gid), a, gid)
            _fraction_legend(fig, [str(n) for n in da["class"].values],
                             bool(da.isnull().all("class").any()), loc="upper right")
            fig.tight_layout(rect=(0, 0, 0.85, 1))
            return fig
        title = ids[0]
    else:
        title = None
    if ax is None:
        plt = _pyplot()
        _, ax = plt.subplots(figsize=(8, 3))
    _draw_fractions(da, ax, title)
    _fraction_legend(ax, [str(n) for n in da["class"].values],
                     bool(da.isnull().all("class").any()), loc="upper left",
                     bbox_to_anchor=(1.01, 1.0))
    ax.figure.tight_layout()
    return ax


@renamed_keywords(outdir="out")
def save_quicklooks(
    classes: xr.DataArray,
    frac: xr.Dataset | xr.DataArray | None,
    out: str | os.PathLike,
    *,
    dpi: int = 100,
    outlines: Any = None,
) -> list[Path]:
    """Write PNG quick-looks: one facies map per date and one fraction figure.

    Parameters
    ----------
    classes
        Class map ``(y, x)`` or ``(time, y, x)`` (computed one date at a time).
    frac
        Fractions from :func:`xfacies.products.fractions`, or ``None`` to skip
        the time-series figure.
    out
        Directory (created if needed).
    dpi
        Resolution of the PNGs.
    outlines
        Glacier outlines drawn on the maps.

    Returns
    -------
    list of pathlib.Path
        ``facies_YYYY-MM-DD.png`` per date (``facies.png`` for a 2-D map,
        with the time index added when dates repeat), then ``fractions.png``.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> classes = xr.DataArray(np.array([[0, 1], [3, -1]], "int8"), dims=("y", "x"),
    ...                        coords={"y": [15.0, 5.0], "x": [5.0, 15.0]})
    >>> [p.name for p in save_quicklooks(classes, None, tempfile.mkdtemp())]
    ['facies.png']
    """
    from matplotlib.figure import Figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    if "time" in classes.dims:
        stamps = [str(pd.Timestamp(t).date()) if np.issubdtype(np.asarray(t).dtype, np.datetime64)
                  else str(t) for t in classes["time"].values] if "time" in classes.coords else \
            [str(i) for i in range(classes.sizes["time"])]
        dup = len(set(stamps)) < len(stamps)
        items = [(classes.isel(time=i), f"facies_{s}" + (f"_{i:03d}" if dup else ""), s)
                 for i, s in enumerate(stamps)]
    else:
        items = [(classes, "facies", None)]

    for one, stem, stamp in items:
        fig = Figure(figsize=(6, 5))
        ax = fig.add_subplot()
        facies_map(one.compute() if hasattr(one.data, "dask") else one, ax=ax, title=stamp,
                   outlines=outlines)
        p = out / f"{stem}.png"
        fig.savefig(p, dpi=dpi, bbox_inches="tight")
        paths.append(p)

    if frac is not None:
        da = _fraction_array(frac)
        ids = [str(g) for g in da["glacier"].values] if "glacier" in da.dims else [None]
        fig = Figure(figsize=(8, 2.2 * len(ids) + 0.6))
        axes = fig.subplots(len(ids), 1, sharex=True, squeeze=False)
        for a, gid in zip(axes[:, 0], ids):
            _draw_fractions(da.sel(glacier=gid) if gid is not None else da, a, gid)
        _fraction_legend(fig, [str(n) for n in da["class"].values],
                         bool(da.isnull().all("class").any()), loc="upper right")
        fig.tight_layout(rect=(0, 0, 0.85, 1))
        p = out / "fractions.png"
        fig.savefig(p, dpi=dpi)
        paths.append(p)
    return paths

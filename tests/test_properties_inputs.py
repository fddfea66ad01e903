"""Awkward outlines and grids, drawn by hypothesis (issue #27, acceptance): ``fractions``,
``classify`` and ``features`` give the right answer or a clear error, never a NaN or a merged
glacier without a warning.

Outlines: valid boxes, holed polygons, multi-polygons, glaciers partly beyond the grid, slivers
that cover no pixel centre, self-intersecting rings, lines, missing geometries, duplicated and
missing ids.  Grids: regular (y down or up), x descending, a gap in x, shuffled x.
The right answer is computed here from the pixel centres with shapely (``contains_xy``), not with
xfacies' rasteriser."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import shapely
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Polygon, box

import xfacies
from xfacies.catalog import CLASSES, NODATA, OPTICAL_FEATURES
from xfacies.products import fractions

X0, Y0, RES = 630000.0, 5190000.0, 10.0
CRS = "EPSG:32632"
NY, NX = 12, 14
KEPT = [c.id for c in CLASSES if c.name != "cloud"]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: Outlines that must be refused: a missing id (and an id given twice).
INVALID = {"missing_id"}
#: Grids that classify refuses as mirrored (with the flip that fixes them).
MIRRORED = {"y_up", "x_descending"}
#: Outlines without a polygon: dropped, with a warning naming them.
DROPPED = {"line", "none"}
#: Grid kinds that are not a regular grid: they must be refused.
IRREGULAR = {"gapped", "shuffled"}


def _geom(kind: str, k: int) -> object:
    """Glacier ``k`` (a column strip of 4 pixels) of the given kind, in metres."""
    x0 = X0 + RES * (4 * k + 0.3)
    x1 = x0 + RES * 3.4
    y0, y1 = Y0 - RES * 9.7, Y0 - RES * 1.3
    if kind in ("box", "duplicated_id", "missing_id"):
        return box(x0, y0, x1, y1)
    if kind == "holed":
        return box(x0, y0, x1, y1).difference(box(x0 + 11, y0 + 21, x1 - 11, y1 - 21))
    if kind == "multi":
        return MultiPolygon([box(x0, y0, x1, y0 + 30), box(x0, y1 - 30, x1, y1)])
    if kind == "partial":
        return box(x0, y0, x1, Y0 + RES * 6)  # reaches 6 pixels north of the grid
    if kind == "sliver":
        return box(x0 + 1, y0, x0 + 3, y1)  # 2 m wide between pixel centres
    if kind == "bowtie":
        return Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    if kind == "line":
        return LineString([(x0, y0), (x1, y1)])
    if kind == "none":
        return None
    raise AssertionError(kind)


outline_kinds = st.lists(st.sampled_from(["box", "holed", "multi", "partial", "sliver", "bowtie", "line",
                                          "none", "duplicated_id", "missing_id"]), min_size=1, max_size=3)
grid_kinds = st.sampled_from(["regular", "y_up", "x_descending", "gapped", "shuffled"])


def _outlines(kinds: list[str]) -> gpd.GeoDataFrame:
    ids: list = [f"G{k}" for k in range(len(kinds))]
    for k, kind in enumerate(kinds):
        if kind == "duplicated_id" and k:
            ids[k] = "G0"
        if kind == "missing_id":
            ids[k] = np.nan
    return gpd.GeoDataFrame({"glacier_id": ids}, geometry=[_geom(kd, k) for k, kd in enumerate(kinds)], crs=CRS)


def _grid(kind: str) -> tuple[np.ndarray, np.ndarray]:
    y = Y0 - RES * (np.arange(NY) + 0.5)
    x = X0 + RES * (np.arange(NX) + 0.5)
    if kind == "y_up":
        y = y[::-1].copy()
    elif kind == "x_descending":
        x = x[::-1].copy()
    elif kind == "gapped":
        x = np.r_[x[:6], x[6:] + 3 * RES]
    elif kind == "shuffled":
        x = np.random.default_rng(0).permutation(x)
    return y, x


def _expected_failure(gdf: gpd.GeoDataFrame, kinds: list[str], grid: str) -> bool:
    return (bool(INVALID & set(kinds)) or grid in IRREGULAR or set(kinds) <= DROPPED
            or bool(gdf["glacier_id"][[k not in DROPPED for k in kinds]].dropna().duplicated().any()))


def _clear(err: Exception) -> None:
    """A clear error: a ValueError/TypeError whose message says what and how to fix."""
    assert isinstance(err, (ValueError, TypeError)), repr(err)
    assert len(str(err)) > 40, str(err)


def _truth_index(gdf: gpd.GeoDataFrame, y: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per glacier id, the pixels whose centre lies inside its (made valid) geometry."""
    xx, yy = np.meshgrid(x, y)
    out = {}
    for gid, g in zip(gdf["glacier_id"], gdf.geometry):
        if g is None or g.geom_type == "LineString":
            continue
        g = shapely.make_valid(g)
        out[str(gid)] = shapely.contains_xy(g, xx, yy)
    return out


@SETTINGS
@given(kinds=outline_kinds, grid=grid_kinds, seed=st.integers(0, 2**32 - 1))
def test_fractions_on_awkward_outlines_and_grids(kinds, grid, seed):
    rng = np.random.default_rng(seed)
    y, x = _grid(grid)
    v = rng.integers(NODATA, len(CLASSES), size=(NY, NX)).astype(np.int8)
    classes = xr.DataArray(v, dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs(CRS)
    gdf = _outlines(kinds)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frac = fractions(classes, gdf).compute()
        except Exception as err:  # noqa: BLE001 - judged below
            assert _expected_failure(gdf, kinds, grid), f"refused valid input: {err!r}"
            _clear(err)
            return
    assert not _expected_failure(gdf, kinds, grid), f"accepted {kinds} on a {grid} grid"
    said = " ".join(str(w.message) for w in caught)
    truth = _truth_index(gdf, y, x)
    for gid, kind in zip(gdf["glacier_id"], kinds):
        if kind in DROPPED:
            assert gid in said and "dropped" in said, f"{gid} ({kind}) dropped without a word"
    assert sorted(frac["glacier"].values.tolist()) == sorted(truth), "glaciers merged or lost"
    for gid, sel in truth.items():
        f = frac["fraction"].sel(glacier=gid).values
        counts = np.bincount(v[sel] + 1, minlength=len(CLASSES) + 1)
        n_valid = sum(counts[c + 1] for c in KEPT)
        if n_valid == 0:
            assert np.isnan(f).all()
            assert gid in said, f"{gid} ({kinds}) has NaN fractions without a warning naming it"
        else:
            np.testing.assert_allclose(f, [counts[c + 1] / n_valid for c in KEPT], rtol=1e-6)


def _cube(y: np.ndarray, x: np.ndarray, seed: int) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.05, 0.9, (len(OPTICAL_FEATURES), len(y), len(x))).astype(np.float32)
    return xr.DataArray(v, dims=("band", "y", "x"),
                        coords={"band": list(OPTICAL_FEATURES), "y": y, "x": x}).rio.write_crs(CRS)


@SETTINGS
@given(kinds=outline_kinds, grid=grid_kinds, seed=st.integers(0, 2**32 - 1))
def test_classify_and_features_on_awkward_outlines_and_grids(tiny_model, kinds, grid, seed):
    """classify labels exactly the pixels whose centre lies in a glacier, and features' proximity
    is defined on every pixel; or a clear error for what must be refused (and for a mirrored grid:
    the CNN would see its patches mirrored)."""
    y, x = _grid(grid)
    cube = _cube(y, x, seed)
    gdf = _outlines(kinds)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            labels = xfacies.classify(cube, tiny_model, gdf, method="exact").compute()
            prox = xfacies.features.features(cube, outlines=gdf, feature_set=["red", "proximity"]).compute()
        except Exception as err:  # noqa: BLE001 - judged below
            assert _expected_failure(gdf, kinds, grid) or grid in MIRRORED, f"refused valid input: {err!r}"
            _clear(err)
            return
    assert not (_expected_failure(gdf, kinds, grid) or grid in MIRRORED), f"accepted {kinds} on a {grid} grid"
    truth = _truth_index(gdf, y, x)
    inside = np.zeros((len(y), len(x)), bool)
    for sel in truth.values():
        inside |= sel
    lab = labels.transpose("y", "x").values
    np.testing.assert_array_equal(lab >= 0, inside)
    p = prox.sel(band="proximity").transpose("y", "x").values
    assert np.isfinite(p).all() and p.max() == pytest.approx(1.0)
